//! The cache-wide running totals (`stats.json`), shared by every process using the cache.
//!
//! `stats.json` is only read or replaced while holding an exclusive flock on `stats.lock`, and is
//! replaced by rename so a crash never leaves it half written. The total counts published entries
//! (`bytes`) and the allocated bytes of partially fetched files (`partial_bytes`), since both take
//! space under the limit.
//!
//! Writing the file on every fill would serialise all fills of all processes behind one lock and
//! cost a read, a write and a rename each, so each process keeps its changes (sizes, entry count,
//! hits, misses) as pending deltas and merges them at most about once per `FLUSH_INTERVAL` (a
//! background thread in `BlobCache`), as soon as `FLUSH_BYTES` of size changes pile up, before an
//! eviction scan, on `stats()` and on drop. Between merges the process judges the limit by its
//! estimate: the record it last merged into plus its own pending deltas, so the bound holds
//! promptly for what this process adds and within about one interval for what others add.
//!
//! Sizes are an estimate: a process killed before merging loses its pending deltas, and an
//! eviction scan that recounts while another process holds unmerged deltas for entries the scan
//! already saw counts those twice; either way the error lasts until the next scan recounts.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::warn;

use super::claims::{self, Claims};
use super::evict::scan_entries;
use super::lease::{Lease, lease_bytes, leased_fill_max};
use super::partial::scan_partial_bytes;
use super::{CacheError, Layout};

/// How long a process may keep changes to itself before they are merged into the shared ledger.
pub(super) const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Size changes that are merged at once rather than waiting for the interval.
const FLUSH_BYTES: u64 = 64 << 20;

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
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Pending {
    pub(super) entries: i64,
    pub(super) bytes: i64,
    pub(super) partial_bytes: i64,
    pub(super) hits: u64,
    pub(super) misses: u64,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.entries == 0
            && self.bytes == 0
            && self.partial_bytes == 0
            && self.hits == 0
            && self.misses == 0
    }

    /// Adds the deltas to `record`; sizes unless it was just `recounted` (which saw them).
    fn apply(&self, record: &mut LedgerRecord, recounted: bool) {
        record.hits += self.hits;
        record.misses += self.misses;
        if !recounted {
            record.entries = record.entries.saturating_add_signed(self.entries);
            record.bytes = record.bytes.saturating_add_signed(self.bytes);
            record.partial_bytes = record.partial_bytes.saturating_add_signed(self.partial_bytes);
        }
    }

    fn merge(&mut self, other: Pending) {
        self.entries += other.entries;
        self.bytes += other.bytes;
        self.partial_bytes += other.partial_bytes;
        self.hits += other.hits;
        self.misses += other.misses;
    }

    fn size_change(&self) -> u64 {
        self.bytes.unsigned_abs().saturating_add(self.partial_bytes.unsigned_abs())
    }
}

/// What this process knows between merges.
#[derive(Debug, Default)]
struct Local {
    pending: Pending,
    /// The shared record as of this process's last merge.
    last: LedgerRecord,
    /// Whether a background flush is scheduled (see `BlobCache::start_flusher`).
    flusher: bool,
    /// Bytes reserved by this process's fills in progress (see `reserve.rs`).
    reserved: u64,
    /// Bytes other processes had reserved when this one last looked (see `claims.rs`).
    others_reserved: u64,
    /// Claims whose fills' entries are in `pending`: removed once merged.
    released_claims: Vec<PathBuf>,
    /// Room claimed in advance for small fills (`lease.rs`).
    lease: Lease,
}

/// How a reservation shows to other processes.
#[derive(Debug)]
pub(super) enum Shown {
    /// Through its own claim file (`None`: it could not be written).
    Claim(Option<PathBuf>),
    /// Through this process's lease.
    Leased,
}

/// What [`Ledger::record`] tells its caller to do next.
#[derive(Debug, Clone, Copy)]
pub(super) struct Recorded {
    /// Total bytes as this process sees them: the record of its last merge plus its own
    /// pending changes.
    pub(super) estimate: u64,
    /// Enough has piled up to merge now.
    pub(super) flush_now: bool,
    /// Pending deltas appeared with no flush scheduled: the caller must schedule one.
    pub(super) start_flusher: bool,
}

#[derive(Debug)]
pub(super) struct Ledger {
    // The mutex serialises this process's merges; the flock on the file serialises processes.
    lock_file: Mutex<File>,
    data_path: PathBuf,
    staging_path: PathBuf,
    /// Where a lost record is recounted from.
    obj_dir: PathBuf,
    layout: Layout,
    partial_dir: PathBuf,
    local: Mutex<Local>,
    claims: Claims,
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
        layout: Layout,
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
            layout,
            partial_dir: partial_dir.to_owned(),
            local: Mutex::default(),
            claims: Claims::new(root),
        })
    }

    fn local(&self) -> MutexGuard<'_, Local> {
        // Plain counters, valid after any panic.
        self.local.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves `bytes` for a fill if the cache stays within `max_bytes` with them, counting
    /// the shared record as it is now, this process's changes and reservations and those other
    /// processes claim (`claims.rs`), atomically with respect to all of them; otherwise returns
    /// the total counted. A small fill is served from this process's lease without any of that
    /// while the lease lasts (`lease.rs`).
    pub(super) fn try_reserve(&self, bytes: u64, max_bytes: u64) -> Result<Shown, u64> {
        let leased = bytes <= leased_fill_max(max_bytes);
        if leased && self.draw_lease(bytes) {
            return Ok(Shown::Leased);
        }
        let lock_file = self.lock_file.lock().unwrap_or_else(PoisonError::into_inner);
        // Without the flock (an odd filesystem), claims are still counted, only not atomically.
        let flock = lock_file.lock().map(|()| FlockGuard(&lock_file));
        let shared = self.read().ok().flatten();
        let others = self.claims.others();
        let mut local = self.local();
        if leased && local.lease.draw(bytes) {
            // Grown by another thread while this one waited for the lock.
            local.reserved += bytes;
            return Ok(Shown::Leased);
        }
        let mut before =
            estimate_over(shared.as_ref().unwrap_or(&local.last), &local).saturating_add(others);
        local.others_reserved = others;
        let lease = if leased { lease_bytes(max_bytes) } else { 0 };
        if before.saturating_add(bytes).saturating_add(lease) <= max_bytes {
            local.lease.grow(lease);
        } else if before.saturating_add(bytes) > max_bytes {
            // This process's own unused lease is the first room to give up.
            before = before.saturating_sub(local.lease.give_back());
            if before.saturating_add(bytes) > max_bytes {
                self.show_lease(&mut local);
                return Err(before);
            }
        }
        local.reserved += bytes;
        let shown = if leased {
            local.lease.grow(bytes);
            local.lease.draw(bytes);
            Shown::Leased
        } else {
            Shown::Claim(self.claims.claim(bytes))
        };
        self.show_lease(&mut local);
        drop(local);
        drop(flock);
        Ok(shown)
    }

    /// Hands `bytes` of the lease to a fill, if it has them free.
    fn draw_lease(&self, bytes: u64) -> bool {
        let mut local = self.local();
        let drawn = local.lease.draw(bytes);
        if drawn {
            local.reserved += bytes;
        }
        drawn
    }

    /// Brings the lease's claim file up to date (caller holds the flock).
    fn show_lease(&self, local: &mut Local) {
        let bytes = local.lease.claim_bytes();
        if bytes != local.lease.claimed && self.claims.set_lease(bytes) {
            local.lease.claimed = bytes;
        }
    }

    /// Ends a reservation of `bytes` whose fill failed; returns whether the lease's claim still
    /// shows bytes, so a merge must be scheduled to give them back if they stay unused.
    pub(super) fn unreserve(&self, bytes: u64, leased: bool) -> bool {
        let mut local = self.local();
        local.reserved = local.reserved.saturating_sub(bytes);
        if leased {
            local.lease.failed(bytes);
        }
        let start_flusher = !local.flusher && local.lease.claimed > 0;
        local.flusher |= start_flusher;
        start_flusher
    }

    /// Gives back the unused lease now (the cache is being dropped).
    pub(super) fn end_lease(&self) {
        self.local().lease.give_back();
    }

    /// Whether the lease's claim file still shows bytes (a merge will update it).
    pub(super) fn shows_lease(&self) -> bool {
        self.local().lease.claimed > 0
    }

    /// Bytes reserved by fills in progress: this process's, and other processes' as last seen.
    pub(super) fn reserved(&self) -> u64 {
        let local = self.local();
        local.reserved.saturating_add(local.others_reserved).saturating_add(local.lease.free)
    }

    /// Ends a claim whose fill failed: its bytes are free at once.
    pub(super) fn drop_claim(&self, claim: &Path) {
        claims::remove(claim);
    }

    /// Hands over a claim whose fill's entry was just recorded: it is removed when that entry is
    /// merged into the shared record, so other processes never miss those bytes.
    pub(super) fn release_claim_at_merge(&self, claim: PathBuf) {
        self.local().released_claims.push(claim);
    }

    /// Adds `change` to this process's pending deltas, ending a reservation of `released` bytes
    /// at the same moment (a fill's entry replaces its reservation without a gap or overlap).
    pub(super) fn record(
        &self,
        released: u64,
        leased: bool,
        change: impl FnOnce(&mut Pending),
    ) -> Recorded {
        let mut local = self.local();
        local.reserved = local.reserved.saturating_sub(released);
        if leased {
            local.lease.filled(released);
        }
        change(&mut local.pending);
        let start_flusher = !local.flusher && !local.pending.is_empty();
        local.flusher |= start_flusher;
        Recorded {
            estimate: estimate(&local),
            flush_now: local.pending.size_change() >= FLUSH_BYTES,
            start_flusher,
        }
    }

    pub(super) fn has_pending(&self) -> bool {
        !self.local().pending.is_empty()
    }

    /// The background flusher could not be started.
    pub(super) fn flusher_stopped(&self) {
        self.local().flusher = false;
    }

    /// Called by the background flusher after a merge: whether it may stop because nothing is
    /// pending (if so, the next change schedules a new one).
    pub(super) fn flusher_may_stop(&self) -> bool {
        let mut local = self.local();
        local.flusher = !local.pending.is_empty() || local.lease.claimed > 0;
        !local.flusher
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
                let scanned = scan_entries(&self.obj_dir, self.layout)?;
                let record = LedgerRecord {
                    entries: scanned.len() as u64,
                    bytes: scanned.iter().map(|entry| entry.len).sum(),
                    partial_bytes: scan_partial_bytes(&self.partial_dir),
                    ..LedgerRecord::default()
                };
                (record, true)
            }
        };
        let (pending, released_claims, unmerged) = {
            let mut local = self.local();
            let taken = std::mem::take(&mut local.pending);
            (taken, std::mem::take(&mut local.released_claims), local.lease.take_unmerged())
        };
        pending.apply(&mut record, recounted);
        change(&mut record);

        if let Err(err) = self.write(&record) {
            // The record is an estimate that only saves scans: failing to save it (a full or
            // read-only disk) must not fail the caller, or a full cache could never be opened
            // or pruned again. Put the deltas back so the next successful save includes them.
            warn!(%err, "cannot save cache totals; they are saved with the next change");
            let mut local = self.local();
            local.pending.merge(pending);
            local.released_claims.extend(released_claims);
            local.lease.merge_failed(unmerged);
        } else {
            let mut local = self.local();
            local.last = record;
            local.lease.merged();
            self.show_lease(&mut local);
            drop(local);
            for claim in &released_claims {
                claims::remove(claim);
            }
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

fn estimate(local: &Local) -> u64 {
    estimate_over(&local.last, local)
}

/// What this process counts against the limit on top of the shared `record`.
fn estimate_over(record: &LedgerRecord, local: &Local) -> u64 {
    let pending = &local.pending;
    record
        .total_bytes()
        .saturating_add_signed(pending.bytes)
        .saturating_add_signed(pending.partial_bytes)
        .saturating_add(local.reserved)
        .saturating_add(local.lease.free)
}
