//! Writing the registry: logging versions (blobs, then the manifest, then the commit), aliases,
//! edits and deletions, each one commit on the collection's log.

use std::collections::HashSet;

use bytes::Bytes;
use serde_json::Value;

use super::lease::{self, LeaseGuard};
use super::log::VersionRecord;
use super::{
    CollectionState, HEADS_IN_FLIGHT, Op, Registry, RegistryError, entry_blob_key, layout,
};
use crate::manifest::{Entry, Manifest};
use crate::names::{CollectionPath, LATEST, Selector, validate_user_alias};

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
    /// The step of the logging run's history when it logged this (W&B's `historyStep`).
    pub history_step: Option<u64>,
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

/// A log may not change an artifact's type once it has versions.
fn check_type(req: &LogRequest, state: &CollectionState) -> Result<(), RegistryError> {
    match &state.artifact_type {
        Some(t) if state.exists() && *t != req.artifact_type => Err(RegistryError::TypeMismatch {
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

impl Registry {
    /// Publishes one commit to a collection's log (see `commit_log::append`).
    pub(super) async fn commit<T>(
        &self,
        c: &CollectionPath,
        decide: impl FnMut(&CollectionState) -> Result<(Option<Op>, T), RegistryError>,
    ) -> Result<(CollectionState, T), RegistryError> {
        self.append(&layout::collection(c), &c.to_string(), decide).await
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
        if state.live_version_by_digest(&digest).is_some() {
            // Decided again on the freshest state at every attempt: the version may have been
            // deleted meanwhile, and then this content is logged as a new version below.
            let (state, found) = self
                .commit(c, |s| {
                    check_type(s)?;
                    Ok(match s.live_version_by_digest(&digest) {
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
                if let Some(v) = s.live_version_by_digest(&digest) {
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
                    history_step: req.history_step,
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
    pub(super) fn stored_entries<'a>(
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
    pub(super) async fn confirm(&self, lease: &LeaseGuard) -> Result<(), RegistryError> {
        if lease.is_intact() {
            return Ok(());
        }
        lease.renew().await?;
        let now = self.store_now(&lease.key()).await?;
        let gc = lease::census(&self.store, layout::GC, "", now, self.timing).await?;
        if !gc.live.is_empty() {
            return Err(RegistryError::LeaseLapsedDuringGc {
                url: self.store.url().to_owned(),
                markers: gc.live,
            });
        }
        Ok(())
    }

    /// Every blob and the manifest of a log must still be there when its commit is made: a
    /// version is never published over missing objects (e.g. swept by a gc that took the
    /// writer for dead).
    pub(super) async fn verify_stored(
        &self,
        req: &LogRequest,
        manifest: &str,
    ) -> Result<(), RegistryError> {
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
        Err(RegistryError::Disappeared { name: req.collection.to_string(), missing })
    }

    /// Uploads the blobs the registry does not have yet. Returns (files, bytes) uploaded.
    pub(super) async fn upload_blobs(
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

    pub(super) async fn put_manifest(&self, m: &Manifest) -> Result<String, RegistryError> {
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
        // `latest` is an alias like the others here; only logs move it by themselves.
        for a in add.iter().chain(remove).filter(|a| *a != LATEST) {
            validate_user_alias(a)?;
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
    /// Deletes one version; returns the version `latest` names afterwards, if any.
    pub async fn delete_version(
        &self,
        c: &CollectionPath,
        version: u32,
        delete_aliases: bool,
    ) -> Result<Option<u32>, RegistryError> {
        self.existing_state(c).await?;
        let (state, ()) = self
            .commit(c, |s| {
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
        self.unlink_all(c, version).await?;
        Ok(state.latest().map(|v| v.version))
    }

    /// Deletes every version without an alias; returns the deleted version numbers.
    pub async fn delete_unaliased(&self, c: &CollectionPath) -> Result<Vec<u32>, RegistryError> {
        let state = self.existing_state(c).await?;
        let mut deleted = Vec::new();
        for &v in state.versions.keys() {
            if state.aliases_of(v).is_empty() {
                match self.delete_version(c, v, false).await {
                    Ok(_) => deleted.push(v),
                    // Someone aliased it meanwhile: keep it.
                    Err(RegistryError::HasAliases { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(deleted)
    }
}
