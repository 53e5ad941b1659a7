//! The service's notion of "now": the system clock, or for tests a file
//! holding ms since 1970 so that time can jump (retention, expiry, backup
//! windows, signature freshness) without sleeping; or, in host-sim, a value
//! the simulation sets (virtual time).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where "now" comes from.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    file: Option<PathBuf>,
    manual: Option<Arc<AtomicU64>>,
}

impl Clock {
    /// The system clock, or `file` when it is set and readable.
    pub fn new(file: Option<PathBuf>) -> Clock {
        Clock { file, manual: None }
    }

    /// A clock that reads `now` (ms since 1970), which its owner moves.
    pub fn manual(now: Arc<AtomicU64>) -> Clock {
        Clock {
            file: None,
            manual: Some(now),
        }
    }

    /// Now, ms since 1970.
    pub fn now_ms(&self) -> u64 {
        if let Some(m) = &self.manual {
            return m.load(Ordering::SeqCst);
        }
        if let Some(f) = &self.file
            && let Ok(s) = std::fs::read_to_string(f)
            && let Ok(v) = s.trim().parse::<u64>()
        {
            return v;
        }
        system_now_ms()
    }
}

/// The system clock, ms since 1970.
pub fn system_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
