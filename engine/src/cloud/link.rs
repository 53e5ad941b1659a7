//! Cloud reachability, as firmware sees it through `iv_cs_notify_cb`:
//! `IV_CS_AV_UPLOAD_CONNECT_FAIL` when the cloud stops answering,
//! `IV_CS_AV_UPLOAD_CONNECT_RECOVER` when it answers again, each once per
//! transition (never once per retry), and `IV_CS_COS_SERVICE_WRONG` when the
//! cloud answers but refuses the device's credentials.
//!
//! Every attempt of every request reports its outcome here. One failed
//! attempt is not an outage (a pooled connection the server just closed
//! fails once and the retry succeeds), so the link goes down only after
//! [`FAILS_TO_DOWN`] consecutive failed attempts.

use serde::{Deserialize, Serialize};

/// Consecutive failed attempts that make the link "down".
pub const FAILS_TO_DOWN: u32 = 2;

/// What the engine believes about the cloud.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reach {
    /// No attempt finished yet.
    Unknown,
    /// The last attempt got an answer.
    Up,
    /// Attempts keep failing (connect, TLS, timeouts, gateway errors).
    Down,
    /// The cloud answers 401: the credentials are not accepted.
    Refused,
}

/// A transition firmware hears about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkChange {
    /// Up or unknown -> down.
    Lost,
    /// Down -> answering.
    Recovered,
    /// The cloud started refusing the credentials.
    Refused,
}

/// The reachability tracker.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Link {
    reach: Reach,
    failures: u32,
    #[serde(skip)]
    changes: Vec<LinkChange>,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            reach: Reach::Unknown,
            failures: 0,
            changes: Vec::new(),
        }
    }
}

impl Link {
    /// Current belief.
    pub fn reach(&self) -> Reach {
        self.reach
    }

    /// An attempt got an HTTP answer the service produced.
    pub fn answered(&mut self) {
        self.failures = 0;
        if self.reach == Reach::Down {
            self.changes.push(LinkChange::Recovered);
        }
        self.reach = Reach::Up;
    }

    /// An attempt failed to reach the service.
    pub fn failed(&mut self) {
        self.failures = self.failures.saturating_add(1);
        if self.failures >= FAILS_TO_DOWN && self.reach != Reach::Down {
            self.reach = Reach::Down;
            self.changes.push(LinkChange::Lost);
        }
    }

    /// The service answered 401.
    pub fn refused(&mut self) {
        self.failures = 0;
        if self.reach == Reach::Down {
            self.changes.push(LinkChange::Recovered);
        }
        if self.reach != Reach::Refused {
            self.changes.push(LinkChange::Refused);
        }
        self.reach = Reach::Refused;
    }

    /// Transitions since the last call.
    pub fn take_changes(&mut self) -> Vec<LinkChange> {
        std::mem::take(&mut self.changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lost_and_one_recovered_per_outage() {
        let mut l = Link::default();
        l.answered();
        l.failed();
        assert!(l.take_changes().is_empty(), "one failure is not an outage");
        for _ in 0..10 {
            l.failed();
        }
        assert_eq!(l.take_changes(), vec![LinkChange::Lost]);
        l.answered();
        l.answered();
        assert_eq!(l.take_changes(), vec![LinkChange::Recovered]);
    }

    #[test]
    fn refusal_is_reported_once() {
        let mut l = Link::default();
        l.refused();
        l.refused();
        assert_eq!(l.take_changes(), vec![LinkChange::Refused]);
        assert_eq!(l.reach(), Reach::Refused);
    }
}
