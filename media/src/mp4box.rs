//! ISO BMFF (ISO/IEC 14496-12) box writing shared by the two MP4 writers:
//! [`crate::fmp4`] (segments) and [`crate::mp4_export`] (progressive
//! export files). Both describe tracks the same way (`tkhd`, `mdhd`,
//! `hdlr`, the `avc1`/`hvc1`/`mp4a` sample entries), so those boxes are
//! written here once; the writers keep only what differs (fragments vs.
//! sample tables).
//!
//! Also the one Annex-B to length-prefixed conversion both writers store
//! video samples with.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use crate::nalscan::{self, NalIter};
use crate::{Error, ErrorKind, Result, VideoCodec};

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_header(out: &mut Vec<u8>, size: u32, fourcc: &[u8; 4]) {
    put_u32(out, size);
    out.extend_from_slice(fourcc);
}

/// Starts a box whose size is patched by [`close_box`]; returns its offset.
pub(crate) fn open_box(out: &mut Vec<u8>, fourcc: &[u8; 4]) -> usize {
    let start = out.len();
    put_header(out, 0, fourcc);
    start
}

pub(crate) fn open_full(out: &mut Vec<u8>, fourcc: &[u8; 4], version: u8, flags: u32) -> usize {
    let start = open_box(out, fourcc);
    put_u32(out, (u32::from(version) << 24) | (flags & 0x00FF_FFFF));
    start
}

/// Patches the size of the box opened at `start`. Header boxes stay far
/// below 4 GiB (the export's sample tables are a few MB at most).
pub(crate) fn close_box(out: &mut [u8], start: usize) {
    let size = u32::try_from(out.len().saturating_sub(start)).unwrap_or(0);
    if let Some(slot) = out.get_mut(start..start + 4) {
        slot.copy_from_slice(&size.to_be_bytes());
    }
}

/// The identity transformation matrix of mvhd/tkhd.
pub(crate) fn put_matrix(out: &mut Vec<u8>) {
    for v in [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        put_u32(out, v);
    }
}

/// Version 1 (64-bit times) only when a duration does not fit 32 bits, so
/// ordinary files keep the smaller, most widely read version 0.
fn version_for(duration: u64) -> u8 {
    u8::from(duration > u64::from(u32::MAX))
}

/// Writes a creation/modification time pair (zero: unknown) and a
/// timescale/duration in the layout of `version`.
fn put_times(out: &mut Vec<u8>, version: u8, timescale: Option<u32>, duration: u64) {
    if version == 1 {
        put_u64(out, 0);
        put_u64(out, 0);
    } else {
        put_u32(out, 0);
        put_u32(out, 0);
    }
    if let Some(ts) = timescale {
        put_u32(out, ts);
    }
    if version == 1 {
        put_u64(out, duration);
    } else {
        // version_for() chose 0, so the duration fits.
        put_u32(out, duration as u32);
    }
}

/// mvhd: movie `timescale`, `duration` in it (0 = unknown, fragmented).
pub(crate) fn put_mvhd(out: &mut Vec<u8>, timescale: u32, duration: u64, next_track_id: u32) {
    let version = version_for(duration);
    let b = open_full(out, b"mvhd", version, 0);
    put_times(out, version, Some(timescale), duration);
    put_u32(out, 0x0001_0000); // rate 1.0
    out.extend_from_slice(&[0x01, 0x00]); // volume 1.0
    out.extend_from_slice(&[0; 10]);
    put_matrix(out);
    out.extend_from_slice(&[0; 24]);
    put_u32(out, next_track_id);
    close_box(out, b);
}

/// tkhd, enabled and in the movie; `duration` in the movie timescale;
/// `width`/`height` 16.16 fixed point (0 for audio).
pub(crate) fn put_tkhd(
    out: &mut Vec<u8>,
    track: u32,
    volume: u16,
    width: u32,
    height: u32,
    duration: u64,
) {
    let version = version_for(duration);
    // Flags: track_enabled | track_in_movie.
    let b = open_full(out, b"tkhd", version, 0x03);
    if version == 1 {
        put_u64(out, 0);
        put_u64(out, 0);
    } else {
        put_u32(out, 0);
        put_u32(out, 0);
    }
    put_u32(out, track);
    put_u32(out, 0); // reserved
    if version == 1 {
        put_u64(out, duration);
    } else {
        put_u32(out, duration as u32);
    }
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&[0; 4]); // layer, alternate_group
    out.extend_from_slice(&volume.to_be_bytes());
    out.extend_from_slice(&[0; 2]);
    put_matrix(out);
    put_u32(out, width);
    put_u32(out, height);
    close_box(out, b);
}

/// mdhd: media `timescale` and `duration` in it, language "und".
pub(crate) fn put_mdhd(out: &mut Vec<u8>, timescale: u32, duration: u64) {
    let version = version_for(duration);
    let b = open_full(out, b"mdhd", version, 0);
    put_times(out, version, Some(timescale), duration);
    out.extend_from_slice(&[0x55, 0xC4, 0, 0]); // language "und", pre_defined
    close_box(out, b);
}

pub(crate) fn put_hdlr(out: &mut Vec<u8>, handler: &[u8; 4], name: &[u8]) {
    let b = open_full(out, b"hdlr", 0, 0);
    put_u32(out, 0);
    out.extend_from_slice(handler);
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(name);
    close_box(out, b);
}

/// vmhd (graphics mode copy) for a video track's minf.
pub(crate) fn put_vmhd(out: &mut Vec<u8>) {
    let vmhd = open_full(out, b"vmhd", 0, 1);
    out.extend_from_slice(&[0; 8]); // graphicsmode, opcolor
    close_box(out, vmhd);
}

/// smhd (centre balance) for an audio track's minf.
pub(crate) fn put_smhd(out: &mut Vec<u8>) {
    let smhd = open_full(out, b"smhd", 0, 0);
    put_u32(out, 0); // balance, reserved
    close_box(out, smhd);
}

/// dinf with one self-contained `url ` entry: the media is in this file.
pub(crate) fn put_dinf(out: &mut Vec<u8>) {
    let dinf = open_box(out, b"dinf");
    let dref = open_full(out, b"dref", 0, 0);
    put_u32(out, 1);
    let url = open_full(out, b"url ", 0, 1);
    close_box(out, url);
    close_box(out, dref);
    close_box(out, dinf);
}

/// stsd with one `avc1`/`hvc1` entry carrying the decoder configuration
/// record (`avcC`/`hvcC` body) as is.
pub(crate) fn put_video_stsd(
    out: &mut Vec<u8>,
    codec: VideoCodec,
    width: u16,
    height: u16,
    decoder_config: &[u8],
) {
    let stsd = open_full(out, b"stsd", 0, 0);
    put_u32(out, 1);
    let entry = open_box(
        out,
        match codec {
            VideoCodec::H264 => b"avc1",
            VideoCodec::H265 => b"hvc1",
        },
    );
    out.extend_from_slice(&[0; 6]);
    out.extend_from_slice(&[0, 1]); // data_reference_index
    out.extend_from_slice(&[0; 16]); // pre_defined, reserved
    out.extend_from_slice(&width.to_be_bytes());
    out.extend_from_slice(&height.to_be_bytes());
    put_u32(out, 0x0048_0000); // 72 dpi
    put_u32(out, 0x0048_0000);
    put_u32(out, 0);
    out.extend_from_slice(&[0, 1]); // frame_count
    out.extend_from_slice(&[0; 32]); // compressorname
    out.extend_from_slice(&[0x00, 0x18, 0xFF, 0xFF]); // depth 24, pre_defined -1
    let config = open_box(
        out,
        match codec {
            VideoCodec::H264 => b"avcC",
            VideoCodec::H265 => b"hvcC",
        },
    );
    out.extend_from_slice(decoder_config);
    close_box(out, config);
    close_box(out, entry);
    close_box(out, stsd);
}

/// stsd with one `mp4a` entry whose `esds` carries the AudioSpecificConfig.
pub(crate) fn put_audio_stsd(out: &mut Vec<u8>, sample_rate: u32, channels: u8, asc: &[u8]) {
    let stsd = open_full(out, b"stsd", 0, 0);
    put_u32(out, 1);
    let entry = open_box(out, b"mp4a");
    out.extend_from_slice(&[0; 6]);
    out.extend_from_slice(&[0, 1]); // data_reference_index
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&u16::from(channels).to_be_bytes());
    out.extend_from_slice(&[0, 16, 0, 0, 0, 0]); // samplesize 16, pre_defined, reserved
    // 16.16 fixed point; rates above 65535 Hz do not fit and are
    // written as 0 (the AudioSpecificConfig is authoritative).
    put_u32(
        out,
        u16::try_from(sample_rate).map_or(0, |r| u32::from(r) << 16),
    );
    put_esds(out, channels, asc);
    close_box(out, entry);
    close_box(out, stsd);
}

/// esds: ES_Descriptor > DecoderConfigDescriptor (AAC, audio stream) >
/// DecoderSpecificInfo (the AudioSpecificConfig), plus SLConfig 2.
fn put_esds(out: &mut Vec<u8>, channels: u8, asc: &[u8]) {
    let b = open_full(out, b"esds", 0, 0);
    let dsi_len = asc.len();
    let dcd_len = 13 + 1 + desc_len_size(dsi_len) + dsi_len;
    let es_len = 3 + 1 + desc_len_size(dcd_len) + dcd_len + 3;
    out.push(0x03);
    put_desc_len(out, es_len);
    out.extend_from_slice(&[0, 0, 0]); // ES_ID 0 (the track names it), flags
    out.push(0x04);
    put_desc_len(out, dcd_len);
    out.push(0x40); // MPEG-4 audio
    out.push((5 << 2) | 1); // streamType audio, reserved 1
    // bufferSizeDB: the AAC decoder input buffer, 6144 bits per channel.
    let buffer = 768 * u32::from(channels.max(1));
    out.extend_from_slice(buffer.to_be_bytes().get(1..).unwrap_or_default());
    put_u32(out, 0); // maxBitrate: unknown
    put_u32(out, 0); // avgBitrate: variable
    out.push(0x05);
    put_desc_len(out, dsi_len);
    out.extend_from_slice(asc);
    out.extend_from_slice(&[0x06, 0x01, 0x02]);
    close_box(out, b);
}

fn desc_len_size(len: usize) -> usize {
    match len {
        0..0x80 => 1,
        0x80..0x4000 => 2,
        0x4000..0x20_0000 => 3,
        _ => 4,
    }
}

/// Expandable descriptor size (7 bits per byte, high bit = more follow).
fn put_desc_len(out: &mut Vec<u8>, len: usize) {
    let n = desc_len_size(len);
    for i in (0..n).rev() {
        let more = if i > 0 { 0x80 } else { 0 };
        out.push(((len >> (7 * i)) & 0x7F) as u8 | more);
    }
}

/// Whether a NAL of type `t` is stored in an MP4 sample: AUD and parameter
/// sets live in the sample entry, filler data is worthless padding.
fn kept_in_sample(codec: VideoCodec, t: u8) -> bool {
    !(nalscan::is_aud(codec, t)
        || nalscan::is_parameter_set(codec, t)
        || nalscan::is_filler(codec, t))
}

/// Calls `each` with every NAL an MP4 sample keeps; errors if `au` has no
/// leading start code or no slice.
fn for_kept_nals<'a>(
    codec: VideoCodec,
    au: &'a [u8],
    mut each: impl FnMut(&'a [u8]) -> Result<()>,
) -> Result<()> {
    if nalscan::leading_garbage(au) {
        return Err(Error::malformed(
            "video access unit does not start with an Annex-B start code",
        ));
    }
    let mut has_slice = false;
    for nal in NalIter::new(au) {
        let t = nalscan::nal_type(codec, nal.bytes);
        if !kept_in_sample(codec, t) {
            continue;
        }
        has_slice |= nalscan::is_vcl(codec, t);
        each(nal.bytes)?;
    }
    if has_slice {
        Ok(())
    } else {
        Err(Error::malformed("video access unit has no slice"))
    }
}

fn nal_len(nal: &[u8]) -> Result<u32> {
    u32::try_from(nal.len()).map_err(|_| Error::new(ErrorKind::TooLarge, "NAL unit over 4 GiB"))
}

/// Appends an Annex-B access unit to `dst` as 4-byte length-prefixed NALs,
/// dropping AUD, parameter sets and filler data. On error `dst` is left
/// as it was.
pub(crate) fn append_length_prefixed(
    codec: VideoCodec,
    au: &[u8],
    dst: &mut Vec<u8>,
) -> Result<()> {
    let start = dst.len();
    // Start codes are 3 or 4 bytes, prefixes 4: a little slack avoids
    // regrowing for 3-byte start codes.
    dst.reserve(au.len() + 64);
    let r = for_kept_nals(codec, au, |nal| {
        put_u32(dst, nal_len(nal)?);
        dst.extend_from_slice(nal);
        Ok(())
    });
    if r.is_err() {
        dst.truncate(start);
    }
    r
}

/// The size [`append_length_prefixed`] would add, without copying.
pub(crate) fn length_prefixed_size(codec: VideoCodec, au: &[u8]) -> Result<u64> {
    let mut size = 0u64;
    for_kept_nals(codec, au, |nal| {
        size += 4 + u64::from(nal_len(nal)?);
        Ok(())
    })?;
    Ok(size)
}

/// A box tree reader for tests: type, absolute offset, bytes, children.
#[cfg(test)]
pub(crate) mod testutil {
    /// A parsed box: type, absolute offset, whole bytes, children if known
    /// to be a container.
    #[derive(Debug)]
    pub(crate) struct Bx<'a> {
        pub kind: [u8; 4],
        pub at: usize,
        pub bytes: &'a [u8],
        pub children: Vec<Bx<'a>>,
    }

    impl<'a> Bx<'a> {
        pub fn body(&self) -> &'a [u8] {
            &self.bytes[8..]
        }
        pub fn child(&self, kind: &[u8; 4]) -> &Bx<'a> {
            self.children
                .iter()
                .find(|c| &c.kind == kind)
                .unwrap_or_else(|| panic!("no {} in {}", show(kind), show(&self.kind)))
        }
        pub fn has(&self, kind: &[u8; 4]) -> bool {
            self.children.iter().any(|c| &c.kind == kind)
        }
        pub fn all(&self, kind: &[u8; 4]) -> Vec<&Bx<'a>> {
            self.children.iter().filter(|c| &c.kind == kind).collect()
        }
        pub fn u32_at(&self, off: usize) -> u32 {
            u32::from_be_bytes(self.body()[off..off + 4].try_into().unwrap())
        }
        pub fn u64_at(&self, off: usize) -> u64 {
            u64::from_be_bytes(self.body()[off..off + 8].try_into().unwrap())
        }
    }

    pub fn show(k: &[u8; 4]) -> String {
        String::from_utf8_lossy(k).into_owned()
    }

    /// Parses a run of boxes that must exactly fill `data`.
    pub fn walk(data: &[u8], base: usize) -> Vec<Bx<'_>> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < data.len() {
            let size = u32::from_be_bytes(data[i..i + 4].try_into().unwrap()) as usize;
            let kind: [u8; 4] = data[i + 4..i + 8].try_into().unwrap();
            assert!(
                size >= 8 && i + size <= data.len(),
                "{} size {size}",
                show(&kind)
            );
            let bytes = &data[i..i + size];
            // Bytes of fields before the child boxes, for containers.
            let skip = match &kind {
                b"moov" | b"trak" | b"mdia" | b"minf" | b"dinf" | b"stbl" | b"mvex" | b"moof"
                | b"traf" | b"edts" => Some(0),
                b"stsd" | b"dref" => Some(8),
                b"avc1" | b"hvc1" => Some(78),
                b"mp4a" => Some(28),
                _ => None,
            };
            let children = skip.map_or_else(Vec::new, |s| walk(&bytes[8 + s..], base + i + 8 + s));
            out.push(Bx {
                kind,
                at: base + i,
                bytes,
                children,
            });
            i += size;
        }
        assert_eq!(i, data.len(), "boxes fill their parent");
        out
    }
}
