//! Reads that must end: a stalled registry bounds every mount operation by its timeout and
//! leaves cached files of immutable versions alone.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::cloud_registry::{s3_env_behind_proxy, timed};
use crate::util::*;

/// A registry that accepts connections and never answers (SEMANTICS, Errors): with
/// `--timeout-secs 3`, `cat` of a file not cached and `ls` of a project each fail (or answer
/// from the last listing) within the timeout, whatever the refresh interval; files of a `vN`
/// version already in the cache are read without asking the registry at all.
#[test]
fn a_stalled_registry_bounds_each_operation_and_leaves_cached_files_alone() {
    const TIMEOUT_SECS: u64 = 3;
    let Some((env, proxy)) = s3_env_behind_proxy("stall2") else { return };
    let src = env.path("src");
    let files = BTreeMap::from([
        ("warm.txt".to_owned(), b"read before the stall".to_vec()),
        ("cold.txt".to_owned(), b"never read before the stall".to_vec()),
        ("sub/big.bin".to_owned(), bytes(5, 9 << 20)),
    ]);
    write_tree(&src, &files);
    env.ok(&["-q", "log", "ds", src.to_str().unwrap()]);
    let timeout = TIMEOUT_SECS.to_string();
    let mnt = env.mount(&[
        "--refresh-secs",
        "1",
        "--timeout-secs",
        &timeout,
        env.path("mnt").to_str().unwrap(),
    ]);
    let dir = mnt.path.join("acme/bikes/ds:v0");
    assert_eq!(std::fs::read(dir.join("warm.txt")).unwrap(), files["warm.txt"]);
    assert_eq!(std::fs::read(dir.join("sub/big.bin")).unwrap(), files["sub/big.bin"]);
    assert_eq!(std::fs::read_dir(mnt.path.join("acme/bikes")).unwrap().count(), 2);

    proxy.stall();
    // Past the refresh interval and the kernel's attribute timeouts.
    std::thread::sleep(Duration::from_secs(2));
    let quick = Duration::from_millis(900);
    for round in 0..3 {
        for name in ["warm.txt", "sub/big.bin"] {
            let (took, read) = timed(|| std::fs::read(dir.join(name)));
            assert_eq!(read.unwrap(), files[name], "{name}");
            assert!(took < quick, "round {round}: a cached {name} took {took:?}");
        }
    }
    let bound = Duration::from_secs(TIMEOUT_SECS + 2);
    let (took, cold) = timed(|| std::fs::read(dir.join("cold.txt")));
    assert_eq!(cold.unwrap_err().raw_os_error(), Some(libc::EIO));
    assert!(took <= bound, "cat of an uncached file took {took:?}");
    std::thread::sleep(Duration::from_secs(TIMEOUT_SECS + 1));
    let (took, listed) =
        timed(|| std::fs::read_dir(mnt.path.join("acme/bikes")).map(|d| d.count()));
    assert!(took <= bound, "ls took {took:?} ({listed:?})");
    std::thread::sleep(Duration::from_secs(TIMEOUT_SECS + 1));
    let (took, cold) = timed(|| std::fs::read(dir.join("cold.txt")));
    assert!(cold.is_err());
    assert!(took <= bound, "a second cat of an uncached file took {took:?}");
    proxy.forward();
}
