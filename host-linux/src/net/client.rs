//! [`NetClient`]: the configured connection to one cloud. It owns a
//! current-thread tokio runtime on one thread (`ivcs-net`) and a pooled
//! HTTP/1.1 client; [`NetClient::start`] is called from the engine thread,
//! checks the request, spawns its task and returns at once.
//!
//! [`NetClient::with_transport`] keeps everything but the connection: the
//! caller's [`Transport`] carries each request, and tasks run on the
//! caller's tokio runtime (host-sim's simulated network in virtual time).

use super::exchange::{Exchange, Slot, Unfinished, drive};
use super::request::{self, BaseUrl, Request};
use super::state::{Shared, UploadBody};

/// The network thread: its runtime, the sender whose drop stops it, the
/// thread.
type RuntimeThread = (
    tokio::runtime::Handle,
    tokio::sync::oneshot::Sender<()>,
    JoinHandle<()>,
);
use super::{HttpClient, NetError, WakeSignal, tls};
use anyhow::{Context, Result, bail};
use hyper::header::HeaderValue;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

/// hyper's smallest read buffer; the response-side cap cannot go below it.
const MIN_CAP: usize = 8192;

/// How the client reaches the cloud. Start from [`NetConfig::new`] and
/// change fields as needed.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// `http://host[:port][/prefix]` or `https://...`; request paths are
    /// joined to it.
    pub base_url: String,
    /// Extra trusted CA certificates (PEM), e.g. a self-hosted cloud's own CA.
    pub ca_pem: Option<Vec<u8>>,
    /// Trust the compiled-in Mozilla roots (default true). Turn off to trust
    /// only `ca_pem`.
    pub public_roots: bool,
    /// Limit for one TCP connect attempt (default 10 s); a slow DNS answer
    /// or TLS handshake is bounded by the exchange's deadline instead.
    pub connect_timeout: Duration,
    /// Whole-exchange deadline for requests with `timeout_ms == 0`
    /// (default 60 s).
    pub exchange_timeout: Duration,
    /// Cap on body bytes buffered per exchange and direction (default
    /// 64 KiB, at least 8 KiB).
    pub max_buffered: usize,
    /// Exchanges open at once (default 8); memory is at most about
    /// `2 × max_buffered` per exchange.
    pub max_exchanges: usize,
    /// Idle connections are closed after this (default 50 s), shorter than
    /// the usual 60–75 s of servers and proxies, so a request is rarely
    /// sent on a connection the server is closing.
    pub idle_timeout: Duration,
    /// `user-agent` sent when the engine sets none.
    pub user_agent: String,
    /// Notified on every exchange's progress; see [`WakeSignal`].
    pub wake: Arc<WakeSignal>,
}

impl NetConfig {
    /// Defaults for `base_url`.
    pub fn new(base_url: impl Into<String>) -> NetConfig {
        NetConfig {
            base_url: base_url.into(),
            ca_pem: None,
            public_roots: true,
            connect_timeout: Duration::from_secs(10),
            exchange_timeout: Duration::from_secs(60),
            max_buffered: 64 * 1024,
            max_exchanges: 8,
            idle_timeout: Duration::from_secs(50),
            user_agent: concat!("ivcs-host/", env!("CARGO_PKG_VERSION")).to_string(),
            wake: WakeSignal::new(),
        }
    }

    /// Adds the CA certificates of a PEM file to `ca_pem`.
    pub fn read_ca_file(mut self, path: &Path) -> Result<NetConfig> {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let all = self.ca_pem.get_or_insert_with(Vec::new);
        // PEM blocks must start on their own line.
        if !all.is_empty() {
            all.push(b'\n');
        }
        all.extend(pem);
        Ok(self)
    }
}

/// Carries one request to the cloud and returns its response, whose body
/// the exchange then reads: how host-sim puts exchanges on its simulated
/// network. Errors use the exchange's kinds (`Unreachable` for a failed
/// connect, `Closed` for a broken connection).
pub trait Transport: Send + Sync + 'static {
    /// Sends `req` (an absolute URI on the configured base URL).
    fn send(&self, req: hyper::Request<UploadBody>) -> SendFuture;
}

/// What [`Transport::send`] returns.
pub type SendFuture = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<hyper::Response<hyper::body::Incoming>, NetError>>
            + Send,
    >,
>;

/// How a client's requests travel.
#[derive(Clone)]
pub(crate) enum Carrier {
    Pooled(HttpClient),
    Custom(Arc<dyn Transport>),
}

/// The checks every client's configuration passes, and what they yield.
fn checked(cfg: &NetConfig) -> Result<(BaseUrl, HeaderValue)> {
    let base = BaseUrl::parse(&cfg.base_url)?;
    if cfg.max_exchanges == 0 {
        bail!("max_exchanges must be at least 1");
    }
    let user_agent = HeaderValue::from_str(&cfg.user_agent).context("user agent")?;
    Ok((base, user_agent))
}

/// A client for one cloud; cheap to clone (clones share the runtime and the
/// connection pool). The runtime stops when the last clone is dropped;
/// exchanges still open then fail with `Closed`.
#[derive(Clone)]
pub struct NetClient {
    inner: Arc<Inner>,
}

struct Inner {
    client: Carrier,
    /// The network thread's runtime; `None`: the caller's (custom transport).
    handle: Option<tokio::runtime::Handle>,
    base: BaseUrl,
    user_agent: HeaderValue,
    cap: usize,
    max_exchanges: usize,
    exchange_timeout: Duration,
    active: Arc<AtomicUsize>,
    wake: Arc<WakeSignal>,
    /// Exchanges an engine may hand to its successor (`network.adopt`),
    /// by id; weak, so they live exactly as long as an engine holds them.
    named: Mutex<HashMap<u64, Weak<Exchange>>>,
    next_id: AtomicU64,
    /// Dropping the sender ends the runtime thread.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl NetClient {
    /// Checks the configuration, builds TLS and starts the runtime thread.
    pub fn new(cfg: NetConfig) -> Result<NetClient> {
        if cfg.max_buffered < MIN_CAP {
            bail!("max_buffered must be at least {MIN_CAP} bytes");
        }
        let (base, user_agent) = checked(&cfg)?;
        let tls = tls::client_config(cfg.public_roots, cfg.ca_pem.as_deref())?;

        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(cfg.connect_timeout));
        http.set_nodelay(true);
        let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls);
        // An https cloud is never reached in clear text.
        let builder = if base.is_https() {
            builder.https_only()
        } else {
            builder.https_or_http()
        };
        let connector = builder.enable_http1().wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(cfg.idle_timeout)
            .pool_max_idle_per_host(cfg.max_exchanges)
            // Bounds hyper's read buffer and so the size of one response
            // frame, which is all an exchange holds (see state.rs).
            .http1_max_buf_size(cfg.max_buffered)
            .build(connector);

        // One thread for all network I/O (the camera has little CPU); the
        // blocking pool is only used by getaddrinfo, one lookup at a time.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .max_blocking_threads(1)
            .thread_name("ivcs-dns")
            .build()
            .context("starting the network runtime")?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("ivcs-net".into())
            .spawn(move || {
                crate::sched::background_thread();
                rt.block_on(async {
                    let _ = stopped.await;
                });
                // Do not wait for a DNS lookup stuck in getaddrinfo.
                rt.shutdown_background();
            })
            .context("starting the network thread")?;

        Ok(NetClient::assemble(
            cfg,
            base,
            user_agent,
            Carrier::Pooled(client),
            Some((handle, stop, thread)),
        ))
    }

    /// A client whose requests `transport` carries, on the tokio runtime of
    /// whoever calls [`NetClient::start`] (which must be inside one). TLS
    /// settings and `connect_timeout` are the transport's business.
    pub fn with_transport(cfg: NetConfig, transport: Arc<dyn Transport>) -> Result<NetClient> {
        let (base, user_agent) = checked(&cfg)?;
        Ok(NetClient::assemble(
            cfg,
            base,
            user_agent,
            Carrier::Custom(transport),
            None,
        ))
    }

    fn assemble(
        cfg: NetConfig,
        base: BaseUrl,
        user_agent: HeaderValue,
        client: Carrier,
        thread: Option<RuntimeThread>,
    ) -> NetClient {
        let (handle, stop, thread) = match thread {
            Some((h, s, t)) => (Some(h), Some(s), Some(t)),
            None => (None, None, None),
        };
        NetClient {
            inner: Arc::new(Inner {
                client,
                handle,
                base,
                user_agent,
                cap: cfg.max_buffered,
                max_exchanges: cfg.max_exchanges,
                exchange_timeout: cfg.exchange_timeout,
                active: Arc::new(AtomicUsize::new(0)),
                wake: cfg.wake,
                named: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                stop,
                thread,
            }),
        }
    }

    /// The signal every exchange of this client notifies.
    pub fn wake(&self) -> &Arc<WakeSignal> {
        &self.inner.wake
    }

    /// Starts an exchange and returns at once. The request is checked first:
    /// a bad path or header, or too many open exchanges, is `Invalid`
    /// without any connection being made. Connection failures arrive later
    /// through [`Exchange::poll_response`].
    pub fn start(&self, req: Request) -> Result<Exchange, NetError> {
        let inner = &*self.inner;
        let builder = request::build(&inner.base, &inner.user_agent, &req)?;
        let what = format!("{} {}", req.method.as_http(), req.path);
        let slot = Slot::take(&inner.active, inner.max_exchanges).ok_or_else(|| {
            NetError::Invalid(format!(
                "{what}: {} exchanges are already open",
                inner.max_exchanges
            ))
        })?;
        let shared = Arc::new(Shared::new(
            what,
            inner.cap,
            req.content_length,
            inner.wake.clone(),
        ));
        let body = UploadBody {
            shared: shared.clone(),
            empty: req.content_length == Some(0),
        };
        let http_req = builder
            .body(body)
            .map_err(|e| NetError::Invalid(format!("{}: {e}", shared.what)))?;
        let timeout = match req.timeout_ms {
            0 => inner.exchange_timeout,
            ms => Duration::from_millis(u64::from(ms)),
        };
        let deadline = tokio::time::Instant::now() + timeout;
        tracing::debug!(exchange = %shared.what, ?timeout, "start");
        let work = drive(
            inner.client.clone(),
            http_req,
            Unfinished::new(shared.clone()),
            deadline,
        );
        let task = match &inner.handle {
            Some(h) => h.spawn(work),
            None => tokio::spawn(work),
        };
        Ok(Exchange {
            shared,
            task: task.abort_handle(),
            _slot: slot,
        })
    }
}

impl NetClient {
    /// Names an exchange for [`NetClient::adopt`] (a live engine update
    /// hands it to the next engine): ids are unique for this client and
    /// never reused.
    pub fn name(&self, ex: &Arc<Exchange>) -> u64 {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut named = self.inner.named.lock().unwrap_or_else(|e| e.into_inner());
        // Few exchanges are open at once: forget the finished ones.
        if named.len() >= 64 {
            named.retain(|_, w| w.strong_count() > 0);
        }
        named.insert(id, Arc::downgrade(ex));
        id
    }

    /// The exchange named `id`, if an engine still holds it.
    pub fn adopt(&self, id: u64) -> Option<Arc<Exchange>> {
        let named = self.inner.named.lock().unwrap_or_else(|e| e.into_inner());
        named.get(&id).and_then(Weak::upgrade)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            // The runtime thread never holds a NetClient, so this is never
            // a self-join; a panic over there has already been reported.
            let _ = t.join();
        }
    }
}
