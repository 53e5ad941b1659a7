//! The demo end to end (`make demo`'s pipeline): `scripts/demo.sh` starts
//! the real cloud and `ivcs cam` — the virtual camera linking libivcs.so
//! through the C ABI — in a scratch directory on a free port. The camera
//! runs 48 s of camera time at 4× real time (`--speed`: its first frame is
//! pushed at its capture time and PTS carry the capture offsets, so the
//! engine dates every frame with the time burned into it; the recording
//! just runs ahead of the wall clock). Then:
//!
//! - the cloud's timeline has one span of the camera's frames;
//! - headless Chromium (`tests/browser/demo.test.mjs`) opens the viewer,
//!   picks the day, sees the event markers and their thumbnails, seeks to a
//!   known UTC second and saves the decoded frame; the block code read from
//!   that frame is the requested second ±1 s; playback advances with
//!   decoded frames and no errors;
//! - the event thumbnail's block code is the event's start;
//! - an MP4 export of a range decodes cleanly in ffmpeg and its first and
//!   last frames carry the range's start and end (± one GOP), and the
//!   first one the time the cloud says (`x-ivcs-start-ms`);
//! - Ctrl-C stops camera and cloud cleanly; a second run reuses the data,
//!   the device, its secret and the viewer token.
//!
//! Artifacts (screenshot, frame, export) go to target/test-artifacts/.

use ivcs_cam::blockcode::{self, Stamp};
use ivcs_tests::browser::{browser_dir, build_viewer, chromium, run};
use ivcs_tests::cli::bin;
use ivcs_tests::cloud::agent;
use ivcs_tests::paths::{scratch_dir, target_dir, workspace_root};
use ivcs_tests::tools;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

const DEVICE: &str = "demo-cam";
/// Camera time recorded, seconds, and how much faster than real time.
const DURATION_S: u64 = 48;
const SPEED: u32 = 4;
/// Events: the first 5 s after the first frame, then every 15 s, 4 s long.
const EVENT_FIRST_S: u64 = 5;
const EVENT_EVERY_S: u64 = 15;
/// Key frame interval of the camera, ms (50 frames at 25 fps).
const GOP_MS: u64 = 2000;
const W: usize = 640;
const H: usize = 360;

/// `scripts/demo.sh` running, with its output lines.
struct Demo {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Demo {
    fn start(data: &Path, viewer: &Path, cam_args: &str) -> Demo {
        let mut cmd = Command::new(workspace_root().join("scripts/demo.sh"));
        cmd.env("IVCS_BIN", bin())
            .env("DEMO_DATA", data)
            .env("DEMO_LISTEN", "127.0.0.1:0")
            .env("DEMO_CAM_ARGS", cam_args)
            .env("IVCS_CLOUD_VIEWER_DIR", viewer)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Ctrl-C must reach the script's trap. A shell cannot trap a signal
        // that was ignored when it started, and a test run from a
        // background job (a CI wrapper, `make test &`) inherits SIGINT
        // ignored: the script gets it at its default, as from a terminal.
        // SAFETY: only async-signal-safe signal(2) between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("starting scripts/demo.sh");
        let (tx, rx) = std::sync::mpsc::channel();
        for out in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Demo {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits (up to `limit`) for a line containing `what`; returns it.
    fn wait_line(&mut self, what: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    #[allow(clippy::print_stderr)]
                    {
                        eprintln!("  | {l}");
                    }
                    self.seen.push(l.clone());
                    if l.contains(what) {
                        return l;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => panic!(
                    "no line with {what:?} within {limit:?}; output so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Ctrl-C (SIGINT to the script), then waits for a clean exit.
    fn interrupt(mut self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .is_ok_and(|s| s.success())
        );
        self.wait_line("demo: stopped", Duration::from_secs(30));
        let status = self.child.wait().expect("waiting for demo.sh");
        assert!(status.success(), "demo.sh after Ctrl-C: {status}");
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        // A failed test must not leave the camera and cloud running: the
        // script stops both on TERM.
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let _ = self.child.wait();
        }
    }
}

fn get_json(url: &str, token: &str) -> Value {
    let mut r = agent()
        .get(url)
        .header("authorization", format!("Bearer {token}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(r.status().as_u16(), 200, "GET {url}");
    serde_json::from_slice(&r.body_mut().read_to_vec().expect("body")).expect("JSON")
}

/// Luma of one decoded picture of `file` (ffmpeg), `args` choosing it.
fn luma(file: &Path, before: &[&str], after: &[&str]) -> Vec<u8> {
    let mut a: Vec<String> = vec!["-loglevel".into(), "error".into()];
    a.extend(before.iter().map(|s| s.to_string()));
    a.extend(["-i".into(), tools::p(file)]);
    a.extend(after.iter().map(|s| s.to_string()));
    a.extend(
        ["-f", "rawvideo", "-pix_fmt", "gray", "-"]
            .iter()
            .map(|s| s.to_string()),
    );
    tools::ffmpeg(a).expect_success().stdout
}

fn stamp_of(luma: &[u8], w: usize, h: usize, what: &str) -> Stamp {
    assert!(luma.len() >= w * h, "{what}: {} bytes of luma", luma.len());
    blockcode::decode(luma, w, h).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// UTC day `YYYY-MM-DD` of a time in ms.
fn utc_day(ms: u64) -> String {
    ivcs_cam::pattern::utc_text(ms).0
}

#[test]
fn demo_records_the_virtual_camera_and_plays_and_exports_its_burned_in_time() {
    tools::require_ffmpeg();
    let chromium = chromium();
    let browser = browser_dir();
    let work = scratch_dir("demo");
    let viewer = work.join("viewer");
    build_viewer(&viewer);
    let data = work.join("demo-data");
    let cam_args = format!(
        "--speed {SPEED} --duration {DURATION_S} --event-first {EVENT_FIRST_S} --event-every {EVENT_EVERY_S} --event-length 4 --status lines"
    );
    let mut demo = Demo::start(&data, &viewer, &cam_args);
    let url_line = demo.wait_line("viewer: http", Duration::from_secs(60));
    let url = url_line.split("viewer: ").nth(1).expect("url").to_string();
    let base = url.split("/#token=").next().expect("base").to_string();
    let token = url.split("#token=").nth(1).expect("token").to_string();
    // 48 s at 4x is 12 s of pushing, plus start-up and the final uploads.
    demo.wait_line("camera stopped", Duration::from_secs(120));

    // ---- the cloud's view: one span -------------------------------------------------------
    let now = ivcs_cam::state::utc_now_ms();
    let tl = get_json(
        &format!(
            "{base}/v1/devices/{DEVICE}/channels/0/timeline?start_ms={}&end_ms={}",
            now - 3_600_000,
            now + 3_600_000
        ),
        &token,
    );
    let spans = tl["spans"].as_array().expect("spans");
    assert_eq!(spans.len(), 1, "{tl}");
    let (s, e) = (
        spans[0]["start_ms"].as_u64().expect("start"),
        spans[0]["end_ms"].as_u64().expect("end"),
    );
    // The open segment is dropped by iv_cs_exit: at least 30 of 48 s.
    assert!(e - s >= 30_000, "span {s}..{e}");
    // The camera's first frame is stamped with a whole second; the engine
    // dated it by the clock when it was pushed, at that second.
    let first = (s + 500) / 1000 * 1000;
    assert!(
        s.abs_diff(first) <= 100,
        "span starts at {s}, not at a second"
    );

    // ---- the browser: seek to a known second, read the frame ----------------------------------
    let seek_ms = first + 21_000;
    let events: Vec<u64> = (0..4)
        .map(|k| first + (EVENT_FIRST_S + k * EVENT_EVERY_S) * 1000)
        .collect();
    let artifacts = target_dir().join("test-artifacts");
    let expect = json!({
        "url": url,
        "device": DEVICE,
        "timezone": "UTC",
        "day": utc_day(seek_ms),
        "span": [s, e],
        "event_ms": events,
        "min_events": 2,
        "seek_ms": seek_ms,
    });
    let log = run(
        Command::new("node")
            .arg(browser.join("demo.test.mjs"))
            .current_dir(&browser)
            .env("IVCS_EXPECT", expect.to_string())
            .env("IVCS_ARTIFACTS", &artifacts)
            .env("CHROMIUM", &chromium),
        "the browser test (tests/browser/demo.test.mjs)",
    );
    #[allow(clippy::print_stderr)]
    {
        eprint!("{log}");
    }
    let result: Value = serde_json::from_slice(
        &std::fs::read(artifacts.join("demo-result.json")).expect("demo-result.json"),
    )
    .expect("JSON");
    let fr = &result["frame"];
    let (fw, fh) = (
        fr["w"].as_u64().expect("w") as usize,
        fr["h"].as_u64().expect("h") as usize,
    );
    assert_eq!((fw, fh), (W, H), "decoded picture size");
    let png = Path::new(fr["path"].as_str().expect("frame path")).to_path_buf();
    let shown = stamp_of(&luma(&png, &[], &[]), fw, fh, "the browser's frame");
    assert!(
        shown.utc_ms.abs_diff(seek_ms) <= 1000,
        "asked for {seek_ms}, the frame shows {} ({} ms off)",
        shown.utc_ms,
        shown.utc_ms as i64 - seek_ms as i64
    );
    // The viewer's readout and the picture agree (same mapping of media
    // time to UTC as the engine's).
    let clock = fr["clock_ms"].as_u64().expect("clock");
    assert!(
        clock.abs_diff(shown.utc_ms) <= 200,
        "readout {clock} vs frame {}",
        shown.utc_ms
    );

    // The thumbnail is the frame at its event's start.
    let thumb_url = result["thumbnail"]["src"].as_str().expect("thumbnail src");
    let mut r = agent().get(thumb_url).call().expect("thumbnail");
    assert_eq!(r.status().as_u16(), 200);
    let jpeg = work.join("thumbnail.jpg");
    std::fs::write(&jpeg, r.body_mut().read_to_vec().expect("body")).expect("write");
    let t = stamp_of(&luma(&jpeg, &[], &[]), W, H, "the thumbnail");
    assert!(
        events.contains(&t.utc_ms),
        "thumbnail shows {}, events at {events:?}",
        t.utc_ms
    );

    // ---- an MP4 export of a range --------------------------------------------------------------
    let (a, b) = (first + 13_000, first + 33_000);
    let pb = agent()
        .post(format!(
            "{base}/v1/devices/{DEVICE}/channels/0/playback-url?start_ms={a}&end_ms={b}"
        ))
        .header("authorization", format!("Bearer {token}"))
        .send_empty()
        .expect("playback-url")
        .body_mut()
        .read_to_vec()
        .expect("body");
    let pb: Value = serde_json::from_slice(&pb).expect("JSON");
    let export_url = format!("{base}{}", pb["export_url"].as_str().expect("export_url"));
    let mut r = agent().get(&export_url).call().expect("export.mp4");
    assert_eq!(r.status().as_u16(), 200);
    let start_hdr: u64 = r
        .headers()
        .get("x-ivcs-start-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("x-ivcs-start-ms");
    let mp4 = artifacts.join("demo-export.mp4");
    std::fs::write(
        &mp4,
        r.body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .expect("body"),
    )
    .expect("write");
    tools::probe_clean(&tools::p(&mp4));
    let head = stamp_of(
        &luma(&mp4, &[], &["-frames:v", "1"]),
        W,
        H,
        "the export's first frame",
    );
    // The last frame: decode the final half second, keep the last picture.
    let tail = luma(&mp4, &["-sseof", "-0.5"], &[]);
    let last = stamp_of(&tail[tail.len() - W * H..], W, H, "the export's last frame");
    assert!(
        head.utc_ms <= a && a - head.utc_ms < GOP_MS,
        "export of {a}.. starts at {} (a key frame at or before it)",
        head.utc_ms
    );
    assert!(
        head.utc_ms.abs_diff(start_hdr) <= 50,
        "first frame {} vs x-ivcs-start-ms {start_hdr}",
        head.utc_ms
    );
    assert!(
        last.utc_ms < b && b - last.utc_ms <= GOP_MS,
        "export of ..{b} ends with {}",
        last.utc_ms
    );

    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "span {s}..{e} ({} ms); seek {seek_ms}: frame {} (readout {clock}); thumbnail {}; \
             export {a}..{b}: first frame {} (header {start_hdr}), last {}",
            e - s,
            shown.utc_ms,
            t.utc_ms,
            head.utc_ms,
            last.utc_ms
        );
    }

    // ---- Ctrl-C, and a second run reuses everything ------------------------------------------
    demo.interrupt();
    let secret = std::fs::read_to_string(data.join("device.secret")).expect("secret");
    let mut again = Demo::start(
        &data,
        &viewer,
        &format!("--speed {SPEED} --duration 4 --status lines"),
    );
    let url2 = again.wait_line("viewer: http", Duration::from_secs(60));
    assert!(url2.ends_with(&format!("#token={token}")), "{url2}");
    again.wait_line("camera stopped", Duration::from_secs(60));
    assert!(
        !again.seen.iter().any(|l| l.contains("registered device")),
        "the device was registered again"
    );
    assert!(
        again.seen.iter().any(|l| l.contains("plan full-time")),
        "the camera did not see its plan"
    );
    again.interrupt();
    assert_eq!(
        std::fs::read_to_string(data.join("device.secret")).expect("secret"),
        secret
    );
}
