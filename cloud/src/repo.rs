//! The metadata repository: every SQL statement of the service lives here,
//! behind methods named for what they do, so handlers never see SQL and a
//! PostgreSQL implementation can replace this one without touching them.
//!
//! The embedded default is SQLite in WAL mode (one writer, many readers).
//! Rows are only written after their objects (see `objects`), and deletes
//! first hide rows behind a tombstone (`deleted_ms`) and queue the object
//! key, so a crash at any point leaves no row pointing at a missing object.

use crate::error::{Error, Result};
use crate::model::{
    AiSetting, EngineStatus, EngineStatusRow, EventRow, EventStatus, PictureRow, Plan, PlanType,
    ReleaseRow, ReportOpt, SegmentEntry, SegmentRow, SegmentState, Targeting,
};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// Schema version written to `PRAGMA user_version`: one more than the
/// number of upgrade steps.
const SCHEMA_VERSION: i64 = UPGRADES.len() as i64 + 1;

/// [`Repo::segment_entries`]: the same rows as [`Repo::segments_in`], as
/// one JSON array whose elements list `SegmentEntry`'s fields in order. The
/// `segments_listing` index covers it (a test checks the plan).
const SEGMENT_ENTRIES_SQL: &str = "SELECT json_group_array(json_array(segment_id, container, codec,
     utc_start_ms, utc_end_ms, bytes, init_bytes,
     CASE WHEN discontinuity THEN json('true') ELSE json('false') END))
   FROM segments WHERE device_id = ? AND channel = ? AND state = 'complete'
     AND deleted_ms IS NULL AND utc_start_ms >= ? AND utc_start_ms < ? AND utc_end_ms > ?";

/// Upgrade steps: `UPGRADES[n - 1]` takes a version-`n` database to `n + 1`.
/// `schema.sql` alone creates the current version.
const UPGRADES: [&str; 4] = [
    // 1 -> 2: the covering index of listings (see schema.sql).
    "CREATE INDEX segments_listing ON segments(device_id, channel, utc_start_ms, utc_end_ms,
       segment_id, container, codec, bytes, init_bytes, state, deleted_ms)
     WHERE state = 'complete' AND deleted_ms IS NULL;",
    // 2 -> 3: admin tokens and engine releases (see schema.sql).
    UPGRADE_ENGINE_RELEASES,
    // 3 -> 4: the plan type a plan row replaced, and when.
    "ALTER TABLE plans ADD COLUMN replaced_type TEXT
       CHECK (replaced_type IN ('none', 'full-time', 'event', 'trial'));
     ALTER TABLE plans ADD COLUMN replaced_ms INTEGER;",
    // 4 -> 5: segments that start a recording run, in the listing index.
    "ALTER TABLE segments ADD COLUMN discontinuity INTEGER NOT NULL DEFAULT 0;
     DROP INDEX segments_listing;
     CREATE INDEX segments_listing ON segments(device_id, channel, utc_start_ms, utc_end_ms,
       segment_id, container, codec, bytes, init_bytes, discontinuity, state, deleted_ms)
     WHERE state = 'complete' AND deleted_ms IS NULL;",
];

/// [`UPGRADES`] 2 -> 3: the same statements as the end of schema.sql.
const UPGRADE_ENGINE_RELEASES: &str =
    "ALTER TABLE tokens ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
CREATE TABLE engine_releases (
    id                  TEXT PRIMARY KEY,
    engine_version      TEXT NOT NULL,
    contract            TEXT NOT NULL,
    kind                TEXT NOT NULL CHECK (kind IN ('wasm', 'precompiled')),
    target              TEXT NOT NULL,
    key_id              TEXT NOT NULL,
    signature_verified  INTEGER NOT NULL,
    sha256              TEXT NOT NULL,
    bytes               INTEGER NOT NULL,
    object_key          TEXT NOT NULL,
    percent             INTEGER CHECK (percent BETWEEN 1 AND 100),
    created_ms          INTEGER NOT NULL,
    withdrawn_ms        INTEGER
);
CREATE INDEX engine_releases_active ON engine_releases(withdrawn_ms, created_ms);

CREATE TABLE engine_release_devices (
    release_id  TEXT NOT NULL REFERENCES engine_releases(id) ON DELETE CASCADE,
    device_id   TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    PRIMARY KEY (release_id, device_id)
);
CREATE INDEX engine_release_devices_device ON engine_release_devices(device_id);

CREATE TABLE engine_status (
    release_id  TEXT NOT NULL REFERENCES engine_releases(id) ON DELETE CASCADE,
    device_id   TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    status      TEXT NOT NULL CHECK (status IN ('downloaded', 'refused', 'failed', 'swapped',
                                                'passed', 'rolled-back')),
    kind        TEXT,
    message     TEXT,
    updated_ms  INTEGER NOT NULL,
    PRIMARY KEY (release_id, device_id)
);
CREATE INDEX engine_status_device ON engine_status(device_id);";

/// The metadata store.
#[derive(Clone)]
pub struct Repo {
    pool: SqlitePool,
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Repo {
    /// Opens (creating if needed) the database at `path` and brings its
    /// schema up to date. `durable`: every commit is on disk before it
    /// returns (the `fsync` setting), else a power loss may take back the
    /// last commits (the database stays consistent either way).
    pub async fn open(path: &Path, durable: bool) -> Result<Repo> {
        // WAL with synchronous=NORMAL syncs only at checkpoints: a row
        // acknowledged a moment before a power loss can vanish while its
        // fsynced object stays. FULL syncs the WAL at every commit.
        let sync = if durable {
            SqliteSynchronous::Full
        } else {
            SqliteSynchronous::Normal
        };
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sync)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await?;
        let repo = Repo { pool };
        repo.migrate().await?;
        Ok(repo)
    }

    async fn migrate(&self) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await?;
        if version == 0 {
            sqlx::raw_sql(include_str!("schema.sql"))
                .execute(&mut *tx)
                .await?;
        } else if (1..SCHEMA_VERSION).contains(&version) {
            // In the same transaction as the check: a failed step leaves the
            // old version intact (SQLite DDL is transactional).
            let from = usize::try_from(version - 1).unwrap_or(0);
            for step in &UPGRADES[from..] {
                sqlx::raw_sql(*step).execute(&mut *tx).await?;
            }
        } else if version != SCHEMA_VERSION {
            return Err(Error::internal(format!(
                "the database has schema version {version}; this build knows {SCHEMA_VERSION}"
            )));
        }
        if version != SCHEMA_VERSION {
            // PRAGMA takes no bound parameters; the value is our constant.
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "PRAGMA user_version = {SCHEMA_VERSION}"
            )))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    // ---- settings --------------------------------------------------------

    /// The value of `key`, inserting `make()` first if it has none.
    pub async fn setting_or_insert(
        &self,
        key: &str,
        make: impl FnOnce() -> String,
    ) -> Result<String> {
        sqlx::query("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)")
            .bind(key)
            .bind(make())
            .execute(&self.pool)
            .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
                .bind(key)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    // ---- devices ---------------------------------------------------------

    /// Adds a device; false if the id is taken.
    pub async fn add_device(&self, id: &str, secret: &str, now_ms: u64) -> Result<bool> {
        let r = sqlx::query(
            "INSERT OR IGNORE INTO devices (id, secret, created_ms, revision) VALUES (?, ?, ?, 0)",
        )
        .bind(id)
        .bind(secret)
        .bind(i64_of(now_ms))
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 1 {
            self.bump_revision(id).await?;
        }
        Ok(r.rows_affected() == 1)
    }

    /// Every device: (id, created_ms).
    pub async fn devices(&self) -> Result<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT id, created_ms FROM devices ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(id, t)| (id, u64_of(t))).collect())
    }

    /// The device's secret, if it exists.
    pub async fn device_secret(&self, id: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT secret FROM devices WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The device's change revision.
    pub async fn revision(&self, id: &str) -> Result<u64> {
        let r: Option<i64> = sqlx::query_scalar("SELECT revision FROM devices WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        r.map(u64_of)
            .ok_or_else(|| Error::not_found(format!("no device {id}")))
    }

    /// Gives the device a new revision from the service-wide sequence
    /// (`revision_seq` in `settings`) and returns it. Greater than every
    /// revision ever handed out, also to removed devices, so one query finds
    /// all changes since a point and a re-added id never repeats a number
    /// its predecessor's firmware has seen.
    pub async fn bump_revision(&self, id: &str) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        // Databases from before the sequence start it above every device.
        let next: i64 = sqlx::query_scalar(
            "INSERT INTO settings (key, value)
               VALUES ('revision_seq', (SELECT COALESCE(MAX(revision), 0) + 1 FROM devices))
             ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1
             RETURNING CAST(value AS INTEGER)",
        )
        .fetch_one(&mut *tx)
        .await?;
        let r = sqlx::query("UPDATE devices SET revision = ? WHERE id = ?")
            .bind(next)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found(format!("no device {id}")));
        }
        tx.commit().await?;
        Ok(u64_of(next))
    }

    /// Devices whose revision is above `since`: (id, revision).
    pub async fn changed_since(&self, since: u64) -> Result<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT id, revision FROM devices WHERE revision > ?")
                .bind(i64_of(since))
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(id, r)| (id, u64_of(r))).collect())
    }

    /// Removes the device row (its other rows go by cascade). Call after its
    /// objects are gone.
    pub async fn delete_device_row(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM devices WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Hides every segment and picture of the device behind tombstones and
    /// queues their objects; deletes its events, AI settings and plans.
    /// Returns the queued object keys.
    pub async fn tombstone_device_data(&self, id: &str, now_ms: u64) -> Result<Vec<String>> {
        let mut tx = self.pool.begin().await?;
        let keys: Vec<String> = sqlx::query_scalar(
            "SELECT object_key FROM segments WHERE device_id = ?
             UNION ALL SELECT object_key FROM pictures WHERE device_id = ?",
        )
        .bind(id)
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        for k in &keys {
            sqlx::query("INSERT OR IGNORE INTO tombstones (object_key, created_ms) VALUES (?, ?)")
                .bind(k)
                .bind(i64_of(now_ms))
                .execute(&mut *tx)
                .await?;
        }
        for sql in [
            "DELETE FROM segments WHERE device_id = ?",
            "DELETE FROM pictures WHERE device_id = ?",
            "DELETE FROM events WHERE device_id = ?",
            "DELETE FROM ai_settings WHERE device_id = ?",
            "DELETE FROM plans WHERE device_id = ?",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(keys)
    }

    // ---- tombstones --------------------------------------------------------

    /// Up to `limit` object keys waiting for deletion.
    pub async fn tombstones(&self, limit: u32) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT object_key FROM tombstones ORDER BY created_ms LIMIT ?")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Forgets a tombstone once its object is deleted.
    pub async fn clear_tombstone(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM tombstones WHERE object_key = ?")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Number of queued tombstones.
    pub async fn tombstone_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tombstones")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64_of(n))
    }

    // ---- plans -------------------------------------------------------------

    /// Sets the plan of one channel, or the device default (`channel` None,
    /// stored as -1); resets the trial debit.
    pub async fn set_plan(
        &self,
        device: &str,
        channel: Option<u32>,
        p: &Plan,
        now_ms: u64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO plans (device_id, channel, type, days, trial_ms, trial_used_ms, expires_ms, updated_ms)
             VALUES (?, ?, ?, ?, ?, 0, ?, ?)
             ON CONFLICT (device_id, channel) DO UPDATE SET type = excluded.type,
               days = excluded.days, trial_ms = excluded.trial_ms, trial_used_ms = 0,
               expires_ms = excluded.expires_ms, updated_ms = excluded.updated_ms,
               replaced_type = CASE WHEN plans.type <> excluded.type THEN plans.type
                                    ELSE plans.replaced_type END,
               replaced_ms = CASE WHEN plans.type <> excluded.type THEN excluded.updated_ms
                                  ELSE plans.replaced_ms END",
        )
        .bind(device)
        .bind(channel.map_or(-1, i64::from))
        .bind(p.kind.as_str())
        .bind(i64::from(p.days))
        .bind(i64_of(p.trial_ms))
        .bind(p.expires_ms.map(i64_of))
        .bind(i64_of(now_ms))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Plan rows of the device: (channel or None for the default, plan).
    pub async fn plans(&self, device: &str) -> Result<Vec<(Option<u32>, Plan)>> {
        let rows = sqlx::query(
            "SELECT channel, type, days, trial_ms, trial_used_ms, expires_ms, replaced_type,
               replaced_ms FROM plans WHERE device_id = ? ORDER BY channel",
        )
        .bind(device)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let ch: i64 = r.try_get("channel")?;
                let kind: String = r.try_get("type")?;
                Ok((
                    u32::try_from(ch).ok(),
                    Plan {
                        kind: PlanType::from_str(&kind).map_err(Error::internal)?,
                        days: u32::try_from(r.try_get::<i64, _>("days")?).unwrap_or(0),
                        trial_ms: u64_of(r.try_get("trial_ms")?),
                        trial_used_ms: u64_of(r.try_get("trial_used_ms")?),
                        expires_ms: r.try_get::<Option<i64>, _>("expires_ms")?.map(u64_of),
                        replaced: match (
                            r.try_get::<Option<String>, _>("replaced_type")?,
                            r.try_get::<Option<i64>, _>("replaced_ms")?,
                        ) {
                            (Some(k), Some(at)) => {
                                Some((PlanType::from_str(&k).map_err(Error::internal)?, u64_of(at)))
                            }
                            _ => None,
                        },
                    },
                ))
            })
            .collect()
    }

    /// Adds `ms` to the trial debit of the plan row that governs `channel`.
    pub async fn debit_trial(&self, device: &str, channel: u32, ms: u64) -> Result<()> {
        sqlx::query(
            "UPDATE plans SET trial_used_ms = trial_used_ms + ?
             WHERE device_id = ? AND channel = (
               SELECT channel FROM plans WHERE device_id = ? AND channel IN (?, -1)
               ORDER BY channel DESC LIMIT 1)",
        )
        .bind(i64_of(ms))
        .bind(device)
        .bind(device)
        .bind(i64::from(channel))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ---- segments ----------------------------------------------------------

    /// The live (not deleted) segment `id` of `device`.
    pub async fn segment(&self, device: &str, id: &str) -> Result<Option<SegmentRow>> {
        let r = sqlx::query(
            "SELECT * FROM segments WHERE device_id = ? AND segment_id = ? AND deleted_ms IS NULL",
        )
        .bind(device)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(segment_of).transpose()
    }

    /// Inserts or replaces a segment row (after its object is stored). The
    /// object of a replaced row is queued for deletion in the same
    /// transaction.
    pub async fn put_segment(&self, s: &SegmentRow) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let row = (
            s.device_id.as_str(),
            s.segment_id.as_str(),
            s.object_key.as_str(),
        );
        retire_replaced_object(&mut tx, RETIRE_SEGMENT_OBJECT, row, s.uploaded_ms).await?;
        sqlx::query(
            "INSERT OR REPLACE INTO segments (device_id, segment_id, channel, state, container,
               codec, event, backup, discontinuity, utc_start_ms, utc_end_ms, pts_start_ms,
               pts_end_ms, seq_start, seq_end, bytes, init_bytes, video_frames, audio_frames,
               sha256, object_key, uploaded_ms, deleted_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
        )
        .bind(&s.device_id)
        .bind(&s.segment_id)
        .bind(i64::from(s.channel))
        .bind(s.state.as_str())
        .bind(&s.container)
        .bind(&s.codec)
        .bind(s.event)
        .bind(s.backup)
        .bind(s.discontinuity)
        .bind(i64_of(s.utc_start_ms))
        .bind(s.utc_end_ms.map(i64_of))
        .bind(i64_of(s.pts_start_ms))
        .bind(s.pts_end_ms.map(i64_of))
        .bind(i64::from(s.seq_start))
        .bind(s.seq_end.map(i64::from))
        .bind(i64_of(s.bytes))
        .bind(i64::from(s.init_bytes))
        .bind(s.video_frames.map(i64::from))
        .bind(s.audio_frames.map(i64::from))
        .bind(&s.sha256)
        .bind(&s.object_key)
        .bind(i64_of(s.uploaded_ms))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Complete segments of a channel overlapping `[start, end)`, by start.
    pub async fn segments_in(
        &self,
        device: &str,
        channel: u32,
        start_ms: u64,
        end_ms: u64,
    ) -> Result<Vec<SegmentRow>> {
        // utc_start_ms is indexed; no segment is longer than the longest
        // accepted (MAX_SEGMENT_MS), which bounds the scan to the left.
        let rows = sqlx::query(
            "SELECT * FROM segments WHERE device_id = ? AND channel = ? AND state = 'complete'
               AND deleted_ms IS NULL AND utc_start_ms >= ? AND utc_start_ms < ? AND utc_end_ms > ?
             ORDER BY utc_start_ms, segment_id",
        )
        .bind(device)
        .bind(i64::from(channel))
        .bind(i64_of(
            start_ms.saturating_sub(crate::model::MAX_SEGMENT_MS),
        ))
        .bind(i64_of(end_ms))
        .bind(i64_of(start_ms))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(segment_of).collect()
    }

    /// [`Repo::segments_in`] as listing entries, for ranges of thousands of
    /// segments (a day of 10 s segments is 8,640). SQLite builds the whole
    /// list as one JSON array: sqlx hands rows over from its worker thread
    /// one by one, with a copy of every column, which made most of the time
    /// of a day's playlist.
    pub async fn segment_entries(
        &self,
        device: &str,
        channel: u32,
        start_ms: u64,
        end_ms: u64,
    ) -> Result<Vec<SegmentEntry>> {
        let json: String = sqlx::query_scalar(SEGMENT_ENTRIES_SQL)
            .bind(device)
            .bind(i64::from(channel))
            .bind(i64_of(
                start_ms.saturating_sub(crate::model::MAX_SEGMENT_MS),
            ))
            .bind(i64_of(end_ms))
            .bind(i64_of(start_ms))
            .fetch_one(&self.pool)
            .await?;
        let mut entries: Vec<SegmentEntry> = serde_json::from_str(&json)
            .map_err(|e| Error::internal(format!("segment list: {e}")))?;
        // Sorted here, not by an ORDER BY in the aggregate, which sorts even
        // rows that the time index already yields in order (a third of the
        // query's time); on sorted input this is one pass.
        entries
            .sort_by(|a, b| (a.utc_start_ms, &a.segment_id).cmp(&(b.utc_start_ms, &b.segment_id)));
        Ok(entries)
    }

    /// Segments whose retention has run out: ending before `cutoff_ms` and
    /// overlapping no live event that ends at or after it.
    pub async fn expired_segments(
        &self,
        device: &str,
        channel: u32,
        cutoff_ms: u64,
        limit: u32,
    ) -> Result<Vec<(String, String)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT s.segment_id, s.object_key FROM segments s
             WHERE s.device_id = ? AND s.channel = ? AND s.deleted_ms IS NULL
               AND COALESCE(s.utc_end_ms, s.utc_start_ms) < ?
               AND NOT EXISTS (
                 SELECT 1 FROM events e WHERE e.device_id = s.device_id AND e.channel = s.channel
                   AND e.deleted_ms IS NULL
                   AND COALESCE(e.utc_end_ms, e.utc_start_ms) >= ?
                   AND e.utc_start_ms < COALESCE(s.utc_end_ms, s.utc_start_ms)
                   AND COALESCE(e.utc_end_ms, e.utc_start_ms) >= s.utc_start_ms)
             LIMIT ?",
        )
        .bind(device)
        .bind(i64::from(channel))
        .bind(i64_of(cutoff_ms))
        .bind(i64_of(cutoff_ms))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Hides segments behind tombstones and queues their objects, in one
    /// transaction.
    pub async fn tombstone_segments(
        &self,
        device: &str,
        segs: &[(String, String)],
        now_ms: u64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for (id, key) in segs {
            sqlx::query(
                "UPDATE segments SET deleted_ms = ? WHERE device_id = ? AND segment_id = ?",
            )
            .bind(i64_of(now_ms))
            .bind(device)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT OR IGNORE INTO tombstones (object_key, created_ms) VALUES (?, ?)")
                .bind(key)
                .bind(i64_of(now_ms))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every object key a row or a tombstone of `device` refers to.
    pub async fn object_keys(&self, device: &str) -> Result<Vec<String>> {
        let prefix = format!("devices/{device}/");
        Ok(sqlx::query_scalar(
            "SELECT object_key FROM segments WHERE device_id = ?
             UNION ALL SELECT object_key FROM pictures WHERE device_id = ?
             UNION ALL SELECT object_key FROM tombstones
               WHERE substr(object_key, 1, length(?)) = ?",
        )
        .bind(device)
        .bind(device)
        .bind(&prefix)
        .bind(&prefix)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Removes the rows of tombstoned segments whose objects are gone.
    pub async fn purge_deleted_rows(&self) -> Result<()> {
        sqlx::query(
            "DELETE FROM segments WHERE deleted_ms IS NOT NULL
               AND object_key NOT IN (SELECT object_key FROM tombstones)",
        )
        .execute(&self.pool)
        .await?;
        sqlx::query(
            "DELETE FROM pictures WHERE deleted_ms IS NOT NULL
               AND object_key NOT IN (SELECT object_key FROM tombstones)",
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes events that ended before `cutoff_ms` with their pictures,
    /// and pictures of no event taken before it (objects queued for
    /// deletion).
    pub async fn expire_events(
        &self,
        device: &str,
        channel: u32,
        cutoff_ms: u64,
        now_ms: u64,
    ) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        // The pictures that go: those of the events that go, and those of no
        // event taken before the cutoff. Tombstones first, then the rows.
        for sql in [
            "INSERT OR IGNORE INTO tombstones (object_key, created_ms)
             SELECT object_key, ?1 FROM pictures WHERE device_id = ?2 AND deleted_ms IS NULL
               AND (event_key IN (SELECT event_key FROM events WHERE device_id = ?2
                      AND channel = ?3 AND deleted_ms IS NULL
                      AND COALESCE(utc_end_ms, utc_start_ms) < ?4)
                    OR (event_key IS NULL AND channel = ?3 AND utc_ms < ?4))",
            "UPDATE pictures SET deleted_ms = ?1 WHERE device_id = ?2 AND deleted_ms IS NULL
               AND (event_key IN (SELECT event_key FROM events WHERE device_id = ?2
                      AND channel = ?3 AND deleted_ms IS NULL
                      AND COALESCE(utc_end_ms, utc_start_ms) < ?4)
                    OR (event_key IS NULL AND channel = ?3 AND utc_ms < ?4))",
        ] {
            sqlx::query(sql)
                .bind(i64_of(now_ms))
                .bind(device)
                .bind(i64::from(channel))
                .bind(i64_of(cutoff_ms))
                .execute(&mut *tx)
                .await?;
        }
        let r = sqlx::query(
            "DELETE FROM events WHERE device_id = ? AND channel = ? AND deleted_ms IS NULL
               AND COALESCE(utc_end_ms, utc_start_ms) < ?",
        )
        .bind(device)
        .bind(i64::from(channel))
        .bind(i64_of(cutoff_ms))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(r.rows_affected())
    }

    /// Which of the days `[starts[i], starts[i + 1])` (ms since 1970 UTC;
    /// local midnights, so 23, 24 or 25 h apart) have video: a complete
    /// segment overlapping the day, as the day's timeline would show it.
    /// Ascending indexes `i`. One query: each day is a range probe of the
    /// listing index that stops at its first segment.
    pub async fn days_with_video(
        &self,
        device: &str,
        channel: u32,
        starts: &[u64],
    ) -> Result<Vec<usize>> {
        if starts.len() < 2 {
            return Ok(Vec::new());
        }
        // The starts go in as one JSON array; a segment overlapping a day
        // started at most MAX_SEGMENT_MS before it, which bounds each probe
        // to the left.
        let starts = serde_json::to_string(starts)
            .map_err(|e| Error::internal(format!("day starts: {e}")))?;
        let days: Vec<i64> = sqlx::query_scalar(
            "WITH b(i, t) AS (SELECT key, value FROM json_each(?)),
                  day(i, s, e) AS (SELECT b.i, b.t, n.t FROM b JOIN b AS n ON n.i = b.i + 1)
             SELECT i FROM day WHERE EXISTS (SELECT 1 FROM segments
               WHERE device_id = ? AND channel = ? AND state = 'complete' AND deleted_ms IS NULL
                 AND utc_start_ms >= day.s - ? AND utc_start_ms < day.e AND utc_end_ms > day.s)
             ORDER BY i",
        )
        .bind(starts)
        .bind(device)
        .bind(i64::from(channel))
        .bind(i64_of(crate::model::MAX_SEGMENT_MS))
        .fetch_all(&self.pool)
        .await?;
        Ok(days
            .into_iter()
            .filter_map(|i| usize::try_from(i).ok())
            .collect())
    }

    /// Channels that have any segment or plan, per device.
    pub async fn channels(&self, device: &str) -> Result<Vec<u32>> {
        let v: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT channel FROM segments WHERE device_id = ? AND deleted_ms IS NULL
             UNION SELECT channel FROM plans WHERE device_id = ? AND channel >= 0 ORDER BY 1",
        )
        .bind(device)
        .bind(device)
        .fetch_all(&self.pool)
        .await?;
        Ok(v.into_iter()
            .filter_map(|c| u32::try_from(c).ok())
            .collect())
    }

    // ---- events ------------------------------------------------------------

    /// Inserts an event unless its key exists; true if inserted.
    pub async fn insert_event(&self, e: &EventRow) -> Result<bool> {
        let r = sqlx::query(
            "INSERT OR IGNORE INTO events (device_id, event_key, channel, event_id, info, report_opt,
               utc_start_ms, utc_end_ms, status, picture_id, created_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&e.device_id)
        .bind(&e.event_key)
        .bind(i64::from(e.channel))
        .bind(i64::from(e.event_id))
        .bind(&e.info)
        .bind(e.report_opt.as_str())
        .bind(i64_of(e.utc_start_ms))
        .bind(e.utc_end_ms.map(i64_of))
        .bind(e.status.as_str())
        .bind(&e.picture_id)
        .bind(i64_of(e.created_ms))
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The live event `key` of `device`.
    pub async fn event(&self, device: &str, key: &str) -> Result<Option<EventRow>> {
        let r = sqlx::query(
            "SELECT * FROM events WHERE device_id = ? AND event_key = ? AND deleted_ms IS NULL",
        )
        .bind(device)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(event_of).transpose()
    }

    /// Records the end of an event.
    pub async fn end_event(&self, device: &str, key: &str, utc_end_ms: u64) -> Result<()> {
        sqlx::query("UPDATE events SET utc_end_ms = ? WHERE device_id = ? AND event_key = ?")
            .bind(i64_of(utc_end_ms))
            .bind(device)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sets an event's status.
    pub async fn set_event_status(
        &self,
        device: &str,
        key: &str,
        status: EventStatus,
    ) -> Result<()> {
        sqlx::query("UPDATE events SET status = ? WHERE device_id = ? AND event_key = ?")
            .bind(status.as_str())
            .bind(device)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ended events of a channel overlapping `[start, end]` (for status
    /// updates when video arrives late).
    pub async fn ended_events_overlapping(
        &self,
        device: &str,
        channel: u32,
        start_ms: u64,
        end_ms: u64,
    ) -> Result<Vec<EventRow>> {
        let rows = sqlx::query(
            "SELECT * FROM events WHERE device_id = ? AND channel = ? AND deleted_ms IS NULL
               AND utc_end_ms IS NOT NULL AND utc_start_ms <= ? AND utc_end_ms >= ?",
        )
        .bind(device)
        .bind(i64::from(channel))
        .bind(i64_of(end_ms))
        .bind(i64_of(start_ms))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_of).collect()
    }

    /// A page of events of a channel starting in `[start, end)`, ordered by
    /// (start, key), strictly after the cursor position.
    pub async fn events_page(
        &self,
        device: &str,
        channel: u32,
        start_ms: u64,
        end_ms: u64,
        after: Option<(u64, &str)>,
        limit: u32,
    ) -> Result<Vec<EventRow>> {
        let (after_ms, after_key) = after.map_or((-1, ""), |(t, k)| (i64_of(t), k));
        let rows = sqlx::query(
            "SELECT * FROM events WHERE device_id = ? AND channel = ? AND deleted_ms IS NULL
               AND utc_start_ms >= ? AND utc_start_ms < ?
               AND (utc_start_ms > ? OR (utc_start_ms = ? AND event_key > ?))
             ORDER BY utc_start_ms, event_key LIMIT ?",
        )
        .bind(device)
        .bind(i64::from(channel))
        .bind(i64_of(start_ms))
        .bind(i64_of(end_ms))
        .bind(after_ms)
        .bind(after_ms)
        .bind(after_key)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_of).collect()
    }

    /// Attaches a picture to an event.
    pub async fn set_event_picture(&self, device: &str, key: &str, picture_id: &str) -> Result<()> {
        sqlx::query("UPDATE events SET picture_id = ? WHERE device_id = ? AND event_key = ?")
            .bind(picture_id)
            .bind(device)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes an event (its picture is queued for deletion); false if none.
    pub async fn delete_event(&self, device: &str, key: &str, now_ms: u64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT OR IGNORE INTO tombstones (object_key, created_ms)
             SELECT object_key, ? FROM pictures WHERE device_id = ? AND event_key = ? AND deleted_ms IS NULL",
        )
        .bind(i64_of(now_ms))
        .bind(device)
        .bind(key)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE pictures SET deleted_ms = ? WHERE device_id = ? AND event_key = ?")
            .bind(i64_of(now_ms))
            .bind(device)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        let r = sqlx::query(
            "DELETE FROM events WHERE device_id = ? AND event_key = ? AND deleted_ms IS NULL",
        )
        .bind(device)
        .bind(key)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    // ---- pictures ------------------------------------------------------------

    /// Inserts or replaces a picture row (after its object is stored).
    pub async fn put_picture(&self, p: &PictureRow) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let row = (
            p.device_id.as_str(),
            p.picture_id.as_str(),
            p.object_key.as_str(),
        );
        retire_replaced_object(&mut tx, RETIRE_PICTURE_OBJECT, row, p.uploaded_ms).await?;
        sqlx::query(
            "INSERT OR REPLACE INTO pictures (device_id, picture_id, channel, utc_ms, event_key, mime,
               bytes, object_key, uploaded_ms, deleted_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
        )
        .bind(&p.device_id)
        .bind(&p.picture_id)
        .bind(i64::from(p.channel))
        .bind(i64_of(p.utc_ms))
        .bind(&p.event_key)
        .bind(&p.mime)
        .bind(i64_of(p.bytes))
        .bind(&p.object_key)
        .bind(i64_of(p.uploaded_ms))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The live picture `id` of `device`.
    pub async fn picture(&self, device: &str, id: &str) -> Result<Option<PictureRow>> {
        let r = sqlx::query(
            "SELECT * FROM pictures WHERE device_id = ? AND picture_id = ? AND deleted_ms IS NULL",
        )
        .bind(device)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref()
            .map(|r| -> Result<PictureRow> {
                Ok(PictureRow {
                    device_id: r.try_get("device_id")?,
                    picture_id: r.try_get("picture_id")?,
                    channel: u32::try_from(r.try_get::<i64, _>("channel")?).unwrap_or(0),
                    utc_ms: u64_of(r.try_get("utc_ms")?),
                    event_key: r.try_get("event_key")?,
                    mime: r.try_get("mime")?,
                    bytes: u64_of(r.try_get("bytes")?),
                    object_key: r.try_get("object_key")?,
                    uploaded_ms: u64_of(r.try_get("uploaded_ms")?),
                })
            })
            .transpose()
    }

    // ---- AI settings -----------------------------------------------------------

    /// Sets an AI setting.
    pub async fn set_ai(&self, device: &str, a: &AiSetting, now_ms: u64) -> Result<()> {
        sqlx::query(
            "INSERT OR REPLACE INTO ai_settings (device_id, channel, event_id, ai_type, args, updated_ms)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(device)
        .bind(i64::from(a.channel))
        .bind(i64::from(a.event_id))
        .bind(i64::from(a.ai_type))
        .bind(&a.args)
        .bind(i64_of(now_ms))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every AI setting of the device.
    pub async fn ai_settings(&self, device: &str) -> Result<Vec<AiSetting>> {
        let rows: Vec<(i64, i64, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT channel, event_id, ai_type, args FROM ai_settings WHERE device_id = ?
             ORDER BY channel, event_id",
        )
        .bind(device)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(c, e, t, args)| AiSetting {
                channel: u32::try_from(c).unwrap_or(0),
                event_id: u32::try_from(e).unwrap_or(0),
                ai_type: u32::try_from(t).unwrap_or(0),
                args,
            })
            .collect())
    }

    // ---- tokens -------------------------------------------------------------

    /// Stores the SHA-256 of an app token.
    pub async fn add_token(&self, sha256: &str, name: &str, now_ms: u64) -> Result<()> {
        sqlx::query("INSERT INTO tokens (token_sha256, name, created_ms) VALUES (?, ?, ?)")
            .bind(sha256)
            .bind(name)
            .bind(i64_of(now_ms))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether a token with this SHA-256 exists.
    pub async fn token_exists(&self, sha256: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tokens WHERE token_sha256 = ?")
            .bind(sha256)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    /// Stores the SHA-256 of an admin token (app API plus engine releases).
    pub async fn add_admin_token(&self, sha256: &str, name: &str, now_ms: u64) -> Result<()> {
        sqlx::query(
            "INSERT INTO tokens (token_sha256, name, created_ms, admin) VALUES (?, ?, ?, 1)",
        )
        .bind(sha256)
        .bind(name)
        .bind(i64_of(now_ms))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether an admin token with this SHA-256 exists.
    pub async fn admin_token_exists(&self, sha256: &str) -> Result<bool> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM tokens WHERE token_sha256 = ? AND admin = 1")
                .bind(sha256)
                .fetch_one(&self.pool)
                .await?;
        Ok(n > 0)
    }

    // ---- engine releases ------------------------------------------------------

    /// Records a release (its object is stored already) with its explicit
    /// devices. False if the id is taken.
    pub async fn add_release(&self, r: &ReleaseRow) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let percent = match &r.targeting {
            Targeting::Percent(p) => Some(i64::from(*p)),
            Targeting::Devices(_) => None,
        };
        let done = sqlx::query(
            "INSERT INTO engine_releases (id, engine_version, contract, kind, target, key_id,
               signature_verified, sha256, bytes, object_key, percent, created_ms, withdrawn_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&r.id)
        .bind(&r.engine_version)
        .bind(&r.contract)
        .bind(&r.kind)
        .bind(&r.target)
        .bind(&r.key_id)
        .bind(r.signature_verified)
        .bind(&r.sha256)
        .bind(i64_of(r.size))
        .bind(&r.object_key)
        .bind(percent)
        .bind(i64_of(r.created_ms))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        if let Targeting::Devices(devices) = &r.targeting {
            for d in devices {
                sqlx::query(
                    "INSERT INTO engine_release_devices (release_id, device_id) VALUES (?, ?)
                     ON CONFLICT DO NOTHING",
                )
                .bind(&r.id)
                .bind(d)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Releases, newest first; only those not withdrawn if `active_only`.
    pub async fn releases(&self, active_only: bool) -> Result<Vec<ReleaseRow>> {
        let rows = sqlx::query(
            "SELECT * FROM engine_releases WHERE (? = 0 OR withdrawn_ms IS NULL)
             ORDER BY created_ms DESC, id DESC",
        )
        .bind(active_only)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.release_of(r).await?);
        }
        Ok(out)
    }

    /// One release.
    pub async fn release(&self, id: &str) -> Result<Option<ReleaseRow>> {
        let row = sqlx::query("SELECT * FROM engine_releases WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some(self.release_of(&r).await?)),
            None => Ok(None),
        }
    }

    async fn release_of(&self, r: &SqliteRow) -> Result<ReleaseRow> {
        let id: String = r.try_get("id")?;
        let targeting = match r.try_get::<Option<i64>, _>("percent")? {
            Some(p) => Targeting::Percent(u32::try_from(p).unwrap_or(0)),
            None => Targeting::Devices(
                sqlx::query_scalar(
                    "SELECT device_id FROM engine_release_devices WHERE release_id = ?
                     ORDER BY device_id",
                )
                .bind(&id)
                .fetch_all(&self.pool)
                .await?,
            ),
        };
        Ok(ReleaseRow {
            engine_version: r.try_get("engine_version")?,
            contract: r.try_get("contract")?,
            kind: r.try_get("kind")?,
            target: r.try_get("target")?,
            key_id: r.try_get("key_id")?,
            signature_verified: r.try_get("signature_verified")?,
            sha256: r.try_get("sha256")?,
            size: u64_of(r.try_get("bytes")?),
            object_key: r.try_get("object_key")?,
            created_ms: u64_of(r.try_get("created_ms")?),
            withdrawn_ms: r.try_get::<Option<i64>, _>("withdrawn_ms")?.map(u64_of),
            targeting,
            id,
        })
    }

    /// Marks a release withdrawn (once; a second call keeps the first
    /// time). False if there is no such release.
    pub async fn withdraw_release(&self, id: &str, now_ms: u64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE engine_releases SET withdrawn_ms = COALESCE(withdrawn_ms, ?) WHERE id = ?",
        )
        .bind(i64_of(now_ms))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records a device's outcome for a release (the last one wins).
    pub async fn set_engine_status(&self, release: &str, s: &EngineStatusRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO engine_status (release_id, device_id, status, kind, message, updated_ms)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (release_id, device_id) DO UPDATE SET status = excluded.status,
               kind = excluded.kind, message = excluded.message, updated_ms = excluded.updated_ms",
        )
        .bind(release)
        .bind(&s.device)
        .bind(s.status.as_str())
        .bind(&s.kind)
        .bind(&s.message)
        .bind(i64_of(s.updated_ms))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every device's status for a release, by device.
    pub async fn engine_statuses(&self, release: &str) -> Result<Vec<EngineStatusRow>> {
        let rows: Vec<StatusTuple> = sqlx::query_as(
            "SELECT device_id, status, kind, message, updated_ms FROM engine_status
             WHERE release_id = ? ORDER BY device_id",
        )
        .bind(release)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(device, status, kind, message, t)| {
                Ok(EngineStatusRow {
                    device,
                    status: EngineStatus::from_str(&status).map_err(Error::internal)?,
                    kind,
                    message,
                    updated_ms: u64_of(t),
                })
            })
            .collect()
    }

    /// One device's status for a release.
    pub async fn engine_status(&self, release: &str, device: &str) -> Result<Option<EngineStatus>> {
        let s: Option<String> = sqlx::query_scalar(
            "SELECT status FROM engine_status WHERE release_id = ? AND device_id = ?",
        )
        .bind(release)
        .bind(device)
        .fetch_optional(&self.pool)
        .await?;
        s.map(|s| EngineStatus::from_str(&s).map_err(Error::internal))
            .transpose()
    }

    /// Closes the pool (checkpoints the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// An `engine_status` row as selected: device, status, kind, message,
/// updated_ms.
type StatusTuple = (String, String, Option<String>, Option<String>, i64);

/// Before a segment row is replaced: queues the object of the row it
/// replaces for deletion, unless that is the new object itself or already
/// queued. Every upload writes a fresh key (see `objects::segment_key`), so
/// the reaper of a replaced object can never delete its successor's bytes.
const RETIRE_SEGMENT_OBJECT: &str = "INSERT OR IGNORE INTO tombstones (object_key, created_ms)
     SELECT object_key, ? FROM segments WHERE device_id = ? AND segment_id = ? AND object_key != ?";

/// [`RETIRE_SEGMENT_OBJECT`] for pictures.
const RETIRE_PICTURE_OBJECT: &str = "INSERT OR IGNORE INTO tombstones (object_key, created_ms)
     SELECT object_key, ? FROM pictures WHERE device_id = ? AND picture_id = ? AND object_key != ?";

/// Runs a `RETIRE_*_OBJECT` statement for `row` = (device id, row id, new
/// object key).
async fn retire_replaced_object(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    sql: &'static str,
    (device, id, new_key): (&str, &str, &str),
    now_ms: u64,
) -> Result<()> {
    sqlx::query(sql)
        .bind(i64_of(now_ms))
        .bind(device)
        .bind(id)
        .bind(new_key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn segment_of(r: &SqliteRow) -> Result<SegmentRow> {
    let state: String = r.try_get("state")?;
    let u32_opt = |name: &str| -> Result<Option<u32>> {
        Ok(r.try_get::<Option<i64>, _>(name)?
            .and_then(|v| u32::try_from(v).ok()))
    };
    Ok(SegmentRow {
        device_id: r.try_get("device_id")?,
        segment_id: r.try_get("segment_id")?,
        channel: u32::try_from(r.try_get::<i64, _>("channel")?).unwrap_or(0),
        state: SegmentState::from_str(&state).map_err(Error::internal)?,
        container: r.try_get("container")?,
        codec: r.try_get("codec")?,
        event: r.try_get("event")?,
        backup: r.try_get("backup")?,
        discontinuity: r.try_get("discontinuity")?,
        utc_start_ms: u64_of(r.try_get("utc_start_ms")?),
        utc_end_ms: r.try_get::<Option<i64>, _>("utc_end_ms")?.map(u64_of),
        pts_start_ms: u64_of(r.try_get("pts_start_ms")?),
        pts_end_ms: r.try_get::<Option<i64>, _>("pts_end_ms")?.map(u64_of),
        seq_start: u32::try_from(r.try_get::<i64, _>("seq_start")?).unwrap_or(0),
        seq_end: u32_opt("seq_end")?,
        bytes: u64_of(r.try_get("bytes")?),
        init_bytes: u32::try_from(r.try_get::<i64, _>("init_bytes")?).unwrap_or(0),
        video_frames: u32_opt("video_frames")?,
        audio_frames: u32_opt("audio_frames")?,
        sha256: r.try_get("sha256")?,
        object_key: r.try_get("object_key")?,
        uploaded_ms: u64_of(r.try_get("uploaded_ms")?),
    })
}

fn event_of(r: &SqliteRow) -> Result<EventRow> {
    let opt: String = r.try_get("report_opt")?;
    let status: String = r.try_get("status")?;
    Ok(EventRow {
        device_id: r.try_get("device_id")?,
        event_key: r.try_get("event_key")?,
        channel: u32::try_from(r.try_get::<i64, _>("channel")?).unwrap_or(0),
        event_id: u32::try_from(r.try_get::<i64, _>("event_id")?).unwrap_or(0),
        info: r.try_get("info")?,
        report_opt: ReportOpt::from_str(&opt).map_err(Error::internal)?,
        utc_start_ms: u64_of(r.try_get("utc_start_ms")?),
        utc_end_ms: r.try_get::<Option<i64>, _>("utc_end_ms")?.map(u64_of),
        status: EventStatus::from_str(&status).map_err(Error::internal)?,
        picture_id: r.try_get("picture_id")?,
        created_ms: u64_of(r.try_get("created_ms")?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fresh_db(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ivcs-repo-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("ivcs.db")
    }

    fn segment(id: &str, start: u64, end: Option<u64>, state: SegmentState) -> SegmentRow {
        SegmentRow {
            device_id: "cam1".into(),
            segment_id: id.into(),
            channel: 0,
            state,
            container: "ts".into(),
            codec: "avc1.640028".into(),
            event: false,
            backup: false,
            discontinuity: false,
            utc_start_ms: start,
            utc_end_ms: end,
            pts_start_ms: 0,
            pts_end_ms: end.map(|e| e - start),
            seq_start: 0,
            seq_end: end.map(|_| 1),
            bytes: 1000,
            init_bytes: 0,
            video_frames: None,
            audio_frames: None,
            sha256: String::new(),
            object_key: format!("devices/cam1/segments/{id}"),
            uploaded_ms: 0,
        }
    }

    /// segment_entries lists exactly what segments_in lists, in order:
    /// complete and live only, overlapping the range (also from before it),
    /// ties on the start broken by id.
    #[tokio::test]
    async fn segment_entries_match_segments_in() {
        let repo = Repo::open(&fresh_db("entries"), false).await.unwrap();
        repo.add_device("cam1", "s", 0).await.unwrap();
        let complete = SegmentState::Complete;
        for s in [
            segment("b", 10_000, Some(20_000), complete),
            segment("a", 10_000, Some(20_000), complete),
            segment("before", 1_000, Some(10_500), complete),
            segment("ended-before", 1_000, Some(9_000), complete),
            segment("recv", 20_000, None, SegmentState::Received),
            segment("part", 30_000, None, SegmentState::Partial),
            segment("later", 40_000, Some(50_000), complete),
            segment("after", 60_000, Some(70_000), complete),
            segment("gone", 45_000, Some(55_000), complete),
        ] {
            repo.put_segment(&s).await.unwrap();
        }
        repo.tombstone_segments("cam1", &[("gone".into(), "k".into())], 1)
            .await
            .unwrap();
        let rows: Vec<String> = repo
            .segments_in("cam1", 0, 10_000, 60_000)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.segment_id)
            .collect();
        assert_eq!(rows, ["before", "a", "b", "later"]);
        let entries = repo
            .segment_entries("cam1", 0, 10_000, 60_000)
            .await
            .unwrap();
        let ids: Vec<&str> = entries.iter().map(|e| e.segment_id.as_str()).collect();
        assert_eq!(ids, rows);
        assert_eq!(
            entries[1],
            SegmentEntry {
                segment_id: "a".into(),
                container: "ts".into(),
                codec: "avc1.640028".into(),
                utc_start_ms: 10_000,
                utc_end_ms: 20_000,
                bytes: 1000,
                init_bytes: 0,
                discontinuity: false,
            }
        );
        assert!(
            repo.segment_entries("cam1", 1, 0, 60_000)
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// A day has video when a complete live segment overlaps it, also one
    /// that started the day before; days may be 23 or 25 h long.
    #[tokio::test]
    async fn days_with_video_are_the_days_segments_overlap() {
        let repo = Repo::open(&fresh_db("days"), false).await.unwrap();
        repo.add_device("cam1", "s", 0).await.unwrap();
        const H: u64 = 3_600_000;
        // Four days of 24, 23, 25 and 24 h from t = 100 h.
        let starts = [100 * H, 124 * H, 147 * H, 172 * H, 196 * H];
        let complete = SegmentState::Complete;
        for s in [
            // Across the boundary of days 1 and 2: both have video.
            segment("across", 147 * H - 5_000, Some(147 * H + 5_000), complete),
            // Ends exactly where day 1 starts: day 0 only (ends are exclusive).
            segment("to-edge", 124 * H - 10_000, Some(124 * H), complete),
            // Day 3: partial, received and deleted rows are not video.
            segment("part", 180 * H, None, SegmentState::Partial),
            segment("recv", 181 * H, None, SegmentState::Received),
            segment("gone", 182 * H, Some(182 * H + 10_000), complete),
            // Before the month, after it, on another channel.
            segment("before", 90 * H, Some(90 * H + 10_000), complete),
            segment("after", 196 * H, Some(196 * H + 10_000), complete),
        ] {
            repo.put_segment(&s).await.unwrap();
        }
        repo.tombstone_segments("cam1", &[("gone".into(), "k".into())], 1)
            .await
            .unwrap();
        let days = repo.days_with_video("cam1", 0, &starts).await.unwrap();
        assert_eq!(days, [0, 1, 2]);
        assert!(
            repo.days_with_video("cam1", 1, &starts)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            repo.days_with_video("cam1", 0, &starts[..1])
                .await
                .unwrap()
                .is_empty()
        );
        repo.close().await;
    }

    /// A plan set that changes the type remembers the type it replaced and
    /// when; one that keeps the type keeps the memory.
    #[tokio::test]
    async fn a_plan_change_remembers_the_type_it_replaced() {
        let repo = Repo::open(&fresh_db("replaced"), false).await.unwrap();
        repo.add_device("cam1", "s", 0).await.unwrap();
        let mut p = Plan::none();
        p.kind = PlanType::FullTime;
        p.days = 7;
        repo.set_plan("cam1", None, &p, 1_000).await.unwrap();
        assert_eq!(repo.plans("cam1").await.unwrap()[0].1.replaced, None);
        repo.set_plan("cam1", None, &Plan::none(), 2_000)
            .await
            .unwrap();
        let want = Some((PlanType::FullTime, 2_000));
        assert_eq!(repo.plans("cam1").await.unwrap()[0].1.replaced, want);
        repo.set_plan("cam1", None, &Plan::none(), 3_000)
            .await
            .unwrap();
        assert_eq!(repo.plans("cam1").await.unwrap()[0].1.replaced, want);
        repo.close().await;
    }

    /// A version-1 database (no listing index) is upgraded in place, and
    /// the listing query then reads the index alone.
    #[tokio::test]
    async fn upgrades_version_1() {
        let path = fresh_db("upgrade");
        {
            // Version 1 was this schema without what UPGRADES adds.
            let repo = Repo::open(&path, false).await.unwrap();
            repo.add_device("cam1", "s", 0).await.unwrap();
            repo.put_segment(&segment("a", 0, Some(10_000), SegmentState::Complete))
                .await
                .unwrap();
            sqlx::raw_sql(
                "DROP INDEX segments_listing; DROP TABLE engine_status;
                 DROP TABLE engine_release_devices; DROP TABLE engine_releases;
                 ALTER TABLE tokens DROP COLUMN admin; ALTER TABLE plans DROP COLUMN replaced_type;
                 ALTER TABLE plans DROP COLUMN replaced_ms;
                 ALTER TABLE segments DROP COLUMN discontinuity; PRAGMA user_version = 1",
            )
            .execute(&repo.pool)
            .await
            .unwrap();
            repo.close().await;
        }
        let repo = Repo::open(&path, false).await.unwrap();
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&repo.pool)
            .await
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(
            repo.segment_entries("cam1", 0, 0, 10_000)
                .await
                .unwrap()
                .len(),
            1
        );
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {SEGMENT_ENTRIES_SQL}"
        )))
        .bind("cam1")
        .bind(0)
        .bind(0)
        .bind(10_000)
        .bind(0)
        .fetch_all(&repo.pool)
        .await
        .unwrap();
        assert!(
            plan.iter()
                .any(|(.., d)| d.contains("USING COVERING INDEX segments_listing")),
            "{plan:?}"
        );
        repo.close().await;
        // A newer database is refused.
        {
            let repo = Repo::open(&path, false).await.unwrap();
            sqlx::raw_sql("PRAGMA user_version = 99")
                .execute(&repo.pool)
                .await
                .unwrap();
            repo.close().await;
        }
        assert!(Repo::open(&path, false).await.is_err());
    }
}
