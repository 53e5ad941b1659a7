//! Firmware's SD card and its backup job (`camera.backup = true`): every
//! segment the engine dumps (`dump_file_cb`) is kept until the cloud
//! acknowledges it; one reported failed is sent back with
//! `iv_cs_upload_backup_video` (`backup-upload`), one file at a time, at the
//! firmware's backup rate (the spec's case: at most 80 KB/s next to the
//! live stream), while the engine says the cloud is reachable. A refused or
//! broken backup is started again later, as the spec tells firmware to;
//! a file whose backup window closed (-613 at START) is given up.
//!
//! The card outlives reboots (it is storage); a file half dumped when the
//! camera went down is incomplete and dropped.

use ivcs_host::bindings::ivcs::engine::types::DumpState as Step;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Bytes per RUNNING chunk at most.
const CHUNK: usize = 16 << 10;
/// After a refused call, try again this much later (ms).
const RETRY_MS: u64 = 5_000;
/// START's answer when the cloud's backup window closed (-613).
const WINDOW_CLOSED: i32 = -613;
/// START's answer for a file the engine does not remember (-602).
const UNKNOWN_FILE: i32 = -602;

/// A segment as dumped.
struct SdFile {
    /// Segment start and end, UTC ms (`start_ts`, `end_ts`).
    start_ms: u64,
    end_ms: u64,
    data: Vec<u8>,
}

/// The backup in progress.
struct Job {
    name: String,
    /// Bytes handed to the engine.
    sent: usize,
    /// When the next chunk (or END) may go (virtual ms).
    next_at: u64,
    /// END was taken: waiting for the file's upload-state slice.
    ended: bool,
}

/// What a backup call to the engine answered: `None` if the call was lost
/// (the engine trapped).
pub type Answer = Option<Result<(), i32>>;

/// One backup call for the engine: state, file name, bytes.
pub struct Call<'a> {
    /// START, RUNNING or END (`iv_cs_up_bk_state_e`).
    pub state: Step,
    /// The bare file name from the dump.
    pub name: &'a str,
    /// The chunk (empty for START and END).
    pub data: &'a [u8],
}

/// See the module docs.
#[derive(Default)]
pub struct SdCard {
    /// Bytes per second the backup job may send.
    rate_bps: u64,
    /// The file being dumped: (start ms, bytes).
    open: Option<(u64, Vec<u8>)>,
    files: BTreeMap<String, SdFile>,
    /// Failed slices (UTC start s, end s) whose dump has not ended yet.
    failed_early: BTreeSet<(u64, u64)>,
    /// Failed files waiting for backup, oldest first.
    queue: VecDeque<String>,
    job: Option<Job>,
    /// No backup call before this (virtual ms).
    quiet_until: u64,
    /// Files the cloud got back through backup.
    pub recovered: u64,
    /// Backups started (including repeats).
    pub attempts: u64,
    /// Files given up: their window closed, or the engine does not know
    /// them.
    pub expired: u64,
}

impl SdCard {
    /// A card whose backup job sends at most `kbps` kbit/s.
    pub fn new(kbps: u32) -> SdCard {
        SdCard {
            rate_bps: u64::from(kbps.max(8)) * 1000 / 8,
            ..SdCard::default()
        }
    }

    /// The camera booted: a dump cut by the reboot is incomplete, and a
    /// backup in progress is started again.
    pub fn boot(&mut self) {
        self.open = None;
        if let Some(job) = self.job.take() {
            self.queue.push_front(job.name);
        }
    }

    /// One `dump_file_cb` call.
    pub fn dumped(&mut self, state: Step, start_ms: u64, end_ms: u64, name: &str, data: &[u8]) {
        match state {
            Step::Start => self.open = Some((start_ms, Vec::new())),
            Step::Running => {
                if let Some((_, buf)) = &mut self.open {
                    buf.extend_from_slice(data);
                }
            }
            Step::End => {
                let Some((start_ms, data)) = self.open.take() else {
                    return;
                };
                let key = (start_ms / 1000, end_ms / 1000);
                self.files.insert(
                    name.to_string(),
                    SdFile {
                        start_ms,
                        end_ms,
                        data,
                    },
                );
                if self.failed_early.remove(&key) {
                    self.queue.push_back(name.to_string());
                }
            }
        }
    }

    /// An upload-state slice (UTC seconds): an acknowledged segment's file
    /// is deleted; a failed one is queued for backup. A slice for the file
    /// being backed up ends that backup.
    pub fn slice(&mut self, start_s: u64, end_s: u64, ok: bool) {
        let Some(name) = self
            .files
            .iter()
            .find(|(_, f)| f.start_ms / 1000 == start_s && f.end_ms / 1000 == end_s)
            .map(|(n, _)| n.clone())
        else {
            // A failed segment whose dump ends later (or a dropped span
            // after an overflow, which has no file).
            if !ok {
                self.failed_early.insert((start_s, end_s));
            }
            return;
        };
        let ours = self.job.as_ref().is_some_and(|j| j.name == name);
        if ok {
            if ours {
                self.recovered += 1;
                self.job = None;
            }
            self.queue.retain(|n| *n != name);
            self.files.remove(&name);
        } else if ours {
            // The backup itself failed: again, later.
            self.job = None;
            self.queue.push_back(name);
        } else if !self.queue.contains(&name) {
            self.queue.push_back(name);
        }
    }

    /// Files failed and not yet recovered (queued or in progress).
    pub fn pending(&self) -> usize {
        self.queue.len() + usize::from(self.job.is_some())
    }

    /// When the job next wants to call the engine (virtual ms), if ever
    /// (nothing while the cloud is down: a notify says when it is back).
    pub fn next_at(&self, cloud_up: bool) -> Option<u64> {
        if !cloud_up {
            return None;
        }
        match &self.job {
            Some(j) if !j.ended => Some(j.next_at.max(self.quiet_until)),
            Some(_) => None,
            None => (!self.queue.is_empty()).then_some(self.quiet_until),
        }
    }

    /// Makes the job's next call if it is due; `engine` makes the call.
    /// Returns a line for the trace when something changed.
    pub fn drive(
        &mut self,
        now: u64,
        cloud_up: bool,
        mut engine: impl FnMut(Call<'_>) -> anyhow::Result<Answer>,
    ) -> anyhow::Result<Option<String>> {
        if !cloud_up || now < self.quiet_until {
            return Ok(None);
        }
        let Some(job) = &mut self.job else {
            let Some(name) = self.queue.pop_front() else {
                return Ok(None);
            };
            let r = engine(Call {
                state: Step::Start,
                name: &name,
                data: &[],
            })?;
            return Ok(Some(match r {
                Some(Ok(())) => {
                    self.attempts += 1;
                    self.job = Some(Job {
                        name: name.clone(),
                        sent: 0,
                        next_at: now,
                        ended: false,
                    });
                    format!("backup {name} started")
                }
                Some(Err(code @ (WINDOW_CLOSED | UNKNOWN_FILE))) => {
                    self.expired += 1;
                    self.files.remove(&name);
                    format!("backup {name} refused ({code}): given up")
                }
                other => {
                    self.queue.push_front(name.clone());
                    self.quiet_until = now + RETRY_MS;
                    format!("backup {name} START -> {other:?}; again later")
                }
            }));
        };
        if job.ended || now < job.next_at {
            return Ok(None);
        }
        let Some(file) = self.files.get(&job.name) else {
            self.job = None;
            return Ok(None);
        };
        let (step, data) = if job.sent < file.data.len() {
            let n = CHUNK.min(file.data.len() - job.sent);
            (Step::Running, &file.data[job.sent..job.sent + n])
        } else {
            (Step::End, &[][..])
        };
        let r = engine(Call {
            state: step,
            name: &job.name,
            data,
        })?;
        match r {
            Some(Ok(())) if step == Step::Running => {
                job.sent += data.len();
                // Paced: the next chunk when this one's time at the rate is up.
                job.next_at = now + (data.len() as u64 * 1000).div_ceil(self.rate_bps);
                Ok(None)
            }
            Some(Ok(())) => {
                job.ended = true;
                Ok(Some(format!("backup {} sent ({} B)", job.name, job.sent)))
            }
            Some(Err(-606)) => {
                // The engine's backup queue is full: the network is slower.
                job.next_at = now + 500;
                Ok(None)
            }
            other => {
                let name = job.name.clone();
                self.job = None;
                self.queue.push_back(name.clone());
                self.quiet_until = now + RETRY_MS;
                Ok(Some(format!(
                    "backup {name} {step:?} -> {other:?}; again later"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card_with_failed_file() -> SdCard {
        let mut sd = SdCard::new(640);
        sd.dumped(Step::Start, 10_000, 0, "", &[]);
        sd.dumped(Step::Running, 0, 0, "", &[1; 40_000]);
        sd.dumped(Step::End, 0, 20_000, "s1.ts", &[]);
        sd.slice(10, 20, false);
        sd
    }

    #[test]
    fn a_failed_file_is_sent_back_at_the_rate_then_deleted_when_acknowledged() {
        let mut sd = card_with_failed_file();
        assert_eq!(sd.pending(), 1);
        let mut calls = Vec::new();
        let mut now = 0;
        while let Some(t) = sd.next_at(true) {
            now = now.max(t);
            sd.drive(now, true, |c| {
                calls.push((c.state, c.data.len(), now));
                Ok(Some(Ok(())))
            })
            .unwrap();
        }
        let states: Vec<Step> = calls.iter().map(|c| c.0).collect();
        assert_eq!(
            states,
            [
                Step::Start,
                Step::Running,
                Step::Running,
                Step::Running,
                Step::End
            ]
        );
        assert_eq!(calls.iter().map(|c| c.1).sum::<usize>(), 40_000);
        // 40 kB at 80 kB/s: END half a second after the first chunk (to a
        // millisecond of rounding per chunk).
        let took = calls[4].2 - calls[1].2;
        assert!(took.abs_diff(500) <= 2, "{took} ms");
        sd.slice(10, 20, true);
        assert_eq!((sd.pending(), sd.recovered), (0, 1));
    }

    #[test]
    fn no_backup_while_the_cloud_is_down_and_a_refusal_is_retried_later() {
        let mut sd = card_with_failed_file();
        let r = sd
            .drive(0, false, |_| panic!("no call while down"))
            .unwrap();
        assert!(r.is_none());
        sd.drive(0, true, |_| Ok(Some(Err(-605)))).unwrap();
        assert_eq!(sd.next_at(true), Some(RETRY_MS));
        assert_eq!(sd.next_at(false), None);
        sd.drive(RETRY_MS, true, |_| Ok(Some(Err(WINDOW_CLOSED))))
            .unwrap();
        assert_eq!((sd.pending(), sd.expired), (0, 1));
    }

    #[test]
    fn an_acknowledged_segment_is_deleted_and_a_failure_before_the_dump_end_still_queues() {
        let mut sd = SdCard::new(640);
        sd.slice(10, 20, false);
        sd.dumped(Step::Start, 10_000, 0, "", &[]);
        sd.dumped(Step::End, 0, 20_000, "s1.ts", &[]);
        assert_eq!(sd.pending(), 1);
        sd.dumped(Step::Start, 20_000, 0, "", &[]);
        sd.dumped(Step::End, 0, 30_000, "s2.ts", &[]);
        sd.slice(20, 30, true);
        assert_eq!(sd.files.len(), 1);
    }
}
