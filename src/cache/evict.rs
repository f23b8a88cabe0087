//! Eviction: when the cache's running total crosses its limit, one process (holding
//! `evict.lock`) scans the entries and removes the least recently used ones it can take an
//! exclusive flock on (an entry any process has open is never evicted), down to
//! `LOW_WATER_PERCENT` of the limit, after removing partial files no process has open.

use super::*;

impl BlobCache {
    pub(super) fn open_evict_lock(&self) -> Result<File, CacheError> {
        open_or_create(&self.inner.evict_lock_path)
    }

    pub(super) fn evict_if_over_limit(&self, total_bytes: u64) {
        let max_bytes = self.inner.max_bytes;
        if total_bytes <= max_bytes
            || total_bytes <= self.inner.eviction_floor_bytes.load(Ordering::Relaxed)
        {
            return;
        }
        let evicted = self.open_evict_lock().and_then(|evict_lock| match evict_lock.try_lock() {
            Ok(()) => {
                // The total may be this process's estimate, stale if another process evicted
                // since our last merge: the merged record decides whether a scan is needed.
                let merged = self.inner.ledger.update(|_| {})?;
                if merged.total_bytes() <= max_bytes {
                    return Ok(None);
                }
                self.evict_down_to(low_water_bytes(max_bytes)).map(Some)
            }
            // Another thread or process is evicting right now; its scan sees our entry too.
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(source)) => {
                Err(CacheError::io("lock", &self.inner.evict_lock_path, source))
            }
        });
        match evicted {
            Ok(Some(report)) => {
                let floor = if report.remaining_bytes > max_bytes {
                    report.remaining_bytes + (max_bytes - low_water_bytes(max_bytes))
                } else {
                    0
                };
                self.inner.eviction_floor_bytes.store(floor, Ordering::Relaxed);
            }
            Ok(None) => {}
            Err(err) => warn!(%err, "cache eviction failed"),
        }
    }

    /// After a write ran out of disk space: frees room by evicting unused partial files and
    /// least-recently-used entries down to [`LOW_WATER_PERCENT`] of what the cache holds now
    /// (or of the limit, if less), whatever the limit says. The disk may be smaller than the
    /// limit, or shared with other data; without this a full disk would fail every later fill.
    /// Waits for an eviction already running (fills running out of room together would
    /// otherwise give up while another one frees it), then runs its own. Returns whether it ran.
    pub fn make_room(&self) -> bool {
        let evicted = self.open_evict_lock().and_then(|evict_lock| match evict_lock.lock() {
            Ok(()) => {
                let held = self.inner.ledger.update(|_| {})?.total_bytes();
                let target = low_water_bytes(held.min(self.inner.max_bytes));
                self.evict_down_to(target).map(Some)
            }
            Err(source) => Err(CacheError::io("lock", &self.inner.evict_lock_path, source)),
        });
        match evicted {
            Ok(Some(report)) => {
                warn!(
                    evicted = report.evicted_entries,
                    bytes = report.evicted_bytes,
                    "cache disk full: evicted unused partial files and entries"
                );
                true
            }
            Ok(None) => false,
            Err(err) => {
                warn!(%err, "cache disk full, and eviction failed");
                false
            }
        }
    }

    /// Caller holds the evict lock. Scans all entries and evicts in LRU order.
    pub(super) fn evict_down_to(&self, target_bytes: u64) -> Result<PruneReport, CacheError> {
        self.remove_leftovers();
        let freed = partial::remove_unused(&self.inner.partial_dir);
        if freed > 0 {
            debug!(freed, "removed unused partial files");
        }
        if let Some(seals) = &self.inner.seals {
            let orphans = seals.remove_orphans();
            if orphans > 0 {
                debug!(orphans, "removed seals of entries removed outside artfs");
            }
        }
        let before = self.inner.ledger.update(|_| {})?;
        let mut entries = scan_entries(&self.inner.obj_dir, self.inner.layout)?;
        let scanned_entries = entries.len() as u64;
        let scanned_bytes: u64 = entries.iter().map(|entry| entry.len).sum();
        let partial_bytes = partial::scan_partial_bytes(&self.inner.partial_dir);
        entries.sort_unstable_by(|a, b| a.used.cmp(&b.used).then_with(|| a.path.cmp(&b.path)));

        let mut report = PruneReport { partial_bytes, ..PruneReport::default() };
        let (mut gone_entries, mut gone_bytes) = (0, 0);
        // Partial files in use cannot be evicted, but take room that entries must give up.
        let mut remaining_bytes = scanned_bytes + partial_bytes;
        for entry in &entries {
            if remaining_bytes <= target_bytes {
                break;
            }
            match evict_entry(entry, self.inner.layout) {
                Ok(Eviction::Evicted) => {
                    if let Some(seals) = &self.inner.seals {
                        seals.unseal_entry(&entry.path);
                    }
                    report.evicted_entries += 1;
                    report.evicted_bytes += entry.len;
                }
                Ok(Eviction::InUse) => {
                    report.in_use_entries += 1;
                    continue;
                }
                Ok(Eviction::Vanished) => {
                    gone_entries += 1;
                    gone_bytes += entry.len;
                }
                Ok(Eviction::UsedSinceScan) => continue,
                Err(err) => {
                    warn!(path = %entry.path.display(), %err, "cannot evict cache entry");
                    continue;
                }
            }
            remaining_bytes -= entry.len;
        }
        report.remaining_entries = scanned_entries - report.evicted_entries - gone_entries;
        report.remaining_bytes = remaining_bytes;

        // Replace the estimate from before the scan by the scanned truth, keeping whatever
        // other processes recorded while we scanned.
        let dropped_entries = before.entries + report.evicted_entries + gone_entries;
        let dropped_bytes = before.bytes + report.evicted_bytes + gone_bytes;
        self.inner.ledger.update(|record| {
            record.entries = (record.entries + scanned_entries).saturating_sub(dropped_entries);
            record.bytes = (record.bytes + scanned_bytes).saturating_sub(dropped_bytes);
            record.partial_bytes =
                (record.partial_bytes + partial_bytes).saturating_sub(before.partial_bytes);
            record.evictions += report.evicted_entries;
        })?;
        self.inner.counts.evicted(report.evicted_entries);
        debug!(?report, target_bytes, "cache eviction pass");
        Ok(report)
    }

    /// Best effort: failures only leave some garbage for the next pass.
    pub(super) fn remove_leftovers(&self) {
        if let Err(err) = lock::remove_dead_temps(&self.inner.tmp_dir, STALE_TEMP_AGE) {
            warn!(dir = %self.inner.tmp_dir.display(), %err, "cannot clean cache temp files");
        }
    }
}

pub(super) fn low_water_bytes(max_bytes: u64) -> u64 {
    // At most `max_bytes`, so converting back cannot truncate.
    (u128::from(max_bytes) * u128::from(LOW_WATER_PERCENT) / 100) as u64
}

/// One published entry as seen by a scan.
#[derive(Debug)]
pub(super) struct ScannedEntry {
    path: PathBuf,
    pub(super) len: u64,
    /// See [`Layout::last_used`].
    used: SystemTime,
}

/// Every entry under `obj/<kind>/<shard>/`. Entries vanishing mid-scan are skipped.
pub(super) fn scan_entries(
    obj_dir: &Path,
    layout: Layout,
) -> Result<Vec<ScannedEntry>, CacheError> {
    let mut entries = Vec::new();
    for kind_dir in list_dir(obj_dir)? {
        for shard_dir in list_dir(&kind_dir)? {
            for path in list_dir(&shard_dir)? {
                let meta = match fs::symlink_metadata(&path) {
                    Ok(meta) => meta,
                    Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                    Err(source) => return Err(CacheError::io("stat", &path, source)),
                };
                if !meta.is_file() {
                    continue;
                }
                let used = layout
                    .last_used(&meta)
                    .map_err(|source| CacheError::io("stat", &path, source))?;
                entries.push(ScannedEntry { path, len: meta.len(), used });
            }
        }
    }
    Ok(entries)
}

/// Paths in `dir`; empty if `dir` is gone or is not a directory.
fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, CacheError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err)
            if matches!(err.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) =>
        {
            return Ok(Vec::new());
        }
        Err(source) => return Err(CacheError::io("list", dir, source)),
    };
    entries
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()
        .map_err(|source| CacheError::io("list", dir, source))
}

enum Eviction {
    Evicted,
    InUse,
    /// Already deleted by someone else.
    Vanished,
    /// Touched or replaced after the scan, so no longer least recently used.
    UsedSinceScan,
}

fn evict_entry(entry: &ScannedEntry, layout: Layout) -> io::Result<Eviction> {
    let file = match File::open(&entry.path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Eviction::Vanished),
        Err(err) => return Err(err),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(Eviction::InUse),
        Err(TryLockError::Error(err)) => return Err(err),
    }
    let meta = file.metadata()?;
    if meta.nlink() == 0 {
        return Ok(Eviction::Vanished);
    }
    if !lock::names_inode(&entry.path, &file)? || layout.last_used(&meta)? != entry.used {
        return Ok(Eviction::UsedSinceScan);
    }
    // Unlinking while holding the exclusive flock: a reader that opened the entry just before
    // sees nlink == 0 once its shared lock is granted and treats it as a miss.
    fs::remove_file(&entry.path)?;
    Ok(Eviction::Evicted)
}
