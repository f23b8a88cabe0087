//! W&B parity through `artfs serve` and the real SDK: `latest` as a plain alias, artifact files
//! (`files()`, URLs, downloads), commit hashes and history steps, and the smaller gaps.

use crate::serve::{Server, create_key, run_flow};
use crate::util::Env;

fn served() -> (Env, Server, String) {
    let env = Env::new();
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    let server = Server::start(&env, &[]);
    (env, server, key)
}

#[test]
fn latest_is_an_alias_the_sdk_may_remove_and_the_next_log_moves() {
    let (env, server, key) = served();
    let (result, _) = run_flow(&env, &server, &key, "latest_alias.py", "latest", &[]);
    assert_eq!(result["latest"], "v2");
    // Read back from the registry itself: v1 kept only `replaced`, v2 is `latest`.
    let versions = env.ok(&["versions", "acme/bikes/bikes"]);
    assert!(versions.lines().any(|l| l.contains("v1") && l.contains("replaced")), "{versions}");
    assert!(!versions.lines().any(|l| l.contains("v1") && l.contains("latest")), "{versions}");
    // The CLI moves it too, and `rm` says where it went.
    let out = env.ok(&["alias", "acme/bikes/bikes:v0", "--add", "latest"]);
    assert!(out.contains("v0 aliases: latest"), "{out}");
    let out = env.ok(&["alias", "acme/bikes/bikes:v0", "--remove", "latest"]);
    assert!(out.trim_end().ends_with("v0 aliases:"), "{out}");
    env.ok(&["alias", "acme/bikes/bikes:v2", "--add", "latest"]);
    let out = env.ok(&["rm", "acme/bikes/bikes:v2", "--delete-aliases"]);
    assert!(out.contains("v2 deleted; `latest` names v1"), "{out}");
}

#[test]
fn artifact_files_are_counted_filtered_and_download_through_w_and_b_shaped_urls() {
    let (env, server, key) = served();
    let (result, _) = run_flow(&env, &server, &key, "files_urls.py", "files", &[]);
    // The commit hash is the stored manifest's MD5: read it back from the registry.
    let hash = result["commit_hash"].as_str().unwrap().to_owned();
    let manifests = std::fs::read_dir(env.path("registry/manifests")).unwrap();
    let stored: Vec<String> =
        manifests.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(stored, [format!("{hash}.json")]);
    let log = server.log_text();
    assert!(log.contains(&format!("GET /storage/manifest/{hash}/wandb_manifest.json")), "{log}");
    assert_eq!(log.matches("GET /storage/wandb_artifacts/").count(), 6, "3 files, twice");
}

#[test]
fn ready_answers_like_w_and_b_servers() {
    let (_env, server, _key) = served();
    let (status, body) = crate::serve::http(&server.addr, "GET", "/ready", &[], b"");
    assert_eq!((status, body.as_str()), (200, "ok"));
}

#[test]
fn an_incremental_artifact_may_start_without_a_base_version() {
    let (env, server, key) = served();
    let (result, _) = run_flow(&env, &server, &key, "incremental_first.py", "incr", &[]);
    assert_ne!(result["v0"], result["v1"]);
    // Read back through the CLI: v0 holds what the first log sent, v1 adds to it.
    let files = |v: &str| {
        let out = env.ok(&["show", "--files", &format!("acme/bikes/incr:{v}")]);
        let mut names: Vec<String> = ["a.txt", "c.txt", "d/b.txt"]
            .into_iter()
            .filter(|n| out.lines().any(|l| l.split_whitespace().any(|w| w == *n)))
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    };
    assert_eq!(files("v0"), ["a.txt", "d/b.txt"]);
    assert_eq!(files("v1"), ["a.txt", "c.txt", "d/b.txt"]);
}

#[test]
fn storage_regions_the_server_does_not_know_are_refused_with_w_and_b_s_error() {
    let env = Env::new();
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    let server = Server::start(&env, &["--storage-region", "minio-local"]);
    let (result, _) = run_flow(&env, &server, &key, "storage_region.py", "region", &[]);
    assert!(result["refused"].as_str().unwrap().contains("coreweave-us"));
    // The refused artifact left nothing behind; the known region's version is there.
    let versions = env.ok(&["versions", "acme/bikes/regional"]);
    assert!(versions.contains("v0"), "{versions}");
    assert!(
        env.cmd().args(["versions", "acme/bikes/elsewhere"]).output().unwrap().status.code()
            != Some(0)
    );
}

#[test]
fn versions_keep_the_history_step_the_sdk_logged_them_at() {
    let (env, server, key) = served();
    let (result, _) = run_flow(&env, &server, &key, "history_step.py", "step", &[]);
    assert_eq!((result["v0"].clone(), result["v1"].clone()), (serde_json::Value::Null, 0.into()));
}

#[test]
fn the_public_api_logs_an_existing_version_to_a_finished_run() {
    let (env, server, key) = served();
    let (result, _) = run_flow(&env, &server, &key, "public_run_log.py", "public-log", &[]);
    assert_eq!(result["logged"], serde_json::json!(["acme/bikes/saved:v0"]));
    // Read back: the run that never logged anything itself (no job type) now logged one version.
    let runs = env.ok(&["runs", "acme/bikes"]);
    let logged_by_plain_run = runs.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 3 && f[1] == "-" && f[3] == "1"
    });
    assert!(logged_by_plain_run, "{runs}");
}
