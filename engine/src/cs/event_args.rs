//! Checks of event arguments shared by every event call (`event-start`,
//! `event-stop`, their `_ext` forms, `event-report`): event ids, the `info`
//! text, and the relative/absolute time rule. All refusals are `-602`.

use crate::bail;
use crate::error::Result;

/// Event ids are 1..=32.
pub const EVENT_IDS: std::ops::RangeInclusive<i32> = 1..=32;

/// Longest `info`, bytes. The spec says "at most 128 bytes including the
/// terminating NUL" (127 characters); the cloud and this engine accept 128
/// characters, so a firmware that counted without the NUL is not refused.
pub const MAX_INFO_BYTES: usize = 128;

/// Times below this are relative (seconds before now), at or above it
/// absolute UTC seconds.
pub const RELATIVE_LIMIT_S: u32 = 300;

/// Checks an event id.
pub fn check_event_id(what: &str, event_id: i32) -> Result<()> {
    if !EVENT_IDS.contains(&event_id) {
        bail!(
            InvalidArgument,
            "{what}: event id {event_id} is outside 1..=32"
        );
    }
    Ok(())
}

/// Checks `info` and returns it as text: at most [`MAX_INFO_BYTES`] bytes of
/// printable ASCII (letters, digits, common symbols, space). A C string's
/// terminating NUL, if the host passed it along, is not part of the text.
pub fn check_info(what: &str, info: &[u8]) -> Result<String> {
    let mut info = info;
    while let Some(rest) = info.strip_suffix(&[0]) {
        info = rest;
    }
    if info.len() > MAX_INFO_BYTES {
        bail!(
            InvalidArgument,
            "{what}: info of {} bytes is longer than {MAX_INFO_BYTES}",
            info.len()
        );
    }
    if let Some(pos) = info.iter().position(|b| !(0x20..=0x7E).contains(b)) {
        bail!(
            InvalidArgument,
            "{what}: info byte {pos} (0x{:02x}) is not printable ASCII",
            info.get(pos).copied().unwrap_or(0)
        );
    }
    Ok(String::from_utf8_lossy(info).into_owned())
}

/// Resolves one time of an event call to UTC seconds: 0 = now, below
/// [`RELATIVE_LIMIT_S`] = that many seconds before now, otherwise absolute.
pub fn resolve_time(t: u32, now_utc_s: u64) -> u64 {
    if t < RELATIVE_LIMIT_S {
        now_utc_s.saturating_sub(u64::from(t))
    } else {
        u64::from(t)
    }
}

/// Resolves an `_ext` pair (event time, stream time) at `now_utc_ms` to
/// (event UTC s, stream UTC ms). Both must be relative or both absolute:
/// mixing them is refused, as the spec demands (some firmware does mix
/// them; it gets a range error, never a guess). A relative stream time
/// counts back from `now_utc_ms` itself, so the stream start of a
/// pre-record is exact to the millisecond, not to the second.
pub fn resolve_pair(
    what: &str,
    event_s: u32,
    stream_s: u32,
    now_utc_ms: u64,
) -> Result<(u64, u64)> {
    let rel = |t: u32| t < RELATIVE_LIMIT_S;
    if rel(event_s) != rel(stream_s) {
        bail!(
            InvalidArgument,
            "{what}: event time {event_s} and stream time {stream_s} mix relative (< {RELATIVE_LIMIT_S}) and absolute values"
        );
    }
    let stream_ms = if rel(stream_s) {
        now_utc_ms.saturating_sub(u64::from(stream_s) * 1000)
    } else {
        u64::from(stream_s) * 1000
    };
    Ok((resolve_time(event_s, now_utc_ms / 1000), stream_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_limits() {
        assert_eq!(
            check_info("t", b"motion zone=1").ok().as_deref(),
            Some("motion zone=1")
        );
        assert!(check_info("t", &[b'a'; 128]).is_ok());
        assert!(check_info("t", &[b'a'; 129]).is_err());
        assert!(check_info("t", "défaut".as_bytes()).is_err());
        assert!(check_info("t", b"tab\there").is_err());
        assert_eq!(check_info("t", b"abc\0").ok().as_deref(), Some("abc"));
        assert_eq!(check_info("t", b"").ok().as_deref(), Some(""));
    }

    #[test]
    fn event_ids() {
        assert!(check_event_id("t", 0).is_err());
        assert!(check_event_id("t", 1).is_ok());
        assert!(check_event_id("t", 32).is_ok());
        assert!(check_event_id("t", 33).is_err());
        assert!(check_event_id("t", -1).is_err());
    }

    #[test]
    fn times_relative_absolute_and_mixed() {
        let now = 1_700_000_000;
        let now_ms = now * 1000 + 640;
        assert_eq!(
            resolve_pair("t", 0, 15, now_ms).ok(),
            Some((now, now_ms - 15_000))
        );
        assert_eq!(
            resolve_pair("t", 1_699_999_990, 1_699_999_980, now_ms).ok(),
            Some((1_699_999_990, 1_699_999_980_000))
        );
        assert!(resolve_pair("t", 0, 1_699_999_980, now_ms).is_err());
        assert_eq!(resolve_time(299, now), now - 299);
        assert_eq!(resolve_time(300, now), 300);
    }
}
