//! HTTP routes of engine releases ([`crate::releases`]):
//!
//! - Operators (`Authorization: Bearer` with an admin token from
//!   `ivcs cloud token create --admin`): `POST /v1/engine/releases`
//!   (the artifact as the body), `GET /v1/engine/releases`,
//!   `GET /v1/engine/releases/{id}` (with every device's status),
//!   `POST /v1/engine/releases/{id}/withdraw`.
//! - Devices (the capability token of their offer, no request signing):
//!   `GET /v1/device/engine/{id}/artifact`, `POST /v1/device/engine/{id}/report`.
//!
//! Specified in docs/ref/api.md (operators) and docs/ref/protocol.md
//! (devices).

use crate::app::App;
use crate::auth::sha256_hex;
use crate::error::{Error, ErrorKind, Result};
use crate::extract::ApiPath;
use crate::ids;
use crate::metrics::inc;
use crate::model::{EngineStatus, EngineStatusRow, ReleaseRow, Targeting};
use crate::releases;
use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Longest message a device may report, bytes (longer ones are cut).
const MAX_REPORT_MESSAGE: usize = 1024;

/// Routes of engine releases.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/engine/releases", post(publish).get(list))
        .route("/v1/engine/releases/{id}", get(status))
        .route("/v1/engine/releases/{id}/withdraw", post(withdraw))
        .route("/v1/device/engine/{id}/artifact", get(artifact))
        .route("/v1/device/engine/{id}/report", post(report))
}

/// Checks for an admin bearer token.
async fn admin(app: &App, headers: &HeaderMap) -> Result<()> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token {
        Some(t)
            if app
                .repo
                .admin_token_exists(&sha256_hex(t.as_bytes()))
                .await? =>
        {
            Ok(())
        }
        _ => {
            inc(&app.metrics.auth_failures_total);
            Err(Error::unauthorized())
        }
    }
}

fn release_json(r: &ReleaseRow) -> serde_json::Value {
    json!({
        "id": r.id,
        "engine_version": r.engine_version,
        "contract": r.contract,
        "kind": r.kind,
        "target": r.target,
        "key_id": r.key_id,
        "signature_verified": r.signature_verified,
        "sha256": r.sha256,
        "size": r.size,
        "targeting": r.targeting,
        "created_ms": r.created_ms,
        "withdrawn_ms": r.withdrawn_ms,
    })
}

#[derive(Deserialize)]
struct PublishQuery {
    /// Comma-separated device ids.
    devices: Option<String>,
    percent: Option<u32>,
    release: Option<String>,
}

async fn publish(State(app): State<Arc<App>>, req: Request) -> Result<Response> {
    let (parts, body) = req.into_parts();
    admin(&app, &parts.headers).await?;
    let q: PublishQuery = Query::try_from_uri(&parts.uri)
        .map_err(|e| Error::bad_request(format!("query: {e}")))?
        .0;
    let targeting = match (q.devices, q.percent) {
        (Some(d), None) => Targeting::Devices(
            d.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        ),
        (None, Some(p)) => Targeting::Percent(p),
        _ => {
            return Err(Error::bad_request(
                "give exactly one of devices=ID,ID or percent=N",
            ));
        }
    };
    let max = app.cfg.max_engine_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        Error::new(
            ErrorKind::TooLarge,
            format!("the artifact exceeds max_engine_bytes ({max} bytes)"),
        )
    };
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, usize::try_from(max).unwrap_or(usize::MAX))
        .await
        .map_err(|_| too_large())?;
    let (row, targeted) = releases::publish(&app, bytes, targeting, q.release).await?;
    let mut body = release_json(&row);
    body["targeted_devices"] = json!(targeted);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn list(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response> {
    admin(&app, &headers).await?;
    let all: Vec<_> = app
        .repo
        .releases(false)
        .await?
        .iter()
        .map(release_json)
        .collect();
    Ok(Json(json!({ "releases": all })).into_response())
}

async fn status(
    State(app): State<Arc<App>>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response> {
    admin(&app, &headers).await?;
    ids::check("release id", &id)?;
    let r = app
        .repo
        .release(&id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no release {id}")))?;
    let statuses = app.repo.engine_statuses(&id).await?;
    let mut summary: BTreeMap<&str, u64> = BTreeMap::new();
    for s in &statuses {
        *summary.entry(s.status.as_str()).or_default() += 1;
    }
    let mut body = release_json(&r);
    body["targeted_devices"] = json!(releases::targeted_devices(&app, &r).await?.len());
    body["summary"] = json!(summary);
    body["devices"] = json!(statuses);
    Ok(Json(body).into_response())
}

async fn withdraw(
    State(app): State<Arc<App>>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response> {
    admin(&app, &headers).await?;
    let r = releases::withdraw(&app, &id).await?;
    Ok(Json(release_json(&r)).into_response())
}

/// The token of a device URL.
#[derive(Deserialize)]
struct TokenQuery {
    device: String,
    exp: u64,
    sig: String,
}

/// Checks a device URL's token; returns the device id. Every failure is
/// the same 401.
async fn token_device(app: &App, id: &str, uri: &axum::http::Uri) -> Result<String> {
    let fail = || {
        inc(&app.metrics.auth_failures_total);
        Error::unauthorized()
    };
    let Ok(Query(q)) = Query::<TokenQuery>::try_from_uri(uri) else {
        return Err(fail());
    };
    if ids::check("release id", id).is_err()
        || ids::check("device id", &q.device).is_err()
        || !releases::check_token(app, id, &q.device, q.exp, &q.sig)
        || app.repo.device_secret(&q.device).await?.is_none()
    {
        return Err(fail());
    }
    Ok(q.device)
}

async fn artifact(
    State(app): State<Arc<App>>,
    ApiPath(id): ApiPath<String>,
    req: Request,
) -> Result<Response> {
    let device = token_device(&app, &id, req.uri()).await?;
    let r = app
        .repo
        .release(&id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no release {id}")))?;
    if r.withdrawn_ms.is_some() {
        return Err(Error::not_found(format!("release {id} was withdrawn")));
    }
    tracing::info!(release = %id, device, "engine artifact download");
    let stream = app.objects.get_range(&r.object_key, 0..r.size).await?;
    Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, r.size)
        .header("x-ivcs-content-sha256", &r.sha256)
        .body(Body::from_stream(stream))
        .map_err(|e| Error::internal(format!("response: {e}")))
}

#[derive(Deserialize)]
struct ReportBody {
    status: EngineStatus,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default, alias = "reason")]
    message: Option<String>,
}

/// Printable, bounded text from a device.
fn clean(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if out.len() > MAX_REPORT_MESSAGE {
        let mut cut = MAX_REPORT_MESSAGE;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

async fn report(
    State(app): State<Arc<App>>,
    ApiPath(id): ApiPath<String>,
    req: Request,
) -> Result<Response> {
    let (parts, body) = req.into_parts();
    let device = token_device(&app, &id, &parts.uri).await?;
    let limit = usize::try_from(app.cfg.max_json_bytes).unwrap_or(usize::MAX);
    let data = axum::body::to_bytes(body, limit).await.map_err(|_| {
        Error::new(
            ErrorKind::TooLarge,
            format!("the body exceeds {limit} bytes"),
        )
    })?;
    let b: ReportBody = serde_json::from_slice(&data)
        .map_err(|e| Error::bad_request(format!("invalid JSON body: {e}")))?;
    let kind = match (b.status, b.kind.as_deref()) {
        (EngineStatus::Refused, Some(k @ ("malformed" | "untrusted" | "incompatible"))) => {
            Some(k.to_string())
        }
        (EngineStatus::Refused, _) => {
            return Err(Error::bad_request(
                "a refusal needs kind: malformed, untrusted or incompatible",
            ));
        }
        (_, _) => None,
    };
    if app.repo.release(&id).await?.is_none() {
        return Err(Error::not_found(format!("no release {id}")));
    }
    let row = EngineStatusRow {
        device: device.clone(),
        status: b.status,
        kind,
        message: b.message.as_deref().map(clean),
        updated_ms: app.now_ms(),
    };
    app.repo.set_engine_status(&id, &row).await?;
    tracing::info!(
        release = %id,
        device,
        status = row.status.as_str(),
        kind = row.kind.as_deref().unwrap_or(""),
        message = row.message.as_deref().unwrap_or(""),
        "engine release outcome"
    );
    Ok(Json(json!({ "release": id, "device": device, "status": row.status })).into_response())
}
