//! The cache-wide running totals (`stats.json`), shared by every process using the cache.
//!
//! `stats.json` is only read or replaced while holding an exclusive flock on `stats.lock`, and is
//! replaced by rename so a crash never leaves it half written. Sizes are an estimate: a process
//! killed between publishing an entry and recording it leaves the total short until the next
//! eviction scan recounts. Hit/miss counts accumulate per process and are merged on every ledger
//! update (each fill, `stats()`, every `COUNTER_FLUSH_OPS` lookups, and drop), so a killed process
//! loses at most its unmerged counts.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use tracing::warn;

use super::{CacheError, scan_entries};

/// Lookups counted locally before they are merged into the shared ledger.
pub(super) const COUNTER_FLUSH_OPS: u64 = 1024;

#[derive(Serialize, Deserialize, Default, Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct LedgerRecord {
    pub(super) entries: u64,
    pub(super) bytes: u64,
    pub(super) hits: u64,
    pub(super) misses: u64,
    pub(super) evictions: u64,
}

#[derive(Debug)]
pub(super) struct Ledger {
    // The mutex serialises this process's threads; the flock on the file serialises processes.
    lock_file: Mutex<File>,
    data_path: PathBuf,
    staging_path: PathBuf,
    pending_hits: AtomicU64,
    pending_misses: AtomicU64,
}

/// Releases the ledger flock even when an update bails out early.
struct FlockGuard<'a>(&'a File);

impl Drop for FlockGuard<'_> {
    fn drop(&mut self) {
        // Closing the handle would release it too; failing here only delays other processes.
        if let Err(err) = self.0.unlock() {
            warn!(%err, "cannot unlock cache ledger");
        }
    }
}

impl Ledger {
    pub(super) fn open(root: &Path) -> Result<Self, CacheError> {
        let lock_path = root.join("stats.lock");
        let lock_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|source| CacheError::io("open", &lock_path, source))?;
        Ok(Self {
            lock_file: Mutex::new(lock_file),
            data_path: root.join("stats.json"),
            staging_path: root.join("stats.json.new"),
            pending_hits: AtomicU64::new(0),
            pending_misses: AtomicU64::new(0),
        })
    }

    /// Counts a hit; returns whether enough lookups have piled up to merge them now.
    pub(super) fn record_hit(&self) -> bool {
        self.pending_hits.fetch_add(1, Ordering::Relaxed) + 1 + self.pending_misses()
            >= COUNTER_FLUSH_OPS
    }

    pub(super) fn record_miss(&self) -> bool {
        self.pending_misses.fetch_add(1, Ordering::Relaxed) + 1 + self.pending_hits()
            >= COUNTER_FLUSH_OPS
    }

    pub(super) fn has_pending_counts(&self) -> bool {
        self.pending_hits() + self.pending_misses() > 0
    }

    fn pending_hits(&self) -> u64 {
        self.pending_hits.load(Ordering::Relaxed)
    }

    fn pending_misses(&self) -> u64 {
        self.pending_misses.load(Ordering::Relaxed)
    }

    /// Applies `change` to the shared record, merging this process's pending counts, and returns
    /// the result. A missing or unreadable record is rebuilt by scanning `obj_dir`.
    pub(super) fn update(
        &self,
        obj_dir: &Path,
        change: impl FnOnce(&mut LedgerRecord),
    ) -> Result<LedgerRecord, CacheError> {
        let lock_file = self.lock_file.lock().unwrap_or_else(PoisonError::into_inner);
        lock_file.lock().map_err(|source| CacheError::io("lock", &self.data_path, source))?;
        let _flock = FlockGuard(&lock_file);

        let mut record = match self.read()? {
            Some(record) => record,
            None => {
                let scanned = scan_entries(obj_dir)?;
                LedgerRecord {
                    entries: scanned.len() as u64,
                    bytes: scanned.iter().map(|entry| entry.len).sum(),
                    ..LedgerRecord::default()
                }
            }
        };
        let hits = self.pending_hits.swap(0, Ordering::Relaxed);
        let misses = self.pending_misses.swap(0, Ordering::Relaxed);
        record.hits += hits;
        record.misses += misses;
        change(&mut record);

        if let Err(err) = self.write(&record) {
            // Put the counts back so the next successful update still reports them.
            self.pending_hits.fetch_add(hits, Ordering::Relaxed);
            self.pending_misses.fetch_add(misses, Ordering::Relaxed);
            return Err(err);
        }
        Ok(record)
    }

    fn read(&self) -> Result<Option<LedgerRecord>, CacheError> {
        let bytes = match fs::read(&self.data_path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CacheError::io("read", &self.data_path, source)),
        };
        match serde_json::from_slice(&bytes) {
            Ok(record) => Ok(Some(record)),
            Err(err) => {
                let path = self.data_path.display();
                warn!(path = %path, %err, "cache ledger unreadable, recounting");
                Ok(None)
            }
        }
    }

    fn write(&self, record: &LedgerRecord) -> Result<(), CacheError> {
        let json = serde_json::to_vec_pretty(record)
            .map_err(|source| CacheError::Ledger { path: self.data_path.clone(), source })?;
        fs::write(&self.staging_path, json)
            .map_err(|source| CacheError::io("write", &self.staging_path, source))?;
        fs::rename(&self.staging_path, &self.data_path)
            .map_err(|source| CacheError::io("replace", &self.data_path, source))
    }
}
