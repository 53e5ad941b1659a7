//! The `ivcs_host_*` entry points (`include/ivcs_host.h`): what the original
//! SDK took from its system module. Optional: without them the library
//! reads the environment and `IVCS_CONFIG` (see [`crate::config`]).
//!
//! Setters called before the library starts (the first `iv_cs_*` call) just
//! record the value. Afterwards, cloud URL, device id/secret and CA apply at
//! once while no session is initialised (-610 during one); the engine file
//! needs `ivcs_host_shutdown` first (-610).

use crate::abi::LogCb;
use crate::codes::*;
use crate::config::{self, HostConfig};
use crate::log;
use crate::service;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;

fn guard(f: impl FnOnce() -> Result<(), i32>) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => IV_ERR_NONE,
        Ok(Err(c)) => c,
        Err(_) => IV_ERR_CS_PRM_NOT_AVAILABLE,
    }
}

/// NULL → `None` (back to env/file); otherwise UTF-8 text.
///
/// # Safety
/// `p` is NULL or NUL-terminated.
unsafe fn text(p: *const c_char) -> Result<Option<String>, i32> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: NUL-terminated (the caller's promise).
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map(|s| Some(s.to_string()))
        .map_err(|_| IV_ERR_CS_INIT_PRM_RANGE)
}

/// Records a connection setting; applies it to a running service.
fn set_connection(f: impl FnOnce(&mut HostConfig)) -> Result<(), i32> {
    if let Some(svc) = service::running()
        && svc.initialised.load(Ordering::SeqCst)
    {
        return Err(IV_ERR_CS_INIT_REPEAT);
    }
    config::with_set(f);
    if let Some(svc) = service::running() {
        let (cfg, problems) = config::resolve();
        for p in problems {
            log::warn(&format!("config: {p}"));
        }
        return svc
            .call(move |ctx| ctx.reconfigure(cfg))
            .unwrap_or(Err(IV_ERR_CS_PRM_NOT_AVAILABLE));
    }
    Ok(())
}

/// `ivcs_host_set_cloud_url`.
///
/// # Safety
/// `url` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ivcs_host_set_cloud_url(url: *const c_char) -> c_int {
    guard(|| {
        // SAFETY: the caller's promise.
        let v = unsafe { text(url) }?;
        set_connection(|c| c.cloud_url = v)
    })
}

/// `ivcs_host_set_device_id`.
///
/// # Safety
/// `id` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ivcs_host_set_device_id(id: *const c_char) -> c_int {
    guard(|| {
        // SAFETY: the caller's promise.
        let v = unsafe { text(id) }?;
        set_connection(|c| c.device_id = v)
    })
}

/// `ivcs_host_set_device_secret`.
///
/// # Safety
/// `secret` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ivcs_host_set_device_secret(secret: *const c_char) -> c_int {
    guard(|| {
        // SAFETY: the caller's promise.
        let v = unsafe { text(secret) }?;
        set_connection(|c| c.device_secret = v)
    })
}

/// `ivcs_host_set_ca_file`.
///
/// # Safety
/// `path` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ivcs_host_set_ca_file(path: *const c_char) -> c_int {
    guard(|| {
        // SAFETY: the caller's promise.
        let v = unsafe { text(path) }?;
        set_connection(|c| c.ca_file = v)
    })
}

/// `ivcs_host_set_engine_file`: before the library starts only.
///
/// # Safety
/// `path` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ivcs_host_set_engine_file(path: *const c_char) -> c_int {
    guard(|| {
        // SAFETY: the caller's promise.
        let v = unsafe { text(path) }?;
        if service::running().is_some() {
            return Err(IV_ERR_CS_INIT_REPEAT);
        }
        config::with_set(|c| c.engine_file = v);
        Ok(())
    })
}

/// `ivcs_host_set_engine_keys`: the keyring file (`.pub` files
/// concatenated) engine updates must be signed with; NULL forgets the keys
/// (every update is then refused). Any time.
///
/// # Safety
/// `path` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ivcs_host_set_engine_keys(path: *const c_char) -> c_int {
    guard(|| {
        // SAFETY: the caller's promise.
        let v = unsafe { text(path) }?;
        crate::update::set_keys(v.as_deref())
    })
}

/// `ivcs_host_engine_update`: verifies the signed artifact at `path`, loads
/// it on this thread, then has the engine thread swap to it at a job
/// boundary ([`service::EngineCtx::swap`]); with an engine file configured,
/// writes the artifact there (the previous file kept as last known good).
/// 0 once the new engine serves. Codes: -600 NULL, -610 from a callback or
/// during another update, -604 unreadable file, -602 refused (malformed,
/// untrusted, no keys, incompatible), -605 the new engine does not load or
/// cannot take over the state, -606 no memory to instantiate it, -608 not
/// started within the op backstop (nothing changed). The same path as an
/// update delivered by the cloud ([`crate::update::apply_file`]).
///
/// # Safety
/// `path` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ivcs_host_engine_update(path: *const c_char) -> c_int {
    guard(|| {
        if crate::callbacks::on_callback_thread() {
            return Err(IV_ERR_CS_INIT_REPEAT);
        }
        // SAFETY: the caller's promise.
        let path = unsafe { text(path) }?.ok_or(IV_ERR_CS_INIT_PRM_NULL)?;
        crate::update::apply_file(&path)
            .map(drop)
            .map_err(|e| e.code)
    })
}

/// `ivcs_host_set_log_level`: 0 error .. 4 trace.
#[unsafe(no_mangle)]
pub extern "C" fn ivcs_host_set_log_level(level: c_int) -> c_int {
    guard(|| {
        let l = u8::try_from(level)
            .ok()
            .filter(|l| *l <= 4)
            .ok_or(IV_ERR_CS_INIT_PRM_RANGE)?;
        config::with_set(|c| c.log_level = Some(l));
        log::set_level(l);
        Ok(())
    })
}

/// `ivcs_host_set_log_callback`: NULL goes back to stderr.
#[unsafe(no_mangle)]
pub extern "C" fn ivcs_host_set_log_callback(cb: Option<LogCb>, user: *mut c_void) -> c_int {
    guard(|| {
        log::set_callback(cb, user as usize);
        Ok(())
    })
}

/// `ivcs_host_shutdown`: ends a session, stops the library's threads and
/// frees the engine. Not from a callback (-610).
#[unsafe(no_mangle)]
pub extern "C" fn ivcs_host_shutdown() -> c_int {
    guard(|| {
        if crate::callbacks::on_callback_thread() {
            return Err(IV_ERR_CS_INIT_REPEAT);
        }
        if let Some(svc) = service::running()
            && svc.initialised.load(Ordering::SeqCst)
        {
            let _ = svc.call(|ctx| ctx.exit());
        }
        match service::shutdown() {
            0 => Ok(()),
            c => Err(c),
        }
    })
}

/// `ivcs_host_version`: the library's version, a static string.
#[unsafe(no_mangle)]
pub extern "C" fn ivcs_host_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
