//! Running `ivcs mux`. The binary is `IVCS_BIN` if set, else
//! `<workspace>/target/release/ivcs`; a missing binary fails the test with a
//! hint (build it with `make cli` / `cargo build --release -p ivcs-cli`).

use crate::Container;
use crate::fixtures::{AudioFixture, VideoFixture};
use crate::paths::{target_dir, workspace_root};
use crate::tools::{self, Captured};
use std::path::{Path, PathBuf};

/// UTC of the first frame passed to every run, so that runs are
/// reproducible and `utc_*` can be checked.
pub const START_UTC_MS: u64 = 1_700_000_000_000;

/// `ivcs engine sign --key KEY ENGINE -o OUT` (the kind read from the
/// bytes), which must succeed.
pub fn sign_engine(key: &Path, engine: &Path, out: &Path) {
    let arg = std::ffi::OsStr::new;
    let args = [
        arg("engine"),
        arg("sign"),
        arg("--key"),
        key.as_os_str(),
        engine.as_os_str(),
        arg("-o"),
        out.as_os_str(),
    ];
    tools::run(bin(), args).expect_success();
}

/// The `ivcs` binary to test.
pub fn bin() -> PathBuf {
    let path = match std::env::var_os("IVCS_BIN") {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            if p.is_absolute() {
                p
            } else {
                workspace_root().join(p)
            }
        }
        _ => target_dir().join("release").join("ivcs"),
    };
    assert!(
        path.is_file(),
        "the ivcs binary is not at {}: build it first (`make cli`, i.e. `cargo build --release -p ivcs-cli`) \
         or point IVCS_BIN at it (`make matrix` does both)",
        path.display()
    );
    path
}

/// One `ivcs mux` invocation.
#[derive(Clone, Copy, Debug)]
pub struct Mux<'a> {
    /// `--video`.
    pub video: &'a VideoFixture,
    /// `--audio` and its format options.
    pub audio: Option<&'a AudioFixture>,
    /// `--format`.
    pub container: Container,
    /// `--segment-seconds`, or the CLI default (10) if `None`.
    pub segment_seconds: Option<u32>,
    /// `--native`.
    pub native: bool,
}

impl<'a> Mux<'a> {
    /// A component-engine run with a 4 s segment target.
    pub fn new(
        video: &'a VideoFixture,
        audio: Option<&'a AudioFixture>,
        container: Container,
    ) -> Self {
        Mux {
            video,
            audio,
            container,
            segment_seconds: Some(4),
            native: false,
        }
    }

    /// Target segment duration in ms as the CLI will use it.
    pub fn target_ms(&self) -> u64 {
        u64::from(self.segment_seconds.unwrap_or(10)) * 1000
    }

    /// The argument list (after the binary). `--fps` is passed only when the
    /// fixture is not 25 fps, so the default is exercised too.
    pub fn args(&self, out: &Path) -> Vec<String> {
        let mut a: Vec<String> = vec!["mux".into(), "--video".into(), tools::p(&self.video.path())];
        if let Some(au) = self.audio {
            a.extend(au.cli_args());
        }
        a.extend(["--format".into(), self.container.arg().into()]);
        if let Some(s) = self.segment_seconds {
            a.extend(["--segment-seconds".into(), s.to_string()]);
        }
        if self.video.fps != 25 {
            a.extend(["--fps".into(), self.video.fps.to_string()]);
        }
        a.extend(["--start-utc-ms".into(), START_UTC_MS.to_string()]);
        if self.native {
            a.push("--native".into());
        }
        a.extend(["--out".into(), tools::p(out)]);
        a
    }

    /// Runs it into `out` and returns what happened (no assertion).
    pub fn run(&self, out: &Path) -> Captured {
        tools::run(bin(), self.args(out))
    }

    /// Runs it into `out` and panics with its stderr unless it succeeded.
    pub fn run_ok(&self, out: &Path) -> Captured {
        self.run(out).expect_success()
    }
}
