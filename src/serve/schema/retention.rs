//! Tags, TTL and collection edits (`registry::retention`) in W&B's schema: the tag objects, the
//! `order`/`filters` of listings, and the bodies of the collection and tag mutations.

use super::*;
use crate::registry::{CollectionEdit, Ttl};

/// W&B's `ttlDurationSeconds` for "no TTL".
pub const WANDB_NO_TTL: i64 = -2;

impl Tag {
    pub fn named(name: &str) -> Tag {
        Tag { id: ids::other_id("Tag", name).into(), name: name.to_owned() }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ArtifactCollectionState {
    #[graphql(name = "READY")]
    Ready,
    #[graphql(name = "DELETED")]
    Deleted,
}

/// The TTL in force for a version, as W&B reports it: its own, the collection's default it
/// inherits, or -2 for none.
pub fn ttl_in_force(r: &ResolvedVersion) -> i64 {
    r.record
        .ttl
        .in_force(r.default_ttl_seconds)
        .map_or(WANDB_NO_TTL, |s| i64::try_from(s).unwrap_or(i64::MAX))
}

/// A listing's `order`: `[+|-]field`, ascending without a sign (what the SDK normalises to).
fn parse_order(order: &str) -> (bool, &str) {
    match order.strip_prefix('-') {
        Some(f) => (true, f),
        None => (false, order.strip_prefix('+').unwrap_or(order)),
    }
}

/// Sorts a listing's versions by `order` (`versionIndex`, `createdAt`, `updatedAt`, snake or
/// camel case). The index is the edge's own `vN` (a portfolio's, for a link).
pub fn sort_versions(all: &mut [VersionedArtifactEdge], order: &str) -> Res<()> {
    let (desc, field) = parse_order(order);
    let index = |e: &VersionedArtifactEdge| parse_version(&e.version).unwrap_or(0);
    match field {
        "versionIndex" | "version_index" => all.sort_by_key(index),
        "createdAt" | "created_at" | "updatedAt" | "updated_at" => {
            all.sort_by(|a, b| (&a.node.created_at, index(a)).cmp(&(&b.node.created_at, index(b))))
        }
        other => {
            return Err(invalid(format!(
                "order {other:?} is not supported; use versionIndex, createdAt or updatedAt, with + or -"
            )));
        }
    }
    if desc {
        all.reverse();
    }
    Ok(())
}

/// Applies a collection listing's `filters` (by `name`, or by tag with `tag`/`tags`) and `order`
/// (`name`, `createdAt`, `updatedAt`).
pub fn filter_collections(
    mut all: Vec<ArtifactSequence>,
    filters: Option<&JsonString>,
    order: Option<&str>,
) -> Res<Vec<ArtifactSequence>> {
    if let Some(f) = filters {
        let f: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&f.0)
            .map_err(|e| invalid(format!("filters must be a JSON object: {e}")))?;
        for (key, want) in f {
            let names = |v: &serde_json::Value| -> Res<Vec<String>> {
                match v {
                    serde_json::Value::String(s) => Ok(vec![s.clone()]),
                    serde_json::Value::Object(o) if o.contains_key("$in") => {
                        serde_json::from_value(o["$in"].clone())
                            .map_err(|e| invalid(format!("filter {key}: $in takes strings: {e}")))
                    }
                    other => Err(invalid(format!(
                        "filter {key}: {other} is not supported (a string or {{\"$in\": [...]}})"
                    ))),
                }
            };
            let want = names(&want)?;
            match key.as_str() {
                "name" => all.retain(|c| want.contains(&c.path.name)),
                "tag" | "tags" => all.retain(|c| want.iter().any(|t| c.state.tags.contains(t))),
                other => {
                    return Err(invalid(format!(
                        "filter {other:?} is not supported; artfs filters collections by name and tag"
                    )));
                }
            }
        }
    }
    if let Some(order) = order {
        let (desc, field) = parse_order(order);
        match field {
            "name" => all.sort_by(|a, b| a.path.name.cmp(&b.path.name)),
            "createdAt" | "created_at" => all.sort_by_key(|c| c.created()),
            "updatedAt" | "updated_at" => all.sort_by_key(|c| c.state.updated_at),
            other => {
                return Err(invalid(format!(
                    "order {other:?} is not supported; use name, createdAt or updatedAt, with + or -"
                )));
            }
        }
        if desc {
            all.reverse();
        }
    }
    Ok(all)
}

/// The tag names of W&B's `TagInput`s, each validated as the SDK does.
pub fn tag_names(tags: Option<Vec<TagInput>>) -> Res<Vec<String>> {
    let mut out = Vec::new();
    for t in tags.unwrap_or_default() {
        let name = t.tag_name.unwrap_or_default();
        crate::registry::validate_tag(&name).map_err(invalid)?;
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

/// W&B's `ttlDurationSeconds` of a mutation: absent means unchanged.
pub fn ttl_input(seconds: Option<i64>) -> Option<Ttl> {
    seconds.map(Ttl::from_wandb)
}

/// Applies the tags and TTL a mutation asked for to a committed version.
pub async fn retag(
    ctx: &Context<'_>,
    a: &Artifact,
    add: &[String],
    remove: &[String],
    ttl: Option<Ttl>,
) -> Res<()> {
    let Some(version) = a.version else { return Ok(()) };
    let r = reg(ctx);
    if !add.is_empty() || !remove.is_empty() {
        r.set_tags(&a.collection, version, add, remove).await.map_err(err)?;
    }
    if let Some(ttl) = ttl {
        r.set_ttl(&a.collection, version, ttl).await.map_err(err)?;
    }
    Ok(())
}

#[derive(InputObject, Debug)]
pub struct UpdateArtifactSequenceInput {
    #[graphql(name = "artifactSequenceID")]
    pub artifact_sequence_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub client_mutation_id: Option<String>,
}

#[derive(InputObject, Debug)]
pub struct MoveArtifactSequenceInput {
    #[graphql(name = "artifactSequenceID")]
    pub artifact_sequence_id: String,
    pub destination_artifact_type_name: String,
    pub client_mutation_id: Option<String>,
}

#[derive(InputObject, Debug)]
pub struct DeleteArtifactSequenceInput {
    #[graphql(name = "artifactSequenceID")]
    pub artifact_sequence_id: String,
    pub client_mutation_id: Option<String>,
}

#[derive(InputObject, Debug)]
pub struct DeleteArtifactPortfolioInput {
    #[graphql(name = "artifactPortfolioID")]
    pub artifact_portfolio_id: String,
    pub client_mutation_id: Option<String>,
}

/// W&B's `Create…` and `DeleteArtifactCollectionTagAssignmentsInput`: one shape, two names.
#[derive(InputObject, Debug)]
#[graphql(concrete(name = "CreateArtifactCollectionTagAssignmentsInput", params(Add)))]
#[graphql(concrete(name = "DeleteArtifactCollectionTagAssignmentsInput", params(Remove)))]
pub struct TagAssignmentsInput<K: TagChange> {
    pub entity_name: String,
    pub project_name: String,
    pub artifact_collection_name: String,
    pub tags: Vec<TagInput>,
    #[graphql(name = "clientMutationID")]
    pub client_mutation_id: Option<String>,
    #[graphql(skip)]
    pub change: std::marker::PhantomData<K>,
}

/// Whether a tag assignment adds or removes.
pub trait TagChange: Send + Sync + 'static {
    const ADD: bool;
}
#[derive(Debug)]
pub struct Add;
#[derive(Debug)]
pub struct Remove;
impl TagChange for Add {
    const ADD: bool = true;
}
impl TagChange for Remove {
    const ADD: bool = false;
}

#[derive(SimpleObject)]
pub struct ArtifactCollectionPayload {
    pub artifact_collection: ArtifactCollection,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct TagsPayload {
    pub tags: Vec<Tag>,
}

/// A collection the caller may write, by id (ids minted before a rename still name it).
async fn collection_for_write(
    ctx: &Context<'_>,
    id: &str,
) -> Res<(CollectionPath, CollectionState)> {
    let missing = || not_found(format!("artifact collection {id} not found"));
    let Some(NodeId::Collection(c)) = ids::decode(id) else { return Err(missing()) };
    if !access(ctx).can_read(&c.entity) {
        return Err(missing());
    }
    let (c, state) = reg(ctx).follow(&c).await.map_err(err)?;
    if !state.exists() {
        return Err(missing());
    }
    must_write(ctx, &c.entity)?;
    Ok((c, state))
}

fn payload(c: CollectionPath, state: CollectionState) -> ArtifactCollectionPayload {
    ArtifactCollectionPayload {
        artifact_collection: ArtifactCollection::ArtifactSequence(ArtifactSequence::new(c, state)),
    }
}

/// `updateArtifactSequence`: description, then the name.
pub async fn update_sequence(
    ctx: &Context<'_>,
    input: UpdateArtifactSequenceInput,
) -> Res<ArtifactCollectionPayload> {
    let (mut c, _) = collection_for_write(ctx, &input.artifact_sequence_id).await?;
    let r = reg(ctx);
    if input.description.is_some() {
        let edit = CollectionEdit { description: input.description, ..CollectionEdit::default() };
        r.edit_collection(&c, edit).await.map_err(err)?;
    }
    if let Some(name) = input.name.filter(|n| *n != c.name) {
        c = r.rename_collection(&c, &name).await.map_err(err)?;
    }
    let state = r.live_state(&c).await.map_err(err)?;
    Ok(payload(c, state))
}

/// `moveArtifactSequence`: the collection takes another type.
pub async fn move_sequence(
    ctx: &Context<'_>,
    input: MoveArtifactSequenceInput,
) -> Res<ArtifactCollectionPayload> {
    let (c, _) = collection_for_write(ctx, &input.artifact_sequence_id).await?;
    let edit = CollectionEdit {
        artifact_type: Some(input.destination_artifact_type_name),
        ..CollectionEdit::default()
    };
    let state = reg(ctx).edit_collection(&c, edit).await.map_err(err)?;
    Ok(payload(c, state))
}

/// `deleteArtifactSequence`: the collection and every version.
pub async fn delete_sequence(
    ctx: &Context<'_>,
    input: DeleteArtifactSequenceInput,
) -> Res<ArtifactCollectionPayload> {
    let (c, state) = collection_for_write(ctx, &input.artifact_sequence_id).await?;
    reg(ctx).delete_collection(&c).await.map_err(err)?;
    let mut p = payload(c, state);
    match &mut p.artifact_collection {
        ArtifactCollection::ArtifactSequence(s)
        | ArtifactCollection::ArtifactPortfolio(ArtifactPortfolio(s)) => s.deleted = true,
    }
    Ok(p)
}

/// `createArtifactCollectionTagAssignments` / `deleteArtifactCollectionTagAssignments`.
pub async fn collection_tags<K: TagChange>(
    ctx: &Context<'_>,
    input: TagAssignmentsInput<K>,
) -> Res<Vec<Tag>> {
    let add = K::ADD;
    let (e, p, n) = (&input.entity_name, &input.project_name, &input.artifact_collection_name);
    let missing = || not_found(format!("artifact collection {e}/{p}/{n} not found"));
    if !access(ctx).can_read(e) {
        return Err(missing());
    }
    must_write(ctx, e)?;
    let c = CollectionPath::new(e, p, n).map_err(err)?;
    let tags = tag_names(Some(input.tags))?;
    let edit = if add {
        CollectionEdit { add_tags: tags.clone(), ..CollectionEdit::default() }
    } else {
        CollectionEdit { remove_tags: tags.clone(), ..CollectionEdit::default() }
    };
    reg(ctx).edit_collection(&c, edit).await.map_err(err)?;
    Ok(tags.iter().map(|t| Tag::named(t)).collect())
}
