//! The lineage graph on a page, as W&B's lineage view shows it: runs grouped per job type and
//! versions per artifact type (one box with a count per group) until the viewer follows
//! *Explode* (`?explode=1`, no script needed under the page's CSP), then every run and version.
//! Every box is a link that opens in a new tab: a node to its page, a group to the exploded view.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;

use super::html::{artifact_href, esc, run_href};
use super::{PageResult, Viewer, collection, readable, version_number};
use crate::registry::Registry;
use crate::registry::lineage::{Direction, Graph, Node, VersionKey};
use crate::serve::auth::Access;
use crate::serve::{ServeError, Shared};

/// How a page asked for its graph.
pub struct View {
    /// Hops from the version (`?depth=N`); all when none.
    pub depth: Option<u32>,
    /// Every node in a box of its own (`?explode=1`).
    pub explode: bool,
}

impl View {
    pub fn of(q: &HashMap<String, String>, depth: Option<u32>) -> View {
        View {
            depth: q.get("depth").and_then(|d| d.parse().ok()).or(depth),
            explode: q.get("explode").is_some_and(|e| e == "1"),
        }
    }

    /// `here` with this view's depth, exploded or not.
    fn href(&self, here: &str, explode: bool) -> String {
        let mut q = Vec::new();
        if let Some(d) = self.depth {
            q.push(format!("depth={d}"));
        }
        if explode {
            q.push("explode=1".into());
        }
        if q.is_empty() { here.to_owned() } else { format!("{here}?{}", q.join("&")) }
    }
}

/// The lineage graph of a version as the caller may see it.
async fn graph_of(
    registry: &Registry,
    access: &Access,
    key: &VersionKey,
    depth: Option<u32>,
) -> Result<Graph, ServeError> {
    let mut graph =
        registry.lineage(key, Direction::Both, depth).await.map_err(ServeError::page)?;
    graph.retain_entities(|e| access.can_read(e));
    Ok(graph)
}

/// `g` drawn with links to the pages; `here` is the page the graph is on.
fn drawing(g: &Graph, view: &View, here: &str) -> String {
    let link = |n: &Node| {
        Some(match n {
            Node::Version(v) => {
                let mut parts = v.name.splitn(3, '/');
                let (e, p, name) = (parts.next()?, parts.next()?, parts.next()?);
                artifact_href(&[e, p, name, &v.version])
            }
            Node::Run(r) => run_href(&r.entity, &r.project, &r.run),
        })
    };
    let style = crate::svg::Style {
        explode: view.explode,
        link: &link,
        exploded: Some(format!("{}#lineage", view.href(here, true))),
    };
    crate::svg::render(g, &style)
}

/// The graph's part of a page on `here`: which view it is, the link to the other, the picture.
pub async fn section(
    registry: &Registry,
    access: &Access,
    key: &VersionKey,
    here: &str,
    view: &View,
) -> Result<String, ServeError> {
    let g = graph_of(registry, access, key, view.depth).await?;
    let n = g.nodes.len();
    let control = if view.explode {
        format!(
            r#"Every run and version ({n}). <a class="group-view" href="{}">Group by type</a>"#,
            esc(&format!("{}#lineage", view.href(here, false)))
        )
    } else {
        format!(
            r#"{n} runs and versions, grouped per job type and artifact type. <a class="explode" href="{}">Explode</a> to see each one."#,
            esc(&format!("{}#lineage", view.href(here, true)))
        )
    };
    Ok(format!(
        r#"<p class="graph-view">{control}</p><div class="lineage-box">{}</div>"#,
        drawing(&g, view, here)
    ))
}

/// `…/lineage.svg`: the picture alone (`?depth=N`, `?explode=1`).
pub async fn lineage_svg(
    State(s): State<Arc<Shared>>,
    Viewer(access): Viewer,
    Path((entity, project, name, v)): Path<(String, String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    readable(&access, &entity)?;
    let (c, state) = collection(&s.registry, &entity, &project, &name).await?;
    let number = version_number(&c, &state, &v)?;
    let here = artifact_href(&[&entity, &project, &name, &format!("v{number}")]);
    let key = VersionKey { collection: c, version: number };
    let view = View::of(&q, None);
    let g = graph_of(&s.registry, &access, &key, view.depth).await?;
    let svg = drawing(&g, &view, &here);
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}
