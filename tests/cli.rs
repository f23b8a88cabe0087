//! The CLI end to end on a local registry: log, re-log, aliases, get, rm, gc, errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::util::{Env, bytes, list_files, read_tree, write_tree};

fn fixture_inputs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wandb/inputs")
}

#[test]
fn logging_the_fixture_inputs_gives_the_sdk_digest() {
    let env = Env::new();
    let inputs = fixture_inputs();
    let generated = env.path("new.txt");
    std::fs::write(&generated, "created via new_file\n").unwrap();
    let p = |rel: &str| inputs.join(rel).display().to_string();
    let args = [
        p("hello.txt"),
        format!("{}=copies/hello-copy.txt", p("hello.txt")),
        p("empty.txt"),
        p("data"),
        format!("{}=prefixed", p("data")),
        format!("{}=generated/new.txt", generated.display()),
        p("unicode/données été.txt"),
    ];
    let mut cmd: Vec<&str> = vec!["log", "fixture-local"];
    cmd.extend(args.iter().map(String::as_str));
    let out = env.json(&cmd);
    assert_eq!(out["digest"], "451c9ef954ee2635a988bdb256c29159");
    assert_eq!(out["version"], "v0");
    assert_eq!(out["created"], true);
    assert_eq!(out["file_count"], 11);

    // The stored manifest is the one wandb-core would upload, entry for entry.
    let show = env.json(&["show", "fixture-local", "--files"]);
    let sdk: serde_json::Value = serde_json::from_slice(
        &std::fs::read(inputs.join("../outputs/local_files.manifest.json")).unwrap(),
    )
    .unwrap();
    let entries = show["entries"].as_array().unwrap();
    assert_eq!(entries.len(), sdk["contents"].as_object().unwrap().len());
    for e in entries {
        let want = &sdk["contents"][e["path"].as_str().unwrap()];
        assert_eq!(e["digest"], want["digest"], "{e}");
        assert_eq!(e["size"], want["size"], "{e}");
    }
}

fn dataset(seed: u64) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    files.insert("train/a.bin".to_owned(), bytes(seed, 300_000));
    files.insert("train/b.bin".to_owned(), bytes(seed + 1, 9_000_000));
    files.insert("val/c.txt".to_owned(), b"hello\n".to_vec());
    files.insert("empty".to_owned(), Vec::new());
    files.insert("ünï cødé/d.json".to_owned(), b"{}".to_vec());
    files
}

#[test]
fn log_relog_change_alias_get_rm_gc() {
    let env = Env::new();
    let src = env.path("src");
    let mut files = dataset(1);
    write_tree(&src, &files);
    let src_arg = src.display().to_string();

    let v0 = env.json(&[
        "log",
        "bike-dataset",
        &src_arg,
        "--description",
        "first",
        "--metadata",
        r#"{"n": 1}"#,
    ]);
    assert_eq!((v0["version"].as_str(), v0["created"].as_bool()), (Some("v0"), Some(true)));
    assert_eq!(v0["uploaded_files"], 5);
    let blobs_after_v0 = list_files(&PathBuf::from(&env.registry).join("blobs"));
    assert_eq!(blobs_after_v0.len(), 5);

    // Unchanged: no new version, nothing uploaded.
    let again = env.json(&["log", "bike-dataset", &src_arg]);
    assert_eq!(again["version"], "v0");
    assert_eq!(again["created"], false);
    assert_eq!(again["uploaded_files"], 0);
    assert_eq!(again["digest"], v0["digest"]);
    assert_eq!(list_files(&PathBuf::from(&env.registry).join("blobs")), blobs_after_v0);

    // One file changed: v1, exactly one blob uploaded.
    files.insert("val/c.txt".to_owned(), b"hello, again\n".to_vec());
    write_tree(&src, &files);
    let v1 = env.json(&["log", "bike-dataset", &src_arg, "--alias", "best"]);
    assert_eq!((v1["version"].as_str(), v1["created"].as_bool()), (Some("v1"), Some(true)));
    assert_eq!(v1["uploaded_files"], 1);
    assert_eq!(v1["uploaded_bytes"], 13);
    assert_eq!(v1["aliases"], serde_json::json!(["latest", "best"]));

    // Aliases move and stay unique.
    env.ok(&["alias", "bike-dataset:v0", "--add", "best", "--add", "production"]);
    let versions = env.json(&["versions", "bike-dataset"]);
    assert_eq!(versions[0]["aliases"], serde_json::json!(["best", "production"]));
    assert_eq!(versions[1]["aliases"], serde_json::json!(["latest"]));
    let err = env.fails(&["alias", "bike-dataset:v0", "--add", "v3"]);
    assert!(err.contains("looks like a version"), "{err}");
    let err = env.fails(&["alias", "bike-dataset:v0", "--add", "a/b"]);
    assert!(err.contains("invalid alias"), "{err}");

    // Edit description and metadata later.
    env.ok(&[
        "edit",
        "bike-dataset:v0",
        "--description",
        "the first",
        "--merge-metadata",
        r#"{"m": 2}"#,
    ]);
    let show = env.json(&["show", "bike-dataset:production"]);
    assert_eq!(show["version"], "v0");
    assert_eq!(show["description"], "the first");
    assert_eq!(show["metadata"], serde_json::json!({"n": 1, "m": 2}));
    assert_eq!(show["type"], "dataset");
    assert_eq!(show["file_count"], 5);

    // `get` gives byte-identical trees, at W&B's default location or --root.
    env.ok(&["get", "bike-dataset:v1"]);
    assert_eq!(read_tree(&env.path("artifacts/bike-dataset:v1")), files);
    let mut v0_files = files.clone();
    v0_files.insert("val/c.txt".to_owned(), b"hello\n".to_vec());
    let out = env.path("out-v0");
    env.ok(&["get", "acme/bikes/bike-dataset:best", "--root", out.to_str().unwrap()]);
    assert_eq!(read_tree(&out), v0_files);

    rm_and_gc_keep_what_is_live(&env, &src);
}

/// After `log_relog_change_alias_get_rm_gc`: v0 (aliased) and v1 of `bike-dataset` from `src`.
fn rm_and_gc_keep_what_is_live(env: &Env, src: &Path) {
    // rm refuses while aliased; --delete-aliases forces; --unaliased deletes the rest.
    let err = env.fails(&["rm", "bike-dataset:v0"]);
    assert!(err.contains("--delete-aliases") && err.contains("production"), "{err}");
    env.ok(&["log", "bike-dataset", &format!("{}=only.txt", src.join("val/c.txt").display())]);
    let deleted = env.ok(&["rm", "bike-dataset", "--unaliased"]);
    assert!(deleted.contains("deleted 1 version v1"), "{deleted}");
    env.ok(&["rm", "bike-dataset:v0", "--delete-aliases"]);
    let versions = env.json(&["versions", "bike-dataset"]);
    assert_eq!(versions.as_array().unwrap().len(), 1);
    assert_eq!(versions[0]["version"], "v2");
    assert_eq!(versions[0]["aliases"], serde_json::json!(["latest"]));

    // gc: blobs only v0/v1 used are swept; v2 still downloads.
    env.ok(&["gc", "--grace", "0s"]);
    let blobs = list_files(&PathBuf::from(&env.registry).join("blobs"));
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    env.ok(&["cache", "clear"]);
    let out = env.path("out-v2");
    env.ok(&["get", "bike-dataset", "--root", out.to_str().unwrap()]);
    assert_eq!(read_tree(&out)["only.txt"], b"hello, again\n");

    // A grace period keeps young unreferenced blobs.
    env.ok(&["rm", "bike-dataset:v2", "--delete-aliases"]);
    let kept = env.ok(&["gc"]);
    assert!(kept.contains("deleted 0 blobs"), "{kept}");
    assert_eq!(list_files(&PathBuf::from(&env.registry).join("blobs")).len(), 1);
}

#[test]
fn ls_versions_and_show_describe_the_registry() {
    let env = Env::new();
    let src = env.path("m.bin");
    std::fs::write(&src, bytes(7, 1000)).unwrap();
    env.ok(&["log", "resnet", src.to_str().unwrap(), "--type", "model"]);
    env.ok(&["log", "other/proj/thing", src.to_str().unwrap()]);
    let ls = env.json(&["ls"]);
    assert_eq!(ls[0]["name"], "acme/bikes/resnet");
    assert_eq!(ls[0]["type"], "model");
    assert_eq!(ls[0]["versions"], 1);
    assert_eq!(ls[0]["size"], 1000);
    let ls = env.json(&["ls", "other/proj"]);
    assert_eq!(ls[0]["name"], "other/proj/thing");
    let text = env.ok(&["ls"]);
    assert!(text.contains("resnet") && text.contains("model"), "{text}");
    let err = env.fails(&["log", "resnet", src.to_str().unwrap(), "--type", "dataset"]);
    assert!(err.contains("type \"model\""), "{err}");
}

#[test]
fn errors_say_what_is_wrong() {
    let env = Env::new();
    let src = env.path("f.txt");
    std::fs::write(&src, b"x").unwrap();
    env.ok(&["log", "known", src.to_str().unwrap(), "--alias", "prod"]);
    let cases: &[(&[&str], &[&str])] = &[
        (&["show", "unknown"], &["unknown", "not found", "known"]),
        (&["show", "known:v9"], &["no version v9", "v0"]),
        (&["show", "known:staging"], &["no alias", "staging", "prod", "latest"]),
        (&["log", "bad name", "f.txt"], &["invalid artifact name"]),
        (&["log", "ok", "missing.txt"], &["missing.txt", "no such file"]),
        (&["log", "ok", "f.txt=/abs"], &["absolute"]),
        (&["show", "a/b/c/d"], &["invalid artifact path"]),
    ];
    for (args, needles) in cases {
        let err = env.fails(args);
        for n in *needles {
            assert!(err.contains(n), "artfs {args:?}: {n:?} not in {err}");
        }
    }
    let unreachable = Env::with_registry("/proc/artfs-cannot-create-this");
    let err = unreachable.fails(&["log", "x", src.to_str().unwrap()]);
    assert!(err.contains("cannot open registry"), "{err}");
    // Messages show names and lists as text, not as Rust debug output.
    let err = env.fails(&["rm", "known:v0"]);
    assert!(err.contains("has aliases latest, prod;"), "{err}");
    // A mount whose daemon fails says the daemon's reason, on one line.
    let mnt = env.path("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let err = env.fails(&["mount", "known:v9", mnt.to_str().unwrap()]);
    assert!(err.starts_with("error: ") && err.contains("no version v9"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!err.contains("\\x0a"), "{err}");
}

/// The first cause that an error line repeats (`…: X: X`), if any: a `: `-separated tail that
/// also appears before it.
fn repeated_cause(line: &str) -> Option<String> {
    let parts: Vec<&str> = line.split(": ").collect();
    (1..parts.len()).find_map(|k| {
        let (head, tail) = (parts[..k].join(": "), parts[k..].join(": "));
        (tail.len() >= 8 && head.contains(&tail)).then_some(tail)
    })
}

#[test]
fn every_error_prints_each_cause_once() {
    assert_eq!(
        repeated_cause("a: no such file (os error 2): no such file (os error 2)").as_deref(),
        Some("no such file (os error 2)")
    );
    assert_eq!(repeated_cause("cannot read /x: no such file (os error 2)"), None);
    let env = Env::new();
    let src = env.path("f.txt");
    std::fs::write(&src, b"x").unwrap();
    env.ok(&["log", "known", src.to_str().unwrap()]);
    let file = src.to_str().unwrap();
    // A registry whose one manifest is not JSON (a bad commit is skipped with a warning instead).
    let broken = Env::new();
    broken.ok(&["log", "n", file]);
    for m in std::fs::read_dir(broken.path("registry/manifests")).unwrap() {
        std::fs::write(m.unwrap().path(), b"garbage").unwrap();
    }
    // An S3 endpoint that refuses connections (a port just closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut refused = Env::with_registry("s3://bucket/prefix");
    refused.vars = vec![
        ("AWS_ENDPOINT_URL".into(), format!("http://127.0.0.1:{port}")),
        ("AWS_ACCESS_KEY_ID".into(), "test".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
        ("AWS_REGION".into(), "us-east-1".into()),
    ];
    let cases: Vec<(&Env, Vec<String>, &str)> = vec![
        (
            &env,
            vec!["mount".into(), "known".into(), file.into(), "--foreground".into()],
            "Not a directory",
        ),
        (
            &env,
            vec![
                "get".into(),
                "known".into(),
                "--root".into(),
                "/proc/artfs-cannot-write-here".into(),
            ],
            "cannot write",
        ),
        (
            &env,
            vec![
                "log".into(),
                "x".into(),
                file.into(),
                "--metadata".into(),
                "@missing.json".into(),
            ],
            "missing.json",
        ),
        (
            &env,
            vec!["--cache-dir".into(), format!("{file}/cache"), "get".into(), "known".into()],
            "cache",
        ),
        (&broken, vec!["show".into(), "n".into(), "--files".into()], "is invalid"),
        (&refused, vec!["ls".into()], "Connection refused"),
        (&refused, vec!["log".into(), "x".into(), file.into()], "Connection refused"),
    ];
    for (env, args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = env.fails(&args);
        assert!(err.contains(needle), "artfs {args:?}: {needle:?} not in {err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "artfs {args:?}: one line expected: {err}");
        assert_eq!(repeated_cause(lines[0]), None, "artfs {args:?} repeats a cause: {err}");
    }
}

#[test]
fn a_tampered_blob_is_refused_naming_the_entry_and_both_digests() {
    let env = Env::new();
    let src = env.path("src");
    let files = dataset(3);
    write_tree(&src, &files);
    env.ok(&["log", "tamper", src.to_str().unwrap()]);
    // Flip one byte of the blob of train/a.bin (size unchanged).
    let show = env.json(&["show", "tamper", "--files"]);
    let entry =
        show["entries"].as_array().unwrap().iter().find(|e| e["path"] == "train/a.bin").unwrap();
    let digest = entry["digest"].as_str().unwrap().to_owned();
    let raw = base64_decode(&digest);
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let blob = PathBuf::from(&env.registry).join(format!("blobs/md5/{}/{}", &hex[..2], &hex[2..]));
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();

    let out = env.path("out");
    let err = env.fails(&["get", "tamper", "--root", out.to_str().unwrap()]);
    assert!(err.contains("train/a.bin"), "{err}");
    assert!(err.contains(&digest), "expected digest missing: {err}");
    let actual = base64_md5(&bytes);
    assert!(err.contains(&actual), "actual digest {actual} missing: {err}");
    // Nothing was left: a failed get removes the folder it made, correct files and all.
    assert!(!out.exists(), "a failed get left {out:?}");
    // And nothing was cached for it: a second attempt fails the same way.
    let err = env.fails(&["get", "tamper", "--root", out.to_str().unwrap()]);
    assert!(err.contains("train/a.bin"), "{err}");
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn base64_md5(bytes: &[u8]) -> String {
    artfs::manifest::md5_base64(bytes)
}

#[test]
fn usage_lines_do_not_list_options_given_through_the_environment() {
    let env = Env::new();
    // `Env::cmd` sets ARTFS_REGISTRY, ARTFS_CACHE_DIR, ARTFS_ENTITY and ARTFS_PROJECT.
    for args in [&["get"][..], &["log", "x"], &["cache", "prune"]] {
        let err = env.fails(args);
        let usage = err.lines().find(|l| l.starts_with("Usage: ")).unwrap_or_default();
        assert!(usage.starts_with(&format!("Usage: artfs {}", args[0])), "{err}");
        for option in ["--registry", "--entity", "--project", "--cache-dir"] {
            assert!(!usage.contains(option), "artfs {args:?}: {option} in {usage:?}");
        }
    }
}

/// Without `$USER` the default entity is the account name of the uid (`id -un`), never a
/// made-up name.
#[test]
fn the_default_entity_without_user_is_the_account_name() {
    let env = Env::new();
    let account = crate::util::sh("id -un").trim().to_owned();
    let src = env.path("f.txt");
    std::fs::write(&src, b"x").unwrap();
    let log = |user: Option<&str>| {
        let mut cmd = env.cmd();
        cmd.env_remove("ARTFS_ENTITY").env_remove("USER").env_remove("LOGNAME");
        if let Some(u) = user {
            cmd.env("USER", u);
        }
        let out = cmd.args(["log", "f", src.to_str().unwrap(), "--json"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["name"].as_str().unwrap().to_owned()
    };
    assert_eq!(log(None), format!("{account}/bikes/f"));
    assert_eq!(log(Some("someone")), "someone/bikes/f");
}

/// Reading (or changing) a registry that does not exist says so and creates nothing; only
/// `artfs log` creates one, with its marker. An emptied registry, or one from before the marker,
/// is still a registry.
#[test]
fn read_only_commands_never_create_a_registry() {
    let env = Env::new();
    let missing = env.path("typo");
    let typo = Env::with_registry(missing.to_str().unwrap());
    let mnt = typo.path("mnt");
    let log_file = typo.path("mount.log");
    let commands: &[&[&str]] = &[
        &["ls"],
        &["ls", "other/proj"],
        &["versions", "x"],
        &["show", "x"],
        &["get", "x"],
        &["alias", "x:v0", "--add", "a"],
        &["edit", "x:v0", "--description", "d"],
        &["rm", "x", "--unaliased"],
        &["gc"],
        &["mount", mnt.to_str().unwrap(), "--log-file", log_file.to_str().unwrap()],
        &["mount", "x", mnt.to_str().unwrap(), "--foreground"],
    ];
    for args in commands {
        let err = typo.fails(args);
        assert!(
            err.contains(&format!("no artfs registry at {}", missing.display())),
            "{args:?}: {err}"
        );
        assert!(!missing.exists(), "artfs {args:?} created {}", missing.display());
        assert!(!mnt.exists(), "artfs {args:?} created the mount point");
    }
    // An existing but empty directory is no registry either.
    std::fs::create_dir(&missing).unwrap();
    assert!(typo.fails(&["ls"]).contains("no artfs registry"));
    // `log` creates it; once every version is deleted, it is still there (exit 0, no artifacts).
    let src = typo.path("f.txt");
    std::fs::write(&src, b"x").unwrap();
    typo.ok(&["log", "x", src.to_str().unwrap()]);
    assert!(missing.join("artfs-registry.json").is_file());
    typo.ok(&["rm", "x:v0", "--delete-aliases"]);
    typo.ok(&["gc", "--grace", "0s"]);
    assert_eq!(
        typo.json(&["ls"]),
        serde_json::json!([{"name": "acme/bikes/x", "type": "dataset", "versions": 0, "latest": null, "size": null}])
    );
    // A registry made before the marker existed: recognised by its collections.
    std::fs::remove_file(missing.join("artfs-registry.json")).unwrap();
    typo.ok(&["ls"]);
    typo.ok(&["versions", "x"]);
}

/// `get` refuses a folder that holds other files or different ones unless `--force`, which
/// keeps the others, replaces the different ones and lists both; files already right are not
/// downloaded again.
#[test]
fn get_into_a_non_empty_folder_needs_force_and_reports_what_differs() {
    let env = Env::new();
    let files = dataset(5);
    env.log_files("ds", &files);
    let out = env.path("out");
    let root = out.to_str().unwrap();
    env.ok(&["get", "ds", "--root", root]);
    // Again into the same, complete folder: fine, nothing fetched.
    env.ok(&["cache", "clear"]);
    let misses = env.cache_stats().1;
    let again = env.run(&["get", "ds", "--root", root]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("5 already there"));
    assert_eq!(env.cache_stats().1, misses, "files already there were downloaded again");

    std::fs::write(out.join("notes.txt"), b"mine").unwrap();
    std::fs::write(out.join("val/c.txt"), b"edited\n").unwrap();
    let err = env.fails(&["get", "ds", "--root", root]);
    assert!(err.contains("not in acme/bikes/ds:v0: notes.txt"), "{err}");
    assert!(err.contains("differ from it: val/c.txt") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(out.join("val/c.txt")).unwrap(), b"edited\n", "refused but wrote");

    let forced = env.run(&["get", "ds", "--root", root, "--force"]);
    assert!(forced.status.success());
    let report = String::from_utf8_lossy(&forced.stderr);
    assert!(report.contains("replaced 1 file that differed: val/c.txt"), "{report}");
    assert!(report.contains("kept 1 file not in ds:v0: notes.txt"), "{report}");
    let mut want = files.clone();
    want.insert("notes.txt".into(), b"mine".to_vec());
    assert_eq!(read_tree(&out), want);

    // A folder where a file goes is never overwritten, even with --force.
    let other = env.path("other");
    std::fs::create_dir_all(other.join("empty")).unwrap();
    let err = env.fails(&["get", "ds", "--root", other.to_str().unwrap(), "--force"]);
    assert!(err.contains("empty") && err.contains("move it away"), "{err}");
}

/// `get NAME PATH…` and `--path-prefix P` download single entries or a subtree, verified; a
/// path that names no entry is an error naming it.
#[test]
fn get_of_single_entries_and_of_a_prefix_is_verified() {
    let env = Env::new();
    let files = dataset(9);
    env.log_files("ds", &files);
    let pick = |files: &[&str]| -> BTreeMap<String, Vec<u8>> {
        files.iter().map(|f| (f.to_string(), dataset(9)[*f].clone())).collect()
    };
    let one = env.path("one");
    env.ok(&["get", "ds:v0", "val/c.txt", "empty", "--root", one.to_str().unwrap()]);
    assert_eq!(read_tree(&one), pick(&["val/c.txt", "empty"]));
    let sub = env.path("sub");
    env.ok(&["get", "ds", "--path-prefix", "train/", "--root", sub.to_str().unwrap()]);
    assert_eq!(read_tree(&sub), pick(&["train/a.bin", "train/b.bin"]));

    let err = env.fails(&["get", "ds", "train", "--root", env.path("x").to_str().unwrap()]);
    assert!(err.contains("has no entry train: it is a folder of 2 entries"), "{err}");
    assert!(err.contains("--path-prefix train/"), "{err}");
    let err = env.fails(&["get", "ds", "nope.txt"]);
    assert!(err.contains("acme/bikes/ds:v0 has no entry nope.txt"), "{err}");
    let err = env.fails(&["get", "ds", "--path-prefix", "nope/"]);
    assert!(err.contains("no entry of acme/bikes/ds:v0 starts with nope/"), "{err}");
    assert!(!env.path("x").exists() && !env.path("artifacts").exists());

    // One entry whose blob was tampered with fails verification, naming it.
    let show = env.json(&["show", "ds", "--files"]);
    let entry =
        show["entries"].as_array().unwrap().iter().find(|e| e["path"] == "val/c.txt").unwrap();
    let hex: String = base64_decode(entry["digest"].as_str().unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let blob = PathBuf::from(&env.registry).join(format!("blobs/md5/{}/{}", &hex[..2], &hex[2..]));
    std::fs::write(&blob, b"HELLO\n").unwrap();
    env.ok(&["cache", "clear"]);
    let bad = env.path("bad");
    let err = env.fails(&["get", "ds", "val/c.txt", "--root", bad.to_str().unwrap()]);
    assert!(err.contains("val/c.txt") && err.contains(entry["digest"].as_str().unwrap()), "{err}");
    assert!(!bad.join("val/c.txt").exists());
}

/// "verified" is said only of content that was: references logged without checksum are not.
#[test]
fn get_says_verified_only_for_verified_content() {
    let env = Env::new();
    let data = env.path("data.txt");
    std::fs::write(&data, b"referenced").unwrap();
    let uri = format!("file://{}", data.display());
    env.ok(&["log", "pinned", &uri, &format!("{}=copy.txt", data.display())]);
    env.ok(&["log", "loose", &uri, "--no-checksum"]);
    // This reader allows its own directory: file:// references are refused otherwise.
    let here = env.dir.path().to_str().unwrap();
    let said = |name: &str| {
        let out = env.run(&["get", name, "--allow-file-refs", here]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let pinned = said("pinned");
    assert!(pinned.contains("(2 files, 20 B, verified)"), "{pinned}");
    let loose = said("loose");
    assert!(!loose.contains(", verified"), "{loose}");
    assert!(loose.contains("not verified: 1 reference logged without checksum"), "{loose}");
}
