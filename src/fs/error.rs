//! Errors of the mounted filesystem, and the one place that decides which errno each becomes.
//!
//! The mapping is an exhaustive `match` without a catch-all, so a new variant cannot reach the
//! kernel without someone choosing its errno. What each errno means to a user is written down in
//! the README (Semantics, The mount).

use std::io;
use std::time::Duration;

use crate::fetch::FetchError;
use crate::fs::tree::TreeError;
use crate::manifest::ManifestError;
use crate::refs::RefError;
use crate::source::SourceError;

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("no such file or directory")]
    NotFound,
    #[error("not a directory")]
    NotADirectory,
    #[error("is a directory")]
    IsADirectory,
    #[error("not a symbolic link")]
    NotASymlink,
    #[error("read-only file system: artfs mounts never change")]
    ReadOnly,
    #[error("unknown file handle {0}")]
    BadHandle(u64),
    #[error("no such extended attribute")]
    NoXattr,
    #[error("{what}: {source}")]
    Source {
        what: String,
        #[source]
        source: SourceError,
    },
    #[error("{what}: the registry did not answer within {after:?}")]
    Timeout { what: String, after: Duration },
    #[error(
        "{what}: the registry did not answer a request {ago:.0?} ago; not waiting on it again yet"
    )]
    Unresponsive { what: String, ago: Duration },
    #[error("the mount is shutting down")]
    ShuttingDown,
    #[error("{artifact}: its manifest is invalid: {source}")]
    Manifest {
        artifact: String,
        #[source]
        source: ManifestError,
    },
    #[error("{artifact}: its manifest cannot be shown as a directory tree: {source}")]
    Tree {
        artifact: String,
        #[source]
        source: TreeError,
    },
    #[error(
        "{artifact}: entry {entry}: verification failed, expected {expected}, got {actual}; \
         nothing was cached"
    )]
    Verification { artifact: String, entry: String, expected: String, actual: String },
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{artifact}: entry {entry}: cannot read the cached copy: {source}")]
    CacheRead {
        artifact: String,
        entry: String,
        #[source]
        source: io::Error,
    },
}

impl FsError {
    /// The errno the kernel hands to the caller.
    pub fn errno(&self) -> i32 {
        match self {
            FsError::NotFound => libc::ENOENT,
            FsError::NotADirectory => libc::ENOTDIR,
            FsError::IsADirectory => libc::EISDIR,
            FsError::NotASymlink => libc::EINVAL,
            FsError::ReadOnly => libc::EROFS,
            FsError::BadHandle(_) => libc::EBADF,
            FsError::NoXattr => libc::ENODATA,
            // A reference the reader did not allow (a local file, a private address): the
            // reader's own policy refuses it, as a permission would; retrying cannot help.
            FsError::Fetch(FetchError::Reference { source: RefError::Refused { .. }, .. }) => {
                libc::EACCES
            }
            // Everything below is "the bytes cannot be produced right now": the registry or the
            // blob is unreachable, broken or not what the manifest promised. EIO is what
            // programs expect from a failing disk, and it never looks like a missing file.
            FsError::Source { .. }
            | FsError::Timeout { .. }
            | FsError::Unresponsive { .. }
            | FsError::ShuttingDown
            | FsError::Manifest { .. }
            | FsError::Tree { .. }
            | FsError::Verification { .. }
            | FsError::Fetch(_)
            | FsError::CacheRead { .. } => libc::EIO,
        }
    }

    /// Whether this is an expected answer (a missing name, a refused write) rather than a
    /// failure worth a log line: exactly the errors that are not `EIO`, nor `EACCES` (a refused
    /// reference, which the log names so the reader can decide to allow it).
    pub fn is_expected(&self) -> bool {
        !matches!(self.errno(), libc::EIO | libc::EACCES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errnos() {
        assert_eq!(FsError::NotFound.errno(), libc::ENOENT);
        assert_eq!(FsError::NotADirectory.errno(), libc::ENOTDIR);
        assert_eq!(FsError::ReadOnly.errno(), libc::EROFS);
        let timeout = FsError::Timeout { what: "x".into(), after: Duration::from_secs(1) };
        assert_eq!(timeout.errno(), libc::EIO);
        assert!(!timeout.is_expected());
        assert!(FsError::ReadOnly.is_expected());
        let refused = FsError::Fetch(FetchError::Reference {
            artifact: "a:v0".into(),
            path: "secret".into(),
            source: RefError::Refused { uri: "file:///etc/shadow".into(), reason: "no".into() },
        });
        assert_eq!(refused.errno(), libc::EACCES);
        assert!(!refused.is_expected(), "a refused reference gets a log line");
    }
}
