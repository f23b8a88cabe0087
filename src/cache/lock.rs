//! Cross-process coordination files: per-key fill locks and in-progress temp files.
//!
//! Lock files are deleted when released so `locks/` stays small. That is safe only because of one
//! rule: a lock file's name may be unlinked only by a process holding the flock on the inode that
//! name currently points at. Acquirers therefore re-check, after the flock is granted, that the
//! name still points at the inode they locked, and start over if not. Temp files hold a shared
//! flock for their whole life, so a temp file whose flock can be taken exclusively belongs to a
//! dead process.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tracing::{debug, warn};

/// Exclusive right, across processes, to fill one key. Released (and its file unlinked) on drop.
#[derive(Debug)]
pub(super) struct KeyLock {
    // Held only for its flock, which the kernel drops when this handle closes (after `drop` ran).
    _file: File,
    path: PathBuf,
}

impl KeyLock {
    /// Blocks until this handle holds the flock on the file currently named `path`.
    pub(super) fn acquire(path: &Path) -> io::Result<Self> {
        loop {
            let file = open_creating_parent(path)?;
            file.lock()?;
            if names_inode(path, &file)? {
                return Ok(Self { _file: file, path: path.to_owned() });
            }
            // The previous holder unlinked this inode after we opened it; its fill is finished.
        }
    }
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        if let Err(err) = fs::remove_file(&self.path)
            && err.kind() != io::ErrorKind::NotFound
        {
            warn!(path = %self.path.display(), %err, "cannot remove cache lock file");
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

/// Removes the lock file at `path` if no process holds it; returns whether it was removed.
pub(super) fn remove_unheld_lock(path: &Path) -> io::Result<bool> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(err),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(false),
        Err(TryLockError::Error(err)) => return Err(err),
    }
    if !names_inode(path, &file)? {
        return Ok(false);
    }
    fs::remove_file(path)?;
    Ok(true)
}

/// A fill in progress: a uniquely named file in `tmp/`, removed on drop unless published.
#[derive(Debug)]
pub(super) struct TempBlob {
    pub(super) file: File,
    pub(super) path: PathBuf,
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
            let temp = Self { file, path, published: false };
            temp.file.lock_shared()?;
            return Ok(temp);
        }
    }

    /// Renames the temp file to `dest` (replacing whatever is there) and keeps it from being
    /// removed on drop.
    pub(super) fn publish(&mut self, dest: &Path) -> io::Result<()> {
        fs::rename(&self.path, dest)?;
        self.published = true;
        Ok(())
    }
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        if !self.published
            && let Err(err) = fs::remove_file(&self.path)
        {
            warn!(path = %self.path.display(), %err, "cannot remove cache temp file");
        }
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
