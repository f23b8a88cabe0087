//! `Project`: a project's artifact types, collections, runs and artifacts by name.

use super::*;

#[derive(Clone, Debug)]
pub struct Project {
    pub entity: String,
    pub name: String,
}

impl Project {
    pub(super) async fn collection(
        &self,
        ctx: &Context<'_>,
        name: &str,
    ) -> Res<Option<ArtifactSequence>> {
        let Ok(c) = CollectionPath::new(&self.entity, &self.name, name) else {
            return Ok(None);
        };
        let state = reg(ctx).state(&c).await.map_err(err)?;
        Ok(state.exists().then(|| ArtifactSequence::new(c, state)))
    }

    /// The project's collections; those whose versions were all deleted only with `with_empty`
    /// (their type stays, as on W&B, but listings skip them).
    pub(super) async fn all_collections(
        &self,
        ctx: &Context<'_>,
        with_empty: bool,
    ) -> Res<Vec<ArtifactSequence>> {
        let r = reg(ctx);
        let mut out = Vec::new();
        for name in r.collections(&self.entity, &self.name).await.map_err(err)? {
            let Ok(c) = CollectionPath::new(&self.entity, &self.name, &name) else { continue };
            let state = r.state(&c).await.map_err(err)?;
            let seq = ArtifactSequence::new(c, state);
            if seq.state.exists() && (with_empty || !seq.state.versions.is_empty()) {
                out.push(seq);
            }
        }
        Ok(out)
    }

    pub(super) async fn types(&self, ctx: &Context<'_>) -> Res<Vec<ArtifactType>> {
        let mut names: Vec<String> = self
            .all_collections(ctx, true)
            .await?
            .into_iter()
            .filter_map(|c| c.state.artifact_type.clone())
            .collect();
        names.sort();
        names.dedup();
        Ok(names.into_iter().map(|n| ArtifactType { project: self.clone(), name: n }).collect())
    }

    pub(super) async fn run_named(
        &self,
        ctx: &Context<'_>,
        name: Option<String>,
    ) -> Res<Option<Run>> {
        let Some(Ok(path)) = name.map(|n| RunPath::new(&self.entity, &self.name, &n)) else {
            return Ok(None);
        };
        let state = reg(ctx).run_state(&path).await.map_err(err)?;
        Ok((state.seq > 0).then_some(Run { path, state }))
    }

    /// `collection:alias` (alias `latest` when absent).
    pub(super) async fn member(&self, ctx: &Context<'_>, name: &str) -> Res<Option<Membership>> {
        let (coll, alias) = name.rsplit_once(':').unwrap_or((name, LATEST));
        match self.collection(ctx, coll).await? {
            Some(seq) => seq.membership(reg(ctx), alias).await,
            None => Ok(None),
        }
    }
}

#[Object]
impl Project {
    async fn id(&self) -> async_graphql::ID {
        ids::project_id(&self.entity, &self.name).into()
    }
    async fn internal_id(&self, ctx: &Context<'_>) -> String {
        registries::internal_id(ctx, self)
    }
    async fn name(&self) -> &str {
        &self.name
    }
    async fn entity_name(&self) -> &str {
        &self.entity
    }
    async fn is_benchmark(&self) -> bool {
        false
    }
    async fn read_only(&self) -> bool {
        false
    }
    async fn user(&self) -> Option<User> {
        None
    }
    async fn entity(&self) -> Entity {
        Entity { name: self.entity.clone() }
    }
    async fn run(&self, ctx: &Context<'_>, name: Option<String>) -> Res<Option<Run>> {
        self.run_named(ctx, name).await
    }
    /// W&B's old name for a run (`missingOk`: a missing run is null, as without it here).
    async fn bucket(
        &self,
        ctx: &Context<'_>,
        name: Option<String>,
        #[graphql(name = "missingOk")] _missing_ok: Option<bool>,
    ) -> Res<Option<Run>> {
        self.run_named(ctx, name).await
    }
    async fn run_count(&self, ctx: &Context<'_>, filters: Option<JsonString>) -> Res<i32> {
        Ok(self.filtered_runs(ctx, filters.as_ref(), None).await?.len() as i32)
    }
    async fn runs(
        &self,
        ctx: &Context<'_>,
        filters: Option<JsonString>,
        order: Option<String>,
        after: Option<String>,
        first: Option<i32>,
    ) -> Res<RunConnection> {
        let all = self.filtered_runs(ctx, filters.as_ref(), order.as_deref()).await?;
        Ok(RunConnection::of(&all, after.as_deref(), first))
    }
    async fn artifact(&self, ctx: &Context<'_>, name: Option<String>) -> Res<Option<Artifact>> {
        match name {
            Some(n) => Ok(self.member(ctx, &n).await?.map(|m| m.artifact)),
            None => Ok(None),
        }
    }
    async fn artifact_collection_membership(
        &self,
        ctx: &Context<'_>,
        name: Option<String>,
    ) -> Res<Option<Membership>> {
        match name {
            Some(n) => self.member(ctx, &n).await,
            None => Ok(None),
        }
    }
    async fn artifact_type(
        &self,
        ctx: &Context<'_>,
        name: Option<String>,
    ) -> Res<Option<ArtifactType>> {
        let Some(name) = name else { return Ok(None) };
        Ok(self.types(ctx).await?.into_iter().find(|t| t.name == name))
    }
    async fn artifact_types(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
        #[graphql(name = "includeAll")] _include_all: Option<bool>,
    ) -> Res<ArtifactTypeConnection> {
        let mut all = self.types(ctx).await?;
        if let Some(r) = registries::registry_of(ctx, self) {
            // A registry lists its allowed types too, in use or not.
            let in_use = all.into_iter().map(|t| t.name).collect();
            all = registries::registry_types(&r, in_use)
                .into_iter()
                .map(|name| ArtifactType { project: self.clone(), name })
                .collect();
        }
        let (items, page_info) = page(&all, after.as_deref(), first);
        Ok(ArtifactTypeConnection {
            total_count: all.len() as i32,
            page_info,
            edges: items.into_iter().map(|node| ArtifactTypeEdge { node }).collect(),
        })
    }
    async fn artifact_collection(
        &self,
        ctx: &Context<'_>,
        name: Option<String>,
    ) -> Res<Option<ArtifactCollection>> {
        match name {
            Some(n) => Ok(self.collection(ctx, &n).await?.map(ArtifactCollection::of)),
            None => Ok(None),
        }
    }
    async fn artifact_collections(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
        filters: Option<JsonString>,
        order: Option<String>,
    ) -> Res<ArtifactCollectionConnection> {
        let all = self.all_collections(ctx, false).await?;
        let all = filter_collections(all, filters.as_ref(), order.as_deref())?;
        Ok(ArtifactCollectionConnection::of(&all, after.as_deref(), first))
    }
    // A registry's settings (`orgs`); other projects have none.
    async fn description(&self, ctx: &Context<'_>) -> Option<String> {
        registries::registry_of(ctx, self)?.description
    }
    async fn created_at(&self, ctx: &Context<'_>) -> String {
        time(
            registries::registry_of(ctx, self)
                .map_or(DateTime::<Utc>::UNIX_EPOCH, |r| r.created_at),
        )
    }
    async fn updated_at(&self, ctx: &Context<'_>) -> Option<String> {
        registries::registry_of(ctx, self).map(|r| time(r.updated_at))
    }
    async fn access(&self, ctx: &Context<'_>) -> Option<&'static str> {
        registries::registry_of(ctx, self).map(|r| registries::access_of(&r))
    }
    async fn allow_all_artifact_types_in_registry(&self, ctx: &Context<'_>) -> bool {
        registries::registry_of(ctx, self).is_none_or(|r| r.allow_all_types)
    }
    async fn members(&self, ctx: &Context<'_>) -> Vec<registries::ProjectMember> {
        registries::project_members(ctx, self)
    }
    async fn team_members(&self, ctx: &Context<'_>) -> Vec<registries::ProjectTeamMember> {
        registries::project_team_members(ctx, self)
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ArtifactTypeEdge {
    pub node: ArtifactType,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ArtifactTypeConnection {
    pub total_count: i32,
    pub page_info: PageInfo,
    pub edges: Vec<ArtifactTypeEdge>,
}

#[derive(Clone, Debug)]
pub struct ArtifactType {
    pub project: Project,
    pub name: String,
}

#[Object]
impl ArtifactType {
    async fn id(&self) -> async_graphql::ID {
        let what = format!("{}/{}/{}", self.project.entity, self.project.name, self.name);
        ids::other_id("ArtifactType", &what).into()
    }
    async fn name(&self) -> &str {
        &self.name
    }
    async fn description(&self) -> Option<String> {
        None
    }
    async fn created_at(&self) -> String {
        time(DateTime::<Utc>::UNIX_EPOCH)
    }
    async fn artifact_collection(
        &self,
        ctx: &Context<'_>,
        name: Option<String>,
    ) -> Res<Option<ArtifactCollection>> {
        let Some(name) = name else { return Ok(None) };
        Ok(self
            .project
            .collection(ctx, &name)
            .await?
            .filter(|c| c.state.artifact_type.as_deref() == Some(&self.name))
            .map(ArtifactCollection::of))
    }
    async fn artifact_collections(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
        filters: Option<JsonString>,
        order: Option<String>,
    ) -> Res<ArtifactCollectionConnection> {
        let all: Vec<ArtifactSequence> = self
            .project
            .all_collections(ctx, false)
            .await?
            .into_iter()
            .filter(|c| c.state.artifact_type.as_deref() == Some(&self.name))
            .collect();
        let all = filter_collections(all, filters.as_ref(), order.as_deref())?;
        Ok(ArtifactCollectionConnection::of(&all, after.as_deref(), first))
    }
}
