//! Registry tests on a real local store: leases against gc, commits over missing blobs, logs
//! racing deletions.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::*;
use crate::names::{CollectionPath, LATEST, Selector};
use crate::store::cloud::Clouds;

fn registry(dir: &Path) -> Registry {
    Registry::new(Store::open(dir.join("registry").to_str().unwrap(), &Clouds::default()).unwrap())
}

fn collection(name: &str) -> CollectionPath {
    CollectionPath::new("acme", "bikes", name).unwrap()
}

/// A log request for files written below `dir/src-<tag>`, hashed as `artfs log` hashes them.
fn request(dir: &Path, tag: &str, name: &str, files: &[(&str, &[u8])]) -> LogRequest {
    let src = dir.join(format!("src-{tag}"));
    for (path, bytes) in files {
        std::fs::create_dir_all(src.join(path).parent().unwrap()).unwrap();
        std::fs::write(src.join(path), bytes).unwrap();
    }
    let staged = crate::stage::collect(src.to_str().unwrap()).unwrap();
    let crate::stage::Staged { manifest, sources, .. } =
        crate::stage::hash_all(staged, None, &|_| {}).unwrap();
    LogRequest {
        history_step: None,
        collection: collection(name),
        artifact_type: "dataset".into(),
        description: None,
        metadata: None,
        aliases: vec![],
        manifest,
        sources,
    }
}

/// Files below `dir` (recursive), as paths.
fn files_below(dir: &Path) -> Vec<std::path::PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect()
}

fn age(path: &Path, by: Duration) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - by).unwrap();
}

/// Runs `f` once, on the first progress report of an upload (a blob is in place by then).
struct OnFirstUpload<F: Fn() + Sync>(F, std::sync::atomic::AtomicBool);

impl<F: Fn() + Sync> UploadProgress for OnFirstUpload<F> {
    fn start(&self, _: u64, _: u64) {}
    fn advance(&self, _: u64) {
        if !self.1.swap(true, std::sync::atomic::Ordering::SeqCst) {
            (self.0)();
        }
    }
}

fn on_first_upload<F: Fn() + Sync>(f: F) -> OnFirstUpload<F> {
    OnFirstUpload(f, Default::default())
}

/// Every stored entry of a version has its blob.
async fn readable(r: &Registry, name: &str) -> bool {
    let Ok(v) = r.resolve(&collection(name), &Selector::Alias(LATEST.into())).await else {
        return false;
    };
    let m = r.manifest(&v).await.unwrap();
    for e in m.contents.values() {
        if r.store().head(&blob_key(&e.digest).unwrap()).await.unwrap().is_none() {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aged_lease_of_a_running_writer_still_keeps_gc_away() {
    // A log running longer than any TTL (here: its lease made two hours old in the middle of
    // the upload) must keep gc from deleting what it has uploaded.
    let dir = tempfile::tempdir().unwrap();
    let r = registry(dir.path());
    let files: Vec<(String, Vec<u8>)> =
        (0..6).map(|i| (format!("f{i}"), vec![i as u8; 1000 + i])).collect();
    let files: Vec<(&str, &[u8])> = files.iter().map(|(p, b)| (p.as_str(), b.as_slice())).collect();
    let req = request(dir.path(), "a", "slow", &files);
    let root = dir.path().join("registry");
    let gc_result = std::sync::Mutex::new(None);
    let progress = on_first_upload(|| {
        for lease in files_below(&root.join("leases")) {
            age(&lease, Duration::from_secs(7200));
        }
        let gc = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(r.gc(Duration::ZERO))
        });
        *gc_result.lock().unwrap() = Some(gc.map(|g| g.blobs_deleted));
    });
    let logged = r.log(&req, &progress).await;
    let gc = gc_result.lock().unwrap().take().expect("an upload happened");
    assert!(
        matches!(gc, Err(RegistryError::GcRunning { .. } | RegistryError::WritersLogging { .. })),
        "gc ran beside a live writer: {gc:?}"
    );
    logged.unwrap();
    assert!(readable(&r, "slow").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_is_never_made_over_a_blob_that_disappeared() {
    let dir = tempfile::tempdir().unwrap();
    let r = registry(dir.path());
    let req = request(dir.path(), "a", "gone", &[("a", b"first"), ("b", b"second")]);
    let blobs = dir.path().join("registry/blobs");
    // What a gc on a machine that took this writer for dead would do.
    // Only blobs in place: the other upload may still be writing its temporary file.
    let progress = on_first_upload(|| {
        for blob in files_below(&blobs) {
            if !blob.to_string_lossy().contains('#') {
                std::fs::remove_file(blob).unwrap();
            }
        }
    });
    let err = r.log(&req, &progress).await.unwrap_err().to_string();
    assert!(err.contains("disappeared") && err.contains("entry"), "{err}");
    assert_eq!(r.state(&collection("gone")).await.unwrap().seq, 0, "nothing was published");
}

/// A lease object as a writer of this machine writes it, for process `pid`.
fn local_lease_body(pid: u32, start: u64) -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    serde_json::json!({
        "writer": format!("here:{pid}"), "host": "here", "boot_id": boot.trim(),
        "pid_ns": ns.to_string_lossy(), "pid": pid, "start": start, "time": Utc::now(),
    })
    .to_string()
}

#[tokio::test]
async fn leases_of_dead_writers_are_stale_at_once_and_foreign_ones_after_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let r = registry(dir.path());
    let leases = dir.path().join("registry/leases");
    std::fs::create_dir_all(&leases).unwrap();
    // A writer of this machine that is gone (killed, crashed): it must not block gc at all.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    std::fs::write(leases.join("dead.json"), local_lease_body(dead, 1)).unwrap();
    r.gc(Duration::ZERO).await.unwrap();
    assert!(!leases.join("dead.json").exists(), "gc removes leases of dead writers");
    // One of this machine that runs: it blocks gc whatever its age.
    let me = std::process::id();
    let start = lease::process_start(me).unwrap();
    std::fs::create_dir_all(&leases).unwrap();
    std::fs::write(leases.join("alive.json"), local_lease_body(me, start)).unwrap();
    age(&leases.join("alive.json"), Duration::from_secs(7200));
    assert!(matches!(r.gc(Duration::ZERO).await, Err(RegistryError::WritersLogging { .. })));
    std::fs::remove_file(leases.join("alive.json")).unwrap();
    // Another machine's: live while younger than the TTL (renewed meanwhile), stale after.
    let foreign = r#"{"writer": "elsewhere:1", "time": "2026-01-01T00:00:00Z"}"#;
    std::fs::create_dir_all(&leases).unwrap();
    std::fs::write(leases.join("foreign.json"), foreign).unwrap();
    assert!(matches!(r.gc(Duration::ZERO).await, Err(RegistryError::WritersLogging { .. })));
    age(&leases.join("foreign.json"), LeaseTiming::default().ttl + Duration::from_secs(60));
    r.gc(Duration::ZERO).await.unwrap();
}

#[tokio::test]
async fn a_lease_is_renewed_until_its_guard_goes() {
    let dir = tempfile::tempdir().unwrap();
    let timing = LeaseTiming { ttl: Duration::from_secs(30), renew: Duration::from_millis(50) };
    let r = registry(dir.path()).with_lease_timing(timing);
    let leases = dir.path().join("registry/leases");
    let guard = r.lease().await.unwrap();
    let first = guard.key();
    // Renewed: a fresh object replaces the first; there is always exactly one.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while guard.key() == first {
        assert!(std::time::Instant::now() < deadline, "never renewed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(guard.is_intact());
    assert!(!files_below(&leases).is_empty());
    assert!(matches!(r.gc(Duration::ZERO).await, Err(RegistryError::WritersLogging { .. })));
    guard.release().await;
    assert_eq!(files_below(&leases), Vec::<std::path::PathBuf>::new());
    r.gc(Duration::ZERO).await.unwrap();
    // Dropped rather than released: the lease goes too, in the background.
    drop(r.lease().await.unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !files_below(&leases).is_empty() {
        assert!(std::time::Instant::now() < deadline, "a dropped lease stayed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_racing_rm_of_the_same_content_never_names_a_deleted_version() {
    // `log` of content equal to v0 while `rm` deletes v0: the log's commit must be
    // decided on the state it follows, so it either aliases v0 before the deletion or makes a
    // new version after it. Bounded: the race showed within 10-47 rounds.
    let dir = tempfile::tempdir().unwrap();
    let r = registry(dir.path());
    let a = request(dir.path(), "a", "x", &[("f", b"content a")]);
    for round in 0..60 {
        let name = format!("race{round}");
        let req_a = LogRequest { collection: collection(&name), ..clone_request(&a) };
        let c = collection(&name);
        r.log(&req_a, &()).await.unwrap();
        let b = request(dir.path(), &format!("b{round}"), &name, &[("f", b"content b")]);
        r.log(&b, &()).await.unwrap();
        // `rm` refuses once the log has moved `latest` to v0; else it deletes v0 first and the
        // log makes a new version.
        let (logged, deleted) = tokio::join!(r.log(&req_a, &()), r.delete_version(&c, 0, false));
        let logged = logged.unwrap_or_else(|e| panic!("round {round}: {e}"));
        match deleted {
            Ok(_) | Err(RegistryError::HasAliases { .. }) => {}
            Err(e) => panic!("round {round}: {e}"),
        }
        let state = r.state(&c).await.unwrap();
        assert!(state.versions.contains_key(&logged.version), "round {round}: {state:?}");
        assert_eq!(state.latest().unwrap().version, logged.version, "round {round}");
        let c_req = request(dir.path(), &format!("c{round}"), &name, &[("f", b"c")]);
        r.log(&c_req, &()).await.unwrap();
    }
}

fn clone_request(r: &LogRequest) -> LogRequest {
    LogRequest {
        history_step: r.history_step,
        collection: r.collection.clone(),
        artifact_type: r.artifact_type.clone(),
        description: r.description.clone(),
        metadata: r.metadata.clone(),
        aliases: r.aliases.clone(),
        manifest: r.manifest.clone(),
        sources: r.sources.clone(),
    }
}

#[tokio::test]
async fn gc_deletes_nothing_when_a_log_cannot_be_read_completely() {
    let dir = tempfile::tempdir().unwrap();
    let r = registry(dir.path());
    r.log(&request(dir.path(), "a", "kept", &[("f", b"live bytes")]), &()).await.unwrap();
    let commits = dir.path().join("registry/collections/acme/bikes/kept/commits");
    let saved = dir.path().join("saved-commits");
    std::fs::rename(&commits, &saved).unwrap();
    // The directory replaced by a file: the listing comes back empty without an error.
    std::fs::write(&commits, b"not a directory").unwrap();
    let blobs_before = files_below(&dir.path().join("registry/blobs"));
    let err = r.gc(Duration::ZERO).await.unwrap_err().to_string();
    assert!(err.contains("deleted nothing") && err.contains("kept"), "{err}");
    assert_eq!(files_below(&dir.path().join("registry/blobs")), blobs_before);
    // An unreadable commit: what it published is unknown, so nothing goes either.
    std::fs::remove_file(&commits).unwrap();
    std::fs::rename(&saved, &commits).unwrap();
    std::fs::write(commits.join(format!("{:020}.json", 2)), b"{\"seq\": 2, garbage").unwrap();
    let err = r.gc(Duration::ZERO).await.unwrap_err().to_string();
    assert!(err.contains("deleted nothing") && err.contains("cannot be read"), "{err}");
    assert_eq!(files_below(&dir.path().join("registry/blobs")), blobs_before);
    // ... while readers skip it and still read the version.
    assert!(readable(&r, "kept").await);
    std::fs::remove_file(commits.join(format!("{:020}.json", 2))).unwrap();
    // A file where a collection's directory belongs, or no collections at all.
    let project = dir.path().join("registry/collections/acme/bikes");
    std::fs::write(project.join("lost"), b"was a collection").unwrap();
    let err = r.gc(Duration::ZERO).await.unwrap_err().to_string();
    assert!(err.contains("deleted nothing") && err.contains("lost"), "{err}");
    std::fs::remove_file(project.join("lost")).unwrap();
    let collections = dir.path().join("registry/collections");
    std::fs::rename(&collections, dir.path().join("saved-collections")).unwrap();
    std::fs::write(&collections, b"").unwrap();
    let err = r.gc(Duration::ZERO).await.unwrap_err().to_string();
    assert!(err.contains("deleted nothing"), "{err}");
    assert_eq!(files_below(&dir.path().join("registry/blobs")), blobs_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_whose_lease_lapsed_does_not_commit_while_gc_runs() {
    // A lease that may have lapsed (here: a TTL of zero) is renewed before the
    // commit, and a gc that started meanwhile stops the log.
    let dir = tempfile::tempdir().unwrap();
    let timing = LeaseTiming { ttl: Duration::ZERO, renew: Duration::from_secs(3600) };
    let r = registry(dir.path()).with_lease_timing(timing);
    let req = request(dir.path(), "a", "lapsed", &[("a", b"bytes")]);
    r.log(&req, &()).await.unwrap();
    let req = request(dir.path(), "b", "lapsed", &[("a", b"other bytes")]);
    let gc_dir = dir.path().join("registry/gc");
    let me = std::process::id();
    let body = local_lease_body(me, lease::process_start(me).unwrap());
    let progress = on_first_upload(|| {
        std::fs::create_dir_all(&gc_dir).unwrap();
        std::fs::write(gc_dir.join("running.json"), &body).unwrap();
    });
    let err = r.log(&req, &progress).await.unwrap_err();
    assert!(matches!(err, RegistryError::LeaseLapsedDuringGc { .. }), "{err}");
    assert_eq!(r.state(&collection("lapsed")).await.unwrap().versions.len(), 1);
}

#[tokio::test]
async fn gc_sweeps_temporary_files_of_interrupted_writers() {
    let dir = tempfile::tempdir().unwrap();
    let r = registry(dir.path());
    r.log(&request(dir.path(), "a", "x", &[("f", b"live")]), &()).await.unwrap();
    let leftover =
        dir.path().join("registry/blobs/md5/ab/cdef0123456789abcdef0123456789#4242-0badf00d");
    std::fs::create_dir_all(leftover.parent().unwrap()).unwrap();
    std::fs::write(&leftover, vec![0u8; 4096]).unwrap();
    // Young: kept for the grace period, as any unreferenced object.
    let report = r.gc(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(report.temp_deleted, 0);
    assert!(leftover.exists());
    let report = r.gc(Duration::ZERO).await.unwrap();
    assert_eq!((report.temp_deleted, report.bytes_deleted), (1, 4096));
    assert!(!leftover.exists());
    assert!(readable(&r, "x").await);
}

/// A collection with `n` versions, logged one by one (so it has a checkpoint every
/// `CHECKPOINT_EVERY` commits), and the files below the registry's blobs and manifests.
async fn collection_with_versions(
    dir: &Path,
    r: &Registry,
    name: &str,
    n: usize,
) -> Vec<std::path::PathBuf> {
    for i in 0..n {
        let bytes = format!("version {i}");
        r.log(&request(dir, &format!("{name}{i}"), name, &[("f", bytes.as_bytes())]), &())
            .await
            .unwrap();
    }
    stored_objects(dir)
}

fn stored_objects(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = files_below(&dir.join("registry/blobs"));
    out.extend(files_below(&dir.join("registry/manifests")));
    out.sort();
    out
}

#[tokio::test]
async fn gc_deletes_nothing_when_the_commits_behind_a_checkpoint_are_gone() {
    // 40 versions: a checkpoint at commit 32, v32..v39 published only by commits 33..40.
    let dir = tempfile::tempdir().unwrap();
    let r = registry(dir.path());
    let before = collection_with_versions(dir.path(), &r, "big", 40).await;
    let commits = dir.path().join("registry/collections/acme/bikes/big/commits");
    let saved = dir.path().join("saved-commits");
    std::fs::rename(&commits, &saved).unwrap();
    let emptied = |what: &str| {
        let _ = std::fs::remove_dir_all(&commits);
        let _ = std::fs::remove_file(&commits);
        match what {
            "missing" => {}
            "empty" => std::fs::create_dir(&commits).unwrap(),
            _ => std::fs::write(&commits, b"not a directory").unwrap(),
        }
    };
    for what in ["missing", "empty", "a file"] {
        emptied(what);
        let err = r.gc(Duration::ZERO).await.unwrap_err().to_string();
        assert!(err.contains("deleted nothing") && err.contains("big"), "{what}: {err}");
        assert!(err.contains("checkpoint"), "{what}: the refusal says why: {err}");
        assert_eq!(stored_objects(dir.path()), before, "{what}: gc deleted something");
        // Readers call it corruption, never a history that ends at v31.
        let read = r.state(&collection("big")).await;
        assert!(matches!(read, Err(RegistryError::Corrupt { .. })), "{what}: {read:?}");
    }
    emptied("missing");
    std::fs::rename(&saved, &commits).unwrap();
    let state = r.state(&collection("big")).await.unwrap();
    assert_eq!(state.versions.len(), 40);
    // Whole again: gc runs and keeps every version readable.
    r.gc(Duration::ZERO).await.unwrap();
    assert!(readable(&r, "big").await);
    assert_eq!(stored_objects(dir.path()), before);
}

#[tokio::test]
async fn gc_deletes_nothing_when_a_checkpoint_leaves_out_a_version() {
    let dir = tempfile::tempdir().unwrap();
    let r = registry(dir.path());
    let before = collection_with_versions(dir.path(), &r, "gap", 34).await;
    let prefix = dir.path().join("registry/collections/acme/bikes/gap");
    // A checkpoint that holds together but lacks v3 (restored from elsewhere, or written by a
    // faulty writer): readers that start from it do not see v3.
    let checkpoint = prefix.join(format!("checkpoints/{:020}.json", 32));
    let mut state: CollectionState =
        serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    state.versions.remove(&3);
    state.aliases.retain(|_, v| *v != 3);
    std::fs::remove_file(&checkpoint).unwrap();
    std::fs::write(&checkpoint, serde_json::to_vec(&state).unwrap()).unwrap();
    let err = r.gc(Duration::ZERO).await.unwrap_err().to_string();
    assert!(err.contains("deleted nothing") && err.contains("gap"), "{err}");
    assert!(err.contains("v3"), "the refusal names the version: {err}");
    assert_eq!(stored_objects(dir.path()), before);
    // A later commit that aliases v3: readers warn and skip it; gc still refuses.
    let commit = Commit {
        seq: 35,
        time: Utc::now(),
        writer: "test".into(),
        op: Op::Aliases { version: 3, add: vec!["best".into()], remove: vec![] },
    };
    std::fs::write(
        prefix.join(format!("commits/{:020}.json", 35)),
        serde_json::to_vec(&commit).unwrap(),
    )
    .unwrap();
    assert!(!r.state(&collection("gap")).await.unwrap().aliases.contains_key("best"));
    let err = r.gc(Duration::ZERO).await.unwrap_err().to_string();
    assert!(err.contains("deleted nothing") && err.contains("v3"), "{err}");
    assert_eq!(stored_objects(dir.path()), before);
    // The bad checkpoint removed, every reader replays the commits and v3 is there again.
    std::fs::remove_file(&checkpoint).unwrap();
    let state = r.state(&collection("gap")).await.unwrap();
    assert_eq!(state.aliases.get("best"), Some(&3));
    r.gc(Duration::ZERO).await.unwrap();
    assert_eq!(stored_objects(dir.path()), before);
}

#[tokio::test]
async fn gc_reclaims_the_parts_of_abandoned_multipart_uploads_only() {
    let dir = tempfile::tempdir().unwrap();
    let r = registry(dir.path());
    r.log(&request(dir.path(), "a", "x", &[("f", b"live")]), &()).await.unwrap();
    let root = dir.path().join("registry");
    let part = |upload: &str, n: u32, age_secs: u64| {
        let path = root.join(layout::upload_part(upload, n));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, vec![7u8; 1000]).unwrap();
        age(&path, Duration::from_secs(age_secs));
        path
    };
    // One upload abandoned two hours ago; one whose first part is as old but which got a
    // part a minute ago, so it is still being written.
    let abandoned = [part("0abandoned", 1, 7200), part("0abandoned", 2, 7100)];
    let active = [part("1active", 1, 7200), part("1active", 2, 60)];
    let report = r.gc(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(report.upload_parts_deleted, 2);
    assert!(abandoned.iter().all(|p| !p.exists()));
    assert!(active.iter().all(|p| p.exists()), "an upload still receiving parts is kept");
    let report = r.gc(Duration::ZERO).await.unwrap();
    assert_eq!((report.upload_parts_deleted, report.bytes_deleted), (2, 2000));
    assert!(readable(&r, "x").await);
}
