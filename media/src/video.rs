//! Codec-independent video access-unit analysis: building [`VideoParams`]
//! from parameter sets, and one pass over an access unit to find key
//! frames, in-band parameter sets and the slice kind (B-frame check).
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use crate::{Error, ErrorKind, Result, VideoCodec, VideoParams, annexb, h264, h265};

/// The prediction kind of a picture's slices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SliceKind {
    /// Intra only (H.264 I and SI).
    I,
    /// Forward prediction (H.264 P and SP).
    P,
    /// Bi-prediction.
    B,
}

impl VideoParams {
    /// Parse parameter sets (NAL units without start codes) into stream
    /// parameters: dimensions and codec string from the first SPS, and the
    /// `avcC`/`hvcC` record. Every set must parse. `vps` is ignored for
    /// H.264 and required for H.265.
    pub fn from_parameter_sets(
        codec: VideoCodec,
        vps: &[&[u8]],
        sps: &[&[u8]],
        pps: &[&[u8]],
    ) -> Result<VideoParams> {
        let first = sps
            .first()
            .ok_or_else(|| Error::malformed("no SPS in parameter sets"))?;
        if pps.is_empty() {
            return Err(Error::malformed("no PPS in parameter sets"));
        }
        let copy = |sets: &[&[u8]]| sets.iter().map(|s| s.to_vec()).collect::<Vec<_>>();
        match codec {
            VideoCodec::H264 => {
                let s = h264::parse_sps(first)?;
                for extra in sps.iter().skip(1) {
                    h264::parse_sps(extra)?;
                }
                for p in pps {
                    h264::parse_pps(p)?;
                }
                Ok(VideoParams {
                    codec,
                    width: s.width,
                    height: s.height,
                    codec_string: h264::codec_string(&s),
                    vps: Vec::new(),
                    sps: copy(sps),
                    pps: copy(pps),
                    decoder_config: h264::decoder_config(sps, pps)?,
                })
            }
            VideoCodec::H265 => {
                if vps.is_empty() {
                    return Err(Error::malformed("no VPS in H.265 parameter sets"));
                }
                for v in vps {
                    h265::parse_vps(v)?;
                }
                let s = h265::parse_sps(first)?;
                for extra in sps.iter().skip(1) {
                    h265::parse_sps(extra)?;
                }
                for p in pps {
                    h265::parse_pps(p)?;
                }
                Ok(VideoParams {
                    codec,
                    width: s.width,
                    height: s.height,
                    codec_string: h265::codec_string(&s),
                    vps: copy(vps),
                    sps: copy(sps),
                    pps: copy(pps),
                    decoder_config: h265::decoder_config(vps, sps, pps)?,
                })
            }
        }
    }
}

impl VideoParams {
    /// Stream parameters from the parameter sets inside an Annex-B access
    /// unit (a key frame as the engine stores it), e.g. to build an export
    /// file's sample entry. [`ErrorKind::NeedKeyFrame`] if the access unit
    /// does not carry a complete set.
    pub fn from_annexb(codec: VideoCodec, au: &[u8]) -> Result<VideoParams> {
        let mut sets = Sets::default();
        for nal in annexb::nal_units(au) {
            let t = match codec {
                VideoCodec::H264 => h264::nal_type(nal).unwrap_or(0),
                VideoCodec::H265 => match h265::nal_header(nal) {
                    Ok(h) if h.layer_id == 0 => h.nal_type,
                    _ => continue,
                },
            };
            match (codec, t) {
                (VideoCodec::H264, h264::NAL_SPS) | (VideoCodec::H265, h265::NAL_SPS) => {
                    sets.sps.push(nal)
                }
                (VideoCodec::H264, h264::NAL_PPS) | (VideoCodec::H265, h265::NAL_PPS) => {
                    sets.pps.push(nal)
                }
                (VideoCodec::H265, h265::NAL_VPS) => sets.vps.push(nal),
                _ => {}
            }
        }
        if !sets.complete(codec) {
            return Err(Error::new(
                ErrorKind::NeedKeyFrame,
                "access unit has no complete set of parameter sets",
            ));
        }
        Self::from_parameter_sets(codec, &sets.vps, &sets.sps, &sets.pps)
    }

    /// Stream parameters from a decoder configuration record (`avcC` or
    /// `hvcC` body, e.g. from [`crate::fmp4_demux`]). Only records with
    /// 4-byte NAL lengths are accepted ([`ErrorKind::Unsupported`]
    /// otherwise): ivcs copies samples as stored and always writes 4.
    pub fn from_decoder_config(codec: VideoCodec, record: &[u8]) -> Result<VideoParams> {
        let mut sets = Sets::default();
        let truncated = || Error::malformed("decoder configuration record is truncated");
        // Reads `n` NAL units, each with a 16-bit length, from `data`.
        fn nals<'a>(mut data: &'a [u8], n: usize, into: &mut Vec<&'a [u8]>) -> Option<&'a [u8]> {
            for _ in 0..n {
                let (len, rest) = data.split_first_chunk::<2>()?;
                let (nal, rest) = rest.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
                into.push(nal);
                data = rest;
            }
            Some(data)
        }
        let length_size = match codec {
            VideoCodec::H264 => {
                let (&[_, _, _, _, len, n_sps], rest) =
                    record.split_first_chunk::<6>().ok_or_else(truncated)?;
                let rest =
                    nals(rest, usize::from(n_sps & 0x1F), &mut sets.sps).ok_or_else(truncated)?;
                let (&n_pps, rest) = rest.split_first().ok_or_else(truncated)?;
                nals(rest, usize::from(n_pps), &mut sets.pps).ok_or_else(truncated)?;
                (len & 3) + 1
            }
            VideoCodec::H265 => {
                let (head, rest) = record.split_first_chunk::<23>().ok_or_else(truncated)?;
                let [.., len, n_arrays] = *head;
                let mut rest = rest;
                for _ in 0..n_arrays {
                    let (&[kind, hi, lo], r) =
                        rest.split_first_chunk::<3>().ok_or_else(truncated)?;
                    let into = match kind & 0x3F {
                        h265::NAL_VPS => &mut sets.vps,
                        h265::NAL_SPS => &mut sets.sps,
                        h265::NAL_PPS => &mut sets.pps,
                        // SEI arrays and the like: parsed past, not kept.
                        _ => &mut Vec::new(),
                    };
                    rest = nals(r, usize::from(u16::from_be_bytes([hi, lo])), into)
                        .ok_or_else(truncated)?;
                }
                (len & 3) + 1
            }
        };
        if length_size != 4 {
            return Err(Error::unsupported(format!(
                "{length_size}-byte NAL lengths (only 4)"
            )));
        }
        Self::from_parameter_sets(codec, &sets.vps, &sets.sps, &sets.pps)
    }
}

/// Whether two parameter sets differ in a way that needs a new init
/// segment / decoder reset (codec or any parameter set bytes).
pub fn params_differ(a: &VideoParams, b: &VideoParams) -> bool {
    a.codec != b.codec || a.sps != b.sps || a.pps != b.pps || a.vps != b.vps
}

/// What one access unit contains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuInfo {
    /// An H.264 IDR or H.265 IRAP picture.
    pub keyframe: bool,
    /// At least one VCL NAL unit (always true when [`analyze`] succeeds).
    pub has_vcl: bool,
    /// The slice kind: for H.264 the "highest" (B > P > I) over all
    /// slices, for H.265 that of the first slice segment. `None` if the
    /// first H.265 slice segment does not start a picture.
    pub slice: Option<SliceKind>,
    /// New stream parameters when the access unit carries a complete set
    /// (SPS + PPS, plus VPS for H.265).
    pub params: Option<VideoParams>,
    /// The access unit has an access unit delimiter.
    pub has_aud: bool,
    /// The access unit has at least one VPS, SPS or PPS.
    pub has_param_sets: bool,
}

/// Parameter sets collected from one access unit.
#[derive(Default)]
struct Sets<'a> {
    vps: Vec<&'a [u8]>,
    sps: Vec<&'a [u8]>,
    pps: Vec<&'a [u8]>,
}

impl Sets<'_> {
    fn any(&self) -> bool {
        !(self.vps.is_empty() && self.sps.is_empty() && self.pps.is_empty())
    }

    fn complete(&self, codec: VideoCodec) -> bool {
        !self.sps.is_empty()
            && !self.pps.is_empty()
            && (codec == VideoCodec::H264 || !self.vps.is_empty())
    }
}

/// `nal_unit_type` from a NAL unit's first header byte: a look only, no
/// checks (those are [`analyze`]'s).
fn nal_type(codec: VideoCodec, nal: &[u8]) -> u8 {
    let h = nal.first().copied().unwrap_or(0);
    match codec {
        VideoCodec::H264 => h & 0x1F,
        VideoCodec::H265 => (h >> 1) & 0x3F,
    }
}

/// Whether `nal_unit_type` is a key picture's slice (IDR; IRAP for H.265).
fn is_key_type(codec: VideoCodec, t: u8) -> bool {
    match codec {
        VideoCodec::H264 => t == h264::NAL_IDR,
        VideoCodec::H265 => h265::is_irap_type(t),
    }
}

/// Whether an Annex-B access unit holds an IDR (H.264) or IRAP (H.265)
/// picture: a look at NAL headers only, so cheap enough to run on every
/// frame before deciding whether to take it.
pub fn is_key(codec: VideoCodec, au: &[u8]) -> bool {
    annexb::nal_units(au).any(|nal| is_key_type(codec, nal_type(codec, nal)))
}

/// Whether an access unit holds a key picture *and* every parameter set
/// needed to start decoding there (SPS+PPS; VPS+SPS+PPS for H.265).
pub fn is_key_with_params(codec: VideoCodec, au: &[u8]) -> bool {
    let (mut key, mut vps, mut sps, mut pps) = (false, false, false, false);
    for nal in annexb::nal_units(au) {
        let t = nal_type(codec, nal);
        key |= is_key_type(codec, t);
        match (codec, t) {
            (VideoCodec::H264, h264::NAL_SPS) | (VideoCodec::H265, h265::NAL_SPS) => sps = true,
            (VideoCodec::H264, h264::NAL_PPS) | (VideoCodec::H265, h265::NAL_PPS) => pps = true,
            (VideoCodec::H265, h265::NAL_VPS) => vps = true,
            _ => {}
        }
    }
    key && sps && pps && (codec == VideoCodec::H264 || vps)
}

/// Analyse one Annex-B access unit in a single pass over its NAL units,
/// without copying it.
///
/// `known` supplies the PPS for H.265 slice headers when the access unit
/// has none of its own. Errors: no leading start code, a truncated NAL
/// header or `forbidden_zero_bit`, malformed parameter sets or slice
/// headers ([`ErrorKind::Malformed`]); no VCL NAL unit (Malformed, "no
/// picture in access unit"); an H.265 slice whose PPS is unknown
/// ([`ErrorKind::NeedKeyFrame`]); interlaced H.264 ([`ErrorKind::Unsupported`]).
pub fn analyze(codec: VideoCodec, au: &[u8], known: Option<&VideoParams>) -> Result<AuInfo> {
    if !annexb::has_start_code(au) {
        return Err(Error::malformed(
            "access unit does not start with a start code",
        ));
    }
    let mut sets = Sets::default();
    let mut keyframe = false;
    let mut has_aud = false;
    let mut has_vcl = false;
    let mut slice: Option<SliceKind> = None;
    let mut first_vcl: Option<&[u8]> = None;
    for nal in annexb::nal_units(au) {
        match codec {
            VideoCodec::H264 => {
                let h = nal.first().copied().unwrap_or(0);
                if h & 0x80 != 0 {
                    return Err(Error::malformed("H.264 NAL unit: forbidden_zero_bit set"));
                }
                match h & 0x1F {
                    t @ 1..=5 => {
                        has_vcl = true;
                        keyframe |= t == h264::NAL_IDR;
                        let kind = h264::parse_slice_header(nal)?.kind();
                        slice = slice.max(Some(kind));
                    }
                    h264::NAL_SPS => sets.sps.push(nal),
                    h264::NAL_PPS => sets.pps.push(nal),
                    h264::NAL_AUD => has_aud = true,
                    _ => {}
                }
            }
            VideoCodec::H265 => {
                let h = h265::nal_header(nal)?;
                if h.layer_id != 0 {
                    // Enhancement layers do not change what the base layer is.
                    continue;
                }
                if h.is_vcl() {
                    has_vcl = true;
                    keyframe |= h.is_irap();
                    first_vcl = first_vcl.or(Some(nal));
                }
                match h.nal_type {
                    h265::NAL_VPS => sets.vps.push(nal),
                    h265::NAL_SPS => sets.sps.push(nal),
                    h265::NAL_PPS => sets.pps.push(nal),
                    h265::NAL_AUD => has_aud = true,
                    _ => {}
                }
            }
        }
    }
    if !has_vcl {
        return Err(Error::malformed("no picture in access unit"));
    }
    let params = if sets.complete(codec) {
        Some(VideoParams::from_parameter_sets(
            codec, &sets.vps, &sets.sps, &sets.pps,
        )?)
    } else {
        None
    };
    if let Some(nal) = first_vcl {
        let hdr = h265::parse_slice_header(nal, |id| find_h265_pps(id, &sets.pps, known))?;
        slice = hdr.kind();
    }
    Ok(AuInfo {
        keyframe,
        has_vcl,
        slice,
        params,
        has_aud,
        has_param_sets: sets.any(),
    })
}

/// The H.265 PPS with `id`: from the access unit itself, else from `known`.
fn find_h265_pps(id: u8, own: &[&[u8]], known: Option<&VideoParams>) -> Result<h265::Pps> {
    let known_sets = known
        .filter(|k| k.codec == VideoCodec::H265)
        .map(|k| k.pps.as_slice())
        .unwrap_or_default();
    let candidates = own
        .iter()
        .copied()
        .chain(known_sets.iter().map(Vec::as_slice));
    for nal in candidates {
        let pps = h265::parse_pps(nal)?;
        if pps.pps_id == id {
            return Ok(pps);
        }
    }
    Err(Error::new(
        ErrorKind::NeedKeyFrame,
        format!("slice refers to PPS {id}, which has not been seen"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_malformed_units() {
        for codec in [VideoCodec::H264, VideoCodec::H265] {
            let e = analyze(codec, &[], None).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Malformed);
            assert!(analyze(codec, &[0x65, 0x88], None).is_err());
            assert!(analyze(codec, &[0, 0, 1], None).is_err());
            assert!(analyze(codec, &[0, 0, 1, 0xE5, 0x88, 0x80], None).is_err());
        }
        // Truncated H.265 header.
        assert!(analyze(VideoCodec::H265, &[0, 0, 1, 0x26], None).is_err());
        // SEI only: no picture.
        let e = analyze(VideoCodec::H264, &[0, 0, 1, 0x06, 0x05, 0x80], None).unwrap_err();
        assert_eq!(e.message(), "no picture in access unit");
        // H.265 slice with an unknown PPS.
        let e = analyze(VideoCodec::H265, &[0, 0, 1, 0x02, 0x01, 0xD0], None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NeedKeyFrame);
    }

    /// Annex-B with 4-byte start codes.
    fn annexb(nals: &[&[u8]]) -> Vec<u8> {
        nals.iter()
            .flat_map(|n| [&[0, 0, 0, 1][..], n].concat())
            .collect()
    }

    #[test]
    fn params_from_annexb_and_decoder_config_records() {
        use crate::{h264::tests as t4, h265::tests as t5};
        let pps4: &[u8] = &[0x68, 0xEB, 0xC3, 0xCB, 0x20];
        let cases = [
            (
                VideoCodec::H264,
                VideoParams::from_parameter_sets(
                    VideoCodec::H264,
                    &[],
                    &[&t4::SPS_MAIN_320X240],
                    &[pps4],
                )
                .unwrap(),
                annexb(&[&[0x09, 0xF0], &t4::SPS_MAIN_320X240, pps4, &[0x65, 0x88]]),
            ),
            (
                VideoCodec::H265,
                VideoParams::from_parameter_sets(
                    VideoCodec::H265,
                    &[&t5::VPS],
                    &[&t5::SPS],
                    &[&t5::PPS],
                )
                .unwrap(),
                annexb(&[
                    &[0x46, 0x01, 0x50],
                    &t5::VPS,
                    &t5::SPS,
                    &t5::PPS,
                    &[0x26, 0x01, 0xAF],
                ]),
            ),
        ];
        for (codec, want, au) in cases {
            assert_eq!(VideoParams::from_annexb(codec, &au).unwrap(), want);
            let rec = &want.decoder_config;
            assert_eq!(VideoParams::from_decoder_config(codec, rec).unwrap(), want);
            for n in 0..rec.len() {
                assert!(VideoParams::from_decoder_config(codec, &rec[..n]).is_err());
            }
            // Any other NAL length size is refused.
            let mut two = rec.clone();
            let at = if codec == VideoCodec::H264 { 4 } else { 21 };
            two[at] = (two[at] & !3) | 1;
            let e = VideoParams::from_decoder_config(codec, &two).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unsupported);
            // A slice alone has no parameter sets.
            let slice = annexb(&[if codec == VideoCodec::H264 {
                &[0x65, 0x88]
            } else {
                &[0x26, 0x01, 0xAF]
            }]);
            let e = VideoParams::from_annexb(codec, &slice).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NeedKeyFrame);
        }
    }

    #[test]
    fn h264_slice_kinds() {
        // Two slices: P (first_mb 0, type 5) then B (first_mb 1, type 1).
        let au = [
            0,
            0,
            1,
            0x41,
            0b1001_1010,
            0x80,
            0,
            0,
            1,
            0x01,
            0b0100_1010,
            0x80,
        ];
        let info = analyze(VideoCodec::H264, &au, None).unwrap();
        assert_eq!(info.slice, Some(SliceKind::B));
        assert!(!info.keyframe && !info.has_param_sets && info.params.is_none());
    }
}
