// Playback of a wall-clock moment. The cloud signs a playlist for a range
// around the moment (POST playback-url); the viewer fetches it once itself
// to read the codec (refusing with a sentence what MSE cannot decode) and
// the per-segment #EXT-X-PROGRAM-DATE-TIME, finds the media time of the
// moment (playlist.js: wall → media through the segment that contains it)
// and starts hls.js there. While playing, the media time maps back to wall
// time through hls.js's own fragments (frag.programDateTime, frag.start),
// which hls.js corrects to the parsed timestamps, for the live readout.

import Hls from "./vendor/hls.light.min.mjs";
import { codecProblem } from "./codec.js";
import { parsePlaylist, wallToMedia, mediaToWall } from "./playlist.js";
import { errorOf } from "./api.js";
import { clock } from "./time.js";

/**
 * Playlist range around the clicked moment: some context before, 45 min
 * after. The segment URLs in a playlist expire `playback_url_ttl_s` (1 h by
 * default) after it is served, so a playlist that plays out within that
 * never meets an expired URL; at its end the viewer signs the next one
 * (onEnded), and a 401 after a long pause signs a new one where it stopped.
 */
const BEFORE_MS = 10 * 60 * 1000;
const AFTER_MS = 45 * 60 * 1000;

export function isTypeSupported(type) {
  const MS = window.ManagedMediaSource || window.MediaSource;
  if (MS && MS.isTypeSupported) return MS.isTypeSupported(type);
  return document.createElement("video").canPlayType(type) !== "";
}

export class Player {
  /**
   * @param {HTMLVideoElement} video
   * @param {{onWall(ms:number|null):void, onStatus(text:string):void, onError(text:string):void,
   *          onCodec(msg:string|null):void, onEnded(lastMs:number):void, onExpired(ms:number):void}} cb
   */
  constructor(video, cb) {
    this.video = video;
    this.cb = cb;
    this.hls = null;
    this.frags = [];
    this.gen = 0;
    const tick = () => {
      const ms = this.frags.length ? mediaToWall(this.frags, video.currentTime) : null;
      if (ms !== null) this.cb.onWall(ms);
    };
    video.addEventListener("timeupdate", tick);
    video.addEventListener("seeked", tick);
    video.addEventListener("ended", () => {
      const last = this.frags[this.frags.length - 1];
      if (last) this.cb.onEnded(last.programDateTime + last.duration * 1000);
    });
    video.addEventListener("error", () => {
      if (!this.hls && video.error) this.cb.onError(`The browser could not play this video (${video.error.message || `media error ${video.error.code}`}).`);
    });
  }

  stop() {
    this.gen++;
    if (this.hls) {
      this.hls.destroy();
      this.hls = null;
    }
    this.frags = [];
    this.video.removeAttribute("src");
    this.video.load();
  }

  /** Plays device `d` channel `c` from wall-clock `ms`. */
  async playAt(api, d, c, ms) {
    this.stop();
    const gen = this.gen;
    this.cb.onCodec(null);
    this.cb.onStatus(`Loading ${clock(ms)}…`);
    const signed = await api.playbackUrl(d, c, ms - BEFORE_MS, ms + AFTER_MS);
    this.signedAt = Date.now();
    const resp = await fetch(signed.url, { cache: "no-store" });
    if (gen !== this.gen) return;
    if (resp.status === 404) {
      this.cb.onStatus(`Nothing recorded around ${clock(ms)}.`);
      return;
    }
    if (!resp.ok) throw await errorOf(resp, "Loading the playlist");
    const pl = parsePlaylist(await resp.text());
    if (gen !== this.gen) return;
    const problem = codecProblem(pl.codec, isTypeSupported);
    if (problem) {
      this.cb.onCodec(problem);
      this.cb.onStatus("");
      return;
    }
    const pos = wallToMedia(pl.segments, ms);
    if (!pos) {
      this.cb.onStatus(`Nothing recorded after ${clock(ms)}.`);
      return;
    }
    this.target = pos.ms;
    this.cb.onStatus(pos.gap ? `Nothing recorded at ${clock(ms)}; playing from ${clock(pos.ms)}.` : `Playing from ${clock(pos.ms)}.`);
    this.frags = pl.segments;
    if (Hls.isSupported()) {
      this.playHls(signed.url, pos, gen);
    } else if (this.video.canPlayType("application/vnd.apple.mpegurl")) {
      // Safari's own HLS: the same EXTINF timeline, so the same mapping.
      this.video.src = signed.url;
      this.video.addEventListener("loadedmetadata", () => {
        if (gen !== this.gen) return;
        this.video.currentTime = pos.media;
        this.play();
      }, { once: true });
    } else {
      this.cb.onError("This browser has neither Media Source Extensions nor HLS support: it cannot play recordings.");
    }
  }

  playHls(url, pos, gen) {
    const hls = new Hls({
      // The ES module build runs its transmuxer in this worker file.
      workerPath: new URL("./vendor/hls.worker.js", import.meta.url).href,
      startPosition: pos.media,
      maxBufferLength: 30,
      backBufferLength: 60,
      debug: false,
    });
    this.hls = hls;
    let recovered = false;
    hls.on(Hls.Events.LEVEL_LOADED, (_e, data) => {
      if (gen !== this.gen) return;
      // hls.js's fragments: the same timeline, refined as segments parse.
      this.frags = data.details.fragments;
    });
    hls.on(Hls.Events.MANIFEST_PARSED, () => this.play());
    hls.on(Hls.Events.ERROR, (_e, data) => {
      if (gen !== this.gen || !data.fatal) return;
      if (data.response && data.response.code === 401 && Date.now() - this.signedAt > 60_000) {
        // Signed segment URLs expired (a long pause): sign anew from here.
        // Not for a fresh playlist: a 401 then is no expiry, and would loop.
        const ms = this.frags.length ? mediaToWall(this.frags, this.video.currentTime) : null;
        if (ms !== null) {
          this.cb.onExpired(ms);
          return;
        }
      }
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR && !recovered) {
        recovered = true;
        hls.recoverMediaError();
        return;
      }
      const status = data.response && data.response.code ? ` (HTTP ${data.response.code})` : "";
      this.cb.onError(`Playback failed: ${data.details}${status}${data.error ? ` — ${data.error.message}` : ""}`);
      hls.destroy();
      if (this.hls === hls) this.hls = null;
    });
    hls.loadSource(url);
    hls.attachMedia(this.video);
  }

  play() {
    const p = this.video.play();
    if (p && p.catch) {
      p.catch((e) => {
        // Autoplay refused (no user gesture): the controls still work.
        if (e && e.name === "NotAllowedError") this.cb.onStatus("Press play to start.");
      });
    }
  }
}
