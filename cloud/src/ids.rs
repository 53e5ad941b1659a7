//! Validation of the names clients choose: device ids, segment ids, event
//! keys, picture ids. They become parts of object keys and URLs, so only a
//! small safe alphabet is allowed: no `/`, no leading dot (hence no `..`),
//! no control bytes, bounded length.

use crate::error::{Error, Result};

/// Longest accepted id, in bytes.
pub const MAX_ID_LEN: usize = 96;

/// Checks that `id` is 1..=96 of `[A-Za-z0-9._-]`, starting with a letter or
/// digit; `what` names the id in the error.
pub fn check(what: &str, id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "{what} must be 1-{MAX_ID_LEN} characters of A-Z a-z 0-9 . _ - starting with a letter or digit"
        )))
    }
}

/// Channels an IP camera may have (the C API's five channel ids).
pub const CHANNELS: u32 = 5;

/// Checks a channel number.
pub fn check_channel(ch: u32) -> Result<()> {
    if ch < CHANNELS {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "channel must be 0-{}",
            CHANNELS - 1
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_safe_ids() {
        for id in [
            "cam1",
            "0-1700000000000-a1b2-17",
            "A.b_c-d",
            &"x".repeat(96),
        ] {
            assert!(check("id", id).is_ok(), "{id}");
        }
    }

    #[test]
    fn refuses_path_tricks_and_junk() {
        for id in [
            "",
            "..",
            "../etc",
            "/abs",
            "a/b",
            ".hidden",
            "a\\b",
            "a b",
            "é",
            "a\0",
            "-x",
            &"x".repeat(97),
        ] {
            assert!(check("id", id).is_err(), "{id:?}");
        }
    }
}
