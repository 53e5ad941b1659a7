//! Synthetic camera media: H.264 access units with real SPS/PPS for the
//! configured resolution (the engine parses them) and slice payloads of the
//! configured bitrate, and AAC-LC frames with real ADTS headers.
//!
//! Every payload carries a tag — camera, channel, stream and sequence number
//! — right after its first byte, so the checker can read back from the
//! cloud's stored segments exactly which frames arrived, in which order, and
//! whether any is missing or duplicated. The payloads are not decodable
//! pictures or sound: the simulation checks delivery, not pixels (the
//! ffmpeg tests do that).

use ivcs_host::bindings::ivcs::engine::types as wt;

/// Writes bits MSB first, for parameter sets.
#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    bit: u8,
}

impl BitWriter {
    fn bit(&mut self, b: bool) {
        if self.bit == 0 {
            self.bytes.push(0);
        }
        if b && let Some(last) = self.bytes.last_mut() {
            *last |= 0x80 >> self.bit;
        }
        self.bit = (self.bit + 1) % 8;
    }

    fn bits(&mut self, v: u32, n: u32) {
        for i in (0..n).rev() {
            self.bit(v >> i & 1 == 1);
        }
    }

    /// Unsigned Exp-Golomb.
    fn ue(&mut self, v: u32) {
        let x = u64::from(v) + 1;
        let len = 64 - x.leading_zeros();
        for _ in 1..len {
            self.bit(false);
        }
        for i in (0..len).rev() {
            self.bit(x >> i & 1 == 1);
        }
    }

    /// Signed Exp-Golomb (only 0 is used here).
    fn se0(&mut self) {
        self.ue(0);
    }

    /// rbsp_trailing_bits, then emulation prevention.
    fn finish(mut self) -> Vec<u8> {
        self.bit(true);
        while self.bit != 0 {
            self.bit(false);
        }
        let mut out = Vec::with_capacity(self.bytes.len() + 4);
        let mut zeros = 0;
        for b in self.bytes {
            if zeros >= 2 && b <= 3 {
                out.push(3);
                zeros = 0;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            out.push(b);
        }
        out
    }
}

/// Main-profile SPS (level 4.0, POC type 2, one reference frame) for
/// `width` x `height`, cropped when the height is not a multiple of 16.
pub fn h264_sps(width: u32, height: u32) -> Vec<u8> {
    let mbs_w = width.div_ceil(16);
    let mbs_h = height.div_ceil(16);
    let mut w = BitWriter::default();
    w.bits(0x67, 8); // nal header: ref_idc 3, type 7
    w.bits(77, 8); // profile_idc: Main
    w.bits(0, 8); // constraint flags
    w.bits(40, 8); // level_idc 4.0
    w.ue(0); // seq_parameter_set_id
    w.ue(0); // log2_max_frame_num_minus4
    w.ue(2); // pic_order_cnt_type
    w.ue(1); // max_num_ref_frames
    w.bit(false); // gaps_in_frame_num_value_allowed_flag
    w.ue(mbs_w - 1);
    w.ue(mbs_h - 1);
    w.bit(true); // frame_mbs_only_flag
    w.bit(true); // direct_8x8_inference_flag
    let crop_right = (mbs_w * 16 - width) / 2;
    let crop_bottom = (mbs_h * 16 - height) / 2;
    let crop = crop_right != 0 || crop_bottom != 0;
    w.bit(crop);
    if crop {
        w.ue(0);
        w.ue(crop_right);
        w.ue(0);
        w.ue(crop_bottom);
    }
    w.bit(false); // vui_parameters_present_flag
    w.finish()
}

/// The PPS that goes with [`h264_sps`] (CAVLC).
pub fn h264_pps() -> Vec<u8> {
    let mut w = BitWriter::default();
    w.bits(0x68, 8); // nal header: ref_idc 3, type 8
    w.ue(0); // pic_parameter_set_id
    w.ue(0); // seq_parameter_set_id
    w.bit(false); // entropy_coding_mode_flag
    w.bit(false); // bottom_field_pic_order_in_frame_present_flag
    w.ue(0); // num_slice_groups_minus1
    w.ue(0); // num_ref_idx_l0_default_active_minus1
    w.ue(0); // num_ref_idx_l1_default_active_minus1
    w.bit(false); // weighted_pred_flag
    w.bits(0, 2); // weighted_bipred_idc
    w.se0(); // pic_init_qp_minus26
    w.se0(); // pic_init_qs_minus26
    w.se0(); // chroma_qp_index_offset
    w.bit(true); // deblocking_filter_control_present_flag
    w.bit(false); // constrained_intra_pred_flag
    w.bit(false); // redundant_pic_cnt_present_flag
    w.finish()
}

/// What a payload tag identifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag {
    /// Camera index.
    pub camera: u32,
    /// 0 video, 1 audio.
    pub stream: u8,
    /// The stream's frame number (the `u32Seq` firmware pushes).
    pub seq: u32,
}

/// Tag bytes: 7 bits per byte with the top bit set, so a tag never contains
/// a zero byte (no start-code emulation) and reads back unambiguously.
const TAG_LEN: usize = 10;

fn put_tag(out: &mut Vec<u8>, t: Tag) {
    let v = (u64::from(t.camera) << 40) | (u64::from(t.stream) << 32) | u64::from(t.seq);
    for i in (0..TAG_LEN).rev() {
        out.push(0x80 | ((v >> (7 * i)) & 0x7F) as u8);
    }
}

/// Reads a tag written by [`put_tag`] at the start of `b`.
pub fn read_tag(b: &[u8]) -> Option<Tag> {
    let bytes = b.get(..TAG_LEN)?;
    let mut v = 0u64;
    for &x in bytes {
        if x & 0x80 == 0 {
            return None;
        }
        v = (v << 7) | u64::from(x & 0x7F);
    }
    Some(Tag {
        camera: u32::try_from(v >> 40).ok()?,
        stream: ((v >> 32) & 0xFF) as u8,
        seq: (v & 0xFFFF_FFFF) as u32,
    })
}

/// Filler that never makes `00 00 0x`: bytes 1..=255 cycling.
fn fill(out: &mut Vec<u8>, n: usize, salt: u32) {
    out.extend((0..n).map(|i| ((i as u32).wrapping_add(salt) % 255 + 1) as u8));
}

/// One H.264 access unit (Annex-B): with SPS and PPS and an IDR slice when
/// `key`, else a P slice; `size` bytes in all (at least the headers).
pub fn h264_access_unit(sps: &[u8], pps: &[u8], key: bool, tag: Tag, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size.max(64));
    if key {
        for ps in [sps, pps] {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(ps);
        }
    }
    out.extend_from_slice(&[0, 0, 0, 1]);
    // Slice NAL header, then first_mb_in_slice = 0 (a single `1` bit).
    out.push(if key { 0x65 } else { 0x41 });
    out.push(0x88);
    put_tag(&mut out, tag);
    let rest = size.saturating_sub(out.len());
    fill(&mut out, rest, tag.seq);
    out
}

/// The tag of a stored H.264 access unit: the slice NAL unit's.
pub fn h264_tag(au: &[u8]) -> Option<Tag> {
    // The slice is the last NAL unit; its payload starts after 0x65/0x41 0x88.
    let pos = au
        .windows(5)
        .rposition(|w| w[..3] == [0, 0, 1] && matches!(w[3], 0x65 | 0x41) && w[4] == 0x88)?;
    read_tag(&au[pos + 5..])
}

/// AAC-LC sample rate of the simulated microphone.
pub const AAC_RATE: u32 = 16_000;
/// Samples per AAC frame.
pub const AAC_SAMPLES: u32 = 1024;

/// One ADTS frame (AAC-LC, 16 kHz, mono) of `size` bytes in all.
pub fn adts_frame(tag: Tag, size: usize) -> Vec<u8> {
    let len = size.clamp(7 + TAG_LEN + 1, 0x1FFF);
    let mut out = Vec::with_capacity(len);
    // Both calls only fail for rates and lengths ADTS cannot express.
    if let Ok(params) = ivcs_media::AudioParams::aac_lc(AAC_RATE, 1)
        && let Ok(h) = ivcs_media::adts::write_header(&params, len - 7)
    {
        out.extend_from_slice(&h);
    }
    put_tag(&mut out, tag);
    let rest = len.saturating_sub(out.len());
    fill(&mut out, rest, tag.seq);
    out
}

/// The tag of a stored ADTS frame.
pub fn adts_tag(frame: &[u8]) -> Option<Tag> {
    read_tag(frame.get(7..)?)
}

/// Frame sizes that give `kbps` with one I frame per `gop` frames, the I
/// frame eight times a P frame (as real encoders roughly do).
pub fn frame_sizes(kbps: u32, fps: u32, gop: u32) -> (usize, usize) {
    let gop_bytes = u64::from(kbps) * 1000 / 8 * u64::from(gop) / u64::from(fps.max(1));
    let p = gop_bytes / (u64::from(gop.max(1)) - 1 + 8);
    let p = usize::try_from(p).unwrap_or(usize::MAX).max(64);
    (8 * p, p)
}

/// A camera's encoders as `push` sees them: tagged H.264 access units
/// (real SPS/PPS for the picture size, I and P frames sized for the
/// bitrate) and tagged ADTS frames.
pub struct Encoders {
    camera: u32,
    sps: Vec<u8>,
    pps: Vec<u8>,
    i_size: usize,
    p_size: usize,
}

impl Encoders {
    /// The encoders of camera `camera` configured as `spec`.
    pub fn new(spec: &crate::scenario::CameraSpec, camera: u32) -> Encoders {
        let (i_size, p_size) = frame_sizes(spec.bitrate_kbps, spec.fps, spec.fps * spec.gop_s);
        Encoders {
            camera,
            sps: h264_sps(spec.width, spec.height),
            pps: h264_pps(),
            i_size,
            p_size,
        }
    }

    /// Video frame `seq` (an IDR with SPS and PPS if `key`).
    pub fn video(&self, key: bool, seq: u32, pts_ms: u64) -> wt::Frame {
        let tag = Tag {
            camera: self.camera,
            stream: 0,
            seq,
        };
        let size = if key { self.i_size } else { self.p_size };
        wt::Frame {
            kind: wt::StreamKind::Video,
            frame_type: if key {
                wt::FrameType::I
            } else {
                wt::FrameType::P
            },
            pts_ms,
            seq,
            data: h264_access_unit(&self.sps, &self.pps, key, tag, size),
        }
    }

    /// Audio frame `seq`: one ADTS frame of 250 bytes.
    pub fn audio(&self, seq: u32, pts_ms: u64) -> wt::Frame {
        let tag = Tag {
            camera: self.camera,
            stream: 1,
            seq,
        };
        wt::Frame {
            kind: wt::StreamKind::Audio,
            frame_type: wt::FrameType::I,
            pts_ms,
            seq,
            data: adts_frame(tag, 250),
        }
    }
}

/// A stand-in JPEG snapshot for an event: SOI, a comment naming the camera
/// and event (read back by [`snapshot_label`]), `size` bytes of padding,
/// EOI. Enough for the engine and the cloud, which sniff and store
/// pictures without decoding them.
pub fn snapshot_jpeg(camera: u32, event_id: i32, size: usize) -> Vec<u8> {
    let label = format!("ivcs-sim cam{camera} event{event_id}");
    let mut j = vec![0xFF, 0xD8, 0xFF, 0xFE];
    j.extend_from_slice(&((label.len() + 2) as u16).to_be_bytes());
    j.extend_from_slice(label.as_bytes());
    j.resize(j.len() + size, 0x55);
    j.extend_from_slice(&[0xFF, 0xD9]);
    j
}

/// The label of a [`snapshot_jpeg`] (`None` for anything else).
pub fn snapshot_label(j: &[u8]) -> Option<String> {
    let rest = j.strip_prefix(&[0xFF, 0xD8, 0xFF, 0xFE][..])?;
    let len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
    let label = rest.get(2..len)?;
    j.ends_with(&[0xFF, 0xD9])
        .then(|| String::from_utf8_lossy(label).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parameter_sets_parse_with_the_media_crate() {
        let sps = h264_sps(1920, 1080);
        let parsed = ivcs_media::h264::parse_sps(&sps).unwrap();
        assert_eq!((parsed.width, parsed.height), (1920, 1080));
        ivcs_media::h264::parse_pps(&h264_pps()).unwrap();
    }

    #[test]
    fn tags_read_back_from_access_units_and_adts_frames() {
        let t = Tag {
            camera: 3,
            stream: 0,
            seq: 123_456,
        };
        let au = h264_access_unit(&h264_sps(640, 360), &h264_pps(), true, t, 5000);
        assert_eq!(au.len(), 5000);
        assert_eq!(h264_tag(&au), Some(t));
        // No start-code emulation: exactly the SPS, PPS and slice start.
        assert_eq!(au.windows(3).filter(|w| *w == [0, 0, 1]).count(), 3);
        let a = Tag { stream: 1, ..t };
        let f = adts_frame(a, 300);
        assert_eq!(f.len(), 300);
        assert_eq!(adts_tag(&f), Some(a));
        assert_eq!(ivcs_media::adts::parse_header(&f).unwrap().frame_len, 300);
    }

    #[test]
    fn frame_sizes_add_up_to_the_bitrate() {
        let (i, p) = frame_sizes(1000, 25, 50);
        let per_s = (i + 49 * p) as f64 / 2.0 * 8.0 / 1000.0;
        assert!((per_s - 1000.0).abs() < 5.0, "{per_s}");
    }

    #[test]
    fn a_snapshot_names_its_camera_and_event_and_looks_like_a_jpeg() {
        let j = snapshot_jpeg(3, 7, 100);
        assert!(j.starts_with(&[0xFF, 0xD8, 0xFF]));
        assert_eq!(snapshot_label(&j).as_deref(), Some("ivcs-sim cam3 event7"));
        assert_eq!(snapshot_label(&j[..j.len() - 1]), None);
        assert_eq!(snapshot_label(b"\x89PNG"), None);
    }
}
