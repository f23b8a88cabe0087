//! `artfs get`: download a version into a folder, verified.

use std::path::PathBuf;

use anyhow::Result;

use super::{App, human_bytes};
use crate::cli::RefAccessArgs;
use crate::fetch::Fetcher;
use crate::progress;

impl App {
    pub(super) async fn get(
        &self,
        artifact: &str,
        root: Option<PathBuf>,
        access: &RefAccessArgs,
    ) -> Result<()> {
        let clouds = self.reference_clouds(access)?;
        let registry = self.registry()?;
        let v = self.resolve(&registry, artifact).await?;
        let manifest = registry.manifest(&v).await?;
        let name = format!("{}:v{}", v.collection.name, v.record.version);
        let root = root.unwrap_or_else(|| PathBuf::from("artifacts").join(&name));
        let fetcher = Fetcher::new(
            registry.store().clone(),
            self.cache()?,
            tokio::runtime::Handle::current(),
        )
        .with_clouds(clouds);
        let quiet = self.config.quiet;
        let label = format!("{}:v{}", v.collection, v.record.version);
        let root2 = root.clone();
        let bytes = tokio::task::spawn_blocking(move || {
            let bar = progress::Bytes::new("downloading", manifest.size(), quiet);
            let r = fetcher.download(&label, &manifest, &root2, &|n| bar.inc(n));
            bar.finish();
            r
        })
        .await??;
        if !self.config.quiet {
            eprintln!("{} -> {} ({}, verified)", name, root.display(), human_bytes(bytes));
        }
        println!("{}", root.display());
        Ok(())
    }
}
