//! A version opened for a page: resolved through the seam (`Catalog`) for a caller who may read
//! it, with its manifest and where its bytes come from. What the file, preview and download
//! pages all start from.

use std::sync::Arc;

use super::html::artifact_href;
use super::{not_found, readable};
use crate::manifest::Manifest;
use crate::names::{CollectionPath, Selector, parse_version};
use crate::serve::auth::Access;
use crate::serve::{ServeError, Shared};
use crate::source::registry::RegistrySource;
use crate::source::{BlobSource, Catalog, CatalogExt, ResolvedVersion, SourceError};

/// `{entity}/{project}/{name}/{version}` of a route.
pub type VersionPath = (String, String, String, String);

/// `{entity}/{project}/{name}/{version}/{*path}` of a route: a path inside a version.
pub type EntryPath = (String, String, String, String, String);

/// [`open`] for a route that also names a path inside the version; that path.
pub async fn open_at(
    s: &Shared,
    access: &Access,
    (e, p, n, v, path): EntryPath,
) -> Result<(Opened, String), ServeError> {
    Ok((open(s, access, &(e, p, n, v)).await?, path))
}

/// A version opened for its files.
pub struct Opened {
    pub version: ResolvedVersion,
    /// Kept between requests (`Manifests`): never changed, so shared.
    pub manifest: Arc<Manifest>,
    pub blobs: Arc<dyn BlobSource>,
    /// `/ui/a/<entity>/<project>/<name>/vN`.
    pub href: String,
}

/// What the seam says, as a page: what does not exist (or cannot, by its name) is a `404`,
/// never a `503`.
pub fn source_error(e: SourceError) -> ServeError {
    match e {
        SourceError::NotFound(_) | SourceError::Invalid(_) => not_found(),
        e => ServeError::page(e),
    }
}

/// Resolves `v` (`vN` or an alias) of a collection the caller may read, with its manifest.
pub async fn open(
    s: &Shared,
    access: &Access,
    (entity, project, name, v): &VersionPath,
) -> Result<Opened, ServeError> {
    readable(access, entity)?;
    let c = CollectionPath::new(entity, project, name).map_err(|_| not_found())?;
    let selector = match parse_version(v) {
        Some(n) => Selector::Version(n),
        None => Selector::Alias(v.clone()),
    };
    let catalog = RegistrySource::new(s.registry.clone());
    let version = catalog.resolve(&c, &selector).await.map_err(source_error)?;
    let locator = &version.record.locator;
    let manifest = match s.manifests.get(locator) {
        Some(m) => m,
        None => {
            let m = Arc::new(catalog.manifest(&version).await.map_err(source_error)?);
            s.manifests.keep(locator, m.clone());
            m
        }
    };
    let blobs = catalog.blobs(&c, &version.record);
    let href = artifact_href(&[entity, project, name, &format!("v{}", version.record.version)]);
    Ok(Opened { version, manifest, blobs, href })
}
