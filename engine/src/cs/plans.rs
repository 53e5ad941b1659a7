//! The plan cache: what the cloud last said about each channel's plan and
//! the device's AI settings, at which revision. Device-level: it outlives
//! `exit`, so `cached-balance` answers before `init` and after `exit`.
//!
//! Plans arrive from `GET /plan` (at `init`, from `query-balance`) and the
//! change feed, or as a hint from firmware's `iv_cs_get_balance_cb`. An
//! expiring plan is judged against cloud time (device time plus the offset
//! learned from the cloud's `server_time_ms`), so it ends on time even
//! without a change-feed message (the cloud does not publish expiries).

use crate::cloud::api::PlanView;
use crate::cs::params::MAX_CHANNELS;
use crate::events::{AiSetting, Balance, Channel, PlanType};
use serde::{Deserialize, Serialize};

/// One channel's plan as last known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelPlan {
    /// Type.
    pub kind: PlanType,
    /// `cs_switch`.
    pub enabled: bool,
    /// Retention days.
    pub days: u32,
    /// Trial seconds left.
    pub trial_s: u64,
    /// End of the plan, cloud ms (none = open-ended).
    pub expires_ms: Option<u64>,
}

impl ChannelPlan {
    /// No plan.
    pub const NONE: ChannelPlan = ChannelPlan {
        kind: PlanType::None,
        enabled: false,
        days: 0,
        trial_s: 0,
        expires_ms: None,
    };

    /// The plan in force at cloud time `cloud_ms`: an expired plan is none.
    pub fn at(&self, cloud_ms: u64) -> ChannelPlan {
        match self.expires_ms {
            Some(t) if t <= cloud_ms => ChannelPlan {
                expires_ms: self.expires_ms,
                ..ChannelPlan::NONE
            },
            _ => *self,
        }
    }
}

/// What `push` and events may do on a channel now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Gate {
    /// Full-time plan: record continuously.
    FullTime,
    /// Event plan: record event video only.
    Event,
    /// Trial with seconds left: event video only, debited.
    Trial,
    /// The cloud has not answered since `configure`: frames are held for
    /// pre-record and events may start, as on an event plan. Refusing
    /// instead would lose the pre-record of firmware that pushes right
    /// after init; the cloud still refuses uploads if there is no plan.
    Pending,
}

/// Why a channel may not record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// No plan, or it expired (-607).
    NoPlan,
    /// A trial whose seconds are used up (-612).
    TrialUsedUp,
}

/// The cache. See the module docs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plans {
    /// Revision of the last cloud view applied (0: none yet).
    pub revision: u64,
    /// Per channel id, none until the cloud (or firmware) said something.
    pub channels: [Option<ChannelPlan>; MAX_CHANNELS],
    /// AI settings from the last cloud view.
    pub ai: Vec<AiSetting>,
    /// Whether any cloud view was applied since `configure`.
    pub known: bool,
    /// Engine releases already offered to the host, oldest first, at most
    /// [`crate::cs::offer::REMEMBERED`] (see `cs::offer`).
    #[serde(default)]
    pub offered: Vec<String>,
}

impl Plans {
    /// Applies a cloud view if it is not older than what is known. A view
    /// with a lower revision is applied only when `authoritative` (the
    /// change feed saw the device's revision go back, e.g. the device was
    /// removed and added again). Returns whether it was applied.
    pub fn apply(&mut self, v: &PlanView, authoritative: bool) -> bool {
        if self.known && v.revision < self.revision && !authoritative {
            return false;
        }
        self.revision = v.revision;
        self.known = true;
        let mut channels = [None; MAX_CHANNELS];
        for c in &v.channels {
            let Some(slot) = usize::try_from(c.channel)
                .ok()
                .and_then(|i| channels.get_mut(i))
            else {
                continue;
            };
            *slot = Some(ChannelPlan {
                kind: c.plan_type(),
                enabled: c.enabled,
                days: c.days,
                trial_s: c.trial_seconds_left,
                expires_ms: c.expires_ms,
            });
        }
        // A channel the view does not list has no plan.
        self.channels = channels.map(|c| Some(c.unwrap_or(ChannelPlan::NONE)));
        self.ai =
            v.ai.iter()
                .filter_map(|a| {
                    Some(AiSetting {
                        channel: Channel::try_from(a.channel).ok()?,
                        event_id: i32::try_from(a.event_id).ok()?,
                        ai_type: a.ai_type,
                    })
                })
                .collect();
        true
    }

    /// Remembers `release` as offered; false if it already was.
    pub fn first_offer(&mut self, release: &str) -> bool {
        if self.offered.iter().any(|r| r == release) {
            return false;
        }
        if self.offered.len() >= crate::cs::offer::REMEMBERED {
            self.offered.remove(0);
        }
        self.offered.push(release.to_string());
        true
    }

    /// Firmware's answer to a balance request, used as a hint until the
    /// cloud says otherwise.
    pub fn apply_hint(&mut self, ch: Channel, b: &Balance) {
        if let Some(slot) = self.channels.get_mut(usize::from(ch)) {
            *slot = Some(ChannelPlan {
                kind: b.plan,
                enabled: b.enabled,
                days: u32::try_from(b.days).unwrap_or(0),
                trial_s: u64::try_from(b.trial_remaining_s).unwrap_or(0),
                expires_ms: None,
            });
        }
    }

    /// Every channel to no plan, AI settings gone (after `resource-destroy`:
    /// the cloud reset them; its change feed will confirm).
    pub fn reset(&mut self) {
        self.channels = [Some(ChannelPlan::NONE); MAX_CHANNELS];
        self.ai.clear();
    }

    /// The channel's plan at cloud time `cloud_ms`, if known.
    pub fn plan(&self, ch: Channel, cloud_ms: u64) -> Option<ChannelPlan> {
        self.channels
            .get(usize::from(ch))
            .copied()
            .flatten()
            .map(|p| p.at(cloud_ms))
    }

    /// `iv_cs_balance_info_s` of a channel, if known.
    pub fn balance(&self, ch: Channel, cloud_ms: u64) -> Option<Balance> {
        let p = self.plan(ch, cloud_ms)?;
        Some(Balance {
            enabled: p.enabled,
            days: i32::try_from(p.days).unwrap_or(i32::MAX),
            plan: p.kind,
            trial_remaining_s: i32::try_from(p.trial_s).unwrap_or(i32::MAX),
            revision: self.revision,
        })
    }

    /// What the channel may record now.
    pub fn gate(&self, ch: Channel, cloud_ms: u64) -> Result<Gate, Closed> {
        match self.plan(ch, cloud_ms) {
            None => Ok(Gate::Pending),
            Some(p) => match p.kind {
                PlanType::None => Err(Closed::NoPlan),
                PlanType::FullTime if p.enabled => Ok(Gate::FullTime),
                PlanType::Event if p.enabled => Ok(Gate::Event),
                PlanType::FreeTrial if p.enabled => Ok(Gate::Trial),
                PlanType::FreeTrial => Err(Closed::TrialUsedUp),
                PlanType::FullTime | PlanType::Event => Err(Closed::NoPlan),
            },
        }
    }

    /// AI bits enabled on a channel: OR over its event ids.
    pub fn ai_bits(&self, ch: Channel) -> u32 {
        self.ai
            .iter()
            .filter(|a| a.channel == ch)
            .fold(0, |acc, a| acc | a.ai_type)
    }

    /// The earliest future expiry among `channels`, cloud ms.
    pub fn next_expiry(
        &self,
        channels: impl Iterator<Item = Channel>,
        cloud_ms: u64,
    ) -> Option<u64> {
        channels
            .filter_map(|c| self.channels.get(usize::from(c)).copied().flatten())
            .filter(|p| p.kind != PlanType::None)
            .filter_map(|p| p.expires_ms)
            .filter(|t| *t > cloud_ms)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::api::{ChannelView, PlanView};

    fn view(rev: u64, kind: &str, expires: Option<u64>) -> PlanView {
        PlanView {
            revision: rev,
            changed: true,
            server_time_ms: 0,
            channels: vec![ChannelView {
                channel: 0,
                kind: kind.into(),
                c_type: 0,
                enabled: kind != "none",
                days: 7,
                trial_seconds_left: 0,
                expires_ms: expires,
            }],
            ai: vec![],
            engine: None,
        }
    }

    #[test]
    fn expired_plan_is_none_and_unlisted_channels_have_no_plan() {
        let mut p = Plans::default();
        assert_eq!(p.gate(0, 0), Ok(Gate::Pending));
        assert!(p.apply(&view(3, "full-time", Some(1000)), false));
        assert_eq!(p.gate(0, 999), Ok(Gate::FullTime));
        assert_eq!(p.gate(0, 1000), Err(Closed::NoPlan));
        assert_eq!(p.gate(1, 0), Err(Closed::NoPlan));
        assert_eq!(p.next_expiry([0u8].into_iter(), 0), Some(1000));
    }

    #[test]
    fn older_views_are_ignored_unless_authoritative() {
        let mut p = Plans::default();
        p.apply(&view(5, "event", None), false);
        assert!(!p.apply(&view(4, "full-time", None), false));
        assert_eq!(p.gate(0, 0), Ok(Gate::Event));
        assert!(p.apply(&view(1, "full-time", None), true));
        assert_eq!(p.revision, 1);
    }
}
