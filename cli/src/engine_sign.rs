//! `ivcs engine keygen`, `sign` and `verify`: signed engine artifacts (the
//! format and its checks are `ivcs_host::artifact`; the user's guide is
//! docs/guide/engine-updates.md).
//!
//! Key files: the private key is PEM (PKCS#8), written with mode 0600 and
//! never overwritten; the public key (`KEY.pub`) is a comment line with its
//! key id and the key in hex. Several `.pub` files concatenated make a
//! keyring file.

use anyhow::{Context, Result, bail};
use ivcs_host::artifact::{self, ArtifactKind, HostProfile, Keyring, Manifest, SigningKey};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// `PATH.pub`: where the public half of the key at `PATH` lives.
fn pub_path(key: &Path) -> PathBuf {
    let mut p = key.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// Creates `path` with `text`; fails if it exists.
fn create_new(path: &Path, text: &str, mode: u32) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// `ivcs engine keygen --out PATH`.
pub fn keygen(out: &Path) -> Result<()> {
    let public = pub_path(out);
    for p in [out, public.as_path()] {
        if p.exists() {
            bail!("{} exists: refusing to overwrite a key", p.display());
        }
    }
    let key = SigningKey::generate()?;
    create_new(out, &key.to_pem(), 0o600)?;
    create_new(&public, &key.public_key().to_text(), 0o644)?;
    #[allow(clippy::print_stdout)]
    {
        println!("private key: {} (keep it secret)", out.display());
        println!("public key:  {}", public.display());
        println!("key id:      {}", key.public_key().key_id());
    }
    Ok(())
}

/// Reads the private key at `path`.
pub fn read_key(path: &Path) -> Result<SigningKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    SigningKey::from_pem(&text).with_context(|| format!("loading the key {}", path.display()))
}

/// Signs `payload` with the key at `key` into `out`; the kind is `kind`,
/// or what the bytes look like.
pub fn sign_bytes(
    payload: &[u8],
    kind: Option<ArtifactKind>,
    key: &Path,
    out: &Path,
) -> Result<Manifest> {
    let key = read_key(key)?;
    let kind = match kind {
        Some(k) => k,
        None => ArtifactKind::detect(payload).context(
            "not an engine: neither a wasm component (\\0asm) nor a component precompiled by this wasmtime",
        )?,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs());
    let art = artifact::sign(payload, kind, &key, now)?;
    let manifest = artifact::parse(&art)
        .map_err(anyhow::Error::from)
        .context("reading back the artifact just written")?
        .manifest;
    std::fs::write(out, &art).with_context(|| format!("writing {}", out.display()))?;
    Ok(manifest)
}

/// `ivcs engine sign --key KEY ENGINE -o OUT`.
pub fn sign(engine: &Path, kind: Option<ArtifactKind>, key: &Path, out: &Path) -> Result<()> {
    let payload = std::fs::read(engine).with_context(|| format!("reading {}", engine.display()))?;
    let m = sign_bytes(&payload, kind, key, out)?;
    #[allow(clippy::print_stdout)]
    {
        println!(
            "signed {} engine {} (contract {}) with key {}: {}",
            m.kind,
            m.engine_version,
            m.contract,
            m.key_id,
            out.display()
        );
    }
    Ok(())
}

/// The keyring from `.pub` files.
fn read_keyring(paths: &[PathBuf]) -> Result<Keyring> {
    let mut ring = Keyring::new();
    for p in paths {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        let keys = Keyring::parse(&text).with_context(|| format!("in {}", p.display()))?;
        if keys.is_empty() {
            bail!("{} holds no public key", p.display());
        }
        for k in keys.keys() {
            ring.add(*k);
        }
    }
    Ok(ring)
}

/// `ivcs engine verify --pub KEYS FILE`: prints the manifest, then `ok`, or
/// fails with the reason.
pub fn verify(file: &Path, keys: &[PathBuf], any_host: bool) -> Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let ring = read_keyring(keys)?;
    let parsed = artifact::parse(&bytes).map_err(|e| anyhow::anyhow!("refused: {e}"))?;
    print_manifest(file, &parsed.manifest);
    let outcome = if any_host {
        artifact::verify_signed(&bytes, &ring).map(|_| ())
    } else {
        artifact::verify(&bytes, &ring, &HostProfile::current()?).map(|_| ())
    };
    match outcome {
        Ok(()) => {
            #[allow(clippy::print_stdout)]
            {
                if any_host {
                    println!("ok: signed by trusted key {}", parsed.manifest.key_id);
                } else {
                    println!(
                        "ok: signed by trusted key {}, runs on this host",
                        parsed.manifest.key_id
                    );
                }
            }
            Ok(())
        }
        Err(e) => bail!("refused: {e}"),
    }
}

fn print_manifest(file: &Path, m: &Manifest) {
    #[allow(clippy::print_stdout)]
    {
        println!("artifact:       {}", file.display());
        println!("engine version: {}", m.engine_version);
        println!("contract:       {}", m.contract);
        println!("kind:           {}", m.kind);
        println!("target:         {}", m.target);
        println!("wasmtime:       {}", m.wasmtime);
        if let Some(h) = &m.config_hash {
            println!("config hash:    {h}");
        }
        println!(
            "payload:        {} bytes, sha256 {}",
            m.payload_len, m.payload_sha256
        );
        println!("key id:         {}", m.key_id);
        if let Some(t) = m.signed_at {
            println!("signed at:      {t} (unix seconds)");
        }
    }
}
