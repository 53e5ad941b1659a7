//! Where things are: the workspace root, the target directory and fresh
//! per-test scratch directories (kept after the run for inspection).

use std::path::{Path, PathBuf};

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the workspace")
        .to_path_buf()
}

/// The cargo target directory: `CARGO_TARGET_DIR` if set, else `<root>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                workspace_root().join(d)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// A fresh, empty directory `<target>/ivcs-tests/<name>`; whatever an earlier
/// run left there is removed first. Outputs stay after the test so a failure
/// can be looked at.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = target_dir().join("ivcs-tests").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot clear {}: {e}", dir.display()));
    }
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// Compares two directories file by file (names and bytes). The error names
/// missing files and the first differing byte of each differing file.
pub fn diff_dirs(a: &Path, b: &Path) -> Result<usize, String> {
    let list = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", d.display()))
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with(".check"))
            .collect();
        v.sort();
        v
    };
    let (la, lb) = (list(a), list(b));
    if la != lb {
        return Err(format!("different files: {la:?} vs {lb:?}"));
    }
    let mut problems = Vec::new();
    for name in &la {
        let x = std::fs::read(a.join(name)).unwrap_or_default();
        let y = std::fs::read(b.join(name)).unwrap_or_default();
        if x != y {
            let at = x
                .iter()
                .zip(&y)
                .position(|(p, q)| p != q)
                .unwrap_or(x.len().min(y.len()));
            problems.push(format!(
                "{name}: {} vs {} bytes, first difference at byte {at}",
                x.len(),
                y.len()
            ));
        }
    }
    if problems.is_empty() {
        Ok(la.len())
    } else {
        Err(problems.join("; "))
    }
}

/// Files under `dir`, recursively (none if it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}
