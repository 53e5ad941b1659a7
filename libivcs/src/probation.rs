//! Probation of a swapped-in engine: the health signals watched during its
//! first [`PROBATION`], the verdict (passed, or rolled back and why), and
//! the outcomes handed on for reporting. Pure bookkeeping over instants the
//! caller passes in, so it is tested with injected time; the engine thread
//! ([`crate::service`]) feeds it and acts on the verdict (the rollback
//! itself, files on disk, firmware's notify). docs/design/hot-swap.md,
//! "Probation and rollback", has the rationale for every threshold.
//!
//! Signals, each judged against what the previous engine saw, so that a
//! cloud outage or a slow uplink is never blamed on the new engine:
//!
//! - **traps** (bug, memory cap) and **deadline overruns** (the watchdog
//!   interrupted a call): counted, each already restarted the engine;
//! - **upload errors**: `err` slices of segments the new engine began, while
//!   the engine reports the cloud reachable, outnumbering `ok` ones;
//! - **credentials refused**: the cloud answered 401 to the new engine
//!   with the device credentials that worked for the previous one;
//! - **buffer growth**: a channel's backlog held at its budget for
//!   [`BACKLOG_STUCK`] without an acknowledged upload, while the cloud is
//!   reachable and the previous engine's backlog was low at the swap.

use ivcs_host::EngineRuntime;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long a swapped-in engine is on probation.
pub const PROBATION: Duration = Duration::from_secs(120);

/// Traps within probation that roll back. Three: one trap can be a rare
/// input the engine recovers from (a restart loses nothing acknowledged);
/// three in two minutes is a bug that will come back.
pub const PROBATION_TRAPS: u32 = 3;

/// Deadline overruns within probation that roll back. Two, fewer than
/// traps: each one held the engine thread for a whole call deadline
/// (2 s by default) while frames queued behind it.
pub const PROBATION_OVERRUNS: u32 = 2;

/// Failed uploads (of segments begun after the swap, while the cloud is
/// reachable) before the error rate is judged: a swap cuts the open segment
/// and in-flight uploads, reported `err` once per channel, and one more
/// failure is ordinary bad luck.
pub const UPLOAD_ERRORS_MIN: u32 = 3;

/// A channel's backlog at or above this percentage of its budget is "full".
pub const BACKLOG_FULL_PERCENT: u64 = 90;

/// How long a full backlog may last, without an acknowledged upload on the
/// channel and while the cloud is reachable, before it rolls back: three
/// 10 s segments that should have left.
pub const BACKLOG_STUCK: Duration = Duration::from_secs(30);

/// The buffer-growth signal applies only if the previous engine's backlog
/// was below this percentage at the swap: a backlog that was already high
/// means the uplink is the bottleneck, not the engine.
pub const BASELINE_BACKLOG_PERCENT: u64 = 50;

/// Why a probation ended in a rollback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RollbackReason {
    /// The engine trapped [`PROBATION_TRAPS`] times.
    Traps {
        /// Traps counted.
        count: u32,
    },
    /// The watchdog interrupted [`PROBATION_OVERRUNS`] calls.
    Overruns {
        /// Overruns counted.
        count: u32,
    },
    /// Uploads failed while the cloud was reachable.
    UploadErrors {
        /// `err` slices counted.
        failed: u32,
        /// `ok` slices counted.
        acknowledged: u32,
    },
    /// The cloud refused the device's credentials from this engine (the
    /// same credentials the previous engine used without refusal).
    CredentialsRefused,
    /// A channel's backlog stayed full without uploads.
    BacklogStuck {
        /// The channel.
        channel: u8,
        /// Its backlog and budget at the verdict, bytes.
        backlog: u64,
        /// See `backlog`.
        budget: u64,
    },
    /// After a trap, the engine could not even be started again.
    StartFailure {
        /// What failed.
        why: String,
    },
}

impl std::fmt::Display for RollbackReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RollbackReason::Traps { count } => write!(f, "trapped {count} times"),
            RollbackReason::Overruns { count } => {
                write!(f, "overran the call deadline {count} times")
            }
            RollbackReason::UploadErrors {
                failed,
                acknowledged,
            } => write!(
                f,
                "{failed} uploads failed ({acknowledged} acknowledged) while the cloud was reachable"
            ),
            RollbackReason::CredentialsRefused => write!(
                f,
                "had the device's credentials refused by the cloud (the previous engine had not)"
            ),
            RollbackReason::BacklogStuck {
                channel,
                backlog,
                budget,
            } => write!(
                f,
                "channel {channel}'s backlog stayed full ({backlog} of {budget} bytes) for {} s \
                 without an upload while the cloud was reachable",
                BACKLOG_STUCK.as_secs()
            ),
            RollbackReason::StartFailure { why } => write!(f, "could not be restarted: {why}"),
        }
    }
}

/// Which state the engine rolled back to resumed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoredFrom {
    /// A fresh `export-state` of the failing engine.
    Exported,
    /// The last state saved periodically (the failing engine could not
    /// export: it had trapped).
    LastSaved,
    /// Neither loaded: a clean start, the session initialised again.
    Clean,
}

/// How a probation ended: what the cloud is told (the lead wires the
/// report; [`crate::service::Service::take_probation_outcomes`] hands
/// these out in order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbationOutcome {
    /// The engine served its probation.
    Passed {
        /// The engine, as logged ("engine VERSION (key ID)").
        engine: String,
    },
    /// The engine was replaced by the one before it.
    RolledBack {
        /// The failing engine.
        engine: String,
        /// Why.
        reason: RollbackReason,
        /// Which state the previous engine resumed from.
        restored: RestoredFrom,
    },
}

/// The engine to roll back to.
pub enum Previous {
    /// Still loaded (a swap in this process).
    Loaded(Box<EngineRuntime>),
    /// Only on disk (probation resumed after a restart of the process).
    OnDisk(PathBuf),
    /// None: nothing to roll back to (rollback is then impossible).
    Nothing,
}

/// What the previous engine saw at the swap.
#[derive(Clone, Debug, Default)]
pub struct Baseline {
    /// Per channel: its backlog as a percentage of its budget.
    pub backlog_percent: HashMap<u8, u64>,
    /// Its recent uploads failed more often than not (the cloud refuses
    /// uploads: not the new engine's fault).
    pub uploads_failing: bool,
    /// The cloud refused its credentials, and no upload succeeded since.
    pub credentials_refused: bool,
}

/// What the verdict is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Still on probation.
    Continue,
    /// Served the whole window.
    Pass,
    /// Roll back.
    Fail(RollbackReason),
}

/// A swapped-in engine on probation.
pub struct Probation {
    /// The engine, for logs and outcomes.
    pub label: String,
    /// What to roll back to.
    pub previous: Previous,
    until: Instant,
    /// UTC second of the last cut (the swap, or a restart after a trap):
    /// the open segment and uploads in flight are reported `err` by the
    /// engine that takes over, which is the cut's doing (already counted as
    /// the swap or the trap), not a failed upload.
    cut_utc_s: u64,
    baseline: Baseline,
    traps: u32,
    overruns: u32,
    uploads_ok: u32,
    uploads_err: u32,
    /// The engine reported the cloud refusing the device's credentials.
    refused: bool,
    /// The engine reported the cloud unreachable (connect-fail) and not yet
    /// recovered.
    link_down: bool,
    /// Per channel: since when its backlog has been full without an upload.
    full_since: HashMap<u8, Instant>,
    /// Per channel: the last backlog and budget seen.
    last_levels: HashMap<u8, (u64, u64)>,
}

impl Probation {
    /// Starts a probation of `window` at `now`.
    pub fn new(
        label: String,
        previous: Previous,
        now: Instant,
        window: Duration,
        swap_utc_s: u64,
        baseline: Baseline,
        link_down: bool,
    ) -> Probation {
        Probation {
            label,
            previous,
            until: now + window,
            cut_utc_s: swap_utc_s,
            baseline,
            traps: 0,
            overruns: 0,
            uploads_ok: 0,
            uploads_err: 0,
            refused: false,
            link_down,
            full_since: HashMap::new(),
            last_levels: HashMap::new(),
        }
    }

    /// Whether the window has run out at `now`.
    pub fn expired(&self, now: Instant) -> bool {
        now >= self.until
    }

    /// A trap at UTC second `utc_s` (`overrun`: the watchdog interrupted
    /// the call); the engine is restarted, which cuts like a swap.
    pub fn trap(&mut self, utc_s: u64, overrun: bool) {
        self.cut_utc_s = self.cut_utc_s.max(utc_s);
        if overrun {
            self.overruns += 1;
        } else {
            self.traps += 1;
        }
    }

    /// An upload slice the engine reported on `channel`, of a segment that
    /// began at `utc_start_s`.
    pub fn upload(&mut self, now: Instant, channel: u8, utc_start_s: u64, ok: bool) {
        if ok {
            self.uploads_ok += 1;
            // Progress: a full backlog that still drains is a slow uplink.
            if let Some(t) = self.full_since.get_mut(&channel) {
                *t = now;
            }
            return;
        }
        if utc_start_s < self.cut_utc_s || self.link_down {
            return;
        }
        self.uploads_err += 1;
    }

    /// The engine reported that the cloud refuses the device's credentials
    /// (`IV_CS_COS_SERVICE_WRONG` from the engine, not from a restart).
    pub fn credentials_refused(&mut self) {
        self.refused = true;
    }

    /// The engine reported the cloud unreachable (`true`) or back.
    pub fn link(&mut self, down: bool) {
        self.link_down = down;
        // An outage fills any backlog: measure anew from its end.
        self.full_since.clear();
    }

    /// The buffers at `now`: (channel, backlog, budget).
    pub fn levels(&mut self, now: Instant, levels: &[(u8, u64, u64)]) {
        for &(ch, backlog, budget) in levels {
            self.last_levels.insert(ch, (backlog, budget));
            let full = budget > 0 && backlog * 100 >= budget * BACKLOG_FULL_PERCENT;
            if full && !self.link_down {
                self.full_since.entry(ch).or_insert(now);
            } else {
                self.full_since.remove(&ch);
            }
        }
    }

    /// The verdict at `now`. Failures are judged as soon as the evidence is
    /// there; a pass only when the window has run out.
    pub fn verdict(&self, now: Instant) -> Verdict {
        if self.traps >= PROBATION_TRAPS {
            return Verdict::Fail(RollbackReason::Traps { count: self.traps });
        }
        if self.overruns >= PROBATION_OVERRUNS {
            return Verdict::Fail(RollbackReason::Overruns {
                count: self.overruns,
            });
        }
        if self.refused && !self.baseline.credentials_refused {
            return Verdict::Fail(RollbackReason::CredentialsRefused);
        }
        if !self.baseline.uploads_failing
            && self.uploads_err >= UPLOAD_ERRORS_MIN
            && self.uploads_err > self.uploads_ok
        {
            return Verdict::Fail(RollbackReason::UploadErrors {
                failed: self.uploads_err,
                acknowledged: self.uploads_ok,
            });
        }
        if !self.link_down {
            let mut stuck: Vec<u8> = self
                .full_since
                .iter()
                .filter(|(ch, since)| {
                    now.saturating_duration_since(**since) >= BACKLOG_STUCK
                        && self
                            .baseline
                            .backlog_percent
                            .get(ch)
                            .is_none_or(|p| *p < BASELINE_BACKLOG_PERCENT)
                })
                .map(|(ch, _)| *ch)
                .collect();
            stuck.sort_unstable();
            if let Some(&channel) = stuck.first() {
                let (backlog, budget) = self.last_levels.get(&channel).copied().unwrap_or((0, 0));
                return Verdict::Fail(RollbackReason::BacklogStuck {
                    channel,
                    backlog,
                    budget,
                });
            }
        }
        if self.expired(now) {
            Verdict::Pass
        } else {
            Verdict::Continue
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_probation(baseline: Baseline) -> (Probation, Instant) {
        let t0 = Instant::now();
        let p = Probation::new(
            "engine test".into(),
            Previous::Nothing,
            t0,
            PROBATION,
            1_000,
            baseline,
            false,
        );
        (p, t0)
    }

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_quiet_engine_passes_when_the_window_ends_and_not_before() {
        let (mut p, t0) = on_probation(Baseline::default());
        p.upload(t0 + s(5), 0, 1_005, true);
        p.trap(1_001, false);
        p.trap(1_002, false);
        p.trap(1_003, true);
        assert_eq!(p.verdict(t0 + s(119)), Verdict::Continue);
        assert_eq!(p.verdict(t0 + s(120)), Verdict::Pass);
    }

    #[test]
    fn three_traps_or_two_overruns_roll_back_at_once() {
        let (mut p, t0) = on_probation(Baseline::default());
        for i in 0..3 {
            p.trap(1_000 + i, false);
        }
        assert_eq!(
            p.verdict(t0 + s(1)),
            Verdict::Fail(RollbackReason::Traps { count: 3 })
        );
        let (mut p, t0) = on_probation(Baseline::default());
        p.trap(1_001, true);
        assert_eq!(p.verdict(t0), Verdict::Continue);
        p.trap(1_002, true);
        assert_eq!(
            p.verdict(t0),
            Verdict::Fail(RollbackReason::Overruns { count: 2 })
        );
    }

    #[test]
    fn failing_uploads_roll_back_but_not_the_cut_segment_nor_an_outage() {
        let (mut p, t0) = on_probation(Baseline::default());
        // The segment cut by the swap (began before it) and failures while
        // the cloud is down do not count.
        p.upload(t0, 0, 990, false);
        p.link(true);
        for _ in 0..10 {
            p.upload(t0 + s(10), 0, 1_010, false);
        }
        p.link(false);
        assert_eq!(p.verdict(t0 + s(20)), Verdict::Continue);
        p.upload(t0 + s(30), 0, 1_030, true);
        for i in 0..2 {
            p.upload(t0 + s(40 + i), 0, 1_040 + i, false);
        }
        assert_eq!(p.verdict(t0 + s(42)), Verdict::Continue, "2 of 3");
        // A trap restarts the engine: what it cut fails, and is not counted.
        p.trap(1_045, false);
        p.upload(t0 + s(46), 0, 1_043, false);
        assert_eq!(p.verdict(t0 + s(46)), Verdict::Continue);
        p.upload(t0 + s(50), 0, 1_050, false);
        assert_eq!(
            p.verdict(t0 + s(50)),
            Verdict::Fail(RollbackReason::UploadErrors {
                failed: 3,
                acknowledged: 1
            })
        );
    }

    #[test]
    fn credentials_refused_roll_back_unless_they_were_refused_before() {
        let (mut p, t0) = on_probation(Baseline::default());
        p.credentials_refused();
        assert_eq!(
            p.verdict(t0),
            Verdict::Fail(RollbackReason::CredentialsRefused)
        );
        let (mut p, t0) = on_probation(Baseline {
            credentials_refused: true,
            ..Baseline::default()
        });
        p.credentials_refused();
        assert_eq!(p.verdict(t0), Verdict::Continue);
    }

    #[test]
    fn uploads_that_failed_under_the_previous_engine_too_are_not_its_fault() {
        let (mut p, t0) = on_probation(Baseline {
            uploads_failing: true,
            ..Baseline::default()
        });
        for i in 0..10 {
            p.upload(t0 + s(i), 0, 1_000 + i, false);
        }
        assert_eq!(p.verdict(t0 + s(10)), Verdict::Continue);
    }

    #[test]
    fn a_backlog_stuck_full_rolls_back_unless_the_cloud_is_down_or_it_drains() {
        let full = [(0u8, 950u64, 1_000u64), (1, 10, 1_000)];
        // Stuck for BACKLOG_STUCK with the cloud up: rollback.
        let (mut p, t0) = on_probation(Baseline::default());
        for i in 0..=30 {
            p.levels(t0 + s(i), &full);
        }
        assert_eq!(
            p.verdict(t0 + s(30)),
            Verdict::Fail(RollbackReason::BacklogStuck {
                channel: 0,
                backlog: 950,
                budget: 1_000
            })
        );
        // An outage: not the engine's fault, and the clock restarts after it.
        let (mut p, t0) = on_probation(Baseline::default());
        p.levels(t0, &full);
        p.link(true);
        for i in 1..=40 {
            p.levels(t0 + s(i), &full);
        }
        assert_eq!(p.verdict(t0 + s(40)), Verdict::Continue);
        p.link(false);
        p.levels(t0 + s(41), &full);
        assert_eq!(p.verdict(t0 + s(70)), Verdict::Continue);
        assert!(matches!(p.verdict(t0 + s(71)), Verdict::Fail(_)));
        // Full but draining (a slow uplink: segments still acknowledged).
        let (mut p, t0) = on_probation(Baseline::default());
        for i in 0..=60 {
            p.levels(t0 + s(i), &full);
            if i % 10 == 0 {
                p.upload(t0 + s(i), 0, 1_000 + i, true);
            }
        }
        assert_eq!(p.verdict(t0 + s(60)), Verdict::Continue);
        // Already high under the previous engine: the uplink's limit.
        let (mut p, t0) = on_probation(Baseline {
            backlog_percent: [(0u8, 70u64)].into_iter().collect(),
            ..Baseline::default()
        });
        for i in 0..=60 {
            p.levels(t0 + s(i), &full);
        }
        assert_eq!(p.verdict(t0 + s(60)), Verdict::Continue);
    }
}
