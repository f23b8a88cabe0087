//! `artfs rm`: delete one version, or every unaliased one; `--dry-run` says what would go, and
//! `--unaliased` asks first on a terminal.

use anyhow::{Result, bail};
use serde::Serialize;

use super::{App, confirmed, count, print_json};

/// How `rm` goes about it (flags).
#[derive(Debug, Clone, Copy)]
pub(super) struct How {
    pub delete_aliases: bool,
    pub dry_run: bool,
    pub yes: bool,
    pub json: bool,
}

/// `artfs rm --json`: what was (or, with `--dry-run`, would be) deleted.
#[derive(Debug, Serialize)]
struct Removed {
    name: String,
    deleted: Vec<String>,
    dry_run: bool,
    /// The version `latest` names afterwards (one version deleted, not a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    latest: Option<String>,
}

impl App {
    pub(super) async fn rm(&self, artifact: &str, how: How) -> Result<()> {
        let registry = self.registry_to_change().await?;
        let (target, version) = self.version_of(&registry, artifact).await?;
        let name = target.collection.to_string();
        if how.dry_run {
            // The same check the deletion makes, without committing anything.
            let state = registry.existing_state(&target.collection).await?;
            let aliases = state.aliases_of(version);
            if !state.versions.contains_key(&version) {
                bail!("{name} has no version v{version}");
            }
            if !aliases.is_empty() && !how.delete_aliases {
                bail!(
                    "{name}:v{version} has aliases ({}); pass --delete-aliases",
                    aliases.join(", ")
                );
            }
            return self.removed(
                Removed { name, deleted: vec![format!("v{version}")], dry_run: true, latest: None },
                how,
            );
        }
        let latest =
            registry.delete_version(&target.collection, version, how.delete_aliases).await?;
        if how.json {
            let latest = latest.map(|v| format!("v{v}"));
            return print_json(&Removed {
                name,
                deleted: vec![format!("v{version}")],
                dry_run: false,
                latest,
            });
        }
        let latest = match latest {
            Some(v) => format!("`latest` names v{v}"),
            None => "no version is `latest`".to_owned(),
        };
        println!("{name}:v{version} deleted; {latest} (run `artfs gc` to free its storage)");
        Ok(())
    }

    pub(super) async fn rm_unaliased(&self, artifact: &str, how: How) -> Result<()> {
        let registry = self.registry_to_change().await?;
        let target = self.artifact(artifact)?;
        if target.selector.is_some() {
            usage!("--unaliased takes an artifact name without `:version`");
        }
        let c = &target.collection;
        let state = registry.existing_state(c).await?;
        let doomed: Vec<String> = state
            .versions
            .keys()
            .filter(|v| state.aliases_of(**v).is_empty())
            .map(|v| format!("v{v}"))
            .collect();
        let name = c.to_string();
        if how.dry_run {
            return self
                .removed(Removed { name, deleted: doomed, dry_run: true, latest: None }, how);
        }
        if !doomed.is_empty() {
            let question = format!(
                "delete {} of {name}: {}?",
                count(doomed.len(), "version"),
                doomed.join(" ")
            );
            if !confirmed(&question, how.yes)? {
                bail!("nothing deleted");
            }
        }
        let deleted: Vec<String> =
            registry.delete_unaliased(c).await?.iter().map(|v| format!("v{v}")).collect();
        self.removed(Removed { name, deleted, dry_run: false, latest: None }, how)
    }

    fn removed(&self, r: Removed, how: How) -> Result<()> {
        if how.json {
            return print_json(&r);
        }
        let verb = if r.dry_run { "would delete" } else { "deleted" };
        println!(
            "{}: {verb} {} {}",
            r.name,
            count(r.deleted.len(), "version"),
            r.deleted.join(" ")
        );
        Ok(())
    }
}
