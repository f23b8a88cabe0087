//! The seam between what reads artifacts (the mount, `get`, `ls`, `show`, the cache) and where
//! they live: a [`Catalog`] (entities, projects, collections, versions, aliases, manifests) and,
//! per version, a [`BlobSource`] (an entry's bytes, whole or by range, with chunk checksums
//! where the source keeps them).
//!
//! `fs/`, `fetch/` and the read commands see only these traits; `registry` implements them over
//! the artfs registry (its commit log stays private to it). Everything a caller gets back is
//! plain data ([`VersionInfo`], [`CollectionView`]) that says nothing of the source.
//!
//! Both traits are object-safe (`Arc<dyn Catalog>`): their futures are boxed, which costs one
//! allocation per request, nothing next to a network round trip.

#[cfg(test)]
mod conformance;
pub mod registry;
pub mod wandb;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde_json::Value;

use crate::manifest::{Entry, Manifest, ManifestError};
use crate::names::{CollectionPath, LATEST, Selector};
use crate::registry::RegistryError;
use crate::registry::runs::RunPath;
use crate::store::StoreError;

/// What every catalog and blob request returns.
pub type SourceFuture<'a, T> = BoxFuture<'a, Result<T, SourceError>>;

/// An entry's bytes as they arrive.
pub type BlobStream = BoxStream<'static, Result<Bytes, SourceError>>;

/// What went wrong, whichever source it was (as `object_store::Error` is for stores): callers
/// decide on the kind — a missing name, a broken object, a source that does not answer — and
/// show the cause, which keeps each source's own words.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A name (entity, project, collection, version, alias) that the source does not have.
    #[error(transparent)]
    NotFound(Cause),
    /// What the source holds under one name cannot be read (a broken log, a manifest that does
    /// not parse); listings leave that name out rather than failing as a whole.
    #[error(transparent)]
    Corrupt(Cause),
    /// The source did not answer, or failed in a way that may pass (network, 5xx, storage).
    #[error(transparent)]
    Unavailable(Cause),
    /// The source refused the caller (credentials).
    #[error(transparent)]
    Forbidden(Cause),
    /// A request or a stored pointer the source cannot take as it is (a bad URL or name).
    #[error(transparent)]
    Invalid(Cause),
    /// The source answered something that is none of the above (an unexpected answer).
    #[error(transparent)]
    Backend(Cause),
}

/// The source's own error under a [`SourceError`] kind.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// A manifest a source returned that is not a valid W&B manifest.
#[derive(Debug, thiserror::Error)]
#[error("manifest of {name} is invalid: {source}")]
pub struct InvalidManifest {
    pub name: String,
    #[source]
    pub source: ManifestError,
}

impl SourceError {
    /// Whether the error says a name (collection, version, alias, project) does not exist, as
    /// opposed to a source that failed: the same answer from every source.
    pub fn is_not_found(&self) -> bool {
        matches!(self, SourceError::NotFound(_))
    }

    pub fn is_corrupt(&self) -> bool {
        matches!(self, SourceError::Corrupt(_))
    }
}

impl From<RegistryError> for SourceError {
    fn from(e: RegistryError) -> SourceError {
        match e {
            RegistryError::UnknownArtifact { .. }
            | RegistryError::UnknownVersion { .. }
            | RegistryError::UnknownAlias { .. } => SourceError::NotFound(e.into()),
            RegistryError::Corrupt { .. } | RegistryError::Manifest { .. } => {
                SourceError::Corrupt(e.into())
            }
            RegistryError::Name(_) => SourceError::Invalid(e.into()),
            // Writes and gc: not what a reading source meets, but kinds all the same.
            RegistryError::Store(_)
            | RegistryError::Contention { .. }
            | RegistryError::GcRunning { .. }
            | RegistryError::LeaseLapsedDuringGc { .. }
            | RegistryError::WritersLogging { .. }
            | RegistryError::GroupFinishing { .. }
            | RegistryError::NoRandomness(_) => SourceError::Unavailable(e.into()),
            RegistryError::TypeMismatch { .. }
            | RegistryError::HasAliases { .. }
            | RegistryError::Invalid { .. }
            | RegistryError::Disappeared { .. }
            | RegistryError::Refused { .. }
            | RegistryError::Unsafe(_) => SourceError::Backend(e.into()),
        }
    }
}

impl From<StoreError> for SourceError {
    fn from(e: StoreError) -> SourceError {
        SourceError::Unavailable(e.into())
    }
}

impl From<InvalidManifest> for SourceError {
    fn from(e: InvalidManifest) -> SourceError {
        SourceError::Corrupt(e.into())
    }
}

/// One live version, as any source describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionInfo {
    pub version: u32,
    /// The artifact digest (W&B's algorithm).
    pub digest: String,
    /// Where the source finds this version's manifest, in its own terms (opaque to callers).
    pub locator: String,
    pub description: Option<String>,
    pub metadata: Value,
    pub size: u64,
    pub file_count: u64,
    pub created_at: DateTime<Utc>,
    /// For a link in a portfolio, the version it links (`entity/project/name:vN`), whose
    /// manifest `locator` names.
    pub link_of: Option<String>,
    pub tags: Vec<String>,
    /// The time-to-live in force (its own or the collection's default); `None`: it never expires.
    pub ttl_seconds: Option<u64>,
}

/// A collection's versions and aliases as of one read. Empty when the collection does not exist.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollectionView {
    pub artifact_type: Option<String>,
    pub versions: BTreeMap<u32, VersionInfo>,
    /// Alias → version; every alias names a version in `versions`.
    pub aliases: BTreeMap<String, u32>,
}

impl CollectionView {
    /// The aliases of `version`, `latest` first, the rest sorted.
    pub fn aliases_of(&self, version: u32) -> Vec<String> {
        let mut out: Vec<String> =
            self.aliases.iter().filter(|(_, v)| **v == version).map(|(a, _)| a.clone()).collect();
        out.sort_by_key(|a| (a != LATEST, a.clone()));
        out
    }

    pub fn latest(&self) -> Option<&VersionInfo> {
        self.aliases.get(LATEST).and_then(|v| self.versions.get(v))
    }

    pub fn exists(&self) -> bool {
        !self.versions.is_empty()
    }
}

/// Runs that logged a version and runs that used it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunsOf {
    pub logged_by: Vec<RunPath>,
    pub used_by: Vec<RunPath>,
}

/// A resolved version: everything needed to show, download or mount it.
#[derive(Debug, Clone)]
pub struct ResolvedVersion {
    pub collection: CollectionPath,
    pub artifact_type: String,
    pub record: VersionInfo,
    pub aliases: Vec<String>,
}

impl ResolvedVersion {
    /// `entity/project/name:vN`.
    pub fn label(&self) -> String {
        format!("{}:v{}", self.collection, self.record.version)
    }
}

/// Summary of one collection for `artfs ls`.
#[derive(Debug, Clone)]
pub struct CollectionSummary {
    pub collection: CollectionPath,
    pub artifact_type: String,
    pub versions: usize,
    pub latest: Option<VersionInfo>,
}

/// Where versions are found: names, listings, manifests. Read-only.
pub trait Catalog: Send + Sync + Debug {
    /// The source as a user names it (`--registry`), for messages.
    fn url(&self) -> &str;

    fn entities(&self) -> SourceFuture<'_, Vec<String>>;

    fn projects<'a>(&'a self, entity: &'a str) -> SourceFuture<'a, Vec<String>>;

    /// Names of the collections of a project (any type).
    fn collections<'a>(
        &'a self,
        entity: &'a str,
        project: &'a str,
    ) -> SourceFuture<'a, Vec<String>>;

    /// A collection's versions and aliases now (empty if it does not exist).
    fn collection<'a>(&'a self, c: &'a CollectionPath) -> SourceFuture<'a, CollectionView>;

    /// Like [`Catalog::collection`], but a collection that does not exist is an error that lists
    /// the ones that do.
    fn existing_collection<'a>(&'a self, c: &'a CollectionPath)
    -> SourceFuture<'a, CollectionView>;

    /// `name:alias` or `name:vN` of an existing collection; an error that says what exists when
    /// the name, alias or version does not.
    fn resolve<'a>(
        &'a self,
        c: &'a CollectionPath,
        selector: &'a Selector,
    ) -> SourceFuture<'a, ResolvedVersion>;

    /// The manifest's bytes (W&B JSON), as the mount parses them itself.
    fn manifest_bytes<'a>(
        &'a self,
        c: &'a CollectionPath,
        v: &'a VersionInfo,
    ) -> SourceFuture<'a, Bytes>;

    /// Where the stored entries of one version come from. No I/O.
    fn blobs(&self, c: &CollectionPath, v: &VersionInfo) -> Arc<dyn BlobSource>;

    /// The runs that logged and that used a version, where the source records lineage; `None`
    /// where it does not (the W&B source, which reads no runs).
    fn runs_of<'a>(&'a self, _v: &'a ResolvedVersion) -> SourceFuture<'a, Option<RunsOf>> {
        Box::pin(async { Ok(None) })
    }

    /// Whether `entity/project` exists, asked for by name: what a lookup falls back on when the
    /// projects listing failed or did not show it. By default the listing is the whole truth.
    fn project_exists<'a>(&'a self, entity: &'a str, project: &'a str) -> SourceFuture<'a, bool> {
        Box::pin(async move { Ok(self.projects(entity).await?.iter().any(|p| p == project)) })
    }
}

/// Conveniences built on any [`Catalog`]: written once here, never per source.
pub trait CatalogExt: Catalog {
    /// The parsed manifest of a resolved version.
    fn manifest<'a>(&'a self, v: &'a ResolvedVersion) -> SourceFuture<'a, Manifest> {
        Box::pin(async move {
            let bytes = self.manifest_bytes(&v.collection, &v.record).await?;
            Manifest::from_json(&bytes)
                .map_err(|source| InvalidManifest { name: v.label(), source }.into())
        })
    }

    /// One summary per collection of a project. A collection that cannot be read is left out
    /// with a warning; a source that fails still fails the listing.
    fn summaries<'a>(
        &'a self,
        entity: &'a str,
        project: &'a str,
    ) -> SourceFuture<'a, Vec<CollectionSummary>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for name in self.collections(entity, project).await? {
                let collection = match CollectionPath::new(entity, project, &name) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!("{}: skipping {entity}/{project}/{name}: {e}", self.url());
                        continue;
                    }
                };
                let view = match self.collection(&collection).await {
                    Ok(v) => v,
                    Err(e) if e.is_corrupt() => {
                        tracing::warn!("skipping {collection}, which cannot be read: {e}");
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                if view.artifact_type.is_none() {
                    // Deleted or renamed away: only its history is left under this name.
                    continue;
                }
                out.push(CollectionSummary {
                    artifact_type: view.artifact_type.clone().unwrap_or_default(),
                    versions: view.versions.len(),
                    latest: view.latest().cloned(),
                    collection,
                });
            }
            Ok(out)
        })
    }
}

impl<C: Catalog + ?Sized> CatalogExt for C {}

/// Where the stored (non-reference) entries of one version come from. Reference entries are
/// read from their own URI by `refs`, whatever the source.
pub trait BlobSource: Send + Sync + Debug {
    /// A name for the entry's stored bytes (a blob key, a file name), or `None` when this source
    /// cannot serve the entry at all (e.g. a digest that names no blob).
    fn locate(&self, path: &str, entry: &Entry) -> Option<String>;

    /// The whole entry.
    fn stream<'a>(&'a self, path: &'a str, entry: &'a Entry) -> SourceFuture<'a, BlobStream>;

    /// `range` of the entry.
    fn range<'a>(
        &'a self,
        path: &'a str,
        entry: &'a Entry,
        range: Range<u64>,
    ) -> SourceFuture<'a, Bytes>;

    /// `range` of the entry as it arrives, in pieces of any size, so a reader can hash and
    /// keep them without joining them first. By default one piece: the whole [`Self::range`].
    fn range_stream<'a>(
        &'a self,
        path: &'a str,
        entry: &'a Entry,
        range: Range<u64>,
    ) -> SourceFuture<'a, BlobStream> {
        Box::pin(async move {
            let bytes = self.range(path, entry, range).await?;
            Ok(futures::stream::once(async { Ok(bytes) }).boxed())
        })
    }

    /// Copies the whole entry to `out` on the calling thread when the source is a local
    /// directory (at most `limit` bytes, plus one to show an overlong file), returning the byte
    /// count; `None` when it is not, and the caller streams it.
    fn copy_local(
        &self,
        _path: &str,
        _entry: &Entry,
        _out: &mut dyn std::io::Write,
        _limit: u64,
    ) -> Option<Result<u64, SourceError>> {
        None
    }

    /// The entry's chunk checksums as the source stores them (a `store::chunks` sidecar's bytes),
    /// or `None` when it keeps none; the caller checks them against the manifest.
    fn chunk_sums<'a>(
        &'a self,
        _path: &'a str,
        _entry: &'a Entry,
    ) -> SourceFuture<'a, Option<Bytes>> {
        Box::pin(async { Ok(None) })
    }
}
