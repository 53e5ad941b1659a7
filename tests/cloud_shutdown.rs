//! Shutdown of the real `ivcs cloud serve` with uploads in flight: SIGTERM
//! lets a request in flight finish, and clients that stall mid-body,
//! trickle a byte a second or never finish their request head cannot hold
//! the process past `shutdown_grace_s` (plus a margin for the fixed steps
//! after it: docs/ref/config.md). After a restart on the same data
//! directory nothing is half indexed: complete uploads are intact, cut ones
//! are partial or absent and never playable, no staging file is left, and
//! the cut ids upload again. Exits are waited on with deadlines, never
//! slept on. The tests print what they measured (time from the signal to
//! the exit) and what the cut uploads became.
#![allow(clippy::print_stderr)]

use ivcs_cloud::auth::{STREAMING, sha256_hex};
use ivcs_tests::Container;
use ivcs_tests::cli::{Mux, START_UTC_MS};
use ivcs_tests::cloud::{Cloud, Device, admin};
use ivcs_tests::fixtures::{self, AAC_48K_MONO, H264_360P_GOP2_24S};
use ivcs_tests::index::{Index, Segment};
use ivcs_tests::paths::{files_under as walk, scratch_dir};
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What the service may need after `shutdown_grace_s`: the cut requests
/// answer and their connections close (at most 2 s, then they are
/// dropped), the database closes (at most 3 s), the runtime stops (at most
/// 2 s); plus process exit on a loaded machine.
const MARGIN: Duration = Duration::from_secs(10);

/// Muxes the 24 s H.264 + AAC fixture into 4 s TS segments.
fn mux(name: &str) -> (PathBuf, Index) {
    fixtures::dir();
    let out = scratch_dir(&format!("{name}-mux"));
    Mux::new(&H264_360P_GOP2_24S, Some(&AAC_48K_MONO), Container::Ts).run_ok(&out);
    let index = Index::load(&out).expect("index.json");
    (out, index)
}

/// A service with a full-time plan for `cam1`, its clock a minute after
/// the recording's start (so the retention pass of a restart keeps it).
fn start(name: &str, grace_s: &str) -> (Cloud, Device) {
    let data = scratch_dir(name).join("data");
    let cloud = Cloud::start(&data, &[("IVCS_CLOUD_SHUTDOWN_GRACE_S", grace_s)]);
    cloud.set_now_ms(START_UTC_MS + 60_000);
    let dev = cloud.add_device("cam1");
    admin(
        &cloud.data,
        &["plan", "set", "cam1", "--type", "full-time", "--days", "7"],
    )
    .expect_success();
    (cloud, dev)
}

fn seg_id(s: &Segment) -> String {
    format!("0-{}-{}", s.utc_start_ms, s.seq_start)
}

/// The query of a streamed upload (the end comes with the commit).
fn query(index: &Index, s: &Segment) -> String {
    format!(
        "channel=0&container={}&codec={}&utc_start_ms={}&pts_start_ms={}&seq_start={}&init_bytes={}",
        index.container, s.codec, s.utc_start_ms, s.pts_start_ms, s.seq_start, s.init_bytes
    )
}

/// The query of a one-shot upload: the end is known up front, so the
/// upload is complete when its body matches its digest.
fn one_shot_query(index: &Index, s: &Segment) -> String {
    format!(
        "{}&utc_end_ms={}&pts_end_ms={}&seq_end={}",
        query(index, s),
        s.utc_end_ms,
        s.pts_end_ms,
        s.seq_end
    )
}

fn commit_body(data: &[u8], s: &Segment) -> serde_json::Value {
    json!({
        "sha256": sha256_hex(data),
        "bytes": data.len(),
        "utc_end_ms": s.utc_end_ms,
        "pts_end_ms": s.pts_end_ms,
        "seq_end": s.seq_end,
    })
}

/// An upload written by hand over its own socket, so the test decides
/// when each byte goes (or never goes).
struct RawUpload {
    sock: TcpStream,
    chunked: bool,
}

impl RawUpload {
    /// Sends the signed head of `PUT path` with a chunked body (`digest`
    /// `STREAMING`) or with `Content-Length: len`.
    fn start(cloud: &Cloud, dev: &Device, path: &str, digest: &str, len: Option<usize>) -> Self {
        let addr = cloud.base.trim_start_matches("http://");
        let sock = TcpStream::connect(addr).expect("connecting to the service");
        let mut head = format!("PUT {path} HTTP/1.1\r\nhost: {addr}\r\n");
        match len {
            Some(n) => head.push_str(&format!("content-length: {n}\r\n")),
            None => head.push_str("transfer-encoding: chunked\r\n"),
        }
        for (k, v) in dev.headers("PUT", path, digest) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut up = RawUpload {
            sock,
            chunked: len.is_none(),
        };
        up.sock
            .write_all(head.as_bytes())
            .expect("sending the head");
        up
    }

    /// Sends body bytes (as one chunk of a chunked body).
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.chunked {
            self.sock
                .write_all(format!("{:x}\r\n", bytes.len()).as_bytes())?;
            self.sock.write_all(bytes)?;
            self.sock.write_all(b"\r\n")?;
        } else {
            self.sock.write_all(bytes)?;
        }
        self.sock.flush()
    }

    /// Reads what the service answers until it closes the connection, for
    /// at most `limit`.
    fn answer(&mut self, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no end of the answer within {limit:?}");
            self.sock.set_read_timeout(Some(left)).unwrap();
            match self.sock.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("reading the answer: {e}"),
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    }
}

/// Staging files of uploads being written (`name#N`, object_store's).
fn staging(cloud: &Cloud) -> Vec<PathBuf> {
    walk(&cloud.data.join("objects"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains('#'))
        .collect()
}

/// Waits until `n` uploads are being written: their handlers are running.
fn wait_for_staging(cloud: &Cloud, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while staging(cloud).len() < n {
        assert!(
            Instant::now() < deadline,
            "the service never started storing {n} bodies: {:?}",
            staging(cloud)
        );
        std::thread::yield_now();
    }
}

/// Waits until the service refuses new connections (it has the signal and
/// closed its listener).
fn wait_until_refused(cloud: &Cloud) {
    let addr = cloud.base.trim_start_matches("http://");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the service still accepts connections after SIGTERM"
        );
        std::thread::yield_now();
    }
}

/// The ids of the segments the app can play in the recording's range: the
/// playlist's segment URLs.
fn playable(cloud: &Cloud, token: &str, index: &Index) -> Vec<String> {
    let (start, end) = (
        index.segments[0].utc_start_ms,
        index.segments.last().unwrap().utc_end_ms,
    );
    let a = cloud.app_get(
        &format!("/v1/devices/cam1/channels/0/playlist.m3u8?start_ms={start}&end_ms={end}"),
        Some(token),
    );
    if a.status == 404 {
        return Vec::new();
    }
    assert_eq!(a.status, 200, "{}", a.text());
    a.text()
        .lines()
        .filter_map(|l| l.strip_prefix("/v1/devices/cam1/segments/"))
        .map(|l| l.split(['.', '?']).next().unwrap().to_string())
        .collect()
}

/// The SHA-256 of a segment's stored bytes, if the app finds it.
fn stored(cloud: &Cloud, token: &str, id: &str) -> Option<String> {
    let a = cloud.app_get(&format!("/v1/devices/cam1/segments/{id}"), Some(token));
    match a.status {
        200 => Some(sha256_hex(&a.body)),
        404 => None,
        s => panic!("segment {id}: {s} {}", a.text()),
    }
}

#[test]
fn sigterm_lets_an_upload_in_flight_finish_and_index_it_whole() {
    let (dir, index) = mux("shutdown-finish");
    // A grace far longer than the upload needs: it ends by itself.
    let (mut cloud, dev) = start("shutdown-finish", "30");
    let s = &index.segments[0];
    let data = std::fs::read(dir.join(&s.file)).unwrap();
    let path = format!(
        "/v1/device/segments/{}?{}",
        seg_id(s),
        one_shot_query(&index, s)
    );
    let mut up = RawUpload::start(&cloud, &dev, &path, &sha256_hex(&data), Some(data.len()));
    let half = data.len() / 2;
    up.send(&data[..half]).unwrap();
    wait_for_staging(&cloud, 1);

    let stopping = cloud.sigterm();
    wait_until_refused(&cloud);
    // The rest arrives while the service drains: the upload completes.
    up.send(&data[half..]).unwrap();
    let answer = up.answer(Duration::from_secs(20));
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(answer.contains(r#""state":"complete""#), "{answer}");
    let signalled = stopping.signalled;
    let status = stopping.wait(Duration::from_secs(30) + MARGIN);
    assert!(status.success(), "{status}");
    eprintln!(
        "exited {:?} after SIGTERM once its last request was answered (grace 30 s)",
        signalled.elapsed()
    );

    cloud.restart();
    let token = cloud.token();
    assert_eq!(playable(&cloud, &token, &index), [seg_id(s)]);
    assert_eq!(stored(&cloud, &token, &seg_id(s)), Some(sha256_hex(&data)));
    assert!(staging(&cloud).is_empty(), "{:?}", staging(&cloud));
    assert!(cloud.terminate(MARGIN).success());
}

#[test]
fn sigterm_with_stalled_and_trickling_uploads_exits_within_the_grace_and_indexes_nothing_half() {
    let (dir, index) = mux("shutdown-deadline");
    let grace = Duration::from_secs(2);
    let (mut cloud, dev) = start("shutdown-deadline", "2");
    let read = |s: &Segment| std::fs::read(dir.join(&s.file)).unwrap();
    let (s0, s1, s2) = (&index.segments[0], &index.segments[1], &index.segments[2]);

    // Complete before the signal: streamed and committed.
    let whole = read(s0);
    let a = dev.upload_segment(
        &seg_id(s0),
        &query(&index, s0),
        &whole,
        &commit_body(&whole, s0),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["state"], "complete");

    // Stalled: half the body, then nothing, the connection left open (a
    // camera that lost power without a FIN).
    let stalled = read(s1);
    let path1 = format!("/v1/device/segments/{}?{}", seg_id(s1), query(&index, s1));
    let mut stuck = RawUpload::start(&cloud, &dev, &path1, STREAMING, None);
    stuck.send(&stalled[..stalled.len() / 2]).unwrap();

    // Trickling: a first piece, then one byte a second (the pace is the
    // client's behaviour under test, not a wait), until the service is
    // gone; bounded in bytes either way.
    let trickled = read(s2);
    let path2 = format!("/v1/device/segments/{}?{}", seg_id(s2), query(&index, s2));
    let mut slow = RawUpload::start(&cloud, &dev, &path2, STREAMING, None);
    slow.send(&trickled[..1000]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let trickle = {
        let stop = stop.clone();
        let rest = trickled[1000..1120].to_vec();
        std::thread::spawn(move || {
            for b in rest {
                if stop.load(Ordering::Relaxed) || slow.send(&[b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };

    // Never finishes its request head: no handler holds it.
    let addr = cloud.base.trim_start_matches("http://").to_string();
    let mut headless = TcpStream::connect(&addr).unwrap();
    headless
        .write_all(format!("PUT {path1} HTTP/1.1\r\nhost: {addr}\r\n").as_bytes())
        .unwrap();

    // Both uploads are being written before the signal.
    wait_for_staging(&cloud, 2);
    let stopping = cloud.sigterm();
    let signalled = stopping.signalled;
    let status = stopping.wait(grace + MARGIN);
    let took = signalled.elapsed();
    assert!(status.success(), "exit after SIGTERM: {status}");
    eprintln!(
        "exited {took:?} after SIGTERM (grace {grace:?}) with a stalled, a trickling and a headless client"
    );
    stop.store(true, Ordering::Relaxed);
    trickle.join().unwrap();
    // The stalled upload was cut at the deadline and answered as partial.
    let answer = stuck.answer(Duration::from_secs(10));
    assert!(answer.contains(r#""state":"partial""#), "{answer}");
    drop(headless);

    cloud.restart();
    let token = cloud.token();
    // Complete before the signal: intact and playable.
    assert_eq!(
        stored(&cloud, &token, &seg_id(s0)),
        Some(sha256_hex(&whole))
    );
    assert_eq!(playable(&cloud, &token, &index), [seg_id(s0)]);
    // Cut: absent or partial, never complete. A commit with the whole
    // body's digest says which; it never completes them.
    for (s, data) in [(s1, &stalled), (s2, &trickled)] {
        let c = dev.json(
            "POST",
            &format!("/v1/device/segments/{}/commit", seg_id(s)),
            &commit_body(data, s),
        );
        eprintln!(
            "cut upload {} after the restart: {} {}",
            seg_id(s),
            c.status,
            c.text()
        );
        assert!(
            c.status == 404 || (c.status == 409 && c.text().contains("partial")),
            "{}: {} {}",
            seg_id(s),
            c.status,
            c.text()
        );
    }
    assert_eq!(playable(&cloud, &token, &index), [seg_id(s0)]);
    // No staging file is left, and every object has its row (objects
    // without one are swept at start): at most the three segments.
    assert!(staging(&cloud).is_empty(), "{:?}", staging(&cloud));
    let objects = walk(&cloud.data.join("objects"));
    assert!(objects.len() <= 3, "{objects:?}");
    // The cut ids upload again, whole.
    for (s, data) in [(s1, &stalled), (s2, &trickled)] {
        let a = dev.upload_segment(&seg_id(s), &query(&index, s), data, &commit_body(data, s));
        assert_eq!(a.status, 200, "{}", a.text());
        assert_eq!(a.json()["state"], "complete", "{}", a.text());
        assert_eq!(stored(&cloud, &token, &seg_id(s)), Some(sha256_hex(data)));
    }
    assert_eq!(
        playable(&cloud, &token, &index),
        [seg_id(s0), seg_id(s1), seg_id(s2)]
    );
    assert_eq!(
        stored(&cloud, &token, &seg_id(s0)),
        Some(sha256_hex(&whole))
    );
    let idle = cloud.sigterm();
    assert!(idle.wait(MARGIN).success());
}
