//! The plain types the filesystem speaks in (inode and handle numbers, attributes, directory
//! entries, open results) and the settings of one mount: what `fuse.rs` converts to and from.

use std::os::unix::fs::MetadataExt as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Default age after which registry listings and alias targets are read again.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// Default bound on one registry request (listing, log replay, manifest), retries included:
/// past it the caller gets `EIO` instead of waiting on a registry that stopped answering.
pub const REGISTRY_TIMEOUT: Duration = Duration::from_secs(60);

/// Default of [`FsOptions::readahead_files`].
pub const READAHEAD_FILES: u32 = 16;

/// The root directory's inode (both modes).
pub const ROOT_INODE: InodeNo = InodeNo(1);

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
    /// Permission bits of files and of directories (`--file-mode`, `--dir-mode`).
    pub file_mode: u16,
    pub dir_mode: u16,
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
            file_mode: 0o444,
            dir_mode: 0o555,
        }
    }
}
