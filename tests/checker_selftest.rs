//! Self-tests of the media checks, runnable without the ivcs CLI: ffmpeg's
//! own segmenters (`-f segment` for TS, `-f hls` fMP4 parts prefixed with
//! their init section) produce ivcs-shaped outputs, and
//!
//! - well-formed ones must pass every check of the matrix (so a matrix
//!   failure is the CLI's fault, not the checker's);
//! - deliberately broken ones (cuts at non-IDR frames, a missing segment,
//!   wrong sizes, audio not cut at the video's end, silent or swapped audio,
//!   a wrong codec string) must fail the check meant to catch them (so the
//!   checks are not vacuous).
//!
//! Also: the fixtures match their catalogue, and the SPS codec-string parser
//! agrees with ffmpeg's mp4 muxer (avcC/hvcC) and ffprobe.

use ivcs_tests::Container::{self, Fmp4, Ts};
use ivcs_tests::check::{Expect, Report, check_output};
use ivcs_tests::cli::START_UTC_MS;
use ivcs_tests::fixtures::*;
use ivcs_tests::index::Index;
use ivcs_tests::paths::scratch_dir;
use ivcs_tests::reference::{AudioMode, Reference, segment};
use ivcs_tests::tools::{self, p};
use ivcs_tests::{annexb, mp4};
use std::path::PathBuf;

fn expect<'a>(r: &Reference<'a>) -> Expect<'a> {
    Expect {
        video: r.video,
        audio: r.audio,
        container: r.container,
        target_ms: u64::from(r.segment_seconds) * 1000,
        start_utc_ms: Some(START_UTC_MS),
    }
}

/// Segments with ffmpeg into a fresh directory and returns it.
fn reference(name: &str, r: &Reference<'_>) -> PathBuf {
    let dir = scratch_dir(&format!("checker_selftest/{name}"));
    segment(r, &dir);
    dir
}

/// Runs the checks and requires them to pass.
fn must_pass(name: &str, r: Reference<'_>) {
    let dir = reference(name, &r);
    let report = check_output(&expect(&r), &dir);
    report.assert_ok(&dir);
    assert!(
        report.segments >= 3,
        "{name}: only {} segments",
        report.segments
    );
}

/// Requires the report to contain every needle.
fn must_catch(report: &Report, needles: &[&str]) {
    assert!(
        !report.failures.is_empty(),
        "the checks passed a broken output"
    );
    for n in needles {
        assert!(
            report.mentions(n),
            "no failure mentions `{n}`: {:#?}",
            report.failures
        );
    }
}

// --- well-formed outputs pass ----------------------------------------------

#[test]
fn ffmpeg_ts_h264_aac_passes() {
    must_pass(
        "ts_h264_aac",
        Reference::new(&H264_360P_GOP2_24S, Some(&AAC_48K_MONO), Ts, 4),
    );
}

#[test]
fn ffmpeg_fmp4_h265_aac_stereo_passes() {
    must_pass(
        "fmp4_h265_aac_stereo",
        Reference::new(&H265_360P_GOP2_24S, Some(&AAC_44K_STEREO), Fmp4, 4),
    );
}

#[test]
fn ffmpeg_ts_h265_g711a_encoded_passes() {
    must_pass(
        "ts_h265_g711a",
        Reference::new(&H265_360P_GOP2_24S, Some(&G711A_8K), Ts, 4),
    );
}

#[test]
fn ffmpeg_fmp4_h264_pcm16_stereo_encoded_passes() {
    must_pass(
        "fmp4_h264_pcm16_stereo",
        Reference::new(&H264_360P_GOP2_24S, Some(&PCM16_48K_STEREO), Fmp4, 4),
    );
}

#[test]
fn ffmpeg_ts_h264_gop4_target3_video_only_passes() {
    must_pass(
        "ts_h264_gop4_target3",
        Reference::new(&H264_240P_GOP4_24S, None, Ts, 3),
    );
}

#[test]
fn ffmpeg_fmp4_h265_720p_gop1_target3_video_only_passes() {
    must_pass(
        "fmp4_h265_720p_gop1",
        Reference::new(&H265_720P_GOP1_12S, None, Fmp4, 3),
    );
}

// --- broken outputs are caught ------------------------------------------------

/// Cuts every 3 s in a GOP-2 s stream, at non-keyframes.
#[test]
fn catches_segments_not_starting_with_idr() {
    let r = Reference {
        break_non_keyframes: true,
        ..Reference::new(&H264_360P_GOP2_24S, None, Ts, 3)
    };
    let dir = reference("broken_non_idr", &r);
    let report = check_output(&expect(&r), &dir);
    must_catch(
        &report,
        &[
            "(d)",
            "no IDR",
            "(e) segments start at frames",
            "(b) segments decoded one by one",
        ],
    );
}

/// Removes the third segment from the directory and the index.
#[test]
fn catches_a_missing_segment() {
    let r = Reference::new(&H265_360P_GOP2_24S, Some(&AAC_48K_MONO), Ts, 4);
    let dir = reference("broken_missing_segment", &r);
    let mut idx = Index::load(&dir).unwrap();
    let gone = idx.segments.remove(2);
    std::fs::remove_file(dir.join(&gone.file)).unwrap();
    // Keep names and indices dense so only the gap itself is wrong.
    for (i, s) in idx.segments.iter_mut().enumerate() {
        let name = Ts.segment_name(i);
        if s.file != name {
            std::fs::rename(dir.join(&s.file), dir.join(&name)).unwrap();
            s.file = name;
        }
        s.index = i as u64;
    }
    idx.save(&dir);
    let report = check_output(&expect(&r), &dir);
    must_catch(
        &report,
        &[
            "(f) seg-00001.ts ends at pts 8000 but seg-00002.ts starts at 12000",
            "ends at seq",
            "video frames in all segments",
            "(b) concatenated TS",
            "(e) video timestamps jump",
            "(c) decoded audio lasts",
        ],
    );
}

/// Wrong byte count, wrong init_bytes, a stray file, a wrong codec string.
#[test]
fn catches_index_lies() {
    let r = Reference::new(&H264_360P_GOP2_24S, None, Fmp4, 4);
    let dir = reference("broken_index", &r);
    let mut idx = Index::load(&dir).unwrap();
    idx.segments[1].bytes += 1;
    idx.segments[2].init_bytes -= 8;
    idx.codec = "avc1.42E01E".into();
    idx.save(&dir);
    std::fs::write(dir.join("leftover.tmp"), b"x").unwrap();
    let report = check_output(&expect(&r), &dir);
    must_catch(
        &report,
        &[
            "(f) seg-00001.mp4: bytes",
            "(s) seg-00002.mp4: ftyp+moov are",
            "stray file `leftover.tmp`",
            "but the source SPS says",
            "!= index codec `avc1.42E01E`",
        ],
    );
}

/// Audio not stopped at the end of the video (60 s of audio, 24 s video).
#[test]
fn catches_audio_not_cut_at_video_end() {
    let r = Reference {
        audio_mode: AudioMode::Uncut,
        ..Reference::new(&H264_360P_GOP2_24S, Some(&AAC_48K_MONO), Ts, 4)
    };
    let dir = reference("broken_audio_uncut", &r);
    let report = check_output(&expect(&r), &dir);
    must_catch(&report, &["(c) decoded audio lasts"]);
}

/// Silent audio of the right length.
#[test]
fn catches_silent_audio() {
    let r = Reference {
        audio_mode: AudioMode::Filter("volume=0"),
        ..Reference::new(&H264_360P_GOP2_24S, Some(&G711U_8K), Ts, 4)
    };
    let dir = reference("broken_audio_silent", &r);
    let report = check_output(&expect(&r), &dir);
    must_catch(
        &report,
        &["(c) channel 0: 800 Hz holds", "(c) channel 0: level"],
    );
}

/// Left and right swapped.
#[test]
fn catches_swapped_channels() {
    let r = Reference {
        audio_mode: AudioMode::Filter("pan=stereo|c0=c1|c1=c0"),
        ..Reference::new(&H265_360P_GOP2_24S, Some(&PCM16_48K_STEREO), Fmp4, 4)
    };
    let dir = reference("broken_audio_swapped", &r);
    let report = check_output(&expect(&r), &dir);
    must_catch(
        &report,
        &["(c) channel 0: 500 Hz holds", "(c) channel 1: 700 Hz holds"],
    );
}

/// Half-volume audio.
#[test]
fn catches_wrong_audio_level() {
    let r = Reference {
        audio_mode: AudioMode::Filter("volume=0.4"),
        ..Reference::new(&H264_360P_GOP2_24S, Some(&PCM16_16K_MONO), Fmp4, 4)
    };
    let dir = reference("broken_audio_level", &r);
    let report = check_output(&expect(&r), &dir);
    must_catch(&report, &["(c) channel 0: level"]);
    assert!(!report.mentions("Hz holds"), "{:#?}", report.failures);
}

/// Re-encoded (not passed through) AAC is caught by the bit-exact check.
#[test]
fn catches_reencoded_passthrough_audio() {
    let r = Reference {
        audio_mode: AudioMode::Filter("anull"),
        ..Reference::new(&H264_360P_GOP2_24S, Some(&AAC_48K_MONO), Ts, 4)
    };
    let dir = reference("broken_aac_reencoded", &r);
    let report = check_output(&expect(&r), &dir);
    must_catch(&report, &["(c) AAC frames passed through"]);
}

// --- fixtures and parsers agree with ffmpeg -----------------------------------

/// Every video fixture has the frame count, size and IDR positions the
/// catalogue (and so the checks) assume.
#[test]
fn fixtures_match_their_catalogue() {
    for v in ALL_VIDEO {
        let data = std::fs::read(v.path()).unwrap();
        // Access units = IDR/non-IDR first slices; count IDRs from NAL types
        // and frames from ffprobe.
        let j = tools::ffprobe_json(
            [
                v.ffmpeg_input()[..4].to_vec(),
                [
                    "-v",
                    "error",
                    "-select_streams",
                    "v:0",
                    "-show_entries",
                    "packet=flags:stream=width,height,profile",
                ]
                .map(String::from)
                .to_vec(),
                vec![p(&v.path())],
            ]
            .concat(),
        );
        let packets = j["packets"].as_array().unwrap();
        assert_eq!(packets.len(), v.frames as usize, "{}: frame count", v.file);
        let keys: Vec<usize> = packets
            .iter()
            .enumerate()
            .filter(|(_, p)| p["flags"].as_str().unwrap_or("").starts_with('K'))
            .map(|(i, _)| i)
            .collect();
        let want: Vec<usize> = (0..v.frames as usize)
            .step_by(v.gop_frames as usize)
            .collect();
        assert_eq!(keys, want, "{}: keyframe positions", v.file);
        let st = &j["streams"][0];
        assert_eq!(
            (st["width"].as_u64(), st["height"].as_u64()),
            (Some(v.width.into()), Some(v.height.into()))
        );
        assert_eq!(st["profile"], "Main", "{}", v.file);
        let idrs = annexb::nal_units(&data)
            .iter()
            .filter(|n| annexb::is_idr(v.codec, annexb::nal_type(v.codec, n)))
            .count();
        assert!(
            idrs >= want.len(),
            "{}: {idrs} IDR slices for {} keyframes",
            v.file,
            want.len()
        );
        let bframes = tools::ffprobe_json([
            "-v",
            "error",
            "-f",
            v.codec.ffmpeg_format(),
            "-i",
            &p(&v.path()),
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=pict_type",
            "-read_intervals",
            "%+#60",
        ]);
        let has_b = bframes["frames"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["pict_type"] == "B");
        assert_eq!(has_b, v.bframes, "{}: B-frames", v.file);
    }
    for a in ALL_AUDIO {
        let pcm = ivcs_tests::audio::decode_f32(&a.ffmpeg_input(), &[]);
        let secs = pcm.len() as f64 / f64::from(a.channels) / f64::from(a.sample_rate);
        assert!(
            (secs - f64::from(a.seconds)).abs() < 0.05,
            "{}: {secs} s",
            a.file
        );
        for (c, &tone) in a.tones.iter().enumerate() {
            let f = ivcs_tests::audio::tone_fraction_windows(
                &pcm,
                a.channels as usize,
                c,
                a.sample_rate,
                tone,
            );
            assert!(f.unwrap_or(0.0) > 0.95, "{} channel {c}: {f:?}", a.file);
        }
    }
    for h in STREAM_HABITS {
        stream_habit_is_in_every_access_unit(h);
    }
}

/// A stream-habit fixture does what its catalogue entry says, in every
/// access unit (as ivcs-media splits them).
fn stream_habit_is_in_every_access_unit(h: &HabitFixture) {
    let v = h.video;
    let h265 = v.codec == ivcs_tests::VideoCodec::H265;
    let units = ivcs_tests::frames_file::video_units(&v.path(), h265);
    assert_eq!(units.len(), v.frames as usize, "{}: access units", v.file);
    let types = |au: &[u8]| -> Vec<u8> {
        annexb::nal_units(au)
            .iter()
            .map(|n| annexb::nal_type(v.codec, n))
            .collect()
    };
    match h.habit {
        Habit::AudSei => {
            for (i, (_, au)) in units.iter().enumerate() {
                let t = types(au);
                assert!(
                    t.first() == Some(&9) && t.contains(&6),
                    "{} frame {i}: NAL types {t:?}",
                    v.file
                );
            }
        }
        Habit::Slices(n) => {
            for (i, (_, au)) in units.iter().enumerate() {
                let t = types(au);
                let slices = t
                    .iter()
                    .filter(|&&t| if h265 { t < 32 } else { (1..=5).contains(&t) })
                    .count();
                assert_eq!(slices, n, "{} frame {i}: NAL types {t:?}", v.file);
            }
        }
        Habit::ResolutionChange { at, width, height } => {
            assert!(units[at as usize].0, "{}: frame {at} is an IDR", v.file);
            let j = tools::ffprobe_json(
                [
                    v.ffmpeg_input(),
                    ["-v", "error", "-show_entries", "frame=width,height"]
                        .map(String::from)
                        .to_vec(),
                ]
                .concat(),
            );
            let sizes: Vec<(u64, u64)> = j["frames"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| (f["width"].as_u64().unwrap(), f["height"].as_u64().unwrap()))
                .collect();
            let want: Vec<(u64, u64)> = (0..v.frames)
                .map(|i| {
                    if i < at {
                        (v.width.into(), v.height.into())
                    } else {
                        (width.into(), height.into())
                    }
                })
                .collect();
            assert!(sizes == want, "{}: frame sizes {sizes:?}", v.file);
        }
    }
}

/// The SPS parser's codec string equals the one built from the avcC/hvcC
/// that ffmpeg's mp4 muxer writes, and the expected Main-profile strings.
#[test]
fn codec_strings_agree_with_ffmpeg_mp4_muxer() {
    let dir = scratch_dir("checker_selftest/codec_strings");
    let cases = [
        (&H264_360P_GOP2_24S, "avc1.4D401E"),
        (&H264_720P_GOP1_12S, "avc1.4D401F"),
        (&H264_240P_GOP4_24S, "avc1.4D400D"),
        (&H265_360P_GOP2_24S, "hvc1.1.6.L63.90"),
        (&H265_720P_GOP1_12S, "hvc1.1.6.L93.90"),
        (&H265_240P_GOP4_24S, "hvc1.1.6.L60.90"),
    ];
    for (v, want) in cases {
        let sps = annexb::codec_string(v.codec, &std::fs::read(v.path()).unwrap()).unwrap();
        let out = dir.join(format!("{}.mp4", v.file));
        let mut args = vec!["-v".to_string(), "error".into(), "-y".into()];
        args.extend(v.ffmpeg_input());
        args.extend(["-c", "copy", "-frames:v", "10", "-tag:v"].map(String::from));
        args.push(
            if v.codec == ivcs_tests::VideoCodec::H264 {
                "avc1"
            } else {
                "hvc1"
            }
            .into(),
        );
        args.push(p(&out));
        tools::ffmpeg(&args).expect_success();
        let (_, from_mp4) = mp4::video_sample_entry(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(sps, from_mp4, "{}", v.file);
        assert!(
            annexb::codec_strings_match(&sps, want),
            "{}: {sps} != {want}",
            v.file
        );
    }
}

/// The container of each reference output is what the tests think it is.
#[test]
fn reference_outputs_have_the_expected_containers() {
    for c in [Ts, Fmp4] {
        let r = Reference::new(&H264_720P_GOP1_12S, None, c, 3);
        let dir = reference(&format!("containers_{}", c.arg()), &r);
        let idx = Index::load(&dir).unwrap();
        assert_eq!(idx.segments.len(), 4);
        let j = tools::ffprobe_json([
            "-v",
            "error",
            "-show_entries",
            "format=format_name",
            &p(&dir.join(&idx.segments[0].file)),
        ]);
        let name = j["format"]["format_name"].as_str().unwrap().to_string();
        match c {
            Container::Ts => assert_eq!(name, "mpegts"),
            Container::Fmp4 => assert!(name.contains("mp4"), "{name}"),
        }
    }
}
