//! What the browser tests share: running a command to success, building
//! the viewer, `tests/browser` with playwright-core installed, and the
//! Chromium to drive (Debian's; `CHROMIUM` overrides the path).

use crate::paths::workspace_root;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs a command to completion, panicking with its output unless it
/// succeeds; returns its standard output.
pub fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds the viewer from `viewer/` into `out` (scripts/build-viewer.sh:
/// `npm ci` for hls.js when needed, then a copy).
pub fn build_viewer(out: &Path) {
    run(
        Command::new(workspace_root().join("scripts/build-viewer.sh")).arg(out),
        "building the viewer",
    );
    assert!(out.join("index.html").is_file());
}

/// `tests/browser` with playwright-core installed.
pub fn browser_dir() -> PathBuf {
    let dir = workspace_root().join("tests/browser");
    let stamp = dir.join("node_modules/.package-lock.json");
    let stale = match (
        std::fs::metadata(&stamp),
        std::fs::metadata(dir.join("package-lock.json")),
    ) {
        (Ok(s), Ok(l)) => s.modified().ok() < l.modified().ok(),
        _ => true,
    };
    if stale {
        run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir),
            "npm ci in tests/browser (playwright-core)",
        );
    }
    dir
}

/// The Chromium binary (fails with an install hint if missing).
pub fn chromium() -> String {
    let path = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&path).is_file(),
        "no Chromium at {path}: `apt-get install -y chromium` (or set CHROMIUM)"
    );
    path
}
