//! `artfs gc`: delete blobs and manifests no version references (asking first on a terminal).

use anyhow::{Result, bail};
use serde::Serialize;

use super::{App, confirmed, count, human_bytes, print_json};
use crate::config::parse_duration;
use crate::registry::GcReport;

/// `artfs gc --json`: what was deleted and what was kept for being younger than the grace.
#[derive(Debug, Serialize)]
struct Collected {
    blobs_deleted: u64,
    manifests_deleted: u64,
    temp_deleted: u64,
    bytes_deleted: u64,
    rounds_deleted: u64,
    upload_parts_deleted: u64,
    kept_young: u64,
}

impl From<&GcReport> for Collected {
    fn from(r: &GcReport) -> Collected {
        Collected {
            blobs_deleted: r.blobs_deleted,
            manifests_deleted: r.manifests_deleted,
            temp_deleted: r.temp_deleted,
            bytes_deleted: r.bytes_deleted,
            rounds_deleted: r.rounds_deleted,
            upload_parts_deleted: r.upload_parts_deleted,
            kept_young: r.kept_young,
        }
    }
}

impl App {
    pub(super) async fn gc(&self, grace_arg: &str, yes: bool, json: bool) -> Result<()> {
        let grace = parse_duration(grace_arg)?;
        let registry = self.registry_to_change().await?;
        let question = format!(
            "delete what no version of {} uses and is older than {grace_arg}?",
            self.config.write_registry
        );
        if !confirmed(&question, yes)? {
            bail!("nothing deleted");
        }
        let r = registry.gc(grace).await?;
        if json {
            return print_json(&Collected::from(&r));
        }
        let mut rounds = match r.rounds_deleted {
            0 => String::new(),
            n => format!(", and the records of {}", count(n as usize, "finished parallel round")),
        };
        if r.upload_parts_deleted > 0 {
            let parts = count(r.upload_parts_deleted as usize, "part");
            rounds.push_str(&format!(", and {parts} of abandoned multipart uploads"));
        }
        println!(
            "deleted {}, {} and {} ({}){rounds}; kept {} younger than the grace period",
            count(r.blobs_deleted as usize, "blob"),
            count(r.manifests_deleted as usize, "manifest"),
            count(r.temp_deleted as usize, "abandoned temporary file"),
            human_bytes(r.bytes_deleted),
            count(r.kept_young as usize, "unreferenced object"),
        );
        Ok(())
    }
}
