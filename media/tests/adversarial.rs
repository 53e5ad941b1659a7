//! Hostile input: random bytes, truncations, bit flips of real parameter
//! sets and of real TS/fMP4 segments, huge Exp-Golomb values. Every parser
//! and demuxer must return (Ok or Err), never panic, and must reject what
//! cannot be valid.

mod common;

use common::testdata;
use ivcs_media::aac_enc::{AacEncoder, PcmFormat};
use ivcs_media::annexb::{access_units, detect_codec, nal_units};
use ivcs_media::bits::BitReader;
use ivcs_media::demux::OnDamage;
use ivcs_media::fmp4::Fmp4Muxer;
use ivcs_media::fmp4_demux::{Fmp4DemuxConfig, Fmp4Demuxer, Fmp4Frame};
use ivcs_media::ts::TsMuxer;
use ivcs_media::ts_demux::{TsDemuxConfig, TsDemuxer, TsFrame};
use ivcs_media::video::analyze;
use ivcs_media::{AudioParams, ErrorKind, Track, VideoCodec, VideoParams, adts, h264, h265};

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

/// One TS and one fMP4 segment muxed from the committed small fixtures
/// (H.264 160x120 and 48 kHz AAC, 3 s).
fn real_segments() -> (Vec<u8>, Vec<u8>) {
    let v = testdata("small-h264-160x120-gop1s.h264");
    let a = testdata("small-aac-48k-mono.aac");
    let aus: Vec<&[u8]> = access_units(&v, VideoCodec::H264).collect();
    let params = VideoParams::from_annexb(VideoCodec::H264, aus[0]).unwrap();
    let audio = AudioParams::aac_lc(48_000, 1).unwrap();
    let raw: Vec<&[u8]> = adts::frames(&a)
        .map(|f| adts::payload(f.unwrap().1).unwrap().1)
        .collect();
    let mut ts_mux = TsMuxer::new(VideoCodec::H264, Some(&audio));
    let mut mp4_mux = Fmp4Muxer::new(&params, Some(&audio));
    let (mut ts, mut mp4) = (Vec::new(), Vec::new());
    ts_mux.begin_segment(&mut ts);
    mp4_mux.begin_segment(&mut mp4).unwrap();
    let mut j = 0;
    for (i, au) in aus.iter().enumerate() {
        let t = 90_000 + i as u64 * 3600;
        while j < raw.len() && 90_000 + j as u64 * 1920 <= t {
            let at = 90_000 + j as u64 * 1920;
            ts_mux.write_audio(&mut ts, raw[j], &audio, at).unwrap();
            mp4_mux
                .push_audio(&mut mp4, raw[j], at * 48_000 / 90_000)
                .unwrap();
            j += 1;
        }
        let key = analyze(VideoCodec::H264, au, Some(&params))
            .unwrap()
            .keyframe;
        ts_mux.write_video(&mut ts, au, t, key, &params).unwrap();
        mp4_mux.push_video(&mut mp4, au, t, key).unwrap();
    }
    mp4_mux
        .end_segment(&mut mp4, 90_000 + aus.len() as u64 * 3600)
        .unwrap();
    (ts, mp4)
}

const CAP: usize = 3000;

/// Demux `data` in chunks of the given sizes (cycled) with damage skipped:
/// must not fail, and never emits a frame over the cap.
fn demux_ts(data: &[u8], chunks: &[usize]) -> Vec<TsFrame> {
    let mut d = TsDemuxer::new(TsDemuxConfig {
        max_frame_bytes: CAP,
        on_damage: OnDamage::Skip,
    });
    let mut out = Vec::new();
    let mut rest = data;
    for &n in chunks.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (now, later) = rest.split_at(n.clamp(1, rest.len()));
        d.push(now, &mut out).unwrap();
        rest = later;
    }
    d.finish(&mut out).unwrap();
    assert!(out.iter().all(|f| f.data.len() <= CAP));
    out
}

fn demux_mp4(data: &[u8], chunks: &[usize]) -> Vec<Fmp4Frame> {
    let mut d = Fmp4Demuxer::new(Fmp4DemuxConfig {
        max_frame_bytes: CAP,
        on_damage: OnDamage::Skip,
    });
    let mut out = Vec::new();
    let mut rest = data;
    for &n in chunks.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (now, later) = rest.split_at(n.clamp(1, rest.len()));
        d.push(now, &mut out).unwrap();
        rest = later;
    }
    d.finish(&mut out).unwrap();
    assert!(out.iter().all(|f| f.data.len() <= CAP));
    out
}

#[test]
fn demuxers_survive_random_bytes() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    for i in 0..2000 {
        let n = (rng.next() % 5000) as usize;
        let mut data = rng.bytes(n);
        if i % 2 == 0 {
            // Sync bytes where packets would start, so packets get parsed.
            for k in (0..data.len()).step_by(188) {
                data[k] = 0x47;
            }
        } else if n >= 8 {
            // A plausible box header first.
            let kind: &[u8; 4] = [b"moov", b"moof", b"mdat", b"ftyp"][i % 4];
            data[..4].copy_from_slice(&(n as u32 - (rng.next() % 16) as u32).to_be_bytes());
            data[4..8].copy_from_slice(kind);
        }
        let chunks = [1 + (rng.next() % 400) as usize, 188, 7];
        demux_ts(&data, &chunks);
        demux_mp4(&data, &chunks);
        // Strict mode: errors, never a panic.
        let mut d = TsDemuxer::new(TsDemuxConfig {
            on_damage: OnDamage::Fail,
            ..TsDemuxConfig::default()
        });
        let _ = d.push(&data, &mut Vec::new());
        let _ = d.finish(&mut Vec::new());
        let mut d = Fmp4Demuxer::new(Fmp4DemuxConfig {
            on_damage: OnDamage::Fail,
            ..Fmp4DemuxConfig::default()
        });
        let _ = d.push(&data, &mut Vec::new());
        let _ = d.finish(&mut Vec::new());
    }
}

#[test]
fn demuxers_survive_truncation_and_bit_flips_of_real_segments() {
    let (ts, mp4) = real_segments();
    let full_ts = demux_ts(&ts, &[4096]);
    let full_mp4 = demux_mp4(&mp4, &[4096]);
    assert_eq!(
        full_ts.iter().filter(|f| f.track == Track::Video).count(),
        75
    );
    assert_eq!(
        full_mp4.iter().filter(|f| f.track == Track::Video).count(),
        75
    );
    let of = |frames: &[TsFrame], t: Track| -> Vec<TsFrame> {
        frames.iter().filter(|f| f.track == t).cloned().collect()
    };

    // Truncated anywhere: what comes out is the start of the full output
    // (for TS, an unbounded video PES cut at a packet boundary may come out
    // short, so the last video frame is exempt).
    for cut in (0..ts.len()).step_by(97) {
        let got = demux_ts(&ts[..cut], &[1000, 188]);
        let audio = of(&got, Track::Audio);
        assert_eq!(audio[..], of(&full_ts, Track::Audio)[..audio.len()]);
        let video = of(&got, Track::Video);
        let n = video.len().saturating_sub(1);
        assert_eq!(video[..n], of(&full_ts, Track::Video)[..n]);
    }
    for cut in (0..mp4.len()).step_by(89) {
        let got = demux_mp4(&mp4[..cut], &[1000, 8]);
        assert_eq!(got[..], full_mp4[..got.len()], "cut at {cut}");
    }

    // Bit flips: anything may come out, but no panic, error or oversize.
    let mut rng = Rng(99);
    for _ in 0..1500 {
        for (seg, is_ts) in [(&ts, true), (&mp4, false)] {
            let mut m = seg.clone();
            for _ in 0..1 + rng.next() % 8 {
                let bit = (rng.next() % (m.len() as u64 * 8)) as usize;
                m[bit / 8] ^= 1 << (bit % 8);
            }
            let chunks = [1 + (rng.next() % 3000) as usize];
            if is_ts {
                demux_ts(&m, &chunks);
            } else {
                demux_mp4(&m, &chunks);
            }
        }
    }
}
