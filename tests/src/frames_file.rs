//! The frames file the C test programs and the libivcs benchmark push from:
//! real access units split in Rust (H.264/H.265 Annex-B by `ivcs-media`,
//! ADTS AAC by its frame headers), so the C side only reads records.
//!
//! Format: `IVCSFRM1`, then per access unit, in PTS order: u8 kind (0 audio,
//! 1 video), u8 frame type (0 I, 1 P), u16 0, u32 length, u64 PTS in ms (all
//! little-endian), the bytes. Video PTS is `n * 1000 / fps`; AAC PTS is
//! `n * 1024 * 1000 / sample_rate` (floored). Read by `load_frames` in
//! `tests/c/libivcs_flow.c` and `tests/c/bench_libivcs.c`.

use ivcs_media::{VideoCodec, annexb};
use std::path::Path;

/// One access unit as pushed.
pub struct Frame {
    /// 0 audio, 1 video.
    pub kind: u8,
    /// 0 I (IDR), 1 P; 0 for audio.
    pub frame_type: u8,
    /// PTS in ms from 0.
    pub pts_ms: u64,
    /// Access unit bytes (Annex-B or one ADTS frame).
    pub data: Vec<u8>,
}

/// The video access units of an Annex-B file with their IDR flags.
pub fn video_units(file: &Path, h265: bool) -> Vec<(bool, Vec<u8>)> {
    let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let codec = if h265 {
        VideoCodec::H265
    } else {
        VideoCodec::H264
    };
    annexb::access_units(&data, codec)
        .map(|au| {
            let idr = crate::annexb::nal_units(au).iter().any(|n| {
                let c = if h265 {
                    crate::VideoCodec::H265
                } else {
                    crate::VideoCodec::H264
                };
                crate::annexb::is_idr(c, crate::annexb::nal_type(c, n))
            });
            (idr, au.to_vec())
        })
        .collect()
}

/// The ADTS frames of an AAC file.
pub fn adts_frames(file: &Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut out = Vec::new();
    let mut i = 0;
    while i + 7 <= data.len() {
        assert!(
            data[i] == 0xFF && data[i + 1] & 0xF0 == 0xF0,
            "{}: no ADTS sync at {i}",
            file.display()
        );
        let len = (usize::from(data[i + 3] & 0x03) << 11)
            | (usize::from(data[i + 4]) << 3)
            | usize::from(data[i + 5] >> 5);
        assert!(
            len >= 7 && i + len <= data.len(),
            "{}: bad ADTS length",
            file.display()
        );
        out.push(data[i..i + len].to_vec());
        i += len;
    }
    out
}

/// Video (and optional AAC at `sample_rate`) interleaved by PTS, the first
/// `ms` milliseconds.
pub fn interleave(
    video: &[(bool, Vec<u8>)],
    fps: u32,
    audio: Option<(&[Vec<u8>], u32)>,
    ms: u64,
) -> Vec<Frame> {
    let mut out = Vec::new();
    for (n, (idr, au)) in video.iter().enumerate() {
        let pts = n as u64 * 1000 / u64::from(fps);
        if pts >= ms {
            break;
        }
        out.push(Frame {
            kind: 1,
            frame_type: if *idr { 0 } else { 1 },
            pts_ms: pts,
            data: au.clone(),
        });
    }
    if let Some((frames, rate)) = audio {
        for (n, f) in frames.iter().enumerate() {
            let pts = n as u64 * 1024 * 1000 / u64::from(rate);
            if pts >= ms {
                break;
            }
            out.push(Frame {
                kind: 0,
                frame_type: 0,
                pts_ms: pts,
                data: f.clone(),
            });
        }
    }
    // Stable: at equal PTS, video (pushed first) before audio.
    out.sort_by_key(|f| (f.pts_ms, 1 - f.kind));
    out
}

/// Writes `frames` to `path` in the format above.
pub fn write(path: &Path, frames: &[Frame]) {
    let mut b = Vec::with_capacity(frames.iter().map(|f| f.data.len() + 16).sum::<usize>() + 8);
    b.extend_from_slice(b"IVCSFRM1");
    for f in frames {
        b.push(f.kind);
        b.push(f.frame_type);
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
        b.extend_from_slice(&f.pts_ms.to_le_bytes());
        b.extend_from_slice(&f.data);
    }
    std::fs::write(path, b).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
