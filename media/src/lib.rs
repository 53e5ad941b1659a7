//! Media parsing and muxing for ivcs, shared by the engine (on the camera,
//! as a WebAssembly component) and by the cloud (playback, export).
//!
//! Everything here is pure computation on byte slices: no I/O, no clocks, no
//! threads, and no panics on any input (parsers return [`Error`] instead).
//! Output is deterministic, so the native build and the wasm component emit
//! identical bytes.
//!
//! - [`annexb`]: splitting Annex-B byte streams into NAL units and access units.
//! - [`bits`]: an RBSP bit reader (emulation prevention, Exp-Golomb).
//! - [`h264`], [`h265`]: parameter sets (dimensions, codec string, decoder
//!   configuration record) and slice types.
//! - [`video`]: codec-independent access-unit analysis (IDR, B-frame check).
//! - [`adts`]: ADTS AAC framing and AudioSpecificConfig.
//! - [`g711`], [`aac_enc`]: G.711/PCM input encoded to AAC-LC.
//! - [`ts`], [`fmp4`]: the two segment containers.
//! - [`ts_demux`], [`fmp4_demux`]: reading stored segments back into frames
//!   (streaming, chunked input, bounded memory); [`demux`]: their shared
//!   policy for damaged input.
//! - [`mp4_export`]: one progressive MP4 file (`moov` first) for a time
//!   range, written in two passes so it can be streamed with a known size;
//!   [`segment_reader`]: either container read back as samples on one
//!   clock, converted for the export; [`range_export`]: which samples of a
//!   run of segments an export of a time range keeps.
//!
//! With feature `serde`, the muxers' and the AAC encoder's state can be
//! saved and resumed ([`b64`] writes their byte fields), so an engine can
//! hand an open segment to its successor.

pub mod aac_enc;
pub mod adts;
pub mod annexb;
#[cfg(feature = "serde")]
pub mod b64;
pub mod bits;
pub mod demux;
mod error;
pub mod fmp4;
pub mod fmp4_demux;
pub mod g711;
pub mod h264;
pub mod h265;
pub mod mp4_export;
mod mp4box;
mod nalscan;
pub mod range_export;
pub mod segment_reader;
pub mod ts;
pub mod ts_demux;
pub mod video;

pub use error::{Error, ErrorKind, Result};

/// The two tracks of a recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Track {
    /// The video stream (H.264 or H.265).
    Video,
    /// The AAC-LC audio stream.
    Audio,
}

/// Video codecs the engine accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum VideoCodec {
    /// H.264 / AVC.
    H264,
    /// H.265 / HEVC.
    H265,
}

/// What the parameter sets of a video stream say, plus the sets themselves.
///
/// Built by [`VideoParams::from_parameter_sets`] (in [`video`]); the muxers need it to
/// write the sample entry (fMP4) and to re-insert parameter sets (TS).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct VideoParams {
    /// Codec of the stream.
    pub codec: VideoCodec,
    /// Display width in pixels (after cropping).
    pub width: u32,
    /// Display height in pixels (after cropping).
    pub height: u32,
    /// RFC 6381 codec string, e.g. `avc1.4D401F` or `hvc1.1.6.L93.B0`.
    pub codec_string: String,
    /// VPS NAL units (H.265 only), without start codes.
    pub vps: Vec<Vec<u8>>,
    /// SPS NAL units, without start codes.
    pub sps: Vec<Vec<u8>>,
    /// PPS NAL units, without start codes.
    pub pps: Vec<Vec<u8>>,
    /// The body of the `avcC` or `hvcC` box (AVCDecoderConfigurationRecord /
    /// HEVCDecoderConfigurationRecord).
    pub decoder_config: Vec<u8>,
}

/// An AAC-LC elementary stream's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AudioParams {
    /// Sampling rate in Hz.
    pub sample_rate: u32,
    /// 1 or 2.
    pub channels: u8,
    /// AudioSpecificConfig bytes (the `esds` DecoderSpecificInfo).
    pub asc: Vec<u8>,
    /// MPEG-4 audio object type (2 = AAC-LC).
    pub object_type: u8,
}
