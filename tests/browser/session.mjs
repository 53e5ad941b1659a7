// What the browser tests share: expectations from IVCS_EXPECT (JSON), artifacts under
// IVCS_ARTIFACTS, Debian's Chromium through playwright-core with the flags this closed network
// needs and a fresh profile, a page whose console errors, page errors and failed requests are
// collected as problems, and one way to end: result JSON written, browser closed, exit status.

import { chromium } from "playwright-core";
import { mkdirSync, mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { join } from "node:path";

/** Waits on a condition get this deadline. */
export const WAIT = { timeout: 30_000 };

/**
 * Opens Chromium for the test `name`; `contextOptions` are added to the
 * persistent context's. Returns the expectations, the artifact directory, a
 * log and check recorder, the page, and `finish(main, resultFile)`.
 */
export async function openSession(name, contextOptions = {}) {
  const X = JSON.parse(process.env.IVCS_EXPECT);
  const OUT = process.env.IVCS_ARTIFACTS;
  mkdirSync(OUT, { recursive: true });
  const t0 = Date.now();
  const log = (msg) => console.log(`[${name} ${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`);
  const problems = [];
  const result = { checks: [] };
  const pass = (check) => {
    result.checks.push(check);
    log(`ok: ${check}`);
  };
  const profile = mkdtempSync(join(OUT, "profile-"));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    timezoneId: X.timezone,
    locale: "en-GB",
    viewport: { width: 1280, height: 900 },
    ...contextOptions,
  });
  const page = ctx.pages()[0] || (await ctx.newPage());
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => {
    // An aborted media request is hls.js cancelling a load (seek, destroy).
    const aborted = /ERR_ABORTED/.test(r.failure()?.errorText || "");
    if (!aborted) problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
  });

  /** Runs `main`, records problems in `resultFile`, closes the browser, exits 1 on failure. */
  const finish = async (main, resultFile) => {
    let failed = null;
    try {
      await main();
    } catch (e) {
      failed = e;
    }
    try {
      if (!failed && problems.length) failed = new Error(`browser problems:\n  ${problems.join("\n  ")}`);
      result.problems = problems;
      result.seconds = (Date.now() - t0) / 1000;
      writeFileSync(join(OUT, resultFile), JSON.stringify(result, null, 2));
    } finally {
      await ctx.close();
      rmSync(profile, { recursive: true, force: true });
    }
    if (failed) {
      console.error(`[${name}] FAILED: ${failed.stack || failed}`);
      if (problems.length) console.error(`[${name}] also: ${problems.join("; ")}`);
      process.exit(1);
    }
    log(`all ${result.checks.length} checks passed`);
  };
  return { X, OUT, log, pass, problems, result, page, finish };
}
