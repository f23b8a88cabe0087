//! The fold of one artifact collection's commit log (`commit_log`): versions, aliases,
//! descriptions, deletions, as a pure function of tagged `Op`s, fuzzed in `log_fuzz`.
//!
//! A commit that does not apply to the state it follows (e.g. it aliases a version deleted
//! meanwhile) is refused by writers and skipped by readers (`Fold::replay`), so every reader
//! folds a log into the same state.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use super::commit_log::{Fold, FoldError, Replayed};
use crate::names::LATEST;

/// One published change to a collection.
pub type Commit = super::commit_log::Commit<Op>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Op {
    /// Publishes version `version`; `latest` and `aliases` move to it.
    Create {
        version: u32,
        digest: String,
        manifest: String,
        #[serde(rename = "type")]
        artifact_type: String,
        description: Option<String>,
        metadata: Value,
        size: u64,
        file_count: u64,
        aliases: Vec<String>,
        /// W&B's `historyStep` (absent from logs written before it was kept).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        history_step: Option<u64>,
    },
    /// Moves `add` to `version` (taking them from other versions) and drops `remove` from it.
    Aliases {
        version: u32,
        add: Vec<String>,
        remove: Vec<String>,
    },
    Edit {
        version: u32,
        description: Option<String>,
        metadata: Option<Value>,
    },
    Delete {
        version: u32,
    },
    /// Publishes version `version` of a portfolio as a link to `source`, whose manifest and
    /// digest it names; `latest` and `aliases` move to it. A collection holds links or logged
    /// versions, never both.
    Link {
        version: u32,
        source: LinkSource,
        digest: String,
        manifest: String,
        #[serde(rename = "type")]
        artifact_type: String,
        size: u64,
        file_count: u64,
        aliases: Vec<String>,
    },
    /// Adds and removes tags of one version.
    Tags {
        version: u32,
        add: Vec<String>,
        remove: Vec<String>,
    },
    /// Sets one version's time-to-live.
    Ttl {
        version: u32,
        ttl: Ttl,
    },
    /// Edits the collection itself (see `CollectionEdit`).
    Collection(CollectionEdit),
    /// Deletes the collection with all its versions; version numbers are still not reused.
    DeleteCollection,
    /// The collection now lives under `name` (the commit before `name`'s `Adopted`). The
    /// versions stay in this fold, so `gc` keeps them until the new log has them.
    RenamedTo {
        name: String,
    },
    /// Commit 1 of a collection renamed from `from`: the state it had there.
    Adopted {
        from: String,
        #[serde(deserialize_with = "state_via_value")]
        state: Box<CollectionState>,
    },
}

/// A version's time-to-live policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ttl {
    /// The collection's default TTL, if it has one.
    #[default]
    Inherit,
    /// No TTL, even when the collection has a default.
    Never,
    Seconds(u64),
}

impl Ttl {
    pub fn is_inherit(&self) -> bool {
        *self == Ttl::Inherit
    }

    /// The TTL in force, in seconds, given the collection's default (`None`: never expires).
    pub fn in_force(self, default_seconds: Option<u64>) -> Option<u64> {
        match self {
            Ttl::Inherit => default_seconds,
            Ttl::Never => None,
            Ttl::Seconds(s) => Some(s),
        }
    }

    /// From W&B's `ttlDurationSeconds`: -1 inherit, -2 (or any other non-positive) none.
    pub fn from_wandb(seconds: i64) -> Ttl {
        match seconds {
            -1 => Ttl::Inherit,
            s if s > 0 => Ttl::Seconds(s as u64),
            _ => Ttl::Never,
        }
    }
}

/// What `Op::Collection` changes; `None` fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CollectionEdit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_tags: Vec<String>,
    /// `Never` clears the default; `Inherit` is refused (there is nothing to inherit from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_ttl: Option<Ttl>,
    /// A new type for the collection (W&B's `moveArtifactSequence`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

/// A state inside an op: `Op` is internally tagged, and serde buffers such an enum's fields in
/// a form that cannot read JSON's string keys back as version numbers; a `Value` can.
pub(super) fn state_via_value<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Box<CollectionState>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    serde_json::from_value(v).map_err(serde::de::Error::custom)
}

/// The logged version a link names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LinkSource {
    pub entity: String,
    pub project: String,
    pub name: String,
    pub version: u32,
}

/// One live version as the log describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub version: u32,
    pub digest: String,
    pub manifest: String,
    pub description: Option<String>,
    pub metadata: Value,
    pub size: u64,
    pub file_count: u64,
    pub created_at: DateTime<Utc>,
    /// Set on a portfolio's versions: the logged version this one links to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<LinkSource>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub tags: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "Ttl::is_inherit")]
    pub ttl: Ttl,
    /// The logging run's history step (W&B's `historyStep`), when the SDK sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_step: Option<u64>,
}

/// The fold of a collection's log up to commit `seq`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CollectionState {
    /// Last commit applied; 0 means none (commits start at 1).
    pub seq: u64,
    pub artifact_type: Option<String>,
    /// Version numbers are never reused, even after deletion.
    pub next_version: u32,
    pub versions: BTreeMap<u32, VersionRecord>,
    pub aliases: BTreeMap<String, u32>,
    /// A portfolio (W&B's `ArtifactPortfolio`) holds links; it is one from its first link.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub portfolio: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub tags: BTreeSet<String>,
    /// The TTL of versions that inherit theirs (W&B's team default, per collection here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_ttl_seconds: Option<u64>,
    /// Set by `RenamedTo`: the collection is gone from this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<String>,
    /// Set by `Adopted`: the name this collection was renamed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted_from: Option<String>,
    /// Time of the last commit applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    /// Versions past their TTL that stay readable because a registry links them (W&B does not
    /// expire a version linked into a registry). Not part of the log: the registry sets it when
    /// it reads the collection (`Registry::refresh`), and the fold never looks at it.
    #[serde(skip)]
    pub ttl_exempt: BTreeSet<u32>,
}

impl Fold for CollectionState {
    type Op = Op;

    fn seq(&self) -> u64 {
        self.seq
    }

    fn skip_to(&mut self, seq: u64) {
        self.seq = seq;
    }

    fn fold_op(&mut self, c: &Commit) -> Result<(), FoldError> {
        let folded = match &c.op {
            Op::Create { artifact_type, aliases, .. } => {
                self.fold_create(c, artifact_type, aliases)
            }
            op if self.moved_to.is_some() && !matches!(op, Op::Adopted { .. }) => Err(format!(
                "changes a collection renamed to {:?}",
                self.moved_to.clone().unwrap_or_default()
            )),
            Op::Aliases { version, add, remove } => self.fold_aliases(*version, add, remove),
            Op::Edit { version, description, metadata } => {
                self.fold_edit(*version, description.as_deref(), metadata.as_ref())
            }
            Op::Delete { version } => self.fold_delete(*version),
            Op::Link { source, artifact_type, aliases, .. } => {
                self.fold_link(c, source, artifact_type, aliases)
            }
            op @ (Op::Tags { .. }
            | Op::Ttl { .. }
            | Op::Collection(_)
            | Op::DeleteCollection
            | Op::RenamedTo { .. }
            | Op::Adopted { .. }) => self.apply_retention(op, c.time),
        };
        folded.map_err(|reason| FoldError::Invalid { seq: c.seq, reason })?;
        self.updated_at = Some(c.time);
        Ok(())
    }

    /// The invariants every fold keeps: records under their own numbers, numbers below the
    /// counter, aliases naming live versions, valid alias names, a type once there are versions.
    fn check(&self) -> Result<(), String> {
        let state = self;
        if let Some((&v, r)) = state.versions.iter().find(|(v, r)| **v != r.version) {
            return Err(format!("records v{} under v{v}", r.version));
        }
        if let Some(&newest) = state.versions.keys().next_back()
            && newest >= state.next_version
        {
            return Err(format!("has v{newest} but the next version is v{}", state.next_version));
        }
        if let Some((a, v)) = state.aliases.iter().find(|(_, v)| !state.versions.contains_key(v)) {
            return Err(format!("alias {a:?} names v{v}, which it does not have"));
        }
        if let Some(a) = state.aliases.keys().find(|a| !valid_alias(a)) {
            return Err(format!("has the invalid alias {a:?}"));
        }
        if !state.versions.is_empty() && state.artifact_type.is_none() {
            return Err("has versions but no type".into());
        }
        if let Some(v) = state.versions.values().find(|v| v.source.is_some() != state.portfolio) {
            return Err(format!("v{} is not the kind of version its collection holds", v.version));
        }
        state.check_retention()?;
        Ok(())
    }
}

impl CollectionState {
    /// A log's version, or a link's: the record a create or link commit publishes.
    fn record_of(c: &Commit) -> Option<VersionRecord> {
        let record = match &c.op {
            Op::Create {
                version,
                digest,
                manifest,
                description,
                metadata,
                size,
                file_count,
                history_step,
                ..
            } => VersionRecord {
                version: *version,
                digest: digest.clone(),
                manifest: manifest.clone(),
                description: description.clone(),
                metadata: metadata.clone(),
                size: *size,
                file_count: *file_count,
                created_at: c.time,
                source: None,
                tags: BTreeSet::new(),
                ttl: Ttl::Inherit,
                history_step: *history_step,
            },
            Op::Link { version, source, digest, manifest, size, file_count, .. } => VersionRecord {
                version: *version,
                digest: digest.clone(),
                manifest: manifest.clone(),
                description: None,
                metadata: Value::Null,
                size: *size,
                file_count: *file_count,
                created_at: c.time,
                source: Some(source.clone()),
                tags: BTreeSet::new(),
                ttl: Ttl::Inherit,
                history_step: None,
            },
            _ => return None,
        };
        Some(record)
    }

    fn fold_create(
        &mut self,
        c: &Commit,
        artifact_type: &str,
        aliases: &[String],
    ) -> Result<(), String> {
        if self.moved_to.is_some() {
            // The name is free again: a new collection starts under it (what was renamed
            // here stays renamed, for gc).
            *self = CollectionState {
                seq: self.seq,
                next_version: self.next_version,
                adopted_from: self.adopted_from.take(),
                ..CollectionState::default()
            };
        }
        let record = Self::record_of(c).ok_or("is not a create")?;
        if self.portfolio {
            return Err(format!("creates v{} in a portfolio of links", record.version));
        }
        self.publish(record, artifact_type, aliases)
    }

    fn fold_aliases(
        &mut self,
        version: u32,
        add: &[String],
        remove: &[String],
    ) -> Result<(), String> {
        if !self.versions.contains_key(&version) {
            return Err(format!("aliases v{version}, which does not exist"));
        }
        if let Some(a) = add.iter().find(|a| !valid_alias(a)) {
            return Err(format!("sets the invalid alias {a:?}"));
        }
        for a in remove {
            if self.aliases.get(a) == Some(&version) {
                self.aliases.remove(a);
            }
        }
        for a in add {
            self.aliases.insert(a.clone(), version);
        }
        Ok(())
    }

    fn fold_edit(
        &mut self,
        version: u32,
        description: Option<&str>,
        metadata: Option<&Value>,
    ) -> Result<(), String> {
        let Some(v) = self.versions.get_mut(&version) else {
            return Err(format!("edits v{version}, which does not exist"));
        };
        if let Some(d) = description {
            v.description = Some(d.to_owned());
        }
        if let Some(m) = metadata {
            v.metadata = m.clone();
        }
        Ok(())
    }

    fn fold_delete(&mut self, version: u32) -> Result<(), String> {
        if self.versions.remove(&version).is_none() {
            return Err(format!("deletes v{version}, which does not exist"));
        }
        let held_latest = self.aliases.get(LATEST) == Some(&version);
        self.aliases.retain(|_, v| *v != version);
        // Deleting the version `latest` names moves it to the newest live one. Only
        // then: `latest` is an alias like the others, and one a user removed stays
        // removed. (Logs written while `latest` could not be removed fold as before:
        // there it was absent only after its own version went.)
        if held_latest && let Some((&newest, _)) = self.versions.iter().next_back() {
            self.aliases.insert(LATEST.to_owned(), newest);
        }
        Ok(())
    }

    fn fold_link(
        &mut self,
        c: &Commit,
        source: &LinkSource,
        artifact_type: &str,
        aliases: &[String],
    ) -> Result<(), String> {
        let record = Self::record_of(c).ok_or("is not a link")?;
        if !self.portfolio && self.next_version > 0 {
            return Err(format!("links v{} into a collection of logs", record.version));
        }
        if let Some(v) = self.link_to(source) {
            return Err(format!("links its v{} a second time", v.version));
        }
        self.publish(record, artifact_type, aliases)?;
        self.portfolio = true;
        Ok(())
    }

    /// Adds the next version: `latest` and `aliases` move to it.
    fn publish(
        &mut self,
        record: VersionRecord,
        artifact_type: &str,
        aliases: &[String],
    ) -> Result<(), String> {
        let version = record.version;
        if version != self.next_version || self.versions.contains_key(&version) {
            return Err(format!(
                "creates v{version} but the next version is v{}",
                self.next_version
            ));
        }
        // Wrapping would hand out v0 again and overwrite it.
        let Some(next) = version.checked_add(1) else {
            return Err(format!("creates v{version}, but the version counter cannot go further"));
        };
        if let Some(a) = aliases.iter().find(|a| !valid_alias(a)) {
            return Err(format!("sets the invalid alias {a:?}"));
        }
        self.artifact_type.get_or_insert_with(|| artifact_type.to_owned());
        self.versions.insert(version, record);
        self.next_version = next;
        self.aliases.insert(LATEST.to_owned(), version);
        for a in aliases {
            self.aliases.insert(a.clone(), version);
        }
        Ok(())
    }

    /// The live link to `source`, if this portfolio has one.
    pub fn link_to(&self, source: &LinkSource) -> Option<&VersionRecord> {
        self.versions.values().find(|v| v.source.as_ref() == Some(source))
    }

    /// Aliases of one version, sorted with `latest` first.
    pub fn aliases_of(&self, version: u32) -> Vec<String> {
        let mut out: Vec<String> =
            self.aliases.iter().filter(|(_, v)| **v == version).map(|(a, _)| a.clone()).collect();
        out.sort_by_key(|a| (a != LATEST, a.clone()));
        out
    }

    /// The logged version with this content; a link is never one (logging into a portfolio is
    /// refused, not turned into a move of the link's aliases).
    pub fn version_by_digest<'a>(&'a self, digest: &'a str) -> Option<&'a VersionRecord> {
        self.logged_with_digest(digest).next()
    }

    /// The logged versions (links excluded) with this content.
    pub fn logged_with_digest<'a>(
        &'a self,
        digest: &'a str,
    ) -> impl Iterator<Item = &'a VersionRecord> + 'a {
        self.versions.values().filter(move |v| v.digest == digest && v.source.is_none())
    }

    pub fn latest(&self) -> Option<&VersionRecord> {
        self.aliases.get(LATEST).and_then(|v| self.versions.get(v))
    }
}

/// What differs between two states of one collection, for a human: versions one has and the
/// other lacks, then any other field.
pub fn difference(commits: &CollectionState, checkpoint: &CollectionState) -> String {
    let only = |a: &CollectionState, b: &CollectionState| -> Vec<String> {
        a.versions.keys().filter(|v| !b.versions.contains_key(v)).map(|v| format!("v{v}")).collect()
    };
    let (missing, extra) = (only(commits, checkpoint), only(checkpoint, commits));
    let mut out = Vec::new();
    if !missing.is_empty() {
        out.push(format!("the commits have {} but the checkpoint does not", missing.join(", ")));
    }
    if !extra.is_empty() {
        out.push(format!("the checkpoint has {} but the commits do not", extra.join(", ")));
    }
    if out.is_empty() {
        let field = if commits.versions != checkpoint.versions {
            "a version's record"
        } else if commits.aliases != checkpoint.aliases {
            "the aliases"
        } else if commits.portfolio != checkpoint.portfolio {
            "the kind of collection"
        } else if commits.next_version != checkpoint.next_version {
            "the next version number"
        } else if commits.artifact_type != checkpoint.artifact_type {
            "the type"
        } else {
            "the collection's description, tags, TTL or name"
        };
        out.push(format!("{field} differ"));
    }
    out.join("; ")
}

/// `latest` or an alias a user may set.
fn valid_alias(a: &str) -> bool {
    a == LATEST || crate::names::validate_user_alias(a).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(seq: u64, version: u32, digest: &str, aliases: &[&str]) -> Commit {
        Commit {
            seq,
            time: Utc::now(),
            writer: "t".into(),
            op: Op::Create {
                version,
                digest: digest.into(),
                manifest: format!("m/{digest}"),
                artifact_type: "dataset".into(),
                description: None,
                metadata: Value::Null,
                size: 1,
                file_count: 1,
                aliases: aliases.iter().map(|s| s.to_string()).collect(),
                history_step: None,
            },
        }
    }

    fn op(seq: u64, op: Op) -> Commit {
        Commit { seq, time: Utc::now(), writer: "t".into(), op }
    }

    #[test]
    fn aliases_move_and_stay_unique() {
        let mut s = CollectionState::default();
        s.apply(&create(1, 0, "d0", &["best"])).unwrap();
        s.apply(&create(2, 1, "d1", &[])).unwrap();
        assert_eq!(s.aliases_of(0), ["best"]);
        assert_eq!(s.aliases_of(1), ["latest"]);
        s.apply(&op(3, Op::Aliases { version: 1, add: vec!["best".into()], remove: vec![] }))
            .unwrap();
        assert_eq!(s.aliases_of(0), Vec::<String>::new());
        assert_eq!(s.aliases_of(1), ["latest", "best"]);
        s.apply(&op(4, Op::Aliases { version: 1, add: vec![], remove: vec!["best".into()] }))
            .unwrap();
        assert_eq!(s.aliases_of(1), ["latest"]);
    }

    #[test]
    fn delete_keeps_numbers_and_moves_latest() {
        let mut s = CollectionState::default();
        s.apply(&create(1, 0, "d0", &[])).unwrap();
        s.apply(&create(2, 1, "d1", &["prod"])).unwrap();
        s.apply(&op(3, Op::Delete { version: 1 })).unwrap();
        assert_eq!(s.latest().unwrap().version, 0);
        assert!(!s.aliases.contains_key("prod"));
        s.apply(&create(4, 2, "d2", &[])).unwrap();
        assert_eq!(s.versions.keys().copied().collect::<Vec<_>>(), [0, 2]);
    }

    #[test]
    fn gaps_and_bad_versions_are_refused() {
        let mut s = CollectionState::default();
        assert_eq!(s.apply(&create(2, 0, "d", &[])), Err(FoldError::Gap { prev: 0, seq: 2 }));
        assert!(s.apply(&create(1, 5, "d", &[])).is_err());
        assert!(s.apply(&op(1, Op::Delete { version: 0 })).is_err());
        assert_eq!(s, CollectionState::default());
    }

    #[test]
    fn the_version_counter_refuses_to_wrap() {
        // A crafted checkpoint at the end of the counter: creating the last number would wrap
        // the counter to v0 and overwrite it.
        let mut s = CollectionState::default();
        s.apply(&create(1, 0, "d0", &[])).unwrap();
        s.next_version = u32::MAX;
        let before = s.clone();
        let err = s.apply(&create(2, u32::MAX, "d1", &[])).unwrap_err();
        assert!(err.to_string().contains("cannot go further"), "{err}");
        assert_eq!(s, before);
        assert_eq!(s.versions[&0].digest, "d0");
        // A checkpoint whose counter is below a version it holds is refused as a whole.
        let mut bad = before.clone();
        bad.next_version = 0;
        let bytes = serde_json::to_vec(&bad).unwrap();
        assert!(CollectionState::from_checkpoint(1, &bytes).unwrap_err().contains("next version"));
    }

    #[test]
    fn readers_skip_commits_that_do_not_apply_and_stay_in_step() {
        // The `log`/`rm` race: an alias commit for a version deleted just before.
        let mut s = CollectionState::default();
        s.apply(&create(1, 0, "d0", &[])).unwrap();
        s.apply(&create(2, 1, "d1", &[])).unwrap();
        s.apply(&op(3, Op::Delete { version: 0 })).unwrap();
        let stale = op(4, Op::Aliases { version: 0, add: vec!["latest".into()], remove: vec![] });
        let bytes = serde_json::to_vec(&stale).unwrap();
        let replayed = s.replay(4, &bytes).unwrap();
        assert!(matches!(&replayed, Replayed::Skipped { reason, .. } if reason.contains("v0")));
        assert_eq!((s.seq, s.latest().unwrap().version), (4, 1));
        // Bytes that are no commit, or a commit under another number, are skipped too.
        assert!(matches!(s.replay(5, b"{\"seq\": 5"), Ok(Replayed::Unreadable { .. })));
        let moved = serde_json::to_vec(&create(9, 2, "d2", &[])).unwrap();
        assert!(matches!(s.replay(6, &moved), Ok(Replayed::Unreadable { .. })));
        // The next writer's commit applies after them.
        let bytes = serde_json::to_vec(&create(7, 2, "d2", &["best"])).unwrap();
        assert_eq!(s.replay(7, &bytes), Ok(Replayed::Applied));
        assert_eq!(s.aliases_of(2), ["latest", "best"]);
        // A gap is still an error.
        assert!(s.replay(9, &bytes).is_err());
    }

    #[test]
    fn latest_is_an_alias_a_user_may_remove_and_a_log_moves_back() {
        let mut s = CollectionState::default();
        s.apply(&create(1, 0, "d0", &[])).unwrap();
        s.apply(&create(2, 1, "d1", &[])).unwrap();
        let drop_latest =
            Op::Aliases { version: 1, add: vec!["replaced".into()], remove: vec![LATEST.into()] };
        s.apply(&op(3, drop_latest)).unwrap();
        assert_eq!(s.aliases_of(1), ["replaced"]);
        assert!(s.latest().is_none());
        // Deleting another version does not bring it back.
        s.apply(&op(4, Op::Delete { version: 0 })).unwrap();
        assert!(s.latest().is_none());
        // It may be set by hand, and the next log moves it.
        s.apply(&op(5, Op::Aliases { version: 1, add: vec![LATEST.into()], remove: vec![] }))
            .unwrap();
        assert_eq!(s.latest().unwrap().version, 1);
        s.apply(&create(6, 2, "d2", &[])).unwrap();
        assert_eq!(s.aliases_of(2), ["latest"]);
        assert_eq!(s.aliases_of(1), ["replaced"]);
    }

    #[test]
    fn creates_keep_their_history_step_and_older_ones_read_without_it() {
        let old = r#"{"seq":1,"time":"2026-01-01T00:00:00Z","writer":"w","op":{"kind":"create",
            "version":0,"digest":"d0","manifest":"m","type":"dataset","description":null,
            "metadata":{},"size":1,"file_count":1,"aliases":[]}}"#;
        let mut s = CollectionState::default();
        assert_eq!(s.replay(1, old.as_bytes()), Ok(Replayed::Applied));
        assert_eq!(s.versions[&0].history_step, None);
        let mut c = create(2, 1, "d1", &[]);
        if let Op::Create { history_step, .. } = &mut c.op {
            *history_step = Some(7);
        }
        let bytes = serde_json::to_vec(&c).unwrap();
        assert!(!serde_json::to_string(&create(9, 9, "x", &[])).unwrap().contains("history_step"));
        assert_eq!(s.replay(2, &bytes), Ok(Replayed::Applied));
        assert_eq!(s.versions[&1].history_step, Some(7));
    }

    #[test]
    fn logs_written_before_latest_was_removable_fold_as_they_did() {
        // Every shape such a log can have: latest deleted with its version (moves to the newest
        // live one), another version deleted (latest stays), everything deleted (no latest).
        let mut s = CollectionState::default();
        s.apply(&create(1, 0, "d0", &[])).unwrap();
        s.apply(&create(2, 1, "d1", &[])).unwrap();
        s.apply(&create(3, 2, "d2", &[])).unwrap();
        s.apply(&op(4, Op::Delete { version: 2 })).unwrap();
        assert_eq!(s.latest().unwrap().version, 1);
        s.apply(&op(5, Op::Delete { version: 0 })).unwrap();
        assert_eq!(s.latest().unwrap().version, 1);
        s.apply(&op(6, Op::Delete { version: 1 })).unwrap();
        assert!(s.latest().is_none() && s.aliases.is_empty());
        s.apply(&create(7, 3, "d3", &[])).unwrap();
        assert_eq!(s.latest().unwrap().version, 3);
    }

    #[test]
    fn invalid_aliases_never_enter_the_state() {
        let mut s = CollectionState::default();
        assert!(s.apply(&create(1, 0, "d0", &["a/b"])).is_err());
        s.apply(&create(1, 0, "d0", &[])).unwrap();
        for bad in ["", "v3", "x:y"] {
            let c = op(2, Op::Aliases { version: 0, add: vec![bad.into()], remove: vec![] });
            assert!(s.apply(&c).is_err(), "{bad:?}");
        }
    }
}

// Arbitrary commit logs and arbitrary bytes through the fold (the fold's fuzz target).
#[cfg(test)]
#[path = "log_fuzz.rs"]
mod fuzz;
