//! The iv_cs operations as the engine sees them.
//!
//! This engine version implements the media pipeline ([`crate::pipeline`])
//! but not yet the iv_cs state machines (plans, events, uploads): every
//! operation answers `IV_ERR_CS_PRM_NOT_AVAILABLE` (-605, "module not
//! initialised"), `init` included, as docs/ref/wit.md documents. A host can
//! therefore never mistake this engine for one that records.

use crate::error::{Error, ErrorKind};

/// The error every iv_cs operation returns in this engine version.
pub fn not_initialised(op: &str) -> Error {
    Error::new(
        ErrorKind::NotInitialised,
        format!(
            "{op}: iv_cs is not initialised; engine {} has no iv_cs state machines yet",
            crate::ENGINE_VERSION
        ),
    )
}
