//! The seam between the control plane and the data plane.
//!
//! The control plane (this crate's `cs` module) owns init, plans, the
//! change feed, operations and reachability. It checks every data-plane
//! call's arguments and the channel's plan, then hands the call here with
//! the channel's [`Gate`]. The data plane owns everything with bytes:
//! pushed frames, the per-channel buffer budget (`u32MaxGopSize`), streamed
//! segment uploads and commits, watermarks, upload-state notifies, dump and
//! backup, events with video and pre-record.
//!
//! **This engine build has no upload path yet.** Frames still go through
//! the channel's real media pipeline, so malformed frames get their precise
//! error (-602, -611, -606), but an accepted frame cannot be stored, so
//! `push` answers -613 (`IV_ERR_CS_HTTP_DATA_FAIL`) rather than pretend:
//! firmware then drops P frames until the next I frame, as it does for any
//! refusal. Event calls and backup uploads answer -613 the same way.
//!
//! What the data plane gets from the engine, per tick, is [`Io`] (host,
//! signing client with its link tracker, outbox), and per call the gate.
//! Its state goes into `export-state` as a chunk of its own (see
//! `state.rs`), so it can grow its format without touching the control
//! plane's.

use crate::cloud::Io;
use crate::cs::params::{ChannelParams, InitParams, OptionalCallbacks};
use crate::cs::plans::Gate;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Channel, DumpState};
use crate::host::Host;
use crate::pipeline::Pipeline;
use crate::types::Frame;

/// An event call after the control plane's checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventCall {
    /// Event id 1..32.
    pub event_id: i32,
    /// Checked info text.
    pub info: String,
    /// Event time, UTC s (resolved from relative/absolute).
    pub event_utc_s: u64,
    /// Video start (start) or end (stop), UTC s.
    pub stream_utc_s: u64,
}

struct DataChannel {
    params: ChannelParams,
    /// Built at the first frame, whose UTC starts its timeline.
    pipeline: Option<Pipeline>,
}

/// The data plane of one `init`..`exit` session.
pub struct DataPlane {
    channels: Vec<DataChannel>,
    /// Which optional firmware callbacks exist (dump, notify, results).
    callbacks: OptionalCallbacks,
}

fn no_upload_path(what: &str) -> Error {
    Error::new(
        ErrorKind::UploadFailed,
        format!(
            "{what}: engine {} has no upload path yet (data plane not built); nothing was stored",
            crate::ENGINE_VERSION
        ),
    )
}

impl DataPlane {
    /// The data plane for parameters already checked by `init`.
    pub fn new(params: &InitParams) -> DataPlane {
        DataPlane {
            channels: params
                .channels
                .iter()
                .map(|p| DataChannel {
                    params: *p,
                    pipeline: None,
                })
                .collect(),
            callbacks: params.callbacks,
        }
    }

    /// Which optional firmware callbacks exist.
    pub fn callbacks(&self) -> OptionalCallbacks {
        self.callbacks
    }

    fn channel(&mut self, ch: Channel) -> Result<&mut DataChannel> {
        self.channels
            .iter_mut()
            .find(|c| c.params.channel == ch)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidArgument,
                    format!("channel {ch} was not initialised"),
                )
            })
    }

    /// A pushed frame on a channel whose plan allows recording.
    pub fn push(&mut self, ch: Channel, _gate: Gate, f: &Frame<'_>, now_utc_ms: u64) -> Result<()> {
        let c = self.channel(ch)?;
        let pipeline = match &mut c.pipeline {
            Some(p) => p,
            slot => slot.insert(Pipeline::new(c.params.pipeline_config(now_utc_ms))?),
        };
        let what = format!("channel {ch}");
        pipeline.push(f).map_err(|e| e.context(&what))?;
        // Output is dropped only together with an error for its frame.
        pipeline.take_output();
        Err(no_upload_path(&format!(
            "channel {ch} seq {} pts {}",
            f.seq, f.pts_ms
        )))
    }

    /// `event-start` after the control plane's checks.
    pub fn event_start(&mut self, ch: Channel, _gate: Gate, ev: &EventCall) -> Result<()> {
        self.channel(ch)?;
        Err(no_upload_path(&format!(
            "channel {ch} event {} start",
            ev.event_id
        )))
    }

    /// `event-stop` after the control plane's checks.
    pub fn event_stop(&mut self, ch: Channel, ev: &EventCall) -> Result<()> {
        self.channel(ch)?;
        Err(no_upload_path(&format!(
            "channel {ch} event {} stop",
            ev.event_id
        )))
    }

    /// `backup-upload` after the control plane's checks.
    pub fn backup_upload(
        &mut self,
        ch: Channel,
        _state: DumpState,
        file: &str,
        _data: &[u8],
    ) -> Result<()> {
        self.channel(ch)?;
        Err(no_upload_path(&format!("channel {ch} backup {file}")))
    }

    /// A channel's plan changed: `None` = it may no longer record.
    pub fn on_gate(&mut self, _ch: Channel, _gate: Option<Gate>) {}

    /// Advances uploads; returns when it needs the next tick.
    pub fn poll<H: Host>(&mut self, _io: &mut Io<'_, H>) -> Option<u64> {
        None
    }

    /// Data-plane state for `export-state` (empty in this build).
    pub fn export(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Restores [`DataPlane::export`]'s output.
    pub fn import(&mut self, _blob: &[u8]) -> Result<()> {
        Ok(())
    }
}
