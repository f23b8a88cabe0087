//! Which of two on-disk layouts a cache directory has, and, in the W&B one, which entries artfs
//! has verified itself.
//!
//! - [`Layout::Artfs`]: everything under `<dir>/v1/` (`v1/obj/…` entries, bookkeeping beside them).
//! - [`Layout::Wandb`]: the `wandb` SDK's own cache (`~/.cache/wandb/artifacts`). Entries live at
//!   `<dir>/obj/<kind>/<2 hex>/<rest>`, exactly where the SDK's `ArtifactFileCache` looks for them,
//!   so a file either side downloaded is a hit for the other; artfs's bookkeeping (temp and
//!   partial files, locks, totals, seals) lives under `<dir>/artfs-v1/`, away from the SDK's
//!   `tmp/`, which `wandb artifact cache cleanup --remove-temp` empties.
//!
//! The choice needs no flag ([`Layout::choose`]): a directory that already holds artfs's `v1/`
//! stays artfs's; one the SDK has used (`obj/` or `tmp/`) or artfs has shared before
//! (`artfs-v1/`) is shared; a new directory is shared if it is where the SDK keeps its cache
//! (`$WANDB_CACHE_DIR/artifacts`, else `~/.cache/wandb/artifacts`), artfs's own otherwise.
//!
//! The SDK checks only an entry's size, so in the shared layout a file under `obj/` is trusted
//! only once artfs has hashed it against the key. A seal (`artfs-v1/sealed/<kind>/<2 hex>/<rest>`)
//! records the device, inode, size and modification time the file had when it passed, so it is
//! hashed once rather than on every open; a file the SDK replaced (a new inode) or someone wrote
//! in place (a new mtime) no longer matches its seal and is hashed again. Recency is therefore
//! the access time in this layout (which is also what the SDK's own cleanup sorts by): marking an
//! entry used must not move the mtime its seal names.

use std::ffi::OsString;
use std::fs::{self, File, FileTimes, Metadata};
use std::io::{self, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::LAYOUT_VERSION;
use super::key::CacheKey;
use super::lock::TempBlob;

/// Directory of artfs's own files inside a shared W&B cache (its format version in the name:
/// bump it with `LAYOUT_VERSION`).
const WANDB_BOOKKEEPING_DIR: &str = "artfs-v1";

/// How a cache directory stores its entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// artfs's own: `<dir>/v1/obj/…`.
    Artfs,
    /// The `wandb` SDK's: `<dir>/obj/…`, shared with it.
    Wandb,
}

/// What [`Layout::choose`] decides from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// `<dir>/v1/` exists (artfs has used the directory in its own layout).
    pub artfs_root: bool,
    /// `<dir>/obj/` or `<dir>/tmp/` exists (the SDK has used the directory).
    pub sdk_dirs: bool,
    /// `<dir>/artfs-v1/` exists (artfs has used the directory in the shared layout).
    pub shared_bookkeeping: bool,
    /// The directory is the SDK's default cache directory.
    pub is_sdk_default: bool,
}

impl Layout {
    /// The layout of the cache in `dir`; `sdk_default` is where the SDK keeps its cache
    /// ([`sdk_cache_dir`]).
    pub fn detect(dir: &Path, sdk_default: Option<&Path>) -> Layout {
        let is_dir = |name: &str| dir.join(name).is_dir();
        Layout::choose(Seen {
            artfs_root: is_dir(LAYOUT_VERSION),
            sdk_dirs: is_dir("obj") || is_dir("tmp"),
            shared_bookkeeping: is_dir(WANDB_BOOKKEEPING_DIR),
            is_sdk_default: sdk_default.is_some_and(|sdk| same_dir(dir, sdk)),
        })
    }

    /// The rule of the module header. An existing artfs cache wins over everything, so that a
    /// cache in use never changes layout under its entries.
    pub fn choose(seen: Seen) -> Layout {
        if seen.artfs_root {
            Layout::Artfs
        } else if seen.sdk_dirs || seen.shared_bookkeeping || seen.is_sdk_default {
            Layout::Wandb
        } else {
            Layout::Artfs
        }
    }

    /// `(where obj/ lives, where artfs's bookkeeping lives)` for a cache in `dir`.
    pub(super) fn roots(self, dir: &Path) -> (PathBuf, PathBuf) {
        match self {
            Layout::Artfs => (dir.join(LAYOUT_VERSION), dir.join(LAYOUT_VERSION)),
            Layout::Wandb => (dir.to_owned(), dir.join(WANDB_BOOKKEEPING_DIR)),
        }
    }

    /// Mode of published entries. artfs's own are read-only so that no caller can corrupt a
    /// verified entry in place. Shared ones are writable by their owner like the SDK's: the SDK
    /// copies an entry's mode to the files `download()` writes, and fails to overwrite a
    /// read-only one later; a write in place is caught by the seal instead.
    pub(super) fn entry_mode(self) -> u32 {
        match self {
            Layout::Artfs => 0o444,
            Layout::Wandb => 0o644,
        }
    }

    /// When the entry was last used, as eviction orders entries.
    pub(super) fn last_used(self, meta: &Metadata) -> io::Result<SystemTime> {
        match self {
            Layout::Artfs => meta.modified(),
            Layout::Wandb => meta.accessed(),
        }
    }

    /// Marks an open entry as used now (see [`Layout::last_used`]).
    pub(super) fn mark_used(self, file: &File) -> io::Result<()> {
        let now = SystemTime::now();
        match self {
            Layout::Artfs => file.set_modified(now),
            Layout::Wandb => file.set_times(FileTimes::new().set_accessed(now)),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Layout::Artfs => "artfs",
            Layout::Wandb => "wandb",
        }
    }
}

/// Where the `wandb` SDK keeps its artifact cache: `$WANDB_CACHE_DIR/artifacts`, else
/// `<user cache dir>/wandb/artifacts` (what `platformdirs.user_cache_dir("wandb")` gives).
pub fn sdk_cache_dir(
    var: impl Fn(&str) -> Option<OsString>,
    user_cache_dir: Option<PathBuf>,
) -> Option<PathBuf> {
    let base = match var("WANDB_CACHE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => user_cache_dir?.join("wandb"),
    };
    Some(base.join("artifacts"))
}

/// Whether two paths name one directory: equal as written, or, where both exist, the same inode.
fn same_dir(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Records of shared-layout entries that passed artfs's verification (see the module header).
#[derive(Debug)]
pub(super) struct Seals {
    dir: PathBuf,
    obj_dir: PathBuf,
}

impl Seals {
    pub(super) fn new(root: &Path, obj_dir: &Path) -> Seals {
        Seals { dir: root.join("sealed"), obj_dir: obj_dir.to_owned() }
    }

    fn path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(key.below_obj())
    }

    /// Whether the entry of `key`, as `meta` describes the file open now, is the one sealed.
    pub(super) fn holds(&self, key: &CacheKey, meta: &Metadata) -> bool {
        fs::read_to_string(self.path(key)).is_ok_and(|seal| seal == stamp(meta))
    }

    /// Seals the entry of `key` as `meta` describes it; written by rename, so a reader sees an
    /// old seal or the new one, never a torn one.
    pub(super) fn seal(&self, key: &CacheKey, meta: &Metadata, tmp_dir: &Path) -> io::Result<()> {
        let mut temp = TempBlob::create(tmp_dir, &format!("seal-{}-{}", key.kind(), key.hex()))?;
        temp.file.write_all(stamp(meta).as_bytes())?;
        temp.publish(&self.path(key)).map(drop)
    }

    /// Drops the seal of an entry that is gone (by its path under `obj/`). Best effort: a stale
    /// seal names an inode that no longer holds the entry, so it never matches a new file.
    pub(super) fn unseal_entry(&self, entry_path: &Path) {
        if let Ok(rest) = entry_path.strip_prefix(&self.obj_dir) {
            let _ = fs::remove_file(self.dir.join(rest));
        }
    }

    /// Removes the seals whose entry is gone (the SDK's own cleanup removes entries without
    /// telling artfs); run by eviction passes. Returns how many were removed. Best effort.
    pub(super) fn remove_orphans(&self) -> usize {
        let mut removed = 0;
        for kind in read_dir_paths(&self.dir) {
            for shard in read_dir_paths(&kind) {
                for seal in read_dir_paths(&shard) {
                    let Ok(rest) = seal.strip_prefix(&self.dir) else { continue };
                    let entry = self.obj_dir.join(rest);
                    if !entry.exists() && fs::remove_file(&seal).is_ok() {
                        removed += 1;
                    }
                }
            }
        }
        removed
    }
}

fn read_dir_paths(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

/// What a seal says of a file: device, inode, size and mtime to the nanosecond.
fn stamp(meta: &Metadata) -> String {
    let (dev, ino, len) = (meta.dev(), meta.ino(), meta.len());
    format!("{dev} {ino} {len} {}.{:09}\n", meta.mtime(), meta.mtime_nsec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_follows_what_the_directory_already_is() {
        let choose = Layout::choose;
        // A new directory: artfs's own, unless it is the SDK's cache directory.
        assert_eq!(choose(Seen::default()), Layout::Artfs);
        assert_eq!(choose(Seen { is_sdk_default: true, ..Seen::default() }), Layout::Wandb);
        // Used by the SDK, or shared by artfs before: shared.
        assert_eq!(choose(Seen { sdk_dirs: true, ..Seen::default() }), Layout::Wandb);
        assert_eq!(choose(Seen { shared_bookkeeping: true, ..Seen::default() }), Layout::Wandb);
        // An artfs cache in use keeps its layout, even at the SDK's path or with an `obj/`.
        let artfs = Seen { artfs_root: true, ..Seen::default() };
        assert_eq!(choose(artfs), Layout::Artfs);
        assert_eq!(
            choose(Seen {
                sdk_dirs: true,
                is_sdk_default: true,
                shared_bookkeeping: true,
                ..artfs
            }),
            Layout::Artfs
        );
    }

    #[test]
    fn detect_reads_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(Layout::detect(d, None), Layout::Artfs);
        assert_eq!(Layout::detect(d, Some(d)), Layout::Wandb);
        // The SDK creates `tmp/` as soon as it opens its cache, before any download.
        fs::create_dir(d.join("tmp")).unwrap();
        assert_eq!(Layout::detect(d, None), Layout::Wandb);
        fs::create_dir(d.join("v1")).unwrap();
        assert_eq!(Layout::detect(d, None), Layout::Artfs);
        // The SDK's path named differently (a trailing `.`) is still the SDK's.
        let other = tempfile::tempdir().unwrap();
        assert_eq!(Layout::detect(other.path(), Some(&other.path().join("."))), Layout::Wandb);
    }

    #[test]
    fn the_sdk_cache_dir_is_found_as_the_sdk_finds_it() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| OsString::from(v))
        };
        let home_cache = Some(PathBuf::from("/home/ana/.cache"));
        assert_eq!(
            sdk_cache_dir(vars(&[]), home_cache.clone()),
            Some(PathBuf::from("/home/ana/.cache/wandb/artifacts"))
        );
        assert_eq!(
            sdk_cache_dir(vars(&[("WANDB_CACHE_DIR", "/data/wb")]), home_cache.clone()),
            Some(PathBuf::from("/data/wb/artifacts"))
        );
        // Set but empty is the current directory to the SDK (`Path("")`), and so here.
        assert_eq!(
            sdk_cache_dir(vars(&[("WANDB_CACHE_DIR", "")]), home_cache),
            Some(PathBuf::from("artifacts"))
        );
        assert_eq!(sdk_cache_dir(vars(&[]), None), None);
    }

    #[test]
    fn roots_put_entries_where_the_sdk_looks() {
        let d = Path::new("/c");
        assert_eq!(Layout::Artfs.roots(d), (PathBuf::from("/c/v1"), PathBuf::from("/c/v1")));
        assert_eq!(Layout::Wandb.roots(d), (PathBuf::from("/c"), PathBuf::from("/c/artfs-v1")));
        assert!(WANDB_BOOKKEEPING_DIR.ends_with(LAYOUT_VERSION));
    }
}
