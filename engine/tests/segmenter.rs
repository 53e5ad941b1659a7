//! The segmenter: cuts at the first IDR at or after the target, maps PTS to
//! UTC, handles variable frame rates, and streams bytes as frames arrive.

mod common;

use common::*;
use ivcs_engine::pipeline::Pipeline;
use ivcs_engine::types::{AudioCodec, Container, Frame};
use ivcs_media::VideoCodec;

fn h264_frames(data: &[u8]) -> Vec<Frame<'_>> {
    video_frames(data, VideoCodec::H264)
}

#[test]
fn segments_cut_at_first_idr_after_target() {
    let v = fixture("small-h264-160x120-gop1s.h264");
    for container in [Container::Ts, Container::Fmp4] {
        let mut cfg = config(VideoCodec::H264, None, container);
        cfg.segment_ms = 1500; // GOP is 1 s: cuts land at 2 s.
        let segs = run(cfg, &h264_frames(&v));
        let spans: Vec<(u64, u64)> = segs
            .iter()
            .map(|s| (s.info.pts_start_ms, s.info.pts_end_ms))
            .collect();
        assert_eq!(spans, [(0, 2000), (2000, 3000)], "{container:?}");
        for s in &segs[..segs.len() - 1] {
            let d = s.info.pts_end_ms - s.info.pts_start_ms;
            assert!(
                (1500..=2500).contains(&d),
                "duration {d} within [target, target + GOP]"
            );
        }
    }
}

#[test]
fn utc_follows_pts_from_the_first_frame() {
    let v = fixture("small-h264-160x120-gop1s.h264");
    let frames: Vec<Frame<'_>> = h264_frames(&v)
        .into_iter()
        .map(|f| Frame {
            pts_ms: f.pts_ms + 5_000_000,
            ..f
        })
        .collect();
    let segs = run(config(VideoCodec::H264, None, Container::Ts), &frames);
    assert_eq!(segs.len(), 3);
    for (i, s) in segs.iter().enumerate() {
        let i = i as u64;
        assert_eq!(s.info.utc_start_ms, 1_700_000_000_000 + i * 1000);
        assert_eq!(s.info.utc_end_ms, 1_700_000_000_000 + (i + 1) * 1000);
        assert_eq!(s.info.pts_start_ms, 5_000_000 + i * 1000);
        assert_eq!(
            (s.info.seq_start, s.info.seq_end),
            (i as u32 * 25, i as u32 * 25 + 24)
        );
        assert_eq!(s.info.video_frames, 25);
    }
}

#[test]
fn variable_frame_rate_keeps_pts_spacing() {
    let v = fixture("small-h264-160x120-gop1s.h264");
    // Alternate 30 and 50 ms between frames, with u32Framerate = 0.
    let frames: Vec<Frame<'_>> = h264_frames(&v)
        .into_iter()
        .enumerate()
        .map(|(i, f)| Frame {
            pts_ms: (i as u64 / 2) * 80 + (i as u64 % 2) * 30,
            ..f
        })
        .collect();
    let mut cfg = config(VideoCodec::H264, None, Container::Fmp4);
    cfg.av.framerate = 0;
    let segs = run(cfg, &frames);
    // IDRs every 25 frames: frame 25 is at 12*80+30 = 990 ms, before the
    // 1000 ms target, so the cut is at frame 50 = 2000 ms.
    assert_eq!(segs[0].info.pts_end_ms, 2000);
    assert_eq!(segs[0].info.video_frames, 50);
    let last = frames.last().unwrap().pts_ms;
    // The last frame lasts as long as the one before it (30 ms after a 50 ms gap pattern).
    let end = segs.last().unwrap().info.pts_end_ms;
    assert!(
        end > last && end <= last + 50,
        "end {end} after last pts {last}"
    );
}

#[test]
fn bytes_leave_as_frames_arrive() {
    let v = fixture("small-h264-160x120-gop1s.h264");
    let frames = h264_frames(&v);
    let biggest = frames.iter().map(|f| f.data.len()).max().unwrap();
    for container in [Container::Ts, Container::Fmp4] {
        let mut p = Pipeline::new(config(VideoCodec::H264, None, container)).unwrap();
        let mut pending = 0usize;
        for f in &frames {
            p.push(f).unwrap();
            let out: usize = p
                .take_output()
                .into_iter()
                .map(|o| match o {
                    ivcs_engine::pipeline::Output::Data(d) => d.len(),
                    _ => 0,
                })
                .sum();
            pending = pending + f.data.len() - out.min(pending + f.data.len());
            // At most one frame (fMP4 holds one to learn its duration) is inside.
            assert!(pending <= biggest, "{container:?}: {pending} bytes held");
        }
    }
}

#[test]
fn audio_duration_matches_input_within_one_frame() {
    let v = fixture("small-h264-160x120-gop1s.h264");
    for (codec, file, rate, ch) in [
        (AudioCodec::Aac, "small-aac-48k-mono.aac", 48000u32, 1u8),
        (AudioCodec::G711a, "small-g711a-8k.alaw", 8000, 1),
        (AudioCodec::Pcm16, "small-pcm16-16k-stereo.pcm", 16000, 2),
    ] {
        let a = fixture(file);
        let fmt = audio_format(codec, rate, ch);
        let input = audio_frames(&a, &fmt);
        let frames = interleave(h264_frames(&v), input.clone());
        let fed = frames
            .iter()
            .filter(|f| f.kind == ivcs_engine::types::StreamKind::Audio)
            .count();
        let segs = run(config(VideoCodec::H264, Some(fmt), Container::Ts), &frames);
        let muxed: u32 = segs.iter().map(|s| s.info.audio_frames).sum();
        // One AAC frame per 1024 input samples; the encoder may add one tail frame.
        assert!(
            (muxed as i64 - fed as i64).abs() <= 1,
            "{codec:?}: fed {fed} packs, muxed {muxed} AAC frames"
        );
    }
}

/// Only the first segment of a pipeline is marked a discontinuity: later
/// cuts, and a PTS reset inside the run (media time goes on), continue the
/// timestamps and parameters.
#[test]
fn only_the_first_segment_of_a_run_is_a_discontinuity() {
    let v = fixture("small-h264-160x120-gop1s.h264");
    let mut frames = h264_frames(&v);
    frames.extend(h264_frames(&v).into_iter().map(|f| Frame {
        seq: f.seq + 1000,
        ..f
    }));
    let segs = run(config(VideoCodec::H264, None, Container::Ts), &frames);
    assert!(segs.len() > 3, "{}", segs.len());
    let marked: Vec<bool> = segs.iter().map(|s| s.info.discontinuity).collect();
    assert!(marked[0], "{marked:?}");
    assert!(marked[1..].iter().all(|d| !d), "{marked:?}");
}
