//! What kind of failure an error is, for callers that act on it rather than print it: the Python
//! package raises one exception class per kind, and the CLI names the kind in
//! `ARTFS_ERROR_FORMAT=json` output. The outermost error in the chain that knows its kind decides.

use std::error::Error;

use crate::cache::CacheError;
use crate::config::ConfigError;
use crate::fetch::ranged::RangedError;
use crate::fs::FsError;
use crate::names::NameError;
use crate::refs::RefError;
use crate::registry::RegistryError;
use crate::source::SourceError;
use crate::stage::StageError;
use crate::store::StoreError;
use crate::store::cloud::CloudError;

/// The kinds a caller can act on; `Other` is everything that is none of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A name (artifact, version, alias, entry) that does not exist.
    NotFound,
    /// Credentials or the reader's own policy refused the request.
    Forbidden,
    /// The request cannot be taken as it is (a bad name, flag or path).
    Invalid,
    /// Stored bytes are not what the manifest promises (a digest or size mismatch).
    Corrupt,
    /// The registry or a blob did not answer; retrying may help.
    Unavailable,
    Other,
}

impl ErrorKind {
    /// The kind of `e`, looking through its causes.
    pub fn of(e: &(dyn Error + 'static)) -> ErrorKind {
        let mut next = Some(e);
        while let Some(e) = next {
            if let Some(kind) = own_kind(e) {
                return kind;
            }
            next = e.source();
        }
        ErrorKind::Other
    }

    /// The snake_case name (`not_found`), as the JSON output and the Python package spell it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Other => "other",
        }
    }
}

/// The kind `e` itself says, if it says one; `None` leaves it to its cause.
pub fn own_kind(e: &(dyn Error + 'static)) -> Option<ErrorKind> {
    use ErrorKind::*;
    if let Some(e) = e.downcast_ref::<SourceError>() {
        return Some(match e {
            SourceError::NotFound(_) => NotFound,
            SourceError::Corrupt(_) => Corrupt,
            SourceError::Unavailable(_) => Unavailable,
            SourceError::Forbidden(_) => Forbidden,
            SourceError::Invalid(_) => Invalid,
            // `#[error(transparent)]` wrappers hand `source()` through to their inner error's
            // own source, so the inner error never appears in the chain: it is looked at here.
            SourceError::Backend(inner) => own_kind(inner.as_ref()).unwrap_or(Other),
        });
    }
    if let Some(e) = e.downcast_ref::<FsError>() {
        return match e {
            FsError::NotFound => Some(NotFound),
            FsError::NotADirectory | FsError::IsADirectory | FsError::NotASymlink => Some(Invalid),
            FsError::ReadOnly | FsError::BadHandle(_) | FsError::NoXattr => Some(Invalid),
            FsError::Verification { .. } | FsError::Manifest { .. } | FsError::Tree { .. } => {
                Some(Corrupt)
            }
            FsError::Timeout { .. } | FsError::Unresponsive { .. } | FsError::ShuttingDown => {
                Some(Unavailable)
            }
            FsError::Source { .. } | FsError::Fetch(_) | FsError::CacheRead { .. } => None,
        };
    }
    if let Some(e) = e.downcast_ref::<CacheError>() {
        return match e {
            CacheError::DigestMismatch { .. } | CacheError::SizeMismatch { .. } => Some(Corrupt),
            _ => None,
        };
    }
    if let Some(RangedError::ChunkMismatch { .. }) = e.downcast_ref::<RangedError>() {
        return Some(Corrupt);
    }
    if let Some(e) = e.downcast_ref::<RefError>() {
        return match e {
            RefError::Refused { .. } => Some(Forbidden),
            RefError::NotFound { .. } => Some(NotFound),
            RefError::Changed { .. } => Some(Corrupt),
            _ => None,
        };
    }
    if let Some(e) = e.downcast_ref::<RegistryError>() {
        return registry_kind(e);
    }
    if let Some(e) = e.downcast_ref::<StoreError>() {
        return Some(store_kind(e));
    }
    if let Some(StageError::Exclude(_)) = e.downcast_ref::<StageError>() {
        return Some(Invalid);
    }
    if e.is::<NameError>() || e.is::<ConfigError>() {
        return Some(Invalid);
    }
    None
}

/// `None`: the causes below decide.
fn registry_kind(e: &RegistryError) -> Option<ErrorKind> {
    use ErrorKind::*;
    match e {
        RegistryError::UnknownArtifact { .. }
        | RegistryError::UnknownVersion { .. }
        | RegistryError::UnknownAlias { .. } => Some(NotFound),
        RegistryError::Name(_) | RegistryError::Invalid { .. } => Some(Invalid),
        RegistryError::TypeMismatch { .. }
        | RegistryError::HasAliases { .. }
        | RegistryError::Refused { .. }
        | RegistryError::Unsafe(_) => Some(Forbidden),
        // Busy: another writer or a gc holds the collection; trying again later works.
        RegistryError::Contention { .. }
        | RegistryError::GcRunning { .. }
        | RegistryError::LeaseLapsedDuringGc { .. }
        | RegistryError::WritersLogging { .. }
        | RegistryError::GroupFinishing { .. } => Some(Unavailable),
        RegistryError::Corrupt { .. } | RegistryError::Manifest { .. } => Some(Corrupt),
        RegistryError::Store(e) => Some(store_kind(e)),
        RegistryError::Disappeared { .. } | RegistryError::NoRandomness(_) => None,
    }
}

fn store_kind(e: &StoreError) -> ErrorKind {
    use ErrorKind::*;
    use object_store::Error as O;
    match e {
        StoreError::NotFound { .. } | StoreError::NoBucket { .. } => NotFound,
        StoreError::Refused { service, .. } if service.is_denied() => Forbidden,
        StoreError::Refused { .. } | StoreError::Open { .. } => Unavailable,
        StoreError::Backend { source, .. } => match source {
            O::NotFound { .. } => NotFound,
            O::PermissionDenied { .. } | O::Unauthenticated { .. } => Forbidden,
            _ => Unavailable,
        },
        StoreError::Cloud(e) => cloud_kind(e),
        StoreError::DigestMismatch { .. } => Corrupt,
        StoreError::LocalRead { .. }
        | StoreError::ChangedDuringUpload { .. }
        | StoreError::Cancelled { .. }
        | StoreError::LocalWrite { .. }
        | StoreError::Body { .. } => Other,
    }
}

fn cloud_kind(e: &CloudError) -> ErrorKind {
    use ErrorKind::*;
    match e {
        CloudError::UnsupportedScheme { .. }
        | CloudError::MissingBucket { .. }
        | CloudError::Config { .. }
        | CloudError::BadUrl { .. } => Invalid,
        CloudError::AwsCredentials { .. }
        | CloudError::Refused { .. }
        | CloudError::GcsToken { .. } => Forbidden,
        CloudError::Build { .. } | CloudError::Unreachable { .. } | CloudError::Http { .. } => {
            Unavailable
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outermost_kind_decides_through_anyhow_context() {
        let e = anyhow::Error::new(FsError::NotFound).context("reading e/p/ds:v0/x");
        assert_eq!(ErrorKind::of(e.as_ref()), ErrorKind::NotFound);
        let plain = anyhow::anyhow!("something else");
        assert_eq!(ErrorKind::of(plain.as_ref()), ErrorKind::Other);
        assert_eq!(ErrorKind::Unavailable.name(), "unavailable");
    }
}
