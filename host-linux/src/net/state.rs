//! The state one exchange shares between the engine thread (through
//! [`Exchange`](super::Exchange)) and its network task, and the request body
//! hyper pulls from it.
//!
//! Both directions are bounded by the client's cap:
//!
//! - **Request body.** `write` copies at most `cap - queued` bytes and
//!   returns how many it took, so the engine's own budget, not this buffer,
//!   holds what the network cannot take yet. Small writes are coalesced into
//!   one frame, so chunked encoding does not cost a chunk header per TS
//!   packet. `attach` appends a picture the host already holds without a
//!   copy and may overshoot the cap by that picture; writes wait until the
//!   queue is back under the cap.
//! - **Response body.** The task pulls the next frame from hyper only when
//!   the engine has taken everything buffered, so at most one frame is held
//!   here (hyper's frames are bounded by its read buffer, which the client
//!   sets to the cap) and a slow reader stalls the socket, not memory.
//!
//! Every change the engine may care about bumps the [`WakeSignal`]: the
//! response head, body bytes, the end, an error, and buffer space coming
//! back after the engine saw less than half the cap free (hysteresis, so a
//! streaming upload costs one wake per half-buffer, not one per frame).

use super::error::BodyAborted;
use super::{NetError, ResponseHead, WakeSignal};
use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use tokio::sync::Notify;

pub(crate) struct Shared {
    state: Mutex<State>,
    /// Tells the task the engine has taken all buffered response bytes.
    drained: Notify,
    wake: Arc<WakeSignal>,
    cap: usize,
    /// "PUT /path", for error messages and logs.
    pub(crate) what: String,
}

#[derive(Default)]
struct State {
    // Request body: frames ready for hyper, oldest first, then `tail`, where
    // small writes accumulate.
    queue: VecDeque<Bytes>,
    tail: BytesMut,
    /// Bytes in `queue` + `tail`.
    queued: usize,
    /// Bytes the engine handed over in total.
    accepted: u64,
    /// Bytes hyper has taken.
    sent: u64,
    content_length: Option<u64>,
    finished: bool,
    /// The engine saw less than half the cap free: wake it when that ends.
    writer_waiting: bool,
    body_waker: Option<Waker>,

    // Response.
    head: Option<ResponseHead>,
    /// At most one frame from hyper not yet read by the engine.
    body: Bytes,
    body_end: bool,

    /// First failure; sticky.
    error: Option<NetError>,
    /// The request body must fail so hyper drops the connection (the
    /// exchange failed or was dropped before the body was complete).
    aborted: bool,
    /// The engine dropped the exchange: nobody to wake any more.
    dropped: bool,
    /// hyper dropped the request body before taking all of it: the
    /// connection is gone (or the server answered and hung up), so more
    /// bytes would only fill the queue.
    body_gone: bool,
}

impl Shared {
    pub(crate) fn new(
        what: String,
        cap: usize,
        content_length: Option<u64>,
        wake: Arc<WakeSignal>,
    ) -> Shared {
        Shared {
            state: Mutex::new(State {
                content_length,
                ..State::default()
            }),
            drained: Notify::new(),
            wake,
            cap,
            what,
        }
    }

    // State is plain data kept consistent under the lock by each method; a
    // panicking holder cannot exist (no code here panics), so poisoning is
    // ignored rather than turned into a second failure.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn free(&self, s: &State) -> usize {
        self.cap.saturating_sub(s.queued)
    }

    /// Remembers that the engine saw a nearly full buffer.
    fn observe(&self, s: &mut State) -> usize {
        let free = self.free(s);
        if free < self.cap / 2 {
            s.writer_waiting = true;
        }
        free
    }

    fn check_writable(&self, s: &State, len: usize) -> Result<(), NetError> {
        if s.finished {
            return Err(NetError::Invalid(format!(
                "{}: body bytes after finish",
                self.what
            )));
        }
        if let Some(e) = &s.error {
            return Err(e.clone());
        }
        if s.body_gone {
            return Err(NetError::Closed(format!(
                "{}: the connection stopped taking the request body",
                self.what
            )));
        }
        if let Some(cl) = s.content_length {
            let total = s.accepted.saturating_add(len as u64);
            if total > cl {
                return Err(NetError::Invalid(format!(
                    "{}: {total} body bytes exceed the declared content-length {cl}",
                    self.what
                )));
            }
        }
        Ok(())
    }

    // ---- engine side: request body ----

    pub(crate) fn write_capacity(&self) -> u32 {
        let mut s = self.lock();
        if s.finished || s.error.is_some() || s.body_gone {
            return 0;
        }
        u32::try_from(self.observe(&mut s)).unwrap_or(u32::MAX)
    }

    pub(crate) fn write(&self, data: &[u8]) -> Result<u32, NetError> {
        let mut s = self.lock();
        self.check_writable(&s, data.len())?;
        let n = data.len().min(self.free(&s)).min(u32::MAX as usize);
        let waker = if n > 0 {
            s.tail.extend_from_slice(data.get(..n).unwrap_or_default());
            s.queued += n;
            s.accepted += n as u64;
            s.body_waker.take()
        } else {
            None
        };
        self.observe(&mut s);
        drop(s);
        if let Some(w) = waker {
            w.wake();
        }
        Ok(n as u32)
    }

    pub(crate) fn attach(&self, bytes: Bytes) -> Result<(), NetError> {
        let mut s = self.lock();
        self.check_writable(&s, bytes.len())?;
        if bytes.is_empty() {
            return Ok(());
        }
        if !s.tail.is_empty() {
            let older = s.tail.split().freeze();
            s.queue.push_back(older);
        }
        s.queued += bytes.len();
        s.accepted += bytes.len() as u64;
        s.queue.push_back(bytes);
        self.observe(&mut s);
        let waker = s.body_waker.take();
        drop(s);
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    pub(crate) fn finish(&self) -> Result<(), NetError> {
        let mut s = self.lock();
        if s.finished {
            return Ok(());
        }
        if let Some(e) = &s.error {
            return Err(e.clone());
        }
        if let Some(cl) = s.content_length
            && s.accepted < cl
        {
            return Err(NetError::Invalid(format!(
                "{}: finish after {} of the declared {cl} body bytes",
                self.what, s.accepted
            )));
        }
        s.finished = true;
        let waker = s.body_waker.take();
        drop(s);
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    // ---- engine side: response ----

    pub(crate) fn poll_response(&self) -> Option<Result<ResponseHead, NetError>> {
        let s = self.lock();
        match (&s.head, &s.error) {
            (Some(h), _) => Some(Ok(h.clone())),
            (None, Some(e)) => Some(Err(e.clone())),
            (None, None) => None,
        }
    }

    pub(crate) fn read_body(&self, max: u32) -> Result<Option<Vec<u8>>, NetError> {
        if max == 0 {
            return Err(NetError::Invalid(format!(
                "{}: read_body(0) cannot return anything",
                self.what
            )));
        }
        let mut s = self.lock();
        if !s.body.is_empty() {
            let n = s.body.len().min(max as usize);
            let piece = s.body.split_to(n);
            let empty = s.body.is_empty();
            drop(s);
            if empty {
                self.drained.notify_one();
            }
            return Ok(Some(piece.to_vec()));
        }
        if s.body_end {
            return Ok(Some(Vec::new()));
        }
        match &s.error {
            Some(e) => Err(e.clone()),
            None => Ok(None),
        }
    }

    /// The engine dropped its exchange.
    pub(crate) fn abort(&self) {
        let mut s = self.lock();
        s.dropped = true;
        s.aborted = true;
        let waker = s.body_waker.take();
        drop(s);
        if let Some(w) = waker {
            w.wake();
        }
    }

    // ---- task side ----

    pub(crate) fn set_head(&self, head: ResponseHead) {
        self.lock().head = Some(head);
        self.wake.notify();
    }

    /// Waits until the engine has read every buffered response byte.
    pub(crate) async fn drained(&self) {
        // `notify_one` leaves a permit when nobody waits, so a read that
        // empties the buffer between the check and the await is not lost.
        while !self.lock().body.is_empty() {
            self.drained.notified().await;
        }
    }

    pub(crate) fn push_body(&self, data: Bytes) {
        self.lock().body = data;
        self.wake.notify();
    }

    pub(crate) fn end_body(&self) {
        self.lock().body_end = true;
        self.wake.notify();
    }

    /// Records the first failure and makes the request body fail, so hyper
    /// closes the connection rather than reusing it mid-message.
    pub(crate) fn fail(&self, err: NetError) {
        let mut s = self.lock();
        if s.error.is_none() {
            s.error = Some(err);
        }
        s.aborted = true;
        let waker = s.body_waker.take();
        let dropped = s.dropped;
        drop(s);
        if let Some(w) = waker {
            w.wake();
        }
        if !dropped {
            self.wake.notify();
        }
    }

    /// Body bytes queued plus response bytes held (for tests and metrics).
    pub(crate) fn buffered(&self) -> (usize, usize) {
        let s = self.lock();
        (s.queued, s.body.len())
    }
}

/// The request body hyper streams: frames come from the exchange's queue
/// (what the engine wrote). Opaque outside this crate; a [`Transport`]
/// (super::Transport) only hands it to hyper.
pub struct UploadBody {
    pub(crate) shared: Arc<Shared>,
    /// `Some(0)` means no body at all; known at start, so no lock needed.
    pub(crate) empty: bool,
}

impl Body for UploadBody {
    type Data = Bytes;
    type Error = BodyAborted;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyAborted>>> {
        let sh = &self.shared;
        let mut s = sh.lock();
        if s.aborted {
            return Poll::Ready(Some(Err(BodyAborted)));
        }
        let next = match s.queue.pop_front() {
            Some(b) => Some(b),
            None if !s.tail.is_empty() => Some(s.tail.split().freeze()),
            None => None,
        };
        let Some(frame) = next else {
            if s.finished {
                return Poll::Ready(None);
            }
            s.body_waker = Some(cx.waker().clone());
            return Poll::Pending;
        };
        s.queued = s.queued.saturating_sub(frame.len());
        s.sent += frame.len() as u64;
        let wake = s.writer_waiting && sh.free(&s) >= sh.cap / 2;
        if wake {
            s.writer_waiting = false;
        }
        drop(s);
        if wake {
            sh.wake.notify();
        }
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }

    fn is_end_stream(&self) -> bool {
        self.empty
    }

    fn size_hint(&self) -> SizeHint {
        let s = self.shared.lock();
        match s.content_length {
            Some(cl) => SizeHint::with_exact(cl.saturating_sub(s.sent)),
            None => SizeHint::default(),
        }
    }
}

impl Drop for UploadBody {
    fn drop(&mut self) {
        let mut s = self.shared.lock();
        if s.finished && s.queued == 0 {
            return; // sent completely
        }
        s.body_gone = true;
        let dropped = s.dropped;
        drop(s);
        if !dropped {
            self.shared.wake.notify();
        }
    }
}
