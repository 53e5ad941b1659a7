//! Choosing the samples of a time-range export from a run of stored
//! segments, identically in both passes of [`crate::mp4_export`].
//!
//! The caller reads the segments in time order with a
//! [`SegmentReader`] and places each segment on the export's 90 kHz
//! timeline with a `shift` (the cloud derives it from the segment's UTC
//! start; contiguous segments share one so the camera's own clock is kept).
//! [`RangePass1`] decides the cut and builds the file's header;
//! [`RangePass2`] replays its decisions while writing the payload: pass 1
//! records one bit per sample read ([`Selection`], ~1 MB for 24 h), so the
//! two passes keep exactly the same samples by construction, however
//! subtle the rules (pass 2 fails if the segments changed in between).
//!
//! The cut (see docs/design/export.md): the file starts at the last key
//! frame at or before `start` (or the first key frame after it, if the
//! recording starts later) and ends at `end`. It also ends early, at the
//! segment where the video parameters change (one sample entry per file)
//! and at a gap longer than a sample duration can express (2^32 ticks,
//! 13 h). Samples that do not move time forward on their track (overlapping
//! segments, a clock stepped back) are dropped, video then up to the next
//! key frame so the file never holds an undecodable picture.

use crate::mp4_export::{Mp4Export, Mp4ExportBuilder, Mp4Payload};
use crate::segment_reader::{Sample, SegmentReader};
use crate::{AudioParams, Error, ErrorKind, Result, Track, VideoParams};

/// What pass 1 decided; pass 2 needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// Time of the first video frame (a key frame), 90 kHz.
    pub key_start: u64,
    /// Samples at or after this time are left out, 90 kHz.
    pub end: u64,
    /// Segments read (later segments are not part of the export).
    pub segments: usize,
    /// Bit `i`: the `i`-th sample read (over all segments) is in the file.
    keep: Vec<u64>,
}

impl Selection {
    fn set(&mut self, ord: u64) {
        let (w, b) = ((ord / 64) as usize, ord % 64);
        if self.keep.len() <= w {
            self.keep.resize(w + 1, 0);
        }
        if let Some(word) = self.keep.get_mut(w) {
            *word |= 1 << b;
        }
    }

    fn kept(&self, ord: u64) -> bool {
        self.keep
            .get((ord / 64) as usize)
            .is_some_and(|w| w & (1 << (ord % 64)) != 0)
    }
}

/// Drops samples that do not move their track's time forward.
#[derive(Debug, Default)]
struct Monotonic {
    last: [Option<u64>; 2],
    /// A video sample was dropped: skip video up to the next key frame.
    video_broken: bool,
}

impl Monotonic {
    /// The sample's time (DTS for video, PTS for audio) and whether it is
    /// admitted.
    fn admit(&mut self, s: &Sample, shift: i64) -> Option<(u64, u64)> {
        let pts = s.pts_90k.checked_add_signed(shift)?;
        let dts = s.dts_90k.checked_add_signed(shift)?;
        let (slot, t) = match s.track {
            Track::Video => (0, dts),
            Track::Audio => (1, pts),
        };
        let last = self.last.get_mut(slot)?;
        if last.is_some_and(|l| t <= l) {
            self.video_broken |= s.track == Track::Video;
            return None;
        }
        if s.track == Track::Video {
            if self.video_broken && !s.key {
                return None;
            }
            self.video_broken = false;
        }
        *last = Some(t);
        Some((pts, dts))
    }
}

/// Pass-1 metadata of one sample.
#[derive(Clone, Copy, Debug)]
struct Meta {
    /// Ordinal among all samples read.
    ord: u64,
    track: Track,
    pts: u64,
    dts: u64,
    key: bool,
    size: u32,
}

/// How far ahead of the video a muxer may write audio, 90 kHz ticks: audio
/// seen before any key frame is kept this long for one that may follow.
const AUDIO_LEAD_90K: u64 = 2 * 90_000;

/// Pass 1: feed every segment's samples; [`RangePass1::finish`] gives the
/// file's layout and header.
#[derive(Debug)]
pub struct RangePass1 {
    start: u64,
    end: u64,
    shift: i64,
    segments: usize,
    /// Samples read.
    read: u64,
    keep: Selection,
    stopped: bool,
    mono: Monotonic,
    /// Before the start is fixed: the samples from the latest key frame at
    /// or before `start` (or, with none yet, the audio seen).
    candidate: Option<(u64, VideoParams)>,
    pending: Vec<Meta>,
    builder: Option<(Mp4ExportBuilder, VideoParams, Option<AudioParams>, u64)>,
    /// The last two video DTS added, to end the file at a long gap.
    last_dts: [Option<u64>; 2],
}

impl RangePass1 {
    /// An export of `[start, end)` on the 90 kHz export timeline.
    pub fn new(start: u64, end: u64) -> RangePass1 {
        RangePass1 {
            start,
            end,
            shift: 0,
            segments: 0,
            read: 0,
            keep: Selection {
                key_start: 0,
                end,
                segments: 0,
                keep: Vec::new(),
            },
            stopped: false,
            mono: Monotonic::default(),
            candidate: None,
            pending: Vec::new(),
            builder: None,
            last_dts: [None; 2],
        }
    }

    /// Starts the next segment, placed on the timeline by adding `shift`
    /// to its timestamps. False once the export has ended: read no more.
    pub fn begin_segment(&mut self, shift: i64) -> bool {
        if self.stopped {
            return false;
        }
        self.shift = shift;
        self.segments += 1;
        true
    }

    /// The next sample of the current segment, as `reader` produced it.
    pub fn push(&mut self, reader: &SegmentReader, s: &Sample) -> Result<()> {
        let ord = self.read;
        self.read += 1;
        if self.stopped {
            return Ok(());
        }
        let Some((pts, dts)) = self.mono.admit(s, self.shift) else {
            return Ok(());
        };
        if pts >= self.end {
            return Ok(());
        }
        let m = Meta {
            ord,
            track: s.track,
            pts,
            dts,
            key: s.key,
            size: reader.export_size(s)?,
        };
        if self.builder.is_none() {
            return self.seek(reader, m);
        }
        if s.track == Track::Video && s.key && reader.video() != self.video_params() {
            // A new sample entry would be needed: the file ends here.
            self.end = self.end.min(pts);
            self.stopped = true;
            return Ok(());
        }
        self.add(reader, m)
    }

    fn video_params(&self) -> Option<&VideoParams> {
        self.builder.as_ref().map(|b| &b.1)
    }

    /// Before the start is fixed: tracks the candidate key frame.
    fn seek(&mut self, reader: &SegmentReader, m: Meta) -> Result<()> {
        match m.track {
            Track::Video if m.key && m.pts <= self.start => {
                let params = reader
                    .video()
                    .cloned()
                    .ok_or_else(|| Error::malformed("key frame without parameter sets"))?;
                self.candidate = Some((m.pts, params));
                // Audio a muxer wrote before the key frame but timed at or
                // after it belongs to the file.
                self.pending
                    .retain(|p| p.track == Track::Audio && p.pts >= m.pts);
                self.pending.push(m);
            }
            Track::Video if m.pts <= self.start => {
                if self.candidate.is_some() {
                    self.pending.push(m);
                }
            }
            Track::Video => {
                // The first frame after the start fixes it: the candidate,
                // or this frame if it is a key frame.
                let (key_start, params) = match self.candidate.take() {
                    Some(c) => c,
                    None if m.key => (
                        m.pts,
                        reader
                            .video()
                            .cloned()
                            .ok_or_else(|| Error::malformed("key frame without parameter sets"))?,
                    ),
                    None => return Ok(()),
                };
                let audio = reader.audio().cloned();
                let b = Mp4ExportBuilder::new(&params, audio.as_ref())?;
                self.builder = Some((b, params, audio, key_start));
                for p in std::mem::take(&mut self.pending) {
                    if p.pts >= key_start {
                        self.add(reader, p)?;
                    }
                }
                self.add(reader, m)?;
            }
            // Audio before the start is kept from a candidate on; before
            // one, only what a key frame written after it may still claim
            // (muxers interleave audio up to about a second ahead).
            Track::Audio => {
                if self.candidate.is_none() {
                    let recent = m.pts.saturating_sub(AUDIO_LEAD_90K);
                    self.pending.retain(|p| p.pts >= recent);
                }
                self.pending.push(m);
            }
        }
        Ok(())
    }

    fn add(&mut self, reader: &SegmentReader, m: Meta) -> Result<()> {
        let Some((b, _, audio, key_start)) = &mut self.builder else {
            return Ok(());
        };
        if m.pts < *key_start {
            return Ok(());
        }
        match m.track {
            Track::Video => {
                if let Some(last) = self.last_dts[1]
                    && m.dts.saturating_sub(last) > u64::from(u32::MAX)
                {
                    // Longer than a sample can last: end the file at the
                    // gap, the last frame lasting as long as the one before.
                    let d = self.last_dts[0].map_or(3600, |p| last.saturating_sub(p));
                    self.end = self.end.min(last.saturating_add(d));
                    self.stopped = true;
                    return Ok(());
                }
                b.add_video(m.pts, m.dts, m.size, m.key)?;
                self.last_dts = [self.last_dts[1], Some(m.dts)];
            }
            // Audio of other parameters than the track's is left out.
            Track::Audio if audio.is_some() && reader.audio() == audio.as_ref() => {
                b.add_audio(m.pts, m.size)?;
            }
            Track::Audio => return Ok(()),
        }
        self.keep.set(m.ord);
        Ok(())
    }

    /// Ends pass 1. Errors (`NeedKeyFrame`) when the range holds no key
    /// frame to start from.
    pub fn finish(mut self) -> Result<(Mp4Export, Selection)> {
        if self.builder.is_none()
            && let Some((key_start, params)) = self.candidate.take()
        {
            // Every frame was before the start: begin at the candidate.
            let b = Mp4ExportBuilder::new(&params, None)?;
            self.builder = Some((b, params, None, key_start));
            for p in std::mem::take(&mut self.pending) {
                if p.track == Track::Video
                    && let Some((b, ..)) = &mut self.builder
                {
                    b.add_video(p.pts, p.dts, p.size, p.key)?;
                    self.keep.set(p.ord);
                }
            }
        }
        let Some((b, _, _, key_start)) = self.builder else {
            return Err(Error::new(
                ErrorKind::NeedKeyFrame,
                "no key frame in the range",
            ));
        };
        let export = b.finish(Some(self.end))?;
        let mut sel = self.keep;
        sel.key_start = key_start;
        sel.end = self.end;
        sel.segments = self.segments;
        Ok((export, sel))
    }
}

/// Pass 2: feed the same segments again, every sample the reader yields;
/// the payload bytes are appended to `out` in file order.
#[derive(Debug)]
pub struct RangePass2<'a> {
    sel: Selection,
    segments: usize,
    read: u64,
    payload: Mp4Payload<'a>,
}

impl<'a> RangePass2<'a> {
    /// Pass 2 of `export` with pass 1's `selection`. Write
    /// `export.header()` first.
    pub fn new(export: &'a Mp4Export, selection: Selection) -> RangePass2<'a> {
        RangePass2 {
            sel: selection,
            segments: 0,
            read: 0,
            payload: export.payload(),
        }
    }

    /// Starts the next segment; false after the last segment pass 1 read.
    pub fn begin_segment(&mut self) -> bool {
        if self.segments >= self.sel.segments {
            return false;
        }
        self.segments += 1;
        true
    }

    /// The next sample of the current segment.
    pub fn push(&mut self, reader: &SegmentReader, s: &Sample, out: &mut Vec<u8>) -> Result<()> {
        let ord = self.read;
        self.read += 1;
        if !self.sel.kept(ord) {
            return Ok(());
        }
        reader.push_export(s, &mut self.payload, out)
    }

    /// Bytes held for chunks not yet due (about one chunk per track).
    pub fn buffered_bytes(&self) -> usize {
        self.payload.buffered_bytes()
    }

    /// Ends pass 2: errors unless it wrote every sample pass 1 counted.
    pub fn finish(self) -> Result<()> {
        self.payload.finish()
    }
}
