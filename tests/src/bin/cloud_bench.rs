//! `cloud_bench`: the load generator of the cloud benchmark that
//! `make bench` runs through scripts/bench-cloud.sh (method and measured
//! numbers: docs/design/cloud-bench.md).
//!
//! - Upload: N simulated devices each upload K segments of 10 s at 1-4
//!   Mbit/s, all devices at once and back to back, through the real device
//!   protocol (signed streaming `PUT` + signed commit) to the real
//!   `ivcs cloud serve` binary; and the same bodies, as the same chunked
//!   `PUT`s with the same concurrency, to nginx (WebDAV `PUT`) writing to the
//!   same file system. The service runs once with `fsync = false` (what
//!   nginx does: the like-for-like row, which the >= 0.8x target applies
//!   to) and once with the default `fsync = true` (production: every object
//!   is on disk before it is acknowledged). Runs of the three targets
//!   alternate, in a rotating order, `sync` before each; the best run (by
//!   MB/s) of each target is reported.
//! - Playlist: one device with 8,640 committed 10 s segments (24 h) behind
//!   the device API; the app playlist of the whole day is requested
//!   sequentially over one keep-alive connection. Target: p99 < 20 ms.
//!
//! A missed target prints MISS and exits 0; a failed request exits 1.

// A benchmark reports on stdout.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use clap::{Parser, ValueEnum};
use ivcs_cloud::auth::sha256_hex;
use ivcs_cloud::clock::system_now_ms;
use ivcs_tests::cloud::{self, Cloud, Device, admin};
use serde_json::json;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Barrier;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "ivcs cloud upload and playlist benchmark (see docs/design/cloud-bench.md)")]
struct Args {
    /// Scratch directory. The service's data and nginx's root must be on
    /// the same file system (a disk, not tmpfs).
    #[arg(long)]
    work: PathBuf,
    /// Base URL where nginx accepts PUTs (`dav_methods PUT`); without it
    /// only the service is measured.
    #[arg(long)]
    nginx_url: Option<String>,
    /// The directory that `--nginx-url` stores into (emptied after each run).
    #[arg(long)]
    nginx_root: Option<PathBuf>,
    /// nginx's master process, to count its workers' CPU time.
    #[arg(long)]
    nginx_pid: Option<u32>,
    /// Simulated devices uploading at once.
    #[arg(long, default_value_t = 16)]
    devices: usize,
    /// Segments each device uploads per run.
    #[arg(long, default_value_t = 20)]
    segments: usize,
    /// Runs per upload target (the best is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Segments behind the playlist (8,640 = 24 h of 10 s segments).
    #[arg(long, default_value_t = 8640)]
    playlist_segments: usize,
    /// Timed playlist requests.
    #[arg(long, default_value_t = 200)]
    playlist_requests: usize,
    /// Which part to run.
    #[arg(long, value_enum, default_value_t = Part::All)]
    only: Part,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    All,
    Upload,
    Playlist,
}

/// Segment duration, ms.
const SEGMENT_MS: u64 = 10_000;
/// Upload targets: MB/s of the service over nginx's.
const MIN_RATIO: f64 = 0.8;
/// Playlist target: p99 below this, ms.
const MAX_PLAYLIST_P99_MS: f64 = 20.0;
/// Codec string of the synthetic segments.
const CODEC: &str = "avc1.640028";

type Res<T> = std::result::Result<T, String>;

// ---- workload ---------------------------------------------------------------

/// One segment upload of the workload.
struct Upload {
    id: String,
    query: String,
    /// The body: a slice of the shared random pool.
    body: Range<usize>,
    commit: serde_json::Value,
}

/// Every upload of one run, per device; the same for every target.
struct Workload {
    pool: Vec<u8>,
    devices: Vec<Vec<Upload>>,
    bytes: u64,
    segments: usize,
}

/// Body size of a 10 s segment at `kbps`.
fn segment_bytes(kbps: u64) -> usize {
    usize::try_from(kbps * 1000 / 8 * SEGMENT_MS / 1000).unwrap_or(usize::MAX)
}

/// `len` pseudo-random bytes (xorshift64*): incompressible and not all
/// alike, although nothing on either side compresses or deduplicates.
fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        out.extend_from_slice(&seed.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

impl Workload {
    /// `devices` x `segments` uploads. Bitrates step through 1.0, 1.5, ...
    /// 4.0 Mbit/s (mean 2.5), shifted per device so that every device and
    /// every moment mixes sizes. The service stores segment bytes without
    /// parsing them (device_api.rs), so the bodies are random bytes; their
    /// digests are computed here, before any timing, as the engine computes
    /// them while it records.
    fn new(devices: usize, segments: usize) -> Workload {
        const STEPS: u64 = 7;
        let max = segment_bytes(4000);
        // Bodies start at different offsets of one pool, so they differ.
        let spread = 1 << 20;
        let pool = random_bytes(max + spread, 0x1DC5_0BE4);
        let t0 = system_now_ms() - (segments as u64 + 1) * SEGMENT_MS;
        let mut bytes = 0;
        let devices: Vec<Vec<Upload>> = (0..devices)
            .map(|d| {
                (0..segments)
                    .map(|s| {
                        let kbps = 1000 + 500 * ((d + s) as u64 % STEPS);
                        let len = segment_bytes(kbps);
                        let off = (d * segments + s) * 4099 % spread;
                        let body = off..off + len;
                        bytes += len as u64;
                        let utc = t0 + s as u64 * SEGMENT_MS;
                        let pts = s as u64 * SEGMENT_MS;
                        let seq = s as u32 * 250;
                        Upload {
                            id: format!("0-{utc}-bench-{seq}"),
                            query: format!(
                                "channel=0&container=ts&codec={CODEC}&utc_start_ms={utc}&pts_start_ms={pts}&seq_start={seq}"
                            ),
                            commit: json!({
                                "sha256": sha256_hex(&pool[body.clone()]),
                                "bytes": len,
                                "utc_end_ms": utc + SEGMENT_MS,
                                "pts_end_ms": pts + SEGMENT_MS,
                                "seq_end": seq + 249,
                                "video_frames": 250,
                                "audio_frames": 469,
                            }),
                            body,
                        }
                    })
                    .collect()
            })
            .collect();
        Workload {
            pool,
            segments: devices.iter().map(Vec::len).sum(),
            devices,
            bytes,
        }
    }

    fn body(&self, u: &Upload) -> &[u8] {
        &self.pool[u.body.clone()]
    }
}

// ---- upload runs ------------------------------------------------------------

/// Where a run uploads to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Nginx,
    Cloud { fsync: bool },
}

impl Target {
    fn label(self) -> &'static str {
        match self {
            Target::Nginx => "nginx PUT",
            Target::Cloud { fsync: false } => "ivcs, fsync=false",
            Target::Cloud { fsync: true } => "ivcs, fsync=true (default)",
        }
    }
}

/// What one timed run measured.
struct Run {
    /// From the moment all devices start to the last acknowledgement.
    wall: Duration,
    /// Per upload: first byte of the `PUT` to the last acknowledgement
    /// (the commit's answer for the service).
    latencies: Vec<Duration>,
    /// CPU time the server (service, or nginx's workers) used in the run.
    server_cpu: Option<Duration>,
    /// CPU time this load generator used in the run.
    client_cpu: Option<Duration>,
}

impl Run {
    fn mb_per_s(&self, w: &Workload) -> f64 {
        w.bytes as f64 / 1e6 / self.wall.as_secs_f64()
    }
}

/// CPU time (user + system) of process `pid`, from /proc.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields, in clock ticks (USER_HZ, 100 on Linux).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// The children of `pid` (nginx's workers).
fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = s.get(s.rfind(')')? + 2..)?.to_string();
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// Total CPU time of `pids`, if all can be read.
fn cpu_of(pids: &[u32]) -> Option<Duration> {
    pids.iter().map(|&p| cpu_time(p)).sum()
}

/// Flushes dirty pages, so that one run's writeback does not land in the
/// next run's time.
fn sync() -> Res<()> {
    let st = Command::new("sync")
        .status()
        .map_err(|e| format!("sync: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("sync: {st}"))
    }
}

fn remove_dir(d: &Path) -> Res<()> {
    match std::fs::remove_dir_all(d) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("removing {}: {e}", d.display())),
    }
}

/// Runs `upload(device, upload)` for every upload, one thread per device,
/// all released at once; each call returns an error text or nothing.
fn timed<F>(w: &Workload, server: &[u32], upload: F) -> Res<Run>
where
    F: Fn(usize, &Upload) -> Res<()> + Sync,
{
    let start = Barrier::new(w.devices.len() + 1);
    let cpu0 = cpu_of(server);
    let me = [std::process::id()];
    let client0 = cpu_of(&me);
    std::thread::scope(|scope| {
        let handles: Vec<_> = w
            .devices
            .iter()
            .enumerate()
            .map(|(d, uploads)| {
                let (start, upload) = (&start, &upload);
                scope.spawn(move || -> Res<Vec<Duration>> {
                    start.wait();
                    let mut lat = Vec::with_capacity(uploads.len());
                    for u in uploads {
                        let t = Instant::now();
                        upload(d, u)?;
                        lat.push(t.elapsed());
                    }
                    Ok(lat)
                })
            })
            .collect();
        start.wait();
        let t0 = Instant::now();
        let mut latencies = Vec::with_capacity(w.segments);
        for h in handles {
            let lat = h
                .join()
                .map_err(|p| panic_text(p.as_ref()))
                .and_then(|r| r)?;
            latencies.extend(lat);
        }
        let wall = t0.elapsed();
        Ok(Run {
            wall,
            latencies,
            server_cpu: cpu0.zip(cpu_of(server)).map(|(a, b)| b.saturating_sub(a)),
            client_cpu: client0.zip(cpu_of(&me)).map(|(a, b)| b.saturating_sub(a)),
        })
    })
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a device thread panicked".into())
}

/// A fresh service on `work`, N devices with a full-time plan, then the
/// timed uploads; the data directory is removed afterwards.
fn run_cloud(w: &Workload, work: &Path, fsync: bool, round: usize) -> Res<Run> {
    let data = work.join(format!("cloud-fsync-{fsync}-r{round}"));
    remove_dir(&data)?;
    let fsync_env = if fsync { "true" } else { "false" };
    let cloud = Cloud::start_with_system_clock(&data, &[("IVCS_CLOUD_FSYNC", fsync_env)]);
    let devices: Vec<Device> = (0..w.devices.len())
        .map(|d| {
            let dev = cloud.add_device(&format!("cam{d:03}"));
            admin(
                &cloud.data,
                &["plan", "set", &dev.id, "--type", "full-time", "--days", "7"],
            )
            .expect_success();
            dev
        })
        .collect();
    sync()?;
    let pids: Vec<u32> = cloud.pid().into_iter().collect();
    let run = timed(w, &pids, |d, u| {
        let a = devices[d].upload_segment(&u.id, &u.query, w.body(u), &u.commit);
        if a.status == 200 && a.json()["state"] == "complete" {
            Ok(())
        } else {
            Err(format!(
                "ivcs upload of {} answered {}: {}",
                u.id,
                a.status,
                a.text()
            ))
        }
    })?;
    drop(cloud);
    remove_dir(&data)?;
    Ok(run)
}

/// The same bodies as chunked `PUT`s to nginx (same client, same
/// `expect: 100-continue`), under `r<round>/<device>/`; removed afterwards.
fn run_nginx(w: &Workload, nginx: &Nginx, round: usize) -> Res<Run> {
    let prefix = format!("r{round}");
    remove_dir(&nginx.root.join(&prefix))?;
    let agents: Vec<ureq::Agent> = (0..w.devices.len()).map(|_| cloud::agent()).collect();
    let workers = nginx.pid.map(children).unwrap_or_default();
    sync()?;
    let url = nginx.url;
    let run = timed(w, &workers, |d, u| {
        let target = format!("{url}/{prefix}/cam{d:03}/{}.ts", u.id);
        let r = agents[d]
            .put(&target)
            .header("expect", "100-continue")
            .send(ureq::SendBody::from_reader(&mut w.body(u)));
        match r {
            Ok(mut r) if matches!(r.status().as_u16(), 201 | 204) => {
                let _ = r.body_mut().read_to_vec();
                Ok(())
            }
            Ok(mut r) => Err(format!(
                "nginx PUT {target} answered {}: {}",
                r.status(),
                r.body_mut().read_to_string().unwrap_or_default()
            )),
            Err(e) => Err(format!("nginx PUT {target}: {e}")),
        }
    })?;
    remove_dir(&nginx.root.join(&prefix))?;
    Ok(run)
}

/// Where the nginx runs go.
#[derive(Clone, Copy)]
struct Nginx<'a> {
    url: &'a str,
    root: &'a Path,
    pid: Option<u32>,
}

/// The `p`-th percentile (nearest rank) of `v`, ms.
fn percentile_ms(v: &[Duration], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort();
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1].as_secs_f64() * 1000.0
}

fn upload_bench(args: &Args) -> Res<()> {
    let t = Instant::now();
    let w = Workload::new(args.devices, args.segments);
    eprintln!(
        "cloud_bench: workload of {} segments, {:.0} MB ready in {:.1} s",
        w.segments,
        w.bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let mut targets = vec![
        Target::Cloud { fsync: false },
        Target::Cloud { fsync: true },
    ];
    let nginx = match (&args.nginx_url, &args.nginx_root) {
        (Some(u), Some(r)) => Some(Nginx {
            url: u.trim_end_matches('/'),
            root: r.as_path(),
            pid: args.nginx_pid,
        }),
        (None, None) => None,
        _ => return Err("--nginx-url and --nginx-root go together".into()),
    };
    if nginx.is_some() {
        targets.insert(0, Target::Nginx);
    }
    let mut runs: Vec<(Target, Vec<Run>)> = targets.iter().map(|&t| (t, Vec::new())).collect();
    for round in 0..args.runs {
        // A rotating order: no target always runs right after another one's
        // writes, or always first on a cold cache.
        for i in 0..targets.len() {
            let k = (i + round) % targets.len();
            let target = targets[k];
            let run = match (target, nginx) {
                (Target::Nginx, Some(n)) => run_nginx(&w, &n, round)?,
                (Target::Cloud { fsync }, _) => run_cloud(&w, &args.work, fsync, round)?,
                (Target::Nginx, None) => unreachable!("nginx is a target only with its URL"),
            };
            eprintln!(
                "cloud_bench: round {} {:<28} {:8.1} MB/s",
                round + 1,
                target.label(),
                run.mb_per_s(&w)
            );
            runs[k].1.push(run);
        }
    }

    let mb = w.bytes as f64 / 1e6;
    println!();
    println!(
        "ivcs cloud upload benchmark: {} devices x {} segments of 10 s at 1-4 Mbit/s ({mb:.0} MB per run), best of {} runs by MB/s",
        args.devices, args.segments, args.runs
    );
    println!(
        "data on {}; srv cpu and gen cpu: CPU seconds per GB of the server and of the load generator",
        args.work.display()
    );
    println!(
        "{:<28} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}   all runs MB/s",
        "target", "segments", "seg/s", "MB/s", "p50 ms", "p99 ms", "srv cpu", "gen cpu"
    );
    let mut best_mb = Vec::new();
    for (t, rs) in &runs {
        let best = rs
            .iter()
            .max_by(|a, b| a.mb_per_s(&w).total_cmp(&b.mb_per_s(&w)))
            .ok_or("no runs")?;
        let all: Vec<String> = rs
            .iter()
            .map(|r| format!("{:.0}", r.mb_per_s(&w)))
            .collect();
        // CPU seconds per GB stored, of the server and of this generator:
        // what the work costs, whatever else runs on the machine (n/a
        // without nginx's pid).
        let per_gb = |c: Option<Duration>| {
            c.map_or("n/a".to_string(), |c| {
                format!("{:.2}", c.as_secs_f64() / (w.bytes as f64 / 1e9))
            })
        };
        println!(
            "{:<28} {:>8} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8} {:>8}   {}",
            t.label(),
            w.segments,
            w.segments as f64 / best.wall.as_secs_f64(),
            best.mb_per_s(&w),
            percentile_ms(&best.latencies, 50.0),
            percentile_ms(&best.latencies, 99.0),
            per_gb(best.server_cpu),
            per_gb(best.client_cpu),
            all.join(" ")
        );
        best_mb.push((*t, best.mb_per_s(&w)));
    }
    println!();
    let of = |t: Target| best_mb.iter().find(|(x, _)| *x == t).map(|(_, v)| *v);
    match of(Target::Nginx) {
        Some(n) => {
            let like = of(Target::Cloud { fsync: false }).unwrap_or(0.0) / n;
            let durable = of(Target::Cloud { fsync: true }).unwrap_or(0.0) / n;
            println!(
                "{:<44} {like:6.2}x   target >= {MIN_RATIO:.1}x  {}",
                "ivcs fsync=false / nginx MB/s (like-for-like)",
                if like >= MIN_RATIO { "PASS" } else { "MISS" }
            );
            println!(
                "{:<44} {durable:6.2}x   (durable acknowledgements; nginx does not fsync)",
                "ivcs fsync=true / nginx MB/s (default)"
            );
        }
        None => println!("no nginx run: ratios n/a (pass --nginx-url and --nginx-root)"),
    }
    Ok(())
}

// ---- playlist -----------------------------------------------------------------

/// Start of the recorded day: fixed, so the playlist is the same every run.
const PLAYLIST_START_MS: u64 = 1_700_006_400_000;
/// Threads that fill the day (setup only, not timed).
const FILL_THREADS: usize = 4;

fn playlist_bench(args: &Args) -> Res<()> {
    let n = args.playlist_segments;
    let data = args.work.join("playlist");
    remove_dir(&data)?;
    let cloud = Cloud::start(&data, &[]);
    let end_ms = PLAYLIST_START_MS + n as u64 * SEGMENT_MS;
    // "Now" just after the day, so signatures and retention see a live day.
    cloud.set_now_ms(end_ms + 60_000);
    let dev = cloud.add_device("cam-playlist");
    admin(
        &cloud.data,
        &[
            "plan",
            "set",
            &dev.id,
            "--type",
            "full-time",
            "--days",
            "30",
        ],
    )
    .expect_success();

    // One-shot uploads (digest and end in the PUT) through the device API:
    // the rows are what real uploads index; bodies are a few TS packets.
    let t = Instant::now();
    let body = random_bytes(188 * 4, 7);
    let digest = sha256_hex(&body);
    std::thread::scope(|scope| -> Res<()> {
        let handles: Vec<_> = (0..FILL_THREADS)
            .map(|k| {
                let (dev, body, digest) = (dev.clone(), &body, &digest);
                scope.spawn(move || -> Res<()> {
                    for s in (k..n).step_by(FILL_THREADS) {
                        let utc = PLAYLIST_START_MS + s as u64 * SEGMENT_MS;
                        let (pts, seq) = (s as u64 * SEGMENT_MS, s as u32 * 250);
                        let q = format!(
                            "channel=0&container=ts&codec={CODEC}&utc_start_ms={utc}&pts_start_ms={pts}&seq_start={seq}&utc_end_ms={}&pts_end_ms={}&seq_end={}&video_frames=250&audio_frames=469",
                            utc + SEGMENT_MS,
                            pts + SEGMENT_MS,
                            seq + 249
                        );
                        let path = format!("/v1/device/segments/0-{utc}-day-{seq}?{q}");
                        let h = dev.headers("PUT", &path, digest);
                        let a = dev.send_with("PUT", &path, &h, body.clone());
                        if a.status != 201 {
                            return Err(format!("segment upload answered {}: {}", a.status, a.text()));
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|p| panic_text(p.as_ref()))
                .and_then(|r| r)?;
        }
        Ok(())
    })?;
    eprintln!(
        "cloud_bench: {n} segments committed in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let token = cloud.token();
    let app = cloud.app(Some(&token));
    let path = format!(
        "/v1/devices/{}/channels/0/playlist.m3u8?start_ms={PLAYLIST_START_MS}&end_ms={end_ms}",
        dev.id
    );
    // Check what is measured: the whole day, one contiguous run.
    let first = app.get(&path);
    let text = first.text();
    let entries = text.lines().filter(|l| l.starts_with("#EXTINF:")).count();
    let gaps = text.matches("#EXT-X-DISCONTINUITY").count();
    if first.status != 200 || entries != n || gaps != 0 {
        return Err(format!(
            "the playlist is not the day: status {}, {entries} entries (want {n}), {gaps} discontinuities; starts {:?}",
            first.status,
            text.chars().take(300).collect::<String>()
        ));
    }
    let pids: Vec<u32> = cloud.pid().into_iter().collect();
    let cpu0 = cpu_of(&pids);
    let mut lat = Vec::with_capacity(args.playlist_requests);
    for _ in 0..args.playlist_requests {
        let t = Instant::now();
        let a = app.get(&path);
        lat.push(t.elapsed());
        if a.status != 200 || a.body.len() != first.body.len() {
            return Err(format!(
                "playlist answered {} with {} bytes: {}",
                a.status,
                a.body.len(),
                a.text().chars().take(300).collect::<String>()
            ));
        }
    }
    let cpu = cpu0.zip(cpu_of(&pids)).map_or("n/a".to_string(), |(a, b)| {
        format!(
            "{:.1}",
            b.saturating_sub(a).as_secs_f64() * 1e3 / args.playlist_requests as f64
        )
    });
    let p99 = percentile_ms(&lat, 99.0);
    println!();
    println!(
        "ivcs playlist benchmark: {n} segments ({:.0} h), {} sequential requests, {:.0} KB playlist",
        n as f64 * SEGMENT_MS as f64 / 3.6e6,
        args.playlist_requests,
        first.body.len() as f64 / 1e3
    );
    println!(
        "playlist latency ms: p50 {:.1}  p99 {p99:.1}  max {:.1}  (service CPU {cpu} ms/request)   target p99 < {MAX_PLAYLIST_P99_MS:.0} ms  {}",
        percentile_ms(&lat, 50.0),
        percentile_ms(&lat, 100.0),
        if p99 < MAX_PLAYLIST_P99_MS {
            "PASS"
        } else {
            "MISS"
        }
    );
    // The day's data stays for inspection until the next run.
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = std::fs::create_dir_all(&args.work) {
        eprintln!("cloud_bench: creating {}: {e}", args.work.display());
        return ExitCode::FAILURE;
    }
    let mut result = Ok(());
    if args.only != Part::Playlist {
        result = upload_bench(&args);
    }
    if result.is_ok() && args.only != Part::Upload {
        result = playlist_bench(&args);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cloud_bench: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
