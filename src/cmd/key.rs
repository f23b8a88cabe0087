//! `artfs key create`: an API key for `artfs serve`, printed once, stored only as a hash.

use anyhow::Result;

use serde::Serialize;

use super::{App, print_json};

/// `artfs key create --json`: the key (shown this once) and what it may do.
#[derive(Debug, Serialize)]
struct CreatedKey {
    key: String,
    user: String,
    read_only: bool,
    /// Empty: the user's own entities.
    entities: Vec<String>,
}
use crate::cli::KeyCommand;

impl App {
    pub(super) async fn key(&self, command: KeyCommand) -> Result<()> {
        let KeyCommand::Create { user, user_flag, entities, read_only, secret, json } = command;
        // clap requires exactly one of them.
        let user = user.or(user_flag).unwrap_or_default();
        let registry = self.registry_for_write().await?;
        let (secret, record) = match secret {
            Some(s) => registry.create_key_with_secret(&user, &entities, read_only, &s).await?,
            None => registry.create_key(&user, &entities, read_only).await?,
        };
        if json {
            let (read_only, entities) = (record.read_only, record.entities);
            return print_json(&CreatedKey { key: secret, user, read_only, entities });
        }
        println!("{secret}");
        if !self.config.quiet {
            let mode = if record.read_only { "read-only" } else { "read-write" };
            let entities = match record.entities.as_slice() {
                [] => "those of the user".to_owned(),
                some => some.join(", "),
            };
            eprintln!("key for {user} ({mode}, entities: {entities}); it is not shown again");
        }
        Ok(())
    }
}
