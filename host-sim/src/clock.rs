//! Time in the simulation. True time is the simulation's virtual clock
//! from [`EPOCH_MS`]; a camera's wall clock ([`DeviceClock`]) is true time
//! plus its drift, its steps, or a wrong date until NTP sets it; its
//! monotonic clock counts from its boot.

use ivcs_host::imports::EngineClock;
use std::sync::{Arc, Mutex};

/// True UTC when the simulation starts: 2026-03-01T00:00:00Z.
pub const EPOCH_MS: u64 = 1_772_323_200_000;

/// What an unset device clock reads at boot: 2000-01-01T00:00:00Z.
const UNSET_MS: u64 = 946_684_800_000;

/// Virtual time since the simulation started, ms (0 outside it).
pub fn elapsed_ms() -> u64 {
    turmoil::sim_elapsed().map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// True UTC now, ms.
pub fn true_utc_ms() -> u64 {
    EPOCH_MS + elapsed_ms()
}

/// A camera's clocks; clones share them (the driver steps the wall clock).
#[derive(Clone)]
pub struct DeviceClock(Arc<Mutex<State>>);

struct State {
    boot_ms: u64,
    drift_ppm: f64,
    /// Sum of the steps applied, ms.
    offset_ms: i64,
    /// Until this virtual time (ms) the clock counts from [`UNSET_MS`].
    unset_until_ms: Option<u64>,
}

impl DeviceClock {
    /// A clock for a camera booting now.
    pub fn new(drift_ppm: f64, unset_for_s: Option<u64>) -> DeviceClock {
        let boot_ms = elapsed_ms();
        DeviceClock(Arc::new(Mutex::new(State {
            boot_ms,
            drift_ppm,
            offset_ms: 0,
            unset_until_ms: unset_for_s.map(|s| boot_ms + s * 1000),
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Moves the wall clock by `ms` (negative: backwards).
    pub fn step(&self, ms: i64) {
        self.lock().offset_ms += ms;
    }

    /// Virtual time of the camera's boot, ms.
    pub fn boot_ms(&self) -> u64 {
        self.lock().boot_ms
    }
}

impl EngineClock for DeviceClock {
    fn now_utc_ms(&self) -> u64 {
        let s = self.lock();
        let now = elapsed_ms();
        let up = now.saturating_sub(s.boot_ms);
        if s.unset_until_ms.is_some_and(|t| now < t) {
            return UNSET_MS + up;
        }
        let drift = (up as f64 * s.drift_ppm / 1e6) as i64;
        let utc = EPOCH_MS as i64 + now as i64 + drift + s.offset_ms;
        u64::try_from(utc).unwrap_or(0)
    }

    fn monotonic_ms(&self) -> u64 {
        elapsed_ms().saturating_sub(self.lock().boot_ms)
    }
}
