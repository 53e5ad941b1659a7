//! ADTS framing of AAC: header parsing and writing, and the
//! AudioSpecificConfig that fMP4 needs instead of ADTS headers.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use crate::{AudioParams, Error, Result};

/// The MPEG-4 sampling-frequency table, indexed by `sampling_frequency_index`.
pub const SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// The `sampling_frequency_index` of `rate`, if it is in the table.
pub fn sampling_index(rate: u32) -> Option<u8> {
    SAMPLE_RATES
        .iter()
        .position(|&r| r == rate)
        .and_then(|i| u8::try_from(i).ok())
}

/// A two-byte AudioSpecificConfig for a plain object type (AAC-LC = 2).
pub fn audio_specific_config(object_type: u8, sample_rate: u32, channels: u8) -> Result<Vec<u8>> {
    let idx = sampling_index(sample_rate).ok_or_else(|| {
        Error::unsupported(format!("sample rate {sample_rate} Hz has no ADTS index"))
    })?;
    if !(1..=2).contains(&channels) || !(1..=4).contains(&object_type) {
        return Err(Error::unsupported(format!(
            "AAC object type {object_type} with {channels} channels"
        )));
    }
    Ok(vec![
        (object_type << 3) | (idx >> 1),
        ((idx & 1) << 7) | (channels << 3),
    ])
}

impl AudioParams {
    /// AAC-LC parameters for `sample_rate` and `channels`.
    pub fn aac_lc(sample_rate: u32, channels: u8) -> Result<Self> {
        Ok(AudioParams {
            sample_rate,
            channels,
            asc: audio_specific_config(2, sample_rate, channels)?,
            object_type: 2,
        })
    }
}

/// A 7-byte ADTS header (no CRC) for one raw AAC access unit of
/// `payload_len` bytes.
pub fn write_header(params: &AudioParams, payload_len: usize) -> Result<[u8; 7]> {
    let idx = sampling_index(params.sample_rate).ok_or_else(|| {
        Error::unsupported(format!(
            "sample rate {} Hz has no ADTS index",
            params.sample_rate
        ))
    })?;
    let frame_len = payload_len.saturating_add(7);
    if frame_len > 0x1FFF {
        return Err(Error::new(
            crate::ErrorKind::TooLarge,
            format!("AAC frame of {payload_len} bytes does not fit ADTS"),
        ));
    }
    let profile = params.object_type.saturating_sub(1) & 0x3;
    let ch = params.channels & 0x7;
    // frame_len < 0x2000, so every shifted value below fits its byte.
    let fl = frame_len as u32;
    Ok([
        0xFF,
        0xF1, // MPEG-4, layer 0, no CRC
        (profile << 6) | (idx << 2) | (ch >> 2),
        ((ch & 3) << 6) | ((fl >> 11) as u8 & 0x3),
        ((fl >> 3) & 0xFF) as u8,
        (((fl & 7) << 5) as u8) | 0x1F,
        0xFC, // buffer fullness 0x7FF (VBR), one raw data block
    ])
}

/// A parsed ADTS header (ISO/IEC 13818-7 / 14496-3 1.A.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdtsHeader {
    /// MPEG-4 audio object type (`profile + 1`; always 2 = AAC-LC here).
    pub object_type: u8,
    /// Sampling rate in Hz.
    pub sample_rate: u32,
    /// `sampling_frequency_index`.
    pub sampling_index: u8,
    /// `channel_configuration` (1 or 2).
    pub channels: u8,
    /// 7, or 9 with a CRC.
    pub header_len: usize,
    /// Whole frame length including the header.
    pub frame_len: usize,
    /// Raw data blocks in the frame (`number_of_raw_data_blocks_in_frame + 1`;
    /// always 1 here).
    pub raw_blocks: u8,
}

/// Parse the ADTS header at the start of `data`.
///
/// Malformed: no sync word, layer != 0, reserved sampling index, frame
/// length shorter than the header. Unsupported: object type other than
/// AAC-LC, channel configuration other than 1 or 2, more than one raw
/// data block per frame.
pub fn parse_header(data: &[u8]) -> Result<AdtsHeader> {
    let h: [u8; 7] = data
        .get(..7)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| {
            Error::malformed(format!("ADTS header needs 7 bytes, have {}", data.len()))
        })?;
    let [b0, b1, b2, b3, b4, b5, b6] = h;
    if b0 != 0xFF || b1 & 0xF0 != 0xF0 {
        return Err(Error::malformed("no ADTS sync word"));
    }
    if b1 & 0x06 != 0 {
        return Err(Error::malformed("ADTS layer is not 0"));
    }
    let header_len = if b1 & 1 == 1 { 7 } else { 9 };
    let object_type = (b2 >> 6) + 1;
    let sampling_index = (b2 >> 2) & 0xF;
    let sample_rate = *SAMPLE_RATES
        .get(usize::from(sampling_index))
        .ok_or_else(|| {
            Error::malformed(format!("reserved ADTS sampling index {sampling_index}"))
        })?;
    let channels = ((b2 & 1) << 2) | (b3 >> 6);
    let frame_len = (usize::from(b3 & 3) << 11) | (usize::from(b4) << 3) | usize::from(b5 >> 5);
    if frame_len < header_len {
        return Err(Error::malformed(format!(
            "ADTS frame length {frame_len} is shorter than its {header_len}-byte header"
        )));
    }
    let raw_blocks = (b6 & 3) + 1;
    if object_type != 2 {
        return Err(Error::unsupported(format!(
            "AAC object type {object_type} (only AAC-LC)"
        )));
    }
    if !(1..=2).contains(&channels) {
        return Err(Error::unsupported(format!(
            "ADTS channel configuration {channels} (only mono and stereo)"
        )));
    }
    if raw_blocks != 1 {
        return Err(Error::unsupported(format!(
            "{raw_blocks} raw data blocks in one ADTS frame"
        )));
    }
    Ok(AdtsHeader {
        object_type,
        sample_rate,
        sampling_index,
        channels,
        header_len,
        frame_len,
        raw_blocks,
    })
}

/// The raw AAC access unit of exactly one ADTS frame (header and CRC
/// stripped). Trailing bytes after the frame are an error.
pub fn payload(frame: &[u8]) -> Result<(AdtsHeader, &[u8])> {
    let h = parse_header(frame)?;
    if frame.len() != h.frame_len {
        return Err(Error::malformed(format!(
            "ADTS frame says {} bytes, buffer has {}",
            h.frame_len,
            frame.len()
        )));
    }
    let raw = frame
        .get(h.header_len..h.frame_len)
        .ok_or_else(|| Error::malformed("ADTS frame shorter than its header"))?;
    Ok((h, raw))
}

/// Iterator over the ADTS frames of a buffer; see [`frames`].
#[derive(Clone, Debug)]
pub struct Frames<'a> {
    rest: &'a [u8],
    failed: bool,
}

/// The ADTS frames of a whole `.aac` buffer, each the full frame with its
/// header. Stops after the first error (bad header or truncated frame).
pub fn frames(data: &[u8]) -> Frames<'_> {
    Frames {
        rest: data,
        failed: false,
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<(AdtsHeader, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let r = parse_header(self.rest).and_then(|h| {
            let (frame, rest) = self.rest.split_at_checked(h.frame_len).ok_or_else(|| {
                Error::malformed(format!(
                    "truncated ADTS frame: {} of {} bytes",
                    self.rest.len(),
                    h.frame_len
                ))
            })?;
            self.rest = rest;
            Ok((h, frame))
        });
        self.failed = r.is_err();
        Some(r)
    }
}

impl AudioParams {
    /// AAC-LC parameters from a parsed ADTS header.
    pub fn from_adts(h: &AdtsHeader) -> Result<Self> {
        if h.object_type != 2 {
            return Err(Error::unsupported(format!(
                "AAC object type {} (only AAC-LC)",
                h.object_type
            )));
        }
        Self::aac_lc(h.sample_rate, h.channels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn header_round_trip() {
        for &rate in &SAMPLE_RATES {
            for ch in 1..=2 {
                let p = AudioParams::aac_lc(rate, ch).unwrap();
                let mut f = write_header(&p, 100).unwrap().to_vec();
                f.extend([0x21; 100]);
                let h = parse_header(&f).unwrap();
                assert_eq!(
                    (
                        h.object_type,
                        h.sample_rate,
                        h.channels,
                        h.header_len,
                        h.frame_len
                    ),
                    (2, rate, ch, 7, 107)
                );
                assert_eq!(AudioParams::from_adts(&h).unwrap(), p);
                let (h2, raw) = payload(&f).unwrap();
                assert_eq!(h2, h);
                assert_eq!(raw, &[0x21; 100][..]);
            }
        }
    }

    #[test]
    fn header_errors() {
        let p = AudioParams::aac_lc(48000, 2).unwrap();
        let good = write_header(&p, 10).unwrap();
        assert!(parse_header(&good[..6]).is_err());
        let kind = |f: &[u8]| parse_header(f).unwrap_err().kind();
        let mut f = good;
        f[1] = 0xE1;
        assert_eq!(kind(&f), ErrorKind::Malformed);
        let mut f = good;
        f[1] |= 0x02; // layer 1
        assert_eq!(kind(&f), ErrorKind::Malformed);
        let mut f = good;
        f[2] = (f[2] & !0x3C) | (13 << 2);
        assert_eq!(kind(&f), ErrorKind::Malformed);
        let mut f = good;
        f[2] &= 0x3F; // profile 0 = AAC Main
        assert_eq!(kind(&f), ErrorKind::Unsupported);
        let mut f = good;
        f[3] = (f[3] & 0x3F) | 0xC0; // 3 channels
        assert_eq!(kind(&f), ErrorKind::Unsupported);
        let mut f = good;
        f[6] |= 1; // two raw data blocks
        assert_eq!(kind(&f), ErrorKind::Unsupported);
        let mut f = good;
        f[3] &= !3;
        f[4] = 0;
        f[5] &= 0x1F; // frame_len 0
        assert_eq!(kind(&f), ErrorKind::Malformed);
        // CRC header: 9 bytes.
        let mut f = good.to_vec();
        f[1] &= !1;
        f.extend([0; 10]);
        let h = parse_header(&f).unwrap();
        assert_eq!(h.header_len, 9);
        assert_eq!(payload(&f).unwrap().1.len(), 8);
        // Wrong buffer length for payload().
        let mut f = good.to_vec();
        f.extend([0; 9]);
        assert!(payload(&f).is_err());
        f.extend([0; 2]);
        assert!(payload(&f).is_err());
    }

    #[test]
    fn frame_iteration() {
        let p = AudioParams::aac_lc(8000, 1).unwrap();
        let mut d = Vec::new();
        for n in [5usize, 0, 300] {
            d.extend(write_header(&p, n).unwrap());
            d.extend(vec![0x55; n]);
        }
        let v: Vec<_> = frames(&d).collect::<Result<_>>().unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[2].1.len(), 307);
        assert_eq!(frames(&[]).count(), 0);
        // Truncated last frame: two good frames then one error, then stop.
        let t = &d[..d.len() - 1];
        let v: Vec<_> = frames(t).collect();
        assert_eq!(v.len(), 3);
        assert!(v[2].is_err());
        let v: Vec<_> = frames(&[0xFF, 0xF1, 0, 0]).collect();
        assert_eq!(v.len(), 1);
    }

    #[test]
    fn write_header_limits() {
        let p = AudioParams::aac_lc(48000, 1).unwrap();
        assert!(write_header(&p, 0x1FFF - 7).is_ok());
        assert!(write_header(&p, 0x1FFF - 6).is_err());
        assert!(write_header(&p, usize::MAX).is_err());
    }
}
