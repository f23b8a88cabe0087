//! The one decision from an error to the process's exit status, and the errors the commands
//! themselves raise (a wrong registry, a write to a read-only source, a usage mistake).
//!
//! Scripts tell "not there" from "not allowed" from "try again later" by the status alone. The
//! kind of a failure is decided once, in `kind.rs` (the Python package raises by the same
//! kinds); this file adds the commands' own errors and gives each kind its status.

use std::process::ExitCode;

use crate::config::RegistryOrigin;
use crate::kind::{ErrorKind, own_kind};

/// The exit status of each kind (documented in docs/CONFIGURATION.md): 2 as clap's own usage
/// errors, 1 for anything not known.
pub fn status(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Other => 1,
        ErrorKind::Invalid => 2,
        ErrorKind::NotFound => 3,
        ErrorKind::Forbidden => 4,
        ErrorKind::Unavailable => 5,
        ErrorKind::Corrupt => 6,
    }
}

pub fn exit_code(kind: ErrorKind) -> ExitCode {
    ExitCode::from(status(kind))
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

/// An error as `--json` (or `ARTFS_ERROR_FORMAT=json`) prints it on stderr: one object.
#[derive(Debug, serde::Serialize)]
struct JsonError {
    error: String,
    kind: &'static str,
    exit_code: u8,
}

/// `{"error": "...", "kind": "not_found", "exit_code": 3}` (JSON escapes control characters).
pub fn json_error(e: &anyhow::Error) -> String {
    let kind = kind_of(e);
    let out =
        JsonError { error: super::error_report(e), kind: kind.name(), exit_code: status(kind) };
    serde_json::to_string(&out).unwrap_or(out.error)
}

/// The kind of the first error in `e`'s chain that has one.
pub fn kind_of(e: &anyhow::Error) -> ErrorKind {
    e.chain()
        .find_map(|c| match c.downcast_ref::<CliError>() {
            Some(CliError::ReadOnly { .. }) => Some(ErrorKind::Forbidden),
            Some(CliError::NoRegistry { .. }) => Some(ErrorKind::NotFound),
            Some(CliError::Usage(_)) => Some(ErrorKind::Invalid),
            None => own_kind(c),
        })
        .unwrap_or(ErrorKind::Other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RegistryError;
    use crate::store::StoreError;

    #[test]
    fn each_kind_has_its_own_status_and_the_first_known_cause_decides() {
        let kinds = [
            ErrorKind::Other,
            ErrorKind::Invalid,
            ErrorKind::NotFound,
            ErrorKind::Forbidden,
            ErrorKind::Unavailable,
            ErrorKind::Corrupt,
        ];
        assert_eq!(kinds.map(status), [1, 2, 3, 4, 5, 6]);
        let missing =
            RegistryError::UnknownVersion { name: "e/p/n".into(), version: 3, available: vec![] };
        let e = anyhow::Error::new(missing).context("cannot get e/p/n:v3");
        assert_eq!(kind_of(&e), ErrorKind::NotFound);
        let busy = StoreError::Open { url: "s3://b".into(), reason: "refused".into() };
        let e = anyhow::Error::new(RegistryError::Store(busy));
        assert_eq!(kind_of(&e), ErrorKind::Unavailable);
        assert_eq!(kind_of(&anyhow::anyhow!("something")), ErrorKind::Other);
        let ro = CliError::ReadOnly { url: "http://h".into(), origin: RegistryOrigin::Flag };
        assert_eq!(kind_of(&anyhow::Error::new(ro)), ErrorKind::Forbidden);
    }
}
