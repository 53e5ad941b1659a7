//! The crate's one error type: a coarse [`ErrorKind`] for callers to act on
//! plus a message that locates the problem in the input.

use std::fmt;

/// What went wrong, coarse enough for callers to map to an `IV_ERR_*` code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The input is malformed (bad start code, truncated NAL, bad header).
    Malformed,
    /// Well-formed but not supported (B-frames, interlaced, AAC Main, ...).
    Unsupported,
    /// A key frame is needed first (no IDR yet, IDR without parameter sets).
    NeedKeyFrame,
    /// The input is larger than the configured budget.
    TooLarge,
    /// Timestamps are unusable (backwards, absurd jumps).
    Timestamp,
    /// A configuration value is out of range.
    InvalidConfig,
}

/// A media error: a kind plus context (what, where).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    msg: String,
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a message saying what and where.
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Self {
        Error {
            kind,
            msg: msg.into(),
        }
    }

    /// Shorthand for [`ErrorKind::Malformed`].
    pub fn malformed(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::Malformed, msg)
    }

    /// Shorthand for [`ErrorKind::Unsupported`].
    pub fn unsupported(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, msg)
    }

    /// The coarse kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without the kind.
    pub fn message(&self) -> &str {
        &self.msg
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.msg)
    }
}

impl std::error::Error for Error {}
