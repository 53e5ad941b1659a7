//! One channel of the data plane: recording runs, the segment queue and its
//! uploads, the budget, overflow, watermarks, idle pause, pre-record,
//! events with video, dumps and backups. See `docs/design/engine-data.md`.

use super::dumps::{DumpRecord, Dumps};
use super::event::{Event, EventMeta};
use super::names;
use super::prerecord::{Held, PreRecord};
use super::segbuf::{SavedTail, SegBuf};
use super::watermark::{Band, Watermarks};
use super::{EventCall, Export};
use crate::bail;
use crate::cloud::Io;
use crate::cloud::api;
use crate::cloud::request::{Call, CallError, Failure, Policy, SavedCall, Source};
use crate::cloud::retry::MAX_DELAY_MS;
use crate::cs::params::{ChannelParams, OptionalCallbacks};
use crate::cs::plans::Gate;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{
    Channel, DumpChunk, DumpState, HostEvent, LogLevel, Notify, NotifyKind, UploadSlice,
    UploadState,
};
use crate::host::Host;
use crate::pipeline::{MAX_FRAME_GAP_MS, Output, Pipeline, SegmentInfo};
use crate::pts_clock::PtsClock;
use crate::types::{Frame, PushGate, StreamKind};
use ivcs_media::video::is_key;
use serde_json::json;
use std::cell::Cell;
use std::collections::VecDeque;

/// A channel without frames for this long closes its segment and pauses.
pub const IDLE_PAUSE_MS: u64 = 120_000;

/// The cloud's backup window after a segment's end, ms.
pub const BACKUP_WINDOW_MS: u64 = 1_800_000;

/// Bytes a backup upload may queue ahead of the network (outside the
/// channel's budget: firmware paces backups, e.g. 8 KB every 100 ms).
pub const BACKUP_QUEUE_BYTES: u64 = 256 << 10;

/// Ids of acknowledged segments remembered per channel (state, tests).
pub const ACKED_KEPT: usize = 64;

/// Events (open or finishing) per channel.
pub const MAX_EVENTS: usize = 64;

/// Frames pushed this much later than their capture (a replayed
/// pre-record) keep the recording going past the last event's stop until
/// they reach its stop time.
pub const TAIL_MIN_LAG_MS: u64 = 1_000;

/// How long past the lag a tail waits for frames that do not come.
pub const TAIL_GRACE_MS: u64 = 2_000;

/// An event set's stop waiting for lagging frames to reach it.
#[derive(Clone, Copy, Debug)]
struct Tail {
    /// Frames captured before this UTC ms still belong to the events.
    until_utc: u64,
    /// Clock UTC ms at which the tail ends without them.
    deadline_utc: u64,
}

/// `through_seg` of an event whose video ends with a tail: set when the
/// tail ends.
const THROUGH_TAIL: u64 = u64::MAX;

/// Muxed size a frame of `n` bytes may take at most (PES/TS packet or
/// moof overhead, segment headers).
fn muxed_estimate(n: usize) -> u64 {
    let n = n as u64;
    n + n / 16 + 4096
}

enum Up<X> {
    /// Waiting for the bodies before it.
    Queued,
    /// The streamed `PUT`.
    Put(Call<X>),
    /// The commit.
    Commit(Call<X>),
    /// Acknowledged or failed for good.
    Over,
}

struct Seg<X> {
    n: u64,
    id: String,
    start: SegmentInfo,
    end: Option<SegmentInfo>,
    event: bool,
    last_video_pts: u64,
    buf: SegBuf,
    up: Up<X>,
    /// Why the upload failed for good.
    failed: Option<String>,
    acked: bool,
    /// Answers that did not match what was sent (the body broke off).
    mismatches: u8,
    /// Bytes of it the last hand-over carried: a checkpoint's journal
    /// carries the rest (docs/design/trap-restart.md).
    based: Cell<Option<u64>>,
}

impl<X> Seg<X> {
    fn resolved(&self) -> bool {
        self.end.is_some() && (self.acked || self.failed.is_some())
    }

    /// Bytes the cloud already has from the attempt in flight.
    fn handed_over(&self) -> u64 {
        match &self.up {
            Up::Put(c) => c.body_written(),
            Up::Commit(_) | Up::Over => u64::MAX,
            Up::Queued => 0,
        }
    }

    /// Where the upload stands, for a hand-over.
    fn saved_up<H: Host<Exchange = X>>(&self, host: &H) -> SavedUp {
        match &self.up {
            Up::Put(c) => c.save(host).map_or(SavedUp::Queued, SavedUp::Put),
            Up::Commit(_) => SavedUp::Commit,
            Up::Queued | Up::Over => SavedUp::Queued,
        }
    }

    fn saved(&self, len: u64, from: u64, up: SavedUp) -> SavedSeg {
        SavedSeg {
            n: self.n,
            id: self.id.clone(),
            start: self.start.clone(),
            end: self.end.clone(),
            event: self.event,
            last_video_pts: self.last_video_pts,
            len,
            from,
            up,
        }
    }

    fn body_done(&self) -> bool {
        match &self.up {
            Up::Put(c) => c.body_written() == u64::MAX,
            Up::Queued => false,
            Up::Commit(_) | Up::Over => true,
        }
    }

    fn slice(&self) -> UploadSlice {
        let end = self.end.as_ref().unwrap_or(&self.start);
        let total = u32::try_from(self.buf.produced()).unwrap_or(u32::MAX);
        UploadSlice {
            utc_start_s: self.start.utc_start_ms / 1000,
            utc_end_s: end.utc_end_ms.max(self.start.utc_start_ms) / 1000,
            pts_start_ms: self.start.pts_start_ms,
            pts_end_ms: self.last_video_pts,
            seq_start: self.start.seq_start,
            seq_end: end.seq_end,
            upload_size: if self.acked { total } else { 0 },
            total_size: total,
            state: if self.acked {
                UploadState::Ok
            } else {
                UploadState::Err
            },
        }
    }
}

/// Frames dropped after an overflow, until the next IDR that fits.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Lost {
    utc_start_ms: u64,
    utc_end_ms: u64,
    pts_start_ms: u64,
    pts_end_ms: u64,
    seq_start: u32,
    seq_end: u32,
    bytes: u64,
    frames: u32,
}

impl Lost {
    /// A span starting at `f`. Seq ranges count video packs: a span that
    /// starts with audio starts after `last_video_seq`.
    fn new(f: &Frame<'_>, utc: u64, last_video_seq: Option<u32>) -> Lost {
        let seq = match f.kind {
            StreamKind::Video => f.seq,
            StreamKind::Audio => last_video_seq.map_or(0, |s| s.wrapping_add(1)),
        };
        Lost {
            utc_start_ms: utc,
            utc_end_ms: utc,
            pts_start_ms: f.pts_ms,
            pts_end_ms: f.pts_ms,
            seq_start: seq,
            seq_end: seq,
            bytes: 0,
            frames: 0,
        }
    }

    fn add(&mut self, f: &Frame<'_>, utc: u64) {
        self.bytes = self.bytes.saturating_add(f.data.len() as u64);
        self.frames = self.frames.saturating_add(1);
        self.utc_end_ms = utc;
        if f.kind == StreamKind::Video {
            self.pts_end_ms = self.pts_end_ms.max(f.pts_ms);
            self.seq_end = f.seq;
        }
    }
}

/// A recording run: one pipeline over frames that follow each other.
#[derive(serde::Serialize, serde::Deserialize)]
struct Run {
    pipeline: Pipeline,
    last_video_pts: Option<u64>,
}

/// A backup upload in progress.
struct Backup<X> {
    rec: DumpRecord,
    buf: SegBuf,
    call: Call<X>,
    outcome: Option<Result<()>>,
}

/// What survives `export-state` of a channel.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct SavedChannel {
    /// Channel.
    pub channel: Channel,
    /// Next segment number.
    pub next_seg: u64,
    /// Next event number.
    pub next_event: u64,
    /// Last video frame accepted: (pts ms, seq, utc ms).
    pub last_video: Option<(u64, u32, u64)>,
    /// Recently acknowledged segment ids.
    pub acked: Vec<String>,
    /// Dumped segments (for backup).
    pub dumps: Dumps,
    /// Segments not acknowledged at export (their bytes are not kept).
    pub unacked: Vec<UploadSlice>,
    /// Events not finished.
    pub events: Vec<EventMeta>,
    /// The watermark band firmware was last told (absent in older state:
    /// none).
    #[serde(default)]
    pub watermark: Band,
    /// What the channel's PTS turned out to mean (absent in older state:
    /// decided again).
    #[serde(default)]
    pub pts: PtsClock,
    /// A hand-over's open recording and buffered media, whose bytes follow
    /// in the `MDIA` section; or a checkpoint's, with the bytes since the
    /// last hand-over in `MJNL` (`state.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media: Option<SavedMedia>,
}

/// What a hand-over adds to a channel's state.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct SavedMedia {
    /// The recording run, if its open segment travels too.
    #[serde(default)]
    run: Option<serde_json::Value>,
    /// Segments not acknowledged whose bytes are all kept, in queue order.
    segs: Vec<SavedSeg>,
    /// Segments whose first bytes were sent and released, with an upload
    /// in flight that the next engine adopts (contract 0.4.0; an engine
    /// that does not know them reports them failed, as `unacked` lists
    /// them).
    #[serde(default)]
    partial: Vec<SavedPartial>,
    /// Pre-record frames, oldest first.
    ring: Vec<SavedHeld>,
    dropping: Option<Lost>,
    /// `through_seg` of each event in `events`.
    through: Vec<u64>,
}

/// A buffered segment; its `len` bytes are in `MDIA`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct SavedSeg {
    n: u64,
    id: String,
    start: SegmentInfo,
    end: Option<SegmentInfo>,
    event: bool,
    last_video_pts: u64,
    len: u64,
    /// In a checkpoint's journal: the bytes before this offset are in the
    /// last hand-over, the rest (`len - from`) in `MJNL`. 0 in a hand-over.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(super) from: u64,
    /// Where its upload stands (absent in older state: start again).
    #[serde(default)]
    up: SavedUp,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// A segment whose first bytes were released; its `seg.len` kept bytes are
/// in `MDIA`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct SavedPartial {
    seg: SavedSeg,
    tail: SavedTail,
}

/// Where a carried segment's upload stands.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
enum SavedUp {
    /// Not started, or between attempts: the next engine starts it.
    #[default]
    Queued,
    /// The body is going out over an exchange the next engine adopts.
    Put(SavedCall),
    /// The body is stored; the commit is sent again (it is idempotent).
    Commit,
}

/// A pre-record frame; its `len` bytes are in `MDIA`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct SavedHeld {
    kind: StreamKind,
    key: bool,
    pts_ms: u64,
    seq: u32,
    utc_ms: u64,
    len: u64,
}

impl SavedChannel {
    /// This hand-over channel's segments and their bytes, taken from the
    /// front of `media` (its part of `MDIA`, which it consumes whole).
    pub fn base_segments<'a>(&self, media: &mut &'a [u8]) -> Vec<(u64, &'a [u8])> {
        let mut out = Vec::new();
        let Some(m) = &self.media else {
            return out;
        };
        let mut take = |len: u64| {
            let n = usize::try_from(len).unwrap_or(usize::MAX).min(media.len());
            let (a, b) = media.split_at(n);
            *media = b;
            a
        };
        for ss in &m.segs {
            out.push((ss.n, take(ss.len.saturating_sub(ss.from))));
        }
        for p in &m.partial {
            take(p.seg.len);
        }
        for h in &m.ring {
            take(h.len);
        }
        out
    }

    /// Makes this checkpoint channel's journal whole: each segment's bytes
    /// before `from` come from `base` (the last hand-over's, by number),
    /// the rest from the front of `journal` (consumed); they are appended
    /// to `out` as a hand-over's `MDIA` would hold them. A segment whose
    /// first bytes the base lacks is dropped (reported failed, as after a
    /// checkpoint without media), and the open recording with it if it was
    /// the open one.
    pub fn join_journal(&mut self, base: &[(u64, &[u8])], journal: &mut &[u8], out: &mut Vec<u8>) {
        let Some(m) = &mut self.media else {
            return;
        };
        let mut open_lost = false;
        m.segs.retain_mut(|ss| {
            let n = usize::try_from(ss.len.saturating_sub(ss.from))
                .unwrap_or(usize::MAX)
                .min(journal.len());
            let (piece, rest) = journal.split_at(n);
            *journal = rest;
            let from = usize::try_from(ss.from).unwrap_or(usize::MAX);
            let head = match base.iter().find(|(bn, _)| *bn == ss.n) {
                _ if from == 0 => Some(&[][..]),
                Some((_, b)) => b.get(..from),
                None => None,
            };
            let whole = ss.from <= ss.len && piece.len() as u64 == ss.len - ss.from;
            let Some(head) = head.filter(|_| whole) else {
                open_lost |= ss.end.is_none();
                return false;
            };
            out.extend_from_slice(head);
            out.extend_from_slice(piece);
            ss.from = 0;
            // A restart point is no live hand-over: an exchange the trapped
            // engine had in flight may have sent more than it says, so its
            // upload starts again (a commit due is only sent again).
            if matches!(ss.up, SavedUp::Put(_)) {
                ss.up = SavedUp::Queued;
            }
            true
        });
        if open_lost {
            m.run = None;
        }
    }

    /// Bytes this channel puts in `MDIA` (or a checkpoint's `MJNL`).
    pub fn media_len(&self) -> u64 {
        self.media.as_ref().map_or(0, |m| {
            m.segs
                .iter()
                .map(|s| s.len.saturating_sub(s.from))
                .sum::<u64>()
                + m.partial.iter().map(|p| p.seg.len).sum::<u64>()
                + m.ring.iter().map(|h| h.len).sum::<u64>()
        })
    }
}

/// See the module docs.
pub struct Chan<H: Host> {
    pub(super) params: ChannelParams,
    cb: OptionalCallbacks,
    boot: u32,
    run: Option<Run>,
    segs: VecDeque<Seg<H::Exchange>>,
    ring: PreRecord,
    dropping: Option<Lost>,
    wm: Watermarks,
    last_frame_mono: Option<u64>,
    /// Last video frame recorded (or dropped after an overflow): (pts ms,
    /// seq, UTC ms on the recording's timeline). A run that starts where
    /// its PTS continue is dated from it, not from the clock.
    last_video: Option<(u64, u32, u64)>,
    /// UTC ms the next run starts at: the stream start an event stated
    /// while nothing was held to replay (firmware replays its own
    /// pre-record with the frames' capture PTS).
    replay_utc_ms: Option<u64>,
    /// How far behind the clock the last video frame was pushed, ms.
    lag_ms: u64,
    tail: Option<Tail>,
    /// Segments numbered below this belong to a session that exited: they
    /// finish without telling firmware (as do events marked `quiet`).
    quiet_below: u64,
    next_seg: u64,
    next_event: u64,
    events: Vec<Event<H>>,
    dumps: Dumps,
    backup: Option<Backup<H::Exchange>>,
    slices: Vec<UploadSlice>,
    /// Dump bytes queued in the outbox since the last tick.
    dump_unflushed: u64,
    acked: VecDeque<String>,
    gate: Option<Gate>,
    /// Firmware PTS to milliseconds (µs by mistake, 32-bit wraps).
    pts: PtsClock,
    /// A hand-over was exported: checkpoints carry the media since
    /// (docs/design/trap-restart.md).
    journaling: Cell<bool>,
    /// Highest fill seen, bytes (tests and logs).
    pub peak: u64,
}

fn seg_policy() -> Policy {
    Policy {
        deadline_ms: None,
        max_delay_ms: MAX_DELAY_MS,
        max_attempts: 0,
    }
}

fn call_error(e: &CallError) -> String {
    format!("{} after {} attempt(s): {}", e.what, e.attempts, e.failure)
}

impl<H: Host> Chan<H> {
    pub(super) fn new(params: ChannelParams, cb: OptionalCallbacks, boot: u32) -> Chan<H> {
        Chan {
            cb,
            wm: Watermarks::new(params.congestion),
            params,
            boot,
            run: None,
            segs: VecDeque::new(),
            ring: PreRecord::default(),
            dropping: None,
            last_frame_mono: None,
            last_video: None,
            replay_utc_ms: None,
            lag_ms: 0,
            tail: None,
            quiet_below: 0,
            next_seg: 0,
            next_event: 0,
            events: Vec::new(),
            dumps: Dumps::default(),
            backup: None,
            slices: Vec::new(),
            dump_unflushed: 0,
            acked: VecDeque::new(),
            gate: None,
            pts: PtsClock::default(),
            peak: 0,
            journaling: Cell::new(false),
        }
    }

    fn ch(&self) -> Channel {
        self.params.channel
    }

    fn budget(&self) -> u64 {
        u64::from(self.params.max_gop_size)
    }

    /// Bytes held against the budget: segment bytes not released, the
    /// pre-record ring, dump bytes not yet handed to the host.
    pub fn used(&self) -> u64 {
        self.segs.iter().map(|s| s.buf.retained()).sum::<u64>()
            + self.ring.bytes()
            + self.dump_unflushed
            + self.unmuxed()
    }

    /// What frames decided but not muxed yet will take once muxed (with
    /// their dump copy).
    fn unmuxed(&self) -> u64 {
        let n = self.queued();
        let copies = if self.cb.dump_file { 2 } else { 1 };
        (n + n / 16) * copies
    }

    /// Frame bytes pushes decided that the pipeline has not muxed yet.
    fn queued(&self) -> u64 {
        self.run.as_ref().map_or(0, |r| r.pipeline.queued_bytes())
    }

    /// Bytes waiting for the network: recorded but not handed to the host
    /// yet, or, while the cloud is unreachable, every byte held for it.
    /// This is the congestion the watermarks report: bytes kept only so
    /// that a broken upload can be repeated are not congestion while the
    /// cloud answers. (Counting handed-over bytes as gone during an outage
    /// would make the fill jump at every retry, since a host takes bytes
    /// into its own queue before it knows the connection failed.)
    pub fn backlog(&self, cloud_down: bool) -> u64 {
        self.segs
            .iter()
            .filter(|s| !s.acked && s.failed.is_none())
            .map(|s| {
                if cloud_down {
                    return s.buf.retained();
                }
                let sent = s.handed_over().min(s.buf.produced());
                s.buf.produced() - sent.max(s.buf.produced() - s.buf.retained())
            })
            .sum::<u64>()
            + self.queued()
    }

    fn fits(&self, n: usize, cb: &OptionalCallbacks) -> bool {
        let need = muxed_estimate(n) * if cb.dump_file { 2 } else { 1 };
        self.used().saturating_add(need) <= self.budget()
    }

    /// Releases bytes the cloud already has, oldest segment first.
    fn evict(&mut self) {
        for s in &mut self.segs {
            let w = s.handed_over();
            s.buf.release_to(w);
        }
    }

    /// Whether events record video: one is open, or the last one's stop
    /// waits for lagging frames ([`Tail`]).
    pub(super) fn events_open(&self) -> bool {
        self.tail.is_some() || self.events.iter().any(Event::is_open)
    }

    /// Ends a tail: the run closes and the events it kept going wait for
    /// the segments recorded so far.
    fn end_tail(&mut self, io: &mut Io<'_, H>, why: &str) {
        if self.drop_tail() && self.gate != Some(Gate::FullTime) {
            self.end_run(io, why);
        }
    }

    /// Forgets a tail (false: there was none); the events it kept going
    /// wait for the segments recorded so far.
    fn drop_tail(&mut self) -> bool {
        if self.tail.take().is_none() {
            return false;
        }
        let through = self.next_seg;
        for e in &mut self.events {
            if e.through_seg == THROUGH_TAIL {
                e.through_seg = through;
            }
        }
        true
    }

    fn recording(&self, gate: Gate) -> bool {
        gate == Gate::FullTime || self.events_open()
    }

    pub(super) fn set_gate(&mut self, gate: Option<Gate>) {
        self.gate = gate;
    }

    fn note(&mut self, io: &mut Io<'_, H>) {
        self.peak = self.peak.max(self.used());
        let down = io.client.link.reach() == crate::cloud::link::Reach::Down;
        let u = self.backlog(down);
        if let Some(kind) = self.wm.update(u) {
            io.out.log(
                LogLevel::Info,
                format!("channel {}: buffer at {u} bytes: {kind:?}", self.ch()),
            );
            self.notify(io, kind, Vec::new());
        }
    }

    fn notify(&self, io: &mut Io<'_, H>, kind: NotifyKind, slices: Vec<UploadSlice>) {
        if self.cb.notify {
            io.out.push(HostEvent::Notify(Notify {
                channel: self.ch(),
                kind,
                slices,
            }));
        }
    }

    // ---- frames -------------------------------------------------------------

    /// A pushed frame (the control plane checked the session and plan).
    pub(super) fn push(&mut self, io: &mut Io<'_, H>, gate: Gate, f: &Frame<'_>) -> Result<()> {
        // Everything below reads milliseconds (crate::pts_clock).
        let (pts_ms, note) = self.pts.map(f.kind, f.pts_ms, self.params.av.framerate);
        if let Some(n) = note {
            io.out
                .log(LogLevel::Warn, format!("channel {}: {n}", self.ch()));
        }
        let f = &Frame { pts_ms, ..*f };
        let mono = io.host.monotonic_ms();
        let utc = io.host.now_utc_ms();
        self.gate = Some(gate);
        self.last_frame_mono = Some(mono);
        if let Some(t) = self.tail
            && f.kind == StreamKind::Video
            && self.continued_utc(f).is_none_or(|u| u >= t.until_utc)
        {
            self.end_tail(io, "the last event's video reached its stop time");
        }
        if !self.recording(gate) {
            if self.run.is_some() {
                self.end_run(io, "the plan records events only and no event is open");
            }
            return self.push_prerecord(io, f, utc);
        }
        let r = self.record(io, f, utc);
        self.note(io);
        r
    }

    /// What [`Chan::push`] would refuse now, by kind of frame.
    pub(super) fn push_gate(&self, gate: Gate) -> PushGate {
        let need_idr = Some(ErrorKind::NeedIdr.code());
        if !self.recording(gate) {
            return PushGate {
                non_key_video: need_idr.filter(|_| !self.ring.has_key()),
                ..PushGate::default()
            };
        }
        if self.dropping.is_some() {
            // The IDR that ends dropping starts a new run.
            let full = Some(ErrorKind::OutOfMemory.code());
            return PushGate {
                all: None,
                non_key_video: full,
                key_needs_params: true,
                audio: full,
            };
        }
        let (waiting, params) = match &self.run {
            None => (true, true),
            Some(r) => (r.pipeline.waits_for_key(), !r.pipeline.has_params()),
        };
        PushGate {
            non_key_video: need_idr.filter(|_| waiting),
            key_needs_params: waiting && params,
            ..PushGate::default()
        }
    }

    fn push_prerecord(&mut self, io: &mut Io<'_, H>, f: &Frame<'_>, utc: u64) -> Result<()> {
        let key = f.kind == StreamKind::Video && is_key(self.params.av.video, f.data);
        if f.data.is_empty() || f.data.len() > self.params.max_gop_size as usize {
            bail!(
                OutOfMemory,
                "channel {} seq {}: frame of {} bytes does not fit the budget of {}",
                self.ch(),
                f.seq,
                f.data.len(),
                self.params.max_gop_size
            );
        }
        let held = Held {
            kind: f.kind,
            key,
            pts_ms: f.pts_ms,
            seq: f.seq,
            utc_ms: utc,
            data: f.data.to_vec(),
        };
        let room = self.ring_room();
        if !self.ring.push(held, room, utc) {
            bail!(
                NeedIdr,
                "channel {} video seq {} pts {}: pre-record waits for an IDR frame",
                self.ch(),
                f.seq,
                f.pts_ms
            );
        }
        self.note(io);
        Ok(())
    }

    /// Room the pre-record ring may use: replaying it must fit the budget
    /// next to what is buffered (muxed copy, dump copy).
    fn ring_room(&self) -> u64 {
        let segs: u64 = self.segs.iter().map(|s| s.buf.retained()).sum();
        let copies = if self.cb.dump_file { 3 } else { 2 };
        self.budget()
            .saturating_sub(segs + self.dump_unflushed)
            .saturating_sub(self.budget() / 16)
            / copies
    }

    /// A frame into the recording run.
    fn record(&mut self, io: &mut Io<'_, H>, f: &Frame<'_>, utc: u64) -> Result<()> {
        let cb = self.cb;
        let ch = self.ch();
        let key = f.kind == StreamKind::Video && is_key(self.params.av.video, f.data);
        if self.dropping.is_some() {
            let fits = self.fits(f.data.len(), &cb);
            if !key || !fits {
                let u = self.timeline_utc(f, utc);
                if let Some(lost) = &mut self.dropping {
                    lost.add(f, u);
                }
                if f.kind == StreamKind::Video
                    && let Some(u) = self.continued_utc(f)
                {
                    self.last_video = Some((f.pts_ms, f.seq, u));
                }
                bail!(
                    OutOfMemory,
                    "channel {ch} seq {} pts {}: dropped: the buffer overflowed and recording resumes at the next IDR that fits",
                    f.seq,
                    f.pts_ms
                );
            }
        }
        if !self.fits(f.data.len(), &cb) {
            self.evict();
        }
        if !self.fits(f.data.len(), &cb) {
            if f.data.len() > self.params.max_gop_size as usize {
                bail!(
                    OutOfMemory,
                    "channel {ch} seq {} pts {}: frame of {} bytes exceeds the budget of {} bytes",
                    f.seq,
                    f.pts_ms,
                    f.data.len(),
                    self.params.max_gop_size
                );
            }
            self.end_run(io, "the buffer overflowed");
            let u = self.timeline_utc(f, utc);
            let mut lost = Lost::new(f, u, self.last_video.map(|(_, seq, _)| seq));
            lost.add(f, u);
            io.out.log(
                LogLevel::Warn,
                format!(
                    "channel {ch}: buffer full ({} of {} bytes unacknowledged): dropping frames from seq {} pts {} to the next IDR",
                    self.used(),
                    self.budget(),
                    f.seq,
                    f.pts_ms
                ),
            );
            self.dropping = Some(lost);
            bail!(
                OutOfMemory,
                "channel {ch} seq {} pts {}: the buffer is full (the cloud is not taking data fast enough)",
                f.seq,
                f.pts_ms
            );
        }
        if let Some(lost) = self.dropping.take() {
            self.report_lost(io, &lost);
        }
        // A new timeline (PTS reset or a long gap) starts a new run, so UTC
        // always comes from the clock at its first frame.
        if key
            && let Some(run) = &self.run
            && let Some(last) = run.last_video_pts
            && (f.pts_ms <= last || f.pts_ms - last > MAX_FRAME_GAP_MS)
        {
            self.end_run(io, "the video PTS jumped");
        }
        if self.run.is_none() {
            if f.kind == StreamKind::Audio {
                // Audio before the first IDR: accepted and dropped.
                return Ok(());
            }
            let start = self.run_start_utc(f, utc);
            self.run = Some(Run {
                pipeline: Pipeline::new(self.params.pipeline_config(start))?,
                last_video_pts: None,
            });
        }
        let Some(run) = &mut self.run else {
            return Ok(());
        };
        // Decided here, muxed by the next `poll` (docs/design/buffer.md).
        let res = run.pipeline.push(f);
        let frame_utc = run.pipeline.utc_of(f.pts_ms).unwrap_or(utc);
        if res.is_ok() && f.kind == StreamKind::Video {
            run.last_video_pts = Some(f.pts_ms);
        }
        if res.is_err() && !run.pipeline.started() {
            // Nothing recorded yet: the next IDR starts the run (and its UTC).
            self.run = None;
        }
        res.map_err(|e| e.context(&format!("channel {ch}")))?;
        if f.kind == StreamKind::Video {
            self.last_video = Some((f.pts_ms, f.seq, frame_utc));
            self.lag_ms = utc.saturating_sub(frame_utc);
            self.replay_utc_ms = None;
        }
        Ok(())
    }

    /// UTC of PTS `pts_ms` on the last video frame's timeline, when it is
    /// within [`MAX_FRAME_GAP_MS`] of that frame's, either way.
    fn utc_near_last_video(&self, pts_ms: u64) -> Option<u64> {
        let (pts, _, u) = self.last_video?;
        let d = i128::from(pts_ms) - i128::from(pts);
        if d.unsigned_abs() > u128::from(MAX_FRAME_GAP_MS) {
            return None;
        }
        u64::try_from(i128::from(u) + d).ok()
    }

    /// UTC of a video frame whose PTS continue the last one's (forward, by
    /// at most [`MAX_FRAME_GAP_MS`]) on that frame's timeline.
    fn continued_utc(&self, f: &Frame<'_>) -> Option<u64> {
        let (pts, ..) = self.last_video?;
        (f.pts_ms > pts)
            .then(|| self.utc_near_last_video(f.pts_ms))
            .flatten()
    }

    /// UTC of a frame on the last video frame's timeline, else the clock's:
    /// dropped frames are dated like recorded ones, so a lost span's slice
    /// lines up with the segments around it (firmware finds dumps by these
    /// seconds).
    fn timeline_utc(&self, f: &Frame<'_>, clock_utc: u64) -> u64 {
        self.utc_near_last_video(f.pts_ms).unwrap_or(clock_utc)
    }

    /// UTC of the frame that starts a run: the stream start an event stated
    /// for a replayed pre-record; else, where the PTS continue the previous
    /// run's, on its timeline (a run cut by an overflow or a plan change
    /// keeps the capture times, whatever the clock did); else the clock.
    fn run_start_utc(&self, f: &Frame<'_>, clock_utc: u64) -> u64 {
        if let Some(u) = self.replay_utc_ms {
            return u.min(clock_utc);
        }
        self.continued_utc(f).unwrap_or(clock_utc)
    }

    /// Muxes what pushes decided since the last call: segments, uploads and
    /// dumps get the bytes.
    fn mux(&mut self, io: &mut Io<'_, H>) {
        let Some(run) = &mut self.run else {
            return;
        };
        let outs = run.pipeline.take_output();
        let failures = run.pipeline.take_failures();
        for e in failures {
            io.out.log(
                LogLevel::Error,
                format!("channel {}: muxing failed: {}", self.ch(), e.message()),
            );
        }
        self.take(io, outs);
    }

    fn report_lost(&mut self, io: &mut Io<'_, H>, lost: &Lost) {
        io.out.log(
            LogLevel::Warn,
            format!(
                "channel {}: lost {} frame(s), {} bytes, UTC {}..{} ms, video seq {}..{} (buffer overflow)",
                self.ch(),
                lost.frames,
                lost.bytes,
                lost.utc_start_ms,
                lost.utc_end_ms,
                lost.seq_start,
                lost.seq_end
            ),
        );
        self.slices.push(UploadSlice {
            utc_start_s: lost.utc_start_ms / 1000,
            utc_end_s: lost.utc_end_ms / 1000,
            pts_start_ms: lost.pts_start_ms,
            pts_end_ms: lost.pts_end_ms,
            seq_start: lost.seq_start,
            seq_end: lost.seq_end,
            upload_size: 0,
            total_size: u32::try_from(lost.bytes).unwrap_or(u32::MAX),
            state: UploadState::Err,
        });
    }

    /// Closes the run: its open segment ends at its last frame.
    fn end_run(&mut self, io: &mut Io<'_, H>, why: &str) {
        let Some(mut run) = self.run.take() else {
            return;
        };
        if let Err(e) = run.pipeline.finish() {
            io.out.log(
                LogLevel::Warn,
                format!(
                    "channel {}: closing the recording: {}",
                    self.ch(),
                    e.message()
                ),
            );
        }
        let outs = run.pipeline.take_output();
        self.take(io, outs);
        io.out.log(
            LogLevel::Info,
            format!("channel {}: recording paused: {why}", self.ch()),
        );
    }

    /// Pipeline output into segments, uploads and dumps.
    fn take(&mut self, io: &mut Io<'_, H>, outs: Vec<Output>) {
        let cb = self.cb;
        let ch = self.ch();
        for o in outs {
            match o {
                Output::SegmentStart(info) => {
                    let n = self.next_seg;
                    self.next_seg += 1;
                    let id = names::segment_id(ch, info.utc_start_ms, self.boot, n);
                    if cb.dump_file {
                        io.out.push(HostEvent::DumpFile(DumpChunk {
                            channel: ch,
                            state: DumpState::Start,
                            start_ms: info.utc_start_ms,
                            end_ms: 0,
                            file_name: String::new(),
                            data: Vec::new(),
                        }));
                    }
                    let event = self.gate != Some(Gate::FullTime) || self.events_open();
                    self.segs.push_back(Seg {
                        n,
                        id,
                        last_video_pts: info.pts_start_ms,
                        start: info,
                        end: None,
                        event,
                        buf: SegBuf::default(),
                        up: Up::Queued,
                        failed: None,
                        acked: false,
                        mismatches: 0,
                        based: Cell::new(None),
                    });
                }
                Output::Data(d) => {
                    let Some(s) = self.segs.back_mut().filter(|s| s.end.is_none()) else {
                        continue;
                    };
                    s.buf.append(&d);
                    if cb.dump_file {
                        self.dump_unflushed = self.dump_unflushed.saturating_add(d.len() as u64);
                        io.out.push(HostEvent::DumpFile(DumpChunk {
                            channel: ch,
                            state: DumpState::Running,
                            start_ms: s.start.utc_start_ms,
                            end_ms: 0,
                            file_name: String::new(),
                            data: d,
                        }));
                    }
                }
                Output::SegmentEnd(info) => {
                    let Some(s) = self.segs.back_mut().filter(|s| s.end.is_none()) else {
                        continue;
                    };
                    s.buf.close();
                    let file = names::file_name(&s.id, self.params.container);
                    if cb.dump_file {
                        io.out.push(HostEvent::DumpFile(DumpChunk {
                            channel: ch,
                            state: DumpState::End,
                            start_ms: s.start.utc_start_ms,
                            end_ms: info.utc_end_ms,
                            file_name: file.clone(),
                            data: Vec::new(),
                        }));
                        self.dumps.insert(DumpRecord {
                            file,
                            id: s.id.clone(),
                            channel: ch,
                            container: self.params.container,
                            codec: info.codec_string.clone(),
                            event: s.event,
                            discontinuity: info.discontinuity,
                            utc_start_ms: info.utc_start_ms,
                            utc_end_ms: info.utc_end_ms,
                            pts_start_ms: info.pts_start_ms,
                            pts_end_ms: info.pts_end_ms,
                            seq_start: info.seq_start,
                            seq_end: info.seq_end,
                            init_bytes: info.init_bytes,
                            video_frames: info.video_frames,
                            audio_frames: info.audio_frames,
                            bytes: s.buf.produced(),
                            sha256: s.buf.digest().unwrap_or_default().to_string(),
                        });
                    }
                    s.last_video_pts = info.last_video_pts_ms;
                    s.end = Some(info);
                }
            }
        }
    }

    // ---- uploads ------------------------------------------------------------

    fn segment_query(&self, s: &Seg<H::Exchange>) -> String {
        let c = match s.start.container {
            crate::types::Container::Ts => "ts",
            crate::types::Container::Fmp4 => "fmp4",
        };
        let mut q = format!(
            "channel={}&container={c}&codec={}&utc_start_ms={}&pts_start_ms={}&seq_start={}",
            self.ch(),
            s.start.codec_string,
            s.start.utc_start_ms,
            s.start.pts_start_ms,
            s.start.seq_start
        );
        if s.start.init_bytes > 0 {
            q.push_str(&format!("&init_bytes={}", s.start.init_bytes));
        }
        if s.event {
            q.push_str("&event=1");
        }
        if s.start.discontinuity {
            q.push_str("&discontinuity=1");
        }
        q
    }

    fn poll_segments(&mut self, io: &mut Io<'_, H>) {
        let now = io.host.monotonic_ms();
        // Bytes held for a batch count against the budget: an eighth of it.
        let batch = self.params.max_gop_size as usize / 8;
        let ch = self.ch();
        let mut bodies_done = true;
        let mut i = 0;
        while i < self.segs.len() {
            let query = match self.segs.get(i) {
                Some(s) if matches!(s.up, Up::Queued) && bodies_done && s.failed.is_none() => {
                    Some(self.segment_query(s))
                }
                _ => None,
            };
            let Some(s) = self.segs.get_mut(i) else {
                break;
            };
            if let Some(q) = query {
                s.up = Up::Put(
                    Call::new(api::segment_put(&s.id, &q), seg_policy(), now).with_batch(batch),
                );
            }
            let mut fail: Option<String> = None;
            match &mut s.up {
                Up::Put(c) => {
                    if let Some(r) = c.poll_source(io, None, Some(&s.buf as &dyn Source)) {
                        match r.map_err(|e| call_error(&e)).and_then(|reply| {
                            reply
                                .json::<api::SegmentAnswer>("segment upload")
                                .map_err(|e| e.message().to_string())
                        }) {
                            Ok(a) if a.duplicate => {
                                s.acked = true;
                                s.up = Up::Over;
                            }
                            Ok(a)
                                if a.bytes == s.buf.produced()
                                    && Some(a.sha256.as_str()) == s.buf.digest() =>
                            {
                                s.up = Up::Commit(commit_call(s, now));
                            }
                            Ok(a) if s.buf.rewindable() && s.mismatches < 3 => {
                                // The body broke off (stored partial): again.
                                s.mismatches += 1;
                                io.out.log(
                                    LogLevel::Warn,
                                    format!(
                                        "channel {ch} segment {}: the cloud stored {} of {} bytes; uploading it again",
                                        s.id,
                                        a.bytes,
                                        s.buf.produced()
                                    ),
                                );
                                s.up = Up::Queued;
                            }
                            Ok(a) => {
                                fail = Some(format!(
                                    "the cloud stored {} bytes ({}), not {} ({})",
                                    a.bytes,
                                    a.sha256,
                                    s.buf.produced(),
                                    s.buf.digest().unwrap_or("")
                                ))
                            }
                            Err(e) => fail = Some(e),
                        }
                    }
                }
                Up::Commit(c) => {
                    if let Some(r) = c.poll(io, None) {
                        match r {
                            Ok(_) => {
                                s.acked = true;
                                s.up = Up::Over;
                            }
                            Err(e)
                                if matches!(e.failure, Failure::Status { status: 409, .. })
                                    && s.buf.rewindable() =>
                            {
                                io.out.log(
                                    LogLevel::Warn,
                                    format!(
                                        "channel {ch} segment {}: {}; uploading it again",
                                        s.id,
                                        call_error(&e)
                                    ),
                                );
                                s.up = Up::Queued;
                            }
                            Err(e) => fail = Some(call_error(&e)),
                        }
                    }
                }
                Up::Queued | Up::Over => {}
            }
            if let Some(why) = fail {
                io.out.log(
                    LogLevel::Warn,
                    format!(
                        "channel {ch} segment {}: upload failed for good: {why}{}",
                        s.id,
                        if self.cb.dump_file {
                            "; its dump can be sent with backup-upload"
                        } else {
                            ""
                        }
                    ),
                );
                s.failed = Some(why);
                s.buf.discard();
                s.up = Up::Over;
            }
            if s.acked {
                s.buf.discard();
            }
            // Sent bytes of a segment whose whole body no longer fits stay
            // only as long as the budget allows (see `evict`).
            bodies_done = bodies_done && (s.body_done() || s.failed.is_some());
            i += 1;
        }
        // Resolved segments leave the queue in order of completion.
        let mut k = 0;
        while k < self.segs.len() {
            if self.segs.get(k).is_some_and(Seg::resolved) {
                if let Some(s) = self.segs.remove(k) {
                    if s.acked {
                        self.acked.push_back(s.id.clone());
                        while self.acked.len() > ACKED_KEPT {
                            self.acked.pop_front();
                        }
                    }
                    if s.n >= self.quiet_below {
                        self.slices.push(s.slice());
                    }
                }
            } else {
                k += 1;
            }
        }
    }

    /// Advances uploads, events, backups and timers; returns the wake time.
    pub(super) fn poll(&mut self, io: &mut Io<'_, H>) -> Option<u64> {
        let now = io.host.monotonic_ms();
        if let Some(gate) = self.gate {
            if !self.recording(gate) && self.run.is_some() {
                self.end_run(io, "the plan no longer records continuously");
            }
            if gate == Gate::FullTime {
                self.ring.clear();
            }
        } else {
            if self.run.is_some() {
                self.end_run(io, "no plan allows recording");
            }
            self.ring.clear();
        }
        if self
            .tail
            .is_some_and(|t| io.host.now_utc_ms() >= t.deadline_utc)
        {
            self.end_tail(
                io,
                "the last event's lagging frames did not reach its stop time",
            );
        }
        if let Some(t) = self.last_frame_mono
            && self.run.is_some()
            && now >= t.saturating_add(IDLE_PAUSE_MS)
        {
            self.end_run(io, "no frames for 120 s");
        }
        self.mux(io);
        // Every dump chunk so far leaves with this tick's events.
        self.dump_unflushed = 0;
        self.poll_segments(io);
        self.poll_events(io);
        self.poll_backup(io);
        let slices = std::mem::take(&mut self.slices);
        for group in slices.chunks(10) {
            self.notify(io, NotifyKind::UploadState, group.to_vec());
        }
        self.note(io);
        let mut wake: Option<u64> = None;
        let mut at = |t: Option<u64>| {
            if let Some(t) = t {
                wake = Some(wake.map_or(t, |w| w.min(t)));
            }
        };
        if self.run.is_some() {
            at(self
                .last_frame_mono
                .map(|t| t.saturating_add(IDLE_PAUSE_MS)));
        }
        for s in &self.segs {
            match &s.up {
                Up::Put(c) | Up::Commit(c) => at(c.wake_at()),
                _ => {}
            }
        }
        for e in &self.events {
            at(e.wake_at());
        }
        if let Some(b) = &self.backup {
            at(b.call.wake_at());
        }
        wake
    }

    // ---- exit -----------------------------------------------------------------

    /// `exit`: the open segment ends at its last frame, open events stop
    /// now, and what firmware was doing (pre-record, a backup) ends. The
    /// segments and events pending go on as a drain.
    pub(super) fn exit(&mut self, io: &mut Io<'_, H>) {
        self.drop_tail();
        self.end_run(io, "iv_cs_exit");
        let now = io.host.now_utc_ms();
        let through = self.next_seg;
        for e in self.events.iter_mut().filter(|e| e.is_open()) {
            e.meta.stop_utc_ms = Some(now.max(e.meta.start_utc_ms));
            e.through_seg = through;
        }
        self.ring.clear();
        self.gate = None;
        self.backup = None;
        self.dropping = None;
        self.replay_utc_ms = None;
    }

    /// Takes over a drained channel's pending work (see
    /// [`DataPlane::adopt`](super::DataPlane::adopt)); this channel has
    /// recorded nothing yet.
    pub(super) fn adopt(&mut self, mut old: Chan<H>) {
        self.next_seg = self.next_seg.max(old.next_seg);
        self.next_event = self.next_event.max(old.next_event);
        self.quiet_below = old.next_seg;
        for e in &mut old.events {
            e.quiet = true;
        }
        old.segs.extend(self.segs.drain(..));
        self.segs = old.segs;
        old.events.append(&mut self.events);
        self.events = old.events;
        self.acked = old.acked;
        self.dumps = old.dumps;
    }

    /// Whether segments or events are still pending.
    pub(super) fn busy(&self) -> bool {
        !self.segs.is_empty() || !self.events.is_empty()
    }

    /// Segments not resolved yet.
    pub(super) fn pending_segments(&self) -> usize {
        self.segs.len()
    }

    // ---- events -------------------------------------------------------------

    fn settled_below(&self, n: u64) -> bool {
        !self.segs.iter().any(|s| s.n < n)
    }

    fn poll_events(&mut self, io: &mut Io<'_, H>) {
        let ch = self.ch();
        let cb = self.cb;
        let mut i = 0;
        while i < self.events.len() {
            let through = self.events.get(i).map_or(0, |e| e.through_seg);
            let settled = self.settled_below(through);
            let Some(e) = self.events.get_mut(i) else {
                break;
            };
            if let Some(r) = e.poll(io, ch, settled)
                && cb.event_report_result
                && !e.quiet
            {
                io.out.push(HostEvent::EventResult(r));
            }
            if e.is_done() {
                self.events.remove(i);
            } else {
                i += 1;
            }
        }
    }

    pub(super) fn event_start(
        &mut self,
        io: &mut Io<'_, H>,
        gate: Gate,
        ev: &EventCall,
    ) -> Result<()> {
        let ch = self.ch();
        if self
            .events
            .iter()
            .any(|e| e.is_open() && e.meta.id == ev.event_id)
        {
            bail!(
                InvalidEvent,
                "event-start channel {ch} event {}: already running (stop it first)",
                ev.event_id
            );
        }
        if self.events.len() >= MAX_EVENTS {
            bail!(
                UploadFailed,
                "event-start channel {ch} event {}: {MAX_EVENTS} events are still being reported",
                ev.event_id
            );
        }
        self.gate = Some(gate);
        let first = !self.events_open();
        // An event during a tail: the run goes on for it.
        self.drop_tail();
        let now = io.host.monotonic_ms();
        let start_utc_ms = ev.event_utc_s.saturating_mul(1000);
        let n = self.next_event;
        self.next_event += 1;
        let meta = EventMeta {
            id: ev.event_id,
            key: names::event_key(ch, ev.event_id, start_utc_ms, self.boot, n),
            info: ev.info.clone(),
            start_utc_ms,
            report_opt: self.params.event_report_opt,
            stop_utc_ms: None,
            started: false,
        };
        let capture = self
            .cb
            .capture_picture
            .then(|| io.host.capture_picture(ch, ev.event_id));
        io.out.log(
            LogLevel::Info,
            format!(
                "channel {ch} event {} starts at {} (video from {})",
                ev.event_id, start_utc_ms, ev.stream_utc_ms
            ),
        );
        self.events.push(Event::new(ch, meta, capture, now));
        if first && gate != Gate::FullTime {
            // Pre-record: the first event of a set starts the video at
            // `stream_start_time_s`, from the last IDR at or before it.
            let frames = self.ring.take_from(ev.stream_utc_ms);
            if frames.is_empty() && self.run.is_none() {
                // Nothing held: firmware replays its own pre-record, with
                // the frames' capture PTS, from the stated stream start.
                let asked = ev.stream_utc_ms.saturating_add(1000) <= io.host.now_utc_ms();
                self.replay_utc_ms = asked.then_some(ev.stream_utc_ms);
            }
            let mut replayed = 0usize;
            for h in &frames {
                if self.record(io, &h.frame(), h.utc_ms).is_ok() {
                    replayed += 1;
                }
            }
            if !frames.is_empty() {
                io.out.log(
                    LogLevel::Debug,
                    format!(
                        "channel {ch}: pre-record replayed {replayed} of {} frame(s)",
                        frames.len()
                    ),
                );
            }
            self.note(io);
        }
        Ok(())
    }

    pub(super) fn event_stop(&mut self, io: &mut Io<'_, H>, ev: &EventCall) -> Result<()> {
        let ch = self.ch();
        let Some(idx) = self
            .events
            .iter()
            .position(|e| e.is_open() && e.meta.id == ev.event_id)
        else {
            bail!(
                InvalidEvent,
                "event-stop channel {ch} event {}: not started",
                ev.event_id
            );
        };
        let last = self.events.iter().filter(|e| e.is_open()).count() == 1;
        let mut through = self.next_seg;
        if last && self.gate != Some(Gate::FullTime) {
            let now = io.host.now_utc_ms();
            let behind = self
                .last_video
                .is_some_and(|(_, _, u)| u < ev.stream_utc_ms);
            if self.run.is_some() && self.lag_ms > TAIL_MIN_LAG_MS && behind {
                // Firmware pushes its frames late (a replayed pre-record):
                // the video it has not pushed yet belongs to the event.
                self.tail = Some(Tail {
                    until_utc: ev.stream_utc_ms,
                    deadline_utc: now
                        .saturating_add(self.lag_ms)
                        .saturating_add(TAIL_GRACE_MS),
                });
                through = THROUGH_TAIL;
            } else {
                self.end_run(io, "the last event stopped");
            }
            self.replay_utc_ms = None;
        }
        let Some(e) = self.events.get_mut(idx) else {
            return Ok(());
        };
        if e.meta.info != ev.info {
            io.out.log(
                LogLevel::Warn,
                format!(
                    "event-stop channel {ch} event {}: info {:?} differs from the start's {:?}; the start's is kept",
                    ev.event_id, ev.info, e.meta.info
                ),
            );
        }
        let end = ev.event_utc_s.saturating_mul(1000).max(e.meta.start_utc_ms);
        e.meta.stop_utc_ms = Some(end);
        e.through_seg = through;
        Ok(())
    }

    // ---- backup -------------------------------------------------------------

    pub(super) fn backup_upload(
        &mut self,
        io: &mut Io<'_, H>,
        cloud_now_ms: u64,
        state: DumpState,
        file: &str,
        data: &[u8],
    ) -> Result<()> {
        let ch = self.ch();
        let what = format!("backup-upload channel {ch} {file}");
        match state {
            DumpState::Start => {
                let Some(rec) = self.dumps.get(file).cloned() else {
                    bail!(
                        InvalidArgument,
                        "{what}: not a file this engine dumped (or too old to remember)"
                    );
                };
                if cloud_now_ms > rec.utc_end_ms.saturating_add(BACKUP_WINDOW_MS) {
                    bail!(
                        UploadFailed,
                        "{what}: the cloud's backup window of {} s after the segment's end has closed",
                        BACKUP_WINDOW_MS / 1000
                    );
                }
                if let Some(old) = self.backup.take() {
                    io.out.log(
                        LogLevel::Warn,
                        format!(
                            "{what}: the unfinished backup of {} is abandoned",
                            old.rec.file
                        ),
                    );
                }
                let now = io.host.monotonic_ms();
                let call = Call::new(
                    api::backup_put(&rec.id, &rec.query(true), rec.bytes, rec.sha256.clone()),
                    Policy {
                        deadline_ms: None,
                        max_delay_ms: MAX_DELAY_MS,
                        max_attempts: 3,
                    },
                    now,
                );
                self.backup = Some(Backup {
                    rec,
                    buf: SegBuf::default(),
                    call,
                    outcome: None,
                });
            }
            DumpState::Running | DumpState::End => {
                let Some(b) = &mut self.backup else {
                    bail!(
                        InvalidArgument,
                        "{what}: no backup of this file was started"
                    );
                };
                if b.rec.file != file {
                    bail!(
                        InvalidArgument,
                        "{what}: the backup in progress is {} (start this one first)",
                        b.rec.file
                    );
                }
                if let Some(Err(e)) = &b.outcome {
                    let e = e.clone();
                    self.backup = None;
                    return Err(e);
                }
                if b.buf.closed() && !data.is_empty() {
                    bail!(InvalidArgument, "{what}: data after the end");
                }
                if b.buf.produced().saturating_add(data.len() as u64) > b.rec.bytes {
                    let e = Error::new(
                        ErrorKind::InvalidArgument,
                        format!(
                            "{what}: more than the {} bytes that were dumped",
                            b.rec.bytes
                        ),
                    );
                    self.backup = None;
                    return Err(e);
                }
                if b.buf.retained().saturating_add(data.len() as u64) > BACKUP_QUEUE_BYTES {
                    bail!(
                        OutOfMemory,
                        "{what}: {} bytes are waiting for the network; send this chunk again later",
                        b.buf.retained()
                    );
                }
                b.buf.append(data);
                if state == DumpState::End {
                    b.buf.close();
                    if b.buf.produced() != b.rec.bytes
                        || b.buf.digest() != Some(b.rec.sha256.as_str())
                    {
                        let e = Error::new(
                            ErrorKind::InvalidArgument,
                            format!(
                                "{what}: {} bytes with sha256 {} are not the {} dumped bytes",
                                b.buf.produced(),
                                b.buf.digest().unwrap_or(""),
                                b.rec.bytes
                            ),
                        );
                        self.backup = None;
                        return Err(e);
                    }
                }
            }
        }
        self.poll_backup(io);
        if let Some(b) = &self.backup
            && let Some(Err(e)) = &b.outcome
        {
            let e = e.clone();
            self.backup = None;
            return Err(e);
        }
        Ok(())
    }

    fn poll_backup(&mut self, io: &mut Io<'_, H>) {
        let ch = self.ch();
        let Some(b) = &mut self.backup else {
            return;
        };
        if b.outcome.is_none()
            && let Some(r) = b.call.poll_source(io, None, Some(&b.buf as &dyn Source))
        {
            let slice = UploadSlice {
                utc_start_s: b.rec.utc_start_ms / 1000,
                utc_end_s: b.rec.utc_end_ms / 1000,
                pts_start_ms: b.rec.pts_start_ms,
                pts_end_ms: b.rec.pts_end_ms,
                seq_start: b.rec.seq_start,
                seq_end: b.rec.seq_end,
                upload_size: 0,
                total_size: u32::try_from(b.rec.bytes).unwrap_or(u32::MAX),
                state: UploadState::Err,
            };
            match r {
                Ok(_) => {
                    io.out.log(
                        LogLevel::Info,
                        format!("channel {ch}: backup of {} accepted", b.rec.file),
                    );
                    self.slices.push(UploadSlice {
                        upload_size: slice.total_size,
                        state: UploadState::Ok,
                        ..slice
                    });
                    b.outcome = Some(Ok(()));
                }
                Err(e) => {
                    let err = e.to_error(ErrorKind::UploadFailed);
                    // A closed window (410) and every other refusal read as
                    // an upload failure to firmware.
                    let err = match err.kind() {
                        ErrorKind::InvalidArgument | ErrorKind::UploadFailed => {
                            Error::new(ErrorKind::UploadFailed, err.message().to_string())
                        }
                        _ => err,
                    };
                    io.out.log(
                        LogLevel::Warn,
                        format!("channel {ch}: backup of {}: {}", b.rec.file, err.message()),
                    );
                    self.slices.push(slice);
                    b.outcome = Some(Err(err));
                }
            }
        }
        let w = b.call.body_written();
        b.buf.release_to(w);
        if matches!(b.outcome, Some(Ok(()))) {
            self.backup = None;
        }
    }

    // ---- state --------------------------------------------------------------

    /// The channel's state; a hand-over's has the open recording and the
    /// buffered media too, a checkpoint's (once a hand-over was taken) the
    /// open recording and the media since (whose bytes [`Chan::write_media`]
    /// appends).
    pub(super) fn save(&self, mode: Export, host: &H) -> SavedChannel {
        let media = match mode {
            Export::HandOver => {
                self.journaling.set(true);
                Some(self.save_media(host, true))
            }
            Export::Checkpoint if self.journaling.get() => Some(self.save_media(host, false)),
            Export::Checkpoint => None,
        };
        SavedChannel {
            channel: self.ch(),
            next_seg: self.next_seg,
            next_event: self.next_event,
            last_video: self.last_video,
            acked: self.acked.iter().cloned().collect(),
            dumps: self.dumps.clone(),
            // Every one, also those that travel in `media`: an engine that
            // ignores it (an older one, after a rollback) reports them.
            unacked: self.segs.iter().map(Seg::slice).collect(),
            events: self.events.iter().map(|e| e.meta.clone()).collect(),
            watermark: self.wm.band(),
            pts: self.pts.clone(),
            media,
        }
    }

    /// A hand-over's media (`hand_over`), or a checkpoint's journal: each
    /// segment from what the last hand-over carried of it on, as long as
    /// those bytes are still kept (else a restart loses it, as before).
    /// Pre-record frames travel only in a hand-over.
    fn save_media(&self, host: &H, hand_over: bool) -> SavedMedia {
        let (mut segs, mut partial) = (Vec::new(), Vec::new());
        for s in self.segs.iter().filter(|s| !s.acked && s.failed.is_none()) {
            let up = s.saved_up(host);
            let produced = s.buf.produced();
            if !hand_over {
                let from = s.based.get().unwrap_or(0);
                if s.buf.kept_from(from).is_some() {
                    segs.push(s.saved(produced, from, up));
                }
            } else if s.buf.rewindable() {
                s.based.set(Some(produced));
                segs.push(s.saved(produced, 0, up));
            } else if !matches!(up, SavedUp::Queued)
                && let Some(tail) = s.buf.tail()
            {
                // Its first bytes are gone: it goes on only over the
                // exchange in flight (or just needs its commit).
                s.based.set(None);
                partial.push(SavedPartial {
                    seg: s.saved(s.buf.retained(), 0, up),
                    tail,
                });
            }
        }
        // The run continues only into a segment that travels.
        let open_left = self.segs.back().is_some_and(|s| {
            s.end.is_none()
                && !segs.iter().any(|c| c.n == s.n)
                && !partial.iter().any(|p| p.seg.n == s.n)
        });
        let run = self
            .run
            .as_ref()
            .filter(|_| !open_left)
            .and_then(|r| serde_json::to_value(r).ok());
        SavedMedia {
            run,
            segs,
            partial,
            ring: self
                .ring
                .frames()
                .filter(|_| hand_over)
                .map(|h| SavedHeld {
                    kind: h.kind,
                    key: h.key,
                    pts_ms: h.pts_ms,
                    seq: h.seq,
                    utc_ms: h.utc_ms,
                    len: h.data.len() as u64,
                })
                .collect(),
            dropping: self.dropping.clone(),
            through: self.events.iter().map(|e| e.through_seg).collect(),
        }
    }

    /// Appends the bytes [`Chan::save`] described, in its order.
    pub(super) fn write_media(&self, saved: &SavedChannel, out: &mut Vec<u8>) {
        let Some(m) = &saved.media else {
            return;
        };
        // Whole segments, then those whose first bytes were released, as
        // `save_media` listed them (it ran on this same state).
        for ss in &m.segs {
            if let Some(it) = self
                .segs
                .iter()
                .find(|s| s.n == ss.n)
                .and_then(|s| s.buf.kept_from(ss.from))
            {
                it.for_each(|c| out.extend_from_slice(c));
            }
        }
        for ss in m.partial.iter().map(|p| &p.seg) {
            if let Some(s) = self.segs.iter().find(|s| s.n == ss.n) {
                s.buf.kept().for_each(|c| out.extend_from_slice(c));
            }
        }
        if !m.ring.is_empty() {
            for h in self.ring.frames() {
                out.extend_from_slice(&h.data);
            }
        }
    }

    /// Restores [`Chan::save`]'s output; `media` is the rest of the `MDIA`
    /// section, from which this channel takes its bytes. Returns the
    /// segments that did not travel, to report as failed.
    pub(super) fn restore(
        &mut self,
        io: &mut Io<'_, H>,
        s: SavedChannel,
        media: &mut &[u8],
    ) -> Result<Vec<UploadSlice>> {
        let now = io.host.monotonic_ms();
        self.next_seg = s.next_seg;
        self.next_event = s.next_event;
        self.last_video = s.last_video;
        self.acked = s.acked.into();
        self.dumps = s.dumps;
        self.pts = s.pts;
        let m = s.media.unwrap_or_default();
        // Firmware was told this band: the next update compares the fill
        // with it (without media the bytes are gone, so it says the
        // pressure eased, which a fresh band never would).
        self.wm.resume(s.watermark);
        for (i, meta) in s.events.into_iter().enumerate() {
            let stopped = meta.stop_utc_ms.is_some();
            let mut e = Event::new(self.ch(), meta, None, now);
            e.through_seg = match m.through.get(i) {
                Some(&t) => t,
                None if stopped => 0,
                None => e.through_seg,
            };
            self.events.push(e);
        }
        let mut unacked = s.unacked;
        // Whole segments, then those whose first bytes were released: the
        // order `write_media` wrote their bytes in.
        let carried: Vec<(SavedSeg, Option<SavedTail>)> = m
            .segs
            .into_iter()
            .map(|ss| (ss, None))
            .chain(m.partial.into_iter().map(|p| (p.seg, Some(p.tail))))
            .collect();
        let mut segs = Vec::with_capacity(carried.len());
        let mut open_lost = false;
        // Uploads that go on over the old engine's exchanges, and how many
        // of those could go on no other way.
        let (mut adopted, mut released) = (0, 0);
        for (ss, tail) in carried {
            if ss.from != 0 {
                bail!(
                    InvalidArgument,
                    "import-state: channel {}: segment {} is a journal without its hand-over",
                    self.ch(),
                    ss.id
                );
            }
            let Some((bytes, rest)) = usize::try_from(ss.len)
                .ok()
                .and_then(|n| media.split_at_checked(n))
            else {
                bail!(
                    InvalidArgument,
                    "import-state: channel {}: the media section ends inside segment {}",
                    self.ch(),
                    ss.id
                );
            };
            *media = rest;
            let buf = match tail {
                Some(t) => SegBuf::resumed(t, bytes),
                None => SegBuf::restored(bytes, ss.end.is_some()),
            };
            let mut seg = Seg {
                buf,
                n: ss.n,
                id: ss.id,
                start: ss.start,
                end: ss.end,
                event: ss.event,
                last_video_pts: ss.last_video_pts,
                up: Up::Queued,
                failed: None,
                acked: false,
                mismatches: 0,
                based: Cell::new(None),
            };
            match self.resume_upload(io, &seg, ss.up, now) {
                Some(up) => {
                    if matches!(up, Up::Put(_)) {
                        adopted += 1;
                        released += usize::from(!seg.buf.rewindable());
                    }
                    seg.up = up;
                }
                // Sent again from its first byte.
                None if seg.buf.rewindable() => {}
                None => {
                    // Its first bytes are gone and so is the exchange that
                    // carried them: reported failed (its dump remains).
                    open_lost |= seg.end.is_none();
                    io.out.log(
                        LogLevel::Warn,
                        format!(
                            "import-state: channel {}: segment {} cannot go on: its upload in flight was not handed over",
                            self.ch(),
                            seg.id
                        ),
                    );
                    continue;
                }
            }
            let me = seg.slice();
            if let Some(i) = unacked.iter().position(|u| {
                (u.seq_start, u.pts_start_ms, u.utc_start_s)
                    == (me.seq_start, me.pts_start_ms, me.utc_start_s)
            }) {
                unacked.remove(i);
            }
            segs.push(seg);
        }
        segs.sort_by_key(|s| s.n);
        self.segs.extend(segs);
        if adopted > 0 {
            io.out.log(
                LogLevel::Info,
                format!(
                    "import-state: channel {}: {adopted} upload(s) go on over the previous engine's exchanges ({released} of segments whose first bytes were released)",
                    self.ch()
                ),
            );
        }
        let mut ring = Vec::with_capacity(m.ring.len());
        for h in m.ring {
            let Some((data, rest)) = usize::try_from(h.len)
                .ok()
                .and_then(|n| media.split_at_checked(n))
            else {
                bail!(
                    InvalidArgument,
                    "import-state: channel {}: the media section ends inside a pre-record frame",
                    self.ch()
                );
            };
            *media = rest;
            ring.push(Held {
                kind: h.kind,
                key: h.key,
                pts_ms: h.pts_ms,
                seq: h.seq,
                utc_ms: h.utc_ms,
                data: data.to_vec(),
            });
        }
        self.ring = PreRecord::restored(ring);
        self.dropping = m.dropping;
        // The open segment could not go on: recording starts again at the
        // next IDR, as after a checkpoint.
        if let Some(v) = m.run.filter(|_| !open_lost) {
            match serde_json::from_value::<Run>(v) {
                Ok(run) => {
                    self.run = Some(run);
                    self.last_frame_mono = Some(now);
                }
                Err(e) => {
                    // A recording this engine cannot continue (another
                    // version's pipeline): cut as after a checkpoint.
                    io.out.log(
                        LogLevel::Warn,
                        format!(
                            "import-state: channel {}: cannot continue the open recording ({e}); it starts again at the next IDR",
                            self.ch()
                        ),
                    );
                    if let Some(open) = self.segs.back().filter(|s| s.end.is_none()) {
                        unacked.push(open.slice());
                        self.segs.pop_back();
                    }
                }
            }
        }
        Ok(unacked
            .into_iter()
            .map(|mut sl| {
                sl.upload_size = 0;
                sl.state = UploadState::Err;
                sl
            })
            .collect())
    }

    /// The upload a hand-over carried, going on where it stood; none when
    /// it starts again (or, for a segment that cannot, is lost).
    fn resume_upload(
        &self,
        io: &mut Io<'_, H>,
        s: &Seg<H::Exchange>,
        up: SavedUp,
        now: u64,
    ) -> Option<Up<H::Exchange>> {
        match up {
            SavedUp::Queued => None,
            SavedUp::Put(c) => {
                let spec = api::segment_put(&s.id, &self.segment_query(s));
                Call::resume(spec, seg_policy(), c, io.host).map(Up::Put)
            }
            SavedUp::Commit => Some(Up::Commit(commit_call(s, now))),
        }
    }

    /// Recent acknowledged segment ids (oldest first).
    pub fn acked(&self) -> impl Iterator<Item = &String> {
        self.acked.iter()
    }

    /// Queues slices to report at the next tick.
    pub(super) fn queue_slices(&mut self, s: Vec<UploadSlice>) {
        self.slices.extend(s);
    }
}

/// The commit of segment `s`, whose body the cloud has whole.
fn commit_call<X>(s: &Seg<X>, now: u64) -> Call<X> {
    let end = s.end.as_ref().unwrap_or(&s.start);
    let body = json!({
        "sha256": s.buf.digest().unwrap_or(""),
        "bytes": s.buf.produced(),
        "utc_end_ms": end.utc_end_ms,
        "pts_end_ms": end.pts_end_ms,
        "seq_end": end.seq_end,
        "video_frames": end.video_frames,
        "audio_frames": end.audio_frames,
    });
    Call::new(api::segment_commit(&s.id, &body), seg_policy(), now)
}
