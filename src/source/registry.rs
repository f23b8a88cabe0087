//! The artfs registry behind the seam: listings and versions from its commit logs, manifests and
//! blobs from its store, chunk checksums from its sidecars.
//!
//! Collection logs are replayed incrementally: the last folded state of each collection read is
//! kept here, so a refresh (the mount's, every few seconds) reads only the commits after it.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::{
    BlobSource, BlobStream, Catalog, CollectionView, ResolvedVersion, RunsOf, SourceError,
    SourceFuture, VersionInfo,
};
use crate::manifest::Entry;
use crate::names::{CollectionPath, Selector};
use crate::registry::lineage::VersionKey;
use crate::registry::{self, CollectionState, Registry, VersionRecord, entry_blob_key};
use crate::store::{Store, chunks};

/// The artfs registry as a [`Catalog`].
#[derive(Debug, Clone)]
pub struct RegistrySource {
    registry: Registry,
    /// Last folded state per collection read, the base of the next incremental refresh.
    states: Arc<Mutex<HashMap<CollectionPath, CollectionState>>>,
}

impl RegistrySource {
    pub fn new(registry: Registry) -> RegistrySource {
        RegistrySource { registry, states: Arc::default() }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    async fn state(&self, c: &CollectionPath) -> Result<CollectionState, SourceError> {
        let old = self.states.lock().unwrap_or_else(PoisonError::into_inner).get(c).cloned();
        let state = self.registry.refresh(c, old.unwrap_or_default()).await?;
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        // A concurrent refresh may have got further; keep the newer one.
        if states.get(c).is_none_or(|s| s.seq <= state.seq) {
            states.insert(c.clone(), state.clone());
        }
        Ok(state)
    }
}

impl From<&VersionRecord> for VersionInfo {
    fn from(r: &VersionRecord) -> VersionInfo {
        VersionInfo {
            version: r.version,
            digest: r.digest.clone(),
            locator: r.manifest.clone(),
            description: r.description.clone(),
            metadata: r.metadata.clone(),
            size: r.size,
            file_count: r.file_count,
            created_at: r.created_at,
            link_of: r
                .source
                .as_ref()
                .map(|s| format!("{}/{}/{}:v{}", s.entity, s.project, s.name, s.version)),
            tags: r.tags.iter().cloned().collect(),
            // What the collection's default makes of it is set where that is known.
            ttl_seconds: r.ttl.in_force(None),
        }
    }
}

impl From<&CollectionState> for CollectionView {
    /// What readers see now: expired versions are gone (`registry::retention`).
    fn from(s: &CollectionState) -> CollectionView {
        // A deleted or renamed-away collection shows nothing under its name.
        let s = &if s.exists() {
            s.clone().live(chrono::Utc::now())
        } else {
            CollectionState::default()
        };
        CollectionView {
            artifact_type: s.artifact_type.clone(),
            versions: s
                .versions
                .iter()
                .map(|(v, r)| (*v, VersionInfo { ttl_seconds: s.ttl_seconds(*v), ..r.into() }))
                .collect(),
            // The fold keeps aliases of live versions only; filtered anyway, as promised.
            aliases: s
                .aliases
                .iter()
                .filter(|(_, v)| s.versions.contains_key(v))
                .map(|(a, v)| (a.clone(), *v))
                .collect(),
        }
    }
}

impl From<registry::ResolvedVersion> for ResolvedVersion {
    fn from(v: registry::ResolvedVersion) -> ResolvedVersion {
        ResolvedVersion {
            record: VersionInfo {
                ttl_seconds: v.record.ttl.in_force(v.default_ttl_seconds),
                ..(&v.record).into()
            },
            collection: v.collection,
            artifact_type: v.artifact_type,
            aliases: v.aliases,
        }
    }
}

impl Catalog for RegistrySource {
    fn url(&self) -> &str {
        self.registry.store().url()
    }

    fn runs_of<'a>(&'a self, v: &'a ResolvedVersion) -> SourceFuture<'a, Option<RunsOf>> {
        Box::pin(async move {
            let key = VersionKey { collection: v.collection.clone(), version: v.record.version };
            let (logged_by, used_by) = self.registry.logged_and_used_by(&key).await?;
            Ok(Some(RunsOf { logged_by, used_by }))
        })
    }

    fn entities(&self) -> SourceFuture<'_, Vec<String>> {
        Box::pin(async { Ok(self.registry.entities().await?) })
    }

    fn projects<'a>(&'a self, entity: &'a str) -> SourceFuture<'a, Vec<String>> {
        Box::pin(async { Ok(self.registry.projects(entity).await?) })
    }

    fn collections<'a>(
        &'a self,
        entity: &'a str,
        project: &'a str,
    ) -> SourceFuture<'a, Vec<String>> {
        Box::pin(async { Ok(self.registry.collections(entity, project).await?) })
    }

    fn collection<'a>(&'a self, c: &'a CollectionPath) -> SourceFuture<'a, CollectionView> {
        Box::pin(async { Ok((&self.state(c).await?).into()) })
    }

    fn existing_collection<'a>(
        &'a self,
        c: &'a CollectionPath,
    ) -> SourceFuture<'a, CollectionView> {
        Box::pin(async {
            let state = self.state(c).await?;
            if !state.exists() {
                // The registry's own error, which lists the collections there.
                self.registry.existing_state(c).await?;
            }
            Ok((&state).into())
        })
    }

    fn resolve<'a>(
        &'a self,
        c: &'a CollectionPath,
        selector: &'a Selector,
    ) -> SourceFuture<'a, ResolvedVersion> {
        Box::pin(async { Ok(self.registry.resolve(c, selector).await?.into()) })
    }

    fn manifest_bytes<'a>(
        &'a self,
        _c: &'a CollectionPath,
        v: &'a VersionInfo,
    ) -> SourceFuture<'a, Bytes> {
        Box::pin(async { Ok(self.registry.store().get(&v.locator).await?) })
    }

    fn blobs(&self, _c: &CollectionPath, _v: &VersionInfo) -> Arc<dyn BlobSource> {
        Arc::new(RegistryBlobs { store: self.registry.store().clone() })
    }
}

/// The registry's content-addressed blobs (one source for every version).
#[derive(Debug, Clone)]
pub struct RegistryBlobs {
    store: Store,
}

impl RegistryBlobs {
    pub fn new(store: Store) -> RegistryBlobs {
        RegistryBlobs { store }
    }

    /// The blob key of an MD5-digested entry; the registry stores nothing else.
    /// An MD5 entry's blob by its digest; an XXH128 entry's by the MD5 recorded beside it.
    fn key(entry: &Entry) -> Option<String> {
        entry_blob_key(entry)
    }

    fn key_or_err(entry: &Entry) -> Result<String, SourceError> {
        Self::key(entry).ok_or_else(|| {
            SourceError::from(crate::store::StoreError::NotFound {
                url: String::new(),
                key: format!("blob of digest {}", entry.digest),
            })
        })
    }
}

impl BlobSource for RegistryBlobs {
    fn locate(&self, _path: &str, entry: &Entry) -> Option<String> {
        Self::key(entry)
    }

    fn stream<'a>(&'a self, _path: &'a str, entry: &'a Entry) -> SourceFuture<'a, BlobStream> {
        Box::pin(async move {
            let key = Self::key_or_err(entry)?;
            let stream = self.store.get_stream(&key).await?;
            Ok(stream.map_err(SourceError::from).boxed())
        })
    }

    fn copy_local(
        &self,
        _path: &str,
        entry: &Entry,
        out: &mut dyn std::io::Write,
        limit: u64,
    ) -> Option<Result<u64, SourceError>> {
        let key = Self::key(entry)?;
        Some(self.store.read_local_to(&key, out, limit)?.map_err(SourceError::from))
    }

    fn range<'a>(
        &'a self,
        _path: &'a str,
        entry: &'a Entry,
        range: Range<u64>,
    ) -> SourceFuture<'a, Bytes> {
        Box::pin(async move {
            let key = Self::key_or_err(entry)?;
            Ok(self.store.get_range(&key, range).await?)
        })
    }

    fn range_stream<'a>(
        &'a self,
        _path: &'a str,
        entry: &'a Entry,
        range: Range<u64>,
    ) -> SourceFuture<'a, BlobStream> {
        Box::pin(async move {
            let key = Self::key_or_err(entry)?;
            let stream = self.store.get_range_stream(&key, range).await?;
            Ok(stream.map_err(SourceError::from).boxed())
        })
    }

    fn chunk_sums<'a>(
        &'a self,
        _path: &'a str,
        entry: &'a Entry,
    ) -> SourceFuture<'a, Option<Bytes>> {
        Box::pin(async move {
            let Some(key) = Self::key(entry) else { return Ok(None) };
            Ok(self.store.get_opt(&chunks::sidecar_key(&key)).await?)
        })
    }
}
