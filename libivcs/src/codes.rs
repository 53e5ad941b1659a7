//! `IV_ERR_*` and other header constants the library uses.

#![allow(missing_docs)]

pub const IV_ERR_NONE: i32 = 0;
pub const IV_ERR_CS_INIT_PRM_NULL: i32 = -600;
pub const IV_ERR_CS_INIT_CB_NULL: i32 = -601;
pub const IV_ERR_CS_INIT_PRM_RANGE: i32 = -602;
pub const IV_ERR_CS_UPLOAD_AUTH_NOT_AVAILABLE: i32 = -603;
pub const IV_ERR_CS_UPLOAD_OPEN_FILE_FAIL: i32 = -604;
pub const IV_ERR_CS_PRM_NOT_AVAILABLE: i32 = -605;
pub const IV_ERR_CS_PRM_MALLOC_FAIL: i32 = -606;
pub const IV_ERR_CS_APPLY_NO_SERVICE: i32 = -607;
pub const IV_ERR_CS_QUERY_SERVICE_TIMEOUT: i32 = -608;
pub const IV_ERR_CS_INIT_REPEAT: i32 = -610;
pub const IV_ERR_CS_NEED_IDR_FRAME: i32 = -611;
pub const IV_ERR_CS_HTTP_DATA_FAIL: i32 = -613;

/// `iv_cs_notify_msg_type_e` values.
pub const IV_CS_AV_UPLOAD_CONNECT_FAIL: u32 = 0;
pub const IV_CS_AV_UPLOAD_CONNECT_RECOVER: u32 = 1;
pub const IV_CS_AV_UPLOAD_STATE_MSG: u32 = 2;
pub const IV_CS_AV_UPLOAD_WATERMARK_LOW: u32 = 3;
pub const IV_CS_AV_UPLOAD_WATERMARK_WARN: u32 = 4;
pub const IV_CS_AV_UPLOAD_WATERMARK_HIGH: u32 = 5;
pub const IV_CS_COS_SERVICE_WRONG: u32 = 6;

/// Channel ids the runtime accepts (the 5-channel header's range).
pub const MAX_CHANNELS: u32 = 5;
