//! Fuzz ADTS parsing: whole-buffer frame iteration, single headers and
//! payload extraction, with consistency checks between them.
#![no_main]

use ivcs_media::AudioParams;
use ivcs_media::adts::{frames, parse_header, payload, write_header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_header(data);
    let _ = payload(data);
    let mut consumed = 0usize;
    for item in frames(data) {
        let Ok((h, frame)) = item else { break };
        consumed += frame.len();
        assert_eq!(frame.len(), h.frame_len);
        assert!(h.frame_len >= h.header_len);
        let (h2, raw) = payload(frame).expect("a frame from frames() has a payload");
        assert_eq!(h, h2);
        assert_eq!(raw.len(), h.frame_len - h.header_len);
        let params = AudioParams::from_adts(&h).expect("parsed headers are AAC-LC mono/stereo");
        // Writing a header for the same payload reads back the same fields.
        let w = write_header(&params, raw.len()).expect("payload fits");
        let h3 = parse_header(&w).expect("written headers parse");
        assert_eq!(
            (
                h3.sample_rate,
                h3.channels,
                h3.object_type,
                h3.frame_len - 7
            ),
            (h.sample_rate, h.channels, h.object_type, raw.len())
        );
    }
    assert!(consumed <= data.len());
});
