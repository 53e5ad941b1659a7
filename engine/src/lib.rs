//! The ivcs cloud-storage engine.
//!
//! Pure Rust and sans-IO: given the same calls, clock readings and network
//! results it behaves the same. The same code builds natively (for tests,
//! the CLI's `--native` mode and benchmarks) and as a wasm32-wasip2 component
//! that imports only the `clock`, `network` and `snapshot` interfaces of
//! `wit/engine.wit` (the glue lives in the `component` module, compiled for
//! wasm32 only).
//!
//! - [`pipeline`]: one channel's media path: frame checks, PTS→UTC, the
//!   segmenter and the container muxers.
//! - [`pts_clock`]: what firmware's PTS mean (µs by mistake, 32-bit wraps),
//!   decided before anything reads them.
//! - [`cs`]: the iv_cs control plane ([`cs::Engine`]): init, plans and the
//!   change feed, operations, reachability, and the seam
//!   ([`cs::data`]) the data plane plugs into.
//! - [`data`]: the data plane: per-channel buffer within `u32MaxGopSize`,
//!   segments uploaded while recorded, events with video, dump and backup.
//! - [`cloud`]: the client of the cloud's device protocol (signing, the
//!   request state machine, retries).
//! - [`host`]: the [`host::Host`] trait mirroring the three imports.
//! - [`events`]: host events (firmware callbacks, operation results, logs).
//! - [`state`]: the export/import format for swaps and restarts.
//! - [`error`], [`codes`]: the error type and its `IV_ERR_*` codes.

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

mod audio_in;
pub mod cloud;
pub mod codes;
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod component;
mod container;
pub mod cs;
pub mod data;
pub mod error;
pub mod events;
pub mod host;
pub mod pipeline;
pub mod pts_clock;
pub mod state;
pub mod types;

pub use error::{Error, ErrorKind, Result};

pub use cs::Engine;

/// Version of the WIT package this engine implements.
pub const CONTRACT_VERSION: &str = "0.4.0";

/// This engine build's version.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Version of the segment bytes the muxers produce. Change it whenever the
/// output of the same input changes; the golden tests pin both together.
pub const FORMAT_VERSION: u32 = 1;
