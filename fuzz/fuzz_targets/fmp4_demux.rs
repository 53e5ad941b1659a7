//! Fuzz the fragmented-MP4 demuxer, and the MP4 export behind it.
//!
//! Input: two bytes of settings (chunk size, sample-size cap), then the
//! segment. Any input must demux without an error under `OnDamage::Skip`,
//! give the same samples whether fed in chunks or whole, and keep every
//! sample within the cap. The samples then go through both export
//! passes, which must agree with each other and with the promised size.
#![no_main]

use ivcs_media::demux::OnDamage;
use ivcs_media::fmp4_demux::{Fmp4DemuxConfig, Fmp4Demuxer, Fmp4Frame, Fmp4Track, TrackConfig};
use ivcs_media::mp4_export::Mp4ExportBuilder;
use ivcs_media::{Track, VideoParams};
use libfuzzer_sys::fuzz_target;

fn demux(segment: &[u8], chunk: usize, cfg: Fmp4DemuxConfig) -> (Vec<Fmp4Frame>, Vec<Fmp4Track>) {
    let mut d = Fmp4Demuxer::new(cfg);
    let mut out = Vec::new();
    for c in segment.chunks(chunk) {
        d.push(c, &mut out)
            .expect("damage is skipped, never an error");
    }
    d.finish(&mut out)
        .expect("damage is skipped, never an error");
    (out, d.tracks().to_vec())
}

/// `t` in `timescale` as 90 kHz.
fn to_90k(t: u64, timescale: u32) -> Option<u64> {
    let v = u128::from(t) * 90_000 / u128::from(timescale.max(1));
    u64::try_from(v).ok()
}

fn export(tracks: &[Fmp4Track], frames: &[Fmp4Frame]) {
    let Some((vt, video)) = tracks.iter().find_map(|t| match &t.config {
        TrackConfig::Video {
            codec,
            decoder_config,
            ..
        } => Some((
            t,
            VideoParams::from_decoder_config(*codec, decoder_config).ok()?,
        )),
        _ => None,
    }) else {
        return;
    };
    let at = tracks.iter().find(|t| t.track == Track::Audio);
    let audio = at.and_then(|t| match &t.config {
        TrackConfig::Audio(a) => Some(a.clone()),
        _ => None,
    });
    let Ok(mut b) = Mp4ExportBuilder::new(&video, audio.as_ref()) else {
        return;
    };
    let mut kept = Vec::new();
    for f in frames {
        let r = if f.track_id == vt.track_id {
            let dts = to_90k(f.decode_time, vt.timescale);
            let pts = f
                .decode_time
                .checked_add_signed(f.composition_offset)
                .and_then(|t| to_90k(t, vt.timescale));
            match (pts, dts) {
                (Some(p), Some(d)) => b.add_video(p, d, f.data.len() as u32, f.sync),
                _ => continue,
            }
        } else if let Some(at) = at.filter(|t| t.track_id == f.track_id) {
            match to_90k(f.decode_time, at.timescale) {
                Some(t) => b.add_audio(t, f.data.len() as u32),
                None => continue,
            }
        } else {
            continue;
        };
        if r.is_ok() {
            kept.push(f);
        }
    }
    let Ok(plan) = b.finish(None) else {
        return;
    };
    let mut file = plan.header().to_vec();
    let mut p = plan.payload();
    for f in kept {
        if f.track_id == vt.track_id {
            p.push_video(&f.data, &mut file)
        } else {
            p.push_audio(&f.data, &mut file)
        }
        .expect("pass 2 takes what pass 1 took");
    }
    p.finish().expect("pass 2 is complete");
    assert_eq!(file.len() as u64, plan.total_size());
}

fuzz_target!(|data: &[u8]| {
    let Some((&[chunk, cap], segment)) = data.split_first_chunk::<2>() else {
        return;
    };
    let cfg = Fmp4DemuxConfig {
        max_frame_bytes: 64 + usize::from(cap) * 256,
        on_damage: OnDamage::Skip,
    };
    let (frames, tracks) = demux(segment, 1 + usize::from(chunk) * 3, cfg);
    let (whole, _) = demux(segment, segment.len().max(1), cfg);
    assert_eq!(frames, whole, "chunking changed the output");
    assert!(frames.iter().all(|f| f.data.len() <= cfg.max_frame_bytes));
    export(&tracks, &frames);
});
