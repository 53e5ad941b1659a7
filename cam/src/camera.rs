//! The camera itself: loads libivcs, initialises it with the callbacks,
//! runs one capture-and-push thread per channel, an event thread and the
//! status line, and shuts down with `iv_cs_exit` on Ctrl-C or after
//! `--duration`.
//!
//! Time: the first frame of a session is stamped with a whole second at
//! least 1.5 s ahead, encoded meanwhile, and pushed when the wall clock
//! reaches that second; later frames carry PTS = their capture offset.
//! The engine dates a run by the clock at its first frame plus the PTS
//! offset, so the recorded UTC of every frame equals the time burned into
//! it. With `--speed` > 1 frames are pushed faster than they are stamped;
//! the recording then runs ahead of the wall clock, consistently.

use crate::args::{Audio, Codec, Config, Container};
use crate::audio::{AudioSource, PACK_SAMPLES};
use crate::callbacks::*;
use crate::clip::ClipFrames;
use crate::encoder::{self, AccessUnitReader, Encoder, Settings};
use crate::libivcs::*;
use crate::pattern::{self, Frame};
use crate::state::{ChanStats, Shared, lock, shared, utc_now_ms};
use anyhow::{Context, Result, bail};
use ivcs_media::video;
use std::ffi::{CString, c_int, c_void};
use std::io::{IsTerminal, Write};
use std::process::ChildStdout;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `IV_CM_AAC_TYPE_LC` in `u32AudioCodecOption`.
const IV_CM_AAC_TYPE_LC: u32 = 2;

extern "C" fn on_signal(_: c_int) {
    let sh = shared();
    if sh.stop.swap(true, Ordering::SeqCst) {
        // A second Ctrl-C: leave now (async-signal-safe).
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

fn install_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only touches atomics (and _exit).
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

/// Runs the camera until Ctrl-C / SIGTERM or `--duration`.
pub fn run(cfg: Config) -> Result<()> {
    let cfg = Arc::new(cfg);
    let sh = shared();
    let status = {
        let cfg = cfg.clone();
        std::thread::Builder::new()
            .name("cam-status".into())
            .spawn(move || status_main(&cfg))?
    };
    let r = run_camera(cfg);
    sh.stop.store(true, Ordering::SeqCst);
    sh.done.store(true, Ordering::SeqCst);
    sh.wake();
    let _ = status.join();
    r
}

fn run_camera(cfg: Arc<Config>) -> Result<()> {
    let a = &cfg.args;
    // mjpeg for snapshots; the pattern's encoder; AAC's.
    let mut needed = vec!["mjpeg"];
    if cfg.clip.is_none() {
        needed.push(encoder::encoder_name(cfg.codec));
    }
    if a.audio == Audio::Aac {
        needed.push("aac");
    }
    encoder::check_ffmpeg(&needed)?;
    let path = match &a.lib {
        Some(p) => p.clone(),
        None => default_path().context(
            "no libivcs.so next to this binary (PREFIX/lib or beside it): run `make dist` or pass --lib",
        )?,
    };
    let api = Api::load(&path)?;
    let sh = shared();
    install_signals();
    // SAFETY: a valid extern "C" log callback with no user data.
    unsafe { (api.ivcs_host_set_log_callback)(Some(on_log), std::ptr::null_mut()) };
    let set = |f: unsafe extern "C" fn(*const std::ffi::c_char) -> c_int,
               what: &str,
               v: &Option<String>|
     -> Result<()> {
        if let Some(v) = v {
            let c = CString::new(v.as_str()).with_context(|| format!("{what} contains NUL"))?;
            // SAFETY: a valid C string for the call.
            let rc = unsafe { f(c.as_ptr()) };
            if rc != 0 {
                bail!("setting the {what}: {}", code_name(rc));
            }
        }
        Ok(())
    };
    set(api.ivcs_host_set_cloud_url, "cloud URL", &a.cloud)?;
    set(api.ivcs_host_set_device_id, "device id", &a.device)?;
    set(
        api.ivcs_host_set_device_secret,
        "device secret",
        &cfg.secret,
    )?;
    let video = match &cfg.clip {
        Some(clip) => format!("{} looped", clip.describe()),
        None => format!(
            "{} {}x{}, GOP {}, {} kbit/s",
            match cfg.codec {
                Codec::H264 => "H.264",
                Codec::H265 => "H.265",
            },
            cfg.w,
            cfg.h,
            a.gop,
            a.bitrate
        ),
    };
    sh.say(format!(
        "ivcs cam: {video} @ {} fps, {}, {} channel(s), speed {}x; libivcs {} ({})",
        a.fps,
        a.audio.describe(),
        a.channels,
        a.speed,
        api.version(),
        api.path.display()
    ));

    // Like firmware: one blocking balance query per channel at start.
    for ch in 0..a.channels {
        let mut b = iv_cs_balance_info_s::default();
        // SAFETY: a valid struct for the call.
        let rc = unsafe { (api.iv_cs_get_balance_info)(ch, &mut b, 5) };
        let plan = match (rc, b.cs_type) {
            (0, 1) => format!("full-time, {} days", b.cs_days),
            (0, 2) => format!("events only, {} days", b.cs_days),
            (0, 3) => format!("trial, {} s left", b.free_trial_remaining_sec),
            (0, _) => "none: nothing is recorded until a plan is set".to_string(),
            (rc, _) => format!("unknown ({})", code_name(rc)),
        };
        sh.say(format!("ch{ch}: plan {plan}"));
    }

    init(&cfg, api)?;
    let mut threads = Vec::new();
    for ch in 0..cfg.args.channels {
        let cfg = cfg.clone();
        threads.push(
            std::thread::Builder::new()
                .name(format!("cam-ch{ch}"))
                .spawn(move || channel_main(ch, &cfg, api))?,
        );
    }
    let events = {
        let cfg = cfg.clone();
        std::thread::Builder::new()
            .name("cam-events".into())
            .spawn(move || events_main(&cfg, api))?
    };
    for t in threads {
        let _ = t.join();
    }
    // The channels end on Ctrl-C or after --duration; either way wind down.
    sh.stop.store(true, Ordering::SeqCst);
    sh.wake();
    let _ = events.join();
    drain(&cfg);
    // SAFETY: plain calls.
    let rc = unsafe { (api.iv_cs_exit)() };
    if rc != 0 {
        sh.say(format!("iv_cs_exit: {}", code_name(rc)));
    }
    // SAFETY: plain call; the library's threads end.
    unsafe { (api.ivcs_host_shutdown)() };
    sh.say("ivcs cam: stopped (iv_cs_exit)".into());
    Ok(())
}

/// After the last push: waits (bounded) for segments already closed to be
/// acknowledged. The open segment is dropped by `iv_cs_exit`, as on a
/// real camera.
fn drain(cfg: &Config) {
    let sh = shared();
    let deadline = Instant::now() + Duration::from_secs(8);
    let count = || -> u64 {
        sh.ch
            .iter()
            .map(|c| c.segs_ok.load(Ordering::Relaxed) + c.segs_err.load(Ordering::Relaxed))
            .sum()
    };
    let mut last = count();
    let mut quiet_since = Instant::now();
    // Done when nothing was reported for 2 s: uploads in flight report
    // within that on a working link (segments are streamed while recorded).
    while Instant::now() < deadline && quiet_since.elapsed() < Duration::from_secs(2) {
        sh.wait(Duration::from_millis(200));
        let n = count();
        if n != last {
            last = n;
            quiet_since = Instant::now();
        }
    }
    let _ = cfg;
}

fn init(cfg: &Config, api: &Api) -> Result<()> {
    let a = &cfg.args;
    let budget = a.buffer_kib as usize * 1024;
    // (eAudioType, u32AudioCodecOption): iv_cm_aenc_type_e, and the AAC
    // profile for AAC.
    let (atype, option) = match a.audio {
        Audio::None => (IV_CM_AENC_TYPE_BUTT, 0),
        Audio::G711a => (1, 0),
        Audio::G711u => (2, 0),
        Audio::Aac => (4, IV_CM_AAC_TYPE_LC),
    };
    let rate = a.audio.sample_rate().unwrap_or(0);
    let samples = if rate == 0 { 0 } else { PACK_SAMPLES as u32 };
    let mut params: Vec<iv_cs_channel_params_s> = (0..a.channels)
        .map(|ch| iv_cs_channel_params_s {
            channel_id: ch,
            u32MaxGopSize: budget as u32,
            congestion_cfg: iv_cs_congestion_ctrl_s {
                low_mark: budget / 4,
                warn_mark: budget / 2,
                high_mark: budget * 3 / 4,
                enable: 1,
            },
            av_fmt: iv_cm_av_data_info_s {
                eAudioType: atype,
                u32AudioCodecOption: option,
                eAudioMode: 0,
                eAudioBitWidth: 1,
                eAudioSampleRate: rate,
                u32SampleNumPerFrame: samples,
                eVideoType: match cfg.codec {
                    Codec::H264 => 0,
                    Codec::H265 => 1,
                },
                u32VideoWidth: cfg.w as u32,
                u32VideoHeight: cfg.h as u32,
                u32Framerate: a.fps,
                u32Reserve: [0; 4],
            },
            cs_fmt: match a.container {
                Container::Ts => 0,
                Container::Fmp4 => 1,
            },
            event_report_opt: 2,
        })
        .collect();
    let mut p = iv_cs_init_parm_s {
        channel_num: a.channels,
        func_cb: iv_cs_init_func_cb_s {
            iv_cs_push_stream_start_cb: Some(on_start),
            iv_cs_push_stream_stop_cb: Some(on_stop),
            iv_cs_ai_service_notify_cb: None,
            iv_cs_event_capture_picture_cb: Some(on_capture),
            iv_cs_event_picture_result_cb: Some(on_picture_result),
            iv_cs_event_report_result_cb: Some(on_event_result),
            iv_cs_notify_cb: Some(on_notify),
            iv_cs_get_balance_cb: None,
            iv_cs_dump_file_cb: None,
        },
        ch_params: params.as_mut_ptr(),
    };
    // SAFETY: valid structs for the call (the library copies them).
    let rc = unsafe { (api.iv_cs_init)(&mut p) };
    if rc != 0 {
        bail!("iv_cs_init: {}", code_name(rc));
    }
    Ok(())
}

/// "No audio" in `eAudioType` (the enum's end marker).
const IV_CM_AENC_TYPE_BUTT: u32 = 7;

/// How a push session ended.
enum Ended {
    /// Ctrl-C, or this channel's `--duration` reached.
    Stop,
    /// `push_stream_stop_cb`: wait for the next start.
    PushStopped,
}

fn channel_main(ch: u32, cfg: &Config, api: &'static Api) {
    let sh = shared();
    let Some(stats) = sh.ch.get(ch as usize) else {
        return;
    };
    let mut pushed_ms = 0u64;
    let mut waiting_said = false;
    while !sh.stopping() {
        if !stats.streaming.load(Ordering::SeqCst) {
            // A channel the cloud never starts does not hold the camera
            // open once another has pushed its --duration.
            if sh.channels_done.load(Ordering::SeqCst) > 0 {
                break;
            }
            if !waiting_said {
                sh.say(format!("ch{ch}: waiting for push_stream_start_cb"));
                waiting_said = true;
            }
            sh.wait(Duration::from_millis(500));
            continue;
        }
        waiting_said = false;
        match session(ch, cfg, api, stats, &mut pushed_ms) {
            Ok(Ended::Stop) => break,
            Ok(Ended::PushStopped) => {}
            Err(e) => {
                sh.say(format!("ch{ch}: {e:#}; restarting the encoder"));
                sh.log_errors.fetch_add(1, Ordering::Relaxed);
                sh.wait(Duration::from_secs(1));
            }
        }
    }
    // --duration is per channel (their sessions start apart): the camera
    // winds down when the last one is done.
    let done = sh.channels_done.fetch_add(1, Ordering::SeqCst) + 1;
    if done == cfg.args.channels {
        sh.stop.store(true, Ordering::SeqCst);
    }
    sh.wake();
}

/// Sleeps until `due` unless the camera stops first (pacing, not waiting
/// for a condition: frames leave at their time).
fn pace(sh: &Shared, due: Instant) -> bool {
    loop {
        if sh.stopping() {
            return false;
        }
        let now = Instant::now();
        if now >= due {
            return true;
        }
        std::thread::sleep((due - now).min(Duration::from_millis(50)));
    }
}

/// Where a session's video access units come from.
enum VideoSource {
    /// The test pattern: a render thread feeding ffmpeg, whose output is
    /// split into access units.
    Pattern {
        enc: Encoder,
        render: JoinHandle<()>,
        aus: AccessUnitReader<ChildStdout>,
    },
    /// `--input`, looped.
    Clip(ClipFrames),
}

impl VideoSource {
    /// Starts the source whose first frame is captured at `anchor` (UTC ms).
    fn start(ch: u32, cfg: &Config, stats: &ChanStats, anchor: u64) -> Result<VideoSource> {
        let a = &cfg.args;
        if let Some(clip) = &cfg.clip {
            return Ok(VideoSource::Clip(clip.frames()?));
        }
        let settings = Settings {
            w: cfg.w,
            h: cfg.h,
            fps: a.fps,
            gop: a.gop,
            bitrate: a.bitrate,
            codec: cfg.codec,
            preset: a.preset.clone(),
        };
        let (enc, mut stdin, aus) = Encoder::start(&settings)?;
        let fps = u64::from(a.fps);
        let label = format!("CH{ch}");
        let seq0 = stats.frames.load(Ordering::Relaxed);
        let (w, h) = (cfg.w, cfg.h);
        let render = std::thread::Builder::new()
            .name(format!("cam-ch{ch}-render"))
            .spawn(move || {
                let mut f = Frame::new(w, h);
                for n in 0u64.. {
                    pattern::render(&mut f, anchor + n * 1000 / fps, seq0 + n, &label);
                    if stdin.write_all(&f.data).is_err() {
                        break; // the encoder ended (session over)
                    }
                }
            })?;
        Ok(VideoSource::Pattern { enc, render, aus })
    }

    /// The next access unit; `None` if the encoder ended.
    fn next_au(&mut self) -> Result<Option<Vec<u8>>> {
        match self {
            VideoSource::Pattern { aus, .. } => aus.next_au(),
            VideoSource::Clip(frames) => frames.next_au().map(Some),
        }
    }

    /// Ends the encoder, then its render thread (whose next write fails).
    fn stop(self) {
        if let VideoSource::Pattern { enc, render, .. } = self {
            drop(enc);
            let _ = render.join();
        }
    }
}

fn session(
    ch: u32,
    cfg: &Config,
    api: &'static Api,
    stats: &ChanStats,
    pushed_ms: &mut u64,
) -> Result<Ended> {
    let sh = shared();
    let now = utc_now_ms();
    // The first frame's capture time: a whole second, far enough ahead
    // for ffmpeg to start and deliver it.
    let anchor = (now + 1500).div_ceil(1000) * 1000;
    let wall0 = Instant::now() + Duration::from_millis(anchor - now);
    let first =
        match sh
            .first_utc_ms
            .compare_exchange(0, anchor, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => anchor,
            Err(f) => f,
        };
    let mut source = VideoSource::start(ch, cfg, stats, anchor)?;
    let times = Times {
        anchor,
        first,
        wall0,
    };
    let result = push_loop(ch, cfg, api, stats, pushed_ms, &mut source, &times);
    source.stop();
    result
}

/// A session's clocks.
struct Times {
    /// Capture time (UTC ms) of the session's first frame, a whole second.
    anchor: u64,
    /// Capture time of the camera's first frame: PTS count from it.
    first: u64,
    /// When the session's first frame is due.
    wall0: Instant,
}

/// Pushes the session's frames, and the audio up to each frame's time,
/// each when it is due.
fn push_loop(
    ch: u32,
    cfg: &Config,
    api: &'static Api,
    stats: &ChanStats,
    pushed_ms: &mut u64,
    source: &mut VideoSource,
    times: &Times,
) -> Result<Ended> {
    let &Times {
        anchor,
        first,
        wall0,
    } = times;
    let sh = shared();
    let a = &cfg.args;
    // The audio starts at the session's first whole second, like video.
    let mut audio = AudioSource::start(a.audio)?;
    let pack_ms = a.audio.pack_ms();
    let fps = u64::from(a.fps);
    let codec = encoder::media_codec(cfg.codec);
    // Snapshots of --input frames are decoded from the GOPs kept here.
    let keep_recent = cfg.clip.is_some() && a.event_every != 0;
    let recent = &sh.recent[ch as usize];
    lock(recent).clear();
    let speed = a.speed;
    let due = |media_ms: u64| wall0 + Duration::from_secs_f64(media_ms as f64 / 1000.0 / speed);
    let mut audio_k = 0u64;
    let mut need_key = true;
    let mut vseq = stats.frames.load(Ordering::Relaxed) as u32;
    let mut aseq = 0u32;
    for n in 0u64.. {
        let Some(mut au) = source.next_au()? else {
            bail!("the encoder stopped");
        };
        let t = n * 1000 / fps;
        let utc = anchor + t;
        let pts = utc - first;
        // Audio captured before this frame, then the frame. A pack with
        // the frame's own time follows it: so the first pack comes after
        // the first key frame, before which the engine has no segment to
        // put audio in (it would drop it).
        if let Some(audio) = &mut audio {
            while audio_k * pack_ms < t {
                let at = audio_k * pack_ms;
                if !pace(sh, due(at)) {
                    break;
                }
                let mut data = audio.next_pack()?;
                let mut pack = iv_cm_aenc_pack_s {
                    pu8Addr: data.as_mut_ptr(),
                    u32Len: data.len() as u32,
                    u64PTS: anchor + at - first,
                    u32Seq: aseq,
                };
                aseq = aseq.wrapping_add(1);
                // SAFETY: the pack and its bytes live across the call.
                let rc =
                    unsafe { (api.iv_cs_push_stream)(ch, 0, (&raw mut pack).cast::<c_void>()) };
                if rc == 0 {
                    stats.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                } else {
                    stats.push_errors.fetch_add(1, Ordering::Relaxed);
                    if stats.last_push_error.swap(rc, Ordering::Relaxed) != rc {
                        sh.say(format!("ch{ch}: audio push refused: {}", code_name(rc)));
                    }
                }
                audio_k += 1;
            }
        }
        if n == 0 {
            let late = Instant::now().saturating_duration_since(due(0));
            if late > Duration::from_millis(100) {
                sh.say(format!(
                    "ch{ch}: the first frame is {} ms late: recorded times are off by that much",
                    late.as_millis()
                ));
            }
        }
        if !pace(sh, due(t)) {
            return Ok(Ended::Stop);
        }
        if !stats.streaming.load(Ordering::SeqCst) {
            return Ok(Ended::PushStopped);
        }
        let key = video::is_key(codec, &au);
        if need_key && !key {
            continue; // after a refusal, firmware drops to the next I frame
        }
        let mut pack = iv_cm_venc_pack_s {
            pu8Addr: au.as_mut_ptr(),
            u32Len: au.len() as u32,
            u64PTS: pts,
            eFrameType: if key { 0 } else { 1 },
            u32Seq: vseq,
        };
        vseq = vseq.wrapping_add(1);
        // SAFETY: the pack and its bytes live across the call.
        let rc = unsafe { (api.iv_cs_push_stream)(ch, 1, (&raw mut pack).cast::<c_void>()) };
        if rc == 0 {
            need_key = false;
            stats.frames.fetch_add(1, Ordering::Relaxed);
            stats.bytes.fetch_add(au.len() as u64, Ordering::Relaxed);
            if keep_recent {
                lock(recent).push(utc, key, au);
            }
            stats.pushed_utc_ms.store(utc, Ordering::Relaxed);
            sh.wake();
        } else {
            need_key = true;
            stats.push_errors.fetch_add(1, Ordering::Relaxed);
            if stats.last_push_error.swap(rc, Ordering::Relaxed) != rc {
                sh.say(format!("ch{ch}: push refused: {}", code_name(rc)));
            }
        }
        *pushed_ms += 1000 / fps;
        if let Some(d) = a.duration
            && *pushed_ms as f64 >= d * 1000.0
        {
            return Ok(Ended::Stop);
        }
    }
    Ok(Ended::Stop)
}

fn events_main(cfg: &Config, api: &'static Api) {
    let a = &cfg.args;
    if a.event_every == 0 {
        return;
    }
    let sh = shared();
    let info = c"motion";
    let now_cam = || {
        sh.ch
            .first()
            .map(|c| c.pushed_utc_ms.load(Ordering::Relaxed))
            .unwrap_or(0)
    };
    let wait_for = |t: u64| -> bool {
        while now_cam() < t || t == 0 {
            if sh.stopping() {
                return false;
            }
            sh.wait(Duration::from_millis(200));
        }
        true
    };
    // The schedule starts at the first frame.
    while sh.first_utc_ms.load(Ordering::SeqCst) == 0 {
        if sh.stopping() {
            return;
        }
        sh.wait(Duration::from_millis(200));
    }
    let first = sh.first_utc_ms.load(Ordering::SeqCst);
    for k in 0u64.. {
        let id = (k % 32) as i32 + 1;
        let start = first + (u64::from(a.event_first) + k * u64::from(a.event_every)) * 1000;
        let stop = start + u64::from(a.event_length) * 1000;
        if !wait_for(start) {
            return;
        }
        let start_s = (start / 1000) as u32;
        for ch in 0..a.channels {
            match snapshot(cfg, ch, start, first) {
                Ok(j) => {
                    lock(&sh.snapshots).insert((ch, id), j);
                }
                Err(e) => sh.say(format!("ch{ch}: snapshot: {e:#}")),
            }
            // SAFETY: a valid C string for the call.
            let rc =
                unsafe { (api.iv_cs_event_start_ext)(ch, id, info.as_ptr(), start_s, start_s) };
            let st = &sh.ch[ch as usize];
            if rc == 0 {
                st.events.fetch_add(1, Ordering::Relaxed);
            } else {
                st.events_err.fetch_add(1, Ordering::Relaxed);
                lock(&sh.snapshots).remove(&(ch, id));
                sh.say(format!("ch{ch}: event {id} start: {}", code_name(rc)));
            }
        }
        let done = wait_for(stop);
        let stop_s = if done {
            (stop / 1000) as u32
        } else {
            (now_cam() / 1000).max(u64::from(start_s)) as u32
        };
        for ch in 0..a.channels {
            // SAFETY: a valid C string for the call.
            let rc = unsafe { (api.iv_cs_event_stop_ext)(ch, id, info.as_ptr(), stop_s, stop_s) };
            if rc != 0 && rc != -609 {
                sh.say(format!("ch{ch}: event {id} stop: {}", code_name(rc)));
            }
        }
        if !done {
            return;
        }
    }
}

/// The snapshot of an event on `ch` starting at `start` (UTC ms): the
/// frame captured then, as a JPEG. The pattern's is rendered again; an
/// `--input` frame is decoded from the GOP it was pushed in, once the
/// channel has pushed it (channels run in step, so at most a few frames'
/// wait).
fn snapshot(cfg: &Config, ch: u32, start: u64, first: u64) -> Result<Vec<u8>> {
    let sh = shared();
    if cfg.clip.is_none() {
        let mut f = Frame::new(cfg.w, cfg.h);
        let seq = (start - first) * u64::from(cfg.args.fps) / 1000;
        pattern::render(&mut f, start, seq, &format!("CH{ch}"));
        return encoder::jpeg(&f);
    }
    let pushed = &sh.ch[ch as usize].pushed_utc_ms;
    // Bounded: a channel that is not pushing (no plan) has no frame.
    let deadline = Instant::now() + Duration::from_secs(2);
    while pushed.load(Ordering::Relaxed) < start && !sh.stopping() && Instant::now() < deadline {
        sh.wait(Duration::from_millis(100));
    }
    let Some(aus) = lock(&sh.recent[ch as usize]).until(start) else {
        bail!("no frame pushed by the event's start to take it from");
    };
    encoder::jpeg_of_last(encoder::media_codec(cfg.codec), &aus)
}

/// The status line: in place on a terminal, otherwise a line every 5 s.
/// Library and camera messages are printed above it as they come.
fn status_main(cfg: &Config) {
    let sh = shared();
    let mode = cfg.args.status.as_str();
    let in_place = mode == "auto" && std::io::stderr().is_terminal();
    let every = if in_place {
        Duration::from_millis(250)
    } else {
        Duration::from_secs(5)
    };
    let started = Instant::now();
    let mut last = Instant::now();
    let mut shown = false;
    loop {
        let done = sh.done.load(Ordering::SeqCst);
        let lines: Vec<String> = std::mem::take(&mut *lock(&sh.lines));
        let mut err = std::io::stderr().lock();
        if in_place && shown && !lines.is_empty() {
            let _ = write!(err, "\r\x1b[K");
        }
        for l in &lines {
            let _ = writeln!(err, "{l}");
        }
        // The status only once something runs (not for an early error).
        let running = sh.first_utc_ms.load(Ordering::Relaxed) != 0;
        if running && mode != "off" {
            let line = status_line(cfg, started);
            if in_place {
                let _ = write!(err, "\r\x1b[K{line}");
                shown = true;
                if done {
                    let _ = writeln!(err);
                }
            } else if last.elapsed() >= every || done {
                let _ = writeln!(err, "{line}");
                last = Instant::now();
            }
        }
        let _ = err.flush();
        drop(err);
        if done {
            return;
        }
        sh.wait(if in_place {
            every
        } else {
            Duration::from_millis(500)
        });
    }
}

fn status_line(cfg: &Config, started: Instant) -> String {
    let sh = shared();
    let mut s = String::new();
    let cloud = match sh.connected.load(Ordering::Relaxed) {
        1 => "up",
        0 => "DOWN",
        _ => "?",
    };
    let cam_ms = sh
        .ch
        .first()
        .map(|c| c.pushed_utc_ms.load(Ordering::Relaxed))
        .unwrap_or(0);
    let clock = if cam_ms == 0 {
        "--:--:--".to_string()
    } else {
        pattern::utc_text(cam_ms).1[..8].to_string()
    };
    s.push_str(&format!(
        "[{:>4}s] cam {clock} UTC, cloud {cloud}",
        started.elapsed().as_secs()
    ));
    for (ch, c) in sh.ch.iter().enumerate().take(cfg.args.channels as usize) {
        let pushed = c.pushed_utc_ms.load(Ordering::Relaxed);
        let acked = c.acked_utc_s.load(Ordering::Relaxed) * 1000;
        let lag = if pushed > 0 && acked > 0 {
            format!("{:.1}s", pushed.saturating_sub(acked) as f64 / 1000.0)
        } else {
            "-".into()
        };
        let wm = match c.watermark.load(Ordering::Relaxed) {
            3 => "low",
            4 => "WARN",
            5 => "HIGH",
            _ => "-",
        };
        s.push_str(&format!(
            " | ch{ch} {} {}f {:.1}MB, segs {} ok {} err ({:.1}MB), unacked {lag} wm {wm}, events {}/{} ok, pics {}",
            if c.streaming.load(Ordering::Relaxed) { "rec" } else { "idle" },
            c.frames.load(Ordering::Relaxed),
            c.bytes.load(Ordering::Relaxed) as f64 / 1e6,
            c.segs_ok.load(Ordering::Relaxed),
            c.segs_err.load(Ordering::Relaxed),
            c.uploaded.load(Ordering::Relaxed) as f64 / 1e6,
            c.events_ok.load(Ordering::Relaxed),
            c.events.load(Ordering::Relaxed),
            c.pictures_ok.load(Ordering::Relaxed),
        ));
        let e = c.push_errors.load(Ordering::Relaxed);
        if e > 0 {
            s.push_str(&format!(", {e} pushes refused"));
        }
    }
    s.push_str(&format!(
        " | log {} err {} warn",
        sh.log_errors.load(Ordering::Relaxed),
        sh.log_warnings.load(Ordering::Relaxed)
    ));
    s
}
