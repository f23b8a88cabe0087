//! `file://` references: entries hashed like the SDK's, reads pinned by size and MD5 and allowed
//! only below the directories the reader named (`RefAccess`), checked on the file actually opened.

use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::manifest::{DigestAlg, EntryHasher, hash_file};

use super::*;

/// The local path of a `file://` URI: its path, percent-decoded (`url2pathname`).
pub(super) fn file_path(uri: &str) -> Result<PathBuf, RefError> {
    let parts = UriParts::split(uri);
    if !matches!(parts.netloc, "" | "localhost") {
        return Err(RefError::InvalidUri {
            uri: uri.to_owned(),
            reason: format!("file:// URIs must name a local path, not host {:?}", parts.netloc),
        });
    }
    let decoded: Vec<u8> = percent_decode(parts.path.as_bytes());
    use std::os::unix::ffi::OsStringExt;
    Ok(PathBuf::from(std::ffi::OsString::from_vec(decoded)))
}

pub(super) fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (input[i], input.get(i + 1).copied(), input.get(i + 2).copied()) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// `pathlib.Path.as_uri()` of an absolute path: `file://` + the path with everything but
/// unreserved characters and `/` percent-encoded.
pub(super) fn file_uri(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::from("file://");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The digest the SDK gives a `file://` entry logged without checksum: the base64 MD5 of the
/// file's resolved `file://` URI.
pub(super) fn uri_digest(uri: &str, physical: &Path) -> Result<String, RefError> {
    let resolved = std::fs::canonicalize(physical).map_err(|source| RefError::Io {
        uri: uri.to_owned(),
        path: physical.to_owned(),
        source,
    })?;
    Ok(md5_base64(file_uri(&resolved).as_bytes()))
}

pub(super) fn file_entry(
    uri: &str,
    reference: String,
    physical: &Path,
    checksum: bool,
) -> Result<Entry, RefError> {
    let io = |source| RefError::Io { uri: uri.to_owned(), path: physical.to_owned(), source };
    let (digest, size) = match checksum {
        true => hash_file(physical, DigestAlg::Md5, |_| {}).map_err(io)?,
        false => (uri_digest(uri, physical)?, std::fs::metadata(physical).map_err(io)?.len()),
    };
    Ok(Entry { digest, reference: Some(reference), size: Some(size), ..Entry::default() })
}

/// Blocking: walks directories like `os.walk` (symlinked files are followed, symlinked
/// directories are not entered).
pub(super) fn expand_file(
    uri: &str,
    name: Option<&str>,
    checksum: bool,
    max_objects: usize,
) -> Result<Vec<(String, Entry)>, RefError> {
    let local = file_path(uri)?;
    let io =
        |path: &Path, source| RefError::Io { uri: uri.to_owned(), path: path.to_owned(), source };
    let meta = match std::fs::metadata(&local) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(RefError::NotFound {
                uri: uri.to_owned(),
                what: format!("{} does not exist", local.display()),
                source: Some(Box::new(e)),
            });
        }
        Err(e) => return Err(io(&local, e)),
    };
    if meta.is_file() {
        let n = match name {
            Some(n) => n.to_owned(),
            None => local.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
        };
        return Ok(vec![(n, file_entry(uri, uri.to_owned(), &local, checksum)?)]);
    }
    if !meta.is_dir() {
        return Err(RefError::InvalidUri {
            uri: uri.to_owned(),
            reason: format!("{} is neither a file nor a directory", local.display()),
        });
    }
    let mut files = Vec::new();
    let mut dirs = vec![(local.clone(), String::new())];
    while let Some((dir, rel_dir)) = dirs.pop() {
        for item in std::fs::read_dir(&dir).map_err(|e| io(&dir, e))? {
            let item = item.map_err(|e| io(&dir, e))?;
            let physical = item.path();
            let file_name = item.file_name().into_string().map_err(|raw| RefError::InvalidUri {
                uri: uri.to_owned(),
                reason: format!("file name {raw:?} in {} is not UTF-8", dir.display()),
            })?;
            let rel = match rel_dir.is_empty() {
                true => file_name,
                false => format!("{rel_dir}/{file_name}"),
            };
            let kind = item.file_type().map_err(|e| io(&physical, e))?;
            if kind.is_dir() {
                dirs.push((physical, rel));
                continue;
            }
            // Symlinks count as what they point to, but linked directories are not entered.
            let target = std::fs::metadata(&physical).map_err(|e| io(&physical, e))?;
            if target.is_dir() {
                continue;
            }
            if !target.is_file() {
                tracing::warn!(path = %physical.display(), "skipping special file in {uri}");
                continue;
            }
            files.push((rel, physical));
            if files.len() > max_objects {
                return Err(RefError::TooManyObjects { uri: uri.to_owned(), max: max_objects });
            }
        }
    }
    files.sort();
    let sep = if uri.ends_with('/') { "" } else { "/" };
    files
        .into_iter()
        .map(|(rel, physical)| {
            let n = match name {
                Some(n) => format!("{n}/{rel}"),
                None => rel.clone(),
            };
            Ok((n, file_entry(uri, format!("{uri}{sep}{rel}"), &physical, checksum)?))
        })
        .collect()
}

pub(super) struct FileRead {
    uri: String,
    path: PathBuf,
    file: tokio::fs::File,
    /// Bytes still to read for a range; `None` reads to the end.
    left: Option<u64>,
    /// Whole reads hash what they serve and check it at the end.
    hasher: Option<EntryHasher>,
    digest: String,
    done: bool,
}

impl FileRead {
    async fn next_item(&mut self) -> Option<Result<Bytes, RefError>> {
        if self.done {
            return None;
        }
        let want = match self.left {
            Some(0) => return self.finish().await,
            Some(l) => FILE_READ_CHUNK_BYTES.min(usize::try_from(l).unwrap_or(usize::MAX)),
            None => FILE_READ_CHUNK_BYTES,
        };
        let mut buf = vec![0u8; want];
        match self.file.read(&mut buf).await {
            Err(source) => {
                self.done = true;
                Some(Err(RefError::Io { uri: self.uri.clone(), path: self.path.clone(), source }))
            }
            Ok(0) if self.left.is_some_and(|l| l > 0) => {
                self.done = true;
                Some(Err(RefError::Changed {
                    uri: self.uri.clone(),
                    expected: "the logged size".into(),
                    found: "a shorter file (it shrank while being read)".into(),
                }))
            }
            Ok(0) => self.finish().await,
            Ok(n) => {
                buf.truncate(n);
                if let Some(h) = self.hasher.as_mut() {
                    h.update(&buf);
                }
                if let Some(l) = self.left.as_mut() {
                    *l -= n as u64;
                }
                Some(Ok(Bytes::from(buf)))
            }
        }
    }

    async fn finish(&mut self) -> Option<Result<Bytes, RefError>> {
        self.done = true;
        let found = self.hasher.take()?.finish();
        if found == self.digest {
            return None;
        }
        // Logged without checksum: the digest is the MD5 of the URI, the content is not pinned.
        let (uri, path) = (self.uri.clone(), self.path.clone());
        let unchecked = tokio::task::spawn_blocking(move || uri_digest(&uri, &path))
            .await
            .ok()
            .and_then(Result::ok);
        if unchecked.as_deref() == Some(self.digest.as_str()) {
            return None;
        }
        Some(Err(RefError::Changed {
            uri: self.uri.clone(),
            expected: format!("md5 {}", self.digest),
            found: format!("md5 {found}"),
        }))
    }
}

pub(super) async fn fetch_file(
    uri: &str,
    entry: &Entry,
    range: Option<Range<u64>>,
    access: &RefAccess,
) -> Result<ByteStream, RefError> {
    let path = file_path(uri)?;
    let io = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => RefError::NotFound {
            uri: uri.to_owned(),
            what: format!("{} was deleted since it was logged", path.display()),
            source: Some(Box::new(source)),
        },
        _ => RefError::Io { uri: uri.to_owned(), path: path.clone(), source },
    };
    let (owned_uri, owned_path, access) = (uri.to_owned(), path.clone(), access.clone());
    let opened = tokio::task::spawn_blocking(move || open_allowed(&owned_path, &access))
        .await
        .map_err(|e| io(std::io::Error::other(format!("file reference worker failed: {e}"))))?;
    let mut file = match opened {
        Ok(file) => tokio::fs::File::from_std(file),
        Err(FileOpen::Refused(reason)) => return Err(RefError::Refused { uri: owned_uri, reason }),
        Err(FileOpen::Io(e)) => return Err(io(e)),
    };
    let size = file.metadata().await.map_err(io)?.len();
    if let Some(expected) = entry.size
        && expected != size
    {
        return Err(RefError::Changed {
            uri: uri.to_owned(),
            expected: format!("{expected} bytes"),
            found: format!("{size} bytes"),
        });
    }
    let left = match &range {
        Some(r) => {
            file.seek(std::io::SeekFrom::Start(r.start)).await.map_err(io)?;
            Some(r.end.min(size).saturating_sub(r.start))
        }
        None => None,
    };
    let read = FileRead {
        uri: uri.to_owned(),
        path: path.clone(),
        file,
        left,
        hasher: range.is_none().then(|| EntryHasher::new(DigestAlg::Md5)),
        digest: entry.digest.clone(),
        done: false,
    };
    Ok(stream::unfold(read, |mut read| async move {
        let item = read.next_item().await?;
        Some((item, read))
    })
    .boxed())
}

pub(super) enum FileOpen {
    Refused(String),
    Io(std::io::Error),
}

/// Opens `path` for reading if it lies below a directory `access` allows. The check is made on
/// the path with every symlink resolved, and made again on the file actually opened (its real
/// path through `/proc/self/fd`, and its device and inode against the checked path), so
/// swapping a directory for a symlink between the check and the open reaches nothing else.
pub(super) fn open_allowed(path: &Path, access: &RefAccess) -> Result<std::fs::File, FileOpen> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let (canonical, shown) = allowed_path(path, access)?;
    let checked = std::fs::metadata(&canonical).map_err(FileOpen::Io)?;
    // O_NONBLOCK: opening a FIFO must not hang; it is refused below as not a regular file.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&canonical)
        .map_err(FileOpen::Io)?;
    let opened = file.metadata().map_err(FileOpen::Io)?;
    if (opened.dev(), opened.ino()) != (checked.dev(), checked.ino()) {
        return Err(file_refused(format!("{shown}, which changed while it was opened,")));
    }
    use std::os::fd::AsRawFd;
    if let Ok(real) = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        && !access.allows_file(&real)
    {
        return Err(file_refused(format!("{} (opened as {})", path.display(), real.display())));
    }
    if !opened.is_file() {
        return Err(FileOpen::Io(std::io::Error::other(format!(
            "{} is not a regular file",
            canonical.display()
        ))));
    }
    Ok(file)
}

pub(super) fn file_refused(shown: String) -> FileOpen {
    FileOpen::Refused(format!(
        "{shown} is not below a directory the reader allowed with --allow-file-refs DIR (none \
         are by default); pass --allow-file-refs with a directory that holds it to read it"
    ))
}

/// `path` with every symlink resolved, if that is below a directory `access` allows, and how
/// to name it in messages.
pub(super) fn allowed_path(path: &Path, access: &RefAccess) -> Result<(PathBuf, String), FileOpen> {
    let refused = file_refused;
    let canonical = match std::fs::canonicalize(path) {
        Ok(c) => c,
        // Say nothing about files outside the allowed directories, not even that they are gone.
        Err(_) if !access.allows_file(path) => return Err(refused(path.display().to_string())),
        Err(e) => return Err(FileOpen::Io(e)),
    };
    let shown = match canonical == path {
        true => path.display().to_string(),
        false => format!("{} (really {})", path.display(), canonical.display()),
    };
    if !access.allows_file(&canonical) {
        return Err(refused(shown));
    }
    Ok((canonical, shown))
}
