//! `artfs key create|list|revoke`: API keys for `artfs serve`, printed once, stored only as a
//! hash, named to operators by a prefix of that hash.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{App, print_json};
use crate::cli::KeyCommand;
use crate::config::parse_duration;
use crate::registry::keys::{KeyInfo, KeyRecord};

/// `artfs key create --json`: the key (shown this once) and what it may do.
#[derive(Debug, Serialize)]
struct CreatedKey {
    key: String,
    user: String,
    read_only: bool,
    /// Empty: the user's own entities.
    entities: Vec<String>,
}

/// `artfs key revoke --json`.
#[derive(Debug, Serialize)]
struct Revoked<'a> {
    id: &'a str,
    user: &'a str,
    revoked: bool,
}

impl App {
    pub(super) async fn key(&self, command: KeyCommand) -> Result<()> {
        match command {
            KeyCommand::Create { user, user_flag, entities, read_only, secret, expires, json } => {
                // clap requires exactly one of them.
                let user = user.or(user_flag).unwrap_or_default();
                let expires = expires.as_deref();
                let created = self
                    .key_create(&user, &entities, read_only, secret.as_deref(), expires)
                    .await?;
                self.print_created(created, json)
            }
            KeyCommand::List { json } => {
                let keys = self.registry().await?.list_keys().await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&keys)?);
                } else {
                    print_keys(&keys, Utc::now());
                }
                Ok(())
            }
            KeyCommand::Revoke { id, json } => {
                let info = self.registry_for_write().await?.revoke_key(&id).await?;
                if json {
                    let revoked = Revoked { id: &info.id, user: &info.record.user, revoked: true };
                    return print_json(&revoked);
                }
                if !self.config.quiet {
                    eprintln!("revoked key {} of {}", info.id, info.record.user);
                }
                Ok(())
            }
        }
    }

    async fn key_create(
        &self,
        user: &str,
        entities: &[String],
        read_only: bool,
        secret: Option<&str>,
        expires: Option<&str>,
    ) -> Result<(String, String, KeyRecord)> {
        let expires_at = match expires {
            Some(d) => {
                let d = chrono::Duration::from_std(parse_duration(d)?)
                    .with_context(|| format!("--expires {d}: too long"))?;
                Some(Utc::now() + d)
            }
            None => None,
        };
        let registry = self.registry_for_write().await?;
        let (secret, record) =
            registry.create_key_expiring(user, entities, read_only, secret, expires_at).await?;
        Ok((user.to_owned(), secret, record))
    }

    fn print_created(
        &self,
        (user, secret, record): (String, String, KeyRecord),
        json: bool,
    ) -> Result<()> {
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
            let until =
                record.expires_at.map(|t| format!(", expires {}", minute(t))).unwrap_or_default();
            eprintln!(
                "key for {user} ({mode}, entities: {entities}{until}); it is not shown again"
            );
        }
        Ok(())
    }
}

fn minute(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

/// One line per key, under a header: `ID USER ENTITIES MODE CREATED EXPIRES LAST-USED STATUS`.
fn print_keys(keys: &[KeyInfo], now: DateTime<Utc>) {
    let or_dash = |t: Option<DateTime<Utc>>| t.map(minute).unwrap_or_else(|| "-".to_owned());
    let rows: Vec<[String; 8]> = keys
        .iter()
        .map(|k| {
            let status = match (k.revoked_at, k.record.expired(now)) {
                (Some(_), _) => "revoked",
                (None, true) => "expired",
                (None, false) => "active",
            };
            [
                k.id.clone(),
                k.record.user.clone(),
                if k.record.entities.is_empty() { "*".into() } else { k.record.entities.join(",") },
                if k.record.read_only { "ro".into() } else { "rw".into() },
                minute(k.record.created_at),
                or_dash(k.record.expires_at),
                or_dash(k.last_used),
                status.to_owned(),
            ]
        })
        .collect();
    let header = ["ID", "USER", "ENTITIES", "MODE", "CREATED", "EXPIRES", "LAST-USED", "STATUS"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> =
            cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}
