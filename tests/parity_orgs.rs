//! Users, organizations, teams and the W&B Registry: made with the admin CLI, then driven by the
//! real `wandb` SDK against `artfs serve` (flows `tests/serve/orgs_*.py`).

use crate::serve::{Server, create_key, run_flow};
use crate::util::{Env, write_tree};

/// ana administers org `acme` (entity `acme-org`); bo is a viewer there, cy a member; team
/// `vision` of acme holds ana and bo.
fn org_fixture(env: &Env) {
    env.ok(&["-q", "user", "create", "ana", "--admin", "--email", "ana@acme.test"]);
    env.ok(&["-q", "user", "create", "bo", "--email", "bo@acme.test"]);
    env.ok(&["-q", "user", "create", "cy"]);
    env.ok(&["-q", "org", "create", "acme", "--admin", "ana", "--entity", "acme-org"]);
    env.ok(&["-q", "org", "add-member", "acme", "bo", "--role", "viewer"]);
    env.ok(&["-q", "org", "add-member", "acme", "cy", "--role", "member"]);
    env.ok(&["-q", "team", "create", "vision", "--org", "acme", "--member", "ana"]);
    env.ok(&["-q", "team", "add-member", "vision", "bo"]);
}

#[test]
fn an_org_admin_creates_lists_edits_and_deletes_registries() {
    let env = Env::new();
    org_fixture(&env);
    // A version in the registry's project, through the usual collection code.
    let src = env.path("model");
    write_tree(&src, &[("w.bin".to_owned(), b"weights".to_vec())].into_iter().collect());
    let dest = "acme-org/wandb-registry-models/bike-model";
    env.ok(&["-q", "log", dest, src.to_str().unwrap(), "--type", "model", "--alias", "best"]);
    env.ok(&["-q", "user", "create", "dan"]);
    let key = create_key(&env, &["--user", "ana"]);
    let server = Server::start(&env, &[]);
    let (out, _) = run_flow(&env, &server, &key, "orgs_registry.py", "admin", &[]);
    assert_eq!(out["registries"], serde_json::json!(["models"]));
    drop(server);

    // Read back by another server process: the edits and the default entity are stored.
    let server = Server::start_logging_to(&env, &[], "serve2.log");
    let (out, _) = run_flow(&env, &server, &key, "orgs_list.py", "again", &[]);
    assert_eq!(out["registries"], serde_json::json!(["models"]));
    assert_eq!(out["org_entity"], "acme-org");
    assert_eq!(out["user"], "ana");
    // `models` is restricted now: cy (an org member, removed from it) does not see it; bo does,
    // through team `vision`.
    let cy = create_key(&env, &["cy"]);
    let (out, _) = run_flow(&env, &server, &cy, "orgs_list.py", "cy", &[]);
    assert_eq!(out["registries"], serde_json::json!([]));
    let bo = create_key(&env, &["bo"]);
    let (out, _) = run_flow(&env, &server, &bo, "orgs_list.py", "bo", &[]);
    assert_eq!(out["registries"], serde_json::json!(["models"]));

    // Writing into the registry: its roles and allowed types decide, not only the org's.
    let refused = [("FLOW_EXPECT", "refused")];
    run_flow(&env, &server, &cy, "orgs_registry_write.py", "cy-write", &refused);
    run_flow(
        &env,
        &server,
        &key,
        "orgs_registry_write.py",
        "ana-write",
        &[("FLOW_EXPECT", "write")],
    );
    let listed = env.ok(&["ls", "acme-org/wandb-registry-models"]);
    assert!(listed.contains("direct-model") && !listed.contains("direct-code"), "{listed}");
}

#[test]
fn org_roles_decide_who_writes_and_changes_count_at_once() {
    let env = Env::new();
    org_fixture(&env);
    let server = Server::start(&env, &[]);
    let bo = create_key(&env, &["bo"]);
    let cy = create_key(&env, &["--user", "cy"]);
    let read = [("FLOW_EXPECT", "read"), ("FLOW_TAG", "bo1")];
    run_flow(&env, &server, &bo, "orgs_roles.py", "viewer", &read);
    let write = [("FLOW_EXPECT", "write"), ("FLOW_TAG", "cy1")];
    let (out, _) = run_flow(&env, &server, &cy, "orgs_roles.py", "member", &write);
    assert_eq!(out["registries"], serde_json::json!(["by-cy1"]));
    // Promoted while the server runs: the same key may write now.
    env.ok(&["-q", "org", "add-member", "acme", "bo", "--role", "member"]);
    let write = [("FLOW_EXPECT", "write"), ("FLOW_TAG", "bo2")];
    let (out, _) = run_flow(&env, &server, &bo, "orgs_roles.py", "promoted", &write);
    assert_eq!(out["registries"], serde_json::json!(["by-bo2", "by-cy1"]));
    // Demoted again: refused again.
    env.ok(&["-q", "org", "add-member", "acme", "bo", "--role", "viewer"]);
    let read = [("FLOW_EXPECT", "read"), ("FLOW_TAG", "bo3")];
    run_flow(&env, &server, &bo, "orgs_roles.py", "demoted", &read);
    // What was written is there for real.
    let listed = env.ok(&["ls", "acme-org/shared"]);
    assert!(listed.contains("weights"), "{listed}");
}

#[test]
fn the_cli_refuses_what_the_directory_does_not_allow() {
    let env = Env::new();
    org_fixture(&env);
    let err = env.fails(&["org", "create", "acme", "--admin", "ana"]);
    assert!(err.contains("organization \"acme\" exists"), "{err}");
    let err = env.fails(&["org", "create", "other", "--admin", "ana", "--entity", "vision"]);
    assert!(err.contains("taken"), "{err}");
    let err = env.fails(&["team", "add-member", "vision", "nobody"]);
    assert!(err.contains("no user \"nobody\""), "{err}");
    let err = env.fails(&["org", "add-member", "acme", "cy", "--role", "owner"]);
    assert!(err.contains("admin, member or viewer"), "{err}");
    env.ok(&["-q", "org", "rm-member", "acme", "cy"]);
    let err = env.fails(&["org", "rm-member", "acme", "cy"]);
    assert!(err.contains("not a member"), "{err}");
    env.ok(&["-q", "org", "delete", "acme"]);
    let err = env.fails(&["team", "add-member", "vision", "cy"]);
    assert!(err.contains("no team"), "{err}");
}

#[test]
fn two_servers_over_one_s3_registry_agree_on_orgs() {
    let Some(env) = crate::cloud_registry::s3_env("orgs") else { return };
    org_fixture(&env);
    let a = Server::start_logging_to(&env, &[], "a.log");
    let b = Server::start_logging_to(&env, &[], "b.log");
    let cy = create_key(&env, &["cy"]);
    let write = [("FLOW_EXPECT", "write"), ("FLOW_TAG", "on-a")];
    run_flow(&env, &a, &cy, "orgs_roles.py", "a", &write);
    let (out, _) = run_flow(&env, &b, &cy, "orgs_list.py", "b", &[]);
    assert_eq!(out["registries"], serde_json::json!(["by-on-a"]));
    assert_eq!(out["org_entity"], "acme-org");
    // A team made by the CLI meanwhile is seen by both.
    env.ok(&["-q", "team", "create", "audio", "--org", "acme", "--member", "cy"]);
    for (server, tag) in [(&a, "a2"), (&b, "b2")] {
        let (out, _) = run_flow(&env, server, &cy, "orgs_list.py", tag, &[]);
        let teams = out["teams"].as_array().unwrap();
        assert!(teams.iter().any(|t| t == "audio"), "{tag}: {out}");
    }
}
