//! libivcs, loaded the way firmware links it: the shared library
//! `libivcs.so` from the SDK (`dist/lib`), its `iv_cs_*` and `ivcs_host_*`
//! functions called through their C signatures, with the header structs
//! mirrored by `libivcs/src/abi.rs` (the file the layout checks compare
//! with gcc, included here as is).
//!
//! Loading at run time (`dlopen`) instead of linking keeps the `ivcs` binary
//! free of a second wasmtime, and means the camera runs exactly the library
//! a firmware build would ship, engine included.

#[path = "../../libivcs/src/abi.rs"]
pub mod abi;

use anyhow::{Context, Result, bail};
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::{Path, PathBuf};

pub use abi::*;

/// The functions the camera calls, resolved from the library.
#[allow(missing_docs)] // the names are the header's
pub struct Api {
    pub iv_cs_init: unsafe extern "C" fn(*mut iv_cs_init_parm_s) -> c_int,
    pub iv_cs_exit: unsafe extern "C" fn() -> c_int,
    pub iv_cs_push_stream:
        unsafe extern "C" fn(iv_cs_chn_e, iv_cm_stream_type_e, *mut c_void) -> c_int,
    pub iv_cs_event_start_ext:
        unsafe extern "C" fn(iv_cs_chn_e, i32, *const c_char, u32, u32) -> c_int,
    pub iv_cs_event_stop_ext:
        unsafe extern "C" fn(iv_cs_chn_e, i32, *const c_char, u32, u32) -> c_int,
    pub iv_cs_get_balance_info:
        unsafe extern "C" fn(iv_cs_chn_e, *mut iv_cs_balance_info_s, u32) -> c_int,
    pub ivcs_host_set_cloud_url: unsafe extern "C" fn(*const c_char) -> c_int,
    pub ivcs_host_set_device_id: unsafe extern "C" fn(*const c_char) -> c_int,
    pub ivcs_host_set_device_secret: unsafe extern "C" fn(*const c_char) -> c_int,
    pub ivcs_host_set_log_callback: unsafe extern "C" fn(Option<LogCb>, *mut c_void) -> c_int,
    pub ivcs_host_set_log_level: unsafe extern "C" fn(c_int) -> c_int,
    pub ivcs_host_shutdown: unsafe extern "C" fn() -> c_int,
    pub ivcs_host_version: unsafe extern "C" fn() -> *const c_char,
    /// Where it was loaded from.
    pub path: PathBuf,
}

/// The library next to an installed `ivcs` (`PREFIX/bin/ivcs` →
/// `PREFIX/lib/libivcs.so`), or in the same directory (a cargo target
/// directory after `make lib`).
pub fn default_path() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.join("../lib/libivcs.so"), dir.join("libivcs.so")]
        .into_iter()
        .find(|p| p.is_file())
}

fn dl_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated string owned by libc.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown error".into()
    } else {
        // SAFETY: see above.
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

impl Api {
    /// Loads `path` (kept loaded for the life of the process: the library's
    /// threads run until `ivcs_host_shutdown`).
    // Each transmute's target is the type of the field it initialises.
    #[allow(clippy::missing_transmute_annotations)]
    pub fn load(path: &Path) -> Result<&'static Api> {
        let c = CString::new(path.as_os_str().as_encoded_bytes())
            .context("library path contains a NUL byte")?;
        // SAFETY: a valid C string; RTLD_NOW reports missing symbols here.
        let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if h.is_null() {
            bail!("cannot load {}: {}", path.display(), dl_error());
        }
        macro_rules! sym {
            ($name:ident) => {{
                let n = concat!(stringify!($name), "\0");
                // SAFETY: `h` is a live handle and `n` NUL-terminated.
                let p = unsafe { libc::dlsym(h, n.as_ptr().cast()) };
                if p.is_null() {
                    bail!(
                        "{} has no {}: not a libivcs ({})",
                        path.display(),
                        stringify!($name),
                        dl_error()
                    );
                }
                // SAFETY: the symbol is the function of that name in
                // iv_cs.h / ivcs_host.h, whose signature the field has.
                unsafe { std::mem::transmute::<*mut c_void, _>(p) }
            }};
        }
        let api = Api {
            iv_cs_init: sym!(iv_cs_init),
            iv_cs_exit: sym!(iv_cs_exit),
            iv_cs_push_stream: sym!(iv_cs_push_stream),
            iv_cs_event_start_ext: sym!(iv_cs_event_start_ext),
            iv_cs_event_stop_ext: sym!(iv_cs_event_stop_ext),
            iv_cs_get_balance_info: sym!(iv_cs_get_balance_info),
            ivcs_host_set_cloud_url: sym!(ivcs_host_set_cloud_url),
            ivcs_host_set_device_id: sym!(ivcs_host_set_device_id),
            ivcs_host_set_device_secret: sym!(ivcs_host_set_device_secret),
            ivcs_host_set_log_callback: sym!(ivcs_host_set_log_callback),
            ivcs_host_set_log_level: sym!(ivcs_host_set_log_level),
            ivcs_host_shutdown: sym!(ivcs_host_shutdown),
            ivcs_host_version: sym!(ivcs_host_version),
            path: path.to_path_buf(),
        };
        Ok(Box::leak(Box::new(api)))
    }

    /// `ivcs_host_version()`.
    pub fn version(&self) -> String {
        // SAFETY: returns a static NUL-terminated string.
        let p = unsafe { (self.ivcs_host_version)() };
        if p.is_null() {
            return "?".into();
        }
        // SAFETY: see above.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// An error code as `name (value)`, for messages.
pub fn code_name(rc: c_int) -> String {
    let name = match rc {
        0 => "IV_ERR_NONE",
        -600 => "IV_ERR_CS_INIT_PRM_NULL",
        -601 => "IV_ERR_CS_INIT_CB_NULL",
        -602 => "IV_ERR_CS_INIT_PRM_RANGE",
        -603 => "IV_ERR_CS_UPLOAD_AUTH_NOT_AVAILABLE",
        -604 => "IV_ERR_CS_UPLOAD_OPEN_FILE_FAIL",
        -605 => "IV_ERR_CS_PRM_NOT_AVAILABLE",
        -606 => "IV_ERR_CS_PRM_MALLOC_FAIL",
        -607 => "IV_ERR_CS_APPLY_NO_SERVICE",
        -608 => "IV_ERR_CS_QUERY_SERVICE_TIMEOUT",
        -609 => "IV_ERR_CS_EVENT_IS_VALID",
        -610 => "IV_ERR_CS_INIT_REPEAT",
        -611 => "IV_ERR_CS_NEED_IDR_FRAME",
        -612 => "IV_ERR_CS_NO_BALANCE",
        -613 => "IV_ERR_CS_HTTP_DATA_FAIL",
        _ => "error",
    };
    format!("{name} ({rc})")
}
