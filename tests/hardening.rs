//! Write-path defects, end to end: files that lie about their size or names, imported
//! manifests that could never be read, crafted and broken registry objects, interrupted logs,
//! files changed through `mmap` while they are logged.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::*;

fn collection_dir(env: &Env, name: &str) -> PathBuf {
    PathBuf::from(&env.registry).join("collections/acme/bikes").join(name)
}

/// Sum of the sizes of the registry's objects (leases and gc markers aside).
fn registry_bytes(env: &Env) -> u64 {
    list_files(Path::new(&env.registry))
        .into_iter()
        .filter(|(p, _)| !p.starts_with("leases/") && !p.starts_with("gc/"))
        .map(|(_, size)| size)
        .sum()
}

#[test]
fn a_file_whose_st_size_lies_is_logged_with_the_size_of_its_bytes() {
    let env = Env::new();
    let proc_file = "/proc/sys/kernel/ostype";
    let content = std::fs::read(proc_file).unwrap();
    assert_eq!(std::fs::metadata(proc_file).unwrap().len(), 0, "procfs reports size 0");
    env.ok(&["-q", "log", "proc", proc_file]);
    let shown = env.json(&["show", "proc", "--files"]);
    assert_eq!(shown["entries"][0]["size"], content.len() as u64, "{shown}");
    let out = env.path("out");
    env.ok(&["-q", "get", "proc", "--root", out.to_str().unwrap()]);
    assert_eq!(std::fs::read(out.join("ostype")).unwrap(), content);
}

#[test]
fn file_names_that_are_not_utf8_are_refused_naming_the_path() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    // Lossy conversion would turn both into "data\u{FFFD}" and merge them into one entry.
    for raw in [&b"data\xff"[..], &b"data\xfe"[..]] {
        std::fs::write(src.join(std::ffi::OsStr::from_bytes(raw)), b"same").unwrap();
    }
    let err = env.fails(&["log", "names", src.to_str().unwrap()]);
    assert!(err.contains("not valid UTF-8"), "{err}");
    assert!(err.contains("data\\xFF") || err.contains("data\\xFE"), "{err}");
    // Nothing was published: not even the registry exists yet.
    let err = env.fails(&["show", "names"]);
    assert!(err.contains("not found") || err.contains("no artfs registry"), "{err}");
}

#[test]
fn log_manifest_refuses_entries_that_could_never_be_read() {
    let env = Env::new();
    let src = env.path("hello.txt");
    std::fs::write(&src, b"hello, world\n").unwrap();
    env.ok(&["-q", "log", "base", src.to_str().unwrap()]);
    let entries = env.json(&["show", "base", "--files"])["entries"].clone();
    let digest = entries[0]["digest"].as_str().unwrap().to_owned();
    // A stored entry naming an existing blob with another size.
    let manifest = env.path("wrong-size.json");
    let body = serde_json::json!({
        "version": 1, "storagePolicy": "wandb-storage-policy-v1", "storagePolicyConfig": {},
        "contents": {"renamed.txt": {"digest": digest, "size": 999}},
    });
    std::fs::write(&manifest, body.to_string()).unwrap();
    let err = env.fails(&["log", "imported", "--manifest", manifest.to_str().unwrap()]);
    assert!(err.contains("renamed.txt") && err.contains("999"), "{err}");
    // Stored XXH128 entries: blobs are kept by MD5, so these could never be read.
    let xxh = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/wandb/outputs/xxh128.manifest.json");
    let err = env.fails(&["log", "imported", "--manifest", xxh.to_str().unwrap()]);
    assert!(err.contains("XXH128") && err.contains("entry"), "{err}");
    assert!(env.fails(&["show", "imported"]).contains("not found"));
}

#[test]
fn a_crafted_checkpoint_cannot_wrap_the_version_counter() {
    let env = Env::new();
    let src = env.log_files("counter", &[("a".to_string(), b"v0 bytes".to_vec())].into());
    let v0 = env.json(&["show", "counter:v0"]);
    // The state after commit 1, with the counter at its very end.
    let dir = collection_dir(&env, "counter").join("checkpoints");
    std::fs::create_dir_all(&dir).unwrap();
    let state = serde_json::json!({
        "seq": 1, "artifact_type": "dataset", "next_version": u32::MAX,
        "versions": {"0": {
            "version": 0, "digest": v0["digest"], "manifest": manifest_key(&env, "counter"),
            "description": null, "metadata": {}, "size": 8, "file_count": 1,
            "created_at": v0["created_at"],
        }},
        "aliases": {"latest": 0},
    });
    std::fs::write(dir.join(format!("{:020}.json", 1)), state.to_string()).unwrap();
    std::fs::write(src.join("a"), b"new bytes").unwrap();
    let err = env.fails(&["log", "counter", src.to_str().unwrap()]);
    assert!(err.contains("cannot go further"), "{err}");
    std::fs::write(src.join("a"), b"newer bytes").unwrap();
    env.fails(&["log", "counter", src.to_str().unwrap()]);
    assert_eq!(env.json(&["show", "counter:v0"])["digest"], v0["digest"], "v0 is intact");
}

fn manifest_key(env: &Env, name: &str) -> String {
    let commit = collection_dir(env, name).join(format!("commits/{:020}.json", 1));
    let c: serde_json::Value = serde_json::from_slice(&std::fs::read(commit).unwrap()).unwrap();
    c["op"]["manifest"].as_str().unwrap().to_owned()
}

#[test]
fn one_bad_object_breaks_only_what_it_belongs_to() {
    let env = Env::new();
    env.log_files("good", &[("a".to_string(), b"good".to_vec())].into());
    env.log_files("good", &[("a".to_string(), b"better".to_vec())].into());
    env.log_files("broken", &[("a".to_string(), b"x".to_vec())].into());
    // Foreign names among the commits (a README, an NFS silly-rename file) are not commits.
    let commits = collection_dir(&env, "good").join("commits");
    std::fs::write(commits.join("README"), b"do not touch").unwrap();
    std::fs::write(commits.join(".nfs0000000000001234"), b"\x00\x01").unwrap();
    // A corrupt checkpoint, every commit intact: the commits are read instead.
    let checkpoints = collection_dir(&env, "good").join("checkpoints");
    std::fs::create_dir_all(&checkpoints).unwrap();
    std::fs::write(checkpoints.join(format!("{:020}.json", 2)), b"{\"seq\": 2, \"vers").unwrap();
    // A commit that names a version that does not exist (as the `log`/`rm` race of older artfs
    // published): skipped, and the next log goes on after it.
    let stale = serde_json::json!({"seq": 3, "time": "2026-01-01T00:00:00Z", "writer": "old:1",
        "op": {"kind": "aliases", "version": 99, "add": ["latest"], "remove": []}});
    std::fs::write(commits.join(format!("{:020}.json", 3)), stale.to_string()).unwrap();
    let versions = env.json(&["versions", "good"]);
    assert_eq!(versions.as_array().unwrap().len(), 2, "{versions}");
    env.ok(&["alias", "good:v0", "--add", "best"]);
    assert_eq!(env.json(&["show", "good:best"])["version"], "v0");
    env.ok(&["-q", "get", "good:v1", "--root", env.path("out").to_str().unwrap()]);
    // A collection with a gap in its log, and a directory artfs would never name so: both
    // are left out of `ls`, with a warning, and the rest is listed.
    let broken = collection_dir(&env, "broken").join("commits");
    std::fs::write(broken.join(format!("{:020}.json", 3)), b"{}").unwrap();
    std::fs::remove_file(broken.join(format!("{:020}.json", 1))).unwrap();
    std::fs::create_dir_all(collection_dir(&env, "bad name!").join("commits")).unwrap();
    let out = env.run(&["ls", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> =
        listed.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["acme/bikes/good"]);
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(warnings.contains("broken") && warnings.contains("bad name!"), "{warnings}");
    // The mount's listing of the project too.
    let mnt = env.path("mnt");
    let _m = env.mount(&[mnt.to_str().unwrap()]);
    let mut listed: Vec<String> = std::fs::read_dir(mnt.join("acme/bikes"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    listed.sort();
    assert_eq!(listed, ["good:best", "good:latest", "good:v0", "good:v1"]);
}

/// Starts `artfs log` of `src` and waits until one of its temporary blob files exists.
fn log_caught_mid_upload(env: &Env, name: &str, src: &Path) -> Option<std::process::Child> {
    let blobs = PathBuf::from(&env.registry).join("blobs");
    let mut child = env
        .cmd()
        .args(["-q", "log", name, src.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if list_files(&blobs).iter().any(|(p, _)| p.contains('#')) {
            return Some(child);
        }
        if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn an_interrupted_log_gives_its_space_back() {
    let env = Env::new();
    env.log_files("before", &[("a".to_string(), bytes(1, 1000))].into());
    let before = registry_bytes(&env);
    let src = env.path("big");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..8 {
        std::fs::write(src.join(format!("part{i}.bin")), bytes(100 + i, 24 << 20)).unwrap();
    }
    for (signal, name) in [("-INT", "interrupted"), ("-KILL", "killed")] {
        let mut child = log_caught_mid_upload(&env, name, &src).expect("never caught mid-upload");
        let status = std::process::Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = child.wait().unwrap();
        assert!(!exit.success(), "{signal}: {exit:?}");
        let blobs = PathBuf::from(&env.registry).join("blobs");
        if signal == "-INT" {
            // Ctrl-C: the log removes its own temporary files and its lease.
            let left: Vec<_> =
                list_files(&blobs).into_iter().filter(|(p, _)| p.contains('#')).collect();
            assert_eq!(left, Vec::<(String, u64)>::new(), "{signal}");
            assert_eq!(list_files(&PathBuf::from(&env.registry).join("leases")), vec![]);
        }
        // Killed or not, `gc --grace 0s` gives the registry's size back.
        env.ok(&["gc", "--grace", "0s"]);
        assert_eq!(registry_bytes(&env), before, "{signal}");
        assert!(env.fails(&["show", name]).contains("not found"));
    }
}

/// A helper process that never outlives its test, even one that fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_file_changed_through_mmap_while_logged_is_never_published_wrong() {
    logs_beside_an_mmap_writer(&Env::new(), 12);
}

#[test]
fn a_file_changed_through_mmap_while_logged_to_s3_is_never_published_wrong() {
    let Some(env) = crate::cloud_registry::s3_env("mmap") else { return };
    logs_beside_an_mmap_writer(&env, 6);
}

/// Logs a 16 MiB file (a multipart upload on S3) `rounds` times while another process keeps
/// changing it through a shared mapping; every log that succeeds must read back verified.
fn logs_beside_an_mmap_writer(env: &Env, rounds: usize) {
    let file = env.path("src/mapped.bin");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, bytes(7, 16 << 20)).unwrap();
    // A writer that keeps changing bytes through a shared mapping: size and mtime stay put.
    let writer = r#"
import mmap, sys, time
with open(sys.argv[1], "r+b") as f:
    m = mmap.mmap(f.fileno(), 0)
    i = 0
    while True:
        i += 1
        m[(i * 4099) % len(m)] = i % 251
        m[len(m) - 1 - (i % 4096)] = i % 239
        if i % 16 == 0:
            time.sleep(0.001)
"#;
    let python = std::process::Command::new("python3")
        .args(["-c", writer, file.to_str().unwrap()])
        .spawn()
        .unwrap();
    let _python = KillOnDrop(python);
    let mut published = 0;
    for round in 0..rounds {
        let out = env.run(&["-q", "log", "mapped", file.parent().unwrap().to_str().unwrap()]);
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("changed while it was being logged"), "round {round}: {err}");
            continue;
        }
        published += 1;
        // Whatever was published reads back verified.
        let root = env.path(&format!("out{round}"));
        env.ok(&["-q", "get", "mapped", "--root", root.to_str().unwrap()]);
    }
    eprintln!("{published} of {rounds} logs published beside the mmap writer");
}

#[test]
fn get_never_loses_an_entry_named_like_its_temporary_file() {
    use std::io::Write;
    let env = Env::new();
    // `get` named temporary files after its pid: start it first (held at a `read`), so the
    // artifact can hold an entry named exactly like the temporary file of its other entry.
    let out = env.path("out");
    let script = format!("read go; exec {BIN} -q get tmpnames --root {}", out.display());
    let mut get = std::process::Command::new("sh")
        .args(["-c", &script])
        .env("ARTFS_REGISTRY", &env.registry)
        .env("ARTFS_CACHE_DIR", &env.cache)
        .env("ARTFS_ENTITY", "acme")
        .env("ARTFS_PROJECT", "bikes")
        .current_dir(env.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = get.id();
    let files: Files = [
        // Large enough to be copied out after the other entry has been placed.
        ("x".to_string(), bytes(3, 3 << 20)),
        (format!(".x.artfs-{pid}.tmp"), b"an entry with a temporary name".to_vec()),
    ]
    .into();
    env.log_files("tmpnames", &files);
    writeln!(get.stdin.take().unwrap(), "go").unwrap();
    let done = get.wait_with_output().unwrap();
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let got = read_tree(&out);
    assert_eq!(got.keys().collect::<Vec<_>>(), files.keys().collect::<Vec<_>>());
    assert!(got == files, "an entry holds another's bytes");
}

#[test]
fn an_interrupted_log_to_s3_aborts_its_multipart_upload() {
    let Some(vars) = s3_vars() else {
        eprintln!("skipped: ARTFS_TEST_S3_ENDPOINT is not set (run `make test`)");
        return;
    };
    let endpoint = vars[0].1.clone();
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("big.bin");
    std::fs::write(&file, bytes(9, 200 << 20)).unwrap();
    let uploads = |bucket: &str| {
        let listing = curl(&[&format!("{endpoint}/{bucket}?uploads")]);
        String::from_utf8_lossy(&listing).matches("<UploadId>").count()
    };
    // Bounded retries: the upload must be caught while it is in progress.
    for _ in 0..5 {
        let bucket = unique_bucket("mpu");
        create_s3_bucket(&endpoint, &bucket, false);
        let mut env = Env::with_registry(&format!("s3://{bucket}/r"));
        env.vars = vars.clone();
        let mut child = env
            .cmd()
            .args(["-q", "log", "big", file.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while uploads(&bucket) == 0 && child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "the upload never started");
            std::thread::sleep(Duration::from_millis(5));
        }
        let pid = child.id().to_string();
        std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        if child.wait().unwrap().success() {
            continue; // finished before the signal
        }
        assert_eq!(uploads(&bucket), 0, "an interrupted multipart upload was left in the bucket");
        return;
    }
    panic!("never caught a log mid-upload");
}
