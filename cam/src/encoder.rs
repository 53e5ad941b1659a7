//! ffmpeg as the camera's encoder: raw I420 frames in on stdin, an Annex-B
//! elementary stream out on stdout, split into access units with the
//! media crate's splitter. One AUD per access unit and parameter sets
//! before every key frame (`repeat-headers`), as camera encoders emit
//! them, so every segment the engine cuts starts decodable. No B frames:
//! the iv_cs API has I and P frames only.
//!
//! The same splitter reads `--input` files ([`AccessUnitReader`] over any
//! reader). Also the snapshot encoder: a pattern frame, or the last
//! picture of a run of `--input` access units, in; one JPEG out.

use crate::args::Codec;
use crate::pattern::Frame;
use anyhow::{Context, Result, bail};
use ivcs_media::VideoCodec;
use ivcs_media::annexb;
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// Encoder settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Picture size.
    pub w: usize,
    /// Picture height.
    pub h: usize,
    /// Frames per second.
    pub fps: u32,
    /// Key frame interval, frames.
    pub gop: u32,
    /// kbit/s.
    pub bitrate: u32,
    /// Codec.
    pub codec: Codec,
    /// x264/x265 preset.
    pub preset: String,
}

/// The media crate's codec for ours.
pub fn media_codec(c: Codec) -> VideoCodec {
    match c {
        Codec::H264 => VideoCodec::H264,
        Codec::H265 => VideoCodec::H265,
    }
}

/// Checks that ffmpeg runs and has every encoder in `needed` (ffmpeg's
/// names, e.g. `libx264`, `aac`), so a missing tool is a clear error before
/// the camera starts.
pub fn check_ffmpeg(needed: &[&str]) -> Result<()> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-encoders"])
        .stdin(Stdio::null())
        .output()
        .context(
            "cannot run ffmpeg (the camera's encoder): install it, e.g. `apt-get install ffmpeg`",
        )?;
    // Lines are ` V....D libx264   description`: the name is the second
    // word (a substring test would take `libfdk_aac` for `aac`).
    let list = String::from_utf8_lossy(&out.stdout);
    let have: Vec<&str> = list
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    for enc in needed {
        if !have.contains(enc) {
            bail!("this ffmpeg has no {enc} encoder (needed by ivcs cam)");
        }
    }
    Ok(())
}

/// ffmpeg's encoder for `c`.
pub fn encoder_name(c: Codec) -> &'static str {
    match c {
        Codec::H264 => "libx264",
        Codec::H265 => "libx265",
    }
}

/// A running encoder process.
pub struct Encoder {
    child: Child,
}

impl Encoder {
    /// Starts ffmpeg; returns it with its stdin (raw frames) and stdout
    /// (Annex-B).
    pub fn start(s: &Settings) -> Result<(Encoder, ChildStdin, AccessUnitReader<ChildStdout>)> {
        let size = format!("{}x{}", s.w, s.h);
        let rate = format!("{}k", s.bitrate);
        let buf = format!("{}k", s.bitrate * 2);
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin"])
            .args([
                "-f",
                "rawvideo",
                "-pix_fmt",
                "yuv420p",
                "-video_size",
                &size,
            ])
            .args(["-framerate", &s.fps.to_string(), "-i", "pipe:0", "-an"])
            .args(["-c:v", encoder_name(s.codec), "-preset", &s.preset])
            .args(["-tune", "zerolatency", "-g", &s.gop.to_string()])
            .args(["-keyint_min", &s.gop.to_string(), "-sc_threshold", "0"])
            .args([
                "-bf", "0", "-b:v", &rate, "-maxrate", &rate, "-bufsize", &buf,
            ]);
        match s.codec {
            Codec::H264 => {
                cmd.args([
                    "-profile:v",
                    "main",
                    "-x264-params",
                    "repeat-headers=1:aud=1",
                ])
                .args(["-flush_packets", "1", "-f", "h264", "pipe:1"]);
            }
            Codec::H265 => {
                let p = format!(
                    "repeat-headers=1:aud=1:keyint={g}:min-keyint={g}:scenecut=0:bframes=0:log-level=error",
                    g = s.gop
                );
                cmd.args(["-x265-params", &p, "-tag:v", "hvc1"]).args([
                    "-flush_packets",
                    "1",
                    "-f",
                    "hevc",
                    "pipe:1",
                ]);
            }
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting ffmpeg (the camera's encoder)")?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            bail!("ffmpeg started without pipes");
        };
        Ok((
            Encoder { child },
            stdin,
            AccessUnitReader::new(stdout, media_codec(s.codec)),
        ))
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // Ours to end: the camera stops or restarts its pipeline.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads access units from an Annex-B byte stream (the encoder's output,
/// or an `--input` file) as they complete.
pub struct AccessUnitReader<R> {
    out: R,
    codec: VideoCodec,
    buf: Vec<u8>,
    eof: bool,
}

impl<R: Read> AccessUnitReader<R> {
    /// A reader of `codec` access units from `out`.
    pub fn new(out: R, codec: VideoCodec) -> Self {
        AccessUnitReader {
            out,
            codec,
            buf: Vec::new(),
            eof: false,
        }
    }

    /// The next whole access unit; `None` at the end of the stream. An
    /// access unit is whole once the next one has begun (or the stream
    /// ended): with an AUD per picture that is one frame of delay.
    pub fn next_au(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            let mut aus = annexb::access_units(&self.buf, self.codec);
            if let Some(first) = aus.next() {
                let complete = aus.next().is_some() || self.eof;
                if complete {
                    let au = first.to_vec();
                    let end = first.as_ptr() as usize - self.buf.as_ptr() as usize + first.len();
                    self.buf.drain(..end);
                    return Ok(Some(au));
                }
            } else if self.eof {
                return Ok(None);
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.out.read(&mut chunk).context("reading the video")?;
            if n == 0 {
                self.eof = true;
            } else {
                self.buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

/// Encodes one frame of the test pattern as a JPEG.
pub fn jpeg(f: &Frame) -> Result<Vec<u8>> {
    let size = format!("{}x{}", f.w, f.h);
    to_jpeg(
        &[
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
            "-video_size",
            &size,
            "-i",
            "pipe:0",
        ],
        f.data.clone(),
    )
}

/// Decodes `aus` (Annex-B access units from a key frame on) and encodes
/// the last picture as a JPEG: the snapshot of an `--input` frame, which
/// needs every frame since the key frame to be decoded.
pub fn jpeg_of_last(codec: VideoCodec, aus: &[Vec<u8>]) -> Result<Vec<u8>> {
    let Some(last) = aus.len().checked_sub(1) else {
        bail!("no frames to take a snapshot of");
    };
    let format = match codec {
        VideoCodec::H264 => "h264",
        VideoCodec::H265 => "hevc",
    };
    // `\,`: a comma inside a filter's arguments, not between filters.
    let select = format!("select=eq(n\\,{last})");
    to_jpeg(
        &["-f", format, "-i", "pipe:0", "-vf", &select],
        aus.concat(),
    )
}

/// Runs ffmpeg on `input` (given by `input_args`) and returns the first
/// picture as a JPEG (mjpeg, full range as JPEG wants).
fn to_jpeg(input_args: &[&str], input: Vec<u8>) -> Result<Vec<u8>> {
    let mut child = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(input_args)
        .args(["-frames:v", "1", "-pix_fmt", "yuvj420p"])
        .args(["-c:v", "mjpeg", "-q:v", "4", "-f", "image2pipe", "pipe:1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting ffmpeg for a snapshot")?;
    let mut stdin = child.stdin.take().context("ffmpeg stdin")?;
    // Written from another thread: ffmpeg may start answering before it
    // has read everything.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().context("snapshot ffmpeg")?;
    let _ = writer.join();
    if !out.status.success() || !out.stdout.starts_with(&[0xFF, 0xD8]) {
        bail!("ffmpeg made no JPEG ({})", out.status);
    }
    Ok(out.stdout)
}
