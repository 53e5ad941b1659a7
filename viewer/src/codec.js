// Can this browser decode the recording? Decided from the codec string the
// playlist announces (#EXT-X-IVCS-CODECS, RFC 6381) before any media is
// loaded, so the viewer shows a sentence instead of a black box. Chromium
// without platform HEVC support is the case that matters: cameras record
// H.265, and hls.js would fail with a buffer error nobody can read. Pure
// function, checked by node (test/codec.test.mjs) and in the browser test.

/** A name for people of an RFC 6381 codec string. */
export function codecName(codec) {
  const c = (codec || "").toLowerCase();
  if (c.startsWith("avc1") || c.startsWith("avc3")) return "H.264";
  if (c.startsWith("hvc1") || c.startsWith("hev1")) return "H.265 (HEVC)";
  if (c.startsWith("av01")) return "AV1";
  if (c.startsWith("vp09")) return "VP9";
  return codec || "an unknown codec";
}

/**
 * null when `isTypeSupported` accepts the codec in an MP4 (what hls.js
 * feeds MSE, TS included: it transmuxes to fMP4); else the message to show.
 * A missing codec string is not a reason to refuse: let the player try.
 */
export function codecProblem(codecs, isTypeSupported) {
  // The playlist lists every codec of the range, comma-separated: the first
  // one the browser refuses is the problem.
  const codec = (codecs || "")
    .split(",")
    .map((c) => c.trim())
    .filter(Boolean)
    .find((c) => {
      try {
        return !isTypeSupported(`video/mp4; codecs="${c}"`);
      } catch {
        return true;
      }
    });
  if (!codec) return null;
  const name = codecName(codec);
  return (
    `This recording is ${name} (${codec}), which this browser cannot decode. ` +
    (name.startsWith("H.265")
      ? "Chromium and Firefox play H.265 only with hardware support; Safari and Edge on most machines can. "
      : "") +
    "You can still export the range as MP4 below and play it in a desktop player such as VLC or mpv."
  );
}
