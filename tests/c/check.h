/* What the C test programs share besides the frames file: failure macros
 * (print FAIL with the place and exit 1) and the channel parameters they all
 * start from. Include after iv_cs.h. */
#ifndef IVCS_TEST_CHECK_H
#define IVCS_TEST_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPECT(expr, want)                                                                  \
    do {                                                                                    \
        long long got_ = (long long)(expr);                                                 \
        if (got_ != (long long)(want)) {                                                    \
            fprintf(stderr, "FAIL %s:%d: %s = %lld, want %lld\n", __FILE__, __LINE__, #expr, \
                    got_, (long long)(want));                                               \
            exit(1);                                                                        \
        }                                                                                   \
    } while (0)

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                 \
            exit(1);                                                                        \
        }                                                                                   \
    } while (0)

/* An H.264 + AAC-LC (16 bit, 1024 samples per frame) TS channel at 25 fps;
 * the caller sets what differs (congestion, event report option, callbacks). */
static inline void test_channel(iv_cs_channel_params_s *c, iv_cs_chn_e id, uint32_t budget,
                                uint32_t width, uint32_t height, iv_cm_aenc_mode_e mode,
                                iv_cm_aenc_sample_rate_e rate) {
    memset(c, 0, sizeof *c);
    c->channel_id = id;
    c->u32MaxGopSize = budget;
    c->av_fmt.eAudioType = IV_CM_AENC_TYPE_AAC;
    c->av_fmt.u32AudioCodecOption = IV_CM_AAC_TYPE_LC;
    c->av_fmt.eAudioMode = mode;
    c->av_fmt.eAudioBitWidth = IV_CM_AENC_BIT_WIDTH_16;
    c->av_fmt.eAudioSampleRate = rate;
    c->av_fmt.u32SampleNumPerFrame = 1024;
    c->av_fmt.eVideoType = IV_CM_VENC_TYPE_H264;
    c->av_fmt.u32VideoWidth = width;
    c->av_fmt.u32VideoHeight = height;
    c->av_fmt.u32Framerate = 25;
    c->cs_fmt = IV_CS_FORMAT_TS;
}

#endif
