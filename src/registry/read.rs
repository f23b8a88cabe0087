//! Reading the registry: collections' states, name resolution, manifests.

use super::log::VersionRecord;
use super::{CollectionState, Registry, RegistryError, layout};
use crate::manifest::Manifest;
use crate::names::{CollectionPath, Selector};

/// A resolved version: everything needed to show or mount it.
#[derive(Debug, Clone)]
pub struct ResolvedVersion {
    pub collection: CollectionPath,
    pub artifact_type: String,
    pub record: VersionRecord,
    pub aliases: Vec<String>,
    /// The collection's default TTL, which the version's own may inherit.
    pub default_ttl_seconds: Option<u64>,
}

impl Registry {
    /// The folded state of a collection (empty when it does not exist).
    pub async fn state(&self, c: &CollectionPath) -> Result<CollectionState, RegistryError> {
        self.refresh(c, CollectionState::default()).await
    }

    /// Brings `state` up to date by replaying only the commits after it (or after the newest
    /// usable checkpoint, if that is further along).
    pub async fn refresh(
        &self,
        c: &CollectionPath,
        state: CollectionState,
    ) -> Result<CollectionState, RegistryError> {
        let mut state = self.load_log(&layout::collection(c), state).await?;
        state.ttl_exempt = self.linked_into_registries(c, &state).await?;
        Ok(state)
    }

    pub async fn entities(&self) -> Result<Vec<String>, RegistryError> {
        Ok(self.store.list_dirs(layout::COLLECTIONS).await?)
    }

    pub async fn projects(&self, entity: &str) -> Result<Vec<String>, RegistryError> {
        Ok(self.store.list_dirs(&layout::projects_dir(entity)).await?)
    }

    pub async fn collections(
        &self,
        entity: &str,
        project: &str,
    ) -> Result<Vec<String>, RegistryError> {
        Ok(self.store.list_dirs(&layout::collections_dir(entity, project)).await?)
    }

    /// The live state (`retention`: expired versions left out) of an existing collection, or an
    /// error listing the ones that exist.
    pub async fn existing_state(
        &self,
        c: &CollectionPath,
    ) -> Result<CollectionState, RegistryError> {
        let state = self.live_state(c).await?;
        if !state.exists() {
            return Err(RegistryError::UnknownArtifact {
                name: c.name.clone(),
                scope: format!("{}/{}", c.entity, c.project),
                available: self.collections(&c.entity, &c.project).await.unwrap_or_default(),
            });
        }
        Ok(state)
    }

    /// Resolves `name:alias` / `name:vN` in an already loaded state.
    pub fn resolve_in(
        c: &CollectionPath,
        state: &CollectionState,
        selector: &Selector,
    ) -> Result<ResolvedVersion, RegistryError> {
        let version = match selector {
            Selector::Version(v) => *v,
            Selector::Alias(a) => match state.aliases.get(a) {
                Some(v) => *v,
                None => {
                    return Err(RegistryError::UnknownAlias {
                        name: c.to_string(),
                        alias: a.clone(),
                        available: state.aliases.keys().cloned().collect(),
                    });
                }
            },
        };
        let Some(record) = state.versions.get(&version) else {
            return Err(RegistryError::UnknownVersion {
                name: c.to_string(),
                version,
                available: state.versions.keys().map(|v| format!("v{v}")).collect(),
            });
        };
        Ok(ResolvedVersion {
            collection: c.clone(),
            artifact_type: state.artifact_type.clone().unwrap_or_default(),
            record: record.clone(),
            aliases: state.aliases_of(version),
            default_ttl_seconds: state.default_ttl_seconds,
        })
    }

    pub async fn resolve(
        &self,
        c: &CollectionPath,
        selector: &Selector,
    ) -> Result<ResolvedVersion, RegistryError> {
        let state = self.existing_state(c).await?;
        Self::resolve_in(c, &state, selector)
    }

    pub async fn manifest(&self, v: &ResolvedVersion) -> Result<Manifest, RegistryError> {
        let key = &v.record.manifest;
        let bytes = self.store.get(key).await?;
        Manifest::from_json(&bytes).map_err(|source| RegistryError::Manifest {
            name: format!("{}:v{}", v.collection, v.record.version),
            key: key.clone(),
            source,
        })
    }
}
