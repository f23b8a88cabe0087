//! Users as the SDK sees them: `viewer`, `users(query:)`, `updateUser` (the default entity) and a
//! user's API keys, over the registry's directory.

use std::collections::BTreeSet;

use super::orgs::{change, directory, forbidden, numbered_id};
use super::*;
use crate::registry::directory::{DirOp, Directory};

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

    pub(super) fn of(d: &Directory, name: &str) -> User {
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
