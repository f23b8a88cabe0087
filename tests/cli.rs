//! The CLI end to end on a local registry: log, re-log, aliases, get, rm, gc, errors.

use std::collections::BTreeMap;
use std::path::PathBuf;

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

    // rm refuses while aliased; --delete-aliases forces; --unaliased deletes the rest.
    let err = env.fails(&["rm", "bike-dataset:v0"]);
    assert!(err.contains("--delete-aliases") && err.contains("production"), "{err}");
    env.ok(&["log", "bike-dataset", &format!("{}=only.txt", src.join("val/c.txt").display())]);
    let deleted = env.ok(&["rm", "bike-dataset", "--unaliased"]);
    assert!(deleted.contains("deleted 1 versions v1"), "{deleted}");
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
    let err = unreachable.fails(&["ls"]);
    assert!(err.contains("cannot open registry"), "{err}");
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
    // Nothing wrong was written: the tampered file is absent, every file present is correct.
    let got = read_tree(&out);
    assert!(!got.contains_key("train/a.bin"));
    for (p, b) in &got {
        assert_eq!(files.get(p), Some(b), "{p}");
    }
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
