//! The W&B Registry as the SDK reads it: a registry is the project `wandb-registry-<name>` of an
//! org entity, listed and searched with `api.registries()`, whose collections and versions are the
//! usual collection logs of that project. Who sees, edits and logs into one is decided here
//! (`registry_role`, `must_write_registry`); its members are listed here too.

use super::filters::{matches, parse_filter};
use super::orgs::{directory, forbidden, numbered_id};
use super::*;
use crate::registry::directory::{
    Directory, Member, REGISTRY_PREFIX, RegistryRecord, Role, Visibility,
};

/// Whether `project` of `entity` is a registry the directory holds.
pub(super) fn registry_record(
    d: &Directory,
    entity: &str,
    project: &str,
) -> Option<RegistryRecord> {
    d.registries.get(&(entity.to_owned(), project.to_owned())).cloned()
}

/// The caller's role in a registry; `None` when it may not see it.
pub(super) fn registry_role(
    d: &Directory,
    a: &Access,
    entity: &str,
    project: &str,
) -> Option<Role> {
    let r = registry_record(d, entity, project)?;
    if !a.can_read(entity) {
        return None;
    }
    if a.can_manage(entity) {
        return Some(Role::Admin);
    }
    let mut role = r.members.get(&Member::User(a.user.clone())).copied();
    for team in d.teams_of(&a.user) {
        if let Some(t) = r.members.get(&Member::Team(team.to_owned())) {
            role = role.max(Some(*t));
        }
    }
    match r.visibility {
        Visibility::Organization => role.or(Some(Role::Viewer)),
        Visibility::Restricted => role,
    }
}

/// Registry-only fields of `Project`; `None` for a project that is not a registry.
pub(super) fn registry_of(ctx: &Context<'_>, p: &Project) -> Option<RegistryRecord> {
    registry_record(&directory(ctx), &p.entity, &p.name)
}

/// `Project.internalId`: the project's number; a registry's as the registry code reads it, a
/// global id `base64("ProjectInternalId:<n>")` (by which it filters a registry's collections).
pub(super) fn internal_id(ctx: &Context<'_>, p: &Project) -> String {
    let n = ids::project_number(&p.entity, &p.name);
    if p.name.starts_with(REGISTRY_PREFIX) && registry_of(ctx, p).is_some() {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("ProjectInternalId:{n}"))
    } else {
        n.to_string()
    }
}

/// W&B's project `access` of a registry: `PRIVATE` (organization) or `RESTRICTED`.
pub(super) fn access_of(r: &RegistryRecord) -> &'static str {
    match r.visibility {
        Visibility::Organization => "PRIVATE",
        Visibility::Restricted => "RESTRICTED",
    }
}

/// `artifactTypes(includeAll: true)` of a registry: its allowed types, then those in use.
pub(super) fn registry_types(r: &RegistryRecord, in_use: Vec<String>) -> Vec<String> {
    let mut out = r.types.clone();
    for t in in_use {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// What writing a version of type `ty` into `project` of `entity` needs beyond writing the
/// entity, when the project is a registry: that it exists, a member role in it (or more), and
/// that it allows the type.
pub(super) fn must_write_registry(
    ctx: &Context<'_>,
    entity: &str,
    project: &str,
    ty: &str,
) -> Res<()> {
    if !project.starts_with(REGISTRY_PREFIX) {
        return Ok(());
    }
    let d = directory(ctx);
    let Some(r) = registry_record(&d, entity, project) else {
        return Err(not_found(format!("there is no registry {entity}/{project}; create it first")));
    };
    match registry_role(&d, access(ctx), entity, project) {
        Some(role) if role.can_write() => {}
        Some(_) => {
            return Err(forbidden(format!(
                "permission denied: a viewer of registry {entity}/{project} may not write to it"
            )));
        }
        None => return Err(not_found(format!("there is no registry {entity}/{project}"))),
    }
    if !r.allow_all_types && !r.types.iter().any(|t| t == ty) {
        return Err(invalid(format!(
            "registry {entity}/{project} accepts artifacts of type {}, not {ty:?}",
            r.types.join(", ")
        )));
    }
    Ok(())
}

/// `entity.project(name)`: `null` for a registry that does not exist or the caller may not see.
pub(super) fn entity_project(ctx: &Context<'_>, entity: &str, name: &str) -> Option<Project> {
    let a = access(ctx);
    if !a.can_read(entity) || crate::names::validate_scope("project", name).is_err() {
        return None;
    }
    if name.starts_with(REGISTRY_PREFIX)
        && registry_role(&directory(ctx), a, entity, name).is_none()
    {
        return None;
    }
    Some(Project { entity: entity.to_owned(), name: name.to_owned() })
}

/// The registries of an org entity the caller may see, matching `filters` (W&B's registry
/// filter: `name`, `description`, `id`), by name.
fn registries(ctx: &Context<'_>, entity: &str, filters: Option<&str>) -> Res<Vec<Project>> {
    let d = directory(ctx);
    let a = access(ctx);
    let filter = parse_filter(filters)?;
    Ok(d.registries
        .iter()
        .filter(|((e, p), _)| e == entity && registry_role(&d, a, e, p).is_some())
        .filter(|((e, p), r)| {
            let fields = serde_json::json!({
                "name": p,
                "description": r.description,
                "id": ids::project_number(e, p),
                "project_id": ids::project_number(e, p),
                "created_at": time(r.created_at),
                "updated_at": time(r.updated_at),
            });
            matches(&filter, &fields)
        })
        .map(|((e, p), _)| Project { entity: e.clone(), name: p.clone() })
        .collect())
}

/// `entity.projects(filters, order)`: an org entity's registries (what `api.registries()`
/// lists), by name unless ordered by `name`, `created_at` or `updated_at` (`-` descending).
pub(super) fn entity_projects(
    ctx: &Context<'_>,
    entity: &str,
    filters: Option<String>,
    (after, first): (Option<String>, Option<i32>),
    order: Option<String>,
) -> Res<ProjectConnection> {
    let mut all = registries(ctx, entity, filters.as_deref())?;
    if let Some(order) = order.as_deref().filter(|o| !o.is_empty()) {
        let (descending, key) = match order.strip_prefix('-') {
            Some(key) => (true, key),
            None => (false, order.trim_start_matches('+')),
        };
        let d = directory(ctx);
        let at = |p: &Project, updated: bool| {
            registry_record(&d, &p.entity, &p.name)
                .map(|r| if updated { r.updated_at } else { r.created_at })
        };
        match key {
            "name" => all.sort_by(|a, b| a.name.cmp(&b.name)),
            "created_at" | "createdAt" => all.sort_by_key(|p| at(p, false)),
            "updated_at" | "updatedAt" => all.sort_by_key(|p| at(p, true)),
            other => {
                return Err(invalid(format!(
                    "registries cannot be ordered by {other:?}; use name, created_at or updated_at, with - for descending"
                )));
            }
        }
        if descending {
            all.reverse();
        }
    }
    let (items, page_info) = page(&all, after.as_deref(), first);
    Ok(ProjectConnection {
        page_info,
        edges: items.into_iter().map(|node| ProjectEdge { node }).collect(),
    })
}

/// W&B's kinds of collection; artfs lists its collections whatever is asked.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArtifactCollectionType {
    #[graphql(name = "SEQUENCE")]
    Sequence,
    #[graphql(name = "PORTFOLIO")]
    Portfolio,
}

/// The collections of the registries matching `project_filters`, matching `filters`.
async fn registry_collections(
    ctx: &Context<'_>,
    entity: &str,
    project_filters: Option<&str>,
    filters: Option<&str>,
) -> Res<Vec<ArtifactSequence>> {
    let filter = parse_filter(filters)?;
    let mut out = Vec::new();
    for project in registries(ctx, entity, project_filters)? {
        for c in project.all_collections(ctx, false).await? {
            let fields = serde_json::json!({
                "name": c.path.name,
                "id": ids::collection_id(&c.path),
                "artifact_collection_id": ids::collection_id(&c.path),
                "created_at": time(c.created()),
                "type": c.state.artifact_type,
            });
            if matches(&filter, &fields) {
                out.push(c);
            }
        }
    }
    Ok(out)
}

/// `entity.artifactCollections`: the collections of an org's registries, in registry order
/// unless `order` (`name`, `created_at`, `updated_at`, `-` descending) says otherwise.
pub(super) async fn entity_collections(
    ctx: &Context<'_>,
    entity: &str,
    (project_filters, filters, order): (Option<String>, Option<String>, Option<String>),
    after: Option<String>,
    first: Option<i32>,
) -> Res<ArtifactCollectionConnection> {
    let all =
        registry_collections(ctx, entity, project_filters.as_deref(), filters.as_deref()).await?;
    let all = filter_collections(all, None, order.as_deref().filter(|o| !o.is_empty()))?;
    Ok(ArtifactCollectionConnection::of(&all, after.as_deref(), first))
}

#[derive(SimpleObject, Clone, Debug)]
pub struct MembershipEdge {
    pub node: Membership,
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "ArtifactCollectionMembershipConnection")]
pub struct MembershipConnection {
    pub page_info: PageInfo,
    pub edges: Vec<MembershipEdge>,
}

/// `entity.artifactMemberships`: the versions in an org's registries (`registry.versions()`),
/// filtered by registry, collection and version (`alias`, `version`, `metadata.<key>`), in
/// registry, collection and version order. An `order` is refused: the SDK sends one only to
/// servers that advertise W&B's advanced registry search, which artfs does not.
pub(super) async fn entity_memberships(
    ctx: &Context<'_>,
    entity: &str,
    (project_filters, collection_filters, filters): (
        Option<String>,
        Option<String>,
        Option<String>,
    ),
    order: Option<String>,
    after: Option<String>,
    first: Option<i32>,
) -> Res<MembershipConnection> {
    if let Some(order) = order.filter(|o| !o.is_empty()) {
        return Err(invalid(format!(
            "artifactMemberships: order {order:?} is not supported (advanced registry search)"
        )));
    }
    let filter = parse_filter(filters.as_deref())?;
    let mut all = Vec::new();
    let collections = registry_collections(
        ctx,
        entity,
        project_filters.as_deref(),
        collection_filters.as_deref(),
    )
    .await?;
    for c in collections {
        for (v, record) in &c.state.versions {
            let aliases: Vec<&String> =
                c.state.aliases.iter().filter(|(_, to)| **to == *v).map(|(a, _)| a).collect();
            let fields = serde_json::json!({
                "version": format!("v{v}"),
                "alias": aliases,
                "metadata": record.metadata,
                "created_at": time(record.created_at),
                "id": ids::version_id(&c.path, *v),
            });
            if matches(&filter, &fields)
                && let Some(m) = c.membership(reg(ctx), &format!("v{v}")).await?
            {
                all.push(m);
            }
        }
    }
    let (items, page_info) = page(&all, after.as_deref(), first);
    Ok(MembershipConnection {
        page_info,
        edges: items.into_iter().map(|node| MembershipEdge { node }).collect(),
    })
}

// ---- registry members

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Role")]
pub struct RoleObject {
    pub name: String,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ProjectMember {
    pub id: async_graphql::ID,
    pub name: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    pub role: RoleObject,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ProjectTeamMember {
    pub team: Entity,
    pub role: RoleObject,
}

pub(super) fn project_members(ctx: &Context<'_>, p: &Project) -> Vec<ProjectMember> {
    let d = directory(ctx);
    let Some(r) = registry_record(&d, &p.entity, &p.name) else { return Vec::new() };
    r.members
        .iter()
        .filter_map(|(m, role)| match m {
            Member::User(u) => Some(ProjectMember {
                id: numbered_id("User", u).into(),
                name: Some(u.clone()),
                username: Some(u.clone()),
                email: d.users.get(u).and_then(|x| x.email.clone()),
                role: RoleObject { name: role.as_str().to_owned() },
            }),
            Member::Team(_) => None,
        })
        .collect()
}

pub(super) fn project_team_members(ctx: &Context<'_>, p: &Project) -> Vec<ProjectTeamMember> {
    let d = directory(ctx);
    let Some(r) = registry_record(&d, &p.entity, &p.name) else { return Vec::new() };
    r.members
        .iter()
        .filter_map(|(m, role)| match m {
            Member::Team(t) => Some(ProjectTeamMember {
                team: Entity { name: t.clone() },
                role: RoleObject { name: role.as_str().to_owned() },
            }),
            Member::User(_) => None,
        })
        .collect()
}
