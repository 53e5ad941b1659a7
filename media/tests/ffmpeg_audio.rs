//! Audio against ffmpeg: G.711 decoding equals ffmpeg's `pcm_alaw` /
//! `pcm_mulaw`, and the AAC-LC encoder's output (in ADTS) decodes cleanly
//! with ffmpeg, to the input's length and time alignment.
//!
//! Skipped (with a note) when ffmpeg is not installed.

mod common;

use common::Fixture;
use ivcs_media::aac_enc::{AacEncoder, PcmFormat};
use ivcs_media::{adts, g711};
use std::process::Command;

fn s16le(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

#[test]
fn g711_matches_ffmpeg() {
    let Some(fx) = Fixture::new("g711") else {
        return;
    };
    let codes: Vec<u8> = (0..=255).collect();
    let input = fx.path("codes.raw");
    std::fs::write(&input, &codes).unwrap();
    for (fmt, decode) in [
        ("alaw", g711::alaw_decode as fn(u8) -> i16),
        ("mulaw", g711::ulaw_decode),
    ] {
        let out = fx.path(&format!("{fmt}.s16"));
        fx.ffmpeg(&[
            "-f",
            fmt,
            "-ar",
            "8000",
            "-ac",
            "1",
            "-i",
            &input.display().to_string(),
            "-f",
            "s16le",
            &out.display().to_string(),
        ]);
        let theirs = s16le(&std::fs::read(&out).unwrap());
        let ours: Vec<i16> = codes.iter().map(|&c| decode(c)).collect();
        assert_eq!(ours, theirs, "{fmt}");
    }
}

struct AudioCase {
    format: PcmFormat,
    ffmpeg_format: &'static str,
    rate: u32,
    channels: u8,
    /// Input chunk duration in ms.
    chunk_ms: u32,
}

const AUDIO_CASES: &[AudioCase] = &[
    AudioCase {
        format: PcmFormat::ALaw,
        ffmpeg_format: "alaw",
        rate: 8000,
        channels: 1,
        chunk_ms: 20,
    },
    AudioCase {
        format: PcmFormat::MuLaw,
        ffmpeg_format: "mulaw",
        rate: 8000,
        channels: 1,
        chunk_ms: 40,
    },
    AudioCase {
        format: PcmFormat::S16Le,
        ffmpeg_format: "s16le",
        rate: 16_000,
        channels: 1,
        chunk_ms: 10,
    },
    AudioCase {
        format: PcmFormat::S16Le,
        ffmpeg_format: "s16le",
        rate: 48_000,
        channels: 2,
        chunk_ms: 20,
    },
    AudioCase {
        format: PcmFormat::ALaw,
        ffmpeg_format: "alaw",
        rate: 16_000,
        channels: 2,
        chunk_ms: 64,
    },
];

/// The lag (decoded index − input index) in `-max..=max` with the highest
/// normalised correlation, over the first channel.
fn best_lag(input: &[f64], decoded: &[f64], max: i64) -> i64 {
    let n = input.len().min(decoded.len()) as i64;
    (-max..=max)
        .max_by(|&a, &b| {
            let c = |lag: i64| {
                let mut dot = 0.0;
                let mut e = 1e-9;
                for i in (max..n - max).step_by(3) {
                    let d = decoded[(i + lag) as usize];
                    dot += input[i as usize] * d;
                    e += d * d;
                }
                dot / e.sqrt()
            };
            c(a).total_cmp(&c(b))
        })
        .unwrap()
}

#[test]
fn aac_encoder_output_decodes_with_ffmpeg() {
    let Some(fx) = Fixture::new("aac") else {
        return;
    };
    for case in AUDIO_CASES {
        let what = format!("{:?} {} Hz x{}", case.format, case.rate, case.channels);
        // A chirp: not periodic, so the alignment check has one answer.
        let raw = fx.path("in.raw");
        fx.ffmpeg(&[
            "-f".to_string(),
            "lavfi".into(),
            "-t".into(),
            "2".into(),
            "-i".into(),
            format!(
                "aevalsrc=0.5*sin(2*PI*(150+300*t)*t):s={}:c={}",
                case.rate,
                if case.channels == 1 { "mono" } else { "stereo" }
            ),
            "-f".into(),
            case.ffmpeg_format.into(),
            raw.display().to_string(),
        ]);
        let input = std::fs::read(&raw).unwrap();
        let frame_bytes = case.format.bytes_per_sample() * usize::from(case.channels);
        let samples = input.len() / frame_bytes;
        assert_eq!(samples, 2 * case.rate as usize, "{what}");

        let mut enc = AacEncoder::new(case.format, case.rate, case.channels).unwrap();
        let params = enc.params().clone();
        let mut aac = Vec::new();
        let mut pts_list = Vec::new();
        let mut out = |au: &[u8], pts: u64| {
            aac.extend(adts::write_header(&params, au.len()).unwrap());
            aac.extend_from_slice(au);
            pts_list.push(pts);
        };
        let chunk = frame_bytes * (case.rate * case.chunk_ms / 1000) as usize;
        for (i, c) in input.chunks(chunk).enumerate() {
            enc.encode(c, 10_000 + i as u64 * u64::from(case.chunk_ms), &mut out)
                .unwrap();
        }
        enc.finish(&mut out).unwrap();
        let units = pts_list.len();
        assert_eq!(units, samples.div_ceil(1024), "{what}");
        for (k, &pts) in pts_list.iter().enumerate() {
            assert_eq!(
                pts,
                10_000 + k as u64 * 1024 * 1000 / u64::from(case.rate),
                "{what}"
            );
        }
        // Our own ADTS parser reads it back.
        assert_eq!(
            adts::frames(&aac).filter(|f| f.is_ok()).count(),
            units,
            "{what}"
        );

        let file = fx.path("out.aac");
        std::fs::write(&file, &aac).unwrap();
        let check = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(&file)
            .args(["-f", "null", "-"])
            .output()
            .unwrap();
        assert!(check.status.success(), "{what}");
        assert!(
            check.stderr.is_empty(),
            "{what}: ffmpeg says {}",
            String::from_utf8_lossy(&check.stderr)
        );

        let dec = fx.path("dec.f64");
        fx.ffmpeg(&[
            "-i",
            &file.display().to_string(),
            "-f",
            "f64le",
            "-ac",
            "1",
            &dec.display().to_string(),
        ]);
        let decoded: Vec<f64> = std::fs::read(&dec)
            .unwrap()
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(decoded.len(), units * 1024, "{what}");
        assert!(
            decoded.len() >= samples && decoded.len() < samples + 1024,
            "{what}"
        );

        // Mono mix of the input, as f64.
        let mono: Vec<f64> = input
            .chunks_exact(frame_bytes)
            .map(|f| {
                let ch: Vec<f64> = f
                    .chunks_exact(case.format.bytes_per_sample())
                    .map(|s| {
                        f64::from(match case.format {
                            PcmFormat::S16Le => i16::from_le_bytes([s[0], s[1]]),
                            PcmFormat::ALaw => g711::alaw_decode(s[0]),
                            PcmFormat::MuLaw => g711::ulaw_decode(s[0]),
                        }) / 32768.0
                    })
                    .collect();
                ch.iter().sum::<f64>() / ch.len() as f64
            })
            .collect();
        let lag = best_lag(&mono, &decoded, 1100);
        assert!(
            lag.abs() <= 2,
            "{what}: decoded audio is offset by {lag} samples"
        );
    }
}
