//! `artfs versions`: every version of an artifact.

use anyhow::Result;
use serde_json::{Value, json};

use super::{App, human_bytes, print_json};
use crate::terminal::printable;

impl App {
    pub(super) async fn versions(&self, artifact: &str, json_out: bool) -> Result<()> {
        // The catalog first: a W&B server decides the default entity.
        let catalog = self.catalog().await?;
        let target = self.artifact(artifact)?;
        let state = catalog.existing_collection(&target.collection).await?;
        let rows: Vec<Value> = state
            .versions
            .values()
            .map(|v| {
                json!({
                    "version": format!("v{}", v.version),
                    "digest": v.digest,
                    "aliases": state.aliases_of(v.version),
                    "size": v.size,
                    "file_count": v.file_count,
                    "created_at": v.created_at,
                    "description": v.description,
                })
            })
            .collect();
        if json_out {
            return print_json(&Value::Array(rows));
        }
        println!(
            "{:<6} {:<32} {:>10} {:<20} {:<24} DESCRIPTION",
            "VER", "DIGEST", "SIZE", "CREATED", "ALIASES"
        );
        for v in state.versions.values() {
            println!(
                "{:<6} {:<32} {:>10} {:<20} {:<24} {}",
                format!("v{}", v.version),
                printable(&v.digest),
                human_bytes(v.size),
                v.created_at.format("%Y-%m-%d %H:%M:%S"),
                printable(&state.aliases_of(v.version).join(",")),
                printable(v.description.as_deref().unwrap_or("")),
            );
        }
        Ok(())
    }
}
