//! `frames_file`: writes the frames file (`ivcs_tests::frames_file`) that the
//! libivcs benchmark (`tests/c/bench_libivcs.c`, run by
//! scripts/bench-libivcs.sh) pushes: access units of an Annex-B video and
//! an optional ADTS AAC track, interleaved by PTS. `--pad-idr BYTES` grows
//! every IDR access unit to BYTES with a filler-data NAL unit (H.264 type
//! 12), so that I frames have a known size.

// A command-line tool reports on stdout.
#![allow(clippy::print_stdout)]

use clap::Parser;
use ivcs_tests::frames_file;
use std::path::PathBuf;

#[derive(Parser)]
struct Args {
    /// H.264 Annex-B input.
    #[arg(long)]
    video: PathBuf,
    /// Its frame rate.
    #[arg(long, default_value_t = 25)]
    fps: u32,
    /// ADTS AAC input.
    #[arg(long)]
    audio: Option<PathBuf>,
    /// Its sampling rate.
    #[arg(long, default_value_t = 48_000)]
    sample_rate: u32,
    /// How much to write, in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Pad every IDR access unit to this many bytes (0: no padding).
    #[arg(long, default_value_t = 0)]
    pad_idr: usize,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
}

fn main() {
    let a = Args::parse();
    let mut video = frames_file::video_units(&a.video, false);
    if a.pad_idr > 0 {
        for (idr, au) in video.iter_mut().filter(|(idr, _)| *idr) {
            let _ = idr;
            // 00 00 00 01 0C FF..FF 80: a filler-data NAL unit.
            let need = a.pad_idr.saturating_sub(au.len() + 6);
            if need > 0 {
                au.extend_from_slice(&[0, 0, 0, 1, 0x0C]);
                au.extend(std::iter::repeat_n(0xFF, need));
                au.push(0x80);
            }
        }
    }
    let audio = a.audio.as_ref().map(|p| frames_file::adts_frames(p));
    let frames = frames_file::interleave(
        &video,
        a.fps,
        audio.as_deref().map(|f| (f, a.sample_rate)),
        a.seconds * 1000,
    );
    frames_file::write(&a.out, &frames);
    let bytes: usize = frames
        .iter()
        .filter(|f| f.kind == 1)
        .map(|f| f.data.len())
        .sum();
    let idr_max = frames
        .iter()
        .filter(|f| f.kind == 1 && f.frame_type == 0)
        .map(|f| f.data.len())
        .max()
        .unwrap_or(0);
    println!(
        "frames_file: {} units, {} s, video {:.2} Mbit/s, largest I frame {} bytes",
        frames.len(),
        a.seconds,
        bytes as f64 * 8.0 / a.seconds as f64 / 1e6,
        idr_max
    );
}
