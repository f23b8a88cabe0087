//! On-disk, content-addressed blob cache shared by every mount and CLI run on the machine.
//!
//! Invariants: a file under `v1/obj/` is always complete and verified (digest and size), because
//! fills write to `v1/tmp/` (lazily read large files to `v1/partial/`) and rename into place only
//! after verification; a crash leaves at most a temp file, which is removed once its
//! (flock-holding) writer is gone. Every handle to an entry
//! holds a shared flock for as long as it lives, and eviction deletes only entries whose exclusive
//! flock it can take, so an entry in use by any process is never evicted. At most one process and
//! one thread fill a given key at a time (a byte lock in `v1/fill.lock` plus an in-process gate).
//! Recency is the entry's mtime, set on publish and on every hit, so LRU order survives restarts
//! and is shared across processes. The total size is a running estimate in `v1/stats.json`, to
//! which each process adds its changes in batches (see `ledger.rs`); only crossing the limit
//! triggers a scan of the tree, and eviction then goes down to `LOW_WATER_PERCENT` of the limit
//! so scans stay rare.
//!
//! Layout under the cache dir (W&B's own object layout below `obj/`):
//! ```text
//! CACHEDIR.TAG
//! v1/obj/md5/<2 hex>/<30 hex>           MD5 digests
//! v1/obj/xxh128/<2 hex>/<30 hex>        XXH128 digests
//! v1/obj/etag/<2 hex>/<62 hex>          references: sha256(sha256(uri) || sha256(etag))
//! v1/tmp/<kind>-<hex>.<pid>.<seq>.tmp   fills in progress (or left by dead processes)
//! v1/partial/<kind>-<hex>.data, .map    large blobs fetched chunk by chunk (see `partial.rs`)
//! v1/fill.lock                          per-key fill locks: one byte each (see `lock.rs`)
//! v1/stats.json, v1/stats.lock          shared totals and counters (see `ledger.rs`)
//! v1/evict.lock                         one evictor at a time
//! v1/reserved/<pid>-<id>-<id>           fills in progress, for other processes (see `claims.rs`)
//! v1/reserved/<pid>-<id>-lease          room leased for small fills (see `lease.rs`)
//! ```
//! A cache shared with the `wandb` SDK (`~/.cache/wandb/artifacts`; `layout.rs` says how it is
//! recognised) has `obj/` at the top, where the SDK keeps its entries, and everything else of
//! the list above under `artfs-v1/` instead of `v1/`, plus `artfs-v1/sealed/`: which entries
//! artfs has verified, since the SDK's own downloads are trusted only once artfs hashed them.
//! There, entries are writable by their owner and recency is the access time (see `layout.rs`);
//! the SDK takes no flocks, so its cleanup can remove an entry artfs has open, whose handles
//! keep reading the unlinked file.
//! Partially fetched large files live in `v1/partial/`, never under `obj/`. Their allocated bytes
//! count against the limit like entries (a reader touching the headers of many huge files must
//! not push the cache past it): written chunks are added as they land, a published file's bytes
//! move from partial to entry, and every eviction pass first removes the partial files no process
//! has open, then recounts both from the disk.

mod claims;
mod counts;
mod evict;
mod fit;
mod key;
mod layout;
mod lease;
mod ledger;
mod lock;
pub mod partial;
mod reserve;
#[cfg(test)]
mod tests;

pub use counts::CacheCounts;

use std::collections::HashSet;
use std::error::Error as StdError;
use std::fs::{self, File, OpenOptions, Permissions, TryLockError};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{FileExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tracing::{debug, warn};

pub use fit::{free_bytes, same_filesystem};
pub(crate) use key::DigestState;
use key::Digester;
pub use key::{CacheKey, Verify};
use layout::Seals;
pub use layout::{Layout, sdk_cache_dir};
use ledger::{Ledger, Pending};
use lock::{KeyLock, TempBlob};
pub use partial::PartialFile;
use partial::signed;
pub use reserve::ROOM_WAIT;
use reserve::{Reservation, Room};

/// Directory under the cache dir holding this on-disk format; bump it when the layout changes.
pub const LAYOUT_VERSION: &str = "v1";

/// Size limit used when the user sets none: large enough for typical datasets, small enough not
/// to surprise on a laptop.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024 * 1024;

/// The smallest default limit, so a nearly full disk still caches something.
const MIN_DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// The limit used when the user sets none: `DEFAULT_MAX_BYTES`, or half the space still free on
/// the cache's disk if that is less, so the cache never fills the disk it lives on.
pub fn default_max_bytes(dir: &Path) -> u64 {
    // The cache dir may not exist yet: `free_bytes` asks about its nearest existing ancestor.
    match free_bytes(dir) {
        Some(free) => (free / 2).clamp(MIN_DEFAULT_MAX_BYTES, DEFAULT_MAX_BYTES),
        None => DEFAULT_MAX_BYTES,
    }
}

/// Eviction frees space down to this share of the limit, so the next few fills do not rescan.
const LOW_WATER_PERCENT: u64 = 90;

/// Temp files younger than this are never treated as abandoned (see `lock::remove_dead_temps`).
const STALE_TEMP_AGE: Duration = Duration::from_secs(60);

/// Buffer between the fetch closure and the temp file; fetchers often write small chunks.
const FILL_BUFFER_BYTES: usize = 256 * 1024;

/// Read size when hashing a complete partial file before adopting it.
const VERIFY_BUFFER_BYTES: usize = 1 << 20;

/// An entry used within this long is not marked as used again (see `lookup`).
const USED_RECENTLY: Duration = Duration::from_secs(2);

/// Standard marker telling backup and indexing tools to skip the directory.
const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by artfs.\n";

/// Error type of the fetch closure passed to [`BlobCache::get_or_fill`].
pub type FetchError = Box<dyn StdError + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no space left on device while caching {key} in {}", path.display())]
    DiskFull {
        key: CacheKey,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("fetching {key} failed")]
    Fetch {
        key: CacheKey,
        #[source]
        source: FetchError,
    },
    #[error("{key}: digest mismatch, expected {expected}, got {actual}")]
    DigestMismatch { key: CacheKey, expected: String, actual: String },
    #[error("{key}: size mismatch, expected {expected} bytes, got {actual}")]
    SizeMismatch { key: CacheKey, expected: u64, actual: u64 },
    #[error("invalid {kind} digest {digest:?}: not base64")]
    DigestEncoding {
        kind: &'static str,
        digest: String,
        #[source]
        source: base64::DecodeError,
    },
    #[error("invalid {kind} digest {digest:?}: {len} bytes instead of 16")]
    DigestLength { kind: &'static str, digest: String, len: usize },
    #[error("cannot encode cache ledger {}", path.display())]
    Ledger {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{key}: {size} bytes do not fit in the cache, whose limit is {max_bytes} bytes; \
         raise it with --cache-size"
    )]
    LargerThanCache { key: CacheKey, size: u64, max_bytes: u64 },
    #[error(
        "{key}: no room for {size} bytes in the cache after waiting {waited:?}: open files and \
         downloads in progress hold {held} of its {max_bytes} bytes; retry once they are done, \
         or raise the limit with --cache-size"
    )]
    NoRoom { key: CacheKey, size: u64, held: u64, max_bytes: u64, waited: Duration },
}

impl CacheError {
    fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        Self::Io { action, path: path.to_owned(), source }
    }

    /// Like [`CacheError::io`] for steps of a fill, where running out of space deserves its own
    /// message.
    fn fill_io(key: &CacheKey, action: &'static str, path: &Path, source: io::Error) -> Self {
        if is_disk_full(&source) {
            Self::DiskFull { key: *key, path: path.to_owned(), source }
        } else {
            Self::io(action, path, source)
        }
    }
}

/// Whether an I/O error means the cache's disk (or quota) is full.
pub fn is_disk_full(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
}

/// A cached entry, open and protected from eviction (shared flock) until dropped.
#[derive(Debug)]
pub struct CachedBlob {
    file: File,
    path: PathBuf,
    len: u64,
    /// Whether this call filled the entry, rather than finding it.
    filled: bool,
}

impl CachedBlob {
    /// Handle on the entry: a hit's read-only one, or the fill's own (read-write, its position
    /// at the end). Read it positionally ([`CachedBlob::read_at`]); never write through it.
    pub fn file(&self) -> &File {
        &self.file
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the call that returned this blob fetched it (a miss), not found it cached.
    pub fn was_filled(&self) -> bool {
        self.filled
    }

    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheStats {
    pub dir: PathBuf,
    pub max_bytes: u64,
    /// Estimated entry count and total size (exact after any prune or eviction scan). The size
    /// is what counts against `max_bytes`: the entries plus the partially fetched large files.
    pub entries: u64,
    pub bytes: u64,
    /// Of `bytes`, those allocated to partially fetched files.
    pub partial_bytes: u64,
    pub layout: Layout,
    /// Lookups answered from the cache / that had to fetch, summed over all processes.
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PruneReport {
    pub evicted_entries: u64,
    pub evicted_bytes: u64,
    /// Entries that would have been evicted but are open somewhere.
    pub in_use_entries: u64,
    pub remaining_entries: u64,
    /// Bytes left under the limit: entries and the partial files still in use.
    pub remaining_bytes: u64,
    /// Of `remaining_bytes`, those of partial files (in use, so never evicted).
    pub partial_bytes: u64,
}

/// Handle to a cache directory; cheap to clone, usable from any thread.
#[derive(Clone, Debug)]
pub struct BlobCache {
    inner: Arc<CacheInner>,
}

#[derive(Debug)]
struct CacheInner {
    dir: PathBuf,
    layout: Layout,
    /// The directory holding `obj/` (the cache dir itself in the shared layout).
    entry_root: PathBuf,
    obj_dir: PathBuf,
    /// In the shared layout, which entries artfs has verified.
    seals: Option<Seals>,
    tmp_dir: PathBuf,
    fill_lock_path: PathBuf,
    partial_dir: PathBuf,
    evict_lock_path: PathBuf,
    max_bytes: u64,
    ledger: Ledger,
    fill_gate: FillGate,
    /// While every evictable entry is in use, eviction waits for the total to grow past this
    /// instead of rescanning on every fill.
    eviction_floor_bytes: AtomicU64,
    room: Room,
    counts: counts::ProcessCounts,
}

impl Drop for CacheInner {
    fn drop(&mut self) {
        self.ledger.end_lease();
        if (self.ledger.has_pending() || self.ledger.shows_lease())
            && let Err(err) = self.ledger.update(|_| {})
        {
            warn!(%err, "cannot save cache counts");
        }
    }
}

/// How [`BlobCache::adopt`] made a partial file's content an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adopted {
    /// The data file itself became the entry.
    Renamed,
    /// The data file had lost its name, so its content was copied into a new entry.
    Copied,
    /// Another handle or process had published it already; the partial files were dropped.
    AlreadyCached,
}

enum Lookup {
    Hit(CachedBlob),
    Missing,
    /// Present but not the expected size (e.g. truncated by a power loss before writeback).
    WrongSize,
    /// A shared-layout entry artfs has not verified yet, reported as such when the caller does
    /// not want it hashed now.
    Unsealed,
    /// A shared-layout entry that failed verification (its size): never served, and removed
    /// before it is filled again, so that the SDK does not keep using it either.
    Corrupt(u64),
}

impl BlobCache {
    /// Opens (creating if needed) the cache in `dir`, cleaning up after dead processes and
    /// evicting if the cache is over `max_bytes`. The layout is the one `dir` has, or, for a new
    /// directory, the W&B SDK's if `dir` is where the SDK keeps its cache (see `layout.rs`).
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, CacheError> {
        let sdk_dir = sdk_cache_dir(|name| std::env::var_os(name), dirs::cache_dir());
        Self::open_as(dir, max_bytes, Layout::detect(dir, sdk_dir.as_deref()))
    }

    /// Like [`BlobCache::open`] with the layout given.
    pub fn open_as(dir: &Path, max_bytes: u64, layout: Layout) -> Result<Self, CacheError> {
        Self::open_waiting(dir, max_bytes, layout, ROOM_WAIT)
    }

    /// Like [`BlobCache::open_as`], with fills waiting at most `room_wait` for room.
    pub(crate) fn open_waiting(
        dir: &Path,
        max_bytes: u64,
        layout: Layout,
        room_wait: Duration,
    ) -> Result<Self, CacheError> {
        let (entry_root, root) = layout.roots(dir);
        let obj_dir = entry_root.join("obj");
        let tmp_dir = root.join("tmp");
        let partial_dir = root.join("partial");
        for path in [&obj_dir, &tmp_dir, &partial_dir] {
            fs::create_dir_all(path).map_err(|source| CacheError::io("create", path, source))?;
        }
        write_cachedir_tag(dir);
        let ledger = Ledger::open(&root, &obj_dir, &partial_dir, layout)?;
        let seals = (layout == Layout::Wandb).then(|| Seals::new(&root, &obj_dir));
        let cache = Self {
            inner: Arc::new(CacheInner {
                dir: dir.to_owned(),
                layout,
                entry_root,
                evict_lock_path: root.join("evict.lock"),
                fill_lock_path: root.join("fill.lock"),
                obj_dir,
                seals,
                tmp_dir,
                partial_dir,
                max_bytes,
                ledger,
                fill_gate: FillGate::default(),
                eviction_floor_bytes: AtomicU64::new(0),
                room: Room::new(room_wait),
                counts: counts::ProcessCounts::default(),
            }),
        };
        cache.remove_leftovers();
        let record = cache.inner.ledger.update(|_| {})?;
        cache.evict_if_over_limit(record.total_bytes());
        Ok(cache)
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn max_bytes(&self) -> u64 {
        self.inner.max_bytes
    }

    pub fn layout(&self) -> Layout {
        self.inner.layout
    }

    /// The most a set of entries meant to stay cached together may hold: what eviction leaves
    /// once the limit is crossed (a larger set would evict its own first entries).
    pub fn keep_bytes(&self) -> u64 {
        self.inner.max_bytes / 100 * LOW_WATER_PERCENT
    }

    /// Where the entry for `key` lives (whether or not it is present).
    pub fn entry_path(&self, key: &CacheKey) -> PathBuf {
        self.inner.entry_root.join(key.relative_path())
    }

    /// The partial files of a blob of `size` bytes in `chunks` chunks, created if absent. Held
    /// open, they are never removed by eviction; their allocated bytes count against the limit.
    pub fn partial(
        &self,
        key: &CacheKey,
        size: u64,
        chunks: usize,
    ) -> Result<PartialFile, CacheError> {
        PartialFile::open(self, key, size, chunks)
    }

    /// The entry for `key` if present (and, in the shared layout, verified); counts a hit or a
    /// miss. I/O errors other than absence are logged and reported as a miss, since the caller
    /// can always fetch instead.
    pub fn get(&self, key: &CacheKey) -> Option<CachedBlob> {
        match self.lookup(key, None, true) {
            Ok(Lookup::Hit(blob)) => {
                self.count_hit();
                Some(blob)
            }
            Ok(Lookup::Missing | Lookup::WrongSize | Lookup::Unsealed | Lookup::Corrupt(_)) => {
                self.count_miss();
                None
            }
            Err(err) => {
                warn!(%key, %err, "cache lookup failed");
                self.count_miss();
                None
            }
        }
    }

    /// The entry of `key` if it is here, `size` bytes long (when given) and known verified,
    /// counted as a hit; `None` otherwise, counting nothing: the caller goes on to
    /// [`BlobCache::get_or_fill`], which counts the miss (and hashes an unsealed shared entry).
    pub fn find(&self, key: &CacheKey, size: Option<u64>) -> Option<CachedBlob> {
        match self.lookup(key, size, false) {
            Ok(Lookup::Hit(blob)) => {
                self.count_hit();
                Some(blob)
            }
            Ok(_) => None,
            Err(err) => {
                debug!(%key, %err, "cache lookup failed; fetching");
                None
            }
        }
    }

    /// The entry for `key`, fetching it first if absent (or not `size` bytes long). `fetch` writes
    /// the content; it runs at most once per key at a time across all threads and processes, and
    /// its output is published only if it passes `verify` and `size`. Counts a hit if no fetch was
    /// needed (including after waiting for another filler), a miss otherwise. In the shared
    /// layout, an entry artfs has not verified (the SDK's download) is hashed first, under the
    /// key's lock, and one that fails is replaced.
    pub fn get_or_fill<F>(
        &self,
        key: &CacheKey,
        verify: &Verify,
        size: Option<u64>,
        fetch: F,
    ) -> Result<CachedBlob, CacheError>
    where
        F: FnOnce(&mut dyn Write) -> Result<(), FetchError>,
    {
        if let Lookup::Hit(blob) = self.lookup(key, size, false)? {
            self.count_hit();
            return Ok(blob);
        }
        let (gate_pass, key_lock) = self.lock_key(key)?;
        let replacing = match self.lookup(key, size, true)? {
            Lookup::Hit(blob) => {
                self.count_hit();
                return Ok(blob);
            }
            other => self.replaced_len(key, size, other),
        };
        self.count_miss();
        let reservation = size.map(|size| self.reserve(key, size)).transpose()?;
        let blob = self.fill(key, verify, size, fetch)?;
        // Waiters may proceed as soon as the entry is visible; accounting can follow.
        drop(key_lock);
        drop(gate_pass);
        self.record_fill(blob.len, replacing, 0, reservation);
        Ok(blob)
    }

    /// Makes a complete partial file the entry of its key without copying it: checks the data
    /// file against `verify` and its size, then renames it into `obj/` and drops the chunk map.
    /// Runs under the same per-key exclusion as [`BlobCache::get_or_fill`]. If the entry exists
    /// already, it is kept and the partial files are dropped. On a digest or size mismatch
    /// nothing is published and the partial files are dropped too (the chunks matched their
    /// sidecar, so fetching them again would give the same bytes). Counts a hit or a miss like a
    /// fill. Handles on `partial` keep working throughout: they read the same inode.
    pub fn adopt(&self, partial: &PartialFile, verify: &Verify) -> Result<Adopted, CacheError> {
        let key = partial.key();
        let (gate_pass, key_lock) = self.lock_key(key)?;
        let replacing = match self.lookup(key, Some(partial.len()), true)? {
            Lookup::Hit(_) => {
                self.count_hit();
                let freed = partial.remove_names();
                drop(key_lock);
                drop(gate_pass);
                self.record_partial_bytes(-signed(freed));
                return Ok(Adopted::AlreadyCached);
            }
            other => self.replaced_len(key, Some(partial.len()), other),
        };
        self.count_miss();
        // Bytes that move from partial files to entries: the data file's, if it is renamed.
        let (adopted, mut moved) = if partial.is_named()? {
            match self.rename_partial(partial, verify) {
                Ok(allocated) => (Ok((Adopted::Renamed, None)), allocated),
                Err(err) => (Err(err), 0),
            }
        } else {
            // Our data file lost its name (another holder published it and that entry has been
            // evicted since, or someone cleared the directory): its bytes are still good to copy.
            let copied = self.reserve(key, partial.len()).and_then(|reservation| {
                let blob =
                    self.fill(key, verify, Some(partial.len()), |out| copy_partial(partial, out))?;
                Ok((blob, reservation))
            });
            (copied.map(|copy| (Adopted::Copied, Some(copy.1))), 0)
        };
        match &adopted {
            Ok(_) | Err(CacheError::DigestMismatch { .. } | CacheError::SizeMismatch { .. }) => {
                moved += partial.remove_names();
            }
            // Leave the partial files for a later attempt (or eviction, once unused).
            Err(_) => {}
        }
        drop(key_lock);
        drop(gate_pass);
        match adopted {
            Ok((adopted, reservation)) => {
                self.record_fill(partial.len(), replacing, moved, reservation);
                Ok(adopted)
            }
            Err(err) => {
                self.record_partial_bytes(-signed(moved));
                Err(err)
            }
        }
    }

    /// Current totals (estimates, see [`CacheStats`]) and hit/miss counts of all processes.
    pub fn stats(&self) -> Result<CacheStats, CacheError> {
        let record = self.inner.ledger.update(|_| {})?;
        Ok(CacheStats {
            dir: self.inner.dir.clone(),
            max_bytes: self.inner.max_bytes,
            entries: record.entries,
            bytes: record.total_bytes(),
            partial_bytes: record.partial_bytes,
            layout: self.inner.layout,
            hits: record.hits,
            misses: record.misses,
            evictions: record.evictions,
        })
    }

    /// Evicts least-recently-used entries not in use until at most `to_bytes` remain, waiting for
    /// any concurrent eviction to finish first. Also removes leftovers of dead processes.
    pub fn prune(&self, to_bytes: u64) -> Result<PruneReport, CacheError> {
        let evict_lock = self.open_evict_lock()?;
        evict_lock
            .lock()
            .map_err(|source| CacheError::io("lock", &self.inner.evict_lock_path, source))?;
        self.evict_down_to(to_bytes)
    }

    /// Evicts every entry not in use.
    pub fn clear(&self) -> Result<PruneReport, CacheError> {
        self.prune(0)
    }

    // Lookups change no size, so they never trigger eviction (they may run under a key lock).
    fn count_hit(&self) {
        self.inner.counts.hit();
        self.record_only(|pending| pending.hits += 1);
    }

    fn count_miss(&self) {
        self.inner.counts.miss();
        self.record_only(|pending| pending.misses += 1);
    }

    /// Hits, misses and evictions of this process's handles since it opened the cache.
    pub fn process_counts(&self) -> CacheCounts {
        self.inner.counts.snapshot()
    }

    /// Adds a size change to this process's pending deltas (see `ledger.rs`), then merges them
    /// if enough piled up, or evicts if the estimate says the cache is over its limit.
    fn record(&self, change: impl FnOnce(&mut Pending)) {
        self.record_releasing(None, change);
    }

    /// [`BlobCache::record`], ending `reservation` in the same step.
    fn record_releasing(
        &self,
        reservation: Option<Reservation>,
        change: impl FnOnce(&mut Pending),
    ) {
        let (released, shown) = reservation.map_or((0, None), Reservation::into_released);
        let leased = matches!(shown, Some(ledger::Shown::Leased));
        let recorded = self.inner.ledger.record(released, leased, change);
        if let Some(ledger::Shown::Claim(Some(claim))) = shown {
            self.inner.ledger.release_claim_at_merge(claim);
        }
        if released > 0 {
            self.inner.room.notify();
        }
        if recorded.start_flusher {
            self.start_flusher();
        }
        if recorded.flush_now {
            self.flush();
        } else {
            self.evict_if_over_limit(recorded.estimate);
        }
    }

    fn record_only(&self, change: impl FnOnce(&mut Pending)) -> ledger::Recorded {
        let recorded = self.inner.ledger.record(0, false, change);
        if recorded.start_flusher {
            self.start_flusher();
        }
        recorded
    }

    /// Merges this process's pending deltas into the shared ledger now (they are merged about
    /// once a second anyway, and on drop), and evicts if that shows the cache over its limit.
    pub fn flush(&self) {
        match self.inner.ledger.update(|_| {}) {
            Ok(record) => self.evict_if_over_limit(record.total_bytes()),
            Err(err) => warn!(%err, "cannot save cache counts"),
        }
    }

    /// Merges pending deltas within `ledger::FLUSH_INTERVAL` even if this process goes quiet (a
    /// mount between reads), so other processes see them. The thread holds only a weak handle:
    /// it ends once nothing is pending or the cache is dropped (whose drop merges the rest).
    fn start_flusher(&self) {
        let cache = Arc::downgrade(&self.inner);
        let spawned =
            std::thread::Builder::new().name("artfs-cache-ledger".into()).spawn(move || {
                loop {
                    std::thread::sleep(ledger::FLUSH_INTERVAL);
                    let Some(inner) = cache.upgrade() else { return };
                    let cache = BlobCache { inner };
                    cache.flush();
                    if cache.inner.ledger.flusher_may_stop() {
                        return;
                    }
                }
            });
        if let Err(err) = spawned {
            // The deltas stay pending until a merge for another reason; a later change retries.
            warn!(%err, "cannot start the cache ledger thread");
            self.inner.ledger.flusher_stopped();
        }
    }

    /// The entry of `key` as found on disk. In the shared layout an entry without a matching
    /// seal is hashed if `hash_unsealed` (and sealed if it passes), else reported `Unsealed`.
    fn lookup(
        &self,
        key: &CacheKey,
        expected_len: Option<u64>,
        hash_unsealed: bool,
    ) -> Result<Lookup, CacheError> {
        let path = self.entry_path(key);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Lookup::Missing),
            Err(source) => return Err(CacheError::io("open", &path, source)),
        };
        // Blocks only while an evictor holds the exclusive flock, i.e. for one unlink.
        file.lock_shared().map_err(|source| CacheError::io("lock", &path, source))?;
        let meta = file.metadata().map_err(|source| CacheError::io("stat", &path, source))?;
        if meta.nlink() == 0 {
            // Evicted between our open and our lock.
            return Ok(Lookup::Missing);
        }
        if expected_len.is_some_and(|expected| expected != meta.len()) {
            return Ok(Lookup::WrongSize);
        }
        if let Some(seals) = &self.inner.seals
            && !seals.holds(key, &meta)
        {
            if !hash_unsealed {
                return Ok(Lookup::Unsealed);
            }
            match verify_file(key, &file, &path, &key.default_verify(), meta.len()) {
                Ok(()) => {
                    debug!(%key, path = %path.display(), "verified a cache entry artfs did not write");
                    if let Err(err) = seals.seal(key, &meta, &self.inner.tmp_dir) {
                        warn!(%key, %err, "cannot record that a cache entry was verified");
                    }
                }
                Err(
                    err @ (CacheError::DigestMismatch { .. } | CacheError::SizeMismatch { .. }),
                ) => {
                    warn!(path = %path.display(), %err, "cache entry written outside artfs is corrupt; fetching it again");
                    return Ok(Lookup::Corrupt(meta.len()));
                }
                Err(err) => return Err(err),
            }
        }
        // An entry used moments ago keeps its time: eviction order is not finer than that, and
        // a data loader's epoch would otherwise pay a `utimensat` per file it just fetched.
        let recent = self.inner.layout.last_used(&meta).is_ok_and(|used| {
            SystemTime::now().duration_since(used).is_ok_and(|age| age < USED_RECENTLY)
        });
        if !recent && let Err(err) = self.inner.layout.mark_used(&file) {
            // Only LRU precision suffers (e.g. a cache dir shared with another user).
            debug!(path = %path.display(), %err, "cannot mark cache entry as used");
        }
        Ok(Lookup::Hit(CachedBlob { file, path, len: meta.len(), filled: false }))
    }

    /// For a fill about to (re)place the entry of `key` after a `lookup` that was not a hit: the
    /// size of the entry it replaces, for the running total (caller holds the key's lock).
    fn replaced_len(&self, key: &CacheKey, size: Option<u64>, lookup: Lookup) -> Option<u64> {
        match lookup {
            // (Unsealed is not reported when asking to hash; a fill would replace it anyway.)
            Lookup::Hit(_) | Lookup::Missing | Lookup::Unsealed => None,
            Lookup::WrongSize => {
                let path = self.entry_path(key);
                warn!(%key, path = %path.display(), ?size, "cache entry has the wrong size");
                fs::symlink_metadata(&path).ok().map(|meta| meta.len())
            }
            Lookup::Corrupt(len) => {
                self.remove_corrupt(key);
                Some(len)
            }
        }
    }

    /// Removes the corrupt shared-layout entry of `key` (caller holds the key's lock). A fill
    /// would replace it, but might fail, and the SDK must not go on reading it meanwhile.
    fn remove_corrupt(&self, key: &CacheKey) {
        let path = self.entry_path(key);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => warn!(path = %path.display(), %err, "cannot remove corrupt cache entry"),
        }
    }

    /// Records that the just-published entry `file` of `key` is verified (shared layout only).
    fn seal(&self, key: &CacheKey, file: &File) {
        let Some(seals) = &self.inner.seals else { return };
        let sealed = file.metadata().and_then(|meta| seals.seal(key, &meta, &self.inner.tmp_dir));
        if let Err(err) = sealed {
            // The next open hashes the entry once more; nothing unverified is served.
            warn!(%key, %err, "cannot record that a cache entry was verified");
        }
    }

    fn fill<F>(
        &self,
        key: &CacheKey,
        verify: &Verify,
        size: Option<u64>,
        fetch: F,
    ) -> Result<CachedBlob, CacheError>
    where
        F: FnOnce(&mut dyn Write) -> Result<(), FetchError>,
    {
        let stem = format!("{}-{}", key.kind(), key.hex());
        let temp = TempBlob::create(&self.inner.tmp_dir, &stem).map_err(|source| {
            CacheError::fill_io(key, "create temp file in", &self.inner.tmp_dir, source)
        })?;
        // A small entry is written in one go, so a full disk fails its one write as early.
        if let Some(size) = size.filter(|&size| size > FILL_BUFFER_BYTES as u64) {
            reserve::preallocate(&temp.file, size)
                .map_err(|source| CacheError::fill_io(key, "allocate", temp.path(), source))?;
        }
        let buffer = size.map_or(FILL_BUFFER_BYTES, |size| {
            usize::try_from(size).unwrap_or(usize::MAX).clamp(4096, FILL_BUFFER_BYTES)
        });
        let mut writer =
            FillWriter::new(BufWriter::with_capacity(buffer, &temp.file), verify, size);
        let fetched = fetch(&mut writer);
        let flushed = writer.flush();
        // A full disk usually surfaces through the fetcher as a generic write error.
        if let Some(source) = writer.disk_full.take() {
            return Err(CacheError::DiskFull {
                key: *key,
                path: temp.path().to_path_buf(),
                source,
            });
        }
        fetched.map_err(|source| CacheError::Fetch { key: *key, source })?;
        flushed.map_err(|source| CacheError::fill_io(key, "write", temp.path(), source))?;
        let (written, digest) = writer.finish();

        if let Some(expected) = size
            && expected != written
        {
            return Err(CacheError::SizeMismatch { key: *key, expected, actual: written });
        }
        digest.finish().map_err(|(expected, actual)| CacheError::DigestMismatch {
            key: *key,
            expected,
            actual,
        })?;

        // (Its mtime, the LRU clock, is the last write's: now.)
        temp.file
            .set_permissions(Permissions::from_mode(self.inner.layout.entry_mode()))
            .map_err(|source| CacheError::io("finish", temp.path(), source))?;
        let path = self.entry_path(key);
        // The fill's own handle is handed out: it reads the same inode as a hit's, and its
        // shared flock already protects the entry.
        let file =
            temp.publish(&path).map_err(|source| CacheError::io("publish", &path, source))?;
        self.seal(key, &file);
        debug!(%key, bytes = written, "cache entry published");
        Ok(CachedBlob { file, path, len: written, filled: true })
    }

    /// Caller holds the key's fill lock and has checked that `partial` is still named. Returns
    /// the allocated bytes of the data file, which now count as an entry.
    fn rename_partial(&self, partial: &PartialFile, verify: &Verify) -> Result<u64, CacheError> {
        let key = partial.key();
        let (file, from) = (partial.data(), partial.data_path());
        verify_file(key, file, from, verify, partial.len())?;
        let allocated = partial.allocated_bytes()?;
        file.set_modified(SystemTime::now())
            .map_err(|source| CacheError::io("finish", from, source))?;
        let path = self.entry_path(key);
        lock::rename_creating_parent(from, &path)
            .map_err(|source| CacheError::io("publish", &path, source))?;
        // Only after the rename: a process opening the partial file for writing just before
        // must not fail on a read-only mode. A crash in between leaves a verified entry that is
        // merely writable.
        if let Err(err) =
            file.set_permissions(Permissions::from_mode(self.inner.layout.entry_mode()))
        {
            warn!(path = %path.display(), %err, "cannot set the mode of a cache entry");
        }
        self.seal(key, file);
        debug!(%key, bytes = partial.len(), "partial file published as cache entry");
        Ok(allocated)
    }

    /// Accounts a new entry of `len` bytes, replacing one of `replacing` bytes if any, made of
    /// partial files that took `from_partial` bytes, in place of its `reservation`.
    fn record_fill(
        &self,
        len: u64,
        replacing: Option<u64>,
        from_partial: u64,
        reservation: Option<Reservation>,
    ) {
        self.record_releasing(reservation, |pending| {
            pending.bytes += signed(len) - signed(replacing.unwrap_or(0));
            pending.partial_bytes -= signed(from_partial);
            if replacing.is_none() {
                pending.entries += 1;
            }
        });
    }

    /// Accounts partial files growing (or shrinking) by `delta` allocated bytes.
    fn record_partial_bytes(&self, delta: i64) {
        if delta != 0 {
            self.record(|pending| pending.partial_bytes += delta);
        }
    }

    /// The right to fill `key`: first among this process's threads, then among processes.
    fn lock_key(&self, key: &CacheKey) -> Result<(FillGatePass<'_>, KeyLock), CacheError> {
        let gate_pass = self.inner.fill_gate.enter(*key);
        let path = &self.inner.fill_lock_path;
        let key_lock = KeyLock::acquire(path, key.lock_offset())
            .map_err(|source| CacheError::io("lock", path, source))?;
        Ok((gate_pass, key_lock))
    }
}

/// Checks that `file` is `size` bytes long and passes `verify`.
fn verify_file(
    key: &CacheKey,
    file: &File,
    path: &Path,
    verify: &Verify,
    size: u64,
) -> Result<(), CacheError> {
    let len = file.metadata().map_err(|source| CacheError::io("stat", path, source))?.len();
    if len != size {
        return Err(CacheError::SizeMismatch { key: *key, expected: size, actual: len });
    }
    let mut digest = DigestState::new(verify);
    if !matches!(verify, Verify::SizeOnly) {
        let mut buf = vec![0u8; VERIFY_BUFFER_BYTES];
        let mut offset = 0;
        while offset < len {
            // At most the buffer's length, a usize.
            let want = (len - offset).min(buf.len() as u64) as usize;
            let n = file
                .read_at(&mut buf[..want], offset)
                .map_err(|source| CacheError::io("read", path, source))?;
            if n == 0 {
                return Err(CacheError::SizeMismatch { key: *key, expected: size, actual: offset });
            }
            digest.update(&buf[..n]);
            offset += n as u64;
        }
    }
    digest.finish().map_err(|(expected, actual)| CacheError::DigestMismatch {
        key: *key,
        expected,
        actual,
    })
}

/// Writes the content of a complete partial file to `out`.
fn copy_partial(partial: &PartialFile, out: &mut dyn Write) -> Result<(), FetchError> {
    let mut buf = vec![0u8; VERIFY_BUFFER_BYTES];
    let mut offset = 0;
    while offset < partial.len() {
        // At most the buffer's length, a usize.
        let n = (partial.len() - offset).min(buf.len() as u64) as usize;
        partial.read_exact_at(&mut buf[..n], offset)?;
        out.write_all(&buf[..n])?;
        offset += n as u64;
    }
    Ok(())
}

/// Opens `path` for reading and writing, creating it empty if absent (lock and partial files).
fn open_or_create(path: &Path) -> Result<File, CacheError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| CacheError::io("open", path, source))
}

fn write_cachedir_tag(dir: &Path) {
    let path = dir.join("CACHEDIR.TAG");
    let created = OpenOptions::new().write(true).create_new(true).open(&path);
    match created.and_then(|mut file| file.write_all(CACHEDIR_TAG.as_bytes())) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
        Err(err) => debug!(path = %path.display(), %err, "cannot write CACHEDIR.TAG"),
    }
}

/// Serialises fills of the same key among this process's threads, so they wait on a condvar
/// instead of each holding a descriptor blocked on the key's byte of the fill-lock file.
#[derive(Debug, Default)]
struct FillGate {
    filling: Mutex<HashSet<CacheKey>>,
    fill_done: Condvar,
}

struct FillGatePass<'a> {
    gate: &'a FillGate,
    key: CacheKey,
}

impl FillGate {
    fn enter(&self, key: CacheKey) -> FillGatePass<'_> {
        // The set is valid after any panic (single insert/remove), so poisoning is ignored.
        let mut filling = self.filling.lock().unwrap_or_else(PoisonError::into_inner);
        while filling.contains(&key) {
            filling = self.fill_done.wait(filling).unwrap_or_else(PoisonError::into_inner);
        }
        filling.insert(key);
        FillGatePass { gate: self, key }
    }
}

impl Drop for FillGatePass<'_> {
    fn drop(&mut self) {
        self.gate.filling.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.key);
        self.gate.fill_done.notify_all();
    }
}

/// What the fetch closure writes into: counts and hashes the bytes, and remembers a full disk.
struct FillWriter<W> {
    sink: W,
    digest: Digester,
    written: u64,
    disk_full: Option<io::Error>,
}

impl<W: Write> FillWriter<W> {
    fn new(sink: W, verify: &Verify, size: Option<u64>) -> Self {
        Self { sink, digest: Digester::new(verify, size), written: 0, disk_full: None }
    }

    fn finish(self) -> (u64, DigestState) {
        (self.written, self.digest.finish())
    }

    fn note<T>(&mut self, result: io::Result<T>) -> io::Result<T> {
        if let Err(err) = &result
            && is_disk_full(err)
            && self.disk_full.is_none()
        {
            self.disk_full = Some(io::Error::new(err.kind(), err.to_string()));
        }
        result
    }
}

impl<W: Write> Write for FillWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // At most one buffer's worth per call: a `BufWriter` passes larger writes straight to
        // the file, and a multi-MiB write into fresh page cache costs several times the system
        // CPU of the same bytes in 256 KiB writes (large folios faulted on first touch; see
        // BENCHMARKS "Speed, round 2"). `write_all` loops over short writes.
        let buf = &buf[..buf.len().min(FILL_BUFFER_BYTES)];
        let result = self.sink.write(buf);
        let written = self.note(result)?;
        self.digest.update(&buf[..written]);
        self.written += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        let result = self.sink.flush();
        self.note(result)
    }
}
