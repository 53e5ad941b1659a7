//! Reading media files the way firmware would push them: an Annex-B video
//! file split into access units with PTS from a frame rate, and an audio file
//! split into packs (ADTS frames, or 1024 samples per channel of G.711/PCM),
//! interleaved by PTS.

use anyhow::{Context, Result, bail};
use ivcs_engine::types::{AudioCodec, FrameType, StreamKind};
use ivcs_media::{VideoCodec, adts, annexb};

/// One pack to push, borrowing the file's bytes.
#[derive(Clone, Copy, Debug)]
pub struct Pack<'a> {
    pub kind: StreamKind,
    pub frame_type: FrameType,
    pub pts_ms: u64,
    pub seq: u32,
    pub data: &'a [u8],
}

/// An audio file and how to read it.
pub struct AudioFile {
    pub data: Vec<u8>,
    pub codec: AudioCodec,
    pub sample_rate: u32,
    pub channels: u8,
}

/// Samples per channel in one G.711/PCM pack, as the spec requires.
pub const PCM_FRAME_SAMPLES: u64 = 1024;

/// Whether an access unit holds a random-access picture (H.264 IDR, H.265
/// IRAP); the engine checks again, this only sets the declared frame type.
fn is_keyframe(codec: VideoCodec, au: &[u8]) -> bool {
    annexb::nal_units(au).any(|nal| match (codec, nal.first()) {
        (VideoCodec::H264, Some(b)) => b & 0x1F == 5,
        (VideoCodec::H265, Some(b)) => (16..=23).contains(&((b >> 1) & 0x3F)),
        _ => false,
    })
}

/// Video packs at `fps`, PTS = i * 1000 / fps ms.
pub fn video_packs(data: &[u8], fps: u32) -> Result<(VideoCodec, Vec<Pack<'_>>)> {
    let codec = annexb::detect_codec(data)
        .context("the video file is not an H.264 or H.265 Annex-B stream")?;
    let packs = annexb::access_units(data, codec)
        .enumerate()
        .map(|(i, au)| Pack {
            kind: StreamKind::Video,
            frame_type: if is_keyframe(codec, au) {
                FrameType::I
            } else {
                FrameType::P
            },
            pts_ms: i as u64 * 1000 / u64::from(fps),
            seq: i as u32,
            data: au,
        })
        .collect::<Vec<_>>();
    if packs.is_empty() {
        bail!("the video file has no access units");
    }
    Ok((codec, packs))
}

/// Audio packs with PTS from their sample position.
pub fn audio_packs(a: &AudioFile) -> Result<Vec<Pack<'_>>> {
    let mk = |i: usize, samples: u64, data| Pack {
        kind: StreamKind::Audio,
        frame_type: FrameType::P,
        pts_ms: samples * 1000 / u64::from(a.sample_rate),
        seq: i as u32,
        data,
    };
    match a.codec {
        AudioCodec::Aac => {
            let mut out = Vec::new();
            for (i, f) in adts::frames(&a.data).enumerate() {
                let (h, frame) = f.with_context(|| format!("ADTS frame {i}"))?;
                if h.sample_rate != a.sample_rate || h.channels != a.channels {
                    bail!(
                        "ADTS frame {i} is {} Hz x{}, expected {} Hz x{} (see --sample-rate/--channels)",
                        h.sample_rate,
                        h.channels,
                        a.sample_rate,
                        a.channels
                    );
                }
                out.push(mk(i, i as u64 * 1024, frame));
            }
            Ok(out)
        }
        AudioCodec::Pcm16 | AudioCodec::G711a | AudioCodec::G711u => {
            let bytes_per_sample = if a.codec == AudioCodec::Pcm16 { 2 } else { 1 };
            let chunk = PCM_FRAME_SAMPLES as usize * usize::from(a.channels) * bytes_per_sample;
            Ok(a.data
                .chunks(chunk)
                .filter(|c| c.len() == chunk)
                .enumerate()
                .map(|(i, c)| mk(i, i as u64 * PCM_FRAME_SAMPLES, c))
                .collect())
        }
    }
}

/// Merges video and audio by PTS (video first at equal PTS, so an IDR opens
/// its segment before audio of the same instant); audio past the end of the
/// video is left out.
pub fn interleave<'a>(
    video: Vec<Pack<'a>>,
    audio: Vec<Pack<'a>>,
    video_end_ms: u64,
) -> Vec<Pack<'a>> {
    let mut all: Vec<Pack<'a>> = video;
    all.extend(audio.into_iter().filter(|p| p.pts_ms < video_end_ms));
    all.sort_by_key(|p| (p.pts_ms, p.kind == StreamKind::Audio, p.seq));
    all
}
