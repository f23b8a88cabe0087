//! A version's files: folders one page at a time (a version of 100,000 entries parses its
//! manifest once, kept by `manifests`) and a file's page with its preview (`preview`) and
//! download link (`download`). Everything is read through the seam (`Catalog`, `BlobSource`).
//! Reference entries show their URI: the server does not fetch URIs for browsers (a `file://`
//! one would read the server's own disk).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};

use super::html::{artifact_href, esc, link, page, seg, table};
use super::opened::{EntryPath, Opened, VersionPath, open, open_at};
use super::{PageResult, Viewer, html, not_found};
use crate::manifest::{Entry, Manifest};
use crate::serve::{ServeError, Shared};

/// Entries of a folder shown per page.
pub const PAGE_ENTRIES: usize = 200;

/// One row of a folder: a sub-folder (with what it holds in all) or a file.
pub enum Child<'a> {
    Dir { name: &'a str, files: u64, bytes: u64 },
    File { name: &'a str, path: &'a str, entry: &'a Entry },
}

/// The children of folder `dir` (`""` or ending in `/`), in path order. The entries below one
/// sub-folder are adjacent in the manifest's order, so one pass folds them into it.
pub fn children<'a>(m: &'a Manifest, dir: &str) -> Vec<Child<'a>> {
    let mut out: Vec<Child<'a>> = Vec::new();
    let below =
        m.contents.range::<str, _>((std::ops::Bound::Included(dir), std::ops::Bound::Unbounded));
    for (path, entry) in below.take_while(|(p, _)| p.starts_with(dir)) {
        let rest = &path[dir.len()..];
        let size = entry.size.unwrap_or(0);
        match rest.split_once('/') {
            None => out.push(Child::File { name: rest, path, entry }),
            Some((head, _)) => match out.last_mut() {
                Some(Child::Dir { name, files, bytes }) if *name == head => {
                    *files += 1;
                    *bytes += size;
                }
                _ => out.push(Child::Dir { name: head, files: 1, bytes: size }),
            },
        }
    }
    out
}

/// `a/b c/d` as a URL path, each segment percent-encoded.
pub fn path_href(path: &str) -> String {
    path.split('/').map(seg).collect::<Vec<_>>().join("/")
}

fn human(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

/// A folder's table, page `page` (from 1) of it; `None` when the folder holds nothing.
pub fn listing(o: &Opened, dir: &str, page_no: usize) -> Option<String> {
    let all = children(&o.manifest, dir);
    if all.is_empty() {
        return None;
    }
    let pages = all.len().div_ceil(PAGE_ENTRIES);
    let page_no = page_no.clamp(1, pages);
    let first = (page_no - 1) * PAGE_ENTRIES;
    let rows: Vec<Vec<String>> =
        all.iter().skip(first).take(PAGE_ENTRIES).map(|c| row(o, dir, c)).collect();
    let shown = format!("entries {}–{} of {}", first + 1, first + rows.len(), all.len());
    let here = format!("{}/files/{}", o.href, path_href(dir));
    let mut pager = format!("<p class=\"pager\"><span>{}</span> ", esc(&shown));
    if page_no > 1 {
        pager.push_str(&link(&format!("{here}?page={}", page_no - 1), "previous page"));
    }
    if page_no < pages {
        pager.push_str(&link(&format!("{here}?page={}", page_no + 1), "next page"));
    }
    let archive = match dir.trim_end_matches('/') {
        "" => format!("{}/archive", o.href),
        d => format!("{}/archive/{}", o.href, path_href(d)),
    };
    pager.push_str(&link(&archive, "download this folder (.tar)"));
    pager.push_str("</p>");
    let head = ["name", "size", "digest", "reference", ""];
    Some(format!("{pager}{}", table(&head, &rows)))
}

fn row(o: &Opened, dir: &str, c: &Child<'_>) -> Vec<String> {
    match c {
        Child::Dir { name, files, bytes } => {
            let href = format!("{}/files/{}/", o.href, path_href(&format!("{dir}{name}")));
            let count = format!("{files} file{}", if *files == 1 { "" } else { "s" });
            vec![
                link(&href, &format!("{name}/")),
                human(*bytes),
                esc(&count),
                String::new(),
                String::new(),
            ]
        }
        Child::File { name, path, entry } => {
            let href = format!("{}/files/{}", o.href, path_href(path));
            let reference = entry.reference.as_deref().map(crate::refs::redact);
            let download = if entry.is_reference() {
                String::new()
            } else {
                link(&format!("{}/raw/{}", o.href, path_href(path)), "download")
            };
            vec![
                link(&href, name),
                entry.size.map(human).unwrap_or_else(|| "?".into()),
                format!("<code>{}</code>", esc(&crate::refs::redact(&entry.digest))),
                esc(reference.as_deref().unwrap_or("")),
                download,
            ]
        }
    }
}

fn page_of(q: &HashMap<String, String>) -> usize {
    q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1)
}

/// The breadcrumbs of a path inside a version, and the page's title.
fn crumbs(o: &Opened, path: &str) -> (Vec<(String, String)>, String) {
    let c = &o.version.collection;
    let vn = format!("v{}", o.version.record.version);
    let mut out = vec![
        (artifact_href(&[&c.entity]), c.entity.clone()),
        (artifact_href(&[&c.entity, &c.project]), c.project.clone()),
        (artifact_href(&[&c.entity, &c.project, &c.name]), c.name.clone()),
        (o.href.clone(), vn.clone()),
        (format!("{}/files", o.href), "files".to_owned()),
    ];
    let mut so_far = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        so_far.push_str(part);
        so_far.push('/');
        out.push((format!("{}/files/{}", o.href, path_href(&so_far)), part.to_owned()));
    }
    (out, format!("{c}:{vn}/{path}"))
}

/// `…/vN/files`: the top folder.
pub async fn root(
    State(s): State<Arc<Shared>>,
    Viewer(access): Viewer,
    Path(v): Path<VersionPath>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let o = open(&s, &access, &v).await?;
    let body = listing(&o, "", page_of(&q)).unwrap_or_else(|| "<p>(no files)</p>".into());
    let (crumbs, title) = crumbs(&o, "");
    Ok(html(page(&title, &crumbs, &body)))
}

/// `…/vN/files/<path>`: a file's page, or a folder's.
pub async fn browse(
    State(s): State<Arc<Shared>>,
    Viewer(access): Viewer,
    Path(at): Path<EntryPath>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let (o, path) = open_at(&s, &access, at).await?;
    let (crumbs, title) = crumbs(&o, &path);
    if let Some(entry) = o.manifest.contents.get(&path) {
        let body = file_page(&o, &path, entry).await?;
        return Ok(html(page(&title, &crumbs, &body)));
    }
    let dir = format!("{}/", path.trim_end_matches('/'));
    let body = listing(&o, &dir, page_of(&q)).ok_or_else(not_found)?;
    Ok(html(page(&title, &crumbs, &body)))
}

async fn file_page(o: &Opened, path: &str, entry: &Entry) -> Result<String, ServeError> {
    let raw = format!("{}/raw/{}", o.href, path_href(path));
    let mut rows = vec![
        vec!["size".into(), entry.size.map(human).unwrap_or_else(|| "?".into())],
        vec!["digest".into(), format!("<code>{}</code>", esc(&crate::refs::redact(&entry.digest)))],
    ];
    if let Some(r) = &entry.reference {
        rows.push(vec![
            "reference".into(),
            format!("<code>{}</code>", esc(&crate::refs::redact(r))),
        ]);
        let body = format!(
            "{}<p>A reference: its bytes live at its URI, which <code>artfs get</code> and \
             <code>artfs mount</code> read.</p>",
            table(&["", ""], &rows)
        );
        return Ok(body);
    }
    rows.push(vec!["download".into(), link(&raw, "download")]);
    let preview = super::preview::preview(o, path, entry, &raw).await?;
    Ok(format!("{}<h2>Preview</h2><div class=\"preview\">{preview}</div>", table(&["", ""], &rows)))
}
