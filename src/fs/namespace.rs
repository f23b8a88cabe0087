//! The registry level of a whole-registry mount: entities, projects, and each collection's
//! `name:vN` directories and `name:alias` symlinks, read from the catalog and kept for the
//! refresh interval (served stale, with a warning, while the registry does not answer).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::names::{CollectionPath, Selector, validate_scope};
use crate::source::{CollectionView, SourceError};

use super::inodes::RegistryNode;
use super::tree::Tree;
use super::{ArtifactFs, Attr, FsError, InodeNo, ROOT_INODE, lock};

/// A name looked up but missing from listings or versions older than this is read again
/// once: a version logged a moment ago is there by name at once, not after the refresh
/// interval, while a burst of lookups of missing names costs one request per this interval.
pub(super) const MISS_REREAD_AFTER: Duration = Duration::from_millis(200);

/// A registry directory's entries as of its opendir, `.` and `..` first.
pub(super) type Listing = Vec<(String, Attr)>;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Scope {
    Entities,
    Projects(String),
    Collections(String, String),
}

#[derive(Clone, Debug)]
pub(super) struct Timed<T> {
    pub(super) value: T,
    pub(super) at: Instant,
}

/// `name:vN`, the name of a version directory (and an alias symlink's target).
fn version_dir_name(name: &str, version: u32) -> String {
    format!("{name}:v{version}")
}

impl ArtifactFs {
    pub(super) fn lookup_registry(
        &self,
        parent: InodeNo,
        node: &RegistryNode,
        name: &str,
    ) -> Result<Attr, FsError> {
        let child = match node {
            RegistryNode::Root => {
                validate_scope("entity", name).map_err(|_| FsError::NotFound)?;
                self.listed(Scope::Entities, name)?;
                RegistryNode::Entity(name.to_owned())
            }
            RegistryNode::Entity(entity) => {
                validate_scope("project", name).map_err(|_| FsError::NotFound)?;
                self.listed(Scope::Projects(entity.clone()), name)?;
                RegistryNode::Project(entity.clone(), name.to_owned())
            }
            RegistryNode::Project(entity, project) => {
                // `name:vN` or `name:alias`, resolved even before any listing shows it.
                let (artifact, selector) = name.rsplit_once(':').ok_or(FsError::NotFound)?;
                let c = CollectionPath::new(entity, project, artifact)
                    .map_err(|_| FsError::NotFound)?;
                let selector = Selector::parse(selector).map_err(|_| FsError::NotFound)?;
                // A version read once is immutable: its lookup never waits on the registry.
                let seen = match selector {
                    Selector::Version(v) => self.seen_state(&c, v),
                    Selector::Alias(_) => None,
                };
                let state = match seen {
                    Some(state) => state,
                    None => {
                        self.warm_around(&c);
                        self.state_knowing(&c, &selector)?
                    }
                };
                match selector {
                    Selector::Version(v) => {
                        let record = state.versions.get(&v).ok_or(FsError::NotFound)?;
                        let slot = self.intern_version(&c, record, parent);
                        return self.getattr(self.version_ino(&slot, Tree::ROOT));
                    }
                    Selector::Alias(alias) => {
                        let target = Self::alias_target_in(&c, &state, &alias)?;
                        let ino = self.intern(RegistryNode::Alias(c, alias));
                        return Ok(self.symlink_attr(ino, &target));
                    }
                }
            }
            RegistryNode::Alias(..) => return Err(FsError::NotADirectory),
        };
        let ino = self.intern(child);
        Ok(self.registry_dir_attr(ino))
    }

    /// Appends the entries of a registry directory (after `.` and `..`).
    pub(super) fn list_registry_dir(
        &self,
        node: &RegistryNode,
        out: &mut Listing,
    ) -> Result<(), FsError> {
        match node {
            RegistryNode::Root => {
                for entity in self.listing(Scope::Entities)?.iter() {
                    if validate_scope("entity", entity).is_ok() {
                        let ino = self.intern(RegistryNode::Entity(entity.clone()));
                        out.push((entity.clone(), self.registry_dir_attr(ino)));
                    }
                }
            }
            RegistryNode::Entity(entity) => {
                for project in self.listing(Scope::Projects(entity.clone()))?.iter() {
                    if validate_scope("project", project).is_ok() {
                        let node = RegistryNode::Project(entity.clone(), project.clone());
                        let ino = self.intern(node);
                        out.push((project.clone(), self.registry_dir_attr(ino)));
                    }
                }
            }
            RegistryNode::Project(entity, project) => {
                let parent = self.intern(node.clone());
                let scope = Scope::Collections(entity.clone(), project.clone());
                let names = self.listing(scope)?;
                // Read together; the loop below finds them fresh.
                self.read_states(
                    &names
                        .iter()
                        .filter_map(|n| CollectionPath::new(entity, project, n).ok())
                        .collect::<Vec<_>>(),
                );
                for name in names.iter() {
                    // Collections whose names artfs would refuse are not shown.
                    let Ok(c) = CollectionPath::new(entity, project, name) else {
                        continue;
                    };
                    // A collection whose log is broken is left out; the others are listed. (A
                    // registry that fails or stalls still fails the listing.)
                    let state = match self.collection_state(&c) {
                        Ok(state) => state,
                        Err(err @ FsError::Source { source: SourceError::Corrupt(_), .. }) => {
                            tracing::warn!(%err, "leaving {c} out of the listing");
                            continue;
                        }
                        Err(err) => return Err(err),
                    };
                    for record in state.versions.values() {
                        let slot = self.intern_version(&c, record, parent);
                        let attr = self.getattr(self.version_ino(&slot, Tree::ROOT))?;
                        out.push((version_dir_name(name, record.version), attr));
                    }
                    for alias in state.aliases.keys() {
                        let Ok(target) = Self::alias_target_in(&c, &state, alias) else {
                            continue;
                        };
                        let ino = self.intern(RegistryNode::Alias(c.clone(), alias.clone()));
                        out.push((format!("{name}:{alias}"), self.symlink_attr(ino, &target)));
                    }
                }
            }
            RegistryNode::Alias(..) => return Err(FsError::NotADirectory),
        }
        Ok(())
    }

    /// `name:vN` that `alias` points at now (as of the last refresh).
    pub(super) fn alias_target(&self, c: &CollectionPath, alias: &str) -> Result<String, FsError> {
        let state = self.collection_state(c)?;
        Self::alias_target_in(c, &state, alias)
    }

    pub(super) fn alias_target_in(
        c: &CollectionPath,
        state: &CollectionView,
        alias: &str,
    ) -> Result<String, FsError> {
        let version = state.aliases.get(alias).ok_or(FsError::NotFound)?;
        if !state.versions.contains_key(version) {
            return Err(FsError::NotFound);
        }
        Ok(version_dir_name(&c.name, *version))
    }

    pub(super) fn parent_of(&self, node: &RegistryNode) -> InodeNo {
        match node {
            RegistryNode::Root | RegistryNode::Entity(_) => ROOT_INODE,
            RegistryNode::Project(e, _) => self.intern(RegistryNode::Entity(e.clone())),
            RegistryNode::Alias(c, _) => {
                self.intern(RegistryNode::Project(c.entity.clone(), c.project.clone()))
            }
        }
    }

    /// Whether `scope`'s listing has `name`, read again if it has not (see [`MISS_REREAD_AFTER`]).
    pub(super) fn listed(&self, scope: Scope, name: &str) -> Result<(), FsError> {
        // A name listed once is looked up without asking again (a path to a cached file must
        // not wait on the registry); `ls` shows the current listing.
        let seen = lock(&self.inner.listings)
            .get(&scope)
            .is_some_and(|t| t.value.iter().any(|n| n == name));
        if seen {
            return Ok(());
        }
        let listed = self.listed_now(&scope, name);
        match (listed, &scope) {
            (Ok(true), _) => Ok(()),
            // A project the listing did not show (or a listing that failed): asked by name.
            (listed, Scope::Projects(entity)) => {
                self.project_by_name(entity, name, listed.map(drop))
            }
            (Ok(false), _) => Err(FsError::NotFound),
            (Err(err), _) => Err(err),
        }
    }

    /// Whether `scope`'s listing has `name`, read again once if it has not.
    fn listed_now(&self, scope: &Scope, name: &str) -> Result<bool, FsError> {
        Ok(self.listing(scope.clone())?.iter().any(|n| n == name)
            || self.listing_within(scope.clone(), MISS_REREAD_AFTER)?.iter().any(|n| n == name))
    }

    /// A registry listing, read again once older than the refresh interval.
    pub(super) fn listing(&self, scope: Scope) -> Result<Arc<Vec<String>>, FsError> {
        self.listing_within(scope, self.inner.options.refresh)
    }

    pub(super) fn listing_within(
        &self,
        scope: Scope,
        max_age: Duration,
    ) -> Result<Arc<Vec<String>>, FsError> {
        if let Some(t) = lock(&self.inner.listings).get(&scope)
            && t.at.elapsed() < max_age.min(self.inner.options.refresh)
        {
            return Ok(t.value.clone());
        }
        let catalog = &self.inner.catalog;
        let fresh = match &scope {
            Scope::Entities => {
                self.inner.runtime.block_on(|| "listing entities".into(), catalog.entities())
            }
            Scope::Projects(e) => self
                .inner
                .runtime
                .block_on(|| format!("listing projects of {e}"), catalog.projects(e)),
            Scope::Collections(e, p) => self
                .inner
                .runtime
                .block_on(|| format!("listing artifacts of {e}/{p}"), catalog.collections(e, p)),
        };
        let names = match fresh {
            Ok(names) => names,
            Err(err) => return self.stale(&self.inner.listings, scope, err),
        };
        let names = Arc::new(names);
        let timed = Timed { value: names.clone(), at: Instant::now() };
        lock(&self.inner.listings).insert(scope, timed);
        Ok(names)
    }

    /// The collection's last read state, whatever its age, if it holds version `v`.
    fn seen_state(&self, c: &CollectionPath, v: u32) -> Option<Arc<CollectionView>> {
        let states = lock(&self.inner.states);
        let t = states.get(c)?;
        t.value.versions.contains_key(&v).then(|| t.value.clone())
    }

    /// A collection's versions and aliases, read again once older than the refresh interval.
    pub(super) fn collection_state(
        &self,
        c: &CollectionPath,
    ) -> Result<Arc<CollectionView>, FsError> {
        self.collection_state_within(c, self.inner.options.refresh)
    }

    pub(super) fn collection_state_within(
        &self,
        c: &CollectionPath,
        max_age: Duration,
    ) -> Result<Arc<CollectionView>, FsError> {
        let cached = lock(&self.inner.states).get(c).cloned();
        if let Some(t) = &cached
            && t.at.elapsed() < max_age.min(self.inner.options.refresh)
        {
            return Ok(t.value.clone());
        }
        let state = match self
            .inner
            .runtime
            .block_on(|| format!("reading the versions of {c}"), self.inner.catalog.collection(c))
        {
            Ok(state) => state,
            Err(err) => return self.stale(&self.inner.states, c.clone(), err),
        };
        let state = Arc::new(state);
        let timed = Timed { value: state.clone(), at: Instant::now() };
        lock(&self.inner.states).insert(c.clone(), timed);
        Ok(state)
    }

    /// What the mount last read for `key`, when reading it again failed with `err`: versions
    /// are immutable, so a listing or alias that is stale is better than `EIO` for files that
    /// are cached already. Logged; asked again after the next refresh interval. `err` if
    /// nothing was ever read.
    pub(super) fn stale<K: std::hash::Hash + Eq + std::fmt::Debug, V: Clone>(
        &self,
        table: &Mutex<HashMap<K, Timed<V>>>,
        key: K,
        err: FsError,
    ) -> Result<V, FsError> {
        let mut table = lock(table);
        let Some(timed) = table.get_mut(&key) else { return Err(err) };
        tracing::warn!(
            ?key,
            age = ?timed.at.elapsed(),
            error = %err,
            "registry unreachable; serving what it said before (stale)"
        );
        timed.at = Instant::now();
        Ok(timed.value.clone())
    }
}
