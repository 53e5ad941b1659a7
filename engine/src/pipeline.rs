//! The media pipeline of one channel: checks every pushed frame, maps PTS to
//! media time and UTC, cuts segments at the first IDR after the target
//! duration, and drives the container muxer. Bytes leave as [`Output`] as
//! soon as a frame is muxed; a segment is never held whole.
//!
//! [`Pipeline::push`] only *decides* (checks, segment cuts, timestamps) and
//! queues what the muxer has to do; [`Pipeline::take_output`] runs the
//! muxer. So a push costs a check and a copy whatever the frame's size, and
//! the byte work (packetising, and the channel's digest of the output) runs
//! later on the engine's own time (docs/design/buffer.md, "Deferred mux").
//! Every refusal is decided in `push`: what it queued always muxes.
//!
//! Policy for bad input (see docs/design/segments.md): a refused video frame
//! returns an error and the pipeline then waits for the next valid IDR
//! (P frames meanwhile get `IV_ERR_CS_NEED_IDR_FRAME`). An IDR whose PTS
//! goes backwards or jumps more than [`MAX_FRAME_GAP_MS`] starts a new
//! segment on a new timeline instead of being refused, so a firmware PTS
//! reset never stops recording.

use crate::audio_in::AudioInput;
use crate::bail;
use crate::container::SegmentWriter;
use crate::error::{Error, Result};
use crate::types::{AvFormat, Container, Frame, StreamKind};
use ivcs_media::video::{self, SliceKind};
use ivcs_media::{AudioParams, VideoParams};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Largest PTS step between two frames of one segment. Larger steps are
/// treated as a broken timeline (e.g. firmware sending µs instead of ms).
pub const MAX_FRAME_GAP_MS: u64 = 10_000;

/// Accepted range of the target segment duration.
pub const SEGMENT_MS_RANGE: std::ops::RangeInclusive<u32> = 1_000..=600_000;

/// Audio frames are snapped to the running sample count when their PTS is
/// within this many samples of it, so millisecond PTS rounding does not
/// create gaps or overlaps.
const AUDIO_SNAP_SAMPLES: u64 = 512;

/// Samples in one AAC-LC access unit.
const AAC_FRAME_SAMPLES: u64 = 1024;

/// How a pipeline is set up.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PipelineConfig {
    /// Declared audio/video format.
    pub av: AvFormat,
    /// Segment container.
    pub container: Container,
    /// Target segment duration; segments are cut at the first IDR after it.
    pub segment_ms: u32,
    /// UTC (ms) of the first frame.
    pub start_utc_ms: u64,
    /// Largest accepted frame, in bytes.
    pub max_frame_bytes: u32,
}

/// What is known about a segment; complete in [`Output::SegmentEnd`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentInfo {
    /// 0, 1, 2, ... per pipeline.
    pub index: u32,
    /// Its timestamps or encoding parameters do not continue the previous
    /// segment's: the first of a pipeline (media time starts again) or one
    /// with new parameters (a resolution change). Playlists put a
    /// discontinuity before it.
    #[serde(default)]
    pub discontinuity: bool,
    /// RFC 6381 codec string of the video.
    pub codec_string: String,
    /// Container of the bytes.
    pub container: Container,
    /// UTC of the first frame, ms.
    pub utc_start_ms: u64,
    /// UTC where the next segment starts (exclusive), ms.
    pub utc_end_ms: u64,
    /// Firmware PTS of the first frame, ms.
    pub pts_start_ms: u64,
    /// Firmware PTS where the segment ends (exclusive), ms.
    pub pts_end_ms: u64,
    /// Video pack seq of the first frame.
    pub seq_start: u32,
    /// Video pack seq of the last frame.
    pub seq_end: u32,
    /// Firmware PTS of the last video frame, ms.
    pub last_video_pts_ms: u64,
    /// Total bytes.
    pub bytes: u64,
    /// fMP4: length of the leading ftyp+moov; 0 for TS.
    pub init_bytes: u32,
    /// Video frames in the segment.
    pub video_frames: u32,
    /// Audio access units in the segment.
    pub audio_frames: u32,
}

/// Output of the pipeline, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// A segment begins (end fields are zero).
    SegmentStart(SegmentInfo),
    /// Next bytes of the current segment.
    Data(Vec<u8>),
    /// The current segment is complete.
    SegmentEnd(SegmentInfo),
}

/// Maps firmware PTS to media time: media_ms = media_base + (pts - base_pts).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Timeline {
    base_pts: u64,
    media_base_ms: u64,
}

impl Timeline {
    fn media_ms(&self, pts: u64) -> Option<u64> {
        pts.checked_sub(self.base_pts)
            .map(|d| self.media_base_ms.saturating_add(d))
    }
}

/// A muxer step decided by [`Pipeline::push`], run by the [`Muxer`].
#[derive(Serialize, Deserialize)]
enum Cmd {
    /// A new container writer (first segment, or new video parameters).
    Writer(VideoParams),
    /// Open a segment (the muxer fills in `init_bytes`).
    Open(SegmentInfo),
    /// One video access unit at a 90 kHz media time.
    Video {
        #[serde(with = "ivcs_media::b64")]
        data: Vec<u8>,
        ts90: u64,
        key: bool,
    },
    /// One audio access unit at a sample count.
    Audio {
        #[serde(with = "ivcs_media::b64")]
        au: Vec<u8>,
        ticks: u64,
    },
    /// Close the open segment (the muxer fills in `bytes`).
    Close { info: SegmentInfo, end90: u64 },
}

/// The muxing half of a pipeline: runs [`Cmd`]s in order.
#[derive(Serialize, Deserialize)]
struct Muxer {
    container: Container,
    audio: Option<AudioParams>,
    /// The writer and the video parameters it was made for.
    writer: Option<(SegmentWriter, VideoParams)>,
    /// The open segment as the muxer counts it (`bytes`, `init_bytes`).
    seg: Option<SegmentInfo>,
    /// Empty between calls.
    #[serde(skip)]
    buf: Vec<u8>,
    /// Taken by every `take_output`.
    #[serde(skip)]
    out: Vec<Output>,
}

impl Muxer {
    fn run(&mut self, cmd: Cmd) -> Result<()> {
        let Muxer {
            container,
            audio,
            writer,
            seg,
            buf,
            out,
        } = self;
        if let Cmd::Writer(params) = cmd {
            let w = SegmentWriter::new(*container, &params, audio.as_ref());
            *writer = Some((w, params));
            return Ok(());
        }
        let Some((w, params)) = writer else {
            bail!(InvalidArgument, "no container writer");
        };
        match cmd {
            Cmd::Writer(_) => {}
            Cmd::Open(mut info) => {
                info.init_bytes = w.begin(buf)?;
                out.push(Output::SegmentStart(info.clone()));
                *seg = Some(info);
            }
            Cmd::Video { data, ts90, key } => {
                // One allocation for the frame's output instead of a chain
                // of doublings (a 200 KB I frame held 384 KB mid-growth);
                // the container adds ~2 % (TS) or less (fMP4).
                buf.reserve(data.len() + data.len() / 16 + 1024);
                w.video(buf, &data, ts90, key, params)?
            }
            Cmd::Audio { au, ticks } => {
                let Some(a) = audio.as_ref() else {
                    bail!(InvalidArgument, "audio without an audio track");
                };
                w.audio(buf, &au, a, ticks)?;
            }
            Cmd::Close { mut info, end90 } => {
                w.end(buf, end90)?;
                self.flush();
                if let Some(cur) = self.seg.take() {
                    info.bytes = cur.bytes;
                    info.init_bytes = cur.init_bytes;
                }
                self.out.push(Output::SegmentEnd(info));
                return Ok(());
            }
        }
        self.flush();
        Ok(())
    }

    /// Moves muxed bytes to the output, counting them to the open segment.
    fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        if let Some(seg) = &mut self.seg {
            seg.bytes = seg.bytes.saturating_add(self.buf.len() as u64);
        }
        self.out.push(Output::Data(std::mem::take(&mut self.buf)));
    }
}

/// One channel's pipeline. Not thread-safe; the engine owns it.
///
/// Serialisable whole, decided-but-unmuxed steps included, so an open
/// segment continues byte for byte in another engine (hot swap). Output
/// not taken yet is not part of it: take it first.
#[derive(Serialize, Deserialize)]
pub struct Pipeline {
    cfg: PipelineConfig,
    params: Option<VideoParams>,
    /// A container writer exists (the muxer's, once it ran the queue).
    has_writer: bool,
    audio: Option<AudioInput>,
    seg: Option<SegmentInfo>,
    timeline: Option<Timeline>,
    need_idr: bool,
    last_video_pts: Option<u64>,
    last_frame_ms: u64,
    last_audio_pts: Option<u64>,
    audio_next_ticks: Option<u64>,
    /// Media time where the last closed segment ended.
    media_end_ms: u64,
    next_index: u32,
    /// Decided, not yet muxed.
    cmds: VecDeque<Cmd>,
    /// Frame bytes in `cmds`.
    queued_bytes: u64,
    mux: Muxer,
    /// Muxer failures not yet reported (internal errors: `push` decided the
    /// input was good).
    #[serde(skip)]
    failures: Vec<Error>,
}

impl Pipeline {
    /// Checks `cfg` and builds the pipeline.
    pub fn new(cfg: PipelineConfig) -> Result<Self> {
        if !SEGMENT_MS_RANGE.contains(&cfg.segment_ms) {
            bail!(
                InvalidArgument,
                "segment duration {} ms is outside {:?} ms",
                cfg.segment_ms,
                SEGMENT_MS_RANGE
            );
        }
        if cfg.max_frame_bytes == 0 {
            bail!(InvalidArgument, "frame budget of 0 bytes");
        }
        let audio = match &cfg.av.audio {
            Some(a) => Some(AudioInput::new(a)?),
            None => None,
        };
        let last_frame_ms = match cfg.av.framerate {
            0 => 40,
            fps => u64::from((1000 / fps).max(1)),
        };
        let mux = Muxer {
            container: cfg.container,
            audio: audio.as_ref().map(|a: &AudioInput| a.params().clone()),
            writer: None,
            seg: None,
            buf: Vec::new(),
            out: Vec::new(),
        };
        Ok(Pipeline {
            cfg,
            params: None,
            has_writer: false,
            audio,
            seg: None,
            timeline: None,
            need_idr: true,
            last_video_pts: None,
            last_frame_ms,
            last_audio_pts: None,
            audio_next_ticks: None,
            media_end_ms: 0,
            next_index: 0,
            cmds: VecDeque::new(),
            queued_bytes: 0,
            mux,
            failures: Vec::new(),
        })
    }

    /// Muxes what was decided and takes the output produced so far.
    pub fn take_output(&mut self) -> Vec<Output> {
        while let Some(cmd) = self.cmds.pop_front() {
            self.queued_bytes = self.queued_bytes.saturating_sub(cmd_bytes(&cmd));
            if let Err(e) = self.mux.run(cmd) {
                self.failures.push(e);
            }
        }
        std::mem::take(&mut self.mux.out)
    }

    /// Frame bytes decided but not muxed yet.
    pub fn queued_bytes(&self) -> u64 {
        self.queued_bytes
    }

    /// Whether a segment was ever opened (a refused first frame leaves a
    /// pipeline that recorded nothing).
    pub fn started(&self) -> bool {
        self.next_index > 0
    }

    /// UTC ms the recording gives a frame with this PTS (none before the
    /// first key frame, or for a PTS before the timeline's start).
    pub fn utc_of(&self, pts_ms: u64) -> Option<u64> {
        let media = self.timeline.as_ref()?.media_ms(pts_ms)?;
        Some(self.cfg.start_utc_ms.saturating_add(media))
    }

    /// Whether video parameter sets are known (a key frame without its own
    /// may then continue).
    pub fn has_params(&self) -> bool {
        self.params.is_some()
    }

    /// Whether the next video frame must be a key frame.
    pub fn waits_for_key(&self) -> bool {
        self.need_idr || self.seg.is_none()
    }

    /// Muxer failures since the last call (internal errors; the frames they
    /// hit are lost).
    pub fn take_failures(&mut self) -> Vec<Error> {
        std::mem::take(&mut self.failures)
    }

    fn queue(&mut self, cmd: Cmd) {
        self.queued_bytes = self.queued_bytes.saturating_add(cmd_bytes(&cmd));
        self.cmds.push_back(cmd);
    }

    /// Feeds one frame. On error nothing of the frame was muxed.
    pub fn push(&mut self, f: &Frame<'_>) -> Result<()> {
        let what = match f.kind {
            StreamKind::Video => "video",
            StreamKind::Audio => "audio",
        };
        if f.data.is_empty() {
            bail!(
                InvalidArgument,
                "{what} seq {} pts {}: empty frame",
                f.seq,
                f.pts_ms
            );
        }
        if f.data.len() > self.cfg.max_frame_bytes as usize {
            bail!(
                OutOfMemory,
                "{what} seq {} pts {}: frame of {} bytes exceeds the budget of {} bytes",
                f.seq,
                f.pts_ms,
                f.data.len(),
                self.cfg.max_frame_bytes
            );
        }
        match f.kind {
            StreamKind::Video => self.push_video(f),
            StreamKind::Audio => self.push_audio(f),
        }
    }

    /// Ends the stream: drains the audio encoder and closes the last segment.
    pub fn finish(&mut self) -> Result<()> {
        self.drain_audio()?;
        if let Some(last) = self.last_video_pts {
            self.close_segment(last.saturating_add(self.last_frame_ms))?;
        }
        Ok(())
    }

    fn push_video(&mut self, f: &Frame<'_>) -> Result<()> {
        let ctx = || format!("video seq {} pts {}", f.seq, f.pts_ms);
        let info = match video::analyze(self.cfg.av.video, f.data, self.params.as_ref()) {
            Ok(i) => i,
            Err(e) => {
                self.need_idr = true;
                return Err(Error::media(e, &ctx()));
            }
        };
        if info.slice == Some(SliceKind::B) {
            self.need_idr = true;
            bail!(InvalidArgument, "{}: B-frames are not supported", ctx());
        }
        let jump = match self.last_video_pts {
            Some(last) => f.pts_ms <= last || f.pts_ms - last > MAX_FRAME_GAP_MS,
            None => false,
        };
        if !info.keyframe {
            if self.need_idr || self.seg.is_none() {
                bail!(NeedIdr, "{}: waiting for an IDR frame", ctx());
            }
            if jump {
                self.need_idr = true;
                bail!(
                    InvalidArgument,
                    "{}: PTS does not follow the previous frame's {} ms",
                    ctx(),
                    self.last_video_pts.unwrap_or_default()
                );
            }
            return self.mux_video(f, false, true);
        }
        let params = match (info.params, &self.params) {
            (Some(p), _) => p,
            (None, Some(p)) => p.clone(),
            (None, None) => {
                self.need_idr = true;
                bail!(NeedIdr, "{}: IDR without SPS/PPS", ctx());
            }
        };
        let params_changed = self.params.as_ref() != Some(&params);
        let due = match (&self.seg, &self.timeline) {
            (Some(seg), Some(tl)) => {
                let start = tl.media_ms(seg.pts_start_ms).unwrap_or(0);
                tl.media_ms(f.pts_ms)
                    .is_some_and(|now| now.saturating_sub(start) >= u64::from(self.cfg.segment_ms))
            }
            _ => true,
        };
        if jump || params_changed || due {
            if let Some(last) = self.last_video_pts {
                let end = if jump {
                    last.saturating_add(self.last_frame_ms)
                } else {
                    f.pts_ms
                };
                self.close_segment(end)?;
            }
            if jump || self.timeline.is_none() {
                self.timeline = Some(Timeline {
                    base_pts: f.pts_ms,
                    media_base_ms: self.media_end_ms,
                });
                self.audio_next_ticks = None;
            }
            if params_changed || !self.has_writer {
                self.queue(Cmd::Writer(params.clone()));
                self.has_writer = true;
                self.params = Some(params);
            }
            self.open_segment(f, params_changed)?;
        }
        self.need_idr = false;
        self.mux_video(f, true, !jump)
    }

    /// Queues an accepted frame; `continuous` is false for the first frame
    /// of a new timeline, whose distance to the previous frame means nothing.
    fn mux_video(&mut self, f: &Frame<'_>, keyframe: bool, continuous: bool) -> Result<()> {
        let Some(tl) = self
            .timeline
            .filter(|_| self.has_writer && self.params.is_some())
        else {
            bail!(NeedIdr, "video seq {}: no segment open", f.seq);
        };
        let media = tl.media_ms(f.pts_ms).unwrap_or(0);
        self.queue(Cmd::Video {
            data: f.data.to_vec(),
            ts90: media.saturating_mul(90),
            key: keyframe,
        });
        if let Some(prev) = self.last_video_pts.filter(|&p| continuous && p < f.pts_ms) {
            self.last_frame_ms = f.pts_ms - prev;
        }
        self.last_video_pts = Some(f.pts_ms);
        if let Some(seg) = &mut self.seg {
            seg.seq_end = f.seq;
            seg.last_video_pts_ms = f.pts_ms;
            seg.video_frames = seg.video_frames.saturating_add(1);
        }
        Ok(())
    }

    /// Opens a segment at IDR `f`; `new_params`: its parameters differ from
    /// the previous segment's.
    fn open_segment(&mut self, f: &Frame<'_>, new_params: bool) -> Result<()> {
        let (Some(params), Some(tl)) = (&self.params, &self.timeline) else {
            bail!(InvalidArgument, "segment opened without parameters");
        };
        let media = tl.media_ms(f.pts_ms).unwrap_or(0);
        let info = SegmentInfo {
            index: self.next_index,
            discontinuity: new_params || self.next_index == 0,
            codec_string: params.codec_string.clone(),
            container: self.cfg.container,
            utc_start_ms: self.cfg.start_utc_ms.saturating_add(media),
            utc_end_ms: 0,
            pts_start_ms: f.pts_ms,
            pts_end_ms: 0,
            seq_start: f.seq,
            seq_end: f.seq,
            last_video_pts_ms: f.pts_ms,
            bytes: 0,
            init_bytes: 0,
            video_frames: 0,
            audio_frames: 0,
        };
        self.next_index = self.next_index.saturating_add(1);
        self.queue(Cmd::Open(info.clone()));
        self.seg = Some(info);
        Ok(())
    }

    /// Closes the open segment (if any) at firmware PTS `end_pts`.
    fn close_segment(&mut self, end_pts: u64) -> Result<()> {
        let (Some(mut seg), Some(tl)) = (self.seg.take(), self.timeline) else {
            return Ok(());
        };
        let end_media = tl.media_ms(end_pts).unwrap_or(self.media_end_ms);
        seg.pts_end_ms = end_pts;
        seg.utc_end_ms = self.cfg.start_utc_ms.saturating_add(end_media);
        self.media_end_ms = end_media;
        self.queue(Cmd::Close {
            info: seg,
            end90: end_media.saturating_mul(90),
        });
        Ok(())
    }

    fn push_audio(&mut self, f: &Frame<'_>) -> Result<()> {
        if self.audio.is_none() {
            bail!(
                InvalidArgument,
                "audio seq {}: the channel has no audio track",
                f.seq
            );
        }
        if let Some(last) = self.last_audio_pts.filter(|&l| f.pts_ms < l) {
            bail!(
                InvalidArgument,
                "audio seq {} pts {}: PTS went backwards from {last}",
                f.seq,
                f.pts_ms
            );
        }
        if let Some(lv) = self
            .last_video_pts
            .filter(|&lv| f.pts_ms > lv.saturating_add(MAX_FRAME_GAP_MS))
        {
            bail!(
                InvalidArgument,
                "audio seq {} pts {}: more than {MAX_FRAME_GAP_MS} ms ahead of video ({lv})",
                f.seq,
                f.pts_ms
            );
        }
        self.last_audio_pts = Some(f.pts_ms);
        self.with_audio(|audio, sink| audio.push(f.data, f.pts_ms, f.seq, sink))
    }

    fn drain_audio(&mut self) -> Result<()> {
        self.with_audio(|audio, sink| audio.finish(sink))
    }

    /// Runs `feed` on the audio input with a sink that muxes each access unit.
    fn with_audio(
        &mut self,
        feed: impl FnOnce(&mut AudioInput, &mut dyn FnMut(&[u8], u64)) -> Result<()>,
    ) -> Result<()> {
        let Pipeline {
            audio,
            has_writer,
            seg,
            timeline,
            audio_next_ticks,
            ..
        } = self;
        let Some(audio) = audio else {
            return Ok(());
        };
        let rate = u64::from(audio.params().sample_rate);
        let mut aus = Vec::new();
        let mut sink = |au: &[u8], pts: u64| {
            // Audio before the first IDR, or from before a timeline reset,
            // has no segment to go to: it is accepted and dropped.
            let (true, Some(s), Some(tl)) = (*has_writer, seg.as_mut(), timeline.as_ref()) else {
                return;
            };
            let Some(media) = tl.media_ms(pts) else {
                return;
            };
            let exact = media.saturating_mul(rate) / 1000;
            let ticks = match *audio_next_ticks {
                Some(n) if n.abs_diff(exact) < AUDIO_SNAP_SAMPLES => n,
                _ => exact,
            };
            aus.push(Cmd::Audio {
                au: au.to_vec(),
                ticks,
            });
            *audio_next_ticks = Some(ticks + AAC_FRAME_SAMPLES);
            s.audio_frames = s.audio_frames.saturating_add(1);
        };
        feed(audio, &mut sink)?;
        for cmd in aus {
            self.queue(cmd);
        }
        Ok(())
    }
}

/// Frame bytes a command holds.
fn cmd_bytes(cmd: &Cmd) -> u64 {
    match cmd {
        Cmd::Video { data, .. } => data.len() as u64,
        Cmd::Audio { au, .. } => au.len() as u64,
        _ => 0,
    }
}
