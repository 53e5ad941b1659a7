//! A minimal Annex-B start-code scanner for the muxers.
//!
//! The muxers only need to walk the NAL units of one access unit (to find
//! AUD and parameter sets, and to rewrite start codes as length prefixes).
//! Kept private and tiny so the muxers do not depend on the full parser.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use crate::VideoCodec;

/// Position of the next `00 00 01` at or after `from`: (index of its first
/// zero, index just past the `01`).
pub(crate) fn find_start_code(data: &[u8], from: usize) -> Option<(usize, usize)> {
    crate::annexb::find_start_code(data, from).map(|p| (p, p + 3))
}

/// One NAL unit found in an Annex-B buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Nal<'a> {
    /// The NAL bytes, header included, without start code or trailing zeros.
    pub bytes: &'a [u8],
    /// Offset just past the NAL's last byte, so bytes can be inserted after
    /// it while the following start code (zero_byte included) stays whole.
    pub end: usize,
}

/// Iterator over the NAL units of an Annex-B buffer. Bytes before the first
/// start code are skipped (see [`leading_garbage`]); empty NALs are skipped.
pub(crate) struct NalIter<'a> {
    data: &'a [u8],
    next: Option<(usize, usize)>,
}

impl<'a> NalIter<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        NalIter {
            data,
            next: find_start_code(data, 0),
        }
    }
}

impl<'a> Iterator for NalIter<'a> {
    type Item = Nal<'a>;

    fn next(&mut self) -> Option<Nal<'a>> {
        loop {
            let (_, start) = self.next?;
            let following = find_start_code(self.data, start);
            let end = following.map_or(self.data.len(), |(p, _)| p);
            self.next = following;
            let raw = self.data.get(start..end).unwrap_or(&[]);
            // Trailing zeros are trailing_zero_8bits (or the leading zero of a
            // 4-byte start code), never part of the NAL: a NAL ends in a
            // non-zero byte (rbsp_stop_one_bit or cabac_zero_word's 0x03).
            let len = raw.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
            let bytes = raw.get(..len).unwrap_or(&[]);
            if !bytes.is_empty() {
                return Some(Nal {
                    bytes,
                    end: start + len,
                });
            }
        }
    }
}

/// True if `au` has non-zero bytes before its first start code (or none).
pub(crate) fn leading_garbage(au: &[u8]) -> bool {
    match find_start_code(au, 0) {
        Some((p, _)) => au.get(..p).is_none_or(|lead| lead.iter().any(|&b| b != 0)),
        None => true,
    }
}

/// Type of the first NAL unit, from its header byte alone.
pub(crate) fn first_nal_type(codec: VideoCodec, au: &[u8]) -> Option<u8> {
    let (_, start) = find_start_code(au, 0)?;
    au.get(start..start + 1).map(|h| nal_type(codec, h))
}

/// True if an SPS precedes the first slice. Walks start codes and reads
/// only headers, and stops at the first slice, so the (large) slice data
/// is never scanned; parameter sets may not follow the first slice anyway.
pub(crate) fn has_sps_before_slice(codec: VideoCodec, au: &[u8]) -> bool {
    let mut pos = 0;
    while let Some((_, start)) = find_start_code(au, pos) {
        let t = nal_type(codec, au.get(start..start + 1).unwrap_or(&[]));
        if is_sps(codec, t) {
            return true;
        }
        if is_vcl(codec, t) {
            return false;
        }
        pos = start;
    }
    false
}

/// Type of the first VCL NAL unit, walking NAL headers only (parameter
/// sets and SEI before it are small, the slice data is never scanned).
pub(crate) fn first_vcl_type(codec: VideoCodec, au: &[u8]) -> Option<u8> {
    let mut pos = 0;
    while let Some((_, start)) = find_start_code(au, pos) {
        let t = nal_type(codec, au.get(start..start + 1)?);
        if is_vcl(codec, t) {
            return Some(t);
        }
        pos = start;
    }
    None
}

/// A slice type that starts a decodable picture on its own: H.264 IDR,
/// H.265 IRAP (BLA, IDR, CRA).
pub(crate) fn is_key_slice(codec: VideoCodec, t: u8) -> bool {
    match codec {
        VideoCodec::H264 => t == 5,
        VideoCodec::H265 => (16..=23).contains(&t),
    }
}

/// NAL unit type of a NAL (header included) for `codec`.
pub(crate) fn nal_type(codec: VideoCodec, nal: &[u8]) -> u8 {
    let b = nal.first().copied().unwrap_or(0);
    match codec {
        VideoCodec::H264 => b & 0x1F,
        VideoCodec::H265 => (b >> 1) & 0x3F,
    }
}

/// Access unit delimiter NAL type.
pub(crate) fn is_aud(codec: VideoCodec, t: u8) -> bool {
    match codec {
        VideoCodec::H264 => t == 9,
        VideoCodec::H265 => t == 35,
    }
}

/// Sequence parameter set NAL type.
pub(crate) fn is_sps(codec: VideoCodec, t: u8) -> bool {
    match codec {
        VideoCodec::H264 => t == 7,
        VideoCodec::H265 => t == 33,
    }
}

/// VPS/SPS/PPS: the NALs an `avc1`/`hvc1` sample entry carries out of band.
pub(crate) fn is_parameter_set(codec: VideoCodec, t: u8) -> bool {
    match codec {
        VideoCodec::H264 => t == 7 || t == 8,
        VideoCodec::H265 => (32..=34).contains(&t),
    }
}

/// Filler data: pure padding, worth nothing in a stored file.
pub(crate) fn is_filler(codec: VideoCodec, t: u8) -> bool {
    match codec {
        VideoCodec::H264 => t == 12,
        VideoCodec::H265 => t == 38,
    }
}

/// Slice (VCL) NAL: parameter sets may only precede the first of these.
pub(crate) fn is_vcl(codec: VideoCodec, t: u8) -> bool {
    match codec {
        VideoCodec::H264 => (1..=5).contains(&t),
        VideoCodec::H265 => t < 32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_three_and_four_byte_start_codes() {
        let data = [
            0, 0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 0, 1, 0x65, 0x88, 0, 0, 3, 0,
        ];
        let nals: Vec<_> = NalIter::new(&data).map(|n| n.bytes.to_vec()).collect();
        assert_eq!(
            nals,
            vec![
                vec![0x09, 0xF0],
                vec![0x67, 0x42],
                vec![0x65, 0x88, 0, 0, 3]
            ]
        );
        let first = NalIter::new(&data).next().unwrap();
        assert_eq!(first.end, 6);
        let second = NalIter::new(&data).nth(1).unwrap();
        assert_eq!(second.end, 11);
        assert!(!leading_garbage(&data));
        assert!(leading_garbage(&[1, 0, 0, 1, 0x65]));
        assert!(leading_garbage(&[0x65, 0x88]));
    }

    #[test]
    fn header_walk_stops_at_first_slice() {
        let h264 = VideoCodec::H264;
        let key = [
            0, 0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0, 1, 0x65, 3,
        ];
        assert_eq!(first_nal_type(h264, &key), Some(9));
        assert!(has_sps_before_slice(h264, &key));
        // An SPS after the first slice does not count.
        let late = [0, 0, 1, 0x65, 3, 0, 0, 1, 0x67, 1];
        assert!(!has_sps_before_slice(h264, &late));
        assert_eq!(first_nal_type(h264, &[0, 0, 1]), None);
        assert!(!has_sps_before_slice(VideoCodec::H265, &[0, 0, 1]));
        assert_eq!(first_vcl_type(h264, &key), Some(5));
        assert_eq!(first_vcl_type(h264, &late), Some(5));
        assert_eq!(first_vcl_type(h264, &[0, 0, 1, 0x67, 1]), None);
        assert!(is_key_slice(h264, 5) && !is_key_slice(h264, 1));
        assert!(is_key_slice(VideoCodec::H265, 19) && !is_key_slice(VideoCodec::H265, 1));
    }

    #[test]
    fn never_panics_on_odd_input() {
        for data in [
            &[][..],
            &[0],
            &[0, 0],
            &[0, 0, 1],
            &[0, 0, 1, 0, 0, 1],
            &[0, 0, 0, 0],
            &[1, 1, 1, 0, 0],
        ] {
            let _ = NalIter::new(data).count();
            let _ = leading_garbage(data);
            let _ = first_nal_type(VideoCodec::H265, data);
            let _ = has_sps_before_slice(VideoCodec::H264, data);
            let _ = first_vcl_type(VideoCodec::H265, data);
        }
    }
}
