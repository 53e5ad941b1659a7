// The HLS media playlists the cloud serves (docs/ref/api.md), read just far
// enough to map wall-clock time to media time and back. Every segment has
// #EXT-X-PROGRAM-DATE-TIME (its UTC start); the media timeline is the sum
// of #EXTINF durations, and gaps between recordings are collapsed into an
// #EXT-X-DISCONTINUITY. hls.js keeps the same timeline (frag.start,
// frag.duration, frag.programDateTime), so the mapping functions below take
// either this parser's output or hls.js's fragments. Pure: node tests it.

/**
 * Parses a media playlist: the announced codec and, per segment, its media
 * start and duration (s) and its wall-clock start (ms since 1970).
 */
export function parsePlaylist(text) {
  const out = { codec: null, segments: [] };
  let pdt = null;
  let dur = null;
  let disc = false;
  let start = 0;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith("#EXT-X-IVCS-CODECS:")) {
      out.codec = line.slice(19).replace(/^"|"$/g, "");
    } else if (line.startsWith("#EXT-X-PROGRAM-DATE-TIME:")) {
      const t = Date.parse(line.slice(25));
      pdt = Number.isNaN(t) ? null : t;
    } else if (line.startsWith("#EXTINF:")) {
      dur = parseFloat(line.slice(8));
    } else if (line === "#EXT-X-DISCONTINUITY") {
      disc = true;
    } else if (line && !line.startsWith("#")) {
      if (dur !== null && pdt !== null) {
        out.segments.push({ start, duration: dur, programDateTime: pdt, discontinuity: disc });
        start += dur;
      }
      pdt = null;
      dur = null;
      disc = false;
    }
  }
  return out;
}

/**
 * Where wall-clock `ms` is in the media: `{ media, ms, gap }`, where `ms`
 * is the wall time actually found (the same, or the start of the next
 * recording when `ms` falls in a gap, then `gap` is true). null when `ms`
 * is after the last segment.
 */
export function wallToMedia(frags, ms) {
  for (const f of frags) {
    const end = f.programDateTime + f.duration * 1000;
    if (ms < f.programDateTime) {
      return { media: f.start, ms: f.programDateTime, gap: true };
    }
    if (ms < end) {
      return { media: f.start + (ms - f.programDateTime) / 1000, ms, gap: false };
    }
  }
  return null;
}

/** The wall-clock ms of media time `t`, or null outside the playlist. */
export function mediaToWall(frags, t) {
  if (!frags.length || t < frags[0].start - 0.5) return null;
  // Binary search: the last fragment that starts at or before t.
  let lo = 0;
  let hi = frags.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (frags[mid].start <= t) lo = mid;
    else hi = mid - 1;
  }
  const f = frags[lo];
  const into = Math.min(Math.max(t - f.start, 0), f.duration);
  return f.programDateTime + into * 1000;
}
