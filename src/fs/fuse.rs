//! The kernel side: the only file that touches `fuser`. Each request is converted to plain types,
//! handed to one [`ArtifactFs`] method, and the result converted back into a reply.
//!
//! Threads: the session runs [`FUSE_THREADS`] request threads. A file open that has to download
//! first is passed to a pool of [`FETCH_WORKERS`] threads that reply when the download is done
//! (fuser replies can be sent from any thread), so a slow download never holds up `ls`, `stat`
//! or reads of other files. Mutating requests, grouped at the bottom, all answer `EROFS`.
//!
//! Each request runs in a `debug` span named after it, with its inode and handle (mountpoint-s3's
//! practice), so `RUST_LOG=artfs=debug` ties every log line to the request it belongs to; with
//! the level off a span costs one check of a cached flag.
//!
//! Warm reads: a file complete in the cache is handed to the kernel with FUSE passthrough where
//! the kernel (6.9+) and privileges (CAP_SYS_ADMIN) allow it, so its reads never reach this
//! process; otherwise its pages are kept across opens (`FOPEN_KEEP_CACHE`, immutable content).
//! Which open gets which is decided in `passthrough`; this file only makes the kernel calls.
//! A mount of small files only refuses opens instead (`openless`): the kernel then reads by
//! inode, handle 0, and keeps pages without asking this process on each open.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::SystemTime;

use tracing::instrument;

use fuser::{
    AccessFlags, BackingId, BsdFileFlags, Errno, FileAttr, FileHandle, FileType, Filesystem,
    FopenFlags, Generation, INodeNo, InitFlags, KernelConfig, LockOwner, MountOption, OpenAccMode,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, SessionACL,
    SessionUnmounter, TimeOrNow, WriteFlags,
};

use super::files::OpenHandle;
use super::openless::InodeEntry;
use super::passthrough::{OpenReply, Passthrough};
use super::tree::NAME_MAX_BYTES;
use super::{
    ArtifactFs, Attr, BLOCK_SIZE_BYTES, DirEntry, FileKind, FsError, HandleNo, InodeNo, OpenFile,
    Opened, Pool,
};

/// Request threads reading from `/dev/fuse`. Registry lookups block one of them at most for the
/// registry timeout; downloads never do.
const FUSE_THREADS: usize = 8;

/// Downloads run at once; further opens of uncached files queue behind them.
const FETCH_WORKERS: usize = 16;

thread_local! {
    /// Each request thread's read buffer, as large as the largest read it served (the kernel
    /// asks for at most 1 MiB at a time).
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Inode numbers are never reused within a mount, so every generation is the same.
const GENERATION: Generation = Generation(0);

/// A mounted (not yet serving) filesystem.
pub struct Mount {
    session: fuser::Session<FuseFs>,
    mountpoint: PathBuf,
}

impl std::fmt::Debug for Mount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mount").field("mountpoint", &self.mountpoint).finish()
    }
}

impl Mount {
    /// Mounts `fs` read-only at `mountpoint` (type `fuse.artfs`). `allow_other` lets users
    /// other than the mounting one in (needs `user_allow_other` in /etc/fuse.conf for
    /// non-root users). `passthrough`: hand complete cached files to the kernel where it can.
    /// `source` is what is mounted (`artfs mounts` shows it, as `mount` does).
    pub fn new(
        fs: ArtifactFs,
        mountpoint: &Path,
        source: &str,
        allow_other: bool,
        passthrough: bool,
    ) -> io::Result<Mount> {
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            MountOption::RO,
            MountOption::FSName(super::fsname(source)),
            // Not `Subtype`: fuser passes that only to fusermount3, while the kernel takes
            // `subtype=` itself, so this names the type `fuse.artfs` on every mount path.
            MountOption::CUSTOM("subtype=artfs".into()),
            MountOption::DefaultPermissions,
            MountOption::NoDev,
            MountOption::NoSuid,
        ];
        config.acl = match allow_other {
            true => SessionACL::All,
            false => SessionACL::Owner,
        };
        config.n_threads = Some(FUSE_THREADS);
        config.clone_fd = true;
        let fuse_fs = FuseFs {
            fs,
            workers: Pool::start("artfs-fetch", FETCH_WORKERS)?,
            passthrough_wanted: passthrough,
            passthrough: Arc::new(Passthrough::default()),
            no_open: false,
        };
        let session = fuser::Session::new(fuse_fs, mountpoint, &config)?;
        Ok(Mount { session, mountpoint: mountpoint.to_owned() })
    }

    /// A handle that unmounts from another thread (e.g. on SIGTERM).
    pub fn unmounter(&mut self) -> Unmounter {
        Unmounter { inner: self.session.unmount_callable(), mountpoint: self.mountpoint.clone() }
    }

    /// Serves requests until the filesystem is unmounted (by [`Unmounter`], `fusermount3 -u`
    /// or `umount`).
    pub fn run(self) -> io::Result<()> {
        self.session.run()
    }
}

/// Unmounts a [`Mount`] from any thread.
#[derive(Debug)]
pub struct Unmounter {
    inner: SessionUnmounter,
    mountpoint: PathBuf,
}

impl Unmounter {
    /// Unmounts; if files are still open (`EBUSY`), detaches lazily instead, so the mount point
    /// is free at once and the kernel drops the mount when the last file is closed.
    pub fn unmount(&mut self) -> io::Result<()> {
        match self.inner.unmount() {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                tracing::warn!(
                    mountpoint = %self.mountpoint.display(),
                    "mount busy; detaching it lazily"
                );
                let status = Command::new("fusermount3")
                    .arg("-u")
                    .arg("-z")
                    .arg("--")
                    .arg(&self.mountpoint)
                    .status()?;
                match status.success() {
                    true => Ok(()),
                    false => Err(io::Error::other(format!("fusermount3 -uz: {status}"))),
                }
            }
            Err(e) => Err(e),
        }
    }
}

struct FuseFs {
    fs: ArtifactFs,
    workers: Pool,
    /// Asked for by the user; whether it runs is decided at `init`.
    passthrough_wanted: bool,
    /// Shared with fetch workers, which reply to opens too.
    passthrough: Arc<Passthrough<BackingId>>,
    /// The kernel stops opening files once an open answers `ENOSYS` (`FUSE_NO_OPEN_SUPPORT`).
    no_open: bool,
}

/// The kernel calls of a reply to an open, for the passthrough bookkeeping.
impl OpenReply for ReplyOpen {
    type Backing = BackingId;

    fn open_backing(&self, file: &std::fs::File) -> io::Result<BackingId> {
        ReplyOpen::open_backing(self, file)
    }

    fn passthrough(self, f: &OpenFile, backing: &BackingId) {
        self.opened_passthrough(FileHandle(f.fh.0), FopenFlags::empty(), backing);
    }

    fn cached(self, f: &OpenFile) {
        self.opened(FileHandle(f.fh.0), open_flags(f));
    }
}

impl FuseFs {
    /// A read of a file the kernel opened without us: served at once from a recent or cached
    /// entry, or by a fetch worker after the download.
    fn read_without_open(
        &self,
        i: InodeNo,
        reader: u32,
        offset: u64,
        size: usize,
        reply: ReplyData,
    ) {
        let read =
            move |fs: &ArtifactFs, open: &OpenHandle, buf: &mut Vec<u8>, reply: ReplyData| {
                if buf.len() < size {
                    buf.resize(size, 0);
                }
                match fs.read_entry(open, offset, &mut buf[..size]) {
                    Ok(n) => reply.data(&buf[..n]),
                    Err(e) => reply.error(errno("read", &e)),
                }
            };
        match self.fs.inode_entry(i) {
            Ok(InodeEntry::Ready(open)) => {
                READ_BUFFER.with_borrow_mut(|buf| read(&self.fs, &open, buf, reply))
            }
            Ok(InodeEntry::Fetch(pending)) => {
                let fs = self.fs.clone();
                let span = tracing::Span::current();
                self.workers.spawn(move || {
                    let _read = span.enter();
                    match pending.run(Some(reader)) {
                        Ok(open) => READ_BUFFER.with_borrow_mut(|buf| read(&fs, &open, buf, reply)),
                        Err(e) => reply.error(errno("read", &e)),
                    }
                })
            }
            Err(e) => reply.error(errno("read", &e)),
        }
    }
}

/// The errno of an error, logging the ones that are failures rather than answers.
fn errno(op: &str, err: &FsError) -> Errno {
    if !err.is_expected() {
        tracing::error!("{op}: {}", crate::report::error_line(err));
    }
    Errno::from_i32(err.errno())
}

fn file_type(kind: FileKind) -> FileType {
    match kind {
        FileKind::Directory => FileType::Directory,
        FileKind::File => FileType::RegularFile,
        FileKind::Symlink => FileType::Symlink,
    }
}

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino.0),
        size: a.size,
        blocks: a.blocks,
        atime: a.mtime,
        mtime: a.mtime,
        ctime: a.mtime,
        crtime: a.mtime,
        kind: file_type(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        blksize: BLOCK_SIZE_BYTES,
        flags: 0,
    }
}

fn open_flags(f: &OpenFile) -> FopenFlags {
    match f.direct_io {
        true => FopenFlags::FOPEN_DIRECT_IO,
        false => FopenFlags::FOPEN_KEEP_CACHE,
    }
}

/// Names the kernel hands over are bytes; artfs names are UTF-8, so anything else is absent.
fn name_str(name: &OsStr) -> Option<&str> {
    name.to_str()
}

fn ino(i: INodeNo) -> InodeNo {
    InodeNo(i.0)
}

impl Filesystem for FuseFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        // Optional speedups: `ls -l`/`find` get attributes with the listing, and lookups in one
        // directory run in parallel. Kernels without them work too.
        let passthrough = self.passthrough_wanted
            && config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
            && config.set_max_stack_depth(1).is_ok();
        self.passthrough.set_enabled(passthrough);
        match (self.passthrough_wanted, passthrough) {
            (true, true) => tracing::info!(
                "warm reads: FUSE passthrough (the kernel reads complete cached files directly)"
            ),
            (true, false) => tracing::info!(
                "warm reads: page cache kept across opens (this kernel offers no FUSE passthrough)"
            ),
            (false, _) => tracing::info!(
                "warm reads: page cache kept across opens (passthrough disabled by --no-passthrough)"
            ),
        }
        self.no_open = config.add_capabilities(InitFlags::FUSE_NO_OPEN_SUPPORT).is_ok();
        for flag in [
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_READDIRPLUS_AUTO,
            InitFlags::FUSE_PARALLEL_DIROPS,
        ] {
            if config.add_capabilities(flag).is_err() {
                tracing::debug!(?flag, "kernel does not offer this FUSE capability");
            }
        }
        Ok(())
    }

    #[instrument(level = "debug", skip_all, fields(parent = parent.0, name = ?name))]
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(name) = name_str(name) else {
            return reply.error(Errno::ENOENT);
        };
        match self.fs.lookup(ino(parent), name) {
            Ok(a) => reply.entry(&a.ttl, &file_attr(&a), GENERATION),
            Err(e) => reply.error(errno("lookup", &e)),
        }
    }

    #[instrument(level = "debug", skip_all, fields(ino = i.0))]
    fn getattr(&self, _req: &Request, i: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.fs.getattr(ino(i)) {
            Ok(a) => reply.attr(&a.ttl, &file_attr(&a)),
            Err(e) => reply.error(errno("getattr", &e)),
        }
    }

    #[instrument(level = "debug", skip_all, fields(ino = i.0))]
    fn readlink(&self, _req: &Request, i: INodeNo, reply: ReplyData) {
        match self.fs.readlink(ino(i)) {
            Ok(target) => reply.data(target.as_bytes()),
            Err(e) => reply.error(errno("readlink", &e)),
        }
    }

    #[instrument(level = "debug", skip_all, fields(ino = i.0))]
    fn access(&self, _req: &Request, i: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        match self.fs.access(ino(i), mask.contains(AccessFlags::W_OK)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno("access", &e)),
        }
    }

    #[instrument(level = "debug", skip_all, fields(ino = i.0))]
    fn open(&self, req: &Request, i: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let write =
            !matches!(flags.acc_mode(), OpenAccMode::O_RDONLY) || flags.0 & libc::O_TRUNC != 0;
        if !write && self.no_open && self.fs.reads_without_open() {
            // Not a failure: the kernel opens this and every later file by itself.
            return reply.error(Errno::ENOSYS);
        }
        match self.fs.open(ino(i), write) {
            Ok(Opened::Ready(f)) => {
                self.passthrough.reply(ino(i), &f, || self.fs.cached_file(f.fh), reply)
            }
            Ok(Opened::Fetch(pending)) => {
                let (fs, passthrough) = (self.fs.clone(), self.passthrough.clone());
                let reader = req.pid();
                // The download is still part of this open: its logs carry the open's span.
                let span = tracing::Span::current();
                self.workers.spawn(move || {
                    let _open = span.enter();
                    match pending.run(Some(reader)) {
                        Ok(f) => passthrough.reply(ino(i), &f, || fs.cached_file(f.fh), reply),
                        Err(e) => reply.error(errno("open", &e)),
                    }
                })
            }
            Err(e) => reply.error(errno("open", &e)),
        }
    }

    #[instrument(level = "debug", skip_all, fields(ino = i.0, fh = fh.0, offset, size))]
    fn read(
        &self,
        req: &Request,
        i: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        if fh.0 == 0 {
            // Opened by the kernel alone (see `init`): no handle, only the inode.
            return self.read_without_open(ino(i), req.pid(), offset, size as usize, reply);
        }
        READ_BUFFER.with_borrow_mut(|buf| {
            // Grown once per thread, never zeroed again: reads are the hot path.
            let size = size as usize;
            if buf.len() < size {
                buf.resize(size, 0);
            }
            match self.fs.read(HandleNo(fh.0), offset, &mut buf[..size]) {
                Ok(n) => reply.data(&buf[..n]),
                Err(e) => reply.error(errno("read", &e)),
            }
        })
    }

    fn flush(
        &self,
        _req: &Request,
        _i: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // Nothing is ever buffered for writing; `ENOSYS` tells the kernel to stop asking.
        reply.error(Errno::ENOSYS);
    }

    #[instrument(level = "debug", skip_all, fields(ino = i.0, fh = fh.0))]
    fn release(
        &self,
        _req: &Request,
        i: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.passthrough.release(HandleNo(fh.0));
        self.fs.release(HandleNo(fh.0));
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _i: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Read-only files are always "synced".
        reply.ok();
    }

    #[instrument(level = "debug", skip_all, fields(ino = i.0))]
    fn opendir(&self, _req: &Request, i: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.fs.opendir(ino(i)) {
            Ok(d) => {
                let flags = match d.cache {
                    true => FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE,
                    false => FopenFlags::empty(),
                };
                reply.opened(FileHandle(d.fh.0), flags)
            }
            Err(e) => reply.error(errno("opendir", &e)),
        }
    }

    #[instrument(level = "debug", skip_all, fields(ino = i.0, fh = fh.0, offset))]
    fn readdir(
        &self,
        _req: &Request,
        i: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let mut sink = |e: DirEntry<'_>| {
            reply.add(INodeNo(e.attr.ino.0), e.offset, file_type(e.attr.kind), e.name)
        };
        match self.fs.readdir(ino(i), HandleNo(fh.0), offset, &mut sink) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno("readdir", &e)),
        }
    }

    #[instrument(level = "debug", skip_all, fields(ino = i.0, fh = fh.0, offset))]
    fn readdirplus(
        &self,
        _req: &Request,
        i: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let mut sink = |e: DirEntry<'_>| {
            let a = &e.attr;
            reply.add(INodeNo(a.ino.0), e.offset, e.name, &a.ttl, &file_attr(a), GENERATION)
        };
        match self.fs.readdir(ino(i), HandleNo(fh.0), offset, &mut sink) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno("readdirplus", &e)),
        }
    }

    #[instrument(level = "debug", skip_all, fields(ino = i.0, fh = fh.0))]
    fn releasedir(
        &self,
        _req: &Request,
        i: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.fs.releasedir(HandleNo(fh.0));
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _i: INodeNo, reply: ReplyStatfs) {
        // No free space, no free inodes: nothing can be written.
        reply.statfs(0, 0, 0, 0, 0, BLOCK_SIZE_BYTES, NAME_MAX_BYTES as u32, BLOCK_SIZE_BYTES);
    }

    fn getxattr(&self, _req: &Request, _i: INodeNo, _name: &OsStr, _size: u32, reply: ReplyXattr) {
        reply.error(errno("getxattr", &FsError::NoXattr));
    }

    fn listxattr(&self, _req: &Request, _i: INodeNo, size: u32, reply: ReplyXattr) {
        // No extended attributes: an empty list.
        match size {
            0 => reply.size(0),
            _ => reply.data(&[]),
        }
    }

    // ---- mutating requests: all refused, the mount is read-only -------------------------------

    fn setattr(
        &self,
        _req: &Request,
        _i: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        reply.error(read_only());
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(read_only());
    }

    fn mkdir(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(read_only());
    }

    fn unlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(read_only());
    }

    fn rmdir(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(read_only());
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &Path,
        reply: ReplyEntry,
    ) {
        reply.error(read_only());
    }

    fn rename(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(read_only());
    }

    fn link(
        &self,
        _req: &Request,
        _i: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(read_only());
    }

    fn write(
        &self,
        _req: &Request,
        _i: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        reply.error(read_only());
    }

    fn create(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        reply.error(read_only());
    }

    fn setxattr(
        &self,
        _req: &Request,
        _i: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(read_only());
    }

    fn removexattr(&self, _req: &Request, _i: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(read_only());
    }

    fn fallocate(
        &self,
        _req: &Request,
        _i: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        reply.error(read_only());
    }
}

/// The answer to every mutating request.
fn read_only() -> Errno {
    Errno::from_i32(FsError::ReadOnly.errno())
}
