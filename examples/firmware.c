/*
 * A minimal camera firmware using libivcs, the way real firmware does:
 *
 *   - settings come from the environment (IVCS_CLOUD_URL, IVCS_DEVICE_ID,
 *     IVCS_DEVICE_SECRET) or from ivcs_host_* calls;
 *   - one blocking balance query at start, cached reads afterwards;
 *   - init with the callbacks; start/stop only flip a flag for the capture
 *     thread (callbacks must return quickly);
 *   - a capture thread pushes video and audio packs;
 *   - an alarm: a recorded event when there is a plan (its captured picture
 *     comes back in picture_result_cb, which frees it), otherwise a direct
 *     report with a JPEG that stays ours (never handed back);
 *   - exit.
 *
 * Build (see docs/guide/firmware.md):
 *   cc -pthread firmware.c $(pkg-config --cflags --libs ivcs) -o firmware
 * Run:  ./firmware [seconds]
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "iv_cs.h"
#include "ivcs_host.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int streaming; /* set by push_stream_start_cb, cleared by stop */
static int running = 1;
static int pictures_out;

/* A real camera takes these from its encoder. */
static uint8_t idr[] = {0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe, 0x88,
                        0, 0, 0, 1, 0x68, 0xce, 0x38, 0x80, 0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00};
static uint8_t pframe[] = {0, 0, 0, 1, 0x41, 0x9a, 0x02, 0x0c, 0x00};
static uint8_t aac[] = {0xff, 0xf1, 0x60, 0x40, 0x01, 0x7f, 0xfc, 0x21, 0x00};
/* JPEG magic bytes; a real camera sends a snapshot. */
static uint8_t jpeg[] = {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00, 0x01,
                         0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0xff, 0xd9};

static int on_start(iv_cs_chn_e ch) {
    pthread_mutex_lock(&lock);
    streaming = 1;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
    printf("push_stream_start_cb(%d)\n", (int)ch);
    return 0;
}

static int on_stop(iv_cs_chn_e ch) {
    pthread_mutex_lock(&lock);
    streaming = 0;
    pthread_mutex_unlock(&lock);
    printf("push_stream_stop_cb(%d)\n", (int)ch);
    return 0;
}

static int on_capture(iv_cs_chn_e ch, int32_t event_id, uint8_t **pic, int32_t *size) {
    uint8_t *copy = malloc(sizeof jpeg);
    (void)ch;
    (void)event_id;
    if (copy == NULL) return -1;
    memcpy(copy, jpeg, sizeof jpeg);
    *pic = copy; /* ours until picture_result_cb */
    *size = (int32_t)sizeof jpeg;
    pthread_mutex_lock(&lock);
    pictures_out++;
    pthread_mutex_unlock(&lock);
    return 0;
}

static int on_picture_result(iv_cs_chn_e ch, uint8_t **pic, int32_t err) {
    printf("picture_result_cb(%d, err %d)\n", (int)ch, (int)err);
    if (*pic) free(*pic); /* only captured copies come back: ours to free */
    pthread_mutex_lock(&lock);
    pictures_out--;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
    return 0;
}

static int on_event_result(iv_cs_chn_e ch, iv_cs_event_result_info *info) {
    printf("event_report_result_cb(%d): event %d %s\n", (int)ch, (int)info->event_id,
           info->result_code == 1 ? "stored" : "failed");
    return 0;
}

static int on_notify(iv_cs_chn_e ch, iv_cs_notify_msg_type_e type, iv_cs_notify_msg_data *data) {
    (void)data;
    printf("notify_cb(%d, %d)\n", (int)ch, (int)type);
    return 0;
}

static void *capture_thread(void *arg) {
    uint32_t seq = 0;
    uint64_t pts = 0;
    struct timespec frame = {0, 40 * 1000 * 1000}; /* 25 fps pacing, like an encoder */
    (void)arg;
    for (;;) {
        int go, rc;
        iv_cm_venc_pack_s v;
        iv_cm_aenc_pack_s a;
        pthread_mutex_lock(&lock);
        go = streaming;
        if (!running) {
            pthread_mutex_unlock(&lock);
            break;
        }
        pthread_mutex_unlock(&lock);
        if (go) {
            v.pu8Addr = seq % 50 == 0 ? idr : pframe;
            v.u32Len = seq % 50 == 0 ? (uint32_t)sizeof idr : (uint32_t)sizeof pframe;
            v.u64PTS = pts;
            v.eFrameType = seq % 50 == 0 ? IV_CM_FRAME_TYPE_I : IV_CM_FRAME_TYPE_P;
            v.u32Seq = seq;
            rc = iv_cs_push_stream(CS_SINGLE_CH, IV_CM_STREAM_TYPE_VIDEO, &v);
            if (rc != IV_ERR_NONE && seq % 50 == 0) printf("push: %d\n", rc);
            a.pu8Addr = aac;
            a.u32Len = sizeof aac;
            a.u64PTS = pts;
            a.u32Seq = seq;
            iv_cs_push_stream(CS_SINGLE_CH, IV_CM_STREAM_TYPE_AUDIO, &a);
            seq++;
            pts += 40;
        }
        nanosleep(&frame, NULL);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int seconds = argc > 1 ? atoi(argv[1]) : 3;
    iv_cs_balance_info_s balance;
    iv_cs_channel_params_s ch;
    iv_cs_init_parm_s init;
    pthread_t capture;
    struct timespec until;
    int rc;

    printf("libivcs %s\n", ivcs_host_version());

    /* One blocking query at start; later alarms read the cache. */
    memset(&balance, 0, sizeof balance);
    rc = iv_cs_get_balance_info(CS_SINGLE_CH, &balance, 5);
    printf("balance: rc %d, type %d, days %d\n", rc, (int)balance.cs_type, balance.cs_days);

    memset(&ch, 0, sizeof ch);
    ch.channel_id = CS_SINGLE_CH;
    ch.u32MaxGopSize = 800 * 1024;
    ch.av_fmt.eAudioType = IV_CM_AENC_TYPE_AAC;
    ch.av_fmt.u32AudioCodecOption = IV_CM_AAC_TYPE_LC;
    ch.av_fmt.eAudioMode = IV_CM_AENC_MODE_MONO;
    ch.av_fmt.eAudioBitWidth = IV_CM_AENC_BIT_WIDTH_16;
    ch.av_fmt.eAudioSampleRate = IV_CM_AENC_SAMPLE_RATE_16000;
    ch.av_fmt.u32SampleNumPerFrame = 1024;
    ch.av_fmt.eVideoType = IV_CM_VENC_TYPE_H264;
    ch.av_fmt.u32VideoWidth = 640;
    ch.av_fmt.u32VideoHeight = 360;
    ch.av_fmt.u32Framerate = 25;
    ch.cs_fmt = IV_CS_FORMAT_TS;
    ch.event_report_opt = CS_EVENT_VIDEO_OR_PIC_REQ;

    memset(&init, 0, sizeof init);
    init.channel_num = 1;
    init.ch_params = &ch;
    init.func_cb.iv_cs_push_stream_start_cb = on_start;
    init.func_cb.iv_cs_push_stream_stop_cb = on_stop;
    init.func_cb.iv_cs_event_capture_picture_cb = on_capture;
    init.func_cb.iv_cs_event_picture_result_cb = on_picture_result;
    init.func_cb.iv_cs_event_report_result_cb = on_event_result;
    init.func_cb.iv_cs_notify_cb = on_notify;
    rc = iv_cs_init(&init);
    printf("iv_cs_init: %d\n", rc);
    if (rc != IV_ERR_NONE) return 1;

    pthread_create(&capture, NULL, capture_thread, NULL);

    /* An alarm: record an event if the plan allows, else report a picture. */
    if (iv_cs_get_balance_info(CS_SINGLE_CH, &balance, 0) == IV_ERR_NONE &&
        balance.cs_type != CS_TYPE_NONE && balance.cs_switch) {
        rc = iv_cs_event_start_ext(CS_SINGLE_CH, 1, "motion", 0, 5);
        printf("event start: %d\n", rc);
        rc = iv_cs_event_stop_ext(CS_SINGLE_CH, 1, "motion", 0, 0);
        printf("event stop: %d\n", rc);
    } else {
        rc = iv_cs_event_directly_report(CS_SINGLE_CH, 2, "doorbell", 0, jpeg, sizeof jpeg);
        printf("direct report: %d\n", rc);
    }

    /* Let the camera run, then wait for pictures to come back. */
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += seconds;
    pthread_mutex_lock(&lock);
    while (pthread_cond_timedwait(&changed, &lock, &until) == 0) {
    }
    running = 0;
    pthread_mutex_unlock(&lock);
    pthread_join(capture, NULL);

    rc = iv_cs_exit();
    printf("iv_cs_exit: %d\n", rc);
    ivcs_host_shutdown();
    return 0;
}
