//! Cross-process coordination: per-key fill locks and in-progress temp files.
//!
//! Fill locks are open-file-description (OFD) byte-range locks on one shared file, one byte per
//! key: no file is created or deleted per fill. (A lock file per key, created and unlinked around
//! every fill, made ext4 inode allocation the largest cost of filling many small files.) OFD locks
//! belong to the open file, not the process, so they exclude threads of one process as well as
//! other processes, and the kernel drops them when the holder's descriptor closes, also when the
//! holder dies. Temp files hold a shared flock for their whole life, so a temp file whose flock
//! can be taken exclusively belongs to a dead process.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};
use tracing::{debug, warn};

/// Exclusive right, across threads and processes, to fill one key; released on drop.
#[derive(Debug)]
pub(super) struct KeyLock {
    // Held only for its lock, which the kernel drops when this descriptor closes.
    _file: File,
}

impl KeyLock {
    /// Blocks until this handle holds byte `offset` of the fill-lock file at `path`.
    pub(super) fn acquire(path: &Path, offset: i64) -> io::Result<Self> {
        let file = open_creating_parent(path)?;
        let byte = libc::flock {
            l_type: libc::F_WRLCK as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: offset,
            l_len: 1,
            // Must be 0 for OFD locks.
            l_pid: 0,
        };
        loop {
            match fcntl(&file, FcntlArg::F_OFD_SETLKW(&byte)) {
                Ok(_) => return Ok(Self { _file: file }),
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(errno.into()),
            }
        }
    }
}

fn open_creating_parent(path: &Path) -> io::Result<File> {
    let open = || OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path);
    match open() {
        // The directory can vanish if someone wipes the cache under a running process.
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            open()
        }
        other => other,
    }
}

/// Whether `path` still names the inode `file` has open.
pub(super) fn names_inode(path: &Path, file: &File) -> io::Result<bool> {
    let held = file.metadata()?;
    match fs::symlink_metadata(path) {
        Ok(named) => Ok(named.dev() == held.dev() && named.ino() == held.ino()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err),
    }
}

/// A fill in progress: a uniquely named file in `tmp/`, removed on drop unless published.
#[derive(Debug)]
pub(super) struct TempBlob {
    pub(super) file: File,
    name: TempName,
}

/// The temp file's name, removed on drop unless published.
#[derive(Debug)]
struct TempName {
    path: PathBuf,
    published: bool,
}

/// Distinguishes temp files of one process; the pid distinguishes processes.
static TEMP_SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl TempBlob {
    pub(super) fn create(tmp_dir: &Path, stem: &str) -> io::Result<Self> {
        let pid = std::process::id();
        loop {
            let sequence = TEMP_SEQUENCE.fetch_add(1, Ordering::Relaxed);
            let path = tmp_dir.join(format!("{stem}.{pid}.{sequence}.tmp"));
            let created = OpenOptions::new().read(true).write(true).create_new(true).open(&path);
            let file = match created {
                Ok(file) => file,
                // A dead process with a recycled pid may have left this very name behind.
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir_all(tmp_dir)?;
                    continue;
                }
                Err(err) => return Err(err),
            };
            let temp = Self { file, name: TempName { path, published: false } };
            temp.file.lock_shared()?;
            return Ok(temp);
        }
    }

    pub(super) fn path(&self) -> &Path {
        &self.name.path
    }

    /// Renames the temp file to `dest` (replacing whatever is there) and hands back its open
    /// file, still holding the shared flock taken at creation: the published entry is protected
    /// from eviction without a moment's gap, and without opening it again.
    pub(super) fn publish(self, dest: &Path) -> io::Result<File> {
        let TempBlob { file, mut name } = self;
        rename_creating_parent(&name.path, dest)?;
        name.published = true;
        Ok(file)
    }
}

impl Drop for TempName {
    fn drop(&mut self) {
        if !self.published
            && let Err(err) = fs::remove_file(&self.path)
        {
            warn!(path = %self.path.display(), %err, "cannot remove cache temp file");
        }
    }
}

/// Renames `from` to `to`, creating `to`'s directory only when it is missing: most fills land
/// in an existing shard, and a `mkdir` per fill is measurable with thousands of small files.
pub(super) fn rename_creating_parent(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = to.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::rename(from, to)
        }
        other => other,
    }
}

/// Removes temp files left by dead processes. A file younger than `min_age` is spared even when
/// unlocked, because its creator may sit between `create` and `lock_shared`.
pub(super) fn remove_dead_temps(tmp_dir: &Path, min_age: Duration) -> io::Result<usize> {
    let entries = match fs::read_dir(tmp_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err),
    };
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in entries {
        let path = entry?.path();
        match remove_if_dead(&path, now, min_age) {
            Ok(true) => removed += 1,
            Ok(false) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => warn!(path = %path.display(), %err, "cannot check cache temp file"),
        }
    }
    if removed > 0 {
        debug!(removed, dir = %tmp_dir.display(), "removed temp files of dead processes");
    }
    Ok(removed)
}

fn remove_if_dead(path: &Path, now: SystemTime, min_age: Duration) -> io::Result<bool> {
    let file = File::open(path)?;
    let modified = file.metadata()?.modified()?;
    // A clock step backwards makes the age unknown; treat such files as young.
    let age = now.duration_since(modified).unwrap_or(Duration::ZERO);
    if age < min_age {
        return Ok(false);
    }
    match file.try_lock() {
        Ok(()) => {
            fs::remove_file(path)?;
            Ok(true)
        }
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(err)) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::thread;

    #[test]
    fn a_key_lock_excludes_the_same_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks/fill.lock");
        let held = KeyLock::acquire(&path, 7).unwrap();
        // Another key's byte is free at once, even in the same process.
        let other = KeyLock::acquire(&path, 8).unwrap();
        let (tx, rx) = mpsc::channel();
        let path2 = path.clone();
        let waiter = thread::spawn(move || {
            let lock = KeyLock::acquire(&path2, 7).unwrap();
            tx.send(()).unwrap();
            drop(lock);
        });
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err(), "same key must wait");
        drop(held);
        rx.recv_timeout(Duration::from_secs(10)).expect("released lock is granted");
        waiter.join().unwrap();
        drop(other);
        // One file for every key.
        assert_eq!(fs::read_dir(dir.path().join("locks")).unwrap().count(), 1);
    }
}
