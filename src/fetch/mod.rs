//! Brings manifest entries into the local cache, verified: stored files from their version's
//! [`BlobSource`] (the seam: the artfs registry or a W&B server), reference entries from their
//! URI. Also `artfs get`: a whole version copied out of the cache (`get`).
//!
//! [`Fetcher::open`] is the mount's way in: large stored blobs with a chunk sidecar are read
//! lazily, chunk by chunk (`ranged`); everything else is fetched whole before the first byte,
//! because a reference or a blob without a sidecar can only be verified once complete. Opening a
//! file that is already open lazily shares its chunks, and recently fetched sidecars are kept in
//! a bounded memo, so reopening a large file costs no request to the registry.
//!
//! Everything here is synchronous and must run on plain threads (FUSE workers, scoped threads);
//! the async sources are driven through the one runtime `Handle` the caller passes in. Every
//! request is bounded by [`StallBound`] (`stall`).
//!
//! Rooms: the lazy open decision and the fetcher's settings here; the whole-file path
//! (`whole`), chunk sidecars (`sidecar`), lazy chunked reads (`ranged`), the stall bound
//! (`stall`), the registry's health (`health`), entries too large for the cache read through a
//! bounded window (`stream`, `window`) and `artfs get` with its space check (`get`, `space`).

mod cancel;
mod get;
pub mod ranged;
mod sidecar;
mod space;
mod stream;
mod whole;
mod window;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Handle;

use crate::cache::{BlobCache, CacheError, CachedBlob, Verify};
pub use crate::http::RegistryHealth;
pub use crate::http::{BodyError, StallBound, StallError};
use crate::manifest::Entry;
use crate::refs::RefError;
use crate::source::BlobSource;
use crate::store::chunks;
use crate::store::cloud::Clouds;
use cancel::Flights;
pub use cancel::Stopped;
use ranged::{FetchStats, LazyBlob, LazyHandle, RangedError, Shared};
use sidecar::{SIDECAR_MEMO_SUMS, SidecarMemo};
pub use space::SpaceError;
pub use stream::{STREAM_WINDOW_CHUNKS, StreamHandle};

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
    #[error(transparent)]
    Space(#[from] SpaceError),
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
    /// Whole-file fetches made for readers, stopped when no reader waits any more.
    flights: Arc<Flights>,
}

/// An entry opened for reading: complete in the cache, being fetched chunk by chunk, or (too
/// large for the cache) read through a bounded window of chunks in memory.
#[derive(Debug)]
pub enum OpenedBlob {
    Cached(CachedBlob),
    Lazy(LazyHandle),
    Stream(StreamHandle),
}

impl OpenedBlob {
    pub fn len(&self) -> u64 {
        match self {
            OpenedBlob::Cached(b) => b.len(),
            OpenedBlob::Lazy(l) => l.len(),
            OpenedBlob::Stream(s) => s.len(),
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
            flights: Arc::new(Flights::new()),
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
    /// `reader`: the pid of the process waiting for the open; a whole-file download nobody
    /// waits for any more stops (see `cancel`).
    pub fn open(
        &self,
        blobs: &Arc<dyn BlobSource>,
        artifact: &str,
        path: &str,
        entry: &Entry,
        reader: Option<u32>,
    ) -> Result<OpenedBlob, FetchError> {
        if let Some(stream) = self.stream(blobs, artifact, path, entry) {
            return Ok(OpenedBlob::Stream(stream));
        }
        let opened = match self.lazy(blobs, artifact, path, entry) {
            Ok(Some(lazy)) => Ok(OpenedBlob::Lazy(lazy)),
            Ok(None) => {
                self.cached_for(blobs, artifact, path, entry, reader).map(OpenedBlob::Cached)
            }
            Err(e) => Err(e),
        };
        if opened.is_err() {
            self.ranged.counters.add_error();
        }
        opened
    }

    /// Stops every download of this fetcher and its clones, now and later (shutdown).
    pub fn stop_all(&self) {
        self.flights.shut_down();
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

    pub fn with_clouds(mut self, clouds: Clouds) -> Fetcher {
        self.clouds = clouds;
        self
    }

    pub fn cache(&self) -> &BlobCache {
        &self.cache
    }
}

#[cfg(test)]
mod tests;
