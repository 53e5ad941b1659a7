#!/usr/bin/env bash
# Builds the web viewer into OUTDIR. The default, target/share/ivcs/viewer,
# is where target/release/ivcs looks (viewer_dir defaults to
# <exe dir>/../share/ivcs/viewer); `make dist` builds dist/share/ivcs/viewer.
#
# Usage: scripts/build-viewer.sh [OUTDIR]
#
# There is no bundler (docs/design/viewer.md): the build is `npm ci` for
# hls.js (pinned in viewer/package-lock.json) and a copy of
#   viewer/index.html           -> OUTDIR/index.html
#   viewer/src/*                -> OUTDIR/
#   hls.js's ES module + worker -> OUTDIR/vendor/ (with its licence)
#   and a gzip copy of each text file (FILE.gz), served when accepted
# The copy is made next to OUTDIR and renamed over it, so a running service
# never serves a half-copied viewer.
#
# `npm ci` runs only when viewer/node_modules is missing or older than the
# lock file; set FORCE=1 to run it anyway.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT=${1:-$ROOT/target/share/ivcs/viewer}
V="$ROOT/viewer"

if ! command -v npm >/dev/null 2>&1; then
    echo "build-viewer: npm not found (apt-get install npm)" >&2
    exit 1
fi
stamp="$V/node_modules/.package-lock.json"
if [[ "${FORCE:-0}" == 1 || ! -f "$stamp" || "$V/package-lock.json" -nt "$stamp" ]]; then
    (cd "$V" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
fi
HLS="$V/node_modules/hls.js"
for f in dist/hls.light.min.mjs dist/hls.worker.js LICENSE; do
    [[ -s "$HLS/$f" ]] || { echo "build-viewer: $HLS/$f missing after npm ci" >&2; exit 1; }
done

mkdir -p "$(dirname "$OUT")"
tmp="$OUT.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp/vendor"
cp "$V/index.html" "$tmp/index.html"
cp "$V"/src/*.js "$V"/src/*.css "$tmp/"
cp "$HLS/dist/hls.light.min.mjs" "$HLS/dist/hls.worker.js" "$tmp/vendor/"
cp "$HLS/LICENSE" "$tmp/vendor/hls.js-LICENSE.txt"
# Precompressed copies, served to clients that accept gzip (cloud/src/viewer.rs).
# -n: no name or time stamp inside, so the same input gives the same bytes.
find "$tmp" -type f \( -name '*.html' -o -name '*.js' -o -name '*.mjs' -o -name '*.css' -o -name '*.txt' -o -name '*.svg' -o -name '*.json' \) \
    -exec gzip -9 -n -k {} +
rm -rf "$OUT.old.$$"
[[ -e "$OUT" ]] && mv "$OUT" "$OUT.old.$$"
mv "$tmp" "$OUT"
rm -rf "$OUT.old.$$"
echo "build-viewer: $OUT ($(find "$OUT" -type f | wc -l) files, hls.js $(node -p "require('$HLS/package.json').version" 2>/dev/null || echo '?'))"
