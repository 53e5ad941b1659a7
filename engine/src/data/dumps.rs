//! What the engine remembers of each segment it dumped through
//! `dump_file_cb`, so that `backup-upload` can send the file back as a
//! one-shot upload: the protocol needs the digest and length before the
//! body, and the segment's start and end fields, none of which can be
//! derived from the first bytes firmware hands back. A record is about 200
//! bytes; a channel keeps the last [`MAX_DUMPS`] (a bit over the cloud's
//! 30-minute backup window at 10 s segments).
//!
//! The alternative, parsing the file (TS or fMP4) while it streams in,
//! would still need the digest before the body: it would have to buffer
//! the whole file, which the budget does not allow.

use crate::events::Channel;
use crate::types::Container;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Records kept per channel.
pub const MAX_DUMPS: usize = 200;

/// One dumped segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpRecord {
    /// Bare file name given to firmware.
    pub file: String,
    /// Segment id.
    pub id: String,
    /// Channel.
    pub channel: Channel,
    /// Container.
    pub container: Container,
    /// RFC 6381 codec string.
    pub codec: String,
    /// Event segment (`event=1`).
    pub event: bool,
    /// Its timestamps or parameters do not continue the previous segment's
    /// (`discontinuity=1`; `SegmentInfo::discontinuity`).
    #[serde(default)]
    pub discontinuity: bool,
    /// UTC start, ms.
    pub utc_start_ms: u64,
    /// UTC end (exclusive), ms.
    pub utc_end_ms: u64,
    /// PTS start, ms.
    pub pts_start_ms: u64,
    /// PTS end (exclusive), ms.
    pub pts_end_ms: u64,
    /// First video seq.
    pub seq_start: u32,
    /// Last video seq.
    pub seq_end: u32,
    /// fMP4 init length.
    pub init_bytes: u32,
    /// Video frames.
    pub video_frames: u32,
    /// Audio frames.
    pub audio_frames: u32,
    /// Bytes.
    pub bytes: u64,
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

impl DumpRecord {
    /// The query of the segment's upload: start fields (and end fields
    /// when `with_end`).
    pub fn query(&self, with_end: bool) -> String {
        let c = match self.container {
            Container::Ts => "ts",
            Container::Fmp4 => "fmp4",
        };
        let mut q = format!(
            "channel={}&container={c}&codec={}&utc_start_ms={}&pts_start_ms={}&seq_start={}&init_bytes={}",
            self.channel,
            self.codec,
            self.utc_start_ms,
            self.pts_start_ms,
            self.seq_start,
            self.init_bytes
        );
        if self.event {
            q.push_str("&event=1");
        }
        if self.discontinuity {
            q.push_str("&discontinuity=1");
        }
        if with_end {
            q.push_str(&format!(
                "&utc_end_ms={}&pts_end_ms={}&seq_end={}&video_frames={}&audio_frames={}",
                self.utc_end_ms,
                self.pts_end_ms,
                self.seq_end,
                self.video_frames,
                self.audio_frames
            ));
        }
        q
    }
}

/// A channel's records, oldest first.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Dumps {
    recs: VecDeque<DumpRecord>,
}

impl Dumps {
    /// Remembers a dumped segment (forgetting the oldest beyond the cap).
    pub fn insert(&mut self, r: DumpRecord) {
        self.recs.retain(|x| x.file != r.file);
        self.recs.push_back(r);
        while self.recs.len() > MAX_DUMPS {
            self.recs.pop_front();
        }
    }

    /// The record of a file name.
    pub fn get(&self, file: &str) -> Option<&DumpRecord> {
        self.recs.iter().find(|r| r.file == file)
    }

    /// Every record.
    pub fn iter(&self) -> impl Iterator<Item = &DumpRecord> {
        self.recs.iter()
    }
}
