//! Picture memory. A picture the engine reads or uploads is a `Bytes` whose
//! owner, when the last reference goes (the engine dropped its handle and
//! every request body that attached it is gone), queues firmware's
//! `iv_cs_event_picture_result_cb` exactly once.
//!
//! - Captured pictures (`iv_cs_event_capture_picture_cb`) are **borrowed**:
//!   the bytes stay in firmware's buffer, which firmware must keep until the
//!   result callback (the spec's rule), so nothing is copied.
//! - Pictures given to `iv_cs_event_directly_report` are **copied**: the
//!   pointer is `const` and the call may return (caller timeout, exit) while
//!   the upload still runs. The callback still hands back firmware's pointer.

use crate::abi::PictureResultCb;
use bytes::Bytes;

/// Where the bytes live.
enum Store {
    Borrowed { ptr: usize, len: usize },
    Owned(Vec<u8>),
}

/// The owner behind a picture's `Bytes`.
struct Owner {
    store: Store,
    channel: u32,
    /// Firmware's pointer, handed back in the result callback.
    firmware_ptr: usize,
    cb: Option<PictureResultCb>,
}

impl AsRef<[u8]> for Owner {
    fn as_ref(&self) -> &[u8] {
        match &self.store {
            // SAFETY: firmware keeps a captured picture valid until its
            // result callback, which only this owner's drop triggers.
            Store::Borrowed { ptr, len } => unsafe {
                std::slice::from_raw_parts(*ptr as *const u8, *len)
            },
            Store::Owned(v) => v,
        }
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        release(self.cb, self.channel, self.firmware_ptr);
    }
}

/// Queues the result callback for a picture firmware handed over.
pub fn release(cb: Option<PictureResultCb>, channel: u32, firmware_ptr: usize) {
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
    Bytes::from_owner(Owner {
        store: Store::Borrowed {
            ptr: ptr as usize,
            len,
        },
        channel,
        firmware_ptr: ptr as usize,
        cb,
    })
}

/// A copy of a reported picture; `firmware_ptr` is handed back on release.
pub fn copied(
    data: Vec<u8>,
    firmware_ptr: usize,
    channel: u32,
    cb: Option<PictureResultCb>,
) -> Bytes {
    Bytes::from_owner(Owner {
        store: Store::Owned(data),
        channel,
        firmware_ptr,
        cb,
    })
}
