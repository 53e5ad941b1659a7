//! The cloud's one error type. Its [`ErrorKind`] fixes the HTTP status and a
//! stable machine-readable code (documented in docs/ref/protocol.md and
//! docs/ref/api.md); the message says what was wrong for logs and clients,
//! except for authentication failures, which never say why.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::fmt;

/// What went wrong, coarse enough to pick a status and for a device to act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Malformed request: bad id, bad query, bad JSON, bad media (400).
    BadRequest,
    /// Authentication failed: stale, replayed, forged or unknown (401).
    Unauthorized,
    /// The device's plan does not allow this upload (403, `no_service`).
    NoService,
    /// The plan's trial time is used up (403, `no_balance`).
    NoBalance,
    /// No such device, segment, event or picture (404).
    NotFound,
    /// The request conflicts with stored state, e.g. a digest mismatch (409).
    Conflict,
    /// Too late: the backup window of this segment has closed (410).
    Gone,
    /// The body is larger than the configured cap (413).
    TooLarge,
    /// The body is not a supported media type, e.g. a picture that is
    /// neither JPEG nor PNG (415).
    UnsupportedMedia,
    /// The disk is full; nothing was indexed (507).
    InsufficientStorage,
    /// A bug or an unexpected storage failure (500).
    Internal,
}

impl ErrorKind {
    /// The HTTP status of this kind.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::NoService | ErrorKind::NoBalance => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Gone => StatusCode::GONE,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMedia => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code sent in error bodies.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::NoService => "no_service",
            ErrorKind::NoBalance => "no_balance",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Gone => "backup_window_closed",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::UnsupportedMedia => "unsupported_media",
            ErrorKind::InsufficientStorage => "insufficient_storage",
            ErrorKind::Internal => "internal",
        }
    }

    /// The `IV_ERR_*` code the engine reports to firmware for this answer.
    pub fn iv_err(self) -> i32 {
        match self {
            ErrorKind::NoService => -607,
            ErrorKind::NoBalance => -612,
            ErrorKind::TooLarge => -606,
            ErrorKind::BadRequest | ErrorKind::UnsupportedMedia => -602,
            ErrorKind::Unauthorized => -603,
            // Missing objects, conflicts, a closed backup window, a full
            // disk, a cloud bug: to firmware these are failed uploads.
            ErrorKind::NotFound
            | ErrorKind::Conflict
            | ErrorKind::Gone
            | ErrorKind::InsufficientStorage
            | ErrorKind::Internal => -613,
        }
    }
}

/// A cloud error: kind plus a message with context.
#[derive(Clone, Debug)]
pub struct Error {
    kind: ErrorKind,
    msg: String,
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind`.
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Self {
        Error {
            kind,
            msg: msg.into(),
        }
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.msg
    }

    /// Shorthand for [`ErrorKind::BadRequest`].
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, msg)
    }

    /// Shorthand for [`ErrorKind::NotFound`].
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, msg)
    }

    /// Shorthand for [`ErrorKind::Internal`].
    pub fn internal(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, msg)
    }

    /// The one authentication failure: it never says which check failed, so
    /// a forger learns nothing (the log says, at debug level).
    pub fn unauthorized() -> Self {
        Self::new(ErrorKind::Unauthorized, "request authentication failed")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.msg)
    }
}

impl std::error::Error for Error {}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if is_disk_full_sqlx(&e) {
            return Error::new(ErrorKind::InsufficientStorage, "the disk is full");
        }
        Error::internal(format!("database: {e}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::StorageFull
            || e.kind() == std::io::ErrorKind::QuotaExceeded
        {
            return Error::new(ErrorKind::InsufficientStorage, "the disk is full");
        }
        Error::internal(format!("i/o: {e}"))
    }
}

/// SQLite says SQLITE_FULL (13) when the disk fills.
fn is_disk_full_sqlx(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => d.code().as_deref() == Some("13"),
        sqlx::Error::Io(io) => io.kind() == std::io::ErrorKind::StorageFull,
        _ => false,
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if self.kind == ErrorKind::Internal {
            tracing::error!(error = %self.msg, "internal error");
        }
        let body = serde_json::json!({
            "error": { "code": self.kind.code(), "message": self.msg, "iv_err": self.kind.iv_err() }
        });
        (self.kind.status(), Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mapping docs/ref/protocol.md promises, kind by kind.
    #[test]
    fn every_kind_has_its_documented_status_and_iv_err() {
        let table = [
            (ErrorKind::BadRequest, 400, -602),
            (ErrorKind::Unauthorized, 401, -603),
            (ErrorKind::NoService, 403, -607),
            (ErrorKind::NoBalance, 403, -612),
            (ErrorKind::NotFound, 404, -613),
            (ErrorKind::Conflict, 409, -613),
            (ErrorKind::Gone, 410, -613),
            (ErrorKind::TooLarge, 413, -606),
            (ErrorKind::UnsupportedMedia, 415, -602),
            (ErrorKind::InsufficientStorage, 507, -613),
            (ErrorKind::Internal, 500, -613),
        ];
        for (kind, status, iv_err) in table {
            assert_eq!(kind.status().as_u16(), status, "{kind:?}");
            assert_eq!(kind.iv_err(), iv_err, "{kind:?}");
        }
    }
}
