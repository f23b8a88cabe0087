//! The subcommands: glue between the CLI and the library (the only place, with `main`, that uses
//! `anyhow`). One file per subcommand; this file holds `run`, the dispatch and shared helpers.

/// `bail!` for arguments that cannot work as given: exit status 2, as clap's own usage errors.
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err($crate::cmd::exit::CliError::Usage(format!($($arg)*)).into())
    };
}

mod alias;
mod cache;
mod edit;
pub mod exit;
mod gc;
mod get;
mod get_preflight;
mod help;
mod key;
mod lineage;
mod log;
mod ls;
mod mount;
mod orgs;
mod prefetch;
pub mod reader;
mod rm;
mod run;
mod runs;
mod serve;
mod show;
mod tag;
mod versions;

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::cache::{BlobCache, default_max_bytes};
use crate::cli::{Cli, Command, RefAccessArgs};
use crate::config::{Config, ConfigError};
use crate::http::NetConfig;
use crate::names::{ArtifactRef, Selector};
use crate::registry::Registry;
use crate::source::registry::RegistrySource;
use crate::source::wandb::{self, WandbSource};
use crate::source::{Catalog, ResolvedVersion};
use crate::store::cloud::{CloudConfig, Clouds};
use crate::store::{Store, guard::RefAccess};
use exit::CliError;

pub fn run(cli: Cli) -> Result<()> {
    // Generated from the flags alone: no settings, no registry.
    match &cli.command {
        Command::Completions { shell } => return help::completions(*shell),
        Command::Man => return help::man(),
        _ => {}
    }
    let profile =
        crate::profile::select(cli.global.profile.as_deref()).map_err(ConfigError::from)?;
    let config = Config::resolve(&cli.global, &profile)?;
    init_tracing(&config);
    tracing::info!("registry {} ({})", config.registry, config.registry_origin.describe());
    if config.write_registry != config.registry {
        tracing::info!(
            "writes go to registry {} ({})",
            config.write_registry,
            config.write_origin.describe()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let app = App::new(config);
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
        // `artfs serve`'s access log is on unless --access-log off says otherwise.
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(format!("artfs={level},artfs::access=info"))
        });
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
    /// The W&B server's word for the default entity (the key's own), once `catalog` asked it.
    viewer_entity: std::sync::OnceLock<String>,
}

impl App {
    fn new(config: Config) -> App {
        App { config, clouds: Clouds::from_env(), viewer_entity: std::sync::OnceLock::new() }
    }

    /// The entity of paths that name none: as configured, or for a W&B server without
    /// `--entity`, the API key's own (as the SDK does), once `catalog` has asked for it.
    fn entity(&self) -> &str {
        self.viewer_entity.get().unwrap_or(&self.config.entity)
    }

    /// `entity/project`, `project` (in the default entity) or nothing (the default project).
    fn project_scope(&self, scope: Option<&str>) -> Result<(String, String)> {
        let Some(scope) = scope else {
            return Ok((self.entity().to_owned(), self.config.project.clone()));
        };
        match scope.split('/').collect::<Vec<_>>().as_slice() {
            [p] => Ok((self.entity().to_owned(), p.to_string())),
            [e, p] => Ok((e.to_string(), p.to_string())),
            _ => usage!("expected `entity/project` or `project`, got {scope:?}"),
        }
    }

    /// The registry at the configured URL, which must exist: reading (or changing) a mistyped
    /// URL says there is no registry there rather than creating an empty one.
    async fn registry(&self) -> Result<Registry> {
        let (url, origin) = (&self.config.registry, self.config.registry_origin.clone());
        let store = Store::open_existing(url, &self.clouds)?;
        let registry = store.map(Registry::new);
        let hint = match WandbSource::base_url(url) {
            Some(_) => {
                "a W&B server is read by `ls`, `versions`, `show`, `get`, `prefetch` and `mount` only"
            }
            None => "check --registry or ARTFS_REGISTRY; `artfs log` creates one",
        };
        match registry {
            Some(r) if r.exists().await? => Ok(r),
            _ => Err(CliError::NoRegistry { url: url.clone(), origin, hint }.into()),
        }
    }

    /// The existing registry that a change (alias, edit, rm, gc, ...) goes to: never a W&B
    /// server, whatever `WANDB_BASE_URL` says.
    async fn registry_to_change(&self) -> Result<Registry> {
        self.refuse_read_only()?;
        let (url, origin) = (&self.config.write_registry, self.config.write_origin.clone());
        let registry = Store::open_existing(url, &self.clouds)?.map(Registry::new);
        match registry {
            Some(r) if r.exists().await? => Ok(r),
            _ => Err(CliError::NoRegistry {
                url: url.clone(),
                origin,
                hint: "check --registry or ARTFS_REGISTRY; `artfs log` creates one",
            }
            .into()),
        }
    }

    /// A W&B server, or an artfs registry served over HTTP, takes no writes from here.
    fn refuse_read_only(&self) -> Result<()> {
        let url = &self.config.write_registry;
        if WandbSource::base_url(url).is_some() {
            return Err(CliError::ReadOnly {
                url: url.clone(),
                origin: self.config.write_origin.clone(),
            }
            .into());
        }
        Ok(())
    }

    /// Where the read commands and the mount find versions: the artfs registry at the configured
    /// URL, or, for an `http(s)://` URL that holds none (or `wandb://HOST`), the W&B server there.
    async fn catalog(&self) -> Result<Arc<dyn Catalog>> {
        let url = &self.config.registry;
        let Some(base) = WandbSource::base_url(url) else {
            return Ok(Arc::new(RegistrySource::new(self.registry().await?)));
        };
        if !url.starts_with("wandb://")
            && let Ok(Some(store)) = Store::open_existing(url, &self.clouds)
        {
            let registry = Registry::new(store);
            match registry.exists().await {
                Ok(true) => return Ok(Arc::new(RegistrySource::new(registry))),
                // Silent: asking it again as a W&B server would only wait as long once more.
                Err(e) if crate::http::timed_out(&e) => {
                    let origin = self.config.registry_origin.describe();
                    return Err(anyhow::Error::new(e).context(format!(
                        "{url} ({origin}) took the connection but did not answer; check that \
                         the server is up and that --registry or ARTFS_REGISTRY names it"
                    )));
                }
                _ => {}
            }
        }
        let key = wandb::auth::find(&base, &|var| std::env::var(var).ok());
        if let Some((_, origin)) = &key {
            tracing::info!(%origin, "W&B API key found");
        }
        let client = wandb::Client::new(base, key.map(|(k, _)| k), NetConfig::default())?;
        let source = WandbSource::new(client);
        let viewer =
            source.probe().await.map_err(crate::source::SourceError::from).with_context(|| {
                format!(
                    "{url} is neither an artfs registry nor a W&B server (check --registry or \
                     ARTFS_REGISTRY)"
                )
            })?;
        if let Some(entity) = viewer.filter(|_| !self.config.entity_given) {
            tracing::info!(%entity, "default entity: the API key's own");
            let _ = self.viewer_entity.set(entity);
        }
        Ok(Arc::new(source))
    }

    /// The registry at the configured URL, created (with its marker) if there is none: only
    /// `artfs log` creates a registry.
    async fn registry_for_write(&self) -> Result<Registry> {
        self.refuse_read_only()?;
        let url = &self.config.write_registry;
        let registry = Registry::new(Store::open(url, &self.clouds)?);
        // A registry from before the marker existed gets one too, but was not created now.
        let created = registry.mark_created().await? && registry.entities().await?.is_empty();
        if created && !self.config.quiet {
            let origin = self.config.write_origin.describe();
            eprintln!("created a new artfs registry at {} ({origin})", home_relative(url));
        }
        Ok(registry)
    }

    fn cache(&self) -> Result<BlobCache> {
        let dir = &self.config.cache_dir;
        let size = self.config.cache_size.unwrap_or_else(|| default_max_bytes(dir));
        BlobCache::open(&self.config.cache_dir, size).with_context(|| {
            format!("cannot open the cache at {}", self.config.cache_dir.display())
        })
    }

    /// Cloud clients for reading references, limited to what the reader allowed.
    fn reference_clouds(&self, args: &RefAccessArgs) -> Result<Clouds> {
        let refs = RefAccess::new(&args.allow_file_refs, args.allow_private_refs)?;
        Ok(Clouds::new(CloudConfig { refs, ..self.clouds.config().clone() }))
    }

    fn artifact(&self, s: &str) -> Result<ArtifactRef> {
        Ok(ArtifactRef::parse(s, self.entity(), &self.config.project)?)
    }

    async fn resolve(&self, catalog: &dyn Catalog, artifact: &str) -> Result<ResolvedVersion> {
        let target = self.artifact(artifact)?;
        Ok(catalog.resolve(&target.collection, &target.selector_or_latest()).await?)
    }

    async fn version_of(&self, registry: &Registry, artifact: &str) -> Result<(ArtifactRef, u32)> {
        let target = self.artifact(artifact)?;
        let Some(selector) = &target.selector else {
            usage!("{artifact}: name a version, e.g. {artifact}:v0 or {artifact}:latest");
        };
        let version = match selector {
            Selector::Version(v) => *v,
            alias => registry.resolve(&target.collection, alias).await?.record.version,
        };
        Ok((target, version))
    }

    async fn dispatch(&self, command: Command) -> Result<()> {
        match command {
            Command::Log(args) => self.log(args).await,
            Command::Ls(args) => self.ls(&args).await,
            Command::Versions { artifact, json } => self.versions(&artifact, json).await,
            Command::Show { artifact, files, json } => self.show(&artifact, files, json).await,
            Command::Get(args) => self.get(args).await,
            Command::Prefetch(args) => self.prefetch(args).await,
            Command::Alias { artifact, add, remove, json } => {
                self.alias(&artifact, &add, &remove, json).await
            }
            Command::Edit { artifact, description, metadata, merge_metadata, json } => {
                self.edit(&artifact, description, metadata, merge_metadata, json).await
            }
            Command::Rm { artifact, delete_aliases, unaliased, dry_run, yes, json } => {
                let how = rm::How { delete_aliases, dry_run, yes, json };
                if unaliased {
                    self.rm_unaliased(&artifact, how).await
                } else {
                    self.rm(&artifact, how).await
                }
            }
            Command::Gc { grace, yes, json, dry_run } => {
                self.gc(&grace, gc::How { yes, json, dry_run }).await
            }
            Command::Cache { command } => self.cache_command(command),
            Command::Mount(_) => bail!("`artfs mount` cannot run inside the async runtime"),
            Command::Completions { shell } => help::completions(shell),
            Command::Man => help::man(),
            Command::Serve(args) => self.serve(&args).await,
            Command::Key { command } => self.key(command).await,
            Command::Run { command } => self.run_command(command).await,
            Command::Runs { scope, json } => self.runs(scope, json).await,
            Command::Lineage(args) => self.lineage(&args).await,
            Command::User { command } => self.user_command(command).await,
            Command::Org { command } => self.org_command(command).await,
            Command::Team { command } => self.team_command(command).await,
            Command::Unmount { mountpoint, lazy, json } => unmount(&mountpoint, lazy, json),
            Command::Tag { artifact, add, remove, collection, json } => {
                self.tag(&artifact, &add, &remove, collection, json).await
            }
            Command::Ttl { artifact, ttl, collection, json } => {
                self.ttl(&artifact, &ttl, collection, json).await
            }
            Command::Mounts { json } => print_mounts(json),
        }
    }
}

/// `artfs unmount --json`: the mount point that is gone (or, `lazy`, going).
#[derive(Debug, serde::Serialize)]
struct Unmounted {
    unmounted: std::path::PathBuf,
    lazy: bool,
}

fn unmount(mountpoint: &std::path::Path, lazy: bool, json: bool) -> Result<()> {
    let mountpoint = crate::mount::absolute_mountpoint(mountpoint)?;
    crate::mount::unmount(&mountpoint, lazy)?;
    if json {
        return print_json(&Unmounted { unmounted: mountpoint, lazy });
    }
    Ok(())
}

/// `artfs mounts`: one `MOUNTPOINT  SOURCE` line per artfs mount, or JSON.
fn print_mounts(json: bool) -> Result<()> {
    let mounts = crate::mount::active_mounts()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&mounts)?);
    }
    for m in mounts.iter().filter(|_| !json) {
        println!("{}  {}", m.mountpoint.display(), m.source);
    }
    Ok(())
}

/// An error and its causes on one line, each cause once (see `report`).
pub fn error_report(e: &anyhow::Error) -> String {
    crate::report::error_line(e.as_ref())
}

/// Asks `question` on a terminal; `true` without asking when stdin is not one (scripts, pipes)
/// or when `--yes` was given.
fn confirmed(question: &str, yes: bool) -> Result<bool> {
    use std::io::{BufRead as _, IsTerminal as _};
    if yes || !std::io::stdin().is_terminal() {
        return Ok(true);
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// `~/x` for `$HOME/x`: the default registry's path as a user would write it.
fn home_relative(path: &str) -> String {
    let home = std::env::var("HOME").unwrap_or_default();
    match path.strip_prefix(home.trim_end_matches('/')) {
        Some(rest) if !home.is_empty() && rest.starts_with('/') => format!("~{rest}"),
        _ => path.to_owned(),
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
        usage!("metadata must be a JSON object, got {v}");
    }
    Ok(v)
}

/// `--json` output: one typed value, pretty-printed.
fn print_json<T: serde::Serialize + ?Sized>(v: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

/// `1 file`, `2 files`, `3 entries`.
fn count(n: usize, what: &str) -> String {
    match (n, what) {
        (1, _) => format!("1 {what}"),
        (n, "entry") => format!("{n} entries"),
        (n, _) => format!("{n} {what}s"),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_report_prints_each_cause_once() {
        let io = std::io::Error::from_raw_os_error(libc::ENOENT);
        let e = anyhow::Error::new(io)
            .context("cannot read /x: No such file or directory (os error 2)");
        assert_eq!(error_report(&e), "cannot read /x: No such file or directory (os error 2)");
        let e = e.context("cannot log data");
        assert_eq!(
            error_report(&e),
            "cannot log data: cannot read /x: No such file or directory (os error 2)"
        );
        assert_eq!(format!("{e:#}").matches("os error 2").count(), 2, "anyhow's own chain repeats");
    }
}
