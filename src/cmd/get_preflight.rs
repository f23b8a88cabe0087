//! `artfs get`'s check before it writes anything (every reference the reader's policy refuses,
//! named in one error; room is `fetch::space`'s), and the undo of a `get` that fails half-way:
//! it leaves no partial folder behind.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::count;
use crate::manifest::Manifest;
use crate::refs;
use crate::store::cloud::Clouds;

/// Refuses, before anything is written, a download with references the reader did not allow
/// (all of them, in one error).
pub(super) async fn preflight(label: &str, todo: &Manifest, clouds: &Clouds) -> Result<()> {
    let mut refused = Vec::new();
    for (path, entry) in &todo.contents {
        // Anything else (a host that does not resolve, ...) is the download's to report.
        if let Err(e @ refs::RefError::Refused { .. }) = refs::check_allowed(clouds, entry).await {
            refused.push((path, e));
        }
    }
    let names: Vec<String> = refused
        .iter()
        .map(|(path, _)| {
            let uri = todo.contents[*path].reference.as_deref().unwrap_or_default();
            format!("entry {path} ({})", refs::redact(uri))
        })
        .collect();
    // The first refusal rides along as the cause: it says what to pass to allow them, and
    // makes the exit status the one of a refusal.
    if let Some((_, first)) = refused.into_iter().next() {
        let n = names.len();
        return Err(anyhow::Error::new(first).context(format!(
            "{} of {label} {} refused; nothing was written: {}",
            count(n, "reference"),
            if n == 1 { "is" } else { "are" },
            names.join(", ")
        )));
    }
    // Space (destination and cache) is checked by `fetch::space` before the first byte.
    Ok(())
}

/// What a `get` is about to create under its root, recorded before it writes: a failed `get`
/// removes the folder it made, or, in a folder that was there, only the files and folders it
/// added (never a file that was there before).
#[derive(Debug)]
pub(super) struct Undo {
    /// The outermost folder of the root's path that did not exist (`artifacts/` for the default
    /// `artifacts/NAME:vN` in a fresh directory).
    made: Option<PathBuf>,
    files: Vec<PathBuf>,
    dirs: BTreeSet<PathBuf>,
}

impl Undo {
    pub(super) fn before(root: &Path, todo: &Manifest) -> Undo {
        let absent = |p: &Path| p.symlink_metadata().is_err();
        let made = root
            .ancestors()
            .take_while(|a| !a.as_os_str().is_empty() && absent(a))
            .last()
            .map(Path::to_path_buf);
        let (mut files, mut dirs) = (Vec::new(), BTreeSet::new());
        for path in todo.contents.keys().filter(|_| made.is_none()) {
            let dest = root.join(path);
            if absent(&dest) {
                files.push(dest.clone());
            }
            let parents = dest.ancestors().skip(1).take_while(|d| *d != root);
            dirs.extend(parents.filter(|d| absent(d)).map(Path::to_path_buf));
        }
        Undo { made, files, dirs }
    }

    /// `result`, after removing what this `get` created if it is an error.
    pub(super) fn unless_ok<T, E>(self, result: Result<T, E>) -> Result<T, E> {
        if result.is_err() {
            self.undo();
        }
        result
    }

    fn undo(self) {
        // Best effort: the download's own error is the one to report.
        if let Some(made) = &self.made {
            let _ = std::fs::remove_dir_all(made);
            return;
        }
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
        // Deepest first; a folder something else wrote into meanwhile stays.
        let mut dirs: Vec<&PathBuf> = self.dirs.iter().collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}
