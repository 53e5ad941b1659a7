//! Buffer-fill watermarks with hysteresis (`iv_cs_congestion_ctrl_s`).
//!
//! The fill of a channel's budget is in one of four bands: below `low`,
//! `low..warn`, `warn..high`, at or above `high`. Rising into a band is
//! reported at once (WATERMARK_LOW / WARN / HIGH). Falling out of a band
//! needs the fill to drop below its mark by half the distance to the mark
//! under it, so a fill hovering around a mark does not flood firmware;
//! falling into the LOW or WARN band reports that band again (firmware that
//! throttled at HIGH learns the pressure eased; draining from WARN or HIGH
//! straight below `low` reports LOW). Draining from the LOW band below
//! `low` reports nothing: LOW already said "little is buffered". Disabled
//! watermarks report nothing.

use crate::cs::params::Congestion;
use crate::events::NotifyKind;

/// Fill band, ordered.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum Band {
    /// Below `low`.
    #[default]
    Normal,
    /// At or above `low`.
    Low,
    /// At or above `warn`.
    Warn,
    /// At or above `high`.
    High,
}

impl Band {
    fn kind(self) -> Option<NotifyKind> {
        match self {
            Band::Normal => None,
            Band::Low => Some(NotifyKind::WatermarkLow),
            Band::Warn => Some(NotifyKind::WatermarkWarn),
            Band::High => Some(NotifyKind::WatermarkHigh),
        }
    }
}

/// One channel's watermark state.
#[derive(Clone, Copy, Debug)]
pub struct Watermarks {
    cfg: Congestion,
    band: Band,
}

impl Watermarks {
    /// State for checked congestion settings.
    pub fn new(cfg: Congestion) -> Watermarks {
        Watermarks {
            cfg,
            band: Band::Normal,
        }
    }

    /// The current band.
    pub fn band(&self) -> Band {
        self.band
    }

    /// Continues from the band firmware was last told (a restored engine):
    /// if the fill is lower now, the next update says so.
    pub fn resume(&mut self, band: Band) {
        if self.cfg.enable {
            self.band = band;
        }
    }

    fn mark(&self, b: Band) -> u64 {
        match b {
            Band::Normal => 0,
            Band::Low => self.cfg.low_mark,
            Band::Warn => self.cfg.warn_mark,
            Band::High => self.cfg.high_mark,
        }
    }

    fn below(b: Band) -> Band {
        match b {
            Band::Normal | Band::Low => Band::Normal,
            Band::Warn => Band::Low,
            Band::High => Band::Warn,
        }
    }

    /// The band the fill reaches going up.
    fn raw(&self, fill: u64) -> Band {
        [Band::High, Band::Warn, Band::Low]
            .into_iter()
            .find(|b| fill >= self.mark(*b))
            .unwrap_or(Band::Normal)
    }

    /// Takes the fill now; returns the notification to send, if any.
    pub fn update(&mut self, fill: u64) -> Option<NotifyKind> {
        if !self.cfg.enable {
            return None;
        }
        let up = self.raw(fill);
        if up > self.band {
            self.band = up;
            return up.kind();
        }
        let mut b = self.band;
        while b > Band::Normal {
            let m = self.mark(b);
            let h = (m - self.mark(Self::below(b)).min(m)) / 2;
            if fill < m.saturating_sub(h) {
                b = Self::below(b);
            } else {
                break;
            }
        }
        if b < self.band {
            let from = self.band;
            self.band = b;
            // Draining from WARN or HIGH straight below `low` reads as LOW.
            return b
                .kind()
                .or((from > Band::Low).then_some(NotifyKind::WatermarkLow));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wm() -> Watermarks {
        Watermarks::new(Congestion {
            enable: true,
            low_mark: 100,
            warn_mark: 400,
            high_mark: 800,
        })
    }

    #[test]
    fn rising_reports_each_band_once() {
        let mut w = wm();
        assert_eq!(w.update(50), None);
        assert_eq!(w.update(100), Some(NotifyKind::WatermarkLow));
        assert_eq!(w.update(150), None);
        assert_eq!(w.update(900), Some(NotifyKind::WatermarkHigh));
        assert_eq!(w.update(1000), None);
    }

    #[test]
    fn falling_needs_half_the_gap_below_the_mark() {
        let mut w = wm();
        w.update(800);
        // High's hysteresis: (800 - 400) / 2 = 200 -> leaves below 600.
        assert_eq!(w.update(790), None);
        assert_eq!(w.update(600), None);
        assert_eq!(w.update(820), None, "back up within the band");
        assert_eq!(w.update(599), Some(NotifyKind::WatermarkWarn));
        // Warn leaves below 400 - 150 = 250.
        assert_eq!(w.update(300), None);
        assert_eq!(w.update(400), None);
        assert_eq!(w.update(100), Some(NotifyKind::WatermarkLow));
        assert_eq!(w.update(60), None, "low leaves below 50");
        assert_eq!(w.update(49), None, "draining below low says nothing");
        assert_eq!(w.band(), Band::Normal);
        assert_eq!(w.update(100), Some(NotifyKind::WatermarkLow));
        w.update(900);
        assert_eq!(
            w.update(0),
            Some(NotifyKind::WatermarkLow),
            "drained at once"
        );
    }

    #[test]
    fn hovering_around_a_mark_reports_once() {
        let mut w = wm();
        let n = (0..100)
            .filter_map(|i| w.update(if i % 2 == 0 { 401 } else { 399 }))
            .count();
        assert_eq!(n, 1);
    }

    #[test]
    fn disabled_reports_nothing() {
        let mut w = Watermarks::new(Congestion {
            enable: false,
            low_mark: 0,
            warn_mark: 0,
            high_mark: 0,
        });
        assert_eq!(w.update(1 << 30), None);
    }
}
