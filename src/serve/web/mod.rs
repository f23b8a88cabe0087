//! The web UI of `artfs serve`: server-rendered HTML under `/ui/`, no JavaScript, no build step.
//! entities → projects → artifacts → versions (aliases, digest, size, metadata, description,
//! files, who logged and used it, its lineage drawn by `crate::svg`) and runs; W&B's own URL
//! shapes redirect here (`entry`), a version's files are browsed, previewed and downloaded
//! (`files`), two versions compared (`diff`), everything the key sees searched (`search`).
//! Every page is an error page too: what goes wrong is answered as HTML with the status
//! `ServeError` decides (`PageError`), and every response carries `SECURITY_HEADERS`.
//!
//! Access control is the API's: every page needs an API key, sent by the browser as HTTP Basic
//! credentials (any user name, the key as password; a request without them gets `401` with
//! `WWW-Authenticate: Basic`, so browsers prompt). A key shows only its entities; other
//! entities' pages are `404`, as in the API.

mod archive;
mod diff;
mod download;
mod entry;
mod files;
mod graph;
mod html;
mod manifests;
mod markdown;
mod opened;
mod preview;
mod runs;
mod search;
mod snippet;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use self::html::{artifact_href, esc, link, list, page, run_href, table, when};
use super::auth::{Access, caller};
use super::error::Kind;
use super::{ServeError, Shared};
use crate::names::{CollectionPath, Selector, parse_version};
use crate::registry::Registry;
use crate::registry::lineage::VersionKey;
use crate::registry::runs::RunPath;

pub use self::entry::{fallback, security_headers};
pub use self::manifests::Manifests;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(entry::home))
        .route("/a", get(entities))
        .route("/search", get(search::search))
        .route("/a/{entity}/{project}/{name}/{version}/files", get(files::root))
        .route("/a/{entity}/{project}/{name}/{version}/files/{*path}", get(files::browse))
        .route("/a/{entity}/{project}/{name}/{version}/raw/{*path}", get(download::raw))
        .route("/a/{entity}/{project}/{name}/{version}/diff", get(diff::diff))
        .route("/a/{entity}/{project}/{name}/{version}/archive", get(archive::whole))
        .route("/a/{entity}/{project}/{name}/{version}/archive/{*dir}", get(archive::folder))
        .route("/a/{entity}", get(projects))
        .route("/a/{entity}/{project}", get(artifacts))
        .route("/a/{entity}/{project}/{name}", get(versions))
        .route("/a/{entity}/{project}/{name}/{version}", get(version))
        .route("/a/{entity}/{project}/{name}/{version}/lineage.svg", get(graph::lineage_svg))
        .route("/r/{entity}/{project}/{run}", get(runs::run))
        .fallback(entry::not_found_page)
        .with_state(shared)
}

/// What a page handler returns: HTML, or the error to answer with (as an HTML page).
type PageResult = Result<Response, PageError>;

/// An error answered as a page: the status (and `WWW-Authenticate`) `ServeError` decides, the
/// words as HTML. What the server itself cannot do is logged there and told in general terms.
#[derive(Debug)]
pub struct PageError(ServeError);

impl From<ServeError> for PageError {
    fn from(e: ServeError) -> PageError {
        PageError(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let kind = self.0.kind();
        let (title, text) = match kind {
            Kind::NotFound => ("Not found", self.0.to_string()),
            Kind::Unauthenticated => ("Sign in", self.0.to_string()),
            k if k.is_expected() => ("Refused", self.0.to_string()),
            _ => ("Unavailable", "the registry cannot be read right now; retry".to_owned()),
        };
        let (mut parts, _) = self.0.into_response().into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.insert(header::CONTENT_TYPE, HTML_TYPE);
        let body = page(title, &[], &format!("<p class=\"error\">{}</p>", esc(&text)));
        Response::from_parts(parts, body.into())
    }
}

const HTML_TYPE: header::HeaderValue = header::HeaderValue::from_static("text/html; charset=utf-8");

fn not_found() -> ServeError {
    ServeError::NotFound("not found".into())
}

fn html(body: String) -> Response {
    ([(header::CONTENT_TYPE, HTML_TYPE)], body).into_response()
}

/// The caller of a page: extracting it answers `401` (or `503`) when there is no valid key;
/// the `401` makes a browser ask for the key.
struct Viewer(Access);

impl FromRequestParts<Arc<Shared>> for Viewer {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, s: &Arc<Shared>) -> Result<Self, PageError> {
        let access = caller(s, &parts.headers).await.map_err(ServeError::page)?;
        Ok(access.map(Viewer).ok_or(ServeError::SignIn)?)
    }
}

fn readable(access: &Access, entity: &str) -> Result<(), ServeError> {
    if access.can_read(entity) { Ok(()) } else { Err(not_found()) }
}

async fn entities(State(s): State<Arc<Shared>>, Viewer(access): Viewer) -> PageResult {
    let present = s.registry.entities().await.map_err(ServeError::page)?;
    let items: Vec<String> = access
        .entities
        .iter()
        .filter(|e| present.contains(e))
        .map(|e| link(&artifact_href(&[e]), e))
        .collect();
    Ok(html(page("Entities", &[], &list(&items))))
}

async fn projects(
    State(s): State<Arc<Shared>>,
    Viewer(access): Viewer,
    Path(entity): Path<String>,
) -> PageResult {
    readable(&access, &entity)?;
    let items: Vec<String> = s
        .registry
        .projects(&entity)
        .await
        .map_err(ServeError::page)?
        .iter()
        .map(|p| link(&artifact_href(&[&entity, p]), p))
        .collect();
    let crumbs = [(artifact_href(&[&entity]), entity.clone())];
    Ok(html(page(&format!("Projects of {entity}"), &crumbs, &list(&items))))
}

async fn artifacts(
    State(s): State<Arc<Shared>>,
    Viewer(access): Viewer,
    Path((entity, project)): Path<(String, String)>,
) -> PageResult {
    readable(&access, &entity)?;
    let catalog = crate::source::registry::RegistrySource::new(s.registry.clone());
    let summaries = crate::source::CatalogExt::summaries(&catalog, &entity, &project)
        .await
        .map_err(ServeError::page)?;
    let rows: Vec<Vec<String>> = summaries
        .iter()
        .map(|c| {
            let name = &c.collection.name;
            vec![
                link(&artifact_href(&[&entity, &project, name]), name),
                esc(&c.artifact_type),
                c.versions.to_string(),
                c.latest.as_ref().map(|v| format!("v{}", v.version)).unwrap_or_default(),
            ]
        })
        .collect();
    let (runs, run_count) = runs::table_of(&s, &entity, &project).await?;
    if rows.is_empty() && run_count == 0 {
        return Err(not_found().into());
    }
    let mut body = table(&["artifact", "type", "versions", "latest"], &rows);
    body.push_str("<h2>Runs</h2>");
    body.push_str(&runs);
    let crumbs = [
        (artifact_href(&[&entity]), entity.clone()),
        (artifact_href(&[&entity, &project]), project.clone()),
    ];
    Ok(html(page(&format!("{entity}/{project}"), &crumbs, &body)))
}

async fn collection(
    registry: &Registry,
    entity: &str,
    project: &str,
    name: &str,
) -> Result<(CollectionPath, crate::registry::CollectionState), ServeError> {
    let c = CollectionPath::new(entity, project, name).map_err(|_| not_found())?;
    let state = registry.live_state(&c).await.map_err(ServeError::page)?;
    if !state.exists() {
        return Err(not_found());
    }
    Ok((c, state))
}

async fn versions(
    State(s): State<Arc<Shared>>,
    Viewer(access): Viewer,
    Path((entity, project, name)): Path<(String, String, String)>,
) -> PageResult {
    readable(&access, &entity)?;
    let (c, state) = collection(&s.registry, &entity, &project, &name).await?;
    let rows: Vec<Vec<String>> = state
        .versions
        .values()
        .rev()
        .map(|v| {
            let vn = format!("v{}", v.version);
            vec![
                link(&artifact_href(&[&entity, &project, &name, &vn]), &vn),
                esc(&state.aliases_of(v.version).join(", ")),
                format!("<code>{}</code>", esc(&v.digest)),
                indicatif::HumanBytes(v.size).to_string(),
                when(&v.created_at),
            ]
        })
        .collect();
    let body = format!(
        "<p>type {}</p>{}",
        esc(state.artifact_type.as_deref().unwrap_or("")),
        table(&["version", "aliases", "digest", "size", "created"], &rows)
    );
    let crumbs = [
        (artifact_href(&[&entity]), entity.clone()),
        (artifact_href(&[&entity, &project]), project.clone()),
        (artifact_href(&[&entity, &project, &name]), name.clone()),
    ];
    Ok(html(page(&c.to_string(), &crumbs, &body)))
}

/// `vN` or an alias of `c`, as a version number.
fn version_number(
    c: &CollectionPath,
    state: &crate::registry::CollectionState,
    v: &str,
) -> Result<u32, ServeError> {
    let selector = match parse_version(v) {
        Some(n) => Selector::Version(n),
        None => Selector::Alias(v.to_owned()),
    };
    match selector {
        // A deleted version keeps its page: its lineage is still there.
        Selector::Version(n) if n < state.next_version => Ok(n),
        s => Registry::resolve_in(c, state, &s).map(|r| r.record.version).map_err(|_| not_found()),
    }
}

async fn version(
    State(s): State<Arc<Shared>>,
    Viewer(access): Viewer,
    Path((entity, project, name, v)): Path<(String, String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    readable(&access, &entity)?;
    let (c, state) = collection(&s.registry, &entity, &project, &name).await?;
    let number = version_number(&c, &state, &v)?;
    let key = VersionKey { collection: c.clone(), version: number };
    let vn = format!("v{number}");
    let here = artifact_href(&[&entity, &project, &name, &vn]);
    let mut body = String::new();
    let record = state.versions.get(&number);
    match record {
        None => body.push_str("<p><strong>This version was deleted.</strong></p>"),
        Some(r) => body.push_str(&details(&state, number, r)),
    }
    let (logged_by, used_by) =
        s.registry.logged_and_used_by(&key).await.map_err(ServeError::page)?;
    let runs = |rs: Vec<RunPath>| -> Vec<String> {
        rs.iter()
            .filter(|r| access.can_read(&r.entity))
            .map(|r| link(&run_href(&r.entity, &r.project, &r.name), &r.name))
            .collect()
    };
    body.push_str("<h2>Logged by</h2>");
    body.push_str(&list(&runs(logged_by)));
    body.push_str("<h2>Used by</h2>");
    body.push_str(&list(&runs(used_by)));
    body.push_str("<h2 id=\"lineage\">Lineage</h2>");
    let view = graph::View::of(&q, None);
    body.push_str(&graph::section(&s.registry, &access, &key, &here, &view).await?);
    if record.is_some() {
        let o =
            opened::open(&s, &access, &(entity.clone(), project.clone(), name.clone(), vn.clone()))
                .await?;
        body.push_str("<h2>Files</h2>");
        body.push_str(&files::listing(&o, "", 1).unwrap_or_else(|| "<p>(no files)</p>".into()));
        body.push_str(&format!(
            "<p>{} · {}</p><h2>Use it</h2>",
            link(&format!("{here}/files"), "browse the files"),
            link(&format!("{here}/diff"), "compare with the previous version"),
        ));
        body.push_str(&snippet::usage(&s.public_url, &c, number));
    }
    let crumbs = [
        (artifact_href(&[&entity]), entity.clone()),
        (artifact_href(&[&entity, &project]), project.clone()),
        (artifact_href(&[&entity, &project, &name]), name.clone()),
        (artifact_href(&[&entity, &project, &name, &vn]), vn.clone()),
    ];
    Ok(html(page(&format!("{c}:{vn}"), &crumbs, &body)))
}

/// The table of a version's record: type, aliases, digest, size, dates, description, metadata.
fn details(
    state: &crate::registry::CollectionState,
    number: u32,
    r: &crate::registry::VersionRecord,
) -> String {
    let rows = vec![
        vec!["type".into(), esc(state.artifact_type.as_deref().unwrap_or(""))],
        vec!["aliases".into(), esc(&state.aliases_of(number).join(", "))],
        vec!["digest".into(), format!("<code>{}</code>", esc(&r.digest))],
        vec!["size".into(), format!("{} in {} files", indicatif::HumanBytes(r.size), r.file_count)],
        vec!["created".into(), when(&r.created_at)],
        vec!["description".into(), markdown::to_html(r.description.as_deref().unwrap_or(""))],
        vec![
            "metadata".into(),
            format!(
                "<pre>{}</pre>",
                esc(&serde_json::to_string_pretty(&r.metadata).unwrap_or_default())
            ),
        ],
    ];
    table(&["", ""], &rows)
}
