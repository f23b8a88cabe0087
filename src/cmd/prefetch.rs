//! `artfs prefetch`: fill the cache with a version, or a folder of it, before it is read.

use std::sync::atomic::AtomicBool;

use anyhow::{Result, bail};
use serde_json::json;

use super::{App, count, human_bytes, print_json};
use crate::cli::PrefetchArgs;
use crate::fetch::Fetcher;
use crate::manifest::{Entry, Manifest};
use crate::source::CatalogExt as _;
use crate::{prefetch, progress};

/// Entries named in a failure message; the rest are counted.
const LISTED_FAILURES: usize = 5;

/// `name:alias/PATH` → (`name:alias`, `PATH`). A PATH is only recognised after the `:alias`:
/// without one, slashes separate entity, project and name.
fn split_subtree(arg: &str) -> (&str, Option<&str>) {
    let Some(colon) = arg.find(':') else { return (arg, None) };
    match arg[colon..].find('/') {
        Some(slash) => {
            let (artifact, rest) = arg.split_at(colon + slash);
            (artifact, Some(rest.trim_start_matches('/')).filter(|p| !p.is_empty()))
        }
        None => (arg, None),
    }
}

impl App {
    pub(super) async fn prefetch(&self, args: PrefetchArgs) -> Result<()> {
        if args.jobs == 0 {
            usage!("--jobs must be at least 1");
        }
        let clouds = self.reference_clouds(&args.access)?;
        let (artifact, subtree) = split_subtree(&args.artifact);
        let catalog = self.catalog().await?;
        let v = self.resolve(catalog.as_ref(), artifact).await?;
        let manifest = catalog.manifest(&v).await?;
        let blobs = catalog.blobs(&v.collection, &v.record);
        let label = v.label();
        let selected = select(&manifest, &label, subtree)?;
        let what = match subtree {
            Some(p) => format!("{label}/{p}"),
            None => label.clone(),
        };
        let cache = self.cache()?;
        let set = prefetch::plan(selected, cache.keep_bytes());
        let fetcher =
            Fetcher::new(cache.clone(), tokio::runtime::Handle::current()).with_clouds(clouds);
        let (quiet, jobs) = (self.config.quiet, args.jobs);
        let (warmed, set) = tokio::task::spawn_blocking({
            let label = label.clone();
            move || {
                let bar = progress::Bytes::new("prefetching", set.bytes, quiet);
                let stop = AtomicBool::new(false);
                let warmed = prefetch::warm(
                    &fetcher,
                    &blobs,
                    &label,
                    &set.entries,
                    jobs,
                    &|n| bar.inc(n),
                    &stop,
                );
                bar.finish();
                (warmed, set)
            }
        })
        .await?;
        if let Some(first) = warmed.failed.first() {
            bail!("{first}{}", retry_hint(&warmed, &args.artifact));
        }
        if set.left_out_files > 0 {
            bail!(
                "stopped at the cache limit: {} of {what} ({}) are in the cache, {} ({}) do not fit; the cache keeps at most {} together (90% of --cache-size {}). Raise --cache-size, or prefetch a folder (`NAME:ALIAS/PATH`)",
                count(warmed.files as usize, "entry"),
                human_bytes(warmed.bytes),
                count(set.left_out_files as usize, "entry"),
                human_bytes(set.left_out_bytes),
                human_bytes(cache.keep_bytes()),
                human_bytes(cache.max_bytes()),
            );
        }
        if args.json {
            return print_json(&json!({
                "name": what,
                "files": warmed.files,
                "bytes": warmed.bytes,
                "fetched_files": warmed.fetched_files,
                "already_cached_files": warmed.files - warmed.fetched_files,
            }));
        }
        if !self.config.quiet {
            eprintln!(
                "{what}: {} ({}) in the cache, verified; {} fetched, {} already there",
                count(warmed.files as usize, "entry"),
                human_bytes(warmed.bytes),
                warmed.fetched_files,
                warmed.files - warmed.fetched_files,
            );
        }
        Ok(())
    }
}

/// The entries of `subtree` (an entry or a folder), or all of them.
fn select<'m>(
    manifest: &'m Manifest,
    label: &str,
    subtree: Option<&str>,
) -> Result<Vec<(&'m String, &'m Entry)>> {
    let Some(p) = subtree else {
        return Ok(manifest.contents.iter().collect());
    };
    let folder = format!("{}/", p.trim_end_matches('/'));
    let found: Vec<_> = manifest
        .contents
        .iter()
        .filter(|(path, _)| *path == p || path.starts_with(&folder))
        .collect();
    if found.is_empty() {
        bail!("{label} has no entry or folder {p}; `artfs show {label} --files` lists its entries");
    }
    Ok(found)
}

/// After the first failure: the others (a few named), what is in the cache, and how to retry.
fn retry_hint(warmed: &prefetch::Warmed, artifact: &str) -> String {
    let others = match warmed.failed.len().saturating_sub(1) {
        0 => String::new(),
        n => format!(
            " (and {} more: {})",
            count(n, "entry"),
            warmed.failed[1..]
                .iter()
                .take(LISTED_FAILURES)
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ),
    };
    format!(
        "{others}; the other {} are in the cache. Nothing unverified was kept; run `artfs prefetch {artifact}` again to retry",
        count(warmed.files as usize, "entry"),
    )
}

#[cfg(test)]
mod tests {
    use super::split_subtree;

    #[test]
    fn a_path_follows_the_alias() {
        assert_eq!(split_subtree("ds"), ("ds", None));
        assert_eq!(split_subtree("acme/bikes/ds"), ("acme/bikes/ds", None));
        assert_eq!(split_subtree("ds:v3"), ("ds:v3", None));
        assert_eq!(
            split_subtree("acme/bikes/ds:latest/train/x"),
            ("acme/bikes/ds:latest", Some("train/x"))
        );
        assert_eq!(split_subtree("ds:v0/"), ("ds:v0", None));
    }
}
