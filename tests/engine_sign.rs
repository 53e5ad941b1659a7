//! `ivcs engine keygen / sign / verify / compile` as a release manager uses
//! them (docs/guide/engine-updates.md): make a key, sign the engine, verify
//! it, and see every tampered or foreign artifact refused with its reason
//! and a non-zero exit.
//!
//! The binary is `IVCS_BIN` (default `target/release/ivcs`); the engine is
//! the one beside it (`<bin>/../engine/engine.wasm`, the dist/ layout) or
//! `target/engine/engine.wasm` (`make engine`).

use ivcs_tests::cli::{bin, sign_engine};
use ivcs_tests::paths::{scratch_dir, workspace_root};
use ivcs_tests::tools::{Captured, p, run};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn engine_wasm() -> PathBuf {
    let beside = bin().parent().map(|d| d.join("../engine/engine.wasm"));
    let candidates = beside
        .into_iter()
        .chain([workspace_root().join("target/engine/engine.wasm")]);
    let tried: Vec<PathBuf> = candidates.collect();
    tried
        .iter()
        .find(|c| c.is_file())
        .cloned()
        .unwrap_or_else(|| panic!("no engine.wasm at {tried:?}: run `make engine`"))
}

fn ivcs(args: &[&str]) -> Captured {
    run(bin(), args)
}

/// Runs `ivcs engine verify` and expects it to refuse with `reason`.
fn expect_refused(keys: &str, file: &Path, reason: &str) -> Captured {
    let out = ivcs(&["engine", "verify", "--pub", keys, &p(file)]);
    assert!(
        !out.success,
        "{} was accepted:\n{}",
        p(file),
        out.stdout_text()
    );
    assert!(
        out.stderr.contains("refused") && out.stderr.contains(reason),
        "{}: expected a refusal naming {reason:?}, got:\n{}",
        out.cmdline,
        out.stderr
    );
    out
}

/// Where the payload starts: after the 12-byte header, the manifest and the
/// 64-byte signature.
fn payload_start(art: &[u8]) -> usize {
    12 + u32::from_le_bytes(art[8..12].try_into().unwrap()) as usize + 64
}

#[test]
fn keygen_sign_verify_and_tampering() {
    let dir = scratch_dir("engine_sign/flow");
    let wasm = engine_wasm();
    let key = dir.join("release.key");
    let public = dir.join("release.key.pub");

    // keygen: a private key only its owner reads, its public half, and no
    // second key over the first.
    let out = ivcs(&["engine", "keygen", "--out", &p(&key)]).expect_success();
    assert!(
        out.stdout_text().contains("key id:"),
        "{}",
        out.stdout_text()
    );
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "private key mode {mode:o}");
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    let first_key = std::fs::read(&key).unwrap();
    let again = ivcs(&["engine", "keygen", "--out", &p(&key)]);
    assert!(!again.success && again.stderr.contains("refusing to overwrite"));
    assert_eq!(std::fs::read(&key).unwrap(), first_key);

    // sign + verify: ok, with the manifest printed.
    let signed = dir.join("engine.wasm.signed");
    sign_engine(&key, &wasm, &signed);
    let out = ivcs(&["engine", "verify", "--pub", &p(&public), &p(&signed)]).expect_success();
    let text = out.stdout_text();
    for field in [
        "engine version:",
        "contract:       0.4",
        "kind:           wasm",
        "target:         wasm32-wasip2",
        "key id:",
        "ok: signed by trusted key",
    ] {
        assert!(text.contains(field), "no {field:?} in:\n{text}");
    }
    let art = std::fs::read(&signed).unwrap();
    let engine = std::fs::read(&wasm).unwrap();
    assert_eq!(&art[payload_start(&art)..], engine.as_slice());

    // One flipped payload byte.
    let bad = dir.join("payload-flipped.signed");
    let mut bytes = art.clone();
    let i = payload_start(&art) + engine.len() / 2;
    bytes[i] ^= 0x01;
    std::fs::write(&bad, &bytes).unwrap();
    expect_refused(&p(&public), &bad, "payload hash mismatch");

    // One changed manifest byte (a digit of the payload length: still
    // valid JSON, so only the signature catches it).
    let bad = dir.join("manifest-flipped.signed");
    let mut bytes = art.clone();
    let manifest = String::from_utf8(art[12..payload_start(&art) - 64].to_vec()).unwrap();
    let at = manifest.find("\"payload_len\": ").unwrap() + "\"payload_len\": ".len();
    bytes[12 + at] = if bytes[12 + at] == b'9' { b'8' } else { b'9' };
    std::fs::write(&bad, &bytes).unwrap();
    expect_refused(&p(&public), &bad, "bad signature");

    // Cut short.
    let bad = dir.join("truncated.signed");
    std::fs::write(&bad, &art[..100]).unwrap();
    expect_refused(&p(&public), &bad, "truncated");

    // Not an artifact at all.
    expect_refused(&p(&public), &wasm, "not an engine artifact");

    // Another key: unknown; in a keyring with ours (comma list): fine.
    let other = dir.join("other.key");
    ivcs(&["engine", "keygen", "--out", &p(&other)]).expect_success();
    let other_pub = p(&dir.join("other.key.pub"));
    expect_refused(&other_pub, &signed, "unknown key");
    ivcs(&[
        "engine",
        "verify",
        "--pub",
        &format!("{other_pub},{}", p(&public)),
        &p(&signed),
    ])
    .expect_success();
}

#[test]
fn compile_writes_plain_or_signed_precompiled_engines() {
    let dir = scratch_dir("engine_sign/compile");
    let wasm = engine_wasm();
    let key = dir.join("k");
    ivcs(&["engine", "keygen", "--out", &p(&key)]).expect_success();
    let public = p(&dir.join("k.pub"));

    // compile -o: a plain .cwasm; signing it detects the kind.
    let cwasm = dir.join("engine.cwasm");
    ivcs(&["engine", "compile", &p(&wasm), "-o", &p(&cwasm)]).expect_success();
    let signed = dir.join("engine.cwasm.signed");
    sign_engine(&key, &cwasm, &signed);
    let text = ivcs(&["engine", "verify", "--pub", &public, &p(&signed)])
        .expect_success()
        .stdout_text();
    assert!(text.contains("kind:           precompiled"), "{text}");
    assert!(text.contains("config hash:"), "{text}");
    assert!(text.contains("runs on this host"), "{text}");

    // --kind that contradicts the bytes is refused.
    let out = ivcs(&[
        "engine",
        "sign",
        "--key",
        &p(&key),
        "--kind",
        "wasm",
        &p(&cwasm),
        "-o",
        &p(&dir.join("x")),
    ]);
    assert!(
        !out.success && out.stderr.contains("not wasm"),
        "{}",
        out.stderr
    );

    // compile --sign: the signed artifact in one step, same payload.
    let direct = dir.join("direct.signed");
    ivcs(&[
        "engine",
        "compile",
        &p(&wasm),
        "-o",
        &p(&direct),
        "--sign",
        &p(&key),
    ])
    .expect_success();
    let a = std::fs::read(&signed).unwrap();
    let b = std::fs::read(&direct).unwrap();
    assert_eq!(a[payload_start(&a)..], b[payload_start(&b)..]);
    ivcs(&["engine", "verify", "--pub", &public, &p(&direct)]).expect_success();

    // The old spelling (`make` used it) still works.
    let old = dir.join("old.cwasm");
    ivcs(&["engine", "precompile", &p(&wasm), &p(&old)]).expect_success();
    assert_eq!(std::fs::read(&old).unwrap(), std::fs::read(&cwasm).unwrap());
}
