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
