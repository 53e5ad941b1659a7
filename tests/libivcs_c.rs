//! libivcs from C, against the real cloud binary: the scenarios of
//! `tests/c/libivcs_test.c` compiled with gcc and linked to `dist/lib`
//! (static, shared, and static under AddressSanitizer + LeakSanitizer), run
//! with the cloud's URL and a device's credentials in the environment, as
//! unchanged firmware would be. The test drives plan changes with
//! `ivcs cloud plan set` when the C program says it is ready (stdout lines),
//! and checks the cloud's state afterwards (events through the app API).
//! Also builds and runs `examples/firmware.c` through pkg-config.
//!
//! Needs `make lib` (dist/lib, dist/include) and the `ivcs` binary.

use ivcs_tests::cloud::{Cloud, admin};
use ivcs_tests::paths::{scratch_dir, workspace_root};
use ivcs_tests::shaper::Shaper;
use ivcs_tests::tools::{self, p};
use ivcs_tests::{fixtures, framemd5, frames_file};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// How a test program links libivcs.
#[derive(Clone, Copy, Debug)]
enum Link {
    Static,
    Shared,
    StaticAsan,
}

fn dist() -> PathBuf {
    let d = workspace_root().join("dist");
    assert!(
        d.join("lib/libivcs.a").is_file() && d.join("include/iv_cs.h").is_file(),
        "dist/lib/libivcs.a is missing: run `make lib` first"
    );
    d
}

/// Compiles `tests/c/libivcs_test.c` once per link kind.
fn program(link: Link) -> PathBuf {
    compile("libivcs_test", link)
}

/// Compiles `tests/c/NAME.c` once per link kind.
fn compile(name: &str, link: Link) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    static COMPILING: Mutex<()> = Mutex::new(());
    let dir = BUILT.get_or_init(|| scratch_dir("libivcs_c_bin")).clone();
    // Tests run in parallel: one compiles, the others wait for the file.
    let _guard = COMPILING.lock().unwrap_or_else(|e| e.into_inner());
    let out = dir.join(format!("{name}_{link:?}").to_lowercase());
    if out.is_file() {
        return out;
    }
    let d = dist();
    let src = workspace_root().join(format!("tests/c/{name}.c"));
    let mut args: Vec<String> = vec![
        "-std=c99".into(),
        "-Wall".into(),
        "-Wextra".into(),
        "-Werror".into(),
        "-pthread".into(),
        "-g".into(),
        format!("-I{}", p(&d.join("include"))),
    ];
    if matches!(link, Link::StaticAsan) {
        args.extend([
            "-fsanitize=address,undefined".into(),
            "-fno-omit-frame-pointer".into(),
        ]);
    }
    args.push(p(&src));
    match link {
        Link::Static | Link::StaticAsan => {
            args.push(p(&d.join("lib/libivcs.a")));
            for l in ["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl"] {
                args.push(l.into());
            }
        }
        Link::Shared => {
            args.push(format!("-L{}", p(&d.join("lib"))));
            args.push("-livcs".into());
            args.push(format!("-Wl,-rpath,{}", p(&d.join("lib"))));
        }
    }
    args.push("-o".into());
    args.push(p(&out));
    tools::run("gcc", &args).expect_success();
    out
}

/// A cloud with one device; the environment firmware would run with.
struct Setup {
    cloud: Cloud,
    env: Vec<(String, String)>,
    device: String,
    dir: PathBuf,
}

fn setup(name: &str) -> Setup {
    let dir = scratch_dir(name);
    let cloud = Cloud::start(&dir.join("data"), &[]);
    let device = format!("cam-{name}").replace('_', "-");
    let dev = cloud.add_device(&device);
    let env = vec![
        ("IVCS_CLOUD_URL".to_string(), cloud.base.clone()),
        ("IVCS_DEVICE_ID".to_string(), device.clone()),
        ("IVCS_DEVICE_SECRET".to_string(), dev.secret.clone()),
        ("IVCS_LOG_LEVEL".to_string(), "warn".to_string()),
        (
            "ASAN_OPTIONS".to_string(),
            "handle_segv=0:detect_leaks=1".to_string(),
        ),
    ];
    Setup {
        cloud,
        env,
        device,
        dir,
    }
}

impl Setup {
    /// A shaping proxy in front of the cloud; the library is pointed at it.
    fn through_shaper(&mut self) -> Shaper {
        let upstream = self
            .cloud
            .base
            .strip_prefix("http://")
            .and_then(|a| a.parse().ok())
            .expect("the cloud's address");
        let shaper = Shaper::start(upstream);
        for (k, v) in &mut self.env {
            if k == "IVCS_CLOUD_URL" {
                *v = shaper.url();
            }
        }
        shaper
    }

    fn plan(&self, kind: &str, days: &str) {
        admin(
            &self.cloud.data,
            &["plan", "set", &self.device, "--type", kind, "--days", days],
        )
        .expect_success();
    }

    /// Runs a scenario to completion; returns stdout. Panics with stderr on
    /// failure.
    fn run(&self, link: Link, args: &[&str]) -> String {
        self.run_with_stderr(link, args).0
    }

    /// [`Setup::run`], also returning what went to stderr (the library's
    /// log without a log callback).
    fn run_with_stderr(&self, link: Link, args: &[&str]) -> (String, String) {
        let out = Command::new(program(link))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .expect("running the C test");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "{link:?} {args:?} failed ({})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            out.status
        );
        // Sanitizer reports go to stderr even when they do not fail the run.
        assert!(
            !stderr.contains("Sanitizer") && !stderr.contains("runtime error"),
            "{link:?} {args:?}: sanitizer report\n{stderr}"
        );
        (stdout, stderr)
    }
}

#[test]
fn bad_input_is_refused_with_the_documented_codes_static_shared_and_asan() {
    let s = setup("libivcs_errors");
    for link in [Link::Static, Link::Shared, Link::StaticAsan] {
        let (out, log) = s.run_with_stderr(link, &["errors"]);
        assert!(out.contains("errors ok"), "{out}");
        // A refused init says why at the default log level.
        assert!(
            log.contains("refused (-602)") && log.contains("u32MaxGopSize"),
            "{log}"
        );
    }
}

#[test]
fn full_time_plan_starts_push_and_plan_none_stops_it() {
    let s = setup("libivcs_plans");
    s.plan("full-time", "7");
    let mut child = Command::new(program(Link::Static))
        .arg("plans")
        .envs(s.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running the C test");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("reading the C test's output");
        if line == "STARTED" {
            // Firmware has push_stream_start_cb; the cloud ends the plan.
            s.plan("none", "0");
        }
        lines.push(line);
    }
    let status = child.wait().expect("waiting for the C test");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    let all = lines.join("\n");
    assert!(status.success(), "{all}\n--- stderr ---\n{stderr}");
    // Blocking query before init, blocking and cached after: the plan.
    assert!(all.contains("BEFORE_INIT switch=1 days=7 type=1"), "{all}");
    assert!(all.contains("BALANCE switch=1 days=7 type=1"), "{all}");
    assert!(all.contains("AFTER_STOP switch=0 days=0 type=0"), "{all}");
    assert!(all.contains("plans ok"), "{all}");
}

#[test]
fn ai_settings_round_trip_through_the_cloud() {
    let s = setup("libivcs_ai");
    let out = s.run(Link::Static, &["ai"]);
    assert!(out.contains("ai ok"), "{out}");
}

#[test]
fn resource_destroy_resets_the_plan_before_init() {
    let s = setup("libivcs_destroy");
    s.plan("full-time", "30");
    let out = s.run(Link::Shared, &["destroy"]);
    assert!(
        out.contains("BEFORE_DESTROY switch=1 days=30 type=1"),
        "{out}"
    );
    assert!(
        out.contains("AFTER_DESTROY switch=0 days=0 type=0"),
        "{out}"
    );
    assert!(out.contains("destroy ok"), "{out}");
}

fn jpeg(dir: &Path) -> PathBuf {
    tools::require_ffmpeg();
    let f = dir.join("event.jpg");
    tools::ffmpeg([
        "-loglevel",
        "error",
        "-y",
        "-t",
        "1",
        "-f",
        "lavfi",
        "-i",
        "color=c=red:s=64x48",
        "-frames:v",
        "1",
        &p(&f),
    ])
    .expect_success();
    f
}

/// `GET /v1/devices/{device}/channels/0/{what}` with an app token; 200.
fn channel0(s: &Setup, what: &str) -> ivcs_tests::cloud::Answer {
    let a = s.cloud.app_get(
        &format!("/v1/devices/{}/channels/0/{what}", s.device),
        Some(&s.cloud.token()),
    );
    assert_eq!(a.status, 200, "{what}: {}", a.text());
    a
}

#[test]
fn direct_report_with_a_jpeg_works_without_a_plan_and_never_hands_the_picture_back() {
    let s = setup("libivcs_report");
    let pic = jpeg(&s.dir);
    let out = s.run(Link::StaticAsan, &["report", &p(&pic)]);
    assert!(out.contains("report ok"), "{out}");
    // The cloud has the event with its picture.
    let events = s.events(&s.cloud.token());
    let doorbell = events
        .iter()
        .find(|e| e["event_id"] == 7)
        .unwrap_or_else(|| panic!("no event 7 in {events:?}"));
    assert_eq!(doorbell["info"], "doorbell");
    assert!(doorbell["picture_id"].is_string(), "{doorbell}");
    assert!(events.iter().any(|e| e["event_id"] == 8), "{events:?}");
}

#[test]
fn threads_push_three_channels_while_others_run_events_and_queries_under_asan() {
    let s = setup("libivcs_stress");
    s.plan("full-time", "7");
    let frames = p(&media().file);
    let out = s.run(Link::StaticAsan, &["stress", "3", &frames]);
    assert!(out.contains("stress ok"), "{out}");
    // Every channel's acknowledged segments are in the cloud.
    let token = s.cloud.token();
    let now = s.cloud.now_ms();
    for ch in 0..3 {
        let tl = s.cloud.app_get(
            &format!(
                "/v1/devices/{}/channels/{ch}/timeline?start_ms={}&end_ms={}",
                s.device,
                now - 3_600_000,
                // Frames pushed faster than real time run ahead of the clock.
                now + 6 * 3_600_000
            ),
            Some(&token),
        );
        assert_eq!(tl.status, 200, "{}", tl.text());
        let segs: u64 = tl.json()["spans"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["segments"].as_u64()).sum())
            .unwrap_or(0);
        assert!(
            segs >= 3,
            "channel {ch}: {segs} segments stored in 3 rounds: {}",
            tl.text()
        );
    }
}

#[test]
fn the_example_firmware_builds_with_pkg_config_and_runs() {
    let s = setup("libivcs_example");
    let d = dist();
    let pc = d.join("lib/pkgconfig");
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "ivcs"])
        .env("PKG_CONFIG_PATH", &pc)
        .output()
        .expect("pkg-config");
    assert!(flags.status.success(), "pkg-config: {flags:?}");
    let flags = String::from_utf8_lossy(&flags.stdout).into_owned();
    let exe = s.dir.join("firmware");
    let mut args: Vec<String> = vec![
        "-std=c99".into(),
        "-Wall".into(),
        "-Wextra".into(),
        "-Werror".into(),
        "-pedantic".into(),
        "-pthread".into(),
        p(&workspace_root().join("examples/firmware.c")),
    ];
    args.extend(flags.split_whitespace().map(str::to_string));
    args.push(format!("-Wl,-rpath,{}", p(&d.join("lib"))));
    args.push("-o".into());
    args.push(p(&exe));
    tools::run("gcc", &args).expect_success();
    let out = Command::new(&exe)
        .arg("1")
        .envs(s.env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("running the example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("iv_cs_init: 0"), "{stdout}");
    // No plan: the alarm becomes a direct report with the JPEG.
    assert!(stdout.contains("direct report: 0"), "{stdout}");
    // The direct report's picture stays the caller's: never handed back.
    assert!(!stdout.contains("picture_result_cb"), "{stdout}");
    assert!(stdout.contains("iv_cs_exit: 0"), "{stdout}");
}

// ---- data flow: tests/c/libivcs_flow.c pushes real media ----------------------

/// The media the flow programs push: 30 s of the 640x360 H.264 fixture (25
/// fps, an IDR every 2 s) with 48 kHz mono AAC, as a frames file; and the
/// video access units (the source of the frame-exact checks).
struct Media {
    file: PathBuf,
    video: Vec<(bool, Vec<u8>)>,
}

fn media() -> &'static Media {
    static MEDIA: OnceLock<Media> = OnceLock::new();
    MEDIA.get_or_init(|| {
        let dir = scratch_dir("libivcs_frames");
        let v = &fixtures::H264_360P_GOP2_60S;
        let video = frames_file::video_units(&v.path(), false);
        let audio = frames_file::adts_frames(&fixtures::AAC_48K_MONO.path());
        let frames = frames_file::interleave(&video, v.fps, Some((&audio, 48_000)), 30_000);
        let file = dir.join("frames.bin");
        frames_file::write(&file, &frames);
        // The C camera loops the file: only these frames, again and again.
        let looped = frames.iter().filter(|f| f.kind == 1).count();
        Media {
            file,
            video: video[..looped].to_vec(),
        }
    })
}

/// Runs `tests/c/libivcs_flow.c` with `args`; a `NEED X` line from the
/// program runs `act(X)` and answers `ok` on its stdin. Returns stdout's
/// lines; panics with both streams if the program fails.
fn run_flow(s: &mut Setup, args: &[String], act: impl FnMut(&str, &mut Setup)) -> Vec<String> {
    let (lines, status, stderr) = run_flow_status(s, args, &[], act);
    assert!(
        status.success(),
        "{args:?} failed ({status})\n--- stdout ---\n{}\n--- stderr ---\n{stderr}",
        lines.join("\n")
    );
    lines
}

/// [`run_flow`] with extra environment, returning how the program ended
/// and its stderr instead of requiring success.
fn run_flow_status(
    s: &mut Setup,
    args: &[String],
    extra_env: &[(&str, &str)],
    act: impl FnMut(&str, &mut Setup),
) -> (Vec<String>, std::process::ExitStatus, String) {
    let program = compile("libivcs_flow", Link::Static);
    run_program(s, &program, args, extra_env, act)
}

/// Runs a C test program speaking the flow protocol (`NEED X` answered
/// `ok` after `act(X)`); returns stdout's lines, how it ended and stderr.
fn run_program(
    s: &mut Setup,
    program: &Path,
    args: &[String],
    extra_env: &[(&str, &str)],
    mut act: impl FnMut(&str, &mut Setup),
) -> (Vec<String>, std::process::ExitStatus, String) {
    let mut child = Command::new(program)
        .args(args)
        .envs(s.env.iter().map(|(k, v)| (k, v)))
        .envs(extra_env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running the C flow test");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let err_reader = std::thread::spawn(move || {
        let mut e = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut e);
        e
    });
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("reading the C program's output");
        if let Some(what) = line.strip_prefix("NEED ") {
            act(what, s);
            std::io::Write::write_all(&mut stdin, b"ok\n").expect("answering the C program");
        }
        lines.push(line);
    }
    let status = child.wait().expect("waiting for the C program");
    let stderr = err_reader.join().unwrap_or_default();
    (lines, status, stderr)
}

/// An `IV_CS_AV_UPLOAD_STATE_MSG` slice as the program printed it.
#[derive(Clone, Debug)]
struct Slice {
    ch: u32,
    ok: bool,
    utc_a: u64,
    utc_b: u64,
    seq_a: u32,
    seq_b: u32,
    total: u32,
}

fn slices(lines: &[String]) -> Vec<Slice> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("SLICE "))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let n = |i: usize| f[i].parse::<u64>().expect("a number");
            Slice {
                ch: n(0) as u32,
                ok: f[1] == "ok",
                utc_a: n(2),
                utc_b: n(3),
                seq_a: n(6) as u32,
                seq_b: n(7) as u32,
                total: n(9) as u32,
            }
        })
        .collect()
}

/// A file `dump_file_cb` exported (`DUMP ch name start_ms end_ms bytes`).
#[derive(Clone, Debug)]
struct Dump {
    name: String,
    start_ms: u64,
    end_ms: u64,
    bytes: u64,
}

fn dumps(lines: &[String]) -> Vec<Dump> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("DUMP "))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Dump {
                name: f[1].to_string(),
                start_ms: f[2].parse().expect("start"),
                end_ms: f[3].parse().expect("end"),
                bytes: f[4].parse().expect("bytes"),
            }
        })
        .collect()
}

/// The dump of a slice: its start second is the dump's `start_ts / 1000`.
fn dump_of<'a>(dumps: &'a [Dump], s: &Slice) -> &'a Dump {
    dumps
        .iter()
        .find(|d| d.start_ms / 1000 == s.utc_a)
        .unwrap_or_else(|| panic!("no dump for {s:?} in {dumps:?}"))
}

fn segment_id(name: &str) -> &str {
    name.strip_suffix(".ts")
        .or_else(|| name.strip_suffix(".mp4"))
        .unwrap_or(name)
}

impl Setup {
    /// A stored segment's bytes (app API); panics unless 200.
    fn segment(&self, token: &str, id: &str) -> Vec<u8> {
        let a = self.cloud.app_get(
            &format!("/v1/devices/{}/segments/{id}", self.device),
            Some(token),
        );
        assert_eq!(a.status, 200, "segment {id}: {}", a.text());
        a.body
    }

    /// The cloud's row of a segment: (backup, state).
    fn segment_row(&self, id: &str) -> (bool, String) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a tokio runtime");
        rt.block_on(async {
            let repo = ivcs_cloud::repo::Repo::open(&self.cloud.data.join("ivcs.db"), false)
                .await
                .expect("opening the cloud's database");
            let row = repo
                .segment(&self.device, id)
                .await
                .expect("reading a segment row")
                .unwrap_or_else(|| panic!("no segment row {id}"));
            (row.backup, format!("{:?}", row.state))
        })
    }

    /// The events of channel 0 within an hour of now.
    fn events(&self, token: &str) -> Vec<serde_json::Value> {
        let now = self.cloud.now_ms();
        let a = self.cloud.app_get(
            &format!(
                "/v1/devices/{}/channels/0/events?start_ms={}&end_ms={}",
                self.device,
                now - 3_600_000,
                now + 3_600_000
            ),
            Some(token),
        );
        assert_eq!(a.status, 200, "{}", a.text());
        a.json()["events"].as_array().cloned().unwrap_or_default()
    }
}

/// Every acknowledged (`ok`) slice of channel 0 is stored in the cloud with
/// exactly `total_size` bytes, the bytes `dump_file_cb` exported.
fn acknowledged_segments_are_stored(s: &Setup, lines: &[String], dump_dir: &Path) -> Vec<Slice> {
    let token = s.cloud.token();
    let d = dumps(lines);
    let mut ok: Vec<Slice> = slices(lines)
        .into_iter()
        .filter(|x| x.ok && x.ch == 0)
        .collect();
    ok.sort_by_key(|x| x.seq_a);
    for sl in &ok {
        let dump = dump_of(&d, sl);
        let bytes = s.segment(&token, segment_id(&dump.name));
        assert_eq!(
            bytes.len() as u64,
            u64::from(sl.total),
            "{sl:?}: upload_size/total_size"
        );
        assert_eq!(dump.bytes, u64::from(sl.total), "{sl:?} vs {dump:?}");
        let file = std::fs::read(dump_dir.join(&dump.name)).expect("the dump file");
        assert!(
            file == bytes,
            "{}: stored bytes differ from the dump",
            dump.name
        );
    }
    ok
}

#[test]
fn full_time_flow_from_c_stores_segments_that_decode_frame_exact() {
    let mut s = setup("libivcs_flow");
    s.plan("full-time", "7");
    let m = media();
    let dump_dir = s.dir.join("dumps");
    std::fs::create_dir_all(&dump_dir).expect("dump dir");
    let lines = run_flow(
        &mut s,
        &["flow".into(), p(&m.file), p(&dump_dir)],
        |what, _| panic!("unexpected NEED {what}"),
    );
    assert!(lines.iter().any(|l| l == "flow ok"), "{lines:?}");
    let ok = acknowledged_segments_are_stored(&s, &lines, &dump_dir);
    assert!(ok.len() >= 2, "{ok:?}");
    recording_is_continuous_and_frame_exact(&s, &lines, &ok);
}

/// The engine traps twice mid-segment (the test hook makes the calls that
/// take the 450th and 1200th frames overrun their deadline, as a bug
/// would): each restart comes back from the last hand-over and checkpoint
/// (the buffered media, the open segment) and the frames taken since are
/// fed again, so the recording loses nothing: every frame, frame-exact, in
/// contiguous acknowledged segments (docs/design/trap-restart.md).
#[test]
fn engine_traps_mid_segment_lose_no_frame() {
    let mut s = setup("libivcs_trap");
    s.plan("full-time", "7");
    let m = media();
    let dump_dir = s.dir.join("dumps");
    std::fs::create_dir_all(&dump_dir).expect("dump dir");
    let args = ["flow".into(), p(&m.file), p(&dump_dir)];
    let (lines, status, stderr) = run_flow_status(
        &mut s,
        &args,
        &[("IVCS_TEST_TRAP_AT_FRAMES", "450,1200")],
        |what, _| panic!("unexpected NEED {what}"),
    );
    assert!(
        status.success() && lines.iter().any(|l| l == "flow ok"),
        "{status}\n{}\n--- stderr ---\n{stderr}",
        lines.join("\n")
    );
    assert_eq!(stderr.matches("engine trapped").count(), 2, "{stderr}");
    let ok = acknowledged_segments_are_stored(&s, &lines, &dump_dir);
    assert!(ok.len() >= 2, "{ok:?}");
    recording_is_continuous_and_frame_exact(&s, &lines, &ok);
}

/// The acknowledged segments start at the first frame and follow each
/// other without a gap; the HLS playlist of the recorded range lists
/// exactly them, and fetched through it they decode to the pushed
/// pictures (the C camera loops the file: frame seq `k` is
/// `m.video[k % len]`),
/// frame-exact, with the AAC pushed alongside.
fn recording_is_continuous_and_frame_exact(s: &Setup, lines: &[String], ok: &[Slice]) {
    assert_eq!(ok[0].seq_a, 0, "recording starts at the first frame");
    for w in ok.windows(2) {
        assert_eq!(w[1].seq_a, w[0].seq_b + 1, "contiguous: {w:?}");
    }
    let frames = ok.last().map_or(0, |x| x.seq_b as usize + 1);
    let d = dumps(lines);
    let (start, end) = (
        dump_of(&d, &ok[0]).start_ms,
        dump_of(&d, &ok[ok.len() - 1]).end_ms,
    );
    let token = s.cloud.token();
    let pl = s.cloud.app_get(
        &format!(
            "/v1/devices/{}/channels/0/playlist.m3u8?start_ms={start}&end_ms={}",
            s.device,
            end - 1
        ),
        Some(&token),
    );
    assert_eq!(pl.status, 200, "{}", pl.text());
    let uris: Vec<String> = pl
        .text()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    assert_eq!(uris.len(), ok.len(), "{}", pl.text());
    let mut ts = Vec::new();
    for u in &uris {
        let a = s.cloud.app_get(u, None);
        assert_eq!(a.status, 200, "{u}");
        ts.extend_from_slice(&a.body);
    }
    let cloud_ts = s.dir.join("cloud.ts");
    std::fs::write(&cloud_ts, &ts).expect("writing cloud.ts");
    let got = framemd5::video_hashes(&["-i".into(), p(&cloud_ts)]);
    let want = source_hashes(s, frames);
    framemd5::compare("cloud playlist vs pushed frames", &want, &got)
        .unwrap_or_else(|e| panic!("{e}"));
    // The AAC pushed alongside is there too.
    let probe = tools::ffprobe_json(["-v", "error", "-show_streams", "-of", "json", &p(&cloud_ts)]);
    let streams = probe["streams"].as_array().cloned().unwrap_or_default();
    assert!(
        streams.iter().any(|x| x["codec_name"] == "aac"),
        "no AAC stream: {probe}"
    );
}

#[test]
fn event_plan_from_c_pre_records_and_reports_parallel_events_1_and_32_finished_with_pictures() {
    let mut s = setup("libivcs_events");
    s.plan("event", "7");
    let m = media();
    let pic = jpeg(&s.dir);
    let lines = run_flow(
        &mut s,
        &["events".into(), p(&m.file), p(&pic)],
        |what, _| panic!("unexpected NEED {what}"),
    );
    assert!(lines.iter().any(|l| l == "events ok"), "{lines:?}");
    let call_ms: u64 = lines
        .iter()
        .find_map(|l| l.strip_prefix("EVENT1_CALL_MS "))
        .and_then(|v| v.parse().ok())
        .expect("EVENT1_CALL_MS");
    let token = s.cloud.token();
    let events = s.events(&token);
    let jpeg_bytes = std::fs::read(&pic).expect("the JPEG");
    for id in [1, 32] {
        let e = events
            .iter()
            .find(|e| e["event_id"] == id)
            .unwrap_or_else(|| panic!("no event {id} in {events:?}"));
        assert_eq!(e["status"], "finished", "{e}");
        let pid = e["picture_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no picture: {e}"));
        let a = s.cloud.app_get(
            &format!("/v1/devices/{}/pictures/{pid}", s.device),
            Some(&token),
        );
        assert_eq!(a.status, 200, "{}", a.text());
        assert!(
            a.body == jpeg_bytes,
            "event {id}: the stored picture is the captured JPEG"
        );
    }
    assert_eq!(events[0]["info"], "motion");
    // Pre-record: the video starts 4 s before the call (relative
    // stream_start_time_s = 4), at the last IDR at or before that instant:
    // up to one GOP (2 s) earlier, plus the second the time is rounded to.
    let tl = s.cloud.app_get(
        &format!(
            "/v1/devices/{}/channels/0/timeline?start_ms={}&end_ms={}",
            s.device,
            call_ms - 60_000,
            call_ms + 60_000
        ),
        Some(&token),
    );
    assert_eq!(tl.status, 200, "{}", tl.text());
    let spans = tl.json()["spans"].as_array().cloned().unwrap_or_default();
    let first = spans
        .first()
        .unwrap_or_else(|| panic!("no video: {}", tl.text()));
    let start = first["start_ms"].as_u64().expect("start_ms");
    let lead = call_ms as i64 - start as i64;
    assert!(
        (3_000..=7_500).contains(&lead),
        "video starts {lead} ms before the event call (want 4 s, ±1 GOP): {}",
        tl.text()
    );
}

#[test]
fn no_plan_is_607_and_a_plan_ending_mid_stream_stops_push_then_607() {
    let mut s = setup("libivcs_noplan");
    let m = media();
    let lines = run_flow(
        &mut s,
        &["noplan".into(), p(&m.file)],
        |what, s| match what {
            "plan full-time" => s.plan("full-time", "7"),
            "plan none" => s.plan("none", "0"),
            _ => panic!("unexpected NEED {what}"),
        },
    );
    assert!(lines.iter().any(|l| l == "noplan ok"), "{lines:?}");
    let dir = s.dir.clone();
    // Acknowledged means stored (no dump here: checked by length).
    let token = s.cloud.token();
    let ok: Vec<Slice> = slices(&lines).into_iter().filter(|x| x.ok).collect();
    assert!(!ok.is_empty());
    let tl = s.cloud.app_get(
        &format!(
            "/v1/devices/{}/channels/0/timeline?start_ms={}&end_ms={}",
            s.device,
            ok[0].utc_a * 1000,
            (ok[ok.len() - 1].utc_b + 1) * 1000
        ),
        Some(&token),
    );
    assert_eq!(tl.status, 200, "{}", tl.text());
    let segs: u64 = tl.json()["spans"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["segments"].as_u64()).sum())
        .unwrap_or(0);
    assert_eq!(
        segs as usize,
        ok.len(),
        "{} in {}",
        tl.text(),
        dir.display()
    );
}

#[test]
fn cloud_killed_mid_upload_loses_nothing_acknowledged_and_backup_recovers_from_the_dump() {
    let mut s = setup("libivcs_killed");
    s.plan("full-time", "7");
    let m = media();
    let dump_dir = s.dir.join("dumps");
    std::fs::create_dir_all(&dump_dir).expect("dump dir");
    let lines = run_flow(
        &mut s,
        &["killed".into(), p(&m.file), p(&dump_dir)],
        |what, s| match what {
            "kill" => s.cloud.kill9(),
            "restart" => s.cloud.restart(),
            _ => panic!("unexpected NEED {what}"),
        },
    );
    assert!(lines.iter().any(|l| l == "killed ok"), "{lines:?}");
    // Every segment firmware saw acknowledged is in the cloud, whole.
    let ok = acknowledged_segments_are_stored(&s, &lines, &dump_dir);
    assert!(!ok.is_empty());
    // The failed segments came back through the backup path, byte-exact,
    // marked as backups.
    let token = s.cloud.token();
    let backed: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("BACKUP_OK "))
        .collect();
    assert!(!backed.is_empty());
    for name in backed {
        let id = segment_id(name);
        let bytes = s.segment(&token, id);
        let file = std::fs::read(dump_dir.join(name)).expect("the dump file");
        let differs = bytes.iter().zip(&file).position(|(a, b)| a != b);
        assert!(
            bytes == file,
            "{name}: the cloud has {} bytes, the dump {} (first difference at {differs:?}); row {:?}; output:\n{}",
            bytes.len(),
            file.len(),
            s.segment_row(id),
            lines.join("\n")
        );
        let (backup, state) = s.segment_row(id);
        assert!(backup, "{name} is marked as a backup");
        assert_eq!(state, "Complete");
    }
}

/// Watermarks under a bandwidth cap: the library reaches the cloud through
/// a shaping proxy; capped far below the stream's rate the backlog grows
/// through LOW/WARN/HIGH to an overflow; uncapped it drains and LOW is
/// reported again.
#[test]
fn a_bandwidth_cap_raises_low_warn_high_and_draining_reports_low() {
    let mut s = setup("libivcs_marks");
    s.plan("full-time", "7");
    let m = media();
    let shaper = s.through_shaper();
    let lines = run_flow(
        &mut s,
        &["watermarks".into(), p(&m.file)],
        |what, _| match what {
            // 16 KB/s: a 128 kbit/s uplink under a stream pushed as fast
            // as the library takes it.
            "cap" => shaper.set_rate(Some(16 << 10)),
            "uncap" => shaper.set_rate(None),
            _ => panic!("unexpected NEED {what}"),
        },
    );
    assert!(lines.iter().any(|l| l == "watermarks ok"), "{lines:?}");
}

// ---- live engine update: ivcs_host_engine_update mid-stream --------------------

/// Runs `ivcs` (the CLI from dist or `IVCS_BIN`).
fn ivcs_cli(args: &[&str]) -> tools::Captured {
    tools::run(ivcs_tests::cli::bin(), args).expect_success()
}

/// Signed artifacts of the shipped engine (`dist/engine/engine.cwasm`):
/// a good one, the bare `.cwasm`, one with a payload byte flipped, one
/// signed by a key the device does not trust; and the trusted keyring.
struct Artifacts {
    keys: PathBuf,
    good: PathBuf,
    unsigned: PathBuf,
    tampered: PathBuf,
    other_key: PathBuf,
}

fn artifacts(dir: &Path) -> Artifacts {
    let cwasm = dist().join("engine/engine.cwasm");
    assert!(
        cwasm.is_file(),
        "{} is missing: run `make dist`",
        cwasm.display()
    );
    let (key, other) = (dir.join("release.key"), dir.join("other.key"));
    for k in [&key, &other] {
        ivcs_cli(&["engine", "keygen", "--out", &p(k)]);
    }
    let good = dir.join("engine.cwasm.signed");
    ivcs_tests::cli::sign_engine(&key, &cwasm, &good);
    let other_key = dir.join("engine.other.signed");
    ivcs_tests::cli::sign_engine(&other, &cwasm, &other_key);
    let mut bytes = std::fs::read(&good).expect("the signed engine");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    let tampered = dir.join("engine.tampered.signed");
    std::fs::write(&tampered, bytes).expect("writing the tampered engine");
    Artifacts {
        keys: PathBuf::from(format!("{}.pub", p(&key))),
        good,
        unsigned: cwasm,
        tampered,
        other_key,
    }
}

#[test]
fn engine_update_mid_stream_refuses_bad_artifacts_then_swaps_without_refusing_a_push() {
    let mut s = setup("libivcs_swap");
    s.plan("full-time", "7");
    let m = media();
    let dump_dir = s.dir.join("dumps");
    std::fs::create_dir_all(&dump_dir).expect("dump dir");
    let a = artifacts(&s.dir);
    let lines = run_flow(
        &mut s,
        &[
            "swap".into(),
            p(&m.file),
            p(&dump_dir),
            p(&a.keys),
            p(&a.good),
            p(&a.unsigned),
            p(&a.tampered),
            p(&a.other_key),
        ],
        |what, _| panic!("unexpected NEED {what}"),
    );
    // The measured numbers (docs/design/hot-swap.md, "Measured").
    #[allow(clippy::print_stderr)]
    for l in lines
        .iter()
        .filter(|l| l.starts_with("SWAP") || l.starts_with("REFUSED") || l.starts_with("PUSHES"))
    {
        eprintln!("{l}");
    }
    assert!(lines.iter().any(|l| l == "swap ok"), "{lines:?}");
    // Acknowledged segments are stored byte for byte (the one open at the
    // swap was finished by the new engine) and the recording has no gap
    // and no duplicate across the swap: frame-exact in ffmpeg.
    let ok = acknowledged_segments_are_stored(&s, &lines, &dump_dir);
    assert!(ok.len() >= 4, "{ok:?}");
    recording_is_continuous_and_frame_exact(&s, &lines, &ok);
    // The events open at the swap are in the cloud once each, finished.
    let events = s.events(&s.cloud.token());
    for id in [1, 7] {
        let mine: Vec<_> = events.iter().filter(|e| e["event_id"] == id).collect();
        assert_eq!(mine.len(), 1, "event {id} in {events:?}");
        assert_eq!(mine[0]["status"], "finished", "{}", mine[0]);
    }
}

// ---- hostile engines: refused before anything stops, or contained ---------------
// (docs/design/hot-swap.md, "What is tested"; the engines are
// tests/hostile-engine, built by `make hostile-engines`)

/// `target/hostile/KIND.cwasm`: the real engine turned hostile one way.
fn hostile(kind: &str) -> PathBuf {
    let f = workspace_root().join(format!("target/hostile/{kind}.cwasm"));
    assert!(
        f.is_file(),
        "{} is missing: run `make hostile-engines`",
        f.display()
    );
    f
}

/// A release key and its keyring file in `dir`.
fn release_key(dir: &Path) -> (PathBuf, PathBuf) {
    let key = dir.join("release.key");
    if !key.is_file() {
        ivcs_cli(&["engine", "keygen", "--out", &p(&key)]);
    }
    let keys = PathBuf::from(format!("{}.pub", p(&key)));
    (key, keys)
}

/// `kind` signed with `key` into `dir`.
fn signed_hostile(dir: &Path, key: &Path, kind: &str) -> PathBuf {
    let out = dir.join(format!("{kind}.signed"));
    ivcs_tests::cli::sign_engine(key, &hostile(kind), &out);
    out
}

/// The library's log lines the C program printed (`LOG level message`).
fn log_lines(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("LOG "))
        .map(|l| l.split_once(' ').map_or(l, |(_, m)| m))
        .collect()
}

#[test]
fn hostile_updates_are_refused_before_anything_stops() {
    let mut s = setup("libivcs_refuse");
    s.plan("full-time", "7");
    let m = media();
    let (key, keys) = release_key(&s.dir);
    // Signed by the vendor, but for another contract major (check 9).
    let wrong_contract = signed_hostile(&s.dir, &key, "wrong-contract");
    // Tampered: one payload byte of a signed hostile engine flipped.
    let mut bytes = std::fs::read(signed_hostile(&s.dir, &key, "trap")).expect("signed");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    let tampered = s.dir.join("trap.tampered.signed");
    std::fs::write(&tampered, bytes).expect("writing");
    // Unsigned: the bare precompiled hostile engine.
    let unsigned = hostile("loop-in-tick");
    // Another world, sealed with a manifest that claims this host's
    // contract (a signer that did not ask the engine): only instantiating
    // it tells, and that happens before anything stops.
    let other_world = s.dir.join("other-world.signed");
    {
        use ivcs_host::artifact::{self, ArtifactKind, HostProfile, Manifest, SigningKey};
        let host = HostProfile::current().expect("host profile");
        let sk = SigningKey::from_pem(&std::fs::read_to_string(&key).expect("key"))
            .expect("the release key");
        let manifest = Manifest {
            engine_version: "other-world".into(),
            contract: ivcs_host::runtime::HOST_CONTRACT.into(),
            kind: ArtifactKind::Precompiled,
            target: host.target,
            wasmtime: host.wasmtime,
            config_hash: host.config_hash,
            payload_sha256: String::new(),
            payload_len: 0,
            key_id: String::new(),
            signed_at: None,
        };
        let payload = std::fs::read(hostile("other-world")).expect("other-world.cwasm");
        let art = artifact::seal(manifest, &payload, &sk).expect("sealing");
        std::fs::write(&other_world, art).expect("writing");
    }
    let dump_dir = s.dir.join("dumps");
    std::fs::create_dir_all(&dump_dir).expect("dump dir");
    for (what, file, want, log) in [
        ("wrong contract", &wrong_contract, "-602", "contract"),
        ("tampered", &tampered, "-602", "untrusted"),
        ("unsigned", &unsigned, "-602", "malformed"),
        (
            "other world",
            &other_world,
            "-602",
            "not an engine of this contract",
        ),
    ] {
        let lines = run_flow(
            &mut s,
            &[
                "refuse".into(),
                p(&m.file),
                p(&dump_dir),
                p(&keys),
                p(file),
                want.into(),
            ],
            |what, _| panic!("unexpected NEED {what}"),
        );
        assert!(lines.iter().any(|l| l == "refuse ok"), "{what}: {lines:?}");
        let logs = log_lines(&lines);
        assert!(
            logs.iter()
                .any(|l| l.contains("refused") && l.contains(log)),
            "{what}: no refusal mentioning {log:?} in the log: {logs:?}"
        );
        #[allow(clippy::print_stderr)]
        for l in lines.iter().filter(|l| l.starts_with("REFUSED")) {
            eprintln!("{what}: {l}");
        }
    }
}

/// Swaps to a hostile engine mid-stream (C scenario `contain`, extra
/// environment `env`) and checks containment: the update is taken,
/// failures restart it with a notify, probation rolls back with a reason
/// containing `reason`, pushes keep being answered and the previous engine
/// records on. Returns the program's lines.
fn contained(name: &str, kind: &str, env: &[(&str, &str)], reason: &str) -> Vec<String> {
    let mut s = setup(name);
    s.plan("full-time", "7");
    let m = media();
    let (key, keys) = release_key(&s.dir);
    let artifact = signed_hostile(&s.dir, &key, kind);
    let dump_dir = s.dir.join("dumps");
    std::fs::create_dir_all(&dump_dir).expect("dump dir");
    let args = [
        "contain".into(),
        p(&m.file),
        p(&dump_dir),
        p(&keys),
        p(&artifact),
    ];
    let (lines, status, stderr) = run_flow_status(&mut s, &args, env, |what, _| {
        panic!("unexpected NEED {what}")
    });
    assert!(
        status.success() && lines.iter().any(|l| l == "contain ok"),
        "{kind} ({status}):\n{}\n--- stderr ---\n{stderr}",
        lines.join("\n")
    );
    let logs = log_lines(&lines);
    let rollback = logs
        .iter()
        .find(|l| l.contains("rolling back to the previous engine"))
        .unwrap_or_else(|| panic!("{kind}: no rollback in the log: {logs:?}"));
    assert!(
        rollback.contains(kind) && rollback.contains(reason),
        "{kind}: rollback for another reason: {rollback}"
    );
    #[allow(clippy::print_stderr)]
    for l in lines.iter().filter(|l| l.starts_with("CONTAIN")) {
        eprintln!("{kind}: {l}; {rollback}");
    }
    // Acknowledged segments are stored byte for byte, none twice.
    let mut ok = acknowledged_segments_are_stored(&s, &lines, &dump_dir);
    ok.sort_by_key(|x| x.seq_a);
    for w in ok.windows(2) {
        assert!(w[1].seq_a > w[0].seq_b, "overlapping segments: {w:?}");
    }
    lines
}

#[test]
fn an_engine_that_loops_forever_is_interrupted_and_rolled_back_after_two_overruns() {
    contained(
        "libivcs_hostile_loop",
        "loop-in-tick",
        &[("IVCS_CALL_DEADLINE_MS", "500")],
        "overran the call deadline 2 times",
    );
}

#[test]
fn an_engine_that_exhausts_its_memory_is_contained_and_rolled_back() {
    contained(
        "libivcs_hostile_memory",
        "memory-bomb",
        &[],
        "trapped 3 times",
    );
}

#[test]
fn an_engine_that_traps_is_restarted_then_rolled_back_after_three_traps() {
    contained("libivcs_hostile_trap", "trap", &[], "trapped 3 times");
}

#[test]
fn an_engine_whose_requests_the_cloud_refuses_is_rolled_back() {
    contained(
        "libivcs_hostile_uploads",
        "bad-credentials",
        &[],
        "credentials refused by the cloud",
    );
}

// ---- power loss and start-up fallback --------------------------------------------

/// Which engine a `start` run came up on: the version in its
/// "engine VERSION started" log line (the first one).
fn engine_started(lines: &[String]) -> String {
    log_lines(lines)
        .iter()
        .find_map(|l| {
            l.strip_prefix("engine ")
                .and_then(|r| r.strip_suffix(" started"))
        })
        .unwrap_or_else(|| panic!("no engine started: {lines:?}"))
        .to_string()
}

/// Runs the `start` scenario on the engine file `file`; returns the
/// version of the engine it recorded with.
fn start_on(s: &mut Setup, file: &Path, keys: &Path) -> (String, Vec<String>) {
    let m = media();
    let (lines, status, stderr) = run_flow_status(
        s,
        &["start".into(), p(&m.file), p(keys)],
        &[("IVCS_ENGINE", &p(file)), ("IVCS_LOG_LEVEL", "info")],
        |what, _| panic!("unexpected NEED {what}"),
    );
    assert!(
        status.success() && lines.iter().any(|l| l == "start ok"),
        "start on {} ({status}):\n{}\n--- stderr ---\n{stderr}",
        file.display(),
        lines.join("\n")
    );
    (engine_started(&lines), lines)
}

#[test]
fn power_loss_at_every_step_of_persisting_an_update_restarts_on_a_complete_engine() {
    use std::os::unix::process::ExitStatusExt;
    let mut s = setup("libivcs_powerloss");
    s.plan("full-time", "7");
    let m = media();
    let (key, keys) = release_key(&s.dir);
    let old = s.dir.join("shipped.signed");
    ivcs_tests::cli::sign_engine(&key, &dist().join("engine/engine.cwasm"), &old);
    let new = signed_hostile(&s.dir, &key, "passthrough");
    let (old_bytes, new_bytes) = (
        std::fs::read(&old).expect("old"),
        std::fs::read(&new).expect("new"),
    );
    // The steps of persist (libivcs/src/update.rs), in order, and which
    // engine a restart after a power loss there must come up on.
    for (step, want_new) in [
        ("last-good-tmp", false),
        ("last-good", false),
        ("marker", false),
        ("current-tmp", false),
        ("current", true),
        ("done", true),
    ] {
        let dir = s.dir.join(step);
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("engine.signed");
        std::fs::copy(&old, &file).expect("installing the shipped engine");
        let (lines, status, stderr) = run_flow_status(
            &mut s,
            &["powerloss".into(), p(&m.file), p(&keys), p(&new)],
            &[("IVCS_ENGINE", &p(&file)), ("IVCS_TEST_KILL_AT", step)],
            |what, _| panic!("unexpected NEED {what}"),
        );
        assert_eq!(
            status.signal(),
            Some(9),
            "{step}: not killed ({status}):\n{}\n--- stderr ---\n{stderr}",
            lines.join("\n")
        );
        assert!(lines.iter().any(|l| l == "UPDATING"), "{step}: {lines:?}");
        // The engine file is whole: the old artifact or the new one.
        let now = std::fs::read(&file).expect("the engine file");
        assert!(
            &now == if want_new { &new_bytes } else { &old_bytes },
            "{step}: the engine file is neither whole engine expected ({} bytes)",
            now.len()
        );
        // A fresh start comes up on it and records.
        let (version, lines) = start_on(&mut s, &file, &keys);
        assert_eq!(
            version.ends_with("-passthrough"),
            want_new,
            "{step}: started {version}"
        );
        // Killed after the marker: the update is on probation again.
        let resumed = log_lines(&lines)
            .iter()
            .any(|l| l.contains("had not passed probation"));
        let marked = !matches!(step, "last-good-tmp" | "last-good");
        assert_eq!(resumed, marked, "{step}: probation resumed {resumed}");
    }
}

#[test]
fn a_corrupt_or_tampered_engine_file_falls_back_to_the_last_good_one_at_start() {
    let mut s = setup("libivcs_fallback");
    s.plan("full-time", "7");
    let (key, keys) = release_key(&s.dir);
    let good = s.dir.join("engine.signed.last-good");
    ivcs_tests::cli::sign_engine(&key, &dist().join("engine/engine.cwasm"), &good);
    let file = s.dir.join("engine.signed");
    let signed = std::fs::read(signed_hostile(&s.dir, &key, "passthrough")).expect("signed");
    let mut tampered = signed.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    for (what, bytes) in [
        ("truncated", signed[..signed.len() / 2].to_vec()),
        ("tampered", tampered),
        ("not an engine", b"\0\0 corrupt flash page".to_vec()),
    ] {
        std::fs::write(&file, bytes).expect("writing the engine file");
        let (version, lines) = start_on(&mut s, &file, &keys);
        assert!(
            !version.ends_with("-passthrough"),
            "{what}: started {version}"
        );
        assert!(
            log_lines(&lines)
                .iter()
                .any(|l| l.contains("starting the last known good engine")),
            "{what}: {lines:?}"
        );
    }
}

// ---- live engine update delivered by the cloud ----------------------------------

/// `ivcs cloud engine ARGS` against the setup's cloud with an admin token.
fn engine_cmd(s: &Setup, token: &str, args: &[&str]) -> tools::Captured {
    let mut a = vec!["cloud", "engine"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["--url", &s.cloud.base, "--token", token]);
    ivcs_cli(&a)
}

/// One device's status line of a release, from the cloud's answer.
fn device_status(s: &Setup, token: &str, release: &str) -> serde_json::Value {
    let a = s
        .cloud
        .app_get(&format!("/v1/engine/releases/{release}"), Some(token));
    assert_eq!(a.status, 200, "{}", a.text());
    let v = a.json();
    v["devices"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["device"] == s.device.as_str()))
        .cloned()
        .unwrap_or_else(|| panic!("no status of {} in {v}", s.device))
}

#[test]
fn an_engine_published_to_a_device_is_downloaded_verified_and_swapped_while_it_pushes() {
    let mut s = setup("libivcs_deliver");
    s.plan("full-time", "7");
    let m = media();
    let dump_dir = s.dir.join("dumps");
    std::fs::create_dir_all(&dump_dir).expect("dump dir");
    let a = artifacts(&s.dir);
    let token = s.cloud.admin_token();
    let t0 = std::cell::Cell::new(std::time::Instant::now());
    let lines = run_flow(
        &mut s,
        &["deliver".into(), p(&m.file), p(&dump_dir), p(&a.keys)],
        |what, s| {
            let device = s.device.clone();
            match what {
                "publish-other" => {
                    engine_cmd(
                        s,
                        &token,
                        &[
                            "publish",
                            &p(&a.other_key),
                            "--devices",
                            &device,
                            "--release",
                            "other",
                        ],
                    );
                }
                "check-refused" => {
                    let st = device_status(s, &token, "other");
                    assert_eq!(st["status"], "refused", "{st}");
                    assert_eq!(st["kind"], "untrusted", "{st}");
                    assert!(
                        st["message"].as_str().unwrap_or("").contains("unknown key"),
                        "{st}"
                    );
                }
                "publish-good" => {
                    t0.set(std::time::Instant::now());
                    engine_cmd(
                        s,
                        &token,
                        &[
                            "publish",
                            &p(&a.good),
                            "--devices",
                            &device,
                            "--release",
                            "good",
                        ],
                    );
                }
                "check-swapped" => {
                    #[allow(clippy::print_stderr)]
                    {
                        eprintln!(
                            "DELIVER publish -> swapped reported: {} ms",
                            t0.get().elapsed().as_millis()
                        );
                    }
                    let st = device_status(s, &token, "good");
                    assert_eq!(st["status"], "swapped", "{st}");
                    // Final: not offered again.
                    let view = s
                        .cloud
                        .app_get("/v1/engine/releases/good", Some(&token))
                        .json();
                    assert_eq!(view["summary"], serde_json::json!({ "swapped": 1 }));
                }
                other => panic!("unexpected NEED {other}"),
            }
        },
    );
    #[allow(clippy::print_stderr)]
    for l in lines.iter().filter(|l| l.starts_with("PUSHES")) {
        eprintln!("{l}");
    }
    assert!(lines.iter().any(|l| l == "deliver ok"), "{lines:?}");
    let mut ok = acknowledged_segments_are_stored(&s, &lines, &dump_dir);
    ok.sort_by_key(|x| x.seq_a);
    for w in ok.windows(2) {
        assert!(w[1].seq_a > w[0].seq_b, "overlapping segments: {w:?}");
    }
}

// ---- firmware habits: tests/c/firmware_habits.c calls libivcs as public firmware does ----

/// Runs `tests/c/firmware_habits.c` under ASan; panics unless it succeeds
/// with no sanitizer report.
fn run_habits(s: &mut Setup, args: &[String], act: impl FnMut(&str, &mut Setup)) -> Vec<String> {
    let program = compile("firmware_habits", Link::StaticAsan);
    let (lines, status, stderr) = run_program(s, &program, args, &[], act);
    assert!(
        status.success() && !stderr.contains("Sanitizer") && !stderr.contains("runtime error"),
        "{args:?} failed ({status})\n--- stdout ---\n{}\n--- stderr ---\n{stderr}",
        lines.join("\n")
    );
    lines
}

/// The number after `KEY ` in the program's output.
fn printed(lines: &[String], key: &str) -> u64 {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} line in {lines:#?}"))
}

/// The cloud's spans of channel 0 in `[a, b)` as (start ms, end ms).
fn spans(s: &Setup, a: u64, b: u64) -> Vec<(u64, u64)> {
    channel0(s, &format!("timeline?start_ms={a}&end_ms={b}")).json()["spans"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|x| {
            (
                x["start_ms"].as_u64().unwrap_or(0),
                x["end_ms"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// Video frame hashes of the cloud's MP4 export of `[a, b)`.
fn exported(s: &Setup, a: u64, b: u64) -> Vec<String> {
    let e = channel0(s, &format!("export.mp4?start_ms={a}&end_ms={b}"));
    let f = s.dir.join("export.mp4");
    std::fs::write(&f, &e.body).expect("writing export.mp4");
    framemd5::video_hashes(&["-i".into(), p(&f)])
}

/// The hashes of the first `n` video frames of the flow media (looped).
fn source_hashes(s: &Setup, n: usize) -> Vec<String> {
    let m = media();
    let src: Vec<u8> = (0..n)
        .flat_map(|k| m.video[k % m.video.len()].1.clone())
        .collect();
    let f = s.dir.join("source.h264");
    std::fs::write(&f, src).expect("writing source.h264");
    framemd5::video_hashes(&["-f".into(), "h264".into(), "-i".into(), p(&f)])
}

#[test]
fn firmware_that_frees_its_own_pictures_never_gets_one_back_twice_under_asan() {
    let mut s = setup("habits_pictures");
    let pic = jpeg(&s.dir);
    let lines = run_habits(&mut s, &["pictures".into(), p(&pic)], |what, s| {
        assert_eq!(what, "plan-event");
        s.plan("event", "7");
    });
    assert!(lines.iter().any(|l| l == "pictures ok"), "{lines:#?}");
    // The copies were uploaded: the cloud has both direct reports' pictures.
    let events = s.events(&s.cloud.token());
    for id in [5, 6] {
        let e = events
            .iter()
            .find(|e| e["event_id"] == id)
            .unwrap_or_else(|| panic!("no event {id} in {events:?}"));
        assert!(e["picture_id"].is_string(), "{e}");
    }
    assert!(!events.iter().any(|e| e["event_id"] == 7), "{events:?}");
}

#[test]
fn exit_for_privacy_mode_loses_nothing_pushed_before_it() {
    let mut s = setup("habits_exit");
    s.plan("full-time", "7");
    let started = s.cloud.now_ms();
    let m = media();
    let mut sp = Vec::new();
    let lines = run_habits(&mut s, &["exit".into(), p(&m.file)], |what, s| {
        assert_eq!(what, "drained");
        // The library delivered what was pushed before exit, after exit
        // returned, while the program still ran.
        sp = spans(s, started - 60_000, s.cloud.now_ms() + 60_000);
    });
    assert!(lines.iter().any(|l| l == "exit ok"), "{lines:#?}");
    // Exit returned at once: it waited for no upload (a bound, not a
    // benchmark: its callback wait is 1 s).
    let exit_line = lines
        .iter()
        .find(|l| l.starts_with("EXIT "))
        .expect("EXIT line");
    let ms: u64 = exit_line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX);
    assert!(ms < 5_000, "{exit_line}");
    assert_eq!(sp.len(), 1, "{sp:?}");
    let (start, end) = sp[0];
    assert!(end - start >= 29_960, "{sp:?}");
    let got = exported(&s, start, start + 30_000);
    let want = source_hashes(&s, m.video.len());
    assert_eq!(got.len(), 750);
    framemd5::compare("export after exit vs pushed frames", &want, &got)
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn pre_record_replayed_by_firmware_lands_at_its_capture_times() {
    let mut s = setup("habits_replay");
    s.plan("event", "7");
    let m = media();
    let lines = run_habits(&mut s, &["replay".into(), p(&m.file)], |what, _| {
        assert_eq!(what, "drained");
    });
    assert!(lines.iter().any(|l| l == "replay ok"), "{lines:#?}");
    let (alarm, stop) = (printed(&lines, "ALARM "), printed(&lines, "STOP "));
    // The video starts 4 s before the alarm (the first replayed IDR) and
    // reaches the stop: every frame captured in [alarm - 4 s, stop).
    let sp = spans(&s, alarm - 60_000, stop + 60_000);
    assert_eq!(sp.len(), 1, "{sp:?}");
    let (start, end) = sp[0];
    assert!(
        start.abs_diff(alarm - 4_000) < 40,
        "video from {start}, alarm at {alarm}"
    );
    assert!(end.abs_diff(stop) <= 40, "video to {end}, stop at {stop}");
    let got = exported(&s, alarm - 4_000, stop);
    let captured = usize::try_from((stop - (alarm - 4_000)) / 40).unwrap_or(0);
    assert!(
        got.len().abs_diff(captured) <= 1,
        "{} frames, {captured} captured",
        got.len()
    );
    let want = source_hashes(&s, got.len());
    framemd5::compare("export of the event window vs replayed frames", &want, &got)
        .unwrap_or_else(|e| panic!("{e}"));
}

// ---- real stream habits: tests/c/firmware_habits.c `stream` pushes them ----------

/// Audio a habit stream carries: a raw G.711/PCM fixture cut into packs of
/// `samples` samples (per channel), as cameras push it.
#[derive(Clone, Copy)]
struct Packs {
    fixture: &'static fixtures::AudioFixture,
    samples: usize,
}

impl Packs {
    /// The C program's AUDIO argument.
    fn codec(&self) -> &'static str {
        match self.fixture.format {
            fixtures::AudioFormat::G711a => "g711a",
            fixtures::AudioFormat::G711u => "g711u",
            fixtures::AudioFormat::Pcm16 => "pcm16",
            fixtures::AudioFormat::Aac => "aac",
        }
    }
}

/// A stream as a camera with a habit pushes it: the frames file, and what
/// the checks compare the cloud's copy with.
struct HabitStream {
    file: PathBuf,
    /// Video access units in push order.
    video: Vec<(bool, Vec<u8>)>,
    /// Audio samples pushed (per channel).
    audio_samples: usize,
}

/// The first `frames` pictures of `v` (25 fps) and, with `packs`, the
/// audio of the same span, interleaved in capture order and stamped by
/// `stamp` (capture ms from the first frame → the PTS firmware pushes).
fn habit_stream(
    s: &Setup,
    v: &fixtures::VideoFixture,
    frames: usize,
    packs: Option<Packs>,
    stamp: fn(u64) -> u64,
) -> HabitStream {
    let h265 = v.codec == ivcs_tests::VideoCodec::H265;
    let mut video = frames_file::video_units(&v.path(), h265);
    video.truncate(frames);
    let fps = u64::from(v.fps);
    let span_ms = video.len() as u64 * 1000 / fps;
    let mut all: Vec<(u64, frames_file::Frame)> = video
        .iter()
        .enumerate()
        .map(|(n, (idr, au))| {
            let ms = n as u64 * 1000 / fps;
            let f = frames_file::Frame {
                kind: 1,
                frame_type: u8::from(!idr),
                pts_ms: stamp(ms),
                data: au.clone(),
            };
            (ms, f)
        })
        .collect();
    let mut audio_samples = 0;
    if let Some(pk) = packs {
        let a = pk.fixture;
        let raw = std::fs::read(a.path()).expect("the audio fixture");
        let width = if a.format == fixtures::AudioFormat::Pcm16 {
            2
        } else {
            1
        };
        let pack = pk.samples * width * a.channels as usize;
        for (k, bytes) in raw.chunks_exact(pack).enumerate() {
            let ms = (k * pk.samples) as u64 * 1000 / u64::from(a.sample_rate);
            if ms >= span_ms {
                break;
            }
            audio_samples += pk.samples;
            let f = frames_file::Frame {
                kind: 0,
                frame_type: 0,
                pts_ms: stamp(ms),
                data: bytes.to_vec(),
            };
            all.push((ms, f));
        }
    }
    // Capture order; at equal times video first (what the flows do).
    all.sort_by_key(|(ms, f)| (*ms, 1 - f.kind));
    let frames: Vec<frames_file::Frame> = all.into_iter().map(|(_, f)| f).collect();
    let file = s.dir.join("habit.frames");
    frames_file::write(&file, &frames);
    HabitStream {
        file,
        video,
        audio_samples,
    }
}

/// A segment of the cloud's playlist, fetched.
struct Stored {
    file: PathBuf,
    secs: f64,
    discontinuity: bool,
}

/// The cloud's HLS playlist of channel 0 over `[a, b)` and its segments,
/// each fetched into its own file.
fn stored_segments(s: &Setup, a: u64, b: u64) -> Vec<Stored> {
    let pl = channel0(s, &format!("playlist.m3u8?start_ms={a}&end_ms={b}")).text();
    let (mut out, mut secs, mut disc) = (Vec::new(), 0.0, false);
    for line in pl.lines() {
        if line == "#EXT-X-DISCONTINUITY" {
            disc = true;
        } else if let Some(d) = line.strip_prefix("#EXTINF:") {
            secs = d.trim_end_matches(',').parse().expect("EXTINF seconds");
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let got = s.cloud.app_get(line, None);
            assert_eq!(got.status, 200, "{line}");
            let ext = if got.body.get(4..8) == Some(b"ftyp") {
                "mp4"
            } else {
                "ts"
            };
            let file = s.dir.join(format!("stored_{}.{ext}", out.len()));
            std::fs::write(&file, &got.body).expect("writing a stored segment");
            out.push(Stored {
                file,
                secs,
                discontinuity: std::mem::take(&mut disc),
            });
        }
    }
    assert!(!out.is_empty(), "no segments in\n{pl}");
    out
}

/// Pushes `h` through libivcs from C (`stream`, full-time, `pace` x real
/// time, `container` segments), exit and drain; returns the program's
/// lines and the cloud's segments of the recording.
fn push_habit(
    s: &mut Setup,
    h: &HabitStream,
    v: &fixtures::VideoFixture,
    packs: Option<Packs>,
    pace: &str,
    container: &str,
) -> (Vec<String>, Vec<Stored>) {
    s.plan("full-time", "7");
    let from = s.cloud.now_ms() - 60_000;
    let (audio, rate, channels, samples) = match packs {
        Some(pk) => (
            pk.codec(),
            pk.fixture.sample_rate.to_string(),
            pk.fixture.channels.to_string(),
            pk.samples.to_string(),
        ),
        None => ("none", "0".into(), "0".into(), "0".into()),
    };
    let codec = match v.codec {
        ivcs_tests::VideoCodec::H264 => "h264",
        ivcs_tests::VideoCodec::H265 => "h265",
    };
    let args: Vec<String> = [
        "stream",
        &p(&h.file),
        codec,
        &v.width.to_string(),
        &v.height.to_string(),
        audio,
        &rate,
        &channels,
        &samples,
        pace,
        container,
    ]
    .map(String::from)
    .to_vec();
    let lines = run_habits(s, &args, |what, _| assert_eq!(what, "drained"));
    assert!(lines.iter().any(|l| l == "stream ok"), "{lines:#?}");
    let stored = stored_segments(s, from, s.cloud.now_ms() + 120_000);
    (lines, stored)
}

/// The `PUSHED` counts of the C camera: (video refused, audio refused).
fn refused(lines: &[String]) -> (u64, u64) {
    let l = lines
        .iter()
        .find(|l| l.starts_with("PUSHED "))
        .unwrap_or_else(|| panic!("no PUSHED line in {lines:#?}"));
    let n = |k: &str| -> u64 {
        l.split_whitespace()
            .find_map(|f| f.strip_prefix(k)?.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {l}"))
    };
    (n("video_refused="), n("audio_refused="))
}

/// Every stored segment decodes on its own, and together they are the
/// pushed pictures in order, frame-exact. `runs` splits the source where
/// it restarts with new parameter sets (decoded separately, as a player
/// given one segment at a time sees them). Each segment lasts at most the
/// 10 s target plus a GOP.
fn stored_frames_are_the_pushed_ones(
    s: &Setup,
    stored: &[Stored],
    h: &HabitStream,
    v: &fixtures::VideoFixture,
    runs: &[usize],
) {
    let mut got = Vec::new();
    for st in stored {
        let max = 10.0 + v.gop_ms() as f64 / 1000.0;
        assert!(
            st.secs > 0.0 && st.secs <= max + 0.001,
            "{}: {} s (target 10 s + GOP)",
            st.file.display(),
            st.secs
        );
        got.extend(framemd5::video_hashes(&["-i".into(), p(&st.file)]));
    }
    let mut want = Vec::new();
    let mut bounds = vec![0];
    bounds.extend_from_slice(runs);
    bounds.push(h.video.len());
    for (k, w) in bounds.windows(2).enumerate() {
        let f = s.dir.join(format!("source_{k}"));
        let bytes: Vec<u8> = h.video[w[0]..w[1]]
            .iter()
            .flat_map(|(_, au)| au.clone())
            .collect();
        std::fs::write(&f, bytes).expect("writing the source");
        want.extend(framemd5::video_hashes(&[
            "-f".into(),
            v.codec.ffmpeg_format().into(),
            "-i".into(),
            p(&f),
        ]));
    }
    assert_eq!(want.len(), h.video.len(), "the source decodes whole");
    framemd5::compare("stored segments vs pushed frames", &want, &got)
        .unwrap_or_else(|e| panic!("{e}"));
}

/// The library's warnings and errors the C program printed.
fn warnings(lines: &[String]) -> Vec<&str> {
    log_lines(lines)
}

/// Pushes 12 s of 640x360 H.264 with `fixture`'s audio in packs of
/// `samples`, and checks that the stored AAC holds every pushed sample,
/// without a gap, as the pushed tone.
fn audio_packs_survive(name: &str, fixture: &'static fixtures::AudioFixture, samples: usize) {
    let mut s = setup(name);
    let v = &fixtures::H264_360P_GOP2_24S;
    let packs = Packs { fixture, samples };
    let h = habit_stream(&s, v, 300, Some(packs), |ms| 1000 + ms);
    let (lines, stored) = push_habit(&mut s, &h, v, Some(packs), "8", "ts");
    assert_eq!(refused(&lines), (0, 0), "{lines:#?}");
    stored_frames_are_the_pushed_ones(&s, &stored, &h, v, &[]);
    // The TS segments one after another: one AAC stream.
    let mut ts = Vec::new();
    for st in &stored {
        ts.extend(std::fs::read(&st.file).expect("a stored segment"));
    }
    let all = s.dir.join("stored.ts");
    std::fs::write(&all, ts).expect("writing stored.ts");
    let rate = fixture.sample_rate;
    let pcm = ivcs_tests::audio::decode_f32(&["-i".into(), p(&all)], &[]);
    let decoded = pcm.len();
    // AAC frames hold 1024 samples: the last one is padded.
    let pushed = h.audio_samples;
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "{name}: {pushed} samples pushed in packs of {samples}, {decoded} decoded ({} AAC frames)",
            decoded / 1024
        );
    }
    assert!(
        decoded >= pushed && decoded < pushed + 2 * 1024,
        "{decoded} samples decoded, {pushed} pushed"
    );
    // No gap: every AAC frame starts 1024 samples after the one before.
    let probe = tools::ffprobe_json([
        "-v",
        "error",
        "-select_streams",
        "a:0",
        "-show_entries",
        "packet=pts",
        "-of",
        "json",
        &p(&all),
    ]);
    let pts: Vec<i64> = probe["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .filter_map(|x| x["pts"].as_i64())
        .collect();
    let step = 1024 * 90_000 / i64::from(rate);
    for w in pts.windows(2) {
        assert!(
            (w[1] - w[0] - step).abs() <= 1,
            "audio gap or overlap: {} -> {} (want +{step})",
            w[0],
            w[1]
        );
    }
    assert_eq!(pts.len(), decoded / 1024, "one packet per AAC frame");
    let tone = ivcs_tests::audio::tone_fraction_windows(&pcm, 1, 0, rate, fixture.tones[0]);
    assert!(tone.unwrap_or(0.0) > 0.9, "tone {:?}", tone);
}

#[test]
fn g711a_in_160_sample_packs_is_repacked_to_aac_without_losing_a_sample() {
    audio_packs_survive("habit_g711a_160", &fixtures::G711A_8K, 160);
}

#[test]
fn g711u_in_320_sample_packs_is_repacked_to_aac_without_losing_a_sample() {
    audio_packs_survive("habit_g711u_320", &fixtures::G711U_8K, 320);
}

#[test]
fn pcm_in_160_sample_packs_is_repacked_to_aac_without_losing_a_sample() {
    audio_packs_survive("habit_pcm_160", &fixtures::PCM16_8K_MONO, 160);
}

#[test]
fn pcm_in_320_sample_packs_is_repacked_to_aac_without_losing_a_sample() {
    audio_packs_survive("habit_pcm_320", &fixtures::PCM16_8K_MONO, 320);
}

/// Pushes a whole habit fixture (video only) and checks it frame-exact.
fn habit_video_records_frame_exact(name: &str, habit: &fixtures::HabitFixture, container: &str) {
    let mut s = setup(name);
    let v = habit.video;
    let h = habit_stream(&s, v, v.frames as usize, None, |ms| 1000 + ms);
    let (lines, stored) = push_habit(&mut s, &h, v, None, "8", container);
    assert_eq!(refused(&lines), (0, 0), "{lines:#?}");
    stored_frames_are_the_pushed_ones(&s, &stored, &h, v, &[]);
}

#[test]
fn h264_with_aud_and_sei_in_every_access_unit_records_frame_exact() {
    habit_video_records_frame_exact("habit_aud_sei", &fixtures::AUD_SEI, "ts");
}

#[test]
fn h264_with_four_slices_per_picture_records_frame_exact() {
    habit_video_records_frame_exact("habit_h264_slices", &fixtures::H264_4SLICES, "ts");
}

#[test]
fn h265_with_four_slices_per_picture_records_frame_exact() {
    habit_video_records_frame_exact("habit_h265_slices", &fixtures::H265_4SLICES, "fmp4");
}

#[test]
fn a_resolution_change_mid_stream_starts_a_segment_with_new_parameters_and_a_discontinuity() {
    let fixtures::Habit::ResolutionChange { at, width, height } = fixtures::RES_CHANGE.habit else {
        panic!("the resolution-change fixture");
    };
    let v = fixtures::RES_CHANGE.video;
    for container in ["ts", "fmp4"] {
        let mut s = setup(&format!("habit_res_change_{container}"));
        let h = habit_stream(&s, v, v.frames as usize, None, |ms| 1000 + ms);
        let (lines, stored) = push_habit(&mut s, &h, v, None, "8", container);
        assert_eq!(refused(&lines), (0, 0), "{lines:#?}");
        // Both halves, each decoded as its own segments: frame-exact.
        stored_frames_are_the_pushed_ones(&s, &stored, &h, v, &[at as usize]);
        // Each segment has one size; the first at 720p follows a
        // discontinuity, and nothing else does.
        let mut frames = 0;
        for (k, st) in stored.iter().enumerate() {
            let j = tools::ffprobe_json([
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-count_frames",
                "-show_entries",
                "stream=width,height,nb_read_frames",
                "-of",
                "json",
                &p(&st.file),
            ]);
            let st0 = &j["streams"][0];
            let size = (st0["width"].as_u64(), st0["height"].as_u64());
            let want = if frames < at as usize {
                (Some(u64::from(v.width)), Some(u64::from(v.height)))
            } else {
                (Some(u64::from(width)), Some(u64::from(height)))
            };
            assert_eq!(size, want, "{container} segment {k}");
            assert_eq!(
                st.discontinuity,
                frames == at as usize,
                "{container} segment {k} (from frame {frames}): discontinuity"
            );
            frames += st0["nb_read_frames"]
                .as_str()
                .and_then(|n| n.parse::<usize>().ok())
                .expect("nb_read_frames");
        }
        assert_eq!(frames, v.frames as usize);
    }
}

/// A G.711 camera (160-sample packs) stamping with `stamp`, paced at real
/// time (a new run is dated by the clock); checks every frame is stored,
/// frame-exact, in sane segments, and that the library warned with
/// `warning`.
/// `runs`: recording runs the stream makes; each after the first is a
/// discontinuity in the playlist (its timestamps start again).
fn pts_habit(
    name: &str,
    stamp: fn(u64) -> u64,
    warning: &str,
    max_audio_refused: u64,
    runs: usize,
) {
    let mut s = setup(name);
    let v = &fixtures::H264_360P_GOP2_24S;
    let packs = Packs {
        fixture: &fixtures::G711A_8K,
        samples: 160,
    };
    let h = habit_stream(&s, v, 300, Some(packs), stamp);
    let (lines, stored) = push_habit(&mut s, &h, v, Some(packs), "1", "ts");
    let (video_refused, audio_refused) = refused(&lines);
    assert_eq!(video_refused, 0, "{lines:#?}");
    assert!(audio_refused <= max_audio_refused, "{lines:#?}");
    let warned = warnings(&lines);
    assert!(
        warned.iter().any(|l| l.contains(warning)),
        "no warning with {warning:?}: {warned:#?}"
    );
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "{name}: segments {:?} s; warnings {warned:?}",
            stored.iter().map(|x| x.secs).collect::<Vec<_>>()
        );
    }
    let disc = stored.iter().filter(|x| x.discontinuity).count();
    assert_eq!(disc + 1, runs, "discontinuities in the playlist");
    stored_frames_are_the_pushed_ones(&s, &stored, &h, v, &[]);
}

#[test]
fn pts_in_microseconds_are_recorded_as_milliseconds_with_a_warning() {
    // Two hours after boot, in µs: the audio pack between the first two
    // video frames is 20 "s" ahead and refused (the unit is decided at the
    // second video frame).
    pts_habit(
        "habit_pts_us",
        |ms| 7_200_000_000 + ms * 1000,
        "microseconds",
        1,
        1,
    );
}

#[test]
fn a_32_bit_pts_wrap_mid_gop_continues_the_recording_with_a_warning() {
    // A 32-bit millisecond counter 5.02 s before it wraps: mid-GOP, audio
    // first.
    pts_habit(
        "habit_pts_wrap",
        |ms| (ms + (1 << 32) - 5_020) % (1 << 32),
        "wrapped",
        0,
        1,
    );
}

#[test]
fn pts_going_back_to_zero_at_an_idr_starts_a_new_run_with_a_warning() {
    // The encoder restarts its clock at the IDR 6 s in.
    pts_habit(
        "habit_pts_reset",
        |ms| if ms < 6_000 { 500_000 + ms } else { ms - 6_000 },
        "new recording run",
        0,
        2,
    );
}

#[test]
fn pushes_right_after_init_on_an_event_plan_feed_the_pre_record_before_the_plan_is_known() {
    let mut s = setup("habit_early_push");
    s.plan("event", "7");
    let m = media();
    let shaper = s.through_shaper();
    // Nothing reaches the cloud until the program has pushed 3 s.
    shaper.set_rate(Some(0));
    let lines = run_habits(
        &mut s,
        &["early".into(), p(&m.file)],
        |what, _| match what {
            "release" => shaper.set_rate(None),
            "drained" => {}
            other => panic!("unexpected NEED {other}"),
        },
    );
    assert!(lines.iter().any(|l| l == "early ok"), "{lines:#?}");
    // The plan was not known while the first 3 s were pushed.
    let early: i64 = lines
        .iter()
        .find_map(|l| l.strip_prefix("EARLY_BALANCE ")?.parse().ok())
        .unwrap_or_else(|| panic!("no EARLY_BALANCE in {lines:#?}"));
    assert_eq!(early, -605, "the plan was not known yet: {lines:#?}");
    let (alarm, stop) = (printed(&lines, "ALARM "), printed(&lines, "STOP "));
    let events = s.events(&s.cloud.token());
    let e = events
        .iter()
        .find(|e| e["event_id"] == 1)
        .unwrap_or_else(|| panic!("no event 1 in {events:?}"));
    assert_eq!(e["status"], "finished", "{e}");
    // The video starts at the first IDR, pushed 4 s before the alarm (the
    // pre-record asked for 6 s): frame-exact from there to the stop.
    let sp = spans(&s, alarm - 60_000, stop + 60_000);
    assert_eq!(sp.len(), 1, "{sp:?}");
    let (start, end) = sp[0];
    assert!(
        start.abs_diff(alarm - 4_000) < 200,
        "video from {start}, alarm at {alarm}"
    );
    let got = exported(&s, start, end);
    assert!(got.len() >= 175, "{} frames", got.len());
    let want = source_hashes(&s, got.len());
    framemd5::compare("event export vs frames pushed from init on", &want, &got)
        .unwrap_or_else(|e| panic!("{e}"));
}
