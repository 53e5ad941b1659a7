//! Harness for the control-plane tests: the real `ivcs-cloud` service
//! (`server::router` over real SQLite and the local object store) on a
//! tokio runtime bound to 127.0.0.1, an engine whose [`TestHost`] forwards
//! exchanges to it over loopback HTTP, and virtual time shared by both (the
//! engine's clocks live in the host, the cloud reads a clock file).
//!
//! Nothing sleeps: [`World::run_until`] ticks the engine and waits on the
//! host's progress signal (with a wall-clock deadline) until a condition
//! holds; time moves only when a test calls [`World::advance`].

#![allow(dead_code)]

pub mod host;
pub mod http;

use host::TestHost;
use ivcs_cloud::app::App;
use ivcs_cloud::config::Config;
use ivcs_engine::Engine;
use ivcs_engine::cs::params::{
    ChannelParams, Congestion, DeviceConfig, EventReportOpt, InitParams, OptionalCallbacks,
};
use ivcs_engine::events::{HostEvent, OpId, OpResult};
use ivcs_engine::types::{AudioCodec, AudioFormat, AvFormat, Container, VideoCodec};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Virtual UTC at the start of every test: 2023-11-14T22:13:20Z.
pub const T0_MS: u64 = 1_700_000_000_000;

/// Longest real time a condition may take (the exchanges are local).
const REAL_DEADLINE: Duration = Duration::from_secs(30);

/// The cloud service in-process. `stop` kills it hard (the runtime with
/// every connection), `start` brings it back on the same port.
pub struct CloudServer {
    rt: Option<tokio::runtime::Runtime>,
    /// The running service's state (repo, feed, clock).
    pub app: Arc<App>,
    /// Where it listens.
    pub addr: SocketAddr,
    cfg: Config,
    /// Apps of stopped runtimes, kept so their pools drop at the end.
    old: Vec<(tokio::runtime::Runtime, Arc<App>)>,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

impl CloudServer {
    /// Starts a service on a fresh data directory with its clock file.
    pub fn start(data: PathBuf, clock_file: PathBuf) -> CloudServer {
        let cfg = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data,
            fsync: false,
            min_free_bytes: 0,
            clock_file: Some(clock_file),
            ..Config::default()
        };
        let (rt, app, addr) = Self::launch(&cfg, cfg.listen);
        CloudServer {
            rt: Some(rt),
            app,
            addr,
            cfg,
            old: Vec::new(),
        }
    }

    fn launch(cfg: &Config, addr: SocketAddr) -> (tokio::runtime::Runtime, Arc<App>, SocketAddr) {
        let rt = runtime();
        let app = rt.block_on(App::open(cfg.clone())).unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(addr))
            .unwrap_or_else(|e| panic!("binding {addr}: {e}"));
        let addr = listener.local_addr().unwrap();
        let router = ivcs_cloud::server::router(app.clone());
        rt.spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        (rt, app, addr)
    }

    /// Kills the service and every connection it holds.
    pub fn stop(&mut self) {
        if let Some(rt) = self.rt.take() {
            // Keep the runtime object: dropping it here would block on
            // nothing, but shutting it down is what closes the sockets.
            rt.shutdown_background();
        }
    }

    /// Starts it again on the same port and data directory.
    pub fn restart(&mut self) {
        self.stop();
        let (rt, app, _) = Self::launch(&self.cfg, self.addr);
        let old_app = std::mem::replace(&mut self.app, app);
        self.rt = Some(rt);
        self.old.push((runtime(), old_app));
    }

    /// Runs a future of the service (repo calls) to completion.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        match &self.rt {
            Some(rt) => rt.block_on(f),
            None => runtime().block_on(f),
        }
    }
}

/// A JPEG-looking picture: SOI marker, then filler.
pub fn jpeg(len: usize) -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0];
    v.resize(len.max(4), 0x42);
    v
}

/// Channel parameters that pass `init`'s checks.
pub fn channel(ch: u8) -> ChannelParams {
    ChannelParams {
        channel: ch,
        max_gop_size: 800 * 1024,
        congestion: Congestion {
            enable: true,
            low_mark: 80 * 1024,
            warn_mark: 320 * 1024,
            high_mark: 640 * 1024,
        },
        av: AvFormat {
            video: VideoCodec::H264,
            width: 1280,
            height: 720,
            framerate: 25,
            audio: Some(AudioFormat {
                codec: AudioCodec::Aac,
                sample_rate: 16000,
                channels: 1,
                samples_per_frame: 1024,
            }),
        },
        container: Container::Ts,
        event_report_opt: EventReportOpt::VideoRequired,
    }
}

/// `init` parameters for `channels` with every optional callback present.
pub fn init_params(channels: &[u8]) -> InitParams {
    InitParams {
        channels: channels.iter().map(|c| channel(*c)).collect(),
        callbacks: OptionalCallbacks {
            ai_service_notify: true,
            capture_picture: true,
            picture_result: true,
            event_report_result: true,
            notify: true,
            get_balance: false,
            dump_file: false,
        },
    }
}

/// One test's world: a cloud, a registered device, an engine configured as
/// that device, virtual time, and every host event seen.
pub struct World {
    /// The engine under test.
    pub engine: Engine<TestHost>,
    /// The cloud.
    pub cloud: CloudServer,
    /// Device id.
    pub device: String,
    /// Its secret.
    pub secret: String,
    /// An app token for the app API.
    pub token: String,
    /// Every host event returned so far, in order.
    pub events: Vec<HostEvent>,
    clock_file: PathBuf,
    /// Device clock minus cloud clock, ms ([`World::step_device_clock`]).
    device_skew_ms: i64,
    dir: PathBuf,
}

impl World {
    /// A world named `name` (its scratch directory).
    pub fn new(name: &str) -> World {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("control-plane")
            .join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let clock_file = dir.join("clock");
        std::fs::write(&clock_file, T0_MS.to_string()).unwrap();
        let cloud = CloudServer::start(dir.join("data"), clock_file.clone());
        let device = format!("cam-{name}");
        let secret = ivcs_cloud::auth::random_secret();
        let token = ivcs_cloud::auth::random_secret();
        cloud
            .block_on(cloud.app.repo.add_device(&device, &secret, T0_MS))
            .unwrap();
        cloud
            .block_on(cloud.app.repo.add_token(
                &ivcs_cloud::auth::sha256_hex(token.as_bytes()),
                "test",
                T0_MS,
            ))
            .unwrap();
        let mut engine = Engine::new(TestHost::new(cloud.addr, T0_MS));
        engine
            .configure(DeviceConfig {
                device_id: device.clone(),
                device_secret: secret.as_bytes().to_vec(),
            })
            .unwrap();
        World {
            engine,
            cloud,
            device,
            secret,
            token,
            events: Vec::new(),
            clock_file,
            device_skew_ms: 0,
            dir,
        }
    }

    /// Scratch directory of this world.
    pub fn dir(&self) -> &PathBuf {
        &self.dir
    }

    /// Virtual UTC now.
    pub fn now_ms(&self) -> u64 {
        self.engine.host().utc_ms
    }

    /// Moves both clocks (engine and cloud) forward by `ms`.
    pub fn advance(&mut self, ms: u64) {
        let h = self.engine.host_mut();
        h.utc_ms += ms;
        h.mono_ms += ms;
        let now = h.utc_ms.saturating_add_signed(-self.device_skew_ms);
        // Atomically: the cloud reads the file concurrently, and a reader
        // that sees it truncated falls back to the system clock.
        let tmp = self.clock_file.with_extension("tmp");
        std::fs::write(&tmp, now.to_string()).unwrap();
        std::fs::rename(&tmp, &self.clock_file).unwrap();
    }

    /// Steps the device's wall clock by `ms` (NTP, an RTC restored); the
    /// cloud's clock and monotonic time go on unchanged.
    pub fn step_device_clock(&mut self, ms: i64) {
        let h = self.engine.host_mut();
        h.utc_ms = h.utc_ms.saturating_add_signed(ms);
        self.device_skew_ms += ms;
    }

    /// One tick; its events are recorded and returned.
    pub fn tick(&mut self) -> Vec<HostEvent> {
        let r = self.engine.tick();
        self.events.extend(r.events.iter().cloned());
        r.events
    }

    /// Ticks until an event matching `cond` has been seen (now or
    /// earlier); returns the first such event.
    pub fn run_until(&mut self, what: &str, mut cond: impl FnMut(&HostEvent) -> bool) -> HostEvent {
        self.run_until_state(what, |w| w.events.iter().any(&mut cond));
        self.events.iter().find(|e| cond(e)).cloned().unwrap()
    }

    /// Ticks until `cond(self)` holds (real-time deadline; no virtual time
    /// passes).
    pub fn run_until_state(&mut self, what: &str, mut cond: impl FnMut(&mut World) -> bool) {
        let deadline = Instant::now() + REAL_DEADLINE;
        loop {
            let seen = self.engine.host().wake.count();
            self.tick();
            if cond(self) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; events: {:#?}",
                self.events
            );
            self.engine
                .host()
                .wake
                .wait(seen, Duration::from_millis(50));
        }
    }

    /// Like [`World::run_until`] for events from now on, but moves virtual
    /// time forward by up to `step_ms` whenever the network is quiet, for
    /// at most `budget_ms` of virtual time.
    pub fn run_advancing(
        &mut self,
        what: &str,
        step_ms: u64,
        budget_ms: u64,
        mut cond: impl FnMut(&HostEvent) -> bool,
    ) -> HostEvent {
        let from = self.events.len();
        let start = self.now_ms();
        let deadline = Instant::now() + REAL_DEADLINE;
        loop {
            let seen = self.engine.host().wake.count();
            let r = self.engine.tick();
            self.events.extend(r.events.iter().cloned());
            if let Some(e) = self.events[from..].iter().find(|e| cond(e)) {
                return e.clone();
            }
            assert!(
                self.now_ms() - start <= budget_ms && Instant::now() < deadline,
                "no {what} within {budget_ms} ms of virtual time; events: {:#?}",
                self.events
            );
            // Let the network answer first, then move time.
            self.engine
                .host()
                .wake
                .wait(seen, Duration::from_millis(20));
            if self.engine.host().wake.count() == seen {
                let mono = self.engine.host().mono_ms;
                let step = match r.wake_at_ms {
                    Some(w) if w > mono => (w - mono).min(step_ms),
                    _ => step_ms,
                };
                self.advance(step);
            }
        }
    }

    /// Lets `total_ms` of virtual time pass in steps of `step_ms`, ticking
    /// and letting the network answer at every step.
    pub fn pass(&mut self, total_ms: u64, step_ms: u64) {
        let end = self.now_ms() + total_ms;
        while self.now_ms() < end {
            let seen = self.engine.host().wake.count();
            self.tick();
            self.engine
                .host()
                .wake
                .wait(seen, Duration::from_millis(20));
            self.tick();
            let step = step_ms.min(end - self.now_ms());
            self.advance(step);
        }
        self.tick();
    }

    /// Ticks without moving time until the network has been quiet for
    /// `quiet` (real time): what is in flight has been answered.
    pub fn settle(&mut self, quiet: Duration) {
        let deadline = Instant::now() + REAL_DEADLINE;
        loop {
            let seen = self.engine.host().wake.count();
            self.tick();
            self.engine.host().wake.wait(seen, quiet);
            if self.engine.host().wake.count() == seen || Instant::now() > deadline {
                return;
            }
        }
    }

    /// Ticks until operation `id` completes; returns its outcome.
    pub fn wait_op(&mut self, id: OpId) -> OpResult {
        match self.run_until(
            &format!("operation {id}"),
            |e| matches!(e, HostEvent::OpComplete(o) if o.id == id),
        ) {
            HostEvent::OpComplete(o) => o.outcome,
            _ => unreachable!(),
        }
    }

    /// Number of recorded events matching `f`.
    pub fn count(&self, f: impl Fn(&HostEvent) -> bool) -> usize {
        self.events.iter().filter(|e| f(e)).count()
    }

    /// Sets a plan as an operator would (repository + change publication).
    pub fn set_plan(&self, channel: Option<u32>, kind: &str, expires_ms: Option<u64>) {
        use ivcs_cloud::model::{Plan, PlanType};
        use std::str::FromStr;
        let kind = PlanType::from_str(kind).unwrap();
        let p = Plan {
            kind,
            days: 7,
            trial_ms: if kind == PlanType::Trial {
                3_600_000
            } else {
                0
            },
            trial_used_ms: 0,
            expires_ms,
            replaced: None,
        };
        let app = &self.cloud.app;
        self.cloud
            .block_on(app.repo.set_plan(&self.device, channel, &p, self.now_ms()))
            .unwrap();
        self.cloud.block_on(app.changed(&self.device)).unwrap();
    }

    /// An app-API request with the bearer token; returns status and JSON.
    pub fn app_api(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        let auth = format!("Bearer {}", self.token);
        let (status, body) = http::request(
            self.cloud.addr,
            method,
            path,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            body.as_bytes(),
        );
        let v = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        (status, v)
    }
}
