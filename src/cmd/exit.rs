//! The one decision from an error to the process's exit status, and the errors the commands
//! themselves raise (a wrong registry, a write to a read-only source, a usage mistake).
//!
//! Scripts tell "not there" from "not allowed" from "try again later" by the status alone, so the
//! decision walks the whole cause chain and takes the first error whose kind it knows; anything
//! it does not know is a plain failure (1).

use std::process::ExitCode;

use crate::config::{ConfigError, RegistryOrigin};
use crate::names::NameError;
use crate::registry::RegistryError;
use crate::source::SourceError;
use crate::stage::StageError;
use crate::store::StoreError;
use crate::store::cloud::CloudError;

/// What went wrong, as far as a script cares; each has its own exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Anything else (1).
    Failure,
    /// Flags or arguments that cannot work as given (2, as clap's own usage errors).
    Usage,
    /// A registry, artifact, version or alias that does not exist (3).
    NotFound,
    /// Credentials refused, a read-only source written to, a change the registry refuses (4).
    Refused,
    /// A registry or server that did not answer or failed in a way that may pass (5).
    Unavailable,
}

impl Kind {
    pub fn code(self) -> u8 {
        match self {
            Kind::Failure => 1,
            Kind::Usage => 2,
            Kind::NotFound => 3,
            Kind::Refused => 4,
            Kind::Unavailable => 5,
        }
    }

    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(self.code())
    }
}

/// Errors of the commands themselves.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(
        "{url} ({}) is read-only: artfs writes to a directory, s3:// or gs:// registry \
         (a W&B server takes writes through the wandb SDK)",
        .origin.describe()
    )]
    ReadOnly { url: String, origin: RegistryOrigin },
    #[error("no artfs registry at {url} ({}); {hint}", .origin.describe())]
    NoRegistry { url: String, origin: RegistryOrigin, hint: &'static str },
    #[error("{0}")]
    Usage(String),
}

/// An error as `--json` prints it on stderr: one object on one line.
#[derive(Debug, serde::Serialize)]
struct JsonError {
    error: String,
    kind: Kind,
    exit_code: u8,
}

/// `{"error": "...", "kind": "not_found", "exit_code": 3}` (JSON escapes control characters).
pub fn json_error(e: &anyhow::Error) -> String {
    let kind = kind_of(e);
    let out = JsonError { error: super::error_report(e), kind, exit_code: kind.code() };
    serde_json::to_string(&out).unwrap_or(out.error)
}

/// The kind of the first error in `e`'s chain that has one.
pub fn kind_of(e: &anyhow::Error) -> Kind {
    e.chain().find_map(known_kind).unwrap_or(Kind::Failure)
}

fn known_kind(e: &(dyn std::error::Error + 'static)) -> Option<Kind> {
    if let Some(e) = e.downcast_ref::<CliError>() {
        return Some(match e {
            CliError::ReadOnly { .. } => Kind::Refused,
            CliError::NoRegistry { .. } => Kind::NotFound,
            CliError::Usage(_) => Kind::Usage,
        });
    }
    if e.is::<ConfigError>() || e.is::<NameError>() {
        return Some(Kind::Usage);
    }
    if let Some(StageError::Exclude(_)) = e.downcast_ref::<StageError>() {
        return Some(Kind::Usage);
    }
    if let Some(e) = e.downcast_ref::<SourceError>() {
        return source_kind(e);
    }
    if let Some(e) = e.downcast_ref::<RegistryError>() {
        return registry_kind(e);
    }
    e.downcast_ref::<StoreError>().map(store_kind)
}

// `#[error(transparent)]` wrappers hand `source()` through to their inner error's own source,
// so the inner error never appears in the chain: it is looked at here.
fn source_kind(e: &SourceError) -> Option<Kind> {
    match e {
        SourceError::NotFound(_) => Some(Kind::NotFound),
        SourceError::Forbidden(_) => Some(Kind::Refused),
        SourceError::Unavailable(_) => Some(Kind::Unavailable),
        SourceError::Invalid(_) => Some(Kind::Usage),
        SourceError::Corrupt(c) | SourceError::Backend(c) => known_kind(c.as_ref()),
    }
}

/// `None`: the causes below decide.
fn registry_kind(e: &RegistryError) -> Option<Kind> {
    match e {
        RegistryError::UnknownArtifact { .. }
        | RegistryError::UnknownVersion { .. }
        | RegistryError::UnknownAlias { .. } => Some(Kind::NotFound),
        RegistryError::Name(_) | RegistryError::Invalid { .. } => Some(Kind::Usage),
        RegistryError::TypeMismatch { .. }
        | RegistryError::HasAliases { .. }
        | RegistryError::Refused { .. }
        | RegistryError::Unsafe(_) => Some(Kind::Refused),
        // Busy: another writer or a gc holds the collection; trying again later works.
        RegistryError::Contention { .. }
        | RegistryError::GcRunning { .. }
        | RegistryError::LeaseLapsedDuringGc { .. }
        | RegistryError::WritersLogging { .. }
        | RegistryError::GroupFinishing { .. } => Some(Kind::Unavailable),
        RegistryError::Store(e) => Some(store_kind(e)),
        RegistryError::Corrupt { .. }
        | RegistryError::Manifest { .. }
        | RegistryError::Disappeared { .. }
        | RegistryError::NoRandomness(_) => None,
    }
}

fn store_kind(e: &StoreError) -> Kind {
    use object_store::Error as O;
    match e {
        StoreError::NotFound { .. } => Kind::NotFound,
        StoreError::Backend { source, .. } => match source {
            O::NotFound { .. } => Kind::NotFound,
            O::PermissionDenied { .. } | O::Unauthenticated { .. } => Kind::Refused,
            _ => Kind::Unavailable,
        },
        StoreError::Cloud(e) => cloud_kind(e),
        StoreError::Open { .. } => Kind::Unavailable,
        StoreError::LocalRead { .. }
        | StoreError::ChangedDuringUpload { .. }
        | StoreError::Cancelled { .. }
        | StoreError::LocalWrite { .. }
        | StoreError::DigestMismatch { .. }
        | StoreError::Body { .. } => Kind::Failure,
    }
}

fn cloud_kind(e: &CloudError) -> Kind {
    match e {
        CloudError::UnsupportedScheme { .. }
        | CloudError::MissingBucket { .. }
        | CloudError::Config { .. }
        | CloudError::BadUrl { .. } => Kind::Usage,
        CloudError::AwsCredentials { .. }
        | CloudError::Refused { .. }
        | CloudError::GcsToken { .. } => Kind::Refused,
        CloudError::Build { .. } | CloudError::Unreachable { .. } | CloudError::Http { .. } => {
            Kind::Unavailable
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_own_status_and_the_first_known_cause_decides() {
        let codes: Vec<u8> =
            [Kind::Failure, Kind::Usage, Kind::NotFound, Kind::Refused, Kind::Unavailable]
                .map(Kind::code)
                .to_vec();
        assert_eq!(codes, [1, 2, 3, 4, 5]);
        let missing =
            RegistryError::UnknownVersion { name: "e/p/n".into(), version: 3, available: vec![] };
        let e = anyhow::Error::new(missing).context("cannot get e/p/n:v3");
        assert_eq!(kind_of(&e), Kind::NotFound);
        let busy = StoreError::Open { url: "s3://b".into(), reason: "refused".into() };
        assert_eq!(kind_of(&anyhow::Error::new(RegistryError::Store(busy))), Kind::Unavailable);
        assert_eq!(kind_of(&anyhow::anyhow!("something")), Kind::Failure);
        let ro = CliError::ReadOnly { url: "http://h".into(), origin: RegistryOrigin::Flag };
        assert_eq!(kind_of(&anyhow::Error::new(ro)), Kind::Refused);
    }
}
