/*
 * Prints the size, alignment and field offsets of every struct in iv_cm.h and
 * iv_cs.h, in the format of libivcs's abi::layout(); `make check-layout`
 * compares the two on x86_64 and i686 (-m32).
 */
#include <stddef.h>
#include <stdio.h>

#include "iv_cs.h"

#define ALIGNOF(t) offsetof(struct { char c; t x; }, x)
#define S(t) printf("%s %u %u\n", #t, (unsigned)sizeof(t), (unsigned)ALIGNOF(t))
#define F(t, f) printf("%s.%s %u\n", #t, #f, (unsigned)offsetof(t, f))

int main(void) {
    S(iv_cm_aenc_pack_s);
    F(iv_cm_aenc_pack_s, pu8Addr); F(iv_cm_aenc_pack_s, u32Len);
    F(iv_cm_aenc_pack_s, u64PTS); F(iv_cm_aenc_pack_s, u32Seq);
    S(iv_cm_venc_pack_s);
    F(iv_cm_venc_pack_s, pu8Addr); F(iv_cm_venc_pack_s, u32Len); F(iv_cm_venc_pack_s, u64PTS);
    F(iv_cm_venc_pack_s, eFrameType); F(iv_cm_venc_pack_s, u32Seq);
    S(iv_cm_av_data_info_s);
    F(iv_cm_av_data_info_s, eAudioType); F(iv_cm_av_data_info_s, u32AudioCodecOption);
    F(iv_cm_av_data_info_s, eAudioMode); F(iv_cm_av_data_info_s, eAudioBitWidth);
    F(iv_cm_av_data_info_s, eAudioSampleRate); F(iv_cm_av_data_info_s, u32SampleNumPerFrame);
    F(iv_cm_av_data_info_s, eVideoType); F(iv_cm_av_data_info_s, u32VideoWidth);
    F(iv_cm_av_data_info_s, u32VideoHeight); F(iv_cm_av_data_info_s, u32Framerate);
    F(iv_cm_av_data_info_s, u32Reserve);
    S(iv_cs_balance_info_s);
    F(iv_cs_balance_info_s, cs_switch); F(iv_cs_balance_info_s, cs_days);
    F(iv_cs_balance_info_s, cs_type); F(iv_cs_balance_info_s, free_trial_remaining_sec);
    S(iv_cs_upload_slice_info_s);
    F(iv_cs_upload_slice_info_s, utc_sec_a); F(iv_cs_upload_slice_info_s, utc_sec_b);
    F(iv_cs_upload_slice_info_s, pts_ms_a); F(iv_cs_upload_slice_info_s, pts_ms_b);
    F(iv_cs_upload_slice_info_s, frame_seq_a); F(iv_cs_upload_slice_info_s, frame_seq_b);
    F(iv_cs_upload_slice_info_s, upload_size); F(iv_cs_upload_slice_info_s, total_size);
    F(iv_cs_upload_slice_info_s, state);
    S(iv_cs_upload_info_s);
    F(iv_cs_upload_info_s, slice_info); F(iv_cs_upload_info_s, num);
    S(iv_cs_notify_msg_data);
    F(iv_cs_notify_msg_data, av_result_info);
    S(iv_cs_event_result_info);
    F(iv_cs_event_result_info, result_code); F(iv_cs_event_result_info, event_id);
    F(iv_cs_event_result_info, start_time_s); F(iv_cs_event_result_info, end_time_s);
    S(iv_cs_congestion_ctrl_s);
    F(iv_cs_congestion_ctrl_s, low_mark); F(iv_cs_congestion_ctrl_s, warn_mark);
    F(iv_cs_congestion_ctrl_s, high_mark); F(iv_cs_congestion_ctrl_s, enable);
    S(iv_cs_init_func_cb_s);
    F(iv_cs_init_func_cb_s, iv_cs_push_stream_start_cb);
    F(iv_cs_init_func_cb_s, iv_cs_push_stream_stop_cb);
    F(iv_cs_init_func_cb_s, iv_cs_ai_service_notify_cb);
    F(iv_cs_init_func_cb_s, iv_cs_event_capture_picture_cb);
    F(iv_cs_init_func_cb_s, iv_cs_event_picture_result_cb);
    F(iv_cs_init_func_cb_s, iv_cs_event_report_result_cb);
    F(iv_cs_init_func_cb_s, iv_cs_notify_cb);
    F(iv_cs_init_func_cb_s, iv_cs_get_balance_cb);
    F(iv_cs_init_func_cb_s, iv_cs_dump_file_cb);
    S(iv_cs_channel_params_s);
    F(iv_cs_channel_params_s, channel_id); F(iv_cs_channel_params_s, u32MaxGopSize);
    F(iv_cs_channel_params_s, congestion_cfg); F(iv_cs_channel_params_s, av_fmt);
    F(iv_cs_channel_params_s, cs_fmt); F(iv_cs_channel_params_s, event_report_opt);
    S(iv_cs_init_parm_s);
    F(iv_cs_init_parm_s, channel_num); F(iv_cs_init_parm_s, func_cb);
    F(iv_cs_init_parm_s, ch_params);
    return 0;
}
