//! [`NetError`], the four outcomes the WIT `network.net-error` can express,
//! and the deliberate mapping of hyper, hyper-util and rustls failures onto
//! them.
//!
//! | failure | error |
//! |---|---|
//! | DNS, TCP connect (refused, unreachable, connect timeout), TLS handshake (untrusted or wrong-name certificate, protocol) | `Unreachable` |
//! | the exchange's whole deadline passed | `Timeout` |
//! | the connection broke after it was established (reset, EOF mid-head or mid-body, malformed response) | `Closed` |
//! | the caller misused the API (bad path or header, write after finish, body longer or shorter than declared, too many exchanges) | `Invalid` |

use std::error::Error as StdError;
use std::fmt;

/// Why an exchange failed. Messages locate the problem (method, path, the
/// underlying cause) and are meant for logs, not for parsing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetError {
    /// DNS, connect or TLS failure: the cloud is not reachable.
    Unreachable(String),
    /// The exchange's deadline passed.
    Timeout,
    /// The connection broke mid-exchange.
    Closed(String),
    /// The caller misused the exchange.
    Invalid(String),
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::Unreachable(m) => write!(f, "unreachable: {m}"),
            NetError::Timeout => f.write_str("timed out"),
            NetError::Closed(m) => write!(f, "connection closed: {m}"),
            NetError::Invalid(m) => write!(f, "invalid use: {m}"),
        }
    }
}

impl StdError for NetError {}

/// `err` and all its causes joined by ": ". hyper's own messages are terse
/// ("client error (Connect)"); the cause chain is where "Connection refused"
/// or "invalid peer certificate: UnknownIssuer" lives.
pub(crate) fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        // Some layers repeat their cause's text; keep the line short.
        if !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

/// A failure of `Client::request` (before the response head arrived).
pub(crate) fn from_request(what: &str, err: &hyper_util::client::legacy::Error) -> NetError {
    if err.is_connect() {
        NetError::Unreachable(format!("{what}: {}", chain(err)))
    } else {
        NetError::Closed(format!("{what}: {}", chain(err)))
    }
}

/// A failure while reading the response body.
pub(crate) fn from_body(what: &str, err: &hyper::Error) -> NetError {
    NetError::Closed(format!("{what}: reading the response body: {}", chain(err)))
}

/// The error the request body hands hyper when the exchange was dropped or
/// failed, so hyper closes the connection instead of reusing it.
#[derive(Debug)]
pub struct BodyAborted;

impl fmt::Display for BodyAborted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the exchange was aborted before its body was complete")
    }
}

impl StdError for BodyAborted {}
