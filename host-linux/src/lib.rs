//! The ivcs native runtime: loads the engine component into wasmtime and
//! provides the three capabilities the engine imports (`clock`, `network`,
//! `snapshot`). The C ABI (`libivcs`) is built on top of this crate.
//!
//! - [`runtime`]: wasmtime configuration, loading (from `.wasm` or a
//!   precompiled artifact) and instantiation with per-store limits.
//! - [`artifact`]: signed engine artifacts: the format, signing, and the
//!   checks a host runs before it loads an engine it was sent.
//! - [`imports`]: the host side of the imported interfaces.
//! - [`net`]: the HTTP client behind the `network` import (tokio, hyper,
//!   rustls) and the wake-up signal the engine thread sleeps on.
//! - [`mux`]: the engine's offline muxer driven through the component.
//! - [`sched`]: the runtime threads' scheduling class.

pub mod artifact;
pub mod imports;
pub mod mux;
pub mod net;
pub mod runtime;
pub mod sched;

pub use runtime::{EngineRuntime, EngineSource};

/// Bindings generated from `wit/engine.wit`.
#[allow(missing_docs)]
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "engine",
        with: {
            "ivcs:engine/snapshot.picture": crate::imports::PictureData,
            "ivcs:engine/snapshot.capture": crate::imports::CaptureData,
            "ivcs:engine/network.exchange": crate::imports::ExchangeData,
        },
    });
}
