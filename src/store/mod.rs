//! The registry's object storage: one URL (local directory, `s3://`, `gs://`) behind `object_store`.
//!
//! Keys are relative `/`-separated strings below the registry root. Only two kinds of write exist:
//! create-only puts (`PutMode::Create`: `O_EXCL`/link on disk, `If-None-Match: *` on S3,
//! `ifGenerationMatch=0` on GCS), which the commit protocol builds on, and uploads of
//! content-addressed blobs, where a second writer of the same key writes the same bytes.
//!
//! An upload publishes exactly the bytes that were hashed: it checks what it reads from the local
//! file against a checksum taken while hashing (`UploadCheck`) before the blob becomes visible,
//! because a file changed in place (e.g. through `mmap`) can keep its size and modification time.

pub mod chunks;
pub mod cloud;
pub mod credentials;
pub mod guard;
mod local_put;
mod service;

use std::collections::HashSet;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

/// Files up to this size are uploaded in one request; larger ones in parts of this size.
pub const UPLOAD_PART_BYTES: usize = 8 << 20;
/// Parts of one multipart upload in flight at once.
const UPLOAD_PARTS_IN_FLIGHT: usize = 4;
/// Local uploads copy in chunks of this size; cancellation is checked between chunks.
const COPY_CHUNK_BYTES: u64 = 16 << 20;
/// Bytes per read of a local file streamed out (object_store reads 8 KiB per blocking task:
/// `artfs serve` spent 2 s of CPU per GiB scheduling them).
const STREAM_READ_BYTES: usize = 256 << 10;
/// Read buffer for checking a local copy.
const COPY_BUF_BYTES: usize = 1 << 20;
/// How long `cancel_uploads` waits for local copies to notice and clean up.
const CANCEL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("registry {url}: {key} not found")]
    NotFound { url: String, key: String },
    #[error("registry {url}: {action} {key} failed: {source}")]
    Backend {
        url: String,
        action: &'static str,
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error(
        "registry {url}: the bucket {bucket} does not exist (create it, or correct the registry URL)"
    )]
    NoBucket { url: String, bucket: String },
    #[error("registry {url}: {action} {key} refused: {}: {}{}", .service.code, .service.message, refused_hint(.service, .url))]
    Refused { url: String, action: &'static str, key: String, service: service::ServiceError },
    #[error("cannot open registry {url}: {reason}")]
    Open { url: String, reason: String },
    #[error("cannot read {path}: {source}")]
    LocalRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} changed while it was being logged; log again once it is stable")]
    ChangedDuringUpload { path: PathBuf },
    #[error("the upload of {path} was cancelled")]
    Cancelled { path: PathBuf },
    #[error("registry {url}: cannot write {key}: {source}")]
    LocalWrite {
        url: String,
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Cloud(#[from] cloud::CloudError),
    #[error("upload of {key} rejected: its bytes have MD5 {got}, not the declared {want}")]
    DigestMismatch { key: String, want: String, got: String },
    #[error("upload of {key} failed while receiving its bytes: {source}")]
    Body {
        key: String,
        #[source]
        source: std::io::Error,
    },
}

/// Whether `dir` is on a filesystem of a local disk (or memory), whose reads do not hang the
/// way a network filesystem's can when its server stops answering.
fn on_local_disk(dir: &Path) -> bool {
    // Filesystem magic numbers (statfs(2)): ext2/3/4, XFS, Btrfs, tmpfs, overlayfs, ZFS, F2FS.
    const LOCAL: [u64; 7] =
        [0xEF53, 0x5846_5342, 0x9123_683E, 0x0102_1994, 0x794C_7630, 0x2FC1_2FC1, 0xF2F5_2010];
    rustix::fs::statfs(dir).is_ok_and(|stat| LOCAL.contains(&(stat.f_type as u64)))
}

/// One listed object.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub last_modified: DateTime<Utc>,
}

/// The registry's storage, rooted at one URL.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    prefix: String,
    url: String,
    /// The directory of a local registry: uploads there take a faster path.
    local_root: Option<PathBuf>,
    /// Whether that directory is on a local disk, whose reads never stall, so small blobs are
    /// read on the caller's thread (`read_local_to`) rather than within the stall bound.
    local_disk: bool,
    uploads: Arc<Uploads>,
}

/// Local uploads in progress, so that an interrupted command can remove their temporary files.
#[derive(Debug, Default)]
struct Uploads {
    cancelled: AtomicBool,
    temporary: Mutex<HashSet<PathBuf>>,
    /// Multipart uploads being aborted in the background.
    aborting: std::sync::atomic::AtomicUsize,
}

/// A writer's temporary file beside `dest`: `<name>#<pid>-<random>`, the shape
/// `Store::list_temporary` (and so gc) finds.
fn temporary_beside(dest: &Path) -> PathBuf {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dest.with_file_name(format!("{name}#{}-{:08x}", std::process::id(), fastrand::u32(..)))
}

impl Uploads {
    fn temporary(&self) -> std::sync::MutexGuard<'_, HashSet<PathBuf>> {
        self.temporary.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Store {
    /// Opens a local directory (created if missing), `file://…`, `s3://bucket/prefix` or
    /// `gs://bucket/prefix`.
    pub fn open(url: &str, clouds: &cloud::Clouds) -> Result<Store, StoreError> {
        let open_err = |reason: String| StoreError::Open { url: url.to_owned(), reason };
        if let Some((scheme, _)) = url.split_once("://")
            && scheme != "file"
        {
            let parsed = url::Url::parse(url).map_err(|e| open_err(e.to_string()))?;
            let inner = clouds.bucket_store(&parsed)?;
            let prefix = parsed.path().trim_matches('/').to_owned();
            return Ok(Store {
                inner,
                prefix,
                url: url.to_owned(),
                local_root: None,
                local_disk: false,
                uploads: Default::default(),
            });
        }
        let dir = PathBuf::from(url.strip_prefix("file://").unwrap_or(url));
        std::fs::create_dir_all(&dir)
            .map_err(|e| open_err(format!("cannot create {}: {e}", dir.display())))?;
        let dir = dir.canonicalize().map_err(|e| open_err(e.to_string()))?;
        let inner = LocalFileSystem::new_with_prefix(&dir)
            .map_err(|e| open_err(e.to_string()))?
            .with_automatic_cleanup(true);
        Ok(Store {
            inner: Arc::new(inner),
            prefix: String::new(),
            url: url.to_owned(),
            local_disk: on_local_disk(&dir),
            local_root: Some(dir),
            uploads: Default::default(),
        })
    }

    /// Opens `url` as [`Store::open`] does but creates nothing: `None` when it names a local
    /// directory that does not exist. (A bucket prefix always opens; whether a registry is in
    /// it is the registry's question.)
    pub fn open_existing(url: &str, clouds: &cloud::Clouds) -> Result<Option<Store>, StoreError> {
        let local = match url.split_once("://") {
            Some((scheme, _)) if scheme != "file" => None,
            _ => Some(Path::new(url.strip_prefix("file://").unwrap_or(url))),
        };
        if local.is_some_and(|dir| !dir.exists()) {
            return Ok(None);
        }
        Store::open(url, clouds).map(Some)
    }

    /// A store over any `object_store` backend (tests, benchmarks).
    pub fn from_object_store(inner: Arc<dyn ObjectStore>, prefix: &str, url: &str) -> Store {
        Store {
            inner,
            prefix: prefix.trim_matches('/').to_owned(),
            url: url.to_owned(),
            local_root: None,
            local_disk: false,
            uploads: Default::default(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn path(&self, key: &str) -> ObjPath {
        if self.prefix.is_empty() {
            ObjPath::from(key)
        } else {
            ObjPath::from(format!("{}/{key}", self.prefix))
        }
    }

    fn key_of(&self, p: &ObjPath) -> String {
        let s = p.as_ref();
        match self.prefix.is_empty() {
            true => s.to_owned(),
            false => s.strip_prefix(&self.prefix).unwrap_or(s).trim_start_matches('/').to_owned(),
        }
    }

    fn err(&self, action: &'static str, key: &str, source: object_store::Error) -> StoreError {
        let (url, key) = (self.url.clone(), key.to_owned());
        let service = service::find(&source);
        match (source, service) {
            (_, Some(s)) if s.is_missing_bucket() => {
                let bucket = bucket_of(&url).to_owned();
                StoreError::NoBucket { url, bucket }
            }
            (object_store::Error::NotFound { .. }, _) => StoreError::NotFound { url, key },
            (_, Some(service)) => StoreError::Refused { url, action, key, service },
            (source, None) => StoreError::Backend { url, action, key, source },
        }
    }

    pub async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let r = self.inner.get(&self.path(key)).await.map_err(|e| self.err("get", key, e))?;
        r.bytes().await.map_err(|e| self.err("get", key, e))
    }

    /// `None` when the key does not exist.
    pub async fn get_opt(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        match self.get(key).await {
            Ok(b) => Ok(Some(b)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
        self.inner.get_range(&self.path(key), range).await.map_err(|e| self.err("get", key, e))
    }

    /// A streaming read of a whole object.
    pub async fn get_stream(
        &self,
        key: &str,
    ) -> Result<impl futures::Stream<Item = Result<Bytes, StoreError>> + use<>, StoreError> {
        let r = self.inner.get(&self.path(key)).await.map_err(|e| self.err("get", key, e))?;
        let this = self.clone();
        let key = key.to_owned();
        Ok(body_stream(r).map_err(move |e| this.err("get", &key, e)))
    }

    /// Copies the object `key` of a local registry to `out` on this thread, at most `limit`
    /// bytes (one more when the object is longer, so the caller's size check sees it); `None`
    /// for a bucket. A small blob then costs a few syscalls here instead of hops through the
    /// runtime's blocking pool, which is what reading thousands of small files cold spends.
    pub fn read_local_to(
        &self,
        key: &str,
        out: &mut dyn std::io::Write,
        limit: u64,
    ) -> Option<Result<u64, StoreError>> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let root = self.local_root.as_ref().filter(|_| self.local_disk)?;
        let path = root.join(key);
        // Non-blocking: opening a FIFO planted in the registry must not wait for a writer.
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .and_then(|file| Ok((file.metadata()?.is_file(), file)));
        let copied = match opened {
            // Anything but a plain file takes the runtime's path, within the stall bound.
            Ok((false, _)) => return None,
            Ok((true, file)) => {
                let mut bounded = std::io::Read::take(file, limit.saturating_add(1));
                std::io::copy(&mut bounded, out)
            }
            Err(err) => Err(err),
        };
        Some(copied.map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => {
                StoreError::NotFound { url: self.url.clone(), key: key.to_owned() }
            }
            _ => StoreError::LocalRead { path, source },
        }))
    }

    /// When an object was last modified (the store's clock), `None` when it does not exist.
    pub async fn modified(&self, key: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        match self.inner.head(&self.path(key)).await {
            Ok(meta) => Ok(Some(meta.last_modified)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err("head", key, e)),
        }
    }

    /// A streaming read of `range` of an object (no more than one network buffer in memory).
    pub async fn get_range_stream(
        &self,
        key: &str,
        range: Range<u64>,
    ) -> Result<impl futures::Stream<Item = Result<Bytes, StoreError>> + use<>, StoreError> {
        let opts = object_store::GetOptions {
            range: Some(object_store::GetRange::Bounded(range)),
            ..Default::default()
        };
        let r = self
            .inner
            .get_opts(&self.path(key), opts)
            .await
            .map_err(|e| self.err("get", key, e))?;
        let this = self.clone();
        let key = key.to_owned();
        Ok(body_stream(r).map_err(move |e| this.err("get", &key, e)))
    }

    /// Size of an object, `None` when it does not exist.
    pub async fn head(&self, key: &str) -> Result<Option<u64>, StoreError> {
        match self.inner.head(&self.path(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err("head", key, e)),
        }
    }

    /// Creates `key` only if absent. Returns `false` when it already existed.
    pub async fn put_create(&self, key: &str, bytes: Bytes) -> Result<bool, StoreError> {
        let opts = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
        match self.inner.put_opts(&self.path(key), PutPayload::from(bytes), opts).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(self.err("create", key, e)),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self.inner.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err("delete", key, e)),
        }
    }

    /// Every object below `prefix` (recursive), in key order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        self.list_after(prefix, None).await
    }

    /// Objects below `prefix` whose key sorts after `offset`, in key order.
    pub async fn list_after(
        &self,
        prefix: &str,
        offset: Option<&str>,
    ) -> Result<Vec<Listed>, StoreError> {
        let p = self.path(prefix);
        let stream = match offset {
            Some(o) => self.inner.list_with_offset(Some(&p), &self.path(o)),
            None => self.inner.list(Some(&p)),
        };
        let metas: Vec<_> = stream.try_collect().await.map_err(|e| self.err("list", prefix, e))?;
        let mut out: Vec<Listed> = metas
            .into_iter()
            .map(|m| Listed {
                key: self.key_of(&m.location),
                size: m.size,
                last_modified: m.last_modified,
            })
            // LocalFileSystem stages writes as `name#N` files next to the target; never list them.
            .filter(|l| !l.key.contains('#'))
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Temporary files of local writes below `prefix` (names with `#`: this module's uploads and
    /// `object_store`'s staging files), which `list` never shows. Object stores have none.
    pub async fn list_temporary(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        let Some(root) = self.local_root.clone() else { return Ok(Vec::new()) };
        let (url, prefix) = (self.url.clone(), prefix.to_owned());
        let walk = move || -> Result<Vec<Listed>, StoreError> {
            let dir = root.join(&prefix);
            let mut out = Vec::new();
            if !dir.exists() {
                return Ok(out);
            }
            for item in walkdir::WalkDir::new(&dir) {
                let err = |e: std::io::Error| StoreError::LocalWrite {
                    url: url.clone(),
                    key: prefix.clone(),
                    source: e,
                };
                let item = item.map_err(|e| err(e.into()))?;
                if !item.file_type().is_file() || !item.file_name().to_string_lossy().contains('#')
                {
                    continue;
                }
                let meta = item.metadata().map_err(|e| err(e.into()))?;
                let rel = item.path().strip_prefix(&root).unwrap_or(item.path());
                out.push(Listed {
                    key: rel.to_string_lossy().into_owned(),
                    size: meta.len(),
                    last_modified: meta.modified().map(DateTime::<Utc>::from).map_err(err)?,
                });
            }
            Ok(out)
        };
        tokio::task::spawn_blocking(walk).await.map_err(|e| StoreError::LocalWrite {
            url: self.url.clone(),
            key: "(temporary files)".into(),
            source: std::io::Error::other(e),
        })?
    }

    /// Deletes a temporary file found by `list_temporary`.
    pub async fn delete_temporary(&self, key: &str) -> Result<(), StoreError> {
        let Some(root) = &self.local_root else { return Ok(()) };
        match std::fs::remove_file(root.join(key)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::LocalWrite {
                url: self.url.clone(),
                key: key.to_owned(),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// Stops every local upload of this store (and its clones) at its next chunk and waits,
    /// boundedly, until their temporary files are removed and dropped multipart uploads are
    /// aborted. Local uploads after this fail.
    pub async fn cancel_uploads(&self) {
        self.uploads.cancelled.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + CANCEL_WAIT;
        let busy = || {
            !self.uploads.temporary().is_empty() || self.uploads.aborting.load(Ordering::SeqCst) > 0
        };
        while busy() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        for tmp in self.uploads.temporary().drain() {
            let _ = std::fs::remove_file(tmp);
        }
    }

    /// The immediate "subdirectories" of `prefix`, sorted.
    pub async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.list_level(prefix).await?.0)
    }

    /// The immediate "subdirectories" of `prefix` and the keys of the objects directly in it,
    /// each sorted.
    pub async fn list_level(&self, prefix: &str) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let p = self.path(prefix);
        let res = self
            .inner
            .list_with_delimiter(Some(&p))
            .await
            .map_err(|e| self.err("list", prefix, e))?;
        let mut dirs: Vec<String> =
            res.common_prefixes.iter().filter_map(|c| c.filename().map(str::to_owned)).collect();
        dirs.sort();
        let mut files: Vec<String> = res
            .objects
            .iter()
            .map(|m| self.key_of(&m.location))
            .filter(|k| !k.contains('#'))
            .collect();
        files.sort();
        Ok((dirs, files))
    }

    /// Uploads a local file to the content-addressed `key`. The bytes were hashed before (at
    /// `source.stamp`, with `source.check`); the bytes read now are checked against that, and if
    /// they differ nothing is published, because the key would no longer name its content.
    /// Per-chunk checksums, if any, are stored first (see `chunks`), so a published blob always
    /// has its sidecar. `progress` receives byte counts.
    pub async fn upload_file(
        &self,
        key: &str,
        source: &UploadSource,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), StoreError> {
        if let Some(sums) = source.chunks.as_ref().filter(|c| c.is_stored()) {
            // The bytes the manifest entry's binding names (`chunks::bound`).
            self.put_create(&chunks::sidecar_key(key), Bytes::from(sums.to_json())).await?;
        }
        match &self.local_root {
            Some(root) => self.copy_local(root, key, source, progress).await,
            None => self.stream_upload(key, source, progress).await,
        }
    }

    /// Local registries: a copy to a temporary name (checked while copying), then a hard link
    /// into place, which fails rather than overwrite (create-only, as everywhere else). The
    /// blob is always a copy: a link to the user's file would share its inode, and a later change
    /// to the file would change the blob.
    async fn copy_local(
        &self,
        root: &Path,
        key: &str,
        source: &UploadSource,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), StoreError> {
        let dest = root.join(key);
        let source = source.clone();
        let url = self.url.clone();
        let key_owned = key.to_owned();
        let uploads = self.uploads.clone();
        let copied = tokio::task::spawn_blocking(move || -> Result<u64, StoreError> {
            let write_err = |e: std::io::Error| StoreError::LocalWrite {
                url: url.clone(),
                key: key_owned.clone(),
                source: e,
            };
            let dir = dest.parent().unwrap_or(Path::new("/"));
            std::fs::create_dir_all(dir).map_err(write_err)?;
            let tmp = temporary_beside(&dest);
            uploads.temporary().insert(tmp.clone());
            let result = (|| {
                if uploads.cancelled.load(Ordering::SeqCst) {
                    return Err(StoreError::Cancelled { path: source.path.clone() });
                }
                let n = copy_checked(&source, &tmp, &uploads.cancelled, &write_err)?;
                FileStamp::check(&source.path, source.stamp)?;
                match std::fs::hard_link(&tmp, &dest) {
                    Ok(()) => Ok(n),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(n),
                    Err(e) => Err(write_err(e)),
                }
            })();
            let _ = std::fs::remove_file(&tmp);
            uploads.temporary().remove(&tmp);
            result
        })
        .await
        .map_err(|e| StoreError::LocalWrite {
            url: self.url.clone(),
            key: key.to_owned(),
            source: std::io::Error::other(e),
        })??;
        progress(copied);
        Ok(())
    }

    /// Object stores: one PUT for small files, a multipart upload otherwise, checked before
    /// the PUT or before the multipart upload is completed.
    async fn stream_upload(
        &self,
        key: &str,
        source: &UploadSource,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), StoreError> {
        let path = &source.path;
        let read_err = |source| StoreError::LocalRead { path: path.clone(), source };
        let mut file = tokio::fs::File::open(path).await.map_err(read_err)?;
        let mut check = UploadChecker::default();
        if source.check.size < UPLOAD_PART_BYTES as u64 {
            let mut buf = Vec::with_capacity(source.check.size as usize + 1);
            file.read_to_end(&mut buf).await.map_err(read_err)?;
            check.update(&buf);
            check.verify(source)?;
            FileStamp::check(path, source.stamp)?;
            progress(buf.len() as u64);
            self.put_create(key, Bytes::from(buf)).await?;
            return Ok(());
        }
        let upload = self
            .inner
            .put_multipart(&self.path(key))
            .await
            .map_err(|e| self.err("upload", key, e))?;
        let mut writer = MultipartGuard {
            writer: Some(WriteMultipart::new_with_chunk_size(upload, UPLOAD_PART_BYTES)),
            uploads: self.uploads.clone(),
        };
        let writer = &mut writer;
        let mut buf = vec![0u8; UPLOAD_PART_BYTES];
        loop {
            let n = match read_full(&mut file, &mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    writer.abort().await;
                    return Err(read_err(e));
                }
            };
            if n == 0 {
                break;
            }
            if let Err(e) = writer.get().wait_for_capacity(UPLOAD_PARTS_IN_FLIGHT).await {
                return Err(self.err("upload", key, e));
            }
            check.update(&buf[..n]);
            writer.get().write(&buf[..n]);
            progress(n as u64);
        }
        if let Err(e) = check.verify(source).and_then(|()| FileStamp::check(path, source.stamp)) {
            writer.abort().await;
            return Err(e);
        }
        writer.finish().await.map_err(|e| self.err("upload", key, e))?;
        Ok(())
    }
}

/// A multipart upload that is aborted if it is dropped unfinished (a failed or interrupted log),
/// so its parts do not linger in the bucket; `Store::cancel_uploads` waits for such aborts.
struct MultipartGuard {
    writer: Option<WriteMultipart>,
    uploads: Arc<Uploads>,
}

impl MultipartGuard {
    fn get(&mut self) -> &mut WriteMultipart {
        // Present until `finish` or `abort`, which consume the guard's use.
        self.writer.as_mut().expect("multipart upload used after it ended")
    }

    async fn finish(&mut self) -> Result<(), object_store::Error> {
        match self.writer.take() {
            Some(w) => w.finish().await.map(|_| ()),
            None => Ok(()),
        }
    }

    async fn abort(&mut self) {
        if let Some(w) = self.writer.take() {
            w.abort().await.ok();
        }
    }
}

impl Drop for MultipartGuard {
    fn drop(&mut self) {
        let Some(w) = self.writer.take() else { return };
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        let uploads = self.uploads.clone();
        uploads.aborting.fetch_add(1, Ordering::SeqCst);
        rt.spawn(async move {
            w.abort().await.ok();
            uploads.aborting.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Copies `source` to `tmp` (in the kernel, `copy_file_range`, where the filesystems allow), then
/// checks the copy's bytes against `source.check`; stops at the next chunk once `cancelled` is set.
fn copy_checked(
    source: &UploadSource,
    tmp: &Path,
    cancelled: &AtomicBool,
    write_err: &dyn Fn(std::io::Error) -> StoreError,
) -> Result<u64, StoreError> {
    let read_err = |e| StoreError::LocalRead { path: source.path.clone(), source: e };
    let cancel = || StoreError::Cancelled { path: source.path.clone() };
    let mut from = std::fs::File::open(&source.path).map_err(read_err)?;
    let mut to =
        std::fs::OpenOptions::new().write(true).create_new(true).open(tmp).map_err(write_err)?;
    loop {
        if cancelled.load(Ordering::Relaxed) {
            return Err(cancel());
        }
        // `io::copy` of files uses `copy_file_range` (falling back to read/write, e.g. for
        // `/proc` files, whose size is wrong); a bounded chunk keeps cancellation prompt.
        let n =
            std::io::copy(&mut (&mut from).take(COPY_CHUNK_BYTES), &mut to).map_err(|e| match e
                .kind()
            {
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::PermissionDenied => {
                    write_err(e)
                }
                _ => read_err(e),
            })?;
        if n == 0 {
            break;
        }
    }
    drop(to);
    // The copy is checked, not the file: it is what will be published.
    let mut copy = std::fs::File::open(tmp).map_err(write_err)?;
    let mut buf = vec![0u8; COPY_BUF_BYTES.min(source.check.size as usize + 1).max(64 << 10)];
    let mut check = UploadChecker::default();
    loop {
        if cancelled.load(Ordering::Relaxed) {
            return Err(cancel());
        }
        match copy.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => check.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(write_err(e)),
        }
    }
    check.verify(source)?;
    Ok(check.size)
}

/// What an upload must find again in the file: the size and XXH3-128 of the bytes that were
/// hashed for the manifest. XXH3 is checked instead of hashing MD5 a second time because it
/// costs a fraction of it, and it only has to tell two states of one file apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UploadCheck {
    pub size: u64,
    pub xxh3: u128,
}

impl UploadCheck {
    pub fn of(bytes: &[u8]) -> UploadCheck {
        let mut c = UploadChecker::default();
        c.update(bytes);
        c.finish()
    }
}

/// Computes an `UploadCheck` over bytes as they stream past.
#[derive(Default)]
pub struct UploadChecker {
    size: u64,
    hasher: xxhash_rust::xxh3::Xxh3Default,
}

impl UploadChecker {
    pub fn update(&mut self, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        self.hasher.update(bytes);
    }

    pub fn finish(&self) -> UploadCheck {
        UploadCheck { size: self.size, xxh3: self.hasher.digest128() }
    }

    fn verify(&self, source: &UploadSource) -> Result<(), StoreError> {
        match self.finish() == source.check {
            true => Ok(()),
            false => Err(StoreError::ChangedDuringUpload { path: source.path.clone() }),
        }
    }
}

impl Store {
    /// Streams `body` to the content-addressed `key` and publishes it only if the bytes hash to
    /// `want_md5`, so a truncated or altered upload never counts. Memory stays at one part
    /// (`UPLOAD_PART_BYTES`) whatever the size. Returns the byte count.
    pub async fn put_verified<S>(
        &self,
        key: &str,
        body: S,
        want_md5: [u8; 16],
    ) -> Result<u64, StoreError>
    where
        S: futures::Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
    {
        match &self.local_root {
            Some(root) => self.put_verified_local(root, key, body, want_md5).await,
            None => self.put_verified_object(key, body, want_md5).await,
        }
    }

    /// Object stores: one PUT when the body fits in a part, a multipart upload otherwise,
    /// completed only after the digest matched (an aborted upload publishes nothing).
    async fn put_verified_object<S>(
        &self,
        key: &str,
        mut body: S,
        want_md5: [u8; 16],
    ) -> Result<u64, StoreError>
    where
        S: futures::Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
    {
        use futures::StreamExt;
        use md5::Digest;
        let mut hasher = md5::Md5::new();
        let mut total = 0u64;
        let mut buf: Vec<u8> = Vec::new();
        // Aborted when dropped unfinished (a client that hangs up mid-body), so no parts linger.
        let mut writer: Option<MultipartGuard> = None;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    if let Some(w) = writer.as_mut() {
                        w.abort().await;
                    }
                    return Err(body_error(key, e));
                }
            };
            hasher.update(&chunk);
            total += chunk.len() as u64;
            match &mut writer {
                Some(w) => {
                    if let Err(e) = w.get().wait_for_capacity(UPLOAD_PARTS_IN_FLIGHT).await {
                        return Err(self.err("upload", key, e));
                    }
                    w.get().write(&chunk);
                }
                None => {
                    buf.extend_from_slice(&chunk);
                    if buf.len() >= UPLOAD_PART_BYTES {
                        let upload = self
                            .inner
                            .put_multipart(&self.path(key))
                            .await
                            .map_err(|e| self.err("upload", key, e))?;
                        let mut w = MultipartGuard {
                            writer: Some(WriteMultipart::new_with_chunk_size(
                                upload,
                                UPLOAD_PART_BYTES,
                            )),
                            uploads: self.uploads.clone(),
                        };
                        w.get().write(&std::mem::take(&mut buf));
                        writer = Some(w);
                    }
                }
            }
        }
        let checked = check_md5(key, want_md5, hasher.finalize().into());
        match (writer, checked) {
            (Some(mut w), Err(e)) => {
                w.abort().await;
                Err(e)
            }
            (Some(mut w), Ok(())) => {
                w.finish().await.map_err(|e| self.err("upload", key, e))?;
                Ok(total)
            }
            (None, Err(e)) => Err(e),
            (None, Ok(())) => {
                self.put_create(key, Bytes::from(buf)).await?;
                Ok(total)
            }
        }
    }
}

/// An upload body that failed mid-way (a client that hung up, a file that went away).
fn body_error(key: &str, source: std::io::Error) -> StoreError {
    StoreError::Body { key: key.to_owned(), source }
}

/// Whether the uploaded bytes hashed to what the uploader declared.
fn check_md5(key: &str, want: [u8; 16], got: [u8; 16]) -> Result<(), StoreError> {
    if got == want {
        return Ok(());
    }
    Err(StoreError::DigestMismatch {
        key: key.to_owned(),
        want: hex::encode(want),
        got: hex::encode(got),
    })
}

/// A local file to upload, as it was when it was hashed.
#[derive(Debug, Clone)]
pub struct UploadSource {
    pub path: PathBuf,
    pub stamp: FileStamp,
    /// Size and checksum of the bytes that were hashed: what the upload must read again.
    pub check: UploadCheck,
    /// Per-chunk checksums, computed while hashing (files of more than one chunk).
    pub chunks: Option<chunks::ChunkSums>,
}

/// What tells that a file changed: size, modification and change times, inode and device (as
/// `git` does). The change time is set by the kernel on every write and cannot be set back by
/// `touch`, so content rewritten with its size kept and its mtime restored still shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileStamp {
    pub len: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub ino: u64,
    pub dev: u64,
}

impl FileStamp {
    pub fn of(meta: &std::fs::Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            len: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            ino: meta.ino(),
            dev: meta.dev(),
        }
    }

    /// Fails if the file at `path` no longer has stamp `want`.
    pub fn check(path: &Path, want: FileStamp) -> Result<(), StoreError> {
        let meta = std::fs::metadata(path)
            .map_err(|e| StoreError::LocalRead { path: path.to_owned(), source: e })?;
        let now = FileStamp::of(&meta);
        if now != want {
            return Err(StoreError::ChangedDuringUpload { path: path.to_owned() });
        }
        Ok(())
    }
}

/// Reads until `buf` is full or EOF; returns the byte count.
async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]).await? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// The body of a GET as a stream. A local file is read [`STREAM_READ_BYTES`] at a time on the
/// blocking pool; any other payload streams as the store sends it.
pub fn body_stream(
    got: object_store::GetResult,
) -> futures::stream::BoxStream<'static, Result<Bytes, object_store::Error>> {
    use futures::StreamExt as _;
    let object_store::GetResultPayload::File(file, path) = got.payload else {
        return got.into_stream();
    };
    let range = got.range;
    futures::stream::try_unfold(
        (file, path, range.start, range.end),
        |(file, path, at, end)| async move {
            if at >= end {
                return Ok(None);
            }
            let want = (end - at).min(STREAM_READ_BYTES as u64) as usize;
            let (file, path, buf) = tokio::task::spawn_blocking(move || {
                use std::os::unix::fs::FileExt as _;
                let mut buf = vec![0; want];
                match file.read_exact_at(&mut buf, at) {
                    Ok(()) => Ok((file, path, buf)),
                    Err(e) => {
                        let shorter = match e.kind() {
                            std::io::ErrorKind::UnexpectedEof => {
                                " (shorter than when it was opened)"
                            }
                            _ => "",
                        };
                        let source = format!("reading {} at {at}: {e}{shorter}", path.display());
                        Err(object_store::Error::Generic {
                            store: "LocalFileSystem",
                            source: source.into(),
                        })
                    }
                }
            })
            .await
            .map_err(|e| object_store::Error::JoinError { source: e })??;
            let next = at + buf.len() as u64;
            Ok(Some((Bytes::from(buf), (file, path, next, end))))
        },
    )
    .boxed()
}

/// What to check when a cloud refused the caller's credentials.
fn refused_hint(service: &service::ServiceError, url: &str) -> &'static str {
    match (service.is_denied(), url.split_once("://").map(|(scheme, _)| scheme)) {
        (true, Some("s3")) => {
            " (check the AWS credentials artfs uses: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)"
        }
        (true, Some("gs")) => {
            " (check the Google credentials artfs uses: GOOGLE_APPLICATION_CREDENTIALS)"
        }
        _ => "",
    }
}

/// The bucket of a cloud registry URL (`s3://BUCKET/prefix`).
fn bucket_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn create_only_lists_and_uploads_verified() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_str().unwrap(), &cloud::Clouds::default()).unwrap();
        assert!(store.put_create("a/b/1", Bytes::from_static(b"one")).await.unwrap());
        assert!(!store.put_create("a/b/1", Bytes::from_static(b"two")).await.unwrap());
        assert_eq!(&store.get("a/b/1").await.unwrap()[..], b"one");
        assert!(store.get_opt("a/b/2").await.unwrap().is_none());
        store.put_create("a/c/2", Bytes::from_static(b"x")).await.unwrap();
        let keys: Vec<_> = store.list("a").await.unwrap().into_iter().map(|l| l.key).collect();
        assert_eq!(keys, ["a/b/1", "a/c/2"]);
        let after: Vec<_> = store
            .list_after("a", Some("a/b/1"))
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.key)
            .collect();
        assert_eq!(after, ["a/c/2"]);
        assert_eq!(store.list_dirs("a").await.unwrap(), ["b", "c"]);

        upload_publishes_blob_and_sidecar_only_if_unchanged(&store, dir.path()).await;
        let memory = Store::from_object_store(
            Arc::new(object_store::memory::InMemory::new()),
            "pre/fix",
            "memory://",
        );
        upload_publishes_blob_and_sidecar_only_if_unchanged(&memory, dir.path()).await;
    }

    #[tokio::test]
    async fn local_streams_come_in_large_reads_and_a_truncated_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_str().unwrap(), &cloud::Clouds::default()).unwrap();
        let data: Vec<u8> = (0..STREAM_READ_BYTES * 2 + 1000).map(|i| (i % 251) as u8).collect();
        store.put_create("blob", Bytes::from(data.clone())).await.unwrap();
        let pieces: Vec<Bytes> =
            store.get_stream("blob").await.unwrap().try_collect().await.unwrap();
        assert_eq!(
            pieces.iter().map(Bytes::len).collect::<Vec<_>>(),
            [STREAM_READ_BYTES, STREAM_READ_BYTES, 1000]
        );
        assert_eq!(pieces.concat(), data);
        let range = 100..STREAM_READ_BYTES as u64 + 300;
        let got: Vec<Bytes> = store
            .get_range_stream("blob", range.clone())
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(got.concat(), &data[range.start as usize..range.end as usize]);

        // The file shrinks after the GET was answered: the stream fails rather than ending short.
        let s = store.get_stream("blob").await.unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("blob"))
            .unwrap()
            .set_len(10)
            .unwrap();
        let err = s.try_collect::<Vec<Bytes>>().await.unwrap_err();
        assert!(err.to_string().contains("shorter than when it was opened"), "{err}");
    }

    /// What an `mmap` writer does: the bytes change, size and mtime do not.
    async fn changed_in_place_keeping_size_and_mtime_publishes_nothing(store: &Store, tmp: &Path) {
        for len in [100, UPLOAD_PART_BYTES + 100] {
            let src = tmp.join(format!("mapped-{len}"));
            let data = vec![7u8; len];
            std::fs::write(&src, &data).unwrap();
            let meta = std::fs::metadata(&src).unwrap();
            let mut changed = data.clone();
            changed[len / 2] = 8;
            std::fs::write(&src, &changed).unwrap();
            let f = std::fs::OpenOptions::new().write(true).open(&src).unwrap();
            f.set_modified(meta.modified().unwrap()).unwrap();
            drop(f);
            // The kernel moved the ctime; an mmap writer's change may not show even there
            // before the pages are written back, so the stamp is taken after the change.
            let source = UploadSource {
                path: src.clone(),
                stamp: FileStamp::of(&std::fs::metadata(&src).unwrap()),
                check: UploadCheck::of(&data),
                chunks: None,
            };
            assert_eq!(
                FileStamp::of(&std::fs::metadata(&src).unwrap()).mtime_ns,
                FileStamp::of(&meta).mtime_ns
            );
            let key = format!("blobs/mapped-{len}");
            let err = store.upload_file(&key, &source, &|_| {}).await;
            assert!(matches!(err, Err(StoreError::ChangedDuringUpload { .. })), "{len}: {err:?}");
            assert_eq!(store.head(&key).await.unwrap(), None, "{len}");
        }
    }

    async fn upload_publishes_blob_and_sidecar_only_if_unchanged(store: &Store, tmp: &Path) {
        let src = tmp.join("big");
        let data: Vec<u8> = (0..UPLOAD_PART_BYTES * 2 + 5).map(|i| (i % 251) as u8).collect();
        std::fs::write(&src, &data).unwrap();
        let sums = chunks::ChunkSums::of(&data, chunks::CHUNK_BYTES, chunks::ChunkAlgo::NEW);
        let source = UploadSource {
            path: src.clone(),
            stamp: FileStamp::of(&std::fs::metadata(&src).unwrap()),
            check: UploadCheck::of(&data),
            chunks: Some(sums),
        };
        store.upload_file("blobs/x", &source, &|_| {}).await.unwrap();
        assert_eq!(&store.get("blobs/x").await.unwrap()[..], &data[..]);
        let sums: chunks::ChunkSums =
            serde_json::from_slice(&store.get("chunks/x.json").await.unwrap()).unwrap();
        assert!(sums.is_consistent());
        for i in 0..sums.count() {
            let r = sums.range(i);
            assert!(sums.verify(i, &data[r.start as usize..r.end as usize]), "chunk {i}");
        }
        // Small files take the single-request path.
        let small = tmp.join("small");
        std::fs::write(&small, b"tiny").unwrap();
        let tiny = UploadSource {
            path: small.clone(),
            stamp: FileStamp::of(&std::fs::metadata(&small).unwrap()),
            check: UploadCheck::of(b"tiny"),
            chunks: None,
        };
        store.upload_file("blobs/t", &tiny, &|_| {}).await.unwrap();
        assert_eq!(&store.get("blobs/t").await.unwrap()[..], b"tiny");
        // The file changed after hashing: nothing is published under its old digest.
        std::fs::write(&src, b"changed").unwrap();
        let err = store.upload_file("blobs/y", &source, &|_| {}).await;
        assert!(matches!(err, Err(StoreError::ChangedDuringUpload { .. })), "{err:?}");
        assert_eq!(store.head("blobs/y").await.unwrap(), None);
        std::fs::write(&src, &data).unwrap();
        changed_in_place_keeping_size_and_mtime_publishes_nothing(store, tmp).await;
    }
}
