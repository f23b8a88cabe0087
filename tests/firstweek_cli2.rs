//! The rest of the first week on the command line: `gc --dry-run`, a bare `ls`, config-file
//! profiles, and `--json` on every command.

use std::collections::BTreeSet;
use std::io::BufRead as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::util::{Env, list_files};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn file(env: &Env, name: &str, text: &str) -> String {
    let f = env.path(name);
    std::fs::write(&f, text).unwrap();
    f.to_str().unwrap().to_owned()
}

/// `gc --dry-run` lists the versions, blobs, manifests and bytes gc would delete, deletes
/// nothing (the store is byte for byte the same), and `gc` then deletes exactly that.
#[test]
fn gc_dry_run_lists_what_gc_deletes_and_deletes_nothing() {
    let env = Env::new();
    env.ok(&["log", "ds", &file(&env, "a.txt", "first version\n")]);
    env.ok(&["log", "ds", &file(&env, "b.txt", "second version, other bytes\n")]);
    env.ok(&["rm", "ds:v0"]);
    let before = list_files(&env.registry_dir());

    let plan = env.json(&["gc", "--dry-run", "--grace", "0s"]);
    assert_eq!(plan["dry_run"], true, "{plan}");
    assert!(plan["blobs_deleted"].as_u64().unwrap() >= 1, "{plan}");
    assert_eq!(plan["manifests_deleted"], 1, "{plan}");
    assert!(plan["bytes_deleted"].as_u64().unwrap() >= 14, "{plan}");
    let keys: Vec<String> = serde_json::from_value(plan["keys"].clone()).unwrap();
    assert!(!keys.is_empty());
    for key in &keys {
        assert!(env.registry_dir().join(key).is_file(), "{key} is not in the registry");
    }
    let text = env.ok(&["gc", "--dry-run", "--grace", "0s"]);
    assert!(text.contains(&format!("would delete {}", keys[0])), "{text}");
    assert!(text.contains("(dry run: nothing deleted)"), "{text}");
    assert_eq!(list_files(&env.registry_dir()), before, "a dry run deleted something");

    let done = env.json(&["gc", "--grace", "0s"]);
    assert_eq!(done["dry_run"], false, "{done}");
    for field in ["blobs_deleted", "manifests_deleted", "bytes_deleted", "keys"] {
        assert_eq!(done[field], plan[field], "{field}");
    }
    for key in &keys {
        assert!(!env.registry_dir().join(key).exists(), "{key} was not deleted");
    }
    env.ok(&["get", "ds:v1", "--root", "out"]);
    assert!(env.path("out/b.txt").is_file());
    assert_eq!(env.json(&["gc", "--dry-run", "--grace", "0s"])["keys"], serde_json::json!([]));
}

/// A version whose TTL ran out is named by the dry run as one gc reclaims.
#[test]
fn gc_dry_run_names_expired_versions() {
    let env = Env::new();
    env.ok(&["log", "ds", &file(&env, "a.txt", "short-lived\n")]);
    env.ok(&["log", "ds", &file(&env, "b.txt", "kept\n")]);
    env.ok(&["ttl", "ds:v0", "1s"]);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let plan = env.json(&["gc", "--dry-run", "--grace", "0s"]);
    assert_eq!(plan["expired_versions"], serde_json::json!(["acme/bikes/ds:v0"]), "{plan}");
    let text = env.ok(&["gc", "--dry-run", "--grace", "0s"]);
    assert!(text.contains("expired acme/bikes/ds:v0"), "{text}");
}

/// A bare `artfs ls` whose default project is empty shows what the registry holds instead.
#[test]
fn bare_ls_gives_an_overview_when_the_default_project_is_empty() {
    let env = Env::new();
    let f = file(&env, "a.txt", "x\n");
    env.ok(&["log", "team/cars/ds", &f]);
    env.ok(&["log", "team/cars/m", &f, "--type", "model"]);
    env.ok(&["log", "acme/other/ds", &f]);
    let out = env.run(&["ls"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.lines().any(|l| l.split_whitespace().eq(["team/cars", "2", "2"])), "{text}");
    assert!(text.lines().any(|l| l.split_whitespace().eq(["acme/other", "1", "1"])), "{text}");
    assert!(stderr(&out).contains("acme/bikes, the default project"), "{}", stderr(&out));
    // The default project's own artifacts when it has some; JSON keeps its shape.
    env.ok(&["log", "ds", &f]);
    assert!(env.ok(&["ls"]).lines().any(|l| l.starts_with("ds ")));
    assert_eq!(env.json(&["ls", "other"]).as_array().unwrap().len(), 1);
}

/// `artfs` as a user with no artfs variables, whose config home is `xdg`.
fn profiled(env: &Env) -> Command {
    let mut c = env.cmd();
    for var in ["ARTFS_REGISTRY", "ARTFS_ENTITY", "ARTFS_PROJECT", "ARTFS_CONFIG", "ARTFS_PROFILE"]
    {
        c.env_remove(var);
    }
    for var in ["WANDB_BASE_URL", "WANDB_ENTITY", "WANDB_PROJECT"] {
        c.env_remove(var);
    }
    c.env("XDG_CONFIG_HOME", env.path("xdg"));
    c
}

/// The entity of the first project `ls --all` finds: which registry a command read.
fn first_entity(mut c: Command, args: &[&str]) -> String {
    let out = c.args(args).args(["ls", "--all", "--json"]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    rows[0]["entity"].as_str().unwrap().to_owned()
}

/// A profile of `$XDG_CONFIG_HOME/artfs/config.toml` chooses the registry, entity and project;
/// `ARTFS_REGISTRY` beats it and `--registry` beats that; `-v` and `show` say where the
/// registry came from; an unknown profile or a bad file is one line naming the file (and line).
#[test]
fn profiles_choose_the_registry_and_env_and_flags_beat_them() {
    let env = Env::new();
    let (a, b) = (env.path("reg-a"), env.path("reg-b"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let f = file(&env, "f.txt", "profiles\n");
    env.ok(&["--registry", a, "log", "acme/bikes/ds", &f]);
    env.ok(&["--registry", b, "log", "team/cars/ds", &f]);
    let config = env.path("xdg/artfs/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    let text = format!(
        "[default]\nregistry = \"{a}\"\n\n[profile.team]\nregistry = \"{b}\"\nentity = \
         \"team\"\nproject = \"cars\"\ncache_size = \"1G\"\n"
    );
    std::fs::write(&config, text).unwrap();

    assert_eq!(first_entity(profiled(&env), &[]), "acme", "[default]");
    assert_eq!(first_entity(profiled(&env), &["--profile", "team"]), "team");
    let mut c = profiled(&env);
    c.env("ARTFS_PROFILE", "team");
    assert_eq!(first_entity(c, &[]), "team", "ARTFS_PROFILE");
    let mut c = profiled(&env);
    c.env("ARTFS_REGISTRY", a);
    assert_eq!(first_entity(c, &["--profile", "team"]), "acme", "env beats the profile");
    let mut c = profiled(&env);
    c.env("ARTFS_REGISTRY", a);
    assert_eq!(first_entity(c, &["--profile", "team", "--registry", b]), "team", "flag beats env");

    // The profile's entity and project are the defaults of artifact paths; -v and show say why.
    let out = profiled(&env).args(["-v", "--profile", "team", "show", "ds"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let source = format!("from profile team in {}", config.display());
    assert!(stdout(&out).contains(&format!("registry:    {b} ({source})")), "{}", stdout(&out));
    assert!(stderr(&out).contains(&format!("registry {b} ({source})")), "{}", stderr(&out));

    // ARTFS_CONFIG points elsewhere; mistakes are one line with the file, exit status 2.
    let out = profiled(&env).args(["--profile", "nope", "ls"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no profile \"nope\"") && err.contains("(it has: team)"), "{err}");
    assert!(err.contains(&config.display().to_string()), "{err}");
    let bad = file(&env, "bad.toml", "[default]\nregistry = \"x\"\nregisty = \"y\"\n");
    let out = profiled(&env).env("ARTFS_CONFIG", &bad).arg("ls").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with(&format!("error: config file {bad}, line 3: ")), "{err}");
}

/// The leaf commands `artfs --help` lists (`key create`, `ls`, …), but for `help`.
fn leaf_commands(prefix: &[&str]) -> Vec<String> {
    let out = Command::new(crate::util::BIN).args(prefix).arg("--help").output().unwrap();
    let help = stdout(&out);
    let names: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|n| n != "help")
        .collect();
    if names.is_empty() {
        return vec![prefix.join(" ")];
    }
    let mut leaves = Vec::new();
    for name in names {
        let mut sub = prefix.to_vec();
        sub.push(&name);
        leaves.extend(leaf_commands(&sub));
    }
    leaves
}

/// Runs `artfs ARGS --json` and parses stdout as one JSON value.
fn json_of(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut full = args.to_vec();
    full.push("--json");
    let out = env.run(&full);
    assert!(out.status.success(), "{full:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{full:?}: not JSON ({e}): {}", stdout(&out)))
}

/// Every command `artfs --help` lists takes `--json` and prints JSON (but `completions` and
/// `man`, whose output is a script and a manual page).
#[test]
fn every_command_prints_json() {
    let env = Env::new();
    let f = file(&env, "f.txt", "json everywhere\n");
    let mut runs: Vec<Vec<String>> = Vec::new();
    let mut json = |args: &[&str]| {
        runs.push(args.iter().map(|s| s.to_string()).collect());
        json_of(&env, args)
    };
    json(&["log", "ds", &f]);
    json(&["ls"]);
    json(&["versions", "ds"]);
    json(&["show", "ds"]);
    json(&["get", "ds", "--root", "out"]);
    json(&["prefetch", "ds"]);
    json(&["alias", "ds:v0", "--add", "best"]);
    json(&["edit", "ds:v0", "--description", "d"]);
    json(&["tag", "ds:v0", "--add", "t"]);
    json(&["ttl", "ds:v0", "never"]);
    let run = json(&["run", "start", "r1"]);
    assert!(!run["run"].is_null(), "{run}");
    json(&["run", "finish", "r1"]);
    json(&["runs"]);
    json(&["lineage", "ds"]);
    json(&["cache", "stats"]);
    json(&["cache", "prune", "--to", "1G"]);
    json(&["cache", "clear"]);
    json(&["user", "create", "bob"]);
    let created = json(&["key", "create", "ana"]);
    assert_eq!(created["user"], "ana");
    let keys = json(&["key", "list"]);
    let id = keys[0]["id"].as_str().unwrap().to_owned();
    let revoked = json(&["key", "revoke", &id]);
    assert_eq!(revoked["revoked"], true, "{revoked}");
    let org = json(&["org", "create", "acme-org", "--admin", "ana"]);
    assert_eq!(org["change"]["kind"], "create_org", "{org}");
    json(&["org", "add-member", "acme-org", "bob", "--role", "member"]);
    json(&["team", "create", "racers", "--org", "acme-org"]);
    json(&["team", "add-member", "racers", "bob"]);
    json(&["org", "rm-member", "acme-org", "bob"]);
    json(&["org", "delete", "acme-org"]);
    json(&["log", "ds", &file(&env, "g.txt", "v1\n")]);
    json(&["rm", "ds:v1", "--delete-aliases"]);
    json(&["gc", "--grace", "0s"]);
    json(&["mounts"]);
    runs.push(serve_prints_json(&env));
    runs.extend(mount_and_unmount_print_json(&env));

    let leaves = leaf_commands(&[]);
    assert!(leaves.len() > 30 && leaves.contains(&"key revoke".to_owned()), "{leaves:?}");
    let covered: BTreeSet<String> = runs
        .iter()
        .map(|args| {
            let words: Vec<&str> = args.iter().map(String::as_str).take(2).collect();
            let two = words.join(" ");
            if leaves.contains(&two) { two } else { words[0].to_owned() }
        })
        .collect();
    let missing: Vec<String> = leaves
        .into_iter()
        .filter(|c| !covered.contains(c) && c != "completions" && c != "man")
        .collect();
    assert!(missing.is_empty(), "commands not checked for --json: {missing:?}");
}

/// `artfs serve --json`: the first stdout line is a JSON object with the address.
fn serve_prints_json(env: &Env) -> Vec<String> {
    let args = ["serve", "--listen", "127.0.0.1:0", "--json"];
    let mut child = env.cmd().args(args).stdout(Stdio::piped()).spawn().unwrap();
    let mut first = String::new();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap());
    // Pretty-printed: one object over several lines, up to the closing brace (a first line
    // that opens none is the answer as it is).
    while lines.read_line(&mut first).unwrap() > 0
        && first.starts_with('{')
        && !first.ends_with("}\n")
    {}
    let _ = child.kill();
    let _ = child.wait();
    let v: serde_json::Value =
        serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert!(v["listening"].as_str().unwrap().starts_with("http://127.0.0.1:"), "{v}");
    assert_eq!(v["registry"], env.registry.as_str(), "{v}");
    assert!(v["ui"].as_str().unwrap().ends_with("/ui/"), "{v}");
    args.iter().map(|s| s.to_string()).collect()
}

/// `artfs mount --json` (the daemon, once ready) and `artfs unmount --json`.
fn mount_and_unmount_print_json(env: &Env) -> Vec<Vec<String>> {
    let mnt = env.path("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let m = mnt.to_str().unwrap();
    let log = env.path("mnt.log");
    let mounted = json_of(env, &["mount", "ds", m, "--log-file", log.to_str().unwrap()]);
    let guard = crate::util::MountGuard::adopt(mnt.clone());
    assert_eq!(Path::new(mounted["mountpoint"].as_str().unwrap()), mnt, "{mounted}");
    assert!(mounted["pid"].as_u64().unwrap() > 0, "{mounted}");
    let gone = json_of(env, &["unmount", m]);
    assert_eq!(gone["lazy"], false, "{gone}");
    drop(guard);
    vec![vec!["mount".into()], vec!["unmount".into()]]
}

/// Every reference the reader's policy refuses is named in one error before anything is
/// written: no destination folder appears, not even for the stored entry that could be read.
#[test]
fn get_names_every_refused_reference_at_once_and_writes_nothing() {
    let env = Env::new();
    let data = env.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("one.txt"), "one\n").unwrap();
    std::fs::write(data.join("two.txt"), "two\n").unwrap();
    let stored = file(&env, "stored.txt", "stored\n");
    let one = format!("file://{}/one.txt=one.txt", data.display());
    let two = format!("file://{}/two.txt=two.txt", data.display());
    env.ok(&["log", "refs", &stored, &one, &two]);

    let out = env.path("out");
    let failed = env.run(&["get", "refs", "--root", out.to_str().unwrap()]);
    let err = stderr(&failed);
    assert_eq!(failed.status.code(), Some(4), "a refusal: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("2 references of acme/bikes/refs:v0 are refused"), "{err}");
    assert!(
        err.contains("entry one.txt (file://") && err.contains("entry two.txt (file://"),
        "{err}"
    );
    assert!(err.contains("--allow-file-refs"), "{err}");
    assert!(!out.exists(), "a refused get wrote {out:?}");
    // Allowed, the same get works.
    let allowed = data.to_str().unwrap();
    env.ok(&["get", "refs", "--root", out.to_str().unwrap(), "--allow-file-refs", allowed]);
    assert_eq!(std::fs::read_to_string(out.join("two.txt")).unwrap(), "two\n");
}

/// A download that fails half-way (a blob gone from the store) leaves no partial folder: the
/// folder it made is removed, and in a folder that was there only what it added goes.
#[test]
fn a_get_that_fails_half_way_leaves_no_partial_folder() {
    let env = Env::new();
    let dir = env.path("src");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    for i in 0..6 {
        std::fs::write(dir.join(format!("sub/f{i}.txt")), format!("file {i}\n")).unwrap();
    }
    env.ok(&["log", "ds", dir.to_str().unwrap()]);
    // Remove one blob of the version from the store (the cache is empty).
    let blobs = env.registry_dir().join("blobs");
    let (victim, _) = list_files(&blobs).into_iter().nth(3).unwrap();
    std::fs::remove_file(blobs.join(victim)).unwrap();

    let fresh = env.path("deep/new/out");
    let err = env.fails(&["get", "ds", "--root", fresh.to_str().unwrap()]);
    assert!(!err.is_empty());
    assert!(!env.path("deep").exists(), "a failed get left {:?}", list_files(&env.path("deep")));

    let there = env.path("there");
    std::fs::create_dir_all(&there).unwrap();
    env.fails(&["get", "ds", "--root", there.to_str().unwrap()]);
    assert!(there.is_dir(), "the folder that was there stays");
    assert_eq!(list_files(&there), [], "a failed get left files in a folder that was there");
    assert_eq!(std::fs::read_dir(&there).unwrap().count(), 0, "nor folders");
}

/// A version larger than the free space of the destination's disk is refused before anything
/// is written (here a reference entry that claims an exbibyte).
#[test]
fn get_refuses_a_version_larger_than_the_free_space_of_its_disk() {
    let env = Env::new();
    let manifest = file(
        &env,
        "m.json",
        r#"{"version": 1, "storagePolicy": "wandb-storage-policy-v1",
            "storagePolicyConfig": {"storageLayout": "V2"},
            "contents": {"huge.bin": {"digest": "1B2M2Y8AsgTpgAmY7PhCfg==",
            "ref": "s3://some-bucket/huge.bin", "size": 1152921504606846976}}}"#,
    );
    env.ok(&["log", "big", "--manifest", &manifest]);
    let out = env.path("artifacts-here/out");
    let err = env.fails(&["get", "big", "--root", out.to_str().unwrap()]);
    // More than the disk, and so more than the cache too: either refusal names the sizes.
    assert!(err.contains("1.00 EiB") && err.contains("nothing was written"), "{err}");
    assert!(!env.path("artifacts-here").exists());
}
