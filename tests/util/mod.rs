//! Test helpers: an isolated registry + cache per test, running the binary, comparing trees.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_artfs");

/// A private registry and cache in a temp dir; every command runs with them.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub registry: String,
    pub cache: PathBuf,
    /// Extra environment for every command (cloud endpoints, credentials).
    pub vars: Vec<(String, String)>,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let registry = dir.path().join("registry").display().to_string();
        let cache = dir.path().join("cache");
        Env { dir, registry, cache, vars: Vec::new() }
    }

    pub fn with_registry(registry: &str) -> Env {
        let mut env = Env::new();
        env.registry = registry.to_owned();
        env
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env("ARTFS_REGISTRY", &self.registry)
            .env("ARTFS_CACHE_DIR", &self.cache)
            .env("ARTFS_ENTITY", "acme")
            .env("ARTFS_PROJECT", "bikes")
            .env_remove("ARTFS_LOG")
            .env_remove("ARTFS_CACHE_SIZE")
            .current_dir(self.dir.path());
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }

    /// Runs `artfs ARGS`, returns the output whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs `artfs ARGS`, panics with stderr unless it succeeds; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "artfs {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs `artfs ARGS`, expects failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "artfs {args:?} unexpectedly succeeded");
        String::from_utf8(out.stderr).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut full = args.to_vec();
        full.push("--json");
        serde_json::from_str(&self.ok(&full)).unwrap()
    }
}

/// Writes `files` (relative path → bytes) below `root`.
pub fn write_tree(root: &Path, files: &Files) {
    for (rel, bytes) in files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

/// Every regular file below `root`, by relative path.
pub fn read_tree(root: &Path) -> Files {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let rel = e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned();
            out.insert(rel, std::fs::read(e.path()).unwrap());
        }
    }
    out
}

/// Deterministic pseudo-random bytes.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut v = vec![0u8; len];
    rng.fill(&mut v);
    v
}

/// Every file below `root` (relative path → size), for registry inspection.
pub fn list_files(root: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    if !root.exists() {
        return out;
    }
    for e in walkdir::WalkDir::new(root) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let rel = e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned();
            out.push((rel, e.metadata().unwrap().len()));
        }
    }
    out.sort();
    out
}

/// The local S3 server's environment for artfs (`scripts/test-services.sh env`), or `None` when the
/// services are not running (the cloud tests then say so and skip; CI always runs them).
pub fn s3_vars() -> Option<Vec<(String, String)>> {
    let endpoint = std::env::var("ARTFS_TEST_S3_ENDPOINT").ok()?;
    Some(vec![
        ("AWS_ENDPOINT_URL".into(), endpoint),
        ("AWS_ACCESS_KEY_ID".into(), "test".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
        ("AWS_REGION".into(), "us-east-1".into()),
    ])
}

impl Env {
    /// An environment whose registry is in a new bucket of the local S3 server, or `None` (the
    /// test then skips, saying so) when the services are not running.
    pub fn in_new_s3_bucket(tag: &str) -> Option<Env> {
        let Some(vars) = s3_vars() else {
            eprintln!("skipped: ARTFS_TEST_S3_ENDPOINT is not set (run `make test`)");
            return None;
        };
        let bucket = unique_bucket(tag);
        create_s3_bucket(&vars[0].1, &bucket, false);
        let mut env = Env::with_registry(&format!("s3://{bucket}/reg"));
        env.vars = vars;
        Some(env)
    }
}

/// A fresh bucket name, unique per test run.
pub fn unique_bucket(tag: &str) -> String {
    format!("artfs-{tag}-{}-{:08x}", std::process::id(), fastrand::u32(..))
}

/// Creates an S3 bucket on the local server (optionally versioned).
pub fn create_s3_bucket(endpoint: &str, bucket: &str, versioned: bool) {
    curl(&["-X", "PUT", &format!("{endpoint}/{bucket}")]);
    if versioned {
        curl(&[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/xml",
            &format!("{endpoint}/{bucket}?versioning"),
            "--data-binary",
            r#"<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>"#,
        ]);
    }
}

/// Reads the head of an HTTP request a test server got on `stream`; returns the path asked for,
/// or `None` if no request line came.
pub fn request_path(stream: &std::net::TcpStream) -> Option<String> {
    use std::io::BufRead as _;
    let mut reader = std::io::BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
    }
    Some(line.split_whitespace().nth(1).unwrap_or("").to_owned())
}

/// Runs curl against a local server; panics on HTTP errors.
pub fn curl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sS", "-f", "--noproxy", "127.0.0.1"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

impl Env {
    /// `artfs mount ARGS --foreground` with this env's registry and cache, once it is ready.
    pub fn mount(&self, args: &[&str]) -> MountGuard {
        mount_with(self.cmd(), args)
    }

    /// Writes `files` to a fresh source directory and logs it as a new version of
    /// `acme/bikes/<name>`. Returns the source directory.
    pub fn log_files(&self, name: &str, files: &Files) -> PathBuf {
        let src = self.path("src");
        if src.exists() {
            std::fs::remove_dir_all(&src).unwrap();
        }
        write_tree(&src, files);
        self.ok(&["-q", "log", name, src.to_str().unwrap()]);
        src
    }

    /// `artfs cache stats` as (entries, misses).
    pub fn cache_stats(&self) -> (u64, u64) {
        let s = self.json(&["cache", "stats"]);
        (s["entries"].as_u64().unwrap(), s["misses"].as_u64().unwrap())
    }

    pub fn registry_dir(&self) -> PathBuf {
        PathBuf::from(&self.registry)
    }
}

/// How long a mount may take to appear, or a daemon to exit.
const WAIT: Duration = Duration::from_secs(30);

pub const MIB: usize = 1 << 20;

/// Runs `cmd mount ARGS --foreground` (the binary with its registry settings) and waits until
/// the mount is ready.
pub fn mount_with(mut cmd: Command, args: &[&str]) -> MountGuard {
    let mountpoint = PathBuf::from(args.last().unwrap());
    fs::create_dir_all(&mountpoint).unwrap();
    let log = mountpoint.with_extension("log");
    let child = cmd
        .arg("mount")
        .args(args)
        .arg("--foreground")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut guard = MountGuard { path: mountpoint, child: Some(child), log };
    guard.wait_mounted();
    guard
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Polls `done` until it holds; panics after the usual wait.
pub fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "condition not met in {WAIT:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether an artfs mount is at `path`.
pub fn is_mounted(path: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let want = path.to_str().unwrap();
    info.lines().any(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        // mountinfo escapes whitespace and backslashes in octal.
        let point = f.get(4).map(|p| {
            p.replace("\\040", " ")
                .replace("\\011", "\t")
                .replace("\\012", "\n")
                .replace("\\134", "\\")
        });
        point.as_deref() == Some(want) && l.contains(" - fuse.artfs ")
    })
}

/// A mount made by a test. Dropping it unmounts (`fusermount3 -u`, then `-uz`) and reaps the
/// daemon, so a failing test never leaves a mount behind.
pub struct MountGuard {
    pub path: PathBuf,
    child: Option<Child>,
    log: PathBuf,
}

impl MountGuard {
    /// A guard for a mount made by a background `artfs mount` (no child to reap).
    pub fn adopt(path: PathBuf) -> MountGuard {
        MountGuard { log: path.with_extension("log"), path, child: None }
    }

    fn wait_mounted(&mut self) {
        let deadline = Instant::now() + WAIT;
        while !is_mounted(&self.path) {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("daemon exited ({status}) before mounting:\n{}", self.log_text());
            }
            assert!(Instant::now() < deadline, "not mounted:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the daemon to exit by itself.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "daemon did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `fusermount3 -u`; returns whether it succeeded.
    pub fn fusermount_u(&self) -> bool {
        Command::new("fusermount3")
            .arg("-u")
            .arg(&self.path)
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if is_mounted(&self.path) && !self.fusermount_u() {
            let _ = Command::new("fusermount3").arg("-uz").arg(&self.path).status();
        }
        if let Some(child) = &mut self.child {
            let deadline = Instant::now() + Duration::from_secs(5);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            assert!(!is_mounted(&self.path), "mount left behind");
        }
    }
}

/// A tree of files: relative path → content.
pub type Files = BTreeMap<String, Vec<u8>>;

pub fn random_bytes(rng: &mut fastrand::Rng, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    for chunk in out.chunks_mut(8) {
        let word = rng.u64(..).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    out
}

/// What the issue asks mounts to survive: sizes from 0 B to 64 MiB, unicode names, deep paths,
/// empty files, 2,000 files in one directory.
pub fn random_tree(seed: u64) -> Files {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut files = Files::new();
    files.insert("big/64MiB.bin".into(), random_bytes(&mut rng, 64 * MIB));
    for (i, size) in
        [0, 1, 4095, 4096, 4097, 131_072, 131_073, MIB + 1, 5 * MIB + 3].into_iter().enumerate()
    {
        files.insert(format!("sizes/{i}-{size}"), random_bytes(&mut rng, size));
    }
    for _ in 0..20 {
        let size = rng.usize(..2 * MIB);
        let name = format!("random/{:x}.dat", rng.u64(..));
        files.insert(name, random_bytes(&mut rng, size));
    }
    for name in [
        "unicode/données été.txt",
        "unicode/日本語/ファイル.bin",
        "unicode/emoji 🎉 party.txt",
        "unicode/ключ (копия).json",
        "unicode/spaces and 'quotes'.csv",
    ] {
        let size = rng.usize(..10_000);
        files.insert(name.into(), random_bytes(&mut rng, size));
    }
    let deep: Vec<String> = (0..40).map(|i| format!("level{i}")).collect();
    files.insert(format!("{}/leaf.txt", deep.join("/")), b"deep".to_vec());
    files.insert("empty/only-an-empty-file".into(), Vec::new());
    files.insert("empty.txt".into(), Vec::new());
    for i in 0..2000 {
        let size = rng.usize(..200);
        files.insert(format!("many/file-{i:04}.txt"), random_bytes(&mut rng, size));
    }
    files
}

/// Asserts two trees hold the same paths and bytes, naming the first difference.
pub fn assert_same(got: &Files, want: &Files) {
    let got_paths: Vec<&String> = got.keys().collect();
    let want_paths: Vec<&String> = want.keys().collect();
    assert_eq!(got_paths, want_paths, "file sets differ");
    for (path, bytes) in want {
        if got[path] != *bytes {
            let at = got[path].iter().zip(bytes).position(|(a, b)| a != b);
            panic!(
                "{path}: bytes differ (len {} vs {}, first difference at {at:?})",
                got[path].len(),
                bytes.len()
            );
        }
    }
}

/// Runs a shell command and returns stdout, panicking with stderr on failure.
pub fn sh(script: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    assert!(out.status.success(), "{script}: {}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// A TCP proxy on 127.0.0.1 in front of a real server, that a test can make stall (accept and
/// never answer, like a server under `SIGSTOP`) or go down (refuse every connection), and bring
/// back. Its threads end with the test process.
pub struct Proxy {
    pub addr: std::net::SocketAddr,
    mode: std::sync::Arc<std::sync::atomic::AtomicU8>,
}

impl Proxy {
    const FORWARD: u8 = 0;
    const STALL: u8 = 1;
    const DOWN: u8 = 2;

    /// Forwards every connection to `upstream` (`host:port`).
    pub fn start(upstream: &str) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(Self::FORWARD));
        let upstream = upstream.to_owned();
        let m = mode.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if m.load(Ordering::SeqCst) == Self::DOWN {
                    drop(client);
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(&upstream) else { continue };
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (from, to, m) =
                        (from.try_clone().unwrap(), to.try_clone().unwrap(), m.clone());
                    std::thread::spawn(move || pump(from, to, &m));
                }
            }
        });
        Proxy { addr, mode }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Accepts connections and holds every byte: nothing is answered until [`Proxy::forward`].
    /// Returns once every pump has seen the change: one already waiting in `read` (up to its
    /// 50 ms timeout) would otherwise still forward the first bytes that arrive, so a request
    /// made right after `stall` on a kept-alive connection could slip through.
    pub fn stall(&self) {
        self.mode.store(Self::STALL, std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(200));
    }

    /// Closes every connection, new and open.
    pub fn down(&self) {
        self.mode.store(Self::DOWN, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn forward(&self) {
        self.mode.store(Self::FORWARD, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Copies `from` to `to` while the proxy forwards; holds the bytes while it stalls; closes both
/// when it goes down.
fn pump(
    mut from: std::net::TcpStream,
    mut to: std::net::TcpStream,
    mode: &std::sync::atomic::AtomicU8,
) {
    use std::io::{Read as _, Write as _};
    use std::sync::atomic::Ordering;
    from.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match mode.load(Ordering::SeqCst) {
            Proxy::DOWN => break,
            Proxy::STALL => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            _ => {}
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// A tmpfs of `size` mounted at `path` for one test, unmounted when dropped (also on failure).
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    /// `None` when a tmpfs cannot be mounted (not root): the test says so and skips.
    pub fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(path).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(path.to_owned()))
    }

    /// Bytes in use on the tmpfs at `path`.
    pub fn used_bytes(path: &Path) -> u64 {
        let s = rustix::fs::statvfs(path).unwrap();
        (s.f_blocks - s.f_bfree) * s.f_frsize
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
