//! A stand-in for `ivcs mux` built from ffmpeg's own segmenters (see
//! `ivcs_tests::reference`), to exercise the media-matrix harness end to end
//! before the real CLI exists: `IVCS_BIN=target/debug/examples/fake_ivcs
//! cargo test -p ivcs-tests --test media_matrix`. It only knows the catalogued
//! fixtures, and its cut rule is ffmpeg's (absolute multiples of the target),
//! so scenarios whose GOP does not divide the target are expected to fail.

#![allow(clippy::print_stderr)]

use ivcs_tests::Container;
use ivcs_tests::fixtures::{audio_by_file, video_by_file};
use ivcs_tests::reference::{Reference, segment};
use std::path::{Path, PathBuf};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |k: &str| {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let fail = |m: String| -> ! {
        eprintln!("fake_ivcs: {m}");
        std::process::exit(2)
    };
    if args.first().map(String::as_str) != Some("mux") {
        fail("only `mux` is supported".into());
    }
    let file_name = |p: &str| {
        Path::new(p)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let video_path = get("--video").unwrap_or_else(|| fail("--video is required".into()));
    if !Path::new(&video_path).is_file() {
        fail(format!("cannot read {video_path}"));
    }
    let video = video_by_file(&file_name(&video_path))
        .unwrap_or_else(|| fail(format!("{video_path}: not a catalogued Annex-B fixture")));
    let audio = get("--audio")
        .map(|a| audio_by_file(&file_name(&a)).unwrap_or_else(|| fail(format!("{a}: unknown"))));
    let container = match get("--format").as_deref() {
        Some("ts") => Container::Ts,
        Some("fmp4") => Container::Fmp4,
        other => fail(format!("bad --format {other:?}")),
    };
    let secs = get("--segment-seconds").map_or(10, |s| {
        s.parse()
            .unwrap_or_else(|_| fail("bad --segment-seconds".into()))
    });
    let out = PathBuf::from(get("--out").unwrap_or_else(|| fail("--out is required".into())));
    std::fs::create_dir_all(&out).unwrap_or_else(|e| fail(format!("{}: {e}", out.display())));
    segment(&Reference::new(video, audio, container, secs), &out);
}
