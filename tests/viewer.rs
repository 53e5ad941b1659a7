//! The web viewer: its files as the real cloud binary serves them, its
//! JavaScript unit tests (node's test runner), and the whole viewer in
//! Debian's headless Chromium driven by playwright-core
//! (`tests/browser/viewer.test.mjs`) against the real service holding
//! segments that `ivcs mux` made from ffmpeg-generated media: two recordings
//! with a gap between them, an event with a picture, and an H.265 channel.
//! The exported MP4 the browser saved is checked here with ffprobe.
//!
//! Needs `node` and `npm` (the viewer and playwright-core are installed with
//! `npm ci` if missing) and `/usr/bin/chromium` (`apt-get install chromium`;
//! `CHROMIUM` overrides the path). Missing tools fail the test, never skip it.

use ivcs_tests::Container;
use ivcs_tests::browser::{browser_dir, build_viewer, chromium, run};
use ivcs_tests::cli::{Mux, START_UTC_MS, bin};
use ivcs_tests::cloud::{Cloud, Device, admin};
use ivcs_tests::fixtures::{
    self, AAC_48K_MONO, AudioFixture, H264_360P_GOP2_60S, H265_360P_GOP2_24S, VideoFixture,
};
use ivcs_tests::index::{Index, Segment};
use ivcs_tests::paths::{scratch_dir, target_dir, workspace_root};
use ivcs_tests::tools;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The browser's time zone: east of UTC, so the recordings (22:13 UTC) fall
/// on the next local day and every day boundary must be local.
const TIMEZONE: &str = "Asia/Shanghai";
/// `START_UTC_MS` (2023-11-14T22:13:20Z) as a day in `TIMEZONE` (UTC+8).
const LOCAL_DAY: &str = "2023-11-15";
/// Local wall time of `START_UTC_MS` in `TIMEZONE`, seconds after midnight.
const START_LOCAL_S: u64 = 6 * 3600 + 13 * 60 + 20;

/// Muxes `video` (+ `audio`) into 4 s TS segments whose first frame is at
/// `start_ms`.
fn mux_at(
    name: &str,
    video: &VideoFixture,
    audio: Option<&AudioFixture>,
    start_ms: u64,
) -> (PathBuf, Index) {
    fixtures::dir();
    let out = scratch_dir(name);
    let mut args = Mux::new(video, audio, Container::Ts).args(&out);
    let i = args
        .iter()
        .position(|a| a == "--start-utc-ms")
        .expect("--start-utc-ms");
    args[i + 1] = start_ms.to_string();
    tools::run(bin(), args).expect_success();
    let index = Index::load(&out).expect("index.json");
    (out, index)
}

/// Uploads every segment of a mux run to `channel` and commits it.
fn upload_all(dev: &Device, dir: &Path, index: &Index, channel: u32) {
    for s in &index.segments {
        let data = std::fs::read(dir.join(&s.file)).expect("segment");
        let query = format!(
            "channel={channel}&container={}&codec={}&utc_start_ms={}&pts_start_ms={}&seq_start={}&init_bytes={}&event=0",
            index.container, s.codec, s.utc_start_ms, s.pts_start_ms, s.seq_start, s.init_bytes
        );
        let commit = json!({
            "sha256": ivcs_cloud::auth::sha256_hex(&data),
            "bytes": data.len(),
            "utc_end_ms": s.utc_end_ms,
            "pts_end_ms": s.pts_end_ms,
            "seq_end": s.seq_end,
            "video_frames": s.video_frames,
            "audio_frames": s.audio_frames,
        });
        let id = format!("{channel}-{}-{}", s.utc_start_ms, s.seq_start);
        let a = dev.upload_segment(&id, &query, &data, &commit);
        assert_eq!(a.status, 200, "{}", a.text());
        assert_eq!(a.json()["state"], "complete", "{}", a.text());
    }
}

fn span(index: &Index) -> (u64, u64) {
    let first: &Segment = index.segments.first().expect("segments");
    let last: &Segment = index.segments.last().expect("segments");
    (first.utc_start_ms, last.utc_end_ms)
}

/// `HH:MM:SS` in `TIMEZONE` of a time on the test's day.
fn local_clock(ms: u64) -> String {
    let s = START_LOCAL_S + (ms - START_UTC_MS) / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[test]
fn viewer_plays_seeks_and_exports_in_chromium() {
    let chromium = chromium();
    let browser = browser_dir();
    let work = scratch_dir("viewer-browser");
    let viewer = work.join("viewer");
    build_viewer(&viewer);

    // Two 60 s recordings with a 60 s gap, and a 24 s H.265 one on channel 1.
    let second_ms = START_UTC_MS + 120_000;
    let (dir_a, idx_a) = mux_at(
        "viewer-a",
        &H264_360P_GOP2_60S,
        Some(&AAC_48K_MONO),
        START_UTC_MS,
    );
    let (dir_b, idx_b) = mux_at(
        "viewer-b",
        &H264_360P_GOP2_60S,
        Some(&AAC_48K_MONO),
        second_ms,
    );
    let (dir_h, idx_h) = mux_at("viewer-hevc", &H265_360P_GOP2_24S, None, START_UTC_MS);

    let cloud = Cloud::start(
        &work.join("data"),
        &[(
            "IVCS_CLOUD_VIEWER_DIR",
            viewer.to_str().expect("utf-8 path"),
        )],
    );
    // "Now" is shortly after the recordings: nothing is old enough for
    // retention, and signed URLs are checked against the same clock.
    cloud.set_now_ms(START_UTC_MS + 600_000);
    let dev = cloud.add_device("cam1");
    admin(
        &cloud.data,
        &["plan", "set", "cam1", "--type", "full-time", "--days", "7"],
    )
    .expect_success();
    upload_all(&dev, &dir_a, &idx_a, 0);
    upload_all(&dev, &dir_b, &idx_b, 0);
    upload_all(&dev, &dir_h, &idx_h, 1);

    // An event in the second recording, with a real JPEG picture.
    let event_ms = second_ms + 10_000;
    let ev = json!({"channel": 0, "event_id": 1, "utc_start_ms": event_ms, "info": "motion", "report_opt": "picture"});
    assert_eq!(dev.json("PUT", "/v1/device/events/ev1", &ev).status, 201);
    let jpeg = work.join("picture.jpg");
    tools::ffmpeg([
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-t",
        "1",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x180:rate=1",
        "-frames:v",
        "1",
        &tools::p(&jpeg),
    ])
    .expect_success();
    let pic = dev.send(
        "PUT",
        &format!("/v1/device/pictures/p1?channel=0&utc_ms={event_ms}&event_key=ev1"),
        &std::fs::read(&jpeg).expect("jpeg"),
    );
    assert_eq!(pic.status, 201, "{}", pic.text());
    let stop = dev.json(
        "POST",
        "/v1/device/events/ev1/stop",
        &json!({"utc_end_ms": event_ms + 5000}),
    );
    assert_eq!(stop.status, 200, "{}", stop.text());

    let token = cloud.token();
    let (a, b) = (span(&idx_a), span(&idx_b));
    let export = (START_UTC_MS + 20_000, START_UTC_MS + 30_000);
    let artifacts = target_dir().join("test-artifacts");
    let expect = json!({
        "url": format!("{}/#token={token}", cloud.base),
        "token": token,
        "timezone": TIMEZONE,
        "device": "cam1",
        "day": LOCAL_DAY,
        "spans": [[a.0, a.1], [b.0, b.1]],
        "gap": [a.1, b.0],
        "gap_click_ms": a.1 + 30_000,
        "event_ms": event_ms,
        "picture_size": [320, 180],
        "play_ms": second_ms + 30_000,
        "hevc_channel": 1,
        "hevc_play_ms": START_UTC_MS + 10_000,
        "export": [export.0, export.1],
        "export_local": [local_clock(export.0), local_clock(export.1)],
    });
    let started = std::time::Instant::now();
    let log = run(
        Command::new("node")
            .arg(browser.join("viewer.test.mjs"))
            .current_dir(&browser)
            .env("IVCS_EXPECT", expect.to_string())
            .env("IVCS_ARTIFACTS", &artifacts)
            .env("CHROMIUM", &chromium),
        "the browser test (tests/browser/viewer.test.mjs)",
    );
    // The browser's step log, shown with --nocapture (and on failure above).
    #[allow(clippy::print_stderr)]
    {
        eprint!("{log}");
        eprintln!("browser test took {:?}", started.elapsed());
    }

    // The file the browser saved: exactly Content-Length bytes, a clean
    // decode, and as long as the selection (it starts on a key frame: the
    // GOP is 2 s and the selection starts on a 2 s boundary).
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(artifacts.join("result.json")).expect("result.json"))
            .expect("result.json is JSON");
    let ex = &result["export"];
    let path = PathBuf::from(ex["path"].as_str().expect("export path"));
    let size = std::fs::metadata(&path).expect("saved export").len();
    assert_eq!(Some(size), ex["content_length"].as_u64(), "{ex}");
    assert_eq!(
        ex["filename"],
        format!("cam1-ch0-{}.mp4", export.0),
        "Content-Disposition name"
    );
    assert_eq!(ex["start_ms"], export.0, "{ex}");
    let probe = tools::probe_clean(&tools::p(&path));
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .expect("duration")
        .parse()
        .expect("duration number");
    let want = (export.1 - export.0) as f64 / 1000.0;
    assert!(
        (duration - want).abs() <= 0.1,
        "exported {duration} s, selected {want} s"
    );
    let video = tools::probe_stream(&probe, "video").expect("a video stream");
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(video["nb_read_frames"], "250", "10 s at 25 fps");
}

/// A raw request (no client normalises the path): status and body.
fn raw_get(base: &str, path: &str) -> (u16, String) {
    let addr = base.strip_prefix("http://").expect("http base");
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    (status, text)
}

#[test]
fn viewer_files_are_served_from_the_install_prefix_without_traversal() {
    // An install prefix: PREFIX/bin/ivcs and PREFIX/share/ivcs/viewer, and a
    // file just outside the viewer directory that must never be served.
    let work = scratch_dir("viewer-files");
    let prefix = work.join("prefix");
    std::fs::create_dir_all(prefix.join("bin")).expect("mkdir");
    let exe = prefix.join("bin/ivcs");
    std::fs::copy(bin(), &exe).expect("copying the ivcs binary");
    let viewer = prefix.join("share/ivcs/viewer");
    build_viewer(&viewer);
    std::fs::write(prefix.join("share/ivcs/secret.txt"), "TOPSECRET").expect("secret");
    std::fs::write(viewer.join(".env"), "TOPSECRET").expect("dot file");

    // No viewer_dir setting: the default is found next to the executable.
    let cloud = Cloud::start_with_bin(&exe, &work.join("data"), &[]);
    let app = cloud.app(None);

    let index = app.get("/");
    assert_eq!(index.status, 200, "{}", index.text());
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(index.text().contains("viewer/app.js"));
    let csp = index.header("content-security-policy").expect("CSP");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    for (path, ty) in [
        ("/viewer/app.js", "text/javascript; charset=utf-8"),
        (
            "/viewer/vendor/hls.light.min.mjs",
            "text/javascript; charset=utf-8",
        ),
        (
            "/viewer/vendor/hls.worker.js",
            "text/javascript; charset=utf-8",
        ),
        ("/viewer/style.css", "text/css; charset=utf-8"),
        (
            "/viewer/vendor/hls.js-LICENSE.txt",
            "text/plain; charset=utf-8",
        ),
    ] {
        let a = app.get(path);
        assert_eq!(a.status, 200, "{path}: {}", a.text());
        assert_eq!(a.header("content-type"), Some(ty), "{path}");
        assert_eq!(a.header("cache-control"), Some("no-cache"), "{path}");
        assert_eq!(a.header("x-content-type-options"), Some("nosniff"));
        let disk = std::fs::read(viewer.join(&path["/viewer/".len()..])).expect("file");
        assert_eq!(a.body, disk, "{path}");
    }

    // ETag validation: the same validator answers 304 without a body.
    let etag = index.header("etag").expect("ETag").to_string();
    let agent = ivcs_tests::cloud::agent();
    let mut r = agent
        .get(format!("{}/", cloud.base))
        .header("if-none-match", &etag)
        .call()
        .expect("conditional GET");
    assert_eq!(r.status().as_u16(), 304);
    assert!(r.body_mut().read_to_vec().expect("body").is_empty());
    let r = agent
        .get(format!("{}/", cloud.base))
        .header("if-none-match", "\"other\"")
        .call()
        .expect("conditional GET");
    assert_eq!(r.status().as_u16(), 200);

    // gzip when accepted: the build's .gz copy, a validator of its own.
    let mut r = agent
        .get(format!("{}/viewer/vendor/hls.light.min.mjs", cloud.base))
        .header("accept-encoding", "gzip, br")
        .call()
        .expect("gzip GET");
    assert_eq!(r.status().as_u16(), 200);
    let h = |r: &ureq::http::Response<ureq::Body>, n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(h(&r, "content-encoding").as_deref(), Some("gzip"));
    assert_eq!(h(&r, "vary").as_deref(), Some("accept-encoding"));
    assert_eq!(
        h(&r, "content-type").as_deref(),
        Some("text/javascript; charset=utf-8")
    );
    let gz_etag = h(&r, "etag").expect("ETag");
    let plain = app.get("/viewer/vendor/hls.light.min.mjs");
    assert_ne!(Some(gz_etag.as_str()), plain.header("etag"));
    let body = r
        .body_mut()
        .with_config()
        .limit(1 << 24)
        .read_to_vec()
        .expect("body");
    let gz = viewer.join("vendor/hls.light.min.mjs.gz");
    assert_eq!(body, std::fs::read(&gz).expect(".gz"));
    let unzipped = tools::run("gzip", ["-dc", &tools::p(&gz)]).expect_success();
    assert_eq!(unzipped.stdout, plain.body, "the .gz copy is the file");

    // No authentication for the files, and none given to the API by them.
    assert_eq!(app.get("/v1/devices").status, 401);
    assert_eq!(app.get("/viewer/nope.js").status, 404);

    // Traversal, plain and encoded, never reaches outside the directory.
    for path in [
        "/viewer/../secret.txt",
        "/viewer/..%2fsecret.txt",
        "/viewer/%2e%2e/secret.txt",
        "/viewer/%2e%2e%2fsecret.txt",
        "/viewer/%252e%252e%252fsecret.txt",
        "/viewer/vendor/../../secret.txt",
        "/viewer/vendor/%2e%2e/%2e%2e/secret.txt",
        "/viewer/..\\secret.txt",
        "/viewer/%5c..%5csecret.txt",
        "/viewer//etc/passwd",
        "/viewer/%2fetc%2fpasswd",
        "/viewer/.env",
        "/viewer/..",
        "/viewer/%00",
    ] {
        let (status, text) = raw_get(&cloud.base, path);
        assert!(status == 400 || status == 404, "{path}: {status}\n{text}");
        assert!(!text.contains("TOPSECRET"), "{path} leaked:\n{text}");
    }
    drop(cloud);

    // A missing viewer directory: 503 with a message that says what to do,
    // while the API keeps working.
    let missing = work.join("no-viewer-here");
    let cloud = Cloud::start(
        &work.join("data2"),
        &[("IVCS_CLOUD_VIEWER_DIR", missing.to_str().expect("utf-8"))],
    );
    for path in ["/", "/viewer/app.js"] {
        let a = cloud.app_get(path, None);
        assert_eq!(a.status, 503, "{path}");
        assert!(a.text().contains("viewer is not installed"), "{}", a.text());
        assert!(a.text().contains("IVCS_CLOUD_VIEWER_DIR"), "{}", a.text());
    }
    assert_eq!(cloud.app_get("/healthz", None).status, 200);
}

#[test]
fn viewer_javascript_unit_tests_pass_in_node() {
    // The pure modules (codec message, playlist time mapping, local days)
    // under node's own test runner, in two time zones.
    for tz in ["UTC", "America/New_York"] {
        run(
            Command::new("node")
                .args(["--test", "test/"])
                .current_dir(workspace_root().join("viewer"))
                .env("TZ", tz),
            "node --test viewer/test/",
        );
    }
}
