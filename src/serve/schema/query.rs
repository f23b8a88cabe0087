//! The `Query` root: viewer, server info, projects, artifacts and runs by name or id.

use super::*;

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
        // TOTAL_COUNT_IN_FILE_CONNECTION: `len(artifact.files())` (`FileConnection.totalCount`).
        ServerInfo {
            features: vec![on("ARTIFACT_DIGEST_ALGORITHM"), on("TOTAL_COUNT_IN_FILE_CONNECTION")],
        }
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
