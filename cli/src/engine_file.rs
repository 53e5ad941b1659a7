//! Finding and loading the engine component for CLI commands.
//!
//! Lookup order: `--engine PATH`, then `$IVCS_ENGINE`, then
//! `<dir of this binary>/../engine/engine.wasm` (the dist/ layout; `make`
//! also places a copy at target/engine/). A precompiled `engine.cwasm`
//! beside the `.wasm` is used when it was made by this wasmtime build.

use anyhow::{Context, Result};
use ivcs_host::{EngineRuntime, EngineSource};
use std::path::{Path, PathBuf};

/// Path of the engine component to use.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("IVCS_ENGINE") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("locating the ivcs binary")?;
    let dir = exe.parent().context("ivcs binary has no directory")?;
    let p = dir.join("../engine/engine.wasm");
    if p.exists() {
        return Ok(p);
    }
    anyhow::bail!(
        "no engine component found: pass --engine, set IVCS_ENGINE, or run `make` to build {}",
        p.display()
    )
}

/// Loads the engine at `path`, preferring a matching precompiled artifact.
pub fn load(path: &Path) -> Result<EngineRuntime> {
    let cwasm = path.with_extension("cwasm");
    if let Ok(bytes) = std::fs::read(&cwasm) {
        // A stale or foreign artifact is refused by wasmtime; fall back then.
        if let Ok(rt) = EngineRuntime::new(EngineSource::Precompiled(&bytes)) {
            return Ok(rt);
        }
    }
    let wasm = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    EngineRuntime::new(EngineSource::Wasm(&wasm))
}

/// `ivcs engine compile` (alias `precompile`): the `.cwasm` for this
/// machine, or with `sign_key` a signed precompiled artifact.
pub fn compile(wasm: &Path, out: &Path, sign_key: Option<&Path>) -> Result<()> {
    let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let cwasm = EngineRuntime::precompile(&bytes)?;
    match sign_key {
        None => std::fs::write(out, cwasm).with_context(|| format!("writing {}", out.display())),
        Some(key) => {
            let m = crate::engine_sign::sign_bytes(
                &cwasm,
                Some(ivcs_host::artifact::ArtifactKind::Precompiled),
                key,
                out,
            )?;
            #[allow(clippy::print_stdout)]
            {
                println!(
                    "compiled and signed engine {} for {} with key {}: {}",
                    m.engine_version,
                    m.target,
                    m.key_id,
                    out.display()
                );
            }
            Ok(())
        }
    }
}

/// `ivcs engine info`.
pub fn info(engine: Option<&Path>) -> Result<()> {
    let path = locate(engine)?;
    let v = load(&path)?.versions()?;
    #[allow(clippy::print_stdout)]
    {
        println!("engine: {}", path.display());
        println!("contract: {}", v.contract);
        println!("host contract: {}", ivcs_host::runtime::HOST_CONTRACT);
        println!("engine version: {}", v.engine_version);
    }
    Ok(())
}

/// `ivcs engine imports`.
pub fn imports(wasm: &Path, check: bool) -> Result<()> {
    let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let list = ivcs_host::runtime::component_imports(&bytes)?;
    #[allow(clippy::print_stdout)]
    for i in &list {
        println!("import {} ({} functions)", i.name, i.functions);
    }
    if check {
        ivcs_host::runtime::check_imports(&list)?;
        #[allow(clippy::print_stdout)]
        {
            println!("ok: only clock, network and snapshot are imported");
        }
    }
    Ok(())
}
