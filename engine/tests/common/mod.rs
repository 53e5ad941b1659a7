//! Shared by the engine's integration tests: fixtures from testdata/ and a
//! small driver that feeds them through a [`Pipeline`] the way firmware would.

#![allow(dead_code)]

use ivcs_engine::pipeline::{Output, Pipeline, PipelineConfig, SegmentInfo};
use ivcs_engine::types::{
    AudioCodec, AudioFormat, AvFormat, Container, Frame, FrameType, StreamKind,
};
use ivcs_media::{VideoCodec, adts, annexb};

pub fn fixture(name: &str) -> Vec<u8> {
    let p = format!("{}/../testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

pub fn config(
    video: VideoCodec,
    audio: Option<AudioFormat>,
    container: Container,
) -> PipelineConfig {
    PipelineConfig {
        av: AvFormat {
            video,
            width: 0,
            height: 0,
            framerate: 25,
            audio,
        },
        container,
        segment_ms: 1000,
        start_utc_ms: 1_700_000_000_000,
        max_frame_bytes: 1 << 20,
    }
}

pub fn audio_format(codec: AudioCodec, sample_rate: u32, channels: u8) -> AudioFormat {
    AudioFormat {
        codec,
        sample_rate,
        channels,
        samples_per_frame: 1024 * u32::from(channels),
    }
}

/// Video access units of a fixture with PTS 40 ms apart.
pub fn video_frames(data: &[u8], codec: VideoCodec) -> Vec<Frame<'_>> {
    annexb::access_units(data, codec)
        .enumerate()
        .map(|(i, au)| Frame {
            kind: StreamKind::Video,
            frame_type: FrameType::P,
            pts_ms: i as u64 * 40,
            seq: i as u32,
            data: au,
        })
        .collect()
}

/// Audio packs: ADTS frames, or 1024 samples per channel of G.711/PCM.
pub fn audio_frames(data: &[u8], fmt: &AudioFormat) -> Vec<Frame<'static>> {
    let rate = u64::from(fmt.sample_rate);
    let packs: Vec<Vec<u8>> = match fmt.codec {
        AudioCodec::Aac => adts::frames(data).map(|f| f.unwrap().1.to_vec()).collect(),
        AudioCodec::Pcm16 => data
            .chunks_exact(2048 * usize::from(fmt.channels))
            .map(<[u8]>::to_vec)
            .collect(),
        _ => data
            .chunks_exact(1024 * usize::from(fmt.channels))
            .map(<[u8]>::to_vec)
            .collect(),
    };
    packs
        .into_iter()
        .enumerate()
        .map(|(i, p)| Frame {
            kind: StreamKind::Audio,
            frame_type: FrameType::P,
            pts_ms: i as u64 * 1024 * 1000 / rate,
            seq: i as u32,
            data: Box::leak(p.into_boxed_slice()),
        })
        .collect()
}

/// Merges by PTS, video first at equal PTS.
pub fn interleave<'a>(mut v: Vec<Frame<'a>>, a: Vec<Frame<'a>>) -> Vec<Frame<'a>> {
    let end = v.last().map(|f| f.pts_ms + 40).unwrap_or(0);
    v.extend(a.into_iter().filter(|f| f.pts_ms < end));
    v.sort_by_key(|f| (f.pts_ms, f.kind == StreamKind::Audio, f.seq));
    v
}

/// Segments produced by a run: info and bytes.
pub struct Segment {
    pub info: SegmentInfo,
    pub bytes: Vec<u8>,
}

/// Collects outputs into whole segments, checking the output grammar.
#[derive(Default)]
pub struct Collector {
    pub done: Vec<Segment>,
    open: Option<(SegmentInfo, Vec<u8>)>,
}

impl Collector {
    pub fn take(&mut self, p: &mut Pipeline) {
        for o in p.take_output() {
            match o {
                Output::SegmentStart(s) => {
                    assert!(
                        self.open.is_none(),
                        "segment {} started inside another",
                        s.index
                    );
                    self.open = Some((s, Vec::new()));
                }
                Output::Data(d) => self
                    .open
                    .as_mut()
                    .expect("data outside a segment")
                    .1
                    .extend(d),
                Output::SegmentEnd(s) => {
                    let (start, bytes) = self.open.take().expect("end without start");
                    assert_eq!(start.index, s.index);
                    assert_eq!(
                        s.bytes,
                        bytes.len() as u64,
                        "segment {} byte count",
                        s.index
                    );
                    self.done.push(Segment { info: s, bytes });
                }
            }
        }
    }
}

/// Pushes every frame (panicking on refusal) and finishes.
pub fn run(cfg: PipelineConfig, frames: &[Frame<'_>]) -> Vec<Segment> {
    let mut p = Pipeline::new(cfg).unwrap();
    let mut c = Collector::default();
    for f in frames {
        p.push(f)
            .unwrap_or_else(|e| panic!("{:?} seq {} refused: {e}", f.kind, f.seq));
        c.take(&mut p);
    }
    p.finish().unwrap();
    c.take(&mut p);
    c.done
}
