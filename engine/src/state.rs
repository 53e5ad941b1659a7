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
//! A *checkpoint* (`export-checkpoint`, what a host restores after a trap)
//! has no media; a *hand-over* (`export-state`, for a hot swap) has it all,
//! so the next engine continues every upload and the open segment byte for
//! byte (docs/design/hot-swap.md). An engine that does not know `MDIA`
//! skips it and reports the segments failed, as after a checkpoint.
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
}

/// Writes a version-2 blob with the given sections (empty ones omitted),
/// then, if `media_len` > 0, an `MDIA` section of exactly that many bytes
/// that `fill` appends. The blob is allocated once, at its final size, and
/// an allocation the memory cap refuses is an error, not a trap.
pub fn write(
    sections: &[([u8; 4], &[u8])],
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
        v.extend_from_slice(&MDIA);
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

/// Checks a blob from `export-state` of this or an older engine and splits
/// it into sections.
pub fn read(blob: &[u8]) -> Result<Sections<'_>> {
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
        if !rest.is_empty() {
            bail!(
                InvalidArgument,
                "state format 1 has no body, got {} extra bytes",
                rest.len()
            );
        }
        return Ok(s);
    }
    while !rest.is_empty() {
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
            _ => {}
        }
        rest = rest.get(8 + len..).unwrap_or_default();
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_round_trip_and_unknown_ones_are_skipped() {
        let mut blob = write(&[(CTRL, b"{}"), (DATA, b"")], 0, |_| {}).unwrap();
        blob.extend_from_slice(b"XTRA\x01\x00\x00\x00z");
        let s = read(&blob).unwrap();
        assert_eq!(s.version, 2);
        assert_eq!(s.ctrl, Some(&b"{}"[..]));
        assert_eq!(s.data, None);
        assert_eq!(s.media, None);
        let blob = write(&[(CTRL, b"{}")], 3, |v| v.extend_from_slice(b"abc")).unwrap();
        assert_eq!(read(&blob).unwrap().media, Some(&b"abc"[..]));
        assert!(write(&[], 3, |v| v.push(1)).is_err(), "short media");
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
        assert!(read(b"IVST\x02\x00CTRL\x09\x00\x00\x00{}").is_err());
        assert!(read(b"IVST\x02\x00CT").is_err());
    }
}
