//! Test helpers: an isolated registry + cache per test, running the binary, comparing trees.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
pub fn write_tree(root: &Path, files: &BTreeMap<String, Vec<u8>>) {
    for (rel, bytes) in files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

/// Every regular file below `root`, by relative path.
pub fn read_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
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
    pub fn mount(&self, args: &[&str]) -> crate::mount::harness::MountGuard {
        crate::mount::harness::mount_with(self.cmd(), args)
    }
}
