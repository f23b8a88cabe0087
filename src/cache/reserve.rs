//! Room for fills in progress: a fill of known size reserves its bytes before its first byte
//! arrives and holds them until its entry is counted, so fills running together never take the
//! cache past its limit.
//!
//! A reservation is counted by this process at once and by every other process sharing the
//! cache through its claim file (`claims.rs`): `Ledger::try_reserve` checks the shared record
//! as it is now, this process's reservations and changes and the claims of others, and adds its
//! own, all under the ledger's flock; the fill's entry replaces its reservation in one step
//! (`Ledger::record`), its claim once that entry is merged. So the limit holds among the fills
//! of every mount and `get` on the cache. A small fill draws on this process's lease instead
//! (`lease.rs`), which other processes count through the lease's one claim file. The temp file
//! of a fill larger than one write buffer is preallocated to the reserved size, so a full disk
//! fails the fill before any byte is downloaded.
//!
//! A fill that does not fit first evicts; if entries in use, partial files or other fills still
//! hold the room, it waits for them up to [`ROOM_WAIT`], then fails with an error saying so.

use std::fs::File;
use std::io;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::debug;

use super::evict::low_water_bytes;
use super::ledger::Shown;
use super::{BlobCache, CacheError, CacheKey};

/// How long a fill waits for room held by open entries or other fills before it fails: long
/// enough for a neighbouring download of a few GiB to finish, short against the stall window.
pub const ROOM_WAIT: Duration = Duration::from_secs(30);

/// How often a waiting fill looks again, besides being woken when a fill of this process ends
/// (readers closing entries and other processes wake nobody).
const ROOM_POLL: Duration = Duration::from_millis(250);

/// Wakes the fills of this process waiting for room whenever a reservation ends.
#[derive(Debug)]
pub(super) struct Room {
    generation: Mutex<u64>,
    freed: Condvar,
    /// [`ROOM_WAIT`]; tests shorten it.
    pub(super) wait_limit: Duration,
}

impl Room {
    pub(super) fn new(wait_limit: Duration) -> Self {
        Self { generation: Mutex::default(), freed: Condvar::new(), wait_limit }
    }

    fn generation(&self) -> u64 {
        *self.generation.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait(&self, seen: u64, until: Instant) {
        let guard = self.generation.lock().unwrap_or_else(PoisonError::into_inner);
        let timeout = until.saturating_duration_since(Instant::now()).min(ROOM_POLL);
        // A wake-up in between leaves the generation changed, so no wait at all.
        let _ = self
            .freed
            .wait_timeout_while(guard, timeout, |generation| *generation == seen)
            .unwrap_or_else(PoisonError::into_inner);
    }

    pub(super) fn notify(&self) {
        *self.generation.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.freed.notify_all();
    }
}

/// Bytes held for a fill until dropped, which must follow the accounting of its entry.
#[derive(Debug)]
pub(super) struct Reservation<'a> {
    cache: &'a BlobCache,
    bytes: u64,
    /// What other processes see of it (`claims.rs`, `lease.rs`).
    shown: Option<Shown>,
}

impl Reservation<'_> {
    /// Ends the reservation without releasing it here: the caller passes the bytes to
    /// `Ledger::record` with the change that replaces them, then the claim (if any) to
    /// `Ledger::release_claim_at_merge`.
    pub(super) fn into_released(mut self) -> (u64, Option<Shown>) {
        let released = (self.bytes, self.shown.take());
        std::mem::forget(self);
        released
    }
}

impl Drop for Reservation<'_> {
    /// A fill that failed: its bytes are free again.
    fn drop(&mut self) {
        let ledger = &self.cache.inner.ledger;
        let leased = matches!(self.shown, Some(Shown::Leased));
        if ledger.unreserve(self.bytes, leased) {
            self.cache.start_flusher();
        }
        if let Some(Shown::Claim(Some(claim))) = &self.shown {
            ledger.drop_claim(claim);
        }
        self.cache.inner.room.notify();
    }
}

impl BlobCache {
    /// Reserves `bytes` for a fill of `key`, evicting and then waiting for room if needed.
    pub(super) fn reserve(
        &self,
        key: &CacheKey,
        bytes: u64,
    ) -> Result<Reservation<'_>, CacheError> {
        let max_bytes = self.inner.max_bytes;
        if bytes > max_bytes {
            return Err(CacheError::LargerThanCache { key: *key, size: bytes, max_bytes });
        }
        let deadline = Instant::now() + self.inner.room.wait_limit;
        loop {
            let seen = self.inner.room.generation();
            let held = match self.inner.ledger.try_reserve(bytes, max_bytes) {
                Ok(shown) => return Ok(Reservation { cache: self, bytes, shown: Some(shown) }),
                Err(held) => held,
            };
            if self.evict_for(bytes)? {
                continue;
            }
            if Instant::now() >= deadline {
                let waited = self.inner.room.wait_limit;
                return Err(CacheError::NoRoom { key: *key, size: bytes, held, max_bytes, waited });
            }
            debug!(%key, bytes, held, "waiting for room in the cache");
            self.inner.room.wait(seen, deadline);
        }
    }

    /// Evicts unused entries until `bytes` more fit under the limit beside this process's other
    /// reservations (down to the low-water mark if that leaves more room). Returns whether
    /// anything was freed.
    fn evict_for(&self, bytes: u64) -> Result<bool, CacheError> {
        let evict_lock = self.open_evict_lock()?;
        evict_lock
            .lock()
            .map_err(|source| CacheError::io("lock", &self.inner.evict_lock_path, source))?;
        let max_bytes = self.inner.max_bytes;
        let target = low_water_bytes(max_bytes)
            .min(max_bytes - bytes)
            .saturating_sub(self.inner.ledger.reserved());
        let report = self.evict_down_to(target)?;
        Ok(report.evicted_entries > 0)
    }
}

/// Preallocates a temp file to the `bytes` it will hold, keeping its length, so its reservation
/// shows on disk and a full disk fails now. Filesystems without `fallocate` skip this.
pub(super) fn preallocate(file: &File, bytes: u64) -> io::Result<()> {
    use rustix::fs::{FallocateFlags, fallocate};
    match fallocate(file, FallocateFlags::KEEP_SIZE, 0, bytes) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS) => Ok(()),
        Err(errno) => Err(errno.into()),
    }
}
