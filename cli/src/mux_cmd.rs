//! `ivcs mux`: feeds media files through the engine's pipeline at full speed
//! and writes the segments exactly as they would be uploaded, plus
//! `index.json` describing them. By default the engine runs as the wasm
//! component inside wasmtime; `--native` runs the same code compiled natively.

use crate::engine_file;
use crate::input::{self, AudioFile, Pack};
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use ivcs_engine::pipeline::{Output, Pipeline, PipelineConfig, SegmentInfo};
use ivcs_engine::types::{AudioCodec, AudioFormat, AvFormat, Container, Frame};
use ivcs_host::bindings::exports::ivcs::engine::mux as wmux;
use ivcs_host::bindings::ivcs::engine::types as w;
use ivcs_host::mux::ComponentMuxer;
use ivcs_media::VideoCodec;
use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Audio formats accepted by `--audio-format`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum AudioArg {
    /// ADTS AAC-LC, passed through.
    Aac,
    /// G.711 A-law, encoded to AAC-LC.
    G711a,
    /// G.711 µ-law, encoded to AAC-LC.
    G711u,
    /// 16-bit little-endian PCM, encoded to AAC-LC.
    Pcm16,
}

/// Containers accepted by `--format`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    /// MPEG-TS.
    Ts,
    /// Fragmented MP4.
    Fmp4,
}

/// Arguments of `ivcs mux`.
#[derive(Args, Debug)]
pub struct MuxArgs {
    /// Annex-B video (.h264 / .h265; the codec is detected from the content).
    #[arg(long)]
    video: PathBuf,
    /// Audio file to interleave.
    #[arg(long, requires = "audio_format")]
    audio: Option<PathBuf>,
    /// Format of the audio file.
    #[arg(long)]
    audio_format: Option<AudioArg>,
    /// Audio sampling rate in Hz (default 8000 for G.711, else 48000; AAC
    /// must match its ADTS headers).
    #[arg(long)]
    sample_rate: Option<u32>,
    /// Audio channels (1 or 2).
    #[arg(long, default_value_t = 1)]
    channels: u8,
    /// Segment container.
    #[arg(long)]
    format: FormatArg,
    /// Target segment duration; segments are cut at the first IDR after it.
    #[arg(long, default_value_t = 10)]
    segment_seconds: u32,
    /// Video frame rate, which sets the PTS of each access unit.
    #[arg(long, default_value_t = 25)]
    fps: u32,
    /// UTC of the first frame in ms since 1970 (default: now).
    #[arg(long)]
    start_utc_ms: Option<u64>,
    /// Largest accepted frame in bytes (the channel's buffer budget).
    #[arg(long, default_value_t = 4 << 20)]
    max_frame_bytes: u32,
    /// Run the natively compiled engine instead of the wasm component.
    #[arg(long)]
    native: bool,
    /// Engine component to use (default: next to this binary).
    #[arg(long)]
    engine: Option<PathBuf>,
    /// Output directory (created if missing).
    #[arg(long)]
    out: PathBuf,
}

/// `index.json`: what was written, one entry per segment.
#[derive(Serialize)]
struct Index {
    format_version: u32,
    codec: String,
    container: &'static str,
    segment_ms: u32,
    refused_frames: u64,
    segments: Vec<IndexEntry>,
}

#[derive(Serialize)]
struct IndexEntry {
    file: String,
    index: u32,
    utc_start_ms: u64,
    utc_end_ms: u64,
    pts_start_ms: u64,
    pts_end_ms: u64,
    seq_start: u32,
    seq_end: u32,
    bytes: u64,
    init_bytes: u32,
    codec: String,
    video_frames: u32,
    audio_frames: u32,
}

/// An engine refusal: `IV_ERR_*` code and message.
struct Refusal {
    code: i32,
    message: String,
}

impl From<ivcs_engine::Error> for Refusal {
    fn from(e: ivcs_engine::Error) -> Self {
        Refusal {
            code: e.code(),
            message: e.message().to_string(),
        }
    }
}

/// The two ways of running the engine, behind one face.
trait Backend {
    fn push(&mut self, p: &Pack<'_>) -> Result<Result<Vec<Output>, Refusal>>;
    fn finish(&mut self) -> Result<Result<Vec<Output>, Refusal>>;
}

struct Native(Pipeline);

impl Backend for Native {
    fn push(&mut self, p: &Pack<'_>) -> Result<Result<Vec<Output>, Refusal>> {
        let f = Frame {
            kind: p.kind,
            frame_type: p.frame_type,
            pts_ms: p.pts_ms,
            seq: p.seq,
            data: p.data,
        };
        Ok(self
            .0
            .push(&f)
            .map(|()| self.0.take_output())
            .map_err(Refusal::from))
    }

    fn finish(&mut self) -> Result<Result<Vec<Output>, Refusal>> {
        Ok(self
            .0
            .finish()
            .map(|()| self.0.take_output())
            .map_err(Refusal::from))
    }
}

struct Component {
    muxer: ComponentMuxer,
    frame: w::Frame,
}

fn from_wit_segment(s: wmux::SegmentInfo) -> SegmentInfo {
    SegmentInfo {
        index: s.index,
        // The mux interface does not carry it; `index.json` has no use for
        // it (uploads set it from the engine's own pipeline).
        discontinuity: s.index == 0,
        codec_string: s.codec_string,
        container: match s.container {
            w::Container::Ts => Container::Ts,
            w::Container::Fmp4 => Container::Fmp4,
        },
        utc_start_ms: s.utc_start_ms,
        utc_end_ms: s.utc_end_ms,
        pts_start_ms: s.pts_start_ms,
        pts_end_ms: s.pts_end_ms,
        seq_start: s.seq_start,
        seq_end: s.seq_end,
        last_video_pts_ms: s.last_video_pts_ms,
        bytes: s.bytes,
        init_bytes: s.init_bytes,
        video_frames: s.video_frames,
        audio_frames: s.audio_frames,
    }
}

fn from_wit(r: Result<Vec<wmux::MuxOutput>, w::EngineError>) -> Result<Vec<Output>, Refusal> {
    match r {
        Ok(out) => Ok(out
            .into_iter()
            .map(|o| match o {
                wmux::MuxOutput::SegmentStart(s) => Output::SegmentStart(from_wit_segment(s)),
                wmux::MuxOutput::Data(d) => Output::Data(d),
                wmux::MuxOutput::SegmentEnd(s) => Output::SegmentEnd(from_wit_segment(s)),
            })
            .collect()),
        Err(e) => Err(Refusal {
            code: e.code,
            message: e.message,
        }),
    }
}

impl Backend for Component {
    fn push(&mut self, p: &Pack<'_>) -> Result<Result<Vec<Output>, Refusal>> {
        // One frame buffer reused for every push: large per-frame
        // allocations would each cost fresh pages.
        let f = &mut self.frame;
        f.kind = match p.kind {
            ivcs_engine::types::StreamKind::Audio => w::StreamKind::Audio,
            ivcs_engine::types::StreamKind::Video => w::StreamKind::Video,
        };
        f.frame_type = match p.frame_type {
            ivcs_engine::types::FrameType::I => w::FrameType::I,
            ivcs_engine::types::FrameType::P => w::FrameType::P,
        };
        f.pts_ms = p.pts_ms;
        f.seq = p.seq;
        f.data.clear();
        f.data.extend_from_slice(p.data);
        Ok(from_wit(self.muxer.push(f)?))
    }

    fn finish(&mut self) -> Result<Result<Vec<Output>, Refusal>> {
        Ok(from_wit(self.muxer.finish()?))
    }
}

fn wit_mux_config(cfg: &PipelineConfig) -> wmux::MuxConfig {
    let av = &cfg.av;
    wmux::MuxConfig {
        av: w::AvFormat {
            video: match av.video {
                VideoCodec::H264 => w::VideoCodec::H264,
                VideoCodec::H265 => w::VideoCodec::H265,
            },
            width: av.width,
            height: av.height,
            framerate: av.framerate,
            audio: av.audio.map(|a| w::AudioFormat {
                codec: match a.codec {
                    AudioCodec::Pcm16 => w::AudioCodec::Pcm16,
                    AudioCodec::G711a => w::AudioCodec::G711a,
                    AudioCodec::G711u => w::AudioCodec::G711u,
                    AudioCodec::Aac => w::AudioCodec::Aac,
                },
                sample_rate: a.sample_rate,
                channels: a.channels,
                samples_per_frame: a.samples_per_frame,
            }),
        },
        container: match cfg.container {
            Container::Ts => w::Container::Ts,
            Container::Fmp4 => w::Container::Fmp4,
        },
        segment_ms: cfg.segment_ms,
        start_utc_ms: cfg.start_utc_ms,
        max_frame_bytes: cfg.max_frame_bytes,
    }
}

/// Memory cap of the engine instance: room for a few frames at the budget
/// plus the engine's own working set.
fn memory_limit(max_frame_bytes: u32) -> usize {
    (max_frame_bytes as usize)
        .saturating_mul(4)
        .saturating_add(32 << 20)
}

/// Writes segments to files as output arrives.
struct SegmentFiles {
    dir: PathBuf,
    ext: &'static str,
    current: Option<(String, BufWriter<File>)>,
    done: Vec<IndexEntry>,
}

impl SegmentFiles {
    fn apply(&mut self, out: Vec<Output>) -> Result<()> {
        for o in out {
            match o {
                Output::SegmentStart(s) => {
                    let name = format!("seg-{:05}.{}", s.index, self.ext);
                    let path = self.dir.join(&name);
                    let f = File::create(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    self.current = Some((name, BufWriter::new(f)));
                }
                Output::Data(d) => {
                    let Some((name, f)) = &mut self.current else {
                        bail!("engine produced data outside a segment");
                    };
                    f.write_all(&d).with_context(|| format!("writing {name}"))?;
                }
                Output::SegmentEnd(s) => {
                    let Some((name, mut f)) = self.current.take() else {
                        bail!("engine ended a segment it never started");
                    };
                    f.flush().with_context(|| format!("writing {name}"))?;
                    self.done.push(IndexEntry {
                        file: name,
                        index: s.index,
                        utc_start_ms: s.utc_start_ms,
                        utc_end_ms: s.utc_end_ms,
                        pts_start_ms: s.pts_start_ms,
                        pts_end_ms: s.pts_end_ms,
                        seq_start: s.seq_start,
                        seq_end: s.seq_end,
                        bytes: s.bytes,
                        init_bytes: s.init_bytes,
                        codec: s.codec_string,
                        video_frames: s.video_frames,
                        audio_frames: s.audio_frames,
                    });
                }
            }
        }
        Ok(())
    }
}

fn audio_file(args: &MuxArgs, path: &Path) -> Result<AudioFile> {
    let Some(fmt) = args.audio_format else {
        bail!("--audio needs --audio-format");
    };
    let codec = match fmt {
        AudioArg::Aac => AudioCodec::Aac,
        AudioArg::G711a => AudioCodec::G711a,
        AudioArg::G711u => AudioCodec::G711u,
        AudioArg::Pcm16 => AudioCodec::Pcm16,
    };
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (sample_rate, channels) = match codec {
        // ADTS headers carry the truth; flags must agree with them if given.
        AudioCodec::Aac => {
            let h = ivcs_media::adts::parse_header(&data)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            (args.sample_rate.unwrap_or(h.sample_rate), h.channels)
        }
        AudioCodec::G711a | AudioCodec::G711u => (args.sample_rate.unwrap_or(8000), args.channels),
        AudioCodec::Pcm16 => (args.sample_rate.unwrap_or(48000), args.channels),
    };
    Ok(AudioFile {
        data,
        codec,
        sample_rate,
        channels,
    })
}

/// Pushes every pack and finishes the stream, sending output to the writer;
/// returns the number of refused frames.
fn feed(
    backend: &mut dyn Backend,
    packs: &[Pack<'_>],
    tx: &std::sync::mpsc::SyncSender<Vec<Output>>,
) -> Result<u64> {
    let send = |out: Vec<Output>| {
        tx.send(out)
            .map_err(|_| anyhow::anyhow!("the segment writer stopped"))
    };
    let mut refused = 0u64;
    for p in packs {
        match backend.push(p)? {
            Ok(out) => send(out)?,
            Err(r) => {
                refused += 1;
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("ivcs mux: frame refused ({}): {}", r.code, r.message);
                }
            }
        }
    }
    match backend.finish()? {
        Ok(out) => send(out)?,
        Err(r) => bail!("finishing the stream failed ({}): {}", r.code, r.message),
    }
    Ok(refused)
}

/// Runs `ivcs mux`.
pub fn run(args: &MuxArgs) -> Result<()> {
    if args.fps == 0 || args.fps > 240 {
        bail!("--fps must be 1..=240");
    }
    let video =
        std::fs::read(&args.video).with_context(|| format!("reading {}", args.video.display()))?;
    let (codec, vpacks) = input::video_packs(&video, args.fps)?;
    let video_end_ms = vpacks.len() as u64 * 1000 / u64::from(args.fps);
    let audio = args
        .audio
        .as_deref()
        .map(|p| audio_file(args, p))
        .transpose()?;
    let apacks = match &audio {
        Some(a) => input::audio_packs(a)?,
        None => Vec::new(),
    };
    let packs = input::interleave(vpacks, apacks, video_end_ms);

    let start_utc_ms = args.start_utc_ms.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    });
    let container = match args.format {
        FormatArg::Ts => Container::Ts,
        FormatArg::Fmp4 => Container::Fmp4,
    };
    let cfg = PipelineConfig {
        av: AvFormat {
            video: codec,
            width: 0,
            height: 0,
            framerate: args.fps,
            audio: audio.as_ref().map(|a| AudioFormat {
                codec: a.codec,
                sample_rate: a.sample_rate,
                channels: a.channels,
                samples_per_frame: 1024 * u32::from(a.channels),
            }),
        },
        container,
        segment_ms: args.segment_seconds.saturating_mul(1000),
        start_utc_ms,
        max_frame_bytes: args.max_frame_bytes,
    };

    let mut backend: Box<dyn Backend> = if args.native {
        Box::new(Native(
            Pipeline::new(cfg.clone()).map_err(|e| anyhow::anyhow!("{e}"))?,
        ))
    } else {
        let rt = engine_file::load(&engine_file::locate(args.engine.as_deref())?)?;
        match ComponentMuxer::new(
            &rt,
            &wit_mux_config(&cfg),
            memory_limit(cfg.max_frame_bytes),
        )? {
            Ok(muxer) => Box::new(Component {
                muxer,
                frame: w::Frame {
                    kind: w::StreamKind::Video,
                    frame_type: w::FrameType::I,
                    pts_ms: 0,
                    seq: 0,
                    data: Vec::new(),
                },
            }),
            Err(e) => bail!("engine refused the configuration: {} {}", e.code, e.message),
        }
    };

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let files = SegmentFiles {
        dir: args.out.clone(),
        ext: match container {
            Container::Ts => "ts",
            Container::Fmp4 => "mp4",
        },
        current: None,
        done: Vec::new(),
    };
    // Files are written on their own thread so that write syscalls overlap
    // with muxing; the bounded queue keeps memory flat if the disk is slow.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Output>>(64);
    let writer = std::thread::spawn(move || -> Result<SegmentFiles> {
        let mut files = files;
        for out in rx {
            files.apply(out)?;
        }
        Ok(files)
    });
    let fed = feed(backend.as_mut(), &packs, &tx);
    drop(tx);
    let written = writer
        .join()
        .map_err(|_| anyhow::anyhow!("the segment writer thread panicked"))?;
    // A write error ends the writer early, which the feeder sees as a closed
    // queue; report the write error, it is the cause.
    let mut files = written?;
    let refused = fed?;

    let index = Index {
        format_version: ivcs_engine::FORMAT_VERSION,
        codec: files
            .done
            .first()
            .map(|s| s.codec.clone())
            .unwrap_or_default(),
        container: match container {
            Container::Ts => "ts",
            Container::Fmp4 => "fmp4",
        },
        segment_ms: cfg.segment_ms,
        refused_frames: refused,
        segments: std::mem::take(&mut files.done),
    };
    let path = args.out.join("index.json");
    let json = serde_json::to_vec_pretty(&index)?;
    std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
