//! One interface over the two segment containers, so the segmenter does not
//! care which one a channel uses. Timestamps come in as media time (90 kHz
//! for video, the sample rate for audio, zero at the start of the timeline);
//! each container applies its own offsets.

use crate::error::{Error, Result};
use crate::types::Container;
use ivcs_media::fmp4::Fmp4Muxer;
use ivcs_media::ts::TsMuxer;
use ivcs_media::{AudioParams, VideoParams};

/// TS timestamps start this far above zero (1.4 s, as ffmpeg does) so that
/// PCR, which runs slightly behind PTS, never goes negative.
const TS_OFFSET_90K: u64 = 126_000;

/// A container muxer for one channel; lives across segments so TS
/// continuity counters continue.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) enum SegmentWriter {
    Ts(TsMuxer),
    Fmp4(Fmp4Muxer),
}

impl SegmentWriter {
    pub(crate) fn new(
        container: Container,
        video: &VideoParams,
        audio: Option<&AudioParams>,
    ) -> Self {
        match container {
            Container::Ts => SegmentWriter::Ts(TsMuxer::new(video.codec, audio)),
            Container::Fmp4 => SegmentWriter::Fmp4(Fmp4Muxer::new(video, audio)),
        }
    }

    /// Writes the segment header; returns the init length (fMP4) or 0.
    pub(crate) fn begin(&mut self, out: &mut Vec<u8>) -> Result<u32> {
        match self {
            SegmentWriter::Ts(m) => {
                m.begin_segment(out);
                Ok(0)
            }
            SegmentWriter::Fmp4(m) => {
                let n = m
                    .begin_segment(out)
                    .map_err(|e| Error::media(e, "fMP4 init"))?;
                Ok(u32::try_from(n).unwrap_or(u32::MAX))
            }
        }
    }

    pub(crate) fn video(
        &mut self,
        out: &mut Vec<u8>,
        au: &[u8],
        t90: u64,
        keyframe: bool,
        params: &VideoParams,
    ) -> Result<()> {
        let r = match self {
            SegmentWriter::Ts(m) => m.write_video(out, au, t90 + TS_OFFSET_90K, keyframe, params),
            SegmentWriter::Fmp4(m) => m.push_video(out, au, t90, keyframe),
        };
        r.map_err(|e| Error::media(e, "video mux"))
    }

    pub(crate) fn audio(
        &mut self,
        out: &mut Vec<u8>,
        raw_au: &[u8],
        params: &AudioParams,
        ticks: u64,
    ) -> Result<()> {
        let r = match self {
            SegmentWriter::Ts(m) => {
                let t90 = ticks.saturating_mul(90_000) / u64::from(params.sample_rate.max(1));
                m.write_audio(out, raw_au, params, t90 + TS_OFFSET_90K)
            }
            SegmentWriter::Fmp4(m) => m.push_audio(out, raw_au, ticks),
        };
        r.map_err(|e| Error::media(e, "audio mux"))
    }

    /// Closes the segment at media time `end90` (exclusive).
    pub(crate) fn end(&mut self, out: &mut Vec<u8>, end90: u64) -> Result<()> {
        match self {
            SegmentWriter::Ts(_) => Ok(()),
            SegmentWriter::Fmp4(m) => m
                .end_segment(out, end90)
                .map_err(|e| Error::media(e, "fMP4 segment end")),
        }
    }
}
