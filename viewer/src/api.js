// The app API (docs/ref/api.md) as the viewer uses it. Every call carries
// the bearer token; errors become ApiError with the service's message, so
// the page can show them as text.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** An ApiError from a failed response: the JSON error body when there is one. */
export async function errorOf(resp, what) {
  let code = `http_${resp.status}`;
  let msg = "";
  try {
    const body = await resp.text();
    try {
      const j = JSON.parse(body);
      if (j && j.error) {
        code = j.error.code || code;
        msg = j.error.message || "";
      }
    } catch {
      msg = body.trim().slice(0, 300);
    }
  } catch {
    // The body could not be read: the status says enough.
  }
  const status = [resp.status, resp.statusText].filter(Boolean).join(" ");
  return new ApiError(resp.status, code, `${what}: ${status}${msg ? ` — ${msg}` : ""}`);
}

export class Api {
  constructor(token) {
    this.token = token;
  }

  async request(method, path, what) {
    let resp;
    try {
      resp = await fetch(path, {
        method,
        headers: { Authorization: `Bearer ${this.token}` },
        cache: "no-store",
      });
    } catch (e) {
      throw new ApiError(0, "network", `${what}: the service did not answer (${e.message})`);
    }
    if (!resp.ok) throw await errorOf(resp, what);
    return resp.json();
  }

  devices() {
    return this.request("GET", "/v1/devices", "Listing devices");
  }

  /** `zone`: `tz=ZONE` or `tz_offset_min=N` (time.js `zoneQuery`). */
  days(d, c, month, zone) {
    return this.request("GET", `${base(d, c)}/days?month=${month}&${zone}`, "Loading the calendar");
  }

  timeline(d, c, start, end) {
    return this.request("GET", `${base(d, c)}/timeline?start_ms=${start}&end_ms=${end}`, "Loading the timeline");
  }

  /** Every event that starts in [start, end), following the cursor up to `max`. */
  async events(d, c, start, end, max = 2000) {
    const all = [];
    let cursor = null;
    for (;;) {
      const q = `start_ms=${start}&end_ms=${end}&limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const page = await this.request("GET", `${base(d, c)}/events?${q}`, "Loading events");
      all.push(...page.events);
      cursor = page.next_cursor;
      if (!cursor || all.length >= max) return { events: all, truncated: Boolean(cursor) };
    }
  }

  playbackUrl(d, c, start, end) {
    return this.request("POST", `${base(d, c)}/playback-url?start_ms=${Math.floor(start)}&end_ms=${Math.ceil(end)}`, "Signing a playback URL");
  }
}

function base(d, c) {
  return `/v1/devices/${encodeURIComponent(d)}/channels/${c}`;
}
