//! The invariants every run is checked against, from what the cameras saw
//! ([`CamStats`]) and what the cloud stored (its segments, read back and
//! demuxed with `ivcs-media`, every frame identified by its tag):
//!
//! 1. Nothing the cloud acknowledged is lost: every frame in a slice the
//!    engine reported uploaded is in a stored segment.
//! 2. No frame is stored twice, and frames inside a segment are in push
//!    order: no recorded video was overwritten or duplicated (a backward
//!    clock step must not replace a segment).
//! 3. Frames the engine took but the cloud does not have are only lost
//!    inside a fault's window (plus a recovery allowance) or while the
//!    camera was dark: segments are contiguous except at explained gaps.
//! 4. The buffer stays within its budget (`buffer-levels`) and the engine
//!    never asked for memory beyond its cap.
//! 5. Every event started is reported exactly once.
//! 6. Watermark notifications match buffer levels ([`WatermarkCheck`],
//!    run by the camera after every tick).
//! 7. With `camera.backup`, every segment reported failed was recovered
//!    through `backup-upload` by the end (the scenario gives it the time:
//!    its drain and the backup rate).
//! 8. Event pictures: each stored one is the snapshot firmware took for
//!    that camera and event; without faults every finished event has one.
//! 9. A live engine swap is invisible: it explains no loss, and in the
//!    [`SWAP_QUIET_MS`] after it no push is refused and no slice fails
//!    unless another fault hits the camera then.
//! 10. An exit (privacy mode) loses nothing taken before it: only the dark
//!     time itself, when nothing is pushed, is explained.
//! 11. A trap loses nothing taken more than a restart point's age before it
//!     (the restart point holds the buffered media; the frames since are fed
//!     again); a nearly full budget may overflow in the seconds after it
//!     ([`TRAP_RECOVERY_MS`]).
//! 12. A step of the device clock loses nothing: cloud time (signing, plan
//!     validity) runs on unchanged through it. Nor does a plan change: video
//!     recorded under a plan is stored even when it arrives after the end.

use crate::camera::{CamShared, SWAP_QUIET_MS};
use crate::cloud::CloudWorker;
use crate::scenario::{Fault, Scenario};
use anyhow::Result;
use ivcs_media::demux::OnDamage;
use ivcs_media::segment_reader::{SegmentFormat, SegmentReader};
use std::collections::BTreeMap;

/// After a fault ends, losses are still explained for this long (retries
/// back off up to a minute; a segment in flight is up to its length).
pub const RECOVERY_MS: u64 = 120_000;
/// Before a fault starts, losses are explained this far back: the segment
/// in flight when it hit (10 s of video, cut at an IDR) and what the
/// buffer held.
pub const LEAD_MS: u64 = 30_000;
/// Around a trap, losses are explained from [`TRAP_LEAD_MS`] before it to
/// this long after: the restart keeps the buffered media and feeds the
/// frames taken since the restart point again, but sends the upload the
/// trap cut again from its first byte, so with a nearly full budget the
/// frames fed again and those pushed meanwhile may overflow it.
pub const TRAP_RECOVERY_MS: u64 = 5_000;
/// See [`TRAP_RECOVERY_MS`]: the restart point is at most this old.
pub const TRAP_LEAD_MS: u64 = 1_000;

/// What the checks found for one run.
#[derive(Debug, Default)]
pub struct Findings {
    /// Broken invariants, each one sentence.
    pub violations: Vec<String>,
    /// Segments stored.
    pub segments: u64,
    /// Video frames the engine took (before the end) that the cloud lacks.
    pub lost_frames: u64,
    /// Segments recovered through backup.
    pub recovered: u64,
}

/// One stored segment as read back.
struct Stored {
    id: String,
    /// Video frame seqs in stored order.
    video: Vec<u32>,
}

/// Checks every camera of a run that ended at `end_ms` (virtual).
pub fn check(
    scn: &Scenario,
    cams: &[std::rc::Rc<CamShared>],
    cloud: &CloudWorker,
    end_ms: u64,
) -> Result<Findings> {
    let mut f = Findings::default();
    for cam in cams {
        let stored = read_back(cloud, &cam.device_id, &scn.camera.container)?;
        f.segments += stored.len() as u64;
        check_camera(scn, cam, &stored, end_ms, &mut f);
        let pictures = read_pictures(cloud, &cam.device_id)?;
        check_pictures(scn, cam, &pictures, &mut f);
    }
    Ok(f)
}

/// The cloud's events with a picture: (event id, the picture's label).
fn read_pictures(cloud: &CloudWorker, device: &str) -> Result<Vec<(u32, Option<String>)>> {
    let device = device.to_string();
    cloud.admin(move |app| async move {
        let rows = app
            .repo
            .events_page(&device, 0, 0, i64::MAX as u64 / 2, None, 100_000)
            .await?;
        let mut out = Vec::new();
        for row in rows {
            let Some(id) = &row.picture_id else { continue };
            let label = match app.repo.picture(&device, id).await? {
                Some(p) => app
                    .objects
                    .get_bytes(&p.object_key)
                    .await
                    .ok()
                    .and_then(|b| crate::media_gen::snapshot_label(&b)),
                None => None,
            };
            out.push((row.event_id, label));
        }
        Ok(out)
    })
}

/// Invariant 8: every picture stored with an event is the snapshot
/// firmware took for that camera and event; without faults, every event
/// reported finished has one.
fn check_pictures(
    scn: &Scenario,
    cam: &CamShared,
    pictures: &[(u32, Option<String>)],
    f: &mut Findings,
) {
    let who = format!("cam{}", cam.idx);
    for (id, label) in pictures {
        let want = format!("ivcs-sim cam{} event{id}", cam.idx);
        if label.as_deref() != Some(want.as_str()) {
            f.violations.push(format!(
                "{who}: event {id}'s picture in the cloud is {label:?}, not the snapshot taken for it"
            ));
            return;
        }
    }
    let st = cam.stats.borrow();
    let finished = st.event_results.iter().filter(|r| r.1).count();
    if scn.faults.is_empty() && st.snapshots > 0 && pictures.len() < finished {
        f.violations.push(format!(
            "{who}: {finished} events finished but only {} pictures stored",
            pictures.len()
        ));
    }
}

fn read_back(cloud: &CloudWorker, device: &str, container: &str) -> Result<Vec<Stored>> {
    let device = device.to_string();
    let format = if container == "fmp4" {
        SegmentFormat::Fmp4
    } else {
        SegmentFormat::Ts
    };
    cloud.admin(move |app| async move {
        let rows = app
            .repo
            .segments_in(&device, 0, 0, i64::MAX as u64 / 2)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            // A lost object shows as a segment without frames.
            let Ok(bytes) = app.objects.get_bytes(&row.object_key).await else {
                out.push(Stored {
                    id: row.segment_id,
                    video: Vec::new(),
                });
                continue;
            };
            let mut reader = SegmentReader::new(format, OnDamage::Fail);
            let mut samples = Vec::new();
            reader.push(&bytes, &mut samples)?;
            reader.finish(&mut samples)?;
            let video = samples
                .iter()
                .filter(|s| s.track == ivcs_media::Track::Video)
                .filter_map(|s| crate::media_gen::h264_tag(&s.data).map(|t| t.seq))
                .collect();
            out.push(Stored {
                id: row.segment_id,
                video,
            });
        }
        Ok(out)
    })
}

fn check_camera(scn: &Scenario, cam: &CamShared, stored: &[Stored], end_ms: u64, f: &mut Findings) {
    let who = format!("cam{}", cam.idx);
    let st = cam.stats.borrow();
    // Where each stored frame is, and duplicates / order inside segments.
    let mut at: BTreeMap<u32, &str> = BTreeMap::new();
    for s in stored {
        if !s.video.is_sorted_by(|a, b| a < b) {
            f.violations.push(format!(
                "{who}: segment {} has frames out of push order",
                s.id
            ));
        }
        for &seq in &s.video {
            if let Some(other) = at.insert(seq, &s.id) {
                f.violations.push(format!(
                    "{who}: frame {seq} stored twice (segments {other} and {})",
                    s.id
                ));
                break;
            }
        }
    }
    // 1. Acknowledged frames.
    let taken: BTreeMap<u32, u64> = st.video_taken.iter().copied().collect();
    let mut acked_missing = Vec::new();
    for &(a, b) in &st.acked {
        for (&seq, _) in taken.range(a..=b) {
            if !at.contains_key(&seq) {
                acked_missing.push(seq);
            }
        }
    }
    if let Some(first) = acked_missing.first() {
        f.violations.push(format!(
            "{who}: {} frames acknowledged by the cloud are not stored (first seq {first})",
            acked_missing.len()
        ));
    }
    // 3. Losses only where explained.
    let windows = explained(scn, cam.idx, &st.dark);
    let recorded = event_windows(scn);
    let mut unexplained: Option<(u32, u64)> = None;
    for (&seq, &t) in &taken {
        if t >= end_ms || at.contains_key(&seq) {
            continue;
        }
        // An event plan records around events; other frames only pass
        // through the pre-record ring.
        if let Some(w) = &recorded
            && !w.iter().any(|&(a, b)| a <= t && t <= b)
        {
            continue;
        }
        f.lost_frames += 1;
        if !windows.iter().any(|&(a, b)| a <= t && t <= b) && unexplained.is_none() {
            unexplained = Some((seq, t));
        }
    }
    if let Some((seq, t)) = unexplained {
        f.violations.push(format!(
            "{who}: frame {seq} pushed at {:.1} s was taken and is not stored, with no fault to explain it",
            t as f64 / 1000.0
        ));
    }
    // 9. Swaps.
    let others = explained(scn, cam.idx, &[]);
    for s in &st.swaps {
        let alone = !others
            .iter()
            .any(|&(a, b)| a <= s.at + SWAP_QUIET_MS && s.at <= b);
        if alone && s.refused + s.failed > 0 {
            f.violations.push(format!(
                "{who}: after the live swap at {:.1} s {} push(es) were refused and {} slice(s) failed, with no fault to explain it",
                s.at as f64 / 1000.0,
                s.refused,
                s.failed
            ));
        }
    }
    // 7. Backup: with an SD card, every failed segment came back.
    if cam.spec.backup {
        let sd = cam.sd.borrow();
        if sd.pending() > 0 {
            f.violations.push(format!(
                "{who}: {} failed segment(s) not recovered through backup by the end ({} recovered, {} given up)",
                sd.pending(),
                sd.recovered,
                sd.expired
            ));
        }
    }
    f.recovered += cam.sd.borrow().recovered;
    // 6. Watermarks.
    if let Some(v) = &st.wm.violation {
        f.violations.push(format!("{who}: {v}"));
    }
    // 4. Memory: the buffer within its budget, the instance within its cap.
    if st.used_max_pct > 100.0 {
        f.violations.push(format!(
            "{who}: the buffer reached {:.1} % of its budget",
            st.used_max_pct
        ));
    }
    if st.refused_growths > 0 {
        f.violations.push(format!(
            "{who}: the engine hit its memory cap ({} refused growths, cap {} B)",
            st.refused_growths, st.memory_cap
        ));
    }
    // 5. Events: one result per start (events still open near the end may
    // not be reported yet).
    let mut starts: BTreeMap<i32, i64> = BTreeMap::new();
    for &(id, t) in &st.events_started {
        if t + RECOVERY_MS + 1000 * max_event_s(scn) < end_ms {
            *starts.entry(id).or_default() += 1;
        }
    }
    let mut results: BTreeMap<i32, i64> = BTreeMap::new();
    for &(id, _) in &st.event_results {
        *results.entry(id).or_default() += 1;
    }
    for (id, n) in starts {
        let got = results.get(&id).copied().unwrap_or(0);
        if got < n {
            f.violations.push(format!(
                "{who}: event {id} started {n} times, reported {got} times"
            ));
        }
    }
}

/// With an event plan (or a trial, which records events), when video is
/// recorded (virtual ms): each event
/// from its pre-record to its end. `None`: recorded all the time.
fn event_windows(scn: &Scenario) -> Option<Vec<(u64, u64)>> {
    if !["event", "trial"].contains(&scn.camera.plan.as_str()) {
        return None;
    }
    let end = scn.duration_s * 1000;
    let windows = scn.camera.events.iter().flat_map(|e| {
        e.starts_ms(end).map(|at| {
            let from = at.saturating_sub(u64::from(e.pre_record_s) * 1000);
            (from, at + e.duration_s * 1000)
        })
    });
    Some(windows.collect())
}

fn max_event_s(scn: &Scenario) -> u64 {
    scn.camera
        .events
        .iter()
        .map(|e| e.duration_s)
        .max()
        .unwrap_or(0)
}

/// Virtual-time windows (ms) in which camera `idx` may lose video: faults
/// that hit it, plus [`RECOVERY_MS`], and its dark intervals.
fn explained(scn: &Scenario, idx: u32, dark: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut w: Vec<(u64, u64)> = dark.iter().map(|&(a, b)| (a, b + RECOVERY_MS)).collect();
    for fault in &scn.faults {
        // Extra latency loses nothing; nor may a swap, a step of the device
        // clock, a plan change (what was recorded under a plan is stored),
        // nor an exit (what was taken before it is delivered after it; the
        // dark time itself is explained by `dark`).
        if !fault.hits(idx)
            || matches!(
                fault,
                Fault::Latency { .. }
                    | Fault::Swap { .. }
                    | Fault::ClockStep { .. }
                    | Fault::PlanChange { .. }
                    | Fault::Privacy { .. }
            )
        {
            continue;
        }
        let a = fault.at_s() * 1000;
        if matches!(fault, Fault::Trap { .. }) {
            w.push((a.saturating_sub(TRAP_LEAD_MS), a + TRAP_RECOVERY_MS));
            continue;
        }
        w.push((
            a.saturating_sub(LEAD_MS),
            a + fault.duration_s() * 1000 + RECOVERY_MS,
        ));
    }
    w
}

/// Invariant 6, from firmware's side: the band the last watermark notify
/// announced must match the engine's buffer fill (`buffer-levels`'
/// backlog), within the hysteresis the engine documents
/// (engine/src/data/watermark.rs): falling out of a band takes half the
/// distance to the mark below. A mismatch is a violation when it outlasts
/// one tick (the fill can move between the engine's last look and ours).
#[derive(Debug, Default)]
pub struct WatermarkCheck {
    /// low, warn, high (bytes); `None`: watermarks disabled.
    marks: Option<[u64; 3]>,
    /// The last announced band: 0 none yet, 1 low, 2 warn, 3 high.
    pub announced: u8,
    /// The previous observation was off.
    off_before: bool,
    /// The first violation.
    pub violation: Option<String>,
}

impl WatermarkCheck {
    /// A check for these marks (bytes).
    pub fn new(marks: Option<[u64; 3]>) -> WatermarkCheck {
        WatermarkCheck {
            marks,
            ..WatermarkCheck::default()
        }
    }

    /// Firmware got a watermark notify (1 low, 2 warn, 3 high).
    pub fn notified(&mut self, band: u8) {
        self.announced = band;
    }

    /// Firmware (re)booted with these marks: it was told nothing yet.
    pub fn boot(&mut self, marks: Option<[u64; 3]>) {
        self.marks = marks;
        self.announced = 0;
        self.off_before = false;
    }

    /// The fill after a tick, at virtual `t_ms`.
    pub fn observe(&mut self, backlog: u64, t_ms: u64) {
        let Some([low, warn, high]) = self.marks else {
            return;
        };
        let (lo, hi) = match self.announced {
            0 => (0, low),
            1 => (0, warn),
            2 => (warn - (warn - low) / 2, high),
            _ => (high - (high - warn) / 2, u64::MAX),
        };
        let off = backlog < lo || backlog >= hi;
        if off && self.off_before && self.violation.is_none() {
            let band = ["none", "low", "warn", "high"][usize::from(self.announced.min(3))];
            self.violation = Some(format!(
                "at {:.1} s the buffer backlog is {backlog} B but the last watermark notify said {band} (expected {lo}..{hi} B)",
                t_ms as f64 / 1000.0
            ));
        }
        self.off_before = off;
    }
}

#[cfg(test)]
mod tests {
    use super::WatermarkCheck;

    #[test]
    fn watermark_check_follows_the_engine_bands_with_one_tick_of_slack() {
        let mut c = WatermarkCheck::new(Some([100, 400, 800]));
        c.observe(50, 0);
        c.observe(150, 1); // rose past low: one tick of slack
        assert!(c.violation.is_none());
        c.notified(1);
        c.observe(399, 2);
        c.notified(3);
        c.observe(650, 3); // within HIGH's hysteresis (800 - 200)
        c.observe(650, 4);
        assert!(c.violation.is_none());
        c.observe(500, 5);
        c.observe(500, 6); // HIGH said, well below it, twice: stale
        assert!(c.violation.as_deref().unwrap().contains("said high"));
        let mut off = WatermarkCheck::new(None);
        off.observe(u64::MAX, 0);
        off.observe(u64::MAX, 1);
        assert!(off.violation.is_none());
    }
}
