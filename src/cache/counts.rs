//! What this process's handles of one cache did since it opened it: lookups answered from the
//! cache, lookups that had to fetch, entries evicted. The ledger keeps the same counts summed
//! over every process (`artfs cache stats`); these are one daemon's, for its metrics.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by every clone of one `BlobCache`.
#[derive(Debug, Default)]
pub(super) struct ProcessCounts {
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

/// A snapshot of [`ProcessCounts`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheCounts {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
}

impl ProcessCounts {
    pub(super) fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn evicted(&self, entries: u64) {
        self.evictions.fetch_add(entries, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> CacheCounts {
        CacheCounts {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }
}
