//! The firmware callbacks the camera registers with `iv_cs_init`, as
//! `extern "C"` functions. Like the spec asks of firmware, they only
//! record what happened and wake the threads that act on it; they run on
//! the library's callback thread.

use crate::libivcs::*;
use crate::state::{lock, shared};
use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::Ordering;

fn chan(ch: iv_cs_chn_e) -> Option<&'static crate::state::ChanStats> {
    shared().ch.get(ch as usize)
}

/// `iv_cs_push_stream_start_cb`: the channel may push.
pub(crate) unsafe extern "C" fn on_start(ch: iv_cs_chn_e) -> c_int {
    if let Some(c) = chan(ch) {
        c.streaming.store(true, Ordering::SeqCst);
    }
    shared().say(format!("ch{ch}: push_stream_start_cb"));
    shared().wake();
    0
}

/// `iv_cs_push_stream_stop_cb`: the channel stops pushing.
pub(crate) unsafe extern "C" fn on_stop(ch: iv_cs_chn_e) -> c_int {
    if let Some(c) = chan(ch) {
        c.streaming.store(false, Ordering::SeqCst);
    }
    shared().say(format!("ch{ch}: push_stream_stop_cb"));
    shared().wake();
    0
}

/// `iv_cs_event_capture_picture_cb`: lends the snapshot prepared when the
/// event started (kept until `event_picture_result_cb`).
pub(crate) unsafe extern "C" fn on_capture(
    ch: iv_cs_chn_e,
    event_id: i32,
    pic: *mut *mut u8,
    size: *mut i32,
) -> c_int {
    if pic.is_null() || size.is_null() {
        return -1;
    }
    let Some(jpeg) = lock(&shared().snapshots).remove(&(ch, event_id)) else {
        shared().say(format!("ch{ch}: no snapshot ready for event {event_id}"));
        return -1;
    };
    let len = jpeg.len();
    let ptr = Box::into_raw(jpeg.into_boxed_slice()) as *mut u8;
    lock(&shared().lent).insert(ptr as usize, len);
    // SAFETY: both checked non-NULL; the library passes its own slots.
    unsafe {
        *pic = ptr;
        *size = len as i32;
    }
    0
}

/// `iv_cs_event_picture_result_cb`: a lent picture comes back; free it.
pub(crate) unsafe extern "C" fn on_picture_result(
    ch: iv_cs_chn_e,
    pic: *mut *mut u8,
    err: i32,
) -> c_int {
    if let Some(c) = chan(ch) {
        if err == 0 {
            c.pictures_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            c.pictures_err.fetch_add(1, Ordering::Relaxed);
            shared().say(format!(
                "ch{ch}: snapshot upload failed: {}",
                code_name(err)
            ));
        }
    }
    if pic.is_null() {
        return 0;
    }
    // SAFETY: the library passes the slot holding the pointer we lent.
    let p = unsafe { *pic };
    if let Some(len) = lock(&shared().lent).remove(&(p as usize)) {
        // SAFETY: `p` came from Box::into_raw of a boxed slice of `len`
        // bytes (on_capture) and is returned exactly once.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, len)) });
    }
    0
}

/// `iv_cs_event_report_result_cb`: the cloud's verdict on an event.
pub(crate) unsafe extern "C" fn on_event_result(
    ch: iv_cs_chn_e,
    info: *mut iv_cs_event_result_info,
) -> c_int {
    if info.is_null() {
        return 0;
    }
    // SAFETY: non-NULL, valid for the call.
    let info = unsafe { *info };
    if let Some(c) = chan(ch) {
        if info.result_code == 1 {
            c.events_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            c.events_err.fetch_add(1, Ordering::Relaxed);
        }
    }
    shared().say(format!(
        "ch{ch}: event {} {}..{} {}",
        info.event_id,
        info.start_time_s,
        info.end_time_s,
        if info.result_code == 1 {
            "stored"
        } else {
            "FAILED"
        }
    ));
    0
}

/// `iv_cs_notify_cb`: connection, upload results, watermarks.
pub(crate) unsafe extern "C" fn on_notify(
    ch: iv_cs_chn_e,
    kind: iv_cs_notify_msg_type_e,
    data: *mut iv_cs_notify_msg_data,
) -> c_int {
    let sh = shared();
    let Some(c) = chan(ch) else { return 0 };
    match kind {
        0 if sh.connected.swap(0, Ordering::SeqCst) != 0 => {
            sh.say(format!("ch{ch}: cloud connection failing"));
        }
        1 if sh.connected.swap(1, Ordering::SeqCst) == 0 => {
            sh.say(format!("ch{ch}: cloud connection recovered"));
        }
        2 => {
            sh.connected.store(1, Ordering::SeqCst);
            // SAFETY: for STATE_MSG the union holds a pointer to the
            // upload info (or NULL), valid for the call.
            let info = unsafe { data.as_ref().map(|d| d.av_result_info) };
            let Some(info) = info.and_then(|p| unsafe { p.as_ref() }) else {
                return 0;
            };
            let n = (info.num.max(0) as usize).min(MAX_UPLOAD_INFO_NUM);
            for s in &info.slice_info[..n] {
                if s.state == 0 {
                    c.segs_ok.fetch_add(1, Ordering::Relaxed);
                    c.uploaded
                        .fetch_add(u64::from(s.upload_size), Ordering::Relaxed);
                    c.acked_utc_s.fetch_max(s.utc_sec_b, Ordering::Relaxed);
                } else {
                    c.segs_err.fetch_add(1, Ordering::Relaxed);
                    sh.say(format!(
                        "ch{ch}: upload failed: UTC {}..{} s, frames {}..{}, {} of {} bytes",
                        s.utc_sec_a,
                        s.utc_sec_b,
                        s.frame_seq_a,
                        s.frame_seq_b,
                        s.upload_size,
                        s.total_size
                    ));
                }
            }
        }
        3..=5 => {
            let old = c.watermark.swap(kind, Ordering::Relaxed);
            if kind == 5 && old != 5 {
                sh.say(format!("ch{ch}: buffer above the high watermark"));
            }
        }
        6 => sh.say(format!(
            "ch{ch}: IV_CS_COS_SERVICE_WRONG (the engine restarted)"
        )),
        _ => {}
    }
    sh.wake();
    0
}

/// `ivcs_host_log_cb`: library log lines go above the status line.
pub(crate) unsafe extern "C" fn on_log(level: c_int, msg: *const c_char, _user: *mut c_void) {
    let sh = shared();
    match level {
        0 => {
            sh.log_errors.fetch_add(1, Ordering::Relaxed);
        }
        1 => {
            sh.log_warnings.fetch_add(1, Ordering::Relaxed);
        }
        _ => {}
    }
    if msg.is_null() {
        return;
    }
    // SAFETY: a NUL-terminated message valid for the call.
    let text = unsafe { std::ffi::CStr::from_ptr(msg) }.to_string_lossy();
    let name = ["error", "warn", "info", "debug", "trace"]
        .get(level as usize)
        .unwrap_or(&"log");
    sh.say(format!("libivcs {name}: {text}"));
}
