//! `artfs prefetch`: the cache filled ahead of readers, verified, resumable, within its limit.

use std::path::{Path, PathBuf};

use crate::util::{Env, bytes, read_tree, write_tree};

fn tree(files: usize, len: usize) -> crate::util::Files {
    (0..files).map(|i| (format!("d{}/f{i:03}.bin", i % 3), bytes(i as u64 + 40, len))).collect()
}

/// Every complete entry in the cache: (path, bytes).
fn cache_entries(cache: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut dirs = vec![cache.join("v1/obj/md5")];
    while let Some(d) = dirs.pop() {
        let Ok(items) = std::fs::read_dir(&d) else { continue };
        for item in items.flatten() {
            let p = item.path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                let b = std::fs::read(&p).unwrap();
                out.push((p, b));
            }
        }
    }
    out
}

/// An entry of the MD5 layout holds the bytes its name says (`<2 hex>/<30 hex>`).
fn assert_verified(entries: &[(PathBuf, Vec<u8>)]) {
    use md5::Digest;
    for (p, b) in entries {
        let name = format!(
            "{}{}",
            p.parent().unwrap().file_name().unwrap().to_str().unwrap(),
            p.file_name().unwrap().to_str().unwrap()
        );
        assert_eq!(hex::encode(md5::Md5::digest(b)), name, "{}", p.display());
    }
}

#[test]
fn prefetch_fills_the_cache_with_verified_entries_and_resumes() {
    let env = Env::new();
    let src = env.path("src");
    let files = tree(12, 50_000);
    write_tree(&src, &files);
    env.ok(&["log", "ds", src.to_str().unwrap()]);

    // A folder first: only its entries.
    let out = env.json(&["prefetch", "ds:latest/d1", "--jobs", "4"]);
    assert_eq!((&out["files"], &out["fetched_files"]), (&4.into(), &4.into()), "{out}");
    assert_eq!(cache_entries(&env.cache).len(), 4);
    // Then the whole version: what is there already is not fetched again.
    let out = env.json(&["prefetch", "ds:v0", "--jobs", "8"]);
    assert_eq!(out["files"], 12, "{out}");
    assert_eq!((&out["fetched_files"], &out["already_cached_files"]), (&8.into(), &4.into()));
    let entries = cache_entries(&env.cache);
    assert_eq!(entries.len(), 12);
    assert_verified(&entries);
    let out = env.json(&["prefetch", "ds"]);
    assert_eq!(out["fetched_files"], 0, "{out}");

    // The registry's blobs gone, `get` still has everything: it is all in the cache.
    std::fs::rename(env.registry_dir().join("blobs"), env.path("blobs-away")).unwrap();
    let dest = env.path("dest");
    env.ok(&["get", "ds", "--root", dest.to_str().unwrap()]);
    assert_eq!(read_tree(&dest), files);

    let err = env.fails(&["prefetch", "ds:v0/nope"]);
    assert!(err.contains("no entry or folder nope"), "{err}");
}

#[test]
fn prefetch_stops_at_the_cache_limit_with_a_clear_message() {
    let env = Env::new();
    let src = env.path("src");
    write_tree(&src, &tree(10, 100_000));
    env.ok(&["log", "ds", src.to_str().unwrap()]);
    // 500,000 bytes: 90% of it (what eviction keeps) holds four of the ten files.
    let err = env.fails(&["--cache-size", "500000", "prefetch", "ds"]);
    assert!(err.contains("stopped at the cache limit"), "{err}");
    assert!(
        err.contains("4 entries") && err.contains("6 entries") && err.contains("--cache-size"),
        "{err}"
    );
    let entries = cache_entries(&env.cache);
    assert_eq!(entries.len(), 4);
    assert_verified(&entries);
    let total: usize = entries.iter().map(|(_, b)| b.len()).sum();
    assert!(total <= 500_000, "{total}");
}

#[test]
fn a_tampered_blob_fails_prefetch_naming_the_entry() {
    let env = Env::new();
    let src = env.path("src");
    let files = tree(6, 30_000);
    write_tree(&src, &files);
    env.ok(&["log", "ds", src.to_str().unwrap()]);
    let victim = "d2/f002.bin";
    let digest = artfs::manifest::md5_base64(&files[victim]);
    let blob = env.registry_dir().join(artfs::registry::blob_key(&digest).unwrap());
    let mut b = std::fs::read(&blob).unwrap();
    b[100] ^= 0xff;
    std::fs::write(&blob, &b).unwrap();

    let err = env.fails(&["prefetch", "ds", "--jobs", "3"]);
    assert!(err.contains(victim), "{err}");
    assert!(err.contains(&digest), "{err}");
    // The others are cached and verified; the tampered one is not there at all.
    let entries = cache_entries(&env.cache);
    assert_eq!(entries.len(), 5);
    assert_verified(&entries);
}
