//! `artfs gc`: delete blobs and manifests no version references.

use anyhow::Result;

use super::{App, count, human_bytes};
use crate::config::parse_duration;

impl App {
    pub(super) async fn gc(&self, grace: &str) -> Result<()> {
        let grace = parse_duration(grace)?;
        let r = self.registry_to_change().await?.gc(grace).await?;
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
