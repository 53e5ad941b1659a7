//! Faults: the scenario's fixed ones plus, in swarm mode, random ones drawn
//! from the seed ([`resolve`]), turned into timed actions on the simulation
//! ([`actions`]) that the driver applies between steps.

use crate::scenario::{Fault, Scenario};
use rand::{Rng, SeedableRng};

/// The scenario with its random faults drawn (same seed, same faults), by
/// time.
pub fn resolve(scn: &Scenario, seed: u64) -> Scenario {
    let mut out = scn.clone();
    if let Some(r) = &scn.random_faults {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5157_4641_554c_5453);
        let hours = scn.duration_s as f64 / 3600.0;
        let n = (r.per_hour * hours).round() as usize;
        // Faults start after the first minute and end before the last.
        let span = scn.duration_s.saturating_sub(120).max(1);
        for _ in 0..n {
            if r.kinds.is_empty() {
                break;
            }
            let kind = r.kinds[rng.random_range(0..r.kinds.len())].as_str();
            let at_s = 60 + rng.random_range(0..span);
            let max = r.max_duration_s.max(2);
            let duration_s = rng.random_range(1..max).min(scn.duration_s - at_s);
            let camera =
                (scn.cameras > 1 && rng.random_bool(0.5)).then(|| rng.random_range(0..scn.cameras));
            let f = match kind {
                "outage" => Fault::Outage {
                    at_s,
                    duration_s,
                    camera,
                },
                "flap" => {
                    let period_s = rng.random_range(4..60);
                    Fault::Flap {
                        at_s,
                        duration_s,
                        period_s,
                        down_s: rng.random_range(1..period_s),
                        camera,
                    }
                }
                "latency" => Fault::Latency {
                    at_s,
                    duration_s,
                    latency_ms: rng.random_range(100..3000),
                    camera,
                },
                "bandwidth" => Fault::Bandwidth {
                    at_s,
                    duration_s,
                    kbps: [0, 64, 200, 500, 800][rng.random_range(0..5)],
                    camera,
                },
                "loss" => Fault::Loss {
                    at_s,
                    duration_s,
                    percent: [1, 2, 5, 10, 20][rng.random_range(0..5)],
                    camera,
                },
                "cloud-errors" => Fault::CloudErrors {
                    at_s,
                    duration_s: duration_s.min(120),
                    status: [500, 502, 503][rng.random_range(0..3)],
                },
                "cloud-restart" => Fault::CloudRestart {
                    at_s,
                    down_s: duration_s.min(120),
                },
                "clock-step" => Fault::ClockStep {
                    at_s,
                    step_s: if rng.random_bool(0.5) { 3600 } else { -3600 },
                    camera,
                },
                "reboot" => Fault::Reboot {
                    at_s,
                    down_s: duration_s.min(90),
                    camera,
                },
                "swap" => Fault::Swap { at_s, camera },
                _ => Fault::Trap { at_s, camera },
            };
            out.faults.push(f);
        }
        out.random_faults = None;
    }
    out.faults.sort_by_key(Fault::at_s);
    out
}

/// Something the driver does to the simulation at a time.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Hold (true) or release the packets between cameras and the cloud.
    Hold(Option<u32>, bool),
    /// Set the one-way latency, ms.
    Latency(Option<u32>, u64),
    /// Set the uplink, kbit/s (`None`: the scenario's).
    Uplink(Option<u32>, Option<u32>),
    /// Set the uplink's packet loss, %.
    Loss(Option<u32>, u32),
    /// The cloud answers everything with this status (0: normally).
    CloudStatus(u16),
    /// Crash the cloud (true) or bring it back.
    CloudDown(bool),
    /// Step a camera's wall clock, ms.
    ClockStep(Option<u32>, i64),
    /// Crash a camera (true) or boot it again.
    CameraDown(Option<u32>, bool),
    /// The next engine call traps.
    Trap(Option<u32>),
    /// Hand the engine over to a fresh instance at the next turn.
    Swap(Option<u32>),
    /// The device plan changes.
    Plan(String),
    /// Recording off until this virtual ms.
    Privacy(Option<u32>, u64),
    /// The cloud loses its newest segment's bytes.
    LoseSegment,
}

/// The timed actions (virtual ms) of a resolved scenario, by time.
pub fn actions(scn: &Scenario) -> Vec<(u64, Action)> {
    let base_latency = scn.network.latency_ms;
    let mut out = Vec::new();
    for f in &scn.faults {
        let a = f.at_s() * 1000;
        let b = a + f.duration_s() * 1000;
        match f {
            Fault::Outage { camera, .. } => {
                out.push((a, Action::Hold(*camera, true)));
                out.push((b, Action::Hold(*camera, false)));
            }
            Fault::Flap {
                period_s,
                down_s,
                camera,
                ..
            } => {
                let mut t = a;
                while t < b {
                    out.push((t, Action::Hold(*camera, true)));
                    out.push(((t + down_s * 1000).min(b), Action::Hold(*camera, false)));
                    t += period_s * 1000;
                }
            }
            Fault::Latency {
                latency_ms, camera, ..
            } => {
                out.push((a, Action::Latency(*camera, *latency_ms)));
                out.push((b, Action::Latency(*camera, base_latency)));
            }
            Fault::Bandwidth { kbps, camera, .. } => {
                out.push((a, Action::Uplink(*camera, Some(*kbps))));
                out.push((b, Action::Uplink(*camera, None)));
            }
            Fault::Loss {
                percent, camera, ..
            } => {
                out.push((a, Action::Loss(*camera, *percent)));
                out.push((b, Action::Loss(*camera, 0)));
            }
            Fault::CloudErrors { status, .. } => {
                out.push((a, Action::CloudStatus(*status)));
                out.push((b, Action::CloudStatus(0)));
            }
            Fault::CloudRestart { .. } => {
                out.push((a, Action::CloudDown(true)));
                out.push((b, Action::CloudDown(false)));
            }
            Fault::ClockStep { step_s, camera, .. } => {
                out.push((a, Action::ClockStep(*camera, step_s * 1000)))
            }
            Fault::Reboot { camera, .. } => {
                out.push((a, Action::CameraDown(*camera, true)));
                out.push((b, Action::CameraDown(*camera, false)));
            }
            Fault::Trap { camera, .. } => out.push((a, Action::Trap(*camera))),
            Fault::Swap { camera, .. } => out.push((a, Action::Swap(*camera))),
            Fault::PlanChange { plan, .. } => out.push((a, Action::Plan(plan.clone()))),
            Fault::Privacy { camera, .. } => out.push((a, Action::Privacy(*camera, b))),
            Fault::CloudDataLoss { .. } => out.push((a, Action::LoseSegment)),
        }
    }
    // Stable: at one instant, actions keep the scenario's order.
    out.sort_by_key(|x| x.0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_faults_depend_only_on_the_seed() {
        let scn = Scenario::parse(
            "name='swarm'\nduration_s=36000\ncameras=4\n[random_faults]\nper_hour=3.0",
        )
        .unwrap();
        let a = resolve(&scn, 7);
        assert_eq!(a.faults.len(), 30);
        assert_eq!(a.faults, resolve(&scn, 7).faults);
        assert_ne!(a.faults, resolve(&scn, 8).faults);
        assert!(a.faults.iter().all(|f| f.at_s() + f.duration_s() <= 36000));
    }

    #[test]
    fn a_flap_alternates_hold_and_release() {
        let scn = Scenario::parse(
            "name='f'\nduration_s=100\n[[faults]]\nkind='flap'\nat_s=10\nduration_s=20\nperiod_s=10\ndown_s=3",
        )
        .unwrap();
        let acts = actions(&scn);
        assert_eq!(
            acts,
            vec![
                (10_000, Action::Hold(None, true)),
                (13_000, Action::Hold(None, false)),
                (20_000, Action::Hold(None, true)),
                (23_000, Action::Hold(None, false)),
            ]
        );
    }
}
