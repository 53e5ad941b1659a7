#!/usr/bin/env bash
# Regenerates the small fixtures committed under testdata/ (used by the
# engine's golden-digest and bad-input tests, which need inputs that do not
# change with the ffmpeg version). Run only when adding fixtures; the golden
# digests in engine/tests/golden.rs must be updated alongside.
set -euo pipefail
cd "$(dirname "$0")/../testdata"
ff() { ffmpeg -hide_banner -v error -y "$@"; }
# H.264 Main, 160x120, 25 fps, GOP 1 s (25 frames), 3 s, no B-frames.
ff -f lavfi -t 3 -i testsrc2=size=160x120:rate=25 -c:v libx264 -profile:v main -bf 0 \
   -g 25 -keyint_min 25 -sc_threshold 0 -b:v 100k -f h264 small-h264-160x120-gop1s.h264
# The same with B-frames (must be refused).
ff -f lavfi -t 1 -i testsrc2=size=160x120:rate=25 -c:v libx264 -profile:v main -bf 2 \
   -g 25 -f h264 small-h264-bframes.h264
# H.265 Main, 192x108, 25 fps, GOP 1 s, 3 s, no B-frames.
ff -f lavfi -t 3 -i testsrc2=size=192x108:rate=25 -c:v libx265 -b:v 100k \
   -x265-params bframes=0:keyint=25:min-keyint=25:scenecut=0:log-level=error -f hevc small-h265-192x108-gop1s.h265
# Audio: AAC-LC 48 kHz mono ADTS; G.711 A-law 8 kHz; PCM s16le 16 kHz stereo.
ff -f lavfi -t 3 -i sine=f=440:r=48000 -c:a aac -b:a 48k -f adts small-aac-48k-mono.aac
ff -f lavfi -t 3 -i sine=f=440:r=8000 -f alaw small-g711a-8k.alaw
ff -f lavfi -t 3 -i sine=f=440:r=16000 -ac 2 -f s16le small-pcm16-16k-stereo.pcm
ls -l
