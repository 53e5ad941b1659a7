//! The real engine, passed through, with one hostile behaviour (the
//! crate's feature). The engine glue's types are reused
//! (`with_types_in ivcs_engine::component`), so delegating is a plain call.

use ivcs_engine::component::Component as Real;
use ivcs_engine::component::exports::ivcs::engine::cs::{
    self, Balance, DeviceConfig, DumpState, InitParams, OpId, PushGate,
};
use ivcs_engine::component::exports::ivcs::engine::mux;
use ivcs_engine::component::exports::ivcs::engine::runtime::{self, BufferLevel, TickResult};
use ivcs_engine::component::ivcs::engine::snapshot::Picture;
use ivcs_engine::component::ivcs::engine::types as w;
use std::sync::atomic::{AtomicU32, Ordering};

/// Calls of `tick` that behave before the engine turns hostile: about
/// three seconds of a recording library (it ticks every 100 ms while
/// frames flow), so the swap succeeds and segments flow first.
#[allow(dead_code)]
const HOSTILE_AFTER: u32 = 30;

static TICKS: AtomicU32 = AtomicU32::new(0);

/// What this build is called (`runtime.engine-version`).
fn flavour() -> &'static str {
    if cfg!(feature = "loop-in-tick") {
        "loop-in-tick"
    } else if cfg!(feature = "memory-bomb") {
        "memory-bomb"
    } else if cfg!(feature = "trap") {
        "trap"
    } else if cfg!(feature = "wrong-contract") {
        "wrong-contract"
    } else if cfg!(feature = "bad-credentials") {
        "bad-credentials"
    } else {
        "passthrough"
    }
}

/// The hostile behaviour of `tick`, once it is due.
fn turn_hostile() {
    #[cfg(feature = "loop-in-tick")]
    {
        // Never returns; only the host's epoch deadline ends it.
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
    #[cfg(feature = "memory-bomb")]
    {
        // Keeps every MiB it gets until the host's memory cap refuses
        // one; the failed allocation aborts (a trap).
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(std::hint::black_box(vec![0x5a; 1 << 20]));
        }
    }
    #[cfg(feature = "trap")]
    core::arch::wasm32::unreachable();
}

struct Hostile;

impl cs::Guest for Hostile {
    fn configure(cfg: DeviceConfig) -> Result<(), w::EngineError> {
        #[cfg(feature = "bad-credentials")]
        let cfg = {
            let mut cfg = cfg;
            for b in &mut cfg.device_secret {
                *b ^= 0x20;
            }
            cfg
        };
        <Real as cs::Guest>::configure(cfg)
    }
    fn init(params: InitParams) -> Result<(), w::EngineError> {
        <Real as cs::Guest>::init(params)
    }
    fn exit() -> Result<(), w::EngineError> {
        <Real as cs::Guest>::exit()
    }
    fn push(channel: w::Channel, frame: w::Frame) -> Result<(), w::EngineError> {
        <Real as cs::Guest>::push(channel, frame)
    }
    fn push_gate_now(channel: w::Channel) -> PushGate {
        <Real as cs::Guest>::push_gate_now(channel)
    }
    fn event_start(
        channel: w::Channel,
        event_id: i32,
        info: Vec<u8>,
        event_time_s: u32,
        stream_time_s: u32,
    ) -> Result<(), w::EngineError> {
        <Real as cs::Guest>::event_start(channel, event_id, info, event_time_s, stream_time_s)
    }
    fn event_stop(
        channel: w::Channel,
        event_id: i32,
        info: Vec<u8>,
        event_time_s: u32,
        stream_time_s: u32,
    ) -> Result<(), w::EngineError> {
        <Real as cs::Guest>::event_stop(channel, event_id, info, event_time_s, stream_time_s)
    }
    fn event_report(
        channel: w::Channel,
        event_id: i32,
        info: Vec<u8>,
        event_time_s: u32,
        pic: Option<Picture>,
    ) -> Result<OpId, w::EngineError> {
        <Real as cs::Guest>::event_report(channel, event_id, info, event_time_s, pic)
    }
    fn query_balance(channel: w::Channel) -> Result<OpId, w::EngineError> {
        <Real as cs::Guest>::query_balance(channel)
    }
    fn cached_balance(channel: w::Channel) -> Result<Balance, w::EngineError> {
        <Real as cs::Guest>::cached_balance(channel)
    }
    fn balance_answer(channel: w::Channel, answer: Option<Balance>) {
        <Real as cs::Guest>::balance_answer(channel, answer)
    }
    fn set_trans_time(upload_timeout_ms: u32, reply_timeout_ms: u32) -> Result<(), w::EngineError> {
        <Real as cs::Guest>::set_trans_time(upload_timeout_ms, reply_timeout_ms)
    }
    fn set_ai(channel: w::Channel, event_id: i32, ai_type: u32) -> Result<OpId, w::EngineError> {
        <Real as cs::Guest>::set_ai(channel, event_id, ai_type)
    }
    fn get_ai(channel: w::Channel, event_id: i32) -> Result<OpId, w::EngineError> {
        <Real as cs::Guest>::get_ai(channel, event_id)
    }
    fn resource_destroy() -> Result<OpId, w::EngineError> {
        <Real as cs::Guest>::resource_destroy()
    }
    fn backup_upload(
        channel: w::Channel,
        state: DumpState,
        file_name: String,
        data: Vec<u8>,
    ) -> Result<(), w::EngineError> {
        <Real as cs::Guest>::backup_upload(channel, state, file_name, data)
    }
}

impl runtime::Guest for Hostile {
    fn contract_version() -> String {
        if cfg!(feature = "wrong-contract") {
            "1.0.0".to_string()
        } else {
            <Real as runtime::Guest>::contract_version()
        }
    }
    fn engine_version() -> String {
        format!(
            "{}-{}",
            <Real as runtime::Guest>::engine_version(),
            flavour()
        )
    }
    fn tick() -> TickResult {
        if TICKS.fetch_add(1, Ordering::Relaxed) >= HOSTILE_AFTER {
            turn_hostile();
        }
        <Real as runtime::Guest>::tick()
    }
    fn export_state() -> Result<Vec<u8>, w::EngineError> {
        <Real as runtime::Guest>::export_state()
    }
    fn export_checkpoint() -> Result<Vec<u8>, w::EngineError> {
        <Real as runtime::Guest>::export_checkpoint()
    }
    fn import_state(blob: Vec<u8>) -> Result<(), w::EngineError> {
        <Real as runtime::Guest>::import_state(blob)
    }
    fn buffer_levels() -> Vec<BufferLevel> {
        <Real as runtime::Guest>::buffer_levels()
    }
}

impl mux::Guest for Hostile {
    type Muxer = ivcs_engine::component::Muxer;
}

ivcs_engine::component::export_engine!(Hostile with_types_in ivcs_engine::component);
