//! The app API (`/v1/devices/...`) for viewers and apps: devices, days,
//! timeline, events, HLS playlists, MP4 export, segment and picture bytes,
//! playback URLs and AI settings; specified in docs/ref/api.md.
//!
//! Authentication: `Authorization: Bearer <token>` (tokens from
//! `ivcs cloud token create`), or for media URLs a signed `exp`/`sig` query
//! so that a plain `<video>` element or hls.js can fetch without headers.

use crate::app::App;
use crate::auth::sha256_hex;
use crate::error::{Error, ErrorKind, Result};
use crate::export;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::hls;
use crate::ids;
use crate::metrics::inc;
use crate::model::{AiSetting, EventRow, SegmentRow};
use crate::time;
use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::fmt::Write;
use std::sync::Arc;

/// Routes of the app API.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/devices", get(devices))
        .route("/v1/devices/{d}/channels/{c}/days", get(days))
        .route("/v1/devices/{d}/channels/{c}/timeline", get(timeline))
        .route("/v1/devices/{d}/channels/{c}/events", get(events))
        .route("/v1/devices/{d}/channels/{c}/playlist.m3u8", get(playlist))
        .route("/v1/devices/{d}/channels/{c}/export.mp4", get(export_mp4))
        .route(
            "/v1/devices/{d}/channels/{c}/playback-url",
            post(playback_url),
        )
        .route("/v1/devices/{d}/events/{key}", delete(event_delete))
        .route("/v1/devices/{d}/segments/{id}", get(segment_bytes))
        .route("/v1/devices/{d}/pictures/{id}", get(picture_bytes))
        .route("/v1/devices/{d}/ai/{c}/{e}", put(ai_put))
}

/// Checks the bearer token.
async fn bearer(app: &App, headers: &HeaderMap) -> Result<()> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token {
        Some(t) if app.repo.token_exists(&sha256_hex(t.as_bytes())).await? => Ok(()),
        _ => {
            inc(&app.metrics.auth_failures_total);
            Err(Error::unauthorized())
        }
    }
}

/// Accepts a bearer token, or a valid `exp`/`sig` pair signed over the path
/// and the rest of the query.
async fn bearer_or_signed(app: &App, uri: &Uri, headers: &HeaderMap) -> Result<()> {
    let query = uri.query().unwrap_or("");
    let mut exp = None;
    let mut sig = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("exp", v)) => exp = v.parse::<u64>().ok(),
            Some(("sig", v)) => sig = Some(v),
            _ => rest.push(pair),
        }
    }
    if let (Some(exp), Some(sig)) = (exp, sig) {
        if app
            .urls
            .verify(uri.path(), &rest.join("&"), exp, sig, app.now_ms() / 1000)
        {
            return Ok(());
        }
        inc(&app.metrics.auth_failures_total);
        return Err(Error::unauthorized());
    }
    bearer(app, headers).await
}

/// Appends `exp` and `sig` to a path with query `query`.
fn signed(app: &App, path: &str, query: &str, exp_s: u64) -> String {
    let mut out = path.to_string();
    sign_in_place(app, &mut out, 0, query, exp_s);
    out
}

/// Appends `?[query&]exp=..&sig=..` to `out`, whose text from `path_start`
/// is the path to sign. Playlists sign thousands of URLs into one buffer.
fn sign_in_place(app: &App, out: &mut String, path_start: usize, query: &str, exp_s: u64) {
    let sig = app.urls.sig(&out[path_start..], query, exp_s);
    out.push('?');
    if !query.is_empty() {
        out.push_str(query);
        out.push('&');
    }
    // Writing to a String cannot fail.
    let _ = write!(out, "exp={exp_s}&sig={}", sig.as_str());
}

fn device_channel(d: &str, c: u32) -> Result<()> {
    ids::check("device id", d)?;
    ids::check_channel(c)
}

async fn known_device(app: &App, d: &str) -> Result<()> {
    ids::check("device id", d)?;
    if app.repo.device_secret(d).await?.is_none() {
        return Err(Error::not_found(format!("no device {d}")));
    }
    Ok(())
}

async fn devices(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response> {
    bearer(&app, &headers).await?;
    let mut out = Vec::new();
    for (id, created_ms) in app.repo.devices().await? {
        let channels = app.repo.channels(&id).await?;
        let plan = app.plan_view(&id, None).await?;
        out.push(json!({ "id": id, "created_ms": created_ms, "channels": channels, "plans": plan.channels }));
    }
    Ok(Json(json!({ "devices": out })).into_response())
}

#[derive(Deserialize)]
struct DaysQuery {
    /// `YYYY-MM`.
    month: String,
    /// The viewer's IANA time zone (`Europe/Berlin`): days follow its
    /// offsets, daylight saving time included.
    tz: Option<String>,
    /// Or a fixed offset east of UTC, minutes (480 for UTC+8). Neither: UTC.
    tz_offset_min: Option<i64>,
}

async fn days(
    State(app): State<Arc<App>>,
    ApiPath((d, c)): ApiPath<(String, u32)>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<DaysQuery>,
) -> Result<Response> {
    bearer(&app, &headers).await?;
    device_channel(&d, c)?;
    let bad = || Error::bad_request("month must be YYYY-MM, year 1970-9998");
    let (y, m) = q.month.split_once('-').ok_or_else(bad)?;
    let (y, m): (i16, i8) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(1..=12).contains(&m) || !(1970..=9998).contains(&y) {
        return Err(bad());
    }
    let tz = match (&q.tz, q.tz_offset_min) {
        (Some(_), Some(_)) => {
            return Err(Error::bad_request("give tz or tz_offset_min, not both"));
        }
        (Some(name), None) => time::zone_named(name),
        (None, Some(off)) => time::zone_fixed(off),
        (None, None) => Ok(jiff::tz::TimeZone::UTC),
    }
    .map_err(|e| Error::bad_request(e.0))?;
    let starts = time::local_day_starts(y, m, &tz)
        .ok_or_else(|| Error::bad_request("the month has no local days in this time zone"))?;
    // Before 1970 there is no video: those starts clamp to 0.
    let starts: Vec<u64> = starts.iter().map(|&t| t.max(0) as u64).collect();
    // Day i of the list is day i + 1 of the month.
    let days: Vec<String> = app
        .repo
        .days_with_video(&d, c, &starts)
        .await?
        .into_iter()
        .map(|i| format!("{y:04}-{m:02}-{:02}", i + 1))
        .collect();
    Ok(Json(json!({ "month": q.month, "days": days })).into_response())
}

#[derive(Deserialize)]
struct RangeQuery {
    start_ms: u64,
    end_ms: u64,
}

impl RangeQuery {
    /// Longest range a query may cover: 31 days.
    const MAX_MS: u64 = 31 * 86_400_000;

    fn check(&self) -> Result<()> {
        if self.end_ms <= self.start_ms || self.end_ms - self.start_ms > Self::MAX_MS {
            return Err(Error::bad_request(
                "need start_ms < end_ms, at most 31 days apart",
            ));
        }
        Ok(())
    }
}

/// A recorded span: contiguous segments merged.
#[derive(Serialize, Debug, PartialEq, Eq)]
struct Span {
    start_ms: u64,
    end_ms: u64,
    codec: String,
    segments: usize,
}

fn spans(segs: &[SegmentRow]) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    for s in segs {
        let end = s.utc_end_ms.unwrap_or(s.utc_start_ms);
        match out.last_mut() {
            Some(l) if s.utc_start_ms <= l.end_ms + hls::GAP_MS && l.codec == s.codec => {
                l.end_ms = l.end_ms.max(end);
                l.segments += 1;
            }
            _ => out.push(Span {
                start_ms: s.utc_start_ms,
                end_ms: end,
                codec: s.codec.clone(),
                segments: 1,
            }),
        }
    }
    out
}

async fn timeline(
    State(app): State<Arc<App>>,
    ApiPath((d, c)): ApiPath<(String, u32)>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> Result<Response> {
    bearer(&app, &headers).await?;
    device_channel(&d, c)?;
    q.check()?;
    let segs = app.repo.segments_in(&d, c, q.start_ms, q.end_ms).await?;
    let spans = spans(&segs);
    // What has not happened yet is not a gap: gaps end at "now".
    let now = app.now_ms();
    let gaps_end = q.end_ms.min(now);
    let mut gaps = Vec::new();
    let mut t = q.start_ms;
    for s in &spans {
        if s.start_ms > t && t < gaps_end {
            gaps.push(json!({ "start_ms": t, "end_ms": s.start_ms.min(gaps_end) }));
        }
        t = t.max(s.end_ms);
    }
    if t < gaps_end {
        gaps.push(json!({ "start_ms": t, "end_ms": gaps_end }));
    }
    Ok(Json(json!({ "spans": spans, "gaps": gaps, "now_ms": now })).into_response())
}

#[derive(Deserialize)]
struct EventsQuery {
    start_ms: u64,
    end_ms: u64,
    cursor: Option<String>,
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    50
}

#[derive(Serialize)]
struct EventView {
    #[serde(flatten)]
    event: EventRow,
    thumbnail_url: Option<String>,
}

async fn events(
    State(app): State<Arc<App>>,
    ApiPath((d, c)): ApiPath<(String, u32)>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Response> {
    bearer(&app, &headers).await?;
    device_channel(&d, c)?;
    RangeQuery {
        start_ms: q.start_ms,
        end_ms: q.end_ms,
    }
    .check()?;
    let limit = q.limit.clamp(1, 500);
    // Cursor: "<start_ms>.<event_key>" of the last event of the page.
    let after = match &q.cursor {
        Some(cur) => {
            let (t, k) = cur
                .split_once('.')
                .and_then(|(t, k)| Some((t.parse::<u64>().ok()?, k)))
                .ok_or_else(|| Error::bad_request("bad cursor"))?;
            Some((t, k))
        }
        None => None,
    };
    let rows = app
        .repo
        .events_page(&d, c, q.start_ms, q.end_ms, after, limit)
        .await?;
    let next_cursor = (rows.len() == limit as usize)
        .then(|| {
            rows.last()
                .map(|e| format!("{}.{}", e.utc_start_ms, e.event_key))
        })
        .flatten();
    let exp = app.now_ms() / 1000 + app.cfg.playback_url_ttl_s;
    let events: Vec<EventView> = rows
        .into_iter()
        .map(|e| EventView {
            thumbnail_url: e
                .picture_id
                .as_ref()
                .map(|p| signed(&app, &format!("/v1/devices/{d}/pictures/{p}"), "", exp)),
            event: e,
        })
        .collect();
    Ok(Json(json!({ "events": events, "next_cursor": next_cursor })).into_response())
}

async fn event_delete(
    State(app): State<Arc<App>>,
    ApiPath((d, key)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    bearer(&app, &headers).await?;
    ids::check("device id", &d)?;
    ids::check("event key", &key)?;
    if !app.repo.delete_event(&d, &key, app.now_ms()).await? {
        return Err(Error::not_found(format!("no event {key}")));
    }
    app.reap_tombstones().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The checks of a media URL (playlist, export) that a player may fetch
/// with a signed query instead of a header: auth, ids, the range.
async fn media_range(
    app: &App,
    d: &str,
    c: u32,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<RangeQuery> {
    bearer_or_signed(app, uri, headers).await?;
    device_channel(d, c)?;
    Ok(Query::try_from_uri(uri)
        .map_err(|e| Error::bad_request(format!("query: {e}")))?
        .0)
}

async fn playlist(
    State(app): State<Arc<App>>,
    ApiPath((d, c)): ApiPath<(String, u32)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response> {
    let q = media_range(&app, &d, c, &uri, &headers).await?;
    q.check()?;
    let segs = app
        .repo
        .segment_entries(&d, c, q.start_ms, q.end_ms)
        .await?;
    if segs.is_empty() {
        return Err(Error::not_found("no recording in this range"));
    }
    inc(&app.metrics.playlists_total);
    // A player reaches the last segment about the range's length after it
    // loaded the playlist: its URLs live that much longer than the TTL.
    let exp = (app.now_ms() + (q.end_ms - q.start_ms)) / 1000 + app.cfg.playback_url_ttl_s;
    let body = hls::playlist(&segs, |s, out| {
        let start = out.len();
        let _ = write!(out, "/v1/devices/{d}/segments/{}", s.segment_id);
        out.push_str(segment_ext(&s.container));
        sign_in_place(&app, out, start, "", exp);
    });
    Ok((
        [(header::CONTENT_TYPE, "application/vnd.apple.mpegurl")],
        body,
    )
        .into_response())
}

async fn playback_url(
    State(app): State<Arc<App>>,
    ApiPath((d, c)): ApiPath<(String, u32)>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> Result<Response> {
    bearer(&app, &headers).await?;
    device_channel(&d, c)?;
    q.check()?;
    let exp = app.now_ms() / 1000 + app.cfg.playback_url_ttl_s;
    let base = format!("/v1/devices/{d}/channels/{c}");
    let query = format!("start_ms={}&end_ms={}", q.start_ms, q.end_ms);
    let url = signed(&app, &format!("{base}/playlist.m3u8"), &query, exp);
    // Export is limited to a shorter range than playback.
    let export_url = (q.end_ms - q.start_ms <= export::MAX_EXPORT_MS)
        .then(|| signed(&app, &format!("{base}/export.mp4"), &query, exp));
    Ok(Json(json!({ "url": url, "export_url": export_url, "expires_s": exp })).into_response())
}

/// One MP4 file for the range; `Content-Length` is exact, the body is
/// written while it is sent (see [`export`]).
async fn export_mp4(
    State(app): State<Arc<App>>,
    ApiPath((d, c)): ApiPath<(String, u32)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response> {
    // The export checks the range against its own, shorter limit.
    let q = media_range(&app, &d, c, &uri, &headers).await?;
    let ex = export::prepare(&app, &d, c, q.start_ms, q.end_ms).await?;
    let resp = Response::builder()
        .header(header::CONTENT_TYPE, "video/mp4")
        .header(header::CONTENT_LENGTH, ex.total_size())
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{d}-ch{c}-{}.mp4\"", q.start_ms),
        )
        .header("x-ivcs-start-ms", ex.start_ms)
        .header("x-ivcs-end-ms", ex.end_ms);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(ex.stream(app.clone(), tx));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (piece, rx))
    });
    resp.body(Body::from_stream(body))
        .map_err(|e| Error::internal(format!("response: {e}")))
}

/// The URL name of a segment: its id plus the container's extension, which
/// HLS clients (ffmpeg's `allowed_segment_extensions`) require.
fn segment_file(id: &str, container: &str) -> String {
    format!("{id}{}", segment_ext(container))
}

/// `.ts` or `.mp4`.
fn segment_ext(container: &str) -> &'static str {
    if container == "ts" { ".ts" } else { ".mp4" }
}

/// The segment a URL name refers to: the exact id, else the id with a
/// `.ts`/`.mp4` extension removed.
async fn segment_by_file(app: &App, d: &str, file: &str) -> Result<SegmentRow> {
    ids::check("segment id", file)?;
    if let Some(s) = app.repo.segment(d, file).await? {
        return Ok(s);
    }
    let stem = file
        .strip_suffix(".ts")
        .or_else(|| file.strip_suffix(".mp4"));
    if let Some(stem) = stem
        && let Some(s) = app.repo.segment(d, stem).await?
        && segment_file(&s.segment_id, &s.container) == file
    {
        return Ok(s);
    }
    Err(Error::not_found(format!("no segment {file}")))
}

/// Parses `bytes=a-b` / `bytes=a-` against an object of `size` bytes.
fn parse_range(h: &str, size: u64) -> Option<(u64, u64)> {
    let spec = h.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        (size.checked_sub(n.min(size))?, size)
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() {
            size
        } else {
            b.parse::<u64>().ok()?.saturating_add(1).min(size)
        };
        (start, end)
    };
    (start < end).then_some((start, end))
}

async fn segment_bytes(
    State(app): State<Arc<App>>,
    ApiPath((d, id)): ApiPath<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response> {
    bearer_or_signed(&app, &uri, &headers).await?;
    ids::check("device id", &d)?;
    let s = segment_by_file(&app, &d, &id).await?;
    let mime = if s.container == "ts" {
        "video/mp2t"
    } else {
        "video/mp4"
    };
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (start, end, status) = match range {
        Some(r) => match parse_range(r, s.bytes) {
            Some((a, b)) => (a, b, StatusCode::PARTIAL_CONTENT),
            None => {
                return Ok((
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{}", s.bytes))],
                )
                    .into_response());
            }
        },
        None => (0, s.bytes, StatusCode::OK),
    };
    let stream = app.objects.get_range(&s.object_key, start..end).await?;
    let mut resp = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, mime)
        .header(header::CONTENT_LENGTH, end - start)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "private, max-age=86400");
    if status == StatusCode::PARTIAL_CONTENT {
        resp = resp.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{}", end - 1, s.bytes),
        );
    }
    resp.body(Body::from_stream(stream))
        .map_err(|e| Error::internal(format!("response: {e}")))
}

async fn picture_bytes(
    State(app): State<Arc<App>>,
    ApiPath((d, id)): ApiPath<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response> {
    bearer_or_signed(&app, &uri, &headers).await?;
    ids::check("device id", &d)?;
    ids::check("picture id", &id)?;
    let Some(p) = app.repo.picture(&d, &id).await? else {
        return Err(Error::not_found(format!("no picture {id}")));
    };
    let data = app.objects.get_bytes(&p.object_key).await?;
    Ok(([(header::CONTENT_TYPE, p.mime)], data).into_response())
}

#[derive(Deserialize)]
struct AiBody {
    ai_type: u32,
}

async fn ai_put(
    State(app): State<Arc<App>>,
    ApiPath((d, c, e)): ApiPath<(String, u32, u32)>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<AiBody>,
) -> Result<Response> {
    bearer(&app, &headers).await?;
    known_device(&app, &d).await?;
    ids::check_channel(c)?;
    if !(1..=32).contains(&e) {
        return Err(Error::new(ErrorKind::BadRequest, "event id must be 1-32"));
    }
    // The app sets the type; the arguments are the device's to set, kept.
    let args = app
        .repo
        .ai_settings(&d)
        .await?
        .into_iter()
        .find(|s| s.channel == c && s.event_id == e)
        .map(|s| s.args)
        .unwrap_or_default();
    let a = AiSetting {
        channel: c,
        event_id: e,
        ai_type: b.ai_type,
        args,
    };
    app.repo.set_ai(&d, &a, app.now_ms()).await?;
    let revision = app.changed(&d).await?;
    Ok(Json(json!({ "setting": a, "revision": revision })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Some((0, 100)));
        assert_eq!(parse_range("bytes=900-", 1000), Some((900, 1000)));
        assert_eq!(parse_range("bytes=-100", 1000), Some((900, 1000)));
        assert_eq!(parse_range("bytes=0-5000", 1000), Some((0, 1000)));
        assert_eq!(parse_range("bytes=1000-", 1000), None);
        assert_eq!(parse_range("items=0-1", 1000), None);
    }
}
