//! Concurrent writers on one collection, and a writer killed in the middle of an upload.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::util::{Env, bytes, list_files};

/// Logs 8 different contents at once from 8 processes; all must land as dense versions.
pub fn eight_concurrent_logs(env: &Env) {
    let mut children = Vec::new();
    for i in 0..8u64 {
        let src = env.path(&format!("src{i}"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("shared.bin"), bytes(99, 200_000)).unwrap();
        std::fs::write(src.join("own.bin"), bytes(i, 100_000 + i as usize)).unwrap();
        let child = env
            .cmd()
            .args(["log", "contended", src.to_str().unwrap(), "--json", "-q"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        children.push(child);
    }
    let mut digests = BTreeSet::new();
    let mut versions = BTreeSet::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["created"], true);
        digests.insert(v["digest"].as_str().unwrap().to_owned());
        versions.insert(v["version"].as_str().unwrap().to_owned());
    }
    assert_eq!(digests.len(), 8);
    let want: BTreeSet<String> = (0..8).map(|v| format!("v{v}")).collect();
    assert_eq!(versions, want);
    // The registry agrees: 8 dense versions, each digest once, `latest` on one of them.
    let listed = env.json(&["versions", "contended"]);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 8);
    let listed_digests: BTreeSet<String> =
        listed.iter().map(|v| v["digest"].as_str().unwrap().to_owned()).collect();
    assert_eq!(listed_digests, digests);
    let latest: Vec<_> = listed
        .iter()
        .filter(|v| v["aliases"].as_array().unwrap().contains(&"latest".into()))
        .collect();
    assert_eq!(latest.len(), 1);
    // Every version is readable.
    for v in 0..8 {
        env.ok(&[
            "get",
            &format!("contended:v{v}"),
            "--root",
            env.path(&format!("out{v}")).to_str().unwrap(),
        ]);
    }
}

#[test]
fn eight_concurrent_logs_make_eight_dense_versions() {
    eight_concurrent_logs(&Env::new());
}

#[test]
fn a_log_killed_mid_upload_leaves_no_version() {
    let env = Env::new();
    let src = env.path("big");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..48 {
        std::fs::write(src.join(format!("part{i:02}.bin")), bytes(i, 4 << 20)).unwrap();
    }
    let mut child = env.cmd().args(["log", "killed", src.to_str().unwrap(), "-q"]).spawn().unwrap();
    // Wait until the first blobs have landed, then kill without warning.
    let blobs = PathBuf::from(&env.registry).join("blobs");
    let deadline = Instant::now() + Duration::from_secs(60);
    while list_files(&blobs).len() < 2 {
        assert!(Instant::now() < deadline, "upload never started");
        assert!(child.try_wait().unwrap().is_none(), "log finished before it could be killed");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(list_files(&blobs).len() < 48, "the upload had already finished");

    let err = env.fails(&["show", "killed"]);
    assert!(err.contains("not found"), "{err}");
    assert!(env.ok(&["ls", "--json"]).trim() == "[]" || !env.ok(&["ls"]).contains("killed"));
    // The next log succeeds and is v0.
    let v = env.json(&["log", "killed", src.to_str().unwrap(), "-q"]);
    assert_eq!(v["version"], "v0");
    env.ok(&["get", "killed", "--root", env.path("out").to_str().unwrap()]);
}
