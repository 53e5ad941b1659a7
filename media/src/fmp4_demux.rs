//! Fragmented MP4 demuxer (ISO/IEC 14496-12) for the segments
//! [`crate::fmp4::Fmp4Muxer`] writes: `ftyp` + `moov` (the init part), then
//! `moof` + `mdat` pairs. Turns stored segments back into frames for
//! playback and export.
//!
//! [`Fmp4Demuxer`] takes the bytes in chunks of any size. `moov` and each
//! `moof` are buffered whole (they are small; capped at
//! [`MAX_METADATA_BOX`]); `mdat` is streamed: each sample is collected as
//! its bytes arrive and emitted as an [`Fmp4Frame`], so only one sample
//! (capped at [`Fmp4DemuxConfig::max_frame_bytes`]) is ever held.
//!
//! What it reads: per track, `tkhd` (id), `mdhd` (timescale), `hdlr`, and
//! the first sample entry (`avc1`/`avc3` + `avcC`, `hvc1`/`hev1` + `hvcC`,
//! `mp4a` + `esds`), plus `trex` defaults; per fragment, `tfhd` (base
//! offset and defaults), `tfdt`, and every `trun` (sizes, durations, flags,
//! composition offsets). Sample data must lie in the `mdat` that follows
//! its `moof` (true of CMAF and of every segment ivcs writes). Tracks of
//! other kinds or codecs, and empty samples, are skipped.
//!
//! Not for: progressive MP4 (sample tables in `moov`), `sidx`-indexed
//! seeking, encryption, multiple sample descriptions per track.
//!
//! Robustness: any input is accepted without panicking, with memory
//! bounded as above; damage (bad box sizes, samples outside the `mdat`,
//! oversized samples, truncation) is handled per [`OnDamage`].
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use crate::adts::SAMPLE_RATES;
use crate::demux::{DEFAULT_MAX_FRAME_BYTES, DamageLog, OnDamage};
use crate::{AudioParams, Error, ErrorKind, Result, Track, VideoCodec};

/// Largest `moov` or `moof` buffered (4 MiB); a larger one is damage and
/// skipped. A segment's `moov` is about 1 KB, a `moof` a few hundred bytes.
pub const MAX_METADATA_BOX: u64 = 4 << 20;

/// Most samples one `moof` may describe. `trun` entries can be all
/// defaults (zero bytes each), so the count alone must be bounded.
pub const MAX_FRAGMENT_SAMPLES: usize = 1 << 16;

/// trun/tfhd sample flags: sample_is_non_sync_sample.
const NON_SYNC: u32 = 0x0001_0000;

/// How an [`Fmp4Demuxer`] treats its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fmp4DemuxConfig {
    /// Largest sample kept; larger ones are skipped as damage.
    pub max_frame_bytes: usize,
    /// What to do with damaged input.
    pub on_damage: OnDamage,
}

impl Default for Fmp4DemuxConfig {
    fn default() -> Self {
        Fmp4DemuxConfig {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            on_damage: OnDamage::Skip,
        }
    }
}

/// The codec configuration of a track, from its sample entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackConfig {
    /// `avc1`/`avc3` or `hvc1`/`hev1`.
    Video {
        /// H.264 or H.265.
        codec: VideoCodec,
        /// Width from the sample entry, pixels.
        width: u16,
        /// Height from the sample entry, pixels.
        height: u16,
        /// The `avcC`/`hvcC` box body (decoder configuration record), as
        /// stored; see [`crate::VideoParams::from_decoder_config`].
        decoder_config: Vec<u8>,
    },
    /// `mp4a` with an AudioSpecificConfig in `esds`. Sample rate and
    /// channels come from the AudioSpecificConfig (the sample entry's own
    /// fields only fill in a channel configuration of 0).
    Audio(AudioParams),
}

/// One track of the init part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fmp4Track {
    /// `track_ID`.
    pub track_id: u32,
    /// Video or audio.
    pub track: Track,
    /// Media timescale (ticks per second) of decode times and durations.
    pub timescale: u32,
    /// The sample entry.
    pub config: TrackConfig,
}

/// One demuxed sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fmp4Frame {
    /// Video or audio.
    pub track: Track,
    /// The `track_ID` it belongs to.
    pub track_id: u32,
    /// Decode time in the track's timescale.
    pub decode_time: u64,
    /// Composition (presentation) time minus decode time.
    pub composition_offset: i64,
    /// Duration in the track's timescale.
    pub duration: u32,
    /// A sync sample (key frame; every AAC frame).
    pub sync: bool,
    /// The sample as stored: length-prefixed NAL units for video, a raw
    /// AAC access unit for audio.
    pub data: Vec<u8>,
}

/// Defaults from `trex`.
#[derive(Clone, Copy, Debug, Default)]
struct Trex {
    duration: u32,
    size: u32,
    flags: u32,
}

#[derive(Clone, Debug)]
struct TrackState {
    info: Fmp4Track,
    trex: Trex,
    /// Where the next fragment continues when it has no `tfdt`.
    next_decode_time: u64,
}

/// A sample described by the last `moof`.
#[derive(Clone, Copy, Debug)]
struct Sample {
    /// Index into `tracks`.
    track: usize,
    /// Absolute input offset of its first byte.
    offset: u64,
    size: u32,
    decode_time: u64,
    composition_offset: i64,
    duration: u32,
    sync: bool,
}

/// Where the top-level box parser is.
#[derive(Clone, Copy, Debug)]
enum State {
    /// Reading a box header (8 bytes, or 16 with a 64-bit size).
    Header,
    /// Buffering the body of `moov`/`moof` (`start`: offset of the box).
    Buffer {
        kind: [u8; 4],
        start: u64,
        remaining: u64,
    },
    /// Skipping a box we do not read, or the rest of the input (`None`).
    Skip { remaining: Option<u64> },
    /// Streaming `mdat` payload up to `end` (`None`: to the end of input).
    Mdat { end: Option<u64> },
}

/// Streaming fMP4 demuxer; see the module documentation.
#[derive(Debug)]
pub struct Fmp4Demuxer {
    cfg: Fmp4DemuxConfig,
    state: State,
    /// Input offset of the next byte.
    pos: u64,
    header: Vec<u8>,
    body: Vec<u8>,
    tracks: Vec<TrackState>,
    /// Public view of `tracks`.
    infos: Vec<Fmp4Track>,
    /// Samples of the last `moof`, in offset order, not yet emitted.
    samples: std::collections::VecDeque<Sample>,
    /// Bytes of the sample being collected (the front of `samples`).
    current: Vec<u8>,
    damage: DamageLog,
}

impl Default for Fmp4Demuxer {
    fn default() -> Self {
        Self::new(Fmp4DemuxConfig::default())
    }
}

impl Fmp4Demuxer {
    /// A demuxer with `cfg`.
    pub fn new(cfg: Fmp4DemuxConfig) -> Self {
        Fmp4Demuxer {
            cfg,
            state: State::Header,
            pos: 0,
            header: Vec::with_capacity(16),
            body: Vec::new(),
            tracks: Vec::new(),
            infos: Vec::new(),
            samples: Default::default(),
            current: Vec::new(),
            damage: DamageLog::default(),
        }
    }

    /// The tracks of the last `moov` read (empty before it).
    pub fn tracks(&self) -> &[Fmp4Track] {
        &self.infos
    }

    /// Damage skipped so far (always empty under [`OnDamage::Fail`]).
    pub fn damage(&self) -> &DamageLog {
        &self.damage
    }

    /// Feeds the next bytes; complete samples are appended to `out`.
    /// Errors only under [`OnDamage::Fail`].
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<Fmp4Frame>) -> Result<()> {
        while !data.is_empty() {
            let used = match self.state {
                State::Header => self.read_header(data)?,
                State::Buffer {
                    kind,
                    start,
                    remaining,
                } => {
                    let n = clamp(remaining, data.len());
                    self.body
                        .extend_from_slice(data.get(..n).unwrap_or_default());
                    let remaining = remaining - n as u64;
                    self.state = State::Buffer {
                        kind,
                        start,
                        remaining,
                    };
                    if remaining == 0 {
                        self.pos += n as u64;
                        self.state = State::Header;
                        let body = std::mem::take(&mut self.body);
                        let r = self.metadata_box(kind, start, &body);
                        self.body = body;
                        self.body.clear();
                        r?;
                        data = data.get(n..).unwrap_or_default();
                        continue;
                    }
                    n
                }
                State::Skip { remaining } => {
                    let n = remaining.map_or(data.len(), |r| clamp(r, data.len()));
                    let left = remaining.map(|r| r - n as u64);
                    self.state = match left {
                        Some(0) => State::Header,
                        _ => State::Skip { remaining: left },
                    };
                    n
                }
                State::Mdat { end } => {
                    let n = end.map_or(data.len(), |e| {
                        clamp(e.saturating_sub(self.pos), data.len())
                    });
                    self.mdat_bytes(data.get(..n).unwrap_or_default(), out)?;
                    if end == Some(self.pos + n as u64) {
                        self.pos += n as u64;
                        self.state = State::Header;
                        self.end_mdat()?;
                        data = data.get(n..).unwrap_or_default();
                        continue;
                    }
                    n
                }
            };
            self.pos += used as u64;
            data = data.get(used..).unwrap_or_default();
        }
        Ok(())
    }

    /// Ends the input (one segment): reports a truncated box or missing
    /// sample data as damage and resets the parser for the next segment
    /// ([`Self::tracks`] stays until the next `moov`).
    pub fn finish(&mut self, _out: &mut Vec<Fmp4Frame>) -> Result<()> {
        let at = self.pos;
        let complete = matches!(
            self.state,
            State::Skip { remaining: None } | State::Mdat { end: None }
        ) || matches!(self.state, State::Header if self.header.is_empty());
        let r = if !complete {
            self.samples.clear();
            self.report(Error::malformed(format!(
                "fMP4: input ends inside a box at byte {at}"
            )))
        } else {
            self.end_mdat()
        };
        self.state = State::Header;
        self.pos = 0;
        self.header.clear();
        self.body = Vec::new();
        self.current = Vec::new();
        r
    }

    fn report(&mut self, err: Error) -> Result<()> {
        self.damage.record(self.cfg.on_damage, err)
    }

    /// Collects header bytes; on a complete header, picks the next state.
    fn read_header(&mut self, data: &[u8]) -> Result<usize> {
        let need: usize = if self.header.get(..4) == Some(&[0, 0, 0, 1]) {
            16
        } else {
            8
        };
        let n = need.saturating_sub(self.header.len()).min(data.len());
        self.header
            .extend_from_slice(data.get(..n).unwrap_or_default());
        if self.header.len() < need {
            return Ok(n);
        }
        if need == 8 && self.header.get(..4) == Some(&[0, 0, 0, 1]) {
            // A 64-bit size follows: read 8 more.
            return Ok(n);
        }
        let start = self.pos + n as u64 - need as u64;
        let (size, kind) = match self.header.as_slice() {
            [a, b, c, d, k0, k1, k2, k3] => (
                Some(u64::from(u32::from_be_bytes([*a, *b, *c, *d]))),
                [*k0, *k1, *k2, *k3],
            ),
            [_, _, _, _, k0, k1, k2, k3, s @ ..] => (
                s.first_chunk::<8>().map(|s| u64::from_be_bytes(*s)),
                [*k0, *k1, *k2, *k3],
            ),
            _ => (None, [0; 4]),
        };
        self.header.clear();
        // Size 0: the box extends to the end of the input.
        let body = match size {
            Some(0) => None,
            Some(s) if s >= need as u64 => Some(s - need as u64),
            _ => {
                self.state = State::Skip { remaining: None };
                self.report(Error::malformed(format!(
                    "fMP4: box '{}' at byte {start} has size {} (below its header)",
                    fourcc(&kind),
                    size.unwrap_or_default()
                )))?;
                return Ok(n);
            }
        };
        self.state = match (&kind, body) {
            (b"moov" | b"moof", Some(0)) => {
                self.state = State::Header;
                self.metadata_box(kind, start, &[])?;
                State::Header
            }
            (b"moov" | b"moof", Some(len)) if len <= MAX_METADATA_BOX => {
                self.body.reserve(clamp(len, 1 << 16));
                State::Buffer {
                    kind,
                    start,
                    remaining: len,
                }
            }
            (b"moov" | b"moof", _) => {
                self.report(Error::new(
                    ErrorKind::TooLarge,
                    format!(
                        "fMP4: '{}' at byte {start} is larger than {MAX_METADATA_BOX} bytes",
                        fourcc(&kind)
                    ),
                ))?;
                State::Skip { remaining: body }
            }
            (b"mdat", _) => {
                let payload = self.pos + n as u64;
                let end = body.map(|len| payload.saturating_add(len));
                self.begin_mdat(payload, end)?;
                if body == Some(0) {
                    self.end_mdat()?;
                    State::Header
                } else {
                    State::Mdat { end }
                }
            }
            (_, Some(0)) => State::Header,
            (_, remaining) => State::Skip { remaining },
        };
        Ok(n)
    }

    fn metadata_box(&mut self, kind: [u8; 4], start: u64, body: &[u8]) -> Result<()> {
        let r = match &kind {
            b"moov" => self.moov(body),
            _ => self.moof(start, body),
        };
        match r {
            Ok(()) => Ok(()),
            Err(e) => {
                if kind == *b"moof" {
                    self.samples.clear();
                }
                self.report(Error::new(
                    e.kind(),
                    format!("fMP4: '{}' at byte {start}: {}", fourcc(&kind), e.message()),
                ))
            }
        }
    }

    fn moov(&mut self, body: &[u8]) -> Result<()> {
        let mut tracks = Vec::new();
        let mut trex: Vec<(u32, Trex)> = Vec::new();
        for b in boxes(body) {
            let (kind, payload) = b?;
            match &kind {
                b"trak" => {
                    if let Some(t) = trak(payload)? {
                        tracks.push(t);
                    }
                }
                b"mvex" => {
                    for b in boxes(payload) {
                        let (kind, payload) = b?;
                        if &kind == b"trex" {
                            let mut r = Reader::new(payload);
                            r.skip(4)?;
                            let id = r.u32()?;
                            r.skip(4)?; // default_sample_description_index
                            let t = Trex {
                                duration: r.u32()?,
                                size: r.u32()?,
                                flags: r.u32()?,
                            };
                            trex.push((id, t));
                        }
                    }
                }
                _ => {}
            }
        }
        self.tracks = tracks
            .into_iter()
            .map(|info| TrackState {
                trex: trex
                    .iter()
                    .find(|(id, _)| *id == info.track_id)
                    .map(|(_, t)| *t)
                    .unwrap_or_default(),
                info,
                next_decode_time: 0,
            })
            .collect();
        self.infos = self.tracks.iter().map(|t| t.info.clone()).collect();
        Ok(())
    }

    /// Reads the sample descriptions of a `moof` starting at `moof_start`.
    fn moof(&mut self, moof_start: u64, body: &[u8]) -> Result<()> {
        if !self.samples.is_empty() {
            // The previous fragment's mdat never came.
            let n = self.samples.len();
            self.samples.clear();
            self.report(Error::malformed(format!(
                "fMP4: {n} samples of the previous fragment had no mdat"
            )))?;
        }
        let mut samples = Vec::new();
        // Without an explicit base, a traf's data follows the previous one's.
        let mut data_end = moof_start;
        for b in boxes(body) {
            let (kind, payload) = b?;
            if &kind == b"traf" {
                data_end = self.traf(payload, moof_start, data_end, &mut samples)?;
            }
        }
        samples.sort_by_key(|s: &Sample| s.offset);
        self.samples = samples.into();
        Ok(())
    }

    /// One `traf`; returns where its data ends.
    fn traf(
        &mut self,
        body: &[u8],
        moof_start: u64,
        prev_end: u64,
        samples: &mut Vec<Sample>,
    ) -> Result<u64> {
        let mut tfhd = None;
        let mut tfdt = None;
        let mut truns = Vec::new();
        for b in boxes(body) {
            let (kind, payload) = b?;
            match &kind {
                b"tfhd" => tfhd = Some(payload),
                b"tfdt" => {
                    let mut r = Reader::new(payload);
                    let version = r.u8()?;
                    r.skip(3)?;
                    tfdt = Some(if version == 1 {
                        r.u64()?
                    } else {
                        u64::from(r.u32()?)
                    });
                }
                b"trun" => truns.push(payload),
                _ => {}
            }
        }
        let mut r = Reader::new(tfhd.ok_or_else(|| Error::malformed("traf without tfhd"))?);
        let flags = r.u32()? & 0x00FF_FFFF;
        let track_id = r.u32()?;
        let base_data_offset = if flags & 0x01 != 0 {
            Some(r.u64()?)
        } else {
            None
        };
        if flags & 0x02 != 0 {
            r.skip(4)?; // sample_description_index: one entry is supported
        }
        let track = self.tracks.iter().position(|t| t.info.track_id == track_id);
        let trex = track
            .and_then(|i| self.tracks.get(i))
            .map(|t| t.trex)
            .unwrap_or_default();
        let default_duration = if flags & 0x08 != 0 {
            r.u32()?
        } else {
            trex.duration
        };
        let default_size = if flags & 0x10 != 0 {
            r.u32()?
        } else {
            trex.size
        };
        let default_flags = if flags & 0x20 != 0 {
            r.u32()?
        } else {
            trex.flags
        };
        let base = match base_data_offset {
            Some(b) => b,
            None if flags & 0x02_0000 != 0 => moof_start,
            None => prev_end,
        };
        let mut time = tfdt
            .or_else(|| {
                track
                    .and_then(|i| self.tracks.get(i))
                    .map(|t| t.next_decode_time)
            })
            .unwrap_or_default();
        let mut cursor = base;
        for trun in truns {
            let mut r = Reader::new(trun);
            let version = r.u8()?;
            let flags = u32::from_be_bytes([0, r.u8()?, r.u8()?, r.u8()?]);
            let count = r.u32()? as usize;
            if samples.len().saturating_add(count) > MAX_FRAGMENT_SAMPLES {
                return Err(Error::new(
                    ErrorKind::TooLarge,
                    format!("more than {MAX_FRAGMENT_SAMPLES} samples in one fragment"),
                ));
            }
            if flags & 0x01 != 0 {
                let off = i64::from(r.i32()?);
                cursor = base
                    .checked_add_signed(off)
                    .ok_or_else(|| Error::malformed("trun data_offset before the file"))?;
            }
            let first_flags = if flags & 0x04 != 0 {
                Some(r.u32()?)
            } else {
                None
            };
            for i in 0..count {
                let duration = if flags & 0x100 != 0 {
                    r.u32()?
                } else {
                    default_duration
                };
                let size = if flags & 0x200 != 0 {
                    r.u32()?
                } else {
                    default_size
                };
                let sample_flags = if flags & 0x400 != 0 {
                    r.u32()?
                } else if i == 0 {
                    first_flags.unwrap_or(default_flags)
                } else {
                    default_flags
                };
                let composition_offset = if flags & 0x800 != 0 {
                    let raw = r.u32()?;
                    if version == 0 {
                        i64::from(raw)
                    } else {
                        i64::from(raw as i32)
                    }
                } else {
                    0
                };
                // An empty sample has nothing to decode (and costs no input
                // bytes, so keeping it would let a tiny moof emit 64k frames).
                if let Some(track) = track.filter(|_| size > 0) {
                    samples.push(Sample {
                        track,
                        offset: cursor,
                        size,
                        decode_time: time,
                        composition_offset,
                        duration,
                        sync: sample_flags & NON_SYNC == 0,
                    });
                }
                cursor = cursor.saturating_add(u64::from(size));
                time = time.saturating_add(u64::from(duration));
            }
        }
        if let Some(t) = track.and_then(|i| self.tracks.get_mut(i)) {
            t.next_decode_time = time;
        }
        Ok(cursor)
    }

    /// Drops (as damage) the samples that do not lie in the mdat payload
    /// `[start, end)` or overlap the previous one.
    fn begin_mdat(&mut self, start: u64, end: Option<u64>) -> Result<()> {
        let mut kept = std::collections::VecDeque::with_capacity(self.samples.len());
        let mut bad = 0usize;
        let mut too_large = 0usize;
        let mut prev_end = start;
        for s in self.samples.drain(..) {
            let s_end = s.offset.saturating_add(u64::from(s.size));
            if s.offset < prev_end || end.is_some_and(|e| s_end > e) {
                bad += 1;
            } else if s.size as usize > self.cfg.max_frame_bytes {
                too_large += 1;
            } else {
                prev_end = s_end;
                kept.push_back(s);
            }
        }
        self.samples = kept;
        if bad > 0 {
            self.report(Error::malformed(format!(
                "fMP4: {bad} samples lie outside the mdat at byte {start} or overlap"
            )))?;
        }
        if too_large > 0 {
            let max = self.cfg.max_frame_bytes;
            self.report(Error::new(
                ErrorKind::TooLarge,
                format!("fMP4: {too_large} samples in the mdat at byte {start} exceed {max} bytes"),
            ))?;
        }
        Ok(())
    }

    /// Payload bytes of the mdat at the current position.
    fn mdat_bytes(&mut self, mut data: &[u8], out: &mut Vec<Fmp4Frame>) -> Result<()> {
        let mut pos = self.pos;
        while let Some(s) = self.samples.front().copied() {
            let end = pos + data.len() as u64;
            if s.offset > end || (s.offset == end && s.size > 0) {
                break;
            }
            // Bytes before the sample (other tracks, padding) are skipped.
            let skip = s.offset.saturating_sub(pos);
            data = data.get(clamp(skip, data.len())..).unwrap_or_default();
            pos += skip;
            let have = self.current.len() as u64;
            let want = u64::from(s.size) - have;
            let n = clamp(want, data.len());
            if self.current.is_empty() {
                self.current.reserve_exact(s.size as usize);
            }
            self.current
                .extend_from_slice(data.get(..n).unwrap_or_default());
            data = data.get(n..).unwrap_or_default();
            pos += n as u64;
            if self.current.len() as u64 == u64::from(s.size) {
                self.samples.pop_front();
                if let Some(t) = self.tracks.get(s.track) {
                    out.push(Fmp4Frame {
                        track: t.info.track,
                        track_id: t.info.track_id,
                        decode_time: s.decode_time,
                        composition_offset: s.composition_offset,
                        duration: s.duration,
                        sync: s.sync,
                        data: std::mem::take(&mut self.current),
                    });
                }
                self.current.clear();
            } else {
                break;
            }
        }
        Ok(())
    }

    fn end_mdat(&mut self) -> Result<()> {
        self.current.clear();
        if self.samples.is_empty() {
            return Ok(());
        }
        let n = self.samples.len();
        self.samples.clear();
        let at = self.pos;
        self.report(Error::malformed(format!(
            "fMP4: {n} samples of the last fragment are missing at byte {at}"
        )))
    }
}

/// `n` as usize, at most `max`.
fn clamp(n: u64, max: usize) -> usize {
    usize::try_from(n).map_or(max, |n| n.min(max))
}

fn fourcc(k: &[u8; 4]) -> String {
    k.iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}

/// Big-endian field reader over a box body; running past the end is
/// [`ErrorKind::Malformed`].
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N]> {
        let (head, rest) = self
            .data
            .split_first_chunk::<N>()
            .ok_or_else(|| Error::malformed("box body is truncated"))?;
        self.data = rest;
        Ok(*head)
    }

    fn skip(&mut self, n: usize) -> Result<()> {
        self.data = self
            .data
            .get(n..)
            .ok_or_else(|| Error::malformed("box body is truncated"))?;
        Ok(())
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(u8::from_be_bytes(self.take()?))
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.take()?))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.take()?))
    }

    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.take()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.take()?))
    }
}

/// The child boxes of a body: (type, payload). A bad size ends the
/// iteration with an error.
fn boxes(data: &[u8]) -> impl Iterator<Item = Result<([u8; 4], &[u8])>> {
    let mut rest = data;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || rest.is_empty() {
            return None;
        }
        let r = (|| {
            let mut r = Reader::new(rest);
            let size32 = r.u32()?;
            let kind: [u8; 4] = r.take()?;
            let (size, header) = match size32 {
                0 => (rest.len() as u64, 8),
                1 => (r.u64()?, 16),
                s => (u64::from(s), 8),
            };
            let size = usize::try_from(size)
                .ok()
                .filter(|&s| s >= header && s <= rest.len())
                .ok_or_else(|| {
                    Error::malformed(format!(
                        "box '{}' of size {size} does not fit",
                        fourcc(&kind)
                    ))
                })?;
            let payload = rest.get(header..size).unwrap_or_default();
            rest = rest.get(size..).unwrap_or_default();
            Ok((kind, payload))
        })();
        failed = r.is_err();
        Some(r)
    })
}

/// The first child of type `want`.
fn child<'a>(data: &'a [u8], want: &[u8; 4]) -> Result<Option<&'a [u8]>> {
    for b in boxes(data) {
        let (kind, payload) = b?;
        if &kind == want {
            return Ok(Some(payload));
        }
    }
    Ok(None)
}

/// A `trak`, if it is a video or audio track with a supported entry.
fn trak(body: &[u8]) -> Result<Option<Fmp4Track>> {
    let tkhd = child(body, b"tkhd")?.ok_or_else(|| Error::malformed("trak without tkhd"))?;
    let mut r = Reader::new(tkhd);
    let version = r.u8()?;
    r.skip(3 + if version == 1 { 16 } else { 8 })?;
    let track_id = r.u32()?;

    let mdia = child(body, b"mdia")?.ok_or_else(|| Error::malformed("trak without mdia"))?;
    let mdhd = child(mdia, b"mdhd")?.ok_or_else(|| Error::malformed("mdia without mdhd"))?;
    let mut r = Reader::new(mdhd);
    let version = r.u8()?;
    r.skip(3 + if version == 1 { 16 } else { 8 })?;
    let timescale = r.u32()?;
    let hdlr = child(mdia, b"hdlr")?.ok_or_else(|| Error::malformed("mdia without hdlr"))?;
    let mut r = Reader::new(hdlr);
    r.skip(8)?;
    let handler: [u8; 4] = r.take()?;
    let track = match &handler {
        b"vide" => Track::Video,
        b"soun" => Track::Audio,
        _ => return Ok(None),
    };
    let stsd = child(mdia, b"minf")?
        .map(|minf| child(minf, b"stbl"))
        .transpose()?
        .flatten()
        .map(|stbl| child(stbl, b"stsd"))
        .transpose()?
        .flatten()
        .ok_or_else(|| Error::malformed("track without stsd"))?;
    let entries = stsd
        .get(8..)
        .ok_or_else(|| Error::malformed("stsd is truncated"))?;
    let Some(entry) = boxes(entries).next().transpose()? else {
        return Err(Error::malformed("stsd has no entry"));
    };
    let config = match (track, &entry.0) {
        (Track::Video, b"avc1" | b"avc3") => video_entry(VideoCodec::H264, entry.1, b"avcC")?,
        (Track::Video, b"hvc1" | b"hev1") => video_entry(VideoCodec::H265, entry.1, b"hvcC")?,
        (Track::Audio, b"mp4a") => audio_entry(entry.1)?,
        _ => return Ok(None),
    };
    Ok(Some(Fmp4Track {
        track_id,
        track,
        timescale,
        config,
    }))
}

fn video_entry(codec: VideoCodec, body: &[u8], config_box: &[u8; 4]) -> Result<TrackConfig> {
    let mut r = Reader::new(body);
    r.skip(24)?;
    let width = r.u16()?;
    let height = r.u16()?;
    let children = body
        .get(78..)
        .ok_or_else(|| Error::malformed("visual sample entry is truncated"))?;
    let decoder_config = child(children, config_box)?
        .ok_or_else(|| Error::malformed(format!("no {} box", fourcc(config_box))))?
        .to_vec();
    Ok(TrackConfig::Video {
        codec,
        width,
        height,
        decoder_config,
    })
}

fn audio_entry(body: &[u8]) -> Result<TrackConfig> {
    let mut r = Reader::new(body);
    r.skip(8)?;
    let version = r.u16()?;
    r.skip(6)?;
    let entry_channels = r.u16()?;
    // QuickTime sound description versions 1 and 2 add fields.
    let fields = match version {
        0 => 28,
        1 => 28 + 16,
        2 => 28 + 36,
        v => return Err(Error::unsupported(format!("mp4a version {v}"))),
    };
    let children = body
        .get(fields..)
        .ok_or_else(|| Error::malformed("audio sample entry is truncated"))?;
    let esds = child(children, b"esds")?.ok_or_else(|| Error::malformed("mp4a without esds"))?;
    let asc = esds_asc(esds.get(4..).unwrap_or_default())?;
    let (object_type, sample_rate, channels) = parse_asc(&asc)?;
    let channels = if channels == 0 {
        u8::try_from(entry_channels).unwrap_or(0)
    } else {
        channels
    };
    Ok(TrackConfig::Audio(AudioParams {
        sample_rate,
        channels,
        asc,
        object_type,
    }))
}

/// One descriptor (tag, payload) at the start of `data`, and the rest.
fn descriptor(data: &[u8]) -> Result<(u8, &[u8], &[u8])> {
    let (&tag, mut rest) = data
        .split_first()
        .ok_or_else(|| Error::malformed("esds: missing descriptor"))?;
    let mut len = 0usize;
    for _ in 0..4 {
        let (&b, r) = rest
            .split_first()
            .ok_or_else(|| Error::malformed("esds: truncated descriptor length"))?;
        rest = r;
        len = (len << 7) | usize::from(b & 0x7F);
        if b & 0x80 == 0 {
            break;
        }
    }
    let (payload, after) = rest
        .split_at_checked(len)
        .ok_or_else(|| Error::malformed("esds: descriptor longer than its box"))?;
    Ok((tag, payload, after))
}

/// The DecoderSpecificInfo (AudioSpecificConfig) of an esds body.
fn esds_asc(data: &[u8]) -> Result<Vec<u8>> {
    let (tag, es, _) = descriptor(data)?;
    if tag != 0x03 {
        return Err(Error::malformed("esds: no ES_Descriptor"));
    }
    let mut r = Reader::new(es);
    r.skip(2)?; // ES_ID
    let flags = r.u8()?;
    if flags & 0x80 != 0 {
        r.skip(2)?; // dependsOn_ES_ID
    }
    if flags & 0x40 != 0 {
        let n = r.u8()?;
        r.skip(usize::from(n))?; // URL
    }
    if flags & 0x20 != 0 {
        r.skip(2)?; // OCR_ES_Id
    }
    let (tag, dcd, _) = descriptor(r.data)?;
    if tag != 0x04 {
        return Err(Error::malformed("esds: no DecoderConfigDescriptor"));
    }
    let (&oti, _) = dcd
        .split_first()
        .ok_or_else(|| Error::malformed("esds: empty DecoderConfigDescriptor"))?;
    if oti != 0x40 {
        return Err(Error::unsupported(format!(
            "esds: objectTypeIndication {oti:#x} is not MPEG-4 audio"
        )));
    }
    let (tag, dsi, _) = descriptor(dcd.get(13..).unwrap_or_default())?;
    if tag != 0x05 {
        return Err(Error::malformed("esds: no DecoderSpecificInfo"));
    }
    Ok(dsi.to_vec())
}

/// (audioObjectType, sampling rate, channelConfiguration) of an
/// AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1).
fn parse_asc(asc: &[u8]) -> Result<(u8, u32, u8)> {
    let mut bits = 0u64;
    for (i, b) in asc.iter().take(8).enumerate() {
        bits |= u64::from(*b) << (56 - 8 * i);
    }
    let avail = 8 * asc.len().min(8) as u32;
    let mut used = 0u32;
    let mut read = |n: u32| -> Result<u32> {
        if used + n > avail {
            return Err(Error::malformed("AudioSpecificConfig is truncated"));
        }
        let v = (bits << used) >> (64 - n);
        used += n;
        Ok(v as u32)
    };
    let mut object_type = read(5)?;
    if object_type == 31 {
        object_type = 32 + read(6)?;
    }
    let index = read(4)?;
    let sample_rate = if index == 15 {
        read(24)?
    } else {
        *SAMPLE_RATES
            .get(index as usize)
            .ok_or_else(|| Error::malformed(format!("reserved sampling index {index}")))?
    };
    let channels = read(4)?;
    Ok((object_type as u8, sample_rate, channels as u8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adts;
    use crate::fmp4::Fmp4Muxer;
    use crate::fmp4::tests::h264_params;
    use crate::mp4box::length_prefixed_size;

    fn au(key: bool, n: usize) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 1, 0x09, 0xF0];
        if key {
            v.extend_from_slice(&[0, 0, 0, 1, 0x67, 0x4D, 0x40, 0x28, 0, 0, 1, 0x68, 0xEE]);
        }
        v.extend_from_slice(&[0, 0, 1, if key { 0x65 } else { 0x41 }]);
        v.extend((0..n).map(|i| (i % 250 + 1) as u8));
        v
    }

    /// One segment: 12 frames at 30 fps (3000 ticks), AAC at 48 kHz.
    struct Seg {
        bytes: Vec<u8>,
        video: Vec<(u64, u32, bool, Vec<u8>)>,
        audio: Vec<(u64, Vec<u8>)>,
    }

    fn segment(mux: &mut Fmp4Muxer, t0: u64, with_audio: bool) -> Seg {
        let mut s = Seg {
            bytes: Vec::new(),
            video: Vec::new(),
            audio: Vec::new(),
        };
        mux.begin_segment(&mut s.bytes).unwrap();
        let a0 = t0 * 48_000 / 90_000;
        let mut next_audio = 0u64;
        for f in 0..12u64 {
            let dts = t0 + f * 3000;
            while with_audio && (a0 + next_audio * 1024) * 90_000 / 48_000 <= dts {
                let raw = vec![(next_audio % 200) as u8 + 1; 20 + next_audio as usize % 90];
                let t = a0 + next_audio * 1024;
                mux.push_audio(&mut s.bytes, &raw, t).unwrap();
                s.audio.push((t, raw));
                next_audio += 1;
            }
            let key = f % 6 == 0;
            let a = au(key, 50 + (f as usize * 331) % 4000);
            mux.push_video(&mut s.bytes, &a, dts, key).unwrap();
            let mut sample = Vec::new();
            crate::mp4box::append_length_prefixed(VideoCodec::H264, &a, &mut sample).unwrap();
            assert_eq!(
                length_prefixed_size(VideoCodec::H264, &a).unwrap(),
                sample.len() as u64
            );
            s.video.push((dts, 3000, key, sample));
        }
        mux.end_segment(&mut s.bytes, t0 + 12 * 3000).unwrap();
        s
    }

    fn demux(bytes: &[u8], chunk: usize, cfg: Fmp4DemuxConfig) -> (Vec<Fmp4Frame>, Fmp4Demuxer) {
        let mut d = Fmp4Demuxer::new(cfg);
        let mut out = Vec::new();
        for c in bytes.chunks(chunk.max(1)) {
            d.push(c, &mut out).unwrap();
        }
        d.finish(&mut out).unwrap();
        (out, d)
    }

    fn strict() -> Fmp4DemuxConfig {
        Fmp4DemuxConfig {
            on_damage: OnDamage::Fail,
            ..Fmp4DemuxConfig::default()
        }
    }

    #[test]
    fn round_trips_muxer_output_in_any_chunking() {
        let a = crate::AudioParams::aac_lc(48_000, 2).unwrap();
        let mut mux = Fmp4Muxer::new(&h264_params(), Some(&a));
        let s = segment(&mut mux, 900_000, true);
        for chunk in [1, 5, 64, 1000, usize::MAX] {
            let (frames, d) = demux(&s.bytes, chunk, strict());
            let tracks = d.tracks();
            assert_eq!(tracks.len(), 2);
            assert_eq!(
                tracks[0],
                Fmp4Track {
                    track_id: 1,
                    track: Track::Video,
                    timescale: 90_000,
                    config: TrackConfig::Video {
                        codec: VideoCodec::H264,
                        width: 1920,
                        height: 1080,
                        decoder_config: h264_params().decoder_config,
                    }
                }
            );
            assert_eq!(
                tracks[1],
                Fmp4Track {
                    track_id: 2,
                    track: Track::Audio,
                    timescale: 48_000,
                    config: TrackConfig::Audio(a.clone()),
                }
            );
            let video: Vec<_> = frames
                .iter()
                .filter(|f| f.track == Track::Video)
                .map(|f| (f.decode_time, f.duration, f.sync, f.data.clone()))
                .collect();
            assert_eq!(video, s.video);
            let audio: Vec<_> = frames
                .iter()
                .filter(|f| f.track == Track::Audio)
                .map(|f| {
                    assert!(f.sync && f.duration == 1024 && f.track_id == 2);
                    (f.decode_time, f.data.clone())
                })
                .collect();
            assert_eq!(audio, s.audio);
        }
    }

    #[test]
    fn consecutive_segments_through_one_demuxer() {
        let mut mux = Fmp4Muxer::new(&h264_params(), None);
        let s1 = segment(&mut mux, 0, false);
        let s2 = segment(&mut mux, 36_000, false);
        let mut d = Fmp4Demuxer::new(strict());
        let mut out = Vec::new();
        for s in [&s1, &s2] {
            d.push(&s.bytes, &mut out).unwrap();
            d.finish(&mut out).unwrap();
        }
        let times: Vec<u64> = out.iter().map(|f| f.decode_time).collect();
        let want: Vec<u64> = s1.video.iter().chain(&s2.video).map(|v| v.0).collect();
        assert_eq!(times, want);
    }

    #[test]
    fn audio_specific_configs() {
        for &rate in &adts::SAMPLE_RATES {
            for ch in 1..=2 {
                let a = crate::AudioParams::aac_lc(rate, ch).unwrap();
                assert_eq!(parse_asc(&a.asc).unwrap(), (2, rate, ch));
            }
        }
        // Escaped object type (AAC-ELD, 39) and an explicit 24-bit rate.
        let pack = |fields: &[(u64, u32)]| {
            let (mut v, mut n) = (0u64, 0u32);
            for &(x, bits) in fields {
                v = (v << bits) | x;
                n += bits;
            }
            let bytes = n.div_ceil(8);
            (v << (8 * bytes - n)).to_be_bytes()[8 - bytes as usize..].to_vec()
        };
        let eld = pack(&[(31, 5), (7, 6), (3, 4), (1, 4)]);
        assert_eq!(parse_asc(&eld).unwrap(), (39, 48_000, 1));
        let explicit = pack(&[(2, 5), (15, 4), (12_345, 24), (2, 4)]);
        assert_eq!(parse_asc(&explicit).unwrap(), (2, 12_345, 2));
        assert!(parse_asc(&[0x12]).is_err());
        assert!(parse_asc(&[]).is_err());
    }

    #[test]
    fn damage_is_skipped_and_counted_or_fails() {
        let a = crate::AudioParams::aac_lc(48_000, 1).unwrap();
        let mut mux = Fmp4Muxer::new(&h264_params(), Some(&a));
        let s = segment(&mut mux, 0, true);
        // Truncated: every complete sample before the cut comes out.
        let cut = &s.bytes[..s.bytes.len() - 10];
        let (frames, d) = demux(cut, 300, Fmp4DemuxConfig::default());
        assert_eq!(frames.len(), s.video.len() + s.audio.len() - 1);
        assert_eq!(d.damage().events, 1);
        let mut d = Fmp4Demuxer::new(strict());
        let mut out = Vec::new();
        d.push(cut, &mut out).unwrap();
        assert!(d.finish(&mut out).is_err());

        // A trun sample size pointing past the mdat: that fragment's
        // samples are dropped, the next fragments still come out.
        let mut bad = s.bytes.clone();
        let moof = bad.windows(4).position(|w| w == b"moof").unwrap() - 4;
        let trun = moof + bad[moof..].windows(4).position(|w| w == b"trun").unwrap() - 4;
        // Video trun: size of sample 0 is at header 8 + 4 + 4 + 4 + 4.
        bad[trun + 24..trun + 28].copy_from_slice(&0x00FF_FFFFu32.to_be_bytes());
        let (frames, d) = demux(&bad, 4096, Fmp4DemuxConfig::default());
        assert!(frames.len() < s.video.len() + s.audio.len());
        assert!(frames.len() >= s.video.len() - 1);
        assert!(
            d.damage()
                .first
                .as_ref()
                .unwrap()
                .message()
                .contains("outside")
        );

        // Oversized samples are skipped under the cap.
        let cfg = Fmp4DemuxConfig {
            max_frame_bytes: 1000,
            on_damage: OnDamage::Skip,
        };
        let (frames, _) = demux(&s.bytes, 4096, cfg);
        let small = s.video.iter().filter(|v| v.3.len() <= 1000).count();
        let video = frames.iter().filter(|f| f.track == Track::Video).count();
        assert_eq!(video, small);

        // A box size below its header ends the segment.
        let mut bad = s.bytes.clone();
        bad[moof..moof + 4].copy_from_slice(&3u32.to_be_bytes());
        let (frames, d) = demux(&bad, 4096, Fmp4DemuxConfig::default());
        assert!(frames.is_empty());
        assert_eq!(d.damage().events, 1);
    }

    #[test]
    fn largesize_and_unknown_boxes() {
        let mut mux = Fmp4Muxer::new(&h264_params(), None);
        let s = segment(&mut mux, 0, false);
        // Insert a 64-bit-size 'free' box and a 'styp' after the moov.
        let moov = s.bytes.windows(4).position(|w| w == b"moov").unwrap() - 4;
        let moov_len = u32::from_be_bytes(s.bytes[moov..moov + 4].try_into().unwrap()) as usize;
        let mut b = s.bytes[..moov + moov_len].to_vec();
        b.extend_from_slice(&[0, 0, 0, 1, b'f', b'r', b'e', b'e', 0, 0, 0, 0, 0, 0, 0, 20]);
        b.extend_from_slice(&[7; 4]);
        b.extend_from_slice(&[0, 0, 0, 12, b's', b't', b'y', b'p', 1, 2, 3, 4]);
        b.extend_from_slice(&s.bytes[moov + moov_len..]);
        let (frames, d) = demux(&b, 3, strict());
        assert_eq!(frames.len(), s.video.len());
        assert_eq!(d.damage().events, 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let a = crate::AudioParams::aac_lc(44_100, 2).unwrap();
        let mut mux = Fmp4Muxer::new(&h264_params(), Some(&a));
        let s = segment(&mut mux, 0, true);
        let mut seed = 0x9E37_79B9u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for round in 0..400 {
            let mut b = s.bytes.clone();
            for _ in 0..(1 + round % 10) {
                let i = next() as usize % b.len();
                b[i] = next() as u8;
            }
            let cut = next() as usize % b.len();
            let cfg = Fmp4DemuxConfig {
                max_frame_bytes: next() as usize % 5000,
                on_damage: OnDamage::Skip,
            };
            let mut d = Fmp4Demuxer::new(cfg);
            let mut out = Vec::new();
            for c in b[..cut].chunks(1 + next() as usize % 300) {
                d.push(c, &mut out).unwrap();
            }
            d.finish(&mut out).unwrap();
            let random: Vec<u8> = (0..3000).map(|_| next() as u8 % 4).collect();
            d.push(&random, &mut out).unwrap();
            d.finish(&mut out).unwrap();
        }
    }
}
