// The day timeline: an SVG strip of recorded spans, explicit gaps and event
// markers over a zoomable, draggable window of one local day. SVG rather
// than canvas: a day has few spans (contiguous segments merge) and at most
// a few hundred events, and real elements can carry titles, classes and
// data attributes that assistive technology and the browser test can read.
//
// Pointer: click plays from that second; drag pans; shift+drag (or drag in
// "select" mode) selects a range for export; wheel zooms around the
// pointer. Keyboard (the strip is focusable): ←/→ move a cursor by a
// minute (shift: 10 s), +/− zoom, Enter plays at the cursor.

import { clock, hhmm, duration } from "./time.js";

const NS = "http://www.w3.org/2000/svg";
const H = 86;
const TRACK_TOP = 14;
const TRACK_H = 44;
const MIN_VIEW_MS = 60 * 1000;
const STEPS = [10e3, 30e3, 60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3, 10800e3, 21600e3];

function el(name, attrs = {}, parent = null) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

export class Timeline {
  /**
   * @param {HTMLElement} host container (its width is the strip's width)
   * @param {{onPlay(ms:number):void, onSelect(from:number,to:number):void, summary:HTMLElement}} opts
   */
  constructor(host, opts) {
    this.host = host;
    this.opts = opts;
    this.day = [0, 86400000];
    this.view = [0, 86400000];
    this.data = { spans: [], gaps: [], events: [] };
    this.playhead = null;
    this.selection = null;
    this.cursor = null;
    this.selectMode = false;
    this.width = 600;
    this.svg = el("svg", {
      class: "timeline-svg",
      height: H,
      role: "application",
      tabindex: "0",
      "aria-roledescription": "timeline",
      "aria-label": "Timeline of the day: click to play, drag to move, shift+drag to select, wheel to zoom",
    });
    if (opts.summary) this.svg.setAttribute("aria-describedby", opts.summary.id);
    host.appendChild(this.svg);
    this.bindPointer();
    this.bindKeys();
    new ResizeObserver(() => this.render()).observe(host);
  }

  /** Shows local day [start, end) whole. */
  setDay(start, end) {
    this.day = [start, end];
    this.view = [start, end];
    this.data = { spans: [], gaps: [], events: [] };
    this.selection = null;
    this.cursor = null;
    this.render();
  }

  setData(data) {
    this.data = data;
    this.render();
  }

  setPlayhead(ms) {
    this.playhead = ms;
    this.renderPlayhead();
  }

  setSelection(sel) {
    this.selection = sel;
    this.render();
  }

  /** Zooms by `factor` (<1 in) keeping `center` (ms) where it is. */
  zoom(factor, center = (this.view[0] + this.view[1]) / 2) {
    const [a, b] = this.view;
    const span = Math.min(Math.max((b - a) * factor, MIN_VIEW_MS), this.day[1] - this.day[0]);
    const k = (center - a) / (b - a);
    this.setView(center - k * span, span);
  }

  /** Shows [from, to] with a little margin. */
  fit(from, to) {
    const span = Math.max(to - from, MIN_VIEW_MS);
    this.setView(from - span * 0.05, span * 1.1);
  }

  setView(start, span) {
    span = Math.min(span, this.day[1] - this.day[0]);
    start = Math.min(Math.max(start, this.day[0]), this.day[1] - span);
    this.view = [start, start + span];
    this.render();
  }

  x(ms) {
    const [a, b] = this.view;
    return ((ms - a) / (b - a)) * this.width;
  }

  t(x) {
    const [a, b] = this.view;
    return a + (x / this.width) * (b - a);
  }

  clientT(ev) {
    const r = this.svg.getBoundingClientRect();
    return this.t(Math.min(Math.max(ev.clientX - r.left, 0), r.width));
  }

  bindPointer() {
    let down = null;
    this.svg.addEventListener("pointerdown", (ev) => {
      if (ev.button !== 0) return;
      down = { x: ev.clientX, t: this.clientT(ev), view: [...this.view], moved: false, select: ev.shiftKey || this.selectMode };
      this.svg.setPointerCapture(ev.pointerId);
    });
    this.svg.addEventListener("pointermove", (ev) => {
      if (!down) {
        this.cursor = this.clientT(ev);
        this.renderCursor();
        return;
      }
      if (Math.abs(ev.clientX - down.x) > 4) down.moved = true;
      if (!down.moved) return;
      if (down.select) {
        const t = this.clientT(ev);
        this.selection = [Math.min(t, down.t), Math.max(t, down.t)].map((v) => Math.round(v / 1000) * 1000);
        this.render();
      } else {
        const msPerPx = (down.view[1] - down.view[0]) / this.width;
        this.setView(down.view[0] - (ev.clientX - down.x) * msPerPx, down.view[1] - down.view[0]);
      }
    });
    const up = (ev) => {
      if (!down) return;
      const d = down;
      down = null;
      if (!d.moved) {
        this.opts.onPlay(Math.round(this.clientT(ev) / 1000) * 1000);
      } else if (d.select && this.selection) {
        this.opts.onSelect(...this.selection);
      }
    };
    this.svg.addEventListener("pointerup", up);
    this.svg.addEventListener("pointercancel", () => (down = null));
    this.svg.addEventListener("pointerleave", () => {
      if (!down) {
        this.cursor = null;
        this.renderCursor();
      }
    });
    this.svg.addEventListener(
      "wheel",
      (ev) => {
        ev.preventDefault();
        if (Math.abs(ev.deltaX) > Math.abs(ev.deltaY)) {
          const span = this.view[1] - this.view[0];
          this.setView(this.view[0] + (ev.deltaX / this.width) * span, span);
        } else {
          this.zoom(Math.exp(ev.deltaY * 0.002), this.clientT(ev));
        }
      },
      { passive: false },
    );
  }

  bindKeys() {
    this.svg.addEventListener("keydown", (ev) => {
      const span = this.view[1] - this.view[0];
      const c = this.cursor ?? this.playhead ?? (this.view[0] + this.view[1]) / 2;
      const step = ev.shiftKey ? 10e3 : 60e3;
      let handled = true;
      if (ev.key === "ArrowLeft" || ev.key === "ArrowRight") {
        this.cursor = Math.min(Math.max(c + (ev.key === "ArrowLeft" ? -step : step), this.day[0]), this.day[1] - 1000);
        if (this.cursor < this.view[0] || this.cursor > this.view[1]) this.setView(this.cursor - span / 2, span);
        this.renderCursor();
      } else if (ev.key === "+" || ev.key === "=") {
        this.zoom(0.5, c);
      } else if (ev.key === "-") {
        this.zoom(2, c);
      } else if (ev.key === "Enter" || ev.key === " ") {
        this.opts.onPlay(Math.round(c / 1000) * 1000);
      } else {
        handled = false;
      }
      if (handled) ev.preventDefault();
    });
    this.svg.addEventListener("blur", () => {
      this.cursor = null;
      this.renderCursor();
    });
  }

  render() {
    this.width = Math.max(this.host.clientWidth, 100);
    const svg = this.svg;
    svg.setAttribute("width", this.width);
    svg.setAttribute("viewBox", `0 0 ${this.width} ${H}`);
    svg.dataset.viewStart = String(Math.round(this.view[0]));
    svg.dataset.viewEnd = String(Math.round(this.view[1]));
    svg.replaceChildren();
    const defs = el("defs", {}, svg);
    const pat = el("pattern", { id: "gap-hatch", width: 8, height: 8, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" }, defs);
    el("rect", { width: 8, height: 8, class: "gap-bg" }, pat);
    el("line", { x1: 0, y1: 0, x2: 0, y2: 8, class: "gap-line" }, pat);

    el("rect", { x: 0, y: TRACK_TOP, width: this.width, height: TRACK_H, class: "track" }, svg);
    const visible = (a, b) => b > this.view[0] && a < this.view[1];
    // Recordings stay visible however far out the zoom is: at least 2 px.
    const rect = (a, b, cls, title, extra = {}, minW = 1) => {
      const x0 = Math.max(this.x(a), 0);
      const x1 = Math.min(this.x(b), this.width);
      const r = el("rect", { x: x0, y: TRACK_TOP, width: Math.max(x1 - x0, minW), height: TRACK_H, class: cls, "data-start-ms": a, "data-end-ms": b, ...extra }, svg);
      el("title", {}, r).textContent = title;
      return r;
    };
    for (const g of this.data.gaps) {
      if (visible(g.start_ms, g.end_ms)) rect(g.start_ms, g.end_ms, "gap", `No recording ${clock(g.start_ms)}–${clock(g.end_ms)}`, { fill: "url(#gap-hatch)" });
    }
    for (const s of this.data.spans) {
      if (visible(s.start_ms, s.end_ms)) rect(s.start_ms, s.end_ms, "span", `Recorded ${clock(s.start_ms)}–${clock(s.end_ms)} (${duration(s.end_ms - s.start_ms)}, ${s.codec})`, { "data-codec": s.codec }, 2);
    }
    if (this.selection) {
      const [a, b] = this.selection;
      rect(a, b, "selection", `Selected ${clock(a)}–${clock(b)}`);
    }
    this.renderAxis();
    for (const e of this.data.events) {
      if (!visible(e.utc_start_ms, (e.utc_end_ms ?? e.utc_start_ms) + 1)) continue;
      const x = Math.max(this.x(e.utc_start_ms), 0);
      const g = el("g", { class: `event-marker status-${e.status}`, "data-ms": e.utc_start_ms, "data-key": e.event_key }, svg);
      const end = e.utc_end_ms ?? e.utc_start_ms;
      if (end > e.utc_start_ms) el("rect", { x, y: TRACK_TOP + TRACK_H - 6, width: Math.max(this.x(end) - x, 2), height: 6, class: "event-extent" }, g);
      el("line", { x1: x, x2: x, y1: TRACK_TOP - 4, y2: TRACK_TOP + TRACK_H, class: "event-line" }, g);
      el("path", { d: `M${x - 5},${TRACK_TOP - 10} L${x + 5},${TRACK_TOP - 10} L${x},${TRACK_TOP - 3} Z`, class: "event-head" }, g);
      el("title", {}, g).textContent = `Event ${e.info || e.event_id} at ${clock(e.utc_start_ms)} (${e.status})`;
    }
    this.playheadEl = el("line", { y1: TRACK_TOP - 2, y2: TRACK_TOP + TRACK_H + 2, class: "playhead" }, svg);
    this.cursorEl = el("g", { class: "cursor" }, svg);
    el("line", { y1: TRACK_TOP, y2: TRACK_TOP + TRACK_H }, this.cursorEl);
    el("text", { y: 10 }, this.cursorEl);
    this.renderPlayhead();
    this.renderCursor();
    this.renderSummary();
  }

  renderAxis() {
    const [a, b] = this.view;
    const span = b - a;
    const step = STEPS.find((s) => (s / span) * this.width >= 70) ?? STEPS[STEPS.length - 1];
    // Ticks on local clock boundaries: counted from local midnight.
    const first = this.day[0] + Math.ceil((a - this.day[0]) / step) * step;
    for (let t = first; t <= b; t += step) {
      const x = this.x(t);
      el("line", { x1: x, x2: x, y1: TRACK_TOP + TRACK_H, y2: TRACK_TOP + TRACK_H + 5, class: "tick" }, this.svg);
      // Labels at the edges are anchored inwards, not cut in half.
      const anchor = x < 24 ? "start" : x > this.width - 24 ? "end" : "middle";
      const label = el("text", { x, y: TRACK_TOP + TRACK_H + 18, class: "tick-label", "text-anchor": anchor }, this.svg);
      label.textContent = step < 60e3 ? clock(t) : hhmm(t);
    }
  }

  renderPlayhead() {
    if (!this.playheadEl) return;
    const on = this.playhead !== null && this.playhead >= this.view[0] && this.playhead <= this.view[1];
    this.playheadEl.style.display = on ? "" : "none";
    if (on) {
      const x = this.x(this.playhead);
      this.playheadEl.setAttribute("x1", x);
      this.playheadEl.setAttribute("x2", x);
    }
  }

  renderCursor() {
    if (!this.cursorEl) return;
    const on = this.cursor !== null && this.cursor >= this.view[0] && this.cursor <= this.view[1];
    this.cursorEl.style.display = on ? "" : "none";
    if (!on) return;
    const x = this.x(this.cursor);
    const [line, text] = this.cursorEl.children;
    line.setAttribute("x1", x);
    line.setAttribute("x2", x);
    text.setAttribute("x", Math.min(Math.max(x, 30), this.width - 30));
    text.setAttribute("text-anchor", "middle");
    text.textContent = clock(this.cursor);
  }

  renderSummary() {
    const s = this.opts.summary;
    if (!s) return;
    const { spans, gaps, events } = this.data;
    const list = (xs, f) => xs.slice(0, 20).map(f).join(", ") + (xs.length > 20 ? ", …" : "");
    s.textContent = spans.length
      ? `${spans.length} recorded span(s): ${list(spans, (x) => `${clock(x.start_ms)} to ${clock(x.end_ms)}`)}. ` +
        `${gaps.length} gap(s). ${events.length} event(s)${events.length ? `: ${list(events, (e) => clock(e.utc_start_ms))}` : ""}.`
      : "Nothing recorded on this day.";
  }
}
