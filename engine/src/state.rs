//! The engine's exportable state: what a host moves to a new engine version
//! (hot swap) or back into a fresh instance after a trap.
//!
//! Format: magic `IVST`, a little-endian u16 format version, then the body.
//! Version 1 has an empty body: this engine build keeps no iv_cs state yet
//! (channels, events and buffered bytes arrive with the libivcs issue, and
//! will be added as version 2 with an upgrade path from 1).

use crate::bail;
use crate::error::Result;

const MAGIC: &[u8; 4] = b"IVST";

/// Newest state format this engine writes and reads.
pub const STATE_VERSION: u16 = 1;

/// Serialises the current state.
pub fn export() -> Vec<u8> {
    let mut v = Vec::with_capacity(6);
    v.extend_from_slice(MAGIC);
    v.extend_from_slice(&STATE_VERSION.to_le_bytes());
    v
}

/// Checks and applies a state blob from `export` of this or an older engine.
pub fn import(blob: &[u8]) -> Result<()> {
    let (Some(magic), Some(ver)) = (blob.get(..4), blob.get(4..6)) else {
        bail!(
            InvalidArgument,
            "state blob of {} bytes is too short",
            blob.len()
        );
    };
    if magic != MAGIC {
        bail!(InvalidArgument, "state blob has no IVST magic");
    }
    let ver = u16::from_le_bytes([
        ver.first().copied().unwrap_or(0),
        ver.get(1).copied().unwrap_or(0),
    ]);
    if ver == 0 || ver > STATE_VERSION {
        bail!(
            InvalidArgument,
            "state format {ver} is not supported (this engine reads 1..={STATE_VERSION})"
        );
    }
    if blob.len() != 6 {
        bail!(
            InvalidArgument,
            "state format 1 has no body, got {} extra bytes",
            blob.len() - 6
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_state_imports() {
        assert!(import(&export()).is_ok());
    }

    #[test]
    fn foreign_or_newer_state_is_refused() {
        assert!(import(b"").is_err());
        assert!(import(b"XXXX\x01\x00").is_err());
        assert!(import(b"IVST\x02\x00").is_err());
        assert!(import(b"IVST\x01\x00junk").is_err());
    }
}
