//! The cache-wide running totals (`stats.json`), shared by every process using the cache.
//!
//! `stats.json` is only read or replaced while holding an exclusive flock on `stats.lock`, and is
//! replaced by rename so a crash never leaves it half written. Sizes are an estimate: a process
//! killed between publishing an entry and recording it leaves the total short until the next
//! eviction scan recounts. The total counts published entries (`bytes`) and the allocated bytes of
//! partially fetched files (`partial_bytes`), since both take space under the limit. Hit/miss
//! counts and partial-file growth accumulate per process and are merged on every ledger update
//! (each fill, `stats()`, every `COUNTER_FLUSH_OPS` lookups, every `PARTIAL_FLUSH_BYTES` of
//! partial growth, and drop), so a killed process loses at most its unmerged deltas.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use tracing::warn;

use super::partial::scan_partial_bytes;
use super::{CacheError, scan_entries};

/// Lookups counted locally before they are merged into the shared ledger.
pub(super) const COUNTER_FLUSH_OPS: u64 = 1024;

/// Growth of partial files counted locally before it is merged (and the limit checked).
pub(super) const PARTIAL_FLUSH_BYTES: u64 = 64 << 20;

#[derive(Serialize, Deserialize, Default, Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct LedgerRecord {
    pub(super) entries: u64,
    pub(super) bytes: u64,
    pub(super) hits: u64,
    pub(super) misses: u64,
    pub(super) evictions: u64,
    /// Allocated bytes of the data files under `partial/` (absent in ledgers of older versions).
    #[serde(default)]
    pub(super) partial_bytes: u64,
}

impl LedgerRecord {
    /// What counts against the size limit: entries and partial files.
    pub(super) fn total_bytes(&self) -> u64 {
        self.bytes.saturating_add(self.partial_bytes)
    }
}

/// Changes of this process not yet merged into the shared record.
#[derive(Debug, Default)]
struct Pending {
    hits: u64,
    misses: u64,
    partial_bytes: i64,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.hits == 0 && self.misses == 0 && self.partial_bytes == 0
    }

    /// Adds the deltas to `record`; sizes only if it was not just `recounted` (which saw them).
    fn apply(&self, record: &mut LedgerRecord, recounted: bool) {
        record.hits += self.hits;
        record.misses += self.misses;
        if !recounted {
            record.partial_bytes = record.partial_bytes.saturating_add_signed(self.partial_bytes);
        }
    }

    fn merge(&mut self, other: Pending) {
        self.hits += other.hits;
        self.misses += other.misses;
        self.partial_bytes += other.partial_bytes;
    }
}

#[derive(Debug)]
pub(super) struct Ledger {
    // The mutex serialises this process's threads; the flock on the file serialises processes.
    lock_file: Mutex<File>,
    data_path: PathBuf,
    staging_path: PathBuf,
    /// Where a lost record is recounted from.
    obj_dir: PathBuf,
    partial_dir: PathBuf,
    pending: Mutex<Pending>,
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
    pub(super) fn open(
        root: &Path,
        obj_dir: &Path,
        partial_dir: &Path,
    ) -> Result<Self, CacheError> {
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
            obj_dir: obj_dir.to_owned(),
            partial_dir: partial_dir.to_owned(),
            pending: Mutex::default(),
        })
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        // Plain counters, valid after any panic.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a hit; returns whether enough lookups have piled up to merge them now.
    pub(super) fn record_hit(&self) -> bool {
        let mut pending = self.pending();
        pending.hits += 1;
        pending.hits + pending.misses >= COUNTER_FLUSH_OPS
    }

    pub(super) fn record_miss(&self) -> bool {
        let mut pending = self.pending();
        pending.misses += 1;
        pending.hits + pending.misses >= COUNTER_FLUSH_OPS
    }

    /// Counts `delta` bytes more (or fewer) allocated to partial files; returns whether enough
    /// has piled up to merge it now.
    pub(super) fn record_partial_bytes(&self, delta: i64) -> bool {
        let mut pending = self.pending();
        pending.partial_bytes += delta;
        pending.partial_bytes.unsigned_abs() >= PARTIAL_FLUSH_BYTES
    }

    pub(super) fn has_pending(&self) -> bool {
        !self.pending().is_empty()
    }

    /// Applies `change` to the shared record, merging this process's pending deltas, and returns
    /// the result. A missing or unreadable record is rebuilt by scanning the cache.
    pub(super) fn update(
        &self,
        change: impl FnOnce(&mut LedgerRecord),
    ) -> Result<LedgerRecord, CacheError> {
        let lock_file = self.lock_file.lock().unwrap_or_else(PoisonError::into_inner);
        lock_file.lock().map_err(|source| CacheError::io("lock", &self.data_path, source))?;
        let _flock = FlockGuard(&lock_file);

        let (mut record, recounted) = match self.read()? {
            Some(record) => (record, false),
            None => {
                let scanned = scan_entries(&self.obj_dir)?;
                let record = LedgerRecord {
                    entries: scanned.len() as u64,
                    bytes: scanned.iter().map(|entry| entry.len).sum(),
                    partial_bytes: scan_partial_bytes(&self.partial_dir),
                    ..LedgerRecord::default()
                };
                (record, true)
            }
        };
        let pending = std::mem::take(&mut *self.pending());
        pending.apply(&mut record, recounted);
        change(&mut record);

        if let Err(err) = self.write(&record) {
            // Put the deltas back so the next successful update still reports them.
            self.pending().merge(pending);
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
