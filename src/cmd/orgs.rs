//! `artfs user`, `artfs org`, `artfs team`: the directory of users, organizations and teams that
//! decides what each API key of `artfs serve` may do.

use anyhow::Result;

use super::App;
use crate::cli::{OrgCommand, TeamCommand, UserCommand};
use crate::registry::directory::{DirOp, Directory};

impl App {
    /// Publishes one directory change and says what it did.
    async fn directory_change(
        &self,
        op: DirOp,
        skip: impl Fn(&Directory) -> bool,
        done: String,
    ) -> Result<()> {
        let registry = self.registry_for_write().await?;
        registry.change_directory(op, skip).await?;
        if !self.config.quiet {
            eprintln!("{done}");
        }
        Ok(())
    }

    pub(super) async fn user_command(&self, command: UserCommand) -> Result<()> {
        let UserCommand::Create { user, admin, email } = command;
        let done = format!("created user {user}");
        let op = DirOp::CreateUser { name: user, admin, email };
        self.directory_change(op, |_| false, done).await
    }

    pub(super) async fn org_command(&self, command: OrgCommand) -> Result<()> {
        let (op, done) = match command {
            OrgCommand::Create { org, admin, entity } => {
                let entity = entity.unwrap_or_else(|| org.clone());
                let done = format!("created organization {org} (entity {entity}, admin {admin})");
                (DirOp::CreateOrg { name: org, entity, admin }, done)
            }
            OrgCommand::AddMember { org, user, role } => {
                let done = format!("{user} is now {role} of organization {org}");
                (DirOp::SetOrgMember { org, user, role }, done)
            }
            OrgCommand::RmMember { org, user } => {
                let done = format!("{user} is no longer a member of organization {org}");
                (DirOp::RemoveOrgMember { org, user }, done)
            }
            OrgCommand::Delete { org } => {
                let done = format!("deleted organization {org}");
                (DirOp::DeleteOrg { org }, done)
            }
        };
        self.directory_change(op, |_| false, done).await
    }

    pub(super) async fn team_command(&self, command: TeamCommand) -> Result<()> {
        let (op, done) = match command {
            TeamCommand::Create { team, org, members } => {
                let done = format!("created team {team} of organization {org}");
                (DirOp::CreateTeam { name: team, org, members }, done)
            }
            TeamCommand::AddMember { team, user, role } => {
                let done = format!("{user} is now {role} of team {team}");
                (DirOp::SetTeamMember { team, user, role }, done)
            }
        };
        self.directory_change(op, |_| false, done).await
    }
}
