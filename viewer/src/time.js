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
 * The `tz_offset_min` to send for a month: minutes east of UTC at its
 * first day (the API takes one offset per month; a DST change inside the
 * month moves the day boundary of its later days by an hour).
 */
export function tzOffsetMin(year, month0) {
  return -new Date(year, month0, 1).getTimezoneOffset();
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
