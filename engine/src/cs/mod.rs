//! The iv_cs control plane: the `cs` and `runtime` exports of the WIT
//! contract as one sans-IO state machine, [`Engine`], generic over the
//! [`Host`] that supplies clock, network and snapshot.
//!
//! - Calls (`configure`, `init`, `push`, `query-balance`, ...) check their
//!   arguments and the engine's state and return at once; blocking C calls
//!   become operations ([`ops`]) that complete later.
//! - [`Engine::tick`] makes progress: the change feed ([`feed`]), the
//!   operations, the data plane ([`data`]), timers (plan expiry, firmware
//!   balance polls); it returns host events and when to tick next.
//! - State lives in: the plan cache ([`plans`], device-level, survives
//!   `exit`), the cloud client (credentials, timeouts, reachability), the
//!   operations, and the session of one `init`..`exit`.
//! - [`offer`] relays the cloud's engine releases to the host, once each.
//! - [`params`] and [`event_args`] hold the argument checks; [`data`] is
//!   the seam the data plane (buffering, segment uploads, events with video)
//!   plugs into.
//! - This module holds the calls; `progress` the tick half (feed, ops,
//!   reconcile, notifies, wake time); `saved` export/import.
//!
//! Model: the host calls in from one thread; the engine never blocks and
//! never calls firmware. Everything firmware must hear (push start/stop,
//! notifies, results) leaves as [`HostEvent`]s from `tick`, in order.

pub mod data;
pub mod event_args;
pub mod feed;
pub mod offer;
pub mod ops;
pub mod params;
pub mod plans;
mod progress;
mod saved;

use crate::bail;
use crate::cloud::link::Reach;
use crate::cloud::sign::Credentials;
use crate::cloud::{Client, Io, MAX_TRANS_TIMEOUT_MS};
use crate::error::{Error, ErrorKind, Result};
use crate::events::{
    AiSetting, Balance, BufferLevel, Channel, DumpState, LogLevel, NotifyKind, OpId, OpResult,
    Outbox,
};
use crate::host::{Host, PictureFormat};
use crate::types::{Frame, PushGate};
use data::{DataPlane, EventCall};
use feed::Feed;
use ops::{Kind, Op, PictureMeta, Report};
use params::{DeviceConfig, InitParams, MAX_CHANNELS};
use plans::{Closed, Gate, Plans};
use sha2::{Digest, Sha256};

/// How often firmware's `iv_cs_get_balance_cb` is asked, ms (the spec: "this
/// callback is called often"; each ask is non-blocking).
pub const BALANCE_POLL_MS: u64 = 10_000;

/// Largest event picture, bytes (the cloud's `max_picture_bytes` default).
pub const MAX_PICTURE_BYTES: u32 = 2 << 20;

/// `iv_cs_ai_type_e` bits this engine knows (`CS_AI_TYPE_FALL_DETECT`).
pub const AI_TYPES_KNOWN: u32 = 1;

/// Device clock further than this from the cloud's gets a warning, ms.
const CLOCK_WARN_MS: i64 = 60_000;

/// Per-channel control state of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct ChannelState {
    channel: Channel,
    /// `push-start` was emitted and no `push-stop` since.
    pushing: bool,
    /// AI bits last reported through `ai-service` (none: never).
    ai_bits: Option<u32>,
    /// Gate last given to the data plane (none: may not record).
    #[serde(default)]
    gate: Option<Gate>,
}

/// One `init`..`exit`.
struct Session<H: Host> {
    params: InitParams,
    channels: Vec<ChannelState>,
    feed: Feed<H::Exchange>,
    data: DataPlane<H>,
    /// Firmware heard connect-fail and not yet connect-recover.
    told_down: bool,
    /// Next `balance-request` round, monotonic ms.
    balance_poll_at: Option<u64>,
    /// Firmware's last valid answer per channel.
    hints: [Option<Balance>; MAX_CHANNELS],
}

impl<H: Host> Session<H> {
    fn has(&self, ch: Channel) -> bool {
        self.channels.iter().any(|c| c.channel == ch)
    }
}

/// The engine. See the module docs.
pub struct Engine<H: Host> {
    host: H,
    client: Client,
    out: Outbox,
    plans: Plans,
    session: Option<Session<H>>,
    /// What sessions that exited still upload (see [`Drain`]).
    drain: Option<Drain<H>>,
    ops: Vec<Op<H>>,
    next_op: OpId,
}

/// How long uploads pending at `exit` go on, ms. Enough for a full budget
/// over a slow uplink; what is still pending after it was dumped for backup.
pub const EXIT_DRAIN_MS: u64 = 300_000;

/// The data plane of sessions that exited: their open segments closed at
/// `exit`, their pending segments and events finishing with firmware's
/// callbacks muted (firmware hears nothing after `exit` returns). A new
/// `init` adopts the channels it records again.
struct Drain<H: Host> {
    data: DataPlane<H>,
    /// Monotonic ms when what is left is dropped.
    until: u64,
}

fn not_initialised(op: &str) -> Error {
    Error::new(
        ErrorKind::NotInitialised,
        format!("{op}: iv_cs is not initialised (call init first)"),
    )
}

fn closed_error(ch: Channel, c: Closed) -> Error {
    match c {
        Closed::NoPlan => Error::new(
            ErrorKind::NoService,
            format!("channel {ch}: no cloud-storage plan allows recording"),
        ),
        Closed::TrialUsedUp => Error::new(
            ErrorKind::NoBalance,
            format!("channel {ch}: the free trial's seconds are used up"),
        ),
    }
}

impl<H: Host> Engine<H> {
    /// A fresh engine: not configured, not initialised.
    pub fn new(host: H) -> Engine<H> {
        Engine {
            host,
            client: Client::default(),
            out: Outbox::default(),
            plans: Plans::default(),
            session: None,
            drain: None,
            ops: Vec::new(),
            next_op: 1,
        }
    }

    /// The host.
    pub fn host(&self) -> &H {
        &self.host
    }

    /// The host, mutably (tests move its clock).
    pub fn host_mut(&mut self) -> &mut H {
        &mut self.host
    }

    /// Whether `init` succeeded and `exit` was not called since.
    pub fn is_initialised(&self) -> bool {
        self.session.is_some()
    }

    fn cloud_now(&mut self) -> u64 {
        let utc = self.host.now_utc_ms();
        self.client.cloud_now_ms(utc)
    }

    fn session(&mut self, op: &str) -> Result<&mut Session<H>> {
        self.session.as_mut().ok_or_else(|| not_initialised(op))
    }

    /// The session, with `ch` among its channels.
    fn session_channel(&mut self, op: &str, ch: Channel) -> Result<&mut Session<H>> {
        let s = self.session(op)?;
        if !s.has(ch) {
            bail!(InvalidArgument, "{op}: channel {ch} was not initialised");
        }
        Ok(s)
    }

    fn gate(&mut self, ch: Channel) -> Result<Gate> {
        let now = self.cloud_now();
        self.plans.gate(ch, now).map_err(|c| closed_error(ch, c))
    }

    fn start_op(&mut self, kind: Kind, pic: Option<H::Picture>) -> OpId {
        let id = self.next_op;
        self.next_op = self.next_op.wrapping_add(1).max(1);
        let now = self.host.monotonic_ms();
        self.ops
            .push(Op::new(id, kind, pic, now, self.client.trans));
        id
    }

    fn cancel_ops(&mut self, which: impl Fn(&Kind) -> bool, why: &Error) {
        let (cancel, keep): (Vec<Op<H>>, Vec<Op<H>>) = std::mem::take(&mut self.ops)
            .into_iter()
            .partition(|o| which(&o.kind));
        self.ops = keep;
        for mut op in cancel {
            drop(op.pic.take());
            self.out.complete(op.id, OpResult::Failed(why.clone()));
        }
    }

    // ---- cs exports -------------------------------------------------------

    /// `configure`: device id and secret, before `init`.
    pub fn configure(&mut self, cfg: DeviceConfig) -> Result<()> {
        params::check_device(&cfg)?;
        if self.session.is_some() {
            bail!(
                AlreadyInitialised,
                "configure: iv_cs is initialised; configure before init (or after exit)"
            );
        }
        if self.client.device_id().is_some_and(|d| d != cfg.device_id) {
            // Another device: nothing known about the old one applies.
            let why = Error::new(
                ErrorKind::NoCredentials,
                format!(
                    "cancelled: the device was reconfigured as {}",
                    cfg.device_id
                ),
            );
            self.cancel_ops(|_| true, &why);
            self.plans = Plans::default();
        }
        let utc = self.host.now_utc_ms();
        let mono = self.host.monotonic_ms();
        self.out.log(
            LogLevel::Info,
            format!("configured as device {}", cfg.device_id),
        );
        self.client.configure(
            Credentials::new(cfg.device_id, cfg.device_secret),
            utc,
            mono,
        );
        Ok(())
    }

    /// `init` (`iv_cs_init`).
    pub fn init(&mut self, p: InitParams) -> Result<()> {
        if self.client.credentials().is_none() {
            bail!(
                NoCredentials,
                "init: no device credentials (the host must call configure first)"
            );
        }
        if self.session.is_some() {
            bail!(AlreadyInitialised, "init: iv_cs is already initialised");
        }
        params::check_init(&p)?;
        let now = self.host.monotonic_ms();
        let channels: Vec<ChannelState> = p
            .channels
            .iter()
            .map(|c| ChannelState {
                channel: c.channel,
                pushing: false,
                ai_bits: None,
                gate: None,
            })
            .collect();
        let list: Vec<String> = channels.iter().map(|c| c.channel.to_string()).collect();
        self.out.log(
            LogLevel::Info,
            format!("init: channels {}; fetching the plan", list.join(",")),
        );
        let down = self.client.link.reach() == Reach::Down;
        let notify = p.callbacks.notify;
        let boot = self.client.rng().next_u64() as u32;
        let mut data = DataPlane::new(&p, boot);
        if let Some(d) = &mut self.drain {
            data.adopt(&mut d.data);
        }
        self.session = Some(Session {
            data,
            balance_poll_at: p.callbacks.get_balance.then_some(now),
            params: p,
            channels,
            feed: Feed::new(None, now),
            told_down: false,
            hints: [None; MAX_CHANNELS],
        });
        if down && notify {
            // Firmware learns of an outage that began before init.
            self.notify_all(NotifyKind::ConnectFail);
            if let Some(s) = &mut self.session {
                s.told_down = true;
            }
        }
        Ok(())
    }

    /// `exit` (`iv_cs_exit`): returns at once; the open segments close and
    /// what is pending goes on uploading as a [`Drain`]; operations that
    /// need init complete with -605.
    pub fn exit(&mut self) -> Result<()> {
        let Some(mut s) = self.session.take() else {
            return Err(not_initialised("exit"));
        };
        let mut io = Io {
            host: &mut self.host,
            client: &mut self.client,
            out: &mut self.out,
        };
        // The open segments close here: their last dump chunks leave with
        // this call's events, before firmware's exit returns.
        s.data.exit(&mut io);
        let until = self.host.monotonic_ms().saturating_add(EXIT_DRAIN_MS);
        let data = match self.drain.take() {
            Some(mut d) => {
                d.data.absorb(s.data);
                d.data
            }
            None => s.data,
        };
        let (segs, bytes) = data.pending();
        self.drain = Some(Drain { data, until });
        let why = Error::new(ErrorKind::NotInitialised, "cancelled by iv_cs_exit");
        self.cancel_ops(Kind::needs_init, &why);
        self.out.log(
            LogLevel::Info,
            format!("exit: iv_cs stopped; {segs} segment(s), {bytes} bytes still uploading"),
        );
        Ok(())
    }

    /// The session (else -605 for `op`) and the I/O it works with, borrowed
    /// side by side.
    fn session_io(&mut self, op: &str) -> Result<(&mut Session<H>, Io<'_, H>)> {
        let Some(s) = &mut self.session else {
            return Err(not_initialised(op));
        };
        let io = Io {
            host: &mut self.host,
            client: &mut self.client,
            out: &mut self.out,
        };
        Ok((s, io))
    }

    /// `push` (`iv_cs_push_stream`).
    pub fn push(&mut self, ch: Channel, f: &Frame<'_>) -> Result<()> {
        self.session_channel("push", ch)?;
        let gate = self.gate(ch)?;
        let (s, mut io) = self.session_io("push")?;
        s.data.push(&mut io, ch, gate, f)
    }

    /// `buffer-levels`: the session's buffers now (the same fill the
    /// watermarks take).
    pub fn buffer_levels(&self) -> Vec<BufferLevel> {
        let down = self.client.link.reach() == Reach::Down;
        self.session
            .as_ref()
            .map_or_else(Vec::new, |s| s.data.levels(down))
    }

    /// `push-gate`: what `push` on `ch` would refuse now.
    pub fn push_gate(&mut self, ch: Channel) -> PushGate {
        let checked = self.session_channel("push", ch).map(|_| ());
        let gate = match checked.and_then(|()| self.gate(ch)) {
            Ok(g) => g,
            Err(e) => {
                return PushGate {
                    all: Some(e.code()),
                    ..PushGate::default()
                };
            }
        };
        match &self.session {
            Some(s) => s.data.push_gate(ch, gate),
            None => PushGate::default(),
        }
    }

    fn event_call(
        &mut self,
        op: &str,
        ch: Channel,
        event_id: i32,
        info: &[u8],
        event_s: u32,
        stream_s: u32,
    ) -> Result<EventCall> {
        self.session_channel(op, ch)?;
        let what = format!("{op} channel {ch} event {event_id}");
        event_args::check_event_id(&what, event_id)?;
        let info = event_args::check_info(&what, info)?;
        let now_ms = self.host.now_utc_ms();
        let (event_utc_s, stream_utc_ms) =
            event_args::resolve_pair(&what, event_s, stream_s, now_ms)?;
        Ok(EventCall {
            event_id,
            info,
            event_utc_s,
            stream_utc_ms,
        })
    }

    /// `event-start` (`iv_cs_event_start[_ext]`).
    pub fn event_start(
        &mut self,
        ch: Channel,
        event_id: i32,
        info: &[u8],
        event_s: u32,
        stream_s: u32,
    ) -> Result<()> {
        let ev = self.event_call("event-start", ch, event_id, info, event_s, stream_s)?;
        let gate = self.gate(ch)?;
        let (s, mut io) = self.session_io("event-start")?;
        s.data.event_start(&mut io, ch, gate, &ev)?;
        self.reconcile();
        Ok(())
    }

    /// `event-stop` (`iv_cs_event_stop[_ext]`).
    pub fn event_stop(
        &mut self,
        ch: Channel,
        event_id: i32,
        info: &[u8],
        event_s: u32,
        stream_s: u32,
    ) -> Result<()> {
        let ev = self.event_call("event-stop", ch, event_id, info, event_s, stream_s)?;
        let (s, mut io) = self.session_io("event-stop")?;
        s.data.event_stop(&mut io, ch, &ev)?;
        self.reconcile();
        Ok(())
    }

    /// `event-report` (`iv_cs_event_directly_report`): reports a point
    /// event, then uploads its picture linked to it. Works without a plan.
    /// `event_s` follows the `_ext` rule (0 now, < 300 relative). A picture
    /// must be JPEG or PNG by its magic bytes (a zero-filled buffer is
    /// refused with -602, never uploaded); an empty one counts as none.
    pub fn event_report(
        &mut self,
        ch: Channel,
        event_id: i32,
        info: &[u8],
        event_s: u32,
        pic: Option<H::Picture>,
    ) -> Result<OpId> {
        let s = self.session_channel("event-report", ch)?;
        let report_opt = s
            .params
            .channels
            .iter()
            .find(|c| c.channel == ch)
            .map(|c| c.event_report_opt)
            .unwrap_or(params::EventReportOpt::VideoRequired);
        let what = format!("event-report channel {ch} event {event_id}");
        event_args::check_event_id(&what, event_id)?;
        let info = event_args::check_info(&what, info)?;
        let now_ms = self.host.now_utc_ms();
        let utc_ms = if event_s == 0 {
            now_ms
        } else {
            event_args::resolve_time(event_s, now_ms / 1000).saturating_mul(1000)
        };
        let pic = pic.filter(|p| self.host.picture_len(p) > 0);
        let rand = self.client.rng().next_u64() as u32;
        let key = format!("r{ch}-{event_id}-{utc_ms}-{rand:08x}");
        let picture = match &pic {
            Some(p) => Some(self.picture_meta(&what, p, &key)?),
            None => None,
        };
        let r = Report {
            channel: ch,
            event_id,
            utc_ms,
            info,
            report_opt,
            key,
            picture,
            reported: false,
        };
        Ok(self.start_op(Kind::Report(r), pic))
    }

    /// Checks a picture's format and size and computes its digest.
    fn picture_meta(&mut self, what: &str, p: &H::Picture, key: &str) -> Result<PictureMeta> {
        let len = self.host.picture_len(p);
        match self.host.picture_format(p) {
            PictureFormat::Jpeg | PictureFormat::Png => {}
            PictureFormat::Unknown => bail!(
                InvalidArgument,
                "{what}: the picture ({len} bytes) is neither JPEG nor PNG by its magic bytes"
            ),
        }
        if len > MAX_PICTURE_BYTES {
            bail!(
                InvalidArgument,
                "{what}: the picture of {len} bytes exceeds {MAX_PICTURE_BYTES}"
            );
        }
        // The signature covers the body's digest, so the bytes are read once
        // here; the upload attaches the picture by handle.
        let mut h = Sha256::new();
        let mut off = 0u32;
        while off < len {
            let chunk = self.host.picture_read(p, off, (len - off).min(64 << 10));
            if chunk.is_empty() {
                bail!(
                    InvalidArgument,
                    "{what}: the picture ended at byte {off} of {len}"
                );
            }
            h.update(&chunk);
            off = off.saturating_add(u32::try_from(chunk.len()).unwrap_or(u32::MAX));
        }
        Ok(PictureMeta {
            id: format!("{key}-pic"),
            len,
            sha256: hex::encode(h.finalize()),
        })
    }

    /// `query-balance` (`iv_cs_get_balance_info` with a timeout): a fresh
    /// plan fetch; works before `init`.
    pub fn query_balance(&mut self, ch: Channel) -> Result<OpId> {
        if self.client.credentials().is_none() {
            bail!(
                NoCredentials,
                "query-balance: no device credentials (configure first)"
            );
        }
        check_channel_id("query-balance", ch)?;
        Ok(self.start_op(Kind::Balance(ch), None))
    }

    /// `cached-balance` (`iv_cs_get_balance_info` with timeout 0): the last
    /// known plan, no I/O; -605 when nothing is known yet.
    pub fn cached_balance(&mut self, ch: Channel) -> Result<Balance> {
        check_channel_id("cached-balance", ch)?;
        let now = self.cloud_now();
        self.plans.balance(ch, now).ok_or_else(|| {
            Error::new(
                ErrorKind::NotInitialised,
                format!("cached-balance: no plan known for channel {ch} yet (query it first)"),
            )
        })
    }

    /// `balance-answer`: firmware's answer to a `balance-request`. A valid
    /// answer that differs from the previous one is a hint that the plan
    /// changed: it applies at once, until the cloud says otherwise.
    pub fn balance_answer(&mut self, ch: Channel, answer: Option<Balance>) {
        let Some(b) = answer else {
            return;
        };
        let Some(s) = &mut self.session else {
            return;
        };
        let Some(slot) = s.hints.get_mut(usize::from(ch)) else {
            return;
        };
        if !s.channels.iter().any(|c| c.channel == ch) || *slot == Some(b) {
            return;
        }
        *slot = Some(b);
        self.out.log(
            LogLevel::Info,
            format!(
                "channel {ch}: firmware reports plan {:?} (enabled {})",
                b.plan, b.enabled
            ),
        );
        self.plans.apply_hint(ch, &b);
        self.reconcile();
    }

    /// `set-trans-time` (`iv_cs_set_trans_time`): both non-zero.
    pub fn set_trans_time(&mut self, upload_ms: u32, reply_ms: u32) -> Result<()> {
        for (name, v) in [("upload", upload_ms), ("reply", reply_ms)] {
            if v == 0 || v > MAX_TRANS_TIMEOUT_MS {
                bail!(
                    InvalidArgument,
                    "set-trans-time: {name} timeout {v} ms is outside 1..={MAX_TRANS_TIMEOUT_MS}"
                );
            }
        }
        self.client.trans.upload_timeout_ms = upload_ms;
        self.client.trans.reply_timeout_ms = reply_ms;
        Ok(())
    }

    /// `set-ai` (`iv_cs_set_ai_process`): stored in the cloud.
    pub fn set_ai(&mut self, ch: Channel, event_id: i32, ai_type: u32) -> Result<OpId> {
        self.session_channel("set-ai", ch)?;
        event_args::check_event_id("set-ai", event_id)?;
        if ai_type & !AI_TYPES_KNOWN != 0 {
            bail!(
                InvalidArgument,
                "set-ai: channel {ch} event {event_id}: ai type {ai_type:#x} has bits outside {AI_TYPES_KNOWN:#x}"
            );
        }
        Ok(self.start_op(
            Kind::SetAi(AiSetting {
                channel: ch,
                event_id,
                ai_type,
            }),
            None,
        ))
    }

    /// `get-ai` (`iv_cs_get_ai_process`): read from the cloud.
    pub fn get_ai(&mut self, ch: Channel, event_id: i32) -> Result<OpId> {
        self.session_channel("get-ai", ch)?;
        event_args::check_event_id("get-ai", event_id)?;
        Ok(self.start_op(Kind::GetAi(ch, event_id), None))
    }

    /// `resource-destroy` (`iv_cs_resource_destroy`): deletes the device's
    /// cloud data and resets its plan. Needs only the credentials.
    pub fn resource_destroy(&mut self) -> Result<OpId> {
        if self.client.credentials().is_none() {
            bail!(
                NoCredentials,
                "resource-destroy: no device credentials (configure first)"
            );
        }
        Ok(self.start_op(Kind::Destroy, None))
    }

    /// `backup-upload` (`iv_cs_upload_backup_video`).
    pub fn backup_upload(
        &mut self,
        ch: Channel,
        state: DumpState,
        file_name: &str,
        data: &[u8],
    ) -> Result<()> {
        self.session_channel("backup-upload", ch)?;
        let cloud_now = self.cloud_now();
        let bare = !file_name.is_empty()
            && file_name.len() <= 96
            && file_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            && !file_name.starts_with('.');
        if !bare {
            bail!(
                InvalidArgument,
                "backup-upload: channel {ch}: {file_name:?} is not a file name the engine dumped"
            );
        }
        let (s, mut io) = self.session_io("backup-upload")?;
        s.data
            .backup_upload(&mut io, cloud_now, ch, state, file_name, data)
    }

    /// The data plane's state of a channel (tests, diagnostics).
    pub fn data_channel(&self, ch: Channel) -> Option<&crate::data::channel::Chan<H>> {
        self.session.as_ref()?.data.channel_state(ch)
    }
}

fn check_channel_id(op: &str, ch: Channel) -> Result<()> {
    if usize::from(ch) >= MAX_CHANNELS {
        bail!(
            InvalidArgument,
            "{op}: channel {ch} is outside 0..={}",
            MAX_CHANNELS - 1
        );
    }
    Ok(())
}
