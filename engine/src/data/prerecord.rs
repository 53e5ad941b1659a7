//! Pre-record: the recent frames of a channel whose plan records events
//! only, kept while no event is open so that an event can start its video
//! before the call (`stream_start_time_s`).
//!
//! The ring holds pushed frames as they came (not muxed: the muxer state
//! of a segment cannot start mid-way), whole GOPs only: it always starts at
//! an IDR, and it is trimmed a GOP at a time from the front when it is
//! older than [`MAX_PRERECORD_MS`] or larger than the room the channel's
//! budget leaves it. When an event starts, the frames from the last IDR at
//! or before the requested start are replayed into a new recording run.

use crate::types::{Frame, FrameType, StreamKind};
use std::collections::VecDeque;

/// Longest pre-record kept, ms. The spec's examples use 15 s; relative
/// times go up to 300 s, but a camera's budget holds a few seconds anyway.
pub const MAX_PRERECORD_MS: u64 = 60_000;

/// A frame held for pre-record.
#[derive(Clone, Debug)]
pub struct Held {
    /// Audio or video.
    pub kind: StreamKind,
    /// Whether it is an IDR (video).
    pub key: bool,
    /// PTS, ms.
    pub pts_ms: u64,
    /// Seq.
    pub seq: u32,
    /// Device UTC when it was pushed, ms.
    pub utc_ms: u64,
    /// Bytes.
    pub data: Vec<u8>,
}

impl Held {
    /// The frame as the pipeline takes it.
    pub fn frame(&self) -> Frame<'_> {
        Frame {
            kind: self.kind,
            frame_type: if self.key { FrameType::I } else { FrameType::P },
            pts_ms: self.pts_ms,
            seq: self.seq,
            data: &self.data,
        }
    }
}

/// See the module docs.
#[derive(Default)]
pub struct PreRecord {
    frames: VecDeque<Held>,
    bytes: u64,
}

impl PreRecord {
    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The frames held, oldest first.
    pub fn frames(&self) -> impl Iterator<Item = &Held> {
        self.frames.iter()
    }

    /// A ring holding `frames` as another engine kept them (hand-over).
    pub fn restored(frames: Vec<Held>) -> PreRecord {
        PreRecord {
            bytes: frames.iter().map(|f| f.data.len() as u64).sum(),
            frames: frames.into(),
        }
    }

    /// Whether it holds an IDR (a P frame may follow only then).
    pub fn has_key(&self) -> bool {
        self.frames.front().is_some_and(|f| f.key)
    }

    /// Adds a frame (audio before the first IDR is not kept); then trims to
    /// `room` bytes and [`MAX_PRERECORD_MS`] before `now_utc_ms`.
    /// Returns false when a P frame has no IDR to follow.
    pub fn push(&mut self, f: Held, room: u64, now_utc_ms: u64) -> bool {
        if !self.has_key() && !f.key {
            return f.kind == StreamKind::Audio;
        }
        self.bytes = self.bytes.saturating_add(f.data.len() as u64);
        self.frames.push_back(f);
        self.trim(room, now_utc_ms.saturating_sub(MAX_PRERECORD_MS));
        true
    }

    /// Drops whole GOPs from the front while over `room` bytes or while the
    /// second GOP already starts at or before `oldest_utc_ms`. A single GOP
    /// over `room` is dropped whole (nothing is kept).
    pub fn trim(&mut self, room: u64, oldest_utc_ms: u64) {
        loop {
            let next_key = self.frames.iter().skip(1).position(|f| f.key);
            let old = next_key
                .and_then(|i| self.frames.get(i + 1))
                .is_some_and(|f| f.utc_ms <= oldest_utc_ms);
            if self.bytes <= room && !old {
                return;
            }
            let n = next_key.map_or(self.frames.len(), |i| i + 1);
            for f in self.frames.drain(..n) {
                self.bytes = self.bytes.saturating_sub(f.data.len() as u64);
            }
            if self.frames.is_empty() {
                return;
            }
        }
    }

    /// Takes the frames from the last IDR pushed at or before `from_utc_ms`
    /// (or the first IDR held, if all are later); empties the ring.
    pub fn take_from(&mut self, from_utc_ms: u64) -> Vec<Held> {
        let start = self
            .frames
            .iter()
            .enumerate()
            .rfind(|(_, f)| f.key && f.utc_ms <= from_utc_ms)
            .map(|(i, _)| i)
            .unwrap_or(0);
        let mut all: Vec<Held> = std::mem::take(&mut self.frames).into();
        self.bytes = 0;
        all.drain(..start.min(all.len()));
        all
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(key: bool, t: u64) -> Held {
        Held {
            kind: StreamKind::Video,
            key,
            pts_ms: t,
            seq: t as u32,
            utc_ms: 1_000_000 + t,
            data: vec![0; 100],
        }
    }

    #[test]
    fn starts_at_an_idr_and_trims_whole_gops() {
        let mut r = PreRecord::default();
        assert!(!r.push(v(false, 0), 10_000, 1_000_000), "P before any IDR");
        for t in 0..30 {
            assert!(r.push(v(t % 10 == 0, t * 100), 10_000, 1_000_000 + t * 100));
        }
        assert_eq!(r.bytes(), 3000);
        r.trim(2500, 0);
        assert_eq!(r.bytes(), 2000, "one GOP dropped");
        assert!(r.has_key());
        let got = r.take_from(1_000_000 + 2500);
        assert_eq!(got.first().map(|f| f.pts_ms), Some(2000));
        assert_eq!(got.len(), 10);
        assert_eq!(r.bytes(), 0);
    }

    #[test]
    fn old_gops_age_out_and_an_oversized_gop_is_dropped() {
        let mut r = PreRecord::default();
        for t in 0..100 {
            r.push(v(t % 10 == 0, t * 1000), 1 << 20, 1_000_000 + t * 1000);
        }
        // Kept: GOPs whose successor starts after now - 60 s.
        let first = r.take_from(0);
        assert_eq!(first.first().map(|f| f.pts_ms), Some(30_000));
        for t in 0..5 {
            r.push(v(t == 0, t), 300, 1_000_000);
        }
        assert_eq!(r.bytes(), 0, "a GOP larger than the room is not kept");
    }
}
