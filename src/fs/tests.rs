//! `ArtifactFs` without a mount: a temporary registry and cache, requests as method calls.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::namespace::MISS_REREAD_AFTER;
use super::*;
use crate::cache::BlobCache;
use crate::manifest::{Entry, md5_base64};
use crate::names::Selector;
use crate::registry::VersionRecord;
use crate::registry::testing::TempRegistry;
use crate::source::registry::RegistrySource;
use crate::store::chunks::{ChunkAlgo, ChunkSums};

/// A temporary registry (its `dir`, `runtime` and `registry`), and the filesystems over it.
struct Env(TempRegistry);

impl std::ops::Deref for Env {
    type Target = TempRegistry;
    fn deref(&self) -> &TempRegistry {
        &self.0
    }
}

impl Env {
    fn new() -> Env {
        Env(TempRegistry::default())
    }

    /// The registry as the filesystem sees it.
    fn catalog(&self) -> Arc<dyn Catalog> {
        Arc::new(RegistrySource::new(self.registry.clone()))
    }

    fn cache(&self) -> BlobCache {
        BlobCache::open(&self.dir.path().join("cache"), 1 << 30).unwrap()
    }

    fn fetcher(&self) -> Fetcher {
        Fetcher::new(self.cache(), self.runtime.handle().clone())
    }

    /// A fetcher that reads files over 64 KiB lazily, for blobs logged by `log_chunked`.
    fn lazy_fetcher(&self) -> Fetcher {
        self.fetcher().with_lazy_min_bytes(TEST_CHUNK_BYTES)
    }

    fn fs_with(&self, fetcher: Fetcher) -> ArtifactFs {
        let options = Self::options(REFRESH_INTERVAL);
        ArtifactFs::registry(self.catalog(), fetcher, self.runtime.handle().clone(), options)
    }

    fn partial_dir(&self) -> PathBuf {
        self.dir.path().join("cache/v1/partial")
    }

    fn options(refresh: Duration) -> FsOptions {
        FsOptions { refresh, ..FsOptions::default() }
    }

    fn fs(&self, refresh: Duration) -> ArtifactFs {
        ArtifactFs::registry(
            self.catalog(),
            self.fetcher(),
            self.runtime.handle().clone(),
            Self::options(refresh),
        )
    }

    fn single(&self, name: &str, version: u32) -> ArtifactFs {
        let c = collection(name);
        let v = self
            .runtime
            .block_on(self.registry.resolve(&c, &Selector::Version(version)))
            .unwrap()
            .into();
        ArtifactFs::single(
            self.catalog(),
            self.fetcher(),
            self.runtime.handle().clone(),
            Self::options(REFRESH_INTERVAL),
            &v,
        )
        .unwrap()
    }

    /// Logs `files` as a new version of `acme/bikes/<name>`.
    fn log(&self, name: &str, files: &[(&str, &[u8])], aliases: &[&str]) -> u32 {
        self.0.log(&collection(name), files, aliases, None)
    }

    /// Logs `files` with chunk sidecars of [`TEST_CHUNK_BYTES`] chunks, as `artfs log` writes
    /// them for large files (with larger chunks).
    fn log_chunked(&self, name: &str, files: &[(&str, &[u8])]) -> u32 {
        self.0.log(&collection(name), files, &[], Some(TEST_CHUNK_BYTES))
    }

    fn record(&self, name: &str, version: u32) -> VersionRecord {
        let (c, selector) = (collection(name), Selector::Version(version));
        let resolve = self.registry.resolve(&c, &selector);
        self.runtime.block_on(resolve).unwrap().record
    }

    /// The registry file holding the manifest of `name:v<version>`.
    fn manifest_file(&self, name: &str, version: u32) -> PathBuf {
        self.registry_dir().join(self.record(name, version).manifest)
    }

    /// The registry file holding the blob of `bytes`.
    fn blob_file(&self, bytes: &[u8]) -> PathBuf {
        let key = crate::registry::blob_key(&md5_base64(bytes)).unwrap();
        self.registry_dir().join(key)
    }
}

/// Chunk size of the sidecars tests log, so that lazy reads are exercised on small files.
const TEST_CHUNK_BYTES: u64 = 64 * 1024;

fn collection(name: &str) -> CollectionPath {
    CollectionPath::new("acme", "bikes", name).unwrap()
}

/// Walks `path` from the root with lookups (no symlink following).
fn walk(fs: &ArtifactFs, path: &str) -> Result<Attr, FsError> {
    let mut attr = fs.getattr(ROOT_INODE)?;
    for name in path.split('/').filter(|n| !n.is_empty()) {
        attr = fs.lookup(attr.ino, name)?;
    }
    Ok(attr)
}

fn list(fs: &ArtifactFs, ino: InodeNo) -> Vec<(String, Attr)> {
    let dir = fs.opendir(ino).unwrap();
    let mut out = Vec::new();
    fs.readdir(ino, dir.fh, 0, &mut |e| {
        out.push((e.name.to_owned(), e.attr));
        false
    })
    .unwrap();
    fs.releasedir(dir.fh);
    out
}

fn names(fs: &ArtifactFs, path: &str) -> Vec<String> {
    let ino = walk(fs, path).unwrap().ino;
    list(fs, ino).into_iter().map(|(n, _)| n).collect()
}

fn open(fs: &ArtifactFs, ino: InodeNo) -> Result<OpenFile, FsError> {
    match fs.open(ino, false)? {
        Opened::Ready(f) => Ok(f),
        Opened::Fetch(pending) => pending.run(None),
    }
}

fn read_at(fs: &ArtifactFs, fh: HandleNo, offset: u64, len: usize) -> Result<Vec<u8>, FsError> {
    let mut buf = vec![0u8; len];
    let n = fs.read(fh, offset, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

fn read_all(fs: &ArtifactFs, fh: HandleNo) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let chunk = read_at(fs, fh, out.len() as u64, 64 * 1024).unwrap();
        if chunk.is_empty() {
            return out;
        }
        out.extend_from_slice(&chunk);
    }
}

fn cat(fs: &ArtifactFs, path: &str) -> Vec<u8> {
    let f = open(fs, walk(fs, path).unwrap().ino).unwrap();
    let bytes = read_all(fs, f.fh);
    fs.release(f.fh);
    bytes
}

#[test]
fn registry_mode_lists_entities_projects_versions_and_aliases() {
    let env = Env::new();
    env.log("ds", &[("a.txt", b"one")], &[]);
    env.log("ds", &[("a.txt", b"two")], &["best"]);
    env.log("model", &[("w.bin", b"weights")], &[]);
    let fs = env.fs(REFRESH_INTERVAL);

    assert_eq!(names(&fs, ""), [".", "..", "acme"]);
    assert_eq!(names(&fs, "acme"), [".", "..", "bikes"]);
    let mut project = names(&fs, "acme/bikes");
    project.sort();
    let want = [".", "..", "ds:best", "ds:latest", "ds:v0", "ds:v1", "model:latest", "model:v0"];
    assert_eq!(project, want);

    let latest = walk(&fs, "acme/bikes/ds:latest").unwrap();
    assert_eq!(latest.kind, FileKind::Symlink);
    assert_eq!(fs.readlink(latest.ino).unwrap(), "ds:v1");
    assert_eq!(latest.size, "ds:v1".len() as u64);
    assert_eq!(fs.readlink(walk(&fs, "acme/bikes/ds:best").unwrap().ino).unwrap(), "ds:v1");
    assert_eq!(cat(&fs, "acme/bikes/ds:v0/a.txt"), b"one");
    assert_eq!(cat(&fs, "acme/bikes/ds:v1/a.txt"), b"two");

    // Same name, same inode, whichever way it was reached.
    let listed = list(&fs, walk(&fs, "acme/bikes").unwrap().ino);
    let v0 = listed.iter().find(|(n, _)| n == "ds:v0").unwrap().1;
    assert_eq!(v0.ino, walk(&fs, "acme/bikes/ds:v0").unwrap().ino);
    assert_eq!(v0.kind, FileKind::Directory);

    for missing in [
        "nobody",
        "acme/nothing",
        "acme/bikes/ds",
        "acme/bikes/ds:v7",
        "acme/bikes/ds:nope",
        "acme/bikes/ghost:latest",
        "acme/bikes/bad name:latest",
        "acme/bikes/ds:v0/b.txt",
        "acme/bikes/ds:v01",
    ] {
        assert_eq!(walk(&fs, missing).unwrap_err().errno(), libc::ENOENT, "{missing}");
    }
    let err = walk(&fs, "acme/bikes/ds:v0/a.txt/x").unwrap_err();
    assert_eq!(err.errno(), libc::ENOTDIR);
    assert_eq!(fs.readlink(v0.ino).unwrap_err().errno(), libc::EINVAL);
    for bogus in [0, 999, 77 << 32, (1 << 32) + 12345] {
        let err = fs.getattr(InodeNo(bogus)).unwrap_err();
        assert_eq!(err.errno(), libc::ENOENT, "{bogus}");
    }
}

#[test]
fn names_resolve_on_lookup_before_any_listing() {
    let env = Env::new();
    env.log("ds", &[("a.txt", b"one")], &["prod"]);
    let fs = env.fs(REFRESH_INTERVAL);
    // Straight to the version, never listing the project.
    assert_eq!(cat(&fs, "acme/bikes/ds:v0/a.txt"), b"one");
    let prod = walk(&fs, "acme/bikes/ds:prod").unwrap();
    assert_eq!(fs.readlink(prod.ino).unwrap(), "ds:v0");
}

#[test]
fn manifests_load_only_when_a_version_is_entered() {
    let env = Env::new();
    env.log("ds", &[("a.txt", b"one")], &[]);
    // Without its manifest, the version still lists and stats; entering it fails with EIO.
    for manifest in std::fs::read_dir(env.registry_dir().join("manifests")).unwrap() {
        std::fs::remove_file(manifest.unwrap().path()).unwrap();
    }
    let fs = env.fs(REFRESH_INTERVAL);
    assert!(names(&fs, "acme/bikes").contains(&"ds:v0".to_owned()));
    let v0 = walk(&fs, "acme/bikes/ds:v0").unwrap();
    assert_eq!(v0.kind, FileKind::Directory);
    assert_eq!(fs.getattr(v0.ino).unwrap().kind, FileKind::Directory);
    assert_eq!(fs.lookup(v0.ino, "a.txt").unwrap_err().errno(), libc::EIO);
    assert_eq!(fs.opendir(v0.ino).unwrap_err().errno(), libc::EIO);
}

#[test]
fn attributes_come_from_the_manifest() {
    let env = Env::new();
    let big = vec![7u8; 1025];
    env.log("ds", &[("d/e/f.bin", &big), ("d/g.txt", b"g"), ("d/h/i", b""), ("top", b"t")], &[]);
    let fs = env.fs(Duration::from_secs(3));
    let record = env.record("ds", 0);
    let created: SystemTime = record.created_at.into();

    let f = walk(&fs, "acme/bikes/ds:v0/d/e/f.bin").unwrap();
    assert_eq!((f.kind, f.size, f.blocks, f.perm, f.nlink), (FileKind::File, 1025, 3, 0o444, 1));
    assert_eq!((f.mtime, f.ttl), (created, VERSION_TTL));
    assert_eq!(fs.getattr(f.ino).unwrap(), f);
    let empty = walk(&fs, "acme/bikes/ds:v0/d/h/i").unwrap();
    assert_eq!((empty.size, empty.blocks), (0, 0));

    let d = walk(&fs, "acme/bikes/ds:v0/d").unwrap();
    assert_eq!((d.kind, d.size, d.perm, d.nlink), (FileKind::Directory, 0, 0o555, 4));
    assert_eq!(d.ttl, VERSION_TTL);
    let root = walk(&fs, "acme/bikes/ds:v0").unwrap();
    assert_eq!(fs.getattr(root.ino).unwrap().nlink, 3);

    // Things that change carry the refresh interval.
    let project = walk(&fs, "acme/bikes").unwrap();
    assert_eq!(
        (project.kind, project.perm, project.ttl),
        (FileKind::Directory, 0o555, Duration::from_secs(3))
    );
    let latest = walk(&fs, "acme/bikes/ds:latest").unwrap();
    assert_eq!((latest.perm, latest.ttl), (0o777, Duration::from_secs(3)));

    // `.` and `..` carry the right inodes.
    let listed = list(&fs, d.ino);
    assert_eq!(listed[0].0, ".");
    assert_eq!(listed[0].1.ino, d.ino);
    assert_eq!(listed[1].0, "..");
    assert_eq!(listed[1].1.ino, root.ino);
    let listed = list(&fs, root.ino);
    assert_eq!(listed[1].1.ino, project.ino);
}

#[test]
fn readdir_resumes_at_any_offset_it_handed_out() {
    let env = Env::new();
    let files: Vec<(String, Vec<u8>)> =
        (0..2000).map(|i| (format!("many/f{i:05}"), vec![])).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, b)| (p.as_str(), b.as_slice())).collect();
    env.log("ds", &refs, &[]);
    let fs = env.fs(REFRESH_INTERVAL);
    let dir = walk(&fs, "acme/bikes/ds:v0/many").unwrap().ino;
    let all = list(&fs, dir);
    assert_eq!(all.len(), 2002);

    // Small pages, each resuming at the offset of the last entry taken.
    let handle = fs.opendir(dir).unwrap();
    let mut paged = Vec::new();
    let mut offset = 0;
    loop {
        let mut page = Vec::new();
        fs.readdir(dir, handle.fh, offset, &mut |e| {
            page.push((e.name.to_owned(), e.offset));
            page.len() == 7
        })
        .unwrap();
        let Some(last) = page.last() else { break };
        offset = last.1;
        paged.extend(page.into_iter().map(|(n, _)| n));
    }
    let want: Vec<String> = all.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(paged, want);
    let mut sorted = want[2..].to_vec();
    sorted.sort();
    assert_eq!(sorted, want[2..]);

    // Any offset: entry k resumes at offset k + 1.
    for start in [0, 1, 2, 3, 1000, 2001, 2002, 5000] {
        let mut got = Vec::new();
        fs.readdir(dir, handle.fh, start, &mut |e| {
            got.push(e.name.to_owned());
            false
        })
        .unwrap();
        assert_eq!(got, want[(start as usize).min(want.len())..], "offset {start}");
    }

    // Registry directories resume from their snapshot.
    let project = walk(&fs, "acme/bikes").unwrap().ino;
    let snap = fs.opendir(project).unwrap();
    let mut first = Vec::new();
    fs.readdir(project, snap.fh, 0, &mut |e| {
        first.push(e.offset);
        false
    })
    .unwrap();
    let mut rest = Vec::new();
    fs.readdir(project, snap.fh, first[1], &mut |e| {
        rest.push(e.name.to_owned());
        false
    })
    .unwrap();
    assert_eq!(rest, ["ds:v0", "ds:latest"]);
    fs.releasedir(snap.fh);
    let stale = fs.readdir(project, snap.fh, 0, &mut |_| false).unwrap_err();
    assert_eq!(stale.errno(), libc::EBADF);
}

#[test]
fn refresh_shows_new_versions_and_moved_aliases() {
    let env = Env::new();
    env.log("ds", &[("a.txt", b"one")], &[]);
    let fresh = env.fs(Duration::ZERO);
    let cached = env.fs(Duration::from_secs(3600));
    for fs in [&fresh, &cached] {
        let latest = walk(fs, "acme/bikes/ds:latest").unwrap().ino;
        assert_eq!(fs.readlink(latest).unwrap(), "ds:v0");
    }
    // Open before the new version: keeps reading v0 through the same symlink name.
    let old = walk(&fresh, "acme/bikes/ds:v0/a.txt").unwrap();
    let held = open(&fresh, old.ino).unwrap();

    env.log("ds", &[("a.txt", b"two")], &[]);
    let latest = walk(&fresh, "acme/bikes/ds:latest").unwrap().ino;
    assert_eq!(fresh.readlink(latest).unwrap(), "ds:v1");
    assert!(names(&fresh, "acme/bikes").contains(&"ds:v1".to_owned()));
    assert_eq!(cat(&fresh, "acme/bikes/ds:v1/a.txt"), b"two");
    assert_eq!(read_all(&fresh, held.fh), b"one");
    fresh.release(held.fh);
    assert_eq!(read_at(&fresh, held.fh, 0, 10).unwrap_err().errno(), libc::EBADF);

    // Within the refresh interval the old answer stands for the names it has...
    let latest = walk(&cached, "acme/bikes/ds:latest").unwrap().ino;
    assert_eq!(cached.readlink(latest).unwrap(), "ds:v0");
    // ...while a name it lacks is read again (once older than MISS_REREAD_AFTER): a version
    // logged a moment ago is there by name at once, and so is everything that read brought.
    std::thread::sleep(MISS_REREAD_AFTER);
    assert_eq!(cat(&cached, "acme/bikes/ds:v1/a.txt"), b"two");
    assert_eq!(cached.readlink(latest).unwrap(), "ds:v1");
    assert_eq!(walk(&cached, "acme/bikes/ds:v7").unwrap_err().errno(), libc::ENOENT);
}

#[test]
fn refresh_applies_only_new_commits() {
    let env = Env::new();
    env.log("ds", &[("a.txt", b"one")], &[]);
    let fs = env.fs(Duration::ZERO);
    walk(&fs, "acme/bikes/ds:latest").unwrap();
    let (c, prod) = (collection("ds"), ["prod".to_owned()]);
    let aliases = env.registry.set_aliases(&c, 0, &prod, &[]);
    env.runtime.block_on(aliases).unwrap();
    // A commit already folded is never read again: corrupting it changes nothing.
    let commits = env.registry_dir().join("collections/acme/bikes/ds/commits");
    std::fs::write(commits.join("00000000000000000001.json"), b"garbage").unwrap();
    let prod = walk(&fs, "acme/bikes/ds:prod").unwrap().ino;
    assert_eq!(fs.readlink(prod).unwrap(), "ds:v0");
}

#[test]
fn single_mode_serves_one_version_at_the_root() {
    let env = Env::new();
    env.log("ds", &[("a.txt", b"one"), ("sub/b.txt", b"bee")], &[]);
    env.log("ds", &[("a.txt", b"two")], &[]);
    let fs = env.single("ds", 0);
    let root = fs.getattr(ROOT_INODE).unwrap();
    assert_eq!((root.ino, root.kind, root.nlink), (ROOT_INODE, FileKind::Directory, 3));
    assert_eq!(names(&fs, ""), [".", "..", "a.txt", "sub"]);
    let listed = list(&fs, ROOT_INODE);
    assert_eq!(listed[1].1.ino, ROOT_INODE);
    assert_eq!(cat(&fs, "a.txt"), b"one");
    assert_eq!(cat(&fs, "sub/b.txt"), b"bee");
    let sub = walk(&fs, "sub").unwrap();
    assert_eq!(list(&fs, sub.ino)[1].1.ino, ROOT_INODE);
    assert_eq!(walk(&fs, "acme").unwrap_err().errno(), libc::ENOENT);
    assert_eq!(fs.getattr(InodeNo(2)).unwrap_err().errno(), libc::ENOENT);
    assert_eq!(fs.getattr(InodeNo((1 << 32) + 99)).unwrap_err().errno(), libc::ENOENT);
}

#[test]
fn everything_mutating_is_erofs() {
    let env = Env::new();
    env.log("ds", &[("a.txt", b"one")], &[]);
    let fs = env.fs(REFRESH_INTERVAL);
    let file = walk(&fs, "acme/bikes/ds:v0/a.txt").unwrap().ino;
    assert_eq!(fs.open(file, true).unwrap_err().errno(), libc::EROFS);
    assert_eq!(fs.access(file, true).unwrap_err().errno(), libc::EROFS);
    fs.access(file, false).unwrap();
    let dir = walk(&fs, "acme/bikes").unwrap().ino;
    assert_eq!(fs.access(dir, true).unwrap_err().errno(), libc::EROFS);
    assert_eq!(fs.open(dir, false).unwrap_err().errno(), libc::EISDIR);
    assert_eq!(FsError::ReadOnly.errno(), libc::EROFS);
}

#[test]
fn a_tampered_blob_is_eio_and_never_cached() {
    let env = Env::new();
    env.log("ds", &[("good.txt", b"good"), ("bad.txt", b"original")], &[]);
    let blob = env.blob_file(b"original");
    std::fs::write(&blob, b"tampered").unwrap();
    let fetcher = env.fetcher();
    let fs = env.fs_with(fetcher.clone());
    let bad = walk(&fs, "acme/bikes/ds:v0/bad.txt").unwrap().ino;
    let err = open(&fs, bad).unwrap_err();
    assert_eq!(err.errno(), libc::EIO);
    let msg = err.to_string();
    assert!(msg.contains("acme/bikes/ds:v0") && msg.contains("bad.txt"), "{msg}");
    assert!(
        msg.contains(&md5_base64(b"original")) && msg.contains(&md5_base64(b"tampered")),
        "{msg}"
    );
    assert_eq!(cat(&fs, "acme/bikes/ds:v0/good.txt"), b"good");
    // The fetcher's own cache handle: another one would see its fills only once merged.
    let stats = fetcher.cache().stats().unwrap();
    assert_eq!(stats.entries, 1, "only the good entry is cached");
    assert_eq!(fs.open_files(), 0);
}

#[test]
fn a_registry_that_stops_answering_gives_eio_not_a_hang() {
    let env = Env::new();
    env.log("ds", &[("a.txt", b"stalls")], &[]);
    env.log("hang", &[("b.txt", b"never listed")], &[]);
    // FIFOs without a writer: reading them blocks forever, like a server that never answers.
    let blob = env.blob_file(b"stalls");
    std::fs::remove_file(&blob).unwrap();
    mkfifo(&blob);
    let manifest = env.manifest_file("hang", 0);
    std::fs::remove_file(&manifest).unwrap();
    mkfifo(&manifest);

    let timeout = Duration::from_millis(300);
    let fetcher = env.fetcher().with_stall_timeout(timeout);
    let options = FsOptions { registry_timeout: timeout, ..FsOptions::default() };
    let fs = ArtifactFs::registry(env.catalog(), fetcher, env.runtime.handle().clone(), options);

    let started = Instant::now();
    let file = walk(&fs, "acme/bikes/ds:v0/a.txt").unwrap().ino;
    let err = open(&fs, file).unwrap_err();
    assert_eq!(err.errno(), libc::EIO, "{err}");
    // Right after a timeout, the registry is not waited on again ...
    let err = walk(&fs, "acme/bikes/hang:v0/b.txt").unwrap_err();
    assert_eq!(err.errno(), libc::EIO, "{err}");
    assert!(matches!(err, FsError::Unresponsive { .. }), "{err}");
    // ... but asked again once the hold is over.
    std::thread::sleep(timeout);
    let err = walk(&fs, "acme/bikes/hang:v0/b.txt").unwrap_err();
    assert_eq!(err.errno(), libc::EIO, "{err}");
    assert!(matches!(err, FsError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Release the blocked readers so the runtime can shut down (a FIFO nobody reads fails
    // a non-blocking open, which is fine).
    for fifo in [&blob, &manifest] {
        use std::os::unix::fs::OpenOptionsExt as _;
        drop(std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(fifo));
    }
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

#[test]
fn entries_without_a_size_are_read_directly() {
    let env = Env::new();
    env.log("ds", &[("nosize.bin", b"0123456789")], &[]);
    // Some W&B manifests carry no sizes: take it out of the stored one.
    let path = env.manifest_file("ds", 0);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace(r#","size":10"#, "")).unwrap();
    let fs = env.fs(REFRESH_INTERVAL);
    let attr = walk(&fs, "acme/bikes/ds:v0/nosize.bin").unwrap();
    assert_eq!(attr.size, 0);
    let f = open(&fs, attr.ino).unwrap();
    assert!(f.direct_io);
    assert_eq!(read_all(&fs, f.fh), b"0123456789");
    assert_eq!(fs.getattr(attr.ino).unwrap().size, 10);
}

#[test]
fn entries_stored_with_size_0_but_not_empty_are_read_whole() {
    let env = Env::new();
    env.log("ds", &[("imported.bin", b"0123456789"), ("empty.txt", b"")], &[]);
    // How an imported manifest without sizes is stored: wandb-core (and artfs) write unknown
    // sizes as 0.
    let path = env.manifest_file("ds", 0);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace(r#""size":10"#, r#""size":0"#)).unwrap();
    let fs = env.fs(REFRESH_INTERVAL);
    let attr = walk(&fs, "acme/bikes/ds:v0/imported.bin").unwrap();
    let f = open(&fs, attr.ino).unwrap();
    assert!(f.direct_io, "the kernel must not trust a size of 0");
    assert_eq!(read_all(&fs, f.fh), b"0123456789");
    assert_eq!(fs.getattr(attr.ino).unwrap().size, 10, "learned on open");
    fs.release(f.fh);
    // A real empty file keeps its size: its digest says so.
    let empty = walk(&fs, "acme/bikes/ds:v0/empty.txt").unwrap();
    let f = open(&fs, empty.ino).unwrap();
    assert!(!f.direct_io);
    assert_eq!(read_all(&fs, f.fh), b"");
    fs.release(f.fh);
}

#[test]
fn reads_at_any_offset() {
    let env = Env::new();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    env.log("ds", &[("big", &data)], &[]);
    let fs = env.fs(REFRESH_INTERVAL);
    let f = open(&fs, walk(&fs, "acme/bikes/ds:v0/big").unwrap().ino).unwrap();
    assert!(!f.direct_io);
    for (offset, len) in [(0, 10), (299_990, 100), (300_000, 5), (400_000, 5), (12_345, 131_072)] {
        let got = read_at(&fs, f.fh, offset, len as usize).unwrap();
        let start = (offset as usize).min(data.len());
        let end = (start + len as usize).min(data.len());
        assert_eq!(got, data[start..end], "offset {offset}");
    }
    assert_eq!(fs.open_files(), 1);
    fs.release(f.fh);
    assert_eq!(fs.open_files(), 0);
}

// ---- lazy ranged reads (fetch::ranged) ----------------------------------------------------------

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

/// Waits for a lazily read file to become a complete cache entry (published in the background).
fn wait_cached(fetcher: &Fetcher, bytes: &[u8]) -> bool {
    let entry = Entry::stored(md5_base64(bytes), bytes.len() as u64);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if fetcher.is_cached(&entry) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Logs `data` as `ds:v0/big.bin` with test-sized chunks and opens it lazily.
fn open_lazy(env: &Env, data: &[u8]) -> (Fetcher, ArtifactFs, OpenFile) {
    env.log_chunked("ds", &[("big.bin", data)]);
    let fetcher = env.lazy_fetcher();
    let fs = env.fs_with(fetcher.clone());
    let f = open(&fs, walk(&fs, "acme/bikes/ds:v0/big.bin").unwrap().ino).unwrap();
    (fetcher, fs, f)
}

#[test]
fn a_random_read_of_a_large_file_fetches_only_nearby_chunks() {
    let env = Env::new();
    let data = pattern(64 * TEST_CHUNK_BYTES as usize + 123, 1);
    let (fetcher, fs, f) = open_lazy(&env, &data);
    assert_eq!(fetcher.stats().bytes_fetched, 0, "open fetches no content");
    let offset = 40 * TEST_CHUNK_BYTES + 1000;
    let got = read_at(&fs, f.fh, offset, 4096).unwrap();
    assert_eq!(got, data[offset as usize..offset as usize + 4096]);
    assert_eq!(fetcher.stats().bytes_fetched, TEST_CHUNK_BYTES, "one chunk, not the file");
    // A read across a chunk boundary needs both chunks, and nothing more (it is not sequential).
    let offset = 21 * TEST_CHUNK_BYTES - 10;
    let got = read_at(&fs, f.fh, offset, 20).unwrap();
    assert_eq!(got, data[offset as usize..offset as usize + 20]);
    assert_eq!(fetcher.stats().bytes_fetched, 3 * TEST_CHUNK_BYTES);
    // The tail of the file (a header at the end), a short last chunk.
    let tail = read_at(&fs, f.fh, data.len() as u64 - 50, 4096).unwrap();
    assert_eq!(tail, data[data.len() - 50..]);
    assert_eq!(fetcher.stats().bytes_fetched, 3 * TEST_CHUNK_BYTES + 123);
    assert!(!fetcher.is_cached(&Entry::stored(md5_base64(&data), data.len() as u64)));
    fs.release(f.fh);
}

#[test]
fn a_file_read_fully_becomes_a_complete_verified_cache_entry() {
    let env = Env::new();
    let data = pattern(20 * TEST_CHUNK_BYTES as usize + 7, 2);
    let (fetcher, fs, f) = open_lazy(&env, &data);
    // Sequential reads prefetch ahead, yet every byte still comes out right.
    assert_eq!(read_all(&fs, f.fh), data);
    assert!(wait_cached(&fetcher, &data), "published once complete");
    assert_eq!(fetcher.stats().bytes_fetched, data.len() as u64, "each chunk fetched once");
    let entry = env
        .cache()
        .entry_path(&crate::cache::CacheKey::from_md5_digest(&md5_base64(&data)).unwrap());
    assert_eq!(std::fs::read(entry).unwrap(), data);
    let left: Vec<_> = std::fs::read_dir(env.partial_dir()).unwrap().collect();
    assert!(left.is_empty(), "partial files removed after publishing: {left:?}");
    // The handle keeps working, and a new open is a plain cache hit.
    assert_eq!(read_at(&fs, f.fh, 5, 10).unwrap(), data[5..15]);
    fs.release(f.fh);
    assert_eq!(cat(&fs, "acme/bikes/ds:v0/big.bin"), data);
    assert_eq!(fetcher.stats().bytes_fetched, data.len() as u64);
}

#[test]
fn a_file_read_completely_after_a_transient_registry_error_is_still_cached() {
    let env = Env::new();
    let data = pattern(10 * TEST_CHUNK_BYTES as usize + 3, 11);
    let (fetcher, fs, f) = open_lazy(&env, &data);
    // The registry fails once: the blob is briefly gone.
    let blob = env.blob_file(&data);
    let away = blob.with_extension("away");
    std::fs::rename(&blob, &away).unwrap();
    let err = read_at(&fs, f.fh, 0, 4096).unwrap_err();
    assert_eq!(err.errno(), libc::EIO, "{err}");
    std::fs::rename(&away, &blob).unwrap();
    // Read completely, from the same handle and from a new one: published all the same.
    let deadline = Instant::now() + Duration::from_secs(20);
    let got = loop {
        let mut out = Vec::new();
        let done = loop {
            match read_at(&fs, f.fh, out.len() as u64, 64 * 1024) {
                Ok(chunk) if chunk.is_empty() => break true,
                Ok(chunk) => out.extend_from_slice(&chunk),
                Err(_) => break false,
            }
        };
        if done {
            break out;
        }
        assert!(Instant::now() < deadline, "reads keep failing after the registry is back");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(got, data);
    assert!(wait_cached(&fetcher, &data), "a completely read file is published");
    fs.release(f.fh);
}

#[test]
fn chunks_kept_from_an_earlier_open_are_verified_so_the_file_is_published() {
    let env = Env::new();
    let data = pattern(10 * TEST_CHUNK_BYTES as usize + 3, 12);
    let (fetcher, fs, f) = open_lazy(&env, &data);
    // A reader gets the first chunks, then fails (a transient registry error) and closes.
    let first = 4 * TEST_CHUNK_BYTES as usize;
    assert_eq!(read_at(&fs, f.fh, 0, first).unwrap(), data[..first]);
    fs.release(f.fh);
    let data_file = partial_data_file(&env);
    wait_for("the lazy blob let go", || {
        std::fs::File::open(&data_file).unwrap().try_lock().is_ok()
    });
    // Read again to the end, but the kernel serves the first chunks from its page cache
    // (version files keep their pages across opens): their reads never reach the daemon.
    let f = open(&fs, walk(&fs, "acme/bikes/ds:v0/big.bin").unwrap().ino).unwrap();
    let mut offset = first;
    while offset < data.len() {
        let chunk = read_at(&fs, f.fh, offset as u64, 64 * 1024).unwrap();
        assert_eq!(chunk, data[offset..offset + chunk.len()]);
        offset += chunk.len();
    }
    assert!(wait_cached(&fetcher, &data), "every chunk is present: the file is published");
    assert_eq!(fetcher.stats().bytes_fetched, data.len() as u64, "kept chunks not fetched again");
    fs.release(f.fh);
}

#[test]
fn a_corrupted_chunk_never_reaches_a_reader() {
    let env = Env::new();
    let data = pattern(8 * TEST_CHUNK_BYTES as usize, 3);
    // Opening reads only the sidecar: the blob can still be tampered with afterwards.
    let (fetcher, fs, f) = open_lazy(&env, &data);
    let blob = env.blob_file(&data);
    let mut tampered = data.clone();
    tampered[5 * TEST_CHUNK_BYTES as usize + 17] ^= 0x40;
    let mut perms = std::fs::metadata(&blob).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&blob, perms).unwrap();
    std::fs::write(&blob, &tampered).unwrap();
    let good = 2 * TEST_CHUNK_BYTES;
    assert_eq!(read_at(&fs, f.fh, good, 100).unwrap(), data[good as usize..good as usize + 100]);
    for offset in [5 * TEST_CHUNK_BYTES, 5 * TEST_CHUNK_BYTES + 17, 6 * TEST_CHUNK_BYTES - 1] {
        let err = read_at(&fs, f.fh, offset, 4096).unwrap_err();
        assert_eq!(err.errno(), libc::EIO, "{err}");
        assert!(format!("{err:#}").contains("big.bin"), "{err:#}");
    }
    // A sequential reader gets everything before the bad chunk, then EIO.
    let mut offset = 0;
    let err = loop {
        match read_at(&fs, f.fh, offset, 65_536) {
            Ok(chunk) => {
                assert_eq!(chunk, data[offset as usize..offset as usize + chunk.len()]);
                offset += chunk.len() as u64;
            }
            Err(err) => break err,
        }
    };
    assert_eq!(offset, 5 * TEST_CHUNK_BYTES);
    assert_eq!(err.errno(), libc::EIO);
    fs.release(f.fh);
    assert!(!fetcher.is_cached(&Entry::stored(md5_base64(&data), data.len() as u64)));
}

#[test]
fn a_corrupted_chunk_is_never_written_to_the_partial_file() {
    let env = Env::new();
    let data = pattern(8 * TEST_CHUNK_BYTES as usize, 13);
    let (_fetcher, fs, f) = open_lazy(&env, &data);
    let blob = env.blob_file(&data);
    let mut tampered = data.clone();
    let bad = 3 * TEST_CHUNK_BYTES as usize;
    tampered[bad + 100] ^= 0x01;
    let mut perms = std::fs::metadata(&blob).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&blob, perms).unwrap();
    std::fs::write(&blob, &tampered).unwrap();
    // A sequential reader has chunks after the bad one in flight too.
    let mut offset = 0;
    let err = loop {
        match read_at(&fs, f.fh, offset, 50_000) {
            Ok(got) => {
                assert_eq!(got, data[offset as usize..offset as usize + got.len()]);
                offset += got.len() as u64;
            }
            Err(err) => break err,
        }
    };
    assert_eq!(err.errno(), libc::EIO, "{err}");
    assert!(offset <= bad as u64);
    // Reads after it still get good chunks (fetched in the same run or again).
    let after = 5 * TEST_CHUNK_BYTES;
    assert_eq!(
        read_at(&fs, f.fh, after, 1000).unwrap(),
        data[after as usize..after as usize + 1000]
    );
    assert_eq!(read_at(&fs, f.fh, bad as u64, 10).unwrap_err().errno(), libc::EIO);
    let partial = partial_data_file(&env);
    let on_disk = std::fs::read(&partial).unwrap();
    let chunk = &on_disk[bad..bad + TEST_CHUNK_BYTES as usize];
    assert!(chunk.iter().all(|b| *b == 0), "no byte of the bad chunk was written");
    let map = std::fs::read(partial.with_extension("map")).unwrap();
    assert_eq!(map[3], 0, "nor marked written: {map:?}");
    fs.release(f.fh);
}

#[test]
fn reads_of_any_size_across_chunks_get_the_bytes_from_memory_or_disk_alike() {
    let env = Env::new();
    let data = pattern(9 * TEST_CHUNK_BYTES as usize + 1234, 17);
    let (fetcher, fs, f) = open_lazy(&env, &data);
    // Odd sizes straddle every chunk boundary; a chunk read to its end leaves memory, so
    // reading the file again serves the same bytes from the partial file.
    for len in [50_000, 3 * TEST_CHUNK_BYTES as usize + 7, 4096] {
        let mut out = Vec::new();
        loop {
            let got = read_at(&fs, f.fh, out.len() as u64, len).unwrap();
            if got.is_empty() {
                break;
            }
            out.extend_from_slice(&got);
        }
        assert!(out == data, "{len}-byte reads");
    }
    // Backwards, chunk by chunk: not sequential, every chunk already verified.
    for index in (0..10).rev() {
        let at = index * TEST_CHUNK_BYTES as usize;
        let got = read_at(&fs, f.fh, at as u64, 100).unwrap();
        assert_eq!(got, data[at..at + 100]);
    }
    assert_eq!(fetcher.stats().bytes_fetched, data.len() as u64, "each chunk fetched once");
    fs.release(f.fh);
}

/// The one partial data file of the cache (panics unless there is exactly one).
fn partial_data_file(env: &Env) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(env.partial_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "data"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[test]
fn a_lazily_read_file_is_published_by_rename_not_copied() {
    use std::os::unix::fs::MetadataExt as _;
    let env = Env::new();
    let data = pattern(12 * TEST_CHUNK_BYTES as usize + 5, 6);
    let (fetcher, fs, f) = open_lazy(&env, &data);
    read_at(&fs, f.fh, 0, 10).unwrap();
    let partial_inode = std::fs::metadata(partial_data_file(&env)).unwrap().ino();
    assert_eq!(read_all(&fs, f.fh), data);
    assert!(wait_cached(&fetcher, &data));
    let key = crate::cache::CacheKey::from_md5_digest(&md5_base64(&data)).unwrap();
    let entry = env.cache().entry_path(&key);
    assert_eq!(std::fs::metadata(&entry).unwrap().ino(), partial_inode, "renamed, not copied");
    assert_eq!(std::fs::read(&entry).unwrap(), data);
    let left: Vec<_> = std::fs::read_dir(env.partial_dir()).unwrap().collect();
    assert!(left.is_empty(), "partial files removed after publishing: {left:?}");
    assert_eq!(fetcher.stats().bytes_fetched, data.len() as u64);
    fs.release(f.fh);
}

/// Logs `data` as `ds:v0/big.bin` with a sidecar, then replaces blob and sidecar by `tampered`
/// and a sidecar recomputed over it, as someone who can write the registry could.
fn log_then_tamper_blob_and_sidecar(env: &Env, data: &[u8], tampered: &[u8]) -> Vec<u8> {
    env.log_chunked("ds", &[("big.bin", data)]);
    let blob_key = crate::registry::blob_key(&md5_base64(data)).unwrap();
    let sidecar = env.registry_dir().join(crate::store::chunks::sidecar_key(&blob_key));
    let sums = ChunkSums::of(tampered, TEST_CHUNK_BYTES, ChunkAlgo::NEW).to_json();
    overwrite(&env.blob_file(data), tampered);
    overwrite(&sidecar, &sums);
    sums
}

/// Rewrites a registry file (stored read-only) as someone who can write the registry could.
fn overwrite(path: &Path, bytes: &[u8]) {
    let mut perms = std::fs::metadata(path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(path, perms).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_sha256_sidecar_from_before_blake3_still_verifies_each_chunk() {
    use crate::store::chunks::{binding_of, sidecar_key};
    let env = Env::new();
    let data = pattern(6 * TEST_CHUNK_BYTES as usize, 9);
    env.log_chunked("ds", &[("big.bin", &data)]);
    let blob_key = crate::registry::blob_key(&md5_base64(&data)).unwrap();
    let sidecar = env.registry_dir().join(sidecar_key(&blob_key));
    let logged = std::fs::read(&sidecar).unwrap();
    assert!(logged.windows(8).any(|w| w == b"\"blake3\""), "new sidecars are BLAKE3");
    // The sidecar as artfs wrote it before, bound by the manifest as it was then.
    let old = ChunkSums::of(&data, TEST_CHUNK_BYTES, ChunkAlgo::Sha256).to_json();
    overwrite(&sidecar, &old);
    let path = env.manifest_file("ds", 0);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace(&binding_of(&logged), &binding_of(&old))).unwrap();
    // One chunk of the blob goes bad: the chunks before it are still served (each checked
    // against its SHA-256), the bad one never is.
    let bad = 4 * TEST_CHUNK_BYTES as usize + 3;
    let mut tampered = data.clone();
    tampered[bad] ^= 0x01;
    overwrite(&env.blob_file(&data), &tampered);
    let fetcher = env.lazy_fetcher();
    let fs = env.fs_with(fetcher.clone());
    let f = open(&fs, walk(&fs, "acme/bikes/ds:v0/big.bin").unwrap().ino).unwrap();
    let at = 2 * TEST_CHUNK_BYTES;
    assert_eq!(read_at(&fs, f.fh, at, 10).unwrap(), data[at as usize..at as usize + 10]);
    let err = read_at(&fs, f.fh, bad as u64, 10).unwrap_err();
    assert_eq!(err.errno(), libc::EIO, "{err}");
    assert!(!fetcher.is_cached(&Entry::stored(md5_base64(&data), data.len() as u64)));
    fs.release(f.fh);
}

#[test]
fn a_tampered_blob_with_a_recomputed_sidecar_serves_no_byte() {
    let env = Env::new();
    let data = pattern(6 * TEST_CHUNK_BYTES as usize, 7);
    let mut tampered = data.clone();
    tampered[3 * TEST_CHUNK_BYTES as usize + 1] ^= 0x01;
    log_then_tamper_blob_and_sidecar(&env, &data, &tampered);
    let fetcher = env.lazy_fetcher();
    let fs = env.fs_with(fetcher.clone());
    // The sidecar is not the one the manifest names: the file is verified whole before any
    // byte is served, and that fails.
    let ino = walk(&fs, "acme/bikes/ds:v0/big.bin").unwrap().ino;
    let err = open(&fs, ino).unwrap_err();
    assert_eq!(err.errno(), libc::EIO, "{err}");
    assert!(matches!(err, FsError::Verification { .. }), "{err}");
    assert_eq!(fs.open_files(), 0);
    assert!(!fetcher.is_cached(&Entry::stored(md5_base64(&data), data.len() as u64)));
    let left: Vec<_> = std::fs::read_dir(env.partial_dir()).unwrap().collect();
    assert!(left.is_empty(), "no chunk was even fetched lazily: {left:?}");
}

#[test]
fn a_sidecar_the_manifest_does_not_name_is_not_trusted() {
    let env = Env::new();
    let data = pattern(6 * TEST_CHUNK_BYTES as usize, 8);
    env.log_chunked("ds", &[("big.bin", &data)]);
    // As logged by artfs before sidecars were bound: the same sidecar, no binding.
    let path = env.manifest_file("ds", 0);
    let text = std::fs::read_to_string(&path).unwrap();
    let key = crate::store::chunks::BINDING_KEY;
    let unbound = regex_free_remove_extra(&text, key);
    assert_ne!(unbound, text);
    std::fs::write(&path, unbound).unwrap();
    let fetcher = env.lazy_fetcher();
    let fs = env.fs_with(fetcher.clone());
    let f = open(&fs, walk(&fs, "acme/bikes/ds:v0/big.bin").unwrap().ino).unwrap();
    assert_eq!(fetcher.stats().bytes_fetched, data.len() as u64, "whole before the first byte");
    assert_eq!(read_all(&fs, f.fh), data);
    fs.release(f.fh);
}

/// `text` without the `extra` object holding `key` (the only extra of test entries).
fn regex_free_remove_extra(text: &str, key: &str) -> String {
    let Some(start) = text.find(&format!(r#","extra":{{"{key}":"#)) else { return text.into() };
    let end = start + text[start..].find('}').unwrap() + 1;
    format!("{}{}", &text[..start], &text[end..])
}

#[test]
fn chunks_matching_a_bound_sidecar_but_not_the_manifest_are_never_published() {
    let env = Env::new();
    let data = pattern(6 * TEST_CHUNK_BYTES as usize, 7);
    let mut tampered = data.clone();
    tampered[3 * TEST_CHUNK_BYTES as usize + 1] ^= 0x01;
    let sums = log_then_tamper_blob_and_sidecar(&env, &data, &tampered);
    // A broken writer: the manifest names the sidecar of other bytes than its digest's.
    let path = env.manifest_file("ds", 0);
    let text = std::fs::read_to_string(&path).unwrap();
    let logged = crate::store::chunks::binding_of(
        &ChunkSums::of(&data, TEST_CHUNK_BYTES, ChunkAlgo::NEW).to_json(),
    );
    std::fs::write(&path, text.replace(&logged, &crate::store::chunks::binding_of(&sums))).unwrap();
    let fetcher = env.lazy_fetcher();
    let fs = env.fs_with(fetcher.clone());
    let f = open(&fs, walk(&fs, "acme/bikes/ds:v0/big.bin").unwrap().ino).unwrap();
    // Chunks are served (each matches its sidecar) until the whole file has been checked; from
    // then on every read fails.
    for index in 0..6 {
        let _ = read_at(&fs, f.fh, index * TEST_CHUNK_BYTES, 10);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let err = loop {
        match read_at(&fs, f.fh, 0, 10) {
            Err(err) => break err,
            Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(_) => panic!("reads still succeed after the whole-file check"),
        }
    };
    assert_eq!(err.errno(), libc::EIO, "{err}");
    assert!(!fetcher.is_cached(&Entry::stored(md5_base64(&data), data.len() as u64)));
    let left: Vec<_> = std::fs::read_dir(env.partial_dir()).unwrap().collect();
    assert!(left.is_empty(), "disowned partial files are dropped: {left:?}");
    fs.release(f.fh);
}

#[test]
fn partially_read_files_count_in_the_cache_size() {
    let env = Env::new();
    let data = pattern(16 * TEST_CHUNK_BYTES as usize, 8);
    let (fetcher, fs, f) = open_lazy(&env, &data);
    read_at(&fs, f.fh, 5 * TEST_CHUNK_BYTES + 3, 10).unwrap();
    // A read is answered from memory while its chunk is still being written.
    wait_for("the chunk written", || {
        fetcher.cache().stats().unwrap().partial_bytes == TEST_CHUNK_BYTES
    });
    let stats = fetcher.cache().stats().unwrap();
    let one_chunk = (0, TEST_CHUNK_BYTES, TEST_CHUNK_BYTES);
    assert_eq!((stats.entries, stats.bytes, stats.partial_bytes), one_chunk);
    // Held open, the partial file survives eviction; once closed, it goes.
    fetcher.cache().clear().unwrap();
    assert_eq!(fetcher.cache().stats().unwrap().partial_bytes, TEST_CHUNK_BYTES);
    fs.release(f.fh);
    fetcher.cache().clear().unwrap();
    let stats = fetcher.cache().stats().unwrap();
    assert_eq!((stats.entries, stats.bytes, stats.partial_bytes), (0, 0, 0));
}

#[test]
fn reopening_a_large_file_asks_for_its_sidecar_only_once() {
    let env = Env::new();
    let data = pattern(8 * TEST_CHUNK_BYTES as usize, 9);
    let (fetcher, fs, first) = open_lazy(&env, &data);
    // From now on only this process's memory of the sidecar can make an open lazy.
    let blob_key = crate::registry::blob_key(&md5_base64(&data)).unwrap();
    let sidecar = env.registry_dir().join(crate::store::chunks::sidecar_key(&blob_key));
    std::fs::remove_file(sidecar).unwrap();
    let ino = walk(&fs, "acme/bikes/ds:v0/big.bin").unwrap().ino;

    // While the file is open, a second open shares its lazy blob.
    let second = open(&fs, ino).unwrap();
    assert_eq!(fetcher.stats().bytes_fetched, 0, "lazy: nothing downloaded by the open");
    // Not at the start, so nothing is prefetched.
    let at = 3 * TEST_CHUNK_BYTES as usize + 10;
    assert_eq!(read_at(&fs, second.fh, at as u64, 5).unwrap(), data[at..at + 5]);
    fs.release(first.fh);
    fs.release(second.fh);

    // Once closed (its partial file no longer held), a new open remembers the sidecar.
    let data_file = partial_data_file(&env);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::File::open(&data_file).unwrap().try_lock().is_err() {
        assert!(Instant::now() < deadline, "the lazy blob is still held");
        std::thread::sleep(Duration::from_millis(20));
    }
    let third = open(&fs, ino).unwrap();
    assert_eq!(fetcher.stats().bytes_fetched, TEST_CHUNK_BYTES, "lazy again: no download");
    let at = 6 * TEST_CHUNK_BYTES as usize + 1;
    assert_eq!(read_at(&fs, third.fh, at as u64, 5).unwrap(), data[at..at + 5]);
    assert_eq!(fetcher.stats().bytes_fetched, 2 * TEST_CHUNK_BYTES);
    fs.release(third.fh);
}

#[test]
fn a_crash_left_chunk_map_is_only_a_hint() {
    let env = Env::new();
    let data = pattern(4 * TEST_CHUNK_BYTES as usize, 4);
    env.log_chunked("ds", &[("big.bin", &data)]);
    {
        let fs = env.fs_with(env.lazy_fetcher());
        let f = open(&fs, walk(&fs, "acme/bikes/ds:v0/big.bin").unwrap().ino).unwrap();
        read_at(&fs, f.fh, TEST_CHUNK_BYTES, 10).unwrap();
        fs.release(f.fh);
    }
    // As after a crash before the data reached the disk: the map says chunk 1 is there,
    // the data file holds something else.
    let data_file = partial_data_file(&env);
    wait_for("the chunk written and the blob let go", || {
        std::fs::File::open(&data_file).unwrap().try_lock().is_ok()
    });
    let f = std::fs::OpenOptions::new().write(true).open(&data_file).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[0u8; 100], TEST_CHUNK_BYTES).unwrap();
    let fetcher = env.lazy_fetcher();
    let fs = env.fs_with(fetcher.clone());
    let f = open(&fs, walk(&fs, "acme/bikes/ds:v0/big.bin").unwrap().ino).unwrap();
    let at = TEST_CHUNK_BYTES as usize;
    assert_eq!(read_at(&fs, f.fh, at as u64, 200).unwrap(), data[at..at + 200]);
    assert_eq!(fetcher.stats().bytes_fetched, TEST_CHUNK_BYTES, "refetched, not served");
    fs.release(f.fh);
}

#[test]
fn the_memory_budget_holds_with_64_files_open() {
    let env = Env::new();
    let files: Vec<(String, Vec<u8>)> = (0..64)
        .map(|i| (format!("f{i:02}.bin"), pattern(16 * TEST_CHUNK_BYTES as usize + i, i as u32)))
        .collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, d)| (p.as_str(), d.as_slice())).collect();
    env.log_chunked("ds", &refs);
    let budget = 3 * TEST_CHUNK_BYTES;
    let fetcher = env.lazy_fetcher().with_ranged_budget(budget);
    let fs = env.fs_with(fetcher.clone());
    let handles: Vec<_> = files
        .iter()
        .map(|(p, _)| open(&fs, walk(&fs, &format!("acme/bikes/ds:v0/{p}")).unwrap().ino).unwrap())
        .collect();
    assert_eq!(fs.open_files(), 64);
    std::thread::scope(|s| {
        for (f, (_, data)) in handles.iter().zip(&files) {
            let fs = &fs;
            s.spawn(move || assert_eq!(&read_all(fs, f.fh), data));
        }
    });
    let stats = fetcher.stats();
    assert!(stats.peak_in_flight_bytes <= budget, "{stats:?}");
    assert!(stats.peak_in_flight_bytes > 0, "{stats:?}");
    for f in handles {
        fs.release(f.fh);
    }
    for (_, data) in &files {
        assert!(wait_cached(&fetcher, data));
    }
}

#[test]
fn files_without_a_sidecar_are_fetched_whole() {
    let env = Env::new();
    let data = pattern(8 * TEST_CHUNK_BYTES as usize, 5);
    env.log("ds", &[("big.bin", &data)], &[]);
    let fetcher = env.lazy_fetcher();
    let fs = env.fs_with(fetcher.clone());
    let f = open(&fs, walk(&fs, "acme/bikes/ds:v0/big.bin").unwrap().ino).unwrap();
    assert_eq!(fetcher.stats().bytes_fetched, data.len() as u64, "whole before the first byte");
    assert_eq!(read_at(&fs, f.fh, 100, 10).unwrap(), data[100..110]);
    fs.release(f.fh);
}

// ---- sibling readahead (fs::readahead) -----------------------------------------------------------

/// Logs `n` small distinct files `d/f000…` as `acme/bikes/<name>:v0`; returns their contents.
fn log_small_files(env: &Env, name: &str, n: usize) -> Vec<(String, Vec<u8>)> {
    let files: Vec<(String, Vec<u8>)> =
        (0..n).map(|i| (format!("d/f{i:03}"), pattern(1000 + i, i as u32))).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, b)| (p.as_str(), b.as_slice())).collect();
    env.log(name, &refs, &[]);
    files
}

/// `rel` inside version 0 of `ds`, as the tests here log it.
fn in_ds(rel: &str) -> String {
    format!("acme/bikes/ds:v0/{rel}")
}

fn fs_with_readahead(env: &Env, fetcher: Fetcher, files: u32) -> ArtifactFs {
    let options = FsOptions { readahead_files: files, ..Env::options(REFRESH_INTERVAL) };
    ArtifactFs::registry(env.catalog(), fetcher, env.runtime.handle().clone(), options)
}

/// Waits up to 20 s for `done`, failing the test after that.
fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "still waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_readahead_idle(fs: &ArtifactFs) {
    wait_for("readahead to finish", || fs.readahead_idle());
}

fn cached_flags(fetcher: &Fetcher, files: &[(String, Vec<u8>)]) -> Vec<bool> {
    files
        .iter()
        .map(|(_, b)| fetcher.is_cached(&Entry::stored(md5_base64(b), b.len() as u64)))
        .collect()
}

#[test]
fn a_directory_walk_fetches_the_next_files_ahead() {
    let env = Env::new();
    let files = log_small_files(&env, "ds", 40);
    let fetcher = env.fetcher();
    let fs = fs_with_readahead(&env, fetcher.clone(), 8);
    assert_eq!(cat(&fs, &in_ds(&files[0].0)), files[0].1);
    assert_eq!(cat(&fs, &in_ds(&files[1].0)), files[1].1);
    wait_readahead_idle(&fs);
    // The second open in name order continued a walk: the next 8 came ahead, no more.
    let expected: Vec<bool> = (0..40).map(|i| i <= 9).collect();
    assert_eq!(cached_flags(&fetcher, &files), expected);
    // The rest of the walk reads the right bytes, prefetched or not, and keeps the window ahead.
    for (i, (_, bytes)) in files.iter().enumerate().skip(2).take(20) {
        assert_eq!(&cat(&fs, &in_ds(&files[i].0)), bytes, "{}", files[i].0);
    }
    wait_readahead_idle(&fs);
    let expected: Vec<bool> = (0..40).map(|i| i <= 21 + 8).collect();
    assert_eq!(cached_flags(&fetcher, &files), expected);
}

#[test]
fn opens_out_of_name_order_fetch_no_sibling_until_the_directory_counts_as_scattered() {
    let env = Env::new();
    let files = log_small_files(&env, "ds", 30);
    let fetcher = env.fetcher();
    let fs = fs_with_readahead(&env, fetcher.clone(), 8);
    // Backwards: no open follows its predecessor in name order.
    for i in [29, 28] {
        assert_eq!(cat(&fs, &in_ds(&files[i].0)), files[i].1);
    }
    wait_readahead_idle(&fs);
    let expected: Vec<bool> = (0..30).map(|i| i >= 28).collect();
    assert_eq!(cached_flags(&fetcher, &files), expected);
    // The third such open makes it a directory read in scattered order (a shuffled loader's
    // folder): all of it is fetched, with the right bytes.
    assert_eq!(cat(&fs, &in_ds(&files[3].0)), files[3].1);
    wait_readahead_idle(&fs);
    assert_eq!(cached_flags(&fetcher, &files), vec![true; 30]);
    for i in [11, 7, 15, 1] {
        assert_eq!(cat(&fs, &in_ds(&files[i].0)), files[i].1);
    }
}

#[test]
fn readahead_zero_is_off_and_broken_siblings_only_fail_their_own_open() {
    let env = Env::new();
    let files = log_small_files(&env, "ds", 12);
    let fetcher = env.fetcher();
    let off = fs_with_readahead(&env, fetcher.clone(), 0);
    for (path, bytes) in files.iter().take(6) {
        assert_eq!(&cat(&off, &in_ds(path)), bytes);
    }
    wait_readahead_idle(&off);
    let expected: Vec<bool> = (0..12).map(|i| i < 6).collect();
    assert_eq!(cached_flags(&fetcher, &files), expected);

    // A tampered sibling: readahead fails quietly, nothing wrong is cached, and the open of that
    // file still reports the error itself.
    std::fs::write(env.blob_file(&files[8].1), b"tampered").unwrap();
    let on = fs_with_readahead(&env, fetcher.clone(), 8);
    assert_eq!(cat(&on, &in_ds(&files[6].0)), files[6].1);
    assert_eq!(cat(&on, &in_ds(&files[7].0)), files[7].1);
    wait_readahead_idle(&on);
    let expected: Vec<bool> = (0..12).map(|i| i != 8).collect();
    assert_eq!(cached_flags(&fetcher, &files), expected);
    let tampered = walk(&on, &in_ds(&files[8].0)).unwrap().ino;
    assert_eq!(open(&on, tampered).unwrap_err().errno(), libc::EIO);
}

#[test]
fn unsafe_manifest_paths_are_refused() {
    // A manifest put into the registry by another tool, with entry paths that would escape the
    // version directory: the version is never shown as a tree, and entering it is EIO.
    let env = Env::new();
    env.log("ds", &[("a.txt", b"one")], &[]);
    let file = env.manifest_file("ds", 0);
    let good = std::fs::read_to_string(&file).unwrap();
    for bad in ["../escape.txt", "/etc/passwd", "a/./b", "a//b"] {
        std::fs::remove_file(&file).unwrap();
        std::fs::write(&file, good.replace("\"a.txt\"", &format!("{bad:?}"))).unwrap();
        let fs = env.fs(REFRESH_INTERVAL);
        let v0 = walk(&fs, "acme/bikes/ds:v0").unwrap();
        assert_eq!(fs.opendir(v0.ino).unwrap_err().errno(), libc::EIO, "{bad}");
        assert_eq!(fs.lookup(v0.ino, "a.txt").unwrap_err().errno(), libc::EIO, "{bad}");
    }
}

/// A catalog whose listings (projects, collections, a collection's versions) all fail, as a
/// W&B server that does not answer those queries; names asked for one by one still answer.
#[derive(Debug)]
struct ListingsFail {
    inner: Arc<dyn Catalog>,
    resolves: std::sync::atomic::AtomicUsize,
}

fn refused<'a, T: Send + 'a>(what: &str) -> crate::source::SourceFuture<'a, T> {
    let err = crate::source::SourceError::Backend(format!("{what}: query refused").into());
    Box::pin(async move { Err(err) })
}

impl Catalog for ListingsFail {
    fn url(&self) -> &str {
        self.inner.url()
    }
    fn entities(&self) -> crate::source::SourceFuture<'_, Vec<String>> {
        self.inner.entities()
    }
    fn projects<'a>(&'a self, _: &'a str) -> crate::source::SourceFuture<'a, Vec<String>> {
        refused("projects")
    }
    fn collections<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> crate::source::SourceFuture<'a, Vec<String>> {
        refused("collections")
    }
    fn collection<'a>(
        &'a self,
        _: &'a CollectionPath,
    ) -> crate::source::SourceFuture<'a, CollectionView> {
        refused("versions")
    }
    fn existing_collection<'a>(
        &'a self,
        _: &'a CollectionPath,
    ) -> crate::source::SourceFuture<'a, CollectionView> {
        refused("versions")
    }
    fn resolve<'a>(
        &'a self,
        c: &'a CollectionPath,
        s: &'a Selector,
    ) -> crate::source::SourceFuture<'a, crate::source::ResolvedVersion> {
        self.resolves.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.resolve(c, s)
    }
    fn manifest_bytes<'a>(
        &'a self,
        c: &'a CollectionPath,
        v: &'a crate::source::VersionInfo,
    ) -> crate::source::SourceFuture<'a, bytes::Bytes> {
        self.inner.manifest_bytes(c, v)
    }
    fn blobs(
        &self,
        c: &CollectionPath,
        v: &crate::source::VersionInfo,
    ) -> Arc<dyn crate::source::BlobSource> {
        self.inner.blobs(c, v)
    }
    fn project_exists<'a>(
        &'a self,
        e: &'a str,
        p: &'a str,
    ) -> crate::source::SourceFuture<'a, bool> {
        // The registry's own answer, by its listing: what a source asks by name.
        self.inner.project_exists(e, p)
    }
}

#[test]
fn names_are_asked_for_by_name_when_listings_fail_and_a_miss_not_again_at_once() {
    let env = Env::new();
    env.log("ds", &[("a.txt", b"one")], &[]);
    env.log("ds", &[("a.txt", b"two")], &["best"]);
    let catalog = Arc::new(ListingsFail { inner: env.catalog(), resolves: Default::default() });
    let handle = env.runtime.handle().clone();
    let options = Env::options(REFRESH_INTERVAL);
    let fs = ArtifactFs::registry(catalog.clone(), env.fetcher(), handle, options);
    assert_eq!(walk(&fs, "acme/bikes").unwrap().kind, FileKind::Directory);
    assert_eq!(walk(&fs, "acme/nothing").unwrap_err().errno(), libc::ENOENT);
    let best = walk(&fs, "acme/bikes/ds:best").unwrap();
    assert_eq!(fs.readlink(best.ino).unwrap(), "ds:v1");
    assert_eq!(cat(&fs, "acme/bikes/ds:v1/a.txt"), b"two");
    assert_eq!(cat(&fs, "acme/bikes/ds:v0/a.txt"), b"one");
    let resolves = || catalog.resolves.load(std::sync::atomic::Ordering::SeqCst);
    let (before, started) = (resolves(), Instant::now());
    for _ in 0..3 {
        let err = walk(&fs, "acme/bikes/ghost:latest").unwrap_err();
        assert_eq!(err.errno(), libc::ENOENT);
    }
    // (A machine too slow for three lookups within the interval proves nothing here.)
    if started.elapsed() < MISS_REREAD_AFTER {
        assert_eq!(resolves(), before + 1, "a miss is asked once per {MISS_REREAD_AFTER:?}");
    }
    let seen = resolves();
    std::thread::sleep(MISS_REREAD_AFTER);
    assert!(walk(&fs, "acme/bikes/ghost:latest").is_err());
    assert_eq!(resolves(), seen + 1, "and again after it");
}

/// The first `name:latest` looked up in a project reads the project's other collections and
/// their small versions' manifests ahead (`heads.rs`): afterwards they open with their log and
/// the manifests gone from the registry.
#[test]
fn a_lookup_reads_the_rest_of_its_project_ahead() {
    let env = Env::new();
    for name in ["a", "b", "c"] {
        env.log(name, &[("f.txt", name.as_bytes())], &[]);
    }
    let fs = env.fs(Duration::from_secs(600));
    walk(&fs, "acme/bikes/a:latest").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lock(&fs.inner.warmed).values().all(Option::is_some) {
        assert!(Instant::now() < deadline, "reading ahead did not finish");
        std::thread::sleep(Duration::from_millis(10));
    }
    for gone in ["collections/acme/bikes/b", "collections/acme/bikes/c", "manifests"] {
        std::fs::remove_dir_all(env.registry_dir().join(gone)).unwrap();
    }
    let latest = walk(&fs, "acme/bikes/b:latest").unwrap().ino;
    assert_eq!(fs.readlink(latest).unwrap(), "b:v0");
    assert_eq!(cat(&fs, "acme/bikes/b:v0/f.txt"), b"b");
    assert_eq!(cat(&fs, "acme/bikes/c:v0/f.txt"), b"c");
}
