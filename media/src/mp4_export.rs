//! Progressive (non-fragmented) MP4 export of a time range: one file with
//! `moov` before `mdat` ("faststart"), written in two passes so the cloud
//! can stream it over HTTP with a `Content-Length` and little memory.
//!
//! Design and rationale: docs/design/export.md. In short:
//!
//! 1. **Pass 1, metadata only.** The caller demuxes the stored segments
//!    ([`crate::ts_demux`], [`crate::fmp4_demux`]) and tells an
//!    [`Mp4ExportBuilder`] each sample's timestamps, size and sync flag,
//!    without keeping the data ([`video_sample_size`] gives a video
//!    sample's stored size from its Annex-B access unit).
//!    [`Mp4ExportBuilder::finish`] returns an [`Mp4Export`]: the header
//!    bytes (`ftyp` + `moov` with complete sample tables + the `mdat`
//!    header) and the exact file size.
//! 2. **Pass 2, data.** The caller sends the header, then demuxes the same
//!    segments again and pushes every sample, in per-track order, into
//!    [`Mp4Export::payload`]; it appends the `mdat` bytes to the caller's
//!    buffer in file order.
//!
//! Sample order in the file: each track is cut into chunks of about
//! [`CHUNK_DURATION_90K`] (0.5 s, MP4Box's default interleave), and the
//! chunks of both tracks are ordered by start time (video first on a tie).
//! A player reading the file front to back then finds audio and video for
//! the same moment within half a second of each other, so progressive
//! playback needs no seeking back and forth (all-video-then-all-audio
//! would make a browser fetch two far-apart byte ranges for every buffer
//! fill), while the `stco` table stays small (4 chunks per second).
//! [`Mp4Payload`] reorders: samples pushed in the order a demuxer yields
//! them are buffered only until their chunk is due, so memory stays at
//! about one chunk per track plus the source's audio/video skew.
//! [`Mp4Export::chunks`] lists the layout for callers that want it.
//!
//! Contract for the time range (the builder checks what it can):
//! - The export starts at a video key frame at or before the requested
//!   start (the first video sample must be a sync sample): the caller
//!   drops every sample before that key frame, so the file starts up to
//!   one GOP early and decodes from its first frame.
//! - It ends at the requested end: the caller drops samples at or after
//!   it and passes the end to [`Mp4ExportBuilder::finish`], which gives
//!   the last video sample the remaining duration.
//! - Audio starts at or after the first video sample's presentation time
//!   (earlier audio is dropped by the caller); a later start is kept
//!   exact with an edit list (an empty edit before the audio).
//! - Gaps (a missing segment, a camera offline): the real timeline is
//!   kept by extending the duration of the last sample before the gap
//!   (durations are differences of decode times), so the picture freezes
//!   and audio is silent over the gap, and a timestamp in the file still
//!   maps to wall-clock time.
//! - One set of video parameter sets per export (a single sample entry):
//!   a resolution change ends the range.
//!
//! Video samples are stored as 4-byte length-prefixed NAL units without
//! AUD, parameter sets (they are in `avcC`/`hvcC`) or filler; audio samples
//! as raw AAC (ADTS header stripped).
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use std::collections::VecDeque;

use crate::mp4box::{
    append_length_prefixed, close_box, length_prefixed_size, open_box, open_full, put_audio_stsd,
    put_dinf, put_hdlr, put_header, put_mdhd, put_mvhd, put_smhd, put_tkhd, put_u32, put_u64,
    put_video_stsd, put_vmhd,
};
use crate::{AudioParams, Error, ErrorKind, Result, Track, VideoCodec, VideoParams, adts};

/// Version of the bytes this writer produces for the same input. Change it
/// whenever they change (the golden test pins both): exports may be cached
/// and served with an etag derived from it.
pub const EXPORT_FORMAT_VERSION: u32 = 1;

/// Target duration of one chunk (run of consecutive samples of a track),
/// 90 kHz: 0.5 s.
pub const CHUNK_DURATION_90K: u64 = 45_000;

/// Movie timescale (mvhd, tkhd, elst): the video clock, so video
/// durations and audio delays are exact.
const MOVIE_TIMESCALE: u32 = 90_000;
const VIDEO_TRACK: u32 = 1;
const AUDIO_TRACK: u32 = 2;
/// Samples per AAC-LC access unit: the last audio sample's duration.
const AAC_FRAME: u32 = 1024;
/// Duration of a lone video sample when nothing says otherwise (25 fps).
const DEFAULT_FRAME_90K: u32 = 3600;

/// The size a video sample will have in the file: the Annex-B access unit
/// `au` as 4-byte length-prefixed NAL units without AUD, parameter sets and
/// filler data (what [`append_video_sample`] writes). For pass 1.
pub fn video_sample_size(codec: VideoCodec, au: &[u8]) -> Result<u32> {
    u32::try_from(length_prefixed_size(codec, au)?)
        .map_err(|_| Error::new(ErrorKind::TooLarge, "video sample over 4 GiB"))
}

/// Appends the Annex-B access unit `au` to `dst` as an MP4 video sample
/// (see [`video_sample_size`]). On error `dst` is unchanged.
pub fn append_video_sample(codec: VideoCodec, au: &[u8], dst: &mut Vec<u8>) -> Result<()> {
    append_length_prefixed(codec, au, dst)
}

/// Pass 1 metadata of a video sample.
#[derive(Clone, Copy, Debug)]
struct VideoSample {
    size: u32,
    /// Set when the next sample arrives (or at finish).
    duration: u32,
    composition_offset: i32,
    sync: bool,
}

/// Pass 1 metadata of an audio sample.
#[derive(Clone, Copy, Debug)]
struct AudioSample {
    size: u32,
    duration: u32,
}

/// Collects per-sample metadata (pass 1); see the module documentation.
#[derive(Debug)]
pub struct Mp4ExportBuilder {
    video: VideoParams,
    width: u16,
    height: u16,
    audio: Option<AudioParams>,
    v: Vec<VideoSample>,
    /// (first PTS, last DTS), 90 kHz.
    v_times: Option<(u64, u64)>,
    a: Vec<AudioSample>,
    /// (first time, last time) in audio ticks.
    a_times: Option<(u64, u64)>,
}

impl Mp4ExportBuilder {
    /// A builder for a video track described by `video` (see
    /// [`VideoParams::from_annexb`] and [`VideoParams::from_decoder_config`])
    /// and an optional AAC-LC track.
    ///
    /// Errors (`InvalidConfig`): an empty decoder configuration,
    /// dimensions beyond 65535, an audio sample rate of 0 or above 90 kHz.
    pub fn new(video: &VideoParams, audio: Option<&AudioParams>) -> Result<Self> {
        if video.decoder_config.is_empty() {
            return Err(config_error("video decoder configuration is empty"));
        }
        let (Ok(width), Ok(height)) = (u16::try_from(video.width), u16::try_from(video.height))
        else {
            return Err(config_error("video dimensions do not fit 16 bits"));
        };
        if let Some(a) = audio
            && !(1..=MOVIE_TIMESCALE).contains(&a.sample_rate)
        {
            return Err(config_error(&format!(
                "audio sample rate {} Hz is not in 1..=90000",
                a.sample_rate
            )));
        }
        Ok(Mp4ExportBuilder {
            video: video.clone(),
            width,
            height,
            audio: audio.cloned(),
            v: Vec::new(),
            v_times: None,
            a: Vec::new(),
            a_times: None,
        })
    }

    /// The next video sample in decode order: timestamps in 90 kHz, `size`
    /// as stored (for Annex-B input, [`video_sample_size`]).
    ///
    /// Errors (nothing recorded): a first sample that is not a sync sample
    /// (`NeedKeyFrame`); a DTS not after the previous one, more than 2^32
    /// ticks (13 h) after it, or a PTS more than 2^31 ticks from the DTS
    /// (`Timestamp`); an empty sample (`Malformed`).
    pub fn add_video(&mut self, pts_90k: u64, dts_90k: u64, size: u32, sync: bool) -> Result<()> {
        if size == 0 {
            return Err(Error::malformed("empty video sample"));
        }
        let composition_offset =
            i32::try_from(i128::from(pts_90k) - i128::from(dts_90k)).map_err(|_| {
                Error::new(
                    ErrorKind::Timestamp,
                    format!("video PTS {pts_90k} is too far from DTS {dts_90k}"),
                )
            })?;
        match self.v_times {
            None => {
                if !sync {
                    return Err(Error::new(
                        ErrorKind::NeedKeyFrame,
                        "an export starts with a key frame",
                    ));
                }
                self.v_times = Some((pts_90k, dts_90k));
            }
            Some((first_pts, last)) => {
                let d = step(last, dts_90k, "video DTS")?;
                if let Some(prev) = self.v.last_mut() {
                    prev.duration = d;
                }
                self.v_times = Some((first_pts, dts_90k));
            }
        }
        self.v.push(VideoSample {
            size,
            duration: 0,
            composition_offset,
            sync,
        });
        Ok(())
    }

    /// The next AAC access unit (raw, no ADTS header; for ADTS input the
    /// size is that of [`adts::payload`]), its time in 90 kHz on the video
    /// clock. It is converted to the audio timescale (the sample rate) by
    /// rounding, which recovers exact sample counts from TS timestamps.
    ///
    /// Errors (nothing recorded): no audio track (`InvalidConfig`); a time
    /// not after the previous one or 13 h later (`Timestamp`); an empty
    /// sample (`Malformed`).
    pub fn add_audio(&mut self, pts_90k: u64, size: u32) -> Result<()> {
        let Some(a) = &self.audio else {
            return Err(config_error("audio added to an export without audio"));
        };
        if size == 0 {
            return Err(Error::malformed("empty audio sample"));
        }
        let ticks = rescale(pts_90k, a.sample_rate, MOVIE_TIMESCALE);
        match self.a_times {
            None => self.a_times = Some((ticks, ticks)),
            Some((first, last)) => {
                let d = step(last, ticks, "audio time")?;
                if let Some(prev) = self.a.last_mut() {
                    prev.duration = d;
                }
                self.a_times = Some((first, ticks));
            }
        }
        self.a.push(AudioSample {
            size,
            duration: AAC_FRAME,
        });
        Ok(())
    }

    /// Ends pass 1: lays out the file and writes its header.
    ///
    /// `video_end_90k` is the end of the export on the video clock (the
    /// requested end, or where the last segment ends): the last video
    /// sample lasts until then. Without it (or if it is not after the last
    /// DTS) the last sample repeats the previous duration.
    ///
    /// Errors: no video sample (`NeedKeyFrame`); audio starting before the
    /// first video frame, or a duration over 2^32 ticks (`Timestamp`).
    pub fn finish(mut self, video_end_90k: Option<u64>) -> Result<Mp4Export> {
        let Some((v_first_pts, v_last)) = self.v_times else {
            return Err(Error::new(
                ErrorKind::NeedKeyFrame,
                "no video in the export",
            ));
        };
        let fallback = match self.v.len() {
            0 | 1 => DEFAULT_FRAME_90K,
            n => self.v.get(n - 2).map_or(DEFAULT_FRAME_90K, |s| s.duration),
        };
        let last_duration = match video_end_90k {
            Some(end) if end > v_last => step(v_last, end, "export end")?,
            _ => fallback,
        };
        if let Some(last) = self.v.last_mut() {
            last.duration = last_duration;
        }

        // The movie timeline starts at the first video frame's
        // presentation time; audio may start later (an empty edit).
        let audio_delay_90k = match (&self.audio, self.a_times) {
            (Some(a), Some((first, _))) => {
                let first_90k = rescale(first, MOVIE_TIMESCALE, a.sample_rate);
                first_90k.checked_sub(v_first_pts).ok_or_else(|| {
                    Error::new(
                        ErrorKind::Timestamp,
                        format!(
                            "audio starts at {first_90k}, before the first video frame at \
                             {v_first_pts} (90 kHz): drop it"
                        ),
                    )
                })?
            }
            _ => 0,
        };
        let layout = Layout::new(&self, audio_delay_90k);
        let mut export = Mp4Export {
            header: Vec::new(),
            total: 0,
            chunks: layout.chunks,
            video_sizes: self.v.iter().map(|s| s.size).collect(),
            audio_sizes: self.a.iter().map(|s| s.size).collect(),
            codec: self.video.codec,
            duration_90k: 0,
        };
        let payload: u64 = export.chunks.iter().map(|c| c.size).sum();
        // 64-bit mdat size only when needed; the header length does not
        // depend on offset values, only on stco vs co64.
        let mdat_header: u64 = if payload + 8 > u64::from(u32::MAX) {
            16
        } else {
            8
        };
        // Offsets are not known before the header length is, but the
        // length depends only on stco vs co64: lay out with offsets from 0,
        // then shift them by the header length and write it again.
        let mut co64 = false;
        let mut header = Vec::new();
        for _ in 0..2 {
            header.clear();
            self.write_header(
                &mut header,
                &export,
                co64,
                audio_delay_90k,
                mdat_header,
                payload,
            );
            let total = header.len() as u64 + payload;
            if co64 || total <= u64::from(u32::MAX) {
                break;
            }
            co64 = true;
        }
        let base = header.len() as u64;
        for c in &mut export.chunks {
            c.offset += base;
        }
        header.clear();
        let duration = self.write_header(
            &mut header,
            &export,
            co64,
            audio_delay_90k,
            mdat_header,
            payload,
        );
        export.total = header.len() as u64 + payload;
        export.header = header;
        export.duration_90k = duration;
        // Nothing of pass 1 is needed any more.
        self.v = Vec::new();
        self.a = Vec::new();
        Ok(export)
    }

    /// ftyp + moov + mdat header, chunk offsets taken from `export`.
    /// Returns the movie duration (90 kHz).
    fn write_header(
        &self,
        out: &mut Vec<u8>,
        export: &Mp4Export,
        co64: bool,
        audio_delay_90k: u64,
        mdat_header: u64,
        payload: u64,
    ) -> u64 {
        let ftyp = open_box(out, b"ftyp");
        out.extend_from_slice(b"isom");
        put_u32(out, 0x200);
        out.extend_from_slice(b"isomiso2");
        if self.video.codec == VideoCodec::H264 {
            out.extend_from_slice(b"avc1");
        }
        out.extend_from_slice(b"mp41");
        close_box(out, ftyp);

        let v_media: u64 = self.v.iter().map(|s| u64::from(s.duration)).sum();
        // Presentation starts at the smallest composition time: with
        // reordered frames that is not decode time 0, and an edit skips
        // the difference.
        let mut t = 0i64;
        let mut min_cts = i64::MAX;
        for s in &self.v {
            min_cts = min_cts.min(t + i64::from(s.composition_offset));
            t += i64::from(s.duration);
        }
        let v_skip = u64::try_from(min_cts).unwrap_or(0);
        let v_duration = v_media.saturating_sub(v_skip);
        let a = self.audio.as_ref().filter(|_| !self.a.is_empty());
        let a_media: u64 = self.a.iter().map(|s| u64::from(s.duration)).sum();
        let a_duration = a.map_or(0, |a| {
            audio_delay_90k + rescale(a_media, MOVIE_TIMESCALE, a.sample_rate)
        });
        let duration = v_duration.max(a_duration);

        let moov = open_box(out, b"moov");
        put_mvhd(
            out,
            MOVIE_TIMESCALE,
            duration,
            if a.is_some() {
                AUDIO_TRACK
            } else {
                VIDEO_TRACK
            } + 1,
        );

        let trak = open_box(out, b"trak");
        put_tkhd(
            out,
            VIDEO_TRACK,
            0,
            u32::from(self.width) << 16,
            u32::from(self.height) << 16,
            v_duration,
        );
        if v_skip != 0 {
            put_edts(out, 0, v_duration, v_skip);
        }
        let mdia = open_box(out, b"mdia");
        put_mdhd(out, MOVIE_TIMESCALE, v_media);
        put_hdlr(out, b"vide", b"VideoHandler\0");
        let minf = open_box(out, b"minf");
        put_vmhd(out);
        put_dinf(out);
        let stbl = open_box(out, b"stbl");
        put_video_stsd(
            out,
            self.video.codec,
            self.width,
            self.height,
            &self.video.decoder_config,
        );
        put_stts(out, self.v.iter().map(|s| s.duration));
        if self.v.iter().any(|s| s.composition_offset != 0) {
            put_ctts(out, self.v.iter().map(|s| s.composition_offset));
        }
        if self.v.iter().any(|s| !s.sync) {
            let stss = open_full(out, b"stss", 0, 0);
            let n = self.v.iter().filter(|s| s.sync).count();
            put_u32(out, n as u32);
            for (i, _) in self.v.iter().enumerate().filter(|(_, s)| s.sync) {
                put_u32(out, i as u32 + 1);
            }
            close_box(out, stss);
        }
        put_stsz(out, &export.video_sizes);
        put_chunk_tables(out, export, Track::Video, co64);
        close_box(out, stbl);
        close_box(out, minf);
        close_box(out, mdia);
        close_box(out, trak);

        if let Some(a) = a {
            let trak = open_box(out, b"trak");
            put_tkhd(out, AUDIO_TRACK, 0x0100, 0, 0, a_duration);
            if audio_delay_90k != 0 {
                put_edts(out, audio_delay_90k, a_duration - audio_delay_90k, 0);
            }
            let mdia = open_box(out, b"mdia");
            put_mdhd(out, a.sample_rate, a_media);
            put_hdlr(out, b"soun", b"SoundHandler\0");
            let minf = open_box(out, b"minf");
            put_smhd(out);
            put_dinf(out);
            let stbl = open_box(out, b"stbl");
            put_audio_stsd(out, a.sample_rate, a.channels, &a.asc);
            put_stts(out, self.a.iter().map(|s| s.duration));
            put_stsz(out, &export.audio_sizes);
            put_chunk_tables(out, export, Track::Audio, co64);
            close_box(out, stbl);
            close_box(out, minf);
            close_box(out, mdia);
            close_box(out, trak);
        }
        close_box(out, moov);

        if mdat_header == 16 {
            put_u32(out, 1);
            out.extend_from_slice(b"mdat");
            put_u64(out, payload + 16);
        } else {
            // Checked by the caller: payload + 8 fits 32 bits.
            put_header(out, (payload + 8) as u32, b"mdat");
        }
        duration
    }
}

/// `to - from` as a u32 duration; `to` must be after `from`.
fn step(from: u64, to: u64, what: &str) -> Result<u32> {
    if to <= from {
        return Err(Error::new(
            ErrorKind::Timestamp,
            format!("{what} {to} is not after the previous {from}"),
        ));
    }
    u32::try_from(to - from).map_err(|_| {
        Error::new(
            ErrorKind::Timestamp,
            format!("{what} jumps from {from} to {to} (over 2^32 ticks)"),
        )
    })
}

/// `v` from timescale `from` to timescale `to`, rounded to nearest.
fn rescale(v: u64, to: u32, from: u32) -> u64 {
    let from = u128::from(from.max(1));
    let r = (u128::from(v) * u128::from(to) + from / 2) / from;
    u64::try_from(r).unwrap_or(u64::MAX)
}

fn config_error(msg: &str) -> Error {
    Error::new(ErrorKind::InvalidConfig, msg)
}

/// edts/elst: an optional empty edit of `empty` (movie timescale), then
/// `duration` of media from `media_time`.
fn put_edts(out: &mut Vec<u8>, empty: u64, duration: u64, media_time: u64) {
    let edts = open_box(out, b"edts");
    let wide = [empty, duration, media_time]
        .iter()
        .any(|&v| v > i32::MAX as u64);
    let elst = open_full(out, b"elst", u8::from(wide), 0);
    put_u32(out, if empty > 0 { 2 } else { 1 });
    let entry = |out: &mut Vec<u8>, d: u64, t: i64| {
        if wide {
            put_u64(out, d);
            out.extend_from_slice(&t.to_be_bytes());
        } else {
            put_u32(out, d as u32);
            out.extend_from_slice(&(t as i32).to_be_bytes());
        }
        put_u32(out, 0x0001_0000); // media_rate 1.0
    };
    if empty > 0 {
        entry(out, empty, -1);
    }
    entry(out, duration, media_time as i64);
    close_box(out, elst);
    close_box(out, edts);
}

/// stts: run-length coded durations.
fn put_stts(out: &mut Vec<u8>, durations: impl Iterator<Item = u32>) {
    let b = open_full(out, b"stts", 0, 0);
    let count_at = out.len();
    put_u32(out, 0);
    let runs = put_runs(out, durations.map(|d| d.to_be_bytes()));
    patch_u32(out, count_at, runs);
    close_box(out, b);
}

/// ctts: run-length coded composition offsets (version 1, signed, if any
/// is negative).
fn put_ctts(out: &mut Vec<u8>, offsets: impl Iterator<Item = i32> + Clone) {
    let signed = offsets.clone().any(|o| o < 0);
    let b = open_full(out, b"ctts", u8::from(signed), 0);
    let count_at = out.len();
    put_u32(out, 0);
    let runs = put_runs(out, offsets.map(|o| o.to_be_bytes()));
    patch_u32(out, count_at, runs);
    close_box(out, b);
}

/// Writes (count, value) pairs for runs of equal values; returns the
/// number of runs.
fn put_runs(out: &mut Vec<u8>, values: impl Iterator<Item = [u8; 4]>) -> u32 {
    let mut runs = 0u32;
    let mut cur: Option<([u8; 4], u32)> = None;
    for v in values {
        cur = match cur {
            Some((c, n)) if c == v => Some((c, n + 1)),
            Some((c, n)) => {
                put_u32(out, n);
                out.extend_from_slice(&c);
                runs += 1;
                Some((v, 1))
            }
            None => Some((v, 1)),
        };
    }
    if let Some((c, n)) = cur {
        put_u32(out, n);
        out.extend_from_slice(&c);
        runs += 1;
    }
    runs
}

fn patch_u32(out: &mut [u8], at: usize, v: u32) {
    if let Some(slot) = out.get_mut(at..at + 4) {
        slot.copy_from_slice(&v.to_be_bytes());
    }
}

/// stsz: one size for all samples if they are equal, else a table.
fn put_stsz(out: &mut Vec<u8>, sizes: &[u32]) {
    let b = open_full(out, b"stsz", 0, 0);
    let uniform = sizes.first().filter(|&&f| sizes.iter().all(|&s| s == f));
    put_u32(out, uniform.copied().unwrap_or(0));
    put_u32(out, sizes.len() as u32);
    if uniform.is_none() {
        for &s in sizes {
            put_u32(out, s);
        }
    }
    close_box(out, b);
}

/// stsc (runs of equal samples-per-chunk) and stco/co64 for `track`.
fn put_chunk_tables(out: &mut Vec<u8>, export: &Mp4Export, track: Track, co64: bool) {
    let chunks = || export.chunks.iter().filter(move |c| c.track == track);
    let stsc = open_full(out, b"stsc", 0, 0);
    let count_at = out.len();
    put_u32(out, 0);
    let mut entries = 0u32;
    let mut prev = None;
    for (i, c) in chunks().enumerate() {
        if prev != Some(c.samples) {
            put_u32(out, i as u32 + 1); // first_chunk
            put_u32(out, c.samples);
            put_u32(out, 1); // sample_description_index
            entries += 1;
            prev = Some(c.samples);
        }
    }
    patch_u32(out, count_at, entries);
    close_box(out, stsc);

    let b = open_full(out, if co64 { b"co64" } else { b"stco" }, 0, 0);
    put_u32(out, chunks().count() as u32);
    for c in chunks() {
        if co64 {
            put_u64(out, c.offset);
        } else {
            // The caller switched to co64 if any offset would not fit.
            put_u32(out, c.offset as u32);
        }
    }
    close_box(out, b);
}

/// One chunk of the file: consecutive samples of one track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportChunk {
    /// Video or audio.
    pub track: Track,
    /// Index (0-based, per track) of its first sample.
    pub first_sample: u32,
    /// Number of samples.
    pub samples: u32,
    /// Byte offset in the file.
    pub offset: u64,
    /// Bytes.
    pub size: u64,
}

/// Chunking of pass 1's samples.
struct Layout {
    /// In file order, offsets relative to the mdat payload.
    chunks: Vec<ExportChunk>,
}

impl Layout {
    fn new(b: &Mp4ExportBuilder, audio_delay_90k: u64) -> Layout {
        let rate = b.audio.as_ref().map_or(1, |a| a.sample_rate);
        // (start on the movie clock, chunk) per track.
        let cut = |track: Track, samples: &mut dyn Iterator<Item = (u64, u32)>| {
            let mut out: Vec<(u64, ExportChunk)> = Vec::new();
            for (i, (start, size)) in samples.enumerate() {
                let i = i as u32;
                match out.last_mut() {
                    Some((chunk_start, c))
                        if start.saturating_sub(*chunk_start) < CHUNK_DURATION_90K =>
                    {
                        c.samples += 1;
                        c.size += u64::from(size);
                    }
                    _ => out.push((
                        start,
                        ExportChunk {
                            track,
                            first_sample: i,
                            samples: 1,
                            offset: 0,
                            size: u64::from(size),
                        },
                    )),
                }
            }
            out
        };
        let mut t = 0u64;
        let mut video = b.v.iter().map(|s| {
            let start = t;
            t += u64::from(s.duration);
            (start, s.size)
        });
        let mut ticks = 0u64;
        let mut audio = b.a.iter().map(|s| {
            let start = audio_delay_90k + rescale(ticks, MOVIE_TIMESCALE, rate);
            ticks += u64::from(s.duration);
            (start, s.size)
        });
        let mut all = cut(Track::Video, &mut video);
        all.extend(cut(Track::Audio, &mut audio));
        // Stable: video first on equal start times.
        all.sort_by_key(|(start, c)| (*start, c.track == Track::Audio));
        let mut offset = 0u64;
        let chunks = all
            .into_iter()
            .map(|(_, mut c)| {
                c.offset = offset;
                offset += c.size;
                c
            })
            .collect();
        Layout { chunks }
    }
}

/// A laid-out export file (end of pass 1).
#[derive(Debug)]
pub struct Mp4Export {
    header: Vec<u8>,
    total: u64,
    chunks: Vec<ExportChunk>,
    video_sizes: Vec<u32>,
    audio_sizes: Vec<u32>,
    codec: VideoCodec,
    duration_90k: u64,
}

impl Mp4Export {
    /// The first bytes of the file: `ftyp`, `moov` and the `mdat` header.
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// The exact size of the whole file (header + samples), for
    /// `Content-Length`.
    pub fn total_size(&self) -> u64 {
        self.total
    }

    /// The movie duration in 90 kHz (the longer track, edits included).
    pub fn duration_90k(&self) -> u64 {
        self.duration_90k
    }

    /// The chunks in file order.
    pub fn chunks(&self) -> &[ExportChunk] {
        &self.chunks
    }

    /// Number of samples of `track`.
    pub fn sample_count(&self, track: Track) -> usize {
        self.sizes(track).len()
    }

    fn sizes(&self, track: Track) -> &[u32] {
        match track {
            Track::Video => &self.video_sizes,
            Track::Audio => &self.audio_sizes,
        }
    }

    /// Which sample holds byte `offset` of the file, for serving a range
    /// request: (track, sample index, offset within the sample). `None`
    /// for the header or past the end.
    pub fn sample_at(&self, offset: u64) -> Option<(Track, u32, u64)> {
        let i = self.chunks.partition_point(|c| c.offset + c.size <= offset);
        let c = self.chunks.get(i).filter(|c| c.offset <= offset)?;
        let mut pos = c.offset;
        for (k, &size) in self
            .sizes(c.track)
            .iter()
            .enumerate()
            .skip(c.first_sample as usize)
            .take(c.samples as usize)
        {
            if offset < pos + u64::from(size) {
                return Some((c.track, k as u32, offset - pos));
            }
            pos += u64::from(size);
        }
        None
    }

    /// Starts pass 2.
    pub fn payload(&self) -> Mp4Payload<'_> {
        Mp4Payload {
            export: self,
            chunk: 0,
            in_chunk: 0,
            received: [0, 0],
            queue: [VecDeque::new(), VecDeque::new()],
            buffered: 0,
        }
    }
}

/// Pass 2: takes the samples again, in per-track order (the two tracks
/// interleaved in any way), and appends the `mdat` payload in file order.
///
/// Every sample must have the size pass 1 recorded (`InvalidConfig`
/// otherwise, nothing written): the header already promised it.
#[derive(Debug)]
pub struct Mp4Payload<'a> {
    export: &'a Mp4Export,
    /// Next chunk to write, and samples of it written.
    chunk: usize,
    in_chunk: u32,
    /// Samples received per track (video, audio).
    received: [u32; 2],
    /// Samples received before their chunk was due.
    queue: [VecDeque<Vec<u8>>; 2],
    buffered: usize,
}

fn slot(track: Track) -> usize {
    match track {
        Track::Video => 0,
        Track::Audio => 1,
    }
}

impl Mp4Payload<'_> {
    /// The next video sample as an Annex-B access unit (converted as
    /// [`append_video_sample`] does).
    pub fn push_video_annexb(&mut self, au: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let codec = self.export.codec;
        self.push(Track::Video, out, |dst| {
            append_length_prefixed(codec, au, dst)
        })
    }

    /// The next video sample, already length-prefixed (as an fMP4 segment
    /// stores it).
    pub fn push_video(&mut self, sample: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.push(Track::Video, out, |dst| {
            dst.extend_from_slice(sample);
            Ok(())
        })
    }

    /// The next audio sample, raw AAC.
    pub fn push_audio(&mut self, raw: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.push(Track::Audio, out, |dst| {
            dst.extend_from_slice(raw);
            Ok(())
        })
    }

    /// The next audio sample as one ADTS frame (the header is stripped).
    pub fn push_audio_adts(&mut self, frame: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let (_, raw) = adts::payload(frame)?;
        self.push_audio(raw, out)
    }

    /// Bytes held for chunks not yet due.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// Ends pass 2: errors (`InvalidConfig`) unless every sample of pass 1
    /// was written.
    pub fn finish(self) -> Result<()> {
        let want = [
            self.export.sample_count(Track::Video),
            self.export.sample_count(Track::Audio),
        ];
        if self.chunk < self.export.chunks.len() || self.received.map(|r| r as usize) != want {
            return Err(config_error(&format!(
                "pass 2 gave {} video and {} audio samples, pass 1 {} and {}",
                self.received[0], self.received[1], want[0], want[1]
            )));
        }
        Ok(())
    }

    fn push(
        &mut self,
        track: Track,
        out: &mut Vec<u8>,
        write: impl FnOnce(&mut Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        let s = slot(track);
        let index = self.received.get(s).copied().unwrap_or(0);
        let Some(&size) = self.export.sizes(track).get(index as usize) else {
            return Err(config_error(&format!(
                "more {track:?} samples than pass 1 counted ({index})"
            )));
        };
        let due = self
            .export
            .chunks
            .get(self.chunk)
            .is_some_and(|c| c.track == track && c.first_sample + self.in_chunk == index);
        let check = |written: usize| {
            if written as u64 == u64::from(size) {
                Ok(())
            } else {
                Err(config_error(&format!(
                    "{track:?} sample {index} is {written} bytes, pass 1 said {size}"
                )))
            }
        };
        if due {
            let start = out.len();
            write(out)?;
            if let Err(e) = check(out.len() - start) {
                out.truncate(start);
                return Err(e);
            }
            self.advance();
        } else {
            let mut buf = Vec::with_capacity(size as usize);
            write(&mut buf)?;
            check(buf.len())?;
            self.buffered += buf.len();
            if let Some(q) = self.queue.get_mut(s) {
                q.push_back(buf);
            }
        }
        if let Some(r) = self.received.get_mut(s) {
            *r += 1;
        }
        self.drain(out);
        Ok(())
    }

    fn advance(&mut self) {
        self.in_chunk += 1;
        if self
            .export
            .chunks
            .get(self.chunk)
            .is_some_and(|c| self.in_chunk >= c.samples)
        {
            self.chunk += 1;
            self.in_chunk = 0;
        }
    }

    /// Writes queued samples while the due chunk's track has them.
    fn drain(&mut self, out: &mut Vec<u8>) {
        while let Some(c) = self.export.chunks.get(self.chunk) {
            let Some(sample) = self
                .queue
                .get_mut(slot(c.track))
                .and_then(VecDeque::pop_front)
            else {
                return;
            };
            self.buffered -= sample.len();
            out.extend_from_slice(&sample);
            self.advance();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4box::testutil::{Bx, walk};

    fn h264() -> VideoParams {
        VideoParams::from_parameter_sets(
            VideoCodec::H264,
            &[],
            &[&crate::h264::tests::SPS_MAIN_320X240],
            &[&[0x68, 0xEB, 0xC3, 0xCB, 0x20]],
        )
        .unwrap()
    }

    fn aac() -> AudioParams {
        AudioParams::aac_lc(48_000, 1).unwrap()
    }

    /// A sample's bytes: `size` bytes derived from (track, index).
    fn data(track: Track, i: usize, size: u32) -> Vec<u8> {
        let tag = if track == Track::Video { 0x10 } else { 0x80 };
        (0..size).map(|k| tag ^ (i as u8) ^ (k as u8)).collect()
    }

    /// `n` frames at 25 fps from 90 kHz time `t0`, key every 10th, plus
    /// audio from `a0` (90 kHz) at 48 kHz (1920 ticks per frame).
    struct Input {
        video: Vec<(u64, u32, bool)>,
        audio: Vec<(u64, u32)>,
    }

    fn input(n: usize, t0: u64, a0: u64) -> Input {
        let video = (0..n)
            .map(|i| {
                (
                    t0 + i as u64 * 3600,
                    100 + (i as u32 * 37) % 900,
                    i % 10 == 0,
                )
            })
            .collect();
        let end = t0 + n as u64 * 3600;
        let audio = (0..)
            .map(|j| (a0 + j * 1920, 10 + (j as u32 * 13) % 300))
            .take_while(|(t, _)| *t < end)
            .collect();
        Input { video, audio }
    }

    fn build(inp: &Input, end: Option<u64>) -> Mp4Export {
        let mut b = Mp4ExportBuilder::new(&h264(), Some(&aac())).unwrap();
        for &(t, size, key) in &inp.video {
            b.add_video(t, t, size, key).unwrap();
        }
        for &(t, size) in &inp.audio {
            b.add_audio(t, size).unwrap();
        }
        b.finish(end).unwrap()
    }

    /// The whole file, samples pushed in time order (as a demuxer yields).
    fn write(export: &Mp4Export, inp: &Input) -> Vec<u8> {
        let mut file = export.header().to_vec();
        let mut p = export.payload();
        let (mut v, mut a) = (0, 0);
        while v < inp.video.len() || a < inp.audio.len() {
            let video_next =
                a >= inp.audio.len() || (v < inp.video.len() && inp.video[v].0 <= inp.audio[a].0);
            if video_next {
                p.push_video(&data(Track::Video, v, inp.video[v].1), &mut file)
                    .unwrap();
                v += 1;
            } else {
                p.push_audio(&data(Track::Audio, a, inp.audio[a].1), &mut file)
                    .unwrap();
                a += 1;
            }
        }
        p.finish().unwrap();
        file
    }

    fn stbl<'a>(trak: &'a Bx<'a>) -> &'a Bx<'a> {
        trak.child(b"mdia").child(b"minf").child(b"stbl")
    }

    /// (count, value) runs of an stts/ctts body.
    fn runs(b: &Bx<'_>) -> Vec<(u32, u32)> {
        (0..b.u32_at(4) as usize)
            .map(|i| (b.u32_at(8 + 8 * i), b.u32_at(12 + 8 * i)))
            .collect()
    }

    /// Per-sample (offset, size) from stsz/stsc/stco of a track.
    fn sample_offsets(stbl: &Bx<'_>) -> Vec<(u64, u32)> {
        let stsz = stbl.child(b"stsz");
        let n = stsz.u32_at(8) as usize;
        let sizes: Vec<u32> = (0..n)
            .map(|i| match stsz.u32_at(4) {
                0 => stsz.u32_at(12 + 4 * i),
                s => s,
            })
            .collect();
        let stsc = stbl.child(b"stsc");
        let entries: Vec<(u32, u32)> = (0..stsc.u32_at(4) as usize)
            .map(|i| (stsc.u32_at(8 + 12 * i), stsc.u32_at(12 + 12 * i)))
            .collect();
        let offsets: Vec<u64> = if stbl.has(b"co64") {
            let co = stbl.child(b"co64");
            (0..co.u32_at(4) as usize)
                .map(|i| co.u64_at(8 + 8 * i))
                .collect()
        } else {
            let co = stbl.child(b"stco");
            (0..co.u32_at(4) as usize)
                .map(|i| u64::from(co.u32_at(8 + 4 * i)))
                .collect()
        };
        let mut out = Vec::new();
        let mut s = 0;
        for (c, &off) in offsets.iter().enumerate() {
            let per = entries
                .iter()
                .rev()
                .find(|(first, _)| *first as usize <= c + 1)
                .unwrap()
                .1;
            let mut pos = off;
            for _ in 0..per {
                out.push((pos, sizes[s]));
                pos += u64::from(sizes[s]);
                s += 1;
            }
        }
        assert_eq!(s, n, "stsc covers every sample");
        out
    }

    #[test]
    fn file_structure_tables_and_offsets() {
        let inp = input(60, 900_000, 900_000);
        let export = build(&inp, Some(900_000 + 60 * 3600));
        let file = write(&export, &inp);
        assert_eq!(file.len() as u64, export.total_size());
        let top = walk(&file, 0);
        let kinds: Vec<[u8; 4]> = top.iter().map(|b| b.kind).collect();
        assert_eq!(kinds, [*b"ftyp", *b"moov", *b"mdat"]);
        assert_eq!(top[2].at + 8, export.header().len());
        let moov = &top[1];
        assert_eq!(moov.child(b"mvhd").u32_at(12), 90_000);
        // The longer track: the last audio frame starts before the end of
        // the video and ends after it.
        let audio_end = inp.audio.len() as u32 * 1920;
        assert!(audio_end > 60 * 3600);
        assert_eq!(moov.child(b"mvhd").u32_at(16), audio_end, "movie duration");
        assert_eq!(export.duration_90k(), u64::from(audio_end));
        let traks = moov.all(b"trak");
        assert_eq!(traks.len(), 2);
        let (v, a) = (traks[0], traks[1]);
        assert_eq!(v.child(b"tkhd").u32_at(20), 60 * 3600);
        assert!(!v.has(b"edts") && !a.has(b"edts"), "no edits needed");
        let vs = stbl(v);
        assert_eq!(runs(vs.child(b"stts")), [(60, 3600)]);
        assert!(!vs.has(b"ctts"));
        let stss = vs.child(b"stss");
        let keys: Vec<u32> = (0..stss.u32_at(4) as usize)
            .map(|i| stss.u32_at(8 + 4 * i))
            .collect();
        assert_eq!(keys, [1, 11, 21, 31, 41, 51]);
        let avc1 = vs.child(b"stsd").child(b"avc1");
        assert_eq!(avc1.child(b"avcC").body(), &h264().decoder_config[..]);
        let as_ = stbl(a);
        assert_eq!(a.child(b"mdia").child(b"mdhd").u32_at(12), 48_000);
        assert_eq!(runs(as_.child(b"stts")), [(inp.audio.len() as u32, 1024)]);
        assert!(!as_.has(b"stss"), "every AAC frame is a sync sample");

        // Every sample's bytes are where the tables say.
        for (trak, track, n) in [
            (v, Track::Video, inp.video.len()),
            (a, Track::Audio, inp.audio.len()),
        ] {
            let offs = sample_offsets(stbl(trak));
            assert_eq!(offs.len(), n);
            for (i, (off, size)) in offs.into_iter().enumerate() {
                let got = &file[off as usize..off as usize + size as usize];
                assert_eq!(got, &data(track, i, size)[..], "{track:?} {i}");
                let at = export.sample_at(off + u64::from(size) / 2).unwrap();
                assert_eq!((at.0, at.1), (track, i as u32));
            }
        }
        assert_eq!(export.sample_at(0), None);
        assert_eq!(export.sample_at(export.total_size()), None);

        // Chunks alternate by time, each at most 0.5 s of one track.
        let chunks = export.chunks();
        assert!(chunks.len() >= 2 * (60 * 3600 / CHUNK_DURATION_90K) as usize);
        assert!(
            chunks
                .windows(2)
                .all(|w| w[0].offset + w[0].size == w[1].offset)
        );
        assert!(
            chunks
                .iter()
                .all(|c| c.track != Track::Video || c.samples <= 13)
        );
        assert_eq!(chunks[0].track, Track::Video);
        assert_eq!(chunks[1].track, Track::Audio);
    }

    #[test]
    fn pass_two_order_does_not_change_the_bytes() {
        let inp = input(30, 0, 1000);
        let export = build(&inp, None);
        let interleaved = write(&export, &inp);
        // All video first, then all audio: buffered, same file.
        let mut file = export.header().to_vec();
        let mut p = export.payload();
        for (i, v) in inp.video.iter().enumerate() {
            p.push_video(&data(Track::Video, i, v.1), &mut file)
                .unwrap();
        }
        assert!(p.buffered_bytes() > 0);
        for (i, a) in inp.audio.iter().enumerate() {
            p.push_audio(&data(Track::Audio, i, a.1), &mut file)
                .unwrap();
        }
        assert_eq!(p.buffered_bytes(), 0);
        p.finish().unwrap();
        assert_eq!(file, interleaved);

        // Wrong size: refused, nothing written; missing samples: finish fails.
        let mut p = export.payload();
        let mut out = Vec::new();
        let e = p.push_video(&[1, 2, 3], &mut out).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(out.is_empty());
        p.push_video(&data(Track::Video, 0, inp.video[0].1), &mut out)
            .unwrap();
        assert!(p.finish().is_err());
    }

    #[test]
    fn gaps_extend_the_last_sample_before_them() {
        // Frames 0..10, then a 7.2 s gap, then frames 10..20.
        let mut b = Mp4ExportBuilder::new(&h264(), None).unwrap();
        for i in 0..20u64 {
            let t = i * 3600 + if i >= 10 { 648_000 } else { 0 };
            b.add_video(t, t, 100, i % 10 == 0).unwrap();
        }
        let export = b.finish(Some(19 * 3600 + 648_000 + 3600)).unwrap();
        let file = export.header();
        let moov = walk(&file[..file.len() - 8], 0).remove(1);
        let stts = stbl(moov.child(b"trak")).child(b"stts");
        assert_eq!(runs(stts), [(9, 3600), (1, 3600 + 648_000), (10, 3600)]);
        assert_eq!(export.duration_90k(), 20 * 3600 + 648_000);
        assert_eq!(moov.child(b"mvhd").u32_at(16), 20 * 3600 + 648_000);
        // Without an end the last frame repeats the previous duration.
        let mut b = Mp4ExportBuilder::new(&h264(), None).unwrap();
        b.add_video(0, 0, 10, true).unwrap();
        b.add_video(3003, 3003, 10, false).unwrap();
        assert_eq!(b.finish(None).unwrap().duration_90k(), 6006);
    }

    #[test]
    fn late_audio_and_reordered_video_get_edit_lists() {
        // Audio starts 10 ms after the video; video has B-frame-like
        // composition offsets (PTS = DTS + 7200 for the first).
        let mut b = Mp4ExportBuilder::new(&h264(), Some(&aac())).unwrap();
        let pts = [7200u64, 18_000, 10_800, 14_400];
        for (i, &p) in pts.iter().enumerate() {
            b.add_video(p, i as u64 * 3600, 50, i == 0).unwrap();
        }
        for j in 0..8u64 {
            b.add_audio(7200 + 900 + j * 1920, 20).unwrap();
        }
        let export = b.finish(None).unwrap();
        let h = export.header();
        let moov = walk(&h[..h.len() - 8], 0).remove(1);
        let traks = moov.all(b"trak");
        let elst = traks[0].child(b"edts").child(b"elst");
        // One edit: 4 frames minus the skipped 7200, from media time 7200.
        assert_eq!(
            (elst.u32_at(4), elst.u32_at(8), elst.u32_at(12)),
            (1, 7200, 7200)
        );
        let ctts = stbl(traks[0]).child(b"ctts");
        assert_eq!(runs(ctts), [(1, 7200), (1, 14_400), (2, 3600)]);
        let elst = traks[1].child(b"edts").child(b"elst");
        assert_eq!(elst.u32_at(4), 2);
        assert_eq!((elst.u32_at(8), elst.u32_at(12) as i32), (900, -1));
        assert_eq!(
            (elst.u32_at(20), elst.u32_at(24)),
            (8 * 1920, 0),
            "audio media from time 0"
        );
        assert_eq!(export.duration_90k(), 900 + 8 * 1920);
    }

    #[test]
    fn large_files_use_co64_and_a_64_bit_mdat() {
        // 5000 samples of 1 MB: about 5 GB, laid out from metadata alone.
        let mut b = Mp4ExportBuilder::new(&h264(), None).unwrap();
        for i in 0..5000u64 {
            b.add_video(i * 3600, i * 3600, 1 << 20, i % 50 == 0)
                .unwrap();
        }
        let export = b.finish(None).unwrap();
        assert_eq!(
            export.total_size(),
            export.header().len() as u64 + 5000 * (1 << 20)
        );
        let h = export.header();
        let mdat = &h[h.len() - 16..];
        assert_eq!(&mdat[..8], &[0, 0, 0, 1, b'm', b'd', b'a', b't']);
        assert_eq!(
            u64::from_be_bytes(mdat[8..].try_into().unwrap()),
            5000 * (1 << 20) + 16
        );
        let moov = walk(&h[..h.len() - 16], 0).remove(1);
        let st = stbl(moov.child(b"trak"));
        assert!(st.has(b"co64") && !st.has(b"stco"));
        let offs = sample_offsets(st);
        assert_eq!(offs[0].0, h.len() as u64);
        assert_eq!(offs[4999].0, h.len() as u64 + 4999 * (1 << 20));
        assert_eq!(
            export.sample_at(offs[4999].0 + 5),
            Some((Track::Video, 4999, 5))
        );
    }

    #[test]
    fn contract_violations_are_refused() {
        let mut b = Mp4ExportBuilder::new(&h264(), Some(&aac())).unwrap();
        let kind = |r: Result<()>| r.unwrap_err().kind();
        assert_eq!(kind(b.add_video(0, 0, 10, false)), ErrorKind::NeedKeyFrame);
        assert_eq!(kind(b.add_video(0, 0, 0, true)), ErrorKind::Malformed);
        b.add_video(9000, 9000, 10, true).unwrap();
        assert_eq!(
            kind(b.add_video(9000, 9000, 10, false)),
            ErrorKind::Timestamp
        );
        assert_eq!(
            kind(b.add_video(9000 + (1 << 32), 9000 + (1 << 32), 10, false)),
            ErrorKind::Timestamp
        );
        b.add_audio(5000, 10).unwrap();
        assert_eq!(kind(b.add_audio(5000, 10)), ErrorKind::Timestamp);
        let e = b.finish(None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timestamp, "audio before the video");

        let b = Mp4ExportBuilder::new(&h264(), None).unwrap();
        assert_eq!(b.finish(None).unwrap_err().kind(), ErrorKind::NeedKeyFrame);
        let mut b = Mp4ExportBuilder::new(&h264(), None).unwrap();
        assert_eq!(kind(b.add_audio(0, 10)), ErrorKind::InvalidConfig);
        let mut big = h264();
        big.width = 70_000;
        assert_eq!(
            Mp4ExportBuilder::new(&big, None).unwrap_err().kind(),
            ErrorKind::InvalidConfig
        );
    }

    #[test]
    fn annexb_helpers_drop_what_the_sample_entry_carries() {
        let au = [
            0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x06, 5, 0,
            0, 1, 0x65, 7, 8, 9,
        ];
        let mut out = vec![0xAA];
        append_video_sample(VideoCodec::H264, &au, &mut out).unwrap();
        assert_eq!(out, [0xAA, 0, 0, 0, 2, 0x06, 5, 0, 0, 0, 4, 0x65, 7, 8, 9]);
        assert_eq!(video_sample_size(VideoCodec::H264, &au).unwrap(), 14);
        assert!(video_sample_size(VideoCodec::H264, &au[..12]).is_err());
        assert!(append_video_sample(VideoCodec::H264, &[0x65], &mut out).is_err());
        assert_eq!(out.len(), 15);
    }
}
