//! The camera side of the simulated network: a [`Transport`] for the
//! host's real exchange code ([`ivcs_host::net::NetClient::with_transport`])
//! that opens a turmoil TCP connection to the cloud per exchange and speaks
//! HTTP/1.1 over it with hyper, through the camera's uplink ([`Link`]):
//! a token bucket in virtual time for bandwidth caps and stalls, and
//! packet loss as TCP shows it (a lost window goes again after a
//! retransmission timeout). Outages and latency are turmoil's (the driver
//! holds and releases the link).

use hyper_util::rt::TokioIo;
use ivcs_host::net::{NetError, SendFuture, Transport, UploadBody};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// A camera's uplink: rate and packet loss; clones share it (the driver
/// changes it).
#[derive(Clone)]
pub struct Link(Arc<Mutex<Bucket>>);

struct Bucket {
    /// Bytes per second; `None`: unlimited; `Some(0)`: stalled.
    rate: Option<u64>,
    tokens: f64,
    last: Option<Instant>,
    /// Packets lost, %.
    loss_pct: u32,
    /// Windows lost in a row (the retransmission timeout doubles).
    losses: u32,
    /// Draws the losses (seeded: runs repeat).
    rng: ChaCha8Rng,
}

/// Burst the bucket holds, seconds of the rate.
const BURST_S: f64 = 0.05;
/// With loss, bytes go in windows of this many TCP packets (of 1460 B).
const WINDOW_PACKETS: usize = 10;
/// A lone lost window is repaired by fast retransmit in about a round
/// trip.
const FAST_RETRANSMIT: Duration = Duration::from_millis(60);
/// A window lost a third time in a row waits for the retransmission
/// timeout, doubling while losses repeat (at most 16x).
const RTO: Duration = Duration::from_millis(200);

impl Link {
    /// An unlimited, lossless uplink whose losses (when set) are drawn
    /// from `seed`.
    pub fn new(seed: u64) -> Link {
        Link(Arc::new(Mutex::new(Bucket {
            rate: None,
            tokens: 0.0,
            last: None,
            loss_pct: 0,
            losses: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
        })))
    }

    /// Sets the packet loss, %.
    pub fn set_loss(&self, pct: u32) {
        let mut b = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        b.loss_pct = pct.min(100);
        b.losses = 0;
    }

    /// Sets the uplink to `kbps` (0: stalled) or unlimited (`None`).
    pub fn set_kbps(&self, kbps: Option<u32>) {
        let mut b = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        b.rate = kbps.map(|k| u64::from(k) * 1000 / 8);
        b.tokens = 0.0;
        b.last = None;
    }

    /// How many of `want` bytes may go now, or how long until some may.
    fn take(&self, want: usize) -> Result<usize, Duration> {
        let mut b = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let want = if b.loss_pct > 0 {
            // A window is lost if any of its packets is; TCP sends it
            // again after the retransmission timeout.
            let want = want.min(WINDOW_PACKETS * 1460);
            let packets = want.div_ceil(1460) as i32;
            let p = 1.0 - (1.0 - f64::from(b.loss_pct) / 100.0).powi(packets);
            if b.rng.random_bool(p) {
                b.losses += 1;
                return Err(match b.losses {
                    1 | 2 => FAST_RETRANSMIT,
                    n => RTO * (1 << (n - 3).min(4)),
                });
            }
            b.losses = 0;
            want
        } else {
            want
        };
        let Some(rate) = b.rate else {
            return Ok(want);
        };
        if rate == 0 {
            return Err(Duration::from_millis(100));
        }
        let now = Instant::now();
        let rate = rate as f64;
        let cap = (rate * BURST_S).max(1500.0);
        let gained = b.last.map_or(cap, |l| (now - l).as_secs_f64() * rate);
        b.tokens = (b.tokens + gained).min(cap);
        b.last = Some(now);
        if b.tokens >= 1.0 {
            let n = (b.tokens as usize).min(want);
            b.tokens -= n as f64;
            return Ok(n);
        }
        Err(Duration::from_secs_f64((1.0 - b.tokens) / rate).max(Duration::from_millis(1)))
    }
}

/// A stream whose writes go at the [`Link`]'s pace.
struct Shaped<S> {
    inner: S,
    link: Link,
    wait: Option<Pin<Box<Sleep>>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Shaped<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Shaped<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            if let Some(w) = &mut self.wait {
                if w.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.wait = None;
            }
            match self.link.take(buf.len()) {
                Ok(n) => {
                    let s = &mut *self;
                    return Pin::new(&mut s.inner).poll_write(cx, &buf[..n]);
                }
                Err(d) => self.wait = Some(Box::pin(tokio::time::sleep(d))),
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Carries a camera's exchanges to the cloud host.
pub struct SimTransport {
    /// The camera's uplink.
    pub link: Link,
}

impl Transport for SimTransport {
    fn send(&self, req: hyper::Request<UploadBody>) -> SendFuture {
        let link = self.link.clone();
        Box::pin(async move {
            let stream = turmoil::net::TcpStream::connect((crate::cloud::HOST, crate::cloud::PORT))
                .await
                .map_err(|e| NetError::Unreachable(format!("connecting to the cloud: {e}")))?;
            let io = TokioIo::new(Shaped {
                inner: stream,
                link,
                wait: None,
            });
            let (mut send, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| NetError::Closed(format!("HTTP handshake: {e}")))?;
            tokio::spawn(async move {
                // Ends when the exchange is done or the connection breaks;
                // the exchange reports the latter.
                let _ = conn.await;
            });
            send.send_request(req)
                .await
                .map_err(|e| NetError::Closed(format!("the connection broke: {e}")))
        })
    }
}
