//! Fragmented MP4 segments (ISO/IEC 14496-12, CMAF-style) for HLS and
//! export.
//!
//! Every segment is self-contained: it starts with `ftyp` + `moov` (the
//! init part, whose length [`Fmp4Muxer::begin_segment`] returns so a
//! playlist can point `EXT-X-MAP` at a byte range of the segment itself),
//! followed by one `moof` + `mdat` fragment per video frame that also
//! carries the audio frames queued since the previous fragment.
//!
//! Streaming: the muxer holds exactly one video frame (its duration is known
//! only when the next one arrives) plus the audio queued since, and appends
//! everything else to the caller's buffer at once.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use crate::nalscan::{self, NalIter};
use crate::{AudioParams, Error, ErrorKind, Result, VideoCodec, VideoParams};

const VIDEO_TRACK: u32 = 1;
const AUDIO_TRACK: u32 = 2;
const VIDEO_TIMESCALE: u32 = 90_000;
/// Samples per AAC-LC access unit.
const AAC_FRAME: u32 = 1024;
/// sample_depends_on = 2 (depends on no other sample): a sync sample.
const FLAGS_SYNC: u32 = 0x0200_0000;
/// sample_depends_on = 1 and sample_is_non_sync_sample.
const FLAGS_NON_SYNC: u32 = 0x0101_0000;
/// tfhd default-base-is-moof: data offsets count from the moof start.
const TFHD_BASE_IS_MOOF: u32 = 0x02_0000;
/// Audio frames queued without video before they go out in a fragment of
/// their own (about 1.4 s at 48 kHz), so a video stall cannot grow memory.
const MAX_QUEUED_AUDIO: usize = 64;
/// Duration assumed for a segment's last frame when nothing better is known
/// (40 ms, 25 fps).
const DEFAULT_DURATION: u32 = 3600;

/// Byte sizes of the fixed-size fragment boxes, so a fragment is written in
/// one pass without back-patching.
const MFHD_SIZE: u32 = 16;
const VIDEO_TRAF_SIZE: u32 = 8 + 16 + 20 + 32;
const AUDIO_TRAF_FIXED: u32 = 8 + 24 + 20 + 20;

/// What the audio track needs from [`AudioParams`].
#[derive(Debug)]
struct AudioTrack {
    sample_rate: u32,
    channels: u8,
    asc: Vec<u8>,
}

/// Streaming fMP4 muxer: video track 1 (90 kHz), optional AAC track 2
/// (timescale = sample rate).
#[derive(Debug)]
pub struct Fmp4Muxer {
    codec: VideoCodec,
    width: u32,
    height: u32,
    decoder_config: Vec<u8>,
    audio: Option<AudioTrack>,
    /// Between `begin_segment` and `end_segment`.
    open: bool,
    /// No video frame yet in this segment (the first must be a key frame).
    awaiting_video: bool,
    /// mfhd sequence number of the next fragment.
    seq: u32,
    /// The held video frame, already length-prefixed: the one frame copy.
    held: Vec<u8>,
    /// Conversion target for the incoming frame, swapped with `held`.
    spare: Vec<u8>,
    has_held: bool,
    held_dts: u64,
    held_key: bool,
    /// Duration of the last emitted video sample (fallback for the end).
    last_duration: u32,
    /// Raw AAC frames queued for the next fragment, back to back.
    audio_data: Vec<u8>,
    audio_sizes: Vec<u32>,
    /// Time of the first queued audio frame (audio timescale).
    audio_first: u64,
}

impl Fmp4Muxer {
    /// A muxer for `video` plus, if given, one AAC track. The sample entry
    /// is built from `video.decoder_config`, so a parameter-set change needs
    /// a new muxer.
    pub fn new(video: &VideoParams, audio: Option<&AudioParams>) -> Self {
        Fmp4Muxer {
            codec: video.codec,
            width: video.width,
            height: video.height,
            decoder_config: video.decoder_config.clone(),
            audio: audio.map(|a| AudioTrack {
                sample_rate: a.sample_rate,
                channels: a.channels,
                asc: a.asc.clone(),
            }),
            open: false,
            awaiting_video: true,
            seq: 1,
            held: Vec::new(),
            spare: Vec::new(),
            has_held: false,
            held_dts: 0,
            held_key: false,
            last_duration: DEFAULT_DURATION,
            audio_data: Vec::new(),
            audio_sizes: Vec::new(),
            audio_first: 0,
        }
    }

    /// Starts a segment: writes ftyp + moov; returns the init length in
    /// bytes. Anything pending from a segment that was not ended is dropped.
    ///
    /// Errors (`InvalidConfig`, nothing written): empty decoder config,
    /// dimensions beyond 65535, an audio sample rate of zero.
    pub fn begin_segment(&mut self, out: &mut Vec<u8>) -> Result<usize> {
        if self.decoder_config.is_empty() {
            return Err(config_error("video decoder configuration is empty"));
        }
        let (Ok(w), Ok(h)) = (u16::try_from(self.width), u16::try_from(self.height)) else {
            return Err(config_error("video dimensions do not fit 16 bits"));
        };
        if self.audio.as_ref().is_some_and(|a| a.sample_rate == 0) {
            return Err(config_error("audio sample rate is zero"));
        }
        self.has_held = false;
        self.audio_data.clear();
        self.audio_sizes.clear();
        self.seq = 1;
        self.open = true;
        self.awaiting_video = true;

        let start = out.len();
        self.write_ftyp(out);
        self.write_moov(out, w, h);
        Ok(out.len() - start)
    }

    /// One access unit (Annex-B) with its decode time in 90 kHz. Holds the
    /// frame until the next push (its duration is the DTS difference), then
    /// emits a fragment (moof+mdat) containing the held video frame and the
    /// audio frames queued since.
    ///
    /// Errors (nothing written, the held frame stays): no open segment
    /// (`InvalidConfig`), a non-key first frame (`NeedKeyFrame`), a DTS not
    /// after the held frame's (`Timestamp`), an access unit without a start
    /// code or slice (`Malformed`).
    pub fn push_video(
        &mut self,
        out: &mut Vec<u8>,
        au: &[u8],
        dts90: u64,
        keyframe: bool,
    ) -> Result<()> {
        if !self.open {
            return Err(config_error("no open segment: call begin_segment first"));
        }
        if self.awaiting_video && !keyframe {
            return Err(Error::new(
                ErrorKind::NeedKeyFrame,
                "a segment must start with a key frame",
            ));
        }
        let duration = if self.has_held {
            Some(self.duration_to(dts90)?)
        } else {
            None
        };
        to_length_prefixed(self.codec, au, &mut self.spare)?;
        if let Some(d) = duration {
            self.write_fragment(out, Some(d))?;
        }
        std::mem::swap(&mut self.held, &mut self.spare);
        self.has_held = true;
        self.held_dts = dts90;
        self.held_key = keyframe;
        self.awaiting_video = false;
        Ok(())
    }

    /// One raw AAC access unit with its time in the audio timescale (= the
    /// sample rate), 1024 samples long. Queued for the next fragment.
    pub fn push_audio(&mut self, out: &mut Vec<u8>, raw_au: &[u8], pts: u64) -> Result<()> {
        if !self.open {
            return Err(config_error("no open segment: call begin_segment first"));
        }
        if self.audio.is_none() {
            return Err(config_error(
                "audio pushed to a muxer created without audio",
            ));
        }
        if raw_au.is_empty() {
            return Err(Error::malformed("empty AAC access unit"));
        }
        let size = u32::try_from(raw_au.len())
            .map_err(|_| Error::new(ErrorKind::TooLarge, "AAC access unit over 4 GiB"))?;
        if self.audio_sizes.is_empty() {
            self.audio_first = pts;
        }
        self.audio_data.extend_from_slice(raw_au);
        self.audio_sizes.push(size);
        if self.audio_sizes.len() >= MAX_QUEUED_AUDIO {
            self.write_fragment(out, None)?;
        }
        Ok(())
    }

    /// Ends the segment: flushes the held video frame with duration
    /// `end_dts90 - its dts` (the previous frame's duration if `end_dts90`
    /// is not greater), and any queued audio.
    pub fn end_segment(&mut self, out: &mut Vec<u8>, end_dts90: u64) -> Result<()> {
        if !self.open {
            return Err(config_error("no open segment: call begin_segment first"));
        }
        if self.has_held {
            let d = if end_dts90 > self.held_dts {
                self.duration_to(end_dts90)?
            } else {
                self.last_duration
            };
            self.write_fragment(out, Some(d))?;
        } else if !self.audio_sizes.is_empty() {
            self.write_fragment(out, None)?;
        }
        self.open = false;
        Ok(())
    }

    /// Duration of the held frame if the next one is decoded at `dts90`.
    fn duration_to(&self, dts90: u64) -> Result<u32> {
        if dts90 <= self.held_dts {
            return Err(Error::new(
                ErrorKind::Timestamp,
                format!(
                    "video DTS {dts90} is not after the previous frame's {}",
                    self.held_dts
                ),
            ));
        }
        u32::try_from(dts90 - self.held_dts).map_err(|_| {
            Error::new(
                ErrorKind::Timestamp,
                format!("video DTS jumps from {} to {dts90}", self.held_dts),
            )
        })
    }

    /// One moof + mdat with the held frame (if `video_duration` is given)
    /// and all queued audio; clears both.
    fn write_fragment(&mut self, out: &mut Vec<u8>, video_duration: Option<u32>) -> Result<()> {
        let video = match video_duration {
            Some(d) if self.has_held => Some((d, self.held.as_slice())),
            _ => None,
        };
        let n_audio = self.audio_sizes.len();
        if video.is_none() && n_audio == 0 {
            return Ok(());
        }
        let too_large = || Error::new(ErrorKind::TooLarge, "fragment over 2 GiB");
        let video_len = video.map_or(0, |(_, v)| v.len());
        let audio_traf = if n_audio > 0 {
            let n = u32::try_from(n_audio).map_err(|_| too_large())?;
            AUDIO_TRAF_FIXED + 4 * n
        } else {
            0
        };
        let moof_size =
            8 + MFHD_SIZE + if video.is_some() { VIDEO_TRAF_SIZE } else { 0 } + audio_traf;
        // Offsets are signed 32-bit in trun; keep every one in range.
        let mdat_size = 8 + video_len + self.audio_data.len();
        let total = moof_size as usize + mdat_size;
        if i32::try_from(total).is_err() {
            return Err(too_large());
        }
        let mdat_size = mdat_size as u32;
        let video_offset = moof_size + 8;
        let audio_offset = video_offset + video_len as u32;

        out.reserve(total);
        put_header(out, moof_size, b"moof");
        put_header(out, MFHD_SIZE, b"mfhd");
        put_u32(out, 0);
        put_u32(out, self.seq);
        if let Some((duration, sample)) = video {
            put_header(out, VIDEO_TRAF_SIZE, b"traf");
            put_header(out, 16, b"tfhd");
            put_u32(out, TFHD_BASE_IS_MOOF);
            put_u32(out, VIDEO_TRACK);
            put_tfdt(out, self.held_dts);
            put_header(out, 32, b"trun");
            // data-offset, sample duration, size and flags present.
            put_u32(out, 0x0000_0701);
            put_u32(out, 1);
            put_u32(out, video_offset);
            put_u32(out, duration);
            put_u32(out, sample.len() as u32);
            put_u32(
                out,
                if self.held_key {
                    FLAGS_SYNC
                } else {
                    FLAGS_NON_SYNC
                },
            );
        }
        if n_audio > 0 {
            put_header(out, audio_traf, b"traf");
            // Every AAC frame lasts 1024 samples and is a sync sample, so
            // both go in tfhd defaults and trun lists sizes only.
            put_header(out, 24, b"tfhd");
            put_u32(out, TFHD_BASE_IS_MOOF | 0x08 | 0x20);
            put_u32(out, AUDIO_TRACK);
            put_u32(out, AAC_FRAME);
            put_u32(out, FLAGS_SYNC);
            put_tfdt(out, self.audio_first);
            put_header(out, audio_traf - 52, b"trun");
            // data-offset and sample size present.
            put_u32(out, 0x0000_0201);
            put_u32(out, n_audio as u32);
            put_u32(out, audio_offset);
            for &size in &self.audio_sizes {
                put_u32(out, size);
            }
        }
        put_header(out, mdat_size, b"mdat");
        if let Some((_, sample)) = video {
            out.extend_from_slice(sample);
        }
        out.extend_from_slice(&self.audio_data);

        self.seq = self.seq.wrapping_add(1);
        self.audio_data.clear();
        self.audio_sizes.clear();
        if video.is_some() {
            self.has_held = false;
            if let Some(d) = video_duration {
                self.last_duration = d;
            }
        }
        Ok(())
    }

    fn write_ftyp(&self, out: &mut Vec<u8>) {
        let b = open_box(out, b"ftyp");
        out.extend_from_slice(b"iso6");
        put_u32(out, 0);
        out.extend_from_slice(b"iso6cmfcmp41");
        close_box(out, b);
    }

    fn write_moov(&self, out: &mut Vec<u8>, width: u16, height: u16) {
        let moov = open_box(out, b"moov");

        let mvhd = open_full(out, b"mvhd", 0, 0);
        put_u32(out, 0); // creation_time
        put_u32(out, 0); // modification_time
        put_u32(out, 1000); // timescale
        put_u32(out, 0); // duration: unknown, fragmented
        put_u32(out, 0x0001_0000); // rate 1.0
        out.extend_from_slice(&[0x01, 0x00]); // volume 1.0
        out.extend_from_slice(&[0; 10]);
        put_matrix(out);
        out.extend_from_slice(&[0; 24]);
        put_u32(
            out,
            if self.audio.is_some() {
                AUDIO_TRACK + 1
            } else {
                VIDEO_TRACK + 1
            },
        );
        close_box(out, mvhd);

        // Video track.
        let trak = open_box(out, b"trak");
        put_tkhd(
            out,
            VIDEO_TRACK,
            0,
            u32::from(width) << 16,
            u32::from(height) << 16,
        );
        let mdia = open_box(out, b"mdia");
        put_mdhd(out, VIDEO_TIMESCALE);
        put_hdlr(out, b"vide", b"VideoHandler\0");
        let minf = open_box(out, b"minf");
        let vmhd = open_full(out, b"vmhd", 0, 1);
        out.extend_from_slice(&[0; 8]); // graphicsmode, opcolor
        close_box(out, vmhd);
        put_dinf(out);
        let stbl = open_box(out, b"stbl");
        let stsd = open_full(out, b"stsd", 0, 0);
        put_u32(out, 1);
        let entry = open_box(
            out,
            match self.codec {
                VideoCodec::H264 => b"avc1",
                VideoCodec::H265 => b"hvc1",
            },
        );
        out.extend_from_slice(&[0; 6]);
        out.extend_from_slice(&[0, 1]); // data_reference_index
        out.extend_from_slice(&[0; 16]); // pre_defined, reserved
        out.extend_from_slice(&width.to_be_bytes());
        out.extend_from_slice(&height.to_be_bytes());
        put_u32(out, 0x0048_0000); // 72 dpi
        put_u32(out, 0x0048_0000);
        put_u32(out, 0);
        out.extend_from_slice(&[0, 1]); // frame_count
        out.extend_from_slice(&[0; 32]); // compressorname
        out.extend_from_slice(&[0x00, 0x18, 0xFF, 0xFF]); // depth 24, pre_defined -1
        let config = open_box(
            out,
            match self.codec {
                VideoCodec::H264 => b"avcC",
                VideoCodec::H265 => b"hvcC",
            },
        );
        out.extend_from_slice(&self.decoder_config);
        close_box(out, config);
        close_box(out, entry);
        close_box(out, stsd);
        put_empty_tables(out);
        close_box(out, stbl);
        close_box(out, minf);
        close_box(out, mdia);
        close_box(out, trak);

        if let Some(audio) = &self.audio {
            let trak = open_box(out, b"trak");
            put_tkhd(out, AUDIO_TRACK, 0x0100, 0, 0);
            let mdia = open_box(out, b"mdia");
            put_mdhd(out, audio.sample_rate);
            put_hdlr(out, b"soun", b"SoundHandler\0");
            let minf = open_box(out, b"minf");
            let smhd = open_full(out, b"smhd", 0, 0);
            put_u32(out, 0); // balance, reserved
            close_box(out, smhd);
            put_dinf(out);
            let stbl = open_box(out, b"stbl");
            let stsd = open_full(out, b"stsd", 0, 0);
            put_u32(out, 1);
            let entry = open_box(out, b"mp4a");
            out.extend_from_slice(&[0; 6]);
            out.extend_from_slice(&[0, 1]); // data_reference_index
            out.extend_from_slice(&[0; 8]);
            out.extend_from_slice(&u16::from(audio.channels).to_be_bytes());
            out.extend_from_slice(&[0, 16, 0, 0, 0, 0]); // samplesize 16, pre_defined, reserved
            // 16.16 fixed point; rates above 65535 Hz do not fit and are
            // written as 0 (the AudioSpecificConfig is authoritative).
            put_u32(
                out,
                u16::try_from(audio.sample_rate).map_or(0, |r| u32::from(r) << 16),
            );
            put_esds(out, audio);
            close_box(out, entry);
            close_box(out, stsd);
            put_empty_tables(out);
            close_box(out, stbl);
            close_box(out, minf);
            close_box(out, mdia);
            close_box(out, trak);
        }

        let mvex = open_box(out, b"mvex");
        put_trex(out, VIDEO_TRACK);
        if self.audio.is_some() {
            put_trex(out, AUDIO_TRACK);
        }
        close_box(out, mvex);
        close_box(out, moov);
    }
}

fn config_error(msg: &str) -> Error {
    Error::new(ErrorKind::InvalidConfig, msg)
}

/// Rewrites an Annex-B access unit as 4-byte length-prefixed NALs into
/// `dst`, dropping AUD, parameter sets (they live in the sample entry) and
/// filler data.
fn to_length_prefixed(codec: VideoCodec, au: &[u8], dst: &mut Vec<u8>) -> Result<()> {
    if nalscan::leading_garbage(au) {
        return Err(Error::malformed(
            "video access unit does not start with an Annex-B start code",
        ));
    }
    dst.clear();
    // Start codes are 3 or 4 bytes, prefixes 4: a little slack avoids
    // regrowing for 3-byte start codes.
    dst.reserve(au.len() + 64);
    let mut has_slice = false;
    for nal in NalIter::new(au) {
        let t = nalscan::nal_type(codec, nal.bytes);
        if nalscan::is_aud(codec, t)
            || nalscan::is_parameter_set(codec, t)
            || nalscan::is_filler(codec, t)
        {
            continue;
        }
        has_slice |= nalscan::is_vcl(codec, t);
        let len = u32::try_from(nal.bytes.len())
            .map_err(|_| Error::new(ErrorKind::TooLarge, "NAL unit over 4 GiB"))?;
        put_u32(dst, len);
        dst.extend_from_slice(nal.bytes);
    }
    if !has_slice {
        dst.clear();
        return Err(Error::malformed("video access unit has no slice"));
    }
    Ok(())
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_header(out: &mut Vec<u8>, size: u32, fourcc: &[u8; 4]) {
    put_u32(out, size);
    out.extend_from_slice(fourcc);
}

fn put_tfdt(out: &mut Vec<u8>, base: u64) {
    put_header(out, 20, b"tfdt");
    put_u32(out, 0x0100_0000); // version 1: 64-bit time
    out.extend_from_slice(&base.to_be_bytes());
}

/// Starts a box whose size is patched by [`close_box`]; returns its offset.
fn open_box(out: &mut Vec<u8>, fourcc: &[u8; 4]) -> usize {
    let start = out.len();
    put_header(out, 0, fourcc);
    start
}

fn open_full(out: &mut Vec<u8>, fourcc: &[u8; 4], version: u8, flags: u32) -> usize {
    let start = open_box(out, fourcc);
    put_u32(out, (u32::from(version) << 24) | (flags & 0x00FF_FFFF));
    start
}

fn close_box(out: &mut [u8], start: usize) {
    // Init boxes are a few hundred bytes; the size always fits.
    let size = u32::try_from(out.len().saturating_sub(start)).unwrap_or(0);
    if let Some(slot) = out.get_mut(start..start + 4) {
        slot.copy_from_slice(&size.to_be_bytes());
    }
}

/// The identity transformation matrix of mvhd/tkhd.
fn put_matrix(out: &mut Vec<u8>) {
    for v in [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        put_u32(out, v);
    }
}

fn put_tkhd(out: &mut Vec<u8>, track: u32, volume: u16, width: u32, height: u32) {
    // Flags: track_enabled | track_in_movie.
    let b = open_full(out, b"tkhd", 0, 0x03);
    put_u32(out, 0); // creation_time
    put_u32(out, 0); // modification_time
    put_u32(out, track);
    put_u32(out, 0); // reserved
    put_u32(out, 0); // duration
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&[0; 4]); // layer, alternate_group
    out.extend_from_slice(&volume.to_be_bytes());
    out.extend_from_slice(&[0; 2]);
    put_matrix(out);
    put_u32(out, width);
    put_u32(out, height);
    close_box(out, b);
}

fn put_mdhd(out: &mut Vec<u8>, timescale: u32) {
    let b = open_full(out, b"mdhd", 0, 0);
    put_u32(out, 0);
    put_u32(out, 0);
    put_u32(out, timescale);
    put_u32(out, 0);
    out.extend_from_slice(&[0x55, 0xC4, 0, 0]); // language "und", pre_defined
    close_box(out, b);
}

fn put_hdlr(out: &mut Vec<u8>, handler: &[u8; 4], name: &[u8]) {
    let b = open_full(out, b"hdlr", 0, 0);
    put_u32(out, 0);
    out.extend_from_slice(handler);
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(name);
    close_box(out, b);
}

/// dinf with one self-contained `url ` entry: the media is in this file.
fn put_dinf(out: &mut Vec<u8>) {
    let dinf = open_box(out, b"dinf");
    let dref = open_full(out, b"dref", 0, 0);
    put_u32(out, 1);
    let url = open_full(out, b"url ", 0, 1);
    close_box(out, url);
    close_box(out, dref);
    close_box(out, dinf);
}

/// The mandatory sample tables, empty: all samples are in fragments.
fn put_empty_tables(out: &mut Vec<u8>) {
    for fourcc in [b"stts", b"stsc", b"stco"] {
        let b = open_full(out, fourcc, 0, 0);
        put_u32(out, 0);
        close_box(out, b);
    }
    let stsz = open_full(out, b"stsz", 0, 0);
    put_u32(out, 0); // sample_size
    put_u32(out, 0); // sample_count
    close_box(out, stsz);
}

fn put_trex(out: &mut Vec<u8>, track: u32) {
    let b = open_full(out, b"trex", 0, 0);
    put_u32(out, track);
    put_u32(out, 1); // default_sample_description_index
    put_u32(out, 0);
    put_u32(out, 0);
    put_u32(out, 0);
    close_box(out, b);
}

/// esds: ES_Descriptor > DecoderConfigDescriptor (AAC, audio stream) >
/// DecoderSpecificInfo (the AudioSpecificConfig), plus SLConfig 2.
fn put_esds(out: &mut Vec<u8>, audio: &AudioTrack) {
    let b = open_full(out, b"esds", 0, 0);
    let dsi_len = audio.asc.len();
    let dcd_len = 13 + 1 + desc_len_size(dsi_len) + dsi_len;
    let es_len = 3 + 1 + desc_len_size(dcd_len) + dcd_len + 3;
    out.push(0x03);
    put_desc_len(out, es_len);
    out.extend_from_slice(&[0, 0, 0]); // ES_ID 0 (the track names it), flags
    out.push(0x04);
    put_desc_len(out, dcd_len);
    out.push(0x40); // MPEG-4 audio
    out.push((5 << 2) | 1); // streamType audio, reserved 1
    // bufferSizeDB: the AAC decoder input buffer, 6144 bits per channel.
    let buffer = 768 * u32::from(audio.channels.max(1));
    out.extend_from_slice(&buffer.to_be_bytes()[1..]);
    put_u32(out, 0); // maxBitrate: unknown
    put_u32(out, 0); // avgBitrate: variable
    out.push(0x05);
    put_desc_len(out, dsi_len);
    out.extend_from_slice(&audio.asc);
    out.extend_from_slice(&[0x06, 0x01, 0x02]);
    close_box(out, b);
}

fn desc_len_size(len: usize) -> usize {
    match len {
        0..0x80 => 1,
        0x80..0x4000 => 2,
        0x4000..0x20_0000 => 3,
        _ => 4,
    }
}

/// Expandable descriptor size (7 bits per byte, high bit = more follow).
fn put_desc_len(out: &mut Vec<u8>, len: usize) {
    let n = desc_len_size(len);
    for i in (0..n).rev() {
        let more = if i > 0 { 0x80 } else { 0 };
        out.push(((len >> (7 * i)) & 0x7F) as u8 | more);
    }
}
