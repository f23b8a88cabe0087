//! Organizations, teams and entities over the registry's directory (`registry::directory`):
//! `organization`, an entity's members and type, `createTeam`; and the helpers every directory
//! page of the schema shares (the directory as of this request, publishing a change, W&B's
//! numbered ids). Users are in `users`, the Registry in `registries` (reading, who may do what)
//! and `registry_edits` (its mutations), registry search filters in `filters`.

use super::*;
use crate::registry::directory::{DirOp, Directory, Role};

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

pub(super) fn forbidden(msg: String) -> Error {
    err(ServeError::Forbidden(msg))
}

/// A W&B-shaped numbered id (`base64("User:<n>")`): the SDK parses registry members' ids as
/// `<kind>:<int>`. The number is a hash of the name, found again by looking the name up.
pub(super) fn numbered_id(kind: &str, name: &str) -> String {
    use base64::Engine;
    let n = ids::project_number(kind, name);
    base64::engine::general_purpose::STANDARD.encode(format!("{kind}:{n}"))
}

/// The name among `names` whose numbered id of `kind` is `id`.
pub(super) fn name_of_id<'a>(
    kind: &str,
    id: &str,
    names: impl IntoIterator<Item = &'a String>,
) -> Option<String> {
    names.into_iter().find(|n| numbered_id(kind, n) == id).cloned()
}

#[derive(Clone, Debug)]
pub struct Organization {
    pub name: String,
    pub entity: String,
}

impl Organization {
    pub(super) fn new(name: &str, entity: &str) -> Organization {
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

#[cfg(test)]
mod tests {
    use super::*;

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
