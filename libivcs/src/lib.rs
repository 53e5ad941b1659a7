//! libivcs: the C library camera firmware links (`iv_cs_*` from
//! `include/iv_cs.h`, `ivcs_host_*` from `include/ivcs_host.h`).
//!
//! It runs the ivcs engine component (precompiled and embedded in the
//! library by default) on wasmtime via `ivcs-host`, on **one engine thread**
//! that owns the store; firmware threads hand it jobs and wait for the
//! answer. Firmware callbacks run on **one callback thread**, never while
//! the engine is busy, so they may call `iv_cs_*` again. A **watchdog
//! thread** bounds every engine call; a trap (bug, memory cap, deadline)
//! restarts the engine from its last exported state. Nothing here panics
//! across the C boundary. docs/design/libivcs.md has the reasoning.
//!
//! - [`capi`]: the `iv_cs_*` functions and the checks the C layer owns.
//! - [`admit`]: answers pushes at once from the engine's published gates.
//! - [`frame_pool`]: keeps large frame buffers resident between pushes.
//! - [`stream_copy`]: copies large frames with streaming stores.
//! - [`host_api`]: the `ivcs_host_*` functions.
//! - [`config`]: setters, environment and `IVCS_CONFIG` file.
//! - [`service`]: the engine thread, jobs, op waiters, restart on trap,
//!   memory cap.
//! - [`deliver`]: host events → firmware callbacks.
//! - [`callbacks`]: the callback thread.
//! - [`pictures`]: picture memory (borrowed captures, copied reports).
//! - [`update`]: live engine updates: keys, verification, engine files
//!   on disk (the swap itself is in [`service`]).
//! - [`delivery`]: engine updates offered by the cloud: download, the
//!   update path, outcome reports.
//! - [`probation`]: a swapped-in engine's health signals, verdict and
//!   outcomes (the rollback itself is in [`service`]).
//! - [`watchdog`]: per-call deadlines through epoch interruption.
//! - [`abi`]: `#[repr(C)]` mirrors of the header structs.
//! - [`log`]: log lines to the firmware's callback or stderr.

pub mod abi;
pub mod admit;
pub mod callbacks;
pub mod capi;
pub mod codes;
pub mod config;
pub mod deliver;
pub mod delivery;
pub mod frame_pool;
pub mod host_api;
pub mod log;
pub mod pictures;
pub mod probation;
pub mod service;
pub mod stream_copy;
pub mod update;
pub mod watchdog;

/// The engine artifact built into the library (see build.rs).
pub mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}
