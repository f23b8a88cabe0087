//! Links and portfolios through `artfs serve` with the real SDK: `run.link_artifact`,
//! `Artifact.link`/`unlink`, the model helpers, reads through the portfolio by the SDK, the CLI
//! and gc, and two servers over one S3 registry agreeing on links.

use std::collections::BTreeMap;

use serde_json::json;

use crate::serve::{Server, create_key, gql, run_flow};
use crate::util::{Env, read_tree};

/// Hex MD5 of every file below `root`, as the flow scripts' `tree()` reports them.
fn md5s(root: &std::path::Path) -> BTreeMap<String, String> {
    let md5 = |v: &[u8]| hex::encode(<md5::Md5 as md5::Digest>::digest(v));
    read_tree(root).into_iter().map(|(k, v)| (k, md5(&v))).collect()
}

#[test]
fn sdk_links_read_back_through_the_portfolio_everywhere() {
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    let (out, _) = run_flow(&env, &server, &key, "links.py", "links", &[]);

    // The registry holds the portfolio as its own collection: v0 was unlinked, v1 links weights:v1.
    let versions = env.json(&["versions", "acme/bikes/portfolio"]);
    let names: Vec<&str> =
        versions.as_array().unwrap().iter().map(|v| v["version"].as_str().unwrap()).collect();
    assert_eq!(names, ["v1"], "{versions}");
    let shown = env.json(&["show", "acme/bikes/portfolio:latest"]);
    assert_eq!(shown["digest"], out["portfolio_digest"]);
    assert_eq!(shown["link_of"], "acme/bikes/weights:v1");
    assert_eq!(env.json(&["show", "acme/bikes/weights:v1"])["link_of"], serde_json::Value::Null);
    // The source keeps both versions: unlinking and the links' deletion touched none of them.
    let sources = env.json(&["versions", "acme/bikes/weights"]);
    assert_eq!(sources.as_array().unwrap().len(), 2, "{sources}");
    // A deleted source took its link with it.
    assert!(env.json(&["versions", "acme/bikes/tportfolio"]).as_array().unwrap().is_empty());

    // gc keeps what the link reads; the CLI reads the source's bytes through the portfolio path.
    env.ok(&["gc", "--grace", "0s"]);
    let got = env.path("got");
    env.ok(&["-q", "get", "acme/bikes/portfolio:latest", "--root", got.to_str().unwrap()]);
    let want: BTreeMap<String, String> = serde_json::from_value(out["w1"].clone()).unwrap();
    assert_eq!(md5s(&got), want);
    // The mount reads a portfolio like any collection, verified as usual.
    let mnt = env.mount(&[env.path("mnt").to_str().unwrap()]);
    assert_eq!(md5s(&mnt.join("acme/bikes/portfolio:latest")), want);
    drop(mnt);
    // Linking needs a key that may read the source and write the portfolio's entity.
    let q = "query($e: String!, $p: String!, $n: String!) { project(name: $p, entityName: $e) { \
             artifactCollectionMembership(name: $n) { artifact { id } } } }";
    let r = gql(&server, &key, q, json!({"e": "acme", "p": "bikes", "n": "weights:v1"}));
    let id = r["data"]["project"]["artifactCollectionMembership"]["artifact"]["id"].clone();
    let link = "mutation($i: LinkArtifactInput!) { linkArtifact(input: $i) { versionIndex } }";
    let into = |entity: &str| {
        json!({"i": {"artifactID": id, "artifactPortfolioName": "p", "entityName": entity,
                     "projectName": "x"}})
    };
    let r = gql(&server, &key, link, into("zed"));
    assert_eq!(r["errors"][0]["extensions"]["code"], "FORBIDDEN", "{r}");
    let bob = create_key(&env, &["bob", "--entities", "bobs"]);
    let r = gql(&server, &bob, link, into("bobs"));
    assert_eq!(r["errors"][0]["extensions"]["code"], "NOT_FOUND", "{r}");
    assert!(!env.registry_dir().join("collections/bobs").exists(), "nothing was linked");
    let r = gql(&server, &key, link, into("acme"));
    assert_eq!(r["data"]["linkArtifact"]["versionIndex"], 0, "{r}");
    let registered = env.json(&["versions", "acme/model-registry/test_portfolio"]);
    assert_eq!(registered.as_array().unwrap().len(), 1, "{registered}");
}

#[test]
fn two_servers_over_one_s3_registry_agree_on_links() {
    let Some(env) = crate::cloud_registry::s3_env("links") else { return };
    let a = Server::start(&env, &[]);
    let b = Server::start_logging_to(&env, &[], "serve-b.log");
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    // Links into one portfolio through both servers at once get dense numbers.
    let (la, lb) = std::thread::scope(|s| {
        let (env, key, a, b) = (&env, &key, &a, &b);
        let link =
            move |server: &Server, tag: &'static str, seed: &'static str, alias: &'static str| {
                let vars = [
                    ("FLOW_ARTIFACT", tag),
                    ("FLOW_SEED", seed),
                    ("FLOW_PORTFOLIO", "shared"),
                    ("FLOW_ALIAS", alias),
                ];
                run_flow(env, server, key, "link_one.py", tag, &vars).0
            };
        let ha = s.spawn(move || link(a, "src-a", "1", "from-a"));
        let hb = s.spawn(move || link(b, "src-b", "2", "from-b"));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    let mut numbers = [la["version"].as_str().unwrap(), lb["version"].as_str().unwrap()];
    numbers.sort();
    assert_eq!(numbers, ["v0", "v1"]);
    // Each server reads the other's link, by alias, with the source's digest and bytes.
    for (server, other, tag) in [(&b, &la, "b-reads-a"), (&a, &lb, "a-reads-b")] {
        let alias = if tag == "b-reads-a" { "from-a" } else { "from-b" };
        let artifact = format!("acme/bikes/shared:{alias}");
        let vars = [
            ("FLOW_ARTIFACT", artifact.as_str()),
            ("FLOW_DIGEST", other["digest"].as_str().unwrap()),
            ("FLOW_EXPECT_DIR", other["data"].as_str().unwrap()),
        ];
        let (used, _) = run_flow(&env, server, &key, "use_logged.py", tag, &vars);
        assert_eq!(used["version"], other["version"]);
    }
}
