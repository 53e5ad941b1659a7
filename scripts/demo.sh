#!/usr/bin/env bash
# `make demo`: the cloud on ./demo-data, a virtual camera (`ivcs cam`) recording into it, and the
# URL of the web viewer. Runs until Ctrl-C, then stops the camera (iv_cs_exit) and the cloud.
#
# Idempotent: a second run reuses the data, the device, its secret and the viewer token, all kept
# in the data directory:
#   demo-data/cloud/         the cloud's data directory (SQLite + segment files)
#   demo-data/device.secret  the demo device's secret (what `ivcs cloud device add` printed)
#   demo-data/viewer.token   the app token in the viewer URL
#   demo-data/cloud.log      the cloud's log
#
# Environment (all optional): IVCS_BIN (default dist/bin/ivcs), DEMO_DATA (default ./demo-data),
# DEMO_LISTEN (default 127.0.0.1:8960; port 0 picks a free one), DEMO_DEVICE (default demo-cam),
# DEMO_CAM_ARGS (options of `ivcs cam`, default: an event with a snapshot every 30 s).
# docs/guide/quickstart.md describes it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${IVCS_BIN:-$ROOT/dist/bin/ivcs}
DATA=${DEMO_DATA:-$ROOT/demo-data}
LISTEN=${DEMO_LISTEN:-127.0.0.1:8960}
DEVICE=${DEMO_DEVICE:-demo-cam}
CAM_ARGS=${DEMO_CAM_ARGS:---event-every 30 --event-first 10 --event-length 5}

say() { echo "demo: $*"; }
die() { echo "demo: $*" >&2; exit 1; }
[ -x "$BIN" ] || die "no ivcs binary at $BIN: run \`make dist\` first (or set IVCS_BIN)"
mkdir -p "$DATA"
admin() { "$BIN" cloud --data "$DATA/cloud" "$@"; }

# The device and its secret: created once. A device whose secret file was lost is registered
# again (removing its recordings), since the secret cannot be read back.
if [ ! -s "$DATA/device.secret" ]; then
    if admin device list 2>/dev/null | grep -qw -- "$DEVICE"; then
        say "device $DEVICE exists but $DATA/device.secret is missing: registering it again"
        admin device remove "$DEVICE" >/dev/null
    fi
    admin device add "$DEVICE" > "$DATA/device.secret.tmp"
    mv "$DATA/device.secret.tmp" "$DATA/device.secret"
    say "registered device $DEVICE"
fi
# Setting the same plan again is harmless.
admin plan set "$DEVICE" --type full-time --days 7 >/dev/null
if [ ! -s "$DATA/viewer.token" ]; then
    admin token create demo-viewer > "$DATA/viewer.token.tmp"
    mv "$DATA/viewer.token.tmp" "$DATA/viewer.token"
fi
TOKEN=$(cat "$DATA/viewer.token")

# The cloud and the camera run in sessions of their own: Ctrl-C reaches this script only, which
# stops the camera first (one SIGINT: iv_cs_exit) and the cloud after it, so the camera's last
# uploads still land.
: > "$DATA/cloud.out"
setsid "$BIN" cloud --data "$DATA/cloud" serve --listen "$LISTEN" > "$DATA/cloud.out" 2> "$DATA/cloud.log" &
CLOUD=$!
CAM=
stop() {
    trap - INT TERM
    if [ -n "$CAM" ] && kill -0 "$CAM" 2>/dev/null; then
        kill -INT "$CAM" 2>/dev/null || true
        wait "$CAM" 2>/dev/null || true
    fi
    if kill -0 "$CLOUD" 2>/dev/null; then
        kill -TERM "$CLOUD" 2>/dev/null || true
        wait "$CLOUD" 2>/dev/null || true
    fi
    say "stopped"
    exit "${1:-0}"
}
trap 'stop 0' INT TERM

# The service's first line says where it listens (also for port 0).
ADDR=
for _ in $(seq 100); do
    ADDR=$(sed -n 's/^listening on //p' "$DATA/cloud.out")
    [ -n "$ADDR" ] && break
    kill -0 "$CLOUD" 2>/dev/null || { cat "$DATA/cloud.log" >&2; die "the cloud did not start (is $LISTEN in use?)"; }
    sleep 0.1
done
[ -n "$ADDR" ] || stop 1
say "cloud at http://$ADDR (data in $DATA/cloud, log in $DATA/cloud.log)"
say "viewer: http://$ADDR/#token=$TOKEN"

# shellcheck disable=SC2086 # CAM_ARGS is a list of options
setsid "$BIN" cam --cloud "http://$ADDR" --device "$DEVICE" --secret-file "$DATA/device.secret" $CAM_ARGS &
CAM=$!
set +e
wait "$CAM"
rc=$?
set -e
CAM=
if [ "$rc" -ne 0 ]; then
    say "the camera exited with status $rc"
    stop "$rc"
fi
say "camera stopped; the cloud keeps serving until Ctrl-C"
wait "$CLOUD" || true
stop 0
