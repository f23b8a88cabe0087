//! Turns `artfs log` PATH arguments into manifest entries, as W&B's `add_file`/`add_dir` would.
//!
//! A file is stored under its base name, a directory's files under their paths relative to it;
//! `PATH=NAME` renames a file or puts a directory under the prefix `NAME`. Files are hashed in
//! parallel (one thread per core), streaming; files the stat cache knows unchanged since their
//! last log are not read at all (`stat_cache`).

pub mod exclude;
pub mod stat_cache;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use std::io::Read;

use crate::manifest::{DigestAlg, Entry, EntryHasher, Manifest, ManifestError, validate_path};
use crate::store::chunks::{CHUNK_BYTES, ChunkHasher};
use crate::store::{FileStamp, UploadChecker, UploadSource};
pub use stat_cache::StatCache;

/// Read buffer for hashing: large enough that syscalls do not dominate.
const HASH_BUF_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{path}: no such file or directory")]
    Missing { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is neither a file nor a directory")]
    NotRegular { path: PathBuf },
    #[error("entry {name:?} is given twice, by {first} and {second}, with different content")]
    Conflict { name: String, first: String, second: String },
    #[error(
        "{path:?}: the name is not valid UTF-8; artifact paths are text (as in W&B), rename the file"
    )]
    NotUtf8 { path: PathBuf },
    #[error("{arg}: {source}")]
    Name {
        arg: String,
        #[source]
        source: ManifestError,
    },
    #[error(transparent)]
    Exclude(#[from] exclude::ExcludeError),
}

/// One local file to add under a logical name.
#[derive(Debug, Clone)]
pub struct StagedFile {
    pub name: String,
    pub source: PathBuf,
    pub size: u64,
}

/// Splits `PATH=NAME`. A path that exists as given wins, so file names containing `=` still work.
pub fn split_path_arg(arg: &str) -> (&str, Option<&str>) {
    if Path::new(arg).exists() {
        return (arg, None);
    }
    match arg.rsplit_once('=') {
        Some((p, n)) if !p.is_empty() => (p, Some(n.trim_end_matches('/'))),
        _ => (arg, None),
    }
}

/// Whether a PATH argument is a reference URI (`scheme://…`) rather than a local path.
pub fn is_reference(arg: &str) -> bool {
    arg.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

/// Splits `URI=NAME`. An `=` that separates a query key from its value (`?versionId=abc`,
/// `&x=1`) is part of the URI, not a rename.
pub fn split_reference_arg(arg: &str) -> (&str, Option<&str>) {
    let Some(eq) = arg.rfind('=') else { return (arg, None) };
    let left = &arg[..eq];
    if let Some(seg) = left.rfind(['?', '&'])
        && !left[seg + 1..].contains('=')
    {
        return (arg, None);
    }
    (left, Some(&arg[eq + 1..]))
}

/// Lists the files one PATH argument adds.
pub fn collect(arg: &str) -> Result<Vec<StagedFile>, StageError> {
    let (path, name) = split_path_arg(arg);
    let path = PathBuf::from(path);
    let meta = std::fs::metadata(&path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => StageError::Missing { path: path.clone() },
        _ => StageError::Read { path: path.clone(), source },
    })?;
    let check = |n: String| -> Result<String, StageError> {
        validate_path(&n).map_err(|source| StageError::Name { arg: arg.to_owned(), source })?;
        Ok(n)
    };
    // A lossy conversion would give two different names one entry (both U+FFFD).
    let text = |p: &Path| {
        p.to_str().map(str::to_owned).ok_or_else(|| StageError::NotUtf8 { path: p.to_owned() })
    };
    if meta.is_file() {
        let name = match name {
            Some(n) => n.to_owned(),
            None => match path.file_name() {
                Some(n) => {
                    text(Path::new(n)).map_err(|_| StageError::NotUtf8 { path: path.clone() })?
                }
                None => String::new(),
            },
        };
        return Ok(vec![StagedFile { name: check(name)?, source: path, size: meta.len() }]);
    }
    if !meta.is_dir() {
        return Err(StageError::NotRegular { path });
    }
    let mut out = Vec::new();
    for item in walkdir::WalkDir::new(&path).follow_links(true).sort_by_file_name() {
        let item = item.map_err(|e| StageError::Read {
            path: e.path().map(Path::to_path_buf).unwrap_or_else(|| path.clone()),
            source: e.into(),
        })?;
        if !item.file_type().is_file() {
            continue;
        }
        let rel = item.path().strip_prefix(&path).unwrap_or(item.path());
        let rel = text(rel)
            .map_err(|_| StageError::NotUtf8 { path: item.path().to_owned() })?
            .replace(std::path::MAIN_SEPARATOR, "/");
        let logical = match name {
            Some(prefix) if !prefix.is_empty() => format!("{prefix}/{rel}"),
            _ => rel,
        };
        let size = item
            .metadata()
            .map_err(|e| StageError::Read { path: item.path().to_owned(), source: e.into() })?
            .len();
        out.push(StagedFile { name: check(logical)?, source: item.into_path(), size });
    }
    Ok(out)
}

/// Hashes one file in one pass: its W&B digest, the check the upload verifies its bytes against
/// and, for files of more than one chunk, the per-chunk checksums stored beside its blob. The
/// size recorded is that of the bytes read, not `st_size` (which `/proc` and `/sys` files get
/// wrong). The stamp is taken before reading, so a change during or after hashing is caught
/// before upload. A file the stat cache knows with its current stamp is not read; the returned
/// flag says so.
fn hash_one(
    path: &Path,
    known: Option<&StatCache>,
    progress: &(dyn Fn(u64) + Sync),
) -> std::io::Result<(String, UploadSource, bool)> {
    let started = std::time::SystemTime::now();
    if let Some(cache) = known {
        let stamp = FileStamp::of(&std::fs::metadata(path)?);
        if let Some(k) = cache.lookup(path, &stamp) {
            progress(k.check.size);
            let source = UploadSource {
                path: path.to_owned(),
                stamp,
                check: k.check,
                chunks: k.chunks.clone(),
            };
            let digest = k.digest.clone();
            cache.used(path, k);
            return Ok((digest, source, true));
        }
    }
    let mut file = std::fs::File::open(path)?;
    let stamp = FileStamp::of(&file.metadata()?);
    let mut hasher = EntryHasher::new(DigestAlg::Md5);
    let mut sums = (stamp.len > CHUNK_BYTES).then(|| ChunkHasher::new(CHUNK_BYTES));
    let mut check = UploadChecker::default();
    // At least 64 KiB: `st_size` may say 0 for a file that has content.
    let mut buf = vec![0u8; HASH_BUF_BYTES.min(stamp.len as usize + 1).max(64 << 10)];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        check.update(&buf[..n]);
        if let Some(s) = sums.as_mut() {
            s.update(&buf[..n]);
        }
        progress(n as u64);
    }
    let source = UploadSource {
        path: path.to_owned(),
        stamp,
        check: check.finish(),
        chunks: sums.map(ChunkHasher::finish),
    };
    let digest = hasher.finish();
    if let Some(cache) = known
        && let Ok(after) = std::fs::metadata(path)
    {
        let after = FileStamp::of(&after);
        cache.learn(path, &stamp, &after, started, &digest, source.check, source.chunks.as_ref());
    }
    Ok((digest, source, false))
}

/// Staged files as manifest entries, with the local file behind each stored entry.
#[derive(Debug)]
pub struct Staged {
    pub manifest: Manifest,
    pub sources: HashMap<String, UploadSource>,
    /// Files (and their bytes) read and hashed.
    pub hashed_files: u64,
    pub hashed_bytes: u64,
    /// Files the stat cache knew unchanged, not read.
    pub known_files: u64,
}

/// Hashes staged files (in parallel) into manifest entries, skipping those `known` (the stat
/// cache, if any) has seen unchanged. `progress` receives byte counts.
pub fn hash_all(
    files: Vec<StagedFile>,
    known: Option<&StatCache>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Staged, StageError> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).min(8);
    let next = std::sync::atomic::AtomicUsize::new(0);
    type Hashed = Vec<(usize, String, UploadSource, bool)>;
    let results: Vec<Result<Hashed, StageError>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(f) = files.get(i) else { return Ok(done) };
                        let (digest, source, hit) =
                            hash_one(&f.source, known, progress).map_err(|source| {
                                StageError::Read { path: f.source.clone(), source }
                            })?;
                        done.push((i, digest, source, hit));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let (mut hashed_files, mut hashed_bytes, mut known_files) = (0, 0, 0);
    let mut digests: Vec<Option<(String, UploadSource)>> = vec![None; files.len()];
    for r in results {
        for (i, d, source, hit) in r? {
            if hit {
                known_files += 1;
            } else {
                hashed_files += 1;
                hashed_bytes += source.check.size;
            }
            digests[i] = Some((d, source));
        }
    }
    if let Some(cache) = known {
        cache.save();
    }
    let mut contents: BTreeMap<String, Entry> = BTreeMap::new();
    let mut sources: HashMap<String, UploadSource> = HashMap::new();
    for (f, d) in files.into_iter().zip(digests) {
        let Some((digest, source)) = d else { continue };
        if let Some(prev) = contents.get(&f.name) {
            if prev.digest != digest {
                return Err(StageError::Conflict {
                    name: f.name.clone(),
                    first: sources[&f.name].path.display().to_string(),
                    second: f.source.display().to_string(),
                });
            }
            continue;
        }
        let entry = Entry::stored(digest, source.check.size);
        contents.insert(f.name.clone(), crate::store::chunks::bound(entry, source.chunks.as_ref()));
        sources.insert(f.name, source);
    }
    let manifest = Manifest { contents, ..Manifest::default() };
    Ok(Staged { manifest, sources, hashed_files, hashed_bytes, known_files })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_inputs() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wandb/inputs")
    }

    #[test]
    fn builds_the_local_files_case_like_the_sdk() {
        let root = fixture_inputs();
        let tmp = tempfile::tempdir().unwrap();
        let generated = tmp.path().join("new.txt");
        std::fs::write(&generated, "created via new_file\n").unwrap();
        let args = [
            root.join("hello.txt").display().to_string(),
            format!("{}=copies/hello-copy.txt", root.join("hello.txt").display()),
            root.join("empty.txt").display().to_string(),
            root.join("data").display().to_string(),
            format!("{}=prefixed", root.join("data").display()),
            format!("{}=generated/new.txt", generated.display()),
            root.join("unicode/données été.txt").display().to_string(),
        ];
        let mut files = Vec::new();
        for a in &args {
            files.extend(collect(a).unwrap());
        }
        let Staged { manifest: m, sources, .. } = hash_all(files, None, &|_| {}).unwrap();
        assert_eq!(m.contents.len(), 11);
        assert_eq!(sources.len(), 11);
        assert_eq!(m.digest(), "451c9ef954ee2635a988bdb256c29159");
        let sdk = std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/wandb/outputs/local_files.manifest.json"),
        )
        .unwrap();
        assert_eq!(m, Manifest::from_json(&sdk).unwrap());
    }

    #[test]
    fn reference_arguments() {
        assert!(is_reference("s3://b/k") && is_reference("file:///x") && !is_reference("a/b=c"));
        assert_eq!(split_reference_arg("s3://b/k"), ("s3://b/k", None));
        assert_eq!(split_reference_arg("s3://b/k=n/x"), ("s3://b/k", Some("n/x")));
        assert_eq!(split_reference_arg("s3://b/k?versionId=a"), ("s3://b/k?versionId=a", None));
        assert_eq!(
            split_reference_arg("s3://b/k?versionId=a=n"),
            ("s3://b/k?versionId=a", Some("n"))
        );
        assert_eq!(split_reference_arg("http://h/a?x=1&y=2"), ("http://h/a?x=1&y=2", None));
    }

    #[test]
    fn bad_arguments_are_named() {
        let err = collect("/no/such/path").unwrap_err().to_string();
        assert!(err.contains("/no/such/path"), "{err}");
        let hello = fixture_inputs().join("hello.txt");
        let err = collect(&format!("{}=../escape", hello.display())).unwrap_err().to_string();
        assert!(err.contains("..") && err.contains("escape"), "{err}");
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("hello.txt"), "other").unwrap();
        let mut files = collect(hello.to_str().unwrap()).unwrap();
        files.extend(collect(tmp.path().join("hello.txt").to_str().unwrap()).unwrap());
        let err = hash_all(files, None, &|_| {}).unwrap_err().to_string();
        assert!(err.contains("given twice"), "{err}");
    }
}
