//! `artfs get`'s space check: before anything is written, the destination's filesystem and the
//! cache's must have room for what the download puts there, else `get` refuses in one line
//! naming what is needed and what is free.
//!
//! Needs: the destination takes every byte of the entries to download; the cache takes the
//! entries not cached yet, but never more than its limit (past it, it evicts what `get` already
//! copied out). Free: the destination's free space; the cache's free space plus what it holds
//! now, which eviction may free. On one filesystem the needs add up against one free space.
//! References of unknown size count as nothing: they are checked as they arrive. An entry larger
//! than the cache's limit is refused up front as well: it could never pass through the cache.

use std::path::{Path, PathBuf};

use indicatif::HumanBytes;

use crate::cache::{free_bytes, same_filesystem};
use crate::manifest::Manifest;

use super::Fetcher;

#[derive(Debug, thiserror::Error)]
pub enum SpaceError {
    #[error(
        "not enough space for {dest}: it needs {}, its filesystem has {} free; nothing was written",
        HumanBytes(*need),
        HumanBytes(*free)
    )]
    Destination { dest: PathBuf, need: u64, free: u64 },
    #[error(
        "not enough space in the cache {cache}: it needs {}, its filesystem has {} free (counting \
         what eviction can free); nothing was written. Free some space or set ARTFS_CACHE_DIR",
        HumanBytes(*need),
        HumanBytes(*free)
    )]
    Cache { cache: PathBuf, need: u64, free: u64 },
    #[error(
        "not enough space for {dest} and the cache {cache}, which share a filesystem: they need \
         {} ({} of files, {} in the cache), it has {} free (counting what eviction can free); \
         nothing was written",
        HumanBytes(need.0 + need.1),
        HumanBytes(need.0),
        HumanBytes(need.1),
        HumanBytes(*free)
    )]
    Shared { dest: PathBuf, cache: PathBuf, need: (u64, u64), free: u64 },
    #[error(
        "{path} ({}) is larger than the cache limit ({}), and `get` goes through the cache; \
         raise --cache-size; nothing was written",
        HumanBytes(*size),
        HumanBytes(*max_bytes)
    )]
    LargerThanCache { path: String, size: u64, max_bytes: u64 },
}

/// Room on one side of a download.
#[derive(Debug, Clone, Copy)]
struct Side<'a> {
    path: &'a Path,
    need: u64,
    /// `None` when the filesystem cannot be asked: then nothing is refused.
    free: Option<u64>,
}

/// The refusal, if the needs do not fit; `shared` when both sides are on one filesystem.
fn refuse(dest: Side<'_>, cache: Side<'_>, shared: bool) -> Option<SpaceError> {
    let (dest_path, cache_path) = (dest.path.to_owned(), cache.path.to_owned());
    if shared {
        let free = cache.free?;
        return (dest.need.saturating_add(cache.need) > free).then_some(SpaceError::Shared {
            dest: dest_path,
            cache: cache_path,
            need: (dest.need, cache.need),
            free,
        });
    }
    if let Some(free) = dest.free.filter(|free| dest.need > *free) {
        return Some(SpaceError::Destination { dest: dest_path, need: dest.need, free });
    }
    let free = cache.free.filter(|free| cache.need > *free)?;
    Some(SpaceError::Cache { cache: cache_path, need: cache.need, free })
}

impl Fetcher {
    /// Refuses a download of `manifest` into `root` that the destination's or the cache's disk
    /// cannot hold (see the module doc), before anything is written.
    pub fn check_room(&self, manifest: &Manifest, root: &Path) -> Result<(), SpaceError> {
        let files: u64 = manifest.contents.values().filter_map(|e| e.size).sum();
        let uncached: Vec<(&String, u64)> = manifest
            .contents
            .iter()
            .filter(|(_, e)| !self.is_cached(e))
            .filter_map(|(path, e)| Some((path, e.size?)))
            .collect();
        let max_bytes = self.cache.max_bytes();
        if let Some((path, size)) = uncached.iter().find(|(_, size)| *size > max_bytes) {
            let (path, size) = ((*path).clone(), *size);
            return Err(SpaceError::LargerThanCache { path, size, max_bytes });
        }
        let uncached: u64 = uncached.iter().map(|(_, size)| size).sum();
        let held = self.cache.held_bytes();
        let dest = Side { path: root, need: files, free: free_bytes(root) };
        let cache = Side {
            path: self.cache.dir(),
            need: uncached.min(max_bytes),
            free: free_bytes(self.cache.dir()).map(|free| free.saturating_add(held)),
        };
        let shared = same_filesystem(root, self.cache.dir());
        refuse(dest, cache, shared).map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(path: &str, need: u64, free: Option<u64>) -> Side<'_> {
        Side { path: Path::new(path), need, free }
    }

    #[test]
    fn a_download_is_refused_when_either_side_or_both_together_do_not_fit() {
        let fits = |dest, cache, shared| refuse(dest, cache, shared).is_none();
        assert!(fits(side("/d", 10, Some(10)), side("/c", 5, Some(5)), false));
        let err = refuse(side("/d", 200 << 20, Some(60 << 20)), side("/c", 0, Some(1)), false)
            .unwrap()
            .to_string();
        assert!(err.contains("/d: it needs 200.00 MiB") && err.contains("60.00 MiB free"), "{err}");
        assert!(err.contains("nothing was written"), "{err}");
        let err = refuse(side("/d", 1, Some(10)), side("/c", 11, Some(10)), false).unwrap();
        assert!(matches!(err, SpaceError::Cache { need: 11, free: 10, .. }), "{err}");
        // Each fits alone, not together.
        assert!(fits(side("/d", 6, Some(10)), side("/c", 4, Some(10)), true));
        let err = refuse(side("/d", 6, Some(10)), side("/c", 5, Some(10)), true).unwrap();
        assert!(matches!(err, SpaceError::Shared { need: (6, 5), free: 10, .. }), "{err}");
        // A filesystem that cannot be asked refuses nothing.
        assert!(fits(side("/d", 6, None), side("/c", 5, None), false));
        assert!(fits(side("/d", 6, None), side("/c", 5, None), true));
    }
}
