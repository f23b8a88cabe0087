//! Chunk sidecars on the read side: fetching a blob's sidecar (within the stall bound, never
//! failing the open: without one the whole-file path verifies everything) and a bounded memo
//! of recent ones, so reopening a large file costs no request to the registry.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, PoisonError};

use crate::manifest::Entry;
use crate::source::BlobSource;
use crate::store::chunks::{self, ChunkSums};

use super::{Fetcher, StallError};

/// Chunk checksums of recently opened large files kept in memory, so that opening one again
/// (while it is still not complete in the cache) costs no request: at most about 6 MiB, the
/// sidecars of 256 GiB of data in 4 MiB chunks.
pub(super) const SIDECAR_MEMO_SUMS: usize = 64 * 1024;

impl Fetcher {
    /// The chunk sidecar of a blob of `size` bytes, if it has a usable one whose bytes hash to
    /// `binding` (the manifest entry's): remembered from an earlier open, else fetched. Any
    /// failure to read it only means the whole-file path, which verifies everything anyway.
    pub(super) fn sidecar(
        &self,
        blobs: &Arc<dyn BlobSource>,
        path: &str,
        entry: &Entry,
        blob_key: &str,
        size: u64,
        binding: &str,
    ) -> Option<Arc<ChunkSums>> {
        let memo = || self.sidecars.lock().unwrap_or_else(PoisonError::into_inner);
        let remembered = memo().get(blob_key);
        let sidecar = match remembered {
            Some(sidecar) => sidecar,
            None => {
                let sidecar = Arc::new(self.fetch_sidecar(blobs, path, entry, blob_key)?);
                memo().insert(blob_key, sidecar.clone());
                sidecar
            }
        };
        if sidecar.digest != binding {
            tracing::warn!(
                blob_key,
                expected = binding,
                found = %sidecar.digest,
                "chunk sidecar is not the one the manifest names; verifying the whole file instead"
            );
            return None;
        }
        let sums = &sidecar.sums;
        if sums.size == size && self.ranged.fits(sums.chunk_bytes) {
            Some(sums.clone())
        } else {
            tracing::warn!(blob_key, size, "chunk sidecar does not fit the blob; ignoring it");
            None
        }
    }

    /// Reads the sidecar of an entry from its source, if it has a self-consistent one.
    pub(super) fn fetch_sidecar(
        &self,
        blobs: &Arc<dyn BlobSource>,
        path: &str,
        entry: &Entry,
        blob_key: &str,
    ) -> Option<Sidecar> {
        let key = blob_key;
        let fetched =
            self.handle.block_on(self.registry_bound().answer(blobs.chunk_sums(path, entry)));
        let bytes = match fetched {
            Ok(Ok(Some(bytes))) => bytes,
            Ok(Ok(None)) | Err(StallError::Holding { .. }) => return None,
            Ok(Err(err)) => {
                tracing::warn!(%err, "cannot read chunk sidecar; fetching the whole blob");
                return None;
            }
            Err(StallError::Silent { .. }) => {
                tracing::warn!(key, "chunk sidecar stalled; fetching the whole blob");
                return None;
            }
        };
        match serde_json::from_slice::<ChunkSums>(&bytes) {
            Ok(sums) if sums.is_consistent() => {
                Some(Sidecar { sums: Arc::new(sums), digest: chunks::binding_of(&bytes) })
            }
            Ok(_) => {
                tracing::warn!(key, "chunk sidecar is inconsistent; ignoring it");
                None
            }
            Err(err) => {
                tracing::warn!(key, %err, "chunk sidecar is not valid JSON; ignoring it");
                None
            }
        }
    }
}

/// A fetched sidecar and the digest of its bytes (compared with an entry's binding).
#[derive(Debug)]
pub(super) struct Sidecar {
    sums: Arc<ChunkSums>,
    digest: String,
}

/// Recently fetched chunk sidecars by blob key, bounded by the number of checksums they hold;
/// the oldest fetched goes first. Blobs are content-addressed, so a remembered sidecar never
/// goes stale (and each use checks it against the entry's binding).
#[derive(Debug)]
pub(super) struct SidecarMemo {
    max_sums: usize,
    sums: usize,
    by_blob: HashMap<String, Arc<Sidecar>>,
    fetched: VecDeque<String>,
}

impl SidecarMemo {
    pub(super) fn new(max_sums: usize) -> SidecarMemo {
        SidecarMemo { max_sums, sums: 0, by_blob: HashMap::new(), fetched: VecDeque::new() }
    }

    pub(super) fn get(&self, blob_key: &str) -> Option<Arc<Sidecar>> {
        self.by_blob.get(blob_key).cloned()
    }

    pub(super) fn insert(&mut self, blob_key: &str, sidecar: Arc<Sidecar>) {
        let count = sidecar.sums.count();
        if count > self.max_sums || self.by_blob.contains_key(blob_key) {
            return;
        }
        while self.sums + count > self.max_sums {
            let Some(oldest) = self.fetched.pop_front() else { break };
            if let Some(dropped) = self.by_blob.remove(&oldest) {
                self.sums -= dropped.sums.count();
            }
        }
        self.sums += count;
        self.fetched.push_back(blob_key.to_owned());
        self.by_blob.insert(blob_key.to_owned(), sidecar);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums(count: usize) -> Arc<Sidecar> {
        let sums = ChunkSums {
            chunk_bytes: 1,
            size: count as u64,
            algo: crate::store::chunks::ChunkAlgo::NEW,
            sums: vec![String::new(); count],
        };
        Arc::new(Sidecar { sums: Arc::new(sums), digest: String::new() })
    }

    #[test]
    fn the_sidecar_memo_drops_the_oldest_beyond_its_bound() {
        let mut memo = SidecarMemo::new(10);
        memo.insert("a", sums(4));
        memo.insert("b", sums(4));
        assert!(memo.get("a").is_some() && memo.get("b").is_some());
        memo.insert("c", sums(4));
        assert!(memo.get("a").is_none(), "oldest dropped");
        assert!(memo.get("b").is_some() && memo.get("c").is_some());
        assert_eq!(memo.sums, 8);
        // A sidecar larger than the whole bound is not kept (and evicts nothing).
        memo.insert("huge", sums(11));
        assert!(memo.get("huge").is_none() && memo.get("b").is_some());
        // One that needs all the room evicts everything else.
        memo.insert("d", sums(10));
        assert!(memo.get("b").is_none() && memo.get("c").is_none());
        assert_eq!((memo.sums, memo.by_blob.len(), memo.fetched.len()), (10, 1, 1));
    }
}
