//! Following the cloud's change feed while iv_cs is initialised: one
//! `GET /v1/device/plan` (at `init`, or when no revision is known), then
//! back-to-back long polls `GET /v1/device/changes?since=REV&wait_s=25`.
//! Each answer that changed is handed to the engine, which updates the plan
//! cache and turns differences into host events.
//!
//! The feed retries forever (it is the engine's lifeline to plan changes)
//! with capped, jittered backoff, and runs its own retry loop instead of the
//! request's: after a failure it probes with `wait_s=0`, which the cloud
//! answers at once, so a recovered cloud is noticed (and connect-recover
//! reported) at the next retry instead of a long poll later. An answer the
//! cloud refuses (401, other 4xx) is logged and retried at the longest delay.

use crate::cloud::Io;
use crate::cloud::api::{self, FEED_WAIT_S, PlanView};
use crate::cloud::request::{Call, Failure, Policy};
use crate::cloud::retry::{MAX_DELAY_MS, backoff_ms};
use crate::events::LogLevel;
use crate::host::Host;

/// A plan answer from the feed.
pub struct FeedAnswer {
    /// The view.
    pub view: PlanView,
    /// The cloud says the device's revision went below what we asked for:
    /// apply it even though it looks older.
    pub authoritative: bool,
}

/// The feed follower.
pub struct Feed<X> {
    call: Call<X>,
    /// Revision asked for by the call in flight (none: a `/plan` fetch).
    since: Option<u64>,
    /// Consecutive failed requests.
    failures: u32,
}

fn call_for<X>(since: Option<u64>, wait_s: u32, at: u64) -> Call<X> {
    let spec = match since {
        Some(rev) => api::changes(rev, wait_s),
        None => api::plan(),
    };
    let policy = Policy {
        deadline_ms: None,
        max_delay_ms: MAX_DELAY_MS,
        max_attempts: 1,
    };
    Call::new(spec, policy, at)
}

impl<X> Feed<X> {
    /// A feed starting at monotonic `now`: with a plan fetch when `since`
    /// is none, else with a long poll from that revision (a restored
    /// engine continues where its state was exported).
    pub fn new(since: Option<u64>, now: u64) -> Feed<X> {
        Feed {
            call: call_for(since, FEED_WAIT_S, now),
            since,
            failures: 0,
        }
    }

    /// When the feed needs a tick at the latest.
    pub fn wake_at(&self) -> Option<u64> {
        self.call.wake_at()
    }

    /// Advances the feed; returns an answer that changed something.
    pub fn poll<H: Host<Exchange = X>>(&mut self, io: &mut Io<'_, H>) -> Option<FeedAnswer> {
        let done = self.call.poll(io, None)?;
        let now = io.host.monotonic_ms();
        let what = self.call.spec().what();
        let parsed = match done {
            Ok(r) => r
                .json::<PlanView>(&what)
                .map_err(|e| (e.message().to_string(), false)),
            Err(e) => Err((e.failure.to_string(), matches!(e.failure, Failure::Net(_)))),
        };
        match parsed {
            Ok(view) => {
                self.failures = 0;
                let asked = self.since;
                // Long-poll again at once from the revision just seen.
                self.since = Some(view.revision);
                self.call = call_for(self.since, FEED_WAIT_S, now);
                let went_back = asked.is_some_and(|s| view.revision < s);
                if went_back {
                    io.out.log(
                        LogLevel::Warn,
                        format!(
                            "change feed: the cloud's revision went back from {} to {}; taking the cloud's plan",
                            asked.unwrap_or(0),
                            view.revision
                        ),
                    );
                }
                (asked.is_none() || view.changed || went_back).then_some(FeedAnswer {
                    view,
                    authoritative: went_back,
                })
            }
            Err((why, transient)) => {
                self.failures = self.failures.saturating_add(1);
                let delay = if transient {
                    backoff_ms(self.failures, MAX_DELAY_MS, io.client.rng())
                } else {
                    MAX_DELAY_MS
                };
                let level = if transient {
                    LogLevel::Debug
                } else {
                    LogLevel::Warn
                };
                io.out.log(
                    level,
                    format!("change feed: {what}: {why}; next try in {delay} ms"),
                );
                self.call = call_for(self.since, 0, now.saturating_add(delay));
                None
            }
        }
    }
}
