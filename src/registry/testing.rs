//! A registry in a temporary directory for the unit tests of what reads it (`fs`, `source`):
//! the directory, a runtime to drive it, and versions logged straight from bytes.

use std::collections::HashMap;
use std::path::PathBuf;

use tempfile::TempDir;
use tokio::runtime::Runtime;

use super::{LogRequest, Registry};
use crate::manifest::{Entry, Manifest, md5_base64};
use crate::names::CollectionPath;
use crate::store::chunks::{self, ChunkAlgo, ChunkSums};
use crate::store::{FileStamp, Store, UploadCheck, UploadSource, cloud::Clouds};

pub struct TempRegistry {
    pub dir: TempDir,
    pub runtime: Runtime,
    pub registry: Registry,
}

/// An empty registry in `<dir>/registry`, with a two-worker runtime.
impl Default for TempRegistry {
    fn default() -> TempRegistry {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let store =
            Store::open(dir.path().join("registry").to_str().unwrap(), &Clouds::default()).unwrap();
        TempRegistry { dir, runtime, registry: Registry::new(store) }
    }
}

impl TempRegistry {
    pub fn registry_dir(&self) -> PathBuf {
        self.dir.path().join("registry").canonicalize().unwrap()
    }

    /// Logs `files` as a new version of `c` with `aliases`, returning its number. With
    /// `chunk_bytes`, files of more than one chunk get a chunk sidecar, as `artfs log` writes.
    pub fn log(
        &self,
        c: &CollectionPath,
        files: &[(&str, &[u8])],
        aliases: &[&str],
        chunk_bytes: Option<u64>,
    ) -> u32 {
        let src = tempfile::tempdir_in(self.dir.path()).unwrap();
        let mut manifest = Manifest::default();
        let mut sources = HashMap::new();
        for (i, (path, data)) in files.iter().enumerate() {
            let file = src.path().join(i.to_string());
            std::fs::write(&file, data).unwrap();
            let stamp = FileStamp::of(&std::fs::metadata(&file).unwrap());
            let sums = chunk_bytes
                .filter(|&n| data.len() as u64 > n)
                .map(|n| ChunkSums::of(data, n, ChunkAlgo::NEW));
            let entry = Entry::stored(md5_base64(data), data.len() as u64);
            manifest.contents.insert(path.to_string(), chunks::bound(entry, sums.as_ref()));
            let check = UploadCheck::of(data);
            let source = UploadSource { path: file, stamp, check, chunks: sums };
            sources.insert(path.to_string(), source);
        }
        let req = LogRequest {
            history_step: None,
            collection: c.clone(),
            artifact_type: "dataset".into(),
            description: None,
            metadata: None,
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            manifest,
            sources,
        };
        self.runtime.block_on(self.registry.log(&req, &())).unwrap().version
    }
}
