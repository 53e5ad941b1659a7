//! One cloud request as a non-blocking state machine over a host exchange.
//!
//! ```text
//!   Idle(at) --start--> Send --body written, finish--> Wait --head--> Read --end--> done
//!      ^                  |                              |              |
//!      +---- retry after backoff (transport failure, timeout, 408/429/5xx) --+
//! ```
//!
//! [`Call::poll`] advances as far as it can without waiting and returns
//! `None` while the request is pending. Each attempt is signed afresh (new
//! timestamp and nonce). Timeouts come from `set-trans-time`: sending the
//! body may take `upload_timeout_ms`, the answer `reply_timeout_ms` after
//! the body ended (plus the long-poll time of a change-feed request). An
//! optional deadline bounds all attempts together; at the deadline the call
//! gives up with the last failure.
//!
//! Bodies are small JSON documents held by the call, a host picture
//! attached by handle, or a [`Source`] the caller owns (segment bytes as
//! they are recorded, a backup file as firmware hands it over). A source
//! body is written as its bytes become available; the upload timeout then
//! runs per write (it restarts whenever bytes are taken, and does not run
//! while the source has nothing to send). Answers are read up to a size
//! cap and returned whole.

use super::Io;
use super::retry::backoff_ms;
use super::sign::sha256_hex;
use crate::error::{Error, ErrorKind};
use crate::events::LogLevel;
use crate::host::{Host, Method, NetError, Request};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Default cap on an answer body, bytes. Control answers are small JSON
/// (the largest, a plan view with every AI setting, is a few KB).
pub const MAX_REPLY_BYTES: usize = 128 << 10;

/// Largest piece written or read per host call, bytes.
const IO_CHUNK: usize = 64 << 10;

/// How long a streamed body may hold fewer than its batch of new bytes
/// ([`Call::with_batch`]) before writing them, ms. Each write wakes the
/// host's network thread, which at camera bit rates costs more than the
/// bytes (a write per frame was a quarter of the library's CPU); a
/// segment's last bytes go at once.
const BATCH_MS: u64 = 250;

/// A request body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// No body.
    Empty,
    /// A JSON document.
    Json(Vec<u8>),
    /// A host picture attached by handle: its length and SHA-256 (hex),
    /// which the engine computed when the picture was handed over.
    Picture {
        /// Bytes.
        len: u32,
        /// Lowercase hex SHA-256.
        sha256: String,
    },
    /// Bytes from the [`Source`] given to [`Call::poll_source`]: a chunked
    /// body signed as `STREAMING` when `len` is none, else a body of known
    /// length and digest (a one-shot upload).
    Stream {
        /// Length, when known before the body starts.
        len: Option<u64>,
        /// Lowercase hex SHA-256, when known before the body starts.
        sha256: Option<String>,
    },
}

/// `x-ivcs-content-sha256` of a streamed body.
pub const STREAMING: &str = "STREAMING";

impl Body {
    fn len(&self) -> Option<u64> {
        match self {
            Body::Empty => Some(0),
            Body::Json(b) => Some(b.len() as u64),
            Body::Picture { len, .. } => Some(u64::from(*len)),
            Body::Stream { len, sha256 } => len.filter(|_| sha256.is_some()),
        }
    }

    fn digest(&self) -> String {
        match self {
            Body::Empty => sha256_hex(b""),
            Body::Json(b) => sha256_hex(b),
            Body::Picture { sha256, .. } => sha256.clone(),
            Body::Stream { sha256, len } => match (sha256, len) {
                (Some(d), Some(_)) => d.clone(),
                _ => STREAMING.to_string(),
            },
        }
    }
}

/// Where a [`Body::Stream`] comes from. Offsets count from the first byte
/// of the body.
pub trait Source {
    /// Bytes available now from offset `at` on (possibly fewer than all);
    /// empty when none is available yet or `at` was released.
    fn available(&self, at: u64) -> &[u8];
    /// Whether every byte of the body is available (the body may end once
    /// these are written).
    fn complete(&self) -> bool;
    /// Whether the body can be sent again from its first byte (a retry
    /// needs it; a source that released sent bytes cannot).
    fn rewindable(&self) -> bool;
    /// How many bytes are available from offset `at` on in all, where
    /// [`Source::available`] may return only the rest of one piece.
    fn ready(&self, at: u64) -> u64;
}

/// What to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// Method.
    pub method: Method,
    /// Path and query, exactly as sent and signed.
    pub path: String,
    /// Body.
    pub body: Body,
    /// Extra time the cloud may hold the answer back (long poll), ms.
    pub long_poll_ms: u32,
    /// Answer body cap, bytes.
    pub max_reply_bytes: usize,
    /// Send `expect: 100-continue`, so a refusal arrives before the body.
    pub expect_continue: bool,
}

impl Spec {
    /// A request without a body.
    pub fn new(method: Method, path: String) -> Spec {
        Spec {
            method,
            path,
            body: Body::Empty,
            long_poll_ms: 0,
            max_reply_bytes: MAX_REPLY_BYTES,
            expect_continue: false,
        }
    }

    /// A request with a JSON body.
    pub fn json(method: Method, path: String, body: &serde_json::Value) -> Spec {
        Spec {
            body: Body::Json(body.to_string().into_bytes()),
            ..Spec::new(method, path)
        }
    }

    /// "GET /v1/device/plan", for messages.
    pub fn what(&self) -> String {
        format!("{} {}", self.method.as_str(), self.path)
    }
}

/// When to retry and when to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Monotonic ms after which no attempt starts and the call gives up.
    pub deadline_ms: Option<u64>,
    /// Longest delay between attempts, ms.
    pub max_delay_ms: u64,
    /// Attempts after which the call gives up (0 = no limit).
    pub max_attempts: u32,
}

/// A successful (2xx) answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Status.
    pub status: u16,
    /// Body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON of type `T`.
    pub fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::new(
                ErrorKind::UploadFailed,
                format!("{what}: the cloud's answer is not the expected JSON: {e}"),
            )
        })
    }
}

/// Why an attempt (or the call) failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The cloud was not reached or did not answer in time.
    Net(String),
    /// The cloud answered with an error status.
    Status {
        /// HTTP status.
        status: u16,
        /// `error.iv_err` of the body, when present.
        iv_err: Option<i32>,
        /// `error.code` and `error.message`, or the raw body.
        message: String,
    },
    /// The answer broke the protocol (too large).
    Protocol(String),
    /// No credentials to sign with (`configure` was not called).
    NoCredentials,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Net(m) | Failure::Protocol(m) => f.write_str(m),
            Failure::NoCredentials => f.write_str("no device credentials (configure first)"),
            Failure::Status {
                status, message, ..
            } => write!(f, "HTTP {status}: {message}"),
        }
    }
}

/// A call that ended without a 2xx answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallError {
    /// "PUT /v1/device/..."
    pub what: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure.
    pub failure: Failure,
}

impl CallError {
    /// The engine error for this failure. Transport failures (the cloud
    /// not reached in time) become `unreachable`'s kind, chosen by the
    /// caller (-608 for queries, -613 for uploads); error answers carry the
    /// cloud's own `IV_ERR_*` code.
    pub fn to_error(&self, unreachable: ErrorKind) -> Error {
        let kind = match &self.failure {
            Failure::Net(_) => unreachable,
            Failure::Status { iv_err, status, .. } => match iv_err {
                Some(c) => ErrorKind::from_code(*c),
                None if *status == 401 => ErrorKind::NoCredentials,
                None => ErrorKind::UploadFailed,
            },
            Failure::Protocol(_) => ErrorKind::UploadFailed,
            Failure::NoCredentials => ErrorKind::NoCredentials,
        };
        Error::new(
            kind,
            format!(
                "{} failed after {} attempt(s): {}",
                self.what, self.attempts, self.failure
            ),
        )
    }
}

enum Phase<X> {
    /// Waiting to start the next attempt at `at` (monotonic ms).
    Idle { at: u64 },
    /// Writing the body; `sent` bytes of a JSON body are written.
    Send { ex: X, sent: usize, until: u64 },
    /// Body finished; waiting for the head.
    Wait { ex: X, until: u64 },
    /// Reading a 2xx or error body.
    Read {
        ex: X,
        status: u16,
        body: Vec<u8>,
        until: u64,
    },
    /// Finished (the result was returned).
    Done,
}

/// An attempt in flight as a hand-over carries it to the next engine
/// (`export-state`): its exchange by the host's id, where the body stands,
/// its deadlines (monotonic ms: one clock for both engines) and counters.
/// The request itself is rebuilt by its owner.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedCall {
    exchange: u64,
    phase: SavedPhase,
    until: u64,
    attempts: u32,
    failures: u32,
    flush_at: Option<u64>,
    write_stalled: bool,
    batch: usize,
    clock_retried: bool,
    server_date_ms: Option<u64>,
    #[serde(default)]
    signed_offset_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum SavedPhase {
    Send { sent: u64 },
    Wait,
    Read { status: u16, body: Vec<u8> },
}

/// A request in progress. Dropping it cancels the exchange in flight.
pub struct Call<X> {
    spec: Spec,
    policy: Policy,
    phase: Phase<X>,
    attempts: u32,
    failures: u32,
    last: Option<Failure>,
    /// `Date` of the answer being read (cloud ms), for a 401.
    server_date_ms: Option<u64>,
    /// One immediate retry after correcting the clock was made.
    clock_retried: bool,
    /// The clock offset the attempt in flight was signed with: a 401 is a
    /// stale timestamp when the cloud's `Date` disagrees with it, even if
    /// another answer corrected the offset meanwhile.
    signed_offset_ms: i64,
    /// When the streamed bytes held back (less than a batch) go anyway.
    flush_at: Option<u64>,
    /// The host took nothing at the last write (its buffer is full): the
    /// next write waits for the host's progress, not for `flush_at`, which
    /// may be past (a wake-up at a past time is a busy loop; host-sim's
    /// stalled-connection scenario found it).
    write_stalled: bool,
    /// A streamed body writes once this many new bytes are ready.
    batch: usize,
}

/// What one step of an attempt ended with.
enum Attempt {
    /// Waiting on the host; the phase is stored.
    Pending,
    /// The phase changed; step again at once.
    Continue,
    /// A complete answer.
    Answer { status: u16, body: Vec<u8> },
    /// The attempt failed.
    Failed(Failure),
}

impl<X> Call<X> {
    /// A call whose first attempt starts at monotonic `at`.
    pub fn new(spec: Spec, policy: Policy, at: u64) -> Call<X> {
        Call {
            spec,
            policy,
            phase: Phase::Idle { at },
            attempts: 0,
            failures: 0,
            last: None,
            server_date_ms: None,
            clock_retried: false,
            signed_offset_ms: 0,
            flush_at: None,
            write_stalled: false,
            batch: IO_CHUNK,
        }
    }

    /// A streamed body writes once `bytes` are ready (at most a chunk),
    /// else after [`BATCH_MS`]. Held bytes still count against a camera's
    /// budget, so a small budget needs a small batch.
    pub fn with_batch(mut self, bytes: usize) -> Call<X> {
        self.batch = bytes.clamp(1, IO_CHUNK);
        self
    }

    /// The request.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The attempt in flight, for a successor engine to go on with
    /// ([`Call::resume`]); none between attempts or once done.
    pub fn save<H: Host<Exchange = X>>(&self, host: &H) -> Option<SavedCall> {
        let (ex, phase, until) = match &self.phase {
            Phase::Send { ex, sent, until } => {
                (ex, SavedPhase::Send { sent: *sent as u64 }, *until)
            }
            Phase::Wait { ex, until } => (ex, SavedPhase::Wait, *until),
            Phase::Read {
                ex,
                status,
                body,
                until,
            } => (
                ex,
                SavedPhase::Read {
                    status: *status,
                    body: body.clone(),
                },
                *until,
            ),
            Phase::Idle { .. } | Phase::Done => return None,
        };
        Some(SavedCall {
            exchange: host.exchange_id(ex),
            phase,
            until,
            attempts: self.attempts,
            failures: self.failures,
            flush_at: self.flush_at,
            write_stalled: self.write_stalled,
            batch: self.batch,
            clock_retried: self.clock_retried,
            server_date_ms: self.server_date_ms,
            signed_offset_ms: self.signed_offset_ms,
        })
    }

    /// The call `saved` was, going on over the same exchange; none when
    /// the host no longer has it (the caller starts the request again).
    pub fn resume<H: Host<Exchange = X>>(
        spec: Spec,
        policy: Policy,
        saved: SavedCall,
        host: &mut H,
    ) -> Option<Call<X>> {
        let ex = host.adopt(saved.exchange)?;
        let until = saved.until;
        let phase = match saved.phase {
            SavedPhase::Send { sent } => Phase::Send {
                ex,
                sent: usize::try_from(sent).ok()?,
                until,
            },
            SavedPhase::Wait => Phase::Wait { ex, until },
            SavedPhase::Read { status, body } => Phase::Read {
                ex,
                status,
                body,
                until,
            },
        };
        Some(Call {
            spec,
            policy,
            phase,
            attempts: saved.attempts,
            failures: saved.failures,
            last: None,
            server_date_ms: saved.server_date_ms,
            clock_retried: saved.clock_retried,
            signed_offset_ms: saved.signed_offset_ms,
            flush_at: saved.flush_at,
            write_stalled: saved.write_stalled,
            batch: saved.batch.clamp(1, IO_CHUNK),
        })
    }

    /// Attempts started so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Bytes of the body the attempt in flight has handed to the host: the
    /// offset reached while sending, everything once the body is finished,
    /// none between attempts.
    pub fn body_written(&self) -> u64 {
        match &self.phase {
            Phase::Send { sent, .. } => *sent as u64,
            Phase::Wait { .. } | Phase::Read { .. } => u64::MAX,
            Phase::Idle { .. } | Phase::Done => 0,
        }
    }

    /// When the call needs a tick at the latest: its next attempt, or the
    /// timeout of the attempt in flight. None when done.
    pub fn wake_at(&self) -> Option<u64> {
        match &self.phase {
            Phase::Idle { at } => Some(*at),
            Phase::Send { until, .. } => Some(match self.flush_at {
                Some(f) if !self.write_stalled => f.min(*until),
                _ => *until,
            }),
            Phase::Wait { until, .. } | Phase::Read { until, .. } => Some(*until),
            Phase::Done => None,
        }
    }

    fn cap(&self, t: u64) -> u64 {
        match self.policy.deadline_ms {
            Some(d) => t.min(d),
            None => t,
        }
    }

    /// Advances the call. `pic` is the picture of a [`Body::Picture`].
    /// Returns the outcome once, then `None` forever.
    pub fn poll<H: Host<Exchange = X>>(
        &mut self,
        io: &mut Io<'_, H>,
        pic: Option<&H::Picture>,
    ) -> Option<Result<Reply, CallError>> {
        self.poll_source(io, pic, None)
    }

    /// [`Call::poll`] with the source of a [`Body::Stream`].
    pub fn poll_source<H: Host<Exchange = X>>(
        &mut self,
        io: &mut Io<'_, H>,
        pic: Option<&H::Picture>,
        src: Option<&dyn Source>,
    ) -> Option<Result<Reply, CallError>> {
        loop {
            let now = io.host.monotonic_ms();
            let attempt = match std::mem::replace(&mut self.phase, Phase::Done) {
                Phase::Done => return None,
                Phase::Idle { at } => {
                    if self.policy.deadline_ms.is_some_and(|d| now >= d) && self.attempts > 0 {
                        return Some(Err(self.give_up(None)));
                    }
                    if now < at {
                        self.phase = Phase::Idle { at };
                        return None;
                    }
                    self.start(io, now, src)
                }
                Phase::Send { ex, sent, until } => self.send(io, pic, src, ex, sent, until, now),
                Phase::Wait { ex, until } => self.wait(io, ex, until, now),
                Phase::Read {
                    ex,
                    status,
                    body,
                    until,
                } => self.read(io, ex, status, body, until, now),
            };
            match attempt {
                Attempt::Pending => return None,
                Attempt::Continue => {}
                Attempt::Answer { status, body } => {
                    if let Some(done) = self.answered(io, status, body, now) {
                        return Some(done);
                    }
                }
                Attempt::Failed(f) => {
                    // Only transport failures are worth another attempt.
                    let retry = matches!(f, Failure::Net(_));
                    if let Some(done) = self.failed(io, f, retry, now) {
                        return Some(done);
                    }
                }
            }
        }
    }

    fn start<H: Host<Exchange = X>>(
        &mut self,
        io: &mut Io<'_, H>,
        now: u64,
        src: Option<&dyn Source>,
    ) -> Attempt {
        if matches!(self.spec.body, Body::Stream { .. }) && !src.is_some_and(|s| s.rewindable()) {
            return Attempt::Failed(Failure::Protocol(
                "the body cannot be sent again: its first bytes were released".into(),
            ));
        }
        self.attempts = self.attempts.saturating_add(1);
        self.flush_at = None;
        self.write_stalled = false;
        io.watch_clock();
        self.signed_offset_ms = io.client.clock_offset_ms();
        let utc = io.host.now_utc_ms();
        let method = self.spec.method.as_str();
        let Some(mut headers) =
            io.client
                .sign(method, &self.spec.path, &self.spec.body.digest(), utc)
        else {
            return Attempt::Failed(Failure::NoCredentials);
        };
        if matches!(self.spec.body, Body::Json(_)) {
            headers.push(("content-type".into(), "application/json".into()));
        }
        if self.spec.expect_continue {
            headers.push(("expect".into(), "100-continue".into()));
        }
        let trans = io.client.trans;
        let total = u64::from(trans.upload_timeout_ms)
            + u64::from(trans.reply_timeout_ms)
            + u64::from(self.spec.long_poll_ms);
        let req = Request {
            method: self.spec.method,
            path: self.spec.path.clone(),
            headers,
            content_length: self.spec.body.len(),
            timeout_ms: u32::try_from(total).unwrap_or(u32::MAX),
        };
        match io.host.start(&req) {
            Ok(ex) => {
                let until = self.cap(now.saturating_add(u64::from(trans.upload_timeout_ms)));
                self.phase = Phase::Send { ex, sent: 0, until };
                Attempt::Continue
            }
            Err(e) => Attempt::Failed(net_failure(&e)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn send<H: Host<Exchange = X>>(
        &mut self,
        io: &mut Io<'_, H>,
        pic: Option<&H::Picture>,
        src: Option<&dyn Source>,
        ex: X,
        mut sent: usize,
        mut until: u64,
        now: u64,
    ) -> Attempt {
        if now >= until {
            return Attempt::Failed(Failure::Net(format!(
                "sending the body took longer than {} ms",
                io.client.trans.upload_timeout_ms
            )));
        }
        match &self.spec.body {
            Body::Empty => {}
            Body::Json(data) => {
                while sent < data.len() {
                    let cap = io.host.write_capacity(&ex) as usize;
                    let end = sent.saturating_add(cap.min(IO_CHUNK)).min(data.len());
                    let chunk = data.get(sent..end).unwrap_or_default();
                    if chunk.is_empty() {
                        self.phase = Phase::Send { ex, sent, until };
                        return Attempt::Pending;
                    }
                    match io.host.write(&ex, chunk) {
                        Ok(0) => {
                            self.phase = Phase::Send { ex, sent, until };
                            return Attempt::Pending;
                        }
                        Ok(n) => sent = sent.saturating_add(n as usize),
                        Err(e) => return Attempt::Failed(net_failure(&e)),
                    }
                }
            }
            Body::Stream { .. } => {
                let Some(src) = src else {
                    return Attempt::Failed(Failure::Protocol(
                        "the source of this body is gone".into(),
                    ));
                };
                let per_write = u64::from(io.client.trans.upload_timeout_ms);
                loop {
                    let data = src.available(sent as u64);
                    if data.is_empty() {
                        if src.complete() {
                            break;
                        }
                        // Waiting for bytes that are not recorded yet: the
                        // upload timeout does not run.
                        let until = self.cap(now.saturating_add(per_write));
                        self.phase = Phase::Send { ex, sent, until };
                        return Attempt::Pending;
                    }
                    // A batch counts every byte ready, not the rest of the
                    // piece at hand: a write cut short by the host's
                    // capacity must not wait BATCH_MS for its remainder.
                    if (src.ready(sent as u64) as usize) < self.batch && !src.complete() {
                        let at = *self.flush_at.get_or_insert(now.saturating_add(BATCH_MS));
                        if now < at {
                            let until = self.cap(now.saturating_add(per_write));
                            self.phase = Phase::Send { ex, sent, until };
                            return Attempt::Pending;
                        }
                    }
                    let cap = io.host.write_capacity(&ex) as usize;
                    let chunk = data
                        .get(..cap.min(IO_CHUNK).min(data.len()))
                        .unwrap_or_default();
                    let n = if chunk.is_empty() {
                        Ok(0)
                    } else {
                        io.host.write(&ex, chunk)
                    };
                    match n {
                        Ok(0) => {
                            self.write_stalled = true;
                            self.phase = Phase::Send { ex, sent, until };
                            return Attempt::Pending;
                        }
                        Ok(n) => {
                            sent = sent.saturating_add(n as usize);
                            until = self.cap(now.saturating_add(per_write));
                            self.flush_at = None;
                            self.write_stalled = false;
                        }
                        Err(e) => return Attempt::Failed(net_failure(&e)),
                    }
                }
            }
            Body::Picture { .. } => {
                // Attached and finished in the same step: never re-entered.
                let Some(p) = pic else {
                    return Attempt::Failed(Failure::Protocol(
                        "the picture of this request is gone".into(),
                    ));
                };
                if let Err(e) = io.host.attach(&ex, p) {
                    return Attempt::Failed(net_failure(&e));
                }
            }
        }
        if let Err(e) = io.host.finish(&ex) {
            return Attempt::Failed(net_failure(&e));
        }
        let reply = u64::from(io.client.trans.reply_timeout_ms)
            .saturating_add(u64::from(self.spec.long_poll_ms));
        self.phase = Phase::Wait {
            ex,
            until: self.cap(now.saturating_add(reply)),
        };
        Attempt::Continue
    }

    fn wait<H: Host<Exchange = X>>(
        &mut self,
        io: &mut Io<'_, H>,
        ex: X,
        until: u64,
        now: u64,
    ) -> Attempt {
        match io.host.poll_response(&ex) {
            None if now >= until => Attempt::Failed(Failure::Net(format!(
                "no answer within {} ms",
                io.client.trans.reply_timeout_ms
            ))),
            None => {
                self.phase = Phase::Wait { ex, until };
                Attempt::Pending
            }
            Some(Err(e)) => Attempt::Failed(net_failure(&e)),
            Some(Ok(head)) => {
                self.server_date_ms = head
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("date"))
                    .and_then(|(_, v)| super::date::parse_http_date(v));
                self.phase = Phase::Read {
                    ex,
                    status: head.status,
                    body: Vec::new(),
                    until,
                };
                Attempt::Continue
            }
        }
    }

    fn read<H: Host<Exchange = X>>(
        &mut self,
        io: &mut Io<'_, H>,
        ex: X,
        status: u16,
        mut body: Vec<u8>,
        until: u64,
        now: u64,
    ) -> Attempt {
        let cap = self.spec.max_reply_bytes;
        loop {
            // Ask for one byte more than fits, to notice an oversized body.
            let want = cap
                .saturating_add(1)
                .saturating_sub(body.len())
                .min(IO_CHUNK);
            match io
                .host
                .read_body(&ex, u32::try_from(want).unwrap_or(u32::MAX))
            {
                Ok(None) if now >= until => {
                    return Attempt::Failed(Failure::Net(format!(
                        "the answer did not end within {} ms",
                        io.client.trans.reply_timeout_ms
                    )));
                }
                Ok(None) => {
                    self.phase = Phase::Read {
                        ex,
                        status,
                        body,
                        until,
                    };
                    return Attempt::Pending;
                }
                Ok(Some(chunk)) if chunk.is_empty() => return Attempt::Answer { status, body },
                Ok(Some(chunk)) => {
                    body.extend_from_slice(&chunk);
                    if body.len() > cap {
                        return Attempt::Failed(Failure::Protocol(format!(
                            "HTTP {status} answer larger than {cap} bytes"
                        )));
                    }
                }
                Err(e) => return Attempt::Failed(net_failure(&e)),
            }
        }
    }

    /// A complete answer arrived.
    fn answered<H: Host<Exchange = X>>(
        &mut self,
        io: &mut Io<'_, H>,
        status: u16,
        body: Vec<u8>,
        now: u64,
    ) -> Option<Result<Reply, CallError>> {
        if (200..300).contains(&status) {
            io.client.link.answered();
            self.phase = Phase::Done;
            return Some(Ok(Reply { status, body }));
        }
        let failure = status_failure(status, &body);
        match status {
            // A gateway answering for an unreachable service.
            502..=504 => {
                io.client.link.failed();
                self.failed(io, failure, true, now)
            }
            401 => {
                // A camera whose clock is unset or far off signs stale
                // timestamps: learn the cloud's time from the answer's Date
                // and try once more at once.
                if !self.clock_retried
                    && let Some(server_ms) = self.server_date_ms.take()
                {
                    let utc = io.host.now_utc_ms();
                    if let Some(off) =
                        io.client
                            .correct_clock(server_ms, utc, self.signed_offset_ms)
                    {
                        self.clock_retried = true;
                        io.out.log(
                            LogLevel::Warn,
                            format!(
                                "{}: refused with the device clock {} s off the cloud's; signing with cloud time",
                                self.spec.what(),
                                off / 1000
                            ),
                        );
                        self.phase = Phase::Idle { at: now };
                        return None;
                    }
                }
                io.client.link.refused();
                self.failed(io, failure, false, now)
            }
            408 | 425 | 429 | 500..=599 => {
                io.client.link.answered();
                self.failed(io, failure, true, now)
            }
            _ => {
                io.client.link.answered();
                self.failed(io, failure, false, now)
            }
        }
    }

    /// An attempt failed: retry after a backoff, or give up.
    fn failed<H: Host<Exchange = X>>(
        &mut self,
        io: &mut Io<'_, H>,
        f: Failure,
        retryable: bool,
        now: u64,
    ) -> Option<Result<Reply, CallError>> {
        if matches!(f, Failure::Net(_)) {
            io.client.link.failed();
        }
        self.failures = self.failures.saturating_add(1);
        if !retryable {
            self.phase = Phase::Done;
            return Some(Err(self.error(f)));
        }
        let out_of_attempts =
            self.policy.max_attempts > 0 && self.attempts >= self.policy.max_attempts;
        if out_of_attempts || self.policy.deadline_ms.is_some_and(|d| now >= d) {
            return Some(Err(self.give_up(Some(f))));
        }
        let delay = backoff_ms(self.failures, self.policy.max_delay_ms, io.client.rng());
        let at = now.saturating_add(delay);
        io.out.log(
            LogLevel::Debug,
            format!(
                "{}: attempt {} failed ({f}); retrying in {delay} ms",
                self.spec.what(),
                self.attempts
            ),
        );
        self.last = Some(f);
        self.phase = Phase::Idle { at: self.cap(at) };
        None
    }

    fn error(&self, f: Failure) -> CallError {
        CallError {
            what: self.spec.what(),
            attempts: self.attempts,
            failure: f,
        }
    }

    fn give_up(&mut self, f: Option<Failure>) -> CallError {
        self.phase = Phase::Done;
        let f = f
            .or_else(|| self.last.take())
            .unwrap_or_else(|| Failure::Net("the deadline passed".into()));
        self.error(f)
    }
}

fn net_failure(e: &NetError) -> Failure {
    Failure::Net(e.to_string())
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorFields,
}

#[derive(Deserialize)]
struct ErrorFields {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    iv_err: Option<i32>,
}

fn status_failure(status: u16, body: &[u8]) -> Failure {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => Failure::Status {
            status,
            iv_err: b.error.iv_err,
            message: format!("{}: {}", b.error.code, b.error.message),
        },
        Err(_) => {
            let text = String::from_utf8_lossy(body.get(..200).unwrap_or(body));
            Failure::Status {
                status,
                iv_err: None,
                message: text.trim().to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::link::Reach;
    use crate::cloud::sign::Credentials;
    use crate::cloud::{Client, TransTimes};
    use crate::events::Outbox;
    use crate::host::{PictureFormat, ResponseHead};
    use std::cell::RefCell;
    use std::rc::Rc;

    /// How a scripted exchange behaves.
    #[derive(Clone)]
    enum Script {
        /// `start` fails: connection refused.
        Refuse,
        /// Answers `status` with `body`; `capacity` is what
        /// `write-capacity` says on successive calls (then unlimited).
        Answer {
            status: u16,
            body: Vec<u8>,
            capacity: Vec<u32>,
        },
        /// Never answers.
        Hang,
    }

    struct Ex {
        script: Script,
        written: Rc<RefCell<Vec<u8>>>,
        caps: RefCell<Vec<u32>>,
        finished: RefCell<bool>,
        body_read: RefCell<usize>,
    }

    struct ScriptHost {
        now: u64,
        scripts: Vec<Script>,
        written: Rc<RefCell<Vec<u8>>>,
        starts: u32,
    }

    impl ScriptHost {
        fn new(scripts: Vec<Script>) -> ScriptHost {
            ScriptHost {
                now: 1000,
                scripts,
                written: Rc::default(),
                starts: 0,
            }
        }
    }

    impl Host for ScriptHost {
        type Exchange = Ex;
        type Picture = ();
        type Capture = ();
        fn now_utc_ms(&mut self) -> u64 {
            1_700_000_000_000 + self.now
        }
        fn monotonic_ms(&mut self) -> u64 {
            self.now
        }
        fn start(&mut self, _req: &Request) -> Result<Ex, NetError> {
            self.starts += 1;
            let script = if self.scripts.len() > 1 {
                self.scripts.remove(0)
            } else {
                self.scripts[0].clone()
            };
            if matches!(script, Script::Refuse) {
                return Err(NetError::Unreachable("refused".into()));
            }
            let caps = match &script {
                Script::Answer { capacity, .. } => capacity.clone(),
                _ => Vec::new(),
            };
            self.written.borrow_mut().clear();
            Ok(Ex {
                script,
                written: self.written.clone(),
                caps: RefCell::new(caps),
                finished: RefCell::new(false),
                body_read: RefCell::new(0),
            })
        }
        fn write_capacity(&mut self, ex: &Ex) -> u32 {
            let mut c = ex.caps.borrow_mut();
            if c.is_empty() { u32::MAX } else { c.remove(0) }
        }
        fn write(&mut self, ex: &Ex, data: &[u8]) -> Result<u32, NetError> {
            ex.written.borrow_mut().extend_from_slice(data);
            Ok(data.len() as u32)
        }
        fn attach(&mut self, _ex: &Ex, _pic: &()) -> Result<(), NetError> {
            Ok(())
        }
        fn finish(&mut self, ex: &Ex) -> Result<(), NetError> {
            *ex.finished.borrow_mut() = true;
            Ok(())
        }
        fn poll_response(&mut self, ex: &Ex) -> Option<Result<ResponseHead, NetError>> {
            assert!(*ex.finished.borrow(), "head polled before finish");
            match &ex.script {
                Script::Answer { status, .. } => Some(Ok(ResponseHead {
                    status: *status,
                    headers: Vec::new(),
                })),
                _ => None,
            }
        }
        fn read_body(&mut self, ex: &Ex, max: u32) -> Result<Option<Vec<u8>>, NetError> {
            let Script::Answer { body, .. } = &ex.script else {
                return Ok(None);
            };
            let at = *ex.body_read.borrow();
            let end = body.len().min(at + max as usize);
            *ex.body_read.borrow_mut() = end;
            Ok(Some(body[at..end].to_vec()))
        }
        fn exchange_id(&self, _: &Ex) -> u64 {
            0
        }
        fn adopt(&mut self, _: u64) -> Option<Ex> {
            None
        }
        fn capture_picture(&mut self, _: u8, _: i32) {}
        fn poll_capture(&mut self, _: &()) -> Option<Result<(), Error>> {
            None
        }
        fn picture_len(&mut self, _: &()) -> u32 {
            0
        }
        fn picture_format(&mut self, _: &()) -> PictureFormat {
            PictureFormat::Unknown
        }
        fn picture_read(&mut self, _: &(), _: u32, _: u32) -> Vec<u8> {
            Vec::new()
        }
    }

    fn client() -> Client {
        let mut c = Client::default();
        c.configure(Credentials::new("cam".into(), b"s".to_vec()), 0, 0);
        c.trans = TransTimes {
            upload_timeout_ms: 1_000,
            reply_timeout_ms: 2_000,
        };
        c
    }

    fn policy(deadline: Option<u64>) -> Policy {
        Policy {
            deadline_ms: deadline,
            max_delay_ms: 4_000,
            max_attempts: 0,
        }
    }

    /// Polls, moving time by `step` while pending, up to `limit` polls.
    fn drive(
        call: &mut Call<Ex>,
        host: &mut ScriptHost,
        client: &mut Client,
        step: u64,
        limit: usize,
    ) -> Option<Result<Reply, CallError>> {
        let mut out = Outbox::default();
        for _ in 0..limit {
            let mut io = Io {
                host: &mut *host,
                client: &mut *client,
                out: &mut out,
            };
            if let Some(r) = call.poll(&mut io, None) {
                return Some(r);
            }
            host.now += step;
        }
        None
    }

    fn answer(status: u16, body: &[u8]) -> Script {
        Script::Answer {
            status,
            body: body.to_vec(),
            capacity: Vec::new(),
        }
    }

    #[test]
    fn back_pressure_waits_and_the_whole_body_is_sent() {
        let body = serde_json::json!({ "ai_type": 1, "args": "" });
        let mut host = ScriptHost::new(vec![Script::Answer {
            status: 200,
            body: b"{}".to_vec(),
            capacity: vec![0, 3, 0, 0, 4],
        }]);
        let mut c = client();
        let mut call = Call::new(
            Spec::json(Method::Put, "/v1/device/ai/0/1".into(), &body),
            policy(None),
            host.now,
        );
        // Three polls find no capacity (or a partial one) and wait.
        for _ in 0..3 {
            assert!(drive(&mut call, &mut host, &mut c, 0, 1).is_none());
        }
        let r = drive(&mut call, &mut host, &mut c, 0, 5).unwrap().unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(*host.written.borrow(), body.to_string().into_bytes());
        assert_eq!(host.starts, 1);
    }

    #[test]
    fn oversized_answers_fail_without_retry() {
        let mut host = ScriptHost::new(vec![answer(200, &vec![b' '; MAX_REPLY_BYTES + 10])]);
        let mut c = client();
        let mut call = Call::new(
            Spec::new(Method::Get, "/v1/device/plan".into()),
            policy(None),
            0,
        );
        let r = drive(&mut call, &mut host, &mut c, 0, 3).unwrap();
        let Err(e) = r else {
            panic!("an oversized answer was accepted");
        };
        assert!(matches!(e.failure, Failure::Protocol(_)), "{}", e.failure);
        assert_eq!(host.starts, 1);
    }

    #[test]
    fn silent_cloud_times_out_retries_and_gives_up_at_the_deadline() {
        let mut host = ScriptHost::new(vec![Script::Hang]);
        let mut c = client();
        let deadline = host.now + 20_000;
        let mut call = Call::new(
            Spec::new(Method::Get, "/v1/device/plan".into()),
            policy(Some(deadline)),
            host.now,
        );
        let e = drive(&mut call, &mut host, &mut c, 100, 1_000)
            .unwrap()
            .unwrap_err();
        assert!(
            host.now >= deadline && host.now <= deadline + 100,
            "{}",
            host.now
        );
        assert!(matches!(e.failure, Failure::Net(_)), "{e:?}");
        // 2 s reply timeout + backoff of at most 4 s: several attempts.
        assert!((3..=10).contains(&e.attempts), "{}", e.attempts);
        assert_eq!(c.link.reach(), Reach::Down);
        assert_eq!(e.to_error(ErrorKind::Timeout).code(), -608);
    }

    #[test]
    fn client_errors_end_the_call_server_errors_are_retried() {
        let refusal = br#"{"error":{"code":"no_service","message":"no plan","iv_err":-607}}"#;
        let mut host = ScriptHost::new(vec![answer(403, refusal)]);
        let mut c = client();
        let mut call = Call::new(Spec::new(Method::Get, "/x".into()), policy(None), 0);
        let e = drive(&mut call, &mut host, &mut c, 10, 100)
            .unwrap()
            .unwrap_err();
        assert_eq!(e.to_error(ErrorKind::Timeout).code(), -607);
        assert_eq!(host.starts, 1);
        assert_eq!(c.link.reach(), Reach::Up, "a refusal is an answer");

        let mut host = ScriptHost::new(vec![
            answer(503, b"busy"),
            Script::Refuse,
            answer(200, b"{}"),
        ]);
        let mut call = Call::new(Spec::new(Method::Get, "/x".into()), policy(None), 0);
        let r = drive(&mut call, &mut host, &mut c, 100, 1_000)
            .unwrap()
            .unwrap();
        assert_eq!(r.body, b"{}");
        assert_eq!(host.starts, 3);
    }

    #[test]
    fn gateway_errors_count_as_unreachable() {
        let mut host = ScriptHost::new(vec![answer(502, b"bad gateway")]);
        let mut c = client();
        let mut call = Call::new(
            Spec::new(Method::Get, "/x".into()),
            Policy {
                max_attempts: 2,
                ..policy(None)
            },
            0,
        );
        let e = drive(&mut call, &mut host, &mut c, 100, 1_000)
            .unwrap()
            .unwrap_err();
        assert_eq!(e.attempts, 2);
        assert_eq!(c.link.reach(), Reach::Down);
        let mut c2 = client();
        let mut host = ScriptHost::new(vec![answer(401, b"")]);
        let mut call = Call::new(Spec::new(Method::Get, "/x".into()), policy(None), 0);
        let e = drive(&mut call, &mut host, &mut c2, 100, 100)
            .unwrap()
            .unwrap_err();
        assert_eq!(e.to_error(ErrorKind::Timeout).code(), -603);
        assert_eq!(c2.link.reach(), Reach::Refused);
    }
}
