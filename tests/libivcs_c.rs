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
use ivcs_tests::tools::{self, p};
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
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    static COMPILING: Mutex<()> = Mutex::new(());
    let dir = BUILT.get_or_init(|| scratch_dir("libivcs_c_bin")).clone();
    // Tests run in parallel: one compiles, the others wait for the file.
    let _guard = COMPILING.lock().unwrap_or_else(|e| e.into_inner());
    let out = dir.join(format!("libivcs_test_{link:?}").to_lowercase());
    if out.is_file() {
        return out;
    }
    let d = dist();
    let src = workspace_root().join("tests/c/libivcs_test.c");
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
        stdout
    }
}

#[test]
fn bad_input_is_refused_with_the_documented_codes_static_shared_and_asan() {
    let s = setup("libivcs_errors");
    for link in [Link::Static, Link::Shared, Link::StaticAsan] {
        let out = s.run(link, &["errors"]);
        assert!(out.contains("errors ok"), "{out}");
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

#[test]
fn direct_report_with_a_jpeg_works_without_a_plan_and_hands_the_picture_back_once() {
    let s = setup("libivcs_report");
    let pic = jpeg(&s.dir);
    let out = s.run(Link::StaticAsan, &["report", &p(&pic)]);
    assert!(out.contains("report ok"), "{out}");
    // The cloud has the event with its picture.
    let token = s.cloud.token();
    let now = s.cloud.now_ms();
    let ev = s.cloud.app_get(
        &format!(
            "/v1/devices/{}/channels/0/events?start_ms={}&end_ms={}",
            s.device,
            now - 3_600_000,
            now + 3_600_000
        ),
        Some(&token),
    );
    assert_eq!(ev.status, 200, "{}", ev.text());
    let events = ev.json()["events"].as_array().cloned().unwrap_or_default();
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
    let out = s.run(Link::StaticAsan, &["stress", "3"]);
    assert!(out.contains("stress ok"), "{out}");
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
    assert!(stdout.contains("picture_result_cb(0, err 0)"), "{stdout}");
    assert!(stdout.contains("iv_cs_exit: 0"), "{stdout}");
}
