//! The engine's client of the cloud's device protocol (docs/ref/protocol.md).
//!
//! - [`sign`]: request signatures (HMAC-SHA256 over the canonical string).
//! - [`request`]: one request as a non-blocking state machine over a host
//!   exchange: start, write with back-pressure, finish, response head, body
//!   with a size cap; timeouts and retries.
//! - [`retry`]: capped exponential backoff with deterministic jitter.
//! - [`link`]: reachability, turned into connect-fail/recover notifies.
//! - [`api`]: the endpoints (paths, bodies) and the JSON answers.
//!
//! [`Client`] holds what every request shares: credentials, the
//! `set-trans-time` timeouts, the nonce counter and generator, the offset
//! between the device clock and the cloud's, and the link tracker.

pub mod api;
pub mod date;
pub mod link;
pub mod request;
pub mod retry;
pub mod sign;

use crate::events::{LogLevel, Outbox};
use crate::host::Host;
use link::Link;
use retry::Rng;
use serde::{Deserialize, Serialize};
use sign::Credentials;

/// Default upload timeout (`iv_cs_set_trans_time`), ms: time to send a body.
pub const DEFAULT_UPLOAD_TIMEOUT_MS: u32 = 30_000;
/// Default reply timeout, ms: time from the end of the body to the end of
/// the answer.
pub const DEFAULT_REPLY_TIMEOUT_MS: u32 = 10_000;
/// A 401 whose `Date` is further than this from the cloud time the engine
/// signs with corrects the clock offset, ms (below the cloud's 300 s
/// freshness window, above `Date`'s one-second resolution and any delay).
pub const CLOCK_FIX_MS: u64 = 120_000;
/// A change of device UTC minus monotonic time larger than this between
/// two looks is a step of the device clock (NTP, an RTC restored, a zone
/// fixed), ms: above the jitter of reading two clocks, far below the
/// cloud's 300 s freshness window.
pub const CLOCK_STEP_MS: u64 = 2_000;

/// Largest timeout `set-trans-time` accepts, ms.
pub const MAX_TRANS_TIMEOUT_MS: u32 = 600_000;

/// The `iv_cs_set_trans_time` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransTimes {
    /// Sending a request body, ms.
    pub upload_timeout_ms: u32,
    /// Waiting for and reading the answer, ms.
    pub reply_timeout_ms: u32,
}

impl Default for TransTimes {
    fn default() -> Self {
        TransTimes {
            upload_timeout_ms: DEFAULT_UPLOAD_TIMEOUT_MS,
            reply_timeout_ms: DEFAULT_REPLY_TIMEOUT_MS,
        }
    }
}

/// What every request shares. See the module docs.
#[derive(Debug)]
pub struct Client {
    creds: Option<Credentials>,
    /// Timeouts from `set-trans-time`.
    pub trans: TransTimes,
    rng: Rng,
    nonces: u64,
    /// Cloud time minus device time, ms, learned from plan answers; signing
    /// timestamps use cloud time so a device with a wrong clock still
    /// passes the cloud's freshness check.
    clock_offset_ms: i64,
    /// Device UTC minus monotonic time at the last look, ms: a jump in it
    /// is a step of the device clock, which the offset absorbs so cloud
    /// time runs on unchanged. Not handed over: a successor may run after
    /// a reboot, on another monotonic clock; it takes its own first look.
    utc_minus_mono_ms: Option<i64>,
    /// Reachability.
    pub link: Link,
}

impl Default for Client {
    fn default() -> Self {
        Client {
            creds: None,
            trans: TransTimes::default(),
            rng: Rng::seeded(&[]),
            nonces: 0,
            clock_offset_ms: 0,
            utc_minus_mono_ms: None,
            link: Link::default(),
        }
    }
}

/// The part of [`Client`] that `export-state` keeps (never the secret).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClientState {
    /// Timeouts.
    pub trans: TransTimes,
    /// Generator state.
    pub rng: Rng,
    /// Nonce counter.
    pub nonces: u64,
    /// Cloud minus device time, ms.
    pub clock_offset_ms: i64,
    /// Reachability.
    pub link: Link,
}

impl Client {
    /// Sets the credentials; the first configuration also seeds the
    /// generator from the device id and both clocks.
    pub fn configure(&mut self, creds: Credentials, utc_ms: u64, mono_ms: u64) {
        if self.creds.is_none() {
            self.rng = Rng::seeded(&[
                creds.device_id().as_bytes(),
                &utc_ms.to_le_bytes(),
                &mono_ms.to_le_bytes(),
            ]);
        }
        self.creds = Some(creds);
    }

    /// The credentials, if configured.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.creds.as_ref()
    }

    /// The configured device id.
    pub fn device_id(&self) -> Option<&str> {
        self.creds.as_ref().map(Credentials::device_id)
    }

    /// The generator (jitter, ids).
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Cloud time estimated from the device clock, ms.
    pub fn cloud_now_ms(&self, device_utc_ms: u64) -> u64 {
        device_utc_ms.saturating_add_signed(self.clock_offset_ms)
    }

    /// Learns the offset from a cloud answer stamped `server_ms` that
    /// arrived at device time `device_utc_ms`.
    pub fn learn_cloud_time(&mut self, server_ms: u64, device_utc_ms: u64) -> i64 {
        let off = i128::from(server_ms) - i128::from(device_utc_ms);
        self.clock_offset_ms = i64::try_from(off).unwrap_or(0);
        self.clock_offset_ms
    }

    /// The offset in use (cloud minus device time, ms).
    pub fn clock_offset_ms(&self) -> i64 {
        self.clock_offset_ms
    }

    /// Looks at both device clocks: when UTC moved against monotonic time
    /// by more than [`CLOCK_STEP_MS`] since the last look, the device clock
    /// stepped; the offset takes the step back so that cloud time (signing,
    /// plan validity, the backup window) runs on unchanged, and the step
    /// (ms, positive forward) is returned.
    pub fn observe_clocks(&mut self, device_utc_ms: u64, mono_ms: u64) -> Option<i64> {
        let d = i64::try_from(i128::from(device_utc_ms) - i128::from(mono_ms)).ok()?;
        let last = self.utc_minus_mono_ms.replace(d)?;
        let step = d.saturating_sub(last);
        if step.unsigned_abs() <= CLOCK_STEP_MS {
            return None;
        }
        self.clock_offset_ms = self.clock_offset_ms.saturating_sub(step);
        Some(step)
    }

    /// After a 401 to a request signed with offset `signed_offset_ms`: if
    /// the cloud's `Date` (`server_ms`) says that offset was off by more
    /// than [`CLOCK_FIX_MS`], the refusal was probably a stale timestamp:
    /// adopts the cloud's time (unless another answer already corrected
    /// it) and returns the offset to sign with now.
    pub fn correct_clock(
        &mut self,
        server_ms: u64,
        device_utc_ms: u64,
        signed_offset_ms: i64,
    ) -> Option<i64> {
        let off = i64::try_from(i128::from(server_ms) - i128::from(device_utc_ms)).ok()?;
        if off.abs_diff(signed_offset_ms) <= CLOCK_FIX_MS {
            return None;
        }
        if off.abs_diff(self.clock_offset_ms) > CLOCK_FIX_MS {
            self.clock_offset_ms = off;
        }
        Some(self.clock_offset_ms)
    }

    /// Signing headers for one attempt: fresh timestamp and nonce.
    pub(crate) fn sign(
        &mut self,
        method: &str,
        path: &str,
        content_sha256: &str,
        device_utc_ms: u64,
    ) -> Option<Vec<(String, String)>> {
        let now = self.cloud_now_ms(device_utc_ms);
        self.nonces = self.nonces.wrapping_add(1);
        let nonce = sign::nonce(now, self.nonces, self.rng.next_u64());
        let creds = self.creds.as_ref()?;
        Some(creds.sign(method, path, now / 1000, &nonce, content_sha256))
    }

    /// What `export-state` keeps.
    pub fn save(&self) -> ClientState {
        ClientState {
            trans: self.trans,
            rng: self.rng.clone(),
            nonces: self.nonces,
            clock_offset_ms: self.clock_offset_ms,
            link: self.link.clone(),
        }
    }

    /// Restores [`Client::save`]'s output, keeping the credentials.
    pub fn restore(&mut self, s: ClientState) {
        self.trans = s.trans;
        self.rng = s.rng;
        self.nonces = s.nonces;
        self.clock_offset_ms = s.clock_offset_ms;
        self.link = s.link;
    }
}

/// Everything a state machine needs to make progress in one tick: the
/// host, the client and the outbox. Borrowed from the engine for the call.
pub struct Io<'a, H: Host> {
    /// The host's imports.
    pub host: &'a mut H,
    /// The cloud client.
    pub client: &'a mut Client,
    /// Host events.
    pub out: &'a mut Outbox,
}

impl<H: Host> Io<'_, H> {
    /// Looks at the device clocks ([`Client::observe_clocks`]) and logs a
    /// step: before every request is signed and at every tick.
    pub fn watch_clock(&mut self) {
        let utc = self.host.now_utc_ms();
        let mono = self.host.monotonic_ms();
        if let Some(step) = self.client.observe_clocks(utc, mono) {
            self.out.log(
                LogLevel::Warn,
                format!(
                    "the device clock stepped {step:+} ms; cloud time goes on unchanged (offset now {} s)",
                    self.client.clock_offset_ms / 1000
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_of_the_device_clock_is_taken_back_by_the_offset() {
        let mut c = Client::default();
        assert_eq!(c.observe_clocks(1_000_000, 5_000), None);
        // Drift and reading jitter below the threshold are no step.
        assert_eq!(c.observe_clocks(1_011_500, 15_000), None);
        assert_eq!(c.clock_offset_ms(), 0);
        // One hour forward: cloud time stays where it was.
        let before = c.cloud_now_ms(1_011_500);
        assert_eq!(c.observe_clocks(4_611_500, 15_000), Some(3_600_000));
        assert_eq!(c.cloud_now_ms(4_611_500), before);
        // And back.
        assert_eq!(c.observe_clocks(1_011_600, 15_100), Some(-3_600_000));
        assert_eq!(c.clock_offset_ms(), 0);
    }

    #[test]
    fn a_401_is_judged_against_the_offset_the_request_was_signed_with() {
        let mut c = Client::default();
        let hour: i64 = 3_600_000;
        let (cloud, device) = (36_000_000_u64, 39_600_000_u64);
        // Signed an hour off: a stale timestamp, corrected.
        assert_eq!(c.correct_clock(cloud, device, 0), Some(-hour));
        // Another request signed with the old offset is refused after the
        // correction: still a stale timestamp (retry with the new offset),
        // and the offset stays.
        assert_eq!(c.correct_clock(cloud, device, 0), Some(-hour));
        assert_eq!(c.clock_offset_ms(), -hour);
        // Signed with the right offset: a real refusal.
        assert_eq!(c.correct_clock(cloud, device, -hour), None);
    }
}
