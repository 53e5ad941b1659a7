//! Golden digests pin the muxers' exact bytes for committed inputs. If a
//! change alters the output on purpose, bump `FORMAT_VERSION` in
//! engine/src/lib.rs and update both together: stored segments and caches
//! (HTTP etags, dedup) key on that version.

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
        "8c10b6bb89fb1253a9045436bc2e7a32a2fffb852c72154056c9b01928a9d4fe",
    ),
    (
        "h264_aac_fmp4",
        "a8063b72ba432c761717ea93bc84fa8709ea9f7f4aaa576f0d09916df80047b1",
    ),
    (
        "h265_g711a_ts",
        "14648e4bc1c1d9ff8ebd10137d1e0d42d29ddf8eefe09576926ab7672ce138f1",
    ),
    (
        "h265_pcm16_fmp4",
        "b6fbe57991fa847ca818184075ee2ed9cb91bcc67be05ec11b670a4108622045",
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
        "muxer bytes changed; if intended, bump FORMAT_VERSION and update GOLDEN"
    );
}
