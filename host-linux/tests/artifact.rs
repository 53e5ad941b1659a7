//! Signed artifacts of the real engine, taken the way a host will take an
//! update: sign (reading versions from the component), verify against this
//! host, load [`Verified::source`] and run it. Both kinds.
//!
//! The engine is `target/engine/engine.wasm` (`make engine`), or
//! `IVCS_ENGINE_WASM`.

#![cfg(feature = "compile")]

use ivcs_host::EngineRuntime;
use ivcs_host::artifact::{
    self, ArtifactError, ArtifactKind, HostProfile, Keyring, SigningKey, Verified,
};
use std::path::PathBuf;

fn engine_wasm() -> Vec<u8> {
    let path = std::env::var_os("IVCS_ENGINE_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/engine/engine.wasm")
        });
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "no engine at {} ({e}): run `make engine` or set IVCS_ENGINE_WASM",
            path.display()
        )
    })
}

/// Loads the verified payload and asks the running engine what it is.
fn run(v: &Verified<'_>) -> (String, String) {
    let rt = EngineRuntime::new(v.source()).unwrap();
    let mut inst = rt.instantiate(64 << 20).unwrap();
    (
        inst.engine_version().unwrap(),
        inst.contract_version().unwrap(),
    )
}

#[test]
fn the_real_engine_signs_verifies_and_runs_in_both_kinds() {
    let wasm = engine_wasm();
    let key = SigningKey::generate().unwrap();
    let ring: Keyring = [key.public_key()].into_iter().collect();
    let host = HostProfile::current().unwrap();
    let versions = EngineRuntime::new(ivcs_host::EngineSource::Wasm(&wasm))
        .unwrap()
        .versions()
        .unwrap();

    let signed = artifact::sign(&wasm, ArtifactKind::Wasm, &key, Some(1)).unwrap();
    let v = artifact::verify(&signed, &ring, &host).unwrap();
    assert_eq!(v.manifest.kind, ArtifactKind::Wasm);
    assert_eq!(v.manifest.target, artifact::WASM_TARGET);
    assert_eq!(v.manifest.engine_version, versions.engine_version);
    assert_eq!(v.manifest.contract, versions.contract);
    assert_eq!(v.payload, wasm.as_slice());
    assert_eq!(
        run(&v),
        (versions.engine_version.clone(), versions.contract.clone())
    );

    let cwasm = EngineRuntime::precompile(&wasm).unwrap();
    let signed = artifact::sign(&cwasm, ArtifactKind::Precompiled, &key, None).unwrap();
    let v = artifact::verify(&signed, &ring, &host).unwrap();
    assert_eq!(v.manifest.kind, ArtifactKind::Precompiled);
    assert_eq!(v.manifest.target, artifact::native_target());
    assert_eq!(v.manifest.wasmtime, artifact::WASMTIME_VERSION);
    assert_eq!(v.manifest.config_hash, host.config_hash);
    assert_eq!(v.manifest.engine_version, versions.engine_version);
    assert_eq!(run(&v), (versions.engine_version, versions.contract));

    // The same artifact on a host with another configuration is refused
    // before wasmtime is asked to load it.
    let mut other = ivcs_host::runtime::config();
    other.cranelift_opt_level(wasmtime::OptLevel::None);
    let elsewhere = HostProfile {
        config_hash: Some(artifact::config_hash(&other).unwrap()),
        ..host
    };
    assert!(matches!(
        artifact::verify(&signed, &ring, &elsewhere),
        Err(ArtifactError::ConfigHash { .. })
    ));
}
