//! What `configure` and `init` take (the Rust form of the WIT records
//! `device-config` and `init-params`), and their validation, exactly as the
//! spec and docs/ref/wit.md state it. Every refusal is `-602`
//! (`IV_ERR_CS_INIT_PRM_RANGE`) with a message naming the channel and the
//! field.

use crate::bail;
use crate::error::Result;
use crate::events::Channel;
use crate::pipeline::{Pipeline, PipelineConfig};
use crate::types::{AudioCodec, AvFormat, Container};
use serde::{Deserialize, Serialize};

/// Channel ids the engine accepts: 0..4 (the 5-channel header; the
/// 3-channel one uses 0..2).
pub const MAX_CHANNELS: usize = 5;

/// `u32MaxGopSize` must be a multiple of this (4 KB).
pub const GOP_SIZE_UNIT: u32 = 4096;

/// Largest accepted `u32MaxGopSize`, bytes. The spec sizes it for one GOP
/// (its example: 800 KB); 64 MiB is far beyond any camera's memory and
/// catches garbage values.
pub const MAX_GOP_SIZE: u32 = 64 << 20;

/// Target segment duration of the upload pipeline, ms (~10 s, the spec's
/// "导出的视频片段长度约为10秒").
pub const SEGMENT_MS: u32 = 10_000;

/// Longest accepted device secret, bytes.
const MAX_SECRET_BYTES: usize = 1024;

/// Device identity, given before `init`.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceConfig {
    /// The cloud's device id.
    pub device_id: String,
    /// The secret `ivcs cloud device add` printed, as its bytes.
    pub device_secret: Vec<u8>,
}

impl std::fmt::Debug for DeviceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceConfig")
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

/// `iv_cs_congestion_ctrl_s`: buffer-fill watermarks, bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Congestion {
    /// Watermark notifications wanted.
    pub enable: bool,
    /// Low mark.
    pub low_mark: u64,
    /// Warn mark.
    pub warn_mark: u64,
    /// High mark.
    pub high_mark: u64,
}

/// `iv_cs_event_report_opt_e`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventReportOpt {
    /// `CS_EVENT_VIDEO_REQ`.
    VideoRequired,
    /// `CS_EVENT_PIC_REQ`.
    PictureRequired,
    /// `CS_EVENT_VIDEO_OR_PIC_REQ`.
    VideoOrPicture,
}

/// Which optional firmware callbacks exist (start/stop always do).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptionalCallbacks {
    /// `iv_cs_ai_service_notify_cb`.
    pub ai_service_notify: bool,
    /// `iv_cs_event_capture_picture_cb`.
    pub capture_picture: bool,
    /// `iv_cs_event_picture_result_cb`.
    pub picture_result: bool,
    /// `iv_cs_event_report_result_cb`.
    pub event_report_result: bool,
    /// `iv_cs_notify_cb`.
    pub notify: bool,
    /// `iv_cs_get_balance_cb`.
    pub get_balance: bool,
    /// `iv_cs_dump_file_cb`.
    pub dump_file: bool,
}

/// `iv_cs_channel_params_s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelParams {
    /// Channel id.
    pub channel: Channel,
    /// Budget of not-yet-acknowledged bytes (`u32MaxGopSize`).
    pub max_gop_size: u32,
    /// Watermarks.
    pub congestion: Congestion,
    /// Audio/video format.
    pub av: AvFormat,
    /// Segment container.
    pub container: Container,
    /// What an event needs to be complete.
    pub event_report_opt: EventReportOpt,
}

impl ChannelParams {
    /// The upload pipeline's configuration for this channel, first frame at
    /// `start_utc_ms`.
    pub fn pipeline_config(&self, start_utc_ms: u64) -> PipelineConfig {
        PipelineConfig {
            av: self.av,
            container: self.container,
            segment_ms: SEGMENT_MS,
            start_utc_ms,
            max_frame_bytes: self.max_gop_size,
        }
    }
}

/// `iv_cs_init_parm_s`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitParams {
    /// One entry per channel to record (`channel_num` entries).
    pub channels: Vec<ChannelParams>,
    /// Optional callbacks present.
    pub callbacks: OptionalCallbacks,
}

/// Checks a device id the way the cloud does (1-96 of `[A-Za-z0-9._-]`,
/// starting with a letter or digit) and a non-empty secret.
pub fn check_device(cfg: &DeviceConfig) -> Result<()> {
    let id = &cfg.device_id;
    let ok = !id.is_empty()
        && id.len() <= 96
        && id.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        bail!(
            InvalidArgument,
            "configure: device id {id:?} must be 1-96 of A-Z a-z 0-9 . _ - starting with a letter or digit"
        );
    }
    if cfg.device_secret.is_empty() || cfg.device_secret.len() > MAX_SECRET_BYTES {
        bail!(
            InvalidArgument,
            "configure: the device secret must be 1-{MAX_SECRET_BYTES} bytes, got {}",
            cfg.device_secret.len()
        );
    }
    Ok(())
}

/// Checks `init` parameters. The mandatory start/stop callbacks are the C
/// layer's to check (-601): in the WIT they always exist.
pub fn check_init(p: &InitParams) -> Result<()> {
    if p.channels.is_empty() || p.channels.len() > MAX_CHANNELS {
        bail!(
            InvalidArgument,
            "init: channel_num {} is outside 1..={MAX_CHANNELS}",
            p.channels.len()
        );
    }
    let mut seen = [false; MAX_CHANNELS];
    for c in &p.channels {
        let Some(slot) = seen.get_mut(usize::from(c.channel)) else {
            bail!(
                InvalidArgument,
                "init: channel id {} is outside 0..={}",
                c.channel,
                MAX_CHANNELS - 1
            );
        };
        if *slot {
            bail!(InvalidArgument, "init: channel {} appears twice", c.channel);
        }
        *slot = true;
        check_channel(c)?;
    }
    Ok(())
}

fn check_channel(c: &ChannelParams) -> Result<()> {
    let ch = c.channel;
    let gop = c.max_gop_size;
    if gop == 0 || !gop.is_multiple_of(GOP_SIZE_UNIT) || gop > MAX_GOP_SIZE {
        bail!(
            InvalidArgument,
            "init: channel {ch}: u32MaxGopSize {gop} must be a non-zero multiple of {GOP_SIZE_UNIT} up to {MAX_GOP_SIZE}"
        );
    }
    let w = c.congestion;
    // Disabled watermarks are ignored: firmware often leaves them zero.
    if w.enable
        && !(w.low_mark > 0
            && w.low_mark < w.warn_mark
            && w.warn_mark < w.high_mark
            && w.high_mark <= u64::from(gop))
    {
        bail!(
            InvalidArgument,
            "init: channel {ch}: watermarks must satisfy 0 < low ({}) < warn ({}) < high ({}) <= u32MaxGopSize ({gop})",
            w.low_mark,
            w.warn_mark,
            w.high_mark
        );
    }
    if let Some(a) = c.av.audio
        && a.codec != AudioCodec::Aac
    {
        // The spec asks for packs of 1024 samples per channel; cameras send
        // 160 or 320 (20/40 ms at 8 kHz). The encoder repacks any whole
        // number of samples into 1024-sample AAC frames, so the declared
        // size is only checked for sense: from one sample to one second.
        let most = a.sample_rate.saturating_mul(u32::from(a.channels));
        if a.samples_per_frame == 0 || a.samples_per_frame > most {
            bail!(
                InvalidArgument,
                "init: channel {ch}: u32SampleNumPerFrame {} must be 1..={most} for {:?} at {} Hz with {} channel(s) (any pack size is repacked)",
                a.samples_per_frame,
                a.codec,
                a.sample_rate,
                a.channels
            );
        }
    }
    // The pipeline checks the rest of the format (rates, channel counts).
    Pipeline::new(c.pipeline_config(0)).map_err(|e| e.context(&format!("init: channel {ch}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{AudioFormat, VideoCodec};

    fn chan(channel: Channel) -> ChannelParams {
        ChannelParams {
            channel,
            max_gop_size: 800 * 1024,
            congestion: Congestion {
                enable: true,
                low_mark: 80 * 1024,
                warn_mark: 320 * 1024,
                high_mark: 640 * 1024,
            },
            av: AvFormat {
                video: VideoCodec::H264,
                width: 1280,
                height: 720,
                framerate: 25,
                audio: Some(AudioFormat {
                    codec: AudioCodec::G711a,
                    sample_rate: 8000,
                    channels: 1,
                    samples_per_frame: 1024,
                }),
            },
            container: Container::Ts,
            event_report_opt: EventReportOpt::VideoRequired,
        }
    }

    fn params(ch: Vec<ChannelParams>) -> InitParams {
        InitParams {
            channels: ch,
            callbacks: OptionalCallbacks::default(),
        }
    }

    #[test]
    fn valid_params_pass() {
        assert!(check_init(&params(vec![chan(0), chan(4)])).is_ok());
        // Cameras' G.711 packs: 20 and 40 ms at 8 kHz.
        for spf in [160, 320] {
            let mut c = chan(2);
            if let Some(a) = &mut c.av.audio {
                a.samples_per_frame = spf;
            }
            assert!(check_init(&params(vec![c])).is_ok(), "{spf} samples");
        }
        let mut c = chan(1);
        c.congestion = Congestion {
            enable: false,
            low_mark: 0,
            warn_mark: 0,
            high_mark: u64::MAX,
        };
        assert!(
            check_init(&params(vec![c])).is_ok(),
            "disabled marks are ignored"
        );
    }

    #[test]
    fn each_bad_field_is_a_range_error() {
        type Case = (&'static str, Box<dyn Fn(&mut ChannelParams)>);
        let bad: Vec<Case> = vec![
            ("gop 0", Box::new(|c| c.max_gop_size = 0)),
            ("gop not 4K", Box::new(|c| c.max_gop_size = 800 * 1000)),
            (
                "gop huge",
                Box::new(|c| c.max_gop_size = MAX_GOP_SIZE + 4096),
            ),
            ("low 0", Box::new(|c| c.congestion.low_mark = 0)),
            ("low>warn", Box::new(|c| c.congestion.low_mark = 400 * 1024)),
            (
                "warn>high",
                Box::new(|c| c.congestion.warn_mark = 700 * 1024),
            ),
            (
                "high>gop",
                Box::new(|c| c.congestion.high_mark = 900 * 1024),
            ),
            ("channel 5", Box::new(|c| c.channel = 5)),
            (
                "rate",
                Box::new(|c| {
                    if let Some(a) = &mut c.av.audio {
                        a.sample_rate = 7000
                    }
                }),
            ),
            (
                "spf 0",
                Box::new(|c| {
                    if let Some(a) = &mut c.av.audio {
                        a.samples_per_frame = 0
                    }
                }),
            ),
            (
                "spf over a second",
                Box::new(|c| {
                    if let Some(a) = &mut c.av.audio {
                        a.samples_per_frame = 8001
                    }
                }),
            ),
        ];
        for (what, f) in bad {
            let mut c = chan(0);
            f(&mut c);
            let e = check_init(&params(vec![c])).err();
            assert_eq!(e.map(|e| e.code()), Some(-602), "{what}");
        }
        assert!(check_init(&params(vec![])).is_err());
        assert!(check_init(&params(vec![chan(1), chan(1)])).is_err());
        assert!(check_init(&params((0..6).map(|_| chan(0)).collect())).is_err());
    }
}
