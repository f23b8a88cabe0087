//! Warming the cache on purpose: the entries of a version (or of a subtree) fetched into the
//! cache ahead of their readers, many at once, each verified as any read is
//! ([`Fetcher::cached`]: digest and size before it is published), within a byte budget.
//!
//! Used by `artfs prefetch` and by the mount's warm-up of a version read in shuffled order.
//! The budget exists because a warm set larger than the cache would only evict itself: entries
//! are taken in path order while the ones chosen (those already cached included) fit in it; the
//! rest is left out and reported. Entries already cached are "fetched" too, which costs no
//! request but marks them recently used, so eviction takes other entries before them.
//! Resuming is running it again: what is in the cache already is not downloaded again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::fetch::{FetchError, Fetcher};
use crate::manifest::Entry;
use crate::source::BlobSource;

/// The entries a warm-up takes, and what the budget left out.
#[derive(Debug, Default)]
pub struct WarmSet {
    pub entries: Vec<(String, Entry)>,
    pub bytes: u64,
    pub left_out_files: u64,
    pub left_out_bytes: u64,
}

/// Takes `entries` in the order given (path order, from a manifest) while their sizes fit in
/// `budget` bytes. Entries of unknown size count as empty.
pub fn plan<'a>(
    entries: impl IntoIterator<Item = (&'a String, &'a Entry)>,
    budget: u64,
) -> WarmSet {
    let mut set = WarmSet::default();
    for (path, entry) in entries {
        let size = entry.size.unwrap_or(0);
        if set.left_out_files == 0 && set.bytes.saturating_add(size) <= budget {
            set.bytes += size;
            set.entries.push((path.clone(), entry.clone()));
        } else {
            set.left_out_files += 1;
            set.left_out_bytes += size;
        }
    }
    set
}

/// What a warm-up did.
#[derive(Debug, Default)]
pub struct Warmed {
    /// Entries now in the cache (fetched, or there already) and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// Entries that were not already in the cache.
    pub fetched_files: u64,
    /// Entries that could not be fetched or did not verify, in path order.
    pub failed: Vec<FetchError>,
}

/// Brings `entries` into the cache with `jobs` downloads in flight; `progress` receives byte
/// counts. A failed entry does not stop the others. Once `stop` is set, no further entry starts.
pub fn warm(
    fetcher: &Fetcher,
    blobs: &Arc<dyn BlobSource>,
    artifact: &str,
    entries: &[(String, Entry)],
    jobs: usize,
    progress: &(dyn Fn(u64) + Sync),
    stop: &AtomicBool,
) -> Warmed {
    let next = AtomicUsize::new(0);
    type Done = (u64, u64, u64, Vec<(usize, FetchError)>);
    let results: Vec<Done> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..jobs.clamp(1, entries.len().max(1)))
            .map(|_| {
                s.spawn(|| {
                    let (mut files, mut bytes, mut fetched, mut failed) = (0, 0, 0, Vec::new());
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((path, entry)) = entries.get(i) else { break };
                        match fetcher.cached(blobs, artifact, path, entry) {
                            Ok(blob) => {
                                files += 1;
                                bytes += blob.len();
                                fetched += u64::from(blob.was_filled());
                                progress(blob.len());
                            }
                            Err(e) => failed.push((i, e)),
                        }
                    }
                    (files, bytes, fetched, failed)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut out = Warmed::default();
    let mut failed = Vec::new();
    for (files, bytes, fetched, f) in results {
        out.files += files;
        out.bytes += bytes;
        out.fetched_files += fetched;
        failed.extend(f);
    }
    failed.sort_by_key(|(i, _)| *i);
    out.failed = failed.into_iter().map(|(_, e)| e).collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_takes_entries_in_order_while_they_fit() {
        let e = |n: u64| Entry::stored("x".into(), n);
        let entries: Vec<(String, Entry)> = [("a", 4), ("b", 3), ("c", 5), ("d", 1)]
            .iter()
            .map(|(p, n)| (p.to_string(), e(*n)))
            .collect();
        let set = plan(entries.iter().map(|(p, e)| (p, e)), 8);
        let taken: Vec<&str> = set.entries.iter().map(|(p, _)| p.as_str()).collect();
        // `d` would fit, but skipping `c` would make the set depend on sizes, not on order.
        assert_eq!((taken, set.bytes), (vec!["a", "b"], 7));
        assert_eq!((set.left_out_files, set.left_out_bytes), (2, 6));
        let all = plan(entries.iter().map(|(p, e)| (p, e)), 13);
        assert_eq!((all.entries.len(), all.left_out_files), (4, 0));
    }
}
