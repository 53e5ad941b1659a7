/*
 * iv_cs.h - cloud storage ("云存") API of the iv_* camera cloud SDK, as
 * implemented by ivcs (libivcs). Names, values, field order and function
 * signatures match the original SDK so firmware recompiles unchanged.
 *
 * Decisions where public copies of the original SDK disagree:
 *  - Channels: the default follows the spec (3 channels, CS_CH_NUM = 3).
 *    Define IV_CS_FIVE_CHANNELS before including this header for the later
 *    5-channel layout. The runtime accepts channel ids 0..4 either way.
 *  - iv_cs_event_result_info.result_code: 1 = success, 0 = failure.
 *  - Watermark messages mean the buffer fill crossed low, warn, high.
 */
#ifndef IV_CS_H
#define IV_CS_H

#include <stddef.h>
#include <stdint.h>

#include "iv_cm.h"
#include "iv_err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MAX_UPLOAD_INFO_NUM 10

#ifdef IV_CS_FIVE_CHANNELS
typedef enum {
    CS_SINGLE_CH = 0,
    CS_MULTI_CH1 = 1,
    CS_MULTI_CH2 = 2,
    CS_MULTI_CH3 = 3,
    CS_MULTI_CH4 = 4,
    CS_CH_NUM = 5
} iv_cs_chn_e;
#else
typedef enum {
    CS_SINGLE_CH = 0,
    CS_MULTI_CH1 = 1,
    CS_MULTI_CH2 = 2,
    CS_CH_NUM = 3
} iv_cs_chn_e;
#endif

typedef enum {
    CS_TYPE_NONE = 0,
    CS_TYPE_FULL_TIME = 1,
    CS_TYPE_EVENT = 2,
    CS_TYPE_FREE_TRIAL = 3
} iv_cs_type_e;

typedef enum {
    CS_UP_BK_START = 0,
    CS_UP_BK_RUNNING = 1,
    CS_UP_BK_END = 2,
    CS_UP_BK_BUTT = 3
} iv_cs_up_bk_state_e;

typedef enum {
    IV_CS_FORMAT_TS = 0,
    IV_CS_FORMAT_FMP4 = 1
} iv_cs_format_e;

/* A bit set. */
typedef enum {
    CS_AI_TYPE_CLOSE = 0,
    CS_AI_TYPE_FALL_DETECT = 1
} iv_cs_ai_type_e;

typedef enum {
    CS_EVENT_VIDEO_REQ = 0,
    CS_EVENT_PIC_REQ = 1,
    CS_EVENT_VIDEO_OR_PIC_REQ = 2
} iv_cs_event_report_opt_e;

typedef enum {
    IV_CS_UPLOAD_OK = 0,
    IV_CS_UPLOAD_ERR = 1
} iv_cs_upload_state_e;

typedef enum {
    IV_CS_AV_UPLOAD_CONNECT_FAIL = 0,
    IV_CS_AV_UPLOAD_CONNECT_RECOVER = 1,
    IV_CS_AV_UPLOAD_STATE_MSG = 2,
    IV_CS_AV_UPLOAD_WATERMARK_LOW = 3,
    IV_CS_AV_UPLOAD_WATERMARK_WARN = 4,
    IV_CS_AV_UPLOAD_WATERMARK_HIGH = 5,
    IV_CS_COS_SERVICE_WRONG = 6,
    IV_CS_MSG_BUTT
} iv_cs_notify_msg_type_e;

typedef struct {
    int cs_switch;
    int cs_days;
    iv_cs_type_e cs_type;
    int free_trial_remaining_sec;
} iv_cs_balance_info_s;

typedef struct {
    uint64_t utc_sec_a;
    uint64_t utc_sec_b;
    uint64_t pts_ms_a;
    uint64_t pts_ms_b;
    uint32_t frame_seq_a;
    uint32_t frame_seq_b;
    uint32_t upload_size;
    uint32_t total_size;
    iv_cs_upload_state_e state;
} iv_cs_upload_slice_info_s;

typedef struct {
    iv_cs_upload_slice_info_s slice_info[MAX_UPLOAD_INFO_NUM];
    int32_t num;
} iv_cs_upload_info_s;

typedef union {
    iv_cs_upload_info_s *av_result_info;
} iv_cs_notify_msg_data;

typedef struct {
    int32_t result_code; /* 1 = success, 0 = failure */
    int32_t event_id;
    uint32_t start_time_s;
    uint32_t end_time_s;
} iv_cs_event_result_info;

/* size_t: the layout differs between 32- and 64-bit targets. */
typedef struct {
    size_t low_mark;
    size_t warn_mark;
    size_t high_mark;
    int8_t enable;
} iv_cs_congestion_ctrl_s;

typedef struct {
    int (*iv_cs_push_stream_start_cb)(iv_cs_chn_e channel);
    int (*iv_cs_push_stream_stop_cb)(iv_cs_chn_e channel);
    void (*iv_cs_ai_service_notify_cb)(iv_cs_chn_e channel, unsigned int ai_server_type,
                                       unsigned long long utc_expire);
    int (*iv_cs_event_capture_picture_cb)(iv_cs_chn_e channel, int32_t event_id, uint8_t **pic,
                                          int32_t *size);
    int (*iv_cs_event_picture_result_cb)(iv_cs_chn_e channel, uint8_t **pic, int32_t err_code);
    int (*iv_cs_event_report_result_cb)(iv_cs_chn_e channel, iv_cs_event_result_info *info);
    int (*iv_cs_notify_cb)(iv_cs_chn_e channel, iv_cs_notify_msg_type_e msg_type,
                           iv_cs_notify_msg_data *data);
    void (*iv_cs_get_balance_cb)(iv_cs_chn_e channel, int8_t *is_vaild /* sic */,
                                 iv_cs_balance_info_s *info, int32_t timeout_ms);
    int (*iv_cs_dump_file_cb)(iv_cs_chn_e channel, iv_cs_up_bk_state_e state, uint64_t start_ts,
                              uint64_t end_ts, char *file_name, uint8_t *buf, uint32_t len);
} iv_cs_init_func_cb_s;

typedef struct {
    iv_cs_chn_e channel_id;
    uint32_t u32MaxGopSize; /* bytes of unacknowledged data: multiple of 4 KB, >= one I frame */
    iv_cs_congestion_ctrl_s congestion_cfg;
    iv_cm_av_data_info_s av_fmt;
    iv_cs_format_e cs_fmt;
    iv_cs_event_report_opt_e event_report_opt;
} iv_cs_channel_params_s;

typedef struct {
    uint32_t channel_num;
    iv_cs_init_func_cb_s func_cb;
    iv_cs_channel_params_s *ch_params;
} iv_cs_init_parm_s;

int iv_cs_init(iv_cs_init_parm_s *pstInitParm);
int iv_cs_exit(void);
int iv_cs_resource_destroy(uint32_t timeout_ms);
int iv_cs_push_stream(iv_cs_chn_e channel, iv_cm_stream_type_e eCsStreamType, void *pstCsStream);
int iv_cs_upload_backup_video(iv_cs_chn_e channel, iv_cs_up_bk_state_e state, char *file_name,
                              uint8_t *buf, uint32_t len);
int iv_cs_event_start(iv_cs_chn_e channel, int32_t event_id, const char *info);
int iv_cs_event_stop(iv_cs_chn_e channel, int32_t event_id, const char *info);
int iv_cs_event_start_ext(iv_cs_chn_e channel, int32_t event_id, const char *info,
                          uint32_t event_start_time_s, uint32_t stream_start_time_s);
int iv_cs_event_stop_ext(iv_cs_chn_e channel, int32_t event_id, const char *info,
                         uint32_t event_stop_time_s, uint32_t stream_stop_time_s);
int iv_cs_event_directly_report(iv_cs_chn_e channel, int32_t event_id, const char *info,
                                uint32_t event_time_s, const uint8_t *pic_addr, uint32_t pic_len);
int iv_cs_get_balance_info(iv_cs_chn_e channel, iv_cs_balance_info_s *balance_info,
                           uint32_t timeout_s);
int iv_cs_set_trans_time(uint32_t upload_timeout_ms, uint32_t reply_timeout_ms);
int iv_cs_set_ai_process(iv_cs_chn_e channel, int32_t event_id, iv_cs_ai_type_e ai_type,
                         void *args);
int iv_cs_get_ai_process(iv_cs_chn_e channel, int32_t event_id, iv_cs_ai_type_e *ai_type,
                         void *args);

#ifdef __cplusplus
}
#endif

#endif /* IV_CS_H */
