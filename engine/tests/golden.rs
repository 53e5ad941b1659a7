//! Golden digests pin the muxers' exact bytes for committed inputs, and the
//! segments' index fields. If a change alters the bytes on purpose, bump
//! `FORMAT_VERSION` in engine/src/lib.rs and update both together: stored
//! segments and caches (HTTP etags, dedup) key on that version. A new index
//! field (the bytes unchanged) only needs new digests.

mod common;

use common::*;
use ivcs_engine::FORMAT_VERSION;
use ivcs_engine::types::{AudioCodec, AudioFormat, Container};
use ivcs_media::VideoCodec;
use sha2::{Digest, Sha256};

/// (case, sha256 over every segment's bytes and index fields).
const GOLDEN: [(&str, &str); 4] = [
    (
        "h264_aac_ts",
        "90900f11f540fa3fca1b7c790dc6e8834a8e6571ca956eb4b05b3b554cc7d9c5",
    ),
    (
        "h264_aac_fmp4",
        "715a7b7554fe909ccb158bad6c568b1d05e816c4a1d9277d8605bf58fd2d453f",
    ),
    (
        "h265_g711a_ts",
        "436fc4a4723bd0161cc6bbc048586ba955ac836422416c74fe8312ad33c8e623",
    ),
    (
        "h265_pcm16_fmp4",
        "85688d0ae38a3562efc93b27b0b469cda0e51bac42541f9f71b409947216ac3b",
    ),
];

fn case(name: &str) -> String {
    let (codec, vfile) = if name.starts_with("h264") {
        (VideoCodec::H264, "small-h264-160x120-gop1s.h264")
    } else {
        (VideoCodec::H265, "small-h265-192x108-gop1s.h265")
    };
    let (fmt, afile): (AudioFormat, &str) = match name.split('_').nth(1) {
        Some("aac") => (
            audio_format(AudioCodec::Aac, 48000, 1),
            "small-aac-48k-mono.aac",
        ),
        Some("g711a") => (
            audio_format(AudioCodec::G711a, 8000, 1),
            "small-g711a-8k.alaw",
        ),
        _ => (
            audio_format(AudioCodec::Pcm16, 16000, 2),
            "small-pcm16-16k-stereo.pcm",
        ),
    };
    let container = if name.ends_with("ts") {
        Container::Ts
    } else {
        Container::Fmp4
    };
    let v = fixture(vfile);
    let a = fixture(afile);
    let frames = interleave(video_frames(&v, codec), audio_frames(&a, &fmt));
    let mut h = Sha256::new();
    for s in run(config(codec, Some(fmt), container), &frames) {
        h.update(&s.bytes);
        h.update(format!("{:?}", s.info).as_bytes());
    }
    hex::encode(h.finalize())
}

#[test]
fn muxer_output_matches_golden_digests() {
    assert_eq!(
        FORMAT_VERSION, 1,
        "FORMAT_VERSION changed: update the GOLDEN digests in this file alongside"
    );
    let got: Vec<(&str, String)> = GOLDEN.iter().map(|(n, _)| (*n, case(n))).collect();
    let want: Vec<(&str, String)> = GOLDEN.iter().map(|(n, d)| (*n, d.to_string())).collect();
    assert_eq!(
        got, want,
        "muxer bytes or index fields changed; if intended, update GOLDEN (and bump FORMAT_VERSION if the bytes changed)"
    );
}
