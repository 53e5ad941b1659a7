#!/usr/bin/env bash
# Generates the media fixtures of the ivcs test matrix with Debian's ffmpeg
# (libx264, libx265, native AAC encoder). Every fixture is documented in
# testdata/README.md.
#
# Usage: scripts/gen-fixtures.sh [--bench] [OUTDIR]
#   OUTDIR   where to write (default: testdata/gen, git-ignored)
#   --bench  also make the large benchmark inputs (5 min 1080p H.264, AAC,
#            PCM16); without it they are not made
#   FORCE=1  regenerate files that already exist (default: keep them)
#
# Idempotent: each file is written to a temporary name and renamed when
# ffmpeg succeeds, so an interrupted run never leaves a half-written fixture
# that a later run would keep. Safe to run concurrently with itself only
# under a lock (the test harness takes one); two runs racing on one OUTDIR
# both produce complete files, the later rename wins.
#
# Rules every command here follows (an ffmpeg lavfi source is infinite):
#   - `-t N` before every `-f lavfi -i`;
#   - exact GOPs: x264 `-g N -keyint_min N -sc_threshold 0`, x265
#     `keyint=N:min-keyint=N:scenecut=0:open-gop=0` (so every keyframe is an
#     IDR, never a CRA);
#   - no B-frames (`-bf 0`, x265 `bframes=0`), except the one fixture that
#     exists to have them;
#   - raw Annex-B output (`-f h264` / `-f hevc`); parameter sets are repeated
#     before every IDR (ffmpeg sets x264/x265 repeat-headers for raw output).
set -euo pipefail

FFMPEG=${FFMPEG:-ffmpeg}
FORCE=${FORCE:-0}
BENCH=0
OUT=""
for arg in "$@"; do
    case "$arg" in
        --bench) BENCH=1 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        -*) echo "gen-fixtures: unknown option $arg" >&2; exit 2 ;;
        *) OUT=$arg ;;
    esac
done
if [[ -z "$OUT" ]]; then
    OUT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/testdata/gen"
fi

if ! command -v "$FFMPEG" >/dev/null 2>&1; then
    echo "gen-fixtures: ffmpeg not found (apt-get install ffmpeg)" >&2
    exit 1
fi
mkdir -p "$OUT"

made=0
kept=0
# gen NAME ARGS...: runs `ffmpeg ARGS... OUT/NAME` unless NAME exists.
gen() {
    local name=$1
    shift
    local dst="$OUT/$name"
    if [[ -s "$dst" && "$FORCE" != 1 ]]; then
        kept=$((kept + 1))
        return 0
    fi
    local tmp="$OUT/.tmp.$$.$name"
    local t0
    t0=$(date +%s.%N)
    if ! "$FFMPEG" -hide_banner -nostdin -loglevel error -y "$@" "$tmp"; then
        rm -f "$tmp"
        echo "gen-fixtures: ffmpeg failed for $name" >&2
        exit 1
    fi
    mv -f "$tmp" "$dst"
    made=$((made + 1))
    printf 'gen-fixtures: %-36s %9d bytes %6.1fs\n' "$name" "$(stat -c %s "$dst")" \
        "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')"
}

# --- video -------------------------------------------------------------------
# h264 NAME SIZE FPS GOP_FRAMES SECONDS BITRATE [extra x264 args...]
h264() {
    local name=$1 size=$2 fps=$3 gop=$4 secs=$5 rate=$6
    shift 6
    gen "$name" -t "$secs" -f lavfi -i "testsrc2=size=$size:rate=$fps" \
        -c:v libx264 -preset veryfast -profile:v main -pix_fmt yuv420p \
        -b:v "$rate" -maxrate "$rate" -bufsize "$rate" \
        -g "$gop" -keyint_min "$gop" -sc_threshold 0 -bf 0 "$@" -f h264
}
# h265 NAME SIZE FPS GOP_FRAMES SECONDS BITRATE [extra x265 params, a:b]
h265() {
    local name=$1 size=$2 fps=$3 gop=$4 secs=$5 rate=$6 extra=${7:-}
    gen "$name" -t "$secs" -f lavfi -i "testsrc2=size=$size:rate=$fps" \
        -c:v libx265 -preset ultrafast -profile:v main -pix_fmt yuv420p -b:v "$rate" \
        -x265-params "keyint=$gop:min-keyint=$gop:scenecut=0:open-gop=0:bframes=0:log-level=error${extra:+:$extra}" \
        -f hevc
}
# h264_res_change NAME FPS GOP_FRAMES SECONDS_EACH BITRATE SIZE...: one
# H.264 stream per SIZE, concatenated (each starts with SPS/PPS + IDR), as a
# camera that changes resolution without restarting the stream sends it.
h264_res_change() {
    local name=$1 fps=$2 gop=$3 secs=$4 rate=$5
    shift 5
    local dst="$OUT/$name"
    if [[ -s "$dst" && "$FORCE" != 1 ]]; then
        kept=$((kept + 1))
        return 0
    fi
    local tmp="$OUT/.tmp.$$.$name" part="$OUT/.tmp.$$.part.$name" size
    : >"$tmp"
    for size in "$@"; do
        if ! "$FFMPEG" -hide_banner -nostdin -loglevel error -y -t "$secs" \
            -f lavfi -i "testsrc2=size=$size:rate=$fps" \
            -c:v libx264 -preset veryfast -profile:v main -pix_fmt yuv420p \
            -b:v "$rate" -maxrate "$rate" -bufsize "$rate" \
            -g "$gop" -keyint_min "$gop" -sc_threshold 0 -bf 0 -f h264 "$part"; then
            rm -f "$tmp" "$part"
            echo "gen-fixtures: ffmpeg failed for $name ($size)" >&2
            exit 1
        fi
        cat "$part" >>"$tmp"
    done
    rm -f "$part"
    mv -f "$tmp" "$dst"
    made=$((made + 1))
    printf 'gen-fixtures: %-36s %9d bytes\n' "$name" "$(stat -c %s "$dst")"
}

h264 h264_main_640x360_25fps_gop2s_24s.h264 640x360 25 50 24 300k
h264 h264_main_1280x720_25fps_gop1s_12s.h264 1280x720 25 25 12 600k
h264 h264_main_320x240_25fps_gop4s_24s.h264 320x240 25 100 24 150k
h264 h264_main_640x360_30fps_gop1s_12s.h264 640x360 30 30 12 300k
h264 h264_main_640x360_25fps_gop2s_60s.h264 640x360 25 50 60 300k
h265 h265_main_640x360_25fps_gop2s_24s.h265 640x360 25 50 24 300k
h265 h265_main_1280x720_25fps_gop1s_12s.h265 1280x720 25 25 12 600k
h265 h265_main_320x240_25fps_gop4s_24s.h265 320x240 25 100 24 150k
h265 h265_main_640x360_25fps_gop2s_60s.h265 640x360 25 50 60 300k
# Negative input: B-frames (decode order != display order).
h264 h264_main_bframes_640x360_25fps_gop2s_10s.h264 640x360 25 50 10 300k -bf 2

# --- stream habits of real cameras (testdata/README.md, "Stream habits") ------
# An AUD (type 9) and SEI (type 6) in every access unit: x264's aud=1, and
# nal-hrd=vbr for buffering-period/picture-timing SEI on every frame.
h264 h264_aud_sei_640x360_25fps_gop2s_12s.h264 640x360 25 50 12 300k \
    -x264-params aud=1:nal-hrd=vbr
# Four slices per picture.
h264 h264_4slices_640x360_25fps_gop2s_12s.h264 640x360 25 50 12 300k -x264-params slices=4
h265 h265_4slices_640x360_25fps_gop2s_12s.h265 640x360 25 50 12 300k slices=4
# A resolution change mid-stream: 6 s at 640x360, then 6 s at 1280x720.
h264_res_change h264_res_change_360p_to_720p_25fps_gop1s_12s.h264 25 25 6 600k 640x360 1280x720

# --- audio (60 s, deterministic tones) ---------------------------------------
# Distinct tone frequencies per fixture, so a test can tell they survived.
gen aac_lc_48000_mono_60s.aac -t 60 -f lavfi -i "sine=frequency=440:sample_rate=48000" \
    -c:a aac -b:a 64k -f adts
gen aac_lc_44100_stereo_60s.aac -t 60 -f lavfi \
    -i "aevalsrc=0.25*sin(2*PI*500*t)|0.25*sin(2*PI*700*t):s=44100:c=stereo" \
    -c:a aac -b:a 96k -f adts
gen g711a_8000_mono_60s.alaw -t 60 -f lavfi -i "sine=frequency=600:sample_rate=8000" \
    -c:a pcm_alaw -f alaw
gen g711u_8000_mono_60s.ulaw -t 60 -f lavfi -i "sine=frequency=800:sample_rate=8000" \
    -c:a pcm_mulaw -f mulaw
gen pcm16_16000_mono_60s.s16le -t 60 -f lavfi -i "sine=frequency=1000:sample_rate=16000" \
    -c:a pcm_s16le -f s16le
# 8 kHz PCM, the rate cameras' microphones run at (pushed in 160/320-sample packs).
gen pcm16_8000_mono_60s.s16le -t 60 -f lavfi -i "sine=frequency=300:sample_rate=8000" \
    -c:a pcm_s16le -f s16le
gen pcm16_48000_stereo_60s.s16le -t 60 -f lavfi \
    -i "aevalsrc=0.25*sin(2*PI*500*t)|0.25*sin(2*PI*700*t):s=48000:c=stereo" \
    -c:a pcm_s16le -f s16le

# --- benchmark inputs (only with --bench) -------------------------------------
if [[ "$BENCH" == 1 ]]; then
    # 5 min 1080p25 at ~4 Mbit/s (CBR-ish), GOP 2 s: about 150 MB.
    gen bench_h264_main_1920x1080_25fps_gop2s_300s.h264 -t 300 \
        -f lavfi -i "testsrc2=size=1920x1080:rate=25" \
        -c:v libx264 -preset ultrafast -profile:v main -pix_fmt yuv420p \
        -b:v 4M -maxrate 4M -bufsize 4M -g 50 -keyint_min 50 -sc_threshold 0 -bf 0 -f h264
    gen bench_aac_lc_48000_stereo_300s.aac -t 300 -f lavfi \
        -i "aevalsrc=0.25*sin(2*PI*500*t)|0.25*sin(2*PI*700*t):s=48000:c=stereo" \
        -c:a aac -b:a 128k -f adts
    gen bench_pcm16_48000_stereo_300s.s16le -t 300 -f lavfi \
        -i "aevalsrc=0.25*sin(2*PI*500*t)|0.25*sin(2*PI*700*t):s=48000:c=stereo" \
        -c:a pcm_s16le -f s16le
fi

echo "gen-fixtures: $OUT: $made made, $kept kept"
