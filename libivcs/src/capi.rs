//! The 13 `iv_cs_*` entry points (`include/iv_cs.h`).
//!
//! What this layer owns (everything else is the engine's, see
//! docs/ref/c-api.md): NULL pointers (-600, -601 for a NULL start/stop
//! callback), channel ids outside 0..4 (-602), calls that need `iv_cs_init`
//! before it (-605), `iv_cs_init` twice (-610), reading C memory (info
//! strings are read at most 129 bytes far), the timeouts of blocking calls
//! (-608), and keeping panics and traps away from firmware: every function
//! runs under `catch_unwind` and answers an error code instead.

use crate::abi::*;
use crate::codes::*;
use crate::log;
use crate::service::{self, CallError, EngineCtx, Service};
use ivcs_host::bindings::ivcs::engine::types as wt;
use std::ffi::{c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Runs an entry point's body; a panic becomes -605 and a log line.
fn guard(name: &str, f: impl FnOnce() -> Result<(), i32>) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => IV_ERR_NONE,
        Ok(Err(code)) => code,
        Err(_) => {
            log::error(&format!("{name}: internal error (recovered)"));
            IV_ERR_CS_PRM_NOT_AVAILABLE
        }
    }
}

/// The service, only if a session is initialised (-605 otherwise).
fn initialised() -> Result<Arc<Service>, i32> {
    match service::running() {
        Some(s) if s.initialised.load(Ordering::SeqCst) => Ok(s),
        _ => Err(IV_ERR_CS_PRM_NOT_AVAILABLE),
    }
}

fn channel(ch: iv_cs_chn_e) -> Result<u8, i32> {
    if ch < MAX_CHANNELS {
        Ok(ch as u8)
    } else {
        Err(IV_ERR_CS_INIT_PRM_RANGE)
    }
}

/// Flattens "engine thread answered / engine answered / engine said".
/// The engine's reason for a refusal is logged at debug level (pushes can
/// be refused many times a second).
fn answer<T>(r: Option<Result<Result<T, wt::EngineError>, CallError>>) -> Result<T, i32> {
    answer_logged(r, 3)
}

/// [`answer`], logging the engine's reason for a refusal at `level`.
fn answer_logged<T>(
    r: Option<Result<Result<T, wt::EngineError>, CallError>>,
    level: u8,
) -> Result<T, i32> {
    match r {
        None => Err(IV_ERR_CS_PRM_NOT_AVAILABLE),
        Some(Err(e)) => Err(e.code()),
        Some(Ok(Err(e))) => {
            crate::log::log(level, &format!("refused ({}): {}", e.code, e.message));
            Err(e.code)
        }
        Some(Ok(Ok(v))) => Ok(v),
    }
}

/// Starts an operation on the engine thread and registers its waiter.
fn start_op(
    svc: &Service,
    f: impl FnOnce(&mut EngineCtx) -> Result<Result<u64, wt::EngineError>, CallError> + Send + 'static,
) -> Result<u64, i32> {
    answer(svc.call(move |ctx| {
        let r = f(ctx);
        if let Ok(Ok(id)) = &r {
            ctx.register_op(*id);
        }
        ctx.changed();
        r
    }))
}

/// Waits for an operation's completion until `wait` passes (-608).
fn wait_op(svc: &Service, id: u64, wait: Duration) -> Result<wt::OpResult, i32> {
    match svc.ops.wait(id, Instant::now() + wait) {
        None => Err(IV_ERR_CS_QUERY_SERVICE_TIMEOUT),
        Some(wt::OpResult::Failed(e)) => Err(e.code),
        Some(r) => Ok(r),
    }
}

/// Reads an optional info string: NULL is empty; more than 128 bytes before
/// the NUL is -602 (never reads past byte 129).
///
/// # Safety
/// `p` is NULL or points to readable bytes up to a NUL or 129 bytes.
unsafe fn info(p: *const c_char) -> Result<Vec<u8>, i32> {
    if p.is_null() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for i in 0..=128usize {
        // SAFETY: the caller's promise; we stop at the NUL.
        let b = unsafe { *p.add(i) } as u8;
        if b == 0 {
            return Ok(out);
        }
        out.push(b);
    }
    Err(IV_ERR_CS_INIT_PRM_RANGE)
}

/// Copies `len` bytes at `p` (NULL with a length is -600).
///
/// # Safety
/// `p` points to `len` readable bytes when not NULL.
unsafe fn bytes(p: *const u8, len: u32) -> Result<Vec<u8>, i32> {
    // SAFETY: the caller's promise.
    unsafe { raw(p, len) }.map(<[u8]>::to_vec)
}

/// Borrows `len` bytes at `p` (NULL with a length is -600).
///
/// # Safety
/// `p` is NULL or holds `len` readable bytes for the chosen lifetime.
unsafe fn raw<'a>(p: *const u8, len: u32) -> Result<&'a [u8], i32> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(IV_ERR_CS_INIT_PRM_NULL);
    }
    // SAFETY: the caller's promise.
    Ok(unsafe { std::slice::from_raw_parts(p, len as usize) })
}

/// `iv_cs_channel_params_s` → the engine's channel parameters.
fn channel_params(c: &iv_cs_channel_params_s) -> Result<wt::ChannelParams, i32> {
    let range = IV_ERR_CS_INIT_PRM_RANGE;
    let av = &c.av_fmt;
    let video = match av.eVideoType {
        0 => wt::VideoCodec::H264,
        1 => wt::VideoCodec::H265,
        _ => return Err(range),
    };
    // IV_CM_AENC_TYPE_BUTT (or a zero rate) declares a channel without audio.
    let audio = if av.eAudioType >= 7 || av.eAudioSampleRate == 0 {
        None
    } else {
        let codec = match av.eAudioType {
            0 if av.eAudioBitWidth == 1 => wt::AudioCodec::Pcm16,
            1 => wt::AudioCodec::G711a,
            2 => wt::AudioCodec::G711u,
            4 => wt::AudioCodec::Aac,
            _ => return Err(range),
        };
        let channels = match av.eAudioMode {
            0 => 1,
            1 => 2,
            _ => return Err(range),
        };
        Some(wt::AudioFormat {
            codec,
            sample_rate: av.eAudioSampleRate,
            channels,
            samples_per_frame: av.u32SampleNumPerFrame,
        })
    };
    Ok(wt::ChannelParams {
        channel: channel(c.channel_id)?,
        max_gop_size: c.u32MaxGopSize,
        congestion: wt::Congestion {
            enable: c.congestion_cfg.enable != 0,
            low_mark: c.congestion_cfg.low_mark as u64,
            warn_mark: c.congestion_cfg.warn_mark as u64,
            high_mark: c.congestion_cfg.high_mark as u64,
        },
        av: wt::AvFormat {
            video,
            width: av.u32VideoWidth,
            height: av.u32VideoHeight,
            framerate: av.u32Framerate,
            audio,
        },
        container: match c.cs_fmt {
            0 => wt::Container::Ts,
            1 => wt::Container::Fmp4,
            _ => return Err(range),
        },
        event_report_opt: match c.event_report_opt {
            0 => wt::EventReportOpt::VideoRequired,
            1 => wt::EventReportOpt::PictureRequired,
            2 => wt::EventReportOpt::VideoOrPicture,
            _ => return Err(range),
        },
    })
}

fn optional_callbacks(f: &iv_cs_init_func_cb_s) -> wt::OptionalCallbacks {
    let mut o = wt::OptionalCallbacks::empty();
    let mut set = |present: bool, flag| {
        if present {
            o |= flag;
        }
    };
    set(
        f.iv_cs_ai_service_notify_cb.is_some(),
        wt::OptionalCallbacks::AI_SERVICE_NOTIFY,
    );
    set(
        f.iv_cs_event_capture_picture_cb.is_some(),
        wt::OptionalCallbacks::CAPTURE_PICTURE,
    );
    set(
        f.iv_cs_event_picture_result_cb.is_some(),
        wt::OptionalCallbacks::PICTURE_RESULT,
    );
    set(
        f.iv_cs_event_report_result_cb.is_some(),
        wt::OptionalCallbacks::EVENT_REPORT_RESULT,
    );
    set(f.iv_cs_notify_cb.is_some(), wt::OptionalCallbacks::NOTIFY);
    set(
        f.iv_cs_get_balance_cb.is_some(),
        wt::OptionalCallbacks::GET_BALANCE,
    );
    set(
        f.iv_cs_dump_file_cb.is_some(),
        wt::OptionalCallbacks::DUMP_FILE,
    );
    o
}

/// `iv_cs_init`.
///
/// # Safety
/// `p` is NULL or a valid `iv_cs_init_parm_s` whose `ch_params` holds
/// `channel_num` entries.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iv_cs_init(p: *mut iv_cs_init_parm_s) -> c_int {
    guard("iv_cs_init", || {
        // SAFETY: NULL or valid (the caller's promise).
        let p = unsafe { p.as_ref() }.ok_or(IV_ERR_CS_INIT_PRM_NULL)?;
        let fw = p.func_cb;
        if fw.iv_cs_push_stream_start_cb.is_none() || fw.iv_cs_push_stream_stop_cb.is_none() {
            return Err(IV_ERR_CS_INIT_CB_NULL);
        }
        if p.channel_num == 0 || p.channel_num > MAX_CHANNELS {
            return Err(IV_ERR_CS_INIT_PRM_RANGE);
        }
        if p.ch_params.is_null() {
            return Err(IV_ERR_CS_INIT_PRM_NULL);
        }
        // SAFETY: channel_num entries (the caller's promise), at most 5.
        let chans = unsafe { std::slice::from_raw_parts(p.ch_params, p.channel_num as usize) };
        let channels = chans
            .iter()
            .map(channel_params)
            .collect::<Result<Vec<_>, i32>>()?;
        let params = wt::InitParams {
            channels,
            callbacks: optional_callbacks(&fw),
        };
        let svc = service::get()?;
        if svc.initialised.load(Ordering::SeqCst) {
            return Err(IV_ERR_CS_INIT_REPEAT);
        }
        // Why init refused (-602: which parameter) is what firmware
        // authors need first: logged at warn, the default level.
        answer_logged(svc.call(move |ctx| ctx.init(params, fw)), 1)
    })
}

/// Longest `iv_cs_exit` waits for the session's callbacks already queued
/// (the dump of the segments it closed).
pub const EXIT_CALLBACK_WAIT: Duration = Duration::from_secs(1);

/// `iv_cs_exit`: returns promptly. The open segments close at their last
/// frame and go on uploading with everything pending, in the background
/// for a bounded time, without firmware callbacks; a later `iv_cs_init`
/// adopts what is still pending.
#[unsafe(no_mangle)]
pub extern "C" fn iv_cs_exit() -> c_int {
    guard("iv_cs_exit", || {
        let svc = initialised()?;
        if let Some(id) = answer(svc.call(|ctx| ctx.exit()))? {
            crate::callbacks::finish_session(id, EXIT_CALLBACK_WAIT);
        }
        Ok(())
    })
}

/// `iv_cs_resource_destroy`: waits up to `timeout_ms` (0: 5000).
#[unsafe(no_mangle)]
pub extern "C" fn iv_cs_resource_destroy(timeout_ms: u32) -> c_int {
    guard("iv_cs_resource_destroy", || {
        let svc = service::get()?;
        let id = start_op(&svc, |ctx| {
            ctx.engine(|s, w| w.ivcs_engine_cs().call_resource_destroy(s))
        })?;
        let wait = if timeout_ms == 0 { 5000 } else { timeout_ms };
        wait_op(&svc, id, Duration::from_millis(u64::from(wait))).map(|_| ())
    })
}

/// `iv_cs_push_stream`: one pack, copied before the call returns, answered
/// from the engine's published push gate ([`crate::admit`]) and pushed into
/// the engine by the engine thread.
///
/// # Safety
/// `pack` is NULL or a valid `iv_cm_aenc_pack_s` / `iv_cm_venc_pack_s` (by
/// `kind`) whose `pu8Addr` holds `u32Len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iv_cs_push_stream(
    ch: iv_cs_chn_e,
    kind: iv_cm_stream_type_e,
    pack: *mut c_void,
) -> c_int {
    guard("iv_cs_push_stream", || {
        let svc = initialised()?;
        let channel = channel(ch)?;
        if pack.is_null() {
            return Err(IV_ERR_CS_INIT_PRM_NULL);
        }
        // SAFETY (both arms): a pack of `kind` (the caller's promise) whose
        // pu8Addr holds u32Len bytes.
        let (kind, frame_type, pts_ms, seq, data) = match kind {
            0 => {
                let a = unsafe { &*(pack as *const iv_cm_aenc_pack_s) };
                let data = unsafe { raw(a.pu8Addr, a.u32Len) }?;
                (
                    wt::StreamKind::Audio,
                    wt::FrameType::I,
                    a.u64PTS,
                    a.u32Seq,
                    data,
                )
            }
            1 => {
                let v = unsafe { &*(pack as *const iv_cm_venc_pack_s) };
                let frame_type = match v.eFrameType {
                    0 => wt::FrameType::I,
                    1 => wt::FrameType::P,
                    _ => return Err(IV_ERR_CS_INIT_PRM_RANGE),
                };
                let data = unsafe { raw(v.pu8Addr, v.u32Len) }?;
                (wt::StreamKind::Video, frame_type, v.u64PTS, v.u32Seq, data)
            }
            _ => return Err(IV_ERR_CS_INIT_PRM_RANGE),
        };
        if data.is_empty() {
            return Err(IV_ERR_CS_INIT_PRM_RANGE);
        }
        // Answered here from the engine's published gate; the engine gets
        // the frame on its own thread (docs/design/buffer.md). Only a taken
        // frame is copied.
        let video = kind == wt::StreamKind::Video;
        let ticket = svc.admission.admit(channel, video, data)?;
        let frame = wt::Frame {
            kind,
            frame_type,
            pts_ms,
            seq,
            data: svc.frames.copy(data),
        };
        svc.post_frame(ticket.starts_run(), move |ctx| {
            trap_hook(ctx.svc());
            let push = |ctx: &mut EngineCtx| {
                ctx.engine(|s, w| w.ivcs_engine_cs().call_push(s, channel, &frame))
            };
            let mut r = push(ctx);
            if matches!(r, Err(CallError::Trapped { .. })) {
                // Restored, with the frames taken before it fed again: this
                // one once more (a frame that traps again is dropped).
                r = push(ctx);
            }
            ctx.svc().admission.pushed(ticket);
            if let Ok(Err(e)) = &r {
                log::debug(&format!(
                    "channel {channel}: frame seq {} refused after it was taken ({}): {}",
                    frame.seq, e.code, e.message
                ));
            }
            ctx.took_frame(channel, frame, matches!(r, Ok(Ok(()))));
            ctx.fed_frame();
        });
        Ok(())
    })
}

/// `iv_cs_upload_backup_video`: START and RUNNING return once the engine
/// took the call (a refusal by the cloud shows as -613 on the next call);
/// END returns when the cloud has the file (0), refused it (-613), or the
/// upload timeout of `iv_cs_set_trans_time` passed (-608).
///
/// # Safety
/// `file_name` is NULL or a NUL-terminated string; `buf` holds `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iv_cs_upload_backup_video(
    ch: iv_cs_chn_e,
    state: iv_cs_up_bk_state_e,
    file_name: *mut c_char,
    buf: *mut u8,
    len: u32,
) -> c_int {
    guard("iv_cs_upload_backup_video", || {
        let svc = initialised()?;
        let channel = channel(ch)?;
        let state = match state {
            0 => wt::DumpState::Start,
            1 => wt::DumpState::Running,
            2 => wt::DumpState::End,
            _ => return Err(IV_ERR_CS_INIT_PRM_RANGE),
        };
        if file_name.is_null() {
            return Err(IV_ERR_CS_INIT_PRM_NULL);
        }
        // SAFETY: NUL-terminated (the caller's promise); bounded like info.
        let name = unsafe { name(file_name) }?;
        // SAFETY: len bytes at buf.
        let data = unsafe { bytes(buf, len) }?;
        let waiter = answer(svc.call(move |ctx| {
            let r = ctx.engine(|s, w| {
                w.ivcs_engine_cs()
                    .call_backup_upload(s, channel, state, &name, &data)
            });
            ctx.changed_lightly();
            match r {
                Ok(Ok(())) => Ok(Ok(ctx.backup_accepted(channel, state, &name, data.len()))),
                other => {
                    ctx.backup_refused(channel);
                    other.map(|r| r.map(|()| None))
                }
            }
        }))?;
        // END blocks (the spec: a blocking call) until the engine's
        // upload-state slice for the file: ok, or -613; -608 after the
        // upload timeout of iv_cs_set_trans_time.
        let Some(id) = waiter else { return Ok(()) };
        let up = service::lock(&svc.trans_ms).0;
        wait_op(&svc, id, Duration::from_millis(u64::from(up))).map(|_| ())
    })
}

/// Test hook: `IVCS_TEST_TRAP_AT_FRAMES=N[,M...]` makes the engine call
/// that takes the N-th pushed frame (from 1) overrun its deadline: a real
/// trap, as an engine bug causes, and the restart that follows.
fn trap_hook(svc: &Service) {
    static AT: std::sync::OnceLock<Vec<u64>> = std::sync::OnceLock::new();
    static PUSHED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let at = AT.get_or_init(|| {
        std::env::var("IVCS_TEST_TRAP_AT_FRAMES")
            .unwrap_or_default()
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect()
    });
    if at.is_empty() {
        return;
    }
    let n = PUSHED.fetch_add(1, Ordering::Relaxed) + 1;
    if at.contains(&n) {
        svc.expire_next_call.store(true, Ordering::SeqCst);
    }
}

/// A file name: at most 255 bytes of UTF-8 before the NUL.
///
/// # Safety
/// `p` points to a NUL-terminated string or at least 256 readable bytes.
unsafe fn name(p: *const c_char) -> Result<String, i32> {
    let mut out = Vec::new();
    for i in 0..256usize {
        // SAFETY: the caller's promise; we stop at the NUL.
        let b = unsafe { *p.add(i) } as u8;
        if b == 0 {
            return String::from_utf8(out).map_err(|_| IV_ERR_CS_INIT_PRM_RANGE);
        }
        out.push(b);
    }
    Err(IV_ERR_CS_INIT_PRM_RANGE)
}

fn event(
    ch: iv_cs_chn_e,
    event_id: i32,
    info_p: *const c_char,
    t_event: u32,
    t_stream: u32,
    start: bool,
) -> Result<(), i32> {
    let svc = initialised()?;
    let channel = channel(ch)?;
    // SAFETY: the entry points' contract on `info`.
    let info = unsafe { info(info_p) }?;
    answer(svc.call(move |ctx| {
        let r = ctx.engine(|s, w| {
            let cs = w.ivcs_engine_cs();
            if start {
                cs.call_event_start(s, channel, event_id, &info, t_event, t_stream)
            } else {
                cs.call_event_stop(s, channel, event_id, &info, t_event, t_stream)
            }
        });
        ctx.changed();
        r
    }))
}

/// `iv_cs_event_start`.
///
/// # Safety
/// `info` is NULL or a NUL-terminated string (read at most 129 bytes).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iv_cs_event_start(
    ch: iv_cs_chn_e,
    event_id: i32,
    info: *const c_char,
) -> c_int {
    guard("iv_cs_event_start", || {
        event(ch, event_id, info, 0, 0, true)
    })
}

/// `iv_cs_event_stop`.
///
/// # Safety
/// As [`iv_cs_event_start`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iv_cs_event_stop(
    ch: iv_cs_chn_e,
    event_id: i32,
    info: *const c_char,
) -> c_int {
    guard("iv_cs_event_stop", || {
        event(ch, event_id, info, 0, 0, false)
    })
}

/// `iv_cs_event_start_ext`.
///
/// # Safety
/// As [`iv_cs_event_start`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iv_cs_event_start_ext(
    ch: iv_cs_chn_e,
    event_id: i32,
    info: *const c_char,
    event_start_time_s: u32,
    stream_start_time_s: u32,
) -> c_int {
    guard("iv_cs_event_start_ext", || {
        event(
            ch,
            event_id,
            info,
            event_start_time_s,
            stream_start_time_s,
            true,
        )
    })
}

/// `iv_cs_event_stop_ext`.
///
/// # Safety
/// As [`iv_cs_event_start`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iv_cs_event_stop_ext(
    ch: iv_cs_chn_e,
    event_id: i32,
    info: *const c_char,
    event_stop_time_s: u32,
    stream_stop_time_s: u32,
) -> c_int {
    guard("iv_cs_event_stop_ext", || {
        event(
            ch,
            event_id,
            info,
            event_stop_time_s,
            stream_stop_time_s,
            false,
        )
    })
}

/// `iv_cs_event_directly_report`: blocks until the report ends (the
/// engine's own deadline bounds it). The picture is copied before anything
/// else and stays the caller's: firmware frees it when the call returns, so
/// it is never handed back through `picture_result_cb`.
///
/// # Safety
/// `info` as [`iv_cs_event_start`]; `pic_addr` holds `pic_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iv_cs_event_directly_report(
    ch: iv_cs_chn_e,
    event_id: i32,
    info_p: *const c_char,
    event_time_s: u32,
    pic_addr: *const u8,
    pic_len: u32,
) -> c_int {
    guard("iv_cs_event_directly_report", || {
        let svc = initialised()?;
        let pic = if pic_addr.is_null() {
            if pic_len > 0 {
                return Err(IV_ERR_CS_INIT_PRM_NULL);
            }
            None
        } else if pic_len == 0 {
            None
        } else if pic_len > 2 << 20 {
            // Over the protocol's 2 MiB: refused without copying it.
            return Err(IV_ERR_CS_INIT_PRM_RANGE);
        } else {
            // SAFETY: pic_len bytes at pic_addr.
            Some(bytes::Bytes::copy_from_slice(unsafe {
                std::slice::from_raw_parts(pic_addr, pic_len as usize)
            }))
        };
        let channel = channel(ch)?;
        // SAFETY: the entry point's contract on `info`.
        let info = unsafe { info(info_p) }?;
        let id = start_op(&svc, move |ctx| {
            let res = match pic {
                Some(b) => Some(ctx.add_picture(b)?),
                None => None,
            };
            ctx.engine(|s, w| {
                w.ivcs_engine_cs()
                    .call_event_report(s, channel, event_id, &info, event_time_s, res)
            })
        })?;
        let wait = svc.op_backstop();
        wait_op(&svc, id, wait).map(|_| ())
    })
}

/// `iv_cs_get_balance_info`: `timeout_s` 0 reads the cache (-605 while no
/// plan is known); otherwise asks the cloud and waits up to `timeout_s`
/// (-608). Works before `iv_cs_init`.
///
/// # Safety
/// `out` is NULL or a writable `iv_cs_balance_info_s`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iv_cs_get_balance_info(
    ch: iv_cs_chn_e,
    out: *mut iv_cs_balance_info_s,
    timeout_s: u32,
) -> c_int {
    guard("iv_cs_get_balance_info", || {
        if out.is_null() {
            return Err(IV_ERR_CS_INIT_PRM_NULL);
        }
        let channel = channel(ch)?;
        let svc = service::get()?;
        let b = if timeout_s == 0 {
            answer(svc.call(move |ctx| {
                ctx.engine(|s, w| w.ivcs_engine_cs().call_cached_balance(s, channel))
            }))?
        } else {
            let id = start_op(&svc, move |ctx| {
                ctx.engine(|s, w| w.ivcs_engine_cs().call_query_balance(s, channel))
            })?;
            match wait_op(&svc, id, Duration::from_secs(u64::from(timeout_s)))? {
                wt::OpResult::Balance(b) => b,
                _ => return Err(IV_ERR_CS_PRM_NOT_AVAILABLE),
            }
        };
        // SAFETY: non-NULL and writable (the caller's promise).
        unsafe { *out = crate::deliver::balance_to_c(&b) };
        Ok(())
    })
}

/// `iv_cs_set_trans_time`: works any time, also before `iv_cs_init`.
#[unsafe(no_mangle)]
pub extern "C" fn iv_cs_set_trans_time(upload_timeout_ms: u32, reply_timeout_ms: u32) -> c_int {
    guard("iv_cs_set_trans_time", || {
        let svc = service::get()?;
        answer(svc.call(move |ctx| {
            let r = ctx.engine(|s, w| {
                w.ivcs_engine_cs()
                    .call_set_trans_time(s, upload_timeout_ms, reply_timeout_ms)
            });
            ctx.changed();
            r
        }))?;
        *service::lock(&svc.trans_ms) = (upload_timeout_ms, reply_timeout_ms);
        Ok(())
    })
}

/// `iv_cs_set_ai_process`: blocks until the cloud stored it. `args` is
/// unused (the spec).
#[unsafe(no_mangle)]
pub extern "C" fn iv_cs_set_ai_process(
    ch: iv_cs_chn_e,
    event_id: i32,
    ai_type: iv_cs_ai_type_e,
    _args: *mut c_void,
) -> c_int {
    guard("iv_cs_set_ai_process", || {
        let svc = initialised()?;
        let channel = channel(ch)?;
        let id = start_op(&svc, move |ctx| {
            ctx.engine(|s, w| {
                w.ivcs_engine_cs()
                    .call_set_ai(s, channel, event_id, ai_type)
            })
        })?;
        wait_op(&svc, id, svc.op_backstop()).map(|_| ())
    })
}

/// `iv_cs_get_ai_process`: blocks until the cloud answered.
///
/// # Safety
/// `ai_type` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iv_cs_get_ai_process(
    ch: iv_cs_chn_e,
    event_id: i32,
    ai_type: *mut iv_cs_ai_type_e,
    _args: *mut c_void,
) -> c_int {
    guard("iv_cs_get_ai_process", || {
        let svc = initialised()?;
        let channel = channel(ch)?;
        if ai_type.is_null() {
            return Err(IV_ERR_CS_INIT_PRM_NULL);
        }
        let id = start_op(&svc, move |ctx| {
            ctx.engine(|s, w| w.ivcs_engine_cs().call_get_ai(s, channel, event_id))
        })?;
        match wait_op(&svc, id, svc.op_backstop())? {
            wt::OpResult::AiSetting(a) => {
                // SAFETY: non-NULL and writable (the caller's promise).
                unsafe { *ai_type = a.ai_type };
                Ok(())
            }
            _ => Err(IV_ERR_CS_PRM_NOT_AVAILABLE),
        }
    })
}
