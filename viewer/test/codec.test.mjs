// The codec message: shown exactly when MSE refuses the playlist's codec.
import { test } from "node:test";
import assert from "node:assert/strict";
import { codecProblem, codecName } from "../src/codec.js";

const chromiumWithoutHevc = (type) => /avc1|mp4a/.test(type);

test("H.265 that the browser cannot decode gets a message naming the codec", () => {
  const seen = [];
  const msg = codecProblem("hvc1.1.6.L93.B0", (t) => (seen.push(t), false));
  assert.deepEqual(seen, ['video/mp4; codecs="hvc1.1.6.L93.B0"']);
  assert.match(msg, /H\.265 \(HEVC\) \(hvc1\.1\.6\.L93\.B0\)/);
  assert.match(msg, /cannot decode/);
  assert.match(msg, /export/i);
  assert.ok(codecProblem("hev1.1.6.L93.B0", chromiumWithoutHevc));
});

test("a supported codec, or none announced, gets no message", () => {
  assert.equal(codecProblem("avc1.4d401e", chromiumWithoutHevc), null);
  assert.equal(codecProblem("hvc1.1.6.L93.B0", () => true), null);
  assert.equal(codecProblem(null, () => false), null);
  assert.equal(codecProblem("", () => false), null);
  // A range that switches codec: the refused one is named.
  const mixed = codecProblem("avc1.4d401e,hvc1.1.6.L93.B0", chromiumWithoutHevc);
  assert.match(mixed, /H\.265 \(HEVC\) \(hvc1\.1\.6\.L93\.B0\)/);
});

test("a throwing isTypeSupported counts as unsupported", () => {
  assert.ok(codecProblem("avc1.4d401e", () => { throw new Error("no MSE"); }));
});

test("codec names", () => {
  assert.equal(codecName("avc1.64001f"), "H.264");
  assert.equal(codecName("hev1.1.6.L93.B0"), "H.265 (HEVC)");
  assert.equal(codecName("mystery"), "mystery");
});
