#!/usr/bin/env bash
# Build every cargo-fuzz target in fuzz/ and run each for N seconds
# (default 10): ./scripts/fuzz-smoke.sh [SECONDS]
# Exits non-zero if a build fails or any target finds a crash (the input
# is left in fuzz/artifacts/<target>/).
#
# Env: FUZZ_SANITIZER (default "address"; "none" if the toolchain lacks
# sanitizer support), CARGO_TARGET_DIR (honoured by cargo).
set -uo pipefail

secs="${1:-10}"
sanitizer="${FUZZ_SANITIZER:-address}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root" || exit 2

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz-smoke: cargo-fuzz not found (cargo install cargo-fuzz --locked)" >&2
    exit 2
fi

# cargo-fuzz passes nightly-only flags (-Zsanitizer, -Cpasses); this lets a
# stable toolchain accept them.
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz build -O -s "$sanitizer"; then
    echo "fuzz-smoke: build failed" >&2
    exit 1
fi

failed=()
for target in $(cargo fuzz list); do
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    dirs=("$corpus")
    [ -d "fuzz/seeds/$target" ] && dirs+=("fuzz/seeds/$target")
    echo "fuzz-smoke: $target for ${secs}s"
    if ! cargo fuzz run -O -s "$sanitizer" "$target" "${dirs[@]}" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz-smoke: crashes in: ${failed[*]} (see fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz-smoke: all targets ran ${secs}s without crashes"
