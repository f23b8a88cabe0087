//! `artfs gc`: delete blobs and manifests no version references.

use anyhow::Result;

use super::{App, human_bytes};
use crate::config::parse_duration;

impl App {
    pub(super) async fn gc(&self, grace: &str) -> Result<()> {
        let grace = parse_duration(grace)?;
        let r = self.registry().await?.gc(grace).await?;
        println!(
            "deleted {} blobs ({}) and {} manifests; kept {} unreferenced objects younger than the grace period",
            r.blobs_deleted,
            human_bytes(r.bytes_deleted),
            r.manifests_deleted,
            r.kept_young
        );
        Ok(())
    }
}
