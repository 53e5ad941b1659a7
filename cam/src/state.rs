//! What the camera's threads share with the library's callbacks (which
//! carry no user pointer, so this is one process-wide value) and what the
//! status line shows.

use crate::clip::RecentFrames;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

/// Channels the API allows (ids 0..4).
pub const MAX_CHANNELS: usize = 5;

/// Counters of one channel.
#[derive(Default)]
pub struct ChanStats {
    /// Between `push_stream_start_cb` and `push_stream_stop_cb`.
    pub streaming: AtomicBool,
    /// Video frames accepted by `iv_cs_push_stream`.
    pub frames: AtomicU64,
    /// Bytes of accepted video and audio packs.
    pub bytes: AtomicU64,
    /// Pushes refused (any non-zero code).
    pub push_errors: AtomicU64,
    /// The last refusal's code.
    pub last_push_error: AtomicI32,
    /// Segments reported uploaded (`IV_CS_AV_UPLOAD_STATE_MSG`, state OK).
    pub segs_ok: AtomicU64,
    /// Slices reported failed.
    pub segs_err: AtomicU64,
    /// Bytes of uploaded segments.
    pub uploaded: AtomicU64,
    /// End (UTC s) of the newest uploaded segment.
    pub acked_utc_s: AtomicU64,
    /// Capture time (UTC ms) of the newest pushed video frame.
    pub pushed_utc_ms: AtomicU64,
    /// Last watermark notification (3 low, 4 warn, 5 high; 0 none yet).
    pub watermark: AtomicU32,
    /// Events started (accepted by `iv_cs_event_start_ext`).
    pub events: AtomicU64,
    /// Events the cloud stored (`event_report_result_cb`, result 1).
    pub events_ok: AtomicU64,
    /// Events that failed (refused or result 0).
    pub events_err: AtomicU64,
    /// Pictures handed back by `event_picture_result_cb` with 0.
    pub pictures_ok: AtomicU64,
    /// Pictures handed back with an error.
    pub pictures_err: AtomicU64,
}

/// The shared state.
pub struct Shared {
    /// Per channel.
    pub ch: [ChanStats; MAX_CHANNELS],
    /// Cloud connection: -1 unknown, 0 failing, 1 up.
    pub connected: AtomicI32,
    /// Set by Ctrl-C, `--duration` or a fatal error: every thread winds down.
    pub stop: AtomicBool,
    /// Channels that finished (their `--duration`, or Ctrl-C).
    pub channels_done: AtomicU32,
    /// Set last: the status printer prints what is left and ends.
    pub done: AtomicBool,
    /// Capture time of the first frame of the first session (UTC ms; 0
    /// before): PTS are counted from it and events scheduled after it.
    pub first_utc_ms: AtomicU64,
    /// Library log lines counted by level (error, warn).
    pub log_errors: AtomicU64,
    /// Warnings logged by the library.
    pub log_warnings: AtomicU64,
    /// Lines for the status printer to show above the status line.
    pub lines: Mutex<Vec<String>>,
    /// JPEG snapshots prepared for `event_capture_picture_cb`, by
    /// (channel, event id).
    pub snapshots: Mutex<HashMap<(u32, i32), Vec<u8>>>,
    /// Pictures handed to the library: address → length, until their
    /// `event_picture_result_cb`.
    pub lent: Mutex<HashMap<usize, usize>>,
    /// With `--input` and events: each channel's last pushed GOPs, which
    /// snapshots are decoded from.
    pub recent: [Mutex<RecentFrames>; MAX_CHANNELS],
    wake: Mutex<()>,
    cv: Condvar,
}

/// Locks, ignoring poisoning (a panicked thread's counters are still
/// good enough for a status line).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

static SHARED: OnceLock<Shared> = OnceLock::new();

/// The process-wide state.
pub fn shared() -> &'static Shared {
    SHARED.get_or_init(|| Shared {
        ch: Default::default(),
        connected: AtomicI32::new(-1),
        stop: AtomicBool::new(false),
        channels_done: AtomicU32::new(0),
        done: AtomicBool::new(false),
        first_utc_ms: AtomicU64::new(0),
        log_errors: AtomicU64::new(0),
        log_warnings: AtomicU64::new(0),
        lines: Mutex::new(Vec::new()),
        snapshots: Mutex::new(HashMap::new()),
        lent: Mutex::new(HashMap::new()),
        recent: Default::default(),
        wake: Mutex::new(()),
        cv: Condvar::new(),
    })
}

impl Shared {
    /// Wakes every thread waiting in [`Shared::wait`].
    pub fn wake(&self) {
        let _g = lock(&self.wake);
        self.cv.notify_all();
    }

    /// Waits until woken or `limit` passed (callers re-check their
    /// condition: this is a condition wait, not a timer).
    pub fn wait(&self, limit: Duration) {
        let g = lock(&self.wake);
        let _ = self.cv.wait_timeout(g, limit);
    }

    /// Whether the camera is winding down.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Queues a line for the status printer.
    pub fn say(&self, line: String) {
        lock(&self.lines).push(line);
    }
}

/// Now, UTC ms.
pub fn utc_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
