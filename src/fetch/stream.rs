//! Entries the cache cannot hold, read through a bounded window of chunks in memory.
//!
//! An uncached stored entry larger than the cache's limit, or than its disk could ever give it
//! ([`BlobCache::could_hold`]), is never written to the cache: each open file keeps at most
//! [`STREAM_WINDOW_CHUNKS`] chunks in memory ([`Window`]), fetched with one ranged request each
//! (`ranged::ChunkRequest`), prefetched ahead of a sequential reader, fetched again when a
//! random reader comes back to one that left.
//!
//! Verification: a blob artfs stored with a chunk sidecar bound by the manifest has a SHA-256 per
//! chunk, and a chunk is admitted to the window only once its sum matched, so no unverified byte
//! reaches a reader. An entry with only a whole-file digest (a W&B file, a blob without sidecar)
//! cannot be checked chunk by chunk: its chunks are served as they arrive while a [`WholePass`]
//! hashes them in file order; when the pass reaches the last chunk the verdict is known before
//! that chunk is served, and a mismatch fails that read and every later one with EIO and an error
//! in the log. A reader that skips around (so the pass never completes) reads unverified bytes;
//! docs/SEMANTICS.md says so.
//!
//! Threads: [`StreamHandle::read`] blocks on plain threads (FUSE request threads); fetches run on
//! the runtime, and a completion (which may hash) in its blocking pool.

use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use tokio::runtime::Handle;
use tracing::{error, warn};

use crate::cache::{DigestState, Verify};
use crate::http::StallBound;
use crate::manifest::Entry;
use crate::source::BlobSource;
use crate::store::chunks::{self, CHUNK_BYTES, ChunkSums};

use super::Fetcher;
use super::ranged::{ChunkData, ChunkRequest, RangedError, Receiving, Sequential, Shared, lock};
use super::window::{Lookup, Window};

/// Chunks one open streamed file keeps in memory, fetching or fetched (64 MiB of 4 MiB chunks).
pub const STREAM_WINDOW_CHUNKS: usize = 16;

/// Largest prefetch of a sequential reader, in chunks: half the window, so prefetched chunks
/// never push out the ones being read (nor ones the whole-file pass has still to hash).
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
    /// Per-chunk SHA-256, when the manifest binds a sidecar.
    sums: Option<Arc<ChunkSums>>,
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
    /// The whole-file check of an entry without chunk sums.
    pass: Option<WholePass>,
    /// Set when the whole-file check failed: every read fails from then on.
    broken: Option<Arc<RangedError>>,
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
        let (Some((key, verify)), Some(size)) = (Self::stored_key(entry), entry.size) else {
            return None;
        };
        if entry.is_reference()
            || self.cache.entry_path(&key).exists()
            || self.cache.could_hold(size)
        {
            return None;
        }
        let blob_key = blobs.locate(path, entry)?;
        let sums = chunks::binding(entry)
            .filter(|_| size > self.lazy_min_bytes)
            .and_then(|binding| self.sidecar(blobs, path, entry, &blob_key, size, binding));
        let checked = if sums.is_some() { "each chunk verified" } else { "whole-file digest" };
        // Said once per open: the user sees why the file is fetched again on every open.
        warn!(
            "{artifact}: {path}: {size} bytes do not fit the cache (limit {} bytes, {}); \
             streaming through {STREAM_WINDOW_CHUNKS} chunks in memory, {checked}",
            self.cache.max_bytes(),
            self.cache.dir().display()
        );
        let chunk_bytes = sums.as_ref().map_or(CHUNK_BYTES, |s| s.chunk_bytes);
        let pass = sums.is_none().then(|| WholePass::new(&verify, size.div_ceil(chunk_bytes)));
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
        let state =
            State { window: Window::new(STREAM_WINDOW_CHUNKS), pass: pass.flatten(), broken: None };
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
            if state.broken.is_none() && state.window.begin(index) {
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
            if let Some(err) = &state.broken {
                return Err(err.clone());
            }
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
            if blob.source.sums.is_some() {
                // Checked already; completing costs no more than a lock.
                blob.complete(index, result);
                return;
            }
            // The whole-file pass hashes on completion: the blocking pool.
            let me = blob.clone();
            let done = tokio::task::spawn_blocking(move || me.complete(index, result)).await;
            if done.is_err() {
                // Never leave the chunk "being fetched": its readers would wait forever.
                let lost = RangedError::Lost { blob: blob.source.blob_key.clone(), index };
                blob.complete(index, Err(lost));
            }
        });
    }

    /// Chunk `index`'s bytes, checked against its sum if it has one.
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
        let Some(sums) = &source.sums else {
            return Ok(request.receive(index, range, Receiving::unhashed).await?.unverified());
        };
        let chunk = request.receive(index, range, Receiving::new).await?;
        chunk
            .verified(sums, index)
            .ok_or_else(|| RangedError::ChunkMismatch { blob: source.blob_key.clone(), index })
    }

    /// Puts a fetched chunk into the window (or its failure), and carries the whole-file pass as
    /// far as the window allows, all before any reader sees the chunk.
    fn complete(&self, index: usize, result: Result<ChunkData, RangedError>) {
        let mut state = lock(&self.state);
        let State { window, pass, broken } = &mut *state;
        match result {
            Ok(data) => window.complete(index, Ok(Arc::new(data))),
            Err(err) => {
                warn!(%err, "streamed chunk fetch failed");
                window.complete(index, Err(Arc::new(err)));
            }
        }
        if let Some(pass) = pass {
            while let Some(chunk) = window.peek(pass.next) {
                pass.take(chunk);
            }
            if let Some(Err((expected, actual))) = pass.verdict.take() {
                let blob = self.source.blob_key.clone();
                let err = Arc::new(RangedError::StreamDigest { blob, expected, actual });
                error!(%err, "streamed file failed whole-file verification");
                *broken = Some(err);
            }
        }
        drop(state);
        self.changed.notify_all();
    }
}

/// The whole-file digest of an entry without chunk sums, taken over its chunks in file order.
struct WholePass {
    /// The next chunk to hash.
    next: usize,
    chunks: usize,
    digest: Option<DigestState>,
    /// Set (once) when the last chunk was hashed.
    verdict: Option<Result<(), (String, String)>>,
}

impl std::fmt::Debug for WholePass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The hasher's state says nothing useful.
        f.debug_struct("WholePass").field("next", &self.next).field("chunks", &self.chunks).finish()
    }
}

impl WholePass {
    /// `None` when `verify` checks no digest at all.
    fn new(verify: &Verify, chunks: u64) -> Option<WholePass> {
        let digest = DigestState::new(verify);
        if matches!(digest, DigestState::SizeOnly) {
            return None;
        }
        // A chunk count of an in-memory file size.
        Some(WholePass { next: 0, chunks: chunks as usize, digest: Some(digest), verdict: None })
    }

    /// Hashes chunk `self.next`; after the last one, sets the verdict.
    fn take(&mut self, chunk: &ChunkData) {
        let Some(digest) = &mut self.digest else { return };
        for part in &chunk.parts {
            digest.update(part);
        }
        self.next += 1;
        if self.next == self.chunks
            && let Some(digest) = self.digest.take()
        {
            self.verdict = Some(digest.finish());
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::cache::BlobCache;
    use crate::fetch::OpenedBlob;
    use crate::manifest::md5_base64;
    use crate::registry::testing::TempRegistry;
    use crate::source::registry::RegistryBlobs;

    /// A blob of `stored` bytes under the digest of `logged`, without chunk sums, read through a
    /// fetcher whose cache limit (1 MiB) it exceeds: a streamed handle.
    fn streamed(t: &TempRegistry, logged: &[u8], stored: &[u8]) -> StreamHandle {
        let cache = BlobCache::open(&t.dir.path().join("cache"), 1 << 20).unwrap();
        let fetcher = Fetcher::new(cache, t.runtime.handle().clone());
        let store = t.registry.store().clone();
        let digest = md5_base64(logged);
        let key = crate::registry::blob_key(&digest).unwrap();
        t.runtime.block_on(store.put_create(&key, Bytes::copy_from_slice(stored))).unwrap();
        let blobs: Arc<dyn BlobSource> = Arc::new(RegistryBlobs::new(store));
        let entry = Entry::stored(digest, logged.len() as u64);
        match fetcher.open(&blobs, "acme/p/ds:v0", "f.bin", &entry).unwrap() {
            OpenedBlob::Stream(handle) => handle,
            other => panic!("not streamed: {other:?}"),
        }
    }

    #[test]
    fn without_chunk_sums_a_full_pass_is_checked_whole_and_a_mismatch_fails_the_last_chunk() {
        let len = 3 * CHUNK_BYTES as usize + 1234;
        let good: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let mut bad = good.clone();
        bad[CHUNK_BYTES as usize + 9] ^= 1;
        let last_chunk = 3 * CHUNK_BYTES as usize;
        for (stored, ok) in [(&good, true), (&bad, false)] {
            let t = TempRegistry::default();
            let handle = streamed(&t, &good, stored);
            let mut buf = vec![0u8; 1 << 20];
            let mut at = 0;
            // Prefetch may complete the pass before the reader gets to the last chunk: the
            // verdict then fails reads from there on.
            let failed = loop {
                match handle.read(at as u64, &mut buf) {
                    Ok(0) => break None,
                    Ok(n) => {
                        assert!(buf[..n] == stored[at..at + n], "bytes at {at}");
                        at += n;
                    }
                    Err(err) => break Some(err),
                }
            };
            if ok {
                assert!(failed.is_none() && at == len, "{failed:?} at {at}");
                continue;
            }
            let err = failed.expect("a bad file read to its end");
            assert!(matches!(*err, RangedError::StreamDigest { .. }), "{err}");
            assert!(at <= last_chunk, "the last chunk of a bad file was served");
            assert!(handle.read(0, &mut buf).is_err(), "a read after the verdict");
        }
    }

    fn chunk(bytes: &[u8]) -> ChunkData {
        let parts = bytes.chunks(3).map(Bytes::copy_from_slice).collect();
        ChunkData { parts, len: bytes.len() as u64 }
    }

    #[test]
    fn the_whole_pass_gives_its_verdict_after_the_last_chunk_only() {
        let data: Vec<u8> = (0..100u8).collect();
        let md5: [u8; 16] = <md5::Md5 as md5::Digest>::digest(&data).into();
        for (want, ok) in [(md5, true), ([0u8; 16], false)] {
            let mut pass = WholePass::new(&Verify::Md5(want), 4).unwrap();
            for (i, piece) in data.chunks(25).enumerate() {
                assert!(pass.verdict.is_none(), "no verdict before the last chunk");
                assert_eq!(pass.next, i);
                pass.take(&chunk(piece));
            }
            assert_eq!(pass.verdict.take().map(|v| v.is_ok()), Some(ok));
            // Nothing more is hashed after the verdict.
            pass.take(&chunk(b"late"));
            assert!(pass.verdict.is_none());
        }
        assert!(WholePass::new(&Verify::SizeOnly, 4).is_none(), "nothing to check");
    }
}
