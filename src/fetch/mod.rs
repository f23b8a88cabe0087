//! Brings manifest entries into the local cache, verified: stored files from their version's
//! [`BlobSource`] (the seam: the artfs registry or a W&B server), reference entries from their URI. Also `artfs get`: a whole version copied out of the cache.
//!
//! [`Fetcher::open`] is the mount's way in: large stored blobs with a chunk sidecar are read
//! lazily, chunk by chunk (`ranged`); everything else is fetched whole before the first byte,
//! because a reference or a blob without a sidecar can only be verified once complete. Opening a
//! file that is already open lazily shares its chunks, and recently fetched sidecars are kept in
//! a bounded memo, so reopening a large file costs no request to the registry.
//!
//! Everything here is synchronous and must run on plain threads (FUSE workers, scoped threads);
//! the async sources are driven through the one runtime `Handle` the caller passes in.

pub mod health;
pub mod ranged;
pub mod stall;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::runtime::Handle;

use crate::cache::{BlobCache, CacheError, CacheKey, CachedBlob, Verify};
use crate::manifest::{ContentCheck, Entry, Manifest};
use crate::refs::{self, RefError};
use crate::source::BlobSource;
use crate::store::chunks::{self, ChunkSums};
use crate::store::cloud::Clouds;
pub use health::RegistryHealth;
use ranged::{FetchStats, LazyBlob, LazyHandle, RangedError, Shared};
pub use stall::{StallBound, StallError};

/// Files downloaded at once by `artfs get`.
const GET_PARALLEL_FILES: usize = 8;

/// Chunk checksums of recently opened large files kept in memory, so that opening one again
/// (while it is still not complete in the cache) costs no request: at most about 6 MiB, the
/// sidecars of 256 GiB of data in 4 MiB chunks.
const SIDECAR_MEMO_SUMS: usize = 64 * 1024;

/// A download that receives no byte for this long fails instead of waiting forever on a registry
/// that stopped answering. Generous: backends retry slow requests themselves within it.
pub const FETCH_STALL_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{artifact}: entry {path}: {source}")]
    Cache {
        artifact: String,
        path: String,
        #[source]
        source: CacheError,
    },
    #[error("{artifact}: entry {path}: digest {digest} names no blob in this registry")]
    NoBlob { artifact: String, path: String, digest: String },
    #[error("{artifact}: entry {path}: {source}")]
    Reference {
        artifact: String,
        path: String,
        #[source]
        source: RefError,
    },
    #[error("{artifact}: entry {path}: {source}")]
    Chunk {
        artifact: String,
        path: String,
        #[source]
        source: Arc<RangedError>,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Fetches entries into one cache (from the blob source each call names).
#[derive(Debug, Clone)]
pub struct Fetcher {
    cache: BlobCache,
    handle: Handle,
    clouds: Clouds,
    /// Distinguishes this process's reads of unpinned references (see `reference_key`).
    session: String,
    stall_timeout: Duration,
    /// Whether the registry answers; shared with the filesystem (`fs`) and every lazy blob.
    health: Arc<RegistryHealth>,
    /// Memory budget, counters and open lazy blobs, shared by every clone.
    ranged: Arc<Shared>,
    /// Stored entries larger than this are read lazily when they have a chunk sidecar.
    lazy_min_bytes: u64,
    /// Sidecars fetched recently, shared by every clone.
    sidecars: Arc<Mutex<SidecarMemo>>,
}

/// An entry opened for reading: complete in the cache, or being fetched chunk by chunk.
#[derive(Debug)]
pub enum OpenedBlob {
    Cached(CachedBlob),
    Lazy(LazyHandle),
}

impl OpenedBlob {
    pub fn len(&self) -> u64 {
        match self {
            OpenedBlob::Cached(b) => b.len(),
            OpenedBlob::Lazy(l) => l.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Fetcher {
    /// Reads references with the environment's cloud credentials; see `with_clouds`.
    pub fn new(cache: BlobCache, handle: Handle) -> Fetcher {
        let session = format!("{}-{}", std::process::id(), fastrand::u64(..));
        Fetcher {
            cache,
            handle,
            clouds: Clouds::from_env(),
            session,
            stall_timeout: FETCH_STALL_TIMEOUT,
            health: Arc::new(RegistryHealth::new(FETCH_STALL_TIMEOUT)),
            ranged: Arc::new(Shared::new(ranged::RANGED_BUDGET_BYTES)),
            lazy_min_bytes: chunks::CHUNK_BYTES,
            sidecars: Arc::new(Mutex::new(SidecarMemo::new(SIDECAR_MEMO_SUMS))),
        }
    }

    /// Replaces [`ranged::RANGED_BUDGET_BYTES`], the bound on chunk bytes in memory at once.
    pub fn with_ranged_budget(mut self, bytes: u64) -> Fetcher {
        self.ranged = Arc::new(Shared::new(bytes));
        self
    }

    /// Replaces the size above which stored entries are read lazily ([`chunks::CHUNK_BYTES`]:
    /// smaller blobs have no sidecar, so asking for one would only cost a request). Tests lower
    /// it to work with sidecars of small chunks.
    pub fn with_lazy_min_bytes(mut self, bytes: u64) -> Fetcher {
        self.lazy_min_bytes = bytes;
        self
    }

    /// Bytes fetched so far and the peak of chunk bytes in memory, over all clones.
    pub fn stats(&self) -> FetchStats {
        self.ranged.counters.snapshot()
    }

    /// Opens an entry for reading: lazily, chunk by chunk, if it is a stored blob with a chunk
    /// sidecar and not complete in the cache; otherwise fetched whole first (see `cached`).
    /// Blocks (sidecar or whole download): call from plain threads only.
    pub fn open(
        &self,
        blobs: &Arc<dyn BlobSource>,
        artifact: &str,
        path: &str,
        entry: &Entry,
    ) -> Result<OpenedBlob, FetchError> {
        if let Some(lazy) = self.lazy(blobs, artifact, path, entry)? {
            return Ok(OpenedBlob::Lazy(lazy));
        }
        self.cached(blobs, artifact, path, entry).map(OpenedBlob::Cached)
    }

    /// A lazy handle on a stored entry, or `None` where only the whole-file path applies.
    fn lazy(
        &self,
        blobs: &Arc<dyn BlobSource>,
        artifact: &str,
        path: &str,
        entry: &Entry,
    ) -> Result<Option<LazyHandle>, FetchError> {
        if entry.is_reference() {
            return Ok(None);
        }
        let (Some((key, verify @ Verify::Md5(_))), Some(size)) =
            (Self::stored_key(entry), entry.size)
        else {
            return Ok(None);
        };
        // One chunk or less has no sidecar: fetching it whole costs the same as a range.
        if size <= self.lazy_min_bytes || self.cache.entry_path(&key).exists() {
            return Ok(None);
        }
        // Chunk checksums are trusted only when the manifest names them (`chunks::binding`):
        // an unbound sidecar may have been rewritten together with the blob.
        let Some(binding) = chunks::binding(entry) else {
            return Ok(None);
        };
        // Open already (another handle, or a kernel that opens once per reader): share it
        // without asking the registry for its sidecar again.
        if let Some(blob) = self.ranged.open_blob(&key) {
            return Ok(
                (blob.len() == size && blob.binding() == binding).then(|| LazyHandle::new(blob))
            );
        }
        let Some(blob_key) = blobs.locate(path, entry) else {
            return Ok(None);
        };
        let Some(sums) = self.sidecar(blobs, path, entry, &blob_key, size, binding) else {
            return Ok(None);
        };
        let source = ranged::Source {
            blobs: blobs.clone(),
            path: path.to_owned(),
            entry: entry.clone(),
            blob_key,
            cache: self.cache.clone(),
            key,
            verify,
            handle: self.handle.clone(),
            stall: self.registry_bound(),
            binding: binding.to_owned(),
        };
        let blob = LazyBlob::open(&self.ranged, source, sums).map_err(|source| {
            FetchError::Cache { artifact: artifact.to_owned(), path: path.to_owned(), source }
        })?;
        Ok(Some(LazyHandle::new(blob)))
    }

    /// The chunk sidecar of a blob of `size` bytes, if it has a usable one whose bytes hash to
    /// `binding` (the manifest entry's): remembered from an earlier open, else fetched. Any
    /// failure to read it only means the whole-file path, which verifies everything anyway.
    fn sidecar(
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
    fn fetch_sidecar(
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

    /// Replaces [`FETCH_STALL_TIMEOUT`] (also how long requests fail fast after one stalled).
    pub fn with_stall_timeout(mut self, timeout: Duration) -> Fetcher {
        self.stall_timeout = timeout;
        self.health = Arc::new(RegistryHealth::new(timeout));
        self
    }

    /// The bound of every request to the registry, keeping its health.
    fn registry_bound(&self) -> StallBound {
        StallBound::registry(self.stall_timeout, self.health.clone())
    }

    /// Whether the registry answers, as seen by this fetcher's clones.
    pub fn health(&self) -> &Arc<RegistryHealth> {
        &self.health
    }

    /// Whether the entry is (probably) in the cache already, i.e. [`Fetcher::cached`] will not
    /// download. A hint only: the entry may be evicted right after.
    pub fn is_cached(&self, entry: &Entry) -> bool {
        let key = match Self::stored_key(entry) {
            Some((key, _)) if !entry.is_reference() => Some(key),
            _ => self.reference_key(entry),
        };
        key.is_some_and(|k| self.cache.entry_path(&k).exists())
    }

    pub fn with_clouds(mut self, clouds: Clouds) -> Fetcher {
        self.clouds = clouds;
        self
    }

    /// Cache key of a reference entry. A pinned reference is keyed by (URI, recorded etag or
    /// version), like W&B's cache. An unpinned one (logged without checksum) has no identity
    /// beyond its URI, so it is keyed per process: each `artfs get` and each mount reads it fresh
    /// once, rather than serving what some earlier process saw. Its recorded size, if any, is
    /// part of the key: entries of one URI with different sizes must not share bytes (each is
    /// checked against its own size).
    fn reference_key(&self, entry: &Entry) -> Option<CacheKey> {
        let (uri, tag) = refs::cache_identity(entry)?;
        if refs::is_pinned(entry) {
            return Some(CacheKey::from_reference(&uri, &tag));
        }
        let tag = match entry.size {
            Some(size) => format!("unpinned:{}:{size}", self.session),
            None => format!("unpinned:{}", self.session),
        };
        Some(CacheKey::from_reference(&uri, &tag))
    }

    pub fn cache(&self) -> &BlobCache {
        &self.cache
    }

    /// The cache key and check of a stored entry; `None` for references.
    fn stored_key(entry: &Entry) -> Option<(CacheKey, Verify)> {
        match entry.content_check() {
            ContentCheck::Md5(raw) => Some((CacheKey::Md5(raw), Verify::Md5(raw))),
            ContentCheck::Xxh128(raw) => Some((CacheKey::Xxh128(raw), Verify::Xxh128(raw))),
            ContentCheck::None => None,
        }
    }

    /// The entry's bytes in the cache, fetched and verified first if needed. `artifact` and
    /// `path` only name the entry in errors. A fill that runs out of disk space makes room in
    /// the cache (see [`BlobCache::make_room`]) and is tried once more.
    pub fn cached(
        &self,
        blobs: &Arc<dyn BlobSource>,
        artifact: &str,
        path: &str,
        entry: &Entry,
    ) -> Result<CachedBlob, FetchError> {
        match self.cached_once(blobs, artifact, path, entry) {
            Err(FetchError::Cache { source: CacheError::DiskFull { .. }, .. })
                if self.cache.make_room() =>
            {
                self.cached_once(blobs, artifact, path, entry)
            }
            other => other,
        }
    }

    fn cached_once(
        &self,
        blobs: &Arc<dyn BlobSource>,
        artifact: &str,
        path: &str,
        entry: &Entry,
    ) -> Result<CachedBlob, FetchError> {
        let cache_err = |source| FetchError::Cache {
            artifact: artifact.to_owned(),
            path: path.to_owned(),
            source,
        };
        let handle = &self.handle;
        let counters = &self.ranged.counters;
        if entry.is_reference() {
            let Some(key) = self.reference_key(entry) else {
                return Err(FetchError::NoBlob {
                    artifact: artifact.to_owned(),
                    path: path.to_owned(),
                    digest: entry.digest.clone(),
                });
            };
            let clouds = &self.clouds;
            // References are not the registry: a silent one says nothing of the registry.
            let bound = StallBound::new(self.stall_timeout);
            // Before the cache too: a copy fetched when some reader allowed it is no reason to
            // serve it to a read this reader does not allow.
            handle
                .block_on(bound.answer(refs::check_allowed(clouds, entry)))
                .unwrap_or(Ok(()))
                .map_err(|source| FetchError::Reference {
                    artifact: artifact.to_owned(),
                    path: path.to_owned(),
                    source,
                })?;
            // The source is pinned by etag/version while it is read (unless logged without
            // checksum); the cache checks the size whenever one is recorded.
            let size = entry.size;
            return self
                .cache
                .get_or_fill(&key, &Verify::SizeOnly, size, |out: &mut dyn Write| {
                    let what = refs::redact(entry.reference.as_deref().unwrap_or(""));
                    let body = refs::fetch(clouds, entry, None);
                    handle.block_on(copy_body(&bound, &what, body, out, counters))
                })
                .map_err(|source| match source {
                    // Show the reference's own message (URI, expected and found etag).
                    CacheError::Fetch { source, .. } => match source.downcast::<RefError>() {
                        Ok(r) => FetchError::Reference {
                            artifact: artifact.to_owned(),
                            path: path.to_owned(),
                            source: *r,
                        },
                        Err(other) => cache_err(CacheError::Fetch { key, source: other }),
                    },
                    other => cache_err(other),
                });
        }
        let Some((key, verify)) = Self::stored_key(entry) else {
            return Err(FetchError::NoBlob {
                artifact: artifact.to_owned(),
                path: path.to_owned(),
                digest: entry.digest.clone(),
            });
        };
        // An XXH128 entry's blob is found by its recorded MD5 and verified by its XXH128.
        let Some(blob) = blobs.locate(path, entry) else {
            return Err(FetchError::NoBlob {
                artifact: artifact.to_owned(),
                path: path.to_owned(),
                digest: entry.digest.clone(),
            });
        };
        let bound = self.registry_bound();
        self.cache
            .get_or_fill(&key, &verify, entry.size, |out: &mut dyn Write| {
                handle.block_on(copy_body(&bound, &blob, blobs.stream(path, entry), out, counters))
            })
            .map_err(cache_err)
    }

    /// Downloads every entry of a version into `root`, verifying each; files are written to a
    /// temporary name and renamed, so a failure leaves no file with wrong content.
    pub fn download(
        &self,
        blobs: &Arc<dyn BlobSource>,
        artifact: &str,
        manifest: &Manifest,
        root: &Path,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<u64, FetchError> {
        let entries: Vec<(&String, &Entry)> = manifest.contents.iter().collect();
        let is_entry = |p: &Path| {
            p.strip_prefix(root)
                .ok()
                .and_then(Path::to_str)
                .is_some_and(|rel| manifest.contents.contains_key(rel))
        };
        let next = AtomicUsize::new(0);
        let results: Vec<Result<u64, FetchError>> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..GET_PARALLEL_FILES.min(entries.len().max(1)))
                .map(|_| {
                    s.spawn(|| {
                        let mut bytes = 0;
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some((path, entry)) = entries.get(i) else {
                                return Ok(bytes);
                            };
                            let blob = self.cached(blobs, artifact, path, entry)?;
                            copy_out(&blob, &root.join(path), &is_entry)?;
                            bytes += blob.len();
                            progress(blob.len());
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        results.into_iter().sum()
    }
}

/// Writes a whole body to `out` (a cache fill), each piece within `bound`; `what` names the
/// source in a stall's error. A request or piece error ends the copy with that error, boxed as
/// it is (callers downcast a reference's own error).
async fn copy_body<S, E>(
    bound: &StallBound,
    what: &str,
    request: impl Future<Output = Result<S, E>>,
    out: &mut dyn Write,
    counters: &ranged::Counters,
) -> Result<(), crate::cache::FetchError>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    let stalled = |err: StallError| -> crate::cache::FetchError { format!("{what}: {err}").into() };
    let mut body = bound.answer(request).await.map_err(stalled)??;
    while let Some(piece) = bound.next(&mut body).await.map_err(stalled)? {
        let piece = piece?;
        counters.add_fetched(piece.len() as u64);
        out.write_all(&piece)?;
    }
    Ok(())
}

/// A fetched sidecar and the digest of its bytes (compared with an entry's binding).
#[derive(Debug)]
struct Sidecar {
    sums: Arc<ChunkSums>,
    digest: String,
}

/// Recently fetched chunk sidecars by blob key, bounded by the number of checksums they hold;
/// the oldest fetched goes first. Blobs are content-addressed, so a remembered sidecar never
/// goes stale (and each use checks it against the entry's binding).
#[derive(Debug)]
struct SidecarMemo {
    max_sums: usize,
    sums: usize,
    by_blob: HashMap<String, Arc<Sidecar>>,
    fetched: VecDeque<String>,
}

impl SidecarMemo {
    fn new(max_sums: usize) -> SidecarMemo {
        SidecarMemo { max_sums, sums: 0, by_blob: HashMap::new(), fetched: VecDeque::new() }
    }

    fn get(&self, blob_key: &str) -> Option<Arc<Sidecar>> {
        self.by_blob.get(blob_key).cloned()
    }

    fn insert(&mut self, blob_key: &str, sidecar: Arc<Sidecar>) {
        let count = sidecar.sums.sha256.len();
        if count > self.max_sums || self.by_blob.contains_key(blob_key) {
            return;
        }
        while self.sums + count > self.max_sums {
            let Some(oldest) = self.fetched.pop_front() else { break };
            if let Some(dropped) = self.by_blob.remove(&oldest) {
                self.sums -= dropped.sums.sha256.len();
            }
        }
        self.sums += count;
        self.fetched.push_back(blob_key.to_owned());
        self.by_blob.insert(blob_key.to_owned(), sidecar);
    }
}

/// Copies a cached blob to `dest` through a temporary file in the same directory, named so that
/// it is none of the version's entries (`is_entry`): a temporary file must never replace one.
fn copy_out(
    blob: &CachedBlob,
    dest: &Path,
    is_entry: &dyn Fn(&Path) -> bool,
) -> Result<(), FetchError> {
    let write_err = |source| FetchError::Write { path: dest.to_owned(), source };
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = std::iter::repeat_with(|| {
        let id = format!("{}-{:08x}", std::process::id(), fastrand::u32(..));
        dest.with_file_name(format!(".{name}.artfs-{id}.tmp"))
    })
    .find(|t| !is_entry(t))
    .unwrap_or_else(|| dest.with_file_name(format!(".{name}.artfs.tmp")));
    let result = (|| {
        std::fs::copy(blob.path(), &tmp)?;
        // Cache entries are read-only; the user's copy is theirs to change.
        let mut perms = std::fs::metadata(&tmp)?.permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
        std::fs::set_permissions(&tmp, perms)?;
        std::fs::rename(&tmp, dest)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(write_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums(count: usize) -> Arc<Sidecar> {
        let sums =
            ChunkSums { chunk_bytes: 1, size: count as u64, sha256: vec![String::new(); count] };
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
