use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::{Digest as _, Md5};

use super::*;

fn md5_key(content: &[u8]) -> CacheKey {
    CacheKey::Md5(Md5::digest(content).into())
}

fn open_cache(max_bytes: u64) -> (tempfile::TempDir, BlobCache) {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::open(dir.path(), max_bytes).unwrap();
    (dir, cache)
}

fn write_all(content: &[u8]) -> impl FnOnce(&mut dyn Write) -> Result<(), FetchError> + '_ {
    move |out| Ok(out.write_all(content)?)
}

/// Fills `content` under its MD5 key and drops the handle.
fn fill(cache: &BlobCache, content: &[u8]) -> CacheKey {
    let key = md5_key(content);
    let size = Some(content.len() as u64);
    cache.get_or_fill(&key, &key.default_verify(), size, write_all(content)).unwrap();
    key
}

fn read_blob(blob: &CachedBlob) -> Vec<u8> {
    let mut content = vec![0; blob.len() as usize];
    blob.file().read_exact_at(&mut content, 0).unwrap();
    content
}

fn set_age(path: &Path, age: Duration) {
    let file = fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().path()).collect()
}

#[test]
fn layout_golden() {
    // Values recorded from the W&B SDK's own cache (tests/fixtures/wandb/outputs).
    let cases = [
        (
            CacheKey::from_md5_digest("b1kCrCNwJL3QwXbLkwY9xA==").unwrap(),
            "v1/obj/md5/6f/5902ac237024bdd0c176cb93063dc4",
        ),
        (
            CacheKey::from_md5_digest("1B2M2Y8AsgTpgAmY7PhCfg==").unwrap(),
            "v1/obj/md5/d4/1d8cd98f00b204e9800998ecf8427e",
        ),
        (
            CacheKey::from_reference(
                "s3://plain-bucket/single.txt",
                "f6a55cae6bfb7626fbb65b0c9f13231e",
            ),
            "v1/obj/etag/44/87d90628f9ab9d3b43a1fafc12e1e69a090eb3e186585f1c34dcdb9dcdbdc6",
        ),
        (
            CacheKey::from_reference(
                "http://127.0.0.1:18765/etag.txt",
                "5d41402abc4b2a76b9719d911017c592",
            ),
            "v1/obj/etag/54/0710f4f5df5f6413bc1b41e4a5238fa61df83d4532415039b5281876e8bd95",
        ),
        (
            CacheKey::from_xxh128_digest("b1kCrCNwJL3QwXbLkwY9xA==").unwrap(),
            "v1/obj/xxh128/6f/5902ac237024bdd0c176cb93063dc4",
        ),
    ];
    let (dir, cache) = open_cache(DEFAULT_MAX_BYTES);
    for (key, expected) in cases {
        assert_eq!(Path::new(LAYOUT_VERSION).join(key.relative_path()), Path::new(expected));
        assert_eq!(cache.entry_path(&key), dir.path().join(expected));
    }
}

#[test]
fn digest_constructors_reject_bad_input() {
    assert!(matches!(
        CacheKey::from_md5_digest("not base64!"),
        Err(CacheError::DigestEncoding { kind: "md5", .. })
    ));
    assert!(matches!(
        CacheKey::from_xxh128_digest("AAAA"),
        Err(CacheError::DigestLength { kind: "xxh128", len: 3, .. })
    ));
    let key = CacheKey::from_md5_digest("b1kCrCNwJL3QwXbLkwY9xA==").unwrap();
    assert_eq!(key.to_string(), "md5:b1kCrCNwJL3QwXbLkwY9xA==");
}

#[test]
fn xxh128_fill_verifies_big_endian_digest() {
    let (_dir, cache) = open_cache(DEFAULT_MAX_BYTES);
    let content = b"xxh content";
    let digest = BASE64.encode(xxhash_rust::xxh3::xxh3_128(content).to_be_bytes());
    let key = CacheKey::from_xxh128_digest(&digest).unwrap();
    let blob = cache.get_or_fill(&key, &key.default_verify(), None, write_all(content)).unwrap();
    assert_eq!(read_blob(&blob), content);
}

#[test]
fn hit_and_miss_are_counted() {
    let (_dir, cache) = open_cache(DEFAULT_MAX_BYTES);
    let content = b"hello world";
    let key = md5_key(content);
    let verify = key.default_verify();
    assert!(cache.get(&key).is_none());

    let fetches = AtomicUsize::new(0);
    let fetch = |out: &mut dyn Write| -> Result<(), FetchError> {
        fetches.fetch_add(1, Ordering::SeqCst);
        Ok(out.write_all(content)?)
    };
    let filled = cache.get_or_fill(&key, &verify, Some(11), fetch).unwrap();
    assert_eq!((filled.len(), read_blob(&filled)), (11, content.to_vec()));
    assert_eq!(filled.path(), cache.entry_path(&key));
    let again = cache.get_or_fill(&key, &verify, Some(11), |_| panic!("must not fetch")).unwrap();
    let mut buf = [0; 5];
    assert_eq!(again.read_at(&mut buf, 6).unwrap(), 5);
    assert_eq!(&buf, b"world");
    assert!(cache.get(&key).is_some());
    assert_eq!(fetches.load(Ordering::SeqCst), 1);

    let stats = cache.stats().unwrap();
    assert_eq!((stats.hits, stats.misses, stats.entries, stats.bytes), (2, 2, 1, 11));
}

#[test]
fn digest_mismatch_publishes_nothing() {
    let (_dir, cache) = open_cache(DEFAULT_MAX_BYTES);
    let key = md5_key(b"expected");
    let err =
        cache.get_or_fill(&key, &key.default_verify(), None, write_all(b"tampered")).unwrap_err();
    let CacheError::DigestMismatch { expected, actual, .. } = &err else { panic!("{err:?}") };
    assert_eq!(expected, &BASE64.encode(Md5::digest(b"expected")));
    assert_eq!(actual, &BASE64.encode(Md5::digest(b"tampered")));
    assert!(err.to_string().contains(expected.as_str()));
    assert!(cache.get(&key).is_none());
    assert!(!cache.entry_path(&key).exists());
    assert!(files_in(&cache.inner.tmp_dir).is_empty());
    assert_eq!(cache.stats().unwrap().entries, 0);
}

/// Fills large enough to be hashed on their own thread check the same digest.
#[test]
fn large_fills_hashed_beside_the_writes_publish_only_what_matches() {
    let (_dir, cache) = open_cache(DEFAULT_MAX_BYTES);
    let content: Vec<u8> = (0..9u32 << 20).map(|i| (i % 253) as u8).collect();
    let key = md5_key(&content);
    let size = Some(content.len() as u64);
    let mut tampered = content.clone();
    tampered[5 << 20] ^= 1;
    let err =
        cache.get_or_fill(&key, &key.default_verify(), size, write_all(&tampered)).unwrap_err();
    assert!(matches!(err, CacheError::DigestMismatch { .. }), "{err:?}");
    assert!(cache.get(&key).is_none());
    let blob = cache.get_or_fill(&key, &key.default_verify(), size, write_all(&content)).unwrap();
    assert_eq!(read_blob(&blob), content);
}

#[test]
fn size_mismatch_publishes_nothing() {
    let (_dir, cache) = open_cache(DEFAULT_MAX_BYTES);
    let key = CacheKey::from_reference("s3://bucket/a.bin", "etag-1");
    let err = cache.get_or_fill(&key, &Verify::SizeOnly, Some(4), write_all(b"abc")).unwrap_err();
    assert!(matches!(err, CacheError::SizeMismatch { expected: 4, actual: 3, .. }), "{err:?}");
    assert!(!cache.entry_path(&key).exists());
    assert!(files_in(&cache.inner.tmp_dir).is_empty());
}

#[derive(Debug, thiserror::Error)]
#[error("remote said no")]
struct RemoteRefused;

#[test]
fn fetch_error_keeps_its_source() {
    let (_dir, cache) = open_cache(DEFAULT_MAX_BYTES);
    let key = md5_key(b"x");
    let err = cache
        .get_or_fill(&key, &key.default_verify(), None, |out| {
            out.write_all(b"partial")?;
            Err(RemoteRefused.into())
        })
        .unwrap_err();
    let CacheError::Fetch { source, .. } = &err else { panic!("{err:?}") };
    assert!(source.downcast_ref::<RemoteRefused>().is_some());
    assert!(!cache.entry_path(&key).exists());
    assert!(files_in(&cache.inner.tmp_dir).is_empty());
}

#[test]
fn full_disk_is_reported_as_disk_full() {
    let key = md5_key(b"x");
    // /dev/full fails every write with ENOSPC, like a full cache filesystem would.
    let device = fs::File::options().write(true).open("/dev/full").unwrap();
    let mut writer = FillWriter::new(&device, &key.default_verify(), None);
    let fetched: Result<(), FetchError> = writer.write_all(b"data").map_err(Into::into);
    assert!(fetched.is_err());
    let source = writer.disk_full.take().unwrap();
    let err = CacheError::DiskFull { key, path: "/x".into(), source };
    assert!(err.to_string().starts_with("no space left on device"));
    assert!(matches!(
        CacheError::fill_io(&key, "write", Path::new("/x"), io::ErrorKind::StorageFull.into()),
        CacheError::DiskFull { .. }
    ));
}

#[test]
fn concurrent_threads_fetch_once() {
    let (_dir, cache) = open_cache(DEFAULT_MAX_BYTES);
    let content = b"shared content";
    let key = md5_key(content);
    let fetches = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(8));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (cache, fetches, start) = (cache.clone(), fetches.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                let blob = cache
                    .get_or_fill(&key, &key.default_verify(), None, |out| {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        thread::sleep(Duration::from_millis(100));
                        Ok(out.write_all(content)?)
                    })
                    .unwrap();
                read_blob(&blob)
            })
        })
        .collect();
    for worker in workers {
        assert_eq!(worker.join().unwrap(), content);
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    let stats = cache.stats().unwrap();
    assert_eq!((stats.misses, stats.hits), (1, 7));
}

const CHILD_ROLE_ENV: &str = "ARTFS_CACHE_TEST_ROLE";
const CHILD_DIR_ENV: &str = "ARTFS_CACHE_TEST_DIR";
const CHILD_CONTENT: &[u8] = b"content fetched by a child process";

/// Re-runs this test binary as a helper process (see `child_process_role`).
fn spawn_child(role: &str, dir: &Path) -> Child {
    let module = module_path!().split_once("::").map_or(module_path!(), |(_, rest)| rest);
    Command::new(std::env::current_exe().unwrap())
        .args([&format!("{module}::child_process_role"), "--exact", "--test-threads=1"])
        .env(CHILD_ROLE_ENV, role)
        .env(CHILD_DIR_ENV, dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// No-op in a normal run; the body of a helper process otherwise.
#[test]
fn child_process_role() {
    let Ok(role) = std::env::var(CHILD_ROLE_ENV) else {
        return;
    };
    let dir = PathBuf::from(std::env::var_os(CHILD_DIR_ENV).unwrap());
    let cache = BlobCache::open(&dir.join("cache"), DEFAULT_MAX_BYTES).unwrap();
    let key = md5_key(CHILD_CONTENT);
    let blob = cache
        .get_or_fill(&key, &key.default_verify(), None, |out| {
            let mut log =
                fs::File::options().create(true).append(true).open(dir.join("fetches"))?;
            log.write_all(b"fetch\n")?;
            out.write_all(&CHILD_CONTENT[..10])?;
            out.flush()?;
            if role == "crash" {
                std::process::abort();
            }
            // Long enough for the sibling process to arrive and queue on the key lock.
            thread::sleep(Duration::from_millis(300));
            Ok(out.write_all(&CHILD_CONTENT[10..])?)
        })
        .unwrap();
    assert_eq!(read_blob(&blob), CHILD_CONTENT);
}

#[test]
fn two_processes_fetch_once() {
    let dir = tempfile::tempdir().unwrap();
    let children = [spawn_child("fill", dir.path()), spawn_child("fill", dir.path())];
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    assert_eq!(fs::read_to_string(dir.path().join("fetches")).unwrap(), "fetch\n");
    let cache = BlobCache::open(&dir.path().join("cache"), DEFAULT_MAX_BYTES).unwrap();
    let stats = cache.stats().unwrap();
    assert_eq!((stats.entries, stats.misses, stats.hits), (1, 1, 1));
}

#[test]
fn crashed_fill_is_invisible_and_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_child("crash", dir.path());
    assert!(!child.wait().unwrap().success());
    let cache_dir = dir.path().join("cache");
    let cache = BlobCache::open(&cache_dir, DEFAULT_MAX_BYTES).unwrap();
    let key = md5_key(CHILD_CONTENT);
    assert!(cache.get(&key).is_none());
    let leftovers = files_in(&cache.inner.tmp_dir);
    assert_eq!(leftovers.len(), 1, "young leftovers are spared");

    // A fill still running in this process must survive the cleanup, however old its file.
    let live = TempBlob::create(&cache.inner.tmp_dir, "live").unwrap();
    set_age(live.path(), STALE_TEMP_AGE * 2);
    set_age(&leftovers[0], STALE_TEMP_AGE * 2);
    drop(cache);
    let cache = BlobCache::open(&cache_dir, DEFAULT_MAX_BYTES).unwrap();
    assert_eq!(files_in(&cache.inner.tmp_dir), vec![live.path().to_path_buf()]);
    drop(live);

    // The dead filler's key lock does not block the next fill.
    let blob =
        cache.get_or_fill(&key, &key.default_verify(), None, write_all(CHILD_CONTENT)).unwrap();
    assert_eq!(read_blob(&blob), CHILD_CONTENT);
    assert!(files_in(&cache.inner.tmp_dir).is_empty());
}

#[test]
fn lru_entry_is_evicted_first() {
    let (_dir, cache) = open_cache(350);
    let a = fill(&cache, &[b'a'; 100]);
    let b = fill(&cache, &[b'b'; 100]);
    let c = fill(&cache, &[b'c'; 100]);
    for (key, age) in [(a, 30), (b, 20), (c, 10)] {
        set_age(&cache.entry_path(&key), Duration::from_secs(age));
    }
    // Using the oldest entry makes it the most recently used.
    drop(cache.get(&a).unwrap());
    let d = fill(&cache, &[b'd'; 100]);
    assert!(cache.get(&b).is_none());
    for key in [a, c, d] {
        assert!(cache.get(&key).is_some(), "{key} evicted");
    }
    let stats = cache.stats().unwrap();
    assert_eq!((stats.entries, stats.bytes, stats.evictions), (3, 300, 1));
}

#[test]
fn open_blob_is_not_evicted() {
    let (_dir, cache) = open_cache(250);
    let a_content = [b'a'; 100];
    let a = fill(&cache, &a_content);
    let held = cache.get(&a).unwrap();
    let b = fill(&cache, &[b'b'; 100]);
    set_age(&cache.entry_path(&a), Duration::from_secs(30));
    set_age(&cache.entry_path(&b), Duration::from_secs(20));
    let c = fill(&cache, &[b'c'; 100]);
    assert!(cache.entry_path(&a).exists(), "entry in use was evicted");
    assert!(!cache.entry_path(&b).exists());
    assert!(cache.entry_path(&c).exists());
    assert_eq!(read_blob(&held), a_content);

    let report = cache.clear().unwrap();
    assert_eq!((report.evicted_entries, report.in_use_entries), (1, 1));
    drop(held);
    assert_eq!(cache.clear().unwrap().evicted_entries, 1);
}

#[test]
fn stats_persist_across_instances() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cache = BlobCache::open(dir.path(), DEFAULT_MAX_BYTES).unwrap();
        let key = fill(&cache, b"persisted");
        assert!(cache.get(&key).is_some());
        assert!(cache.get(&md5_key(b"absent")).is_none());
    }
    let cache = BlobCache::open(dir.path(), DEFAULT_MAX_BYTES).unwrap();
    let stats = cache.stats().unwrap();
    assert_eq!((stats.entries, stats.bytes, stats.hits, stats.misses), (1, 9, 1, 2));
    assert_eq!((stats.dir.as_path(), stats.max_bytes), (dir.path(), DEFAULT_MAX_BYTES));

    // A lost ledger is rebuilt from the entries themselves.
    fs::remove_file(cache.dir().join("v1/stats.json")).unwrap();
    let stats = cache.stats().unwrap();
    assert_eq!((stats.entries, stats.bytes, stats.hits), (1, 9, 0));
}

#[test]
fn prune_and_clear() {
    let (_dir, cache) = open_cache(DEFAULT_MAX_BYTES);
    let keys: Vec<_> = (0..4u8).map(|i| fill(&cache, &[i; 50])).collect();
    for (age, key) in (1..).zip(keys.iter().rev()) {
        set_age(&cache.entry_path(key), Duration::from_secs(age * 10));
    }
    let report = cache.prune(120).unwrap();
    assert_eq!(
        report,
        PruneReport {
            evicted_entries: 2,
            evicted_bytes: 100,
            in_use_entries: 0,
            remaining_entries: 2,
            remaining_bytes: 100,
            partial_bytes: 0,
        }
    );
    assert!(!cache.entry_path(&keys[0]).exists() && !cache.entry_path(&keys[1]).exists());
    assert!(cache.entry_path(&keys[2]).exists() && cache.entry_path(&keys[3]).exists());

    let report = cache.clear().unwrap();
    assert_eq!((report.evicted_entries, report.remaining_bytes), (2, 0));
    let stats = cache.stats().unwrap();
    assert_eq!((stats.entries, stats.bytes, stats.evictions), (0, 0, 4));
}

#[test]
fn entry_of_wrong_size_is_refetched() {
    let (_dir, cache) = open_cache(DEFAULT_MAX_BYTES);
    let content = b"complete content";
    let key = fill(&cache, content);
    // What a power loss before writeback can leave behind.
    let path = cache.entry_path(&key);
    fs::remove_file(&path).unwrap();
    fs::write(&path, b"").unwrap();
    let blob =
        cache.get_or_fill(&key, &key.default_verify(), Some(16), write_all(content)).unwrap();
    assert_eq!(read_blob(&blob), content);
    assert_eq!(cache.stats().unwrap().entries, 1);
    // The estimate cannot know the truncation happened; a recount makes it exact.
    cache.prune(u64::MAX).unwrap();
    assert_eq!(cache.stats().unwrap().bytes, 16);
}

#[test]
fn published_entries_are_read_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let (_dir, cache) = open_cache(DEFAULT_MAX_BYTES);
    let key = fill(&cache, b"immutable");
    let mode = fs::metadata(cache.entry_path(&key)).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, Layout::Artfs.entry_mode());
    assert!(cache.inner.dir.join("CACHEDIR.TAG").exists());
}

#[test]
fn handles_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<BlobCache>();
    assert_send_sync::<CachedBlob>();
    assert_send_sync::<CacheError>();
}

#[test]
fn default_limit_is_bounded_by_the_free_disk() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("not/yet/created");
    let limit = default_max_bytes(&missing);
    assert!((MIN_DEFAULT_MAX_BYTES..=DEFAULT_MAX_BYTES).contains(&limit), "{limit}");
    let free = rustix::fs::statvfs(dir.path()).map(|s| s.f_bavail * s.f_frsize).unwrap();
    assert!(limit <= (free / 2).max(MIN_DEFAULT_MAX_BYTES), "{limit} vs free {free}");
}

/// A complete partial file of `content` in chunks of `chunk_bytes`, as `fetch::ranged` leaves it.
fn write_partial(
    cache: &BlobCache,
    key: &CacheKey,
    content: &[u8],
    chunk_bytes: usize,
) -> PartialFile {
    let chunks = content.len().div_ceil(chunk_bytes);
    let partial = cache.partial(key, content.len() as u64, chunks).unwrap();
    for (index, piece) in content.chunks(chunk_bytes).enumerate() {
        partial.write_chunk(index, (index * chunk_bytes) as u64, piece).unwrap();
    }
    partial
}

fn inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    fs::metadata(path).unwrap().ino()
}

fn some_content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn a_complete_partial_file_is_renamed_not_copied() {
    use std::os::unix::fs::PermissionsExt as _;
    let (_dir, cache) = open_cache(DEFAULT_MAX_BYTES);
    let content = some_content(10_000);
    let key = md5_key(&content);
    let partial = write_partial(&cache, &key, &content, 4096);
    let data_inode = inode(partial.data_path());

    assert_eq!(cache.adopt(&partial, &key.default_verify()).unwrap(), Adopted::Renamed);
    let entry = cache.entry_path(&key);
    assert_eq!(inode(&entry), data_inode, "the data file itself became the entry");
    assert_eq!(fs::read(&entry).unwrap(), content);
    assert_eq!(
        fs::metadata(&entry).unwrap().permissions().mode() & 0o777,
        Layout::Artfs.entry_mode()
    );
    assert!(files_in(&cache.inner.partial_dir).is_empty(), "map and data names are gone");
    assert!(files_in(&cache.inner.tmp_dir).is_empty(), "no copy was written");
    let stats = cache.stats().unwrap();
    assert_eq!((stats.entries, stats.bytes, stats.misses), (1, 10_000, 1));

    // The partial handle reads on, and keeps the entry in use like any open entry.
    let mut head = [0u8; 16];
    partial.read_exact_at(&mut head, 0).unwrap();
    assert_eq!(head, content[..16]);
    assert_eq!(cache.clear().unwrap().in_use_entries, 1);
    drop(partial);
    assert_eq!(cache.clear().unwrap().evicted_entries, 1);
}

#[test]
fn a_partial_file_failing_the_digest_is_never_published() {
    let (_dir, cache) = open_cache(DEFAULT_MAX_BYTES);
    let content = some_content(10_000);
    // Chunks that matched their sidecar, but not the manifest's digest.
    let key = md5_key(b"what the manifest says");
    let partial = write_partial(&cache, &key, &content, 4096);
    let err = cache.adopt(&partial, &key.default_verify()).unwrap_err();
    assert!(matches!(err, CacheError::DigestMismatch { .. }), "{err:?}");
    assert!(!cache.entry_path(&key).exists());
    assert!(cache.get(&key).is_none());
    assert!(files_in(&cache.inner.partial_dir).is_empty(), "disowned partial files are dropped");
    assert_eq!(cache.stats().unwrap().entries, 0);
}

#[test]
fn a_late_holder_removes_neither_the_entry_nor_a_newer_partial_file() {
    let (_dir, cache) = open_cache(DEFAULT_MAX_BYTES);
    let content = some_content(10_000);
    let key = md5_key(&content);
    let verify = key.default_verify();
    let first = write_partial(&cache, &key, &content, 4096);
    // Another process reading the same file holds the same data file.
    let second = cache.partial(&key, 10_000, 3).unwrap();
    let data_inode = inode(first.data_path());
    assert_eq!(inode(second.data_path()), data_inode);

    assert_eq!(cache.adopt(&first, &verify).unwrap(), Adopted::Renamed);
    // A reader arriving now starts a new partial file under the same name.
    let newer = cache.partial(&key, 10_000, 3).unwrap();
    assert_ne!(inode(newer.data_path()), data_inode);
    assert_eq!(cache.adopt(&second, &verify).unwrap(), Adopted::AlreadyCached);
    assert_eq!(inode(&cache.entry_path(&key)), data_inode, "the entry survives");
    assert_eq!(files_in(&cache.inner.partial_dir).len(), 2, "the newer data and map survive");
    // Eviction drops the newer partial files only once unused.
    cache.clear().unwrap();
    assert_eq!(files_in(&cache.inner.partial_dir).len(), 2);
    drop(newer);
    cache.clear().unwrap();
    assert!(files_in(&cache.inner.partial_dir).is_empty());
}

#[test]
fn a_partial_file_that_lost_its_name_is_copied() {
    let (_dir, cache) = open_cache(DEFAULT_MAX_BYTES);
    let content = some_content(10_000);
    let key = md5_key(&content);
    let partial = write_partial(&cache, &key, &content, 4096);
    // As after someone wiped the partial directory under a running reader.
    fs::remove_file(partial.data_path()).unwrap();
    assert_eq!(cache.adopt(&partial, &key.default_verify()).unwrap(), Adopted::Copied);
    assert_eq!(fs::read(cache.entry_path(&key)).unwrap(), content);
    assert!(files_in(&cache.inner.partial_dir).is_empty());
}

#[test]
fn partial_bytes_count_until_they_move_to_the_entry() {
    let (_dir, cache) = open_cache(DEFAULT_MAX_BYTES);
    let chunk = 16 * 1024;
    let content = some_content(4 * chunk);
    let key = md5_key(&content);
    let partial = cache.partial(&key, content.len() as u64, 4).unwrap();
    for index in [0, 3] {
        let range = index * chunk..(index + 1) * chunk;
        partial.write_chunk(index, range.start as u64, &content[range]).unwrap();
    }
    let stats = cache.stats().unwrap();
    let written = 2 * chunk as u64;
    assert_eq!((stats.entries, stats.bytes, stats.partial_bytes), (0, written, written));
    // A recount from the disk agrees (4 KiB blocks: the chunks are block-aligned).
    cache.prune(u64::MAX).unwrap();
    let stats = cache.stats().unwrap();
    assert_eq!((stats.bytes, stats.partial_bytes), (written, written));

    for index in [1, 2] {
        let range = index * chunk..(index + 1) * chunk;
        partial.write_chunk(index, range.start as u64, &content[range]).unwrap();
    }
    assert_eq!(cache.adopt(&partial, &key.default_verify()).unwrap(), Adopted::Renamed);
    let stats = cache.stats().unwrap();
    let len = content.len() as u64;
    assert_eq!((stats.entries, stats.bytes, stats.partial_bytes), (1, len, 0), "counted once");
    cache.prune(u64::MAX).unwrap();
    let stats = cache.stats().unwrap();
    assert_eq!((stats.entries, stats.bytes, stats.partial_bytes), (1, len, 0));
}

#[test]
fn dropped_partial_files_stop_counting() {
    let (_dir, cache) = open_cache(DEFAULT_MAX_BYTES);
    let content = some_content(8192);
    // Disowned by the manifest: dropped at once.
    let disowned = write_partial(&cache, &md5_key(b"other"), &content, 4096);
    cache.adopt(&disowned, &md5_key(b"other").default_verify()).unwrap_err();
    assert_eq!(cache.stats().unwrap().partial_bytes, 0);
    // Abandoned (the reader went away): dropped by the next eviction pass.
    drop(write_partial(&cache, &md5_key(&content), &content, 4096));
    assert_eq!(cache.stats().unwrap().partial_bytes, 8192);
    let report = cache.prune(u64::MAX).unwrap();
    assert_eq!((report.remaining_bytes, report.partial_bytes), (0, 0));
    assert!(files_in(&cache.inner.partial_dir).is_empty());
    assert_eq!(cache.stats().unwrap().bytes, 0);
}

/// Three 50 KiB entries, the first the least recently used.
fn three_aged_entries(cache: &BlobCache) -> Vec<CacheKey> {
    let old: Vec<_> = (0..3u8).map(|i| fill(cache, &[i; 50 * 1024])).collect();
    for (age, key) in (1..).zip(old.iter().rev()) {
        set_age(&cache.entry_path(key), Duration::from_secs(age * 10));
    }
    old
}

/// The partial file of a 256 KiB blob with its first 64 KiB chunk written, as a reader of a
/// large file's header leaves it.
fn partial_with_one_chunk(cache: &BlobCache) -> PartialFile {
    let content = some_content(256 * 1024);
    let partial = cache.partial(&md5_key(&content), content.len() as u64, 4).unwrap();
    partial.write_chunk(0, 0, &content[..64 * 1024]).unwrap();
    partial
}

#[test]
fn partial_files_in_use_push_entries_out() {
    let (_dir, cache) = open_cache(200 * 1024);
    let old = three_aged_entries(&cache);
    // A reader holds 64 KiB of a large file: with the next fill, 224 KiB in all.
    let partial = partial_with_one_chunk(&cache);
    let new = fill(&cache, &[9; 10 * 1024]);
    let stats = cache.stats().unwrap();
    assert_eq!((stats.bytes, stats.partial_bytes), (174 * 1024, 64 * 1024), "{stats:?}");
    assert!(!cache.entry_path(&old[0]).exists(), "the oldest entry made room");
    for key in [old[1], old[2], new] {
        assert!(cache.entry_path(&key).exists(), "{key} evicted");
    }
    drop(partial);
}

#[test]
fn the_limit_holds_between_ledger_merges() {
    let (dir, cache) = open_cache(200 * 1024);
    // Another process using the same cache.
    let other = BlobCache::open(dir.path(), 200 * 1024).unwrap();
    let old = three_aged_entries(&cache);
    // Headers of a huge file: 64 KiB more puts the estimate over the limit, so the oldest entry
    // goes at once, with no fill or merge to trigger it.
    let partial = partial_with_one_chunk(&cache);
    assert!(!cache.entry_path(&old[0]).exists(), "evicted on the estimate");

    // A quiet process's changes still reach the others within about a second.
    let new = fill(&cache, &[9; 1024]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let want = (3, (100 + 64 + 1) * 1024);
    loop {
        let seen = other.stats().unwrap();
        if (seen.entries, seen.bytes) == want {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{seen:?}");
        thread::sleep(Duration::from_millis(20));
    }
    assert!(cache.entry_path(&new).exists());
    drop(partial);
}

/// `cargo test --release --lib -- --ignored --nocapture small_fills`: the per-fill overhead
/// (temp file, verify, rename, ledger) when a reader walks through many small files.
#[test]
#[ignore = "benchmark; run in release mode"]
fn ten_thousand_small_fills() {
    const FILES: u32 = 10_000;
    const FILE_BYTES: usize = 16 * 1024;
    let content = |i: u32| {
        let mut bytes = vec![0u8; FILE_BYTES];
        bytes[..4].copy_from_slice(&i.to_le_bytes());
        bytes
    };
    for threads in [1, 4] {
        let (_dir, cache) = open_cache(DEFAULT_MAX_BYTES);
        let keys: Vec<CacheKey> = (0..FILES).map(|i| md5_key(&content(i))).collect();
        let next = AtomicUsize::new(0);
        let start = std::time::Instant::now();
        thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(key) = keys.get(i) else { return };
                        let bytes = content(i as u32);
                        let size = Some(FILE_BYTES as u64);
                        cache
                            .get_or_fill(key, &key.default_verify(), size, write_all(&bytes))
                            .unwrap();
                    }
                });
            }
        });
        let elapsed = start.elapsed();
        let stats = cache.stats().unwrap();
        assert_eq!(
            (stats.entries, stats.bytes),
            (FILES.into(), u64::from(FILES) * FILE_BYTES as u64)
        );
        println!(
            "small_fills: {FILES} x {} KiB, {threads} thread(s): {:.2} s, {:.0} us per fill",
            FILE_BYTES / 1024,
            elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1e6 / f64::from(FILES)
        );
    }
}

#[test]
fn a_chunk_written_in_pieces_lands_whole_whatever_the_pieces() {
    let (_dir, cache) = open_cache(64 << 20);
    // 2 MiB chunks: writes are cut at 256 KiB and 1024 pieces, here both mid-piece.
    let content = some_content(4 << 20);
    let partial = cache.partial(&md5_key(&content), content.len() as u64, 2).unwrap();
    let (first, second) = content.split_at(2 << 20);
    let tiny: Vec<&[u8]> = first.chunks(333).collect();
    assert!(tiny.len() > 1024);
    partial.write_chunk_parts(0, 0, &tiny).unwrap();
    let mixed: Vec<&[u8]> =
        [&second[..0], &second[..1], &second[1..300_001], &second[300_001..]].into();
    partial.write_chunk_parts(1, 2 << 20, &mixed).unwrap();
    let mut back = vec![0u8; content.len()];
    partial.read_exact_at(&mut back, 0).unwrap();
    assert!(back == content, "the file holds exactly the pieces, in order");
    assert_eq!(partial.hints(), [true, true]);
    assert_eq!(cache.stats().unwrap().partial_bytes, 4 << 20);
}

#[test]
fn chunks_written_past_the_page_cache_land_whole_aligned_or_not() {
    use std::os::unix::fs::OpenOptionsExt as _;
    let (dir, cache) = open_cache(64 << 20);
    // Chunks of 2 MiB, the last one 5,001 bytes: an aligned part written direct, 905 bytes not.
    let content = some_content((2 << 20) + 5001);
    let partial = cache.partial(&md5_key(&content), content.len() as u64, 2).unwrap();
    let probe = dir.path().join("probe");
    let takes_direct = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_DIRECT)
        .open(&probe)
        .is_ok();
    assert_eq!(
        partial.writes_direct(),
        takes_direct,
        "direct I/O wherever the filesystem takes it"
    );
    let (first, second) = content.split_at(2 << 20);
    let pieces: Vec<&[u8]> = first.chunks(70_001).collect();
    partial.write_chunk_parts(1, 2 << 20, &[&second[..3], &second[3..]]).unwrap();
    partial.write_chunk_parts(0, 0, &pieces).unwrap();
    let mut back = vec![0u8; content.len()];
    partial.read_exact_at(&mut back, 0).unwrap();
    assert!(back == content, "the file holds exactly the pieces, in order");
    // Chunks at offsets no direct write can start at (odd chunk sizes) go through the page cache.
    let odd = some_content(3 * 1_000_001);
    let partial = cache.partial(&md5_key(&odd), odd.len() as u64, 3).unwrap();
    for (index, chunk) in odd.chunks(1_000_001).enumerate() {
        partial.write_chunk(index, (index * 1_000_001) as u64, chunk).unwrap();
    }
    let mut back = vec![0u8; odd.len()];
    partial.read_exact_at(&mut back, 0).unwrap();
    assert!(back == odd);
    assert_eq!(partial.hints(), [true, true, true]);
}

// ---- The layout shared with the `wandb` SDK --------------------------------------------------

fn open_shared(max_bytes: u64) -> (tempfile::TempDir, BlobCache) {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::open_as(dir.path(), max_bytes, Layout::Wandb).unwrap();
    (dir, cache)
}

/// Writes `content` where the SDK would put the entry of `key`, as the SDK does (temp file in
/// its `tmp/`, mode 0644, renamed into place).
fn sdk_write(cache: &BlobCache, key: &CacheKey, content: &[u8]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = cache.entry_path(key);
    let tmp = cache.dir().join("tmp").join(format!("tmp{}", fastrand::u64(..)));
    fs::create_dir_all(tmp.parent().unwrap()).unwrap();
    fs::write(&tmp, content).unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).unwrap();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::rename(&tmp, &path).unwrap();
    path
}

fn must_not_fetch(_: &mut dyn Write) -> Result<(), FetchError> {
    panic!("fetched an entry that is in the cache")
}

#[test]
fn shared_layout_golden() {
    // Where the SDK 0.31 puts them (`ArtifactFileCache.check_digest_obj_path`/`check_etag_obj_path`).
    let cases = [
        (
            CacheKey::from_md5_digest("b1kCrCNwJL3QwXbLkwY9xA==").unwrap(),
            "obj/md5/6f/5902ac237024bdd0c176cb93063dc4",
        ),
        (
            CacheKey::from_reference(
                "s3://plain-bucket/single.txt",
                "f6a55cae6bfb7626fbb65b0c9f13231e",
            ),
            "obj/etag/44/87d90628f9ab9d3b43a1fafc12e1e69a090eb3e186585f1c34dcdb9dcdbdc6",
        ),
        (
            CacheKey::from_xxh128_digest("b1kCrCNwJL3QwXbLkwY9xA==").unwrap(),
            "obj/xxh128/6f/5902ac237024bdd0c176cb93063dc4",
        ),
    ];
    let (dir, cache) = open_shared(DEFAULT_MAX_BYTES);
    for (key, expected) in cases {
        assert_eq!(cache.entry_path(&key), dir.path().join(expected));
    }
    // artfs's own files stay out of the SDK's `tmp/` and `obj/`.
    let key = fill(&cache, b"ours");
    assert!(cache.inner.tmp_dir.starts_with(dir.path().join("artfs-v1")));
    assert!(!dir.path().join("tmp").exists());
    assert!(dir.path().join("artfs-v1/sealed").join(key.below_obj()).is_file());
    assert_eq!(cache.stats().unwrap().layout, Layout::Wandb);
}

#[test]
fn an_sdk_written_entry_is_hashed_once_then_trusted_by_its_seal() {
    use std::os::unix::fs::PermissionsExt as _;
    let (_dir, cache) = open_shared(DEFAULT_MAX_BYTES);
    let content = b"downloaded by wandb";
    let key = md5_key(content);
    let size = Some(content.len() as u64);
    let path = sdk_write(&cache, &key, content);
    let blob = cache.get_or_fill(&key, &key.default_verify(), size, must_not_fetch).unwrap();
    assert_eq!(read_blob(&blob), content);
    drop(blob);
    // Proof that the next open does not hash: bytes changed in place with the sealed mtime
    // put back are (wrongly, and only in this contrived case) still a hit.
    let sealed_mtime = fs::metadata(&path).unwrap().modified().unwrap();
    let file = fs::File::options().write(true).open(&path).unwrap();
    file.write_all_at(b"DOWNLOADED", 0).unwrap();
    file.set_modified(sealed_mtime).unwrap();
    drop(file);
    let blob = cache.get_or_fill(&key, &key.default_verify(), size, must_not_fetch).unwrap();
    assert_eq!(&read_blob(&blob)[..10], b"DOWNLOADED");
    drop(blob);
    // Any write that moves the mtime (the normal case) breaks the seal: hashed, found
    // corrupt, fetched again.
    let file = fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() + Duration::from_secs(5)).unwrap();
    drop(file);
    let blob = cache.get_or_fill(&key, &key.default_verify(), size, write_all(content)).unwrap();
    assert_eq!(read_blob(&blob), content);
    assert_eq!(fs::read(&path).unwrap(), content);
    // Writable by its owner like the SDK's own, so the SDK can copy and later overwrite it.
    assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
}

#[test]
fn a_tampered_sdk_entry_is_never_served_and_is_replaced() {
    let (_dir, cache) = open_shared(DEFAULT_MAX_BYTES);
    let content = b"the right bytes";
    let key = md5_key(content);
    let size = Some(content.len() as u64);
    // Same size, other bytes: the SDK's size check would take it.
    let path = sdk_write(&cache, &key, b"the wrong bytes");
    assert!(cache.get(&key).is_none(), "a corrupt entry was served");
    // A failed fetch leaves no corrupt entry behind for the SDK either.
    let failed = cache.get_or_fill(&key, &key.default_verify(), size, |_| Err("offline".into()));
    assert!(matches!(failed, Err(CacheError::Fetch { .. })), "{failed:?}");
    assert!(!path.exists());
    sdk_write(&cache, &key, b"the wrong bytes");
    let blob = cache.get_or_fill(&key, &key.default_verify(), size, write_all(content)).unwrap();
    assert_eq!(read_blob(&blob), content);
    assert_eq!(fs::read(&path).unwrap(), content);
    drop(blob);
    assert_eq!(read_blob(&cache.get(&key).unwrap()), content);
}

#[test]
fn a_filled_entry_is_a_hit_without_hashing_and_evicted_by_access_time() {
    let (dir, cache) = open_shared(350);
    let a = fill(&cache, &[b'a'; 100]);
    let b = fill(&cache, &[b'b'; 100]);
    let c = sdk_write(&cache, &md5_key(&[b'c'; 100]), &[b'c'; 100]);
    // The SDK reads the same files: `obj/` is where it looks, nothing else is in its way.
    assert_eq!(fs::read(cache.entry_path(&a)).unwrap(), [b'a'; 100]);
    // Recency is the access time (the SDK's cleanup sorts by it too); mtimes are left alone.
    let set_atime = |path: &Path, age: u64| {
        let file = fs::File::open(path).unwrap();
        let t = SystemTime::now() - Duration::from_secs(age);
        file.set_times(fs::FileTimes::new().set_accessed(t)).unwrap();
    };
    set_atime(&cache.entry_path(&a), 30);
    set_atime(&cache.entry_path(&b), 20);
    set_atime(&c, 10);
    let a_mtime = fs::metadata(cache.entry_path(&a)).unwrap().modified().unwrap();
    drop(cache.get(&a).unwrap());
    assert_eq!(fs::metadata(cache.entry_path(&a)).unwrap().modified().unwrap(), a_mtime);
    let d = fill(&cache, &[b'd'; 100]);
    cache.prune(350).unwrap();
    assert!(!cache.entry_path(&b).exists(), "the least recently used entry stayed");
    assert!(!dir.path().join("artfs-v1/sealed").join(b.below_obj()).exists(), "its seal stayed");
    for key in [a, d, md5_key(&[b'c'; 100])] {
        let blob = cache.get_or_fill(&key, &key.default_verify(), Some(100), must_not_fetch);
        assert!(blob.is_ok(), "{key}: {blob:?}");
    }
}

#[test]
fn seals_of_entries_the_sdk_removed_go_with_the_next_eviction_pass() {
    let (dir, cache) = open_shared(DEFAULT_MAX_BYTES);
    let kept = fill(&cache, b"kept");
    let gone = fill(&cache, b"removed by wandb artifact cache cleanup");
    let seal = |key: &CacheKey| dir.path().join("artfs-v1/sealed").join(key.below_obj());
    fs::remove_file(cache.entry_path(&gone)).unwrap();
    assert!(seal(&gone).exists());
    cache.prune(u64::MAX).unwrap();
    assert!(!seal(&gone).exists(), "an orphan seal stayed");
    assert!(seal(&kept).exists(), "a live entry lost its seal");
}

#[test]
fn the_sdk_temp_dir_is_never_cleaned_by_artfs() {
    let (dir, cache) = open_shared(DEFAULT_MAX_BYTES);
    let sdk_temp = dir.path().join("tmp/tmpabc123");
    fs::create_dir_all(sdk_temp.parent().unwrap()).unwrap();
    fs::write(&sdk_temp, b"half a download").unwrap();
    set_age(&sdk_temp, Duration::from_secs(3600));
    fill(&cache, b"x");
    cache.clear().unwrap();
    drop(cache);
    BlobCache::open(dir.path(), DEFAULT_MAX_BYTES).unwrap().clear().unwrap();
    assert!(sdk_temp.exists());
}

/// Allocated bytes of the entries and fills in progress under the cache dir `dir`.
fn bytes_on_disk(dir: &Path) -> u64 {
    fn walk(path: &Path) -> u64 {
        let Ok(entries) = fs::read_dir(path) else { return 0 };
        entries
            .flatten()
            .map(|entry| match entry.metadata() {
                Ok(meta) if meta.is_dir() => walk(&entry.path()),
                Ok(meta) => partial::allocated_bytes(&meta),
                Err(_) => 0,
            })
            .sum()
    }
    walk(&dir.join("v1/obj")) + walk(&dir.join("v1/tmp"))
}

#[test]
fn fills_that_together_exceed_the_limit_take_turns() {
    const LIMIT: u64 = 150 * 1024;
    let (dir, cache) = open_cache(LIMIT);
    let (peak, running, most_running) =
        (AtomicU64::new(0), AtomicUsize::new(0), AtomicUsize::new(0));
    thread::scope(|s| {
        for seed in [1u8, 2] {
            let (cache, dir) = (&cache, dir.path());
            let (peak, running, most_running) = (&peak, &running, &most_running);
            s.spawn(move || {
                let content = vec![seed; 100 * 1024];
                let key = md5_key(&content);
                let size = Some(content.len() as u64);
                let blob = cache
                    .get_or_fill(&key, &key.default_verify(), size, |out| {
                        most_running.fetch_max(
                            running.fetch_add(1, Ordering::SeqCst) + 1,
                            Ordering::SeqCst,
                        );
                        for piece in content.chunks(10 * 1024) {
                            out.write_all(piece)?;
                            out.flush()?;
                            peak.fetch_max(bytes_on_disk(dir), Ordering::SeqCst);
                            thread::sleep(Duration::from_millis(20));
                        }
                        running.fetch_sub(1, Ordering::SeqCst);
                        Ok(())
                    })
                    .unwrap();
                assert_eq!(read_blob(&blob), content);
            });
        }
    });
    assert_eq!(most_running.into_inner(), 1, "the two fills ran at once");
    let peak = peak.into_inner();
    assert!(peak <= LIMIT, "{peak} bytes on disk, over the limit of {LIMIT}");
    assert!(bytes_on_disk(dir.path()) <= LIMIT);
}

#[test]
fn a_fill_without_room_fails_saying_why_and_fetches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let wait = Duration::from_millis(600);
    let cache = BlobCache::open_waiting(dir.path(), 150 * 1024, Layout::Artfs, wait).unwrap();
    let held_key = fill(&cache, &[7; 100 * 1024]);
    let held = cache.get(&held_key).unwrap();
    let content = [8; 100 * 1024];
    let key = md5_key(&content);
    let started = std::time::Instant::now();
    let err = cache
        .get_or_fill(&key, &key.default_verify(), Some(content.len() as u64), must_not_fetch)
        .unwrap_err();
    assert!(matches!(err, CacheError::NoRoom { .. }), "{err}");
    assert!(started.elapsed() >= wait, "failed before waiting");
    let message = err.to_string();
    assert!(message.contains("open files") && message.contains("--cache-size"), "{message}");
    // Once the reader is gone, the fill makes room and runs.
    drop(held);
    cache
        .get_or_fill(&key, &key.default_verify(), Some(content.len() as u64), write_all(&content))
        .unwrap();
    assert!(!cache.entry_path(&held_key).exists());
    // A single entry larger than the limit fails at once.
    let huge = vec![9; 200 * 1024];
    let key = md5_key(&huge);
    let err = cache
        .get_or_fill(&key, &key.default_verify(), Some(huge.len() as u64), must_not_fetch)
        .unwrap_err();
    assert!(matches!(err, CacheError::LargerThanCache { .. }), "{err}");
}

#[test]
fn find_opens_only_complete_entries_and_leaves_the_miss_to_the_fill() {
    let (_dir, cache) = open_cache(DEFAULT_MAX_BYTES);
    let content = b"found or fetched";
    let key = md5_key(content);
    assert!(cache.find(&key, Some(content.len() as u64)).is_none());
    let filled = cache.get_or_fill(&key, &key.default_verify(), None, write_all(content)).unwrap();
    assert!(filled.was_filled());
    // The fill's own handle reads the entry it published.
    assert_eq!(read_blob(&filled), content);
    assert!(cache.find(&key, Some(content.len() as u64 + 1)).is_none(), "wrong size");
    let found = cache.find(&key, Some(content.len() as u64)).unwrap();
    assert!(!found.was_filled());
    assert_eq!(read_blob(&found), content);
    let stats = cache.stats().unwrap();
    assert_eq!((stats.misses, stats.hits), (1, 1), "a probe that finds nothing counts nothing");
}

#[test]
fn a_hit_marks_the_entry_used_unless_it_was_used_moments_ago() {
    let (_dir, cache) = open_cache(DEFAULT_MAX_BYTES);
    let key = fill(&cache, b"recently used");
    let path = cache.entry_path(&key);
    let mtime = || fs::metadata(&path).unwrap().modified().unwrap();

    set_age(&path, Duration::ZERO);
    let before = mtime();
    drop(cache.get(&key).unwrap());
    assert_eq!(mtime(), before, "used moments ago: not touched again");

    set_age(&path, USED_RECENTLY * 5);
    let before = mtime();
    drop(cache.get(&key).unwrap());
    let after = mtime();
    assert!(after > before + USED_RECENTLY * 4, "an older entry is marked used now");
}
