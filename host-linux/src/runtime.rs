//! wasmtime configuration, engine loading and instantiation.
//!
//! One [`EngineRuntime`] per process holds the compiled component; each
//! [`EngineInstance`] is one store with its own memory cap. The configuration
//! is deliberately small: no async, no threads, no WASI, so the runtime stays
//! small and a call costs a fraction of a microsecond. Epoch interruption is
//! on so that a host can bound each call (see [`EngineInstance::set_deadline`]);
//! a fresh instance has no practical deadline.

use crate::bindings::Engine as EngineWorld;
use anyhow::{Result, bail};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, ResourceLimiter, Store};

/// Where the engine's code comes from.
pub enum EngineSource<'a> {
    /// A `.wasm` component, compiled here with Cranelift (feature `compile`).
    Wasm(&'a [u8]),
    /// An artifact from [`EngineRuntime::precompile`] made by the same
    /// wasmtime version and configuration. Loading it runs its machine code,
    /// so it must come from a trusted source (signature checked by the caller).
    Precompiled(&'a [u8]),
}

/// Adds context to wasmtime's own error type on its way into `anyhow`.
pub(crate) trait WasmtimeContext<T> {
    fn ctx(self, what: &str) -> Result<T>;
}

impl<T> WasmtimeContext<T> for wasmtime::Result<T> {
    fn ctx(self, what: &str) -> Result<T> {
        self.map_err(|e| anyhow::Error::from(e).context(what.to_string()))
    }
}

/// Per-store host state: the resource table for imported resources, the
/// store's limits and the network client (if a cloud is configured).
pub struct HostState {
    pub(crate) table: ResourceTable,
    limits: Limits,
    /// `None`: every `network.start` answers `unreachable`.
    pub(crate) net: Option<crate::net::NetClient>,
    /// `None`: the system clocks.
    pub(crate) clock: Option<Box<dyn crate::imports::EngineClock>>,
    /// `None`: every capture fails at once (no picture source). `Some`: the
    /// host fulfils captures later (see [`crate::imports::Captures`]).
    pub(crate) captures: Option<crate::imports::Captures>,
}

impl HostState {
    /// Empty state whose memories may grow to `memory_limit` bytes.
    pub(crate) fn new(memory_limit: usize) -> HostState {
        HostState {
            table: ResourceTable::new(),
            limits: Limits::new(memory_limit),
            net: None,
            clock: None,
            captures: None,
        }
    }

    /// Changes the cap on the store's memories. Memory already grown stays
    /// (wasm memory never shrinks); the cap applies to later growth.
    pub fn set_memory_limit(&mut self, memory_limit: usize) {
        self.limits.memory_limit = memory_limit;
    }

    /// Bytes of linear memory the engine holds now (its largest memory).
    pub fn memory_in_use(&self) -> usize {
        self.limits.in_use
    }

    /// Times a memory growth was refused by the cap.
    pub fn refused_growths(&self) -> u64 {
        self.limits.refused
    }
}

/// The store's resource limits: a cap on each memory, and what the engine
/// holds now (for reports and tests).
struct Limits {
    memory_limit: usize,
    in_use: usize,
    refused: u64,
}

impl Limits {
    fn new(memory_limit: usize) -> Limits {
        Limits {
            memory_limit,
            in_use: 0,
            refused: 0,
        }
    }
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit || maximum.is_some_and(|m| desired > m) {
            self.refused += 1;
            return Ok(false);
        }
        self.in_use = self.in_use.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(maximum.is_none_or(|m| desired <= m))
    }

    fn instances(&self) -> usize {
        4
    }
}

/// Fixed part of the engine's memory cap: code data, heap baseline, control
/// plane, network buffers seen by the engine (see docs/design/libivcs.md).
pub const MEMORY_FIXED: usize = 8 << 20;

/// The engine's memory cap for a session: the fixed allowance plus, per
/// channel, twice its budget (`u32MaxGopSize` plus the spec's audio
/// allowance: 120 KB mono / 160 KB stereo for PCM and G.711). Twice, because
/// `export-state` serialises the buffered bytes inside the engine's memory.
pub fn memory_cap(params: &crate::bindings::ivcs::engine::types::InitParams) -> usize {
    let per_channel: usize = params
        .channels
        .iter()
        .map(|c| {
            let audio = match &c.av.audio {
                Some(a) if a.codec != crate::bindings::ivcs::engine::types::AudioCodec::Aac => {
                    if a.channels >= 2 {
                        160 * 1024
                    } else {
                        120 * 1024
                    }
                }
                _ => 0,
            };
            2 * (c.max_gop_size as usize + audio)
        })
        .sum();
    MEMORY_FIXED.saturating_add(per_channel)
}

/// A loaded engine component, ready to instantiate.
pub struct EngineRuntime {
    engine: Engine,
    component: Component,
    linker: Linker<HostState>,
}

/// The wasmtime configuration every host uses; precompiled artifacts are
/// only valid for exactly this configuration.
pub fn config() -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true);
    // No component-model async: plain synchronous calls are the cheapest.
    c.concurrency_support(false);
    // Lets a host bound every call (a looping engine traps instead of
    // hanging the engine thread). Costs a counter check per loop header.
    c.epoch_interruption(true);
    #[cfg(feature = "compile")]
    c.cranelift_opt_level(wasmtime::OptLevel::Speed);
    c
}

/// A deadline so far away that it never passes (epochs only advance when a
/// host bounds a call).
const NO_DEADLINE: u64 = 1 << 62;

impl EngineRuntime {
    /// Loads and links the engine.
    pub fn new(source: EngineSource<'_>) -> Result<Self> {
        let engine = Engine::new(&config())?;
        let component = match source {
            #[cfg(feature = "compile")]
            EngineSource::Wasm(bytes) => {
                Component::new(&engine, bytes).ctx("compiling the engine component")?
            }
            #[cfg(not(feature = "compile"))]
            EngineSource::Wasm(_) => bail!(
                "this runtime was built without a compiler: give a precompiled engine (.cwasm)"
            ),
            // SAFETY: the caller vouches for the artifact (see EngineSource).
            EngineSource::Precompiled(bytes) => unsafe { Component::deserialize(&engine, bytes) }
                .ctx("loading the precompiled engine")?,
        };
        let mut linker = Linker::new(&engine);
        EngineWorld::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )?;
        Ok(EngineRuntime {
            engine,
            component,
            linker,
        })
    }

    /// The wasmtime engine (shared by all instances): a host bounds calls by
    /// advancing its epoch ([`Engine::increment_epoch`]).
    pub fn wasmtime_engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles a `.wasm` component into an artifact for
    /// [`EngineSource::Precompiled`].
    #[cfg(feature = "compile")]
    pub fn precompile(wasm: &[u8]) -> Result<Vec<u8>> {
        Engine::new(&config())?
            .precompile_component(wasm)
            .ctx("precompiling the engine component")
    }

    /// A new engine instance whose linear memory may grow to `memory_limit`
    /// bytes; growth beyond it fails inside the engine instead of taking the
    /// process's memory.
    pub fn instantiate(&self, memory_limit: usize) -> Result<EngineInstance> {
        let mut inst = self.instantiate_unchecked(memory_limit)?;
        let contract = inst.contract_version()?;
        if !contract_compatible(&contract) {
            bail!("engine implements contract {contract}, this host speaks {HOST_CONTRACT}");
        }
        Ok(inst)
    }

    /// An instance whose contract version has not been compared with this
    /// host's: only for asking the engine what it is ([`Self::versions`]).
    fn instantiate_unchecked(&self, memory_limit: usize) -> Result<EngineInstance> {
        let mut store = Store::new(&self.engine, HostState::new(memory_limit));
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(NO_DEADLINE);
        let world = EngineWorld::instantiate(&mut store, &self.component, &self.linker)
            .ctx("instantiating the engine")?;
        Ok(EngineInstance { store, world })
    }

    /// What the engine says it is (`runtime.engine-version` and
    /// `runtime.contract-version`), asked of a throwaway instance. Unlike
    /// [`Self::instantiate`] this does not refuse an engine of another
    /// contract: `ivcs engine info` and the artifact signer report it.
    pub fn versions(&self) -> Result<EngineVersions> {
        let mut inst = self.instantiate_unchecked(64 << 20)?;
        Ok(EngineVersions {
            engine_version: inst.engine_version()?,
            contract: inst.contract_version()?,
        })
    }
}

/// An engine's self-description, from its `runtime` interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineVersions {
    /// `runtime.engine-version`: the engine's own build version.
    pub engine_version: String,
    /// `runtime.contract-version`: the WIT package version it implements.
    pub contract: String,
}

/// An import of a component: its name and how many functions it brings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportInfo {
    /// Fully qualified name, e.g. `ivcs:engine/clock@0.4.0`.
    pub name: String,
    /// Functions in the imported instance (0 for a types-only interface).
    pub functions: usize,
}

/// Lists the imports of a `.wasm` component without instantiating it.
#[cfg(feature = "compile")]
pub fn component_imports(wasm: &[u8]) -> Result<Vec<ImportInfo>> {
    use wasmtime::component::types::ComponentItem;
    let engine = Engine::new(&config())?;
    let component = Component::new(&engine, wasm).ctx("compiling the component")?;
    let ty = component.component_type();
    Ok(ty
        .imports(&engine)
        .map(|(name, item)| {
            let functions = match item.ty {
                ComponentItem::ComponentInstance(inst) => inst
                    .exports(&engine)
                    .filter(|(_, i)| matches!(i.ty, ComponentItem::ComponentFunc(_)))
                    .count(),
                ComponentItem::ComponentFunc(_) => 1,
                _ => 0,
            };
            ImportInfo {
                name: name.to_string(),
                functions,
            }
        })
        .collect())
}

/// The engine's allowed imports: the three host capabilities, plus the
/// shared `types` interface, which must carry no functions.
pub fn check_imports(imports: &[ImportInfo]) -> Result<()> {
    const CAPABILITIES: [&str; 3] = ["clock", "network", "snapshot"];
    let mut bad = Vec::new();
    for i in imports {
        let iface = i
            .name
            .strip_prefix("ivcs:engine/")
            .map(|s| s.split('@').next().unwrap_or(s));
        let ok = match iface {
            Some(n) if CAPABILITIES.contains(&n) => true,
            Some("types") => i.functions == 0,
            _ => false,
        };
        if !ok {
            bad.push(format!("{} ({} functions)", i.name, i.functions));
        }
    }
    if !bad.is_empty() {
        bail!(
            "the engine imports more than clock/network/snapshot: {}",
            bad.join(", ")
        );
    }
    Ok(())
}

/// The WIT package version this host was built against.
pub const HOST_CONTRACT: &str = "0.4.0";

/// Same major (or, before 1.0, same minor) as [`HOST_CONTRACT`]: additive
/// changes keep older hosts working.
fn contract_compatible(engine: &str) -> bool {
    contracts_compatible(engine, HOST_CONTRACT)
}

/// Whether an engine implementing contract `engine` can run on a host
/// speaking contract `host`: same major, or before 1.0 the same minor.
/// Anything that is not `MAJOR.MINOR[.…]` in numbers is incompatible.
pub fn contracts_compatible(engine: &str, host: &str) -> bool {
    let parts = |v: &str| -> Option<(u64, u64)> {
        let mut it = v.split('.');
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    };
    match (parts(engine), parts(host)) {
        (Some((0, a)), Some((0, b))) => a == b,
        (Some((a, _)), Some((b, _))) => a == b,
        _ => false,
    }
}

/// One running engine: a store plus the instance's exports.
pub struct EngineInstance {
    pub(crate) store: Store<HostState>,
    pub(crate) world: EngineWorld,
}

impl EngineInstance {
    /// Gives the engine a cloud to talk to (`None`: every exchange fails as
    /// `unreachable`). Exchanges already open keep the client they started
    /// with.
    pub fn set_network(&mut self, net: Option<crate::net::NetClient>) {
        self.store.data_mut().net = net;
    }

    /// Gives the engine its own clock instead of the system's (host-sim).
    pub fn set_clock(&mut self, clock: impl crate::imports::EngineClock) {
        self.store.data_mut().clock = Some(Box::new(clock));
    }

    /// Gives the engine a picture source: captures stay pending until the
    /// host fulfils them through the returned handle's queue (see
    /// [`crate::imports::Captures`]).
    pub fn enable_captures(&mut self) {
        self.store.data_mut().captures = Some(crate::imports::Captures::default());
    }

    /// The store and the instance's exports, for hosts that drive the `cs`
    /// and `runtime` interfaces themselves (libivcs).
    pub fn parts(&mut self) -> (&mut Store<HostState>, &EngineWorld) {
        (&mut self.store, &self.world)
    }

    /// The per-store host state.
    pub fn host_state(&mut self) -> &mut HostState {
        self.store.data_mut()
    }

    /// Bounds the next calls: the engine traps once the epoch advanced
    /// `ticks` times from now (0: at its first check). [`NO_DEADLINE`]-like
    /// values are restored with `set_deadline(u64::MAX)`.
    pub fn set_deadline(&mut self, ticks: u64) {
        self.store.set_epoch_deadline(ticks.min(NO_DEADLINE));
    }

    /// The engine's own version string.
    pub fn engine_version(&mut self) -> Result<String> {
        self.world
            .ivcs_engine_runtime()
            .call_engine_version(&mut self.store)
            .ctx("engine trapped")
    }

    /// The contract (WIT package) version the engine implements.
    pub fn contract_version(&mut self) -> Result<String> {
        self.world
            .ivcs_engine_runtime()
            .call_contract_version(&mut self.store)
            .ctx("engine trapped")
    }
}

#[cfg(test)]
mod tests {
    use super::contract_compatible;

    fn imp(name: &str, functions: usize) -> super::ImportInfo {
        super::ImportInfo {
            name: name.into(),
            functions,
        }
    }

    #[test]
    fn only_the_three_capabilities_may_be_imported() {
        let ok = [
            imp("ivcs:engine/types@0.4.0", 0),
            imp("ivcs:engine/clock@0.4.0", 2),
            imp("ivcs:engine/network@0.4.0", 11),
            imp("ivcs:engine/snapshot@0.4.0", 5),
        ];
        assert!(super::check_imports(&ok).is_ok());
        assert!(super::check_imports(&[imp("wasi:cli/stderr@0.2.6", 1)]).is_err());
        assert!(super::check_imports(&[imp("ivcs:engine/types@0.4.0", 1)]).is_err());
        assert!(super::check_imports(&[imp("ivcs:engine/filesystem@0.4.0", 0)]).is_err());
    }

    #[test]
    fn contract_versions_match_on_minor_before_1_0() {
        assert!(contract_compatible("0.4.0"));
        assert!(contract_compatible("0.4.7"));
        assert!(!contract_compatible("0.3.0"));
        assert!(!contract_compatible("0.5.0"));
        assert!(!contract_compatible("1.1.0"));
        assert!(!contract_compatible("garbage"));
    }
}
