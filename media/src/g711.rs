//! ITU-T G.711 A-law and µ-law: decoding to 16-bit linear PCM (the same
//! values as ffmpeg's `pcm_alaw`/`pcm_mulaw` decoders) and encoding from it.
//!
//! Decoding is a table lookup; the tables are built at compile time.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

const SIGN_BIT: u8 = 0x80;
const QUANT_MASK: u8 = 0x0F;
const SEG_SHIFT: u32 = 4;
const SEG_MASK: u8 = 0x70;
/// µ-law bias (0x84 = 132).
const BIAS: i32 = 0x84;

const fn alaw_to_linear(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mut t = (a & QUANT_MASK) as i32;
    let seg = ((a & SEG_MASK) >> SEG_SHIFT) as u32;
    if seg != 0 {
        t = (t + t + 1 + 32) << (seg + 2);
    } else {
        t = (t + t + 1) << 3;
    }
    // |t| <= 32256, so the cast is lossless.
    (if a & SIGN_BIT != 0 { t } else { -t }) as i16
}

const fn ulaw_to_linear(code: u8) -> i16 {
    let u = !code;
    let mut t = (((u & QUANT_MASK) as i32) << 3) + BIAS;
    t <<= ((u & SEG_MASK) >> SEG_SHIFT) as u32;
    // |t - BIAS| <= 32124, so the cast is lossless.
    (if u & SIGN_BIT != 0 {
        BIAS - t
    } else {
        t - BIAS
    }) as i16
}

// Evaluated at compile time only, so an out-of-range index would be a
// build error, not a runtime panic.
#[allow(clippy::indexing_slicing)]
const fn alaw_table() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_to_linear(i as u8);
        i += 1;
    }
    t
}

#[allow(clippy::indexing_slicing)]
const fn ulaw_table() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_to_linear(i as u8);
        i += 1;
    }
    t
}

/// A-law code → linear sample.
pub static ALAW_TO_LINEAR: [i16; 256] = alaw_table();
/// µ-law code → linear sample.
pub static ULAW_TO_LINEAR: [i16; 256] = ulaw_table();

/// Decode one A-law byte.
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_TO_LINEAR.get(usize::from(code)).copied().unwrap_or(0)
}

/// Decode one µ-law byte.
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_TO_LINEAR.get(usize::from(code)).copied().unwrap_or(0)
}

/// First segment whose end is >= `v`, or 8.
fn segment(v: i32, ends: &[i32; 8]) -> u8 {
    ends.iter().position(|&e| v <= e).map_or(8, |s| s as u8)
}

/// Encode one linear sample to A-law (the classic reference quantiser,
/// rounding towards zero within a step).
pub fn alaw_encode(sample: i16) -> u8 {
    const ENDS: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let mut v = i32::from(sample) >> 3;
    let mask = if v >= 0 {
        0xD5
    } else {
        v = -v - 1;
        0x55
    };
    let seg = segment(v, &ENDS);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let shift = if seg < 2 { 1 } else { u32::from(seg) };
    let aval = (seg << SEG_SHIFT) | ((v >> shift) as u8 & QUANT_MASK);
    aval ^ mask
}

/// Encode one linear sample to µ-law (the classic reference quantiser).
pub fn ulaw_encode(sample: i16) -> u8 {
    const ENDS: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
    const CLIP: i32 = 8159;
    let mut v = i32::from(sample) >> 2;
    let mask = if v < 0 {
        v = -v;
        0x7F
    } else {
        0xFF
    };
    v = v.min(CLIP) + (BIAS >> 2);
    let seg = segment(v, &ENDS);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let uval = (seg << SEG_SHIFT) | ((v >> (u32::from(seg) + 1)) as u8 & QUANT_MASK);
    uval ^ mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // Reference points from the G.711 tables.
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
    }

    #[test]
    fn encode_inverts_decode() {
        for c in 0..=255u8 {
            assert_eq!(alaw_encode(alaw_decode(c)), c, "A-law {c:#x}");
            // µ-law has two zeros (0x7F, 0xFF); 0 encodes as 0xFF.
            let want = if c == 0x7F { 0xFF } else { c };
            assert_eq!(ulaw_encode(ulaw_decode(c)), want, "µ-law {c:#x}");
        }
    }

    #[test]
    fn encode_is_monotonic_and_close() {
        let mut prev_a = i16::MIN;
        let mut prev_u = i16::MIN;
        for s in (i16::MIN..=i16::MAX).step_by(7) {
            let a = alaw_decode(alaw_encode(s));
            let u = ulaw_decode(ulaw_encode(s));
            assert!(a >= prev_a && u >= prev_u, "{s}");
            prev_a = a;
            prev_u = u;
            // Within one quantisation step (1024 at the top segment).
            assert!((i32::from(a) - i32::from(s)).abs() <= 1024, "{s} {a}");
            assert!((i32::from(u) - i32::from(s)).abs() <= 1024, "{s} {u}");
        }
    }
}
