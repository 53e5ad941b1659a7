//! The WebAssembly component glue: converts between the WIT types generated
//! by wit-bindgen and the engine's own types, and nothing else. Compiled for
//! wasm32 only.

wit_bindgen::generate!({ path: "../wit", world: "engine" });

use crate::pipeline::{Output, Pipeline, PipelineConfig, SegmentInfo};
use crate::{cs, state, types as t};
use exports::ivcs::engine::cs::{Balance, DeviceConfig, DumpState, InitParams, OpId};
use exports::ivcs::engine::mux::{GuestMuxer, MuxConfig, MuxOutput};
use exports::ivcs::engine::runtime::TickResult;
use ivcs::engine::snapshot::Picture;
use ivcs::engine::types as w;
use std::cell::RefCell;

struct Engine;

fn wit_err(e: crate::Error) -> w::EngineError {
    w::EngineError {
        code: e.code(),
        message: e.message().to_string(),
    }
}

fn not_init<T>(op: &str) -> Result<T, w::EngineError> {
    Err(wit_err(cs::not_initialised(op)))
}

impl exports::ivcs::engine::cs::Guest for Engine {
    fn configure(_cfg: DeviceConfig) -> Result<(), w::EngineError> {
        not_init("configure")
    }
    fn init(_params: InitParams) -> Result<(), w::EngineError> {
        not_init("init")
    }
    fn exit() -> Result<(), w::EngineError> {
        not_init("exit")
    }
    fn push(_channel: w::Channel, _frame: w::Frame) -> Result<(), w::EngineError> {
        not_init("push")
    }
    fn event_start(
        _: w::Channel,
        _: i32,
        _: Vec<u8>,
        _: u32,
        _: u32,
    ) -> Result<(), w::EngineError> {
        not_init("event-start")
    }
    fn event_stop(_: w::Channel, _: i32, _: Vec<u8>, _: u32, _: u32) -> Result<(), w::EngineError> {
        not_init("event-stop")
    }
    fn event_report(
        _: w::Channel,
        _: i32,
        _: Vec<u8>,
        _: u32,
        _pic: Option<Picture>,
    ) -> Result<OpId, w::EngineError> {
        not_init("event-report")
    }
    fn query_balance(_: w::Channel) -> Result<OpId, w::EngineError> {
        not_init("query-balance")
    }
    fn cached_balance(_: w::Channel) -> Result<Balance, w::EngineError> {
        not_init("cached-balance")
    }
    fn balance_answer(_: w::Channel, _: Option<Balance>) {}
    fn set_trans_time(_: u32, _: u32) -> Result<(), w::EngineError> {
        not_init("set-trans-time")
    }
    fn set_ai(_: w::Channel, _: i32, _: u32) -> Result<OpId, w::EngineError> {
        not_init("set-ai")
    }
    fn get_ai(_: w::Channel, _: i32) -> Result<OpId, w::EngineError> {
        not_init("get-ai")
    }
    fn resource_destroy() -> Result<OpId, w::EngineError> {
        not_init("resource-destroy")
    }
    fn backup_upload(
        _: w::Channel,
        _: DumpState,
        _: String,
        _: Vec<u8>,
    ) -> Result<(), w::EngineError> {
        not_init("backup-upload")
    }
}

impl exports::ivcs::engine::runtime::Guest for Engine {
    fn contract_version() -> String {
        crate::CONTRACT_VERSION.to_string()
    }
    fn engine_version() -> String {
        crate::ENGINE_VERSION.to_string()
    }
    fn tick() -> TickResult {
        // No timers or exchanges exist before iv_cs is implemented.
        TickResult {
            events: Vec::new(),
            wake_at_ms: None,
        }
    }
    fn export_state() -> Result<Vec<u8>, w::EngineError> {
        Ok(state::export())
    }
    fn import_state(blob: Vec<u8>) -> Result<(), w::EngineError> {
        state::import(&blob).map_err(wit_err)
    }
}

fn av_format(av: &w::AvFormat) -> t::AvFormat {
    t::AvFormat {
        video: match av.video {
            w::VideoCodec::H264 => t::VideoCodec::H264,
            w::VideoCodec::H265 => t::VideoCodec::H265,
        },
        width: av.width,
        height: av.height,
        framerate: av.framerate,
        audio: av.audio.as_ref().map(|a| t::AudioFormat {
            codec: match a.codec {
                w::AudioCodec::Pcm16 => t::AudioCodec::Pcm16,
                w::AudioCodec::G711a => t::AudioCodec::G711a,
                w::AudioCodec::G711u => t::AudioCodec::G711u,
                w::AudioCodec::Aac => t::AudioCodec::Aac,
            },
            sample_rate: a.sample_rate,
            channels: a.channels,
            samples_per_frame: a.samples_per_frame,
        }),
    }
}

fn container_to_wit(c: t::Container) -> w::Container {
    match c {
        t::Container::Ts => w::Container::Ts,
        t::Container::Fmp4 => w::Container::Fmp4,
    }
}

fn segment_to_wit(s: SegmentInfo) -> exports::ivcs::engine::mux::SegmentInfo {
    exports::ivcs::engine::mux::SegmentInfo {
        index: s.index,
        codec_string: s.codec_string,
        container: container_to_wit(s.container),
        utc_start_ms: s.utc_start_ms,
        utc_end_ms: s.utc_end_ms,
        pts_start_ms: s.pts_start_ms,
        pts_end_ms: s.pts_end_ms,
        seq_start: s.seq_start,
        seq_end: s.seq_end,
        bytes: s.bytes,
        init_bytes: s.init_bytes,
        video_frames: s.video_frames,
        audio_frames: s.audio_frames,
    }
}

fn outputs_to_wit(out: Vec<Output>) -> Vec<MuxOutput> {
    out.into_iter()
        .map(|o| match o {
            Output::SegmentStart(s) => MuxOutput::SegmentStart(segment_to_wit(s)),
            Output::Data(d) => MuxOutput::Data(d),
            Output::SegmentEnd(s) => MuxOutput::SegmentEnd(segment_to_wit(s)),
        })
        .collect()
}

/// The `mux.muxer` resource: a pipeline, or why it could not be built.
struct Muxer(RefCell<Result<Pipeline, crate::Error>>);

impl Muxer {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Pipeline) -> crate::Result<T>,
    ) -> Result<T, w::EngineError> {
        match &mut *self.0.borrow_mut() {
            Ok(p) => f(p).map_err(wit_err),
            Err(e) => Err(wit_err(e.clone())),
        }
    }
}

impl GuestMuxer for Muxer {
    fn new(cfg: MuxConfig) -> Self {
        let cfg = PipelineConfig {
            av: av_format(&cfg.av),
            container: match cfg.container {
                w::Container::Ts => t::Container::Ts,
                w::Container::Fmp4 => t::Container::Fmp4,
            },
            segment_ms: cfg.segment_ms,
            start_utc_ms: cfg.start_utc_ms,
            max_frame_bytes: cfg.max_frame_bytes,
        };
        Muxer(RefCell::new(Pipeline::new(cfg)))
    }

    fn validate(&self) -> Result<(), w::EngineError> {
        self.with(|_| Ok(()))
    }

    fn push(&self, frame: w::Frame) -> Result<Vec<MuxOutput>, w::EngineError> {
        let f = t::Frame {
            kind: match frame.kind {
                w::StreamKind::Audio => t::StreamKind::Audio,
                w::StreamKind::Video => t::StreamKind::Video,
            },
            frame_type: match frame.frame_type {
                w::FrameType::I => t::FrameType::I,
                w::FrameType::P => t::FrameType::P,
            },
            pts_ms: frame.pts_ms,
            seq: frame.seq,
            data: &frame.data,
        };
        // After an error, output already produced stays queued in the
        // pipeline and leaves with the next successful call.
        self.with(|p| {
            p.push(&f)?;
            Ok(outputs_to_wit(p.take_output()))
        })
    }

    fn finish(&self) -> Result<Vec<MuxOutput>, w::EngineError> {
        self.with(|p| {
            p.finish()?;
            Ok(outputs_to_wit(p.take_output()))
        })
    }
}

impl exports::ivcs::engine::mux::Guest for Engine {
    type Muxer = Muxer;
}

export!(Engine);
