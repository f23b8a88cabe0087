//! Fixtures for mount tests: a temporary registry and cache, the `artfs` binary, random trees,
//! and a guard that never leaves a mount behind.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a mount may take to appear, or a daemon to exit.
const WAIT: Duration = Duration::from_secs(30);

pub const MIB: usize = 1 << 20;

/// A registry, a cache and room for mount points, all in one temporary directory.
pub struct Env {
    pub dir: TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env { dir: tempfile::tempdir().unwrap() }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn registry(&self) -> PathBuf {
        self.path("registry")
    }

    pub fn cache(&self) -> PathBuf {
        self.path("cache")
    }

    /// The binary with this env's registry and cache; entity `acme`, project `bikes`.
    pub fn artfs(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_artfs"));
        for var in ["ARTFS_REGISTRY", "ARTFS_CACHE_DIR", "ARTFS_CACHE_SIZE", "ARTFS_LOG"] {
            cmd.env_remove(var);
        }
        cmd.env("ARTFS_ENTITY", "acme")
            .env("ARTFS_PROJECT", "bikes")
            .arg("--registry")
            .arg(self.registry())
            .arg("--cache-dir")
            .arg(self.cache());
        cmd
    }

    /// Runs the binary and returns stdout; panics with stderr on failure.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.artfs().args(args).output().unwrap();
        assert!(out.status.success(), "artfs {args:?}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Logs `src` (a directory) as a new version of `acme/bikes/<name>`.
    pub fn log(&self, name: &str, src: &Path) {
        self.run(&["-q", "log", name, src.to_str().unwrap()]);
    }

    /// Writes `files` to a fresh source directory and logs it as a new version of
    /// `acme/bikes/<name>`. Returns the source directory.
    pub fn log_files(&self, name: &str, files: &Files) -> PathBuf {
        let src = self.path("src");
        if src.exists() {
            fs::remove_dir_all(&src).unwrap();
        }
        write_tree(&src, files);
        self.log(name, &src);
        src
    }

    /// `artfs cache stats --json` as (entries, misses).
    pub fn cache_stats(&self) -> (u64, u64) {
        let out = self.run(&["cache", "stats", "--json"]);
        let entries = json_u64(&out, "entries");
        let misses = json_u64(&out, "misses");
        (entries, misses)
    }

    /// Mounts in the foreground (`args` are what follows `mount`, e.g. `["ds", MOUNTPOINT]`)
    /// and waits until the mount is ready.
    pub fn mount(&self, args: &[&str]) -> MountGuard {
        mount_with(self.artfs(), args)
    }
}

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

/// A number field of flat JSON, without a JSON parser in the tests.
fn json_u64(text: &str, key: &str) -> u64 {
    let needle = format!("\"{key}\":");
    let at = text.find(&needle).unwrap_or_else(|| panic!("{key} in {text}")) + needle.len();
    text[at..].trim_start().split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
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

pub fn write_tree(root: &Path, files: &Files) {
    for (rel, bytes) in files {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::File::create(&path).unwrap().write_all(bytes).unwrap();
    }
}

/// Every regular file below `root`, by relative path, with its content.
pub fn read_tree(root: &Path) -> Files {
    let mut out = Files::new();
    for item in walkdir::WalkDir::new(root).follow_links(false) {
        let item = item.unwrap();
        if item.file_type().is_file() {
            let rel = item.path().strip_prefix(root).unwrap();
            let bytes = fs::read(item.path()).unwrap();
            out.insert(rel.to_str().unwrap().to_owned(), bytes);
        }
    }
    out
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
