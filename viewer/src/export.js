// MP4 export of a range: the cloud builds one progressive MP4 and sends it
// with an exact Content-Length (docs/ref/api.md, export.mp4). The viewer
// streams it with fetch to show progress, refuses a body shorter than that
// length (the service cuts the body short when a segment vanishes while it
// sends), and saves it through a blob download. The whole file is held in
// memory: an export is at most 24 h, and in practice minutes.

import { errorOf } from "./api.js";

/**
 * Downloads `url`. `onProgress(received, total)`; resolves to
 * `{ blob, filename, total, startMs, endMs }`.
 */
export async function download(url, onProgress, signal) {
  const resp = await fetch(url, { signal, cache: "no-store" });
  if (!resp.ok) throw await errorOf(resp, "Export");
  const total = Number(resp.headers.get("content-length")) || 0;
  const reader = resp.body.getReader();
  const chunks = [];
  let received = 0;
  onProgress(0, total);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.byteLength;
    onProgress(received, total);
  }
  if (total && received !== total) {
    throw new Error(`Export broke off after ${received} of ${total} bytes; try again.`);
  }
  const cd = resp.headers.get("content-disposition") || "";
  const m = /filename="([^"]+)"/.exec(cd);
  return {
    blob: new Blob(chunks, { type: "video/mp4" }),
    filename: m ? m[1] : "export.mp4",
    total: received,
    startMs: Number(resp.headers.get("x-ivcs-start-ms")) || null,
    endMs: Number(resp.headers.get("x-ivcs-end-ms")) || null,
  };
}

/** Saves a blob as a file through a temporary link. */
export function save(blob, filename) {
  const href = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = href;
  a.download = filename;
  a.style.display = "none";
  document.body.appendChild(a);
  a.click();
  a.remove();
  // The download has taken its copy once the click returns; free soon after.
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
}
