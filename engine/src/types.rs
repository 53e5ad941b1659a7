//! Engine-side value types: the Rust form of the WIT records the media path
//! uses, so the native build needs no bindings (the component glue converts).

pub use ivcs_media::VideoCodec;
use serde::{Deserialize, Serialize};

/// Serde form of [`VideoCodec`] (a media-crate type), for exported state.
#[derive(Serialize, Deserialize)]
#[serde(remote = "VideoCodec")]
enum VideoCodecDef {
    H264,
    H265,
}

/// Audio or video pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamKind {
    /// `iv_cm_aenc_pack_s`.
    Audio,
    /// `iv_cm_venc_pack_s`.
    Video,
}

/// What firmware says a video frame is; the engine checks it against the
/// bitstream and trusts the bitstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameType {
    /// Key frame (IDR).
    I,
    /// Anything else.
    P,
}

/// Audio as pushed by firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AudioCodec {
    /// 16-bit little-endian PCM, interleaved when stereo.
    Pcm16,
    /// G.711 A-law.
    G711a,
    /// G.711 µ-law.
    G711u,
    /// ADTS-framed AAC-LC, passed through.
    Aac,
}

/// Segment container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Container {
    /// MPEG-TS.
    Ts,
    /// Fragmented MP4 (self-contained segments).
    Fmp4,
}

/// Audio input format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioFormat {
    /// Codec of the pushed packs.
    pub codec: AudioCodec,
    /// Hz.
    pub sample_rate: u32,
    /// 1 or 2.
    pub channels: u8,
    /// Samples per pack over all channels (1024 mono, 2048 stereo); informative.
    pub samples_per_frame: u32,
}

/// `iv_cm_av_data_info_s` in engine form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvFormat {
    /// Video codec.
    #[serde(with = "VideoCodecDef")]
    pub video: VideoCodec,
    /// Declared width (the SPS wins).
    pub width: u32,
    /// Declared height (the SPS wins).
    pub height: u32,
    /// Frames per second, 0 = variable.
    pub framerate: u32,
    /// None for video-only.
    pub audio: Option<AudioFormat>,
}

/// What a push would refuse now, by kind of frame (`IV_ERR_*` codes; `None`
/// = taken). Lets a host answer `iv_cs_push_stream` without waiting for the
/// engine (docs/design/buffer.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PushGate {
    /// Every frame.
    pub all: Option<i32>,
    /// Video frames without a key picture.
    pub non_key_video: Option<i32>,
    /// While `non_key_video` is set: a key frame must carry its parameter
    /// sets to be taken.
    pub key_needs_params: bool,
    /// Audio frames.
    pub audio: Option<i32>,
}

/// One pushed pack, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Audio or video.
    pub kind: StreamKind,
    /// Declared type (video only).
    pub frame_type: FrameType,
    /// Milliseconds from a base shared by audio and video.
    pub pts_ms: u64,
    /// Pack counter of this stream.
    pub seq: u32,
    /// The pack's bytes.
    pub data: &'a [u8],
}
