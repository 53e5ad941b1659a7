/*
 * libivcs called the way public camera firmware calls the original SDK (not
 * the way our own docs describe it), run by tests/libivcs_c.rs against the
 * real cloud, under AddressSanitizer. Every callback does what that firmware
 * does:
 *
 *   - start/stop set a flag and return at once;
 *   - event_capture_picture_cb hands over a calloc'ed JPEG;
 *   - event_picture_result_cb does `if (*pic) free(*pic);` (whatever pointer
 *     it gets: a picture handed back twice, or one that was never handed
 *     over, is a crash);
 *   - iv_cs_event_directly_report gets a calloc'ed JPEG that the caller
 *     frees right after the call returns, or a static buffer;
 *   - privacy mode is iv_cs_exit(), with no wait for uploads;
 *   - pre-record without pushing while idle: on an alarm,
 *     iv_cs_event_start_ext(ch, id, info, 0, pre) with relative seconds,
 *     then, after push_stream_start_cb, the camera's own ring replayed from
 *     the IDR `pre` seconds back with the frames' capture PTS, paced at real
 *     time, until push_stream_stop_cb.
 *
 * Scenarios (argv[1]):
 *   pictures JPEG   direct reports (heap, freed after the call; static), then
 *                   NEED plan-event and an event whose picture is captured
 *   exit FRAMES     full-time: one loop of the frames file, iv_cs_exit; when
 *                   the library logs that the drain delivered everything, NEED
 *                   drained (the driver checks the cloud); no firmware callback
 *                   after exit returned
 *   replay FRAMES   event plan: 4 s of pre-record replayed as above; prints
 *                   ALARM and STOP (UTC ms) for the driver's export check
 *   stream FRAMES VCODEC WIDTH HEIGHT AUDIO RATE CHANNELS SAMPLES PACE FORMAT
 *                   full-time: the frames file pushed once, as it is (the
 *                   driver wrote the habit into it: G.711/PCM packs of 160 or
 *                   320 samples, AUD/SEI, slices, a resolution change, PTS
 *                   in microseconds or wrapping), 25 fps at PACE x real
 *                   time, into FORMAT (ts or fmp4) segments; a refused
 *                   frame makes the camera drop P frames until the next I
 *                   frame; then iv_cs_exit and NEED drained. VCODEC h264 or
 *                   h265; AUDIO none, aac, g711a, g711u or pcm16, declared
 *                   with RATE, CHANNELS and SAMPLES (u32SampleNumPerFrame)
 *   early FRAMES    event plan, with the cloud unreachable (the driver holds
 *                   its traffic): pushes from iv_cs_init on without asking
 *                   for the balance, NEED release, then an alarm whose
 *                   pre-record reaches back before the first frame; prints
 *                   EARLY_BALANCE (the cached read's result while held),
 *                   ALARM and STOP
 *
 * stdout lines: `EXIT rc ms`, `ALARM ms`, `STOP ms`, `PUSHED ...`, `LOG
 * level message` (warnings and errors), `NEED what` (answered `ok` on
 * stdin), `... ok` at the end.
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

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int started, stopped, captures, pic_results, exited, after_exit, delivered;
static uint8_t *jpeg;
static uint32_t jpeg_len;
static frame_t *frames; /* static: reachable to the leak checker until exit */

static uint64_t utc_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static uint64_t mono_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* The camera's frame clock (not a wait for a condition). */
static void sleep_until_mono(uint64_t ms) {
    struct timespec t;
    t.tv_sec = (time_t)(ms / 1000u);
    t.tv_nsec = (long)(ms % 1000u) * 1000000L;
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR) {
    }
}

/* A callback seen: counted as a violation once exit has returned. */
static void seen(int *counter) {
    pthread_mutex_lock(&mu);
    if (counter != NULL) (*counter)++;
    if (exited) after_exit++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

/* Waits until *v >= want, at most `seconds`. */
static int wait_count(const int *v, int want, int seconds) {
    struct timespec until;
    int ok;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += seconds;
    pthread_mutex_lock(&mu);
    while (*v < want && pthread_cond_timedwait(&cv, &mu, &until) != ETIMEDOUT) {
    }
    ok = *v >= want;
    pthread_mutex_unlock(&mu);
    return ok;
}

static int on_start(iv_cs_chn_e ch) {
    (void)ch;
    seen(&started);
    return 0;
}

static int on_stop(iv_cs_chn_e ch) {
    (void)ch;
    seen(&stopped);
    return 0;
}

static int on_capture(iv_cs_chn_e ch, int32_t event_id, uint8_t **pic, int32_t *size) {
    uint8_t *buf;
    (void)ch;
    (void)event_id;
    if (jpeg == NULL) return -1; /* no snapshot: nothing handed over */
    buf = calloc(1, jpeg_len);
    if (buf == NULL) return -1;
    memcpy(buf, jpeg, jpeg_len);
    *pic = buf;
    *size = (int32_t)jpeg_len;
    seen(&captures);
    return 0;
}

static int on_picture_result(iv_cs_chn_e ch, uint8_t **pic, int32_t err) {
    (void)ch;
    (void)err;
    if (*pic) free(*pic);
    seen(&pic_results);
    return 0;
}

static int on_notify(iv_cs_chn_e ch, iv_cs_notify_msg_type_e t, iv_cs_notify_msg_data *d) {
    (void)ch;
    (void)t;
    (void)d;
    seen(NULL);
    return 0;
}

/* A debug tap: returns 0 whatever happens. */
static int on_dump(iv_cs_chn_e ch, iv_cs_up_bk_state_e st, uint64_t a, uint64_t b, char *name,
                   uint8_t *buf, uint32_t len) {
    (void)ch;
    (void)st;
    (void)a;
    (void)b;
    (void)name;
    (void)buf;
    (void)len;
    seen(NULL);
    return 0;
}

/* The library's log (not a firmware callback: it may run after exit). */
static void on_log(int level, const char *message, void *user) {
    (void)user;
    if (level <= IVCS_LOG_WARN) printf("LOG %d %s\n", level, message);
    if (strstr(message, "everything recorded before exit is delivered") == NULL) return;
    pthread_mutex_lock(&mu);
    delivered++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

/* Waits until the library says the drain after exit delivered everything. */
static void wait_delivered(void) {
    CHECK(wait_count(&delivered, 1, 120));
}

static iv_cs_channel_params_s chan;

static iv_cs_init_parm_s params(uint32_t budget) {
    iv_cs_init_parm_s p;
    memset(&p, 0, sizeof p);
    test_channel(&chan, CS_SINGLE_CH, budget, 640, 360, IV_CM_AENC_MODE_MONO,
                 IV_CM_AENC_SAMPLE_RATE_48000);
    chan.event_report_opt = CS_EVENT_VIDEO_OR_PIC_REQ;
    p.channel_num = 1;
    p.ch_params = &chan;
    /* The optional callbacks public firmware leaves NULL stay NULL. */
    p.func_cb.iv_cs_push_stream_start_cb = on_start;
    p.func_cb.iv_cs_push_stream_stop_cb = on_stop;
    p.func_cb.iv_cs_event_capture_picture_cb = on_capture;
    p.func_cb.iv_cs_event_picture_result_cb = on_picture_result;
    p.func_cb.iv_cs_notify_cb = on_notify;
    p.func_cb.iv_cs_dump_file_cb = on_dump;
    return p;
}

static void need(const char *what) {
    char line[64];
    printf("NEED %s\n", what);
    fflush(stdout);
    CHECK(fgets(line, sizeof line, stdin) != NULL && strncmp(line, "ok", 2) == 0);
}

static int push(const frame_t *f, uint64_t pts, uint32_t seq) {
    if (f->kind == 1) {
        iv_cm_venc_pack_s v;
        v.pu8Addr = f->data;
        v.u32Len = f->len;
        v.u64PTS = pts;
        v.eFrameType = f->type == 0 ? IV_CM_FRAME_TYPE_I : IV_CM_FRAME_TYPE_P;
        v.u32Seq = seq;
        return iv_cs_push_stream(CS_SINGLE_CH, IV_CM_STREAM_TYPE_VIDEO, &v);
    } else {
        iv_cm_aenc_pack_s a;
        a.pu8Addr = f->data;
        a.u32Len = f->len;
        a.u64PTS = pts;
        a.u32Seq = seq;
        return iv_cs_push_stream(CS_SINGLE_CH, IV_CM_STREAM_TYPE_AUDIO, &a);
    }
}

/* ---- scenarios -------------------------------------------------------------- */

static void scenario_pictures(void) {
    static uint8_t static_jpeg[256 * 1024];
    iv_cs_init_parm_s p = params(512 * 1024);
    iv_cs_balance_info_s b;
    uint8_t *heap;
    CHECK(jpeg_len <= sizeof static_jpeg);
    EXPECT(iv_cs_init(&p), IV_ERR_NONE);
    /* No plan: the alarm becomes a direct report with a calloc'ed JPEG that
       firmware frees as soon as the call returns. */
    heap = calloc(1, jpeg_len);
    CHECK(heap != NULL);
    memcpy(heap, jpeg, jpeg_len);
    EXPECT(iv_cs_event_directly_report(CS_SINGLE_CH, 5, "doorbell", 0, heap, jpeg_len), IV_ERR_NONE);
    free(heap);
    /* A static buffer: never the library's to free. */
    memcpy(static_jpeg, jpeg, jpeg_len);
    EXPECT(iv_cs_event_directly_report(CS_SINGLE_CH, 6, "doorbell", 0, static_jpeg, jpeg_len),
           IV_ERR_NONE);
    /* Zero-filled (refused by its magic bytes): still the caller's. */
    memset(static_jpeg, 0, jpeg_len);
    EXPECT(iv_cs_event_directly_report(CS_SINGLE_CH, 7, "doorbell", 0, static_jpeg, jpeg_len),
           IV_ERR_CS_INIT_PRM_RANGE);
    /* With an event plan: the picture is captured and handed back once. */
    need("plan-event");
    EXPECT(iv_cs_get_balance_info(CS_SINGLE_CH, &b, 5), IV_ERR_NONE);
    EXPECT(b.cs_type, CS_TYPE_EVENT);
    EXPECT(iv_cs_event_start(CS_SINGLE_CH, 32, "motion"), IV_ERR_NONE);
    CHECK(wait_count(&pic_results, 1, 60));
    EXPECT(iv_cs_event_stop(CS_SINGLE_CH, 32, "motion"), IV_ERR_NONE);
    EXPECT(iv_cs_exit(), IV_ERR_NONE);
    EXPECT(ivcs_host_shutdown(), IV_ERR_NONE);
    pthread_mutex_lock(&mu);
    EXPECT(captures, 1);
    EXPECT(pic_results, 1);
    pthread_mutex_unlock(&mu);
    printf("pictures ok\n");
}

static void scenario_exit(size_t n) {
    iv_cs_init_parm_s p = params(4u << 20);
    uint64_t t0, pts0 = frames[0].pts, dt;
    uint32_t vseq = 0, aseq = 0;
    size_t i;
    int rc;
    EXPECT(iv_cs_init(&p), IV_ERR_NONE);
    CHECK(wait_count(&started, 1, 60));
    /* One loop of the file at 4x (PTS are the camera's clock). */
    t0 = mono_ms();
    for (i = 0; i < n; i++) {
        sleep_until_mono(t0 + (frames[i].pts - pts0) / 4);
        EXPECT(push(&frames[i], 1000 + frames[i].pts, frames[i].kind == 1 ? vseq++ : aseq++),
               IV_ERR_NONE);
    }
    /* Privacy mode: exit at once, with uploads in flight and a segment open. */
    t0 = mono_ms();
    rc = iv_cs_exit();
    dt = mono_ms() - t0;
    pthread_mutex_lock(&mu);
    exited = 1;
    pthread_mutex_unlock(&mu);
    printf("EXIT %d %llu\n", rc, (unsigned long long)dt);
    EXPECT(rc, IV_ERR_NONE);
    /* Pushing after exit is refused, never crashes. */
    EXPECT(push(&frames[0], 1000 + frames[n - 1].pts + 40, vseq), IV_ERR_CS_PRM_NOT_AVAILABLE);
    wait_delivered();
    need("drained");
    pthread_mutex_lock(&mu);
    EXPECT(after_exit, 0);
    pthread_mutex_unlock(&mu);
    EXPECT(ivcs_host_shutdown(), IV_ERR_NONE);
    printf("exit ok\n");
}

/* Exit as firmware does, then let the test see the background drain end
   before the library shuts down. */
static void exit_and_drain(void) {
    EXPECT(iv_cs_exit(), IV_ERR_NONE);
    wait_delivered();
    need("drained");
    EXPECT(ivcs_host_shutdown(), IV_ERR_NONE);
}

static void scenario_replay(size_t n) {
    iv_cs_init_parm_s p = params(2u << 20);
    iv_cs_balance_info_s b;
    uint64_t cam0, alarm, push0, pts0 = frames[0].pts, stop = 0;
    uint32_t vseq = 0, aseq = 0;
    size_t i;
    EXPECT(iv_cs_init(&p), IV_ERR_NONE);
    EXPECT(iv_cs_get_balance_info(CS_SINGLE_CH, &b, 5), IV_ERR_NONE);
    EXPECT(b.cs_type, CS_TYPE_EVENT);
    /* The camera captures into its own ring and pushes nothing while idle;
       frame i is captured at cam0 + its PTS offset. The alarm comes at the
       capture of the IDR 4 s in, so 4 s back is the file's first IDR. */
    cam0 = mono_ms();
    sleep_until_mono(cam0 + 4000);
    alarm = utc_ms();
    EXPECT(iv_cs_event_start_ext(CS_SINGLE_CH, 1, "motion", 0, 4), IV_ERR_NONE);
    printf("ALARM %llu\n", (unsigned long long)alarm);
    CHECK(wait_count(&started, 1, 60));
    /* The ring from 4 s back, in real time, until push_stream_stop_cb; the
       alarm ends 6 s after it began. */
    push0 = mono_ms();
    for (i = 0; i < n; i++) {
        int done;
        sleep_until_mono(push0 + (frames[i].pts - pts0));
        if (stop == 0 && mono_ms() >= cam0 + 10000) {
            stop = utc_ms();
            EXPECT(iv_cs_event_stop_ext(CS_SINGLE_CH, 1, "motion", 0, 0), IV_ERR_NONE);
            printf("STOP %llu\n", (unsigned long long)stop);
        }
        pthread_mutex_lock(&mu);
        done = stopped > 0;
        pthread_mutex_unlock(&mu);
        if (done) break;
        EXPECT(push(&frames[i], 5000 + frames[i].pts, frames[i].kind == 1 ? vseq++ : aseq++),
               IV_ERR_NONE);
    }
    CHECK(stop != 0 && i < n);
    printf("PUSHED %zu\n", i);
    exit_and_drain();
    printf("replay ok\n");
}

static iv_cm_venc_type_e venc_type(const char *name) {
    if (strcmp(name, "h264") == 0) return IV_CM_VENC_TYPE_H264;
    CHECK(strcmp(name, "h265") == 0);
    return IV_CM_VENC_TYPE_H265;
}

static iv_cm_aenc_type_e aenc_type(const char *name) {
    if (strcmp(name, "aac") == 0) return IV_CM_AENC_TYPE_AAC;
    if (strcmp(name, "g711a") == 0) return IV_CM_AENC_TYPE_G711A;
    if (strcmp(name, "g711u") == 0) return IV_CM_AENC_TYPE_G711U;
    CHECK(strcmp(name, "pcm16") == 0);
    return IV_CM_AENC_TYPE_PCM;
}

/* The frames file once, as firmware's capture thread pushes it: video at
   25 fps (PTS are whatever the file says: the camera's clock), audio packs
   in between, `pace` times real time; after a refused frame P frames are
   dropped until the next I frame. Prints PUSHED with the counts. */
static void push_all(size_t n, double pace) {
    uint64_t t0 = mono_ms();
    uint32_t vseq = 0, aseq = 0, video = 0;
    int v_ok = 0, v_refused = 0, v_dropped = 0, a_ok = 0, a_refused = 0, need_i = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        const frame_t *f = &frames[i];
        int rc;
        if (f->kind == 1) {
            sleep_until_mono(t0 + (uint64_t)((double)video * 40.0 / pace));
            video++;
            if (need_i && f->type != 0) {
                vseq++;
                v_dropped++;
                continue;
            }
            rc = push(f, f->pts, vseq++);
            if (rc == 0) v_ok++, need_i = 0;
            else v_refused++, need_i = 1;
        } else {
            rc = push(f, f->pts, aseq++);
            if (rc == 0) a_ok++;
            else a_refused++;
        }
    }
    printf("PUSHED video_ok=%d video_refused=%d video_dropped=%d audio_ok=%d audio_refused=%d\n",
           v_ok, v_refused, v_dropped, a_ok, a_refused);
}

static void scenario_stream(size_t n, char **argv) {
    iv_cs_init_parm_s p = params(4u << 20);
    iv_cm_av_data_info_s *av = &chan.av_fmt;
    av->eVideoType = venc_type(argv[3]);
    av->u32VideoWidth = (uint32_t)atoi(argv[4]);
    av->u32VideoHeight = (uint32_t)atoi(argv[5]);
    if (strcmp(argv[6], "none") == 0) {
        av->eAudioType = IV_CM_AENC_TYPE_BUTT; /* video only */
    } else {
        av->eAudioType = aenc_type(argv[6]);
        av->eAudioSampleRate = (iv_cm_aenc_sample_rate_e)atoi(argv[7]);
        av->eAudioMode = atoi(argv[8]) == 2 ? IV_CM_AENC_MODE_STEREO : IV_CM_AENC_MODE_MONO;
        av->u32SampleNumPerFrame = (uint32_t)atoi(argv[9]);
    }
    chan.cs_fmt = strcmp(argv[11], "fmp4") == 0 ? IV_CS_FORMAT_FMP4 : IV_CS_FORMAT_TS;
    EXPECT(iv_cs_init(&p), IV_ERR_NONE);
    CHECK(wait_count(&started, 1, 60));
    push_all(n, atof(argv[10]));
    exit_and_drain();
    printf("stream ok\n");
}

static void scenario_early(size_t n) {
    iv_cs_init_parm_s p = params(2u << 20);
    iv_cs_balance_info_s b;
    uint64_t t0, alarm, stop = 0, pts0 = frames[0].pts;
    uint32_t vseq = 0, aseq = 0;
    size_t i;
    int rc;
    /* No balance query first: init, then push at once, in real time. */
    EXPECT(iv_cs_init(&p), IV_ERR_NONE);
    t0 = mono_ms();
    for (i = 0; i < n && frames[i].pts - pts0 < 3000; i++) {
        sleep_until_mono(t0 + (frames[i].pts - pts0));
        EXPECT(push(&frames[i], 1000 + frames[i].pts, frames[i].kind == 1 ? vseq++ : aseq++),
               IV_ERR_NONE);
    }
    /* The plan is still unknown here (the cloud is held): what a cached
       read says (firmware that did not ask first would not know either). */
    rc = iv_cs_get_balance_info(CS_SINGLE_CH, &b, 0);
    printf("EARLY_BALANCE %d\n", rc);
    need("release");
    for (; i < n && frames[i].pts - pts0 < 4000; i++) {
        sleep_until_mono(t0 + (frames[i].pts - pts0));
        EXPECT(push(&frames[i], 1000 + frames[i].pts, frames[i].kind == 1 ? vseq++ : aseq++),
               IV_ERR_NONE);
    }
    /* The alarm, 4 s after the first frame, asks for 6 s of pre-record:
       everything since the first frame. */
    alarm = utc_ms();
    EXPECT(iv_cs_event_start_ext(CS_SINGLE_CH, 1, "motion", 0, 6), IV_ERR_NONE);
    printf("ALARM %llu\n", (unsigned long long)alarm);
    CHECK(wait_count(&started, 1, 60));
    for (; i < n; i++) {
        int done;
        sleep_until_mono(t0 + (frames[i].pts - pts0));
        if (stop == 0 && frames[i].pts - pts0 >= 7000) {
            stop = utc_ms();
            EXPECT(iv_cs_event_stop_ext(CS_SINGLE_CH, 1, "motion", 0, 0), IV_ERR_NONE);
            printf("STOP %llu\n", (unsigned long long)stop);
        }
        pthread_mutex_lock(&mu);
        done = stopped > 0;
        pthread_mutex_unlock(&mu);
        if (done) break;
        /* Until the stop every frame is taken; after it, once the event's
           video reached the stop time, P frames wait for an IDR (-611). */
        rc = push(&frames[i], 1000 + frames[i].pts, frames[i].kind == 1 ? vseq++ : aseq++);
        if (stop == 0) EXPECT(rc, IV_ERR_NONE);
    }
    CHECK(stop != 0 && i < n);
    exit_and_drain();
    printf("early ok\n");
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    size_t n;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3) {
        fprintf(stderr, "usage: %s pictures JPEG | exit FRAMES | replay FRAMES | early FRAMES |\n"
                        "       stream FRAMES VCODEC W H AUDIO RATE CHANNELS SAMPLES PACE FORMAT\n", argv[0]);
        return 2;
    }
    if (strcmp(mode, "pictures") == 0) {
        jpeg = read_file(argv[2], &jpeg_len);
        scenario_pictures();
        free(jpeg);
        return 0;
    }
    EXPECT(ivcs_host_set_log_level(IVCS_LOG_INFO), IV_ERR_NONE);
    EXPECT(ivcs_host_set_log_callback(on_log, NULL), IV_ERR_NONE);
    frames = load_frames_file(argv[2], &n);
    CHECK(n > 0 && frames[0].kind == 1 && frames[0].type == 0);
    if (strcmp(mode, "exit") == 0) {
        scenario_exit(n);
    } else if (strcmp(mode, "replay") == 0) {
        scenario_replay(n);
    } else if (strcmp(mode, "stream") == 0 && argc > 11) {
        scenario_stream(n, argv);
    } else if (strcmp(mode, "early") == 0) {
        scenario_early(n);
    } else {
        fprintf(stderr, "unknown scenario %s\n", mode);
        return 2;
    }
    return 0;
}
