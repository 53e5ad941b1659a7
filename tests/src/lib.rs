//! Shared helpers of the ivcs end-to-end media tests.
//!
//! The test files (`media_matrix.rs`, `media_native_vs_component.rs`,
//! `checker_selftest.rs`, `media_export.rs`) read like the spec; everything
//! they need lives here:
//!
//! - [`paths`]: the workspace root and per-test scratch directories;
//! - [`tools`]: running ffmpeg/ffprobe (missing tools fail, never skip);
//! - [`fixtures`]: the generated inputs (`scripts/gen-fixtures.sh`, run once
//!   per process under a file lock) and what each one is;
//! - [`cli`]: running `ivcs mux` (`IVCS_BIN`);
//! - [`cloud`]: the real cloud service over HTTP, as a device and as an app
//!   (also the harness of `src/bin/cloud_bench.rs`, the cloud benchmark's
//!   load generator);
//! - [`index`]: `index.json` as serde types;
//! - [`frames_file`]: access units for the C programs that drive libivcs;
//! - [`shaper`]: a bandwidth cap (a shaping TCP proxy) in front of the
//!   cloud;
//! - [`framemd5`]: parsing and comparing ffmpeg's per-frame hashes;
//! - [`hls`]: the HLS playlist written from `index.json` (fMP4 byte ranges);
//! - [`annexb`], [`mp4`], [`ts`]: just enough bitstream parsing to check
//!   codec strings, IDRs and container structure independently of ffmpeg;
//! - [`audio`]: tone/level analysis of decoded PCM;
//! - [`browser`]: the viewer build, playwright-core and Chromium for the
//!   browser tests;
//! - [`check`]: the checks (a)-(f) of a mux output directory;
//! - [`reference`]: ffmpeg's own segmenters producing ivcs-shaped output,
//!   to validate the checks without the CLI.

pub mod annexb;
pub mod audio;
pub mod browser;
pub mod check;
pub mod cli;
pub mod cloud;
pub mod fixtures;
pub mod framemd5;
pub mod frames_file;
pub mod hls;
pub mod index;
pub mod mp4;
pub mod paths;
pub mod reference;
pub mod shaper;
pub mod tools;
pub mod ts;

/// The two segment containers of `ivcs mux --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    /// MPEG-TS, `seg-NNNNN.ts`.
    Ts,
    /// Self-contained fragmented MP4 (ftyp+moov+moof+mdat...), `seg-NNNNN.mp4`.
    Fmp4,
}

impl Container {
    /// The value of `--format` and of `container` in `index.json`.
    pub fn arg(self) -> &'static str {
        match self {
            Container::Ts => "ts",
            Container::Fmp4 => "fmp4",
        }
    }

    /// Segment file extension (without the dot).
    pub fn ext(self) -> &'static str {
        match self {
            Container::Ts => "ts",
            Container::Fmp4 => "mp4",
        }
    }

    /// Segment file name for a segment index: `seg-00000.ts`.
    pub fn segment_name(self, index: usize) -> String {
        format!("seg-{index:05}.{}", self.ext())
    }
}

/// Video codecs of the fixtures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoCodec {
    /// H.264 / AVC, `.h264`.
    H264,
    /// H.265 / HEVC, `.h265`.
    H265,
}

impl VideoCodec {
    /// ffmpeg's raw Annex-B format name (`-f h264` / `-f hevc`).
    pub fn ffmpeg_format(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264",
            VideoCodec::H265 => "hevc",
        }
    }

    /// ffprobe's `codec_name`.
    pub fn ffprobe_name(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264",
            VideoCodec::H265 => "hevc",
        }
    }
}
