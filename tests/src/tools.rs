//! Running ffmpeg and ffprobe. A missing tool is a test failure with a clear
//! message, never a skip: CI installs Debian's ffmpeg.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// What a finished command left behind.
#[derive(Debug)]
pub struct Captured {
    /// The command line, for messages.
    pub cmdline: String,
    /// Whether it exited with status 0.
    pub success: bool,
    /// Exit status as text.
    pub status: String,
    /// Standard output, raw.
    pub stdout: Vec<u8>,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl Captured {
    /// Standard output as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Panics with the command line and stderr unless it exited with 0.
    pub fn expect_success(self) -> Self {
        assert!(
            self.success,
            "command failed ({}): {}\n--- stderr ---\n{}",
            self.status, self.cmdline, self.stderr
        );
        self
    }
}

/// Runs `program args...` to completion, capturing stdout and stderr
/// (stdin is closed). Panics only if the program cannot be started.
pub fn run<I, S>(program: impl AsRef<OsStr>, args: I) -> Captured
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let program = program.as_ref();
    let args: Vec<_> = args
        .into_iter()
        .map(|a| a.as_ref().to_os_string())
        .collect();
    let cmdline = std::iter::once(program)
        .chain(args.iter().map(|a| a.as_os_str()))
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new(program)
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{cmdline}`: {e}"));
    Captured {
        cmdline,
        success: out.status.success(),
        status: out.status.to_string(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Checks once per process that ffmpeg and ffprobe are on PATH, and panics
/// with an install hint if not.
pub fn require_ffmpeg() {
    static OK: OnceLock<Result<(), String>> = OnceLock::new();
    let r = OK.get_or_init(|| {
        for tool in ["ffmpeg", "ffprobe"] {
            match Command::new(tool)
                .arg("-version")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
            {
                Ok(s) if s.success() => {}
                Ok(s) => return Err(format!("`{tool} -version` failed ({s})")),
                Err(e) => return Err(format!("`{tool}` cannot be run: {e}")),
            }
        }
        Ok(())
    });
    if let Err(e) = r {
        panic!(
            "{e}.\nThe ivcs media tests need Debian's ffmpeg (with libx264/libx265): \
             `apt-get install ffmpeg`. They fail rather than skip without it."
        );
    }
}

/// Runs ffmpeg with `-hide_banner -nostdin` and the given arguments.
pub fn ffmpeg<I, S>(args: I) -> Captured
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    require_ffmpeg();
    let mut all: Vec<std::ffi::OsString> = vec!["-hide_banner".into(), "-nostdin".into()];
    all.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
    run("ffmpeg", all)
}

/// Runs ffprobe with `-hide_banner` and the given arguments.
pub fn ffprobe<I, S>(args: I) -> Captured
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    require_ffmpeg();
    let mut all: Vec<std::ffi::OsString> = vec!["-hide_banner".into()];
    all.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
    run("ffprobe", all)
}

/// `ffprobe -of json ...` parsed; panics on failure or bad JSON.
pub fn ffprobe_json<I, S>(args: I) -> serde_json::Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut all: Vec<std::ffi::OsString> = vec!["-of".into(), "json".into()];
    all.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
    let out = ffprobe(all).expect_success();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ffprobe printed invalid JSON ({e}): {}", out.cmdline))
}

/// The first stream of `codec_type` `kind` (`video`, `audio`) in
/// ffprobe's JSON (`-show_streams`).
pub fn probe_stream<'a>(probe: &'a serde_json::Value, kind: &str) -> Option<&'a serde_json::Value> {
    probe["streams"]
        .as_array()?
        .iter()
        .find(|s| s["codec_type"] == kind)
}

/// A number in ffprobe's JSON, printed as a number or a string
/// (`"20.000000"`, `"500"`); panics on anything else.
pub fn probe_num(v: &serde_json::Value) -> f64 {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a number in ffprobe's output: {v}"))
}

/// Probes `file` (formats and streams, frames counted) and decodes it
/// completely; both must succeed without a single warning. Returns the
/// probe's JSON.
pub fn probe_clean(file: &str) -> serde_json::Value {
    let probe = ffprobe([
        "-v",
        "warning",
        "-count_frames",
        "-show_format",
        "-show_streams",
        "-of",
        "json",
        file,
    ])
    .expect_success();
    assert!(
        probe.stderr.trim().is_empty(),
        "ffprobe {file}: {}",
        probe.stderr
    );
    let decode = ffmpeg(["-v", "warning", "-i", file, "-f", "null", "-"]).expect_success();
    assert!(
        decode.stderr.trim().is_empty(),
        "decoding {file}: {}",
        decode.stderr
    );
    serde_json::from_slice(&probe.stdout).expect("ffprobe JSON")
}

/// Lossy `Path` to `&str` for argument lists.
pub fn p(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
