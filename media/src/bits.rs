//! An RBSP bit reader for H.264/H.265 NAL payloads: removes
//! emulation-prevention bytes (`00 00 03`) on the fly, without allocating,
//! and reads fixed-width fields and Exp-Golomb codes.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use crate::{Error, Result};

/// Reads bits MSB-first from a NAL payload (the bytes after the NAL header),
/// skipping emulation-prevention bytes.
///
/// Bits are pulled into a 64-bit cache one RBSP byte at a time, so
/// fixed-width reads are a shift and a mask.
#[derive(Clone, Debug)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Next raw byte of `data` to load.
    pos: usize,
    /// Consecutive zero bytes most recently loaded (for `00 00 03`).
    zeros: u8,
    /// Unread bits, left-aligned (the next bit is bit 63).
    cache: u64,
    /// Valid bits in `cache`.
    cache_bits: u32,
    /// RBSP bits consumed so far.
    consumed: u64,
}

impl<'a> BitReader<'a> {
    /// A reader over `data`, a NAL payload without its NAL header.
    pub fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            pos: 0,
            zeros: 0,
            cache: 0,
            cache_bits: 0,
            consumed: 0,
        }
    }

    /// The next RBSP byte, with emulation-prevention bytes dropped.
    fn next_byte(&mut self) -> Option<u8> {
        loop {
            let b = *self.data.get(self.pos)?;
            self.pos += 1;
            if self.zeros >= 2 && b == 3 {
                // 00 00 03: the 03 only exists to break start-code emulation.
                self.zeros = 0;
                continue;
            }
            if b == 0 {
                self.zeros = self.zeros.saturating_add(1);
            } else {
                self.zeros = 0;
            }
            return Some(b);
        }
    }

    /// Fill the cache so it holds at least `n` bits (n <= 57) if the data allows.
    fn refill(&mut self, n: u32) {
        while self.cache_bits < n {
            let Some(b) = self.next_byte() else { return };
            self.cache |= u64::from(b) << (56 - self.cache_bits);
            self.cache_bits += 8;
        }
    }

    /// Take `n` (1..=32) bits from the cache, which must hold them.
    fn take(&mut self, n: u32) -> u32 {
        let v = (self.cache >> (64 - n)) as u32;
        self.cache = self.cache.checked_shl(n).unwrap_or(0);
        self.cache_bits -= n;
        self.consumed += u64::from(n);
        v
    }

    /// One bit.
    pub fn read_bit(&mut self) -> Result<bool> {
        Ok(self.read_bits(1)? == 1)
    }

    /// `n` bits (0..=32) as an unsigned integer, MSB first.
    pub fn read_bits(&mut self, n: u32) -> Result<u32> {
        if n == 0 {
            return Ok(0);
        }
        if n > 32 {
            return Err(Error::malformed(format!("bit read of {n} bits (max 32)")));
        }
        self.refill(n);
        if self.cache_bits < n {
            return Err(self.eof(n));
        }
        Ok(self.take(n))
    }

    /// `n` bits (0..=64) as an unsigned integer, MSB first.
    pub fn read_u64_bits(&mut self, n: u32) -> Result<u64> {
        if n > 64 {
            return Err(Error::malformed(format!("bit read of {n} bits (max 64)")));
        }
        let hi_n = n.saturating_sub(32);
        let hi = u64::from(self.read_bits(hi_n)?);
        let lo = u64::from(self.read_bits(n - hi_n)?);
        Ok((hi << (n - hi_n)) | lo)
    }

    /// Skip `n` bits.
    pub fn skip_bits(&mut self, n: u32) -> Result<()> {
        let mut left = n;
        while left > 0 {
            let k = left.min(32);
            self.read_bits(k)?;
            left -= k;
        }
        Ok(())
    }

    /// An unsigned Exp-Golomb code `ue(v)`; values needing more than 32
    /// leading zeros, or not fitting `u32`, are rejected.
    pub fn read_ue(&mut self) -> Result<u32> {
        let mut zeros = 0u32;
        while !self.read_bit()? {
            zeros += 1;
            if zeros > 32 {
                return Err(Error::malformed(format!(
                    "Exp-Golomb code with more than 32 leading zeros at bit {}",
                    self.consumed
                )));
            }
        }
        let suffix = u64::from(self.read_bits(zeros)?);
        let v = (1u64 << zeros) - 1 + suffix;
        u32::try_from(v)
            .map_err(|_| Error::malformed(format!("Exp-Golomb value {v} does not fit 32 bits")))
    }

    /// A signed Exp-Golomb code `se(v)`.
    pub fn read_se(&mut self) -> Result<i32> {
        let k = i64::from(self.read_ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        i32::try_from(v).map_err(|_| {
            Error::malformed(format!("signed Exp-Golomb value {v} does not fit 32 bits"))
        })
    }

    /// `ue(v)` that must be at most `max`; `what` names the field in errors.
    pub fn read_ue_max(&mut self, max: u32, what: &str) -> Result<u32> {
        let v = self.read_ue()?;
        if v > max {
            return Err(Error::malformed(format!("{what} = {v} (max {max})")));
        }
        Ok(v)
    }

    /// `se(v)` that must lie in `min..=max`; `what` names the field in errors.
    pub fn read_se_range(&mut self, min: i32, max: i32, what: &str) -> Result<i32> {
        let v = self.read_se()?;
        if v < min || v > max {
            return Err(Error::malformed(format!(
                "{what} = {v} (range {min}..={max})"
            )));
        }
        Ok(v)
    }

    /// Whether RBSP data remains before the `rbsp_trailing_bits` (the final
    /// 1 bit and its zero padding), as `more_rbsp_data()` in the specs.
    pub fn has_more_rbsp_data(&self) -> bool {
        // Scan a copy: data remains iff a 1 bit exists after the next bit
        // (the last 1 bit is the stop bit). Parameter sets are tiny.
        let mut r = self.clone();
        if r.read_bit().is_err() {
            return false;
        }
        r.cache != 0 || std::iter::from_fn(|| r.next_byte()).any(|b| b != 0)
    }

    /// RBSP bits consumed so far (emulation-prevention bytes not counted).
    pub fn bits_read(&self) -> u64 {
        self.consumed
    }

    /// Whether the reader is at a byte boundary of the RBSP.
    pub fn is_byte_aligned(&self) -> bool {
        self.consumed.is_multiple_of(8)
    }

    fn eof(&self, n: u32) -> Error {
        Error::malformed(format!(
            "NAL payload ends at bit {} while reading {n} bits",
            self.consumed
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_width_reads() {
        let d = [0b1010_1100, 0xFF, 0x00, 0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC];
        let mut r = BitReader::new(&d);
        assert!(r.read_bit().unwrap());
        assert!(!r.read_bit().unwrap());
        assert_eq!(r.read_bits(6).unwrap(), 0b10_1100);
        assert_eq!(r.read_bits(8).unwrap(), 0xFF);
        assert_eq!(r.read_bits(0).unwrap(), 0);
        assert_eq!(r.read_bits(32).unwrap(), 0x0012_3456);
        assert_eq!(r.bits_read(), 48);
        assert_eq!(r.read_u64_bits(24).unwrap(), 0x789ABC);
        assert!(r.read_bit().is_err());
        assert!(r.read_bits(33).is_err());
    }

    #[test]
    fn u64_reads() {
        let d = [0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xF0];
        let mut r = BitReader::new(&d);
        assert_eq!(r.read_u64_bits(64).unwrap(), 0x0123_4567_89AB_CDEF);
        assert_eq!(r.read_u64_bits(4).unwrap(), 0xF);
        assert!(r.read_u64_bits(65).is_err());
    }

    #[test]
    fn emulation_prevention_removed() {
        // 00 00 03 01 → RBSP 00 00 01; a 03 not after two zeros stays.
        let d = [
            0x00, 0x00, 0x03, 0x01, 0x03, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03,
        ];
        let mut r = BitReader::new(&d);
        assert_eq!(r.read_bits(24).unwrap(), 0x000001);
        assert_eq!(r.read_bits(8).unwrap(), 0x03);
        assert_eq!(r.read_bits(32).unwrap(), 0);
        assert!(r.read_bit().is_err());
    }

    #[test]
    fn exp_golomb() {
        // 1 | 010 | 011 | 00100 | 00101 | 0001000 → ue 0,1,2,3,4,7
        // bits: 1010 0110 0100 0010 1000 1000 (pad)
        let d = [0b1010_0110, 0b0100_0010, 0b1000_1000];
        let mut r = BitReader::new(&d);
        let got: Vec<u32> = (0..6).map(|_| r.read_ue().unwrap()).collect();
        assert_eq!(got, [0, 1, 2, 3, 4, 7]);
        // se: codeNum 1 → 1, 2 → -1, 3 → 2, 4 → -2
        let d = [0b0100_1100, 0b1000_0101, 0];
        let mut r = BitReader::new(&d);
        let got: Vec<i32> = (0..4).map(|_| r.read_se().unwrap()).collect();
        assert_eq!(got, [1, -1, 2, -2]);
    }

    #[test]
    fn exp_golomb_limits() {
        // 32 zeros, 1, 32 zero bits → 2^32 - 1 fits.
        let mut d = vec![0u8; 4];
        d.push(0x80);
        d.extend([0u8; 4]);
        let mut r = BitReader::new(&d);
        assert_eq!(r.read_ue().unwrap(), u32::MAX);
        // Same with a nonzero suffix overflows.
        let mut d = vec![0u8; 4];
        d.extend([0x80, 0, 0, 0, 0x80]);
        assert!(BitReader::new(&d).read_ue().is_err());
        // 33 zeros.
        let d = [0u8, 0, 0, 0, 0x40, 0, 0, 0, 0, 0];
        assert!(BitReader::new(&d).read_ue().is_err());
        // All zeros: runs out of data or zeros.
        assert!(BitReader::new(&[0u8; 64]).read_ue().is_err());
        assert!(BitReader::new(&[]).read_ue().is_err());
        // se of 2^32 - 1 → 2^31 does not fit i32.
        let mut d = vec![0u8; 4];
        d.push(0x80);
        d.extend([0u8; 4]);
        assert!(BitReader::new(&d).read_se().is_err());
    }

    #[test]
    fn more_rbsp_data() {
        // data bit 1, then stop bit: 1 1 000000
        let d = [0b1100_0000];
        let mut r = BitReader::new(&d);
        assert!(r.has_more_rbsp_data());
        r.read_bit().unwrap();
        assert!(!r.has_more_rbsp_data());
        // 0 then stop bit in the next byte, with trailing zero bytes.
        let d = [0b0000_0000, 0b1000_0000, 0, 0];
        let mut r = BitReader::new(&d);
        assert!(r.has_more_rbsp_data());
        r.skip_bits(7).unwrap();
        assert!(r.has_more_rbsp_data());
        r.skip_bits(1).unwrap();
        assert!(!r.has_more_rbsp_data());
        assert!(!BitReader::new(&[]).has_more_rbsp_data());
        let d = [0x80, 0x00, 0x00, 0x03, 0x00, 0x80];
        assert!(BitReader::new(&d).has_more_rbsp_data());
    }
}
