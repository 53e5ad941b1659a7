//! The process-wide service: one engine thread (`ivcs-engine`) that owns the
//! wasmtime store, a queue of jobs that firmware threads hand it, the
//! waiters of blocking calls, and the restart-on-trap logic.
//!
//! Every `iv_cs_*` call becomes a job: a closure run on the engine thread
//! with the [`EngineCtx`]; the calling thread waits for its answer (engine
//! calls take microseconds). Blocking functions then wait, on their own
//! thread, for the operation's `op-complete` ([`OpTable`]). The engine
//! thread sleeps on the network [`WakeSignal`], which jobs also notify, until
//! the engine's `wake-at-ms`.

use crate::abi;
use crate::admit::Admission;
use crate::callbacks;
use crate::codes::*;
use crate::config::HostConfig;
use crate::frame_pool::FramePool;
use crate::log;
use crate::probation::{
    Baseline, PROBATION, Previous, Probation, ProbationOutcome, RestoredFrom, RollbackReason,
    Verdict,
};
use crate::watchdog::Watchdog;
use ivcs_host::bindings::Engine as World;
use ivcs_host::bindings::exports::ivcs::engine::runtime::TickResult;
use ivcs_host::bindings::ivcs::engine::types as wt;
use ivcs_host::imports::CaptureRequest;
use ivcs_host::net::{NetClient, NetConfig, WakeSignal};
use ivcs_host::runtime::EngineInstance;
use ivcs_host::runtime::{HostState, MEMORY_FIXED, memory_cap};
use ivcs_host::{EngineRuntime, EngineSource};
use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wasmtime::Store;

/// A job for the engine thread.
type Job = Box<dyn FnOnce(&mut EngineCtx) + Send>;

/// Longest one engine call may run by default.
pub const DEFAULT_CALL_DEADLINE_MS: u64 = 2_000;

/// How often the engine state is exported at most while only frames and
/// ticks change it.
const EXPORT_EVERY: Duration = Duration::from_secs(1);
/// How often the restart point's hand-over (the buffered media) is taken
/// again; the checkpoints between carry the media since
/// (docs/design/trap-restart.md).
const BASE_EVERY: Duration = Duration::from_secs(1);
/// Most bytes of frames kept for a replay: exports come every second, so
/// only a stalled engine reaches it; the replay is then given up (a replay
/// with a hole would feed P frames without their reference).
const REPLAY_MAX_BYTES: usize = 4 << 20;

/// Locks a mutex, taking over a poisoned one (our data stays consistent:
/// every critical section is a few assignments).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Results of blocking operations, by op id. A waiter registers its id on
/// the engine thread (in the same job that started the operation), so a
/// completion can never arrive before its waiter.
#[derive(Default)]
pub struct OpTable {
    done: Mutex<HashMap<u64, Option<wt::OpResult>>>,
    changed: Condvar,
}

impl OpTable {
    fn register(&self, id: u64) {
        lock(&self.done).insert(id, None);
    }

    fn complete(&self, id: u64, r: wt::OpResult) {
        let mut m = lock(&self.done);
        if let Some(slot) = m.get_mut(&id) {
            *slot = Some(r);
            self.changed.notify_all();
        }
    }

    /// Waits for op `id` until `deadline`; `None` on timeout. The entry is
    /// removed either way (a late completion is then ignored).
    pub fn wait(&self, id: u64, deadline: Instant) -> Option<wt::OpResult> {
        let mut m = lock(&self.done);
        loop {
            if let Some(Some(_)) = m.get(&id) {
                return m.remove(&id).flatten();
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                m.remove(&id);
                return None;
            };
            m = match self.changed.wait_timeout(m, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

/// Firmware's callbacks and the channels of one `iv_cs_init` .. `iv_cs_exit`.
#[derive(Clone)]
pub struct Session {
    /// Distinguishes sessions in the callback queue.
    pub id: u64,
    /// The callbacks as firmware gave them.
    pub fw: abi::iv_cs_init_func_cb_s,
    /// The init parameters (to re-init a restarted engine that lost them).
    pub params: wt::InitParams,
}

/// Jobs for the engine thread.
#[derive(Default)]
struct JobQueue {
    jobs: VecDeque<Job>,
    /// The engine thread has ended: jobs are dropped at once, which answers
    /// their callers with -605.
    ended: bool,
    /// The engine thread will look at the queue within [`TICK_EVERY`]
    /// without being woken: a frame posted now needs no wake-up.
    wakes_soon: bool,
}

/// The shared half of the service.
pub struct Service {
    jobs: Mutex<JobQueue>,
    wake: Arc<WakeSignal>,
    /// Waiters of blocking calls.
    pub ops: OpTable,
    /// Mirror of the engine's "initialised" (set on the engine thread).
    pub initialised: AtomicBool,
    /// Mirror of the engine's push gates: answers pushes at once.
    pub admission: Admission,
    /// Buffers of large pushed frames, reused.
    pub frames: FramePool,
    /// Upload and reply timeouts last accepted by `iv_cs_set_trans_time`.
    pub trans_ms: Mutex<(u32, u32)>,
    /// Test hook: the next engine call gets a deadline that has passed.
    pub expire_next_call: AtomicBool,
    /// Test hook: the next engine call may not grow the engine's memory.
    pub squeeze_next_call: AtomicBool,
    stop: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
    watchdog: Arc<Watchdog>,
    /// Restarts so far.
    pub restarts: Mutex<u64>,
    /// Test hook: the length of the next probation instead of [`PROBATION`].
    pub probation_window: Mutex<Option<Duration>>,
}

static SERVICE: Mutex<Option<Arc<Service>>> = Mutex::new(None);

/// The running service, started on first use.
pub fn get() -> Result<Arc<Service>, i32> {
    let mut g = lock(&SERVICE);
    if let Some(s) = &*g {
        return Ok(s.clone());
    }
    let s = Service::start().map_err(|e| {
        log::error(&format!("cannot start libivcs: {e}"));
        IV_ERR_CS_PRM_NOT_AVAILABLE
    })?;
    *g = Some(s.clone());
    Ok(s)
}

/// The running service, if any (never starts one).
pub fn running() -> Option<Arc<Service>> {
    lock(&SERVICE).clone()
}

/// Stops the threads and frees the engine (`ivcs_host_shutdown`). A later
/// `iv_cs_*` call starts a fresh service.
pub fn shutdown() -> i32 {
    if callbacks::on_callback_thread() {
        return IV_ERR_CS_INIT_REPEAT;
    }
    let Some(s) = lock(&SERVICE).take() else {
        callbacks::stop();
        return IV_ERR_NONE;
    };
    s.stop.store(true, Ordering::SeqCst);
    s.wake.notify();
    s.watchdog.stop();
    let threads = std::mem::take(&mut *lock(&s.threads));
    for t in threads {
        let _ = t.join();
    }
    callbacks::stop();
    IV_ERR_NONE
}

impl Service {
    fn start() -> std::io::Result<Arc<Service>> {
        let (cfg, problems) = crate::config::resolve();
        if let Some(l) = cfg.log_level {
            log::set_level(l);
        }
        for p in problems {
            log::warn(&format!("config: {p}"));
        }
        let (watchdog, wd_thread) = Watchdog::start()?;
        let svc = Arc::new(Service {
            jobs: Mutex::new(JobQueue::default()),
            wake: WakeSignal::new(),
            ops: OpTable::default(),
            initialised: AtomicBool::new(false),
            admission: Admission::default(),
            frames: FramePool::default(),
            trans_ms: Mutex::new((30_000, 10_000)),
            expire_next_call: AtomicBool::new(false),
            squeeze_next_call: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            threads: Mutex::new(vec![wd_thread]),
            watchdog,
            restarts: Mutex::new(0),
            probation_window: Mutex::new(None),
        });
        let svc2 = svc.clone();
        let engine_thread = std::thread::Builder::new()
            .name("ivcs-engine".into())
            .spawn(move || {
                ivcs_host::sched::background_thread();
                let mut ctx = EngineCtx::new(svc2.clone(), cfg);
                ctx.run();
            });
        match engine_thread {
            Ok(h) => lock(&svc.threads).push(h),
            Err(e) => {
                svc.watchdog.stop();
                return Err(e);
            }
        }
        Ok(svc)
    }

    /// Runs `f` on the engine thread and returns its answer; `None` if the
    /// service is stopping.
    pub fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut EngineCtx) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.post(move |ctx| {
            let r = f(ctx);
            // A call that changed the gates (init, events, exit) returns
            // only once pushes are answered accordingly.
            ctx.publish_gates();
            let _ = tx.send(r);
        });
        rx.recv().ok()
    }

    /// Queues `f` for the engine thread without waiting.
    pub fn post(&self, f: impl FnOnce(&mut EngineCtx) + Send + 'static) {
        self.enqueue(Box::new(f), false);
    }

    /// [`Service::post`] for feeding a frame: unless `now`, the job may wait
    /// until the engine thread's next planned wake-up (at most
    /// [`TICK_EVERY`]). A wake-up per frame (70 a second with audio) was
    /// most of the library's CPU at real time. The key frame that starts a
    /// recording run passes `now`: the run is dated by the engine's clock
    /// when it takes the frame, which must be the time of the push. Other
    /// key frames do not: a wake-up in the push of a 200 KB I frame showed
    /// in its p99 latency.
    pub fn post_frame(&self, now: bool, f: impl FnOnce(&mut EngineCtx) + Send + 'static) {
        self.enqueue(Box::new(f), !now);
    }

    fn enqueue(&self, job: Job, lazy: bool) {
        let mut q = lock(&self.jobs);
        if q.ended {
            return; // dropping `job` answers its caller
        }
        q.jobs.push_back(job);
        let wakes_soon = q.wakes_soon;
        drop(q);
        if !(lazy && wakes_soon) {
            self.wake.notify();
        }
    }

    /// A probation ended: the cloud hears of it if the engine came
    /// from there (returns at once).
    fn record_outcome(&self, o: ProbationOutcome) {
        crate::delivery::probation_ended(&o);
    }

    /// The longest a blocking call without its own timeout waits: the
    /// engine's own deadline for an operation (3 × reply + upload) plus
    /// slack.
    pub fn op_backstop(&self) -> Duration {
        let (up, reply) = *lock(&self.trans_ms);
        Duration::from_millis(3 * u64::from(reply) + u64::from(up) + 5_000)
    }
}

/// The engine thread's state.
pub struct EngineCtx {
    svc: Arc<Service>,
    cfg: HostConfig,
    runtime: Option<EngineRuntime>,
    inst: Option<EngineInstance>,
    /// Why the engine cannot run (load failure), reported once.
    load_error: Option<String>,
    net: Option<NetClient>,
    /// The last successful `export-checkpoint` (or the state an update or
    /// rollback started the engine from).
    last_state: Option<Vec<u8>>,
    /// The running engine's last hand-over (`export-state`) before
    /// `last_state`: with it, a restart keeps the buffered media.
    restart_base: Option<Vec<u8>>,
    last_base: Instant,
    /// Frames the engine took since `last_state`: a restart feeds them
    /// again (the frame a trap interrupted is not among them). None: given
    /// up until the next export ([`REPLAY_MAX_BYTES`]).
    replay: Option<Vec<(u8, wt::Frame)>>,
    replay_bytes: usize,
    last_export: Instant,
    /// Something changed since the last export.
    dirty: bool,
    /// The current memory cap.
    mem_cap: usize,
    call_deadline: Duration,
    session: Option<Session>,
    next_session: u64,
    wake_at: Option<Instant>,
    /// `configure` succeeded once.
    configured: bool,
    /// A restart is under way (a trap while restarting does not recurse).
    restarting: bool,
    /// A firmware call's job is running (test hooks apply to those only).
    in_job: bool,
    /// Jobs so far that only fed the engine a frame ([`EngineCtx::fed_frame`]).
    frame_jobs: u64,
    /// `frame_jobs` at the last tick: frames flow while it moves.
    frames_at_tick: u64,
    /// When the last tick ran.
    last_tick: Instant,
    /// What the C layer knows of backups (blocking `iv_cs_upload_backup_video`).
    backups: Backups,
    /// The engine swapped in last, while it is on probation.
    probation: Option<Probation>,
    /// What the running engine reports of the cloud and its uploads
    /// (probation's baseline and signals).
    health: Health,
}

/// What the running engine reported lately: the baseline a swap compares
/// the next engine with.
#[derive(Default)]
struct Health {
    /// The engine said the cloud is unreachable (connect-fail, no recover
    /// since).
    link_down: bool,
    /// The engine said the cloud refuses the device's credentials, and no
    /// upload succeeded since.
    credentials_refused: bool,
    /// Outcomes of its last [`RECENT_UPLOADS`] upload slices (`true`: ok).
    recent_uploads: VecDeque<bool>,
    /// When probation last sampled the buffers.
    levels_at: Option<Instant>,
}

/// Upload slices remembered for the baseline.
const RECENT_UPLOADS: usize = 8;

/// How often probation samples the engine's buffers.
const LEVELS_EVERY: Duration = Duration::from_secs(1);

/// Longest a tick waits after jobs that only fed frames, and the period of
/// the engine thread's own wake-ups while frames flow (so pushes need not
/// wake it). 100 ms against 40 ms: 0.63-0.67 against 0.92-1.02 % of a core
/// per second of 1080p video (docs/design/libivcs.md, "Benchmarks").
const TICK_EVERY: Duration = Duration::from_millis(100);

/// Longest the engine thread sleeps with nothing planned.
const IDLE_WAIT: Duration = Duration::from_secs(60);

/// How many dumped files per channel the C layer remembers (the engine
/// remembers 200).
const DUMPS_REMEMBERED: usize = 256;

/// Ids of backup waiters in the [`OpTable`]: far from the engine's op ids.
const BACKUP_WAIT_BASE: u64 = 1 << 62;

/// The C layer's view of dumps and backups, so that `CS_UP_BK_END` can
/// block until the engine's upload-state slice for the file says how the
/// backup ended (docs/design/libivcs.md, "Backup upload blocks").
#[derive(Default)]
struct Backups {
    /// Per channel: (file name, start ms, end ms) of the last dumped files.
    dumped: HashMap<u8, VecDeque<(String, u64, u64)>>,
    /// Per channel: the backup in progress (file name, bytes accepted).
    current: HashMap<u8, (String, u64)>,
    /// Backups that ended (END accepted) and wait for their slice.
    waits: Vec<BackupWait>,
    next_wait: u64,
}

/// One `CS_UP_BK_END` waiting for its slice.
struct BackupWait {
    id: u64,
    channel: u8,
    /// `utc_sec_a`/`utc_sec_b` of the file, when its dump was seen.
    utc_s: Option<(u64, u64)>,
    /// The file's length (what firmware sent).
    total: u64,
}

/// How an engine call ended.
pub enum CallError {
    /// The engine trapped (bug, memory cap, deadline) and was restarted.
    Trapped {
        /// The memory cap refused a growth during the call.
        out_of_memory: bool,
    },
    /// No engine could be loaded.
    Unavailable,
}

impl CallError {
    /// The `IV_ERR_*` a C function answers.
    pub fn code(&self) -> i32 {
        match self {
            CallError::Trapped {
                out_of_memory: true,
            } => IV_ERR_CS_PRM_MALLOC_FAIL,
            _ => IV_ERR_CS_PRM_NOT_AVAILABLE,
        }
    }
}

impl EngineCtx {
    fn new(svc: Arc<Service>, cfg: HostConfig) -> EngineCtx {
        let call_deadline =
            Duration::from_millis(cfg.call_deadline_ms.unwrap_or(DEFAULT_CALL_DEADLINE_MS));
        EngineCtx {
            svc,
            cfg,
            runtime: None,
            inst: None,
            load_error: None,
            net: None,
            last_state: None,
            restart_base: None,
            last_base: Instant::now(),
            replay: Some(Vec::new()),
            replay_bytes: 0,
            last_export: Instant::now(),
            dirty: false,
            mem_cap: MEMORY_FIXED,
            call_deadline,
            session: None,
            next_session: 1,
            wake_at: None,
            configured: false,
            restarting: false,
            in_job: false,
            frame_jobs: 0,
            frames_at_tick: 0,
            last_tick: Instant::now(),
            backups: Backups::default(),
            probation: None,
            health: Health::default(),
        }
    }

    fn run(&mut self) {
        self.net = self.make_net();
        let _ = self.ensure_instance();
        loop {
            let seen = self.svc.wake.generation();
            let jobs: Vec<Job> = lock(&self.svc.jobs).jobs.drain(..).collect();
            // A tick right away unless every job only fed frames.
            let mut urgent = jobs.is_empty();
            for job in jobs {
                self.in_job = true;
                let frames = self.frame_jobs;
                // Our own bug in a job must not end the engine thread.
                let r = catch_unwind(AssertUnwindSafe(|| job(self)));
                self.in_job = false;
                urgent |= self.frame_jobs == frames;
                if r.is_err() {
                    log::error("internal error in a libivcs call (recovered)");
                }
            }
            if self.svc.stop.load(Ordering::SeqCst) {
                break;
            }
            // Frames are muxed and handed on by the tick; one tick per
            // frame (70 a second with audio) cost more in per-call overhead
            // than the frames, so after frames alone the tick waits up to
            // TICK_EVERY (firmware already has its answers).
            let now = Instant::now();
            let next = self.last_tick + TICK_EVERY;
            if urgent || now >= next || self.wake_at.is_some_and(|t| t <= now) {
                self.last_tick = now;
                if catch_unwind(AssertUnwindSafe(|| self.tick())).is_err() {
                    log::error("internal error in a libivcs tick (recovered)");
                }
                // While frames flow, wake every TICK_EVERY on our own so
                // that pushes need not wake us.
                if self.frame_jobs != self.frames_at_tick {
                    self.frames_at_tick = self.frame_jobs;
                    self.wake_by(Instant::now() + TICK_EVERY);
                }
            } else {
                self.wake_by(next);
            }
            let now = Instant::now();
            let until = self
                .wake_at
                .map_or(now + IDLE_WAIT, |t| t.min(now + IDLE_WAIT));
            {
                // Under the queue's lock, so a frame posted without a
                // wake-up is either seen here or covered by `until`.
                let mut q = lock(&self.svc.jobs);
                if !q.jobs.is_empty() {
                    continue;
                }
                q.wakes_soon = until <= now + TICK_EVERY;
            }
            self.svc.wake.wait(seen, until);
        }
        // Callers still waiting get None (-605) when their jobs are dropped.
        let left = {
            let mut q = lock(&self.svc.jobs);
            q.ended = true;
            std::mem::take(&mut q.jobs)
        };
        drop(left);
        // Dropping the instance cancels exchanges; dropping the client ends
        // the network thread.
        self.inst = None;
        self.net = None;
    }

    /// Wakes at `t` at the latest.
    fn wake_by(&mut self, t: Instant) {
        self.wake_at = Some(self.wake_at.map_or(t, |w| w.min(t)));
    }

    fn make_net(&self) -> Option<NetClient> {
        let url = self.cfg.cloud_url.as_ref()?;
        let mut nc = NetConfig::new(url.clone());
        nc.wake = self.svc.wake.clone();
        if let Some(ca) = &self.cfg.ca_file {
            nc = match nc.read_ca_file(std::path::Path::new(ca)) {
                Ok(nc) => nc,
                Err(e) => {
                    log::error(&format!("CA file: {e:#}; the cloud is unreachable"));
                    return None;
                }
            };
        }
        match NetClient::new(nc) {
            Ok(c) => Some(c),
            Err(e) => {
                log::error(&format!("cloud URL {url}: {e:#}; the cloud is unreachable"));
                None
            }
        }
    }

    fn load_runtime(&mut self) -> Result<(), String> {
        if self.runtime.is_some() {
            return Ok(());
        }
        let rt = match self.cfg.engine_file.clone() {
            Some(path) => match load_engine_file(&path) {
                Ok(rt) => {
                    self.resume_probation(&path);
                    rt
                }
                Err(e) => {
                    // A swap wrote this file and kept the one before it:
                    // what ran before the update is the last known good.
                    let good = crate::update::last_good_path(&path);
                    if !good.is_file() {
                        return Err(e);
                    }
                    log::error(&format!(
                        "{e}; starting the last known good engine {}",
                        good.display()
                    ));
                    load_engine_file(&good.to_string_lossy())?
                }
            },
            None => match crate::embedded::EMBEDDED {
                Some(bytes) => EngineRuntime::new(EngineSource::Precompiled(bytes))
                    .map_err(|e| format!("embedded engine: {e:#}"))?,
                None => {
                    return Err(
                        "this libivcs has no embedded engine: set IVCS_ENGINE or call \
                                ivcs_host_set_engine_file"
                            .to_string(),
                    );
                }
            },
        };
        self.svc.watchdog.set_engine(rt.wasmtime_engine().clone());
        self.runtime = Some(rt);
        Ok(())
    }

    /// At start: an update whose probation had not ended when the process
    /// stopped (reboot, power loss) is on probation again, with the last
    /// known good engine on disk to roll back to.
    fn resume_probation(&mut self, path: &str) {
        if self.probation.is_some() || !crate::update::on_probation(path) {
            return;
        }
        let good = crate::update::last_good_path(path);
        log::warn(&format!(
            "engine file {path}: its update had not passed probation; on probation again for {} s",
            PROBATION.as_secs()
        ));
        let window = lock(&self.svc.probation_window).unwrap_or(PROBATION);
        self.probation = Some(Probation::new(
            format!("engine file {path}"),
            Previous::OnDisk(good),
            Instant::now(),
            window,
            utc_now_s(),
            Baseline::default(),
            false,
        ));
    }

    /// A new instance of `rt` under the memory cap, with network and
    /// captures (not configured yet).
    fn new_instance(&self, rt: &EngineRuntime) -> anyhow::Result<EngineInstance> {
        let mut inst = rt.instantiate(self.mem_cap)?;
        inst.enable_captures();
        inst.set_network(self.net.clone());
        Ok(inst)
    }

    /// The device's credentials for `configure`, if both are set.
    fn device_config(&self) -> Option<wt::DeviceConfig> {
        let (id, secret) = (
            self.cfg.device_id.as_ref()?,
            self.cfg.device_secret.as_ref()?,
        );
        Some(wt::DeviceConfig {
            device_id: id.clone(),
            device_secret: secret.as_bytes().to_vec(),
        })
    }

    /// One call into an instance that does not serve yet, under the call
    /// deadline (a trap is the caller's to handle: there is nothing to
    /// restart).
    fn bounded<R>(
        &self,
        inst: &mut EngineInstance,
        f: impl FnOnce(&mut Store<HostState>, &World) -> wasmtime::Result<R>,
    ) -> wasmtime::Result<R> {
        let (store, world) = inst.parts();
        store.set_epoch_deadline(1);
        self.svc.watchdog.arm(Instant::now() + self.call_deadline);
        let r = f(store, world);
        self.svc.watchdog.disarm();
        r
    }

    /// A fresh instance with network, captures and credentials.
    fn fresh_instance(&mut self) -> Result<EngineInstance, String> {
        self.load_runtime()?;
        let rt = self.runtime.as_ref().ok_or("no runtime")?;
        let mut inst = self
            .new_instance(rt)
            .map_err(|e| format!("instantiating the engine: {e:#}"))?;
        if let Ok(v) = self.bounded(&mut inst, |s, w| {
            w.ivcs_engine_runtime().call_engine_version(s)
        }) {
            log::info(&format!("engine {v} started"));
        }
        if let Some(dc) = self.device_config() {
            match self.bounded(&mut inst, |s, w| w.ivcs_engine_cs().call_configure(s, &dc)) {
                Ok(Ok(())) => self.configured = true,
                Ok(Err(e)) => log::error(&format!(
                    "device {}: {} ({})",
                    dc.device_id, e.message, e.code
                )),
                Err(e) => return Err(format!("engine trapped in configure: {e:#}")),
            }
        } else if !self.configured {
            log::warn(
                "no device id/secret configured (IVCS_DEVICE_ID, IVCS_DEVICE_SECRET or \
                 ivcs_host_set_device_*): the cloud cannot be used",
            );
        }
        Ok(inst)
    }

    /// Makes sure an instance exists: loads, restores the last state.
    fn ensure_instance(&mut self) -> Result<(), CallError> {
        if self.inst.is_some() {
            return Ok(());
        }
        if self.load_error.is_some() {
            return Err(CallError::Unavailable);
        }
        match self.fresh_instance() {
            Ok(mut inst) => {
                if let Some(state) = self.last_state.clone() {
                    // The hand-over and the checkpoint after it; an engine
                    // that does not read the pair gets the checkpoint alone.
                    let base = self.restart_base.take();
                    let paired = base.is_some();
                    let point = match base {
                        Some(base) => [base.as_slice(), &state].concat(),
                        None => state,
                    };
                    let r = self.bounded(&mut inst, |s, w| {
                        w.ivcs_engine_runtime().call_import_state(s, &point)
                    });
                    match r {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) if paired => {
                            log::warn(&format!(
                                "the engine's restart point with its buffered media does not load ({} ({})); restoring the checkpoint alone",
                                e.message, e.code
                            ));
                            return self.ensure_instance();
                        }
                        other => {
                            let why = match other {
                                Ok(Err(e)) => format!("{} ({})", e.message, e.code),
                                Err(e) => format!("trap: {e:#}"),
                                Ok(Ok(())) => String::new(),
                            };
                            log::error(&format!(
                                "the engine's saved state does not load ({why}); starting clean"
                            ));
                            self.last_state = None;
                            self.forget_replay();
                            inst = match self.fresh_instance() {
                                Ok(i) => i,
                                Err(e) => return self.fail_load(e),
                            };
                            self.inst = Some(inst);
                            self.reinit_session();
                            return Ok(());
                        }
                    }
                }
                self.inst = Some(inst);
                self.replay_frames();
                Ok(())
            }
            Err(e) => self.fail_load(e),
        }
    }

    /// Feeds a restored engine the frames its predecessor took since the
    /// restart point, so a trap loses none of them.
    fn replay_frames(&mut self) {
        let frames = self.replay.replace(Vec::new()).unwrap_or_default();
        self.replay_bytes = 0;
        if frames.is_empty() {
            return;
        }
        let n = frames.len();
        for (channel, frame) in &frames {
            if self
                .engine(|s, w| w.ivcs_engine_cs().call_push(s, *channel, frame))
                .is_err()
            {
                break;
            }
        }
        log::info(&format!(
            "restart: {n} frame(s) taken since the restart point fed again"
        ));
        for (_, f) in frames {
            self.svc.frames.recycle(f.data);
        }
        // They are in no export yet.
        self.dirty = true;
        self.export();
    }

    /// Keeps a frame the engine took for [`EngineCtx::replay_frames`], or
    /// returns its buffer to the pool.
    pub fn took_frame(&mut self, channel: u8, frame: wt::Frame, taken: bool) {
        if !self.restart_media() {
            self.svc.frames.recycle(frame.data);
            return;
        }
        if self.replay_bytes.saturating_add(frame.data.len()) > REPLAY_MAX_BYTES {
            log::warn("restart point: frames since the last export no longer kept for a replay");
            self.drop_replay();
            self.replay = None;
        }
        match &mut self.replay {
            Some(r) if taken && self.inst.is_some() => {
                self.replay_bytes += frame.data.len();
                r.push((channel, frame));
            }
            _ => self.svc.frames.recycle(frame.data),
        }
    }

    /// Whether the restart point keeps the buffered media
    /// ([`crate::config::HostConfig::restart_media`], default on).
    fn restart_media(&self) -> bool {
        self.cfg.restart_media.unwrap_or(true)
    }

    /// The frames kept for a replay are in the state just exported.
    fn forget_replay(&mut self) {
        self.drop_replay();
        self.replay = Some(Vec::new());
    }

    fn drop_replay(&mut self) {
        for (_, f) in self.replay.take().unwrap_or_default() {
            self.svc.frames.recycle(f.data);
        }
        self.replay_bytes = 0;
    }

    fn fail_load(&mut self, e: String) -> Result<(), CallError> {
        log::error(&format!("the engine cannot run: {e}"));
        // A file that does not load will not load later either; a failed
        // instantiation (memory) may: only the former is remembered.
        if self.runtime.is_none() {
            self.load_error = Some(e);
        }
        Err(CallError::Unavailable)
    }

    /// After a clean restart: init again with the session's parameters, so
    /// firmware keeps its session.
    fn reinit_session(&mut self) {
        let Some(params) = self.session.as_ref().map(|s| s.params.clone()) else {
            return;
        };
        match self.engine(|s, w| w.ivcs_engine_cs().call_init(s, &params)) {
            Ok(Ok(())) => log::warn("engine restarted clean; session initialised again"),
            Ok(Err(e)) => log::error(&format!("re-init after restart: {}", e.message)),
            Err(_) => {}
        }
    }

    /// Calls into the engine under the call deadline. A trap restarts the
    /// engine from its last exported state.
    pub fn engine<R>(
        &mut self,
        f: impl FnOnce(&mut Store<HostState>, &World) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        self.ensure_instance()?;
        let hooks = self.in_job;
        let expire = hooks && self.svc.expire_next_call.swap(false, Ordering::SeqCst);
        let Some(inst) = self.inst.as_mut() else {
            return Err(CallError::Unavailable);
        };
        let refused_before = inst.host_state().refused_growths();
        let squeeze = hooks && self.svc.squeeze_next_call.swap(false, Ordering::SeqCst);
        if squeeze {
            let now = inst.host_state().memory_in_use();
            inst.host_state().set_memory_limit(now);
        }
        let (store, world) = inst.parts();
        store.set_epoch_deadline(if expire { 0 } else { 1 });
        let fired_before = self.svc.watchdog.fired();
        self.svc.watchdog.arm(Instant::now() + self.call_deadline);
        let r = f(store, world);
        self.svc.watchdog.disarm();
        if squeeze && let Some(inst) = self.inst.as_mut() {
            inst.host_state().set_memory_limit(self.mem_cap);
        }
        match r {
            Ok(v) => {
                self.collect_captures();
                Ok(v)
            }
            Err(e) => {
                let out_of_memory = inst_refused(&mut self.inst) > refused_before;
                // The watchdog fired during the call (or the test hook
                // expired it): the engine overran the call deadline.
                let overrun = expire || self.svc.watchdog.fired() > fired_before;
                let why = if out_of_memory {
                    format!(
                        "the engine ran out of its memory cap ({} bytes): {e:#}",
                        self.mem_cap
                    )
                } else if overrun {
                    format!(
                        "the engine overran the call deadline ({} ms): {e:#}",
                        self.call_deadline.as_millis()
                    )
                } else {
                    format!("{e:#}")
                };
                self.restart(&why, overrun);
                Err(CallError::Trapped { out_of_memory })
            }
        }
    }

    /// Replaces a trapped instance with one restored from the last state,
    /// and tells firmware (log, and `IV_CS_COS_SERVICE_WRONG` per channel).
    /// On probation the trap counts toward a rollback, which then restarts
    /// the previous engine instead of the failing one.
    fn restart(&mut self, why: &str, overrun: bool) {
        *lock(&self.svc.restarts) += 1;
        log::error(&format!(
            "engine trapped ({why}); restarting it from its last saved state"
        ));
        // Dropping the old store drops its pictures (their owners queue the
        // result callbacks) and aborts its exchanges.
        self.inst = None;
        if self.restarting {
            return;
        }
        self.notify_service_wrong();
        if let Some(p) = self.probation.as_mut() {
            p.trap(utc_now_s(), overrun);
            if let Verdict::Fail(reason) = p.verdict(Instant::now()) {
                // A trapped instance cannot export: the last saved state.
                self.rollback(reason, None, false);
                return;
            }
        }
        self.restarting = true;
        let started = self.ensure_instance();
        self.restarting = false;
        match started {
            Ok(()) => log::warn("engine restarted"),
            Err(_) if self.probation.is_some() => {
                let why = "instantiating, configuring or restoring it failed".to_string();
                self.rollback(RollbackReason::StartFailure { why }, None, false);
            }
            Err(_) => {}
        }
    }

    /// `IV_CS_COS_SERVICE_WRONG` to firmware on every channel: the engine
    /// was restarted or replaced.
    fn notify_service_wrong(&self) {
        if let Some(s) = &self.session
            && let Some(cb) = s.fw.iv_cs_notify_cb
        {
            for ch in s.params.channels.iter().map(|c| u32::from(c.channel)) {
                callbacks::post(Some(s.id), move || {
                    let mut info = abi::iv_cs_upload_info_s::default();
                    let mut data = abi::iv_cs_notify_msg_data {
                        av_result_info: &mut info,
                    };
                    // SAFETY: firmware's callback; both pointers live until it returns.
                    unsafe { cb(ch, IV_CS_COS_SERVICE_WRONG, &mut data) };
                });
            }
        }
    }

    /// Swaps the running engine for `next` (`ivcs_host_engine_update`).
    /// Runs as a job, so at a safe point: no engine call is in progress,
    /// and frames pushed meanwhile wait in the job queue. In order: a fresh
    /// `export-state` from the running engine; a new instance of `next`
    /// under the same memory cap, with network, captures and `configure`;
    /// `import-state` of that state. Only then are calls routed to the new
    /// instance (the old one is dropped, its exchanges cancelled). Any
    /// failure before that leaves the running engine untouched. The
    /// replaced engine stays loaded for [`PROBATION`]. Returns the engine
    /// file to persist the artifact to, if one is configured.
    pub fn swap(&mut self, next: EngineRuntime, label: String) -> Result<Option<String>, i32> {
        let t0 = Instant::now();
        // The running engine's state, as of now. No engine at all (a load
        // failure): the last state saved, if any.
        let state = if self.inst.is_some() || self.load_error.is_none() {
            // The hand-over copies the buffered bytes (at most the
            // channels' budgets, half of what the cap grants them) once:
            // room the leaving engine may take beyond its cap.
            let room = self.mem_cap.saturating_sub(MEMORY_FIXED) / 2 + (1 << 20);
            if let Some(inst) = self.inst.as_mut() {
                inst.host_state()
                    .set_memory_limit(self.mem_cap.saturating_add(room));
            }
            let r = self.engine(|s, w| w.ivcs_engine_runtime().call_export_state(s));
            if let Some(inst) = self.inst.as_mut() {
                inst.host_state().set_memory_limit(self.mem_cap);
            }
            match r {
                Ok(Ok(blob)) => Some(blob),
                Ok(Err(e)) => {
                    log::error(&format!(
                        "engine update refused: export-state: {} ({})",
                        e.message, e.code
                    ));
                    return Err(IV_ERR_CS_PRM_NOT_AVAILABLE);
                }
                Err(e) => {
                    log::error("engine update refused: the running engine trapped in export-state");
                    return Err(e.code());
                }
            }
        } else {
            self.last_state.clone()
        };
        let mut inst = match self.new_instance(&next) {
            Ok(i) => i,
            Err(e) => {
                log::error(&format!(
                    "engine update refused: instantiating {label}: {e:#}"
                ));
                return Err(IV_ERR_CS_PRM_MALLOC_FAIL);
            }
        };
        // From here the watchdog bounds the new engine's calls.
        self.svc.watchdog.set_engine(next.wasmtime_engine().clone());
        if let Err(why) = self.take_over(&mut inst, state.as_deref()) {
            if let Some(rt) = &self.runtime {
                self.svc.watchdog.set_engine(rt.wasmtime_engine().clone());
            }
            log::error(&format!(
                "engine update refused: {label}: {why}; the running engine goes on"
            ));
            return Err(IV_ERR_CS_PRM_NOT_AVAILABLE);
        }
        let baseline = self.baseline();
        // Route every later call to the new instance.
        let previous = self.runtime.replace(next);
        self.inst = Some(inst);
        self.load_error = None;
        // The restart point is the new engine's own export, not the
        // hand-over: a restart must not replay media whose uploads were
        // acknowledged since (they would be reported twice).
        self.restart_base = None;
        self.forget_replay();
        self.changed();
        self.wake_at = Some(Instant::now());
        let window = lock(&self.svc.probation_window).unwrap_or(PROBATION);
        log::warn(&format!(
            "engine updated to {label} in {} ms (engine thread paused that long); on probation \
             for {} s",
            t0.elapsed().as_millis(),
            window.as_secs()
        ));
        let previous = match previous {
            Some(rt) => Previous::Loaded(Box::new(rt)),
            None => Previous::Nothing,
        };
        // A probation that had not ended is over: its engine was replaced.
        if let Some(p) = self.probation.take() {
            log::warn(&format!("{} replaced while on probation", p.label));
        }
        self.health.recent_uploads.clear();
        self.health.credentials_refused = false;
        self.health.levels_at = None;
        self.probation = Some(Probation::new(
            label,
            previous,
            Instant::now(),
            window,
            utc_now_s(),
            baseline,
            self.health.link_down,
        ));
        Ok(self.cfg.engine_file.clone())
    }

    /// `configure` and `import-state` on a new instance, each bounded like
    /// any engine call.
    fn take_over(&self, inst: &mut EngineInstance, state: Option<&[u8]>) -> Result<(), String> {
        if let Some(dc) = self.device_config() {
            match self.bounded(inst, |s, w| w.ivcs_engine_cs().call_configure(s, &dc)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(format!("configure: {} ({})", e.message, e.code)),
                Err(e) => return Err(format!("trap in configure: {e:#}")),
            }
        }
        if let Some(state) = state {
            match self.bounded(inst, |s, w| {
                w.ivcs_engine_runtime().call_import_state(s, state)
            }) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(format!("import-state: {} ({})", e.message, e.code)),
                Err(e) => return Err(format!("trap in import-state: {e:#}")),
            }
        }
        Ok(())
    }

    /// What the running engine sees now, for the next one's probation:
    /// its buffers and whether its recent uploads failed.
    fn baseline(&mut self) -> Baseline {
        let mut b = Baseline::default();
        if self.inst.is_some()
            && let Ok(levels) = self.engine(|s, w| w.ivcs_engine_runtime().call_buffer_levels(s))
        {
            for l in levels {
                let pct = (l.backlog * 100).checked_div(l.budget).unwrap_or(0);
                b.backlog_percent.insert(l.channel, pct);
            }
        }
        let ok = self.health.recent_uploads.iter().filter(|o| **o).count();
        b.uploads_failing = self.health.recent_uploads.len() - ok > ok;
        b.credentials_refused = self.health.credentials_refused;
        b
    }

    /// Feeds probation what the engine reports of the cloud and uploads.
    fn watch_health(&mut self, n: &wt::Notify) {
        let now = Instant::now();
        match n.kind {
            wt::NotifyKind::ConnectFail | wt::NotifyKind::ConnectRecover => {
                let down = n.kind == wt::NotifyKind::ConnectFail;
                self.health.link_down = down;
                if let Some(p) = self.probation.as_mut() {
                    p.link(down);
                }
            }
            // From the engine (a restart's notify does not pass here): the
            // cloud answered 401.
            wt::NotifyKind::ServiceWrong => {
                self.health.credentials_refused = true;
                if let Some(p) = self.probation.as_mut() {
                    p.credentials_refused();
                }
            }
            wt::NotifyKind::UploadState => {
                for sl in &n.slices {
                    let ok = sl.state == wt::UploadState::Ok;
                    if ok {
                        self.health.credentials_refused = false;
                    }
                    let recent = &mut self.health.recent_uploads;
                    if recent.len() >= RECENT_UPLOADS {
                        recent.pop_front();
                    }
                    recent.push_back(ok);
                    if let Some(p) = self.probation.as_mut() {
                        p.upload(now, n.channel, sl.utc_start_s, ok);
                    }
                }
            }
            _ => {}
        }
    }

    /// While on probation (from a tick): samples the buffers, then acts on
    /// the verdict: a pass frees the previous engine, a failure rolls back
    /// to it from the failing engine's freshly exported state.
    fn watch_probation(&mut self) {
        if self.probation.is_none() {
            return;
        }
        let now = Instant::now();
        if self.inst.is_some()
            && self
                .health
                .levels_at
                .is_none_or(|t| now.saturating_duration_since(t) >= LEVELS_EVERY)
        {
            self.health.levels_at = Some(now);
            if let Ok(levels) = self.engine(|s, w| w.ivcs_engine_runtime().call_buffer_levels(s)) {
                let levels: Vec<(u8, u64, u64)> = levels
                    .iter()
                    .map(|l| (l.channel, l.backlog, l.budget))
                    .collect();
                if let Some(p) = self.probation.as_mut() {
                    p.levels(now, &levels);
                }
            }
        }
        let Some(p) = self.probation.as_ref() else {
            return;
        };
        match p.verdict(now) {
            Verdict::Continue => self.wake_by(now + LEVELS_EVERY),
            Verdict::Pass => {
                let Some(p) = self.probation.take() else {
                    return;
                };
                log::info(&format!("{} passed probation", p.label));
                if let Some(path) = &self.cfg.engine_file {
                    crate::update::end_probation(path);
                }
                self.svc
                    .record_outcome(ProbationOutcome::Passed { engine: p.label });
            }
            Verdict::Fail(reason) => {
                let state = match self.engine(|s, w| w.ivcs_engine_runtime().call_export_state(s)) {
                    Ok(Ok(blob)) => Some(blob),
                    _ => None,
                };
                // A trap in that export already restarted (or rolled back).
                if self.probation.is_some() {
                    self.rollback(reason, state, true);
                }
            }
        }
    }

    /// Ends a failed probation: the previous engine (still loaded, or from
    /// `FILE.last-good`) replaces the failing one, restored from `state`
    /// (the failing engine's fresh export) or else the last saved state;
    /// the last known good file becomes current again; firmware is told
    /// (`notify`: unless a restart just told it) and the outcome recorded.
    fn rollback(&mut self, reason: RollbackReason, state: Option<Vec<u8>>, notify: bool) {
        let Some(p) = self.probation.take() else {
            return;
        };
        let previous = match p.previous {
            Previous::Loaded(rt) => Ok(*rt),
            Previous::OnDisk(path) => load_engine_file(&path.to_string_lossy()),
            Previous::Nothing => Err("no engine ran before it".to_string()),
        };
        let previous = match previous {
            Ok(rt) => rt,
            Err(e) => {
                log::error(&format!(
                    "{} {reason} on probation, but cannot roll back ({e}): it stays",
                    p.label
                ));
                if self.inst.is_none() {
                    self.restarting = true;
                    let _ = self.ensure_instance();
                    self.restarting = false;
                }
                return;
            }
        };
        log::error(&format!(
            "{} {reason} on probation: rolling back to the previous engine",
            p.label
        ));
        let mut restored = RestoredFrom::LastSaved;
        if let Some(blob) = state {
            // A hand-over: all the media and every frame taken are in it.
            self.last_state = Some(blob);
            self.restart_base = None;
            self.forget_replay();
            restored = RestoredFrom::Exported;
        }
        self.svc
            .watchdog
            .set_engine(previous.wasmtime_engine().clone());
        self.runtime = Some(previous);
        // Held until the previous engine has imported the hand-over: the
        // uploads in flight it names go on over the same exchanges.
        let leaving = self.inst.take();
        self.load_error = None;
        self.health.recent_uploads.clear();
        self.health.credentials_refused = false;
        if let Some(path) = &self.cfg.engine_file {
            if let Err(e) = crate::update::restore_last_good(path) {
                log::error(&format!(
                    "rollback: cannot make the last known good engine current in {path}: {e}"
                ));
            }
            crate::update::end_probation(path);
        }
        if notify {
            self.notify_service_wrong();
        }
        if self.last_state.is_none() {
            restored = RestoredFrom::Clean;
        }
        self.restarting = true;
        let started = self.ensure_instance();
        self.restarting = false;
        drop(leaving);
        // A state the previous engine could not import was dropped.
        if self.last_state.is_none() {
            restored = RestoredFrom::Clean;
        }
        match started {
            Ok(()) => log::warn(&format!(
                "rolled back: the previous engine serves ({restored:?} state)"
            )),
            Err(_) => log::error("rolled back, but the previous engine does not start"),
        }
        self.dirty = true;
        self.wake_at = Some(Instant::now());
        self.svc.record_outcome(ProbationOutcome::RolledBack {
            engine: p.label,
            reason,
            restored,
        });
    }

    /// Whether an update is on probation (tests).
    pub fn on_probation(&self) -> bool {
        self.probation.is_some()
    }

    /// Exports the restart point: at most every [`BASE_EVERY`] a hand-over
    /// with the buffered media, and a checkpoint (the media since).
    fn export(&mut self) {
        if self.restart_media()
            && (self.restart_base.is_none() || self.last_base.elapsed() >= BASE_EVERY)
        {
            // The old copy goes first: one copy of the buffered media at a
            // time besides the engine's own (without one, a restart loses
            // the media, as a checkpoint alone does).
            self.restart_base = None;
            match self.engine(|s, w| w.ivcs_engine_runtime().call_export_state(s)) {
                Ok(Ok(blob)) => {
                    self.restart_base = Some(blob);
                    self.last_base = Instant::now();
                }
                Ok(Err(e)) => log::debug(&format!("restart point: export-state: {}", e.message)),
                Err(_) => return,
            }
        }
        let r = self.engine(|s, w| w.ivcs_engine_runtime().call_export_checkpoint(s));
        match r {
            Ok(Ok(blob)) => {
                self.last_state = Some(blob);
                self.dirty = false;
                self.last_export = Instant::now();
                self.forget_replay();
            }
            Ok(Err(e)) => log::warn(&format!("export-state: {}", e.message)),
            Err(_) => {}
        }
    }

    /// Marks the state changed by a control call; exports at once.
    pub fn changed(&mut self) {
        self.dirty = true;
        self.export();
    }

    /// Marks the state changed by a frame; exported with the next tick
    /// export.
    pub fn changed_lightly(&mut self) {
        self.dirty = true;
    }

    /// [`EngineCtx::changed_lightly`] for a job that only fed the engine a
    /// frame: it needs no tick of its own.
    pub fn fed_frame(&mut self) {
        self.changed_lightly();
        self.frame_jobs += 1;
    }

    fn tick(&mut self) {
        if self.inst.is_none() && self.load_error.is_some() {
            self.wake_at = None;
            return;
        }
        let r: Result<TickResult, CallError> =
            self.engine(|s, w| w.ivcs_engine_runtime().call_tick(s));
        let Ok(t) = r else {
            self.wake_at = Some(Instant::now() + Duration::from_millis(100));
            return;
        };
        self.wake_at = t.wake_at_ms.map(ivcs_host::imports::monotonic_instant);
        let eventful = !t.events.is_empty();
        // Before firmware hears of it (push_stream_start_cb), a change
        // must already show in what pushes are answered.
        self.publish_gates();
        self.dispatch(t.events);
        self.watch_probation();
        if eventful {
            self.dirty = true;
        }
        // Events change what firmware was told: save at once. Frames and
        // quiet ticks: at most once per EXPORT_EVERY.
        if eventful || (self.dirty && self.last_export.elapsed() >= EXPORT_EVERY) {
            self.export();
        }
    }

    /// Publishes the engine's push gate of every channel whose queued frames
    /// the engine has all seen ([`Admission::publish`]).
    pub fn publish_gates(&mut self) {
        let Some(chans) = self.session.as_ref().map(|s| {
            s.params
                .channels
                .iter()
                .map(|c| c.channel)
                .collect::<Vec<_>>()
        }) else {
            return;
        };
        for ch in chans {
            if !self.svc.admission.caught_up(ch) {
                continue;
            }
            if let Ok(g) = self.engine(|s, w| w.ivcs_engine_cs().call_push_gate_now(s, ch)) {
                self.svc.admission.publish(ch, g);
            }
        }
    }

    /// The shared half of the service.
    pub fn svc(&self) -> &Service {
        &self.svc
    }

    /// Sends captures the engine asked for to the callback thread.
    fn collect_captures(&mut self) {
        let Some(inst) = self.inst.as_mut() else {
            return;
        };
        let reqs = inst.host_state().take_capture_requests();
        for req in reqs {
            self.capture(req);
        }
    }

    fn capture(&mut self, req: CaptureRequest) {
        let Some(s) = &self.session else {
            self.fulfil(
                req,
                Err((IV_ERR_CS_PRM_NOT_AVAILABLE, "not initialised".into())),
            );
            return;
        };
        let Some(cb) = s.fw.iv_cs_event_capture_picture_cb else {
            self.fulfil(
                req,
                Err((IV_ERR_CS_PRM_NOT_AVAILABLE, "no capture callback".into())),
            );
            return;
        };
        let result_cb = s.fw.iv_cs_event_picture_result_cb;
        let svc = self.svc.clone();
        callbacks::post(Some(s.id), move || {
            let ch = u32::from(req.channel);
            let mut pic: *mut u8 = std::ptr::null_mut();
            let mut size: i32 = 0;
            // SAFETY: firmware's callback with valid out-pointers.
            let rc = unsafe { cb(ch, req.event_id, &mut pic, &mut size) };
            let answer = if pic.is_null() || size <= 0 {
                Err((
                    IV_ERR_CS_PRM_NOT_AVAILABLE,
                    format!(
                        "channel {ch} event {}: no picture (callback returned {rc})",
                        req.event_id
                    ),
                ))
            } else {
                // SAFETY: the spec: firmware keeps the picture until
                // picture_result_cb, which the owner's drop triggers.
                Ok(unsafe { crate::pictures::borrowed(pic, size as usize, ch, result_cb) })
            };
            svc.post(move |ctx| ctx.fulfil(req, answer));
        });
    }

    fn fulfil(&mut self, req: CaptureRequest, answer: Result<bytes::Bytes, (i32, String)>) {
        let answer = answer.map_err(|(code, message)| wt::EngineError { code, message });
        if let Some(inst) = self.inst.as_mut() {
            // Bytes the engine no longer wants are dropped here, which
            // releases the picture to firmware.
            drop(inst.host_state().fulfil_capture(&req, answer));
        }
    }

    /// Host events → firmware callbacks (callback thread), op completions
    /// (waiters), log lines.
    fn dispatch(&mut self, events: Vec<wt::HostEvent>) {
        for ev in events {
            self.watch_backups(&ev);
            if let wt::HostEvent::Notify(n) = &ev {
                self.watch_health(n);
            }
            if let wt::HostEvent::OpComplete(op) = ev {
                self.svc.ops.complete(op.id, op.outcome);
                continue;
            }
            if let wt::HostEvent::EngineOffer(offer) = ev {
                // Downloads on its own thread; returns at once.
                crate::delivery::offer(offer, &self.cfg);
                continue;
            }
            if let wt::HostEvent::Log(rec) = &ev {
                let level = match rec.level {
                    wt::LogLevel::Error => 0,
                    wt::LogLevel::Warn => 1,
                    wt::LogLevel::Info => 2,
                    wt::LogLevel::Debug => 3,
                    wt::LogLevel::Trace => 4,
                };
                log::log(level, &format!("engine: {}", rec.message));
                continue;
            }
            let Some(s) = &self.session else {
                continue;
            };
            crate::deliver::post(s, ev, &self.svc);
        }
    }

    /// Remembers dumped files and resolves backup waiters from upload-state
    /// slices: a slice of the waiter's channel with the file's UTC seconds
    /// (when its dump was seen) and its length.
    fn watch_backups(&mut self, ev: &wt::HostEvent) {
        let b = &mut self.backups;
        match ev {
            wt::HostEvent::DumpFile(d) if d.state == wt::DumpState::End => {
                let q = b.dumped.entry(d.channel).or_default();
                q.retain(|(n, _, _)| *n != d.file_name);
                if q.len() >= DUMPS_REMEMBERED {
                    q.pop_front();
                }
                q.push_back((d.file_name.clone(), d.start_ms, d.end_ms));
            }
            wt::HostEvent::Notify(n) if n.kind == wt::NotifyKind::UploadState => {
                for sl in &n.slices {
                    let hit = b.waits.iter().position(|w| {
                        w.channel == n.channel
                            && u64::from(sl.total_size) == w.total
                            && w.utc_s
                                .is_none_or(|(a, z)| sl.utc_start_s == a && sl.utc_end_s == z)
                    });
                    let Some(i) = hit else { continue };
                    let w = b.waits.remove(i);
                    let outcome = match sl.state {
                        wt::UploadState::Ok => wt::OpResult::Done,
                        wt::UploadState::Err => wt::OpResult::Failed(wt::EngineError {
                            code: IV_ERR_CS_HTTP_DATA_FAIL,
                            message: "the cloud did not take the backup".into(),
                        }),
                    };
                    self.svc.ops.complete(w.id, outcome);
                }
            }
            _ => {}
        }
    }

    /// Notes a backup call the engine accepted. After `End`, returns the id
    /// of a registered waiter for the file's upload-state slice.
    pub fn backup_accepted(
        &mut self,
        channel: u8,
        state: wt::DumpState,
        file: &str,
        len: usize,
    ) -> Option<u64> {
        let b = &mut self.backups;
        match state {
            wt::DumpState::Start => {
                b.current.insert(channel, (file.to_string(), 0));
                None
            }
            wt::DumpState::Running => {
                if let Some((name, n)) = b.current.get_mut(&channel)
                    && name == file
                {
                    *n += len as u64;
                }
                None
            }
            wt::DumpState::End => {
                let (_, total) = b.current.remove(&channel)?;
                let utc_s = b.dumped.get(&channel).and_then(|q| {
                    q.iter()
                        .find(|(n, _, _)| n == file)
                        .map(|(_, s, e)| (s / 1000, e / 1000))
                });
                let id = BACKUP_WAIT_BASE + b.next_wait;
                b.next_wait += 1;
                // One waiter per channel: an older one is abandoned.
                b.waits.retain(|w| w.channel != channel);
                b.waits.push(BackupWait {
                    id,
                    channel,
                    utc_s,
                    total,
                });
                self.svc.ops.register(id);
                Some(id)
            }
        }
    }

    /// Forgets a backup (a refused call: firmware starts it again).
    pub fn backup_refused(&mut self, channel: u8) {
        self.backups.current.remove(&channel);
    }

    /// The session, if initialised.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// Starts a session: raises the memory cap for its channels, then calls
    /// the engine's `init`.
    pub fn init(
        &mut self,
        params: wt::InitParams,
        fw: abi::iv_cs_init_func_cb_s,
    ) -> Result<Result<(), wt::EngineError>, CallError> {
        let cap = memory_cap(&params);
        let old_cap = self.mem_cap;
        self.set_mem_cap(cap.max(old_cap));
        let r = self.engine(|s, w| w.ivcs_engine_cs().call_init(s, &params));
        match &r {
            Ok(Ok(())) => {
                let id = self.next_session;
                self.next_session += 1;
                let chans: Vec<_> = params
                    .channels
                    .iter()
                    .map(|c| (c.channel, video_codec(c.av.video), c.max_gop_size))
                    .collect();
                self.svc.admission.open(&chans);
                self.session = Some(Session { id, fw, params });
                self.svc.initialised.store(true, Ordering::SeqCst);
                let in_use = self.memory_in_use();
                log::info(&format!(
                    "initialised; engine memory cap {} bytes ({in_use} in use)",
                    self.mem_cap
                ));
                self.changed();
            }
            _ => self.set_mem_cap(old_cap),
        }
        r
    }

    /// Ends the session: the engine's `exit` (the open segments close, what
    /// is pending goes on uploading in the engine), and a tick whose events
    /// (the closed segments' last dump chunks) still go to the session's
    /// callbacks. Returns the session's id: the caller waits for those
    /// callbacks ([`callbacks::finish_session`]); after that firmware hears
    /// nothing more of the session except picture releases.
    pub fn exit(&mut self) -> Result<Result<Option<u64>, wt::EngineError>, CallError> {
        let r = self.engine(|s, w| w.ivcs_engine_cs().call_exit(s));
        let Ok(Ok(())) = r else {
            return r.map(|r| r.map(|()| None));
        };
        self.svc.admission.close();
        self.forget_replay();
        self.svc.frames.clear();
        self.svc.initialised.store(false, Ordering::SeqCst);
        self.tick();
        let id = self.session.take().map(|s| s.id);
        self.changed();
        Ok(Ok(id))
    }

    /// New connection settings (cloud URL, device, CA) while no session
    /// runs: a new network client and `configure`.
    pub fn reconfigure(&mut self, cfg: HostConfig) -> Result<(), i32> {
        if self.session.is_some() {
            return Err(IV_ERR_CS_INIT_REPEAT);
        }
        self.cfg.cloud_url = cfg.cloud_url;
        self.cfg.device_id = cfg.device_id;
        self.cfg.device_secret = cfg.device_secret;
        self.cfg.ca_file = cfg.ca_file;
        self.net = self.make_net();
        let net = self.net.clone();
        if let Some(inst) = self.inst.as_mut() {
            inst.set_network(net);
        }
        let Some(dc) = self.device_config() else {
            return Ok(());
        };
        let r = self.engine(|s, w| w.ivcs_engine_cs().call_configure(s, &dc));
        self.changed();
        match r {
            Ok(Ok(())) => {
                self.configured = true;
                Ok(())
            }
            Ok(Err(e)) => Err(e.code),
            Err(e) => Err(e.code()),
        }
    }

    fn set_mem_cap(&mut self, cap: usize) {
        self.mem_cap = cap;
        if let Some(inst) = self.inst.as_mut() {
            inst.host_state().set_memory_limit(cap);
        }
    }

    /// The current memory cap (tests, logs).
    pub fn mem_cap(&self) -> usize {
        self.mem_cap
    }

    /// Bytes of linear memory the engine holds.
    pub fn memory_in_use(&mut self) -> usize {
        self.inst
            .as_mut()
            .map(|i| i.host_state().memory_in_use())
            .unwrap_or(0)
    }

    /// Registers a waiter for op `id` (call in the job that got the id).
    pub fn register_op(&self, id: u64) {
        self.svc.ops.register(id);
    }

    /// Adds a picture resource to the current instance.
    pub fn add_picture(
        &mut self,
        bytes: bytes::Bytes,
    ) -> Result<wasmtime::component::Resource<ivcs_host::imports::PictureData>, CallError> {
        self.ensure_instance()?;
        let inst = self.inst.as_mut().ok_or(CallError::Unavailable)?;
        inst.host_state()
            .add_picture(bytes)
            .map_err(|_| CallError::Trapped {
                out_of_memory: true,
            })
    }
}

/// Loads an engine file: a signed artifact (checked against the engine
/// keys, as an update is) or a bare `.cwasm` / `.wasm` (trusted as given).
fn load_engine_file(path: &str) -> Result<EngineRuntime, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("engine file {path}: {e}"))?;
    if bytes.starts_with(ivcs_host::artifact::MAGIC_PREFIX) {
        return crate::update::prepare(bytes, path)
            .map(|p| p.runtime)
            .map_err(|e| format!("engine file {path}: refused ({}): {}", e.code, e.message));
    }
    let source = if bytes.starts_with(b"\0asm") {
        EngineSource::Wasm(&bytes)
    } else {
        EngineSource::Precompiled(&bytes)
    };
    EngineRuntime::new(source).map_err(|e| format!("engine file {path}: {e:#}"))
}

/// Seconds since 1970 UTC, now.
fn utc_now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn video_codec(c: wt::VideoCodec) -> ivcs_media::VideoCodec {
    match c {
        wt::VideoCodec::H264 => ivcs_media::VideoCodec::H264,
        wt::VideoCodec::H265 => ivcs_media::VideoCodec::H265,
    }
}

fn inst_refused(inst: &mut Option<EngineInstance>) -> u64 {
    inst.as_mut()
        .map(|i| i.host_state().refused_growths())
        .unwrap_or(0)
}
