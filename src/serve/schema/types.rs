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
        ids::other_id("Entity", &self.name).into()
    }
    async fn name(&self) -> &str {
        &self.name
    }
    /// None: artfs has no organizations (wandb-core asks at run start).
    async fn organization(&self) -> Option<Organization> {
        None
    }
    /// True: `wandb.Artifact(…, digest_algorithm="XXH128")` stays XXH128. Its files are still
    /// uploaded and stored by MD5 (the SDK sends both), which the manifest records per entry.
    async fn xxhash_digests_enabled(&self) -> bool {
        true
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Organization {
    pub core_weave_organization_id: Option<String>,
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

#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub entity: Option<String>,
    pub teams: Vec<String>,
}

#[Object]
impl User {
    async fn id(&self) -> async_graphql::ID {
        ids::other_id("User", &self.name).into()
    }
    async fn name(&self) -> &str {
        &self.name
    }
    async fn username(&self) -> &str {
        &self.name
    }
    async fn entity(&self) -> Option<&str> {
        self.entity.as_deref()
    }
    async fn email(&self) -> Option<String> {
        None
    }
    async fn flags(&self) -> Option<JsonString> {
        None
    }
    async fn admin(&self) -> bool {
        false
    }
    async fn deleted_at(&self) -> Option<String> {
        None
    }
    /// Keys are never shown back (only their hashes are kept).
    async fn api_keys(&self) -> ApiKeyConnection {
        ApiKeyConnection { edges: Vec::new() }
    }
    async fn teams(&self) -> EntityConnection {
        EntityConnection {
            edges: self
                .teams
                .iter()
                .map(|t| EntityEdge { node: Entity { name: t.clone() } })
                .collect(),
        }
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ApiKey {
    pub id: async_graphql::ID,
    pub name: String,
    pub description: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ApiKeyEdge {
    pub node: ApiKey,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ApiKeyConnection {
    pub edges: Vec<ApiKeyEdge>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ClientIdMapping {
    #[graphql(name = "serverID")]
    pub server_id: async_graphql::ID,
}
