// The viewer page: token, device/channel/day pickers, timeline, events,
// player and export wired together. State lives here; the parts (calendar,
// timeline, player, export) know nothing of each other.

import { Api, ApiError } from "./api.js";
import { Calendar } from "./calendar.js";
import { Timeline } from "./timeline.js";
import { Player } from "./player.js";
import { download, save } from "./export.js";
import { browserZone, clock, dateTime, dayKey, dayRange, duration, monthKey, parseClock, parseDay, zoneQuery } from "./time.js";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "ivcs.viewer.token";
const PREFS_KEY = "ivcs.viewer.prefs";

const state = {
  api: null,
  devices: [],
  device: null,
  channel: 0,
  day: null,
  range: [0, 0],
  spans: [],
  selection: null,
  exportAbort: null,
};

// ---- errors and status ------------------------------------------------------

function showError(e) {
  const box = $("error");
  box.textContent = e instanceof Error ? e.message : String(e);
  box.hidden = false;
  if (e instanceof ApiError && e.status === 401) askToken("The service refused the token (401). Enter another one.");
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

/** Runs an async action, showing its failure as text. */
function act(f) {
  return (...args) => {
    clearError();
    return Promise.resolve()
      .then(() => f(...args))
      .catch(showError);
  };
}

function setStatus(text) {
  $("status").textContent = text;
}

// ---- token ------------------------------------------------------------------

/** `#token=...&device=...&channel=...&day=YYYY-MM-DD` (all optional). */
function hashParams() {
  return new URLSearchParams(location.hash.replace(/^#/, ""));
}

function takeTokenFromHash() {
  const p = hashParams();
  const t = p.get("token");
  if (!t) return null;
  // Out of the address bar and history: a token in a URL leaks by copy-paste.
  p.delete("token");
  const rest = p.toString();
  history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  return t;
}

function askToken(why) {
  const dlg = $("token-dialog");
  if (why) $("token-why").textContent = why;
  if (!dlg.open) dlg.showModal();
  $("token-input").focus();
}

function prefs() {
  try {
    return JSON.parse(localStorage.getItem(PREFS_KEY) || "{}");
  } catch {
    return {};
  }
}

function savePrefs() {
  localStorage.setItem(PREFS_KEY, JSON.stringify({ device: state.device, channel: state.channel }));
}

// ---- parts --------------------------------------------------------------------

const calendar = new Calendar($("cal-grid"), $("cal-title"), (d) => pickDay(d));

const timeline = new Timeline($("timeline"), {
  summary: $("timeline-summary"),
  onPlay: (ms) => playAt(ms),
  onSelect: (a, b) => setSelection([a, b]),
});

const player = new Player($("video"), {
  onWall(ms) {
    const c = $("clock");
    c.textContent = dateTime(ms);
    c.dataset.ms = String(Math.round(ms));
    timeline.setPlayhead(ms);
  },
  onStatus: setStatus,
  onError: showError,
  onCodec(msg) {
    $("codec").textContent = msg || "";
    $("codec").hidden = !msg;
    $("video").hidden = Boolean(msg);
    if (msg) $("placeholder").hidden = true;
  },
  onEnded(lastMs) {
    // Carry on with the next recording of the day, if there is one.
    // A playlist covers 45 min: go on from where it ended, in the same
    // span (a long recording) or the next one.
    const next = state.spans.find((s) => s.end_ms > lastMs + 1000);
    if (next) playAt(Math.max(next.start_ms, lastMs));
    else setStatus("End of the recordings.");
  },
  onExpired(ms) {
    playAt(Math.floor(ms / 1000) * 1000);
  },
});

/** Back to "nothing playing": another device, channel or day. */
function resetPlayer() {
  player.stop();
  player.cb.onCodec(null);
  $("video").hidden = true;
  $("placeholder").hidden = false;
  $("clock").textContent = "--:--:--";
  delete $("clock").dataset.ms;
  timeline.setPlayhead(null);
  setStatus("");
}

const playAt = act(async (ms) => {
  if (!state.device) return;
  $("placeholder").hidden = true;
  $("video").hidden = false;
  $("clock").textContent = dateTime(ms);
  delete $("clock").dataset.ms;
  timeline.setPlayhead(ms);
  await player.playAt(state.api, state.device, state.channel, ms);
});

// ---- devices, days, timeline, events ----------------------------------------

async function start(token) {
  state.api = new Api(token);
  const { devices } = await state.api.devices();
  state.devices = devices;
  const sel = $("device");
  sel.replaceChildren(...devices.map((d) => new Option(d.id, d.id)));
  sel.disabled = devices.length === 0;
  if (!devices.length) {
    setStatus("No devices are registered yet.");
    return;
  }
  const h = hashParams();
  const p = prefs();
  const want = [h.get("device"), p.device].find((id) => devices.some((d) => d.id === id));
  state.device = want || devices[0].id;
  sel.value = state.device;
  fillChannels(h.get("channel") ?? p.channel);
  const day = parseDay(h.get("day"));
  await (day ? pickDay(day) : pickLatestDay());
}

function fillChannels(want) {
  const dev = state.devices.find((d) => d.id === state.device);
  const chans = dev && dev.channels.length ? dev.channels : [0];
  const sel = $("channel");
  sel.replaceChildren(...chans.map((c) => new Option(`${c}`, String(c))));
  sel.disabled = false;
  const c = Number(want);
  state.channel = chans.includes(c) ? c : chans[0];
  sel.value = String(state.channel);
}

let monthSeq = 0;

/** Shows month `d` in the calendar, unless another month was asked for meanwhile. */
async function loadMonth(d) {
  const seq = ++monthSeq;
  const days = await monthDays(d);
  if (seq === monthSeq) calendar.show(d, days.days);
  return days.days;
}

/** The month's days with video in the browser's time zone. */
async function monthDays(d) {
  const [y, m, zone] = [d.getFullYear(), d.getMonth(), browserZone()];
  try {
    return await state.api.days(state.device, state.channel, monthKey(d), zoneQuery(y, m, zone));
  } catch (e) {
    // A zone the service's tz database does not know (400): one offset
    // for the month, right except after a DST change inside it.
    if (!zone || !(e instanceof ApiError) || e.status !== 400) throw e;
    return state.api.days(state.device, state.channel, monthKey(d), zoneQuery(y, m, null));
  }
}

/**
 * Today if it has video, else the latest day with video in the last year.
 * Gives up as soon as the user picks a day.
 */
async function pickLatestDay() {
  const today = new Date();
  for (let back = 0; back < 12 && !state.day; back++) {
    const m = new Date(today.getFullYear(), today.getMonth() - back, 1);
    const days = (await loadMonth(m)).filter((k) => k <= dayKey(today));
    if (state.day) return;
    if (days.length) return pickDay(parseDay(days[days.length - 1]));
  }
  if (!state.day) return pickDay(today);
}

const pickDay = act(async (day) => {
  if (!state.api || !state.device) return;
  state.day = day;
  if (monthKey(calendar.month) !== monthKey(day)) await loadMonth(day);
  calendar.select(day);
  $("goto-date").value = dayKey(day);
  const [a, b] = (state.range = dayRange(day));
  $("tl-day").textContent = day.toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short", year: "numeric" });
  timeline.setDay(a, b);
  setSelection(null);
  const [tl, ev] = await Promise.all([
    state.api.timeline(state.device, state.channel, a, b),
    state.api.events(state.device, state.channel, a, b),
  ]);
  if (state.day !== day) return;
  state.spans = tl.spans;
  timeline.setData({ spans: tl.spans, gaps: tl.gaps, events: ev.events });
  renderEvents(ev.events, ev.truncated);
  setStatus(tl.spans.length ? "" : "Nothing recorded on this day.");
});

function renderEvents(events, truncated) {
  const ul = $("events");
  $("ev-count").textContent = events.length ? `(${events.length}${truncated ? "+" : ""})` : "";
  if (!events.length) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = "No events on this day.";
    ul.replaceChildren(li);
    return;
  }
  ul.replaceChildren(
    ...events.map((e) => {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "event";
      b.dataset.ms = String(e.utc_start_ms);
      b.dataset.key = e.event_key;
      const what = e.info || `event ${e.event_id}`;
      const len = e.utc_end_ms !== null && e.utc_end_ms > e.utc_start_ms ? `, ${duration(e.utc_end_ms - e.utc_start_ms)}` : "";
      // The visible text is the accessible name (WCAG 2.5.3), with a hidden verb first.
      const verb = document.createElement("span");
      verb.className = "sr-only";
      verb.textContent = "Play event ";
      b.appendChild(verb);
      if (e.thumbnail_url) {
        const img = document.createElement("img");
        img.src = e.thumbnail_url;
        img.alt = "";
        img.loading = "lazy";
        img.width = 96;
        img.height = 54;
        img.className = "thumb";
        img.addEventListener("error", () => img.replaceWith(noPicture("picture failed to load")));
        b.appendChild(img);
      } else {
        b.appendChild(noPicture("no picture"));
      }
      const text = document.createElement("span");
      text.className = "ev-text";
      text.innerHTML = "<strong></strong><span></span>";
      text.firstChild.textContent = clock(e.utc_start_ms);
      text.lastChild.textContent = `${what} · ${e.status}${len}`;
      b.appendChild(text);
      b.addEventListener("click", () => playAt(e.utc_start_ms));
      li.appendChild(b);
      return li;
    }),
  );
}

function noPicture(text) {
  const s = document.createElement("span");
  s.className = "thumb none";
  s.textContent = text;
  return s;
}

// ---- selection and export ----------------------------------------------------

function setSelection(sel) {
  state.selection = sel;
  timeline.setSelection(sel);
  $("ex-from").value = sel ? clock(sel[0]) : "";
  $("ex-to").value = sel ? clock(sel[1]) : "";
}

function selectionFromInputs() {
  if (!state.day) return null;
  const a = parseClock(state.day, $("ex-from").value);
  const b = parseClock(state.day, $("ex-to").value);
  return a !== null && b !== null ? [a, b] : null;
}

const runExport = act(async () => {
  const sel = selectionFromInputs();
  if (!sel) throw new Error("Export: enter From and To as HH:MM:SS, or shift+drag on the timeline.");
  const [a, b] = sel;
  if (b <= a) throw new Error("Export: To must be after From.");
  if (b - a > 24 * 3600e3) throw new Error("Export: at most 24 hours at a time.");
  setSelection(sel);
  const { export_url } = await state.api.playbackUrl(state.device, state.channel, a, b);
  if (!export_url) throw new Error("Export: the service refused to export this range (longer than its limit).");
  const bar = $("ex-progress");
  const status = $("ex-status");
  const ctl = new AbortController();
  state.exportAbort = ctl;
  $("ex-go").disabled = true;
  $("ex-cancel").hidden = false;
  bar.hidden = false;
  bar.value = 0;
  status.textContent = "Preparing…";
  delete status.dataset.bytes;
  try {
    const r = await download(
      export_url,
      (got, total) => {
        if (total) {
          bar.max = total;
          bar.value = got;
          status.textContent = `${mb(got)} of ${mb(total)} (${Math.floor((100 * got) / total)} %)`;
        } else {
          bar.removeAttribute("value");
          status.textContent = mb(got);
        }
      },
      ctl.signal,
    );
    save(r.blob, r.filename);
    status.dataset.bytes = String(r.total);
    status.textContent = `Saved ${r.filename} (${mb(r.total)}${r.startMs && r.endMs ? `, ${clock(r.startMs)}–${clock(r.endMs)}` : ""}).`;
  } catch (e) {
    status.textContent = e.name === "AbortError" ? "Export cancelled." : "Export failed.";
    if (e.name !== "AbortError") throw e;
  } finally {
    state.exportAbort = null;
    $("ex-go").disabled = false;
    $("ex-cancel").hidden = true;
  }
});

function mb(n) {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.ceil(n / 1e3)} kB`;
}

// ---- wiring --------------------------------------------------------------------

$("device").addEventListener("change", act(async (ev) => {
  state.device = ev.target.value;
  fillChannels(0);
  savePrefs();
  resetPlayer();
  await loadMonth(state.day || new Date());
  await pickDay(state.day || new Date());
}));
$("channel").addEventListener("change", act(async (ev) => {
  state.channel = Number(ev.target.value);
  savePrefs();
  resetPlayer();
  await loadMonth(state.day || new Date());
  await pickDay(state.day || new Date());
}));
$("prev-month").addEventListener("click", act(() => loadMonth(new Date(calendar.month.getFullYear(), calendar.month.getMonth() - 1, 1))));
$("next-month").addEventListener("click", act(() => loadMonth(new Date(calendar.month.getFullYear(), calendar.month.getMonth() + 1, 1))));
$("goto-date").addEventListener("change", (ev) => {
  const d = parseDay(ev.target.value);
  if (d) pickDay(d);
});
$("zoom-in").addEventListener("click", () => timeline.zoom(0.5, timeline.playhead ?? undefined));
$("zoom-out").addEventListener("click", () => timeline.zoom(2, timeline.playhead ?? undefined));
$("zoom-day").addEventListener("click", () => timeline.setView(state.range[0], state.range[1] - state.range[0]));
$("zoom-fit").addEventListener("click", () => {
  if (!state.spans.length) return;
  timeline.fit(Math.max(state.spans[0].start_ms, state.range[0]), Math.min(state.spans[state.spans.length - 1].end_ms, state.range[1]));
});
$("select-mode").addEventListener("click", (ev) => {
  timeline.selectMode = !timeline.selectMode;
  ev.currentTarget.setAttribute("aria-pressed", String(timeline.selectMode));
});
for (const id of ["ex-from", "ex-to"]) {
  $(id).addEventListener("change", () => {
    const sel = selectionFromInputs();
    if (sel && sel[1] > sel[0]) {
      state.selection = sel;
      timeline.setSelection(sel);
    }
  });
}
$("export-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  runExport();
});
$("ex-cancel").addEventListener("click", () => state.exportAbort && state.exportAbort.abort());
$("change-token").addEventListener("click", () => askToken());
$("token-form").addEventListener("submit", () => {
  const t = $("token-input").value.trim();
  if (!t) return;
  localStorage.setItem(TOKEN_KEY, t);
  $("token-input").value = "";
  act(start)(t);
});

// ---- boot ------------------------------------------------------------------------

const fromHash = takeTokenFromHash();
if (fromHash) localStorage.setItem(TOKEN_KEY, fromHash);
const token = fromHash || localStorage.getItem(TOKEN_KEY);
if (token) act(start)(token);
else askToken();
