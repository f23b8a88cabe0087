//! The stat cache: what `artfs log` learnt when it last hashed a local file, keyed by the file's
//! path and stamp (size, mtime, ctime, inode, device), so a re-log of unchanged files reads none
//! of them.
//!
//! One file per user beside the blob cache (`<cache dir>/stat-cache.v1`), written to a temp name
//! and renamed. Its first line holds the format and the XXH3 of the rest, so a truncated or
//! altered file is seen as such and ignored: every doubt falls back to hashing, never to an
//! error. A file owned by another user, or writable by others, is ignored too (its digests would
//! be theirs to choose).
//!
//! A file is only remembered when its stamp was the same before and after hashing, it yielded
//! exactly `st_size` bytes, and its ctime is older than the moment the hash started by
//! [`RACY_MARGIN`]: a write the kernel stamps with the same coarse time as the one recorded
//! (the "racily clean" case git knows) could otherwise go unnoticed. Any later write moves the
//! ctime past that, and the entry no longer matches.
//!
//! What a hit returns is exactly what hashing would: the W&B digest, the upload check (size and
//! XXH3 of the bytes) and the per-chunk sums. If the blob must still be uploaded, the
//! upload reads the file and checks those bytes against the remembered XXH3, so a file changed
//! behind an unchanged stamp is refused, not published under a digest that does not name it.

use std::collections::HashMap;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::store::chunks::{CHUNK_BYTES, ChunkSums};
use crate::store::{FileStamp, UploadCheck};

/// File name beside the blob cache's own `v1/`; bump the suffix when the format changes.
pub const FILE_NAME: &str = "stat-cache.v1";

/// First word of the file's header line.
const MAGIC: &str = "artfs-stat-cache";

/// A file changed less than this before hashing started is hashed again next time.
pub const RACY_MARGIN: Duration = Duration::from_secs(1);

/// Entries not used for this long are dropped when the file is written.
const FORGET_AFTER: Duration = Duration::from_secs(30 * 24 * 3600);

/// What hashing a file gave, as the stat cache keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Known {
    pub stamp: FileStamp,
    /// The entry digest (base64 MD5).
    pub digest: String,
    pub check: UploadCheck,
    pub chunks: Option<ChunkSums>,
    /// Unix seconds of the last log that used it.
    pub used: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Contents {
    entries: HashMap<String, Known>,
}

/// The stat cache of one user, loaded once per `artfs log`.
#[derive(Debug)]
pub struct StatCache {
    path: PathBuf,
    loaded: HashMap<String, Known>,
    learnt: Mutex<HashMap<String, Known>>,
}

impl StatCache {
    /// The stat cache kept in `cache_dir`; missing, unreadable or damaged means empty.
    pub fn open(cache_dir: &Path) -> StatCache {
        let path = cache_dir.join(FILE_NAME);
        let loaded = read(&path).unwrap_or_default();
        StatCache { path, loaded, learnt: Mutex::new(HashMap::new()) }
    }

    /// The remembered result for `path`, if the file still has exactly the stamp it had then.
    pub fn lookup(&self, path: &Path, stamp: &FileStamp) -> Option<Known> {
        let key = key_of(path)?;
        let known = self.loaded.get(&key)?;
        let chunks_fit = match &known.chunks {
            None => stamp.len <= CHUNK_BYTES,
            Some(c) => {
                stamp.len > CHUNK_BYTES
                    && c.chunk_bytes == CHUNK_BYTES
                    && c.size == stamp.len
                    && c.is_consistent()
            }
        };
        (known.stamp == *stamp && known.check.size == stamp.len && chunks_fit)
            .then(|| known.clone())
    }

    /// Remembers what hashing `path` gave, if it is safe to (see the module notes). `before`
    /// and `after` are the stamps around the hash; `started` is when it began.
    #[expect(
        clippy::too_many_arguments,
        reason = "each argument is one fact the safety rule weighs; a struct would only rename them"
    )]
    pub fn learn(
        &self,
        path: &Path,
        before: &FileStamp,
        after: &FileStamp,
        started: SystemTime,
        digest: &str,
        check: UploadCheck,
        chunks: Option<&ChunkSums>,
    ) {
        let Some(key) = key_of(path) else { return };
        let settled = started
            .checked_sub(RACY_MARGIN)
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .is_some_and(|t| (before.ctime_ns.max(before.mtime_ns)) < t.as_nanos() as i128);
        if before != after || check.size != before.len || !settled {
            return;
        }
        let known = Known {
            stamp: *before,
            digest: digest.to_owned(),
            check,
            chunks: chunks.cloned(),
            used: unix_now(),
        };
        self.learnt.lock().unwrap_or_else(|p| p.into_inner()).insert(key, known);
    }

    /// Marks a hit as used now, so it is kept.
    pub fn used(&self, path: &Path, known: Known) {
        if let Some(key) = key_of(path) {
            let known = Known { used: unix_now(), ..known };
            self.learnt.lock().unwrap_or_else(|p| p.into_inner()).insert(key, known);
        }
    }

    /// Writes what was learnt, merged with the file as it is now (another log may have written
    /// it meanwhile). Best effort: a stat cache that cannot be written only costs hashing.
    pub fn save(&self) {
        let learnt = std::mem::take(&mut *self.learnt.lock().unwrap_or_else(|p| p.into_inner()));
        if learnt.is_empty() {
            return;
        }
        let mut entries = read(&self.path).unwrap_or_default();
        entries.extend(learnt);
        let cutoff = unix_now().saturating_sub(FORGET_AFTER.as_secs());
        entries.retain(|_, k| k.used >= cutoff);
        if let Err(e) = write(&self.path, Contents { entries }) {
            tracing::debug!("cannot write the stat cache {}: {e}", self.path.display());
        }
    }
}

/// The absolute path as text (names that are not UTF-8 are never remembered).
fn key_of(path: &Path) -> Option<String> {
    std::path::absolute(path).ok()?.to_str().map(str::to_owned)
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn header(body: &[u8]) -> String {
    format!("{MAGIC} 1 {:032x}\n", xxhash_rust::xxh3::xxh3_128(body))
}

/// The entries in the file at `path`, or `None` for any doubt about it.
fn read(path: &Path) -> Option<HashMap<String, Known>> {
    let file = std::fs::File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    if meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o022 != 0 {
        tracing::debug!("ignoring the stat cache {}: not private to this user", path.display());
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    let nl = bytes.iter().position(|&b| b == b'\n')?;
    let (head, body) = (&bytes[..=nl], &bytes[nl + 1..]);
    if head != header(body).as_bytes() {
        tracing::debug!("ignoring the stat cache {}: truncated or damaged", path.display());
        return None;
    }
    serde_json::from_slice::<Contents>(body).ok().map(|c| c.entries)
}

fn write(path: &Path, contents: Contents) -> std::io::Result<()> {
    let body = serde_json::to_vec(&contents).map_err(std::io::Error::other)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{FILE_NAME}.{}.{:08x}", std::process::id(), fastrand::u32(..)));
    let result = (|| {
        let mut f =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(header(&body).as_bytes())?;
        f.write_all(&body)?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(path: &Path) -> (FileStamp, Known) {
        let stamp = FileStamp::of(&std::fs::metadata(path).unwrap());
        let bytes = std::fs::read(path).unwrap();
        let k = Known {
            stamp,
            digest: crate::manifest::md5_base64(&bytes),
            check: UploadCheck::of(&bytes),
            chunks: None,
            used: unix_now(),
        };
        (stamp, k)
    }

    fn later() -> SystemTime {
        SystemTime::now() + 2 * RACY_MARGIN
    }

    #[test]
    fn remembers_across_runs_and_only_for_the_same_stamp() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("a.bin");
        std::fs::write(&f, b"hello").unwrap();
        let (stamp, k) = known(&f);
        let c = StatCache::open(tmp.path());
        assert_eq!(c.lookup(&f, &stamp), None);
        c.learn(&f, &stamp, &stamp, later(), &k.digest, k.check, None);
        c.save();
        let c = StatCache::open(tmp.path());
        assert_eq!(c.lookup(&f, &stamp).map(|k| k.digest), Some(k.digest.clone()));
        for other in [
            FileStamp { ctime_ns: stamp.ctime_ns + 1, ..stamp },
            FileStamp { mtime_ns: stamp.mtime_ns + 1, ..stamp },
            FileStamp { dev: stamp.dev + 1, ..stamp },
            FileStamp { ino: stamp.ino + 1, ..stamp },
            FileStamp { len: stamp.len + 1, ..stamp },
        ] {
            assert_eq!(c.lookup(&f, &other), None, "{other:?}");
        }
        assert_eq!(c.lookup(&tmp.path().join("b.bin"), &stamp), None);
        let mode = std::fs::metadata(tmp.path().join(FILE_NAME)).unwrap().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_file_that_changed_while_hashed_or_just_before_is_not_remembered() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("a.bin");
        std::fs::write(&f, b"hello").unwrap();
        let (stamp, k) = known(&f);
        let c = StatCache::open(tmp.path());
        let moved = FileStamp { len: 6, ..stamp };
        c.learn(&f, &stamp, &moved, later(), &k.digest, k.check, None);
        // Just written: its ctime is within the margin of the hash's start.
        c.learn(&f, &stamp, &stamp, SystemTime::now(), &k.digest, k.check, None);
        // Fewer bytes read than st_size says.
        let short = UploadCheck { size: 4, ..k.check };
        c.learn(&f, &stamp, &stamp, later(), &k.digest, short, None);
        c.save();
        assert_eq!(StatCache::open(tmp.path()).lookup(&f, &stamp), None);
    }

    #[test]
    fn a_truncated_altered_or_foreign_file_is_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("a.bin");
        std::fs::write(&f, b"hello").unwrap();
        let (stamp, k) = known(&f);
        let c = StatCache::open(tmp.path());
        c.learn(&f, &stamp, &stamp, later(), &k.digest, k.check, None);
        c.save();
        let file = tmp.path().join(FILE_NAME);
        let good = std::fs::read(&file).unwrap();
        let reopen = || StatCache::open(tmp.path()).lookup(&f, &stamp);
        assert!(reopen().is_some());
        for len in [0, 10, good.len() / 2, good.len() - 1] {
            std::fs::write(&file, &good[..len]).unwrap();
            assert_eq!(reopen(), None, "truncated to {len}");
        }
        let mut altered = good.clone();
        let at = altered.len() - 20;
        altered[at] ^= 1;
        std::fs::write(&file, &altered).unwrap();
        assert_eq!(reopen(), None);
        std::fs::write(&file, &good).unwrap();
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .unwrap();
        assert_eq!(reopen(), None, "writable by others");
    }

    #[test]
    fn chunk_sums_must_fit_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("a.bin");
        std::fs::write(&f, b"hello").unwrap();
        let (stamp, k) = known(&f);
        let c = StatCache::open(tmp.path());
        let sums = ChunkSums {
            chunk_bytes: CHUNK_BYTES,
            size: 5,
            algo: crate::store::chunks::ChunkAlgo::NEW,
            sums: vec!["x".into()],
        };
        c.learn(&f, &stamp, &stamp, later(), &k.digest, k.check, Some(&sums));
        c.save();
        // A small file never has sums: this entry is not trusted.
        assert_eq!(StatCache::open(tmp.path()).lookup(&f, &stamp), None);
    }
}
