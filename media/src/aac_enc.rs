//! AAC-LC encoding of camera audio (PCM16 LE, G.711 A-law or µ-law) with
//! the `syom` encoder, producing raw access units stamped with the
//! presentation time of the first input sample each one carries.
//!
//! Bitrate: 64 kbit/s per channel at 16 kHz and above, 4 bits per sample
//! per channel below (32 kbit/s at 8 kHz, plenty for G.711 sources), never
//! above the AAC-LC ceiling of 6144 bits per channel per frame.
//!
//! Timing: the encoder has 1024 samples of priming, so its first access
//! unit holds only the ramp-in and is dropped; access unit `k` (counting
//! from 1) then decodes to input samples `(k-1)*1024 ..`. The first decoded
//! frame lacks the dropped unit's overlap (a ~20 ms fade-in), which is
//! immaterial for recordings and keeps every timestamp exact.
//!
//! Handing over (feature `serde`): the encoder's internal state cannot be
//! saved, so the input samples it may still need are kept (one unit of
//! lookback plus what it has not encoded yet, at most ~3 units per
//! channel). [`AacEncoder::save`] records them; [`AacEncoder::resume`]
//! feeds them to a fresh encoder and drops the units the old one already
//! produced, so the stream continues at the same sample with the same
//! timestamps. The units after the hand-over differ slightly from an
//! uninterrupted encoder's (rate control starts over) but decode to the
//! same signal: no sample is lost or repeated.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use std::collections::VecDeque;

use crate::{AudioParams, Error, ErrorKind, Result, adts, g711};

/// Samples per channel in one AAC-LC access unit.
pub const FRAME_SAMPLES: u64 = 1024;

/// Input sample formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum PcmFormat {
    /// Signed 16-bit little-endian, interleaved if stereo.
    S16Le,
    /// G.711 A-law, one byte per sample.
    ALaw,
    /// G.711 µ-law, one byte per sample.
    MuLaw,
}

impl PcmFormat {
    /// Bytes per sample of one channel.
    pub fn bytes_per_sample(self) -> usize {
        match self {
            PcmFormat::S16Le => 2,
            PcmFormat::ALaw | PcmFormat::MuLaw => 1,
        }
    }

    /// One sample as f32 in [-1, 1); `b` has `bytes_per_sample` bytes.
    fn sample(self, b: &[u8]) -> f32 {
        let s = match (self, b) {
            (PcmFormat::S16Le, &[lo, hi]) => i16::from_le_bytes([lo, hi]),
            (PcmFormat::ALaw, &[c]) => g711::alaw_decode(c),
            (PcmFormat::MuLaw, &[c]) => g711::ulaw_decode(c),
            _ => 0,
        };
        // Exact in f32, and within syom's accepted [-1, 1].
        f32::from(s) / 32768.0
    }
}

/// The bitrate used for `sample_rate` and `channels` (see the module docs).
pub fn bitrate_bps(sample_rate: u32, channels: u8) -> u32 {
    let per_channel = if sample_rate >= 16_000 {
        64_000
    } else {
        sample_rate.saturating_mul(4)
    };
    let ceiling = u64::from(sample_rate) * 6144 / 1024;
    let per_channel = u64::from(per_channel).min(ceiling);
    u32::try_from(per_channel * u64::from(channels)).unwrap_or(u32::MAX)
}

/// An input chunk's timestamp and the index of its first sample.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct Chunk {
    pts_ms: u64,
    start: u64,
}

/// Streaming PCM/G.711 → AAC-LC encoder; see the module docs for timing.
pub struct AacEncoder {
    format: PcmFormat,
    params: AudioParams,
    enc: syom::Encoder,
    /// Reused planar scratch, one plane per channel.
    planes: [Vec<f32>; 2],
    /// Timestamps of input chunks not yet fully encoded (oldest first).
    chunks: VecDeque<Chunk>,
    /// Samples per channel fed so far.
    fed: u64,
    /// Access units the encoder has produced so far (priming unit included).
    produced: u64,
    /// Recent input per channel, from sample `hist_start`: what a resumed
    /// encoder needs (see the module docs).
    hist: [VecDeque<f32>; 2],
    hist_start: u64,
    /// Units below this index are not delivered (already delivered by the
    /// encoder this one resumed).
    skip_until: u64,
    /// Units a resume produced beyond `skip_until`, delivered first by the
    /// next call.
    pending: Vec<(Vec<u8>, u64)>,
}

/// [`AacEncoder`] state for a successor (feature `serde`).
#[cfg(feature = "serde")]
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct AacState {
    format: PcmFormat,
    sample_rate: u32,
    channels: u8,
    fed: u64,
    produced: u64,
    chunks: Vec<Chunk>,
    hist_start: u64,
    /// Per channel, f32 samples little-endian.
    #[serde(with = "crate::b64")]
    left: Vec<u8>,
    #[serde(with = "crate::b64")]
    right: Vec<u8>,
    pending: Vec<(Vec<u8>, u64)>,
}

impl std::fmt::Debug for AacEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AacEncoder")
            .field("format", &self.format)
            .field("params", &self.params)
            .field("fed", &self.fed)
            .field("produced", &self.produced)
            .finish_non_exhaustive()
    }
}

impl AacEncoder {
    /// An encoder for `format` input at `sample_rate` Hz (a rate with an
    /// ADTS sampling index, except 7350 Hz which the encoder lacks tables
    /// for) and 1 or 2 channels; otherwise [`ErrorKind::InvalidConfig`].
    pub fn new(format: PcmFormat, sample_rate: u32, channels: u8) -> Result<Self> {
        if !(1..=2).contains(&channels) {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!("{channels} audio channels (1 or 2 supported)"),
            ));
        }
        if adts::sampling_index(sample_rate).is_none() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!("sample rate {sample_rate} Hz has no AAC sampling index"),
            ));
        }
        let opts = syom::EncodeOptions::raw().with_bitrate_bps(bitrate_bps(sample_rate, channels));
        let enc = syom::Encoder::new(sample_rate, usize::from(channels), &opts)
            .map_err(|e| Error::new(ErrorKind::InvalidConfig, format!("AAC encoder: {e}")))?;
        let params = AudioParams::aac_lc(sample_rate, channels)?;
        Ok(AacEncoder {
            format,
            params,
            enc,
            planes: [Vec::new(), Vec::new()],
            chunks: VecDeque::new(),
            fed: 0,
            produced: 0,
            hist: [VecDeque::new(), VecDeque::new()],
            hist_start: 0,
            skip_until: 0,
            pending: Vec::new(),
        })
    }

    /// The state a successor resumes from (see the module docs).
    #[cfg(feature = "serde")]
    pub fn save(&self) -> AacState {
        let plane = |p: &VecDeque<f32>| p.iter().flat_map(|x| x.to_le_bytes()).collect();
        let [l, r] = &self.hist;
        AacState {
            format: self.format,
            sample_rate: self.params.sample_rate,
            channels: self.params.channels,
            fed: self.fed,
            produced: self.produced,
            chunks: self.chunks.iter().copied().collect(),
            hist_start: self.hist_start,
            left: plane(l),
            right: plane(r),
            pending: self.pending.clone(),
        }
    }

    /// A fresh encoder that continues where [`AacEncoder::save`]'s encoder
    /// stopped. Errors: the same as [`AacEncoder::new`], and `Malformed`
    /// for an inconsistent state.
    #[cfg(feature = "serde")]
    pub fn resume(st: AacState) -> Result<Self> {
        let mut e = AacEncoder::new(st.format, st.sample_rate, st.channels)?;
        let plane = |b: &[u8]| -> VecDeque<f32> {
            b.chunks_exact(4)
                .map(|c| <[u8; 4]>::try_from(c).map_or(0.0, f32::from_le_bytes))
                .collect()
        };
        let (l, r) = (plane(&st.left), plane(&st.right));
        let n = l.len() as u64;
        let stereo = st.channels == 2;
        let consistent = st.hist_start.is_multiple_of(FRAME_SAMPLES)
            && st.hist_start.checked_add(n) == Some(st.fed)
            && (if stereo {
                r.len() == l.len()
            } else {
                r.is_empty()
            })
            && st.produced <= st.fed / FRAME_SAMPLES + 2
            && st.hist_start / FRAME_SAMPLES <= st.produced;
        if !consistent {
            return Err(Error::malformed("saved AAC encoder state is inconsistent"));
        }
        e.chunks = st.chunks.into();
        e.pending = st.pending;
        e.hist_start = st.hist_start;
        // The fresh encoder's priming unit stands for the unit before
        // `hist_start`; all it produces below `produced` was delivered.
        e.produced = st.hist_start / FRAME_SAMPLES;
        e.skip_until = st.produced;
        e.fed = st.fed;
        e.hist = [l, r];
        if n > 0 {
            let [l, r] = &e.hist;
            let (l, r) = (Vec::from(l.clone()), Vec::from(r.clone()));
            let all = [l.as_slice(), r.as_slice()];
            let refs = all.get(..usize::from(st.channels)).unwrap_or_default();
            let rate = u64::from(e.params.sample_rate);
            let Self {
                enc,
                chunks,
                produced,
                skip_until,
                pending,
                ..
            } = &mut e;
            let mut keep = |au: &[u8], pts: u64| pending.push((au.to_vec(), pts));
            enc.feed(refs, |f| {
                deliver(chunks, produced, *skip_until, rate, f.au, &mut keep);
                Ok(())
            })
            .map_err(|err| Error::malformed(format!("AAC encoder: {err}")))?;
        }
        Ok(e)
    }

    /// The output stream's parameters (AAC-LC, input rate and channels).
    pub fn params(&self) -> &AudioParams {
        &self.params
    }

    /// Encode one chunk of input whose first sample is at `pts_ms`. Calls
    /// `out(raw_au, pts_ms)` for every finished access unit (zero or more).
    ///
    /// The chunk must be non-empty and hold whole samples for every channel
    /// (stereo interleaved L R L R), else [`ErrorKind::Malformed`].
    pub fn encode(
        &mut self,
        data: &[u8],
        pts_ms: u64,
        out: &mut dyn FnMut(&[u8], u64),
    ) -> Result<()> {
        let channels = usize::from(self.params.channels);
        let bps = self.format.bytes_per_sample();
        let frame_bytes = bps * channels;
        if data.is_empty() {
            return Err(Error::malformed("empty audio chunk"));
        }
        if !data.len().is_multiple_of(frame_bytes) {
            return Err(Error::malformed(format!(
                "audio chunk of {} bytes is not a whole number of {frame_bytes}-byte samples",
                data.len()
            )));
        }
        let n = data.len() / frame_bytes;
        let format = self.format;
        for p in &mut self.planes {
            p.clear();
            p.reserve(n);
        }
        let [left, right] = &mut self.planes;
        if channels == 1 {
            left.extend(data.chunks_exact(bps).map(|s| format.sample(s)));
        } else {
            for frame in data.chunks_exact(frame_bytes) {
                let (l, r) = frame.split_at_checked(bps).unwrap_or_default();
                left.push(format.sample(l));
                right.push(format.sample(r));
            }
        }
        self.chunks.push_back(Chunk {
            pts_ms,
            start: self.fed,
        });
        self.fed += n as u64;
        for (h, p) in self.hist.iter_mut().zip(&self.planes) {
            h.extend(p.iter().copied());
        }
        for (au, pts) in self.pending.drain(..) {
            out(&au, pts);
        }

        let rate = u64::from(self.params.sample_rate);
        let Self {
            enc,
            planes,
            chunks,
            produced,
            skip_until,
            ..
        } = self;
        let [left, right] = planes;
        let all = [left.as_slice(), right.as_slice()];
        let refs = all.get(..channels).unwrap_or_default();
        let r = enc.feed(refs, |f| {
            deliver(chunks, produced, *skip_until, rate, f.au, out);
            Ok(())
        });
        if let Err(e) = r {
            self.restart();
            return Err(Error::malformed(format!("AAC encoder: {e}")));
        }
        self.trim_history();
        Ok(())
    }

    /// Keeps input from one unit before the next one to deliver.
    fn trim_history(&mut self) {
        let keep_from = self.produced.saturating_sub(2) * FRAME_SAMPLES;
        let drop = keep_from.saturating_sub(self.hist_start);
        for h in &mut self.hist {
            h.drain(..(drop as usize).min(h.len()));
        }
        self.hist_start += drop;
    }

    /// End of input: encode the buffered tail (zero-padded to a frame) and
    /// the final overlap, calling `out` for each access unit. The encoder
    /// is then ready for a new stream (with a new priming unit).
    pub fn finish(&mut self, out: &mut dyn FnMut(&[u8], u64)) -> Result<()> {
        if self.fed == 0 {
            return Ok(());
        }
        let rate = u64::from(self.params.sample_rate);
        for (au, pts) in self.pending.drain(..) {
            out(&au, pts);
        }
        let Self {
            enc,
            chunks,
            produced,
            skip_until,
            ..
        } = self;
        let r = enc.finish(|f| {
            deliver(chunks, produced, *skip_until, rate, f.au, out);
            Ok(())
        });
        self.restart();
        r.map(|_| ())
            .map_err(|e| Error::malformed(format!("AAC encoder: {e}")))
    }

    /// Back to a fresh stream (buffered input is dropped).
    fn restart(&mut self) {
        // reset() only clears state and cannot fail in practice; if it
        // did, the next feed reports the encoder's lifecycle error.
        let _ = self.enc.reset();
        self.chunks.clear();
        self.fed = 0;
        self.produced = 0;
        self.hist.iter_mut().for_each(VecDeque::clear);
        self.hist_start = 0;
        self.skip_until = 0;
        self.pending.clear();
    }
}

/// Hand one access unit to `out` with its timestamp, dropping the priming
/// unit and units below `skip_until` (delivered before a resume).
fn deliver(
    chunks: &mut VecDeque<Chunk>,
    produced: &mut u64,
    skip_until: u64,
    rate: u64,
    au: &[u8],
    out: &mut dyn FnMut(&[u8], u64),
) {
    let k = *produced;
    *produced += 1;
    if k == 0 || k < skip_until {
        return;
    }
    let first_sample = (k - 1) * FRAME_SAMPLES;
    // Drop chunks wholly before this unit; the last one always stays.
    while chunks.get(1).is_some_and(|c| c.start <= first_sample) {
        chunks.pop_front();
    }
    let pts = chunks.front().map_or(0, |c| {
        let offset = first_sample.saturating_sub(c.start);
        c.pts_ms
            .saturating_add(offset.saturating_mul(1000) / rate.max(1))
    });
    out(au, pts);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_all(enc: &mut AacEncoder, chunks: &[(Vec<u8>, u64)]) -> Vec<(Vec<u8>, u64)> {
        let mut aus = Vec::new();
        let mut out = |au: &[u8], pts: u64| aus.push((au.to_vec(), pts));
        for (d, pts) in chunks {
            enc.encode(d, *pts, &mut out).unwrap();
        }
        enc.finish(&mut out).unwrap();
        aus
    }

    fn to_adts(params: &AudioParams, aus: &[(Vec<u8>, u64)]) -> Vec<u8> {
        let mut f = Vec::new();
        for (au, _) in aus {
            f.extend(adts::write_header(params, au.len()).unwrap());
            f.extend(au);
        }
        f
    }

    #[test]
    fn rejects_bad_config_and_input() {
        assert_eq!(
            AacEncoder::new(PcmFormat::S16Le, 44_000, 1)
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidConfig
        );
        assert!(AacEncoder::new(PcmFormat::S16Le, 48_000, 0).is_err());
        assert!(AacEncoder::new(PcmFormat::S16Le, 48_000, 3).is_err());
        let mut e = AacEncoder::new(PcmFormat::S16Le, 8000, 2).unwrap();
        let mut out = |_: &[u8], _: u64| {};
        assert_eq!(
            e.encode(&[], 0, &mut out).unwrap_err().kind(),
            ErrorKind::Malformed
        );
        assert_eq!(
            e.encode(&[0; 6], 0, &mut out).unwrap_err().kind(),
            ErrorKind::Malformed
        );
        assert!(e.encode(&[0; 8], 0, &mut out).is_ok());
        e.finish(&mut out).unwrap();
        e.finish(&mut out).unwrap();
    }

    #[test]
    fn bitrates_fit() {
        for &rate in &adts::SAMPLE_RATES {
            for ch in 1..=2 {
                let b = bitrate_bps(rate, ch);
                assert!(b > 0 && u64::from(b) <= u64::from(rate) * 6144 * u64::from(ch) / 1024);
                let e = AacEncoder::new(PcmFormat::ALaw, rate, ch);
                // syom has no scale-factor band table for 7350 Hz.
                assert_eq!(e.is_ok(), rate != 7350, "{rate}");
            }
        }
        assert_eq!(bitrate_bps(8000, 1), 32_000);
        assert_eq!(bitrate_bps(48_000, 2), 128_000);
    }

    #[test]
    fn timestamps_follow_input() {
        // 8 kHz µ-law in 20 ms chunks (160 samples) starting at 1000 ms.
        let mut e = AacEncoder::new(PcmFormat::MuLaw, 8000, 1).unwrap();
        assert_eq!(e.params().asc, vec![0x15, 0x88]);
        let chunks: Vec<(Vec<u8>, u64)> =
            (0..50).map(|i| (vec![0xFF; 160], 1000 + 20 * i)).collect();
        let aus = encode_all(&mut e, &chunks);
        // 8000 samples → ceil(8000/1024) = 8 units after the priming one.
        assert_eq!(aus.len(), 8);
        for (k, (_, pts)) in aus.iter().enumerate() {
            assert_eq!(*pts, 1000 + k as u64 * 128);
        }
        // A timestamp jump moves later units with it.
        let mut e = AacEncoder::new(PcmFormat::S16Le, 16_000, 1).unwrap();
        let chunks = vec![(vec![0; 2048 * 2], 0), (vec![0; 2048 * 2], 5000)];
        let pts: Vec<u64> = encode_all(&mut e, &chunks).iter().map(|a| a.1).collect();
        assert_eq!(pts, [0, 64, 5000, 5064]);
        // Reusable after finish, with priming again.
        let pts: Vec<u64> = encode_all(&mut e, &chunks).iter().map(|a| a.1).collect();
        assert_eq!(pts, [0, 64, 5000, 5064]);
    }

    #[test]
    fn deterministic_output() {
        let pcm: Vec<u8> = (0..48_000u32)
            .flat_map(|i| {
                let s = ((i as f32 * 0.05).sin() * 12000.0) as i16;
                let mut b = s.to_le_bytes().to_vec();
                b.extend((s / 2).to_le_bytes());
                b
            })
            .collect();
        let run = || {
            let mut e = AacEncoder::new(PcmFormat::S16Le, 48_000, 2).unwrap();
            let chunks: Vec<(Vec<u8>, u64)> = pcm
                .chunks(4 * 960)
                .enumerate()
                .map(|(i, c)| (c.to_vec(), i as u64 * 20))
                .collect();
            let aus = encode_all(&mut e, &chunks);
            to_adts(e.params(), &aus)
        };
        assert_eq!(run(), run());
    }

    /// Golden output for integer-generated input: the bytes must be the same
    /// on every platform (native and wasm32), so this hash must not change
    /// unless the encoder (or its version) does.
    #[test]
    fn golden_output_hash() {
        use sha2::{Digest, Sha256};
        let mut x = 1u32;
        let pcm: Vec<u8> = (0..16_000u32)
            .flat_map(|i| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                // Triangle wave plus a little noise.
                let tri = ((i % 64) as i32 - 32).abs() * 600 - 9600;
                let s = (tri + ((x >> 20) as i32 - 2048)) as i16;
                s.to_le_bytes()
            })
            .collect();
        let mut e = AacEncoder::new(PcmFormat::S16Le, 16_000, 1).unwrap();
        let chunks: Vec<(Vec<u8>, u64)> = pcm
            .chunks(640)
            .enumerate()
            .map(|(i, c)| (c.to_vec(), i as u64 * 20))
            .collect();
        let mut h = Sha256::new();
        for (au, pts) in encode_all(&mut e, &chunks) {
            h.update(pts.to_le_bytes());
            h.update((au.len() as u32).to_le_bytes());
            h.update(&au);
        }
        assert_eq!(hex::encode(h.finalize()), GOLDEN);
    }

    /// A save in the middle of a stream and a resume from it (through
    /// JSON) continue with the same units at the same timestamps, and the
    /// audio decodes to the uninterrupted signal.
    #[cfg(feature = "serde")]
    #[test]
    fn resumed_encoder_continues_the_stream() {
        let rate = 16_000u32;
        let pcm: Vec<u8> = (0..rate * 2)
            .flat_map(|i| {
                let s = ((i as f32 * 0.07).sin() * 9000.0) as i16;
                let mut b = s.to_le_bytes().to_vec();
                b.extend((s / 3).to_le_bytes());
                b
            })
            .collect();
        let chunks: Vec<(Vec<u8>, u64)> = pcm
            .chunks(4 * 320)
            .enumerate()
            .map(|(i, c)| (c.to_vec(), 500 + i as u64 * 20))
            .collect();
        let mut plain = AacEncoder::new(PcmFormat::S16Le, rate, 2).unwrap();
        let reference = encode_all(&mut plain, &chunks);
        for cut in [1, 3, 7, 50] {
            let mut aus = Vec::new();
            let mut out = |au: &[u8], pts: u64| aus.push((au.to_vec(), pts));
            let mut e = AacEncoder::new(PcmFormat::S16Le, rate, 2).unwrap();
            for (d, pts) in &chunks[..cut] {
                e.encode(d, *pts, &mut out).unwrap();
            }
            let json = serde_json::to_vec(&e.save()).unwrap();
            assert!(json.len() < 80_000, "{} bytes of state", json.len());
            let mut e = AacEncoder::resume(serde_json::from_slice(&json).unwrap()).unwrap();
            for (d, pts) in &chunks[cut..] {
                e.encode(d, *pts, &mut out).unwrap();
            }
            e.finish(&mut out).unwrap();
            let pts: Vec<u64> = aus.iter().map(|a| a.1).collect();
            let want: Vec<u64> = reference.iter().map(|a| a.1).collect();
            assert_eq!(pts, want, "cut after chunk {cut}");
            let decode = |aus: &[(Vec<u8>, u64)]| {
                let file = to_adts(plain.params(), aus);
                syom::decode_with(&file, &syom::DecodeOptions::unbounded()).unwrap()
            };
            let (a, b) = (decode(&aus), decode(&reference));
            for (x, y) in a.channels.iter().zip(&b.channels) {
                assert_eq!(x.len(), y.len());
                let err: f32 = x.iter().zip(y).map(|(p, q)| (p - q).powi(2)).sum();
                let sig: f32 = y.iter().map(|q| q * q).sum();
                assert!(err < sig / 300.0, "cut {cut}: error {err} vs signal {sig}");
            }
        }
        let mut st = AacEncoder::new(PcmFormat::ALaw, 8000, 1).unwrap().save();
        st.fed = 5;
        assert_eq!(
            AacEncoder::resume(st).unwrap_err().kind(),
            ErrorKind::Malformed
        );
    }

    const GOLDEN: &str = "255c717bacc3166265fb03e8e8a82c6731884f9e8485702de588473ed0a971bf";

    /// The onset of a tone lands at its input position after decoding,
    /// which checks the priming handling.
    #[test]
    fn priming_alignment() {
        let rate = 16_000u32;
        let onset = 5000usize;
        let pcm: Vec<u8> = (0..rate as usize)
            .flat_map(|i| {
                let s = if i < onset {
                    0
                } else {
                    ((i as f32 * 0.3).sin() * 16000.0) as i16
                };
                s.to_le_bytes()
            })
            .collect();
        let mut e = AacEncoder::new(PcmFormat::S16Le, rate, 1).unwrap();
        let aus = encode_all(&mut e, &[(pcm, 0)]);
        let file = to_adts(e.params(), &aus);
        let dec = syom::decode_with(&file, &syom::DecodeOptions::unbounded()).unwrap();
        let ch = &dec.channels[0];
        assert_eq!(ch.len(), aus.len() * 1024);
        assert!(ch.len() >= rate as usize && ch.len() < rate as usize + 1024);
        let first_loud = ch.iter().position(|s| s.abs() > 0.25).unwrap();
        assert!(
            first_loud.abs_diff(onset) < 32,
            "onset at {first_loud}, want {onset}"
        );
    }
}
