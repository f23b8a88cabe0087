//! Whether an entry can be cached at all, and how much room a disk has left: the mount streams
//! entries the cache cannot hold (`fetch::stream`), and `artfs get` checks before it writes.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use super::BlobCache;

/// Bytes an unprivileged writer may still use on the filesystem of `path` (of its nearest
/// existing ancestor, for a folder not made yet); `None` if that cannot be told: no answer, or
/// a filesystem that reports no size at all (`/proc`, some FUSE and network filesystems).
pub fn free_bytes(path: &Path) -> Option<u64> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let stat = rustix::fs::statvfs(existing).ok()?;
    (stat.f_blocks > 0).then(|| stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Whether `a` and `b` (or their nearest existing ancestors) are on one filesystem, so that
/// bytes written to either take the same free space.
pub fn same_filesystem(a: &Path, b: &Path) -> bool {
    let dev = |p: &Path| p.ancestors().find_map(|p| std::fs::metadata(p).ok()).map(|m| m.dev());
    matches!((dev(a), dev(b)), (Some(x), Some(y)) if x == y)
}

impl BlobCache {
    /// Bytes the cache holds now (entries and partial files), as its ledger last counted them:
    /// all of it may be freed by eviction.
    pub fn held_bytes(&self) -> u64 {
        self.stats().map_or(0, |s| s.bytes.saturating_add(s.partial_bytes))
    }

    /// Whether a fill of `size` bytes could ever complete: within the limit, and within what its
    /// disk could give it (the free space plus everything the cache holds, which eviction may
    /// free). An entry that fails this is streamed by a mount instead of cached.
    pub fn could_hold(&self, size: u64) -> bool {
        if size > self.inner.max_bytes {
            return false;
        }
        // The ledger is read (and merged) only when the free space alone does not settle it:
        // this runs on every cold open.
        free_bytes(&self.inner.dir)
            .is_none_or(|free| size <= free || size <= free.saturating_add(self.held_bytes()))
    }
}
