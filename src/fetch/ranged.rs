//! Lazy ranged reads of large stored blobs: a read waits only for the chunks it touches.
//!
//! Applies to blobs artfs stored with a chunk sidecar (`store::chunks`, every blob of more than
//! one chunk). Each chunk is fetched with one ranged GET and verified against its SHA-256 before
//! it is written to the blob's [`PartialFile`]; a read is served only from chunks verified by this
//! process, so no unverified byte ever reaches a reader. Once every chunk is present the whole
//! file is checked against the manifest MD5 and renamed into the cache as a complete entry
//! ([`BlobCache::adopt`]), without a copy. Blobs without a sidecar and references take the
//! whole-file path in `fetch`.
//!
//! Throughput: each handle detects sequential reads and prefetches a window of chunks ahead that
//! doubles on every new chunk up to [`MAX_PREFETCH_CHUNKS`]; the chunks run as concurrent tasks
//! on the runtime. Memory: every chunk buffer in flight holds permits of one [`Semaphore`] of
//! bytes shared by all open files ([`RANGED_BUDGET_BYTES`] by default), so many open files
//! cannot multiply memory use.
//!
//! Threads: [`LazyHandle::read`] blocks, so it runs only on plain threads (FUSE request threads);
//! fetch tasks run on the runtime, with hashing and disk writes in its blocking pool.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tracing::{debug, error, warn};

use crate::cache::{BlobCache, CacheError, CacheKey, PartialFile, Verify};
use crate::manifest::Entry;
use crate::source::{BlobSource, SourceError};
use crate::store::chunks::ChunkSums;

/// Default bound on chunk bytes fetched but not yet written to disk, across all open files.
pub const RANGED_BUDGET_BYTES: u64 = 64 << 20;

/// Largest prefetch window of a sequential reader, in chunks (32 MiB with 4 MiB chunks).
pub const MAX_PREFETCH_CHUNKS: u64 = 8;

#[derive(Debug, thiserror::Error)]
pub enum RangedError {
    #[error("{blob}: chunk {index} does not match its SHA-256; nothing of it was served")]
    ChunkMismatch { blob: String, index: usize },
    #[error("{blob}: chunk {index}: {source}")]
    Source {
        blob: String,
        index: usize,
        #[source]
        source: SourceError,
    },
    #[error("{blob}: chunk {index}: no data received for {after:?}; is the server reachable?")]
    Stalled { blob: String, index: usize, after: Duration },
    #[error("{blob}: chunk {index}: partial cache file: {source}")]
    Io {
        blob: String,
        index: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("{blob}: the complete file does not match the manifest digest: {source}")]
    Whole {
        blob: String,
        #[source]
        source: CacheError,
    },
    #[error("{blob}: chunk {index}: the fetch task ended without a result")]
    Lost { blob: String, index: usize },
}

/// Counters shared by every handle of one fetcher; read by tests and benchmarks.
#[derive(Debug, Default)]
pub struct Counters {
    bytes_fetched: AtomicU64,
    in_flight_bytes: AtomicU64,
    peak_in_flight_bytes: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FetchStats {
    /// Bytes received from the registry (whole files and chunks).
    pub bytes_fetched: u64,
    /// Most chunk bytes held in memory at once.
    pub peak_in_flight_bytes: u64,
}

impl Counters {
    pub fn add_fetched(&self, bytes: u64) {
        self.bytes_fetched.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> FetchStats {
        FetchStats {
            bytes_fetched: self.bytes_fetched.load(Ordering::Relaxed),
            peak_in_flight_bytes: self.peak_in_flight_bytes.load(Ordering::Relaxed),
        }
    }
}

/// Counts chunk bytes in memory while alive.
struct InFlight<'a> {
    counters: &'a Counters,
    bytes: u64,
}

impl<'a> InFlight<'a> {
    fn new(counters: &'a Counters, bytes: u64) -> Self {
        let now = counters.in_flight_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        counters.peak_in_flight_bytes.fetch_max(now, Ordering::Relaxed);
        InFlight { counters, bytes }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.counters.in_flight_bytes.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// What every lazy blob of one fetcher shares: the memory budget, counters, and the blobs open
/// now (so that handles of one file share its chunks).
#[derive(Debug)]
pub struct Shared {
    budget: Arc<Semaphore>,
    budget_bytes: u64,
    pub counters: Counters,
    open: Mutex<HashMap<CacheKey, Weak<LazyBlob>>>,
}

impl Shared {
    pub fn new(budget_bytes: u64) -> Shared {
        // Semaphores count in usize; a budget beyond that is no budget at all.
        let permits =
            usize::try_from(budget_bytes).unwrap_or(usize::MAX).min(Semaphore::MAX_PERMITS);
        Shared {
            budget: Arc::new(Semaphore::new(permits)),
            budget_bytes: permits as u64,
            counters: Counters::default(),
            open: Mutex::default(),
        }
    }

    /// The lazy blob of `key` if one is open in this process.
    pub fn open_blob(&self, key: &CacheKey) -> Option<Arc<LazyBlob>> {
        lock(&self.open).get(key).and_then(Weak::upgrade)
    }

    /// Whether chunks of `chunk_bytes` fit the budget at all (else one would wait forever).
    pub fn fits(&self, chunk_bytes: u64) -> bool {
        chunk_bytes <= self.budget_bytes && u32::try_from(chunk_bytes).is_ok()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the state valid, so a panic elsewhere changes nothing.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, Clone)]
enum ChunkState {
    Missing,
    /// The partial file's map says it was written; verified before first use.
    Hinted,
    InFlight,
    Verified,
    Failed(Arc<RangedError>),
}

#[derive(Debug)]
struct State {
    chunks: Vec<ChunkState>,
    verified: usize,
    publishing: bool,
    /// Whether hinted chunks are being verified in the background (see `sweep_hinted`).
    sweeping: bool,
    /// Set when the complete file failed the manifest check: every read fails from then on.
    broken: Option<Arc<RangedError>>,
}

/// Where one blob's chunks come from and go to.
#[derive(Debug)]
pub struct Source {
    pub blobs: Arc<dyn BlobSource>,
    /// The entry in its version, as the blob source names it.
    pub path: String,
    pub entry: Entry,
    /// The blob's name in messages (and the key of the sidecar memo).
    pub blob_key: String,
    pub cache: BlobCache,
    pub key: CacheKey,
    pub verify: Verify,
    pub handle: Handle,
    pub stall: Duration,
    /// Whether the registry answers: no chunk waits on it again right after one stalled.
    pub health: Arc<crate::fetch::RegistryHealth>,
    /// The manifest's binding of `sums` (`chunks::binding`), so a handle of another entry
    /// shares this blob only if it names the same sidecar.
    pub binding: String,
}

/// One large blob being read lazily; shared by all handles of it in this process.
#[derive(Debug)]
pub struct LazyBlob {
    source: Source,
    sums: Arc<ChunkSums>,
    file: PartialFile,
    shared: Arc<Shared>,
    state: Mutex<State>,
    changed: Condvar,
}

impl LazyBlob {
    /// The open lazy blob of `source.key`, or a new one over its partial file. `sums` must be
    /// consistent and fit the shared budget.
    pub fn open(
        shared: &Arc<Shared>,
        source: Source,
        sums: Arc<ChunkSums>,
    ) -> Result<Arc<LazyBlob>, CacheError> {
        let mut open = lock(&shared.open);
        if let Some(blob) = open.get(&source.key).and_then(Weak::upgrade) {
            return Ok(blob);
        }
        let chunks = sums.sha256.len();
        let file = source.cache.partial(&source.key, sums.size, chunks)?;
        let states = file
            .hints()
            .into_iter()
            .map(|h| if h { ChunkState::Hinted } else { ChunkState::Missing })
            .collect();
        let blob = Arc::new(LazyBlob {
            source,
            sums,
            file,
            shared: shared.clone(),
            state: Mutex::new(State {
                chunks: states,
                verified: 0,
                publishing: false,
                sweeping: false,
                broken: None,
            }),
            changed: Condvar::new(),
        });
        open.retain(|_, weak| weak.strong_count() > 0);
        open.insert(blob.source.key, Arc::downgrade(&blob));
        drop(open);
        blob.sweep_if_only_hints_left();
        Ok(blob)
    }

    /// Once every chunk is verified or hinted (written by an earlier open, e.g. one that ended
    /// with a transient registry error), verifies the hinted ones in the background. A reader
    /// may never ask for them: the kernel keeps the pages of version files across opens and
    /// serves them itself, and without this the file would never be complete, so never
    /// published to the cache.
    fn sweep_if_only_hints_left(self: &Arc<Self>) {
        let mut state = lock(&self.state);
        let only_hints_left = !state.sweeping
            && state.broken.is_none()
            && state.chunks.iter().any(|c| matches!(c, ChunkState::Hinted))
            && state.chunks.iter().all(|c| matches!(c, ChunkState::Hinted | ChunkState::Verified));
        if !only_hints_left {
            return;
        }
        state.sweeping = true;
        drop(state);
        let blob = self.clone();
        // Local disk reads and hashing: the blocking pool, one chunk buffer at a time.
        self.source.handle.spawn_blocking(move || blob.sweep_hinted());
    }

    fn sweep_hinted(self: &Arc<Self>) {
        for index in 0..self.sums.sha256.len() {
            {
                let mut state = lock(&self.state);
                if !matches!(state.chunks[index], ChunkState::Hinted) {
                    continue;
                }
                state.chunks[index] = ChunkState::InFlight;
            }
            if self.reverify(index) {
                self.finish(index, Ok(()));
            } else {
                // The hint was wrong (see `partial`): fetch it like any missing chunk.
                lock(&self.state).chunks[index] = ChunkState::Missing;
                self.start(index as u64..=index as u64);
            }
        }
    }

    pub fn len(&self) -> u64 {
        self.sums.size
    }

    pub fn is_empty(&self) -> bool {
        self.sums.size == 0
    }

    pub fn binding(&self) -> &str {
        &self.source.binding
    }

    fn chunk_count(&self) -> u64 {
        self.sums.sha256.len() as u64
    }

    /// Starts fetching the chunks of `range` not yet present or in flight.
    fn start(self: &Arc<Self>, range: RangeInclusive<u64>) {
        let mut state = lock(&self.state);
        if state.broken.is_some() {
            return;
        }
        for index in range {
            // Bounded by the chunk count, itself a Vec length.
            let index = index as usize;
            let hinted = match state.chunks.get(index) {
                Some(ChunkState::Missing | ChunkState::Failed(_)) => false,
                Some(ChunkState::Hinted) => true,
                Some(ChunkState::InFlight | ChunkState::Verified) | None => continue,
            };
            state.chunks[index] = ChunkState::InFlight;
            let blob = self.clone();
            self.source.handle.spawn(async move {
                let result = blob.clone().fetch(index, hinted).await;
                blob.finish(index, result);
            });
        }
    }

    /// Waits until chunk `index` is verified, or returns why it cannot be.
    fn wait(&self, index: usize) -> Result<(), Arc<RangedError>> {
        let mut state = lock(&self.state);
        loop {
            if let Some(err) = &state.broken {
                return Err(err.clone());
            }
            match &state.chunks[index] {
                ChunkState::Verified => return Ok(()),
                ChunkState::Failed(err) => return Err(err.clone()),
                // Someone else's failure was already taken back for a retry; fetch again.
                ChunkState::Missing | ChunkState::Hinted => {
                    return Err(Arc::new(RangedError::Lost {
                        blob: self.source.blob_key.clone(),
                        index,
                    }));
                }
                ChunkState::InFlight => {
                    state = self.changed.wait(state).unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }

    async fn fetch(self: Arc<Self>, index: usize, hinted: bool) -> Result<(), RangedError> {
        let blob = self.source.blob_key.clone();
        let range = self.sums.range(index);
        let len = range.end - range.start;
        if hinted {
            let me = self.clone();
            let reverified = tokio::task::spawn_blocking(move || me.reverify(index)).await;
            if matches!(reverified, Ok(true)) {
                return Ok(());
            }
        }
        // `fits` was checked at open, so the count is a u32 and never exceeds the total.
        let _permit = self.shared.budget.clone().acquire_many_owned(len as u32).await;
        let _in_flight = InFlight::new(&self.shared.counters, len);
        let health = &self.source.health;
        let stalled = || RangedError::Stalled { blob: blob.clone(), index, after: health.hold() };
        if health.stalled_since().is_some() {
            return Err(stalled());
        }
        let fetched = tokio::time::timeout(
            self.source.stall,
            self.source.blobs.range(&self.source.path, &self.source.entry, range.clone()),
        )
        .await;
        match &fetched {
            Ok(_) => health.answered(),
            Err(_) => health.timed_out(),
        }
        let bytes: Bytes = fetched
            .map_err(|_| stalled())?
            .map_err(|source| RangedError::Source { blob: blob.clone(), index, source })?;
        self.shared.counters.add_fetched(bytes.len() as u64);
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            if !me.sums.verify(index, &bytes) {
                return Err(RangedError::ChunkMismatch { blob: me.source.blob_key.clone(), index });
            }
            me.file.write_chunk(index, range.start, &bytes).map_err(|source| RangedError::Io {
                blob: me.source.blob_key.clone(),
                index,
                source,
            })
        })
        .await
        .map_err(|_| RangedError::Lost { blob, index })?
    }

    /// Whether the on-disk copy of a hinted chunk is good; a bad one loses its hint.
    fn reverify(&self, index: usize) -> bool {
        let range = self.sums.range(index);
        // A chunk fits the budget, hence memory.
        let mut buf = vec![0u8; (range.end - range.start) as usize];
        let good =
            self.file.read_exact_at(&mut buf, range.start).is_ok() && self.sums.verify(index, &buf);
        if !good {
            debug!(blob = %self.source.blob_key, index, "cached chunk failed re-verification");
            let _ = self.file.forget_chunk(index);
        }
        good
    }

    fn finish(self: &Arc<Self>, index: usize, result: Result<(), RangedError>) {
        let mut state = lock(&self.state);
        match result {
            Ok(()) => {
                state.chunks[index] = ChunkState::Verified;
                state.verified += 1;
            }
            Err(err) => {
                warn!(%err, "chunk fetch failed");
                if let RangedError::Io { source, .. } = &err
                    && crate::cache::is_disk_full(source)
                {
                    // Free room for the retry, off this runtime thread (eviction scans).
                    let cache = self.source.cache.clone();
                    self.source.handle.spawn_blocking(move || cache.make_room());
                }
                state.chunks[index] = ChunkState::Failed(Arc::new(err));
            }
        }
        let complete = state.verified == state.chunks.len() && !state.publishing;
        if complete {
            state.publishing = true;
        }
        drop(state);
        self.changed.notify_all();
        if !complete {
            self.sweep_if_only_hints_left();
        }
        if complete {
            let blob = self.clone();
            // Hashing a large file: the blocking pool, never a runtime worker.
            self.source.handle.spawn_blocking(move || blob.publish());
        }
    }

    /// Makes the complete file a cache entry by renaming it into place once it matches the
    /// manifest digest (see [`BlobCache::adopt`]); this handle goes on reading the same inode.
    fn publish(&self) {
        match self.source.cache.adopt(&self.file, &self.source.verify) {
            Ok(adopted) => {
                debug!(blob = %self.source.blob_key, ?adopted, "lazily fetched blob is complete");
            }
            Err(source @ (CacheError::DigestMismatch { .. } | CacheError::SizeMismatch { .. })) => {
                // Chunks matched the sidecar but not the manifest: the registry is broken.
                // Fail every further read rather than serve bytes the manifest disowns.
                let err =
                    Arc::new(RangedError::Whole { blob: self.source.blob_key.clone(), source });
                error!(%err, "lazily fetched blob failed whole-file verification");
                lock(&self.state).broken = Some(err);
                self.changed.notify_all();
            }
            // Every chunk served was verified on its own, so reads go on; a later open of the
            // file tries again.
            Err(err) => {
                warn!(blob = %self.source.blob_key, %err, "cannot publish lazily fetched blob")
            }
        }
    }
}

/// One open file over a [`LazyBlob`], with its own sequential-read detection.
#[derive(Debug)]
pub struct LazyHandle {
    blob: Arc<LazyBlob>,
    seq: Mutex<Sequential>,
}

#[derive(Debug, Default)]
struct Sequential {
    /// Last chunk read, if any.
    last: Option<u64>,
    /// Chunks prefetched ahead of it.
    window: u64,
}

impl LazyHandle {
    pub fn new(blob: Arc<LazyBlob>) -> LazyHandle {
        LazyHandle { blob, seq: Mutex::default() }
    }

    pub fn len(&self) -> u64 {
        self.blob.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blob.is_empty()
    }

    /// Fills `buf` from `offset` (less only at the end of the file), waiting for the chunks it
    /// touches, all verified; returns the byte count. Blocks: call from plain threads only.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Arc<RangedError>> {
        let blob = &self.blob;
        let end = (offset + buf.len() as u64).min(blob.len());
        if offset >= end {
            return Ok(0);
        }
        let chunk_bytes = blob.sums.chunk_bytes;
        let (first, last) = (offset / chunk_bytes, (end - 1) / chunk_bytes);
        let ahead = self.advance(first, last);
        blob.start(first..=last);
        if ahead > 0 {
            blob.start(last + 1..=(last + ahead).min(blob.chunk_count() - 1));
        }
        for index in first..=last {
            // One retry: a failure seen by another reader is retried once by this one.
            let index = index as usize;
            if let Err(err) = blob.wait(index) {
                blob.start(index as u64..=index as u64);
                if blob.wait(index).is_err() {
                    return Err(err);
                }
            }
        }
        // Cannot truncate: at most `buf.len()`.
        let n = (end - offset) as usize;
        blob.file.read_exact_at(&mut buf[..n], offset).map_err(|source| {
            Arc::new(RangedError::Io {
                blob: blob.source.blob_key.clone(),
                index: first as usize,
                source,
            })
        })?;
        Ok(n)
    }

    /// Records a read of chunks `first..=last`; returns how many chunks to prefetch after it.
    fn advance(&self, first: u64, last: u64) -> u64 {
        let mut seq = lock(&self.seq);
        // Request threads may deliver neighbouring reads slightly out of order.
        let sequential = match seq.last {
            None => first == 0,
            Some(prev) => first + 1 >= prev && first <= prev + 1,
        };
        if !sequential {
            *seq = Sequential { last: Some(last), window: 0 };
            return 0;
        }
        if seq.last.is_none_or(|prev| last > prev) {
            seq.window = (seq.window * 2).clamp(1, MAX_PREFETCH_CHUNKS);
        }
        seq.last = Some(seq.last.map_or(last, |prev| prev.max(last)));
        seq.window
    }
}
