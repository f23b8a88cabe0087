//! The artifact registry: collections of versions with aliases, on a `Store`, without a server.
//!
//! What is stored where: `layout` (every key, pinned by a golden test).
//!
//! Order of a log: blobs, then the manifest, then the commit that publishes the version. A reader
//! never sees a version whose manifest or blobs are missing; a crashed writer leaves only
//! unreferenced objects, which `gc` sweeps after a grace period.

mod commit_log;
pub mod drafts;
pub mod keys;
pub mod layout;
pub mod lease;
pub mod lineage;
pub mod log;
pub mod marker;
pub mod parts;
pub mod runs;
#[cfg(test)]
pub mod testing;

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use serde_json::Value;

use crate::manifest::{Entry, Manifest, ManifestError};
use crate::names::{CollectionPath, LATEST, NameError, Selector, validate_user_alias};
use crate::store::{Store, StoreError};
pub use lease::{LeaseGuard, LeaseTiming};
pub use log::{CollectionState, Commit, Op, VersionRecord};

use commit_log::MAX_COMMIT_ATTEMPTS;
/// Blob existence checks in flight at once.
const HEADS_IN_FLIGHT: usize = 16;

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
        "{name}:v{version} has aliases {}; remove them first or pass --delete-aliases",
        .aliases.join(", ")
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
    #[error("{name}: the commit would be invalid ({source}); nothing was published")]
    Refused {
        name: String,
        #[source]
        source: commit_log::FoldError,
    },
    #[error("gc deleted nothing: {0}")]
    Unsafe(String),
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
    /// Temporary objects of interrupted or killed writers (`…#…` names), counted in bytes too.
    pub temp_deleted: u64,
    /// Records of parallel groups' finished rounds (`parts/`), all but each group's newest.
    pub rounds_deleted: u64,
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
    timing: LeaseTiming,
    held: lease::HeldLeases,
}

/// The blob key of a stored entry (its MD5, or an XXH128 entry's `extra.md5`).
pub fn entry_blob_key(entry: &Entry) -> Option<String> {
    blob_key(entry.blob_md5()?)
}

pub fn blob_key(md5_digest_b64: &str) -> Option<String> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD.decode(md5_digest_b64).ok()?;
    Some(layout::blob_of_md5(&raw.try_into().ok()?))
}

fn collection_prefix(c: &CollectionPath) -> String {
    layout::collection(c)
}

fn writer_id() -> String {
    lease::Holder::me().writer
}

/// A log may not change an artifact's type once it has versions.
fn check_type(req: &LogRequest, state: &CollectionState) -> Result<(), RegistryError> {
    match &state.artifact_type {
        Some(t) if state.seq > 0 && *t != req.artifact_type => Err(RegistryError::TypeMismatch {
            name: req.collection.to_string(),
            existing: t.clone(),
            requested: req.artifact_type.clone(),
        }),
        _ => Ok(()),
    }
}

/// The aliases a log asks for besides `latest`, which the fold moves by itself.
fn user_aliases(req: &LogRequest) -> Vec<String> {
    req.aliases.iter().filter(|a| *a != LATEST).cloned().collect()
}

/// The commit that moves `latest` and the requested aliases to an existing `version`, if any
/// of them is elsewhere.
fn alias_op(req: &LogRequest, state: &CollectionState, version: u32) -> Option<Op> {
    let missing: Vec<String> = std::iter::once(LATEST.to_owned())
        .chain(user_aliases(req))
        .filter(|a| state.aliases.get(a) != Some(&version))
        .collect();
    (!missing.is_empty()).then_some(Op::Aliases { version, add: missing, remove: vec![] })
}

/// A name no other writer picks: time, process and a random part.
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
        Registry { store, timing: LeaseTiming::default(), held: Default::default() }
    }

    /// The same registry with other lease timings (tests; a server holding leases).
    pub fn with_lease_timing(mut self, timing: LeaseTiming) -> Registry {
        self.timing = timing;
        self
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
    /// usable checkpoint, if that is further along).
    pub async fn refresh(
        &self,
        c: &CollectionPath,
        state: CollectionState,
    ) -> Result<CollectionState, RegistryError> {
        self.load_log(&collection_prefix(c), state).await
    }

    pub async fn entities(&self) -> Result<Vec<String>, RegistryError> {
        Ok(self.store.list_dirs(layout::entities_dir()).await?)
    }

    pub async fn projects(&self, entity: &str) -> Result<Vec<String>, RegistryError> {
        Ok(self.store.list_dirs(&layout::projects_dir(entity)).await?)
    }

    pub async fn collections(
        &self,
        entity: &str,
        project: &str,
    ) -> Result<Vec<String>, RegistryError> {
        Ok(self.store.list_dirs(&layout::collections_dir(entity, project)).await?)
    }

    pub async fn summaries(
        &self,
        entity: &str,
        project: &str,
    ) -> Result<Vec<CollectionSummary>, RegistryError> {
        let mut out = Vec::new();
        for name in self.collections(entity, project).await? {
            // One bad collection must not hide the others: it is left out, with a warning.
            let collection = match CollectionPath::new(entity, project, &name) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(
                        "registry {}: skipping {entity}/{project}/{name}: {e}",
                        self.store.url()
                    );
                    continue;
                }
            };
            // (A registry that fails still fails the listing: only a broken log is left out.)
            let state = match self.state(&collection).await {
                Ok(s) => s,
                Err(e @ RegistryError::Corrupt { .. }) => {
                    tracing::warn!("skipping {collection}, which cannot be read: {e}");
                    continue;
                }
                Err(e) => return Err(e),
            };
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

    /// Publishes one commit to a collection's log (see `commit_log::append`).
    async fn commit<T>(
        &self,
        c: &CollectionPath,
        decide: impl FnMut(&CollectionState) -> Result<(Option<Op>, T), RegistryError>,
    ) -> Result<(CollectionState, T), RegistryError> {
        let prefix = collection_prefix(c);
        self.append(&prefix, &c.to_string(), CollectionState::default(), decide).await
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
        let check_type = |state: &CollectionState| check_type(req, state);
        let alias_op = |state: &CollectionState, version: u32| alias_op(req, state, version);

        let state = self.state(c).await?;
        check_type(&state)?;
        if state.version_by_digest(&digest).is_some() {
            // Decided again on the freshest state at every attempt: the version may have been
            // deleted meanwhile, and then this content is logged as a new version below.
            let (state, found) = self
                .commit(c, |s| {
                    check_type(s)?;
                    Ok(match s.version_by_digest(&digest) {
                        Some(v) => (alias_op(s, v.version), Some(v.version)),
                        None => (None, None),
                    })
                })
                .await?;
            if let Some(version) = found {
                return Ok(LogOutcome {
                    version,
                    digest,
                    created: false,
                    aliases: state.aliases_of(version),
                    uploaded_files: 0,
                    uploaded_bytes: 0,
                });
            }
        }

        let lease = self.lease().await?;
        let result = async {
            let (files, bytes) = self.upload_blobs(req, progress).await?;
            let manifest_key = self.put_manifest(&req.manifest).await?;
            let mut outcome = self.publish_stored(req, &manifest_key, &lease).await?;
            (outcome.uploaded_files, outcome.uploaded_bytes) = (files, bytes);
            Ok(outcome)
        }
        .await;
        lease.release().await;
        result
    }

    /// The last step of every log (CLI and `artfs serve` drafts alike): with the blobs and the
    /// manifest (at `manifest_key`) stored under `lease`, checks that the lease held and that
    /// they are all still there, then commits the version — or, when a concurrent writer
    /// published the same content meanwhile, moves the aliases to it.
    pub(crate) async fn publish_stored(
        &self,
        req: &LogRequest,
        manifest_key: &str,
        lease: &LeaseGuard,
    ) -> Result<LogOutcome, RegistryError> {
        self.confirm(lease).await?;
        self.verify_stored(req, manifest_key).await?;
        let digest = req.manifest.digest();
        let (state, (version, created)) = self
            .commit(&req.collection, |s| {
                check_type(req, s)?;
                if let Some(v) = s.version_by_digest(&digest) {
                    return Ok((alias_op(req, s, v.version), (v.version, false)));
                }
                let op = Op::Create {
                    version: s.next_version,
                    digest: digest.clone(),
                    manifest: manifest_key.to_owned(),
                    artifact_type: req.artifact_type.clone(),
                    description: req.description.clone(),
                    metadata: req.metadata.clone().unwrap_or(Value::Object(Default::default())),
                    size: req.manifest.size(),
                    file_count: req.manifest.contents.len() as u64,
                    aliases: user_aliases(req),
                };
                Ok((Some(op), (s.next_version, true)))
            })
            .await?;
        Ok(LogOutcome {
            version,
            digest,
            created,
            aliases: state.aliases_of(version),
            uploaded_files: 0,
            uploaded_bytes: 0,
        })
    }

    /// Stored entries of a log request: (entry path, entry, blob key), one per distinct digest.
    /// Refuses entries that could never be read back.
    fn stored_entries<'a>(
        &self,
        req: &'a LogRequest,
    ) -> Result<Vec<(&'a String, &'a Entry, String)>, RegistryError> {
        let invalid =
            |reason: String| RegistryError::Invalid { name: req.collection.to_string(), reason };
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (path, entry) in &req.manifest.contents {
            if entry.is_reference() || !seen.insert(entry.digest.as_str()) {
                continue;
            }
            // Blobs are stored and read by MD5: an XXH128 entry needs its blob's MD5 beside it.
            if entry.alg() == crate::manifest::DigestAlg::Xxh128 && entry.blob_md5().is_none() {
                return Err(invalid(format!(
                    "entry {path}: an XXH128 entry without extra.md5 cannot be read from an artfs registry (blobs are stored by MD5); give the file itself as a PATH"
                )));
            }
            let key = entry_blob_key(entry).ok_or_else(|| {
                invalid(format!("entry {path}: digest {} is not a base64 MD5", entry.digest))
            })?;
            out.push((path, entry, key));
        }
        Ok(out)
    }

    /// Before the commit: the lease must not have lapsed unnoticed (a process suspended for
    /// longer than its TTL); if it may have, it is renewed and gc must not be running.
    async fn confirm(&self, lease: &LeaseGuard) -> Result<(), RegistryError> {
        if lease.is_intact() {
            return Ok(());
        }
        lease.renew().await?;
        let now = self.store_now(&lease.key()).await?;
        let gc = lease::census(&self.store, layout::GC, "", now, self.timing).await?;
        if !gc.live.is_empty() {
            return Err(RegistryError::Busy(format!(
                "this log's lease lapsed and artfs gc is running on {} ({}); log again when it has finished",
                self.store.url(),
                gc.live.join(", ")
            )));
        }
        Ok(())
    }

    /// Every blob and the manifest of a log must still be there when its commit is made: a
    /// version is never published over missing objects (e.g. swept by a gc that took the
    /// writer for dead).
    async fn verify_stored(&self, req: &LogRequest, manifest: &str) -> Result<(), RegistryError> {
        use futures::{StreamExt, TryStreamExt};
        // Owned pairs: the stream's futures must be `Send` for any borrow (`artfs serve` awaits this).
        let entries: Vec<(String, String)> =
            self.stored_entries(req)?.into_iter().map(|(p, _, k)| (p.clone(), k)).collect();
        let missing: Vec<Option<String>> = futures::stream::iter(entries)
            .map(|(path, key)| async move {
                Ok::<_, RegistryError>(
                    self.store
                        .head(&key)
                        .await?
                        .is_none()
                        .then(|| format!("entry {path} (blob {key})")),
                )
            })
            .buffer_unordered(HEADS_IN_FLIGHT)
            .try_collect()
            .await?;
        let mut missing: Vec<String> = missing.into_iter().flatten().collect();
        if self.store.head(manifest).await?.is_none() {
            missing.push(format!("the manifest {manifest}"));
        }
        if missing.is_empty() {
            return Ok(());
        }
        missing.sort();
        Err(RegistryError::Invalid {
            name: req.collection.to_string(),
            reason: format!(
                "{} disappeared from the registry before the commit (removed by hand, or by a gc that took this log for dead); nothing was published, log again",
                missing.join(", ")
            ),
        })
    }

    /// Uploads the blobs the registry does not have yet. Returns (files, bytes) uploaded.
    async fn upload_blobs(
        &self,
        req: &LogRequest,
        progress: &dyn UploadProgress,
    ) -> Result<(u64, u64), RegistryError> {
        use futures::{StreamExt, TryStreamExt};
        // One upload per distinct digest: W&B artifacts often hold the same file twice.
        let todo = self.stored_entries(req)?;
        let heads: Vec<Option<(String, &String, &Entry)>> = futures::stream::iter(todo)
            .map(|(path, entry, key)| async move {
                match (self.store.head(&key).await?, entry.size) {
                    (None, _) => Ok((key, path, entry).into()),
                    // A blob is content-addressed: one of another size means the entry is wrong
                    // and could never be read back.
                    (Some(stored), Some(size)) if stored != size => Err(RegistryError::Invalid {
                        name: req.collection.to_string(),
                        reason: format!(
                            "entry {path}: the registry's blob {} has {stored} bytes, the entry says {size}",
                            entry.digest
                        ),
                    }),
                    (Some(_), _) => Ok(None),
                }
            })
            .buffer_unordered(HEADS_IN_FLIGHT)
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
        let bytes = m.to_json();
        let key = layout::manifest_of(&bytes);
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

    /// Takes a writer's lease, so that `gc` deletes nothing a write in progress is about to
    /// reference; it is renewed in the background until the guard is released or dropped.
    /// Refuses while gc runs.
    pub async fn lease(&self) -> Result<LeaseGuard, RegistryError> {
        let guard = self.hold(layout::LEASES).await?;
        // Write first, then look: of a writer and a gc running at once, at least one sees the other.
        let census = async {
            let now = self.store_now(&guard.key()).await?;
            Ok::<_, RegistryError>(
                lease::census(&self.store, layout::GC, "", now, self.timing).await?,
            )
        };
        let gc = match census.await {
            Ok(gc) => gc,
            Err(e) => {
                guard.release().await;
                return Err(e);
            }
        };
        if !gc.live.is_empty() {
            guard.release().await;
            return Err(RegistryError::Busy(format!(
                "artfs gc is running on {} ({}); try again when it has finished",
                self.store.url(),
                gc.live.join(", ")
            )));
        }
        Ok(guard)
    }

    /// The store's clock: when `key`, just written, was last modified.
    async fn store_now(&self, key: &str) -> Result<chrono::DateTime<Utc>, RegistryError> {
        Ok(self.store.modified(key).await?.unwrap_or_else(Utc::now))
    }

    async fn hold(&self, dir: &'static str) -> Result<LeaseGuard, RegistryError> {
        let key = lease::new_key(dir);
        self.store.put_create(&key, lease::body()).await?;
        Ok(LeaseGuard::start(self.store.clone(), dir, key, self.timing, self.held.clone()))
    }

    /// After Ctrl-C or SIGTERM: stops local uploads, removes their temporary files and the
    /// leases this process holds, so an interrupted command leaves nothing behind.
    pub async fn interrupt(&self) {
        self.store.cancel_uploads().await;
        let keys: Vec<String> =
            self.held.lock().map(|h| h.iter().cloned().collect()).unwrap_or_default();
        for key in keys {
            lease::delete(&self.store, &key, &self.held).await;
        }
    }

    /// Deletes blobs and manifests no live version (nor unfinished part, nor uncommitted draft's
    /// uploaded manifest) uses and that are older than `grace`, and
    /// temporary objects that interrupted writers left behind. Fails safe: anything it cannot
    /// read completely, or that looks wrong, means nothing is deleted.
    pub async fn gc(&self, grace: Duration) -> Result<GcReport, RegistryError> {
        let marker = self.hold(layout::GC).await?;
        let result = async {
            let now = self.store_now(&marker.key()).await?;
            let writers = lease::census(&self.store, layout::LEASES, "", now, self.timing).await?;
            if !writers.live.is_empty() {
                return Err(RegistryError::Busy(format!(
                    "{} writer(s) are logging to {}; run gc again when they have finished ({})",
                    writers.live.len(),
                    self.store.url(),
                    writers.live.join(", ")
                )));
            }
            let report = self.sweep(grace).await?;
            // Leases of dead writers are only clutter now.
            for key in writers.stale {
                self.store.delete(&key).await?;
            }
            let markers =
                lease::census(&self.store, layout::GC, &marker.key(), now, self.timing).await?;
            for key in markers.stale {
                self.store.delete(&key).await?;
            }
            Ok(report)
        }
        .await;
        marker.release().await;
        result
    }

    /// Everything is read before anything is deleted.
    async fn sweep(&self, grace: Duration) -> Result<GcReport, RegistryError> {
        let mut live_manifests = HashSet::new();
        // Only directories belong above the logs: a file there may be a directory of
        // collections that was replaced, whose versions gc could then not see.
        let level = |prefix: String| async move {
            let (dirs, files) = self.store.list_level(&prefix).await?;
            match files.first() {
                Some(file) => Err(RegistryError::Unsafe(format!(
                    "{file} is a file where only directories of collections belong; move it away, then run gc again"
                ))),
                None => Ok(dirs),
            }
        };
        let cutoff =
            Utc::now() - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        // Versions still being written: a parallel group's parts and `artfs serve` drafts. One
        // whose manifest is gone cannot be finished anyway, so it does not stop gc.
        let parts = self.parts_census(cutoff).await?;
        let mut pending: HashSet<String> = parts.open_manifests.into_iter().collect();
        pending.extend(self.pending_draft_manifests().await?);
        let entities = level(layout::entities_dir().into()).await?;
        if entities.is_empty()
            && self.store.list(layout::MANIFESTS).await?.iter().any(|l| !pending.contains(&l.key))
        {
            return Err(RegistryError::Unsafe(
                "the registry has manifests but no collections (is `collections` a directory?)"
                    .into(),
            ));
        }
        for entity in entities {
            for project in level(layout::projects_dir(&entity)).await? {
                let collections = layout::collections_dir(&entity, &project);
                for name in level(collections.clone()).await? {
                    // Whatever its name: a directory artfs would not create may still hold a log.
                    let prefix = format!("{collections}/{name}");
                    let state: CollectionState = self.prove_log(&prefix, log::difference).await?;
                    live_manifests.extend(state.versions.values().map(|v| v.manifest.clone()));
                }
            }
        }
        pending.retain(|k| !live_manifests.contains(k));
        let mut live_blobs = HashSet::new();
        for key in live_manifests.iter().chain(&pending) {
            let Some(bytes) = self.store.get_opt(key).await? else {
                if pending.contains(key) {
                    continue;
                }
                return Err(RegistryError::Unsafe(format!("the live manifest {key} is missing")));
            };
            let m = Manifest::from_json(&bytes).map_err(|e| {
                RegistryError::Unsafe(format!("the live manifest {key} cannot be read: {e}"))
            })?;
            live_blobs.extend(m.contents.values().filter_map(entry_blob_key));
        }
        let live_sidecars: HashSet<String> =
            live_blobs.iter().map(|b| layout::chunk_sidecar(b)).collect();
        let (blobs, sidecars, manifests) = (
            self.store.list(layout::BLOBS).await?,
            self.store.list(layout::CHUNKS).await?,
            self.store.list(layout::MANIFESTS).await?,
        );
        let mut temps = Vec::new();
        for dir in [layout::BLOBS, layout::CHUNKS, layout::MANIFESTS] {
            temps.extend(self.store.list_temporary(dir).await?);
        }

        let mut report = GcReport::default();
        for l in blobs {
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
        for l in sidecars {
            if live_sidecars.contains(&l.key) || l.last_modified > cutoff {
                continue;
            }
            self.store.delete(&l.key).await?;
        }
        for l in manifests {
            if live_manifests.contains(&l.key) || pending.contains(&l.key) {
                continue;
            }
            if l.last_modified > cutoff {
                report.kept_young += 1;
                continue;
            }
            self.store.delete(&l.key).await?;
            report.manifests_deleted += 1;
        }
        // No writer holds a lease now, so no temporary object is being written: they are what
        // interrupted or killed writers left (the grace period still applies).
        for l in temps {
            if l.last_modified > cutoff {
                report.kept_young += 1;
                continue;
            }
            self.store.delete_temporary(&l.key).await?;
            report.temp_deleted += 1;
            report.bytes_deleted += l.size;
        }
        for key in &parts.deletable {
            self.store.delete(key).await?;
        }
        report.rounds_deleted = parts.rounds;
        Ok(report)
    }
}

#[cfg(test)]
mod tests;
