//! Many small files through a real mount: a version of small files only is read without opens
//! (the kernel keeps its pages and never asks this process on open), and stays verified and
//! consistent: tampered blobs give EIO, moved aliases read the new version on a new open.

use std::fs;
use std::os::unix::fs::FileExt as _;
use std::time::Duration;

use crate::util::{Env, Files, MIB, random_bytes, read_tree};

/// A verification failure logged by a read without an open, or by an open.
const FAILED_IN_READ: &str =
    "artfs::fs::fuse: read: acme/bikes/ds:v0: entry bad.png: verification failed";
const FAILED_IN_OPEN: &str =
    "artfs::fs::fuse: open: acme/bikes/ds:v0: entry bad.png: verification failed";

/// Logs `files` plus `bad.png` as `ds`, then rewrites the blob of `bad.png` in the registry.
/// Returns the tampered bytes.
fn log_with_tampered_blob(env: &Env, files: &mut Files) -> Vec<u8> {
    let bad = random_bytes(&mut fastrand::Rng::with_seed(4), 3000);
    files.insert("bad.png".to_owned(), bad.clone());
    env.log_files("ds", files);
    let key = artfs::registry::blob_key(&artfs::manifest::md5_base64(&bad)).unwrap();
    let mut tampered = bad;
    tampered[100] ^= 0xff;
    fs::write(env.registry_dir().join(key), &tampered).unwrap();
    files.remove("bad.png");
    tampered
}

fn small_files(n: usize, seed: u64) -> Files {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n)
        .map(|i| (format!("class{}/img{i:04}.png", i % 4), random_bytes(&mut rng, 2500 + i % 97)))
        .collect()
}

/// Every byte read without opens equals the source, on the first (cold) and later (warm)
/// reads; a tampered blob still fails verification with EIO on every try and is never cached.
#[test]
fn a_version_of_small_files_is_read_without_opens_and_still_verified() {
    let env = Env::new();
    let mut good = small_files(200, 3);
    // Still small (up to 4 MiB), but read in many requests: one entry serves them all.
    let mid = random_bytes(&mut fastrand::Rng::with_seed(8), 3 * MIB + 17);
    good.insert("mid.bin".to_owned(), mid.clone());
    let tampered = log_with_tampered_blob(&env, &mut good);
    let mnt = env.mount(&["ds:v0", env.path("mnt").to_str().unwrap()]);
    let file = fs::File::open(mnt.join("mid.bin")).unwrap();
    let mut rng = fastrand::Rng::with_seed(9);
    for _ in 0..30 {
        let (offset, mut buf) = (rng.usize(..mid.len()), vec![0; rng.usize(1..300_000)]);
        let n = file.read_at(&mut buf, offset as u64).unwrap();
        assert_eq!(buf[..n], mid[offset..offset + n], "at {offset}");
    }
    for _ in 0..2 {
        for (path, bytes) in &good {
            assert_eq!(&fs::read(mnt.join(path)).unwrap(), bytes, "{path}");
        }
        let err = fs::read(mnt.join("bad.png")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    }
    // The failure was met by a read: the kernel opened the file without asking.
    let log = mnt.log_text();
    assert!(log.contains(FAILED_IN_READ), "opens were not refused:\n{log}");
    let cached = read_tree(&env.cache.join("v1/obj"));
    assert_eq!(cached.len(), good.len());
    assert!(!cached.values().any(|b| *b == tampered));
}

/// A version with a large file keeps per-open handles (passthrough, lazy reads): only versions
/// of small files are read without opens.
#[test]
fn a_version_with_a_large_file_keeps_opens() {
    let env = Env::new();
    let mut files = small_files(10, 5);
    let big = random_bytes(&mut fastrand::Rng::with_seed(6), 5 * MIB);
    files.insert("big.bin".to_owned(), big.clone());
    log_with_tampered_blob(&env, &mut files);
    let mnt = env.mount(&["ds:v0", env.path("mnt").to_str().unwrap()]);
    assert_eq!(fs::read(mnt.join("big.bin")).unwrap(), big);
    for (path, bytes) in &files {
        assert_eq!(&fs::read(mnt.join(path)).unwrap(), bytes, "{path}");
    }
    let err = fs::read(mnt.join("bad.png")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    let log = mnt.log_text();
    assert!(log.contains(FAILED_IN_OPEN) && !log.contains(FAILED_IN_READ), "{log}");
}

/// Kept pages never outlive a version: `name:vN` directories are immutable (long TTLs, pages
/// kept), while `name:alias` is a short-TTL symlink, so after an alias moves a new open through
/// `name:latest/…` reads the new version once the refresh interval has passed.
#[test]
fn a_moved_alias_reads_the_new_version_on_a_new_open() {
    let env = Env::new();
    let v0: Files = [("a.png".to_owned(), b"version zero".to_vec())].into();
    let v1: Files = [("a.png".to_owned(), b"version one!".to_vec())].into();
    env.log_files("ds", &v0);
    let root = env.mount(&["--refresh-secs", "1", env.path("mnt").to_str().unwrap()]);
    let single = env.mount(&["ds:latest", env.path("single").to_str().unwrap()]);
    let latest = root.join("acme/bikes/ds:latest/a.png");
    assert_eq!(fs::read(&latest).unwrap(), v0["a.png"]);
    assert_eq!(fs::read(single.join("a.png")).unwrap(), v0["a.png"]);

    env.log_files("ds", &v1);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(fs::read(&latest).unwrap(), v1["a.png"], "latest still reads v0");
    assert_eq!(fs::read(root.join("acme/bikes/ds:v0/a.png")).unwrap(), v0["a.png"]);
    assert_eq!(fs::read(root.join("acme/bikes/ds:v1/a.png")).unwrap(), v1["a.png"]);
    // A single-version mount resolved its alias once, at mount time, and keeps reading it.
    assert_eq!(fs::read(single.join("a.png")).unwrap(), v0["a.png"]);
}
