//! The speed floor of a simulation: the same camera's frames
//! ([`crate::media_gen`]: real SPS/PPS, sized I/P frames, ADTS) through the
//! engine component's offline muxer alone: no network, cloud, clocks or
//! checks. Every simulated byte has to be muxed by the real engine, so this
//! bounds how fast any simulation of that camera can run on the machine;
//! `ivcs sim --mux-floor` (and `make bench`) prints the simulation's speed
//! against it.

use crate::media_gen;
use crate::scenario::Scenario;
use anyhow::{Result, anyhow};
use ivcs_host::EngineRuntime;
use ivcs_host::bindings::exports::ivcs::engine::mux::MuxConfig;
use ivcs_host::bindings::ivcs::engine::types as wt;
use ivcs_host::mux::ComponentMuxer;
use std::time::{Duration, Instant};

/// The muxer's memory cap: frames are muxed as they come.
const MEMORY: usize = 64 << 20;

/// Muxes one camera of `scn` for the scenario's duration; returns the wall
/// time it took and the bytes muxed.
pub fn mux_floor(scn: &Scenario, rt: &EngineRuntime) -> Result<(Duration, u64)> {
    let spec = &scn.camera;
    let cfg = MuxConfig {
        av: crate::camera::av_format(spec),
        container: crate::camera::container(spec),
        segment_ms: 10_000,
        start_utc_ms: crate::clock::EPOCH_MS,
        max_frame_bytes: spec.budget_kb * 1024,
    };
    let t0 = Instant::now();
    let mut mux = ComponentMuxer::new(rt, &cfg, MEMORY)?
        .map_err(|e| anyhow!("the engine refused the mux config: {}", e.message))?;
    let enc = media_gen::Encoders::new(spec, 0);
    let gop = u64::from(spec.fps * spec.gop_s);
    let end_ms = scn.duration_s * 1000;
    let audio_ms =
        |k: u64| k * u64::from(media_gen::AAC_SAMPLES) * 1000 / u64::from(media_gen::AAC_RATE);
    let mut bytes = 0u64;
    let (mut vk, mut ak) = (0u64, 0u64);
    loop {
        let v_ms = vk * 1000 / u64::from(spec.fps);
        let a_ms = if spec.audio { audio_ms(ak) } else { u64::MAX };
        if v_ms.min(a_ms) >= end_ms {
            break;
        }
        let frame = if a_ms < v_ms {
            ak += 1;
            enc.audio(ak as u32, a_ms)
        } else {
            let (key, seq) = (vk.is_multiple_of(gop), vk as u32);
            vk += 1;
            enc.video(key, seq, v_ms)
        };
        bytes += count(mux.push(&frame)?)?;
    }
    bytes += count(mux.finish()?)?;
    Ok((t0.elapsed(), bytes))
}

fn count(
    r: Result<Vec<ivcs_host::bindings::exports::ivcs::engine::mux::MuxOutput>, wt::EngineError>,
) -> Result<u64> {
    use ivcs_host::bindings::exports::ivcs::engine::mux::MuxOutput;
    let out = r.map_err(|e| anyhow!("the engine refused a frame: {}", e.message))?;
    Ok(out
        .iter()
        .map(|o| match o {
            MuxOutput::Data(d) => d.len() as u64,
            _ => 0,
        })
        .sum())
}
