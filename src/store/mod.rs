//! The registry's object storage: one URL (local directory, `s3://`, `gs://`) behind `object_store`.
//!
//! Keys are relative `/`-separated strings below the registry root. Only two kinds of write exist:
//! create-only puts (`PutMode::Create`: `O_EXCL`/link on disk, `If-None-Match: *` on S3,
//! `ifGenerationMatch=0` on GCS), which the commit protocol builds on, and uploads of
//! content-addressed blobs, where a second writer of the same key writes the same bytes.

pub mod chunks;
pub mod cloud;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

use crate::manifest::{DigestAlg, EntryHasher};

/// Files up to this size are uploaded in one request; larger ones in parts of this size.
pub const UPLOAD_PART_BYTES: usize = 8 << 20;
/// Parts of one multipart upload in flight at once.
const UPLOAD_PARTS_IN_FLIGHT: usize = 4;

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
    #[error("cannot open registry {url}: {reason}")]
    Open { url: String, reason: String },
    #[error("cannot read {path}: {source}")]
    LocalRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} changed while it was being logged (digest {expected} when hashed, {actual} when uploaded); log again"
    )]
    ChangedDuringUpload {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error(transparent)]
    Cloud(#[from] cloud::CloudError),
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
}

impl Store {
    /// Opens a local directory (created if missing), `file://…`, `s3://bucket/prefix` or
    /// `gs://bucket/prefix`.
    pub fn open(url: &str, clouds: &cloud::Clouds) -> Result<Store, StoreError> {
        let open_err = |reason: String| StoreError::Open {
            url: url.to_owned(),
            reason,
        };
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
        })
    }

    /// A store over any `object_store` backend (tests, benchmarks).
    pub fn from_object_store(inner: Arc<dyn ObjectStore>, prefix: &str, url: &str) -> Store {
        Store {
            inner,
            prefix: prefix.trim_matches('/').to_owned(),
            url: url.to_owned(),
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
            false => s
                .strip_prefix(&self.prefix)
                .unwrap_or(s)
                .trim_start_matches('/')
                .to_owned(),
        }
    }

    fn err(&self, action: &'static str, key: &str, source: object_store::Error) -> StoreError {
        match source {
            object_store::Error::NotFound { .. } => StoreError::NotFound {
                url: self.url.clone(),
                key: key.to_owned(),
            },
            source => StoreError::Backend {
                url: self.url.clone(),
                action,
                key: key.to_owned(),
                source,
            },
        }
    }

    pub async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let r = self
            .inner
            .get(&self.path(key))
            .await
            .map_err(|e| self.err("get", key, e))?;
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
        self.inner
            .get_range(&self.path(key), range)
            .await
            .map_err(|e| self.err("get", key, e))
    }

    /// A streaming read of a whole object.
    pub async fn get_stream(
        &self,
        key: &str,
    ) -> Result<impl futures::Stream<Item = Result<Bytes, StoreError>> + use<>, StoreError> {
        let r = self
            .inner
            .get(&self.path(key))
            .await
            .map_err(|e| self.err("get", key, e))?;
        let this = self.clone();
        let key = key.to_owned();
        Ok(r.into_stream().map_err(move |e| this.err("get", &key, e)))
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
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .inner
            .put_opts(&self.path(key), PutPayload::from(bytes), opts)
            .await
        {
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
        let metas: Vec<_> = stream
            .try_collect()
            .await
            .map_err(|e| self.err("list", prefix, e))?;
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

    /// The immediate "subdirectories" of `prefix`, sorted.
    pub async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let p = self.path(prefix);
        let res = self
            .inner
            .list_with_delimiter(Some(&p))
            .await
            .map_err(|e| self.err("list", prefix, e))?;
        let mut out: Vec<String> = res
            .common_prefixes
            .iter()
            .filter_map(|c| c.filename().map(str::to_owned))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Uploads a local file to a content-addressed `key`, hashing the bytes as they are sent and
    /// refusing to publish them if they no longer match `expected` (the file changed after it was
    /// hashed). A file of more than one chunk also gets its per-chunk checksums
    /// (`chunks::sidecar_key`), stored before the blob is published. `progress` receives byte
    /// counts.
    pub async fn upload_file(
        &self,
        key: &str,
        path: &Path,
        alg: DigestAlg,
        expected: &str,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), StoreError> {
        let read_err = |source| StoreError::LocalRead {
            path: path.to_owned(),
            source,
        };
        let mut file = tokio::fs::File::open(path).await.map_err(read_err)?;
        let mut hasher = EntryHasher::new(alg);
        let mut first = vec![0u8; UPLOAD_PART_BYTES];
        let n = read_full(&mut file, &mut first).await.map_err(read_err)?;
        hasher.update(&first[..n]);
        progress(n as u64);
        let changed = |hasher: EntryHasher| {
            let actual = hasher.finish();
            (actual != expected).then(|| StoreError::ChangedDuringUpload {
                path: path.to_owned(),
                expected: expected.to_owned(),
                actual,
            })
        };
        if n < UPLOAD_PART_BYTES {
            if let Some(e) = changed(hasher) {
                return Err(e);
            }
            first.truncate(n);
            self.put_create(key, Bytes::from(first)).await?;
            return Ok(());
        }
        let upload = self
            .inner
            .put_multipart(&self.path(key))
            .await
            .map_err(|e| self.err("upload", key, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, UPLOAD_PART_BYTES);
        let mut chunk_sums = chunks::ChunkHasher::new(chunks::CHUNK_BYTES);
        chunk_sums.update(&first[..n]);
        writer.write(&first[..n]);
        let mut buf = first;
        loop {
            let n = match read_full(&mut file, &mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    writer.abort().await.ok();
                    return Err(read_err(e));
                }
            };
            if n == 0 {
                break;
            }
            if let Err(e) = writer.wait_for_capacity(UPLOAD_PARTS_IN_FLIGHT).await {
                return Err(self.err("upload", key, e));
            }
            hasher.update(&buf[..n]);
            writer.write(&buf[..n]);
            progress(n as u64);
        }
        if let Some(e) = changed(hasher) {
            writer.abort().await.ok();
            return Err(e);
        }
        writer
            .finish()
            .await
            .map_err(|e| self.err("upload", key, e))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn create_only_lists_and_uploads_verified() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_str().unwrap(), &cloud::Clouds::default()).unwrap();
        assert!(
            store
                .put_create("a/b/1", Bytes::from_static(b"one"))
                .await
                .unwrap()
        );
        assert!(
            !store
                .put_create("a/b/1", Bytes::from_static(b"two"))
                .await
                .unwrap()
        );
        assert_eq!(&store.get("a/b/1").await.unwrap()[..], b"one");
        assert!(store.get_opt("a/b/2").await.unwrap().is_none());
        store
            .put_create("a/c/2", Bytes::from_static(b"x"))
            .await
            .unwrap();
        let keys: Vec<_> = store
            .list("a")
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.key)
            .collect();
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

        let src = dir.path().join("big");
        let data: Vec<u8> = (0..UPLOAD_PART_BYTES * 2 + 5)
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&src, &data).unwrap();
        let digest = crate::manifest::md5_base64(&data);
        store
            .upload_file("blob", &src, DigestAlg::Md5, &digest, &|_| {})
            .await
            .unwrap();
        assert_eq!(store.get("blob").await.unwrap().len(), data.len());
        let err = store
            .upload_file("blob2", &src, DigestAlg::Md5, "bogus", &|_| {})
            .await;
        assert!(
            matches!(err, Err(StoreError::ChangedDuringUpload { .. })),
            "{err:?}"
        );
        assert_eq!(store.head("blob2").await.unwrap(), None);
    }
}
