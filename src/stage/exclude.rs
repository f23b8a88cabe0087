//! What `artfs log` leaves out of a folder: `--exclude GLOB` and the folder's `.artfsignore`,
//! both in gitignore syntax (the `ignore` crate reads them as git does). Nothing is left out
//! unless asked: no default list silently drops files.

use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::{StagedFile, split_path_arg};

/// The ignore file read from the top of every logged folder.
pub const IGNORE_FILE: &str = ".artfsignore";

#[derive(Debug, thiserror::Error)]
pub enum ExcludeError {
    #[error("invalid --exclude {glob:?}: {source}")]
    Glob {
        glob: String,
        #[source]
        source: ignore::Error,
    },
    #[error("cannot use {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: ignore::Error,
    },
}

/// `files` (what one PATH argument added) without those the rules exclude. The rules are
/// relative to the folder the argument names (to a file's own folder for a file), and a
/// folder's `.artfsignore` is itself never logged.
pub fn apply(
    arg: &str,
    files: Vec<StagedFile>,
    globs: &[String],
) -> Result<Vec<StagedFile>, ExcludeError> {
    let path = Path::new(split_path_arg(arg).0);
    let (root, ignore_file) = if path.is_dir() {
        (path.to_owned(), Some(path.join(IGNORE_FILE)))
    } else {
        (path.parent().unwrap_or(Path::new(".")).to_owned(), None)
    };
    let ignore_file = ignore_file.filter(|f| f.is_file());
    if globs.is_empty() && ignore_file.is_none() {
        return Ok(files);
    }
    let rules = rules(&root, globs, ignore_file.as_deref())?;
    let ignore_file = ignore_file.as_deref();
    Ok(files
        .into_iter()
        .filter(|f| Some(f.source.as_path()) != ignore_file)
        .filter(|f| {
            let rel = f.source.strip_prefix(&root).unwrap_or(&f.source);
            !rules.matched_path_or_any_parents(rel, false).is_ignore()
        })
        .collect())
}

fn rules(root: &Path, globs: &[String], file: Option<&Path>) -> Result<Gitignore, ExcludeError> {
    let mut b = GitignoreBuilder::new(root);
    if let Some(file) = file
        && let Some(source) = b.add(file)
    {
        return Err(ExcludeError::File { path: file.to_owned(), source });
    }
    for glob in globs {
        b.add_line(None, glob)
            .map_err(|source| ExcludeError::Glob { glob: glob.clone(), source })?;
    }
    b.build().map_err(|source| ExcludeError::Glob { glob: globs.join(" "), source })
}
