//! Fuzz the MPEG-TS demuxer, and the MP4 export behind it.
//!
//! Input: two bytes of settings (chunk size, frame-size cap), then the
//! stream. Any stream must demux without an error under `OnDamage::Skip`,
//! give the same frames whether fed in chunks or whole, and keep every
//! frame within the cap. The frames then go through both export passes,
//! which must agree with each other and with the promised file size.
#![no_main]

use ivcs_media::demux::OnDamage;
use ivcs_media::mp4_export::{Mp4ExportBuilder, video_sample_size};
use ivcs_media::ts_demux::{TsDemuxConfig, TsDemuxer, TsFrame};
use ivcs_media::{AudioParams, Track, VideoCodec, VideoParams, adts};
use libfuzzer_sys::fuzz_target;

fn demux(stream: &[u8], chunk: usize, cfg: TsDemuxConfig) -> (Vec<TsFrame>, Option<VideoCodec>) {
    let mut d = TsDemuxer::new(cfg);
    let mut out = Vec::new();
    for c in stream.chunks(chunk) {
        d.push(c, &mut out)
            .expect("damage is skipped, never an error");
    }
    d.finish(&mut out)
        .expect("damage is skipped, never an error");
    (out, d.video_codec())
}

fn export(codec: VideoCodec, frames: &[TsFrame]) {
    let Some(key) = frames
        .iter()
        .find(|f| f.track == Track::Video && f.keyframe)
    else {
        return;
    };
    let Ok(video) = VideoParams::from_annexb(codec, &key.data) else {
        return;
    };
    let audio = frames
        .iter()
        .find(|f| f.track == Track::Audio)
        .and_then(|f| adts::parse_header(&f.data).ok())
        .and_then(|h| AudioParams::from_adts(&h).ok());
    let Ok(mut b) = Mp4ExportBuilder::new(&video, audio.as_ref()) else {
        return;
    };
    // Pass 1 keeps what the builder accepts (a refused sample changes
    // nothing), as a caller dropping bad frames would.
    let mut kept = Vec::new();
    for f in frames {
        let r = match f.track {
            Track::Video => video_sample_size(codec, &f.data)
                .and_then(|size| b.add_video(f.pts_90k, f.dts_90k, size, f.keyframe)),
            Track::Audio => {
                adts::payload(&f.data).and_then(|(_, raw)| b.add_audio(f.pts_90k, raw.len() as u32))
            }
        };
        if r.is_ok() {
            kept.push(f);
        }
    }
    let Ok(plan) = b.finish(kept.last().map(|f| f.dts_90k + 1)) else {
        return;
    };
    let mut file = plan.header().to_vec();
    let mut p = plan.payload();
    for f in kept {
        match f.track {
            Track::Video => p.push_video_annexb(&f.data, &mut file),
            Track::Audio => p.push_audio_adts(&f.data, &mut file),
        }
        .expect("pass 2 takes what pass 1 took");
    }
    p.finish().expect("pass 2 is complete");
    assert_eq!(file.len() as u64, plan.total_size());
}

fuzz_target!(|data: &[u8]| {
    let Some((&[chunk, cap], stream)) = data.split_first_chunk::<2>() else {
        return;
    };
    let cfg = TsDemuxConfig {
        max_frame_bytes: 64 + usize::from(cap) * 256,
        on_damage: OnDamage::Skip,
    };
    let (frames, codec) = demux(stream, 1 + usize::from(chunk) * 3, cfg);
    let (whole, _) = demux(stream, stream.len().max(1), cfg);
    assert_eq!(frames, whole, "chunking changed the output");
    assert!(frames.iter().all(|f| f.data.len() <= cfg.max_frame_bytes));
    if let Some(codec) = codec {
        export(codec, &frames);
    }
});
