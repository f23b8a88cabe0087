//! Entries larger than the cache: read through a real FUSE mount whose cache is a small tmpfs,
//! streamed through a bounded window of verified chunks; `artfs get` refusing up front when the
//! destination cannot hold the version.

use std::fs;
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::util::{Env, Files, MIB, Tmpfs, bytes, sh};

/// Samples the bytes used on the tmpfs at `path` every few milliseconds until the returned flag
/// is set; the highest sample lands in the returned counter.
fn watch(path: &Path) -> (Arc<AtomicBool>, Arc<AtomicU64>, std::thread::JoinHandle<()>) {
    let (stop, peak) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let (path, s, p) = (path.to_owned(), stop.clone(), peak.clone());
    let watcher = std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            p.fetch_max(Tmpfs::used_bytes(&path), Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    (stop, peak, watcher)
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// The user's view of the open issue: a 200 MiB file, a 64 MiB cache disk. `cat`/`sha256sum`
/// through the mount give the exact bytes, random `pread`s too, and the cache disk never fills.
#[test]
fn an_entry_larger_than_the_cache_disk_streams_exact_bytes_and_never_fills_it() {
    let env = Env::new();
    let data = bytes(0xb16, 200 * MIB + 12_345);
    let files = Files::from([("weights.bin".to_owned(), data.clone())]);
    env.log_files("big", &files);
    let Some(cache) = Tmpfs::mount(&env.cache, "64m") else {
        eprintln!("skipped: cannot mount a tmpfs (needs root)");
        return;
    };
    let mnt = env.mount(&["big:v0", env.path("mnt").to_str().unwrap()]);
    let file = mnt.join("weights.bin");

    let (stop, peak, watcher) = watch(&cache.0);
    let sum = sh(&format!("sha256sum '{}'", file.display()));
    assert_eq!(sum.split_whitespace().next(), Some(sha256_hex(&data).as_str()));
    // Random reads, across chunk boundaries, behind and ahead of the window; a fresh open so
    // that they are not served from the kernel's pages of the sequential pass alone.
    let f = fs::File::open(&file).unwrap();
    for (offset, len) in [
        (150 * MIB + 3, MIB),
        (7, 100),
        (4 * MIB - 1, 2),
        (data.len() - 10, 10),
        (99 * MIB, 3 * MIB),
        (0, 64 * 1024),
        (180 * MIB + 17, 5 * MIB),
    ] {
        let mut buf = vec![0u8; len];
        f.read_exact_at(&mut buf, offset as u64).unwrap();
        assert!(buf == data[offset..offset + len], "pread of {len} bytes at {offset} differs");
    }
    let copy = env.path("copy.bin");
    sh(&format!("cat '{}' > '{}'", file.display(), copy.display()));
    assert!(fs::read(&copy).unwrap() == data, "cat gave other bytes");
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();

    let peak = peak.load(Ordering::Relaxed);
    assert!(peak < 4 * MIB as u64, "the cache disk took {peak} bytes while streaming");
    assert!(Tmpfs::used_bytes(&env.cache) < 4 * MIB as u64);
    assert!(mnt.log_text().contains("do not fit the cache"), "{}", mnt.log_text());

    // `get` into a 64 MiB destination refuses before writing anything, naming both sizes.
    let dest = env.path("dest");
    let _dest = Tmpfs::mount(&dest, "64m").unwrap();
    let root = dest.join("out");
    let err = env.fails(&["get", "big:v0", "--root", root.to_str().unwrap()]);
    assert!(err.contains("not enough space for"), "{err}");
    assert!(err.contains("200.01 MiB") && err.contains("64.00 MiB free"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert_eq!(fs::read_dir(&dest).unwrap().count(), 0, "get left something behind");
    assert_eq!(Tmpfs::used_bytes(&dest), 0);
    // An entry larger than the cache's limit could never pass through it: refused up front too.
    let out = env.path("out");
    let err =
        env.fails(&["--cache-size", "100M", "get", "big:v0", "--root", out.to_str().unwrap()]);
    assert!(err.contains("weights.bin (200.01 MiB) is larger than the cache limit"), "{err}");
    assert!(!out.exists(), "get created {}", out.display());
    drop(mnt);
}

/// A chunk changed in the registry's store fails the streamed read with EIO, and no byte of it
/// reaches the reader: what `cat` printed is an exact prefix, ending before the bad chunk, which
/// lies past what the 16 MiB cache disk could have held.
#[test]
fn a_tampered_chunk_fails_the_streamed_read_and_no_bad_byte_is_served() {
    let env = Env::new();
    let data = bytes(0x7a4, 40 * MIB);
    env.log_files("big", &Files::from([("data.bin".to_owned(), data.clone())]));
    // The blob: the one stored file of the entry's size.
    let blob = walkdir::WalkDir::new(env.registry_dir())
        .into_iter()
        .map(Result::unwrap)
        .find(|e| e.file_type().is_file() && e.metadata().unwrap().len() == data.len() as u64)
        .expect("the stored blob")
        .into_path();
    let bad_at = 30 * MIB as u64 + 5;
    let mut perms = fs::metadata(&blob).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    fs::set_permissions(&blob, perms).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&blob)
        .unwrap()
        .write_all_at(&[!data[30 * MIB + 5]], bad_at)
        .unwrap();

    let Some(_cache) = Tmpfs::mount(&env.cache, "16m") else {
        eprintln!("skipped: cannot mount a tmpfs (needs root)");
        return;
    };
    let mnt = env.mount(&["big:v0", env.path("mnt").to_str().unwrap()]);
    let out = env.path("out.bin");
    let cat = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("cat '{}' > '{}'", mnt.join("data.bin").display(), out.display()))
        .output()
        .unwrap();
    assert!(!cat.status.success(), "cat read a tampered file to its end");
    let stderr = String::from_utf8_lossy(&cat.stderr);
    assert!(stderr.contains("Input/output error"), "{stderr}");
    let got = fs::read(&out).unwrap();
    // Chunk 7 (28 MiB on) is the bad one; everything before it was streamed, verified.
    let served = got.len();
    assert!(served <= 28 * MIB, "{served} bytes served: past the start of the bad chunk");
    assert!(served >= 24 * MIB, "only {served} bytes served: stopped before the bad chunk");
    assert!(got == data[..got.len()], "the bytes served are not an exact prefix");
    let f = fs::File::open(mnt.join("data.bin")).unwrap();
    let err = f.read_exact_at(&mut [0u8; 10], bad_at - 3).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc_eio()), "{err}");
    let log = mnt.log_text();
    assert!(
        log.contains("do not fit the cache") && log.contains("does not match its checksum"),
        "{log}"
    );
}

fn libc_eio() -> i32 {
    rustix::io::Errno::IO.raw_os_error()
}
