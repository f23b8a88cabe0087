//! The mutations that create, edit and delete registries and change their members:
//! `api.create_registry()`, `Registry.save()`/`delete()`, `add_members`/`remove_members`/
//! `update_member`, and renames.

use super::orgs::{change, directory, forbidden, name_of_id};
use super::registries::{registry_record, registry_role};
use super::*;
use crate::registry::directory::{DirOp, Directory, Member, REGISTRY_PREFIX, Role, Visibility};

#[derive(InputObject, Debug)]
pub struct ArtifactTypeInput {
    pub name: String,
}

/// `upsertModel`'s input; only what a registry keeps is used.
#[derive(InputObject, Debug)]
pub struct UpsertModelInput {
    pub name: Option<String>,
    pub entity_name: Option<String>,
    pub description: Option<String>,
    pub access: Option<String>,
    pub allow_all_artifact_types_in_registry: Option<bool>,
    pub artifact_types: Option<Vec<ArtifactTypeInput>>,
    pub id: Option<String>,
    pub client_mutation_id: Option<String>,
    pub framework: Option<String>,
    pub docker_image: Option<String>,
    pub views: Option<String>,
    pub repo: Option<String>,
    pub is_benchmark: Option<bool>,
    pub is_published: Option<bool>,
    pub owner: Option<async_graphql::ID>,
}

#[derive(SimpleObject, Debug)]
pub struct UpsertModelPayload {
    pub inserted: Option<bool>,
    pub project: Option<Project>,
}

/// The registry an id names, and the caller's role in it.
fn registry_by_id(ctx: &Context<'_>, id: &str) -> Res<(String, String, Role)> {
    let Some(ids::NodeId::Project(e, p)) = ids::decode(id) else {
        return Err(not_found(format!("no registry has the id {id:?}")));
    };
    match registry_role(&directory(ctx), access(ctx), &e, &p) {
        Some(role) => Ok((e, p, role)),
        None => Err(not_found(format!("there is no registry {e}/{p}"))),
    }
}

fn must_administer(e: &str, p: &str, role: Role) -> Res<()> {
    if role == Role::Admin {
        Ok(())
    } else {
        Err(forbidden(format!("permission denied: only admins of registry {e}/{p} may change it")))
    }
}

/// `upsertModel`: creates a registry (`wandb-registry-*` of an org entity) or edits one. Other
/// projects are created by writing into them, so only registries are accepted here.
pub(super) async fn upsert_model(
    ctx: &Context<'_>,
    input: UpsertModelInput,
) -> Res<UpsertModelPayload> {
    let a = access(ctx);
    let entity = input.entity_name.unwrap_or_else(|| a.default_entity().to_owned());
    let Some(project) = input.name else {
        return Err(invalid("upsertModel: a name is required"));
    };
    if !project.starts_with(REGISTRY_PREFIX) {
        return Err(invalid(format!(
            "upsertModel: artfs creates only registries ({REGISTRY_PREFIX}<name>); projects appear when something is logged to them"
        )));
    }
    let d = directory(ctx);
    if d.org_of_entity(&entity).is_none() {
        return Err(not_found(format!("{entity:?} is not an organization's entity")));
    }
    let exists = registry_record(&d, &entity, &project).is_some();
    if exists {
        match registry_role(&d, a, &entity, &project) {
            Some(role) => must_administer(&entity, &project, role)?,
            None => return Err(not_found(format!("there is no registry {entity}/{project}"))),
        }
    } else {
        must_write(ctx, &entity)?;
    }
    let visibility = match input.access.as_deref() {
        None => None,
        Some("PRIVATE") | Some("organization") => Some(Visibility::Organization),
        Some("RESTRICTED") | Some("restricted") => Some(Visibility::Restricted),
        Some(other) => {
            return Err(invalid(format!(
                "upsertModel: unknown access {other:?}; use PRIVATE (organization) or RESTRICTED"
            )));
        }
    };
    let op = DirOp::UpsertRegistry {
        entity: entity.clone(),
        project: project.clone(),
        by: a.user.clone(),
        description: input.description,
        visibility,
        allow_all_types: input.allow_all_artifact_types_in_registry,
        add_types: input.artifact_types.unwrap_or_default().into_iter().map(|t| t.name).collect(),
    };
    change(ctx, op).await?;
    Ok(UpsertModelPayload {
        inserted: Some(!exists),
        project: Some(Project { entity, name: project }),
    })
}

#[derive(InputObject, Debug)]
pub struct DeleteModelInput {
    pub id: String,
    pub client_mutation_id: Option<String>,
}

/// `deleteModel`: deletes a registry's settings and members. Its collections stay in the
/// registry's storage (as a deleted W&B project's do until W&B purges them), unlisted.
pub(super) async fn delete_model(
    ctx: &Context<'_>,
    input: DeleteModelInput,
) -> Res<SuccessPayload> {
    let (entity, project, role) = registry_by_id(ctx, &input.id)?;
    must_administer(&entity, &project, role)?;
    change(ctx, DirOp::DeleteRegistry { entity, project }).await?;
    Ok(SuccessPayload { success: true })
}

/// Who to add to a registry, or remove from it.
#[derive(InputObject, Debug)]
pub struct CreateProjectMembersInput {
    pub project_id: String,
    pub user_ids: Option<Vec<String>>,
    pub team_ids: Option<Vec<String>>,
}

#[derive(InputObject, Debug)]
pub struct DeleteProjectMembersInput {
    pub project_id: String,
    pub user_ids: Option<Vec<String>>,
    pub team_ids: Option<Vec<String>>,
}

/// The members named by user and team ids.
fn members_of(d: &Directory, users: &[String], teams: &[String]) -> Res<Vec<Member>> {
    let mut out = Vec::new();
    for id in users {
        let u = name_of_id("User", id, d.users.keys())
            .ok_or_else(|| not_found(format!("no user has the id {id:?}")))?;
        out.push(Member::User(u));
    }
    for id in teams {
        let t = name_of_id("Entity", id, d.teams.keys())
            .ok_or_else(|| not_found(format!("no team has the id {id:?}")))?;
        out.push(Member::Team(t));
    }
    Ok(out)
}

/// `createProjectMembers` (`add: true`, as members) and `deleteProjectMembers`.
pub(super) async fn project_members_change(
    ctx: &Context<'_>,
    project_id: &str,
    (users, teams): (Option<Vec<String>>, Option<Vec<String>>),
    add: bool,
) -> Res<SuccessPayload> {
    let (entity, project, role) = registry_by_id(ctx, project_id)?;
    must_administer(&entity, &project, role)?;
    let (users, teams) = (users.unwrap_or_default(), teams.unwrap_or_default());
    for member in members_of(&directory(ctx), &users, &teams)? {
        let (entity, project) = (entity.clone(), project.clone());
        let present = registry_record(&directory(ctx), &entity, &project)
            .is_some_and(|r| r.members.contains_key(&member));
        let op = match (add, present) {
            (true, true) | (false, false) => continue,
            (true, false) => {
                DirOp::SetRegistryMember { entity, project, member, role: Role::Member }
            }
            (false, true) => DirOp::RemoveRegistryMember { entity, project, member },
        };
        change(ctx, op).await?;
    }
    Ok(SuccessPayload { success: true })
}

#[derive(InputObject, Debug)]
pub struct UpdateProjectMemberInput {
    pub project_id: String,
    pub user_id: String,
    pub user_project_role: String,
    pub client_mutation_id: Option<String>,
}

#[derive(InputObject, Debug)]
pub struct UpdateProjectTeamMemberInput {
    pub project_id: String,
    pub team_id: String,
    pub team_project_role: String,
    pub client_mutation_id: Option<String>,
}

/// `updateProjectMember` / `updateProjectTeamMember`: a member's role in a registry.
pub(super) async fn set_member_role(
    ctx: &Context<'_>,
    project_id: &str,
    member_id: &str,
    team: bool,
    role: &str,
) -> Res<SuccessPayload> {
    let (entity, project, caller) = registry_by_id(ctx, project_id)?;
    must_administer(&entity, &project, caller)?;
    let role: Role = role.parse().map_err(invalid)?;
    let d = directory(ctx);
    let member = if team {
        name_of_id("Entity", member_id, d.teams.keys()).map(Member::Team)
    } else {
        name_of_id("User", member_id, d.users.keys()).map(Member::User)
    }
    .ok_or_else(|| not_found(format!("no member has the id {member_id:?}")))?;
    change(ctx, DirOp::SetRegistryMember { entity, project, member, role }).await?;
    Ok(SuccessPayload { success: true })
}

#[derive(InputObject, Debug)]
pub struct RenameProjectInput {
    pub entity_name: String,
    pub old_project_name: String,
    pub new_project_name: String,
    pub client_mutation_id: Option<String>,
}

/// `renameProject`, for registries only (`Registry.save()` after a name change), and only while
/// the registry holds no collection: collections are stored under their project's name, and
/// moving their logs would not be one create-only step.
pub(super) async fn rename_project(
    ctx: &Context<'_>,
    input: RenameProjectInput,
) -> Res<UpsertModelPayload> {
    let (entity, from, to) = (input.entity_name, input.old_project_name, input.new_project_name);
    let Some(role) = registry_role(&directory(ctx), access(ctx), &entity, &from) else {
        return Err(not_found(format!("there is no registry {entity}/{from}")));
    };
    must_administer(&entity, &from, role)?;
    if !to.starts_with(REGISTRY_PREFIX) {
        return Err(invalid(format!("renameProject: {to:?} lacks the {REGISTRY_PREFIX} prefix")));
    }
    if !reg(ctx).collections(&entity, &from).await.map_err(err)?.is_empty() {
        return Err(invalid(format!(
            "renameProject: registry {entity}/{from} holds collections, which artfs cannot move; create a new registry instead"
        )));
    }
    change(ctx, DirOp::RenameRegistry { entity: entity.clone(), from, to: to.clone() }).await?;
    Ok(UpsertModelPayload { inserted: Some(false), project: Some(Project { entity, name: to }) })
}
