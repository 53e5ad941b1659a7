//! The C types of `iv_cm.h` and `iv_cs.h` as `#[repr(C)]` Rust types, with
//! the headers' names, so that layouts can be compared field by field.
//!
//! This file depends on `core` only: `tests/layout/` compiles it on its own
//! for x86_64 and for i686 and compares [`layout`] with what gcc says
//! (`tests/c/layout.c`). The const assertions at the end pin the sizes on
//! 32- and 64-bit targets.
//!
//! C enums are passed as their integer type (`u32`): a firmware value outside
//! the enum (channel 7) must be representable so that it can be refused.

// Field names and meanings are the headers'; see include/iv_cs.h.
#![allow(non_camel_case_types, non_snake_case, dead_code, missing_docs)]

use core::ffi::{c_char, c_int, c_uint, c_ulonglong, c_void};

/// `iv_cs_chn_e`.
pub type iv_cs_chn_e = u32;
/// `iv_cm_stream_type_e`.
pub type iv_cm_stream_type_e = u32;
/// `iv_cm_frame_type_e`.
pub type iv_cm_frame_type_e = u32;
/// `iv_cs_type_e`.
pub type iv_cs_type_e = u32;
/// `iv_cs_up_bk_state_e`.
pub type iv_cs_up_bk_state_e = u32;
/// `iv_cs_ai_type_e`.
pub type iv_cs_ai_type_e = u32;
/// `iv_cs_upload_state_e`.
pub type iv_cs_upload_state_e = u32;
/// `iv_cs_notify_msg_type_e`.
pub type iv_cs_notify_msg_type_e = u32;
/// `iv_cs_format_e`.
pub type iv_cs_format_e = u32;
/// `iv_cs_event_report_opt_e`.
pub type iv_cs_event_report_opt_e = u32;

/// `iv_cm_aenc_pack_s`: one audio pack.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct iv_cm_aenc_pack_s {
    pub pu8Addr: *mut u8,
    pub u32Len: u32,
    pub u64PTS: u64,
    pub u32Seq: u32,
}

/// `iv_cm_venc_pack_s`: one video access unit.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct iv_cm_venc_pack_s {
    pub pu8Addr: *mut u8,
    pub u32Len: u32,
    pub u64PTS: u64,
    pub eFrameType: iv_cm_frame_type_e,
    pub u32Seq: u32,
}

/// `iv_cm_av_data_info_s`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct iv_cm_av_data_info_s {
    pub eAudioType: u32,
    pub u32AudioCodecOption: u32,
    pub eAudioMode: u32,
    pub eAudioBitWidth: u32,
    pub eAudioSampleRate: u32,
    pub u32SampleNumPerFrame: u32,
    pub eVideoType: u32,
    pub u32VideoWidth: u32,
    pub u32VideoHeight: u32,
    pub u32Framerate: u32,
    pub u32Reserve: [u32; 4],
}

/// `iv_cs_balance_info_s`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct iv_cs_balance_info_s {
    pub cs_switch: c_int,
    pub cs_days: c_int,
    pub cs_type: iv_cs_type_e,
    pub free_trial_remaining_sec: c_int,
}

/// `iv_cs_upload_slice_info_s`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct iv_cs_upload_slice_info_s {
    pub utc_sec_a: u64,
    pub utc_sec_b: u64,
    pub pts_ms_a: u64,
    pub pts_ms_b: u64,
    pub frame_seq_a: u32,
    pub frame_seq_b: u32,
    pub upload_size: u32,
    pub total_size: u32,
    pub state: iv_cs_upload_state_e,
}

/// `MAX_UPLOAD_INFO_NUM`.
pub const MAX_UPLOAD_INFO_NUM: usize = 10;

/// `iv_cs_upload_info_s`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct iv_cs_upload_info_s {
    pub slice_info: [iv_cs_upload_slice_info_s; MAX_UPLOAD_INFO_NUM],
    pub num: i32,
}

/// `iv_cs_notify_msg_data`: a union of one pointer.
#[repr(C)]
#[derive(Clone, Copy)]
pub union iv_cs_notify_msg_data {
    pub av_result_info: *mut iv_cs_upload_info_s,
}

/// `iv_cs_event_result_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct iv_cs_event_result_info {
    pub result_code: i32,
    pub event_id: i32,
    pub start_time_s: u32,
    pub end_time_s: u32,
}

/// `iv_cs_congestion_ctrl_s` (`size_t` marks: the layout differs by target).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct iv_cs_congestion_ctrl_s {
    pub low_mark: usize,
    pub warn_mark: usize,
    pub high_mark: usize,
    pub enable: i8,
}

/// `iv_cs_push_stream_start_cb` / `_stop_cb`.
pub type PushCb = unsafe extern "C" fn(iv_cs_chn_e) -> c_int;
/// `iv_cs_ai_service_notify_cb`.
pub type AiServiceCb = unsafe extern "C" fn(iv_cs_chn_e, c_uint, c_ulonglong);
/// `iv_cs_event_capture_picture_cb`.
pub type CapturePictureCb = unsafe extern "C" fn(iv_cs_chn_e, i32, *mut *mut u8, *mut i32) -> c_int;
/// `iv_cs_event_picture_result_cb`.
pub type PictureResultCb = unsafe extern "C" fn(iv_cs_chn_e, *mut *mut u8, i32) -> c_int;
/// `iv_cs_event_report_result_cb`.
pub type EventResultCb = unsafe extern "C" fn(iv_cs_chn_e, *mut iv_cs_event_result_info) -> c_int;
/// `iv_cs_notify_cb`.
pub type NotifyCb =
    unsafe extern "C" fn(iv_cs_chn_e, iv_cs_notify_msg_type_e, *mut iv_cs_notify_msg_data) -> c_int;
/// `iv_cs_get_balance_cb`.
pub type GetBalanceCb = unsafe extern "C" fn(iv_cs_chn_e, *mut i8, *mut iv_cs_balance_info_s, i32);
/// `iv_cs_dump_file_cb`.
pub type DumpFileCb = unsafe extern "C" fn(
    iv_cs_chn_e,
    iv_cs_up_bk_state_e,
    u64,
    u64,
    *mut c_char,
    *mut u8,
    u32,
) -> c_int;

/// `iv_cs_init_func_cb_s`: nine function pointers, NULL = absent.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct iv_cs_init_func_cb_s {
    pub iv_cs_push_stream_start_cb: Option<PushCb>,
    pub iv_cs_push_stream_stop_cb: Option<PushCb>,
    pub iv_cs_ai_service_notify_cb: Option<AiServiceCb>,
    pub iv_cs_event_capture_picture_cb: Option<CapturePictureCb>,
    pub iv_cs_event_picture_result_cb: Option<PictureResultCb>,
    pub iv_cs_event_report_result_cb: Option<EventResultCb>,
    pub iv_cs_notify_cb: Option<NotifyCb>,
    pub iv_cs_get_balance_cb: Option<GetBalanceCb>,
    pub iv_cs_dump_file_cb: Option<DumpFileCb>,
}

/// `iv_cs_channel_params_s`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct iv_cs_channel_params_s {
    pub channel_id: iv_cs_chn_e,
    pub u32MaxGopSize: u32,
    pub congestion_cfg: iv_cs_congestion_ctrl_s,
    pub av_fmt: iv_cm_av_data_info_s,
    pub cs_fmt: iv_cs_format_e,
    pub event_report_opt: iv_cs_event_report_opt_e,
}

/// `iv_cs_init_parm_s`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct iv_cs_init_parm_s {
    pub channel_num: u32,
    pub func_cb: iv_cs_init_func_cb_s,
    pub ch_params: *mut iv_cs_channel_params_s,
}

/// `ivcs_host_log_cb` (ivcs_host.h): level, NUL-terminated message, user data.
pub type LogCb = unsafe extern "C" fn(c_int, *const c_char, *mut c_void);

/// One line per struct (`name size align`) and per field (`name.field
/// offset`), in the format `tests/c/layout.c` prints.
pub fn layout() -> String {
    use core::fmt::Write;
    use core::mem::{align_of, offset_of, size_of};
    let mut s = String::new();
    macro_rules! table {
        ($($t:ident { $($f:ident),* $(,)? })*) => {$(
            let _ = writeln!(s, "{} {} {}", stringify!($t), size_of::<$t>(), align_of::<$t>());
            $(let _ = writeln!(s, "{}.{} {}", stringify!($t), stringify!($f), offset_of!($t, $f));)*
        )*};
    }
    table! {
        iv_cm_aenc_pack_s { pu8Addr, u32Len, u64PTS, u32Seq }
        iv_cm_venc_pack_s { pu8Addr, u32Len, u64PTS, eFrameType, u32Seq }
        iv_cm_av_data_info_s { eAudioType, u32AudioCodecOption, eAudioMode, eAudioBitWidth,
            eAudioSampleRate, u32SampleNumPerFrame, eVideoType, u32VideoWidth, u32VideoHeight,
            u32Framerate, u32Reserve }
        iv_cs_balance_info_s { cs_switch, cs_days, cs_type, free_trial_remaining_sec }
        iv_cs_upload_slice_info_s { utc_sec_a, utc_sec_b, pts_ms_a, pts_ms_b, frame_seq_a,
            frame_seq_b, upload_size, total_size, state }
        iv_cs_upload_info_s { slice_info, num }
        iv_cs_notify_msg_data { av_result_info }
        iv_cs_event_result_info { result_code, event_id, start_time_s, end_time_s }
        iv_cs_congestion_ctrl_s { low_mark, warn_mark, high_mark, enable }
        iv_cs_init_func_cb_s { iv_cs_push_stream_start_cb, iv_cs_push_stream_stop_cb,
            iv_cs_ai_service_notify_cb, iv_cs_event_capture_picture_cb,
            iv_cs_event_picture_result_cb, iv_cs_event_report_result_cb, iv_cs_notify_cb,
            iv_cs_get_balance_cb, iv_cs_dump_file_cb }
        iv_cs_channel_params_s { channel_id, u32MaxGopSize, congestion_cfg, av_fmt, cs_fmt,
            event_report_opt }
        iv_cs_init_parm_s { channel_num, func_cb, ch_params }
    }
    s
}

/// Sizes gcc gives the header structs (`tests/c/layout.c`), pinned so that a
/// field change that breaks firmware fails the build on both widths.
macro_rules! assert_sizes {
    ($($t:ident = $n:expr),* $(,)?) => {$(
        const _: () = assert!(core::mem::size_of::<$t>() == $n, stringify!($t));
    )*};
}

#[cfg(target_pointer_width = "64")]
assert_sizes! {
    iv_cm_aenc_pack_s = 32, iv_cm_venc_pack_s = 32, iv_cm_av_data_info_s = 56,
    iv_cs_balance_info_s = 16, iv_cs_upload_slice_info_s = 56, iv_cs_upload_info_s = 568,
    iv_cs_notify_msg_data = 8, iv_cs_event_result_info = 16, iv_cs_congestion_ctrl_s = 32,
    iv_cs_init_func_cb_s = 72, iv_cs_channel_params_s = 104, iv_cs_init_parm_s = 88,
}

// i686: 64-bit integers are 4-aligned inside structs (System V i386 ABI).
#[cfg(target_arch = "x86")]
assert_sizes! {
    iv_cm_aenc_pack_s = 20, iv_cm_venc_pack_s = 24, iv_cm_av_data_info_s = 56,
    iv_cs_balance_info_s = 16, iv_cs_upload_slice_info_s = 52, iv_cs_upload_info_s = 524,
    iv_cs_notify_msg_data = 4, iv_cs_event_result_info = 16, iv_cs_congestion_ctrl_s = 16,
    iv_cs_init_func_cb_s = 36, iv_cs_channel_params_s = 88, iv_cs_init_parm_s = 44,
}
