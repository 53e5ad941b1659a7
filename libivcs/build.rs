//! Embeds the precompiled engine (`target/engine/engine.cwasm`, made by
//! `make`) into the library. Without it the library is still built; it
//! then needs `IVCS_ENGINE` (or `ivcs_host_set_engine_file`) at run time.
//! `IVCS_EMBED_ENGINE=PATH` embeds another artifact.

use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-env-changed=IVCS_EMBED_ENGINE");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let path = std::env::var_os("IVCS_EMBED_ENGINE")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../target/engine/engine.cwasm"));
    println!("cargo::rerun-if-changed={}", path.display());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("embedded.rs");
    let code = if path.is_file() {
        let abs = path.canonicalize().unwrap_or(path);
        format!(
            "/// The engine built into this library.\npub const EMBEDDED: Option<&[u8]> = Some(include_bytes!({:?}));\n",
            abs.display().to_string()
        )
    } else {
        "/// No engine was built into this library.\npub const EMBEDDED: Option<&[u8]> = None;\n"
            .to_string()
    };
    if let Err(e) = std::fs::write(&out, code) {
        panic!("writing {}: {e}", out.display());
    }
}
