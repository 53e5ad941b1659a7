//! Decoded-audio analysis: PCM via ffmpeg as interleaved f32, per-channel
//! level, and how much of a channel's energy sits at its expected tone (the
//! fixtures are pure sines, one frequency per channel), so a transcoded track
//! can be checked for content, channel order and level, not only length.

use crate::tools;

/// Interleaved f32 samples of an input's first audio stream at its own rate
/// and channel count. `input` is ffmpeg input arguments; `extra` goes before
/// the output (e.g. `-t 24`).
pub fn decode_f32(input: &[String], extra: &[String]) -> Vec<f32> {
    let mut args: Vec<String> = vec!["-v".into(), "error".into()];
    args.extend(input.iter().cloned());
    args.extend(["-map", "0:a:0"].map(String::from));
    args.extend(extra.iter().cloned());
    args.extend(["-f", "f32le", "-"].map(String::from));
    let out = tools::ffmpeg(&args).expect_success();
    out.stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// One channel of interleaved samples, from `start` to `end` (sample
/// indices per channel, clamped).
pub fn channel(samples: &[f32], channels: usize, ch: usize, start: usize, end: usize) -> Vec<f64> {
    let frames = samples.len() / channels.max(1);
    let end = end.min(frames);
    (start.min(end)..end)
        .map(|i| f64::from(samples[i * channels + ch]))
        .collect()
}

/// Root mean square.
pub fn rms(x: &[f64]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64).sqrt()
}

/// Fraction of the energy of `x` at `freq` (Goertzel), 1.0 for a pure sine
/// that completes whole cycles in `x`, ~0 for silence or another tone.
pub fn tone_fraction(x: &[f64], sample_rate: u32, freq: f64) -> f64 {
    let n = x.len();
    let energy: f64 = x.iter().map(|v| v * v).sum();
    if n == 0 || energy == 0.0 {
        return 0.0;
    }
    let w = 2.0 * std::f64::consts::PI * freq / f64::from(sample_rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = v + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power / (n as f64 * energy)
}

/// Mean [`tone_fraction`] over whole 1-second windows of one channel,
/// skipping the first and the last second (encoder start-up and the cut).
/// Returns `None` if there is no full window.
pub fn tone_fraction_windows(
    samples: &[f32],
    channels: usize,
    ch: usize,
    sample_rate: u32,
    freq: f64,
) -> Option<f64> {
    let sr = sample_rate as usize;
    let frames = samples.len() / channels.max(1);
    let windows = (frames / sr).checked_sub(2)?;
    if windows == 0 {
        return None;
    }
    let sum: f64 = (1..=windows)
        .map(|w| {
            tone_fraction(
                &channel(samples, channels, ch, w * sr, (w + 1) * sr),
                sample_rate,
                freq,
            )
        })
        .sum();
    Some(sum / windows as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goertzel_finds_the_tone_and_only_it() {
        let sr = 8000;
        let x: Vec<f64> = (0..sr)
            .map(|i| 0.3 * (2.0 * std::f64::consts::PI * 600.0 * f64::from(i) / 8000.0).sin())
            .collect();
        assert!((tone_fraction(&x, sr as u32, 600.0) - 1.0).abs() < 1e-6);
        assert!(tone_fraction(&x, sr as u32, 800.0) < 1e-6);
        assert!((rms(&x) - 0.3 / 2f64.sqrt()).abs() < 1e-6);
        assert_eq!(tone_fraction(&vec![0.0; 8000], 8000, 600.0), 0.0);
    }
}
