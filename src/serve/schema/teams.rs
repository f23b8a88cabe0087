//! `createInvite` (`team.invite()`): W&B invites a user to a team; artfs has no pending invites,
//! so the user joins the team at once, as the admin CLI's `team add-member` does.

use super::*;
use crate::registry::directory::{DirOp, Role};

#[derive(InputObject, Debug)]
pub struct CreateInviteInput {
    pub entity_name: String,
    pub email: Option<String>,
    pub username: Option<String>,
    pub admin: Option<bool>,
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct InviteUser {
    pub name: String,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Invite {
    pub id: async_graphql::ID,
    pub name: Option<String>,
    pub email: Option<String>,
    pub created_at: String,
    pub to_user: Option<InviteUser>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct CreateInvitePayload {
    pub invite: Option<Invite>,
}

/// Adds the user named by `username` or `email` to team `entityName`; team admins and admins
/// of the team's organization may.
pub(super) async fn create_invite(
    ctx: &Context<'_>,
    input: CreateInviteInput,
) -> Res<CreateInvitePayload> {
    let d = orgs::directory(ctx);
    let team = input.entity_name;
    let a = access(ctx);
    let org_admin = d.org_owning(&team).is_some_and(|(_, o)| a.can_manage(&o.entity));
    if !d.teams.contains_key(&team) {
        return Err(not_found(format!("createInvite: there is no team {team:?}")));
    }
    if !(a.can_manage(&team) || org_admin) {
        return Err(err(ServeError::Forbidden(format!(
            "permission denied: {} may not invite members to team {team:?}",
            a.user
        ))));
    }
    let user = match (&input.username, &input.email) {
        (Some(name), _) if d.users.contains_key(name) => name.clone(),
        (_, Some(email)) => d
            .users
            .iter()
            .find(|(_, u)| u.email.as_deref() == Some(email.as_str()))
            .map(|(n, _)| n.clone())
            .ok_or_else(|| not_found(format!("createInvite: no user has the email {email:?}")))?,
        _ => return Err(not_found("createInvite: name an existing user by username or email")),
    };
    let role = if input.admin == Some(true) { Role::Admin } else { Role::Member };
    let op = DirOp::SetTeamMember { team: team.clone(), user: user.clone(), role };
    orgs::change(ctx, op).await?;
    let email = d.users.get(&user).and_then(|u| u.email.clone());
    Ok(CreateInvitePayload {
        invite: Some(Invite {
            id: ids::other_id("Invite", &format!("{team}/{user}")).into(),
            name: Some(user.clone()),
            email,
            created_at: time(Utc::now()),
            to_user: Some(InviteUser { name: user }),
        }),
    })
}
