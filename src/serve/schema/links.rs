//! Links (`registry::links`) as W&B shows them: `ArtifactPortfolio` collections, whose members
//! are the linked versions themselves (same artifact id, their own collection and number), the
//! `linkArtifact` / `unlinkArtifact` mutations and an artifact's `artifactMemberships`.

use super::*;
use crate::registry::links::{Link, source_path};

impl ArtifactCollection {
    /// The interface's variant for a collection: a portfolio once it holds links.
    pub(super) fn of(c: ArtifactSequence) -> ArtifactCollection {
        if c.state.portfolio {
            ArtifactCollection::ArtifactPortfolio(ArtifactPortfolio(c))
        } else {
            ArtifactCollection::ArtifactSequence(c)
        }
    }
}

impl ArtifactSequence {
    /// The artifact behind version `v`: the version itself, or for a link the version it links
    /// (read fresh, so its metadata and aliases are the source's; `None` once the source is gone).
    pub(super) async fn artifact_at(&self, r: &Registry, v: u32) -> Res<Option<Artifact>> {
        let Some(record) = self.state.versions.get(&v) else { return Ok(None) };
        let Some(src) = &record.source else { return Ok(self.version(v)) };
        let path = source_path(src).map_err(err)?;
        let state = r.state(&path).await.map_err(err)?;
        Ok(Registry::resolve_in(&path, &state, &Selector::Version(src.version))
            .ok()
            .map(|r| Artifact::committed(&r)))
    }
}

/// W&B's `ArtifactPortfolio`: a collection of links. The same fields as a sequence.
#[derive(Clone, Debug)]
pub struct ArtifactPortfolio(pub ArtifactSequence);

#[Object]
impl ArtifactPortfolio {
    pub(super) async fn id(&self, ctx: &Context<'_>) -> async_graphql::Result<async_graphql::ID> {
        self.0.id(ctx).await
    }
    pub(super) async fn name(&self) -> &str {
        &self.0.path.name
    }
    pub(super) async fn description(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<String>> {
        self.0.description(ctx).await
    }
    pub(super) async fn created_at(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        self.0.created_at(ctx).await
    }
    pub(super) async fn updated_at(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<String>> {
        self.0.updated_at(ctx).await
    }
    pub(super) async fn state(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<ArtifactCollectionState> {
        self.0.state(ctx).await
    }
    pub(super) async fn project(&self, ctx: &Context<'_>) -> Option<Project> {
        self.0.visible_project(ctx)
    }
    pub(super) async fn default_artifact_type(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<ArtifactType> {
        self.0.default_artifact_type(ctx).await
    }
    pub(super) async fn tags(&self, ctx: &Context<'_>) -> async_graphql::Result<TagConnection> {
        self.0.tags(ctx).await
    }
    pub(super) async fn latest_artifact(&self, ctx: &Context<'_>) -> Res<Option<Artifact>> {
        self.0.latest_artifact(ctx).await?
    }
    pub(super) async fn aliases(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
    ) -> async_graphql::Result<ArtifactAliasConnection> {
        self.0.aliases(ctx, after, first).await
    }
    pub(super) async fn artifacts(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
        order: Option<String>,
        filters: Option<JsonString>,
    ) -> Res<VersionedArtifactConnection> {
        self.0.artifacts(ctx, after, first, order, filters).await?
    }
    pub(super) async fn artifact_membership(
        &self,
        ctx: &Context<'_>,
        alias_name: Option<String>,
    ) -> Res<Option<Membership>> {
        self.0.artifact_membership(ctx, alias_name).await?
    }
}

#[derive(InputObject, Debug)]
pub struct LinkArtifactInput {
    #[graphql(name = "artifactID")]
    pub artifact_id: Option<String>,
    #[graphql(name = "artifactPortfolioID")]
    pub artifact_portfolio_id: Option<String>,
    pub artifact_portfolio_name: Option<String>,
    pub entity_name: Option<String>,
    pub project_name: Option<String>,
    pub aliases: Option<Vec<ArtifactAliasInput>>,
    #[graphql(name = "clientID")]
    pub client_id: Option<String>,
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct LinkArtifactPayload {
    pub version_index: Option<i32>,
    pub artifact_membership: Option<Membership>,
}

#[derive(InputObject, Debug)]
pub struct UnlinkArtifactInput {
    #[graphql(name = "artifactID")]
    pub artifact_id: String,
    #[graphql(name = "artifactPortfolioID")]
    pub artifact_portfolio_id: String,
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ArtifactMembershipEdge {
    pub node: Membership,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ArtifactMembershipConnection {
    pub edges: Vec<ArtifactMembershipEdge>,
}

/// The committed version an artifact id (or a client id) names, if the caller may read it.
async fn linkable(ctx: &Context<'_>, id: Option<&str>, client_id: Option<&str>) -> Res<Artifact> {
    let by_client = match (id, client_id) {
        (None, Some(cid)) => reg(ctx).draft_by_client_id(cid).await.map_err(err)?,
        _ => None,
    };
    let id = match (&by_client, id) {
        (Some(d), _) => ids::draft_id(&d.id),
        (None, Some(id)) => id.to_owned(),
        (None, None) => return Err(invalid("linkArtifact: artifactID is required")),
    };
    artifact_by_id(reg(ctx), access(ctx), &id)
        .await
        .map_err(err)?
        .filter(|a| a.version.is_some())
        .ok_or_else(|| not_found(format!("artifact {id} not found, or it is not committed yet")))
}

/// `linkArtifact`: links a version into `entity/project/portfolio`.
pub(super) async fn link_artifact(
    ctx: &Context<'_>,
    input: LinkArtifactInput,
) -> Res<LinkArtifactPayload> {
    let a = linkable(ctx, input.artifact_id.as_deref(), input.client_id.as_deref()).await?;
    let portfolio = match (&input.artifact_portfolio_id, &input.artifact_portfolio_name) {
        (Some(id), _) => match ids::decode(id) {
            Some(NodeId::Collection(c)) => c,
            _ => return Err(not_found(format!("artifact portfolio {id} not found"))),
        },
        (None, Some(name)) => {
            let entity = input.entity_name.clone().unwrap_or_else(|| a.collection.entity.clone());
            let project =
                input.project_name.clone().unwrap_or_else(|| a.collection.project.clone());
            CollectionPath::new(&entity, &project, name).map_err(|e| invalid(e.to_string()))?
        }
        (None, None) => return Err(invalid("linkArtifact: artifactPortfolioName is required")),
    };
    must_write(ctx, &portfolio.entity)?;
    let aliases: Vec<String> =
        input.aliases.unwrap_or_default().into_iter().map(|a| a.alias).collect();
    let r = reg(ctx);
    let link =
        r.link(&a.collection, a.version.unwrap_or(0), &portfolio, &aliases).await.map_err(err)?;
    let seq = ArtifactSequence::new(portfolio.clone(), r.state(&portfolio).await.map_err(err)?);
    let membership = seq.membership(r, &format!("v{}", link.version)).await?;
    Ok(LinkArtifactPayload {
        version_index: Some(link.version as i32),
        artifact_membership: membership,
    })
}

/// `unlinkArtifact`: removes a version's link from one portfolio; the version stays.
pub(super) async fn unlink_artifact(
    ctx: &Context<'_>,
    input: UnlinkArtifactInput,
) -> Res<SuccessPayload> {
    let a = linkable(ctx, Some(&input.artifact_id), None).await?;
    let Some(NodeId::Collection(portfolio)) = ids::decode(&input.artifact_portfolio_id) else {
        return Err(not_found(format!(
            "artifact portfolio {} not found",
            input.artifact_portfolio_id
        )));
    };
    if !access(ctx).can_read(&portfolio.entity) {
        return Err(not_found(format!(
            "artifact portfolio {} not found",
            input.artifact_portfolio_id
        )));
    }
    must_write(ctx, &portfolio.entity)?;
    let removed =
        reg(ctx).unlink(&a.collection, a.version.unwrap_or(0), &portfolio).await.map_err(err)?;
    if !removed {
        return Err(not_found(format!(
            "{}:v{} is not linked into {portfolio}",
            a.collection,
            a.version.unwrap_or(0)
        )));
    }
    Ok(SuccessPayload { success: true })
}

/// An artifact's aliases in its own collection, then in every portfolio that links it.
pub(super) async fn all_aliases(ctx: &Context<'_>, a: &Artifact) -> Res<Vec<ArtifactAlias>> {
    let mut out = a.alias_objects();
    let Some(version) = a.version else { return Ok(out) };
    for l in reg(ctx).links_of(&a.collection, version).await.map_err(err)? {
        if access(ctx).can_read(&l.portfolio.entity) {
            let collection = l.portfolio;
            out.extend(
                l.aliases
                    .into_iter()
                    .map(|alias| ArtifactAlias { alias, collection: collection.clone() }),
            );
        }
    }
    Ok(out)
}

/// An artifact's memberships: its own collection's, then every portfolio the caller may read
/// that links it.
pub(super) async fn memberships(
    ctx: &Context<'_>,
    a: &Artifact,
) -> Res<ArtifactMembershipConnection> {
    let Some(version) = a.version else {
        return Ok(ArtifactMembershipConnection { edges: Vec::new() });
    };
    let r = reg(ctx);
    let own =
        ArtifactSequence::new(a.collection.clone(), r.state(&a.collection).await.map_err(err)?);
    let mut edges =
        vec![ArtifactMembershipEdge { node: Membership::new(&own, version, a.clone()) }];
    let links: Vec<Link> = r.links_of(&a.collection, version).await.map_err(err)?;
    for l in links.into_iter().filter(|l| access(ctx).can_read(&l.portfolio.entity)) {
        let state = r.state(&l.portfolio).await.map_err(err)?;
        let seq = ArtifactSequence::new(l.portfolio, state);
        edges.push(ArtifactMembershipEdge { node: Membership::new(&seq, l.version, a.clone()) });
    }
    Ok(ArtifactMembershipConnection { edges })
}
