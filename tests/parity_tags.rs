//! Tags, TTL and collection edits through `artfs serve` with the real SDK
//! (`tests/serve/tags_ttl.py`), read back by the SDK, the CLI and a second server.

use crate::serve::{Server, create_key, gql, run_flow};
use crate::util::Env;

/// A registry, `artfs serve` over it, and a key of `ana` for entity `acme`.
fn started() -> (Env, Server, String) {
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    (env, server, key)
}

/// Tags and TTL at log time and through `save()`, tag filters and `order`, then the collection's
/// description, tags, rename and type in one `save()`, and a collection deleted with its
/// versions (all checked in the script); `artfs show` and `versions` read the result.
#[test]
fn the_sdk_sets_tags_ttl_and_edits_collections() {
    let (env, server, key) = started();
    run_flow(&env, &server, &key, "tags_ttl.py", "write", &[("FLOW_MODE", "write")]);
    let (read, _) = run_flow(&env, &server, &key, "tags_ttl.py", "read", &[("FLOW_MODE", "read")]);
    assert_eq!(read["v0_tags"], serde_json::json!(["alpha", "gold"]));
    assert_eq!(read["v0_ttl"], serde_json::Value::Null);
    assert_eq!(read["collection_tags"], serde_json::json!(["curated"]));
    assert_eq!(read["v2_ttl"], 3.0 * 86400.0);
    assert_eq!(read["v1_inherited"], true);
    let shown = env.json(&["show", "acme/bikes/ds-renamed:v1"]);
    assert_eq!(shown["tags"], serde_json::json!(["gold"]), "{shown}");
    assert_eq!(shown["type"], "model", "{shown}");
    let err = env.fails(&["versions", "acme/bikes/ds"]);
    assert!(err.contains("not found"), "the old name is gone: {err}");
    let err = env.fails(&["versions", "acme/bikes/other"]);
    assert!(err.contains("not found"), "the deleted collection is gone: {err}");
}

/// Two servers over one S3 registry agree on tags, TTL and a rename: what the SDK wrote through
/// server A, it reads back through server B.
#[test]
fn two_servers_over_one_s3_registry_agree_on_tags_and_ttl() {
    let Some(env) = Env::in_new_s3_bucket("tags") else { return };
    let a = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    run_flow(&env, &a, &key, "tags_ttl.py", "write", &[("FLOW_MODE", "write")]);
    let b = Server::start_logging_to(&env, &[], "serve-b.log");
    let (read, _) = run_flow(&env, &b, &key, "tags_ttl.py", "read", &[("FLOW_MODE", "read")]);
    assert_eq!(read["v0_tags"], serde_json::json!(["alpha", "gold"]), "{read}");
    assert_eq!(read["v2_ttl"], 3.0 * 86400.0, "{read}");
    assert_eq!(read["collection_tags"], serde_json::json!(["curated"]), "{read}");
    assert_eq!(read["description"], "the ds collection", "{read}");
}

/// `artfs tag` and `artfs ttl` (consistent with `artfs alias`), read back by `artfs show` and a
/// collection default TTL that a version inherits until it opts out.
#[test]
fn the_cli_tags_and_sets_ttl() {
    let env = Env::new();
    let mut files = crate::util::Files::new();
    files.insert("a.txt".into(), b"a".to_vec());
    env.log_files("acme/bikes/cli", &files);
    let out = env.ok(&["tag", "acme/bikes/cli:v0", "--add", "gold", "--add", "needs review"]);
    assert!(out.contains("gold, needs review"), "{out}");
    env.ok(&["tag", "acme/bikes/cli:latest", "--remove", "gold"]);
    let err = env.fails(&["tag", "acme/bikes/cli:v0", "--add", "a/b"]);
    assert!(err.contains("alphanumeric"), "{err}");
    env.ok(&["ttl", "acme/bikes/cli:v0", "30d"]);
    let shown = env.json(&["show", "acme/bikes/cli:v0"]);
    assert_eq!(shown["tags"], serde_json::json!(["needs review"]), "{shown}");
    assert_eq!(shown["ttl_seconds"], 30 * 86400, "{shown}");
    env.ok(&["ttl", "acme/bikes/cli:v0", "inherit"]);
    env.ok(&["ttl", "--collection", "acme/bikes/cli", "2d"]);
    assert_eq!(env.json(&["show", "acme/bikes/cli:v0"])["ttl_seconds"], 2 * 86400);
    env.ok(&["ttl", "acme/bikes/cli:v0", "never"]);
    assert!(env.json(&["show", "acme/bikes/cli:v0"])["ttl_seconds"].is_null());
    env.ok(&["tag", "--collection", "acme/bikes/cli", "--add", "curated"]);
}

/// W&B's tag rule holds on the server too (not only in the SDK), with its error text.
#[test]
fn invalid_tags_are_refused_by_the_server() {
    let (env, server, key) = started();
    run_flow(
        &env,
        &server,
        &key,
        "log_one.py",
        "one",
        &[("FLOW_ARTIFACT", "t"), ("FLOW_SEED", "1")],
    );
    let id = env.json(&["show", "acme/bikes/t:v0"]);
    let q =
        "query($e:String!,$p:String!){project(entityName:$e,name:$p){artifact(name:\"t:v0\"){id}}}";
    let got = gql(&server, &key, q, serde_json::json!({"e": "acme", "p": "bikes"}));
    let aid = got["data"]["project"]["artifact"]["id"].as_str().unwrap().to_owned();
    let m = "mutation($i:UpdateArtifactInput!){updateArtifact(input:$i){artifact{tags{name}}}}";
    for bad in ["a/b", " lead", "", "x:y"] {
        let vars = serde_json::json!({"i": {"artifactID": aid, "tagsToAdd": [{"tagName": bad}]}});
        let got = gql(&server, &key, m, vars);
        let msg = got["errors"][0]["message"].as_str().unwrap_or_default().to_owned();
        assert!(msg.contains("alphanumeric characters"), "{bad:?}: {got}");
    }
    let vars =
        serde_json::json!({"i": {"artifactID": aid, "tagsToAdd": [{"tagName": "ok tag_1-x"}]}});
    let got = gql(&server, &key, m, vars);
    assert_eq!(got["data"]["updateArtifact"]["artifact"]["tags"][0]["name"], "ok tag_1-x", "{got}");
    assert!(id["tags"].as_array().is_none_or(|t| t.is_empty()), "{id}");
}

/// A version past its TTL is gone from the SDK's reads, `artfs versions/get/show`, and `gc`
/// reclaims its file while the live version's stays; its alias does not keep it.
#[test]
fn an_expired_version_is_gone_and_reclaimed_by_gc() {
    let (env, server, key) = started();
    run_flow(&env, &server, &key, "tags_ttl.py", "expire", &[("FLOW_MODE", "expire")]);
    let versions = env.json(&["versions", "acme/bikes/short"]);
    let names: Vec<&str> =
        versions.as_array().unwrap().iter().map(|v| v["version"].as_str().unwrap()).collect();
    assert_eq!(names, ["v1"]);
    let err = env.fails(&["show", "acme/bikes/short:v0"]);
    assert!(err.contains("no version v0"), "{err}");
    let blob = |body: &[u8]| {
        use base64::Engine;
        use md5::Digest;
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body));
        env.registry_dir().join(artfs::registry::blob_key(&md5).unwrap())
    };
    assert!(blob(b"short-lived").exists() && blob(b"long-lived").exists());
    env.ok(&["gc", "--grace", "0s"]);
    assert!(!blob(b"short-lived").exists(), "gc reclaims the expired version's file");
    assert!(blob(b"long-lived").exists(), "and keeps the live one's");
    let got = env.path("got");
    env.ok(&["-q", "get", "acme/bikes/short:latest", "--root", got.to_str().unwrap()]);
    assert_eq!(std::fs::read(got.join("data.txt")).unwrap(), b"long-lived");
}
