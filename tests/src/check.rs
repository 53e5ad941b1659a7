//! The checks of one `ivcs mux` output directory against its inputs, named
//! after the test plan:
//!
//! - (a) every segment probes and decodes without a single ffmpeg warning;
//! - (b) the video decodes to the source's frames (framemd5 hashes and
//!   count): each segment alone, and the whole recording (TS byte-concatenated,
//!   fMP4 through an HLS playlist with per-segment `EXT-X-MAP` byte ranges);
//! - (c) audio: AAC-LC at the source rate and channel count, present in
//!   every segment, in sync with the video, lasting min(video, audio) within
//!   one AAC frame (two when encoded, for the encoder delay), bit-exact AAC
//!   frames when passed through, and the source's tones at the source's level;
//! - (d) every segment starts with an IDR (ffprobe's first frame, and the
//!   NAL types of the first access unit, with parameter sets in TS);
//! - (e) segment durations, from index.json and from ffprobe, in
//!   [target, target + GOP] except the last, cut exactly at the first IDR at
//!   or after the target, with continuous timestamps across segments;
//! - (f) index.json is consistent with itself, the files and the codec
//!   string of the source SPS / ffprobe's profile and level;
//! - (s) container structure (TS packets and PAT, fMP4 box layout and
//!   `init_bytes`, sample entry codec string).
//!
//! [`check_output`] runs them all and collects every failure in a
//! [`Report`], so one failing test says everything that is wrong.

use crate::annexb;
use crate::audio;
use crate::cli::{self, Mux};
use crate::fixtures::{AudioFixture, VideoFixture};
use crate::framemd5;
use crate::hls;
use crate::index::{Index, Segment};
use crate::mp4;
use crate::tools::{self, p};
use crate::ts;
use crate::{Container, VideoCodec};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Timestamp tolerance for comparisons of ms-rounded PTS with 90 kHz or
/// media-timescale timestamps, seconds.
const TS_TOL_S: f64 = 0.0015;

/// What the output of a run should look like.
#[derive(Clone, Copy, Debug)]
pub struct Expect<'a> {
    /// The video input.
    pub video: &'a VideoFixture,
    /// The audio input, if any.
    pub audio: Option<&'a AudioFixture>,
    /// The container.
    pub container: Container,
    /// Target segment duration, ms.
    pub target_ms: u64,
    /// `--start-utc-ms` if it was given: then `utc_* = start + pts_*`.
    pub start_utc_ms: Option<u64>,
}

impl<'a> From<&Mux<'a>> for Expect<'a> {
    fn from(m: &Mux<'a>) -> Self {
        Expect {
            video: m.video,
            audio: m.audio,
            container: m.container,
            target_ms: m.target_ms(),
            start_utc_ms: Some(cli::START_UTC_MS),
        }
    }
}

/// Everything that was wrong, each message prefixed with its check letter.
#[derive(Debug, Default)]
pub struct Report {
    /// Failure messages.
    pub failures: Vec<String>,
    /// Number of segments in index.json.
    pub segments: usize,
}

impl Report {
    fn fail(&mut self, check: &str, msg: impl AsRef<str>) {
        self.failures.push(format!("({check}) {}", msg.as_ref()));
    }

    /// Whether some failure message contains `needle`.
    pub fn mentions(&self, needle: &str) -> bool {
        self.failures.iter().any(|f| f.contains(needle))
    }

    /// Panics listing every failure, if there is any.
    pub fn assert_ok(&self, dir: &Path) {
        assert!(
            self.failures.is_empty(),
            "{} problem(s) in {}:\n  - {}",
            self.failures.len(),
            dir.display(),
            self.failures.join("\n  - ")
        );
    }
}

/// The frame indices where segments must start: 0, then for each segment
/// the first IDR whose PTS is at least `target_ms` after the segment's first
/// PTS (PTS = i * 1000 / fps ms, IDRs every `gop_frames`).
pub fn expected_cuts(video: &VideoFixture, target_ms: u64) -> Vec<u64> {
    let pts = |i: u64| i * 1000 / u64::from(video.fps);
    let gop = u64::from(video.gop_frames);
    let mut cuts = vec![0u64];
    loop {
        let start = *cuts.last().expect("non-empty");
        let mut k = (start / gop + 1) * gop;
        while pts(k) - pts(start) < target_ms {
            k += gop;
        }
        if k >= u64::from(video.frames) {
            return cuts;
        }
        cuts.push(k);
    }
}

/// Hash lists computed once per process, keyed by (what, fixture file).
fn cached(
    key: (&'static str, &'static str),
    compute: impl FnOnce() -> Vec<String>,
) -> Arc<Vec<String>> {
    type Cache = HashMap<(&'static str, &'static str), Arc<Vec<String>>>;
    static CACHE: Mutex<Option<Cache>> = Mutex::new(None);
    if let Some(h) = CACHE
        .lock()
        .expect("cache")
        .get_or_insert_with(HashMap::new)
        .get(&key)
    {
        return h.clone();
    }
    let h = Arc::new(compute());
    CACHE
        .lock()
        .expect("cache")
        .get_or_insert_with(HashMap::new)
        .insert(key, h.clone());
    h
}

/// Decoded video hashes of a fixture, computed once per process.
pub fn source_video_hashes(video: &VideoFixture) -> Arc<Vec<String>> {
    cached(("video", video.file), || {
        let h = framemd5::video_hashes(&video.ffmpeg_input());
        assert_eq!(
            h.len(),
            video.frames as usize,
            "fixture {} decodes to {} frames, the catalogue says {}",
            video.file,
            h.len(),
            video.frames
        );
        h
    })
}

/// AAC packet hashes of an AAC fixture (see
/// [`framemd5::aac_packet_hashes`]), computed once per process.
pub fn source_aac_hashes(audio: &AudioFixture) -> Arc<Vec<String>> {
    cached(("aac", audio.file), || {
        framemd5::aac_packet_hashes(&audio.ffmpeg_input())
    })
}

/// What ffprobe/ffmpeg saw in one segment.
#[derive(Debug, Default)]
struct SegProbe {
    video_pts: Vec<f64>,
    audio_pts: Vec<f64>,
    video_hashes: Vec<String>,
    audio_rate: Option<u32>,
}

/// The first lines of a tool's stderr, for a failure message.
fn brief(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.trim().lines().collect();
    if lines.len() <= 4 {
        lines.join(" | ")
    } else {
        format!("{} | ... ({} lines)", lines[..4].join(" | "), lines.len())
    }
}

fn rational(v: &Value) -> Option<f64> {
    let s = v.as_str()?;
    let (n, d) = s.split_once('/')?;
    let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
    (d != 0.0).then_some(n / d)
}

fn json_u64(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str()?.parse().ok())
}

/// `(profile_idc, level_idc)` from a codec string (`avc1.4D401E` -> (77, 30),
/// `hvc1.1.6.L63.B0` -> (1, 63)).
pub fn profile_level(codec: &str) -> Option<(u32, u32)> {
    let (kind, rest) = codec.split_once('.')?;
    match kind {
        "avc1" | "avc3" => {
            if rest.len() != 6 {
                return None;
            }
            let pr = u32::from_str_radix(&rest[0..2], 16).ok()?;
            let lv = u32::from_str_radix(&rest[4..6], 16).ok()?;
            Some((pr, lv))
        }
        "hvc1" | "hev1" => {
            let mut parts = rest.split('.');
            let pr = parts
                .next()?
                .trim_start_matches(['A', 'B', 'C'])
                .parse()
                .ok()?;
            let _compat = parts.next()?;
            let lv = parts.next()?.get(1..)?.parse().ok()?;
            Some((pr, lv))
        }
        _ => None,
    }
}

/// Runs every check on `dir` (an `ivcs mux --out` directory).
pub fn check_output(exp: &Expect<'_>, dir: &Path) -> Report {
    tools::require_ffmpeg();
    let mut r = Report::default();
    let index = match Index::load(dir) {
        Ok(i) => i,
        Err(e) => {
            r.fail("f", e);
            return r;
        }
    };
    r.segments = index.segments.len();
    let expected_codec = {
        let src = std::fs::read(exp.video.path()).expect("fixture readable");
        annexb::codec_string(exp.video.codec, &src).expect("fixture has an SPS")
    };
    check_index(exp, dir, &index, &expected_codec, &mut r);
    if index.segments.is_empty() || r.mentions("missing segment file") {
        return r;
    }
    let probes: Vec<SegProbe> = index
        .segments
        .iter()
        .map(|s| probe_segment(exp, dir, s, &index, &mut r))
        .collect();
    check_timing(exp, &index, &probes, &mut r);
    let concat = concatenation(exp, dir, &index);
    check_video(exp, &index, &probes, &concat, &mut r);
    check_audio(exp, &index, &probes, &concat, &mut r);
    r
}

/// (f) and the index half of (e).
fn check_index(exp: &Expect<'_>, dir: &Path, index: &Index, expected_codec: &str, r: &mut Report) {
    if index.format_version != 1 {
        r.fail("f", format!("format_version {} != 1", index.format_version));
    }
    if index.container != exp.container.arg() {
        r.fail(
            "f",
            format!(
                "container `{}` != `{}`",
                index.container,
                exp.container.arg()
            ),
        );
    }
    if let Some(v) = index.extra.get("refused_frames")
        && v.as_u64() != Some(0)
    {
        r.fail(
            "f",
            format!("refused_frames is {v}: the engine refused input frames"),
        );
    }
    if !annexb::codec_strings_match(&index.codec, expected_codec) {
        r.fail(
            "f",
            format!(
                "codec `{}`, but the source SPS says `{expected_codec}`",
                index.codec
            ),
        );
    }
    if index.segments.is_empty() {
        r.fail("f", "no segments");
        return;
    }

    // Files on disk: exactly the segments plus index.json.
    let listed: Vec<&str> = index.segments.iter().map(|s| s.file.as_str()).collect();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name != "index.json"
                && !name.starts_with(".check")
                && !listed.contains(&name.as_str())
            {
                r.fail("f", format!("stray file `{name}` not in index.json"));
            }
        }
    }

    let start_utc = exp.start_utc_ms;
    let gop = exp.video.gop_ms();
    let last = index.segments.len() - 1;
    for (i, s) in index.segments.iter().enumerate() {
        let name = exp.container.segment_name(i);
        if s.index != i as u64 {
            r.fail("f", format!("segment {i} has index {}", s.index));
        }
        if s.file != name {
            r.fail(
                "f",
                format!("segment {i} is `{}`, expected `{name}`", s.file),
            );
        }
        match std::fs::metadata(dir.join(&s.file)) {
            Ok(m) if m.len() != s.bytes => {
                r.fail(
                    "f",
                    format!("{}: bytes {} but the file has {}", s.file, s.bytes, m.len()),
                );
            }
            Ok(_) => {}
            Err(_) => r.fail("f", format!("missing segment file {}", s.file)),
        }
        match exp.container {
            Container::Ts if s.init_bytes != 0 => {
                r.fail(
                    "f",
                    format!("{}: init_bytes {} in a TS segment", s.file, s.init_bytes),
                );
            }
            Container::Fmp4 if s.init_bytes == 0 || s.init_bytes >= s.bytes => {
                r.fail(
                    "f",
                    format!(
                        "{}: init_bytes {} of {} bytes",
                        s.file, s.init_bytes, s.bytes
                    ),
                );
            }
            _ => {}
        }
        if s.codec != index.codec {
            r.fail(
                "f",
                format!(
                    "{}: codec `{}` != index codec `{}`",
                    s.file, s.codec, index.codec
                ),
            );
        }
        if s.video_frames == 0
            || s.seq_end < s.seq_start
            || s.seq_end - s.seq_start + 1 != s.video_frames
        {
            r.fail(
                "f",
                format!(
                    "{}: seq {}..={} for {} video frames",
                    s.file, s.seq_start, s.seq_end, s.video_frames
                ),
            );
        }
        if s.pts_end_ms <= s.pts_start_ms {
            r.fail(
                "f",
                format!(
                    "{}: empty pts range {}..{}",
                    s.file, s.pts_start_ms, s.pts_end_ms
                ),
            );
        }
        if s.utc_end_ms.wrapping_sub(s.utc_start_ms) != s.duration_ms() {
            r.fail(
                "f",
                format!("{}: utc range and pts range differ in length", s.file),
            );
        }
        if let Some(u) = start_utc
            && (s.utc_start_ms != u + s.pts_start_ms || s.utc_end_ms != u + s.pts_end_ms)
        {
            r.fail(
                "f",
                format!(
                    "{}: utc {}..{} != start {u} + pts {}..{}",
                    s.file, s.utc_start_ms, s.utc_end_ms, s.pts_start_ms, s.pts_end_ms
                ),
            );
        }
        match (exp.audio, s.audio_frames) {
            (None, n) if n != 0 => r.fail(
                "f",
                format!("{}: {n} audio frames without audio input", s.file),
            ),
            (Some(_), 0) => r.fail("f", format!("{}: no audio frames", s.file)),
            _ => {}
        }
        let d = s.duration_ms();
        let hi = exp.target_ms + gop;
        if i < last && !(exp.target_ms..=hi).contains(&d) {
            r.fail(
                "e",
                format!(
                    "{}: {d} ms (index), not in [{}, {hi}]",
                    s.file, exp.target_ms
                ),
            );
        }
        if i == last && d > hi {
            r.fail(
                "e",
                format!("{}: last segment is {d} ms (index), more than {hi}", s.file),
            );
        }
    }
    let first = &index.segments[0];
    if first.pts_start_ms != 0 || first.seq_start != 0 {
        r.fail(
            "f",
            format!(
                "first segment starts at pts {} seq {}",
                first.pts_start_ms, first.seq_start
            ),
        );
    }
    for w in index.segments.windows(2) {
        if w[1].pts_start_ms != w[0].pts_end_ms {
            r.fail(
                "f",
                format!(
                    "{} ends at pts {} but {} starts at {}",
                    w[0].file, w[0].pts_end_ms, w[1].file, w[1].pts_start_ms
                ),
            );
        }
        if w[1].seq_start != w[0].seq_end + 1 {
            r.fail(
                "f",
                format!(
                    "{} ends at seq {} but {} starts at {}",
                    w[0].file, w[0].seq_end, w[1].file, w[1].seq_start
                ),
            );
        }
    }
    let total: u64 = index.segments.iter().map(|s| s.video_frames).sum();
    if total != u64::from(exp.video.frames) {
        r.fail(
            "f",
            format!(
                "{total} video frames in all segments, the source has {}",
                exp.video.frames
            ),
        );
    }
    let end = index.segments[last].pts_end_ms;
    if end.abs_diff(exp.video.duration_ms()) > 2 {
        r.fail(
            "f",
            format!(
                "last pts_end_ms {end}, the video lasts {} ms",
                exp.video.duration_ms()
            ),
        );
    }
    let cuts: Vec<u64> = index.segments.iter().map(|s| s.seq_start).collect();
    let want = expected_cuts(exp.video, exp.target_ms);
    if cuts != want {
        r.fail(
            "e",
            format!("segments start at frames {cuts:?}; the first IDR at or after the target gives {want:?}"),
        );
    }
}

/// (a), (d), (s) and the per-segment data for the rest.
fn probe_segment(
    exp: &Expect<'_>,
    dir: &Path,
    s: &Segment,
    index: &Index,
    r: &mut Report,
) -> SegProbe {
    let path = dir.join(&s.file);
    let f = &s.file;
    let mut out = SegProbe::default();

    // (s) container structure.
    let data = std::fs::read(&path).unwrap_or_default();
    match exp.container {
        Container::Ts => {
            if let Err(e) = ts::check_segment(&data) {
                r.fail("s", format!("{f}: {e}"));
            }
        }
        Container::Fmp4 => {
            if let Err(e) = mp4::check_segment_layout(&data, s.init_bytes as usize) {
                r.fail("s", format!("{f}: {e}"));
            }
            let init = &data[..(s.init_bytes as usize).min(data.len())];
            match mp4::video_sample_entry(init) {
                Ok((_, codec)) if codec != index.codec => r.fail(
                    "s",
                    format!(
                        "{f}: the sample entry says `{codec}`, index.json `{}`",
                        index.codec
                    ),
                ),
                Ok(_) => {}
                Err(e) => r.fail("s", format!("{f}: init section: {e}")),
            }
        }
    }

    // (a) ffprobe with nothing on stderr; streams and packets.
    let pr = tools::ffprobe([
        "-v",
        "warning",
        "-show_streams",
        "-show_packets",
        "-of",
        "json",
        &p(&path),
    ]);
    if !pr.success || !pr.stderr.trim().is_empty() {
        r.fail("a", format!("{f}: ffprobe: {}", brief(&pr.stderr)));
    }
    let j: Value = serde_json::from_slice(&pr.stdout).unwrap_or(Value::Null);
    let streams = j["streams"].as_array().cloned().unwrap_or_default();
    let mut video_idx = None;
    let mut audio_idx = None;
    let mut tb = HashMap::new();
    for st in &streams {
        let idx = st["index"].as_u64().unwrap_or(99);
        tb.insert(idx, rational(&st["time_base"]).unwrap_or(0.0));
        match st["codec_type"].as_str() {
            Some("video") if video_idx.is_none() => {
                video_idx = Some(idx);
                let want = exp.video.codec.ffprobe_name();
                if st["codec_name"] != want {
                    r.fail(
                        "a",
                        format!("{f}: video codec {} != {want}", st["codec_name"]),
                    );
                }
                let (w, h) = (st["width"].as_u64(), st["height"].as_u64());
                if (w, h) != (Some(exp.video.width.into()), Some(exp.video.height.into())) {
                    r.fail(
                        "a",
                        format!(
                            "{f}: video is {w:?}x{h:?}, source {}x{}",
                            exp.video.width, exp.video.height
                        ),
                    );
                }
                // (f) codec string against ffprobe's profile and level.
                if st["profile"] != "Main" {
                    r.fail(
                        "f",
                        format!("{f}: ffprobe profile {}, fixtures are Main", st["profile"]),
                    );
                }
                let main_idc = match exp.video.codec {
                    VideoCodec::H264 => 77,
                    VideoCodec::H265 => 1,
                };
                let level = st["level"].as_u64().map(|l| l as u32);
                match profile_level(&index.codec) {
                    Some((pr_idc, lv)) if pr_idc == main_idc && Some(lv) == level => {}
                    other => r.fail(
                        "f",
                        format!(
                            "{f}: codec `{}` gives (profile, level) {other:?}; ffprobe says Main ({main_idc}) level {level:?}",
                            index.codec
                        ),
                    ),
                }
                if exp.container == Container::Fmp4 {
                    let tag = st["codec_tag_string"].as_str().unwrap_or("");
                    if !index.codec.starts_with(&format!("{tag}.")) {
                        r.fail(
                            "f",
                            format!(
                                "{f}: sample entry `{tag}` but codec string `{}`",
                                index.codec
                            ),
                        );
                    }
                }
            }
            Some("audio") if audio_idx.is_none() => {
                audio_idx = Some(idx);
                let Some(a) = exp.audio else {
                    r.fail("c", format!("{f}: audio stream without audio input"));
                    continue;
                };
                if st["codec_name"] != "aac" || st["profile"] != "LC" {
                    r.fail(
                        "c",
                        format!(
                            "{f}: audio is {} {}, expected aac LC",
                            st["codec_name"], st["profile"]
                        ),
                    );
                }
                let rate = json_u64(&st["sample_rate"]).map(|v| v as u32);
                out.audio_rate = rate;
                if rate != Some(a.sample_rate) {
                    r.fail(
                        "c",
                        format!("{f}: audio at {rate:?} Hz, source {} Hz", a.sample_rate),
                    );
                }
                if st["channels"].as_u64() != Some(a.channels.into()) {
                    r.fail(
                        "c",
                        format!(
                            "{f}: {} audio channels, source {}",
                            st["channels"], a.channels
                        ),
                    );
                }
            }
            other => r.fail("a", format!("{f}: unexpected stream {other:?}")),
        }
    }
    if video_idx.is_none() {
        r.fail("a", format!("{f}: no video stream"));
    }
    if exp.audio.is_some() && audio_idx.is_none() {
        r.fail("c", format!("{f}: no audio stream"));
    }
    let mut first_video_key = None;
    for pk in j["packets"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let idx = pk["stream_index"].as_u64();
        let pts = pk["pts"].as_i64();
        let t = pts.map(|v| v as f64 * tb.get(&idx.unwrap_or(99)).copied().unwrap_or(0.0));
        if idx == video_idx && video_idx.is_some() {
            if first_video_key.is_none() {
                first_video_key = Some(pk["flags"].as_str().unwrap_or("").starts_with('K'));
            }
            if pk["dts"].as_i64() != pts {
                r.fail(
                    "a",
                    format!(
                        "{f}: video packet with pts {pts:?} != dts {:?}",
                        pk["dts"].as_i64()
                    ),
                );
            }
            match t {
                Some(t) => out.video_pts.push(t),
                None => r.fail("a", format!("{f}: video packet without pts")),
            }
        } else if idx == audio_idx && audio_idx.is_some() {
            match t {
                Some(t) => out.audio_pts.push(t),
                None => r.fail("a", format!("{f}: audio packet without pts")),
            }
        }
    }
    if out.video_pts.len() as u64 != s.video_frames {
        r.fail(
            "f",
            format!(
                "{f}: {} video packets, index.json says {}",
                out.video_pts.len(),
                s.video_frames
            ),
        );
    }
    if out.audio_pts.len() as u64 != s.audio_frames {
        r.fail(
            "f",
            format!(
                "{f}: {} audio packets, index.json says {}",
                out.audio_pts.len(),
                s.audio_frames
            ),
        );
    }
    if out.video_pts.windows(2).any(|w| w[1] <= w[0]) {
        r.fail("a", format!("{f}: video timestamps do not increase"));
    }

    // (a) a full decode with nothing on stderr; (b) this segment's hashes.
    let dec = tools::ffmpeg([
        "-v",
        "warning",
        "-i",
        &p(&path),
        "-map",
        "0:v:0",
        "-map",
        "0:a?",
        "-fps_mode",
        "passthrough",
        "-f",
        "framemd5",
        "-",
    ]);
    if !dec.success || !dec.stderr.trim().is_empty() {
        r.fail("a", format!("{f}: ffmpeg decode: {}", brief(&dec.stderr)));
    }
    match framemd5::parse(&dec.stdout_text()) {
        Ok(fr) => out.video_hashes = framemd5::hashes_of(&fr, 0),
        Err(e) => r.fail("b", format!("{f}: {e}")),
    }

    // (d) the first frame is a key I frame...
    let ff = tools::ffprobe_json([
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-show_frames",
        "-read_intervals",
        "%+#1",
        "-show_entries",
        "frame=key_frame,pict_type",
        &p(&path),
    ]);
    let fr0 = &ff["frames"][0];
    if fr0["key_frame"].as_i64() != Some(1)
        || fr0["pict_type"] != "I"
        || first_video_key != Some(true)
    {
        r.fail(
            "d",
            format!(
                "{f}: first frame key_frame={} pict_type={}, first packet key={first_video_key:?}: not an IDR start",
                fr0["key_frame"], fr0["pict_type"]
            ),
        );
    }
    // ...and the first access unit holds an IDR slice, preceded (in TS,
    // where nothing else carries them) by the parameter sets. `-copyinkf`:
    // ffmpeg would otherwise skip leading non-keyframes.
    let codec = exp.video.codec;
    let au = tools::ffmpeg([
        "-v",
        "error",
        "-i",
        &p(&path),
        "-map",
        "0:v:0",
        "-c",
        "copy",
        "-copyinkf",
        "-frames:v",
        "1",
        "-f",
        codec.ffmpeg_format(),
        "-",
    ]);
    let types: Vec<u8> = annexb::nal_units(&au.stdout)
        .iter()
        .map(|n| annexb::nal_type(codec, n))
        .collect();
    match types.iter().position(|&t| annexb::is_idr(codec, t)) {
        None => r.fail(
            "d",
            format!("{f}: first access unit has NAL types {types:?}, no IDR"),
        ),
        Some(i) => {
            let missing: Vec<u8> = annexb::parameter_set_types(codec)
                .iter()
                .copied()
                .filter(|t| !types[..i].contains(t))
                .collect();
            if !missing.is_empty() {
                r.fail("d", format!("{f}: no parameter sets {missing:?} before the first IDR (NAL types {types:?})"));
            }
        }
    }
    out
}

/// (e) from ffprobe: segment durations and timestamp continuity; (c) A/V
/// alignment per segment.
fn check_timing(exp: &Expect<'_>, index: &Index, probes: &[SegProbe], r: &mut Report) {
    let frame_s = 1.0 / f64::from(exp.video.fps);
    let target = exp.target_ms as f64 / 1000.0;
    let hi = target + exp.video.gop_ms() as f64 / 1000.0;
    let last = probes.len() - 1;
    for (i, (s, pr)) in index.segments.iter().zip(probes).enumerate() {
        let (Some(first), Some(lastp)) = (pr.video_pts.first(), pr.video_pts.last()) else {
            continue;
        };
        let d = lastp - first + frame_s;
        if (d - s.duration_ms() as f64 / 1000.0).abs() > TS_TOL_S + frame_s * 0.01 {
            r.fail(
                "e",
                format!(
                    "{}: ffprobe video lasts {d:.4} s, index.json {} ms",
                    s.file,
                    s.duration_ms()
                ),
            );
        }
        if i < last && (d < target - TS_TOL_S || d > hi + TS_TOL_S) {
            r.fail(
                "e",
                format!(
                    "{}: ffprobe duration {d:.4} s not in [{target}, {hi}]",
                    s.file
                ),
            );
        }
        if i == last && d > hi + TS_TOL_S {
            r.fail(
                "e",
                format!(
                    "{}: last segment lasts {d:.4} s (ffprobe), more than {hi}",
                    s.file
                ),
            );
        }
        if let (Some(a), Some(au)) = (pr.audio_pts.first(), exp.audio) {
            let aac_s = 1024.0 / f64::from(au.sample_rate);
            let tol = if au.passthrough() { aac_s } else { 2.0 * aac_s } + TS_TOL_S;
            if (a - first).abs() > tol {
                r.fail(
                    "c",
                    format!(
                        "{}: audio starts at {a:.4} s, video at {first:.4} s (tolerance {tol:.4})",
                        s.file
                    ),
                );
            }
        }
    }
    for (w, seg) in probes.windows(2).zip(&index.segments) {
        if let (Some(a), Some(b)) = (w[0].video_pts.first(), w[1].video_pts.first()) {
            let want = seg.duration_ms() as f64 / 1000.0;
            if (b - a - want).abs() > TS_TOL_S {
                r.fail(
                    "e",
                    format!(
                        "video timestamps jump by {:.4} s after {} (lasting {want} s)",
                        b - a,
                        seg.file
                    ),
                );
            }
        }
        if let (Some(a), Some(b), Some(au)) =
            (w[0].audio_pts.first(), w[1].audio_pts.first(), exp.audio)
        {
            let want = w[0].audio_pts.len() as f64 * 1024.0 / f64::from(au.sample_rate);
            if (b - a - want).abs() > 2.0 * TS_TOL_S {
                r.fail(
                    "c",
                    format!(
                        "audio timestamps jump by {:.4} s after {} holding {want:.4} s",
                        b - a,
                        seg.file
                    ),
                );
            }
        }
    }
}

/// The whole recording as ffmpeg input arguments: TS segments
/// byte-concatenated, fMP4 through an HLS playlist.
fn concatenation(exp: &Expect<'_>, dir: &Path, index: &Index) -> Vec<String> {
    match exp.container {
        Container::Ts => {
            let path: PathBuf = dir.join(".check-concat.ts");
            let mut all = Vec::new();
            for s in &index.segments {
                all.extend(std::fs::read(dir.join(&s.file)).unwrap_or_default());
            }
            std::fs::write(&path, all).expect("write concatenation");
            vec!["-f".into(), "mpegts".into(), "-i".into(), p(&path)]
        }
        Container::Fmp4 => {
            let path = hls::write_playlist(dir, ".check-playlist.m3u8", index);
            vec!["-f".into(), "hls".into(), "-i".into(), p(&path)]
        }
    }
}

/// (b) video frame hashes, per segment and for the whole recording.
fn check_video(
    exp: &Expect<'_>,
    index: &Index,
    probes: &[SegProbe],
    concat: &[String],
    r: &mut Report,
) {
    let src = source_video_hashes(exp.video);
    let mut joined = Vec::new();
    for (s, pr) in index.segments.iter().zip(probes) {
        if pr.video_hashes.len() as u64 != s.video_frames {
            r.fail(
                "b",
                format!(
                    "{} decodes alone to {} frames, index.json says {}",
                    s.file,
                    pr.video_hashes.len(),
                    s.video_frames
                ),
            );
        }
        joined.extend(pr.video_hashes.iter().cloned());
    }
    if let Err(e) = framemd5::compare("segments decoded one by one", &src, &joined) {
        r.fail("b", e);
    }
    let whole = framemd5::video_hashes(concat);
    let what = match exp.container {
        Container::Ts => "concatenated TS",
        Container::Fmp4 => "HLS playlist of the fMP4 segments",
    };
    if let Err(e) = framemd5::compare(what, &src, &whole) {
        r.fail("b", e);
    }
}

/// (c) audio duration, content and level.
fn check_audio(
    exp: &Expect<'_>,
    index: &Index,
    probes: &[SegProbe],
    concat: &[String],
    r: &mut Report,
) {
    let Some(a) = exp.audio else { return };
    let sr = probes
        .iter()
        .find_map(|p| p.audio_rate)
        .unwrap_or(a.sample_rate);
    let ch = a.channels as usize;
    let aac_s = 1024.0 / f64::from(sr);
    let pcm = audio::decode_f32(concat, &[]);
    let samples = pcm.len() / ch;
    let dur = samples as f64 / f64::from(sr);
    let want = exp.video.duration_ms().min(a.duration_ms()) as f64 / 1000.0;
    // Audio past the end of the video is dropped; the last frame kept may
    // reach one AAC frame past it. An encoder adds up to one frame of delay.
    let (lo, hi) = if a.passthrough() {
        (want - aac_s, want + aac_s)
    } else {
        (want - aac_s, want + 2.0 * aac_s)
    };
    if dur < lo - 1e-6 || dur > hi + 1e-6 {
        r.fail(
            "c",
            format!("decoded audio lasts {dur:.4} s; min(video, audio) is {want:.4} s, allowed [{lo:.4}, {hi:.4}]"),
        );
    }
    let packets: usize = probes.iter().map(|p| p.audio_pts.len()).sum();
    let indexed: u64 = index.segments.iter().map(|s| s.audio_frames).sum();
    if indexed != packets as u64 {
        r.fail(
            "c",
            format!("index.json counts {indexed} audio frames, the segments hold {packets}"),
        );
    }
    if samples.abs_diff(packets * 1024) > 2048 {
        r.fail("c", format!("{packets} AAC frames in the segments, but the recording decodes to {samples} samples"));
    }

    if a.passthrough() {
        let src = source_aac_hashes(a);
        let got = framemd5::aac_packet_hashes(concat);
        let n = got.len().min(src.len());
        if let Err(e) = framemd5::compare("AAC frames passed through", &src[..n], &got) {
            r.fail("c", e);
        }
    }

    // Content: each channel carries its own tone at the source's level.
    let src = audio::decode_f32(&a.ffmpeg_input(), &["-t".into(), format!("{want:.3}")]);
    for (c, &tone) in a.tones.iter().enumerate() {
        match audio::tone_fraction_windows(&pcm, ch, c, sr, tone) {
            Some(f) if f >= 0.9 => {}
            other => r.fail(
                "c",
                format!("channel {c}: {tone} Hz holds {other:?} of the energy, expected >= 0.9"),
            ),
        }
        let lvl = |x: &[f32]| audio::rms(&audio::channel(x, ch, c, sr as usize, usize::MAX));
        let (got, exp_lvl) = (lvl(&pcm), lvl(&src));
        let ratio = if exp_lvl > 0.0 { got / exp_lvl } else { 0.0 };
        if !(0.7..=1.42).contains(&ratio) {
            r.fail(
                "c",
                format!("channel {c}: level {got:.4} vs source {exp_lvl:.4} (ratio {ratio:.2})"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{H264_240P_GOP4_24S, H264_360P_GOP2_24S, H264_360P30_GOP1_12S};

    #[test]
    fn cuts_at_first_idr_at_or_after_target() {
        assert_eq!(
            expected_cuts(&H264_360P_GOP2_24S, 4000),
            vec![0, 100, 200, 300, 400, 500]
        );
        // GOP 4 s, target 3 s: every segment is 4 s.
        assert_eq!(
            expected_cuts(&H264_240P_GOP4_24S, 3000),
            vec![0, 100, 200, 300, 400, 500]
        );
        // GOP 4 s, target 5 s: 8 s segments.
        assert_eq!(expected_cuts(&H264_240P_GOP4_24S, 5000), vec![0, 200, 400]);
        // 30 fps, GOP 1 s, target 4 s.
        assert_eq!(
            expected_cuts(&H264_360P30_GOP1_12S, 4000),
            vec![0, 120, 240]
        );
    }

    #[test]
    fn profile_and_level_from_codec_strings() {
        assert_eq!(profile_level("avc1.4D401E"), Some((77, 30)));
        assert_eq!(profile_level("hvc1.1.6.L63.B0"), Some((1, 63)));
        assert_eq!(profile_level("hev1.A1.6.H120"), Some((1, 120)));
        assert_eq!(profile_level("mp4a.40.2"), None);
    }
}
