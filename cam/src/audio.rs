//! The camera's audio: a 1 kHz tick in the first 100 ms of every second,
//! so that the capture time can be heard as well as seen, in packs of 1024
//! samples (one AAC frame; the spec's size for G.711) that follow each
//! other without gaps from the session's first whole second.
//!
//! - G.711 A-law / µ-law at 8 kHz: encoded here, sample by sample; the
//!   engine transcodes it to AAC.
//! - AAC-LC at 16 kHz mono in ADTS, the format the spec recommends: encoded
//!   by a long-running ffmpeg (its native `aac` encoder, not ours, so the
//!   engine's ADTS passthrough sees a foreign bitstream as it would from a
//!   camera's hardware encoder). A feeder thread writes the tick as raw PCM
//!   ahead of time (the pipe's back-pressure bounds how far); the camera
//!   reads one ADTS frame per pack when it is due.
//!
//! Not a general audio encoder: the signal is fixed, the sample rates are
//! the two above.

use crate::args::Audio;
use anyhow::{Context, Result, bail};
use ivcs_media::{adts, g711};
use std::io::{Read, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;

/// Samples per pack (and per AAC frame).
pub const PACK_SAMPLES: u64 = 1024;

/// G.711's rate: the only one the codec has.
const G711_RATE: u32 = 8000;

/// AAC's rate: wideband speech, the usual choice of camera encoders.
const AAC_RATE: u32 = 16_000;

/// ffmpeg's AAC bit rate: plenty for a 1 kHz tone at 16 kHz mono.
const AAC_BITRATE: &str = "32k";

impl Audio {
    /// Sample rate in Hz; `None` without audio. Both rates make a pack a
    /// whole number of milliseconds (128 and 64 ms), so pack PTS are exact.
    pub fn sample_rate(self) -> Option<u32> {
        match self {
            Audio::None => None,
            Audio::G711a | Audio::G711u => Some(G711_RATE),
            Audio::Aac => Some(AAC_RATE),
        }
    }

    /// Milliseconds of one pack; 0 without audio.
    pub fn pack_ms(self) -> u64 {
        self.sample_rate()
            .map_or(0, |r| PACK_SAMPLES * 1000 / u64::from(r))
    }

    /// For messages.
    pub fn describe(self) -> &'static str {
        match self {
            Audio::None => "no audio",
            Audio::G711a => "G.711 A-law 8 kHz",
            Audio::G711u => "G.711 µ-law 8 kHz",
            Audio::Aac => "AAC-LC 16 kHz (ADTS)",
        }
    }
}

/// Sample `n` of the tick at `rate` Hz, counted from a whole second: a
/// 1 kHz sine at a quarter of full scale for the first 100 ms of each
/// second, silence for the rest. Computed from the sample index alone, so
/// the phase is exact at any rate.
pub fn tick(n: u64, rate: u64) -> i16 {
    if n % rate >= rate / 10 {
        return 0;
    }
    let phase = (n * 1000 % rate) as f64 / rate as f64;
    (8000.0 * (phase * std::f64::consts::TAU).sin()) as i16
}

/// Where a session's audio packs come from.
pub enum AudioSource {
    /// G.711, encoded here; `next` is the first sample of the next pack.
    G711 {
        /// A-law or µ-law.
        law: Audio,
        /// Sample index of the next pack's first sample.
        next: u64,
    },
    /// AAC from ffmpeg.
    Aac(AacEncoder),
}

impl AudioSource {
    /// The source for `audio`, starting at sample 0 (the session's first
    /// whole second); `None` without audio.
    pub fn start(audio: Audio) -> Result<Option<AudioSource>> {
        Ok(match audio {
            Audio::None => None,
            Audio::G711a | Audio::G711u => Some(AudioSource::G711 {
                law: audio,
                next: 0,
            }),
            Audio::Aac => Some(AudioSource::Aac(AacEncoder::start()?)),
        })
    }

    /// The next pack: the 1024 samples after the previous pack's.
    pub fn next_pack(&mut self) -> Result<Vec<u8>> {
        match self {
            AudioSource::G711 { law, next } => {
                let first = *next;
                *next += PACK_SAMPLES;
                Ok((first..first + PACK_SAMPLES)
                    .map(|n| {
                        let s = tick(n, u64::from(G711_RATE));
                        match law {
                            Audio::G711u => g711::ulaw_encode(s),
                            _ => g711::alaw_encode(s),
                        }
                    })
                    .collect())
            }
            AudioSource::Aac(enc) => enc.next_frame(),
        }
    }
}

/// ffmpeg encoding the tick to AAC-LC in ADTS, one frame per 1024 samples.
pub struct AacEncoder {
    child: Child,
    out: ChildStdout,
    feeder: Option<JoinHandle<()>>,
}

impl AacEncoder {
    fn start() -> Result<AacEncoder> {
        let rate = AAC_RATE;
        let mut child = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
            .args(["-f", "s16le", "-ar", &rate.to_string(), "-ac", "1"])
            .args(["-i", "pipe:0", "-c:a", "aac", "-b:a", AAC_BITRATE])
            .args(["-flush_packets", "1", "-f", "adts", "pipe:1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting ffmpeg (the camera's AAC encoder)")?;
        let (Some(mut stdin), Some(out)) = (child.stdin.take(), child.stdout.take()) else {
            bail!("ffmpeg (AAC) started without pipes");
        };
        let feeder = std::thread::Builder::new()
            .name("cam-aac-feed".into())
            .spawn(move || {
                let mut buf = Vec::with_capacity(PACK_SAMPLES as usize * 2);
                for k in 0u64.. {
                    buf.clear();
                    for n in k * PACK_SAMPLES..(k + 1) * PACK_SAMPLES {
                        buf.extend_from_slice(&tick(n, u64::from(rate)).to_le_bytes());
                    }
                    if stdin.write_all(&buf).is_err() {
                        break; // the encoder ended (session over)
                    }
                }
            })?;
        let mut enc = AacEncoder {
            child,
            out,
            feeder: Some(feeder),
        };
        // The encoder's first frame is its priming frame (1024 samples of
        // encoder delay, ffmpeg's `initial_padding`): frame k + 1 carries
        // input samples k * 1024.., so dropping it puts every pack at the
        // PTS of the samples it holds, as the engine does with its own
        // G.711 transcoding.
        enc.next_frame()
            .context("the AAC encoder's priming frame")?;
        Ok(enc)
    }

    /// Reads one whole ADTS frame (header included) from ffmpeg.
    fn next_frame(&mut self) -> Result<Vec<u8>> {
        let mut frame = vec![0u8; 7];
        self.out
            .read_exact(&mut frame)
            .context("reading the AAC encoder's output")?;
        let h = adts::parse_header(&frame).context("the AAC encoder's output")?;
        if h.sample_rate != AAC_RATE || h.channels != 1 {
            bail!(
                "the AAC encoder made {} Hz x{}, not {AAC_RATE} Hz mono",
                h.sample_rate,
                h.channels
            );
        }
        frame.resize(h.frame_len, 0);
        self.out
            .read_exact(&mut frame[7..])
            .context("reading the AAC encoder's output")?;
        Ok(frame)
    }
}

impl Drop for AacEncoder {
    fn drop(&mut self) {
        // Ours to end; the feeder's next write then fails and it returns.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(f) = self.feeder.take() {
            let _ = f.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_sounds_for_the_first_100_ms_of_each_second_only() {
        for rate in [8000u64, 16_000] {
            let loud = |from: u64, to: u64| (from..to).any(|n| tick(n, rate).abs() > 4000);
            assert!(loud(0, rate / 10), "{rate}");
            assert!(!loud(rate / 10, rate), "{rate}");
            assert!(loud(rate, rate + rate / 10), "{rate}");
        }
    }

    #[test]
    fn tick_is_1_khz_at_both_rates() {
        // One period is rate / 1000 samples: the sine repeats exactly.
        for rate in [8000u64, 16_000] {
            let p = rate / 1000;
            for n in 0..rate / 10 - p {
                assert_eq!(tick(n, rate), tick(n + p, rate), "{rate} at {n}");
            }
        }
    }

    #[test]
    fn packs_are_whole_milliseconds() {
        assert_eq!(Audio::G711a.pack_ms(), 128);
        assert_eq!(Audio::Aac.pack_ms(), 64);
        assert_eq!(Audio::None.pack_ms(), 0);
    }
}
