//! The artifact registry: collections of versions with aliases, on a `Store`, without a server.
//!
//! What is stored where: `layout` (every key, pinned by a golden test).
//!
//! Order of a log: blobs, then the manifest, then the commit that publishes the version. A reader
//! never sees a version whose manifest or blobs are missing; a crashed writer leaves only
//! unreferenced objects, which `gc` sweeps after a grace period.

mod commit_log;
pub mod directory;
pub mod drafts;
mod gc;
pub mod keys;
pub mod layout;
pub mod lease;
pub mod lineage;
pub mod links;
pub mod log;
pub mod marker;
mod pairs;
pub mod parts;
mod projects;
mod read;
mod retention;
pub mod run_filter;
pub mod run_stream;
pub mod runs;
#[cfg(test)]
pub mod testing;
mod write;

use chrono::Utc;

use crate::manifest::{Entry, ManifestError};
use crate::names::NameError;
use crate::store::{Store, StoreError};
pub use gc::GcReport;
pub use lease::{LeaseGuard, LeaseTiming};
pub use log::{CollectionEdit, CollectionState, Commit, Op, Ttl, VersionRecord};
pub use read::ResolvedVersion;
pub use retention::validate_tag;
pub use write::{LogOutcome, LogRequest, UploadProgress};

use commit_log::MAX_COMMIT_ATTEMPTS;
/// Blob existence checks in flight at once.
const HEADS_IN_FLIGHT: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("artifact {name} not found in {scope}; {}", list_or_none("artifacts there", .available))]
    UnknownArtifact { name: String, scope: String, available: Vec<String> },
    #[error("{name} has no version v{version}; {}", list_or_none("versions", .available))]
    UnknownVersion { name: String, version: u32, available: Vec<String> },
    #[error("{name} has no alias {alias:?}; {}", list_or_none("aliases", .available))]
    UnknownAlias { name: String, alias: String, available: Vec<String> },
    #[error(
        "{name} is a collection of type {existing:?}; it cannot take a version of type {requested:?}"
    )]
    TypeMismatch { name: String, existing: String, requested: String },
    #[error(
        "{name}:v{version} has aliases {}; remove them first or pass --delete-aliases",
        .aliases.join(", ")
    )]
    HasAliases { name: String, version: u32, aliases: Vec<String> },
    #[error("registry {url}: {key} is corrupt: {reason}")]
    Corrupt { url: String, key: String, reason: String },
    #[error("manifest {key} of {name} is invalid: {source}")]
    Manifest {
        name: String,
        key: String,
        #[source]
        source: ManifestError,
    },
    #[error(
        "{name}: gave up after {MAX_COMMIT_ATTEMPTS} attempts to publish a commit; the collection is too busy, try again"
    )]
    Contention { name: String },
    #[error("artfs gc is running on {url} ({}); try again when it has finished", .markers.join(", "))]
    GcRunning { url: String, markers: Vec<String> },
    #[error(
        "this log's lease lapsed and artfs gc is running on {url} ({}); log again when it has finished",
        .markers.join(", ")
    )]
    LeaseLapsedDuringGc { url: String, markers: Vec<String> },
    #[error(
        "{} writer(s) are logging to {url}; run gc again when they have finished ({})",
        .writers.len(),
        .writers.join(", ")
    )]
    WritersLogging { url: String, writers: Vec<String> },
    #[error(
        "{name}: group {group:?} is being finished by another writer, which has not finished in {waited_secs}s; try again later"
    )]
    GroupFinishing { name: String, group: String, waited_secs: u64 },
    #[error("cannot read /dev/urandom: {0}")]
    NoRandomness(#[source] std::io::Error),
    #[error("{name}: {reason}")]
    Invalid { name: String, reason: String },
    #[error(
        "{name}: {} disappeared from the registry before the commit (removed by hand, or by a gc that took this log for dead); nothing was published, log again",
        .missing.join(", ")
    )]
    Disappeared { name: String, missing: Vec<String> },
    #[error("{name}: the commit would be invalid ({source}); nothing was published")]
    Refused {
        name: String,
        #[source]
        source: commit_log::FoldError,
    },
    #[error("gc deleted nothing: {0}")]
    Unsafe(String),
}

fn list_or_none(what: &str, items: &[String]) -> String {
    if items.is_empty() {
        format!("there are no {what}")
    } else {
        format!("{what}: {}", items.join(", "))
    }
}

#[derive(Debug, Clone)]
pub struct Registry {
    store: Store,
    timing: LeaseTiming,
    held: lease::HeldLeases,
}

/// The blob key of a stored entry (its MD5, or an XXH128 entry's `extra.md5`).
pub fn entry_blob_key(entry: &Entry) -> Option<String> {
    blob_key(entry.blob_md5()?)
}

pub fn blob_key(md5_digest_b64: &str) -> Option<String> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD.decode(md5_digest_b64).ok()?;
    Some(layout::blob_of_md5(&raw.try_into().ok()?))
}

fn writer_id() -> String {
    lease::Holder::me().writer
}

/// A name no other writer picks: time, process and a random part.
fn unique_id() -> String {
    format!(
        "{}-{}-{:08x}",
        Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
        std::process::id(),
        fastrand::u32(..)
    )
}

impl Registry {
    pub fn new(store: Store) -> Registry {
        Registry { store, timing: LeaseTiming::default(), held: Default::default() }
    }

    /// The same registry with other lease timings (tests; a server holding leases).
    pub fn with_lease_timing(mut self, timing: LeaseTiming) -> Registry {
        self.timing = timing;
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn corrupt(&self, key: &str, reason: impl ToString) -> RegistryError {
        RegistryError::Corrupt {
            url: self.store.url().to_owned(),
            key: key.to_owned(),
            reason: reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests;
