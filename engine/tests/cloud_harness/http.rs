//! A small blocking HTTP/1.1 client behind a non-blocking exchange, the way
//! a real host serves the `network` import: each exchange runs on its own
//! thread over one TCP connection (`connection: close`); the engine's
//! writes are queued up to a capacity (back-pressure), the response head and
//! body are published as they arrive, and every step wakes the test driver.
//!
//! Request bodies use `content-length` when known, chunked encoding when
//! not; responses may be length-delimited, chunked or close-delimited.

use ivcs_engine::host::{NetError, Request, ResponseHead};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Bytes an exchange queues before `write` answers 0.
pub const WRITE_CAPACITY: usize = 256 << 10;

/// A progress counter the driver waits on instead of sleeping.
#[derive(Default)]
pub struct Wake {
    n: Mutex<u64>,
    cv: Condvar,
}

impl Wake {
    /// Something happened.
    pub fn kick(&self) {
        let mut n = self.n.lock().unwrap();
        *n += 1;
        self.cv.notify_all();
    }

    /// Current count.
    pub fn count(&self) -> u64 {
        *self.n.lock().unwrap()
    }

    /// Waits until the count passes `seen` or `timeout` elapses.
    pub fn wait(&self, seen: u64, timeout: Duration) {
        let g = self.n.lock().unwrap();
        let _ = self.cv.wait_timeout_while(g, timeout, |n| *n <= seen);
    }
}

#[derive(Default)]
struct State {
    out: VecDeque<Vec<u8>>,
    queued: usize,
    finished: bool,
    cancelled: bool,
    head: Option<Result<ResponseHead, NetError>>,
    body: VecDeque<u8>,
    body_done: bool,
    body_err: Option<NetError>,
    sock: Option<TcpStream>,
}

struct Shared {
    st: Mutex<State>,
    cv: Condvar,
    wake: Arc<Wake>,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.st.lock().unwrap());
        self.cv.notify_all();
        self.wake.kick();
    }
}

/// One exchange. Dropping it cancels it (the socket is shut down).
pub struct Exchange {
    sh: Arc<Shared>,
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.sh.update(|s| {
            s.cancelled = true;
            if let Some(sock) = &s.sock {
                let _ = sock.shutdown(Shutdown::Both);
            }
        });
    }
}

impl Exchange {
    /// Opens an exchange to `addr`; the connection is made on the thread,
    /// so a refused connection shows up as the response's `unreachable`.
    pub fn start(addr: SocketAddr, req: &Request, wake: Arc<Wake>) -> Exchange {
        let sh = Arc::new(Shared {
            st: Mutex::new(State::default()),
            cv: Condvar::new(),
            wake,
        });
        let t = sh.clone();
        let req = req.clone();
        std::thread::spawn(move || run(addr, req, t));
        Exchange { sh }
    }

    /// Bytes `write` takes now.
    pub fn write_capacity(&self) -> u32 {
        let s = self.sh.st.lock().unwrap();
        WRITE_CAPACITY.saturating_sub(s.queued) as u32
    }

    /// Queues body bytes.
    pub fn write(&self, data: &[u8]) -> Result<u32, NetError> {
        let mut s = self.sh.st.lock().unwrap();
        if s.finished {
            return Err(NetError::Invalid("write after finish".into()));
        }
        if let Some(Err(e)) = &s.head {
            return Err(e.clone());
        }
        let n = data.len().min(WRITE_CAPACITY.saturating_sub(s.queued));
        if n > 0 {
            s.out.push_back(data[..n].to_vec());
            s.queued += n;
            drop(s);
            self.sh.cv.notify_all();
        }
        Ok(n as u32)
    }

    /// Appends bytes the host holds (a picture).
    pub fn attach(&self, data: &[u8]) -> Result<(), NetError> {
        let mut s = self.sh.st.lock().unwrap();
        if s.finished {
            return Err(NetError::Invalid("attach after finish".into()));
        }
        s.out.push_back(data.to_vec());
        s.queued += data.len();
        drop(s);
        self.sh.cv.notify_all();
        Ok(())
    }

    /// End of body.
    pub fn finish(&self) -> Result<(), NetError> {
        self.sh.update(|s| s.finished = true);
        Ok(())
    }

    /// The head, once it arrived.
    pub fn poll_response(&self) -> Option<Result<ResponseHead, NetError>> {
        self.sh.st.lock().unwrap().head.clone()
    }

    /// Up to `max` body bytes: none = not yet, empty = end.
    pub fn read_body(&self, max: u32) -> Result<Option<Vec<u8>>, NetError> {
        let mut s = self.sh.st.lock().unwrap();
        if !s.body.is_empty() {
            let n = (max as usize).min(s.body.len());
            return Ok(Some(s.body.drain(..n).collect()));
        }
        if let Some(e) = &s.body_err {
            return Err(e.clone());
        }
        if s.body_done {
            return Ok(Some(Vec::new()));
        }
        Ok(None)
    }
}

fn run(addr: SocketAddr, req: Request, sh: Arc<Shared>) {
    let sock = match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
        Ok(s) => s,
        Err(e) => {
            sh.update(|s| s.head = Some(Err(NetError::Unreachable(format!("{addr}: {e}")))));
            return;
        }
    };
    let cancelled = {
        let mut s = sh.st.lock().unwrap();
        s.sock = sock.try_clone().ok();
        s.cancelled
    };
    if cancelled {
        let _ = sock.shutdown(Shutdown::Both);
        return;
    }
    let closed = |e: std::io::Error| NetError::Closed(e.to_string());
    if let Err(e) = send(&sock, &req, &sh) {
        // The server may have answered early and closed; try to read it.
        let mut r = BufReader::new(&sock);
        if let Ok(head) = read_head(&mut r) {
            sh.update(|s| s.head = Some(Ok(head)));
            read_rest(r, &sh);
        } else {
            sh.update(|s| s.head = Some(Err(e)));
        }
        return;
    }
    let mut r = BufReader::new(&sock);
    match read_head(&mut r) {
        Ok(head) => sh.update(|s| s.head = Some(Ok(head))),
        Err(e) => {
            sh.update(|s| s.head = Some(Err(closed(e))));
            return;
        }
    }
    read_rest(r, &sh);
}

fn send(mut sock: &TcpStream, req: &Request, sh: &Shared) -> Result<(), NetError> {
    let closed = |e: std::io::Error| NetError::Closed(e.to_string());
    let mut head = format!(
        "{} {} HTTP/1.1\r\nhost: ivcs\r\nconnection: close\r\n",
        req.method.as_str(),
        req.path
    );
    for (k, v) in &req.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let chunked = req.content_length.is_none();
    match req.content_length {
        Some(n) => head.push_str(&format!("content-length: {n}\r\n")),
        None => head.push_str("transfer-encoding: chunked\r\n"),
    }
    head.push_str("\r\n");
    sock.write_all(head.as_bytes()).map_err(closed)?;
    loop {
        let (chunk, done) = {
            let mut s = sh.st.lock().unwrap();
            while s.out.is_empty() && !s.finished && !s.cancelled {
                s = sh.cv.wait(s).unwrap();
            }
            if s.cancelled {
                return Err(NetError::Closed("cancelled".into()));
            }
            match s.out.pop_front() {
                Some(c) => {
                    s.queued -= c.len();
                    (Some(c), false)
                }
                None => (None, s.finished),
            }
        };
        if let Some(c) = chunk {
            if chunked {
                sock.write_all(format!("{:x}\r\n", c.len()).as_bytes())
                    .map_err(closed)?;
                sock.write_all(&c).map_err(closed)?;
                sock.write_all(b"\r\n").map_err(closed)?;
            } else {
                sock.write_all(&c).map_err(closed)?;
            }
            sh.wake.kick();
        }
        if done {
            if chunked {
                sock.write_all(b"0\r\n\r\n").map_err(closed)?;
            }
            return sock.flush().map_err(closed);
        }
    }
}

fn read_head(r: &mut impl BufRead) -> std::io::Result<ResponseHead> {
    loop {
        let h = read_one_head(r)?;
        // `100 Continue` (asked for with `expect`) precedes the answer.
        if !(100..200).contains(&h.status) || h.status == 101 {
            return Ok(h);
        }
    }
}

fn read_one_head(r: &mut impl BufRead) -> std::io::Result<ResponseHead> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(std::io::Error::other("connection closed before the answer"));
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Ok(ResponseHead { status, headers })
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn read_rest(mut r: impl BufRead, sh: &Shared) {
    let head = match &sh.st.lock().unwrap().head {
        Some(Ok(h)) => h.clone(),
        _ => return,
    };
    let push = |d: &[u8]| sh.update(|s| s.body.extend(d));
    let result: std::io::Result<()> = (|| {
        if header(&head.headers, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                let mut line = String::new();
                r.read_line(&mut line)?;
                let n = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| std::io::Error::other(format!("bad chunk size {line:?}")))?;
                if n == 0 {
                    return Ok(());
                }
                let mut buf = vec![0; n];
                r.read_exact(&mut buf)?;
                push(&buf);
                let mut crlf = [0; 2];
                r.read_exact(&mut crlf)?;
            }
        }
        let mut left =
            header(&head.headers, "content-length").and_then(|v| v.parse::<usize>().ok());
        let mut buf = vec![0; 16 << 10];
        loop {
            let want = left.map_or(buf.len(), |l| l.min(buf.len()));
            if want == 0 {
                return Ok(());
            }
            let n = r.read(&mut buf[..want])?;
            if n == 0 {
                return match left {
                    Some(l) if l > 0 => Err(std::io::Error::other("body ended early")),
                    _ => Ok(()),
                };
            }
            push(&buf[..n]);
            if let Some(l) = &mut left {
                *l -= n;
            }
        }
    })();
    match result {
        Ok(()) => sh.update(|s| s.body_done = true),
        Err(e) => sh.update(|s| s.body_err = Some(NetError::Closed(e.to_string()))),
    }
}

/// A plain blocking request for the test itself (app API calls).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut sock = TcpStream::connect(addr).expect("connect to the cloud");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: ivcs\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    sock.write_all(head.as_bytes()).unwrap();
    sock.write_all(body).unwrap();
    let mut r = BufReader::new(&sock);
    let h = read_head(&mut r).expect("answer head");
    let sh = Shared {
        st: Mutex::new(State {
            head: Some(Ok(h.clone())),
            ..State::default()
        }),
        cv: Condvar::new(),
        wake: Arc::new(Wake::default()),
    };
    read_rest(r, &sh);
    let s = sh.st.lock().unwrap();
    assert!(s.body_err.is_none(), "{:?}", s.body_err);
    (h.status, s.body.iter().copied().collect())
}
