//! `artfs gc`: delete blobs and manifests no version references (asking first on a terminal),
//! or with `--dry-run` print what that would delete.

use anyhow::{Result, bail};
use serde::Serialize;

use super::{App, confirmed, count, human_bytes, print_json};
use crate::config::parse_duration;
use crate::registry::GcReport;

/// The flags of `artfs gc` besides the grace period.
pub(super) struct How {
    pub yes: bool,
    pub json: bool,
    pub dry_run: bool,
}

/// `artfs gc --json`: what was deleted (with `--dry-run`: what would be, and `dry_run: true`) and
/// what was kept for being younger than the grace.
#[derive(Debug, Serialize)]
struct Collected<'a> {
    dry_run: bool,
    expired_versions: &'a [String],
    blobs_deleted: u64,
    manifests_deleted: u64,
    temp_deleted: u64,
    bytes_deleted: u64,
    rounds_deleted: u64,
    upload_parts_deleted: u64,
    drafts_deleted: u64,
    kept_young: u64,
    keys: &'a [String],
}

impl<'a> From<&'a GcReport> for Collected<'a> {
    fn from(r: &'a GcReport) -> Collected<'a> {
        Collected {
            dry_run: r.dry_run,
            expired_versions: &r.expired_versions,
            blobs_deleted: r.blobs_deleted,
            manifests_deleted: r.manifests_deleted,
            temp_deleted: r.temp_deleted,
            bytes_deleted: r.bytes_deleted,
            rounds_deleted: r.rounds_deleted,
            upload_parts_deleted: r.upload_parts_deleted,
            drafts_deleted: r.drafts_deleted,
            kept_young: r.kept_young,
            keys: &r.keys,
        }
    }
}

impl App {
    pub(super) async fn gc(&self, grace_arg: &str, how: How) -> Result<()> {
        let grace = parse_duration(grace_arg)?;
        let registry = self.registry_to_change().await?;
        let r = if how.dry_run {
            registry.gc_dry_run(grace).await?
        } else {
            let question = format!(
                "delete what no version of {} uses and is older than {grace_arg}?",
                self.config.write_registry
            );
            if !confirmed(&question, how.yes)? {
                bail!("nothing deleted");
            }
            registry.gc(grace).await?
        };
        if how.json {
            return print_json(&Collected::from(&r));
        }
        if r.dry_run {
            for v in &r.expired_versions {
                println!("expired {v}");
            }
            for key in &r.keys {
                println!("would delete {key}");
            }
        }
        println!("{}", summary(&r));
        Ok(())
    }
}

/// One line: `deleted 3 blobs, …` (or `would delete …` in a dry run).
fn summary(r: &GcReport) -> String {
    let mut rounds = match r.rounds_deleted {
        0 => String::new(),
        n => format!(", and the records of {}", count(n as usize, "finished parallel round")),
    };
    if r.upload_parts_deleted > 0 {
        let parts = count(r.upload_parts_deleted as usize, "part");
        rounds.push_str(&format!(", and {parts} of abandoned multipart uploads"));
    }
    if r.drafts_deleted > 0 {
        let drafts = count(r.drafts_deleted as usize, "abandoned draft");
        rounds.push_str(&format!(", and the records of {drafts}"));
    }
    let (verb, nothing) = match r.dry_run {
        true => ("would delete", " (dry run: nothing deleted)"),
        false => ("deleted", ""),
    };
    format!(
        "{verb} {}, {} and {} ({}){rounds}; kept {} younger than the grace period{nothing}",
        count(r.blobs_deleted as usize, "blob"),
        count(r.manifests_deleted as usize, "manifest"),
        count(r.temp_deleted as usize, "abandoned temporary file"),
        human_bytes(r.bytes_deleted),
        count(r.kept_young as usize, "unreferenced object"),
    )
}
