/*
 * libivcs benchmark program, run by scripts/bench-libivcs.sh against the
 * real cloud on loopback (method and numbers: docs/design/libivcs.md,
 * "Benchmarks"). Prints KEY=VALUE lines; asserts nothing about speed.
 *
 *   bench_libivcs push FRAMES PACE
 *       full-time channel (u32MaxGopSize 4 MB), pushes every unit of FRAMES
 *       at PACE x real time (PTS as the camera clock); times each
 *       iv_cs_push_stream call (I frames, P frames, audio) and the library's
 *       CPU time over the run: the process's (getrusage) minus this camera
 *       thread's own (pacing sleeps, reading frames, reference copies), plus
 *       the time spent inside iv_cs_push_stream.
 *   bench_libivcs rss FRAMES CLOUD_PID
 *       one channel at u32MaxGopSize 800 KB, frames at real time; RSS after
 *       init, after 10 s of video (warm), then the cloud is stopped (SIGSTOP)
 *       while 30 s more are pushed: the peak RSS (VmHWM) against the warm
 *       baseline.
 *   bench_libivcs swap FRAMES PACE KEYS ENGINE_A ENGINE_B N
 *       full-time channel (4 MB), 60 s of frames pushed at PACE x real time
 *       from a camera thread while the main thread swaps engines N times, A
 *       and B in turn, 0.5-0.9 s apart: each ivcs_host_engine_update's latency,
 *       the longest push overlapping each swap against the longest and p99
 *       push outside swaps, refused pushes, err slices and frame seq gaps
 *       between the acknowledged segments (frames lost).
 *
 * The frames file format is tests/src/frames_file.rs's.
 */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <time.h>

#include "iv_cs.h"
#include "ivcs_host.h"
#include "frames_file.h"
#include "check.h"

static frame_t *frames;
static size_t n_frames;

static void load_frames(const char *path) { frames = load_frames_file(path, &n_frames); }

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int started;
static int marks[8];

static int on_start(iv_cs_chn_e ch) {
    (void)ch;
    pthread_mutex_lock(&mu);
    started = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return 0;
}
static int on_stop(iv_cs_chn_e ch) {
    (void)ch;
    return 0;
}
/* Acknowledged segments' frame seq ranges, and failed slices (swap). */
#define MAX_OK 4096
static uint32_t ok_a[MAX_OK], ok_b[MAX_OK];
static int n_ok, n_err;

static int on_notify(iv_cs_chn_e ch, iv_cs_notify_msg_type_e t, iv_cs_notify_msg_data *d) {
    int i;
    (void)ch;
    pthread_mutex_lock(&mu);
    if ((int)t < 8) marks[t]++;
    if (t == IV_CS_AV_UPLOAD_STATE_MSG && d != NULL && d->av_result_info != NULL) {
        iv_cs_upload_info_s *u = d->av_result_info;
        for (i = 0; i < u->num && i < MAX_UPLOAD_INFO_NUM; i++) {
            if (u->slice_info[i].state != IV_CS_UPLOAD_OK) {
                n_err++;
            } else if (n_ok < MAX_OK) {
                ok_a[n_ok] = u->slice_info[i].frame_seq_a;
                ok_b[n_ok] = u->slice_info[i].frame_seq_b;
                n_ok++;
            }
        }
        pthread_cond_broadcast(&cv);
    }
    pthread_mutex_unlock(&mu);
    return 0;
}

static void init(uint32_t budget) {
    static iv_cs_channel_params_s c;
    iv_cs_init_parm_s p;
    struct timespec until;
    memset(&p, 0, sizeof p);
    test_channel(&c, CS_SINGLE_CH, budget, 1920, 1080, IV_CM_AENC_MODE_STEREO,
                 IV_CM_AENC_SAMPLE_RATE_48000);
    p.channel_num = 1;
    p.ch_params = &c;
    p.func_cb.iv_cs_push_stream_start_cb = on_start;
    p.func_cb.iv_cs_push_stream_stop_cb = on_stop;
    p.func_cb.iv_cs_notify_cb = on_notify;
    CHECK(iv_cs_init(&p) == 0);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    pthread_mutex_lock(&mu);
    while (!started)
        if (pthread_cond_timedwait(&cv, &mu, &until) == ETIMEDOUT) break;
    CHECK(started);
    pthread_mutex_unlock(&mu);
}

static double now_s(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_s(int who) {
    struct rusage r;
    getrusage(who, &r);
    return (double)r.ru_utime.tv_sec + (double)r.ru_utime.tv_usec / 1e6 +
           (double)r.ru_stime.tv_sec + (double)r.ru_stime.tv_usec / 1e6;
}

/* The floor of any push that copies: malloc + memcpy + free of the same
 * I frame right after its push, so under the same load (the library's
 * threads, the cloud) at the same moments. The source is warm (the push
 * just read it) and the block is the one just freed, so this is the floor
 * of the copy itself, not of a cold one. */
static void *volatile copy_sink;
static uint8_t *resident; /* a buffer as large as the largest frame, touched once */

static double copy_ns(const frame_t *f) {
    double a, b;
    uint8_t *p;
    a = now_s(CLOCK_MONOTONIC);
    p = malloc(f->len);
    CHECK(p != NULL);
    memcpy(p, f->data, f->len);
    b = now_s(CLOCK_MONOTONIC);
    /* The copy escapes, so the compiler cannot drop it as a dead store. */
    copy_sink = p;
    free(p);
    return (b - a) * 1e9;
}

/* The same copy into resident memory (no allocation, no page faults). */
static double copy_resident_ns(const frame_t *f) {
    double a, b;
    a = now_s(CLOCK_MONOTONIC);
    memcpy(resident, f->data, f->len);
    b = now_s(CLOCK_MONOTONIC);
    copy_sink = resident;
    return (b - a) * 1e9;
}

/* The camera: pushes frames [from, to) at `pace` x real time (0: as fast
   as taken); PTS continue across calls through `base`. Records each call's
   latency in ns into lat[kind] (0 I, 1 P, 2 audio) and the reference copies
   of each I frame into lat[3] (malloc + memcpy) and lat[4] (memcpy into
   resident memory). Returns refused video frames. */
static double *lat[5];
static size_t n_lat[5];
static double push_ns; /* time inside iv_cs_push_stream, every call */
static uint64_t base_pts = 1000;
/* swap: every push's start (s) and duration (ns), under mu; the next video seq. */
static double *rec_at, *rec_ns;
static size_t n_rec;
static volatile uint32_t next_vseq;

static int push_range(size_t from, size_t to, double pace) {
    double t0 = now_s(CLOCK_MONOTONIC);
    uint64_t pts0 = frames[from].pts;
    static uint32_t vseq, aseq;
    int need_idr = 0, refused = 0;
    size_t i;
    for (i = from; i < to; i++) {
        frame_t *f = &frames[i];
        double a, b;
        int rc, k;
        if (pace > 0) {
            double due = t0 + (double)(f->pts - pts0) / 1000.0 / pace;
            struct timespec t;
            t.tv_sec = (time_t)due;
            t.tv_nsec = (long)((due - (double)t.tv_sec) * 1e9);
            /* The camera's frame clock. */
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR) {
            }
        }
        if (f->kind == 1) {
            iv_cm_venc_pack_s v;
            if (need_idr && f->type != 0) continue;
            v.pu8Addr = f->data;
            v.u32Len = f->len;
            v.u64PTS = base_pts + f->pts;
            v.eFrameType = f->type == 0 ? IV_CM_FRAME_TYPE_I : IV_CM_FRAME_TYPE_P;
            v.u32Seq = vseq++;
            next_vseq = vseq;
            k = f->type == 0 ? 0 : 1;
            a = now_s(CLOCK_MONOTONIC);
            rc = iv_cs_push_stream(CS_SINGLE_CH, IV_CM_STREAM_TYPE_VIDEO, &v);
            b = now_s(CLOCK_MONOTONIC);
            need_idr = rc != 0;
            if (rc != 0) refused++;
        } else {
            iv_cm_aenc_pack_s au;
            au.pu8Addr = f->data;
            au.u32Len = f->len;
            au.u64PTS = base_pts + f->pts;
            au.u32Seq = aseq++;
            k = 2;
            a = now_s(CLOCK_MONOTONIC);
            rc = iv_cs_push_stream(CS_SINGLE_CH, IV_CM_STREAM_TYPE_AUDIO, &au);
            b = now_s(CLOCK_MONOTONIC);
        }
        (void)rc;
        push_ns += (b - a) * 1e9;
        if (rec_at != NULL) {
            pthread_mutex_lock(&mu);
            rec_at[n_rec] = a;
            rec_ns[n_rec] = (b - a) * 1e9;
            n_rec++;
            pthread_mutex_unlock(&mu);
        }
        if (lat[k] != NULL) lat[k][n_lat[k]++] = (b - a) * 1e9;
        if (k == 0 && lat[3] != NULL) {
            lat[3][n_lat[3]++] = copy_ns(f);
            lat[4][n_lat[4]++] = copy_resident_ns(f);
        }
    }
    return refused;
}

static int cmp_d(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* The nearest-rank p99 of `n` sorted values. */
static double p99(const double *sorted, size_t n) {
    return sorted[(size_t)((double)n * 0.99)];
}

static void print_pct(const char *name, double *v, size_t n) {
    if (n == 0) return;
    qsort(v, n, sizeof *v, cmp_d);
    printf("%s_n=%zu\n%s_p50_us=%.1f\n%s_p99_us=%.1f\n%s_max_us=%.1f\n", name, n, name,
           v[n / 2] / 1e3, name, p99(v, n) / 1e3, name, v[n - 1] / 1e3);
}

static long status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t k = strlen(key);
    CHECK(f != NULL);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, k) == 0 && line[k] == ':') v = atol(line + k + 1);
    fclose(f);
    return v;
}

static void bench_push(double pace) {
    double c0, c1, t0, t1, w0, w1, video_s, lib_s;
    int refused, i;
    uint64_t bytes = 0;
    size_t k, largest = 0;
    for (i = 0; i < 5; i++) lat[i] = malloc(n_frames * sizeof(double));
    for (k = 0; k < n_frames; k++)
        if (frames[k].len > largest) largest = frames[k].len;
    resident = malloc(largest);
    CHECK(resident != NULL);
    memset(resident, 0, largest);
    init(4u << 20);
    for (k = 0; k < n_frames; k++)
        if (frames[k].kind == 1) bytes += frames[k].len;
    video_s = (double)(frames[n_frames - 1].pts + 40) / 1000.0;
    c0 = cpu_s(RUSAGE_SELF);
    t0 = cpu_s(RUSAGE_THREAD);
    push_ns = 0;
    w0 = now_s(CLOCK_MONOTONIC);
    refused = push_range(0, n_frames, pace);
    w1 = now_s(CLOCK_MONOTONIC);
    t1 = cpu_s(RUSAGE_THREAD);
    c1 = cpu_s(RUSAGE_SELF);
    lib_s = (c1 - c0) - (t1 - t0) + push_ns / 1e9;
    printf("pace=%.1f\nvideo_s=%.1f\nvideo_mbps=%.2f\nwall_s=%.2f\ncpu_s=%.3f\nprocess_cpu_s=%.3f\n",
           pace, video_s, (double)bytes * 8 / video_s / 1e6, w1 - w0, lib_s, c1 - c0);
    printf("cpu_pct_of_core_per_video_s=%.3f\nrefused=%d\n", lib_s / video_s * 100, refused);
    /* The session's first I frame is copied into a new buffer, through
     * page faults; every later one into a pooled one. */
    if (n_lat[0] > 0) printf("i_frame_first_us=%.1f\n", lat[0][0] / 1e3);
    print_pct("i_frame", lat[0], n_lat[0]);
    print_pct("p_frame", lat[1], n_lat[1]);
    print_pct("audio", lat[2], n_lat[2]);
    print_pct("copy_i_frame", lat[3], n_lat[3]);
    print_pct("copy_resident_i_frame", lat[4], n_lat[4]);
    free(resident);
    CHECK(iv_cs_exit() == 0);
    CHECK(ivcs_host_shutdown() == 0);
}

/* First frame index at or after `ms` of PTS. */
static size_t at_ms(uint64_t ms) {
    size_t i = 0;
    while (i < n_frames && frames[i].pts < ms) i++;
    return i;
}

static void bench_rss(pid_t cloud) {
    long before, after_init, warm, peak;
    int refused;
    before = status_kb("VmRSS");
    init(800u << 10);
    after_init = status_kb("VmRSS");
    /* At the camera's own rate: faster, frames wait for the engine
     * thread's next tick (up to 100 ms) in numbers no camera sends (at 4x,
     * 400 ms of video: ~400 KB more, see docs/design/buffer.md). */
    push_range(0, at_ms(10000), 1.0);
    warm = status_kb("VmRSS");
    CHECK(kill(cloud, SIGSTOP) == 0);
    refused = push_range(at_ms(10000), at_ms(40000), 1.0);
    peak = status_kb("VmHWM");
    CHECK(kill(cloud, SIGCONT) == 0);
    printf("rss_before_init_kb=%ld\nrss_after_init_kb=%ld\nrss_warm_kb=%ld\nrss_peak_kb=%ld\n",
           before, after_init, warm, peak);
    printf("stalled_refused=%d\nwatermark_high=%d\n", refused, marks[IV_CS_AV_UPLOAD_WATERMARK_HIGH]);
    CHECK(iv_cs_exit() == 0);
    CHECK(ivcs_host_shutdown() == 0);
}

/* The camera thread of the swap bench: 60 s of video. */
static double swap_pace;
static int swap_refused;
static void *swap_camera(void *arg) {
    (void)arg;
    swap_refused = push_range(0, at_ms(60000), swap_pace);
    return NULL;
}

/* Whether an acknowledged segment ends at or after video seq `seq` (mu held). */
static int acked_through(uint32_t seq) {
    int i;
    for (i = 0; i < n_ok; i++)
        if (ok_b[i] >= seq) return 1;
    return 0;
}

static void bench_swap(double pace, const char *keys, const char *a, const char *b, int n) {
    double *lat_ms = malloc((size_t)n * sizeof(double)), *t0s = malloc((size_t)n * sizeof(double)),
           *t1s = malloc((size_t)n * sizeof(double)), *outside = malloc(n_frames * sizeof(double));
    double stall_max = 0, out_max = 0;
    size_t k, n_out = 0;
    int i, j, gaps = 0, overlapping;
    uint32_t through;
    pthread_t cam;
    struct timespec until;
    CHECK(lat_ms && t0s && t1s && outside);
    rec_at = malloc(n_frames * sizeof(double));
    rec_ns = malloc(n_frames * sizeof(double));
    CHECK(rec_at && rec_ns);
    init(4u << 20);
    CHECK(ivcs_host_set_engine_keys(keys) == 0);
    swap_pace = pace;
    CHECK(pthread_create(&cam, NULL, swap_camera, NULL) == 0);
    for (i = 0; i < n; i++) {
        /* 0.5-0.9 s apart, so swaps land at different points of a GOP. */
        struct timespec gap = {0, (500 + (i * 137) % 400) * 1000000L};
        nanosleep(&gap, NULL);
        t0s[i] = now_s(CLOCK_MONOTONIC);
        CHECK(ivcs_host_engine_update(i % 2 ? a : b) == 0);
        t1s[i] = now_s(CLOCK_MONOTONIC);
        lat_ms[i] = (t1s[i] - t0s[i]) * 1e3;
    }
    through = next_vseq;
    CHECK(pthread_join(cam, NULL) == 0);
    /* Every frame pushed up to the last swap is in an acknowledged segment
       (the segments after it close within the 60 s of video). */
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 120;
    pthread_mutex_lock(&mu);
    while (!acked_through(through - 1))
        if (pthread_cond_timedwait(&cv, &mu, &until) == ETIMEDOUT) break;
    /* Frame seq gaps between acknowledged segments, from seq 0. */
    {
        uint32_t want = 0;
        int progress = 1;
        while (progress && want < through) {
            progress = 0;
            for (j = 0; j < n_ok; j++)
                if (ok_a[j] == want) {
                    want = ok_b[j] + 1;
                    progress = 1;
                    break;
                }
        }
        if (want < through) gaps = (int)(through - want);
    }
    for (k = 0; k < n_rec; k++) {
        double end = rec_at[k] + rec_ns[k] / 1e9;
        overlapping = 0;
        for (i = 0; i < n; i++)
            if (end >= t0s[i] && rec_at[k] <= t1s[i]) overlapping = 1;
        if (overlapping) {
            if (rec_ns[k] > stall_max) stall_max = rec_ns[k];
        } else {
            outside[n_out++] = rec_ns[k];
            if (rec_ns[k] > out_max) out_max = rec_ns[k];
        }
    }
    printf("pace=%.1f\nswaps=%d\nswap_refused_pushes=%d\nerr_slices=%d\nseq_through=%u\nframes_missing=%d\n",
           pace, n, swap_refused, n_err, through, gaps);
    pthread_mutex_unlock(&mu);
    qsort(lat_ms, (size_t)n, sizeof(double), cmp_d);
    printf("swap_p50_ms=%.2f\nswap_p99_ms=%.2f\nswap_max_ms=%.2f\n", lat_ms[n / 2],
           p99(lat_ms, (size_t)n), lat_ms[n - 1]);
    qsort(outside, n_out, sizeof(double), cmp_d);
    printf("stall_max_ms=%.3f\noutside_max_ms=%.3f\noutside_p99_ms=%.3f\n", stall_max / 1e6,
           out_max / 1e6, n_out ? p99(outside, n_out) / 1e6 : 0.0);
    CHECK(iv_cs_exit() == 0);
    CHECK(ivcs_host_shutdown() == 0);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 4) {
        fprintf(stderr,
                "usage: %s push FRAMES PACE | rss FRAMES CLOUD_PID | swap FRAMES PACE KEYS A B N\n",
                argv[0]);
        return 2;
    }
    load_frames(argv[2]);
    if (strcmp(argv[1], "push") == 0) {
        bench_push(atof(argv[3]));
    } else if (strcmp(argv[1], "rss") == 0) {
        bench_rss((pid_t)atol(argv[3]));
    } else if (strcmp(argv[1], "swap") == 0 && argc > 7) {
        bench_swap(atof(argv[3]), argv[4], argv[5], argv[6], atoi(argv[7]));
    } else {
        return 2;
    }
    return 0;
}
