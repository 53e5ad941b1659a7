//! The `network` capability of the native host: HTTP/1.1 exchanges with the
//! cloud for an engine that must never block.
//!
//! The engine thread calls [`NetClient::start`] and the [`Exchange`] methods
//! from inside wasm; each returns at once. The work happens on one tokio
//! thread (`ivcs-net`) with a pooled hyper client (keep-alive reuse) and
//! rustls (ring provider, verification always on). Progress — a response
//! head, body bytes, buffer space, an error — is announced through a
//! [`WakeSignal`] the engine thread sleeps on between ticks.
//!
//! Memory per exchange is bounded by [`NetConfig::max_buffered`] in each
//! direction (see [`state`](self) docs in `state.rs`). Failures map onto the
//! four [`NetError`] kinds of the WIT contract (see `error.rs`).
//! docs/design/network.md has the reasoning.
//!
//! Not here: the device protocol (paths, signing, retries). That is the
//! engine's; this module only moves bytes to and from the configured cloud.

mod client;
mod error;
mod exchange;
mod request;
mod state;
mod tls;
mod wake;

pub use client::{NetClient, NetConfig, SendFuture, Transport};
pub use error::{BodyAborted, NetError};
pub use exchange::{Exchange, ResponseHead};
pub use request::{Method, Request};
pub use state::UploadBody;
pub use wake::WakeSignal;

/// The pooled client every exchange of one [`NetClient`] shares.
type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    state::UploadBody,
>;
