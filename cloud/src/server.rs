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
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::future::IntoFuture;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

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

/// How long a shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);
/// How long a shutdown waits for the database's connections to come back.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// Serves until SIGINT/SIGTERM. Prints `listening on ADDR` once bound, so a
/// caller that asked for port 0 learns the port.
pub async fn serve(app: Arc<App>) -> Result<()> {
    let _lock = lock_data_dir(&app.cfg.data)?;
    app.objects.sweep_staging()?;
    let orphans = app.sweep_orphans().await?;
    if orphans > 0 {
        tracing::info!(objects = orphans, "removed objects without rows");
    }
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
    let (stopping_tx, mut stopping) = tokio::sync::watch::channel(false);
    let serving = axum::serve(listener, router(app.clone()))
        .with_graceful_shutdown({
            let app = app.clone();
            async move {
                shutdown_signal().await;
                app.feed.close();
                let _ = stopping_tx.send(true);
            }
        })
        .into_future();
    // Requests in flight get SHUTDOWN_GRACE to finish; a connection whose
    // client vanished without a FIN (a camera losing power mid-upload) must
    // not keep the service from stopping.
    let result = tokio::select! {
        r = serving => r,
        () = async {
            let _ = stopping.wait_for(|s| *s).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "requests still running at shutdown; dropped");
            Ok(())
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

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
