//! Entries the cache cannot hold, read through a bounded window of chunks in memory.
//!
//! An uncached stored entry larger than the cache's limit, or than its disk could ever give it
//! ([`BlobCache::could_hold`]), is never written to the cache: each open file keeps at most
//! [`STREAM_WINDOW_CHUNKS`] chunks in memory ([`Window`]), fetched with one ranged request each
//! (`ranged::ChunkRequest`), prefetched ahead of a sequential reader, fetched again when a
//! random reader comes back to one that left.
//!
//! Verification: only a blob artfs stored with a chunk sidecar bound by the manifest is streamed.
//! It has a sum per chunk, and a chunk is admitted to the window only once its sum matched,
//! so no unverified byte reaches a reader. An entry with only a whole-file digest (a W&B file, a
//! blob without sidecar) could be checked only after its last byte, when a random reader has long
//! been served the rest: it is not streamed, and fails as not fitting, as before.
//!
//! Threads: [`StreamHandle::read`] blocks on plain threads (FUSE request threads); fetches run on
//! the runtime, and a completion (which may hash) in its blocking pool.

use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use tokio::runtime::Handle;
use tracing::warn;

use crate::http::StallBound;
use crate::manifest::Entry;
use crate::source::BlobSource;
use crate::store::chunks::{self, ChunkSums};

use super::Fetcher;
use super::ranged::{ChunkData, ChunkRequest, RangedError, Sequential, Shared, lock};
use super::window::{Lookup, Window};

/// Chunks one open streamed file keeps in memory, fetching or fetched (64 MiB of 4 MiB chunks).
pub const STREAM_WINDOW_CHUNKS: usize = 16;

/// Largest prefetch of a sequential reader, in chunks: half the window, so prefetched chunks
/// never push out the ones being read.
pub const STREAM_PREFETCH_CHUNKS: u64 = STREAM_WINDOW_CHUNKS as u64 / 2;

type Chunk = Arc<ChunkData>;

/// Where one streamed entry's chunks come from, and how they are checked.
#[derive(Debug)]
struct Source {
    blobs: Arc<dyn BlobSource>,
    path: String,
    entry: Entry,
    /// The blob's name in messages.
    blob_key: String,
    handle: Handle,
    stall: StallBound,
    /// Byte counters shared with the fetcher's other reads.
    shared: Arc<Shared>,
    /// Per-chunk sums, from the sidecar the manifest binds.
    sums: Arc<ChunkSums>,
    chunk_bytes: u64,
    size: u64,
}

impl Source {
    fn chunk_count(&self) -> usize {
        // Bounded by a file size over at least a KiB per chunk.
        self.size.div_ceil(self.chunk_bytes) as usize
    }

    fn range(&self, index: usize) -> Range<u64> {
        let start = index as u64 * self.chunk_bytes;
        start..(start + self.chunk_bytes).min(self.size)
    }
}

#[derive(Debug)]
struct State {
    window: Window<Chunk, Arc<RangedError>>,
}

#[derive(Debug)]
struct StreamBlob {
    source: Source,
    state: Mutex<State>,
    changed: Condvar,
}

/// One open file of an entry read through a bounded window.
#[derive(Debug)]
pub struct StreamHandle {
    blob: Arc<StreamBlob>,
    seq: Mutex<Sequential>,
}

impl Fetcher {
    /// A streamed handle on a stored entry that is not cached and that the cache cannot hold;
    /// `None` for every other entry (they take the lazy or whole-file path).
    pub(super) fn stream(
        &self,
        blobs: &Arc<dyn BlobSource>,
        artifact: &str,
        path: &str,
        entry: &Entry,
    ) -> Option<StreamHandle> {
        let (Some((key, _)), Some(size)) = (Self::stored_key(entry), entry.size) else {
            return None;
        };
        // Only entries larger than `lazy_min_bytes` carry chunk checksums to stream by: the
        // cheapest test first, since every cold open of a small file passes here.
        if size <= self.lazy_min_bytes
            || entry.is_reference()
            || self.cache.entry_path(&key).exists()
            || self.cache.could_hold(size)
        {
            return None;
        }
        let blob_key = blobs.locate(path, entry)?;
        let sums = chunks::binding(entry)
            .and_then(|binding| self.sidecar(blobs, path, entry, &blob_key, size, binding));
        let limit = (self.cache.max_bytes(), self.cache.dir().display());
        let Some(sums) = sums else {
            warn!(
                "{artifact}: {path}: {size} bytes do not fit the cache (limit {} bytes, {}) and \
                 carry no chunk checksums, so they cannot be streamed verified; raise --cache-size",
                limit.0, limit.1
            );
            return None;
        };
        // Said once per open: the user sees why the file is fetched again on every open.
        warn!(
            "{artifact}: {path}: {size} bytes do not fit the cache (limit {} bytes, {}); \
             streaming through {STREAM_WINDOW_CHUNKS} chunks in memory, each verified",
            limit.0, limit.1
        );
        let chunk_bytes = sums.chunk_bytes;
        let source = Source {
            blobs: blobs.clone(),
            path: path.to_owned(),
            entry: entry.clone(),
            blob_key,
            handle: self.handle.clone(),
            stall: self.registry_bound(),
            shared: self.ranged.clone(),
            sums,
            chunk_bytes,
            size,
        };
        let state = State { window: Window::new(STREAM_WINDOW_CHUNKS) };
        let blob = StreamBlob { source, state: Mutex::new(state), changed: Condvar::new() };
        Some(StreamHandle { blob: Arc::new(blob), seq: Mutex::default() })
    }
}

impl StreamHandle {
    pub fn len(&self) -> u64 {
        self.blob.source.size
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` from `offset` (less only at the end of the file) with chunks of the window,
    /// fetching those it lacks; returns the byte count. Blocks: call from plain threads only.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Arc<RangedError>> {
        let blob = &self.blob;
        let source = &blob.source;
        let end = (offset + buf.len() as u64).min(source.size);
        if offset >= end {
            return Ok(0);
        }
        let (first, last) = (offset / source.chunk_bytes, (end - 1) / source.chunk_bytes);
        let ahead = lock(&self.seq).advance(first, last, STREAM_PREFETCH_CHUNKS);
        let count = source.chunk_count() as u64;
        blob.start(first..last + 1);
        blob.start(last + 1..(last + 1 + ahead).min(count));
        let mut filled = 0;
        for index in first..=last {
            let index = index as usize;
            let chunk = blob.chunk(index)?;
            let range = source.range(index);
            let at = offset + filled as u64;
            // Within one chunk, hence memory.
            let n = ((range.end.min(end) - at) as usize).min(buf.len() - filled);
            chunk.copy_to(at - range.start, &mut buf[filled..filled + n]);
            filled += n;
        }
        Ok(filled)
    }
}

impl StreamBlob {
    /// Starts fetching the chunks of `indices` the window lacks and has room for.
    fn start(self: &Arc<Self>, indices: Range<u64>) {
        let mut state = lock(&self.state);
        for index in indices {
            // Bounded by the chunk count.
            let index = index as usize;
            if state.window.begin(index) {
                self.spawn(index);
            }
        }
    }

    /// Chunk `index` from the window, fetched first if needed; a failure seen here is retried
    /// once (it may be another reader's, or a prefetch's).
    fn chunk(self: &Arc<Self>, index: usize) -> Result<Chunk, Arc<RangedError>> {
        let mut state = lock(&self.state);
        let mut retried = false;
        loop {
            match state.window.lookup(index) {
                Lookup::Ready(chunk) => return Ok(chunk),
                Lookup::Fetching => {}
                Lookup::Failed(err) if retried => return Err(err),
                lookup @ (Lookup::Failed(_) | Lookup::Absent) => {
                    retried |= matches!(lookup, Lookup::Failed(_));
                    // Not admitted: every slot is being fetched; wait for one to complete.
                    if state.window.begin(index) {
                        self.spawn(index);
                    }
                }
            }
            state = self.changed.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Fetches chunk `index` (admitted to the window) on the runtime.
    fn spawn(self: &Arc<Self>, index: usize) {
        let blob = self.clone();
        self.source.handle.spawn(async move {
            let result = blob.receive(index).await;
            // Checked already; completing costs no more than a lock.
            blob.complete(index, result);
        });
    }

    /// Chunk `index`'s bytes, checked against its sum.
    async fn receive(&self, index: usize) -> Result<ChunkData, RangedError> {
        let source = &self.source;
        let request = ChunkRequest {
            blobs: source.blobs.as_ref(),
            path: &source.path,
            entry: &source.entry,
            blob_key: &source.blob_key,
            stall: &source.stall,
            counters: &source.shared.counters,
        };
        let range = source.range(index);
        let chunk = request.receive(index, range, source.sums.algo).await?;
        chunk
            .verified(&source.sums, index)
            .ok_or_else(|| RangedError::ChunkMismatch { blob: source.blob_key.clone(), index })
    }

    /// Puts a fetched chunk into the window (or its failure) and wakes its readers.
    fn complete(&self, index: usize, result: Result<ChunkData, RangedError>) {
        let mut state = lock(&self.state);
        match result {
            Ok(data) => state.window.complete(index, Ok(Arc::new(data))),
            Err(err) => {
                warn!(%err, "streamed chunk fetch failed");
                state.window.complete(index, Err(Arc::new(err)));
            }
        }
        drop(state);
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::cache::BlobCache;
    use crate::manifest::md5_base64;
    use crate::registry::testing::TempRegistry;
    use crate::source::registry::RegistryBlobs;
    use crate::store::chunks::CHUNK_BYTES;

    /// A blob without chunk sums, larger than the fetcher's cache limit (1 MiB), is not
    /// streamed: its bytes could be checked only after the last one was served.
    #[test]
    fn without_chunk_sums_an_entry_larger_than_the_cache_is_not_streamed_but_refused() {
        let t = TempRegistry::default();
        let cache = BlobCache::open(&t.dir.path().join("cache"), 1 << 20).unwrap();
        let fetcher = Fetcher::new(cache, t.runtime.handle().clone());
        let store = t.registry.store().clone();
        let data: Vec<u8> = (0..3 * CHUNK_BYTES as usize + 1234).map(|i| (i % 251) as u8).collect();
        let digest = md5_base64(&data);
        let key = crate::registry::blob_key(&digest).unwrap();
        t.runtime.block_on(store.put_create(&key, Bytes::from(data.clone()))).unwrap();
        let blobs: Arc<dyn BlobSource> = Arc::new(RegistryBlobs::new(store));
        let entry = Entry::stored(digest, data.len() as u64);
        assert!(fetcher.stream(&blobs, "acme/p/ds:v0", "f.bin", &entry).is_none());
        match fetcher.open(&blobs, "acme/p/ds:v0", "f.bin", &entry, None) {
            Err(err) => assert!(err.to_string().contains("do not fit"), "{err}"),
            Ok(opened) => panic!("opened: {opened:?}"),
        }
    }
}
