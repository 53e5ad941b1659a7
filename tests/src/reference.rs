//! ffmpeg's own segmenters producing output shaped like `ivcs mux`'s
//! (`seg-NNNNN.ts|mp4` + `index.json`), so that the checks in [`crate::check`]
//! can be validated before (and independently of) the ivcs CLI: TS through
//! `-f segment`, self-contained fMP4 by prefixing each `-f hls` fMP4 part with
//! the init section. The index is built from what ffprobe finds in the files.

use crate::Container;
use crate::annexb;
use crate::cli::START_UTC_MS;
use crate::fixtures::{AudioFixture, VideoFixture};
use crate::index::{Index, Segment};
use crate::mp4;
use crate::tools::{self, p};
use std::path::Path;

/// How ffmpeg should treat the audio input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioMode {
    /// Copy (AAC) or encode (others) like ivcs, cut at the video's end.
    Normal,
    /// Like `Normal` but not cut: all 60 s of audio (a broken output).
    Uncut,
    /// Encode through this extra audio filter (e.g. silence, swapped
    /// channels: broken outputs).
    Filter(&'static str),
}

/// Options of [`segment`].
#[derive(Clone, Copy, Debug)]
pub struct Reference<'a> {
    /// Video input.
    pub video: &'a VideoFixture,
    /// Audio input.
    pub audio: Option<&'a AudioFixture>,
    /// Container.
    pub container: Container,
    /// Target segment duration, seconds.
    pub segment_seconds: u32,
    /// Audio treatment.
    pub audio_mode: AudioMode,
    /// TS only: let ffmpeg cut at non-keyframes (a broken output).
    pub break_non_keyframes: bool,
}

impl<'a> Reference<'a> {
    /// A well-formed reference run.
    pub fn new(
        video: &'a VideoFixture,
        audio: Option<&'a AudioFixture>,
        container: Container,
        segment_seconds: u32,
    ) -> Self {
        Reference {
            video,
            audio,
            container,
            segment_seconds,
            audio_mode: AudioMode::Normal,
            break_non_keyframes: false,
        }
    }
}

/// Segments the inputs with ffmpeg into `dir` and writes `index.json`.
pub fn segment(r: &Reference<'_>, dir: &Path) {
    let v = r.video;
    let mut args: Vec<String> = vec!["-v".into(), "error".into(), "-y".into()];
    args.extend(v.ffmpeg_input());
    if let Some(a) = r.audio {
        args.extend(a.ffmpeg_input());
    }
    args.extend(["-map".into(), "0:v".into(), "-c:v".into(), "copy".into()]);
    if let Some(a) = r.audio {
        args.extend(["-map".into(), "1:a".into()]);
        match r.audio_mode {
            AudioMode::Filter(f) => {
                args.extend(["-af".into(), f.into(), "-c:a".into(), "aac".into()])
            }
            _ if a.passthrough() => args.extend(["-c:a".into(), "copy".into()]),
            _ => args.extend(["-c:a".into(), "aac".into()]),
        }
        if a.passthrough() && r.container == Container::Fmp4 {
            args.extend(["-bsf:a".into(), "aac_adtstoasc".into()]);
        }
        args.extend(["-b:a".into(), "128k".into()]);
    }
    if r.audio_mode != AudioMode::Uncut {
        // Output duration = the video's: audio past it is dropped.
        args.extend([
            "-t".into(),
            format!("{:.3}", v.duration_ms() as f64 / 1000.0),
        ]);
    }
    let t = r.segment_seconds.to_string();
    match r.container {
        Container::Ts => {
            args.extend(
                [
                    "-f",
                    "segment",
                    "-segment_format",
                    "mpegts",
                    "-segment_time",
                    &t,
                ]
                .map(String::from),
            );
            if r.break_non_keyframes {
                args.extend(["-break_non_keyframes".into(), "1".into()]);
            }
            args.push(p(&dir.join("seg-%05d.ts")));
            tools::ffmpeg(&args).expect_success();
        }
        Container::Fmp4 => {
            args.extend(
                [
                    "-f",
                    "hls",
                    "-hls_segment_type",
                    "fmp4",
                    "-hls_time",
                    &t,
                    "-hls_playlist_type",
                    "vod",
                    "-hls_fmp4_init_filename",
                    "init.mp4",
                    "-hls_segment_filename",
                ]
                .map(String::from),
            );
            args.extend([p(&dir.join("part-%05d.m4s")), p(&dir.join("ff.m3u8"))]);
            tools::ffmpeg(&args).expect_success();
            let init = std::fs::read(dir.join("init.mp4")).expect("ffmpeg wrote init.mp4");
            for i in 0.. {
                let part = dir.join(format!("part-{i:05}.m4s"));
                let Ok(body) = std::fs::read(&part) else {
                    break;
                };
                let mut seg = init.clone();
                seg.extend(body);
                std::fs::write(dir.join(Container::Fmp4.segment_name(i)), seg)
                    .expect("write segment");
                std::fs::remove_file(part).expect("remove part");
            }
            std::fs::remove_file(dir.join("init.mp4")).expect("remove init");
            std::fs::remove_file(dir.join("ff.m3u8")).expect("remove playlist");
        }
    }
    describe(r, dir).save(dir);
}

/// Builds `index.json` for the segments in `dir` from ffprobe's packet
/// counts. The codec string comes from the source SPS for TS and from the
/// init section's avcC/hvcC for fMP4 (so the two parsers cross-check).
pub fn describe(r: &Reference<'_>, dir: &Path) -> Index {
    let fps = u64::from(r.video.fps);
    let src = std::fs::read(r.video.path()).expect("fixture readable");
    let mut codec = annexb::codec_string(r.video.codec, &src).expect("SPS");
    let mut segments = Vec::new();
    let mut seq = 0u64;
    for i in 0.. {
        let name = r.container.segment_name(i);
        let path = dir.join(&name);
        let Ok(data) = std::fs::read(&path) else {
            break;
        };
        let j = tools::ffprobe_json([
            "-v",
            "error",
            "-show_entries",
            "packet=stream_index:stream=codec_type",
            &p(&path),
        ]);
        let kind = |idx: u64| {
            j["streams"]
                .as_array()
                .and_then(|s| s.get(idx as usize))
                .and_then(|s| s["codec_type"].as_str())
                .unwrap_or("")
                .to_string()
        };
        let (mut nv, mut na) = (0u64, 0u64);
        for pk in j["packets"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            match kind(pk["stream_index"].as_u64().unwrap_or(99)).as_str() {
                "video" => nv += 1,
                "audio" => na += 1,
                _ => {}
            }
        }
        let init_bytes = match r.container {
            Container::Ts => 0,
            Container::Fmp4 => {
                let b = mp4::boxes(&data).expect("ffmpeg's fMP4 parses");
                let init = (b[0].size + b[1].size) as u64;
                codec = mp4::video_sample_entry(&data[..init as usize])
                    .expect("sample entry")
                    .1;
                init
            }
        };
        let (start, end) = (seq * 1000 / fps, (seq + nv) * 1000 / fps);
        segments.push(Segment {
            file: name,
            index: i as u64,
            utc_start_ms: START_UTC_MS + start,
            utc_end_ms: START_UTC_MS + end,
            pts_start_ms: start,
            pts_end_ms: end,
            seq_start: seq,
            seq_end: (seq + nv).saturating_sub(1),
            bytes: data.len() as u64,
            init_bytes,
            codec: String::new(),
            video_frames: nv,
            audio_frames: na,
        });
        seq += nv;
    }
    for s in &mut segments {
        s.codec = codec.clone();
    }
    Index {
        format_version: 1,
        codec,
        container: r.container.arg().into(),
        segments,
        extra: Default::default(),
    }
}
