//! ADTS framing of AAC: header parsing and writing, and the
//! AudioSpecificConfig that fMP4 needs instead of ADTS headers.

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
    let frame_len = payload_len + 7;
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
