//! Hostile input: random bytes, truncations, bit flips of real parameter
//! sets, huge Exp-Golomb values. Every parser must return (Ok or Err),
//! never panic, and must reject what cannot be valid.

use ivcs_media::aac_enc::{AacEncoder, PcmFormat};
use ivcs_media::annexb::{access_units, detect_codec, nal_units};
use ivcs_media::bits::BitReader;
use ivcs_media::video::analyze;
use ivcs_media::{ErrorKind, VideoCodec, VideoParams, adts, h264, h265};

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// Bytes biased towards 0x00/0x01/0x03 so start codes and emulation
    /// prevention appear often.
    fn annexb_like(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| match self.next() % 8 {
                0..=2 => 0,
                3 => 1,
                4 => 3,
                _ => self.next() as u8,
            })
            .collect()
    }
}

const H264_SPS: &[u8] = &[
    0x67, 0x4D, 0x40, 0x0D, 0xD9, 0x01, 0x41, 0xFB, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00,
    0x00, 0x03, 0x03, 0x20, 0xF1, 0x42, 0xA4, 0x80,
];
const H264_PPS: &[u8] = &[0x68, 0xEB, 0xC3, 0xCB, 0x20];
const H264_IDR: &[u8] = &[0x65, 0x88, 0x84, 0x27, 0xA5, 0x41];
const H265_VPS: &[u8] = &[
    0x40, 0x01, 0x0C, 0x01, 0xFF, 0xFF, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03,
    0x00, 0x00, 0x03, 0x00, 0x3C, 0x92, 0x80, 0x90,
];
const H265_SPS: &[u8] = &[
    0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03,
    0x00, 0x3C, 0xA0, 0x0A, 0x08, 0x0F, 0x16, 0x59, 0x2A, 0x49, 0x32, 0xBC, 0x05, 0xA0, 0x20, 0x00,
    0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x03, 0x03, 0x21,
];
const H265_PPS: &[u8] = &[0x44, 0x01, 0xC1, 0x72, 0xB4, 0x62, 0x40];
const H265_IDR: &[u8] = &[0x28, 0x01, 0xAF, 0x1D, 0x20, 0xBC];

fn annexb(nals: &[&[u8]]) -> Vec<u8> {
    nals.iter()
        .flat_map(|n| [&[0, 0, 0, 1][..], n].concat())
        .collect()
}

/// Run every video entry point on `data`; only panics matter.
fn exercise_video(data: &[u8]) {
    let _ = detect_codec(data);
    let _ = nal_units(data).count();
    for codec in [VideoCodec::H264, VideoCodec::H265] {
        for au in access_units(data, codec) {
            let _ = analyze(codec, au, None);
        }
        let _ = analyze(codec, data, None);
    }
    for nal in nal_units(data) {
        let _ = h264::parse_sps(nal);
        let _ = h264::parse_pps(nal);
        let _ = h264::parse_slice_header(nal);
        let _ = h265::parse_vps(nal);
        let _ = h265::parse_sps(nal);
        let _ = h265::parse_pps(nal);
        let _ = h265::parse_slice_header(nal, |_| h265::parse_pps(H265_PPS));
        let _ = VideoParams::from_parameter_sets(VideoCodec::H264, &[], &[nal], &[nal]);
        let _ = VideoParams::from_parameter_sets(VideoCodec::H265, &[nal], &[nal], &[nal]);
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for i in 0..3000 {
        let n = (rng.next() % 300) as usize;
        let data = if i % 2 == 0 {
            rng.bytes(n)
        } else {
            rng.annexb_like(n)
        };
        exercise_video(&data);
        let _ = adts::parse_header(&data);
        let _ = adts::payload(&data);
        let _ = adts::frames(&data).count();
        let mut r = BitReader::new(&data);
        while r.read_ue().is_ok() || r.read_se().is_ok() {}
    }
}

#[test]
fn zero_length_and_tiny_inputs() {
    for data in [
        &[][..],
        &[0],
        &[0, 0],
        &[0, 0, 1],
        &[0, 0, 0, 1],
        &[0xFF],
        &[0xFF, 0xF1],
    ] {
        exercise_video(data);
        for codec in [VideoCodec::H264, VideoCodec::H265] {
            assert_eq!(
                analyze(codec, data, None).unwrap_err().kind(),
                ErrorKind::Malformed
            );
        }
        assert!(adts::parse_header(data).is_err());
        assert!(adts::payload(data).is_err());
        assert!(h264::parse_sps(data).is_err());
        assert!(h265::parse_sps(data).is_err());
    }
    assert!(VideoParams::from_parameter_sets(VideoCodec::H264, &[], &[], &[]).is_err());
    assert!(
        VideoParams::from_parameter_sets(VideoCodec::H265, &[], &[H265_SPS], &[H265_PPS]).is_err()
    );
}

#[test]
fn truncated_and_bit_flipped_parameter_sets() {
    let mut rng = Rng(42);
    let h264_au = annexb(&[H264_SPS, H264_PPS, H264_IDR]);
    let h265_au = annexb(&[H265_VPS, H265_SPS, H265_PPS, H265_IDR]);
    let good264 = analyze(VideoCodec::H264, &h264_au, None).unwrap();
    assert!(good264.keyframe && good264.params.is_some());
    let good265 = analyze(VideoCodec::H265, &h265_au, None).unwrap();
    assert!(good265.keyframe && good265.params.is_some());
    for au in [&h264_au, &h265_au] {
        for n in 0..au.len() {
            exercise_video(&au[..n]);
        }
        for _ in 0..3000 {
            let mut m = au.clone();
            for _ in 0..1 + rng.next() % 4 {
                let bit = (rng.next() % (m.len() as u64 * 8)) as usize;
                m[bit / 8] ^= 1 << (bit % 8);
            }
            exercise_video(&m);
        }
    }
}

#[test]
fn huge_exp_golomb_values_rejected() {
    // seq_parameter_set_id = 2^32 - 1 (32 zeros, 1, 32 ones).
    let sps = [
        0x67, 0x42, 0x00, 0x1E, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x80,
    ];
    assert_eq!(
        h264::parse_sps(&sps).unwrap_err().kind(),
        ErrorKind::Malformed
    );
    // 40 leading zeros.
    let sps = [0x67, 0x42, 0x00, 0x1E, 0, 0, 0, 0, 0, 0xFF];
    assert!(h264::parse_sps(&sps).is_err());
    // pic_width_in_mbs_minus1 huge: id 0, log2 0, poc 2, refs 0, gaps 0, width 2^20.
    // bits: 1 1 011 1 0 | 000000000000000000001 00000000000000000000 ...
    let sps = [
        0x67,
        0x42,
        0x00,
        0x1E,
        0b1101_1100,
        0,
        0,
        0b0000_1000,
        0,
        0,
        0x80,
    ];
    assert!(h264::parse_sps(&sps).is_err());
    // H.265 PPS id beyond 63.
    let pps = [0x44, 0x01, 0x00, 0x00, 0x00, 0x80];
    assert!(h265::parse_pps(&pps).is_err());
    // Slice with first_mb 0 and slice_type 2^31.
    let slice = [0x65, 0x80, 0, 0, 0, 0x80, 0, 0, 0, 0];
    assert!(h264::parse_slice_header(&slice).is_err());
}

/// A baseline SPS from the bit string after level_idc (stop bit added).
fn sps_from_bits(bits: &str) -> Vec<u8> {
    let mut sps = vec![0x67, 0x42, 0x00, 0x0A];
    let mut s = bits.to_string();
    s.push('1');
    while !s.len().is_multiple_of(8) {
        s.push('0');
    }
    for chunk in s.as_bytes().chunks(8) {
        sps.push(u8::from_str_radix(std::str::from_utf8(chunk).unwrap(), 2).unwrap());
    }
    sps
}

#[test]
fn cropping_beyond_picture_rejected() {
    // 32x16 (2x1 MBs), frame_mbs_only, cropping right by `right` (units of 2):
    // id 0: 1 | log2_max_frame_num-4 = 0: 1 | poc type 2: 011 | refs 0: 1 |
    // gaps 0 | width-1 = 1: 010 | height-1 = 0: 1 | frame_mbs_only 1 |
    // direct8x8 1 | cropping 1 | left 0: 1 | right | top 0: 1 | bottom 0: 1 | vui 0
    let sps = |right: &str| sps_from_bits(&format!("110111001011111{right}110"));
    assert_eq!(h264::parse_sps(&sps("1")).unwrap().width, 32);
    assert_eq!(h264::parse_sps(&sps("00111")).unwrap().width, 20); // right 6
    assert_eq!(h264::parse_sps(&sps("0001001")).unwrap().width, 16); // right 8
    let e = h264::parse_sps(&sps("000010001")).unwrap_err(); // right 16: width 0
    assert_eq!(e.kind(), ErrorKind::Malformed, "{e}");
    let e = h264::parse_sps(&sps("0000001100101")).unwrap_err(); // right 100
    assert_eq!(e.kind(), ErrorKind::Malformed, "{e}");
}

#[test]
fn audio_encoder_rejects_partial_samples() {
    let mut e = AacEncoder::new(PcmFormat::S16Le, 48_000, 2).unwrap();
    let mut out = |_: &[u8], _: u64| {};
    for n in [1usize, 2, 3, 5, 6, 7] {
        assert_eq!(
            e.encode(&vec![0; n], 0, &mut out).unwrap_err().kind(),
            ErrorKind::Malformed
        );
    }
    let mut rng = Rng(7);
    // Random PCM of every format encodes without error.
    for fmt in [PcmFormat::S16Le, PcmFormat::ALaw, PcmFormat::MuLaw] {
        let mut e = AacEncoder::new(fmt, 8000, 1).unwrap();
        let mut units = 0;
        let mut out = |au: &[u8], _: u64| {
            assert!(!au.is_empty());
            units += 1;
        };
        for _ in 0..20 {
            let n = 2 * (1 + rng.next() % 400) as usize;
            e.encode(&rng.bytes(n), 0, &mut out).unwrap();
        }
        e.finish(&mut out).unwrap();
        assert!(units > 0);
    }
}
