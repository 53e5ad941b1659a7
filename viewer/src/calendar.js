// A month grid of day buttons (Monday first). Days with video are marked
// (class and accessible name); the selected day has aria-current="date".

import { dayKey } from "./time.js";

const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

export class Calendar {
  /**
   * @param {HTMLElement} grid the element that receives the day buttons
   * @param {HTMLElement} title the month's heading
   * @param {(day: Date) => void} onPick
   */
  constructor(grid, title, onPick) {
    this.grid = grid;
    this.title = title;
    this.onPick = onPick;
    this.month = new Date();
    this.selected = null;
    this.withVideo = new Set();
  }

  /** Shows the month of `d` with `days` (YYYY-MM-DD strings) marked. */
  show(d, days) {
    this.month = new Date(d.getFullYear(), d.getMonth(), 1);
    this.withVideo = new Set(days);
    this.render();
  }

  select(day) {
    this.selected = dayKey(day);
    this.render();
  }

  render() {
    const m = this.month;
    this.title.textContent = m.toLocaleDateString(undefined, { month: "long", year: "numeric" });
    this.grid.replaceChildren();
    for (const w of WEEKDAYS) {
      const h = document.createElement("span");
      h.className = "weekday";
      h.textContent = w;
      h.setAttribute("aria-hidden", "true");
      this.grid.appendChild(h);
    }
    const lead = (m.getDay() + 6) % 7;
    for (let i = 0; i < lead; i++) this.grid.appendChild(document.createElement("span"));
    const n = new Date(m.getFullYear(), m.getMonth() + 1, 0).getDate();
    for (let i = 1; i <= n; i++) {
      const day = new Date(m.getFullYear(), m.getMonth(), i);
      const key = dayKey(day);
      const b = document.createElement("button");
      b.type = "button";
      b.className = "day";
      b.textContent = String(i);
      b.dataset.day = key;
      const video = this.withVideo.has(key);
      if (video) b.classList.add("has-video");
      if (key === this.selected) b.setAttribute("aria-current", "date");
      b.setAttribute("aria-label", `${day.toLocaleDateString(undefined, { weekday: "long", day: "numeric", month: "long", year: "numeric" })}${video ? ", has recordings" : ""}`);
      b.addEventListener("click", () => this.onPick(day));
      this.grid.appendChild(b);
    }
  }
}
