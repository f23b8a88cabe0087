//! `artfs log`: stage files, directories and references, then publish a version.

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::{App, count, human_bytes, parse_json_object, print_json};
use crate::cli::LogArgs;
use crate::manifest::Manifest;
use crate::names::CollectionPath;
use crate::registry::parts::Part;
use crate::registry::runs::{RunOp, RunPath};
use crate::registry::{LogOutcome, LogRequest, Registry};
use crate::{progress, refs, stage};

impl App {
    pub(super) async fn log(&self, args: LogArgs) -> Result<()> {
        let target = self.artifact(&args.artifact)?;
        if target.selector.is_some() {
            bail!(
                "`artfs log` takes an artifact name without `:alias`; use --alias to set aliases"
            );
        }
        let metadata = args.metadata.as_deref().map(parse_json_object).transpose()?;
        let run = self.run_of(&args.run)?;
        if let Some(group) = &args.finish {
            return self.finish_group(&args, &target.collection, group, metadata, run).await;
        }
        let stage::Staged { manifest, sources, hashed_files, hashed_bytes, known_files } =
            self.stage(&args).await?;
        let registry = self.registry_for_write().await?;
        let req = LogRequest {
            history_step: None,
            collection: target.collection.clone(),
            artifact_type: args.artifact_type.clone(),
            description: args.description.clone(),
            metadata,
            aliases: args.aliases.clone(),
            manifest,
            sources,
        };
        if let Some(group) = &args.part {
            return self.log_part(&args, &target.collection, &registry, &req, group, run).await;
        }
        let bar = progress::Bytes::new("uploading", 0, self.config.quiet);
        let outcome = tokio::select! {
            outcome = registry.log(&req, &bar) => outcome,
            signal = interrupted() => {
                // The log is dropped mid-way: remove its temporary files and lease, then stop.
                registry.interrupt().await;
                bar.finish();
                bail!("interrupted by {signal}: nothing was published and temporary files were removed");
            }
        };
        bar.finish();
        let outcome = outcome?;
        let counts = (&registry, req.manifest.contents.len(), req.manifest.size());
        let hashing = Some((hashed_files, hashed_bytes, known_files));
        self.log_done(&args, &target.collection, &outcome, run, counts, hashing).await
    }

    /// Hashes the paths, expands the references and merges a `--manifest` into one manifest.
    async fn stage(&self, args: &LogArgs) -> Result<stage::Staged> {
        let quiet = self.config.quiet;
        let (uris, paths): (Vec<String>, Vec<String>) =
            args.paths.iter().cloned().partition(|p| stage::is_reference(p));
        let mut references = Vec::new();
        for arg in &uris {
            let (uri, name) = stage::split_reference_arg(arg);
            let found =
                refs::expand(&self.clouds, uri, name, !args.no_checksum, args.max_objects).await?;
            references.extend(found);
        }
        // Files unchanged since their last log are not read again (`--rehash` reads them all).
        let known = (!args.rehash).then(|| stage::StatCache::open(&self.config.cache_dir));
        let exclude = args.exclude.clone();
        let mut staged = tokio::task::spawn_blocking(move || {
            let mut files = Vec::new();
            for p in &paths {
                files.extend(stage::exclude::apply(p, stage::collect(p)?, &exclude)?);
            }
            let total = files.iter().map(|f| f.size).sum();
            let bar = progress::Bytes::new("hashing", total, quiet);
            let staged = stage::hash_all(files, known.as_ref(), &|n| bar.inc(n));
            bar.finish();
            staged
        })
        .await??;
        if let Some(file) = &args.manifest {
            let bytes =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            let foreign = Manifest::from_json(&bytes)
                .with_context(|| format!("{} is not a valid W&B manifest", file.display()))?;
            for (path, entry) in &foreign.contents {
                if let Some(uri) = &entry.reference {
                    refs::refuse_credentials(uri).with_context(|| format!("entry {path}"))?;
                }
            }
            references.extend(foreign.contents);
        }
        for (path, entry) in references {
            if let Some(prev) = staged.manifest.contents.get(&path)
                && prev.digest != entry.digest
            {
                bail!("entry {path:?} is given twice with different content");
            }
            staged.manifest.contents.insert(path, entry);
        }
        staged.manifest.validate()?;
        Ok(staged)
    }

    /// `artfs log NAME --part GROUP`: one writer's files join the group.
    async fn log_part(
        &self,
        args: &LogArgs,
        collection: &CollectionPath,
        registry: &Registry,
        req: &LogRequest,
        group: &str,
        run: Option<RunPath>,
    ) -> Result<()> {
        let bar = progress::Bytes::new("uploading", 0, self.config.quiet);
        let (round, files, bytes) = tokio::select! {
            r = registry.log_part(req, group, run.as_ref(), &bar) => r?,
            signal = interrupted() => {
                registry.interrupt().await;
                bar.finish();
                bail!("interrupted by {signal}: no part was added and temporary files were removed");
            }
        };
        bar.finish();
        println!(
            "{}: added a part of group {} (round {round}; {}; uploaded {}, {}); `artfs log {} --finish {}` publishes the group",
            collection,
            crate::terminal::printable(group),
            count(req.manifest.contents.len(), "file"),
            count(files as usize, "file"),
            human_bytes(bytes),
            args.artifact,
            crate::terminal::printable(group),
        );
        Ok(())
    }

    /// `artfs log NAME --finish GROUP`: the group's parts become one version.
    async fn finish_group(
        &self,
        args: &LogArgs,
        collection: &CollectionPath,
        group: &str,
        metadata: Option<serde_json::Value>,
        run: Option<RunPath>,
    ) -> Result<()> {
        let registry = self.registry_for_write().await?;
        if !args.aliases.is_empty() {
            let part = Part {
                group: group.to_owned(),
                manifest: None,
                artifact_type: args.artifact_type.clone(),
                aliases: args.aliases.clone(),
                writer: crate::registry::lease::Holder::me().writer,
                created_at: chrono::Utc::now(),
                run: None,
            };
            registry.add_part(collection, &part, None, None).await?;
        }
        let outcome = registry
            .finish_parts(collection, group, None, args.description.clone(), metadata)
            .await?;
        let v =
            registry.resolve(collection, &crate::names::Selector::Version(outcome.version)).await?;
        let counts = (&registry, v.record.file_count as usize, v.record.size);
        // The parts were hashed by the processes that added them.
        self.log_done(args, collection, &outcome, run, counts, None).await
    }

    /// What every log prints, after recording it in the run.
    async fn log_done(
        &self,
        args: &LogArgs,
        collection: &CollectionPath,
        outcome: &LogOutcome,
        run: Option<RunPath>,
        (registry, file_count, size): (&Registry, usize, u64),
        hashing: Option<(u64, u64, u64)>,
    ) -> Result<()> {
        if let Some(run) = &run {
            let op = RunOp::Logged { collection: collection.to_string(), version: outcome.version };
            super::run::note_run(registry, run, args.run.job_type.as_deref(), op).await.context(
                "the version was published, but the run did not record it; log again with the same --run to record it",
            )?;
        }
        if args.json {
            print_json(&json!({
                "name": collection.to_string(),
                "version": format!("v{}", outcome.version),
                "digest": outcome.digest,
                "created": outcome.created,
                "aliases": outcome.aliases,
                "uploaded_files": outcome.uploaded_files,
                "uploaded_bytes": outcome.uploaded_bytes,
                "file_count": file_count,
                "size": size,
                "hashed_files": hashing.map(|h| h.0),
                "hashed_bytes": hashing.map(|h| h.1),
                "unchanged_files_not_read": hashing.map(|h| h.2),
            }))
        } else {
            let what = if outcome.created { "new version" } else { "unchanged, existing version" };
            println!(
                "{}:v{} ({what}; digest {}; aliases {}; uploaded {}, {})",
                collection,
                outcome.version,
                outcome.digest,
                crate::terminal::printable(&outcome.aliases.join(", ")),
                count(outcome.uploaded_files as usize, "file"),
                human_bytes(outcome.uploaded_bytes),
            );
            Ok(())
        }
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, with the signal's name.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) =
        (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}
