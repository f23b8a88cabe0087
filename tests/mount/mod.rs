//! `artfs mount` on real FUSE mounts: bytes, tools, read-only, verification, consistency,
//! crashes and shared caches. Each test mirrors a statement of the README (Semantics, The mount).

use std::fs;
use std::io::{ErrorKind, Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::MetadataExt as _;
use std::time::{Duration, Instant};

use crate::util::{
    Env, Files, MIB, MountGuard, Tmpfs, assert_same, is_mounted, random_bytes, random_tree,
    read_tree, sh, wait_until,
};

/// Bytes, listings and the usual tools: every byte read through the mount equals the source.
#[test]
fn random_trees_read_back_exactly_through_every_tool() {
    let env = Env::new();
    let files = random_tree(0x5eed);
    let src = env.log_files("ds", &files);
    let mnt = env.mount(&["ds:v0", env.path("mnt").to_str().unwrap()]);
    let root = mnt.path.clone();
    let total: usize = files.values().map(Vec::len).sum();

    // ls / stat / find / du need no content: nothing is downloaded by them.
    let found = sh(&format!("cd '{}' && find . -type f | sort", root.display()));
    let mut want: Vec<String> = files.keys().map(|p| format!("./{p}")).collect();
    want.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let mut found: Vec<String> = found.lines().map(str::to_owned).collect();
    found.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(found, want);
    let du = sh(&format!("du -sb '{}'", root.display()));
    assert_eq!(du.split_whitespace().next().unwrap(), total.to_string());
    for (path, bytes) in &files {
        assert_eq!(fs::metadata(root.join(path)).unwrap().len(), bytes.len() as u64);
    }
    assert_eq!(fs::read_dir(root.join("many")).unwrap().count(), 2000);
    assert_eq!(env.cache_stats(), (0, 0), "listing fetched content");

    // Every byte, read through the mount.
    assert_same(&read_tree(&root), &files);

    // cp -r and tar produce the same tree.
    let copy = env.path("copy");
    sh(&format!("cp -r '{}' '{}'", root.display(), copy.display()));
    assert_same(&read_tree(&copy), &files);
    let untar = env.path("untar");
    fs::create_dir(&untar).unwrap();
    sh(&format!("tar -C '{}' -cf - . | tar -C '{}' -xf -", root.display(), untar.display()));
    assert_same(&read_tree(&untar), &files);

    // mmap and pread at random offsets.
    for rel in ["big/64MiB.bin", "sizes/7-1048577", "sizes/1-1", "empty.txt"] {
        let script = r#"
import mmap, os, random, sys
mounted, source = sys.argv[1], sys.argv[2]
fd, sfd = os.open(mounted, os.O_RDONLY), os.open(source, os.O_RDONLY)
size = os.fstat(fd).st_size
assert size == os.fstat(sfd).st_size
m = mmap.mmap(fd, 0, prot=mmap.PROT_READ) if size else None
rng = random.Random(7)
for _ in range(300):
    off = rng.randrange(0, size + 10)
    n = rng.randrange(1, 300000)
    want = os.pread(sfd, n, off)
    assert os.pread(fd, n, off) == want, ("pread", off, n)
    if m is not None:
        assert m[off:off + n] == want, ("mmap", off, n)
print("ok")
"#;
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(root.join(rel))
            .arg(src.join(rel))
            .output()
            .unwrap();
        assert!(out.status.success(), "{rel}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let distinct: std::collections::HashSet<&Vec<u8>> = files.values().collect();
    // Lazily read large files reach the cache just after their last chunk, in the background.
    wait_until(|| env.cache_stats().0 == distinct.len() as u64);
}

/// Read-only: every way of changing the mount fails with EROFS.
#[test]
fn writes_fail_with_erofs() {
    let env = Env::new();
    env.log_files("ds", &[("a.txt".to_owned(), b"a".to_vec())].into());
    let mnt = env.mount(&[env.path("mnt").to_str().unwrap()]);
    let file = mnt.join("acme/bikes/ds:v0/a.txt");
    let dir = mnt.join("acme/bikes/ds:v0");
    let erofs = |what: &str, r: std::io::Result<()>| {
        let err = r.expect_err(what);
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{what}: {err}");
    };
    let write_open = fs::OpenOptions::new().write(true).open(&file).map(drop);
    erofs("open for writing", write_open);
    let append = fs::OpenOptions::new().append(true).open(&file).map(drop);
    erofs("open for appending", append);
    erofs("create", fs::File::create(dir.join("new")).map(drop));
    erofs("mkdir", fs::create_dir(dir.join("d")));
    erofs("mkdir in registry dir", fs::create_dir(mnt.join("acme/x")));
    erofs("unlink", fs::remove_file(&file));
    erofs("rmdir", fs::remove_dir(&dir));
    erofs("rename", fs::rename(&file, dir.join("b.txt")));
    erofs("link", fs::hard_link(&file, dir.join("h")));
    erofs("symlink", std::os::unix::fs::symlink("a.txt", dir.join("s")));
    let perms = std::os::unix::fs::PermissionsExt::from_mode(0o666);
    erofs("chmod", fs::set_permissions(&file, perms));
    for cmd in ["touch {f}", "echo x > {f}", "rm -f {f}", "mv {f} {d}/m", "mkdir {d}/n"] {
        let script = cmd
            .replace("{f}", &format!("'{}'", file.display()))
            .replace("{d}", &format!("'{}'", dir.display()));
        let out = std::process::Command::new("sh").arg("-c").arg(&script).output().unwrap();
        assert!(!out.status.success(), "{script} succeeded");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("Read-only file system"), "{script}: {stderr}");
    }
    assert_eq!(fs::read(&file).unwrap(), b"a");
}

/// A blob that fails verification: EIO to the reader, a log line naming artifact, entry,
/// expected and actual digest, and nothing cached.
#[test]
fn a_tampered_blob_gives_eio_and_is_never_cached() {
    let env = Env::new();
    let good = b"good content".to_vec();
    let bad = random_bytes(&mut fastrand::Rng::with_seed(1), 300_000);
    env.log_files(
        "ds",
        &[("good.txt".to_owned(), good.clone()), ("sub/bad.bin".to_owned(), bad.clone())].into(),
    );
    // Same size, different bytes: only the digest can tell.
    let blob = blob_file(&env, &bad);
    let mut tampered = bad.clone();
    tampered[1000] ^= 0xff;
    fs::write(&blob, &tampered).unwrap();

    let mnt = env.mount(&["ds", env.path("mnt").to_str().unwrap()]);
    for _ in 0..2 {
        let err = fs::read(mnt.join("sub/bad.bin")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    }
    assert_eq!(fs::read(mnt.join("good.txt")).unwrap(), good);
    // Each failed read tried again: at least two misses for bad.bin (more where the kernel
    // retries a failed page read: a version of small files is read without opens), one for
    // good.txt. The mount merges its counts into the shared ledger about once a second.
    wait_until(|| env.cache_stats().0 >= 1 && env.cache_stats().1 >= 3);
    assert_eq!(env.cache_stats().0, 1, "only good.txt is cached");
    let cached = read_tree(&env.cache.join("v1/obj"));
    assert!(cached.values().all(|b| *b == good));
    let log = mnt.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("verification failed"))
        .unwrap_or_else(|| panic!("no verification error in the log:\n{log}"));
    for part in ["acme/bikes/ds:v0", "sub/bad.bin", &md5_base64(&bad), &md5_base64(&tampered)] {
        assert!(line.contains(part), "{part} missing from: {line}");
    }
}

/// Verification: someone who rewrites a large blob and recomputes its chunk sidecar gets no
/// byte through the mount: the sidecar is not the one the manifest names, so the file is
/// checked whole before its first byte, and fails.
#[test]
fn a_tampered_large_blob_with_a_recomputed_sidecar_serves_no_byte() {
    use artfs::store::chunks::{CHUNK_BYTES, ChunkHasher, sidecar_key};
    let env = Env::new();
    let data = random_bytes(&mut fastrand::Rng::with_seed(5), 20 * MIB);
    env.log_files("ds", &[("big.bin".to_owned(), data.clone())].into());
    let blob = blob_file(&env, &data);
    let key = artfs::registry::blob_key(&md5_base64(&data)).unwrap();
    let sidecar = env.registry_dir().join(sidecar_key(&key));
    assert!(sidecar.exists(), "log wrote a sidecar");
    let mut tampered = data.clone();
    tampered[9 * MIB] ^= 0xff;
    let mut hasher = ChunkHasher::new(CHUNK_BYTES);
    hasher.update(&tampered);
    for (path, bytes) in
        [(&blob, tampered.clone()), (&sidecar, serde_json::to_vec(&hasher.finish()).unwrap())]
    {
        let _ = fs::remove_file(path);
        fs::write(path, bytes).unwrap();
    }

    let mnt = env.mount(&["ds", env.path("mnt").to_str().unwrap()]);
    let err = fs::File::open(mnt.join("big.bin")).and_then(|mut f| {
        let mut first = vec![0u8; 4096];
        f.read_exact(&mut first)
    });
    let err = err.unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert_eq!(fs::read(mnt.join("big.bin")).unwrap_err().raw_os_error(), Some(libc::EIO));
    let log = mnt.log_text();
    assert!(log.contains("not the one the manifest names"), "{log}");
    assert!(read_tree(&env.cache.join("v1/obj")).is_empty(), "nothing cached");
}

/// Consistency: `latest` moves within the refresh interval; an open file keeps its version.
#[test]
fn latest_moves_while_open_files_keep_reading_their_version() {
    let env = Env::new();
    let v0 = random_bytes(&mut fastrand::Rng::with_seed(2), 3 * MIB);
    env.log_files("ds", &[("data.bin".to_owned(), v0.clone())].into());
    let mnt = env.mount(&["--refresh-secs", "1", env.path("mnt").to_str().unwrap()]);
    let latest = mnt.join("acme/bikes/ds:latest");
    assert_eq!(fs::read_link(&latest).unwrap().to_str(), Some("ds:v0"));
    let mut open = fs::File::open(latest.join("data.bin")).unwrap();
    let mut head = vec![0u8; 1000];
    open.read_exact(&mut head).unwrap();

    let v1 = random_bytes(&mut fastrand::Rng::with_seed(3), 2 * MIB);
    env.log_files("ds", &[("data.bin".to_owned(), v1.clone())].into());
    let logged = Instant::now();
    while fs::read_link(&latest).unwrap().to_str() != Some("ds:v1") {
        assert!(logged.elapsed() < Duration::from_secs(5), "latest did not move");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(logged.elapsed() < Duration::from_millis(2500), "{:?}", logged.elapsed());
    let listing: Vec<String> = fs::read_dir(mnt.join("acme/bikes"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(listing.contains(&"ds:v1".to_owned()), "{listing:?}");

    // The open file still reads v0, to the end; a new open through `latest` reads v1.
    let mut rest = Vec::new();
    open.read_to_end(&mut rest).unwrap();
    head.extend(rest);
    assert!(head == v0, "open file changed content");
    open.seek(SeekFrom::Start(0)).unwrap();
    assert_eq!(fs::read(latest.join("data.bin")).unwrap(), v1);
    assert_eq!(fs::read(mnt.join("acme/bikes/ds:v0/data.bin")).unwrap(), v0);
}

/// Crash safety: `kill -9` during 8 downloads, `fusermount3 -u`, remount: every file correct,
/// nothing partial served.
#[test]
fn kill_9_during_fetches_then_remount_reads_everything_correctly() {
    let env = Env::new();
    let mut rng = fastrand::Rng::with_seed(4);
    let files: Files =
        (0..8).map(|i| (format!("f{i}.bin"), random_bytes(&mut rng, 24 * MIB))).collect();
    env.log_files("ds", &files);
    let mountpoint = env.path("mnt");
    let mut mnt = env.mount(&["ds", mountpoint.to_str().unwrap()]);
    let readers: Vec<_> = files
        .keys()
        .map(|name| {
            let path = mnt.join(name);
            std::thread::spawn(move || fs::read(path).map(|b| b.len()))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(40));
    mnt.signal("KILL");
    mnt.wait_exit();
    let mut interrupted = 0;
    for r in readers {
        // Interrupted readers fail (ENOTCONN/ECONNABORTED); finished ones got whole files.
        match r.join().unwrap() {
            Ok(len) => assert_eq!(len, 24 * MIB),
            Err(_) => interrupted += 1,
        }
    }
    assert!(interrupted > 0, "the daemon was killed after every fetch had finished");
    let temps = fs::read_dir(env.cache.join("v1/tmp")).unwrap().count();
    eprintln!("{interrupted} readers interrupted, {temps} partial downloads left behind");
    assert!(is_mounted(&mountpoint), "a killed daemon leaves its mount");
    let again = env.cmd().args(["mount", "ds"]).arg(&mountpoint).output().unwrap();
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("dead artfs mount") && err.contains("fusermount3 -u"), "{err}");
    assert!(mnt.fusermount_u());
    drop(mnt);

    let mnt = env.mount(&["ds", mountpoint.to_str().unwrap()]);
    assert_same(&read_tree(&mnt.path), &files);
    // Whatever the crash left in the cache is whole and verified.
    for (name, bytes) in read_tree(&env.cache.join("v1/obj")) {
        assert!(files.values().any(|f| *f == bytes), "cache entry {name} is not a source file");
    }
}

/// Shared cache: two mounts reading the same files at once download each blob once.
#[test]
fn two_mounts_sharing_a_cache_download_each_blob_once() {
    let env = Env::new();
    let mut rng = fastrand::Rng::with_seed(5);
    let files: Files =
        (0..6).map(|i| (format!("d/f{i}.bin"), random_bytes(&mut rng, 4 * MIB + i))).collect();
    env.log_files("ds", &files);
    let a = env.mount(&["ds", env.path("a").to_str().unwrap()]);
    let b = env.mount(&[env.path("b").to_str().unwrap()]);
    let mut readers = Vec::new();
    for (name, bytes) in &files {
        for path in [a.join(name), b.join(&format!("acme/bikes/ds:v0/{name}"))] {
            let want = bytes.clone();
            readers.push(std::thread::spawn(move || {
                assert!(fs::read(&path).unwrap() == want, "{}", path.display());
            }));
        }
    }
    for r in readers {
        r.join().unwrap();
    }
    // Files over one chunk are read lazily and published to the cache just after their last
    // chunk is verified, in the background: wait for that, then count downloads.
    wait_until(|| env.cache_stats().0 == 6);
    assert_eq!(env.cache_stats(), (6, 6), "(entries, misses)");
}

/// Lifecycle: background mount returns once ready; unmount, fusermount3 -u, SIGINT and SIGTERM
/// all end the daemon cleanly (exit 0, nothing left mounted).
#[test]
fn mount_lifecycle_and_clean_exits() {
    let env = Env::new();
    env.log_files("ds", &[("a.txt".to_owned(), b"hello".to_vec())].into());

    // Background: returns once mounted; `artfs unmount` ends it.
    let mountpoint = env.path("bg");
    fs::create_dir(&mountpoint).unwrap();
    let log = env.path("bg.log");
    let out = env
        .cmd()
        .args(["mount", "ds:latest"])
        .arg(&mountpoint)
        .arg("--log-file")
        .arg(&log)
        .output()
        .unwrap();
    let guard = MountGuard::adopt(mountpoint.clone());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(is_mounted(&mountpoint));
    assert_eq!(fs::read(mountpoint.join("a.txt")).unwrap(), b"hello");
    let again = env.cmd().arg("mount").arg(&mountpoint).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already an artfs mount"));
    // Busy: plain unmount refuses and says what to do; --lazy detaches, open files still read.
    let mut held = fs::File::open(mountpoint.join("a.txt")).unwrap();
    let busy = env.cmd().arg("unmount").arg(&mountpoint).output().unwrap();
    assert!(!busy.status.success());
    assert!(String::from_utf8_lossy(&busy.stderr).contains("--lazy"));
    env.ok(&["unmount", "--lazy", mountpoint.to_str().unwrap()]);
    assert!(!is_mounted(&mountpoint));
    let mut text = String::new();
    held.read_to_string(&mut text).unwrap();
    assert_eq!(text, "hello");
    drop(held);
    drop(guard);

    // Foreground: each way of ending it exits 0 and unmounts.
    for how in ["fusermount3", "INT", "TERM", "TERM while busy"] {
        let mut mnt = env.mount(&["ds", env.path(how).to_str().unwrap()]);
        assert_eq!(fs::read(mnt.join("a.txt")).unwrap(), b"hello");
        let mut held = fs::File::open(mnt.join("a.txt")).unwrap();
        match how {
            "fusermount3" => {
                drop(held);
                assert!(mnt.fusermount_u())
            }
            "TERM while busy" => {
                // Detached at once; the open file reads on until it is closed.
                mnt.signal("TERM");
                wait_until(|| !is_mounted(&mnt.path));
                let mut text = String::new();
                held.read_to_string(&mut text).unwrap();
                assert_eq!(text, "hello");
                drop(held);
            }
            sig => {
                drop(held);
                mnt.signal(sig)
            }
        }
        let status = mnt.wait_exit();
        assert!(status.success(), "{how}: {status}\n{}", mnt.log_text());
        assert!(!is_mounted(&mnt.path), "{how}");
    }

    // Errors say what is wrong before anything is mounted.
    let fail = |args: &[&str]| {
        fs::create_dir_all(env.path("err")).unwrap();
        let out = env.cmd().args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err_dir = env.path("err");
    let err = fail(&["mount", "nope", err_dir.to_str().unwrap(), "--foreground"]);
    assert!(err.contains("nope"), "{err}");
    // Background: the daemon's failure comes back with its log (kept out of $HOME).
    let log = env.path("err.log");
    let err =
        fail(&["mount", "nope", err_dir.to_str().unwrap(), "--log-file", log.to_str().unwrap()]);
    assert!(err.contains("nope"), "{err}");
    assert!(!is_mounted(&err_dir));
    let err = fail(&["unmount", err_dir.to_str().unwrap()]);
    assert!(err.contains("not an artfs mount"), "{err}");
}

/// Only the mounting user gets in, unless --allow-other.
#[test]
fn other_users_get_in_only_with_allow_other() {
    let env = Env::new();
    // Let other users reach the mount points inside the test directory.
    let open_dir = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    fs::set_permissions(env.dir.path(), open_dir).unwrap();
    env.log_files("ds", &[("a.txt".to_owned(), b"hello".to_vec())].into());
    let private = env.mount(&["ds", env.path("private").to_str().unwrap()]);
    let shared = env.mount(&["--allow-other", "ds", env.path("shared").to_str().unwrap()]);
    let as_nobody = |path: &std::path::Path| {
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
            .arg(path)
            .output()
            .unwrap()
    };
    let denied = as_nobody(&private.join("a.txt"));
    assert!(!denied.status.success());
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(stderr.contains("Permission denied"), "{stderr}");
    let allowed = as_nobody(&shared.join("a.txt"));
    assert!(allowed.status.success(), "{}", String::from_utf8_lossy(&allowed.stderr));
    assert_eq!(allowed.stdout, b"hello");
}

/// A download that does not progress holds up neither listings nor reads of other files.
#[test]
fn a_stuck_download_does_not_hold_up_other_requests() {
    let env = Env::new();
    let stuck = random_bytes(&mut fastrand::Rng::with_seed(6), MIB);
    let files: Files =
        [("stuck.bin".to_owned(), stuck.clone()), ("other/fine.txt".to_owned(), b"fine".to_vec())]
            .into();
    env.log_files("ds", &files);
    // A FIFO without a writer: the download blocks like a server that stopped sending.
    let blob = blob_file(&env, &stuck);
    fs::remove_file(&blob).unwrap();
    sh(&format!("mkfifo '{}'", blob.display()));
    let mnt = env.mount(&["ds", env.path("mnt").to_str().unwrap()]);
    let stuck_path = mnt.join("stuck.bin");
    let reader = std::thread::spawn(move || fs::read(stuck_path));
    std::thread::sleep(Duration::from_millis(300));

    let started = Instant::now();
    assert_eq!(fs::read(mnt.join("other/fine.txt")).unwrap(), b"fine");
    assert_eq!(fs::read_dir(mnt.join("other")).unwrap().count(), 1);
    assert_eq!(fs::metadata(mnt.join("stuck.bin")).unwrap().len(), MIB as u64);
    sh(&format!("find '{}' -type f | xargs stat >/dev/null", mnt.path.display()));
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert!(!reader.is_finished(), "the stuck download finished");

    // Let the download end (with no bytes): it fails verification, so EIO.
    drop(fs::OpenOptions::new().write(true).open(&blob).unwrap());
    let err = reader.join().unwrap().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
}

/// Lazy: listing a version reads its manifest only; `stat` sizes need no content.
#[test]
fn stat_and_find_download_nothing() {
    let env = Env::new();
    let files: Files =
        (0..50).map(|i| (format!("d{}/f{i}", i % 5), vec![b'x'; i * 1000])).collect();
    env.log_files("ds", &files);
    let mnt = env.mount(&[env.path("mnt").to_str().unwrap()]);
    let version = mnt.join("acme/bikes/ds:v0");
    let listed =
        sh(&format!("find '{}' -type f | xargs stat -c %s | sort -n | tail -1", version.display()));
    assert_eq!(listed.trim(), "49000");
    let meta = fs::metadata(version.join("d4/f49")).unwrap();
    assert_eq!((meta.len(), meta.mode() & 0o777), (49_000, 0o444));
    assert_eq!(env.cache_stats(), (0, 0));
    let err = fs::metadata(version.join("nope")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

fn md5_base64(bytes: &[u8]) -> String {
    artfs::manifest::md5_base64(bytes)
}

/// The registry file holding the blob of `bytes`.
fn blob_file(env: &Env, bytes: &[u8]) -> std::path::PathBuf {
    let key = artfs::registry::blob_key(&md5_base64(bytes)).unwrap();
    env.registry_dir().join(key)
}

/// Warm reads: a file complete in the cache is handed to the kernel (FUSE passthrough) where it
/// allows it, otherwise served through the page cache; `--no-passthrough` forces the latter.
/// Both paths, and the lazy chunked path of a large file read cold, give the source's bytes,
/// and the log says which path runs.
#[test]
fn passthrough_and_page_cache_paths_read_the_same_bytes() {
    let env = Env::new();
    let mut rng = fastrand::Rng::with_seed(0xfa57);
    let mut files = Files::new();
    // Three 4 MiB chunks with a sidecar: read lazily when cold.
    files.insert("big/9MiB.bin".into(), random_bytes(&mut rng, 9 * MIB + 5));
    files.insert("mid.bin".into(), random_bytes(&mut rng, 300_000));
    files.insert("small.txt".into(), b"hello".to_vec());
    env.log_files("ds", &files);
    for (flags, want) in [
        (&[][..], "warm reads: "),
        (&["--no-passthrough"][..], "passthrough disabled by --no-passthrough"),
    ] {
        let mountpoint = env.path(&format!("mnt{}", flags.len()));
        let mut args = flags.to_vec();
        args.extend(["ds:v0", mountpoint.to_str().unwrap()]);
        let mut cmd = env.cmd();
        cmd.arg("-v");
        let mnt = crate::util::mount_with(cmd, &args);
        // Cold (fetched, the big file chunk by chunk), then warm once published in the cache.
        assert_same(&read_tree(&mnt.path), &files);
        crate::util::wait_until(|| env.cache_stats().0 == 3);
        assert_same(&read_tree(&mnt.path), &files);
        // Random offsets on a warm file, each through a fresh open.
        let big = &files["big/9MiB.bin"];
        for _ in 0..20 {
            let offset = rng.usize(..big.len());
            let mut f = fs::File::open(mnt.join("big/9MiB.bin")).unwrap();
            f.seek(SeekFrom::Start(offset as u64)).unwrap();
            let mut buf = vec![0u8; 70_000];
            let n = f.read(&mut buf).unwrap();
            assert_eq!(buf[..n], big[offset..offset + n]);
        }
        let log = mnt.log_text();
        assert!(log.contains(want), "{log}");
        assert!(!log.contains("refused by the kernel"), "{log}");
    }
}

/// Readahead on a real mount: `cat` walking a directory in name order gets the next small files
/// fetched before it opens them; opening files out of order fetches nothing extra; and every
/// byte read is right either way.
#[test]
fn a_directory_walk_is_fetched_ahead_and_a_scattered_directory_whole() {
    let env = Env::new();
    let mut rng = fastrand::Rng::with_seed(11);
    let files: Files = (0..120)
        .map(|i| {
            (format!("{}/f{:02}", ["d", "s"][i / 60], i % 60), random_bytes(&mut rng, 1000 + i))
        })
        .collect();
    env.log_files("ds", &files);
    let mnt = env.mount(&["--readahead-files", "8", env.path("mnt").to_str().unwrap()]);
    let version = mnt.join("acme/bikes/ds:v0");
    let read = |name: String| assert_eq!(fs::read(version.join(&name)).unwrap(), files[&name]);
    // Counted on disk: the daemon's cache statistics reach other processes up to a second late.
    let cached = |env: &Env| {
        sh(&format!("find '{}' -type f | wc -l", env.cache.join("v1/obj").display()))
            .trim()
            .parse::<u64>()
            .unwrap()
    };

    // Out of order (backwards): exactly the files opened are fetched ...
    for i in [59, 58] {
        read(format!("s/f{i:02}"));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cached(&env), 2);
    // ... until a third such open makes the folder one read in scattered order (a shuffled
    // loader's): then all of it arrives, and only it.
    read("s/f07".into());
    wait_until(|| cached(&env) == 60);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cached(&env), 60, "the scattered folder, and nothing else");

    // In name order: two opens start a walk, and the 8 files after them arrive unasked.
    for i in [20, 21] {
        read(format!("d/f{i:02}"));
    }
    wait_until(|| cached(&env) == 60 + 2 + 8);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cached(&env), 60 + 2 + 8, "no more than the window");

    // A whole walk with `cat` reads every byte right, and so does every scattered pick.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("cd '{}' && cat f*", version.join("d").display()))
        .output()
        .unwrap();
    assert!(out.status.success());
    let all: Vec<u8> = (0..60).flat_map(|i| files[&format!("d/f{i:02}")].clone()).collect();
    assert!(out.stdout == all, "a cat walk read different bytes");
    for i in [40, 12, 33, 0] {
        read(format!("s/f{i:02}"));
    }
}

/// The warm-up (`mount --warm-up SIZE`): a reader opening a version's files in shuffled order
/// gets the version's files fetched in the background, in path order, up to the budget; a
/// reader walking in name order never starts it; every byte read is right.
#[test]
fn a_shuffled_reader_starts_the_warm_up_of_its_version_within_the_budget() {
    let cached = |env: &Env| {
        sh(&format!("find '{}' -type f | wc -l", env.cache.join("v1/obj").display()))
            .trim()
            .parse::<usize>()
            .unwrap()
    };
    let mut rng = fastrand::Rng::with_seed(12);
    // 120 files of 1000 bytes in three folders; a budget of 100 of them.
    let files: Files =
        (0..120).map(|i| (format!("c{}/f{i:03}", i % 3), random_bytes(&mut rng, 1000))).collect();
    let env = Env::new();
    env.log_files("ds", &files);
    let mnt = env.mount(&[
        "-v",
        "--warm-up",
        "100000",
        "--readahead-files",
        "0",
        env.path("mnt").to_str().unwrap(),
    ]);
    let root = mnt.join("acme/bikes/ds:v0");
    let mut names: Vec<&String> = files.keys().collect();
    rng.shuffle(&mut names);
    let opened = &names[..20];
    for n in opened {
        assert_eq!(fs::read(root.join(n)).unwrap(), files[*n], "{n}");
    }
    let in_budget: std::collections::BTreeSet<&String> = files.keys().take(100).collect();
    let want = 100 + opened.iter().filter(|n| !in_budget.contains(**n)).count();
    wait_until(|| cached(&env) >= want);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(cached(&env), want, "the first 100 in path order, and the files opened");
    assert!(mnt.log_text().contains("shuffled order"), "{}", mnt.log_text());
    for (n, b) in &files {
        assert_eq!(&fs::read(root.join(n)).unwrap(), b, "{n}");
    }

    // Name order, with the warm-up on: only what is read is fetched.
    let walker = Env::new();
    walker.log_files("ds", &files);
    let mnt = walker.mount(&[
        "-v",
        "--warm-up",
        "1G",
        "--readahead-files",
        "0",
        walker.path("mnt").to_str().unwrap(),
    ]);
    let dir = mnt.join("acme/bikes/ds:v0/c0");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("cd '{}' && cat f*", dir.display()))
        .output()
        .unwrap();
    assert!(out.status.success());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(cached(&walker), 40);
    assert!(!mnt.log_text().contains("shuffled order"), "{}", mnt.log_text());
}

/// Whether no process holds any partial file of the cache (each holder has a shared flock).
fn partial_files_unused(cache: &std::path::Path) -> bool {
    let Ok(dir) = fs::read_dir(cache.join("v1/partial")) else { return true };
    dir.flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "data"))
        .all(|e| fs::File::open(e.path()).is_ok_and(|f| f.try_lock().is_ok()))
}

/// The cache: a file larger than the whole cache disk (a 16 MiB tmpfs under a 256 MiB limit) is
/// streamed and never fills it; when something else fills the disk, fills that run out of room
/// evict unused entries and are tried again, and afterwards every cache command works,
/// `cache prune --to 0` included.
#[test]
fn a_full_cache_disk_is_evicted_and_never_bricks_the_cache() {
    let env = Env::new();
    let mut files: Files = (0..8)
        .map(|i| {
            (format!("small/{i}.bin"), random_bytes(&mut fastrand::Rng::with_seed(i), 300_000))
        })
        .collect();
    files.insert("big.bin".into(), random_bytes(&mut fastrand::Rng::with_seed(99), 24 * MIB));
    env.log_files("ds", &files);
    let Some(_tmpfs) = Tmpfs::mount(&env.cache, "16m") else {
        eprintln!("skipped: cannot mount a tmpfs (needs root)");
        return;
    };
    {
        // No readahead: 1 MiB of room is too little for siblings fetched alongside the reader
        // (each reserves its size up front), and which fill then loses is timing.
        let mnt = env.mount(&["--readahead-files", "0", "ds", env.path("mnt").to_str().unwrap()]);
        let big = fs::read(mnt.join("big.bin"))
            .unwrap_or_else(|e| panic!("reading big.bin: {e}; daemon log:\n{}", mnt.log_text()));
        assert!(big == files["big.bin"], "the streamed file read back other bytes");
        wait_until(|| partial_files_unused(&env.cache));
        // Something else fills the disk but 1 MiB: the small files (2.4 MB) take turns in it.
        fs::write(env.cache.join("ballast"), vec![1u8; 15 * MIB]).unwrap();
        for _ in 0..2 {
            for (path, bytes) in files.iter().filter(|(p, _)| p.starts_with("small/")) {
                let read = fs::read(mnt.join(path));
                let read = read.unwrap_or_else(|e| panic!("{path}: {e}; log:\n{}", mnt.log_text()));
                assert_eq!(&read, bytes, "{path}");
            }
        }
    }
    let stats = env.json(&["cache", "stats"]);
    assert!(stats["entries"].as_u64().is_some(), "{stats}");
    env.ok(&["cache", "prune", "--to", "0"]);
    let left: Vec<_> = fs::read_dir(env.cache.join("v1/partial")).unwrap().flatten().collect();
    assert!(left.is_empty(), "partial files left after prune --to 0: {left:?}");
    assert!(read_tree(&env.cache.join("v1/obj")).is_empty());
}

/// A missing mount point is created with its missing parents (as `mkdir -p`) and stays after
/// unmount; a mount point through a file, or that is a file, is refused naming it, and nothing
/// is created.
#[test]
fn a_missing_mount_point_is_created_and_a_file_is_never_mounted_over() {
    let env = Env::new();
    env.log_files("ds", &[("a.txt".to_owned(), b"hello".to_vec())].into());
    let mountpoint = env.path("mnt/deeper/bikes");
    let out = env
        .cmd()
        .args(["mount", "ds"])
        .arg(&mountpoint)
        .arg("--log-file")
        .arg(env.path("bg.log"))
        .output()
        .unwrap();
    let guard = MountGuard::adopt(mountpoint.clone());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains(&format!("created the mount point {}", mountpoint.display())), "{said}");
    assert_eq!(fs::read(mountpoint.join("a.txt")).unwrap(), b"hello");
    env.ok(&["unmount", mountpoint.to_str().unwrap()]);
    drop(guard);
    assert!(mountpoint.is_dir(), "the created mount point stays, as after mkdir -p");

    let file = env.path("file");
    fs::write(&file, b"not a directory").unwrap();
    let through = file.join("mnt");
    let err = env.fails(&["mount", "ds", through.to_str().unwrap(), "--foreground"]);
    assert!(err.contains(&format!("{} is a file", file.display())), "{err}");
    let err = env.fails(&["mount", "ds", file.to_str().unwrap(), "--foreground"]);
    assert!(err.contains(&format!("mount point {}", file.display())), "{err}");
    assert!(err.contains("Not a directory"), "{err}");
    assert_eq!(fs::read(&file).unwrap(), b"not a directory");
}

/// Aliases are symlinks: `cp -r` and `tar` copy them as such unless told to follow them; a
/// trailing `/`, `tar -h` or the version's own path copy the version.
#[test]
fn an_alias_is_copied_through_its_folder_not_as_its_symlink() {
    let env = Env::new();
    let files: Files = [
        ("a.txt".to_owned(), b"hello".to_vec()),
        ("d/b.bin".to_owned(), random_bytes(&mut fastrand::Rng::with_seed(3), 5000)),
    ]
    .into();
    env.log_files("ds", &files);
    let mnt = env.mount(&[env.path("mnt").to_str().unwrap()]);
    let project = mnt.join("acme/bikes");
    let out = env.path("out");
    fs::create_dir(&out).unwrap();
    let run = |script: &str| sh(&format!("cd '{}' && {script}", project.display()));
    let o = out.display();
    run(&format!("cp -r ds:latest '{o}/plain'"));
    assert!(fs::symlink_metadata(out.join("plain")).unwrap().file_type().is_symlink());
    run(&format!("cp -r ds:latest/ '{o}/slash'"));
    assert_same(&read_tree(&out.join("slash")), &files);
    run(&format!("cp -r ds:v0 '{o}/version'"));
    assert_same(&read_tree(&out.join("version")), &files);
    run(&format!(
        "tar -chf '{o}/x.tar' ds:latest && mkdir '{o}/untar' && tar -C '{o}/untar' -xf '{o}/x.tar'"
    ));
    assert_same(&read_tree(&out.join("untar/ds:latest")), &files);
}
