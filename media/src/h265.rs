//! H.265 / HEVC parameter sets and slice headers: profile/tier/level,
//! dimensions, bit depths, the PPS fields needed to reach `slice_type`, the
//! RFC 6381 codec string and the `hvcC` HEVCDecoderConfigurationRecord.
//!
//! All functions take NAL units without start codes but with the two-byte
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

use std::fmt::Write as _;

use crate::bits::BitReader;
use crate::video::SliceKind;
use crate::{Error, ErrorKind, Result};

/// `nal_unit_type` of a video parameter set.
pub const NAL_VPS: u8 = 32;
/// `nal_unit_type` of a sequence parameter set.
pub const NAL_SPS: u8 = 33;
/// `nal_unit_type` of a picture parameter set.
pub const NAL_PPS: u8 = 34;
/// `nal_unit_type` of an access unit delimiter.
pub const NAL_AUD: u8 = 35;
/// `nal_unit_type` of a prefix SEI message.
pub const NAL_SEI_PREFIX: u8 = 39;

/// The two-byte NAL unit header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NalHeader {
    /// `nal_unit_type` (0..=63).
    pub nal_type: u8,
    /// `nuh_layer_id` (0..=63).
    pub layer_id: u8,
    /// `TemporalId` (`nuh_temporal_id_plus1 - 1`).
    pub temporal_id: u8,
}

impl NalHeader {
    /// Whether this is a VCL NAL unit (types 0..=31).
    pub fn is_vcl(&self) -> bool {
        self.nal_type <= 31
    }

    /// Whether this is an IRAP picture's slice (BLA, IDR, CRA; 16..=23).
    pub fn is_irap(&self) -> bool {
        is_irap_type(self.nal_type)
    }
}

/// Whether `nal_unit_type` is an IRAP picture's slice (BLA, IDR, CRA).
pub fn is_irap_type(nal_type: u8) -> bool {
    (16..=23).contains(&nal_type)
}

/// Parse the NAL unit header; errors on truncation, `forbidden_zero_bit`,
/// or `nuh_temporal_id_plus1 == 0`.
pub fn nal_header(nal: &[u8]) -> Result<NalHeader> {
    let (b0, b1) = match nal {
        [b0, b1, ..] => (*b0, *b1),
        _ => return Err(Error::malformed("truncated H.265 NAL unit header")),
    };
    if b0 & 0x80 != 0 {
        return Err(Error::malformed("H.265 NAL unit: forbidden_zero_bit set"));
    }
    let tid_plus1 = b1 & 7;
    if tid_plus1 == 0 {
        return Err(Error::malformed(
            "H.265 NAL unit: nuh_temporal_id_plus1 = 0",
        ));
    }
    Ok(NalHeader {
        nal_type: (b0 >> 1) & 0x3F,
        layer_id: ((b0 & 1) << 5) | (b1 >> 3),
        temporal_id: tid_plus1 - 1,
    })
}

/// Check the header of `nal` for type `want` and return a reader over the payload.
fn reader<'a>(nal: &'a [u8], want: u8, what: &str) -> Result<BitReader<'a>> {
    let h = nal_header(nal)?;
    if h.nal_type != want {
        return Err(Error::malformed(format!(
            "{what}: NAL unit type {} (expected {want})",
            h.nal_type
        )));
    }
    Ok(BitReader::new(nal.get(2..).unwrap_or_default()))
}

/// The general part of `profile_tier_level()` (7.3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProfileTierLevel {
    /// `general_profile_space` (0..=3).
    pub profile_space: u8,
    /// `general_tier_flag` (true = High tier).
    pub tier: bool,
    /// `general_profile_idc`.
    pub profile_idc: u8,
    /// `general_profile_compatibility_flag[0..32]`, flag 0 in the MSB (as coded).
    pub compat_flags: u32,
    /// The 48 bits from `general_progressive_source_flag` to
    /// `general_inbld_flag`/reserved, as coded.
    pub constraint_flags: [u8; 6],
    /// `general_level_idc` (30 × level).
    pub level_idc: u8,
}

/// Parse `profile_tier_level(1, max_sub_layers_minus1)`, skipping the
/// sub-layer parts.
fn parse_ptl(r: &mut BitReader<'_>, max_sub_layers_minus1: u8) -> Result<ProfileTierLevel> {
    let profile_space = r.read_bits(2)? as u8;
    let tier = r.read_bit()?;
    let profile_idc = r.read_bits(5)? as u8;
    let compat_flags = r.read_bits(32)?;
    let c = r.read_u64_bits(48)?.to_be_bytes();
    let constraint_flags = [c[2], c[3], c[4], c[5], c[6], c[7]];
    let level_idc = r.read_bits(8)? as u8;
    let mut present = [(false, false); 8];
    for p in present.iter_mut().take(usize::from(max_sub_layers_minus1)) {
        *p = (r.read_bit()?, r.read_bit()?);
    }
    if max_sub_layers_minus1 > 0 {
        // reserved_zero_2bits for i in max_sub_layers_minus1..8
        r.skip_bits(2 * (8 - u32::from(max_sub_layers_minus1)))?;
    }
    for &(profile, level) in present.iter().take(usize::from(max_sub_layers_minus1)) {
        if profile {
            r.skip_bits(88)?; // sub_layer profile space .. reserved/inbld flag
        }
        if level {
            r.skip_bits(8)?; // sub_layer_level_idc
        }
    }
    Ok(ProfileTierLevel {
        profile_space,
        tier,
        profile_idc,
        compat_flags,
        constraint_flags,
        level_idc,
    })
}

/// The start of a video parameter set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vps {
    /// `vps_video_parameter_set_id`.
    pub vps_id: u8,
    /// `vps_max_sub_layers_minus1`.
    pub max_sub_layers_minus1: u8,
    /// `vps_temporal_id_nesting_flag`.
    pub temporal_id_nesting: bool,
    /// The general profile, tier and level.
    pub ptl: ProfileTierLevel,
}

/// Parse a video parameter set up to its profile_tier_level.
pub fn parse_vps(nal: &[u8]) -> Result<Vps> {
    let mut r = reader(nal, NAL_VPS, "VPS")?;
    let vps_id = r.read_bits(4)? as u8;
    r.skip_bits(2)?; // vps_base_layer_internal_flag, vps_base_layer_available_flag
    r.skip_bits(6)?; // vps_max_layers_minus1
    let max_sub_layers_minus1 = r.read_bits(3)? as u8;
    if max_sub_layers_minus1 > 6 {
        return Err(Error::malformed("VPS: vps_max_sub_layers_minus1 = 7"));
    }
    let temporal_id_nesting = r.read_bit()?;
    r.skip_bits(16)?; // vps_reserved_0xffff_16bits
    let ptl = parse_ptl(&mut r, max_sub_layers_minus1)?;
    Ok(Vps {
        vps_id,
        max_sub_layers_minus1,
        temporal_id_nesting,
        ptl,
    })
}

/// The fields of a sequence parameter set that ivcs uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sps {
    /// `sps_video_parameter_set_id`.
    pub vps_id: u8,
    /// `sps_max_sub_layers_minus1` (0..=6).
    pub max_sub_layers_minus1: u8,
    /// `sps_temporal_id_nesting_flag`.
    pub temporal_id_nesting: bool,
    /// The general profile, tier and level.
    pub ptl: ProfileTierLevel,
    /// `sps_seq_parameter_set_id` (0..=15).
    pub sps_id: u8,
    /// `chroma_format_idc` (0..=3).
    pub chroma_format_idc: u8,
    /// `separate_colour_plane_flag`.
    pub separate_colour_plane: bool,
    /// `pic_width_in_luma_samples` (coded width).
    pub coded_width: u32,
    /// `pic_height_in_luma_samples` (coded height).
    pub coded_height: u32,
    /// Display width after the conformance window.
    pub width: u32,
    /// Display height after the conformance window.
    pub height: u32,
    /// `bit_depth_luma_minus8 + 8`.
    pub bit_depth_luma: u8,
    /// `bit_depth_chroma_minus8 + 8`.
    pub bit_depth_chroma: u8,
}

/// Parse a sequence parameter set up to the bit depths.
pub fn parse_sps(nal: &[u8]) -> Result<Sps> {
    let mut r = reader(nal, NAL_SPS, "SPS")?;
    let vps_id = r.read_bits(4)? as u8;
    let max_sub_layers_minus1 = r.read_bits(3)? as u8;
    if max_sub_layers_minus1 > 6 {
        return Err(Error::malformed("SPS: sps_max_sub_layers_minus1 = 7"));
    }
    let temporal_id_nesting = r.read_bit()?;
    let ptl = parse_ptl(&mut r, max_sub_layers_minus1)?;
    let sps_id = r.read_ue_max(15, "sps_seq_parameter_set_id")? as u8;
    let chroma_format_idc = r.read_ue_max(3, "chroma_format_idc")? as u8;
    let separate_colour_plane = chroma_format_idc == 3 && r.read_bit()?;
    // Level 6.2 allows 8192x4320 (35,651,584 samples); 1 << 16 is ample.
    let coded_width = r.read_ue_max(1 << 16, "pic_width_in_luma_samples")?;
    let coded_height = r.read_ue_max(1 << 16, "pic_height_in_luma_samples")?;
    let (mut left, mut right, mut top, mut bottom) = (0u64, 0u64, 0u64, 0u64);
    if r.read_bit()? {
        left = r.read_ue()?.into();
        right = r.read_ue()?.into();
        top = r.read_ue()?.into();
        bottom = r.read_ue()?.into();
    }
    let bit_depth_luma = 8 + r.read_ue_max(8, "bit_depth_luma_minus8")? as u8;
    let bit_depth_chroma = 8 + r.read_ue_max(8, "bit_depth_chroma_minus8")? as u8;
    // ChromaArrayType 0 (monochrome or separate planes) has unit offsets
    // (Table 6-1); otherwise offsets are in chroma samples.
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (sub_w, sub_h) = match chroma_array_type {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let w = u64::from(coded_width).checked_sub((left + right) * sub_w);
    let h = u64::from(coded_height).checked_sub((top + bottom) * sub_h);
    let (width, height) = match (w, h) {
        (Some(w), Some(h)) if w > 0 && h > 0 => (w as u32, h as u32),
        _ => {
            return Err(Error::malformed(format!(
                "SPS conformance window ({left},{right},{top},{bottom}) exceeds \
                 {coded_width}x{coded_height}"
            )));
        }
    };
    Ok(Sps {
        vps_id,
        max_sub_layers_minus1,
        temporal_id_nesting,
        ptl,
        sps_id,
        chroma_format_idc,
        separate_colour_plane,
        coded_width,
        coded_height,
        width,
        height,
        bit_depth_luma,
        bit_depth_chroma,
    })
}

/// The start of a picture parameter set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pps {
    /// `pps_pic_parameter_set_id` (0..=63).
    pub pps_id: u8,
    /// `pps_seq_parameter_set_id` (0..=15).
    pub sps_id: u8,
    /// `dependent_slice_segments_enabled_flag`.
    pub dependent_slice_segments_enabled: bool,
    /// `output_flag_present_flag`.
    pub output_flag_present: bool,
    /// `num_extra_slice_header_bits` (0..=7).
    pub num_extra_slice_header_bits: u8,
}

/// Parse the start of a picture parameter set.
pub fn parse_pps(nal: &[u8]) -> Result<Pps> {
    let mut r = reader(nal, NAL_PPS, "PPS")?;
    let pps_id = r.read_ue_max(63, "pps_pic_parameter_set_id")? as u8;
    let sps_id = r.read_ue_max(15, "pps_seq_parameter_set_id")? as u8;
    let dependent_slice_segments_enabled = r.read_bit()?;
    let output_flag_present = r.read_bit()?;
    let num_extra_slice_header_bits = r.read_bits(3)? as u8;
    Ok(Pps {
        pps_id,
        sps_id,
        dependent_slice_segments_enabled,
        output_flag_present,
        num_extra_slice_header_bits,
    })
}

/// The first fields of a slice segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SliceHeader {
    /// The NAL unit header.
    pub nal: NalHeader,
    /// `first_slice_segment_in_pic_flag`.
    pub first_slice_segment_in_pic: bool,
    /// `no_output_of_prior_pics_flag` (IRAP only; false otherwise).
    pub no_output_of_prior_pics: bool,
    /// `slice_pic_parameter_set_id`.
    pub pps_id: u8,
    /// `slice_type` (0 B, 1 P, 2 I); read only for the first slice segment
    /// of a picture (later ones need SPS-derived address widths).
    pub slice_type: Option<u8>,
}

impl SliceHeader {
    /// The slice kind, if `slice_type` was read.
    pub fn kind(&self) -> Option<SliceKind> {
        match self.slice_type? {
            0 => Some(SliceKind::B),
            1 => Some(SliceKind::P),
            _ => Some(SliceKind::I),
        }
    }
}

/// Parse the start of a slice segment header (NAL types 0..=31).
///
/// `pps_for` resolves `slice_pic_parameter_set_id` to its PPS; it is called
/// only for the first slice segment of a picture, whose `slice_type` sits
/// after `num_extra_slice_header_bits`.
pub fn parse_slice_header(
    nal: &[u8],
    pps_for: impl FnOnce(u8) -> Result<Pps>,
) -> Result<SliceHeader> {
    let h = nal_header(nal)?;
    if !h.is_vcl() {
        return Err(Error::malformed(format!(
            "NAL unit type {} is not a slice segment",
            h.nal_type
        )));
    }
    let mut r = BitReader::new(nal.get(2..).unwrap_or_default());
    let first_slice_segment_in_pic = r.read_bit()?;
    let no_output_of_prior_pics = h.is_irap() && r.read_bit()?;
    let pps_id = r.read_ue_max(63, "slice_pic_parameter_set_id")? as u8;
    let mut slice_type = None;
    if first_slice_segment_in_pic {
        let pps = pps_for(pps_id)?;
        // dependent_slice_segment_flag is inferred 0 for the first segment.
        r.skip_bits(u32::from(pps.num_extra_slice_header_bits))?;
        slice_type = Some(r.read_ue_max(2, "slice_type")? as u8);
    }
    Ok(SliceHeader {
        nal: h,
        first_slice_segment_in_pic,
        no_output_of_prior_pics,
        pps_id,
        slice_type,
    })
}

/// The RFC 6381 codec string (ISO/IEC 14496-15 Annex E), e.g.
/// `hvc1.1.6.L93.B0`.
pub fn codec_string(sps: &Sps) -> String {
    let p = &sps.ptl;
    let mut s = String::from("hvc1.");
    match p.profile_space {
        1 => s.push('A'),
        2 => s.push('B'),
        3 => s.push('C'),
        _ => {}
    }
    // Writing to a String cannot fail.
    let _ = write!(
        s,
        "{}.{:X}.{}{}",
        p.profile_idc,
        p.compat_flags.reverse_bits(),
        if p.tier { 'H' } else { 'L' },
        p.level_idc
    );
    let used = p
        .constraint_flags
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| i + 1);
    for b in p.constraint_flags.iter().take(used) {
        let _ = write!(s, ".{b:X}");
    }
    s
}

/// Append one `hvcC` NAL unit array (array_completeness = 1).
fn push_array(out: &mut Vec<u8>, nal_type: u8, nals: &[&[u8]]) -> Result<()> {
    let n = u16::try_from(nals.len())
        .map_err(|_| Error::new(ErrorKind::TooLarge, "too many parameter sets for hvcC"))?;
    out.push(0x80 | nal_type);
    out.extend_from_slice(&n.to_be_bytes());
    for nal in nals {
        let len = u16::try_from(nal.len()).map_err(|_| {
            Error::new(
                ErrorKind::TooLarge,
                format!("parameter set of {} bytes", nal.len()),
            )
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(nal);
    }
    Ok(())
}

/// The HEVCDecoderConfigurationRecord (`hvcC` box body, ISO/IEC 14496-15
/// 8.3.3.1) for these parameter sets (NAL units without start codes).
/// Profile, level and format fields come from the first SPS.
pub fn decoder_config(vps: &[&[u8]], sps: &[&[u8]], pps: &[&[u8]]) -> Result<Vec<u8>> {
    let first = sps
        .first()
        .ok_or_else(|| Error::malformed("hvcC needs at least one SPS"))?;
    let s = parse_sps(first)?;
    if vps.is_empty() || pps.is_empty() {
        return Err(Error::malformed("hvcC needs a VPS, an SPS and a PPS"));
    }
    let p = &s.ptl;
    let size = 23
        + 3 * 3
        + vps
            .iter()
            .chain(sps)
            .chain(pps)
            .map(|n| n.len() + 2)
            .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.push(1); // configurationVersion
    out.push((p.profile_space << 6) | (u8::from(p.tier) << 5) | p.profile_idc);
    out.extend_from_slice(&p.compat_flags.to_be_bytes());
    out.extend_from_slice(&p.constraint_flags);
    out.push(p.level_idc);
    out.extend_from_slice(&[
        0xF0,
        0x00, // reserved + min_spatial_segmentation_idc 0
        0xFC, // reserved + parallelismType 0 (unknown)
        0xFC | s.chroma_format_idc,
        0xF8 | (s.bit_depth_luma - 8),
        0xF8 | (s.bit_depth_chroma - 8),
        0x00,
        0x00, // avgFrameRate: unspecified
        // constantFrameRate 0, numTemporalLayers, temporalIdNested,
        // lengthSizeMinusOne 3
        ((s.max_sub_layers_minus1 + 1) << 3) | (u8::from(s.temporal_id_nesting) << 2) | 3,
        3, // numOfArrays
    ]);
    push_array(&mut out, NAL_VPS, vps)?;
    push_array(&mut out, NAL_SPS, sps)?;
    push_array(&mut out, NAL_PPS, pps)?;
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    // libx265 Main, 320x240 (ffmpeg -c:v libx265 -f hevc).
    pub(crate) const VPS: [u8; 24] = [
        0x40, 0x01, 0x0C, 0x01, 0xFF, 0xFF, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00,
        0x03, 0x00, 0x00, 0x03, 0x00, 0x3C, 0x92, 0x80, 0x90,
    ];
    pub(crate) const SPS: [u8; 41] = [
        0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x03, 0x00, 0x3C, 0xA0, 0x0A, 0x08, 0x0F, 0x16, 0x59, 0x2A, 0x49, 0x32, 0xBC, 0x05, 0xA0,
        0x20, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x03, 0x03, 0x21,
    ];
    pub(crate) const PPS: [u8; 7] = [0x44, 0x01, 0xC1, 0x72, 0xB4, 0x62, 0x40];

    #[test]
    fn parses_x265_sets() {
        let v = parse_vps(&VPS).unwrap();
        assert_eq!(v.ptl.profile_idc, 1);
        let s = parse_sps(&SPS).unwrap();
        assert_eq!((s.width, s.height), (320, 240));
        assert_eq!(s.ptl.profile_idc, 1);
        assert_eq!(s.ptl.compat_flags, 0x6000_0000);
        assert_eq!(s.ptl.level_idc, 60);
        assert_eq!(s.chroma_format_idc, 1);
        assert_eq!((s.bit_depth_luma, s.bit_depth_chroma), (8, 8));
        assert_eq!(codec_string(&s), "hvc1.1.6.L60.90");
        let p = parse_pps(&PPS).unwrap();
        assert_eq!((p.pps_id, p.sps_id), (0, 0));
    }

    #[test]
    fn codec_strings() {
        let mut s = parse_sps(&SPS).unwrap();
        s.ptl.constraint_flags = [0xB0, 0, 0, 0, 0, 0];
        s.ptl.level_idc = 93;
        assert_eq!(codec_string(&s), "hvc1.1.6.L93.B0");
        s.ptl.constraint_flags = [0; 6];
        s.ptl.tier = true;
        s.ptl.profile_space = 2;
        s.ptl.profile_idc = 2;
        s.ptl.compat_flags = 0x2000_0000;
        assert_eq!(codec_string(&s), "hvc1.B2.4.H93");
        s.ptl.constraint_flags = [0x90, 0, 0x08, 0, 0, 0];
        assert_eq!(codec_string(&s), "hvc1.B2.4.H93.90.0.8");
    }

    #[test]
    fn slice_headers() {
        let pps = parse_pps(&PPS).unwrap();
        // IDR_W_RADL: first=1, no_output=0, pps_id 0 (1), slice_type 2 (011)
        let nal = [0x26, 0x01, 0b1010_1100];
        let h = parse_slice_header(&nal, |_| Ok(pps)).unwrap();
        assert!(h.first_slice_segment_in_pic);
        assert_eq!(h.kind(), Some(SliceKind::I));
        // TRAIL_R: first=1, pps 0, 2 extra bits, slice_type 0 (1) → B
        let extra = Pps {
            num_extra_slice_header_bits: 2,
            ..pps
        };
        let nal = [0x02, 0x01, 0b1100_1000];
        let h = parse_slice_header(&nal, |_| Ok(extra)).unwrap();
        assert_eq!(h.kind(), Some(SliceKind::B));
        // Not the first segment: no slice_type, no PPS lookup.
        let nal = [0x02, 0x01, 0b0100_0000];
        let h = parse_slice_header(&nal, |_| Err(Error::malformed("unused"))).unwrap();
        assert_eq!(h.kind(), None);
        assert!(parse_slice_header(&[0x40, 0x01, 0x80], |_| Ok(pps)).is_err());
        assert!(parse_slice_header(&[0x02], |_| Ok(pps)).is_err());
        assert!(parse_slice_header(&[0x02, 0x00, 0x80], |_| Ok(pps)).is_err());
    }

    #[test]
    fn hvcc_layout() {
        let c = decoder_config(&[&VPS], &[&SPS], &[&PPS]).unwrap();
        assert_eq!(c[0], 1);
        assert_eq!(c[1], 0x01);
        assert_eq!(&c[2..6], &[0x60, 0, 0, 0]);
        assert_eq!(&c[6..12], &[0x90, 0, 0, 0, 0, 0]);
        assert_eq!(c[12], 60);
        assert_eq!(&c[13..22], &[0xF0, 0, 0xFC, 0xFD, 0xF8, 0xF8, 0, 0, 0x0F]);
        assert_eq!(c[22], 3);
        assert_eq!(&c[23..26], &[0xA0, 0, 1]);
        assert_eq!(c.len(), 23 + 3 * 5 + VPS.len() + SPS.len() + PPS.len());
    }

    #[test]
    fn rejects_truncated() {
        for n in 0..20 {
            assert!(parse_sps(&SPS[..n]).is_err(), "{n}");
            assert!(parse_vps(&VPS[..n]).is_err(), "{n}");
        }
        for n in 0..=SPS.len() {
            let _ = parse_sps(&SPS[..n]);
            let _ = decoder_config(&[&VPS], &[&SPS[..n]], &[&PPS]);
        }
        assert!(parse_pps(&[0x44]).is_err());
        assert!(parse_pps(&[0x44, 0x01]).is_err());
        assert!(nal_header(&[0xC0, 0x01]).is_err());
        assert!(nal_header(&[0x40]).is_err());
        assert!(parse_sps(&VPS).is_err());
    }
}
