//! A bandwidth cap between a client and a server: a TCP proxy on loopback
//! whose upstream direction (client to server) goes through one token
//! bucket shared by every connection. Tests point the library at
//! [`Shaper::url`] and change the cap while it runs, which is what a
//! congested uplink looks like to a camera (writes block, the backlog
//! grows), unlike a stopped server (connections hang, timeouts fire).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Bytes moved per grant: small enough that a cap of a few KB/s still
/// flows smoothly.
const CHUNK: usize = 4096;

/// The token bucket: `rate` bytes per second (`None`: no cap).
struct Bucket {
    rate: Option<u64>,
    tokens: f64,
    at: Instant,
}

struct Shared {
    bucket: Mutex<Bucket>,
    /// Signalled when the rate changes, so a waiting grant re-reads it.
    changed: Condvar,
}

impl Shared {
    /// Waits until `want` bytes may go upstream; returns how many may.
    fn grant(&self, want: usize) -> usize {
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let Some(rate) = b.rate else {
                return want;
            };
            let now = Instant::now();
            let burst = (rate as f64 / 10.0).max(CHUNK as f64);
            let refill = now.duration_since(b.at).as_secs_f64() * rate as f64;
            b.tokens = (b.tokens + refill).min(burst);
            b.at = now;
            if b.tokens >= 1.0 {
                // Whole bytes only; what a short read leaves is refunded.
                let n = want.min(b.tokens as usize);
                b.tokens -= n as f64;
                return n;
            }
            // Until one more chunk is due, or the rate changes.
            let wait = Duration::from_secs_f64((CHUNK as f64 / rate as f64).min(0.5));
            b = self
                .changed
                .wait_timeout(b, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Gives back bytes granted but not read.
    fn refund(&self, n: usize) {
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        if b.rate.is_some() {
            b.tokens += n as f64;
        }
    }
}

/// A running proxy. Dropping it stops accepting; open connections end
/// when either side closes.
pub struct Shaper {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Shaper {
    /// Starts a proxy to `upstream` (host:port), uncapped.
    pub fn start(upstream: SocketAddr) -> Shaper {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the shaper");
        let addr = listener.local_addr().expect("the shaper's address");
        let shared = Arc::new(Shared {
            bucket: Mutex::new(Bucket {
                rate: None,
                tokens: 0.0,
                at: Instant::now(),
            }),
            changed: Condvar::new(),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                proxy(client, server, s.clone());
            }
        });
        Shaper { addr, shared }
    }

    /// `http://ADDR` of the proxy.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Caps client-to-server traffic at `bytes_per_s` (`None`: uncapped).
    pub fn set_rate(&self, bytes_per_s: Option<u64>) {
        let mut b = self.shared.bucket.lock().unwrap_or_else(|e| e.into_inner());
        b.rate = bytes_per_s;
        b.tokens = 0.0;
        b.at = Instant::now();
        self.shared.changed.notify_all();
    }
}

/// Copies both directions of one connection on two threads; only the
/// upstream one is shaped (uploads are what a camera's uplink limits).
fn proxy(client: TcpStream, server: TcpStream, shared: Arc<Shared>) {
    let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    std::thread::spawn(move || pump(client, server, Some(shared)));
    std::thread::spawn(move || pump(server2, client2, None));
}

fn pump(mut from: TcpStream, mut to: TcpStream, shaped: Option<Arc<Shared>>) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let want = match &shaped {
            Some(s) => s.grant(CHUNK),
            None => CHUNK,
        };
        let n = match from.read(&mut buf[..want]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(s) = &shaped {
            s.refund(want - n);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}
