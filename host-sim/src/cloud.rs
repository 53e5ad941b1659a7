//! The real cloud service inside the simulation.
//!
//! The cloud's code (axum router, SQLite through sqlx, objects on disk in a
//! temporary directory) runs on its own thread with its own tokio runtime
//! ([`CloudWorker`]), because sqlx and the file store work on real threads
//! that virtual time cannot step. The simulated network ends at a front end
//! on the turmoil host `cloud` ([`serve`]): it reads each request as it
//! arrives in virtual time, then hands it to the worker and *blocks the
//! simulation* until the answer is ready. Virtual time stands still
//! meanwhile, so the cloud answers in zero simulated time and the run stays
//! deterministic whatever the real threads do. "Now" for the cloud is the
//! simulation's clock ([`ivcs_cloud::clock::Clock::manual`]).
//!
//! Two things the front end does itself, in virtual time: it holds
//! change-feed long-polls (the cloud runs with `change_wait_max_s = 0` and
//! answers them at once once the front end forwards them), and it plays the
//! cloud faults: 5xx bursts answered without the cloud, and restarts (the
//! host is crashed by the driver; the worker reopens the data directory).

use crate::trace::Trace;
use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use ivcs_cloud::app::App;
use ivcs_cloud::clock::Clock;
use ivcs_cloud::config::Config;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;
use tower::ServiceExt;

/// The cloud's host name on the simulated network.
pub const HOST: &str = "cloud";
/// Its port.
pub const PORT: u16 = 80;

type AdminFn = Box<dyn FnOnce(Arc<App>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

enum Job {
    Http(
        Box<hyper::Request<axum::body::Body>>,
        mpsc::Sender<hyper::Response<Bytes>>,
    ),
    Admin(AdminFn),
    Restart(mpsc::Sender<Result<()>>),
}

/// The cloud service on its own thread; every call blocks until done.
pub struct CloudWorker {
    jobs: mpsc::Sender<Job>,
    now_ms: Arc<AtomicU64>,
    _dir: tempfile::TempDir,
}

impl CloudWorker {
    /// Opens a fresh cloud in a temporary directory.
    pub fn start(backup_window_s: u64) -> Result<CloudWorker> {
        let dir = tempfile::tempdir().context("cloud data directory")?;
        let cfg = Config {
            data: dir.path().to_path_buf(),
            fsync: false,
            change_wait_max_s: 0,
            backup_window_s,
            min_free_bytes: 0,
            log: "error".into(),
            ..Config::default()
        };
        let now_ms = Arc::new(AtomicU64::new(crate::clock::EPOCH_MS));
        let clock = Clock::manual(now_ms.clone());
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
        std::thread::Builder::new()
            .name("sim-cloud".into())
            .spawn(move || worker(cfg, clock, rx, ready_tx))
            .context("starting the cloud thread")?;
        ready_rx
            .recv()
            .context("the cloud thread ended while opening")??;
        Ok(CloudWorker {
            jobs: tx,
            now_ms,
            _dir: dir,
        })
    }

    /// Sets the cloud's "now".
    pub fn set_now(&self, utc_ms: u64) {
        self.now_ms.store(utc_ms, Ordering::SeqCst);
    }

    /// Serves one request.
    pub fn http(&self, req: hyper::Request<Bytes>) -> hyper::Response<Bytes> {
        let (tx, rx) = mpsc::channel();
        let req = req.map(axum::body::Body::from);
        if self.jobs.send(Job::Http(Box::new(req), tx)).is_err() {
            return gone();
        }
        rx.recv().unwrap_or_else(|_| gone())
    }

    /// Runs `f` against the service state and returns its result.
    pub fn admin<R, F, Fut>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(Arc<App>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<R>> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        let job: AdminFn = Box::new(move |app| {
            Box::pin(async move {
                let _ = tx.send(f(app).await);
            })
        });
        self.jobs
            .send(Job::Admin(job))
            .map_err(|_| anyhow::anyhow!("the cloud thread has ended"))?;
        rx.recv().context("the cloud thread has ended")?
    }

    /// Closes the service and opens it again on the same data (a process
    /// restart: what is committed survives, in-memory state does not).
    pub fn restart(&self) -> Result<()> {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .send(Job::Restart(tx))
            .map_err(|_| anyhow::anyhow!("the cloud thread has ended"))?;
        rx.recv().context("the cloud thread has ended")?
    }
}

fn gone() -> hyper::Response<Bytes> {
    let mut r = hyper::Response::new(Bytes::from_static(b"the simulated cloud has stopped\n"));
    *r.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
    r
}

fn worker(cfg: Config, clock: Clock, rx: mpsc::Receiver<Job>, ready: mpsc::Sender<Result<()>>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(e.into()));
            return;
        }
    };
    let open = || rt.block_on(App::open_with_clock(cfg.clone(), clock.clone()));
    let mut app = match open() {
        Ok(a) => a,
        Err(e) => {
            let _ = ready.send(Err(anyhow::anyhow!("opening the cloud: {e}")));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let mut router = ivcs_cloud::server::router(app.clone());
    for job in rx {
        match job {
            Job::Http(req, tx) => {
                let resp = rt.block_on(async {
                    let resp = match router.clone().oneshot(*req).await {
                        Ok(r) => r,
                        Err(never) => match never {},
                    };
                    let (parts, body) = resp.into_parts();
                    let bytes = body.collect().await.map(|c| c.to_bytes());
                    hyper::Response::from_parts(parts, bytes.unwrap_or_default())
                });
                let _ = tx.send(resp);
            }
            Job::Admin(f) => rt.block_on(f(app.clone())),
            Job::Restart(tx) => {
                rt.block_on(app.repo.close());
                let r = open().map_err(|e| anyhow::anyhow!("reopening the cloud: {e}"));
                if let Ok(a) = &r {
                    app = a.clone();
                    router = ivcs_cloud::server::router(app.clone());
                }
                let _ = tx.send(r.map(|_| ()));
            }
        }
    }
}

/// What the front end shares with the driver.
pub struct Front {
    /// The service.
    pub worker: CloudWorker,
    /// Answer every request with this status (a 5xx burst), or 0.
    pub fail_status: Cell<u16>,
    /// The run's trace.
    pub trace: Trace,
}

/// The front end: accepts connections on `cloud:80` and serves them until
/// the host is crashed.
pub async fn serve(front: Rc<Front>) -> turmoil::Result {
    let listener = turmoil::net::TcpListener::bind(("0.0.0.0", PORT)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let front = front.clone();
        tokio::task::spawn_local(async move {
            let svc = service_fn(move |req| handle(front.clone(), req));
            // A connection the camera dropped ends here; nothing to report.
            // `Date` comes from virtual time (see `handle`), not hyper's
            // wall clock: the engine corrects its clock by it.
            let _ = hyper::server::conn::http1::Builder::new()
                .auto_date_header(false)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn handle(
    front: Rc<Front>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, hyper::Error> {
    let mut resp = answer(&front, req).await?;
    let now = std::time::UNIX_EPOCH + Duration::from_millis(crate::clock::true_utc_ms());
    if let Ok(v) = hyper::header::HeaderValue::from_str(&httpdate::fmt_http_date(now)) {
        resp.headers_mut().insert(hyper::header::DATE, v);
    }
    Ok(resp)
}

async fn answer(
    front: &Front,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = req.into_parts();
    // The whole body first, at the simulated link's pace; a connection that
    // breaks meanwhile never reaches the cloud (as a cut upload would leave
    // it: nothing committed).
    let body = body.collect().await?.to_bytes();
    let path = parts.uri.path().to_string();
    let what = format!("{} {}", parts.method, path);
    let status = front.fail_status.get();
    if status != 0 {
        front
            .trace
            .event("cloud", &what, &format!("fault {status}"));
        let mut r = hyper::Response::new(Full::new(Bytes::from_static(b"simulated fault\n")));
        *r.status_mut() =
            hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
        return Ok(r);
    }
    if path == "/v1/device/changes" {
        hold_long_poll(front, &parts).await;
    }
    front.worker.set_now(crate::clock::true_utc_ms());
    let resp = front
        .worker
        .http(hyper::Request::from_parts(parts, body.clone()));
    front.trace.event(
        "cloud",
        &what,
        &format!(
            "{} in {} out {}",
            resp.status().as_u16(),
            body.len(),
            resp.body().len()
        ),
    );
    Ok(resp.map(Full::new))
}

/// Holds a change-feed request in virtual time until the device's revision
/// moves past `since` or its `wait_s` passes, as the cloud itself would.
async fn hold_long_poll(front: &Front, parts: &hyper::http::request::Parts) {
    let query = parts.uri.query().unwrap_or("");
    let arg = |name: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v.parse::<u64>().ok())
    };
    let since = arg("since").unwrap_or(0);
    let wait_s = arg("wait_s").unwrap_or(30).min(60);
    let Some(device) = parts
        .headers
        .get(ivcs_cloud::auth::H_DEVICE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    else {
        return;
    };
    let d = device.clone();
    let Ok((app, current)) = front.worker.admin(move |app| async move {
        let rev = app.repo.revision(&d).await?;
        Ok((app, rev))
    }) else {
        return;
    };
    app.feed
        .wait(&device, current, since, Duration::from_secs(wait_s))
        .await;
}
