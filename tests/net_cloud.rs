//! The native host's network client (`ivcs_host::net`) against the real
//! `ivcs cloud serve` binary: plain GETs, signed device requests, a segment
//! streamed with a chunked body in small writes and committed, and a refusal
//! that arrives while the body is still streaming. Waits are on the client's
//! wake signal with a deadline, as the engine thread will wait.

use ivcs_host::net::{Exchange, Method, NetClient, NetConfig, NetError, Request, ResponseHead};
use ivcs_tests::Container;
use ivcs_tests::cli::Mux;
use ivcs_tests::cloud::{Cloud, Device, admin};
use ivcs_tests::fixtures::{self, AAC_48K_MONO, H264_360P_GOP2_24S};
use ivcs_tests::index::Index;
use ivcs_tests::paths::scratch_dir;
use serde_json::json;
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(30);

fn wait_for<T>(c: &NetClient, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let seen = c.wake().generation();
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "no progress within {PATIENCE:?}");
        c.wake().wait(seen, deadline);
    }
}

fn request(
    method: Method,
    path: &str,
    headers: Vec<(String, String)>,
    len: Option<u64>,
) -> Request {
    Request {
        method,
        path: path.into(),
        headers,
        content_length: len,
        timeout_ms: 0,
    }
}

/// Writes all of `data` in pieces of `piece` bytes, waiting on back-pressure.
fn write_all(c: &NetClient, ex: &Exchange, data: &[u8], piece: usize) -> Result<(), NetError> {
    let mut off = 0;
    while off < data.len() {
        let seen = c.wake().generation();
        let end = (off + piece).min(data.len());
        let n = ex.write(&data[off..end])? as usize;
        if n == 0 {
            c.wake().wait(seen, Instant::now() + PATIENCE);
        }
        off += n;
    }
    Ok(())
}

/// The head and whole body of a finished exchange.
fn answer(c: &NetClient, ex: &Exchange) -> (ResponseHead, Vec<u8>) {
    let head = wait_for(c, || ex.poll_response()).expect("response head");
    let mut body = Vec::new();
    loop {
        let piece = wait_for(c, || ex.read_body(16 * 1024).transpose()).expect("body");
        if piece.is_empty() {
            return (head, body);
        }
        body.extend_from_slice(&piece);
    }
}

/// A signed request with a whole body.
fn signed(
    c: &NetClient,
    dev: &Device,
    method: Method,
    path: &str,
    body: &[u8],
) -> (u16, serde_json::Value) {
    let name = format!("{:?}", method).to_uppercase();
    let h = dev.headers(&name, path, &ivcs_cloud::auth::sha256_hex(body));
    let ex = c
        .start(request(method, path, h, Some(body.len() as u64)))
        .unwrap();
    write_all(c, &ex, body, body.len().max(1)).unwrap();
    ex.finish().unwrap();
    let (head, body) = answer(c, &ex);
    let v = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body)));
    (head.status, v)
}

#[test]
fn the_host_client_talks_to_the_real_cloud() {
    fixtures::dir();
    let out = scratch_dir("net-cloud-mux");
    // The segment bytes only need to be real; the native muxer is enough.
    let mut mux = Mux::new(&H264_360P_GOP2_24S, Some(&AAC_48K_MONO), Container::Ts);
    mux.native = true;
    mux.run_ok(&out);
    let index = Index::load(&out).expect("index.json");
    let seg = &index.segments[0];
    let data = std::fs::read(out.join(&seg.file)).unwrap();

    let cloud = Cloud::start(&scratch_dir("net-cloud").join("data"), &[]);
    let c = NetClient::new(NetConfig::new(cloud.base.clone())).unwrap();

    // Health check, twice on one client.
    for _ in 0..2 {
        let ex = c
            .start(request(Method::Get, "/healthz", vec![], Some(0)))
            .unwrap();
        ex.finish().unwrap();
        let (head, body) = answer(&c, &ex);
        assert_eq!((head.status, body.as_slice()), (200, b"ok\n".as_slice()));
    }

    let dev = cloud.add_device("cam1");
    admin(
        &cloud.data,
        &["plan", "set", "cam1", "--type", "full-time", "--days", "7"],
    )
    .expect_success();
    let (status, plan) = signed(&c, &dev, Method::Get, "/v1/device/plan", b"");
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["channels"][0]["type"], "full-time");

    // A segment streamed as it would be while recorded: chunked, small writes.
    let id = format!("0-{}-{}", seg.utc_start_ms, seg.seq_start);
    let path = format!(
        "/v1/device/segments/{id}?channel=0&container=ts&codec={}&utc_start_ms={}&pts_start_ms={}&seq_start={}",
        seg.codec, seg.utc_start_ms, seg.pts_start_ms, seg.seq_start
    );
    let mut h = dev.headers("PUT", &path, "STREAMING");
    h.push(("expect".into(), "100-continue".into()));
    let ex = c.start(request(Method::Put, &path, h, None)).unwrap();
    write_all(&c, &ex, &data, 1316).unwrap();
    ex.finish().unwrap();
    let (head, body) = answer(&c, &ex);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(head.status, 200, "{v}");
    assert_eq!(v["state"], "received");
    assert_eq!(v["bytes"], data.len());

    let commit = json!({
        "sha256": ivcs_cloud::auth::sha256_hex(&data),
        "bytes": data.len(),
        "utc_end_ms": seg.utc_end_ms,
        "pts_end_ms": seg.pts_end_ms,
        "seq_end": seg.seq_end,
        "video_frames": seg.video_frames,
        "audio_frames": seg.audio_frames,
    });
    let (status, v) = signed(
        &c,
        &dev,
        Method::Post,
        &format!("/v1/device/segments/{id}/commit"),
        commit.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "complete");

    // A device without a plan is refused before its body is through.
    let dev2 = cloud.add_device("cam2");
    let mut h = dev2.headers("PUT", &path, "STREAMING");
    h.push(("expect".into(), "100-continue".into()));
    let ex = c.start(request(Method::Put, &path, h, None)).unwrap();
    let head = wait_for(&c, || {
        let _ = ex.write(&data[..4096]);
        ex.poll_response()
    })
    .unwrap();
    assert_eq!(head.status, 403);
}
