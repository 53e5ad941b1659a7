//! The service's shared state and the operations several entry points use
//! (HTTP handlers, admin commands, background jobs): opening a data
//! directory, plan views, event status, device deletion, the tombstone
//! reaper and the retention job.

use crate::auth::{DeviceAuth, UrlSigner};
use crate::clock::Clock;
use crate::config::Config;
use crate::error::Result;
use crate::feed::Feed;
use crate::ids::CHANNELS;
use crate::metrics::{self, Metrics};
use crate::model::{AiSetting, EventRow, EventStatus, Plan, PlanType, event_status, plan_for};
use crate::objects::Objects;
use crate::repo::Repo;
use serde::Serialize;
use std::sync::Arc;

/// Everything a request handler needs.
pub struct App {
    /// Settings.
    pub cfg: Config,
    /// Metadata.
    pub repo: Repo,
    /// Bytes.
    pub objects: Objects,
    /// Now.
    pub clock: Clock,
    /// Device request verification.
    pub device_auth: DeviceAuth,
    /// Playback URL signing.
    pub urls: UrlSigner,
    /// Change notifications.
    pub feed: Feed,
    /// Counters.
    pub metrics: Metrics,
    /// Bounds concurrent MP4 exports ([`crate::export::CONCURRENT_EXPORTS`]).
    pub export_slots: Arc<tokio::sync::Semaphore>,
    /// Capability tokens of engine offers ([`crate::releases`]).
    pub engine_tokens: UrlSigner,
    /// Vendor keys releases must be signed with (`engine_keys`), if set.
    pub engine_keys: Option<ivcs_host::artifact::Keyring>,
}

/// One channel's plan as a device sees it (mirrors `iv_cs_balance_info_s`).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ChannelPlan {
    /// Channel 0-4.
    pub channel: u32,
    /// Plan in force now.
    #[serde(rename = "type")]
    pub kind: PlanType,
    /// `iv_cs_type_e` value of `type`.
    pub c_type: i32,
    /// `cs_switch`: whether the channel may record to the cloud now.
    pub enabled: bool,
    /// Retention, days.
    pub days: u32,
    /// Trial seconds left (`free_trial_remaining_sec`).
    pub trial_seconds_left: u64,
    /// End of the plan, ms since 1970.
    pub expires_ms: Option<u64>,
}

/// What `GET /v1/device/plan` and the change feed return.
#[derive(Clone, Debug, Serialize)]
pub struct PlanView {
    /// Change revision: grows whenever plans or AI settings change.
    pub revision: u64,
    /// Whether the revision passed the `since` asked for (change feed).
    pub changed: bool,
    /// Server time, ms since 1970 (devices with an unset clock use it).
    pub server_time_ms: u64,
    /// Per channel.
    pub channels: Vec<ChannelPlan>,
    /// AI settings.
    pub ai: Vec<AiSetting>,
    /// The engine release offered to the device (device API only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<crate::releases::EngineOffer>,
}

/// The plan in force for one channel at `now_ms`.
pub fn channel_plan(rows: &[(Option<u32>, Plan)], channel: u32, now_ms: u64) -> ChannelPlan {
    let none = Plan::none();
    let p = plan_for(rows, channel).unwrap_or(&none);
    // A used-up trial still reports its type, with `enabled` false, so the
    // device can tell -612 (no balance) from -607 (no plan).
    let kind = p.effective(now_ms);
    let enabled = match kind {
        PlanType::None => false,
        PlanType::Trial => p.trial_left_ms() > 0,
        PlanType::FullTime | PlanType::Event => true,
    };
    ChannelPlan {
        channel,
        kind,
        c_type: kind.c_value(),
        enabled,
        days: p.days,
        trial_seconds_left: p.trial_left_ms() / 1000,
        expires_ms: p.expires_ms,
    }
}

impl App {
    /// Opens the data directory of `cfg` and builds the state.
    pub async fn open(cfg: Config) -> Result<Arc<App>> {
        let clock = Clock::new(cfg.clock_file.clone());
        App::open_with_clock(cfg, clock).await
    }

    /// [`App::open`] with "now" from `clock` (host-sim's virtual time).
    pub async fn open_with_clock(cfg: Config, clock: Clock) -> Result<Arc<App>> {
        std::fs::create_dir_all(&cfg.data)?;
        let repo = Repo::open(&cfg.data.join("ivcs.db"), cfg.fsync).await?;
        let objects = Objects::local(&cfg.data.join("objects"), cfg.fsync, cfg.min_free_bytes)?;
        let key = repo
            .setting_or_insert("playback_url_key", crate::auth::random_secret)
            .await?;
        // A key of its own: a playback signature can never pass for an
        // engine token, nor the other way round.
        let engine_key = repo
            .setting_or_insert("engine_token_key", crate::auth::random_secret)
            .await?;
        let engine_keys = match &cfg.engine_keys {
            Some(path) => Some(crate::releases::read_keyring(path)?),
            None => None,
        };
        Ok(Arc::new(App {
            clock,
            device_auth: DeviceAuth::new(cfg.auth_skew_s),
            urls: UrlSigner::new(&key),
            feed: Feed::default(),
            metrics: Metrics::default(),
            export_slots: crate::export::slots(),
            engine_tokens: UrlSigner::new(&engine_key),
            engine_keys,
            repo,
            objects,
            cfg,
        }))
    }

    /// Now, ms since 1970.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The device's plans and AI settings as it should see them.
    pub async fn plan_view(&self, device: &str, since: Option<u64>) -> Result<PlanView> {
        let revision = self.repo.revision(device).await?;
        let rows = self.repo.plans(device).await?;
        let now = self.now_ms();
        Ok(PlanView {
            revision,
            changed: since.is_none_or(|s| revision != s),
            server_time_ms: now,
            channels: (0..CHANNELS).map(|c| channel_plan(&rows, c, now)).collect(),
            ai: self.repo.ai_settings(device).await?,
            engine: None,
        })
    }

    /// Bumps the device's revision and wakes its change-feed waiters.
    pub async fn changed(&self, device: &str) -> Result<u64> {
        let rev = self.repo.bump_revision(device).await?;
        self.feed.publish(device, rev);
        Ok(rev)
    }

    /// Recomputes the status of an ended event from the video and pictures
    /// stored for it.
    pub async fn refresh_event_status(&self, e: &EventRow) -> Result<EventStatus> {
        let Some(end) = e.utc_end_ms else {
            return Ok(EventStatus::Open);
        };
        let segs = self
            .repo
            .segments_in(
                &e.device_id,
                e.channel,
                e.utc_start_ms,
                end.max(e.utc_start_ms + 1),
            )
            .await?;
        let covered: u64 = segs
            .iter()
            .map(|s| {
                let s_end = s.utc_end_ms.unwrap_or(s.utc_start_ms);
                s_end
                    .min(end)
                    .saturating_sub(s.utc_start_ms.max(e.utc_start_ms))
            })
            .sum();
        // A point event is covered by a segment that contains it.
        let covered = if end == e.utc_start_ms && !segs.is_empty() {
            1
        } else {
            covered
        };
        let status = event_status(
            e.report_opt,
            end.saturating_sub(e.utc_start_ms),
            covered,
            e.picture_id.is_some(),
        );
        if status != e.status {
            self.repo
                .set_event_status(&e.device_id, &e.event_key, status)
                .await?;
        }
        Ok(status)
    }

    /// Deletes every object and row of a device's data and resets its plan
    /// (the device itself stays registered unless `remove_device`). Returns
    /// the number of objects deleted.
    pub async fn destroy_device_data(&self, device: &str, remove_device: bool) -> Result<u64> {
        let keys = self
            .repo
            .tombstone_device_data(device, self.now_ms())
            .await?;
        let mut n = 0;
        for k in &keys {
            self.objects.delete(k).await?;
            self.repo.clear_tombstone(k).await?;
            n += 1;
        }
        // Objects whose rows never made it (a crash between object and row)
        // are found by listing the device's prefix.
        for k in self.objects.list(&format!("devices/{device}/")).await? {
            self.objects.delete(&k).await?;
            n += 1;
        }
        metrics::add(&self.metrics.objects_deleted_total, n);
        if remove_device {
            self.repo.delete_device_row(device).await?;
        } else {
            self.changed(device).await?;
        }
        Ok(n)
    }

    /// Deletes objects that no row and no tombstone refers to: what a crash
    /// between storing an object and inserting its row leaves, or a device
    /// whose removal was interrupted. Only `serve` calls it, at startup
    /// before it listens and while it holds the data directory's lock, so
    /// no upload can be between its object and its row. Returns how many.
    pub async fn sweep_orphans(&self) -> Result<u64> {
        let mut n = 0;
        for device in self.objects.children("devices/").await? {
            let known: std::collections::HashSet<String> =
                self.repo.object_keys(&device).await?.into_iter().collect();
            for k in self.objects.list(&format!("devices/{device}/")).await? {
                if !known.contains(&k) {
                    tracing::info!(key = %k, "removing an object no row refers to");
                    self.objects.delete(&k).await?;
                    n += 1;
                }
            }
        }
        metrics::add(&self.metrics.objects_deleted_total, n);
        Ok(n)
    }

    /// Deletes queued objects and then their rows. Returns how many.
    pub async fn reap_tombstones(&self) -> Result<u64> {
        let mut n = 0;
        loop {
            let keys = self.repo.tombstones(500).await?;
            if keys.is_empty() {
                break;
            }
            for k in &keys {
                self.objects.delete(k).await?;
                self.repo.clear_tombstone(k).await?;
                n += 1;
            }
        }
        self.repo.purge_deleted_rows().await?;
        metrics::add(&self.metrics.objects_deleted_total, n);
        Ok(n)
    }

    /// One retention pass at `now_ms`: per device and channel, segments
    /// older than the plan's days go (unless they overlap a kept event),
    /// then events older than that. Returns segments removed.
    pub async fn retention_pass(&self, now_ms: u64) -> Result<u64> {
        let mut removed = 0;
        for (device, _) in self.repo.devices().await? {
            let rows = self.repo.plans(&device).await?;
            if rows.is_empty() {
                continue;
            }
            for ch in 0..CHANNELS {
                let Some(plan) = plan_for(&rows, ch) else {
                    continue;
                };
                let cutoff = now_ms.saturating_sub(u64::from(plan.days) * 86_400_000);
                self.repo.expire_events(&device, ch, cutoff, now_ms).await?;
                loop {
                    let segs = self.repo.expired_segments(&device, ch, cutoff, 500).await?;
                    if segs.is_empty() {
                        break;
                    }
                    self.repo.tombstone_segments(&device, &segs, now_ms).await?;
                    removed += segs.len() as u64;
                }
            }
        }
        metrics::add(&self.metrics.retention_segments_deleted_total, removed);
        self.reap_tombstones().await?;
        Ok(removed)
    }
}
