//! The live test pattern: raw I420 frames with the capture time burned in
//! twice — as large digits for people and as the [`blockcode`] for tests —
//! over colour bars, with a bar that sweeps across the picture once per
//! second so that motion (and a stalled player) is visible.
//!
//! A frame is a pure function of (time, frame number, label), so a
//! snapshot of "the current frame" is simply rendered again.

use crate::blockcode::{self, Stamp};
use crate::font;

/// One I420 (YUV 4:2:0 planar, video range) picture.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Width in pixels (even).
    pub w: usize,
    /// Height in pixels (even).
    pub h: usize,
    /// Y plane, then U, then V.
    pub data: Vec<u8>,
}

/// 75 % colour bars (BT.601 video range Y, U, V).
const BARS: [(u8, u8, u8); 8] = [
    (180, 128, 128),
    (162, 44, 142),
    (131, 156, 44),
    (112, 72, 58),
    (84, 184, 198),
    (65, 100, 212),
    (35, 212, 114),
    (16, 128, 128),
];

impl Frame {
    /// A black frame; `w` and `h` must be even.
    pub fn new(w: usize, h: usize) -> Frame {
        let mut data = vec![16u8; w * h];
        data.resize(w * h + w * h / 2, 128);
        Frame { w, h, data }
    }

    /// The three planes, mutably.
    fn planes(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        let (y, uv) = self.data.split_at_mut(self.w * self.h);
        let (u, v) = uv.split_at_mut(self.w * self.h / 4);
        (y, u, v)
    }

    /// Fills a rectangle (clipped to the picture) with one colour.
    fn fill(&mut self, x0: usize, y0: usize, x1: usize, y1: usize, c: (u8, u8, u8)) {
        let (w, h) = (self.w, self.h);
        let (x1, y1) = (x1.min(w), y1.min(h));
        if x0 >= x1 || y0 >= y1 {
            return;
        }
        let (y, u, v) = self.planes();
        for row in y0..y1 {
            if let Some(p) = y.get_mut(row * w + x0..row * w + x1) {
                p.fill(c.0);
            }
        }
        let (cw, cx0, cx1) = (w / 2, x0 / 2, x1.div_ceil(2));
        for row in y0 / 2..y1.div_ceil(2) {
            if let Some(p) = u.get_mut(row * cw + cx0..row * cw + cx1) {
                p.fill(c.1);
            }
            if let Some(p) = v.get_mut(row * cw + cx0..row * cw + cx1) {
                p.fill(c.2);
            }
        }
    }
}

/// `(year, month, day)` of a day number since 1970-01-01 (H. Hinnant's
/// civil-from-days).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DD` and `HH:MM:SS.mmm` (UTC) of a time in ms since 1970.
pub fn utc_text(ms: u64) -> (String, String) {
    let s = ms / 1000;
    let (y, mo, d) = civil((s / 86_400) as i64);
    let t = s % 86_400;
    (
        format!("{y:04}-{mo:02}-{d:02}"),
        format!(
            "{:02}:{:02}:{:02}.{:03}",
            t / 3600,
            t / 60 % 60,
            t % 60,
            ms % 1000
        ),
    )
}

/// Draws the pattern for the frame captured at `utc_ms` (number `seq`)
/// into `f`. `label` (e.g. `CH0`) is shown next to the date.
pub fn render(f: &mut Frame, utc_ms: u64, seq: u64, label: &str) {
    let (w, h) = (f.w, f.h);
    let band = blockcode::band_height(h);
    // Bars above a luma ramp.
    let ramp_top = h - h / 5;
    for (i, c) in BARS.iter().enumerate() {
        f.fill(i * w / 8, band, (i + 1) * w / 8, ramp_top, *c);
    }
    {
        let (y, u, v) = f.planes();
        for row in ramp_top..h {
            for x in 0..w {
                if let Some(p) = y.get_mut(row * w + x) {
                    *p = (16 + x * 219 / w.max(1)) as u8;
                }
            }
        }
        let cw = w / 2;
        for row in ramp_top / 2..h / 2 {
            for p in [&mut *u, &mut *v] {
                if let Some(line) = p.get_mut(row * cw..row * cw + cw) {
                    line.fill(128);
                }
            }
        }
    }
    // The sweeping bar: left edge to right edge once per second.
    let bar_w = (w / 32).max(2);
    let x = (utc_ms % 1000) as usize * (w - bar_w) / 1000;
    f.fill(x, ramp_top, x + bar_w, h, (235, 128, 128));

    // The clock, big, in a dark box in the middle.
    let (date, time) = utc_text(utc_ms);
    let line2 = format!("{date} UTC {label} #{seq}");
    let big = (h / 60).max(1);
    let small = (h / 120).max(1);
    let (tw, th) = (font::text_width(&time, big), font::GLYPH_H * big);
    let (sw, sh) = (font::text_width(&line2, small), font::GLYPH_H * small);
    let box_w = tw.max(sw) + 4 * big;
    let box_h = th + sh + 5 * big;
    let bx = w.saturating_sub(box_w) / 2;
    let by = (band + (ramp_top - band).saturating_sub(box_h) / 2).max(band);
    f.fill(bx, by, bx + box_w, by + box_h, (16, 128, 128));
    let (yp, _, _) = f.planes();
    font::draw_text(
        yp,
        w,
        h,
        w,
        bx + (box_w - tw) / 2,
        by + 2 * big,
        big,
        235,
        &time,
    );
    font::draw_text(
        yp,
        w,
        h,
        w,
        bx + (box_w - sw) / 2,
        by + 3 * big + th,
        small,
        200,
        &line2,
    );
    blockcode::draw(
        yp,
        w,
        h,
        w,
        Stamp {
            utc_ms,
            seq: (seq % 1024) as u32,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(
            utc_text(0),
            ("1970-01-01".to_string(), "00:00:00.000".to_string())
        );
        assert_eq!(
            utc_text(1_700_000_000_123),
            ("2023-11-14".to_string(), "22:13:20.123".to_string())
        );
        assert_eq!(utc_text(951_782_400_000).0, "2000-02-29");
    }

    #[test]
    fn rendered_frames_carry_their_stamp() {
        for (w, h) in [(640, 360), (320, 240), (1280, 720)] {
            let mut f = Frame::new(w, h);
            render(&mut f, 1_764_000_000_040, 1, "CH0");
            let stamp = blockcode::decode(&f.data[..w * h], w, h).expect("decodes");
            assert_eq!(stamp.utc_ms, 1_764_000_000_040);
            assert_eq!(stamp.seq, 1);
        }
    }
}
