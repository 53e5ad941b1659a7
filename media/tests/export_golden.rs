//! Golden digests pin the MP4 export writer's exact bytes for the committed
//! small fixtures. If a change alters the output on purpose, bump
//! `EXPORT_FORMAT_VERSION` in media/src/mp4_export.rs and update both
//! together: cached exports (HTTP etags) key on that version.

mod common;

use common::testdata;
use ivcs_media::mp4_export::{EXPORT_FORMAT_VERSION, Mp4ExportBuilder, video_sample_size};
use ivcs_media::{AudioParams, VideoCodec, VideoParams, adts, annexb, video};
use sha2::{Digest, Sha256};

/// (case, sha256 of the whole exported file).
const GOLDEN: [(&str, &str); 2] = [
    (
        "h264_aac",
        "02a9d298e6359e378665887a34a71765db471b1a9af49bc54ebe02452a942bb5",
    ),
    (
        "h265_video_only",
        "fd334f34b36d6751ac6fa2d8741f8dd68bd5c0a558b02a6f70ca1e2baea663a8",
    ),
];

/// The export of a fixed input: 25 fps video with frames 40..50 missing (a
/// gap), and AAC starting 10 ms after the first frame (an edit list).
fn export(case: &str) -> Vec<u8> {
    let (codec, vfile) = if case.starts_with("h264") {
        (VideoCodec::H264, "small-h264-160x120-gop1s.h264")
    } else {
        (VideoCodec::H265, "small-h265-192x108-gop1s.h265")
    };
    let v = testdata(vfile);
    let aus: Vec<&[u8]> = annexb::access_units(&v, codec)
        .enumerate()
        .filter(|(i, _)| !(40..50).contains(i))
        .map(|(_, au)| au)
        .collect();
    let params = VideoParams::from_annexb(codec, aus[0]).unwrap();
    let keys: Vec<bool> = aus
        .iter()
        .map(|au| video::analyze(codec, au, Some(&params)).unwrap().keyframe)
        .collect();
    let times: Vec<u64> = (0..75u64)
        .filter(|i| !(40..50).contains(i))
        .map(|i| i * 3600)
        .collect();
    let a = case
        .ends_with("aac")
        .then(|| testdata("small-aac-48k-mono.aac"));
    let frames: Vec<&[u8]> = a
        .as_deref()
        .map(|a| adts::frames(a).map(|f| f.unwrap().1).collect())
        .unwrap_or_default();
    let audio = a.as_ref().map(|_| AudioParams::aac_lc(48_000, 1).unwrap());
    let atime = |j: usize| 900 + j as u64 * 1920;

    let mut b = Mp4ExportBuilder::new(&params, audio.as_ref()).unwrap();
    for ((au, &t), &key) in aus.iter().zip(&times).zip(&keys) {
        b.add_video(t, t, video_sample_size(codec, au).unwrap(), key)
            .unwrap();
    }
    for (j, f) in frames.iter().enumerate() {
        b.add_audio(atime(j), adts::payload(f).unwrap().1.len() as u32)
            .unwrap();
    }
    let plan = b.finish(Some(75 * 3600)).unwrap();
    let mut file = plan.header().to_vec();
    let mut p = plan.payload();
    let mut j = 0;
    for (au, &t) in aus.iter().zip(&times) {
        while j < frames.len() && atime(j) <= t {
            p.push_audio_adts(frames[j], &mut file).unwrap();
            j += 1;
        }
        p.push_video_annexb(au, &mut file).unwrap();
    }
    for f in &frames[j..] {
        p.push_audio_adts(f, &mut file).unwrap();
    }
    p.finish().unwrap();
    assert_eq!(file.len() as u64, plan.total_size());
    file
}

#[test]
fn export_bytes_match_golden_digests() {
    assert_eq!(
        EXPORT_FORMAT_VERSION, 1,
        "EXPORT_FORMAT_VERSION changed: update the GOLDEN digests in this file alongside"
    );
    let got: Vec<(&str, String)> = GOLDEN
        .iter()
        .map(|(n, _)| {
            let file = export(n);
            // Kept for a look with ffprobe when the digest changes.
            let path = format!("{}/export-{n}.mp4", env!("CARGO_TARGET_TMPDIR"));
            std::fs::write(path, &file).unwrap();
            (*n, hex::encode(Sha256::digest(file)))
        })
        .collect();
    let want: Vec<(&str, String)> = GOLDEN.iter().map(|(n, d)| (*n, d.to_string())).collect();
    assert_eq!(
        got, want,
        "export bytes changed; if intended, bump EXPORT_FORMAT_VERSION and update GOLDEN"
    );
}
