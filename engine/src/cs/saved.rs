//! The control plane's part of `export-state` (the `CTRL` section of
//! `state.rs`): JSON, so fields can be added with defaults and an engine
//! reads what an older one wrote.
//!
//! Kept: the device id (the secret is not: the host calls `configure` on
//! the new instance before `import-state`), timeouts, generator and nonce
//! counter, the cloud clock offset, reachability, the plan cache and its
//! revision (a restored engine continues the change feed from it), the
//! operations in flight (restarted from their current step; a report whose
//! picture was not uploaded yet fails, since the picture handle does not
//! survive), the `init` session with what firmware was told (push started,
//! AI bits, outage notified), and host events not yet delivered.
//!
//! Not kept: exchanges (host resources; requests restart), and monotonic
//! times (the new instance's clock may have another origin): timers
//! restart from the import.

use super::{ChannelState, Engine, Session};
use crate::bail;
use crate::cloud::ClientState;
use crate::cs::data::DataPlane;
use crate::cs::feed::Feed;
use crate::cs::ops::{Kind, Op};
use crate::cs::params::{self, InitParams, MAX_CHANNELS};
use crate::cs::plans::Plans;
use crate::data::{Export, Journal};
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Balance, LogLevel, OpId, OpResult, Outbox};
use crate::host::Host;
use crate::state;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Saved {
    device_id: Option<String>,
    client: ClientState,
    #[serde(default)]
    plans: Plans,
    next_op: OpId,
    #[serde(default)]
    ops: Vec<SavedOp>,
    #[serde(default)]
    session: Option<SavedSession>,
    #[serde(default)]
    outbox: Outbox,
}

#[derive(Serialize, Deserialize)]
struct SavedOp {
    id: OpId,
    kind: Kind,
}

#[derive(Serialize, Deserialize)]
struct SavedSession {
    params: InitParams,
    channels: Vec<ChannelState>,
    #[serde(default)]
    told_down: bool,
    #[serde(default)]
    hints: [Option<Balance>; MAX_CHANNELS],
}

impl<H: Host> Engine<H> {
    /// `export-checkpoint` or `export-state` (`mode`): everything above as
    /// a state blob (see `state.rs`).
    pub fn export_state(&self, mode: Export) -> Result<Vec<u8>> {
        let saved = Saved {
            device_id: self.client.device_id().map(str::to_string),
            client: self.client.save(),
            plans: self.plans.clone(),
            next_op: self.next_op,
            ops: self
                .ops
                .iter()
                .map(|o| SavedOp {
                    id: o.id,
                    kind: o.kind.clone(),
                })
                .collect(),
            session: self.session.as_ref().map(|s| SavedSession {
                params: s.params.clone(),
                channels: s.channels.clone(),
                told_down: s.told_down,
                hints: s.hints,
            }),
            outbox: self.out.clone(),
        };
        let ctrl = serde_json::to_vec(&saved).map_err(|e| {
            Error::new(
                ErrorKind::OutOfMemory,
                format!("export-state: serialising the control plane: {e}"),
            )
        })?;
        let Some(session) = &self.session else {
            return state::write(&[(state::CTRL, &ctrl)], state::MDIA, 0, |_| {});
        };
        let (data, media_len, fill) = session.data.export(mode, &self.host);
        let media_tag = match mode {
            Export::HandOver => state::MDIA,
            Export::Checkpoint => state::MJNL,
        };
        let Ok(media_len) = usize::try_from(media_len) else {
            bail!(OutOfMemory, "export-state: {media_len} bytes of media");
        };
        state::write(
            &[(state::CTRL, &ctrl), (state::DATA, &data)],
            media_tag,
            media_len,
            fill,
        )
    }

    /// `import-state`: restores a blob from this or an older engine into a
    /// fresh instance that `configure` gave the same device; or a hand-over
    /// followed by a later checkpoint of the same engine (a restart point
    /// with the media of both, docs/design/trap-restart.md).
    pub fn import_state(&mut self, blob: &[u8]) -> Result<()> {
        let chain = state::read_chain(blob)?;
        let (base, sections) = match chain.as_slice() {
            [one] => (None, one),
            [base, last] => (Some(base), last),
            _ => bail!(InvalidArgument, "import-state: no state"),
        };
        if self.session.is_some() || !self.ops.is_empty() {
            bail!(
                AlreadyInitialised,
                "import-state: this engine is initialised or has operations in flight; import into a fresh instance"
            );
        }
        let Some(ctrl) = sections.ctrl else {
            return Ok(());
        };
        let saved: Saved = serde_json::from_slice(ctrl).map_err(|e| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("import-state: the control-plane section is malformed: {e}"),
            )
        })?;
        if let Some(d) = &saved.device_id
            && self.client.device_id() != Some(d.as_str())
        {
            bail!(
                NoCredentials,
                "import-state: the state belongs to device {d}; call configure with its credentials first"
            );
        }
        if let Some(s) = &saved.session {
            params::check_init(&s.params).map_err(|e| e.context("import-state"))?;
        }
        let now = self.host.monotonic_ms();
        self.client.restore(saved.client);
        self.plans = saved.plans;
        self.next_op = saved.next_op.max(1);
        self.out.extend(saved.outbox);
        for o in saved.ops {
            let picture_lost = matches!(&o.kind, Kind::Report(r) if r.picture.is_some());
            if picture_lost {
                self.out.complete(
                    o.id,
                    OpResult::Failed(Error::new(
                        ErrorKind::UploadFailed,
                        "event-report: the picture did not survive the engine restart",
                    )),
                );
                continue;
            }
            self.ops
                .push(Op::new(o.id, o.kind, None, now, self.client.trans));
        }
        if let Some(s) = saved.session {
            let since = self.plans.known.then_some(self.plans.revision);
            let boot = self.client.rng().next_u64() as u32;
            let mut data = DataPlane::new(&s.params, boot);
            // The gates the control plane last applied: it only tells the
            // data plane of changes, and a continued recording needs one.
            for c in &s.channels {
                data.on_gate(c.channel, c.gate);
            }
            if let Some(d) = sections.data {
                let mut io = crate::cloud::Io {
                    host: &mut self.host,
                    client: &mut self.client,
                    out: &mut self.out,
                };
                // A checkpoint (no `MDIA`): its segments may continue the
                // hand-over before it, even with no new bytes (no `MJNL`).
                let journal = sections.media.is_none().then(|| Journal {
                    bytes: sections.journal.unwrap_or_default(),
                    base: base.and_then(|b| Some((b.data?, b.media.unwrap_or_default()))),
                });
                data.import(&mut io, d, sections.media.unwrap_or_default(), journal)?;
            }
            self.session = Some(Session {
                balance_poll_at: s.params.callbacks.get_balance.then_some(now),
                data,
                feed: Feed::new(since, now),
                params: s.params,
                channels: s.channels,
                told_down: s.told_down,
                hints: s.hints,
            });
        }
        self.out.log(
            LogLevel::Info,
            format!(
                "import-state: restored (plan revision {}, {} operation(s), {})",
                self.plans.revision,
                self.ops.len(),
                if self.session.is_some() {
                    "initialised"
                } else {
                    "not initialised"
                }
            ),
        );
        Ok(())
    }
}
