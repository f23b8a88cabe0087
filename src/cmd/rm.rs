//! `artfs rm`: delete one version, or every unaliased one.

use anyhow::Result;

use super::{App, count};

impl App {
    pub(super) async fn rm(
        &self,
        artifact: &str,
        delete_aliases: bool,
        unaliased: bool,
    ) -> Result<()> {
        let registry = self.registry_to_change().await?;
        if unaliased {
            let target = self.artifact(artifact)?;
            if target.selector.is_some() {
                usage!("--unaliased takes an artifact name without `:version`");
            }
            let deleted = registry.delete_unaliased(&target.collection).await?;
            let list: Vec<String> = deleted.iter().map(|v| format!("v{v}")).collect();
            println!(
                "{}: deleted {} {}",
                target.collection,
                count(deleted.len(), "version"),
                list.join(" ")
            );
            return Ok(());
        }
        let (target, version) = self.version_of(&registry, artifact).await?;
        let latest = registry.delete_version(&target.collection, version, delete_aliases).await?;
        let latest = match latest {
            Some(v) => format!("`latest` names v{v}"),
            None => "no version is `latest`".to_owned(),
        };
        println!(
            "{}:v{version} deleted; {latest} (run `artfs gc` to free its storage)",
            target.collection
        );
        Ok(())
    }
}
