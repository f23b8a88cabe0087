//! Partially fetched large blobs: a sparse data file plus a one-byte-per-chunk map, under
//! `v1/partial/`, filled chunk by chunk by `fetch::ranged`.
//!
//! The map is only a *hint*: a chunk's data is written before its map byte, without fsync, so a
//! crash can leave a map byte set over data that never reached the disk. Hence a process never
//! serves a hinted chunk before re-verifying it against its chunk sum (see `fetch::ranged`); the
//! map only saves the network fetch when the data turns out to be good. Nothing under `partial/` is
//! ever served as a complete entry: a finished data file is verified whole (digest and size) and
//! then *renamed* into `obj/` by [`BlobCache::adopt`](super::BlobCache::adopt), so its bytes are
//! never copied; its map is removed.
//!
//! Verified chunks are written with direct I/O where the filesystem takes it (see
//! [`DirectWriter`]): a cold read of a large file then costs no page cache for the copy the
//! daemon keeps, only for the reader's own pages.
//!
//! Every open [`PartialFile`] holds a shared flock on its data file; eviction removes only
//! partial files whose exclusive flock it can take, i.e. ones no process is reading. Handles of
//! other processes may still hold the data file when it is renamed: they go on reading (and
//! writing verified, hence identical, chunks into) the same inode, which is now a complete
//! entry, and their shared flock keeps that entry from being evicted while they do.
//!
//! Names under `partial/` change only by rename or unlink, and only (a) by a holder of the data
//! file, under the key's fill lock, after checking that the name still points at the inode it
//! holds (`PartialFile::remove_names`, `BlobCache::adopt`), or (b) by eviction, holding the
//! exclusive flock of the inode the name points at (`remove_unused`). So a holder that comes late
//! never removes a newer partial file of the same key, nor the published entry.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, IoSlice};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::{FileExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::debug;

use super::lock::names_inode;
use super::{BlobCache, CacheError, CacheKey};

/// Map byte of a chunk whose data was written after verification.
const CHUNK_WRITTEN: u8 = 1;

/// The on-disk state of one partially fetched blob, open and protected from eviction.
#[derive(Debug)]
pub struct PartialFile {
    /// Where growth of the data file is accounted.
    cache: BlobCache,
    key: CacheKey,
    size: u64,
    data: File,
    /// The data file again, opened for direct I/O; `None` where the filesystem refuses it.
    direct: Option<DirectWriter>,
    map: File,
    data_path: PathBuf,
    map_path: PathBuf,
    chunks: usize,
}

impl PartialFile {
    /// Opens (creating if needed) the partial files of `key` in the cache's `partial/` for a
    /// blob of `size` bytes in `chunks` chunks. Files of another size (left by an older format
    /// or a bug) are reset rather than trusted.
    pub(super) fn open(
        cache: &BlobCache,
        key: &CacheKey,
        size: u64,
        chunks: usize,
    ) -> Result<PartialFile, CacheError> {
        let dir = &cache.inner.partial_dir;
        let stem = format!("{}-{}", key.kind(), key.hex());
        let data_path = dir.join(format!("{stem}.data"));
        let map_path = dir.join(format!("{stem}.map"));
        let open = super::open_or_create;
        let data = loop {
            let data = open(&data_path)?;
            data.lock_shared().map_err(|source| CacheError::io("lock", &data_path, source))?;
            // Between our open and our lock the file may have been evicted, or published (renamed
            // into `obj/`): then the name is free or names a newer file, so start over.
            if names_inode(&data_path, &data)
                .map_err(|source| CacheError::io("stat", &data_path, source))?
            {
                break data;
            }
        };
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
        let data_meta = data.metadata().map_err(|e| CacheError::io("stat", &data_path, e))?;
        if data_meta.len() != size {
            // New or inconsistent: nothing in the map can be trusted either.
            map.set_len(0).map_err(|source| CacheError::io("resize", &map_path, source))?;
            resize(&data, &data_path, size)?;
            cache.record_partial_bytes(-signed(allocated_bytes(&data_meta)));
        }
        resize(&map, &map_path, chunks as u64)?;
        let cache = cache.clone();
        let direct = DirectWriter::open(&data);
        Ok(PartialFile { cache, key: *key, size, data, direct, map, data_path, map_path, chunks })
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
        self.write_chunk_parts(index, offset, &[bytes])
    }

    /// [`Self::write_chunk`] of a chunk held in pieces (as it arrived), without joining them.
    pub fn write_chunk_parts<P: AsRef<[u8]>>(
        &self,
        index: usize,
        offset: u64,
        parts: &[P],
    ) -> io::Result<()> {
        let written = match &self.direct {
            Some(direct) => direct.write(parts, offset)?,
            None => 0,
        };
        write_rest_at(&self.data, parts, written, offset)?;
        // The chunk's length rather than a stat: exact except for a chunk written twice (a
        // failed hint, or two processes racing), and eviction scans recount anyway.
        let len: u64 = parts.iter().map(|p| p.as_ref().len() as u64).sum();
        self.cache.record_partial_bytes(signed(len));
        self.map.write_all_at(&[CHUNK_WRITTEN], index as u64)
    }

    /// Clears the map byte of a chunk that failed re-verification.
    pub fn forget_chunk(&self, index: usize) -> io::Result<()> {
        self.map.write_all_at(&[0], index as u64)
    }

    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.data.read_exact_at(buf, offset)
    }

    /// Whether verified chunks are written past the page cache (see [`DirectWriter`]).
    pub fn writes_direct(&self) -> bool {
        self.direct.as_ref().is_some_and(|d| !d.refused.load(Ordering::Relaxed))
    }

    pub fn key(&self) -> &CacheKey {
        &self.key
    }

    /// Size of the complete blob (and apparent size of the data file).
    pub fn len(&self) -> u64 {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    pub(super) fn data(&self) -> &File {
        &self.data
    }

    pub(super) fn data_path(&self) -> &Path {
        &self.data_path
    }

    /// Whether `partial/<stem>.data` still names the data file this handle holds.
    pub(super) fn is_named(&self) -> Result<bool, CacheError> {
        names_inode(&self.data_path, &self.data)
            .map_err(|source| CacheError::io("stat", &self.data_path, source))
    }

    /// Allocated bytes of the data file (it is sparse until complete).
    pub(super) fn allocated_bytes(&self) -> Result<u64, CacheError> {
        let meta = self
            .data
            .metadata()
            .map_err(|source| CacheError::io("stat", &self.data_path, source))?;
        Ok(allocated_bytes(&meta))
    }

    /// Unlinks those of the two names that still point at this handle's files; readers keep
    /// reading the (unlinked) data. The caller holds the key's fill lock (see the module doc).
    /// Returns the allocated bytes of the data file if its name was removed, for the ledger.
    pub(super) fn remove_names(&self) -> u64 {
        let allocated = self.data.metadata().map(|meta| allocated_bytes(&meta)).unwrap_or(0);
        remove_if_named(&self.map_path, &self.map);
        if remove_if_named(&self.data_path, &self.data) { allocated } else { 0 }
    }
}

/// Writes `parts` from byte `skip` of them on, in order, at `offset + skip`, with one `pwritev`
/// per [`WRITE_BYTES`] (network pieces are often a few KiB: one write each would be a syscall
/// each).
fn write_rest_at<P: AsRef<[u8]>>(
    file: &File,
    parts: &[P],
    mut skip: usize,
    offset: u64,
) -> io::Result<()> {
    let mut offset = offset + skip as u64;
    let mut batch: Vec<IoSlice<'_>> = Vec::new();
    let mut batch_bytes = 0;
    for part in parts {
        let mut part = part.as_ref();
        let skipped = skip.min(part.len());
        part = &part[skipped..];
        skip -= skipped;
        while !part.is_empty() {
            let take = part.len().min(WRITE_BYTES - batch_bytes);
            batch.push(IoSlice::new(&part[..take]));
            batch_bytes += take;
            part = &part[take..];
            if batch_bytes == WRITE_BYTES || batch.len() == MAX_IOVECS {
                pwritev_all(file, &mut batch, offset)?;
                offset += batch_bytes as u64;
                batch.clear();
                batch_bytes = 0;
            }
        }
    }
    pwritev_all(file, &mut batch, offset)
}

fn pwritev_all(file: &File, slices: &mut [IoSlice<'_>], mut offset: u64) -> io::Result<()> {
    let mut rest = slices;
    while !rest.is_empty() {
        match rustix::io::pwritev(file, rest, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                offset += n as u64;
                IoSlice::advance_slices(&mut rest, n);
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
    Ok(())
}

/// Bytes per write into the partial file. The kernel sizes new page-cache folios by the write:
/// a 4 MiB write takes 2 MiB+ folios, which in VMs that hand free memory back to the host
/// (virtio-balloon free page reporting) fault on first touch. Measured on the benchmark VM: new
/// page cache written 256 KiB at a time costs 0.24 s of system CPU per GiB, 4 MiB at a time
/// 1.3-3 s. Elsewhere the smaller writes cost nothing measurable.
const WRITE_BYTES: usize = 256 << 10;

/// Most pieces one `pwritev` takes (`IOV_MAX` on Linux).
const MAX_IOVECS: usize = 1024;

/// Alignment of direct writes: offsets, lengths and buffer addresses. 4 KiB suits devices with
/// 512-byte and 4 KiB logical blocks alike.
const DIRECT_ALIGN: usize = 4096;

/// Bytes per direct write, copied from the network pieces into an aligned buffer first.
const DIRECT_WRITE_BYTES: usize = 1 << 20;

/// Aligned buffers kept for reuse: fresh ones would be new memory on every chunk.
const DIRECT_BUFFERS_KEPT: usize = 4;

static DIRECT_BUFFERS: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// Writes verified chunks into the data file with `O_DIRECT`, past the page cache.
///
/// Why: a cold sequential read of a large file already fills the reader's page cache once; the
/// copy the daemon keeps would fill it a second time, and in VMs that hand free memory back to
/// the host (virtio-balloon free page reporting) each new page costs a fault on first touch.
/// Measured on the benchmark VM, writing 1 GiB: 0.07 s of CPU with direct I/O against
/// 0.2-2.6 s through the page cache, depending on how much memory the host had taken back (the
/// cause of most of the spread in `scripts/bench/speed.sh`'s row 1). The whole-file check reads
/// the file back once, after the reader got its bytes, and leaves it in the page cache.
///
/// Bytes that cannot be written aligned (a chunk's short end) go through the page cache, as all
/// writes do where the filesystem refuses direct I/O at open or at the first write.
#[derive(Debug)]
struct DirectWriter {
    file: File,
    refused: AtomicBool,
}

impl DirectWriter {
    /// The data file (held as `data`) opened again for direct writes, if the filesystem takes
    /// them. Through `/proc/self/fd`, so it is the same inode whatever its name now points at.
    fn open(data: &File) -> Option<DirectWriter> {
        let path = format!("/proc/self/fd/{}", data.as_raw_fd());
        let file = OpenOptions::new().write(true).custom_flags(libc::O_DIRECT).open(&path).ok()?;
        let (a, b) = (file.metadata().ok()?, data.metadata().ok()?);
        (a.dev() == b.dev() && a.ino() == b.ino())
            .then(|| DirectWriter { file, refused: AtomicBool::new(false) })
    }

    /// Writes the longest aligned prefix of `parts` at `offset` (none if `offset` is not
    /// aligned); returns how many bytes that was, for the caller to write the rest.
    fn write<P: AsRef<[u8]>>(&self, parts: &[P], offset: u64) -> io::Result<usize> {
        if !offset.is_multiple_of(DIRECT_ALIGN as u64) || self.refused.load(Ordering::Relaxed) {
            return Ok(0);
        }
        let total: usize = parts.iter().map(|p| p.as_ref().len()).sum();
        let aligned = total / DIRECT_ALIGN * DIRECT_ALIGN;
        if aligned == 0 {
            return Ok(0);
        }
        let mut store = take_direct_buffer();
        let start = store.as_ptr().align_offset(DIRECT_ALIGN);
        let result =
            self.write_through(parts, offset, aligned, &mut store[start..][..DIRECT_WRITE_BYTES]);
        give_back_direct_buffer(store);
        match result {
            (0, Err(err)) if err.raw_os_error() == Some(libc::EINVAL) => {
                // The filesystem took the flag at open but not a write (alignment it needs
                // beyond ours): this chunk and the rest of the file go through the page cache.
                debug!(%err, "direct writes refused; writing through the page cache");
                self.refused.store(true, Ordering::Relaxed);
                Ok(0)
            }
            (_, result) => result.map(|()| aligned),
        }
    }

    /// Copies the first `aligned` bytes of `parts` through `buf` into the file at `offset`;
    /// returns how many reached the file, and the error that stopped it if any.
    fn write_through<P: AsRef<[u8]>>(
        &self,
        parts: &[P],
        offset: u64,
        aligned: usize,
        buf: &mut [u8],
    ) -> (usize, io::Result<()>) {
        let (mut written, mut filled) = (0, 0);
        for part in parts {
            let mut part = part.as_ref();
            while !part.is_empty() && written + filled < aligned {
                let take = part.len().min(buf.len() - filled).min(aligned - written - filled);
                buf[filled..filled + take].copy_from_slice(&part[..take]);
                (filled, part) = (filled + take, &part[take..]);
                if filled == buf.len() || written + filled == aligned {
                    if let Err(err) =
                        self.file.write_all_at(&buf[..filled], offset + written as u64)
                    {
                        return (written, Err(err));
                    }
                    (written, filled) = (written + filled, 0);
                }
            }
        }
        (written, Ok(()))
    }
}

/// A buffer with room for [`DIRECT_WRITE_BYTES`] at an aligned address.
fn take_direct_buffer() -> Vec<u8> {
    let kept = DIRECT_BUFFERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
    kept.unwrap_or_else(|| vec![0u8; DIRECT_WRITE_BYTES + DIRECT_ALIGN])
}

fn give_back_direct_buffer(buf: Vec<u8>) {
    let mut kept = DIRECT_BUFFERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if kept.len() < DIRECT_BUFFERS_KEPT {
        kept.push(buf);
    }
}

/// Unlinks `path` if it names the inode `file` has open; returns whether it did.
fn remove_if_named(path: &Path, file: &File) -> bool {
    let removed = names_inode(path, file)
        .and_then(|ours| if ours { fs::remove_file(path).map(|()| true) } else { Ok(false) });
    match removed {
        Ok(removed) => removed,
        Err(err) if err.kind() == io::ErrorKind::NotFound => false,
        Err(err) => {
            debug!(path = %path.display(), %err, "cannot remove partial file");
            false
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
        // The inode we locked may have been published (renamed away) after our open, and the
        // name reused by a newer partial file that is in use.
        if !names_inode(&path, &file).unwrap_or(false) {
            continue;
        }
        // Allocated bytes, not the apparent size: the data file is sparse.
        let used = file.metadata().map(|m| allocated_bytes(&m));
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

/// A byte count as a ledger delta; file sizes stay far below `i64::MAX`.
pub(super) fn signed(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// Disk space a (possibly sparse) file takes.
pub(super) fn allocated_bytes(meta: &fs::Metadata) -> u64 {
    // `st_blocks` counts 512-byte units whatever the filesystem's block size.
    meta.blocks() * 512
}

/// Allocated bytes of all partial data files in `dir` (0 if it cannot be listed).
pub(super) fn scan_partial_bytes(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "data"))
        .filter_map(|entry| entry.metadata().ok())
        .map(|meta| allocated_bytes(&meta))
        .sum()
}
