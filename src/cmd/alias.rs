//! `artfs alias`: add and remove aliases of a version.

use anyhow::Result;

use super::App;

impl App {
    pub(super) async fn alias(
        &self,
        artifact: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<()> {
        if add.is_empty() && remove.is_empty() {
            usage!("nothing to do: pass --add ALIAS and/or --remove ALIAS");
        }
        let registry = self.registry_to_change().await?;
        let (target, version) = self.version_of(&registry, artifact).await?;
        let aliases = registry.set_aliases(&target.collection, version, add, remove).await?;
        let aliases = crate::terminal::printable(&aliases.join(", ")).into_owned();
        println!("{}:v{} aliases: {aliases}", target.collection, version);
        Ok(())
    }
}
