//! `ivcs cam` options and their checks. A bad value is refused before
//! anything starts, with a message naming the option and the range.

use crate::clip::Clip;
use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// Video codec of the camera's encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Codec {
    /// H.264 (ffmpeg's libx264).
    H264,
    /// H.265 (ffmpeg's libx265). Chromium does not decode it; the cloud
    /// stores it and exports it like H.264.
    H265,
}

/// Audio the camera pushes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Audio {
    /// No audio track.
    None,
    /// G.711 A-law, 8 kHz mono, 1024-sample packs (encoded here).
    G711a,
    /// G.711 µ-law, 8 kHz mono, 1024-sample packs (encoded here).
    G711u,
    /// AAC-LC, 16 kHz mono, one ADTS frame (1024 samples) per pack
    /// (ffmpeg's aac encoder), passed through by the engine.
    Aac,
}

/// Segment container the engine uploads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Container {
    /// MPEG-TS.
    Ts,
    /// Fragmented MP4.
    Fmp4,
}

/// `ivcs cam`: a virtual camera that pushes a live test pattern (or a
/// looped video file) through libivcs, exactly as firmware does.
#[derive(Args, Clone, Debug)]
pub struct CamArgs {
    /// The cloud (e.g. http://127.0.0.1:8080); default: IVCS_CLOUD_URL as
    /// libivcs reads it.
    #[arg(long)]
    pub cloud: Option<String>,
    /// Device id; default: IVCS_DEVICE_ID.
    #[arg(long)]
    pub device: Option<String>,
    /// File holding the device secret (what `ivcs cloud device add`
    /// printed); default: IVCS_DEVICE_SECRET.
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// libivcs.so to load; default: PREFIX/lib/libivcs.so next to this
    /// binary (dist/lib), or libivcs.so beside it.
    #[arg(long)]
    pub lib: Option<PathBuf>,
    /// Video from an Annex-B H.264/H.265 file instead of the test
    /// pattern, looped (from its first key frame with parameter sets) with
    /// timestamps rewritten: frames are paced at --fps and PTS keep rising
    /// across loops. --size, --gop, --bitrate and --preset are ignored
    /// with it (the file is pushed as it is).
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Picture size WIDTHxHEIGHT (even numbers, 160x96 to 3840x2160).
    #[arg(long, default_value = "640x360")]
    pub size: String,
    /// Frames per second (1-60).
    #[arg(long, default_value_t = 25)]
    pub fps: u32,
    /// Key frame interval in frames (1-600); the engine cuts segments at
    /// key frames after ~10 s.
    #[arg(long, default_value_t = 50)]
    pub gop: u32,
    /// Video bit rate in kbit/s (50-50000).
    #[arg(long, default_value_t = 800)]
    pub bitrate: u32,
    /// Video codec [default: h264; with --input, detected from the file,
    /// and this must agree].
    #[arg(long, value_enum)]
    pub codec: Option<Codec>,
    /// x264/x265 preset (speed/quality of the encoder).
    #[arg(long, default_value = "veryfast")]
    pub preset: String,
    /// Audio: a 1 kHz tick in the first 100 ms of every second.
    #[arg(long, value_enum, default_value = "g711a")]
    pub audio: Audio,
    /// Channels (1-5), each with its own encoder and push thread.
    #[arg(long, default_value_t = 1)]
    pub channels: u32,
    /// Segment container.
    #[arg(long, value_enum, default_value = "ts")]
    pub container: Container,
    /// Per-channel buffer (u32MaxGopSize) in KiB, a multiple of 4.
    #[arg(long, default_value_t = 2048)]
    pub buffer_kib: u32,
    /// Start an event every N seconds of camera time (0: no events); each
    /// has a JPEG snapshot of the frame at its start (with --input,
    /// decoded from the file's frames by ffmpeg).
    #[arg(long, default_value_t = 0)]
    pub event_every: u32,
    /// Seconds of camera time from the first frame to the first event.
    #[arg(long, default_value_t = 5)]
    pub event_first: u32,
    /// Length of each event in seconds.
    #[arg(long, default_value_t = 5)]
    pub event_length: u32,
    /// Stop after each channel pushed this many seconds of camera time
    /// (default: until Ctrl-C).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Generate and push frames this many times faster than real time
    /// (0.25-16). Frame times stay consistent: the first frame is pushed at
    /// its capture time and later ones carry PTS = capture offset, which is
    /// all the engine uses, so recordings simply run ahead of the wall
    /// clock. For tests; see docs/guide/quickstart.md.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Status line: `auto` (in place on a terminal, a line every 5 s
    /// otherwise), `lines` or `off`.
    #[arg(long, default_value = "auto")]
    pub status: String,
}

/// The checked options.
#[derive(Clone, Debug)]
pub struct Config {
    /// The options as given.
    pub args: CamArgs,
    /// Width (of the file's pictures with --input).
    pub w: usize,
    /// Height.
    pub h: usize,
    /// The video codec (the file's with --input).
    pub codec: Codec,
    /// The checked --input file.
    pub clip: Option<Clip>,
    /// Device secret read from `--secret-file`.
    pub secret: Option<String>,
}

fn in_range<T: PartialOrd + std::fmt::Display>(name: &str, v: T, lo: T, hi: T) -> Result<()> {
    if v < lo || v > hi {
        bail!("--{name} {v} is out of range ({lo} to {hi})");
    }
    Ok(())
}

/// `--size`: WIDTHxHEIGHT, even, 160x96 to 3840x2160.
fn parse_size(size: &str) -> Result<(usize, usize)> {
    let bad = || anyhow::anyhow!("--size {size:?}: expected WIDTHxHEIGHT, e.g. 640x360");
    let (w, h) = size.split_once(['x', 'X']).ok_or_else(bad)?;
    let (Ok(w), Ok(h)) = (w.parse::<usize>(), h.parse::<usize>()) else {
        return Err(bad());
    };
    if w % 2 != 0 || h % 2 != 0 || !(160..=3840).contains(&w) || !(96..=2160).contains(&h) {
        bail!("--size {w}x{h}: width and height must be even, 160x96 to 3840x2160");
    }
    Ok((w, h))
}

impl CamArgs {
    /// Checks every option.
    pub fn check(self) -> Result<Config> {
        in_range("fps", self.fps, 1, 60)?;
        in_range("gop", self.gop, 1, 600)?;
        in_range("bitrate", self.bitrate, 50, 50_000)?;
        in_range("channels", self.channels, 1, 5)?;
        in_range("speed", self.speed, 0.25, 16.0)?;
        in_range("event-length", self.event_length, 1, 3600)?;
        if self.buffer_kib == 0 || !self.buffer_kib.is_multiple_of(4) || self.buffer_kib > 65_536 {
            bail!(
                "--buffer-kib {}: must be a multiple of 4 from 4 to 65536 (u32MaxGopSize)",
                self.buffer_kib
            );
        }
        if self.event_every != 0 && self.event_every <= self.event_length {
            bail!(
                "--event-every {} must be longer than --event-length {}",
                self.event_every,
                self.event_length
            );
        }
        if let Some(d) = self.duration
            && !(d > 0.0 && d <= 1e7)
        {
            bail!("--duration {d}: must be a positive number of seconds");
        }
        if !["auto", "lines", "off"].contains(&self.status.as_str()) {
            bail!("--status {:?}: expected auto, lines or off", self.status);
        }
        if self.preset.is_empty() || !self.preset.chars().all(|c| c.is_ascii_alphanumeric()) {
            bail!(
                "--preset {:?}: expected an x264/x265 preset name",
                self.preset
            );
        }
        // Last: reading the whole file is the slow check.
        let (w, h, codec, clip) = match &self.input {
            Some(path) => {
                let clip = Clip::open(path, self.codec)?;
                (clip.w, clip.h, clip.codec, Some(clip))
            }
            None => {
                let (w, h) = parse_size(&self.size)?;
                (w, h, self.codec.unwrap_or(Codec::H264), None)
            }
        };
        let secret = match &self.secret_file {
            Some(p) => {
                let s = std::fs::read_to_string(p)
                    .map_err(|e| anyhow::anyhow!("--secret-file {}: {e}", p.display()))?;
                let s = s.trim().to_string();
                if s.is_empty() {
                    bail!("--secret-file {}: the file is empty", p.display());
                }
                Some(s)
            }
            None => None,
        };
        Ok(Config {
            args: self,
            w,
            h,
            codec,
            clip,
            secret,
        })
    }
}
