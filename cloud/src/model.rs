//! The records the service stores and serves: plans, segments, events,
//! pictures and AI settings, with their rules (plan resolution per channel,
//! event status from the channel's report option).

use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Longest accepted segment, ms. The engine cuts at most 600 s plus a GOP;
/// the bound also limits how far back a time-range query must look.
pub const MAX_SEGMENT_MS: u64 = 15 * 60 * 1000;

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $($(#[$vm])* #[serde(rename = $s)] $v),+ }
        impl $name {
            /// The name used in SQL, JSON and on the command line.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
        }
        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok($name::$v),)+
                    _ => Err(format!(concat!("unknown ", stringify!($name), " `{}`"), s)),
                }
            }
        }
    };
}

string_enum! {
    /// What a plan lets a channel record (the C API's `iv_cs_type_e`).
    PlanType {
        /// No cloud recording.
        None = "none",
        /// Continuous recording.
        FullTime = "full-time",
        /// Only event video.
        Event = "event",
        /// Event video until the trial seconds are used up.
        Trial = "trial",
    }
}

impl PlanType {
    /// Whether this type stores video that `other` refuses: full-time
    /// stores everything; event and trial store event video, none nothing.
    pub fn records_more_than(self, other: PlanType) -> bool {
        let rank = |k: PlanType| match k {
            PlanType::None => 0,
            PlanType::Event | PlanType::Trial => 1,
            PlanType::FullTime => 2,
        };
        rank(self) > rank(other)
    }

    /// `iv_cs_type_e` value.
    pub fn c_value(self) -> i32 {
        match self {
            PlanType::None => 0,
            PlanType::FullTime => 1,
            PlanType::Event => 2,
            PlanType::Trial => 3,
        }
    }
}

string_enum! {
    /// State of an uploaded segment.
    SegmentState {
        /// The upload broke off; the bytes that arrived are stored.
        Partial = "partial",
        /// Every byte arrived; waiting for the device's commit.
        Received = "received",
        /// Committed with a matching digest; playable.
        Complete = "complete",
    }
}

string_enum! {
    /// What an event needs to count as finished (`iv_cs_event_report_opt_e`).
    ReportOpt {
        /// Video covering the event.
        Video = "video",
        /// A picture.
        Picture = "picture",
        /// Either.
        Either = "either",
    }
}

string_enum! {
    /// An event's outcome.
    EventStatus {
        /// Started, not yet stopped.
        Open = "open",
        /// Everything the report option requires arrived.
        Finished = "finished",
        /// Some of it arrived (video covering part of the event).
        Partial = "partial",
        /// Nothing required arrived.
        Failed = "failed",
    }
}

string_enum! {
    /// Where one device stands with one engine release: the last outcome
    /// it reported (docs/ref/protocol.md, "Engine releases").
    EngineStatus {
        /// The artifact is on the device, digest checked.
        Downloaded = "downloaded",
        /// The device refused the artifact (`kind`: malformed, untrusted or
        /// incompatible); retrying the same file cannot help.
        Refused = "refused",
        /// Download, load or swap failed for another reason; the old
        /// engine runs.
        Failed = "failed",
        /// The new engine serves, on probation.
        Swapped = "swapped",
        /// It passed probation.
        Passed = "passed",
        /// Probation failed: the device went back to its previous engine.
        RolledBack = "rolled-back",
    }
}

impl EngineStatus {
    /// An outcome after which the release is not offered to the device
    /// again (everything but `downloaded`, `failed`: those may be retried).
    pub fn is_final(self) -> bool {
        !matches!(self, EngineStatus::Downloaded | EngineStatus::Failed)
    }
}

/// Which devices a release is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Targeting {
    /// Exactly these devices.
    Devices(Vec<String>),
    /// Devices whose rollout hash is below this percentage (1-100); see
    /// `releases::in_rollout`.
    Percent(u32),
}

/// An engine release row: a signed artifact and who it is for.
#[derive(Clone, Debug, Serialize)]
pub struct ReleaseRow {
    /// Operator-chosen or generated id.
    pub id: String,
    /// Manifest `engine_version`.
    pub engine_version: String,
    /// Manifest `contract`.
    pub contract: String,
    /// Manifest `kind` (`wasm` or `precompiled`).
    pub kind: String,
    /// Manifest `target`.
    pub target: String,
    /// Manifest `key_id`.
    pub key_id: String,
    /// The signature was verified against the cloud's `engine_keys`
    /// (false: the cloud has no keys; devices still verify).
    pub signature_verified: bool,
    /// SHA-256 of the whole artifact file, hex.
    pub sha256: String,
    /// Artifact file length, bytes.
    pub size: u64,
    /// Who it is for.
    pub targeting: Targeting,
    /// When it was published, ms.
    pub created_ms: u64,
    /// When it was withdrawn, ms (none: offered).
    pub withdrawn_ms: Option<u64>,
    /// Object key of the artifact bytes (`engines/{sha256}`).
    #[serde(skip)]
    pub object_key: String,
}

/// One device's status for a release.
#[derive(Clone, Debug, Serialize)]
pub struct EngineStatusRow {
    /// Device.
    pub device: String,
    /// Last outcome reported.
    pub status: EngineStatus,
    /// For `refused`: malformed, untrusted or incompatible.
    pub kind: Option<String>,
    /// The device's message (a refusal's reason, a rollback's cause).
    pub message: Option<String>,
    /// When it was reported, ms.
    pub updated_ms: u64,
}

/// A plan row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Plan type.
    #[serde(rename = "type")]
    pub kind: PlanType,
    /// Retention, days.
    pub days: u32,
    /// Trial allowance, ms of event video.
    pub trial_ms: u64,
    /// Trial used so far, ms.
    pub trial_used_ms: u64,
    /// End of the plan, ms since 1970 (none: open-ended).
    pub expires_ms: Option<u64>,
    /// The type this row had before the last `plan set` that changed it,
    /// and when (service ms): what video in flight at the change was
    /// recorded under. Kept by the store, never set by writers.
    #[serde(skip)]
    pub replaced: Option<(PlanType, u64)>,
}

/// A segment that started at most this long after its channel's plan ended
/// (device clock against the service's, ms) was recorded under it: the
/// signature freshness window, within which the protocol deems clocks in
/// step.
pub const PLAN_END_SLACK_MS: u64 = 300_000;

impl Plan {
    /// No plan.
    pub fn none() -> Plan {
        Plan {
            kind: PlanType::None,
            days: 0,
            trial_ms: 0,
            trial_used_ms: 0,
            expires_ms: None,
            replaced: None,
        }
    }

    /// The plan a segment that started at `start_ms` (device clock) and
    /// arrives at `now_ms` is judged by: the plan in force, unless the plan
    /// it was recorded under ended (expired, or was replaced by a type that
    /// records less) before the segment started plus [`PLAN_END_SLACK_MS`]
    /// and at most `grace_ms` ago. Video in flight when a plan ends (the
    /// open segment, the upload buffer, a backup) was recorded under it.
    pub fn for_segment(&self, now_ms: u64, start_ms: u64, grace_ms: u64) -> PlanType {
        let now = self.effective(now_ms);
        let recorded_under = |kind: PlanType, ended_ms: u64| {
            (now_ms <= ended_ms.saturating_add(grace_ms)
                && start_ms < ended_ms.saturating_add(PLAN_END_SLACK_MS)
                && kind.records_more_than(now))
            .then_some(kind)
        };
        let expired = match self.expires_ms {
            Some(t) if t <= now_ms => recorded_under(self.kind, t),
            _ => None,
        };
        expired
            .or_else(|| {
                self.replaced
                    .and_then(|(kind, at)| recorded_under(kind, at))
            })
            .unwrap_or(now)
    }

    /// Trial time left, ms.
    pub fn trial_left_ms(&self) -> u64 {
        self.trial_ms.saturating_sub(self.trial_used_ms)
    }

    /// The plan in force at `now_ms`: an expired plan is no plan (its
    /// retention days still apply to what was stored).
    pub fn effective(&self, now_ms: u64) -> PlanType {
        match self.expires_ms {
            Some(t) if t <= now_ms => PlanType::None,
            _ => self.kind,
        }
    }
}

/// The plan row that governs `channel`: its own, else the device default.
pub fn plan_for(rows: &[(Option<u32>, Plan)], channel: u32) -> Option<&Plan> {
    rows.iter()
        .find(|(c, _)| *c == Some(channel))
        .or_else(|| rows.iter().find(|(c, _)| c.is_none()))
        .map(|(_, p)| p)
}

/// A segment row.
#[derive(Clone, Debug, Serialize)]
pub struct SegmentRow {
    /// Owner.
    pub device_id: String,
    /// Device-chosen id, unique per device.
    pub segment_id: String,
    /// Channel 0-4.
    pub channel: u32,
    /// Upload state.
    pub state: SegmentState,
    /// `ts` or `fmp4`.
    pub container: String,
    /// RFC 6381 codec string.
    pub codec: String,
    /// Recorded for an event.
    pub event: bool,
    /// Arrived as a backup upload.
    pub backup: bool,
    /// Its timestamps or encoding parameters do not continue the previous
    /// segment's (`discontinuity=1` on upload: a new recording run, a
    /// resolution change).
    pub discontinuity: bool,
    /// UTC of the first frame, ms.
    pub utc_start_ms: u64,
    /// UTC of the segment end, ms (known at commit).
    pub utc_end_ms: Option<u64>,
    /// PTS of the first frame, ms.
    pub pts_start_ms: u64,
    /// PTS of the end, ms.
    pub pts_end_ms: Option<u64>,
    /// Frame sequence number of the first frame.
    pub seq_start: u32,
    /// Sequence number of the last frame.
    pub seq_end: Option<u32>,
    /// Stored bytes.
    pub bytes: u64,
    /// fMP4: bytes of the init part (ftyp+moov) at the start; TS: 0.
    pub init_bytes: u32,
    /// Video frames.
    pub video_frames: Option<u32>,
    /// Audio frames.
    pub audio_frames: Option<u32>,
    /// SHA-256 of the stored bytes, hex.
    pub sha256: String,
    /// Object key.
    #[serde(skip)]
    pub object_key: String,
    /// When the row was written, ms.
    pub uploaded_ms: u64,
}

/// A complete segment as a listing (an HLS playlist) needs it: the few
/// columns `Repo::segment_entries` fetches in bulk.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct SegmentEntry {
    /// Device-chosen id.
    pub segment_id: String,
    /// `ts` or `fmp4`.
    pub container: String,
    /// RFC 6381 codec string.
    pub codec: String,
    /// UTC of the first frame, ms.
    pub utc_start_ms: u64,
    /// UTC of the segment end, ms (complete segments have one).
    pub utc_end_ms: u64,
    /// Stored bytes.
    pub bytes: u64,
    /// fMP4: bytes of the init part at the start; TS: 0.
    pub init_bytes: u32,
    /// Marked by the device (an `EXT-X-DISCONTINUITY` before it).
    pub discontinuity: bool,
}

/// An event row.
#[derive(Clone, Debug, Serialize)]
pub struct EventRow {
    /// Owner.
    pub device_id: String,
    /// Device-chosen key, unique per device.
    pub event_key: String,
    /// Channel 0-4.
    pub channel: u32,
    /// Event id 1-32.
    pub event_id: u32,
    /// Free text, printable ASCII, at most 128 bytes.
    pub info: String,
    /// What the event needs.
    pub report_opt: ReportOpt,
    /// Start, ms.
    pub utc_start_ms: u64,
    /// End, ms (none while open).
    pub utc_end_ms: Option<u64>,
    /// Outcome.
    pub status: EventStatus,
    /// Thumbnail picture.
    pub picture_id: Option<String>,
    /// When the row was written, ms.
    pub created_ms: u64,
}

/// A picture row.
#[derive(Clone, Debug, Serialize)]
pub struct PictureRow {
    /// Owner.
    pub device_id: String,
    /// Device-chosen id.
    pub picture_id: String,
    /// Channel 0-4.
    pub channel: u32,
    /// Capture time, ms.
    pub utc_ms: u64,
    /// Event it belongs to.
    pub event_key: Option<String>,
    /// `image/jpeg` or `image/png`.
    pub mime: String,
    /// Size.
    pub bytes: u64,
    /// Object key.
    #[serde(skip)]
    pub object_key: String,
    /// When the row was written, ms.
    pub uploaded_ms: u64,
}

/// An AI setting for (channel, event id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiSetting {
    /// Channel 0-4.
    pub channel: u32,
    /// Event id 1-32.
    pub event_id: u32,
    /// `iv_cs_ai_type_e` bit set.
    pub ai_type: u32,
    /// Opaque arguments, at most 1 KiB.
    #[serde(with = "b64")]
    pub args: Vec<u8>,
}

mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

/// Status of an ended event from what arrived: `covered_ms` of its span has
/// video, and whether a picture arrived.
pub fn event_status(opt: ReportOpt, span_ms: u64, covered_ms: u64, picture: bool) -> EventStatus {
    // A point event (span 0) is covered by any overlapping segment.
    let full = if span_ms == 0 {
        covered_ms > 0
    } else {
        covered_ms >= span_ms
    };
    let some = covered_ms > 0;
    let video = if full {
        EventStatus::Finished
    } else if some {
        EventStatus::Partial
    } else {
        EventStatus::Failed
    };
    match opt {
        ReportOpt::Video => video,
        ReportOpt::Picture if picture => EventStatus::Finished,
        ReportOpt::Picture => EventStatus::Failed,
        ReportOpt::Either if picture => EventStatus::Finished,
        ReportOpt::Either => video,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_resolution_prefers_the_channel_row() {
        let mut p = Plan::none();
        p.kind = PlanType::Event;
        let mut q = Plan::none();
        q.kind = PlanType::FullTime;
        let rows = vec![(None, p.clone()), (Some(2), q.clone())];
        assert_eq!(plan_for(&rows, 2), Some(&q));
        assert_eq!(plan_for(&rows, 0), Some(&p));
        assert_eq!(plan_for(&[], 0), None);
    }

    #[test]
    fn expiry_ends_the_plan() {
        let mut p = Plan::none();
        p.kind = PlanType::FullTime;
        p.expires_ms = Some(1000);
        assert_eq!(p.effective(999), PlanType::FullTime);
        assert_eq!(p.effective(1000), PlanType::None);
    }

    /// Video in flight when a plan ends was recorded under it: taken up to
    /// the grace after the end if it started before the end (plus the
    /// clock slack); video started later, or arriving later, is not.
    #[test]
    fn a_segment_is_judged_by_the_plan_it_was_recorded_under() {
        const GRACE: u64 = 1_800_000;
        let end = 10_000_000;
        let mut cancelled = Plan::none();
        cancelled.replaced = Some((PlanType::FullTime, end));
        assert_eq!(
            cancelled.for_segment(end + 5_000, end - 8_000, GRACE),
            PlanType::FullTime
        );
        assert_eq!(
            cancelled.for_segment(end + GRACE, end - 8_000, GRACE),
            PlanType::FullTime
        );
        assert_eq!(
            cancelled.for_segment(end + GRACE + 1, end - 8_000, GRACE),
            PlanType::None
        );
        let late_start = end + PLAN_END_SLACK_MS;
        assert_eq!(
            cancelled.for_segment(end + 5_000, late_start, GRACE),
            PlanType::None
        );
        // A downgrade keeps what the new plan allows and what the old one
        // allowed for video in flight; an upgrade is the new plan.
        let mut event = Plan::none();
        event.kind = PlanType::Event;
        event.replaced = Some((PlanType::FullTime, end));
        assert_eq!(
            event.for_segment(end + 1, end - 1, GRACE),
            PlanType::FullTime
        );
        let mut full = Plan::none();
        full.kind = PlanType::FullTime;
        full.replaced = Some((PlanType::Event, end));
        assert_eq!(
            full.for_segment(end + 1, end - 1, GRACE),
            PlanType::FullTime
        );
        // Expiry ends a plan the same way.
        let mut expiring = Plan::none();
        expiring.kind = PlanType::Event;
        expiring.expires_ms = Some(end);
        assert_eq!(
            expiring.for_segment(end + 1, end - 1, GRACE),
            PlanType::Event
        );
        assert_eq!(
            expiring.for_segment(end + 1, late_start, GRACE),
            PlanType::None
        );
    }

    #[test]
    fn status_follows_the_report_option() {
        use EventStatus::*;
        assert_eq!(
            event_status(ReportOpt::Video, 10_000, 10_000, false),
            Finished
        );
        assert_eq!(event_status(ReportOpt::Video, 10_000, 4_000, true), Partial);
        assert_eq!(event_status(ReportOpt::Video, 10_000, 0, true), Failed);
        assert_eq!(
            event_status(ReportOpt::Picture, 10_000, 10_000, false),
            Failed
        );
        assert_eq!(event_status(ReportOpt::Picture, 10_000, 0, true), Finished);
        assert_eq!(event_status(ReportOpt::Either, 10_000, 0, true), Finished);
        assert_eq!(event_status(ReportOpt::Either, 10_000, 5, false), Partial);
        assert_eq!(event_status(ReportOpt::Either, 0, 0, false), Failed);
        assert_eq!(event_status(ReportOpt::Video, 0, 1, false), Finished);
    }
}
