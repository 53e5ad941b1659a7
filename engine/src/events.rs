//! Host events: the work the engine hands its host on `tick` (firmware
//! callbacks to make, operations that completed, log lines), in the Rust
//! form of the WIT `host-event` variant, and the [`Outbox`] that queues them
//! between ticks.
//!
//! The outbox is bounded where the engine alone decides the volume: log
//! records beyond [`MAX_PENDING_LOGS`] are counted and summarised instead of
//! queued, so a host that ticks rarely cannot make the engine grow without
//! limit. Events firmware must see (push start/stop, notify, results,
//! operation completions) are never dropped; their number is bounded by the
//! channels and operations in flight.

use crate::error::Error;
use serde::{Deserialize, Serialize};

/// Channel id as in `iv_cs_chn_e` (0..4).
pub type Channel = u8;

/// Handle of a long operation; completes through [`HostEvent::OpComplete`].
pub type OpId = u64;

/// `iv_cs_type_e`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlanType {
    /// No cloud recording (`CS_TYPE_NONE`).
    None,
    /// Continuous recording (`CS_TYPE_FULL_TIME`).
    FullTime,
    /// Event video only (`CS_TYPE_EVENT`).
    Event,
    /// Event video until the trial seconds are used up (`CS_TYPE_FREE_TRIAL`).
    FreeTrial,
}

/// `iv_cs_balance_info_s` plus the cloud's plan revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// `cs_switch`: the channel may record now.
    pub enabled: bool,
    /// `cs_days`: retention.
    pub days: i32,
    /// `cs_type`.
    pub plan: PlanType,
    /// `free_trial_remaining_sec` (meaningful for trials only).
    pub trial_remaining_s: i32,
    /// The cloud's revision this came from (0: firmware's answer).
    pub revision: u64,
}

/// `iv_cs_upload_state_e`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UploadState {
    /// `IV_CS_UPLOAD_OK`.
    Ok,
    /// `IV_CS_UPLOAD_ERR`.
    Err,
}

/// `iv_cs_upload_slice_info_s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadSlice {
    /// UTC of the first video frame, s.
    pub utc_start_s: u64,
    /// UTC of the end, s.
    pub utc_end_s: u64,
    /// PTS of the first video frame, ms.
    pub pts_start_ms: u64,
    /// PTS of the last video frame, ms.
    pub pts_end_ms: u64,
    /// Seq of the first video frame.
    pub seq_start: u32,
    /// Seq of the last video frame.
    pub seq_end: u32,
    /// Bytes the cloud acknowledged.
    pub upload_size: u32,
    /// Bytes of the slice.
    pub total_size: u32,
    /// Outcome.
    pub state: UploadState,
}

/// `iv_cs_notify_msg_type_e`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotifyKind {
    /// The cloud became unreachable.
    ConnectFail,
    /// The cloud is reachable again.
    ConnectRecover,
    /// Per-slice upload results.
    UploadState,
    /// Buffer fill crossed the low mark.
    WatermarkLow,
    /// Buffer fill crossed the warn mark.
    WatermarkWarn,
    /// Buffer fill crossed the high mark.
    WatermarkHigh,
    /// The cloud answers but refuses the service (credentials).
    ServiceWrong,
}

/// One `iv_cs_notify_cb` call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notify {
    /// Channel.
    pub channel: Channel,
    /// Message type.
    pub kind: NotifyKind,
    /// At most 10, only for [`NotifyKind::UploadState`].
    pub slices: Vec<UploadSlice>,
}

/// `iv_cs_event_result_info` (success = `result_code` 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventResult {
    /// Channel.
    pub channel: Channel,
    /// Whether what the event needed reached the cloud.
    pub success: bool,
    /// Event id 1..32.
    pub event_id: i32,
    /// Start, UTC s.
    pub start_utc_s: u32,
    /// End, UTC s.
    pub end_utc_s: u32,
}

/// `iv_cs_up_bk_state_e`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DumpState {
    /// `CS_UP_BK_START`.
    Start,
    /// `CS_UP_BK_RUNNING`.
    Running,
    /// `CS_UP_BK_END`.
    End,
}

/// One `iv_cs_dump_file_cb` call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpChunk {
    /// Channel.
    pub channel: Channel,
    /// Start, running or end.
    pub state: DumpState,
    /// Start, UTC ms.
    pub start_ms: u64,
    /// End, UTC ms (0 until the end).
    pub end_ms: u64,
    /// Bare file name.
    pub file_name: String,
    /// Bytes exactly as uploaded.
    pub data: Vec<u8>,
}

/// Ask firmware's `iv_cs_get_balance_cb`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceRequest {
    /// Channel.
    pub channel: Channel,
    /// 0 = non-blocking.
    pub timeout_ms: u32,
}

/// `iv_cs_ai_service_notify_cb`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiService {
    /// Channel.
    pub channel: Channel,
    /// `iv_cs_ai_type_e` bits now enabled on the channel (OR over its event
    /// ids; 0 = closed).
    pub ai_type: u32,
    /// When the channel's plan ends, UTC s (0 = open-ended).
    pub utc_expire: u64,
}

/// An AI setting of (channel, event id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiSetting {
    /// Channel.
    pub channel: Channel,
    /// Event id 1..32.
    pub event_id: i32,
    /// `iv_cs_ai_type_e` bit set.
    pub ai_type: u32,
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpResult {
    /// Succeeded, nothing to return.
    Done,
    /// Failed with an `IV_ERR_*` code.
    Failed(Error),
    /// A balance query's answer.
    Balance(Balance),
    /// A get-ai answer.
    AiSetting(AiSetting),
}

/// An operation completed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpComplete {
    /// The id `cs` returned.
    pub id: OpId,
    /// Outcome.
    pub outcome: OpResult,
}

/// Log severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LogLevel {
    /// Something failed.
    Error,
    /// Something is wrong but handled.
    Warn,
    /// A notable state change.
    Info,
    /// Detail.
    Debug,
    /// Much detail.
    Trace,
}

/// A log line for the host's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Severity.
    pub level: LogLevel,
    /// Text.
    pub message: String,
}

/// An engine release the cloud offers this device; every field is the
/// cloud's unsigned claim (the host verifies the artifact it downloads).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineOffer {
    /// The cloud's release id.
    pub release: String,
    /// The manifest's `engine_version`.
    pub engine_version: String,
    /// The manifest's `contract`.
    pub contract: String,
    /// `wasm` or `precompiled`.
    pub kind: String,
    /// The manifest's `target`.
    pub target: String,
    /// SHA-256 of the artifact file, lowercase hex.
    pub sha256: String,
    /// Artifact file length, bytes.
    pub size: u64,
    /// Path and query under the cloud URL to download it from.
    pub url: String,
    /// Path and query under the cloud URL to report outcomes to.
    pub report_url: String,
}

/// Work for the host, delivered in order outside any engine call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostEvent {
    /// `iv_cs_push_stream_start_cb`.
    PushStart(Channel),
    /// `iv_cs_push_stream_stop_cb`.
    PushStop(Channel),
    /// `iv_cs_notify_cb`.
    Notify(Notify),
    /// `iv_cs_event_report_result_cb`.
    EventResult(EventResult),
    /// `iv_cs_dump_file_cb`.
    DumpFile(DumpChunk),
    /// `iv_cs_get_balance_cb`; answer with `balance-answer`.
    BalanceRequest(BalanceRequest),
    /// `iv_cs_ai_service_notify_cb`.
    AiService(AiService),
    /// An operation finished.
    OpComplete(OpComplete),
    /// A log line.
    Log(LogRecord),
    /// A new engine release for this device (once per release).
    EngineOffer(EngineOffer),
}

/// `buffer-level`: one channel's buffer (see [`crate::data`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BufferLevel {
    /// The channel.
    pub channel: Channel,
    /// Bytes held against the budget.
    pub used: u64,
    /// Bytes waiting for the network (the watermarks' fill).
    pub backlog: u64,
    /// The budget.
    pub budget: u64,
}

/// What `tick` returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickResult {
    /// Events to deliver, in order.
    pub events: Vec<HostEvent>,
    /// Monotonic ms by which the engine wants the next tick at the latest.
    pub wake_at_ms: Option<u64>,
}

/// Log records queued beyond this are counted, not kept.
pub const MAX_PENDING_LOGS: usize = 256;

/// Host events waiting for the next `tick`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Outbox {
    events: Vec<HostEvent>,
    logs: usize,
    dropped_logs: u64,
}

impl Outbox {
    /// Queues an event.
    pub fn push(&mut self, e: HostEvent) {
        if matches!(e, HostEvent::Log(_)) {
            if self.logs >= MAX_PENDING_LOGS {
                self.dropped_logs = self.dropped_logs.saturating_add(1);
                return;
            }
            self.logs += 1;
        }
        self.events.push(e);
    }

    /// Queues a log record.
    pub fn log(&mut self, level: LogLevel, message: impl Into<String>) {
        self.push(HostEvent::Log(LogRecord {
            level,
            message: message.into(),
        }));
    }

    /// Queues an operation's completion.
    pub fn complete(&mut self, id: OpId, outcome: OpResult) {
        self.push(HostEvent::OpComplete(OpComplete { id, outcome }));
    }

    /// Takes everything queued.
    pub fn drain(&mut self) -> Vec<HostEvent> {
        let mut out = std::mem::take(&mut self.events);
        if self.dropped_logs > 0 {
            out.push(HostEvent::Log(LogRecord {
                level: LogLevel::Warn,
                message: format!(
                    "{} log records were dropped: more than {MAX_PENDING_LOGS} queued between ticks",
                    self.dropped_logs
                ),
            }));
        }
        self.logs = 0;
        self.dropped_logs = 0;
        out
    }

    /// Queues everything `other` holds, after what is queued here.
    pub fn extend(&mut self, other: Outbox) {
        for e in other.events {
            self.push(e);
        }
        self.dropped_logs = self.dropped_logs.saturating_add(other.dropped_logs);
    }

    /// Events queued now (for tests and wake decisions).
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.dropped_logs == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_beyond_the_cap_are_summarised_but_results_never_dropped() {
        let mut o = Outbox::default();
        for i in 0..MAX_PENDING_LOGS + 10 {
            o.log(LogLevel::Debug, format!("line {i}"));
        }
        o.push(HostEvent::PushStart(1));
        let ev = o.drain();
        assert_eq!(ev.len(), MAX_PENDING_LOGS + 2);
        assert!(ev.contains(&HostEvent::PushStart(1)));
        assert!(matches!(ev.last(), Some(HostEvent::Log(r)) if r.message.starts_with("10 log")));
        assert!(o.drain().is_empty());
    }
}
