//! Two versions of one collection compared (`…/vN/diff?against=vM`, the previous live version
//! by default): files added, removed and changed (by digest) with the unchanged count, folders
//! whose files all changed the same way collapsed into one line, the size delta, and the
//! differences of metadata, aliases and tags.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use axum::extract::{Path, Query, State};

use super::files::path_href;
use super::html::{esc, link, page, table};
use super::opened::{Opened, VersionPath, open, source_error};
use super::{PageResult, Viewer, html, not_found};
use crate::manifest::Manifest;
use crate::names::CollectionPath;
use crate::serve::Shared;
use crate::source::Catalog;
use crate::source::registry::RegistrySource;

/// Paths listed per kind of change; the counts stay exact.
const LISTED_PATHS: usize = 2000;

/// How the files of two manifests differ.
#[derive(Debug, Default, PartialEq)]
pub struct FileDiff<'a> {
    pub added: Vec<&'a str>,
    pub removed: Vec<&'a str>,
    pub changed: Vec<&'a str>,
    pub unchanged: usize,
}

/// One pass over both manifests' sorted paths.
pub fn file_diff<'a>(old: &'a Manifest, new: &'a Manifest) -> FileDiff<'a> {
    let mut d = FileDiff::default();
    let (mut a, mut b) = (old.contents.iter().peekable(), new.contents.iter().peekable());
    loop {
        match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some((p, _)), None) => {
                d.removed.push(p.as_str());
                a.next();
            }
            (None, Some((p, _))) => {
                d.added.push(p.as_str());
                b.next();
            }
            (Some((pa, ea)), Some((pb, eb))) => match pa.cmp(pb) {
                std::cmp::Ordering::Less => {
                    d.removed.push(pa.as_str());
                    a.next();
                }
                std::cmp::Ordering::Greater => {
                    d.added.push(pb.as_str());
                    b.next();
                }
                std::cmp::Ordering::Equal => {
                    if ea.digest == eb.digest && ea.reference == eb.reference {
                        d.unchanged += 1;
                    } else {
                        d.changed.push(pa.as_str());
                    }
                    a.next();
                    b.next();
                }
            },
        }
    }
    d
}

/// The paths of one kind of change, a top folder with more than one of them as one
/// collapsible line.
fn collapsed(paths: &[&str], class: &str, href: &dyn Fn(&str) -> String) -> String {
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in paths.iter().take(LISTED_PATHS) {
        let top = p.split_once('/').map_or(*p, |(t, _)| t);
        groups.entry(top).or_default().push(p);
    }
    let mut out = format!("<ul class=\"{class}\">");
    for (top, ps) in groups {
        let items: String = ps.iter().map(|p| format!("<li>{}</li>", link(&href(p), p))).collect();
        if ps.len() > 1 {
            out.push_str(&format!(
                "<li><details><summary>{}/ ({} files)</summary><ul>{items}</ul></details></li>",
                esc(top),
                ps.len()
            ));
        } else {
            out.push_str(&items);
        }
    }
    if paths.len() > LISTED_PATHS {
        out.push_str(&format!("<li>… and {} more</li>", paths.len() - LISTED_PATHS));
    }
    out.push_str("</ul>");
    out
}

/// `+1.2 kB` / `-300 B`.
fn signed_bytes(old: u64, new: u64) -> String {
    let (sign, n) = if new >= old { ("+", new - old) } else { ("-", old - new) };
    format!("{sign}{}", indicatif::HumanBytes(n))
}

/// Rows (what, before, after) of the top-level metadata keys that differ.
fn metadata_rows(old: &serde_json::Value, new: &serde_json::Value) -> Vec<Vec<String>> {
    let empty = serde_json::Map::new();
    let (a, b) = (old.as_object().unwrap_or(&empty), new.as_object().unwrap_or(&empty));
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let show = |v: Option<&serde_json::Value>| {
        v.map(|v| format!("<code>{}</code>", esc(&v.to_string()))).unwrap_or_default()
    };
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| vec![format!("metadata <code>{}</code>", esc(k)), show(a.get(k)), show(b.get(k))])
        .collect()
}

fn set_row(what: &str, old: &[String], new: &[String]) -> Option<Vec<String>> {
    let (a, b): (BTreeSet<&String>, BTreeSet<&String>) =
        (old.iter().collect(), new.iter().collect());
    (a != b).then(|| {
        let show = |s: &BTreeSet<&String>| {
            esc(&s.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(", "))
        };
        vec![what.to_owned(), show(&a), show(&b)]
    })
}

/// The version compared with by default: the newest live one before `v`.
async fn previous(
    s: &Shared,
    c: &CollectionPath,
    v: u32,
) -> Result<Option<u32>, crate::serve::ServeError> {
    let view = RegistrySource::new(s.registry.clone()).collection(c).await.map_err(source_error)?;
    Ok(view.versions.range(..v).next_back().map(|(n, _)| *n))
}

pub async fn diff(
    State(s): State<Arc<Shared>>,
    Viewer(access): Viewer,
    Path(v): Path<VersionPath>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let new = open(&s, &access, &v).await?;
    let c = new.version.collection.clone();
    let against = match q.get("against") {
        Some(a) => a.clone(),
        None => match previous(&s, &c, new.version.record.version).await? {
            Some(n) => format!("v{n}"),
            None => {
                let body =
                    "<p>This is the first version: there is nothing before it to compare.</p>";
                return Ok(html(page(&format!("{c}:v{}", new.version.record.version), &[], body)));
            }
        },
    };
    let old = open(&s, &access, &(v.0.clone(), v.1.clone(), v.2.clone(), against)).await?;
    if old.version.collection != c {
        return Err(not_found().into());
    }
    let title = format!("{c}: v{} → v{}", old.version.record.version, new.version.record.version);
    Ok(html(page(&title, &[], &diff_body(&old, &new))))
}

fn diff_body(old: &Opened, new: &Opened) -> String {
    let d = file_diff(&old.manifest, &new.manifest);
    let (ro, rn) = (&old.version.record, &new.version.record);
    let mut rows = vec![vec![
        "size".to_owned(),
        esc(&indicatif::HumanBytes(ro.size).to_string()),
        format!("{} ({})", indicatif::HumanBytes(rn.size), signed_bytes(ro.size, rn.size)),
    ]];
    rows.extend(set_row("aliases", &old.version.aliases, &new.version.aliases));
    rows.extend(set_row("tags", &ro.tags, &rn.tags));
    if ro.description != rn.description {
        let show = |d: &Option<String>| esc(d.as_deref().unwrap_or(""));
        rows.push(vec!["description".into(), show(&ro.description), show(&rn.description)]);
    }
    rows.extend(metadata_rows(&ro.metadata, &rn.metadata));
    let counts = format!(
        "<p class=\"counts\"><span class=\"added\">{} added</span>, <span class=\"removed\">{} \
         removed</span>, <span class=\"changed\">{} changed</span>, {} unchanged</p>",
        d.added.len(),
        d.removed.len(),
        d.changed.len(),
        d.unchanged
    );
    let in_new = |p: &str| format!("{}/files/{}", new.href, path_href(p));
    let in_old = |p: &str| format!("{}/files/{}", old.href, path_href(p));
    let from = format!("v{}", ro.version);
    let to = format!("v{}", rn.version);
    format!(
        "{}{counts}<h2>Added</h2>{}<h2>Removed</h2>{}<h2>Changed</h2>{}",
        table(&["", &from, &to], &rows),
        collapsed(&d.added, "added", &in_new),
        collapsed(&d.removed, "removed", &in_old),
        collapsed(&d.changed, "changed", &in_new),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Entry;

    fn manifest(files: &[(&str, &str)]) -> Manifest {
        let mut m = Manifest::default();
        for (p, d) in files {
            m.contents.insert((*p).to_owned(), Entry::stored((*d).to_owned(), 1));
        }
        m
    }

    #[test]
    fn files_are_added_removed_changed_or_unchanged_by_digest() {
        let old = manifest(&[("a", "1"), ("b", "2"), ("d/x", "3")]);
        let new = manifest(&[("a", "1"), ("b", "9"), ("c", "4")]);
        let d = file_diff(&old, &new);
        assert_eq!(
            d,
            FileDiff { added: vec!["c"], removed: vec!["d/x"], changed: vec!["b"], unchanged: 1 }
        );
    }
}
