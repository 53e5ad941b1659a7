//! Service configuration: defaults, then a TOML file, then `IVCS_CLOUD_*`
//! environment variables, then command-line flags (highest). Every key is
//! documented in docs/ref/config.md.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The service's settings. Field names are the TOML keys; the environment
/// variable of a key is `IVCS_CLOUD_` + the key in upper case.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Data directory: `ivcs.db` (SQLite, WAL) and `objects/`.
    pub data: PathBuf,
    /// How long after a segment's end a backup upload is accepted, seconds.
    pub backup_window_s: u64,
    /// Largest accepted segment body, bytes.
    pub max_segment_bytes: u64,
    /// Largest accepted picture body, bytes.
    pub max_picture_bytes: u64,
    /// Largest accepted JSON body, bytes.
    pub max_json_bytes: u64,
    /// Accepted difference between a device's signed timestamp and the
    /// server clock, seconds.
    pub auth_skew_s: u64,
    /// Period of the retention job, seconds.
    pub retention_interval_s: u64,
    /// Uploads are refused with 507 when the data disk has less free space
    /// than this, bytes.
    pub min_free_bytes: u64,
    /// How often plan changes made by other processes (the `ivcs cloud`
    /// admin commands) are picked up, milliseconds.
    pub change_poll_ms: u64,
    /// Longest a device's change-feed request is held open before it is
    /// answered with "no change", seconds (the device's `wait_s` is capped
    /// by this). 0 answers at once: host-sim holds requests in virtual time
    /// itself.
    pub change_wait_max_s: u64,
    /// Lifetime of a signed playback URL, seconds.
    pub playback_url_ttl_s: u64,
    /// fsync each object and its directory before acknowledging it, so an
    /// acknowledged segment survives power loss.
    pub fsync: bool,
    /// Log filter (`error`, `warn`, `info`, `debug`, `trace`, or a
    /// tracing-subscriber directive list).
    pub log: String,
    /// Directory of the built web viewer (`index.html` and its assets),
    /// served at `/` and `/viewer/...`. Default: `share/ivcs/viewer` next
    /// to the executable's `bin/` directory, where `make dist` puts it.
    pub viewer_dir: PathBuf,
    /// Test hook: when set, "now" is read from this file (decimal ms since
    /// 1970) whenever it exists, so tests can move time without sleeping.
    pub clock_file: Option<PathBuf>,
    /// Largest accepted engine artifact (`POST /v1/engine/releases`),
    /// bytes. The upload is held in memory while it is checked.
    pub max_engine_bytes: u64,
    /// Lifetime of the capability token in an engine offer's download and
    /// report URLs, seconds (every plan view hands out a fresh one).
    pub engine_token_ttl_s: u64,
    /// How long a shutdown (SIGTERM, SIGINT) lets requests in flight
    /// finish, seconds. New connections are refused at once; at the
    /// deadline the request bodies still arriving are cut (a stalled upload
    /// is stored as partial), and what is still open 2 s later is dropped,
    /// so the process exits at most about this + 7 s after the signal,
    /// whatever the clients do (docs/ref/config.md).
    pub shutdown_grace_s: u64,
    /// Keyring file (engine `.pub` files concatenated): when set, a release
    /// whose signature does not verify under one of its keys is refused at
    /// upload. Devices verify either way.
    pub engine_keys: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8960)),
            data: PathBuf::from("ivcs-data"),
            backup_window_s: 30 * 60,
            max_segment_bytes: 64 << 20,
            max_picture_bytes: 2 << 20,
            max_json_bytes: 64 << 10,
            auth_skew_s: 300,
            retention_interval_s: 3600,
            min_free_bytes: 64 << 20,
            change_poll_ms: 500,
            change_wait_max_s: 60,
            playback_url_ttl_s: 3600,
            fsync: true,
            log: "info".into(),
            viewer_dir: default_viewer_dir(),
            clock_file: None,
            max_engine_bytes: 64 << 20,
            engine_token_ttl_s: 7 * 86_400,
            shutdown_grace_s: 10,
            engine_keys: None,
        }
    }
}

/// `<exe>/../share/ivcs/viewer`: the layout of `dist/` (`bin/ivcs`,
/// `share/ivcs/viewer/`) and of an install under a prefix (`/usr/bin/ivcs`,
/// `/usr/share/ivcs/viewer`). Relative to the working directory when the
/// executable's path is unknown.
pub fn default_viewer_dir() -> PathBuf {
    let rel = Path::new("share").join("ivcs").join("viewer");
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(|prefix| prefix.join(&rel)))
        .unwrap_or(rel)
}

impl Config {
    /// Defaults, overridden by the TOML file at `path` (if given) and then
    /// by `IVCS_CLOUD_*` variables from `env`.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config> {
        let mut table = toml::Table::try_from(Config::default())
            .map_err(|e| Error::internal(format!("config defaults: {e}")))?;
        if let Some(path) = path {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::bad_request(format!("reading {}: {e}", path.display())))?;
            let file: toml::Table = text
                .parse()
                .map_err(|e| Error::bad_request(format!("{}: {e}", path.display())))?;
            for (k, v) in file {
                // engine_keys is optional, so absent from the defaults.
                if !table.contains_key(&k) && k != "engine_keys" {
                    return Err(Error::bad_request(format!(
                        "{}: unknown key `{k}`",
                        path.display()
                    )));
                }
                table.insert(k, v);
            }
        }
        for (name, value) in env {
            let Some(key) = name.strip_prefix("IVCS_CLOUD_") else {
                continue;
            };
            // libivcs's variable (the cloud a camera talks to), often set in
            // the same shell as admin commands: not a service setting.
            if key == "URL" {
                continue;
            }
            let key = key.to_ascii_lowercase();
            let Some(old) = table.get(&key) else {
                // Optional paths are absent from the defaults.
                if key == "clock_file" || key == "engine_keys" {
                    table.insert(key, toml::Value::String(value));
                    continue;
                }
                return Err(Error::bad_request(format!("unknown variable {name}")));
            };
            let new = match old {
                toml::Value::Boolean(_) => value
                    .parse::<bool>()
                    .map(toml::Value::Boolean)
                    .map_err(|_| Error::bad_request(format!("{name} must be true or false")))?,
                toml::Value::Integer(_) => value
                    .parse::<i64>()
                    .map(toml::Value::Integer)
                    .map_err(|_| Error::bad_request(format!("{name} must be an integer")))?,
                _ => toml::Value::String(value),
            };
            table.insert(key, new);
        }
        table
            .try_into()
            .map_err(|e| Error::bad_request(format!("configuration: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_env_override_defaults() {
        let dir = std::env::temp_dir().join(format!("ivcs-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cloud.toml");
        std::fs::write(&path, "backup_window_s = 60\nlisten = \"0.0.0.0:9000\"\n").unwrap();
        let env = [
            (
                "IVCS_CLOUD_LISTEN".to_string(),
                "127.0.0.1:9001".to_string(),
            ),
            ("OTHER".to_string(), "x".to_string()),
            // libivcs's, not the service's: ignored, not refused.
            (
                "IVCS_CLOUD_URL".to_string(),
                "https://cloud.example".to_string(),
            ),
        ];
        let c = Config::load(Some(&path), env).unwrap();
        assert_eq!(c.backup_window_s, 60);
        assert_eq!(c.listen.port(), 9001);
        assert_eq!(c.max_picture_bytes, 2 << 20);
        assert!(c.viewer_dir.ends_with("share/ivcs/viewer"));
        let env = [("IVCS_CLOUD_VIEWER_DIR".to_string(), "/srv/v".to_string())];
        let c = Config::load(None, env).unwrap();
        assert_eq!(c.viewer_dir, PathBuf::from("/srv/v"));
        // The optional engine keyring, from the file or the environment.
        assert_eq!(c.engine_keys, None);
        std::fs::write(&path, "engine_keys = \"/etc/ivcs/engine-keys.pub\"\n").unwrap();
        let c = Config::load(Some(&path), []).unwrap();
        assert_eq!(
            c.engine_keys,
            Some(PathBuf::from("/etc/ivcs/engine-keys.pub"))
        );
        let env = [("IVCS_CLOUD_ENGINE_KEYS".to_string(), "/k.pub".to_string())];
        let c = Config::load(None, env).unwrap();
        assert_eq!(c.engine_keys, Some(PathBuf::from("/k.pub")));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let env = [("IVCS_CLOUD_NOPE".to_string(), "1".to_string())];
        assert!(Config::load(None, env).is_err());
        let env = [("IVCS_CLOUD_BACKUP_WINDOW_S".to_string(), "soon".to_string())];
        assert!(Config::load(None, env).is_err());
    }
}
