//! Running `artfs serve` for a team: keys an operator lists, expires and revokes (checked with
//! the real SDK), the access log, and `/metrics`.

use std::time::Duration;

use crate::serve::{Server, create_key, http, run_flow};
use crate::util::Env;

fn basic(key: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("api:{key}")))
}

/// The HTTP status of a `viewer` query with `key`.
fn viewer_status(server: &Server, key: &str) -> u16 {
    let body = r#"{"query":"query Viewer { viewer { username } }"}"#;
    let auth = basic(key);
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    http(&server.addr, "POST", "/graphql", &headers, body.as_bytes()).0
}

/// What `wandb.Api().viewer` says with `key`: `Some(username)`, `None` when the key is refused.
fn sdk_viewer(env: &Env, server: &Server, key: &str, tag: &str) -> Option<String> {
    let (r, _) = run_flow(env, server, key, "ops_viewer.py", tag, &[]);
    r["ok"].as_bool().unwrap().then(|| r["username"].as_str().unwrap().to_owned())
}

fn key_list(env: &Env) -> Vec<serde_json::Value> {
    env.json(&["key", "list"]).as_array().unwrap().clone()
}

fn by_user<'a>(keys: &'a [serde_json::Value], user: &str) -> &'a serde_json::Value {
    keys.iter().find(|k| k["user"] == user).unwrap_or_else(|| panic!("no key of {user}: {keys:?}"))
}

#[test]
fn keys_are_listed_expire_and_are_revoked_for_the_next_request() {
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let ana = create_key(&env, &["ana", "--entities", "acme"]);
    let bo = create_key(&env, &["bo", "--entities", "acme", "--read-only", "--expires", "6s"]);
    let created = std::time::Instant::now();
    assert_eq!(viewer_status(&server, &bo), 200);

    assert_eq!(sdk_viewer(&env, &server, &ana, "ana").as_deref(), Some("ana"));
    let keys = key_list(&env);
    assert_eq!(keys.len(), 2, "{keys:?}");
    let listed = serde_json::to_string(&keys).unwrap();
    for secret in [&ana, &bo] {
        assert!(!listed.contains(&secret[6..]), "key list shows a secret: {listed}");
    }
    let ana_row = by_user(&keys, "ana");
    assert!(ana_row["last_used"].is_string(), "a used key shows its last use: {ana_row}");
    assert!(ana_row["revoked_at"].is_null() && ana_row["expires_at"].is_null());
    let bo_row = by_user(&keys, "bo");
    assert!(bo_row["expires_at"].is_string(), "{bo_row}");
    assert_eq!(bo_row["read_only"], true);
    let table = env.ok(&["key", "list"]);
    assert!(
        table.starts_with("ID ") && table.contains(" ana ") && table.contains("active"),
        "{table}"
    );

    // Revoked: refused by the very next request, although the server remembers the key.
    env.ok(&["key", "revoke", ana_row["id"].as_str().unwrap()]);
    assert_eq!(viewer_status(&server, &ana), 401);
    assert_eq!(sdk_viewer(&env, &server, &ana, "ana-revoked"), None);
    let revoked = key_list(&env);
    assert!(by_user(&revoked, "ana")["revoked_at"].is_string());
    assert!(env.ok(&["key", "list"]).contains("revoked"));

    // Expired: worked until its time, refused from then on.
    std::thread::sleep(Duration::from_secs(6).saturating_sub(created.elapsed()));
    assert_eq!(viewer_status(&server, &bo), 401);
    assert_eq!(sdk_viewer(&env, &server, &bo, "bo-expired"), None);
    assert!(env.ok(&["key", "list"]).contains("expired"));

    let unknown = env.fails(&["key", "revoke", "ffffffffffff"]);
    assert!(unknown.contains("no key has this id"), "{unknown}");
}

/// `artfs serve` as an operator starts it: no `ARTFS_LOG`.
fn start_plain(env: &Env, extra: &[&str], log: &str) -> Server {
    Server::spawn_as_is(env.cmd(), extra, env.path(log))
}

fn log_one(env: &Env, server: &Server, key: &str, tag: &str) {
    let vars = [("FLOW_ARTIFACT", "ds"), ("FLOW_SEED", "7"), ("FLOW_SIZE", "5000")];
    run_flow(env, server, key, "log_one.py", tag, &vars);
}

/// The value of the metric line that starts with `prefix` (name and labels).
fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {prefix} in:\n{text}"))
}

#[test]
fn the_access_log_names_each_request_and_no_secret() {
    let env = Env::new();
    let server = start_plain(&env, &[], "serve.log");
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    log_one(&env, &server, &key, "text");
    assert_eq!(viewer_status(&server, "artfs-not-a-key-at-all-0000000000000000000000"), 401);
    let log = server.log_text();
    let access: Vec<&str> = log.lines().filter(|l| l.contains("artfs::access")).collect();
    assert!(
        access.iter().any(|l| l.contains("POST /graphql op=")
            && l.contains(" 200 ")
            && l.ends_with("user=ana")),
        "{log}"
    );
    assert!(
        access.iter().any(|l| l.contains("PUT /storage/blob/") && l.contains(" in=5000 ")),
        "{log}"
    );
    assert!(
        access.iter().any(|l| l.contains("POST /graphql 401") && l.ends_with("user=-")),
        "{log}"
    );
    for secret in [&key[6..], "sig=", "expires=", "not-a-key"] {
        assert!(!log.contains(secret), "the log shows {secret:?}:\n{log}");
    }
    assert!(log.contains("WANDB_BASE_URL=http://") && log.contains("/ui/"), "{log}");
    assert!(log.contains("no API key"), "a server started before any key warns:\n{log}");

    let json_server = start_plain(&env, &["--access-log", "json"], "serve-json.log");
    log_one(&env, &json_server, &key, "json");
    let json_log = json_server.log_text();
    assert!(!json_log.contains("no API key"), "{json_log}");
    let lines: Vec<serde_json::Value> =
        json_log.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let put = lines.iter().find(|l| l["method"] == "PUT").unwrap_or_else(|| panic!("{json_log}"));
    assert!(
        put["path"].as_str().unwrap().starts_with("/storage/") && put["status"] == 200,
        "{put}"
    );
    assert!(lines.iter().any(|l| l["user"] == "ana" && l["op"].is_string()), "{json_log}");

    let quiet = start_plain(&env, &["--access-log", "off"], "serve-off.log");
    log_one(&env, &quiet, &key, "off");
    assert!(!quiet.log_text().contains("/graphql"), "{}", quiet.log_text());
}

#[test]
fn metrics_count_requests_errors_bytes_and_latency() {
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    log_one(&env, &server, &key, "metrics");
    assert_eq!(viewer_status(&server, "artfs-not-a-key-at-all-0000000000000000000000"), 401);
    let (status, text) = http(&server.addr, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200, "{text}");
    let graphql_ok = r#"artfs_serve_requests_total{route="/graphql",method="POST",status="200"}"#;
    assert!(metric(&text, graphql_ok) >= 3.0, "{text}");
    let refused = r#"artfs_serve_requests_total{route="/graphql",method="POST",status="401"}"#;
    assert_eq!(metric(&text, refused), 1.0, "{text}");
    let put = r#"artfs_serve_requests_total{route="/storage/blob",method="PUT",status="200"}"#;
    assert_eq!(metric(&text, put), 1.0, "{text}");
    assert!(metric(&text, "artfs_serve_received_bytes_total ") >= 5000.0, "{text}");
    assert!(metric(&text, "artfs_serve_sent_bytes_total ") > 0.0, "{text}");
    let count = metric(&text, r#"artfs_serve_request_duration_seconds_count{route="/graphql"}"#);
    let inf = r#"artfs_serve_request_duration_seconds_bucket{route="/graphql",le="+Inf"}"#;
    assert_eq!(metric(&text, inf), count, "{text}");
    assert!(text.contains("# TYPE artfs_serve_request_duration_seconds histogram"), "{text}");
}

/// A registry with `acme/bikes/ds:v0` holding `a.txt` (`hello`).
fn logged_ds() -> Env {
    let env = Env::new();
    let files = crate::util::Files::from([("a.txt".to_owned(), b"hello".to_vec())]);
    env.log_files("ds", &files);
    env
}

#[test]
fn mount_points_are_checked_cleaned_up_and_listed() {
    let env = logged_ds();

    let full = env.path("full");
    std::fs::create_dir_all(&full).unwrap();
    std::fs::write(full.join("mine.txt"), b"kept").unwrap();
    let refused = env.fails(&["mount", full.to_str().unwrap()]);
    assert!(refused.contains("not empty") && refused.contains("--allow-non-empty"), "{refused}");
    assert!(!crate::util::is_mounted(&full));
    let over = env.mount(&["--allow-non-empty", full.to_str().unwrap()]);
    assert!(over.join("acme/bikes/ds:v0/a.txt").exists());

    let one = env.path("one");
    let single = env.mount(&["acme/bikes/ds:latest", one.to_str().unwrap()]);
    let listed = env.json(&["mounts"]);
    let source_at = |p: &std::path::Path| {
        let p = std::fs::canonicalize(p).unwrap();
        let row =
            listed.as_array().unwrap().iter().find(|m| m["mountpoint"] == p.to_str().unwrap());
        row.unwrap_or_else(|| panic!("{} not in {listed}", p.display()))["source"].clone()
    };
    assert_eq!(source_at(&full), env.registry.as_str());
    assert_eq!(source_at(&one), format!("acme/bikes/ds:latest@{}", env.registry).as_str());
    assert!(env.ok(&["mounts"]).contains(&format!("acme/bikes/ds:latest@{}", env.registry)));
    drop((over, single));
    assert_eq!(std::fs::read(full.join("mine.txt")).unwrap(), b"kept");

    // A mount that fails removes the mount point it created, and only that.
    let made = env.path("made/here");
    let failed = env.fails(&["mount", "acme/bikes/nope:latest", made.to_str().unwrap()]);
    assert!(failed.contains("nope"), "{failed}");
    assert!(!made.exists(), "the mount point made for a failed mount is left behind");
}

/// `cat PATH` as another user (uid = gid = `id`, no supplementary groups): whether it could read.
fn cat_as(id: u32, path: &std::path::Path) -> bool {
    let id = id.to_string();
    std::process::Command::new("setpriv")
        .args(["--reuid", &id, "--regid", &id, "--clear-groups", "cat"])
        .arg(path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[test]
fn owner_group_and_modes_are_what_the_mount_says() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let env = logged_ds();
    let mnt = env.path("mnt");
    let m = env.mount(&[
        "--allow-other",
        "--uid=4321",
        "--gid=4321",
        "--file-mode=0440",
        "--dir-mode=0550",
        "acme/bikes/ds:v0",
        mnt.to_str().unwrap(),
    ]);
    let file = m.join("a.txt");
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!((meta.uid(), meta.gid(), meta.permissions().mode() & 0o777), (4321, 4321, 0o440));
    let dir = std::fs::metadata(&mnt).unwrap();
    assert_eq!((dir.uid(), dir.permissions().mode() & 0o777), (4321, 0o550));
    if nix::unistd::geteuid().is_root() {
        assert!(cat_as(4321, &file), "the owner given with --uid cannot read");
        assert!(!cat_as(4322, &file), "another user reads a 0440 file");
    }
    let bad = env.fails(&["mount", "--file-mode=999", env.path("bad").to_str().unwrap()]);
    assert!(bad.contains("invalid mode"), "{bad}");
}

#[test]
fn fstab_and_mount_t_reach_artfs_through_its_mount_helper() {
    use std::os::unix::fs::MetadataExt;
    let env = logged_ds();
    let helper = env.path("sbin/mount.fuse.artfs");
    std::fs::create_dir_all(helper.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_artfs"), &helper).unwrap();
    let mnt = env.path("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    std::fs::write(mnt.join("placeholder"), b"").unwrap();
    // What mount(8) runs for `mount -t fuse.artfs SOURCE MNT -o …` or an fstab line.
    let source = format!("acme/bikes/ds:latest@{}", env.registry);
    let opts = "ro,nodev,_netdev,x-systemd.automount,allow_other,uid=4321,nonempty";
    let out = std::process::Command::new(&helper)
        .args([source.as_str(), mnt.to_str().unwrap(), "-o", opts])
        .env("ARTFS_CACHE_DIR", env.path("cache"))
        .env_remove("ARTFS_REGISTRY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let guard = crate::util::MountGuard::adopt(mnt.clone());
    assert_eq!(std::fs::read(guard.join("a.txt")).unwrap(), b"hello");
    assert_eq!(std::fs::metadata(guard.join("a.txt")).unwrap().uid(), 4321);
    assert!(env.ok(&["mounts"]).contains(&source), "{}", env.ok(&["mounts"]));
    env.ok(&["unmount", mnt.to_str().unwrap()]);
    crate::util::wait_until(|| !crate::util::is_mounted(&mnt));
}

#[test]
fn a_run_the_mount_started_is_finished_at_unmount() {
    let env = logged_ds();
    env.ok(&["-q", "run", "start", "before"]);
    let state_of = |id: &str| {
        let runs = env.json(&["runs"]);
        let run = runs.as_array().unwrap().iter().find(|r| r["id"] == format!("acme/bikes/{id}"));
        run.unwrap_or_else(|| panic!("no run {id}: {runs}")).clone()
    };
    for (id, tag) in [("fresh", "m1"), ("before", "m2")] {
        let mnt = env.path(tag);
        let mut m = env.mount(&["--run", id, "acme/bikes/ds:v0", mnt.to_str().unwrap()]);
        assert_eq!(std::fs::read(m.join("a.txt")).unwrap(), b"hello");
        crate::util::wait_until(|| state_of(id)["used"].as_array().is_some_and(|u| !u.is_empty()));
        env.ok(&["unmount", mnt.to_str().unwrap()]);
        assert!(m.wait_exit().success(), "{}", m.log_text());
    }
    assert_eq!(state_of("fresh")["state"], "finished");
    assert_eq!(state_of("fresh")["exit_code"], 0);
    assert_eq!(
        state_of("before")["state"],
        "running",
        "a run started before the mount is left open"
    );
}
