//! Log lines of the library and of the engine: to the firmware's log
//! callback (`ivcs_host_set_log_callback`, run on the callback thread) or,
//! without one, to stderr. Levels 0 error, 1 warn (default), 2 info,
//! 3 debug, 4 trace.

use crate::abi::LogCb;
use std::ffi::CString;
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, PoisonError};

/// Most verbose level written.
static LEVEL: AtomicU8 = AtomicU8::new(1);

/// The firmware's log callback and its user pointer.
static SINK: Mutex<Option<(LogCb, usize)>> = Mutex::new(None);

/// Sets the most verbose level written (0..4).
pub fn set_level(level: u8) {
    LEVEL.store(level.min(4), Ordering::Relaxed);
}

/// Sets or clears the log callback.
pub fn set_callback(cb: Option<LogCb>, user: usize) {
    *SINK.lock().unwrap_or_else(PoisonError::into_inner) = cb.map(|c| (c, user));
}

/// True when `level` would be written.
pub fn enabled(level: u8) -> bool {
    level <= LEVEL.load(Ordering::Relaxed)
}

/// Writes one line at `level`.
pub fn log(level: u8, msg: &str) {
    if !enabled(level) {
        return;
    }
    let sink = *SINK.lock().unwrap_or_else(PoisonError::into_inner);
    match sink {
        Some((cb, user)) => {
            let text = CString::new(msg.replace('\0', " ")).unwrap_or_default();
            crate::callbacks::post(None, move || {
                // SAFETY: firmware gave this callback for exactly this use;
                // the string lives until it returns.
                unsafe {
                    cb(
                        i32::from(level),
                        text.as_ptr(),
                        user as *mut core::ffi::c_void,
                    )
                };
            });
        }
        None => stderr(level, msg),
    }
}

/// Writes straight to stderr (no callback thread involved).
pub fn stderr(level: u8, msg: &str) {
    const NAMES: [&str; 5] = ["error", "warn", "info", "debug", "trace"];
    let name = NAMES.get(usize::from(level)).copied().unwrap_or("log");
    let _ = writeln!(std::io::stderr(), "ivcs: {name}: {msg}");
}

/// `error` level.
pub fn error(msg: &str) {
    log(0, msg)
}

/// `warn` level.
pub fn warn(msg: &str) {
    log(1, msg)
}

/// `info` level.
pub fn info(msg: &str) {
    log(2, msg)
}

/// `debug` level.
pub fn debug(msg: &str) {
    log(3, msg)
}
