//! Reuses the buffers of large frames between `iv_cs_push_stream` calls.
//!
//! A push copies the frame before it returns; the engine thread drops the
//! copy once the engine has it. A fresh 200 KB allocation per I frame is
//! served by glibc from pages it trimmed back to the kernel after the last
//! one, so the copy page-faults its way through fresh memory (p50 112 µs
//! against 34 µs into resident pages, measured by `make bench`). Keeping the
//! last few large buffers resident makes the push a plain `memcpy`. Small
//! frames (P frames, audio) come from malloc's caches and are not pooled.
//! Large frames are copied with streaming stores ([`crate::stream_copy`]).

use crate::service::lock;
use crate::stream_copy;
use std::sync::Mutex;

/// Frames at least this large are copied into pooled buffers.
const POOLED_MIN: usize = 64 << 10;
/// Buffers kept: one frame in flight to the engine plus the one being
/// copied covers a single channel; more would only hold memory.
const KEPT: usize = 2;

/// The free buffers.
#[derive(Default)]
pub struct FramePool {
    free: Mutex<Vec<Vec<u8>>>,
}

impl FramePool {
    /// A copy of `data`, in a pooled buffer when it is large.
    pub fn copy(&self, data: &[u8]) -> Vec<u8> {
        if data.len() < POOLED_MIN {
            return data.to_vec();
        }
        let mut free = lock(&self.free);
        let mut b = match free.iter().position(|b| b.capacity() >= data.len()) {
            Some(i) => free.swap_remove(i),
            // Headroom, so that the next slightly larger I frame still
            // fits: a new buffer page-faults through every page the copy
            // touches (~1 µs a page here). Untouched pages cost no memory.
            None => Vec::with_capacity(data.len() + data.len() / 4),
        };
        drop(free);
        b.clear();
        stream_copy::extend(&mut b, data);
        b
    }

    /// Gives a frame's buffer back once the engine has the frame. When the
    /// pool is full the smallest buffer goes, so the pool follows the
    /// largest frames (I frames) the camera sends.
    pub fn recycle(&self, b: Vec<u8>) {
        if b.capacity() < POOLED_MIN {
            return;
        }
        let mut free = lock(&self.free);
        if free.len() < KEPT {
            free.push(b);
        } else if let Some((i, _)) = free
            .iter()
            .enumerate()
            .min_by_key(|(_, f)| f.capacity())
            .filter(|(_, f)| f.capacity() < b.capacity())
        {
            free[i] = b;
        }
    }

    /// Frees every pooled buffer (the session ended).
    pub fn clear(&self) {
        lock(&self.free).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_buffers_are_reused_and_small_ones_are_not_pooled() {
        let pool = FramePool::default();
        let big = vec![7u8; 200_000];
        let a = pool.copy(&big);
        assert_eq!(a, big);
        let ptr = a.as_ptr();
        pool.recycle(a);
        let b = pool.copy(&big[..100_000]);
        assert_eq!(b.as_ptr(), ptr, "the pooled buffer is reused");
        assert_eq!(b.as_slice(), &big[..100_000]);
        pool.recycle(b);
        let bigger = vec![9u8; 240_000];
        let c = pool.copy(&bigger);
        assert_eq!(c.as_ptr(), ptr, "a slightly larger frame fits the headroom");
        assert_eq!(c, bigger);
        pool.recycle(vec![0u8; 1000]);
        assert_eq!(lock(&pool.free).len(), 0, "small buffers are not kept");
    }

    #[test]
    fn a_full_pool_keeps_the_largest_buffers() {
        let pool = FramePool::default();
        for n in [70_000, 80_000, 300_000, 75_000] {
            pool.recycle(Vec::with_capacity(n));
        }
        let mut caps: Vec<usize> = lock(&pool.free).iter().map(Vec::capacity).collect();
        caps.sort_unstable();
        assert_eq!(caps, [80_000, 300_000]);
        pool.clear();
        assert!(lock(&pool.free).is_empty());
    }
}
