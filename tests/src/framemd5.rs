//! ffmpeg's `framemd5` output: parsing, and comparing two frame-hash lists
//! (hash column and frame count only, so timestamps may differ).

use crate::tools;

/// One line of framemd5 output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameHash {
    /// Output stream index.
    pub stream: u32,
    /// Presentation timestamp in the stream's time base.
    pub pts: i64,
    /// Frame (or packet) size in bytes.
    pub size: u64,
    /// MD5 of the frame data.
    pub hash: String,
}

/// Parses framemd5 text: `stream, dts, pts, duration, size, hash[, side data]`
/// per line, `#` lines are headers.
pub fn parse(text: &str) -> Result<Vec<FrameHash>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let bad = || format!("framemd5 line {}: `{line}`", n + 1);
        if f.len() < 6 || f[5].len() != 32 || !f[5].bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        out.push(FrameHash {
            stream: f[0].parse().map_err(|_| bad())?,
            pts: f[2].parse().map_err(|_| bad())?,
            size: f[4].parse().map_err(|_| bad())?,
            hash: f[5].to_ascii_lowercase(),
        });
    }
    Ok(out)
}

/// The hashes of one stream, in order.
pub fn hashes_of(frames: &[FrameHash], stream: u32) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f.stream == stream)
        .map(|f| f.hash.clone())
        .collect()
}

/// Decoded-video frame hashes of an input (`input` is ffmpeg input
/// arguments, e.g. `["-i", path]`). Panics if ffmpeg fails.
pub fn video_hashes(input: &[String]) -> Vec<String> {
    let mut args: Vec<String> = vec!["-v".into(), "error".into()];
    args.extend(input.iter().cloned());
    args.extend(
        [
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            "-f",
            "framemd5",
            "-",
        ]
        .map(String::from),
    );
    let out = tools::ffmpeg(&args).expect_success();
    let frames = parse(&out.stdout_text()).unwrap_or_else(|e| panic!("{e} ({})", out.cmdline));
    hashes_of(&frames, 0)
}

/// AAC payload hashes (`-c copy -bsf:a aac_adtstoasc`, so ADTS headers are
/// stripped and TS/ADTS/MP4 carriage compare equal) of an input's first
/// audio stream.
pub fn aac_packet_hashes(input: &[String]) -> Vec<String> {
    let mut args: Vec<String> = vec!["-v".into(), "error".into()];
    args.extend(input.iter().cloned());
    args.extend(
        [
            "-map",
            "0:a:0",
            "-c",
            "copy",
            "-bsf:a",
            "aac_adtstoasc",
            "-f",
            "framemd5",
            "-",
        ]
        .map(String::from),
    );
    let out = tools::ffmpeg(&args).expect_success();
    let frames = parse(&out.stdout_text()).unwrap_or_else(|e| panic!("{e} ({})", out.cmdline));
    hashes_of(&frames, 0)
}

/// Compares frame-hash lists: same count and the same hash at every
/// position. The error names the first difference.
pub fn compare(what: &str, expected: &[String], actual: &[String]) -> Result<(), String> {
    if let Some(i) = expected.iter().zip(actual).position(|(a, b)| a != b) {
        return Err(format!(
            "{what}: frame {i} differs (expected {}, got {}); {} vs {} frames",
            expected[i],
            actual[i],
            expected.len(),
            actual.len()
        ));
    }
    if expected.len() != actual.len() {
        return Err(format!(
            "{what}: {} frames, expected {} (the common prefix matches)",
            actual.len(),
            expected.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "#format: frame checksums\n#version: 2\n#hash: MD5\n\
        #tb 0: 1/25\n#stream#, dts, pts, duration, size, hash\n\
        0,          0,          0,        1,   345600, 0123456789abcdef0123456789abcdef\n\
        1,          0,          0,     1024,     4096, fedcba9876543210fedcba9876543210, S=1, 8, 00000000000000000000000000000000\n\
        0,          1,          1,        1,   345600, 0123456789ABCDEF0123456789ABCDEE\n";

    #[test]
    fn parses_streams_and_side_data() {
        let f = parse(SAMPLE).unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f[1].stream, 1);
        assert_eq!(f[1].size, 4096);
        let v = hashes_of(&f, 0);
        assert_eq!(v[1], "0123456789abcdef0123456789abcdee");
        assert!(parse("0, 0, 0, 1, 2, nothex").is_err());
    }

    #[test]
    fn compare_reports_first_difference_and_count() {
        let a: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        assert!(compare("x", &a, &a).is_ok());
        let e = compare("x", &a, &a[..2]).unwrap_err();
        assert!(e.contains("2 frames, expected 3"), "{e}");
        let mut b = a.clone();
        b[1] = "z".into();
        assert!(
            compare("x", &a, &b)
                .unwrap_err()
                .contains("frame 1 differs")
        );
    }
}
