//! Reads without opens. A single-version mount whose files are all small and of known size
//! answers the kernel's first open with `ENOSYS`; a kernel with `FUSE_NO_OPEN_SUPPORT` then
//! sends no open, flush or release for the rest of the mount and keeps every file's pages across
//! opens, so opening and reading a file whose pages are cached costs no round trip to this
//! process at all. The reads that do arrive (pages not cached yet) carry the inode and no
//! handle; they are served from a short list of recently read entries, or by opening the entry
//! as an open would (fetched and verified first if it is not in the cache).
//!
//! Why only such versions: FUSE passthrough, lazily fetched large files and sizes learned at
//! open all need a per-open handle, and the kernel's choice holds for the whole mount. A version
//! of small files needs none of them, and is where the round trips of each open dominate (a
//! data loader reading thousands of images). Without per-open state nothing pins a blob against
//! eviction while it is read; an evicted entry is simply fetched and verified again.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

use super::files::{Found, OpenHandle, read_open};
use super::inodes::{Inode, VersionSlot};
use super::tree::{NodeId, NodeKind};
use super::version::LoadedVersion;
use super::{ArtifactFs, FsError, InodeNo, ROOT_INODE, lock};
use crate::cache::CachedBlob;
use crate::store::chunks::CHUNK_BYTES;

/// Files up to this size are small: fetched whole (never lazily) and never worth passthrough.
const OPENLESS_MAX_FILE_BYTES: u64 = CHUNK_BYTES;

/// Entries kept open for reads without a handle: enough for the files read at once by a
/// loader's workers and the kernel's readahead, so a file read in several requests is opened
/// once.
const RECENT_ENTRIES: usize = 64;

/// Whether this mount reads without opens, and the entries read recently.
#[derive(Debug, Default)]
pub(super) struct Openless {
    decided: OnceLock<bool>,
    recent: Mutex<VecDeque<(InodeNo, Arc<OpenHandle>)>>,
}

impl Openless {
    fn recent(&self, ino: InodeNo) -> Option<Arc<OpenHandle>> {
        lock(&self.recent).iter().find(|(i, _)| *i == ino).map(|(_, open)| open.clone())
    }

    fn remember(&self, ino: InodeNo, open: Arc<OpenHandle>) {
        let mut recent = lock(&self.recent);
        if recent.len() >= RECENT_ENTRIES {
            recent.pop_front();
        }
        recent.push_back((ino, open));
    }
}

/// Result of [`ArtifactFs::inode_entry`]: the entry to read, or its download to run off the
/// request thread.
#[derive(Debug)]
pub(super) enum InodeEntry {
    Ready(Arc<OpenHandle>),
    Fetch(PendingEntry),
}

/// An entry that has to be downloaded before a handle-less read can be served.
#[derive(Debug)]
pub(super) struct PendingEntry {
    fs: ArtifactFs,
    ino: InodeNo,
    slot: Arc<VersionSlot>,
    loaded: Arc<LoadedVersion>,
    node: NodeId,
}

impl PendingEntry {
    /// `reader`: the pid of the process reading; the download stops once it (and every other
    /// reader of the entry) is gone.
    pub(super) fn run(self, reader: Option<u32>) -> Result<Arc<OpenHandle>, FsError> {
        self.open(reader, None)
    }

    fn open(
        self,
        reader: Option<u32>,
        found: Option<CachedBlob>,
    ) -> Result<Arc<OpenHandle>, FsError> {
        let (open, _) = self.fs.open_handle(&self.slot, &self.loaded, self.node, reader, found)?;
        let open = Arc::new(open);
        self.fs.inner.openless.remember(self.ino, open.clone());
        Ok(open)
    }
}

impl ArtifactFs {
    /// Whether opens are refused so that the kernel reads by inode (see the module header).
    /// Decided once, on the first open.
    pub fn reads_without_open(&self) -> bool {
        *self.inner.openless.decided.get_or_init(|| {
            let small = self.all_files_small();
            if small {
                tracing::info!(
                    "small files only: opens answered by the kernel alone, pages kept across opens"
                );
            }
            small
        })
    }

    fn all_files_small(&self) -> bool {
        if !self.inner.single {
            return false;
        }
        let Ok(Inode::Version(slot, _)) = self.decode(ROOT_INODE) else {
            return false;
        };
        let Ok(loaded) = self.loaded(&slot) else {
            return false;
        };
        let tree = &loaded.tree;
        (0..tree.len() as u32).map(NodeId).all(|n| match tree.kind(n) {
            NodeKind::File { entry, size } => {
                size <= OPENLESS_MAX_FILE_BYTES && !loaded.size_unknown(entry)
            }
            NodeKind::Dir => true,
        })
    }

    /// The entry of file `ino` for a read without a handle: at once when read recently or
    /// cached, else as a download for the caller to run where blocking is harmless. Feeds the
    /// readahead detector, as an open does.
    pub(super) fn inode_entry(&self, ino: InodeNo) -> Result<InodeEntry, FsError> {
        if let Some(open) = self.inner.openless.recent(ino) {
            return Ok(InodeEntry::Ready(open));
        }
        let (slot, loaded, node, found) = self.start_open(ino)?;
        let pending = PendingEntry { fs: self.clone(), ino, slot, loaded, node };
        match found {
            Found::Ready(blob) => pending.open(None, blob).map(InodeEntry::Ready),
            Found::Missing => Ok(InodeEntry::Fetch(pending)),
        }
    }

    /// Reads into `buf` from `offset` of an entry from [`ArtifactFs::inode_entry`].
    pub(super) fn read_entry(
        &self,
        open: &OpenHandle,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, FsError> {
        read_open(open, offset, buf)
    }
}
