//! Just enough H.264/H.265 Annex-B parsing to check segments independently
//! of ffmpeg: NAL unit splitting and types (IDR, parameter sets) and the
//! RFC 6381 codec string from the SPS (`avc1.PPCCLL`, `hvc1.1.6.L93.B0`).

use crate::VideoCodec;

/// The NAL units of an Annex-B byte stream (start codes removed, trailing
/// zero bytes of a 4-byte start code trimmed).
pub fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let mut e = if k + 1 < starts.len() {
            starts[k + 1] - 3
        } else {
            data.len()
        };
        while e > s && data[e - 1] == 0 {
            e -= 1;
        }
        if e > s {
            out.push(&data[s..e]);
        }
    }
    out
}

/// The NAL unit type of a NAL unit (first header byte(s)).
pub fn nal_type(codec: VideoCodec, nal: &[u8]) -> u8 {
    match (codec, nal.first()) {
        (VideoCodec::H264, Some(b)) => b & 0x1F,
        (VideoCodec::H265, Some(b)) => (b >> 1) & 0x3F,
        _ => 0xFF,
    }
}

/// Whether a NAL type is an IDR picture slice (H.264 5; H.265 IDR_W_RADL 19,
/// IDR_N_LP 20).
pub fn is_idr(codec: VideoCodec, t: u8) -> bool {
    match codec {
        VideoCodec::H264 => t == 5,
        VideoCodec::H265 => t == 19 || t == 20,
    }
}

/// NAL types a segment must carry before its first IDR to decode alone:
/// SPS+PPS (H.264 7, 8), VPS+SPS+PPS (H.265 32, 33, 34).
pub fn parameter_set_types(codec: VideoCodec) -> &'static [u8] {
    match codec {
        VideoCodec::H264 => &[7, 8],
        VideoCodec::H265 => &[32, 33, 34],
    }
}

/// Removes emulation-prevention bytes (00 00 03 -> 00 00).
pub fn rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// `avc1.PPCCLL` from profile_idc, constraint flags byte and level_idc.
pub fn avc_codec_string(profile: u8, constraints: u8, level: u8) -> String {
    format!("avc1.{profile:02X}{constraints:02X}{level:02X}")
}

/// `hvc1.<space><profile>.<compat reversed>.<L|H><level>[.<constraint bytes>]`
/// (ISO/IEC 14496-15 annex E), from general_profile_tier_level fields.
pub fn hevc_codec_string(
    profile_space: u8,
    tier: bool,
    profile_idc: u8,
    compat_flags: u32,
    constraints: [u8; 6],
    level: u8,
) -> String {
    let space = ["", "A", "B", "C"][usize::from(profile_space & 3)];
    let mut s = format!(
        "hvc1.{space}{profile_idc}.{:X}.{}{level}",
        compat_flags.reverse_bits(),
        if tier { 'H' } else { 'L' }
    );
    let keep = constraints
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| i + 1);
    for b in &constraints[..keep] {
        s.push_str(&format!(".{b:02X}"));
    }
    s
}

/// The codec string from the first SPS of an Annex-B stream (sample-entry
/// prefix `avc1` / `hvc1`), or `None` if there is no parsable SPS.
pub fn codec_string(codec: VideoCodec, data: &[u8]) -> Option<String> {
    let sps_type = match codec {
        VideoCodec::H264 => 7,
        VideoCodec::H265 => 33,
    };
    let sps = nal_units(data)
        .into_iter()
        .find(|n| nal_type(codec, n) == sps_type)?;
    match codec {
        VideoCodec::H264 => {
            let r = rbsp(sps);
            (r.len() >= 4).then(|| avc_codec_string(r[1], r[2], r[3]))
        }
        VideoCodec::H265 => {
            // 2-byte NAL header, then sps_video_parameter_set_id(4),
            // sps_max_sub_layers_minus1(3), temporal_id_nesting(1): byte 0;
            // profile_tier_level starts byte-aligned at byte 1.
            let r = rbsp(sps.get(2..)?);
            if r.len() < 13 {
                return None;
            }
            let ptl = &r[1..13];
            Some(hevc_codec_string(
                ptl[0] >> 6,
                ptl[0] & 0x20 != 0,
                ptl[0] & 0x1F,
                u32::from_be_bytes([ptl[1], ptl[2], ptl[3], ptl[4]]),
                [ptl[5], ptl[6], ptl[7], ptl[8], ptl[9], ptl[10]],
                ptl[11],
            ))
        }
    }
}

/// Compares codec strings: hex is case-insensitive, and for H.265 the
/// sample-entry prefixes `hvc1` and `hev1` are interchangeable (the string
/// describes the same bitstream; the prefix only says where parameter sets
/// live).
pub fn codec_strings_match(a: &str, b: &str) -> bool {
    fn norm(s: &str) -> String {
        let s = s.to_ascii_uppercase();
        match s.strip_prefix("HEV1.") {
            Some(rest) => format!("HVC1.{rest}"),
            None => s,
        }
    }
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_nal_units_with_3_and_4_byte_start_codes() {
        let data = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4,
        ];
        let n = nal_units(&data);
        assert_eq!(n, vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 4][..]]);
        assert!(is_idr(VideoCodec::H264, nal_type(VideoCodec::H264, n[2])));
    }

    #[test]
    fn removes_emulation_prevention() {
        assert_eq!(
            rbsp(&[0, 0, 3, 1, 0, 0, 3, 0, 0, 3]),
            vec![0, 0, 1, 0, 0, 0, 0]
        );
    }

    #[test]
    fn hevc_string_matches_the_known_main_profile_form() {
        // Main, compat flags bits 1 and 2, progressive+frame-only, level 3.1.
        let s = hevc_codec_string(0, false, 1, 0x6000_0000, [0x90, 0, 0, 0, 0, 0], 93);
        assert_eq!(s, "hvc1.1.6.L93.90");
        assert!(codec_strings_match("hev1.1.6.l93.90", &s));
        assert!(!codec_strings_match("hvc1.1.6.L90.90", &s));
    }
}
