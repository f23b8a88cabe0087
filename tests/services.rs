//! `scripts/test-services.sh` moved to other ports and another state dir: a second copy of the
//! test services runs beside the default one, answers on its own ports, and stops alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::{Env, create_s3_bucket, curl};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test-services.sh")
}

/// The script run with a private state dir and ports (and the shared venv).
struct Services {
    vars: Vec<(&'static str, String)>,
}

impl Services {
    fn run(&self, action: &str) -> Output {
        let mut cmd = Command::new(script());
        cmd.arg(action);
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        let _ = self.run("stop");
    }
}

/// Three distinct ports that were free a moment ago.
fn free_ports() -> [u16; 3] {
    let listeners: Vec<_> =
        (0..3).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let port = |i: usize| listeners[i].local_addr().unwrap().port();
    [port(0), port(1), port(2)]
}

fn answers(url: &str) -> bool {
    Command::new("curl")
        .args(["-sf", "--noproxy", "*", "--max-time", "5", "-o", "/dev/null", url])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn the_test_services_run_on_other_ports_beside_the_default_ones() {
    // The venv the running services use (exported by `test-services.sh env`): reusing it keeps
    // this test from installing Python packages.
    let Some(venv) = std::env::var("ARTFS_SERVICES_VENV").ok().filter(|v| Path::new(v).is_dir())
    else {
        eprintln!("skipped: ARTFS_SERVICES_VENV is not set (run `make test`)");
        return;
    };
    // Likewise the wandb SDK's venv, which `start` would otherwise install into the new state dir.
    let Some(wandb_venv) = std::env::var("ARTFS_WANDB_VENV").ok().filter(|v| Path::new(v).is_dir())
    else {
        eprintln!("skipped: ARTFS_WANDB_VENV is not set (run `make test`)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A port found free may be taken by another test before the server binds it: the script
    // then refuses to start (it never shares a port), and another set of ports is tried.
    let mut attempts = 0;
    let (services, [s3, gcs, http]) = loop {
        let ports @ [s3, gcs, http] = free_ports();
        let services = Services {
            vars: vec![
                ("ARTFS_SERVICES_DIR", dir.path().display().to_string()),
                ("ARTFS_SERVICES_VENV", venv.clone()),
                ("ARTFS_WANDB_VENV", wandb_venv.clone()),
                ("ARTFS_S3_PORT", s3.to_string()),
                ("ARTFS_GCS_PORT", gcs.to_string()),
                ("ARTFS_HTTP_PORT", http.to_string()),
                ("ARTFS_SERVICES_TIMEOUT", "120".into()),
            ],
        };
        let started = services.run("start");
        let stderr = String::from_utf8_lossy(&started.stderr).into_owned();
        attempts += 1;
        if started.status.success() {
            break (services, ports);
        }
        assert!(stderr.contains("is taken") && attempts < 3, "start: {stderr}");
    };

    // `env` points the tests at the moved ports.
    let env_out = String::from_utf8(services.run("env").stdout).unwrap();
    let exported: BTreeMap<&str, &str> =
        env_out.lines().filter_map(|l| l.strip_prefix("export ")?.split_once('=')).collect();
    let s3_url = format!("http://127.0.0.1:{s3}");
    assert_eq!(exported["ARTFS_TEST_S3_ENDPOINT"], s3_url);
    assert_eq!(exported["ARTFS_TEST_GCS_ENDPOINT"], format!("http://127.0.0.1:{gcs}"));
    assert_eq!(exported["ARTFS_TEST_HTTP_URL"], format!("http://127.0.0.1:{http}"));
    assert!(answers(&format!("{s3_url}/_ministack/health")));
    assert!(answers(&format!("http://127.0.0.1:{gcs}/storage/v1/b")));
    assert!(answers(&format!("http://127.0.0.1:{http}/")));
    let status = services.run("status");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stdout));

    // artfs uses the moved S3 like the default one.
    let bucket = crate::util::unique_bucket("ports");
    create_s3_bucket(&s3_url, &bucket, false);
    let mut env = Env::with_registry(&format!("s3://{bucket}/reg"));
    env.vars = vec![
        ("AWS_ENDPOINT_URL".into(), s3_url.clone()),
        ("AWS_ACCESS_KEY_ID".into(), "test".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
        ("AWS_REGION".into(), "us-east-1".into()),
    ];
    let src = env.path("f.txt");
    std::fs::write(&src, b"moved").unwrap();
    env.ok(&["log", "ds", src.to_str().unwrap()]);
    let listed = String::from_utf8(curl(&[&format!("{s3_url}/{bucket}?list-type=2")])).unwrap();
    assert!(listed.contains("reg/artfs-registry.json"), "{listed}");

    // `stop` stops this copy only: the default services (if this run has them) still answer.
    let stopped = services.run("stop");
    assert!(stopped.status.success(), "{}", String::from_utf8_lossy(&stopped.stderr));
    assert!(!services.run("status").status.success());
    assert!(!answers(&format!("{s3_url}/_ministack/health")));
    assert!(!answers(&format!("http://127.0.0.1:{http}/")));
    if let Ok(default_s3) = std::env::var("ARTFS_TEST_S3_ENDPOINT") {
        assert!(answers(&format!("{default_s3}/_ministack/health")), "the default S3 went down");
    }
    if let Ok(default_http) = std::env::var("ARTFS_TEST_HTTP_URL") {
        assert!(answers(&format!("{default_http}/")), "the default HTTP server went down");
    }
}
