//! Users, organizations, teams and the W&B Registry's registries: one create-only commit log
//! (`commit_log`) at `directory/`, folded into `Directory` by the pure `Directory::apply`, so
//! every `artfs serve` over one bucket and the admin CLI beside them agree on who may do what.
//!
//! Entities share one namespace: a user's own entity is its name, an organization has one org
//! entity, and a team is an entity of its own that belongs to an organization. A registry is the
//! project `wandb-registry-<name>` of an org entity; its settings and members live here, its
//! collections in the usual collection logs.
//!
//! What a user may do in an entity (`Directory::roles_of`): everything in its own entity; in a
//! team or org entity what its role there says (viewers read, members write, admins manage).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::commit_log::{Commit, Fold, FoldError};
use super::{Registry, RegistryError, layout};
use crate::names::validate_scope;

/// The project-name prefix that makes a project a registry (W&B's `REGISTRY_PREFIX`).
pub const REGISTRY_PREFIX: &str = "wandb-registry-";

/// What a member may do in an org, team or registry; ordered by power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Member,
    Admin,
}

impl Role {
    pub fn can_write(self) -> bool {
        self >= Role::Member
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    /// W&B's registry roles are `admin`, `member`, `viewer` (and `restricted_viewer`, read as a
    /// viewer); organizations also say `user` for a member.
    fn from_str(s: &str) -> Result<Role, String> {
        match s.to_ascii_lowercase().as_str() {
            "admin" => Ok(Role::Admin),
            "member" | "user" => Ok(Role::Member),
            "viewer" | "restricted_viewer" => Ok(Role::Viewer),
            other => Err(format!("unknown role {other:?}; use admin, member or viewer")),
        }
    }
}

/// Who a registry member is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Member {
    User(String),
    Team(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DirOp {
    CreateUser {
        name: String,
        admin: bool,
        email: Option<String>,
    },
    SetDefaultEntity {
        user: String,
        entity: String,
    },
    CreateOrg {
        name: String,
        entity: String,
        admin: String,
    },
    /// Adds a member or changes its role.
    SetOrgMember {
        org: String,
        user: String,
        role: Role,
    },
    RemoveOrgMember {
        org: String,
        user: String,
    },
    DeleteOrg {
        org: String,
    },
    CreateTeam {
        name: String,
        org: String,
        members: Vec<String>,
    },
    SetTeamMember {
        team: String,
        user: String,
        role: Role,
    },
    /// Creates the registry `project` of org entity `entity` (its creator its admin) or edits
    /// it; `None` leaves a setting as it is. Allowed types are only ever added, as on W&B.
    UpsertRegistry {
        entity: String,
        project: String,
        by: String,
        description: Option<String>,
        visibility: Option<Visibility>,
        allow_all_types: Option<bool>,
        add_types: Vec<String>,
    },
    DeleteRegistry {
        entity: String,
        project: String,
    },
    SetRegistryMember {
        entity: String,
        project: String,
        member: Member,
        role: Role,
    },
    RemoveRegistryMember {
        entity: String,
        project: String,
        member: Member,
    },
    /// Gives a registry another project name, settings and members kept.
    RenameRegistry {
        entity: String,
        from: String,
        to: String,
    },
}

impl DirOp {
    /// Whether the op changes a registry (or its members) rather than users, organizations or
    /// teams: the one place the directory's ops are sorted, so `check` and the fold split alike.
    pub fn is_registry_op(&self) -> bool {
        match self {
            DirOp::CreateUser { .. }
            | DirOp::SetDefaultEntity { .. }
            | DirOp::CreateOrg { .. }
            | DirOp::SetOrgMember { .. }
            | DirOp::RemoveOrgMember { .. }
            | DirOp::DeleteOrg { .. }
            | DirOp::CreateTeam { .. }
            | DirOp::SetTeamMember { .. } => false,
            DirOp::UpsertRegistry { .. }
            | DirOp::DeleteRegistry { .. }
            | DirOp::SetRegistryMember { .. }
            | DirOp::RemoveRegistryMember { .. }
            | DirOp::RenameRegistry { .. } => true,
        }
    }
}

/// Who may see a registry: all of its organization, or only its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Organization,
    Restricted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub admin: bool,
    pub email: Option<String>,
    /// The entity a request that names none uses; the user's own when unset.
    pub default_entity: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgRecord {
    pub entity: String,
    pub members: BTreeMap<String, Role>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamRecord {
    pub org: String,
    pub members: BTreeMap<String, Role>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryRecord {
    pub description: Option<String>,
    pub visibility: Visibility,
    pub allow_all_types: bool,
    pub types: Vec<String>,
    #[serde(with = "super::pairs")]
    pub members: BTreeMap<Member, Role>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The fold of the directory's log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Directory {
    pub seq: u64,
    pub users: BTreeMap<String, UserRecord>,
    pub orgs: BTreeMap<String, OrgRecord>,
    pub teams: BTreeMap<String, TeamRecord>,
    /// By `(org entity, project)`.
    #[serde(with = "super::pairs")]
    pub registries: BTreeMap<(String, String), RegistryRecord>,
}

impl Directory {
    /// The organization whose org entity is `entity`.
    pub fn org_of_entity(&self, entity: &str) -> Option<(&str, &OrgRecord)> {
        self.orgs.iter().find(|(_, o)| o.entity == entity).map(|(n, o)| (n.as_str(), o))
    }

    /// The organization an entity belongs to: an org entity's own, a team's.
    pub fn org_owning(&self, entity: &str) -> Option<(&str, &OrgRecord)> {
        if let Some(found) = self.org_of_entity(entity) {
            return Some(found);
        }
        let team = self.teams.get(entity)?;
        self.orgs.get_key_value(&team.org).map(|(n, o)| (n.as_str(), o))
    }

    /// The organizations `user` is a member of, by name.
    pub fn orgs_of(&self, user: &str) -> Vec<(&str, &OrgRecord)> {
        self.orgs
            .iter()
            .filter(|(_, o)| o.members.contains_key(user))
            .map(|(n, o)| (n.as_str(), o))
            .collect()
    }

    /// The teams `user` is a member of, by name.
    pub fn teams_of(&self, user: &str) -> Vec<&str> {
        self.teams
            .iter()
            .filter(|(_, t)| t.members.contains_key(user))
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// Every entity `user` may use and its role there; its own entity first.
    pub fn roles_of(&self, user: &str) -> Vec<(String, Role)> {
        let mut out = vec![(user.to_owned(), Role::Admin)];
        for (_, org) in self.orgs_of(user) {
            out.push((org.entity.clone(), org.members[user]));
        }
        for team in self.teams_of(user) {
            out.push((team.to_owned(), self.teams[team].members[user]));
        }
        out
    }

    fn entity_taken(&self, name: &str) -> bool {
        self.users.contains_key(name)
            || self.teams.contains_key(name)
            || self.orgs.values().any(|o| o.entity == name)
    }

    fn user(&self, name: &str) -> Result<&UserRecord, String> {
        self.users.get(name).ok_or_else(|| format!("there is no user {name:?}"))
    }

    fn org(&self, name: &str) -> Result<&OrgRecord, String> {
        self.orgs.get(name).ok_or_else(|| format!("there is no organization {name:?}"))
    }

    fn registry_key(&self, entity: &str, project: &str) -> Result<(String, String), String> {
        if self.org_of_entity(entity).is_none() {
            return Err(format!("{entity:?} is not an organization's entity"));
        }
        if !project.starts_with(REGISTRY_PREFIX) {
            return Err(format!("{project:?} is not a registry (no {REGISTRY_PREFIX} prefix)"));
        }
        Ok((entity.to_owned(), project.to_owned()))
    }

    fn registry(&self, entity: &str, project: &str) -> Result<(String, String), String> {
        let key = self.registry_key(entity, project)?;
        if !self.registries.contains_key(&key) {
            return Err(format!("there is no registry {entity}/{project}"));
        }
        Ok(key)
    }

    fn member_exists(&self, m: &Member) -> Result<(), String> {
        match m {
            Member::User(u) => self.user(u).map(drop),
            Member::Team(t) if self.teams.contains_key(t) => Ok(()),
            Member::Team(t) => Err(format!("there is no team {t:?}")),
        }
    }

    /// Whether `op` applies to this state, and why not.
    pub fn check(&self, op: &DirOp) -> Result<(), String> {
        if op.is_registry_op() { self.check_registry(op) } else { self.check_people(op) }
    }

    /// `check` for users, organizations and teams.
    fn check_people(&self, op: &DirOp) -> Result<(), String> {
        let name_ok = |kind, n: &str| validate_scope(kind, n).map_err(|e| e.to_string());
        match op {
            DirOp::CreateUser { name, .. } => {
                name_ok("user", name)?;
                if self.entity_taken(name) {
                    return Err(format!("the name {name:?} is taken"));
                }
            }
            DirOp::SetDefaultEntity { user, entity } => {
                self.user(user)?;
                if !self.roles_of(user).iter().any(|(e, _)| e == entity) {
                    return Err(format!("user {user:?} is not a member of entity {entity:?}"));
                }
            }
            DirOp::CreateOrg { name, entity, admin } => {
                name_ok("organization", name)?;
                name_ok("entity", entity)?;
                self.user(admin)?;
                if self.orgs.contains_key(name) {
                    return Err(format!("organization {name:?} exists"));
                }
                if self.entity_taken(entity) {
                    return Err(format!("the entity name {entity:?} is taken"));
                }
            }
            DirOp::SetOrgMember { org, user, .. } => {
                self.org(org)?;
                self.user(user)?;
            }
            DirOp::RemoveOrgMember { org, user } => {
                let members = &self.org(org)?.members;
                if !members.contains_key(user) {
                    return Err(format!("{user:?} is not a member of organization {org:?}"));
                }
            }
            DirOp::DeleteOrg { org } => {
                self.org(org)?;
            }
            DirOp::CreateTeam { name, org, members } => {
                name_ok("team", name)?;
                self.org(org)?;
                if self.entity_taken(name) {
                    return Err(format!("the entity name {name:?} is taken"));
                }
                for m in members {
                    self.user(m)?;
                }
            }
            DirOp::SetTeamMember { team, user, .. } => {
                if !self.teams.contains_key(team) {
                    return Err(format!("there is no team {team:?}"));
                }
                self.user(user)?;
            }
            // `check` sends registry ops to `check_registry`.
            _ => {}
        }
        Ok(())
    }

    /// `check` for registries and their members.
    fn check_registry(&self, op: &DirOp) -> Result<(), String> {
        let name_ok = |kind, n: &str| validate_scope(kind, n).map_err(|e| e.to_string());
        match op {
            DirOp::UpsertRegistry { entity, project, add_types, .. } => {
                name_ok("project", project)?;
                self.registry_key(entity, project)?;
                for t in add_types {
                    name_ok("artifact type", t)?;
                }
            }
            DirOp::DeleteRegistry { entity, project } => {
                self.registry(entity, project)?;
            }
            DirOp::SetRegistryMember { entity, project, member, .. } => {
                self.registry(entity, project)?;
                self.member_exists(member)?;
            }
            DirOp::RemoveRegistryMember { entity, project, member } => {
                let key = self.registry(entity, project)?;
                if !self.registries[&key].members.contains_key(member) {
                    return Err(format!("{member:?} is not a member of {entity}/{project}"));
                }
            }
            DirOp::RenameRegistry { entity, from, to } => {
                name_ok("project", to)?;
                self.registry(entity, from)?;
                let key = self.registry_key(entity, to)?;
                if self.registries.contains_key(&key) {
                    return Err(format!("registry {entity}/{to} exists"));
                }
            }
            // `check` sends the other ops to `check_people`.
            _ => {}
        }
        Ok(())
    }
}

impl Fold for Directory {
    type Op = DirOp;

    fn seq(&self) -> u64 {
        self.seq
    }

    fn skip_to(&mut self, seq: u64) {
        self.seq = seq;
    }

    fn fold_op(&mut self, c: &Commit<DirOp>) -> Result<(), FoldError> {
        self.check(&c.op).map_err(|reason| FoldError::Invalid { seq: c.seq, reason })?;
        if c.op.is_registry_op() {
            self.fold_registry(c.op.clone(), c.time);
        } else {
            self.fold_people(c.op.clone(), c.time);
        }
        Ok(())
    }
}

impl Directory {
    /// Applies a checked user, organization or team op.
    fn fold_people(&mut self, op: DirOp, at: DateTime<Utc>) {
        match op {
            DirOp::CreateUser { name, admin, email } => {
                let record = UserRecord { admin, email, default_entity: None, created_at: at };
                self.users.insert(name, record);
            }
            DirOp::SetDefaultEntity { user, entity } => {
                if let Some(u) = self.users.get_mut(&user) {
                    u.default_entity = Some(entity);
                }
            }
            DirOp::CreateOrg { name, entity, admin } => {
                let members = BTreeMap::from([(admin, Role::Admin)]);
                self.orgs.insert(name, OrgRecord { entity, members, created_at: at });
            }
            DirOp::SetOrgMember { org, user, role } => {
                if let Some(o) = self.orgs.get_mut(&org) {
                    o.members.insert(user, role);
                }
            }
            DirOp::RemoveOrgMember { org, user } => {
                if let Some(o) = self.orgs.get_mut(&org) {
                    o.members.remove(&user);
                }
            }
            DirOp::DeleteOrg { org } => {
                if let Some(o) = self.orgs.remove(&org) {
                    self.registries.retain(|(e, _), _| *e != o.entity);
                    self.teams.retain(|_, t| t.org != org);
                }
            }
            DirOp::CreateTeam { name, org, members } => {
                let members = members.into_iter().map(|m| (m, Role::Member)).collect();
                self.teams.insert(name, TeamRecord { org, members, created_at: at });
            }
            DirOp::SetTeamMember { team, user, role } => {
                if let Some(t) = self.teams.get_mut(&team) {
                    t.members.insert(user, role);
                }
            }
            // `fold_op` sends registry ops to `fold_registry`.
            _ => {}
        }
    }

    /// Applies a checked registry op.
    fn fold_registry(&mut self, op: DirOp, at: DateTime<Utc>) {
        match op {
            DirOp::UpsertRegistry {
                entity,
                project,
                by,
                description,
                visibility,
                allow_all_types,
                add_types,
            } => {
                let r =
                    self.registries.entry((entity, project)).or_insert_with(|| RegistryRecord {
                        description: None,
                        visibility: Visibility::Organization,
                        allow_all_types: true,
                        types: Vec::new(),
                        members: BTreeMap::from([(Member::User(by), Role::Admin)]),
                        created_at: at,
                        updated_at: at,
                    });
                if description.is_some() {
                    r.description = description;
                }
                if let Some(v) = visibility {
                    r.visibility = v;
                }
                if let Some(a) = allow_all_types {
                    r.allow_all_types = a;
                }
                for t in add_types {
                    if !r.types.contains(&t) {
                        r.types.push(t);
                    }
                }
                r.updated_at = at;
            }
            DirOp::DeleteRegistry { entity, project } => {
                self.registries.remove(&(entity, project));
            }
            DirOp::SetRegistryMember { entity, project, member, role } => {
                if let Some(r) = self.registries.get_mut(&(entity, project)) {
                    r.members.insert(member, role);
                }
            }
            DirOp::RemoveRegistryMember { entity, project, member } => {
                if let Some(r) = self.registries.get_mut(&(entity, project)) {
                    r.members.remove(&member);
                }
            }
            DirOp::RenameRegistry { entity, from, to } => {
                if let Some(mut r) = self.registries.remove(&(entity.clone(), from)) {
                    r.updated_at = at;
                    self.registries.insert((entity, to), r);
                }
            }
            // `fold_op` sends the other ops to `fold_people`.
            _ => {}
        }
    }
}

impl Registry {
    /// The directory as its log says now; `from` (an earlier state) saves replaying it all.
    pub async fn directory(&self, from: Directory) -> Result<Directory, RegistryError> {
        self.load_log(layout::DIRECTORY, from).await
    }

    /// Publishes `op` to the directory once it applies to the freshest state (an op that does
    /// not is refused with its reason); `skip` says when the state already holds what `op`
    /// would do, so nothing is written.
    pub async fn change_directory(
        &self,
        op: DirOp,
        skip: impl Fn(&Directory) -> bool,
    ) -> Result<Directory, RegistryError> {
        let decide = |d: &Directory| {
            if skip(d) {
                return Ok((None, ()));
            }
            d.check(&op).map_err(|reason| RegistryError::Invalid {
                name: "directory".to_owned(),
                reason,
            })?;
            Ok((Some(op.clone()), ()))
        };
        Ok(self.append(layout::DIRECTORY, "directory", decide).await?.0)
    }

    /// Creates `user` unless it exists.
    pub async fn ensure_user(&self, user: &str) -> Result<Directory, RegistryError> {
        let op = DirOp::CreateUser { name: user.to_owned(), admin: false, email: None };
        self.change_directory(op, |d| d.users.contains_key(user)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(ops: Vec<DirOp>) -> Result<Directory, FoldError> {
        let mut d = Directory::default();
        for (i, op) in ops.into_iter().enumerate() {
            let c = Commit { seq: i as u64 + 1, time: Utc::now(), writer: "t".into(), op };
            d.apply(&c)?;
        }
        Ok(d)
    }

    fn user(name: &str) -> DirOp {
        DirOp::CreateUser { name: name.into(), admin: false, email: None }
    }

    #[test]
    fn roles_come_from_orgs_and_teams() {
        let d = fold(vec![
            user("ana"),
            user("bo"),
            DirOp::CreateOrg {
                name: "acme".into(),
                entity: "acme-org".into(),
                admin: "ana".into(),
            },
            DirOp::SetOrgMember { org: "acme".into(), user: "bo".into(), role: Role::Viewer },
            DirOp::CreateTeam {
                name: "vision".into(),
                org: "acme".into(),
                members: vec!["bo".into()],
            },
        ])
        .unwrap();
        assert_eq!(
            d.roles_of("bo"),
            [
                ("bo".to_owned(), Role::Admin),
                ("acme-org".to_owned(), Role::Viewer),
                ("vision".to_owned(), Role::Member)
            ]
        );
        assert_eq!(d.org_owning("vision").map(|(n, _)| n), Some("acme"));
        assert_eq!(d.roles_of("ana")[1], ("acme-org".to_owned(), Role::Admin));
    }

    #[test]
    fn names_are_one_namespace_and_ops_need_what_they_name() {
        let org = |entity: &str| DirOp::CreateOrg {
            name: "acme".into(),
            entity: entity.into(),
            admin: "ana".into(),
        };
        assert!(fold(vec![org("acme")]).is_err(), "the admin must exist");
        assert!(fold(vec![user("ana"), org("ana")]).is_err(), "a user's entity is taken");
        assert!(fold(vec![user("ana"), user("ana")]).is_err());
        assert!(fold(vec![user("ana"), org("acme"), user("acme")]).is_err());
        let reg = DirOp::UpsertRegistry {
            entity: "acme".into(),
            project: "models".into(),
            by: "ana".into(),
            description: None,
            visibility: None,
            allow_all_types: None,
            add_types: vec![],
        };
        assert!(fold(vec![user("ana"), org("acme"), reg]).is_err(), "needs the prefix");
    }

    #[test]
    fn deleting_an_org_takes_its_teams_and_registries() {
        let d = fold(vec![
            user("ana"),
            DirOp::CreateOrg { name: "acme".into(), entity: "acme".into(), admin: "ana".into() },
            DirOp::CreateTeam { name: "t".into(), org: "acme".into(), members: vec![] },
            DirOp::UpsertRegistry {
                entity: "acme".into(),
                project: "wandb-registry-models".into(),
                by: "ana".into(),
                description: Some("d".into()),
                visibility: None,
                allow_all_types: Some(false),
                add_types: vec!["model".into()],
            },
            DirOp::DeleteOrg { org: "acme".into() },
        ])
        .unwrap();
        assert!(d.orgs.is_empty() && d.teams.is_empty() && d.registries.is_empty());
        assert_eq!(d.roles_of("ana").len(), 1);
    }
}
