//! Retry policy: capped exponential backoff with jitter, and the
//! deterministic generator the jitter (and nonces) come from.
//!
//! The engine has no OS randomness: it must behave the same given the same
//! inputs. The generator is seeded from the device id and the clocks at
//! `configure`, so two cameras that lose the cloud at the same moment still
//! spread their retries, while a replay of the same inputs retries at the
//! same times.

use serde::{Deserialize, Serialize};

/// First retry delay, ms (before jitter).
pub const BASE_DELAY_MS: u64 = 500;
/// Longest retry delay, ms.
pub const MAX_DELAY_MS: u64 = 30_000;

/// SplitMix64: tiny, fast, statistically fine for jitter and nonces (not a
/// cryptographic generator; nothing secret depends on it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `parts` (FNV-1a over them).
    pub fn seeded(parts: &[&[u8]]) -> Rng {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for p in parts {
            for b in *p {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            // Separate parts so ("ab", "c") and ("a", "bc") differ.
            h ^= 0xff;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Rng(h)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-ish in `0..=max`.
    pub fn below_or_eq(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            Some(n) => self.next_u64() % n,
            None => self.next_u64(),
        }
    }
}

/// Delay before retry number `failures` (1 = after the first failure):
/// "equal jitter" over `min(cap, base * 2^(failures-1))`: half fixed, half
/// random, so retries never collapse to zero delay and never synchronise.
pub fn backoff_ms(failures: u32, cap_ms: u64, rng: &mut Rng) -> u64 {
    let shift = failures.saturating_sub(1).min(20);
    let exp = BASE_DELAY_MS
        .saturating_mul(1u64 << shift)
        .min(cap_ms.max(1));
    let half = exp / 2;
    half + rng.below_or_eq(exp - half)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_with_bounded_jitter() {
        let mut r = Rng::seeded(&[b"cam1"]);
        for n in 1..40 {
            let d = backoff_ms(n, MAX_DELAY_MS, &mut r);
            let exp = (BASE_DELAY_MS << (n - 1).min(20)).min(MAX_DELAY_MS);
            assert!(d >= exp / 2 && d <= exp, "failure {n}: {d} vs {exp}");
        }
    }

    #[test]
    fn same_seed_same_delays_different_devices_differ() {
        let seq = |id: &[u8]| {
            let mut r = Rng::seeded(&[id, b"1700000000000"]);
            (1..8)
                .map(|n| backoff_ms(n, MAX_DELAY_MS, &mut r))
                .collect::<Vec<_>>()
        };
        assert_eq!(seq(b"cam1"), seq(b"cam1"));
        assert_ne!(seq(b"cam1"), seq(b"cam2"));
    }
}
