//! Long operations: the blocking C calls (`iv_cs_get_balance_info` with a
//! timeout, `iv_cs_set_ai_process`, `iv_cs_get_ai_process`,
//! `iv_cs_resource_destroy`, `iv_cs_event_directly_report`) become an
//! operation with an id; it runs one or two cloud requests and completes
//! through `host-event.op-complete`.
//!
//! Every operation has a deadline of [`op_budget_ms`] from its start: the
//! host's caller usually gives up sooner (its own timeout maps to -608), but
//! the engine never keeps an operation forever. When the cloud was not
//! reached in time a query completes with -608
//! (`IV_ERR_CS_QUERY_SERVICE_TIMEOUT`) and a report with -613
//! (`IV_ERR_CS_HTTP_DATA_FAIL`); error answers carry the cloud's code.

use crate::cloud::api::{self, AiAnswer, PlanView};
use crate::cloud::request::{Call, Policy, Reply, Spec};
use crate::cloud::retry::MAX_DELAY_MS;
use crate::cloud::{Io, TransTimes};
use crate::cs::params::EventReportOpt;
use crate::error::{Error, ErrorKind};
use crate::events::{AiSetting, Channel, OpId};
use crate::host::Host;
use serde::{Deserialize, Serialize};

/// Deadline of an operation: three reply timeouts plus one upload timeout
/// (60 s with the defaults): enough for a few retries of each request.
pub fn op_budget_ms(t: TransTimes) -> u64 {
    3 * u64::from(t.reply_timeout_ms) + u64::from(t.upload_timeout_ms)
}

/// A direct event report: the event, then its picture (if any).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Channel.
    pub channel: Channel,
    /// Event id 1..32.
    pub event_id: i32,
    /// Event time, UTC ms.
    pub utc_ms: u64,
    /// Checked info text.
    pub info: String,
    /// The channel's report option.
    pub report_opt: EventReportOpt,
    /// Event key: the same on every retry, so the cloud stores it once.
    pub key: String,
    /// The picture's id, length and SHA-256, while it is still to upload.
    pub picture: Option<PictureMeta>,
    /// The event itself was accepted.
    pub reported: bool,
}

/// A picture to upload with a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PictureMeta {
    /// Picture id.
    pub id: String,
    /// Bytes.
    pub len: u32,
    /// SHA-256 hex.
    pub sha256: String,
}

/// What an operation does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// `query-balance`.
    Balance(Channel),
    /// `set-ai`.
    SetAi(AiSetting),
    /// `get-ai`.
    GetAi(Channel, i32),
    /// `resource-destroy`.
    Destroy,
    /// `event-report`.
    Report(Report),
}

impl Kind {
    /// Whether `exit` cancels it: everything that needs `init` does;
    /// balance queries and destroy work without it.
    pub fn needs_init(&self) -> bool {
        !matches!(self, Kind::Balance(_) | Kind::Destroy)
    }

    /// Error kind when the cloud could not be reached in time.
    fn unreachable(&self) -> ErrorKind {
        match self {
            Kind::Report(_) => ErrorKind::UploadFailed,
            _ => ErrorKind::Timeout,
        }
    }

    /// The request of the current step.
    fn spec(&self) -> Spec {
        match self {
            Kind::Balance(_) => api::plan(),
            Kind::SetAi(a) => api::ai_put(a.channel, a.event_id, a.ai_type),
            Kind::GetAi(c, e) => api::ai_get(*c, *e),
            Kind::Destroy => api::destroy(),
            Kind::Report(r) => match (&r.picture, r.reported) {
                (Some(p), true) => {
                    api::picture_put(&p.id, r.channel, r.utc_ms, &r.key, p.len, p.sha256.clone())
                }
                _ => api::event_report(
                    &r.key,
                    r.channel,
                    r.event_id,
                    r.utc_ms,
                    &r.info,
                    r.report_opt,
                ),
            },
        }
    }
}

/// How an operation ended, before the engine applies it.
#[derive(Debug)]
pub enum Finished {
    /// A plan view (balance query).
    Plan(PlanView),
    /// An AI setting (get-ai).
    Ai(AiSetting),
    /// Nothing to return (set-ai, destroy).
    Done,
    /// A report and its picture (if any) were accepted.
    Reported(Report),
}

/// An operation in flight.
pub struct Op<H: Host> {
    /// Id given to the caller.
    pub id: OpId,
    /// What it does.
    pub kind: Kind,
    /// The picture of a report, held until the operation ends; dropping it
    /// tells the host firmware may have it back.
    pub pic: Option<H::Picture>,
    call: Call<H::Exchange>,
    deadline_ms: u64,
}

impl<H: Host> Op<H> {
    /// Starts `kind` at monotonic `now`.
    pub fn new(id: OpId, kind: Kind, pic: Option<H::Picture>, now: u64, trans: TransTimes) -> Self {
        let deadline_ms = now.saturating_add(op_budget_ms(trans));
        let call = Call::new(
            kind.spec(),
            Policy {
                deadline_ms: Some(deadline_ms),
                max_delay_ms: MAX_DELAY_MS,
                max_attempts: 0,
            },
            now,
        );
        Op {
            id,
            kind,
            pic,
            call,
            deadline_ms,
        }
    }

    /// When it needs a tick at the latest.
    pub fn wake_at(&self) -> Option<u64> {
        self.call.wake_at()
    }

    /// Advances; returns the outcome once.
    pub fn poll(&mut self, io: &mut Io<'_, H>) -> Option<Result<Finished, Error>> {
        loop {
            let reply = match self.call.poll(io, self.pic.as_ref())? {
                Ok(r) => r,
                Err(e) => return Some(Err(e.to_error(self.kind.unreachable()))),
            };
            match self.step(&reply) {
                Ok(Some(f)) => return Some(Ok(f)),
                Ok(None) => {
                    // The report's picture comes next, within the same deadline.
                    let now = io.host.monotonic_ms();
                    self.call = Call::new(
                        self.kind.spec(),
                        Policy {
                            deadline_ms: Some(self.deadline_ms),
                            max_delay_ms: MAX_DELAY_MS,
                            max_attempts: 0,
                        },
                        now,
                    );
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// One request succeeded: the outcome, or none when a step follows.
    fn step(&mut self, reply: &Reply) -> Result<Option<Finished>, Error> {
        let what = self.call.spec().what();
        match &mut self.kind {
            Kind::Balance(_) => Ok(Some(Finished::Plan(reply.json(&what)?))),
            Kind::GetAi(..) => {
                let a: AiAnswer = reply.json(&what)?;
                Ok(Some(Finished::Ai(AiSetting {
                    channel: Channel::try_from(a.setting.channel).unwrap_or(0),
                    event_id: i32::try_from(a.setting.event_id).unwrap_or(0),
                    ai_type: a.setting.ai_type,
                })))
            }
            Kind::SetAi(_) | Kind::Destroy => Ok(Some(Finished::Done)),
            Kind::Report(r) => {
                if r.reported {
                    // The picture is stored and linked to the event.
                    r.picture = None;
                }
                r.reported = true;
                if r.picture.is_some() {
                    Ok(None)
                } else {
                    Ok(Some(Finished::Reported(r.clone())))
                }
            }
        }
    }
}
