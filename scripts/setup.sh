#!/usr/bin/env bash
# Installs everything `make`, `make demo`, `make test` and `make bench` need, and does nothing
# when it is all there already (a second run takes well under a second). `make` calls it before
# every top-level target and .ci/run calls it first, so CI walks the newcomer's path.
#
#   Rust:    the wasm32-wasip2 and i686-unknown-linux-gnu targets, the rust-src component
#            (rustup, no root needed), cargo-fuzz (cargo install).
#   Debian:  ffmpeg (test media and checks), gcc-multilib (the i686 layout check), pkg-config
#            (the example firmware), nodejs + npm (the web viewer), chromium (browser tests).
#            Installed with apt-get when run as root; otherwise the exact command is printed
#            and the script fails.
#   npm:     viewer/ (hls.js) and tests/browser/ (playwright-core, which drives Debian's
#            chromium and downloads no browser), each only when its lock file changed.
#
# Usage: scripts/setup.sh [--check]   (--check: report what is missing, install nothing)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHECK=0
[[ "${1:-}" == --check ]] && CHECK=1

say() { echo "setup: $*" >&2; }
missing=0

# Debian packages: each named with a file that proves it is installed.
declare -A DEB_PROOF=(
    [ffmpeg]=/usr/bin/ffprobe
    [gcc-multilib]=/usr/include/x86_64-linux-gnu/gnu/stubs-32.h
    [pkg-config]=/usr/bin/pkg-config
    [nodejs]=/usr/bin/node
    [npm]=/usr/bin/npm
    [chromium]=/usr/bin/chromium
)
need_deb=()
for pkg in ffmpeg gcc-multilib pkg-config nodejs npm chromium; do
    [[ -e "${DEB_PROOF[$pkg]}" ]] || need_deb+=("$pkg")
done
if ((${#need_deb[@]})); then
    if ((CHECK)); then
        say "missing Debian packages: ${need_deb[*]}"; missing=1
    elif [[ $(id -u) == 0 ]]; then
        say "installing Debian packages: ${need_deb[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${need_deb[@]}" >/dev/null
    else
        say "missing Debian packages: ${need_deb[*]}. Install them with:"
        say "  sudo apt-get update && sudo apt-get install -y ${need_deb[*]}"
        exit 1
    fi
fi

# Rust targets and components (rustup; per user, no root needed).
if ! command -v rustup >/dev/null; then
    say "rustup not found: install Rust 1.95 with rustup first (docs/guide/quickstart.md)"
    exit 1
fi
installed_targets=$(rustup target list --installed)
for t in wasm32-wasip2 i686-unknown-linux-gnu; do
    if ! grep -qx "$t" <<<"$installed_targets"; then
        if ((CHECK)); then say "missing rust target $t"; missing=1; else rustup target add "$t"; fi
    fi
done
if ! rustup component list --installed | grep -q '^rust-src'; then
    if ((CHECK)); then say "missing rust component rust-src"; missing=1; else rustup component add rust-src; fi
fi

# cargo-fuzz for the fuzz smoke run in `make test`.
if ! command -v cargo-fuzz >/dev/null; then
    if ((CHECK)); then say "missing cargo-fuzz"; missing=1; else cargo install cargo-fuzz --locked; fi
fi

# npm ci DIR, unless DIR/node_modules is already installed from the current lock.
npm_ci() {
    local stamp="$ROOT/$1/node_modules/.package-lock.json"
    if [[ ! -f "$stamp" || "$ROOT/$1/package-lock.json" -nt "$stamp" ]]; then
        if ((CHECK)); then say "npm packages of $1 not installed"; missing=1; return; fi
        (cd "$ROOT/$1" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
    fi
}
npm_ci viewer
npm_ci tests/browser

exit "$missing"
