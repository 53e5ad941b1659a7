//! `ivcs cloud export`: one MP4 file of a recorded range, either from a
//! running service (`--url` with an app token, the same
//! `GET .../export.mp4` a browser uses) or straight from a data directory
//! (no service needed; safe next to a running one). A progress bar shows
//! bytes written against the size the export announces up front.

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ivcs_cloud::app::App;
use ivcs_cloud::config::Config;
use ivcs_cloud::{export, ids, time};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// `ivcs cloud export` options.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Device id.
    #[arg(long)]
    device: String,
    /// Channel 0-4.
    #[arg(long, default_value_t = 0)]
    channel: u32,
    /// Start: RFC 3339 (2026-11-24T08:00:00Z) or ms since 1970.
    #[arg(long)]
    start: String,
    /// End (exclusive), as --start; at most 24 h after it.
    #[arg(long)]
    end: String,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
    /// Base URL of a running service (e.g. http://127.0.0.1:8080); without
    /// it the data directory is read directly.
    #[arg(long)]
    url: Option<String>,
    /// App API token for --url (default: $IVCS_TOKEN).
    #[arg(long, env = "IVCS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM file of a CA to trust for an https --url (besides the
    /// built-in roots).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// A time argument: RFC 3339 or integer ms.
fn parse_time(what: &str, s: &str) -> Result<u64> {
    s.parse::<u64>()
        .ok()
        .or_else(|| time::parse_rfc3339(s))
        .ok_or_else(|| anyhow!("--{what} {s:?}: expected RFC 3339 (2026-11-24T08:00:00Z) or ms"))
}

/// The output file is written under a temporary name and renamed at the
/// end, so an interrupted export never leaves a plausible-looking file.
struct Output {
    tmp: PathBuf,
    path: PathBuf,
    w: BufWriter<File>,
    bar: ProgressBar,
}

impl Output {
    fn create(path: &Path, total: u64, quiet: bool) -> Result<Output> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".part");
        let tmp = PathBuf::from(tmp);
        let f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(total)
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .map_err(|e| anyhow!("progress style: {e}"))?,
        );
        Ok(Output {
            tmp,
            path: path.to_path_buf(),
            w: BufWriter::with_capacity(1 << 20, f),
            bar,
        })
    }

    fn write(&mut self, piece: &[u8]) -> Result<()> {
        self.w
            .write_all(piece)
            .with_context(|| format!("writing {}", self.tmp.display()))?;
        self.bar.inc(piece.len() as u64);
        Ok(())
    }

    fn finish(mut self, total: u64) -> Result<()> {
        self.w.flush()?;
        let f = self.w.get_ref();
        let got = f.metadata()?.len();
        if got != total {
            bail!("the export ended after {got} of {total} bytes");
        }
        f.sync_all()?;
        std::fs::rename(&self.tmp, &self.path)?;
        self.bar.finish_and_clear();
        Ok(())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        // Gone after a successful rename; otherwise an incomplete file.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Runs `ivcs cloud export`; prints a summary line.
pub async fn run(cfg: Config, a: ExportArgs) -> Result<String> {
    ids::check("device id", &a.device)?;
    ids::check_channel(a.channel)?;
    let start = parse_time("start", &a.start)?;
    let end = parse_time("end", &a.end)?;
    if end <= start {
        bail!("--end must be after --start");
    }
    let (first_ms, last_ms, total) = match a.url.clone() {
        // Blocking HTTP and file I/O: off the async workers.
        Some(url) => {
            let a = &a;
            tokio::task::block_in_place(|| via_service(&url, a, start, end))?
        }
        None => from_data_dir(cfg, &a, start, end).await?,
    };
    Ok(format!(
        "{}: {} bytes, {} .. {}",
        a.out.display(),
        total,
        time::rfc3339_ms(first_ms),
        time::rfc3339_ms(last_ms)
    ))
}

async fn from_data_dir(
    cfg: Config,
    a: &ExportArgs,
    start: u64,
    end: u64,
) -> Result<(u64, u64, u64)> {
    let app = App::open(cfg).await?;
    let ex = export::prepare(&app, &a.device, a.channel, start, end).await?;
    let (first, last, total) = (ex.start_ms, ex.end_ms, ex.total_size());
    let mut out = Output::create(&a.out, total, a.quiet)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let pass2 = tokio::spawn(ex.stream(app.clone(), tx));
    while let Some(piece) = rx.recv().await {
        out.write(&piece?)?;
    }
    pass2.await?;
    out.finish(total)?;
    Ok((first, last, total))
}

fn via_service(url: &str, a: &ExportArgs, start: u64, end: u64) -> Result<(u64, u64, u64)> {
    let token = a
        .token
        .as_deref()
        .ok_or_else(|| anyhow!("--url needs --token or IVCS_TOKEN"))?;
    let agent = crate::http_client::agent(a.ca.as_deref())?;
    let target = format!(
        "{}/v1/devices/{}/channels/{}/export.mp4?start_ms={start}&end_ms={end}",
        url.trim_end_matches('/'),
        a.device,
        a.channel
    );
    let mut resp = agent
        .get(&target)
        .header("authorization", format!("Bearer {token}"))
        .call()
        .with_context(|| format!("GET {target}"))?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        bail!("the service answered {status}: {}", body.trim());
    }
    let header = |name: &str| -> Result<u64> {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("the answer has no {name}"))
    };
    let (total, first, last) = (
        header("content-length")?,
        header("x-ivcs-start-ms")?,
        header("x-ivcs-end-ms")?,
    );
    let mut out = Output::create(&a.out, total, a.quiet)?;
    let mut body = resp.body_mut().with_config().limit(u64::MAX).reader();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = body
            .read(&mut buf)
            .context("reading the export (the service may have failed mid-file)")?;
        if n == 0 {
            break;
        }
        out.write(&buf[..n])?;
    }
    out.finish(total)?;
    Ok((first, last, total))
}
