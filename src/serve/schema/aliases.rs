//! `addAliases`/`deleteAliases`: each alias names the collection it is set in, which the SDK
//! takes from the path the artifact was fetched by. So an alias added to a version fetched
//! through a portfolio lands on the link there, not on the source version, and writing the
//! portfolio is what it needs: W&B lets a registry member alias a linked version whose source
//! it may not even read.

use super::*;
use std::collections::BTreeMap;

use crate::registry::log::LinkSource;

/// Adds (`add`) or removes the aliases of `artifact_id`, each in its own collection.
pub(super) async fn change_aliases(
    ctx: &Context<'_>,
    artifact_id: &str,
    aliases: Vec<ArtifactAliasInput>,
    add: bool,
) -> Res<SuccessPayload> {
    let Some(ids::NodeId::Version(fetched, version)) = ids::decode(artifact_id) else {
        // A pending version has no links yet: its own collection is the only place.
        let a = version_for_write(ctx, artifact_id).await?;
        let names: Vec<String> = aliases.into_iter().map(|a| a.alias).collect();
        set(ctx, &a.collection, a.version.unwrap_or(0), &names, add).await?;
        return Ok(SuccessPayload { success: true });
    };
    let r = reg(ctx);
    let missing = || not_found(format!("artifact {artifact_id} not found"));
    let (fetched, state) = r.follow(&fetched).await.map_err(err)?;
    let record = state.versions.get(&version).ok_or_else(missing)?;
    let source = record.source.clone().unwrap_or_else(|| LinkSource {
        entity: fetched.entity.clone(),
        project: fetched.project.clone(),
        name: fetched.name.clone(),
        version,
    });
    let mut by_target: BTreeMap<CollectionPath, Vec<String>> = BTreeMap::new();
    for a in aliases {
        let target = CollectionPath::new(
            a.entity_name.as_deref().unwrap_or(&fetched.entity),
            a.project_name.as_deref().unwrap_or(&fetched.project),
            a.artifact_collection_name.as_deref().unwrap_or(&fetched.name),
        )
        .map_err(|e| invalid(e.to_string()))?;
        by_target.entry(target).or_default().push(a.alias);
    }
    for (target, names) in by_target {
        let (target, state) = r.follow(&target).await.map_err(err)?;
        let here = if target == fetched {
            Some(version)
        } else if is_source(&target, &source) {
            Some(source.version)
        } else {
            state.link_to(&source).map(|v| v.version)
        };
        let Some(here) = here else {
            return Err(not_found(format!("artifact {artifact_id} is not a member of {target}")));
        };
        must_write_collection(ctx, &target, state.artifact_type.as_deref().unwrap_or_default())?;
        set(ctx, &target, here, &names, add).await?;
    }
    Ok(SuccessPayload { success: true })
}

fn is_source(c: &CollectionPath, s: &LinkSource) -> bool {
    c.entity == s.entity && c.project == s.project && c.name == s.name
}

/// Writing a registry's collection needs a writing role in the registry (an org viewer may
/// hold one); any other collection needs its entity written.
fn must_write_collection(ctx: &Context<'_>, c: &CollectionPath, ty: &str) -> Res<()> {
    if !c.project.starts_with(crate::registry::directory::REGISTRY_PREFIX) {
        return must_write(ctx, &c.entity);
    }
    let a = access(ctx);
    if a.read_only {
        return Err(err(ServeError::Forbidden(format!(
            "permission denied: this API key of {} is read-only",
            a.user
        ))));
    }
    registries::must_write_registry(ctx, &c.entity, &c.project, ty)
}

async fn set(
    ctx: &Context<'_>,
    c: &CollectionPath,
    v: u32,
    names: &[String],
    add: bool,
) -> Res<()> {
    let (add, remove): (&[String], &[String]) = if add { (names, &[]) } else { (&[], names) };
    reg(ctx).set_aliases(c, v, add, remove).await.map_err(err)?;
    Ok(())
}
