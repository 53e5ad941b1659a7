//! H.264 / AVC parameter sets and slice headers: what the engine needs to
//! accept a stream (dimensions, progressive only, slice types), the RFC 6381
//! codec string, and the `avcC` AVCDecoderConfigurationRecord.
//!
//! All functions take NAL units without start codes but with the one-byte
//! NAL header.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use crate::bits::BitReader;
use crate::video::SliceKind;
use crate::{Error, ErrorKind, Result};

/// `nal_unit_type` of a coded slice of a non-IDR picture.
pub const NAL_SLICE: u8 = 1;
/// `nal_unit_type` of a coded slice of an IDR picture.
pub const NAL_IDR: u8 = 5;
/// `nal_unit_type` of an SEI message.
pub const NAL_SEI: u8 = 6;
/// `nal_unit_type` of a sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// `nal_unit_type` of a picture parameter set.
pub const NAL_PPS: u8 = 8;
/// `nal_unit_type` of an access unit delimiter.
pub const NAL_AUD: u8 = 9;

/// `nal_unit_type` of a NAL unit (its first byte), or `None` if empty.
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| b & 0x1F)
}

/// The fields of a sequence parameter set that ivcs uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sps {
    /// `profile_idc`.
    pub profile_idc: u8,
    /// The byte of `constraint_set0..5_flag` and reserved bits.
    pub constraint_flags: u8,
    /// `level_idc`.
    pub level_idc: u8,
    /// `seq_parameter_set_id` (0..=31).
    pub sps_id: u8,
    /// `chroma_format_idc` (0..=3; 1 when absent).
    pub chroma_format_idc: u8,
    /// `separate_colour_plane_flag`.
    pub separate_colour_plane: bool,
    /// `bit_depth_luma_minus8 + 8`.
    pub bit_depth_luma: u8,
    /// `bit_depth_chroma_minus8 + 8`.
    pub bit_depth_chroma: u8,
    /// `log2_max_frame_num_minus4 + 4`.
    pub log2_max_frame_num: u8,
    /// `pic_order_cnt_type` (0..=2).
    pub pic_order_cnt_type: u8,
    /// `log2_max_pic_order_cnt_lsb_minus4 + 4` (0 unless POC type 0).
    pub log2_max_poc_lsb: u8,
    /// `max_num_ref_frames`.
    pub max_num_ref_frames: u32,
    /// Display width after cropping.
    pub width: u32,
    /// Display height after cropping.
    pub height: u32,
}

/// Profiles whose SPS carries chroma format, bit depths and scaling lists.
fn has_chroma_info(profile_idc: u8) -> bool {
    matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

/// Skip one `scaling_list()` of `size` coefficients (7.3.2.1.1.1).
fn skip_scaling_list(r: &mut BitReader<'_>, size: u32) -> Result<()> {
    let mut last: i32 = 8;
    let mut next: i32 = 8;
    for _ in 0..size {
        if next != 0 {
            let delta = r.read_se_range(-128, 127, "delta_scale")?;
            next = (last + delta + 256).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// Check the NAL header of `nal` for type `want` and return the payload.
fn payload<'a>(nal: &'a [u8], want: u8, what: &str) -> Result<&'a [u8]> {
    let (&h, rest) = nal
        .split_first()
        .ok_or_else(|| Error::malformed(format!("empty {what} NAL unit")))?;
    if h & 0x80 != 0 {
        return Err(Error::malformed(format!("{what}: forbidden_zero_bit set")));
    }
    if h & 0x1F != want {
        return Err(Error::malformed(format!(
            "{what}: NAL unit type {} (expected {want})",
            h & 0x1F
        )));
    }
    Ok(rest)
}

/// Parse a sequence parameter set (NAL header included).
///
/// Interlaced streams (`frame_mbs_only_flag == 0`) are
/// [`ErrorKind::Unsupported`].
pub fn parse_sps(nal: &[u8]) -> Result<Sps> {
    let mut r = BitReader::new(payload(nal, NAL_SPS, "SPS")?);
    let profile_idc = r.read_bits(8)? as u8;
    let constraint_flags = r.read_bits(8)? as u8;
    let level_idc = r.read_bits(8)? as u8;
    let sps_id = r.read_ue_max(31, "seq_parameter_set_id")? as u8;
    let mut chroma_format_idc = 1u8;
    let mut separate_colour_plane = false;
    let mut bit_depth_luma = 8u8;
    let mut bit_depth_chroma = 8u8;
    if has_chroma_info(profile_idc) {
        chroma_format_idc = r.read_ue_max(3, "chroma_format_idc")? as u8;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.read_bit()?;
        }
        bit_depth_luma = 8 + r.read_ue_max(6, "bit_depth_luma_minus8")? as u8;
        bit_depth_chroma = 8 + r.read_ue_max(6, "bit_depth_chroma_minus8")? as u8;
        r.skip_bits(1)?; // qpprime_y_zero_transform_bypass_flag
        if r.read_bit()? {
            // seq_scaling_matrix_present_flag: 6 4x4 lists, then 2 or 6 8x8.
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.read_bit()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    let log2_max_frame_num = 4 + r.read_ue_max(12, "log2_max_frame_num_minus4")? as u8;
    let pic_order_cnt_type = r.read_ue_max(2, "pic_order_cnt_type")? as u8;
    let mut log2_max_poc_lsb = 0u8;
    match pic_order_cnt_type {
        0 => log2_max_poc_lsb = 4 + r.read_ue_max(12, "log2_max_pic_order_cnt_lsb_minus4")? as u8,
        1 => {
            r.skip_bits(1)?; // delta_pic_order_always_zero_flag
            r.read_se()?; // offset_for_non_ref_pic
            r.read_se()?; // offset_for_top_to_bottom_field
            let n = r.read_ue_max(255, "num_ref_frames_in_pic_order_cnt_cycle")?;
            for _ in 0..n {
                r.read_se()?; // offset_for_ref_frame
            }
        }
        _ => {}
    }
    let max_num_ref_frames = r.read_ue_max(16, "max_num_ref_frames")?;
    r.skip_bits(1)?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(r.read_ue_max(1 << 16, "pic_width_in_mbs_minus1")?) + 1;
    let height_map_units = u64::from(r.read_ue_max(1 << 16, "pic_height_in_map_units_minus1")?) + 1;
    let frame_mbs_only = r.read_bit()?;
    if !frame_mbs_only {
        return Err(Error::unsupported(
            "H.264 interlaced coding (frame_mbs_only_flag = 0)",
        ));
    }
    r.skip_bits(1)?; // direct_8x8_inference_flag
    let (mut crop_l, mut crop_r, mut crop_t, mut crop_b) = (0u64, 0u64, 0u64, 0u64);
    if r.read_bit()? {
        crop_l = r.read_ue()?.into();
        crop_r = r.read_ue()?.into();
        crop_t = r.read_ue()?.into();
        crop_b = r.read_ue()?.into();
    }
    // The VUI that may follow carries nothing ivcs needs.

    // ChromaArrayType 0 (monochrome or separate planes) crops in luma
    // samples; otherwise in chroma sample units (Table 6-1).
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (crop_unit_x, crop_unit_y) = match chroma_array_type {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let full_w = width_mbs * 16;
    let full_h = height_map_units * 16; // frame_mbs_only: map units are MBs
    let w = full_w.checked_sub((crop_l + crop_r) * crop_unit_x);
    let h = full_h.checked_sub((crop_t + crop_b) * crop_unit_y);
    let (width, height) = match (w, h) {
        (Some(w), Some(h)) if w > 0 && h > 0 => (w as u32, h as u32),
        _ => {
            return Err(Error::malformed(format!(
                "SPS cropping ({crop_l},{crop_r},{crop_t},{crop_b}) exceeds {full_w}x{full_h}"
            )));
        }
    };
    Ok(Sps {
        profile_idc,
        constraint_flags,
        level_idc,
        sps_id,
        chroma_format_idc,
        separate_colour_plane,
        bit_depth_luma,
        bit_depth_chroma,
        log2_max_frame_num,
        pic_order_cnt_type,
        log2_max_poc_lsb,
        max_num_ref_frames,
        width,
        height,
    })
}

/// The ids of a picture parameter set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pps {
    /// `pic_parameter_set_id` (0..=255).
    pub pps_id: u8,
    /// `seq_parameter_set_id` it refers to (0..=31).
    pub sps_id: u8,
    /// `entropy_coding_mode_flag` (CABAC).
    pub entropy_coding_mode: bool,
}

/// Parse the start of a picture parameter set (NAL header included).
pub fn parse_pps(nal: &[u8]) -> Result<Pps> {
    let mut r = BitReader::new(payload(nal, NAL_PPS, "PPS")?);
    let pps_id = r.read_ue_max(255, "pic_parameter_set_id")? as u8;
    let sps_id = r.read_ue_max(31, "seq_parameter_set_id")? as u8;
    let entropy_coding_mode = r.read_bit()?;
    Ok(Pps {
        pps_id,
        sps_id,
        entropy_coding_mode,
    })
}

/// The first fields of a slice header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SliceHeader {
    /// `first_mb_in_slice`.
    pub first_mb_in_slice: u32,
    /// `slice_type` (0..=9; values 5..=9 say all slices of the picture
    /// have the same type).
    pub slice_type: u8,
    /// `pic_parameter_set_id`.
    pub pps_id: u8,
}

impl SliceHeader {
    /// The slice kind: SP counts as P and SI as I.
    pub fn kind(&self) -> SliceKind {
        match self.slice_type % 5 {
            0 | 3 => SliceKind::P,
            1 => SliceKind::B,
            _ => SliceKind::I,
        }
    }
}

/// Parse the start of the slice header of a coded slice NAL unit
/// (types 1 and 5, NAL header included).
pub fn parse_slice_header(nal: &[u8]) -> Result<SliceHeader> {
    let (&h, rest) = nal
        .split_first()
        .ok_or_else(|| Error::malformed("empty slice NAL unit"))?;
    if !matches!(h & 0x1F, 1..=5) {
        return Err(Error::malformed(format!(
            "NAL unit type {} is not a coded slice",
            h & 0x1F
        )));
    }
    let mut r = BitReader::new(rest);
    let first_mb_in_slice = r.read_ue()?;
    let slice_type = r.read_ue_max(9, "slice_type")? as u8;
    let pps_id = r.read_ue_max(255, "pic_parameter_set_id")? as u8;
    Ok(SliceHeader {
        first_mb_in_slice,
        slice_type,
        pps_id,
    })
}

/// The RFC 6381 codec string of an SPS, e.g. `avc1.4D401E`.
pub fn codec_string(sps: &Sps) -> String {
    format!(
        "avc1.{:02X}{:02X}{:02X}",
        sps.profile_idc, sps.constraint_flags, sps.level_idc
    )
}

/// Append a parameter set with its 16-bit length.
fn push_ps(out: &mut Vec<u8>, ps: &[u8], what: &str) -> Result<()> {
    let len = u16::try_from(ps.len())
        .map_err(|_| Error::new(ErrorKind::TooLarge, format!("{what} of {} bytes", ps.len())))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(ps);
    Ok(())
}

/// The AVCDecoderConfigurationRecord (`avcC` box body, ISO/IEC 14496-15
/// 5.3.3.1) for these parameter sets (NAL units without start codes).
/// Profile, compatibility and level come from the first SPS.
pub fn decoder_config(sps: &[&[u8]], pps: &[&[u8]]) -> Result<Vec<u8>> {
    let first = sps
        .first()
        .ok_or_else(|| Error::malformed("avcC needs at least one SPS"))?;
    let parsed = parse_sps(first)?;
    if pps.is_empty() {
        return Err(Error::malformed("avcC needs at least one PPS"));
    }
    let n_sps = u8::try_from(sps.len())
        .ok()
        .filter(|&n| n <= 31)
        .ok_or_else(|| Error::new(ErrorKind::TooLarge, format!("{} SPS for avcC", sps.len())))?;
    let n_pps = u8::try_from(pps.len())
        .map_err(|_| Error::new(ErrorKind::TooLarge, format!("{} PPS for avcC", pps.len())))?;
    let size = 7 + 4 + sps.iter().chain(pps).map(|p| p.len() + 2).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&[
        1, // configurationVersion
        parsed.profile_idc,
        parsed.constraint_flags,
        parsed.level_idc,
        0xFF,         // reserved 6 bits + lengthSizeMinusOne = 3
        0xE0 | n_sps, // reserved 3 bits + numOfSequenceParameterSets
    ]);
    for s in sps {
        push_ps(&mut out, s, "SPS")?;
    }
    out.push(n_pps);
    for p in pps {
        push_ps(&mut out, p, "PPS")?;
    }
    if matches!(parsed.profile_idc, 100 | 110 | 122 | 144) {
        out.extend_from_slice(&[
            0xFC | parsed.chroma_format_idc,
            0xF8 | (parsed.bit_depth_luma - 8),
            0xF8 | (parsed.bit_depth_chroma - 8),
            0, // numOfSequenceParameterSetExt
        ]);
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// libx264 main profile SPS for 320x240 (from `ffmpeg ... -profile:v main`).
    pub(crate) const SPS_MAIN_320X240: [u8; 24] = [
        0x67, 0x4D, 0x40, 0x0D, 0xD9, 0x01, 0x41, 0xFB, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
        0x00, 0x00, 0x03, 0x03, 0x20, 0xF1, 0x42, 0xA4, 0x80,
    ];

    #[test]
    fn parses_main_sps() {
        let s = parse_sps(&SPS_MAIN_320X240).unwrap();
        assert_eq!(
            (s.profile_idc, s.constraint_flags, s.level_idc),
            (77, 0x40, 13)
        );
        assert_eq!((s.width, s.height), (320, 240));
        assert_eq!(codec_string(&s), "avc1.4D400D");
    }

    #[test]
    fn slice_kinds() {
        for (t, k) in [
            (0, SliceKind::P),
            (1, SliceKind::B),
            (2, SliceKind::I),
            (3, SliceKind::P),
            (4, SliceKind::I),
            (5, SliceKind::P),
            (6, SliceKind::B),
            (7, SliceKind::I),
        ] {
            let h = SliceHeader {
                first_mb_in_slice: 0,
                slice_type: t,
                pps_id: 0,
            };
            assert_eq!(h.kind(), k);
        }
        // IDR: first_mb 0 (1), slice_type 7 (0001000), pps 0 (1)
        let nal = [0x65, 0b1000_1000, 0b1000_0000];
        let h = parse_slice_header(&nal).unwrap();
        assert_eq!((h.first_mb_in_slice, h.slice_type, h.pps_id), (0, 7, 0));
        assert!(parse_slice_header(&[0x67, 0x88]).is_err());
        assert!(parse_slice_header(&[0x65]).is_err());
        // slice_type 10 is out of range.
        assert!(parse_slice_header(&[0x65, 0b1000_1011, 0x80]).is_err());
    }

    #[test]
    fn rejects_bad_sps() {
        assert!(parse_sps(&[]).is_err());
        assert!(parse_sps(&[0x67]).is_err());
        assert!(parse_sps(&[0xE7, 0x4D, 0x40, 0x1E]).is_err());
        assert!(parse_sps(&[0x68, 0x4D, 0x40, 0x1E]).is_err());
        // The fields ivcs reads end in byte 8 (the VUI is not parsed).
        for n in 0..8 {
            assert!(parse_sps(&SPS_MAIN_320X240[..n]).is_err(), "{n}");
        }
        for n in 8..SPS_MAIN_320X240.len() {
            assert_eq!(parse_sps(&SPS_MAIN_320X240[..n]).unwrap().width, 320);
        }
    }

    #[test]
    fn avcc_layout() {
        let pps = [0x68, 0xEB, 0xC3, 0xCB, 0x20];
        let c = decoder_config(&[&SPS_MAIN_320X240], &[&pps]).unwrap();
        assert_eq!(&c[..6], &[1, 0x4D, 0x40, 0x0D, 0xFF, 0xE1]);
        assert_eq!(&c[6..8], &[0, 24]);
        assert_eq!(&c[8..32], &SPS_MAIN_320X240);
        assert_eq!(&c[32..35], &[1, 0, 5]);
        assert_eq!(&c[35..], &pps);
        assert!(decoder_config(&[], &[&pps]).is_err());
        assert!(decoder_config(&[&SPS_MAIN_320X240], &[]).is_err());
    }
}
