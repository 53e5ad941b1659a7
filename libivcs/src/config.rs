//! What the original SDK took from its system module: cloud URL, device id
//! and secret, engine file, trusted CA, log level.
//!
//! Each value comes from the first of: an `ivcs_host_set_*` call, the
//! environment (`IVCS_CLOUD_URL`, `IVCS_DEVICE_ID`, `IVCS_DEVICE_SECRET`,
//! `IVCS_ENGINE`, `IVCS_CA_FILE`, `IVCS_LOG_LEVEL`, `IVCS_CALL_DEADLINE_MS`,
//! `IVCS_RESTART_MEDIA`), the config file named
//! by `IVCS_CONFIG`. So firmware that never calls `ivcs_host_*` works
//! unchanged. The file is `key = value` lines (a TOML subset: `#` comments,
//! optional double quotes, `[sections]` ignored); keys are the variable
//! names without `IVCS_`, in any case (`cloud_url`, `DEVICE_ID`, ...).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// The keys, as in the environment.
pub const KEYS: [&str; 8] = [
    "IVCS_CLOUD_URL",
    "IVCS_DEVICE_ID",
    "IVCS_DEVICE_SECRET",
    "IVCS_ENGINE",
    "IVCS_CA_FILE",
    "IVCS_LOG_LEVEL",
    "IVCS_CALL_DEADLINE_MS",
    "IVCS_RESTART_MEDIA",
];

/// The resolved configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostConfig {
    /// `http[s]://host[:port][/prefix]`.
    pub cloud_url: Option<String>,
    /// The device id the cloud knows.
    pub device_id: Option<String>,
    /// The secret `ivcs cloud device add` printed.
    pub device_secret: Option<String>,
    /// A `.cwasm` (or, with feature `compile`, `.wasm`) engine; `None`: the
    /// embedded one.
    pub engine_file: Option<String>,
    /// Extra trusted CA certificates (PEM).
    pub ca_file: Option<String>,
    /// 0 error .. 4 trace.
    pub log_level: Option<u8>,
    /// Longest a single engine call may run before it is interrupted.
    pub call_deadline_ms: Option<u64>,
    /// Whether the restart point keeps a copy of the buffered media (and
    /// the frames since), so a trap loses none (default on;
    /// docs/design/trap-restart.md). Off saves up to a budget per channel
    /// and a second of frames of memory.
    pub restart_media: Option<bool>,
}

/// Values given through `ivcs_host_set_*` (they win over env and file).
static SET: Mutex<HostConfig> = Mutex::new(HostConfig {
    cloud_url: None,
    device_id: None,
    device_secret: None,
    engine_file: None,
    ca_file: None,
    log_level: None,
    call_deadline_ms: None,
    restart_media: None,
});

/// Runs `f` on the values set through `ivcs_host_set_*`.
pub fn with_set<R>(f: impl FnOnce(&mut HostConfig) -> R) -> R {
    f(&mut SET.lock().unwrap_or_else(PoisonError::into_inner))
}

/// Parses a config file's text into `IVCS_*` keys and values; unknown keys
/// are returned too (the caller warns about them).
pub fn parse_file(text: &str) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("line {}: expected key = value", n + 1));
        };
        let k = k.trim().to_ascii_uppercase();
        let k = if k.starts_with("IVCS_") {
            k
        } else {
            format!("IVCS_{k}")
        };
        let v = v.trim();
        let v = match v.strip_prefix('"') {
            Some(rest) => rest
                .strip_suffix('"')
                .ok_or_else(|| format!("line {}: unterminated string", n + 1))?,
            // A trailing comment after an unquoted value.
            None => v.split(" #").next().unwrap_or(v).trim(),
        };
        out.insert(k, v.to_string());
    }
    Ok(out)
}

/// The configuration from the setters, the environment and the file, with
/// the problems met on the way (unreadable file, unknown keys, bad numbers).
pub fn resolve() -> (HostConfig, Vec<String>) {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    resolve_from(&with_set(|c| c.clone()), env)
}

/// [`resolve`] with the environment given as a function (tests).
pub fn resolve_from(
    set: &HostConfig,
    env: impl Fn(&str) -> Option<String>,
) -> (HostConfig, Vec<String>) {
    let mut problems = Vec::new();
    let file = match env("IVCS_CONFIG") {
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(text) => match parse_file(&text) {
                Ok(map) => {
                    for k in map.keys() {
                        if !KEYS.contains(&k.as_str()) {
                            problems.push(format!("{path}: unknown key {k}"));
                        }
                    }
                    map
                }
                Err(e) => {
                    problems.push(format!("{path}: {e}"));
                    HashMap::new()
                }
            },
            Err(e) => {
                problems.push(format!("IVCS_CONFIG={path}: {e}"));
                HashMap::new()
            }
        },
        None => HashMap::new(),
    };
    let get = |k: &str| env(k).or_else(|| file.get(k).cloned());
    let mut number = |k: &str, max: u64| -> Option<u64> {
        let v = get(k)?;
        match v.parse::<u64>() {
            Ok(n) if n <= max => Some(n),
            _ => {
                problems.push(format!("{k}={v}: expected a number up to {max}"));
                None
            }
        }
    };
    let log_level = set.log_level.or_else(|| {
        let v = get("IVCS_LOG_LEVEL")?;
        level_from_name(&v).or_else(|| number("IVCS_LOG_LEVEL", 4).map(|n| n as u8))
    });
    let call_deadline_ms = set
        .call_deadline_ms
        .or_else(|| number("IVCS_CALL_DEADLINE_MS", 3_600_000));
    let restart_media =
        get("IVCS_RESTART_MEDIA").and_then(|v| match v.to_ascii_lowercase().as_str() {
            "1" | "on" | "true" | "yes" => Some(true),
            "0" | "off" | "false" | "no" => Some(false),
            _ => {
                problems.push(format!("IVCS_RESTART_MEDIA={v}: expected on or off"));
                None
            }
        });
    let cfg = HostConfig {
        cloud_url: set.cloud_url.clone().or_else(|| get("IVCS_CLOUD_URL")),
        device_id: set.device_id.clone().or_else(|| get("IVCS_DEVICE_ID")),
        device_secret: set
            .device_secret
            .clone()
            .or_else(|| get("IVCS_DEVICE_SECRET")),
        engine_file: set.engine_file.clone().or_else(|| get("IVCS_ENGINE")),
        ca_file: set.ca_file.clone().or_else(|| get("IVCS_CA_FILE")),
        log_level,
        call_deadline_ms,
        restart_media: set.restart_media.or(restart_media),
    };
    (cfg, problems)
}

/// `error`, `warn`, `info`, `debug`, `trace` (any case) as 0..4.
pub fn level_from_name(name: &str) -> Option<u8> {
    match name.to_ascii_lowercase().as_str() {
        "error" => Some(0),
        "warn" | "warning" => Some(1),
        "info" => Some(2),
        "debug" => Some(3),
        "trace" => Some(4),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_accepts_plain_and_toml_style_lines() {
        let m = parse_file(
            "# comment\n[ivcs]\ncloud_url = \"http://x:1\"\nIVCS_DEVICE_ID=cam1 # trailing\n\ndevice_secret=s=3\n",
        )
        .unwrap();
        assert_eq!(m["IVCS_CLOUD_URL"], "http://x:1");
        assert_eq!(m["IVCS_DEVICE_ID"], "cam1");
        assert_eq!(m["IVCS_DEVICE_SECRET"], "s=3");
        assert!(parse_file("no equals sign").is_err());
        assert!(parse_file("k = \"open").is_err());
    }

    #[test]
    fn setters_win_over_env_which_wins_over_file() {
        let dir = std::env::temp_dir().join(format!("ivcs-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("ivcs.conf");
        std::fs::write(
            &f,
            "cloud_url=http://file\ndevice_id=file-id\nbogus=1\nlog_level=debug\nrestart_media=off\n",
        )
        .unwrap();
        let fp = f.to_string_lossy().into_owned();
        let env = |k: &str| match k {
            "IVCS_CONFIG" => Some(fp.clone()),
            "IVCS_DEVICE_ID" => Some("env-id".into()),
            _ => None,
        };
        let set = HostConfig {
            cloud_url: Some("http://set".into()),
            ..HostConfig::default()
        };
        let (c, problems) = resolve_from(&set, env);
        assert_eq!(c.cloud_url.as_deref(), Some("http://set"));
        assert_eq!(c.device_id.as_deref(), Some("env-id"));
        assert_eq!(c.log_level, Some(3));
        assert_eq!(c.restart_media, Some(false));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("IVCS_BOGUS"));
    }
}
