//! Open files: opening an entry (at once when cached, else as a download run off the request
//! thread), reading it, handing a complete cached copy to the kernel, and the readahead and
//! warm-up that fetch what a directory walk or a shuffled reader opens next.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::cache::{CacheError, CachedBlob};
use crate::fetch::{FetchError, OpenedBlob};
use crate::store::chunks::CHUNK_BYTES;

use super::inodes::{Inode, RegistryNode, VersionSlot};
use super::pool::Pool;
use super::tree::{NodeId, NodeKind};
use super::version::LoadedVersion;
use super::warm::WarmSet;
use super::{ArtifactFs, FsError, HandleNo, InodeNo, OpenFile, lock, read, write};

/// Only files up to this size are fetched ahead of a directory walk; larger stored files open
/// at once anyway and are read lazily.
const READAHEAD_MAX_FILE_BYTES: u64 = CHUNK_BYTES;

/// Threads fetching ahead, i.e. readahead downloads in flight across all readers.
const READAHEAD_THREADS: usize = 32;

/// Readahead downloads that may wait for a thread; beyond that, walks run ahead of what the
/// network delivers, and more queued files would only arrive after they were read.
const READAHEAD_MAX_WAITING: usize = 256;

/// Complete cached files up to this size are served through the page cache, not passthrough:
/// the daemon reads such a file for the kernel once per mount (one read request, pages then
/// kept across opens), while passthrough costs every open a backing file registration and its
/// removal (two ioctls and a dup in this process).
const PASSTHROUGH_MIN_BYTES: u64 = super::BLOCK_SIZE_BYTES as u64;

/// The most bytes of one directory read in scattered order that are fetched ahead: a class
/// folder of a data set, not the data set (and never more than the cache keeps together).
const DIRECTORY_WARM_BYTES: u64 = 256 << 20;

/// What an open finds in the cache before anything is fetched (see `start_open`).
#[derive(Debug)]
pub(super) enum Found {
    /// Complete: a stored entry's verified copy, opened; or `None` for a reference, which
    /// `Fetcher::open` opens with its access check.
    Ready(Option<CachedBlob>),
    /// Not complete: fetched first, off the request thread.
    Missing,
}

/// Result of [`ArtifactFs::open`]: either done, or a download to run off the request thread.
#[derive(Debug)]
pub enum Opened {
    Ready(OpenFile),
    Fetch(PendingOpen),
}

/// An open that first has to download its entry. [`PendingOpen::run`] blocks for the download;
/// the FUSE layer runs it on a worker so that other requests are not held up.
#[derive(Debug)]
pub struct PendingOpen {
    fs: ArtifactFs,
    slot: Arc<VersionSlot>,
    loaded: Arc<LoadedVersion>,
    node: NodeId,
}

impl PendingOpen {
    /// `reader`: the pid of the process whose open this is; the download stops once it (and
    /// every other reader of the file) is gone.
    pub fn run(self, reader: Option<u32>) -> Result<OpenFile, FsError> {
        self.fs.finish_open(&self.slot, &self.loaded, self.node, reader, None)
    }
}

/// An open file: its verified cached copy (or lazily fetched chunks), held (and so protected
/// from eviction) until release.
#[derive(Debug)]
pub(super) struct OpenHandle {
    pub(super) blob: OpenedBlob,
    pub(super) artifact: String,
    pub(super) entry: String,
}

impl ArtifactFs {
    /// Opens a file for reading. A cached entry opens at once; otherwise the download is
    /// returned as a [`PendingOpen`] for the caller to run where blocking is harmless.
    pub fn open(&self, ino: InodeNo, write: bool) -> Result<Opened, FsError> {
        if write {
            return Err(FsError::ReadOnly);
        }
        let (slot, loaded, node, found) = self.start_open(ino)?;
        match found {
            Found::Ready(blob) => {
                self.finish_open(&slot, &loaded, node, None, blob).map(Opened::Ready)
            }
            Found::Missing => {
                Ok(Opened::Fetch(PendingOpen { fs: self.clone(), slot, loaded, node }))
            }
        }
    }

    /// What every open (with or without a handle) does first: finds the file's version and
    /// node, tells the `--run` hook and the readahead detector, and looks the entry up in the
    /// cache.
    pub(super) fn start_open(
        &self,
        ino: InodeNo,
    ) -> Result<(Arc<VersionSlot>, Arc<LoadedVersion>, NodeId, Found), FsError> {
        let (slot, node) = match self.decode(ino)? {
            Inode::Version(slot, node) => (slot, node),
            // The kernel follows symlinks before opening; a directory is not read with open.
            Inode::Registry(RegistryNode::Alias(..)) => return Err(FsError::NotFound),
            Inode::Registry(_) => return Err(FsError::IsADirectory),
        };
        let loaded = self.loaded(&slot)?;
        let NodeKind::File { entry, size } = loaded.tree.kind(node) else {
            return Err(FsError::IsADirectory);
        };
        if let Some(hook) = &self.inner.options.on_open {
            (hook.0)(&slot.label);
        }
        self.read_ahead(&slot, &loaded, node);
        let entry = loaded.entry(entry, size);
        let fetcher = &self.inner.fetcher;
        // A stored entry's cached copy is opened here and handed on: probing first and opening
        // after would cost every cold file of a data loader's epoch one more `stat`. A reference
        // is opened by `Fetcher::open` only, which checks that this reader may read it.
        let found = match entry.is_reference() {
            false => fetcher.find_cached(&entry).map_or(Found::Missing, |b| Found::Ready(Some(b))),
            true if fetcher.is_cached(&entry) => Found::Ready(None),
            true => Found::Missing,
        };
        Ok((slot, loaded, node, found))
    }

    /// Reads into `buf` from `offset`; fills it except at the end of the file. Returns the
    /// byte count. The caller owns the buffer so that a request thread can reuse one.
    pub fn read(&self, fh: HandleNo, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let open = read(&self.inner.files).get(&fh.0).cloned().ok_or(FsError::BadHandle(fh.0))?;
        read_open(&open, offset, buf)
    }

    /// A new descriptor of an open file's complete cached copy, for the kernel to read directly
    /// (FUSE passthrough); `None` while the file is being fetched lazily, and for small files
    /// (see [`PASSTHROUGH_MIN_BYTES`]).
    pub fn cached_file(&self, fh: HandleNo) -> Option<std::fs::File> {
        let open = read(&self.inner.files).get(&fh.0).cloned()?;
        match &open.blob {
            OpenedBlob::Cached(blob) if blob.len() < PASSTHROUGH_MIN_BYTES => None,
            // No readahead advice here: the kernel opens a backing file of its own for each
            // passthrough open (`backing_file_open`), with the device's readahead, so advice
            // given to this descriptor never reaches the reader's reads.
            OpenedBlob::Cached(blob) => blob.file().try_clone().ok(),
            OpenedBlob::Lazy(_) | OpenedBlob::Stream(_) => None,
        }
    }

    /// Closes a file; its cached blob may be evicted again once no handle holds it.
    pub fn release(&self, fh: HandleNo) {
        write(&self.inner.files).remove(&fh.0);
    }

    /// Stops every whole-file download of this filesystem, now and later (shutdown): waiting
    /// opens fail at once instead of holding the daemon up.
    pub fn stop_fetches(&self) {
        self.inner.warmer.stop();
        self.inner.fetcher.stop_all();
    }

    /// Ends the background work before the runtime goes (unmount): downloads and warm-ups
    /// stop, registry requests end at once and no new one starts. Waits up to `grace` for the
    /// threads inside the runtime to leave; returns whether they all did.
    pub fn shut_down(&self, grace: std::time::Duration) -> bool {
        self.stop_fetches();
        self.inner.runtime.stop(grace)
    }

    /// Number of files open through this filesystem.
    pub fn open_files(&self) -> usize {
        read(&self.inner.files).len()
    }

    pub(super) fn finish_open(
        &self,
        slot: &VersionSlot,
        loaded: &LoadedVersion,
        node: NodeId,
        reader: Option<u32>,
        found: Option<CachedBlob>,
    ) -> Result<OpenFile, FsError> {
        let (open, size_unknown) = self.open_handle(slot, loaded, node, reader, found)?;
        let fh = self.inner.next_handle.fetch_add(1, Ordering::Relaxed);
        write(&self.inner.files).insert(fh, Arc::new(open));
        Ok(OpenFile { fh: HandleNo(fh), direct_io: size_unknown })
    }

    /// The entry's cached copy (`found` already, or fetched and verified first if needed) or
    /// its lazy handle, and whether the manifest lacked its size (then learned here). `reader`:
    /// the pid waiting for a download, which stops once it is gone.
    pub(super) fn open_handle(
        &self,
        slot: &VersionSlot,
        loaded: &LoadedVersion,
        node: NodeId,
        reader: Option<u32>,
        found: Option<CachedBlob>,
    ) -> Result<(OpenHandle, bool), FsError> {
        let NodeKind::File { entry: index, size } = loaded.tree.kind(node) else {
            return Err(FsError::IsADirectory);
        };
        let entry = loaded.entry(index, size);
        let path = loaded.tree.path(node);
        let blob = match found {
            Some(blob) => OpenedBlob::Cached(blob),
            None => self
                .inner
                .fetcher
                .open(&slot.blobs, &slot.label, &path, &entry, reader)
                .map_err(|e| fetch_error(&slot.label, &path, e))?,
        };
        let size_unknown = loaded.size_unknown(index);
        if size_unknown {
            let ino = self.version_ino(slot, node);
            lock(&self.inner.learned_sizes).insert(ino, blob.len());
        }
        Ok((OpenHandle { blob, artifact: slot.label.clone(), entry: path }, size_unknown))
    }

    /// Fetches, in the background, the small siblings that a directory walk reaching `node`
    /// will open next. Best effort: a failure here only means the open fetches (and reports).
    pub(super) fn read_ahead(
        &self,
        slot: &Arc<VersionSlot>,
        loaded: &Arc<LoadedVersion>,
        node: NodeId,
    ) {
        let siblings = loaded.tree.siblings(node);
        let next = self.inner.readahead.opened(u64::from(slot.slot), node.0, siblings.clone());
        if self.inner.options.warm_up_bytes > 0
            && self.inner.readahead.take_shuffled(u64::from(slot.slot))
        {
            self.warm_up(slot, loaded);
        }
        if self.inner.readahead.take_scattered(u64::from(slot.slot), &siblings) {
            self.warm_directory(slot, loaded, node, siblings);
        }
        for sibling in next.map(NodeId) {
            let NodeKind::File { entry: index, size } = loaded.tree.kind(sibling) else {
                continue;
            };
            let entry = loaded.entry(index, size);
            if size > READAHEAD_MAX_FILE_BYTES
                || loaded.size_unknown(index)
                || self.inner.fetcher.is_cached(&entry)
            {
                continue;
            }
            let Some(pool) = self.readahead_pool() else { return };
            let (fs, label, path) = (self.clone(), slot.label.clone(), loaded.tree.path(sibling));
            let blobs = slot.blobs.clone();
            let queued = pool.try_spawn(READAHEAD_MAX_WAITING, move || {
                if let Err(err) = fs.inner.fetcher.cached(&blobs, &label, &path, &entry) {
                    tracing::debug!(%err, "readahead fetch failed");
                }
            });
            if !queued {
                return;
            }
        }
    }

    /// Starts fetching, in the background, the small files of a version that a reader opens in
    /// shuffled order, in path order, within the warm-up budget (and what the cache keeps
    /// together); once per version and mount. Best effort, like readahead: a failure only means
    /// the reader's own open fetches (and reports) it.
    pub(super) fn warm_up(&self, slot: &Arc<VersionSlot>, loaded: &Arc<LoadedVersion>) {
        let budget = self.inner.options.warm_up_bytes;
        let nodes = (0..loaded.tree.len() as u32).map(NodeId);
        self.warm(slot, loaded, nodes, budget, "the version, opened in shuffled order".into());
    }

    /// Starts fetching, in the background, the small files of the directory of `node` that a
    /// reader opens in scattered order (a shuffled loader's class folder), within
    /// [`DIRECTORY_WARM_BYTES`]; once per directory and mount.
    fn warm_directory(
        &self,
        slot: &Arc<VersionSlot>,
        loaded: &Arc<LoadedVersion>,
        node: NodeId,
        siblings: std::ops::RangeInclusive<u32>,
    ) {
        let path = loaded.tree.path(node);
        let dir = path.rsplit_once('/').map_or("/", |(dir, _)| dir);
        let what = format!("folder {dir}/, opened in scattered order");
        self.warm(slot, loaded, siblings.map(NodeId), DIRECTORY_WARM_BYTES, what);
    }

    /// Queues the small files among `nodes` that are not cached yet, in path order, up to
    /// `budget` bytes (and what the cache keeps together), for the warm-up thread.
    fn warm(
        &self,
        slot: &Arc<VersionSlot>,
        loaded: &Arc<LoadedVersion>,
        nodes: impl Iterator<Item = NodeId>,
        budget: u64,
        what: String,
    ) {
        let tree = &loaded.tree;
        let fetcher = &self.inner.fetcher;
        let mut entries: Vec<(String, crate::manifest::Entry)> = nodes
            .filter_map(|n| match tree.kind(n) {
                NodeKind::File { entry, size }
                    if size <= READAHEAD_MAX_FILE_BYTES && !loaded.size_unknown(entry) =>
                {
                    Some((tree.path(n), loaded.entry(entry, size)))
                }
                _ => None,
            })
            .collect();
        // Cached files stay in the set (it is what the cache must keep together), but a set
        // with nothing to fetch is not queued.
        if entries.iter().all(|(_, entry)| fetcher.is_cached(entry)) {
            return;
        }
        // Path order, as `artfs prefetch` takes a manifest (node ids go breadth first).
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let budget = budget.min(fetcher.cache().keep_bytes());
        let set = crate::prefetch::plan(entries.iter().map(|(p, e)| (p, e)), budget);
        if set.entries.is_empty() {
            return;
        }
        let label = slot.label.clone();
        tracing::info!(
            "{label}: warming up {what}: {} files ({} bytes), {} left out by the budget",
            set.entries.len(),
            set.bytes,
            set.left_out_files
        );
        let blobs = slot.blobs.clone();
        let set = WarmSet { what, label, blobs, entries: set.entries };
        self.inner.warmer.submit(fetcher, set);
    }

    /// Whether no readahead download is queued or running.
    #[cfg(test)]
    pub(super) fn readahead_idle(&self) -> bool {
        self.inner.warmer.is_idle()
            && self.inner.readahead_pool.get().and_then(Option::as_ref).is_none_or(Pool::is_idle)
    }

    pub(super) fn readahead_pool(&self) -> Option<&Pool> {
        self.inner
            .readahead_pool
            .get_or_init(|| match Pool::start("artfs-readahead", READAHEAD_THREADS) {
                Ok(pool) => Some(pool),
                Err(err) => {
                    tracing::warn!(%err, "cannot start readahead threads; reading without");
                    None
                }
            })
            .as_ref()
    }
}

/// Reads into `buf` from `offset` of an open file; fills it except at the end of the file.
pub(super) fn read_open(open: &OpenHandle, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
    // Chunked reads verify and fetch themselves; a cached copy is read below.
    let chunked = match &open.blob {
        OpenedBlob::Cached(blob) => Ok(blob),
        OpenedBlob::Lazy(lazy) => Err(lazy.read(offset, buf)),
        OpenedBlob::Stream(stream) => Err(stream.read(offset, buf)),
    };
    let blob = match chunked {
        Ok(blob) => blob,
        Err(read) => {
            return read.map_err(|source| {
                FsError::Fetch(FetchError::Chunk {
                    artifact: open.artifact.clone(),
                    path: open.entry.clone(),
                    source,
                })
            });
        }
    };
    // Up to the entry's known end: a read past it would only cost a syscall to learn so.
    let want = usize::try_from(blob.len().saturating_sub(offset))
        .map_or(buf.len(), |left| left.min(buf.len()));
    let mut filled = 0;
    while filled < want {
        match blob.read_at(&mut buf[filled..want], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(FsError::CacheRead {
                    artifact: open.artifact.clone(),
                    entry: open.entry.clone(),
                    source,
                });
            }
        }
    }
    Ok(filled)
}

/// Turns a failed fetch into the filesystem error, naming what did not verify.
fn fetch_error(artifact: &str, entry: &str, err: FetchError) -> FsError {
    let (expected, actual) = match &err {
        FetchError::Cache {
            source: CacheError::DigestMismatch { expected, actual, .. }, ..
        } => (expected.clone(), actual.clone()),
        FetchError::Cache { source: CacheError::SizeMismatch { expected, actual, .. }, .. } => {
            (format!("{expected} bytes"), format!("{actual} bytes"))
        }
        _ => return FsError::Fetch(err),
    };
    FsError::Verification {
        artifact: artifact.to_owned(),
        entry: entry.to_owned(),
        expected,
        actual,
    }
}
