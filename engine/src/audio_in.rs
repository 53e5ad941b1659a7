//! Audio input normalisation: every pushed audio pack becomes raw AAC-LC
//! access units with a PTS. ADTS AAC is unwrapped and passed through; G.711
//! and PCM are encoded to AAC-LC here, inside the engine.

use crate::error::{Error, ErrorKind, Result};
use crate::types::{AudioCodec, AudioFormat};
use ivcs_media::aac_enc::{AacEncoder, AacState, PcmFormat};
use ivcs_media::{AudioParams, adts};

/// Turns audio packs into raw AAC access units. Serialisable so an open
/// recording survives a hot swap (the encoder as [`AacState`]).
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct AudioInput {
    params: AudioParams,
    #[serde(with = "saved_encoder")]
    encoder: Option<AacEncoder>,
}

/// An encoder travels as its [`AacState`] and resumes on arrival.
mod saved_encoder {
    use super::{AacEncoder, AacState};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(e: &Option<AacEncoder>, s: S) -> Result<S::Ok, S::Error> {
        e.as_ref().map(AacEncoder::save).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<AacEncoder>, D::Error> {
        Option::<AacState>::deserialize(d)?
            .map(AacEncoder::resume)
            .transpose()
            .map_err(serde::de::Error::custom)
    }
}

impl AudioInput {
    /// Validates `fmt` and prepares the passthrough or the encoder.
    pub(crate) fn new(fmt: &AudioFormat) -> Result<Self> {
        let pcm = match fmt.codec {
            AudioCodec::Aac => None,
            AudioCodec::Pcm16 => Some(PcmFormat::S16Le),
            AudioCodec::G711a => Some(PcmFormat::ALaw),
            AudioCodec::G711u => Some(PcmFormat::MuLaw),
        };
        let ctx = "audio format";
        match pcm {
            None => Ok(AudioInput {
                params: AudioParams::aac_lc(fmt.sample_rate, fmt.channels)
                    .map_err(|e| Error::media(e, ctx))?,
                encoder: None,
            }),
            Some(p) => {
                let enc = AacEncoder::new(p, fmt.sample_rate, fmt.channels)
                    .map_err(|e| Error::media(e, ctx))?;
                Ok(AudioInput {
                    params: enc.params().clone(),
                    encoder: Some(enc),
                })
            }
        }
    }

    /// The AAC stream the muxer declares.
    pub(crate) fn params(&self) -> &AudioParams {
        &self.params
    }

    /// Feeds one pack; calls `sink(raw_au, pts_ms)` for every access unit
    /// that is ready (zero or more).
    pub(crate) fn push(
        &mut self,
        data: &[u8],
        pts_ms: u64,
        seq: u32,
        sink: &mut dyn FnMut(&[u8], u64),
    ) -> Result<()> {
        let ctx = || format!("audio seq {seq} pts {pts_ms}");
        match &mut self.encoder {
            Some(enc) => enc
                .encode(data, pts_ms, sink)
                .map_err(|e| Error::media(e, &ctx())),
            None => {
                let (h, payload) = adts::payload(data).map_err(|e| Error::media(e, &ctx()))?;
                if h.sample_rate != self.params.sample_rate || h.channels != self.params.channels {
                    return Err(Error::new(
                        ErrorKind::InvalidArgument,
                        format!(
                            "{}: ADTS says {} Hz x{} but the channel was configured for {} Hz x{}",
                            ctx(),
                            h.sample_rate,
                            h.channels,
                            self.params.sample_rate,
                            self.params.channels
                        ),
                    ));
                }
                sink(payload, pts_ms);
                Ok(())
            }
        }
    }

    /// Drains the encoder's last access units at the end of the stream.
    pub(crate) fn finish(&mut self, sink: &mut dyn FnMut(&[u8], u64)) -> Result<()> {
        match &mut self.encoder {
            Some(enc) => enc.finish(sink).map_err(|e| Error::media(e, "audio end")),
            None => Ok(()),
        }
    }
}
