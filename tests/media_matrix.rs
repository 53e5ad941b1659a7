//! The end-to-end media test matrix of `ivcs mux`: every combination of
//! {H.264, H.265} x {TS, fMP4} x {AAC mono, AAC stereo, G.711 A-law,
//! G.711 µ-law, PCM16 mono, PCM16 stereo, no audio} on 24 s inputs with a
//! 4 s segment target, plus scenarios for other GOPs, resolutions, frame
//! rates and the default 10 s target, and negative inputs.
//!
//! Each test runs the CLI (`IVCS_BIN`, default `target/release/ivcs`) into
//! `target/ivcs-tests/media_matrix/<test>/` and applies every check of
//! [`ivcs_tests::check`] (a-f: clean probe/decode, frame-exact video, audio
//! length/content/sync, IDR starts, segment durations, index.json
//! consistency). Needs ffmpeg; fixtures come from `scripts/gen-fixtures.sh`.

use ivcs_tests::Container::{self, Fmp4, Ts};
use ivcs_tests::check::{Expect, check_output};
use ivcs_tests::cli::{self, Mux};
use ivcs_tests::fixtures::*;
use ivcs_tests::index::Index;
use ivcs_tests::paths::scratch_dir;
use ivcs_tests::tools;

/// Runs `mux` into a fresh directory named after the test and checks it.
fn mux_and_check(name: &str, mux: Mux<'_>) {
    let out = scratch_dir(&format!("media_matrix/{name}"));
    mux.run_ok(&out);
    check_output(&Expect::from(&mux), &out).assert_ok(&out);
}

/// `name: video, container, audio;` -> a test muxing with a 4 s target.
macro_rules! matrix {
    ($($name:ident: $video:ident, $container:ident, $audio:expr;)*) => {$(
        #[test]
        fn $name() {
            mux_and_check(stringify!($name), Mux::new(&$video, $audio, $container));
        }
    )*};
}

matrix! {
    h264_ts_aac:            H264_360P_GOP2_24S, Ts, Some(&AAC_48K_MONO);
    h264_ts_aac_stereo:     H264_360P_GOP2_24S, Ts, Some(&AAC_44K_STEREO);
    h264_ts_g711a:          H264_360P_GOP2_24S, Ts, Some(&G711A_8K);
    h264_ts_g711u:          H264_360P_GOP2_24S, Ts, Some(&G711U_8K);
    h264_ts_pcm16_mono:     H264_360P_GOP2_24S, Ts, Some(&PCM16_16K_MONO);
    h264_ts_pcm16_stereo:   H264_360P_GOP2_24S, Ts, Some(&PCM16_48K_STEREO);
    h264_ts_none:           H264_360P_GOP2_24S, Ts, None;
    h264_fmp4_aac:          H264_360P_GOP2_24S, Fmp4, Some(&AAC_48K_MONO);
    h264_fmp4_aac_stereo:   H264_360P_GOP2_24S, Fmp4, Some(&AAC_44K_STEREO);
    h264_fmp4_g711a:        H264_360P_GOP2_24S, Fmp4, Some(&G711A_8K);
    h264_fmp4_g711u:        H264_360P_GOP2_24S, Fmp4, Some(&G711U_8K);
    h264_fmp4_pcm16_mono:   H264_360P_GOP2_24S, Fmp4, Some(&PCM16_16K_MONO);
    h264_fmp4_pcm16_stereo: H264_360P_GOP2_24S, Fmp4, Some(&PCM16_48K_STEREO);
    h264_fmp4_none:         H264_360P_GOP2_24S, Fmp4, None;
    h265_ts_aac:            H265_360P_GOP2_24S, Ts, Some(&AAC_48K_MONO);
    h265_ts_aac_stereo:     H265_360P_GOP2_24S, Ts, Some(&AAC_44K_STEREO);
    h265_ts_g711a:          H265_360P_GOP2_24S, Ts, Some(&G711A_8K);
    h265_ts_g711u:          H265_360P_GOP2_24S, Ts, Some(&G711U_8K);
    h265_ts_pcm16_mono:     H265_360P_GOP2_24S, Ts, Some(&PCM16_16K_MONO);
    h265_ts_pcm16_stereo:   H265_360P_GOP2_24S, Ts, Some(&PCM16_48K_STEREO);
    h265_ts_none:           H265_360P_GOP2_24S, Ts, None;
    h265_fmp4_aac:          H265_360P_GOP2_24S, Fmp4, Some(&AAC_48K_MONO);
    h265_fmp4_aac_stereo:   H265_360P_GOP2_24S, Fmp4, Some(&AAC_44K_STEREO);
    h265_fmp4_g711a:        H265_360P_GOP2_24S, Fmp4, Some(&G711A_8K);
    h265_fmp4_g711u:        H265_360P_GOP2_24S, Fmp4, Some(&G711U_8K);
    h265_fmp4_pcm16_mono:   H265_360P_GOP2_24S, Fmp4, Some(&PCM16_16K_MONO);
    h265_fmp4_pcm16_stereo: H265_360P_GOP2_24S, Fmp4, Some(&PCM16_48K_STEREO);
    h265_fmp4_none:         H265_360P_GOP2_24S, Fmp4, None;
}

/// A run with a non-default segment target.
fn with_target(
    video: &'static VideoFixture,
    audio: Option<&'static AudioFixture>,
    c: Container,
    secs: Option<u32>,
) -> Mux<'static> {
    Mux {
        segment_seconds: secs,
        ..Mux::new(video, audio, c)
    }
}

/// 720p, GOP 1 s, 3 s target: 4 segments of exactly 3 s.
#[test]
fn h264_ts_720p_gop1_target3_aac_stereo() {
    mux_and_check(
        "h264_ts_720p_gop1_target3_aac_stereo",
        with_target(&H264_720P_GOP1_12S, Some(&AAC_44K_STEREO), Ts, Some(3)),
    );
}

/// H.265 720p, GOP 1 s, 3 s target, encoded G.711 A-law.
#[test]
fn h265_fmp4_720p_gop1_target3_g711a() {
    mux_and_check(
        "h265_fmp4_720p_gop1_target3_g711a",
        with_target(&H265_720P_GOP1_12S, Some(&G711A_8K), Fmp4, Some(3)),
    );
}

/// GOP 4 s longer than the 3 s target: every segment is cut at the next
/// IDR, 4 s.
#[test]
fn h264_fmp4_240p_gop4_target3_pcm16_mono() {
    mux_and_check(
        "h264_fmp4_240p_gop4_target3_pcm16_mono",
        with_target(&H264_240P_GOP4_24S, Some(&PCM16_16K_MONO), Fmp4, Some(3)),
    );
}

/// GOP 4 s, 5 s target: 8 s segments (target + GOP - 1 s).
#[test]
fn h265_ts_240p_gop4_target5_g711u() {
    mux_and_check(
        "h265_ts_240p_gop4_target5_g711u",
        with_target(&H265_240P_GOP4_24S, Some(&G711U_8K), Ts, Some(5)),
    );
}

/// 30 fps (`--fps 30`): frame PTS are not whole milliseconds.
#[test]
fn h264_ts_30fps_gop1_aac() {
    mux_and_check(
        "h264_ts_30fps_gop1_aac",
        Mux::new(&H264_360P30_GOP1_12S, Some(&AAC_48K_MONO), Ts),
    );
}

/// 30 fps in fMP4.
#[test]
fn h264_fmp4_30fps_gop1_pcm16_stereo() {
    mux_and_check(
        "h264_fmp4_30fps_gop1_pcm16_stereo",
        Mux::new(&H264_360P30_GOP1_12S, Some(&PCM16_48K_STEREO), Fmp4),
    );
}

/// 60 s, default target (10 s): 6 segments; audio as long as the video.
#[test]
fn h264_fmp4_60s_default_target_pcm16_stereo() {
    mux_and_check(
        "h264_fmp4_60s_default_target_pcm16_stereo",
        with_target(&H264_360P_GOP2_60S, Some(&PCM16_48K_STEREO), Fmp4, None),
    );
}

/// 60 s H.265 TS, default target, AAC as long as the video.
#[test]
fn h265_ts_60s_default_target_aac() {
    mux_and_check(
        "h265_ts_60s_default_target_aac",
        with_target(&H265_360P_GOP2_60S, Some(&AAC_48K_MONO), Ts, None),
    );
}

/// B-frames (not allowed by the engine's contract): the CLI must either
/// fail with a message, or report refused frames in index.json with a
/// message, or produce output that passes every check. Never silently wrong.
#[test]
fn h264_bframes_are_refused_or_muxed_correctly() {
    for c in [Ts, Fmp4] {
        let mux = Mux::new(&H264_BFRAMES_10S, None, c);
        let out = scratch_dir(&format!("media_matrix/h264_bframes_{}", c.arg()));
        let run = mux.run(&out);
        if !run.success {
            assert!(
                !run.stderr.trim().is_empty(),
                "`{}` failed without a message",
                run.cmdline
            );
            continue;
        }
        let refused = Index::load(&out)
            .ok()
            .and_then(|i| i.extra.get("refused_frames").and_then(|v| v.as_u64()))
            .unwrap_or(0);
        if refused > 0 {
            assert!(
                !run.stderr.trim().is_empty(),
                "{refused} frames refused without a message"
            );
            continue;
        }
        check_output(&Expect::from(&mux), &out).assert_ok(&out);
    }
}

/// A missing input file is an error with a message.
#[test]
fn cli_fails_on_missing_video() {
    let out = scratch_dir("media_matrix/cli_fails_on_missing_video");
    let missing = out.join("no-such-file.h264");
    let run = tools::run(
        cli::bin(),
        [
            "mux",
            "--video",
            &tools::p(&missing),
            "--format",
            "ts",
            "--out",
            &tools::p(&out),
        ],
    );
    assert!(!run.success, "`{}` succeeded", run.cmdline);
    assert!(
        !run.stderr.trim().is_empty(),
        "`{}` failed without a message",
        run.cmdline
    );
}

/// A video file that is not Annex-B H.264/H.265 (here: G.711 bytes) is an
/// error with a message, not an empty recording.
#[test]
fn cli_fails_on_non_annexb_video() {
    let out = scratch_dir("media_matrix/cli_fails_on_non_annexb_video");
    let run = tools::run(
        cli::bin(),
        [
            "mux",
            "--video",
            &tools::p(&G711A_8K.path()),
            "--format",
            "fmp4",
            "--out",
            &tools::p(&out.join("o")),
        ],
    );
    assert!(!run.success, "`{}` succeeded", run.cmdline);
    assert!(
        !run.stderr.trim().is_empty(),
        "`{}` failed without a message",
        run.cmdline
    );
}
