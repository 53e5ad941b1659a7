//! MPEG-2 transport stream segments (ISO/IEC 13818-1) for HLS and export.
//!
//! [`TsMuxer`] streams 188-byte packets into a caller-provided buffer as
//! frames arrive: PAT + PMT at the start of each segment and before every
//! key frame, one PES per video access unit (H.264 or H.265, with an access
//! unit delimiter and, on key frames, parameter sets inserted when missing)
//! and one PES per AAC access unit (ADTS-framed). Continuity counters and
//! the PCR carry on across segments, so concatenated segments form one
//! valid stream.
//!
//! Timing: the PCR runs [`PCR_LAG_90K`] ticks behind the video PTS, so the
//! caller must offset every PTS (video and audio) by at least that much;
//! smaller values still produce a valid stream but the PCR then wraps
//! around 2^33 at the start.
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
use crate::{AudioParams, Error, ErrorKind, Result, VideoCodec, VideoParams, adts};

/// Transport packet size.
const PACKET: usize = 188;
/// Payload room of a packet without adaptation field.
const ROOM: usize = PACKET - 4;
const PID_PAT: u16 = 0;
const PID_PMT: u16 = 0x1000;
const PID_VIDEO: u16 = 0x100;
const PID_AUDIO: u16 = 0x101;
const PROGRAM: u16 = 1;
/// PTS and PCR base are 33-bit counters.
const MASK33: u64 = (1 << 33) - 1;
/// A PCR at least this often (in 90 kHz ticks of video PTS): 40 ms.
const PCR_INTERVAL: u64 = 3600;

/// How far (90 kHz ticks, 63 ms) the PCR runs behind the video PTS.
///
/// A frame's bytes must reach the decoder before its PTS; the PCR is the
/// arrival clock, so it lags the PTS. Callers offset all PTS by at least
/// this value so the first PCR is not negative (it would wrap at 2^33).
pub const PCR_LAG_90K: u64 = 5670;

/// AUD with primary_pic_type 7 (any slice type): H.222.0 requires an AUD
/// at the start of each AVC access unit in a transport stream.
const AUD_H264: [u8; 6] = [0, 0, 0, 1, 0x09, 0xF0];
/// AUD (type 35, layer 0, tid 1) with pic_type 2 (any).
const AUD_H265: [u8; 7] = [0, 0, 0, 1, 0x46, 0x01, 0x50];

/// Streaming MPEG-TS muxer: one program, video PID 0x100 (also the PCR
/// PID), optional ADTS AAC on PID 0x101, PMT on PID 0x1000.
#[derive(Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TsMuxer {
    codec: VideoCodec,
    has_audio: bool,
    cc_pat: u8,
    cc_pmt: u8,
    cc_video: u8,
    cc_audio: u8,
    /// PTS (masked) of the video PES that carried the last PCR.
    last_pcr_pts: Option<u64>,
    /// PAT + PMT were just written and nothing followed them yet, so a key
    /// frame right after `begin_segment` does not repeat them.
    psi_fresh: bool,
    /// No key frame since the last `begin_segment`: a segment must start
    /// with one to be playable on its own.
    need_key: bool,
    /// PES header, inserted NALs and parameter sets for the current frame.
    #[cfg_attr(feature = "serde", serde(skip))]
    scratch: Vec<u8>,
}

impl TsMuxer {
    /// A muxer for `video` plus, if given, one AAC track. The PMT declares
    /// exactly these streams.
    pub fn new(video: VideoCodec, audio: Option<&AudioParams>) -> Self {
        TsMuxer {
            codec: video,
            has_audio: audio.is_some(),
            cc_pat: 0,
            cc_pmt: 0,
            cc_video: 0,
            cc_audio: 0,
            last_pcr_pts: None,
            psi_fresh: false,
            need_key: true,
            scratch: Vec::with_capacity(256),
        }
    }

    /// Starts a segment: PAT + PMT. Continuity counters continue across
    /// segments so concatenated segments play without CC errors. The first
    /// video frame of the segment must be a key frame.
    pub fn begin_segment(&mut self, out: &mut Vec<u8>) {
        self.write_psi(out);
        self.need_key = true;
    }

    /// One access unit (Annex-B, as pushed), PTS in 90 kHz (no B-frames, so
    /// DTS = PTS; PTS only is written).
    ///
    /// Errors: `NeedKeyFrame` for a non-key frame right after
    /// `begin_segment` or a key frame without parameter sets anywhere;
    /// `Malformed` if `au` does not start with a start code;
    /// `InvalidConfig` if `params` is for another codec.
    pub fn write_video(
        &mut self,
        out: &mut Vec<u8>,
        au: &[u8],
        pts90: u64,
        keyframe: bool,
        params: &VideoParams,
    ) -> Result<()> {
        let codec = self.codec;
        if params.codec != codec {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!("video params are {:?}, muxer is {codec:?}", params.codec),
            ));
        }
        if nalscan::leading_garbage(au) {
            return Err(Error::malformed(
                "video access unit does not start with an Annex-B start code",
            ));
        }
        if self.need_key && !keyframe {
            return Err(Error::new(
                ErrorKind::NeedKeyFrame,
                "a segment must start with a key frame",
            ));
        }
        // Only NAL headers are read here: scanning the slice data of every
        // frame for start codes would cost a pass over the whole frame.
        let starts_with_aud =
            nalscan::first_nal_type(codec, au).is_some_and(|t| nalscan::is_aud(codec, t));
        let needs_params = keyframe && !nalscan::has_sps_before_slice(codec, au);
        if needs_params && params.sps.is_empty() {
            return Err(Error::new(
                ErrorKind::NeedKeyFrame,
                "key frame has no SPS and none are known",
            ));
        }

        if keyframe && !self.psi_fresh {
            self.write_psi(out);
        }
        let pts = pts90 & MASK33;

        self.scratch.clear();
        self.scratch
            .extend_from_slice(&[0, 0, 1, 0xE0, 0, 0, 0x84, 0x80, 5]);
        self.scratch.extend_from_slice(&pts_bytes(pts));
        let header_len = self.scratch.len();
        // Split the access unit where inserted bytes go, so the frame itself
        // is copied only once, straight into `out`.
        let (au1, au2) = if starts_with_aud {
            // Parameter sets go right after the existing AUD.
            let split = NalIter::new(au).next().map_or(0, |n| n.end);
            if needs_params {
                self.push_params(params);
            }
            (
                au.get(..split).unwrap_or(&[]),
                au.get(split..).unwrap_or(&[]),
            )
        } else {
            match codec {
                VideoCodec::H264 => self.scratch.extend_from_slice(&AUD_H264),
                VideoCodec::H265 => self.scratch.extend_from_slice(&AUD_H265),
            }
            if needs_params {
                self.push_params(params);
            }
            (&[][..], au)
        };
        let (head, inserted) = self.scratch.split_at(header_len.min(self.scratch.len()));
        let parts: [&[u8]; 4] = if starts_with_aud {
            [head, au1, inserted, au2]
        } else {
            [head, inserted, au2, &[]]
        };

        let pcr_due = keyframe
            || self
                .last_pcr_pts
                .is_none_or(|last| pts.wrapping_sub(last) & MASK33 >= PCR_INTERVAL);
        let pcr = if pcr_due {
            self.last_pcr_pts = Some(pts);
            Some(pts.wrapping_sub(PCR_LAG_90K) & MASK33)
        } else {
            None
        };
        write_pes(out, PID_VIDEO, &mut self.cc_video, parts, pcr, keyframe);
        self.psi_fresh = false;
        if keyframe {
            self.need_key = false;
        }
        Ok(())
    }

    /// One raw AAC access unit (no ADTS header; one is added), PTS in
    /// 90 kHz. One PES per access unit, with an exact PES_packet_length.
    pub fn write_audio(
        &mut self,
        out: &mut Vec<u8>,
        raw_au: &[u8],
        params: &AudioParams,
        pts90: u64,
    ) -> Result<()> {
        if !self.has_audio {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "audio written to a muxer created without audio",
            ));
        }
        let adts = adts::write_header(params, raw_au.len())?;
        // 3 flag/length bytes + 5 PTS bytes follow the length field.
        let pes_len = u16::try_from(3 + 5 + adts.len() + raw_au.len()).map_err(|_| {
            Error::new(
                ErrorKind::TooLarge,
                format!("AAC frame of {} bytes does not fit one PES", raw_au.len()),
            )
        })?;
        let [len_hi, len_lo] = pes_len.to_be_bytes();
        self.scratch.clear();
        self.scratch
            .extend_from_slice(&[0, 0, 1, 0xC0, len_hi, len_lo, 0x84, 0x80, 5]);
        self.scratch.extend_from_slice(&pts_bytes(pts90 & MASK33));
        self.scratch.extend_from_slice(&adts);
        write_pes(
            out,
            PID_AUDIO,
            &mut self.cc_audio,
            [&self.scratch, raw_au, &[], &[]],
            None,
            false,
        );
        self.psi_fresh = false;
        Ok(())
    }

    /// VPS, SPS, PPS with 4-byte start codes, appended to the scratch.
    fn push_params(&mut self, params: &VideoParams) {
        for nal in params.vps.iter().chain(&params.sps).chain(&params.pps) {
            self.scratch.extend_from_slice(&[0, 0, 0, 1]);
            self.scratch.extend_from_slice(nal);
        }
    }

    /// PAT and PMT, one packet each.
    fn write_psi(&mut self, out: &mut Vec<u8>) {
        out.reserve(2 * PACKET);
        // PAT: one program.
        let start = begin_section(out, PID_PAT, &mut self.cc_pat);
        let [pmt_hi, pmt_lo] = PID_PMT.to_be_bytes();
        let [prog_hi, prog_lo] = PROGRAM.to_be_bytes();
        // section_length 13: 5 header bytes + 4 program + 4 CRC.
        out.extend_from_slice(&[
            0x00,
            0xB0,
            13,
            0x00,
            0x01, // transport_stream_id 1
            0xC1, // version 0, current_next 1
            0,
            0,
            prog_hi,
            prog_lo,
            0xE0 | pmt_hi,
            pmt_lo,
        ]);
        end_section(out, start);

        // PMT: video, then audio if any; PCR on the video PID.
        let start = begin_section(out, PID_PMT, &mut self.cc_pmt);
        let streams = if self.has_audio { 2 } else { 1 };
        // 9 bytes after section_length, 5 per stream, 4 CRC.
        let section_len = 9 + 5 * streams + 4;
        let [v_hi, v_lo] = PID_VIDEO.to_be_bytes();
        out.extend_from_slice(&[
            0x02,
            0xB0,
            section_len,
            prog_hi,
            prog_lo,
            0xC1,
            0,
            0,
            0xE0 | v_hi,
            v_lo,
            0xF0,
            0, // program_info_length 0
        ]);
        let video_type = match self.codec {
            VideoCodec::H264 => 0x1B,
            VideoCodec::H265 => 0x24,
        };
        out.extend_from_slice(&[video_type, 0xE0 | v_hi, v_lo, 0xF0, 0]);
        if self.has_audio {
            let [a_hi, a_lo] = PID_AUDIO.to_be_bytes();
            out.extend_from_slice(&[0x0F, 0xE0 | a_hi, a_lo, 0xF0, 0]);
        }
        end_section(out, start);
        self.psi_fresh = true;
    }
}

/// Writes the 4-byte header and pointer field of a PSI packet; returns the
/// packet start.
fn begin_section(out: &mut Vec<u8>, pid: u16, cc: &mut u8) -> usize {
    let start = out.len();
    let [hi, lo] = pid.to_be_bytes();
    out.extend_from_slice(&[0x47, 0x40 | (hi & 0x1F), lo, 0x10 | *cc, 0]);
    *cc = (*cc + 1) & 0x0F;
    start
}

/// Appends the CRC over the section written since `start` and pads the
/// packet with 0xFF (allowed after a PSI section).
fn end_section(out: &mut Vec<u8>, start: usize) {
    // Section begins after the 4-byte header and the pointer field.
    let crc = crc32_mpeg2(out.get(start + 5..).unwrap_or(&[]));
    out.extend_from_slice(&crc.to_be_bytes());
    out.resize(start + PACKET, 0xFF);
}

/// The 5-byte PTS field with the '0010' prefix (PTS only).
fn pts_bytes(pts: u64) -> [u8; 5] {
    let p = pts & MASK33;
    [
        0x20 | (((p >> 30) as u8 & 0x07) << 1) | 1,
        (p >> 22) as u8,
        (((p >> 15) as u8 & 0x7F) << 1) | 1,
        (p >> 7) as u8,
        ((p as u8 & 0x7F) << 1) | 1,
    ]
}

/// The 6-byte PCR field: 33-bit base in 90 kHz, extension 0.
fn pcr_bytes(base: u64) -> [u8; 6] {
    let b = base & MASK33;
    [
        (b >> 25) as u8,
        (b >> 17) as u8,
        (b >> 9) as u8,
        (b >> 1) as u8,
        ((b as u8 & 1) << 7) | 0x7E,
        0,
    ]
}

/// Packetizes one PES given as consecutive `parts` into `pid` packets.
/// The first packet carries the PCR and random_access_indicator if asked;
/// the last is filled out with adaptation-field stuffing.
fn write_pes(
    out: &mut Vec<u8>,
    pid: u16,
    cc: &mut u8,
    parts: [&[u8]; 4],
    pcr: Option<u64>,
    random_access: bool,
) {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    out.reserve((total / ROOM + 2) * PACKET);
    let [pid_hi, pid_lo] = pid.to_be_bytes();
    let mut src = Chain { parts, idx: 0 };
    let mut remaining = total;
    let mut first = true;
    while first || remaining > 0 {
        let flags_wanted = first && (pcr.is_some() || random_access);
        let pcr_here = if first { pcr } else { None };
        // Length byte + flags byte + optional PCR.
        let af_fixed = if flags_wanted {
            2 + if pcr_here.is_some() { 6 } else { 0 }
        } else {
            0
        };
        let payload = remaining.min(ROOM - af_fixed);
        let stuffing = ROOM - af_fixed - payload;
        let af_len = af_fixed + stuffing;
        let pusi = if first { 0x40 } else { 0 };
        let afc = if af_len > 0 { 0x30 } else { 0x10 };
        out.extend_from_slice(&[0x47, pusi | (pid_hi & 0x1F), pid_lo, afc | *cc]);
        *cc = (*cc + 1) & 0x0F;
        if af_len > 0 {
            // af_len <= 184, so the length byte fits.
            out.push((af_len - 1) as u8);
            if af_len > 1 {
                let mut flags = 0u8;
                if first && random_access {
                    flags |= 0x40;
                }
                if pcr_here.is_some() {
                    flags |= 0x10;
                }
                out.push(flags);
                if let Some(base) = pcr_here {
                    out.extend_from_slice(&pcr_bytes(base));
                }
                let pad = af_len - 2 - if pcr_here.is_some() { 6 } else { 0 };
                out.resize(out.len() + pad, 0xFF);
            }
        }
        src.copy_to(out, payload);
        remaining -= payload;
        first = false;
    }
}

/// Reads consecutive byte slices as one.
struct Chain<'a> {
    parts: [&'a [u8]; 4],
    idx: usize,
}

impl Chain<'_> {
    /// Appends the next `n` bytes (or fewer, if the parts run out).
    fn copy_to(&mut self, out: &mut Vec<u8>, mut n: usize) {
        while n > 0 {
            let Some(part) = self.parts.get_mut(self.idx) else {
                return;
            };
            let take = n.min(part.len());
            let (now, rest) = part.split_at(take);
            out.extend_from_slice(now);
            *part = rest;
            n -= take;
            if part.is_empty() {
                self.idx += 1;
            }
        }
    }
}

/// CRC-32/MPEG-2: polynomial 0x04C11DB7, init all ones, no reflection, no
/// final xor. Over a whole section including its CRC, the result is 0.
pub(crate) fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        let i = ((crc >> 24) as u8 ^ b) as usize;
        crc = (crc << 8) ^ CRC_TABLE.get(i).copied().unwrap_or(0);
    }
    crc
}

// Evaluated at compile time: an out-of-range index would fail the build,
// never panic at run time.
#[allow(clippy::indexing_slicing)]
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u32) << 24;
        let mut k = 0;
        while k < 8 {
            c = if c & 0x8000_0000 != 0 {
                (c << 1) ^ 0x04C1_1DB7
            } else {
                c << 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One parsed transport packet.
    #[derive(Debug)]
    struct Packet {
        pid: u16,
        pusi: bool,
        cc: u8,
        has_payload: bool,
        pcr: Option<u64>,
        rai: bool,
        payload: Vec<u8>,
    }

    fn parse(ts: &[u8]) -> Vec<Packet> {
        assert_eq!(ts.len() % PACKET, 0, "whole packets");
        ts.chunks(PACKET)
            .map(|p| {
                assert_eq!(p[0], 0x47, "sync byte");
                let pid = u16::from_be_bytes([p[1] & 0x1F, p[2]]);
                let afc = (p[3] >> 4) & 3;
                let mut pos = 4;
                let (mut pcr, mut rai) = (None, false);
                if afc & 2 != 0 {
                    let len = usize::from(p[4]);
                    assert!(len <= 183);
                    if len > 0 {
                        let flags = p[5];
                        rai = flags & 0x40 != 0;
                        if flags & 0x10 != 0 {
                            let b = &p[6..12];
                            let base = (u64::from(b[0]) << 25)
                                | (u64::from(b[1]) << 17)
                                | (u64::from(b[2]) << 9)
                                | (u64::from(b[3]) << 1)
                                | u64::from(b[4] >> 7);
                            let ext = (u64::from(b[4] & 1) << 8) | u64::from(b[5]);
                            pcr = Some(base * 300 + ext);
                        }
                    }
                    pos += 1 + len;
                }
                Packet {
                    pid,
                    pusi: p[1] & 0x40 != 0,
                    cc: p[3] & 0x0F,
                    has_payload: afc & 1 != 0,
                    pcr,
                    rai,
                    payload: p[pos..].to_vec(),
                }
            })
            .collect()
    }

    /// Reassembled PES packets of `pid`: (first packet index, bytes).
    fn pes_of(packets: &[Packet], pid: u16) -> Vec<(usize, Vec<u8>)> {
        let mut out: Vec<(usize, Vec<u8>)> = Vec::new();
        for (i, p) in packets.iter().enumerate().filter(|(_, p)| p.pid == pid) {
            if p.pusi {
                out.push((i, Vec::new()));
            }
            out.last_mut().unwrap().1.extend_from_slice(&p.payload);
        }
        out
    }

    fn read_pts(b: &[u8]) -> u64 {
        (u64::from(b[0] >> 1 & 7) << 30)
            | (u64::from(b[1]) << 22)
            | (u64::from(b[2] >> 1) << 15)
            | (u64::from(b[3]) << 7)
            | u64::from(b[4] >> 1)
    }

    /// Parameters with dummy parameter sets (shared with the demuxer tests).
    pub(crate) fn params(codec: VideoCodec) -> VideoParams {
        VideoParams {
            codec,
            width: 320,
            height: 240,
            codec_string: String::new(),
            vps: if codec == VideoCodec::H265 {
                vec![vec![0x40, 0x01, 0xAA]]
            } else {
                vec![]
            },
            sps: match codec {
                VideoCodec::H264 => vec![vec![0x67, 0x4D, 0x40, 0x0D]],
                VideoCodec::H265 => vec![vec![0x42, 0x01, 0xBB]],
            },
            pps: match codec {
                VideoCodec::H264 => vec![vec![0x68, 0xEB]],
                VideoCodec::H265 => vec![vec![0x44, 0x01, 0xCC]],
            },
            decoder_config: vec![1],
        }
    }

    /// An H.264 access unit: optional SPS/PPS, then one slice of `len` bytes.
    fn h264_au(key: bool, with_ps: bool, len: usize) -> Vec<u8> {
        let mut au = Vec::new();
        if with_ps {
            au.extend_from_slice(&[0, 0, 0, 1, 0x67, 0x4D, 0x40, 0x0D, 0, 0, 0, 1, 0x68, 0xEB]);
        }
        au.extend_from_slice(&[0, 0, 0, 1, if key { 0x65 } else { 0x41 }]);
        au.extend((0..len).map(|i| (i % 200 + 2) as u8));
        au
    }

    fn audio() -> AudioParams {
        AudioParams::aac_lc(48_000, 2).unwrap()
    }

    /// A short stream over two segments with audio.
    fn sample_stream() -> (Vec<u8>, Vec<usize>) {
        let p = params(VideoCodec::H264);
        let a = audio();
        let mut mux = TsMuxer::new(VideoCodec::H264, Some(&a));
        let mut out = Vec::new();
        let mut seg_starts = Vec::new();
        let mut pts = 90_000;
        for seg in 0..2 {
            seg_starts.push(out.len());
            mux.begin_segment(&mut out);
            for f in 0..30 {
                let key = f % 10 == 0;
                let au = h264_au(key, key && seg == 0 && f == 0, 100 + f * 37);
                mux.write_video(&mut out, &au, pts, key, &p).unwrap();
                mux.write_audio(&mut out, &[0x21; 300], &a, pts + 10)
                    .unwrap();
                pts += 3600;
            }
        }
        (out, seg_starts)
    }

    #[test]
    fn packets_are_188_bytes_with_sync() {
        let (ts, starts) = sample_stream();
        assert!(starts.iter().all(|s| s % PACKET == 0));
        let packets = parse(&ts);
        assert!(packets.iter().all(|p| p.has_payload));
    }

    #[test]
    fn psi_crc_verifies_and_lists_streams() {
        let (ts, _) = sample_stream();
        let packets = parse(&ts);
        let mut seen = 0;
        for p in packets
            .iter()
            .filter(|p| p.pid == PID_PAT || p.pid == PID_PMT)
        {
            assert!(p.pusi);
            assert_eq!(p.payload[0], 0, "pointer field");
            let section = &p.payload[1..];
            let len = usize::from(u16::from_be_bytes([section[1], section[2]]) & 0x0FFF);
            let whole = &section[..3 + len];
            // The CRC over a section including its CRC is zero.
            assert_eq!(crc32_mpeg2(whole), 0);
            assert!(section[3 + len..].iter().all(|&b| b == 0xFF));
            if p.pid == PID_PMT {
                assert_eq!(section[0], 2);
                assert_eq!(
                    &section[12..22],
                    &[0x1B, 0xE1, 0x00, 0xF0, 0, 0x0F, 0xE1, 0x01, 0xF0, 0]
                );
            } else {
                assert_eq!(&section[8..12], &[0, 1, 0xF0, 0x00]);
            }
            seen += 1;
        }
        // PAT+PMT per segment start, repeated before each later key frame.
        assert_eq!(seen, 2 * 6);
        // Known CRC of the standard test vector.
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
    }

    #[test]
    fn continuity_counters_increment_per_pid_across_segments() {
        let (ts, _) = sample_stream();
        let mut last: [Option<u8>; 0x2000] = [None; 0x2000];
        for p in parse(&ts) {
            let slot = &mut last[usize::from(p.pid)];
            if let Some(prev) = *slot {
                assert_eq!(p.cc, (prev + 1) & 0x0F, "pid {:#x}", p.pid);
            } else {
                assert_eq!(p.cc, 0);
            }
            *slot = Some(p.cc);
        }
        assert!(last[usize::from(PID_VIDEO)].is_some() && last[usize::from(PID_AUDIO)].is_some());
    }

    #[test]
    fn video_pes_carries_aud_parameter_sets_and_frame() {
        let p = params(VideoCodec::H264);
        let mut mux = TsMuxer::new(VideoCodec::H264, None);
        let mut out = Vec::new();
        mux.begin_segment(&mut out);
        // Key frame without parameter sets: AUD + SPS + PPS are inserted.
        let au = h264_au(true, false, 1000);
        mux.write_video(&mut out, &au, 12_345, true, &p).unwrap();
        // Non-key frame that already has an AUD: passed through as is.
        let mut au2 = vec![0, 0, 0, 1, 0x09, 0x30];
        au2.extend_from_slice(&h264_au(false, false, 10));
        mux.write_video(&mut out, &au2, 12_345 + 3600, false, &p)
            .unwrap();
        // Key frame with an AUD but no SPS: sets go after the AUD.
        let mut au3 = vec![0, 0, 0, 1, 0x09, 0x10];
        au3.extend_from_slice(&h264_au(true, false, 10));
        mux.write_video(&mut out, &au3, 12_345 + 7200, true, &p)
            .unwrap();

        let packets = parse(&out);
        let pes = pes_of(&packets, PID_VIDEO);
        assert_eq!(pes.len(), 3);
        let ps = [0, 0, 0, 1, 0x67, 0x4D, 0x40, 0x0D, 0, 0, 0, 1, 0x68, 0xEB];
        for (k, (first, bytes)) in pes.iter().enumerate() {
            assert_eq!(&bytes[..9], &[0, 0, 1, 0xE0, 0, 0, 0x84, 0x80, 5]);
            assert_eq!(read_pts(&bytes[9..14]), 12_345 + 3600 * k as u64);
            let es = &bytes[14..];
            let mut want = Vec::new();
            match k {
                0 => {
                    want.extend_from_slice(&AUD_H264);
                    want.extend_from_slice(&ps);
                    want.extend_from_slice(&au);
                }
                1 => want.extend_from_slice(&au2),
                _ => {
                    want.extend_from_slice(&au3[..6]);
                    want.extend_from_slice(&ps);
                    want.extend_from_slice(&au3[6..]);
                }
            }
            assert_eq!(es, &want[..], "PES {k}");
            // PCR on the first packet (key frame, or 40 ms since the last).
            let pkt = &packets[*first];
            let pcr = pkt.pcr.expect("PCR");
            assert_eq!(pcr, (12_345 + 3600 * k as u64 - PCR_LAG_90K) * 300);
            assert_eq!(pkt.rai, k != 1);
        }
    }

    #[test]
    fn h265_aud_and_parameter_sets_inserted() {
        let p = params(VideoCodec::H265);
        let mut mux = TsMuxer::new(VideoCodec::H265, None);
        let mut out = Vec::new();
        mux.begin_segment(&mut out);
        let au = [0, 0, 1, 0x26, 0x01, 0xAF, 0x11];
        mux.write_video(&mut out, &au, 9000, true, &p).unwrap();
        let pes = pes_of(&parse(&out), PID_VIDEO);
        let mut want = AUD_H265.to_vec();
        for nal in [
            &[0x40, 0x01, 0xAA],
            &[0x42, 0x01, 0xBB],
            &[0x44, 0x01, 0xCC],
        ] {
            want.extend_from_slice(&[0, 0, 0, 1]);
            want.extend_from_slice(nal);
        }
        want.extend_from_slice(&au);
        assert_eq!(&pes[0].1[14..], &want[..]);
    }

    #[test]
    fn pcr_at_least_every_40ms_and_not_more_often_than_needed() {
        let p = params(VideoCodec::H264);
        let mut mux = TsMuxer::new(VideoCodec::H264, None);
        let mut out = Vec::new();
        mux.begin_segment(&mut out);
        // 50 fps: 20 ms frames, so a PCR on every other frame.
        for f in 0..10u64 {
            let key = f == 0;
            let au = h264_au(key, key, 50);
            mux.write_video(&mut out, &au, 90_000 + f * 1800, key, &p)
                .unwrap();
        }
        let packets = parse(&out);
        let with_pcr: Vec<bool> = pes_of(&packets, PID_VIDEO)
            .iter()
            .map(|(i, _)| packets[*i].pcr.is_some())
            .collect();
        assert_eq!(
            with_pcr,
            [
                true, false, true, false, true, false, true, false, true, false
            ]
        );
    }

    #[test]
    fn audio_pes_has_exact_length_and_adts() {
        let a = audio();
        let mut mux = TsMuxer::new(VideoCodec::H264, Some(&a));
        let mut out = Vec::new();
        mux.begin_segment(&mut out);
        for len in [1usize, 160, 169, 170, 171, 184, 400, 1000] {
            out.clear();
            let raw: Vec<u8> = (0..len).map(|i| i as u8).collect();
            mux.write_audio(&mut out, &raw, &a, 777).unwrap();
            let pes = pes_of(&parse(&out), PID_AUDIO);
            assert_eq!(pes.len(), 1);
            let b = &pes[0].1;
            let declared = usize::from(u16::from_be_bytes([b[4], b[5]]));
            assert_eq!(declared + 6, b.len(), "len {len}");
            assert_eq!(read_pts(&b[9..14]), 777);
            assert_eq!(&b[14..21], &adts::write_header(&a, len).unwrap());
            assert_eq!(&b[21..], &raw[..]);
        }
    }

    #[test]
    fn pts_and_pcr_wrap_at_33_bits() {
        let p = params(VideoCodec::H264);
        let a = audio();
        let mut mux = TsMuxer::new(VideoCodec::H264, Some(&a));
        let mut out = Vec::new();
        mux.begin_segment(&mut out);
        let near = (1u64 << 33) - 1800;
        mux.write_video(&mut out, &h264_au(true, true, 10), near, true, &p)
            .unwrap();
        mux.write_video(&mut out, &h264_au(false, false, 10), near + 3600, false, &p)
            .unwrap();
        mux.write_audio(&mut out, &[1, 2, 3], &a, (1u64 << 33) + 5)
            .unwrap();
        // Below the lag the PCR wraps backwards too.
        mux.write_video(&mut out, &h264_au(true, true, 10), 100, true, &p)
            .unwrap();
        let packets = parse(&out);
        let video = pes_of(&packets, PID_VIDEO);
        assert_eq!(read_pts(&video[0].1[9..14]), near);
        assert_eq!(read_pts(&video[1].1[9..14]), 1800);
        assert_eq!(read_pts(&pes_of(&packets, PID_AUDIO)[0].1[9..14]), 5);
        // The PCR of frame 1 wraps too: 40 ms after frame 0's.
        assert_eq!(
            packets[video[1].0].pcr,
            Some(((1u64 << 33) + 1800 - PCR_LAG_90K) * 300)
        );
        assert_eq!(
            packets[video[2].0].pcr,
            Some(((1u64 << 33) + 100 - PCR_LAG_90K) * 300)
        );
    }

    #[test]
    fn rejects_bad_input_without_writing() {
        let p = params(VideoCodec::H264);
        let mut mux = TsMuxer::new(VideoCodec::H264, None);
        let mut out = Vec::new();
        mux.begin_segment(&mut out);
        let n = out.len();
        let err = |r: Result<()>| r.unwrap_err().kind();
        assert_eq!(
            err(mux.write_video(&mut out, &h264_au(false, false, 9), 9000, false, &p)),
            ErrorKind::NeedKeyFrame
        );
        assert_eq!(
            err(mux.write_video(&mut out, &[0x65, 1, 2], 9000, true, &p)),
            ErrorKind::Malformed
        );
        assert_eq!(
            err(mux.write_video(&mut out, &[], 9000, true, &p)),
            ErrorKind::Malformed
        );
        assert_eq!(
            err(mux.write_video(
                &mut out,
                &h264_au(true, true, 9),
                9000,
                true,
                &params(VideoCodec::H265)
            )),
            ErrorKind::InvalidConfig
        );
        let mut no_ps = p.clone();
        no_ps.sps.clear();
        assert_eq!(
            err(mux.write_video(&mut out, &h264_au(true, false, 9), 9000, true, &no_ps)),
            ErrorKind::NeedKeyFrame
        );
        assert_eq!(
            err(mux.write_audio(&mut out, &[1], &audio(), 9000)),
            ErrorKind::InvalidConfig
        );
        assert_eq!(out.len(), n);
        let a = audio();
        let mut mux = TsMuxer::new(VideoCodec::H264, Some(&a));
        assert_eq!(
            err(mux.write_audio(&mut out, &vec![0; 9000], &a, 9000)),
            ErrorKind::TooLarge
        );
        assert_eq!(out.len(), n);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let p = params(VideoCodec::H265);
        let a = audio();
        let mut mux = TsMuxer::new(VideoCodec::H265, Some(&a));
        let mut out = Vec::new();
        let mut seed = 0x1234_5678u32;
        for i in 0..2000u64 {
            let len = (seed % 700) as usize;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    // Mostly small values, so start codes are frequent.
                    let v = (seed >> 24) as u8;
                    if v < 160 { v % 3 } else { v }
                })
                .collect();
            let _ = mux.write_video(&mut out, &data, i * 1000, seed & 1 == 0, &p);
            let _ = mux.write_audio(&mut out, &data, &a, i * 1000);
            if i % 100 == 0 {
                mux.begin_segment(&mut out);
            }
        }
        parse(&out);
    }
}
