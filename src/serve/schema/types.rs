//! W&B's scalars and enums, and the small objects (page info, server info, tags, entities, users).

use super::*;

/// W&B's `JSONString`: JSON text carried in a string (metadata, config).
#[derive(Debug, Clone)]
pub struct JsonString(pub String);

#[Scalar(name = "JSONString")]
impl ScalarType for JsonString {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => Ok(JsonString(s)),
            other => match other.into_json() {
                Ok(j) => Ok(JsonString(j.to_string())),
                Err(e) => Err(InputValueError::custom(e)),
            },
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ArtifactState {
    #[graphql(name = "PENDING")]
    Pending,
    #[graphql(name = "COMMITTED")]
    Committed,
    #[graphql(name = "DELETED")]
    Deleted,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ArtifactDigestAlgorithm {
    #[graphql(name = "MANIFEST_MD5")]
    ManifestMd5,
    #[graphql(name = "MANIFEST_XXH128")]
    ManifestXxh128,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ArtifactManifestType {
    #[graphql(name = "FULL")]
    Full,
    #[graphql(name = "PATCH")]
    Patch,
    #[graphql(name = "INCREMENTAL")]
    Incremental,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum CompleteMultipartAction {
    #[graphql(name = "Complete")]
    Complete,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct PageInfo {
    pub end_cursor: Option<String>,
    pub has_next_page: bool,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ServerFeature {
    pub name: String,
    pub is_enabled: bool,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ServerInfo {
    /// Only what the schema implements (each one unlocks fields, §6 of the client map).
    pub features: Vec<ServerFeature>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Tag {
    pub id: async_graphql::ID,
    pub name: String,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct TagEdge {
    pub node: Tag,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct TagConnection {
    pub edges: Vec<TagEdge>,
}

#[derive(Clone, Debug)]
pub struct Entity {
    pub name: String,
}

#[Object]
impl Entity {
    async fn id(&self) -> async_graphql::ID {
        orgs::entity_id(&self.name).into()
    }
    async fn name(&self) -> &str {
        &self.name
    }
    /// The organization of an org or team entity (wandb-core asks at run start).
    async fn organization(&self, ctx: &Context<'_>) -> Option<Organization> {
        orgs::organization_of(ctx, &self.name)
    }
    /// True: `wandb.Artifact(…, digest_algorithm="XXH128")` stays XXH128. Its files are still
    /// uploaded and stored by MD5 (the SDK sends both), which the manifest records per entry.
    async fn xxhash_digests_enabled(&self) -> bool {
        true
    }
    /// The user whose own entity this is.
    async fn user(&self, ctx: &Context<'_>) -> Option<User> {
        orgs::user_of_entity(ctx, &self.name)
    }
    async fn project(&self, ctx: &Context<'_>, name: Option<String>) -> Option<Project> {
        registries::entity_project(ctx, &self.name, &name?)
    }
    /// An org entity's registries.
    async fn projects(
        &self,
        ctx: &Context<'_>,
        filters: Option<JsonString>,
        after: Option<String>,
        first: Option<i32>,
        order: Option<String>,
    ) -> Res<ProjectConnection> {
        registries::entity_projects(ctx, &self.name, filters.map(|f| f.0), (after, first), order)
    }
    /// The collections of an org entity's registries.
    #[allow(clippy::too_many_arguments)]
    async fn artifact_collections(
        &self,
        ctx: &Context<'_>,
        project_filters: Option<JsonString>,
        filters: Option<JsonString>,
        #[graphql(name = "collectionTypes")] _types: Option<
            Vec<registries::ArtifactCollectionType>,
        >,
        after: Option<String>,
        first: Option<i32>,
        order: Option<String>,
    ) -> Res<ArtifactCollectionConnection> {
        let (pf, f) = (project_filters.map(|f| f.0), filters.map(|f| f.0));
        registries::entity_collections(ctx, &self.name, (pf, f, order), after, first).await
    }
    /// The versions in an org entity's registries.
    #[allow(clippy::too_many_arguments)]
    async fn artifact_memberships(
        &self,
        ctx: &Context<'_>,
        project_filters: Option<JsonString>,
        collection_filters: Option<JsonString>,
        filters: Option<JsonString>,
        after: Option<String>,
        first: Option<i32>,
        order: Option<String>,
    ) -> Res<registries::MembershipConnection> {
        let (pf, cf, f) =
            (project_filters.map(|f| f.0), collection_filters.map(|f| f.0), filters.map(|f| f.0));
        registries::entity_memberships(ctx, &self.name, (pf, cf, f), order, after, first).await
    }
    async fn is_team(&self, ctx: &Context<'_>) -> bool {
        orgs::is_team(ctx, &self.name)
    }
    async fn entity_type(&self, ctx: &Context<'_>) -> &'static str {
        orgs::entity_type(ctx, &self.name)
    }
    async fn members(&self, ctx: &Context<'_>) -> Vec<orgs::OrgMember> {
        orgs::entity_members(ctx, &self.name)
    }
    async fn available(&self) -> Option<bool> {
        Some(false)
    }
    async fn photo_url(&self) -> Option<String> {
        None
    }
    async fn read_only(&self) -> Option<bool> {
        Some(false)
    }
    async fn read_only_admin(&self) -> bool {
        false
    }
    async fn private_only(&self) -> bool {
        false
    }
    async fn storage_bytes(&self) -> i64 {
        0
    }
    async fn code_saving_enabled(&self) -> bool {
        false
    }
    async fn default_access(&self) -> &'static str {
        "PRIVATE"
    }
    async fn is_paid(&self) -> Option<bool> {
        None
    }
    async fn limits(&self) -> Option<String> {
        None
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct EntityEdge {
    pub node: Entity,
}

/// `models(entityName)`: the projects of an entity (`GetProjects`, `Api().projects()`).
#[derive(SimpleObject, Clone, Debug)]
pub struct ProjectConnection {
    pub page_info: PageInfo,
    pub edges: Vec<ProjectEdge>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ProjectEdge {
    pub node: Project,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct EntityConnection {
    pub edges: Vec<EntityEdge>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ClientIdMapping {
    #[graphql(name = "serverID")]
    pub server_id: async_graphql::ID,
}
