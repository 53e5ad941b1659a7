//! Engine releases (issue #7, delivery): an operator publishes a signed
//! engine artifact for some devices; the cloud checks its form (and, with
//! `engine_keys`, its signature), stores the bytes by digest, and offers it
//! to the targeted devices in their plan view; devices download it with a
//! capability token and report what became of it.
//!
//! The cloud is a courier, not the authority: a device runs an engine only
//! if the signature verifies under the keys in its firmware, whatever the
//! cloud says. What the cloud adds is targeting, a status per device, and
//! early refusal of files that no device could take.
//!
//! - Targeting: an explicit device list, or a percentage of the fleet
//!   chosen by [`in_rollout`] (stable per device and release).
//! - Offer: the newest release not withdrawn that targets the device,
//!   unless the device already reported a final outcome for it
//!   ([`EngineStatus::is_final`]): one offer at a time, never a re-offer
//!   of a release the device swapped to or refused.
//! - Tokens: `exp` and `sig` = HMAC (the service's `engine_token_key`)
//!   over release id, device id and expiry, in the download and report
//!   URLs: the host downloads with its own HTTP client, without the
//!   engine's request signing, and a token is good for one device and one
//!   release only.
//!
//! HTTP routes are in [`crate::release_api`]; docs/design/hot-swap.md
//! ("Delivery") has the reasoning.

use crate::app::App;
use crate::error::{Error, ErrorKind, Result};
use crate::ids;
use crate::model::{EngineStatus, ReleaseRow, Targeting};
use ivcs_host::artifact::{self, Keyring};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::Path;

/// Largest explicit device list of one release.
pub const MAX_TARGET_DEVICES: usize = 10_000;

/// What a device's plan view carries about a release (the WIT
/// `engine-offer`).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct EngineOffer {
    /// Release id.
    pub release: String,
    /// Manifest `engine_version`.
    pub engine_version: String,
    /// Manifest `contract`.
    pub contract: String,
    /// `wasm` or `precompiled`.
    pub kind: String,
    /// Manifest `target`.
    pub target: String,
    /// SHA-256 of the artifact file, hex.
    pub sha256: String,
    /// Artifact file length, bytes.
    pub size: u64,
    /// Download path and query (with the token), under the cloud URL.
    pub url: String,
    /// Report path and query (same token), under the cloud URL.
    pub report_url: String,
}

/// Reads a keyring file for `engine_keys`.
pub fn read_keyring(path: &Path) -> Result<Keyring> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::bad_request(format!("engine_keys {}: {e}", path.display())))?;
    let ring = Keyring::parse(&text)
        .map_err(|e| Error::bad_request(format!("engine_keys {}: {e:#}", path.display())))?;
    if ring.is_empty() {
        return Err(Error::bad_request(format!(
            "engine_keys {}: no key in the file",
            path.display()
        )));
    }
    Ok(ring)
}

/// Whether `device` is in the first `percent` % of `release`'s rollout:
/// the first 8 bytes of SHA-256(`release` NUL `device`) modulo 10,000,
/// below `percent` × 100. Stable (the same answer on every replica and
/// after restarts), independent between releases (a device is not always
/// among the first), and with granularity 0.01 % so small fleets still get
/// close to N %.
pub fn in_rollout(release: &str, device: &str, percent: u32) -> bool {
    let mut h = Sha256::new();
    h.update(release.as_bytes());
    h.update([0]);
    h.update(device.as_bytes());
    let d = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    u64::from_be_bytes(first) % 10_000 < u64::from(percent.min(100)) * 100
}

/// Whether release `r` is for `device`.
pub fn targets(r: &ReleaseRow, device: &str) -> bool {
    match &r.targeting {
        Targeting::Devices(list) => list.iter().any(|d| d == device),
        Targeting::Percent(p) => in_rollout(&r.id, device, *p),
    }
}

/// The capability token's signature for (`release`, `device`, `exp_s`).
fn token_sig(app: &App, release: &str, device: &str, exp_s: u64) -> String {
    // UrlSigner MACs "path \n query \n exp": here release \n device \n exp,
    // under a key used for nothing else.
    app.engine_tokens.sign(release, device, exp_s)
}

/// Checks a token from a download or report URL.
pub fn check_token(app: &App, release: &str, device: &str, exp_s: u64, sig: &str) -> bool {
    app.engine_tokens
        .verify(release, device, exp_s, sig, app.now_ms() / 1000)
}

/// The offer of `r` to `device`, with fresh tokens.
pub fn offer(app: &App, r: &ReleaseRow, device: &str) -> EngineOffer {
    let exp = app.now_ms() / 1000 + app.cfg.engine_token_ttl_s;
    let sig = token_sig(app, &r.id, device, exp);
    let q = format!("device={device}&exp={exp}&sig={sig}");
    EngineOffer {
        release: r.id.clone(),
        engine_version: r.engine_version.clone(),
        contract: r.contract.clone(),
        kind: r.kind.clone(),
        target: r.target.clone(),
        sha256: r.sha256.clone(),
        size: r.size,
        url: format!("/v1/device/engine/{}/artifact?{q}", r.id),
        report_url: format!("/v1/device/engine/{}/report?{q}", r.id),
    }
}

/// What the device's plan view offers it now (see the module docs).
pub async fn offer_for(app: &App, device: &str) -> Result<Option<EngineOffer>> {
    for r in app.repo.releases(true).await? {
        if !targets(&r, device) {
            continue;
        }
        let done = app
            .repo
            .engine_status(&r.id, device)
            .await?
            .is_some_and(EngineStatus::is_final);
        return Ok((!done).then(|| offer(app, &r, device)));
    }
    Ok(None)
}

/// The registered devices `r` targets now.
pub async fn targeted_devices(app: &App, r: &ReleaseRow) -> Result<Vec<String>> {
    Ok(app
        .repo
        .devices()
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .filter(|d| targets(r, d))
        .collect())
}

/// The manifest fields a release keeps, from an uploaded artifact.
#[derive(Debug)]
pub struct Checked {
    /// The parsed manifest.
    pub manifest: artifact::Manifest,
    /// The signature verified under the cloud's keys.
    pub signature_verified: bool,
    /// SHA-256 of the whole file, hex.
    pub sha256: String,
}

/// Checks an uploaded artifact: its form ([`artifact::parse`]), that the
/// payload matches the manifest's length and digest (a file damaged on
/// the way would be refused by every device), and with `keys` its
/// signature. Every refusal is a 400 saying why.
pub fn check_artifact(bytes: &[u8], keys: Option<&Keyring>) -> Result<Checked> {
    let art = artifact::parse(bytes)
        .map_err(|e| Error::bad_request(format!("not a valid engine artifact: {e}")))?;
    let m = &art.manifest;
    let payload_sha = hex::encode(Sha256::digest(art.payload));
    if art.payload.len() as u64 != m.payload_len || payload_sha != m.payload_sha256 {
        return Err(Error::bad_request(format!(
            "the artifact's payload ({} bytes, SHA-256 {payload_sha}) does not match its manifest ({} bytes, {}): damaged or altered",
            art.payload.len(),
            m.payload_len,
            m.payload_sha256
        )));
    }
    let signature_verified = match keys {
        Some(ring) => {
            artifact::verify_signed(bytes, ring).map_err(|e| {
                Error::bad_request(format!(
                    "the artifact is not signed by a key in engine_keys: {e}"
                ))
            })?;
            true
        }
        None => false,
    };
    Ok(Checked {
        manifest: art.manifest,
        signature_verified,
        sha256: hex::encode(Sha256::digest(bytes)),
    })
}

/// A release id from an engine version and a time: the version's
/// characters outside the id alphabet become `-`.
pub fn generated_id(engine_version: &str, now_ms: u64) -> String {
    let v: String = engine_version
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let v = v.trim_start_matches(['.', '_', '-']);
    if v.is_empty() {
        format!("engine-{now_ms}")
    } else {
        format!("{v}-{now_ms}")
    }
}

/// Checks a targeting request: an explicit list of registered devices,
/// or 1-100 %.
pub async fn check_targeting(app: &App, t: &Targeting) -> Result<()> {
    match t {
        Targeting::Percent(p) if (1..=100).contains(p) => Ok(()),
        Targeting::Percent(_) => Err(Error::bad_request("percent must be 1-100")),
        Targeting::Devices(list) => {
            if list.is_empty() || list.len() > MAX_TARGET_DEVICES {
                return Err(Error::bad_request(format!(
                    "devices must list 1-{MAX_TARGET_DEVICES} device ids"
                )));
            }
            let mut unknown = Vec::new();
            for d in list {
                ids::check("device id", d)?;
                if app.repo.device_secret(d).await?.is_none() {
                    unknown.push(d.as_str());
                }
            }
            if unknown.is_empty() {
                Ok(())
            } else {
                Err(Error::bad_request(format!(
                    "no such device: {}",
                    unknown.join(", ")
                )))
            }
        }
    }
}

/// Publishes an uploaded artifact: checks, stores the bytes (object first,
/// then the row), records the release and wakes the targeted devices'
/// change feeds. Returns the release and how many devices it targets now.
pub async fn publish(
    app: &App,
    bytes: bytes::Bytes,
    targeting: Targeting,
    name: Option<String>,
) -> Result<(ReleaseRow, usize)> {
    let checked = check_artifact(&bytes, app.engine_keys.as_ref())?;
    check_targeting(app, &targeting).await?;
    let now = app.now_ms();
    let m = &checked.manifest;
    let id = match name {
        Some(n) => {
            ids::check("release id", &n)?;
            n
        }
        None => generated_id(&m.engine_version, now),
    };
    if app.repo.release(&id).await?.is_some() {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!("release {id} exists already"),
        ));
    }
    app.objects.check_space(bytes.len() as u64)?;
    let object_key = format!("engines/{}", checked.sha256);
    let size = bytes.len() as u64;
    app.objects.put(&object_key, bytes).await?;
    let row = ReleaseRow {
        id: id.clone(),
        engine_version: m.engine_version.clone(),
        contract: m.contract.clone(),
        kind: m.kind.as_str().to_string(),
        target: m.target.clone(),
        key_id: m.key_id.clone(),
        signature_verified: checked.signature_verified,
        sha256: checked.sha256,
        size,
        targeting,
        created_ms: now,
        withdrawn_ms: None,
        object_key,
    };
    if !app.repo.add_release(&row).await? {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!("release {id} exists already"),
        ));
    }
    let devices = targeted_devices(app, &row).await?;
    for d in &devices {
        app.changed(d).await?;
    }
    tracing::info!(
        release = %row.id,
        engine_version = %row.engine_version,
        devices = devices.len(),
        "engine release published"
    );
    Ok((row, devices.len()))
}

/// Withdraws a release: no longer offered nor downloadable; the targeted
/// devices' feeds wake so their views drop the offer. Devices that swapped
/// to it keep it (publish the previous engine as a new release to move
/// them back).
pub async fn withdraw(app: &App, id: &str) -> Result<ReleaseRow> {
    ids::check("release id", id)?;
    if !app.repo.withdraw_release(id, app.now_ms()).await? {
        return Err(Error::not_found(format!("no release {id}")));
    }
    let r = app
        .repo
        .release(id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no release {id}")))?;
    for d in targeted_devices(app, &r).await? {
        app.changed(&d).await?;
    }
    tracing::info!(release = %id, "engine release withdrawn");
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollout_is_stable_and_covers_about_n_percent() {
        let devices: Vec<String> = (0..20_000).map(|i| format!("cam-{i:05}")).collect();
        for percent in [1u32, 10, 25, 50, 90] {
            let n = devices
                .iter()
                .filter(|d| in_rollout("rel-a", d, percent))
                .count();
            let want = devices.len() * percent as usize / 100;
            // Binomial: the standard deviation is under 71 devices here;
            // 4 of them is far beyond chance.
            assert!(
                n.abs_diff(want) < 284,
                "{percent} %: {n} of {} devices, expected about {want}",
                devices.len()
            );
        }
        // The same answer every time; all at 100 %, none at 0 %.
        for d in devices.iter().take(100) {
            assert_eq!(in_rollout("rel-a", d, 10), in_rollout("rel-a", d, 10));
            assert!(in_rollout("rel-a", d, 100));
            assert!(!in_rollout("rel-a", d, 0));
        }
        // Widening keeps everyone already in.
        assert!(
            devices
                .iter()
                .filter(|d| in_rollout("rel-a", d, 10))
                .all(|d| in_rollout("rel-a", d, 20))
        );
        // Another release picks other devices: the first 10 % of one and
        // of the other overlap by about 10 % of 10 %.
        let both = devices
            .iter()
            .filter(|d| in_rollout("rel-a", d, 10) && in_rollout("rel-b", d, 10))
            .count();
        assert!(both < 400, "{both} devices in both 10 % rollouts");
    }

    #[test]
    fn generated_ids_are_valid_ids() {
        for v in ["0.1.0", "1.0.0+build.7", "+++", "x y/z"] {
            let id = generated_id(v, 1_767_225_600_000);
            assert!(ids::check("release id", &id).is_ok(), "{v} -> {id}");
        }
        assert_eq!(generated_id("0.1.0", 5), "0.1.0-5");
    }

    #[test]
    fn malformed_artifacts_are_refused_with_a_reason() {
        for (bytes, want) in [
            (&b""[..], "not a valid engine artifact"),
            (b"GIF89a....", "not a valid engine artifact"),
            (
                b"IVCSENG\x01\x05\x00\x00\x00{",
                "not a valid engine artifact",
            ),
        ] {
            let e = check_artifact(bytes, None).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::BadRequest);
            assert!(e.message().contains(want), "{}", e.message());
        }
    }
}
