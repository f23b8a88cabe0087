//! Drafts: a version that is PENDING across requests (W&B's `createArtifact` … `commitArtifact`),
//! stored in the registry so that every `artfs serve` process over it agrees, and invisible to
//! readers until committed.
//!
//! Layout: `drafts/<id>/draft.json` (what the client declared), `drafts/<id>/manifest.json` (the
//! uploaded manifest's key), `drafts/<id>/committed.json` (the version it became), and
//! `drafts/by-client/<sha256 of the client id>.json` (the client's own id → draft, for retries
//! and `wandb-client-artifact://` references), and for an incremental draft (W&B's INCREMENTAL
//! manifest) `drafts/<id>/base.json`: the manifest of the version it extends, which the uploaded
//! manifest (new and changed entries only) is laid over. Every object is created once and never changed;
//! a draft becomes a version only through the collection's commit log (`Registry::log`), with
//! the same dedup and alias rules as `artfs log`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest as _;

use super::parts::Part;
use super::runs::RunPath;
use super::{LogOutcome, LogRequest, Registry, RegistryError, entry_blob_key};
use crate::manifest::Manifest;
use crate::names::{CollectionPath, validate_user_alias};

/// The base of an incremental draft that extends no version (the first version of an
/// incremental artifact): its uploaded manifest is taken whole.
pub const NO_BASE: &str = "";

/// What a client declared when it opened a draft.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    pub id: String,
    pub collection: CollectionPath,
    pub artifact_type: String,
    /// The artifact digest the client computed; the committed version's digest is the
    /// manifest's own.
    pub digest: String,
    pub description: Option<String>,
    pub metadata: Option<Value>,
    pub aliases: Vec<String>,
    /// The run that logs it (`None` for user-created artifacts used by a run).
    pub run: Option<String>,
    pub client_id: Option<String>,
    pub created_at: DateTime<Utc>,
    /// One round of a group of parallel writers (W&B's `distributedID`): every writer of the
    /// round shares this draft, each manifest upload is a part, the commit finishes the round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distributed: Option<Distributed>,
    /// Tags and TTL to set on the version once committed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<super::Ttl>,
    /// The logging run's history step (W&B's `historyStep`), kept on the version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_step: Option<u64>,
}

/// A draft's group and round (see `parts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distributed {
    pub group: String,
    pub round: u64,
}

/// What `gc` makes of the drafts not committed yet (see [`Registry::draft_census`]).
#[derive(Debug, Default)]
pub(super) struct DraftCensus {
    /// Manifests uploaded to drafts still in progress: kept, with their blobs.
    pub(super) pending_manifests: Vec<String>,
    /// Every object of the abandoned drafts, in the order to delete them.
    pub(super) abandoned: Vec<String>,
    pub(super) abandoned_bytes: u64,
    pub(super) drafts_abandoned: u64,
}

/// The one draft of a round of a group: the same id for every writer.
fn distributed_draft_id(c: &CollectionPath, d: &Distributed) -> String {
    let h = sha2::Sha256::digest(format!("dist\0{c}\0{}\0{}", d.group, d.round).as_bytes());
    hex::encode(&h[..16])
}

/// Where a draft stands.
#[derive(Debug, Clone, PartialEq)]
pub enum DraftStatus {
    Pending { manifest: Option<String> },
    Committed { version: u32 },
}

#[derive(Serialize, Deserialize)]
struct Pointer {
    key: String,
}

#[derive(Serialize, Deserialize)]
struct Committed {
    version: u32,
}

#[derive(Serialize, Deserialize)]
struct ClientMapping {
    draft: String,
}

use super::layout::{
    draft as draft_key, draft_base as base_key, draft_blob_md5s as blob_md5s_prefix,
    draft_blob_md5s_batch as blob_md5s_key, draft_committed as committed_key,
    draft_manifest as manifest_pointer_key, draft_of_client as client_key,
};

/// Draft ids are also path components and URL parts: lowercase hex only.
pub fn valid_draft_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl Registry {
    /// Opens a draft, or returns the one already opened under the same client id (a retried
    /// request must not open a second one).
    pub async fn create_draft(&self, mut draft: Draft) -> Result<Draft, RegistryError> {
        if let Some(cid) = &draft.client_id
            && let Some(existing) = self.draft_by_client_id(cid).await?
        {
            return Ok(existing);
        }
        draft.id = match &draft.distributed {
            Some(d) => distributed_draft_id(&draft.collection, d),
            None => format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
        };
        let bytes = serde_json::to_vec_pretty(&draft).map_err(|e| self.corrupt("drafts", e))?;
        if !self.store.put_create(&draft_key(&draft.id), bytes.into()).await? {
            // Another writer of the round opened it first: theirs is the round's draft.
            draft = self
                .draft(&draft.id)
                .await?
                .ok_or_else(|| self.corrupt("drafts", "a draft vanished"))?;
        }
        if let Some(cid) = &draft.client_id {
            let map = serde_json::to_vec(&ClientMapping { draft: draft.id.clone() })
                .map_err(|e| self.corrupt("drafts", e))?;
            if !self.store.put_create(&client_key(cid), map.into()).await? {
                // Another request with this client id won: use its draft.
                if let Some(existing) = self.draft_by_client_id(cid).await? {
                    return Ok(existing);
                }
            }
        }
        Ok(draft)
    }

    pub async fn draft(&self, id: &str) -> Result<Option<Draft>, RegistryError> {
        if !valid_draft_id(id) {
            return Ok(None);
        }
        let key = draft_key(id);
        match self.store.get_opt(&key).await? {
            Some(b) => Ok(Some(serde_json::from_slice(&b).map_err(|e| self.corrupt(&key, e))?)),
            None => Ok(None),
        }
    }

    pub async fn draft_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<Draft>, RegistryError> {
        let key = client_key(client_id);
        let Some(b) = self.store.get_opt(&key).await? else {
            return Ok(None);
        };
        let map: ClientMapping = serde_json::from_slice(&b).map_err(|e| self.corrupt(&key, e))?;
        self.draft(&map.draft).await
    }

    pub async fn draft_status(&self, id: &str) -> Result<DraftStatus, RegistryError> {
        let key = committed_key(id);
        if let Some(b) = self.store.get_opt(&key).await? {
            let c: Committed = serde_json::from_slice(&b).map_err(|e| self.corrupt(&key, e))?;
            return Ok(DraftStatus::Committed { version: c.version });
        }
        let key = manifest_pointer_key(id);
        let manifest = match self.store.get_opt(&key).await? {
            Some(b) => {
                Some(serde_json::from_slice::<Pointer>(&b).map_err(|e| self.corrupt(&key, e))?.key)
            }
            None => None,
        };
        Ok(DraftStatus::Pending { manifest })
    }

    /// Records the MD5s the client declared for the files of an XXH128 draft (entry digest →
    /// blob MD5), so that its manifest can name each entry's blob ([`Entry::blob_md5`]) when it
    /// arrives, maybe at another server. Content-addressed: a retried batch is stored once.
    ///
    /// [`Entry::blob_md5`]: crate::manifest::Entry::blob_md5
    pub async fn note_draft_blob_md5s(
        &self,
        draft: &Draft,
        pairs: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), RegistryError> {
        if pairs.is_empty() {
            return Ok(());
        }
        let bytes = serde_json::to_vec(pairs).map_err(|e| self.corrupt("drafts", e))?;
        self.store.put_create(&blob_md5s_key(&draft.id, &bytes), bytes.into()).await?;
        Ok(())
    }

    /// Gives every XXH128 entry of `manifest` without `extra.md5` the MD5 recorded for its digest
    /// by [`Registry::note_draft_blob_md5s`]. Refused if one was never declared, or declared with
    /// two different MD5s.
    pub async fn fill_blob_md5s(
        &self,
        draft: &Draft,
        manifest: &mut Manifest,
    ) -> Result<(), RegistryError> {
        use crate::manifest::{DigestAlg, EXTRA_MD5};
        let wanted = |e: &crate::manifest::Entry| {
            !e.is_reference() && e.alg() == DigestAlg::Xxh128 && e.blob_md5().is_none()
        };
        if !manifest.contents.values().any(wanted) {
            return Ok(());
        }
        let invalid =
            |reason: String| RegistryError::Invalid { name: draft.collection.to_string(), reason };
        let mut known: std::collections::HashMap<String, String> = Default::default();
        for listed in self.store.list(&blob_md5s_prefix(&draft.id)).await? {
            let bytes = self.store.get(&listed.key).await?;
            let batch: std::collections::BTreeMap<String, String> =
                serde_json::from_slice(&bytes).map_err(|e| self.corrupt(&listed.key, e))?;
            for (digest, md5) in batch {
                match known.get(&digest) {
                    Some(other) if *other != md5 => {
                        return Err(invalid(format!(
                            "the file with XXH128 digest {digest} was declared with two MD5s ({other} and {md5})"
                        )));
                    }
                    _ => {
                        known.insert(digest, md5);
                    }
                }
            }
        }
        for (path, entry) in manifest.contents.iter_mut().filter(|(_, e)| wanted(e)) {
            let Some(md5) = known.get(&entry.digest) else {
                return Err(invalid(format!(
                    "entry {path}: its file (XXH128 {}) was never declared with createArtifactFiles",
                    entry.digest
                )));
            };
            entry.extra.insert(EXTRA_MD5.to_owned(), Value::String(md5.clone()));
        }
        Ok(())
    }

    /// The drafts not committed yet, sorted for `gc`: those written to within the grace period
    /// are in progress (their uploaded manifests, and so their blobs, are kept); the others were
    /// abandoned (a client killed between `createArtifact` and `commitArtifact`), and every object
    /// of theirs goes. The grace period is the one blobs uploaded for a draft already rely on:
    /// they are unreferenced until the commit, so an upload idle for longer loses them anyway.
    pub(super) async fn draft_census(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<DraftCensus, RegistryError> {
        let listed = self.store.list(super::layout::DRAFTS).await?;
        let keys: std::collections::HashSet<&str> = listed.iter().map(|l| l.key.as_str()).collect();
        let mut drafts: std::collections::BTreeMap<&str, Vec<&crate::store::Listed>> =
            std::collections::BTreeMap::new();
        for l in &listed {
            let id = l.key.split('/').nth(1).unwrap_or_default();
            if valid_draft_id(id) {
                drafts.entry(id).or_default().push(l);
            }
        }
        let mut census = DraftCensus::default();
        for (id, objects) in drafts {
            if keys.contains(committed_key(id).as_str()) {
                continue;
            }
            if objects.iter().any(|l| l.last_modified > cutoff) {
                if keys.contains(manifest_pointer_key(id).as_str()) {
                    census.pending_manifests.push(self.draft_manifest_key(id).await?);
                }
                continue;
            }
            // The client's mapping first, the draft's own record last: a gc cut off halfway
            // leaves a draft that the next one finds abandoned again.
            let draft = self.draft(id).await?;
            if let Some(mapping) = draft.and_then(|d| d.client_id).map(|c| client_key(&c))
                && keys.contains(mapping.as_str())
            {
                census.abandoned.push(mapping);
            }
            let record = draft_key(id);
            census.abandoned.extend(objects.iter().map(|l| l.key.clone()).filter(|k| *k != record));
            census.abandoned_bytes += objects.iter().map(|l| l.size).sum::<u64>();
            if keys.contains(record.as_str()) {
                census.abandoned.push(record);
            }
            census.drafts_abandoned += 1;
        }
        Ok(census)
    }

    /// The manifest key an uncommitted draft's pointer names.
    async fn draft_manifest_key(&self, id: &str) -> Result<String, RegistryError> {
        let key = manifest_pointer_key(id);
        let bytes = self.store.get_opt(&key).await?.unwrap_or_default();
        let pointer: Pointer = serde_json::from_slice(&bytes).map_err(|e| {
            RegistryError::Unsafe(format!("the draft manifest pointer {key} cannot be read: {e}"))
        })?;
        Ok(pointer.key)
    }

    /// Makes the draft incremental over the manifest `base` (a stored manifest key, or
    /// `NO_BASE`): the manifest uploaded next holds only new and changed entries. Idempotent;
    /// another base for the same draft is refused.
    pub async fn set_draft_base(&self, draft: &Draft, base: &str) -> Result<(), RegistryError> {
        let key = base_key(&draft.id);
        let bytes = serde_json::to_vec(&Pointer { key: base.to_owned() })
            .map_err(|e| self.corrupt(&key, e))?;
        if self.store.put_create(&key, bytes.into()).await? {
            return Ok(());
        }
        match self.draft_base(&draft.id).await? {
            Some(k) if k == base => Ok(()),
            _ => Err(RegistryError::Invalid {
                name: draft.collection.to_string(),
                reason: "this pending version already extends another version".into(),
            }),
        }
    }

    /// The manifest an incremental draft extends.
    pub async fn draft_base(&self, id: &str) -> Result<Option<String>, RegistryError> {
        let key = base_key(id);
        match self.store.get_opt(&key).await? {
            Some(b) => Ok(Some(
                serde_json::from_slice::<Pointer>(&b).map_err(|e| self.corrupt(&key, e))?.key,
            )),
            None => Ok(None),
        }
    }

    /// Stores the draft's manifest (laid over its base, for an incremental draft). Sending the
    /// same manifest again is fine; a different one for the same draft is refused (a draft's
    /// content is fixed once uploaded).
    pub async fn set_draft_manifest(
        &self,
        draft: &Draft,
        manifest: &Manifest,
    ) -> Result<(), RegistryError> {
        if let Some(base) = self.draft_base(&draft.id).await?.filter(|b| b != NO_BASE) {
            let bytes = self.store.get(&base).await?;
            let mut full = Manifest::from_json(&bytes).map_err(|e| self.corrupt(&base, e))?;
            full.contents.extend(manifest.contents.iter().map(|(p, e)| (p.clone(), e.clone())));
            return self.set_full_draft_manifest(draft, &full).await;
        }
        self.set_full_draft_manifest(draft, manifest).await
    }

    async fn set_full_draft_manifest(
        &self,
        draft: &Draft,
        manifest: &Manifest,
    ) -> Result<(), RegistryError> {
        if let Some(d) = &draft.distributed {
            let part = Part {
                group: d.group.clone(),
                manifest: None,
                artifact_type: draft.artifact_type.clone(),
                aliases: Vec::new(),
                writer: super::writer_id(),
                created_at: Utc::now(),
                run: None,
            };
            self.add_part(&draft.collection, &part, Some(manifest), Some(d.round)).await?;
            return Ok(());
        }
        let key = self.put_manifest(manifest).await?;
        let pointer_key = manifest_pointer_key(&draft.id);
        let bytes = serde_json::to_vec(&Pointer { key: key.clone() })
            .map_err(|e| self.corrupt(&pointer_key, e))?;
        if self.store.put_create(&pointer_key, bytes.into()).await? {
            return Ok(());
        }
        match self.draft_status(&draft.id).await? {
            DraftStatus::Pending { manifest: Some(k) } if k == key => Ok(()),
            DraftStatus::Committed { .. } => Err(RegistryError::Invalid {
                name: draft.collection.to_string(),
                reason: "this version is already committed; its manifest cannot change".into(),
            }),
            _ => Err(RegistryError::Invalid {
                name: draft.collection.to_string(),
                reason: "a different manifest was already uploaded for this version".into(),
            }),
        }
    }

    /// Publishes a draft through the collection's commit log. Refused while a stored entry's
    /// file was never uploaded (verified). Committing twice returns the same version.
    pub async fn commit_draft(&self, draft: &Draft) -> Result<LogOutcome, RegistryError> {
        let invalid =
            |reason: String| RegistryError::Invalid { name: draft.collection.to_string(), reason };
        let manifest_key = match self.draft_status(&draft.id).await? {
            DraftStatus::Committed { version } => {
                let state = self.existing_state(&draft.collection).await?;
                let r = Self::resolve_in(
                    &draft.collection,
                    &state,
                    &crate::names::Selector::Version(version),
                )?;
                return Ok(LogOutcome {
                    version,
                    digest: r.record.digest,
                    created: false,
                    aliases: r.aliases,
                    uploaded_files: 0,
                    uploaded_bytes: 0,
                });
            }
            DraftStatus::Pending { .. } if draft.distributed.is_some() => {
                return self.commit_distributed(draft).await;
            }
            DraftStatus::Pending { manifest: None } => {
                return Err(invalid("cannot commit: its manifest was never uploaded".into()));
            }
            DraftStatus::Pending { manifest: Some(k) } => k,
        };
        let bytes = self.store.get(&manifest_key).await?;
        let manifest = Manifest::from_json(&bytes).map_err(|e| self.corrupt(&manifest_key, e))?;
        // Concurrent: one HEAD per file, thousands for a big artifact (each a request on S3).
        use futures::{StreamExt, TryStreamExt};
        // Owned pairs: the futures must be `Send` for any borrow (`artfs serve` awaits this).
        let stored: Vec<(String, Option<String>)> = manifest
            .contents
            .iter()
            .filter(|(_, e)| !e.is_reference())
            .map(|(p, e)| (p.clone(), entry_blob_key(e)))
            .collect();
        let mut missing: Vec<String> = futures::stream::iter(stored)
            .map(|(path, key)| async move {
                let present = match key {
                    Some(k) => self.store.head(&k).await?.is_some(),
                    None => false,
                };
                Ok::<_, RegistryError>((!present).then_some(path))
            })
            .buffer_unordered(super::HEADS_IN_FLIGHT)
            .try_filter_map(|m| async move { Ok(m) })
            .try_collect()
            .await?;
        missing.sort();
        if !missing.is_empty() {
            missing.truncate(10);
            return Err(invalid(format!(
                "cannot commit: these files were never uploaded (or failed verification): {}",
                missing.join(", ")
            )));
        }
        let req = LogRequest {
            history_step: draft.history_step,
            collection: draft.collection.clone(),
            artifact_type: draft.artifact_type.clone(),
            description: draft.description.clone(),
            metadata: draft.metadata.clone(),
            aliases: draft.aliases.clone(),
            manifest,
            sources: Default::default(),
        };
        let outcome = self.publish(&req).await?;
        let bytes = serde_json::to_vec(&Committed { version: outcome.version })
            .map_err(|e| self.corrupt("drafts", e))?;
        // A racing commit of the same draft published the same content, hence the same version.
        self.store.put_create(&committed_key(&draft.id), bytes.into()).await?;
        Ok(outcome)
    }
}

impl Registry {
    /// Joins the open round of a distributed group with the writer's aliases and run (a part
    /// without files) and returns it, for the round's draft.
    pub async fn join_group(
        &self,
        c: &CollectionPath,
        group: &str,
        artifact_type: &str,
        aliases: &[String],
        run: Option<RunPath>,
    ) -> Result<Distributed, RegistryError> {
        let part = Part {
            group: group.to_owned(),
            manifest: None,
            artifact_type: artifact_type.to_owned(),
            aliases: aliases.to_vec(),
            writer: super::writer_id(),
            created_at: Utc::now(),
            run,
        };
        let round = self.add_part(c, &part, None, None).await?;
        Ok(Distributed { group: group.to_owned(), round })
    }

    /// The finish of a distributed draft: its round's parts become the version.
    async fn commit_distributed(&self, draft: &Draft) -> Result<LogOutcome, RegistryError> {
        let Some(d) = &draft.distributed else {
            return Err(self.corrupt("drafts", "not a distributed draft"));
        };
        let outcome = self
            .finish_parts(
                &draft.collection,
                &d.group,
                Some(d.round),
                draft.description.clone(),
                draft.metadata.clone(),
            )
            .await?;
        let bytes = serde_json::to_vec(&Committed { version: outcome.version })
            .map_err(|e| self.corrupt("drafts", e))?;
        self.store.put_create(&committed_key(&draft.id), bytes.into()).await?;
        Ok(outcome)
    }

    /// `log` for a manifest whose stored entries are all in the registry already (uploaded
    /// across earlier requests): stores the manifest and publishes it with `log`'s rules (same
    /// content → no new version, the aliases and `latest` move to it).
    pub async fn publish(&self, req: &LogRequest) -> Result<LogOutcome, RegistryError> {
        for a in &req.aliases {
            validate_user_alias(a)?;
        }
        // The lease keeps `gc` from sweeping blobs this version is about to reference.
        let lease = self.lease().await?;
        let result = async {
            let manifest_key = self.put_manifest(&req.manifest).await?;
            self.publish_stored(req, &manifest_key, &lease).await
        }
        .await;
        lease.release().await;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Entry, md5_base64};
    use crate::store::{Store, cloud::Clouds};

    fn draft(c: &CollectionPath, client: Option<&str>) -> Draft {
        Draft {
            id: String::new(),
            collection: c.clone(),
            artifact_type: "dataset".into(),
            digest: "d".into(),
            description: Some("desc".into()),
            metadata: None,
            aliases: vec!["best".into()],
            run: None,
            client_id: client.map(str::to_owned),
            created_at: Utc::now(),
            distributed: None,
            tags: Vec::new(),
            ttl: None,
            history_step: None,
        }
    }

    #[tokio::test]
    async fn an_incremental_draft_is_its_base_with_the_upload_laid_over_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_str().unwrap(), &Clouds::default()).unwrap();
        let reg = Registry::new(store.clone());
        let c = CollectionPath::new("e", "p", "ds").unwrap();
        let put = async |body: &[u8]| {
            let key = crate::registry::blob_key(&md5_base64(body)).unwrap();
            store.put_create(&key, bytes::Bytes::copy_from_slice(body)).await.unwrap();
            Entry::stored(md5_base64(body), body.len() as u64)
        };
        let mut base = Manifest::default();
        base.contents.insert("a".into(), put(b"a").await);
        base.contents.insert("b".into(), put(b"old b").await);
        let d0 = reg.create_draft(draft(&c, None)).await.unwrap();
        reg.set_draft_manifest(&d0, &base).await.unwrap();
        reg.commit_draft(&d0).await.unwrap();
        let v0 = reg.resolve(&c, &crate::names::Selector::Version(0)).await.unwrap();

        let d1 = reg.create_draft(draft(&c, None)).await.unwrap();
        reg.set_draft_base(&d1, &v0.record.manifest).await.unwrap();
        reg.set_draft_base(&d1, &v0.record.manifest).await.unwrap();
        assert!(reg.set_draft_base(&d1, "manifests/other.json").await.is_err(), "one base only");
        let mut inc = Manifest::default();
        inc.contents.insert("b".into(), put(b"new b").await);
        inc.contents.insert("c".into(), put(b"c").await);
        reg.set_draft_manifest(&d1, &inc).await.unwrap();
        let out = reg.commit_draft(&d1).await.unwrap();
        let v1 = reg.resolve(&c, &crate::names::Selector::Version(out.version)).await.unwrap();
        let mut whole = base.clone();
        whole.contents.extend(inc.contents.clone());
        assert_eq!((out.version, v1.record.file_count), (1, 3));
        assert_eq!(v1.record.digest, whole.digest(), "digest of the whole, not of the upload");
        assert_eq!(reg.manifest(&v1).await.unwrap().contents["b"].digest, md5_base64(b"new b"));
    }

    /// A draft with a manifest and a blob uploaded, as the SDK leaves it before its commit.
    async fn uploaded_draft(
        reg: &Registry,
        store: &Store,
        c: &CollectionPath,
        client: &str,
    ) -> (Draft, String) {
        let d = reg.create_draft(draft(c, Some(client))).await.unwrap();
        let body = format!("upload of {client}").into_bytes();
        let key = crate::registry::blob_key(&md5_base64(&body)).unwrap();
        store.put_create(&key, body.clone().into()).await.unwrap();
        let mut m = Manifest::default();
        m.contents.insert("a.txt".into(), Entry::stored(md5_base64(&body), body.len() as u64));
        reg.set_draft_manifest(&d, &m).await.unwrap();
        (d, key)
    }

    #[tokio::test]
    async fn gc_keeps_a_draft_in_progress_and_sweeps_an_abandoned_one_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_str().unwrap(), &Clouds::default()).unwrap();
        let reg = Registry::new(store.clone());
        let c = CollectionPath::new("e", "p", "ds").unwrap();
        let (d, key) = uploaded_draft(&reg, &store, &c, "slow").await;
        // Written to within the grace period: in progress, its manifest and blob are kept.
        let report = reg.gc(std::time::Duration::from_secs(3600)).await.unwrap();
        assert_eq!((report.blobs_deleted, report.manifests_deleted), (0, 0), "{report:?}");
        assert_eq!(report.drafts_deleted, 0);
        assert_eq!(reg.commit_draft(&d).await.unwrap().version, 0);
        assert!(store.head(&key).await.unwrap().is_some());
        // Committed, its records stay (a retried commit finds them); an orphan blob still goes.
        let orphan = crate::registry::blob_key(&md5_base64(b"orphan")).unwrap();
        store.put_create(&orphan, bytes::Bytes::from_static(b"orphan")).await.unwrap();
        let report = reg.gc(std::time::Duration::ZERO).await.unwrap();
        assert_eq!((report.blobs_deleted, report.drafts_deleted), (1, 0), "{report:?}");
        assert!(reg.draft(&d.id).await.unwrap().is_some());
        // Never committed and idle past the grace period: abandoned. Everything it wrote goes,
        // its client id's mapping too, so a retry under that id opens a new draft.
        let (gone, gone_blob) = uploaded_draft(&reg, &store, &c, "killed").await;
        let report = reg.gc(std::time::Duration::ZERO).await.unwrap();
        assert_eq!(report.drafts_deleted, 1, "{report:?}");
        assert_eq!((report.blobs_deleted, report.manifests_deleted), (1, 1), "{report:?}");
        assert!(reg.draft(&gone.id).await.unwrap().is_none());
        assert!(reg.draft_by_client_id("killed").await.unwrap().is_none());
        assert!(store.head(&gone_blob).await.unwrap().is_none());
        assert!(store.list(&format!("drafts/{}/", gone.id)).await.unwrap().is_empty());
        let again = reg.create_draft(draft(&c, Some("killed"))).await.unwrap();
        assert_ne!(again.id, gone.id);
        // The committed version is untouched by all of it.
        assert!(store.head(&key).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn draft_is_invisible_until_committed_and_needs_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_str().unwrap(), &Clouds::default()).unwrap();
        let reg = Registry::new(store.clone());
        let c = CollectionPath::new("e", "p", "ds").unwrap();
        let d = reg.create_draft(draft(&c, Some("client-1"))).await.unwrap();
        assert!(valid_draft_id(&d.id));
        // A retry with the same client id finds the same draft.
        assert_eq!(reg.create_draft(draft(&c, Some("client-1"))).await.unwrap().id, d.id);
        let err = reg.commit_draft(&d).await.unwrap_err().to_string();
        assert!(err.contains("manifest was never uploaded"), "{err}");

        let body = b"hello".to_vec();
        let mut m = Manifest::default();
        m.contents.insert("a.txt".into(), Entry::stored(md5_base64(&body), 5));
        reg.set_draft_manifest(&d, &m).await.unwrap();
        reg.set_draft_manifest(&d, &m).await.unwrap();
        let mut other = m.clone();
        other.contents.insert("b.txt".into(), Entry::stored(md5_base64(b"x"), 1));
        assert!(reg.set_draft_manifest(&d, &other).await.is_err());
        assert_eq!(reg.state(&c).await.unwrap().seq, 0, "a draft is invisible");
        let err = reg.commit_draft(&d).await.unwrap_err().to_string();
        assert!(err.contains("never uploaded") && err.contains("a.txt"), "{err}");

        // A wrong body is refused and publishes nothing; the right one counts.
        let key = crate::registry::blob_key(&m.contents["a.txt"].digest).unwrap();
        let want: [u8; 16] = <md5::Md5 as md5::Digest>::digest(&body).into();
        let bad = futures::stream::iter([Ok(bytes::Bytes::from_static(b"hellO"))]);
        assert!(store.put_verified(&key, bad, want).await.is_err());
        assert_eq!(store.head(&key).await.unwrap(), None);
        let good = futures::stream::iter([Ok(bytes::Bytes::from(body.clone()))]);
        assert_eq!(store.put_verified(&key, good, want).await.unwrap(), 5);

        let out = reg.commit_draft(&d).await.unwrap();
        assert_eq!((out.version, out.created), (0, true));
        assert_eq!(reg.draft_status(&d.id).await.unwrap(), DraftStatus::Committed { version: 0 });
        assert_eq!(reg.commit_draft(&d).await.unwrap().version, 0);
        let state = reg.state(&c).await.unwrap();
        assert_eq!(state.aliases_of(0), ["latest", "best"]);
        assert_eq!(state.versions[&0].description.as_deref(), Some("desc"));
    }
}
