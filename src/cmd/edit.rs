//! `artfs edit`: change the description or metadata of a version.

use anyhow::Result;

use serde::Serialize;

use super::{App, parse_json_object, print_json};

/// `artfs edit --json`: the version's description and metadata now.
#[derive(Debug, Serialize)]
struct EditResult {
    name: String,
    version: String,
    description: Option<String>,
    metadata: serde_json::Value,
}
use crate::terminal::printable;

impl App {
    pub(super) async fn edit(
        &self,
        artifact: &str,
        description: Option<String>,
        metadata: Option<String>,
        merge: Option<String>,
        json: bool,
    ) -> Result<()> {
        let metadata = metadata.as_deref().map(parse_json_object).transpose()?;
        let merge = merge.as_deref().map(parse_json_object).transpose()?;
        if description.is_none() && metadata.is_none() && merge.is_none() {
            usage!("nothing to do: pass --description, --metadata or --merge-metadata");
        }
        let registry = self.registry_to_change().await?;
        let (target, version) = self.version_of(&registry, artifact).await?;
        let r = registry.edit(&target.collection, version, description, metadata, merge).await?;
        if json {
            return print_json(&EditResult {
                name: target.collection.to_string(),
                version: format!("v{version}"),
                description: r.description,
                metadata: r.metadata,
            });
        }
        println!(
            "{}:v{} description: {:?} metadata: {}",
            target.collection,
            version,
            r.description.unwrap_or_default(),
            printable(&r.metadata.to_string())
        );
        Ok(())
    }
}
