//! How the engine makes progress on `tick`: the change feed, the
//! operations, the data plane and timers, then `reconcile` (what firmware
//! was told against the plans now) and reachability notifies, and the
//! next wake time. Calls live in the parent module; this is the other half.

use super::ops::{Finished, Kind, Op};
use super::plans::Gate;
use super::{BALANCE_POLL_MS, CLOCK_WARN_MS, Engine};
use crate::cloud::Io;
use crate::cloud::api::PlanView;
use crate::cloud::link::LinkChange;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{
    AiService, BalanceRequest, EventResult, HostEvent, LogLevel, Notify, NotifyKind, OpResult,
    TickResult,
};
use crate::host::Host;

impl<H: Host> Engine<H> {
    /// `tick`: advances everything; returns host events and the next wake.
    pub fn tick(&mut self) -> TickResult {
        Io {
            host: &mut self.host,
            client: &mut self.client,
            out: &mut self.out,
        }
        .watch_clock();
        self.poll_feed();
        self.poll_ops();
        let data_wake = self.poll_data();
        let drain_wake = self.poll_drain();
        self.poll_balance_requests();
        self.reconcile();
        self.link_changes();
        let wake = self.wake_at(data_wake.into_iter().chain(drain_wake).min());
        TickResult {
            events: self.out.drain(),
            wake_at_ms: wake,
        }
    }

    fn poll_feed(&mut self) {
        // A few answers per tick at most: a cloud that keeps answering at
        // once ("changed" every time) must not keep the host's thread.
        for _ in 0..4 {
            let Some(s) = &mut self.session else {
                return;
            };
            let mut io = Io {
                host: &mut self.host,
                client: &mut self.client,
                out: &mut self.out,
            };
            let Some(ans) = s.feed.poll(&mut io) else {
                return;
            };
            self.apply_view(&ans.view, ans.authoritative);
        }
    }

    fn poll_ops(&mut self) {
        let mut i = 0;
        while i < self.ops.len() {
            let mut io = Io {
                host: &mut self.host,
                client: &mut self.client,
                out: &mut self.out,
            };
            let done = match self.ops.get_mut(i) {
                Some(op) => op.poll(&mut io),
                None => break,
            };
            match done {
                Some(r) => {
                    let op = self.ops.remove(i);
                    self.finish_op(op, r);
                }
                None => i += 1,
            }
        }
    }

    fn poll_data(&mut self) -> Option<u64> {
        let s = self.session.as_mut()?;
        let mut io = Io {
            host: &mut self.host,
            client: &mut self.client,
            out: &mut self.out,
        };
        s.data.poll(&mut io)
    }

    /// Advances what exited sessions still upload. Firmware hears nothing
    /// of it: only log lines leave.
    fn poll_drain(&mut self) -> Option<u64> {
        let d = self.drain.as_mut()?;
        let mut muted = crate::events::Outbox::default();
        let mut io = Io {
            host: &mut self.host,
            client: &mut self.client,
            out: &mut muted,
        };
        let wake = d.data.poll(&mut io);
        for e in muted.drain() {
            if matches!(e, HostEvent::Log(_)) {
                self.out.push(e);
            }
        }
        if self.host.monotonic_ms() >= d.until {
            let (segs, bytes) = d.data.pending();
            self.out.log(
                LogLevel::Warn,
                format!(
                    "exit: {segs} segment(s), {bytes} bytes not delivered within {} s of exit are dropped (their dumps remain for backup)",
                    super::EXIT_DRAIN_MS / 1000
                ),
            );
        } else if d.data.retain_busy() {
            self.out.log(
                LogLevel::Info,
                "exit: everything recorded before exit is delivered",
            );
        } else {
            return wake.map(|w| w.min(d.until));
        }
        self.drain = None;
        None
    }

    fn poll_balance_requests(&mut self) {
        let now = self.host.monotonic_ms();
        let Some(s) = &mut self.session else {
            return;
        };
        let Some(at) = s.balance_poll_at else {
            return;
        };
        if now < at {
            return;
        }
        s.balance_poll_at = Some(now.saturating_add(BALANCE_POLL_MS));
        for c in &s.channels {
            self.out.push(HostEvent::BalanceRequest(BalanceRequest {
                channel: c.channel,
                timeout_ms: 0,
            }));
        }
    }

    fn finish_op(&mut self, mut op: Op<H>, r: Result<Finished>) {
        // The picture goes back to the host before the result is reported.
        drop(op.pic.take());
        let outcome = match (op.kind, r) {
            (Kind::Balance(ch), Ok(Finished::Plan(v))) => {
                self.apply_view(&v, false);
                let now = self.cloud_now();
                match self.plans.balance(ch, now) {
                    Some(b) => OpResult::Balance(b),
                    None => OpResult::Failed(Error::new(
                        ErrorKind::Timeout,
                        format!("query-balance: the cloud's answer has no channel {ch}"),
                    )),
                }
            }
            (Kind::SetAi(a), Ok(_)) => {
                // Known at once; the change feed will confirm it.
                self.plans
                    .ai
                    .retain(|x| (x.channel, x.event_id) != (a.channel, a.event_id));
                if a.ai_type != 0 {
                    self.plans.ai.push(a);
                }
                self.reconcile();
                OpResult::Done
            }
            (Kind::GetAi(..), Ok(Finished::Ai(a))) => OpResult::AiSetting(a),
            (Kind::Destroy, Ok(_)) => {
                self.out.log(
                    LogLevel::Info,
                    "resource-destroy: the cloud deleted this device's data and reset its plan",
                );
                self.plans.reset();
                self.reconcile();
                OpResult::Done
            }
            (Kind::Report(r), res) => {
                let ok = res.is_ok();
                if let Some(s) = &self.session
                    && s.params.callbacks.event_report_result
                {
                    let t = u32::try_from(r.utc_ms / 1000).unwrap_or(u32::MAX);
                    self.out.push(HostEvent::EventResult(EventResult {
                        channel: r.channel,
                        success: ok,
                        event_id: r.event_id,
                        start_utc_s: t,
                        end_utc_s: t,
                    }));
                }
                match res {
                    Ok(_) => OpResult::Done,
                    Err(e) => {
                        self.out.log(
                            LogLevel::Warn,
                            format!(
                                "event-report channel {} event {}: {}",
                                r.channel,
                                r.event_id,
                                e.message()
                            ),
                        );
                        OpResult::Failed(e)
                    }
                }
            }
            (kind, Err(e)) => {
                self.out.log(
                    LogLevel::Warn,
                    format!("operation {} ({kind:?}): {}", op.id, e.message()),
                );
                OpResult::Failed(e)
            }
            (kind, Ok(f)) => OpResult::Failed(Error::new(
                ErrorKind::UploadFailed,
                format!(
                    "operation {} ({kind:?}) ended with an unexpected {f:?}",
                    op.id
                ),
            )),
        };
        self.out.complete(op.id, outcome);
    }

    /// A plan view from the cloud: learn the cloud's clock, update the
    /// cache, and tell firmware what changed.
    fn apply_view(&mut self, v: &PlanView, authoritative: bool) {
        if v.server_time_ms > 0 {
            let utc = self.host.now_utc_ms();
            let before = self.client.cloud_now_ms(utc) as i128 - i128::from(utc);
            let off = self.client.learn_cloud_time(v.server_time_ms, utc);
            if off.abs() > CLOCK_WARN_MS && before.abs() <= i128::from(CLOCK_WARN_MS) {
                self.out.log(
                    LogLevel::Warn,
                    format!(
                        "the device clock is {} s off the cloud's; requests are signed with cloud time",
                        off / 1000
                    ),
                );
            }
        }
        let old = self.plans.revision;
        let applied = self.plans.apply(v, authoritative);
        if applied && v.revision != old {
            self.out.log(
                LogLevel::Info,
                format!("plan revision {old} -> {}", v.revision),
            );
        }
        if applied {
            super::offer::relay(v.engine.as_ref(), &mut self.plans, &mut self.out);
        }
        self.reconcile();
    }

    /// Compares what firmware was told with the plans now and emits the
    /// differences: push start/stop (full-time plans only, as the spec
    /// says: event plans give no notification) and AI service changes.
    pub(super) fn reconcile(&mut self) {
        let now = self.cloud_now();
        let Some(s) = &mut self.session else {
            return;
        };
        let known = self.plans.known;
        let ai_cb = s.params.callbacks.ai_service_notify;
        for c in &mut s.channels {
            let gate = self.plans.gate(c.channel, now);
            // Full-time plans record continuously; event and trial plans
            // while an event is open (the spec: event start asks firmware
            // to push, event stop to stop).
            let want =
                gate == Ok(Gate::FullTime) || (gate.is_ok() && s.data.events_open(c.channel));
            if want != c.pushing {
                c.pushing = want;
                let (ev, what) = if want {
                    (HostEvent::PushStart(c.channel), "starts")
                } else {
                    (HostEvent::PushStop(c.channel), "stops")
                };
                self.out.log(
                    LogLevel::Info,
                    format!("channel {}: recording {what} ({gate:?})", c.channel),
                );
                self.out.push(ev);
            }
            if gate.ok() != c.gate {
                c.gate = gate.ok();
                s.data.on_gate(c.channel, c.gate);
            }
            if !known {
                continue;
            }
            let bits = self.plans.ai_bits(c.channel);
            // The first time AI settings are known, firmware hears only if
            // something is on; afterwards, of every change.
            let tell = match c.ai_bits {
                None => bits != 0,
                Some(old) => old != bits,
            };
            c.ai_bits = Some(bits);
            if tell && ai_cb {
                let expire = self
                    .plans
                    .plan(c.channel, now)
                    .and_then(|p| p.expires_ms)
                    .map_or(0, |t| t / 1000);
                self.out.push(HostEvent::AiService(AiService {
                    channel: c.channel,
                    ai_type: bits,
                    utc_expire: expire,
                }));
            }
        }
    }

    pub(super) fn notify_all(&mut self, kind: NotifyKind) {
        let Some(s) = &self.session else {
            return;
        };
        if !s.params.callbacks.notify {
            return;
        }
        for c in &s.channels {
            self.out.push(HostEvent::Notify(Notify {
                channel: c.channel,
                kind,
                slices: Vec::new(),
            }));
        }
    }

    /// Reachability transitions -> log, and notifies once per transition.
    fn link_changes(&mut self) {
        for ch in self.client.link.take_changes() {
            let told_down = self.session.as_ref().is_some_and(|s| s.told_down);
            match ch {
                LinkChange::Lost => {
                    self.out.log(LogLevel::Warn, "the cloud is unreachable");
                    if !told_down {
                        self.notify_all(NotifyKind::ConnectFail);
                        self.set_told_down(true);
                    }
                }
                LinkChange::Recovered => {
                    self.out.log(LogLevel::Info, "the cloud is reachable again");
                    if told_down {
                        self.notify_all(NotifyKind::ConnectRecover);
                        self.set_told_down(false);
                    }
                }
                LinkChange::Refused => {
                    self.out.log(
                        LogLevel::Error,
                        "the cloud refuses this device's credentials (HTTP 401)",
                    );
                    self.notify_all(NotifyKind::ServiceWrong);
                }
            }
        }
    }

    fn set_told_down(&mut self, v: bool) {
        if let Some(s) = &mut self.session {
            s.told_down = v;
        }
    }

    fn wake_at(&mut self, data_wake: Option<u64>) -> Option<u64> {
        let mono = self.host.monotonic_ms();
        let cloud = self.cloud_now();
        let mut wake = data_wake;
        let mut at = |t: Option<u64>| {
            if let Some(t) = t {
                wake = Some(wake.map_or(t, |w| w.min(t)));
            }
        };
        for op in &self.ops {
            at(op.wake_at());
        }
        if let Some(s) = &self.session {
            at(s.feed.wake_at());
            at(s.balance_poll_at);
            let chans = s.channels.iter().map(|c| c.channel);
            at(self
                .plans
                .next_expiry(chans, cloud)
                .map(|t| mono.saturating_add(t - cloud)));
        }
        wake
    }
}
