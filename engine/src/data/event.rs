//! One event with video (`event-start` .. `event-stop`) as a small state
//! machine: tell the cloud it started, upload its picture (captured through
//! firmware's `iv_cs_event_capture_picture_cb`) as the event's thumbnail,
//! then, once stopped and once the channel's segments up to the stop have
//! been acknowledged or given up, tell the cloud it stopped. The stop's
//! answer carries the status the cloud computed from `report_opt` (video
//! covering the span, a picture, either), which becomes the
//! `event_report_result_cb` result: 1 only for `finished`.
//!
//! Requests retry without a deadline (capped backoff): an event is not
//! given up because the cloud was away for a while. `exit` drops it.

use crate::cloud::Io;
use crate::cloud::api;
use crate::cloud::request::{Call, Policy};
use crate::cloud::retry::MAX_DELAY_MS;
use crate::cs::MAX_PICTURE_BYTES;
use crate::cs::params::EventReportOpt;
use crate::events::{Channel, EventResult, LogLevel};
use crate::host::{Host, PictureFormat};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What survives `export-state` of an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMeta {
    /// Event id 1..32.
    pub id: i32,
    /// The cloud's key.
    pub key: String,
    /// Info text of the start.
    pub info: String,
    /// Event start, UTC ms.
    pub start_utc_ms: u64,
    /// What the event needs.
    pub report_opt: EventReportOpt,
    /// Stop requested: event end, UTC ms.
    pub stop_utc_ms: Option<u64>,
    /// The cloud acknowledged the start.
    pub started: bool,
}

enum Step<X> {
    /// `PUT /events/{key}` in flight.
    Start(Call<X>),
    /// Started (or the start failed for good): picture, then the stop.
    Open,
    /// `POST .../stop` in flight.
    Stop(Call<X>),
    /// Over.
    Done,
}

/// See the module docs.
pub struct Event<H: Host> {
    /// What is saved.
    pub meta: EventMeta,
    /// Segments numbered below this must be resolved before the stop.
    pub through_seg: u64,
    /// Of a session that exited: its result is not reported to firmware.
    pub quiet: bool,
    step: Step<H::Exchange>,
    capture: Option<H::Capture>,
    pic: Option<(H::Picture, u32, String)>,
    pic_call: Option<Call<H::Exchange>>,
}

fn policy() -> Policy {
    Policy {
        deadline_ms: None,
        max_delay_ms: MAX_DELAY_MS,
        max_attempts: 0,
    }
}

impl<H: Host> Event<H> {
    /// A started event; `capture` asks firmware for its picture.
    pub fn new(ch: Channel, meta: EventMeta, capture: Option<H::Capture>, now: u64) -> Event<H> {
        let step = if meta.started {
            Step::Open
        } else {
            Step::Start(Call::new(
                api::event_put(
                    &meta.key,
                    ch,
                    meta.id,
                    meta.start_utc_ms,
                    &meta.info,
                    meta.report_opt,
                ),
                policy(),
                now,
            ))
        };
        Event {
            meta,
            through_seg: 0,
            quiet: false,
            step,
            capture,
            pic: None,
            pic_call: None,
        }
    }

    /// Open: started and not stopped.
    pub fn is_open(&self) -> bool {
        self.meta.stop_utc_ms.is_none()
    }

    /// Finished (result given).
    pub fn is_done(&self) -> bool {
        matches!(self.step, Step::Done)
    }

    /// When it needs a tick at the latest.
    pub fn wake_at(&self) -> Option<u64> {
        let a = match &self.step {
            Step::Start(c) | Step::Stop(c) => c.wake_at(),
            _ => None,
        };
        let b = self.pic_call.as_ref().and_then(Call::wake_at);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn take_capture(&mut self, io: &mut Io<'_, H>, ch: Channel) {
        let Some(cap) = &self.capture else {
            return;
        };
        let Some(r) = io.host.poll_capture(cap) else {
            return;
        };
        self.capture = None;
        let what = format!("channel {ch} event {} picture", self.meta.id);
        let p = match r {
            Ok(p) => p,
            Err(e) => {
                io.out.log(
                    LogLevel::Warn,
                    format!("{what}: no picture: {}", e.message()),
                );
                return;
            }
        };
        let len = io.host.picture_len(&p);
        let fmt = io.host.picture_format(&p);
        if len == 0 || len > MAX_PICTURE_BYTES || fmt == PictureFormat::Unknown {
            io.out.log(
                LogLevel::Warn,
                format!("{what}: {len} bytes, {fmt:?}: not a JPEG/PNG of at most {MAX_PICTURE_BYTES} bytes; not uploaded"),
            );
            return; // dropped: the host calls picture_result_cb
        }
        let mut h = Sha256::new();
        let mut off = 0u32;
        while off < len {
            let chunk = io.host.picture_read(&p, off, (len - off).min(64 << 10));
            if chunk.is_empty() {
                io.out.log(
                    LogLevel::Warn,
                    format!("{what}: ended at byte {off} of {len}"),
                );
                return;
            }
            h.update(&chunk);
            off = off.saturating_add(u32::try_from(chunk.len()).unwrap_or(u32::MAX));
        }
        self.pic = Some((p, len, hex::encode(h.finalize())));
    }

    /// Advances. `settled` says whether the segments the stop waits for are
    /// resolved. Returns the result when the event ends.
    pub fn poll(&mut self, io: &mut Io<'_, H>, ch: Channel, settled: bool) -> Option<EventResult> {
        self.take_capture(io, ch);
        let now = io.host.monotonic_ms();
        if let Step::Start(c) = &mut self.step {
            match c.poll(io, None)? {
                Ok(_) => self.meta.started = true,
                Err(e) => io.out.log(
                    LogLevel::Warn,
                    format!(
                        "channel {ch} event {}: the cloud did not take its start: {}",
                        self.meta.id, e.failure
                    ),
                ),
            }
            self.step = Step::Open;
        }
        // The picture, once the event exists in the cloud.
        if self.meta.started && self.pic_call.is_none() {
            if let Some((_, len, sha)) = &self.pic {
                let utc = self.meta.start_utc_ms;
                self.pic_call = Some(Call::new(
                    api::picture_put(
                        &format!("{}-pic", self.meta.key),
                        ch,
                        utc,
                        &self.meta.key,
                        *len,
                        sha.clone(),
                    ),
                    policy(),
                    now,
                ));
            }
        } else if !self.meta.started && matches!(self.step, Step::Open) && self.pic.is_some() {
            // The event never reached the cloud: nothing to attach it to.
            self.pic = None;
        }
        if let Some(c) = &mut self.pic_call {
            let pic = self.pic.as_ref().map(|(p, _, _)| p);
            if let Some(r) = c.poll(io, pic) {
                if let Err(e) = r {
                    io.out.log(
                        LogLevel::Warn,
                        format!("channel {ch} event {} picture: {}", self.meta.id, e.failure),
                    );
                }
                self.pic_call = None;
                self.pic = None; // released: the host calls picture_result_cb
            }
        }
        let pic_pending = self.capture.is_some() || self.pic.is_some();
        if let (Step::Open, Some(end)) = (&self.step, self.meta.stop_utc_ms) {
            if !settled || pic_pending {
                return None;
            }
            if !self.meta.started {
                self.step = Step::Done;
                return Some(self.result(ch, false));
            }
            self.step = Step::Stop(Call::new(
                api::event_stop(&self.meta.key, end),
                policy(),
                now,
            ));
        }
        if let Step::Stop(c) = &mut self.step {
            let r = c.poll(io, None)?;
            let ok = match r {
                Ok(reply) => match reply.json::<api::EventStatus>("event stop") {
                    Ok(s) => {
                        io.out.log(
                            LogLevel::Info,
                            format!("channel {ch} event {} ended: {}", self.meta.id, s.status),
                        );
                        s.status == "finished"
                    }
                    Err(e) => {
                        io.out.log(LogLevel::Warn, e.message().to_string());
                        false
                    }
                },
                Err(e) => {
                    io.out.log(
                        LogLevel::Warn,
                        format!("channel {ch} event {} stop: {}", self.meta.id, e.failure),
                    );
                    false
                }
            };
            self.step = Step::Done;
            return Some(self.result(ch, ok));
        }
        None
    }

    fn result(&self, ch: Channel, success: bool) -> EventResult {
        let s = |ms: u64| u32::try_from(ms / 1000).unwrap_or(u32::MAX);
        EventResult {
            channel: ch,
            success,
            event_id: self.meta.id,
            start_utc_s: s(self.meta.start_utc_ms),
            end_utc_s: s(self.meta.stop_utc_ms.unwrap_or(self.meta.start_utc_ms)),
        }
    }
}
