//! Tags, time-to-live and edits of a collection as a whole (description, type, rename, delete):
//! their ops' part of the fold, and the registry calls that commit them.
//!
//! TTL follows W&B: a version's TTL is its own, none (`Never`), or inherited from the
//! collection's default (W&B's team default). A version expires at its creation time plus its
//! TTL; an expired version is gone from every read, aliases or not, and `gc` reclaims it. As on
//! W&B, a version linked into a registry does not expire while the link lives: the registry
//! notes such versions when it reads a collection (`CollectionState::ttl_exempt`; the fold
//! itself never depends on links). Expiry is a function of the folded state, the links and a
//! clock, never a commit, so every server agrees without writing.
//!
//! A rename is two commits: `RenamedTo` on the old log (its versions stay in that fold, so gc
//! keeps their files), then `Adopted` as commit 1 of the new log, a checkpoint of the old state.
//! Readers of the old name then find nothing, ids minted under it follow the move, and gc counts
//! the old fold's versions only while the new log does not hold them.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::log::{CollectionEdit, Ttl};
use super::{CollectionState, Op, Registry, RegistryError};
use crate::names::{CollectionPath, LATEST, Selector};

/// W&B's limit on a tag's length (`TagInput.tagName`).
const MAX_TAG_CHARS: usize = 128;
/// Renames followed from an old name before giving up (a chain, or a cycle written by hand).
const MAX_MOVES_FOLLOWED: usize = 8;

/// A tag as W&B accepts one: words of letters, digits, `_` and `-`, separated by spaces.
pub fn validate_tag(tag: &str) -> Result<(), String> {
    let word = |w: &str| w.chars().all(|c| c.is_alphanumeric() || "_-".contains(c));
    // Runs of spaces separate words; none leads or trails.
    let words: Vec<&str> = tag.split(' ').filter(|w| !w.is_empty()).collect();
    let spaced = !tag.starts_with(' ') && !tag.ends_with(' ');
    if words.is_empty()
        || !spaced
        || !words.into_iter().all(word)
        || tag.chars().count() > MAX_TAG_CHARS
    {
        return Err(format!(
            "invalid tag {tag:?}: tags must only contain alphanumeric characters separated by hyphens, underscores, and/or spaces (at most {MAX_TAG_CHARS} characters)"
        ));
    }
    Ok(())
}

fn check_tags<'a>(tags: impl IntoIterator<Item = &'a String>) -> Result<(), String> {
    tags.into_iter().try_for_each(|t| validate_tag(t))
}

impl CollectionState {
    /// Whether a collection lives under this log's name.
    pub fn exists(&self) -> bool {
        self.artifact_type.is_some() && self.moved_to.is_none()
    }

    /// The TTL in force for `version`, in seconds (`None`: it never expires).
    pub fn ttl_seconds(&self, version: u32) -> Option<u64> {
        self.versions.get(&version)?.ttl.in_force(self.default_ttl_seconds)
    }

    /// When `version` expires, if it does (a version a registry links does not).
    pub fn expires_at(&self, version: u32) -> Option<DateTime<Utc>> {
        if self.ttl_exempt.contains(&version) {
            return None;
        }
        self.ttl_expiry(version)
    }

    /// When `version`'s TTL runs out, whatever links it: what the fold checks, so that every
    /// reader folds the same commits whatever links it knows of.
    fn ttl_expiry(&self, version: u32) -> Option<DateTime<Utc>> {
        let secs = i64::try_from(self.ttl_seconds(version)?).unwrap_or(i64::MAX);
        let created = self.versions.get(&version)?.created_at;
        Some(
            created
                .checked_add_signed(chrono::Duration::seconds(secs))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        )
    }

    /// The logged version with this artifact digest that has not expired: a log of the content
    /// of an expired version makes a new version rather than reviving it, and a link is never
    /// one (logging into a portfolio is refused, not turned into a move of the link's aliases).
    pub fn live_version_by_digest<'a>(
        &'a self,
        digest: &'a str,
    ) -> Option<&'a super::VersionRecord> {
        let now = Utc::now();
        self.logged_with_digest(digest).find(|v| self.expires_at(v.version).is_none_or(|t| t > now))
    }

    /// The versions whose TTL ran out by `now`, links or not.
    pub fn past_ttl(&self, now: DateTime<Utc>) -> Vec<u32> {
        self.versions
            .keys()
            .copied()
            .filter(|v| self.ttl_expiry(*v).is_some_and(|t| t <= now))
            .collect()
    }

    /// The versions expired at `now`.
    pub fn expired(&self, now: DateTime<Utc>) -> Vec<u32> {
        self.versions
            .keys()
            .copied()
            .filter(|v| self.expires_at(*v).is_some_and(|t| t <= now))
            .collect()
    }

    /// The state as readers see it at `now`: expired versions and their aliases gone, `latest`
    /// on the newest version left (as a deletion would leave it).
    pub fn live(mut self, now: DateTime<Utc>) -> CollectionState {
        let expired = self.expired(now);
        if expired.is_empty() {
            return self;
        }
        for v in &expired {
            self.versions.remove(v);
        }
        self.aliases.retain(|_, v| !expired.contains(v));
        if let Some((&newest, _)) = self.versions.iter().next_back() {
            self.aliases.entry(LATEST.to_owned()).or_insert(newest);
        }
        self
    }

    /// The invariants of tags and TTLs a checkpoint must keep (`Fold::check`).
    pub(super) fn check_retention(&self) -> Result<(), String> {
        let version_tags = self.versions.values().flat_map(|v| &v.tags);
        check_tags(self.tags.iter().chain(version_tags))?;
        if let Some(v) = self.versions.values().find(|v| v.ttl == Ttl::Seconds(0)) {
            return Err(format!("v{} has a TTL of 0 seconds", v.version));
        }
        if self.default_ttl_seconds == Some(0) {
            return Err("has a default TTL of 0 seconds".into());
        }
        Ok(())
    }

    /// The tag, TTL and collection ops of the fold (`log::CollectionState::apply`); an error
    /// says why the op does not apply.
    pub(super) fn apply_retention(&mut self, op: &Op, at: DateTime<Utc>) -> Result<(), String> {
        // An expired version may already be reclaimed by gc: nothing may bring it back.
        if let Op::Tags { version, .. } | Op::Ttl { version, .. } = op
            && self.ttl_expiry(*version).is_some_and(|t| t <= at)
        {
            return Err(format!("changes v{version}, which expired"));
        }
        match op {
            Op::Tags { version, add, remove } => {
                check_tags(add)?;
                let Some(v) = self.versions.get_mut(version) else {
                    return Err(format!("tags v{version}, which does not exist"));
                };
                for t in remove {
                    v.tags.remove(t);
                }
                v.tags.extend(add.iter().cloned());
            }
            Op::Ttl { version, ttl } => {
                if *ttl == Ttl::Seconds(0) {
                    return Err("sets a TTL of 0 seconds".into());
                }
                let Some(v) = self.versions.get_mut(version) else {
                    return Err(format!("sets the TTL of v{version}, which does not exist"));
                };
                v.ttl = *ttl;
            }
            Op::Collection(edit) => self.edit_collection(edit)?,
            Op::DeleteCollection => {
                if !self.exists() {
                    return Err("deletes a collection that does not exist".into());
                }
                // `adopted_from` stays: the log renamed here must not count for gc again.
                *self = CollectionState {
                    seq: self.seq,
                    next_version: self.next_version,
                    adopted_from: self.adopted_from.take(),
                    ..CollectionState::default()
                };
            }
            Op::RenamedTo { name } => {
                if !self.exists() {
                    return Err("renames a collection that does not exist".into());
                }
                crate::names::validate_scope("artifact", name).map_err(|e| e.to_string())?;
                self.moved_to = Some(name.clone());
            }
            Op::Adopted { from, state } => {
                // A renamed collection arriving where none lives: a new name, a deleted or
                // renamed-away one (a rename back), or its own log undoing a rename that could
                // not land (then `from` is its own name).
                if self.exists() {
                    return Err(format!("adopts {from:?} where a collection lives"));
                }
                let mut s = (**state).clone();
                s.moved_to = None;
                s.adopted_from = Some(from.clone());
                use super::log::Fold as _;
                s.check()?;
                *self = s;
            }
            Op::Create { .. }
            | Op::Aliases { .. }
            | Op::Edit { .. }
            | Op::Delete { .. }
            | Op::Link { .. } => {
                return Err("is not a tag, TTL or collection op".into());
            }
        }
        Ok(())
    }

    /// A collection's own description, tags, default TTL and type.
    fn edit_collection(&mut self, edit: &CollectionEdit) -> Result<(), String> {
        if !self.exists() {
            return Err("edits a collection that does not exist".into());
        }
        check_tags(&edit.add_tags)?;
        let default_ttl = match edit.default_ttl {
            None => self.default_ttl_seconds,
            Some(Ttl::Never) => None,
            Some(Ttl::Seconds(s)) if s > 0 => Some(s),
            Some(other) => return Err(format!("sets the default TTL to {other:?}")),
        };
        if let Some(t) = &edit.artifact_type
            && t.is_empty()
        {
            return Err("sets an empty type".into());
        }
        if let Some(d) = &edit.description {
            self.description = Some(d.clone()).filter(|d| !d.is_empty());
        }
        for t in &edit.remove_tags {
            self.tags.remove(t);
        }
        self.tags.extend(edit.add_tags.iter().cloned());
        self.default_ttl_seconds = default_ttl;
        if let Some(t) = &edit.artifact_type {
            self.artifact_type = Some(t.clone());
        }
        Ok(())
    }
}

/// The tags of a version or a collection after adding `add` and removing `remove`.
fn tag_change(
    have: &BTreeSet<String>,
    add: &[String],
    remove: &[String],
) -> Option<(Vec<String>, Vec<String>)> {
    let add: Vec<String> = add.iter().filter(|t| !have.contains(*t)).cloned().collect();
    let remove: Vec<String> =
        remove.iter().filter(|t| have.contains(*t) && !add.contains(t)).cloned().collect();
    (!add.is_empty() || !remove.is_empty()).then_some((add, remove))
}

impl Registry {
    /// The state readers see now: expired versions left out.
    pub async fn live_state(&self, c: &CollectionPath) -> Result<CollectionState, RegistryError> {
        Ok(self.state(c).await?.live(Utc::now()))
    }

    /// Where the collection once named `c` lives now (renames followed) and its live state;
    /// `c` itself when it was never renamed.
    pub async fn follow(
        &self,
        c: &CollectionPath,
    ) -> Result<(CollectionPath, CollectionState), RegistryError> {
        let mut path = c.clone();
        for _ in 0..MAX_MOVES_FOLLOWED {
            let state = self.live_state(&path).await?;
            match &state.moved_to {
                Some(to) => path = CollectionPath::new(&path.entity, &path.project, to)?,
                None => return Ok((path, state)),
            }
        }
        Err(RegistryError::Invalid {
            name: c.to_string(),
            reason: format!("renamed more than {MAX_MOVES_FOLLOWED} times in a row"),
        })
    }

    fn invalid(c: &CollectionPath, reason: String) -> RegistryError {
        RegistryError::Invalid { name: c.to_string(), reason }
    }

    /// Adds and removes tags of one version; returns its tags.
    pub async fn set_tags(
        &self,
        c: &CollectionPath,
        version: u32,
        add: &[String],
        remove: &[String],
    ) -> Result<BTreeSet<String>, RegistryError> {
        check_tags(add).map_err(|r| Self::invalid(c, r))?;
        let (state, ()) = self
            .commit(c, |s| {
                // An expired version is as gone for writers as for readers.
                let live = s.clone().live(Utc::now());
                let r = Self::resolve_in(c, &live, &Selector::Version(version))?;
                let op = tag_change(&r.record.tags, add, remove).map(|(add, remove)| Op::Tags {
                    version,
                    add,
                    remove,
                });
                Ok((op, ()))
            })
            .await?;
        Ok(state.versions.get(&version).map(|v| v.tags.clone()).unwrap_or_default())
    }

    /// Sets the TTL of one version.
    pub async fn set_ttl(
        &self,
        c: &CollectionPath,
        version: u32,
        ttl: Ttl,
    ) -> Result<(), RegistryError> {
        if ttl == Ttl::Seconds(0) {
            return Err(Self::invalid(c, "a TTL must be positive".into()));
        }
        self.commit(c, |s| {
            let live = s.clone().live(Utc::now());
            let r = Self::resolve_in(c, &live, &Selector::Version(version))?;
            Ok(((r.record.ttl != ttl).then_some(Op::Ttl { version, ttl }), ()))
        })
        .await?;
        Ok(())
    }

    /// Edits the collection itself; tags already there (or already absent) are left alone.
    pub async fn edit_collection(
        &self,
        c: &CollectionPath,
        edit: CollectionEdit,
    ) -> Result<CollectionState, RegistryError> {
        check_tags(&edit.add_tags).map_err(|r| Self::invalid(c, r))?;
        if let Some(t) = &edit.artifact_type {
            crate::names::validate_scope("type", t)?;
        }
        let (state, ()) = self
            .commit(c, |s| {
                if !s.exists() {
                    return Err(self.unknown(c));
                }
                let mut e = edit.clone();
                (e.add_tags, e.remove_tags) =
                    tag_change(&s.tags, &edit.add_tags, &edit.remove_tags).unwrap_or_default();
                e.description = e.description.filter(|d| Some(d) != s.description.as_ref());
                e.artifact_type = e.artifact_type.filter(|t| Some(t) != s.artifact_type.as_ref());
                Ok(((e != CollectionEdit::default()).then_some(Op::Collection(e)), ()))
            })
            .await?;
        Ok(state)
    }

    fn unknown(&self, c: &CollectionPath) -> RegistryError {
        RegistryError::UnknownArtifact {
            name: c.name.clone(),
            scope: format!("{}/{}", c.entity, c.project),
            available: Vec::new(),
        }
    }

    /// Deletes a collection with all its versions.
    pub async fn delete_collection(&self, c: &CollectionPath) -> Result<(), RegistryError> {
        self.commit(c, |s| {
            if !s.exists() {
                return Err(self.unknown(c));
            }
            Ok((Some(Op::DeleteCollection), ()))
        })
        .await?;
        Ok(())
    }

    /// Renames a collection: every version, alias, tag and TTL moves to `to`, and `c`'s name is
    /// free. Refused when `to` holds a collection.
    pub async fn rename_collection(
        &self,
        c: &CollectionPath,
        to: &str,
    ) -> Result<CollectionPath, RegistryError> {
        let target = CollectionPath::new(&c.entity, &c.project, to)?;
        if target == *c {
            return Ok(target);
        }
        let taken = |t: &CollectionState| {
            let ty = t.artifact_type.clone().unwrap_or_default();
            let why = format!("a collection of type {ty:?} has that name");
            Self::invalid(&target, format!("cannot rename {c} to {to:?}: {why}"))
        };
        let existing = self.state(&target).await?;
        if existing.exists() {
            return Err(taken(&existing));
        }
        let (moved, ()) = self
            .commit(c, |s| {
                if !s.exists() {
                    return Err(self.unknown(c));
                }
                Ok((Some(Op::RenamedTo { name: to.to_owned() }), ()))
            })
            .await?;
        let mut snapshot = moved.clone();
        snapshot.moved_to = None;
        let adopted = self
            .commit(&target, |t| {
                if t.exists() {
                    return Err(taken(t));
                }
                let op = Op::Adopted { from: c.name.clone(), state: Box::new(snapshot.clone()) };
                Ok((Some(op), ()))
            })
            .await;
        let Err(e) = adopted else { return Ok(target) };
        // Another writer took the name between the check and the commit: the versions come
        // back under the old name (an `Adopted` on a moved log undoes the move).
        self.commit(c, |s| {
            let undo = Op::Adopted { from: c.name.clone(), state: Box::new(snapshot.clone()) };
            Ok(((s.moved_to.as_deref() == Some(to)).then_some(undo), ()))
        })
        .await?;
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::testing::TempRegistry;

    fn path(name: &str) -> CollectionPath {
        CollectionPath::new("acme", "bikes", name).unwrap()
    }

    #[test]
    fn a_rename_moves_everything_and_old_ids_follow() {
        let t = TempRegistry::default();
        let (a, b) = (path("a"), path("b"));
        t.log(&a, &[("f", b"zero")], &["best"], None);
        t.log(&a, &[("f", b"one")], &[], None);
        let r = &t.registry;
        t.runtime.block_on(async {
            r.set_tags(&a, 0, &["gold".into()], &[]).await.unwrap();
            assert_eq!(r.rename_collection(&a, "b").await.unwrap(), b);
            let old = r.state(&a).await.unwrap();
            assert!(!old.exists(), "{old:?}");
            assert!(r.resolve(&a, &Selector::Version(0)).await.is_err());
            let v0 = r.resolve(&b, &Selector::Alias("best".into())).await.unwrap();
            assert_eq!((v0.record.version, v0.record.tags.len()), (0, 1));
            let (to, state) = r.follow(&a).await.unwrap();
            assert_eq!((to, state.versions.len()), (b.clone(), 2));
        });
        // The old name is free for a new collection, which starts without the old versions.
        t.log(&a, &[("f", b"new")], &[], None);
        t.runtime.block_on(async {
            let fresh = r.existing_state(&a).await.unwrap();
            assert_eq!(fresh.versions.keys().copied().collect::<Vec<_>>(), [2]);
            assert_eq!(r.follow(&a).await.unwrap().0, a);
            // A taken name refuses the rename and leaves both as they were.
            let err = r.rename_collection(&a, "b").await.unwrap_err();
            assert!(err.to_string().contains("has that name"), "{err}");
            assert!(r.existing_state(&a).await.unwrap().exists());
            // A name whose collection was renamed away or deleted takes a rename: back and forth.
            r.delete_collection(&a).await.unwrap();
            assert_eq!(r.rename_collection(&b, "a").await.unwrap(), a);
            assert_eq!(r.rename_collection(&a, "b").await.unwrap(), b);
            let state = r.existing_state(&b).await.unwrap();
            assert_eq!(state.versions.keys().copied().collect::<Vec<_>>(), [0, 1]);
            assert!(!r.live_state(&a).await.unwrap().exists());
        });
    }

    #[test]
    fn gc_keeps_renamed_versions_and_reclaims_deleted_collections() {
        let t = TempRegistry::default();
        let (a, b) = (path("a"), path("b"));
        t.log(&a, &[("f", b"zero")], &[], None);
        let r = &t.registry;
        let gc = || r.gc(std::time::Duration::ZERO);
        t.runtime.block_on(async {
            let v0 = r.resolve(&a, &Selector::Version(0)).await.unwrap();
            let blob = super::super::entry_blob_key(&r.manifest(&v0).await.unwrap().contents["f"])
                .unwrap();
            // Only the first half of a rename landed: the old log still holds the versions.
            r.commit(&a, |_| Ok((Some(Op::RenamedTo { name: "b".into() }), ()))).await.unwrap();
            assert_eq!(gc().await.unwrap().blobs_deleted, 0);
            assert!(r.store().head(&blob).await.unwrap().is_some());
            // Both halves: the new log holds them.
            let moved = r.state(&a).await.unwrap();
            let state = Box::new(CollectionState { moved_to: None, ..moved });
            r.commit(&b, |_| {
                Ok((Some(Op::Adopted { from: "a".into(), state: state.clone() }), ()))
            })
            .await
            .unwrap();
            assert_eq!(gc().await.unwrap().blobs_deleted, 0);
            let v0 = r.resolve(&b, &Selector::Version(0)).await.unwrap();
            assert_eq!(r.manifest(&v0).await.unwrap().contents.len(), 1);
            // A deleted collection's files go, also those the old log still lists.
            r.delete_collection(&b).await.unwrap();
            assert_eq!(gc().await.unwrap().blobs_deleted, 1);
            assert!(r.store().head(&blob).await.unwrap().is_none());
        });
    }

    #[test]
    fn expired_versions_leave_reads_and_their_aliases() {
        let t = TempRegistry::default();
        let a = path("a");
        t.log(&a, &[("f", b"zero")], &["best"], None);
        t.log(&a, &[("f", b"one")], &[], None);
        let r = &t.registry;
        t.runtime.block_on(async {
            r.set_ttl(&a, 1, Ttl::Seconds(1)).await.unwrap();
            let state = r.state(&a).await.unwrap();
            let later = Utc::now() + chrono::Duration::seconds(5);
            let live = state.clone().live(later);
            assert_eq!(live.versions.keys().copied().collect::<Vec<_>>(), [0]);
            assert_eq!(live.aliases_of(0), ["latest", "best"]);
            // The collection's default reaches versions that inherit, not those that opted out.
            let edit = CollectionEdit { default_ttl: Some(Ttl::Seconds(2)), ..Default::default() };
            r.edit_collection(&a, edit).await.unwrap();
            r.set_ttl(&a, 1, Ttl::Never).await.unwrap();
            let state = r.state(&a).await.unwrap();
            assert_eq!((state.ttl_seconds(0), state.ttl_seconds(1)), (Some(2), None));
            assert_eq!(state.live(later).versions.keys().copied().collect::<Vec<_>>(), [1]);
        });
    }

    #[test]
    fn a_version_linked_into_a_registry_does_not_expire() {
        let t = TempRegistry::default();
        let (kept, plain) = (path("kept"), path("plain"));
        t.log(&kept, &[("f", b"kept")], &[], None);
        t.log(&plain, &[("f", b"plain")], &[], None);
        let r = &t.registry;
        let registry = CollectionPath::new("acme-org", "wandb-registry-model", "prod").unwrap();
        let portfolio = path("portfolio");
        t.runtime.block_on(async {
            r.link(&kept, 0, &registry, &[]).await.unwrap();
            r.link(&plain, 0, &portfolio, &[]).await.unwrap();
            for c in [&kept, &plain] {
                r.set_ttl(c, 0, Ttl::Seconds(1)).await.unwrap();
            }
            tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
            // A link into a plain portfolio keeps nothing alive; one into a registry does.
            assert!(r.live_state(&plain).await.unwrap().versions.is_empty());
            let live = r.live_state(&kept).await.unwrap();
            assert_eq!(live.versions.keys().copied().collect::<Vec<_>>(), [0]);
            // The fold does not know of links: the version is still past its TTL for writers.
            assert!(r.set_ttl(&kept, 0, Ttl::Never).await.is_err());
            // Unlinked, it expires as its TTL says.
            r.unlink(&kept, 0, &registry).await.unwrap();
            assert!(r.live_state(&kept).await.unwrap().versions.is_empty());
        });
    }

    #[test]
    fn tags_follow_w_and_b_rules() {
        for ok in ["a", "needs review", "x_1-y", "a  b", "ünï"] {
            assert!(validate_tag(ok).is_ok(), "{ok:?}");
        }
        for bad in ["", " a", "a ", "a/b", "x:y", "a.b", &"x".repeat(129)] {
            assert!(validate_tag(bad).is_err(), "{bad:?}");
        }
    }
}
