//! The test [`Host`]: virtual clocks the test moves, exchanges forwarded to
//! the real cloud over loopback HTTP (see `http.rs`), and pictures held in
//! memory that count their releases (the host's `picture_result_cb`).

use super::http::{Exchange, Wake};
use ivcs_engine::Error;
use ivcs_engine::host::{Host, NetError, PictureFormat, Request, ResponseHead};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// An exchange held by an engine; shared, so that a hand-over can pass it
/// to the next engine ([`Host::adopt`]). The last holder's drop cancels it.
pub struct TestExchange {
    ex: Arc<Exchange>,
    id: u64,
}

/// Exchanges by id, as a host names them for `adopt`: shared by the hosts
/// of a leaving and a new engine (the same network client in libivcs).
pub type Named = Arc<Mutex<HashMap<u64, Weak<Exchange>>>>;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A picture firmware handed over; counts its release when dropped.
pub struct TestPicture {
    bytes: Arc<Vec<u8>>,
    released: Arc<AtomicUsize>,
}

impl Drop for TestPicture {
    fn drop(&mut self) {
        self.released.fetch_add(1, Ordering::SeqCst);
    }
}

/// A capture that is fulfilled at once with a fixed picture (or fails).
pub struct TestCapture(Option<Vec<u8>>);

/// The host. See the module docs.
#[derive(Clone)]
pub struct TestHost {
    /// Virtual UTC, ms.
    pub utc_ms: u64,
    /// Virtual monotonic clock, ms.
    pub mono_ms: u64,
    /// Where the cloud listens.
    pub addr: SocketAddr,
    /// Progress signal for the driver.
    pub wake: Arc<Wake>,
    /// Pictures released so far.
    pub released: Arc<AtomicUsize>,
    /// Every request started, for assertions.
    pub requests: Arc<Mutex<Vec<Request>>>,
    /// What a capture returns.
    pub capture_bytes: Option<Vec<u8>>,
    /// Exchanges an engine may adopt.
    pub named: Named,
}

impl TestHost {
    /// A host whose cloud is at `addr`, clocks at `utc_ms`.
    pub fn new(addr: SocketAddr, utc_ms: u64) -> TestHost {
        TestHost {
            utc_ms,
            mono_ms: 1_000_000,
            addr,
            wake: Arc::new(Wake::default()),
            released: Arc::new(AtomicUsize::new(0)),
            requests: Arc::default(),
            capture_bytes: None,
            named: Named::default(),
        }
    }

    /// The host of an engine that takes over from the one on `old`: same
    /// clocks, the same progress signal and the same exchanges to adopt,
    /// as libivcs gives both instances one network client.
    pub fn successor(old: &TestHost) -> TestHost {
        old.clone()
    }

    /// A picture holding `bytes`, as firmware would hand over.
    pub fn picture(&self, bytes: Vec<u8>) -> TestPicture {
        TestPicture {
            bytes: Arc::new(bytes),
            released: self.released.clone(),
        }
    }

    /// Pictures released so far.
    pub fn released(&self) -> usize {
        self.released.load(Ordering::SeqCst)
    }
}

fn sniff(b: &[u8]) -> PictureFormat {
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        PictureFormat::Jpeg
    } else if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        PictureFormat::Png
    } else {
        PictureFormat::Unknown
    }
}

impl Host for TestHost {
    type Exchange = TestExchange;
    type Picture = TestPicture;
    type Capture = TestCapture;

    fn now_utc_ms(&mut self) -> u64 {
        self.utc_ms
    }
    fn monotonic_ms(&mut self) -> u64 {
        self.mono_ms
    }
    fn start(&mut self, req: &Request) -> Result<TestExchange, NetError> {
        self.requests.lock().unwrap().push(req.clone());
        let ex = Arc::new(Exchange::start(self.addr, req, self.wake.clone()));
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        self.named.lock().unwrap().insert(id, Arc::downgrade(&ex));
        Ok(TestExchange { ex, id })
    }
    fn write_capacity(&mut self, ex: &TestExchange) -> u32 {
        ex.ex.write_capacity()
    }
    fn write(&mut self, ex: &TestExchange, data: &[u8]) -> Result<u32, NetError> {
        ex.ex.write(data)
    }
    fn attach(&mut self, ex: &TestExchange, pic: &TestPicture) -> Result<(), NetError> {
        ex.ex.attach(&pic.bytes)
    }
    fn finish(&mut self, ex: &TestExchange) -> Result<(), NetError> {
        ex.ex.finish()
    }
    fn poll_response(&mut self, ex: &TestExchange) -> Option<Result<ResponseHead, NetError>> {
        ex.ex.poll_response()
    }
    fn read_body(&mut self, ex: &TestExchange, max: u32) -> Result<Option<Vec<u8>>, NetError> {
        ex.ex.read_body(max)
    }
    fn exchange_id(&self, ex: &TestExchange) -> u64 {
        ex.id
    }
    fn adopt(&mut self, id: u64) -> Option<TestExchange> {
        let ex = self.named.lock().unwrap().get(&id)?.upgrade()?;
        Some(TestExchange { ex, id })
    }
    fn capture_picture(&mut self, _channel: u8, _event_id: i32) -> TestCapture {
        TestCapture(self.capture_bytes.clone())
    }
    fn poll_capture(&mut self, cap: &TestCapture) -> Option<Result<TestPicture, Error>> {
        Some(match &cap.0 {
            Some(b) => Ok(self.picture(b.clone())),
            None => Err(Error::new(
                ivcs_engine::ErrorKind::NotInitialised,
                "no picture source",
            )),
        })
    }
    fn picture_len(&mut self, pic: &TestPicture) -> u32 {
        pic.bytes.len() as u32
    }
    fn picture_format(&mut self, pic: &TestPicture) -> PictureFormat {
        sniff(&pic.bytes)
    }
    fn picture_read(&mut self, pic: &TestPicture, offset: u32, len: u32) -> Vec<u8> {
        let s = (offset as usize).min(pic.bytes.len());
        let e = s.saturating_add(len as usize).min(pic.bytes.len());
        pic.bytes[s..e].to_vec()
    }
}
