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
        let mut nals = NalIter::new(au);
        let first = nals.next();
        let starts_with_aud =
            first.is_some_and(|n| nalscan::is_aud(codec, nalscan::nal_type(codec, n.bytes)));
        // Parameter sets may only precede the first slice, so stop there.
        let needs_params = keyframe
            && !NalIter::new(au)
                .map(|n| nalscan::nal_type(codec, n.bytes))
                .take_while(|&t| !nalscan::is_vcl(codec, t))
                .any(|t| nalscan::is_sps(codec, t));
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
            let split = first.map_or(0, |n| n.end);
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
