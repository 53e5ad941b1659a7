//! Test servers for tests/net.rs: an in-process hyper server (plain or TLS
//! with a CA made on the spot) whose routes behave in the ways the client
//! must cope with, a raw TCP server that breaks a response off, and a
//! helper that waits on the client's wake signal with a deadline.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use ivcs_host::net::{Exchange, NetError, ResponseHead, WakeSignal};
use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// How long any single wait in a test may take before it fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// What the server saw of one request body.
#[derive(Clone, Debug)]
pub struct Upload {
    pub content_length: Option<String>,
    pub chunked: bool,
    /// The body, or the error that cut it off.
    pub body: Result<Vec<u8>, String>,
}

#[derive(Default)]
struct Seen {
    log: Mutex<Log>,
    changed: Condvar,
}

#[derive(Default)]
struct Log {
    /// Upload requests whose handler has started.
    started: usize,
    uploads: Vec<Upload>,
}

/// A hyper server on 127.0.0.1 with these routes:
///
/// - `GET /hello`: 200 "hello".
/// - `GET /big?n=N`: 200 with N bytes, byte i = i % 251.
/// - `PUT|POST /upload`: reads the body, records it, answers its length.
/// - `PUT /held`: like `/upload`, but reads nothing before [`Server::release`].
/// - `PUT /refuse`: answers 413 without reading the body.
/// - `GET /never`: never answers.
pub struct Server {
    pub addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    seen: Arc<Seen>,
    gate: Arc<Semaphore>,
    _rt: tokio::runtime::Runtime,
}

impl Server {
    pub fn start() -> Server {
        Server::start_inner(None)
    }

    /// An HTTPS server presenting `chain` (leaf first) with `key`.
    pub fn start_tls(
        chain: Vec<rustls::pki_types::CertificateDer<'static>>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
    ) -> Server {
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        Server::start_inner(Some(TlsAcceptor::from(Arc::new(cfg))))
    }

    fn start_inner(tls: Option<TlsAcceptor>) -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let accepts = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Seen::default());
        let gate = Arc::new(Semaphore::new(0));
        let listener = rt.block_on(async {
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            // A small receive window, so an unread upload fills up quickly
            // and the client's back-pressure shows.
            sock.set_recv_buffer_size(64 * 1024).unwrap();
            sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            sock.listen(64).unwrap()
        });
        let addr = listener.local_addr().unwrap();
        let (a, s, g) = (accepts.clone(), seen.clone(), gate.clone());
        rt.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                a.fetch_add(1, Ordering::SeqCst);
                let (s, g, tls) = (s.clone(), g.clone(), tls.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| route(req, s.clone(), g.clone()));
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                        }
                        Some(acceptor) => {
                            // A client that refuses our certificate ends here.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                            }
                        }
                    }
                });
            }
        });
        Server {
            addr,
            accepts,
            seen,
            gate,
            _rt: rt,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// TCP connections accepted so far.
    pub fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }

    /// Lets `/held` handlers read their bodies.
    pub fn release(&self) {
        self.gate.add_permits(1_000);
    }

    /// Waits until `n` upload requests have arrived (their bodies may still
    /// be coming).
    pub fn wait_started(&self, n: usize) {
        let deadline = Instant::now() + PATIENCE;
        let mut s = self.seen.log.lock().unwrap();
        while s.started < n {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("only {} of {n} uploads started", s.started));
            s = self.seen.changed.wait_timeout(s, left).unwrap().0;
        }
    }

    /// Waits until `n` uploads were recorded and returns them all.
    pub fn uploads(&self, n: usize) -> Vec<Upload> {
        let deadline = Instant::now() + PATIENCE;
        let mut s = self.seen.log.lock().unwrap();
        while s.uploads.len() < n {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("only {} of {n} uploads arrived", s.uploads.len()));
            s = self.seen.changed.wait_timeout(s, left).unwrap().0;
        }
        s.uploads.clone()
    }
}

fn text(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(body.into()))
        .unwrap()
}

async fn route(
    req: Request<Incoming>,
    seen: Arc<Seen>,
    gate: Arc<Semaphore>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    Ok(match path.as_str() {
        "/hello" => text(200, "hello"),
        "/big" => {
            let n: usize = query.trim_start_matches("n=").parse().unwrap();
            text(200, (0..n).map(|i| (i % 251) as u8).collect::<Vec<u8>>())
        }
        "/never" => std::future::pending().await,
        "/refuse" => text(413, "too large"),
        "/upload" | "/held" => {
            seen.log.lock().unwrap().started += 1;
            seen.changed.notify_all();
            if path == "/held" {
                gate.acquire().await.unwrap().forget();
            }
            let header = |n: &str| {
                req.headers()
                    .get(n)
                    .map(|v| v.to_str().unwrap().to_string())
            };
            let content_length = header("content-length");
            let chunked = header("transfer-encoding").as_deref() == Some("chunked");
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes().to_vec())
                .map_err(|e| e.to_string());
            let answer = match &body {
                Ok(b) => text(200, b.len().to_string()),
                Err(e) => text(400, e.clone()),
            };
            seen.log.lock().unwrap().uploads.push(Upload {
                content_length,
                chunked,
                body,
            });
            seen.changed.notify_all();
            answer
        }
        _ => text(404, "no such route"),
    })
}

/// A raw TCP server that answers one request with a 200 declaring
/// `declared` body bytes, sends `sent` of them and closes the connection.
pub fn cut_server(declared: usize, sent: usize) -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut b).unwrap() == 0 {
                return;
            }
            head.push(b[0]);
        }
        write!(s, "HTTP/1.1 200 OK\r\ncontent-length: {declared}\r\n\r\n").unwrap();
        s.write_all(&vec![b'x'; sent]).unwrap();
        // Dropping the socket closes it mid-body.
    });
    addr
}

/// Calls `f` until it returns `Some`, sleeping on the wake signal between
/// calls; fails the test after [`PATIENCE`].
pub fn wait_for<T>(wake: &WakeSignal, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let seen = wake.generation();
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "no progress within {PATIENCE:?}");
        wake.wait(seen, deadline);
    }
}

/// The response head (or the error before it).
pub fn head(wake: &WakeSignal, ex: &Exchange) -> Result<ResponseHead, NetError> {
    wait_for(wake, || ex.poll_response())
}

/// The whole response body, read `max` bytes at a time; also returns the
/// largest piece seen.
pub fn body(wake: &WakeSignal, ex: &Exchange, max: u32) -> Result<(Vec<u8>, usize), NetError> {
    let mut out = Vec::new();
    let mut largest = 0;
    loop {
        let piece = wait_for(wake, || ex.read_body(max).transpose())?;
        if piece.is_empty() {
            return Ok((out, largest));
        }
        largest = largest.max(piece.len());
        out.extend_from_slice(&piece);
    }
}
