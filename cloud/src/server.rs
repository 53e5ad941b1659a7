//! `ivcs cloud serve`: the router (device API, app API, health, metrics,
//! OpenAPI document, the web viewer's files), the background jobs (change-feed poller, retention)
//! and graceful shutdown.

use crate::app::App;
use crate::error::{Error, ErrorKind, Result};
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use futures_util::StreamExt;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::future::IntoFuture;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// The whole HTTP surface.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(crate::device_api::routes())
        .merge(crate::app_api::routes())
        .merge(crate::release_api::routes())
        .merge(crate::openapi::routes())
        .merge(crate::viewer::routes())
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            count_request,
        ))
        .with_state(app)
}

/// Counts every request, whatever route answers it.
async fn count_request(
    State(app): State<Arc<App>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    crate::metrics::inc(&app.metrics.http_requests_total);
    next.run(req).await
}

async fn healthz(State(app): State<Arc<App>>) -> Result<&'static str> {
    // Healthy means the database answers.
    app.repo.tombstone_count().await?;
    Ok("ok\n")
}

async fn metrics(State(app): State<Arc<App>>) -> Result<impl IntoResponse> {
    let pending = app.repo.tombstone_count().await?;
    let devices = app.repo.devices().await?.len() as u64;
    let body = app.metrics.render(&[
        (
            "tombstones_pending",
            "Objects queued for deletion.",
            pending,
        ),
        ("devices", "Registered devices.", devices),
        (
            "change_feed_waiters",
            "Device requests waiting on the change feed.",
            app.feed.waiters(),
        ),
    ]);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body))
}

/// Picks up revisions written by other processes (admin commands) and
/// wakes the devices waiting on the change feed.
async fn change_poller(app: Arc<App>) {
    let period = Duration::from_millis(app.cfg.change_poll_ms.max(50));
    let mut high = app.feed.high();
    loop {
        tokio::time::sleep(period).await;
        match app.repo.changed_since(high).await {
            Ok(changes) => {
                for (device, rev) in changes {
                    high = high.max(rev);
                    app.feed.publish(&device, rev);
                }
            }
            Err(e) => tracing::warn!(error = %e, "change poller"),
        }
    }
}

/// Runs retention every `retention_interval_s`.
async fn retention_job(app: Arc<App>) {
    let period = Duration::from_secs(app.cfg.retention_interval_s.max(1));
    loop {
        match app.retention_pass(app.now_ms()).await {
            Ok(n) if n > 0 => tracing::info!(segments = n, "retention removed segments"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention pass failed"),
        }
        tokio::time::sleep(period).await;
    }
}

/// How long a shutdown waits, after the deadline cut the request bodies
/// still arriving, for the requests to answer and their connections to
/// close; then they are dropped where they wait. (What is left then is a
/// client that never finished its request head, or a response body its
/// client stopped reading.)
const CUT_GRACE: Duration = Duration::from_secs(2);
/// How long a shutdown waits for the database's connections to come back.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// Where a shutdown is, as the requests see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Serving normally.
    Serving,
    /// A signal came: no new connections, requests in flight finish.
    Draining,
    /// The deadline passed: request bodies still arriving are cut.
    Cut,
}

/// The shutdown state every request carries (see [`cut_at_deadline`]).
struct Deadline {
    phase: watch::Receiver<Phase>,
    /// Requests whose handlers are running.
    running: AtomicUsize,
}

/// Counts a running request for as long as it lives.
struct Running<'a>(&'a AtomicUsize);

impl<'a> Running<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Running(n)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Waits for the deadline (forever if the service dropped its sender).
async fn until_cut(phase: &mut watch::Receiver<Phase>) {
    if phase.wait_for(|p| *p == Phase::Cut).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Hands the request on with a body that breaks off at the shutdown
/// deadline, as if its client had gone: an upload whose client stalls or
/// trickles then stores what arrived as a partial segment and answers, the
/// way it does for a dropped connection, and the handler's own work (rows,
/// trial debit, event status) completes instead of being dropped halfway.
async fn cut_at_deadline(
    State(d): State<Arc<Deadline>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let _running = Running::new(&d.running);
    let (parts, body) = req.into_parts();
    let chunks = futures_util::stream::unfold(
        Some((body.into_data_stream(), d.phase.clone())),
        |state| async move {
            let (mut data, mut phase) = state?;
            tokio::select! {
                chunk = data.next() => Some((chunk?, Some((data, phase)))),
                () = until_cut(&mut phase) => {
                    Some((Err(axum::Error::new("the service is shutting down")), None))
                }
            }
        },
    );
    let req = axum::extract::Request::from_parts(parts, axum::body::Body::from_stream(chunks));
    next.run(req).await
}

/// Serves until SIGINT/SIGTERM. Prints `listening on ADDR` once bound, so a
/// caller that asked for port 0 learns the port.
///
/// The shutdown is bounded: at the signal the listener closes and waiting
/// long polls answer; requests in flight get `shutdown_grace_s` to finish;
/// then the request bodies still arriving are cut ([`cut_at_deadline`]),
/// and whatever is still open [`CUT_GRACE`] later is dropped. A client
/// that stopped sending mid-body (a camera losing power without a FIN) or
/// trickles bytes cannot hold the process.
pub async fn serve(app: Arc<App>) -> Result<()> {
    let _lock = lock_data_dir(&app.cfg.data)?;
    app.objects.sweep_staging()?;
    let orphans = app.sweep_orphans().await?;
    if orphans > 0 {
        tracing::info!(objects = orphans, "removed objects without rows");
    }
    let signal = shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(app.cfg.listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, data = %app.cfg.data.display(), "listening");
    if !app.cfg.viewer_dir.is_dir() {
        // Not fatal: the APIs work without it, and `/` says the same.
        tracing::warn!(
            viewer_dir = %app.cfg.viewer_dir.display(),
            "the web viewer is not installed; / answers 503 (set viewer_dir)"
        );
    }
    #[allow(clippy::print_stdout)]
    {
        println!("listening on {addr}");
    }
    // Start from the current highest revision: older ones need no wake-up.
    if let Ok(all) = app.repo.changed_since(0).await {
        for (d, r) in all {
            app.feed.publish(&d, r);
        }
    }
    let poller = tokio::spawn(change_poller(app.clone()));
    let retention = tokio::spawn(retention_job(app.clone()));
    let (phase_tx, phase_rx) = watch::channel(Phase::Serving);
    let deadline = Arc::new(Deadline {
        phase: phase_rx.clone(),
        running: AtomicUsize::new(0),
    });
    let service = router(app.clone()).layer(axum::middleware::from_fn_with_state(
        deadline.clone(),
        cut_at_deadline,
    ));
    let draining = {
        let mut phase = phase_rx;
        async move {
            let _ = phase.wait_for(|p| *p != Phase::Serving).await;
        }
    };
    let serving = axum::serve(listener, service)
        .with_graceful_shutdown(draining)
        .into_future();
    tokio::pin!(serving);
    let result = tokio::select! {
        // Serving ends by itself only on an error.
        r = &mut serving => r,
        () = signal => {
            app.feed.close();
            phase_tx.send_replace(Phase::Draining);
            let grace = Duration::from_secs(app.cfg.shutdown_grace_s);
            match tokio::time::timeout(grace, &mut serving).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!(
                        requests = deadline.running.load(Ordering::Relaxed),
                        ?grace,
                        "requests still running at the shutdown deadline; their bodies are cut"
                    );
                    phase_tx.send_replace(Phase::Cut);
                    match tokio::time::timeout(CUT_GRACE, &mut serving).await {
                        Ok(r) => r,
                        Err(_) => {
                            tracing::warn!("connections still open after the deadline; dropped");
                            Ok(())
                        }
                    }
                }
            }
        }
    };
    poller.abort();
    retention.abort();
    // Closing the pool waits for every connection to come back; one held by
    // a request dropped after the grace must not hold the process.
    if tokio::time::timeout(CLOSE_GRACE, app.repo.close())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?CLOSE_GRACE, "database connections still in use at shutdown; left open");
    }
    tracing::info!("stopped");
    result.map_err(Into::into)
}

/// Takes `DATA/serve.lock` for the life of the process (the kernel drops
/// it when the process dies, kill -9 included): two services on one data
/// directory would sweep each other's uploads and race the retention job.
fn lock_data_dir(data: &Path) -> Result<Flock<File>> {
    let path = data.join("serve.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|_| {
        Error::new(
            ErrorKind::Conflict,
            format!(
                "another `ivcs cloud serve` is using {} ({} is locked)",
                data.display(),
                path.display()
            ),
        )
    })
}

/// Registers the SIGTERM and SIGINT handlers now, so a signal that comes
/// before the serving loop first waits is not met by the default action
/// (death without cleanup), and returns the wait for the first of them.
fn shutdown_signal() -> Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::info!("shutting down");
    })
}
