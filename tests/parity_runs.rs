//! W&B runs as users read them back through `artfs serve` with the real SDK: summaries,
//! history (sampled, by keys, scanned in pages), listings with filters and order, projects,
//! resumed runs, and the runs that wrote a distributed artifact.

use crate::serve::{Server, create_key, gql, run_flow};
use crate::util::Env;

/// 5,000 logged steps come back whole from `scan_history(page_size=700)`, sampled from
/// `history()`, by key from `history(keys=…)`; the summary is the run's last one.
#[test]
fn history_and_summary_come_back_as_logged() {
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    let (out, _) = run_flow(&env, &server, &key, "runs_history.py", "history", &[]);
    assert_eq!(out["rows"], 5000);
}

/// `resume="must"` continues a run's steps and summary and refuses a missing run;
/// `resume="allow"` creates then continues; `api.projects` lists projects that have only runs.
#[test]
fn resumed_runs_continue_and_projects_with_runs_are_listed() {
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    let (out, _) = run_flow(&env, &server, &key, "runs_resume.py", "resume", &[]);
    assert_eq!(out["projects"], serde_json::json!(["bikes"]));
}

/// `api.runs` with config, summary, job type, group, state, tags, name and creation filters,
/// `$and`/`$or` and the comparison operators, orders and pages; a bad filter is refused with
/// the operator named.
#[test]
fn runs_are_listed_by_the_filters_and_orders_users_write() {
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    let (out, _) = run_flow(&env, &server, &key, "runs_filters.py", "filters", &[]);
    assert_eq!(out["ids"].as_object().map(|m| m.len()), Some(4));
    let q = "query($f: JSONString) { project(name: \"bikes\", entityName: \"acme\") { runs(filters: $f) { edges { node { name } } } } }";
    for bad in [r#"{"config.lr": {"$between": 1}}"#, r#"{"$or": {}}"#, "{", r#"{"nofield": 1}"#] {
        let got = gql(&server, &key, q, serde_json::json!({ "f": bad }));
        assert_eq!(got["errors"][0]["extensions"]["code"], "INVALID", "{bad}: {got}");
    }
}

/// A finished run fetched with `Api().run(…)` logs and uses an existing version
/// (`createArtifact` with the plural `artifactCollectionNames`, `useArtifact`).
#[test]
fn a_public_api_run_logs_and_uses_an_existing_version() {
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    run_flow(&env, &server, &key, "runs_public_log.py", "public-log", &[]);
}
