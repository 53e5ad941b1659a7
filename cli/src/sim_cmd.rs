//! `ivcs sim`: runs scenario files through host-sim and prints a table; a
//! failing seed prints the command that reproduces it and leaves its JSONL
//! trace.

use anyhow::{Context, Result, bail};
use clap::Args;
use ivcs_sim::scenario::Scenario;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

/// `ivcs sim` options.
#[derive(Args)]
pub struct SimArgs {
    /// Scenario files (TOML; docs/guide/scenarios.md).
    #[arg(required = true)]
    scenarios: Vec<PathBuf>,
    /// Run this seed.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Run every seed of a range, `N..M` (M excluded): swarm mode.
    #[arg(long)]
    seeds: Option<String>,
    /// Where failing seeds' traces go (and every trace with --seed).
    #[arg(long, default_value = "target/sim")]
    trace_dir: PathBuf,
    /// The engine component; default: the one next to this binary.
    #[arg(long)]
    engine: Option<PathBuf>,
    /// Also time each scenario's camera through the engine's muxer alone
    /// (the floor: every simulated byte is muxed) and print the
    /// simulation's speed against it (`make bench`).
    #[arg(long)]
    mux_floor: bool,
}

fn seeds(args: &SimArgs) -> Result<Vec<u64>> {
    if let Some(r) = &args.seeds {
        let (a, b) = r.split_once("..").context("--seeds takes N..M")?;
        let (a, b): (u64, u64) = (a.parse()?, b.parse()?);
        if a >= b || b - a > 1_000_000 {
            bail!("--seeds N..M needs N < M and at most a million seeds");
        }
        return Ok((a..b).collect());
    }
    Ok(vec![args.seed.unwrap_or(1)])
}

fn trace_path(dir: &Path, name: &str, seed: u64) -> PathBuf {
    dir.join(format!("{name}-seed{seed}.jsonl"))
}

/// Runs the scenarios; fails if any run broke an invariant.
pub fn run(args: &SimArgs) -> Result<()> {
    let path = crate::engine_file::locate(args.engine.as_deref())?;
    let rt = Rc::new(crate::engine_file::load(&path)?);
    let seeds = seeds(args)?;
    let single = seeds.len() == 1;
    std::fs::create_dir_all(&args.trace_dir)
        .with_context(|| format!("creating {}", args.trace_dir.display()))?;
    let mut out = vec![format!(
        "{:<28} {:>6} {:>9} {:>6} {:>8} {:>6} {:>8} {:>6} {:>7} {:>8}  verdict",
        "scenario",
        "seed",
        "cam-hours",
        "faults",
        "segments",
        "backup",
        "lost s",
        "buf %",
        "wmark",
        "wall s"
    )];
    let mut failed = Vec::new();
    let (mut hours, mut wall) = (0.0, 0.0);
    for file in &args.scenarios {
        let scn = Scenario::load(file)?;
        for &seed in &seeds {
            let tp = trace_path(&args.trace_dir, &scn.name, seed);
            let t0 = Instant::now();
            let trace = single.then(|| std::fs::File::create(&tp)).transpose()?;
            let o = ivcs_sim::run(&scn, seed, rt.clone(), trace)?;
            let secs = t0.elapsed().as_secs_f64();
            hours += o.camera_hours;
            wall += secs;
            let verdict = if o.violations.is_empty() {
                "pass"
            } else {
                "FAIL"
            };
            out.push(format!(
                "{:<28} {:>6} {:>9.2} {:>6} {:>8} {:>6} {:>8.1} {:>6.1} {:>7} {:>8.1}  {verdict}",
                o.scenario,
                seed,
                o.camera_hours,
                o.faults,
                o.segments,
                o.recovered,
                o.lost_s,
                o.max_buffer_pct,
                o.max_watermark,
                secs
            ));
            if args.mux_floor {
                let (floor, bytes) = ivcs_sim::floor::mux_floor(&scn, &rt)?;
                let cam_h = scn.duration_s as f64 / 3600.0;
                let per_min = |s: f64| cam_h / s.max(1e-9) * 60.0;
                let one_cam = secs / f64::from(scn.cameras);
                out.push(format!(
                    "  speed: {:.1} camera-hours per wall-clock minute; the engine's muxer alone on the same camera ({:.0} MB): {:.1}; simulation / floor time = {:.1}x",
                    per_min(one_cam),
                    bytes as f64 / 1e6,
                    per_min(floor.as_secs_f64()),
                    one_cam / floor.as_secs_f64().max(1e-9)
                ));
            }
            if !o.violations.is_empty() {
                if !single {
                    // Same seed, same run: again, with its trace.
                    let f = std::fs::File::create(&tp)?;
                    ivcs_sim::run(&scn, seed, rt.clone(), Some(f))?;
                }
                failed.push((file.clone(), seed, tp, o.violations));
            }
        }
    }
    out.push(format!(
        "total: {hours:.2} simulated camera-hours in {wall:.1} s = {:.0} camera-hours per wall-clock minute",
        hours / wall.max(1e-9) * 60.0
    ));
    #[allow(clippy::print_stdout)]
    for l in &out {
        println!("{l}");
    }
    if failed.is_empty() {
        return Ok(());
    }
    #[allow(clippy::print_stdout)]
    for (file, seed, trace, violations) in &failed {
        println!("\nFAIL {} seed {seed}:", file.display());
        for v in violations {
            println!("  - {v}");
        }
        println!("  reproduce: ivcs sim {} --seed {seed}", file.display());
        println!("  trace: {}", trace.display());
    }
    bail!("{} run(s) broke an invariant", failed.len())
}
