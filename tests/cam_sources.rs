//! The sources of `ivcs cam` end to end, against the real cloud binary.
//! The virtual camera loads libivcs.so and pushes through the C ABI as
//! firmware does, at 4× real time (`--speed`: PTS carry capture offsets,
//! so the recording runs ahead of the wall clock, consistently; see
//! tests/demo.rs), until `--duration` ends it. The recording is then
//! fetched back as an MP4 export (app API) and checked with ffmpeg:
//!
//! - **AAC**: two channels in fMP4 with `--audio aac`. Each channel has one
//!   span, H.264 and AAC-LC 16 kHz mono that decode without a warning; the
//!   video is as long as the camera ran less the segment still open at
//!   `iv_cs_exit` (within one GOP), the audio as long as the video; the
//!   first frame's burned-in time is a whole second and the tick is heard
//!   at every whole second after it, so audio and video timestamps agree
//!   (within 5 ms; a dropped or kept AAC priming frame is 64 ms).
//! - **`--input`**: an Annex-B H.264 file cut in the middle of a GOP,
//!   looped. The leading P frames are skipped; the recording is the file's
//!   frames from its first key frame on, in order, loop after loop
//!   (frame-exact by decoded-frame MD5), fps × duration of them, with
//!   timestamps one frame apart throughout; events get snapshots decoded
//!   from the file, showing the frame at their start.
//! - **Bad `--input`**: a missing file, a file that is not Annex-B, one
//!   without a key frame, one with B frames, a `--codec` that contradicts
//!   the file: each refused before anything starts, with a message naming
//!   the file and the problem, and no panic.
//!
//! Needs `make dist` (`dist/bin/ivcs`, and `dist/lib/libivcs.so` beside it,
//! which the camera loads); IVCS_BIN points at the binary.

use ivcs_cam::blockcode;
use ivcs_media::{VideoCodec, annexb};
use ivcs_tests::audio;
use ivcs_tests::cli::bin;
use ivcs_tests::cloud::{Cloud, admin};
use ivcs_tests::framemd5;
use ivcs_tests::paths::scratch_dir;
use ivcs_tests::tools::{self, p, probe_num};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How much faster than real time the camera pushes.
const SPEED: &str = "4";
/// Camera time of every run, ms: two whole 10 s segments and half a
/// second of the third, which `iv_cs_exit` drops (it is still open).
const CAMERA_MS: u64 = 20_500;
/// What is recorded of it: the two closed segments.
const RECORDED_MS: u64 = 20_000;
/// Frame rate of every run.
const FPS: u64 = 25;
/// How long a camera run may take on the wall clock: ~5 s of pushing,
/// start-up, the last acknowledgements and `iv_cs_exit`.
const CAMERA_LIMIT: Duration = Duration::from_secs(60);

/// A cloud with a device on a full-time plan, and its secret in a file.
struct Bed {
    cloud: Cloud,
    device: String,
    secret_file: PathBuf,
    token: String,
    dir: PathBuf,
}

fn bed(name: &str) -> Bed {
    tools::require_ffmpeg();
    let dir = scratch_dir(name);
    // The camera dates frames by the wall clock; so must the cloud.
    let cloud = Cloud::start_with_system_clock(&dir.join("data"), &[]);
    let device = format!("cam-{name}").replace('_', "-");
    let dev = cloud.add_device(&device);
    admin(
        &cloud.data,
        &["plan", "set", &device, "--type", "full-time", "--days", "7"],
    )
    .expect_success();
    let secret_file = dir.join("device.secret");
    std::fs::write(&secret_file, &dev.secret).expect("writing the secret");
    let token = cloud.token();
    Bed {
        cloud,
        device,
        secret_file,
        token,
        dir,
    }
}

/// Runs `ivcs ARGS` to its end; returns (success, stdout + stderr). Kills
/// it and panics after `limit`.
fn run_ivcs(args: &[String], limit: Duration) -> (bool, String) {
    let child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting ivcs");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(limit) {
        Ok(out) => out.expect("waiting for ivcs"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("ivcs {args:?} did not end within {limit:?}");
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

impl Bed {
    /// Runs the camera against this cloud with `args` until `--duration`
    /// ends it; returns its output. Panics unless it exits with 0 having
    /// had no push refused.
    fn camera(&self, args: &[&str]) -> String {
        let mut all: Vec<String> = [
            "cam",
            "--cloud",
            &self.cloud.base,
            "--device",
            &self.device,
            "--secret-file",
            &p(&self.secret_file),
            "--status",
            "lines",
            "--speed",
            SPEED,
            "--fps",
            &FPS.to_string(),
            "--duration",
            &(CAMERA_MS as f64 / 1000.0).to_string(),
        ]
        .map(String::from)
        .to_vec();
        all.extend(args.iter().map(|s| s.to_string()));
        let t0 = Instant::now();
        let (ok, out) = run_ivcs(&all, CAMERA_LIMIT);
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "--- ivcs cam ({:.1} s) ---\n{out}",
                t0.elapsed().as_secs_f64()
            );
        }
        assert!(ok, "ivcs cam failed:\n{out}");
        assert!(out.contains("ivcs cam: stopped"), "{out}");
        assert!(!out.contains("refused"), "a push was refused:\n{out}");
        out
    }

    fn get(&self, path: &str) -> Value {
        let a = self.cloud.app_get(path, Some(&self.token));
        assert_eq!(a.status, 200, "GET {path}: {}", a.text());
        a.json()
    }

    /// `GET /v1/devices/{device}/channels/{ch}/{listing}` for the two
    /// hours around now.
    fn within_an_hour(&self, ch: u32, listing: &str) -> Value {
        let now = ivcs_cam::state::utc_now_ms();
        self.get(&format!(
            "/v1/devices/{}/channels/{ch}/{listing}?start_ms={}&end_ms={}",
            self.device,
            now - 3_600_000,
            now + 3_600_000
        ))
    }

    /// The one recorded span of channel `ch`: (start, end) UTC ms.
    fn span(&self, ch: u32) -> (u64, u64) {
        let tl = self.within_an_hour(ch, "timeline");
        let spans = tl["spans"].as_array().expect("spans");
        assert_eq!(spans.len(), 1, "channel {ch}: {tl}");
        (
            spans[0]["start_ms"].as_u64().expect("start_ms"),
            spans[0]["end_ms"].as_u64().expect("end_ms"),
        )
    }

    /// The MP4 export of channel `ch` from `a` to `b`, saved to a file.
    fn export(&self, ch: u32, a: u64, b: u64) -> PathBuf {
        let r = self.cloud.app_get(
            &format!(
                "/v1/devices/{}/channels/{ch}/export.mp4?start_ms={a}&end_ms={b}",
                self.device
            ),
            Some(&self.token),
        );
        assert_eq!(r.status, 200, "export of channel {ch}: {}", r.text());
        let file = self.dir.join(format!("ch{ch}.mp4"));
        std::fs::write(&file, &r.body).expect("writing the export");
        file
    }

    /// Events of channel 0 within an hour of now.
    fn events(&self) -> Vec<Value> {
        let ev = self.within_an_hour(0, "events");
        ev["events"].as_array().cloned().unwrap_or_default()
    }
}

/// How late `ivcs cam` said channel `ch`'s first frame was pushed (ms; it
/// says so past 100 ms).
fn first_frame_late_ms(out: &str, ch: u32) -> u64 {
    let prefix = format!("ch{ch}: the first frame is ");
    out.lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .max()
        .unwrap_or(0)
}

/// The stream of `kind` (`video`/`audio`) in ffprobe's JSON.
fn stream<'a>(probe: &'a Value, kind: &str) -> &'a Value {
    tools::probe_stream(probe, kind).unwrap_or_else(|| panic!("no {kind} stream: {probe}"))
}

/// The presentation times (s) of the video packets of `file`, in order.
fn video_pts(file: &Path) -> Vec<f64> {
    let v = tools::ffprobe_json([
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-show_entries",
        "packet=pts_time",
        &p(file),
    ]);
    v["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .map(|x| probe_num(&x["pts_time"]))
        .collect()
}

/// Luma of every decoded picture of `input` (ffmpeg input arguments).
fn lumas(input: &[&str], w: usize, h: usize) -> Vec<Vec<u8>> {
    let mut args = vec!["-v", "error"];
    args.extend(input);
    args.extend(["-f", "rawvideo", "-pix_fmt", "gray", "-"]);
    let out = tools::ffmpeg(args).expect_success().stdout;
    assert_eq!(
        out.len() % (w * h),
        0,
        "{} bytes of {w}x{h} luma",
        out.len()
    );
    out.chunks(w * h).map(<[u8]>::to_vec).collect()
}

/// H.264 test media: `secs` of testsrc2 at 320x240, 25 fps, a key frame
/// every `gop` frames, raw Annex-B (the fixture rules of
/// scripts/gen-fixtures.sh; `extra` goes before the output).
fn gen_h264(file: &Path, secs: &str, gop: &str, extra: &[&str]) {
    let mut args = vec!["-y", "-v", "error", "-t", secs, "-f", "lavfi"];
    args.extend(["-i", "testsrc2=size=320x240:rate=25", "-c:v", "libx264"]);
    args.extend(["-preset", "veryfast", "-profile:v", "main", "-pix_fmt"]);
    args.extend(["yuv420p", "-g", gop, "-keyint_min", gop]);
    args.extend(["-sc_threshold", "0"]);
    args.extend(extra);
    let f = p(file);
    args.extend(["-f", "h264", &f]);
    tools::ffmpeg(args).expect_success();
}

#[test]
fn aac_on_two_fmp4_channels_records_video_and_audio_in_step() {
    const W: usize = 320;
    const H: usize = 180;
    const GOP_MS: u64 = 2000;
    let b = bed("cam_aac");
    let out = b.camera(&[
        "--channels",
        "2",
        "--container",
        "fmp4",
        "--audio",
        "aac",
        "--size",
        "320x180",
        "--gop",
        "50",
    ]);
    assert!(out.contains("AAC-LC 16 kHz"), "{out}");
    for ch in 0..2 {
        let (s, e) = b.span(ch);
        // The two closed segments, within a GOP of what the camera ran.
        assert_eq!(e - s, RECORDED_MS, "channel {ch}: span {s}..{e}");
        assert!(CAMERA_MS - (e - s) <= GOP_MS);
        let file = b.export(ch, s, e);
        let probe = tools::probe_clean(&p(&file));
        let v = stream(&probe, "video");
        let a = stream(&probe, "audio");
        assert_eq!(v["codec_name"], "h264", "channel {ch}");
        assert_eq!(
            (v["width"].as_u64(), v["height"].as_u64()),
            (Some(320), Some(180))
        );
        assert_eq!(a["codec_name"], "aac", "channel {ch}: {a}");
        assert_eq!(a["profile"], "LC", "channel {ch}");
        assert_eq!(a["sample_rate"], "16000", "channel {ch}");
        assert_eq!(a["channels"].as_u64(), Some(1), "channel {ch}");
        let frames = probe_num(&v["nb_read_frames"]) as u64;
        assert_eq!(
            frames,
            RECORDED_MS * FPS / 1000,
            "channel {ch}: video frames"
        );

        // The first frame was captured at a whole second (its block code).
        let first = &lumas(&["-i", &p(&file), "-frames:v", "1"], W, H)[0];
        let stamp = blockcode::decode(first, W, H).unwrap_or_else(|e| panic!("ch{ch}: {e}"));
        assert_eq!(
            stamp.utc_ms % 1000,
            0,
            "channel {ch}: first frame at {}",
            stamp.utc_ms
        );
        // The engine dates the span by its clock at the first push, which
        // a loaded machine delays: the camera says by how much.
        let late = first_frame_late_ms(&out, ch);
        assert!(
            stamp.utc_ms.abs_diff(s) <= 100 + late,
            "{} vs span {s} (first push {late} ms late)",
            stamp.utc_ms
        );

        // The audio starts with the video and lasts as long (to a pack,
        // 64 ms) ...
        let v0 = probe_num(&v["start_time"]);
        let a0 = probe_num(&a["start_time"]);
        let pcm = audio::decode_f32(&["-i".into(), p(&file)], &[]);
        let audio_s = pcm.len() as f64 / 16_000.0;
        let video_s = frames as f64 / FPS as f64;
        assert!(
            (a0 - v0).abs() < 0.001 && (a0 + audio_s - (v0 + video_s)).abs() <= 0.064,
            "channel {ch}: audio {a0}+{audio_s} s, video {v0}+{video_s} s"
        );
        // ... and its tick starts at every whole second of the video.
        let sr = 16_000.0;
        for sec in 1..(RECORDED_MS / 1000) {
            let at = v0 + sec as f64;
            let from = ((at - 0.5 - a0) * sr) as usize;
            let onset = pcm[from..]
                .iter()
                .position(|x| x.abs() > 0.1)
                .map(|i| a0 + (from + i) as f64 / sr)
                .unwrap_or_else(|| panic!("channel {ch}: no tick near {sec} s"));
            assert!(
                (onset - at).abs() <= 0.005,
                "channel {ch}: the tick of second {sec} starts {:+.1} ms off",
                (onset - at) * 1000.0
            );
            // The 100 ms of the tick are a 1 kHz tone.
            let tick = ((at - a0) * sr).round() as usize;
            let tone = audio::tone_fraction(
                &audio::channel(&pcm, 1, 0, tick, tick + 1600),
                16_000,
                1000.0,
            );
            assert!(
                tone > 0.9,
                "channel {ch}: second {sec}: 1 kHz is {tone} of the tick"
            );
        }
    }
}

#[test]
fn input_file_cut_mid_gop_loops_from_its_key_frame_with_rising_timestamps() {
    const W: usize = 320;
    const H: usize = 240;
    let b = bed("cam_input");
    // A 4 s file (100 frames, a key frame every 50), cut before frame 10:
    // 40 P frames, then one GOP. The camera loops that GOP, 50 frames: 10
    // loops in the 20 s recorded, a key frame every 2 s as the segmenter
    // needs for its 10 s cuts.
    let whole = b.dir.join("whole.h264");
    gen_h264(&whole, "4", "50", &["-bf", "0"]);
    let data = std::fs::read(&whole).expect("reading the file");
    let aus: Vec<&[u8]> = annexb::access_units(&data, VideoCodec::H264).collect();
    assert_eq!(aus.len(), 100);
    let cut = b.dir.join("cut.h264");
    std::fs::write(&cut, aus[10..].concat()).expect("writing the cut file");
    let source = lumas(&["-f", "h264", "-i", &p(&whole)], W, H);
    let hashes = framemd5::video_hashes(&["-f".into(), "h264".into(), "-i".into(), p(&whole)]);
    assert_eq!((source.len(), hashes.len()), (100, 100));
    let looped = 50..100;
    let loop_len = looped.len() as u64;

    let out = b.camera(&[
        "--input",
        &p(&cut),
        "--audio",
        "none",
        "--event-first",
        "3",
        "--event-every",
        "7",
        "--event-length",
        "2",
    ]);
    assert!(
        out.contains("H.264 320x240, 50 frames a loop, 40 before the first key frame skipped"),
        "{out}"
    );
    let (s, e) = b.span(0);
    assert_eq!(e - s, RECORDED_MS, "span {s}..{e}");
    // The first frame was captured at a whole second; the engine dated
    // the span by its clock when the frame was pushed, at that second
    // (or as late as the camera said).
    let late = first_frame_late_ms(&out, 0);
    let first = (s - late + 500) / 1000 * 1000;
    assert!(s - first <= 100 + late, "span starts at {s}");
    let file = b.export(0, s, e);
    let probe = tools::probe_clean(&p(&file));
    let v = stream(&probe, "video");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert_eq!(
        probe["streams"].as_array().map(Vec::len),
        Some(1),
        "{probe}"
    );

    // fps × duration frames, within a GOP (2 s) of the camera's time.
    let frames = RECORDED_MS * FPS / 1000;
    assert_eq!(probe_num(&v["nb_read_frames"]) as u64, frames);
    const { assert!((CAMERA_MS - RECORDED_MS) * FPS / 1000 <= 50) };
    // The file's frames from its key frame, loop after loop.
    let want: Vec<String> = (0..frames)
        .map(|i| hashes[looped.start + (i % loop_len) as usize].clone())
        .collect();
    let got = framemd5::video_hashes(&["-i".into(), p(&file)]);
    framemd5::compare("recording vs the looped file", &want, &got)
        .unwrap_or_else(|e| panic!("{e}"));
    // Timestamps one frame apart throughout, across every loop.
    let pts = video_pts(&file);
    assert_eq!(pts.len() as u64, frames);
    for (i, w) in pts.windows(2).enumerate() {
        assert!(
            (w[1] - w[0] - 0.04).abs() < 0.001,
            "frames {i} and {}: pts {} then {}",
            i + 1,
            w[0],
            w[1]
        );
    }

    // Events at 3, 10 and 17 s: each snapshot is the frame pushed at its
    // start (the closest of the loop's frames; JPEG is lossy). At 3 and
    // 17 s that is loop frame 25, decoded from the GOP's key frame on; at
    // 10 s a key frame.
    let events = b.events();
    assert_eq!(events.len(), 3, "{events:?}");
    for ev in &events {
        let start = ev["utc_start_ms"].as_u64().expect("utc_start_ms");
        let url = ev["thumbnail_url"]
            .as_str()
            .unwrap_or_else(|| panic!("no thumbnail: {ev}"));
        let jpeg = b.cloud.app_get(url, None);
        assert_eq!(jpeg.status, 200, "{url}");
        assert!(jpeg.body.starts_with(&[0xFF, 0xD8]), "not a JPEG");
        let pic = b.dir.join(format!("event-{start}.jpg"));
        std::fs::write(&pic, &jpeg.body).expect("writing the snapshot");
        let shown = &lumas(&["-i", &p(&pic)], W, H)[0];
        let frame = (start - first) * FPS / 1000;
        let expected = looped.start + (frame % loop_len) as usize;
        let distance = |k: usize| -> u64 {
            shown
                .iter()
                .zip(&source[k])
                .map(|(a, b)| u64::from(a.abs_diff(*b)))
                .sum()
        };
        let closest = looped.clone().min_by_key(|&k| distance(k)).expect("frames");
        assert_eq!(
            closest,
            expected,
            "event at {} s shows file frame {closest}, not {expected}",
            (start - first) / 1000
        );
    }
}

#[test]
fn bad_input_files_are_refused_before_the_camera_starts() {
    tools::require_ffmpeg();
    let dir = scratch_dir("cam_bad_input");
    let good = dir.join("good.h264");
    gen_h264(&good, "1", "25", &["-bf", "0"]);
    let bframes = dir.join("bframes.h264");
    gen_h264(&bframes, "1", "25", &["-bf", "2"]);
    let data = std::fs::read(&good).expect("reading the file");
    let aus: Vec<&[u8]> = annexb::access_units(&data, VideoCodec::H264).collect();
    // P frames only: no key frame, and no SPS to tell the codec by.
    let no_key = dir.join("no-key.h264");
    std::fs::write(&no_key, aus[1..].concat()).expect("writing");
    let text = dir.join("notes.txt");
    std::fs::write(&text, "not video\n").expect("writing");
    let missing = dir.join("missing.h264");

    let cases: [(&Path, &[&str], &str); 6] = [
        (&missing, &[], "missing.h264: No such file"),
        (&text, &[], "not an Annex-B H.264/H.265 stream"),
        (
            &no_key,
            &[],
            "cannot tell whether the file is H.264 or H.265",
        ),
        (
            &no_key,
            &["--codec", "h264"],
            "no key frame with parameter sets in 24 access unit(s)",
        ),
        (&bframes, &[], "is a B frame"),
        (
            &good,
            &["--codec", "h265"],
            "the file is H.264 but --codec h265 was given",
        ),
    ];
    for (file, extra, want) in cases {
        let mut args: Vec<String> = ["cam", "--input", &p(file), "--status", "off"]
            .map(String::from)
            .to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        let (ok, out) = run_ivcs(&args, Duration::from_secs(30));
        assert!(!ok, "{args:?} succeeded:\n{out}");
        assert!(out.contains(want), "{args:?}: expected {want:?} in:\n{out}");
        assert!(
            out.contains(&p(file)),
            "{args:?}: the message names no file:\n{out}"
        );
        assert!(!out.contains("panicked"), "{args:?}:\n{out}");
    }
}
