//! Names a whole-registry mount finds by asking for them one by one, when the listing that
//! should show them failed (a server that refuses a listing query) or did not show them yet:
//! `entity/project` and `name:vN` / `name:alias`. A name found joins what the mount had read
//! (so readdir, readlink and later lookups agree with it); a name missing is not asked for
//! again within [`MISS_REREAD_AFTER`], so a burst of lookups of missing names costs one request.

use std::sync::Arc;
use std::time::Instant;

use crate::names::{CollectionPath, Selector};
use crate::source::CollectionView;

use super::namespace::{MISS_REREAD_AFTER, Scope, Timed};
use super::{ArtifactFs, FsError, lock};

impl ArtifactFs {
    /// Whether a by-name lookup of `key` missed a moment ago (and so is not asked again yet).
    fn missed_recently(&self, key: &str) -> bool {
        let mut misses = lock(&self.inner.by_name_misses);
        misses.retain(|_, at| at.elapsed() < MISS_REREAD_AFTER);
        misses.contains_key(key)
    }

    fn record_miss(&self, key: String) {
        lock(&self.inner.by_name_misses).insert(key, Instant::now());
    }

    /// `entity/project`, asked for by name after its listing failed (`listing`) or lacked it.
    pub(super) fn project_by_name(
        &self,
        entity: &str,
        project: &str,
        listing: Result<(), FsError>,
    ) -> Result<(), FsError> {
        let key = format!("{entity}/{project}");
        if self.missed_recently(&key) {
            return Err(FsError::NotFound);
        }
        let asked = self.inner.runtime.block_on(
            || format!("looking up project {key}"),
            self.inner.catalog.project_exists(entity, project),
        );
        match asked {
            Ok(true) => {
                let scope = Scope::Projects(entity.to_owned());
                let mut listings = lock(&self.inner.listings);
                let at = listings.get(&scope).map_or_else(Instant::now, |t| t.at);
                let mut names: Vec<String> =
                    listings.get(&scope).map(|t| t.value.to_vec()).unwrap_or_default();
                names.push(project.to_owned());
                names.sort();
                names.dedup();
                listings.insert(scope, Timed { value: Arc::new(names), at });
                Ok(())
            }
            Ok(false) => {
                self.record_miss(key);
                Err(FsError::NotFound)
            }
            // Unanswered: the listing's word stands (a name it lacks is missing, its failure is
            // the error), as without a lookup by name.
            Err(err) => {
                tracing::debug!(%err, "project {key} by name");
                listing.and(Err(FsError::NotFound))
            }
        }
    }

    /// The state of `c` that knows `selector`: as read, read again once, or (when neither
    /// knows it or the read failed) with the version asked for by name merged in.
    pub(super) fn state_knowing(
        &self,
        c: &CollectionPath,
        selector: &Selector,
    ) -> Result<Arc<CollectionView>, FsError> {
        let knows = |state: &CollectionView| match selector {
            Selector::Version(v) => state.versions.contains_key(v),
            Selector::Alias(a) => state.aliases.contains_key(a),
        };
        let state = match self.collection_state(c) {
            Ok(state) if knows(&state) => return Ok(state),
            Ok(_) => self.collection_state_within(c, MISS_REREAD_AFTER),
            Err(err) => Err(err),
        };
        match state {
            Ok(state) if knows(&state) => Ok(state),
            read => self.version_by_name(c, selector, read),
        }
    }

    /// `c:selector` resolved by name after reading the collection (`read`) did not show it.
    fn version_by_name(
        &self,
        c: &CollectionPath,
        selector: &Selector,
        read: Result<Arc<CollectionView>, FsError>,
    ) -> Result<Arc<CollectionView>, FsError> {
        let key = format!("{c}:{selector}");
        if self.missed_recently(&key) {
            return read.or(Err(FsError::NotFound));
        }
        let asked = self
            .inner
            .runtime
            .block_on(|| format!("looking up {key}"), self.inner.catalog.resolve(c, selector));
        let found = match asked {
            Ok(found) => found,
            Err(FsError::Source { source, .. }) if source.is_not_found() => {
                self.record_miss(key);
                return read.or(Err(FsError::NotFound));
            }
            // Unanswered: the read's word stands, as without a lookup by name.
            Err(err) => {
                tracing::debug!(%err, "{key} by name");
                return read;
            }
        };
        let mut states = lock(&self.inner.states);
        let (mut view, at) = match states.get(c) {
            Some(t) => ((*t.value).clone(), t.at),
            None => (CollectionView::default(), Instant::now()),
        };
        let version = found.record.version;
        view.artifact_type.get_or_insert(found.artifact_type);
        view.versions.insert(version, found.record);
        for alias in found.aliases {
            view.aliases.insert(alias, version);
        }
        if let Selector::Alias(a) = selector {
            view.aliases.insert(a.clone(), version);
        }
        let view = Arc::new(view);
        states.insert(c.clone(), Timed { value: view.clone(), at });
        Ok(view)
    }
}
