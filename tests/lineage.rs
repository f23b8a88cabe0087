//! Runs and lineage through the CLI: `--run` on log/get/mount, `artfs run`, `artfs runs`,
//! `artfs lineage` (text, JSON, DOT, SVG) and `show --json`'s logged_by/used_by.

use std::collections::BTreeSet;

use crate::util::{Env, wait_until};

pub(crate) fn ids(v: &serde_json::Value, key: &str) -> BTreeSet<String> {
    v[key].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect()
}

pub(crate) fn edges(v: &serde_json::Value) -> BTreeSet<(String, String, String)> {
    v["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap().to_owned();
            (s("from"), s("kind"), s("to"))
        })
        .collect()
}

fn set<const N: usize>(items: [&str; N]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A preprocess run logs raw, a train run gets raw:v0 and logs model, an eval run mounts model
/// and reads a file: the graph is walkable both ways, a deleted version stays in it.
#[test]
fn runs_record_what_they_logged_and_used_and_lineage_walks_both_ways() {
    let env = Env::new();
    std::fs::write(env.path("raw.csv"), "a,b\n").unwrap();
    std::fs::write(env.path("model.bin"), "weights").unwrap();
    let raw = env.path("raw.csv");
    env.ok(&["-q", "log", "raw", raw.to_str().unwrap(), "--run", "A", "--job-type", "preprocess"]);
    env.ok(&["-q", "get", "raw:v0", "--root", "got", "--run", "B", "--job-type", "train"]);
    let model = env.path("model.bin");
    env.ok(&["-q", "log", "model", model.to_str().unwrap(), "--type", "model", "--run", "B"]);

    // A mount with --run records a use the first time a file of the version is opened.
    let c = env.ok(&["run", "start", "--job-type", "eval"]).trim().to_owned();
    assert!(c.starts_with("acme/bikes/") && c.len() == "acme/bikes/".len() + 8, "{c}");
    let mnt_path = env.path("mnt");
    let mnt = env.mount(&["--run", &c, mnt_path.to_str().unwrap()]);
    let run_c = format!("run:{c}");
    let used_by = || env.json(&["show", "model:v0"])["used_by"].clone();
    assert_eq!(used_by(), serde_json::json!([]), "listing records nothing");
    assert!(mnt.join("acme/bikes/model:latest").exists());
    assert_eq!(std::fs::read(mnt.join("acme/bikes/model:v0/model.bin")).unwrap(), b"weights");
    wait_until(|| used_by() == serde_json::json!([c]));
    drop(mnt);
    env.ok(&["run", "finish", &c]);

    let shown = env.json(&["show", "model:v0"]);
    assert_eq!(shown["logged_by"], serde_json::json!(["acme/bikes/B"]));

    let up = env.json(&["lineage", "model:v0", "--up"]);
    assert_eq!(up["root"], "acme/bikes/model:v0");
    assert_eq!(
        ids(&up, "nodes"),
        set(["acme/bikes/model:v0", "acme/bikes/raw:v0", "run:acme/bikes/A", "run:acme/bikes/B"])
    );
    let want_up = [
        ("run:acme/bikes/A", "logged", "acme/bikes/raw:v0"),
        ("acme/bikes/raw:v0", "used", "run:acme/bikes/B"),
        ("run:acme/bikes/B", "logged", "acme/bikes/model:v0"),
    ];
    let want_up: BTreeSet<_> =
        want_up.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    assert_eq!(edges(&up), want_up);
    let job = |g: &serde_json::Value, id: &str| {
        g["nodes"].as_array().unwrap().iter().find(|n| n["id"] == id).unwrap()["job_type"].clone()
    };
    assert_eq!(job(&up, "run:acme/bikes/A"), "preprocess");

    let down = env.json(&["lineage", "raw:v0", "--down"]);
    assert_eq!(
        ids(&down, "nodes"),
        set(["acme/bikes/raw:v0", "run:acme/bikes/B", "acme/bikes/model:v0", &run_c])
    );
    assert_eq!(job(&down, &run_c), "eval");
    let one = env.json(&["lineage", "raw:v0", "--depth", "1"]);
    assert_eq!(
        ids(&one, "nodes"),
        set(["acme/bikes/raw:v0", "run:acme/bikes/A", "run:acme/bikes/B"])
    );

    // A deleted version stays in the graph, as a deleted node.
    env.ok(&["rm", "raw:v0", "--delete-aliases"]);
    let up = env.json(&["lineage", "model:v0", "--up"]);
    let raw_node =
        up["nodes"].as_array().unwrap().iter().find(|n| n["id"] == "acme/bikes/raw:v0").unwrap();
    assert_eq!(raw_node["deleted"], true);
    assert_eq!(edges(&up), want_up);

    // DOT, SVG and text name the same nodes.
    let dot = env.ok(&["lineage", "model:v0", "--dot"]);
    assert!(dot.contains(r#""run:acme/bikes/A" -> "acme/bikes/raw:v0" [label=logged]"#), "{dot}");
    let svg_path = env.path("g.svg");
    env.ok(&["lineage", "model:v0", "--svg", svg_path.to_str().unwrap()]);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.contains(r#"class="node version deleted" data-id="acme/bikes/raw:v0""#), "{svg}");
    // Both ways: the three upstream edges and C's use.
    assert_eq!(svg.matches(r#"<path class="edge"#).count(), 4);

    let runs = env.json(&["runs"]);
    let row = |id: &str| runs.as_array().unwrap().iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(row("acme/bikes/B")["used"], serde_json::json!(["acme/bikes/raw:v0"]));
    assert_eq!(row("acme/bikes/B")["job_type"], "train");
    assert_eq!(row(&c)["state"], "finished");
    assert!(env.ok(&["runs"]).contains("preprocess"));

    // A bad run id is refused before anything is published.
    let err = env.fails(&["log", "other", raw.to_str().unwrap(), "--run", "a/b/c/d"]);
    assert!(err.contains("run \"a/b/c/d\""), "{err}");
    assert!(env.fails(&["show", "other"]).contains("not found"));
}

/// `artfs log NAME PATH --part G` from 8 processes at once on the S3 registry, then
/// `artfs log NAME --finish G`: one version with the 8 files, invisible before the finish, its
/// digest the digest of the union; a path two parts give different content is refused at the
/// finish, publishing nothing; the next part after a finish starts the next version.
#[test]
fn parts_from_eight_processes_on_s3_become_one_version_at_finish() {
    let Some(env) = crate::cloud_registry::s3_env("parts") else { return };
    let mut union = env.path("union");
    std::fs::create_dir_all(&union).unwrap();
    let mut children = Vec::new();
    for i in 0..8 {
        let dir = env.path(&format!("shard{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let body = format!("shard {i}\n").repeat(100 + i);
        std::fs::write(dir.join(format!("s{i}.txt")), &body).unwrap();
        std::fs::write(union.join(format!("s{i}.txt")), &body).unwrap();
        let child = env
            .cmd()
            .args([
                "-q",
                "log",
                "shards",
                dir.to_str().unwrap(),
                "--part",
                "G",
                "--alias",
                "round0",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        children.push(child);
    }
    // The first log of the bucket creates the registry: the readers below need it to exist.
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("added a part of group G (round 0"));
    }
    let err = env.fails(&["versions", "shards"]);
    assert!(err.contains("not found"), "invisible before the finish: {err}");
    let done = env.json(&["log", "shards", "--finish", "G", "--description", "8 shards"]);
    assert_eq!((done["version"].as_str(), done["file_count"].as_u64()), (Some("v0"), Some(8)));
    // The digest is the one of the same 8 files logged at once (W&B's, see the manifest tests).
    let whole = Env::new();
    let want = whole.json(&["log", "whole", union.to_str().unwrap()]);
    assert_eq!(done["digest"], want["digest"]);
    let shown = env.json(&["show", "shards:v0"]);
    assert_eq!(shown["aliases"], serde_json::json!(["latest", "round0"]));
    assert_eq!(shown["description"], "8 shards");
    union = env.path("got");
    env.ok(&["-q", "get", "shards:v0", "--root", union.to_str().unwrap()]);
    assert_eq!(std::fs::read_dir(&union).unwrap().count(), 8);

    // Round 1: two parts give s0.txt different content; the finish refuses, names the path.
    let a = env.path("a");
    let b = env.path("b");
    for (dir, body) in [(&a, "one"), (&b, "two")] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("s0.txt"), body).unwrap();
        let out = env.ok(&["-q", "log", "shards", dir.to_str().unwrap(), "--part", "G"]);
        assert!(out.contains("(round 1;"), "after a finish, the next round: {out}");
    }
    let err = env.fails(&["log", "shards", "--finish", "G"]);
    assert!(err.contains("\"s0.txt\"") && err.contains("different content"), "{err}");
    assert_eq!(env.json(&["versions", "shards"]).as_array().unwrap().len(), 1);
    // The refused round is closed: the group is written afresh and finishes as v1.
    env.ok(&["-q", "log", "shards", a.to_str().unwrap(), "--part", "G"]);
    let v1 = env.json(&["log", "shards", "--finish", "G"]);
    assert_eq!((v1["version"].as_str(), v1["file_count"].as_u64()), (Some("v1"), Some(1)));
    let err = env.fails(&["log", "shards", "--finish", "nothing-here"]);
    assert!(err.contains("no parts"), "{err}");
}
