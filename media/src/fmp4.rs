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

use crate::mp4box::{
    append_length_prefixed, close_box, open_box, open_full, put_audio_stsd, put_dinf, put_hdlr,
    put_header, put_mdhd, put_mvhd, put_smhd, put_tkhd, put_u32, put_video_stsd, put_vmhd,
};
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
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct AudioTrack {
    sample_rate: u32,
    channels: u8,
    asc: Vec<u8>,
}

/// Streaming fMP4 muxer: video track 1 (90 kHz), optional AAC track 2
/// (timescale = sample rate).
#[derive(Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
    #[cfg_attr(feature = "serde", serde(with = "crate::b64"))]
    held: Vec<u8>,
    /// Conversion target for the incoming frame, swapped with `held`.
    #[cfg_attr(feature = "serde", serde(skip))]
    spare: Vec<u8>,
    has_held: bool,
    held_dts: u64,
    held_key: bool,
    /// Duration of the last emitted video sample (fallback for the end).
    last_duration: u32,
    /// Raw AAC frames queued for the next fragment, back to back.
    #[cfg_attr(feature = "serde", serde(with = "crate::b64"))]
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
        self.spare.clear();
        append_length_prefixed(self.codec, au, &mut self.spare)?;
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
    /// is not greater, or more than 2^32 ticks later), and any queued audio.
    pub fn end_segment(&mut self, out: &mut Vec<u8>, end_dts90: u64) -> Result<()> {
        if !self.open {
            return Err(config_error("no open segment: call begin_segment first"));
        }
        if self.has_held {
            // A jump too large for 32 bits is treated like a missing end
            // time, so the segment can always be closed.
            let d = self.duration_to(end_dts90).unwrap_or(self.last_duration);
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
        let next_track = if self.audio.is_some() {
            AUDIO_TRACK + 1
        } else {
            VIDEO_TRACK + 1
        };
        // Durations are unknown (0): the samples are in fragments.
        put_mvhd(out, 1000, 0, next_track);

        // Video track.
        let trak = open_box(out, b"trak");
        put_tkhd(
            out,
            VIDEO_TRACK,
            0,
            u32::from(width) << 16,
            u32::from(height) << 16,
            0,
        );
        let mdia = open_box(out, b"mdia");
        put_mdhd(out, VIDEO_TIMESCALE, 0);
        put_hdlr(out, b"vide", b"VideoHandler\0");
        let minf = open_box(out, b"minf");
        put_vmhd(out);
        put_dinf(out);
        let stbl = open_box(out, b"stbl");
        put_video_stsd(out, self.codec, width, height, &self.decoder_config);
        put_empty_tables(out);
        close_box(out, stbl);
        close_box(out, minf);
        close_box(out, mdia);
        close_box(out, trak);

        if let Some(audio) = &self.audio {
            let trak = open_box(out, b"trak");
            put_tkhd(out, AUDIO_TRACK, 0x0100, 0, 0, 0);
            let mdia = open_box(out, b"mdia");
            put_mdhd(out, audio.sample_rate, 0);
            put_hdlr(out, b"soun", b"SoundHandler\0");
            let minf = open_box(out, b"minf");
            put_smhd(out);
            put_dinf(out);
            let stbl = open_box(out, b"stbl");
            put_audio_stsd(out, audio.sample_rate, audio.channels, &audio.asc);
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

fn put_tfdt(out: &mut Vec<u8>, base: u64) {
    put_header(out, 20, b"tfdt");
    put_u32(out, 0x0100_0000); // version 1: 64-bit time
    out.extend_from_slice(&base.to_be_bytes());
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::mp4box::testutil::{show, walk};

    /// 1080p H.264 Main parameters (shared with the demuxer tests).
    pub(crate) fn h264_params() -> VideoParams {
        VideoParams {
            codec: VideoCodec::H264,
            width: 1920,
            height: 1080,
            codec_string: "avc1.4D4028".into(),
            vps: vec![],
            sps: vec![vec![0x67, 0x4D, 0x40, 0x28]],
            pps: vec![vec![0x68, 0xEE]],
            decoder_config: vec![
                1, 0x4D, 0x40, 0x28, 0xFF, 0xE1, 0, 4, 0x67, 0x4D, 0x40, 0x28, 1, 0, 2, 0x68, 0xEE,
            ],
        }
    }

    /// AUD + (SPS + PPS on key frames) + SEI + slice with 3-byte start codes.
    fn au(key: bool, n: u8) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 1, 0x09, 0xF0];
        if key {
            v.extend_from_slice(&[0, 0, 0, 1, 0x67, 0x4D, 0x40, 0x28, 0, 0, 1, 0x68, 0xEE]);
        }
        v.extend_from_slice(&[0, 0, 1, 0x06, 5, 1, 0x80, 0, 0, 0]); // SEI, trailing zeros
        v.extend_from_slice(&[0, 0, 1, 0x0C, 0xFF, 0xFF, 0x80]); // filler
        v.extend_from_slice(&[0, 0, 1, if key { 0x65 } else { 0x41 }, n + 1, n + 1, n + 1]);
        v
    }

    /// SEI and slice, length-prefixed; AUD, SPS, PPS and filler dropped.
    fn expected_sample(key: bool, n: u8) -> Vec<u8> {
        let slice = if key { 0x65 } else { 0x41 };
        let mut v = vec![0, 0, 0, 4, 0x06, 5, 1, 0x80];
        v.extend_from_slice(&[0, 0, 0, 4, slice, n + 1, n + 1, n + 1]);
        v
    }

    #[test]
    fn segment_structure_and_fragments() {
        let a = AudioParams::aac_lc(48_000, 2).unwrap();
        let mut mux = Fmp4Muxer::new(&h264_params(), Some(&a));
        for seg in 0..2u64 {
            let mut out = vec![0xAB; 5]; // the caller's bytes stay untouched
            let init = mux.begin_segment(&mut out).unwrap();
            let t0 = 1_000_000 + seg * 4 * 3600;
            let at = 48_000 * 20 + seg * 10_000;
            // Audio before the first video frame is queued.
            mux.push_audio(&mut out, &[1; 10], at).unwrap();
            mux.push_video(&mut out, &au(true, 0), t0, true).unwrap();
            mux.push_audio(&mut out, &[2; 11], at + 1024).unwrap();
            mux.push_audio(&mut out, &[3; 12], at + 2048).unwrap();
            for f in 1..4u8 {
                mux.push_video(&mut out, &au(false, f), t0 + u64::from(f) * 3600, false)
                    .unwrap();
            }
            mux.end_segment(&mut out, t0 + 4 * 3600).unwrap();

            assert_eq!(&out[..5], &[0xAB; 5]);
            let data = &out[5..];
            let top = walk(data, 0);
            let kinds: Vec<String> = top.iter().map(|b| show(&b.kind)).collect();
            let mut want = vec!["ftyp".to_string(), "moov".into()];
            for _ in 0..4 {
                want.extend(["moof".to_string(), "mdat".into()]);
            }
            assert_eq!(kinds, want);
            assert_eq!(init, top[0].bytes.len() + top[1].bytes.len());
            assert_eq!(&top[0].body()[..4], b"iso6");

            let moov = &top[1];
            assert_eq!(moov.child(b"mvhd").u32_at(4 + 8), 1000);
            assert_eq!(moov.child(b"mvhd").u32_at(96), 3, "next_track_ID");
            let traks = moov.all(b"trak");
            assert_eq!(traks.len(), 2);
            let vstbl = traks[0].child(b"mdia").child(b"minf").child(b"stbl");
            let avc1 = vstbl.child(b"stsd").child(b"avc1");
            assert_eq!(
                avc1.child(b"avcC").body(),
                &h264_params().decoder_config[..]
            );
            assert_eq!(&avc1.body()[24..28], &[0x07, 0x80, 0x04, 0x38]);
            assert_eq!(traks[0].child(b"tkhd").u32_at(12), 1);
            assert_eq!(traks[0].child(b"tkhd").u32_at(76), 1920 << 16);
            assert_eq!(traks[0].child(b"mdia").child(b"mdhd").u32_at(12), 90_000);
            let amdia = traks[1].child(b"mdia");
            assert_eq!(amdia.child(b"mdhd").u32_at(12), 48_000);
            assert_eq!(&amdia.child(b"hdlr").body()[8..12], b"soun");
            let mp4a = amdia
                .child(b"minf")
                .child(b"stbl")
                .child(b"stsd")
                .child(b"mp4a");
            assert_eq!(&mp4a.body()[16..20], &[0, 2, 0, 16]);
            assert_eq!(mp4a.u32_at(24), 48_000 << 16);
            let esds = mp4a.child(b"esds").body();
            // ES_Descriptor > DecoderConfig(0x40, audio) > DSI = ASC > SL 2.
            let mut want_esds = vec![0, 0, 0, 0, 3, 25, 0, 0, 0, 4, 17, 0x40, 0x15, 0, 6, 0];
            want_esds.extend_from_slice(&[0; 8]);
            want_esds.extend_from_slice(&[5, 2]);
            want_esds.extend_from_slice(&a.asc);
            want_esds.extend_from_slice(&[6, 1, 2]);
            assert_eq!(esds, &want_esds[..]);
            assert_eq!(moov.child(b"mvex").all(b"trex").len(), 2);

            for (k, pair) in top[2..].chunks(2).enumerate() {
                let (moof, mdat) = (&pair[0], &pair[1]);
                assert_eq!(moof.child(b"mfhd").u32_at(4), k as u32 + 1);
                let trafs = moof.all(b"traf");
                let v = trafs[0];
                assert_eq!(v.child(b"tfhd").u32_at(0), 0x02_0000);
                assert_eq!(v.child(b"tfhd").u32_at(4), 1);
                assert_eq!(v.child(b"tfdt").u32_at(0) >> 24, 1);
                assert_eq!(v.child(b"tfdt").u64_at(4), t0 + k as u64 * 3600);
                let trun = v.child(b"trun");
                assert_eq!(trun.u32_at(4), 1);
                let off = trun.u32_at(8) as usize;
                assert_eq!(trun.u32_at(12), 3600);
                let size = trun.u32_at(16) as usize;
                let key = k == 0;
                assert_eq!(trun.u32_at(20), if key { 0x0200_0000 } else { 0x0101_0000 });
                let sample = &data[moof.at + off..moof.at + off + size];
                assert!(off == moof.bytes.len() + 8 && moof.at + off == mdat.at + 8);
                assert_eq!(sample, &expected_sample(key, k as u8)[..]);
                // Audio: frames queued before this fragment, right after
                // the video sample in the mdat.
                // The first fragment goes out when frame 1 arrives, after
                // all three audio frames.
                let audio_frames: Vec<u8> = if k == 0 { vec![1, 2, 3] } else { vec![] };
                if audio_frames.is_empty() {
                    assert_eq!(trafs.len(), 1);
                    assert_eq!(mdat.bytes.len(), 8 + size);
                    continue;
                }
                let a = trafs[1];
                let tfhd = a.child(b"tfhd");
                assert_eq!(tfhd.u32_at(0), 0x02_0028);
                assert_eq!(
                    (tfhd.u32_at(4), tfhd.u32_at(8), tfhd.u32_at(12)),
                    (2, 1024, 0x0200_0000)
                );
                assert_eq!(a.child(b"tfdt").u64_at(4), at);
                let trun = a.child(b"trun");
                assert_eq!(trun.u32_at(4), 3);
                let mut pos = moof.at + trun.u32_at(8) as usize;
                assert_eq!(pos, mdat.at + 8 + size);
                for (i, fill) in audio_frames.iter().enumerate() {
                    let n = trun.u32_at(12 + 4 * i) as usize;
                    assert_eq!(n, 9 + *fill as usize);
                    assert!(data[pos..pos + n].iter().all(|b| b == fill));
                    pos += n;
                }
                assert_eq!(pos, mdat.at + mdat.bytes.len());
            }
        }
    }

    #[test]
    fn video_only_declares_one_track() {
        let mut mux = Fmp4Muxer::new(&h264_params(), None);
        let mut out = Vec::new();
        mux.begin_segment(&mut out).unwrap();
        mux.push_video(&mut out, &au(true, 1), 0, true).unwrap();
        mux.end_segment(&mut out, 0).unwrap();
        let top = walk(&out, 0);
        let moov = &top[1];
        assert_eq!(moov.all(b"trak").len(), 1);
        assert_eq!(moov.child(b"mvhd").u32_at(96), 2);
        assert_eq!(moov.child(b"mvex").all(b"trex").len(), 1);
        // Nothing else held: the last frame got the default duration.
        assert_eq!(top.len(), 4);
        let trun = top[2].child(b"traf").child(b"trun");
        assert_eq!(trun.u32_at(12), DEFAULT_DURATION);
        assert_eq!(
            mux.push_audio(&mut out, &[1], 0).unwrap_err().kind(),
            ErrorKind::InvalidConfig
        );
    }

    #[test]
    fn h265_sample_entry_and_nal_filtering() {
        let params = VideoParams {
            codec: VideoCodec::H265,
            width: 640,
            height: 360,
            codec_string: String::new(),
            vps: vec![],
            sps: vec![],
            pps: vec![],
            decoder_config: vec![1, 2, 3],
        };
        let mut mux = Fmp4Muxer::new(&params, None);
        let mut out = Vec::new();
        mux.begin_segment(&mut out).unwrap();
        // AUD, VPS, SPS, PPS, prefix SEI, IDR slice.
        let au = [
            0, 0, 0, 1, 0x46, 0x01, 0x10, 0, 0, 1, 0x40, 0x01, 9, 0, 0, 1, 0x42, 0x01, 9, 0, 0, 1,
            0x44, 0x01, 9, 0, 0, 1, 0x4E, 0x01, 7, 0, 0, 1, 0x26, 0x01, 0xAF,
        ];
        mux.push_video(&mut out, &au, 10, true).unwrap();
        mux.end_segment(&mut out, 3610).unwrap();
        let top = walk(&out, 0);
        let stsd = top[1]
            .child(b"trak")
            .child(b"mdia")
            .child(b"minf")
            .child(b"stbl")
            .child(b"stsd");
        assert_eq!(stsd.child(b"hvc1").child(b"hvcC").body(), &[1, 2, 3]);
        assert_eq!(
            top[3].body(),
            &[0, 0, 0, 3, 0x4E, 0x01, 7, 0, 0, 0, 3, 0x26, 0x01, 0xAF]
        );
    }

    #[test]
    fn end_duration_falls_back_to_previous_frame() {
        let mut mux = Fmp4Muxer::new(&h264_params(), None);
        let mut out = Vec::new();
        mux.begin_segment(&mut out).unwrap();
        mux.push_video(&mut out, &au(true, 1), 1000, true).unwrap();
        mux.push_video(&mut out, &au(false, 2), 1000 + 3003, false)
            .unwrap();
        mux.end_segment(&mut out, 1000 + 3003).unwrap();
        let top = walk(&out, 0);
        let durations: Vec<u32> = [2, 4]
            .iter()
            .map(|&i| top[i].child(b"traf").child(b"trun").u32_at(12))
            .collect();
        assert_eq!(durations, [3003, 3003]);
    }

    #[test]
    fn audio_queue_is_bounded() {
        let a = AudioParams::aac_lc(16_000, 1).unwrap();
        let mut mux = Fmp4Muxer::new(&h264_params(), Some(&a));
        let mut out = Vec::new();
        mux.begin_segment(&mut out).unwrap();
        let init = out.len();
        for i in 0..MAX_QUEUED_AUDIO as u64 {
            mux.push_audio(&mut out, &[7; 5], i * 1024).unwrap();
        }
        // Full queue: an audio-only fragment went out.
        let top = walk(&out[init..], 0);
        assert_eq!(top.len(), 2);
        let traf = top[0].child(b"traf");
        assert_eq!(traf.child(b"tfhd").u32_at(4), 2);
        assert_eq!(traf.child(b"trun").u32_at(4), MAX_QUEUED_AUDIO as u32);
        mux.push_audio(&mut out, &[7; 5], 99 * 1024).unwrap();
        mux.end_segment(&mut out, 0).unwrap();
        let top = walk(&out[init..], 0);
        assert_eq!(top.len(), 4);
        assert_eq!(top[2].child(b"mfhd").u32_at(4), 2);
    }

    #[test]
    fn rejects_misuse_without_writing() {
        let mut mux = Fmp4Muxer::new(&h264_params(), None);
        let mut out = Vec::new();
        let kind = |r: Result<()>| r.unwrap_err().kind();
        assert_eq!(
            kind(mux.push_video(&mut out, &au(true, 1), 0, true)),
            ErrorKind::InvalidConfig
        );
        assert_eq!(kind(mux.end_segment(&mut out, 0)), ErrorKind::InvalidConfig);
        assert!(out.is_empty());
        mux.begin_segment(&mut out).unwrap();
        let n = out.len();
        assert_eq!(
            kind(mux.push_video(&mut out, &au(false, 1), 0, false)),
            ErrorKind::NeedKeyFrame
        );
        mux.push_video(&mut out, &au(true, 1), 5000, true).unwrap();
        assert_eq!(
            kind(mux.push_video(&mut out, &au(false, 1), 5000, false)),
            ErrorKind::Timestamp
        );
        assert_eq!(
            kind(mux.push_video(&mut out, &au(false, 1), 5000 + (1 << 32), false)),
            ErrorKind::Timestamp
        );
        assert_eq!(
            kind(mux.push_video(&mut out, &[0x41, 1], 9000, false)),
            ErrorKind::Malformed
        );
        // Parameter sets only: no slice.
        assert_eq!(
            kind(mux.push_video(&mut out, &[0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2], 9000, false)),
            ErrorKind::Malformed
        );
        assert_eq!(out.len(), n, "errors write nothing");
        // The held frame survived the errors.
        mux.end_segment(&mut out, 8600).unwrap();
        let top = walk(&out, 0);
        assert_eq!(top.len(), 4);
        assert_eq!(top[2].child(b"traf").child(b"trun").u32_at(12), 3600);

        let mut empty = h264_params();
        empty.decoder_config.clear();
        let mut bad = Fmp4Muxer::new(&empty, None);
        assert_eq!(
            bad.begin_segment(&mut out).unwrap_err().kind(),
            ErrorKind::InvalidConfig
        );
        let mut huge = h264_params();
        huge.width = 70_000;
        let mut bad = Fmp4Muxer::new(&huge, None);
        assert_eq!(
            bad.begin_segment(&mut out).unwrap_err().kind(),
            ErrorKind::InvalidConfig
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let a = AudioParams::aac_lc(44_100, 2).unwrap();
        let mut mux = Fmp4Muxer::new(&h264_params(), Some(&a));
        let mut out = Vec::new();
        let mut seed = 0x9E37_79B9u32;
        mux.begin_segment(&mut out).unwrap();
        for i in 0..2000u64 {
            let len = (seed % 500) as usize;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    let v = (seed >> 24) as u8;
                    if v < 160 { v % 3 } else { v }
                })
                .collect();
            let _ = mux.push_video(
                &mut out,
                &data,
                i * 3000 + u64::from(seed % 5000),
                seed & 1 == 0,
            );
            let _ = mux.push_audio(&mut out, &data, i * 1000);
            if i % 97 == 0 {
                let _ = mux.end_segment(&mut out, i * 3000);
                out.clear();
                mux.begin_segment(&mut out).unwrap();
            }
        }
        let _ = mux.end_segment(&mut out, u64::MAX);
        walk(&out, 0);
    }
}
