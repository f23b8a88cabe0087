//! A project's collections read together: the first lookup in a project that has to ask the
//! registry (and every listing of it) reads all its collections' versions and aliases at once,
//! [`HEADS_IN_FLIGHT`] requests in flight, and the manifests of small versions that aliases
//! point at. A loop opening many `name:latest` then pays a round trip per batch, not a chain
//! of round trips per name. What is read lands in the same tables, with the same refresh
//! interval, as a single lookup's answer: it changes when the mount asks, never what it sees.

use std::sync::Arc;
use std::time::Instant;

use crate::names::CollectionPath;
use crate::source::CollectionView;

use super::inodes::RegistryNode;
use super::namespace::{Scope, Timed};
use super::{ArtifactFs, InodeNo, lock};

/// Registry requests in flight while a project's collections are read: enough to hide a
/// cloud round trip behind others, few enough not to flood a bucket (each collection is two
/// or three requests, one after the other).
pub(super) const HEADS_IN_FLIGHT: usize = 32;

/// A project with more collections than this is not read ahead: one lookup there would start
/// too many requests for what it needs (its names are read one by one, as they are looked up).
const MAX_COLLECTIONS_AHEAD: usize = 10_000;

/// Manifests read ahead are those of versions with at most this many files: small ones, where
/// the round trip is the whole cost; a big manifest is read when its directory is entered.
const SMALL_VERSION_FILES: u64 = 64;

impl ArtifactFs {
    /// Reads every collection of `entity/project` and the small versions their aliases point
    /// at, on a thread of its own; at most one such read per project at a time and per refresh
    /// interval. Nothing is read when the refresh interval is 0 (every access asks anyway).
    pub(super) fn warm_project(&self, entity: &str, project: &str) {
        let refresh = self.inner.options.refresh;
        if refresh.is_zero() {
            return;
        }
        let key = (entity.to_owned(), project.to_owned());
        {
            let mut warmed = lock(&self.inner.warmed);
            match warmed.get(&key) {
                Some(None) => return,
                Some(Some(at)) if at.elapsed() < refresh => return,
                _ => warmed.insert(key.clone(), None),
            };
        }
        let fs = self.clone();
        let spawned = std::thread::Builder::new().name("artfs-heads".into()).spawn(move || {
            fs.read_project(&key.0, &key.1);
            lock(&fs.inner.warmed).insert(key, Some(Instant::now()));
        });
        if let Err(err) = spawned {
            // Only slower: each name is then read when it is looked up.
            tracing::warn!(%err, "cannot start reading {entity}/{project} ahead");
            lock(&self.inner.warmed).remove(&(entity.to_owned(), project.to_owned()));
        }
    }

    /// Reads the collections of `entity/project` and the small versions their aliases point
    /// at, a batch at a time (a reader going through the names in order finds the first ones
    /// ready early). Failures are left for the lookups that need the names (they ask again).
    fn read_project(&self, entity: &str, project: &str) {
        let scope = Scope::Collections(entity.to_owned(), project.to_owned());
        let Ok(names) = self.listing(scope) else { return };
        if names.len() > MAX_COLLECTIONS_AHEAD {
            return;
        }
        let collections: Vec<CollectionPath> =
            names.iter().filter_map(|n| CollectionPath::new(entity, project, n).ok()).collect();
        let parent = self.intern(RegistryNode::Project(entity.to_owned(), project.to_owned()));
        for batch in collections.chunks(HEADS_IN_FLIGHT * 8) {
            let states = self.read_states(batch);
            self.read_manifests(batch, &states, parent);
        }
    }

    /// Loads the trees of the small versions that the aliases in `states` point at.
    fn read_manifests(
        &self,
        collections: &[CollectionPath],
        states: &[Option<Arc<CollectionView>>],
        parent: InodeNo,
    ) {
        let mut slots = Vec::new();
        for (c, state) in collections.iter().zip(states) {
            let Some(state) = state else { continue };
            let mut targets: Vec<u32> = state.aliases.values().copied().collect();
            targets.sort_unstable();
            targets.dedup();
            for record in targets.iter().filter_map(|v| state.versions.get(v)) {
                if record.file_count <= SMALL_VERSION_FILES {
                    let slot = self.intern_version(c, record, parent);
                    if slot.loaded.get().is_none() {
                        slots.push(slot);
                    }
                }
            }
        }
        let catalog = &self.inner.catalog;
        let requests = slots.iter().map(|slot| {
            let what = format!("reading the manifest of {}", slot.label);
            (what, catalog.manifest_bytes(&slot.collection, &slot.record))
        });
        self.inner.runtime.block_on_each(requests, HEADS_IN_FLIGHT, |i, _, json| {
            if let Err(err) = json.and_then(|json| self.install_loaded(&slots[i], &json)) {
                tracing::debug!(%err, "reading {} ahead", slots[i].label);
            }
        });
    }

    /// The states of `collections`, read together; those read within the refresh interval are
    /// not asked again. Each is kept as it arrives, as old as its request. `None` for a
    /// collection that could not be read.
    pub(super) fn read_states(
        &self,
        collections: &[CollectionPath],
    ) -> Vec<Option<Arc<CollectionView>>> {
        let refresh = self.inner.options.refresh;
        let fresh = |c: &CollectionPath| {
            let states = lock(&self.inner.states);
            states.get(c).filter(|t| t.at.elapsed() < refresh).map(|t| t.value.clone())
        };
        let catalog = &self.inner.catalog;
        let todo: Vec<&CollectionPath> =
            collections.iter().filter(|c| fresh(c).is_none()).collect();
        let requests =
            todo.iter().map(|c| (format!("reading the versions of {c}"), catalog.collection(c)));
        self.inner.runtime.block_on_each(requests, HEADS_IN_FLIGHT, |i, asked, answer| {
            let c = todo[i];
            match answer {
                Ok(state) => {
                    let mut states = lock(&self.inner.states);
                    // A lookup that asked after this request did has the newer answer: keep
                    // it, so an alias never moves back.
                    if states.get(c).is_none_or(|t| t.at < asked) {
                        states.insert(c.clone(), Timed { value: Arc::new(state), at: asked });
                    }
                }
                Err(err) => tracing::debug!(%err, "reading {c} ahead"),
            }
        });
        collections.iter().map(fresh).collect()
    }

    /// Starts reading `c`'s whole project ahead when `c` itself has to be read (see
    /// [`ArtifactFs::warm_project`]).
    pub(super) fn warm_around(&self, c: &CollectionPath) {
        let refresh = self.inner.options.refresh;
        let fresh = lock(&self.inner.states).get(c).is_some_and(|t| t.at.elapsed() < refresh);
        if !fresh {
            self.warm_project(&c.entity, &c.project);
        }
    }
}
