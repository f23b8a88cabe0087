//! Network uploads into a local registry (`artfs serve`): the request task hands the body to one
//! blocking writer per upload, which hashes MD5 and writes with plain `std` I/O, and publishes
//! the blob (a hard link, create-only) only once the bytes hash to what the uploader declared.
//!
//! Why not `tokio::fs`: each of its writes is a hop to the blocking pool, one per body frame
//! (~16 KiB), which cost the server more CPU than the disk writes themselves. Here frames are
//! grouped into batches of `BATCH_BYTES` and each batch is one `writev`.
//!
//! Invariants: memory per upload is bounded (`BATCHES_IN_FLIGHT` + 2 batches, whatever the body
//! size); the temporary file (`<name>#<pid>-<random>`, the shape gc sweeps) is removed by the
//! writer however the upload ends: bad digest, write error, a body that failed, or a request
//! dropped mid-body (its sender goes away without `Batch::End`); and a cancelled store
//! (`Store::cancel_uploads`) finds it registered among its temporary files.

use std::io::{IoSlice, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures::StreamExt;
use md5::Digest;
use tokio::sync::mpsc;

use super::{Store, StoreError, Uploads, body_error, check_md5, temporary_beside};

/// A batch is sent to the writer once it holds this many bytes: large enough that a 1 MiB blob
/// is a handful of `writev`s and writer wake-ups, small enough that 128 uploads in flight (the
/// SDK's limit) hold a few tens of MiB.
const BATCH_BYTES: usize = 128 << 10;

/// Batches queued between a request and its writer while the writer is busy.
const BATCHES_IN_FLIGHT: usize = 2;

/// What the request task sends its writer.
enum Batch {
    Data(Vec<Bytes>),
    /// The body ended without error: the writer may publish if the digest matches.
    End,
}

/// Where one upload goes, and what the writer needs to report errors.
struct Target {
    dest: PathBuf,
    tmp: PathBuf,
    url: String,
    key: String,
    want_md5: [u8; 16],
    uploads: Arc<Uploads>,
}

impl Target {
    fn write_err(&self, source: std::io::Error) -> StoreError {
        StoreError::LocalWrite { url: self.url.clone(), key: self.key.clone(), source }
    }
}

impl Store {
    /// A local directory: the bytes go to a temporary file beside the key, hard-linked into
    /// place only once they hashed right (a link never replaces an existing blob).
    pub(super) async fn put_verified_local<S>(
        &self,
        root: &Path,
        key: &str,
        mut body: S,
        want_md5: [u8; 16],
    ) -> Result<u64, StoreError>
    where
        S: futures::Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
    {
        let dest = root.join(key);
        let target = Target {
            tmp: temporary_beside(&dest),
            dest,
            url: self.url.clone(),
            key: key.to_owned(),
            want_md5,
            uploads: self.uploads.clone(),
        };
        let (tx, rx) = mpsc::channel(BATCHES_IN_FLIGHT);
        let writer = tokio::task::spawn_blocking(move || write_blob(&target, rx));
        let mut batch = Vec::new();
        let mut batched = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| body_error(key, e))?;
            batched += chunk.len();
            batch.push(chunk);
            if batched >= BATCH_BYTES {
                batched = 0;
                if tx.send(Batch::Data(std::mem::take(&mut batch))).await.is_err() {
                    break; // the writer failed; its error is the answer
                }
            }
        }
        // A send fails only once the writer has stopped, and then its own error says why.
        let _ = tx.send(Batch::Data(batch)).await;
        let _ = tx.send(Batch::End).await;
        drop(tx);
        writer.await.map_err(|e| StoreError::LocalWrite {
            url: self.url.clone(),
            key: key.to_owned(),
            source: std::io::Error::other(e),
        })?
    }
}

/// The blocking side of one upload: writes and hashes every batch, then publishes or removes.
fn write_blob(t: &Target, rx: mpsc::Receiver<Batch>) -> Result<u64, StoreError> {
    t.uploads.temporary().insert(t.tmp.clone());
    let result = write_and_link(t, rx);
    let _ = std::fs::remove_file(&t.tmp);
    t.uploads.temporary().remove(&t.tmp);
    result
}

fn write_and_link(t: &Target, mut rx: mpsc::Receiver<Batch>) -> Result<u64, StoreError> {
    let mut file = create_new(&t.tmp).map_err(|e| t.write_err(e))?;
    let mut hasher = md5::Md5::new();
    let mut total = 0u64;
    loop {
        if t.uploads.cancelled.load(Ordering::Relaxed) {
            return Err(StoreError::Cancelled { path: t.dest.clone() });
        }
        match rx.blocking_recv() {
            Some(Batch::Data(frames)) => {
                for f in &frames {
                    hasher.update(f);
                    total += f.len() as u64;
                }
                write_all_frames(&mut file, &frames).map_err(|e| t.write_err(e))?;
            }
            Some(Batch::End) => break,
            None => {
                let gone = std::io::Error::other("the request ended before its body did");
                return Err(body_error(&t.key, gone));
            }
        }
    }
    drop(file);
    check_md5(&t.key, t.want_md5, hasher.finalize().into())?;
    match std::fs::hard_link(&t.tmp, &t.dest) {
        Ok(()) => Ok(total),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(total),
        Err(e) => Err(t.write_err(e)),
    }
}

/// Creates `path` exclusively, and its directory first if that is missing (rare: the blob
/// directories fill up quickly, so the common case is one `open`).
fn create_new(path: &Path) -> std::io::Result<std::fs::File> {
    let open = || std::fs::OpenOptions::new().write(true).create_new(true).open(path);
    match open() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(path.parent().unwrap_or(Path::new("/")))?;
            open()
        }
        other => other,
    }
}

/// `writev` until every frame is written (`Write::write_all_vectored` is not stable).
fn write_all_frames(file: &mut std::fs::File, frames: &[Bytes]) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = frames.iter().map(|f| IoSlice::new(f)).collect();
    let mut rest = &mut slices[..];
    IoSlice::advance_slices(&mut rest, 0); // skips empty frames
    while !rest.is_empty() {
        match file.write_vectored(rest) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::cloud::Clouds;

    fn md5_of(bytes: &[u8]) -> [u8; 16] {
        md5::Md5::digest(bytes).into()
    }

    /// Every temporary upload file (`…#…`) below `dir`.
    fn temporaries(dir: &Path) -> Vec<PathBuf> {
        walkdir::WalkDir::new(dir)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains('#'))
            .map(|e| e.path().to_owned())
            .collect()
    }

    fn frames(body: &[u8], size: usize) -> Vec<Result<Bytes, std::io::Error>> {
        body.chunks(size).map(|c| Ok(Bytes::copy_from_slice(c))).collect()
    }

    #[tokio::test]
    async fn a_body_is_published_only_when_it_hashes_right() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_str().unwrap(), &Clouds::default()).unwrap();
        // Many small frames and an empty one: several batches, each one `writev`.
        let body: Vec<u8> = (0..(1u32 << 20) + 7).map(|i| (i % 251) as u8).collect();
        let mut altered = body.clone();
        altered[700_000] ^= 1;
        let bad = futures::stream::iter(frames(&altered, 3000));
        let err = store.put_verified("blobs/x/k", bad, md5_of(&body)).await.unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
        assert!(!dir.path().join("blobs/x/k").exists(), "a wrong body was published");
        assert_eq!(temporaries(dir.path()), Vec::<PathBuf>::new());

        let mut good = frames(&body, 3000);
        good.insert(5, Ok(Bytes::new()));
        let n = store.put_verified("blobs/x/k", futures::stream::iter(good), md5_of(&body)).await;
        assert_eq!(n.unwrap(), body.len() as u64);
        assert_eq!(std::fs::read(dir.path().join("blobs/x/k")).unwrap(), body);
        // The same blob again: create-only, the copy stays as it was.
        let again = futures::stream::iter(frames(&body, 1 << 16));
        assert!(store.put_verified("blobs/x/k", again, md5_of(&body)).await.is_ok());
        assert_eq!(temporaries(dir.path()), Vec::<PathBuf>::new());
    }

    #[tokio::test]
    async fn a_failed_or_abandoned_body_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_str().unwrap(), &Clouds::default()).unwrap();
        let body = vec![7u8; 600_000];
        let want = md5_of(&body);
        // A body that fails mid-way (a client that hung up).
        let mut failing = frames(&body[..400_000], 16 << 10);
        failing.push(Err(std::io::Error::other("connection reset")));
        let err = store.put_verified("blobs/y/k", futures::stream::iter(failing), want).await;
        assert!(matches!(err, Err(StoreError::Body { .. })), "{err:?}");

        // A request dropped mid-body: its writer notices and removes the file on its own.
        let stalled = futures::stream::iter(frames(&body[..300_000], 16 << 10))
            .chain(futures::stream::pending());
        let put = store.put_verified("blobs/y/k", Box::pin(stalled), want);
        let dropped = tokio::time::timeout(std::time::Duration::from_millis(300), put).await;
        assert!(dropped.is_err(), "a stalled body cannot finish");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        // The writer removes the file, then forgets it: wait for both.
        let settled = || temporaries(dir.path()).is_empty() && store.uploads.temporary().is_empty();
        while !settled() && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(temporaries(dir.path()), Vec::<PathBuf>::new());
        assert!(!dir.path().join("blobs/y/k").exists(), "a partial body was published");
        assert!(store.uploads.temporary().is_empty(), "the store still tracks a temporary file");
    }
}
