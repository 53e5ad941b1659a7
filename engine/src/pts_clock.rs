//! What firmware's PTS mean, decided once per channel before anything else
//! reads them (pre-record ring, recording runs, the pipeline). The API says
//! milliseconds from any base; real firmware gets two things wrong, and
//! this module makes both record normally, with a warning in the log:
//!
//! - **Microseconds in the millisecond field.** The second video frame
//!   decides: when it follows the first by 1000 times the frame interval
//!   (within a factor of two; 25 fps gives 40 000 instead of 40), the
//!   channel's PTS are microseconds and every PTS becomes
//!   `first + (pts - first) / 1000`. Deciding on one interval is safe there
//!   only: a real gap of 20–80 s between a stream's first two frames does
//!   not happen, while later in a stream it does (a paused camera). Without
//!   a declared frame rate, any first interval of 10–200 ms read as µs
//!   counts. Audio pushed between the first two video frames still carries
//!   µs: it is more than 10 s ahead of the video and refused (-602), at most
//!   one frame interval of it.
//! - **A 32-bit counter wrapping** (ms: every 49.7 days; µs: every 71.6
//!   minutes). A PTS below 2^32 that lands within 10 s past 2^32 of the last
//!   one continues the timeline (2^32 is added from then on), so the
//!   recording goes on without a cut; a frame stamped just before the wrap
//!   that arrives just after it (audio and video interleave) keeps its
//!   place.
//!
//! Anything else that goes backwards or jumps more than 10 s (firmware
//! restarting its clock at 0, say) is left alone and logged here: the
//! pipeline starts a new timeline at the next IDR (docs/design/segments.md).

use crate::pipeline::MAX_FRAME_GAP_MS;
use crate::types::StreamKind;
use serde::{Deserialize, Serialize};

/// Where a 32-bit PTS counter wraps.
pub const WRAP: u64 = 1 << 32;

/// The unit the channel's PTS turned out to be in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PtsUnit {
    /// Not decided yet (fewer than two video frames seen).
    #[default]
    Unknown,
    /// Milliseconds, as the API says.
    Millis,
    /// Microseconds, divided by 1000.
    Micros,
}

/// One channel's PTS policy; saved with the channel so a swap or restart
/// keeps the unit and the wraps seen.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PtsClock {
    unit: PtsUnit,
    /// Unwrapped raw PTS of the first video frame: the fixed point of the
    /// µs → ms mapping.
    first_video: Option<u64>,
    /// Unwrapped raw PTS of the last frame of either kind.
    last: Option<u64>,
    /// Mapped PTS of the last video frame (to report discontinuities).
    last_video_ms: Option<u64>,
    /// Wraps seen: 2^32 times this is added to raw PTS.
    epoch: u64,
}

impl PtsClock {
    /// The unit decided so far.
    pub fn unit(&self) -> PtsUnit {
        self.unit
    }

    /// The millisecond PTS of a frame pushed with `raw`, and a warning for
    /// the log when this frame showed something firmware should fix.
    /// `framerate` is the declared one (0: variable).
    pub fn map(&mut self, kind: StreamKind, raw: u64, framerate: u32) -> (u64, Option<String>) {
        let mut note = None;
        let pts = self.unwrap(raw, &mut note);
        if kind == StreamKind::Video {
            match self.first_video {
                None => self.first_video = Some(pts),
                Some(first) if self.unit == PtsUnit::Unknown => {
                    self.unit = if looks_like_micros(pts.wrapping_sub(first), first, pts, framerate)
                    {
                        note = Some(format!(
                            "the second video frame's PTS is {} after the first's: microseconds, not milliseconds (the API's unit); recording with PTS / 1000",
                            pts - first
                        ));
                        PtsUnit::Micros
                    } else {
                        PtsUnit::Millis
                    };
                }
                Some(_) => {}
            }
        }
        let ms = self.to_ms(pts);
        if kind == StreamKind::Video {
            if let Some(last) = self.last_video_ms
                && note.is_none()
                && (ms <= last || ms - last > MAX_FRAME_GAP_MS)
            {
                note = Some(format!(
                    "video PTS went from {last} to {ms} ms (backwards, or more than {MAX_FRAME_GAP_MS} ms ahead): a new recording run starts at the next IDR"
                ));
            }
            self.last_video_ms = Some(ms);
        }
        (ms, note)
    }

    /// Raw PTS plus the wraps seen; counts a new wrap.
    fn unwrap(&mut self, raw: u64, note: &mut Option<String>) -> u64 {
        let window = match self.unit {
            PtsUnit::Micros => MAX_FRAME_GAP_MS * 1000,
            _ => MAX_FRAME_GAP_MS,
        };
        let base = self.epoch.saturating_mul(WRAP);
        let mut pts = base.saturating_add(raw);
        if raw < WRAP
            && let Some(last) = self.last
        {
            let in_epoch = last.saturating_sub(base);
            if in_epoch >= WRAP - window && in_epoch < WRAP && raw < window {
                // Past the top: the counter wrapped.
                self.epoch += 1;
                pts = pts.saturating_add(WRAP);
                *note = Some(format!(
                    "PTS wrapped at 2^32 (from {} to {raw}): the recording continues on one timeline",
                    in_epoch
                ));
            } else if self.epoch > 0 && in_epoch < window && raw >= WRAP - window {
                // Stamped just before the wrap, pushed just after it.
                pts -= WRAP;
            }
        }
        self.last = Some(self.last.map_or(pts, |l| l.max(pts)));
        pts
    }

    /// Unwrapped raw PTS to milliseconds.
    fn to_ms(&self, pts: u64) -> u64 {
        match (self.unit, self.first_video) {
            (PtsUnit::Micros, Some(first)) => {
                let d = i128::from(pts) - i128::from(first);
                u64::try_from(i128::from(first) + d.div_euclid(1000)).unwrap_or(0)
            }
            _ => pts,
        }
    }
}

/// Whether the first video interval `d` (raw units) is a frame interval in
/// microseconds rather than a gap in milliseconds.
fn looks_like_micros(d: u64, first: u64, second: u64, framerate: u32) -> bool {
    if second <= first {
        return false;
    }
    let (lo, hi) = match framerate {
        // Within a factor of two of 1000 x the declared interval.
        fps @ 1.. => {
            let us = 1_000_000 / u64::from(fps);
            (us / 2, us.saturating_mul(2))
        }
        0 => (10_000, 200_000),
    };
    d > MAX_FRAME_GAP_MS && (lo..=hi).contains(&d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use StreamKind::{Audio, Video};

    fn run(c: &mut PtsClock, frames: &[(StreamKind, u64)]) -> Vec<(u64, bool)> {
        frames
            .iter()
            .map(|&(k, raw)| {
                let (ms, note) = c.map(k, raw, 25);
                (ms, note.is_some())
            })
            .collect()
    }

    #[test]
    fn milliseconds_pass_unchanged() {
        let mut c = PtsClock::default();
        let got = run(
            &mut c,
            &[(Video, 1000), (Audio, 1010), (Video, 1040), (Video, 1080)],
        );
        assert_eq!(
            got,
            [(1000, false), (1010, false), (1040, false), (1080, false)]
        );
        assert_eq!(c.unit(), PtsUnit::Millis);
    }

    #[test]
    fn microseconds_are_detected_at_the_second_frame_and_scaled() {
        let mut c = PtsClock::default();
        let t0 = 3_600_000_000; // an hour after boot, in µs
        let got = run(
            &mut c,
            &[
                (Video, t0),
                (Video, t0 + 40_000),
                (Audio, t0 + 60_000),
                (Video, t0 + 80_000),
            ],
        );
        assert_eq!(
            got,
            [
                (t0, false),
                (t0 + 40, true),
                (t0 + 60, false),
                (t0 + 80, false)
            ]
        );
        assert_eq!(c.unit(), PtsUnit::Micros);
    }

    #[test]
    fn a_long_gap_later_in_a_stream_is_not_taken_for_microseconds() {
        let mut c = PtsClock::default();
        run(&mut c, &[(Video, 0), (Video, 40)]);
        let (ms, note) = c.map(Video, 40_080, 25);
        assert_eq!((ms, note.is_some()), (40_080, true), "a gap, logged");
        assert_eq!(c.unit(), PtsUnit::Millis);
    }

    #[test]
    fn a_32_bit_millisecond_counter_wraps_into_one_timeline() {
        let mut c = PtsClock::default();
        let got = run(
            &mut c,
            &[
                (Video, WRAP - 60),
                (Audio, 5),         // audio wraps first
                (Video, WRAP - 20), // stamped before the wrap, pushed after
                (Audio, 25),
                (Video, 20),
                (Video, 60),
            ],
        );
        assert_eq!(
            got,
            [
                (WRAP - 60, false),
                (WRAP + 5, true),
                (WRAP - 20, false),
                (WRAP + 25, false),
                (WRAP + 20, false),
                (WRAP + 60, false)
            ]
        );
    }

    #[test]
    fn a_wrapping_microsecond_counter_continues_too() {
        let mut c = PtsClock::default();
        let top = WRAP - 50_000;
        run(&mut c, &[(Video, top), (Video, top + 40_000)]);
        // 40 ms later the 32-bit µs counter is past 2^32.
        let (ms, note) = c.map(Video, 30_000, 25);
        assert_eq!(ms, top + 80, "{note:?}");
        assert!(note.is_some_and(|n| n.contains("wrapped")));
    }

    #[test]
    fn a_reset_to_zero_is_logged_and_left_to_the_pipeline() {
        let mut c = PtsClock::default();
        run(&mut c, &[(Video, 100_000), (Video, 100_040)]);
        let (ms, note) = c.map(Video, 0, 25);
        assert_eq!(ms, 0);
        assert!(note.is_some_and(|n| n.contains("new recording run")));
        assert_eq!(c.map(Video, 40, 25), (40, None));
    }
}
