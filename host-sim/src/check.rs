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
//! 4. The engine never asked for memory beyond its cap.
//! 5. Every event started is reported exactly once.

use crate::camera::CamShared;
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

/// What the checks found for one run.
#[derive(Debug, Default)]
pub struct Findings {
    /// Broken invariants, each one sentence.
    pub violations: Vec<String>,
    /// Segments stored.
    pub segments: u64,
    /// Video frames the engine took (before the end) that the cloud lacks.
    pub lost_frames: u64,
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
    }
    Ok(f)
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
    let mut unexplained: Option<(u32, u64)> = None;
    for (&seq, &t) in &taken {
        if t >= end_ms || at.contains_key(&seq) {
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
    // 4. Memory.
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
        if !fault.hits(idx) || matches!(fault, Fault::Latency { .. }) {
            continue;
        }
        let a = fault.at_s() * 1000;
        w.push((
            a.saturating_sub(LEAD_MS),
            a + fault.duration_s() * 1000 + RECOVERY_MS,
        ));
    }
    w
}
