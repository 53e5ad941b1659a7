//! Host events of the engine → firmware callbacks, queued on the callback
//! thread with the data they need owned by the job (C structs built there,
//! pointers valid until the callback returns).

use crate::abi;
use crate::callbacks;
use crate::codes::*;
use crate::service::{Service, Session};
use ivcs_host::bindings::ivcs::engine::types as wt;
use std::ffi::CString;
use std::sync::Arc;

/// Queues the callback for `ev` (not `op-complete` or `log`: the engine
/// thread handles those itself).
pub fn post(s: &Session, ev: wt::HostEvent, svc: &Arc<Service>) {
    let fw = s.fw;
    let sid = Some(s.id);
    match ev {
        wt::HostEvent::PushStart(ch) => {
            if let Some(cb) = fw.iv_cs_push_stream_start_cb {
                // SAFETY (all below): firmware's callbacks, called with
                // pointers that live until they return.
                callbacks::post(sid, move || unsafe {
                    cb(u32::from(ch));
                });
            }
        }
        wt::HostEvent::PushStop(ch) => {
            if let Some(cb) = fw.iv_cs_push_stream_stop_cb {
                callbacks::post(sid, move || unsafe {
                    cb(u32::from(ch));
                });
            }
        }
        wt::HostEvent::Notify(n) => {
            let Some(cb) = fw.iv_cs_notify_cb else { return };
            let kind = match n.kind {
                wt::NotifyKind::ConnectFail => IV_CS_AV_UPLOAD_CONNECT_FAIL,
                wt::NotifyKind::ConnectRecover => IV_CS_AV_UPLOAD_CONNECT_RECOVER,
                wt::NotifyKind::UploadState => IV_CS_AV_UPLOAD_STATE_MSG,
                wt::NotifyKind::WatermarkLow => IV_CS_AV_UPLOAD_WATERMARK_LOW,
                wt::NotifyKind::WatermarkWarn => IV_CS_AV_UPLOAD_WATERMARK_WARN,
                wt::NotifyKind::WatermarkHigh => IV_CS_AV_UPLOAD_WATERMARK_HIGH,
                wt::NotifyKind::ServiceWrong => IV_CS_COS_SERVICE_WRONG,
            };
            let ch = u32::from(n.channel);
            // At most MAX_UPLOAD_INFO_NUM slices fit one callback; an engine
            // sends no more, but a longer list is split, never cut.
            let groups: Vec<&[wt::UploadSlice]> = if n.slices.is_empty() {
                vec![&[]]
            } else {
                n.slices.chunks(abi::MAX_UPLOAD_INFO_NUM).collect()
            };
            for group in groups {
                let mut info = Box::new(abi::iv_cs_upload_info_s::default());
                for (slot, sl) in info.slice_info.iter_mut().zip(group) {
                    *slot = abi::iv_cs_upload_slice_info_s {
                        utc_sec_a: sl.utc_start_s,
                        utc_sec_b: sl.utc_end_s,
                        pts_ms_a: sl.pts_start_ms,
                        pts_ms_b: sl.pts_end_ms,
                        frame_seq_a: sl.seq_start,
                        frame_seq_b: sl.seq_end,
                        upload_size: sl.upload_size,
                        total_size: sl.total_size,
                        state: match sl.state {
                            wt::UploadState::Ok => 0,
                            wt::UploadState::Err => 1,
                        },
                    };
                }
                info.num = group.len() as i32;
                callbacks::post(sid, move || {
                    let mut info = info;
                    // Always a valid pointer (num 0 outside upload-state).
                    let mut data = abi::iv_cs_notify_msg_data {
                        av_result_info: &mut *info,
                    };
                    unsafe { cb(ch, kind, &mut data) };
                });
            }
        }
        wt::HostEvent::EventResult(r) => {
            let Some(cb) = fw.iv_cs_event_report_result_cb else {
                return;
            };
            let ch = u32::from(r.channel);
            let mut info = abi::iv_cs_event_result_info {
                result_code: i32::from(r.success),
                event_id: r.event_id,
                start_time_s: r.start_utc_s,
                end_time_s: r.end_utc_s,
            };
            callbacks::post(sid, move || unsafe {
                cb(ch, &mut info);
            });
        }
        wt::HostEvent::DumpFile(d) => {
            let Some(cb) = fw.iv_cs_dump_file_cb else {
                return;
            };
            let ch = u32::from(d.channel);
            let state = match d.state {
                wt::DumpState::Start => 0,
                wt::DumpState::Running => 1,
                wt::DumpState::End => 2,
            };
            // START and RUNNING carry no name: NULL, as the spec says
            // (file_name is only set with END).
            let name = (!d.file_name.is_empty())
                .then(|| CString::new(d.file_name.replace('\0', "_")).unwrap_or_default());
            let mut data = d.data;
            callbacks::post(sid, move || {
                let len = data.len() as u32;
                let buf = if data.is_empty() {
                    std::ptr::null_mut()
                } else {
                    data.as_mut_ptr()
                };
                // The return value is ignored: firmware uses this as a tap.
                unsafe {
                    cb(
                        ch,
                        state,
                        d.start_ms,
                        d.end_ms,
                        name.as_ref()
                            .map_or(std::ptr::null_mut(), |n| n.as_ptr().cast_mut()),
                        buf,
                        len,
                    );
                }
            });
        }
        wt::HostEvent::BalanceRequest(b) => {
            let Some(cb) = fw.iv_cs_get_balance_cb else {
                return;
            };
            let svc = svc.clone();
            callbacks::post(sid, move || {
                let ch = u32::from(b.channel);
                let mut valid: i8 = 0;
                let mut info = abi::iv_cs_balance_info_s::default();
                let timeout = i32::try_from(b.timeout_ms).unwrap_or(i32::MAX);
                unsafe { cb(ch, &mut valid, &mut info, timeout) };
                let answer = (valid != 0).then(|| balance_from_c(&info));
                let channel = b.channel;
                svc.post(move |ctx| {
                    let _ = ctx
                        .engine(|s, w| w.ivcs_engine_cs().call_balance_answer(s, channel, answer));
                    ctx.changed_lightly();
                });
            });
        }
        wt::HostEvent::AiService(a) => {
            let Some(cb) = fw.iv_cs_ai_service_notify_cb else {
                return;
            };
            callbacks::post(sid, move || unsafe {
                cb(u32::from(a.channel), a.ai_type, a.utc_expire);
            });
        }
        // Handled by the service itself (waiters, log, `delivery`).
        wt::HostEvent::OpComplete(_) | wt::HostEvent::Log(_) | wt::HostEvent::EngineOffer(_) => {}
    }
}

/// `iv_cs_balance_info_s` → the engine's balance.
pub fn balance_from_c(b: &abi::iv_cs_balance_info_s) -> wt::Balance {
    wt::Balance {
        enabled: b.cs_switch != 0,
        days: b.cs_days,
        plan: match b.cs_type {
            1 => wt::PlanType::FullTime,
            2 => wt::PlanType::Event,
            3 => wt::PlanType::FreeTrial,
            _ => wt::PlanType::None,
        },
        trial_remaining_s: b.free_trial_remaining_sec,
        revision: 0,
    }
}

/// The engine's balance → `iv_cs_balance_info_s`.
pub fn balance_to_c(b: &wt::Balance) -> abi::iv_cs_balance_info_s {
    abi::iv_cs_balance_info_s {
        cs_switch: i32::from(b.enabled),
        cs_days: b.days,
        cs_type: match b.plan {
            wt::PlanType::None => 0,
            wt::PlanType::FullTime => 1,
            wt::PlanType::Event => 2,
            wt::PlanType::FreeTrial => 3,
        },
        free_trial_remaining_sec: b.trial_remaining_s,
    }
}
