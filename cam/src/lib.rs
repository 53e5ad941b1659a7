//! `ivcs cam`: a virtual IP camera for demos and end-to-end tests.
//!
//! It links libivcs through the C ABI exactly as camera firmware does
//! (`libivcs.so` from the SDK, the `iv_cs_*` calls, `extern "C"`
//! callbacks, a push thread per channel) and feeds it a live test pattern
//! whose frames carry their capture time twice: as digits for people and
//! as a block code ([`blockcode`]) that tests decode from screenshots and
//! exported files. ffmpeg (a subprocess) encodes H.264 or H.265; or the
//! video is an Annex-B file, looped. Audio is a tick each second as G.711
//! or AAC; events with JPEG snapshots run on a schedule.
//!
//! - [`args`]: options and their checks.
//! - [`pattern`], [`font`], [`blockcode`]: the picture and its time stamp.
//! - [`encoder`]: ffmpeg in and out, access units, JPEG snapshots.
//! - [`clip`]: `--input`, an Annex-B file looped.
//! - [`audio`]: the tick, as G.711 or AAC.
//! - [`libivcs`]: loading the library and its C signatures.
//! - [`callbacks`]: the firmware callbacks.
//! - [`camera`]: threads, timing, status line, shutdown.
//! - [`state`]: what threads and callbacks share.
//!
//! Not a benchmark and not a camera model for the simulator: it runs on
//! the wall clock (optionally faster, `--speed`).

pub mod args;
pub mod audio;
pub mod blockcode;
pub mod callbacks;
pub mod camera;
pub mod clip;
pub mod encoder;
pub mod font;
pub mod libivcs;
pub mod pattern;
pub mod state;

pub use args::CamArgs;

/// Checks the options and runs the camera until Ctrl-C or `--duration`.
pub fn run(args: CamArgs) -> anyhow::Result<()> {
    camera::run(args.check()?)
}
