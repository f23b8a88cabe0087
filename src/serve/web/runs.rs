//! Runs: a project's runs by display name with id, job type, state, start and duration, and a
//! run's page with its fields, config, summary, what it logged and used, and its graph.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};

use super::html::{artifact_href, esc, link, list, page, run_href, table, took, when};
use super::{PageResult, Viewer, graph, html, not_found, readable};
use crate::registry::lineage::VersionKey;
use crate::registry::runs::{RunPath, RunState};
use crate::serve::{ServeError, Shared};

/// Steps of the graph drawn on a run's page, from the first version it touched.
const RUN_GRAPH_DEPTH: u32 = 2;

fn state_of(r: &RunState) -> String {
    let told = r.fields.state.clone();
    told.unwrap_or_else(|| (if r.finished { "finished" } else { "running" }).to_owned())
}

/// From the first commit to the last, once the run finished.
fn duration(r: &RunState) -> String {
    match (r.finished, r.created_at, r.updated_at) {
        (true, Some(a), Some(b)) => took(b - a),
        _ => String::new(),
    }
}

/// The table of a project's runs (newest first) and how many there are.
pub async fn table_of(
    s: &Shared,
    entity: &str,
    project: &str,
) -> Result<(String, usize), ServeError> {
    let mut runs = Vec::new();
    for id in s.registry.runs(entity, project).await.map_err(ServeError::page)? {
        let Ok(path) = RunPath::new(entity, project, &id) else { continue };
        let state = s.registry.run_state(&path).await.map_err(ServeError::page)?;
        runs.push((id, state));
    }
    runs.sort_by_key(|r| std::cmp::Reverse(r.1.created_at));
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|(id, r)| {
            let name = r.fields.display_name.clone().unwrap_or_else(|| id.clone());
            vec![
                link(&run_href(entity, project, id), &name),
                format!("<code>{}</code>", esc(id)),
                esc(r.fields.job_type.as_deref().unwrap_or("")),
                esc(&state_of(r)),
                r.created_at.as_ref().map(when).unwrap_or_default(),
                duration(r),
            ]
        })
        .collect();
    let head = ["run", "id", "job type", "state", "started", "duration"];
    Ok((table(&head, &rows), runs.len()))
}

/// A JSON object's keys and values as rows; W&B's config wraps each value as `{"value": …}`.
fn json_rows(json: Option<&str>, unwrap_value: bool) -> String {
    let parsed: Option<serde_json::Map<String, serde_json::Value>> =
        json.and_then(|j| serde_json::from_str(j).ok());
    let rows: Vec<Vec<String>> = parsed
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::Object(mut m) if unwrap_value && m.contains_key("value") => {
                    m.remove("value").unwrap_or_default()
                }
                v => v,
            };
            vec![esc(&k), format!("<code>{}</code>", esc(&v.to_string()))]
        })
        .collect();
    if rows.is_empty() { "<p>(none)</p>".into() } else { table(&["key", "value"], &rows) }
}

pub async fn run(
    State(s): State<Arc<Shared>>,
    Viewer(access): Viewer,
    Path((entity, project, name)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    readable(&access, &entity)?;
    let path = RunPath::new(&entity, &project, &name).map_err(|_| not_found())?;
    let state = s.registry.run_state(&path).await.map_err(ServeError::page)?;
    let edges = s.registry.run_edges(&path).await.map_err(ServeError::page)?;
    if state.seq == 0 && edges == Default::default() {
        return Err(not_found().into());
    }
    let f = &state.fields;
    let opt = |o: &Option<String>| esc(o.as_deref().unwrap_or(""));
    let rows = vec![
        vec!["name".into(), opt(&f.display_name)],
        vec!["id".into(), format!("<code>{}</code>", esc(&name))],
        vec!["job type".into(), opt(&f.job_type)],
        vec!["group".into(), opt(&f.group)],
        vec!["state".into(), esc(&state_of(&state))],
        vec!["host".into(), opt(&f.host)],
        vec!["started".into(), state.created_at.as_ref().map(when).unwrap_or_default()],
        vec!["duration".into(), duration(&state)],
    ];
    let versions = |vs: &[VersionKey]| -> Vec<String> {
        vs.iter()
            .filter(|v| access.can_read(&v.collection.entity))
            .map(|v| {
                let c = &v.collection;
                let vn = format!("v{}", v.version);
                link(&artifact_href(&[&c.entity, &c.project, &c.name, &vn]), &v.to_string())
            })
            .collect()
    };
    let mut body = format!(
        "{}<h2>Config</h2>{}<h2>Summary</h2>{}<h2>Logged</h2>{}<h2>Used</h2>{}",
        table(&["", ""], &rows),
        json_rows(f.config.as_deref(), true),
        json_rows(f.summary_metrics.as_deref(), false),
        list(&versions(&edges.logged)),
        list(&versions(&edges.used))
    );
    let first =
        edges.logged.iter().chain(&edges.used).find(|v| access.can_read(&v.collection.entity));
    if let Some(v) = first {
        body.push_str("<h2 id=\"lineage\">Graph</h2>");
        let here = run_href(&entity, &project, &name);
        let view = graph::View::of(&q, Some(RUN_GRAPH_DEPTH));
        body.push_str(&graph::section(&s.registry, &access, v, &here, &view).await?);
    }
    let crumbs = [
        (artifact_href(&[&entity]), entity.clone()),
        (artifact_href(&[&entity, &project]), project.clone()),
    ];
    let title =
        format!("run {} ({entity}/{project}/{name})", f.display_name.as_deref().unwrap_or(&name));
    Ok(html(page(&title, &crumbs, &body)))
}
