//! The device-protocol endpoints the control plane uses, as request
//! [`Spec`]s, and the JSON answers it reads (docs/ref/protocol.md). Only
//! fields the engine uses are declared; unknown fields are ignored so the
//! cloud can add fields without breaking deployed engines.

use super::request::{Body, Spec};
use crate::events::{Channel, PlanType};
use crate::host::Method;
use serde::Deserialize;
use serde_json::json;

/// Longest change-feed wait the engine asks for, seconds (the cloud caps it
/// at 60; 25 stays below common proxy idle timeouts).
pub const FEED_WAIT_S: u32 = 25;

/// `GET /v1/device/plan`.
pub fn plan() -> Spec {
    Spec::new(Method::Get, "/v1/device/plan".into())
}

/// `GET /v1/device/changes?since=REV&wait_s=N`: a long poll of `wait_s`
/// seconds (0: answer at once, used to probe after a failure).
pub fn changes(since: u64, wait_s: u32) -> Spec {
    Spec {
        long_poll_ms: wait_s.saturating_mul(1000),
        ..Spec::new(
            Method::Get,
            format!("/v1/device/changes?since={since}&wait_s={wait_s}"),
        )
    }
}

/// `PUT /v1/device/ai/{channel}/{event_id}` (no arguments: the spec's
/// `args` is unused).
pub fn ai_put(channel: Channel, event_id: i32, ai_type: u32) -> Spec {
    Spec::json(
        Method::Put,
        format!("/v1/device/ai/{channel}/{event_id}"),
        &json!({ "ai_type": ai_type, "args": "" }),
    )
}

/// `GET /v1/device/ai/{channel}/{event_id}`.
pub fn ai_get(channel: Channel, event_id: i32) -> Spec {
    Spec::new(Method::Get, format!("/v1/device/ai/{channel}/{event_id}"))
}

/// `DELETE /v1/device/resources`.
pub fn destroy() -> Spec {
    Spec::new(Method::Delete, "/v1/device/resources".into())
}

/// `report_opt` of an event as the protocol spells it.
pub fn report_opt_name(opt: crate::cs::params::EventReportOpt) -> &'static str {
    use crate::cs::params::EventReportOpt as O;
    match opt {
        O::VideoRequired => "video",
        O::PictureRequired => "picture",
        O::VideoOrPicture => "either",
    }
}

/// `POST /v1/device/events/{key}/report`: a direct (point) event.
pub fn event_report(
    key: &str,
    channel: Channel,
    event_id: i32,
    utc_ms: u64,
    info: &str,
    report_opt: crate::cs::params::EventReportOpt,
) -> Spec {
    Spec::json(
        Method::Post,
        format!("/v1/device/events/{key}/report"),
        &json!({
            "channel": channel,
            "event_id": event_id,
            "utc_ms": utc_ms,
            "info": info,
            "report_opt": report_opt_name(report_opt),
        }),
    )
}

/// `PUT /v1/device/pictures/{id}?channel&utc_ms&event_key` with a picture
/// attached by handle.
pub fn picture_put(
    id: &str,
    channel: Channel,
    utc_ms: u64,
    event_key: &str,
    len: u32,
    sha256: String,
) -> Spec {
    Spec {
        body: Body::Picture { len, sha256 },
        ..Spec::new(
            Method::Put,
            format!(
                "/v1/device/pictures/{id}?channel={channel}&utc_ms={utc_ms}&event_key={event_key}"
            ),
        )
    }
}

/// One channel of a plan view.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct ChannelView {
    /// Channel 0-4.
    pub channel: u32,
    /// `none|full-time|event|trial`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// `iv_cs_type_e` value, used when `type` is unknown.
    #[serde(default)]
    pub c_type: i32,
    /// `cs_switch`.
    #[serde(default)]
    pub enabled: bool,
    /// Retention, days.
    #[serde(default)]
    pub days: u32,
    /// Trial seconds left.
    #[serde(default)]
    pub trial_seconds_left: u64,
    /// End of the plan, cloud ms since 1970.
    #[serde(default)]
    pub expires_ms: Option<u64>,
}

impl ChannelView {
    /// The plan type; an unknown name falls back to `c_type`, and an
    /// unknown value to none (never record on a plan we do not understand).
    pub fn plan_type(&self) -> PlanType {
        match self.kind.as_str() {
            "none" => PlanType::None,
            "full-time" => PlanType::FullTime,
            "event" => PlanType::Event,
            "trial" => PlanType::FreeTrial,
            _ => match self.c_type {
                1 => PlanType::FullTime,
                2 => PlanType::Event,
                3 => PlanType::FreeTrial,
                _ => PlanType::None,
            },
        }
    }
}

/// An AI setting as the cloud stores it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct AiView {
    /// Channel.
    pub channel: u32,
    /// Event id.
    pub event_id: u32,
    /// `iv_cs_ai_type_e` bits.
    pub ai_type: u32,
}

/// What `/plan` and `/changes` answer.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct PlanView {
    /// The device's change revision.
    pub revision: u64,
    /// Whether the revision passed `since` (change feed).
    #[serde(default)]
    pub changed: bool,
    /// Cloud time of the answer, ms.
    #[serde(default)]
    pub server_time_ms: u64,
    /// Per channel.
    #[serde(default)]
    pub channels: Vec<ChannelView>,
    /// AI settings.
    #[serde(default)]
    pub ai: Vec<AiView>,
    /// The engine release offered to this device, if any. Kept as JSON
    /// and checked by `cs::offer`: a malformed offer is logged and
    /// ignored, never a reason to refuse the plans beside it.
    #[serde(default)]
    pub engine: Option<serde_json::Value>,
}

/// What `GET/PUT /v1/device/ai/...` answer.
#[derive(Clone, Debug, Deserialize)]
pub struct AiAnswer {
    /// The setting.
    pub setting: AiView,
}

// ---- data plane ------------------------------------------------------------

/// `PUT /v1/device/segments/{id}?{query}` with a body streamed while the
/// segment is recorded (`STREAMING`, chunked, `expect: 100-continue`).
pub fn segment_put(id: &str, query: &str) -> Spec {
    Spec {
        body: Body::Stream {
            len: None,
            sha256: None,
        },
        expect_continue: true,
        ..Spec::new(Method::Put, format!("/v1/device/segments/{id}?{query}"))
    }
}

/// `PUT /v1/device/segments/{id}?{query}&backup=1`: a one-shot upload of
/// a dumped segment, its length and digest known before the body.
pub fn backup_put(id: &str, query: &str, len: u64, sha256: String) -> Spec {
    Spec {
        body: Body::Stream {
            len: Some(len),
            sha256: Some(sha256),
        },
        expect_continue: true,
        ..Spec::new(
            Method::Put,
            format!("/v1/device/segments/{id}?{query}&backup=1"),
        )
    }
}

/// `POST /v1/device/segments/{id}/commit`.
pub fn segment_commit(id: &str, body: &serde_json::Value) -> Spec {
    Spec::json(
        Method::Post,
        format!("/v1/device/segments/{id}/commit"),
        body,
    )
}

/// `PUT /v1/device/events/{key}`: an event with video starts.
pub fn event_put(
    key: &str,
    channel: Channel,
    event_id: i32,
    utc_start_ms: u64,
    info: &str,
    report_opt: crate::cs::params::EventReportOpt,
) -> Spec {
    Spec::json(
        Method::Put,
        format!("/v1/device/events/{key}"),
        &json!({
            "channel": channel,
            "event_id": event_id,
            "utc_start_ms": utc_start_ms,
            "info": info,
            "report_opt": report_opt_name(report_opt),
        }),
    )
}

/// `POST /v1/device/events/{key}/stop`.
pub fn event_stop(key: &str, utc_end_ms: u64) -> Spec {
    Spec::json(
        Method::Post,
        format!("/v1/device/events/{key}/stop"),
        &json!({ "utc_end_ms": utc_end_ms }),
    )
}

/// What a segment `PUT` or commit answers.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct SegmentAnswer {
    /// `partial|received|complete`.
    #[serde(default)]
    pub state: String,
    /// Bytes stored.
    #[serde(default)]
    pub bytes: u64,
    /// Their SHA-256.
    #[serde(default)]
    pub sha256: String,
    /// The segment was complete already (the body was not read).
    #[serde(default)]
    pub duplicate: bool,
}

/// What an event stop answers.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct EventStatus {
    /// `open|finished|partial|failed`.
    #[serde(default)]
    pub status: String,
}
