//! Partially fetched large blobs: a sparse data file plus a one-byte-per-chunk map, under
//! `v1/partial/`, filled chunk by chunk by `fetch::ranged`.
//!
//! The map is only a *hint*: a chunk's data is written before its map byte, without fsync, so a
//! crash can leave a map byte set over data that never reached the disk. Hence a process never
//! serves a hinted chunk before re-verifying it against its SHA-256 (see `fetch::ranged`); the map
//! only saves the network fetch when the data turns out to be good. Nothing under `partial/` is
//! ever served as a complete entry: a finished file is copied through the normal verified fill
//! into `obj/` and its partial files are removed.
//!
//! Every open [`PartialFile`] holds a shared flock on its data file; eviction removes only
//! partial files whose exclusive flock it can take, i.e. ones no process is reading.

use std::fs::{self, File, TryLockError};
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use tracing::debug;

use super::{CacheError, CacheKey};

/// Map byte of a chunk whose data was written after verification.
const CHUNK_WRITTEN: u8 = 1;

/// The on-disk state of one partially fetched blob, open and protected from eviction.
#[derive(Debug)]
pub struct PartialFile {
    data: File,
    map: File,
    data_path: PathBuf,
    map_path: PathBuf,
    chunks: usize,
}

impl PartialFile {
    /// Opens (creating if needed) the partial files of `key` in `dir` for a blob of `size`
    /// bytes in `chunks` chunks. Files of another size (left by an older format or a bug) are
    /// reset rather than trusted.
    pub(super) fn open(
        dir: &Path,
        key: &CacheKey,
        size: u64,
        chunks: usize,
    ) -> Result<PartialFile, CacheError> {
        let stem = format!("{}-{}", key.kind(), key.hex());
        let data_path = dir.join(format!("{stem}.data"));
        let map_path = dir.join(format!("{stem}.map"));
        let open = super::open_or_create;
        let mut data = open(&data_path)?;
        data.lock_shared().map_err(|source| CacheError::io("lock", &data_path, source))?;
        if data.metadata().is_ok_and(|m| std::os::unix::fs::MetadataExt::nlink(&m) == 0) {
            // Removed by eviction between our open and our lock: start a new one.
            data = open(&data_path)?;
            data.lock_shared().map_err(|source| CacheError::io("lock", &data_path, source))?;
        }
        let map = open(&map_path)?;
        let resize = |file: &File, path: &Path, len: u64| -> Result<(), CacheError> {
            let current =
                file.metadata().map_err(|source| CacheError::io("stat", path, source))?.len();
            if current != len {
                // Zeroes every byte: stale map bytes must not survive a size change.
                file.set_len(0)
                    .and_then(|()| file.set_len(len))
                    .map_err(|source| CacheError::io("resize", path, source))?;
            }
            Ok(())
        };
        let data_len = data.metadata().map_err(|e| CacheError::io("stat", &data_path, e))?.len();
        if data_len != size {
            // New or inconsistent: nothing in the map can be trusted either.
            map.set_len(0).map_err(|source| CacheError::io("resize", &map_path, source))?;
        }
        resize(&data, &data_path, size)?;
        resize(&map, &map_path, chunks as u64)?;
        Ok(PartialFile { data, map, data_path, map_path, chunks })
    }

    /// Which chunks the map says were written (to be re-verified before use).
    pub fn hints(&self) -> Vec<bool> {
        let mut map = vec![0u8; self.chunks];
        match self.map.read_exact_at(&mut map, 0) {
            Ok(()) => map.iter().map(|b| *b == CHUNK_WRITTEN).collect(),
            Err(err) => {
                debug!(path = %self.map_path.display(), %err, "cannot read chunk map");
                vec![false; self.chunks]
            }
        }
    }

    /// Stores verified chunk `index` at `offset`: data first, then its map byte.
    pub fn write_chunk(&self, index: usize, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.data.write_all_at(bytes, offset)?;
        self.map.write_all_at(&[CHUNK_WRITTEN], index as u64)
    }

    /// Clears the map byte of a chunk that failed re-verification.
    pub fn forget_chunk(&self, index: usize) -> io::Result<()> {
        self.map.write_all_at(&[0], index as u64)
    }

    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.data.read_exact_at(buf, offset)
    }

    /// Removes both files; readers holding this handle keep reading the (unlinked) data.
    pub fn remove(&self) {
        for path in [&self.map_path, &self.data_path] {
            if let Err(err) = fs::remove_file(path)
                && err.kind() != io::ErrorKind::NotFound
            {
                debug!(path = %path.display(), %err, "cannot remove partial file");
            }
        }
    }
}

/// Removes the partial files in `dir` that no process has open. Returns the bytes freed.
pub(super) fn remove_unused(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut freed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|ext| ext != "data") {
            continue;
        }
        let Ok(file) = File::open(&path) else {
            continue;
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock | TryLockError::Error(_)) => continue,
        }
        // Allocated bytes, not the apparent size: the data file is sparse.
        let used = file.metadata().map(|m| std::os::unix::fs::MetadataExt::blocks(&m) * 512);
        let removed = fs::remove_file(path.with_extension("map"))
            .or_else(|e| if e.kind() == io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
            .and_then(|()| fs::remove_file(&path));
        match removed {
            Ok(()) => freed += used.unwrap_or(0),
            Err(err) => debug!(path = %path.display(), %err, "cannot remove partial file"),
        }
    }
    freed
}
