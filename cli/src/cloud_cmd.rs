//! `ivcs cloud ...`: run the cloud service and administer its data
//! directory (devices, plans, tokens, retention, export). Admin commands open the
//! data directory directly (SQLite allows this next to a running service);
//! a running service picks up plan changes within `change_poll_ms`.

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use ivcs_cloud::app::{App, channel_plan};
use ivcs_cloud::auth::{random_secret, sha256_hex};
use ivcs_cloud::config::Config;
use ivcs_cloud::ids;
use ivcs_cloud::model::{Plan, PlanType};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

/// Options every cloud command takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// TOML configuration file (keys in docs/ref/config.md).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Data directory (overrides the config file and IVCS_CLOUD_DATA).
    #[arg(long, global = true)]
    data: Option<PathBuf>,
}

/// `ivcs cloud` subcommands.
#[derive(Subcommand, Debug)]
pub enum CloudCmd {
    /// Run the service.
    Serve {
        /// Address to listen on (overrides config and IVCS_CLOUD_LISTEN).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Log as JSON lines instead of text.
        #[arg(long)]
        log_json: bool,
    },
    /// Register, list and remove devices.
    Device {
        #[command(subcommand)]
        cmd: DeviceCmd,
    },
    /// Set and show plans.
    Plan {
        #[command(subcommand)]
        cmd: PlanCmd,
    },
    /// App API tokens.
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// Export a recorded range as one MP4 file.
    Export(crate::cloud_export::ExportArgs),
    /// Engine releases on a running service: publish, list, status,
    /// withdraw (an admin token).
    Engine {
        #[command(subcommand)]
        cmd: crate::cloud_engine::EngineCmd,
    },
    /// Run one retention pass now (or at --now-ms, for tests).
    Retention {
        /// Treat this as the current time, ms since 1970.
        #[arg(long)]
        now_ms: Option<u64>,
    },
}

/// `ivcs cloud device`.
#[derive(Subcommand, Debug)]
pub enum DeviceCmd {
    /// Register a device and print its new secret.
    Add {
        /// Device id: 1-96 of A-Z a-z 0-9 . _ -
        id: String,
    },
    /// List devices.
    List,
    /// Remove a device with every object and row it has.
    Remove {
        /// Device id.
        id: String,
    },
}

/// `ivcs cloud plan`.
#[derive(Subcommand, Debug)]
pub enum PlanCmd {
    /// Set the plan of a device (all channels) or of one channel.
    Set {
        /// Device id.
        device: String,
        /// Channel 0-4 (default: the device default for every channel
        /// without a plan of its own).
        #[arg(long)]
        channel: Option<u32>,
        /// none, full-time, event or trial.
        #[arg(long = "type")]
        kind: String,
        /// Retention in days.
        #[arg(long)]
        days: u32,
        /// Trial allowance in seconds of event video.
        #[arg(long, default_value_t = 0)]
        trial_seconds: u64,
        /// When the plan ends (RFC 3339).
        #[arg(long)]
        expires: Option<String>,
    },
    /// Show the plan of every channel of a device.
    Show {
        /// Device id.
        device: String,
    },
}

/// `ivcs cloud token`.
#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Create an app API token and print it (only its hash is stored).
    Create {
        /// A name to recognise the token by.
        name: String,
        /// An admin token: also publishes and withdraws engine releases.
        #[arg(long)]
        admin: bool,
    },
}

fn config(common: &Common) -> Result<Config> {
    let mut cfg = Config::load(common.config.as_deref(), std::env::vars())?;
    if let Some(d) = &common.data {
        cfg.data = d.clone();
    }
    Ok(cfg)
}

fn init_logging(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour codes only for a terminal, not in log files and journals.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // A second init (tests in one process) is harmless.
    let _ = if json {
        b.json().try_init()
    } else {
        b.try_init()
    };
}

/// Runs `ivcs cloud`.
pub fn run(common: &Common, cmd: CloudCmd) -> Result<()> {
    let mut cfg = config(common)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = rt.block_on(async move {
        match cmd {
            CloudCmd::Serve { listen, log_json } => {
                if let Some(l) = listen {
                    cfg.listen = l;
                }
                init_logging(&cfg.log, log_json);
                let app = App::open(cfg).await?;
                ivcs_cloud::server::serve(app).await?;
                Ok(())
            }
            CloudCmd::Device { cmd } => device(App::open(cfg).await?, cmd).await,
            CloudCmd::Plan { cmd } => plan(App::open(cfg).await?, cmd).await,
            CloudCmd::Token {
                cmd: TokenCmd::Create { name, admin },
            } => {
                let app = App::open(cfg).await?;
                let token = random_secret();
                let sha = sha256_hex(token.as_bytes());
                if admin {
                    app.repo.add_admin_token(&sha, &name, app.now_ms()).await?;
                } else {
                    app.repo.add_token(&sha, &name, app.now_ms()).await?;
                }
                out(&token);
                Ok(())
            }
            CloudCmd::Retention { now_ms } => {
                let app = App::open(cfg).await?;
                let n = app
                    .retention_pass(now_ms.unwrap_or_else(|| app.now_ms()))
                    .await?;
                out(&format!("removed {n} segments"));
                Ok(())
            }
            // A client of a running service (blocking HTTP).
            CloudCmd::Engine { cmd } => {
                tokio::task::block_in_place(|| crate::cloud_engine::run(cmd))
            }
            CloudCmd::Export(a) => {
                out(&crate::cloud_export::run(cfg, a).await?);
                Ok(())
            }
        }
    });
    // Dropping the runtime would wait for every blocking task (a file read
    // for a client that is gone); the data is safe once serving returned.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    result
}

#[allow(clippy::print_stdout)]
fn out(line: &str) {
    println!("{line}");
}

async fn device(app: Arc<App>, cmd: DeviceCmd) -> Result<()> {
    match cmd {
        DeviceCmd::Add { id } => {
            ids::check("device id", &id)?;
            let secret = random_secret();
            if !app.repo.add_device(&id, &secret, app.now_ms()).await? {
                bail!("device {id} already exists");
            }
            out(&secret);
        }
        DeviceCmd::List => {
            for (id, created) in app.repo.devices().await? {
                out(&format!("{id}\t{}", ivcs_cloud::time::rfc3339_ms(created)));
            }
        }
        DeviceCmd::Remove { id } => {
            ids::check("device id", &id)?;
            if app.repo.device_secret(&id).await?.is_none() {
                bail!("no device {id}");
            }
            let n = app.destroy_device_data(&id, true).await?;
            out(&format!("removed {id} and {n} objects"));
        }
    }
    Ok(())
}

async fn plan(app: Arc<App>, cmd: PlanCmd) -> Result<()> {
    match cmd {
        PlanCmd::Set {
            device,
            channel,
            kind,
            days,
            trial_seconds,
            expires,
        } => {
            ids::check("device id", &device)?;
            if let Some(c) = channel {
                ids::check_channel(c)?;
            }
            let kind = PlanType::from_str(&kind).map_err(|e| anyhow!("--type: {e}"))?;
            let expires_ms = expires
                .as_deref()
                .map(|e| {
                    ivcs_cloud::time::parse_rfc3339(e).ok_or_else(|| {
                        anyhow!("--expires must be RFC 3339, e.g. 2027-01-01T00:00:00Z")
                    })
                })
                .transpose()?;
            if kind == PlanType::Trial && trial_seconds == 0 {
                bail!("a trial plan needs --trial-seconds");
            }
            let p = Plan {
                kind,
                days,
                trial_ms: trial_seconds.saturating_mul(1000),
                trial_used_ms: 0,
                expires_ms,
                replaced: None,
            };
            if app.repo.device_secret(&device).await?.is_none() {
                bail!("no device {device}");
            }
            app.repo
                .set_plan(&device, channel, &p, app.now_ms())
                .await?;
            let rev = app.repo.bump_revision(&device).await?;
            out(&format!("plan set (revision {rev})"));
        }
        PlanCmd::Show { device } => {
            ids::check("device id", &device)?;
            let rows = app.repo.plans(&device).await?;
            let now = app.now_ms();
            out("channel\ttype\tenabled\tdays\ttrial_s_left\texpires");
            for c in 0..ids::CHANNELS {
                let p = channel_plan(&rows, c, now);
                out(&format!(
                    "{c}\t{}\t{}\t{}\t{}\t{}",
                    p.kind.as_str(),
                    p.enabled,
                    p.days,
                    p.trial_seconds_left,
                    p.expires_ms
                        .map_or("-".into(), ivcs_cloud::time::rfc3339_ms)
                ));
            }
        }
    }
    Ok(())
}
