//! Reading a stored segment back as samples on one 90 kHz clock, whatever
//! its container: the common front end of [`crate::ts_demux`] and
//! [`crate::fmp4_demux`] for callers that re-package recordings (the
//! cloud's MP4 export).
//!
//! A [`Sample`] keeps its bytes as the container stored them (TS: an
//! Annex-B access unit or an ADTS frame; fMP4: length-prefixed NAL units or
//! a raw AAC frame); [`SegmentReader::export_size`] and
//! [`SegmentReader::push_export`] convert them for [`crate::mp4_export`], so
//! the size promised in pass 1 and the bytes written in pass 2 come from the
//! same code.

use crate::demux::{DamageLog, OnDamage};
use crate::fmp4_demux::{Fmp4DemuxConfig, Fmp4Demuxer, TrackConfig};
use crate::mp4_export::{Mp4Payload, video_sample_size};
use crate::ts_demux::{TsDemuxConfig, TsDemuxer, TsFrame};
use crate::{AudioParams, Error, Result, Track, VideoCodec, VideoParams, adts};

/// A segment's container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SegmentFormat {
    /// MPEG-TS.
    Ts,
    /// Self-contained fragmented MP4 (init part plus fragments).
    Fmp4,
}

/// One sample of a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Video or audio.
    pub track: Track,
    /// Presentation time, 90 kHz (the container's clock: TS timestamps
    /// unwrapped, fMP4 decode times converted from the track timescale).
    pub pts_90k: u64,
    /// Decode time, 90 kHz.
    pub dts_90k: u64,
    /// A key frame (every audio frame is one).
    pub key: bool,
    /// The bytes as stored (see the module documentation).
    pub data: Vec<u8>,
}

enum Demuxer {
    Ts(TsDemuxer, Vec<TsFrame>),
    Fmp4(Fmp4Demuxer, Vec<crate::fmp4_demux::Fmp4Frame>),
}

/// Streaming reader of one segment; feed it the object in pieces of any
/// size.
pub struct SegmentReader {
    format: SegmentFormat,
    demux: Demuxer,
    video: Option<VideoParams>,
    audio: Option<AudioParams>,
}

impl SegmentReader {
    /// A reader for a segment in `format`; `on_damage` is the demuxer's
    /// policy for damaged input.
    pub fn new(format: SegmentFormat, on_damage: OnDamage) -> SegmentReader {
        let demux = match format {
            SegmentFormat::Ts => Demuxer::Ts(
                TsDemuxer::new(TsDemuxConfig {
                    on_damage,
                    ..TsDemuxConfig::default()
                }),
                Vec::new(),
            ),
            SegmentFormat::Fmp4 => Demuxer::Fmp4(
                Fmp4Demuxer::new(Fmp4DemuxConfig {
                    on_damage,
                    ..Fmp4DemuxConfig::default()
                }),
                Vec::new(),
            ),
        };
        SegmentReader {
            format,
            demux,
            video: None,
            audio: None,
        }
    }

    /// The container.
    pub fn format(&self) -> SegmentFormat {
        self.format
    }

    /// Feeds the next bytes; complete samples are appended to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Sample>) -> Result<()> {
        match &mut self.demux {
            Demuxer::Ts(d, frames) => d.push(data, frames)?,
            Demuxer::Fmp4(d, frames) => d.push(data, frames)?,
        }
        self.drain(out)
    }

    /// Ends the input: the last samples are appended to `out`.
    pub fn finish(&mut self, out: &mut Vec<Sample>) -> Result<()> {
        match &mut self.demux {
            Demuxer::Ts(d, frames) => d.finish(frames)?,
            Demuxer::Fmp4(d, frames) => d.finish(frames)?,
        }
        self.drain(out)
    }

    /// The video stream's parameters: from the first key frame (TS) or the
    /// sample entry (fMP4); `None` until seen.
    pub fn video(&self) -> Option<&VideoParams> {
        self.video.as_ref()
    }

    /// The audio stream's parameters, `None` until seen (or no audio).
    pub fn audio(&self) -> Option<&AudioParams> {
        self.audio.as_ref()
    }

    /// Damage skipped so far.
    pub fn damage(&self) -> &DamageLog {
        match &self.demux {
            Demuxer::Ts(d, _) => d.damage(),
            Demuxer::Fmp4(d, _) => d.damage(),
        }
    }

    /// The size of `s` as an MP4 sample (pass 1 of an export).
    pub fn export_size(&self, s: &Sample) -> Result<u32> {
        let len = match (self.format, s.track) {
            (SegmentFormat::Ts, Track::Video) => return video_sample_size(self.codec()?, &s.data),
            (SegmentFormat::Ts, Track::Audio) => adts::payload(&s.data)?.1.len(),
            (SegmentFormat::Fmp4, _) => s.data.len(),
        };
        u32::try_from(len).map_err(|_| Error::malformed("sample over 4 GiB"))
    }

    /// Writes `s` into an export's payload (pass 2 of an export).
    pub fn push_export(
        &self,
        s: &Sample,
        payload: &mut Mp4Payload<'_>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        match (self.format, s.track) {
            (SegmentFormat::Ts, Track::Video) => payload.push_video_annexb(&s.data, out),
            (SegmentFormat::Ts, Track::Audio) => payload.push_audio_adts(&s.data, out),
            (SegmentFormat::Fmp4, Track::Video) => payload.push_video(&s.data, out),
            (SegmentFormat::Fmp4, Track::Audio) => payload.push_audio(&s.data, out),
        }
    }

    fn codec(&self) -> Result<VideoCodec> {
        match &self.demux {
            Demuxer::Ts(d, _) => d.video_codec(),
            Demuxer::Fmp4(..) => self.video.as_ref().map(|v| v.codec),
        }
        .ok_or_else(|| Error::malformed("video sample before the stream's codec is known"))
    }

    fn drain(&mut self, out: &mut Vec<Sample>) -> Result<()> {
        match &mut self.demux {
            Demuxer::Ts(d, frames) => {
                for f in frames.drain(..) {
                    match f.track {
                        Track::Video if f.keyframe && self.video.is_none() => {
                            let codec = d.video_codec().ok_or_else(|| {
                                Error::malformed("video frame before the PMT named its codec")
                            })?;
                            self.video = Some(VideoParams::from_annexb(codec, &f.data)?);
                        }
                        Track::Audio if self.audio.is_none() => {
                            self.audio =
                                Some(AudioParams::from_adts(&adts::parse_header(&f.data)?)?);
                        }
                        _ => {}
                    }
                    out.push(Sample {
                        track: f.track,
                        pts_90k: f.pts_90k,
                        dts_90k: f.dts_90k,
                        key: f.keyframe,
                        data: f.data,
                    });
                }
            }
            Demuxer::Fmp4(d, frames) => {
                let mut rates = [90_000u32; 2];
                for t in d.tracks() {
                    match &t.config {
                        TrackConfig::Video {
                            codec,
                            decoder_config,
                            ..
                        } => {
                            rates[0] = t.timescale;
                            if self.video.is_none() {
                                self.video =
                                    Some(VideoParams::from_decoder_config(*codec, decoder_config)?);
                            }
                        }
                        TrackConfig::Audio(a) => {
                            rates[1] = t.timescale;
                            if self.audio.is_none() {
                                self.audio = Some(a.clone());
                            }
                        }
                    }
                }
                for f in frames.drain(..) {
                    let rate = match f.track {
                        Track::Video => rates[0],
                        Track::Audio => rates[1],
                    };
                    let dts = to_90k(f.decode_time, rate)?;
                    let pts = to_90k(
                        f.decode_time
                            .checked_add_signed(f.composition_offset)
                            .ok_or_else(|| Error::malformed("negative presentation time"))?,
                        rate,
                    )?;
                    out.push(Sample {
                        track: f.track,
                        pts_90k: pts,
                        dts_90k: dts,
                        key: f.sync,
                        data: f.data,
                    });
                }
            }
        }
        Ok(())
    }
}

/// `t` ticks of `rate` Hz in 90 kHz, rounded down. Exact for 90 kHz video;
/// for audio, the export rounds back to the sample rate, which recovers `t`.
fn to_90k(t: u64, rate: u32) -> Result<u64> {
    if rate == 0 {
        return Err(Error::malformed("track timescale 0"));
    }
    u64::try_from(u128::from(t) * 90_000 / u128::from(rate))
        .map_err(|_| Error::malformed("timestamp out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timescale_conversion() {
        assert_eq!(to_90k(48_000, 48_000).unwrap(), 90_000);
        assert_eq!(to_90k(1024, 48_000).unwrap(), 1920);
        assert_eq!(to_90k(3600, 90_000).unwrap(), 3600);
        assert!(to_90k(1, 0).is_err());
        assert!(to_90k(u64::MAX, 1).is_err());
    }

    #[test]
    fn garbage_is_an_error_or_nothing() {
        for format in [SegmentFormat::Ts, SegmentFormat::Fmp4] {
            let mut r = SegmentReader::new(format, OnDamage::Skip);
            let mut out = Vec::new();
            let junk: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
            let _ = r.push(&junk, &mut out);
            let _ = r.finish(&mut out);
            assert!(out.is_empty(), "{format:?}");
        }
    }
}
