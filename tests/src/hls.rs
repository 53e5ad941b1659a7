//! HLS media playlists written from `index.json`, the way the cloud would
//! serve the segments: for fMP4 each segment carries its own init section,
//! addressed with `#EXT-X-MAP:URI=..,BYTERANGE="init@0"` and the media part
//! with `#EXT-X-BYTERANGE:rest@init`. ffmpeg's hls demuxer then plays the
//! whole recording, which is how the checks decode fMP4 end to end.

use crate::index::Index;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The playlist text for `index` (segment URIs relative to its directory).
pub fn playlist(index: &Index) -> String {
    let fmp4 = index.container == "fmp4";
    let target = index
        .segments
        .iter()
        .map(|s| s.duration_ms().div_ceil(1000))
        .max()
        .unwrap_or(1)
        .max(1);
    let mut m = String::new();
    m.push_str("#EXTM3U\n");
    let _ = writeln!(m, "#EXT-X-VERSION:{}", if fmp4 { 7 } else { 4 });
    let _ = writeln!(m, "#EXT-X-TARGETDURATION:{target}");
    m.push_str("#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n");
    if !fmp4 {
        m.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    }
    for s in &index.segments {
        if fmp4 {
            let _ = writeln!(
                m,
                "#EXT-X-MAP:URI=\"{}\",BYTERANGE=\"{}@0\"",
                s.file, s.init_bytes
            );
        }
        let _ = writeln!(
            m,
            "#EXTINF:{}.{:03},",
            s.duration_ms() / 1000,
            s.duration_ms() % 1000
        );
        if fmp4 {
            let _ = writeln!(
                m,
                "#EXT-X-BYTERANGE:{}@{}",
                s.bytes - s.init_bytes,
                s.init_bytes
            );
        }
        let _ = writeln!(m, "{}", s.file);
    }
    m.push_str("#EXT-X-ENDLIST\n");
    m
}

/// Writes `playlist(index)` to `DIR/NAME` and returns the path.
pub fn write_playlist(dir: &Path, name: &str, index: &Index) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, playlist(index))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Segment;

    #[test]
    fn fmp4_playlist_has_per_segment_map_and_byteranges() {
        let seg = |i: u64, start: u64, end: u64| Segment {
            file: format!("seg-{i:05}.mp4"),
            index: i,
            utc_start_ms: start,
            utc_end_ms: end,
            pts_start_ms: start,
            pts_end_ms: end,
            seq_start: 0,
            seq_end: 0,
            bytes: 1000,
            init_bytes: 100,
            codec: "avc1.4D401E".into(),
            video_frames: 1,
            audio_frames: 0,
        };
        let idx = Index {
            format_version: 1,
            codec: "avc1.4D401E".into(),
            container: "fmp4".into(),
            segments: vec![seg(0, 0, 4000), seg(1, 4000, 6040)],
            extra: Default::default(),
        };
        let p = playlist(&idx);
        assert!(p.contains("#EXT-X-TARGETDURATION:4\n"), "{p}");
        assert!(p.contains("#EXT-X-MAP:URI=\"seg-00001.mp4\",BYTERANGE=\"100@0\"\n#EXTINF:2.040,\n#EXT-X-BYTERANGE:900@100\nseg-00001.mp4\n"), "{p}");
        assert!(p.ends_with("#EXT-X-ENDLIST\n"));
    }
}
