// Local-time helpers. The viewer shows wall-clock times in the browser's
// time zone; the API speaks ms since 1970 UTC. Pure functions (no DOM), so
// node's test runner checks them (test/time.test.mjs).

const pad = (n, w = 2) => String(n).padStart(w, "0");

/** `YYYY-MM-DD` of a local date. */
export function dayKey(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** `YYYY-MM` of a local date. */
export function monthKey(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}`;
}

/** Parses `YYYY-MM-DD` as a local date at midnight, or null. */
export function parseDay(s) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s || "");
  if (!m) return null;
  const d = new Date(+m[1], +m[2] - 1, +m[3]);
  return dayKey(d) === s ? d : null;
}

/**
 * [start, end) of a local day in ms since 1970. Built with the Date
 * constructor, so a day with a DST change is 23 or 25 hours long.
 */
export function dayRange(day) {
  const start = new Date(day.getFullYear(), day.getMonth(), day.getDate());
  const end = new Date(day.getFullYear(), day.getMonth(), day.getDate() + 1);
  return [start.getTime(), end.getTime()];
}

/**
 * Minutes east of UTC at the first day of a month (the fallback of
 * `zoneQuery`: one offset for the whole month).
 */
export function tzOffsetMin(year, month0) {
  return -new Date(year, month0, 1).getTimezoneOffset();
}

/** The browser's IANA time zone (`Europe/Berlin`), or null if it has none. */
export function browserZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || null;
  } catch {
    return null;
  }
}

/**
 * The time-zone part of a `days` query for a month: `tz=ZONE`, so the
 * service counts days from local midnight to local midnight across DST
 * changes; without a zone name, `tz_offset_min` of the month's first day.
 */
export function zoneQuery(year, month0, zone = browserZone()) {
  return zone ? `tz=${encodeURIComponent(zone)}` : `tz_offset_min=${tzOffsetMin(year, month0)}`;
}

/** `HH:MM:SS` (local). */
export function clock(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** `YYYY-MM-DD HH:MM:SS` (local). */
export function dateTime(ms) {
  return `${dayKey(new Date(ms))} ${clock(ms)}`;
}

/** `HH:MM` (local). */
export function hhmm(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A duration for people: `45 s`, `3 min 20 s`, `2 h 5 min`. */
export function duration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ""}`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)} h${m % 60 ? ` ${m % 60} min` : ""}`;
}

/**
 * Parses `HH:MM[:SS]` as a time on `day` (local), or null. Used by the
 * keyboard-friendly range inputs of the export.
 */
export function parseClock(day, s) {
  const m = /^(\d{1,2}):(\d{2})(?::(\d{2}))?$/.exec((s || "").trim());
  if (!m || +m[1] > 24 || +m[2] > 59 || +(m[3] || 0) > 59) return null;
  return new Date(day.getFullYear(), day.getMonth(), day.getDate(), +m[1], +m[2], +(m[3] || 0)).getTime();
}
