//! Fuzz Annex-B splitting: NAL units, access units and codec detection.
//! Besides "no panic", checks that access units tile the NAL units.
#![no_main]

use ivcs_media::VideoCodec;
use ivcs_media::annexb::{access_units, detect_codec, has_start_code, nal_units};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = detect_codec(data);
    let _ = has_start_code(data);
    for nal in nal_units(data) {
        assert!(!nal.is_empty());
        assert_ne!(nal.last(), Some(&0));
    }
    for codec in [VideoCodec::H264, VideoCodec::H265] {
        let mut all = nal_units(data);
        for au in access_units(data, codec) {
            assert!(has_start_code(au) || au.starts_with(&[0]));
            for nal in nal_units(au) {
                assert_eq!(
                    Some(nal),
                    all.next(),
                    "access units must tile the NAL units"
                );
            }
        }
        assert_eq!(all.next(), None, "NAL units left outside every access unit");
    }
});
