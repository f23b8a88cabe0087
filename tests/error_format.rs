//! `ARTFS_ERROR_FORMAT=json`: a failing command names its kind, which the Python package raises by.

use crate::util::Env;

/// The one JSON line a failing command printed on stderr with `ARTFS_ERROR_FORMAT=json`.
fn json_failure(env: &Env, args: &[&str]) -> serde_json::Value {
    let out = env.cmd().env("ARTFS_ERROR_FORMAT", "json").args(args).output().unwrap();
    assert!(!out.status.success(), "artfs {args:?} unexpectedly succeeded");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let line = stderr.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"))
}

#[test]
fn failures_name_their_kind_as_json_when_asked() {
    let env = Env::new();
    std::fs::write(env.path("note.txt"), b"hello\n").unwrap();
    env.ok(&["-q", "log", "ds", "note.txt"]);

    let missing = json_failure(&env, &["show", "nope:latest"]);
    assert_eq!(missing["kind"], "not_found", "{missing}");
    assert!(missing["error"].as_str().unwrap().contains("nope"), "{missing}");
    assert_eq!(json_failure(&env, &["show", "ds:v9"])["kind"], "not_found");
    assert_eq!(json_failure(&env, &["show", "a/b/c/d:latest"])["kind"], "invalid");

    // Without the variable the message is the usual one line.
    assert!(env.fails(&["show", "nope:latest"]).starts_with("error: "));

    let blob = walkdir::WalkDir::new(&env.registry)
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.file_type().is_file() && std::fs::read(e.path()).unwrap() == b"hello\n")
        .expect("the blob of note.txt");
    std::fs::write(blob.path(), b"jello\n").unwrap();
    let root = env.path("out").display().to_string();
    let corrupt = json_failure(&env, &["get", "ds:v0", "--root", &root]);
    assert_eq!(corrupt["kind"], "corrupt", "{corrupt}");
}
