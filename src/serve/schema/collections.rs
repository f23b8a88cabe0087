//! Artifact types and collections (W&B's `ArtifactSequence`): their versions and aliases.

use super::*;

#[derive(SimpleObject, Clone, Debug)]
pub struct ArtifactCollectionEdge {
    pub node: ArtifactCollection,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ArtifactCollectionConnection {
    pub total_count: i32,
    pub page_info: PageInfo,
    pub edges: Vec<ArtifactCollectionEdge>,
}

impl ArtifactCollectionConnection {
    pub(super) fn of(all: &[ArtifactSequence], after: Option<&str>, first: Option<i32>) -> Self {
        let (items, page_info) = page(all, after, first);
        ArtifactCollectionConnection {
            total_count: all.len() as i32,
            page_info,
            edges: items
                .into_iter()
                .map(|c| ArtifactCollectionEdge { node: ArtifactCollection::of(c) })
                .collect(),
        }
    }
}

/// W&B's `ArtifactCollection` interface: sequences of logged versions and portfolios of links.
// The derive's `field(…)`/`arg(…)` lists repeat `ty = …` by design.
#[allow(clippy::duplicated_attributes)]
#[derive(Interface, Clone, Debug)]
#[graphql(
    field(name = "id", ty = "async_graphql::ID"),
    field(name = "name", ty = "&str"),
    field(name = "description", ty = "Option<String>"),
    field(name = "created_at", ty = "String"),
    field(name = "updated_at", ty = "Option<String>"),
    field(name = "state", ty = "ArtifactCollectionState"),
    field(name = "project", ty = "Option<Project>"),
    field(name = "default_artifact_type", ty = "ArtifactType"),
    field(name = "tags", ty = "TagConnection"),
    field(
        name = "aliases",
        ty = "ArtifactAliasConnection",
        arg(name = "after", ty = "Option<String>"),
        arg(name = "first", ty = "Option<i32>")
    ),
    field(
        name = "artifacts",
        ty = "Res<VersionedArtifactConnection>",
        arg(name = "after", ty = "Option<String>"),
        arg(name = "first", ty = "Option<i32>"),
        arg(name = "order", ty = "Option<String>"),
        arg(name = "filters", ty = "Option<JsonString>")
    ),
    field(
        name = "artifact_membership",
        ty = "Res<Option<Membership>>",
        arg(name = "alias_name", ty = "Option<String>")
    )
)]
pub enum ArtifactCollection {
    ArtifactSequence(ArtifactSequence),
    ArtifactPortfolio(ArtifactPortfolio),
}

#[derive(Clone, Debug)]
pub struct ArtifactSequence {
    pub path: CollectionPath,
    pub state: CollectionState,
    /// Answered by `deleteArtifactSequence`.
    pub deleted: bool,
}

impl ArtifactSequence {
    /// Expired versions are left out here, for every resolver below (`registry::retention`).
    pub(super) fn new(path: CollectionPath, state: CollectionState) -> Self {
        ArtifactSequence { path, state: state.live(Utc::now()), deleted: false }
    }

    pub(super) fn project_obj(&self) -> Project {
        Project { entity: self.path.entity.clone(), name: self.path.project.clone() }
    }

    /// `null` to a caller who may not read the collection's entity: a version linked into a
    /// registry is readable there while its source project stays hidden, as on W&B.
    pub(super) fn visible_project(&self, ctx: &Context<'_>) -> Option<Project> {
        access(ctx).can_read(&self.path.entity).then(|| self.project_obj())
    }

    pub(super) fn version(&self, version: u32) -> Option<Artifact> {
        let r = Registry::resolve_in(&self.path, &self.state, &Selector::Version(version)).ok()?;
        Some(Artifact::committed(&r))
    }

    /// `alias` is `vN`, an alias, or an artifact digest.
    pub(super) async fn membership(&self, r: &Registry, alias: &str) -> Res<Option<Membership>> {
        let version = match parse_version(alias) {
            Some(v) => v,
            None => match self.state.aliases.get(alias) {
                Some(v) => *v,
                None => match self.state.version_by_digest(alias) {
                    Some(v) => v.version,
                    None => return Ok(None),
                },
            },
        };
        Ok(self.artifact_at(r, version).await?.map(|a| Membership::new(self, version, a)))
    }

    pub(super) fn created(&self) -> DateTime<Utc> {
        self.state.versions.values().map(|v| v.created_at).min().unwrap_or(DateTime::UNIX_EPOCH)
    }
}

#[Object]
impl ArtifactSequence {
    pub(super) async fn id(&self) -> async_graphql::ID {
        ids::collection_id(&self.path).into()
    }
    pub(super) async fn name(&self) -> &str {
        &self.path.name
    }
    pub(super) async fn description(&self) -> Option<String> {
        self.state.description.clone()
    }
    pub(super) async fn created_at(&self) -> String {
        time(self.created())
    }
    pub(super) async fn updated_at(&self) -> Option<String> {
        self.state.updated_at.map(time)
    }
    pub(super) async fn state(&self) -> ArtifactCollectionState {
        if self.deleted { ArtifactCollectionState::Deleted } else { ArtifactCollectionState::Ready }
    }
    pub(super) async fn project(&self, ctx: &Context<'_>) -> Option<Project> {
        self.visible_project(ctx)
    }
    pub(super) async fn default_artifact_type(&self) -> ArtifactType {
        ArtifactType {
            project: self.project_obj(),
            name: self.state.artifact_type.clone().unwrap_or_default(),
        }
    }
    pub(super) async fn tags(&self) -> TagConnection {
        let edges = self.state.tags.iter().map(|t| TagEdge { node: Tag::named(t) }).collect();
        TagConnection { edges }
    }
    /// The latest version's (wandb-core re-hashes a new version to match it).
    pub(super) async fn digest_algorithm(&self, ctx: &Context<'_>) -> Res<ArtifactDigestAlgorithm> {
        match self.state.latest() {
            Some(v) => digest_algorithm_of(reg(ctx), &v.manifest).await,
            None => Ok(ArtifactDigestAlgorithm::ManifestMd5),
        }
    }
    pub(super) async fn latest_artifact(&self, ctx: &Context<'_>) -> Res<Option<Artifact>> {
        match self.state.latest() {
            Some(v) => self.artifact_at(reg(ctx), v.version).await,
            None => Ok(None),
        }
    }
    pub(super) async fn aliases(
        &self,
        after: Option<String>,
        first: Option<i32>,
    ) -> ArtifactAliasConnection {
        let all: Vec<ArtifactAlias> = self
            .state
            .aliases
            .keys()
            .map(|a| ArtifactAlias { alias: a.clone(), collection: self.path.clone() })
            .collect();
        let (items, page_info) = page(&all, after.as_deref(), first.or(Some(1000)));
        ArtifactAliasConnection {
            page_info,
            edges: items.into_iter().map(|node| ArtifactAliasEdge { node }).collect(),
        }
    }
    /// Newest first, as `wandb artifact ls` expects (it reads one item as "latest"); `order`
    /// (`versionIndex`, `createdAt`, `updatedAt`; `-` descending, `+` or no sign ascending) sorts.
    pub(super) async fn artifacts(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
        order: Option<String>,
        filters: Option<JsonString>,
    ) -> Res<VersionedArtifactConnection> {
        // Only `state` is understood; versions are COMMITTED (drafts are not versions yet).
        let wanted_state = filters
            .and_then(|f| serde_json::from_str::<serde_json::Value>(&f.0).ok())
            .and_then(|f| f.get("state").and_then(|s| s.as_str()).map(str::to_owned));
        // A portfolio's edge carries its own `vN`; the node is the version it links.
        let mut all: Vec<VersionedArtifactEdge> = Vec::new();
        if matches!(wanted_state.as_deref(), None | Some("COMMITTED")) {
            for &v in self.state.versions.keys().rev() {
                if let Some(node) = self.artifact_at(reg(ctx), v).await? {
                    all.push(VersionedArtifactEdge { version: format!("v{v}"), node });
                }
            }
        }
        if let Some(order) = order {
            sort_versions(&mut all, &order)?;
        }
        let (edges, page_info) = page(&all, after.as_deref(), first);
        Ok(VersionedArtifactConnection { total_count: all.len() as i32, page_info, edges })
    }
    pub(super) async fn artifact_membership(
        &self,
        ctx: &Context<'_>,
        alias_name: Option<String>,
    ) -> Res<Option<Membership>> {
        self.membership(reg(ctx), alias_name.as_deref().unwrap_or(LATEST)).await
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct VersionedArtifactEdge {
    pub version: String,
    pub node: Artifact,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct VersionedArtifactConnection {
    pub total_count: i32,
    pub page_info: PageInfo,
    pub edges: Vec<VersionedArtifactEdge>,
}

#[derive(Clone, Debug)]
pub struct ArtifactAlias {
    pub alias: String,
    pub collection: CollectionPath,
}

#[Object]
impl ArtifactAlias {
    async fn id(&self) -> async_graphql::ID {
        ids::other_id("ArtifactAlias", &format!("{}:{}", self.collection, self.alias)).into()
    }
    async fn alias(&self) -> &str {
        &self.alias
    }
    async fn artifact_collection(&self, ctx: &Context<'_>) -> Res<Option<ArtifactCollection>> {
        let state = reg(ctx).state(&self.collection).await.map_err(err)?;
        Ok(Some(ArtifactCollection::of(ArtifactSequence::new(self.collection.clone(), state))))
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ArtifactAliasEdge {
    pub node: ArtifactAlias,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ArtifactAliasConnection {
    pub page_info: PageInfo,
    pub edges: Vec<ArtifactAliasEdge>,
}
