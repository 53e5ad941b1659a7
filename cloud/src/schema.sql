-- ivcs cloud metadata, schema version 5 (PRAGMA user_version; SCHEMA_VERSION in
-- repo.rs). Documented table by table and column by column, with indexes and
-- versioning, in docs/design/schema.md. Times are ms since 1970-01-01 UTC; sizes
-- are bytes; plans.channel -1 is the device default. Objects are written before
-- their rows; a non-NULL deleted_ms hides a row whose object is queued in
-- tombstones.

CREATE TABLE devices (
    id          TEXT PRIMARY KEY,
    secret      TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    revision    INTEGER NOT NULL
);
CREATE INDEX devices_revision ON devices(revision);

CREATE TABLE plans (
    device_id        TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    channel          INTEGER NOT NULL,
    type             TEXT NOT NULL CHECK (type IN ('none', 'full-time', 'event', 'trial')),
    days             INTEGER NOT NULL,
    trial_ms         INTEGER NOT NULL,
    trial_used_ms    INTEGER NOT NULL,
    expires_ms       INTEGER,
    updated_ms       INTEGER NOT NULL,
    replaced_type    TEXT CHECK (replaced_type IN ('none', 'full-time', 'event', 'trial')),
    replaced_ms      INTEGER,
    PRIMARY KEY (device_id, channel)
);

CREATE TABLE segments (
    device_id     TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    segment_id    TEXT NOT NULL,
    channel       INTEGER NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('partial', 'received', 'complete')),
    container     TEXT NOT NULL CHECK (container IN ('ts', 'fmp4')),
    codec         TEXT NOT NULL,
    event         INTEGER NOT NULL,
    backup        INTEGER NOT NULL,
    discontinuity INTEGER NOT NULL DEFAULT 0,
    utc_start_ms  INTEGER NOT NULL,
    utc_end_ms    INTEGER,
    pts_start_ms  INTEGER NOT NULL,
    pts_end_ms    INTEGER,
    seq_start     INTEGER NOT NULL,
    seq_end       INTEGER,
    bytes         INTEGER NOT NULL,
    init_bytes    INTEGER NOT NULL,
    video_frames  INTEGER,
    audio_frames  INTEGER,
    sha256        TEXT NOT NULL,
    object_key    TEXT NOT NULL,
    uploaded_ms   INTEGER NOT NULL,
    deleted_ms    INTEGER,
    PRIMARY KEY (device_id, segment_id)
);
CREATE INDEX segments_time ON segments(device_id, channel, utc_start_ms);
-- Listings of complete segments (playlists): every column they read or
-- test, so a day of 8,640 segments is read from this index alone, never the
-- table (state and deleted_ms too: SQLite does not infer them from the
-- partial index's WHERE). Added in version 2, discontinuity in 5 (repo.rs
-- UPGRADES).
CREATE INDEX segments_listing ON segments(device_id, channel, utc_start_ms, utc_end_ms,
    segment_id, container, codec, bytes, init_bytes, discontinuity, state, deleted_ms)
    WHERE state = 'complete' AND deleted_ms IS NULL;

CREATE TABLE events (
    device_id     TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    event_key     TEXT NOT NULL,
    channel       INTEGER NOT NULL,
    event_id      INTEGER NOT NULL CHECK (event_id BETWEEN 1 AND 32),
    info          TEXT NOT NULL,
    report_opt    TEXT NOT NULL CHECK (report_opt IN ('video', 'picture', 'either')),
    utc_start_ms  INTEGER NOT NULL,
    utc_end_ms    INTEGER,
    status        TEXT NOT NULL CHECK (status IN ('open', 'finished', 'partial', 'failed')),
    picture_id    TEXT,
    created_ms    INTEGER NOT NULL,
    deleted_ms    INTEGER,
    PRIMARY KEY (device_id, event_key)
);
CREATE INDEX events_time ON events(device_id, channel, utc_start_ms);

CREATE TABLE pictures (
    device_id    TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    picture_id   TEXT NOT NULL,
    channel      INTEGER NOT NULL,
    utc_ms       INTEGER NOT NULL,
    event_key    TEXT,
    mime         TEXT NOT NULL,
    bytes        INTEGER NOT NULL,
    object_key   TEXT NOT NULL,
    uploaded_ms  INTEGER NOT NULL,
    deleted_ms   INTEGER,
    PRIMARY KEY (device_id, picture_id)
);

CREATE TABLE ai_settings (
    device_id   TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    channel     INTEGER NOT NULL,
    event_id    INTEGER NOT NULL,
    ai_type     INTEGER NOT NULL,
    args        BLOB NOT NULL,
    updated_ms  INTEGER NOT NULL,
    PRIMARY KEY (device_id, channel, event_id)
);

CREATE TABLE tokens (
    token_sha256  TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    -- 1: may also publish and withdraw engine releases. Added in version 3.
    admin         INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE tombstones (
    object_key  TEXT PRIMARY KEY,
    created_ms  INTEGER NOT NULL
);

CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

-- Engine releases (docs/design/hot-swap.md, "Delivery"), added in version 3:
-- one row per published artifact (bytes at object_key = engines/<sha256>,
-- shared by releases of the same file); percent NULL means the explicit list
-- in engine_release_devices; engine_status holds each device's last reported
-- outcome per release.
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
CREATE INDEX engine_status_device ON engine_status(device_id);
