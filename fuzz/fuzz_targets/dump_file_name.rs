//! Fuzz the one parser of text firmware hands back to the engine: the dump
//! file name of `backup-upload`. Anything accepted must be canonical (it
//! prints back to the same name), a bare name, and within the cloud's id
//! rules.
#![no_main]

use ivcs_engine::data::names::{file_name, parse_file_name, segment_id};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(f) = parse_file_name(s) {
        assert_eq!(file_name(&f.segment_id, f.container), s);
        assert_eq!(
            segment_id(f.channel, f.utc_start_ms, f.boot, f.n),
            f.segment_id
        );
        assert!(f.channel < 5);
        assert!(!s.contains('/') && !s.contains("..") && !s.starts_with('.'));
        assert!(f.segment_id.len() <= 96);
        assert!(
            f.segment_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        );
    }
});
