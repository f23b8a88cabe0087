//! The `Query` root: viewer, server info, projects, artifacts and runs by name or id.

use super::*;

pub struct Query;

async fn existing_project(
    ctx: &Context<'_>,
    name: Option<String>,
    entity_name: Option<String>,
) -> Res<Option<Project>> {
    let a = access(ctx);
    let entity = entity_name.unwrap_or_else(|| a.default_entity().to_owned());
    let Some(name) = name else { return Ok(None) };
    // Who may see it, and registries by their role (`orgs`).
    let Some(project) = registries::entity_project(ctx, &entity, &name) else { return Ok(None) };
    // A registry is there once created; another project once something was written to it.
    if registries::registry_of(ctx, &project).is_some() {
        return Ok(Some(project));
    }
    let exists = reg(ctx).project_exists(&entity, &name).await.map_err(err)?;
    Ok(exists.then_some(project))
}

#[Object]
impl Query {
    async fn viewer(&self, ctx: &Context<'_>) -> User {
        User::viewer(access(ctx))
    }
    async fn server_info(&self) -> ServerInfo {
        // ARTIFACT_DIGEST_ALGORITHM: wandb-core keeps XXH128 artifacts XXH128 only with it (and
        // then selects `digestAlgorithm`, which this schema resolves from the manifest).
        // ARTIFACT_MEMBERSHIP_IN_LINK_ARTIFACT_RESPONSE: `linkArtifact` answers the link's
        // membership, so `Artifact.link` needs no second lookup.
        let on = |name: &str| ServerFeature { name: name.to_owned(), is_enabled: true };
        // TOTAL_COUNT_IN_FILE_CONNECTION: `len(artifact.files())` (`FileConnection.totalCount`).
        // ARTIFACT_TAGS: tags on versions and collections; ARTIFACT_COLLECTIONS_FILTERING_SORTING:
        // collection listings take `filters` (name, tag) and `order` (`retention`).
        // INCLUDE_ARTIFACT_TYPES_IN_REGISTRY_CREATION and ARTIFACT_REGISTRY_SEARCH: registries
        // (`orgs`) are created with their allowed types, and listed and searched by org.
        ServerInfo {
            features: vec![
                on("ARTIFACT_DIGEST_ALGORITHM"),
                on("TOTAL_COUNT_IN_FILE_CONNECTION"),
                on("ARTIFACT_MEMBERSHIP_IN_LINK_ARTIFACT_RESPONSE"),
                on("ARTIFACT_TAGS"),
                on("ARTIFACT_COLLECTIONS_FILTERING_SORTING"),
                on("INCLUDE_ARTIFACT_TYPES_IN_REGISTRY_CREATION"),
                on("ARTIFACT_REGISTRY_SEARCH"),
            ],
        }
    }
    /// A project that holds collections or runs; any other is null, as on W&B.
    async fn project(
        &self,
        ctx: &Context<'_>,
        name: Option<String>,
        entity_name: Option<String>,
    ) -> Res<Option<Project>> {
        existing_project(ctx, name, entity_name).await
    }
    /// W&B's old name for a project; wandb-core asks it whether a run to resume exists.
    async fn model(
        &self,
        ctx: &Context<'_>,
        name: Option<String>,
        entity_name: Option<String>,
    ) -> Res<Option<Project>> {
        existing_project(ctx, name, entity_name).await
    }
    /// The projects of an entity (those holding collections or runs), paged.
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
        let names = reg(ctx).all_projects(&entity).await.map_err(err)?;
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
    ) -> Res<Option<ArtifactCollection>> {
        let Some(NodeId::Collection(c)) = id.as_deref().and_then(ids::decode) else {
            return Ok(None);
        };
        if !access(ctx).can_read(&c.entity) {
            return Ok(None);
        }
        // Ids minted before a rename still name the collection.
        let (c, state) = reg(ctx).follow(&c).await.map_err(err)?;
        Ok(state.exists().then(|| ArtifactCollection::of(ArtifactSequence::new(c, state))))
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
    async fn organization(&self, ctx: &Context<'_>, name: Option<String>) -> Option<Organization> {
        orgs::organization(ctx, name)
    }
    async fn users(&self, ctx: &Context<'_>, query: Option<String>) -> users::UserConnection {
        users::users(ctx, query)
    }
}
