//! Reservations other processes see: each reservation of a fill is also a small file in
//! `v1/reserved/`, named by the pid and a random id of the ledger that made it and holding its
//! byte count, so that a mount and a `get` (or two mounts) sharing a cache judge the limit by
//! each other's fills in flight too.
//!
//! Claims are made and counted under the ledger's flock, after reading the shared record afresh
//! (`Ledger::try_reserve`). A fill that ends without an entry removes its claim at once; one
//! whose entry replaces it keeps the claim until that entry is merged into the shared record,
//! and the merge removes it under the same flock, so other processes count those bytes once,
//! never zero times. Claims of processes that are gone (their pid is no running process) are
//! ignored and removed by whoever counts them.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use tracing::{debug, warn};

/// The claims of one ledger (one `BlobCache` and its clones).
#[derive(Debug)]
pub(super) struct Claims {
    dir: PathBuf,
    /// `<pid>-<random>-`: what this ledger's claim names start with.
    own_prefix: String,
}

impl Claims {
    pub(super) fn new(root: &Path) -> Claims {
        let own_prefix = format!("{}-{:016x}-", std::process::id(), fastrand::u64(..));
        Claims { dir: root.join("reserved"), own_prefix }
    }

    /// Records a claim of `bytes` and returns its path; `None` if it cannot be written (the
    /// reservation then holds within this process only, as it did before claims).
    pub(super) fn claim(&self, bytes: u64) -> Option<PathBuf> {
        let path = self.dir.join(format!("{}{:016x}", self.own_prefix, fastrand::u64(..)));
        let written =
            fs::create_dir_all(&self.dir).and_then(|()| fs::write(&path, bytes.to_string()));
        match written {
            Ok(()) => Some(path),
            Err(err) => {
                warn!(path = %path.display(), %err, "cannot record a cache reservation for other processes");
                None
            }
        }
    }

    /// Makes the lease's claim say `bytes` (none when 0); returns whether it does now.
    pub(super) fn set_lease(&self, bytes: u64) -> bool {
        let path = self.dir.join(format!("{}lease", self.own_prefix));
        if bytes == 0 {
            remove(&path);
            return true;
        }
        // Replaced by rename: a process counting claims without the flock (a filesystem
        // without flocks) must never read it half written.
        let staged = self.dir.join(format!(".{}lease", self.own_prefix));
        let written = fs::create_dir_all(&self.dir)
            .and_then(|()| fs::write(&staged, bytes.to_string()))
            .and_then(|()| fs::rename(&staged, &path));
        if let Err(err) = &written {
            warn!(path = %path.display(), %err, "cannot record the cache lease for other processes");
        }
        written.is_ok()
    }

    /// Bytes claimed by other ledgers whose processes still run. Claims of dead processes are
    /// removed on the way.
    pub(super) fn others(&self) -> u64 {
        let Ok(read) = fs::read_dir(&self.dir) else { return 0 };
        let mut total = 0u64;
        for entry in read.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            // `.`: a lease being replaced (see `set_lease`).
            if name.starts_with(&self.own_prefix) || name.starts_with('.') {
                continue;
            }
            let pid = name.split('-').next().and_then(|pid| pid.parse::<u32>().ok());
            if pid.is_none_or(|pid| !process_runs(pid)) {
                debug!(claim = name, "removing the cache reservation of a process that is gone");
                remove(&entry.path());
                continue;
            }
            let bytes = fs::read_to_string(entry.path()).ok().and_then(|s| s.trim().parse().ok());
            total = total.saturating_add(bytes.unwrap_or(0));
        }
        total
    }
}

/// Removes a claim; one already gone is fine.
pub(super) fn remove(path: &Path) {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => warn!(path = %path.display(), %err, "cannot remove a cache reservation"),
    }
}

/// Whether `pid` is a process that has not exited (zombies have).
fn process_runs(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) S …`: the state follows the last `)`.
        Ok(stat) => {
            stat.rsplit_once(')').is_none_or(|(_, rest)| !rest.trim_start().starts_with('Z'))
        }
        Err(err) => err.kind() != io::ErrorKind::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{BlobCache, CacheError, CacheKey, Layout, Verify};
    use super::*;

    fn key(n: u8) -> CacheKey {
        CacheKey::Md5([n; 16])
    }

    fn open(dir: &Path) -> BlobCache {
        BlobCache::open_waiting(dir, 100, Layout::Artfs, Duration::from_millis(300)).unwrap()
    }

    #[test]
    fn fills_of_two_caches_over_one_dir_count_each_others_reservations() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (open(dir.path()), open(dir.path()));
        let held = a.reserve(&key(1), 60).unwrap();
        let err = b.reserve(&key(2), 60).unwrap_err();
        assert!(matches!(err, CacheError::NoRoom { held: 60, .. }), "{err}");
        drop(held);
        let fits = b.reserve(&key(2), 60).unwrap();
        drop(fits);

        // A fill's entry takes over its claim: counted once, before and after the merge.
        let blob = a
            .get_or_fill(&key(9), &Verify::SizeOnly, Some(60), |out| {
                out.write_all(&[5u8; 60]).map_err(Into::into)
            })
            .unwrap();
        assert!(b.reserve(&key(3), 60).is_err(), "the entry's bytes were not counted");
        a.flush();
        assert!(b.reserve(&key(3), 60).is_err(), "the merged entry was not counted");
        assert!(b.reserve(&key(3), 40).is_ok());
        drop(blob);
        let left: Vec<_> = fs::read_dir(dir.path().join("v1/reserved")).unwrap().collect();
        assert!(left.is_empty(), "claims left behind: {left:?}");
    }

    #[test]
    fn claims_of_processes_that_are_gone_are_ignored_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = open(dir.path());
        let reserved = dir.path().join("v1/reserved");
        fs::create_dir_all(&reserved).unwrap();
        let dead = reserved.join(format!("{}-00-01", u32::MAX - 1));
        fs::write(&dead, "90").unwrap();
        let alive = reserved.join("1-00-01");
        fs::write(&alive, "30").unwrap();
        let err = cache.reserve(&key(1), 80).unwrap_err();
        assert!(matches!(err, CacheError::NoRoom { held: 30, .. }), "{err}");
        assert!(!dead.exists() && alive.exists());
        assert!(cache.reserve(&key(1), 70).is_ok());
    }
}
