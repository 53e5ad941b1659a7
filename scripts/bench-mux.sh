#!/usr/bin/env bash
# Benchmark of `ivcs mux` (run by `make bench`): on the 5-minute 1080p25
# 4 Mbit/s H.264 + AAC fixture, wall time (best of N) of
#   - ivcs mux (wasm component) to TS and to fMP4,
#   - ivcs mux --native to TS and to fMP4,
#   - ffmpeg -c copy doing the same job (segment muxer / HLS fMP4, 10 s),
# and AAC encoding speed: ivcs mux with a 5-minute PCM16 48 kHz stereo track
# minus the same run video-only, as x real time.
#
# Prints a table (input MB/s per run) and the targets:
#   component >= 0.8x native, component >= 1.0x ffmpeg (per format).
# A missed target prints MISS but does not fail the script; a command that
# fails does (exit 1), after the table.
#
# Usage: scripts/bench-mux.sh [--runs N]
#   IVCS_BIN   ivcs binary (default: target/release/ivcs)
#   FIXTURES   fixture directory (default: testdata/gen; the --bench set is
#              generated there if missing)
#   BENCH_OUT  scratch directory (default: a directory in /dev/shm, removed
#              at exit, else target/bench-mux). Writing ~160 MB per run to a
#              disk makes writeback of one run land in the next one's time;
#              tmpfs keeps every tool's runs comparable.
# Uses hyperfine if installed (apt-get install hyperfine), else a bash loop.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS=10
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) RUNS=$2; shift 2 ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "bench-mux: unknown argument $1" >&2; exit 2 ;;
    esac
done
IVCS_BIN=${IVCS_BIN:-$ROOT/target/release/ivcs}
FIXTURES=${FIXTURES:-$ROOT/testdata/gen}
if [[ -n "${BENCH_OUT:-}" ]]; then
    OUT=$BENCH_OUT
elif [[ -d /dev/shm && -w /dev/shm ]]; then
    OUT=$(mktemp -d /dev/shm/ivcs-bench-mux.XXXXXX)
    trap 'rm -rf "$OUT"' EXIT
else
    OUT=$ROOT/target/bench-mux
fi

VIDEO=$FIXTURES/bench_h264_main_1920x1080_25fps_gop2s_300s.h264
AAC=$FIXTURES/bench_aac_lc_48000_stereo_300s.aac
PCM=$FIXTURES/bench_pcm16_48000_stereo_300s.s16le
MEDIA_SECONDS=300

if [[ ! -s "$VIDEO" || ! -s "$AAC" || ! -s "$PCM" ]]; then
    echo "bench-mux: generating the benchmark fixtures in $FIXTURES" >&2
    t0=$(date +%s)
    "$ROOT/scripts/gen-fixtures.sh" --bench "$FIXTURES" >&2
    echo "bench-mux: fixtures took $(( $(date +%s) - t0 )) s" >&2
fi
command -v ffmpeg >/dev/null || { echo "bench-mux: ffmpeg not found" >&2; exit 1; }
have_ivcs=1
if [[ ! -x "$IVCS_BIN" ]]; then
    echo "bench-mux: $IVCS_BIN not found (build it or set IVCS_BIN); timing ffmpeg only" >&2
    have_ivcs=0
fi
mkdir -p "$OUT"

size() { stat -c %s "$1"; }
MB_AV=$(awk -v a="$(size "$VIDEO")" -v b="$(size "$AAC")" 'BEGIN{printf "%.3f", (a+b)/1e6}')
MB_PCM=$(awk -v a="$(size "$VIDEO")" -v b="$(size "$PCM")" 'BEGIN{printf "%.3f", (a+b)/1e6}')
MB_V=$(awk -v a="$(size "$VIDEO")" 'BEGIN{printf "%.3f", a/1e6}')

declare -A BEST=()
declare -A MB=()
failed=0

# bench NAME INPUT_MB CMD...: best wall time of RUNS runs into $OUT/NAME
# (emptied before each run), stored in BEST[NAME] (or FAIL).
bench() {
    local name=$1 mb=$2
    shift 2
    local dir="$OUT/$name"
    local cmd
    cmd=$(printf '%q ' "$@")
    cmd=${cmd//@OUT@/$dir}
    MB[$name]=$mb
    echo "bench-mux: $name: $cmd" >&2
    # One untimed run, to fail fast and to warm the page cache.
    rm -rf "$dir" && mkdir -p "$dir"
    if ! bash -c "$cmd" >"$OUT/$name.log" 2>&1; then
        echo "bench-mux: $name FAILED (see $OUT/$name.log)" >&2
        BEST[$name]=FAIL
        failed=1
        return 0
    fi
    if command -v hyperfine >/dev/null; then
        hyperfine --style none --runs "$RUNS" --export-csv "$OUT/$name.csv" \
            --prepare "rm -rf $(printf '%q' "$dir") && mkdir -p $(printf '%q' "$dir")" \
            -- "$cmd" >/dev/null
        # CSV columns: command,mean,stddev,median,user,system,min,max
        BEST[$name]=$(awk -F, 'NR==2{print $(NF-1)}' "$OUT/$name.csv")
    else
        local best="" i t0 t1 t
        for ((i = 0; i < RUNS; i++)); do
            rm -rf "$dir" && mkdir -p "$dir"
            t0=$(date +%s.%N)
            bash -c "$cmd" >/dev/null 2>&1
            t1=$(date +%s.%N)
            t=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.4f", b-a}')
            if [[ -z "$best" ]] || awk -v t="$t" -v b="$best" 'BEGIN{exit !(t<b)}'; then best=$t; fi
        done
        BEST[$name]=$best
    fi
}

AV=(--video "$VIDEO" --audio "$AAC" --audio-format aac --start-utc-ms 1700000000000)
if [[ $have_ivcs == 1 ]]; then
    bench component_ts "$MB_AV" "$IVCS_BIN" mux "${AV[@]}" --format ts --out @OUT@
    bench component_fmp4 "$MB_AV" "$IVCS_BIN" mux "${AV[@]}" --format fmp4 --out @OUT@
    bench native_ts "$MB_AV" "$IVCS_BIN" mux "${AV[@]}" --format ts --native --out @OUT@
    bench native_fmp4 "$MB_AV" "$IVCS_BIN" mux "${AV[@]}" --format fmp4 --native --out @OUT@
fi
FF_IN=(ffmpeg -hide_banner -nostdin -v error -y -f h264 -framerate 25 -i "$VIDEO" -f aac -i "$AAC"
    -map 0:v -map 1:a -c copy)
bench ffmpeg_ts "$MB_AV" "${FF_IN[@]}" -f segment -segment_time 10 -segment_format mpegts @OUT@/seg-%05d.ts
bench ffmpeg_fmp4 "$MB_AV" "${FF_IN[@]}" -bsf:a aac_adtstoasc -f hls -hls_segment_type fmp4 -hls_time 10 \
    -hls_playlist_type vod -hls_segment_filename @OUT@/seg-%05d.m4s @OUT@/index.m3u8
if [[ $have_ivcs == 1 ]]; then
    for mode in component native; do
        flag=()
        [[ $mode == native ]] && flag=(--native)
        bench "${mode}_video_only" "$MB_V" "$IVCS_BIN" mux --video "$VIDEO" --start-utc-ms 1700000000000 \
            --format ts "${flag[@]}" --out @OUT@
        bench "${mode}_pcm16_to_aac" "$MB_PCM" "$IVCS_BIN" mux --video "$VIDEO" --audio "$PCM" \
            --audio-format pcm16 --sample-rate 48000 --channels 2 --start-utc-ms 1700000000000 \
            --format ts "${flag[@]}" --out @OUT@
    done
fi

# ---- report -------------------------------------------------------------------
mbps() { # NAME -> MB/s or n/a
    local t=${BEST[$1]:-}
    if [[ -z "$t" || "$t" == FAIL ]]; then echo "${t:-n/a}"; return; fi
    awk -v mb="${MB[$1]}" -v t="$t" 'BEGIN{printf "%.1f", mb/t}'
}
echo
echo "ivcs mux benchmark: 5 min 1080p25 H.264 4 Mbit/s + AAC ($MB_AV MB), best of $RUNS"
echo "binary: $IVCS_BIN; output in $OUT"
printf '%-26s %10s %10s %10s\n' run seconds input_MB "MB/s"
for name in component_ts native_ts ffmpeg_ts component_fmp4 native_fmp4 ffmpeg_fmp4 \
    component_video_only component_pcm16_to_aac native_video_only native_pcm16_to_aac; do
    [[ -n "${BEST[$name]:-}" ]] || continue
    secs=${BEST[$name]}
    [[ $secs == FAIL ]] || secs=$(awk -v t="$secs" 'BEGIN{printf "%.3f", t}')
    printf '%-26s %10s %10s %10s\n' "$name" "$secs" "${MB[$name]}" "$(mbps "$name")"
done
echo

# ratio A B MIN LABEL: throughput of A relative to B (= time B / time A).
ratio() {
    local a=${BEST[$1]:-} b=${BEST[$2]:-} min=$3 label=$4
    if [[ -z "$a" || -z "$b" || "$a" == FAIL || "$b" == FAIL ]]; then
        printf '%-34s %8s   target >= %.1fx  n/a\n' "$label" "-" "$min"
        return
    fi
    awk -v a="$a" -v b="$b" -v min="$min" -v label="$label" \
        'BEGIN{r=b/a; printf "%-34s %7.2fx   target >= %.1fx  %s\n", label, r, min, (r>=min ? "PASS" : "MISS")}'
}
ratio component_ts native_ts 0.8 "component / native, ts"
ratio component_fmp4 native_fmp4 0.8 "component / native, fmp4"
ratio component_ts ffmpeg_ts 1.0 "component / ffmpeg -c copy, ts"
ratio component_fmp4 ffmpeg_fmp4 1.0 "component / ffmpeg -c copy, fmp4"

# AAC encoding: 300 s of PCM encoded in (pcm run - video-only run) seconds.
for mode in component native; do
    a=${BEST[${mode}_pcm16_to_aac]:-}
    v=${BEST[${mode}_video_only]:-}
    if [[ -n "$a" && -n "$v" && "$a" != FAIL && "$v" != FAIL ]]; then
        awk -v a="$a" -v v="$v" -v s="$MEDIA_SECONDS" -v m="$mode" 'BEGIN{
            d=a-v; if (d <= 0.001) printf "AAC encoding (%s, 48 kHz stereo): too fast to measure (%.3f s)\n", m, d;
            else printf "AAC encoding (%s, 48 kHz stereo): %.1f s extra for %d s of audio = %.0fx real time\n", m, d, s, s/d}'
    fi
done
exit "$failed"
