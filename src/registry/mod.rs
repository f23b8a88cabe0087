//! The artifact registry: collections of versions with aliases, on a `Store`, without a server.
//!
//! Layout below the registry root:
//! - `blobs/md5/<2 hex>/<30 hex>`: file contents, content-addressed and immutable;
//! - `chunks/md5/<2 hex>/<30 hex>.json`: per-chunk SHA-256 of large blobs (`store::chunks`);
//! - `manifests/<hex md5 of the bytes>.json`: W&B manifests, content-addressed;
//! - `collections/<entity>/<project>/<name>/{commits,checkpoints}/…`: one commit log per collection;
//! - `leases/…` and `gc/…`: markers that keep `gc` and writers apart;
//! - `drafts/…` (versions pending across requests), `runs/…` (one log per run), `keys/…`
//!   (hashed API keys) and `serve/…`: what `artfs serve` keeps (see `drafts`, `runs`, `keys`).
//!
//! Order of a log: blobs, then the manifest, then the commit that publishes the version. A reader
//! never sees a version whose manifest or blobs are missing; a crashed writer leaves only
//! unreferenced objects, which `gc` sweeps after a grace period.

pub mod drafts;
pub mod keys;
pub mod log;
pub mod runs;

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use serde_json::Value;

use crate::manifest::{Entry, Manifest, ManifestError};
use crate::names::{CollectionPath, LATEST, NameError, Selector, validate_user_alias};
use crate::store::{Store, StoreError};
pub use log::{CollectionState, Commit, Op, VersionRecord};

/// Attempts at publishing a commit before giving up on a very busy collection.
const MAX_COMMIT_ATTEMPTS: u32 = 200;
/// A lease or gc marker older than this belongs to a dead process and is ignored.
pub const LEASE_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("artifact {name} not found in {scope}; {}", list_or_none("artifacts there", .available))]
    UnknownArtifact { name: String, scope: String, available: Vec<String> },
    #[error("{name} has no version v{version}; {}", list_or_none("versions", .available))]
    UnknownVersion { name: String, version: u32, available: Vec<String> },
    #[error("{name} has no alias {alias:?}; {}", list_or_none("aliases", .available))]
    UnknownAlias { name: String, alias: String, available: Vec<String> },
    #[error(
        "{name} is a collection of type {existing:?}; it cannot take a version of type {requested:?}"
    )]
    TypeMismatch { name: String, existing: String, requested: String },
    #[error(
        "{name}:v{version} has aliases {aliases:?}; remove them first or pass --delete-aliases"
    )]
    HasAliases { name: String, version: u32, aliases: Vec<String> },
    #[error("registry {url}: {key} is corrupt: {reason}")]
    Corrupt { url: String, key: String, reason: String },
    #[error("manifest {key} of {name} is invalid: {source}")]
    Manifest {
        name: String,
        key: String,
        #[source]
        source: ManifestError,
    },
    #[error(
        "{name}: gave up after {MAX_COMMIT_ATTEMPTS} attempts to publish a commit; the collection is too busy, try again"
    )]
    Contention { name: String },
    #[error("{0}")]
    Busy(String),
    #[error("{name}: {reason}")]
    Invalid { name: String, reason: String },
}

fn list_or_none(what: &str, items: &[String]) -> String {
    if items.is_empty() {
        format!("there are no {what}")
    } else {
        format!("{what}: {}", items.join(", "))
    }
}

/// A resolved version: everything needed to show or mount it.
#[derive(Debug, Clone)]
pub struct ResolvedVersion {
    pub collection: CollectionPath,
    pub artifact_type: String,
    pub record: VersionRecord,
    pub aliases: Vec<String>,
}

/// What `log` did.
#[derive(Debug, Clone)]
pub struct LogOutcome {
    pub version: u32,
    pub digest: String,
    pub created: bool,
    pub aliases: Vec<String>,
    pub uploaded_files: u64,
    pub uploaded_bytes: u64,
}

/// Summary of one collection for `artfs ls`.
#[derive(Debug, Clone)]
pub struct CollectionSummary {
    pub collection: CollectionPath,
    pub artifact_type: String,
    pub versions: usize,
    pub latest: Option<VersionRecord>,
}

/// What `gc` removed.
#[derive(Debug, Default, Clone)]
pub struct GcReport {
    pub blobs_deleted: u64,
    pub bytes_deleted: u64,
    pub manifests_deleted: u64,
    pub kept_young: u64,
}

/// A log request: the manifest to publish and where its stored entries' bytes come from.
#[derive(Debug)]
pub struct LogRequest {
    pub collection: CollectionPath,
    pub artifact_type: String,
    pub description: Option<String>,
    pub metadata: Option<Value>,
    pub aliases: Vec<String>,
    pub manifest: Manifest,
    /// Local file of every stored (non-reference) entry, by entry path.
    pub sources: std::collections::HashMap<String, crate::store::UploadSource>,
}

/// Upload progress: files and bytes about to be sent, then byte counts.
pub trait UploadProgress: Sync {
    fn start(&self, files: u64, bytes: u64);
    fn advance(&self, bytes: u64);
}

impl UploadProgress for () {
    fn start(&self, _: u64, _: u64) {}
    fn advance(&self, _: u64) {}
}

#[derive(Debug, Clone)]
pub struct Registry {
    store: Store,
}

pub fn blob_key(md5_digest_b64: &str) -> Option<String> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD.decode(md5_digest_b64).ok()?;
    if raw.len() != 16 {
        return None;
    }
    let hex = hex::encode(raw);
    Some(format!("blobs/md5/{}/{}", &hex[..2], &hex[2..]))
}

fn collection_prefix(c: &CollectionPath) -> String {
    format!("collections/{}/{}/{}", c.entity, c.project, c.name)
}

fn writer_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}:{}", host.trim(), std::process::id())
}

fn unique_id() -> String {
    format!(
        "{}-{}-{:08x}",
        Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
        std::process::id(),
        fastrand::u32(..)
    )
}

impl Registry {
    pub fn new(store: Store) -> Registry {
        Registry { store }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn corrupt(&self, key: &str, reason: impl ToString) -> RegistryError {
        RegistryError::Corrupt {
            url: self.store.url().to_owned(),
            key: key.to_owned(),
            reason: reason.to_string(),
        }
    }

    // ---- reading ------------------------------------------------------------------------------

    /// The folded state of a collection (empty when it does not exist).
    pub async fn state(&self, c: &CollectionPath) -> Result<CollectionState, RegistryError> {
        self.refresh(c, CollectionState::default()).await
    }

    /// Brings `state` up to date by replaying only the commits after it (or after the newest
    /// checkpoint, if that is further along).
    pub async fn refresh(
        &self,
        c: &CollectionPath,
        mut state: CollectionState,
    ) -> Result<CollectionState, RegistryError> {
        let prefix = collection_prefix(c);
        let checkpoint_dir = format!("{prefix}/checkpoints");
        let after = log::checkpoint_key(&prefix, state.seq);
        if let Some(newest) = self.store.list_after(&checkpoint_dir, Some(&after)).await?.pop() {
            let bytes = self.store.get(&newest.key).await?;
            state = serde_json::from_slice(&bytes).map_err(|e| self.corrupt(&newest.key, e))?;
        }
        let commits = self
            .store
            .list_after(&format!("{prefix}/commits"), Some(&log::commit_key(&prefix, state.seq)))
            .await?;
        for listed in commits {
            let bytes = self.store.get(&listed.key).await?;
            let commit: Commit =
                serde_json::from_slice(&bytes).map_err(|e| self.corrupt(&listed.key, e))?;
            if log::seq_of_key(&listed.key) != Some(commit.seq) {
                return Err(self.corrupt(&listed.key, "sequence number does not match its key"));
            }
            state.apply(&commit).map_err(|e| self.corrupt(&listed.key, e))?;
        }
        Ok(state)
    }

    pub async fn entities(&self) -> Result<Vec<String>, RegistryError> {
        Ok(self.store.list_dirs("collections").await?)
    }

    pub async fn projects(&self, entity: &str) -> Result<Vec<String>, RegistryError> {
        Ok(self.store.list_dirs(&format!("collections/{entity}")).await?)
    }

    pub async fn collections(
        &self,
        entity: &str,
        project: &str,
    ) -> Result<Vec<String>, RegistryError> {
        Ok(self.store.list_dirs(&format!("collections/{entity}/{project}")).await?)
    }

    pub async fn summaries(
        &self,
        entity: &str,
        project: &str,
    ) -> Result<Vec<CollectionSummary>, RegistryError> {
        let mut out = Vec::new();
        for name in self.collections(entity, project).await? {
            let collection = CollectionPath::new(entity, project, &name)?;
            let state = self.state(&collection).await?;
            out.push(CollectionSummary {
                artifact_type: state.artifact_type.clone().unwrap_or_default(),
                versions: state.versions.len(),
                latest: state.latest().cloned(),
                collection,
            });
        }
        Ok(out)
    }

    /// The state of an existing collection, or an error listing the ones that exist.
    pub async fn existing_state(
        &self,
        c: &CollectionPath,
    ) -> Result<CollectionState, RegistryError> {
        let state = self.state(c).await?;
        if state.seq == 0 {
            return Err(RegistryError::UnknownArtifact {
                name: c.name.clone(),
                scope: format!("{}/{}", c.entity, c.project),
                available: self.collections(&c.entity, &c.project).await.unwrap_or_default(),
            });
        }
        Ok(state)
    }

    /// Resolves `name:alias` / `name:vN` in an already loaded state.
    pub fn resolve_in(
        c: &CollectionPath,
        state: &CollectionState,
        selector: &Selector,
    ) -> Result<ResolvedVersion, RegistryError> {
        let version = match selector {
            Selector::Version(v) => *v,
            Selector::Alias(a) => match state.aliases.get(a) {
                Some(v) => *v,
                None => {
                    return Err(RegistryError::UnknownAlias {
                        name: c.to_string(),
                        alias: a.clone(),
                        available: state.aliases.keys().cloned().collect(),
                    });
                }
            },
        };
        let Some(record) = state.versions.get(&version) else {
            return Err(RegistryError::UnknownVersion {
                name: c.to_string(),
                version,
                available: state.versions.keys().map(|v| format!("v{v}")).collect(),
            });
        };
        Ok(ResolvedVersion {
            collection: c.clone(),
            artifact_type: state.artifact_type.clone().unwrap_or_default(),
            record: record.clone(),
            aliases: state.aliases_of(version),
        })
    }

    pub async fn resolve(
        &self,
        c: &CollectionPath,
        selector: &Selector,
    ) -> Result<ResolvedVersion, RegistryError> {
        let state = self.existing_state(c).await?;
        Self::resolve_in(c, &state, selector)
    }

    pub async fn manifest(&self, v: &ResolvedVersion) -> Result<Manifest, RegistryError> {
        let key = &v.record.manifest;
        let bytes = self.store.get(key).await?;
        Manifest::from_json(&bytes).map_err(|source| RegistryError::Manifest {
            name: format!("{}:v{}", v.collection, v.record.version),
            key: key.clone(),
            source,
        })
    }

    // ---- writing ------------------------------------------------------------------------------

    /// Publishes one commit, deciding its content from the freshest state; retries when another
    /// writer published first. `decide` returns `None` when nothing needs to be written.
    async fn commit<T>(
        &self,
        c: &CollectionPath,
        mut decide: impl FnMut(&CollectionState) -> Result<(Option<Op>, T), RegistryError>,
    ) -> Result<(CollectionState, T), RegistryError> {
        let prefix = collection_prefix(c);
        let mut state = CollectionState::default();
        for attempt in 0..MAX_COMMIT_ATTEMPTS {
            state = self.refresh(c, state).await?;
            let (op, out) = decide(&state)?;
            let Some(op) = op else {
                return Ok((state, out));
            };
            let commit = Commit { seq: state.seq + 1, time: Utc::now(), writer: writer_id(), op };
            let bytes = serde_json::to_vec_pretty(&commit).map_err(|e| self.corrupt(&prefix, e))?;
            if self.store.put_create(&log::commit_key(&prefix, commit.seq), bytes.into()).await? {
                state.apply(&commit).map_err(|e| self.corrupt(&prefix, e))?;
                if commit.seq.is_multiple_of(log::CHECKPOINT_EVERY) {
                    self.write_checkpoint(&prefix, &state).await;
                }
                return Ok((state, out));
            }
            // Lost the race for this sequence number: back off a little, re-read, decide again.
            let jitter_ms = fastrand::u64(1..=(5 + 5 * u64::from(attempt.min(20))));
            tokio::time::sleep(Duration::from_millis(jitter_ms)).await;
        }
        Err(RegistryError::Contention { name: c.to_string() })
    }

    async fn write_checkpoint(&self, prefix: &str, state: &CollectionState) {
        let key = log::checkpoint_key(prefix, state.seq);
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

    /// Logs a version: uploads missing blobs, stores the manifest, publishes the commit. Content
    /// equal to an existing version (same artifact digest) makes no new version; the requested
    /// aliases and `latest` move to the existing one.
    pub async fn log(
        &self,
        req: &LogRequest,
        progress: &dyn UploadProgress,
    ) -> Result<LogOutcome, RegistryError> {
        let c = &req.collection;
        for a in &req.aliases {
            validate_user_alias(a)?;
        }
        let digest = req.manifest.digest();
        let check_type = |state: &CollectionState| match &state.artifact_type {
            Some(t) if state.seq > 0 && *t != req.artifact_type => {
                Err(RegistryError::TypeMismatch {
                    name: c.to_string(),
                    existing: t.clone(),
                    requested: req.artifact_type.clone(),
                })
            }
            _ => Ok(()),
        };
        let mut aliases: Vec<String> = vec![LATEST.to_owned()];
        aliases.extend(req.aliases.iter().filter(|a| *a != LATEST).cloned());
        let alias_op = |state: &CollectionState, version: u32| {
            let missing: Vec<String> = aliases
                .iter()
                .filter(|a| state.aliases.get(*a) != Some(&version))
                .cloned()
                .collect();
            (!missing.is_empty()).then_some(Op::Aliases { version, add: missing, remove: vec![] })
        };

        let state = self.state(c).await?;
        check_type(&state)?;
        if let Some(existing) = state.version_by_digest(&digest) {
            let version = existing.version;
            let (state, ()) = self.commit(c, |s| Ok((alias_op(s, version), ()))).await?;
            return Ok(LogOutcome {
                version,
                digest,
                created: false,
                aliases: state.aliases_of(version),
                uploaded_files: 0,
                uploaded_bytes: 0,
            });
        }

        let lease = self.acquire_lease().await?;
        let result = async {
            let (files, bytes) = self.upload_blobs(req, progress).await?;
            let manifest_key = self.put_manifest(&req.manifest).await?;
            let stored_aliases: Vec<String> = aliases[1..].to_vec();
            let (state, created) = self
                .commit(c, |s| {
                    check_type(s)?;
                    // A concurrent writer may have published the same content meanwhile.
                    if let Some(v) = s.version_by_digest(&digest) {
                        return Ok((alias_op(s, v.version), (v.version, false)));
                    }
                    let op = Op::Create {
                        version: s.next_version,
                        digest: digest.clone(),
                        manifest: manifest_key.clone(),
                        artifact_type: req.artifact_type.clone(),
                        description: req.description.clone(),
                        metadata: req.metadata.clone().unwrap_or(Value::Object(Default::default())),
                        size: req.manifest.size(),
                        file_count: req.manifest.contents.len() as u64,
                        aliases: stored_aliases.clone(),
                    };
                    Ok((Some(op), (s.next_version, true)))
                })
                .await?;
            let (version, created) = created;
            Ok(LogOutcome {
                version,
                digest: digest.clone(),
                created,
                aliases: state.aliases_of(version),
                uploaded_files: files,
                uploaded_bytes: bytes,
            })
        }
        .await;
        self.release(&lease).await;
        result
    }

    /// Uploads the blobs the registry does not have yet. Returns (files, bytes) uploaded.
    async fn upload_blobs(
        &self,
        req: &LogRequest,
        progress: &dyn UploadProgress,
    ) -> Result<(u64, u64), RegistryError> {
        use futures::{StreamExt, TryStreamExt};
        // One upload per distinct digest: W&B artifacts often hold the same file twice.
        let mut seen = HashSet::new();
        let mut todo: Vec<(&String, &Entry)> = Vec::new();
        for (path, entry) in &req.manifest.contents {
            if !entry.is_reference() && seen.insert(entry.digest.as_str()) {
                todo.push((path, entry));
            }
        }
        let heads: Vec<Option<(String, &String, &Entry)>> = futures::stream::iter(todo)
            .map(|(path, entry)| async move {
                let key = blob_key(&entry.digest).ok_or_else(|| RegistryError::Invalid {
                    name: req.collection.to_string(),
                    reason: format!("entry {path}: digest {} is not a base64 MD5", entry.digest),
                })?;
                let exists = self.store.head(&key).await?.is_some();
                Ok::<_, RegistryError>((!exists).then_some((key, path, entry)))
            })
            .buffer_unordered(16)
            .try_collect()
            .await?;
        let missing: Vec<_> = heads.into_iter().flatten().collect();
        let total: u64 = missing.iter().map(|(_, _, e)| e.size.unwrap_or(0)).sum();
        progress.start(missing.len() as u64, total);
        let advance = |n| progress.advance(n);
        futures::stream::iter(missing.iter())
            .map(|(key, path, entry)| {
                let advance = &advance;
                async move {
                    let src = req
                        .sources
                        .get(*path)
                        .ok_or_else(|| RegistryError::Invalid {
                            name: req.collection.to_string(),
                            reason: format!(
                                "entry {path}: the registry has no blob {} and no local file was given for it",
                                entry.digest
                            ),
                        })?;
                    self.store
                        .upload_file(key, src, advance)
                        .await
                        .map_err(RegistryError::from)
                }
            })
            .buffer_unordered(4)
            .try_collect::<()>()
            .await?;
        Ok((missing.len() as u64, total))
    }

    async fn put_manifest(&self, m: &Manifest) -> Result<String, RegistryError> {
        use md5::Digest;
        let bytes = m.to_json();
        let key = format!("manifests/{}.json", hex::encode(md5::Md5::digest(&bytes)));
        // Content-addressed: an existing object under this key holds these very bytes.
        self.store.put_create(&key, Bytes::from(bytes)).await?;
        Ok(key)
    }

    /// Adds and removes aliases of one version.
    pub async fn set_aliases(
        &self,
        c: &CollectionPath,
        version: u32,
        add: &[String],
        remove: &[String],
    ) -> Result<Vec<String>, RegistryError> {
        for a in add.iter().chain(remove) {
            if a != LATEST {
                validate_user_alias(a)?;
            } else {
                return Err(RegistryError::Invalid {
                    name: c.to_string(),
                    reason: "`latest` is moved by artfs itself and cannot be set or removed".into(),
                });
            }
        }
        let (state, ()) = self
            .commit(c, |s| {
                Self::resolve_in(c, s, &Selector::Version(version))?;
                let add: Vec<String> =
                    add.iter().filter(|a| s.aliases.get(*a) != Some(&version)).cloned().collect();
                let remove: Vec<String> = remove
                    .iter()
                    .filter(|a| s.aliases.get(*a) == Some(&version))
                    .cloned()
                    .collect();
                let op = (!add.is_empty() || !remove.is_empty()).then_some(Op::Aliases {
                    version,
                    add,
                    remove,
                });
                Ok((op, ()))
            })
            .await?;
        Ok(state.aliases_of(version))
    }

    pub async fn edit(
        &self,
        c: &CollectionPath,
        version: u32,
        description: Option<String>,
        metadata: Option<Value>,
        merge_metadata: Option<Value>,
    ) -> Result<VersionRecord, RegistryError> {
        let (state, ()) = self
            .commit(c, |s| {
                let current = Self::resolve_in(c, s, &Selector::Version(version))?.record;
                let mut metadata = metadata.clone();
                if let Some(Value::Object(patch)) = &merge_metadata {
                    let mut base = match metadata.take().unwrap_or(current.metadata.clone()) {
                        Value::Object(m) => m,
                        _ => Default::default(),
                    };
                    for (k, v) in patch {
                        base.insert(k.clone(), v.clone());
                    }
                    metadata = Some(Value::Object(base));
                }
                if description.is_none() && metadata.is_none() {
                    return Ok((None, ()));
                }
                Ok((Some(Op::Edit { version, description: description.clone(), metadata }), ()))
            })
            .await?;
        Self::resolve_in(c, &state, &Selector::Version(version)).map(|r| r.record)
    }

    /// Deletes one version; refuses while it has aliases unless `delete_aliases`.
    pub async fn delete_version(
        &self,
        c: &CollectionPath,
        version: u32,
        delete_aliases: bool,
    ) -> Result<(), RegistryError> {
        self.existing_state(c).await?;
        self.commit(c, |s| {
            let r = Self::resolve_in(c, s, &Selector::Version(version))?;
            if !r.aliases.is_empty() && !delete_aliases {
                return Err(RegistryError::HasAliases {
                    name: c.to_string(),
                    version,
                    aliases: r.aliases,
                });
            }
            Ok((Some(Op::Delete { version }), ()))
        })
        .await?;
        Ok(())
    }

    /// Deletes every version without an alias; returns the deleted version numbers.
    pub async fn delete_unaliased(&self, c: &CollectionPath) -> Result<Vec<u32>, RegistryError> {
        let state = self.existing_state(c).await?;
        let mut deleted = Vec::new();
        for &v in state.versions.keys() {
            if state.aliases_of(v).is_empty() {
                match self.delete_version(c, v, false).await {
                    Ok(()) => deleted.push(v),
                    // Someone aliased it meanwhile: keep it.
                    Err(RegistryError::HasAliases { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(deleted)
    }

    // ---- leases and garbage collection --------------------------------------------------------

    /// Marks a writer as active so that `gc` does not delete blobs it is about to reference.
    async fn acquire_lease(&self) -> Result<String, RegistryError> {
        let key = format!("leases/{}.json", unique_id());
        let body = serde_json::json!({"writer": writer_id(), "time": Utc::now()}).to_string();
        self.store.put_create(&key, body.into()).await?;
        // Write first, then look: of a writer and a gc running at once, at least one sees the other.
        let gc = self.live_markers("gc").await?;
        if !gc.is_empty() {
            self.release(&key).await;
            return Err(RegistryError::Busy(format!(
                "artfs gc is running on {} ({}); try again when it has finished",
                self.store.url(),
                gc.join(", ")
            )));
        }
        Ok(key)
    }

    async fn release(&self, key: &str) {
        if let Err(e) = self.store.delete(key).await {
            tracing::warn!("could not remove {key}: {e}");
        }
    }

    async fn live_markers(&self, dir: &str) -> Result<Vec<String>, RegistryError> {
        let cutoff = Utc::now() - chrono::Duration::from_std(LEASE_TTL).unwrap_or_default();
        Ok(self
            .store
            .list(dir)
            .await?
            .into_iter()
            .filter(|l| l.last_modified > cutoff)
            .map(|l| l.key)
            .collect())
    }

    /// Deletes blobs and manifests no live version uses and that are older than `grace`.
    pub async fn gc(&self, grace: Duration) -> Result<GcReport, RegistryError> {
        let marker = format!("gc/{}.json", unique_id());
        let body = serde_json::json!({"writer": writer_id(), "time": Utc::now()}).to_string();
        self.store.put_create(&marker, body.into()).await?;
        let writers = self.live_markers("leases").await?;
        let result = if writers.is_empty() {
            self.sweep(grace).await
        } else {
            Err(RegistryError::Busy(format!(
                "{} writer(s) are logging to {}; run gc again when they have finished ({})",
                writers.len(),
                self.store.url(),
                writers.join(", ")
            )))
        };
        self.release(&marker).await;
        result
    }

    async fn sweep(&self, grace: Duration) -> Result<GcReport, RegistryError> {
        let mut live_manifests = HashSet::new();
        for entity in self.entities().await? {
            for project in self.projects(&entity).await? {
                for name in self.collections(&entity, &project).await? {
                    let c = CollectionPath::new(&entity, &project, &name)?;
                    let state = self.state(&c).await?;
                    live_manifests.extend(state.versions.values().map(|v| v.manifest.clone()));
                }
            }
        }
        let mut live_blobs = HashSet::new();
        for key in &live_manifests {
            let bytes = self.store.get(key).await?;
            let m = Manifest::from_json(&bytes).map_err(|e| self.corrupt(key, e))?;
            live_blobs.extend(m.contents.values().filter_map(|e| match e.is_reference() {
                true => None,
                false => blob_key(&e.digest),
            }));
        }
        let cutoff = Utc::now() - chrono::Duration::from_std(grace).unwrap_or_default();
        let mut report = GcReport::default();
        for l in self.store.list("blobs").await? {
            if live_blobs.contains(&l.key) {
                continue;
            }
            if l.last_modified > cutoff {
                report.kept_young += 1;
                continue;
            }
            self.store.delete(&l.key).await?;
            report.blobs_deleted += 1;
            report.bytes_deleted += l.size;
        }
        let live_sidecars: HashSet<String> =
            live_blobs.iter().map(|b| crate::store::chunks::sidecar_key(b)).collect();
        for l in self.store.list("chunks").await? {
            if live_sidecars.contains(&l.key) || l.last_modified > cutoff {
                continue;
            }
            self.store.delete(&l.key).await?;
        }
        for l in self.store.list("manifests").await? {
            if live_manifests.contains(&l.key) {
                continue;
            }
            if l.last_modified > cutoff {
                report.kept_young += 1;
                continue;
            }
            self.store.delete(&l.key).await?;
            report.manifests_deleted += 1;
        }
        Ok(report)
    }
}
