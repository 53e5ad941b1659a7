//! The host side of the engine's imports.
//!
//! `clock` reads the system clocks. `snapshot` keeps pictures in the store's
//! resource table; captures either fail at once (no picture source) or, when
//! the host enabled [`Captures`], stay pending until the host fulfils them
//! (libivcs asks firmware's capture callback on its callback thread).
//! `network` forwards to the store's [`net::NetClient`] (on host-sim, one
//! whose transport is the simulated network); a store without one answers
//! every `start` with a clear `unreachable`, which the engine treats like any
//! outage. A store may also be given its own [`EngineClock`] (host-sim's
//! virtual time).

use crate::bindings::ivcs::engine::{clock, network, snapshot, types};
use crate::net;
use crate::runtime::HostState;
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use wasmtime::component::Resource;

/// Bytes of a picture the firmware handed over.
pub struct PictureData {
    /// The picture's bytes; shared, so `network.attach` appends them to a
    /// request body without a copy.
    pub bytes: Bytes,
}

/// A capture request from the engine.
pub struct CaptureData {
    /// Channel the picture is for.
    pub channel: u8,
    /// Event id the picture is for.
    pub event_id: i32,
    serial: u64,
    state: CaptureState,
}

enum CaptureState {
    Pending,
    Ready(Result<Bytes, types::EngineError>),
    Taken,
}

/// A capture the engine asked for, to be fulfilled by the host with
/// [`HostState::fulfil_capture`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureRequest {
    /// Identifies the capture (unique per store).
    pub serial: u64,
    /// Channel the picture is for.
    pub channel: u8,
    /// Event id the picture is for.
    pub event_id: i32,
    rep: u32,
}

/// The host's picture source: captures requested and not yet handed out.
#[derive(Default)]
pub struct Captures {
    requested: Vec<CaptureRequest>,
    next_serial: u64,
}

impl HostState {
    /// Captures the engine asked for since the last call (empty without
    /// [`crate::EngineInstance::enable_captures`]).
    pub fn take_capture_requests(&mut self) -> Vec<CaptureRequest> {
        self.captures
            .as_mut()
            .map(|c| std::mem::take(&mut c.requested))
            .unwrap_or_default()
    }

    /// A picture resource to hand to the engine (`cs.event-report`). The
    /// bytes' owner is dropped when the engine and every request body that
    /// attached them are done with them.
    pub fn add_picture(&mut self, bytes: Bytes) -> anyhow::Result<Resource<PictureData>> {
        Ok(self.table.push(PictureData { bytes })?)
    }

    /// Answers a capture: the picture's bytes, or the reason there is none.
    /// Returns the bytes back when the engine has dropped the capture
    /// meanwhile (the caller then owns them).
    pub fn fulfil_capture(
        &mut self,
        req: &CaptureRequest,
        result: Result<Bytes, types::EngineError>,
    ) -> Option<Result<Bytes, types::EngineError>> {
        let cap: Resource<CaptureData> = Resource::new_borrow(req.rep);
        match self.table.get_mut(&cap) {
            Ok(c) if c.serial == req.serial && matches!(c.state, CaptureState::Pending) => {
                c.state = CaptureState::Ready(result);
                None
            }
            _ => Some(result),
        }
    }
}

/// The `clock` import's source when it is not the system's (host-sim's
/// virtual time, with drift and steps).
pub trait EngineClock: Send + 'static {
    /// `clock.now-utc-ms`.
    fn now_utc_ms(&self) -> u64;
    /// `clock.monotonic-ms`; the scale of `tick-result.wake-at-ms`.
    fn monotonic_ms(&self) -> u64;
}

/// An HTTP exchange an engine started or adopted: shared, so that a live
/// update can hand it to the next engine (`network.adopt`); it is aborted
/// when the last engine holding it drops it.
pub struct ExchangeData {
    ex: Arc<net::Exchange>,
    id: u64,
}

/// Monotonic origin shared by all stores of the process.
fn monotonic_origin() -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// The engine's monotonic clock (`clock.monotonic-ms`): milliseconds since
/// the first use in this process. `tick-result.wake-at-ms` is on this scale.
pub fn monotonic_ms() -> u64 {
    u64::try_from(monotonic_origin().elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The instant `ms` on the [`monotonic_ms`] scale stands for.
pub fn monotonic_instant(ms: u64) -> Instant {
    monotonic_origin() + std::time::Duration::from_millis(ms)
}

impl clock::Host for HostState {
    fn now_utc_ms(&mut self) -> u64 {
        if let Some(c) = &self.clock {
            return c.now_utc_ms();
        }
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }

    fn monotonic_ms(&mut self) -> u64 {
        match &self.clock {
            Some(c) => c.monotonic_ms(),
            None => monotonic_ms(),
        }
    }
}

impl types::Host for HostState {}

/// Picture format from magic bytes, never from what firmware claims.
pub fn sniff_picture(bytes: &[u8]) -> snapshot::PictureFormat {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        snapshot::PictureFormat::Jpeg
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        snapshot::PictureFormat::Png
    } else {
        snapshot::PictureFormat::Unknown
    }
}

impl snapshot::HostPicture for HostState {
    fn len(&mut self, pic: Resource<PictureData>) -> u32 {
        self.table
            .get(&pic)
            .map(|p| u32::try_from(p.bytes.len()).unwrap_or(u32::MAX))
            .unwrap_or(0)
    }

    fn format(&mut self, pic: Resource<PictureData>) -> snapshot::PictureFormat {
        self.table
            .get(&pic)
            .map(|p| sniff_picture(&p.bytes))
            .unwrap_or(snapshot::PictureFormat::Unknown)
    }

    fn read(&mut self, pic: Resource<PictureData>, offset: u32, len: u32) -> Vec<u8> {
        let Ok(p) = self.table.get(&pic) else {
            return Vec::new();
        };
        let start = (offset as usize).min(p.bytes.len());
        let end = start.saturating_add(len as usize).min(p.bytes.len());
        p.bytes
            .get(start..end)
            .map(<[u8]>::to_vec)
            .unwrap_or_default()
    }

    fn drop(&mut self, pic: Resource<PictureData>) -> wasmtime::Result<()> {
        self.table.delete(pic)?;
        Ok(())
    }
}

impl snapshot::HostCapture for HostState {
    fn poll(
        &mut self,
        cap: Resource<CaptureData>,
    ) -> Option<Result<Resource<PictureData>, types::EngineError>> {
        if self.captures.is_some() {
            let ready = match self.table.get_mut(&cap) {
                Ok(c) => match std::mem::replace(&mut c.state, CaptureState::Taken) {
                    CaptureState::Pending => {
                        c.state = CaptureState::Pending;
                        return None;
                    }
                    CaptureState::Ready(r) => r,
                    CaptureState::Taken => Err(types::EngineError {
                        code: -602,
                        message: format!(
                            "channel {} event {}: capture already answered",
                            c.channel, c.event_id
                        ),
                    }),
                },
                Err(_) => Err(types::EngineError {
                    code: -602,
                    message: "unknown capture".to_string(),
                }),
            };
            return Some(ready.and_then(|bytes| {
                self.table
                    .push(PictureData { bytes })
                    .map_err(|e| types::EngineError {
                        code: -606,
                        message: format!("too many open resources: {e}"),
                    })
            }));
        }
        let what = match self.table.get(&cap) {
            Ok(c) => format!("channel {} event {}", c.channel, c.event_id),
            Err(_) => "unknown capture".to_string(),
        };
        Some(Err(types::EngineError {
            code: -605,
            message: format!("{what}: this runtime has no picture source"),
        }))
    }

    fn drop(&mut self, cap: Resource<CaptureData>) -> wasmtime::Result<()> {
        self.table.delete(cap)?;
        Ok(())
    }
}

impl snapshot::Host for HostState {
    fn capture_picture(&mut self, channel: u8, event_id: i32) -> Resource<CaptureData> {
        // A full table is a host bug, not an engine one; the capture then
        // reports "unknown capture" when polled.
        let serial = match &mut self.captures {
            Some(c) => {
                c.next_serial += 1;
                c.next_serial
            }
            None => 0,
        };
        let cap = self
            .table
            .push(CaptureData {
                channel,
                event_id,
                serial,
                state: CaptureState::Pending,
            })
            .unwrap_or_else(|_| Resource::new_own(u32::MAX));
        if let Some(c) = &mut self.captures {
            c.requested.push(CaptureRequest {
                serial,
                channel,
                event_id,
                rep: cap.rep(),
            });
        }
        cap
    }
}

fn no_exchange() -> network::NetError {
    network::NetError::Invalid("no such exchange".to_string())
}

impl From<net::NetError> for network::NetError {
    fn from(e: net::NetError) -> Self {
        match e {
            net::NetError::Unreachable(m) => network::NetError::Unreachable(m),
            net::NetError::Timeout => network::NetError::Timeout,
            net::NetError::Closed(m) => network::NetError::Closed(m),
            net::NetError::Invalid(m) => network::NetError::Invalid(m),
        }
    }
}

impl From<network::Method> for net::Method {
    fn from(m: network::Method) -> Self {
        match m {
            network::Method::Get => net::Method::Get,
            network::Method::Post => net::Method::Post,
            network::Method::Put => net::Method::Put,
            network::Method::Delete => net::Method::Delete,
        }
    }
}

impl HostState {
    /// The exchange behind a handle; an unknown handle is the engine's error.
    fn exchange(&self, ex: &Resource<ExchangeData>) -> Result<&net::Exchange, network::NetError> {
        self.table
            .get(ex)
            .map(|e| &*e.ex)
            .map_err(|_| no_exchange())
    }
}

impl network::HostExchange for HostState {
    fn write_capacity(&mut self, ex: Resource<ExchangeData>) -> u32 {
        self.exchange(&ex).map(|e| e.write_capacity()).unwrap_or(0)
    }

    fn write(
        &mut self,
        ex: Resource<ExchangeData>,
        data: Vec<u8>,
    ) -> Result<u32, network::NetError> {
        Ok(self.exchange(&ex)?.write(&data)?)
    }

    fn attach(
        &mut self,
        ex: Resource<ExchangeData>,
        pic: Resource<PictureData>,
    ) -> Result<(), network::NetError> {
        let bytes = self
            .table
            .get(&pic)
            .map_err(|_| network::NetError::Invalid("no such picture".to_string()))?
            .bytes
            .clone();
        Ok(self.exchange(&ex)?.attach(bytes)?)
    }

    fn finish(&mut self, ex: Resource<ExchangeData>) -> Result<(), network::NetError> {
        Ok(self.exchange(&ex)?.finish()?)
    }

    fn poll_response(
        &mut self,
        ex: Resource<ExchangeData>,
    ) -> Option<Result<network::ResponseHead, network::NetError>> {
        let polled = match self.exchange(&ex) {
            Ok(e) => e.poll_response()?,
            Err(e) => return Some(Err(e)),
        };
        Some(
            polled
                .map(|h| network::ResponseHead {
                    status: h.status,
                    headers: h.headers,
                })
                .map_err(Into::into),
        )
    }

    fn read_body(
        &mut self,
        ex: Resource<ExchangeData>,
        max: u32,
    ) -> Result<Option<Vec<u8>>, network::NetError> {
        Ok(self.exchange(&ex)?.read_body(max)?)
    }

    fn id(&mut self, ex: Resource<ExchangeData>) -> u64 {
        // 0 is never an id: an unknown handle names nothing.
        self.table.get(&ex).map_or(0, |e| e.id)
    }

    fn drop(&mut self, ex: Resource<ExchangeData>) -> wasmtime::Result<()> {
        // Dropping the last holder aborts the exchange (see net::Exchange).
        self.table.delete(ex)?;
        Ok(())
    }
}

impl network::Host for HostState {
    fn start(
        &mut self,
        req: network::Request,
    ) -> Result<Resource<ExchangeData>, network::NetError> {
        let req = net::Request {
            method: req.method.into(),
            path: req.path,
            headers: req.headers,
            content_length: req.content_length,
            timeout_ms: req.timeout_ms,
        };
        let Some(client) = &self.net else {
            return Err(network::NetError::Unreachable(format!(
                "{} {}: no cloud is configured for this runtime",
                req.method.as_http(),
                req.path
            )));
        };
        let ex = Arc::new(client.start(req)?);
        let id = client.name(&ex);
        // A full table is a host limit, reported like any other refusal.
        self.table
            .push(ExchangeData { ex, id })
            .map_err(|e| network::NetError::Invalid(format!("too many open resources: {e}")))
    }

    fn adopt(&mut self, id: u64) -> Option<Resource<ExchangeData>> {
        let ex = self.net.as_ref()?.adopt(id)?;
        self.table.push(ExchangeData { ex, id }).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{NetClient, NetConfig};
    use network::{Host as _, HostExchange as _};
    use std::io::{BufRead, BufReader, Read, Write};
    use std::time::Duration;

    fn put(path: &str, content_length: Option<u64>) -> network::Request {
        network::Request {
            method: network::Method::Put,
            path: path.into(),
            headers: vec![("x-test".into(), "1".into())],
            content_length,
            timeout_ms: 10_000,
        }
    }

    /// Answers one request with the number of body bytes it carried
    /// (content-length framing only).
    fn counting_server() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let answer = len.to_string();
            write!(
                &s,
                "HTTP/1.1 201 Created\r\ncontent-length: {}\r\n\r\n{answer}",
                answer.len()
            )
            .unwrap();
        });
        format!("http://{addr}")
    }

    #[test]
    fn without_a_client_every_start_is_unreachable() {
        let mut st = HostState::new(1 << 20);
        match st.start(put("/v1/x", None)) {
            Err(network::NetError::Unreachable(m)) => {
                assert!(m.contains("PUT /v1/x") && m.contains("no cloud"), "{m}")
            }
            other => panic!("{:?}", other.map(|r| r.rep())),
        }
    }

    #[test]
    fn the_imports_drive_a_real_exchange_with_an_attached_picture() {
        let mut st = HostState::new(1 << 20);
        let client = NetClient::new(NetConfig::new(counting_server())).unwrap();
        let wake = client.wake().clone();
        st.net = Some(client);
        let pic = st
            .table
            .push(PictureData {
                bytes: Bytes::from_static(b"\xFF\xD8\xFFpicture"),
            })
            .unwrap();
        let ex = st.start(put("/v1/pic", Some(13))).unwrap();
        let rep = ex.rep();
        let h = || Resource::<ExchangeData>::new_borrow(rep);
        assert!(matches!(st.write(h(), b"abc".to_vec()), Ok(3)));
        st.attach(h(), Resource::new_borrow(pic.rep())).unwrap();
        st.finish(h()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let head = loop {
            let seen = wake.generation();
            if let Some(r) = st.poll_response(h()) {
                break r.unwrap();
            }
            assert!(wake.wait(seen, deadline) != seen, "no response");
        };
        assert_eq!(head.status, 201);
        let body = loop {
            let seen = wake.generation();
            if let Some(b) = st.read_body(h(), 100).unwrap() {
                break b;
            }
            assert!(wake.wait(seen, deadline) != seen, "no body");
        };
        assert_eq!(body, b"13");
        network::HostExchange::drop(&mut st, ex).unwrap();
        assert!(matches!(
            st.write(h(), vec![1]),
            Err(network::NetError::Invalid(_))
        ));
    }

    #[test]
    fn an_adopted_exchange_outlives_the_store_that_started_it() {
        // A live update: the leaving engine's store starts the upload and
        // writes half the body; the next engine's store adopts it by id,
        // the old store is dropped, and the body goes on where it stopped.
        let client = NetClient::new(NetConfig::new(counting_server())).unwrap();
        let wake = client.wake().clone();
        let mut old = HostState::new(1 << 20);
        old.net = Some(client.clone());
        let ex = old.start(put("/v1/seg", Some(6))).unwrap();
        let h_old = Resource::<ExchangeData>::new_borrow(ex.rep());
        assert!(matches!(old.write(h_old, b"abc".to_vec()), Ok(3)));
        let id = old.id(Resource::new_borrow(ex.rep()));
        assert_ne!(id, 0);
        let mut new = HostState::new(1 << 20);
        new.net = Some(client);
        assert!(
            new.adopt(id + 1000).is_none(),
            "an unknown id names nothing"
        );
        let adopted = new.adopt(id).expect("the exchange is still held");
        drop(old);
        let h = || Resource::<ExchangeData>::new_borrow(adopted.rep());
        assert_eq!(new.id(h()), id);
        assert!(matches!(new.write(h(), b"def".to_vec()), Ok(3)));
        new.finish(h()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let body = loop {
            let seen = wake.generation();
            if let Some(Ok(head)) = new.poll_response(h()) {
                assert_eq!(head.status, 201);
                if let Some(b) = new.read_body(h(), 100).unwrap() {
                    break b;
                }
            }
            assert!(wake.wait(seen, deadline) != seen, "no response");
        };
        assert_eq!(
            body, b"6",
            "the server got the whole body, from both stores"
        );
        network::HostExchange::drop(&mut new, adopted).unwrap();
        assert!(new.adopt(id).is_none(), "gone once no engine holds it");
    }
}
