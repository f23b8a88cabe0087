//! Artifact types and collections (W&B's `ArtifactSequence`): their versions and aliases.

use super::*;

#[derive(SimpleObject, Clone, Debug)]
pub struct ArtifactCollectionEdge {
    pub node: ArtifactSequence,
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
            edges: items.into_iter().map(|node| ArtifactCollectionEdge { node }).collect(),
        }
    }
}

/// W&B's `ArtifactCollection` interface; artfs has sequences only (no portfolios or links).
// The derive's `field(…)`/`arg(…)` lists repeat `ty = …` by design.
#[allow(clippy::duplicated_attributes)]
#[derive(Interface)]
#[graphql(
    field(name = "id", ty = "async_graphql::ID"),
    field(name = "name", ty = "&str"),
    field(name = "description", ty = "Option<String>"),
    field(name = "created_at", ty = "String"),
    field(name = "updated_at", ty = "Option<String>"),
    field(name = "project", ty = "Project"),
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
        ty = "VersionedArtifactConnection",
        arg(name = "after", ty = "Option<String>"),
        arg(name = "first", ty = "Option<i32>"),
        arg(name = "order", ty = "Option<String>"),
        arg(name = "filters", ty = "Option<JsonString>")
    ),
    field(
        name = "artifact_membership",
        ty = "Option<Membership>",
        arg(name = "alias_name", ty = "Option<String>")
    )
)]
pub enum ArtifactCollection {
    ArtifactSequence(ArtifactSequence),
}

#[derive(Clone, Debug)]
pub struct ArtifactSequence {
    pub path: CollectionPath,
    pub state: CollectionState,
}

impl ArtifactSequence {
    pub(super) fn new(path: CollectionPath, state: CollectionState) -> Self {
        ArtifactSequence { path, state }
    }

    pub(super) fn project_obj(&self) -> Project {
        Project { entity: self.path.entity.clone(), name: self.path.project.clone() }
    }

    pub(super) fn version(&self, version: u32) -> Option<Artifact> {
        let r = Registry::resolve_in(&self.path, &self.state, &Selector::Version(version)).ok()?;
        Some(Artifact::committed(&r))
    }

    /// `alias` is `vN`, an alias, or an artifact digest.
    pub(super) fn membership(&self, alias: &str) -> Option<Membership> {
        let version = match parse_version(alias) {
            Some(v) => v,
            None => match self.state.aliases.get(alias) {
                Some(v) => *v,
                None => self.state.version_by_digest(alias)?.version,
            },
        };
        let artifact = self.version(version)?;
        Some(Membership { collection: self.clone(), artifact })
    }

    pub(super) fn created(&self) -> DateTime<Utc> {
        self.state.versions.values().map(|v| v.created_at).min().unwrap_or(DateTime::UNIX_EPOCH)
    }
}

#[Object]
impl ArtifactSequence {
    async fn id(&self) -> async_graphql::ID {
        ids::collection_id(&self.path).into()
    }
    async fn name(&self) -> &str {
        &self.path.name
    }
    async fn description(&self) -> Option<String> {
        None
    }
    async fn created_at(&self) -> String {
        time(self.created())
    }
    async fn updated_at(&self) -> Option<String> {
        self.state.versions.values().map(|v| v.created_at).max().map(time)
    }
    async fn project(&self) -> Project {
        self.project_obj()
    }
    async fn default_artifact_type(&self) -> ArtifactType {
        ArtifactType {
            project: self.project_obj(),
            name: self.state.artifact_type.clone().unwrap_or_default(),
        }
    }
    async fn tags(&self) -> TagConnection {
        TagConnection { edges: Vec::new() }
    }
    /// The latest version's (wandb-core re-hashes a new version to match it).
    async fn digest_algorithm(&self, ctx: &Context<'_>) -> Res<ArtifactDigestAlgorithm> {
        match self.state.latest() {
            Some(v) => digest_algorithm_of(reg(ctx), &v.manifest).await,
            None => Ok(ArtifactDigestAlgorithm::ManifestMd5),
        }
    }
    async fn latest_artifact(&self) -> Option<Artifact> {
        self.state.latest().and_then(|v| self.version(v.version))
    }
    async fn aliases(&self, after: Option<String>, first: Option<i32>) -> ArtifactAliasConnection {
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
    /// `version_index` or `createdAt` (W&B's keys, `+` or no sign: ascending) gives oldest first.
    async fn artifacts(
        &self,
        after: Option<String>,
        first: Option<i32>,
        order: Option<String>,
        filters: Option<JsonString>,
    ) -> VersionedArtifactConnection {
        let ascending = order.as_deref().is_some_and(|o| {
            let key = o.strip_prefix('+').unwrap_or(o);
            matches!(key, "version_index" | "versionIndex" | "createdAt" | "created_at")
        });
        // Only `state` is understood; versions are COMMITTED (drafts are not versions yet).
        let wanted_state = filters
            .and_then(|f| serde_json::from_str::<serde_json::Value>(&f.0).ok())
            .and_then(|f| f.get("state").and_then(|s| s.as_str()).map(str::to_owned));
        let mut all: Vec<Artifact> = match wanted_state.as_deref() {
            None | Some("COMMITTED") => {
                self.state.versions.keys().rev().filter_map(|v| self.version(*v)).collect()
            }
            Some(_) => Vec::new(),
        };
        if ascending {
            all.reverse();
        }
        let (items, page_info) = page(&all, after.as_deref(), first);
        VersionedArtifactConnection {
            total_count: all.len() as i32,
            page_info,
            edges: items
                .into_iter()
                .map(|node| VersionedArtifactEdge {
                    version: format!("v{}", node.version.unwrap_or(0)),
                    node,
                })
                .collect(),
        }
    }
    async fn artifact_membership(&self, alias_name: Option<String>) -> Option<Membership> {
        self.membership(alias_name.as_deref().unwrap_or(LATEST))
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
    async fn artifact_collection(&self, ctx: &Context<'_>) -> Res<Option<ArtifactSequence>> {
        let state = reg(ctx).state(&self.collection).await.map_err(err)?;
        Ok(Some(ArtifactSequence::new(self.collection.clone(), state)))
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
