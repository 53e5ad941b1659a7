//! The machine-readable time stamp burned into every frame: two rows of 32
//! black/white blocks across the top of the picture carrying the frame's
//! capture time (UTC milliseconds) and its number, with a CRC-8.
//!
//! The blocks are 1/32 of the width by 1/12 of the height: 20×30 pixels at
//! 640×360, large enough to survive H.264 at low bit rates and scaling
//! down to a quarter (frames at least 160 px wide). The geometry is relative, so the decoder reads a
//! frame at any resolution as long as it is the whole picture (a decoded
//! frame, or a browser's video drawn to a canvas at its own size).
//!
//! Layout, per row: a white and a black reference block (the threshold is
//! their mean, so brightness and contrast shifts do not matter), then 30
//! data bits, most significant first. The 60 data bits are
//! `utc_ms` (42 bits, good until 2109) · `seq % 1024` (10 bits) · CRC-8
//! (polynomial 0x07) of the 52 bits before it.

/// Blocks per row.
pub const COLS: usize = 32;
/// Rows of blocks.
pub const ROWS: usize = 2;
/// Data bits per row (after the two reference blocks).
const DATA_PER_ROW: usize = COLS - 2;
/// Luma of a white block (video range).
pub const WHITE: u8 = 235;
/// Luma of a black block (video range).
pub const BLACK: u8 = 16;

/// What a frame says about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Capture time, ms since 1970 (UTC).
    pub utc_ms: u64,
    /// Frame number modulo 1024.
    pub seq: u32,
}

/// Top edge of row `r`, as a fraction of the height: rows are 1/12 of the
/// height each, starting 1/48 down (a margin that cropping or a border
/// filter will not eat).
fn row_span(r: usize, h: usize) -> (usize, usize) {
    let top = h / 48 + r * h / 12;
    (top, top + h / 12)
}

fn col_span(c: usize, w: usize) -> (usize, usize) {
    (c * w / COLS, (c + 1) * w / COLS)
}

/// Height of the band the code occupies, in pixels, for a frame `h` high
/// (the pattern draws below it).
pub fn band_height(h: usize) -> usize {
    row_span(ROWS - 1, h).1 + h / 48
}

fn crc8(bits: u64, n: u32) -> u8 {
    let mut crc = 0u8;
    for i in (0..n).rev() {
        let bit = ((bits >> i) & 1) as u8;
        let top = (crc >> 7) ^ bit;
        crc <<= 1;
        if top != 0 {
            crc ^= 0x07;
        }
    }
    crc
}

/// The 60 data bits of a stamp.
fn data_bits(s: Stamp) -> u64 {
    let payload = ((s.utc_ms & ((1 << 42) - 1)) << 10) | u64::from(s.seq & 1023);
    (payload << 8) | u64::from(crc8(payload, 52))
}

/// The blocks of a stamp, row by row (`true` = white).
pub fn cells(s: Stamp) -> [[bool; COLS]; ROWS] {
    let bits = data_bits(s);
    let mut out = [[false; COLS]; ROWS];
    for (r, row) in out.iter_mut().enumerate() {
        row[0] = true;
        row[1] = false;
        for i in 0..DATA_PER_ROW {
            let k = r * DATA_PER_ROW + i;
            row[2 + i] = (bits >> (59 - k)) & 1 == 1;
        }
    }
    out
}

/// Draws the code into a luma plane (`stride` bytes per row).
pub fn draw(luma: &mut [u8], w: usize, h: usize, stride: usize, s: Stamp) {
    let c = cells(s);
    // Black behind the band, so the first white block has an edge.
    for y in 0..band_height(h).min(h) {
        if let Some(row) = luma.get_mut(y * stride..y * stride + w) {
            row.fill(BLACK);
        }
    }
    for (r, row) in c.iter().enumerate() {
        let (y0, y1) = row_span(r, h);
        for (col, &white) in row.iter().enumerate() {
            let (x0, x1) = col_span(col, w);
            let v = if white { WHITE } else { BLACK };
            for y in y0..y1 {
                if let Some(px) = luma.get_mut(y * stride + x0..y * stride + x1) {
                    px.fill(v);
                }
            }
        }
    }
}

/// Mean luma of the middle half (both ways) of block (`r`, `c`).
fn sample(luma: &[u8], w: usize, h: usize, r: usize, c: usize) -> f64 {
    let (y0, y1) = row_span(r, h);
    let (x0, x1) = col_span(c, w);
    let (qy, qx) = ((y1 - y0) / 4, (x1 - x0) / 4);
    let (mut sum, mut n) = (0u64, 0u64);
    for y in y0 + qy..y1 - qy {
        for x in x0 + qx..x1 - qx {
            if let Some(&v) = luma.get(y * w + x) {
                sum += u64::from(v);
                n += 1;
            }
        }
    }
    if n == 0 { 0.0 } else { sum as f64 / n as f64 }
}

/// Reads the stamp of a whole frame given as a luma (grey) plane of `w`×`h`
/// bytes. Fails when the reference blocks have no contrast or the CRC does
/// not match (not a frame of this pattern, or too damaged).
pub fn decode(luma: &[u8], w: usize, h: usize) -> Result<Stamp, String> {
    if w < COLS * 2 || h < 48 || luma.len() < w * h {
        return Err(format!(
            "a {w}x{h} frame ({} bytes) is too small to hold the block code",
            luma.len()
        ));
    }
    let mut bits = 0u64;
    for r in 0..ROWS {
        let white = sample(luma, w, h, r, 0);
        let black = sample(luma, w, h, r, 1);
        if white - black < 40.0 {
            return Err(format!(
                "row {r}: reference blocks have no contrast (white {white:.0}, black {black:.0})"
            ));
        }
        let mid = (white + black) / 2.0;
        for c in 2..COLS {
            bits = (bits << 1) | u64::from(sample(luma, w, h, r, c) > mid);
        }
    }
    let payload = bits >> 8;
    let crc = (bits & 0xff) as u8;
    if crc8(payload, 52) != crc {
        return Err(format!(
            "CRC mismatch (read {crc:#04x}, computed {:#04x}): not a readable frame",
            crc8(payload, 52)
        ));
    }
    Ok(Stamp {
        utc_ms: payload >> 10,
        seq: (payload & 1023) as u32,
    })
}

/// Luma of RGB pixels (BT.601 weights; the threshold is relative, so the
/// range does not matter), for frames read from PNG screenshots.
pub fn luma_of_rgb(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks_exact(3)
        .map(|p| {
            let y = 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]);
            y.round().clamp(0.0, 255.0) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_several_sizes_and_survives_scaling() {
        let s = Stamp {
            utc_ms: 1_764_000_123_456,
            seq: 1023,
        };
        for (w, h) in [
            (640, 360),
            (1280, 720),
            (320, 180),
            (1920, 1080),
            (176, 144),
        ] {
            let mut y = vec![128u8; w * h];
            draw(&mut y, w, h, w, s);
            assert_eq!(decode(&y, w, h), Ok(s), "{w}x{h}");
            // Nearest-neighbour downscale by 2 and upscale by 1.5.
            // Scaled copies down to 160 px wide (5 px blocks).
            for (nw, nh) in [(w / 2, h / 2), (w * 3 / 2, h * 3 / 2)] {
                if nw < 160 {
                    continue;
                }
                let mut z = vec![0u8; nw * nh];
                for yy in 0..nh {
                    for xx in 0..nw {
                        z[yy * nw + xx] = y[(yy * h / nh) * w + xx * w / nw];
                    }
                }
                assert_eq!(decode(&z, nw, nh), Ok(s), "{w}x{h} scaled to {nw}x{nh}");
            }
        }
    }

    #[test]
    fn noise_and_contrast_loss_are_tolerated_and_garbage_is_refused() {
        let (w, h) = (640, 360);
        let s = Stamp {
            utc_ms: 1_700_000_000_000,
            seq: 7,
        };
        let mut y = vec![0u8; w * h];
        draw(&mut y, w, h, w, s);
        // Washed out (60..180) with ±20 of noise.
        let mut x = 12345u32;
        for v in &mut y {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let noise = (x % 41) as i32 - 20;
            *v = (60 + i32::from(*v) / 2 + noise).clamp(0, 255) as u8;
        }
        assert_eq!(decode(&y, w, h), Ok(s));
        assert!(decode(&vec![128u8; w * h], w, h).is_err());
        let mut flipped = vec![0u8; w * h];
        draw(&mut flipped, w, h, w, s);
        // One data block inverted: the CRC catches it.
        let (x0, x1) = col_span(9, w);
        let (y0, y1) = row_span(1, h);
        for yy in y0..y1 {
            for xx in x0..x1 {
                flipped[yy * w + xx] = 251 - flipped[yy * w + xx];
            }
        }
        assert!(decode(&flipped, w, h).unwrap_err().contains("CRC"));
        assert!(decode(&[0u8; 10], 5, 2).is_err());
    }
}
