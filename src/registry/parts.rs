//! Parallel writers: many processes each add a *part* (a partial manifest) to a group, one
//! finishes the group, and the union of the parts becomes one version (W&B's `upsert_artifact`
//! … `finish_artifact` with a `distributed_id`, and `artfs log --part/--finish`).
//!
//! Layout: `parts/<entity>/<project>/<name>/<sha256 of the group, 32 hex>/<round:010>/`, holding
//! - `parts/<unique>.json`: one part (its manifest's key, aliases, type), created once;
//! - `sealed.json`: created (create-only) by the finisher *before* it lists the parts, naming
//!   its process; `sealed-<n>.json`: the seal taken over from a finisher that died (below);
//! - `finished.json`: what the finish decided: the parts it took and the version, or why it
//!   published nothing.
//!
//! A group's open round is its newest one without `finished.json`; once a round is finished the
//! next part starts the next round, hence the next version. Nothing below `parts/` is a version,
//! so until the finish readers see nothing of it. Why no part is lost: a writer creates its part,
//! then looks for the seal. No seal yet means the finisher had not sealed when the part existed,
//! so its listing (made after the seal) has it. A seal means it may or may not: the writer waits
//! for `finished.json` and, if its part is not listed there, writes it again in the next round.
//! A path that two parts give different content is refused at the finish, naming both parts;
//! the round is then closed unpublished, so the group can be written again.
//!
//! A finisher that dies after sealing must not leave the round stuck: its seal names its process
//! (as a lease does), so once that process is gone (on this machine), or the seal is older than
//! the lease TTL with no finish (another machine's), the next `finish` creates the next seal
//! (create-only, so one takes over) and finishes the round; writers waiting on a dead seal keep
//! their part in the round for that finish. If the dead finisher had already published, the
//! takeover publishes the same union again, which makes no new version (same digest).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lease::Holder;
use super::runs::{RunOp, RunPath};
use super::{LogOutcome, LogRequest, Registry, RegistryError, unique_id, writer_id};
use crate::manifest::Manifest;
use crate::names::CollectionPath;

/// How long a writer that finds its round sealed waits for the finish.
const FINISH_WAIT: Duration = Duration::from_secs(120);
/// Rounds a part may move on (each only when a finish took the round meanwhile).
const MAX_ROUNDS_TRIED: u32 = 20;

/// One writer's contribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub group: String,
    /// The partial manifest (content-addressed key); `None` for a part that only adds aliases.
    pub manifest: Option<String>,
    #[serde(rename = "type")]
    pub artifact_type: String,
    pub aliases: Vec<String>,
    pub writer: String,
    pub created_at: DateTime<Utc>,
    /// The run that wrote the part: recorded as a logger of the version the finish makes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunPath>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Sealed {
    writer: String,
    time: DateTime<Utc>,
    /// The finisher's process, to tell whether it still runs (absent in older seals: those are
    /// judged by age only).
    #[serde(default)]
    holder: Option<Holder>,
}

/// What waiting on a seal found.
enum Waited {
    Finished(Finished),
    /// The seal's finisher is gone without a finish.
    Dead,
}

use super::layout::{finished as finished_key, part as part_key, round_of, seal as seal_key};

/// What a finish decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finished {
    /// The part keys it took.
    pub parts: Vec<String>,
    pub version: Option<u32>,
    pub digest: Option<String>,
    /// Why nothing was published.
    pub error: Option<String>,
}

/// What `gc` learns from `parts/` ([`Registry::parts_census`]).
#[derive(Debug, Default)]
pub(super) struct PartsCensus {
    pub open_manifests: Vec<String>,
    /// Objects of old finished rounds, each round's finish record after its other objects.
    pub deletable: Vec<String>,
    /// How many rounds those are.
    pub rounds: u64,
}

/// Where one group of one collection lives.
fn group_prefix(c: &CollectionPath, group: &str) -> String {
    super::layout::parts_group(c, group)
}

fn round_prefix(c: &CollectionPath, group: &str, round: u64) -> String {
    super::layout::parts_round(&group_prefix(c, group), round)
}

/// The paths that parts give different content: (path, part A, part B).
pub fn merge(parts: &[(String, Manifest)]) -> Result<Manifest, Vec<(String, String, String)>> {
    let mut out = Manifest::default();
    let mut from: BTreeMap<String, &str> = BTreeMap::new();
    let mut conflicts = Vec::new();
    for (key, m) in parts {
        if out.contents.is_empty() {
            out.storage_policy_config = m.storage_policy_config.clone();
        }
        for (path, entry) in &m.contents {
            match out.contents.get(path) {
                Some(prev) if prev.digest != entry.digest => {
                    conflicts.push((path.clone(), from[path].to_owned(), key.clone()));
                }
                Some(_) => {}
                None => {
                    out.contents.insert(path.clone(), entry.clone());
                    from.insert(path.clone(), key);
                }
            }
        }
    }
    if conflicts.is_empty() { Ok(out) } else { Err(conflicts) }
}

impl Registry {
    /// `artfs log --part`: uploads the request's blobs (under a lease, as `log`) and adds its
    /// manifest as a part of `group`. Returns the round and the (files, bytes) uploaded.
    pub async fn log_part(
        &self,
        req: &LogRequest,
        group: &str,
        run: Option<&RunPath>,
        progress: &dyn super::UploadProgress,
    ) -> Result<(u64, u64, u64), RegistryError> {
        for a in &req.aliases {
            crate::names::validate_user_alias(a)?;
        }
        let lease = self.lease().await?;
        let result = async {
            let (files, bytes) = self.upload_blobs(req, progress).await?;
            let part = Part {
                group: group.to_owned(),
                manifest: None,
                artifact_type: req.artifact_type.clone(),
                aliases: req.aliases.clone(),
                writer: writer_id(),
                created_at: Utc::now(),
                run: run.cloned(),
            };
            let round = self.add_part(&req.collection, &part, Some(&req.manifest), None).await?;
            Ok((round, files, bytes))
        }
        .await;
        lease.release().await;
        result
    }

    /// The group's open round: the newest without `finished.json` (0 for a new group).
    pub async fn open_round(&self, c: &CollectionPath, group: &str) -> Result<u64, RegistryError> {
        let rounds: Vec<u64> = self
            .store
            .list_dirs(&group_prefix(c, group))
            .await?
            .iter()
            .filter(|d| d.len() == 10)
            .filter_map(|d| d.parse().ok())
            .collect();
        let Some(&newest) = rounds.iter().max() else { return Ok(0) };
        Ok(match self.finished(c, group, newest).await? {
            Some(_) => newest + 1,
            None => newest,
        })
    }

    pub async fn finished(
        &self,
        c: &CollectionPath,
        group: &str,
        round: u64,
    ) -> Result<Option<Finished>, RegistryError> {
        let key = finished_key(&round_prefix(c, group, round));
        match self.store.get_opt(&key).await? {
            Some(b) => Ok(Some(serde_json::from_slice(&b).map_err(|e| self.corrupt(&key, e))?)),
            None => Ok(None),
        }
    }

    /// What `gc` needs from `parts/`, read in one listing:
    /// - the manifests of every part in a round that is not finished yet, which `gc` keeps (and
    ///   their blobs) however old, since a group may take hours or days to be finished;
    /// - the objects of finished rounds that can go: every round of a group but its newest
    ///   (which `open_round` numbers the next from), finished before `cutoff`. The finish
    ///   record comes last in the list, so an interrupted deletion leaves the round finished.
    pub(super) async fn parts_census(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<PartsCensus, RegistryError> {
        let listed = self.store.list(super::layout::PARTS).await?;
        let finished: BTreeMap<&str, DateTime<Utc>> = listed
            .iter()
            .filter_map(|l| {
                let round = l.key.strip_suffix(super::layout::FINISHED)?.strip_suffix('/')?;
                Some((round, l.last_modified))
            })
            .collect();
        let mut newest: BTreeMap<&str, &str> = BTreeMap::new();
        for l in &listed {
            if let Some((round, group)) = round_of(&l.key) {
                let n = newest.entry(group).or_insert(round);
                *n = (*n).max(round);
            }
        }
        let mut census = PartsCensus::default();
        let mut records = Vec::new();
        for l in &listed {
            let Some((round, group)) = round_of(&l.key) else { continue };
            if let Some(&at) = finished.get(round) {
                if at < cutoff && newest.get(group) != Some(&round) {
                    match l.key == finished_key(round) {
                        true => records.push(l.key.clone()),
                        false => census.deletable.push(l.key.clone()),
                    }
                }
                continue;
            }
            if !l.key.starts_with(&super::layout::parts_dir(round)) {
                continue;
            }
            let bytes = self.store.get_opt(&l.key).await?;
            // A part deleted meanwhile is no longer protected; one that cannot be read stops gc.
            let Some(bytes) = bytes else { continue };
            let part: Part = serde_json::from_slice(&bytes).map_err(|e| {
                RegistryError::Unsafe(format!("the part {} cannot be read: {e}", l.key))
            })?;
            census.open_manifests.extend(part.manifest);
        }
        census.rounds = records.len() as u64;
        census.deletable.extend(records);
        Ok(census)
    }

    /// The newest seal of a round (`None`: not sealed).
    async fn newest_seal(&self, prefix: &str) -> Result<Option<(u32, String)>, RegistryError> {
        let mut n = 0;
        while self.store.head(&seal_key(prefix, n)).await?.is_some() {
            n += 1;
        }
        Ok(n.checked_sub(1).map(|n| (n, seal_key(prefix, n))))
    }

    /// Whether the finisher that wrote the seal `key` is gone: its process has ended (this
    /// machine), or the seal is older than the lease TTL (another machine, or an older seal).
    async fn seal_is_dead(&self, key: &str) -> Result<bool, RegistryError> {
        let Some(bytes) = self.store.get_opt(key).await? else { return Ok(false) };
        let sealed: Option<Sealed> = serde_json::from_slice(&bytes).ok();
        if let Some(h) = sealed.as_ref().and_then(|s| s.holder.as_ref())
            && h.is_local()
        {
            return Ok(!h.is_running_here());
        }
        let ttl = chrono::Duration::from_std(self.timing.ttl).unwrap_or(chrono::Duration::MAX);
        Ok(match self.store.modified(key).await? {
            Some(t) => Utc::now() - t > ttl,
            None => false,
        })
    }

    /// Waits for the finish of a round sealed by `seal`, or for that seal's finisher to be gone.
    async fn wait_seal(
        &self,
        c: &CollectionPath,
        group: &str,
        round: u64,
        seal: &str,
    ) -> Result<Waited, RegistryError> {
        let deadline = tokio::time::Instant::now() + FINISH_WAIT;
        let mut polls = 0u32;
        loop {
            if let Some(f) = self.finished(c, group, round).await? {
                return Ok(Waited::Finished(f));
            }
            // Every second or so: a liveness check reads the seal, which polling need not.
            if polls.is_multiple_of(5) && self.seal_is_dead(seal).await? {
                return Ok(Waited::Dead);
            }
            polls += 1;
            if tokio::time::Instant::now() > deadline {
                return Err(RegistryError::GroupFinishing {
                    name: c.to_string(),
                    group: group.to_owned(),
                    waited_secs: FINISH_WAIT.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Adds a part to the group's open round (`only_round`: to that round or not at all) and
    /// returns the round it belongs to. The part's blobs must be stored already.
    pub async fn add_part(
        &self,
        c: &CollectionPath,
        part: &Part,
        manifest: Option<&Manifest>,
        only_round: Option<u64>,
    ) -> Result<u64, RegistryError> {
        let mut part = part.clone();
        if let Some(m) = manifest {
            m.validate().map_err(|e| RegistryError::Invalid {
                name: c.to_string(),
                reason: e.to_string(),
            })?;
            part.manifest = Some(self.put_manifest(m).await?);
        }
        let bytes = serde_json::to_vec_pretty(&part).map_err(|e| self.corrupt("parts", e))?;
        for _ in 0..MAX_ROUNDS_TRIED {
            let round = match only_round {
                Some(r) => r,
                None => self.open_round(c, &part.group).await?,
            };
            let key = part_key(&round_prefix(c, &part.group, round), &unique_id());
            self.store.put_create(&key, bytes.clone().into()).await?;
            let prefix = round_prefix(c, &part.group, round);
            let Some((_, seal)) = self.newest_seal(&prefix).await? else { return Ok(round) };
            let finished = match self.wait_seal(c, &part.group, round, &seal).await? {
                Waited::Finished(f) => f,
                // Listed by whichever finish takes the round over.
                Waited::Dead => return Ok(round),
            };
            if finished.parts.contains(&key) {
                return Ok(round);
            }
            if only_round.is_some() {
                return Err(RegistryError::Invalid {
                    name: c.to_string(),
                    reason: format!(
                        "group {:?} was finished while this part was written, without it; write the part again",
                        part.group
                    ),
                });
            }
        }
        Err(RegistryError::Contention { name: format!("{c} group {:?}", part.group) })
    }

    /// Finishes the group's open round (or `round`): the union of its parts becomes one
    /// version, published through the collection's log like any `log`. A path two parts give
    /// different content fails the finish, publishes nothing and closes the round.
    pub async fn finish_parts(
        &self,
        c: &CollectionPath,
        group: &str,
        round: Option<u64>,
        description: Option<String>,
        metadata: Option<Value>,
    ) -> Result<LogOutcome, RegistryError> {
        let invalid = |reason: String| RegistryError::Invalid { name: c.to_string(), reason };
        let round = match round {
            Some(r) => r,
            None => self.open_round(c, group).await?,
        };
        let prefix = round_prefix(c, group, round);
        let seal = serde_json::to_vec(&Sealed {
            writer: writer_id(),
            time: Utc::now(),
            holder: Some(Holder::me()),
        })
        .map_err(|e| self.corrupt(&prefix, e))?;
        let mut n = self.newest_seal(&prefix).await?.map_or(0, |(n, _)| n);
        loop {
            let key = seal_key(&prefix, n);
            if self.store.put_create(&key, seal.clone().into()).await? {
                if n > 0 {
                    tracing::warn!(
                        "{c}: group {group:?}: the finisher of round {round} is gone; finishing it"
                    );
                }
                break;
            }
            // Another finisher (or a retry of this one): its decision is the answer, unless it
            // died before deciding.
            match self.wait_seal(c, group, round, &key).await? {
                Waited::Finished(f) => return self.outcome_of(c, group, &f).await,
                Waited::Dead => n += 1,
            }
        }
        let mut result = self.finish_sealed(c, group, &prefix, description, metadata).await;
        // Before the finish record: a takeover after a crash here records the runs again.
        if let Ok((outcome, parts)) = &result
            && let Err(e) = self.record_part_runs(c, outcome.version, parts).await
        {
            result = Err((e, parts.clone()));
        }
        let finished = match &result {
            Ok((outcome, parts)) => Finished {
                parts: parts.clone(),
                version: Some(outcome.version),
                digest: Some(outcome.digest.clone()),
                error: None,
            },
            Err((e, parts)) => Finished {
                parts: parts.clone(),
                version: None,
                digest: None,
                error: Some(e.to_string()),
            },
        };
        let bytes = serde_json::to_vec_pretty(&finished).map_err(|e| self.corrupt(&prefix, e))?;
        self.store.put_create(&finished_key(&prefix), bytes.into()).await?;
        match result {
            Ok((outcome, _)) => Ok(outcome),
            Err((RegistryError::Invalid { reason, .. }, _)) => Err(invalid(reason)),
            Err((e, _)) => Err(e),
        }
    }

    /// Records every run that wrote one of `parts` as a logger of the version they made.
    async fn record_part_runs(
        &self,
        c: &CollectionPath,
        version: u32,
        parts: &[String],
    ) -> Result<(), RegistryError> {
        let mut runs: Vec<RunPath> = Vec::new();
        for key in parts {
            let bytes = self.store.get(key).await?;
            let part: Part = serde_json::from_slice(&bytes).map_err(|e| self.corrupt(key, e))?;
            if let Some(run) = part.run
                && !runs.contains(&run)
            {
                runs.push(run);
            }
        }
        for run in runs {
            let op = RunOp::Logged { collection: c.to_string(), version };
            self.record_run(&run, op).await?;
        }
        Ok(())
    }

    async fn outcome_of(
        &self,
        c: &CollectionPath,
        group: &str,
        f: &Finished,
    ) -> Result<LogOutcome, RegistryError> {
        match (f.version, &f.error) {
            (Some(version), _) => {
                let state = self.existing_state(c).await?;
                let r = Self::resolve_in(c, &state, &crate::names::Selector::Version(version))?;
                Ok(LogOutcome {
                    version,
                    digest: r.record.digest,
                    created: false,
                    aliases: r.aliases,
                    uploaded_files: 0,
                    uploaded_bytes: 0,
                })
            }
            (None, e) => Err(RegistryError::Invalid {
                name: c.to_string(),
                reason: format!(
                    "group {group:?} was finished without a version: {}",
                    e.as_deref().unwrap_or("unknown reason")
                ),
            }),
        }
    }

    /// After the seal: reads every part, merges, publishes. Returns the part keys either way.
    async fn finish_sealed(
        &self,
        c: &CollectionPath,
        group: &str,
        prefix: &str,
        description: Option<String>,
        metadata: Option<Value>,
    ) -> Result<(LogOutcome, Vec<String>), (RegistryError, Vec<String>)> {
        let listed = self
            .store
            .list(&super::layout::parts_dir(prefix))
            .await
            .map_err(|e| (e.into(), vec![]))?;
        let keys: Vec<String> = listed.into_iter().map(|l| l.key).collect();
        let fail = |e: RegistryError| (e, keys.clone());
        let invalid = |reason: String| fail(RegistryError::Invalid { name: c.to_string(), reason });
        let mut manifests = Vec::new();
        let mut aliases: Vec<String> = Vec::new();
        let mut artifact_type: Option<String> = None;
        for key in &keys {
            let bytes = self.store.get(key).await.map_err(|e| fail(e.into()))?;
            let part: Part =
                serde_json::from_slice(&bytes).map_err(|e| fail(self.corrupt(key, e)))?;
            match &artifact_type {
                Some(t) if *t != part.artifact_type => {
                    return Err(invalid(format!(
                        "group {group:?}: parts of types {t:?} and {:?}; a version has one type",
                        part.artifact_type
                    )));
                }
                _ => artifact_type = Some(part.artifact_type.clone()),
            }
            for a in part.aliases {
                if a != crate::names::LATEST && !aliases.contains(&a) {
                    aliases.push(a);
                }
            }
            if let Some(m) = &part.manifest {
                let bytes = self.store.get(m).await.map_err(|e| fail(e.into()))?;
                let manifest = Manifest::from_json(&bytes).map_err(|e| fail(self.corrupt(m, e)))?;
                manifests.push((part.writer.clone() + " (" + key + ")", manifest));
            }
        }
        if manifests.is_empty() {
            return Err(invalid(format!(
                "group {group:?} has no parts with files; nothing was published"
            )));
        }
        let manifest = merge(&manifests).map_err(|conflicts| {
            let list: Vec<String> = conflicts
                .iter()
                .take(5)
                .map(|(p, a, b)| format!("{p:?} (parts of {a} and {b})"))
                .collect();
            invalid(format!(
                "group {group:?}: {} path(s) written by two parts with different content: {}; nothing was published and the group's parts were dropped, write them again",
                conflicts.len(),
                list.join(", ")
            ))
        })?;
        let req = LogRequest {
            history_step: None,
            collection: c.clone(),
            artifact_type: artifact_type.unwrap_or_else(|| "dataset".into()),
            description,
            metadata,
            aliases,
            manifest,
            sources: Default::default(),
        };
        let outcome = self.publish(&req).await.map_err(fail)?;
        Ok((outcome, keys.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Entry, md5_base64};
    use crate::store::{Store, cloud::Clouds};

    fn part(group: &str, aliases: &[&str]) -> Part {
        Part {
            group: group.into(),
            manifest: None,
            artifact_type: "dataset".into(),
            aliases: aliases.iter().map(|s| s.to_string()).collect(),
            writer: "t".into(),
            created_at: Utc::now(),
            run: None,
        }
    }

    async fn stored(reg: &Registry, path: &str, body: &[u8]) -> Manifest {
        let key = crate::registry::blob_key(&md5_base64(body)).unwrap();
        reg.store.put_create(&key, bytes::Bytes::copy_from_slice(body)).await.unwrap();
        let mut m = Manifest::default();
        m.contents.insert(path.into(), Entry::stored(md5_base64(body), body.len() as u64));
        m
    }

    #[tokio::test]
    async fn parts_become_one_version_on_finish_and_conflicts_publish_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let reg =
            Registry::new(Store::open(dir.path().to_str().unwrap(), &Clouds::default()).unwrap());
        let c = CollectionPath::new("e", "p", "shards").unwrap();
        for i in 0..3 {
            let m = stored(&reg, &format!("s{i}.txt"), format!("shard {i}").as_bytes()).await;
            assert_eq!(reg.add_part(&c, &part("g", &["best"]), Some(&m), None).await.unwrap(), 0);
        }
        assert_eq!(reg.state(&c).await.unwrap().seq, 0, "invisible before the finish");
        let out = reg.finish_parts(&c, "g", None, None, None).await.unwrap();
        assert_eq!((out.version, out.created), (0, true));
        let v = reg.resolve(&c, &crate::names::Selector::Version(0)).await.unwrap();
        assert_eq!(v.record.file_count, 3);
        assert_eq!(v.aliases, ["latest", "best"]);
        // The union's digest is the digest of a manifest of the three files.
        let mut all = Manifest::default();
        for i in 0..3 {
            all.contents.extend(
                stored(&reg, &format!("s{i}.txt"), format!("shard {i}").as_bytes()).await.contents,
            );
        }
        assert_eq!(v.record.digest, all.digest());
        // Finishing again answers the same version; the next part starts round 1.
        assert_eq!(reg.finish_parts(&c, "g", Some(0), None, None).await.unwrap().version, 0);
        let m = stored(&reg, "s0.txt", b"other").await;
        assert_eq!(reg.add_part(&c, &part("g", &[]), Some(&m), None).await.unwrap(), 1);
        let m = stored(&reg, "s0.txt", b"shard 0").await;
        assert_eq!(reg.add_part(&c, &part("g", &[]), Some(&m), None).await.unwrap(), 1);
        let err = reg.finish_parts(&c, "g", None, None, None).await.unwrap_err().to_string();
        assert!(err.contains("\"s0.txt\"") && err.contains("different content"), "{err}");
        assert_eq!(reg.state(&c).await.unwrap().versions.len(), 1, "nothing published");
        // The failed round is closed: the group starts afresh.
        assert_eq!(reg.open_round(&c, "g").await.unwrap(), 2);
    }

    #[tokio::test]
    async fn gc_keeps_the_parts_of_an_unfinished_group_however_old() {
        let dir = tempfile::tempdir().unwrap();
        let reg =
            Registry::new(Store::open(dir.path().to_str().unwrap(), &Clouds::default()).unwrap());
        let c = CollectionPath::new("e", "p", "shards").unwrap();
        for i in 0..2 {
            let m = stored(&reg, &format!("s{i}.txt"), format!("shard {i}").as_bytes()).await;
            reg.add_part(&c, &part("g", &[]), Some(&m), None).await.unwrap();
        }
        let report = reg.gc(Duration::ZERO).await.unwrap();
        assert_eq!((report.blobs_deleted, report.manifests_deleted), (0, 0), "{report:?}");
        let out = reg.finish_parts(&c, "g", None, None, None).await.unwrap();
        let v = reg.resolve(&c, &crate::names::Selector::Version(out.version)).await.unwrap();
        assert_eq!(v.record.file_count, 2);
        // Finished: the parts' own manifests are no longer needed, the version's blobs are.
        let report = reg.gc(Duration::ZERO).await.unwrap();
        assert_eq!((report.blobs_deleted, report.manifests_deleted), (0, 2), "{report:?}");
        // The group's newest round stays (the next is numbered from it); older finished ones go.
        assert_eq!(report.rounds_deleted, 0);
        let rounds = async || {
            let mut r: Vec<String> = (reg.store.list("parts").await.unwrap().into_iter())
                .filter_map(|l| Some(l.key.split('/').nth(5)?.to_owned()))
                .collect();
            r.dedup();
            r
        };
        assert_eq!(rounds().await, ["0000000000"]);
        let m = stored(&reg, "s9.txt", b"shard 9").await;
        assert_eq!(reg.add_part(&c, &part("g", &[]), Some(&m), None).await.unwrap(), 1);
        assert_eq!(reg.gc(Duration::from_secs(3600)).await.unwrap().rounds_deleted, 0, "young");
        reg.finish_parts(&c, "g", None, None, None).await.unwrap();
        let report = reg.gc(Duration::ZERO).await.unwrap();
        assert_eq!(report.rounds_deleted, 1, "{report:?}");
        assert_eq!(rounds().await, ["0000000001"]);
        assert_eq!(reg.open_round(&c, "g").await.unwrap(), 2);
    }

    /// Seals `round` of group `g` as a finisher `holder` that then vanished without a finish.
    async fn abandoned_seal(reg: &Registry, c: &CollectionPath, round: u64, holder: Holder) {
        let seal = Sealed { writer: holder.writer.clone(), time: Utc::now(), holder: Some(holder) };
        let key = seal_key(&round_prefix(c, "g", round), 0);
        assert!(
            reg.store.put_create(&key, serde_json::to_vec(&seal).unwrap().into()).await.unwrap()
        );
    }

    #[tokio::test]
    async fn a_finisher_that_died_after_sealing_is_taken_over_and_no_part_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let reg =
            Registry::new(Store::open(dir.path().to_str().unwrap(), &Clouds::default()).unwrap());
        let c = CollectionPath::new("e", "p", "shards").unwrap();
        let m = stored(&reg, "a.txt", b"a").await;
        assert_eq!(reg.add_part(&c, &part("g", &[]), Some(&m), None).await.unwrap(), 0);
        // A process of this machine that no longer runs (its start time does not match).
        abandoned_seal(&reg, &c, 0, Holder { start: u64::MAX, ..Holder::me() }).await;
        // A writer arriving now keeps its part in the sealed round, at once (no 120 s wait).
        let t = std::time::Instant::now();
        let m = stored(&reg, "b.txt", b"b").await;
        assert_eq!(reg.add_part(&c, &part("g", &[]), Some(&m), None).await.unwrap(), 0);
        assert!(t.elapsed() < FINISH_WAIT / 4, "waited {:?} on a dead finisher", t.elapsed());
        let out = reg.finish_parts(&c, "g", None, None, None).await.unwrap();
        assert_eq!((out.version, out.created), (0, true));
        let v = reg.resolve(&c, &crate::names::Selector::Version(0)).await.unwrap();
        assert_eq!(v.record.file_count, 2, "both parts, the one after the dead seal too");
        let prefix = round_prefix(&c, "g", 0);
        assert!(reg.store.head(&seal_key(&prefix, 1)).await.unwrap().is_some(), "taken over");
        assert_eq!(reg.open_round(&c, "g").await.unwrap(), 1);
    }

    #[tokio::test]
    async fn another_machines_seal_is_taken_over_only_once_older_than_the_lease_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let timing = super::super::lease::LeaseTiming {
            ttl: Duration::from_millis(1500),
            renew: Duration::from_millis(500),
        };
        let reg =
            Registry::new(Store::open(dir.path().to_str().unwrap(), &Clouds::default()).unwrap())
                .with_lease_timing(timing);
        let c = CollectionPath::new("e", "p", "shards").unwrap();
        let m = stored(&reg, "a.txt", b"a").await;
        reg.add_part(&c, &part("g", &[]), Some(&m), None).await.unwrap();
        let remote = Holder { boot_id: "another-machine".into(), ..Holder::me() };
        abandoned_seal(&reg, &c, 0, remote).await;
        let key = seal_key(&round_prefix(&c, "g", 0), 0);
        assert!(!reg.seal_is_dead(&key).await.unwrap(), "a fresh remote seal counts as live");
        let out = reg.finish_parts(&c, "g", None, None, None).await.unwrap();
        assert_eq!(out.version, 0);
        assert!(reg.seal_is_dead(&key).await.unwrap());
    }
}
