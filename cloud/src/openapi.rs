//! The service's OpenAPI 3.1 document (`cloud/openapi.json`), served
//! without authentication at `GET /v1/openapi.json`. It describes the app
//! API, the device API, `/healthz`, `/metrics`, the web viewer's files and
//! itself.
//!
//! The JSON file is the source, written by hand and embedded at build time;
//! it is not generated from the handlers. Tests keep the two in step: the
//! document must parse, every `$ref` and path parameter must resolve, and
//! its (method, path) pairs must equal the routes registered in the source
//! of the modules `server::router` merges. The prose reference is
//! docs/ref/api.md (app) and docs/ref/protocol.md (device).

use crate::app::App;
use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;

/// The document, as served.
pub const DOCUMENT: &str = include_str!("../openapi.json");

/// The route serving the document.
pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/v1/openapi.json", get(document))
}

async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::BTreeSet;

    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "patch", "head", "options", "trace",
    ];

    fn doc() -> Value {
        serde_json::from_str(DOCUMENT).expect("cloud/openapi.json is not valid JSON")
    }

    /// The source of every module whose routes `server::router` merges,
    /// plus `server.rs` itself (its own routes), by module name.
    fn route_sources() -> Vec<(&'static str, &'static str)> {
        vec![
            ("server", include_str!("server.rs")),
            ("device_api", include_str!("device_api.rs")),
            ("app_api", include_str!("app_api.rs")),
            ("release_api", include_str!("release_api.rs")),
            ("openapi", include_str!("openapi.rs")),
            ("viewer", include_str!("viewer.rs")),
        ]
    }

    /// The code of a source file, without its test module.
    fn code(src: &str) -> &str {
        src.split("#[cfg(test)]").next().unwrap_or(src)
    }

    /// The text of the argument list that starts right after an opening
    /// parenthesis, up to its matching closing one.
    fn args(after_paren: &str) -> &str {
        let mut depth = 1;
        for (i, c) in after_paren.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return &after_paren[..i];
                    }
                }
                _ => {}
            }
        }
        panic!("unbalanced parentheses after: {after_paren:.80}");
    }

    /// Every `.route("PATH", get(h).put(h2))` call (single- or multi-line,
    /// with `axum::routing::delete(..)` style paths too) as (METHOD, PATH).
    fn routes_in(src: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut rest = code(src);
        while let Some(i) = rest.find(".route(") {
            let after = &rest[i + ".route(".len()..];
            let call = args(after);
            let open = call.find('"').expect("route path literal");
            let len = call[open + 1..].find('"').expect("end of route path");
            // axum's catch-all `{*rest}` is the OpenAPI parameter `{rest}`.
            let path = call[open + 1..open + 1 + len].replace("{*", "{");
            let handlers = &call[open + 1 + len + 1..];
            // Method routers are identifiers directly followed by `(`.
            let bytes = handlers.as_bytes();
            let mut start = None;
            for (j, &b) in bytes.iter().enumerate() {
                if b.is_ascii_alphanumeric() || b == b'_' {
                    start.get_or_insert(j);
                    continue;
                }
                if let Some(s) = start.take() {
                    let ident = &handlers[s..j];
                    if b == b'(' && METHODS.contains(&ident) {
                        out.push((ident.to_ascii_uppercase(), path.clone()));
                    }
                }
            }
            rest = &after[call.len()..];
        }
        out
    }

    #[test]
    fn route_parser_reads_single_multi_line_and_chained_routes() {
        let src = r#"
            Router::new()
                .route("/a/{x}", get(one))
                .route(
                    "/b/{y}/{z}",
                    put(ai_put).get(ai_get),
                )
                .route("/c", axum::routing::delete(destroy))
                .route("/d", post(make_get))
                .route("/e/{*rest}", get(files))
        "#;
        let got: BTreeSet<_> = routes_in(src).into_iter().collect();
        let want: BTreeSet<_> = [
            ("GET", "/a/{x}"),
            ("PUT", "/b/{y}/{z}"),
            ("GET", "/b/{y}/{z}"),
            ("DELETE", "/c"),
            ("POST", "/d"),
            ("GET", "/e/{rest}"),
        ]
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn document_is_openapi_3_1_json() {
        let d = doc();
        let v = d["openapi"].as_str().expect("openapi version");
        assert!(v.starts_with("3.1."), "openapi {v}");
        assert!(d["info"]["title"].is_string() && d["info"]["version"].is_string());
        assert!(d["paths"].as_object().is_some_and(|p| !p.is_empty()));
        for scheme in ["bearer", "signedUrl", "deviceHmac"] {
            assert!(
                d["components"]["securitySchemes"][scheme].is_object(),
                "security scheme {scheme}"
            );
        }
    }

    #[test]
    fn router_merges_exactly_the_modules_the_route_check_reads() {
        let server = code(include_str!("server.rs"));
        let mut merged = BTreeSet::new();
        let mut rest = server;
        while let Some(i) = rest.find(".merge(crate::") {
            let after = &rest[i + ".merge(crate::".len()..];
            let end = after
                .find("::routes()")
                .expect("merge(crate::MODULE::routes())");
            merged.insert(&after[..end]);
            rest = &after[end..];
        }
        let read: BTreeSet<_> = route_sources()
            .into_iter()
            .map(|(m, _)| m)
            .filter(|m| *m != "server")
            .collect();
        assert_eq!(
            merged, read,
            "server::router merges other modules than the route check reads: update route_sources()"
        );
    }

    #[test]
    fn documented_operations_are_exactly_the_registered_routes() {
        let registered: BTreeSet<(String, String)> = route_sources()
            .into_iter()
            .flat_map(|(_, src)| routes_in(src))
            .collect();
        assert!(registered.len() > 10, "route parser found {registered:?}");
        let d = doc();
        let mut documented = BTreeSet::new();
        for (path, item) in d["paths"].as_object().expect("paths") {
            for m in METHODS {
                if item.get(m).is_some() {
                    documented.insert((m.to_ascii_uppercase(), path.clone()));
                }
            }
        }
        let undocumented: Vec<_> = registered.difference(&documented).collect();
        let unregistered: Vec<_> = documented.difference(&registered).collect();
        assert!(
            undocumented.is_empty() && unregistered.is_empty(),
            "routes missing from cloud/openapi.json: {undocumented:?}; \
             documented but not registered: {unregistered:?}"
        );
    }

    /// Follows a local `$ref` (`#/components/...`).
    fn resolve<'a>(d: &'a Value, r: &str) -> Option<&'a Value> {
        let mut v = d;
        for part in r.strip_prefix("#/")?.split('/') {
            v = v.get(part)?;
        }
        Some(v)
    }

    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves() {
        let d = doc();
        let mut all = Vec::new();
        refs(&d, &mut all);
        assert!(!all.is_empty());
        for r in all {
            assert!(resolve(&d, r).is_some(), "unresolved $ref {r}");
        }
    }

    #[test]
    fn every_path_parameter_is_declared_and_operations_are_complete() {
        let d = doc();
        let mut ids = BTreeSet::new();
        for (path, item) in d["paths"].as_object().expect("paths") {
            let names: Vec<&str> = path
                .split('{')
                .skip(1)
                .filter_map(|s| s.split_once('}').map(|(n, _)| n))
                .collect();
            for m in METHODS {
                let Some(op) = item.get(m) else { continue };
                let declared: BTreeSet<&str> = item
                    .get("parameters")
                    .into_iter()
                    .chain(op.get("parameters"))
                    .flat_map(|p| p.as_array().into_iter().flatten())
                    .map(|p| match p.get("$ref").and_then(Value::as_str) {
                        Some(r) => resolve(&d, r).unwrap_or(p),
                        None => p,
                    })
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                let wanted: BTreeSet<&str> = names.iter().copied().collect();
                assert_eq!(declared, wanted, "path parameters of {m} {path}");
                let id = op["operationId"].as_str().expect("operationId");
                assert!(ids.insert(id.to_string()), "operationId {id} twice");
                assert!(
                    op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                    "{m} {path} has no responses"
                );
                assert!(op["security"].is_array(), "{m} {path} says no security");
            }
        }
    }

    #[tokio::test]
    async fn served_as_json() {
        let r = document().await.into_response();
        assert_eq!(r.status(), axum::http::StatusCode::OK);
        assert_eq!(
            r.headers().get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
            Some(&b"application/json"[..])
        );
    }
}
