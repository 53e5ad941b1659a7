//! Helpers for tests that generate fixtures with ffmpeg in a temp dir.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A scratch directory for one test, removed on drop.
pub struct Fixture {
    dir: PathBuf,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
}

impl Fixture {
    /// A new fixture dir, or `None` (with a note) if ffmpeg/ffprobe are missing.
    pub fn new(name: &str) -> Option<Fixture> {
        if !have("ffmpeg") || !have("ffprobe") {
            // Tests may tell the developer why they did nothing.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("note: ffmpeg/ffprobe not found; skipping {name}");
            }
            return None;
        }
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("ivcs-media-{name}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Some(Fixture { dir })
    }

    /// A path inside the fixture dir.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Run ffmpeg (quiet, overwrite) and assert success.
    pub fn ffmpeg<S: AsRef<str>>(&self, args: &[S]) {
        let out = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-y"])
            .args(args.iter().map(|a| a.as_ref()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ffmpeg {:?} failed: {}",
            args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A committed fixture from `testdata/` (small, independent of the ffmpeg
/// version, so digests over it stay fixed).
pub fn testdata(name: &str) -> Vec<u8> {
    let p = format!("{}/../testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// Run ffprobe and return stdout.
pub fn ffprobe(args: &[&str], file: &Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// What ffprobe says about the first video stream.
pub struct StreamProbe {
    pub width: u32,
    pub height: u32,
    pub level: i32,
    pub frames: usize,
}

pub fn ffprobe_stream(file: &Path) -> StreamProbe {
    let s = ffprobe(
        &[
            "-count_frames",
            "-select_streams",
            "v",
            "-show_entries",
            "stream=width,height,level,nb_read_frames",
            "-of",
            "default=nw=1",
        ],
        file,
    );
    let get = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k} in {s}"))
            .to_string()
    };
    StreamProbe {
        width: get("width").parse().unwrap(),
        height: get("height").parse().unwrap(),
        level: get("level").parse().unwrap(),
        frames: get("nb_read_frames").parse().unwrap(),
    }
}

/// (key_frame, pict_type) of every decoded video frame, in output order.
pub fn ffprobe_frames(file: &Path) -> Vec<(bool, char)> {
    let s = ffprobe(
        &[
            "-select_streams",
            "v",
            "-show_entries",
            "frame=key_frame,pict_type",
            "-of",
            "csv=p=0",
        ],
        file,
    );
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut it = l.split(',');
            let key = it.next().unwrap() == "1";
            let t = it.next().unwrap().chars().next().unwrap();
            (key, t)
        })
        .collect()
}

/// The body of the first box of type `fourcc` found anywhere in `data`.
pub fn mp4_box<'a>(data: &'a [u8], fourcc: &[u8; 4]) -> Option<&'a [u8]> {
    let at = data.windows(4).position(|w| w == fourcc)?;
    let size = u32::from_be_bytes(data.get(at - 4..at)?.try_into().ok()?) as usize;
    data.get(at + 4..at - 4 + size)
}
