//! The mounted filesystem: a registry (or one artifact version) as read-only directory trees.
//!
//! [`ArtifactFs`] is the whole filesystem logic with plain Rust types (inode numbers, [`Attr`],
//! [`FsError`]); `fuse.rs` only converts kernel requests into calls of its methods, so all of it
//! is tested without a mount. Two modes:
//! - **registry** (`artfs mount MOUNTPOINT`): `/<entity>/<project>/<name>:vN/…` are version
//!   directories and `/<entity>/<project>/<name>:<alias>` symlinks to `<name>:vN`. Listings and
//!   alias resolutions are re-read from the registry when older than the refresh interval.
//! - **single** (`artfs mount ARTIFACT MOUNTPOINT`): one version, resolved once, at the root.
//!
//! Rooms: the plain types (`types`), the inode table and its invariants (`inodes`), the
//! registry level (`namespace`), open files (`files`), attributes (`attrs`), the passthrough
//! bookkeeping (`passthrough`), reads without opens (`openless`), fetching ahead of readers
//! (`readahead`, `warm`), and the one place FUSE
//! threads meet tokio (`runtime`); `fuse.rs` is the only file that touches the kernel. This
//! file holds the lookups and directory requests that tie them together.
//!
//! Consistency: version directories never change, so the kernel may cache their entries and
//! attributes for [`VERSION_TTL`] and their pages indefinitely. Registry directories and alias
//! symlinks change, so they carry the refresh interval as TTL. An open file holds its cached blob
//! (which also keeps the blob from being evicted) until release, so it keeps reading the version
//! it opened whatever aliases do meanwhile. A large stored file not yet cached opens at once and
//! is read lazily, chunk by chunk, each chunk verified before it is served (`fetch::ranged`).

mod attrs;
mod by_name;
pub mod error;
mod files;
pub mod fuse;
mod heads;
mod inodes;
mod metrics;
mod namespace;
mod openless;
mod passthrough;
mod pool;
mod readahead;
mod runtime;
#[cfg(test)]
mod tests;
pub mod tree;
mod types;
mod version;
mod warm;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::time::{Instant, SystemTime};

use tokio::runtime::Handle;

use crate::fetch::Fetcher;
use crate::http::StallBound;
use crate::names::CollectionPath;
use crate::source::{Catalog, CollectionView, ResolvedVersion};
pub use attrs::{BLOCK_SIZE_BYTES, VERSION_TTL};
pub use error::FsError;
use files::OpenHandle;
pub use files::{Opened, PendingOpen};
use inodes::{Inode, NodeTable, RegistryNode, VersionTable};
use namespace::{Listing, Scope, Timed};
use pool::Pool;
use readahead::Readahead;
use runtime::Runtime;
use tree::Tree;
pub use types::*;

/// The first word of every artfs mount's source (`artfs:<what it mounts>`).
pub const FSTYPE_NAME: &str = "artfs";

/// The mount source of an artfs mount: `artfs:` and what it mounts, without the characters that
/// separate mount options or mountinfo fields.
pub fn fsname(source: &str) -> String {
    let clean: String =
        source.chars().map(|c| if c == ',' || c.is_whitespace() { '_' } else { c }).collect();
    format!("{FSTYPE_NAME}:{clean}")
}

/// The filesystem. Cheap to clone; every clone serves the same mount.
#[derive(Clone, Debug)]
pub struct ArtifactFs {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    single: bool,
    catalog: Arc<dyn Catalog>,
    fetcher: Fetcher,
    /// The one place where FUSE threads meet tokio (`runtime`).
    runtime: Runtime,
    options: FsOptions,
    mounted_at: SystemTime,
    nodes: RwLock<NodeTable>,
    versions: RwLock<VersionTable>,
    listings: Mutex<HashMap<Scope, Timed<Arc<Vec<String>>>>>,
    states: Mutex<HashMap<CollectionPath, Timed<Arc<CollectionView>>>>,
    /// Names asked for one by one that were missing, and when (`by_name`).
    by_name_misses: Mutex<HashMap<String, std::time::Instant>>,
    /// Snapshots of open registry directories, so that readdir offsets stay valid while the
    /// registry changes underneath.
    dirs: Mutex<HashMap<u64, Arc<Listing>>>,
    files: RwLock<HashMap<u64, Arc<OpenHandle>>>,
    /// Sizes of entries whose manifest has none, learned when they were fetched; by inode.
    learned_sizes: Mutex<HashMap<InodeNo, u64>>,
    next_handle: AtomicU64,
    readahead: Readahead,
    /// Started on first use: most mounts of large files never walk a directory.
    readahead_pool: OnceLock<Option<Pool>>,
    openless: openless::Openless,
    /// Sets of small files fetched ahead of their readers (`warm`).
    warmer: Arc<warm::Warmer>,
    /// Projects whose collections are being read together (`None`) or were, and when (`heads`).
    warmed: Mutex<HashMap<(String, String), Option<Instant>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking request thread leaves plain data behind, never a half-done invariant.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(PoisonError::into_inner)
}

impl ArtifactFs {
    fn new(
        single: bool,
        catalog: Arc<dyn Catalog>,
        fetcher: Fetcher,
        handle: Handle,
        options: FsOptions,
    ) -> ArtifactFs {
        let bound = StallBound::registry(options.registry_timeout, fetcher.health().clone());
        let runtime = Runtime::new(handle, bound);
        ArtifactFs {
            inner: Arc::new(Inner {
                single,
                catalog,
                fetcher,
                runtime,
                mounted_at: SystemTime::now(),
                nodes: RwLock::new(NodeTable::new(single)),
                versions: RwLock::default(),
                listings: Mutex::default(),
                states: Mutex::default(),
                by_name_misses: Mutex::default(),
                dirs: Mutex::default(),
                files: RwLock::default(),
                learned_sizes: Mutex::default(),
                next_handle: AtomicU64::new(1),
                readahead: Readahead::new(options.readahead_files),
                readahead_pool: OnceLock::new(),
                openless: openless::Openless::default(),
                warmer: Arc::default(),
                warmed: Mutex::default(),
                options,
            }),
        }
    }

    /// The whole registry: `/<entity>/<project>/<name>:vN/…`. Reads nothing until asked.
    /// `handle` drives the registry's async I/O; call the methods only from plain threads.
    pub fn registry(
        catalog: Arc<dyn Catalog>,
        fetcher: Fetcher,
        handle: Handle,
        options: FsOptions,
    ) -> ArtifactFs {
        Self::new(false, catalog, fetcher, handle, options)
    }

    /// One version at the root. Its manifest is read now, so that a broken one fails the mount
    /// rather than the first `ls`.
    pub fn single(
        catalog: Arc<dyn Catalog>,
        fetcher: Fetcher,
        handle: Handle,
        options: FsOptions,
        version: &ResolvedVersion,
    ) -> Result<ArtifactFs, FsError> {
        let fs = Self::new(true, catalog, fetcher, handle, options);
        let slot = fs.intern_version(&version.collection, &version.record, ROOT_INODE);
        fs.loaded(&slot)?;
        Ok(fs)
    }

    // ---- requests -----------------------------------------------------------------------------

    pub fn lookup(&self, parent: InodeNo, name: &str) -> Result<Attr, FsError> {
        match self.decode(parent)? {
            Inode::Registry(node) => self.lookup_registry(parent, &node, name),
            Inode::Version(slot, dir) => {
                let loaded = self.loaded(&slot)?;
                if !loaded.tree.is_dir(dir) {
                    return Err(FsError::NotADirectory);
                }
                let child = loaded.tree.lookup(dir, name).ok_or(FsError::NotFound)?;
                Ok(self.tree_attr(&slot, &loaded, child))
            }
        }
    }

    pub fn getattr(&self, ino: InodeNo) -> Result<Attr, FsError> {
        match self.decode(ino)? {
            Inode::Registry(RegistryNode::Alias(c, alias)) => {
                let target = self.alias_target(&c, &alias)?;
                Ok(self.symlink_attr(ino, &target))
            }
            Inode::Registry(_) => Ok(self.registry_dir_attr(ino)),
            Inode::Version(slot, node) => match slot.loaded.get() {
                Some(loaded) => Ok(self.tree_attr(&slot, loaded, node)),
                // Not listed or entered yet: the root's attributes need no manifest.
                None if node == Tree::ROOT => Ok(self.unloaded_root_attr(&slot)),
                None => {
                    let loaded = self.loaded(&slot)?;
                    Ok(self.tree_attr(&slot, &loaded, node))
                }
            },
        }
    }

    pub fn readlink(&self, ino: InodeNo) -> Result<String, FsError> {
        match self.decode(ino)? {
            Inode::Registry(RegistryNode::Alias(c, alias)) => self.alias_target(&c, &alias),
            Inode::Registry(_) | Inode::Version(..) => Err(FsError::NotASymlink),
        }
    }

    /// Checks that `ino` exists; asking for write access fails, the mount being read-only.
    pub fn access(&self, ino: InodeNo, write: bool) -> Result<(), FsError> {
        self.getattr(ino)?;
        if write {
            return Err(FsError::ReadOnly);
        }
        Ok(())
    }

    pub fn opendir(&self, ino: InodeNo) -> Result<OpenDir, FsError> {
        match self.decode(ino)? {
            Inode::Registry(RegistryNode::Alias(..)) => Err(FsError::NotADirectory),
            Inode::Registry(node) => {
                let mut listing = vec![
                    (".".to_owned(), self.registry_dir_attr(ino)),
                    ("..".to_owned(), self.registry_dir_attr(self.parent_of(&node))),
                ];
                self.list_registry_dir(&node, &mut listing)?;
                let fh = self.inner.next_handle.fetch_add(1, Ordering::Relaxed);
                lock(&self.inner.dirs).insert(fh, Arc::new(listing));
                Ok(OpenDir { fh: HandleNo(fh), cache: false })
            }
            Inode::Version(slot, node) => {
                let loaded = self.loaded(&slot)?;
                if !loaded.tree.is_dir(node) {
                    return Err(FsError::NotADirectory);
                }
                Ok(OpenDir { fh: HandleNo(0), cache: true })
            }
        }
    }

    /// Feeds entries from `offset` on (0 = start) to `sink` until it returns `true` (full).
    /// Offsets are stable: a version directory never changes, and a registry directory is
    /// served from the snapshot taken by [`ArtifactFs::opendir`].
    pub fn readdir(
        &self,
        ino: InodeNo,
        fh: HandleNo,
        offset: u64,
        sink: &mut dyn FnMut(DirEntry<'_>) -> bool,
    ) -> Result<(), FsError> {
        match self.decode(ino)? {
            Inode::Registry(RegistryNode::Alias(..)) => Err(FsError::NotADirectory),
            Inode::Registry(_) => {
                let listing =
                    lock(&self.inner.dirs).get(&fh.0).cloned().ok_or(FsError::BadHandle(fh.0))?;
                let start = usize::try_from(offset).unwrap_or(usize::MAX);
                for (i, (name, attr)) in listing.iter().enumerate().skip(start) {
                    let entry = DirEntry { name, offset: i as u64 + 1, attr: *attr };
                    if sink(entry) {
                        break;
                    }
                }
                Ok(())
            }
            Inode::Version(slot, dir) => {
                let loaded = self.loaded(&slot)?;
                let tree = &loaded.tree;
                if !tree.is_dir(dir) {
                    return Err(FsError::NotADirectory);
                }
                // Offsets 1 and 2 are `.` and `..`; child k (1-based) is at 2 + k.
                if offset == 0 {
                    let attr = self.tree_attr(&slot, &loaded, dir);
                    if sink(DirEntry { name: ".", offset: 1, attr }) {
                        return Ok(());
                    }
                }
                if offset <= 1 {
                    let attr = match dir == Tree::ROOT {
                        true => self.getattr(slot.parent)?,
                        false => self.tree_attr(&slot, &loaded, tree.parent(dir)),
                    };
                    if sink(DirEntry { name: "..", offset: 2, attr }) {
                        return Ok(());
                    }
                }
                let skip = usize::try_from(offset.saturating_sub(2)).unwrap_or(usize::MAX);
                for (resume, child) in tree.children(dir, skip) {
                    let entry = DirEntry {
                        name: tree.name(child),
                        offset: resume as u64 + 2,
                        attr: self.tree_attr(&slot, &loaded, child),
                    };
                    if sink(entry) {
                        break;
                    }
                }
                Ok(())
            }
        }
    }

    pub fn releasedir(&self, fh: HandleNo) {
        lock(&self.inner.dirs).remove(&fh.0);
    }
}
