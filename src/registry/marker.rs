//! Whether a registry exists at its URL, so that reading a mistyped URL says so instead of
//! creating an empty registry there.
//!
//! The first write through `artfs log` creates the marker object [`MARKER_KEY`] (create-only, so
//! concurrent first writers agree). A registry exists when the marker does, or, for registries
//! made before the marker existed (or written by other tools), when it holds any collection:
//! commit logs are never deleted, so a registry that ever had a version keeps being recognised,
//! even after every version was deleted.

use chrono::Utc;

use super::{Registry, RegistryError};

/// Key of the marker object, at the registry root.
pub use super::layout::MARKER as MARKER_KEY;

impl Registry {
    /// Whether a registry is here: its marker, or any collection.
    pub async fn exists(&self) -> Result<bool, RegistryError> {
        if self.store.head(MARKER_KEY).await?.is_some() {
            return Ok(true);
        }
        Ok(!self.entities().await?.is_empty())
    }

    /// Creates the marker unless it is there already; whether this call created it.
    pub async fn mark_created(&self) -> Result<bool, RegistryError> {
        if self.store.head(MARKER_KEY).await?.is_some() {
            return Ok(false);
        }
        let body = serde_json::json!({
            "artfs_registry": 1,
            "created_at": Utc::now(),
            "created_by": format!("artfs {}", env!("CARGO_PKG_VERSION")),
        });
        // `false`: another first writer created it meanwhile, which is as good.
        Ok(self.store.put_create(MARKER_KEY, body.to_string().into()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::CollectionPath;
    use crate::store::{Store, cloud::Clouds};

    fn registry(dir: &std::path::Path) -> Registry {
        Registry::new(Store::open(dir.to_str().unwrap(), &Clouds::default()).unwrap())
    }

    #[tokio::test]
    async fn a_registry_is_its_marker_or_any_collection() {
        let tmp = tempfile::tempdir().unwrap();
        let r = registry(tmp.path());
        assert!(!r.exists().await.unwrap(), "an empty directory is no registry");
        r.mark_created().await.unwrap();
        assert!(r.exists().await.unwrap());
        r.mark_created().await.unwrap();

        // A registry from before the marker: only commits.
        let old = tempfile::tempdir().unwrap();
        let r = registry(old.path());
        let c = CollectionPath::new("e", "p", "n").unwrap();
        let dir = old.path().join(super::super::layout::collection(&c)).join("commits");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("00000000000000000001.json"), b"{}").unwrap();
        assert!(r.exists().await.unwrap());
    }
}
