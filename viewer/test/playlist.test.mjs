// Wall-clock <-> media time over a playlist as the cloud writes it: a gap
// collapsed into a discontinuity, fMP4 maps and byte ranges in between.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parsePlaylist, wallToMedia, mediaToWall } from "../src/playlist.js";

const T0 = Date.parse("2023-11-14T22:13:20.000Z");
const text = `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:5
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-IVCS-CODECS:"avc1.4d401e"
#EXT-X-MAP:URI="/v1/devices/cam1/segments/a.mp4?exp=1&sig=x",BYTERANGE="800@0"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z
#EXTINF:4.000,
#EXT-X-BYTERANGE:1000@800
/v1/devices/cam1/segments/a.mp4?exp=1&sig=x
#EXT-X-MAP:URI="/v1/devices/cam1/segments/b.mp4?exp=1&sig=y",BYTERANGE="800@0"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:24.000Z
#EXTINF:4.000,
#EXT-X-BYTERANGE:1000@800
/v1/devices/cam1/segments/b.mp4?exp=1&sig=y
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="/v1/devices/cam1/segments/c.mp4?exp=1&sig=z",BYTERANGE="800@0"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:15:20.000Z
#EXTINF:3.960,
#EXT-X-BYTERANGE:1000@800
/v1/devices/cam1/segments/c.mp4?exp=1&sig=z
#EXT-X-ENDLIST
`;

test("parses codec, program date times, durations and discontinuities", () => {
  const p = parsePlaylist(text);
  assert.equal(p.codec, "avc1.4d401e");
  assert.deepEqual(
    p.segments.map((s) => [s.start, s.duration, s.programDateTime - T0, s.discontinuity]),
    [[0, 4, 0, false], [4, 4, 4000, false], [8, 3.96, 120000, true]],
  );
});

test("wall time to media time, inside segments and in the gap", () => {
  const { segments } = parsePlaylist(text);
  assert.deepEqual(wallToMedia(segments, T0 + 5500), { media: 5.5, ms: T0 + 5500, gap: false });
  assert.deepEqual(wallToMedia(segments, T0 + 121000), { media: 9, ms: T0 + 121000, gap: false });
  // In the gap: the start of the next recording.
  assert.deepEqual(wallToMedia(segments, T0 + 60000), { media: 8, ms: T0 + 120000, gap: true });
  // Before everything: the first segment; after: nothing.
  assert.deepEqual(wallToMedia(segments, T0 - 10), { media: 0, ms: T0, gap: true });
  assert.equal(wallToMedia(segments, T0 + 124000), null);
});

test("media time back to wall time", () => {
  const { segments } = parsePlaylist(text);
  assert.equal(mediaToWall(segments, 0), T0);
  assert.equal(mediaToWall(segments, 5.5), T0 + 5500);
  assert.equal(mediaToWall(segments, 9), T0 + 121000);
  assert.equal(mediaToWall(segments, 50), T0 + 120000 + 3960);
  assert.equal(mediaToWall([], 1), null);
  for (const ms of [T0, T0 + 1234, T0 + 7999, T0 + 120500]) {
    assert.equal(mediaToWall(segments, wallToMedia(segments, ms).media), ms);
  }
});
