//! The engine's one error type. Its [`ErrorKind`] maps one-to-one onto the
//! `IV_ERR_*` code the C API returns; the message locates the problem
//! (channel, frame seq, PTS) for logs.

use crate::codes;
use ivcs_media as media;
use std::fmt;

/// Coarse kind of an engine error; each maps to one `IV_ERR_*` code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ErrorKind {
    /// A parameter or frame is out of range or malformed (-602).
    InvalidArgument,
    /// The frame was refused; an IDR with parameter sets is needed (-611).
    NeedIdr,
    /// The frame does not fit the channel's buffer budget (-606).
    OutOfMemory,
    /// The iv_cs module is not initialised (-605).
    NotInitialised,
    /// No device credentials, or the cloud refused them (-603).
    NoCredentials,
    /// No plan allows this (-607).
    NoService,
    /// A query ran out of time or the cloud could not be reached (-608).
    Timeout,
    /// Event unknown, not started or already running (-609).
    InvalidEvent,
    /// `init` while initialised (-610).
    AlreadyInitialised,
    /// The plan's trial time is used up (-612).
    NoBalance,
    /// An upload failed for good (-613).
    UploadFailed,
}

impl ErrorKind {
    /// The `IV_ERR_*` code of this kind.
    pub fn code(self) -> i32 {
        match self {
            ErrorKind::InvalidArgument => codes::IV_ERR_CS_INIT_PRM_RANGE,
            ErrorKind::NeedIdr => codes::IV_ERR_CS_NEED_IDR_FRAME,
            ErrorKind::OutOfMemory => codes::IV_ERR_CS_PRM_MALLOC_FAIL,
            ErrorKind::NotInitialised => codes::IV_ERR_CS_PRM_NOT_AVAILABLE,
            ErrorKind::NoCredentials => codes::IV_ERR_CS_UPLOAD_AUTH_NOT_AVAILABLE,
            ErrorKind::NoService => codes::IV_ERR_CS_APPLY_NO_SERVICE,
            ErrorKind::Timeout => codes::IV_ERR_CS_QUERY_SERVICE_TIMEOUT,
            ErrorKind::InvalidEvent => codes::IV_ERR_CS_EVENT_IS_VALID,
            ErrorKind::AlreadyInitialised => codes::IV_ERR_CS_INIT_REPEAT,
            ErrorKind::NoBalance => codes::IV_ERR_CS_NO_BALANCE,
            ErrorKind::UploadFailed => codes::IV_ERR_CS_HTTP_DATA_FAIL,
        }
    }

    /// The kind of an `IV_ERR_*` code, as the cloud sends it in an error
    /// body's `iv_err`; codes without a kind of their own read as
    /// [`ErrorKind::UploadFailed`].
    pub fn from_code(code: i32) -> ErrorKind {
        match code {
            codes::IV_ERR_CS_INIT_PRM_RANGE => ErrorKind::InvalidArgument,
            codes::IV_ERR_CS_NEED_IDR_FRAME => ErrorKind::NeedIdr,
            codes::IV_ERR_CS_PRM_MALLOC_FAIL => ErrorKind::OutOfMemory,
            codes::IV_ERR_CS_PRM_NOT_AVAILABLE => ErrorKind::NotInitialised,
            codes::IV_ERR_CS_UPLOAD_AUTH_NOT_AVAILABLE => ErrorKind::NoCredentials,
            codes::IV_ERR_CS_APPLY_NO_SERVICE => ErrorKind::NoService,
            codes::IV_ERR_CS_QUERY_SERVICE_TIMEOUT => ErrorKind::Timeout,
            codes::IV_ERR_CS_EVENT_IS_VALID => ErrorKind::InvalidEvent,
            codes::IV_ERR_CS_INIT_REPEAT => ErrorKind::AlreadyInitialised,
            codes::IV_ERR_CS_NO_BALANCE => ErrorKind::NoBalance,
            _ => ErrorKind::UploadFailed,
        }
    }
}

/// An engine error: kind plus a message with context.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

    /// The `IV_ERR_*` code.
    pub fn code(&self) -> i32 {
        self.kind.code()
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.msg
    }

    /// The same error with `context` prefixed to its message.
    pub fn context(self, context: &str) -> Self {
        Error {
            kind: self.kind,
            msg: format!("{context}: {}", self.msg),
        }
    }

    /// Wraps a media error, prefixing `context` (e.g. "video seq 12 pts 480").
    pub fn media(e: media::Error, context: &str) -> Self {
        let kind = match e.kind() {
            media::ErrorKind::NeedKeyFrame => ErrorKind::NeedIdr,
            media::ErrorKind::TooLarge => ErrorKind::OutOfMemory,
            media::ErrorKind::Malformed
            | media::ErrorKind::Unsupported
            | media::ErrorKind::Timestamp
            | media::ErrorKind::InvalidConfig => ErrorKind::InvalidArgument,
        };
        Error::new(kind, format!("{context}: {}", e.message()))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?}): {}", self.code(), self.kind, self.msg)
    }
}

impl std::error::Error for Error {}

/// Returns early with an [`Error`] of the given kind and formatted message.
#[macro_export]
macro_rules! bail {
    ($kind:ident, $($arg:tt)+) => {
        return Err($crate::error::Error::new($crate::error::ErrorKind::$kind, format!($($arg)+)))
    };
}
