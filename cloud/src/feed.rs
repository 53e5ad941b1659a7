//! The change feed: a device waits (long-poll) until its revision passes a
//! value. Changes made by this process are published at once; changes made
//! by other processes (admin commands writing the database directly) are
//! found by a poller that asks the repository for revisions above the
//! highest one seen.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

/// Per-device revision watchers.
pub struct Feed {
    devices: Mutex<HashMap<String, watch::Sender<u64>>>,
    /// Highest revision published, for the poller.
    high: Mutex<u64>,
    /// Set when the service shuts down: waiters answer at once, so a
    /// graceful shutdown does not wait out their long polls.
    closing: watch::Sender<bool>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            devices: Mutex::default(),
            high: Mutex::default(),
            closing: watch::channel(false).0,
        }
    }
}

impl Feed {
    fn sender(&self, device: &str, current: u64) -> watch::Sender<u64> {
        let mut m = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(device.to_string())
            .or_insert_with(|| watch::channel(current).0)
            .clone()
    }

    /// Announces that `device` is at `revision`.
    pub fn publish(&self, device: &str, revision: u64) {
        let tx = self.sender(device, revision);
        tx.send_if_modified(|r| {
            let newer = revision > *r;
            if newer {
                *r = revision;
            }
            newer
        });
        let mut h = self.high.lock().unwrap_or_else(|p| p.into_inner());
        *h = (*h).max(revision);
    }

    /// Requests waiting on the feed now (each holds one receiver).
    pub fn waiters(&self) -> u64 {
        let m = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        m.values().map(|tx| tx.receiver_count() as u64).sum()
    }

    /// Highest revision published so far.
    pub fn high(&self) -> u64 {
        *self.high.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until `device`'s revision differs from `since` or `wait`
    /// passes; `current` is its revision as read from the database just
    /// before. A `since` above `current` (a device that saw a restored
    /// database, or an earlier device of the same id) differs already.
    /// Returns whether it changed.
    pub async fn wait(&self, device: &str, current: u64, since: u64, wait: Duration) -> bool {
        if current != since {
            return true;
        }
        let mut rx = self.sender(device, current).subscribe();
        let mut closing = self.closing.subscribe();
        tokio::select! {
            r = tokio::time::timeout(wait, rx.wait_for(|r| *r > since)) => r.is_ok_and(|r| r.is_ok()),
            _ = closing.wait_for(|c| *c) => false,
        }
    }

    /// Ends every wait, now and later (the service is shutting down).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }
}
