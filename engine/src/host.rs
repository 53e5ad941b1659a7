//! What the engine needs from its host: the three WIT imports (`clock`,
//! `network`, `snapshot`) as one Rust trait, so the state machines run the
//! same natively (tests drive them with a test host) and in the component
//! (where `component.rs` implements [`Host`] over the generated imports).
//!
//! Every method returns at once. Resources (exchanges, captures, pictures)
//! are associated types owned by the engine; dropping one ends the engine's
//! use of it, exactly like dropping a WIT resource handle: a dropped
//! exchange is cancelled, a dropped picture is released to firmware.
//!
//! This module holds no logic; the value types mirror `wit/engine.wit`.

use crate::error::Error;

/// HTTP method of a cloud request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// DELETE.
    Delete,
}

impl Method {
    /// The method as it appears on the wire and in the signature.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// `network.request`: what the host needs to open an exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Path and query relative to the cloud URL; starts with `/`.
    pub path: String,
    /// Headers (names in lower case).
    pub headers: Vec<(String, String)>,
    /// Known body length, or none for a chunked streaming body.
    pub content_length: Option<u64>,
    /// Whole-exchange deadline the host enforces as a backstop, ms.
    pub timeout_ms: u32,
}

/// `network.net-error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetError {
    /// DNS, connect or TLS failure: the cloud is not reachable.
    Unreachable(String),
    /// The host's deadline passed.
    Timeout,
    /// The connection broke mid-exchange.
    Closed(String),
    /// The engine misused the exchange.
    Invalid(String),
}

impl std::fmt::Display for NetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetError::Unreachable(m) => write!(f, "unreachable: {m}"),
            NetError::Timeout => write!(f, "timed out"),
            NetError::Closed(m) => write!(f, "connection closed: {m}"),
            NetError::Invalid(m) => write!(f, "invalid use of the exchange: {m}"),
        }
    }
}

/// `network.response-head`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// HTTP status.
    pub status: u16,
    /// Headers (names as the host gives them).
    pub headers: Vec<(String, String)>,
}

/// `snapshot.picture-format`: from the magic bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PictureFormat {
    /// JPEG (`FF D8 FF`).
    Jpeg,
    /// PNG.
    Png,
    /// Anything else (zero-filled buffers included).
    Unknown,
}

/// The host capabilities the engine uses. See the module docs.
pub trait Host {
    /// An open HTTP exchange (`network.exchange`); dropping it cancels it.
    type Exchange;
    /// A picture held by the host (`snapshot.picture`); dropping it releases
    /// it (the host then calls firmware's picture-result callback).
    type Picture;
    /// A pending capture (`snapshot.capture`).
    type Capture;

    /// `clock.now-utc-ms`: ms since 1970 UTC; may step.
    fn now_utc_ms(&mut self) -> u64;
    /// `clock.monotonic-ms`: never decreases.
    fn monotonic_ms(&mut self) -> u64;

    /// `network.start`.
    fn start(&mut self, req: &Request) -> Result<Self::Exchange, NetError>;
    /// `exchange.write-capacity`.
    fn write_capacity(&mut self, ex: &Self::Exchange) -> u32;
    /// `exchange.write`: bytes taken (0 = back-pressure, try after a tick).
    fn write(&mut self, ex: &Self::Exchange, data: &[u8]) -> Result<u32, NetError>;
    /// `exchange.attach`: append a picture's bytes without copying them
    /// through the engine.
    fn attach(&mut self, ex: &Self::Exchange, pic: &Self::Picture) -> Result<(), NetError>;
    /// `exchange.finish`: end of body.
    fn finish(&mut self, ex: &Self::Exchange) -> Result<(), NetError>;
    /// `exchange.poll-response`: none while the head has not arrived.
    fn poll_response(&mut self, ex: &Self::Exchange) -> Option<Result<ResponseHead, NetError>>;
    /// `exchange.read-body`: none = not yet, some(empty) = end of body.
    fn read_body(&mut self, ex: &Self::Exchange, max: u32) -> Result<Option<Vec<u8>>, NetError>;
    /// `exchange.id`: names the exchange for a successor's [`Host::adopt`].
    fn exchange_id(&self, ex: &Self::Exchange) -> u64;
    /// `network.adopt`: an exchange a predecessor named, to go on with
    /// (live update); none when it is gone.
    fn adopt(&mut self, id: u64) -> Option<Self::Exchange>;

    /// `snapshot.capture-picture`.
    fn capture_picture(&mut self, channel: u8, event_id: i32) -> Self::Capture;
    /// `capture.poll`: none while pending.
    fn poll_capture(&mut self, cap: &Self::Capture) -> Option<Result<Self::Picture, Error>>;
    /// `picture.len`.
    fn picture_len(&mut self, pic: &Self::Picture) -> u32;
    /// `picture.format`.
    fn picture_format(&mut self, pic: &Self::Picture) -> PictureFormat;
    /// `picture.read`: up to `len` bytes from `offset`, short at the end.
    fn picture_read(&mut self, pic: &Self::Picture, offset: u32, len: u32) -> Vec<u8>;
}
