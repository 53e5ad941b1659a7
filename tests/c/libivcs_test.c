/*
 * C-side tests of libivcs, run by tests/libivcs_c.rs against the real cloud
 * (`ivcs cloud serve`). One program, one scenario per argv[1]:
 *
 *   errors           bad input everywhere, -605 before init, -610, exit/re-init
 *   plans            (full-time plan set) push_stream_start_cb, balance blocking
 *                    and cached before and after init, re-entrant callbacks;
 *                    prints STARTED, then (driver sets plan none) waits for
 *                    push_stream_stop_cb; privacy-mode exit + re-init
 *   ai               set/get AI round trip
 *   destroy          iv_cs_resource_destroy resets the plan cache
 *   report JPEG      direct event report with a picture and no plan
 *   stress N [FRAMES] threads pushing 3 channels while others start/stop events,
 *                    query balance and AI; exit with work in flight; re-init.
 *                    With FRAMES (real H.264+AAC, see tests/src/frames_file.rs)
 *                    each round also needs accepted pushes and acknowledged
 *                    segments (ok upload-state slices) on every channel
 *
 * Waits are on condition variables with a deadline, never sleeps. A failed
 * expectation prints "FAIL file:line ..." and exits 1. Device and cloud come
 * from the environment (IVCS_CLOUD_URL, IVCS_DEVICE_ID, IVCS_DEVICE_SECRET).
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "iv_cs.h"
#include "ivcs_host.h"
#include "frames_file.h"
#include "check.h"

/* ---- what the callbacks saw ---------------------------------------------- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int n_start[5], n_stop[5];
static int n_pic_result, n_event_result, last_event_result_code = -1, n_notify, n_ai;
static int reentry_rc = 1;

static void bump(int *counter) {
    pthread_mutex_lock(&mu);
    (*counter)++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static int read_counter(const int *counter) {
    int v;
    pthread_mutex_lock(&mu);
    v = *counter;
    pthread_mutex_unlock(&mu);
    return v;
}

/* Waits until *counter >= target or `seconds` pass; returns the value. */
static int wait_for(const int *counter, int target, int seconds) {
    struct timespec until;
    int v;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += seconds;
    pthread_mutex_lock(&mu);
    while (*counter < target) {
        if (pthread_cond_timedwait(&cv, &mu, &until) != 0) break;
    }
    v = *counter;
    pthread_mutex_unlock(&mu);
    return v;
}

static int in_reentry_test;

static int on_start(iv_cs_chn_e ch) {
    if (ch < 5) {
        if (in_reentry_test) {
            /* Re-entrant: a callback may call the API again. */
            iv_cs_balance_info_s b;
            int rc = iv_cs_get_balance_info(ch, &b, 0);
            rc |= iv_cs_set_trans_time(30000, 10000);
            pthread_mutex_lock(&mu);
            reentry_rc = rc;
            pthread_mutex_unlock(&mu);
        }
        bump(&n_start[ch]);
    }
    return 0;
}

static int on_stop(iv_cs_chn_e ch) {
    if (ch < 5) bump(&n_stop[ch]);
    return 0;
}

static int on_pic_result(iv_cs_chn_e ch, uint8_t **pic, int32_t err) {
    (void)ch;
    (void)err;
    (void)pic;
    bump(&n_pic_result);
    return 0;
}

static int on_event_result(iv_cs_chn_e ch, iv_cs_event_result_info *info) {
    (void)ch;
    pthread_mutex_lock(&mu);
    last_event_result_code = info->result_code;
    pthread_mutex_unlock(&mu);
    bump(&n_event_result);
    return 0;
}

static int n_ok_slices[5];

static int on_notify(iv_cs_chn_e ch, iv_cs_notify_msg_type_e t, iv_cs_notify_msg_data *d) {
    int i;
    CHECK(d != NULL && d->av_result_info != NULL);
    CHECK(d->av_result_info->num >= 0 && d->av_result_info->num <= MAX_UPLOAD_INFO_NUM);
    if (t == IV_CS_AV_UPLOAD_STATE_MSG && ch < 5) {
        for (i = 0; i < d->av_result_info->num; i++) {
            iv_cs_upload_slice_info_s *s = &d->av_result_info->slice_info[i];
            if (s->state == IV_CS_UPLOAD_OK) {
                CHECK(s->upload_size == s->total_size && s->total_size > 0);
                bump(&n_ok_slices[ch]);
            }
        }
    }
    bump(&n_notify);
    return 0;
}

static void on_ai(iv_cs_chn_e ch, unsigned int type, unsigned long long expire) {
    (void)ch;
    (void)type;
    (void)expire;
    bump(&n_ai);
}

/* ---- init parameters ---------------------------------------------------- */

static iv_cs_channel_params_s chans[3];

static iv_cs_init_parm_s params(uint32_t n) {
    iv_cs_init_parm_s p;
    uint32_t i;
    memset(&p, 0, sizeof p);
    memset(chans, 0, sizeof chans);
    for (i = 0; i < 3; i++) {
        test_channel(&chans[i], (iv_cs_chn_e)i, 256 * 1024, 640, 360, IV_CM_AENC_MODE_MONO,
                     IV_CM_AENC_SAMPLE_RATE_16000);
        chans[i].event_report_opt = CS_EVENT_VIDEO_OR_PIC_REQ;
    }
    p.channel_num = n;
    p.ch_params = chans;
    p.func_cb.iv_cs_push_stream_start_cb = on_start;
    p.func_cb.iv_cs_push_stream_stop_cb = on_stop;
    p.func_cb.iv_cs_event_picture_result_cb = on_pic_result;
    p.func_cb.iv_cs_event_report_result_cb = on_event_result;
    p.func_cb.iv_cs_notify_cb = on_notify;
    p.func_cb.iv_cs_ai_service_notify_cb = on_ai;
    return p;
}

/* A tiny H.264 access unit: an IDR slice NAL without SPS/PPS (refused with
   -611 once a plan lets frames through) or a P slice. */
static uint8_t idr[] = {0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00, 0x33, 0xff, 0x00, 0x10};
static uint8_t pslice[] = {0, 0, 0, 1, 0x41, 0x9a, 0x02, 0x0c, 0x00, 0x10};
static uint8_t adts[] = {0xff, 0xf1, 0x60, 0x40, 0x01, 0x7f, 0xfc, 0x21, 0x00};

static int push_video(iv_cs_chn_e ch, int key, uint64_t pts, uint32_t seq) {
    iv_cm_venc_pack_s v;
    v.pu8Addr = key ? idr : pslice;
    v.u32Len = key ? (uint32_t)sizeof idr : (uint32_t)sizeof pslice;
    v.u64PTS = pts;
    v.eFrameType = key ? IV_CM_FRAME_TYPE_I : IV_CM_FRAME_TYPE_P;
    v.u32Seq = seq;
    return iv_cs_push_stream(ch, IV_CM_STREAM_TYPE_VIDEO, &v);
}

static int push_audio(iv_cs_chn_e ch, uint64_t pts, uint32_t seq) {
    iv_cm_aenc_pack_s a;
    a.pu8Addr = adts;
    a.u32Len = sizeof adts;
    a.u64PTS = pts;
    a.u32Seq = seq;
    return iv_cs_push_stream(ch, IV_CM_STREAM_TYPE_AUDIO, &a);
}

/* ---- scenarios ------------------------------------------------------------ */

static void before_init(void) {
    iv_cm_venc_pack_s v;
    iv_cs_ai_type_e t;
    memset(&v, 0, sizeof v);
    EXPECT(iv_cs_exit(), IV_ERR_CS_PRM_NOT_AVAILABLE);
    EXPECT(iv_cs_push_stream(CS_SINGLE_CH, IV_CM_STREAM_TYPE_VIDEO, &v), IV_ERR_CS_PRM_NOT_AVAILABLE);
    EXPECT(iv_cs_event_start(CS_SINGLE_CH, 1, NULL), IV_ERR_CS_PRM_NOT_AVAILABLE);
    EXPECT(iv_cs_event_stop(CS_SINGLE_CH, 1, NULL), IV_ERR_CS_PRM_NOT_AVAILABLE);
    EXPECT(iv_cs_event_start_ext(CS_SINGLE_CH, 1, NULL, 0, 5), IV_ERR_CS_PRM_NOT_AVAILABLE);
    EXPECT(iv_cs_event_stop_ext(CS_SINGLE_CH, 1, NULL, 0, 0), IV_ERR_CS_PRM_NOT_AVAILABLE);
    EXPECT(iv_cs_event_directly_report(CS_SINGLE_CH, 1, NULL, 0, NULL, 0), IV_ERR_CS_PRM_NOT_AVAILABLE);
    EXPECT(iv_cs_set_ai_process(CS_SINGLE_CH, 1, CS_AI_TYPE_FALL_DETECT, NULL), IV_ERR_CS_PRM_NOT_AVAILABLE);
    EXPECT(iv_cs_get_ai_process(CS_SINGLE_CH, 1, &t, NULL), IV_ERR_CS_PRM_NOT_AVAILABLE);
    EXPECT(iv_cs_upload_backup_video(CS_SINGLE_CH, CS_UP_BK_START, "f.ts", NULL, 0), IV_ERR_CS_PRM_NOT_AVAILABLE);
}

static void scenario_errors(void) {
    iv_cs_init_parm_s p;
    iv_cs_balance_info_s b;
    iv_cs_ai_type_e t;
    char long_info[130];
    uint8_t zeros[64];
    iv_cm_venc_pack_s v;

    before_init();
    /* Functions that work before init still check their arguments. */
    EXPECT(iv_cs_get_balance_info(CS_SINGLE_CH, NULL, 0), IV_ERR_CS_INIT_PRM_NULL);
    EXPECT(iv_cs_get_balance_info((iv_cs_chn_e)7, &b, 0), IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(iv_cs_set_trans_time(0, 1000), IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(iv_cs_set_trans_time(1000, 0), IV_ERR_CS_INIT_PRM_RANGE);

    /* init's own checks */
    EXPECT(iv_cs_init(NULL), IV_ERR_CS_INIT_PRM_NULL);
    p = params(1);
    p.func_cb.iv_cs_push_stream_start_cb = NULL;
    EXPECT(iv_cs_init(&p), IV_ERR_CS_INIT_CB_NULL);
    p = params(1);
    p.func_cb.iv_cs_push_stream_stop_cb = NULL;
    EXPECT(iv_cs_init(&p), IV_ERR_CS_INIT_CB_NULL);
    p = params(0);
    EXPECT(iv_cs_init(&p), IV_ERR_CS_INIT_PRM_RANGE);
    p = params(6);
    EXPECT(iv_cs_init(&p), IV_ERR_CS_INIT_PRM_RANGE);
    p = params(1);
    p.ch_params = NULL;
    EXPECT(iv_cs_init(&p), IV_ERR_CS_INIT_PRM_NULL);
    p = params(1);
    chans[0].channel_id = (iv_cs_chn_e)7;
    EXPECT(iv_cs_init(&p), IV_ERR_CS_INIT_PRM_RANGE);
    p = params(1);
    chans[0].av_fmt.eVideoType = IV_CM_VENC_TYPE_MJPG;
    EXPECT(iv_cs_init(&p), IV_ERR_CS_INIT_PRM_RANGE);
    p = params(1);
    chans[0].u32MaxGopSize = 1000; /* not a multiple of 4 KB */
    EXPECT(iv_cs_init(&p), IV_ERR_CS_INIT_PRM_RANGE);
    p = params(2);
    chans[1].channel_id = CS_SINGLE_CH; /* duplicate */
    EXPECT(iv_cs_init(&p), IV_ERR_CS_INIT_PRM_RANGE);
    before_init(); /* failed inits leave it uninitialised */

    p = params(1);
    EXPECT(iv_cs_init(&p), IV_ERR_NONE);
    EXPECT(iv_cs_init(&p), IV_ERR_CS_INIT_REPEAT);

    /* push */
    memset(&v, 0, sizeof v);
    EXPECT(iv_cs_push_stream((iv_cs_chn_e)7, IV_CM_STREAM_TYPE_VIDEO, &v), IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(iv_cs_push_stream(CS_SINGLE_CH, IV_CM_STREAM_TYPE_VIDEO, NULL), IV_ERR_CS_INIT_PRM_NULL);
    EXPECT(iv_cs_push_stream(CS_SINGLE_CH, (iv_cm_stream_type_e)5, &v), IV_ERR_CS_INIT_PRM_RANGE);
    v.u32Len = 100; /* NULL address with a length */
    EXPECT(iv_cs_push_stream(CS_SINGLE_CH, IV_CM_STREAM_TYPE_VIDEO, &v), IV_ERR_CS_INIT_PRM_NULL);
    v.pu8Addr = idr;
    v.u32Len = 0;
    EXPECT(iv_cs_push_stream(CS_SINGLE_CH, IV_CM_STREAM_TYPE_VIDEO, &v), IV_ERR_CS_INIT_PRM_RANGE);
    v.u32Len = sizeof idr;
    v.eFrameType = (iv_cm_frame_type_e)9;
    EXPECT(iv_cs_push_stream(CS_SINGLE_CH, IV_CM_STREAM_TYPE_VIDEO, &v), IV_ERR_CS_INIT_PRM_RANGE);
    /* Channel 1 was not initialised. */
    EXPECT(push_video(CS_MULTI_CH1, 1, 0, 0), IV_ERR_CS_INIT_PRM_RANGE);
    /* No plan: refused at the gate once the cloud said so (until its first
       answer frames are held for pre-record). */
    EXPECT(iv_cs_get_balance_info(CS_SINGLE_CH, &b, 5), IV_ERR_NONE);
    EXPECT(b.cs_switch, 0);
    EXPECT(push_video(CS_SINGLE_CH, 1, 0, 0), IV_ERR_CS_APPLY_NO_SERVICE);
    EXPECT(push_audio(CS_SINGLE_CH, 0, 0), IV_ERR_CS_APPLY_NO_SERVICE);

    /* events */
    memset(long_info, 'a', sizeof long_info);
    long_info[129] = 0; /* 129 characters */
    EXPECT(iv_cs_event_start((iv_cs_chn_e)7, 1, NULL), IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(iv_cs_event_start(CS_SINGLE_CH, 0, NULL), IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(iv_cs_event_start(CS_SINGLE_CH, 33, NULL), IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(iv_cs_event_start(CS_SINGLE_CH, 1, long_info), IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(iv_cs_event_start(CS_SINGLE_CH, 1, "\xe4\xbd\xa0\xe5\xa5\xbd"), IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(iv_cs_event_stop(CS_SINGLE_CH, 0, NULL), IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(iv_cs_event_stop(CS_SINGLE_CH, 33, "x"), IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(iv_cs_event_stop((iv_cs_chn_e)7, 1, NULL), IV_ERR_CS_INIT_PRM_RANGE);
    /* relative and absolute times mixed */
    EXPECT(iv_cs_event_start_ext(CS_SINGLE_CH, 1, NULL, 10, 1700000000u), IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(iv_cs_event_stop_ext(CS_SINGLE_CH, 1, NULL, 1700000000u, 5), IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(iv_cs_event_start_ext((iv_cs_chn_e)7, 1, NULL, 0, 0), IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(iv_cs_event_stop_ext(CS_SINGLE_CH, 34, NULL, 0, 0), IV_ERR_CS_INIT_PRM_RANGE);
    long_info[128] = 0; /* exactly 128 characters: accepted (the plan then refuses) */
    EXPECT(iv_cs_event_start(CS_SINGLE_CH, 32, long_info) == IV_ERR_CS_INIT_PRM_RANGE, 0);

    /* direct reports */
    EXPECT(iv_cs_event_directly_report((iv_cs_chn_e)7, 1, NULL, 0, NULL, 0), IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(iv_cs_event_directly_report(CS_SINGLE_CH, 0, NULL, 0, NULL, 0), IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(iv_cs_event_directly_report(CS_SINGLE_CH, 33, NULL, 0, NULL, 0), IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(iv_cs_event_directly_report(CS_SINGLE_CH, 1, long_info, 0, NULL, 0), IV_ERR_NONE);
    long_info[128] = 'a';
    EXPECT(iv_cs_event_directly_report(CS_SINGLE_CH, 1, long_info, 0, NULL, 0), IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(iv_cs_event_directly_report(CS_SINGLE_CH, 1, NULL, 0, NULL, 10), IV_ERR_CS_INIT_PRM_NULL);
    /* A zero-filled "picture" is refused; it stays the caller's (never
       handed back), as does one refused by the C layer (channel 7). */
    memset(zeros, 0, sizeof zeros);
    EXPECT(iv_cs_event_directly_report(CS_SINGLE_CH, 1, NULL, 0, zeros, sizeof zeros), IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(iv_cs_event_directly_report((iv_cs_chn_e)7, 1, NULL, 0, zeros, sizeof zeros), IV_ERR_CS_INIT_PRM_RANGE);

    /* AI */
    EXPECT(iv_cs_get_ai_process(CS_SINGLE_CH, 1, NULL, NULL), IV_ERR_CS_INIT_PRM_NULL);
    EXPECT(iv_cs_get_ai_process((iv_cs_chn_e)7, 1, &t, NULL), IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(iv_cs_set_ai_process((iv_cs_chn_e)7, 1, CS_AI_TYPE_FALL_DETECT, NULL), IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(iv_cs_set_ai_process(CS_SINGLE_CH, 1, (iv_cs_ai_type_e)2, NULL), IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(iv_cs_set_ai_process(CS_SINGLE_CH, 0, CS_AI_TYPE_FALL_DETECT, NULL), IV_ERR_CS_INIT_PRM_RANGE);

    /* backup */
    EXPECT(iv_cs_upload_backup_video(CS_SINGLE_CH, CS_UP_BK_START, NULL, NULL, 0), IV_ERR_CS_INIT_PRM_NULL);
    EXPECT(iv_cs_upload_backup_video(CS_SINGLE_CH, (iv_cs_up_bk_state_e)9, "f.ts", NULL, 0), IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(iv_cs_upload_backup_video((iv_cs_chn_e)7, CS_UP_BK_START, "f.ts", NULL, 0), IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(iv_cs_upload_backup_video(CS_SINGLE_CH, CS_UP_BK_RUNNING, "f.ts", NULL, 5), IV_ERR_CS_INIT_PRM_NULL);

    EXPECT(iv_cs_set_trans_time(0, 0), IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(iv_cs_get_balance_info((iv_cs_chn_e)7, &b, 1), IV_ERR_CS_INIT_PRM_RANGE);

    /* exit, calls after exit, re-init */
    EXPECT(iv_cs_exit(), IV_ERR_NONE);
    EXPECT(iv_cs_exit(), IV_ERR_CS_PRM_NOT_AVAILABLE);
    before_init();
    p = params(3);
    EXPECT(iv_cs_init(&p), IV_ERR_NONE);
    EXPECT(push_video(CS_MULTI_CH2, 1, 0, 0), IV_ERR_CS_APPLY_NO_SERVICE);
    EXPECT(iv_cs_exit(), IV_ERR_NONE);
    EXPECT(ivcs_host_shutdown(), IV_ERR_NONE);
    /* After a shutdown the library starts afresh. */
    before_init();
    p = params(1);
    EXPECT(iv_cs_init(&p), IV_ERR_NONE);
    EXPECT(iv_cs_exit(), IV_ERR_NONE);
    EXPECT(ivcs_host_shutdown(), IV_ERR_NONE);
    /* Refused direct reports never handed their pictures back. */
    EXPECT(read_counter(&n_pic_result), 0);
    printf("errors ok\n");
}

static void print_balance(const char *what, const iv_cs_balance_info_s *b) {
    printf("%s switch=%d days=%d type=%d trial=%d\n", what, b->cs_switch, b->cs_days,
           (int)b->cs_type, b->free_trial_remaining_sec);
    fflush(stdout);
}

static void scenario_plans(void) {
    iv_cs_init_parm_s p;
    iv_cs_balance_info_s b, c;

    /* Before init: a blocking query, then the cache. */
    memset(&b, 0, sizeof b);
    EXPECT(iv_cs_get_balance_info(CS_SINGLE_CH, &b, 5), IV_ERR_NONE);
    print_balance("BEFORE_INIT", &b);
    EXPECT(iv_cs_get_balance_info(CS_SINGLE_CH, &c, 0), IV_ERR_NONE);
    CHECK(memcmp(&b, &c, sizeof b) == 0);

    in_reentry_test = 1;
    p = params(1);
    EXPECT(iv_cs_init(&p), IV_ERR_NONE);
    EXPECT(wait_for(&n_start[0], 1, 60), 1);
    pthread_mutex_lock(&mu);
    EXPECT(reentry_rc, 0);
    pthread_mutex_unlock(&mu);
    EXPECT(iv_cs_get_balance_info(CS_SINGLE_CH, &b, 5), IV_ERR_NONE);
    print_balance("BALANCE", &b);
    EXPECT(iv_cs_get_balance_info(CS_SINGLE_CH, &c, 0), IV_ERR_NONE);
    CHECK(memcmp(&b, &c, sizeof b) == 0);
    printf("STARTED\n");
    fflush(stdout);

    /* The driver now sets the plan to none. */
    EXPECT(wait_for(&n_stop[0], 1, 60), 1);
    EXPECT(iv_cs_get_balance_info(CS_SINGLE_CH, &c, 0), IV_ERR_NONE);
    print_balance("AFTER_STOP", &c);
    EXPECT(push_video(CS_SINGLE_CH, 1, 0, 0), IV_ERR_CS_APPLY_NO_SERVICE);
    printf("STOPPED\n");
    fflush(stdout);

    /* Privacy mode: exit, and init again. */
    EXPECT(iv_cs_exit(), IV_ERR_NONE);
    EXPECT(iv_cs_get_balance_info(CS_SINGLE_CH, &c, 0), IV_ERR_NONE);
    p = params(1);
    EXPECT(iv_cs_init(&p), IV_ERR_NONE);
    EXPECT(iv_cs_get_balance_info(CS_SINGLE_CH, &c, 5), IV_ERR_NONE);
    EXPECT(c.cs_type, CS_TYPE_NONE);
    EXPECT(iv_cs_exit(), IV_ERR_NONE);
    EXPECT(read_counter(&n_start[0]), 1);
    EXPECT(ivcs_host_shutdown(), IV_ERR_NONE);
    printf("plans ok\n");
}

static void scenario_ai(void) {
    iv_cs_init_parm_s p = params(1);
    iv_cs_ai_type_e t = (iv_cs_ai_type_e)77;
    EXPECT(iv_cs_init(&p), IV_ERR_NONE);
    EXPECT(iv_cs_get_ai_process(CS_SINGLE_CH, 3, &t, NULL), IV_ERR_NONE);
    EXPECT(t, CS_AI_TYPE_CLOSE);
    EXPECT(iv_cs_set_ai_process(CS_SINGLE_CH, 3, CS_AI_TYPE_FALL_DETECT, NULL), IV_ERR_NONE);
    EXPECT(iv_cs_get_ai_process(CS_SINGLE_CH, 3, &t, NULL), IV_ERR_NONE);
    EXPECT(t, CS_AI_TYPE_FALL_DETECT);
    EXPECT(iv_cs_get_ai_process(CS_SINGLE_CH, 4, &t, NULL), IV_ERR_NONE);
    EXPECT(t, CS_AI_TYPE_CLOSE);
    EXPECT(wait_for(&n_ai, 1, 60), 1); /* ai_service_notify_cb heard it */
    EXPECT(iv_cs_set_ai_process(CS_SINGLE_CH, 3, CS_AI_TYPE_CLOSE, NULL), IV_ERR_NONE);
    EXPECT(iv_cs_get_ai_process(CS_SINGLE_CH, 3, &t, NULL), IV_ERR_NONE);
    EXPECT(t, CS_AI_TYPE_CLOSE);
    EXPECT(iv_cs_exit(), IV_ERR_NONE);
    EXPECT(ivcs_host_shutdown(), IV_ERR_NONE);
    printf("ai ok\n");
}

static void scenario_destroy(void) {
    iv_cs_balance_info_s b;
    /* Works without init (device reset flows). */
    EXPECT(iv_cs_get_balance_info(CS_SINGLE_CH, &b, 5), IV_ERR_NONE);
    print_balance("BEFORE_DESTROY", &b);
    EXPECT(iv_cs_resource_destroy(5000), IV_ERR_NONE);
    EXPECT(iv_cs_get_balance_info(CS_SINGLE_CH, &b, 0), IV_ERR_NONE);
    print_balance("AFTER_DESTROY", &b);
    EXPECT(ivcs_host_shutdown(), IV_ERR_NONE);
    printf("destroy ok\n");
}

static void scenario_report(const char *jpeg_path) {
    iv_cs_init_parm_s p = params(1);
    uint32_t len;
    uint8_t *jpeg = read_file(jpeg_path, &len);
    EXPECT(iv_cs_init(&p), IV_ERR_NONE);
    EXPECT(iv_cs_event_directly_report(CS_SINGLE_CH, 7, "doorbell", 0, jpeg, len), IV_ERR_NONE);
    /* The library copied the picture: the buffer may change at once. */
    memset(jpeg, 0, len);
    EXPECT(wait_for(&n_event_result, 1, 30), 1);
    pthread_mutex_lock(&mu);
    EXPECT(last_event_result_code, 1);
    pthread_mutex_unlock(&mu);
    /* Without a picture: no picture callback. */
    EXPECT(iv_cs_event_directly_report(CS_SINGLE_CH, 8, NULL, 0, NULL, 0), IV_ERR_NONE);
    EXPECT(wait_for(&n_event_result, 2, 30), 2);
    EXPECT(iv_cs_exit(), IV_ERR_NONE);
    EXPECT(ivcs_host_shutdown(), IV_ERR_NONE);
    /* A direct report's picture is never handed back. */
    EXPECT(read_counter(&n_pic_result), 0);
    free(jpeg);
    printf("report ok\n");
}

/* ---- stress --------------------------------------------------------------- */

static volatile int stop_flag; /* read under mu */

static int stopped(void) {
    int s;
    pthread_mutex_lock(&mu);
    s = stop_flag;
    pthread_mutex_unlock(&mu);
    return s;
}

static int acceptable_push(int rc) {
    return rc == IV_ERR_NONE || rc == IV_ERR_CS_APPLY_NO_SERVICE || rc == IV_ERR_CS_NEED_IDR_FRAME ||
           rc == IV_ERR_CS_INIT_PRM_RANGE || rc == IV_ERR_CS_HTTP_DATA_FAIL ||
           rc == IV_ERR_CS_PRM_NOT_AVAILABLE || rc == IV_ERR_CS_PRM_MALLOC_FAIL ||
           rc == IV_ERR_CS_NO_BALANCE;
}

static int pushes;
static int accepted_video[3];

/* Real access units (optional; frames_file.h). */
static frame_t *frames;
static size_t n_frames;

static void load_frames(const char *path) { frames = load_frames_file(path, &n_frames); }

/* Pushes the frames file in a loop, as fast as taken; after a refused
   video frame, drops P frames until the next I frame (firmware's rule). */
static void push_real(iv_cs_chn_e ch) {
    size_t i = 0;
    uint64_t base = 0, span = frames[n_frames - 1].pts + 40;
    uint32_t vseq = 0, aseq = 0;
    int need_idr = 0;
    while (!stopped()) {
        frame_t *f = &frames[i];
        int rc;
        if (f->kind == 1) {
            iv_cm_venc_pack_s v;
            v.pu8Addr = f->data;
            v.u32Len = f->len;
            v.u64PTS = base + f->pts;
            v.eFrameType = f->type == 0 ? IV_CM_FRAME_TYPE_I : IV_CM_FRAME_TYPE_P;
            v.u32Seq = vseq++;
            if (need_idr && f->type != 0) {
                rc = 1;
            } else {
                rc = iv_cs_push_stream(ch, IV_CM_STREAM_TYPE_VIDEO, &v);
                need_idr = rc != 0;
                if (rc == 0) bump(&accepted_video[ch]);
            }
        } else {
            iv_cm_aenc_pack_s a;
            a.pu8Addr = f->data;
            a.u32Len = f->len;
            a.u64PTS = base + f->pts;
            a.u32Seq = aseq++;
            rc = iv_cs_push_stream(ch, IV_CM_STREAM_TYPE_AUDIO, &a);
        }
        if (rc != 1 && !acceptable_push(rc)) {
            fprintf(stderr, "FAIL push ch %d: %d\n", (int)ch, rc);
            exit(1);
        }
        if (++i == n_frames) {
            i = 0;
            base += span;
        }
        bump(&pushes);
    }
}

static void *pusher(void *arg) {
    iv_cs_chn_e ch = (iv_cs_chn_e)(size_t)arg;
    uint32_t seq = 0;
    uint64_t pts = 0;
    if (frames != NULL) {
        push_real(ch);
        return NULL;
    }
    while (!stopped()) {
        int rc = push_video(ch, seq % 25 == 0, pts, seq);
        if (!acceptable_push(rc)) {
            fprintf(stderr, "FAIL push video ch %d: %d\n", (int)ch, rc);
            exit(1);
        }
        rc = push_audio(ch, pts, seq);
        if (!acceptable_push(rc)) {
            fprintf(stderr, "FAIL push audio ch %d: %d\n", (int)ch, rc);
            exit(1);
        }
        seq++;
        pts += 40;
        bump(&pushes);
    }
    return NULL;
}

static int event_calls;

static void *eventer(void *arg) {
    int base = (int)(size_t)arg;
    int i = 0;
    char info[32];
    while (!stopped()) {
        iv_cs_chn_e ch = (iv_cs_chn_e)(i % 3);
        int32_t id = (int32_t)(1 + (base + i) % 32);
        int rc;
        snprintf(info, sizeof info, "ev-%d", (int)id);
        rc = iv_cs_event_start_ext(ch, id, info, 0, i % 2 ? 5 : 0);
        CHECK(rc == 0 || rc == IV_ERR_CS_APPLY_NO_SERVICE || rc == IV_ERR_CS_EVENT_IS_VALID ||
              rc == IV_ERR_CS_HTTP_DATA_FAIL || rc == IV_ERR_CS_PRM_NOT_AVAILABLE);
        rc = iv_cs_event_stop(ch, id, info);
        CHECK(rc == 0 || rc == IV_ERR_CS_APPLY_NO_SERVICE || rc == IV_ERR_CS_EVENT_IS_VALID ||
              rc == IV_ERR_CS_HTTP_DATA_FAIL || rc == IV_ERR_CS_PRM_NOT_AVAILABLE);
        i++;
        bump(&event_calls);
    }
    return NULL;
}

static int queries;

static void *querier(void *arg) {
    int i = 0;
    (void)arg;
    while (!stopped()) {
        iv_cs_balance_info_s b;
        iv_cs_ai_type_e t;
        int rc = iv_cs_get_balance_info((iv_cs_chn_e)(i % 3), &b, i % 10 == 0 ? 2 : 0);
        CHECK(rc == 0 || rc == IV_ERR_CS_QUERY_SERVICE_TIMEOUT || rc == IV_ERR_CS_PRM_NOT_AVAILABLE);
        if (i % 10 == 5) {
            rc = iv_cs_get_ai_process((iv_cs_chn_e)(i % 3), 1, &t, NULL);
            CHECK(rc == 0 || rc == IV_ERR_CS_QUERY_SERVICE_TIMEOUT || rc == IV_ERR_CS_PRM_NOT_AVAILABLE);
        }
        i++;
        bump(&queries);
    }
    return NULL;
}

static void scenario_stress(int rounds) {
    pthread_t th[7];
    int r, i;
    for (r = 0; r < rounds; r++) {
        iv_cs_init_parm_s p = params(3);
        int target;
        EXPECT(iv_cs_init(&p), IV_ERR_NONE);
        pthread_mutex_lock(&mu);
        stop_flag = 0;
        pthread_mutex_unlock(&mu);
        for (i = 0; i < 3; i++) pthread_create(&th[i], NULL, pusher, (void *)(size_t)i);
        pthread_create(&th[3], NULL, eventer, (void *)(size_t)0);
        pthread_create(&th[4], NULL, eventer, (void *)(size_t)16);
        pthread_create(&th[5], NULL, querier, NULL);
        pthread_create(&th[6], NULL, querier, NULL);
        /* Let every kind of thread make progress, then exit under load. */
        target = read_counter(&pushes) + 3000;
        CHECK(wait_for(&pushes, target, 120) >= target);
        target = read_counter(&event_calls) + 200;
        CHECK(wait_for(&event_calls, target, 120) >= target);
        target = read_counter(&queries) + 50;
        CHECK(wait_for(&queries, target, 120) >= target);
        if (frames != NULL) {
            /* Real media: frames are accepted and segments acknowledged on
               every channel, while events and queries run alongside. */
            for (i = 0; i < 3; i++) {
                target = read_counter(&n_ok_slices[i]) + 1;
                CHECK(wait_for(&n_ok_slices[i], target, 120) >= target);
                CHECK(read_counter(&accepted_video[i]) > 0);
            }
        }
        EXPECT(iv_cs_exit(), IV_ERR_NONE);
        pthread_mutex_lock(&mu);
        stop_flag = 1;
        pthread_mutex_unlock(&mu);
        for (i = 0; i < 7; i++) pthread_join(th[i], NULL);
    }
    printf("stress: %d rounds, %d pushes, %d event calls, %d queries, accepted video %d/%d/%d, "
           "ok slices %d/%d/%d\n",
           rounds, read_counter(&pushes), read_counter(&event_calls), read_counter(&queries),
           read_counter(&accepted_video[0]), read_counter(&accepted_video[1]),
           read_counter(&accepted_video[2]), read_counter(&n_ok_slices[0]),
           read_counter(&n_ok_slices[1]), read_counter(&n_ok_slices[2]));
    EXPECT(ivcs_host_shutdown(), IV_ERR_NONE);
    printf("stress ok\n");
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(mode, "errors") == 0) {
        scenario_errors();
    } else if (strcmp(mode, "plans") == 0) {
        scenario_plans();
    } else if (strcmp(mode, "ai") == 0) {
        scenario_ai();
    } else if (strcmp(mode, "destroy") == 0) {
        scenario_destroy();
    } else if (strcmp(mode, "report") == 0 && argc > 2) {
        scenario_report(argv[2]);
    } else if (strcmp(mode, "stress") == 0) {
        if (argc > 3) load_frames(argv[3]);
        scenario_stress(argc > 2 ? atoi(argv[2]) : 2);
    } else {
        fprintf(stderr, "usage: %s errors|plans|ai|destroy|report JPEG|stress [ROUNDS]\n", argv[0]);
        return 2;
    }
    return 0;
}
