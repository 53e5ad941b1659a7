//! The engine's exportable state format: what a host moves to a new engine
//! version (hot swap) or back into a fresh instance after a trap.
//!
//! Layout: magic `IVST`, a little-endian u16 format version, then (version
//! 2) a sequence of sections, each a 4-byte tag, a little-endian u32 length
//! and that many bytes:
//!
//! - `CTRL`: the control plane (JSON, see `cs::saved`): configuration
//!   check, timeouts, plan cache and revision, reachability, operations,
//!   the `init` session, undelivered host events.
//! - `DATA`: the data plane's section (JSON, see `data::mod`): segment and
//!   event numbering, acknowledged segment ids, dump records for backups,
//!   unacknowledged segments, unfinished events; in a hand-over, also
//!   each channel's open recording (pipeline, muxer and encoder state) and
//!   the metadata of the buffered media below.
//! - `MDIA` (hand-over only, last): the buffered media bytes themselves,
//!   channel after channel in the order `DATA` lists them (segments not
//!   acknowledged, then pre-record frames). Raw, because it is most of the
//!   blob: written once, straight into the blob, and read in place.
//!
//! - `MJNL` (checkpoint only, last): the media a restart point adds to the
//!   last hand-over: per segment `DATA` lists, its bytes from the offset the
//!   hand-over held (`from`) on, in listing order.
//!
//! A *hand-over* (`export-state`, for a hot swap) has all the media, so the
//! next engine continues every upload and the open segment byte for byte
//! (docs/design/hot-swap.md). A *checkpoint* (`export-checkpoint`) has the
//! media produced since the last hand-over (none if there was none): a host
//! that keeps its last hand-over as a base and the last checkpoint after it
//! restores both, concatenated, after a trap ([`read_chain`];
//! docs/design/trap-restart.md). An engine that does not know `MDIA` or
//! `MJNL` skips them and reports the segments failed.
//!
//! Readers skip sections they do not know, so a section can be added
//! without a new version. Version 1 (no body) is what engine 0.1.0 wrote;
//! it still imports (there is nothing to restore).

use crate::bail;
use crate::error::Result;

const MAGIC: &[u8; 4] = b"IVST";

/// Newest state format this engine writes and reads.
pub const STATE_VERSION: u16 = 2;

/// Tag of the control-plane section.
pub const CTRL: [u8; 4] = *b"CTRL";
/// Tag of the data-plane section.
pub const DATA: [u8; 4] = *b"DATA";
/// Tag of the buffered media section.
pub const MDIA: [u8; 4] = *b"MDIA";
/// Tag of a checkpoint's media since the last hand-over.
pub const MJNL: [u8; 4] = *b"MJNL";

/// Sections read from a blob, borrowed from it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sections<'a> {
    /// Format version of the blob.
    pub version: u16,
    /// `CTRL`, if present.
    pub ctrl: Option<&'a [u8]>,
    /// `DATA`, if present.
    pub data: Option<&'a [u8]>,
    /// `MDIA`, if present.
    pub media: Option<&'a [u8]>,
    /// `MJNL`, if present.
    pub journal: Option<&'a [u8]>,
}

/// Writes a version-2 blob with the given sections (empty ones omitted),
/// then, if `media_len` > 0, a `media_tag` section (`MDIA` or `MJNL`) of
/// exactly that many bytes that `fill` appends. The blob is allocated once,
/// at its final size, and an allocation the memory cap refuses is an error,
/// not a trap.
pub fn write(
    sections: &[([u8; 4], &[u8])],
    media_tag: [u8; 4],
    media_len: usize,
    fill: impl FnOnce(&mut Vec<u8>),
) -> Result<Vec<u8>> {
    let media_part = if media_len > 0 { 8 + media_len } else { 0 };
    let total = 6 + sections.iter().map(|(_, b)| 8 + b.len()).sum::<usize>() + media_part;
    let mut v = Vec::new();
    if v.try_reserve_exact(total).is_err() {
        bail!(
            OutOfMemory,
            "export-state: no memory for a state blob of {total} bytes"
        );
    }
    v.extend_from_slice(MAGIC);
    v.extend_from_slice(&STATE_VERSION.to_le_bytes());
    for (tag, body) in sections {
        if body.is_empty() {
            continue;
        }
        let Ok(len) = u32::try_from(body.len()) else {
            bail!(
                OutOfMemory,
                "state section {} of {} bytes exceeds 4 GiB",
                String::from_utf8_lossy(tag),
                body.len()
            );
        };
        v.extend_from_slice(tag);
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(body);
    }
    if media_len > 0 {
        let Ok(len) = u32::try_from(media_len) else {
            bail!(
                OutOfMemory,
                "media section of {media_len} bytes exceeds 4 GiB"
            );
        };
        v.extend_from_slice(&media_tag);
        v.extend_from_slice(&len.to_le_bytes());
        let at = v.len();
        fill(&mut v);
        if v.len() - at != media_len {
            bail!(
                InvalidArgument,
                "export-state: media section came out at {} bytes, not {media_len}",
                v.len() - at
            );
        }
    }
    Ok(v)
}

/// Splits what a host hands `import-state`: one blob, or a hand-over
/// followed by a checkpoint (each starts with the magic, which no section
/// tag is). Hosts of engines before the journal hand over one blob.
pub fn read_chain(mut blob: &[u8]) -> Result<Vec<Sections<'_>>> {
    let mut out = Vec::new();
    loop {
        let (s, rest) = read_one(blob)?;
        out.push(s);
        if rest.is_empty() {
            return Ok(out);
        }
        if out.len() >= 2 {
            bail!(
                InvalidArgument,
                "state: more than a hand-over and a checkpoint ({} bytes more)",
                rest.len()
            );
        }
        blob = rest;
    }
}

/// Checks a blob from `export-state` of this or an older engine and splits
/// it into sections.
pub fn read(blob: &[u8]) -> Result<Sections<'_>> {
    let (s, rest) = read_one(blob)?;
    if !rest.is_empty() {
        bail!(
            InvalidArgument,
            "state blob: {} bytes after its end",
            rest.len()
        );
    }
    Ok(s)
}

/// One blob from the start of `blob`, and what follows it (another blob).
fn read_one(blob: &[u8]) -> Result<(Sections<'_>, &[u8])> {
    let (Some(magic), Some(&[a, b])) = (blob.get(..4), blob.get(4..6)) else {
        bail!(
            InvalidArgument,
            "state blob of {} bytes is too short",
            blob.len()
        );
    };
    if magic != MAGIC {
        bail!(InvalidArgument, "state blob has no IVST magic");
    }
    let version = u16::from_le_bytes([a, b]);
    if version == 0 || version > STATE_VERSION {
        bail!(
            InvalidArgument,
            "state format {version} is not supported (this engine reads 1..={STATE_VERSION})"
        );
    }
    let mut rest = blob.get(6..).unwrap_or_default();
    let mut s = Sections {
        version,
        ..Sections::default()
    };
    if version == 1 {
        if !rest.is_empty() && !rest.starts_with(MAGIC) {
            bail!(
                InvalidArgument,
                "state format 1 has no body, got {} extra bytes",
                rest.len()
            );
        }
        return Ok((s, rest));
    }
    while !rest.is_empty() && !rest.starts_with(MAGIC) {
        let (Some(tag), Some(len)) = (rest.get(..4), rest.get(4..8)) else {
            bail!(InvalidArgument, "state blob: truncated section header");
        };
        let len = u32::from_le_bytes([
            len.first().copied().unwrap_or(0),
            len.get(1).copied().unwrap_or(0),
            len.get(2).copied().unwrap_or(0),
            len.get(3).copied().unwrap_or(0),
        ]) as usize;
        let Some(body) = rest.get(8..8usize.saturating_add(len)) else {
            bail!(
                InvalidArgument,
                "state blob: section {} claims {len} bytes, {} remain",
                String::from_utf8_lossy(tag),
                rest.len().saturating_sub(8)
            );
        };
        match <[u8; 4]>::try_from(tag) {
            Ok(CTRL) => s.ctrl = Some(body),
            Ok(DATA) => s.data = Some(body),
            Ok(MDIA) => s.media = Some(body),
            Ok(MJNL) => s.journal = Some(body),
            _ => {}
        }
        rest = rest.get(8 + len..).unwrap_or_default();
    }
    Ok((s, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_round_trip_and_unknown_ones_are_skipped() {
        let mut blob = write(&[(CTRL, b"{}"), (DATA, b"")], MDIA, 0, |_| {}).unwrap();
        blob.extend_from_slice(b"XTRA\x01\x00\x00\x00z");
        let s = read(&blob).unwrap();
        assert_eq!(s.version, 2);
        assert_eq!(s.ctrl, Some(&b"{}"[..]));
        assert_eq!(s.data, None);
        assert_eq!(s.media, None);
        let blob = write(&[(CTRL, b"{}")], MDIA, 3, |v| v.extend_from_slice(b"abc")).unwrap();
        assert_eq!(read(&blob).unwrap().media, Some(&b"abc"[..]));
        assert!(write(&[], MDIA, 3, |v| v.push(1)).is_err(), "short media");
    }

    #[test]
    fn a_hand_over_and_a_checkpoint_read_as_a_chain() {
        let base = write(&[(CTRL, b"{}")], MDIA, 2, |v| v.extend_from_slice(b"ab")).unwrap();
        let delta = write(&[(CTRL, b"[]")], MJNL, 1, |v| v.push(b'c')).unwrap();
        let both = [base.clone(), delta.clone()].concat();
        let chain = read_chain(&both).unwrap();
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[0].media, Some(&b"ab"[..]));
        assert_eq!(chain[1].ctrl, Some(&b"[]"[..]));
        assert_eq!(chain[1].journal, Some(&b"c"[..]));
        assert_eq!(read_chain(&base).unwrap().len(), 1);
        assert!(read(&both).is_err(), "one blob expected");
        assert!(read_chain(&[both.as_slice(), &delta].concat()).is_err());
    }

    #[test]
    fn version_1_still_reads() {
        assert_eq!(read(b"IVST\x01\x00").unwrap().version, 1);
    }

    #[test]
    fn foreign_truncated_or_newer_state_is_refused() {
        assert!(read(b"").is_err());
        assert!(read(b"XXXX\x01\x00").is_err());
        assert!(read(b"IVST\x03\x00").is_err());
        assert!(read(b"IVST\x01\x00junk").is_err());
        assert!(read_chain(b"IVST\x01\x00IVST").is_err());
        assert!(read(b"IVST\x02\x00CTRL\x09\x00\x00\x00{}").is_err());
        assert!(read(b"IVST\x02\x00CT").is_err());
    }
}
