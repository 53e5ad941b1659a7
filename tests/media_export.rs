//! Export end to end. Segments made by the engine's native pipeline from
//! the generated 60 s fixtures are read back with `ts_demux`/`fmp4_demux`
//! and compared with the source frame by frame (count, timestamps, bytes);
//! then a range over many segments is exported with `mp4_export` the way
//! the cloud does it (two passes over the segments, the second streaming)
//! and checked with ffmpeg: no warning from ffprobe or a full decode, the
//! duration, the frame count, the decoded video (framemd5) and the AAC
//! packets equal the source's for the same frames.

// The engine tests' driver: fixtures through a `Pipeline` as firmware
// would push them.
#[path = "../engine/tests/common/mod.rs"]
mod engine_run;

use std::path::Path;
use std::time::Instant;

use ivcs_engine::types::{AudioCodec, Container};
use ivcs_media::demux::OnDamage;
use ivcs_media::range_export::{RangePass1, RangePass2};
use ivcs_media::segment_reader::{Sample, SegmentFormat, SegmentReader};
use ivcs_media::{Track, VideoCodec, adts, annexb};
use ivcs_tests::fixtures::{self, AudioFixture, VideoFixture};
use ivcs_tests::tools::{probe_num, probe_stream};
use ivcs_tests::{check, framemd5, paths, tools};

/// One frame per 40 ms (the fixtures are 25 fps), in 90 kHz.
const FRAME_90K: u64 = 3600;
/// Bytes handed to the demuxers at a time, as an object store streams them.
const CHUNK: usize = 64 << 10;

/// The source frames pushed into the pipeline.
struct Source {
    video: &'static VideoFixture,
    audio: Option<&'static AudioFixture>,
    aus: Vec<Vec<u8>>,
    /// Raw AAC access units (ADTS headers stripped).
    aac: Vec<Vec<u8>>,
    sample_rate: u32,
}

struct Recording {
    src: Source,
    container: Container,
    segments: Vec<engine_run::Segment>,
}

/// Runs the fixture through the engine's native pipeline (4 s segment
/// target, so 15 segments of 4 s for 60 s with a 2 s GOP).
fn record(
    video: &'static VideoFixture,
    audio: Option<&'static AudioFixture>,
    container: Container,
) -> Recording {
    let codec = match video.codec {
        ivcs_tests::VideoCodec::H264 => VideoCodec::H264,
        ivcs_tests::VideoCodec::H265 => VideoCodec::H265,
    };
    let vdata = std::fs::read(video.path()).unwrap();
    let adata = audio.map(|a| std::fs::read(a.path()).unwrap());
    let fmt =
        audio.map(|a| engine_run::audio_format(AudioCodec::Aac, a.sample_rate, a.channels as u8));
    let vframes = engine_run::video_frames(&vdata, codec);
    let aframes = match (&adata, &fmt) {
        (Some(d), Some(f)) => engine_run::audio_frames(d, f),
        _ => Vec::new(),
    };
    let frames = engine_run::interleave(vframes, aframes);
    let mut cfg = engine_run::config(codec, fmt, container);
    cfg.segment_ms = 4000;
    let segments = engine_run::run(cfg, &frames);
    let src = Source {
        video,
        audio,
        aus: annexb::access_units(&vdata, codec)
            .map(<[u8]>::to_vec)
            .collect(),
        aac: adata
            .as_deref()
            .map(|d| {
                adts::frames(d)
                    .map(|f| adts::payload(f.unwrap().1).unwrap().1.to_vec())
                    .collect()
            })
            .unwrap_or_default(),
        sample_rate: audio.map_or(1, |a| a.sample_rate),
    };
    Recording {
        src,
        container,
        segments,
    }
}

fn format(c: Container) -> SegmentFormat {
    match c {
        Container::Ts => SegmentFormat::Ts,
        Container::Fmp4 => SegmentFormat::Fmp4,
    }
}

/// Demuxes one segment, fed in `CHUNK`-sized pieces; any damage fails.
/// The reader knows the streams' parameters and converts samples for the
/// export.
fn demux(container: Container, bytes: &[u8]) -> (Vec<Sample>, SegmentReader) {
    let mut r = SegmentReader::new(format(container), OnDamage::Fail);
    let mut samples = Vec::new();
    for c in bytes.chunks(CHUNK) {
        r.push(c, &mut samples).unwrap();
    }
    r.finish(&mut samples).unwrap();
    (samples, r)
}

/// Every segment demuxes back to exactly the frames that went in.
fn check_demux(rec: &Recording) {
    let codec = source_codec(&rec.src);
    let mut video = Vec::new();
    let mut audio = Vec::new();
    for seg in &rec.segments {
        let (samples, reader) = demux(rec.container, &seg.bytes);
        let n_video = samples.iter().filter(|s| s.track == Track::Video).count();
        assert_eq!(
            n_video as u32, seg.info.video_frames,
            "segment {}",
            seg.info.index
        );
        assert_eq!(
            (samples.len() - n_video) as u32,
            seg.info.audio_frames,
            "segment {}",
            seg.info.index
        );
        let vp = reader.video().expect("video parameters");
        assert_eq!(vp.codec_string, seg.info.codec_string);
        assert_eq!(reader.audio().is_some(), rec.src.audio.is_some());
        let first = samples.iter().find(|s| s.track == Track::Video).unwrap();
        assert!(
            first.key,
            "segment {} starts with a key frame",
            seg.info.index
        );
        for s in samples {
            match s.track {
                Track::Video => video.push(s),
                Track::Audio => audio.push(s),
            }
        }
    }
    assert_eq!(video.len(), rec.src.aus.len(), "every frame comes back");
    // TS timestamps carry the container's offset (media time 0 is the
    // first frame); fMP4 starts at 0.
    let offset = video[0].pts_90k;
    for (i, (got, au)) in video.iter().zip(&rec.src.aus).enumerate() {
        let want_t = offset + i as u64 * FRAME_90K;
        assert_eq!(
            (got.pts_90k, got.dts_90k),
            (want_t, want_t),
            "video frame {i}"
        );
        assert_eq!(
            got.key,
            i % rec.src.video.gop_frames as usize == 0,
            "frame {i}"
        );
        match rec.container {
            // The TS muxer adds an access unit delimiter and nothing else
            // (the fixtures repeat parameter sets before every IDR).
            Container::Ts => {
                assert!(got.data.ends_with(au), "frame {i} bytes");
                let aud = &got.data[..got.data.len() - au.len()];
                assert!(matches!(aud.len(), 6 | 7), "frame {i}: {aud:02x?}");
            }
            Container::Fmp4 => {
                let mut want = Vec::new();
                ivcs_media::mp4_export::append_video_sample(codec, au, &mut want).unwrap();
                assert_eq!(got.data, want, "frame {i} bytes");
            }
        }
    }
    // Audio: a prefix of the source (the pipeline drops what is past the
    // last video frame), each frame on its sample-count time.
    let rate = u64::from(rec.src.sample_rate);
    assert!(rec.src.audio.is_none() || audio.len() + 50 >= rec.src.aac.len());
    for (j, (got, raw)) in audio.iter().zip(&rec.src.aac).enumerate() {
        let t = j as u64 * 1024 * 90_000 / rate;
        let slack = u64::from(rec.container == Container::Fmp4);
        assert!(
            got.pts_90k.abs_diff(offset + t) <= slack,
            "audio frame {j}: {} vs {}",
            got.pts_90k,
            offset + t
        );
        let payload = match rec.container {
            Container::Ts => adts::payload(&got.data).unwrap().1,
            Container::Fmp4 => &got.data[..],
        };
        assert_eq!(payload, &raw[..], "audio frame {j} bytes");
    }
}

fn source_codec(src: &Source) -> VideoCodec {
    match src.video.codec {
        ivcs_tests::VideoCodec::H264 => VideoCodec::H264,
        ivcs_tests::VideoCodec::H265 => VideoCodec::H265,
    }
}

/// What an export contains, in source frame numbers.
struct Exported {
    file: Vec<u8>,
    video: Vec<usize>,
    audio: Vec<usize>,
    /// Start (the key frame) and end, seconds of media time.
    start_s: f64,
    end_s: f64,
    /// Pass 1 + pass 2 wall time.
    seconds: f64,
}

/// Exports media time [start_90k, end_90k) from `segments` as the cloud
/// would: pass 1 reads sample metadata only, pass 2 streams the samples.
fn export(rec: &Recording, segments: &[usize], start_90k: u64, end_90k: u64) -> Exported {
    let t0 = Instant::now();
    let segs = || segments.iter().map(|&i| &rec.segments[i].bytes[..]);
    // The TS clock starts at the container's offset: media time 0 is the
    // first frame of the first segment.
    let offset = demux(rec.container, &rec.segments[0].bytes)
        .0
        .iter()
        .find(|s| s.track == Track::Video)
        .unwrap()
        .pts_90k;
    let (start, end) = (offset + start_90k, offset + end_90k);

    // Pass 1: metadata only, and the cut.
    let mut p1 = RangePass1::new(start, end);
    for seg in segs() {
        assert!(p1.begin_segment(0));
        let (samples, reader) = demux(rec.container, seg);
        for s in &samples {
            p1.push(&reader, s).unwrap();
        }
    }
    let (plan, sel) = p1.finish().unwrap();
    let key_start = sel.key_start;

    // Pass 2: header, then the samples as the demuxer yields them.
    let mut file = Vec::with_capacity(plan.total_size() as usize);
    file.extend_from_slice(plan.header());
    let mut p2 = RangePass2::new(&plan, sel);
    let (mut video, mut audio) = (Vec::new(), Vec::new());
    let mut max_buffered = 0;
    for seg in segs() {
        assert!(p2.begin_segment());
        let (samples, reader) = demux(rec.container, seg);
        for s in samples {
            let before = file.len() + p2.buffered_bytes();
            p2.push(&reader, &s, &mut file).unwrap();
            max_buffered = max_buffered.max(p2.buffered_bytes());
            if file.len() + p2.buffered_bytes() == before {
                continue; // not in the file
            }
            // Source frame number from the timestamp.
            let n = match s.track {
                Track::Video => ((s.pts_90k - offset) / FRAME_90K) as usize,
                Track::Audio => {
                    let ticks =
                        ((s.pts_90k - offset) * u64::from(rec.src.sample_rate)).div_ceil(90_000);
                    (ticks / 1024) as usize
                }
            };
            match s.track {
                Track::Video => video.push(n),
                Track::Audio => audio.push(n),
            }
        }
    }
    assert!(!p2.begin_segment(), "pass 2 reads what pass 1 read");
    p2.finish().unwrap();
    let seconds = t0.elapsed().as_secs_f64();
    assert_eq!(file.len() as u64, plan.total_size(), "Content-Length holds");
    // Reordering holds about one chunk (0.5 s) per track, never the file.
    assert!(
        max_buffered < file.len() / 10,
        "buffered {max_buffered} of {} bytes",
        file.len()
    );
    Exported {
        file,
        video,
        audio,
        start_s: (key_start - offset) as f64 / 90_000.0,
        end_s: end_90k as f64 / 90_000.0,
        seconds,
    }
}

/// The ffmpeg checks of an export written to `path`.
fn check_export(rec: &Recording, ex: &Exported, path: &Path) {
    std::fs::write(path, &ex.file).unwrap();
    let file = tools::p(path);
    let j = tools::probe_clean(&file);
    let frame_s = FRAME_90K as f64 / 90_000.0;
    let want = ex.end_s - ex.start_s;
    let duration = probe_num(&j["format"]["duration"]);
    assert!(
        (duration - want).abs() <= frame_s,
        "duration {duration} s, expected {want} s"
    );
    let v = probe_stream(&j, "video").expect("a video stream");
    assert_eq!(probe_num(&v["nb_frames"]) as usize, ex.video.len());
    assert_eq!(probe_num(&v["nb_read_frames"]) as usize, ex.video.len());
    assert_eq!(
        (
            probe_num(&v["width"]) as u32,
            probe_num(&v["height"]) as u32
        ),
        (rec.src.video.width, rec.src.video.height)
    );
    assert!((probe_num(&v["duration"]) - want).abs() <= frame_s);

    // The decoded pictures are the source's, frame for frame.
    let src = check::source_video_hashes(rec.src.video);
    let want_hashes: Vec<String> = ex.video.iter().map(|&i| src[i].clone()).collect();
    let got = framemd5::video_hashes(&["-i".to_string(), file.clone()]);
    framemd5::compare("export video", &want_hashes, &got).unwrap();

    match rec.src.audio {
        None => assert!(probe_stream(&j, "audio").is_none()),
        Some(a) => {
            let s = probe_stream(&j, "audio").expect("an audio stream");
            let aac_frame = 1024.0 / f64::from(a.sample_rate);
            // Over a gap the frame before it lasts until the next one.
            let span = ex.audio.last().unwrap() + 1 - ex.audio[0];
            let want_audio = span as f64 * aac_frame;
            let got_audio = probe_num(&s["duration"]);
            assert!(
                (got_audio - want_audio).abs() <= aac_frame,
                "audio {got_audio} s, expected {want_audio} s"
            );
            assert_eq!(probe_num(&s["nb_read_frames"]) as usize, ex.audio.len());
            let src = check::source_aac_hashes(a);
            let want: Vec<String> = ex.audio.iter().map(|&j| src[j].clone()).collect();
            let got = framemd5::aac_packet_hashes(&["-i".to_string(), file]);
            framemd5::compare("export audio packets", &want, &got).unwrap();
        }
    }
}

/// Demux every segment, then export 10.5 s .. 50.3 s (starts at the key
/// frame at 10.0 s; 1008 frames over 11 segments).
fn demux_and_export(
    name: &str,
    video: &'static VideoFixture,
    audio: Option<&'static AudioFixture>,
    container: Container,
) {
    let rec = record(video, audio, container);
    assert_eq!(rec.segments.len(), 15);
    check_demux(&rec);
    let all: Vec<usize> = (0..rec.segments.len()).collect();
    let ex = export(&rec, &all, 945_000, 4_527_000);
    assert_eq!(ex.video, (250..1258).collect::<Vec<_>>());
    if let Some(a) = audio {
        // Audio starts with the key frame at 10.0 s: its first frame at or
        // after it, even where the muxer wrote it before the key frame.
        let first = (10 * u64::from(a.sample_rate)).div_ceil(1024) as usize;
        assert_eq!(ex.audio.first(), Some(&first), "first audio frame");
    }
    let dir = paths::scratch_dir(&format!("media_export/{name}"));
    check_export(&rec, &ex, &dir.join("export.mp4"));
}

#[test]
fn h264_ts_aac_demux_and_export() {
    demux_and_export(
        "h264_ts_aac",
        &fixtures::H264_360P_GOP2_60S,
        Some(&fixtures::AAC_48K_MONO),
        Container::Ts,
    );
}

#[test]
fn h264_ts_video_only_demux_and_export() {
    demux_and_export(
        "h264_ts_video_only",
        &fixtures::H264_360P_GOP2_60S,
        None,
        Container::Ts,
    );
}

#[test]
fn h264_fmp4_aac_demux_and_export() {
    demux_and_export(
        "h264_fmp4_aac",
        &fixtures::H264_360P_GOP2_60S,
        Some(&fixtures::AAC_44K_STEREO),
        Container::Fmp4,
    );
}

#[test]
fn h264_fmp4_video_only_demux_and_export() {
    demux_and_export(
        "h264_fmp4_video_only",
        &fixtures::H264_360P_GOP2_60S,
        None,
        Container::Fmp4,
    );
}

#[test]
fn h265_ts_aac_demux_and_export() {
    demux_and_export(
        "h265_ts_aac",
        &fixtures::H265_360P_GOP2_60S,
        Some(&fixtures::AAC_44K_STEREO),
        Container::Ts,
    );
}

#[test]
fn h265_ts_video_only_demux_and_export() {
    demux_and_export(
        "h265_ts_video_only",
        &fixtures::H265_360P_GOP2_60S,
        None,
        Container::Ts,
    );
}

#[test]
fn h265_fmp4_aac_demux_and_export() {
    demux_and_export(
        "h265_fmp4_aac",
        &fixtures::H265_360P_GOP2_60S,
        Some(&fixtures::AAC_48K_MONO),
        Container::Fmp4,
    );
}

#[test]
fn h265_fmp4_video_only_demux_and_export() {
    demux_and_export(
        "h265_fmp4_video_only",
        &fixtures::H265_360P_GOP2_60S,
        None,
        Container::Fmp4,
    );
}

/// A missing segment (4 s) inside the range: the frame before the gap
/// lasts until the next segment, so the file keeps the real timeline
/// (same duration as without the gap) and decodes the remaining frames.
fn missing_segment_keeps_the_timeline(name: &str, container: Container) {
    let rec = record(
        &fixtures::H264_360P_GOP2_60S,
        Some(&fixtures::AAC_48K_MONO),
        container,
    );
    // Segments are 4 s (100 frames); drop segment 5 (frames 500..600).
    let segs: Vec<usize> = (0..rec.segments.len()).filter(|&i| i != 5).collect();
    let ex = export(&rec, &segs, 945_000, 4_527_000);
    let want: Vec<usize> = (250..1258).filter(|i| !(500..600).contains(i)).collect();
    assert_eq!(ex.video, want);
    let path = paths::scratch_dir(&format!("media_export/{name}")).join("export.mp4");
    check_export(&rec, &ex, &path);
    // The first frame after the gap is shown at its recorded time.
    let j = tools::ffprobe_json([
        "-v",
        "error",
        "-select_streams",
        "v",
        "-show_entries",
        "packet=pts_time,duration_time",
        &tools::p(&path),
    ]);
    let packets = j["packets"].as_array().unwrap();
    let at = |k: usize| probe_num(&packets[k]["pts_time"]);
    let before_gap = 499 - 250;
    assert!((at(before_gap + 1) - (600.0 - 250.0) * 0.04).abs() < 1e-6);
    assert!((probe_num(&packets[before_gap]["duration_time"]) - 101.0 * 0.04).abs() < 1e-6);
}

#[test]
fn ts_export_across_a_missing_segment_keeps_the_timeline() {
    missing_segment_keeps_the_timeline("gap_ts", Container::Ts);
}

#[test]
fn fmp4_export_across_a_missing_segment_keeps_the_timeline() {
    missing_segment_keeps_the_timeline("gap_fmp4", Container::Fmp4);
}

/// A segment stored twice (a backup upload of what already arrived) and
/// a range reaching past both ends of the recording: the file is the same
/// as from the clean run of segments, and starts at the first frame.
#[test]
fn overlapping_segments_and_an_open_range_export_once() {
    let rec = record(
        &fixtures::H264_360P_GOP2_60S,
        Some(&fixtures::AAC_48K_MONO),
        Container::Fmp4,
    );
    let clean = export(&rec, &[3, 4, 5], 10 * 90_000, 30 * 90_000);
    let twice = export(&rec, &[3, 4, 4, 5, 5], 10 * 90_000, 30 * 90_000);
    assert_eq!(clean.video, (300..600).collect::<Vec<_>>());
    assert_eq!(twice.video, clean.video);
    assert_eq!(twice.audio, clean.audio);
    assert!(twice.file == clean.file, "same bytes");
    // From before the first frame to after the last.
    let open = export(&rec, &[0, 1], 0, 40 * 90_000);
    assert_eq!(open.video, (0..200).collect::<Vec<_>>());
    let dir = paths::scratch_dir("media_export/overlap");
    check_export(&rec, &twice, &dir.join("twice.mp4"));
}

/// The whole 60 s recording (TS, H.264 + AAC) in one file: correct, and
/// how fast both passes run (demuxing twice included).
#[test]
fn whole_recording_export_and_throughput() {
    let rec = record(
        &fixtures::H264_360P_GOP2_60S,
        Some(&fixtures::AAC_48K_MONO),
        Container::Ts,
    );
    let all: Vec<usize> = (0..rec.segments.len()).collect();
    let input: usize = rec.segments.iter().map(|s| s.bytes.len()).sum();
    // Best of 3, so a busy machine does not make the number meaningless.
    let mut best = f64::MAX;
    let mut ex = None;
    for _ in 0..3 {
        let e = export(&rec, &all, 0, 1500 * FRAME_90K);
        best = best.min(e.seconds);
        ex = Some(e);
    }
    let ex = ex.unwrap();
    assert_eq!(ex.video, (0..1500).collect::<Vec<_>>());
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "export: {} segments, {:.1} MB of TS -> {:.1} MB MP4 in {:.1} ms (2 passes): \
             {:.0} MB/s of input",
            rec.segments.len(),
            input as f64 / 1e6,
            ex.file.len() as f64 / 1e6,
            best * 1e3,
            input as f64 / 1e6 / best
        );
    }
    let path = paths::scratch_dir("media_export/whole").join("export.mp4");
    check_export(&rec, &ex, &path);
}
