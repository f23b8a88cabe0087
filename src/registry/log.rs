//! The append-only commit log of one artifact collection, and the state it folds into.
//!
//! Commit `N` lives at `<collection>/commits/<N:020>.json` and is created only if absent, so two
//! writers can never both publish commit `N`: the loser re-reads and decides again. State (versions,
//! aliases, descriptions, deletions) is the fold of the log. Every `CHECKPOINT_EVERY` commits a
//! writer also stores the folded state as `<collection>/checkpoints/<N:020>.json` (deterministic,
//! so racing writers store identical bytes), and readers start from the newest checkpoint.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::names::LATEST;

/// Commits between checkpoints: a reader replays at most this many commits.
pub const CHECKPOINT_EVERY: u64 = 32;

/// One published change to a collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commit {
    pub seq: u64,
    pub time: DateTime<Utc>,
    /// `host:pid`, for humans reading the log.
    pub writer: String,
    pub op: Op,
}

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
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FoldError {
    #[error("commit {seq} follows commit {prev}: the log has a gap")]
    Gap { prev: u64, seq: u64 },
    #[error("commit {seq}: {reason}")]
    Invalid { seq: u64, reason: String },
}

impl CollectionState {
    pub fn apply(&mut self, c: &Commit) -> Result<(), FoldError> {
        if c.seq != self.seq + 1 {
            return Err(FoldError::Gap { prev: self.seq, seq: c.seq });
        }
        let invalid = |reason: String| FoldError::Invalid { seq: c.seq, reason };
        match &c.op {
            Op::Create {
                version,
                digest,
                manifest,
                artifact_type,
                description,
                metadata,
                size,
                file_count,
                aliases,
            } => {
                if *version != self.next_version {
                    return Err(invalid(format!(
                        "creates v{version} but the next version is v{}",
                        self.next_version
                    )));
                }
                self.artifact_type.get_or_insert_with(|| artifact_type.clone());
                self.versions.insert(
                    *version,
                    VersionRecord {
                        version: *version,
                        digest: digest.clone(),
                        manifest: manifest.clone(),
                        description: description.clone(),
                        metadata: metadata.clone(),
                        size: *size,
                        file_count: *file_count,
                        created_at: c.time,
                    },
                );
                self.next_version += 1;
                self.aliases.insert(LATEST.to_owned(), *version);
                for a in aliases {
                    self.aliases.insert(a.clone(), *version);
                }
            }
            Op::Aliases { version, add, remove } => {
                if !self.versions.contains_key(version) {
                    return Err(invalid(format!("aliases v{version}, which does not exist")));
                }
                for a in remove {
                    if self.aliases.get(a) == Some(version) {
                        self.aliases.remove(a);
                    }
                }
                for a in add {
                    self.aliases.insert(a.clone(), *version);
                }
            }
            Op::Edit { version, description, metadata } => {
                let Some(v) = self.versions.get_mut(version) else {
                    return Err(invalid(format!("edits v{version}, which does not exist")));
                };
                if let Some(d) = description {
                    v.description = Some(d.clone());
                }
                if let Some(m) = metadata {
                    v.metadata = m.clone();
                }
            }
            Op::Delete { version } => {
                if self.versions.remove(version).is_none() {
                    return Err(invalid(format!("deletes v{version}, which does not exist")));
                }
                self.aliases.retain(|_, v| v != version);
                // `latest` always names the newest live version while one exists.
                if let Some((&newest, _)) = self.versions.iter().next_back() {
                    self.aliases.entry(LATEST.to_owned()).or_insert(newest);
                }
            }
        }
        self.seq = c.seq;
        Ok(())
    }

    /// Aliases of one version, sorted with `latest` first.
    pub fn aliases_of(&self, version: u32) -> Vec<String> {
        let mut out: Vec<String> =
            self.aliases.iter().filter(|(_, v)| **v == version).map(|(a, _)| a.clone()).collect();
        out.sort_by_key(|a| (a != LATEST, a.clone()));
        out
    }

    pub fn version_by_digest(&self, digest: &str) -> Option<&VersionRecord> {
        self.versions.values().find(|v| v.digest == digest)
    }

    pub fn latest(&self) -> Option<&VersionRecord> {
        self.aliases.get(LATEST).and_then(|v| self.versions.get(v))
    }
}

pub fn commit_key(collection_prefix: &str, seq: u64) -> String {
    format!("{collection_prefix}/commits/{seq:020}.json")
}

pub fn checkpoint_key(collection_prefix: &str, seq: u64) -> String {
    format!("{collection_prefix}/checkpoints/{seq:020}.json")
}

/// The sequence number of a commit or checkpoint key.
pub fn seq_of_key(key: &str) -> Option<u64> {
    key.rsplit('/').next()?.strip_suffix(".json")?.parse().ok()
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
    fn keys_sort_by_sequence() {
        assert!(commit_key("c", 9) < commit_key("c", 10));
        assert_eq!(seq_of_key(&commit_key("a/b", 42)), Some(42));
    }
}
