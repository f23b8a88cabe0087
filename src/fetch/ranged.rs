//! Lazy ranged reads of large stored blobs: a read waits only for the chunks it touches.
//!
//! Applies to blobs artfs stored with a chunk sidecar (`store::chunks`, every blob of more than
//! one chunk). Each chunk is fetched with one ranged GET; the body is hashed as it streams in
//! ([`Receiving`], which keeps the pieces as they arrived), and a chunk whose sum matches
//! (BLAKE3, or SHA-256 in older sidecars) is served from memory at once and written to the blob's
//! [`PartialFile`]; it counts as written (and may be read back from the file) only after that.
//! A read is served only from chunks verified by this process, so no unverified byte ever
//! reaches a reader (nor the partial file, which other processes read too).
//! Once every chunk is present the whole file is checked against the manifest MD5 and renamed
//! into the cache as a complete entry ([`BlobCache::adopt`]), without a copy. Blobs without a
//! sidecar and references take the whole-file path in `fetch`.
//!
//! Throughput: each handle detects sequential reads and prefetches a window of chunks ahead that
//! doubles on every new chunk up to [`MAX_PREFETCH_CHUNKS`]; the chunks run as concurrent tasks
//! on the runtime. One request per chunk, not one per run of chunks: measured on speed.sh row 1,
//! 16 MiB ranges cost the server (ministack) twice the CPU per byte of 4 MiB ones and made the
//! read slower, and a window of chunks in flight hides the per-request round trip. A verified
//! chunk stays in memory
//! (`Recent`, [`RECENT_BYTES`] across all files) until a read consumes its end, so the reader
//! that waited for it copies it from there instead of reading it back from the partial file.
//! Memory: every chunk in flight holds permits of one [`Semaphore`] of bytes shared by all open
//! files ([`RANGED_BUDGET_BYTES`] by default) until it is written, so many open files cannot
//! multiply memory use.
//!
//! Threads: [`LazyHandle::read`] blocks, so it runs only on plain threads (FUSE request threads);
//! fetch tasks run on the runtime, with hashing and disk writes in its blocking pool.

use std::collections::{HashMap, VecDeque};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};

use bytes::Bytes;
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, error, warn};

use crate::cache::{BlobCache, CacheError, CacheKey, PartialFile, Verify};
use crate::http::{BodyError, StallBound};
use crate::manifest::Entry;
use crate::source::{BlobSource, SourceError};
use crate::store::chunks::{ChunkAlgo, ChunkSums, RunningSum};

/// Default bound on chunk bytes fetched but not yet written to disk, across all open files.
pub const RANGED_BUDGET_BYTES: u64 = 64 << 20;

/// Largest prefetch window of a sequential reader, in chunks (32 MiB with 4 MiB chunks).
pub const MAX_PREFETCH_CHUNKS: u64 = 8;

/// Bound on verified chunk bytes kept in memory for the reads that follow, across all files.
pub const RECENT_BYTES: u64 = 48 << 20;

#[derive(Debug, thiserror::Error)]
pub enum RangedError {
    #[error("{blob}: chunk {index} does not match its checksum; nothing of it was served")]
    ChunkMismatch { blob: String, index: usize },
    #[error("{blob}: chunk {index}: {source}")]
    Source {
        blob: String,
        index: usize,
        #[source]
        source: SourceError,
    },
    #[error("{blob}: chunk {index}: {source}")]
    Stalled {
        blob: String,
        index: usize,
        #[source]
        source: BodyError,
    },
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
    #[error(
        "{blob}: chunk {index}: the response ended early; is the stored blob shorter than its \
         manifest entry?"
    )]
    Short { blob: String, index: usize },
}

/// Counters shared by every handle of one fetcher; read by tests and benchmarks.
#[derive(Debug, Default)]
pub struct Counters {
    bytes_fetched: AtomicU64,
    in_flight_bytes: AtomicU64,
    peak_in_flight_bytes: AtomicU64,
    /// Opens that failed (a download or its verification): what a mount's metrics count.
    errors: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FetchStats {
    /// Bytes received from the registry (whole files and chunks).
    pub bytes_fetched: u64,
    /// Most chunk bytes held in memory at once.
    pub peak_in_flight_bytes: u64,
    /// Opens that failed to fetch or verify their entry.
    pub errors: u64,
}

impl Counters {
    pub fn add_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add_fetched(&self, bytes: u64) {
        self.bytes_fetched.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> FetchStats {
        FetchStats {
            bytes_fetched: self.bytes_fetched.load(Ordering::Relaxed),
            peak_in_flight_bytes: self.peak_in_flight_bytes.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// Chunk bytes in memory until written: counted, and holding their permits of the budget.
struct InFlight {
    shared: Arc<Shared>,
    bytes: u64,
    /// Released (returned to the budget) on drop.
    _permit: OwnedSemaphorePermit,
}

impl InFlight {
    /// Waits for `bytes` of budget (a u32: one chunk, and `fits` was checked at open).
    async fn acquire(shared: &Arc<Shared>, bytes: u64) -> Option<InFlight> {
        let permit = shared.budget.clone().acquire_many_owned(bytes as u32).await.ok()?;
        let counters = &shared.counters;
        let now = counters.in_flight_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        counters.peak_in_flight_bytes.fetch_max(now, Ordering::Relaxed);
        Some(InFlight { shared: shared.clone(), bytes, _permit: permit })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.shared.counters.in_flight_bytes.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// A verified chunk's bytes, in the pieces they arrived in.
#[derive(Debug)]
pub(super) struct ChunkData {
    pub(super) parts: Vec<Bytes>,
    pub(super) len: u64,
}

impl ChunkData {
    /// Copies the bytes from `offset` (within the chunk) into all of `buf`.
    pub(super) fn copy_to(&self, offset: u64, buf: &mut [u8]) {
        let mut skip = offset as usize;
        let mut filled = 0;
        for part in &self.parts {
            if filled == buf.len() {
                break;
            }
            if skip >= part.len() {
                skip -= part.len();
                continue;
            }
            let n = (part.len() - skip).min(buf.len() - filled);
            buf[filled..filled + n].copy_from_slice(&part[skip..skip + n]);
            filled += n;
            skip = 0;
        }
        assert_eq!(filled, buf.len(), "a copy within the chunk's {} bytes", self.len);
    }
}

/// Verified chunks of all open files kept in memory, oldest first, at most `max_bytes`.
#[derive(Debug, Default)]
struct Recent {
    chunks: VecDeque<(u64, usize, Arc<ChunkData>)>,
    bytes: u64,
    max_bytes: u64,
}

impl Recent {
    fn insert(&mut self, blob: u64, index: usize, data: Arc<ChunkData>) {
        if data.len > self.max_bytes {
            return;
        }
        self.remove(blob, index);
        self.bytes += data.len;
        self.chunks.push_back((blob, index, data));
        while self.bytes > self.max_bytes {
            let Some((_, _, old)) = self.chunks.pop_front() else { break };
            self.bytes -= old.len;
        }
    }

    fn get(&self, blob: u64, index: usize) -> Option<Arc<ChunkData>> {
        self.chunks.iter().find(|(b, i, _)| (*b, *i) == (blob, index)).map(|(_, _, d)| d.clone())
    }

    fn remove(&mut self, blob: u64, index: usize) {
        if let Some(at) = self.chunks.iter().position(|(b, i, _)| (*b, *i) == (blob, index))
            && let Some((_, _, old)) = self.chunks.remove(at)
        {
            self.bytes -= old.len;
        }
    }

    fn remove_blob(&mut self, blob: u64) {
        let bytes = &mut self.bytes;
        self.chunks.retain(|(b, _, d)| {
            let keep = *b != blob;
            if !keep {
                *bytes -= d.len;
            }
            keep
        });
    }
}

/// One chunk's body as it arrives: its pieces, unjoined, and their running sum.
#[derive(Debug)]
pub(super) struct Receiving {
    want: u64,
    parts: Vec<Bytes>,
    received: u64,
    sum: RunningSum,
}

impl Receiving {
    pub(super) fn new(want: u64, algo: ChunkAlgo) -> Receiving {
        Receiving { want, parts: Vec::new(), received: 0, sum: RunningSum::new(algo) }
    }

    fn is_done(&self) -> bool {
        self.received >= self.want
    }

    /// Takes the next piece of the body; bytes past the chunk's end are ignored.
    fn push(&mut self, mut piece: Bytes) {
        let take = (self.want - self.received).min(piece.len() as u64) as usize;
        let part = piece.split_to(take);
        self.sum.update(&part);
        self.received += take as u64;
        if !part.is_empty() {
            self.parts.push(part);
        }
    }

    /// The chunk, if its digest matches `index`'s sum in `sums`.
    pub(super) fn verified(self, sums: &ChunkSums, index: usize) -> Option<ChunkData> {
        let digest = self.sum.finalize();
        sums.matches(index, self.want, &digest)
            .then_some(ChunkData { parts: self.parts, len: self.want })
    }
}

/// One chunk's ranged request: where it goes and what bounds it.
pub(super) struct ChunkRequest<'a> {
    pub(super) blobs: &'a dyn BlobSource,
    pub(super) path: &'a str,
    pub(super) entry: &'a Entry,
    /// The blob's name in errors.
    pub(super) blob_key: &'a str,
    pub(super) stall: &'a StallBound,
    pub(super) counters: &'a Counters,
}

impl ChunkRequest<'_> {
    /// Receives chunk `index` (bytes `range`) with one request, all of it or an error, hashed
    /// in `algo`; checking it is the caller's.
    pub(super) async fn receive(
        &self,
        index: usize,
        range: std::ops::Range<u64>,
        algo: ChunkAlgo,
    ) -> Result<Receiving, RangedError> {
        let blob = self.blob_key;
        let stalled = |source| RangedError::Stalled { blob: blob.to_owned(), index, source };
        let source = |source| RangedError::Source { blob: blob.to_owned(), index, source };
        let mut chunk = Receiving::new(range.end - range.start, algo);
        let request = self.blobs.range_stream(self.path, self.entry, range);
        let answer = self.stall.answer(request).await;
        let mut body = answer.map_err(|e| stalled(e.into()))?.map_err(source)?;
        // Bytes past the chunk are never kept (`Receiving`), so only the rate is bounded here.
        let mut bounded = self.stall.body(u64::MAX);
        while !chunk.is_done() {
            // A stall is no data for a while, however long the whole chunk takes.
            let piece = match bounded.next(&mut body).await.map_err(stalled)? {
                Some(piece) => piece.map_err(source)?,
                None => return Err(RangedError::Short { blob: blob.to_owned(), index }),
            };
            self.counters.add_fetched(piece.len() as u64);
            chunk.push(piece);
        }
        Ok(chunk)
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
    recent: Mutex<Recent>,
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
            recent: Mutex::new(Recent { max_bytes: RECENT_BYTES, ..Recent::default() }),
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

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the state valid, so a panic elsewhere changes nothing.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, Clone)]
enum ChunkState {
    Missing,
    /// The partial file's map says it was written; verified before first use.
    Hinted,
    InFlight,
    /// Verified and served from memory while it is being written to the partial file.
    Held(Arc<HeldChunk>),
    /// Verified and written.
    Verified,
    Failed(Arc<RangedError>),
}

/// A verified chunk being written, and whether a read reached its end while it was (then it
/// need not stay in [`Recent`] once written: sequential readers are past it).
#[derive(Debug)]
struct HeldChunk {
    data: Arc<ChunkData>,
    read_to_end: AtomicBool,
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
    /// Bounds each chunk's request and body, and keeps the registry's health: no chunk waits on
    /// the registry again right after one stalled.
    pub stall: StallBound,
    /// The manifest's binding of `sums` (`chunks::binding`), so a handle of another entry
    /// shares this blob only if it names the same sidecar.
    pub binding: String,
}

/// Names lazy blobs in [`Shared`]'s recent chunks (a key may be opened again, by another sidecar).
static NEXT_BLOB_ID: AtomicU64 = AtomicU64::new(0);

/// One large blob being read lazily; shared by all handles of it in this process.
#[derive(Debug)]
pub struct LazyBlob {
    id: u64,
    source: Source,
    sums: Arc<ChunkSums>,
    file: PartialFile,
    shared: Arc<Shared>,
    state: Mutex<State>,
    changed: Condvar,
    /// Held while a chunk is written to `file` (see `store`).
    writing: Mutex<()>,
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
        let chunks = sums.count();
        let file = source.cache.partial(&source.key, sums.size, chunks)?;
        let states = file
            .hints()
            .into_iter()
            .map(|h| if h { ChunkState::Hinted } else { ChunkState::Missing })
            .collect();
        let blob = Arc::new(LazyBlob {
            id: NEXT_BLOB_ID.fetch_add(1, Ordering::Relaxed),
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
            writing: Mutex::new(()),
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
        for index in 0..self.sums.count() {
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
        self.sums.count() as u64
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
                Some(ChunkState::InFlight | ChunkState::Held(_) | ChunkState::Verified) | None => {
                    continue;
                }
            };
            state.chunks[index] = ChunkState::InFlight;
            let blob = self.clone();
            self.source.handle.spawn(async move {
                match hinted {
                    true => blob.fetch_hinted(index).await,
                    false => blob.fetch(index).await,
                }
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
                ChunkState::Held(_) | ChunkState::Verified => return Ok(()),
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

    /// A chunk the partial file's map says was written: used if it re-verifies, else fetched.
    async fn fetch_hinted(self: Arc<Self>, index: usize) {
        let me = self.clone();
        let reverified = tokio::task::spawn_blocking(move || me.reverify(index)).await;
        if matches!(reverified, Ok(true)) {
            self.finish(index, Ok(()));
        } else {
            self.fetch(index).await;
        }
    }

    /// Fetches chunk `index` with one request, checks it, and stores it or finishes it with
    /// the error.
    async fn fetch(self: Arc<Self>, index: usize) {
        match self.receive(index).await {
            Ok((data, held)) => self.store(index, data, held),
            Err(err) => self.finish(index, Err(Arc::new(err))),
        }
    }

    /// Chunk `index`'s verified bytes, holding their share of the memory budget.
    async fn receive(self: &Arc<Self>, index: usize) -> Result<(ChunkData, InFlight), RangedError> {
        let blob = &self.source.blob_key;
        let range = self.sums.range(index);
        let Some(held) = InFlight::acquire(&self.shared, range.end - range.start).await else {
            return Err(RangedError::Lost { blob: blob.clone(), index });
        };
        let request = ChunkRequest {
            blobs: self.source.blobs.as_ref(),
            path: &self.source.path,
            entry: &self.source.entry,
            blob_key: blob,
            stall: &self.source.stall,
            counters: &self.shared.counters,
        };
        let chunk = request.receive(index, range, self.sums.algo).await?;
        match chunk.verified(&self.sums, index) {
            Some(data) => Ok((data, held)),
            None => Err(RangedError::ChunkMismatch { blob: blob.clone(), index }),
        }
    }

    /// Serves a verified chunk from memory at once, and writes it to the partial file (the
    /// blocking pool): the reads waiting for it need not wait for the disk too, which with
    /// direct writes (`cache::partial`) would be a device round trip per chunk. Once written it
    /// stays in memory for the reads that follow ([`Recent`]) and is marked written; `held` is
    /// released once written.
    fn store(self: &Arc<Self>, index: usize, data: ChunkData, held: InFlight) {
        let data = Arc::new(data);
        let held_chunk =
            Arc::new(HeldChunk { data: data.clone(), read_to_end: AtomicBool::new(false) });
        lock(&self.state).chunks[index] = ChunkState::Held(held_chunk.clone());
        self.changed.notify_all();
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let offset = me.sums.range(index).start;
            let written = {
                // One writer per file: ext4 holds the inode lock through a buffered write and a
                // second writer spins on it (~3 % of the daemon's CPU in a 1 GiB read, `perf`);
                // waiting here sleeps instead.
                let _one_writer = lock(&me.writing);
                me.file.write_chunk_parts(index, offset, &data.parts)
            };
            drop(held);
            let result = written.map_err(|source| {
                Arc::new(RangedError::Io { blob: me.source.blob_key.clone(), index, source })
            });
            if result.is_ok() && !held_chunk.read_to_end.load(Ordering::Relaxed) {
                // Before the chunk counts as written: a read that no longer finds it held
                // finds it here or, evicted from here, on disk.
                lock(&me.shared.recent).insert(me.id, index, data);
            }
            me.finish(index, result);
        });
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

    fn finish(self: &Arc<Self>, index: usize, result: Result<(), Arc<RangedError>>) {
        let mut state = lock(&self.state);
        match result {
            Ok(()) => {
                state.chunks[index] = ChunkState::Verified;
                state.verified += 1;
            }
            Err(err) => {
                warn!(%err, "chunk fetch failed");
                if let RangedError::Io { source, .. } = &*err
                    && crate::cache::is_disk_full(source)
                {
                    // Free room for the retry, off this runtime thread (eviction scans).
                    let cache = self.source.cache.clone();
                    self.source.handle.spawn_blocking(move || cache.make_room());
                }
                state.chunks[index] = ChunkState::Failed(err);
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

    /// Fills `buf` from `offset` with verified chunks: from memory where they still are (a chunk
    /// read to its end leaves it), else from the partial file.
    fn copy_out(&self, offset: u64, buf: &mut [u8]) -> Result<(), Arc<RangedError>> {
        let mut filled = 0;
        while filled < buf.len() {
            let at = offset + filled as u64;
            let index = (at / self.sums.chunk_bytes) as usize;
            let chunk = self.sums.range(index);
            // Within one chunk, hence memory.
            let n = ((chunk.end - at) as usize).min(buf.len() - filled);
            let out = &mut buf[filled..filled + n];
            let held = match &lock(&self.state).chunks[index] {
                ChunkState::Held(held) => Some(held.clone()),
                _ => None,
            };
            if let Some(held) = held {
                held.data.copy_to(at - chunk.start, out);
                if at + n as u64 == chunk.end {
                    held.read_to_end.store(true, Ordering::Relaxed);
                }
                filled += n;
                continue;
            }
            let recent = lock(&self.shared.recent).get(self.id, index);
            match recent {
                Some(data) => {
                    data.copy_to(at - chunk.start, out);
                    if at + n as u64 == chunk.end {
                        lock(&self.shared.recent).remove(self.id, index);
                    }
                }
                None => self.file.read_exact_at(out, at).map_err(|source| {
                    Arc::new(RangedError::Io { blob: self.source.blob_key.clone(), index, source })
                })?,
            }
            filled += n;
        }
        Ok(())
    }

    /// Makes the complete file a cache entry by renaming it into place once it matches the
    /// manifest digest (see [`BlobCache::adopt`]); this handle goes on reading the same inode.
    ///
    /// The whole-file MD5 (~1.5 s of CPU per GiB, after the read) is not redundant with the
    /// chunk checks. They prove the bytes are the ones the entry's sidecar binding names; the
    /// binding lives in `extra`, which no W&B digest covers, so nothing ties it to the MD5. The
    /// cache is keyed by that MD5 and shared by every version, artifact and mount on the
    /// machine, and a hit is not hashed again: a manifest whose MD5 and binding disagree (a
    /// foreign or buggy writer) would otherwise put bytes under a key they do not hash to, and
    /// every other entry naming that MD5 would be served them.
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

impl Drop for LazyBlob {
    fn drop(&mut self) {
        lock(&self.shared.recent).remove_blob(self.id);
    }
}

/// One open file over a [`LazyBlob`], with its own sequential-read detection.
#[derive(Debug)]
pub struct LazyHandle {
    blob: Arc<LazyBlob>,
    seq: Mutex<Sequential>,
}

/// A handle's sequential-read detection: how far ahead to prefetch.
#[derive(Debug, Default)]
pub(super) struct Sequential {
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
        blob.copy_out(offset, &mut buf[..n])?;
        Ok(n)
    }

    fn advance(&self, first: u64, last: u64) -> u64 {
        lock(&self.seq).advance(first, last, MAX_PREFETCH_CHUNKS)
    }
}

impl Sequential {
    /// Records a read of chunks `first..=last`; returns how many chunks to prefetch after it:
    /// none after a jump, else a window doubling on every new chunk up to `max`.
    pub(super) fn advance(&mut self, first: u64, last: u64, max: u64) -> u64 {
        // Request threads may deliver neighbouring reads slightly out of order.
        let sequential = match self.last {
            None => first == 0,
            Some(prev) => first + 1 >= prev && first <= prev + 1,
        };
        if !sequential {
            *self = Sequential { last: Some(last), window: 0 };
            return 0;
        }
        if self.last.is_none_or(|prev| last > prev) {
            self.window = (self.window * 2).clamp(1, max);
        }
        self.last = Some(self.last.map_or(last, |prev| prev.max(last)));
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(data: &ChunkData) -> Vec<u8> {
        let mut out = vec![0u8; data.len as usize];
        data.copy_to(0, &mut out);
        out
    }

    #[test]
    fn a_chunk_is_checked_whatever_its_pieces_and_bytes_past_it_are_ignored() {
        let data: Vec<u8> = (0..13_288u32).map(|i| (i * 31 % 251) as u8).collect();
        for algo in [ChunkAlgo::Blake3, ChunkAlgo::Sha256] {
            chunks_are_checked(&data, &ChunkSums::of(&data, 4096, algo));
        }
        // A body that ends early is not done (`receive` fails it as short).
        let mut chunk = Receiving::new(4096, ChunkAlgo::NEW);
        chunk.push(Bytes::copy_from_slice(&data[..100]));
        assert!(!chunk.is_done());
    }

    fn chunks_are_checked(data: &[u8], sums: &ChunkSums) {
        assert_eq!(sums.count(), 4);
        for (index, range) in [(1, 4096..8192), (3, 12_288..13_288)] {
            let mut body = data[range.clone()].to_vec();
            body.extend_from_slice(b"trailing");
            let mut corrupt = body.clone();
            corrupt[17] ^= 1;
            for piece_len in [1, 999, 4096, 5000] {
                let receive = |body: &[u8]| {
                    let mut chunk = Receiving::new((range.end - range.start) as u64, sums.algo);
                    for piece in body.chunks(piece_len) {
                        chunk.push(Bytes::copy_from_slice(piece));
                    }
                    assert!(chunk.is_done());
                    chunk.verified(sums, index)
                };
                let got = receive(&body).unwrap_or_else(|| panic!("{index} {piece_len}"));
                assert_eq!(joined(&got), data[range.clone()], "{index} {piece_len}");
                assert!(receive(&corrupt).is_none(), "{index} {piece_len}: corrupt accepted");
            }
        }
    }

    #[test]
    fn chunk_data_copies_any_range_across_its_pieces() {
        let bytes: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let parts = bytes.chunks(77).map(Bytes::copy_from_slice).collect();
        let data = ChunkData { parts, len: 1000 };
        for (offset, len) in [(0, 1000), (0, 1), (76, 2), (77, 77), (500, 300), (999, 1), (10, 0)] {
            let mut out = vec![0u8; len];
            data.copy_to(offset as u64, &mut out);
            assert_eq!(out, bytes[offset..offset + len], "{offset}+{len}");
        }
    }

    #[test]
    fn recent_chunks_stay_within_their_bound_oldest_out_first() {
        let chunk = |len: usize| {
            Arc::new(ChunkData { parts: vec![Bytes::from(vec![0u8; len])], len: len as u64 })
        };
        let mut recent = Recent { max_bytes: 300, ..Recent::default() };
        recent.insert(1, 0, chunk(100));
        recent.insert(1, 1, chunk(100));
        recent.insert(2, 0, chunk(100));
        assert!(recent.get(1, 0).is_some() && recent.get(2, 0).is_some());
        assert!(recent.get(2, 1).is_none(), "blob and index both name a chunk");
        recent.insert(2, 1, chunk(100));
        assert!(recent.get(1, 0).is_none(), "the oldest left");
        assert_eq!(recent.bytes, 300);
        // Inserting a chunk again replaces it rather than counting it twice.
        recent.insert(2, 1, chunk(100));
        assert_eq!((recent.bytes, recent.chunks.len()), (300, 3));
        recent.remove(1, 1);
        assert!(recent.get(1, 1).is_none());
        assert_eq!(recent.bytes, 200);
        recent.insert(3, 0, chunk(301));
        assert!(recent.get(3, 0).is_none(), "larger than the bound: not kept");
        recent.remove_blob(2);
        assert_eq!((recent.bytes, recent.chunks.len()), (0, 0));
    }
}
