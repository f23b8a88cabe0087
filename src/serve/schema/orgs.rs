//! Users, organizations, teams and the W&B Registry, over the registry's directory
//! (`registry::directory`): `viewer`, `users`, `organization`, `updateUser`, the registry
//! fields of `Project` and `Entity`, and the mutations `api.create_registry()`,
//! `Registry.save()`/`delete()` and registry members send.
//!
//! A registry is the project `wandb-registry-<name>` of an org entity. Its collections are the
//! usual collection logs of that project, so whatever lands there is listed by
//! `registry.collections()`/`versions()`. Who sees a registry: its organization's members when
//! its visibility is `organization`, else only its members (users, or through a team) and the
//! organization's admins. Who edits it: registry admins and org admins; any org member who may
//! write the org entity may create one. Who logs into it: its members with a member role or
//! more, in the types it allows (`must_write_registry`).

use std::collections::BTreeSet;

use serde_json::Value as Json;

use super::*;
use crate::registry::directory::{
    DirOp, Directory, Member, REGISTRY_PREFIX, RegistryRecord, Role, Visibility,
};

/// The directory as of this request (refreshed when the request's key was checked).
pub(super) fn directory(ctx: &Context<'_>) -> Directory {
    shared(ctx).keys.current()
}

/// Publishes a directory change and makes it what the rest of this request sees.
pub(super) async fn change(ctx: &Context<'_>, op: DirOp) -> Res<Directory> {
    let d = reg(ctx).change_directory(op, |_| false).await.map_err(err)?;
    shared(ctx).keys.remember(&d);
    Ok(d)
}

fn forbidden(msg: String) -> Error {
    err(ServeError::Forbidden(msg))
}

/// A W&B-shaped numbered id (`base64("User:<n>")`): the SDK parses registry members' ids as
/// `<kind>:<int>`. The number is a hash of the name, found again by looking the name up.
fn numbered_id(kind: &str, name: &str) -> String {
    use base64::Engine;
    let n = ids::project_number(kind, name);
    base64::engine::general_purpose::STANDARD.encode(format!("{kind}:{n}"))
}

/// The name among `names` whose numbered id of `kind` is `id`.
fn name_of_id<'a>(
    kind: &str,
    id: &str,
    names: impl IntoIterator<Item = &'a String>,
) -> Option<String> {
    names.into_iter().find(|n| numbered_id(kind, n) == id).cloned()
}

// ---- users

#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    /// The default entity, when known.
    pub entity: Option<String>,
    /// The teams (entities) to list; the directory's when empty.
    pub teams: Vec<String>,
}

impl User {
    /// The caller: its key's default entity and the entities it may use.
    pub(super) fn viewer(a: &Access) -> User {
        User {
            name: a.user.clone(),
            entity: Some(a.default_entity().to_owned()),
            teams: a.entities.clone(),
        }
    }

    fn of(d: &Directory, name: &str) -> User {
        let entity = d.users.get(name).and_then(|u| u.default_entity.clone());
        User {
            name: name.to_owned(),
            entity: entity.or_else(|| Some(name.to_owned())),
            teams: Vec::new(),
        }
    }
}

#[derive(SimpleObject, Clone, Debug, Default)]
pub struct ApiKeyConnection {
    pub edges: Vec<ApiKeyEdge>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ApiKeyEdge {
    pub node: ApiKeyNode,
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "ApiKey")]
pub struct ApiKeyNode {
    pub id: async_graphql::ID,
    pub name: String,
    pub description: Option<String>,
}

#[Object]
impl User {
    async fn id(&self) -> async_graphql::ID {
        numbered_id("User", &self.name).into()
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
    async fn email(&self, ctx: &Context<'_>) -> Option<String> {
        directory(ctx).users.get(&self.name).and_then(|u| u.email.clone())
    }
    async fn admin(&self, ctx: &Context<'_>) -> bool {
        directory(ctx).users.get(&self.name).is_some_and(|u| u.admin)
    }
    async fn flags(&self) -> Option<JsonString> {
        None
    }
    async fn deleted_at(&self) -> Option<String> {
        None
    }
    /// Keys are never shown again; the SDK only lists them.
    async fn api_keys(&self) -> ApiKeyConnection {
        ApiKeyConnection::default()
    }
    async fn teams(&self, ctx: &Context<'_>) -> EntityConnection {
        let names = if self.teams.is_empty() {
            directory(ctx).teams_of(&self.name).into_iter().map(str::to_owned).collect()
        } else {
            self.teams.clone()
        };
        EntityConnection {
            edges: names.into_iter().map(|name| EntityEdge { node: Entity { name } }).collect(),
        }
    }
    async fn organizations(&self, ctx: &Context<'_>) -> Vec<Organization> {
        let d = directory(ctx);
        d.orgs_of(&self.name).into_iter().map(|(n, o)| Organization::new(n, &o.entity)).collect()
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct UserEdge {
    pub node: User,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct UserConnection {
    pub edges: Vec<UserEdge>,
}

/// `users(query:)`: users whose name or email contains the query (W&B's user search), only
/// among those sharing an organization or team with the caller, and the caller (all users for
/// a server admin).
pub(super) fn users(ctx: &Context<'_>, query: Option<String>) -> UserConnection {
    let d = directory(ctx);
    let me = &access(ctx).user;
    let mut known: BTreeSet<&str> = BTreeSet::from([me.as_str()]);
    for (_, o) in d.orgs_of(me) {
        known.extend(o.members.keys().map(String::as_str));
    }
    for t in d.teams_of(me) {
        known.extend(d.teams[t].members.keys().map(String::as_str));
    }
    if d.users.get(me).is_some_and(|u| u.admin) {
        // A server admin finds any user (W&B's admins add users to registries this way).
        known.extend(d.users.keys().map(String::as_str));
    }
    let q = query.unwrap_or_default().to_lowercase();
    let edges = known
        .into_iter()
        .filter(|n| {
            let email = d.users.get(*n).and_then(|u| u.email.as_deref()).unwrap_or("");
            n.to_lowercase().contains(&q) || email.to_lowercase().contains(&q)
        })
        .map(|n| UserEdge { node: User::of(&d, n) })
        .collect();
    UserConnection { edges }
}

#[derive(InputObject, Debug)]
pub struct UpdateUserInput {
    pub id: Option<String>,
    pub default_entity: Option<String>,
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject, Debug)]
pub struct UpdateUserPayload {
    pub user: Option<User>,
}

/// `updateUser`: the caller's own default entity (one it is a member of).
pub(super) async fn update_user(
    ctx: &Context<'_>,
    input: UpdateUserInput,
) -> Res<UpdateUserPayload> {
    let a = access(ctx);
    if let Some(id) = &input.id
        && *id != numbered_id("User", &a.user)
    {
        return Err(forbidden("updateUser: a key may only update its own user".into()));
    }
    let mut entity = a.default_entity().to_owned();
    if let Some(e) = input.default_entity {
        if !a.can_read(&e) {
            return Err(forbidden(format!(
                "updateUser: {} is not a member of entity {e:?}",
                a.user
            )));
        }
        change(ctx, DirOp::SetDefaultEntity { user: a.user.clone(), entity: e.clone() }).await?;
        entity = e;
    }
    Ok(UpdateUserPayload {
        user: Some(User { name: a.user.clone(), entity: Some(entity), teams: Vec::new() }),
    })
}

// ---- organizations and entities

#[derive(Clone, Debug)]
pub struct Organization {
    pub name: String,
    pub entity: String,
}

impl Organization {
    fn new(name: &str, entity: &str) -> Organization {
        Organization { name: name.to_owned(), entity: entity.to_owned() }
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct AdvancedRegistryFeatures {
    /// No ClickHouse-backed search: the SDK then filters with basic search.
    pub advanced_search: bool,
}

#[Object]
impl Organization {
    async fn id(&self) -> async_graphql::ID {
        numbered_id("Organization", &self.name).into()
    }
    async fn name(&self) -> &str {
        &self.name
    }
    async fn org_entity(&self) -> Entity {
        Entity { name: self.entity.clone() }
    }
    /// None: not a CoreWeave organization (wandb-core asks at run start).
    async fn core_weave_organization_id(&self) -> Option<String> {
        None
    }
    async fn advanced_registry_features(&self) -> AdvancedRegistryFeatures {
        AdvancedRegistryFeatures { advanced_search: false }
    }
    async fn members(&self, ctx: &Context<'_>) -> Vec<OrgMember> {
        let d = directory(ctx);
        let Some(o) = d.orgs.get(&self.name) else { return Vec::new() };
        o.members.iter().map(|(u, r)| OrgMember::of(&d, u, *r)).collect()
    }
}

/// `organization(name)`: an organization the caller belongs to (by name or org entity).
pub(super) fn organization(ctx: &Context<'_>, name: Option<String>) -> Option<Organization> {
    let d = directory(ctx);
    let name = name?;
    let (n, o) = d
        .orgs
        .get_key_value(&name)
        .map(|(n, o)| (n.as_str(), o))
        .or_else(|| d.org_of_entity(&name))?;
    access(ctx).can_read(&o.entity).then(|| Organization::new(n, &o.entity))
}

/// `entity.organization`: the org an org or team entity belongs to.
pub(super) fn organization_of(ctx: &Context<'_>, entity: &str) -> Option<Organization> {
    let d = directory(ctx);
    d.org_owning(entity).map(|(n, o)| Organization::new(n, &o.entity))
}

/// `entity.user`: the user whose own entity this is.
pub(super) fn user_of_entity(ctx: &Context<'_>, entity: &str) -> Option<User> {
    let d = directory(ctx);
    if d.users.contains_key(entity) {
        return Some(User::of(&d, entity));
    }
    // A legacy key's user is not in the directory, but its own entity is still its.
    (access(ctx).user == entity).then(|| User::of(&d, entity))
}

pub(super) fn entity_id(name: &str) -> String {
    numbered_id("Entity", name)
}

/// W&B's `entityType`: `organization`, `team` or `user`.
pub(super) fn entity_type(ctx: &Context<'_>, entity: &str) -> &'static str {
    let d = directory(ctx);
    if d.org_of_entity(entity).is_some() {
        "organization"
    } else if d.teams.contains_key(entity) {
        "team"
    } else {
        "user"
    }
}

pub(super) fn is_team(ctx: &Context<'_>, entity: &str) -> bool {
    let d = directory(ctx);
    d.teams.contains_key(entity) || d.org_of_entity(entity).is_some()
}

/// A member of a team entity (`Member`: W&B's team member) or of an organization.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Member")]
pub struct OrgMember {
    pub id: Option<String>,
    pub admin: Option<bool>,
    pub role: Option<String>,
    pub pending: Option<bool>,
    pub email: Option<String>,
    pub username: Option<String>,
    pub name: String,
    pub photo_url: Option<String>,
    pub account_type: Option<String>,
    pub api_key: Option<String>,
}

impl OrgMember {
    fn of(d: &Directory, user: &str, role: Role) -> OrgMember {
        OrgMember {
            id: Some(numbered_id("User", user)),
            admin: Some(role == Role::Admin),
            role: Some(role.as_str().to_owned()),
            pending: Some(false),
            email: d.users.get(user).and_then(|u| u.email.clone()),
            username: Some(user.to_owned()),
            name: user.to_owned(),
            photo_url: None,
            account_type: Some("USER".to_owned()),
            api_key: None,
        }
    }
}

pub(super) fn entity_members(ctx: &Context<'_>, entity: &str) -> Vec<OrgMember> {
    let d = directory(ctx);
    let members = match (d.teams.get(entity), d.org_of_entity(entity)) {
        (Some(t), _) => &t.members,
        (None, Some((_, o))) => &o.members,
        (None, None) => return Vec::new(),
    };
    members.iter().map(|(u, r)| OrgMember::of(&d, u, *r)).collect()
}

#[derive(InputObject, Debug)]
pub struct CreateTeamInput {
    pub team_name: String,
    pub team_admin_user_name: Option<String>,
    pub organization_id: Option<String>,
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject, Debug)]
pub struct CreateTeamPayload {
    pub entity: Option<Entity>,
}

/// `createTeam` (`api.create_team()`): a team of the organization `organizationId` names, its admin
/// the named user (default: the caller).
pub(super) async fn create_team(
    ctx: &Context<'_>,
    input: CreateTeamInput,
) -> Res<CreateTeamPayload> {
    let a = access(ctx);
    let d = directory(ctx);
    let org = team_org(&d, a, input.organization_id.as_deref())?;
    let admin = input.team_admin_user_name.unwrap_or_else(|| a.user.clone());
    let name = input.team_name;
    let op = DirOp::CreateTeam { name: name.clone(), org, members: Vec::new() };
    reg(ctx).change_directory(op, |_| false).await.map_err(err)?;
    let op = DirOp::SetTeamMember { team: name.clone(), user: admin, role: Role::Admin };
    change(ctx, op).await?;
    Ok(CreateTeamPayload { entity: Some(Entity { name }) })
}

/// The organization a new team joins: the one `id` names, else the newest one the caller may
/// write in. W&B Server has one organization per instance and the SDK sends no id; a caller of
/// several organizations (W&B's registry tests make one per test) means the one it made last.
fn team_org(d: &Directory, a: &Access, id: Option<&str>) -> Res<String> {
    let mut writable =
        d.orgs.iter().filter(|(_, o)| o.members.contains_key(&a.user) && a.can_write(&o.entity));
    let found = match id {
        Some(id) => writable.find(|(n, _)| numbered_id("Organization", n) == id || *n == id),
        None => writable.max_by_key(|(n, o)| (o.created_at, n.as_str())),
    };
    found.map(|(n, _)| n.clone()).ok_or_else(|| {
        invalid(format!(
            "createTeam: {} may create teams in no organization{}",
            a.user,
            id.map(|i| format!(" with id {i:?}")).unwrap_or_default()
        ))
    })
}

// ---- registries

/// Whether `project` of `entity` is a registry the directory holds.
fn registry_record(d: &Directory, entity: &str, project: &str) -> Option<RegistryRecord> {
    d.registries.get(&(entity.to_owned(), project.to_owned())).cloned()
}

/// The caller's role in a registry; `None` when it may not see it.
fn registry_role(d: &Directory, a: &Access, entity: &str, project: &str) -> Option<Role> {
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

// ---- registry mutations

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

// ---- filters

/// A parsed `filters` JSON string (MongoDB-style); no filter matches everything.
fn parse_filter(filters: Option<&str>) -> Res<Json> {
    match filters {
        None | Some("") => Ok(Json::Null),
        Some(s) => serde_json::from_str(s).map_err(|e| invalid(format!("filters: not JSON: {e}"))),
    }
}

/// Whether `fields` match a MongoDB-style `filter`: field equality, `$eq`, `$ne`, `$in`,
/// `$nin`, `$regex`, `$exists`, `$lt`/`$lte`/`$gt`/`$gte`, `$not`, W&B's `$contains`
/// (substring), and `$and`/`$or`/`$nor`; `a.b` reads nested fields; a field holding a list
/// matches when one of its items does. Unknown operators match nothing.
fn matches(filter: &Json, fields: &Json) -> bool {
    let Json::Object(conds) = filter else { return filter.is_null() };
    conds.iter().all(|(k, cond)| match (k.as_str(), cond) {
        ("$and", Json::Array(fs)) => fs.iter().all(|f| matches(f, fields)),
        ("$or", Json::Array(fs)) => fs.iter().any(|f| matches(f, fields)),
        ("$nor", Json::Array(fs)) => !fs.iter().any(|f| matches(f, fields)),
        (k, _) if k.starts_with('$') => false,
        (path, cond) => {
            let value =
                path.split('.').try_fold(fields, |v, key| v.get(key)).unwrap_or(&Json::Null);
            value_matches(value, cond)
        }
    })
}

fn value_matches(value: &Json, cond: &Json) -> bool {
    let eq = |want: &Json| match value {
        Json::Array(items) => items.contains(want) || value == want,
        v => v == want || loose_eq(v, want),
    };
    let Json::Object(ops) = cond else { return eq(cond) };
    if !ops.keys().all(|k| k.starts_with('$')) {
        return eq(cond);
    }
    ops.iter().all(|(op, arg)| match op.as_str() {
        "$eq" => eq(arg),
        "$ne" => !eq(arg),
        "$in" => arg.as_array().is_some_and(|a| a.iter().any(&eq)),
        "$nin" => arg.as_array().is_some_and(|a| !a.iter().any(&eq)),
        "$exists" => arg.as_bool() == Some(!value.is_null()),
        "$not" => !value_matches(value, arg),
        "$lt" | "$lte" | "$gt" | "$gte" => compare(value, arg).is_some_and(|o| match op.as_str() {
            "$lt" => o.is_lt(),
            "$lte" => o.is_le(),
            "$gt" => o.is_gt(),
            _ => o.is_ge(),
        }),
        "$contains" => {
            let Some(part) = arg.as_str() else { return false };
            match value {
                Json::String(s) => s.contains(part),
                Json::Array(items) => {
                    items.iter().any(|i| i.as_str().is_some_and(|s| s.contains(part)))
                }
                _ => false,
            }
        }
        "$regex" => {
            let Some(re) = arg.as_str().and_then(|r| regex::Regex::new(r).ok()) else {
                return false;
            };
            match value {
                Json::String(s) => re.is_match(s),
                Json::Array(items) => {
                    items.iter().any(|i| i.as_str().is_some_and(|s| re.is_match(s)))
                }
                _ => false,
            }
        }
        _ => false,
    })
}

/// The order of two numbers or two strings (timestamps are RFC 3339 strings, so they order too).
fn compare(a: &Json, b: &Json) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Json::String(x), Json::String(y)) => Some(x.as_str().cmp(y)),
        _ => None,
    }
}

/// Numbers sent as strings (and the reverse) still compare equal: W&B's filters are loose.
fn loose_eq(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(n), Json::String(s)) | (Json::String(s), Json::Number(n)) => {
            n.to_string() == *s
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_as_mongodb_does() {
        let f = serde_json::json!({"name": "wandb-registry-model", "alias": "best", "version": {"$in": ["v1", "v2"]}});
        let v = serde_json::json!({"name": "wandb-registry-model", "alias": ["latest", "best"], "version": "v2"});
        assert!(matches(&f, &v));
        assert!(!matches(&serde_json::json!({"alias": "prod"}), &v));
        let re = serde_json::json!({"$or": [{"name": {"$regex": "mod"}}, {"name": "x"}]});
        assert!(matches(&re, &v));
        assert!(matches(&serde_json::json!({"id": "12"}), &serde_json::json!({"id": 12})));
        assert!(matches(
            &serde_json::json!({"metadata.lr": 0.1}),
            &serde_json::json!({"metadata": {"lr": 0.1}})
        ));
        assert!(
            !matches(&serde_json::json!({"$where": "x"}), &v),
            "unknown operators match nothing"
        );
        assert!(matches(&Json::Null, &v));
        let contains = serde_json::json!({"name": {"$contains": "registry-mo"}});
        assert!(matches(&contains, &v));
        assert!(!matches(&serde_json::json!({"name": {"$contains": "other"}}), &v));
        let range = serde_json::json!({"n": {"$gte": 2, "$lt": 3}});
        assert!(matches(&range, &serde_json::json!({"n": 2})));
        assert!(!matches(&range, &serde_json::json!({"n": 3})));
        assert!(matches(
            &serde_json::json!({"n": {"$not": {"$gt": 5}}}),
            &serde_json::json!({"n": 2})
        ));
    }

    #[test]
    fn member_ids_are_kind_and_number() {
        use base64::Engine;
        let id = numbered_id("User", "ana");
        let raw = base64::engine::general_purpose::STANDARD.decode(&id).unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (kind, n) = text.split_once(':').unwrap();
        assert_eq!(kind, "User");
        assert!(n.parse::<i64>().is_ok(), "{text}");
        let users = ["bo".to_owned(), "ana".to_owned()];
        assert_eq!(name_of_id("User", &id, &users).as_deref(), Some("ana"));
        assert_eq!(name_of_id("Entity", &id, &users), None);
    }
}
