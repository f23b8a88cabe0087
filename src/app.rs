//! The subcommands: glue between the CLI and the library (the only place, with `main`, that uses
//! `anyhow`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::cache::{BlobCache, default_max_bytes};
use crate::cli::{CacheCommand, Cli, Command, LogArgs, MountArgs};
use crate::config::{Config, MountConfig, default_mount_log, parse_duration, parse_size};
use crate::fetch::Fetcher;
use crate::fs::{ArtifactFs, FsOptions};
use crate::manifest::Manifest;
use crate::mount;
use crate::names::{ArtifactRef, Selector};
use crate::registry::{LogRequest, Registry, ResolvedVersion};
use crate::store::{Store, cloud::Clouds};
use crate::{progress, refs, stage};

pub fn run(cli: Cli) -> Result<()> {
    let config = Config::try_from(&cli.global)?;
    init_tracing(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let app = App { config, clouds: Clouds::from_env() };
    match cli.command {
        Command::Cache { command } => app.cache_command(command),
        // FUSE request threads block on the runtime, so the mount is served outside it.
        Command::Mount(args) => app.mount(&args, runtime),
        command => runtime.block_on(app.dispatch(command)),
    }
}

fn init_tracing(config: &Config) {
    let level = match (config.quiet, config.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ARTFS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("artfs={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // No colour codes in the mount daemon's log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

struct App {
    config: Config,
    clouds: Clouds,
}

impl App {
    fn registry(&self) -> Result<Registry> {
        let store = Store::open(&self.config.registry, &self.clouds)?;
        Ok(Registry::new(store))
    }

    fn cache(&self) -> Result<BlobCache> {
        let dir = &self.config.cache_dir;
        let size = self.config.cache_size.unwrap_or_else(|| default_max_bytes(dir));
        BlobCache::open(&self.config.cache_dir, size).with_context(|| {
            format!("cannot open the cache at {}", self.config.cache_dir.display())
        })
    }

    fn artifact(&self, s: &str) -> Result<ArtifactRef> {
        Ok(ArtifactRef::parse(s, &self.config.entity, &self.config.project)?)
    }

    async fn dispatch(&self, command: Command) -> Result<()> {
        match command {
            Command::Log(args) => self.log(args).await,
            Command::Ls { scope, json } => self.ls(scope, json).await,
            Command::Versions { artifact, json } => self.versions(&artifact, json).await,
            Command::Show { artifact, files, json } => self.show(&artifact, files, json).await,
            Command::Get { artifact, root } => self.get(&artifact, root).await,
            Command::Alias { artifact, add, remove } => self.alias(&artifact, &add, &remove).await,
            Command::Edit { artifact, description, metadata, merge_metadata } => {
                self.edit(&artifact, description, metadata, merge_metadata).await
            }
            Command::Rm { artifact, delete_aliases, unaliased } => {
                self.rm(&artifact, delete_aliases, unaliased).await
            }
            Command::Gc { grace } => self.gc(&grace).await,
            Command::Cache { command } => self.cache_command(command),
            Command::Mount(_) => bail!("`artfs mount` cannot run inside the async runtime"),
            Command::Serve(args) => self.serve(&args).await,
            Command::Key { command } => self.key(command).await,
            Command::Unmount { mountpoint, lazy } => {
                let mountpoint = mount::absolute_mountpoint(&mountpoint)?;
                Ok(mount::unmount(&mountpoint, lazy)?)
            }
        }
    }

    /// `artfs serve`: binds, prints the address (first stdout line), serves until a signal.
    async fn serve(&self, args: &crate::cli::ServeArgs) -> Result<()> {
        let opts = crate::serve::ServeOptions {
            public_url: args.public_url.clone(),
            url_ttl: parse_duration(&args.url_ttl)?,
        };
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        println!("listening on http://{}", listener.local_addr()?);
        std::io::stdout().flush()?;
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        };
        Ok(crate::serve::serve(opts, self.registry()?, listener, shutdown).await?)
    }

    /// `artfs key create`: prints the new key once.
    async fn key(&self, command: crate::cli::KeyCommand) -> Result<()> {
        let crate::cli::KeyCommand::Create { user, entities, read_only } = command;
        let (secret, record) = self.registry()?.create_key(&user, &entities, read_only).await?;
        println!("{secret}");
        if !self.config.quiet {
            let mode = if record.read_only { "read-only" } else { "read-write" };
            eprintln!(
                "key for {user} ({mode}, entities: {}); it is not shown again",
                record.entities.join(", ")
            );
        }
        Ok(())
    }

    /// `artfs mount`: starts the daemon and waits for the mount, or (`--foreground`) is it.
    fn mount(&self, args: &MountArgs, runtime: tokio::runtime::Runtime) -> Result<()> {
        let mc = MountConfig::try_from(args)?;
        let mountpoint = mount::absolute_mountpoint(&mc.mountpoint)?;
        let artifact = mc.artifact.as_deref().map(|a| self.artifact(a)).transpose()?;
        mount::check_mountpoint(&mountpoint)?;
        let what = match &artifact {
            Some(a) => format!("{}:{}", a.collection, a.selector_or_latest()),
            None => format!("registry {}", self.config.registry),
        };
        if !mc.foreground {
            let log = match mc.log_file.clone().or_else(|| default_mount_log(&mountpoint)) {
                Some(log) => log,
                None => bail!("cannot find a directory for the mount log; pass --log-file"),
            };
            let pid = mount::spawn_daemon(&log, &mountpoint, mount::MOUNT_READY_TIMEOUT)?;
            if !self.config.quiet {
                eprintln!(
                    "mounted {what} at {} (daemon pid {pid}, log {})",
                    mountpoint.display(),
                    log.display()
                );
            }
            return Ok(());
        }
        let registry = self.registry()?;
        let handle = runtime.handle().clone();
        let fetcher = Fetcher::new(registry.store().clone(), self.cache()?, handle.clone());
        let options = FsOptions {
            refresh: mc.refresh,
            readahead_files: mc.readahead_files,
            ..FsOptions::default()
        };
        let fs = match &artifact {
            None => ArtifactFs::registry(registry, fetcher, handle, options),
            Some(a) => {
                let version =
                    runtime.block_on(registry.resolve(&a.collection, &a.selector_or_latest()))?;
                ArtifactFs::single(registry, fetcher, handle, options, &version)
                    .with_context(|| format!("cannot mount {what}"))?
            }
        };
        mount::serve(fs, &mountpoint, mc.allow_other, mc.passthrough, &runtime)?;
        // Bounded: a download stuck in the runtime's blocking pool must not keep us alive.
        runtime.shutdown_timeout(mount::SHUTDOWN_GRACE);
        Ok(())
    }

    async fn log(&self, args: LogArgs) -> Result<()> {
        let target = self.artifact(&args.artifact)?;
        if target.selector.is_some() {
            bail!(
                "`artfs log` takes an artifact name without `:alias`; use --alias to set aliases"
            );
        }
        let metadata = args.metadata.as_deref().map(parse_json_object).transpose()?;
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
        let (mut manifest, sources) = tokio::task::spawn_blocking(move || {
            let mut files = Vec::new();
            for p in &paths {
                files.extend(stage::collect(p)?);
            }
            let total = files.iter().map(|f| f.size).sum();
            let bar = progress::Bytes::new("hashing", total, quiet);
            let staged = stage::hash_all(files, &|n| bar.inc(n));
            bar.finish();
            staged
        })
        .await??;
        if let Some(file) = &args.manifest {
            let bytes =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            let foreign = Manifest::from_json(&bytes)
                .with_context(|| format!("{} is not a valid W&B manifest", file.display()))?;
            references.extend(foreign.contents);
        }
        for (path, entry) in references {
            if let Some(prev) = manifest.contents.get(&path)
                && prev.digest != entry.digest
            {
                bail!("entry {path:?} is given twice with different content");
            }
            manifest.contents.insert(path, entry);
        }
        manifest.validate()?;
        let registry = self.registry()?;
        let req = LogRequest {
            collection: target.collection.clone(),
            artifact_type: args.artifact_type,
            description: args.description,
            metadata,
            aliases: args.aliases,
            manifest,
            sources,
        };
        let bar = progress::Bytes::new("uploading", 0, quiet);
        let outcome = registry.log(&req, &bar).await;
        bar.finish();
        let outcome = outcome?;
        if args.json {
            print_json(&json!({
                "name": target.collection.to_string(),
                "version": format!("v{}", outcome.version),
                "digest": outcome.digest,
                "created": outcome.created,
                "aliases": outcome.aliases,
                "uploaded_files": outcome.uploaded_files,
                "uploaded_bytes": outcome.uploaded_bytes,
                "file_count": req.manifest.contents.len(),
                "size": req.manifest.size(),
            }))
        } else {
            let what = if outcome.created { "new version" } else { "unchanged, existing version" };
            println!(
                "{}:v{} ({what}; digest {}; aliases {}; uploaded {} files, {})",
                target.collection,
                outcome.version,
                outcome.digest,
                outcome.aliases.join(", "),
                outcome.uploaded_files,
                human_bytes(outcome.uploaded_bytes),
            );
            Ok(())
        }
    }

    async fn ls(&self, scope: Option<String>, json_out: bool) -> Result<()> {
        let (entity, project) = match scope.as_deref().map(|s| s.split('/').collect::<Vec<_>>()) {
            None => (self.config.entity.clone(), self.config.project.clone()),
            Some(parts) => match parts.as_slice() {
                [p] => (self.config.entity.clone(), p.to_string()),
                [e, p] => (e.to_string(), p.to_string()),
                _ => bail!(
                    "expected `entity/project` or `project`, got {:?}",
                    scope.unwrap_or_default()
                ),
            },
        };
        let summaries = self.registry()?.summaries(&entity, &project).await?;
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
                s.collection.name, s.artifact_type, s.versions, latest, size
            );
        }
        Ok(())
    }

    async fn versions(&self, artifact: &str, json_out: bool) -> Result<()> {
        let target = self.artifact(artifact)?;
        let state = self.registry()?.existing_state(&target.collection).await?;
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
                v.digest,
                human_bytes(v.size),
                v.created_at.format("%Y-%m-%d %H:%M:%S"),
                state.aliases_of(v.version).join(","),
                v.description.as_deref().unwrap_or(""),
            );
        }
        Ok(())
    }

    async fn resolve(&self, registry: &Registry, artifact: &str) -> Result<ResolvedVersion> {
        let target = self.artifact(artifact)?;
        Ok(registry.resolve(&target.collection, &target.selector_or_latest()).await?)
    }

    async fn show(&self, artifact: &str, files: bool, json_out: bool) -> Result<()> {
        let registry = self.registry()?;
        let v = self.resolve(&registry, artifact).await?;
        let manifest = if files { Some(registry.manifest(&v).await?) } else { None };
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
            });
            if let Some(m) = &manifest {
                out["entries"] = m
                    .contents
                    .iter()
                    .map(|(p, e)| {
                        let mut o = json!({"path": p, "digest": e.digest, "size": e.size});
                        if let Some(r) = &e.reference {
                            o["ref"] = json!(r);
                        }
                        o
                    })
                    .collect();
            }
            return print_json(&out);
        }
        println!("{}:v{}", v.collection, v.record.version);
        println!("  type:        {}", v.artifact_type);
        println!("  digest:      {}", v.record.digest);
        println!("  aliases:     {}", v.aliases.join(", "));
        println!("  size:        {} in {} files", human_bytes(v.record.size), v.record.file_count);
        println!("  created:     {}", v.record.created_at.format("%Y-%m-%d %H:%M:%S UTC"));
        println!("  description: {}", v.record.description.as_deref().unwrap_or(""));
        println!("  metadata:    {}", v.record.metadata);
        if let Some(m) = manifest {
            println!("  files:");
            for (p, e) in &m.contents {
                let size = e.size.map(human_bytes).unwrap_or_else(|| "?".into());
                match &e.reference {
                    Some(r) => println!("    {p}  {size}  {}  -> {r}", e.digest),
                    None => println!("    {p}  {size}  {}", e.digest),
                }
            }
        }
        Ok(())
    }

    async fn get(&self, artifact: &str, root: Option<PathBuf>) -> Result<()> {
        let registry = self.registry()?;
        let v = self.resolve(&registry, artifact).await?;
        let manifest = registry.manifest(&v).await?;
        let name = format!("{}:v{}", v.collection.name, v.record.version);
        let root = root.unwrap_or_else(|| PathBuf::from("artifacts").join(&name));
        let fetcher = Fetcher::new(
            registry.store().clone(),
            self.cache()?,
            tokio::runtime::Handle::current(),
        );
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

    async fn version_of(&self, registry: &Registry, artifact: &str) -> Result<(ArtifactRef, u32)> {
        let target = self.artifact(artifact)?;
        let Some(selector) = &target.selector else {
            bail!("{artifact}: name a version, e.g. {artifact}:v0 or {artifact}:latest");
        };
        let version = match selector {
            Selector::Version(v) => *v,
            alias => registry.resolve(&target.collection, alias).await?.record.version,
        };
        Ok((target, version))
    }

    async fn alias(&self, artifact: &str, add: &[String], remove: &[String]) -> Result<()> {
        if add.is_empty() && remove.is_empty() {
            bail!("nothing to do: pass --add ALIAS and/or --remove ALIAS");
        }
        let registry = self.registry()?;
        let (target, version) = self.version_of(&registry, artifact).await?;
        let aliases = registry.set_aliases(&target.collection, version, add, remove).await?;
        println!("{}:v{} aliases: {}", target.collection, version, aliases.join(", "));
        Ok(())
    }

    async fn edit(
        &self,
        artifact: &str,
        description: Option<String>,
        metadata: Option<String>,
        merge: Option<String>,
    ) -> Result<()> {
        let metadata = metadata.as_deref().map(parse_json_object).transpose()?;
        let merge = merge.as_deref().map(parse_json_object).transpose()?;
        if description.is_none() && metadata.is_none() && merge.is_none() {
            bail!("nothing to do: pass --description, --metadata or --merge-metadata");
        }
        let registry = self.registry()?;
        let (target, version) = self.version_of(&registry, artifact).await?;
        let r = registry.edit(&target.collection, version, description, metadata, merge).await?;
        println!(
            "{}:v{} description: {:?} metadata: {}",
            target.collection,
            version,
            r.description.unwrap_or_default(),
            r.metadata
        );
        Ok(())
    }

    async fn rm(&self, artifact: &str, delete_aliases: bool, unaliased: bool) -> Result<()> {
        let registry = self.registry()?;
        if unaliased {
            let target = self.artifact(artifact)?;
            if target.selector.is_some() {
                bail!("--unaliased takes an artifact name without `:version`");
            }
            let deleted = registry.delete_unaliased(&target.collection).await?;
            let list: Vec<String> = deleted.iter().map(|v| format!("v{v}")).collect();
            println!(
                "{}: deleted {} versions {}",
                target.collection,
                deleted.len(),
                list.join(" ")
            );
            return Ok(());
        }
        let (target, version) = self.version_of(&registry, artifact).await?;
        registry.delete_version(&target.collection, version, delete_aliases).await?;
        println!("{}:v{} deleted (run `artfs gc` to free its storage)", target.collection, version);
        Ok(())
    }

    async fn gc(&self, grace: &str) -> Result<()> {
        let grace = parse_duration(grace)?;
        let r = self.registry()?.gc(grace).await?;
        println!(
            "deleted {} blobs ({}) and {} manifests; kept {} unreferenced objects younger than the grace period",
            r.blobs_deleted,
            human_bytes(r.bytes_deleted),
            r.manifests_deleted,
            r.kept_young
        );
        Ok(())
    }

    fn cache_command(&self, command: CacheCommand) -> Result<()> {
        let cache = self.cache()?;
        match command {
            CacheCommand::Stats { json: json_out } => {
                let s = cache.stats()?;
                if json_out {
                    return print_json(&json!({
                        "dir": s.dir, "max_bytes": s.max_bytes, "entries": s.entries,
                        "bytes": s.bytes, "hits": s.hits, "misses": s.misses, "evictions": s.evictions,
                    }));
                }
                println!("cache:     {}", s.dir.display());
                println!("entries:   {}", s.entries);
                println!("size:      {} of {}", human_bytes(s.bytes), human_bytes(s.max_bytes));
                println!("hits:      {}", s.hits);
                println!("misses:    {}", s.misses);
                println!("evictions: {}", s.evictions);
            }
            CacheCommand::Prune { to } => {
                let r = cache.prune(parse_size(&to)?)?;
                println!(
                    "evicted {} entries ({}); {} in use; {} entries ({}) remain",
                    r.evicted_entries,
                    human_bytes(r.evicted_bytes),
                    r.in_use_entries,
                    r.remaining_entries,
                    human_bytes(r.remaining_bytes)
                );
            }
            CacheCommand::Clear => {
                let r = cache.clear()?;
                println!(
                    "removed {} entries ({}); {} in use were kept",
                    r.evicted_entries,
                    human_bytes(r.evicted_bytes),
                    r.in_use_entries
                );
            }
        }
        Ok(())
    }
}

/// A JSON object given inline or as `@file`.
fn parse_json_object(s: &str) -> Result<Value> {
    let text = match s.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?
        }
        None => s.to_owned(),
    };
    let v: Value = serde_json::from_str(&text).with_context(|| format!("invalid JSON: {text}"))?;
    if !v.is_object() {
        bail!("metadata must be a JSON object, got {v}");
    }
    Ok(v)
}

fn print_json(v: &Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[unit]) }
}
