//! What the engine may ask for, checked before anything touches a socket:
//! the base URL the host was configured with, and a request's method, path
//! and headers. The engine only ever names a path *under* the configured
//! cloud; absolute URLs, scheme-relative `//host` paths, control characters
//! and headers the host owns (framing, connection management) are refused
//! as [`NetError::Invalid`].

use super::NetError;
use hyper::header::{HeaderName, HeaderValue};
use hyper::http::uri::{Authority, Scheme};
use hyper::{HeaderMap, Uri};

/// HTTP method of an exchange (the four the cloud's device API uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// DELETE.
    Delete,
}

impl Method {
    pub(crate) fn as_http(self) -> hyper::Method {
        match self {
            Method::Get => hyper::Method::GET,
            Method::Post => hyper::Method::POST,
            Method::Put => hyper::Method::PUT,
            Method::Delete => hyper::Method::DELETE,
        }
    }
}

/// One HTTP exchange to start (the WIT `network.request`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Path and query relative to the configured base URL; starts with a
    /// single '/'.
    pub path: String,
    /// Extra headers. `host`, `content-length`, `transfer-encoding` and the
    /// connection-management headers belong to the host and are refused.
    pub headers: Vec<(String, String)>,
    /// Exact body length, or `None` for a chunked streaming body. A request
    /// without a body uses `Some(0)`.
    pub content_length: Option<u64>,
    /// Whole-exchange deadline in ms, from `start` to the end of the
    /// response body; 0 = the client's default.
    pub timeout_ms: u32,
}

/// Headers the engine may not set: the host frames the body and manages
/// connections, and a second `host` or `content-length` is a smuggling tool.
const HOST_OWNED: [&str; 9] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// The configured cloud URL, split for joining with request paths.
#[derive(Clone, Debug)]
pub(crate) struct BaseUrl {
    pub(crate) scheme: Scheme,
    pub(crate) authority: Authority,
    /// Path prefix without a trailing '/', e.g. "" or "/ivcs".
    prefix: String,
}

impl BaseUrl {
    /// Parses `http[s]://host[:port][/prefix]`; no user info, query or
    /// fragment.
    pub(crate) fn parse(url: &str) -> anyhow::Result<BaseUrl> {
        let uri: Uri = url
            .parse()
            .map_err(|e| anyhow::anyhow!("cloud URL {url:?}: {e}"))?;
        let scheme = match uri.scheme_str() {
            Some("http") => Scheme::HTTP,
            Some("https") => Scheme::HTTPS,
            _ => anyhow::bail!("cloud URL {url:?}: the scheme must be http or https"),
        };
        let Some(authority) = uri.authority().cloned() else {
            anyhow::bail!("cloud URL {url:?} has no host");
        };
        if authority.as_str().contains('@') || authority.host().is_empty() {
            anyhow::bail!("cloud URL {url:?}: give a bare host[:port], no user info");
        }
        if uri.query().is_some() || url.contains('#') {
            anyhow::bail!("cloud URL {url:?}: no query or fragment allowed");
        }
        Ok(BaseUrl {
            scheme,
            authority,
            prefix: uri.path().trim_end_matches('/').to_string(),
        })
    }

    pub(crate) fn is_https(&self) -> bool {
        self.scheme == Scheme::HTTPS
    }

    /// The absolute URI for `path` (already checked by [`check_path`]).
    fn join(&self, path: &str) -> Result<Uri, NetError> {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(format!("{}{path}", self.prefix))
            .build()
            .map_err(|e| NetError::Invalid(format!("path {path:?}: {e}")))
    }
}

/// A path the engine may request: starts with exactly one '/', and only
/// visible ASCII without '#' (the cloud signs the path as sent, so nothing
/// is re-encoded here).
fn check_path(path: &str) -> Result<(), NetError> {
    let bad = |why: &str| Err(NetError::Invalid(format!("path {path:?}: {why}")));
    if !path.starts_with('/') {
        return bad("must start with '/' (a path under the cloud URL, not a URL)");
    }
    if path.starts_with("//") {
        return bad("must not start with '//' (that names another host)");
    }
    if let Some(b) = path
        .bytes()
        .find(|b| !(0x21..=0x7e).contains(b) || *b == b'#')
    {
        return bad(&format!(
            "byte 0x{b:02x} is not allowed (spaces, controls, '#', non-ASCII)"
        ));
    }
    Ok(())
}

fn check_headers(headers: &[(String, String)]) -> Result<HeaderMap, NetError> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| NetError::Invalid(format!("header name {name:?} is not a token")))?;
        if HOST_OWNED.contains(&n.as_str()) {
            return Err(NetError::Invalid(format!(
                "header {name:?} is set by the host, not the engine"
            )));
        }
        // `HeaderValue::from_str` refuses CR, LF and other controls.
        let v = HeaderValue::from_str(value).map_err(|_| {
            NetError::Invalid(format!("header {name:?}: value has control characters"))
        })?;
        map.append(n, v);
    }
    Ok(map)
}

/// Checks `req` and builds the request line and headers; the body is
/// attached by the caller.
pub(crate) fn build(
    base: &BaseUrl,
    user_agent: &HeaderValue,
    req: &Request,
) -> Result<hyper::http::request::Builder, NetError> {
    check_path(&req.path)?;
    let mut headers = check_headers(&req.headers)?;
    if !headers.contains_key(hyper::header::USER_AGENT) {
        headers.insert(hyper::header::USER_AGENT, user_agent.clone());
    }
    let mut b = hyper::Request::builder()
        .method(req.method.as_http())
        .uri(base.join(&req.path)?);
    if let Some(h) = b.headers_mut() {
        *h = headers;
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str) -> Request {
        Request {
            method: Method::Get,
            path: path.into(),
            headers: vec![],
            content_length: Some(0),
            timeout_ms: 0,
        }
    }

    fn uri_of(base: &str, path: &str) -> Result<String, NetError> {
        let base = BaseUrl::parse(base).unwrap();
        let ua = HeaderValue::from_static("t");
        let b = build(&base, &ua, &req(path))?;
        Ok(b.body(()).unwrap().uri().to_string())
    }

    #[test]
    fn paths_join_the_base_url_and_its_prefix() {
        assert_eq!(
            uri_of("http://c:8080", "/v1/x?a=1").unwrap(),
            "http://c:8080/v1/x?a=1"
        );
        assert_eq!(
            uri_of("https://c/ivcs/", "/v1/x").unwrap(),
            "https://c/ivcs/v1/x"
        );
    }

    #[test]
    fn only_relative_visible_ascii_paths_are_allowed() {
        for p in [
            "http://evil/",
            "//evil/x",
            "v1/x",
            "",
            "/a b",
            "/a\r\nx: y",
            "/a\n",
            "/a#frag",
            "/caf\u{e9}",
        ] {
            assert!(
                matches!(uri_of("http://c", p), Err(NetError::Invalid(_))),
                "{p:?} was accepted"
            );
        }
    }

    #[test]
    fn host_owned_and_malformed_headers_are_refused() {
        let base = BaseUrl::parse("http://c").unwrap();
        let ua = HeaderValue::from_static("t");
        for (n, v) in [
            ("Host", "evil"),
            ("content-length", "5"),
            ("Transfer-Encoding", "chunked"),
            ("connection", "close"),
            ("x-ok", "a\r\nx-evil: 1"),
            ("x-ok", "a\nb"),
            ("bad name", "v"),
            ("x:y", "v"),
        ] {
            let mut r = req("/x");
            r.headers = vec![(n.into(), v.into())];
            assert!(
                matches!(build(&base, &ua, &r), Err(NetError::Invalid(_))),
                "{n:?}: {v:?} was accepted"
            );
        }
        let mut r = req("/x");
        r.headers = vec![("expect".into(), "100-continue".into())];
        assert!(build(&base, &ua, &r).is_ok());
    }

    #[test]
    fn base_urls_must_be_plain_http_or_https() {
        assert!(
            BaseUrl::parse("https://cloud.example:8443")
                .unwrap()
                .is_https()
        );
        assert!(!BaseUrl::parse("http://127.0.0.1:1").unwrap().is_https());
        for bad in [
            "ftp://c",
            "c:80",
            "/v1",
            "http://u:p@c",
            "http://c/?q=1",
            "http://c/#f",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
