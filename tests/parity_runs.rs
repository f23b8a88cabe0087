//! W&B runs as users read them back through `artfs serve` with the real SDK: summaries,
//! history (sampled, by keys, scanned in pages), listings with filters and order, projects,
//! resumed runs, and the runs that wrote a distributed artifact.

use std::collections::BTreeSet;

use crate::serve::{Server, create_key, gql, run_flow};
use crate::serve_lineage::{dist_finish, dist_part};
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

/// Five SDK runs `upsert_artifact` a part each and a sixth `finish_artifact`s the group: all six
/// list the version in `logged_artifacts()`, and the lineage graph has all six as its loggers.
/// The CLI's `--part`/`--finish` with `--run` records its writers the same way.
#[test]
fn every_writer_of_a_distributed_version_is_its_logger() {
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    let shards: Vec<(String, String)> =
        (0..5).map(|i| (format!("shard{i}.txt"), format!("rows of shard {i}\n"))).collect();
    let mut runs: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = shards
            .iter()
            .enumerate()
            .map(|(i, (file, body))| {
                let (env, server, key) = (&env, &server, &key);
                s.spawn(move || {
                    let out = dist_part(env, server, key, &format!("p{i}"), "G", file, body);
                    out["run"].as_str().unwrap().to_owned()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let done = dist_finish(&env, &server, &key, "finish", &shards);
    assert_eq!(done["version"], "v0");
    runs.push(done["run"].as_str().unwrap().to_owned());
    let all = runs.join(",");
    let check = [("FLOW_RUNS", all.as_str()), ("FLOW_VERSION", "dist:v0")];
    run_flow(&env, &server, &key, "runs_logged.py", "logged", &check);
    let g = env.json(&["lineage", "acme/bikes/dist:v0", "--up"]);
    let loggers: BTreeSet<String> = crate::lineage::edges(&g)
        .into_iter()
        .filter(|(_, kind, to)| kind == "logged" && to == "acme/bikes/dist:v0")
        .map(|(from, _, _)| from)
        .collect();
    let want: BTreeSet<String> = runs.iter().map(|r| format!("run:acme/bikes/{r}")).collect();
    assert_eq!(loggers, want, "{g}");

    // The CLI: two parts and the finish, each with its own --run.
    for (i, run) in ["w1", "w2"].iter().enumerate() {
        let dir = env.path(&format!("cli{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("c{i}.txt")), format!("cli {i}\n")).unwrap();
        let d = dir.to_str().unwrap();
        env.ok(&["-q", "log", "acme/bikes/cli", d, "--part", "H", "--run", run]);
    }
    env.ok(&["-q", "log", "acme/bikes/cli", "--finish", "H", "--run", "fin"]);
    let g = env.json(&["lineage", "acme/bikes/cli:v0", "--up"]);
    let loggers: BTreeSet<String> = crate::lineage::edges(&g)
        .into_iter()
        .filter(|(_, kind, _)| kind == "logged")
        .map(|(from, _, _)| from)
        .collect();
    assert_eq!(loggers.len(), 3, "{g}");
}
