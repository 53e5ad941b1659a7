//! `IV_ERR_*` values from iv_err.h, as the engine returns them through the
//! WIT contract (see docs/ref/wit.md for when each is used).

/// Success.
pub const IV_ERR_NONE: i32 = 0;
/// init parameter is NULL.
pub const IV_ERR_CS_INIT_PRM_NULL: i32 = -600;
/// A mandatory callback (start/stop) is NULL.
pub const IV_ERR_CS_INIT_CB_NULL: i32 = -601;
/// A parameter is out of range or malformed.
pub const IV_ERR_CS_INIT_PRM_RANGE: i32 = -602;
/// No upload credentials yet.
pub const IV_ERR_CS_UPLOAD_AUTH_NOT_AVAILABLE: i32 = -603;
/// Upload object could not be opened.
pub const IV_ERR_CS_UPLOAD_OPEN_FILE_FAIL: i32 = -604;
/// Module not initialised.
pub const IV_ERR_CS_PRM_NOT_AVAILABLE: i32 = -605;
/// Out of buffer memory.
pub const IV_ERR_CS_PRM_MALLOC_FAIL: i32 = -606;
/// No active plan.
pub const IV_ERR_CS_APPLY_NO_SERVICE: i32 = -607;
/// Blocking query timed out.
pub const IV_ERR_CS_QUERY_SERVICE_TIMEOUT: i32 = -608;
/// Event invalid (unknown, not started, already running).
pub const IV_ERR_CS_EVENT_IS_VALID: i32 = -609;
/// Already initialised.
pub const IV_ERR_CS_INIT_REPEAT: i32 = -610;
/// Frame refused; send an IDR next.
pub const IV_ERR_CS_NEED_IDR_FRAME: i32 = -611;
/// Plan exhausted.
pub const IV_ERR_CS_NO_BALANCE: i32 = -612;
/// Upload failed.
pub const IV_ERR_CS_HTTP_DATA_FAIL: i32 = -613;
