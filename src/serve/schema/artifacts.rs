//! `Artifact`: one version (or a pending draft), its manifest, files, aliases and lineage.

use super::*;

#[derive(Clone, Debug)]
pub struct Artifact {
    pub id: String,
    pub collection: CollectionPath,
    pub artifact_type: String,
    pub version: Option<u32>,
    pub state: ArtifactState,
    pub digest: String,
    pub description: Option<String>,
    pub metadata: Option<String>,
    pub size: i64,
    pub file_count: i64,
    pub created_at: String,
    pub aliases: Vec<String>,
    pub manifest_key: Option<String>,
    pub tags: Vec<String>,
    /// W&B's `ttlDurationSeconds`: the TTL in force, or -2 for none.
    pub ttl_seconds: i64,
    pub ttl_inherited: bool,
    pub history_step: Option<u64>,
}

impl Artifact {
    pub fn committed(r: &ResolvedVersion) -> Artifact {
        Artifact {
            id: ids::version_id(&r.collection, r.record.version),
            collection: r.collection.clone(),
            artifact_type: r.artifact_type.clone(),
            version: Some(r.record.version),
            state: ArtifactState::Committed,
            digest: r.record.digest.clone(),
            description: r.record.description.clone(),
            metadata: Some(r.record.metadata.to_string()),
            size: r.record.size as i64,
            file_count: r.record.file_count as i64,
            created_at: time(r.record.created_at),
            aliases: r.aliases.clone(),
            manifest_key: Some(r.record.manifest.clone()),
            tags: r.record.tags.iter().cloned().collect(),
            ttl_seconds: ttl_in_force(r),
            ttl_inherited: r.record.ttl.is_inherit(),
            history_step: r.record.history_step,
        }
    }

    pub(super) fn pending(d: &Draft) -> Artifact {
        Artifact {
            id: ids::draft_id(&d.id),
            collection: d.collection.clone(),
            artifact_type: d.artifact_type.clone(),
            version: None,
            state: ArtifactState::Pending,
            digest: d.digest.clone(),
            description: d.description.clone(),
            metadata: d.metadata.as_ref().map(|m| m.to_string()),
            size: 0,
            file_count: 0,
            created_at: time(d.created_at),
            aliases: Vec::new(),
            manifest_key: None,
            tags: d.tags.clone(),
            ttl_seconds: WANDB_NO_TTL,
            ttl_inherited: d.ttl.is_none_or(|t| t.is_inherit()),
            history_step: d.history_step,
        }
    }

    /// The runs that logged (or used) this version, from the lineage index: one listing, not a
    /// scan of the project's runs; runs of entities the caller may not read are left out.
    pub(super) async fn project_runs(&self, ctx: &Context<'_>, kind: EdgeKind) -> Res<Vec<Run>> {
        let Some(version) = self.version else { return Ok(Vec::new()) };
        let key = VersionKey { collection: self.collection.clone(), version };
        let mut out = Vec::new();
        for (k, path) in reg(ctx).version_edges(&key).await.map_err(err)? {
            if k != kind || !access(ctx).can_read(&path.entity) {
                continue;
            }
            let state = reg(ctx).run_state(&path).await.map_err(err)?;
            out.push(Run { path, state });
        }
        Ok(out)
    }

    pub(super) fn alias_objects(&self) -> Vec<ArtifactAlias> {
        self.aliases
            .iter()
            .map(|a| ArtifactAlias { alias: a.clone(), collection: self.collection.clone() })
            .collect()
    }

    pub(super) async fn manifest(&self, ctx: &Context<'_>) -> Res<Manifest> {
        let Some(key) = &self.manifest_key else {
            return Err(not_found(format!(
                "{}: this version has no manifest yet",
                self.collection
            )));
        };
        let bytes = reg(ctx).store().get(key).await.map_err(err)?;
        Manifest::from_json(&bytes).map_err(stored_manifest)
    }
}

/// How the manifest at `key` computes its artifact digest.
pub(super) async fn digest_algorithm_of(r: &Registry, key: &str) -> Res<ArtifactDigestAlgorithm> {
    let manifest =
        Manifest::from_json(&r.store().get(key).await.map_err(err)?).map_err(stored_manifest)?;
    Ok(match manifest.digest_alg() {
        crate::manifest::DigestAlg::Md5 => ArtifactDigestAlgorithm::ManifestMd5,
        crate::manifest::DigestAlg::Xxh128 => ArtifactDigestAlgorithm::ManifestXxh128,
    })
}

/// Resolves an artifact id the caller may read: a version, or a draft (committed or not).
pub async fn artifact_by_id(
    registry: &Registry,
    access: &Access,
    id: &str,
) -> Result<Option<Artifact>, RegistryError> {
    match ids::decode(id) {
        Some(NodeId::Version(c, v)) => {
            if !access.can_read(&c.entity) {
                return Ok(None);
            }
            // Ids minted before a rename still name the version.
            let (c, state) = registry.follow(&c).await?;
            Ok(Registry::resolve_in(&c, &state, &Selector::Version(v))
                .ok()
                .map(|r| Artifact::committed(&r)))
        }
        Some(NodeId::Draft(d)) => {
            let Some(draft) = registry.draft(&d).await? else { return Ok(None) };
            if !access.can_read(&draft.collection.entity) {
                return Ok(None);
            }
            match registry.draft_status(&d).await? {
                DraftStatus::Committed { version } => {
                    let (c, state) = registry.follow(&draft.collection).await?;
                    Ok(Registry::resolve_in(&c, &state, &Selector::Version(version))
                        .ok()
                        .map(|r| Artifact::committed(&r)))
                }
                DraftStatus::Pending { .. } => Ok(Some(Artifact::pending(&draft))),
            }
        }
        _ => Ok(None),
    }
}

pub(super) async fn draft_for_write(ctx: &Context<'_>, id: &str) -> Res<Draft> {
    let missing = || not_found(format!("artifact {id} not found, or it is not a pending version"));
    let Some(NodeId::Draft(d)) = ids::decode(id) else { return Err(missing()) };
    let draft = reg(ctx).draft(&d).await.map_err(err)?.ok_or_else(missing)?;
    if !access(ctx).can_read(&draft.collection.entity) {
        return Err(missing());
    }
    must_write(ctx, &draft.collection.entity)?;
    Ok(draft)
}

/// A committed version the caller may write.
pub(super) async fn version_for_write(ctx: &Context<'_>, id: &str) -> Res<Artifact> {
    let a = artifact_by_id(reg(ctx), access(ctx), id)
        .await
        .map_err(err)?
        .filter(|a| a.version.is_some())
        .ok_or_else(|| not_found(format!("artifact {id} not found")))?;
    must_write(ctx, &a.collection.entity)?;
    Ok(a)
}

#[Object]
impl Artifact {
    async fn id(&self) -> &str {
        &self.id
    }
    async fn artifact_sequence(&self, ctx: &Context<'_>) -> Res<ArtifactSequence> {
        let state = reg(ctx).state(&self.collection).await.map_err(err)?;
        Ok(ArtifactSequence::new(self.collection.clone(), state))
    }
    async fn version_index(&self) -> Option<i32> {
        self.version.map(|v| v as i32)
    }
    async fn artifact_type(&self, ctx: &Context<'_>) -> ArtifactType {
        let _ = ctx;
        ArtifactType {
            project: Project {
                entity: self.collection.entity.clone(),
                name: self.collection.project.clone(),
            },
            name: self.artifact_type.clone(),
        }
    }
    async fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
    async fn metadata(&self) -> Option<JsonString> {
        self.metadata.clone().map(JsonString)
    }
    /// -2: no TTL (W&B's value for "none").
    async fn ttl_duration_seconds(&self) -> i64 {
        self.ttl_seconds
    }
    async fn ttl_is_inherited(&self) -> bool {
        self.ttl_inherited
    }
    async fn tags(&self) -> Vec<Tag> {
        self.tags.iter().map(|t| Tag::named(t)).collect()
    }
    /// The step of the logging run's history when it logged this version, as the SDK sent it
    /// (`null` for a version logged before the run's first `log()`).
    async fn history_step(&self) -> Option<i64> {
        self.history_step.and_then(|s| i64::try_from(s).ok())
    }
    async fn state(&self) -> ArtifactState {
        self.state
    }
    async fn size(&self) -> i64 {
        self.size
    }
    async fn digest(&self) -> &str {
        &self.digest
    }
    async fn digest_algorithm(&self, ctx: &Context<'_>) -> Res<ArtifactDigestAlgorithm> {
        match &self.manifest_key {
            Some(key) => digest_algorithm_of(reg(ctx), key).await,
            None => Ok(ArtifactDigestAlgorithm::ManifestMd5),
        }
    }
    /// The hash of what was committed: the MD5 of the version's stored manifest (`null` while
    /// pending). The SDK's `artifact.commit_hash` asserts one is there.
    async fn commit_hash(&self) -> Option<String> {
        let key = self.manifest_key.as_deref()?;
        crate::registry::layout::hex_of_manifest(key).map(str::to_owned)
    }
    async fn file_count(&self) -> i64 {
        self.file_count
    }
    async fn created_at(&self) -> &str {
        &self.created_at
    }
    async fn updated_at(&self) -> Option<&str> {
        Some(&self.created_at)
    }
    /// In every collection it is a member of, as W&B answers (the SDK keeps one collection's).
    async fn aliases(&self, ctx: &Context<'_>) -> Res<Vec<ArtifactAlias>> {
        links::all_aliases(ctx, self).await
    }
    async fn current_manifest(&self, ctx: &Context<'_>) -> Option<ArtifactManifest> {
        let key = self.manifest_key.as_ref()?;
        let s = shared(ctx);
        Some(ArtifactManifest {
            id: ids::other_id("ArtifactManifest", &self.id),
            file: File {
                id: ids::other_id("File", key),
                name: "wandb_manifest.json".into(),
                direct_url: s.manifest_url(key)?,
                ..File::default()
            },
        })
    }
    /// The first run that logged this version.
    async fn created_by(&self, ctx: &Context<'_>) -> Res<Option<Creator>> {
        let mut runs = self.project_runs(ctx, EdgeKind::Logged).await?;
        runs.sort_by_key(|r| r.state.created_at);
        Ok(runs.into_iter().next().map(|r| Creator::Run(Box::new(r))))
    }
    /// The runs that used this version.
    async fn used_by(&self, ctx: &Context<'_>) -> Res<RunConnection> {
        let runs = self.project_runs(ctx, EdgeKind::Used).await?;
        Ok(RunConnection::of(&runs, None, Some(MAX_PAGE as i32)))
    }
    /// Its own collection's membership and its links.
    async fn artifact_memberships(&self, ctx: &Context<'_>) -> Res<ArtifactMembershipConnection> {
        links::memberships(ctx, self).await
    }
}

/// What `createdBy` may be (artfs answers runs only).
#[derive(Union, Clone, Debug)]
pub enum Creator {
    Run(Box<Run>),
    User(User),
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ArtifactManifest {
    pub id: String,
    pub file: File,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ArtifactEdge {
    pub node: Artifact,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ArtifactConnection {
    pub total_count: i32,
    pub page_info: PageInfo,
    pub edges: Vec<ArtifactEdge>,
}
