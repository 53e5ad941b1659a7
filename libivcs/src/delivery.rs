//! Engine updates delivered by the cloud: the engine relays an
//! `engine-offer` from its change feed; this module downloads the artifact
//! with the host's own HTTP client, hands it to the same path as
//! `ivcs_host_engine_update` ([`crate::update::apply_file`]: verify, load,
//! swap, persist) and reports the outcome to the cloud.
//!
//! Opt-in: without engine keys (`ivcs_host_set_engine_keys`) offers are
//! logged and ignored, since every update would be refused anyway.
//!
//! Everything runs on one `ivcs-deliver` thread, never the engine thread:
//! firmware keeps pushing while an artifact downloads (the swap itself is a
//! job like any update). One delivery at a time; an offer that arrives
//! meanwhile waits, and a newer one replaces it.
//!
//! Bounds: the download is streamed to a temporary file beside the engine
//! file (or in the temporary directory), never more than the offer's
//! `size`, and its SHA-256 must equal the offer's before the update path
//! sees it; the artifact's own signature is checked there as for any
//! update. The client only talks to the configured cloud: the offer's URLs
//! are paths under it (the network module refuses anything else).
//!
//! Outcomes (docs/ref/protocol.md, "Engine releases"): `downloaded`,
//! `refused` {kind, message}, `failed` {message}, `swapped`, and after
//! probation `passed` or `rolled-back` {reason} through [`probation_ended`].

use crate::codes::*;
use crate::config::HostConfig;
use crate::log;
use crate::probation::ProbationOutcome;
use crate::service::lock;
use ivcs_host::artifact::HostProfile;
use ivcs_host::bindings::ivcs::engine::types as wt;
use ivcs_host::net::{Method, NetClient, NetConfig, NetError, Request, WakeSignal};
use ivcs_host::runtime::contracts_compatible;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Download attempts before an offer is reported `failed`.
const DOWNLOAD_ATTEMPTS: u32 = 4;

/// Wait before download attempt n + 1 (n ≥ 1): 5 s, 20 s, 80 s.
fn retry_delay(n: u32) -> Duration {
    Duration::from_secs(5 << (2 * n.saturating_sub(1)).min(10))
}

/// Deadline of a download: a minute, plus a second per 16 KiB (a camera
/// uplink shared with video may be slow; a stall still ends it).
fn download_timeout(size: u64) -> Duration {
    Duration::from_secs(60 + size / (16 << 10))
}

/// Deadline of a report.
const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// Attempts of a report.
const REPORT_ATTEMPTS: u32 = 3;

/// What the delivery thread works on.
#[derive(Default)]
struct Queue {
    /// The thread is running.
    busy: bool,
    /// The newest offer not yet started.
    pending: Option<(wt::EngineOffer, HostConfig)>,
}

static QUEUE: Mutex<Queue> = Mutex::new(Queue {
    busy: false,
    pending: None,
});

/// The release the running engine came from, if it came from the cloud:
/// probation outcomes are reported to it.
#[derive(Clone, Debug)]
struct Delivered {
    release: String,
    report_url: String,
    sha256: String,
    cfg: HostConfig,
}

static DELIVERED: Mutex<Option<Delivered>> = Mutex::new(None);

/// An offer from the engine (called on the engine thread by the
/// service's event dispatch; returns at once).
pub fn offer(o: wt::EngineOffer, cfg: &HostConfig) {
    if !crate::update::has_keys() {
        log::info(&format!(
            "the cloud offers engine {} (release {}); ignored: engine updates are off \
             (no ivcs_host_set_engine_keys)",
            o.engine_version, o.release
        ));
        return;
    }
    let mut q = lock(&QUEUE);
    if let Some((old, _)) = q.pending.replace((o, cfg.clone())) {
        log::info(&format!(
            "engine release {} superseded by a newer offer before it started",
            old.release
        ));
    }
    if q.busy {
        return;
    }
    q.busy = true;
    drop(q);
    let spawned = std::thread::Builder::new()
        .name("ivcs-deliver".into())
        .spawn(run);
    if let Err(e) = spawned {
        log::error(&format!("engine delivery: cannot start its thread: {e}"));
        lock(&QUEUE).busy = false;
    }
}

/// Reports the end of a delivered engine's probation to its release (no
/// report if the running engine did not come from the cloud). Returns at
/// once; the report goes out on its own thread.
pub fn probation_ended(outcome: &ProbationOutcome) {
    let Some(d) = lock(&DELIVERED).clone() else {
        return;
    };
    // Another update since (from a file): this outcome is not the release's.
    if crate::update::current_sha256().as_deref() != Some(d.sha256.as_str()) {
        return;
    }
    if matches!(outcome, ProbationOutcome::RolledBack { .. }) {
        *lock(&DELIVERED) = None;
    }
    let body = match outcome {
        ProbationOutcome::Passed { .. } => Report::status("passed"),
        ProbationOutcome::RolledBack { reason, .. } => {
            Report::status("rolled-back").message(&reason.to_string())
        }
    };
    let spawned = std::thread::Builder::new()
        .name("ivcs-deliver".into())
        .spawn(move || report(&d.cfg, &d.release, &d.report_url, &body));
    if let Err(e) = spawned {
        log::error(&format!("engine delivery: cannot report probation: {e}"));
    }
}

/// The delivery thread: offers until none is pending.
fn run() {
    loop {
        let next = {
            let mut q = lock(&QUEUE);
            match q.pending.take() {
                Some(o) => o,
                None => {
                    q.busy = false;
                    return;
                }
            }
        };
        let (o, cfg) = next;
        deliver(&o, &cfg);
    }
}

/// A report's JSON body.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Report {
    status: &'static str,
    kind: Option<&'static str>,
    message: Option<String>,
}

impl Report {
    fn status(status: &'static str) -> Report {
        Report {
            status,
            kind: None,
            message: None,
        }
    }

    fn message(mut self, m: &str) -> Report {
        self.message = Some(m.to_string());
        self
    }

    fn refused(kind: &'static str, m: &str) -> Report {
        Report {
            kind: Some(kind),
            ..Report::status("refused").message(m)
        }
    }

    fn json(&self) -> Vec<u8> {
        let mut v = format!("{{\"status\":{}", json_str(self.status));
        if let Some(k) = self.kind {
            v.push_str(&format!(",\"kind\":{}", json_str(k)));
        }
        if let Some(m) = &self.message {
            v.push_str(&format!(",\"message\":{}", json_str(m)));
        }
        v.push('}');
        v.into_bytes()
    }
}

/// `s` as a JSON string.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether this host could run the offered engine at all, from the
/// offer's (unsigned) claims: saves a download that would be refused.
fn precheck(o: &wt::EngineOffer) -> Result<(), String> {
    let host = HostProfile::current().map_err(|e| format!("host profile: {e:#}"))?;
    if !contracts_compatible(&o.contract, &host.contract) {
        return Err(format!(
            "contract {} does not run on this host's {}",
            o.contract, host.contract
        ));
    }
    match o.kind.as_str() {
        "precompiled" if o.target != host.target => Err(format!(
            "precompiled for {}, this host is {}",
            o.target, host.target
        )),
        "precompiled" => Ok(()),
        "wasm" if !host.compiles => Err(
            "a wasm engine needs a host that compiles; this one loads precompiled engines only"
                .into(),
        ),
        "wasm" => Ok(()),
        other => Err(format!("unknown kind {other:?}")),
    }
}

/// One offer, start to end.
fn deliver(o: &wt::EngineOffer, cfg: &HostConfig) {
    let what = format!("engine release {} ({})", o.release, o.engine_version);
    if let Err(why) = precheck(o) {
        log::warn(&format!("{what} refused without download: {why}"));
        report(
            cfg,
            &o.release,
            &o.report_url,
            &Report::refused("incompatible", &why),
        );
        return;
    }
    if crate::update::current_sha256().as_deref() == Some(o.sha256.as_str()) {
        log::info(&format!("{what}: already running"));
        report(
            cfg,
            &o.release,
            &o.report_url,
            &Report::status("swapped").message("already running"),
        );
        return;
    }
    let tmp = download_path(cfg, &o.release);
    let mut attempt = 1;
    loop {
        if crate::service::running().is_none() {
            // libivcs shut down: nothing to update.
            return;
        }
        match download(cfg, o, &tmp) {
            Ok(()) => break,
            Err(why) if attempt < DOWNLOAD_ATTEMPTS => {
                let wait = retry_delay(attempt);
                log::warn(&format!(
                    "{what}: download attempt {attempt} failed: {why}; again in {} s",
                    wait.as_secs()
                ));
                std::thread::sleep(wait);
                attempt += 1;
            }
            Err(why) => {
                let _ = std::fs::remove_file(&tmp);
                log::error(&format!("{what}: download failed: {why}"));
                report(
                    cfg,
                    &o.release,
                    &o.report_url,
                    &Report::status("failed").message(&format!("download: {why}")),
                );
                return;
            }
        }
    }
    log::info(&format!(
        "{what}: downloaded {} bytes, digest checked",
        o.size
    ));
    report(
        cfg,
        &o.release,
        &o.report_url,
        &Report::status("downloaded"),
    );
    if crate::service::running().is_none() {
        let _ = std::fs::remove_file(&tmp);
        return;
    }
    let result = crate::update::apply_file(&tmp.to_string_lossy());
    let _ = std::fs::remove_file(&tmp);
    let body = match result {
        Ok(_) => {
            *lock(&DELIVERED) = Some(Delivered {
                release: o.release.clone(),
                report_url: o.report_url.clone(),
                sha256: o.sha256.clone(),
                cfg: cfg.clone(),
            });
            Report::status("swapped")
        }
        Err(e) => match e.kind {
            Some(kind) if e.code == IV_ERR_CS_INIT_PRM_RANGE => Report::refused(kind, &e.message),
            _ => Report::status("failed").message(&e.message),
        },
    };
    report(cfg, &o.release, &o.report_url, &body);
}

/// Where a download goes: beside the engine file (same file system, so a
/// full flash shows before the swap), else the temporary directory.
fn download_path(cfg: &HostConfig, release: &str) -> PathBuf {
    match &cfg.engine_file {
        Some(f) => PathBuf::from(format!("{f}.download")),
        None => std::env::temp_dir().join(format!("ivcs-engine-{release}.download")),
    }
}

/// A client for the configured cloud with its own wake signal.
fn client(cfg: &HostConfig) -> Result<(NetClient, std::sync::Arc<WakeSignal>), String> {
    let url = cfg
        .cloud_url
        .as_ref()
        .ok_or_else(|| "no cloud URL configured".to_string())?;
    let mut nc = NetConfig::new(url.clone());
    let wake = nc.wake.clone();
    if let Some(ca) = &cfg.ca_file {
        nc = nc
            .read_ca_file(std::path::Path::new(ca))
            .map_err(|e| format!("CA file: {e:#}"))?;
    }
    // One download or report at a time.
    nc.max_exchanges = 1;
    let c = NetClient::new(nc).map_err(|e| format!("{e:#}"))?;
    Ok((c, wake))
}

/// Waits for `poll` to give something, on the client's wake signal.
fn wait_for<T>(
    wake: &WakeSignal,
    deadline: Instant,
    mut poll: impl FnMut() -> Option<T>,
) -> Result<T, String> {
    loop {
        let seen = wake.generation();
        if let Some(v) = poll() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err("timed out".into());
        }
        wake.wait(seen, deadline);
    }
}

fn net(e: NetError) -> String {
    format!("{e}")
}

/// GETs the artifact into `path`: at most `o.size` bytes, which must be
/// exactly `o.size` with SHA-256 `o.sha256`.
fn download(cfg: &HostConfig, o: &wt::EngineOffer, path: &PathBuf) -> Result<(), String> {
    let (client, wake) = client(cfg)?;
    let timeout = download_timeout(o.size);
    let deadline = Instant::now() + timeout;
    let ex = client
        .start(Request {
            method: Method::Get,
            path: o.url.clone(),
            headers: Vec::new(),
            content_length: Some(0),
            timeout_ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
        })
        .map_err(net)?;
    ex.finish().map_err(net)?;
    let head = wait_for(&wake, deadline, || ex.poll_response())?.map_err(net)?;
    if head.status != 200 {
        return Err(format!("the cloud answered HTTP {}", head.status));
    }
    let mut file =
        std::fs::File::create(path).map_err(|e| format!("creating {}: {e}", path.display()))?;
    let mut hash = Sha256::new();
    let mut got = 0u64;
    loop {
        let piece =
            wait_for(&wake, deadline, || ex.read_body(64 << 10).transpose())?.map_err(net)?;
        if piece.is_empty() {
            break;
        }
        got += piece.len() as u64;
        if got > o.size {
            return Err(format!(
                "the artifact is longer than the offered {} bytes",
                o.size
            ));
        }
        hash.update(&piece);
        file.write_all(&piece)
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    if got != o.size {
        return Err(format!("got {got} of the offered {} bytes", o.size));
    }
    let digest = hex::encode(hash.finalize());
    if digest != o.sha256 {
        return Err(format!(
            "SHA-256 {digest} differs from the offered {}",
            o.sha256
        ));
    }
    file.flush()
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(())
}

/// POSTs `body` to the release's report URL, a few times if the cloud is
/// unreachable. Failures are logged: a lost report costs the cloud its
/// status line, never the device anything.
fn report(cfg: &HostConfig, release: &str, url: &str, body: &Report) {
    for attempt in 1..=REPORT_ATTEMPTS {
        match post(cfg, url, &body.json()) {
            Ok(200) => {
                log::info(&format!(
                    "engine release {release}: reported {}",
                    body.status
                ));
                return;
            }
            Ok(status) => {
                // The cloud refused it (withdrawn, expired token): retrying
                // the same report cannot help.
                log::warn(&format!(
                    "engine release {release}: the cloud answered HTTP {status} to the {} report",
                    body.status
                ));
                return;
            }
            Err(why) if attempt < REPORT_ATTEMPTS => {
                log::debug(&format!(
                    "engine release {release}: report attempt {attempt}: {why}"
                ));
                std::thread::sleep(retry_delay(attempt));
            }
            Err(why) => log::warn(&format!(
                "engine release {release}: the {} report was not delivered: {why}",
                body.status
            )),
        }
    }
}

/// One POST of a small JSON body; returns the status.
fn post(cfg: &HostConfig, url: &str, body: &[u8]) -> Result<u16, String> {
    let (client, wake) = client(cfg)?;
    let deadline = Instant::now() + REPORT_TIMEOUT;
    let ex = client
        .start(Request {
            method: Method::Post,
            path: url.to_string(),
            headers: vec![("content-type".into(), "application/json".into())],
            content_length: Some(body.len() as u64),
            timeout_ms: u32::try_from(REPORT_TIMEOUT.as_millis()).unwrap_or(u32::MAX),
        })
        .map_err(net)?;
    let mut sent = 0;
    while sent < body.len() {
        let n = wait_for(&wake, deadline, || match ex.write(&body[sent..]) {
            Ok(0) => None,
            r => Some(r),
        })?
        .map_err(net)?;
        sent += n as usize;
    }
    ex.finish().map_err(net)?;
    let head = wait_for(&wake, deadline, || ex.poll_response())?.map_err(net)?;
    Ok(head.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_json_with_text_escaped() {
        let r = Report::refused("untrusted", "key \"x\"\n\\ not in the keyring");
        let v: serde_json::Value = serde_json::from_slice(&r.json()).unwrap();
        assert_eq!(v["status"], "refused");
        assert_eq!(v["kind"], "untrusted");
        assert_eq!(v["message"], "key \"x\"\n\\ not in the keyring");
        let v: serde_json::Value =
            serde_json::from_slice(&Report::status("swapped").json()).unwrap();
        assert_eq!(v, serde_json::json!({ "status": "swapped" }));
    }

    #[test]
    fn retries_back_off_and_downloads_get_time_for_their_size() {
        assert_eq!(retry_delay(1), Duration::from_secs(5));
        assert_eq!(retry_delay(2), Duration::from_secs(20));
        assert_eq!(retry_delay(3), Duration::from_secs(80));
        assert_eq!(download_timeout(0), Duration::from_secs(60));
        assert_eq!(download_timeout(4 << 20), Duration::from_secs(60 + 256));
    }

    fn offer(contract: &str, kind: &str, target: &str) -> wt::EngineOffer {
        wt::EngineOffer {
            release: "r1".into(),
            engine_version: "0.1.0".into(),
            contract: contract.into(),
            kind: kind.into(),
            target: target.into(),
            sha256: "00".repeat(32),
            size: 1,
            url: "/x".into(),
            report_url: "/y".into(),
        }
    }

    #[test]
    fn offers_this_host_cannot_run_are_refused_before_download() {
        let host = HostProfile::current().unwrap();
        assert!(precheck(&offer(&host.contract, "precompiled", &host.target)).is_ok());
        assert!(precheck(&offer("0.1.0", "precompiled", &host.target)).is_err());
        assert!(precheck(&offer(&host.contract, "precompiled", "mips-linux")).is_err());
        assert!(precheck(&offer(&host.contract, "elf", &host.target)).is_err());
        assert_eq!(
            precheck(&offer(&host.contract, "wasm", "wasm32-wasip2")).is_ok(),
            host.compiles
        );
    }
}
