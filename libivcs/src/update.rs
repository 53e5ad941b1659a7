//! Live engine updates (`ivcs_host_set_engine_keys`,
//! `ivcs_host_engine_update`): the trusted keys, reading and verifying a
//! signed artifact on the caller's thread, and the engine files kept on
//! disk (current and last known good). The swap itself runs on the engine
//! thread ([`crate::service::EngineCtx::swap`]). [`apply_file`] is the one
//! path every update takes, from `ivcs_host_engine_update` or from the
//! cloud ([`crate::delivery`] downloads, then calls it). docs/design/hot-swap.md,
//! "The swap".

use crate::codes::*;
use crate::log;
use crate::service::lock;
use ivcs_host::EngineRuntime;
use ivcs_host::artifact::{self, HostProfile, Keyring, RefusalKind};
use sha2::Digest;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, mpsc};

/// The keys an engine update must be signed with; `None`: every update is
/// refused.
static KEYS: Mutex<Option<Keyring>> = Mutex::new(None);

/// Reads a keyring file (`.pub` files concatenated) and trusts exactly
/// its keys; `None` forgets them. A file that cannot be read or parsed,
/// or holds no key, is -602 and leaves the keys unchanged.
pub fn set_keys(path: Option<&str>) -> Result<(), i32> {
    let Some(path) = path else {
        *lock(&KEYS) = None;
        return Ok(());
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        log::error(&format!("engine keys {path}: {e}"));
        IV_ERR_CS_INIT_PRM_RANGE
    })?;
    let ring = Keyring::parse(&text).map_err(|e| {
        log::error(&format!("engine keys {path}: {e:#}"));
        IV_ERR_CS_INIT_PRM_RANGE
    })?;
    if ring.is_empty() {
        log::error(&format!("engine keys {path}: no key in the file"));
        return Err(IV_ERR_CS_INIT_PRM_RANGE);
    }
    log::info(&format!(
        "engine updates trust {} key(s) from {path}",
        ring.keys().len()
    ));
    *lock(&KEYS) = Some(ring);
    Ok(())
}

/// Why an update was not taken: the `IV_ERR_*` firmware gets, the refusal
/// kind for a refused artifact (`malformed`, `untrusted`, `incompatible`:
/// what the cloud is told), and the message that was logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateError {
    /// The `IV_ERR_*` code.
    pub code: i32,
    /// For a refused artifact ([`IV_ERR_CS_INIT_PRM_RANGE`]), its kind.
    pub kind: Option<&'static str>,
    /// What went wrong (also logged).
    pub message: String,
}

impl UpdateError {
    /// Logs `message` as an error and returns it.
    fn logged(code: i32, kind: Option<&'static str>, message: String) -> UpdateError {
        log::error(&message);
        UpdateError {
            code,
            kind,
            message,
        }
    }
}

/// Whether keys are set.
pub fn has_keys() -> bool {
    lock(&KEYS).is_some()
}

/// A verified engine, loaded and ready to instantiate, with the artifact
/// it came from (written to disk once it serves).
pub struct Prepared {
    /// The loaded engine code.
    pub runtime: EngineRuntime,
    /// The signed artifact's bytes as read.
    pub artifact: Vec<u8>,
    /// "engine_version (key key_id)", for logs.
    pub label: String,
}

/// Checks `bytes` against the trusted keys and this host
/// ([`artifact::verify`]) and loads the engine (wasmtime checks the
/// precompiled code again). Refusals are -602; a load failure is -605.
/// Runs on the caller's thread: the engine keeps serving meanwhile.
pub fn prepare(bytes: Vec<u8>, what: &str) -> Result<Prepared, UpdateError> {
    let ring = lock(&KEYS).clone().ok_or_else(|| {
        UpdateError::logged(
            IV_ERR_CS_INIT_PRM_RANGE,
            Some("untrusted"),
            format!(
                "engine update {what} refused: untrusted (no engine keys: ivcs_host_set_engine_keys)"
            ),
        )
    })?;
    let host = HostProfile::current().map_err(|e| {
        UpdateError::logged(
            IV_ERR_CS_PRM_NOT_AVAILABLE,
            None,
            format!("engine update {what}: host profile: {e:#}"),
        )
    })?;
    let verified = artifact::verify(&bytes, &ring, &host).map_err(|e| {
        let kind = refusal_name(e.kind());
        UpdateError::logged(
            IV_ERR_CS_INIT_PRM_RANGE,
            Some(kind),
            format!("engine update {what} refused ({kind}): {e}"),
        )
    })?;
    let label = format!(
        "engine {} (key {})",
        verified.manifest.engine_version, verified.manifest.key_id
    );
    let runtime = EngineRuntime::new(verified.source()).map_err(|e| {
        UpdateError::logged(
            IV_ERR_CS_PRM_NOT_AVAILABLE,
            None,
            format!("engine update {what}: {label} does not load: {e:#}"),
        )
    })?;
    // Ask the engine itself, in a throwaway instance, before anything
    // stops: a component of another world does not instantiate, and the
    // contract it implements must be the one its signed manifest names (a
    // signer that did not ask it, or a payload that lies).
    let versions = runtime.versions().map_err(|e| {
        UpdateError::logged(
            IV_ERR_CS_INIT_PRM_RANGE,
            Some("incompatible"),
            format!(
                "engine update {what} refused (incompatible): {label} is not an engine of this \
                 contract: {e:#}"
            ),
        )
    })?;
    if versions.contract != verified.manifest.contract
        || !ivcs_host::runtime::contracts_compatible(
            &versions.contract,
            ivcs_host::runtime::HOST_CONTRACT,
        )
    {
        return Err(UpdateError::logged(
            IV_ERR_CS_INIT_PRM_RANGE,
            Some("incompatible"),
            format!(
                "engine update {what} refused (incompatible): {label} implements contract {}, \
                 its manifest says {}",
                versions.contract, verified.manifest.contract
            ),
        ));
    }
    Ok(Prepared {
        runtime,
        artifact: bytes,
        label,
    })
}

/// The name of a refusal kind, as logs and the cloud spell it.
pub fn refusal_name(k: RefusalKind) -> &'static str {
    match k {
        RefusalKind::Malformed => "malformed",
        RefusalKind::Untrusted => "untrusted",
        RefusalKind::Incompatible => "incompatible",
    }
}

/// Reads `path` and [`prepare`]s it; an unreadable file is -604.
pub fn prepare_file(path: &str) -> Result<Prepared, UpdateError> {
    let bytes = std::fs::read(path).map_err(|e| {
        UpdateError::logged(
            IV_ERR_CS_UPLOAD_OPEN_FILE_FAIL,
            None,
            format!("engine update {path}: {e}"),
        )
    })?;
    prepare(bytes, path)
}

/// SHA-256 (hex) of the artifact the last successful update swapped in.
static CURRENT_SHA256: Mutex<Option<String>> = Mutex::new(None);

/// SHA-256 (hex) of the signed artifact running now, if an update (from
/// a file or the cloud) swapped it in.
pub fn current_sha256() -> Option<String> {
    lock(&CURRENT_SHA256).clone()
}

/// One update at a time, whichever way it came.
static UPDATING: AtomicBool = AtomicBool::new(false);

/// The whole update from the artifact at `path`, on the caller's thread
/// (never the engine thread's): [`prepare_file`], the swap as a job on the
/// engine thread, then [`persist`] to the engine file. Returns once the new
/// engine serves, with the artifact's bytes (for the caller's records);
/// every failure leaves the running engine as it was. Codes as
/// `ivcs_host_engine_update` documents them.
pub fn apply_file(path: &str) -> Result<Vec<u8>, UpdateError> {
    if UPDATING.swap(true, Ordering::SeqCst) {
        return Err(UpdateError::logged(
            IV_ERR_CS_INIT_REPEAT,
            None,
            format!("engine update {path}: another update is running"),
        ));
    }
    let r = apply_locked(path);
    UPDATING.store(false, Ordering::SeqCst);
    r
}

fn apply_locked(path: &str) -> Result<Vec<u8>, UpdateError> {
    let p = prepare_file(path)?;
    let svc = crate::service::get().map_err(|code| UpdateError {
        code,
        kind: None,
        message: "libivcs cannot start".into(),
    })?;
    // 0 queued, 1 started, 2 given up by the caller (the job does nothing).
    let phase = Arc::new(AtomicU8::new(0));
    let (tx, rx) = mpsc::sync_channel(1);
    let job_phase = phase.clone();
    let (runtime, label) = (p.runtime, p.label);
    svc.post(move |ctx| {
        if job_phase
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return;
        }
        let r = ctx.swap(runtime, label);
        ctx.publish_gates();
        let _ = tx.send(r);
    });
    let r = match rx.recv_timeout(svc.op_backstop()) {
        Ok(r) => r,
        Err(_)
            if phase
                .compare_exchange(0, 2, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok() =>
        {
            return Err(UpdateError::logged(
                IV_ERR_CS_QUERY_SERVICE_TIMEOUT,
                None,
                "engine update: the engine thread did not get to it in time".into(),
            ));
        }
        // Started: every step of a swap is bounded, so wait for it.
        Err(_) => rx.recv().unwrap_or(Err(IV_ERR_CS_PRM_NOT_AVAILABLE)),
    };
    // The swap logged its own reason.
    let engine_file = r.map_err(|code| UpdateError {
        code,
        kind: None,
        message: format!(
            "engine update {path}: the swap failed ({code}); the running engine goes on"
        ),
    })?;
    *lock(&CURRENT_SHA256) = Some(hex::encode(sha2::Sha256::digest(&p.artifact)));
    if let Some(file) = engine_file {
        // Off the engine thread: two fsyncs of a few MB.
        match persist(&file, &p.artifact) {
            Ok(()) => log::info(&format!(
                "engine update written to {file} (previous kept as last known good)"
            )),
            Err(e) => log::error(&format!(
                "engine update serves, but writing it to {file} failed ({e}): a reboot starts \
                 the previous engine"
            )),
        }
    }
    Ok(p.artifact)
}

/// The last known good engine kept beside the engine file `current`.
pub fn last_good_path(current: &str) -> PathBuf {
    PathBuf::from(format!("{current}.last-good"))
}

/// The marker beside the engine file `current` that says its engine has
/// not passed probation yet (written before it becomes current, removed
/// when probation ends): a restart in between resumes the probation.
pub fn probation_marker_path(current: &str) -> PathBuf {
    PathBuf::from(format!("{current}.probation"))
}

/// Whether the engine in `current` is still on probation (its marker).
pub fn on_probation(current: &str) -> bool {
    probation_marker_path(current).is_file()
}

/// Probation of the engine in `current` ended (passed or rolled back):
/// removes the marker (logged if that fails: the next start would put the
/// engine on probation again, which costs nothing but a log line).
pub fn end_probation(current: &str) {
    let m = probation_marker_path(current);
    match std::fs::remove_file(&m) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => log::error(&format!("{}: {e}", m.display())),
    }
}

/// Test hook: `IVCS_TEST_KILL_AT=STEP` kills the process with SIGKILL at
/// that step of [`persist`] (a power loss there, as far as files go). The
/// steps: `last-good-tmp`, `last-good`, `marker`, `current-tmp`,
/// `current`, `done`.
fn kill_point(step: &str) {
    if std::env::var("IVCS_TEST_KILL_AT").is_ok_and(|v| v == step) {
        unsafe extern "C" {
            fn raise(sig: std::ffi::c_int) -> std::ffi::c_int;
        }
        const SIGKILL: std::ffi::c_int = 9;
        // SAFETY: raise is async-signal-safe and takes any signal number.
        unsafe { raise(SIGKILL) };
    }
}

/// Replaces `path` with `bytes` atomically: a temporary file beside it is
/// written and fsynced, renamed over `path`, and the directory fsynced. A
/// power loss leaves either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_steps(path, bytes, "")
}

/// [`write_atomic`] with the test hook's kill points `STEP-tmp` (temporary
/// file written) and `STEP` (renamed).
fn write_atomic_steps(path: &Path, bytes: &[u8], step: &str) -> std::io::Result<()> {
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    if !step.is_empty() {
        kill_point(&format!("{step}-tmp"));
    }
    std::fs::rename(&tmp, path)?;
    if !step.is_empty() {
        kill_point(step);
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)?.sync_all()
}

/// After a swap to `new`: the engine file's old content becomes the last
/// known good engine, the probation marker is written, then `new` becomes
/// the current one (each step atomic, in this order, so a reboot at any
/// point finds a loadable current file, and once the new one is current,
/// the previous one as last good and the marker that puts the new one on
/// probation again).
pub fn persist(current: &str, new: &[u8]) -> std::io::Result<()> {
    let old = std::fs::read(current)?;
    write_atomic_steps(&last_good_path(current), &old, "last-good")?;
    write_atomic(&probation_marker_path(current), b"on probation\n")?;
    kill_point("marker");
    write_atomic_steps(Path::new(current), new, "current")?;
    kill_point("done");
    Ok(())
}

/// After a rollback: the last known good engine becomes current again.
pub fn restore_last_good(current: &str) -> std::io::Result<()> {
    let good = std::fs::read(last_good_path(current))?;
    write_atomic(Path::new(current), &good)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ivcs-update-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_swap_keeps_the_previous_engine_as_last_good_and_a_rollback_restores_it() {
        let d = scratch("persist");
        let current = d.join("engine.ivcse");
        let cur = current.to_str().unwrap();
        std::fs::write(&current, b"old engine").unwrap();
        persist(cur, b"new engine").unwrap();
        assert_eq!(std::fs::read(&current).unwrap(), b"new engine");
        assert_eq!(std::fs::read(last_good_path(cur)).unwrap(), b"old engine");
        restore_last_good(cur).unwrap();
        assert_eq!(std::fs::read(&current).unwrap(), b"old engine");
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }

    #[test]
    fn a_temporary_file_left_by_a_power_loss_is_replaced_and_the_engine_file_kept() {
        let d = scratch("power-loss");
        let current = d.join("engine.ivcse");
        let cur = current.to_str().unwrap();
        std::fs::write(&current, b"running engine").unwrap();
        // A swap cut between writing the temporary file and the rename.
        std::fs::write(d.join("engine.ivcse.tmp"), b"half writ").unwrap();
        assert_eq!(std::fs::read(&current).unwrap(), b"running engine");
        persist(cur, b"next engine").unwrap();
        assert_eq!(std::fs::read(&current).unwrap(), b"next engine");
        assert_eq!(
            std::fs::read(last_good_path(cur)).unwrap(),
            b"running engine"
        );
        // Without a last good engine a rollback fails and changes nothing.
        let lone = d.join("lone.ivcse");
        std::fs::write(&lone, b"only").unwrap();
        assert!(restore_last_good(lone.to_str().unwrap()).is_err());
        assert_eq!(std::fs::read(&lone).unwrap(), b"only");
    }
}
