/*
 * Data-flow tests of libivcs from C, run by tests/libivcs_flow.rs against the
 * real cloud (`ivcs cloud serve`). The program is the firmware: it pushes
 * real H.264 + AAC access units read from a frames file the Rust driver
 * wrote (see `load_frames`), reacts to callbacks, saves what dump_file_cb
 * exports and backs it up again. One scenario per argv[1]:
 *
 *   flow FRAMES DUMPDIR        full-time: 25 s pushed, segments acknowledged
 *   events FRAMES JPEG         event plan: pre-record, events 1 and 32 with
 *                              pictures, push start/stop, results 1
 *   noplan FRAMES              -607 without a plan; full-time, then none
 *                              mid-stream: push_stream_stop_cb, then -607
 *   killed FRAMES DUMPDIR      cloud killed and restarted mid-upload; failed
 *                              segments backed up from the dump
 *   watermarks FRAMES          a bandwidth cap raises LOW/WARN/HIGH, lifting
 *                              it drains and reports LOW
 *   deliver FRAMES DUMPDIR KEYS
 *                              engine updates from the cloud while a second
 *                              thread pushes: the driver publishes one signed
 *                              by an unknown key (refused), then the vendor's
 *                              (swapped); no push refused, segments after
 *   swap FRAMES DUMPDIR KEYS GOOD UNSIGNED TAMPERED OTHERKEY
 *                              ivcs_host_engine_update mid-stream from a
 *                              second thread: refusals first (no keys,
 *                              unsigned, tampered, unknown key), then GOOD
 *                              with events 1 and 7 open; no push refused,
 *                              segments acknowledged after, events reported
 *                              once each
 *   refuse FRAMES DUMPDIR KEYS ARTIFACT RC
 *                              an update mid-stream answered RC at once, no
 *                              push refused, the running engine records on
 *   contain FRAMES DUMPDIR KEYS ARTIFACT
 *                              an update to an engine that turns hostile:
 *                              contained (restarts with notifies), rolled
 *                              back, pushes answered, recording goes on
 *   start FRAMES KEYS          records until a segment is acknowledged (the
 *                              engine file from the environment)
 *   powerloss FRAMES KEYS ARTIFACT
 *                              an update mid-stream; the library kills the
 *                              process at IVCS_TEST_KILL_AT in persisting it
 *
 * Protocol with the driver (stdout, line by line): `SLICE`, `DUMP`,
 * `NOTIFY`, `EVENT_RESULT` lines report what the callbacks saw; `NEED X`
 * asks the driver to act on the cloud (plan, kill, restart, cap, uncap) and
 * waits for its answer on stdin. Waits are on condition variables with a
 * deadline. The camera is paced (frames at PTS / pace on the monotonic
 * clock) where wall-clock time matters to what is checked (pre-record);
 * elsewhere frames go as fast as the library takes them.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "iv_cs.h"
#include "ivcs_host.h"
#include "frames_file.h"
#include "check.h"

/* ---- frames file (frames_file.h); the first video frame must be an IDR with
 * SPS/PPS. */

static frame_t *frames;
static size_t n_frames;
static uint64_t frames_span_ms; /* loop length: last PTS + one video frame */

static void load_frames(const char *path) {
    size_t i;
    frames = load_frames_file(path, &n_frames);
    for (i = 0; i < n_frames; i++)
        if (frames[i].kind == 1 && frames[i].pts + 40 > frames_span_ms) frames_span_ms = frames[i].pts + 40;
    CHECK(frames[0].kind == 1 && frames[0].type == 0);
}

/* ---- what the callbacks saw -------------------------------------------------- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

#define MAX_SLICES 4096
typedef struct {
    int ch;
    iv_cs_upload_slice_info_s s;
} slice_t;
static slice_t slices[MAX_SLICES];
static int n_slices, n_ok_slices[5], n_err_slices[5];
static int n_start[5], n_stop[5];
static int n_kind[5][IV_CS_MSG_BUTT];
static int marks[256], n_marks; /* watermark kinds in order (channel 0) */
static int n_captures, n_pic_results, bad_pic_result;
static int n_results, result_ids[64], result_codes[64];
static int bad_dump;
/* A trap restart resumes from a checkpoint, which cuts the open segment:
   its dump gets no END. Allowed only where engines trap (hostile); a swap
   hands the open segment over, so there a second START is a failure. */
static int cuts_allowed, abandoned_dumps;
static int rollback_started, rollback_done; /* the library's log said so */
static const char *dump_dir;
static FILE *dump_part[5];
static uint64_t dump_bytes[5];
static uint8_t *jpeg;
static uint32_t jpeg_len;

static void changed(void) {
    pthread_cond_broadcast(&cv);
}

/* Waits until pred() holds or `seconds` pass (called with mu held). */
static int wait_until(int (*pred)(void), int seconds) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += seconds;
    while (!pred()) {
        if (pthread_cond_timedwait(&cv, &mu, &until) == ETIMEDOUT) return pred();
    }
    return 1;
}

static int on_start(iv_cs_chn_e ch) {
    pthread_mutex_lock(&mu);
    if (ch < 5) n_start[ch]++;
    changed();
    pthread_mutex_unlock(&mu);
    printf("PUSH_START %d\n", (int)ch);
    return 0;
}

static int on_stop(iv_cs_chn_e ch) {
    pthread_mutex_lock(&mu);
    if (ch < 5) n_stop[ch]++;
    changed();
    pthread_mutex_unlock(&mu);
    printf("PUSH_STOP %d\n", (int)ch);
    return 0;
}

static int on_notify(iv_cs_chn_e ch, iv_cs_notify_msg_type_e t, iv_cs_notify_msg_data *d) {
    int i;
    CHECK(ch < 5 && t < IV_CS_MSG_BUTT);
    CHECK(d != NULL && d->av_result_info != NULL);
    pthread_mutex_lock(&mu);
    n_kind[ch][t]++;
    if (t == IV_CS_AV_UPLOAD_STATE_MSG) {
        iv_cs_upload_info_s *u = d->av_result_info;
        /* At most MAX_UPLOAD_INFO_NUM slices per call, at least one. */
        CHECK(u->num >= 1 && u->num <= MAX_UPLOAD_INFO_NUM);
        for (i = 0; i < u->num; i++) {
            iv_cs_upload_slice_info_s *s = &u->slice_info[i];
            if (s->state == IV_CS_UPLOAD_OK) {
                CHECK(s->upload_size == s->total_size && s->total_size > 0);
                n_ok_slices[ch]++;
            } else {
                CHECK(s->state == IV_CS_UPLOAD_ERR && s->upload_size <= s->total_size);
                n_err_slices[ch]++;
            }
            CHECK(s->utc_sec_a <= s->utc_sec_b && s->pts_ms_a <= s->pts_ms_b &&
                  s->frame_seq_a <= s->frame_seq_b);
            if (n_slices < MAX_SLICES) {
                slices[n_slices].ch = (int)ch;
                slices[n_slices].s = *s;
                n_slices++;
            }
            printf("SLICE %d %s %llu %llu %llu %llu %u %u %u %u\n", (int)ch,
                   s->state == IV_CS_UPLOAD_OK ? "ok" : "err", (unsigned long long)s->utc_sec_a,
                   (unsigned long long)s->utc_sec_b, (unsigned long long)s->pts_ms_a,
                   (unsigned long long)s->pts_ms_b, s->frame_seq_a, s->frame_seq_b,
                   s->upload_size, s->total_size);
        }
    } else {
        if (ch == 0 && t >= IV_CS_AV_UPLOAD_WATERMARK_LOW && t <= IV_CS_AV_UPLOAD_WATERMARK_HIGH &&
            n_marks < 256)
            marks[n_marks++] = (int)t;
        printf("NOTIFY %d %d\n", (int)ch, (int)t);
    }
    changed();
    pthread_mutex_unlock(&mu);
    return 0;
}

/* Saves the dump like firmware would: DUMPDIR/chN.part while it runs,
   renamed to the file name at END. */
static int on_dump(iv_cs_chn_e ch, iv_cs_up_bk_state_e st, uint64_t start_ts, uint64_t end_ts,
                   char *name, uint8_t *buf, uint32_t len) {
    char part[1024], path[1024];
    int bad = 0;
    if (ch >= 5 || dump_dir == NULL) return 0;
    snprintf(part, sizeof part, "%s/ch%d.part", dump_dir, (int)ch);
    switch (st) {
    case CS_UP_BK_START:
        /* The spec: no name, no data, end 0; one file at a time per channel. */
        if (dump_part[ch] != NULL && cuts_allowed) {
            pthread_mutex_lock(&mu);
            abandoned_dumps++;
            pthread_mutex_unlock(&mu);
            fclose(dump_part[ch]);
            dump_part[ch] = NULL;
        }
        bad = name != NULL || buf != NULL || len != 0 || end_ts != 0 || start_ts == 0 ||
              dump_part[ch] != NULL;
        if (dump_part[ch]) fclose(dump_part[ch]);
        dump_part[ch] = fopen(part, "wb");
        dump_bytes[ch] = 0;
        break;
    case CS_UP_BK_RUNNING:
        bad = name != NULL || buf == NULL || len == 0 || end_ts != 0 || dump_part[ch] == NULL;
        if (!bad) {
            CHECK(fwrite(buf, 1, len, dump_part[ch]) == len);
            dump_bytes[ch] += len;
        }
        break;
    case CS_UP_BK_END:
        bad = name == NULL || buf != NULL || len != 0 || end_ts < start_ts ||
              dump_part[ch] == NULL || strchr(name, '/') != NULL;
        if (!bad) {
            fclose(dump_part[ch]);
            dump_part[ch] = NULL;
            snprintf(path, sizeof path, "%s/%s", dump_dir, name);
            CHECK(rename(part, path) == 0);
            printf("DUMP %d %s %llu %llu %llu\n", (int)ch, name, (unsigned long long)start_ts,
                   (unsigned long long)end_ts, (unsigned long long)dump_bytes[ch]);
        }
        break;
    default:
        bad = 1;
    }
    if (bad) {
        fprintf(stderr, "bad dump_file_cb call: state %d name %s buf %p len %u start %llu end %llu\n",
                (int)st, name ? name : "(null)", (void *)buf, len, (unsigned long long)start_ts,
                (unsigned long long)end_ts);
        pthread_mutex_lock(&mu);
        bad_dump++;
        pthread_mutex_unlock(&mu);
    }
    return 0; /* firmware often returns 0: must not abort anything */
}

static int on_capture(iv_cs_chn_e ch, int32_t id, uint8_t **pic, int32_t *size) {
    (void)ch;
    (void)id;
    pthread_mutex_lock(&mu);
    n_captures++;
    pthread_mutex_unlock(&mu);
    *pic = jpeg;
    *size = (int32_t)jpeg_len;
    return 0;
}

static int on_pic_result(iv_cs_chn_e ch, uint8_t **pic, int32_t err) {
    (void)ch;
    (void)err;
    pthread_mutex_lock(&mu);
    if (pic == NULL || *pic != jpeg) bad_pic_result++;
    n_pic_results++;
    changed();
    pthread_mutex_unlock(&mu);
    return 0;
}

static int on_result(iv_cs_chn_e ch, iv_cs_event_result_info *r) {
    pthread_mutex_lock(&mu);
    if (n_results < 64) {
        result_ids[n_results] = r->event_id;
        result_codes[n_results] = r->result_code;
    }
    n_results++;
    changed();
    pthread_mutex_unlock(&mu);
    printf("EVENT_RESULT %d %d %d %u %u\n", (int)ch, (int)r->event_id, (int)r->result_code,
           r->start_time_s, r->end_time_s);
    return 0;
}

/* The library's log: printed as `LOG level message`; rollbacks noted. */
static void on_log(int level, const char *message, void *user) {
    (void)user;
    printf("LOG %d %s\n", level, message);
    pthread_mutex_lock(&mu);
    if (strstr(message, "rolling back to the previous engine") != NULL) rollback_started++;
    if (strstr(message, "rolled back: the previous engine serves") != NULL) rollback_done++;
    changed();
    pthread_mutex_unlock(&mu);
}

/* ---- init --------------------------------------------------------------------- */

static iv_cs_channel_params_s chans[5];

static iv_cs_init_parm_s params(uint32_t n, uint32_t budget) {
    iv_cs_init_parm_s p;
    uint32_t i;
    memset(&p, 0, sizeof p);
    memset(chans, 0, sizeof chans);
    for (i = 0; i < n; i++) {
        test_channel(&chans[i], (iv_cs_chn_e)i, budget, 640, 360, IV_CM_AENC_MODE_MONO,
                     IV_CM_AENC_SAMPLE_RATE_48000);
        chans[i].congestion_cfg.low_mark = budget / 10;
        chans[i].congestion_cfg.warn_mark = budget * 4 / 10;
        chans[i].congestion_cfg.high_mark = budget * 8 / 10;
        chans[i].congestion_cfg.enable = 1;
        chans[i].event_report_opt = CS_EVENT_VIDEO_REQ;
    }
    p.channel_num = n;
    p.ch_params = chans;
    p.func_cb.iv_cs_push_stream_start_cb = on_start;
    p.func_cb.iv_cs_push_stream_stop_cb = on_stop;
    p.func_cb.iv_cs_notify_cb = on_notify;
    p.func_cb.iv_cs_event_capture_picture_cb = on_capture;
    p.func_cb.iv_cs_event_picture_result_cb = on_pic_result;
    p.func_cb.iv_cs_event_report_result_cb = on_result;
    p.func_cb.iv_cs_dump_file_cb = on_dump;
    return p;
}

/* ---- the camera ---------------------------------------------------------------- */

typedef struct {
    iv_cs_chn_e ch;
    size_t i;          /* next frame */
    uint64_t base;     /* PTS added to the file's (loops continue the clock) */
    uint32_t vseq, aseq;
    int need_idr;      /* after a refused video frame: drop P frames until an I frame */
    double pace;       /* 0: as fast as possible; else PTS runs at pace x real time */
    struct timespec t0;
    uint64_t pts0;
    int paced;
    int video_ok, video_refused, video_dropped, audio_ok, audio_refused;
    int last_video_rc;
    int rc_hist[4]; /* -606, -607, -611, other */
} cam_t;

static void cam_init(cam_t *c, iv_cs_chn_e ch, double pace) {
    memset(c, 0, sizeof *c);
    c->ch = ch;
    c->pace = pace;
    c->base = 1000; /* PTS from any base */
}

static uint64_t cam_pts(const cam_t *c) {
    return c->base + frames[c->i].pts;
}

static void pace_to(cam_t *c, uint64_t pts) {
    struct timespec t;
    uint64_t ns;
    if (c->pace <= 0) return;
    if (!c->paced) {
        clock_gettime(CLOCK_MONOTONIC, &c->t0);
        c->pts0 = pts;
        c->paced = 1;
        return;
    }
    ns = (uint64_t)((double)(pts - c->pts0) * 1e6 / c->pace);
    t.tv_sec = c->t0.tv_sec + (time_t)(ns / 1000000000u);
    t.tv_nsec = c->t0.tv_nsec + (long)(ns % 1000000000u);
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    /* The camera's frame clock (not a wait for a condition). */
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR) {
    }
}

static void count_rc(cam_t *c, int rc) {
    if (rc == IV_ERR_CS_PRM_MALLOC_FAIL) c->rc_hist[0]++;
    else if (rc == IV_ERR_CS_APPLY_NO_SERVICE) c->rc_hist[1]++;
    else if (rc == IV_ERR_CS_NEED_IDR_FRAME) c->rc_hist[2]++;
    else c->rc_hist[3]++;
}

/* Pushes the next frame (or drops it, as firmware does after a refusal);
   returns the push result, or 1 when the frame was dropped. */
static int cam_step(cam_t *c) {
    frame_t *f = &frames[c->i];
    uint64_t pts = cam_pts(c);
    int rc;
    pace_to(c, pts);
    if (f->kind == 1) {
        iv_cm_venc_pack_s v;
        uint32_t seq = c->vseq++;
        if (c->need_idr && f->type != 0) {
            c->video_dropped++;
            rc = 1;
        } else {
            v.pu8Addr = f->data;
            v.u32Len = f->len;
            v.u64PTS = pts;
            v.eFrameType = f->type == 0 ? IV_CM_FRAME_TYPE_I : IV_CM_FRAME_TYPE_P;
            v.u32Seq = seq;
            rc = iv_cs_push_stream(c->ch, IV_CM_STREAM_TYPE_VIDEO, &v);
            c->last_video_rc = rc;
            if (rc == 0) {
                c->video_ok++;
                c->need_idr = 0;
            } else {
                c->video_refused++;
                c->need_idr = 1;
                count_rc(c, rc);
            }
        }
    } else {
        iv_cm_aenc_pack_s a;
        a.pu8Addr = f->data;
        a.u32Len = f->len;
        a.u64PTS = pts;
        a.u32Seq = c->aseq++;
        rc = iv_cs_push_stream(c->ch, IV_CM_STREAM_TYPE_AUDIO, &a);
        if (rc == 0) {
            c->audio_ok++;
        } else {
            c->audio_refused++;
            count_rc(c, rc);
        }
    }
    if (++c->i == n_frames) {
        c->i = 0;
        c->base += frames_span_ms;
    }
    return rc;
}

static void cam_report(const cam_t *c, const char *what) {
    printf("CAMERA %s ch=%d video_ok=%d video_refused=%d video_dropped=%d audio_ok=%d "
           "audio_refused=%d rc606=%d rc607=%d rc611=%d rc_other=%d\n",
           what, (int)c->ch, c->video_ok, c->video_refused, c->video_dropped, c->audio_ok,
           c->audio_refused, c->rc_hist[0], c->rc_hist[1], c->rc_hist[2], c->rc_hist[3]);
}

/* Pushes `ms` of media (by PTS); returns the number of refused video frames. */
static int cam_run(cam_t *c, uint64_t ms) {
    uint64_t end = cam_pts(c) + ms;
    int before = c->video_refused;
    while (cam_pts(c) < end) cam_step(c);
    if (c->video_refused != before) cam_report(c, "refusals");
    return c->video_refused - before;
}


/* Asks the driver to act on the cloud and waits for its "ok". */
static void need(const char *what) {
    char line[64];
    printf("NEED %s\n", what);
    fflush(stdout);
    CHECK(fgets(line, sizeof line, stdin) != NULL && strncmp(line, "ok", 2) == 0);
}

/* Events a and b were each reported once, successfully, and nothing else. */
static void reported_once(int a, int b) {
    int i, ok_a = 0, ok_b = 0;
    pthread_mutex_lock(&mu);
    for (i = 0; i < n_results && i < 64; i++) {
        if (result_ids[i] == a && result_codes[i] == 1) ok_a++;
        if (result_ids[i] == b && result_codes[i] == 1) ok_b++;
    }
    EXPECT(ok_a, 1);
    EXPECT(ok_b, 1);
    EXPECT(n_results, 2);
    pthread_mutex_unlock(&mu);
}

/* ---- predicates for wait_until (mu held) -------------------------------------- */

static int want_int;
static int started0(void) { return n_start[0] >= want_int; }
static int stopped0(void) { return n_stop[0] >= want_int; }
static int ok0(void) { return n_ok_slices[0] >= want_int; }
static int results_in(void) { return n_results >= want_int; }
static int pics_back(void) { return n_pic_results >= n_captures && n_captures >= want_int; }
static int recovered0(void) { return n_kind[0][IV_CS_AV_UPLOAD_CONNECT_RECOVER] >= want_int; }
static int rolled_back(void) { return rollback_done >= want_int; }
static int service_wrong0(void) { return n_kind[0][IV_CS_COS_SERVICE_WRONG] >= want_int; }
static int mark_seen(void) {
    int i;
    for (i = 0; i < n_marks; i++)
        if (marks[i] == want_int) return 1;
    return 0;
}
static int low_after_high(void) {
    int i, high = -1;
    for (i = 0; i < n_marks; i++) {
        if (marks[i] == IV_CS_AV_UPLOAD_WATERMARK_HIGH) high = i;
        if (high >= 0 && i > high && marks[i] == IV_CS_AV_UPLOAD_WATERMARK_LOW) return 1;
    }
    return 0;
}

static int wait_for(int (*pred)(void), int target, int seconds) {
    int r;
    pthread_mutex_lock(&mu);
    want_int = target;
    r = wait_until(pred, seconds);
    pthread_mutex_unlock(&mu);
    return r;
}

static int get(const int *v) {
    int r;
    pthread_mutex_lock(&mu);
    r = *v;
    pthread_mutex_unlock(&mu);
    return r;
}

static void finish(void) {
    pthread_mutex_lock(&mu);
    EXPECT(bad_dump, 0);
    EXPECT(bad_pic_result, 0);
    pthread_mutex_unlock(&mu);
    EXPECT(iv_cs_exit(), IV_ERR_NONE);
    EXPECT(ivcs_host_shutdown(), IV_ERR_NONE);
}

/* ---- scenarios -------------------------------------------------------------------- */

static void scenario_flow(void) {
    iv_cs_init_parm_s p = params(1, 2u << 20);
    cam_t c;
    EXPECT(iv_cs_init(&p), IV_ERR_NONE);
    CHECK(wait_for(started0, 1, 60));
    /* 25 s of video at 25 fps (+ AAC): every frame accepted. */
    cam_init(&c, CS_SINGLE_CH, 8.0);
    EXPECT(cam_run(&c, 25000), 0);
    cam_report(&c, "flow");
    EXPECT(c.audio_refused, 0);
    /* Segments closed at ~10 s and ~20 s are acknowledged. */
    CHECK(wait_for(ok0, 2, 60));
    finish();
    printf("flow ok\n");
}

static void scenario_events(void) {
    iv_cs_init_parm_s p = params(1, 2u << 20);
    cam_t c;
    struct timespec now;
    iv_cs_balance_info_s b;
    /* Firmware asks for the plan once, blocking, at start (ABI.md). */
    EXPECT(iv_cs_get_balance_info(CS_SINGLE_CH, &b, 5), IV_ERR_NONE);
    EXPECT(b.cs_type, CS_TYPE_EVENT);
    EXPECT(iv_cs_init(&p), IV_ERR_NONE);
    /* An event plan: no push_stream_start_cb, but frames feed the pre-record
       ring. Real-time pace: pre-record is measured in wall-clock seconds. */
    cam_init(&c, CS_SINGLE_CH, 1.0);
    EXPECT(cam_run(&c, 6000), 0);
    EXPECT(c.audio_refused, 0);
    EXPECT(get(&n_start[0]), 0);
    clock_gettime(CLOCK_REALTIME, &now);
    printf("EVENT1_CALL_MS %lld\n", (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
    /* Video from 4 s before the call (relative times). */
    EXPECT(iv_cs_event_start_ext(CS_SINGLE_CH, 1, "motion", 0, 4), IV_ERR_NONE);
    EXPECT(iv_cs_event_start_ext(CS_SINGLE_CH, 1, "motion", 0, 0), IV_ERR_CS_EVENT_IS_VALID);
    CHECK(wait_for(started0, 1, 60));
    c.pace = 4.0;
    c.paced = 0;
    EXPECT(cam_run(&c, 3000), 0);
    /* A parallel event with the highest id: no pre-record (the spec). */
    EXPECT(iv_cs_event_start(CS_SINGLE_CH, 32, "door"), IV_ERR_NONE);
    EXPECT(cam_run(&c, 2000), 0);
    EXPECT(iv_cs_event_stop_ext(CS_SINGLE_CH, 1, "motion", 0, 0), IV_ERR_NONE);
    EXPECT(iv_cs_event_stop(CS_SINGLE_CH, 1, "motion"), IV_ERR_CS_EVENT_IS_VALID);
    EXPECT(cam_run(&c, 1000), 0);
    EXPECT(get(&n_stop[0]), 0); /* event 32 still open */
    EXPECT(iv_cs_event_stop(CS_SINGLE_CH, 32, "door"), IV_ERR_NONE);
    CHECK(wait_for(stopped0, 1, 60));
    EXPECT(get(&n_start[0]), 1);
    cam_report(&c, "events");
    /* Both results arrive, both successful; every picture comes back once. */
    CHECK(wait_for(results_in, 2, 90));
    CHECK(wait_for(pics_back, 2, 60));
    reported_once(1, 32);
    pthread_mutex_lock(&mu);
    EXPECT(n_pic_results, n_captures);
    pthread_mutex_unlock(&mu);
    finish();
    printf("events ok\n");
}

static void scenario_noplan(void) {
    iv_cs_init_parm_s p = params(1, 1u << 20);
    iv_cs_balance_info_s b;
    cam_t c;
    int n = 0;
    EXPECT(iv_cs_init(&p), IV_ERR_NONE);
    cam_init(&c, CS_SINGLE_CH, 0);
    /* No plan: refused at the gate, audio and video, once the cloud said so
       (until its first answer frames are held for pre-record). */
    EXPECT(iv_cs_get_balance_info(CS_SINGLE_CH, &b, 5), IV_ERR_NONE);
    EXPECT(cam_step(&c), IV_ERR_CS_APPLY_NO_SERVICE);
    while (frames[c.i].kind != 0) cam_step(&c);
    EXPECT(cam_step(&c), IV_ERR_CS_APPLY_NO_SERVICE);
    need("plan full-time");
    CHECK(wait_for(started0, 1, 60));
    cam_init(&c, CS_SINGLE_CH, 4.0);
    EXPECT(cam_run(&c, 4000), 0);
    need("plan none");
    /* Keep pushing (firmware's capture thread) until push_stream_stop_cb. */
    while (get(&n_stop[0]) == 0 && n++ < 25 * 120) cam_step(&c);
    EXPECT(get(&n_stop[0]), 1);
    /* From here on every frame is refused with -607. */
    while (frames[c.i].kind != 1 || frames[c.i].type != 0) cam_step(&c);
    EXPECT(cam_step(&c), IV_ERR_CS_APPLY_NO_SERVICE);
    /* The segment open at the change is still committed. */
    CHECK(wait_for(ok0, 1, 60));
    cam_report(&c, "noplan");
    finish();
    printf("noplan ok\n");
}

/* Backs up a dumped file in 8 KB chunks, paced like the spec's example
   (a chunk at a time; a chunk refused with -606 is sent again). */
static int backup(const char *name) {
    char path[1024];
    uint32_t len, off = 0;
    uint8_t *buf;
    int rc;
    snprintf(path, sizeof path, "%s/%s", dump_dir, name);
    buf = read_file(path, &len);
    rc = iv_cs_upload_backup_video(CS_SINGLE_CH, CS_UP_BK_START, (char *)name, NULL, 0);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    while (off < len) {
        uint32_t n = len - off < 8192 ? len - off : 8192;
        struct timespec pause = {0, 2000000};
        rc = iv_cs_upload_backup_video(CS_SINGLE_CH, CS_UP_BK_RUNNING, (char *)name, buf + off, n);
        if (rc == IV_ERR_CS_PRM_MALLOC_FAIL) {
            nanosleep(&pause, NULL); /* the spec's pacing: try the chunk again later */
            continue;
        }
        if (rc != 0) break;
        off += n;
    }
    if (rc == 0) rc = iv_cs_upload_backup_video(CS_SINGLE_CH, CS_UP_BK_END, (char *)name, NULL, 0);
    free(buf);
    return rc;
}

/* Dumped files of channel 0 by start second (a slice's utc_sec_a is its
   dump's start_ts / 1000). */
#define MAX_DUMPS 256
static struct {
    uint64_t start_s;
    char name[128];
} dumps_seen[MAX_DUMPS];
static int n_dumps_seen;

static int on_dump_indexed(iv_cs_chn_e ch, iv_cs_up_bk_state_e st, uint64_t start_ts,
                           uint64_t end_ts, char *name, uint8_t *buf, uint32_t len) {
    int r = on_dump(ch, st, start_ts, end_ts, name, buf, len);
    if (st == CS_UP_BK_END && name != NULL && ch == 0) {
        pthread_mutex_lock(&mu);
        if (n_dumps_seen < MAX_DUMPS) {
            dumps_seen[n_dumps_seen].start_s = start_ts / 1000;
            snprintf(dumps_seen[n_dumps_seen].name, sizeof dumps_seen[0].name, "%s", name);
            n_dumps_seen++;
        }
        pthread_mutex_unlock(&mu);
    }
    return r;
}

/* The dump of slice i when it is a failed segment of channel 0 firmware has
   a dump of, else NULL (a lost span from the overflow while the cloud is
   down is an err slice too, but has no file). Under mu. */
static const char *dump_of_failed(int i) {
    const char *name = NULL;
    int j;
    if (slices[i].ch != 0 || slices[i].s.state != IV_CS_UPLOAD_ERR || slices[i].s.total_size == 0)
        return NULL;
    for (j = 0; j < n_dumps_seen; j++)
        if (dumps_seen[j].start_s == slices[i].s.utc_sec_a) name = dumps_seen[j].name;
    return name;
}

/* Under mu. */
static int failed_dumped0(void) {
    int i;
    for (i = 0; i < n_slices; i++)
        if (dump_of_failed(i) != NULL) return 1;
    return 0;
}

static void scenario_killed(void) {
    /* A budget smaller than a 10 s segment: sent bytes are released, so a
       segment broken by the kill cannot be repeated from memory. */
    iv_cs_init_parm_s p = params(1, 64u << 10);
    cam_t c;
    int i, backed = 0;
    char name[128];
    p.func_cb.iv_cs_dump_file_cb = on_dump_indexed;
    EXPECT(iv_cs_init(&p), IV_ERR_NONE);
    EXPECT(iv_cs_set_trans_time(30000, 10000), IV_ERR_NONE);
    CHECK(wait_for(started0, 1, 60));
    cam_init(&c, CS_SINGLE_CH, 3.0);
    cam_run(&c, 10500);
    CHECK(wait_for(ok0, 1, 60));
    /* Seven seconds into the second segment, the cloud dies (kill -9). */
    cam_run(&c, 7000);
    need("kill");
    cam_run(&c, 4000);
    need("restart");
    cam_run(&c, 4000);
    CHECK(wait_for(recovered0, 1, 90));
    pthread_mutex_lock(&mu);
    CHECK(wait_until(failed_dumped0, 90));
    pthread_mutex_unlock(&mu);
    cam_report(&c, "killed");
    /* Firmware backs up every failed segment it has a dump of. */
    for (i = 0; i < get(&n_slices); i++) {
        const char *dump;
        pthread_mutex_lock(&mu);
        dump = dump_of_failed(i);
        snprintf(name, sizeof name, "%s", dump != NULL ? dump : "");
        pthread_mutex_unlock(&mu);
        if (name[0] == 0) continue;
        EXPECT(backup(name), IV_ERR_NONE);
        printf("BACKUP_OK %s\n", name);
        backed++;
    }
    CHECK(backed >= 1);
    finish();
    printf("killed ok\n");
}

static void scenario_watermarks(void) {
    iv_cs_init_parm_s p = params(1, 512u << 10);
    cam_t c;
    int k = 0;
    EXPECT(iv_cs_init(&p), IV_ERR_NONE);
    CHECK(wait_for(started0, 1, 60));
    cam_init(&c, CS_SINGLE_CH, 4.0);
    EXPECT(cam_run(&c, 2000), 0);
    /* The uplink is capped far below the stream's rate: the library's backlog
       grows through the marks. Frames as fast as taken. */
    need("cap");
    c.pace = 0;
    while (!(wait_for(mark_seen, IV_CS_AV_UPLOAD_WATERMARK_HIGH, 0) && c.rc_hist[0] > 0) &&
           k++ < 25 * 600)
        cam_step(&c);
    cam_report(&c, "stalled");
    CHECK(wait_for(mark_seen, IV_CS_AV_UPLOAD_WATERMARK_LOW, 0));
    CHECK(wait_for(mark_seen, IV_CS_AV_UPLOAD_WATERMARK_WARN, 0));
    CHECK(wait_for(mark_seen, IV_CS_AV_UPLOAD_WATERMARK_HIGH, 0));
    CHECK(c.rc_hist[0] > 0); /* overflow: -606, then dropped to the next IDR */
    need("uncap");
    /* Draining: LOW again once the backlog falls. */
    c.pace = 4.0;
    c.paced = 0;
    k = 0;
    while (!wait_for(low_after_high, 0, 0) && k++ < 25 * 60) cam_step(&c);
    CHECK(wait_for(low_after_high, 0, 60));
    cam_report(&c, "drained");
    finish();
    printf("watermarks ok\n");
}


/* ---- live engine update (ivcs_host_engine_update) ------------------------------ */

static const char *swap_keys, *swap_good, *swap_unsigned, *swap_tampered, *swap_otherkey;

static uint64_t mono_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* The camera thread: pushes until told to stop, timing every push. */
#define MAX_PUSHES 200000
static uint64_t push_at[MAX_PUSHES], push_ns[MAX_PUSHES];
static int push_rc[MAX_PUSHES];
static int n_pushes, stop_pushing;
static cam_t swap_cam;

static void *camera_thread(void *arg) {
    (void)arg;
    while (!get(&stop_pushing) && n_pushes < MAX_PUSHES) {
        uint64_t t0, t1;
        int rc;
        size_t i = swap_cam.i;
        if (frames[i].kind == 1 && swap_cam.need_idr && frames[i].type != 0) {
            cam_step(&swap_cam); /* dropped, not pushed */
            continue;
        }
        t0 = mono_ns();
        rc = cam_step(&swap_cam);
        t1 = mono_ns();
        pthread_mutex_lock(&mu);
        push_at[n_pushes] = t0;
        push_ns[n_pushes] = t1 - t0;
        push_rc[n_pushes] = rc;
        n_pushes++;
        pthread_mutex_unlock(&mu);
    }
    return NULL;
}

/* Longest push that overlapped [a, b], and refusals among them. */
static void pushes_during(uint64_t a, uint64_t b, uint64_t *longest, int *refused, int *count) {
    int i;
    *longest = 0;
    *refused = 0;
    *count = 0;
    pthread_mutex_lock(&mu);
    for (i = 0; i < n_pushes; i++) {
        if (push_at[i] + push_ns[i] < a || push_at[i] > b) continue;
        (*count)++;
        if (push_ns[i] > *longest) *longest = push_ns[i];
        if (push_rc[i] != 0) (*refused)++;
    }
    pthread_mutex_unlock(&mu);
}

/* An update that must be refused while pushes go on. */
static void refused_update(const char *what, const char *path, int want) {
    uint64_t t0 = mono_ns(), t1, longest;
    int refused, count, rc = ivcs_host_engine_update(path);
    t1 = mono_ns();
    pushes_during(t0, t1, &longest, &refused, &count);
    printf("REFUSED %s rc=%d ms=%.1f pushes=%d refused=%d\n", what, rc, (double)(t1 - t0) / 1e6,
           count, refused);
    EXPECT(rc, want);
    EXPECT(refused, 0);
}

static void scenario_swap(void) {
    iv_cs_init_parm_s p = params(1, 2u << 20);
    pthread_t cam;
    uint64_t t0, t1, longest, before_ns;
    int refused, count, ok_at_swap, before;
    EXPECT(iv_cs_init(&p), IV_ERR_NONE);
    CHECK(wait_for(started0, 1, 60));
    cam_init(&swap_cam, CS_SINGLE_CH, 4.0);
    CHECK(pthread_create(&cam, NULL, camera_thread, NULL) == 0);
    CHECK(wait_for(ok0, 1, 60));
    /* No keys yet: even a good artifact is refused. */
    refused_update("nokeys", swap_good, IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(ivcs_host_set_engine_keys("/nonexistent/keys.pub"), IV_ERR_CS_INIT_PRM_RANGE);
    EXPECT(ivcs_host_set_engine_keys(swap_keys), IV_ERR_NONE);
    EXPECT(ivcs_host_engine_update(NULL), IV_ERR_CS_INIT_PRM_NULL);
    refused_update("missing", "/nonexistent/engine.signed", IV_ERR_CS_UPLOAD_OPEN_FILE_FAIL);
    refused_update("unsigned", swap_unsigned, IV_ERR_CS_INIT_PRM_RANGE);
    refused_update("tampered", swap_tampered, IV_ERR_CS_INIT_PRM_RANGE);
    refused_update("otherkey", swap_otherkey, IV_ERR_CS_INIT_PRM_RANGE);
    /* The old engine still serves: segments keep being acknowledged. */
    before = get(&n_ok_slices[0]);
    CHECK(wait_for(ok0, before + 1, 60));
    /* Two events open across the swap: started before it, stopped after. */
    EXPECT(iv_cs_event_start(CS_SINGLE_CH, 1, "motion"), IV_ERR_NONE);
    EXPECT(iv_cs_event_start(CS_SINGLE_CH, 7, "door"), IV_ERR_NONE);
    /* The swap, mid-stream. */
    pthread_mutex_lock(&mu);
    before_ns = 0;
    {
        int i;
        for (i = 0; i < n_pushes; i++)
            if (push_ns[i] > before_ns) before_ns = push_ns[i];
    }
    pthread_mutex_unlock(&mu);
    t0 = mono_ns();
    EXPECT(ivcs_host_engine_update(swap_good), IV_ERR_NONE);
    t1 = mono_ns();
    ok_at_swap = get(&n_ok_slices[0]);
    pushes_during(t0, t1, &longest, &refused, &count);
    EXPECT(refused, 0);
    {
        /* Pushes queued behind the swap are taken in the next second. */
        uint64_t longest_after;
        int refused_after, count_after;
        struct timespec one = {1, 0};
        nanosleep(&one, NULL);
        pushes_during(t1, t1 + 1000000000u, &longest_after, &refused_after, &count_after);
        printf("SWAP ms=%.1f pushes_during=%d refused_during=%d longest_push_during_ms=%.2f "
               "pushes_next_1s=%d refused_next_1s=%d longest_push_next_1s_ms=%.2f "
               "longest_push_before_ms=%.2f\n",
               (double)(t1 - t0) / 1e6, count, refused, (double)longest / 1e6, count_after,
               refused_after, (double)longest_after / 1e6, (double)before_ns / 1e6);
    }
    /* The new engine knows the open events: a second start is -609, the
       stops are taken, and each is reported once, successful. */
    EXPECT(iv_cs_event_start(CS_SINGLE_CH, 1, "motion"), IV_ERR_CS_EVENT_IS_VALID);
    EXPECT(iv_cs_event_stop(CS_SINGLE_CH, 1, "motion"), IV_ERR_NONE);
    EXPECT(iv_cs_event_stop(CS_SINGLE_CH, 7, "door"), IV_ERR_NONE);
    /* The new engine records: two more segments acknowledged. */
    CHECK(wait_for(ok0, ok_at_swap + 2, 90));
    CHECK(wait_for(results_in, 2, 90));
    pthread_mutex_lock(&mu);
    stop_pushing = 1;
    pthread_mutex_unlock(&mu);
    CHECK(pthread_join(cam, NULL) == 0);
    cam_report(&swap_cam, "swap");
    {
        int i, refused_611 = 0, refused_other = 0;
        pthread_mutex_lock(&mu);
        for (i = 0; i < n_pushes; i++) {
            if (push_rc[i] == IV_ERR_CS_NEED_IDR_FRAME) refused_611++;
            else if (push_rc[i] != 0) refused_other++;
        }
        printf("PUSHES total=%d refused_611=%d refused_other=%d\n", n_pushes, refused_611,
               refused_other);
        pthread_mutex_unlock(&mu);
        /* The new engine continues the open segment where the old one
           stopped (its dump too: a second START would be flagged): no
           frame is refused, not even a P frame right after the swap. */
        EXPECT(refused_other, 0);
        EXPECT(refused_611, 0);
    }
    finish();
    reported_once(1, 7);
    printf("swap ok\n");
}

/* ---- hostile engines: refused or contained (hot-swap.md, "What is tested") ---- */

static void stop_camera(pthread_t cam) {
    pthread_mutex_lock(&mu);
    stop_pushing = 1;
    pthread_mutex_unlock(&mu);
    CHECK(pthread_join(cam, NULL) == 0);
}

/* Pushes refused with anything but -611 (one P frame after a new engine
   starts waits for an IDR) or -606 (frames queued behind a call the
   watchdog has not interrupted yet overflow the budget). */
static int refused_badly(void) {
    int i, bad = 0;
    pthread_mutex_lock(&mu);
    for (i = 0; i < n_pushes; i++)
        if (push_rc[i] != 0 && push_rc[i] != IV_ERR_CS_NEED_IDR_FRAME &&
            push_rc[i] != IV_ERR_CS_PRM_MALLOC_FAIL)
            bad++;
    pthread_mutex_unlock(&mu);
    return bad;
}

static void scenario_refuse(const char *keys, const char *artifact, int want) {
    iv_cs_init_parm_s p = params(1, 2u << 20);
    pthread_t cam;
    int before;
    EXPECT(ivcs_host_set_log_callback(on_log, NULL), IV_ERR_NONE);
    EXPECT(ivcs_host_set_engine_keys(keys), IV_ERR_NONE);
    EXPECT(iv_cs_init(&p), IV_ERR_NONE);
    CHECK(wait_for(started0, 1, 60));
    cam_init(&swap_cam, CS_SINGLE_CH, 4.0);
    CHECK(pthread_create(&cam, NULL, camera_thread, NULL) == 0);
    CHECK(wait_for(ok0, 1, 60));
    refused_update("hostile", artifact, want);
    /* Nothing stopped: the running engine goes on recording. */
    before = get(&n_ok_slices[0]);
    CHECK(wait_for(ok0, before + 1, 60));
    stop_camera(cam);
    cam_report(&swap_cam, "refuse");
    EXPECT(get(&n_kind[0][IV_CS_COS_SERVICE_WRONG]), 0);
    EXPECT(get(&n_err_slices[0]), 0);
    EXPECT(refused_badly(), 0);
    finish();
    printf("refuse ok\n");
}

static void scenario_contain(const char *keys, const char *artifact) {
    iv_cs_init_parm_s p = params(1, 2u << 20);
    pthread_t cam;
    uint64_t t0;
    int ok_at_rollback, pushes_at_rollback;
    EXPECT(ivcs_host_set_log_callback(on_log, NULL), IV_ERR_NONE);
    EXPECT(ivcs_host_set_engine_keys(keys), IV_ERR_NONE);
    EXPECT(iv_cs_init(&p), IV_ERR_NONE);
    CHECK(wait_for(started0, 1, 60));
    cam_init(&swap_cam, CS_SINGLE_CH, 4.0);
    CHECK(pthread_create(&cam, NULL, camera_thread, NULL) == 0);
    CHECK(wait_for(ok0, 1, 60));
    cuts_allowed = 1;
    /* The update is taken: the engine turns hostile only after a while. */
    EXPECT(ivcs_host_engine_update(artifact), IV_ERR_NONE);
    t0 = mono_ns();
    /* Contained: each failure restarts it (firmware told), until probation
       rolls back to the previous engine. */
    CHECK(wait_for(service_wrong0, 1, 120));
    CHECK(wait_for(rolled_back, 1, 120));
    printf("CONTAIN rollback_after_ms=%.0f service_wrong=%d restarts_logged=%d\n",
           (double)(mono_ns() - t0) / 1e6, get(&n_kind[0][IV_CS_COS_SERVICE_WRONG]),
           get(&rollback_started));
    /* The previous engine records: two more segments acknowledged, and
       pushes are answered all along. */
    ok_at_rollback = get(&n_ok_slices[0]);
    pushes_at_rollback = get(&n_pushes);
    CHECK(wait_for(ok0, ok_at_rollback + 2, 90));
    stop_camera(cam);
    cam_report(&swap_cam, "contain");
    CHECK(get(&n_pushes) > pushes_at_rollback);
    EXPECT(get(&rollback_done), 1);
    EXPECT(refused_badly(), 0);
    finish();
    printf("contain ok\n");
}

static void scenario_start(const char *keys) {
    iv_cs_init_parm_s p = params(1, 2u << 20);
    cam_t c;
    EXPECT(ivcs_host_set_log_callback(on_log, NULL), IV_ERR_NONE);
    EXPECT(ivcs_host_set_engine_keys(keys), IV_ERR_NONE);
    EXPECT(iv_cs_init(&p), IV_ERR_NONE);
    CHECK(wait_for(started0, 1, 60));
    cam_init(&c, CS_SINGLE_CH, 4.0);
    while (get(&n_ok_slices[0]) < 1 && c.video_ok < 25 * 120) cam_step(&c);
    CHECK(wait_for(ok0, 1, 60));
    cam_report(&c, "start");
    finish();
    printf("start ok\n");
}

static void scenario_powerloss(const char *keys, const char *artifact) {
    iv_cs_init_parm_s p = params(1, 2u << 20);
    pthread_t cam;
    EXPECT(ivcs_host_set_log_callback(on_log, NULL), IV_ERR_NONE);
    EXPECT(ivcs_host_set_engine_keys(keys), IV_ERR_NONE);
    EXPECT(iv_cs_init(&p), IV_ERR_NONE);
    CHECK(wait_for(started0, 1, 60));
    cam_init(&swap_cam, CS_SINGLE_CH, 4.0);
    CHECK(pthread_create(&cam, NULL, camera_thread, NULL) == 0);
    CHECK(wait_for(ok0, 1, 60));
    printf("UPDATING\n");
    /* The library kills the process while it writes the update to disk. */
    EXPECT(ivcs_host_engine_update(artifact), IV_ERR_NONE);
    stop_camera(cam);
    finish();
    printf("powerloss survived\n");
}

/* ---- live engine update delivered by the cloud --------------------------------- */

/* The library reports each outcome to the cloud and then logs "reported X":
   the log callback turns those lines into conditions to wait on. */
static int n_reported_refused, n_reported_swapped;

static void deliver_log(int level, const char *message, void *user) {
    (void)user;
    if (level <= 1) fprintf(stderr, "libivcs: %s\n", message);
    pthread_mutex_lock(&mu);
    if (strstr(message, "reported refused") != NULL) n_reported_refused++;
    if (strstr(message, "reported swapped") != NULL) n_reported_swapped++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static int refused_reported(void) { return n_reported_refused >= want_int; }
static int swapped_reported(void) { return n_reported_swapped >= want_int; }

static void scenario_deliver(void) {
    iv_cs_init_parm_s p = params(1, 2u << 20);
    pthread_t cam;
    int ok_at_swap;
    EXPECT(ivcs_host_set_log_level(2), IV_ERR_NONE);
    EXPECT(ivcs_host_set_log_callback(deliver_log, NULL), IV_ERR_NONE);
    EXPECT(ivcs_host_set_engine_keys(swap_keys), IV_ERR_NONE);
    EXPECT(iv_cs_init(&p), IV_ERR_NONE);
    CHECK(wait_for(started0, 1, 60));
    cam_init(&swap_cam, CS_SINGLE_CH, 4.0);
    CHECK(pthread_create(&cam, NULL, camera_thread, NULL) == 0);
    CHECK(wait_for(ok0, 1, 60));
    /* Signed by a key the device does not trust: downloaded, refused. */
    need("publish-other");
    CHECK(wait_for(refused_reported, 1, 60));
    need("check-refused");
    /* The vendor's: downloaded, verified, swapped while the camera pushes. */
    need("publish-good");
    CHECK(wait_for(swapped_reported, 1, 90));
    ok_at_swap = get(&n_ok_slices[0]);
    need("check-swapped");
    /* The new engine records: two more segments acknowledged. */
    CHECK(wait_for(ok0, ok_at_swap + 2, 90));
    pthread_mutex_lock(&mu);
    stop_pushing = 1;
    pthread_mutex_unlock(&mu);
    CHECK(pthread_join(cam, NULL) == 0);
    cam_report(&swap_cam, "deliver");
    {
        int i, refused_611 = 0, refused_other = 0;
        pthread_mutex_lock(&mu);
        for (i = 0; i < n_pushes; i++) {
            if (push_rc[i] == IV_ERR_CS_NEED_IDR_FRAME) refused_611++;
            else if (push_rc[i] != 0) refused_other++;
        }
        printf("PUSHES total=%d refused_611=%d refused_other=%d abandoned_dumps=%d\n", n_pushes,
               refused_611, refused_other, abandoned_dumps);
        pthread_mutex_unlock(&mu);
        /* As for a swap from a file: nothing refused, no dump abandoned. */
        EXPECT(refused_other, 0);
        EXPECT(refused_611, 0);
        EXPECT(get(&abandoned_dumps), 0);
    }
    finish();
    EXPECT(ivcs_host_set_log_callback(NULL, NULL), IV_ERR_NONE);
    printf("deliver ok\n");
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3) {
        fprintf(stderr, "usage: %s flow|events|noplan|killed|watermarks|swap|refuse|contain|start|powerloss|deliver "
                "FRAMES [ARGS]\n",
                argv[0]);
        return 2;
    }
    load_frames(argv[2]);
    if (strcmp(mode, "flow") == 0 && argc > 3) {
        dump_dir = argv[3];
        scenario_flow();
    } else if (strcmp(mode, "events") == 0 && argc > 3) {
        jpeg = read_file(argv[3], &jpeg_len);
        scenario_events();
    } else if (strcmp(mode, "noplan") == 0) {
        scenario_noplan();
    } else if (strcmp(mode, "killed") == 0 && argc > 3) {
        dump_dir = argv[3];
        scenario_killed();
    } else if (strcmp(mode, "swap") == 0 && argc > 8) {
        dump_dir = argv[3];
        swap_keys = argv[4];
        swap_good = argv[5];
        swap_unsigned = argv[6];
        swap_tampered = argv[7];
        swap_otherkey = argv[8];
        scenario_swap();
    } else if (strcmp(mode, "refuse") == 0 && argc > 6) {
        dump_dir = argv[3];
        scenario_refuse(argv[4], argv[5], atoi(argv[6]));
    } else if (strcmp(mode, "contain") == 0 && argc > 5) {
        dump_dir = argv[3];
        scenario_contain(argv[4], argv[5]);
    } else if (strcmp(mode, "start") == 0 && argc > 3) {
        scenario_start(argv[3]);
    } else if (strcmp(mode, "powerloss") == 0 && argc > 4) {
        scenario_powerloss(argv[3], argv[4]);
    } else if (strcmp(mode, "deliver") == 0 && argc > 4) {
        dump_dir = argv[3];
        swap_keys = argv[4];
        scenario_deliver();
    } else if (strcmp(mode, "watermarks") == 0) {
        scenario_watermarks();
    } else {
        fprintf(stderr, "unknown scenario %s\n", mode);
        return 2;
    }
    return 0;
}
