//! Names of what the data plane stores: segment ids (the cloud's key), the
//! file names `dump_file_cb` hands firmware (the segment id plus the
//! container's extension), event keys and picture ids.
//!
//! Segment id: `<channel>-<utc_start_ms>-<boot>-<n>`, where `boot` is 8 hex
//! digits drawn at `init` and `n` counts the channel's segments; unique
//! even after a backward clock step (the protocol's recommendation, with a
//! counter instead of the seq, which firmware may reset).
//!
//! [`parse_file_name`] is the only parser of text firmware gives back
//! (`backup-upload`'s file name); it refuses anything that is not exactly a
//! name this module made, so path tricks never reach the cloud or a lookup.

use crate::events::Channel;
use crate::types::Container;

/// Longest id the cloud accepts.
pub const MAX_ID_LEN: usize = 96;

/// The segment id of segment `n` of a channel.
pub fn segment_id(ch: Channel, utc_start_ms: u64, boot: u32, n: u64) -> String {
    format!("{ch}-{utc_start_ms}-{boot:08x}-{n}")
}

/// File extension of a container's segments.
pub fn extension(c: Container) -> &'static str {
    match c {
        Container::Ts => "ts",
        Container::Fmp4 => "mp4",
    }
}

/// The dump file name of a segment.
pub fn file_name(id: &str, c: Container) -> String {
    format!("{id}.{}", extension(c))
}

/// What a dump file name says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileName {
    /// The segment id (the name without its extension).
    pub segment_id: String,
    /// Channel.
    pub channel: Channel,
    /// UTC start, ms.
    pub utc_start_ms: u64,
    /// Boot id.
    pub boot: u32,
    /// Segment number.
    pub n: u64,
    /// Container from the extension.
    pub container: Container,
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // No leading zeros: one spelling per number.
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

/// Parses a name made by [`file_name`]; none for anything else (paths,
/// other extensions, non-canonical numbers, over-long names).
pub fn parse_file_name(name: &str) -> Option<FileName> {
    if name.len() > MAX_ID_LEN + 4 || !name.is_ascii() {
        return None;
    }
    let (id, ext) = name.rsplit_once('.')?;
    let container = match ext {
        "ts" => Container::Ts,
        "mp4" => Container::Fmp4,
        _ => return None,
    };
    let mut parts = id.split('-');
    let ch = digits(parts.next()?)?;
    let utc = digits(parts.next()?)?;
    let boot = parts.next()?;
    let n = digits(parts.next()?)?;
    if parts.next().is_some()
        || boot.len() != 8
        || !boot
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let channel = Channel::try_from(ch).ok().filter(|c| *c < 5)?;
    let f = FileName {
        segment_id: id.to_string(),
        channel,
        utc_start_ms: utc,
        boot: u32::from_str_radix(boot, 16).ok()?,
        n,
        container,
    };
    // Canonical: it must be exactly what `file_name` writes.
    (file_name(&segment_id(channel, utc, f.boot, n), container) == name).then_some(f)
}

/// Key of an event with video.
pub fn event_key(ch: Channel, event_id: i32, utc_ms: u64, boot: u32, n: u64) -> String {
    format!("e{ch}-{event_id}-{utc_ms}-{boot:08x}-{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        let id = segment_id(3, 1_700_000_000_123, 0xdead_beef, 42);
        assert_eq!(id, "3-1700000000123-deadbeef-42");
        for c in [Container::Ts, Container::Fmp4] {
            let name = file_name(&id, c);
            let f = parse_file_name(&name).unwrap();
            assert_eq!(f.segment_id, id);
            assert_eq!(
                (f.channel, f.utc_start_ms, f.boot, f.n, f.container),
                (3, 1_700_000_000_123, 0xdead_beef, 42, c)
            );
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "a.ts",
            "../0-1-deadbeef-1.ts",
            "/tmp/0-1-deadbeef-1.ts",
            "0-1-deadbeef-1",
            "0-1-deadbeef-1.mkv",
            "0-01-deadbeef-1.ts",
            "0-1-DEADBEEF-1.ts",
            "0-1-deadbee-1.ts",
            "5-1-deadbeef-1.ts",
            "0-1-deadbeef-1-2.ts",
            "0-1-deadbeef-1.ts.ts",
            "0-1-deadbeef-+1.ts",
            "0-99999999999999999999999-deadbeef-1.ts",
            "0-1-deadbeef-1.ts\0",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad:?}");
        }
    }
}
