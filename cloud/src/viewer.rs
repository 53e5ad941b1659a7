//! The web viewer's static files: `GET /` answers `index.html` and
//! `GET /viewer/{path}` the other assets, read from the directory
//! `viewer_dir` (docs/design/viewer.md says why a directory and not an
//! embedded copy). They need no authentication: they hold no data, and the
//! viewer's own API calls carry the app token.
//!
//! Every file gets its content type from its extension, a validator
//! (`ETag` from size and modification time, `If-None-Match` answers 304)
//! and `Cache-Control: no-cache`: the file names carry no content hash, so a
//! browser must revalidate, or it would run an old `app.js` after an
//! upgrade. A missing directory answers 503 with a message that says how to
//! install it, rather than a 404 that looks like a typo in the URL.
//!
//! The build stores a gzip copy next to each text file (`app.js.gz`); a
//! client that accepts gzip gets that copy (`Content-Encoding: gzip`), so
//! hls.js travels as ~150 KB instead of ~500 KB without compressing on
//! every request.

use crate::app::App;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::path::{Component, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

/// Routes of the viewer's files.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(index))
        .route("/viewer/{*path}", get(asset))
}

/// Content-Security-Policy of `index.html`: everything from this origin,
/// media and downloads from `blob:` (MSE and the export's blob download),
/// hls.js's transmuxer worker from this origin. The token lives in
/// localStorage, so no inline or foreign script may run.
const CSP: &str = "default-src 'self'; script-src 'self'; worker-src 'self' blob:; \
    style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
    connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

async fn index(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    serve_file(&app, "index.html", &headers).await
}

async fn asset(
    State(app): State<Arc<App>>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    serve_file(&app, &path, &headers).await
}

/// The file of `rel` inside `root`, or `None` when `rel` is not a plain
/// relative path of allowed names. `rel` arrives percent-decoded (once), so
/// `..`, `%2e%2e` and `..%2f` all meet this check as dot segments or as
/// names with characters outside the allowed set; `%252e` decodes to
/// `%2e`, whose `%` is refused. Dot files are refused too: nothing the
/// viewer ships starts with a dot, and editors leave secrets there.
pub fn resolve(root: &std::path::Path, rel: &str) -> Option<PathBuf> {
    if rel.is_empty() || rel.len() > 256 {
        return None;
    }
    let mut out = root.to_path_buf();
    for part in rel.split('/') {
        let ok = !part.is_empty()
            && !part.starts_with('.')
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return None;
        }
        out.push(part);
    }
    // Belt and braces: what was pushed are plain names only.
    let plain = out
        .strip_prefix(root)
        .ok()?
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    plain.then_some(out)
}

/// Whether `Accept-Encoding` allows gzip (listed without `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

/// Files the build stores a gzip copy of (scripts/build-viewer.sh).
fn is_compressible(path: &std::path::Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("html" | "js" | "mjs" | "css" | "svg" | "json" | "txt")
    )
}

/// `Content-Type` by extension.
pub fn content_type(path: &std::path::Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn text(status: StatusCode, msg: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg,
    )
        .into_response()
}

async fn serve_file(app: &App, rel: &str, headers: &HeaderMap) -> Response {
    let root = &app.cfg.viewer_dir;
    if !tokio::fs::metadata(root).await.is_ok_and(|m| m.is_dir()) {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "The web viewer is not installed: {} is not a directory.\n\
                 Build it with `make dist` (it lands in dist/share/ivcs/viewer next to \
                 dist/bin/ivcs), or point the `viewer_dir` setting \
                 (IVCS_CLOUD_VIEWER_DIR) at a built viewer. The API under /v1 works without it.\n",
                root.display()
            ),
        );
    }
    let Some(path) = resolve(root, rel) else {
        return text(StatusCode::BAD_REQUEST, format!("bad file name {rel:?}\n"));
    };
    if !tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file()) {
        return text(StatusCode::NOT_FOUND, format!("no file {rel}\n"));
    }
    let mut gz = path.clone().into_os_string();
    gz.push(".gz");
    let gz = PathBuf::from(gz);
    let gzip = accepts_gzip(headers) && tokio::fs::metadata(&gz).await.is_ok_and(|m| m.is_file());
    let body_path = if gzip { &gz } else { &path };
    let meta = match tokio::fs::metadata(body_path).await {
        Ok(m) => m,
        Err(_) => return text(StatusCode::NOT_FOUND, format!("no file {rel}\n")),
    };
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    // The two encodings of a file are two representations: two validators.
    let etag = format!(
        "\"{}{:x}-{mtime_ns:x}\"",
        if gzip { "gz-" } else { "" },
        meta.len()
    );
    let mut resp = Response::builder()
        .header(header::CONTENT_TYPE, content_type(&path))
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if gzip {
        resp = resp.header(header::CONTENT_ENCODING, "gzip");
    }
    if is_compressible(&path) {
        resp = resp.header(header::VARY, "accept-encoding");
    }
    if path.extension().is_some_and(|e| e == "html") {
        resp = resp
            .header(header::CONTENT_SECURITY_POLICY, CSP)
            .header(header::REFERRER_POLICY, "no-referrer");
    }
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return resp
            .status(StatusCode::NOT_MODIFIED)
            .body(axum::body::Body::empty())
            .unwrap_or_else(|_| StatusCode::NOT_MODIFIED.into_response());
    }
    match tokio::fs::read(body_path).await {
        Ok(bytes) => resp
            .header(
                header::CONTENT_LENGTH,
                HeaderValue::from(bytes.len() as u64),
            )
            .body(axum::body::Body::from(bytes))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "reading a viewer file");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read {rel}\n"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn resolve_takes_plain_names_only() {
        let root = Path::new("/srv/viewer");
        assert_eq!(
            resolve(root, "app.js"),
            Some(PathBuf::from("/srv/viewer/app.js"))
        );
        assert_eq!(
            resolve(root, "vendor/hls.light.min.mjs"),
            Some(PathBuf::from("/srv/viewer/vendor/hls.light.min.mjs"))
        );
        for bad in [
            "",
            "..",
            "../x",
            "a/../../x",
            "./app.js",
            "a//b",
            "/etc/passwd",
            ".env",
            "a/.git/config",
            "%2e%2e/x",
            "..%2fx",
            "a\\..\\x",
            "a\0b",
            "ümlaut.js",
            "a b.js",
        ] {
            assert_eq!(resolve(root, bad), None, "{bad:?}");
        }
        assert_eq!(resolve(root, &"a".repeat(300)), None);
    }

    #[test]
    fn gzip_only_when_accepted() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            m
        };
        assert!(accepts_gzip(&h("gzip, deflate, br, zstd")));
        assert!(accepts_gzip(&h("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(&h("*")));
        assert!(!accepts_gzip(&h("gzip;q=0, br")));
        assert!(!accepts_gzip(&h("identity")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn content_types() {
        for (name, want) in [
            ("index.html", "text/html; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("vendor/hls.mjs", "text/javascript; charset=utf-8"),
            ("style.css", "text/css; charset=utf-8"),
            ("icon.svg", "image/svg+xml"),
            ("LICENSE", "application/octet-stream"),
        ] {
            assert_eq!(content_type(Path::new(name)), want, "{name}");
        }
    }
}
