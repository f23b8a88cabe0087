//! `artfs user`, `artfs org`, `artfs team`: the directory of users, organizations and teams that
//! decides what each API key of `artfs serve` may do.

use anyhow::Result;
use serde::Serialize;

use super::{App, print_json};
use crate::cli::{OrgCommand, TeamCommand, UserCommand};
use crate::registry::directory::{DirOp, Directory};

/// `artfs user|org|team … --json`: the change as the directory log records it, and the sentence
/// that says it.
#[derive(Debug, Serialize)]
struct Changed<'a> {
    change: &'a DirOp,
    message: &'a str,
}

impl App {
    /// Publishes one directory change and says what it did.
    async fn directory_change(
        &self,
        op: DirOp,
        skip: impl Fn(&Directory) -> bool,
        (done, json): (String, bool),
    ) -> Result<()> {
        let registry = self.registry_for_write().await?;
        registry.change_directory(op.clone(), skip).await?;
        if json {
            return print_json(&Changed { change: &op, message: &done });
        }
        if !self.config.quiet {
            eprintln!("{done}");
        }
        Ok(())
    }

    pub(super) async fn user_command(&self, command: UserCommand) -> Result<()> {
        let UserCommand::Create { user, admin, email, json } = command;
        let done = format!("created user {user}");
        let op = DirOp::CreateUser { name: user, admin, email };
        self.directory_change(op, |_| false, (done, json)).await
    }

    pub(super) async fn org_command(&self, command: OrgCommand) -> Result<()> {
        let (op, done) = match command {
            OrgCommand::Create { org, admin, entity, json } => {
                let entity = entity.unwrap_or_else(|| org.clone());
                let done = format!("created organization {org} (entity {entity}, admin {admin})");
                (DirOp::CreateOrg { name: org, entity, admin }, (done, json))
            }
            OrgCommand::AddMember { org, user, role, json } => {
                let done = format!("{user} is now {role} of organization {org}");
                (DirOp::SetOrgMember { org, user, role }, (done, json))
            }
            OrgCommand::RmMember { org, user, json } => {
                let done = format!("{user} is no longer a member of organization {org}");
                (DirOp::RemoveOrgMember { org, user }, (done, json))
            }
            OrgCommand::Delete { org, json } => {
                let done = format!("deleted organization {org}");
                (DirOp::DeleteOrg { org }, (done, json))
            }
        };
        self.directory_change(op, |_| false, done).await
    }

    pub(super) async fn team_command(&self, command: TeamCommand) -> Result<()> {
        let (op, done) = match command {
            TeamCommand::Create { team, org, members, json } => {
                let done = format!("created team {team} of organization {org}");
                (DirOp::CreateTeam { name: team, org, members }, (done, json))
            }
            TeamCommand::AddMember { team, user, role, json } => {
                let done = format!("{user} is now {role} of team {team}");
                (DirOp::SetTeamMember { team, user, role }, (done, json))
            }
        };
        self.directory_change(op, |_| false, done).await
    }
}
