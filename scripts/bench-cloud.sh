#!/usr/bin/env bash
# Benchmark of the cloud service (run by `make bench`; method and numbers in
# docs/design/cloud-bench.md). One run of tests/src/bin/cloud_bench.rs does:
#
# Upload: N simulated devices (default 16) each upload K segments (default
# 20) of 10 s at 1-4 Mbit/s (1.25-5 MB), all at once and back to back,
#   - to the real `ivcs cloud serve` through the real device protocol
#     (signed chunked PUT with expect: 100-continue, then a signed commit;
#     the service checks the signature, hashes, stores and indexes), once with
#     `fsync = false` and once with the default `fsync = true`;
#   - to nginx storing the same bodies as the same chunked PUTs (WebDAV
#     `dav_methods PUT`, no auth, no index, no fsync) on the same file system.
# Runs alternate in a rotating order, best of --runs by MB/s, `sync` before
# each run; the table gives segments/s, MB/s, p50/p99 upload latency and
# server CPU seconds per GB.
# Target: ivcs with fsync=false >= 0.8x nginx MB/s (like-for-like: auth,
# hashing and indexing on, durability as nginx's). The fsync=true row is the
# production default; its ratio is printed for information, since nginx
# acknowledges before anything reaches the disk.
#
# Playlist: one device with 8,640 committed 10 s segments (24 h), the app
# playlist of the whole day requested 200 times in a row; p50/p99.
# Target: p99 < 20 ms. The playlist is checked (8,640 entries, no gaps).
#
# A missed target prints MISS but does not fail the script; a failed request
# or command does (exit 1).
#
# Usage: scripts/bench-cloud.sh [--devices N] [--segments K] [--runs R]
#                               [--playlist-requests N]
#   IVCS_BIN   ivcs binary (default: target/release/ivcs, built if missing)
#   BENCH_OUT  scratch directory (default: target/bench-cloud). Must be on a
#              disk, not tmpfs: the comparison is about the same disk.
# nginx is installed with apt-get when missing and running as root; otherwise
# the service is measured alone and the ratios read n/a.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GEN_ARGS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --devices|--segments|--runs|--playlist-requests) GEN_ARGS+=("$1" "$2"); shift 2 ;;
        -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
        *) echo "bench-cloud: unknown argument $1" >&2; exit 2 ;;
    esac
done
CARGO=${CARGO:-cargo}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
IVCS_BIN=${IVCS_BIN:-$TARGET_DIR/release/ivcs}
OUT=${BENCH_OUT:-$TARGET_DIR/bench-cloud}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

if [[ $(stat -f -c %T "$OUT") == tmpfs ]]; then
    echo "bench-cloud: $OUT is on tmpfs; set BENCH_OUT to a directory on a disk" >&2
    exit 2
fi

# ---- build ---------------------------------------------------------------------
if [[ ! -x "$IVCS_BIN" ]]; then
    echo "bench-cloud: building ivcs" >&2
    (cd "$ROOT" && $CARGO build --release -p ivcs-cli)
    IVCS_BIN=$TARGET_DIR/release/ivcs
fi
(cd "$ROOT" && $CARGO build --release -p ivcs-tests --bin cloud_bench)
GEN=$TARGET_DIR/release/cloud_bench
export IVCS_BIN

# ---- nginx ---------------------------------------------------------------------
if ! command -v nginx >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "bench-cloud: installing nginx" >&2
        (apt-get install -y nginx-light >/dev/null 2>&1 ||
            { apt-get update >/dev/null && apt-get install -y nginx >/dev/null; }) ||
            echo "bench-cloud: apt-get could not install nginx" >&2
    else
        echo "bench-cloud: nginx is not installed (run as root to have it installed with apt-get," \
            "or apt-get install nginx); measuring the service alone" >&2
    fi
fi

CONF=$(mktemp -d "${TMPDIR:-/tmp}/ivcs-bench-nginx.XXXXXX")
NGINX_PID=""
cleanup() {
    if [[ -n "$NGINX_PID" ]]; then
        kill "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    rm -rf "$CONF" "$OUT/nginx-root" "$OUT/nginx-tmp"
}
trap cleanup EXIT

# A loopback port nobody listens on (bash's /dev/tcp connect fails).
free_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# start_nginx PORT: nginx as a non-daemon child; waits until it listens.
start_nginx() {
    local port=$1 user_line=""
    # Workers of a root master would run as nobody and could not write here.
    [[ $(id -u) == 0 ]] && user_line="user $(id -un) $(id -gn);"
    mkdir -p "$OUT/nginx-root/put" "$OUT/nginx-tmp"
    cat >"$CONF/nginx.conf" <<EOF
# Written by scripts/bench-cloud.sh: nginx storing PUT bodies on the disk the
# service uses. Body temp files live on the same file system as the root, so
# a finished upload is renamed into place, as the service does.
daemon off;
master_process on;
worker_processes auto;
$user_line
pid $CONF/nginx.pid;
error_log $CONF/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $OUT/nginx-tmp 1 2;
    proxy_temp_path $CONF/proxy;
    fastcgi_temp_path $CONF/fastcgi;
    uwsgi_temp_path $CONF/uwsgi;
    scgi_temp_path $CONF/scgi;
    client_max_body_size 64m;
    client_body_buffer_size 128k;
    server {
        listen 127.0.0.1:$port;
        location /put/ {
            root $OUT/nginx-root;
            dav_methods PUT;
            create_full_put_path on;
            dav_access user:rw;
        }
    }
}
EOF
    nginx -e "$CONF/error.log" -p "$CONF" -c "$CONF/nginx.conf" &
    NGINX_PID=$!
    local deadline=$((SECONDS + 10))
    while ((SECONDS < deadline)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$NGINX_PID" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "bench-cloud: nginx did not start on port $port:" >&2
    cat "$CONF/error.log" >&2 || true
    kill "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=""
    return 1
}

NGINX_ARGS=()
if command -v nginx >/dev/null; then
    for _ in 1 2 3; do
        # Another process may take the port between the probe and the bind.
        if PORT=$(free_port) && start_nginx "$PORT"; then
            NGINX_ARGS=(--nginx-url "http://127.0.0.1:$PORT/put" --nginx-root "$OUT/nginx-root/put"
                --nginx-pid "$NGINX_PID")
            break
        fi
    done
    [[ ${#NGINX_ARGS[@]} -gt 0 ]] || echo "bench-cloud: no nginx; measuring the service alone" >&2
fi

# The load average says whether something else competed for the CPUs.
echo "bench-cloud: $IVCS_BIN, data in $OUT ($(stat -f -c %T "$OUT")), $(nproc) CPUs," \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$GEN" --work "$OUT/work" "${NGINX_ARGS[@]}" "${GEN_ARGS[@]}"
echo "bench-cloud: load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
