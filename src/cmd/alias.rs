//! `artfs alias`: add and remove aliases of a version.

use anyhow::Result;

use serde::Serialize;

use super::{App, print_json};

/// `artfs alias --json`: the version and all its aliases now.
#[derive(Debug, Serialize)]
struct AliasResult {
    name: String,
    version: String,
    aliases: Vec<String>,
}

impl App {
    pub(super) async fn alias(
        &self,
        artifact: &str,
        add: &[String],
        remove: &[String],
        json: bool,
    ) -> Result<()> {
        if add.is_empty() && remove.is_empty() {
            usage!("nothing to do: pass --add ALIAS and/or --remove ALIAS");
        }
        let registry = self.registry_to_change().await?;
        let (target, version) = self.version_of(&registry, artifact).await?;
        let aliases = registry.set_aliases(&target.collection, version, add, remove).await?;
        if json {
            let name = target.collection.to_string();
            return print_json(&AliasResult { name, version: format!("v{version}"), aliases });
        }
        let aliases = crate::terminal::printable(&aliases.join(", ")).into_owned();
        println!("{}:v{} aliases: {aliases}", target.collection, version);
        Ok(())
    }
}
