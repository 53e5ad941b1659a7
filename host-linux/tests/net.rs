//! The network client against real sockets: an in-process hyper server
//! (plain and TLS), a raw TCP server that breaks off, and closed ports.
//! Nothing sleeps to wait: every wait is on the client's wake signal with a
//! deadline, exactly as the engine thread will wait.

mod support;

use ivcs_host::net::{Method, NetClient, NetConfig, NetError, Request};
use std::time::{Duration, Instant};
use support::{Server, body, cut_server, head, wait_for};

fn get(path: &str) -> Request {
    Request {
        method: Method::Get,
        path: path.into(),
        headers: vec![],
        content_length: Some(0),
        timeout_ms: 0,
    }
}

fn put(path: &str, content_length: Option<u64>) -> Request {
    Request {
        method: Method::Put,
        path: path.into(),
        headers: vec![],
        content_length,
        timeout_ms: 0,
    }
}

fn client(base: &str) -> NetClient {
    NetClient::new(NetConfig::new(base)).unwrap()
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 256) as u8).collect()
}

/// GET `path` to the end; the status and body.
fn fetch(c: &NetClient, path: &str) -> (u16, Vec<u8>) {
    let ex = c.start(get(path)).unwrap();
    ex.finish().unwrap();
    let h = head(c.wake(), &ex).unwrap();
    let (b, _) = body(c.wake(), &ex, 64 * 1024).unwrap();
    (h.status, b)
}

#[test]
fn get_returns_status_headers_and_body() {
    let server = Server::start();
    let c = client(&server.url());
    let ex = c.start(get("/hello")).unwrap();
    assert_eq!(ex.read_body(10), Ok(None), "nothing before the head");
    ex.finish().unwrap();
    let h = head(c.wake(), &ex).unwrap();
    assert_eq!(h.status, 200);
    assert!(
        h.headers
            .iter()
            .any(|(k, v)| k == "content-length" && v == "5"),
        "{:?}",
        h.headers
    );
    assert_eq!(body(c.wake(), &ex, 3).unwrap().0, b"hello");
    assert_eq!(ex.read_body(3), Ok(Some(vec![])), "the end stays the end");
    assert_eq!(fetch(&c, "/nope").0, 404);
}

#[test]
fn chunked_upload_of_16_mb_in_small_writes_respects_back_pressure() {
    let server = Server::start();
    let mut cfg = NetConfig::new(server.url());
    cfg.max_buffered = 64 * 1024;
    let c = NetClient::new(cfg).unwrap();
    let data = pattern(16 << 20);
    let ex = c.start(put("/held", None)).unwrap();
    let (mut off, mut zeros, mut released) = (0, 0, false);
    while off < data.len() {
        let seen = c.wake().generation();
        let end = (off + 1000).min(data.len());
        let n = ex.write(&data[off..end]).unwrap() as usize;
        assert!(ex.buffered().0 <= 64 * 1024, "the cap holds");
        if n == 0 {
            zeros += 1;
            if !released {
                // The server has not read a byte: the buffers are full.
                // Let it read, and check that capacity comes back.
                released = true;
                server.release();
            }
            c.wake().wait(seen, Instant::now() + support::PATIENCE);
        }
        off += n;
    }
    assert!(zeros > 0, "writes never met back-pressure");
    ex.finish().unwrap();
    assert_eq!(head(c.wake(), &ex).unwrap().status, 200);
    assert_eq!(body(c.wake(), &ex, 100).unwrap().0, b"16777216");
    let up = &server.uploads(1)[0];
    assert!(up.chunked, "no content-length: chunked");
    assert_eq!(up.content_length, None);
    assert!(up.body.as_ref().unwrap() == &data, "bytes arrive intact");
}

#[test]
fn content_length_upload_is_sent_with_its_length() {
    let server = Server::start();
    let c = client(&server.url());
    let data = pattern(200_000);
    let ex = c.start(put("/upload", Some(data.len() as u64))).unwrap();
    let mut off = 0;
    while off < data.len() {
        let seen = c.wake().generation();
        let n = ex.write(&data[off..]).unwrap() as usize;
        if n == 0 {
            c.wake().wait(seen, Instant::now() + support::PATIENCE);
        }
        off += n;
    }
    ex.finish().unwrap();
    assert_eq!(head(c.wake(), &ex).unwrap().status, 200);
    let up = &server.uploads(1)[0];
    assert_eq!(up.content_length.as_deref(), Some("200000"));
    assert!(!up.chunked);
    assert!(up.body.as_ref().unwrap() == &data);
}

#[test]
fn body_length_misuse_is_invalid_and_changes_nothing() {
    let server = Server::start();
    let c = client(&server.url());
    let ex = c.start(put("/upload", Some(10))).unwrap();
    assert!(matches!(ex.write(&[1; 11]), Err(NetError::Invalid(_))));
    assert_eq!(ex.write(&[1; 4]), Ok(4));
    assert!(matches!(ex.finish(), Err(NetError::Invalid(m)) if m.contains("4 of the declared 10")),);
    assert_eq!(ex.write(&[2; 6]), Ok(6));
    ex.finish().unwrap();
    ex.finish().unwrap();
    assert!(matches!(ex.write(&[3]), Err(NetError::Invalid(m)) if m.contains("after finish")));
    assert_eq!(ex.write_capacity(), 0);
    assert!(matches!(ex.read_body(0), Err(NetError::Invalid(_))));
    assert_eq!(head(c.wake(), &ex).unwrap().status, 200);
    assert_eq!(
        server.uploads(1)[0].body.as_deref().unwrap(),
        &[1, 1, 1, 1, 2, 2, 2, 2, 2, 2]
    );
}

#[test]
fn sequential_exchanges_reuse_one_connection() {
    let server = Server::start();
    let c = client(&server.url());
    for _ in 0..5 {
        assert_eq!(fetch(&c, "/hello"), (200, b"hello".to_vec()));
    }
    let ex = c.start(put("/upload", None)).unwrap();
    ex.write(b"chunked too").unwrap();
    ex.finish().unwrap();
    assert_eq!(body(c.wake(), &ex, 100).unwrap().0, b"11");
    drop(ex);
    assert_eq!(fetch(&c, "/hello").0, 200);
    assert_eq!(server.accepts(), 1, "keep-alive: one TCP connection");
}

#[test]
fn a_server_that_never_answers_times_out_at_the_deadline() {
    let server = Server::start();
    let c = client(&server.url());
    let t0 = Instant::now();
    let mut r = get("/never");
    r.timeout_ms = 300;
    let ex = c.start(r).unwrap();
    ex.finish().unwrap();
    assert_eq!(head(c.wake(), &ex), Err(NetError::Timeout));
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(ex.read_body(10), Err(NetError::Timeout));
    assert!(matches!(ex.write(b"x"), Err(NetError::Invalid(_))));
}

#[test]
fn timeout_zero_uses_the_clients_default() {
    let server = Server::start();
    let mut cfg = NetConfig::new(server.url());
    cfg.exchange_timeout = Duration::from_millis(200);
    let c = NetClient::new(cfg).unwrap();
    let ex = c.start(get("/never")).unwrap();
    ex.finish().unwrap();
    assert_eq!(head(c.wake(), &ex), Err(NetError::Timeout));
}

#[test]
fn a_closed_port_is_unreachable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = client(&format!("http://127.0.0.1:{port}"));
    let ex = c.start(put("/upload", None)).unwrap();
    ex.write(b"queued before the connect fails").unwrap();
    match head(c.wake(), &ex) {
        Err(NetError::Unreachable(m)) => {
            assert!(m.contains("PUT /upload") && m.contains("refused"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(ex.write(b"x"), Err(NetError::Unreachable(_))));
}

#[test]
fn a_connection_cut_mid_body_is_closed_after_the_bytes_that_came() {
    let addr = cut_server(100_000, 1_000);
    let c = client(&format!("http://{addr}"));
    let ex = c.start(get("/x")).unwrap();
    ex.finish().unwrap();
    assert_eq!(head(c.wake(), &ex).unwrap().status, 200);
    let mut got = 0;
    let err = loop {
        match wait_for(c.wake(), || ex.read_body(4096).transpose()) {
            Ok(p) => {
                assert!(!p.is_empty(), "the body cannot end early");
                got += p.len();
            }
            Err(e) => break e,
        }
    };
    assert_eq!(got, 1_000);
    assert!(matches!(err, NetError::Closed(_)), "{err:?}");
}

#[test]
fn dropping_an_exchange_mid_upload_aborts_it_and_drops_the_connection() {
    let server = Server::start();
    let c = client(&server.url());
    assert_eq!(fetch(&c, "/hello").0, 200);
    let ex = c.start(put("/upload", None)).unwrap();
    assert_eq!(ex.write(&pattern(10_000)), Ok(10_000));
    server.wait_started(1);
    drop(ex);
    let up = &server.uploads(1)[0];
    assert!(up.body.is_err(), "the server saw a cut body: {up:?}");
    assert_eq!(fetch(&c, "/hello").0, 200);
    assert_eq!(server.accepts(), 2, "a half-sent connection is not reused");
}

#[test]
fn paths_and_headers_are_checked_before_any_connection() {
    let server = Server::start();
    let c = client(&server.url());
    for p in ["http://evil/", "//evil/x", "v1/plan", "/a\r\nx: y", "/a b"] {
        assert!(
            matches!(c.start(get(p)), Err(NetError::Invalid(_))),
            "{p:?}"
        );
    }
    let mut r = get("/hello");
    r.headers = vec![("x-a".into(), "1\r\nhost: evil".into())];
    assert!(matches!(c.start(r), Err(NetError::Invalid(_))));
    let mut r = get("/hello");
    r.headers = vec![("content-length".into(), "0".into())];
    assert!(matches!(c.start(r), Err(NetError::Invalid(_))));
    assert_eq!(server.accepts(), 0);
}

#[test]
fn a_large_response_is_read_in_pieces_no_larger_than_the_cap() {
    let server = Server::start();
    let mut cfg = NetConfig::new(server.url());
    cfg.max_buffered = 16 * 1024;
    let c = NetClient::new(cfg).unwrap();
    let ex = c.start(get("/big?n=1000000")).unwrap();
    ex.finish().unwrap();
    assert_eq!(head(c.wake(), &ex).unwrap().status, 200);
    let mut got = Vec::new();
    loop {
        let p = wait_for(c.wake(), || ex.read_body(1 << 20).transpose()).unwrap();
        assert!(ex.buffered().1 <= 16 * 1024);
        assert!(p.len() <= 16 * 1024, "piece of {} bytes", p.len());
        if p.is_empty() {
            break;
        }
        got.extend_from_slice(&p);
    }
    assert_eq!(got.len(), 1_000_000);
    assert!(got.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
}

#[test]
fn an_attached_picture_is_sent_whole_and_writes_wait_for_it() {
    let server = Server::start();
    let c = client(&server.url()); // cap 64 KiB
    let pic = bytes::Bytes::from(pattern(300_000));
    let ex = c.start(put("/upload", Some(300_010))).unwrap();
    assert_eq!(ex.write(b"head:"), Ok(5));
    ex.attach(pic.clone()).unwrap();
    // The picture overshoots the cap: no room for writes until it drains.
    let mut tail: &[u8] = b":tail";
    while !tail.is_empty() {
        let seen = c.wake().generation();
        let n = ex.write(tail).unwrap() as usize;
        if n == 0 {
            c.wake().wait(seen, Instant::now() + support::PATIENCE);
        }
        tail = &tail[n..];
    }
    ex.finish().unwrap();
    assert_eq!(head(c.wake(), &ex).unwrap().status, 200);
    let got = server.uploads(1)[0].body.clone().unwrap();
    assert_eq!(&got[..5], b"head:");
    assert!(got[5..300_005] == pic[..]);
    assert_eq!(&got[300_005..], b":tail");
}

#[test]
fn an_early_refusal_arrives_while_the_body_is_still_streaming() {
    let server = Server::start();
    let c = client(&server.url());
    let mut r = put("/refuse", None);
    r.headers = vec![("expect".into(), "100-continue".into())];
    let ex = c.start(r).unwrap();
    let chunk = pattern(4096);
    let h = wait_for(c.wake(), || {
        // Keep streaming until the answer shows up (or the server hangs up).
        let _ = ex.write(&chunk);
        ex.poll_response()
    });
    assert_eq!(h.unwrap().status, 413);
    // The server hangs up on the unread body; writing then fails instead of
    // filling the buffer and waiting for the deadline.
    let err = wait_for(c.wake(), || ex.write(&chunk).err());
    assert!(matches!(err, NetError::Closed(_)), "{err:?}");
}

#[test]
fn open_exchanges_are_limited() {
    let server = Server::start();
    let mut cfg = NetConfig::new(server.url());
    cfg.max_exchanges = 2;
    let c = NetClient::new(cfg).unwrap();
    let a = c.start(get("/never")).unwrap();
    let _b = c.start(get("/never")).unwrap();
    assert!(
        matches!(c.start(get("/hello")), Err(NetError::Invalid(m)) if m.contains("already open"))
    );
    drop(a);
    assert_eq!(fetch(&c, "/hello").0, 200);
}

#[test]
fn exchanges_fail_as_closed_when_the_client_goes_away() {
    let server = Server::start();
    let c = client(&server.url());
    let wake = c.wake().clone();
    let ex = c.start(get("/never")).unwrap();
    ex.finish().unwrap();
    drop(c);
    match head(&wake, &ex) {
        Err(NetError::Closed(m)) => assert!(m.contains("stopped"), "{m}"),
        other => panic!("{other:?}"),
    }
}

mod https {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        SanType,
    };
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    /// A CA and a server certificate for 127.0.0.1 it signed; returns the
    /// HTTPS server and the CA's PEM.
    fn tls_server() -> (Server, String) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "ivcs test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);

        let key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        leaf.subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        let cert = leaf.signed_by(&key, &issuer).unwrap();
        let server = Server::start_tls(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        );
        (server, ca_cert.pem())
    }

    fn https_url(s: &Server) -> String {
        format!("https://127.0.0.1:{}", s.addr.port())
    }

    #[test]
    fn a_server_signed_by_the_configured_ca_is_trusted() {
        let (server, ca) = tls_server();
        let mut cfg = NetConfig::new(https_url(&server));
        cfg.ca_pem = Some(ca.clone().into_bytes());
        let c = NetClient::new(cfg).unwrap();
        assert_eq!(fetch(&c, "/hello"), (200, b"hello".to_vec()));
        assert_eq!(fetch(&c, "/hello").0, 200);
        assert_eq!(server.accepts(), 1, "TLS connections are reused too");

        // Trusting only the private CA, read from a file, works as well.
        let file = std::env::temp_dir().join(format!("ivcs-net-ca-{}.pem", std::process::id()));
        std::fs::write(&file, ca).unwrap();
        let mut cfg = NetConfig::new(https_url(&server))
            .read_ca_file(&file)
            .unwrap();
        std::fs::remove_file(&file).unwrap();
        cfg.public_roots = false;
        let c = NetClient::new(cfg).unwrap();
        assert_eq!(fetch(&c, "/hello").0, 200);
    }

    #[test]
    fn an_untrusted_certificate_is_unreachable() {
        let (server, _ca) = tls_server();
        let c = client(&https_url(&server));
        let ex = c.start(get("/hello")).unwrap();
        ex.finish().unwrap();
        match head(c.wake(), &ex) {
            Err(NetError::Unreachable(m)) => assert!(m.contains("certificate"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tls_to_a_plain_http_server_is_unreachable() {
        let server = Server::start(); // speaks plain HTTP only
        let c = client(&https_url(&server));
        let ex = c.start(get("/hello")).unwrap();
        ex.finish().unwrap();
        assert!(matches!(head(c.wake(), &ex), Err(NetError::Unreachable(_))));
    }
}
