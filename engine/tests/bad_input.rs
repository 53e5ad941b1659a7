//! Bad input to the pipeline: each case gets its documented `IV_ERR_*` code,
//! nothing of the bad frame is muxed, and recording recovers at the next
//! valid IDR.

mod common;

use common::*;
use ivcs_engine::codes::*;
use ivcs_engine::pipeline::Pipeline;
use ivcs_engine::types::{AudioCodec, Container, Frame, FrameType, StreamKind};
use ivcs_media::VideoCodec;

const GOP: usize = 25;

fn h264() -> Vec<u8> {
    fixture("small-h264-160x120-gop1s.h264")
}

fn pipeline() -> Pipeline {
    Pipeline::new(config(VideoCodec::H264, None, Container::Ts)).unwrap()
}

fn code(p: &mut Pipeline, f: &Frame<'_>) -> i32 {
    p.push(f).err().map_or(IV_ERR_NONE, |e| e.code())
}

fn with_pts<'a>(f: &Frame<'a>, pts_ms: u64) -> Frame<'a> {
    Frame { pts_ms, ..*f }
}

fn with_data<'a>(f: &Frame<'_>, data: &'a [u8]) -> Frame<'a> {
    Frame {
        data,
        kind: f.kind,
        frame_type: f.frame_type,
        pts_ms: f.pts_ms,
        seq: f.seq,
    }
}

/// Pushes the rest of the stream from `from`: P frames before the next IDR
/// get -611, everything after is accepted. Returns the segments.
fn recovers_at_next_idr(mut p: Pipeline, frames: &[Frame<'_>], from: usize) -> Vec<Segment> {
    let next_idr = from.div_ceil(GOP) * GOP;
    let mut c = Collector::default();
    c.take(&mut p);
    for (i, f) in frames.iter().enumerate().skip(from) {
        let want = if i < next_idr {
            IV_ERR_CS_NEED_IDR_FRAME
        } else {
            IV_ERR_NONE
        };
        assert_eq!(code(&mut p, f), want, "frame {i}");
        c.take(&mut p);
    }
    p.finish().unwrap();
    c.take(&mut p);
    let first = c.done.first().expect("a segment after recovery");
    c.done.iter().for_each(|s| assert!(s.info.video_frames > 0));
    assert!(first.info.seq_start as usize <= next_idr);
    c.done
}

#[test]
fn p_frame_first_needs_idr() {
    let data = h264();
    let frames = video_frames(&data, VideoCodec::H264);
    let mut p = pipeline();
    assert_eq!(code(&mut p, &frames[1]), IV_ERR_CS_NEED_IDR_FRAME);
    recovers_at_next_idr(p, &frames, 2);
}

#[test]
fn idr_without_sps_needs_idr() {
    let data = h264();
    let frames = video_frames(&data, VideoCodec::H264);
    // Keep only the IDR slice NAL (type 5) of the first access unit.
    let idr_only: Vec<u8> = ivcs_media::annexb::nal_units(frames[0].data)
        .filter(|n| n[0] & 0x1F == 5)
        .flat_map(|n| [&[0, 0, 0, 1][..], n].concat())
        .collect();
    let mut p = pipeline();
    assert_eq!(
        code(&mut p, &with_data(&frames[0], &idr_only)),
        IV_ERR_CS_NEED_IDR_FRAME
    );
    recovers_at_next_idr(p, &frames, 1);
}

#[test]
fn random_bytes_are_refused_then_recovered() {
    let data = h264();
    let frames = video_frames(&data, VideoCodec::H264);
    let mut p = pipeline();
    for f in &frames[..5] {
        assert_eq!(code(&mut p, f), IV_ERR_NONE);
    }
    // Deterministic pseudo-random bytes (xorshift), with and without a start code.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let noise: Vec<u8> = (0..5000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    assert_eq!(
        code(&mut p, &with_data(&frames[5], &noise)),
        IV_ERR_CS_INIT_PRM_RANGE
    );
    let framed = [&[0, 0, 0, 1][..], &noise].concat();
    let r = code(&mut p, &with_data(&frames[5], &framed));
    assert!(
        r == IV_ERR_CS_INIT_PRM_RANGE || r == IV_ERR_CS_NEED_IDR_FRAME,
        "got {r}"
    );
    recovers_at_next_idr(p, &frames, 5);
}

#[test]
fn truncated_nal_units_are_refused() {
    let data = h264();
    let frames = video_frames(&data, VideoCodec::H264);
    let mut p = pipeline();
    // A start code with nothing after it, and an IDR whose SPS is cut short.
    assert_eq!(
        code(&mut p, &with_data(&frames[0], &[0, 0, 0, 1])),
        IV_ERR_CS_INIT_PRM_RANGE
    );
    let cut = &frames[0].data[..8];
    let r = code(&mut p, &with_data(&frames[0], cut));
    assert!(
        r == IV_ERR_CS_INIT_PRM_RANGE || r == IV_ERR_CS_NEED_IDR_FRAME,
        "got {r}"
    );
    recovers_at_next_idr(p, &frames, 1);
}

#[test]
fn b_frames_are_refused() {
    let data = fixture("small-h264-bframes.h264");
    let frames = video_frames(&data, VideoCodec::H264);
    let mut p = pipeline();
    let codes: Vec<i32> = frames.iter().map(|f| code(&mut p, f)).collect();
    assert_eq!(codes[0], IV_ERR_NONE, "the IDR itself is fine");
    assert!(
        codes.contains(&IV_ERR_CS_INIT_PRM_RANGE),
        "some B slice is refused: {codes:?}"
    );
}

#[test]
fn pts_going_backwards_is_refused_until_next_idr() {
    let data = h264();
    let frames = video_frames(&data, VideoCodec::H264);
    let mut p = pipeline();
    for f in &frames[..10] {
        assert_eq!(code(&mut p, f), IV_ERR_NONE);
    }
    assert_eq!(
        code(&mut p, &with_pts(&frames[10], 100)),
        IV_ERR_CS_INIT_PRM_RANGE
    );
    let segs = recovers_at_next_idr(p, &frames, 11);
    assert_eq!(segs[0].info.video_frames, 10);
}

#[test]
fn pts_jumping_by_microsecond_values_is_refused() {
    let data = h264();
    let frames = video_frames(&data, VideoCodec::H264);
    let mut p = pipeline();
    for f in &frames[..10] {
        assert_eq!(code(&mut p, f), IV_ERR_NONE);
    }
    // Firmware that sends µs: 400 ms becomes 400_000.
    assert_eq!(
        code(&mut p, &with_pts(&frames[10], 400_000)),
        IV_ERR_CS_INIT_PRM_RANGE
    );
    recovers_at_next_idr(p, &frames, 11);
}

#[test]
fn idr_after_a_pts_reset_starts_a_new_timeline() {
    let data = h264();
    let frames = video_frames(&data, VideoCodec::H264);
    let mut p = pipeline();
    let mut c = Collector::default();
    for f in &frames[..GOP] {
        p.push(f).unwrap();
    }
    // Firmware restarts its PTS at 0 at the next IDR: recording continues.
    for f in &frames[GOP..2 * GOP] {
        p.push(&with_pts(f, f.pts_ms - GOP as u64 * 40)).unwrap();
    }
    p.finish().unwrap();
    c.take(&mut p);
    assert_eq!(c.done.len(), 2);
    let (a, b) = (&c.done[0].info, &c.done[1].info);
    assert_eq!(
        a.utc_end_ms, b.utc_start_ms,
        "UTC continues across the reset"
    );
    assert_eq!(b.pts_start_ms, 0);
}

#[test]
fn empty_frames_are_refused() {
    let data = h264();
    let frames = video_frames(&data, VideoCodec::H264);
    let mut p = pipeline();
    assert_eq!(
        code(&mut p, &with_data(&frames[0], &[])),
        IV_ERR_CS_INIT_PRM_RANGE
    );
    assert_eq!(code(&mut p, &frames[0]), IV_ERR_NONE);
}

#[test]
fn frames_larger_than_the_budget_are_refused() {
    let data = h264();
    let frames = video_frames(&data, VideoCodec::H264);
    let mut cfg = config(VideoCodec::H264, None, Container::Fmp4);
    cfg.max_frame_bytes = (frames[0].data.len() - 1) as u32;
    let mut p = Pipeline::new(cfg).unwrap();
    assert_eq!(code(&mut p, &frames[0]), IV_ERR_CS_PRM_MALLOC_FAIL);
    assert_eq!(code(&mut p, &frames[1]), IV_ERR_CS_NEED_IDR_FRAME);
}

#[test]
fn audio_must_match_the_configuration() {
    let v = h264();
    let frames = video_frames(&v, VideoCodec::H264);
    // Video-only channel: audio is refused.
    let mut p = pipeline();
    let aac = fixture("small-aac-48k-mono.aac");
    let fmt48 = audio_format(AudioCodec::Aac, 48000, 1);
    let a = audio_frames(&aac, &fmt48);
    assert_eq!(code(&mut p, &a[0]), IV_ERR_CS_INIT_PRM_RANGE);
    // ADTS at 48 kHz on a channel configured for 16 kHz.
    let cfg = config(
        VideoCodec::H264,
        Some(audio_format(AudioCodec::Aac, 16000, 1)),
        Container::Ts,
    );
    let mut p = Pipeline::new(cfg).unwrap();
    assert_eq!(code(&mut p, &frames[0]), IV_ERR_NONE);
    assert_eq!(code(&mut p, &a[0]), IV_ERR_CS_INIT_PRM_RANGE);
    // PCM with half a sample.
    let cfg = config(
        VideoCodec::H264,
        Some(audio_format(AudioCodec::Pcm16, 16000, 2)),
        Container::Ts,
    );
    let mut p = Pipeline::new(cfg).unwrap();
    let odd = Frame {
        kind: StreamKind::Audio,
        frame_type: FrameType::P,
        pts_ms: 0,
        seq: 0,
        data: &[1, 2, 3],
    };
    assert_eq!(code(&mut p, &odd), IV_ERR_CS_INIT_PRM_RANGE);
}

#[test]
fn audio_before_the_first_idr_is_accepted_and_dropped() {
    let v = h264();
    let frames = video_frames(&v, VideoCodec::H264);
    let aac = fixture("small-aac-48k-mono.aac");
    let fmt = audio_format(AudioCodec::Aac, 48000, 1);
    let a = audio_frames(&aac, &fmt);
    let mut p = Pipeline::new(config(VideoCodec::H264, Some(fmt), Container::Fmp4)).unwrap();
    assert_eq!(code(&mut p, &a[0]), IV_ERR_NONE);
    assert!(p.take_output().is_empty());
    assert_eq!(code(&mut p, &frames[0]), IV_ERR_NONE);
}

#[test]
fn bad_configuration_is_refused() {
    let mut cfg = config(VideoCodec::H264, None, Container::Ts);
    cfg.segment_ms = 10;
    assert_eq!(
        Pipeline::new(cfg).err().unwrap().code(),
        IV_ERR_CS_INIT_PRM_RANGE
    );
    let cfg = config(
        VideoCodec::H264,
        Some(audio_format(AudioCodec::G711a, 12345, 1)),
        Container::Ts,
    );
    assert_eq!(
        Pipeline::new(cfg).err().unwrap().code(),
        IV_ERR_CS_INIT_PRM_RANGE
    );
    let cfg = config(
        VideoCodec::H264,
        Some(audio_format(AudioCodec::Pcm16, 16000, 3)),
        Container::Ts,
    );
    assert_eq!(
        Pipeline::new(cfg).err().unwrap().code(),
        IV_ERR_CS_INIT_PRM_RANGE
    );
}
