//! Signed engine artifacts: the file a host checks before it runs an engine
//! it was sent (issue #7, live engine updates).
//!
//! An artifact wraps one engine payload, either a `.wasm` component (for
//! hosts that compile) or a `.cwasm` precompiled by one wasmtime build and
//! configuration (for the minimal runtime), with a JSON [`Manifest`] saying
//! what it is, and an ed25519 signature by a release key. A host calls
//! [`verify`] with its [`Keyring`] and its [`HostProfile`]; only a
//! [`Verified`] artifact's [`Verified::source`] goes to
//! [`EngineRuntime::new`](crate::EngineRuntime::new). The layout and the
//! reasons for it are in docs/design/hot-swap.md.
//!
//! Not here: fetching artifacts, distributing keys, and the swap itself
//! (instantiating next to the running engine, moving state, rollback).
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! magic "IVCSENG" + format version (1)     8 bytes
//! manifest length N (≤ 64 KiB)             4 bytes, u32
//! manifest                                 N bytes, UTF-8 JSON
//! signature                                64 bytes, ed25519
//! payload                                  the rest: .wasm or .cwasm
//! ```
//!
//! The signature covers [`SIGNING_CONTEXT`] followed by the manifest bytes
//! exactly as stored; the manifest holds the payload's SHA-256 and length,
//! so no byte of the file can change without [`verify`] refusing it.

use crate::runtime::{EngineRuntime, EngineSource, HOST_CONTRACT, contracts_compatible};
use anyhow::{Context, Result, bail};
use base64::Engine as _;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// The first 7 bytes of every artifact; the 8th is the format version.
pub const MAGIC_PREFIX: &[u8; 7] = b"IVCSENG";
/// The format version this host reads and writes.
pub const FORMAT_VERSION: u8 = 1;
/// Bytes before the manifest: magic, format version, manifest length.
pub const HEADER_LEN: usize = 12;
/// A manifest longer than this is refused before it is parsed.
pub const MAX_MANIFEST_LEN: usize = 64 * 1024;
/// An ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Signed before the manifest bytes, so that a signature made for anything
/// else with the same key can never pass for an artifact's.
pub const SIGNING_CONTEXT: &[u8] = b"ivcs engine artifact v1\0";
/// The `target` of a `wasm` artifact.
pub const WASM_TARGET: &str = "wasm32-wasip2";
/// The wasmtime this crate is built with (pinned in the workspace
/// Cargo.toml; a unit test checks it against Cargo.lock). wasmtime has no
/// API that gives its full version.
pub const WASMTIME_VERSION: &str = "48.0.8";
/// Longest text field of a manifest (versions, target).
const MAX_FIELD_LEN: usize = 128;

/// What the payload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    /// A `.wasm` component: any host that compiles (feature `compile`)
    /// can load it.
    Wasm,
    /// A `.cwasm` from [`EngineRuntime::precompile`]: only a host with the
    /// same target, wasmtime version and configuration can load it.
    Precompiled,
}

impl ArtifactKind {
    /// `wasm` or `precompiled`, as in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::Wasm => "wasm",
            ArtifactKind::Precompiled => "precompiled",
        }
    }

    /// What `bytes` look like: a component (`\0asm`, component layer) or a
    /// wasmtime-precompiled component. `None` for anything else, including
    /// a core module and a signed artifact.
    pub fn detect(bytes: &[u8]) -> Option<ArtifactKind> {
        if bytes.starts_with(b"\0asm\x0d\x00\x01\x00") {
            return Some(ArtifactKind::Wasm);
        }
        match wasmtime::Engine::detect_precompiled(bytes) {
            Some(wasmtime::Precompiled::Component) => Some(ArtifactKind::Precompiled),
            _ => None,
        }
    }
}

impl fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an artifact says about its payload. Signed: every field is as the
/// release key's holder wrote it. Unknown fields are ignored (additive
/// changes); a field a host must understand needs a new format version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The engine's `runtime.engine-version`.
    pub engine_version: String,
    /// The engine's `runtime.contract-version` (the WIT package version).
    pub contract: String,
    /// `wasm` or `precompiled`.
    pub kind: ArtifactKind,
    /// `wasm32-wasip2` for `wasm`; for `precompiled`, the architecture and
    /// OS the code was compiled for (`x86_64-linux`, see [`native_target`]).
    pub target: String,
    /// The wasmtime version of the signer; for `precompiled`, the only one
    /// that can load it.
    pub wasmtime: String,
    /// For `precompiled`: SHA-256 (hex) of wasmtime's precompile
    /// compatibility hash of the configuration it was compiled with (see
    /// [`config_hash`]). Absent for `wasm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// SHA-256 of the payload, lowercase hex.
    pub payload_sha256: String,
    /// Payload length in bytes.
    pub payload_len: u64,
    /// Which key signed: [`PublicKey::key_id`].
    pub key_id: String,
    /// When it was signed, seconds since 1970-01-01 UTC (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<u64>,
}

/// Why an artifact was refused. [`verify`] checks in the order of the
/// variants, so each file gets the first reason that applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArtifactError {
    /// Does not start with `IVCSENG`: not an engine artifact.
    BadMagic,
    /// An artifact format this host does not read.
    UnsupportedFormat(u8),
    /// The file ends inside `part` (`header`, `manifest`, `signature`).
    Truncated {
        /// The part that is cut off.
        part: &'static str,
        /// Bytes the file would need to hold it.
        need: usize,
        /// Bytes the file has.
        have: usize,
    },
    /// The manifest length exceeds [`MAX_MANIFEST_LEN`].
    ManifestTooLarge(u64),
    /// The manifest is not JSON of the expected shape, or a field is out of
    /// range.
    MalformedManifest(String),
    /// Signed with a key id that is not in the keyring.
    UnknownKey(String),
    /// The signature does not verify under the trusted key with that id:
    /// the manifest was changed or the signature forged.
    BadSignature(String),
    /// The payload's length differs from the manifest's.
    PayloadLength {
        /// What the manifest says.
        manifest: u64,
        /// What the file holds.
        actual: u64,
    },
    /// The payload's SHA-256 differs from the manifest's.
    PayloadHash {
        /// What the manifest says.
        manifest: String,
        /// The payload's own.
        actual: String,
    },
    /// The engine implements a contract this host does not speak.
    Contract {
        /// The manifest's contract.
        engine: String,
        /// This host's.
        host: String,
    },
    /// A `wasm` artifact for a host that cannot compile.
    NotCompilable,
    /// Compiled for another architecture or OS (or a `wasm` artifact whose
    /// target is not `wasm32-wasip2`).
    Target {
        /// The manifest's target.
        artifact: String,
        /// This host's.
        host: String,
    },
    /// Precompiled by another wasmtime version.
    Wasmtime {
        /// The manifest's wasmtime version.
        artifact: String,
        /// This host's.
        host: String,
    },
    /// Precompiled with another wasmtime configuration.
    ConfigHash {
        /// The manifest's config hash.
        artifact: String,
        /// This host's.
        host: String,
    },
}

/// The coarse class of an [`ArtifactError`]: what a host does about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalKind {
    /// Not a well-formed artifact (damaged in transit, or not one at all).
    Malformed,
    /// Well-formed, but not provably from a trusted key, or changed after
    /// signing: report it, never retry it.
    Untrusted,
    /// Genuine, but not for this host (contract, target, wasmtime build):
    /// ask for another artifact.
    Incompatible,
}

impl ArtifactError {
    /// The refusal's class.
    pub fn kind(&self) -> RefusalKind {
        use ArtifactError::*;
        match self {
            BadMagic
            | UnsupportedFormat(_)
            | Truncated { .. }
            | ManifestTooLarge(_)
            | MalformedManifest(_) => RefusalKind::Malformed,
            UnknownKey(_) | BadSignature(_) | PayloadLength { .. } | PayloadHash { .. } => {
                RefusalKind::Untrusted
            }
            Contract { .. }
            | NotCompilable
            | Target { .. }
            | Wasmtime { .. }
            | ConfigHash { .. } => RefusalKind::Incompatible,
        }
    }
}

impl fmt::Display for ArtifactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ArtifactError::*;
        match self {
            BadMagic => write!(f, "not an engine artifact (bad magic)"),
            UnsupportedFormat(v) => write!(
                f,
                "artifact format version {v} is not supported (this host reads {FORMAT_VERSION})"
            ),
            Truncated { part, need, have } => write!(
                f,
                "artifact truncated in the {part}: needs {need} bytes, has {have}"
            ),
            ManifestTooLarge(n) => write!(
                f,
                "manifest of {n} bytes exceeds the limit of {MAX_MANIFEST_LEN}"
            ),
            MalformedManifest(why) => write!(f, "malformed manifest: {why}"),
            UnknownKey(id) => write!(f, "signed by unknown key {id} (not in the keyring)"),
            BadSignature(id) => write!(
                f,
                "bad signature for key {id}: the manifest was changed or the signature forged"
            ),
            PayloadLength { manifest, actual } => write!(
                f,
                "payload length mismatch: manifest says {manifest} bytes, file has {actual}"
            ),
            PayloadHash { manifest, actual } => write!(
                f,
                "payload hash mismatch: manifest says sha256 {manifest}, payload is {actual}"
            ),
            Contract { engine, host } => write!(
                f,
                "engine implements contract {engine}, this host speaks {host}"
            ),
            NotCompilable => write!(
                f,
                "a wasm artifact needs a host that compiles; this one loads precompiled engines only"
            ),
            Target { artifact, host } => {
                write!(f, "artifact is for target {artifact}, this host is {host}")
            }
            Wasmtime { artifact, host } => write!(
                f,
                "artifact was precompiled by wasmtime {artifact}, this host runs {host}"
            ),
            ConfigHash { artifact, host } => write!(
                f,
                "artifact was precompiled with wasmtime config {artifact}, this host's is {host}"
            ),
        }
    }
}

impl std::error::Error for ArtifactError {}

/// An ed25519 public key trusted to sign engines.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// The key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> PublicKey {
        PublicKey(bytes)
    }

    /// The key's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 8 bytes of the key's SHA-256, as 16 hex digits: names the
    /// key in manifests and messages.
    pub fn key_id(&self) -> String {
        hex::encode(&Sha256::digest(self.0)[..8])
    }

    /// The `.pub` file text: a comment with the key id, then the key in hex.
    pub fn to_text(&self) -> String {
        format!(
            "# ivcs engine signing key {}\n{}\n",
            self.key_id(),
            hex::encode(self.0)
        )
    }

    /// One key in hex (64 digits), surrounding space allowed.
    pub fn from_hex(text: &str) -> Result<PublicKey> {
        let mut key = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut key)
            .context("a public key is 64 hex digits (32 bytes)")?;
        Ok(PublicKey(key))
    }

    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, signature)
            .is_ok()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// The public keys a host trusts to sign engines.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    keys: Vec<PublicKey>,
}

impl Keyring {
    /// An empty keyring: it trusts nothing.
    pub fn new() -> Keyring {
        Keyring::default()
    }

    /// Trusts `key` too.
    pub fn add(&mut self, key: PublicKey) {
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
    }

    /// The keys of `.pub` file text: one key in hex per line; blank lines
    /// and lines starting with `#` are skipped. Several `.pub` files
    /// concatenated make a keyring file.
    pub fn parse(text: &str) -> Result<Keyring> {
        let mut ring = Keyring::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            ring.add(PublicKey::from_hex(line).with_context(|| format!("line {}", n + 1))?);
        }
        Ok(ring)
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// Whether it trusts no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl FromIterator<PublicKey> for Keyring {
    fn from_iter<I: IntoIterator<Item = PublicKey>>(iter: I) -> Keyring {
        let mut ring = Keyring::new();
        for k in iter {
            ring.add(k);
        }
        ring
    }
}

/// A private ed25519 key that signs artifacts (the release key).
pub struct SigningKey {
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

impl SigningKey {
    /// A new random key (the system's random source).
    pub fn generate() -> Result<SigningKey> {
        let rng = ring::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| anyhow::anyhow!("generating an ed25519 key failed"))?;
        SigningKey::from_pkcs8(doc.as_ref())
    }

    /// The key from PKCS#8 DER: v2 as this crate writes it, or v1 (no
    /// public key inside) as `openssl genpkey -algorithm ed25519` does.
    pub fn from_pkcs8(der: &[u8]) -> Result<SigningKey> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|e| anyhow::anyhow!("not an ed25519 PKCS#8 private key: {e}"))?;
        Ok(SigningKey {
            pair,
            pkcs8: der.to_vec(),
        })
    }

    /// The key from its PEM text (`-----BEGIN PRIVATE KEY-----`, base64 of
    /// PKCS#8); text around the block is ignored.
    pub fn from_pem(text: &str) -> Result<SigningKey> {
        let start = text
            .find(PEM_BEGIN)
            .context("no '-----BEGIN PRIVATE KEY-----' line: not a private key file")?;
        let body = &text[start + PEM_BEGIN.len()..];
        let end = body
            .find(PEM_END)
            .context("no '-----END PRIVATE KEY-----' line")?;
        let b64: String = body[..end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .context("the private key block is not base64")?;
        SigningKey::from_pkcs8(&der)
    }

    /// The key as PEM text (PKCS#8), readable by `openssl pkey`.
    pub fn to_pem(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.pkcs8);
        let mut out = String::from(PEM_BEGIN);
        out.push('\n');
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
        out.push_str(PEM_END);
        out.push('\n');
        out
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        let mut key = [0u8; 32];
        key.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(key)
    }

    fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut sig = [0u8; SIGNATURE_LEN];
        sig.copy_from_slice(self.pair.sign(message).as_ref());
        sig
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.public_key().key_id())
    }
}

/// What an artifact must match to run here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostProfile {
    /// The contract this host speaks ([`HOST_CONTRACT`]).
    pub contract: String,
    /// Architecture and OS ([`native_target`]).
    pub target: String,
    /// The wasmtime version ([`WASMTIME_VERSION`]).
    pub wasmtime: String,
    /// [`config_hash`] of this host's configuration. `None` on a host built
    /// without the compiler, where wasmtime cannot compute it: there the
    /// precompiled engine's own metadata is still checked by wasmtime when
    /// it is loaded, and a mismatch fails the load instead of [`verify`].
    pub config_hash: Option<String>,
    /// Whether this host compiles `.wasm` (feature `compile`).
    pub compiles: bool,
}

impl HostProfile {
    /// This process's profile.
    pub fn current() -> Result<HostProfile> {
        Ok(HostProfile {
            contract: HOST_CONTRACT.to_string(),
            target: native_target(),
            wasmtime: WASMTIME_VERSION.to_string(),
            config_hash: current_config_hash()?,
            compiles: cfg!(feature = "compile"),
        })
    }
}

/// This host's architecture and OS as `ARCH-OS` (`x86_64-linux`,
/// `aarch64-linux`): what wasmtime itself compares when it loads a
/// precompiled artifact. Finer differences (CPU features) are in the
/// config hash.
pub fn native_target() -> String {
    format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS)
}

/// SHA-256 (hex) of wasmtime's precompile compatibility hash for `config`:
/// it changes with the compiler's target and flags (including the CPU
/// features it detected), tunables, wasm features and the wasmtime
/// version, i.e. whenever a precompiled artifact would stop loading.
#[cfg(feature = "compile")]
pub fn config_hash(config: &wasmtime::Config) -> Result<String> {
    use std::hash::Hash;
    let engine = wasmtime::Engine::new(config)?;
    let mut h = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    Ok(hex::encode(h.0.finalize()))
}

#[cfg(feature = "compile")]
fn current_config_hash() -> Result<Option<String>> {
    config_hash(&crate::runtime::config()).map(Some)
}

#[cfg(not(feature = "compile"))]
fn current_config_hash() -> Result<Option<String>> {
    Ok(None)
}

/// Feeds what a [`std::hash::Hash`] writes into SHA-256.
#[cfg(feature = "compile")]
struct Sha256Hasher(Sha256);

#[cfg(feature = "compile")]
impl std::hash::Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let d = self.0.clone().finalize();
        u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    }
}

/// An artifact split into its parts; nothing is verified yet.
#[derive(Clone, Debug)]
pub struct Artifact<'a> {
    /// The parsed manifest.
    pub manifest: Manifest,
    /// The manifest bytes as stored (what the signature covers).
    manifest_bytes: &'a [u8],
    signature: &'a [u8],
    /// The payload as stored.
    pub payload: &'a [u8],
}

/// An artifact whose signature, payload and (for [`verify`]) fit to this
/// host were checked.
#[derive(Clone, Debug)]
pub struct Verified<'a> {
    /// The signed manifest.
    pub manifest: Manifest,
    /// The engine's bytes.
    pub payload: &'a [u8],
}

impl<'a> Verified<'a> {
    /// The payload as what [`EngineRuntime::new`] loads.
    pub fn source(&self) -> EngineSource<'a> {
        match self.manifest.kind {
            ArtifactKind::Wasm => EngineSource::Wasm(self.payload),
            ArtifactKind::Precompiled => EngineSource::Precompiled(self.payload),
        }
    }

    /// Whether the engine can run on `host`: contract, then for `wasm` a
    /// compiling host, for `precompiled` the same target, wasmtime version
    /// and (if the host knows it) config hash. [`verify`] ends with this.
    pub fn check_host(&self, host: &HostProfile) -> Result<(), ArtifactError> {
        let m = &self.manifest;
        if !contracts_compatible(&m.contract, &host.contract) {
            return Err(ArtifactError::Contract {
                engine: m.contract.clone(),
                host: host.contract.clone(),
            });
        }
        match m.kind {
            ArtifactKind::Wasm => {
                if m.target != WASM_TARGET {
                    return Err(ArtifactError::Target {
                        artifact: m.target.clone(),
                        host: WASM_TARGET.to_string(),
                    });
                }
                if !host.compiles {
                    return Err(ArtifactError::NotCompilable);
                }
            }
            ArtifactKind::Precompiled => {
                if m.target != host.target {
                    return Err(ArtifactError::Target {
                        artifact: m.target.clone(),
                        host: host.target.clone(),
                    });
                }
                if m.wasmtime != host.wasmtime {
                    return Err(ArtifactError::Wasmtime {
                        artifact: m.wasmtime.clone(),
                        host: host.wasmtime.clone(),
                    });
                }
                if let Some(ours) = &host.config_hash
                    && m.config_hash.as_ref() != Some(ours)
                {
                    return Err(ArtifactError::ConfigHash {
                        artifact: m.config_hash.clone().unwrap_or_default(),
                        host: ours.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Splits `bytes` into header, manifest, signature and payload, and parses
/// the manifest. Checks the form only: use [`verify`] before trusting any
/// of it. Never panics, whatever the bytes.
pub fn parse(bytes: &[u8]) -> Result<Artifact<'_>, ArtifactError> {
    let have = bytes.len();
    let prefix = &bytes[..have.min(MAGIC_PREFIX.len())];
    if !MAGIC_PREFIX.starts_with(prefix) {
        return Err(ArtifactError::BadMagic);
    }
    let truncated = |part, need| ArtifactError::Truncated { part, need, have };
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Err(truncated("header", HEADER_LEN));
    };
    if header[7] != FORMAT_VERSION {
        return Err(ArtifactError::UnsupportedFormat(header[7]));
    }
    let len = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    if len as usize > MAX_MANIFEST_LEN {
        return Err(ArtifactError::ManifestTooLarge(len.into()));
    }
    let manifest_end = HEADER_LEN + len as usize;
    let signature_end = manifest_end + SIGNATURE_LEN;
    let Some(manifest_bytes) = bytes.get(HEADER_LEN..manifest_end) else {
        return Err(truncated("manifest", manifest_end));
    };
    let Some(signature) = bytes.get(manifest_end..signature_end) else {
        return Err(truncated("signature", signature_end));
    };
    let manifest: Manifest = serde_json::from_slice(manifest_bytes)
        .map_err(|e| ArtifactError::MalformedManifest(printable(&e.to_string())))?;
    check_manifest(&manifest).map_err(ArtifactError::MalformedManifest)?;
    Ok(Artifact {
        manifest,
        manifest_bytes,
        signature,
        payload: &bytes[signature_end..],
    })
}

/// `text` with every character outside printable ASCII escaped: JSON
/// errors quote parts of the (untrusted) manifest, and messages end up on
/// terminals and in logs.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c.to_string()
            } else {
                c.escape_unicode().to_string()
            }
        })
        .collect()
}

/// The form rules of a manifest beyond its JSON shape: printable, bounded
/// text; hashes and key ids in lowercase hex; a config hash for every
/// precompiled artifact.
fn check_manifest(m: &Manifest) -> Result<(), String> {
    let text = |name: &str, v: &str| {
        if v.is_empty() || v.len() > MAX_FIELD_LEN || !v.bytes().all(|b| (0x20..0x7f).contains(&b))
        {
            Err(format!(
                "{name} must be 1 to {MAX_FIELD_LEN} printable ASCII characters"
            ))
        } else {
            Ok(())
        }
    };
    let hex = |name: &str, v: &str, digits: usize| {
        if v.len() != digits || !v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Err(format!("{name} must be {digits} lowercase hex digits"))
        } else {
            Ok(())
        }
    };
    text("engine_version", &m.engine_version)?;
    text("contract", &m.contract)?;
    text("target", &m.target)?;
    text("wasmtime", &m.wasmtime)?;
    hex("payload_sha256", &m.payload_sha256, 64)?;
    hex("key_id", &m.key_id, 16)?;
    match (&m.config_hash, m.kind) {
        (Some(h), _) => hex("config_hash", h, 64)?,
        (None, ArtifactKind::Precompiled) => {
            return Err("a precompiled artifact must have a config_hash".into());
        }
        (None, ArtifactKind::Wasm) => {}
    }
    Ok(())
}

fn signed_message(manifest_bytes: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIGNING_CONTEXT.len() + manifest_bytes.len());
    msg.extend_from_slice(SIGNING_CONTEXT);
    msg.extend_from_slice(manifest_bytes);
    msg
}

/// Checks form, key, signature and payload, but not whether the engine can
/// run here (for tools that inspect artifacts made for other devices).
/// Hosts use [`verify`].
pub fn verify_signed<'a>(
    bytes: &'a [u8],
    keyring: &Keyring,
) -> Result<Verified<'a>, ArtifactError> {
    let art = parse(bytes)?;
    let m = art.manifest;
    let candidates: Vec<&PublicKey> = keyring
        .keys()
        .iter()
        .filter(|k| k.key_id() == m.key_id)
        .collect();
    if candidates.is_empty() {
        return Err(ArtifactError::UnknownKey(m.key_id));
    }
    let message = signed_message(art.manifest_bytes);
    if !candidates
        .iter()
        .any(|k| k.verifies(&message, art.signature))
    {
        return Err(ArtifactError::BadSignature(m.key_id));
    }
    let actual_len = art.payload.len() as u64;
    if actual_len != m.payload_len {
        return Err(ArtifactError::PayloadLength {
            manifest: m.payload_len,
            actual: actual_len,
        });
    }
    let actual = hex::encode(Sha256::digest(art.payload));
    if actual != m.payload_sha256 {
        return Err(ArtifactError::PayloadHash {
            manifest: m.payload_sha256,
            actual,
        });
    }
    Ok(Verified {
        manifest: m,
        payload: art.payload,
    })
}

/// Everything a host checks before it runs an engine it was sent, in this
/// order: the file's form (magic, format version, lengths, manifest JSON);
/// that its key id is in `keyring`; the signature; the payload's length and
/// SHA-256; then [`Verified::check_host`] against `host`. The first failure
/// is returned. Never panics, whatever the bytes.
pub fn verify<'a>(
    bytes: &'a [u8],
    keyring: &Keyring,
    host: &HostProfile,
) -> Result<Verified<'a>, ArtifactError> {
    let verified = verify_signed(bytes, keyring)?;
    verified.check_host(host)?;
    Ok(verified)
}

/// Writes an artifact for `payload` with `manifest`, whose `payload_sha256`,
/// `payload_len` and `key_id` are set here from the payload and the key.
/// The caller vouches for the rest; [`sign`] reads it from the engine.
pub fn seal(mut manifest: Manifest, payload: &[u8], key: &SigningKey) -> Result<Vec<u8>> {
    manifest.payload_sha256 = hex::encode(Sha256::digest(payload));
    manifest.payload_len = payload.len() as u64;
    manifest.key_id = key.public_key().key_id();
    check_manifest(&manifest).map_err(|e| anyhow::anyhow!("refusing to sign: {e}"))?;
    let manifest_bytes = serde_json::to_vec_pretty(&manifest)?;
    if manifest_bytes.len() > MAX_MANIFEST_LEN {
        bail!(
            "refusing to sign: manifest of {} bytes exceeds {MAX_MANIFEST_LEN}",
            manifest_bytes.len()
        );
    }
    let signature = key.sign(&signed_message(&manifest_bytes));
    let mut out =
        Vec::with_capacity(HEADER_LEN + manifest_bytes.len() + SIGNATURE_LEN + payload.len());
    out.extend_from_slice(MAGIC_PREFIX);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&(manifest_bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&manifest_bytes);
    out.extend_from_slice(&signature);
    out.extend_from_slice(payload);
    Ok(out)
}

/// Signs an engine: loads `payload` as `kind` (a precompiled payload must
/// have been made for this host by [`EngineRuntime::precompile`]; loading it
/// runs its code, so sign only your own compiler's output), asks it for its
/// engine and contract versions ([`EngineRuntime::versions`]), takes target,
/// wasmtime version and config hash from this host, and [`seal`]s.
/// `signed_at`: seconds since 1970 UTC, if the artifact should say.
pub fn sign(
    payload: &[u8],
    kind: ArtifactKind,
    key: &SigningKey,
    signed_at: Option<u64>,
) -> Result<Vec<u8>> {
    match ArtifactKind::detect(payload) {
        Some(k) if k == kind => {}
        Some(k) => bail!("the engine is a {k} payload, not {kind}"),
        None => bail!(
            "not an engine: neither a wasm component nor a component precompiled by this wasmtime"
        ),
    }
    let source = match kind {
        ArtifactKind::Wasm => EngineSource::Wasm(payload),
        ArtifactKind::Precompiled => EngineSource::Precompiled(payload),
    };
    let versions = EngineRuntime::new(source)?
        .versions()
        .context("asking the engine for its versions")?;
    let host = HostProfile::current()?;
    let (target, config_hash) = match kind {
        ArtifactKind::Wasm => (WASM_TARGET.to_string(), None),
        ArtifactKind::Precompiled => (
            host.target,
            Some(host.config_hash.context(
                "this build cannot compute the wasmtime config hash (no compiler): \
                 sign precompiled engines with a build that has feature `compile`",
            )?),
        ),
    };
    let manifest = Manifest {
        engine_version: versions.engine_version,
        contract: versions.contract,
        kind,
        target,
        wasmtime: host.wasmtime,
        config_hash,
        payload_sha256: String::new(),
        payload_len: 0,
        key_id: String::new(),
        signed_at,
    };
    seal(manifest, payload, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This host, as tests see it: compiles, with a made-up config hash.
    fn host() -> HostProfile {
        HostProfile {
            contract: "0.1.0".into(),
            target: "x86_64-linux".into(),
            wasmtime: WASMTIME_VERSION.into(),
            config_hash: Some("c".repeat(64)),
            compiles: true,
        }
    }

    fn manifest(kind: ArtifactKind) -> Manifest {
        let h = host();
        Manifest {
            engine_version: "2026.1.0-test".into(),
            contract: "0.1.3".into(),
            kind,
            target: match kind {
                ArtifactKind::Wasm => WASM_TARGET.into(),
                ArtifactKind::Precompiled => h.target,
            },
            wasmtime: h.wasmtime,
            config_hash: match kind {
                ArtifactKind::Wasm => None,
                ArtifactKind::Precompiled => h.config_hash,
            },
            payload_sha256: String::new(),
            payload_len: 0,
            key_id: String::new(),
            signed_at: Some(1_700_000_000),
        }
    }

    fn payload() -> Vec<u8> {
        (0..4096u32).map(|i| (i * 7 + i / 256) as u8).collect()
    }

    fn keyring(key: &SigningKey) -> Keyring {
        [key.public_key()].into_iter().collect()
    }

    fn sealed(kind: ArtifactKind, key: &SigningKey) -> Vec<u8> {
        seal(manifest(kind), &payload(), key).unwrap()
    }

    /// An artifact from raw manifest bytes, signed as given: for manifests
    /// [`seal`] would correct or refuse.
    fn seal_raw(manifest_bytes: &[u8], payload: &[u8], key: &SigningKey) -> Vec<u8> {
        let mut out = MAGIC_PREFIX.to_vec();
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&(manifest_bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(manifest_bytes);
        out.extend_from_slice(&key.sign(&signed_message(manifest_bytes)));
        out.extend_from_slice(payload);
        out
    }

    /// Where the manifest lies inside an artifact.
    fn manifest_range(art: &[u8]) -> std::ops::Range<usize> {
        let len = u32::from_le_bytes(art[8..12].try_into().unwrap()) as usize;
        HEADER_LEN..HEADER_LEN + len
    }

    fn refusal(bytes: &[u8], ring: &Keyring, host: &HostProfile) -> ArtifactError {
        verify(bytes, ring, host).expect_err("the artifact was accepted")
    }

    /// A small deterministic generator (xorshift64*), so that a failing
    /// mutation reproduces.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn wasm_artifact_round_trips() {
        let key = SigningKey::generate().unwrap();
        let art = sealed(ArtifactKind::Wasm, &key);
        assert!(art.starts_with(b"IVCSENG\x01"));
        let v = verify(&art, &keyring(&key), &host()).unwrap();
        assert_eq!(v.payload, payload().as_slice());
        assert_eq!(v.manifest.kind, ArtifactKind::Wasm);
        assert_eq!(v.manifest.target, "wasm32-wasip2");
        assert_eq!(v.manifest.engine_version, "2026.1.0-test");
        assert_eq!(v.manifest.key_id, key.public_key().key_id());
        assert_eq!(v.manifest.payload_len, 4096);
        assert_eq!(v.manifest.config_hash, None);
        assert!(matches!(v.source(), EngineSource::Wasm(p) if p.len() == 4096));
    }

    #[test]
    fn precompiled_artifact_round_trips() {
        let key = SigningKey::generate().unwrap();
        let art = sealed(ArtifactKind::Precompiled, &key);
        let v = verify(&art, &keyring(&key), &host()).unwrap();
        assert_eq!(v.manifest.kind, ArtifactKind::Precompiled);
        assert_eq!(v.manifest.config_hash, host().config_hash);
        assert!(matches!(v.source(), EngineSource::Precompiled(p) if p == payload()));
    }

    #[test]
    fn an_empty_payload_round_trips() {
        let key = SigningKey::generate().unwrap();
        let art = seal(manifest(ArtifactKind::Wasm), &[], &key).unwrap();
        assert!(
            verify(&art, &keyring(&key), &host())
                .unwrap()
                .payload
                .is_empty()
        );
    }

    #[test]
    fn every_tampered_payload_byte_is_refused() {
        let key = SigningKey::generate().unwrap();
        let ring = keyring(&key);
        let art = sealed(ArtifactKind::Wasm, &key);
        let start = art.len() - payload().len();
        for i in start..art.len() {
            let mut bad = art.clone();
            bad[i] ^= 0x01;
            assert!(
                matches!(
                    refusal(&bad, &ring, &host()),
                    ArtifactError::PayloadHash { .. }
                ),
                "payload byte {i}"
            );
        }
    }

    #[test]
    fn a_payload_byte_added_or_removed_is_refused() {
        let key = SigningKey::generate().unwrap();
        let ring = keyring(&key);
        let art = sealed(ArtifactKind::Wasm, &key);
        let mut longer = art.clone();
        longer.push(0);
        assert_eq!(
            refusal(&longer, &ring, &host()),
            ArtifactError::PayloadLength {
                manifest: 4096,
                actual: 4097
            }
        );
        let shorter = &art[..art.len() - 1];
        assert_eq!(
            refusal(shorter, &ring, &host()),
            ArtifactError::PayloadLength {
                manifest: 4096,
                actual: 4095
            }
        );
    }

    #[test]
    fn every_tampered_manifest_byte_is_refused() {
        let key = SigningKey::generate().unwrap();
        let ring = keyring(&key);
        let art = sealed(ArtifactKind::Precompiled, &key);
        for i in manifest_range(&art) {
            let mut bad = art.clone();
            bad[i] ^= 0x01;
            let e = refusal(&bad, &ring, &host());
            // The JSON may break (malformed), name another key (unknown),
            // or stay well-formed and fail the signature: never accepted.
            assert!(
                matches!(
                    e,
                    ArtifactError::BadSignature(_)
                        | ArtifactError::MalformedManifest(_)
                        | ArtifactError::UnknownKey(_)
                ),
                "manifest byte {i}: {e}"
            );
        }
    }

    #[test]
    fn a_changed_manifest_value_fails_the_signature() {
        let key = SigningKey::generate().unwrap();
        let art = sealed(ArtifactKind::Wasm, &key);
        let text = String::from_utf8(art[manifest_range(&art)].to_vec()).unwrap();
        let forged = text.replace("2026.1.0-test", "2026.9.0-test");
        assert_ne!(forged, text);
        let mut bad = art[..HEADER_LEN].to_vec();
        bad.extend_from_slice(forged.as_bytes());
        bad.extend_from_slice(&art[HEADER_LEN + text.len()..]);
        assert_eq!(
            refusal(&bad, &keyring(&key), &host()),
            ArtifactError::BadSignature(key.public_key().key_id())
        );
    }

    #[test]
    fn a_tampered_signature_is_refused() {
        let key = SigningKey::generate().unwrap();
        let art = sealed(ArtifactKind::Wasm, &key);
        let sig = manifest_range(&art).end;
        for i in sig..sig + SIGNATURE_LEN {
            let mut bad = art.clone();
            bad[i] ^= 0x80;
            assert!(matches!(
                refusal(&bad, &keyring(&key), &host()),
                ArtifactError::BadSignature(_)
            ));
        }
    }

    #[test]
    fn a_key_outside_the_keyring_is_refused() {
        let trusted = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let art = sealed(ArtifactKind::Wasm, &other);
        assert_eq!(
            refusal(&art, &keyring(&trusted), &host()),
            ArtifactError::UnknownKey(other.public_key().key_id())
        );
        assert!(matches!(
            refusal(&art, &Keyring::new(), &host()),
            ArtifactError::UnknownKey(_)
        ));
    }

    #[test]
    fn a_signature_by_another_key_under_a_trusted_key_id_is_refused() {
        let trusted = SigningKey::generate().unwrap();
        let forger = SigningKey::generate().unwrap();
        let mut m = manifest(ArtifactKind::Wasm);
        let p = payload();
        m.payload_sha256 = hex::encode(Sha256::digest(&p));
        m.payload_len = p.len() as u64;
        m.key_id = trusted.public_key().key_id();
        let forged = seal_raw(&serde_json::to_vec(&m).unwrap(), &p, &forger);
        assert_eq!(
            refusal(&forged, &keyring(&trusted), &host()),
            ArtifactError::BadSignature(trusted.public_key().key_id())
        );
        // The same bytes signed by the trusted key pass: the test above
        // fails on the signature alone.
        let genuine = seal_raw(&serde_json::to_vec(&m).unwrap(), &p, &trusted);
        verify(&genuine, &keyring(&trusted), &host()).unwrap();
    }

    #[test]
    fn a_keyring_with_several_keys_finds_the_signer() {
        let keys: Vec<SigningKey> = (0..3).map(|_| SigningKey::generate().unwrap()).collect();
        let ring: Keyring = keys.iter().map(|k| k.public_key()).collect();
        for k in &keys {
            verify(&sealed(ArtifactKind::Wasm, k), &ring, &host()).unwrap();
        }
    }

    #[test]
    fn every_truncation_is_refused() {
        let key = SigningKey::generate().unwrap();
        let ring = keyring(&key);
        let art = sealed(ArtifactKind::Wasm, &key);
        let sig_end = manifest_range(&art).end + SIGNATURE_LEN;
        for n in 0..art.len() {
            let e = refusal(&art[..n], &ring, &host());
            let expected = if n < HEADER_LEN {
                "header"
            } else if n < manifest_range(&art).end {
                "manifest"
            } else if n < sig_end {
                "signature"
            } else {
                assert!(matches!(e, ArtifactError::PayloadLength { .. }), "{n}: {e}");
                continue;
            };
            assert!(
                matches!(e, ArtifactError::Truncated { part, have, .. } if part == expected && have == n),
                "{n}: {e}"
            );
        }
    }

    #[test]
    fn garbage_is_not_an_artifact() {
        let ring = keyring(&SigningKey::generate().unwrap());
        for bytes in [
            &b"\0asm\x0d\x00\x01\x00"[..],
            b"\x7fELF\x02\x01\x01",
            b"hello, world",
            b"IVCSEXE\x01",
            b"X",
        ] {
            assert_eq!(refusal(bytes, &ring, &host()), ArtifactError::BadMagic);
        }
        let mut rng = Rng(0x5eed);
        for _ in 0..1000 {
            let len = rng.below(300);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            assert!(verify(&bytes, &ring, &host()).is_err());
        }
    }

    #[test]
    fn another_format_version_is_refused() {
        let key = SigningKey::generate().unwrap();
        let mut art = sealed(ArtifactKind::Wasm, &key);
        art[7] = 2;
        assert_eq!(
            refusal(&art, &keyring(&key), &host()),
            ArtifactError::UnsupportedFormat(2)
        );
    }

    #[test]
    fn an_oversized_manifest_is_refused_before_it_is_read() {
        let key = SigningKey::generate().unwrap();
        let mut art = sealed(ArtifactKind::Wasm, &key);
        art[8..12].copy_from_slice(&(MAX_MANIFEST_LEN as u32 + 1).to_le_bytes());
        assert_eq!(
            refusal(&art, &keyring(&key), &host()),
            ArtifactError::ManifestTooLarge(MAX_MANIFEST_LEN as u64 + 1)
        );
        art[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            refusal(&art, &keyring(&key), &host()),
            ArtifactError::ManifestTooLarge(u32::MAX.into())
        );
    }

    #[test]
    fn malformed_manifests_are_refused_with_the_reason() {
        let key = SigningKey::generate().unwrap();
        let ring = keyring(&key);
        let p = payload();
        let good = {
            let mut m = manifest(ArtifactKind::Precompiled);
            m.payload_sha256 = hex::encode(Sha256::digest(&p));
            m.payload_len = p.len() as u64;
            m.key_id = key.public_key().key_id();
            serde_json::to_value(m).unwrap()
        };
        let with = |field: &str, value: serde_json::Value| {
            let mut v = good.clone();
            if value.is_null() {
                v.as_object_mut().unwrap().remove(field);
            } else {
                v[field] = value;
            }
            seal_raw(&serde_json::to_vec(&v).unwrap(), &p, &key)
        };
        let cases = [
            (seal_raw(b"not json", &p, &key), "expected"),
            (seal_raw(b"", &p, &key), "EOF"),
            (seal_raw(b"42", &p, &key), "invalid type"),
            (with("kind", "native".into()), "unknown variant"),
            (
                with("kind", "\u{1b}[2J".into()),
                "unknown variant `\\u{1b}[2J`",
            ),
            (with("payload_len", (-1).into()), "invalid value"),
            (
                with("engine_version", serde_json::Value::Null),
                "engine_version",
            ),
            (with("engine_version", "".into()), "engine_version must be"),
            (with("target", "x86\u{1b}[2J".into()), "target must be"),
            (with("contract", "0".repeat(129).into()), "contract must be"),
            (
                with("payload_sha256", "ABC".into()),
                "payload_sha256 must be",
            ),
            (with("key_id", "zz".into()), "key_id must be"),
            (
                with("config_hash", serde_json::Value::Null),
                "must have a config_hash",
            ),
        ];
        for (art, why) in cases {
            match refusal(&art, &ring, &host()) {
                ArtifactError::MalformedManifest(m) => {
                    assert!(m.contains(why), "{m} !~ {why}");
                    assert!(!m.chars().any(char::is_control), "{m:?}");
                }
                e => panic!("{why}: {e}"),
            }
        }
        // The unchanged manifest passes: the cases fail on their change.
        verify(
            &seal_raw(&serde_json::to_vec(&good).unwrap(), &p, &key),
            &ring,
            &host(),
        )
        .unwrap();
    }

    #[test]
    fn unknown_manifest_fields_are_ignored() {
        let key = SigningKey::generate().unwrap();
        let p = payload();
        let mut m = serde_json::to_value({
            let mut m = manifest(ArtifactKind::Wasm);
            m.payload_sha256 = hex::encode(Sha256::digest(&p));
            m.payload_len = p.len() as u64;
            m.key_id = key.public_key().key_id();
            m
        })
        .unwrap();
        m["release_notes"] = "faster TS muxing".into();
        let art = seal_raw(&serde_json::to_vec(&m).unwrap(), &p, &key);
        verify(&art, &keyring(&key), &host()).unwrap();
    }

    #[test]
    fn another_contract_major_is_refused() {
        let key = SigningKey::generate().unwrap();
        for contract in ["1.0.0", "0.2.0", "garbage"] {
            let mut m = manifest(ArtifactKind::Wasm);
            m.contract = contract.into();
            let art = seal(m, &payload(), &key).unwrap();
            assert_eq!(
                refusal(&art, &keyring(&key), &host()),
                ArtifactError::Contract {
                    engine: contract.into(),
                    host: "0.1.0".into()
                }
            );
        }
    }

    #[test]
    fn a_precompiled_artifact_for_another_target_is_refused() {
        let key = SigningKey::generate().unwrap();
        let mut m = manifest(ArtifactKind::Precompiled);
        m.target = "aarch64-linux".into();
        let art = seal(m, &payload(), &key).unwrap();
        assert_eq!(
            refusal(&art, &keyring(&key), &host()),
            ArtifactError::Target {
                artifact: "aarch64-linux".into(),
                host: "x86_64-linux".into()
            }
        );
    }

    #[test]
    fn a_precompiled_artifact_for_another_wasmtime_is_refused() {
        let key = SigningKey::generate().unwrap();
        let mut m = manifest(ArtifactKind::Precompiled);
        m.wasmtime = "49.0.0".into();
        let art = seal(m, &payload(), &key).unwrap();
        assert!(matches!(
            refusal(&art, &keyring(&key), &host()),
            ArtifactError::Wasmtime { artifact, .. } if artifact == "49.0.0"
        ));
    }

    #[test]
    fn a_precompiled_artifact_for_another_config_is_refused() {
        let key = SigningKey::generate().unwrap();
        let mut m = manifest(ArtifactKind::Precompiled);
        m.config_hash = Some("d".repeat(64));
        let art = seal(m, &payload(), &key).unwrap();
        let e = refusal(&art, &keyring(&key), &host());
        assert!(
            matches!(&e, ArtifactError::ConfigHash { artifact, .. } if *artifact == "d".repeat(64))
        );
        assert_eq!(e.kind(), RefusalKind::Incompatible);
        // A host that cannot compute its hash leaves it to wasmtime's load.
        let minimal = HostProfile {
            config_hash: None,
            compiles: false,
            ..host()
        };
        verify(&art, &keyring(&key), &minimal).unwrap();
    }

    #[test]
    fn a_wasm_artifact_needs_a_compiling_host() {
        let key = SigningKey::generate().unwrap();
        let art = sealed(ArtifactKind::Wasm, &key);
        let minimal = HostProfile {
            compiles: false,
            ..host()
        };
        assert_eq!(
            refusal(&art, &keyring(&key), &minimal),
            ArtifactError::NotCompilable
        );
        let mut m = manifest(ArtifactKind::Wasm);
        m.target = "x86_64-linux".into();
        let art = seal(m, &payload(), &key).unwrap();
        assert!(matches!(
            refusal(&art, &keyring(&key), &host()),
            ArtifactError::Target { .. }
        ));
    }

    #[test]
    fn checks_run_in_the_documented_order() {
        let key = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let mut m = manifest(ArtifactKind::Precompiled);
        m.contract = "9.0.0".into();
        m.target = "mips-linux".into();
        // Unknown key before anything about the payload or the host.
        let mut art = seal(m.clone(), &payload(), &other).unwrap();
        *art.last_mut().unwrap() ^= 1;
        assert!(matches!(
            refusal(&art, &keyring(&key), &host()),
            ArtifactError::UnknownKey(_)
        ));
        // Payload before contract, contract before target.
        let mut art = seal(m.clone(), &payload(), &key).unwrap();
        *art.last_mut().unwrap() ^= 1;
        let e = refusal(&art, &keyring(&key), &host());
        assert!(matches!(e, ArtifactError::PayloadHash { .. }), "{e}");
        assert_eq!(e.kind(), RefusalKind::Untrusted);
        let art = seal(m, &payload(), &key).unwrap();
        assert!(matches!(
            refusal(&art, &keyring(&key), &host()),
            ArtifactError::Contract { .. }
        ));
        // Signature only: a tool inspecting another device's artifact.
        verify_signed(&art, &keyring(&key)).unwrap();
    }

    #[test]
    fn random_mutations_never_panic_and_never_pass() {
        let key = SigningKey::generate().unwrap();
        let ring = keyring(&key);
        let art = seal(manifest(ArtifactKind::Precompiled), &payload()[..200], &key).unwrap();
        let mut rng = Rng(0x1ce_cafe);
        for round in 0..5000 {
            let mut bad = art.clone();
            match rng.below(4) {
                0 => {
                    for _ in 0..1 + rng.below(4) {
                        let i = rng.below(bad.len());
                        bad[i] ^= 1 + rng.below(255) as u8;
                    }
                }
                1 => bad.truncate(rng.below(art.len())),
                2 => {
                    let i = rng.below(bad.len());
                    bad.insert(i, rng.next() as u8);
                }
                _ => {
                    let i = rng.below(bad.len());
                    bad.remove(i);
                }
            }
            if bad != art {
                assert!(
                    verify(&bad, &ring, &host()).is_err(),
                    "round {round}: mutated artifact accepted"
                );
            }
        }
    }

    #[test]
    fn refusal_messages_name_the_problem() {
        let cases = [
            (ArtifactError::BadMagic, "bad magic"),
            (
                ArtifactError::Truncated {
                    part: "signature",
                    need: 90,
                    have: 80,
                },
                "truncated in the signature",
            ),
            (ArtifactError::UnknownKey("00ff".into()), "unknown key 00ff"),
            (ArtifactError::BadSignature("00ff".into()), "bad signature"),
            (
                ArtifactError::PayloadHash {
                    manifest: "a".into(),
                    actual: "b".into(),
                },
                "payload hash mismatch",
            ),
            (ArtifactError::NotCompilable, "precompiled engines only"),
        ];
        for (e, text) in cases {
            assert!(e.to_string().contains(text), "{e}");
        }
        assert_eq!(ArtifactError::BadMagic.kind(), RefusalKind::Malformed);
    }

    #[test]
    fn private_keys_round_trip_through_pem() {
        let key = SigningKey::generate().unwrap();
        let pem = key.to_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let back = SigningKey::from_pem(&format!("# release key\n{pem}")).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        // Signatures by the reloaded key verify under the original's id.
        verify(&sealed(ArtifactKind::Wasm, &back), &keyring(&key), &host()).unwrap();
        assert!(SigningKey::from_pem("hello").is_err());
        assert!(
            SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----")
                .is_err()
        );
        assert!(format!("{key:?}").contains(&key.public_key().key_id()));
        assert!(!format!("{key:?}").contains(&pem[30..50]));
    }

    /// RFC 8410 §10.3's private key (PKCS#8 v1, as `openssl genpkey`
    /// writes) and §10.1's public key, which belongs to it.
    #[test]
    fn openssl_style_pkcs8_v1_keys_are_accepted() {
        let pem = "-----BEGIN PRIVATE KEY-----\n\
                   MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
                   -----END PRIVATE KEY-----\n";
        let key = SigningKey::from_pem(pem).unwrap();
        assert_eq!(
            key.public_key().to_string(),
            "19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1"
        );
    }

    #[test]
    fn public_keys_round_trip_through_text() {
        let a = SigningKey::generate().unwrap().public_key();
        let b = SigningKey::generate().unwrap().public_key();
        let text = format!("{}\n\n{}", a.to_text(), b.to_text());
        assert!(text.starts_with(&format!("# ivcs engine signing key {}\n", a.key_id())));
        let ring = Keyring::parse(&text).unwrap();
        assert_eq!(ring.keys(), &[a, b]);
        assert_eq!(a.key_id().len(), 16);
        assert_ne!(a.key_id(), b.key_id());
        assert!(Keyring::parse("abcd").is_err());
        assert!(Keyring::parse(&"g".repeat(64)).is_err());
        assert!(Keyring::parse("# nothing\n").unwrap().is_empty());
    }

    #[test]
    fn kinds_are_told_apart_by_their_bytes() {
        assert_eq!(
            ArtifactKind::detect(b"\0asm\x0d\x00\x01\x00"),
            Some(ArtifactKind::Wasm)
        );
        // A core module is not an engine component.
        assert_eq!(ArtifactKind::detect(b"\0asm\x01\x00\x00\x00"), None);
        assert_eq!(ArtifactKind::detect(b"IVCSENG\x01"), None);
        assert_eq!(ArtifactKind::detect(b""), None);
    }

    #[test]
    fn wasmtime_version_matches_the_lockfile() {
        let lock =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock")).unwrap();
        let version = lock
            .split("[[package]]")
            .find(|p| p.contains("\nname = \"wasmtime\"\n"))
            .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
            .expect("wasmtime in Cargo.lock");
        assert_eq!(version.trim_matches('"'), WASMTIME_VERSION);
    }

    #[test]
    fn the_current_profile_is_this_host() {
        let p = HostProfile::current().unwrap();
        assert_eq!(p.contract, HOST_CONTRACT);
        assert_eq!(p.wasmtime, WASMTIME_VERSION);
        assert!(p.target.ends_with(std::env::consts::OS));
        assert_eq!(p.compiles, cfg!(feature = "compile"));
        assert_eq!(p.config_hash.is_some(), cfg!(feature = "compile"));
    }

    #[cfg(feature = "compile")]
    mod compiling {
        use super::super::*;

        #[test]
        fn the_config_hash_is_stable_and_follows_the_config() {
            let ours = config_hash(&crate::runtime::config()).unwrap();
            assert_eq!(ours.len(), 64);
            assert_eq!(ours, config_hash(&crate::runtime::config()).unwrap());
            let mut other = crate::runtime::config();
            other.cranelift_opt_level(wasmtime::OptLevel::None);
            assert_ne!(ours, config_hash(&other).unwrap());
            let mut other = crate::runtime::config();
            other.epoch_interruption(false);
            assert_ne!(ours, config_hash(&other).unwrap());
        }

        /// The smallest component: no imports, no exports.
        const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

        #[test]
        fn precompiled_components_are_detected() {
            let cwasm = EngineRuntime::precompile(EMPTY_COMPONENT).unwrap();
            assert_eq!(
                ArtifactKind::detect(&cwasm),
                Some(ArtifactKind::Precompiled)
            );
        }

        #[test]
        fn signing_refuses_what_is_not_an_engine() {
            let key = SigningKey::generate().unwrap();
            let e = sign(b"hello", ArtifactKind::Wasm, &key, None).unwrap_err();
            assert!(e.to_string().contains("not an engine"), "{e:#}");
            let e = sign(EMPTY_COMPONENT, ArtifactKind::Precompiled, &key, None).unwrap_err();
            assert!(e.to_string().contains("is a wasm payload"), "{e:#}");
            // A component, but without the engine's exports.
            let e = sign(EMPTY_COMPONENT, ArtifactKind::Wasm, &key, None).unwrap_err();
            assert!(format!("{e:#}").contains("instantiating"), "{e:#}");
        }
    }
}
