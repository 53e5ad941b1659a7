//! Fuzz parameter-set and slice-header parsing, directly and through
//! `VideoParams::from_parameter_sets` and `video::analyze`.
//!
//! The first byte selects the path; the rest is a NAL unit (paths 0, 1) or
//! an Annex-B access unit (paths 2, 3).
#![no_main]

use ivcs_media::video::analyze;
use ivcs_media::{VideoCodec, VideoParams, h264, h265};
use libfuzzer_sys::fuzz_target;

// Real libx264 / libx265 parameter sets, to pair with fuzzed ones.
const H264_SPS: &[u8] = &[
    0x67, 0x4D, 0x40, 0x0D, 0xD9, 0x01, 0x41, 0xFB, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00,
    0x00, 0x03, 0x03, 0x20, 0xF1, 0x42, 0xA4, 0x80,
];
const H264_PPS: &[u8] = &[0x68, 0xEB, 0xC3, 0xCB, 0x20];
const H265_VPS: &[u8] = &[
    0x40, 0x01, 0x0C, 0x01, 0xFF, 0xFF, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03,
    0x00, 0x00, 0x03, 0x00, 0x3C, 0x92, 0x80, 0x90,
];
const H265_SPS: &[u8] = &[
    0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03,
    0x00, 0x3C, 0xA0, 0x0A, 0x08, 0x0F, 0x16, 0x59, 0x2A, 0x49, 0x32, 0xBC, 0x05, 0xA0, 0x20, 0x00,
    0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x03, 0x03, 0x21,
];
const H265_PPS: &[u8] = &[0x44, 0x01, 0xC1, 0x72, 0xB4, 0x62, 0x40];

fn check(p: &VideoParams) {
    assert!(p.width > 0 && p.height > 0);
    assert!(!p.decoder_config.is_empty());
    assert!(p.codec_string.is_ascii());
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    match sel % 4 {
        0 => {
            let _ = h264::parse_pps(rest);
            let _ = h264::parse_slice_header(rest);
            if let Ok(sps) = h264::parse_sps(rest) {
                let _ = h264::codec_string(&sps);
            }
            if let Ok(p) =
                VideoParams::from_parameter_sets(VideoCodec::H264, &[], &[rest], &[H264_PPS])
            {
                check(&p);
            }
            let _ = VideoParams::from_parameter_sets(VideoCodec::H264, &[], &[H264_SPS], &[rest]);
        }
        1 => {
            let _ = h265::parse_vps(rest);
            let _ = h265::parse_pps(rest);
            let _ = h265::parse_slice_header(rest, |_| h265::parse_pps(H265_PPS));
            let _ = h265::parse_slice_header(rest, h265_pps_or(rest));
            if let Ok(sps) = h265::parse_sps(rest) {
                let _ = h265::codec_string(&sps);
            }
            if let Ok(p) = VideoParams::from_parameter_sets(
                VideoCodec::H265,
                &[H265_VPS],
                &[rest],
                &[H265_PPS],
            ) {
                check(&p);
            }
            let _ =
                VideoParams::from_parameter_sets(VideoCodec::H265, &[rest], &[H265_SPS], &[rest]);
        }
        2 => {
            let known =
                VideoParams::from_parameter_sets(VideoCodec::H264, &[], &[H264_SPS], &[H264_PPS])
                    .ok();
            if let Ok(info) = analyze(VideoCodec::H264, rest, known.as_ref()) {
                assert!(info.has_vcl);
                if let Some(p) = &info.params {
                    check(p);
                }
            }
        }
        _ => {
            let known = VideoParams::from_parameter_sets(
                VideoCodec::H265,
                &[H265_VPS],
                &[H265_SPS],
                &[H265_PPS],
            )
            .ok();
            let _ = analyze(VideoCodec::H265, rest, None);
            if let Ok(info) = analyze(VideoCodec::H265, rest, known.as_ref()) {
                assert!(info.has_vcl);
                if let Some(p) = &info.params {
                    check(p);
                }
            }
        }
    }
});

/// A PPS resolver that parses `nal` as the PPS (fuzzed PPS fields).
fn h265_pps_or(nal: &[u8]) -> impl FnOnce(u8) -> ivcs_media::Result<h265::Pps> + '_ {
    move |_| h265::parse_pps(nal)
}
