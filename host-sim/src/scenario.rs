//! Scenario files (TOML): the cameras, their network, the cloud, the faults
//! and how long to run. docs/guide/scenarios.md documents every key; the
//! library of scenarios is `host-sim/scenarios/`.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::path::Path;

/// One simulation.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, shown in the report.
    pub name: String,
    /// What the scenario models and what must hold (for people).
    #[serde(default)]
    pub description: String,
    /// Virtual time simulated, seconds.
    pub duration_s: u64,
    /// Identical cameras (each its own host and engine).
    #[serde(default = "one")]
    pub cameras: u32,
    /// The cameras' configuration.
    #[serde(default)]
    pub camera: CameraSpec,
    /// The link between each camera and the cloud.
    #[serde(default)]
    pub network: NetworkSpec,
    /// The cloud's settings.
    #[serde(default)]
    pub cloud: CloudSpec,
    /// Faults at fixed times.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Random faults drawn from the seed (swarm mode).
    #[serde(default)]
    pub random_faults: Option<RandomFaults>,
}

fn one() -> u32 {
    1
}

/// A camera and its firmware.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CameraSpec {
    /// Frames per second.
    pub fps: u32,
    /// Seconds between IDR frames.
    pub gop_s: u32,
    /// Video bitrate, kbit/s.
    pub bitrate_kbps: u32,
    /// Picture size (goes into the SPS).
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// AAC-LC 16 kHz mono, a frame every 64 ms, pushed from boot (before the
    /// first IDR, as real firmware does).
    pub audio: bool,
    /// `u32MaxGopSize`, KB (a multiple of 4).
    pub budget_kb: u32,
    /// Congestion watermarks (`iv_cs_congestion_ctrl_s`) as % of the budget;
    /// empty: disabled.
    pub watermarks_pct: Vec<u32>,
    /// `ts` or `fmp4`.
    pub container: String,
    /// `full-time`, `event`, `trial` or `none`.
    pub plan: String,
    /// Trial allowance, seconds (plan `trial`).
    pub trial_s: u64,
    /// Events the firmware raises.
    pub events: Vec<EventSpec>,
    /// The device's wall clock.
    pub clock: ClockSpec,
    /// Firmware keeps dumped segments on an SD card and sends failed ones
    /// back with `iv_cs_upload_backup_video` (`host-sim/src/sdcard.rs`);
    /// then every failed segment must be recovered by the end.
    pub backup: bool,
    /// The backup job's rate, kbit/s (the spec's case: 80 KB/s).
    pub backup_kbps: u32,
}

impl Default for CameraSpec {
    fn default() -> Self {
        CameraSpec {
            fps: 25,
            gop_s: 2,
            bitrate_kbps: 1000,
            width: 1280,
            height: 720,
            audio: true,
            budget_kb: 1024,
            watermarks_pct: vec![25, 50, 75],
            container: "ts".into(),
            plan: "full-time".into(),
            trial_s: 0,
            events: Vec::new(),
            clock: ClockSpec::default(),
            backup: false,
            backup_kbps: 640,
        }
    }
}

/// An event the firmware starts and stops.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// Start, seconds after boot.
    pub at_s: u64,
    /// Length, seconds.
    pub duration_s: u64,
    /// Event id 1-32.
    #[serde(default = "one_i32")]
    pub id: i32,
    /// Pre-record seconds asked for (`stream_start_time_s`, relative).
    #[serde(default)]
    pub pre_record_s: u32,
    /// Repeat every this many seconds until the end (0: once).
    #[serde(default)]
    pub every_s: u64,
}

impl EventSpec {
    /// When the event starts (virtual ms), every time before `end_ms`.
    pub fn starts_ms(&self, end_ms: u64) -> impl Iterator<Item = u64> + '_ {
        let repeats = if self.every_s == 0 { 1 } else { usize::MAX };
        (0..)
            .map(move |k| (self.at_s + k * self.every_s) * 1000)
            .take(repeats)
            .take_while(move |&t| t < end_ms)
    }
}

fn one_i32() -> i32 {
    1
}

/// The device's wall clock against true time.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClockSpec {
    /// Rate error, parts per million (positive: runs fast).
    pub drift_ppm: f64,
    /// The clock reads 2000-01-01 at boot until NTP sets it this many
    /// seconds later (none: correct from boot).
    pub unset_until_s: Option<u64>,
}

/// The link between a camera and the cloud.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSpec {
    /// One-way latency, ms.
    pub latency_ms: u64,
    /// Uplink rate, kbit/s (0: unlimited).
    pub uplink_kbps: u32,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec {
            latency_ms: 20,
            uplink_kbps: 0,
        }
    }
}

/// Cloud settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudSpec {
    /// How long after a segment's end a backup upload is accepted, seconds.
    pub backup_window_s: u64,
}

impl Default for CloudSpec {
    fn default() -> Self {
        CloudSpec {
            backup_window_s: 30 * 60,
        }
    }
}

/// A fault at a fixed time. `camera`: only that camera (index from 0);
/// default every camera.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Fault {
    /// No packets between camera and cloud (connections stall, new ones
    /// cannot be made).
    Outage {
        /// Start, seconds.
        at_s: u64,
        /// Length, seconds.
        duration_s: u64,
        /// Only this camera.
        camera: Option<u32>,
    },
    /// The link goes down for `down_s` of every `period_s`.
    Flap {
        /// Start, seconds.
        at_s: u64,
        /// Length of the flapping, seconds.
        duration_s: u64,
        /// Cycle length, seconds.
        period_s: u64,
        /// Down part of each cycle, seconds.
        down_s: u64,
        /// Only this camera.
        camera: Option<u32>,
    },
    /// Extra one-way latency.
    Latency {
        /// Start, seconds.
        at_s: u64,
        /// Length, seconds.
        duration_s: u64,
        /// One-way latency meanwhile, ms.
        latency_ms: u64,
        /// Only this camera.
        camera: Option<u32>,
    },
    /// The uplink is capped.
    Bandwidth {
        /// Start, seconds.
        at_s: u64,
        /// Length, seconds.
        duration_s: u64,
        /// Uplink meanwhile, kbit/s (0: stalled: connections stay open and
        /// move nothing).
        kbps: u32,
        /// Only this camera.
        camera: Option<u32>,
    },
    /// Packet loss on the uplink: each TCP window (10 packets) is lost
    /// with the chance its packets give and goes again after fast
    /// retransmit (60 ms) or, from the third loss in a row, the
    /// retransmission timeout (200 ms, doubling, at most 3.2 s).
    Loss {
        /// Start, seconds.
        at_s: u64,
        /// Length, seconds.
        duration_s: u64,
        /// Packets lost, % (1-50).
        percent: u32,
        /// Only this camera.
        camera: Option<u32>,
    },
    /// The cloud answers every request with `status`.
    CloudErrors {
        /// Start, seconds.
        at_s: u64,
        /// Length, seconds.
        duration_s: u64,
        /// HTTP status (default 503).
        #[serde(default = "status_503")]
        status: u16,
    },
    /// The cloud process dies (connections reset, requests in flight lost
    /// after their effects up to the crash) and comes back after `down_s`.
    CloudRestart {
        /// When, seconds.
        at_s: u64,
        /// Downtime, seconds.
        down_s: u64,
    },
    /// The device's wall clock jumps by `step_s` (negative: backwards).
    ClockStep {
        /// When, seconds.
        at_s: u64,
        /// Jump, seconds.
        step_s: i64,
        /// Only this camera.
        camera: Option<u32>,
    },
    /// The camera reboots: the engine is restored from its last exported
    /// state when it is back (after `down_s`).
    Reboot {
        /// When, seconds.
        at_s: u64,
        /// Downtime, seconds.
        down_s: u64,
        /// Only this camera.
        camera: Option<u32>,
    },
    /// The engine traps in its next call (the host restarts it from its last
    /// exported state, as libivcs does).
    Trap {
        /// When, seconds.
        at_s: u64,
        /// Only this camera.
        camera: Option<u32>,
    },
    /// A live engine update: the host hands the running engine's state
    /// (`export-state`, buffered media included) to a fresh instance and
    /// routes every call to it, as libivcs's `ivcs_host_engine_update`
    /// does. Explains no loss: a swap must lose, refuse and repeat nothing.
    Swap {
        /// When, seconds.
        at_s: u64,
        /// Only this camera.
        camera: Option<u32>,
    },
    /// The device's plan changes in the cloud.
    PlanChange {
        /// When, seconds.
        at_s: u64,
        /// `full-time`, `event`, `trial` or `none`.
        plan: String,
    },
    /// The cloud's storage loses the newest stored segment's bytes (a disk
    /// failure). Nothing recovers this: a run with it must FAIL (it is how
    /// the checker is checked).
    CloudDataLoss {
        /// When, seconds.
        at_s: u64,
    },
    /// Firmware calls `iv_cs_exit` and, `down_s` later, `iv_cs_init` again
    /// (privacy mode), pushing nothing meanwhile.
    Privacy {
        /// When, seconds.
        at_s: u64,
        /// How long recording is off, seconds.
        down_s: u64,
        /// Only this camera.
        camera: Option<u32>,
    },
}

fn status_503() -> u16 {
    503
}

impl Fault {
    /// When the fault starts, seconds.
    pub fn at_s(&self) -> u64 {
        match self {
            Fault::Outage { at_s, .. }
            | Fault::Flap { at_s, .. }
            | Fault::Latency { at_s, .. }
            | Fault::Bandwidth { at_s, .. }
            | Fault::Loss { at_s, .. }
            | Fault::CloudErrors { at_s, .. }
            | Fault::CloudRestart { at_s, .. }
            | Fault::ClockStep { at_s, .. }
            | Fault::Reboot { at_s, .. }
            | Fault::Trap { at_s, .. }
            | Fault::Swap { at_s, .. }
            | Fault::PlanChange { at_s, .. }
            | Fault::CloudDataLoss { at_s }
            | Fault::Privacy { at_s, .. } => *at_s,
        }
    }

    /// How long the fault lasts, seconds (0: instantaneous).
    pub fn duration_s(&self) -> u64 {
        match self {
            Fault::Outage { duration_s, .. }
            | Fault::Flap { duration_s, .. }
            | Fault::Latency { duration_s, .. }
            | Fault::Bandwidth { duration_s, .. }
            | Fault::Loss { duration_s, .. }
            | Fault::CloudErrors { duration_s, .. } => *duration_s,
            Fault::CloudRestart { down_s, .. }
            | Fault::Reboot { down_s, .. }
            | Fault::Privacy { down_s, .. } => *down_s,
            Fault::ClockStep { .. }
            | Fault::Trap { .. }
            | Fault::Swap { .. }
            | Fault::PlanChange { .. }
            | Fault::CloudDataLoss { .. } => 0,
        }
    }

    /// Whether the fault applies to camera `cam`.
    pub fn hits(&self, cam: u32) -> bool {
        match self {
            Fault::Outage { camera, .. }
            | Fault::Flap { camera, .. }
            | Fault::Latency { camera, .. }
            | Fault::Bandwidth { camera, .. }
            | Fault::Loss { camera, .. }
            | Fault::ClockStep { camera, .. }
            | Fault::Reboot { camera, .. }
            | Fault::Trap { camera, .. }
            | Fault::Swap { camera, .. }
            | Fault::Privacy { camera, .. } => camera.is_none_or(|c| c == cam),
            Fault::CloudErrors { .. }
            | Fault::CloudRestart { .. }
            | Fault::PlanChange { .. }
            | Fault::CloudDataLoss { .. } => true,
        }
    }

    /// The fault's kind, as written in scenario files.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Outage { .. } => "outage",
            Fault::Flap { .. } => "flap",
            Fault::Latency { .. } => "latency",
            Fault::Bandwidth { .. } => "bandwidth",
            Fault::Loss { .. } => "loss",
            Fault::CloudErrors { .. } => "cloud-errors",
            Fault::CloudRestart { .. } => "cloud-restart",
            Fault::ClockStep { .. } => "clock-step",
            Fault::Reboot { .. } => "reboot",
            Fault::Trap { .. } => "trap",
            Fault::Swap { .. } => "swap",
            Fault::PlanChange { .. } => "plan-change",
            Fault::CloudDataLoss { .. } => "cloud-data-loss",
            Fault::Privacy { .. } => "privacy",
        }
    }
}

/// Swarm mode: faults drawn from the seed.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomFaults {
    /// How many faults per simulated hour, on average.
    pub per_hour: f64,
    /// Kinds to draw from (default: all network and cloud kinds).
    pub kinds: Vec<String>,
    /// Longest outage or degradation, seconds.
    pub max_duration_s: u64,
}

impl Default for RandomFaults {
    fn default() -> Self {
        RandomFaults {
            per_hour: 6.0,
            kinds: [
                "outage",
                "flap",
                "latency",
                "bandwidth",
                "loss",
                "cloud-errors",
                "cloud-restart",
                "clock-step",
                "reboot",
                "trap",
                "swap",
            ]
            .map(String::from)
            .to_vec(),
            max_duration_s: 600,
        }
    }
}

const PLANS: [&str; 4] = ["full-time", "event", "trial", "none"];

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Scenario::parse(&text).with_context(|| format!("scenario {}", path.display()))
    }

    /// Parses and checks a scenario.
    pub fn parse(text: &str) -> Result<Scenario> {
        let s: Scenario = toml::from_str(text)?;
        s.check()?;
        Ok(s)
    }

    fn check(&self) -> Result<()> {
        let c = &self.camera;
        if self.duration_s == 0 || self.cameras == 0 || self.cameras > 1000 {
            bail!("duration_s must be > 0 and cameras 1-1000");
        }
        if c.fps == 0 || c.fps > 60 || c.gop_s == 0 || c.bitrate_kbps == 0 {
            bail!("camera: fps 1-60, gop_s and bitrate_kbps > 0");
        }
        if c.width < 16 || c.height < 16 || c.width > 8192 || c.height > 8192 {
            bail!("camera: width and height 16-8192");
        }
        if c.budget_kb == 0 || !c.budget_kb.is_multiple_of(4) {
            bail!("camera.budget_kb must be a positive multiple of 4");
        }
        if !c.watermarks_pct.is_empty()
            && (c.watermarks_pct.len() != 3
                || !c.watermarks_pct.is_sorted()
                || c.watermarks_pct.iter().any(|&p| p == 0 || p > 100))
        {
            bail!("camera.watermarks_pct: three rising percentages (low, warn, high) or none");
        }
        if c.backup && c.backup_kbps < 8 {
            bail!("camera.backup_kbps must be at least 8");
        }
        if !["ts", "fmp4"].contains(&c.container.as_str()) {
            bail!("camera.container must be ts or fmp4");
        }
        let plans =
            std::iter::once(c.plan.as_str()).chain(self.faults.iter().filter_map(|f| match f {
                Fault::PlanChange { plan, .. } => Some(plan.as_str()),
                _ => None,
            }));
        for p in plans {
            if !PLANS.contains(&p) {
                bail!("plan {p:?}: one of {PLANS:?}");
            }
        }
        for e in &c.events {
            if !(1..=32).contains(&e.id) {
                bail!("camera.events: id must be 1-32");
            }
        }
        for f in &self.faults {
            if let Fault::Flap {
                period_s, down_s, ..
            } = f
                && (*period_s == 0 || down_s >= period_s)
            {
                bail!("flap: down_s must be less than period_s");
            }
            if let Fault::Loss { percent, .. } = f
                && !(1..=50).contains(percent)
            {
                bail!("loss: percent must be 1-50");
            }
            if f.at_s() >= self.duration_s {
                bail!("fault {} at {} s is after the end", f.kind(), f.at_s());
            }
        }
        if let Some(r) = &self.random_faults {
            for k in &r.kinds {
                if !RandomFaults::default().kinds.contains(k) {
                    bail!("random_faults.kinds: unknown kind {k:?}");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_starts_at_its_time_then_every_period_before_the_end() {
        let e = |at_s, every_s| EventSpec {
            at_s,
            duration_s: 10,
            id: 1,
            pre_record_s: 0,
            every_s,
        };
        let starts = |e: &EventSpec, end| e.starts_ms(end).collect::<Vec<_>>();
        assert_eq!(
            starts(&e(60, 120), 600_000),
            [60_000, 180_000, 300_000, 420_000, 540_000]
        );
        assert_eq!(starts(&e(60, 0), 600_000), [60_000]);
        assert_eq!(starts(&e(600, 0), 600_000), Vec::<u64>::new());
    }

    #[test]
    fn a_small_scenario_parses_with_defaults() {
        let s = Scenario::parse(
            r#"
            name = "outage"
            duration_s = 600
            [[faults]]
            kind = "outage"
            at_s = 60
            duration_s = 30
            "#,
        )
        .unwrap();
        assert_eq!(s.camera.fps, 25);
        assert_eq!(
            s.faults,
            vec![Fault::Outage {
                at_s: 60,
                duration_s: 30,
                camera: None
            }]
        );
    }

    #[test]
    fn bad_scenarios_are_refused_with_the_reason() {
        for (text, why) in [
            ("name='x'\nduration_s=0", "duration_s"),
            (
                "name='x'\nduration_s=9\n[camera]\nbudget_kb=5",
                "multiple of 4",
            ),
            ("name='x'\nduration_s=9\n[camera]\nplan='gold'", "plan"),
            (
                "name='x'\nduration_s=9\n[[faults]]\nkind='meteor'\nat_s=1",
                "meteor",
            ),
            ("name='x'\nduration_s=9\nspeed=3", "speed"),
            (
                "name='x'\nduration_s=9\n[[faults]]\nkind='trap'\nat_s=10",
                "after the end",
            ),
        ] {
            let e = format!("{:#}", Scenario::parse(text).unwrap_err());
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
