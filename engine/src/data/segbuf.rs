//! The bytes of one segment while it is recorded and uploaded.
//!
//! Bytes arrive from the muxer as the segment grows and are kept until the
//! cloud acknowledges the segment's commit, so a broken upload can be sent
//! again from memory. When the channel's budget needs room, bytes that the
//! upload in flight has already handed to the host may be *released*
//! early ([`SegBuf::release_to`]); the segment then cannot be re-sent from
//! memory (a failed upload goes to the dump/backup path instead). Bytes not
//! yet handed over are never released here: the channel drops frames
//! instead (to the next IDR), so what is uploaded stays a valid segment.
//!
//! The digest and length cover every byte produced, released or not: they
//! are what the commit and a later backup upload declare.

use crate::cloud::request::Source;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;

/// Chunks are merged up to this size, so a segment holds few of them.
const CHUNK: usize = 64 << 10;

/// See the module docs.
#[derive(Clone, Default)]
pub struct SegBuf {
    chunks: VecDeque<Vec<u8>>,
    /// Offset of the first kept byte.
    base: u64,
    /// Bytes produced so far.
    produced: u64,
    closed: bool,
    hasher: Sha256,
    digest: Option<String>,
    /// New bytes are counted (digest, length) but not kept.
    discard: bool,
}

impl SegBuf {
    /// Appends muxed bytes.
    pub fn append(&mut self, d: &[u8]) {
        self.hasher.update(d);
        self.produced = self.produced.saturating_add(d.len() as u64);
        if self.discard {
            self.base = self.produced;
            return;
        }
        match self.chunks.back_mut() {
            Some(last) if last.len() + d.len() <= CHUNK => last.extend_from_slice(d),
            _ => self.chunks.push_back(d.to_vec()),
        }
    }

    /// No more bytes: fixes the digest.
    pub fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            let h = std::mem::take(&mut self.hasher);
            self.digest = Some(hex::encode(h.finalize()));
        }
    }

    /// Whether the segment is closed.
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// Lowercase hex SHA-256 of all bytes, once closed.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// Bytes produced.
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// Bytes held in memory (what counts against the budget; allocation
    /// slack of the last chunk aside).
    pub fn retained(&self) -> u64 {
        self.produced - self.base
    }

    /// Releases kept bytes before offset `off`; returns the bytes freed.
    pub fn release_to(&mut self, off: u64) -> u64 {
        let off = off.min(self.produced);
        let before = self.retained();
        while self.base < off {
            let Some(front) = self.chunks.front_mut() else {
                self.base = self.produced;
                break;
            };
            let len = front.len() as u64;
            if self.base + len <= off {
                self.base += len;
                self.chunks.pop_front();
            } else {
                let k = (off - self.base) as usize;
                front.drain(..k);
                front.shrink_to_fit();
                self.base = off;
            }
        }
        before - self.retained()
    }

    /// Every byte produced, if all are still kept (hand-over).
    pub fn whole(&self) -> Option<impl Iterator<Item = &[u8]>> {
        self.rewindable()
            .then(|| self.chunks.iter().map(Vec::as_slice))
    }

    /// A buffer holding `bytes`, closed if `closed`: the digest is
    /// computed again, so it matches what the bytes are.
    pub fn restored(bytes: &[u8], closed: bool) -> SegBuf {
        let mut b = SegBuf::default();
        for c in bytes.chunks(CHUNK) {
            b.append(c);
        }
        if closed {
            b.close();
        }
        b
    }

    /// Releases everything and keeps nothing from now on (the upload ended:
    /// acknowledged, or failed for good).
    pub fn discard(&mut self) -> u64 {
        self.discard = true;
        let freed = self.retained();
        self.chunks.clear();
        self.base = self.produced;
        freed
    }
}

impl Source for SegBuf {
    fn available(&self, at: u64) -> &[u8] {
        if at < self.base {
            return &[];
        }
        let mut off = self.base;
        for c in &self.chunks {
            let end = off + c.len() as u64;
            if at < end {
                return c.get((at - off) as usize..).unwrap_or_default();
            }
            off = end;
        }
        &[]
    }

    fn complete(&self) -> bool {
        self.closed
    }

    fn rewindable(&self) -> bool {
        self.base == 0 && !self.discard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(b: &SegBuf, from: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = from;
        loop {
            let d = b.available(at);
            if d.is_empty() {
                return out;
            }
            out.extend_from_slice(d);
            at += d.len() as u64;
        }
    }

    #[test]
    fn bytes_read_back_from_any_offset_and_release_keeps_the_rest() {
        let mut b = SegBuf::default();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for c in data.chunks(3000) {
            b.append(c);
        }
        assert_eq!(read_all(&b, 0), data);
        assert_eq!(read_all(&b, 12345), data[12345..]);
        assert!(b.rewindable());
        assert_eq!(b.release_to(70_000), 70_000);
        assert!(!b.rewindable());
        assert_eq!(b.retained(), 130_000);
        assert!(b.available(69_999).is_empty(), "released");
        assert_eq!(read_all(&b, 70_000), data[70_000..]);
        b.close();
        assert_eq!(b.produced(), 200_000);
        assert_eq!(
            b.digest().unwrap(),
            hex::encode(Sha256::digest(&data)),
            "the digest covers released bytes too"
        );
        assert_eq!(b.discard(), 130_000);
        assert_eq!(b.retained(), 0);
    }

    #[test]
    fn discarding_counts_but_keeps_nothing() {
        let mut b = SegBuf::default();
        b.append(b"abc");
        b.discard();
        b.append(b"def");
        assert_eq!((b.produced(), b.retained()), (6, 0));
        b.close();
        assert_eq!(b.digest().unwrap(), hex::encode(Sha256::digest(b"abcdef")));
    }
}
