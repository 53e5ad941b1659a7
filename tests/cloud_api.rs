//! The cloud service end to end: the real `ivcs cloud serve` binary over
//! real HTTP with real SQLite and the local object store, fed with segments
//! that `ivcs mux` produced from ffmpeg-generated media. Time is injected
//! through the service's clock file, never slept on.

use ivcs_tests::Container;
use ivcs_tests::check::{source_aac_hashes, source_video_hashes};
use ivcs_tests::cli::{Mux, START_UTC_MS};
use ivcs_tests::cloud::{Answer, Cloud, Device, admin};
use ivcs_tests::fixtures::{self, AAC_48K_MONO, H264_360P_GOP2_24S};
use ivcs_tests::index::{Index, Segment};
use ivcs_tests::paths::{files_under as walk, scratch_dir};
use ivcs_tests::{framemd5, tools};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Muxes the 24 s H.264 + AAC fixture into 4 s segments.
fn mux(name: &str, container: Container) -> (PathBuf, Index) {
    fixtures::dir();
    let out = scratch_dir(&format!("{name}-mux"));
    Mux::new(&H264_360P_GOP2_24S, Some(&AAC_48K_MONO), container).run_ok(&out);
    let index = Index::load(&out).expect("index.json");
    (out, index)
}

fn query(index: &Index, s: &Segment, channel: u32, event: bool) -> String {
    format!(
        "channel={channel}&container={}&codec={}&utc_start_ms={}&pts_start_ms={}&seq_start={}&init_bytes={}&event={}",
        index.container,
        s.codec,
        s.utc_start_ms,
        s.pts_start_ms,
        s.seq_start,
        s.init_bytes,
        u8::from(event)
    )
}

fn commit_body(data: &[u8], s: &Segment) -> serde_json::Value {
    json!({
        "sha256": ivcs_cloud::auth::sha256_hex(data),
        "bytes": data.len(),
        "utc_end_ms": s.utc_end_ms,
        "pts_end_ms": s.pts_end_ms,
        "seq_end": s.seq_end,
        "video_frames": s.video_frames,
        "audio_frames": s.audio_frames,
    })
}

/// Streams one segment and commits it; returns the commit answer.
fn upload(dev: &Device, dir: &Path, index: &Index, s: &Segment, id: &str, event: bool) -> Answer {
    let data = std::fs::read(dir.join(&s.file)).expect("segment");
    dev.upload_segment(
        id,
        &query(index, s, 0, event),
        &data,
        &commit_body(&data, s),
    )
}

fn seg_id(s: &Segment) -> String {
    format!("0-{}-{}", s.utc_start_ms, s.seq_start)
}

fn start(name: &str, env: &[(&str, &str)]) -> Cloud {
    let data = scratch_dir(name).join("data");
    Cloud::start(&data, env)
}

fn plan(cloud: &Cloud, device: &str, args: &[&str]) {
    let mut a = vec!["plan", "set", device];
    a.extend_from_slice(args);
    admin(&cloud.data, &a).expect_success();
}

fn round_trip(name: &str, container: Container) {
    let (dir, index) = mux(name, container);
    let cloud = start(name, &[]);
    let dev = cloud.add_device("cam1");
    plan(&cloud, "cam1", &["--type", "full-time", "--days", "7"]);
    for s in &index.segments {
        let a = upload(&dev, &dir, &index, s, &seg_id(s), false);
        assert_eq!(a.status, 200, "{}", a.text());
        assert_eq!(a.json()["state"], "complete");
    }
    // Idempotent: the same id again is a duplicate, not a second copy.
    let s0 = &index.segments[0];
    let again = dev.stream(
        &format!(
            "/v1/device/segments/{}?{}",
            seg_id(s0),
            query(&index, s0, 0, false)
        ),
        &mut std::fs::read(dir.join(&s0.file)).unwrap().as_slice(),
    );
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["duplicate"], true);

    let token = cloud.token();
    let (start_ms, end_ms) = (START_UTC_MS, START_UTC_MS + 24_000);
    let tl = cloud.app_get(
        &format!("/v1/devices/cam1/channels/0/timeline?start_ms={start_ms}&end_ms={end_ms}"),
        Some(&token),
    );
    assert_eq!(tl.status, 200, "{}", tl.text());
    let spans = tl.json()["spans"].as_array().unwrap().clone();
    assert_eq!(spans.len(), 1, "contiguous segments merge: {spans:?}");
    assert_eq!(spans[0]["segments"], index.segments.len());
    // What has not happened yet is not a gap: gaps end at the service's now.
    let now = spans[0]["end_ms"].as_u64().unwrap() + 30_000;
    cloud.set_now_ms(now);
    let tl = cloud.app_get(
        &format!(
            "/v1/devices/cam1/channels/0/timeline?start_ms={start_ms}&end_ms={}",
            now + 3_600_000
        ),
        Some(&token),
    );
    let v = tl.json();
    assert_eq!(v["now_ms"], now, "{v}");
    assert_eq!(
        v["gaps"].as_array().unwrap().last().unwrap()["end_ms"],
        now,
        "{v}"
    );

    let days = cloud.app_get(
        "/v1/devices/cam1/channels/0/days?month=2023-11",
        Some(&token),
    );
    assert_eq!(
        days.json()["days"],
        json!(["2023-11-14"]),
        "{}",
        days.text()
    );

    let url = cloud.app_send(
        "POST",
        &format!("/v1/devices/cam1/channels/0/playback-url?start_ms={start_ms}&end_ms={end_ms}"),
        &token,
        "",
    );
    assert_eq!(url.status, 200, "{}", url.text());
    let playlist_url = format!("{}{}", cloud.base, url.json()["url"].as_str().unwrap());
    let text = cloud
        .app_get(&playlist_url[cloud.base.len()..], None)
        .text();
    assert_eq!(
        text.matches("#EXT-X-PROGRAM-DATE-TIME:").count(),
        index.segments.len(),
        "{text}"
    );
    assert!(!text.contains("#EXT-X-DISCONTINUITY"), "{text}");
    // Segment URLs outlive the playlist URL by the range's length: a player
    // reaches the last one that much later.
    let exp_of = |u: &str| -> u64 {
        let q = u.split_once("exp=").unwrap().1;
        q.split('&').next().unwrap().parse().unwrap()
    };
    let seg_url = text.lines().find(|l| l.starts_with("/v1/")).unwrap();
    let playlist_exp = exp_of(&playlist_url);
    assert!(
        exp_of(seg_url) >= playlist_exp + (end_ms - start_ms) / 1000,
        "{seg_url} vs {playlist_url}"
    );
    // ffmpeg plays the playlist over HTTP without any header: frame-exact.
    let got = framemd5::video_hashes(&["-i".into(), playlist_url]);
    framemd5::compare("playlist", &source_video_hashes(&H264_360P_GOP2_24S), &got)
        .unwrap_or_else(|e| panic!("{e}"));

    export_round_trip(
        name,
        &cloud,
        &token,
        url.json()["export_url"].as_str().unwrap(),
    );
}

/// 25 fps: one frame is 40 ms.
const FRAME_MS: u64 = 40;

/// Checks an exported MP4 with ffmpeg: no warning probing or decoding,
/// exactly the source's video frames `frames`, `duration_ms` long, and the
/// AAC packets a contiguous run of the source's (within 3 packets of the
/// video's span: the recorder ends audio at the last video frame).
fn check_export(path: &Path, frames: &[usize], duration_ms: u64) {
    let file = tools::p(path);
    let j = tools::probe_clean(&file);
    let duration: f64 = j["format"]["duration"].as_str().unwrap().parse().unwrap();
    let want = duration_ms as f64 / 1000.0;
    assert!(
        (duration - want).abs() <= FRAME_MS as f64 / 1000.0,
        "{file}: duration {duration} s, expected {want} s"
    );
    let src = source_video_hashes(&H264_360P_GOP2_24S);
    let got = framemd5::video_hashes(&["-i".to_string(), file.clone()]);
    let want: Vec<String> = frames.iter().map(|&i| src[i].clone()).collect();
    framemd5::compare(&file, &want, &got).unwrap_or_else(|e| panic!("{e}"));
    // Audio: runs of the source's packets covering the video.
    let src = source_aac_hashes(&AAC_48K_MONO);
    let got = framemd5::aac_packet_hashes(&["-i".to_string(), file]);
    let first = src.iter().position(|h| *h == got[0]).expect("known audio");
    let aac_ms = 1024.0 * 1000.0 / 48_000.0;
    if frames.windows(2).all(|w| w[1] == w[0] + 1) {
        assert_eq!(&src[first..first + got.len()], &got[..], "audio packets");
        let covered = got.len() as f64 * aac_ms;
        assert!(
            (covered - (frames.len() as u64 * FRAME_MS) as f64).abs() <= 3.0 * aac_ms,
            "{} audio packets for {} frames",
            got.len(),
            frames.len()
        );
    } else {
        assert!(got.iter().all(|h| src.contains(h)), "audio packets");
    }
}

/// Export over HTTP (the signed URL from playback-url, no header), with
/// `ivcs cloud export` through the service and from the data directory:
/// the same bytes, frame-exact against the source, the right duration.
fn export_round_trip(name: &str, cloud: &Cloud, token: &str, signed_url: &str) {
    let dir = scratch_dir(&format!("{name}-export"));
    // The signed URL covers the whole 24 s: every frame, 24 s long.
    let a = cloud.app_get(signed_url, None);
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.header("content-type"), Some("video/mp4"));
    assert_eq!(
        a.header("content-length"),
        Some(a.body.len().to_string().as_str())
    );
    assert_eq!(
        a.header("content-disposition"),
        Some(format!("attachment; filename=\"cam1-ch0-{START_UTC_MS}.mp4\"").as_str())
    );
    let whole = dir.join("whole.mp4");
    std::fs::write(&whole, &a.body).unwrap();
    check_export(&whole, &(0..600).collect::<Vec<_>>(), 24_000);

    // 5.5 s .. 18.2 s: from the key frame at 4 s (frame 100) to frame 454.
    let (start, end) = (START_UTC_MS + 5_500, START_UTC_MS + 18_200);
    let path = format!("/v1/devices/cam1/channels/0/export.mp4?start_ms={start}&end_ms={end}");
    let a = cloud.app_get(&path, Some(token));
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(
        a.header("x-ivcs-start-ms"),
        Some((START_UTC_MS + 4_000).to_string().as_str())
    );
    assert_eq!(a.header("x-ivcs-end-ms"), Some(end.to_string().as_str()));
    let part = dir.join("part.mp4");
    std::fs::write(&part, &a.body).unwrap();
    check_export(&part, &(100..455).collect::<Vec<_>>(), 14_200);

    // The CLI, both ways, writes the same bytes.
    for (how, args) in [
        ("service", vec!["--url", &cloud.base, "--token", token]),
        ("data", vec![]),
    ] {
        let out = dir.join(format!("cli-{how}.mp4"));
        let (s, e) = (start.to_string(), end.to_string());
        let mut cmd = vec![
            "export", "--device", "cam1", "--start", &s, "--end", &e, "--quiet", "--out",
        ];
        let out_s = tools::p(&out);
        cmd.push(&out_s);
        cmd.extend(args);
        admin(&cloud.data, &cmd).expect_success();
        assert!(std::fs::read(&out).unwrap() == a.body, "{how}: same bytes");
    }

    // Refusals: nothing recorded, too long, no auth, a tampered signature.
    let none = START_UTC_MS + 3_600_000;
    let q =
        |s: u64, e: u64| format!("/v1/devices/cam1/channels/0/export.mp4?start_ms={s}&end_ms={e}");
    assert_eq!(
        cloud.app_get(&q(none, none + 60_000), Some(token)).status,
        404
    );
    assert_eq!(
        cloud
            .app_get(&q(start, start + 25 * 3_600_000), Some(token))
            .status,
        400
    );
    assert_eq!(cloud.app_get(&q(end, start), Some(token)).status, 400);
    assert_eq!(cloud.app_get(&q(start, end), None).status, 401);
    let tampered = signed_url.replace("start_ms=", "start_ms=1");
    assert_eq!(cloud.app_get(&tampered, None).status, 401);
    // A failed CLI export leaves no file behind.
    let out = dir.join("none.mp4");
    let (s, e) = (none.to_string(), (none + 60_000).to_string());
    let r = admin(
        &cloud.data,
        &[
            "export",
            "--device",
            "cam1",
            "--start",
            &s,
            "--end",
            &e,
            "--out",
            &tools::p(&out),
        ],
    );
    assert!(
        !r.success && r.stderr.contains("no recording"),
        "{}",
        r.stderr
    );
    assert!(!out.exists() && !dir.join("none.mp4.part").exists());
}

#[test]
fn ts_upload_playlist_round_trip_is_frame_exact() {
    round_trip("cloud-rt-ts", Container::Ts);
}

#[test]
fn fmp4_upload_playlist_round_trip_is_frame_exact() {
    round_trip("cloud-rt-fmp4", Container::Fmp4);
}

#[test]
fn forged_replayed_stale_and_foreign_requests_get_401() {
    let cloud = start("cloud-auth", &[]);
    let dev = cloud.add_device("cam1");
    let other = cloud.add_device("cam2");
    assert_eq!(dev.send("GET", "/v1/device/plan", b"").status, 200);
    // Forged: wrong secret.
    let forged = dev.with_secret("cam1", &"0".repeat(64));
    let a = forged.send("GET", "/v1/device/plan", b"");
    assert_eq!(a.status, 401);
    assert_eq!(
        a.json()["error"]["message"],
        "request authentication failed"
    );
    // Another device's id with our secret.
    assert_eq!(
        dev.with_secret("cam2", &dev.secret)
            .send("GET", "/v1/device/plan", b"")
            .status,
        401
    );
    assert_eq!(other.send("GET", "/v1/device/plan", b"").status, 200);
    // Replay: the same signed headers twice.
    let h = dev.headers("GET", "/v1/device/plan", &ivcs_cloud::auth::sha256_hex(b""));
    assert_eq!(
        dev.send_with("GET", "/v1/device/plan", &h, Vec::new())
            .status,
        200
    );
    assert_eq!(
        dev.send_with("GET", "/v1/device/plan", &h, Vec::new())
            .status,
        401
    );
    // Stale: signed 10 minutes ago.
    let now = cloud.now_ms();
    cloud.set_now_ms(now - 600_000);
    let old = dev.headers("GET", "/v1/device/plan", &ivcs_cloud::auth::sha256_hex(b""));
    cloud.set_now_ms(now);
    assert_eq!(
        dev.send_with("GET", "/v1/device/plan", &old, Vec::new())
            .status,
        401
    );
    // Body swapped under a valid signature.
    let body = json!({"ai_type": 1}).to_string();
    let h = dev.headers(
        "PUT",
        "/v1/device/ai/0/1",
        &ivcs_cloud::auth::sha256_hex(body.as_bytes()),
    );
    let a = dev.send_with(
        "PUT",
        "/v1/device/ai/0/1",
        &h,
        json!({"ai_type": 2}).to_string().into_bytes(),
    );
    assert_eq!(a.status, 401);
    // Path tricks and junk ids.
    for id in ["..", "..%2Fetc", "%2Fetc%2Fpasswd", ".hidden"] {
        let a = dev.send("PUT", &format!("/v1/device/events/{id}"), b"{}");
        assert!(matches!(a.status, 400 | 404), "{id}: {}", a.status);
    }
    // Oversized JSON.
    let big = vec![b' '; 200 << 10];
    assert_eq!(dev.send("PUT", "/v1/device/events/e1", &big).status, 413);
    // App API without, or with a wrong, token.
    assert_eq!(cloud.app_get("/v1/devices", None).status, 401);
    assert_eq!(cloud.app_get("/v1/devices", Some("nope")).status, 401);
    let token = cloud.token();
    assert_eq!(cloud.app_get("/v1/devices", Some(&token)).status, 200);
    // Expired and tampered playback URLs.
    let u = cloud.app_send(
        "POST",
        "/v1/devices/cam1/channels/0/playback-url?start_ms=0&end_ms=1000",
        &token,
        "",
    );
    let url = u.json()["url"].as_str().unwrap().to_string();
    assert_eq!(
        cloud
            .app_get(&url.replace("end_ms=1000", "end_ms=2000"), None)
            .status,
        401
    );
    cloud.set_now_ms(now + 2 * 3600 * 1000);
    assert_eq!(cloud.app_get(&url, None).status, 401, "expired");
}

/// Waits until the service reports one request waiting on the change feed
/// (a condition, not a delay).
fn wait_for_one_long_poll(cloud: &Cloud) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cloud
        .app_get("/metrics", None)
        .text()
        .contains("ivcs_change_feed_waiters 1")
    {
        assert!(Instant::now() < deadline, "the long-poll never arrived");
        std::thread::yield_now();
    }
}

#[test]
fn a_plan_change_reaches_a_waiting_device_within_2_s() {
    let cloud = start("cloud-feed", &[]);
    let dev = cloud.add_device("cam1");
    let p = dev.send("GET", "/v1/device/plan", b"").json();
    let rev = p["revision"].as_u64().unwrap();
    assert_eq!(p["channels"][0]["type"], "none");
    let waiter = std::thread::spawn(move || {
        let t0 = Instant::now();
        let a = dev.send(
            "GET",
            &format!("/v1/device/changes?since={rev}&wait_s=30"),
            b"",
        );
        (a, t0)
    });
    // The change must wake the long-poll, not precede it: wait until the
    // service reports it waiting.
    wait_for_one_long_poll(&cloud);
    let t_change = Instant::now();
    plan(&cloud, "cam1", &["--type", "full-time", "--days", "3"]);
    let (a, _) = waiter.join().unwrap();
    let waited = t_change.elapsed();
    assert_eq!(a.status, 200, "{}", a.text());
    let v = a.json();
    assert_eq!(v["changed"], true);
    assert_eq!(v["channels"][0]["type"], "full-time");
    assert_eq!(v["channels"][0]["days"], 3);
    assert!(waited < Duration::from_secs(2), "took {waited:?}");

    // Revisions are never reused: the id added again after a removal gets
    // one above what its predecessor's firmware holds, and that stale
    // `since` is answered at once (wait_s=0) as a change.
    let seen = v["revision"].as_u64().unwrap();
    admin(&cloud.data, &["device", "remove", "cam1"]).expect_success();
    let again = cloud.add_device("cam1");
    let a = again.send(
        "GET",
        &format!("/v1/device/changes?since={seen}&wait_s=0"),
        b"",
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let v = a.json();
    assert_eq!(v["changed"], true, "{v}");
    assert_eq!(v["channels"][0]["type"], "none", "{v}");
    assert!(v["revision"].as_u64().unwrap() > seen, "{v}");
}

#[test]
fn sigterm_ends_waiting_long_polls_and_the_service_exits() {
    let mut cloud = start("cloud-shutdown", &[]);
    let dev = cloud.add_device("cam1");
    let rev = dev.send("GET", "/v1/device/plan", b"").json()["revision"]
        .as_u64()
        .unwrap();
    let waiter = std::thread::spawn(move || {
        dev.send(
            "GET",
            &format!("/v1/device/changes?since={rev}&wait_s=60"),
            b"",
        )
    });
    wait_for_one_long_poll(&cloud);
    // Well under the poll's 60 s: shutdown must not wait it out.
    let status = cloud.terminate(Duration::from_secs(20));
    assert!(status.success(), "{status}");
    let a = waiter.join().unwrap();
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["changed"], false);
}

#[test]
fn resource_destroy_leaves_no_object_and_no_row() {
    let (dir, index) = mux("cloud-destroy", Container::Ts);
    let cloud = start("cloud-destroy", &[]);
    let dev = cloud.add_device("cam1");
    plan(&cloud, "cam1", &["--type", "full-time", "--days", "7"]);
    for s in &index.segments {
        assert_eq!(upload(&dev, &dir, &index, s, &seg_id(s), false).status, 200);
    }
    let ev = json!({"channel": 0, "event_id": 3, "utc_start_ms": START_UTC_MS, "info": "motion", "report_opt": "either"});
    assert_eq!(dev.json("PUT", "/v1/device/events/ev1", &ev).status, 201);
    let jpeg = [
        0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F', 0, 1, 0xFF, 0xD9,
    ];
    assert_eq!(
        dev.send(
            "PUT",
            &format!("/v1/device/pictures/p1?channel=0&utc_ms={START_UTC_MS}&event_key=ev1"),
            &jpeg
        )
        .status,
        201
    );
    assert_eq!(
        dev.json("PUT", "/v1/device/ai/0/3", &json!({"ai_type": 1}))
            .status,
        200
    );
    let objects = cloud.data.join("objects").join("devices").join("cam1");
    assert!(objects.exists());
    let a = dev.send("DELETE", "/v1/device/resources", b"");
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["deleted_objects"], index.segments.len() + 1);
    let left: Vec<_> = walk(&objects);
    assert!(left.is_empty(), "objects left: {left:?}");
    // Every row is gone: the plan reads none, the timeline is empty.
    let p = dev.send("GET", "/v1/device/plan", b"").json();
    assert_eq!(p["channels"][0]["type"], "none");
    assert_eq!(p["ai"], json!([]));
    let token = cloud.token();
    let tl = cloud.app_get(
        &format!(
            "/v1/devices/cam1/channels/0/timeline?start_ms={START_UTC_MS}&end_ms={}",
            START_UTC_MS + 60_000
        ),
        Some(&token),
    );
    assert_eq!(tl.json()["spans"], json!([]));
    let ev = cloud.app_get(
        &format!(
            "/v1/devices/cam1/channels/0/events?start_ms={}&end_ms={}",
            START_UTC_MS - 1000,
            START_UTC_MS + 1
        ),
        Some(&token),
    );
    assert_eq!(ev.json()["events"], json!([]));
}

#[test]
fn kill_9_during_an_upload_leaves_no_row_without_object_and_reupload_works() {
    use std::io::Write;
    let (dir, index) = mux("cloud-kill", Container::Ts);
    let mut cloud = start("cloud-kill", &[]);
    let dev = cloud.add_device("cam1");
    plan(&cloud, "cam1", &["--type", "full-time", "--days", "7"]);
    let s = &index.segments[0];
    let data = std::fs::read(dir.join(&s.file)).unwrap();
    let path = format!(
        "/v1/device/segments/{}?{}",
        seg_id(s),
        query(&index, s, 0, false)
    );
    // Half the body by hand over a raw socket, then SIGKILL the service.
    let addr = cloud.base.trim_start_matches("http://").to_string();
    let mut sock = std::net::TcpStream::connect(&addr).unwrap();
    let mut head = format!("PUT {path} HTTP/1.1\r\nhost: {addr}\r\ntransfer-encoding: chunked\r\n");
    for (k, v) in dev.headers("PUT", &path, ivcs_cloud::auth::STREAMING) {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    sock.write_all(head.as_bytes()).unwrap();
    let half = &data[..data.len() / 2];
    sock.write_all(format!("{:x}\r\n", half.len()).as_bytes())
        .unwrap();
    sock.write_all(half).unwrap();
    sock.write_all(b"\r\n").unwrap();
    sock.flush().unwrap();
    // Wait until the service has written some of it (a condition, not a delay).
    let seg_dir = cloud.data.join("objects/devices/cam1/segments");
    let deadline = Instant::now() + Duration::from_secs(10);
    while walk(&seg_dir).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the service never stored the body"
        );
        std::thread::yield_now();
    }
    cloud.kill9();
    drop(sock);
    // What a kill between storing an object and inserting its row leaves.
    let orphan = seg_dir.join("crash-between-object-and-row.0123456789abcdef");
    std::fs::write(&orphan, b"bytes without a row").unwrap();
    cloud.restart();
    assert!(
        !orphan.exists(),
        "an object without a row is swept at startup"
    );
    // No row without its object: the segment is unknown or its bytes exist.
    let token = cloud.token();
    let got = cloud.app_get(
        &format!("/v1/devices/cam1/segments/{}", seg_id(s)),
        Some(&token),
    );
    assert!(got.status == 404 || got.status == 200, "{}", got.status);
    assert!(
        walk(&seg_dir)
            .iter()
            .all(|p| !p.to_string_lossy().contains('#')),
        "staging files swept"
    );
    let a = upload(&dev, &dir, &index, s, &seg_id(s), false);
    assert_eq!(a.status, 200, "{}", a.text());
    let got = cloud.app_get(
        &format!("/v1/devices/cam1/segments/{}", seg_id(s)),
        Some(&token),
    );
    assert_eq!(got.status, 200);
    assert_eq!(got.body, data);

    // An id first stored partial (an empty body), then uploaded whole: the
    // partial object is queued for deletion with its replacement, and the
    // reaper removes it, never the new bytes.
    let s2 = &index.segments[1];
    let path2 = format!(
        "/v1/device/segments/{}?{}",
        seg_id(s2),
        query(&index, s2, 0, false)
    );
    let a = dev.send("PUT", &path2, b"");
    assert_eq!(a.json()["state"], "partial", "{}", a.text());
    let a = upload(&dev, &dir, &index, s2, &seg_id(s2), false);
    assert_eq!(a.status, 200, "{}", a.text());
    // (A "now" inside the plan's 7 days: the pass only reaps.)
    let now = (START_UTC_MS + 60_000).to_string();
    admin(&cloud.data, &["retention", "--now-ms", &now]).expect_success();
    assert_eq!(
        walk(&seg_dir).len(),
        2,
        "one object per live row: {:?}",
        walk(&seg_dir)
    );
    let got = cloud.app_get(
        &format!("/v1/devices/cam1/segments/{}", seg_id(s2)),
        Some(&token),
    );
    assert_eq!(got.body, std::fs::read(dir.join(&s2.file)).unwrap());
}

#[test]
fn retention_and_trial_debit_follow_injected_time() {
    let (dir, index) = mux("cloud-retention", Container::Ts);
    let cloud = start("cloud-retention", &[]);
    cloud.set_now_ms(START_UTC_MS + 60_000);
    let dev = cloud.add_device("cam1");
    // Trial of 10 s: event segments debit it; the 3rd upload finds it empty.
    plan(
        &cloud,
        "cam1",
        &["--type", "trial", "--days", "1", "--trial-seconds", "10"],
    );
    let segs = &index.segments;
    let a = upload(&dev, &dir, &index, &segs[0], "s0", false);
    assert_eq!(a.status, 403, "non-event video under a trial: {}", a.text());
    assert_eq!(a.json()["error"]["code"], "no_service");
    for s in &segs[..2] {
        assert_eq!(upload(&dev, &dir, &index, s, &seg_id(s), true).status, 200);
    }
    let used: u64 = segs[..2]
        .iter()
        .map(|s| s.utc_end_ms - s.utc_start_ms)
        .sum();
    let left = dev.send("GET", "/v1/device/plan", b"").json()["channels"][0]["trial_seconds_left"]
        .as_u64()
        .unwrap();
    assert_eq!(left, 10_000u64.saturating_sub(used) / 1000);
    if used >= 10_000 {
        let a = upload(&dev, &dir, &index, &segs[2], &seg_id(&segs[2]), true);
        assert_eq!(a.status, 403);
        assert_eq!(a.json()["error"]["code"], "no_balance");
    }
    // Retention: a day and a minute later both segments go; an event keeps
    // the segments it overlaps.
    plan(&cloud, "cam1", &["--type", "full-time", "--days", "1"]);
    for s in &segs[2..4] {
        assert_eq!(upload(&dev, &dir, &index, s, &seg_id(s), false).status, 200);
    }
    let ev_t = segs[3].utc_start_ms + 500;
    let ev = json!({"channel": 0, "event_id": 1, "utc_start_ms": ev_t, "report_opt": "video"});
    assert_eq!(dev.json("PUT", "/v1/device/events/late", &ev).status, 201);
    let stop = dev.json(
        "POST",
        "/v1/device/events/late/stop",
        &json!({"utc_end_ms": ev_t + 1000}),
    );
    assert_eq!(stop.json()["status"], "finished", "{}", stop.text());
    let t = segs[3].utc_end_ms + 86_400_000 + 1;
    // The event ended just before the cutoff minus nothing: keep it alive by
    // running retention when only the segments are old.
    let out = admin(
        &cloud.data,
        &[
            "retention",
            "--now-ms",
            &(ev_t + 1000 + 86_400_000 - 1).to_string(),
        ],
    )
    .expect_success();
    assert!(
        out.stdout_text().contains("removed"),
        "{}",
        out.stdout_text()
    );
    // A picture of no event goes by its own time, like a segment.
    let jpeg = [
        0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F', 0, 1, 0xFF, 0xD9,
    ];
    let pic = format!("/v1/device/pictures/loose?channel=0&utc_ms={START_UTC_MS}");
    assert_eq!(dev.send("PUT", &pic, &jpeg).status, 201);
    let token = cloud.token();
    let kept = |id: &str| {
        cloud
            .app_get(&format!("/v1/devices/cam1/segments/{id}"), Some(&token))
            .status
    };
    assert_eq!(kept(&seg_id(&segs[0])), 404, "old segment removed");
    assert_eq!(
        kept(&seg_id(&segs[3])),
        200,
        "segment under a kept event stays"
    );
    admin(
        &cloud.data,
        &[
            "retention",
            "--now-ms",
            &t.max(ev_t + 1000 + 86_400_000 + 1).to_string(),
        ],
    )
    .expect_success();
    assert_eq!(kept(&seg_id(&segs[3])), 404, "goes with its event");
    assert!(walk(&cloud.data.join("objects/devices/cam1/segments")).is_empty());
    assert!(walk(&cloud.data.join("objects/devices/cam1/pictures")).is_empty());
}

#[test]
fn backups_are_accepted_within_the_window_only() {
    let (dir, index) = mux("cloud-backup", Container::Ts);
    let cloud = start("cloud-backup", &[("IVCS_CLOUD_BACKUP_WINDOW_S", "1800")]);
    let dev = cloud.add_device("cam1");
    plan(&cloud, "cam1", &["--type", "full-time", "--days", "7"]);
    let backup = |s: &Segment, id: &str| {
        let data = std::fs::read(dir.join(&s.file)).unwrap();
        let q = format!(
            "{}&backup=1&utc_end_ms={}&pts_end_ms={}&seq_end={}",
            query(&index, s, 0, false),
            s.utc_end_ms,
            s.pts_end_ms,
            s.seq_end
        );
        dev.send("PUT", &format!("/v1/device/segments/{id}?{q}"), &data)
    };
    let s = &index.segments[0];
    cloud.set_now_ms(s.utc_end_ms + 29 * 60_000);
    let a = backup(s, "b0");
    assert_eq!(a.status, 201, "{}", a.text());
    assert_eq!(a.json()["state"], "complete");
    let s1 = &index.segments[1];
    cloud.set_now_ms(s1.utc_end_ms + 31 * 60_000);
    let a = backup(s1, "b1");
    assert_eq!(a.status, 410, "{}", a.text());
    assert_eq!(a.json()["error"]["code"], "backup_window_closed");
}

#[test]
fn a_full_disk_gives_507_and_indexes_nothing() {
    let (dir, index) = mux("cloud-full", Container::Ts);
    // A reserve larger than any disk: every upload finds the disk "full".
    let cloud = start(
        "cloud-full",
        &[("IVCS_CLOUD_MIN_FREE_BYTES", "9000000000000000000")],
    );
    let dev = cloud.add_device("cam1");
    plan(&cloud, "cam1", &["--type", "full-time", "--days", "7"]);
    let s = &index.segments[0];
    let a = upload(&dev, &dir, &index, s, &seg_id(s), false);
    assert_eq!(a.status, 507, "{}", a.text());
    let token = cloud.token();
    let tl = cloud.app_get(
        &format!(
            "/v1/devices/cam1/channels/0/timeline?start_ms={START_UTC_MS}&end_ms={}",
            START_UTC_MS + 60_000
        ),
        Some(&token),
    );
    assert_eq!(tl.json()["spans"], json!([]));
    let m = cloud.app_get("/metrics", None).text();
    assert!(m.contains("ivcs_uploads_refused_disk_full_total 1"), "{m}");
    assert_eq!(cloud.app_get("/healthz", None).status, 200);
}

#[test]
fn the_app_lists_pages_and_deletes_events() {
    let cloud = start("cloud-events", &[]);
    let dev = cloud.add_device("cam1");
    plan(&cloud, "cam1", &["--type", "event", "--days", "7"]);
    let jpeg = [
        0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F', 0, 1, 0xFF, 0xD9,
    ];
    for (i, key) in ["ev1", "ev2", "ev3"].iter().enumerate() {
        let t = START_UTC_MS + i as u64 * 10_000;
        let ev = json!({"channel": 0, "event_id": 1 + i, "utc_start_ms": t, "info": "motion", "report_opt": "picture"});
        assert_eq!(
            dev.json("PUT", &format!("/v1/device/events/{key}"), &ev)
                .status,
            201
        );
        let pic = format!("/v1/device/pictures/p{i}?channel=0&utc_ms={t}&event_key={key}");
        assert_eq!(dev.send("PUT", &pic, &jpeg).status, 201);
    }
    let token = cloud.token();
    let list = |cursor: Option<&str>| {
        let mut p = format!(
            "/v1/devices/cam1/channels/0/events?start_ms={START_UTC_MS}&end_ms={}&limit=2",
            START_UTC_MS + 60_000
        );
        if let Some(c) = cursor {
            p.push_str(&format!("&cursor={c}"));
        }
        let a = cloud.app_get(&p, Some(&token));
        assert_eq!(a.status, 200, "{}", a.text());
        a.json()
    };
    let page1 = list(None);
    let keys = |page: &serde_json::Value| -> Vec<String> {
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_key"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(keys(&page1), ["ev1", "ev2"]);
    let page2 = list(page1["next_cursor"].as_str());
    assert_eq!(keys(&page2), ["ev3"]);
    assert_eq!(page2["next_cursor"], serde_json::Value::Null);
    // The thumbnail URL works without a header and gives the picture.
    let thumb = page1["events"][0]["thumbnail_url"].as_str().unwrap();
    let t = cloud.app_get(thumb, None);
    assert_eq!((t.status, &t.body[..]), (200, &jpeg[..]));
    assert_eq!(t.header("content-type"), Some("image/jpeg"));

    // Delete: token needed, names checked, then the row and its picture go.
    let del = |key: &str, token: &str| {
        cloud
            .app_send(
                "DELETE",
                &format!("/v1/devices/cam1/events/{key}"),
                token,
                "",
            )
            .status
    };
    assert_eq!(del("ev1", "wrong"), 401);
    assert_eq!(del("..", &token), 400);
    assert_eq!(del("ev1", &token), 204);
    assert_eq!(del("ev1", &token), 404);
    assert_eq!(keys(&list(None)), ["ev2", "ev3"]);
    assert_eq!(cloud.app_get(thumb, None).status, 404);
    let pictures = cloud.data.join("objects/devices/cam1/pictures");
    assert_eq!(
        walk(&pictures).len(),
        2,
        "the deleted event's picture is gone"
    );

    // AI: the app sets the type and keeps the arguments the device set.
    let args = "AQID"; // base64 of [1, 2, 3]
    let a = dev.json(
        "PUT",
        "/v1/device/ai/0/3",
        &json!({"ai_type": 1, "args": args}),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let a = cloud.app_send(
        "PUT",
        "/v1/devices/cam1/ai/0/3",
        &token,
        r#"{"ai_type": 2}"#,
    );
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["setting"]["ai_type"], 2);
    assert_eq!(a.json()["setting"]["args"], args, "{}", a.text());
    // What the framework cannot parse gets the same JSON error body.
    for (path, body, status) in [
        ("/v1/devices/cam1/ai/zero/3", r#"{"ai_type": 2}"#, 400),
        ("/v1/devices/cam1/ai/0/3", "{not json", 400),
        ("/v1/devices/cam1/ai/0/3", r#"{"type": 2}"#, 400),
    ] {
        let a = cloud.app_send("PUT", path, &token, body);
        assert_eq!(a.status, status, "{path} {body}: {}", a.text());
        assert_eq!(a.json()["error"]["code"], "bad_request", "{}", a.text());
    }
    let a = cloud.app_get(
        "/v1/devices/cam1/channels/0/timeline?start_ms=soon",
        Some(&token),
    );
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["error"]["iv_err"], -602, "{}", a.text());
}

#[test]
fn an_export_across_a_missing_segment_keeps_wall_time() {
    let (dir, index) = mux("cloud-export-gap", Container::Ts);
    let cloud = start("cloud-export-gap", &[]);
    let dev = cloud.add_device("cam1");
    plan(&cloud, "cam1", &["--type", "full-time", "--days", "7"]);
    // Segment 2 (8 s .. 12 s) never arrives.
    for s in index
        .segments
        .iter()
        .filter(|s| s.seq_start != index.segments[2].seq_start)
    {
        assert_eq!(upload(&dev, &dir, &index, s, &seg_id(s), false).status, 200);
    }
    let token = cloud.token();
    let a = cloud.app_get(
        &format!(
            "/v1/devices/cam1/channels/0/export.mp4?start_ms={START_UTC_MS}&end_ms={}",
            START_UTC_MS + 24_000
        ),
        Some(&token),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let path = scratch_dir("cloud-export-gap-out").join("gap.mp4");
    std::fs::write(&path, &a.body).unwrap();
    let frames: Vec<usize> = (0..200).chain(300..600).collect();
    check_export(&path, &frames, 24_000);
    // The frame before the gap lasts until the frame after it.
    let packets = tools::ffprobe_json([
        "-v",
        "error",
        "-select_streams",
        "v",
        "-show_packets",
        "-of",
        "json",
        &tools::p(&path),
    ]);
    let d: f64 = packets["packets"][199]["duration_time"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((d - 4.04).abs() < 1e-3, "frame 199 lasts {d} s");
}

#[test]
fn a_second_service_on_the_same_data_directory_is_refused() {
    let cloud = start("cloud-lock", &[]);
    let second = tools::run(
        ivcs_tests::cli::bin(),
        [
            "cloud",
            "--data",
            &tools::p(&cloud.data),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    assert!(!second.success, "a second service started");
    assert!(
        second.stderr.contains("another `ivcs cloud serve`"),
        "{}",
        second.stderr
    );
    // Admin commands still work next to the service.
    admin(&cloud.data, &["device", "list"]).expect_success();
}

#[test]
fn the_openapi_document_is_served_without_authentication() {
    let cloud = start("cloud-openapi", &[]);
    let a = cloud.app_get("/v1/openapi.json", None);
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.header("content-type"), Some("application/json"));
    let doc = a.json();
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1."), "openapi {version:?}");
    assert!(doc["paths"]["/v1/device/segments/{id}"]["put"].is_object());
    assert!(doc["paths"]["/v1/devices/{d}/channels/{c}/playlist.m3u8"]["get"].is_object());
}

/// Uploads the muxed 24 s recording on `channel` as recorded from `at`
/// (RFC 3339): its six 4 s segments, streamed and committed.
fn upload_recording_at(dev: &Device, dir: &Path, index: &Index, channel: u32, at: &str) {
    let at_ms = ivcs_cloud::time::parse_rfc3339(at).expect("RFC 3339");
    for s in &index.segments {
        let shift = |t: u64| t - START_UTC_MS + at_ms;
        let (start, end) = (shift(s.utc_start_ms), shift(s.utc_end_ms));
        let data = std::fs::read(dir.join(&s.file)).expect("segment");
        let query = format!(
            "channel={channel}&container={}&codec={}&utc_start_ms={start}&pts_start_ms={}&seq_start={}&init_bytes={}",
            index.container, s.codec, s.pts_start_ms, s.seq_start, s.init_bytes
        );
        let mut commit = commit_body(&data, s);
        commit["utc_end_ms"] = json!(end);
        let id = format!("{channel}-{start}-{}", s.seq_start);
        let a = dev.upload_segment(&id, &query, &data, &commit);
        assert_eq!(a.status, 200, "{id}: {}", a.text());
        assert_eq!(a.json()["state"], "complete", "{id}: {}", a.text());
    }
}

#[test]
fn days_follow_local_midnights_across_the_march_and_october_changes() {
    let (dir, index) = mux("cloud-days-dst", Container::Ts);
    let cloud = start("cloud-days-dst", &[]);
    let dev = cloud.add_device("cam1");
    plan(&cloud, "cam1", &["--type", "full-time", "--days", "7"]);
    // Europe/Berlin: +01:00 in winter, +02:00 in summer; 2025-03-30 has
    // 23 hours (02:00 CET is 03:00 CEST), 2025-10-26 has 25 (03:00 CEST is
    // 02:00 CET). Each channel holds one 24 s recording near a local
    // midnight right before or right after a change.
    let recordings = [
        // March: across 2025-03-30 00:00 CET (the last midnight before).
        (0, "2025-03-29T22:59:50Z"),
        // Across 2025-03-31 00:00 CEST (the first midnight after).
        (1, "2025-03-30T21:59:50Z"),
        // 00:10 CEST on 2025-03-31: 23:10 on the 30th at the month's +01:00.
        (2, "2025-03-30T22:10:00Z"),
        // October: across 2025-10-26 00:00 CEST (the last midnight before).
        (0, "2025-10-25T21:59:50Z"),
        // Across 2025-10-27 00:00 CET (the first midnight after).
        (1, "2025-10-26T22:59:50Z"),
        // 23:30 CET on 2025-10-26: 00:30 on the 27th at the month's +02:00.
        (2, "2025-10-26T22:30:00Z"),
    ];
    for (channel, at) in recordings {
        upload_recording_at(&dev, &dir, &index, channel, at);
    }
    let token = cloud.token();
    let app = cloud.app(Some(&token));
    let days = |channel: u32, query: &str| -> serde_json::Value {
        let a = app.get(&format!("/v1/devices/cam1/channels/{channel}/days?{query}"));
        assert_eq!(a.status, 200, "{query}: {}", a.text());
        a.json()["days"].clone()
    };
    let berlin = |month: &str| format!("month={month}&tz=Europe/Berlin");
    // Local midnight to local midnight in the zone: a recording across one
    // is on both days, one just after it on the next day only.
    assert_eq!(
        days(0, &berlin("2025-03")),
        json!(["2025-03-29", "2025-03-30"])
    );
    assert_eq!(
        days(1, &berlin("2025-03")),
        json!(["2025-03-30", "2025-03-31"])
    );
    assert_eq!(days(2, &berlin("2025-03")), json!(["2025-03-31"]));
    assert_eq!(
        days(0, &berlin("2025-10")),
        json!(["2025-10-25", "2025-10-26"])
    );
    assert_eq!(
        days(1, &berlin("2025-10")),
        json!(["2025-10-26", "2025-10-27"])
    );
    assert_eq!(days(2, &berlin("2025-10")), json!(["2025-10-26"]));
    // Names are case-insensitive, as in the tz database.
    assert_eq!(
        days(2, "month=2025-10&tz=europe/berlin"),
        json!(["2025-10-26"])
    );
    // A fixed offset is one offset for the whole month, as before: the
    // month's first-day offset puts the days after a change an hour off.
    assert_eq!(
        days(1, "month=2025-03&tz_offset_min=60"),
        json!(["2025-03-30"])
    );
    assert_eq!(
        days(2, "month=2025-03&tz_offset_min=60"),
        json!(["2025-03-30"])
    );
    assert_eq!(
        days(2, "month=2025-10&tz_offset_min=120"),
        json!(["2025-10-27"])
    );
    // No zone is UTC; a month without video is empty.
    assert_eq!(days(2, "month=2025-03"), json!(["2025-03-30"]));
    assert_eq!(days(2, "month=2025-03&tz=UTC"), json!(["2025-03-30"]));
    assert_eq!(days(0, &berlin("2025-04")), json!([]));

    // Bad zones and mixed parameters are 400 with a message that says why.
    for (query, says) in [
        (
            "month=2025-03&tz=Mars/Olympus_Mons",
            "unknown time zone \"Mars/Olympus_Mons\"",
        ),
        ("month=2025-03&tz=", "IANA time zone name"),
        (
            "month=2025-03&tz=Europe%2FBerlin%2F..%2F..",
            "unknown time zone",
        ),
        (
            "month=2025-03&tz=Europe/Berlin&tz_offset_min=60",
            "not both",
        ),
        ("month=2025-03&tz_offset_min=900", "-840..840"),
        ("month=2025-13&tz=Europe/Berlin", "YYYY-MM"),
    ] {
        let a = app.get(&format!("/v1/devices/cam1/channels/0/days?{query}"));
        assert_eq!(a.status, 400, "{query}: {}", a.text());
        assert_eq!(a.json()["error"]["code"], "bad_request", "{query}");
        let msg = a.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains(says), "{query}: {msg}");
    }
}
