//! `artfs ls`: the artifacts of a project.

use anyhow::Result;
use serde_json::{Value, json};

use super::{App, human_bytes, print_json};
use crate::source::CatalogExt as _;
use crate::terminal::printable;

impl App {
    pub(super) async fn ls(&self, scope: Option<String>, json_out: bool) -> Result<()> {
        let (entity, project) = self.project_scope(scope.as_deref())?;
        let summaries = self.catalog().await?.summaries(&entity, &project).await?;
        if json_out {
            let items: Vec<Value> = summaries
                .iter()
                .map(|s| {
                    json!({
                        "name": s.collection.to_string(),
                        "type": s.artifact_type,
                        "versions": s.versions,
                        "latest": s.latest.as_ref().map(|v| format!("v{}", v.version)),
                        "size": s.latest.as_ref().map(|v| v.size),
                    })
                })
                .collect();
            return print_json(&Value::Array(items));
        }
        if summaries.is_empty() {
            eprintln!("no artifacts in {entity}/{project} (registry {})", self.config.registry);
            return Ok(());
        }
        println!("{:<40} {:<10} {:>8} {:>7} {:>10}", "NAME", "TYPE", "VERSIONS", "LATEST", "SIZE");
        for s in summaries {
            let (latest, size) = match &s.latest {
                Some(v) => (format!("v{}", v.version), human_bytes(v.size)),
                None => ("-".into(), "-".into()),
            };
            println!(
                "{:<40} {:<10} {:>8} {:>7} {:>10}",
                printable(&s.collection.name),
                printable(&s.artifact_type),
                s.versions,
                latest,
                size
            );
        }
        Ok(())
    }
}
