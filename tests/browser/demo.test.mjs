// The demo in Chromium: opens the viewer of a cloud that `ivcs cam` recorded into (started by
// tests/demo.rs through scripts/demo.sh), checks the day's span and event markers with their
// thumbnails, seeks to a known UTC second, pauses and saves the decoded video frame as a PNG
// (the video drawn to a canvas at its own size) for the Rust block-code decoder, then checks that
// playback advances with decoded frames and no errors. Expectations come in IVCS_EXPECT (JSON);
// screenshots, the frame and result.json go to IVCS_ARTIFACTS. Every wait is a condition with a
// deadline.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";
import { openSession, WAIT } from "./session.mjs";

const { X, OUT, pass, result, page, finish } = await openSession("demo");

async function main() {
  await page.goto(X.url);
  await page.waitForFunction(() => !location.hash.includes("token="), null, WAIT);
  await page.waitForSelector(`#device option[value="${X.device}"]`, { state: "attached", ...WAIT });
  await page.selectOption("#device", X.device);
  await page.fill("#goto-date", X.day);
  await page.waitForSelector(`.day[data-day="${X.day}"][aria-current="date"]`, WAIT);
  pass(`day ${X.day} of device ${X.device} picked`);

  // The recording: one span, as the cloud's timeline says.
  await page.waitForFunction(() => document.querySelectorAll("#timeline rect.span").length > 0, null, WAIT);
  const spans = await page.$$eval("#timeline rect.span", (rs) => rs.map((r) => [Number(r.dataset.startMs), Number(r.dataset.endMs)]));
  assert.deepEqual(spans, [X.span], "spans drawn");
  pass(`timeline shows the camera's span (${((X.span[1] - X.span[0]) / 1000).toFixed(1)} s)`);

  // Event markers at the scheduled times, each with a thumbnail.
  await page.waitForFunction((n) => document.querySelectorAll("#timeline g.event-marker").length >= n, X.min_events, WAIT);
  const markers = await page.$$eval("#timeline g.event-marker", (gs) => gs.map((g) => Number(g.dataset.ms)));
  for (const m of markers) assert.ok(X.event_ms.includes(m), `marker at ${m} not among the scheduled ${X.event_ms}`);
  result.markers = markers;
  await page.waitForFunction((n) => document.querySelectorAll("#events img.thumb").length >= n, X.min_events, WAIT);
  const thumb = await page.$("#events img.thumb");
  await page.waitForFunction((img) => img.complete && img.naturalWidth > 0, thumb, WAIT);
  result.thumbnail = await thumb.evaluate((img) => ({ src: img.currentSrc, w: img.naturalWidth, h: img.naturalHeight }));
  pass(`${markers.length} event marker(s) at scheduled times; thumbnail ${result.thumbnail.w}x${result.thumbnail.h} loads`);

  // Seek: click the timeline at the requested second.
  await page.click("#zoom-fit");
  const box = await page.$eval("#timeline svg", (s) => {
    const r = s.getBoundingClientRect();
    return { x: r.left, y: r.top, w: r.width, a: Number(s.dataset.viewStart), b: Number(s.dataset.viewEnd) };
  });
  await page.mouse.click(box.x + ((X.seek_ms - box.a) / (box.b - box.a)) * box.w, box.y + 36);
  await page.waitForFunction(
    (w) => {
      const v = document.getElementById("video");
      const c = Number(document.getElementById("clock").dataset.ms);
      return !v.paused && v.readyState >= 3 && Math.abs(c - w) <= 1000;
    },
    X.seek_ms,
    WAIT,
  );
  // Pause on the frame, then draw it at the video's own size.
  const frame = await page.evaluate(async () => {
    const v = document.getElementById("video");
    v.pause();
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    const c = document.createElement("canvas");
    c.width = v.videoWidth;
    c.height = v.videoHeight;
    c.getContext("2d").drawImage(v, 0, 0);
    return { png: c.toDataURL("image/png"), w: c.width, h: c.height, clock: Number(document.getElementById("clock").dataset.ms), t: v.currentTime };
  });
  const framePath = join(OUT, "demo-frame.png");
  writeFileSync(framePath, Buffer.from(frame.png.split(",")[1], "base64"));
  result.frame = { path: framePath, w: frame.w, h: frame.h, clock_ms: frame.clock, media_s: frame.t };
  await page.screenshot({ path: join(OUT, "demo-viewer.png") });
  pass(`paused at readout ${new Date(frame.clock).toISOString()} (asked ${new Date(X.seek_ms).toISOString()}); frame ${frame.w}x${frame.h} saved`);

  // Playback advances: a second of frames decoded and shown, no errors.
  const quality = () =>
    page.evaluate(() => {
      const v = document.getElementById("video");
      const q = v.getVideoPlaybackQuality();
      return { total: q.totalVideoFrames, dropped: q.droppedVideoFrames, corrupted: q.corruptedVideoFrames, error: v.error && v.error.message, clock: Number(document.getElementById("clock").dataset.ms) };
    });
  const q0 = await quality();
  await page.evaluate(() => document.getElementById("video").play());
  await page.waitForFunction(
    ([n0, c0]) => {
      const v = document.getElementById("video");
      const q = v.getVideoPlaybackQuality();
      return q.totalVideoFrames >= n0 + 25 && Number(document.getElementById("clock").dataset.ms) >= c0 + 1000;
    },
    [q0.total, q0.clock],
    WAIT,
  );
  const q1 = await quality();
  assert.equal(q1.corrupted, 0, "corrupted frames");
  assert.equal(q1.error, null, "video error");
  assert.ok(await page.$eval("#error", (e) => e.hidden), `error shown: ${await page.textContent("#error")}`);
  result.quality = q1;
  pass(`playback advances: ${q1.total} frames decoded (${q1.dropped} dropped, 0 corrupted), readout ${new Date(q1.clock).toISOString()}`);
}

await finish(main, "demo-result.json");
