//! `ivcs cloud engine ...`: engine releases on a running service (`--url`
//! with an admin token from `ivcs cloud token create --admin`): publish a
//! signed artifact to devices, list releases, show one release's status
//! per device, withdraw one. docs/guide/engine-updates.md shows a rollout.

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use ivcs_cloud::{ids, time};
use serde_json::Value;
use std::path::PathBuf;

/// Where the service is and how to authenticate.
#[derive(Args, Debug)]
pub struct Remote {
    /// Base URL of the running service (e.g. https://cloud.example:8960).
    #[arg(long)]
    url: String,
    /// Admin token (`ivcs cloud token create --admin`; default: $IVCS_TOKEN).
    #[arg(long, env = "IVCS_TOKEN", hide_env_values = true)]
    token: String,
    /// PEM file of a CA to trust for an https --url (besides the
    /// built-in roots).
    #[arg(long)]
    ca: Option<PathBuf>,
}

/// `ivcs cloud engine` subcommands.
#[derive(Subcommand, Debug)]
pub enum EngineCmd {
    /// Publish a signed engine artifact to devices.
    Publish {
        #[command(flatten)]
        remote: Remote,
        /// The signed artifact (`ivcs engine sign` / `compile --sign`).
        file: PathBuf,
        /// These devices only (comma-separated ids).
        #[arg(
            long,
            value_delimiter = ',',
            conflicts_with = "percent",
            required_unless_present = "percent"
        )]
        devices: Vec<String>,
        /// This share of the fleet, 1-100 (stable per device and release).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
        percent: Option<u32>,
        /// Release id (default: engine version and time).
        #[arg(long)]
        release: Option<String>,
    },
    /// List releases, newest first.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Show a release and every device's outcome.
    Status {
        #[command(flatten)]
        remote: Remote,
        /// Release id.
        release: String,
    },
    /// Stop offering a release.
    Withdraw {
        #[command(flatten)]
        remote: Remote,
        /// Release id.
        release: String,
    },
}

#[allow(clippy::print_stdout)]
fn out(line: &str) {
    println!("{line}");
}

/// Sends a request; returns the JSON answer or the service's error.
fn call(
    remote: &Remote,
    method: &str,
    path_and_query: &str,
    body: Option<Vec<u8>>,
) -> Result<Value> {
    let agent = crate::http_client::agent(remote.ca.as_deref())?;
    let url = format!("{}{path_and_query}", remote.url.trim_end_matches('/'));
    let auth = format!("Bearer {}", remote.token);
    let resp = match (method, body) {
        ("GET", _) => agent.get(&url).header("authorization", &auth).call(),
        (_, Some(b)) => agent
            .post(&url)
            .header("authorization", &auth)
            .header("content-type", "application/octet-stream")
            // A refusal (401, 413) may come before the body is read.
            .header("expect", "100-continue")
            .send(&b[..]),
        (_, None) => agent.post(&url).header("authorization", &auth).send_empty(),
    };
    let mut resp = resp.with_context(|| format!("{method} {url}"))?;
    let status = resp.status();
    let text = resp
        .body_mut()
        .with_config()
        .limit(16 << 20)
        .read_to_string()
        .with_context(|| format!("reading the answer to {method} {url}"))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|_| anyhow!("the service answered {status}: {}", text.trim()))?;
    if !status.is_success() {
        let msg = v["error"]["message"].as_str().unwrap_or(text.trim());
        bail!("the service answered {status}: {msg}");
    }
    Ok(v)
}

fn targeting(r: &Value) -> String {
    match (&r["targeting"]["devices"], &r["targeting"]["percent"]) {
        (Value::Array(d), _) => format!(
            "devices {}",
            d.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        ),
        (_, Value::Number(p)) => format!("{p} %"),
        _ => "?".into(),
    }
}

fn when(v: &Value) -> String {
    v.as_u64().map_or("-".into(), time::rfc3339_ms)
}

fn release_lines(r: &Value) {
    out(&format!(
        "release:        {}",
        r["id"].as_str().unwrap_or("?")
    ));
    out(&format!(
        "engine:         {} (contract {}, {} for {})",
        r["engine_version"].as_str().unwrap_or("?"),
        r["contract"].as_str().unwrap_or("?"),
        r["kind"].as_str().unwrap_or("?"),
        r["target"].as_str().unwrap_or("?")
    ));
    out(&format!(
        "artifact:       {} bytes, sha256 {}",
        r["size"],
        r["sha256"].as_str().unwrap_or("?")
    ));
    out(&format!(
        "signed by:      key {} ({})",
        r["key_id"].as_str().unwrap_or("?"),
        if r["signature_verified"].as_bool() == Some(true) {
            "verified by the service"
        } else {
            "not checked by the service: it has no engine_keys; devices verify"
        }
    ));
    out(&format!("targeting:      {}", targeting(r)));
    if let Some(n) = r["targeted_devices"].as_u64() {
        out(&format!("targets now:    {n} registered device(s)"));
    }
    out(&format!("created:        {}", when(&r["created_ms"])));
    if !r["withdrawn_ms"].is_null() {
        out(&format!("withdrawn:      {}", when(&r["withdrawn_ms"])));
    }
}

/// Runs `ivcs cloud engine`.
pub fn run(cmd: EngineCmd) -> Result<()> {
    // Ids become URL paths: the service's alphabet, checked here too.
    match &cmd {
        EngineCmd::Publish {
            devices, release, ..
        } => {
            for d in devices {
                ids::check("device id", d)?;
            }
            if let Some(r) = release {
                ids::check("release id", r)?;
            }
        }
        EngineCmd::Status { release, .. } | EngineCmd::Withdraw { release, .. } => {
            ids::check("release id", release)?;
        }
        EngineCmd::List { .. } => {}
    }
    match cmd {
        EngineCmd::Publish {
            remote,
            file,
            devices,
            percent,
            release,
        } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let mut q = match percent {
                Some(p) => format!("percent={p}"),
                None => format!("devices={}", devices.join(",")),
            };
            if let Some(r) = release {
                q.push_str(&format!("&release={r}"));
            }
            let r = call(
                &remote,
                "POST",
                &format!("/v1/engine/releases?{q}"),
                Some(bytes),
            )?;
            release_lines(&r);
        }
        EngineCmd::List { remote } => {
            let v = call(&remote, "GET", "/v1/engine/releases", None)?;
            out("release\tengine\tkind\ttarget\ttargeting\tcreated\twithdrawn");
            for r in v["releases"].as_array().into_iter().flatten() {
                out(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    r["id"].as_str().unwrap_or("?"),
                    r["engine_version"].as_str().unwrap_or("?"),
                    r["kind"].as_str().unwrap_or("?"),
                    r["target"].as_str().unwrap_or("?"),
                    targeting(r),
                    when(&r["created_ms"]),
                    when(&r["withdrawn_ms"]),
                ));
            }
        }
        EngineCmd::Status { remote, release } => {
            let r = call(
                &remote,
                "GET",
                &format!("/v1/engine/releases/{release}"),
                None,
            )?;
            release_lines(&r);
            let summary: Vec<String> = r["summary"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            out(&format!(
                "outcomes:       {}",
                if summary.is_empty() {
                    "none reported yet".into()
                } else {
                    summary.join(", ")
                }
            ));
            out("device\tstatus\tkind\tupdated\tmessage");
            for d in r["devices"].as_array().into_iter().flatten() {
                out(&format!(
                    "{}\t{}\t{}\t{}\t{}",
                    d["device"].as_str().unwrap_or("?"),
                    d["status"].as_str().unwrap_or("?"),
                    d["kind"].as_str().unwrap_or("-"),
                    when(&d["updated_ms"]),
                    d["message"].as_str().unwrap_or(""),
                ));
            }
        }
        EngineCmd::Withdraw { remote, release } => {
            let r = call(
                &remote,
                "POST",
                &format!("/v1/engine/releases/{release}/withdraw"),
                None,
            )?;
            out(&format!(
                "withdrawn {} at {}",
                r["id"].as_str().unwrap_or("?"),
                when(&r["withdrawn_ms"])
            ));
        }
    }
    Ok(())
}
