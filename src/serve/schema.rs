//! The GraphQL schema: W&B's types, limited to the fields the `wandb` SDK 0.31 selects
//! (`../shared/wandb-api.md` §9.2), resolved over the registry. Everything the SDK may send as
//! explicit `null` is nullable here; a field the schema lacks gets the engine's standard
//! "Cannot query field" error, which is how the SDK probes servers.
//!
//! Access: every resolver checks the caller's entities. Another entity's project, collection or
//! version resolves as `null` (as if it did not exist); writes need a key that may write there.

use async_graphql::{
    Context, EmptySubscription, Enum, Error, InputObject, InputValueError, InputValueResult,
    Interface, Object, Scalar, ScalarType, Schema, SimpleObject, Union, Value,
};
use chrono::{DateTime, Utc};

use super::Shared;
use super::auth::Access;
use super::ids::{self, NodeId};
use crate::manifest::{Entry, Manifest};
use crate::names::{CollectionPath, LATEST, Selector, parse_version};
use crate::registry::drafts::{Draft, DraftStatus};
use crate::registry::lineage::{EdgeKind, VersionKey};
use crate::registry::runs::{RunFields, RunOp, RunPath, RunState};
use crate::registry::{CollectionState, Registry, RegistryError, ResolvedVersion, blob_key};

pub type WandbSchema = Schema<Query, Mutation, EmptySubscription>;

/// Deepest nesting the SDK's documents reach is about 10; this bounds hostile ones.
const MAX_DEPTH: usize = 32;
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 10_000;
/// Blob existence checks in flight at once for one request.
const HEADS_IN_FLIGHT: usize = 16;

pub fn build(shared: std::sync::Arc<Shared>) -> WandbSchema {
    Schema::build(Query, Mutation, EmptySubscription)
        .data(shared)
        .register_output_type::<ArtifactCollection>()
        .limit_depth(MAX_DEPTH)
        .disable_introspection()
        .finish()
}

type Res<T> = Result<T, Error>;

fn err(e: impl std::fmt::Display) -> Error {
    Error::new(e.to_string())
}

fn shared<'a>(ctx: &Context<'a>) -> &'a Shared {
    ctx.data_unchecked::<std::sync::Arc<Shared>>()
}

fn access<'a>(ctx: &Context<'a>) -> &'a Access {
    ctx.data_unchecked::<Access>()
}

fn reg<'a>(ctx: &Context<'a>) -> &'a Registry {
    &shared(ctx).registry
}

fn must_write(ctx: &Context<'_>, entity: &str) -> Res<()> {
    let a = access(ctx);
    if a.read_only && a.can_read(entity) {
        return Err(err(format!("permission denied: this API key of {} is read-only", a.user)));
    }
    if !a.can_write(entity) {
        return Err(err(format!(
            "permission denied: this API key may not write entity {entity:?}"
        )));
    }
    Ok(())
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// Pages of a list: `after` is the index of the last item seen, as a string.
fn page<T: Clone>(items: &[T], after: Option<&str>, first: Option<i32>) -> (Vec<T>, PageInfo) {
    let start = after.and_then(|a| a.parse::<usize>().ok()).map(|a| a + 1).unwrap_or(0);
    let n = first.map(|f| f.clamp(0, MAX_PAGE as i32) as usize).unwrap_or(DEFAULT_PAGE);
    let start = start.min(items.len());
    let end = (start + n).min(items.len());
    let info = PageInfo {
        end_cursor: (end > start).then(|| (end - 1).to_string()),
        has_next_page: end < items.len(),
    };
    (items[start..end].to_vec(), info)
}

// ---- scalars and enums --------------------------------------------------------------------------

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

// ---- small objects ------------------------------------------------------------------------------

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
pub struct ClientIdMapping {
    #[graphql(name = "serverID")]
    pub server_id: async_graphql::ID,
}

// ---- project ------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct Project {
    pub entity: String,
    pub name: String,
}

impl Project {
    async fn collection(&self, ctx: &Context<'_>, name: &str) -> Res<Option<ArtifactSequence>> {
        let Ok(c) = CollectionPath::new(&self.entity, &self.name, name) else {
            return Ok(None);
        };
        let state = reg(ctx).state(&c).await.map_err(err)?;
        Ok((state.seq > 0).then(|| ArtifactSequence::new(c, state)))
    }

    /// The project's collections; those whose versions were all deleted only with `with_empty`
    /// (their type stays, as on W&B, but listings skip them).
    async fn all_collections(
        &self,
        ctx: &Context<'_>,
        with_empty: bool,
    ) -> Res<Vec<ArtifactSequence>> {
        let r = reg(ctx);
        let mut out = Vec::new();
        for name in r.collections(&self.entity, &self.name).await.map_err(err)? {
            let Ok(c) = CollectionPath::new(&self.entity, &self.name, &name) else { continue };
            let state = r.state(&c).await.map_err(err)?;
            if state.seq > 0 && (with_empty || !state.versions.is_empty()) {
                out.push(ArtifactSequence::new(c, state));
            }
        }
        Ok(out)
    }

    async fn types(&self, ctx: &Context<'_>) -> Res<Vec<ArtifactType>> {
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

    /// `collection:alias` (alias `latest` when absent).
    async fn member(&self, ctx: &Context<'_>, name: &str) -> Res<Option<Membership>> {
        let (coll, alias) = name.rsplit_once(':').unwrap_or((name, LATEST));
        match self.collection(ctx, coll).await? {
            Some(seq) => Ok(seq.membership(alias)),
            None => Ok(None),
        }
    }
}

#[Object]
impl Project {
    async fn id(&self) -> async_graphql::ID {
        ids::project_id(&self.entity, &self.name).into()
    }
    async fn internal_id(&self) -> String {
        ids::project_number(&self.entity, &self.name).to_string()
    }
    async fn name(&self) -> &str {
        &self.name
    }
    async fn entity(&self) -> Entity {
        Entity { name: self.entity.clone() }
    }
    async fn run(&self, ctx: &Context<'_>, name: Option<String>) -> Res<Option<Run>> {
        let Some(Ok(path)) = name.map(|n| RunPath::new(&self.entity, &self.name, &n)) else {
            return Ok(None);
        };
        let state = reg(ctx).run_state(&path).await.map_err(err)?;
        Ok((state.seq > 0).then_some(Run { path, state }))
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
    ) -> Res<ArtifactTypeConnection> {
        let all = self.types(ctx).await?;
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
    ) -> Res<Option<ArtifactSequence>> {
        match name {
            Some(n) => self.collection(ctx, &n).await,
            None => Ok(None),
        }
    }
    async fn artifact_collections(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
        #[graphql(name = "filters")] _filters: Option<JsonString>,
        #[graphql(name = "order")] _order: Option<String>,
    ) -> Res<ArtifactCollectionConnection> {
        let all = self.all_collections(ctx, false).await?;
        Ok(ArtifactCollectionConnection::of(&all, after.as_deref(), first))
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
    ) -> Res<Option<ArtifactSequence>> {
        let Some(name) = name else { return Ok(None) };
        Ok(self
            .project
            .collection(ctx, &name)
            .await?
            .filter(|c| c.state.artifact_type.as_deref() == Some(&self.name)))
    }
    async fn artifact_collections(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
        #[graphql(name = "filters")] _filters: Option<JsonString>,
        #[graphql(name = "order")] _order: Option<String>,
    ) -> Res<ArtifactCollectionConnection> {
        let all: Vec<ArtifactSequence> = self
            .project
            .all_collections(ctx, false)
            .await?
            .into_iter()
            .filter(|c| c.state.artifact_type.as_deref() == Some(&self.name))
            .collect();
        Ok(ArtifactCollectionConnection::of(&all, after.as_deref(), first))
    }
}

// ---- collections --------------------------------------------------------------------------------

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
    fn of(all: &[ArtifactSequence], after: Option<&str>, first: Option<i32>) -> Self {
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
    fn new(path: CollectionPath, state: CollectionState) -> Self {
        ArtifactSequence { path, state }
    }

    fn project_obj(&self) -> Project {
        Project { entity: self.path.entity.clone(), name: self.path.project.clone() }
    }

    fn version(&self, version: u32) -> Option<Artifact> {
        let r = Registry::resolve_in(&self.path, &self.state, &Selector::Version(version)).ok()?;
        Some(Artifact::committed(&r))
    }

    /// `alias` is `vN`, an alias, or an artifact digest.
    fn membership(&self, alias: &str) -> Option<Membership> {
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

    fn created(&self) -> DateTime<Utc> {
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
    /// Newest first, as `wandb artifact ls` expects (it reads one item as "latest").
    async fn artifacts(
        &self,
        after: Option<String>,
        first: Option<i32>,
        #[graphql(name = "order")] _order: Option<String>,
        filters: Option<JsonString>,
    ) -> VersionedArtifactConnection {
        // Only `state` is understood; versions are COMMITTED (drafts are not versions yet).
        let wanted_state = filters
            .and_then(|f| serde_json::from_str::<serde_json::Value>(&f.0).ok())
            .and_then(|f| f.get("state").and_then(|s| s.as_str()).map(str::to_owned));
        let all: Vec<Artifact> = match wanted_state.as_deref() {
            None | Some("COMMITTED") => {
                self.state.versions.keys().rev().filter_map(|v| self.version(*v)).collect()
            }
            Some(_) => Vec::new(),
        };
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

// ---- memberships and files ----------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct Membership {
    pub collection: ArtifactSequence,
    pub artifact: Artifact,
}

#[Object(name = "ArtifactCollectionMembership")]
impl Membership {
    async fn id(&self) -> async_graphql::ID {
        ids::other_id("ArtifactCollectionMembership", &self.artifact.id).into()
    }
    async fn version_index(&self) -> Option<i32> {
        self.artifact.version.map(|v| v as i32)
    }
    async fn created_at(&self) -> &str {
        &self.artifact.created_at
    }
    async fn aliases(&self) -> Vec<ArtifactAlias> {
        self.artifact.alias_objects()
    }
    async fn artifact_collection(&self) -> ArtifactSequence {
        self.collection.clone()
    }
    async fn artifact(&self) -> Artifact {
        self.artifact.clone()
    }
    /// Every manifest entry, references included (the SDK downloads only what is listed here).
    async fn files(
        &self,
        ctx: &Context<'_>,
        names: Option<Vec<String>>,
        after: Option<String>,
        first: Option<i32>,
    ) -> Res<FileConnection> {
        let manifest = self.artifact.manifest(ctx).await?;
        let all: Vec<(&String, &Entry)> = manifest
            .contents
            .iter()
            .filter(|(p, _)| names.as_ref().is_none_or(|n| n.contains(p)))
            .collect();
        let (items, page_info) = page(&all, after.as_deref(), first);
        let s = shared(ctx);
        let edges = items
            .into_iter()
            .map(|(path, e)| {
                let direct_url = match &e.reference {
                    Some(r) => r.clone(),
                    None => crate::registry::entry_blob_key(e)
                        .map(|k| s.blob_url("GET", &k))
                        .unwrap_or_else(|| s.public_url.clone()),
                };
                FileEdge {
                    node: File {
                        id: ids::other_id("File", &format!("{}/{path}", self.artifact.id)),
                        name: path.clone(),
                        size_bytes: e.size.unwrap_or(0) as i64,
                        digest: Some(e.digest.clone()),
                        md5: e.blob_md5().map(str::to_owned),
                        direct_url,
                        ..File::default()
                    },
                }
            })
            .collect();
        Ok(FileConnection { total_count: Some(all.len() as i32), page_info, edges })
    }
}

#[derive(SimpleObject, Clone, Debug, Default)]
pub struct UploadPartUrl {
    pub part_number: i32,
    pub upload_url: String,
}

#[derive(SimpleObject, Clone, Debug, Default)]
pub struct UploadMultipartUrls {
    #[graphql(name = "uploadID")]
    pub upload_id: String,
    pub upload_url_parts: Vec<UploadPartUrl>,
}

#[derive(SimpleObject, Clone, Debug, Default)]
#[graphql(complex)]
pub struct File {
    pub id: String,
    pub name: String,
    pub size_bytes: i64,
    pub url: Option<String>,
    pub storage_path: Option<String>,
    pub mimetype: Option<String>,
    pub updated_at: Option<String>,
    pub digest: Option<String>,
    pub md5: Option<String>,
    pub direct_url: String,
    pub upload_url: Option<String>,
    pub upload_headers: Option<Vec<String>>,
    pub upload_multipart_urls: Option<UploadMultipartUrls>,
    pub artifact: Option<Artifact>,
}

#[async_graphql::ComplexObject]
impl File {
    /// The manifest path, as `name` (the SDK reads `name: displayName`).
    async fn display_name(&self) -> &str {
        &self.name
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct FileEdge {
    pub node: File,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct FileConnection {
    pub total_count: Option<i32>,
    pub page_info: PageInfo,
    pub edges: Vec<FileEdge>,
}

// ---- artifacts ----------------------------------------------------------------------------------

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
        }
    }

    fn pending(d: &Draft) -> Artifact {
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
        }
    }

    /// The runs that logged (or used) this version, from the lineage index: one listing, not a
    /// scan of the project's runs; runs of entities the caller may not read are left out.
    async fn project_runs(&self, ctx: &Context<'_>, kind: EdgeKind) -> Res<Vec<Run>> {
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

    fn alias_objects(&self) -> Vec<ArtifactAlias> {
        self.aliases
            .iter()
            .map(|a| ArtifactAlias { alias: a.clone(), collection: self.collection.clone() })
            .collect()
    }

    async fn manifest(&self, ctx: &Context<'_>) -> Res<Manifest> {
        let Some(key) = &self.manifest_key else {
            return Err(err(format!("{}: this version has no manifest yet", self.collection)));
        };
        let bytes = reg(ctx).store().get(key).await.map_err(err)?;
        Manifest::from_json(&bytes).map_err(err)
    }
}

/// How the manifest at `key` computes its artifact digest.
async fn digest_algorithm_of(r: &Registry, key: &str) -> Res<ArtifactDigestAlgorithm> {
    let manifest = Manifest::from_json(&r.store().get(key).await.map_err(err)?).map_err(err)?;
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
            let state = registry.state(&c).await?;
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
                    let state = registry.state(&draft.collection).await?;
                    Ok(Registry::resolve_in(&draft.collection, &state, &Selector::Version(version))
                        .ok()
                        .map(|r| Artifact::committed(&r)))
                }
                DraftStatus::Pending { .. } => Ok(Some(Artifact::pending(&draft))),
            }
        }
        _ => Ok(None),
    }
}

async fn draft_for_write(ctx: &Context<'_>, id: &str) -> Res<Draft> {
    let missing = || err(format!("artifact {id} not found, or it is not a pending version"));
    let Some(NodeId::Draft(d)) = ids::decode(id) else { return Err(missing()) };
    let draft = reg(ctx).draft(&d).await.map_err(err)?.ok_or_else(missing)?;
    if !access(ctx).can_read(&draft.collection.entity) {
        return Err(missing());
    }
    must_write(ctx, &draft.collection.entity)?;
    Ok(draft)
}

/// A committed version the caller may write.
async fn version_for_write(ctx: &Context<'_>, id: &str) -> Res<Artifact> {
    let a = artifact_by_id(reg(ctx), access(ctx), id)
        .await
        .map_err(err)?
        .filter(|a| a.version.is_some())
        .ok_or_else(|| err(format!("artifact {id} not found")))?;
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
        -2
    }
    async fn ttl_is_inherited(&self) -> bool {
        true
    }
    async fn tags(&self) -> Vec<Tag> {
        Vec::new()
    }
    async fn history_step(&self) -> Option<i64> {
        None
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
    async fn commit_hash(&self) -> Option<String> {
        None
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
    async fn aliases(&self) -> Vec<ArtifactAlias> {
        self.alias_objects()
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
        Ok(RunConnection { edges: runs.into_iter().map(|node| RunEdge { node }).collect() })
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

// ---- runs ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct Run {
    pub path: RunPath,
    pub state: RunState,
}

impl Run {
    async fn artifacts(
        &self,
        ctx: &Context<'_>,
        list: &[(String, u32)],
        after: Option<String>,
        first: Option<i32>,
    ) -> Res<ArtifactConnection> {
        let mut all = Vec::new();
        for (coll, v) in list {
            let Some((e, rest)) = coll.split_once('/') else { continue };
            let Some((p, n)) = rest.split_once('/') else { continue };
            let Ok(c) = CollectionPath::new(e, p, n) else { continue };
            if let Some(a) = artifact_by_id(reg(ctx), access(ctx), &ids::version_id(&c, *v))
                .await
                .map_err(err)?
            {
                all.push(a);
            }
        }
        let (items, page_info) = page(&all, after.as_deref(), first);
        Ok(ArtifactConnection {
            total_count: all.len() as i32,
            page_info,
            edges: items.into_iter().map(|node| ArtifactEdge { node }).collect(),
        })
    }
}

#[Object]
impl Run {
    async fn id(&self) -> async_graphql::ID {
        ids::run_id(&self.path).into()
    }
    async fn name(&self) -> &str {
        &self.path.name
    }
    async fn display_name(&self) -> Option<&str> {
        self.state.fields.display_name.as_deref().or(Some(&self.path.name))
    }
    async fn project_id(&self) -> i64 {
        ids::project_number(&self.path.entity, &self.path.project)
    }
    async fn project(&self) -> Project {
        Project { entity: self.path.entity.clone(), name: self.path.project.clone() }
    }
    async fn tags(&self) -> Vec<String> {
        self.state.fields.tags.clone().unwrap_or_default()
    }
    async fn sweep_name(&self) -> Option<String> {
        None
    }
    async fn state(&self) -> &str {
        if self.state.finished { "finished" } else { "running" }
    }
    async fn group(&self) -> Option<&str> {
        self.state.fields.group.as_deref()
    }
    async fn job_type(&self) -> Option<&str> {
        self.state.fields.job_type.as_deref()
    }
    async fn commit(&self) -> Option<&str> {
        self.state.fields.commit.as_deref()
    }
    async fn read_only(&self) -> bool {
        false
    }
    async fn created_at(&self) -> Option<String> {
        self.state.created_at.map(time)
    }
    async fn heartbeat_at(&self) -> Option<String> {
        self.state.updated_at.map(time)
    }
    async fn description(&self) -> Option<&str> {
        self.state.fields.description.as_deref()
    }
    async fn notes(&self) -> Option<&str> {
        self.state.fields.notes.as_deref()
    }
    async fn history_line_count(&self) -> i64 {
        0
    }
    /// What `upsertBucket` last recorded (`{}` if nothing): `Api().run(…)` asks for it.
    async fn summary_metrics(&self) -> JsonString {
        JsonString(self.state.fields.summary_metrics.clone().unwrap_or_else(|| "{}".to_owned()))
    }
    /// Metrics history is not kept (the file_stream body is stored as sent, not parsed).
    async fn system_metrics(&self) -> JsonString {
        JsonString("{}".to_owned())
    }
    /// A JSON object, not a string: the SDK calls `.get("lastStep", -1)` on it.
    async fn history_keys(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(serde_json::json!({ "keys": {} }))
    }
    async fn config(&self) -> Option<JsonString> {
        self.state.fields.config.clone().map(JsonString)
    }
    async fn sweep(&self) -> Option<String> {
        None
    }
    async fn user(&self, ctx: &Context<'_>) -> User {
        User { name: access(ctx).user.clone(), entity: None, teams: Vec::new() }
    }
    async fn input_artifacts(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
    ) -> Res<ArtifactConnection> {
        self.artifacts(ctx, &self.state.used, after, first).await
    }
    async fn output_artifacts(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
    ) -> Res<ArtifactConnection> {
        self.artifacts(ctx, &self.state.logged, after, first).await
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct RunEdge {
    pub node: Run,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct RunConnection {
    pub edges: Vec<RunEdge>,
}

// ---- queries ------------------------------------------------------------------------------------

pub struct Query;

#[Object]
impl Query {
    async fn viewer(&self, ctx: &Context<'_>) -> User {
        let a = access(ctx);
        User {
            name: a.user.clone(),
            entity: Some(a.default_entity().to_owned()),
            teams: a.entities.clone(),
        }
    }
    async fn server_info(&self) -> ServerInfo {
        // ARTIFACT_DIGEST_ALGORITHM: wandb-core keeps XXH128 artifacts XXH128 only with it (and
        // then selects `digestAlgorithm`, which this schema resolves from the manifest).
        let on = |name: &str| ServerFeature { name: name.to_owned(), is_enabled: true };
        ServerInfo { features: vec![on("ARTIFACT_DIGEST_ALGORITHM")] }
    }
    async fn project(
        &self,
        ctx: &Context<'_>,
        name: Option<String>,
        entity_name: Option<String>,
    ) -> Option<Project> {
        let a = access(ctx);
        let entity = entity_name.unwrap_or_else(|| a.default_entity().to_owned());
        let name = name?;
        if !a.can_read(&entity) || crate::names::validate_scope("project", &name).is_err() {
            return None;
        }
        Some(Project { entity, name })
    }
    /// The projects of an entity (those holding artifacts), paged.
    async fn models(
        &self,
        ctx: &Context<'_>,
        entity_name: Option<String>,
        after: Option<String>,
        first: Option<i32>,
    ) -> Res<Option<ProjectConnection>> {
        let a = access(ctx);
        let entity = entity_name.unwrap_or_else(|| a.default_entity().to_owned());
        if !a.can_read(&entity) {
            return Ok(None);
        }
        let names = reg(ctx).projects(&entity).await.map_err(err)?;
        let (names, page_info) = page(&names, after.as_deref(), first);
        let edges = names
            .into_iter()
            .map(|name| ProjectEdge { node: Project { entity: entity.clone(), name } })
            .collect();
        Ok(Some(ProjectConnection { page_info, edges }))
    }
    async fn entity(&self, ctx: &Context<'_>, name: Option<String>) -> Option<Entity> {
        let name = name.unwrap_or_else(|| access(ctx).default_entity().to_owned());
        access(ctx).can_read(&name).then_some(Entity { name })
    }
    async fn artifact(&self, ctx: &Context<'_>, id: Option<String>) -> Res<Option<Artifact>> {
        let Some(id) = id else { return Ok(None) };
        artifact_by_id(reg(ctx), access(ctx), &id).await.map_err(err)
    }
    async fn artifact_collection(
        &self,
        ctx: &Context<'_>,
        id: Option<String>,
    ) -> Res<Option<ArtifactSequence>> {
        let Some(NodeId::Collection(c)) = id.as_deref().and_then(ids::decode) else {
            return Ok(None);
        };
        if !access(ctx).can_read(&c.entity) {
            return Ok(None);
        }
        let state = reg(ctx).state(&c).await.map_err(err)?;
        Ok((state.seq > 0).then(|| ArtifactSequence::new(c, state)))
    }
    #[graphql(name = "clientIDMapping")]
    async fn client_id_mapping(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "clientID")] client_id: Option<String>,
    ) -> Res<Option<ClientIdMapping>> {
        let Some(cid) = client_id else { return Ok(None) };
        let Some(d) = reg(ctx).draft_by_client_id(&cid).await.map_err(err)? else {
            return Ok(None);
        };
        if !access(ctx).can_read(&d.collection.entity) {
            return Ok(None);
        }
        let id = match artifact_by_id(reg(ctx), access(ctx), &ids::draft_id(&d.id))
            .await
            .map_err(err)?
        {
            Some(a) => a.id,
            None => ids::draft_id(&d.id),
        };
        Ok(Some(ClientIdMapping { server_id: id.into() }))
    }
}

// ---- mutations ----------------------------------------------------------------------------------

#[derive(InputObject, Debug, Default)]
pub struct UpsertBucketInput {
    pub id: Option<String>,
    pub name: Option<String>,
    pub group_name: Option<String>,
    pub model_name: Option<String>,
    pub entity_name: Option<String>,
    pub description: Option<String>,
    pub display_name: Option<String>,
    pub notes: Option<String>,
    pub config: Option<JsonString>,
    pub commit: Option<String>,
    pub host: Option<String>,
    pub debug: Option<bool>,
    pub job_program: Option<String>,
    pub job_repo: Option<String>,
    pub job_type: Option<String>,
    pub state: Option<String>,
    pub sweep: Option<String>,
    pub tags: Option<Vec<String>>,
    pub summary_metrics: Option<JsonString>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct UpsertBucketPayload {
    pub bucket: Option<Run>,
    pub inserted: Option<bool>,
}

#[derive(InputObject, Debug)]
pub struct CreateRunFilesInput {
    pub entity_name: Option<String>,
    pub project_name: Option<String>,
    pub run_name: Option<String>,
    pub files: Option<Vec<String>>,
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct RunFileUrl {
    pub name: String,
    pub upload_url: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct CreateRunFilesPayload {
    #[graphql(name = "runID")]
    pub run_id: Option<String>,
    pub upload_headers: Vec<String>,
    pub files: Vec<RunFileUrl>,
}

#[derive(InputObject, Debug)]
pub struct ArtifactAliasInput {
    pub alias: String,
    pub artifact_collection_name: Option<String>,
    pub entity_name: Option<String>,
    pub project_name: Option<String>,
}

#[derive(InputObject, Debug)]
pub struct TagInput {
    pub tag_name: Option<String>,
    pub tag_category_name: Option<String>,
    pub attributes: Option<JsonString>,
}

#[derive(InputObject, Debug)]
pub struct CreateArtifactInput {
    pub entity_name: Option<String>,
    pub project_name: Option<String>,
    pub artifact_type_name: Option<String>,
    pub artifact_collection_name: Option<String>,
    pub artifact_collection_names: Option<Vec<String>>,
    pub run_name: Option<String>,
    pub digest: Option<String>,
    pub digest_algorithm: Option<String>,
    pub description: Option<String>,
    pub metadata: Option<JsonString>,
    pub aliases: Option<Vec<ArtifactAliasInput>>,
    pub tags: Option<Vec<TagInput>>,
    pub labels: Option<JsonString>,
    pub ttl_duration_seconds: Option<i64>,
    pub history_step: Option<i64>,
    #[graphql(name = "distributedID")]
    pub distributed_id: Option<String>,
    pub enable_digest_deduplication: Option<bool>,
    #[graphql(name = "clientID")]
    pub client_id: Option<String>,
    #[graphql(name = "sequenceClientID")]
    pub sequence_client_id: Option<String>,
    pub storage_region: Option<String>,
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct CreateArtifactPayload {
    pub artifact: Artifact,
}

#[derive(InputObject, Debug)]
pub struct CreateArtifactManifestInput {
    #[graphql(name = "artifactID")]
    pub artifact_id: Option<String>,
    #[graphql(name = "baseArtifactID")]
    pub base_artifact_id: Option<String>,
    pub name: Option<String>,
    pub digest: Option<String>,
    pub entity_name: Option<String>,
    pub project_name: Option<String>,
    pub run_name: Option<String>,
    #[graphql(name = "type")]
    pub manifest_type: Option<ArtifactManifestType>,
    pub client_mutation_id: Option<String>,
}

#[derive(InputObject, Debug)]
pub struct UpdateArtifactManifestInput {
    #[graphql(name = "artifactManifestID")]
    pub artifact_manifest_id: Option<String>,
    pub digest: Option<String>,
    #[graphql(name = "baseArtifactID")]
    pub base_artifact_id: Option<String>,
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ArtifactManifestPayload {
    pub artifact_manifest: ArtifactManifest,
}

#[derive(InputObject, Debug)]
pub struct UploadPartsInput {
    pub part_number: i32,
    #[graphql(name = "hexMD5")]
    pub hex_md5: String,
}

#[derive(InputObject, Debug)]
pub struct CreateArtifactFileSpecInput {
    #[graphql(name = "artifactID")]
    pub artifact_id: String,
    #[graphql(name = "artifactManifestID")]
    pub artifact_manifest_id: Option<String>,
    pub name: String,
    pub md5: String,
    pub digest: Option<String>,
    pub mimetype: Option<String>,
    pub upload_parts_input: Option<Vec<UploadPartsInput>>,
}

#[derive(InputObject, Debug)]
pub struct CreateArtifactFilesInput {
    pub artifact_files: Vec<CreateArtifactFileSpecInput>,
    pub storage_layout: Option<String>,
    pub digest_algorithm: Option<String>,
    #[graphql(name = "cloudRegionID")]
    pub cloud_region_id: Option<String>,
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct CreateArtifactFilesPayload {
    pub files: FileConnection,
}

#[derive(InputObject, Debug)]
pub struct CompleteMultipartUploadArtifactInput {
    pub complete_multipart_action: Option<CompleteMultipartAction>,
    pub completed_parts: Option<Vec<UploadPartsInput>>,
    #[graphql(name = "artifactID")]
    pub artifact_id: Option<String>,
    pub storage_path: Option<String>,
    #[graphql(name = "uploadID")]
    pub upload_id: Option<String>,
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct CompleteMultipartPayload {
    pub digest: Option<String>,
}

#[derive(InputObject, Debug)]
pub struct CommitArtifactInput {
    #[graphql(name = "artifactID")]
    pub artifact_id: String,
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ArtifactPayload {
    pub artifact: Option<Artifact>,
}

#[derive(InputObject, Debug)]
pub struct UseArtifactInput {
    pub entity_name: Option<String>,
    pub project_name: Option<String>,
    pub run_name: Option<String>,
    #[graphql(name = "artifactID")]
    pub artifact_id: String,
    pub artifact_entity_name: Option<String>,
    pub artifact_project_name: Option<String>,
    pub used_as: Option<String>,
    pub client_mutation_id: Option<String>,
}

#[derive(InputObject, Debug)]
pub struct UpdateArtifactInput {
    #[graphql(name = "artifactID")]
    pub artifact_id: String,
    pub description: Option<String>,
    pub metadata: Option<JsonString>,
    pub ttl_duration_seconds: Option<i64>,
    pub tags_to_add: Option<Vec<TagInput>>,
    pub tags_to_delete: Option<Vec<TagInput>>,
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct UpdateArtifactPayload {
    pub artifact: Artifact,
}

#[derive(InputObject, Debug)]
pub struct AddAliasesInput {
    #[graphql(name = "artifactID")]
    pub artifact_id: String,
    pub aliases: Vec<ArtifactAliasInput>,
    pub client_mutation_id: Option<String>,
}

#[derive(InputObject, Debug)]
pub struct DeleteAliasesInput {
    #[graphql(name = "artifactID")]
    pub artifact_id: String,
    pub aliases: Vec<ArtifactAliasInput>,
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct SuccessPayload {
    pub success: bool,
}

#[derive(InputObject, Debug)]
pub struct DeleteArtifactInput {
    #[graphql(name = "artifactID")]
    pub artifact_id: String,
    pub delete_aliases: Option<bool>,
    pub client_mutation_id: Option<String>,
}

/// Multipart upload ids are random hex, also used as a key component.
pub fn valid_upload_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

pub fn part_key(upload: &str, n: u32) -> String {
    format!("uploads/{upload}/{n:05}")
}

fn md5_of_blob_key(key: &str) -> Option<[u8; 16]> {
    let hex = key.strip_prefix("blobs/md5/")?.replace('/', "");
    hex::decode(hex).ok()?.try_into().ok()
}

/// Part URLs for a file the SDK uploads in parts (wandb-core does so from 2 GiB on).
fn multipart_urls(s: &Shared, name: &str, parts: &[UploadPartsInput]) -> Res<UploadMultipartUrls> {
    let upload_id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    let mut urls = Vec::with_capacity(parts.len());
    for p in parts {
        let hex = p.hex_md5.to_ascii_lowercase();
        let valid_md5 = hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid_md5 || !(1..=10_000).contains(&p.part_number) {
            return Err(err(format!(
                "createArtifactFiles: {name}: invalid part {}",
                p.part_number
            )));
        }
        urls.push(UploadPartUrl {
            part_number: p.part_number,
            upload_url: s.part_url(&upload_id, p.part_number as u32, &hex),
        });
    }
    Ok(UploadMultipartUrls { upload_id, upload_url_parts: urls })
}

fn run_path(entity: Option<&str>, project: Option<&str>, run: Option<&str>) -> Option<RunPath> {
    RunPath::new(entity?, project?, run?).ok()
}

async fn note_run(ctx: &Context<'_>, run: Option<RunPath>, op: RunOp) {
    let Some(run) = run else { return };
    if !access(ctx).can_write(&run.entity) {
        return;
    }
    if let Err(e) = reg(ctx).record_run(&run, op).await {
        tracing::warn!(
            "run {}/{}/{}: could not record lineage: {e}",
            run.entity,
            run.project,
            run.name
        );
    }
}

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
            return Err(err("upsertBucket: a run name is required"));
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
            return Err(err("createRunFiles: entityName, projectName and runName are required"));
        };
        must_write(ctx, e)?;
        let run = RunPath::new(e, p, r).map_err(err)?;
        let s = shared(ctx);
        let mut files = Vec::new();
        for name in input.files.unwrap_or_default() {
            crate::manifest::validate_path(&name).map_err(err)?;
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
        let (Some(project), Some(name), Some(ty), Some(digest)) = (
            input.project_name.as_deref(),
            input.artifact_collection_name.as_deref(),
            input.artifact_type_name.as_deref(),
            input.digest.as_deref(),
        ) else {
            return Err(err(
                "createArtifact: projectName, artifactCollectionName, artifactTypeName and digest are required",
            ));
        };
        must_write(ctx, &entity)?;
        let c = CollectionPath::new(&entity, project, name).map_err(err)?;
        let r = reg(ctx);
        let state = r.state(&c).await.map_err(err)?;
        if let Some(t) = state.artifact_type.as_ref().filter(|_| state.seq > 0)
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
        let metadata = match input.metadata {
            Some(m) => Some(
                serde_json::from_str::<serde_json::Value>(&m.0)
                    .map_err(|e| err(format!("createArtifact: metadata is not JSON: {e}")))?,
            ),
            None => None,
        };
        let run = run_path(Some(&entity), Some(project), input.run_name.as_deref());
        // A part's digest is its own, not the version's: distributed writers never dedup.
        let dedup =
            input.enable_digest_deduplication != Some(false) && input.distributed_id.is_none();
        if dedup && let Some(existing) = state.version_by_digest(digest).cloned() {
            // Same content as an existing version: no new version; the aliases move to it.
            let resolved = Registry::resolve_in(&c, &state, &Selector::Version(existing.version))
                .map_err(err)?;
            let bytes = r.store().get(&existing.manifest).await.map_err(err)?;
            let manifest = Manifest::from_json(&bytes).map_err(err)?;
            let req = crate::registry::LogRequest {
                collection: c.clone(),
                artifact_type: ty.to_owned(),
                description: None,
                metadata: None,
                aliases,
                manifest,
                sources: Default::default(),
            };
            let out = r.publish(&req).await.map_err(err)?;
            note_run(ctx, run, RunOp::Logged { collection: c.to_string(), version: out.version })
                .await;
            let mut a = Artifact::committed(&resolved);
            a.aliases = out.aliases;
            return Ok(CreateArtifactPayload { artifact: a });
        }
        let distributed = match &input.distributed_id {
            Some(g) => Some(r.join_group(&c, g, ty, &aliases).await.map_err(err)?),
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
        if !(full || patch && draft.distributed.is_some()) {
            return Err(err(
                "createArtifactManifest: only FULL manifests, and PATCH manifests of distributed artifacts, are supported by artfs serve (no INCREMENTAL)",
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

    /// A distributed writer's PATCH manifest: uploaded to its draft, where it becomes a part.
    async fn update_artifact_manifest(
        &self,
        ctx: &Context<'_>,
        input: UpdateArtifactManifestInput,
    ) -> Res<ArtifactManifestPayload> {
        let id = input.artifact_manifest_id.as_deref().unwrap_or_default();
        let refused = || {
            err(
                "updateArtifactManifest: only PATCH manifests of distributed artifacts are supported by artfs serve (no INCREMENTAL)",
            )
        };
        let Some(NodeId::Other(d)) = ids::decode(id) else { return Err(refused()) };
        let draft = draft_for_write(ctx, &ids::draft_id(&d)).await?;
        if draft.distributed.is_none() {
            return Err(refused());
        }
        let s = shared(ctx);
        Ok(ArtifactManifestPayload {
            artifact_manifest: ArtifactManifest {
                id: id.to_owned(),
                file: File {
                    id: ids::other_id("File", &draft.id),
                    name: "wandb_manifest.patch.json".into(),
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
            crate::manifest::validate_path(&spec.name).map_err(err)?;
            let key = blob_key(&spec.md5).ok_or_else(|| {
                err(format!(
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
            return Err(err("completeMultipartUploadArtifact: unknown upload or storage path"));
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
                return Err(err(format!(
                    "completeMultipartUploadArtifact: parts must be 1..{}, got part {}",
                    parts.len(),
                    p.part_number
                )));
            }
            let k = part_key(&upload, p.part_number as u32);
            if store.head(&k).await.map_err(err)?.is_none() {
                return Err(err(format!(
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
            Err(e) => return Err(err(format!("completeMultipartUploadArtifact: {e}"))),
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
            .ok_or_else(|| err(format!("useArtifact: artifact {} not found", input.artifact_id)))?;
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
        let metadata = match input.metadata {
            Some(m) => Some(
                serde_json::from_str::<serde_json::Value>(&m.0)
                    .map_err(|e| err(format!("updateArtifact: metadata is not JSON: {e}")))?,
            ),
            None => None,
        };
        let r = reg(ctx);
        let version = a.version.unwrap_or(0);
        r.edit(&a.collection, version, input.description, metadata, None).await.map_err(err)?;
        let fresh = artifact_by_id(r, access(ctx), &a.id)
            .await
            .map_err(err)?
            .ok_or_else(|| err(format!("artifact {} not found", a.id)))?;
        Ok(UpdateArtifactPayload { artifact: fresh })
    }

    async fn add_aliases(&self, ctx: &Context<'_>, input: AddAliasesInput) -> Res<SuccessPayload> {
        let a = version_for_write(ctx, &input.artifact_id).await?;
        let add: Vec<String> =
            input.aliases.into_iter().map(|a| a.alias).filter(|a| a != LATEST).collect();
        reg(ctx)
            .set_aliases(&a.collection, a.version.unwrap_or(0), &add, &[])
            .await
            .map_err(err)?;
        Ok(SuccessPayload { success: true })
    }

    async fn delete_aliases(
        &self,
        ctx: &Context<'_>,
        input: DeleteAliasesInput,
    ) -> Res<SuccessPayload> {
        let a = version_for_write(ctx, &input.artifact_id).await?;
        let remove: Vec<String> =
            input.aliases.into_iter().map(|a| a.alias).filter(|a| a != LATEST).collect();
        reg(ctx)
            .set_aliases(&a.collection, a.version.unwrap_or(0), &[], &remove)
            .await
            .map_err(err)?;
        Ok(SuccessPayload { success: true })
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
}
