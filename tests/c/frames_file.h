/* What the C test programs share: a whole-file reader and the frames file
 * the Rust side writes (tests/src/frames_file.rs): "IVCSFRM1", then per access
 * unit u8 kind (0 audio, 1 video), u8 type (0 I, 1 P), u16 0, u32 length,
 * u64 PTS in ms (little-endian), the bytes; in PTS order. A program that cannot
 * read its input prints FAIL and exits 1. */
#ifndef IVCS_TEST_FRAMES_FILE_H
#define IVCS_TEST_FRAMES_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t kind, type;
    uint32_t len;
    uint64_t pts;
    uint8_t *data;
} frame_t;

static inline void frames_file_fail(const char *what, const char *path) {
    fprintf(stderr, "FAIL %s: %s\n", what, path);
    exit(1);
}

/* The whole file at `path` (never NULL; freed by the caller). */
static inline uint8_t *read_file(const char *path, uint32_t *len) {
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;
    if (f == NULL) frames_file_fail("cannot open", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (n < 0 || buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) frames_file_fail("cannot read", path);
    fclose(f);
    *len = (uint32_t)n;
    return buf;
}

static inline uint32_t frames_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Every access unit of the frames file at `path` (at least one); the bytes
 * stay in one buffer for the life of the program. */
static inline frame_t *load_frames_file(const char *path, size_t *count) {
    uint32_t len, off = 8;
    uint8_t *buf = read_file(path, &len);
    size_t cap = 1024, n = 0;
    frame_t *frames = malloc(cap * sizeof *frames);
    if (len < 8 || memcmp(buf, "IVCSFRM1", 8) != 0 || frames == NULL) frames_file_fail("not a frames file", path);
    while (off + 16 <= len) {
        frame_t f;
        f.kind = buf[off];
        f.type = buf[off + 1];
        f.len = frames_le32(buf + off + 4);
        f.pts = (uint64_t)frames_le32(buf + off + 8) | (uint64_t)frames_le32(buf + off + 12) << 32;
        f.data = buf + off + 16;
        if (f.len > len - off - 16) frames_file_fail("truncated frames file", path);
        off += 16 + f.len;
        if (n == cap) {
            cap *= 2;
            frames = realloc(frames, cap * sizeof *frames);
            if (frames == NULL) frames_file_fail("out of memory reading", path);
        }
        frames[n++] = f;
    }
    if (n == 0) frames_file_fail("no frames in", path);
    *count = n;
    return frames;
}

#endif
