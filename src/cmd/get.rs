//! `artfs get`: download a version, or some of its entries, into a folder, verified.
//!
//! The target folder is surveyed first: files that are not the version's, or that differ from
//! it, make `get` refuse (nothing is written) unless `--force`; files already there with the
//! right content (checked by hashing them) are not downloaded again.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::{App, count, get_preflight, human_bytes, print_json};

/// `artfs get --json`: where the version went and what was already there.
#[derive(Debug, serde::Serialize)]
struct Got {
    name: String,
    root: PathBuf,
    files: usize,
    /// On disk now, of the selected entries.
    bytes: u64,
    /// Entries already there with the right content (not downloaded again).
    already_there: usize,
    /// Files that differed and were replaced (`--force`).
    replaced: Vec<String>,
    /// Files not in the version, kept (`--force`).
    kept: Vec<String>,
}
use crate::cli::GetArgs;
use crate::fetch::Fetcher;
use crate::manifest::{ContentCheck, Entry, Manifest, hash_file};
use crate::registry::runs::RunOp;
use crate::source::CatalogExt as _;
use crate::{progress, refs};

/// Paths quoted by name in a message; the rest are counted.
const LISTED_PATHS: usize = 5;

impl App {
    pub(super) async fn get(&self, args: GetArgs) -> Result<()> {
        let clouds = self.reference_clouds(&args.access)?;
        let run = self.run_recording(&args.run).await?;
        let catalog = self.catalog().await?;
        let v = self.resolve(catalog.as_ref(), &args.artifact).await?;
        let manifest = catalog.manifest(&v).await?;
        let blobs = catalog.blobs(&v.collection, &v.record);
        let name = format!("{}:v{}", v.collection.name, v.record.version);
        let label = format!("{}:v{}", v.collection, v.record.version);
        let selected = select(&label, &manifest, &args.paths, args.path_prefix.as_deref())?;
        let root = args.root.unwrap_or_else(|| PathBuf::from("artifacts").join(&name));

        let (survey, selected, manifest) = tokio::task::spawn_blocking({
            let root = root.clone();
            move || survey(&root, &manifest, &selected).map(|s| (s, selected, manifest))
        })
        .await??;
        survey.refuse_unless_clean(&root, &label, args.force)?;

        let todo = Manifest {
            storage_policy_config: manifest.storage_policy_config.clone(),
            contents: selected
                .iter()
                .filter(|p| !survey.same.contains(*p))
                .map(|p| (p.clone(), manifest.contents[p].clone()))
                .collect(),
        };
        get_preflight::preflight(&label, &todo, &clouds).await?;
        let undo = get_preflight::Undo::before(&root, &todo);
        let fetcher =
            Fetcher::new(self.cache()?, tokio::runtime::Handle::current()).with_clouds(clouds);
        fetcher.check_room(&todo, &root)?;
        let quiet = self.config.quiet;
        let dest = root.clone();
        let written = tokio::task::spawn_blocking(move || {
            let bar = progress::Bytes::new("downloading", todo.size(), quiet);
            let r = fetcher.download(&blobs, &label, &todo, &dest, &|n| bar.inc(n));
            bar.finish();
            r
        })
        .await
        .map_err(anyhow::Error::from)
        .and_then(|r| Ok(r?));
        let written = undo.unless_ok(written)?;
        if let Some((run, registry)) = &run {
            let op =
                RunOp::Used { collection: v.collection.to_string(), version: v.record.version };
            super::run::note_run(registry, run, args.run.job_type.as_deref(), op).await?;
        }
        let entries: Vec<&Entry> = selected.iter().map(|p| &manifest.contents[p]).collect();
        if args.json {
            let label = format!("{}:v{}", v.collection, v.record.version);
            return print_json(&survey.result(&label, &root, &entries, written));
        }
        if !self.config.quiet {
            survey.report(&name, &root, &entries, written);
        }
        println!("{}", root.display());
        Ok(())
    }
}

/// The entries to download: those named by `paths` and those starting with `prefix`, or every
/// entry when neither is given. A path that names no entry is an error that says what it is.
fn select(
    label: &str,
    manifest: &Manifest,
    paths: &[String],
    prefix: Option<&str>,
) -> Result<BTreeSet<String>> {
    if paths.is_empty() && prefix.is_none() {
        return Ok(manifest.contents.keys().cloned().collect());
    }
    let mut out = BTreeSet::new();
    for path in paths {
        if manifest.contents.contains_key(path) {
            out.insert(path.clone());
            continue;
        }
        let folder = format!("{}/", path.trim_end_matches('/'));
        let inside = manifest.contents.keys().filter(|p| p.starts_with(&folder)).count();
        if inside > 0 {
            bail!(
                "{label} has no entry {path}: it is a folder of {}; use --path-prefix {folder}",
                count(inside, "entry")
            );
        }
        bail!("{label} has no entry {path}; `artfs show {label} --files` lists its entries");
    }
    if let Some(prefix) = prefix {
        let matching: Vec<&String> =
            manifest.contents.keys().filter(|p| p.starts_with(prefix)).collect();
        if matching.is_empty() {
            bail!(
                "no entry of {label} starts with {prefix}; `artfs show {label} --files` lists its entries"
            );
        }
        out.extend(matching.into_iter().cloned());
    }
    Ok(out)
}

/// What the target folder already holds, compared with the entries about to be written.
#[derive(Debug, Default, PartialEq)]
struct Survey {
    /// Files that are no entry of the version (entries not selected count as the version's).
    other: Vec<String>,
    /// Selected entries present with other content (size or digest).
    differing: Vec<String>,
    /// Selected entries present with exactly the manifest's content: not downloaded again.
    same: BTreeSet<String>,
    /// Bytes of the `same` files.
    same_bytes: u64,
    /// A folder where an entry goes, or a file where an entry needs a folder.
    in_the_way: Vec<String>,
}

impl Survey {
    /// Refuses, writing nothing, when the folder holds something in the way, or (without
    /// `force`) files that are not the version's or differ from it.
    fn refuse_unless_clean(&self, root: &Path, label: &str, force: bool) -> Result<()> {
        if !self.in_the_way.is_empty() {
            bail!(
                "{}: {} where {label} needs the other kind (file or folder); move {} away and run `artfs get` again",
                root.display(),
                listing(&self.in_the_way),
                if self.in_the_way.len() == 1 { "it" } else { "them" },
            );
        }
        if force || (self.other.is_empty() && self.differing.is_empty()) {
            return Ok(());
        }
        let mut what = Vec::new();
        if !self.other.is_empty() {
            what.push(format!("files that are not in {label}: {}", listing(&self.other)));
        }
        if !self.differing.is_empty() {
            what.push(format!("files that differ from it: {}", listing(&self.differing)));
        }
        bail!(
            "{} already holds {}; nothing was written. Pass --force to download into it anyway \
             (other files are kept, differing ones replaced), or choose another --root",
            root.display(),
            what.join(", and ")
        );
    }

    fn result(&self, label: &str, root: &Path, entries: &[&Entry], written: u64) -> Got {
        Got {
            name: label.to_owned(),
            root: root.to_owned(),
            files: entries.len(),
            bytes: written + self.same_bytes,
            already_there: self.same.len(),
            replaced: self.differing.clone(),
            kept: self.other.clone(),
        }
    }

    /// What `get` did, on stderr: the version, its size on disk, what was already there, what
    /// was replaced and what was kept.
    fn report(&self, name: &str, root: &Path, entries: &[&Entry], written: u64) {
        // What is on disk now: a reference of unknown size counts as the bytes it gave.
        let bytes = written + self.same_bytes;
        let mut line = format!(
            "{name} -> {} ({}, {}, {}",
            root.display(),
            count(entries.len(), "file"),
            human_bytes(bytes),
            checked(entries)
        );
        if !self.same.is_empty() {
            line += &format!("; {} already there", self.same.len());
        }
        eprintln!("{line})");
        if !self.differing.is_empty() {
            eprintln!(
                "replaced {} that differed: {}",
                count(self.differing.len(), "file"),
                listing(&self.differing)
            );
        }
        if !self.other.is_empty() {
            eprintln!(
                "kept {} not in {name}: {}",
                count(self.other.len(), "file"),
                listing(&self.other)
            );
        }
    }
}

fn survey(root: &Path, manifest: &Manifest, selected: &BTreeSet<String>) -> Result<Survey> {
    let mut s = Survey::default();
    // The folder itself may be a symlink to one (walkdir follows it too).
    match std::fs::metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(s),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", root.display())),
        Ok(m) if !m.is_dir() => bail!("{} exists and is not a folder", root.display()),
        Ok(_) => {}
    }
    let dirs_needed: BTreeSet<&str> =
        selected.iter().flat_map(|p| p.match_indices('/').map(move |(i, _)| &p[..i])).collect();
    for found in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let found = found.with_context(|| format!("cannot read {}", root.display()))?;
        let Ok(rel) = found.path().strip_prefix(root) else { continue };
        let rel = rel.to_string_lossy().into_owned();
        let is_dir = found.file_type().is_dir();
        if is_dir {
            if selected.contains(&rel) {
                s.in_the_way.push(rel);
            }
            continue;
        }
        if dirs_needed.contains(rel.as_str()) {
            s.in_the_way.push(rel);
        } else if selected.contains(&rel) {
            match matches_entry(found.path(), &manifest.contents[&rel]) {
                Some(true) => {
                    s.same_bytes += found.metadata().map_or(0, |m| m.len());
                    s.same.insert(rel);
                }
                Some(false) => s.differing.push(rel),
                // Cannot be compared (a reference): downloaded again, which is no loss.
                None => {}
            }
        } else if !manifest.contents.contains_key(&rel) {
            s.other.push(rel);
        }
    }
    Ok(s)
}

/// Whether the file at `path` has the entry's content: `None` when that cannot be told (a
/// reference of unknown or equal size: its digest is an etag, not a hash of the bytes).
fn matches_entry(path: &Path, entry: &Entry) -> Option<bool> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() {
        return Some(false);
    }
    if entry.size.is_some_and(|n| n != meta.len()) {
        return Some(false);
    }
    match entry.content_check() {
        ContentCheck::None => None,
        check => {
            let alg = check.alg()?;
            let (digest, _) = hash_file(path, alg, |_| {}).ok()?;
            Some(digest == entry.digest)
        }
    }
}

/// How the selected entries were checked: `verified`, or how many could not be.
fn checked(entries: &[&Entry]) -> String {
    let unchecked = entries.iter().filter(|e| e.is_reference() && !refs::is_pinned(e)).count();
    match unchecked {
        0 => "verified".to_owned(),
        n if n == entries.len() => {
            format!(
                "not verified: {} logged without checksum, read as it is now",
                count(n, "reference")
            )
        }
        n => format!(
            "{} verified, {} logged without checksum not verified (read as it is now)",
            entries.len() - n,
            count(n, "reference")
        ),
    }
}

/// `a, b, c and 4 more`.
fn listing(paths: &[String]) -> String {
    let shown = paths.iter().take(LISTED_PATHS).cloned().collect::<Vec<_>>().join(", ");
    match paths.len().saturating_sub(LISTED_PATHS) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::md5_base64;

    fn manifest(files: &[(&str, &[u8])]) -> Manifest {
        let mut m = Manifest::default();
        for (p, b) in files {
            m.contents.insert(p.to_string(), Entry::stored(md5_base64(b), b.len() as u64));
        }
        m
    }

    fn set(paths: &[&str]) -> BTreeSet<String> {
        paths.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn select_names_entries_prefixes_and_refuses_what_is_not_there() {
        let m = manifest(&[
            ("a.txt", b"a"),
            ("train/x", b"x"),
            ("train/y", b"y"),
            ("training.csv", b"t"),
        ]);
        assert_eq!(select("v", &m, &[], None).unwrap().len(), 4);
        assert_eq!(select("v", &m, &["a.txt".into()], None).unwrap(), set(&["a.txt"]));
        assert_eq!(select("v", &m, &[], Some("train/")).unwrap(), set(&["train/x", "train/y"]));
        // The SDK's path_prefix is a string prefix.
        assert_eq!(select("v", &m, &[], Some("train")).unwrap().len(), 3);
        let both = select("v", &m, &["a.txt".into()], Some("train/")).unwrap();
        assert_eq!(both, set(&["a.txt", "train/x", "train/y"]));
        let err = select("v", &m, &["train".into()], None).unwrap_err().to_string();
        assert!(
            err.contains("folder of 2 entries") && err.contains("--path-prefix train/"),
            "{err}"
        );
        let err = select("v", &m, &["nope.txt".into()], None).unwrap_err().to_string();
        assert!(err.contains("v has no entry nope.txt"), "{err}");
        let err = select("v", &m, &[], Some("val/")).unwrap_err().to_string();
        assert!(err.contains("no entry of v starts with val/"), "{err}");
    }

    #[test]
    fn survey_tells_other_differing_same_and_in_the_way() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("out");
        let m = manifest(&[("a", b"a"), ("b", b"b"), ("c", b"c"), ("d/e", b"e"), ("f", b"f")]);
        let all = m.contents.keys().cloned().collect();
        assert_eq!(survey(&root, &m, &all).unwrap(), Survey::default(), "missing folder");
        std::fs::create_dir_all(root.join("c")).unwrap();
        std::fs::write(root.join("a"), b"a").unwrap();
        std::fs::write(root.join("b"), b"B").unwrap();
        std::fs::write(root.join("d"), b"file where a folder goes").unwrap();
        std::fs::write(root.join("mine.txt"), b"").unwrap();
        let s = survey(&root, &m, &all).unwrap();
        assert_eq!(s.other, ["mine.txt"]);
        assert_eq!(s.differing, ["b"]);
        assert_eq!(s.same, set(&["a"]));
        assert_eq!(s.in_the_way, ["c", "d"]);
        // An entry of the version that is not selected is not "other".
        let s = survey(&root, &m, &set(&["f"])).unwrap();
        assert_eq!(s.other, ["d", "mine.txt"]);
        assert!(s.differing.is_empty() && s.in_the_way.is_empty() && s.same.is_empty());
    }
}
