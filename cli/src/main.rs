//! `ivcs`: the command-line entry point. Each subcommand lives in its own
//! module; this file only parses arguments and dispatches.

mod cloud_cmd;
mod cloud_engine;
mod cloud_export;
mod engine_file;
mod engine_sign;
mod http_client;
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
    /// Compile engine.wasm for this machine's wasmtime (the .cwasm `make`
    /// puts in dist/engine), optionally as a signed artifact.
    #[command(alias = "precompile")]
    Compile {
        /// The engine component (.wasm).
        wasm: PathBuf,
        /// Where to write the .cwasm (or, with --sign, the signed artifact).
        #[arg(short, long, value_name = "OUT")]
        out: Option<PathBuf>,
        /// The output as a second argument (the older `precompile WASM OUT`).
        #[arg(hide = true, conflicts_with = "out")]
        out_arg: Option<PathBuf>,
        /// Sign the result with this private key (see `keygen`).
        #[arg(long, value_name = "KEY")]
        sign: Option<PathBuf>,
    },
    /// Make a signing key pair: PATH (private, mode 0600) and PATH.pub.
    Keygen {
        /// The private key file to create (never overwritten).
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
    },
    /// Wrap an engine (.wasm or .cwasm) in a signed artifact.
    Sign {
        /// The private key (from `keygen`).
        #[arg(long, value_name = "PATH")]
        key: PathBuf,
        /// The payload's kind; default: told from its bytes.
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
        /// The engine: a component (.wasm) or this machine's .cwasm.
        engine: PathBuf,
        /// Where to write the artifact.
        #[arg(short, long, value_name = "OUT")]
        out: PathBuf,
    },
    /// Check a signed artifact: print its manifest, then `ok` or why it is
    /// refused (exit status 1).
    Verify {
        /// Trusted public keys (.pub files), comma-separated or repeated.
        #[arg(
            long = "pub",
            value_name = "PATH",
            value_delimiter = ',',
            required = true
        )]
        keys: Vec<PathBuf>,
        /// Check signature and payload only, not whether it runs here
        /// (for artifacts made for other devices).
        #[arg(long)]
        any_host: bool,
        /// The artifact.
        file: PathBuf,
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

/// `--kind` of `ivcs engine sign`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum KindArg {
    /// A component (.wasm), for hosts that compile.
    Wasm,
    /// A .cwasm precompiled on this machine, for the minimal runtime.
    Precompiled,
}

impl KindArg {
    fn kind(self) -> ivcs_host::artifact::ArtifactKind {
        match self {
            KindArg::Wasm => ivcs_host::artifact::ArtifactKind::Wasm,
            KindArg::Precompiled => ivcs_host::artifact::ArtifactKind::Precompiled,
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Mux(args) => mux_cmd::run(&args),
        Cmd::Cloud { common, cmd } => cloud_cmd::run(&common, cmd),
        Cmd::Cam(args) => ivcs_cam::run(args),
        Cmd::Sim(args) => sim_cmd::run(&args),
        Cmd::Engine { cmd } => match cmd {
            EngineCmd::Compile {
                wasm,
                out,
                out_arg,
                sign,
            } => match out.or(out_arg) {
                Some(out) => engine_file::compile(&wasm, &out, sign.as_deref()),
                None => anyhow::bail!("where to? give -o OUT"),
            },
            EngineCmd::Keygen { out } => engine_sign::keygen(&out),
            EngineCmd::Sign {
                key,
                kind,
                engine,
                out,
            } => engine_sign::sign(&engine, kind.map(KindArg::kind), &key, &out),
            EngineCmd::Verify {
                keys,
                any_host,
                file,
            } => engine_sign::verify(&file, &keys, any_host),
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
