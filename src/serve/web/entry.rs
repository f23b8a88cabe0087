//! Ways into the UI: the home page, W&B's own URL shapes (the SDK prints `View project at
//! <base>/<entity>/<project>` and `View run at …/runs/<id>`; `Artifact.url` is
//! `…/artifacts/<type>/<name>/<version>`) redirected to their pages, the styled `404` of
//! anything else a browser asks for, and the headers every response carries.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::html::{artifact_href, esc, link, list, page, run_href, table, when};
use super::{PageError, PageResult, Viewer, html, not_found};
use crate::serve::{ServeError, Shared};
use crate::source::CatalogExt;
use crate::source::registry::RegistrySource;

/// Pages draw no script, load nothing from elsewhere and cannot be framed; an entry's bytes
/// are never sniffed into HTML. Answers of the API carry the same: they are never pages.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; img-src 'self'; \
     style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Recent versions shown on the home page.
const HOME_RECENT: usize = 20;
/// Registries are the projects of this prefix (W&B's Registry).
const REGISTRY_PREFIX: &str = "wandb-registry-";

/// Adds the security headers to every response of the server.
pub async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    res
}

/// What no route answers: W&B's URL shapes redirect to their page; a browser gets a styled
/// `404`; an API client the plain one it always got.
pub async fn fallback(req: Request) -> Response {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        let browser = wants_html(req.headers());
        // A one-segment path may also be a file an API client probes for (artfs itself asks
        // any HTTP registry for `/artfs-registry.json`): only a browser goes to an entity page.
        let entity_page = browser || req.uri().path().trim_matches('/').contains('/');
        if let Some(to) = wandb_location(req.uri().path()).filter(|_| entity_page) {
            return Redirect::to(&to).into_response();
        }
        if browser {
            return not_found_page().await;
        }
    }
    ServeError::NoEndpoint.into_response()
}

pub async fn not_found_page() -> Response {
    PageError(not_found()).into_response()
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// The UI page of a W&B app URL path, if it has one of W&B's shapes.
fn wandb_location(path: &str) -> Option<String> {
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    Some(match s.as_slice() {
        [] => "/ui/".to_owned(),
        [e] => artifact_href(&[e]),
        [e, p] | [e, p, "overview" | "table" | "workspace" | "artifacts"] => artifact_href(&[e, p]),
        [e, p, "artifacts", _type] => artifact_href(&[e, p]),
        [e, p, "runs", run, ..] => run_href(e, p, run),
        [e, p, "artifacts", _type, name] => artifact_href(&[e, p, name]),
        [e, p, "artifacts", _type, name, version, ..] => artifact_href(&[e, p, name, version]),
        _ => return None,
    })
}

/// A version for the home page's list of recent ones.
struct Recent {
    label: String,
    href: String,
    artifact_type: String,
    created: chrono::DateTime<chrono::Utc>,
}

/// `/ui/`: the projects the key can see, the latest versions logged in them, the registries.
pub async fn home(State(s): State<Arc<Shared>>, Viewer(access): Viewer) -> PageResult {
    let present = s.registry.entities().await.map_err(ServeError::page)?;
    let catalog = RegistrySource::new(s.registry.clone());
    let (mut projects, mut registries, mut recent) = (Vec::new(), Vec::new(), Vec::new());
    let mut entities = Vec::new();
    for e in access.entities.iter().filter(|e| present.contains(e)) {
        entities.push(link(&artifact_href(&[e]), e));
        for p in s.registry.projects(e).await.map_err(ServeError::page)? {
            let item = link(&artifact_href(&[e, &p]), &format!("{e}/{p}"));
            if p.starts_with(REGISTRY_PREFIX) {
                registries.push(item)
            } else {
                projects.push(item)
            }
            for c in catalog.summaries(e, &p).await.map_err(ServeError::page)? {
                let Some(v) = c.latest else { continue };
                let vn = format!("v{}", v.version);
                let col = &c.collection;
                recent.push(Recent {
                    label: format!("{col}:{vn}"),
                    href: artifact_href(&[e, &p, &col.name, &vn]),
                    artifact_type: c.artifact_type.clone(),
                    created: v.created_at,
                });
            }
        }
    }
    recent.sort_by_key(|r| std::cmp::Reverse(r.created));
    recent.truncate(HOME_RECENT);
    let rows: Vec<Vec<String>> = recent
        .iter()
        .map(|r| vec![link(&r.href, &r.label), esc(&r.artifact_type), when(&r.created)])
        .collect();
    let body = format!(
        "{}<h2>Projects</h2>{}<h2>Recent versions</h2>{}<h2>Registries</h2>{}\
         <h2>Entities</h2>{}",
        search_form(""),
        list(&projects),
        table(&["version", "type", "created"], &rows),
        list(&registries),
        list(&entities),
    );
    Ok(html(page("artfs", &[], &body)))
}

/// The search box every list page starts with.
pub fn search_form(q: &str) -> String {
    format!(
        r#"<form class="search" method="get" action="/ui/search"><input type="search" name="q" value="{}" placeholder="names, types, aliases, tags, metadata, runs"> <button type="submit">Search</button></form>"#,
        esc(q)
    )
}

#[cfg(test)]
mod tests {
    use super::wandb_location;

    #[test]
    fn wandb_url_shapes_map_to_pages() {
        let cases = [
            ("/", Some("/ui/")),
            ("/acme/bikes", Some("/ui/a/acme/bikes")),
            ("/acme/bikes/", Some("/ui/a/acme/bikes")),
            ("/acme/bikes/runs/x1y2", Some("/ui/r/acme/bikes/x1y2")),
            ("/acme/bikes/runs/x1y2/overview", Some("/ui/r/acme/bikes/x1y2")),
            ("/acme/bikes/artifacts/model/net/v3", Some("/ui/a/acme/bikes/net/v3")),
            ("/acme/bikes/artifacts/model/net", Some("/ui/a/acme/bikes/net")),
            ("/acme/bikes/artifacts/my%20type/a%20b/latest", Some("/ui/a/acme/bikes/a%20b/latest")),
            ("/acme/bikes/sweeps/s1/x", None),
        ];
        for (path, want) in cases {
            assert_eq!(wandb_location(path).as_deref(), want, "{path}");
        }
    }
}
