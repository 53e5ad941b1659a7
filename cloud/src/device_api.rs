//! The device API (`/v1/device/...`), the other side of the engine's
//! uploads; specified in docs/ref/protocol.md. Every request is signed by
//! the device (see `auth`); the device id comes from the verified request
//! only, so a device can reach nothing but its own data.

use crate::app::{App, PlanView};
use crate::auth::{
    self, H_CONTENT_SHA256, H_DEVICE, H_NONCE, H_TIMESTAMP, STREAMING, SignedRequest,
};
use crate::error::{Error, ErrorKind, Result};
use crate::extract::ApiPath;
use crate::ids;
use crate::metrics::{add, inc};
use crate::model::{
    AiSetting, EventRow, EventStatus, MAX_SEGMENT_MS, PictureRow, PlanType, ReportOpt, SegmentRow,
    SegmentState, plan_for,
};
use crate::objects;
use axum::Json;
use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Routes of the device API.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/device/plan", get(plan))
        .route("/v1/device/changes", get(changes))
        .route("/v1/device/segments/{id}", put(segment_put))
        .route("/v1/device/segments/{id}/commit", post(segment_commit))
        .route("/v1/device/events/{key}", put(event_start))
        .route("/v1/device/events/{key}/stop", post(event_stop))
        .route("/v1/device/events/{key}/report", post(event_report))
        .route("/v1/device/pictures/{id}", put(picture_put))
        .route(
            "/v1/device/ai/{channel}/{event_id}",
            put(ai_put).get(ai_get),
        )
        .route("/v1/device/resources", axum::routing::delete(destroy))
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Verifies the signature of a request whose body digest is `claimed`
/// (the header value, already checked against the body or to be checked
/// after streaming). Returns the device id.
async fn verify(app: &App, parts: &Parts) -> Result<String> {
    let h = &parts.headers;
    let unauthorized = || {
        inc(&app.metrics.auth_failures_total);
        Error::unauthorized()
    };
    let (Some(device), Some(ts), Some(nonce), Some(digest), Some(authz)) = (
        header_str(h, H_DEVICE),
        header_str(h, H_TIMESTAMP).and_then(|t| t.parse::<u64>().ok()),
        header_str(h, H_NONCE),
        header_str(h, H_CONTENT_SHA256),
        header_str(h, header::AUTHORIZATION.as_str()),
    ) else {
        return Err(unauthorized());
    };
    if ids::check("device id", device).is_err() {
        return Err(unauthorized());
    }
    let Some(secret) = app.repo.device_secret(device).await? else {
        return Err(unauthorized());
    };
    let req = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        device,
        timestamp: ts,
        nonce,
        content_sha256: digest,
    };
    app.device_auth
        .verify(&req, authz, &secret, app.now_ms() / 1000)
        .map_err(|_| unauthorized())?;
    Ok(device.to_string())
}

/// Reads a small body (capped at the JSON limit), checks its digest and
/// the signature.
async fn verified_body(app: &App, req: Request) -> Result<(String, Parts, bytes::Bytes)> {
    verified_body_max(app, req, app.cfg.max_json_bytes).await
}

/// [`verified_body`] with a cap of `max` bytes.
async fn verified_body_max(
    app: &App,
    req: Request,
    max: u64,
) -> Result<(String, Parts, bytes::Bytes)> {
    let (parts, body) = req.into_parts();
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let data = axum::body::to_bytes(body, limit).await.map_err(|_| {
        Error::new(
            ErrorKind::TooLarge,
            format!("the body exceeds {limit} bytes"),
        )
    })?;
    let device = verify(app, &parts).await?;
    if header_str(&parts.headers, H_CONTENT_SHA256) != Some(auth::sha256_hex(&data).as_str()) {
        inc(&app.metrics.auth_failures_total);
        return Err(Error::unauthorized());
    }
    Ok((device, parts, data))
}

/// A verified request with a JSON body.
async fn verified_json<T: DeserializeOwned>(app: &App, req: Request) -> Result<(String, T)> {
    let (device, _, data) = verified_body(app, req).await?;
    let v = serde_json::from_slice(&data)
        .map_err(|e| Error::bad_request(format!("invalid JSON body: {e}")))?;
    Ok((device, v))
}

/// The device's plan view with its engine offer, if any.
async fn device_view(app: &App, device: &str, since: Option<u64>) -> Result<PlanView> {
    let mut view = app.plan_view(device, since).await?;
    view.engine = crate::releases::offer_for(app, device).await?;
    Ok(view)
}

async fn plan(State(app): State<Arc<App>>, req: Request) -> Result<Json<PlanView>> {
    let (device, _, _) = verified_body(&app, req).await?;
    Ok(Json(device_view(&app, &device, None).await?))
}

#[derive(Deserialize)]
struct ChangesQuery {
    since: u64,
    #[serde(default = "default_wait")]
    wait_s: u64,
}

fn default_wait() -> u64 {
    25
}

/// The change feed: answers once the device's revision passes `since`, or
/// after `wait_s` (capped by `change_wait_max_s`, below common proxy idle
/// timeouts).
async fn changes(State(app): State<Arc<App>>, req: Request) -> Result<Json<PlanView>> {
    let (device, parts, _) = verified_body(&app, req).await?;
    let q: ChangesQuery = Query::try_from_uri(&parts.uri)
        .map_err(|e| Error::bad_request(format!("query: {e}")))?
        .0;
    let current = app.repo.revision(&device).await?;
    let wait = Duration::from_secs(q.wait_s.min(app.cfg.change_wait_max_s));
    app.feed.wait(&device, current, q.since, wait).await;
    Ok(Json(device_view(&app, &device, Some(q.since)).await?))
}

/// Query of a segment upload: what is known when it starts, and optionally
/// (one-shot and backup uploads) what is known at its end.
#[derive(Deserialize)]
struct SegmentQuery {
    channel: u32,
    container: String,
    codec: String,
    utc_start_ms: u64,
    pts_start_ms: u64,
    seq_start: u32,
    #[serde(default)]
    init_bytes: u32,
    #[serde(default)]
    event: u8,
    #[serde(default)]
    backup: u8,
    #[serde(default)]
    discontinuity: u8,
    // Not `#[serde(flatten)]`: flattening makes query numbers strings.
    utc_end_ms: Option<u64>,
    pts_end_ms: Option<u64>,
    seq_end: Option<u32>,
    video_frames: Option<u32>,
    audio_frames: Option<u32>,
}

impl SegmentQuery {
    fn end(&self) -> SegmentEnd {
        SegmentEnd {
            utc_end_ms: self.utc_end_ms,
            pts_end_ms: self.pts_end_ms,
            seq_end: self.seq_end,
            video_frames: self.video_frames,
            audio_frames: self.audio_frames,
        }
    }
}

/// What is known at the end of a segment.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct SegmentEnd {
    utc_end_ms: Option<u64>,
    pts_end_ms: Option<u64>,
    seq_end: Option<u32>,
    video_frames: Option<u32>,
    audio_frames: Option<u32>,
}

impl SegmentEnd {
    fn complete(&self) -> bool {
        self.utc_end_ms.is_some() && self.pts_end_ms.is_some() && self.seq_end.is_some()
    }

    fn apply(&self, s: &mut SegmentRow) -> Result<()> {
        let (Some(utc_end), Some(pts_end), Some(seq_end)) =
            (self.utc_end_ms, self.pts_end_ms, self.seq_end)
        else {
            return Err(Error::bad_request(
                "utc_end_ms, pts_end_ms and seq_end are required",
            ));
        };
        if utc_end < s.utc_start_ms || utc_end - s.utc_start_ms > MAX_SEGMENT_MS {
            return Err(Error::bad_request(format!(
                "utc_end_ms must be within {MAX_SEGMENT_MS} ms after utc_start_ms"
            )));
        }
        if pts_end < s.pts_start_ms || seq_end < s.seq_start {
            return Err(Error::bad_request(
                "pts_end_ms and seq_end must not precede the start",
            ));
        }
        s.utc_end_ms = Some(utc_end);
        s.pts_end_ms = Some(pts_end);
        s.seq_end = Some(seq_end);
        s.video_frames = self.video_frames;
        s.audio_frames = self.audio_frames;
        Ok(())
    }
}

fn check_codec(codec: &str) -> Result<()> {
    if codec.is_empty()
        || codec.len() > 64
        || !codec
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.')
    {
        return Err(Error::bad_request("codec must be an RFC 6381 codec string"));
    }
    Ok(())
}

/// Whether the channel's plan lets this segment in.
/// Whether the plan lets a segment of `channel` that started at `start_ms`
/// (device clock) be stored now ([`Plan::for_segment`]: video in flight
/// when the plan ended is still taken, up to the backup window later).
async fn check_plan(
    app: &App,
    device: &str,
    channel: u32,
    event: bool,
    start_ms: u64,
) -> Result<()> {
    let rows = app.repo.plans(device).await?;
    let now = app.now_ms();
    let Some(p) = plan_for(&rows, channel) else {
        return Err(Error::new(
            ErrorKind::NoService,
            "the channel has no cloud storage plan",
        ));
    };
    match p.for_segment(now, start_ms, app.cfg.backup_window_s * 1000) {
        PlanType::None => Err(Error::new(
            ErrorKind::NoService,
            "the channel has no cloud storage plan",
        )),
        PlanType::FullTime => Ok(()),
        PlanType::Event | PlanType::Trial if !event => Err(Error::new(
            ErrorKind::NoService,
            "the channel's plan records events only",
        )),
        PlanType::Trial if p.trial_left_ms() == 0 => Err(Error::new(
            ErrorKind::NoBalance,
            "the trial time is used up",
        )),
        PlanType::Event | PlanType::Trial => Ok(()),
    }
}

#[derive(Serialize)]
struct SegmentAnswer {
    segment_id: String,
    state: SegmentState,
    bytes: u64,
    sha256: String,
    duplicate: bool,
}

impl SegmentAnswer {
    fn of(s: &SegmentRow, duplicate: bool) -> Self {
        SegmentAnswer {
            segment_id: s.segment_id.clone(),
            state: s.state,
            bytes: s.bytes,
            sha256: s.sha256.clone(),
            duplicate,
        }
    }
}

async fn segment_put(
    State(app): State<Arc<App>>,
    ApiPath(id): ApiPath<String>,
    req: Request,
) -> Result<Response> {
    let (parts, body) = req.into_parts();
    let device = verify(&app, &parts).await?;
    ids::check("segment id", &id)?;
    let q: SegmentQuery = Query::try_from_uri(&parts.uri)
        .map_err(|e| Error::bad_request(format!("query: {e}")))?
        .0;
    ids::check_channel(q.channel)?;
    if q.container != "ts" && q.container != "fmp4" {
        return Err(Error::bad_request("container must be ts or fmp4"));
    }
    check_codec(&q.codec)?;
    let claimed = header_str(&parts.headers, H_CONTENT_SHA256)
        .unwrap_or(STREAMING)
        .to_string();
    let one_shot = claimed != STREAMING;
    if one_shot && (claimed.len() != 64 || !claimed.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(Error::bad_request(
            "x-ivcs-content-sha256 must be 64 hex digits or STREAMING",
        ));
    }
    let backup = q.backup != 0;
    let end = q.end();
    let now = app.now_ms();
    if backup {
        if !one_shot || !end.complete() {
            return Err(Error::bad_request(
                "a backup upload carries its digest and its end (utc_end_ms, pts_end_ms, seq_end)",
            ));
        }
        let end_ms = end.utc_end_ms.unwrap_or(0);
        if now > end_ms.saturating_add(app.cfg.backup_window_s * 1000) {
            inc(&app.metrics.backups_refused_late_total);
            return Err(Error::new(
                ErrorKind::Gone,
                format!(
                    "the backup window of {} s after the segment's end has closed",
                    app.cfg.backup_window_s
                ),
            ));
        }
    }
    if let Some(old) = app.repo.segment(&device, &id).await?
        && old.state == SegmentState::Complete
    {
        // Idempotent: the bytes are already stored; the body is not read.
        return Ok((StatusCode::OK, Json(SegmentAnswer::of(&old, true))).into_response());
    }
    check_plan(&app, &device, q.channel, q.event != 0, q.utc_start_ms).await?;
    let declared = header_str(&parts.headers, header::CONTENT_LENGTH.as_str())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > app.cfg.max_segment_bytes) {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!("the body exceeds {} bytes", app.cfg.max_segment_bytes),
        ));
    }
    if let Err(e) = app.objects.check_space(declared.unwrap_or(0)) {
        inc(&app.metrics.uploads_refused_disk_full_total);
        return Err(e);
    }
    let mut row = SegmentRow {
        device_id: device.clone(),
        segment_id: id.clone(),
        channel: q.channel,
        state: SegmentState::Partial,
        container: q.container,
        codec: q.codec,
        event: q.event != 0,
        backup,
        discontinuity: q.discontinuity != 0,
        utc_start_ms: q.utc_start_ms,
        utc_end_ms: None,
        pts_start_ms: q.pts_start_ms,
        pts_end_ms: None,
        seq_start: q.seq_start,
        seq_end: None,
        bytes: 0,
        init_bytes: q.init_bytes,
        video_frames: None,
        audio_frames: None,
        sha256: String::new(),
        object_key: objects::segment_key(&device, &id),
        uploaded_ms: now,
    };
    if end.complete() {
        end.apply(&mut row)?;
    }
    inc(&app.metrics.segment_uploads_total);
    let stored = match app
        .objects
        .put_stream(
            &row.object_key,
            body.into_data_stream(),
            app.cfg.max_segment_bytes,
        )
        .await
    {
        Ok(s) => s,
        Err(e) => {
            if e.kind() == ErrorKind::InsufficientStorage {
                inc(&app.metrics.uploads_refused_disk_full_total);
            }
            return Err(e);
        }
    };
    add(&app.metrics.segment_upload_bytes_total, stored.bytes);
    row.bytes = stored.bytes;
    row.sha256 = stored.sha256.clone();
    let digest_ok = !one_shot || stored.sha256 == claimed;
    row.state = if stored.truncated || !digest_ok || stored.bytes == 0 {
        inc(&app.metrics.segments_partial_total);
        SegmentState::Partial
    } else if one_shot && end.complete() {
        SegmentState::Complete
    } else {
        SegmentState::Received
    };
    // Object first, then the row: a crash in between leaves an object
    // without a row, never a row without its object.
    app.repo.put_segment(&row).await?;
    if row.state == SegmentState::Complete {
        completed(&app, &row).await?;
    }
    if !digest_ok {
        return Err(Error::new(
            ErrorKind::Conflict,
            "the body does not match x-ivcs-content-sha256; stored as partial",
        ));
    }
    let status = if row.state == SegmentState::Complete {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(SegmentAnswer::of(&row, false))).into_response())
}

/// After a segment completes: trial debit and late event status updates.
async fn completed(app: &App, s: &SegmentRow) -> Result<()> {
    inc(&app.metrics.segments_complete_total);
    let end = s.utc_end_ms.unwrap_or(s.utc_start_ms);
    if s.event {
        let rows = app.repo.plans(&s.device_id).await?;
        if plan_for(&rows, s.channel).is_some_and(|p| p.kind == PlanType::Trial) {
            app.repo
                .debit_trial(&s.device_id, s.channel, end - s.utc_start_ms)
                .await?;
            app.changed(&s.device_id).await?;
        }
    }
    for e in app
        .repo
        .ended_events_overlapping(&s.device_id, s.channel, s.utc_start_ms, end)
        .await?
    {
        app.refresh_event_status(&e).await?;
    }
    Ok(())
}

#[derive(Deserialize)]
struct CommitBody {
    sha256: String,
    bytes: u64,
    #[serde(flatten)]
    end: SegmentEnd,
}

async fn segment_commit(
    State(app): State<Arc<App>>,
    ApiPath(id): ApiPath<String>,
    req: Request,
) -> Result<Response> {
    let (device, c): (String, CommitBody) = verified_json(&app, req).await?;
    ids::check("segment id", &id)?;
    let Some(mut row) = app.repo.segment(&device, &id).await? else {
        return Err(Error::not_found(format!("no segment {id}")));
    };
    match row.state {
        SegmentState::Complete if row.sha256 == c.sha256 => {
            return Ok(Json(SegmentAnswer::of(&row, true)).into_response());
        }
        SegmentState::Partial => {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "segment {id} is partial ({} bytes arrived); upload it again",
                    row.bytes
                ),
            ));
        }
        _ if row.sha256 != c.sha256 || row.bytes != c.bytes => {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "digest mismatch: stored {} bytes with sha256 {}",
                    row.bytes, row.sha256
                ),
            ));
        }
        _ => {}
    }
    c.end.apply(&mut row)?;
    row.state = SegmentState::Complete;
    app.repo.put_segment(&row).await?;
    completed(&app, &row).await?;
    Ok(Json(SegmentAnswer::of(&row, false)).into_response())
}

/// Free text of events: printable ASCII, at most 128 bytes.
fn check_info(info: &str) -> Result<()> {
    if info.len() > 128 || !info.bytes().all(|b| (0x20..=0x7E).contains(&b)) {
        return Err(Error::bad_request(
            "info must be at most 128 bytes of printable ASCII",
        ));
    }
    Ok(())
}

fn check_event_id(id: u32) -> Result<()> {
    if (1..=32).contains(&id) {
        Ok(())
    } else {
        Err(Error::bad_request("event_id must be 1-32"))
    }
}

/// What a device says about an event when it starts or reports it.
#[derive(Deserialize)]
struct EventFields {
    channel: u32,
    event_id: u32,
    #[serde(default)]
    info: String,
    report_opt: ReportOpt,
}

/// A checked new event row: started (`end` none, status open) or, for a
/// direct report, a point event whose status is computed after insertion.
fn new_event(
    app: &App,
    device: String,
    key: String,
    f: EventFields,
    start_ms: u64,
    end_ms: Option<u64>,
) -> Result<EventRow> {
    ids::check("event key", &key)?;
    ids::check_channel(f.channel)?;
    check_event_id(f.event_id)?;
    check_info(&f.info)?;
    Ok(EventRow {
        device_id: device,
        event_key: key,
        channel: f.channel,
        event_id: f.event_id,
        info: f.info,
        report_opt: f.report_opt,
        utc_start_ms: start_ms,
        utc_end_ms: end_ms,
        status: if end_ms.is_some() {
            EventStatus::Failed
        } else {
            EventStatus::Open
        },
        picture_id: None,
        created_ms: app.now_ms(),
    })
}

#[derive(Deserialize)]
struct EventStart {
    #[serde(flatten)]
    fields: EventFields,
    utc_start_ms: u64,
}

async fn event_start(
    State(app): State<Arc<App>>,
    ApiPath(key): ApiPath<String>,
    req: Request,
) -> Result<Response> {
    let (device, b): (String, EventStart) = verified_json(&app, req).await?;
    let row = new_event(&app, device, key.clone(), b.fields, b.utc_start_ms, None)?;
    let created = app.repo.insert_event(&row).await?;
    if created {
        inc(&app.metrics.events_total);
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({ "event_key": key, "created": created })),
    )
        .into_response())
}

#[derive(Deserialize)]
struct EventStop {
    utc_end_ms: u64,
}

async fn event_stop(
    State(app): State<Arc<App>>,
    ApiPath(key): ApiPath<String>,
    req: Request,
) -> Result<Response> {
    let (device, b): (String, EventStop) = verified_json(&app, req).await?;
    ids::check("event key", &key)?;
    let Some(mut e) = app.repo.event(&device, &key).await? else {
        return Err(Error::not_found(format!("no event {key}")));
    };
    if b.utc_end_ms < e.utc_start_ms {
        return Err(Error::bad_request("utc_end_ms precedes the event's start"));
    }
    if e.utc_end_ms.is_none() {
        app.repo.end_event(&device, &key, b.utc_end_ms).await?;
        e.utc_end_ms = Some(b.utc_end_ms);
    }
    let status = app.refresh_event_status(&e).await?;
    Ok(Json(json!({ "event_key": key, "status": status })).into_response())
}

#[derive(Deserialize)]
struct EventReport {
    #[serde(flatten)]
    fields: EventFields,
    utc_ms: u64,
}

async fn event_report(
    State(app): State<Arc<App>>,
    ApiPath(key): ApiPath<String>,
    req: Request,
) -> Result<Response> {
    let (device, b): (String, EventReport) = verified_json(&app, req).await?;
    let row = new_event(
        &app,
        device.clone(),
        key.clone(),
        b.fields,
        b.utc_ms,
        Some(b.utc_ms),
    )?;
    if app.repo.insert_event(&row).await? {
        inc(&app.metrics.events_total);
    }
    let e = app
        .repo
        .event(&device, &key)
        .await?
        .ok_or_else(|| Error::internal("event vanished"))?;
    let status = app.refresh_event_status(&e).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "event_key": key, "status": status })),
    )
        .into_response())
}

#[derive(Deserialize)]
struct PictureQuery {
    channel: u32,
    utc_ms: u64,
    event_key: Option<String>,
}

/// The picture's type from its magic bytes.
fn picture_mime(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else {
        None
    }
}

async fn picture_put(
    State(app): State<Arc<App>>,
    ApiPath(id): ApiPath<String>,
    req: Request,
) -> Result<Response> {
    let (device, parts, data) = verified_body_max(&app, req, app.cfg.max_picture_bytes).await?;
    ids::check("picture id", &id)?;
    let q: PictureQuery = Query::try_from_uri(&parts.uri)
        .map_err(|e| Error::bad_request(format!("query: {e}")))?
        .0;
    ids::check_channel(q.channel)?;
    let Some(mime) = picture_mime(&data) else {
        return Err(Error::new(
            ErrorKind::UnsupportedMedia,
            "a picture must be JPEG or PNG",
        ));
    };
    let event = match &q.event_key {
        Some(k) => {
            ids::check("event key", k)?;
            Some(
                app.repo
                    .event(&device, k)
                    .await?
                    .ok_or_else(|| Error::not_found(format!("no event {k}")))?,
            )
        }
        None => None,
    };
    if let Err(e) = app.objects.check_space(data.len() as u64) {
        inc(&app.metrics.uploads_refused_disk_full_total);
        return Err(e);
    }
    let row = PictureRow {
        device_id: device.clone(),
        picture_id: id.clone(),
        channel: q.channel,
        utc_ms: q.utc_ms,
        event_key: q.event_key.clone(),
        mime: mime.to_string(),
        bytes: data.len() as u64,
        object_key: objects::picture_key(&device, &id),
        uploaded_ms: app.now_ms(),
    };
    app.objects.put(&row.object_key, data).await?;
    app.repo.put_picture(&row).await?;
    inc(&app.metrics.pictures_total);
    if let Some(mut e) = event {
        app.repo
            .set_event_picture(&device, &e.event_key, &id)
            .await?;
        e.picture_id = Some(id.clone());
        app.refresh_event_status(&e).await?;
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({ "picture_id": id, "mime": mime })),
    )
        .into_response())
}

#[derive(Deserialize)]
struct AiBody {
    ai_type: u32,
    #[serde(default)]
    args: String,
}

/// Largest AI argument blob, bytes.
const MAX_AI_ARGS: usize = 1024;

fn ai_setting(channel: u32, event_id: u32, b: AiBody) -> Result<AiSetting> {
    use base64::Engine;
    ids::check_channel(channel)?;
    check_event_id(event_id)?;
    let args = base64::engine::general_purpose::STANDARD
        .decode(&b.args)
        .map_err(|_| Error::bad_request("args must be base64"))?;
    if args.len() > MAX_AI_ARGS {
        return Err(Error::bad_request(format!(
            "args must be at most {MAX_AI_ARGS} bytes"
        )));
    }
    Ok(AiSetting {
        channel,
        event_id,
        ai_type: b.ai_type,
        args,
    })
}

async fn ai_put(
    State(app): State<Arc<App>>,
    ApiPath((channel, event_id)): ApiPath<(u32, u32)>,
    req: Request,
) -> Result<Response> {
    let (device, b): (String, AiBody) = verified_json(&app, req).await?;
    let a = ai_setting(channel, event_id, b)?;
    app.repo.set_ai(&device, &a, app.now_ms()).await?;
    let revision = app.changed(&device).await?;
    Ok(Json(json!({ "setting": a, "revision": revision })).into_response())
}

async fn ai_get(
    State(app): State<Arc<App>>,
    ApiPath((channel, event_id)): ApiPath<(u32, u32)>,
    req: Request,
) -> Result<Response> {
    let (device, _, _) = verified_body(&app, req).await?;
    ids::check_channel(channel)?;
    check_event_id(event_id)?;
    let found = app
        .repo
        .ai_settings(&device)
        .await?
        .into_iter()
        .find(|a| a.channel == channel && a.event_id == event_id);
    // An unset pair reads as closed (CS_AI_TYPE_CLOSE).
    let a = found.unwrap_or(AiSetting {
        channel,
        event_id,
        ai_type: 0,
        args: Vec::new(),
    });
    Ok(Json(json!({ "setting": a })).into_response())
}

async fn destroy(State(app): State<Arc<App>>, req: Request) -> Result<Response> {
    let (device, _, _) = verified_body(&app, req).await?;
    let n = app.destroy_device_data(&device, false).await?;
    tracing::info!(device, objects = n, "device resources destroyed");
    Ok(Json(json!({ "deleted_objects": n })).into_response())
}
