//! `artfs show`: one version, optionally with its files.

use anyhow::Result;
use serde_json::json;

use super::{App, human_bytes, print_json};
use crate::refs::redact;
use crate::registry::runs::RunPath;
use crate::source::CatalogExt as _;
use crate::terminal::printable;

impl App {
    pub(super) async fn show(&self, artifact: &str, files: bool, json_out: bool) -> Result<()> {
        let catalog = self.catalog().await?;
        let v = self.resolve(catalog.as_ref(), artifact).await?;
        let manifest = if files { Some(catalog.manifest(&v).await?) } else { None };
        if json_out {
            let mut out = json!({
                "name": v.collection.to_string(),
                "version": format!("v{}", v.record.version),
                "digest": v.record.digest,
                "type": v.artifact_type,
                "aliases": v.aliases,
                "size": v.record.size,
                "file_count": v.record.file_count,
                "description": v.record.description,
                "metadata": v.record.metadata,
                "created_at": v.record.created_at,
                "link_of": v.record.link_of,
                "tags": v.record.tags,
                "ttl_seconds": v.record.ttl_seconds,
            });
            // A source without lineage (W&B) says so with nulls rather than empty lists.
            if let Some(runs) = catalog.runs_of(&v).await? {
                let ids = |runs: &[RunPath]| -> Vec<String> {
                    runs.iter().map(|r| format!("{}/{}/{}", r.entity, r.project, r.name)).collect()
                };
                out["logged_by"] = json!(ids(&runs.logged_by));
                out["used_by"] = json!(ids(&runs.used_by));
            } else {
                out["logged_by"] = serde_json::Value::Null;
                out["used_by"] = serde_json::Value::Null;
            }
            if let Some(m) = &manifest {
                out["entries"] = m
                    .contents
                    .iter()
                    .map(|(p, e)| {
                        // Unchecked references have their URI as digest: redacted as well.
                        let digest = redact(&e.digest);
                        let mut o = json!({"path": p, "digest": digest, "size": e.size});
                        if let Some(r) = &e.reference {
                            o["ref"] = json!(redact(r));
                        }
                        o
                    })
                    .collect();
            }
            return print_json(&out);
        }
        // Everything below comes from the registry: printed through `printable`.
        println!("{}:v{}", v.collection, v.record.version);
        // Only then is the source a surprise: no flag or variable of artfs named the registry.
        if self.config.registry_origin.is_implicit() {
            let origin = self.config.registry_origin.describe();
            println!("  registry:    {} ({origin})", printable(&self.config.registry));
        }
        println!("  type:        {}", printable(&v.artifact_type));
        println!("  digest:      {}", printable(&v.record.digest));
        println!("  aliases:     {}", printable(&v.aliases.join(", ")));
        println!("  size:        {} in {} files", human_bytes(v.record.size), v.record.file_count);
        println!("  created:     {}", v.record.created_at.format("%Y-%m-%d %H:%M:%S UTC"));
        if let Some(source) = &v.record.link_of {
            println!("  link of:     {}", printable(source));
        }
        println!("  description: {}", printable(v.record.description.as_deref().unwrap_or("")));
        println!("  metadata:    {}", printable(&v.record.metadata.to_string()));
        println!("  tags:        {}", printable(&v.record.tags.join(", ")));
        if let Some(s) = v.record.ttl_seconds {
            let expires = v.record.created_at + chrono::Duration::seconds(s as i64);
            println!("  ttl:         {s}s (expires {})", expires.format("%Y-%m-%d %H:%M:%S UTC"));
        }
        if let Some(m) = manifest {
            println!("  files:");
            for (p, e) in &m.contents {
                let size = e.size.map(human_bytes).unwrap_or_else(|| "?".into());
                let digest = redact(&e.digest);
                let (p, digest) = (printable(p), printable(&digest));
                match &e.reference {
                    Some(r) => println!("    {p}  {size}  {digest}  -> {}", printable(&redact(r))),
                    None => println!("    {p}  {size}  {digest}"),
                }
            }
        }
        Ok(())
    }
}
