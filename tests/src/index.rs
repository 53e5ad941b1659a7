//! `index.json`, the description `ivcs mux` writes next to its segments,
//! as serde types. Unknown top-level fields are kept in `extra` (e.g.
//! `segment_ms`, `refused_frames`) so the checks can look at them.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// The whole file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Index {
    /// Always 1 for now.
    pub format_version: u32,
    /// RFC 6381 codec string of the video, e.g. `avc1.4D401E`.
    pub codec: String,
    /// `ts` or `fmp4`.
    pub container: String,
    /// One entry per segment file, in order.
    pub segments: Vec<Segment>,
    /// Any other top-level fields.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// One segment.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Segment {
    /// File name relative to the output directory (`seg-00000.ts`).
    pub file: String,
    /// 0-based position.
    pub index: u64,
    /// Wall-clock time of the first frame (ms since 1970).
    pub utc_start_ms: u64,
    /// Wall-clock end, exclusive.
    pub utc_end_ms: u64,
    /// PTS of the first video frame, ms.
    pub pts_start_ms: u64,
    /// PTS where the next segment starts (end-exclusive), ms.
    pub pts_end_ms: u64,
    /// Sequence number of the first video frame.
    pub seq_start: u64,
    /// Sequence number of the last video frame (inclusive).
    pub seq_end: u64,
    /// File size.
    pub bytes: u64,
    /// Length of the leading ftyp+moov of an fMP4 segment; 0 for TS.
    pub init_bytes: u64,
    /// Codec string of this segment.
    pub codec: String,
    /// Number of video access units.
    pub video_frames: u64,
    /// Number of AAC frames.
    pub audio_frames: u64,
}

impl Segment {
    /// Duration from the PTS range, ms.
    pub fn duration_ms(&self) -> u64 {
        self.pts_end_ms.saturating_sub(self.pts_start_ms)
    }
}

impl Index {
    /// Reads and parses `DIR/index.json`.
    pub fn load(dir: &Path) -> Result<Index, String> {
        let path = dir.join("index.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a valid index: {e}", path.display()))
    }

    /// Writes `DIR/index.json` (used by the self-tests to describe ffmpeg's
    /// own segments).
    pub fn save(&self, dir: &Path) {
        let path = dir.join("index.json");
        let text = serde_json::to_string_pretty(self).expect("index serializes");
        std::fs::write(&path, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
}
