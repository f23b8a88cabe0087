//! What W&B's own registry system tests ask of the server, driven by the real `wandb` SDK
//! against `artfs serve` (flows `tests/serve/registry_*.py`): teams the SDK creates, and
//! collections and versions searched across an organization's registries in order.

use crate::serve::{Server, create_key, run_flow};
use crate::util::Env;

/// ana administers org `acme` (entity `acme-org`) and team `vision` of it.
fn org_fixture(env: &Env) {
    env.ok(&["-q", "user", "create", "ana", "--admin", "--email", "ana@acme.test"]);
    env.ok(&["-q", "org", "create", "acme", "--admin", "ana", "--entity", "acme-org"]);
    env.ok(&["-q", "team", "create", "vision", "--org", "acme", "--member", "ana"]);
}

fn strings(v: &serde_json::Value) -> Vec<&str> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect()
}

#[test]
fn registry_collections_and_versions_list_in_the_order_asked() {
    let env = Env::new();
    org_fixture(&env);
    let key = create_key(&env, &["--user", "ana"]);
    let server = Server::start(&env, &[]);
    let (out, _) = run_flow(&env, &server, &key, "registry_search.py", "search", &[]);
    let by_name = [
        "search-reg-0/coll-0",
        "search-reg-1/coll-0",
        "search-reg-0/coll-1",
        "search-reg-1/coll-1",
    ];
    let got = strings(&out["collections_by_name"]);
    // Within one name the registries come in any order; across names, by name.
    assert_eq!(
        got.iter().map(|c| &c[c.len() - 6..]).collect::<Vec<_>>(),
        ["coll-0", "coll-0", "coll-1", "coll-1"],
        "{got:?}"
    );
    let mut sorted = got.clone();
    sorted.sort_unstable();
    let mut want = by_name.to_vec();
    want.sort_unstable();
    assert_eq!(sorted, want);
    let desc = strings(&out["collections_by_name_desc"]);
    assert_eq!(
        desc.iter().map(|c| &c[c.len() - 6..]).collect::<Vec<_>>(),
        ["coll-1", "coll-1", "coll-0", "coll-0"],
        "{desc:?}"
    );
    let registry_then_name = [
        "search-reg-0/coll-0",
        "search-reg-0/coll-1",
        "search-reg-1/coll-0",
        "search-reg-1/coll-1",
    ];
    assert_eq!(strings(&out["collections_by_registry_then_name"]), registry_then_name);
    assert_eq!(
        strings(&out["collections_by_registry_desc_then_name"]),
        [
            "search-reg-1/coll-0",
            "search-reg-1/coll-1",
            "search-reg-0/coll-0",
            "search-reg-0/coll-1"
        ]
    );
    let versions: Vec<String> = registry_then_name.iter().map(|c| format!("{c}:v0")).collect();
    assert_eq!(strings(&out["versions_by_registry_then_collection"]), versions);
    let by_registry = strings(&out["versions_by_registry"]);
    assert_eq!(
        by_registry.iter().map(|v| &v[..12]).collect::<Vec<_>>(),
        ["search-reg-0", "search-reg-0", "search-reg-1", "search-reg-1"],
        "{by_registry:?}"
    );
    let by_registry_desc = strings(&out["versions_by_registry_desc"]);
    assert_eq!(
        by_registry_desc.iter().map(|v| &v[..12]).collect::<Vec<_>>(),
        ["search-reg-1", "search-reg-1", "search-reg-0", "search-reg-0"],
        "{by_registry_desc:?}"
    );
    let by_collection_desc = strings(&out["versions_by_collection_desc"]);
    assert_eq!(
        by_collection_desc.iter().map(|v| &v[v.len() - 9..]).collect::<Vec<_>>(),
        ["coll-1:v0", "coll-1:v0", "coll-0:v0", "coll-0:v0"],
        "{by_collection_desc:?}"
    );
    assert_eq!(strings(&out["one_registry_by_name_desc"]), ["coll-1", "coll-0"]);
}

#[test]
fn teams_the_sdk_creates_load_their_members_and_join_registries() {
    let env = Env::new();
    org_fixture(&env);
    // ana is in two organizations now; `createTeam` names none, so the newest one gets the team.
    env.ok(&["-q", "org", "create", "newer", "--admin", "ana", "--entity", "newer-org"]);
    let key = create_key(&env, &["--user", "ana"]);
    let server = Server::start(&env, &[]);
    let (out, _) = run_flow(&env, &server, &key, "registry_teams.py", "teams", &[]);
    assert_eq!(out["roles"], serde_json::json!({"sdk-team-0": "member", "sdk-team-1": "viewer"}));
    // The teams are stored in `newer`: deleting `acme` keeps them, deleting `newer` removes them.
    env.ok(&["-q", "user", "create", "bo"]);
    env.ok(&["-q", "org", "delete", "acme"]);
    env.ok(&["-q", "team", "add-member", "sdk-team-2", "bo"]);
    env.ok(&["-q", "org", "delete", "newer"]);
    let err = env.fails(&["team", "add-member", "sdk-team-2", "bo"]);
    assert!(err.contains("no team"), "{err}");
}

#[test]
fn aliases_land_where_the_version_was_fetched_and_registry_members_may_set_them() {
    let env = Env::new();
    org_fixture(&env);
    env.ok(&["-q", "user", "create", "bo", "--email", "bo@acme.test"]);
    env.ok(&["-q", "user", "create", "cy", "--email", "cy@acme.test"]);
    env.ok(&["-q", "org", "add-member", "acme", "bo", "--role", "viewer"]);
    env.ok(&["-q", "org", "add-member", "acme", "cy", "--role", "member"]);
    let key = create_key(&env, &["--user", "ana"]);
    let bo = create_key(&env, &["--user", "bo"]);
    let cy = create_key(&env, &["--user", "cy"]);
    let server = Server::start(&env, &[]);
    let vars = [("FLOW_KEY_BO", bo.as_str()), ("FLOW_KEY_CY", cy.as_str())];
    let (out, _) = run_flow(&env, &server, &key, "registry_aliases.py", "aliases", &vars);
    // The SDK replaced the list, so `latest` went with it.
    assert_eq!(strings(&out["portfolio"]), ["boom", "portfolio"]);
    assert_eq!(strings(&out["source"]), ["latest", "sequence"]);
    // cy may not read team `vision`: the source is hidden from it, the link is not.
    assert_eq!(out["cy_sees"], serde_json::json!(["", ""]));
    assert_eq!(strings(&out["cy_aliases"]), ["cy-alias", "latest"]);
    assert_eq!(out["bo_sees"], serde_json::json!(["vision", "src"]));
    assert_eq!(strings(&out["bo_aliases"]), ["bo-alias", "cy-alias", "latest"]);
    assert_eq!(strings(&out["source_after"]), ["latest", "sequence"]);
    // Stored for real: the registry's collection holds the aliases, the source does not.
    let shown = env.ok(&["show", "acme-org/wandb-registry-models/bikes:cy-alias"]);
    assert!(shown.contains("bo-alias"), "{shown}");
    env.fails(&["show", "vision/src/weights:cy-alias"]);
}
