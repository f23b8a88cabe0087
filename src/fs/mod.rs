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
//! # The inode table
//! Invariants (relied on by `decode`, and by the kernel, which caches inode numbers):
//! - An inode number is never reused and always names the same thing for the life of the mount.
//!   `forget` is ignored: the table only grows, by one small node per registry name or version
//!   seen, and version trees are immutable, so nothing ever needs to be renumbered.
//! - `ino >> 32 == 0`: a registry-level node (root, entity, project, alias symlink), stored at
//!   index `ino - 1` of the node table; the root is inode 1. Interned by value, so the same name
//!   always gets the same inode.
//! - `ino >> 32 == s > 0`: node `ino & 0xffff_ffff` of the tree of version slot `s` (index
//!   `s - 1`), i.e. every version gets the base `s << 32` and its [`tree::Tree`] node ids map to
//!   `base + node` (a tree holds fewer than 2^31 nodes). A slot is created, without loading
//!   anything, when its `name:vN` is first looked up or listed; its manifest is fetched and its
//!   tree built once, on the first lookup, readdir or open inside it.
//! - Single mode has no registry nodes: slot 1 is the version, and its root is inode 1 (never
//!   `1 << 32`).
//!
//! Consistency: version directories never change, so the kernel may cache their entries and
//! attributes for [`VERSION_TTL`] and their pages indefinitely. Registry directories and alias
//! symlinks change, so they carry the refresh interval as TTL. An open file holds its cached blob
//! (which also keeps the blob from being evicted) until release, so it keeps reading the version
//! it opened whatever aliases do meanwhile. A large stored file not yet cached opens at once and
//! is read lazily, chunk by chunk, each chunk verified before it is served (`fetch::ranged`).

pub mod error;
pub mod fuse;
mod pool;
mod readahead;
#[cfg(test)]
mod tests;
pub mod tree;
mod version;

use std::collections::HashMap;
use std::future::Future;
use std::os::unix::fs::MetadataExt as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use tokio::runtime::Handle;

use crate::cache::CacheError;
use crate::fetch::{FetchError, Fetcher, OpenedBlob};
use crate::names::{CollectionPath, Selector, validate_scope};
use crate::source::{
    BlobSource, Catalog, CollectionView, ResolvedVersion, SourceError, VersionInfo,
};
use crate::store::chunks::CHUNK_BYTES;
pub use error::FsError;
use pool::Pool;
use readahead::Readahead;
use tree::{NodeId, NodeKind, Tree};
use version::LoadedVersion;

/// How long the kernel may cache entries and attributes inside a version directory: versions
/// are immutable, so only memory pressure should make it ask again.
pub const VERSION_TTL: Duration = Duration::from_secs(24 * 3600);

/// Default age after which registry listings and alias targets are read again.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// A name looked up but missing from listings or versions older than this is read again
/// once: a version logged a moment ago is there by name at once, not after the refresh
/// interval, while a burst of lookups of missing names costs one request per this interval.
const MISS_REREAD_AFTER: Duration = Duration::from_millis(200);

/// Default bound on one registry request (listing, log replay, manifest), retries included:
/// past it the caller gets `EIO` instead of waiting on a registry that stopped answering.
pub const REGISTRY_TIMEOUT: Duration = Duration::from_secs(60);

/// `st_blksize`: the buffer size `cat`, `cp` and Python's buffered files read with. Large, so a
/// sequential reader makes few syscalls: each read costs a FUSE round trip (or a passthrough
/// hop), not just a copy.
pub const BLOCK_SIZE_BYTES: u32 = 1024 * 1024;

/// Unit of `st_blocks`, fixed by POSIX.
const STAT_BLOCK_BYTES: u64 = 512;

/// Default of [`FsOptions::readahead_files`].
pub const READAHEAD_FILES: u32 = 16;

/// Only files up to this size are fetched ahead of a directory walk; larger stored files open
/// at once anyway and are read lazily.
const READAHEAD_MAX_FILE_BYTES: u64 = CHUNK_BYTES;

/// Threads fetching ahead, i.e. readahead downloads in flight across all readers.
const READAHEAD_THREADS: usize = 32;

/// Readahead downloads that may wait for a thread; beyond that, walks run ahead of what the
/// network delivers, and more queued files would only arrive after they were read.
const READAHEAD_MAX_WAITING: usize = 256;

/// Downloads in flight for the warm-up of a version read in shuffled order (beside the
/// readers' own).
const WARM_UP_JOBS: usize = 16;

/// The root directory's inode (both modes).
pub const ROOT_INODE: InodeNo = InodeNo(1);

/// Bits of an inode number that hold the tree node id; the bits above hold the version slot.
const SLOT_SHIFT: u32 = 32;

/// An inode number as the kernel sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InodeNo(pub u64);

/// An open file or directory as the kernel sees it (0 = no handle state).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HandleNo(pub u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Directory,
    File,
    Symlink,
}

/// What `stat` shows, plus how long the kernel may keep it (and the directory entry naming it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    pub ino: InodeNo,
    pub kind: FileKind,
    /// Bytes: a file's size, a symlink's target length, 0 for directories (so that `du`
    /// counts file bytes only).
    pub size: u64,
    /// 512-byte blocks, as `du` reads them.
    pub blocks: u64,
    pub perm: u16,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: SystemTime,
    pub ttl: Duration,
}

/// One directory entry handed to a readdir sink. `offset` is where to resume after it.
#[derive(Clone, Copy, Debug)]
pub struct DirEntry<'a> {
    pub name: &'a str,
    pub offset: u64,
    pub attr: Attr,
}

/// An opened directory. `cache`: its content never changes, so the kernel may keep it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenDir {
    pub fh: HandleNo,
    pub cache: bool,
}

/// An opened file. `direct_io`: the manifest gave no size, so the kernel must not trust
/// `st_size` and page cache; otherwise its pages may be kept across opens (immutable content).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFile {
    pub fh: HandleNo,
    pub direct_io: bool,
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
    pub fn run(self) -> Result<OpenFile, FsError> {
        self.fs.finish_open(&self.slot, &self.loaded, self.node)
    }
}

/// Settings of one mount.
#[derive(Clone, Debug)]
pub struct FsOptions {
    /// Age after which registry listings and alias targets are read again; also the kernel TTL
    /// of everything that can change.
    pub refresh: Duration,
    pub registry_timeout: Duration,
    /// Owner shown for every file.
    pub uid: u32,
    pub gid: u32,
    /// Small files fetched ahead of a reader that opens a directory's files in name order
    /// (see `readahead`); 0 turns readahead off.
    pub readahead_files: u32,
    /// Bytes of a version's small files warmed up into the cache once a reader opens its files
    /// in shuffled order (see `prefetch`); 0 turns the warm-up off.
    pub warm_up_bytes: u64,
    /// Told `entity/project/name:vN` on every open of a file (the mount's `--run` lineage);
    /// it must return at once: it runs on the FUSE thread.
    pub on_open: Option<OpenHook>,
}

/// See [`FsOptions::on_open`].
#[derive(Clone)]
pub struct OpenHook(pub Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for OpenHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpenHook")
    }
}

impl Default for FsOptions {
    fn default() -> Self {
        // The owner of /proc/self is this process's effective user, without `unsafe` getuid.
        let (uid, gid) =
            std::fs::metadata("/proc/self").map(|m| (m.uid(), m.gid())).unwrap_or((0, 0));
        FsOptions {
            refresh: REFRESH_INTERVAL,
            registry_timeout: REGISTRY_TIMEOUT,
            uid,
            gid,
            readahead_files: READAHEAD_FILES,
            warm_up_bytes: 0,
            on_open: None,
        }
    }
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
    /// The one place where FUSE threads meet tokio; never used from a runtime thread.
    handle: Handle,
    options: FsOptions,
    mounted_at: SystemTime,
    nodes: RwLock<NodeTable>,
    versions: RwLock<VersionTable>,
    listings: Mutex<HashMap<Scope, Timed<Arc<Vec<String>>>>>,
    states: Mutex<HashMap<CollectionPath, Timed<Arc<CollectionView>>>>,
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
}

/// A registry directory's entries as of its opendir, `.` and `..` first.
type Listing = Vec<(String, Attr)>;

/// An open file: its verified cached copy (or lazily fetched chunks), held (and so protected
/// from eviction) until release.
#[derive(Debug)]
struct OpenHandle {
    blob: OpenedBlob,
    artifact: String,
    entry: String,
}

/// A registry-level node. Interned: equal values share one inode.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum RegistryNode {
    Root,
    Entity(String),
    Project(String, String),
    Alias(CollectionPath, String),
}

#[derive(Debug, Default)]
struct NodeTable {
    /// `nodes[i]` has inode `i + 1`.
    nodes: Vec<RegistryNode>,
    index: HashMap<RegistryNode, InodeNo>,
}

#[derive(Debug, Default)]
struct VersionTable {
    /// `slots[i]` is slot `i + 1`.
    slots: Vec<Arc<VersionSlot>>,
    index: HashMap<(CollectionPath, u32), Arc<VersionSlot>>,
}

/// One version of one collection, as seen by the mount.
#[derive(Debug)]
struct VersionSlot {
    slot: u32,
    collection: CollectionPath,
    record: VersionInfo,
    /// Where its stored entries come from.
    blobs: Arc<dyn BlobSource>,
    /// `entity/project/name:vN`, for errors and logs.
    label: String,
    /// Inode of the directory holding the version directory (itself in single mode).
    parent: InodeNo,
    loaded: OnceLock<Arc<LoadedVersion>>,
    /// Held while the manifest is fetched, so concurrent first lookups fetch it once.
    loading: Mutex<()>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Scope {
    Entities,
    Projects(String),
    Collections(String, String),
}

#[derive(Clone, Debug)]
struct Timed<T> {
    value: T,
    at: Instant,
}

/// What an inode number names.
enum Inode {
    Registry(RegistryNode),
    Version(Arc<VersionSlot>, NodeId),
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

/// `name:vN`, the name of a version directory (and an alias symlink's target).
fn version_dir_name(name: &str, version: u32) -> String {
    format!("{name}:v{version}")
}

impl ArtifactFs {
    fn new(
        single: bool,
        catalog: Arc<dyn Catalog>,
        fetcher: Fetcher,
        handle: Handle,
        options: FsOptions,
    ) -> ArtifactFs {
        let mut nodes = NodeTable::default();
        if !single {
            nodes.nodes.push(RegistryNode::Root);
            nodes.index.insert(RegistryNode::Root, ROOT_INODE);
        }
        ArtifactFs {
            inner: Arc::new(Inner {
                single,
                catalog,
                fetcher,
                handle,
                mounted_at: SystemTime::now(),
                nodes: RwLock::new(nodes),
                versions: RwLock::default(),
                listings: Mutex::default(),
                states: Mutex::default(),
                dirs: Mutex::default(),
                files: RwLock::default(),
                learned_sizes: Mutex::default(),
                next_handle: AtomicU64::new(1),
                readahead: Readahead::new(options.readahead_files),
                readahead_pool: OnceLock::new(),
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

    /// Opens a file for reading. A cached entry opens at once; otherwise the download is
    /// returned as a [`PendingOpen`] for the caller to run where blocking is harmless.
    pub fn open(&self, ino: InodeNo, write: bool) -> Result<Opened, FsError> {
        if write {
            return Err(FsError::ReadOnly);
        }
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
        if self.inner.fetcher.is_cached(&loaded.entry(entry, size)) {
            return self.finish_open(&slot, &loaded, node).map(Opened::Ready);
        }
        Ok(Opened::Fetch(PendingOpen { fs: self.clone(), slot, loaded, node }))
    }

    /// Reads into `buf` from `offset`; fills it except at the end of the file. Returns the
    /// byte count. The caller owns the buffer so that a request thread can reuse one.
    pub fn read(&self, fh: HandleNo, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let open = read(&self.inner.files).get(&fh.0).cloned().ok_or(FsError::BadHandle(fh.0))?;
        let blob = match &open.blob {
            OpenedBlob::Cached(blob) => blob,
            OpenedBlob::Lazy(lazy) => {
                return lazy.read(offset, buf).map_err(|source| {
                    FsError::Fetch(FetchError::Chunk {
                        artifact: open.artifact.clone(),
                        path: open.entry.clone(),
                        source,
                    })
                });
            }
        };
        let mut filled = 0;
        while filled < buf.len() {
            match blob.read_at(&mut buf[filled..], offset + filled as u64) {
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

    /// A new descriptor of an open file's complete cached copy, for the kernel to read directly
    /// (FUSE passthrough); `None` while the file is being fetched lazily.
    pub fn cached_file(&self, fh: HandleNo) -> Option<std::fs::File> {
        let open = read(&self.inner.files).get(&fh.0).cloned()?;
        match &open.blob {
            OpenedBlob::Cached(blob) => {
                let file = blob.file().try_clone().ok()?;
                // The kernel reads this file for the reader, whose own advice stops at the FUSE
                // file: `cat` and `cp` advise sequential reads (a readahead window twice the
                // device default) on files they read directly, so do it for them here. Random
                // readers are unaffected: readahead only grows on sequential access.
                if let Err(err) =
                    rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::Sequential)
                {
                    tracing::debug!(%err, "cannot advise sequential reads of a cached file");
                }
                Some(file)
            }
            OpenedBlob::Lazy(_) => None,
        }
    }

    /// Closes a file; its cached blob may be evicted again once no handle holds it.
    pub fn release(&self, fh: HandleNo) {
        write(&self.inner.files).remove(&fh.0);
    }

    /// Number of files open through this filesystem.
    pub fn open_files(&self) -> usize {
        read(&self.inner.files).len()
    }

    // ---- registry level -----------------------------------------------------------------------

    fn lookup_registry(
        &self,
        parent: InodeNo,
        node: &RegistryNode,
        name: &str,
    ) -> Result<Attr, FsError> {
        let child = match node {
            RegistryNode::Root => {
                validate_scope("entity", name).map_err(|_| FsError::NotFound)?;
                self.listed(Scope::Entities, name)?;
                RegistryNode::Entity(name.to_owned())
            }
            RegistryNode::Entity(entity) => {
                validate_scope("project", name).map_err(|_| FsError::NotFound)?;
                self.listed(Scope::Projects(entity.clone()), name)?;
                RegistryNode::Project(entity.clone(), name.to_owned())
            }
            RegistryNode::Project(entity, project) => {
                // `name:vN` or `name:alias`, resolved even before any listing shows it.
                let (artifact, selector) = name.rsplit_once(':').ok_or(FsError::NotFound)?;
                let c = CollectionPath::new(entity, project, artifact)
                    .map_err(|_| FsError::NotFound)?;
                let selector = Selector::parse(selector).map_err(|_| FsError::NotFound)?;
                let mut state = self.collection_state(&c)?;
                let known = |state: &CollectionView| match &selector {
                    Selector::Version(v) => state.versions.contains_key(v),
                    Selector::Alias(a) => state.aliases.contains_key(a),
                };
                if !known(&state) {
                    state = self.collection_state_within(&c, MISS_REREAD_AFTER)?;
                }
                match selector {
                    Selector::Version(v) => {
                        let record = state.versions.get(&v).ok_or(FsError::NotFound)?;
                        let slot = self.intern_version(&c, record, parent);
                        return self.getattr(self.version_ino(&slot, Tree::ROOT));
                    }
                    Selector::Alias(alias) => {
                        let target = Self::alias_target_in(&c, &state, &alias)?;
                        let ino = self.intern(RegistryNode::Alias(c, alias));
                        return Ok(self.symlink_attr(ino, &target));
                    }
                }
            }
            RegistryNode::Alias(..) => return Err(FsError::NotADirectory),
        };
        let ino = self.intern(child);
        Ok(self.registry_dir_attr(ino))
    }

    /// Appends the entries of a registry directory (after `.` and `..`).
    fn list_registry_dir(&self, node: &RegistryNode, out: &mut Listing) -> Result<(), FsError> {
        match node {
            RegistryNode::Root => {
                for entity in self.listing(Scope::Entities)?.iter() {
                    if validate_scope("entity", entity).is_ok() {
                        let ino = self.intern(RegistryNode::Entity(entity.clone()));
                        out.push((entity.clone(), self.registry_dir_attr(ino)));
                    }
                }
            }
            RegistryNode::Entity(entity) => {
                for project in self.listing(Scope::Projects(entity.clone()))?.iter() {
                    if validate_scope("project", project).is_ok() {
                        let node = RegistryNode::Project(entity.clone(), project.clone());
                        let ino = self.intern(node);
                        out.push((project.clone(), self.registry_dir_attr(ino)));
                    }
                }
            }
            RegistryNode::Project(entity, project) => {
                let parent = self.intern(node.clone());
                let scope = Scope::Collections(entity.clone(), project.clone());
                for name in self.listing(scope)?.iter() {
                    // Collections whose names artfs would refuse are not shown.
                    let Ok(c) = CollectionPath::new(entity, project, name) else {
                        continue;
                    };
                    // A collection whose log is broken is left out; the others are listed. (A
                    // registry that fails or stalls still fails the listing.)
                    let state = match self.collection_state(&c) {
                        Ok(state) => state,
                        Err(err @ FsError::Source { source: SourceError::Corrupt(_), .. }) => {
                            tracing::warn!(%err, "leaving {c} out of the listing");
                            continue;
                        }
                        Err(err) => return Err(err),
                    };
                    for record in state.versions.values() {
                        let slot = self.intern_version(&c, record, parent);
                        let attr = self.getattr(self.version_ino(&slot, Tree::ROOT))?;
                        out.push((version_dir_name(name, record.version), attr));
                    }
                    for alias in state.aliases.keys() {
                        let Ok(target) = Self::alias_target_in(&c, &state, alias) else {
                            continue;
                        };
                        let ino = self.intern(RegistryNode::Alias(c.clone(), alias.clone()));
                        out.push((format!("{name}:{alias}"), self.symlink_attr(ino, &target)));
                    }
                }
            }
            RegistryNode::Alias(..) => return Err(FsError::NotADirectory),
        }
        Ok(())
    }

    /// `name:vN` that `alias` points at now (as of the last refresh).
    fn alias_target(&self, c: &CollectionPath, alias: &str) -> Result<String, FsError> {
        let state = self.collection_state(c)?;
        Self::alias_target_in(c, &state, alias)
    }

    fn alias_target_in(
        c: &CollectionPath,
        state: &CollectionView,
        alias: &str,
    ) -> Result<String, FsError> {
        let version = state.aliases.get(alias).ok_or(FsError::NotFound)?;
        if !state.versions.contains_key(version) {
            return Err(FsError::NotFound);
        }
        Ok(version_dir_name(&c.name, *version))
    }

    fn parent_of(&self, node: &RegistryNode) -> InodeNo {
        match node {
            RegistryNode::Root | RegistryNode::Entity(_) => ROOT_INODE,
            RegistryNode::Project(e, _) => self.intern(RegistryNode::Entity(e.clone())),
            RegistryNode::Alias(c, _) => {
                self.intern(RegistryNode::Project(c.entity.clone(), c.project.clone()))
            }
        }
    }

    /// Whether `scope`'s listing has `name`, read again if it has not (see [`MISS_REREAD_AFTER`]).
    fn listed(&self, scope: Scope, name: &str) -> Result<(), FsError> {
        if self.listing(scope.clone())?.iter().any(|n| n == name) {
            return Ok(());
        }
        match self.listing_within(scope, MISS_REREAD_AFTER)?.iter().any(|n| n == name) {
            true => Ok(()),
            false => Err(FsError::NotFound),
        }
    }

    /// A registry listing, read again once older than the refresh interval.
    fn listing(&self, scope: Scope) -> Result<Arc<Vec<String>>, FsError> {
        self.listing_within(scope, self.inner.options.refresh)
    }

    fn listing_within(&self, scope: Scope, max_age: Duration) -> Result<Arc<Vec<String>>, FsError> {
        if let Some(t) = lock(&self.inner.listings).get(&scope)
            && t.at.elapsed() < max_age.min(self.inner.options.refresh)
        {
            return Ok(t.value.clone());
        }
        let catalog = &self.inner.catalog;
        let fresh = match &scope {
            Scope::Entities => self.block_on(|| "listing entities".into(), catalog.entities()),
            Scope::Projects(e) => {
                self.block_on(|| format!("listing projects of {e}"), catalog.projects(e))
            }
            Scope::Collections(e, p) => {
                self.block_on(|| format!("listing artifacts of {e}/{p}"), catalog.collections(e, p))
            }
        };
        let names = match fresh {
            Ok(names) => names,
            Err(err) => return self.stale(&self.inner.listings, scope, err),
        };
        let names = Arc::new(names);
        let timed = Timed { value: names.clone(), at: Instant::now() };
        lock(&self.inner.listings).insert(scope, timed);
        Ok(names)
    }

    /// A collection's versions and aliases, read again once older than the refresh interval.
    fn collection_state(&self, c: &CollectionPath) -> Result<Arc<CollectionView>, FsError> {
        self.collection_state_within(c, self.inner.options.refresh)
    }

    fn collection_state_within(
        &self,
        c: &CollectionPath,
        max_age: Duration,
    ) -> Result<Arc<CollectionView>, FsError> {
        let cached = lock(&self.inner.states).get(c).cloned();
        if let Some(t) = &cached
            && t.at.elapsed() < max_age.min(self.inner.options.refresh)
        {
            return Ok(t.value.clone());
        }
        let state = match self
            .block_on(|| format!("reading the versions of {c}"), self.inner.catalog.collection(c))
        {
            Ok(state) => state,
            Err(err) => return self.stale(&self.inner.states, c.clone(), err),
        };
        let state = Arc::new(state);
        let timed = Timed { value: state.clone(), at: Instant::now() };
        lock(&self.inner.states).insert(c.clone(), timed);
        Ok(state)
    }

    /// What the mount last read for `key`, when reading it again failed with `err`: versions
    /// are immutable, so a listing or alias that is stale is better than `EIO` for files that
    /// are cached already. Logged; asked again after the next refresh interval. `err` if
    /// nothing was ever read.
    fn stale<K: std::hash::Hash + Eq + std::fmt::Debug, V: Clone>(
        &self,
        table: &Mutex<HashMap<K, Timed<V>>>,
        key: K,
        err: FsError,
    ) -> Result<V, FsError> {
        let mut table = lock(table);
        let Some(timed) = table.get_mut(&key) else { return Err(err) };
        tracing::warn!(
            ?key,
            age = ?timed.at.elapsed(),
            error = %err,
            "registry unreachable; serving what it said before (stale)"
        );
        timed.at = Instant::now();
        Ok(timed.value.clone())
    }

    /// Runs registry I/O to completion from a FUSE thread, bounded by the registry timeout.
    /// Right after a registry request timed out, fails at once instead of waiting again (see
    /// `fetch::health`), so one user operation waits the timeout at most once.
    fn block_on<T>(
        &self,
        what: impl FnOnce() -> String,
        fut: impl Future<Output = Result<T, SourceError>>,
    ) -> Result<T, FsError> {
        let after = self.inner.options.registry_timeout;
        let health = self.inner.fetcher.health();
        if let Some(ago) = health.stalled_since() {
            return Err(FsError::Unresponsive { what: what(), ago });
        }
        // The timer must be created inside the runtime, hence the async block.
        match self.inner.handle.block_on(async { tokio::time::timeout(after, fut).await }) {
            Ok(Ok(v)) => {
                health.answered();
                Ok(v)
            }
            Ok(Err(source)) => Err(FsError::Source { what: what(), source }),
            Err(_elapsed) => {
                health.timed_out();
                Err(FsError::Timeout { what: what(), after })
            }
        }
    }

    // ---- inode table --------------------------------------------------------------------------

    fn intern(&self, node: RegistryNode) -> InodeNo {
        if let Some(ino) = read(&self.inner.nodes).index.get(&node) {
            return *ino;
        }
        let mut table = write(&self.inner.nodes);
        if let Some(ino) = table.index.get(&node) {
            return *ino;
        }
        let ino = InodeNo(table.nodes.len() as u64 + 1);
        table.nodes.push(node.clone());
        table.index.insert(node, ino);
        ino
    }

    fn intern_version(
        &self,
        c: &CollectionPath,
        record: &VersionInfo,
        parent: InodeNo,
    ) -> Arc<VersionSlot> {
        let key = (c.clone(), record.version);
        if let Some(slot) = read(&self.inner.versions).index.get(&key) {
            return slot.clone();
        }
        let mut table = write(&self.inner.versions);
        if let Some(slot) = table.index.get(&key) {
            return slot.clone();
        }
        let slot = Arc::new(VersionSlot {
            // Slots stay far below 2^32: one per version directory ever looked at.
            slot: table.slots.len() as u32 + 1,
            collection: c.clone(),
            blobs: self.inner.catalog.blobs(c, record),
            record: record.clone(),
            label: format!("{c}:v{}", record.version),
            parent,
            loaded: OnceLock::new(),
            loading: Mutex::new(()),
        });
        table.slots.push(slot.clone());
        table.index.insert(key, slot.clone());
        slot
    }

    fn version_ino(&self, slot: &VersionSlot, node: NodeId) -> InodeNo {
        if self.inner.single && slot.slot == 1 && node == Tree::ROOT {
            return ROOT_INODE;
        }
        InodeNo((u64::from(slot.slot) << SLOT_SHIFT) | u64::from(node.0))
    }

    fn decode(&self, ino: InodeNo) -> Result<Inode, FsError> {
        let slot_no = ino.0 >> SLOT_SHIFT;
        if slot_no == 0 {
            if self.inner.single {
                return match ino == ROOT_INODE {
                    true => Ok(Inode::Version(self.slot(1)?, Tree::ROOT)),
                    false => Err(FsError::NotFound),
                };
            }
            // Inode 0 is never handed out.
            let index = ino.0.checked_sub(1).ok_or(FsError::NotFound)?;
            let index = usize::try_from(index).map_err(|_| FsError::NotFound)?;
            let table = read(&self.inner.nodes);
            let node = table.nodes.get(index).ok_or(FsError::NotFound)?;
            return Ok(Inode::Registry(node.clone()));
        }
        let slot = self.slot(slot_no)?;
        // Cannot truncate: the mask keeps the low 32 bits.
        let node = NodeId((ino.0 & 0xffff_ffff) as u32);
        let known = match slot.loaded.get() {
            Some(loaded) => loaded.tree.contains(node),
            None => node == Tree::ROOT,
        };
        if !known {
            return Err(FsError::NotFound);
        }
        Ok(Inode::Version(slot, node))
    }

    fn slot(&self, slot_no: u64) -> Result<Arc<VersionSlot>, FsError> {
        let index = slot_no.checked_sub(1).ok_or(FsError::NotFound)?;
        let index = usize::try_from(index).map_err(|_| FsError::NotFound)?;
        read(&self.inner.versions).slots.get(index).cloned().ok_or(FsError::NotFound)
    }

    /// The version's tree, fetching the manifest on first use.
    fn loaded(&self, slot: &VersionSlot) -> Result<Arc<LoadedVersion>, FsError> {
        if let Some(loaded) = slot.loaded.get() {
            return Ok(loaded.clone());
        }
        let _loading = lock(&slot.loading);
        if let Some(loaded) = slot.loaded.get() {
            return Ok(loaded.clone());
        }
        let json = self.block_on(
            || format!("reading the manifest of {}", slot.label),
            self.inner.catalog.manifest_bytes(&slot.collection, &slot.record),
        )?;
        let loaded = Arc::new(LoadedVersion::from_json(&slot.label, &json)?);
        drop(json);
        tracing::info!(
            artifact = %slot.label,
            entries = slot.record.file_count,
            heap_bytes = loaded.heap_bytes(),
            "loaded version tree"
        );
        Ok(slot.loaded.get_or_init(|| loaded).clone())
    }

    // ---- files --------------------------------------------------------------------------------

    fn finish_open(
        &self,
        slot: &VersionSlot,
        loaded: &LoadedVersion,
        node: NodeId,
    ) -> Result<OpenFile, FsError> {
        let NodeKind::File { entry: index, size } = loaded.tree.kind(node) else {
            return Err(FsError::IsADirectory);
        };
        let entry = loaded.entry(index, size);
        let path = loaded.tree.path(node);
        let blob = self
            .inner
            .fetcher
            .open(&slot.blobs, &slot.label, &path, &entry)
            .map_err(|e| fetch_error(&slot.label, &path, e))?;
        let size_unknown = loaded.size_unknown(index);
        if size_unknown {
            let ino = self.version_ino(slot, node);
            lock(&self.inner.learned_sizes).insert(ino, blob.len());
        }
        let fh = self.inner.next_handle.fetch_add(1, Ordering::Relaxed);
        let open = OpenHandle { blob, artifact: slot.label.clone(), entry: path };
        write(&self.inner.files).insert(fh, Arc::new(open));
        Ok(OpenFile { fh: HandleNo(fh), direct_io: size_unknown })
    }

    /// Fetches, in the background, the small siblings that a directory walk reaching `node`
    /// will open next. Best effort: a failure here only means the open fetches (and reports).
    fn read_ahead(&self, slot: &Arc<VersionSlot>, loaded: &Arc<LoadedVersion>, node: NodeId) {
        let next =
            self.inner.readahead.opened(u64::from(slot.slot), node.0, loaded.tree.siblings(node));
        if self.inner.options.warm_up_bytes > 0
            && self.inner.readahead.take_shuffled(u64::from(slot.slot))
        {
            self.warm_up(slot, loaded);
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
    fn warm_up(&self, slot: &Arc<VersionSlot>, loaded: &Arc<LoadedVersion>) {
        let tree = &loaded.tree;
        let entries: Vec<(String, crate::manifest::Entry)> = (0..tree.len() as u32)
            .map(NodeId)
            .filter_map(|n| match tree.kind(n) {
                NodeKind::File { entry, size }
                    if size <= READAHEAD_MAX_FILE_BYTES && !loaded.size_unknown(entry) =>
                {
                    Some((tree.path(n), loaded.entry(entry, size)))
                }
                _ => None,
            })
            .collect();
        // Path order, as `artfs prefetch` takes a manifest (node ids go breadth first).
        let mut entries = entries;
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let fetcher = self.inner.fetcher.clone();
        let budget = self.inner.options.warm_up_bytes.min(fetcher.cache().keep_bytes());
        let set = crate::prefetch::plan(entries.iter().map(|(p, e)| (p, e)), budget);
        let (label, blobs) = (slot.label.clone(), slot.blobs.clone());
        tracing::info!(
            "{label}: opened in shuffled order; warming up {} files ({} bytes), {} left out by the budget",
            set.entries.len(),
            set.bytes,
            set.left_out_files
        );
        let started = std::thread::Builder::new().name("artfs-warm-up".into()).spawn(move || {
            let stop = std::sync::atomic::AtomicBool::new(false);
            let done = crate::prefetch::warm(
                &fetcher,
                &blobs,
                &label,
                &set.entries,
                WARM_UP_JOBS,
                &|_| {},
                &stop,
            );
            tracing::info!(
                "{label}: warm-up done: {} files in the cache ({} fetched), {} failed",
                done.files,
                done.fetched_files,
                done.failed.len()
            );
            for err in done.failed.iter().take(5) {
                tracing::debug!(%err, "warm-up fetch failed");
            }
        });
        if let Err(err) = started {
            tracing::warn!(%err, "cannot start the warm-up thread; reading without");
        }
    }

    /// Whether no readahead download is queued or running.
    #[cfg(test)]
    fn readahead_idle(&self) -> bool {
        self.inner.readahead_pool.get().and_then(Option::as_ref).is_none_or(Pool::is_idle)
    }

    fn readahead_pool(&self) -> Option<&Pool> {
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

    // ---- attributes ---------------------------------------------------------------------------

    fn attr(&self, ino: InodeNo, kind: FileKind, size: u64, nlink: u32) -> Attr {
        let (perm, ttl) = match kind {
            FileKind::Directory => (0o555, self.inner.options.refresh),
            FileKind::File => (0o444, VERSION_TTL),
            FileKind::Symlink => (0o777, self.inner.options.refresh),
        };
        Attr {
            ino,
            kind,
            size,
            blocks: size.div_ceil(STAT_BLOCK_BYTES),
            perm,
            nlink,
            uid: self.inner.options.uid,
            gid: self.inner.options.gid,
            mtime: self.inner.mounted_at,
            ttl,
        }
    }

    fn registry_dir_attr(&self, ino: InodeNo) -> Attr {
        self.attr(ino, FileKind::Directory, 0, 2)
    }

    fn symlink_attr(&self, ino: InodeNo, target: &str) -> Attr {
        self.attr(ino, FileKind::Symlink, target.len() as u64, 1)
    }

    fn unloaded_root_attr(&self, slot: &VersionSlot) -> Attr {
        // Short TTL: the link count is only known once the tree is loaded.
        Attr {
            mtime: slot.record.created_at.into(),
            ..self.attr(self.version_ino(slot, Tree::ROOT), FileKind::Directory, 0, 2)
        }
    }

    fn tree_attr(&self, slot: &VersionSlot, loaded: &LoadedVersion, node: NodeId) -> Attr {
        let ino = self.version_ino(slot, node);
        let attr = match loaded.tree.kind(node) {
            NodeKind::Dir => {
                let nlink = 2 + loaded.tree.subdir_count(node);
                Attr { ttl: VERSION_TTL, ..self.attr(ino, FileKind::Directory, 0, nlink as u32) }
            }
            NodeKind::File { entry, .. } if loaded.size_unknown(entry) => {
                let learned = lock(&self.inner.learned_sizes).get(&ino).copied();
                Attr {
                    // Not cached by the kernel until known: the size is learned when the file
                    // is first opened, and `stat` right after must show it. Once learned it is
                    // fixed for the life of the mount (the entry is cached in this process).
                    ttl: if learned.is_some() { VERSION_TTL } else { Duration::ZERO },
                    ..self.attr(ino, FileKind::File, learned.unwrap_or(0), 1)
                }
            }
            NodeKind::File { size, .. } => self.attr(ino, FileKind::File, size, 1),
        };
        Attr { mtime: slot.record.created_at.into(), ..attr }
    }
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
