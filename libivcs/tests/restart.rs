//! A trapping engine call is contained: the call answers an error, the
//! engine restarts from its last exported state (the session survives),
//! firmware hears `IV_CS_COS_SERVICE_WRONG` through `notify_cb`, and the
//! library keeps working. Two real traps, no special engine build: an
//! expired epoch deadline (the watchdog's mechanism, with a deadline that
//! has already passed) and a memory growth refused by the store's cap.
//!
//! No cloud: the engine's exchanges fail as unreachable, which the control
//! plane handles like any outage. One test function, because the library is
//! a process-wide singleton.

use ivcs::abi::*;
use ivcs::capi::*;
use ivcs::codes::*;
use std::ffi::c_int;
use std::sync::atomic::Ordering;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

static SEEN: Mutex<Vec<(u32, u32)>> = Mutex::new(Vec::new());
static CHANGED: Condvar = Condvar::new();

unsafe extern "C" fn on_start(_: u32) -> c_int {
    0
}

unsafe extern "C" fn on_stop(_: u32) -> c_int {
    0
}

unsafe extern "C" fn on_notify(ch: u32, kind: u32, data: *mut iv_cs_notify_msg_data) -> c_int {
    assert!(!data.is_null());
    SEEN.lock().unwrap().push((ch, kind));
    CHANGED.notify_all();
    0
}

fn wait_for_notify(kind: u32, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = SEEN.lock().unwrap();
    while seen.iter().filter(|(_, k)| *k == kind).count() < count {
        let left = deadline
            .checked_duration_since(Instant::now())
            .unwrap_or_else(|| panic!("no notify {kind} x{count}: {seen:?}"));
        seen = CHANGED.wait_timeout(seen, left).unwrap().0;
    }
}

fn channel(id: u32) -> iv_cs_channel_params_s {
    iv_cs_channel_params_s {
        channel_id: id,
        u32MaxGopSize: 1 << 20,
        congestion_cfg: iv_cs_congestion_ctrl_s {
            low_mark: 0,
            warn_mark: 0,
            high_mark: 0,
            enable: 0,
        },
        av_fmt: iv_cm_av_data_info_s {
            eAudioType: 4,
            u32AudioCodecOption: 2,
            eAudioMode: 0,
            eAudioBitWidth: 1,
            eAudioSampleRate: 16000,
            u32SampleNumPerFrame: 1024,
            eVideoType: 0,
            u32VideoWidth: 640,
            u32VideoHeight: 360,
            u32Framerate: 25,
            u32Reserve: [0; 4],
        },
        cs_fmt: 0,
        event_report_opt: 0,
    }
}

fn push(len: usize) -> i32 {
    let mut data = vec![0u8; len];
    data[..5].copy_from_slice(&[0, 0, 0, 1, 0x65]);
    let mut v = iv_cm_venc_pack_s {
        pu8Addr: data.as_mut_ptr(),
        u32Len: len as u32,
        u64PTS: 0,
        eFrameType: 0,
        u32Seq: 0,
    };
    // SAFETY: a valid pack over `data`.
    unsafe { iv_cs_push_stream(0, 1, (&mut v as *mut iv_cm_venc_pack_s).cast()) }
}

/// A backup chunk of `len` bytes: copied into the engine during the call
/// (a push is only queued: it reaches the engine later).
fn backup_chunk(len: usize) -> i32 {
    let mut data = vec![0u8; len];
    let mut name = *b"0-1795000000000-00000001-1.ts\0";
    // SAFETY: a NUL-terminated name and `len` bytes at `data`.
    unsafe {
        iv_cs_upload_backup_video(
            0,
            1,
            name.as_mut_ptr().cast(),
            data.as_mut_ptr(),
            len as u32,
        )
    }
}

#[test]
fn a_trapping_engine_call_restarts_the_engine_from_its_saved_state() {
    assert!(
        ivcs::embedded::EMBEDDED.is_some() || std::env::var_os("IVCS_ENGINE").is_some(),
        "no engine: run `make engine-cwasm` (libivcs embeds target/engine/engine.cwasm) or set IVCS_ENGINE"
    );
    ivcs::config::with_set(|c| {
        c.device_id = Some("cam-restart".into());
        c.device_secret = Some("not-a-real-secret".into());
        c.cloud_url = None;
    });
    let mut chans = [channel(0), channel(1)];
    let mut p = iv_cs_init_parm_s {
        channel_num: 2,
        func_cb: iv_cs_init_func_cb_s {
            iv_cs_push_stream_start_cb: Some(on_start),
            iv_cs_push_stream_stop_cb: Some(on_stop),
            iv_cs_ai_service_notify_cb: None,
            iv_cs_event_capture_picture_cb: None,
            iv_cs_event_picture_result_cb: None,
            iv_cs_event_report_result_cb: None,
            iv_cs_notify_cb: Some(on_notify),
            iv_cs_get_balance_cb: None,
            iv_cs_dump_file_cb: None,
        },
        ch_params: chans.as_mut_ptr(),
    };
    // SAFETY: valid parameters.
    assert_eq!(unsafe { iv_cs_init(&mut p) }, IV_ERR_NONE);
    let svc = ivcs::service::running().expect("the service runs after init");
    assert_eq!(*svc.restarts.lock().unwrap(), 0);

    // 1. The epoch deadline: the call traps at its first check.
    svc.expire_next_call.store(true, Ordering::SeqCst);
    assert_eq!(
        iv_cs_set_trans_time(20_000, 5_000),
        IV_ERR_CS_PRM_NOT_AVAILABLE
    );
    assert_eq!(*svc.restarts.lock().unwrap(), 1);
    wait_for_notify(IV_CS_COS_SERVICE_WRONG, 2); // one per channel
    // The restored engine still has the session: init again is -610, and
    // it answers calls (no cloud, so no plan known yet: frames are held
    // for pre-record).
    // SAFETY: valid parameters.
    assert_eq!(unsafe { iv_cs_init(&mut p) }, IV_ERR_CS_INIT_REPEAT);
    assert_eq!(push(64), IV_ERR_NONE);
    assert_eq!(iv_cs_set_trans_time(20_000, 5_000), IV_ERR_NONE);

    // 2. Memory: the next call may not grow the engine's memory, and a
    // 512 KiB backup chunk has to be copied in: the growth is refused, the
    // engine traps, the call answers -606.
    svc.squeeze_next_call.store(true, Ordering::SeqCst);
    assert_eq!(backup_chunk(512 * 1024), IV_ERR_CS_PRM_MALLOC_FAIL);
    assert_eq!(*svc.restarts.lock().unwrap(), 2);
    wait_for_notify(IV_CS_COS_SERVICE_WRONG, 4);
    assert_eq!(push(64), IV_ERR_NONE);

    // A frame over u32MaxGopSize never reaches the engine.
    assert_eq!(push((1 << 20) + 1), IV_ERR_CS_PRM_MALLOC_FAIL);
    assert_eq!(*svc.restarts.lock().unwrap(), 2);

    assert_eq!(iv_cs_exit(), IV_ERR_NONE);
    assert_eq!(iv_cs_exit(), IV_ERR_CS_PRM_NOT_AVAILABLE);
    assert_eq!(ivcs::host_api::ivcs_host_shutdown(), IV_ERR_NONE);
}
