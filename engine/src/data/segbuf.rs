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
use sha2::compress256;
use sha2::digest::generic_array::GenericArray;
use std::collections::VecDeque;

/// Every chunk holds this many bytes (the last one up to this many).
const CHUNK: usize = 64 << 10;

/// SHA-256 whose running state can be saved: a hand-over may carry a
/// segment whose first bytes were already sent and released, and its
/// successor must still declare the digest of every byte (the `sha2`
/// hasher keeps its state private; its block function is public).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sha256Run {
    state: [u32; 8],
    /// Bytes of the unfinished 64-byte block.
    tail: Vec<u8>,
    /// Bytes hashed in all.
    len: u64,
}

impl Default for Sha256Run {
    fn default() -> Self {
        Sha256Run {
            state: [
                0x6a09_e667,
                0xbb67_ae85,
                0x3c6e_f372,
                0xa54f_f53a,
                0x510e_527f,
                0x9b05_688c,
                0x1f83_d9ab,
                0x5be0_cd19,
            ],
            tail: Vec::new(),
            len: 0,
        }
    }
}

impl Sha256Run {
    /// Hashes `d` after what came before.
    pub fn update(&mut self, mut d: &[u8]) {
        self.len = self.len.wrapping_add(d.len() as u64);
        if !self.tail.is_empty() {
            let take = (64 - self.tail.len()).min(d.len());
            let (head, rest) = d.split_at(take);
            self.tail.extend_from_slice(head);
            d = rest;
            if self.tail.len() < 64 {
                return;
            }
            let tail = std::mem::take(&mut self.tail);
            self.blocks(&tail);
        }
        let whole = d.len() - d.len() % 64;
        let (blocks, rest) = d.split_at(whole);
        self.blocks(blocks);
        self.tail.extend_from_slice(rest);
    }

    fn blocks(&mut self, d: &[u8]) {
        for b in d.chunks_exact(64) {
            if let Some(block) = GenericArray::from_exact_iter(b.iter().copied()) {
                compress256(&mut self.state, std::slice::from_ref(&block));
            }
        }
    }

    /// The digest, lowercase hex.
    pub fn finish(mut self) -> String {
        let bits = self.len.wrapping_mul(8);
        let mut pad = vec![0x80u8];
        let used = (self.tail.len() + 1) % 64;
        pad.resize(1 + (120 - used) % 64, 0);
        pad.extend_from_slice(&bits.to_be_bytes());
        let len = self.len;
        self.update(&pad);
        self.len = len;
        let out: Vec<u8> = self.state.iter().flat_map(|w| w.to_be_bytes()).collect();
        hex::encode(out)
    }
}

/// See the module docs.
#[derive(Clone, Default)]
pub struct SegBuf {
    chunks: VecDeque<Vec<u8>>,
    /// Offset of the first kept byte.
    base: u64,
    /// Bytes produced so far.
    produced: u64,
    closed: bool,
    hasher: Sha256Run,
    digest: Option<String>,
    /// New bytes are counted (digest, length) but not kept.
    discard: bool,
}

/// What a hand-over carries of a segment whose first bytes were released:
/// where the kept bytes start and the digest so far.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SavedTail {
    /// Offset of the first carried byte.
    pub base: u64,
    /// The digest of bytes `0..produced` while the segment is open.
    pub hasher: Option<Sha256Run>,
    /// Its digest once closed.
    pub digest: Option<String>,
}

impl SegBuf {
    /// Appends muxed bytes: into the room left in the last chunk, then
    /// into new chunks of exactly [`CHUNK`] bytes. A chunk never grows by
    /// reallocation (a Vec doubling its capacity held up to twice its
    /// bytes, measured 1.5x of the budget in the engine's heap), and equal
    /// blocks leave the engine's allocator no holes of odd sizes.
    pub fn append(&mut self, mut d: &[u8]) {
        self.hasher.update(d);
        self.produced = self.produced.saturating_add(d.len() as u64);
        if self.discard {
            self.base = self.produced;
            return;
        }
        while !d.is_empty() {
            if self.chunks.back().is_none_or(|c| c.len() == c.capacity()) {
                self.chunks.push_back(Vec::with_capacity(CHUNK));
            }
            let Some(last) = self.chunks.back_mut() else {
                return;
            };
            let (now, rest) = d.split_at(d.len().min(last.capacity() - last.len()));
            last.extend_from_slice(now);
            d = rest;
        }
    }

    /// No more bytes: fixes the digest.
    pub fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            // Nothing follows: the last chunk's spare room goes back.
            if let Some(last) = self.chunks.back_mut() {
                last.shrink_to_fit();
            }
            let h = std::mem::take(&mut self.hasher);
            self.digest = Some(h.finish());
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

    /// The bytes still kept, from the first not released (all of them
    /// while [`Source::rewindable`]): what a hand-over carries.
    pub fn kept(&self) -> impl Iterator<Item = &[u8]> {
        self.chunks.iter().map(Vec::as_slice)
    }

    /// The kept bytes from offset `off` on; none if bytes before `off` are
    /// no longer kept or `off` is past the end.
    pub fn kept_from(&self, off: u64) -> Option<impl Iterator<Item = &[u8]>> {
        if off > self.produced {
            return None;
        }
        let mut skip = usize::try_from(off.checked_sub(self.base)?).ok()?;
        Some(self.chunks.iter().filter_map(move |c| {
            if skip >= c.len() {
                skip -= c.len();
                return None;
            }
            let rest = c.get(skip..);
            skip = 0;
            rest
        }))
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

    /// What a successor needs to go on with a segment whose first bytes
    /// were released, besides its [`SegBuf::kept`] bytes
    /// ([`SegBuf::resumed`]); none once discarded.
    pub fn tail(&self) -> Option<SavedTail> {
        (!self.discard).then(|| SavedTail {
            base: self.base,
            hasher: (!self.closed).then(|| self.hasher.clone()),
            digest: self.digest.clone(),
        })
    }

    /// The buffer [`SegBuf::tail`] described, holding `bytes` from
    /// `t.base` on; closed if the segment had ended.
    pub fn resumed(t: SavedTail, bytes: &[u8]) -> SegBuf {
        let produced = t.base.saturating_add(bytes.len() as u64);
        SegBuf {
            chunks: bytes.chunks(CHUNK).map(<[u8]>::to_vec).collect(),
            base: t.base,
            produced,
            closed: t.digest.is_some(),
            hasher: t.hasher.unwrap_or_default(),
            digest: t.digest,
            discard: false,
        }
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

    fn ready(&self, at: u64) -> u64 {
        if at < self.base {
            0
        } else {
            self.produced - at.min(self.produced)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn chunks_are_filled_to_their_size_and_never_grow() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut b = SegBuf::default();
        let mut at = 0;
        // Audio, a P frame, audio, an I frame, ... as the muxer hands them.
        for n in [752, 45_000, 752, 200_000, 44_000, 9_496] {
            b.append(&data[at..at + n]);
            at += n;
        }
        assert_eq!(at, data.len());
        assert!(b.chunks.iter().all(|c| c.capacity() == CHUNK));
        assert!(b.chunks.iter().rev().skip(1).all(|c| c.len() == CHUNK));
        let kept: Vec<u8> = b.kept().flatten().copied().collect();
        assert_eq!(kept, data);
        assert_eq!(b.retained(), data.len() as u64);
        b.close();
        let last = b.chunks.back().unwrap();
        assert_eq!(
            last.capacity(),
            last.len(),
            "closing returns the spare room"
        );
        assert_eq!(b.digest().unwrap(), hex::encode(Sha256::digest(&data)));
    }

    #[test]
    fn the_resumable_digest_is_sha256_for_every_length_and_split() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 256) as u8).collect();
        for len in (0..200).chain([511, 512, 513, 999, 1000]) {
            let want = hex::encode(Sha256::digest(&data[..len]));
            for split in [0, 1, 55, 56, 63, 64, 65, len / 2, len] {
                let split = split.min(len);
                let mut h = Sha256Run::default();
                h.update(&data[..split]);
                // The state survives a hand-over mid-stream.
                let json = serde_json::to_string(&h).unwrap();
                let mut h: Sha256Run = serde_json::from_str(&json).unwrap();
                h.update(&data[split..len]);
                assert_eq!(h.finish(), want, "len {len} split {split}");
            }
        }
    }

    #[test]
    fn a_released_segment_goes_on_after_a_hand_over_with_the_same_digest() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let mut b = SegBuf::default();
        b.append(&data[..150_000]);
        b.release_to(100_000);
        let t = b.tail().unwrap();
        let kept: Vec<u8> = b.kept().flatten().copied().collect();
        assert_eq!((t.base, kept.len()), (100_000, 50_000));
        let t: SavedTail = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        let mut r = SegBuf::resumed(t, &kept);
        assert_eq!(read_all(&r, 100_000), data[100_000..150_000]);
        assert!(!r.rewindable());
        r.append(&data[150_000..]);
        r.close();
        assert_eq!(r.produced(), 300_000);
        assert_eq!(r.digest().unwrap(), hex::encode(Sha256::digest(&data)));
        // A closed one carries its digest.
        let t = r.tail().unwrap();
        let kept: Vec<u8> = r.kept().flatten().copied().collect();
        let c = SegBuf::resumed(t, &kept);
        assert!(c.closed());
        assert_eq!(c.digest(), r.digest());
    }

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
