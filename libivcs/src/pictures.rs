//! Picture memory. A picture the engine reads or uploads is a `Bytes`.
//!
//! - Captured pictures (`iv_cs_event_capture_picture_cb`) are **borrowed**:
//!   the bytes stay in firmware's buffer, which firmware must keep until the
//!   result callback (the spec's rule), so nothing is copied. The owner,
//!   when the last reference goes (the engine dropped its handle and every
//!   request body that attached it is gone), queues firmware's
//!   `iv_cs_event_picture_result_cb` exactly once: that callback is the
//!   release of a handed-over picture, and firmware frees what it gets.
//! - Pictures given to `iv_cs_event_directly_report` are **copied** and
//!   never handed back: the pointer is `const`, stays the caller's, and
//!   firmware frees it itself as soon as the call returns (handing it back
//!   too would be a double free in that firmware).

use crate::abi::PictureResultCb;
use bytes::Bytes;

/// The owner behind a captured picture's `Bytes`: firmware's buffer.
struct Borrowed {
    ptr: usize,
    len: usize,
    channel: u32,
    cb: Option<PictureResultCb>,
}

impl AsRef<[u8]> for Borrowed {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: firmware keeps a captured picture valid until its result
        // callback, which only this owner's drop triggers.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Borrowed {
    fn drop(&mut self) {
        release(self.cb, self.channel, self.ptr);
    }
}

/// Queues the result callback for a picture firmware handed over.
fn release(cb: Option<PictureResultCb>, channel: u32, firmware_ptr: usize) {
    let Some(cb) = cb else { return };
    crate::callbacks::post(None, move || {
        let mut p = firmware_ptr as *mut u8;
        // SAFETY: firmware's own callback, given its own pointer back. The
        // error code is 0: the library is done with the picture; whether the
        // event was stored is told by the report's result.
        unsafe { cb(channel, &mut p, 0) };
    });
}

/// A captured picture in firmware's memory, borrowed until released.
///
/// # Safety
/// `ptr` must stay valid for `len` bytes until `cb` is called.
pub unsafe fn borrowed(
    ptr: *mut u8,
    len: usize,
    channel: u32,
    cb: Option<PictureResultCb>,
) -> Bytes {
    Bytes::from_owner(Borrowed {
        ptr: ptr as usize,
        len,
        channel,
        cb,
    })
}
