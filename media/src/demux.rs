//! What the two segment demuxers ([`crate::ts_demux`], [`crate::fmp4_demux`])
//! share: the policy for damaged input and the record of damage seen.
//!
//! Stored segments are read back for playback and export long after they
//! were written; a flipped bit in one packet should usually cost one frame,
//! not the whole export. So damage is a policy ([`OnDamage`]) chosen by the
//! caller rather than a hidden special case.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use crate::{Error, Result};

/// Default cap on one frame's size (4 MiB, the engine's default frame
/// budget): a demuxer never buffers more than this per track.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 4 << 20;

/// What a demuxer does with damaged input (bad CRC, continuity gap, a
/// truncated or oversized frame, an unparseable header).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnDamage {
    /// Drop what is damaged (usually one frame), count it in
    /// [`DamageLog`], and go on with the next valid data.
    #[default]
    Skip,
    /// Return the first damage as an error ([`crate::ErrorKind::Malformed`]
    /// or [`crate::ErrorKind::TooLarge`]). For checks that want
    /// bit-exact input, e.g. verifying freshly written segments.
    Fail,
}

/// Damage a demuxer skipped under [`OnDamage::Skip`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DamageLog {
    /// Number of damage events (each dropped at most one frame or section,
    /// or a run of unsynchronised bytes).
    pub events: u64,
    /// The first event, with the byte offset where it was found.
    pub first: Option<Error>,
}

impl DamageLog {
    /// Applies `policy` to `err`: an error under [`OnDamage::Fail`], else
    /// counted (and kept if it is the first).
    pub(crate) fn record(&mut self, policy: OnDamage, err: Error) -> Result<()> {
        match policy {
            OnDamage::Fail => Err(err),
            OnDamage::Skip => {
                self.events = self.events.saturating_add(1);
                if self.first.is_none() {
                    self.first = Some(err);
                }
                Ok(())
            }
        }
    }
}
