//! The `Mutation` root: runs, drafts, manifests, files, commits, aliases and deletions.

use super::*;

pub struct Mutation;

#[Object]
impl Mutation {
    async fn upsert_bucket(
        &self,
        ctx: &Context<'_>,
        input: UpsertBucketInput,
    ) -> Res<Option<UpsertBucketPayload>> {
        let entity =
            input.entity_name.clone().unwrap_or_else(|| access(ctx).default_entity().to_owned());
        let project = input.model_name.clone().unwrap_or_else(|| "uncategorized".to_owned());
        let Some(name) = input.name.clone() else {
            return Err(invalid("upsertBucket: a run name is required"));
        };
        must_write(ctx, &entity)?;
        let path = RunPath::new(&entity, &project, &name).map_err(err)?;
        let fields = RunFields {
            display_name: input.display_name,
            job_type: input.job_type,
            group: input.group_name,
            config: input.config.map(|c| c.0),
            summary_metrics: input.summary_metrics.map(|c| c.0),
            description: input.description,
            notes: input.notes,
            host: input.host,
            program: input.job_program,
            commit: input.commit,
            tags: input.tags,
            state: input.state,
        };
        let state =
            reg(ctx).record_run(&path, RunOp::Upsert(Box::new(fields))).await.map_err(err)?;
        let inserted = state.seq == 1;
        Ok(Some(UpsertBucketPayload {
            bucket: Some(Run { path, state }),
            inserted: Some(inserted),
        }))
    }

    async fn create_run_files(
        &self,
        ctx: &Context<'_>,
        input: CreateRunFilesInput,
    ) -> Res<CreateRunFilesPayload> {
        let (Some(e), Some(p), Some(r)) =
            (&input.entity_name, &input.project_name, &input.run_name)
        else {
            return Err(invalid(
                "createRunFiles: entityName, projectName and runName are required",
            ));
        };
        must_write(ctx, e)?;
        let run = RunPath::new(e, p, r).map_err(err)?;
        let s = shared(ctx);
        let mut files = Vec::new();
        for name in input.files.unwrap_or_default() {
            crate::manifest::validate_path(&name).map_err(|e| invalid(e.to_string()))?;
            files.push(RunFileUrl { upload_url: Some(s.run_file_url(&run, &name)), name });
        }
        Ok(CreateRunFilesPayload {
            run_id: Some(ids::run_id(&run)),
            upload_headers: Vec::new(),
            files,
        })
    }

    async fn create_artifact(
        &self,
        ctx: &Context<'_>,
        input: CreateArtifactInput,
    ) -> Res<CreateArtifactPayload> {
        let entity =
            input.entity_name.clone().unwrap_or_else(|| access(ctx).default_entity().to_owned());
        let name = collection_name_of(&input)?;
        let (Some(project), Some(name), Some(ty), Some(digest)) = (
            input.project_name.as_deref(),
            name.as_deref(),
            input.artifact_type_name.as_deref(),
            input.digest.as_deref(),
        ) else {
            return Err(invalid(
                "createArtifact: projectName, artifactCollectionName, artifactTypeName and digest are required",
            ));
        };
        must_write(ctx, &entity)?;
        if let Some(region) = input.storage_region.as_deref()
            && !shared(ctx).storage_region_ok(region)
        {
            // W&B's words, which the SDK's callers match on.
            return Err(invalid(format!("CreateArtifact invalid storageRegion: {region}")));
        }
        registries::must_write_registry(ctx, &entity, project, ty)?;
        let c = CollectionPath::new(&entity, project, name).map_err(err)?;
        let r = reg(ctx);
        let state = r.state(&c).await.map_err(err)?;
        if let Some(t) = state.artifact_type.as_ref().filter(|_| state.exists())
            && t != ty
        {
            return Err(err(RegistryError::TypeMismatch {
                name: c.to_string(),
                existing: t.clone(),
                requested: ty.to_owned(),
            }));
        }
        let mut aliases: Vec<String> = Vec::new();
        for a in input.aliases.unwrap_or_default() {
            if a.alias != LATEST && !aliases.contains(&a.alias) {
                crate::names::validate_user_alias(&a.alias).map_err(err)?;
                aliases.push(a.alias);
            }
        }
        let metadata = metadata_json("createArtifact", input.metadata)?;
        let tags = tag_names(input.tags)?;
        let ttl = ttl_input(input.ttl_duration_seconds);
        // A part's digest is its own, not the version's: distributed writers never dedup.
        let dedup =
            input.enable_digest_deduplication != Some(false) && input.distributed_id.is_none();
        if dedup && let Some(existing) = state.live_version_by_digest(digest) {
            let run = run_path(Some(&entity), Some(project), input.run_name.as_deref());
            let artifact = relog(ctx, &c, &state, existing.version, ty, aliases, run).await?;
            retag(ctx, &artifact, &tags, &[], ttl).await?;
            return Ok(CreateArtifactPayload { artifact });
        }
        let distributed = match &input.distributed_id {
            Some(g) => {
                let run = run_path(Some(&entity), Some(project), input.run_name.as_deref());
                Some(r.join_group(&c, g, ty, &aliases, run).await.map_err(err)?)
            }
            None => None,
        };
        let draft = r
            .create_draft(Draft {
                id: String::new(),
                collection: c,
                artifact_type: ty.to_owned(),
                digest: digest.to_owned(),
                description: input.description,
                metadata,
                aliases,
                run: input.run_name,
                client_id: input.client_id,
                created_at: Utc::now(),
                distributed,
                tags,
                ttl,
                history_step: input.history_step.and_then(|s| u64::try_from(s).ok()),
            })
            .await
            .map_err(err)?;
        let artifact = match r.draft_status(&draft.id).await.map_err(err)? {
            DraftStatus::Committed { .. } => {
                artifact_by_id(r, access(ctx), &ids::draft_id(&draft.id))
                    .await
                    .map_err(err)?
                    .unwrap_or_else(|| Artifact::pending(&draft))
            }
            DraftStatus::Pending { .. } => Artifact::pending(&draft),
        };
        Ok(CreateArtifactPayload { artifact })
    }

    async fn create_artifact_manifest(
        &self,
        ctx: &Context<'_>,
        input: CreateArtifactManifestInput,
    ) -> Res<ArtifactManifestPayload> {
        let id = input.artifact_id.as_deref().unwrap_or_default();
        let draft = draft_for_write(ctx, id).await?;
        let patch = matches!(input.manifest_type, Some(ArtifactManifestType::Patch));
        let full = matches!(input.manifest_type, None | Some(ArtifactManifestType::Full));
        let incremental = matches!(input.manifest_type, Some(ArtifactManifestType::Incremental));
        if incremental && draft.distributed.is_none() && input.base_artifact_id.is_none() {
            // The first version of an incremental artifact (an incremental Table's first log)
            // extends nothing: W&B takes its manifest as it is.
            reg(ctx).set_draft_base(&draft, NO_BASE).await.map_err(err)?;
        } else if incremental && draft.distributed.is_none() {
            // The version it extends: its manifest is the base the upload is laid over.
            let base_id = input.base_artifact_id.as_deref().unwrap_or_default();
            let base = artifact_by_id(reg(ctx), access(ctx), base_id)
                .await
                .map_err(err)?
                .and_then(|a| a.manifest_key)
                .ok_or_else(|| {
                    invalid(format!(
                        "createArtifactManifest: INCREMENTAL needs baseArtifactID, a committed version you may read ({base_id:?} is not)"
                    ))
                })?;
            reg(ctx).set_draft_base(&draft, &base).await.map_err(err)?;
        } else if !(full || patch && draft.distributed.is_some()) {
            return Err(invalid(
                "createArtifactManifest: only FULL and INCREMENTAL manifests, and PATCH manifests of distributed artifacts, are supported by artfs serve",
            ));
        }
        let s = shared(ctx);
        Ok(ArtifactManifestPayload {
            artifact_manifest: ArtifactManifest {
                id: ids::other_id("ArtifactManifest", &draft.id),
                file: File {
                    id: ids::other_id("File", &draft.id),
                    name: input.name.unwrap_or_else(|| "wandb_manifest.json".into()),
                    upload_url: Some(s.draft_manifest_url(&draft.id)),
                    upload_headers: Some(vec!["Content-Type:application/json".into()]),
                    direct_url: s.public_url.clone(),
                    ..File::default()
                },
            },
        })
    }

    /// A distributed writer's PATCH manifest (uploaded to its draft, where it becomes a part),
    /// or an incremental draft's manifest (laid over its base when uploaded).
    async fn update_artifact_manifest(
        &self,
        ctx: &Context<'_>,
        input: UpdateArtifactManifestInput,
    ) -> Res<ArtifactManifestPayload> {
        let id = input.artifact_manifest_id.as_deref().unwrap_or_default();
        let refused = || {
            invalid(
                "updateArtifactManifest: only PATCH manifests of distributed artifacts and INCREMENTAL manifests are supported by artfs serve",
            )
        };
        let Some(NodeId::Other(d)) = ids::decode(id) else { return Err(refused()) };
        let draft = draft_for_write(ctx, &ids::draft_id(&d)).await?;
        let incremental = reg(ctx).draft_base(&draft.id).await.map_err(err)?.is_some();
        if draft.distributed.is_none() && !incremental {
            return Err(refused());
        }
        let name = if incremental {
            "wandb_manifest.incremental.json"
        } else {
            "wandb_manifest.patch.json"
        };
        let s = shared(ctx);
        Ok(ArtifactManifestPayload {
            artifact_manifest: ArtifactManifest {
                id: id.to_owned(),
                file: File {
                    id: ids::other_id("File", &draft.id),
                    name: name.into(),
                    upload_url: Some(s.draft_manifest_url(&draft.id)),
                    upload_headers: Some(vec!["Content-Type:application/json".into()]),
                    direct_url: s.public_url.clone(),
                    ..File::default()
                },
            },
        })
    }

    async fn create_artifact_files(
        &self,
        ctx: &Context<'_>,
        input: CreateArtifactFilesInput,
    ) -> Res<CreateArtifactFilesPayload> {
        let s = shared(ctx);
        let mut drafts: std::collections::HashMap<String, (Draft, Artifact)> = Default::default();
        // XXH128 drafts: entry digest → blob MD5, which the manifest will need (see fill_blob_md5s).
        let mut md5s: std::collections::HashMap<
            String,
            std::collections::BTreeMap<String, String>,
        > = Default::default();
        let mut specs = Vec::with_capacity(input.artifact_files.len());
        for spec in input.artifact_files {
            if !drafts.contains_key(&spec.artifact_id) {
                let d = draft_for_write(ctx, &spec.artifact_id).await?;
                let a = Artifact::pending(&d);
                drafts.insert(spec.artifact_id.clone(), (d, a));
            }
            if let Some(digest) = spec.digest.as_ref().filter(|d| **d != spec.md5) {
                md5s.entry(spec.artifact_id.clone())
                    .or_default()
                    .insert(digest.clone(), spec.md5.clone());
            }
            crate::manifest::validate_path(&spec.name).map_err(|e| invalid(e.to_string()))?;
            let key = blob_key(&spec.md5).ok_or_else(|| {
                invalid(format!(
                    "createArtifactFiles: {}: md5 {:?} is not a base64 MD5",
                    spec.name, spec.md5
                ))
            })?;
            specs.push((spec, key));
        }
        // Which blobs the registry has: one HEAD per file (a batch holds up to 2,000), concurrently.
        use futures::{StreamExt, TryStreamExt};
        // Owned keys: the futures must be `Send` for any borrow (the engine's futures are).
        let keys: Vec<String> = specs.iter().map(|(_, k)| k.clone()).collect();
        let store = s.registry.store().clone();
        let stored: Vec<bool> = futures::stream::iter(keys)
            .map(|key| {
                let store = store.clone();
                async move { Ok::<_, Error>(store.head(&key).await.map_err(err)?.is_some()) }
            })
            .buffered(HEADS_IN_FLIGHT)
            .try_collect()
            .await?;
        let mut edges = Vec::with_capacity(specs.len());
        for ((spec, key), stored) in specs.into_iter().zip(stored) {
            let multipart = match (&spec.upload_parts_input, stored) {
                (Some(parts), false) => Some(multipart_urls(s, &spec.name, parts)?),
                _ => None,
            };
            edges.push(FileEdge {
                node: File {
                    id: ids::other_id("File", &spec.name),
                    name: spec.name,
                    // `null` means "already stored": only said when the registry has the blob.
                    upload_url: (!stored).then(|| s.blob_url("PUT", &key)),
                    upload_headers: Some(Vec::new()),
                    storage_path: Some(key),
                    upload_multipart_urls: multipart,
                    direct_url: s.public_url.clone(),
                    artifact: drafts.get(&spec.artifact_id).map(|(_, a)| a.clone()),
                    ..File::default()
                },
            });
        }
        for (id, pairs) in &md5s {
            if let Some((d, _)) = drafts.get(id) {
                s.registry.note_draft_blob_md5s(d, pairs).await.map_err(err)?;
            }
        }
        Ok(CreateArtifactFilesPayload {
            files: FileConnection {
                total_count: Some(edges.len() as i32),
                page_info: PageInfo { end_cursor: None, has_next_page: false },
                edges,
            },
        })
    }

    /// Joins the parts, in order, into the blob; published only if the whole file hashes to the
    /// MD5 its storage path names. The parts are then removed.
    async fn complete_multipart_upload_artifact(
        &self,
        ctx: &Context<'_>,
        input: CompleteMultipartUploadArtifactInput,
    ) -> Res<CompleteMultipartPayload> {
        use futures::{StreamExt, TryStreamExt};
        draft_for_write(ctx, input.artifact_id.as_deref().unwrap_or_default()).await?;
        let upload = input.upload_id.unwrap_or_default();
        let key = input.storage_path.unwrap_or_default();
        let want = md5_of_blob_key(&key);
        let (true, Some(want)) = (valid_upload_id(&upload), want) else {
            return Err(invalid("completeMultipartUploadArtifact: unknown upload or storage path"));
        };
        let store = reg(ctx).store().clone();
        let blob = key.clone();
        if store.head(&key).await.map_err(err)?.is_some() {
            return Ok(CompleteMultipartPayload { digest: Some(hex::encode(want)) });
        }
        let mut parts = input.completed_parts.unwrap_or_default();
        parts.sort_by_key(|p| p.part_number);
        let mut keys = Vec::with_capacity(parts.len());
        for (i, p) in parts.iter().enumerate() {
            if p.part_number != i as i32 + 1 {
                return Err(invalid(format!(
                    "completeMultipartUploadArtifact: parts must be 1..{}, got part {}",
                    parts.len(),
                    p.part_number
                )));
            }
            let k = part_key(&upload, p.part_number as u32);
            if store.head(&k).await.map_err(err)?.is_none() {
                return Err(invalid(format!(
                    "completeMultipartUploadArtifact: part {} was never uploaded",
                    p.part_number
                )));
            }
            keys.push(k);
        }
        // Joining gigabytes outlasts the client's request timeout: the join runs in its own task
        // (a dropped request does not stop it) and a retried request that finds the blob, or
        // loses a race with the first join, answers from the blob.
        let job = tokio::spawn(async move {
            let source = store.clone();
            let joined = futures::stream::iter(keys.clone())
                .then(move |k| {
                    let source = source.clone();
                    async move { source.get_stream(&k).await }
                })
                .try_flatten()
                .map_err(std::io::Error::other)
                .boxed();
            let result = store.put_verified(&key, joined, want).await;
            if result.is_ok() {
                for k in keys {
                    if let Err(e) = store.delete(&k).await {
                        tracing::warn!("could not remove upload part {k}: {e}");
                    }
                }
            }
            result
        });
        match job.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if reg(ctx).store().head(&blob).await.ok().flatten().is_none() => {
                return Err(err(e));
            }
            Ok(Err(_)) => {}
            Err(e) => {
                return Err(err(ServeError::Internal(format!(
                    "completeMultipartUploadArtifact: {e}"
                ))));
            }
        }
        Ok(CompleteMultipartPayload { digest: Some(hex::encode(want)) })
    }

    async fn commit_artifact(
        &self,
        ctx: &Context<'_>,
        input: CommitArtifactInput,
    ) -> Res<ArtifactPayload> {
        let draft = draft_for_write(ctx, &input.artifact_id).await?;
        let r = reg(ctx);
        let out = r.commit_draft(&draft).await.map_err(err)?;
        let run = run_path(
            Some(&draft.collection.entity),
            Some(&draft.collection.project),
            draft.run.as_deref(),
        );
        note_run(
            ctx,
            run,
            RunOp::Logged { collection: draft.collection.to_string(), version: out.version },
        )
        .await;
        let id = ids::version_id(&draft.collection, out.version);
        if let Some(a) = artifact_by_id(r, access(ctx), &id).await.map_err(err)? {
            retag(ctx, &a, &draft.tags, &[], draft.ttl).await?;
        }
        Ok(ArtifactPayload { artifact: artifact_by_id(r, access(ctx), &id).await.map_err(err)? })
    }

    async fn use_artifact(
        &self,
        ctx: &Context<'_>,
        input: UseArtifactInput,
    ) -> Res<ArtifactPayload> {
        let a = artifact_by_id(reg(ctx), access(ctx), &input.artifact_id)
            .await
            .map_err(err)?
            .ok_or_else(|| {
                not_found(format!("useArtifact: artifact {} not found", input.artifact_id))
            })?;
        let entity =
            input.entity_name.clone().unwrap_or_else(|| access(ctx).default_entity().to_owned());
        if let (Some(v), Some(run)) = (
            a.version,
            run_path(Some(&entity), input.project_name.as_deref(), input.run_name.as_deref()),
        ) {
            must_write(ctx, &run.entity)?;
            reg(ctx)
                .record_run(&run, RunOp::Used { collection: a.collection.to_string(), version: v })
                .await
                .map_err(err)?;
        }
        Ok(ArtifactPayload { artifact: Some(a) })
    }

    async fn update_artifact(
        &self,
        ctx: &Context<'_>,
        input: UpdateArtifactInput,
    ) -> Res<UpdateArtifactPayload> {
        let a = version_for_write(ctx, &input.artifact_id).await?;
        let metadata = metadata_json("updateArtifact", input.metadata)?;
        let r = reg(ctx);
        let version = a.version.unwrap_or(0);
        r.edit(&a.collection, version, input.description, metadata, None).await.map_err(err)?;
        let (add, remove) = (tag_names(input.tags_to_add)?, tag_names(input.tags_to_delete)?);
        retag(ctx, &a, &add, &remove, ttl_input(input.ttl_duration_seconds)).await?;
        let fresh = artifact_by_id(r, access(ctx), &a.id)
            .await
            .map_err(err)?
            .ok_or_else(|| not_found(format!("artifact {} not found", a.id)))?;
        Ok(UpdateArtifactPayload { artifact: fresh })
    }

    async fn add_aliases(&self, ctx: &Context<'_>, input: AddAliasesInput) -> Res<SuccessPayload> {
        aliases::change_aliases(ctx, &input.artifact_id, input.aliases, true).await
    }

    async fn delete_aliases(
        &self,
        ctx: &Context<'_>,
        input: DeleteAliasesInput,
    ) -> Res<SuccessPayload> {
        aliases::change_aliases(ctx, &input.artifact_id, input.aliases, false).await
    }

    async fn delete_artifact(
        &self,
        ctx: &Context<'_>,
        input: DeleteArtifactInput,
    ) -> Res<ArtifactPayload> {
        let a = version_for_write(ctx, &input.artifact_id).await?;
        reg(ctx)
            .delete_version(
                &a.collection,
                a.version.unwrap_or(0),
                input.delete_aliases == Some(true),
            )
            .await
            .map_err(err)?;
        let mut gone = a;
        gone.state = ArtifactState::Deleted;
        Ok(ArtifactPayload { artifact: Some(gone) })
    }

    async fn link_artifact(
        &self,
        ctx: &Context<'_>,
        input: LinkArtifactInput,
    ) -> Res<LinkArtifactPayload> {
        links::link_artifact(ctx, input).await
    }

    async fn unlink_artifact(
        &self,
        ctx: &Context<'_>,
        input: UnlinkArtifactInput,
    ) -> Res<SuccessPayload> {
        links::unlink_artifact(ctx, input).await
    }

    // Collections and tags: bodies in `retention`.
    async fn update_artifact_sequence(
        &self,
        ctx: &Context<'_>,
        input: UpdateArtifactSequenceInput,
    ) -> Res<ArtifactCollectionPayload> {
        update_sequence(ctx, input).await
    }

    async fn move_artifact_sequence(
        &self,
        ctx: &Context<'_>,
        input: MoveArtifactSequenceInput,
    ) -> Res<ArtifactCollectionPayload> {
        move_sequence(ctx, input).await
    }

    async fn delete_artifact_sequence(
        &self,
        ctx: &Context<'_>,
        input: DeleteArtifactSequenceInput,
    ) -> Res<ArtifactCollectionPayload> {
        delete_sequence(ctx, input).await
    }

    /// A portfolio (`collection.delete()` of links) goes like a sequence; the versions it
    /// linked stay where they were logged.
    async fn delete_artifact_portfolio(
        &self,
        ctx: &Context<'_>,
        input: DeleteArtifactPortfolioInput,
    ) -> Res<ArtifactCollectionPayload> {
        let DeleteArtifactPortfolioInput { artifact_portfolio_id, client_mutation_id } = input;
        let input = DeleteArtifactSequenceInput {
            artifact_sequence_id: artifact_portfolio_id,
            client_mutation_id,
        };
        delete_sequence(ctx, input).await
    }

    async fn create_artifact_collection_tag_assignments(
        &self,
        ctx: &Context<'_>,
        input: TagAssignmentsInput<Add>,
    ) -> Res<TagsPayload> {
        Ok(TagsPayload { tags: collection_tags(ctx, input).await? })
    }

    async fn delete_artifact_collection_tag_assignments(
        &self,
        ctx: &Context<'_>,
        input: TagAssignmentsInput<Remove>,
    ) -> Res<SuccessPayload> {
        collection_tags(ctx, input).await?;
        Ok(SuccessPayload { success: true })
    }

    async fn update_user(
        &self,
        ctx: &Context<'_>,
        input: users::UpdateUserInput,
    ) -> Res<users::UpdateUserPayload> {
        users::update_user(ctx, input).await
    }
    async fn upsert_model(
        &self,
        ctx: &Context<'_>,
        input: registry_edits::UpsertModelInput,
    ) -> Res<registry_edits::UpsertModelPayload> {
        registry_edits::upsert_model(ctx, input).await
    }
    async fn delete_model(
        &self,
        ctx: &Context<'_>,
        input: registry_edits::DeleteModelInput,
    ) -> Res<SuccessPayload> {
        registry_edits::delete_model(ctx, input).await
    }
    async fn create_project_members(
        &self,
        ctx: &Context<'_>,
        input: registry_edits::CreateProjectMembersInput,
    ) -> Res<SuccessPayload> {
        let ids = (input.user_ids, input.team_ids);
        registry_edits::project_members_change(ctx, &input.project_id, ids, true).await
    }
    async fn delete_project_members(
        &self,
        ctx: &Context<'_>,
        input: registry_edits::DeleteProjectMembersInput,
    ) -> Res<SuccessPayload> {
        let ids = (input.user_ids, input.team_ids);
        registry_edits::project_members_change(ctx, &input.project_id, ids, false).await
    }
    async fn update_project_member(
        &self,
        ctx: &Context<'_>,
        input: registry_edits::UpdateProjectMemberInput,
    ) -> Res<SuccessPayload> {
        let role = &input.user_project_role;
        registry_edits::set_member_role(ctx, &input.project_id, &input.user_id, false, role).await
    }
    async fn update_project_team_member(
        &self,
        ctx: &Context<'_>,
        input: registry_edits::UpdateProjectTeamMemberInput,
    ) -> Res<SuccessPayload> {
        let role = &input.team_project_role;
        registry_edits::set_member_role(ctx, &input.project_id, &input.team_id, true, role).await
    }
    async fn create_team(
        &self,
        ctx: &Context<'_>,
        input: orgs::CreateTeamInput,
    ) -> Res<orgs::CreateTeamPayload> {
        orgs::create_team(ctx, input).await
    }
    async fn create_invite(
        &self,
        ctx: &Context<'_>,
        input: teams::CreateInviteInput,
    ) -> Res<teams::CreateInvitePayload> {
        teams::create_invite(ctx, input).await
    }
    async fn rename_project(
        &self,
        ctx: &Context<'_>,
        input: registry_edits::RenameProjectInput,
    ) -> Res<registry_edits::UpsertModelPayload> {
        registry_edits::rename_project(ctx, input).await
    }
}

/// The metadata a mutation `op` was given, parsed.
fn metadata_json(op: &str, metadata: Option<JsonString>) -> Res<Option<serde_json::Value>> {
    metadata
        .map(|m| serde_json::from_str(&m.0))
        .transpose()
        .map_err(|e| invalid(format!("{op}: metadata is not JSON: {e}")))
}

/// `createArtifact` with the content of an existing version `version` of `c`: no new version;
/// the aliases move to it and the run is noted as its logger.
async fn relog(
    ctx: &Context<'_>,
    c: &CollectionPath,
    state: &CollectionState,
    version: u32,
    ty: &str,
    aliases: Vec<String>,
    run: Option<RunPath>,
) -> Res<Artifact> {
    let r = reg(ctx);
    let resolved = Registry::resolve_in(c, state, &Selector::Version(version)).map_err(err)?;
    let bytes = r.store().get(&resolved.record.manifest).await.map_err(err)?;
    let manifest = Manifest::from_json(&bytes).map_err(stored_manifest)?;
    let req = crate::registry::LogRequest {
        history_step: None,
        collection: c.clone(),
        artifact_type: ty.to_owned(),
        description: None,
        metadata: None,
        aliases,
        manifest,
        sources: Default::default(),
    };
    let out = r.publish(&req).await.map_err(err)?;
    note_run(ctx, run, RunOp::Logged { collection: c.to_string(), version: out.version }).await;
    let mut a = Artifact::committed(&resolved);
    a.aliases = out.aliases;
    Ok(a)
}
