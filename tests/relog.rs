//! Re-logs: the stat cache that lets `artfs log` skip unchanged files, and files that change
//! while they are being logged.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::util::{Env, bytes, read_tree, write_tree};

/// Longer than the stat cache's racy margin (1 s): a file changed within it of a log is hashed
/// again by the next one, so tests that want a hit wait this long after writing.
const SETTLE: Duration = Duration::from_millis(1300);

fn tree() -> crate::util::Files {
    let mut files = crate::util::Files::new();
    files.insert("a.bin".to_owned(), bytes(1, 300_000));
    files.insert("sub/big.bin".to_owned(), bytes(2, 9_000_000));
    files.insert("sub/c.txt".to_owned(), b"hello\n".to_vec());
    files.insert("empty".to_owned(), Vec::new());
    files
}

fn md5(bytes: &[u8]) -> String {
    artfs::manifest::md5_base64(bytes)
}

/// The entry `path` of `artifact` in the manifest: (digest, size).
fn entry(env: &Env, artifact: &str, path: &str) -> (String, u64) {
    let show = env.json(&["show", artifact, "--files"]);
    let e = show["entries"].as_array().unwrap().iter().find(|e| e["path"] == path).unwrap();
    (e["digest"].as_str().unwrap().to_owned(), e["size"].as_u64().unwrap())
}

/// The bytes of the local registry's blob with `digest`.
fn blob(env: &Env, digest: &str) -> Vec<u8> {
    let key = artfs::registry::blob_key(digest).unwrap();
    std::fs::read(env.registry_dir().join(key)).unwrap()
}

#[test]
fn a_relog_of_unchanged_files_reads_none_of_them_and_uploads_from_what_it_remembers() {
    let env = Env::new();
    let src = env.path("src");
    let files = tree();
    write_tree(&src, &files);
    std::thread::sleep(SETTLE);
    let first = env.json(&["log", "ds", src.to_str().unwrap()]);
    assert_eq!(first["hashed_files"], 4, "{first}");
    let again = env.json(&["log", "ds", src.to_str().unwrap()]);
    assert_eq!(again["hashed_files"], 0, "{again}");
    assert_eq!(again["hashed_bytes"], 0, "{again}");
    assert_eq!(again["unchanged_files_not_read"], 4, "{again}");
    assert_eq!((&again["version"], &again["created"]), (&"v0".into(), &false.into()));
    assert_eq!(again["digest"], first["digest"]);
    // `--rehash` reads them all again.
    let rehashed = env.json(&["log", "ds", src.to_str().unwrap(), "--rehash"]);
    assert_eq!(rehashed["hashed_files"], 4, "{rehashed}");

    // Into a fresh registry with the same cache: nothing is hashed, everything is uploaded
    // (checked against the remembered XXH3 while copying) and reads back verified, chunk sums
    // and all (big.bin has three chunks).
    let mut other = Env::new();
    other.cache = env.cache.clone();
    let out = other.json(&["log", "ds", src.to_str().unwrap()]);
    assert_eq!(out["hashed_files"], 0, "{out}");
    assert_eq!(out["uploaded_files"], 4, "{out}");
    assert_eq!(out["digest"], first["digest"]);
    let dest = other.path("dest");
    other.ok(&["get", "ds", "--root", dest.to_str().unwrap()]);
    assert_eq!(read_tree(&dest), files);
    let sidecars = files_below(&other.registry_dir().join("chunks"));
    assert_eq!(sidecars.len(), 1, "{sidecars:?}");
}

fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(items) = std::fs::read_dir(dir) else { return out };
    for item in items.flatten() {
        let p = item.path();
        if p.is_dir() {
            out.extend(files_below(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn content_changed_with_its_size_kept_and_its_mtime_restored_is_hashed_again() {
    let env = Env::new();
    let src = env.path("src");
    write_tree(&src, &tree());
    std::thread::sleep(SETTLE);
    env.ok(&["log", "ds", src.to_str().unwrap()]);
    let file = src.join("sub/big.bin");
    let meta = std::fs::metadata(&file).unwrap();
    let mtime = {
        use std::os::unix::fs::MetadataExt;
        format!("@{}.{:09}", meta.mtime(), meta.mtime_nsec())
    };
    // Same size, same inode, new bytes in the middle; then the old mtime put back.
    let mut content = std::fs::read(&file).unwrap();
    content[4_500_000] ^= 0xff;
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        f.seek(SeekFrom::Start(4_500_000)).unwrap();
        f.write_all(&content[4_500_000..4_500_001]).unwrap();
    }
    crate::util::sh(&format!("touch -d '{mtime}' '{}'", file.display()));
    let after = std::fs::metadata(&file).unwrap();
    assert_eq!((after.len(), after.modified().unwrap()), (meta.len(), meta.modified().unwrap()));

    let out = env.json(&["log", "ds", src.to_str().unwrap()]);
    assert_eq!(out["hashed_files"], 1, "{out}");
    assert_eq!((&out["version"], &out["created"]), (&"v1".into(), &true.into()));
    let (digest, _) = entry(&env, "ds:v1", "sub/big.bin");
    assert_eq!(digest, md5(&content));
    assert_eq!(blob(&env, &digest), content);
}

#[test]
fn a_truncated_or_garbled_stat_cache_means_hashing_not_an_error() {
    let env = Env::new();
    let src = env.path("src");
    write_tree(&src, &tree());
    std::thread::sleep(SETTLE);
    env.ok(&["log", "ds", src.to_str().unwrap()]);
    let file = env.cache.join("stat-cache.v1");
    let good = std::fs::read(&file).unwrap();
    for bad in [good[..good.len() / 2].to_vec(), b"garbage\n{}".to_vec(), Vec::new()] {
        std::fs::write(&file, &bad).unwrap();
        let out = env.json(&["log", "ds", src.to_str().unwrap()]);
        assert_eq!(out["hashed_files"], 4, "{out}");
        assert_eq!(out["created"], false, "{out}");
    }
    // Rewritten whole by that log: the next one reads nothing.
    let out = env.json(&["log", "ds", src.to_str().unwrap()]);
    assert_eq!(out["hashed_files"], 0, "{out}");
}

#[test]
fn a_file_appended_to_during_log_is_recorded_with_the_stored_bytes_or_refused() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let file = src.join("growing.log");
    std::fs::write(&file, bytes(7, 24 << 20)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (file, stop) = (file.clone(), stop.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
            let piece = bytes(8, 64 << 10);
            while !stop.load(Ordering::Relaxed) {
                f.write_all(&piece).unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let mut outcomes = Vec::new();
    for round in 0..3 {
        let out = env.run(&["log", "grow", src.to_str().unwrap(), "--json"]);
        if out.status.success() {
            // Whatever bytes the log saw, the digest it recorded names the blob it stored.
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let (digest, size) =
                entry(&env, &format!("grow:{}", v["version"].as_str().unwrap()), "growing.log");
            let stored = blob(&env, &digest);
            assert_eq!(md5(&stored), digest, "round {round}");
            assert_eq!(stored.len() as u64, size, "round {round}");
            outcomes.push("recorded");
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("growing.log") && err.contains("changed while"), "{err}");
            outcomes.push("refused");
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    // Once it stops changing, logs (the second one from the stat cache) record what is there.
    std::thread::sleep(SETTLE);
    let content = std::fs::read(&file).unwrap();
    for _ in 0..2 {
        let v = env.json(&["log", "grow", src.to_str().unwrap()]);
        let (digest, _) =
            entry(&env, &format!("grow:{}", v["version"].as_str().unwrap()), "growing.log");
        assert_eq!(digest, md5(&content), "{outcomes:?} then {v}");
        assert_eq!(blob(&env, &digest), content);
    }
}
