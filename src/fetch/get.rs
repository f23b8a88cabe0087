//! `artfs get`: a whole version copied out of the cache into a folder, each file verified on
//! its way into the cache and renamed into place only when complete.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::cache::CachedBlob;
use crate::manifest::{Entry, Manifest};
use crate::source::BlobSource;

use super::{FetchError, Fetcher};

/// Files downloaded at once by `artfs get`.
const GET_PARALLEL_FILES: usize = 8;

impl Fetcher {
    /// Downloads every entry of a version into `root`, verifying each; files are written to a
    /// temporary name and renamed, so a failure leaves no file with wrong content.
    pub fn download(
        &self,
        blobs: &Arc<dyn BlobSource>,
        artifact: &str,
        manifest: &Manifest,
        root: &Path,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<u64, FetchError> {
        let entries: Vec<(&String, &Entry)> = manifest.contents.iter().collect();
        let is_entry = |p: &Path| {
            p.strip_prefix(root)
                .ok()
                .and_then(Path::to_str)
                .is_some_and(|rel| manifest.contents.contains_key(rel))
        };
        let next = AtomicUsize::new(0);
        let results: Vec<Result<u64, FetchError>> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..GET_PARALLEL_FILES.min(entries.len().max(1)))
                .map(|_| {
                    s.spawn(|| {
                        let mut bytes = 0;
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some((path, entry)) = entries.get(i) else {
                                return Ok(bytes);
                            };
                            let blob = self.cached(blobs, artifact, path, entry)?;
                            copy_out(&blob, &root.join(path), &is_entry)?;
                            bytes += blob.len();
                            progress(blob.len());
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        results.into_iter().sum()
    }
}

/// Copies a cached blob to `dest` through a temporary file in the same directory, named so that
/// it is none of the version's entries (`is_entry`): a temporary file must never replace one.
fn copy_out(
    blob: &CachedBlob,
    dest: &Path,
    is_entry: &dyn Fn(&Path) -> bool,
) -> Result<(), FetchError> {
    let write_err = |source| FetchError::Write { path: dest.to_owned(), source };
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = std::iter::repeat_with(|| {
        let id = format!("{}-{:08x}", std::process::id(), fastrand::u32(..));
        dest.with_file_name(format!(".{name}.artfs-{id}.tmp"))
    })
    .find(|t| !is_entry(t))
    .unwrap_or_else(|| dest.with_file_name(format!(".{name}.artfs.tmp")));
    let result = (|| {
        std::fs::copy(blob.path(), &tmp)?;
        // Cache entries are read-only; the user's copy is theirs to change.
        let mut perms = std::fs::metadata(&tmp)?.permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
        std::fs::set_permissions(&tmp, perms)?;
        std::fs::rename(&tmp, dest)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(write_err)
}
