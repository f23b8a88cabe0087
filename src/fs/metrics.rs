//! The mount daemon's counters in Prometheus' text format (the shape of `artfs serve`'s
//! `/metrics`): cache hits, misses and evictions of this daemon, bytes fetched, failed opens,
//! open files. The counters live where the work happens (`cache`, `fetch`); this only reads them.

use std::fmt::Write as _;

use super::{ArtifactFs, read};
use crate::serve::metric_head as head;

impl ArtifactFs {
    /// The counters now, as `GET /metrics` of `artfs mount --metrics-addr` answers them.
    pub fn metrics_text(&self) -> String {
        let fetcher = &self.inner.fetcher;
        let cache = fetcher.cache().process_counts();
        let fetch = fetcher.stats();
        let open_files = read(&self.inner.files).len();
        let mut out = String::new();
        let counters = [
            ("artfs_mount_cache_hits_total", "Entries opened from the cache.", cache.hits),
            ("artfs_mount_cache_misses_total", "Entries that had to be fetched.", cache.misses),
            (
                "artfs_mount_cache_evictions_total",
                "Entries evicted by this daemon.",
                cache.evictions,
            ),
            (
                "artfs_mount_fetched_bytes_total",
                "Bytes received from the registry and references.",
                fetch.bytes_fetched,
            ),
            (
                "artfs_mount_errors_total",
                "Opens that failed to fetch or verify their entry.",
                fetch.errors,
            ),
        ];
        for (name, help, value) in counters {
            head(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {value}");
        }
        let name = "artfs_mount_open_files";
        head(&mut out, name, "gauge", "Files open through the mount now.");
        let _ = writeln!(out, "{name} {open_files}");
        out
    }
}
