//! The engine's offline muxer (`mux.muxer` in the WIT) driven through the
//! component: the path `ivcs mux` and the benchmarks use.

use crate::bindings::exports::ivcs::engine::mux::{MuxConfig, MuxOutput};
use crate::bindings::ivcs::engine::types::{EngineError, Frame};
use crate::runtime::{EngineInstance, EngineRuntime, WasmtimeContext};
use anyhow::Result;
use wasmtime::component::ResourceAny;

/// A muxer living inside an engine instance.
pub struct ComponentMuxer {
    inst: EngineInstance,
    muxer: ResourceAny,
}

impl ComponentMuxer {
    /// Instantiates the engine (memory capped at `memory_limit` bytes) and
    /// creates a muxer; the inner result is the engine's verdict on `cfg`.
    pub fn new(
        rt: &EngineRuntime,
        cfg: &MuxConfig,
        memory_limit: usize,
    ) -> Result<Result<Self, EngineError>> {
        let mut inst = rt.instantiate(memory_limit)?;
        let api = inst.world.ivcs_engine_mux().muxer();
        let muxer = api.call_constructor(&mut inst.store, *cfg)?;
        if let Err(e) = api.call_validate(&mut inst.store, muxer)? {
            muxer.resource_drop(&mut inst.store)?;
            return Ok(Err(e));
        }
        Ok(Ok(ComponentMuxer { inst, muxer }))
    }

    /// Feeds one frame. The outer error is a trap; the inner one the
    /// engine's refusal of the frame.
    pub fn push(&mut self, frame: &Frame) -> Result<Result<Vec<MuxOutput>, EngineError>> {
        self.inst
            .world
            .ivcs_engine_mux()
            .muxer()
            .call_push(&mut self.inst.store, self.muxer, frame)
            .ctx("engine trapped in mux.push")
    }

    /// Closes the last segment.
    pub fn finish(&mut self) -> Result<Result<Vec<MuxOutput>, EngineError>> {
        self.inst
            .world
            .ivcs_engine_mux()
            .muxer()
            .call_finish(&mut self.inst.store, self.muxer)
            .ctx("engine trapped in mux.finish")
    }
}
