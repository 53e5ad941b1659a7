//! `ivcs`: the command-line entry point. Each subcommand lives in its own
//! module; this file only parses arguments and dispatches.

mod cloud_cmd;
mod cloud_export;
mod engine_file;
mod input;
mod mux_cmd;
mod sim_cmd;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "ivcs", version, about = "Open cloud recording for IP cameras")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Segment an Annex-B video file (plus optional audio) through the engine.
    Mux(mux_cmd::MuxArgs),
    /// Run and administer the cloud service.
    Cloud {
        #[command(flatten)]
        common: cloud_cmd::Common,
        #[command(subcommand)]
        cmd: cloud_cmd::CloudCmd,
    },
    /// A virtual camera: a live test pattern (or a looped video file)
    /// pushed through libivcs as firmware does (docs/guide/quickstart.md).
    Cam(ivcs_cam::CamArgs),
    /// Simulate cameras, networks, clocks and the cloud in virtual time
    /// (docs/guide/scenarios.md).
    Sim(sim_cmd::SimArgs),
    /// Engine component tools.
    Engine {
        #[command(subcommand)]
        cmd: EngineCmd,
    },
}

#[derive(Subcommand)]
enum EngineCmd {
    /// Precompile engine.wasm for this machine (what `make` puts in dist/engine).
    Precompile {
        /// The engine component (.wasm).
        wasm: PathBuf,
        /// Where to write the artifact (.cwasm).
        out: PathBuf,
    },
    /// List the component's imports; with --check, fail on anything beyond
    /// clock, network and snapshot.
    Imports {
        /// The engine component (.wasm).
        wasm: PathBuf,
        /// Exit non-zero if a forbidden import is present.
        #[arg(long)]
        check: bool,
    },
    /// Print the engine's contract and build versions.
    Info {
        /// The engine component; default: the one next to this binary.
        #[arg(long)]
        engine: Option<PathBuf>,
    },
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Mux(args) => mux_cmd::run(&args),
        Cmd::Cloud { common, cmd } => cloud_cmd::run(&common, cmd),
        Cmd::Cam(args) => ivcs_cam::run(args),
        Cmd::Sim(args) => sim_cmd::run(&args),
        Cmd::Engine { cmd } => match cmd {
            EngineCmd::Precompile { wasm, out } => engine_file::precompile(&wasm, &out),
            EngineCmd::Imports { wasm, check } => engine_file::imports(&wasm, check),
            EngineCmd::Info { engine } => engine_file::info(engine.as_deref()),
        },
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("ivcs: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}
