//! The generated test inputs: what each fixture is (mirrors
//! `scripts/gen-fixtures.sh` and `testdata/README.md`) and [`dir`], which
//! runs the generator once per process under a file lock so parallel test
//! binaries never race on it.

use crate::VideoCodec;
use crate::paths::workspace_root;
use crate::tools;
use std::path::PathBuf;
use std::sync::OnceLock;

/// An Annex-B video fixture (testsrc2, no B-frames unless `bframes`).
#[derive(Debug)]
pub struct VideoFixture {
    /// File name inside the fixture directory.
    pub file: &'static str,
    /// Codec (Main profile, 8-bit 4:2:0).
    pub codec: VideoCodec,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frame rate it was encoded at (pass as `--fps`).
    pub fps: u32,
    /// Exact GOP length in frames: every `gop_frames`-th frame is an IDR.
    pub gop_frames: u32,
    /// Number of access units.
    pub frames: u32,
    /// Whether the stream has B-frames (negative tests only).
    pub bframes: bool,
}

impl VideoFixture {
    /// Full path, generating the fixtures first if needed.
    pub fn path(&self) -> PathBuf {
        dir().join(self.file)
    }

    /// Duration in ms as `ivcs mux` computes it: frames * 1000 / fps.
    pub fn duration_ms(&self) -> u64 {
        u64::from(self.frames) * 1000 / u64::from(self.fps)
    }

    /// GOP duration in ms.
    pub fn gop_ms(&self) -> u64 {
        u64::from(self.gop_frames) * 1000 / u64::from(self.fps)
    }

    /// ffmpeg input arguments reading this file (`-framerate N -i PATH`).
    pub fn ffmpeg_input(&self) -> Vec<String> {
        vec![
            "-f".into(),
            self.codec.ffmpeg_format().into(),
            "-framerate".into(),
            self.fps.to_string(),
            "-i".into(),
            tools::p(&self.path()),
        ]
    }
}

/// How an audio fixture is stored (the `--audio-format` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioFormat {
    /// ADTS AAC-LC: passed through by ivcs.
    Aac,
    /// Raw G.711 A-law: encoded to AAC-LC by ivcs.
    G711a,
    /// Raw G.711 µ-law: encoded to AAC-LC by ivcs.
    G711u,
    /// Raw signed 16-bit little-endian PCM, interleaved: encoded to AAC-LC.
    Pcm16,
}

impl AudioFormat {
    /// The `--audio-format` value.
    pub fn arg(self) -> &'static str {
        match self {
            AudioFormat::Aac => "aac",
            AudioFormat::G711a => "g711a",
            AudioFormat::G711u => "g711u",
            AudioFormat::Pcm16 => "pcm16",
        }
    }
}

/// An audio fixture: deterministic tones, one frequency per channel.
#[derive(Debug)]
pub struct AudioFixture {
    /// File name inside the fixture directory.
    pub file: &'static str,
    /// Storage format.
    pub format: AudioFormat,
    /// Sampling rate in Hz.
    pub sample_rate: u32,
    /// 1 or 2.
    pub channels: u32,
    /// Duration in seconds (all are 60 s, as long as the longest video).
    pub seconds: u32,
    /// Tone frequency of each channel in Hz.
    pub tones: &'static [f64],
}

impl AudioFixture {
    /// Full path, generating the fixtures first if needed.
    pub fn path(&self) -> PathBuf {
        dir().join(self.file)
    }

    /// Whether ivcs passes the audio through unchanged (AAC) rather than
    /// encoding it.
    pub fn passthrough(&self) -> bool {
        self.format == AudioFormat::Aac
    }

    /// Duration in ms.
    pub fn duration_ms(&self) -> u64 {
        u64::from(self.seconds) * 1000
    }

    /// `ivcs mux` arguments: `--audio PATH --audio-format F` plus, for raw
    /// formats, `--sample-rate` and `--channels`.
    pub fn cli_args(&self) -> Vec<String> {
        let mut a = vec![
            "--audio".into(),
            tools::p(&self.path()),
            "--audio-format".into(),
            self.format.arg().into(),
        ];
        if !self.passthrough() {
            a.extend([
                "--sample-rate".into(),
                self.sample_rate.to_string(),
                "--channels".into(),
                self.channels.to_string(),
            ]);
        }
        a
    }

    /// ffmpeg input arguments reading this file.
    pub fn ffmpeg_input(&self) -> Vec<String> {
        let fmt = match self.format {
            AudioFormat::Aac => "aac",
            AudioFormat::G711a => "alaw",
            AudioFormat::G711u => "mulaw",
            AudioFormat::Pcm16 => "s16le",
        };
        let mut a = vec!["-f".into(), fmt.into()];
        if !self.passthrough() {
            a.extend([
                "-ar".into(),
                self.sample_rate.to_string(),
                "-ac".into(),
                self.channels.to_string(),
            ]);
        }
        a.extend(["-i".into(), tools::p(&self.path())]);
        a
    }
}

macro_rules! video {
    ($name:ident, $file:literal, $codec:ident, $w:literal x $h:literal, $fps:literal fps, gop $gop:literal, $frames:literal frames, bframes $b:literal) => {
        #[doc = concat!("`", $file, "`")]
        pub static $name: VideoFixture = VideoFixture {
            file: $file,
            codec: VideoCodec::$codec,
            width: $w,
            height: $h,
            fps: $fps,
            gop_frames: $gop,
            frames: $frames,
            bframes: $b,
        };
    };
}

video!(H264_360P_GOP2_24S, "h264_main_640x360_25fps_gop2s_24s.h264", H264, 640 x 360, 25 fps, gop 50, 600 frames, bframes false);
video!(H264_720P_GOP1_12S, "h264_main_1280x720_25fps_gop1s_12s.h264", H264, 1280 x 720, 25 fps, gop 25, 300 frames, bframes false);
video!(H264_240P_GOP4_24S, "h264_main_320x240_25fps_gop4s_24s.h264", H264, 320 x 240, 25 fps, gop 100, 600 frames, bframes false);
video!(H264_360P30_GOP1_12S, "h264_main_640x360_30fps_gop1s_12s.h264", H264, 640 x 360, 30 fps, gop 30, 360 frames, bframes false);
video!(H264_360P_GOP2_60S, "h264_main_640x360_25fps_gop2s_60s.h264", H264, 640 x 360, 25 fps, gop 50, 1500 frames, bframes false);
video!(H265_360P_GOP2_24S, "h265_main_640x360_25fps_gop2s_24s.h265", H265, 640 x 360, 25 fps, gop 50, 600 frames, bframes false);
video!(H265_720P_GOP1_12S, "h265_main_1280x720_25fps_gop1s_12s.h265", H265, 1280 x 720, 25 fps, gop 25, 300 frames, bframes false);
video!(H265_240P_GOP4_24S, "h265_main_320x240_25fps_gop4s_24s.h265", H265, 320 x 240, 25 fps, gop 100, 600 frames, bframes false);
video!(H265_360P_GOP2_60S, "h265_main_640x360_25fps_gop2s_60s.h265", H265, 640 x 360, 25 fps, gop 50, 1500 frames, bframes false);
video!(H264_BFRAMES_10S, "h264_main_bframes_640x360_25fps_gop2s_10s.h264", H264, 640 x 360, 25 fps, gop 50, 250 frames, bframes true);
// Stream habits of real cameras (`STREAM_HABITS` says what each models).
video!(H264_AUD_SEI_12S, "h264_aud_sei_640x360_25fps_gop2s_12s.h264", H264, 640 x 360, 25 fps, gop 50, 300 frames, bframes false);
video!(H264_4SLICES_12S, "h264_4slices_640x360_25fps_gop2s_12s.h264", H264, 640 x 360, 25 fps, gop 50, 300 frames, bframes false);
video!(H265_4SLICES_12S, "h265_4slices_640x360_25fps_gop2s_12s.h265", H265, 640 x 360, 25 fps, gop 50, 300 frames, bframes false);
// Width and height are the first half's; `STREAM_HABITS` has the second.
video!(H264_RES_CHANGE_12S, "h264_res_change_360p_to_720p_25fps_gop1s_12s.h264", H264, 640 x 360, 25 fps, gop 25, 300 frames, bframes false);

/// `aac_lc_48000_mono_60s.aac`: ADTS AAC-LC, 48 kHz mono, 440 Hz.
pub static AAC_48K_MONO: AudioFixture = AudioFixture {
    file: "aac_lc_48000_mono_60s.aac",
    format: AudioFormat::Aac,
    sample_rate: 48000,
    channels: 1,
    seconds: 60,
    tones: &[440.0],
};
/// `aac_lc_44100_stereo_60s.aac`: ADTS AAC-LC, 44.1 kHz stereo, 500/700 Hz.
pub static AAC_44K_STEREO: AudioFixture = AudioFixture {
    file: "aac_lc_44100_stereo_60s.aac",
    format: AudioFormat::Aac,
    sample_rate: 44100,
    channels: 2,
    seconds: 60,
    tones: &[500.0, 700.0],
};
/// `g711a_8000_mono_60s.alaw`: G.711 A-law, 8 kHz mono, 600 Hz.
pub static G711A_8K: AudioFixture = AudioFixture {
    file: "g711a_8000_mono_60s.alaw",
    format: AudioFormat::G711a,
    sample_rate: 8000,
    channels: 1,
    seconds: 60,
    tones: &[600.0],
};
/// `g711u_8000_mono_60s.ulaw`: G.711 µ-law, 8 kHz mono, 800 Hz.
pub static G711U_8K: AudioFixture = AudioFixture {
    file: "g711u_8000_mono_60s.ulaw",
    format: AudioFormat::G711u,
    sample_rate: 8000,
    channels: 1,
    seconds: 60,
    tones: &[800.0],
};
/// `pcm16_16000_mono_60s.s16le`: PCM s16le, 16 kHz mono, 1 kHz.
pub static PCM16_16K_MONO: AudioFixture = AudioFixture {
    file: "pcm16_16000_mono_60s.s16le",
    format: AudioFormat::Pcm16,
    sample_rate: 16000,
    channels: 1,
    seconds: 60,
    tones: &[1000.0],
};
/// `pcm16_8000_mono_60s.s16le`: PCM s16le, 8 kHz mono, 300 Hz.
pub static PCM16_8K_MONO: AudioFixture = AudioFixture {
    file: "pcm16_8000_mono_60s.s16le",
    format: AudioFormat::Pcm16,
    sample_rate: 8000,
    channels: 1,
    seconds: 60,
    tones: &[300.0],
};
/// `pcm16_48000_stereo_60s.s16le`: PCM s16le, 48 kHz stereo, 500/700 Hz.
pub static PCM16_48K_STEREO: AudioFixture = AudioFixture {
    file: "pcm16_48000_stereo_60s.s16le",
    format: AudioFormat::Pcm16,
    sample_rate: 48000,
    channels: 2,
    seconds: 60,
    tones: &[500.0, 700.0],
};

/// The fixture directory, with every fixture generated: `IVCS_TESTDATA` if
/// set, else `<workspace>/testdata/gen` (what `make fixtures` fills). Runs
/// `scripts/gen-fixtures.sh` once per process, holding an exclusive lock on
/// `DIR/.lock` so that concurrent test processes wait for one another; the
/// script itself skips files that exist, so later calls are instant.
pub fn dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        tools::require_ffmpeg();
        let dir = match std::env::var_os("IVCS_TESTDATA") {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => workspace_root().join("testdata").join("gen"),
        };
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let lock_path = dir.join(".lock");
        let lock = std::fs::File::create(&lock_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", lock_path.display()));
        lock.lock()
            .unwrap_or_else(|e| panic!("cannot lock {}: {e}", lock_path.display()));
        let script = workspace_root().join("scripts").join("gen-fixtures.sh");
        tools::run("bash", [tools::p(&script), tools::p(&dir)]).expect_success();
        drop(lock);
        dir
    })
    .clone()
}

/// What a stream-habit fixture does that the plain fixtures do not, as its
/// NAL units show it (checked by the fixtures' self-test).
#[derive(Debug)]
pub enum Habit {
    /// Every access unit starts with an AUD (type 9) and carries SEI (type 6).
    AudSei,
    /// Every picture is coded as this many slices.
    Slices(usize),
    /// From frame `at` (an IDR with new SPS/PPS) the pictures are
    /// `width` x `height`.
    ResolutionChange {
        /// First frame at the new size.
        at: u32,
        /// New width.
        width: u32,
        /// New height.
        height: u32,
    },
}

/// A video fixture modelling one habit of real camera streams.
#[derive(Debug)]
pub struct HabitFixture {
    /// The stream (also in [`ALL_VIDEO`]).
    pub video: &'static VideoFixture,
    /// What it models.
    pub habit: Habit,
}

/// AUD + SEI in every access unit.
pub static AUD_SEI: HabitFixture = HabitFixture {
    video: &H264_AUD_SEI_12S,
    habit: Habit::AudSei,
};
/// H.264, four slices per picture.
pub static H264_4SLICES: HabitFixture = HabitFixture {
    video: &H264_4SLICES_12S,
    habit: Habit::Slices(4),
};
/// H.265, four slices per picture.
pub static H265_4SLICES: HabitFixture = HabitFixture {
    video: &H265_4SLICES_12S,
    habit: Habit::Slices(4),
};
/// 640x360 for 6 s, then 1280x720 for 6 s.
pub static RES_CHANGE: HabitFixture = HabitFixture {
    video: &H264_RES_CHANGE_12S,
    habit: Habit::ResolutionChange {
        at: 150,
        width: 1280,
        height: 720,
    },
};

/// Every stream-habit fixture.
pub static STREAM_HABITS: [&HabitFixture; 4] =
    [&AUD_SEI, &H264_4SLICES, &H265_4SLICES, &RES_CHANGE];

/// Every video fixture of the catalogue.
pub static ALL_VIDEO: [&VideoFixture; 14] = [
    &H264_360P_GOP2_24S,
    &H264_720P_GOP1_12S,
    &H264_240P_GOP4_24S,
    &H264_360P30_GOP1_12S,
    &H264_360P_GOP2_60S,
    &H265_360P_GOP2_24S,
    &H265_720P_GOP1_12S,
    &H265_240P_GOP4_24S,
    &H265_360P_GOP2_60S,
    &H264_BFRAMES_10S,
    &H264_AUD_SEI_12S,
    &H264_4SLICES_12S,
    &H265_4SLICES_12S,
    &H264_RES_CHANGE_12S,
];

/// Every audio fixture of the catalogue.
pub static ALL_AUDIO: [&AudioFixture; 7] = [
    &AAC_48K_MONO,
    &AAC_44K_STEREO,
    &G711A_8K,
    &G711U_8K,
    &PCM16_16K_MONO,
    &PCM16_8K_MONO,
    &PCM16_48K_STEREO,
];

/// The catalogue entry of a video file, by file name.
pub fn video_by_file(name: &str) -> Option<&'static VideoFixture> {
    ALL_VIDEO.iter().copied().find(|v| v.file == name)
}

/// The catalogue entry of an audio file, by file name.
pub fn audio_by_file(name: &str) -> Option<&'static AudioFixture> {
    ALL_AUDIO.iter().copied().find(|a| a.file == name)
}
