//! `/ui/search?q=…`: what the key can see, matched case-insensitively against collection names
//! and types, versions' aliases, tags, descriptions and metadata (keys and values, at any
//! depth), and runs' ids, display names and job types.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};

use super::entry::search_form;
use super::html::{artifact_href, esc, link, page, run_href, table};
use super::{PageResult, Viewer, html};
use crate::names::CollectionPath;
use crate::registry::runs::RunPath;
use crate::serve::{ServeError, Shared};
use crate::source::registry::RegistrySource;
use crate::source::{Catalog, CollectionView};

/// Hits shown; the search stops there.
const MAX_HITS: usize = 200;

/// One thing found: its link and what matched.
struct Hit {
    what: String,
    matched: String,
}

struct Search {
    needle: String,
    hits: Vec<Hit>,
}

impl Search {
    fn full(&self) -> bool {
        self.hits.len() >= MAX_HITS
    }

    fn matches(&self, text: &str) -> bool {
        text.to_lowercase().contains(&self.needle)
    }

    fn hit(&mut self, what: String, field: &str, value: &str) {
        if !self.full() {
            self.hits.push(Hit { what, matched: format!("{field}: {value}") });
        }
    }

    fn collection(&mut self, c: &CollectionPath, view: &CollectionView) {
        let here = link(&artifact_href(&[&c.entity, &c.project, &c.name]), &c.to_string());
        if self.matches(&c.name) {
            self.hit(here.clone(), "name", &c.name);
        }
        let ty = view.artifact_type.clone().unwrap_or_default();
        if self.matches(&ty) {
            self.hit(here, "type", &ty);
        }
        for (n, v) in view.versions.iter().rev() {
            let vn = format!("v{n}");
            let here =
                link(&artifact_href(&[&c.entity, &c.project, &c.name, &vn]), &format!("{c}:{vn}"));
            for a in view.aliases_of(*n) {
                if self.matches(&a) {
                    self.hit(here.clone(), "alias", &a);
                }
            }
            for t in &v.tags {
                if self.matches(t) {
                    self.hit(here.clone(), "tag", t);
                }
            }
            if let Some(d) = v.description.as_deref().filter(|d| self.matches(d)) {
                self.hit(here.clone(), "description", d);
            }
            let mut found = Vec::new();
            self.metadata("", &v.metadata, &mut found);
            for (k, val) in found {
                self.hit(here.clone(), &format!("metadata {k}"), &val);
            }
        }
    }

    /// Metadata keys or scalar values that match, as (key path, value).
    fn metadata(&self, at: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let path = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
                    if self.matches(k) && !v.is_object() {
                        out.push((path.clone(), v.to_string()));
                    } else {
                        self.metadata(&path, v, out);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| self.metadata(at, v, out)),
            serde_json::Value::String(s) if self.matches(s) => out.push((at.to_owned(), s.clone())),
            v if !v.is_string() && self.matches(&v.to_string()) => {
                out.push((at.to_owned(), v.to_string()));
            }
            _ => {}
        }
    }

    async fn runs(&mut self, s: &Shared, entity: &str, project: &str) -> Result<(), ServeError> {
        for id in s.registry.runs(entity, project).await.map_err(ServeError::page)? {
            let Ok(path) = RunPath::new(entity, project, &id) else { continue };
            let state = s.registry.run_state(&path).await.map_err(ServeError::page)?;
            let name = state.fields.display_name.clone().unwrap_or_default();
            let here = link(&run_href(entity, project, &id), &format!("run {name} ({id})"));
            if self.matches(&id) {
                self.hit(here.clone(), "run id", &id);
            }
            if self.matches(&name) {
                self.hit(here.clone(), "run name", &name);
            }
            if let Some(j) = state.fields.job_type.as_deref().filter(|j| self.matches(j)) {
                self.hit(here, "job type", j);
            }
        }
        Ok(())
    }
}

pub async fn search(
    State(s): State<Arc<Shared>>,
    Viewer(access): Viewer,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let query = q.get("q").map(|q| q.trim().to_owned()).unwrap_or_default();
    let mut body = search_form(&query);
    if query.is_empty() {
        return Ok(html(page("Search", &[], &body)));
    }
    let mut found = Search { needle: query.to_lowercase(), hits: Vec::new() };
    let catalog = RegistrySource::new(s.registry.clone());
    let present = s.registry.entities().await.map_err(ServeError::page)?;
    for e in access.entities.iter().filter(|e| present.contains(e)) {
        for p in s.registry.projects(e).await.map_err(ServeError::page)? {
            for name in catalog.collections(e, &p).await.map_err(ServeError::page)? {
                let Ok(c) = CollectionPath::new(e, &p, &name) else { continue };
                match catalog.collection(&c).await {
                    Ok(view) if view.artifact_type.is_some() => found.collection(&c, &view),
                    Ok(_) => {}
                    Err(e) if e.is_corrupt() => {}
                    Err(e) => return Err(ServeError::page(e).into()),
                }
            }
            found.runs(&s, e, &p).await?;
            if found.full() {
                break;
            }
        }
    }
    let rows: Vec<Vec<String>> =
        found.hits.iter().map(|h| vec![h.what.clone(), esc(&h.matched)]).collect();
    body.push_str(&format!(
        "<p>{} found{}</p>",
        rows.len(),
        if found.full() { " (the first ones)" } else { "" }
    ));
    body.push_str(&table(&["found", "matched"], &rows));
    Ok(html(page(&format!("Search: {query}"), &[], &body)))
}
