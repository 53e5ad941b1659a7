//! Prometheus counters for `/metrics`, rendered in the text exposition
//! format. Plain atomics: no registry crate is needed for this handful.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($name:ident: $help:literal),+ $(,)?) => {
        /// The service's counters.
        #[derive(Default)]
        pub struct Metrics { $(#[doc = $help] pub $name: AtomicU64,)+ }

        impl Metrics {
            /// Text exposition of every counter plus `gauges`.
            pub fn render(&self, gauges: &[(&str, &str, u64)]) -> String {
                let mut s = String::new();
                $(
                    let _ = writeln!(s, "# HELP ivcs_{} {}", stringify!($name), $help);
                    let _ = writeln!(s, "# TYPE ivcs_{} counter", stringify!($name));
                    let _ = writeln!(s, "ivcs_{} {}", stringify!($name), self.$name.load(Ordering::Relaxed));
                )+
                for (name, help, v) in gauges {
                    let _ = writeln!(s, "# HELP ivcs_{name} {help}");
                    let _ = writeln!(s, "# TYPE ivcs_{name} gauge");
                    let _ = writeln!(s, "ivcs_{name} {v}");
                }
                s
            }
        }
    };
}

counters! {
    http_requests_total: "HTTP requests received.",
    auth_failures_total: "Requests refused with 401.",
    segment_uploads_total: "Segment upload bodies received (complete or not).",
    segment_upload_bytes_total: "Segment bytes stored.",
    segments_partial_total: "Segment uploads that broke off and were kept as partial.",
    segments_complete_total: "Segments committed.",
    uploads_refused_disk_full_total: "Uploads refused with 507.",
    backups_refused_late_total: "Backup uploads refused after the window.",
    events_total: "Events started or reported.",
    pictures_total: "Pictures stored.",
    playlists_total: "HLS playlists served.",
    exports_total: "MP4 exports sent completely.",
    exports_failed_total: "MP4 exports that broke off after the header was sent.",
    retention_segments_deleted_total: "Segments removed by retention.",
    objects_deleted_total: "Objects deleted (tombstones cleared).",
}

/// Adds one to a counter.
pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Adds `n` to a counter.
pub fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}
