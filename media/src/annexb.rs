//! Annex-B byte streams (H.264 Annex B, H.265 Annex B): splitting into NAL
//! units and access units, and telling H.264 from H.265 in a raw file.
//!
//! Nothing here allocates: every item borrows the input buffer.
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

/// Index of the next `00 00 01` at or after `from`.
///
/// Searches for the `01` byte with `memchr` (word- or SIMD-wide, and rare in
/// compressed slice data) and then checks the two zeros before it: this scan
/// is the hottest loop of muxing, run over every byte of every frame.
pub(crate) fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    let mut i = from.checked_add(2)?;
    loop {
        let one = i + memchr::memchr(1, data.get(i..)?)?;
        let zeros = one - 2;
        if data.get(zeros..one) == Some(&[0, 0]) {
            return Some(zeros);
        }
        i = one + 1;
    }
}

/// Whether `data` begins with a 3- or 4-byte start code.
pub fn has_start_code(data: &[u8]) -> bool {
    data.starts_with(&[0, 0, 1]) || data.starts_with(&[0, 0, 0, 1])
}

/// Where one NAL unit sits in its buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NalSpan {
    /// Start of the NAL unit's start code, including the leading zero bytes
    /// of a 4-byte start code (and any other zero bytes between NAL units).
    pub sc_start: usize,
    /// First byte of the NAL unit (its header).
    pub start: usize,
    /// One past the last byte, trailing zero bytes excluded.
    pub end: usize,
}

/// Iterator over the [`NalSpan`]s of an Annex-B buffer; see [`nal_spans`].
#[derive(Clone, Debug)]
pub struct NalSpans<'a> {
    data: &'a [u8],
    /// The `00 00 01` that starts the next NAL unit.
    next_sc: Option<usize>,
    /// Where the next NAL unit's start code region begins.
    prev_end: usize,
}

/// The NAL units of an Annex-B buffer as positions. Bytes before the first
/// start code are ignored; empty NAL units are skipped.
pub fn nal_spans(data: &[u8]) -> NalSpans<'_> {
    let next_sc = find_start_code(data, 0);
    let mut prev_end = next_sc.unwrap_or(data.len());
    // A 4-byte start code (or zero padding) belongs to the first NAL unit.
    while prev_end > 0 && data.get(prev_end - 1) == Some(&0) {
        prev_end -= 1;
    }
    NalSpans {
        data,
        next_sc,
        prev_end,
    }
}

impl Iterator for NalSpans<'_> {
    type Item = NalSpan;

    fn next(&mut self) -> Option<NalSpan> {
        loop {
            let sc = self.next_sc?;
            let start = sc.saturating_add(3);
            let following = find_start_code(self.data, start);
            let mut end = following.unwrap_or(self.data.len());
            // Trailing zeros are the next start code's zero_byte or padding.
            while end > start && self.data.get(end - 1) == Some(&0) {
                end -= 1;
            }
            self.next_sc = following;
            if end > start {
                let span = NalSpan {
                    sc_start: self.prev_end,
                    start,
                    end,
                };
                self.prev_end = end;
                return Some(span);
            }
        }
    }
}

/// The NAL units of an Annex-B buffer, without start codes and trailing
/// zero bytes. Bytes before the first start code are ignored; empty NAL
/// units are skipped.
pub fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    nal_spans(data).filter_map(move |s| data.get(s.start..s.end))
}

/// H.264 profile_idc values seen in the wild (for [`detect_codec`]).
const H264_PROFILES: [u8; 16] = [
    66, 77, 88, 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135,
];

/// Guess the codec of a raw `.h264` / `.h265` elementary stream from its
/// first NAL unit headers. `None` if nothing conclusive is found.
pub fn detect_codec(data: &[u8]) -> Option<VideoCodec> {
    for nal in nal_units(data).take(16) {
        let b0 = *nal.first()?;
        let b1 = nal.get(1).copied();
        // H.265 VPS, SPS, PPS, AUD, prefix SEI with nuh_layer_id 0 and
        // TemporalId 0. As H.264 headers these would be partition A/C or an
        // SEI/prefix NAL with nal_ref_idc 2, which encoders do not start
        // streams with.
        if b1 == Some(0x01) && matches!(b0, 0x40 | 0x42 | 0x44 | 0x46 | 0x4E) {
            return Some(VideoCodec::H265);
        }
        if b0 & 0x80 != 0 {
            continue;
        }
        match b0 & 0x1F {
            // SPS with a known profile_idc.
            7 if b1.is_some_and(|p| H264_PROFILES.contains(&p)) => return Some(VideoCodec::H264),
            // AUD (nal_ref_idc 0): primary_pic_type (3 bits) + stop bit.
            9 if b0 == 0x09 && nal.len() == 2 && b1.is_some_and(|b| b & 0x1F == 0x10) => {
                return Some(VideoCodec::H264);
            }
            _ => {}
        }
    }
    None
}

/// The NAL unit type and whether it may start a new access unit / is VCL.
#[derive(Clone, Copy)]
struct NalClass {
    vcl: bool,
    /// This NAL unit starts a new access unit if the current one already
    /// has a VCL NAL unit.
    starts_au: bool,
}

fn classify(codec: VideoCodec, nal: &[u8]) -> NalClass {
    let b0 = nal.first().copied().unwrap_or(0);
    match codec {
        VideoCodec::H264 => {
            let t = b0 & 0x1F;
            match t {
                // first_mb_in_slice is the first ue(v); it is 0 iff the first
                // payload bit is 1.
                1..=5 => NalClass {
                    vcl: true,
                    starts_au: nal.get(1).is_some_and(|b| b & 0x80 != 0),
                },
                6..=9 | 14..=18 => NalClass {
                    vcl: false,
                    starts_au: true,
                },
                _ => NalClass {
                    vcl: false,
                    starts_au: false,
                },
            }
        }
        VideoCodec::H265 => {
            let t = (b0 >> 1) & 0x3F;
            let b1 = nal.get(1).copied().unwrap_or(0);
            let layer = ((b0 & 1) << 5) | (b1 >> 3);
            match t {
                // first_slice_segment_in_pic_flag is the first payload bit.
                0..=31 => NalClass {
                    vcl: true,
                    starts_au: layer == 0 && nal.get(2).is_some_and(|b| b & 0x80 != 0),
                },
                // Non-base layers share the base layer's access unit.
                32..=35 | 39 | 41..=44 | 48..=55 => NalClass {
                    vcl: false,
                    starts_au: layer == 0,
                },
                _ => NalClass {
                    vcl: false,
                    starts_au: false,
                },
            }
        }
    }
}

/// Iterator over the access units of an Annex-B elementary stream; see
/// [`access_units`].
#[derive(Clone, Debug)]
pub struct AccessUnits<'a> {
    data: &'a [u8],
    codec: VideoCodec,
    spans: NalSpans<'a>,
    /// First NAL unit of the next access unit, already read.
    pending: Option<NalSpan>,
}

/// The access units of a whole Annex-B stream, each the slice of `data`
/// from its first start code to the end of its last NAL unit.
///
/// Boundaries follow H.264 7.4.1.2.3 / H.265 7.4.2.4.4: after an access
/// unit has a VCL NAL unit, an AUD, parameter set, (prefix) SEI or reserved
/// prefix type, or a VCL NAL unit that begins a new picture
/// (`first_mb_in_slice == 0` / `first_slice_segment_in_pic_flag == 1`)
/// starts the next one. Slice order is assumed to be ascending (no ASO).
pub fn access_units(data: &[u8], codec: VideoCodec) -> AccessUnits<'_> {
    AccessUnits {
        data,
        codec,
        spans: nal_spans(data),
        pending: None,
    }
}

impl<'a> Iterator for AccessUnits<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let first = self.pending.take().or_else(|| self.spans.next())?;
        let nal = |s: &NalSpan| self.data.get(s.start..s.end).unwrap_or_default();
        let mut has_vcl = classify(self.codec, nal(&first)).vcl;
        let mut end = first.end;
        for s in self.spans.by_ref() {
            let c = classify(self.codec, nal(&s));
            if has_vcl && c.starts_au {
                self.pending = Some(s);
                break;
            }
            has_vcl |= c.vcl;
            end = s.end;
        }
        self.data.get(first.sc_start..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_nal_units() {
        let d = [
            0xAA, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 0, 0, 3, 1, 0,
        ];
        let v: Vec<&[u8]> = nal_units(&d).collect();
        assert_eq!(
            v,
            [&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 0, 0, 3, 1][..]]
        );
        let s: Vec<NalSpan> = nal_spans(&d).collect();
        assert_eq!(s[0].sc_start, 1);
        assert_eq!(s[1].sc_start, 8);
        assert_eq!(s[2].sc_start, 13);
    }

    #[test]
    fn nal_edge_cases() {
        assert_eq!(nal_units(&[]).count(), 0);
        assert_eq!(nal_units(&[0, 0]).count(), 0);
        assert_eq!(nal_units(&[0, 0, 1]).count(), 0);
        assert_eq!(nal_units(&[0, 0, 1, 0, 0, 1, 0, 0, 0, 1]).count(), 0);
        assert_eq!(nal_units(&[1, 2, 3, 4, 5]).count(), 0);
        assert_eq!(nal_units(&[0, 0, 1, 9]).collect::<Vec<_>>(), [&[9u8][..]]);
        assert_eq!(
            nal_units(&[0, 0, 1, 9, 0, 0, 1, 0, 0, 1, 5]).collect::<Vec<_>>(),
            [&[9u8][..], &[5u8][..]]
        );
        // 00 00 02 is not a start code.
        assert_eq!(
            nal_units(&[0, 0, 1, 9, 0, 0, 2, 7]).collect::<Vec<_>>(),
            [&[9u8, 0, 0, 2, 7][..]]
        );
    }

    #[test]
    fn start_code_scan_matches_naive() {
        // Pseudo-random buffers rich in 0 and 1 bytes.
        let mut x = 12345u32;
        for len in 0..400 {
            // Half the buffers zero-rich, half with rare zeros (word skipping).
            let alphabet: &[u8] = if len % 2 == 0 {
                &[0, 0, 0, 1, 3, 0x65]
            } else {
                &[
                    0, 1, 0x65, 0x88, 0xFF, 0x42, 0x13, 0x77, 0x21, 0x99, 0xAB, 0xCD,
                ]
            };
            let d: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    alphabet[(x >> 16) as usize % alphabet.len()]
                })
                .collect();
            let fast: Vec<usize> =
                std::iter::successors(find_start_code(&d, 0), |&i| find_start_code(&d, i + 1))
                    .collect();
            let naive: Vec<usize> = d
                .windows(3)
                .enumerate()
                .filter(|(_, w)| *w == [0, 0, 1])
                .map(|(i, _)| i)
                .collect();
            assert_eq!(fast, naive, "{d:?}");
        }
    }

    #[test]
    fn start_codes() {
        assert!(has_start_code(&[0, 0, 1, 9]));
        assert!(has_start_code(&[0, 0, 0, 1, 9]));
        assert!(!has_start_code(&[0, 1, 9]));
        assert!(!has_start_code(&[0, 0, 0, 0, 1]));
        assert!(!has_start_code(&[]));
    }

    #[test]
    fn detects_codecs() {
        let h264 = [0, 0, 0, 1, 0x67, 0x4D, 0x40, 0x1E, 0, 0, 1, 0x68, 0xEE];
        assert_eq!(detect_codec(&h264), Some(VideoCodec::H264));
        assert_eq!(
            detect_codec(&[0, 0, 0, 1, 0x09, 0xF0]),
            Some(VideoCodec::H264)
        );
        let h265 = [0, 0, 0, 1, 0x40, 0x01, 0x0C, 0, 0, 1, 0x42, 0x01, 1];
        assert_eq!(detect_codec(&h265), Some(VideoCodec::H265));
        assert_eq!(
            detect_codec(&[0, 0, 1, 0x46, 0x01, 0x50]),
            Some(VideoCodec::H265)
        );
        assert_eq!(detect_codec(&[0, 0, 1, 0x65, 0x88]), None);
        assert_eq!(detect_codec(&[]), None);
        assert_eq!(detect_codec(&[1, 2, 3]), None);
    }

    #[test]
    fn h264_access_units() {
        // AUD SPS PPS IDR(first_mb 0) IDR(first_mb 1) | AUD P | P(first_mb 0) | SEI P
        let d: Vec<u8> = [
            &[0, 0, 0, 1, 0x09, 0x10][..],
            &[0, 0, 0, 1, 0x67, 0x42, 0, 0x1E],
            &[0, 0, 0, 1, 0x68, 0xCE],
            &[0, 0, 1, 0x65, 0x88, 0x80],
            &[0, 0, 1, 0x65, 0x40, 0x80],
            &[0, 0, 0, 1, 0x09, 0x30],
            &[0, 0, 1, 0x41, 0x9A],
            &[0, 0, 1, 0x41, 0x9A, 0x11],
            &[0, 0, 1, 0x06, 0x05, 0x80],
            &[0, 0, 1, 0x01, 0x9A, 0x22],
        ]
        .concat();
        let aus: Vec<&[u8]> = access_units(&d, VideoCodec::H264).collect();
        assert_eq!(aus.len(), 4);
        assert_eq!(aus.concat(), d);
        assert_eq!(nal_units(aus[0]).count(), 5);
        assert_eq!(aus[1], &[0, 0, 0, 1, 0x09, 0x30, 0, 0, 1, 0x41, 0x9A][..]);
        assert_eq!(aus[2], &[0, 0, 1, 0x41, 0x9A, 0x11][..]);
        assert_eq!(nal_units(aus[3]).count(), 2);
        assert_eq!(access_units(&[], VideoCodec::H264).count(), 0);
        assert_eq!(access_units(&[7, 7, 7], VideoCodec::H265).count(), 0);
    }

    #[test]
    fn h265_access_units() {
        // VPS SPS PPS IDR(first) IDR(not first) | TRAIL(first) suffix-SEI | TRAIL(first)
        let d: Vec<u8> = [
            &[0, 0, 0, 1, 0x40, 0x01, 0x0C][..],
            &[0, 0, 0, 1, 0x42, 0x01, 0x01],
            &[0, 0, 0, 1, 0x44, 0x01, 0xC1],
            &[0, 0, 1, 0x26, 0x01, 0xAF],
            &[0, 0, 1, 0x26, 0x01, 0x2F],
            &[0, 0, 1, 0x02, 0x01, 0xD0],
            &[0, 0, 1, 0x50, 0x01, 0x05],
            &[0, 0, 1, 0x02, 0x01, 0xD1],
            // A first slice of layer 1 stays in the same access unit.
            &[0, 0, 1, 0x02, 0x09, 0xD1],
        ]
        .concat();
        let aus: Vec<&[u8]> = access_units(&d, VideoCodec::H265).collect();
        assert_eq!(aus.len(), 3);
        assert_eq!(aus.concat(), d);
        assert_eq!(nal_units(aus[0]).count(), 5);
        assert_eq!(nal_units(aus[1]).count(), 2);
        assert_eq!(nal_units(aus[2]).count(), 2);
    }
}
