//! host-sim: the engine component and the real cloud service in virtual
//! time, with simulated cameras, networks and clocks and seeded faults
//! (`ivcs sim`). docs/design/simulation.md explains the design,
//! docs/guide/scenarios.md the scenario files.
//!
//! - [`scenario`]: the TOML scenario model and its checks.
//! - [`faults`]: random faults from the seed; faults as timed actions.
//! - [`floor`]: the speed floor: the same frames through the muxer alone.
//! - [`media_gen`]: synthetic H.264/AAC with real parameter sets and a tag
//!   per frame.
//! - [`clock`]: true time and the cameras' (drifting, stepping) clocks.
//! - [`net`]: the camera side of the simulated network (turmoil TCP,
//!   hyper, an uplink shaper) under the host's real exchange code.
//! - [`cloud`]: the real cloud on its own thread behind a front end on the
//!   simulated network.
//! - [`camera`]: firmware and the engine host of one camera.
//! - [`sdcard`]: firmware's SD card: dumped segments and their backup.
//! - [`check`]: the invariants.
//! - [`trace`]: the JSONL trace and its digest.
//!
//! One run ([`run`]) is single-threaded and seeded: turmoil steps every
//! host in a fixed order, the cloud answers in zero virtual time on its own
//! thread while the simulation waits, and nothing reads the wall clock.

pub mod camera;
pub mod check;
pub mod clock;
pub mod cloud;
pub mod faults;
pub mod floor;
pub mod media_gen;
pub mod net;
pub mod scenario;
pub mod sdcard;
pub mod trace;

use anyhow::{Context, Result};
use camera::CamShared;
use cloud::{CloudWorker, Front};
use faults::Action;
use ivcs_cloud::model::{Plan, PlanType};
use scenario::Scenario;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;
use trace::Trace;

/// Virtual time per simulation step.
const STEP_MS: u64 = 5;
/// After the scenario's end, faults are lifted and uploads get this long to
/// finish before the checks (frames pushed after the end are not checked).
const DRAIN_MS: u64 = 180_000;

/// The result of one run.
#[derive(Debug)]
pub struct Outcome {
    /// Scenario name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// Cameras x simulated hours.
    pub camera_hours: f64,
    /// Faults applied.
    pub faults: usize,
    /// Segments the cloud stored.
    pub segments: u64,
    /// Failed segments recovered through backup.
    pub recovered: u64,
    /// Video lost: frames the engine took that the cloud lacks, in seconds.
    pub lost_s: f64,
    /// Largest backlog (bytes waiting for the network) against the
    /// budget, %.
    pub max_buffer_pct: f64,
    /// Highest watermark notified (none, low, warn, high).
    pub max_watermark: &'static str,
    /// Broken invariants (empty: pass).
    pub violations: Vec<String>,
    /// Lines in the trace.
    pub trace_lines: u64,
    /// Digest of the trace (same seed, same digest).
    pub trace_digest: String,
}

/// Runs `scn` with `seed`; writes the trace to `trace_file` when given.
pub fn run(
    scn: &Scenario,
    seed: u64,
    rt: Rc<ivcs_host::EngineRuntime>,
    trace_file: Option<std::fs::File>,
) -> Result<Outcome> {
    let scn = faults::resolve(scn, seed);
    let trace = Trace::new(trace_file);
    let worker = CloudWorker::start(scn.cloud.backup_window_s)?;
    let cams: Vec<Rc<CamShared>> = (0..scn.cameras)
        .map(|idx| {
            let link = net::Link::new(seed ^ u64::from(idx).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            link.set_kbps(uplink(&scn));
            Rc::new(CamShared {
                idx,
                device_id: format!("sim-cam-{idx}"),
                secret: format!("sim-secret-{seed}-{idx}"),
                spec: scn.camera.clone(),
                link,
                clock: RefCell::new(None),
                clock_offset_ms: Cell::new(0),
                flash: RefCell::new(None),
                trap_next: Cell::new(false),
                swap_next: Cell::new(false),
                privacy_until: Cell::new(None),
                next_seq: Cell::new((0, 0)),
                sd: RefCell::new(sdcard::SdCard::new(scn.camera.backup_kbps)),
                cloud_up: Cell::new(true),
                stats: RefCell::default(),
                trace: trace.clone(),
            })
        })
        .collect();
    for cam in &cams {
        provision(&worker, cam, &scn.camera.plan, scn.camera.trial_s)?;
    }
    let front = Rc::new(Front {
        worker,
        fail_status: Cell::new(0),
        trace: trace.clone(),
    });

    let end_ms = scn.duration_s * 1000;
    let latency = Duration::from_millis(scn.network.latency_ms);
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .tick_duration(Duration::from_millis(STEP_MS))
        .simulation_duration(Duration::from_millis(end_ms + DRAIN_MS + 60_000))
        .min_message_latency(latency)
        .max_message_latency(latency)
        // turmoil panics when a socket's queue overflows; held packets are
        // all released at once after an outage.
        .tcp_capacity(1 << 16)
        .build();
    let f2 = front.clone();
    sim.host(cloud::HOST, move || cloud::serve(f2.clone()));
    for cam in &cams {
        let (c, r) = (cam.clone(), rt.clone());
        sim.host(name(cam.idx), move || {
            camera::run(c.clone(), r.clone(), end_ms + DRAIN_MS)
        });
    }

    let mut actions = faults::actions(&scn).into_iter().peekable();
    let mut now = 0;
    while now < end_ms + DRAIN_MS {
        trace.set_driver_ms(now);
        while let Some((_, a)) = actions.next_if(|(t, _)| *t <= now) {
            apply(&mut sim, &front, &cams, &scn, a)?;
        }
        if now == end_ms {
            lift_all(&mut sim, &front, &cams, &scn)?;
        }
        sim.step()
            .map_err(|e| anyhow::anyhow!("simulation failed: {e}"))?;
        now = clock_now(&sim);
    }
    drop(sim);

    let findings = check::check(&scn, &cams, &front.worker, end_ms)?;
    let (trace_lines, trace_digest) = trace.finish().context("writing the trace")?;
    let mut max_buffer_pct: f64 = 0.0;
    let mut wm = 0;
    for c in &cams {
        let s = c.stats.borrow();
        max_buffer_pct = max_buffer_pct.max(s.backlog_max_pct);
        wm = wm.max(s.watermark_max);
    }
    Ok(Outcome {
        scenario: scn.name.clone(),
        seed,
        camera_hours: f64::from(scn.cameras) * scn.duration_s as f64 / 3600.0,
        faults: scn.faults.len(),
        segments: findings.segments,
        recovered: findings.recovered,
        lost_s: findings.lost_frames as f64 / f64::from(scn.camera.fps),
        max_buffer_pct,
        max_watermark: ["none", "low", "warn", "high"][usize::from(wm.min(3))],
        violations: findings.violations,
        trace_lines,
        trace_digest,
    })
}

fn name(idx: u32) -> String {
    format!("cam{idx}")
}

fn uplink(scn: &Scenario) -> Option<u32> {
    (scn.network.uplink_kbps > 0).then_some(scn.network.uplink_kbps)
}

fn plan_of(kind: &str, trial_s: u64) -> Plan {
    let kind = match kind {
        "full-time" => PlanType::FullTime,
        "event" => PlanType::Event,
        "trial" => PlanType::Trial,
        _ => PlanType::None,
    };
    Plan {
        kind,
        days: 7,
        trial_ms: trial_s * 1000,
        trial_used_ms: 0,
        expires_ms: None,
        replaced: None,
    }
}

fn provision(worker: &CloudWorker, cam: &CamShared, plan: &str, trial_s: u64) -> Result<()> {
    let (id, secret) = (cam.device_id.clone(), cam.secret.clone());
    let plan = plan_of(plan, trial_s);
    worker.set_now(clock::EPOCH_MS);
    worker.admin(move |app| async move {
        app.repo.add_device(&id, &secret, app.now_ms()).await?;
        app.repo.set_plan(&id, None, &plan, app.now_ms()).await?;
        app.changed(&id).await?;
        Ok(())
    })
}

/// The cameras an action is for.
fn targets(cams: &[Rc<CamShared>], which: Option<u32>) -> impl Iterator<Item = &Rc<CamShared>> {
    cams.iter()
        .filter(move |c| which.is_none_or(|w| w == c.idx))
}

fn apply(
    sim: &mut turmoil::Sim<'_>,
    front: &Front,
    cams: &[Rc<CamShared>],
    scn: &Scenario,
    a: Action,
) -> Result<()> {
    front.trace.event("driver", "fault", &format!("{a:?}"));
    match a {
        Action::Hold(which, on) => {
            for c in targets(cams, which) {
                if on {
                    sim.hold(name(c.idx), cloud::HOST);
                } else {
                    sim.release(name(c.idx), cloud::HOST);
                }
            }
        }
        Action::Latency(which, ms) => {
            for c in targets(cams, which) {
                sim.set_link_latency(name(c.idx), cloud::HOST, Duration::from_millis(ms));
            }
        }
        Action::Uplink(which, kbps) => {
            for c in targets(cams, which) {
                c.link.set_kbps(kbps.or(uplink(scn)));
            }
        }
        Action::Loss(which, pct) => {
            for c in targets(cams, which) {
                c.link.set_loss(pct);
            }
        }
        Action::CloudStatus(s) => front.fail_status.set(s),
        Action::CloudDown(true) => sim.crash(cloud::HOST),
        Action::CloudDown(false) => {
            front.worker.restart()?;
            sim.bounce(cloud::HOST);
        }
        Action::ClockStep(which, ms) => {
            for c in targets(cams, which) {
                c.clock_offset_ms.set(c.clock_offset_ms.get() + ms);
                if let Some(clock) = &*c.clock.borrow() {
                    clock.step(ms);
                }
            }
        }
        Action::CameraDown(which, down) => {
            for c in targets(cams, which) {
                if down {
                    sim.crash(name(c.idx));
                    c.stats.borrow_mut().dark.push((clock_now(sim), u64::MAX));
                } else {
                    if let Some(d) = c.stats.borrow_mut().dark.last_mut() {
                        d.1 = clock_now(sim);
                    }
                    sim.bounce(name(c.idx));
                }
            }
        }
        Action::Trap(which) => {
            for c in targets(cams, which) {
                c.trap_next.set(true);
            }
        }
        Action::Swap(which) => {
            for c in targets(cams, which) {
                c.swap_next.set(true);
            }
        }
        Action::Plan(kind) => {
            let plan = plan_of(&kind, scn.camera.trial_s);
            front.worker.set_now(clock::EPOCH_MS + clock_now(sim));
            for c in cams {
                let (id, plan) = (c.device_id.clone(), plan.clone());
                front.worker.admin(move |app| async move {
                    app.repo.set_plan(&id, None, &plan, app.now_ms()).await?;
                    app.changed(&id).await?;
                    Ok(())
                })?;
            }
        }
        Action::LoseSegment => {
            for c in cams {
                let id = c.device_id.clone();
                front.worker.admin(move |app| async move {
                    let rows = app.repo.segments_in(&id, 0, 0, u64::MAX / 2).await?;
                    if let Some(last) = rows.last() {
                        app.objects.delete(&last.object_key).await?;
                    }
                    Ok(())
                })?;
            }
        }
        Action::Privacy(which, until) => {
            for c in targets(cams, which) {
                c.privacy_until.set(Some(until));
            }
        }
    }
    Ok(())
}

/// At the scenario's end every fault is lifted so uploads can drain.
fn lift_all(
    sim: &mut turmoil::Sim<'_>,
    front: &Front,
    cams: &[Rc<CamShared>],
    scn: &Scenario,
) -> Result<()> {
    front.trace.event("driver", "end", "faults lifted");
    front.fail_status.set(0);
    if !sim.is_host_running(cloud::HOST) {
        apply(sim, front, cams, scn, Action::CloudDown(false))?;
    }
    for c in cams {
        sim.release(name(c.idx), cloud::HOST);
        sim.set_link_latency(
            name(c.idx),
            cloud::HOST,
            Duration::from_millis(scn.network.latency_ms),
        );
        c.link.set_kbps(uplink(scn));
        c.link.set_loss(0);
        if !sim.is_host_running(name(c.idx)) {
            apply(
                sim,
                front,
                cams,
                scn,
                Action::CameraDown(Some(c.idx), false),
            )?;
        }
    }
    Ok(())
}

fn clock_now(sim: &turmoil::Sim<'_>) -> u64 {
    u64::try_from(sim.elapsed().as_millis()).unwrap_or(u64::MAX)
}
