//! A simulated camera: firmware that pushes synthetic H.264 and AAC
//! ([`crate::media_gen`]) at its frame clock, raises events, and hosts the
//! engine component the way libivcs does — one instance, its `tick` driven
//! by `wake-at-ms` and network progress, state exported as the restart
//! point, a trap answered by a fresh instance restored from that state, a
//! live update (swap) by a fresh instance given the running one's hand-over
//! (`export-state`, buffered media included).
//!
//! Firmware behaviours from ../shared/ABI.md that every camera shows: audio
//! pushed from boot, before the first IDR; video that starts mid-GOP (the
//! first frames are P frames and are refused until an IDR); pushes that go
//! on whatever the engine answers (after `push_stream_stop_cb` too);
//! `iv_cs_exit` + `iv_cs_init` for privacy mode. [`CamShared`] is what
//! outlives a reboot (the "flash": the exported state) and what the driver
//! and the checker see.

use crate::check::WatermarkCheck;
use crate::clock::{DeviceClock, elapsed_ms};
use crate::media_gen;
use crate::net::{Link, SimTransport};
use crate::scenario::CameraSpec;
use crate::sdcard::SdCard;
use crate::trace::Trace;
use ivcs_host::EngineRuntime;
use ivcs_host::bindings::exports::ivcs::engine::runtime::TickResult;
use ivcs_host::bindings::ivcs::engine::types as wt;
use ivcs_host::net::{NetClient, NetConfig, WakeSignal};
use ivcs_host::runtime::{EngineInstance, memory_cap};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// The channel every simulated camera records.
const CH: u8 = 0;
/// Video starts this long after boot, mid-GOP (see the module docs).
const VIDEO_START_MS: u64 = 200;
/// Export the engine state at most this often while only frames change it
/// (libivcs's `EXPORT_EVERY`).
const EXPORT_EVERY_MS: u64 = 1_000;
/// The restart point's hand-over is taken again this often (libivcs's
/// `BASE_EVERY`).
const BASE_EVERY_MS: u64 = 1_000;
/// Frames wait at most this long for a tick (libivcs's `TICK_EVERY`).
const TICK_EVERY_MS: u64 = 100;
/// After a swap, this long with no refused push and no failed slice (the
/// signs of a cut: -611 until the next IDR, the open segment `err`),
/// unless another fault explains them.
pub const SWAP_QUIET_MS: u64 = 30_000;

/// What the camera saw, for the checker and the report.
#[derive(Default, Debug)]
pub struct CamStats {
    /// Video frames pushed, and how many the engine took.
    pub video_pushed: u64,
    /// Video seqs the engine took and when (virtual ms), in order.
    pub video_taken: Vec<(u32, u64)>,
    /// Video pushes refused (any code).
    pub video_refused: u64,
    /// Audio frames pushed / taken.
    pub audio_pushed: u64,
    /// Audio frames the engine took.
    pub audio_taken: u64,
    /// Video seq ranges the engine reported uploaded (slices with state ok).
    pub acked: Vec<(u32, u32)>,
    /// Slices reported failed.
    pub failed_slices: u64,
    /// Virtual-time intervals (ms) in which video was refused, the camera
    /// was down or recording was off: where the cloud may have no video.
    pub dark: Vec<(u64, u64)>,
    /// Events started (id, virtual ms).
    pub events_started: Vec<(i32, u64)>,
    /// Event results (id, success).
    pub event_results: Vec<(i32, bool)>,
    /// Snapshots the engine asked for and firmware handed over.
    pub snapshots: u64,
    /// Highest watermark notified: 0 none, 1 low, 2 warn, 3 high.
    pub watermark_max: u8,
    /// Notified watermarks against the engine's buffer levels.
    pub wm: WatermarkCheck,
    /// Largest backlog seen (`buffer-levels`: bytes waiting for the
    /// network / budget), %.
    pub backlog_max_pct: f64,
    /// Largest fill seen (bytes held / budget; the pre-record ring keeps
    /// what room is left, so near 100 is normal), %.
    pub used_max_pct: f64,
    /// The engine's memory cap.
    pub memory_cap: usize,
    /// Memory growths the cap refused.
    pub refused_growths: u64,
    /// Engine restarts after a trap.
    pub restarts: u64,
    /// Live swaps, in order.
    pub swaps: Vec<SwapSeen>,
    /// Boots.
    pub boots: u64,
}

/// A live swap and the signs of a cut in the [`SWAP_QUIET_MS`] after it.
#[derive(Debug)]
pub struct SwapSeen {
    /// When, virtual ms.
    pub at: u64,
    /// Video pushes refused since.
    pub refused: u64,
    /// Slices reported failed since.
    pub failed: u64,
}

impl CamStats {
    /// The swap whose quiet period `now` is in.
    fn swap_quiet(&mut self, now: u64) -> Option<&mut SwapSeen> {
        self.swaps.last_mut().filter(|s| now < s.at + SWAP_QUIET_MS)
    }
}

/// A camera's state that outlives its software (reboots), shared with the
/// driver.
pub struct CamShared {
    /// Index from 0.
    pub idx: u32,
    /// The device id in the cloud.
    pub device_id: String,
    /// Its secret.
    pub secret: String,
    /// The camera's configuration.
    pub spec: CameraSpec,
    /// Its uplink.
    pub link: Link,
    /// The running boot's clocks (the driver steps them).
    pub clock: RefCell<Option<DeviceClock>>,
    /// Steps applied so far, ms (carried into the next boot's clock: an RTC
    /// keeps its error across a reboot).
    pub clock_offset_ms: Cell<i64>,
    /// The last exported engine state.
    pub flash: RefCell<Option<Vec<u8>>>,
    /// The next engine call traps (fault).
    pub trap_next: Cell<bool>,
    /// The engine is swapped for a fresh instance at the next turn (fault).
    pub swap_next: Cell<bool>,
    /// Recording is off (privacy) until this virtual ms.
    pub privacy_until: Cell<Option<u64>>,
    /// Frame numbers continue across boots so every frame has one identity.
    pub next_seq: Cell<(u32, u32)>,
    /// The SD card (dumped segments, the backup job).
    pub sd: RefCell<SdCard>,
    /// What the engine last said of the cloud (`connect-fail` /
    /// `connect-recover`); firmware backs up only while it is up.
    pub cloud_up: Cell<bool>,
    /// What happened.
    pub stats: RefCell<CamStats>,
    /// The run's trace.
    pub trace: Trace,
}

impl CamShared {
    fn who(&self) -> String {
        format!("cam{}", self.idx)
    }

    fn dark(&self, from: u64, to: u64) {
        let mut s = self.stats.borrow_mut();
        match s.dark.last_mut() {
            Some(last) if last.1 + 1000 >= from => last.1 = last.1.max(to),
            _ => s.dark.push((from, to)),
        }
    }
}

/// What one boot's engine instances are made with.
struct Boot {
    cam: Rc<CamShared>,
    rt: Rc<EngineRuntime>,
    net: NetClient,
    clock: DeviceClock,
}

/// The engine and its host state for one boot.
struct Host {
    boot: Boot,
    inst: EngineInstance,
    params: wt::InitParams,
    wake_at: Option<u64>,
    last_export: u64,
    dirty: bool,
    /// Frames were pushed since the last tick.
    fed: bool,
    last_tick: u64,
    /// The engine's last hand-over before the checkpoint in the flash: a
    /// trap restart restores both (the buffered media). Not in the flash:
    /// libivcs keeps it in memory, so a reboot loses it.
    base: Option<Vec<u8>>,
    last_base: u64,
    /// Frames the engine took since the last export, fed again after a
    /// trap restart (as libivcs does).
    replay: Vec<wt::Frame>,
}

/// Runs one boot of the camera until the simulation ends or the host is
/// crashed (a reboot).
pub async fn run(cam: Rc<CamShared>, rt: Rc<EngineRuntime>, end_ms: u64) -> turmoil::Result {
    let who = cam.who();
    let spec = cam.spec.clone();
    let clock = DeviceClock::new(spec.clock.drift_ppm, spec.clock.unset_until_s);
    clock.step(cam.clock_offset_ms.get());
    *cam.clock.borrow_mut() = Some(clock.clone());
    let boot = clock.boot_ms();
    let params = init_params(&spec);
    {
        let mut st = cam.stats.borrow_mut();
        st.boots += 1;
        st.wm.boot(marks(&params));
    }
    cam.sd.borrow_mut().boot();
    cam.cloud_up.set(true);
    // Network progress: the wake signal's generation says whether there
    // was any since the last tick; the hook wakes the loop's sleep.
    let progress = Arc::new(tokio::sync::Notify::new());
    let p2 = progress.clone();
    let wake = WakeSignal::with_hook(move || p2.notify_one());
    let mut nc = NetConfig::new(format!("http://{}", crate::cloud::HOST));
    nc.wake = wake.clone();
    let net = NetClient::with_transport(
        nc,
        Arc::new(SimTransport {
            link: cam.link.clone(),
        }),
    )?;
    let boot_ctx = Boot {
        cam: cam.clone(),
        rt,
        net,
        clock: clock.clone(),
    };
    let mut host = Host::start(boot_ctx, params)?;
    let mut seen = wake.generation();
    cam.trace.event(&who, "boot", "");

    let enc = media_gen::Encoders::new(&spec, cam.idx);
    let gop = u64::from(spec.fps * spec.gop_s);
    let frame_ms = |k: u64| VIDEO_START_MS + k * 1000 / u64::from(spec.fps);
    // The first video frame is frame 5 of its GOP (mid-GOP start).
    let mut vk: u64 = 0;
    let mut ak: u64 = 0;
    let audio_ms =
        |k: u64| k * u64::from(media_gen::AAC_SAMPLES) * 1000 / u64::from(media_gen::AAC_RATE);
    let mut refused_since: Option<u64> = None;
    let mut events = EventPlan::new(&spec, boot, end_ms);
    let mut off_since: Option<u64> = None;
    // Ticks at one virtual instant: an engine that never lets time pass is
    // a busy loop on a real device.
    let mut spin = (u64::MAX, 0u32);

    loop {
        let now = elapsed_ms();
        spin = if spin.0 == now {
            (now, spin.1 + 1)
        } else {
            (now, 0)
        };
        if spin.1 > 10_000 {
            cam.trace
                .event(&who, "busy-loop", "10000 turns without time passing");
            return Err(format!(
                "cam{}: the engine spins at {} ms without letting time pass",
                cam.idx, now
            )
            .into());
        }
        let up = now - boot;
        if cam.swap_next.replace(false) && off_since.is_none() {
            host.swap()?;
        }
        // Privacy mode: exit, and init again when it ends.
        match (cam.privacy_until.get(), off_since) {
            (Some(until), None) if now < until => {
                host.call(|s, w| w.ivcs_engine_cs().call_exit(s))?;
                cam.trace.event(&who, "exit", "privacy");
                off_since = Some(now);
            }
            (Some(until), Some(since)) if now >= until => {
                let p = host.params.clone();
                let ok = matches!(
                    host.call(|s, w| w.ivcs_engine_cs().call_init(s, &p))?,
                    Some(Ok(()))
                );
                cam.trace
                    .event(&who, "init", &format!("after privacy ok={ok}"));
                cam.dark(since, now);
                cam.privacy_until.set(None);
                off_since = None;
            }
            _ => {}
        }
        let recording = off_since.is_none();
        // Frames due.
        while frame_ms(vk) <= up {
            let pts = boot_pts(frame_ms(vk));
            if recording {
                let key = (vk + 5).is_multiple_of(gop);
                let seq = take_seq(&cam, 0);
                let frame = enc.video(key, seq, pts);
                let r = host.push(&frame)?;
                trace_push(&cam, &frame, &r);
                let mut st = cam.stats.borrow_mut();
                st.video_pushed += 1;
                if matches!(r, Some(Ok(()))) {
                    st.video_taken.push((seq, now));
                    drop(st);
                    if let Some(since) = refused_since.take() {
                        cam.dark(since, now);
                    }
                } else {
                    st.video_refused += 1;
                    if let Some(s) = st.swap_quiet(now) {
                        s.refused += 1;
                    }
                    refused_since.get_or_insert(now);
                }
                host.dirty = true;
                host.fed = true;
            }
            vk += 1;
        }
        while spec.audio && audio_ms(ak) <= up {
            if recording {
                let frame = enc.audio(take_seq(&cam, 1), boot_pts(audio_ms(ak)));
                let r = host.push(&frame)?;
                trace_push(&cam, &frame, &r);
                let mut st = cam.stats.borrow_mut();
                st.audio_pushed += 1;
                st.audio_taken += u64::from(matches!(r, Some(Ok(()))));
                host.fed = true;
            }
            ak += 1;
        }
        // Events due.
        if recording {
            for (id, start, pre) in events.due(now) {
                let r = if start {
                    host.call(|s, w| {
                        w.ivcs_engine_cs()
                            .call_event_start(s, CH, id, b"motion", 0, pre)
                    })?
                } else {
                    host.call(|s, w| {
                        w.ivcs_engine_cs()
                            .call_event_stop(s, CH, id, b"motion", 0, 0)
                    })?
                };
                let what = if start { "event_start" } else { "event_stop" };
                let code = match &r {
                    Some(Ok(())) => 0,
                    Some(Err(e)) => e.code,
                    None => -1,
                };
                cam.trace.event(&who, what, &format!("id {id} -> {code}"));
                if start && code == 0 {
                    cam.stats.borrow_mut().events_started.push((id, now));
                }
                host.dirty = true;
            }
        }
        // The backup job.
        if spec.backup && recording {
            let line = cam.sd.borrow_mut().drive(now, cam.cloud_up.get(), |c| {
                let r = host.call(|s, w| {
                    w.ivcs_engine_cs()
                        .call_backup_upload(s, CH, c.state, c.name, c.data)
                })?;
                Ok(r.map(|r| r.map_err(|e| e.code)))
            })?;
            if let Some(line) = line {
                cam.trace.event(&who, "backup", &line);
            }
        }
        host.answer_captures();
        // The engine's timers, network progress, frames waiting.
        let frames_due = host.fed && now >= host.last_tick + TICK_EVERY_MS;
        if host.wake_at.is_none_or(|t| t <= now) || frames_due || wake.generation() != seen {
            // Progress during the tick is seen by the next turn.
            seen = wake.generation();
            host.tick()?;
        }
        if host.dirty && now >= host.last_export + EXPORT_EVERY_MS {
            host.export()?;
        }
        cam.stats.borrow_mut().refused_growths = host.inst.host_state().refused_growths();
        // Sleep until the next thing to do.
        let mut next = boot + frame_ms(vk);
        if spec.audio {
            next = next.min(boot + audio_ms(ak));
        }
        if let Some(t) = host.wake_at {
            next = next.min(t);
        }
        if host.fed {
            next = next.min(host.last_tick + TICK_EVERY_MS);
        }
        if let Some(t) = events.next() {
            next = next.min(t);
        }
        if let Some(t) = cam.privacy_until.get() {
            next = next.min(t);
        }
        if spec.backup
            && let Some(t) = cam.sd.borrow().next_at(cam.cloud_up.get())
        {
            next = next.min(t);
        }
        let now = elapsed_ms();
        if next > now {
            let d = Duration::from_millis(next - now);
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = progress.notified() => {}
            }
        }
    }
}

/// One trace line per push: what was pushed and the answer (0 taken,
/// an `IV_ERR_*` code, -1 the call trapped).
fn trace_push(cam: &CamShared, f: &wt::Frame, r: &Option<Result<(), wt::EngineError>>) {
    let code = match r {
        Some(Ok(())) => 0,
        Some(Err(e)) => e.code,
        None => -1,
    };
    let kind = match (f.kind, f.frame_type) {
        (wt::StreamKind::Audio, _) => "audio",
        (_, wt::FrameType::I) => "video I",
        _ => "video P",
    };
    cam.trace.event(
        &cam.who(),
        "push",
        &format!(
            "{kind} seq {} pts {} {} B -> {code}",
            f.seq,
            f.pts_ms,
            f.data.len()
        ),
    );
}

/// PTS of a frame `ms` after boot: the camera's frame clock (monotonic).
fn boot_pts(ms: u64) -> u64 {
    1_000 + ms
}

fn take_seq(cam: &CamShared, stream: u8) -> u32 {
    let (v, a) = cam.next_seq.get();
    if stream == 0 {
        cam.next_seq.set((v + 1, a));
        v
    } else {
        cam.next_seq.set((v, a + 1));
        a
    }
}

/// What the camera's encoders produce.
pub(crate) fn av_format(spec: &CameraSpec) -> wt::AvFormat {
    wt::AvFormat {
        video: wt::VideoCodec::H264,
        width: spec.width,
        height: spec.height,
        framerate: spec.fps,
        audio: spec.audio.then_some(wt::AudioFormat {
            codec: wt::AudioCodec::Aac,
            sample_rate: media_gen::AAC_RATE,
            channels: 1,
            samples_per_frame: media_gen::AAC_SAMPLES,
        }),
    }
}

/// The segment container the camera asks for.
pub(crate) fn container(spec: &CameraSpec) -> wt::Container {
    if spec.container == "fmp4" {
        wt::Container::Fmp4
    } else {
        wt::Container::Ts
    }
}

/// The watermark marks (bytes) of the camera's channel, if enabled.
fn marks(params: &wt::InitParams) -> Option<[u64; 3]> {
    let c = params.channels.first()?.congestion;
    c.enable.then_some([c.low_mark, c.warn_mark, c.high_mark])
}

fn init_params(spec: &CameraSpec) -> wt::InitParams {
    let budget = spec.budget_kb * 1024;
    let mark = |i: usize| {
        spec.watermarks_pct
            .get(i)
            .map_or(0, |p| u64::from(budget) * u64::from(*p) / 100)
    };
    wt::InitParams {
        channels: vec![wt::ChannelParams {
            channel: CH,
            max_gop_size: budget,
            congestion: wt::Congestion {
                enable: !spec.watermarks_pct.is_empty(),
                low_mark: mark(0),
                warn_mark: mark(1),
                high_mark: mark(2),
            },
            av: av_format(spec),
            container: container(spec),
            event_report_opt: wt::EventReportOpt::VideoOrPicture,
        }],
        callbacks: wt::OptionalCallbacks::NOTIFY
            | wt::OptionalCallbacks::EVENT_REPORT_RESULT
            | wt::OptionalCallbacks::CAPTURE_PICTURE
            | if spec.backup {
                wt::OptionalCallbacks::DUMP_FILE
            } else {
                wt::OptionalCallbacks::empty()
            },
    }
}

impl Host {
    /// A fresh instance for `boot`: configured, then restored from the
    /// flash or initialised.
    fn start(boot: Boot, params: wt::InitParams) -> anyhow::Result<Host> {
        let inst = boot.instance(&params, None)?;
        Ok(Host {
            boot,
            inst,
            params,
            wake_at: None,
            last_export: elapsed_ms(),
            dirty: true,
            fed: false,
            last_tick: elapsed_ms(),
            base: None,
            last_base: 0,
            replay: Vec::new(),
        })
    }

    /// Pushes a frame as libivcs's frame job does: a push the engine
    /// trapped in goes once more to the restarted engine; a taken frame is
    /// kept for a replay until the next export.
    fn push(&mut self, frame: &wt::Frame) -> anyhow::Result<Option<Result<(), wt::EngineError>>> {
        let mut r = self.call(|s, w| w.ivcs_engine_cs().call_push(s, CH, frame))?;
        if r.is_none() {
            r = self.call(|s, w| w.ivcs_engine_cs().call_push(s, CH, frame))?;
        }
        if matches!(r, Some(Ok(()))) {
            self.replay.push(frame.clone());
        }
        Ok(r)
    }

    /// Calls into the engine; a trap restarts it from the flash and gives
    /// `None` (the call is lost, as a trapped call is in libivcs).
    fn call<R>(
        &mut self,
        f: impl FnOnce(
            &mut wasmtime::Store<ivcs_host::runtime::HostState>,
            &ivcs_host::bindings::Engine,
        ) -> wasmtime::Result<R>,
    ) -> anyhow::Result<Option<R>> {
        let cam = &self.boot.cam;
        if cam.trap_next.replace(false) {
            self.inst.set_deadline(0);
        }
        let r = {
            let (store, world) = self.inst.parts();
            f(store, world)
        };
        match r {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                let why = format!("{e:#}");
                cam.trace
                    .event(&cam.who(), "trap", why.lines().next().unwrap_or(""));
                cam.stats.borrow_mut().restarts += 1;
                // The trapped instance goes first, its exchanges with it
                // (as libivcs drops it before restoring).
                self.inst = self.boot.rt.instantiate(memory_cap(&self.params))?;
                self.inst = self.boot.restart(&self.params, self.base.take())?;
                // The frames taken since the restart point, fed again.
                for f in std::mem::take(&mut self.replay) {
                    let (store, world) = self.inst.parts();
                    if world.ivcs_engine_cs().call_push(store, CH, &f).is_err() {
                        break;
                    }
                }
                self.wake_at = None;
                // The replayed frames are in no export yet.
                self.last_export = 0;
                self.dirty = true;
                self.fed = false;
                self.last_tick = elapsed_ms();
                Ok(None)
            }
        }
    }

    fn tick(&mut self) -> anyhow::Result<()> {
        let r: Option<TickResult> = self.call(|s, w| w.ivcs_engine_runtime().call_tick(s))?;
        self.fed = false;
        self.last_tick = elapsed_ms();
        let Some(t) = r else {
            self.wake_at = Some(elapsed_ms() + 100);
            return Ok(());
        };
        let boot = self.boot.clock.boot_ms();
        self.wake_at = t.wake_at_ms.map(|ms| boot + ms);
        let cam = &self.boot.cam;
        cam.trace.event(
            &cam.who(),
            "tick",
            &format!("{} event(s), wake at {:?}", t.events.len(), self.wake_at),
        );
        let eventful = !t.events.is_empty();
        for ev in t.events {
            handle_event(&self.boot.cam, ev);
        }
        let levels = self.call(|s, w| w.ivcs_engine_runtime().call_buffer_levels(s))?;
        let mut st = self.boot.cam.stats.borrow_mut();
        for l in levels.into_iter().flatten() {
            let pct = |n: u64| 100.0 * n as f64 / l.budget.max(1) as f64;
            st.used_max_pct = st.used_max_pct.max(pct(l.used));
            st.backlog_max_pct = st.backlog_max_pct.max(pct(l.backlog));
            st.wm.observe(l.backlog, elapsed_ms());
        }
        drop(st);
        if eventful {
            self.export()?;
        }
        Ok(())
    }

    /// Firmware's `event_capture_picture_cb`: a snapshot for every
    /// capture the engine asked for, handed over at once; the engine takes
    /// it at its next tick.
    fn answer_captures(&mut self) {
        let cam = &self.boot.cam;
        let reqs = self.inst.host_state().take_capture_requests();
        for r in reqs {
            let jpeg = media_gen::snapshot_jpeg(cam.idx, r.event_id, 20_000);
            self.inst
                .host_state()
                .fulfil_capture(&r, Ok(bytes::Bytes::from(jpeg)));
            cam.stats.borrow_mut().snapshots += 1;
            cam.trace.event(
                &cam.who(),
                "event_capture_picture_cb",
                &format!("event {} -> 20 kB", r.event_id),
            );
            self.wake_at = Some(elapsed_ms());
        }
    }

    /// The restart point, as libivcs takes it: at most every
    /// [`BASE_EVERY_MS`] a hand-over with the buffered media, and a
    /// checkpoint (the media since) into the flash.
    fn export(&mut self) -> anyhow::Result<()> {
        let now = elapsed_ms();
        if self.base.is_none() || now >= self.last_base + BASE_EVERY_MS {
            match self.call(|s, w| w.ivcs_engine_runtime().call_export_state(s))? {
                Some(Ok(blob)) => {
                    self.base = Some(blob);
                    self.last_base = now;
                }
                Some(Err(_)) => {}
                None => return Ok(()),
            }
        }
        let r = self.call(|s, w| w.ivcs_engine_runtime().call_export_checkpoint(s))?;
        if let Some(Ok(blob)) = r {
            *self.boot.cam.flash.borrow_mut() = Some(blob);
            self.dirty = false;
            self.last_export = elapsed_ms();
            self.replay.clear();
        }
        Ok(())
    }

    /// A live engine update, as libivcs swaps at a job boundary: the
    /// running engine's hand-over (`export-state`) goes into a fresh
    /// instance; only if that worked do calls go to the new one. Virtual
    /// time does not pass, so frames due meanwhile are pushed to the new
    /// engine, as libivcs's queue holds them for it.
    fn swap(&mut self) -> anyhow::Result<()> {
        let cam = self.boot.cam.clone();
        let state = match self.call(|s, w| w.ivcs_engine_runtime().call_export_state(s))? {
            Some(Ok(state)) => state,
            Some(Err(e)) => anyhow::bail!("cam{}: export-state refused: {}", cam.idx, e.message),
            None => return Ok(()), // trapped: restarted from the flash instead
        };
        let inst = self.boot.instance(&self.params, Some(&state))?;
        self.inst = inst;
        // The hand-over holds every frame taken; the restart point is the
        // new engine's own.
        self.base = None;
        self.replay.clear();
        // The new engine decides its own timers at its first tick.
        self.wake_at = Some(elapsed_ms());
        cam.stats.borrow_mut().swaps.push(SwapSeen {
            at: elapsed_ms(),
            refused: 0,
            failed: 0,
        });
        cam.trace
            .event(&cam.who(), "swap", &format!("hand-over {} B", state.len()));
        self.export()
    }
}

impl Boot {
    /// After a trap: an instance restored from `base` (the last hand-over)
    /// and the flash's checkpoint after it, or from the checkpoint alone if
    /// the pair does not load.
    fn restart(
        &self,
        params: &wt::InitParams,
        base: Option<Vec<u8>>,
    ) -> anyhow::Result<EngineInstance> {
        let flash = self.cam.flash.borrow().clone();
        if let (Some(base), Some(cp)) = (base, flash) {
            let point = [base.as_slice(), &cp].concat();
            match self.instance(params, Some(&point)) {
                Ok(inst) => {
                    self.cam
                        .trace
                        .event(&self.cam.who(), "import_state", "ok, with media");
                    return Ok(inst);
                }
                Err(e) => self.cam.trace.event(
                    &self.cam.who(),
                    "import_state",
                    &format!("with media: {e:#}; the checkpoint alone"),
                ),
            }
        }
        self.instance(params, None)
    }

    /// A configured instance, restored from `state` (a hand-over) or else
    /// the flash, or initialised.
    fn instance(
        &self,
        params: &wt::InitParams,
        state: Option<&[u8]>,
    ) -> anyhow::Result<EngineInstance> {
        let cam = &self.cam;
        let cap = memory_cap(params);
        let mut inst = self.rt.instantiate(cap)?;
        inst.enable_captures();
        inst.set_network(Some(self.net.clone()));
        inst.set_clock(self.clock.clone());
        cam.stats.borrow_mut().memory_cap = cap;
        let dc = wt::DeviceConfig {
            device_id: cam.device_id.clone(),
            device_secret: cam.secret.clone().into_bytes(),
        };
        let (store, world) = inst.parts();
        world
            .ivcs_engine_cs()
            .call_configure(&mut *store, &dc)?
            .map_err(|e| anyhow::anyhow!("configure: {}", e.message))?;
        if let Some(state) = state {
            return match world
                .ivcs_engine_runtime()
                .call_import_state(&mut *store, state)?
            {
                Ok(()) => Ok(inst),
                Err(e) => anyhow::bail!("cam{}: import-state refused: {}", cam.idx, e.message),
            };
        }
        let state = cam.flash.borrow().clone();
        let restored = match state {
            Some(state) => world
                .ivcs_engine_runtime()
                .call_import_state(&mut *store, &state)?
                .is_ok(),
            None => false,
        };
        if restored {
            cam.trace.event(&cam.who(), "import_state", "ok");
        } else {
            let r = world.ivcs_engine_cs().call_init(&mut *store, params)?;
            cam.trace.event(
                &cam.who(),
                "init",
                &format!("{:?}", r.err().map(|e| e.code)),
            );
        }
        Ok(inst)
    }
}

fn handle_event(cam: &CamShared, ev: wt::HostEvent) {
    let who = cam.who();
    match ev {
        wt::HostEvent::PushStart(ch) => {
            cam.trace
                .event(&who, "push_stream_start_cb", &ch.to_string())
        }
        wt::HostEvent::PushStop(ch) => {
            cam.trace
                .event(&who, "push_stream_stop_cb", &ch.to_string())
        }
        wt::HostEvent::Notify(n) => {
            let mut st = cam.stats.borrow_mut();
            let level = match n.kind {
                wt::NotifyKind::WatermarkLow => 1,
                wt::NotifyKind::WatermarkWarn => 2,
                wt::NotifyKind::WatermarkHigh => 3,
                _ => 0,
            };
            st.watermark_max = st.watermark_max.max(level);
            if level > 0 {
                st.wm.notified(level);
            }
            let mut detail = format!("{:?}", n.kind);
            match n.kind {
                wt::NotifyKind::ConnectFail => cam.cloud_up.set(false),
                wt::NotifyKind::ConnectRecover => cam.cloud_up.set(true),
                _ => {}
            }
            for s in &n.slices {
                let ok = s.state == wt::UploadState::Ok;
                if ok {
                    st.acked.push((s.seq_start, s.seq_end));
                } else {
                    st.failed_slices += 1;
                    if let Some(s) = st.swap_quiet(elapsed_ms()) {
                        s.failed += 1;
                    }
                }
                cam.sd.borrow_mut().slice(s.utc_start_s, s.utc_end_s, ok);
                detail.push_str(&format!(
                    " [{:?} seq {}-{} {}/{} B]",
                    s.state, s.seq_start, s.seq_end, s.upload_size, s.total_size
                ));
            }
            drop(st);
            cam.trace.event(&who, "notify_cb", &detail);
        }
        wt::HostEvent::EventResult(r) => {
            cam.stats
                .borrow_mut()
                .event_results
                .push((r.event_id, r.success));
            cam.trace.event(
                &who,
                "event_report_result_cb",
                &format!(
                    "id {} success {} {}-{}",
                    r.event_id, r.success, r.start_utc_s, r.end_utc_s
                ),
            );
        }
        wt::HostEvent::Log(l) => {
            // And what a swap's hand-over carried on.
            if matches!(l.level, wt::LogLevel::Error | wt::LogLevel::Warn)
                || l.message.starts_with("import-state")
            {
                cam.trace.event(&who, "log", &l.message);
            }
        }
        wt::HostEvent::DumpFile(d) => {
            cam.sd
                .borrow_mut()
                .dumped(d.state, d.start_ms, d.end_ms, &d.file_name, &d.data);
        }
        // The simulated camera takes no engine updates from the cloud: it
        // runs the engine it was given, so a trace shows the offer only.
        wt::HostEvent::EngineOffer(o) => cam.trace.event(
            &who,
            "engine_offer",
            &format!("release {} engine {} ignored", o.release, o.engine_version),
        ),
        wt::HostEvent::BalanceRequest(_)
        | wt::HostEvent::AiService(_)
        | wt::HostEvent::OpComplete(_) => {}
    }
}

/// The firmware's event schedule.
struct EventPlan {
    /// (virtual ms, id, start?, pre-record s), by time.
    due: std::collections::VecDeque<(u64, i32, bool, u32)>,
}

impl EventPlan {
    /// Events that start after `boot` and before `end`.
    fn new(spec: &CameraSpec, boot: u64, end: u64) -> EventPlan {
        let mut all = Vec::new();
        for e in &spec.events {
            for at in e.starts_ms(end).filter(|&t| t >= boot) {
                all.push((at, e.id, true, e.pre_record_s));
                all.push((at + e.duration_s * 1000, e.id, false, 0));
            }
        }
        all.sort_by_key(|x| (x.0, !x.2));
        EventPlan { due: all.into() }
    }

    fn due(&mut self, now: u64) -> Vec<(i32, bool, u32)> {
        let mut out = Vec::new();
        while self.due.front().is_some_and(|e| e.0 <= now) {
            if let Some((_, id, start, pre)) = self.due.pop_front() {
                out.push((id, start, pre));
            }
        }
        out
    }

    fn next(&self) -> Option<u64> {
        self.due.front().map(|e| e.0)
    }
}
