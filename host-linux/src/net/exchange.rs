//! One HTTP exchange as the engine sees it ([`Exchange`], every method
//! returns at once) and the tokio task that carries it out ([`drive`]).

use super::NetError;
use super::client::Carrier;
use super::error;
use super::state::{Shared, UploadBody};
use bytes::Bytes;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::task::AbortHandle;

/// The status line and headers of a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// HTTP status code.
    pub status: u16,
    /// Headers in arrival order; names in lower case, values decoded
    /// lossily if they are not UTF-8.
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    fn from_parts(parts: &hyper::http::response::Parts) -> ResponseHead {
        ResponseHead {
            status: parts.status.as_u16(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
        }
    }
}

/// An HTTP exchange in progress (the WIT `network.exchange`). Nothing here
/// blocks; progress is announced through the client's
/// [`WakeSignal`](super::WakeSignal). Dropping it aborts the exchange: the
/// task stops and, if the request body was not complete, the connection is
/// closed instead of being reused.
pub struct Exchange {
    pub(crate) shared: Arc<Shared>,
    pub(crate) task: AbortHandle,
    pub(crate) _slot: Slot,
}

impl Exchange {
    /// Body bytes [`write`](Self::write) would take now (0 after `finish`
    /// or a failure).
    pub fn write_capacity(&self) -> u32 {
        self.shared.write_capacity()
    }

    /// Queues up to [`write_capacity`](Self::write_capacity) bytes of
    /// `data` and returns how many were taken; 0 means "try again after the
    /// wake signal". Writing after `finish`, or past the declared
    /// content-length, is `Invalid` and takes nothing.
    pub fn write(&self, data: &[u8]) -> Result<u32, NetError> {
        self.shared.write(data)
    }

    /// Appends bytes the host already holds (a picture) without copying
    /// them. Taken whole even when that overshoots the cap: the bytes exist
    /// anyway and the engine cannot split a picture it never sees; writes
    /// then wait until the queue is below the cap again.
    pub fn attach(&self, bytes: Bytes) -> Result<(), NetError> {
        self.shared.attach(bytes)
    }

    /// Ends the body. With a declared content-length, ending early is
    /// `Invalid` (and changes nothing: more bytes may still be written).
    /// A second call is a no-op.
    pub fn finish(&self) -> Result<(), NetError> {
        self.shared.finish()
    }

    /// `None` until the response head arrives; then the head on every call.
    /// An error before the head is reported here (and by `read_body`).
    pub fn poll_response(&self) -> Option<Result<ResponseHead, NetError>> {
        self.shared.poll_response()
    }

    /// The next at most `max` bytes of the response body: `None` = not yet,
    /// `Some(empty)` = the body ended. Bytes that arrived before a failure
    /// are returned before the failure is.
    pub fn read_body(&self, max: u32) -> Result<Option<Vec<u8>>, NetError> {
        self.shared.read_body(max)
    }

    /// Bytes held for this exchange right now: request body queued, response
    /// body not yet read. Never more than the cap (plus one attached picture).
    pub fn buffered(&self) -> (usize, usize) {
        self.shared.buffered()
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.shared.abort();
        self.task.abort();
    }
}

/// One of the client's `max_exchanges` places, given back on drop.
pub(crate) struct Slot(pub(crate) Arc<AtomicUsize>);

impl Slot {
    /// Takes a place if fewer than `max` are in use.
    pub(crate) fn take(active: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(active.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Marks the exchange failed if its task ends without an outcome: aborted
/// by a dropped exchange, or dropped when the client's runtime shuts down.
/// It is passed *into* [`drive`], so it is dropped with the task even if the
/// task was never polled.
pub(crate) struct Unfinished(Option<Arc<Shared>>);

impl Unfinished {
    pub(crate) fn new(shared: Arc<Shared>) -> Unfinished {
        Unfinished(Some(shared))
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(sh) = self.0.take() {
            sh.fail(NetError::Closed(format!(
                "{}: the network client stopped",
                sh.what
            )));
        }
    }
}

/// Carries out one exchange under its whole deadline.
pub(crate) async fn drive(
    client: Carrier,
    req: hyper::Request<UploadBody>,
    mut unfinished: Unfinished,
    deadline: tokio::time::Instant,
) {
    let Some(shared) = unfinished.0.clone() else {
        return;
    };
    let outcome = tokio::time::timeout_at(deadline, run(&client, req, &shared)).await;
    match outcome {
        Ok(Ok(())) => tracing::debug!(exchange = %shared.what, "done"),
        Ok(Err(e)) => {
            tracing::debug!(exchange = %shared.what, error = %e, "failed");
            shared.fail(e);
        }
        Err(_) => {
            tracing::debug!(exchange = %shared.what, "timed out");
            shared.fail(NetError::Timeout);
        }
    }
    unfinished.0 = None;
}

async fn run(
    client: &Carrier,
    req: hyper::Request<UploadBody>,
    shared: &Shared,
) -> Result<(), NetError> {
    let resp = match client {
        Carrier::Pooled(c) => c
            .request(req)
            .await
            .map_err(|e| error::from_request(&shared.what, &e))?,
        Carrier::Custom(t) => t.send(req).await?,
    };
    let (parts, mut body) = resp.into_parts();
    shared.set_head(ResponseHead::from_parts(&parts));
    loop {
        // Back-pressure: the next frame is read from the socket only once
        // the engine has taken the previous one.
        shared.drained().await;
        match body.frame().await {
            None => {
                shared.end_body();
                return Ok(());
            }
            Some(Err(e)) => return Err(error::from_body(&shared.what, &e)),
            Some(Ok(frame)) => {
                // Trailers are not part of the contract; data frames only.
                if let Ok(data) = frame.into_data()
                    && !data.is_empty()
                {
                    shared.push_body(data);
                }
            }
        }
    }
}
