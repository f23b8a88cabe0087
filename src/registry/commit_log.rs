//! One create-only commit log, folded into a state: the shape of every mutable thing the
//! registry keeps (collections, runs) so that many writers on one bucket always agree.
//!
//! Commit `N` lives at `<prefix>/commits/<N:020>.json` (`layout::commit`) and is created only if
//! absent, so two writers can never both publish commit `N`: the loser re-reads and decides
//! again. Every `CHECKPOINT_EVERY` commits the winner also stores the folded state at
//! `<prefix>/checkpoints/<N:020>.json` (deterministic, so racing writers store identical bytes),
//! and readers start from the newest checkpoint.
//!
//! Reading is lenient where one bad object would otherwise take everything down: names that
//! are not `<20 digits>.json` are ignored, a checkpoint that does not parse or hold together is
//! passed over for the commits, and a commit that does not parse or apply is skipped as a no-op
//! with a warning. All readers skip the same commits, so they agree. A state with no commit
//! behind it, or a gap, is corruption. Writers are strict: a commit is applied to the state it
//! follows before it is created. `gc` is stricter still (`prove`): anything a reader would warn
//! about stops it.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Registry, RegistryError, layout};

/// Commits between checkpoints: a reader replays at most this many commits.
pub const CHECKPOINT_EVERY: u64 = 32;
/// Attempts at publishing a commit before giving up on a very busy log.
pub const MAX_COMMIT_ATTEMPTS: u32 = 200;
/// Commits fetched at once while replaying (applied in order).
const GETS_IN_FLIGHT: usize = 16;

/// One published change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commit<O> {
    pub seq: u64,
    pub time: DateTime<Utc>,
    /// `host:pid`, for humans reading the log.
    pub writer: String,
    pub op: O,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum FoldError {
    #[error("commit {seq} follows commit {prev}: the log has a gap")]
    Gap { prev: u64, seq: u64 },
    #[error("commit {seq}: {reason}")]
    Invalid { seq: u64, reason: String },
}

/// What replaying one commit object did.
#[derive(Debug, Clone, PartialEq)]
pub enum Replayed {
    Applied,
    /// A well-formed commit that does not apply (e.g. it aliases a deleted version).
    Skipped {
        reason: String,
    },
    /// Bytes that are not a commit of this number; what they meant is unknown.
    Unreadable {
        reason: String,
    },
}

/// A state that is the fold of a log of `Op`s.
pub trait Fold: Default + Clone + PartialEq + Serialize + DeserializeOwned + Send + Sync {
    type Op: Clone + Serialize + DeserializeOwned + Send + Sync;

    /// The last commit applied; 0 means none (commits start at 1).
    fn seq(&self) -> u64;

    /// Moves past commit `seq` unchanged: what a reader does with a commit that does not apply.
    fn skip_to(&mut self, seq: u64);

    /// What commit `c` does to the state, given it is the next one: an op that does not apply
    /// is an error and changes nothing. The sequence number is [`Fold::apply`]'s to keep.
    fn fold_op(&mut self, c: &Commit<Self::Op>) -> Result<(), FoldError>;

    /// Applies one commit, strictly: a gap or a commit that does not apply is an error and
    /// changes nothing.
    fn apply(&mut self, c: &Commit<Self::Op>) -> Result<(), FoldError> {
        if self.seq().checked_add(1) != Some(c.seq) {
            return Err(FoldError::Gap { prev: self.seq(), seq: c.seq });
        }
        self.fold_op(c)?;
        self.skip_to(c.seq);
        Ok(())
    }

    /// The invariants a stored checkpoint must keep to be used.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }

    /// Applies a commit as a reader does: one that does not apply is skipped (the state moves
    /// past its number unchanged) and returned, so the caller can warn. Only a gap is an error.
    fn apply_lenient(&mut self, c: &Commit<Self::Op>) -> Result<Option<FoldError>, FoldError> {
        match self.apply(c) {
            Ok(()) => Ok(None),
            Err(e @ FoldError::Gap { .. }) => Err(e),
            Err(e @ FoldError::Invalid { .. }) => {
                self.skip_to(c.seq);
                Ok(Some(e))
            }
        }
    }

    /// Replays one stored commit object (the bytes under `commits/<seq>.json`) leniently: bytes
    /// that are not a commit, or a commit whose number differs from its name, are skipped like a
    /// commit that does not apply.
    fn replay(&mut self, seq: u64, bytes: &[u8]) -> Result<Replayed, FoldError> {
        if self.seq().checked_add(1) != Some(seq) {
            return Err(FoldError::Gap { prev: self.seq(), seq });
        }
        let commit: Commit<Self::Op> = match serde_json::from_slice(bytes) {
            Ok(c) => c,
            Err(e) => {
                self.skip_to(seq);
                return Ok(Replayed::Unreadable { reason: format!("not a commit: {e}") });
            }
        };
        if commit.seq != seq {
            self.skip_to(seq);
            return Ok(Replayed::Unreadable {
                reason: format!("holds commit {} under the name of commit {seq}", commit.seq),
            });
        }
        Ok(match self.apply_lenient(&commit)? {
            None => Replayed::Applied,
            Some(e) => Replayed::Skipped { reason: e.to_string() },
        })
    }

    /// Parses a stored checkpoint (the bytes under `checkpoints/<seq>.json`) and checks that it
    /// holds together; a reader that gets an error here replays the commits instead.
    fn from_checkpoint(seq: u64, bytes: &[u8]) -> Result<Self, String> {
        let state: Self =
            serde_json::from_slice(bytes).map_err(|e| format!("not a checkpoint: {e}"))?;
        if state.seq() != seq {
            return Err(format!(
                "holds the state after commit {} under the name {seq}",
                state.seq()
            ));
        }
        state.check()?;
        Ok(state)
    }
}

/// A name for one writer: `host:pid`.
fn writer_id() -> String {
    super::lease::Holder::me().writer
}

impl Registry {
    /// Brings `state` of the log below `prefix` up to date, replaying only the commits after it
    /// (or after the newest usable checkpoint, if that is further along). Lenient as the module
    /// header says; I/O errors, gaps, and a state whose own commit is gone (a checkpoint over a
    /// missing or truncated `commits/`) fail, as they would otherwise read as a shorter history.
    pub(super) async fn load_log<F: Fold>(
        &self,
        prefix: &str,
        mut state: F,
    ) -> Result<F, RegistryError> {
        let url = self.store.url();
        let dir = layout::checkpoints_dir(prefix);
        let after = layout::checkpoint(prefix, state.seq());
        let mut checkpoints: Vec<(u64, String)> = self
            .store
            .list_after(&dir, Some(&after))
            .await?
            .into_iter()
            .filter_map(|l| Some((layout::seq_in(&dir, &l.key)?, l.key)))
            .filter(|(seq, _)| *seq > state.seq())
            .collect();
        let any_checkpoint = !checkpoints.is_empty();
        while let Some((seq, key)) = checkpoints.pop() {
            let bytes = self.store.get(&key).await?;
            match F::from_checkpoint(seq, &bytes) {
                Ok(s) => {
                    state = s;
                    break;
                }
                Err(reason) => tracing::warn!(
                    "registry {url}: ignoring checkpoint {key} ({reason}); reading the commits instead"
                ),
            }
        }
        // Listed from the commit the state stands on, which must still be there.
        let base = state.seq();
        let dir = layout::commits_dir(prefix);
        let start = layout::commit(prefix, base.saturating_sub(1));
        let mut base_found = base == 0;
        let mut todo = Vec::new();
        for l in self.store.list_after(&dir, Some(&start)).await? {
            match layout::seq_in(&dir, &l.key) {
                Some(seq) if seq > base => todo.push((seq, l.key)),
                Some(seq) => base_found |= seq == base,
                None => {}
            }
        }
        let mut bodies = self.commit_bodies(todo);
        while let Some((seq, bytes, key)) = bodies.try_next().await? {
            match state.replay(seq, &bytes).map_err(|e| self.corrupt(&key, e))? {
                Replayed::Applied => {}
                Replayed::Skipped { reason } | Replayed::Unreadable { reason } => {
                    tracing::warn!("registry {url}: skipping commit {key} ({reason})");
                }
            }
        }
        if !base_found {
            return Err(self.corrupt(
                &dir,
                format!(
                    "the state after commit {base} has no commit {base} behind it: {dir} is missing or truncated, so the history is incomplete"
                ),
            ));
        }
        if any_checkpoint && state.seq() == 0 {
            return Err(self.corrupt(
                &dir,
                format!("the log has checkpoints but no commits: {dir} is missing or empty"),
            ));
        }
        Ok(state)
    }

    /// The state of the log below `prefix` as `gc` must know it before deleting anything: every
    /// commit from 1 on replays strictly (no gap, none unreadable or skipped), and every
    /// checkpoint a reader may start from equals the state its commits fold into. Anything less
    /// means some reader sees another history than this one. `describe` says how a checkpoint
    /// differs from the commits.
    pub(super) async fn prove_log<F: Fold>(
        &self,
        prefix: &str,
        describe: impl Fn(&F, &F) -> String,
    ) -> Result<F, RegistryError> {
        let unsafe_ = |why: String| {
            RegistryError::Unsafe(format!("{prefix}: {why}; fix or remove it, then run gc again"))
        };
        let dir = layout::checkpoints_dir(prefix);
        let mut checkpoints = BTreeMap::new();
        for l in self.store.list(&dir).await? {
            if let Some(seq) = layout::seq_in(&dir, &l.key) {
                checkpoints.insert(seq, l.key);
            }
        }
        let dir = layout::commits_dir(prefix);
        let commits: Vec<(u64, String)> = self
            .store
            .list(&dir)
            .await?
            .into_iter()
            .filter_map(|l| Some((layout::seq_in(&dir, &l.key)?, l.key)))
            .collect();
        let mut bodies = self.commit_bodies(commits);
        let mut state = F::default();
        while let Some((seq, bytes, key)) = bodies.try_next().await? {
            match state.replay(seq, &bytes) {
                Ok(Replayed::Applied) => {}
                Ok(Replayed::Skipped { reason }) => {
                    return Err(unsafe_(format!(
                        "commit {key} does not apply ({reason}), so readers skip it"
                    )));
                }
                Ok(Replayed::Unreadable { reason }) => {
                    return Err(unsafe_(format!(
                        "commit {key} cannot be read ({reason}), so the versions it may publish are unknown"
                    )));
                }
                Err(e) => return Err(unsafe_(format!("{dir} is incomplete: {e}"))),
            }
            if let Some(key) = checkpoints.remove(&seq) {
                let bytes = self.store.get(&key).await?;
                let saved = F::from_checkpoint(seq, &bytes).map_err(|reason| {
                    unsafe_(format!("checkpoint {key} cannot be used ({reason})"))
                })?;
                if saved != state {
                    return Err(unsafe_(format!(
                        "checkpoint {key} disagrees with the commits before it ({})",
                        describe(&state, &saved)
                    )));
                }
            }
        }
        if let Some((seq, key)) = checkpoints.into_iter().next() {
            return Err(unsafe_(format!(
                "checkpoint {key} stands on commit {seq}, but {dir} ends at commit {}: its commits are missing or truncated",
                state.seq()
            )));
        }
        if state.seq() == 0 {
            return Err(unsafe_(format!(
                "it has no readable commits (is {dir} a directory of commits?)"
            )));
        }
        Ok(state)
    }

    /// `(seq, bytes, key)` of each commit, fetched several at once and yielded in order.
    fn commit_bodies(
        &self,
        commits: Vec<(u64, String)>,
    ) -> impl futures::Stream<Item = Result<(u64, bytes::Bytes, String), RegistryError>> + '_ {
        futures::stream::iter(commits)
            .map(move |(seq, key)| async move { Ok((seq, self.store.get(&key).await?, key)) })
            .buffered(GETS_IN_FLIGHT)
    }

    /// Publishes one commit to the log below `prefix` (named `name` in errors), deciding its op
    /// from the freshest state; retries with jitter when another writer published first.
    /// `decide` returns `None` when nothing needs to be written.
    pub(super) async fn append<F: Fold, T>(
        &self,
        prefix: &str,
        name: &str,
        mut decide: impl FnMut(&F) -> Result<(Option<F::Op>, T), RegistryError>,
    ) -> Result<(F, T), RegistryError> {
        let mut state = F::default();
        for attempt in 0..MAX_COMMIT_ATTEMPTS {
            state = self.load_log(prefix, state).await?;
            let (op, out) = decide(&state)?;
            let Some(op) = op else {
                return Ok((state, out));
            };
            let Some(seq) = state.seq().checked_add(1) else {
                return Err(self.corrupt(prefix, "the commit counter cannot go further"));
            };
            let commit = Commit { seq, time: Utc::now(), writer: writer_id(), op };
            // Checked against the state it follows before it exists: an invalid commit, once
            // created, could never be taken back.
            let mut next = state.clone();
            next.apply(&commit)
                .map_err(|source| RegistryError::Refused { name: name.to_owned(), source })?;
            let bytes = serde_json::to_vec_pretty(&commit).map_err(|e| self.corrupt(prefix, e))?;
            if self.store.put_create(&layout::commit(prefix, seq), bytes.into()).await? {
                if seq.is_multiple_of(CHECKPOINT_EVERY) {
                    self.write_checkpoint(prefix, &next).await;
                }
                return Ok((next, out));
            }
            // Lost the race for this sequence number: back off a little, re-read, decide again.
            let jitter_ms = fastrand::u64(1..=(5 + 5 * u64::from(attempt.min(20))));
            tokio::time::sleep(Duration::from_millis(jitter_ms)).await;
        }
        Err(RegistryError::Contention { name: name.to_owned() })
    }

    async fn write_checkpoint<F: Fold>(&self, prefix: &str, state: &F) {
        let key = layout::checkpoint(prefix, state.seq());
        match serde_json::to_vec(state) {
            Ok(bytes) => {
                if let Err(e) = self.store.put_create(&key, bytes.into()).await {
                    // A missing checkpoint only costs readers a longer replay.
                    tracing::warn!("could not write checkpoint {key}: {e}");
                }
            }
            Err(e) => tracing::warn!("could not encode checkpoint {key}: {e}"),
        }
    }
}
