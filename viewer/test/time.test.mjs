// Local-day arithmetic, in whatever zone the test runs (TZ=Asia/Shanghai
// and TZ=America/New_York are worth a run: `TZ=... node --test test/`).
import { test } from "node:test";
import assert from "node:assert/strict";
import { browserZone, dayKey, dayRange, parseDay, parseClock, duration, tzOffsetMin, zoneQuery } from "../src/time.js";

test("days parse, print and span their local day", () => {
  const d = parseDay("2023-11-15");
  assert.equal(dayKey(d), "2023-11-15");
  const [a, b] = dayRange(d);
  assert.equal(new Date(a).getHours(), 0);
  assert.equal(dayKey(new Date(b)), "2023-11-16");
  assert.ok(b - a >= 23 * 3600e3 && b - a <= 25 * 3600e3);
  assert.equal(parseDay("2023-02-30"), null);
  assert.equal(parseDay("nope"), null);
});

test("clock input on a day", () => {
  const d = parseDay("2023-11-15");
  assert.equal(parseClock(d, "06:15:20") - dayRange(d)[0], (6 * 3600 + 15 * 60 + 20) * 1000);
  assert.equal(parseClock(d, "6:15") - dayRange(d)[0], (6 * 3600 + 15 * 60) * 1000);
  assert.equal(parseClock(d, "25:00"), null);
  assert.equal(parseClock(d, "x"), null);
});

test("durations and offsets", () => {
  assert.equal(duration(45_000), "45 s");
  assert.equal(duration(200_000), "3 min 20 s");
  assert.equal(duration(7_500_000), "2 h 5 min");
  assert.equal(tzOffsetMin(2023, 10), -new Date(2023, 10, 1).getTimezoneOffset());
});

test("days queries carry the browser's zone, else the month's offset", () => {
  const zone = browserZone();
  // TZ=... node --test: node resolves the zone the variable names.
  if (process.env.TZ) assert.equal(zone, process.env.TZ);
  assert.equal(zoneQuery(2025, 2), `tz=${encodeURIComponent(zone)}`);
  assert.equal(zoneQuery(2025, 2, "Europe/Berlin"), "tz=Europe%2FBerlin");
  assert.equal(zoneQuery(2025, 2, null), `tz_offset_min=${tzOffsetMin(2025, 2)}`);
});
