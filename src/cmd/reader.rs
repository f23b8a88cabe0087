//! One version read in-process, through the mount's own filesystem logic but with no mount: what
//! the Python package's fsspec filesystem reads through (`python`), so its bytes come from the
//! same shared cache and are verified exactly as the mount verifies them.
//!
//! [`VersionReader`] owns its async runtime; its methods block and must be called from plain
//! threads (never from a tokio worker), as `ArtifactFs` requires.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::App;
use crate::cli::{GlobalArgs, RefAccessArgs};
use crate::config::Config;
use crate::fetch::Fetcher;
use crate::fs::{ArtifactFs, FileKind, FsError, FsOptions, HandleNo, InodeNo, Opened, ROOT_INODE};

/// Where a reader finds the registry and the cache; `None` falls back to the environment
/// (`ARTFS_REGISTRY`, `ARTFS_CACHE_DIR`, …) and then to the CLI's defaults.
#[derive(Debug, Clone, Default)]
pub struct ReaderSettings {
    pub registry: Option<String>,
    pub entity: Option<String>,
    pub project: Option<String>,
    pub cache_dir: Option<PathBuf>,
    pub cache_size: Option<String>,
}

/// A file or directory of the version: its kind and size (0 for directories).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub is_dir: bool,
    pub size: u64,
}

/// One version, resolved once when opened (an alias is not followed again afterwards).
#[derive(Debug)]
pub struct VersionReader {
    fs: ArtifactFs,
    /// `entity/project/name:vN`.
    label: String,
    /// Drives the registry and the downloads; shut down, bounded, on drop.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for VersionReader {
    fn drop(&mut self) {
        // Bounded: a download stuck in the blocking pool must not hang the Python process that
        // drops the last reference (it may hold the GIL).
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(crate::mount::SHUTDOWN_GRACE);
        }
    }
}

impl VersionReader {
    /// Resolves `artifact` (`[[entity/]project/]name[:alias|:vN]`) and reads its manifest.
    pub fn open(settings: &ReaderSettings, artifact: &str) -> Result<VersionReader> {
        let env = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
        let global = GlobalArgs {
            registry: settings.registry.clone().or_else(|| env("ARTFS_REGISTRY")),
            entity: settings.entity.clone().or_else(|| env("ARTFS_ENTITY")),
            project: settings.project.clone().or_else(|| env("ARTFS_PROJECT")),
            cache_dir: settings
                .cache_dir
                .clone()
                .or_else(|| env("ARTFS_CACHE_DIR").map(Into::into)),
            cache_size: settings.cache_size.clone().or_else(|| env("ARTFS_CACHE_SIZE")),
            profile: env("ARTFS_PROFILE"),
            verbose: 0,
            quiet: true,
        };
        let profile = crate::profile::select(global.profile.as_deref())?;
        let config = Config::resolve(&global, &profile)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let app = App::new(config);
        let clouds = app.reference_clouds(&RefAccessArgs::default())?;
        let fetcher = Fetcher::new(app.cache()?, runtime.handle().clone()).with_clouds(clouds);
        let (catalog, version) = runtime.block_on(async {
            let catalog = app.catalog().await?;
            let version = app.resolve(catalog.as_ref(), artifact).await?;
            anyhow::Ok((catalog, version))
        })?;
        let label = version.label();
        let handle = runtime.handle().clone();
        let options = FsOptions { readahead_files: 0, warm_up_bytes: 0, ..FsOptions::default() };
        let fs = ArtifactFs::single(catalog, fetcher, handle, options, &version)
            .with_context(|| format!("cannot read {label}"))?;
        Ok(VersionReader { fs, label, runtime: Some(runtime) })
    }

    /// `entity/project/name:vN`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The file or directory at `path` (`/`-separated, relative to the version's root).
    pub fn stat(&self, path: &str) -> Result<Stat, FsError> {
        let ino = self.lookup(path)?;
        Ok(stat_of(&self.fs.getattr(ino)?))
    }

    /// The names in directory `path`, with what each is.
    pub fn list(&self, path: &str) -> Result<Vec<(String, Stat)>, FsError> {
        let ino = self.lookup(path)?;
        let dir = self.fs.opendir(ino)?;
        let mut out = Vec::new();
        let listed = self.fs.readdir(ino, dir.fh, 0, &mut |entry| {
            if entry.name != "." && entry.name != ".." {
                out.push((entry.name.to_owned(), stat_of(&entry.attr)));
            }
            false
        });
        self.fs.releasedir(dir.fh);
        listed.map(|()| out)
    }

    /// Opens the file at `path`: a small file is downloaded and verified now, a large one is
    /// read lazily, each chunk verified before it is returned.
    pub fn open_file(&self, path: &str) -> Result<HandleNo, FsError> {
        let ino = self.lookup(path)?;
        let file = match self.fs.open(ino, false)? {
            Opened::Ready(file) => file,
            Opened::Fetch(pending) => pending.run(None)?,
        };
        Ok(file.fh)
    }

    /// Up to `len` bytes of an open file from `offset` (fewer only at its end).
    pub fn read(&self, fh: HandleNo, offset: u64, len: usize) -> Result<Vec<u8>, FsError> {
        let mut buf = vec![0; len];
        let n = self.fs.read(fh, offset, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Closes an open file (its cached blob may then be evicted).
    pub fn release(&self, fh: HandleNo) {
        self.fs.release(fh);
    }

    fn lookup(&self, path: &str) -> Result<InodeNo, FsError> {
        let mut ino = ROOT_INODE;
        for name in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
            ino = self.fs.lookup(ino, name)?.ino;
        }
        Ok(ino)
    }
}

fn stat_of(attr: &crate::fs::Attr) -> Stat {
    Stat { is_dir: attr.kind == FileKind::Directory, size: attr.size }
}
