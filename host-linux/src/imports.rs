//! The host side of the engine's imports.
//!
//! `clock` reads the system clocks. `snapshot` keeps pictures in the store's
//! resource table. `network` has no cloud behind it in this runtime yet (the
//! hyper/rustls client arrives with libivcs): `start` fails with a clear
//! `unreachable` error, which the engine treats like any outage.

use crate::bindings::ivcs::engine::{clock, network, snapshot, types};
use crate::runtime::HostState;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use wasmtime::component::Resource;

/// Bytes of a picture the firmware handed over.
pub struct PictureData {
    /// The picture's bytes.
    pub bytes: Vec<u8>,
}

/// A capture request from the engine.
pub struct CaptureData {
    /// Channel the picture is for.
    pub channel: u8,
    /// Event id the picture is for.
    pub event_id: i32,
}

/// An HTTP exchange (none can exist until the network client lands).
pub struct ExchangeData;

/// Monotonic origin shared by all stores of the process.
fn monotonic_origin() -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

impl clock::Host for HostState {
    fn now_utc_ms(&mut self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }

    fn monotonic_ms(&mut self) -> u64 {
        u64::try_from(monotonic_origin().elapsed().as_millis()).unwrap_or(u64::MAX)
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
        self.table
            .push(CaptureData { channel, event_id })
            .unwrap_or_else(|_| Resource::new_own(u32::MAX))
    }
}

fn no_exchange() -> network::NetError {
    network::NetError::Invalid("no such exchange".to_string())
}

impl network::HostExchange for HostState {
    fn write_capacity(&mut self, _ex: Resource<ExchangeData>) -> u32 {
        0
    }
    fn write(
        &mut self,
        _ex: Resource<ExchangeData>,
        _data: Vec<u8>,
    ) -> Result<u32, network::NetError> {
        Err(no_exchange())
    }
    fn attach(
        &mut self,
        _ex: Resource<ExchangeData>,
        _pic: Resource<PictureData>,
    ) -> Result<(), network::NetError> {
        Err(no_exchange())
    }
    fn finish(&mut self, _ex: Resource<ExchangeData>) -> Result<(), network::NetError> {
        Err(no_exchange())
    }
    fn poll_response(
        &mut self,
        _ex: Resource<ExchangeData>,
    ) -> Option<Result<network::ResponseHead, network::NetError>> {
        Some(Err(no_exchange()))
    }
    fn read_body(
        &mut self,
        _ex: Resource<ExchangeData>,
        _max: u32,
    ) -> Result<Option<Vec<u8>>, network::NetError> {
        Err(no_exchange())
    }
    fn drop(&mut self, ex: Resource<ExchangeData>) -> wasmtime::Result<()> {
        self.table.delete(ex)?;
        Ok(())
    }
}

impl network::Host for HostState {
    fn start(
        &mut self,
        req: network::Request,
    ) -> Result<Resource<ExchangeData>, network::NetError> {
        Err(network::NetError::Unreachable(format!(
            "{} {}: no cloud is configured for this runtime",
            match req.method {
                network::Method::Get => "GET",
                network::Method::Post => "POST",
                network::Method::Put => "PUT",
                network::Method::Delete => "DELETE",
            },
            req.path
        )))
    }
}
