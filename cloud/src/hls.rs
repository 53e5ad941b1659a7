//! HLS VOD playlists for a time range of stored segments (RFC 8216):
//! EXT-X-PROGRAM-DATE-TIME on every segment, EXT-X-DISCONTINUITY at gaps,
//! wherever the codec or container changes and before a segment the device
//! marked (a new recording run or new encoding parameters), and for fMP4 an
//! EXT-X-MAP before every segment naming the init part of that segment's own
//! object by byte range: segments are self-contained, and two segments' init parts may
//! differ (a resolution change keeps the codec string), so sharing one map
//! would be a guess.

use crate::model::SegmentEntry;
use crate::time::write_rfc3339_ms;
use std::fmt::Write;

/// Segments further apart than this are a gap, ms.
pub const GAP_MS: u64 = 1000;

/// Renders a playlist. `url` appends the URL of a segment's object to the
/// string it is given (no allocation per segment: a day has 8,640).
pub fn playlist(segs: &[SegmentEntry], mut url: impl FnMut(&SegmentEntry, &mut String)) -> String {
    let target = segs
        .iter()
        .map(|s| duration_ms(s).div_ceil(1000))
        .max()
        .unwrap_or(1)
        .max(1);
    let fmp4 = segs.iter().any(|s| s.container == "fmp4");
    // Room for every line of a segment (a signed URL is ~150 bytes), so a
    // day's playlist (~2 MB) is not copied over and over as it grows.
    let per_segment = if fmp4 { 512 } else { 256 };
    let mut out = String::with_capacity(256 + segs.len() * per_segment);
    out.push_str("#EXTM3U\n");
    // Version 7: EXT-X-MAP in media playlists without I-frames-only.
    let _ = writeln!(out, "#EXT-X-VERSION:{}", if fmp4 { 7 } else { 3 });
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
    out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MEDIA-SEQUENCE:0\n");
    // Every video codec of the range, in order of appearance: a client
    // that cannot play one (HEVC in Chromium) can tell before loading.
    let mut codecs: Vec<&str> = Vec::new();
    for s in segs {
        if !codecs.contains(&s.codec.as_str()) {
            codecs.push(&s.codec);
        }
    }
    if !codecs.is_empty() {
        let _ = writeln!(out, "#EXT-X-IVCS-CODECS:\"{}\"", codecs.join(","));
    }
    let mut prev: Option<&SegmentEntry> = None;
    let mut u = String::new();
    for s in segs {
        u.clear();
        url(s, &mut u);
        if let Some(p) = prev {
            let gap = s.utc_start_ms.saturating_sub(p.utc_end_ms) > GAP_MS;
            if gap || s.discontinuity || p.codec != s.codec || p.container != s.container {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
        }
        if s.container == "fmp4" {
            let _ = writeln!(
                out,
                "#EXT-X-MAP:URI=\"{u}\",BYTERANGE=\"{}@0\"",
                s.init_bytes
            );
        }
        out.push_str("#EXT-X-PROGRAM-DATE-TIME:");
        write_rfc3339_ms(&mut out, s.utc_start_ms);
        out.push('\n');
        let d = duration_ms(s);
        let _ = writeln!(out, "#EXTINF:{}.{:03},", d / 1000, d % 1000);
        if s.container == "fmp4" {
            let _ = writeln!(
                out,
                "#EXT-X-BYTERANGE:{}@{}",
                s.bytes - u64::from(s.init_bytes),
                s.init_bytes
            );
        }
        out.push_str(&u);
        out.push('\n');
        prev = Some(s);
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

fn duration_ms(s: &SegmentEntry) -> u64 {
    s.utc_end_ms.saturating_sub(s.utc_start_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, codec: &str, start_ms: u64) -> SegmentEntry {
        SegmentEntry {
            segment_id: id.to_string(),
            container: "ts".to_string(),
            codec: codec.to_string(),
            utc_start_ms: start_ms,
            utc_end_ms: start_ms + 10_000,
            bytes: 1000,
            init_bytes: 0,
            discontinuity: false,
        }
    }

    /// A range that switches codec names both, and the switch is a
    /// discontinuity even without a time gap.
    /// A segment the device marked (a new recording run, a resolution
    /// change) is a discontinuity even with the same codec and no gap.
    #[test]
    fn a_new_recording_run_is_a_discontinuity() {
        let mut b = entry("b", "avc1.64001f", 10_000);
        b.discontinuity = true;
        let segs = [
            entry("a", "avc1.64001f", 0),
            b,
            entry("c", "avc1.64001f", 20_000),
        ];
        let text = playlist(&segs, |s, out| out.push_str(&s.segment_id));
        assert!(
            text.contains(
                "#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:10.000Z\n"
            ),
            "{text}"
        );
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY").count(), 1, "{text}");
    }

    #[test]
    fn every_codec_of_the_range_is_announced() {
        let segs = [
            entry("a", "avc1.64001f", 0),
            entry("b", "hvc1.1.6.L93.B0", 10_000),
            entry("c", "avc1.64001f", 20_000),
        ];
        let text = playlist(&segs, |s, out| out.push_str(&s.segment_id));
        assert!(
            text.contains("#EXT-X-IVCS-CODECS:\"avc1.64001f,hvc1.1.6.L93.B0\"\n"),
            "{text}"
        );
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY").count(), 2, "{text}");
    }
}
