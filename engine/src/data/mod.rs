//! The data plane: everything with bytes of media. Frames pushed by
//! firmware go through the channel's media pipeline into segments that are
//! uploaded *while they are recorded* (a streamed `PUT`, then a commit once
//! the segment closes), within the channel's budget `u32MaxGopSize`.
//!
//! - [`channel`]: one channel: recording runs, the segment queue and its
//!   uploads, overflow (drop to the next IDR, report the lost span),
//!   watermarks, idle pause, pre-record, events, dumps and backups.
//! - [`segbuf`]: the bytes of one segment until the cloud acknowledges it.
//! - [`prerecord`]: recent whole GOPs for events' pre-record.
//! - [`watermark`]: LOW/WARN/HIGH with hysteresis.
//! - [`event`]: one event with video (start, picture, stop, result).
//! - [`dumps`]: what is remembered of dumped files for `backup-upload`.
//! - [`names`]: segment ids, dump file names (and their parser), event keys.
//!
//! The control plane (`cs`) checks every call's arguments, the session and
//! the plan, then hands the call here with the channel's gate. Design and
//! memory bound: `docs/design/engine-data.md`.

pub mod channel;
pub mod dumps;
pub mod event;
pub mod names;
pub mod prerecord;
pub mod segbuf;
pub mod watermark;

use crate::cloud::Io;
use crate::cs::params::{InitParams, OptionalCallbacks};
use crate::cs::plans::Gate;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{BufferLevel, Channel, DumpState, LogLevel};
use crate::host::Host;
use crate::types::Frame;
use crate::types::PushGate;
use channel::{Chan, SavedChannel};
use serde::{Deserialize, Serialize};

/// An event call after the control plane's checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventCall {
    /// Event id 1..32.
    pub event_id: i32,
    /// Checked info text.
    pub info: String,
    /// Event time, UTC s (resolved from relative/absolute).
    pub event_utc_s: u64,
    /// Video start (start) or end (stop), UTC ms: a relative time counts
    /// back from the call's own millisecond, so a run dated from it (a
    /// pre-record firmware replays) is placed to the frame.
    pub stream_utc_ms: u64,
}

/// What an export carries of the media (`state.rs`;
/// docs/design/trap-restart.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Export {
    /// `export-checkpoint`: the open recording and the media produced since
    /// the last hand-over (none before the first).
    Checkpoint,
    /// `export-state`: all the buffered media and the open recording.
    HandOver,
}

/// A checkpoint's media to make whole on import: its `MJNL` section and
/// the `DATA` and `MDIA` sections of the hand-over before it, if the host
/// kept one.
pub struct Journal<'a> {
    /// `MJNL`.
    pub bytes: &'a [u8],
    /// The hand-over's `DATA` and `MDIA`.
    pub base: Option<(&'a [u8], &'a [u8])>,
}

/// A hand-over channel's segments by number, with their bytes.
type BaseSegments<'a> = Vec<(u64, &'a [u8])>;

/// Version of the `DATA` section this engine writes.
pub const DATA_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Saved {
    version: u32,
    channels: Vec<SavedChannel>,
}

/// The data plane of one `init`..`exit` session.
pub struct DataPlane<H: Host> {
    channels: Vec<Chan<H>>,
    callbacks: OptionalCallbacks,
}

impl<H: Host> DataPlane<H> {
    /// The data plane for parameters already checked by `init`; `boot`
    /// tells this session's segment ids from every other's.
    pub fn new(params: &InitParams, boot: u32) -> DataPlane<H> {
        DataPlane {
            channels: params
                .channels
                .iter()
                .map(|p| Chan::new(*p, params.callbacks, boot))
                .collect(),
            callbacks: params.callbacks,
        }
    }

    /// Which optional firmware callbacks exist.
    pub fn callbacks(&self) -> OptionalCallbacks {
        self.callbacks
    }

    fn channel(&mut self, ch: Channel) -> Result<&mut Chan<H>> {
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

    /// A channel's state, for tests and diagnostics.
    pub fn channel_state(&self, ch: Channel) -> Option<&Chan<H>> {
        self.channels.iter().find(|c| c.params.channel == ch)
    }

    /// A pushed frame on a channel whose plan allows recording.
    pub fn push(
        &mut self,
        io: &mut Io<'_, H>,
        ch: Channel,
        gate: Gate,
        f: &Frame<'_>,
    ) -> Result<()> {
        self.channel(ch)?.push(io, gate, f)
    }

    /// What a push on `ch` would refuse now (the plan allows recording).
    pub fn push_gate(&self, ch: Channel, gate: Gate) -> PushGate {
        self.channel_state(ch)
            .map_or_else(PushGate::default, |c| c.push_gate(gate))
    }

    /// `event-start` after the control plane's checks.
    pub fn event_start(
        &mut self,
        io: &mut Io<'_, H>,
        ch: Channel,
        gate: Gate,
        ev: &EventCall,
    ) -> Result<()> {
        self.channel(ch)?.event_start(io, gate, ev)
    }

    /// `event-stop` after the control plane's checks.
    pub fn event_stop(&mut self, io: &mut Io<'_, H>, ch: Channel, ev: &EventCall) -> Result<()> {
        self.channel(ch)?.event_stop(io, ev)
    }

    /// Whether events are open on a channel (firmware was asked to push).
    pub fn events_open(&self, ch: Channel) -> bool {
        self.channel_state(ch).is_some_and(Chan::events_open)
    }

    /// `backup-upload` after the control plane's checks (a bare name).
    pub fn backup_upload(
        &mut self,
        io: &mut Io<'_, H>,
        cloud_now_ms: u64,
        ch: Channel,
        state: DumpState,
        file: &str,
        data: &[u8],
    ) -> Result<()> {
        if names::parse_file_name(file).is_none_or(|n| n.channel != ch) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "backup-upload channel {ch}: {file:?} is not a file name the engine dumped for this channel"
                ),
            ));
        }
        self.channel(ch)?
            .backup_upload(io, cloud_now_ms, state, file, data)
    }

    /// A channel's plan changed: `None` = it may no longer record. Takes
    /// effect at the next push or tick.
    pub fn on_gate(&mut self, ch: Channel, gate: Option<Gate>) {
        if let Ok(c) = self.channel(ch) {
            c.set_gate(gate);
        }
    }

    /// `exit`: every channel closes its open segment at its last frame and
    /// stops its open events; what is pending goes on uploading as a drain
    /// (the engine polls it with firmware's callbacks muted).
    pub fn exit(&mut self, io: &mut Io<'_, H>) {
        for c in &mut self.channels {
            c.exit(io);
        }
    }

    /// Takes over the draining channels of `old` that this session records
    /// too: their pending segments, events and dumps continue here, within
    /// this session's budget. Channels this session does not have stay in
    /// `old`.
    pub fn adopt(&mut self, old: &mut DataPlane<H>) {
        for c in &mut self.channels {
            if let Some(i) = old
                .channels
                .iter()
                .position(|o| o.params.channel == c.params.channel)
            {
                c.adopt(old.channels.swap_remove(i));
            }
        }
    }

    /// Joins `other`'s channels to this one's (a drain gaining the channels
    /// of a session that exited; no channel is in both).
    pub fn absorb(&mut self, other: DataPlane<H>) {
        self.channels.extend(other.channels);
    }

    /// Drops channels with nothing left to upload or report; true when none
    /// is left.
    pub fn retain_busy(&mut self) -> bool {
        self.channels.retain(Chan::busy);
        self.channels.is_empty()
    }

    /// What the channels still hold: (segments, bytes), for logs.
    pub fn pending(&self) -> (usize, u64) {
        self.channels
            .iter()
            .fold((0, 0), |(n, b), c| (n + c.pending_segments(), b + c.used()))
    }

    /// Advances uploads; returns when it needs the next tick.
    pub fn poll(&mut self, io: &mut Io<'_, H>) -> Option<u64> {
        let mut wake: Option<u64> = None;
        for c in &mut self.channels {
            if let Some(t) = c.poll(io) {
                wake = Some(wake.map_or(t, |w| w.min(t)));
            }
        }
        wake
    }

    /// `buffer-levels`: every channel's buffer now.
    pub fn levels(&self, cloud_down: bool) -> Vec<BufferLevel> {
        self.channels
            .iter()
            .map(|c| BufferLevel {
                channel: c.params.channel,
                used: c.used(),
                backlog: c.backlog(cloud_down),
                budget: u64::from(c.params.max_gop_size),
            })
            .collect()
    }

    /// Data-plane state (JSON; see the design doc) for `mode`. Returns the
    /// `DATA` section and a writer of the media section (`MDIA` for a
    /// hand-over, `MJNL` for a checkpoint) with its length.
    pub fn export(&self, mode: Export, host: &H) -> (Vec<u8>, u64, impl FnOnce(&mut Vec<u8>) + '_) {
        let channels: Vec<SavedChannel> =
            self.channels.iter().map(|c| c.save(mode, host)).collect();
        let media_len = channels.iter().map(SavedChannel::media_len).sum();
        let s = Saved {
            version: DATA_VERSION,
            channels,
        };
        let json = serde_json::to_vec(&s).unwrap_or_default();
        let fill = move |out: &mut Vec<u8>| {
            for (c, saved) in self.channels.iter().zip(&s.channels) {
                c.write_media(saved, out);
            }
        };
        (json, media_len, fill)
    }

    /// Restores [`DataPlane::export`]'s output: `media` is a hand-over's
    /// `MDIA`; or `journal` a checkpoint's `MJNL`, made whole with `base`,
    /// the `DATA` and `MDIA` of the hand-over before it. Segments not
    /// acknowledged whose bytes did not travel are reported as failed at
    /// the next tick.
    pub fn import(
        &mut self,
        io: &mut Io<'_, H>,
        blob: &[u8],
        media: &[u8],
        journal: Option<Journal<'_>>,
    ) -> Result<()> {
        let mut s = parse_saved(blob)?;
        let joined;
        let mut media = media;
        if let Some(j) = journal {
            let mut journal = j.bytes;
            let mut segs: Vec<(Channel, BaseSegments<'_>)> = Vec::new();
            if let Some((base_data, mut base_media)) = j.base {
                for c in parse_saved(base_data)?.channels {
                    segs.push((c.channel, c.base_segments(&mut base_media)));
                }
            }
            let mut out = Vec::new();
            for c in &mut s.channels {
                let base = segs
                    .iter()
                    .find(|(ch, _)| *ch == c.channel)
                    .map_or(&[][..], |(_, b)| b.as_slice());
                c.join_journal(base, &mut journal, &mut out);
            }
            joined = out;
            media = &joined;
        }
        for sc in s.channels {
            let ch = sc.channel;
            let Ok(c) = self.channel(ch) else {
                let skip = usize::try_from(sc.media_len()).unwrap_or(usize::MAX);
                media = media.get(skip..).unwrap_or_default();
                continue;
            };
            let lost = c.restore(io, sc, &mut media)?;
            if !lost.is_empty() {
                io.out.log(
                    LogLevel::Warn,
                    format!(
                        "import-state: channel {ch}: {} segment(s) were not acknowledged before the restart and are reported failed",
                        lost.len()
                    ),
                );
            }
            c.queue_slices(lost);
        }
        Ok(())
    }
}

fn parse_saved(blob: &[u8]) -> Result<Saved> {
    serde_json::from_slice(blob).map_err(|e| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("import-state: the data-plane section is malformed: {e}"),
        )
    })
}
