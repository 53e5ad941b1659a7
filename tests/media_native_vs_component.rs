//! `ivcs mux --native` (the engine compiled into the CLI) and `ivcs mux`
//! (the engine as a wasm component) must write byte-identical segments and
//! identical index.json for the same input, in both containers and for
//! passed-through as well as encoded audio.

use ivcs_tests::Container::{Fmp4, Ts};
use ivcs_tests::cli::Mux;
use ivcs_tests::fixtures::*;
use ivcs_tests::paths::{diff_dirs, scratch_dir};

fn same_output(name: &str, mux: Mux<'_>) {
    let component = scratch_dir(&format!("native_vs_component/{name}/component"));
    let native = scratch_dir(&format!("native_vs_component/{name}/native"));
    mux.run_ok(&component);
    Mux {
        native: true,
        ..mux
    }
    .run_ok(&native);
    match diff_dirs(&component, &native) {
        Ok(n) => assert!(n >= 2, "{name}: only {n} files written"),
        Err(e) => panic!("{name}: component and native outputs differ: {e}"),
    }
}

#[test]
fn h264_ts_aac_identical() {
    same_output(
        "h264_ts_aac",
        Mux::new(&H264_360P_GOP2_24S, Some(&AAC_48K_MONO), Ts),
    );
}

#[test]
fn h264_fmp4_pcm16_stereo_identical() {
    same_output(
        "h264_fmp4_pcm16_stereo",
        Mux::new(&H264_360P_GOP2_24S, Some(&PCM16_48K_STEREO), Fmp4),
    );
}

#[test]
fn h265_ts_g711u_identical() {
    same_output(
        "h265_ts_g711u",
        Mux::new(&H265_360P_GOP2_24S, Some(&G711U_8K), Ts),
    );
}

#[test]
fn h265_fmp4_aac_stereo_identical() {
    same_output(
        "h265_fmp4_aac_stereo",
        Mux::new(&H265_720P_GOP1_12S, Some(&AAC_44K_STEREO), Fmp4),
    );
}

#[test]
fn h264_fmp4_g711a_30fps_identical() {
    same_output(
        "h264_fmp4_g711a_30fps",
        Mux::new(&H264_360P30_GOP1_12S, Some(&G711A_8K), Fmp4),
    );
}

#[test]
fn h265_ts_video_only_60s_default_target_identical() {
    same_output(
        "h265_ts_video_only_60s",
        Mux {
            segment_seconds: None,
            ..Mux::new(&H265_360P_GOP2_60S, None, Ts)
        },
    );
}
