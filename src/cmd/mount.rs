//! `artfs mount`: start the daemon, or be it (`--foreground`).

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::App;
use crate::cli::MountArgs;
use crate::config::{MountConfig, default_mount_log};
use crate::fetch::Fetcher;
use crate::fs::{ArtifactFs, FsOptions};
use crate::mount;
use crate::serve::METRICS_CONTENT_TYPE;

impl App {
    /// `artfs mount`: starts the daemon and waits for the mount, or (`--foreground`) is it.
    pub(super) fn mount(&self, args: &MountArgs, runtime: tokio::runtime::Runtime) -> Result<()> {
        let mc = MountConfig::try_from(args)?;
        // Checked before the daemon starts, so a bad --allow-file-refs fails here.
        let clouds = self.reference_clouds(&args.access)?;
        // Before the daemon starts (a mistyped registry is this command's error) and before a
        // mount point is created for nothing; first, as a W&B server decides the default entity.
        let catalog = runtime.block_on(self.catalog())?;
        let artifact = mc.artifact.as_deref().map(|a| self.artifact(a)).transpose()?;
        let run = runtime.block_on(self.run_recording(&args.run))?;
        let created = create_mountpoint(&mc.mountpoint)?;
        // Whatever fails from here on, a mount point this command made goes again.
        let mut made = MadeMountpoint(created.then(|| mc.mountpoint.clone()));
        let mountpoint = mount::absolute_mountpoint(&mc.mountpoint)?;
        if created && !self.config.quiet {
            eprintln!("created the mount point {}", mountpoint.display());
        }
        mount::check_mountpoint(&mountpoint)?;
        if !args.allow_non_empty && std::fs::read_dir(&mountpoint)?.next().is_some() {
            bail!(
                "mount point {} is not empty: the mount would hide its files; pass --allow-non-empty to mount over them",
                mountpoint.display()
            );
        }
        let what = match &artifact {
            Some(a) => format!("{}:{}", a.collection, a.selector_or_latest()),
            None => format!("registry {}", self.config.registry),
        };
        let source = match &artifact {
            Some(a) => {
                format!("{}:{}@{}", a.collection, a.selector_or_latest(), self.config.registry)
            }
            None => self.config.registry.clone(),
        };
        if !mc.foreground {
            let log = match mc.log_file.clone().or_else(|| default_mount_log(&mountpoint)) {
                Some(log) => log,
                None => bail!("cannot find a directory for the mount log; pass --log-file"),
            };
            let pid = mount::spawn_daemon(&log, &mountpoint, mount::MOUNT_READY_TIMEOUT)?;
            made.keep();
            let mounted = Mounted { mountpoint: &mountpoint, source: &source, pid, log: &log };
            return self.say_mounted(&mounted, &what, args.json);
        }
        let handle = runtime.handle().clone();
        let fetcher = Fetcher::new(self.cache()?, handle.clone())
            .with_clouds(clouds)
            .with_stall_timeout(mc.timeout);
        // A run this mount starts is finished when it is unmounted; one started before (`artfs
        // run start`, another command) is left to whoever started it.
        let finish = match &run {
            Some((r, reg)) if runtime.block_on(reg.run_state(r))?.seq == 0 => {
                Some((r.clone(), reg.clone()))
            }
            _ => None,
        };
        let on_open = run.map(|(run, registry)| {
            super::run::use_recorder(&registry, run, args.run.job_type.clone(), &handle)
        });
        let options = fs_options(&mc, on_open);
        let fs = match &artifact {
            None => ArtifactFs::registry(catalog, fetcher, handle, options),
            Some(a) => {
                let version =
                    runtime.block_on(catalog.resolve(&a.collection, &a.selector_or_latest()))?;
                ArtifactFs::single(catalog, fetcher, handle, options, &version)
                    .with_context(|| format!("cannot mount {what}"))?
            }
        };
        if let Some(addr) = &args.metrics_addr {
            serve_metrics(addr, fs.clone(), &runtime)?;
        }
        let background = fs.clone();
        let served =
            mount::serve(fs, &mountpoint, &source, mc.allow_other, mc.passthrough, &runtime);
        // Before the runtime goes: a project read still asking the registry would panic in it.
        if !background.shut_down(mount::SHUTDOWN_GRACE) {
            tracing::warn!("registry requests still running after {:?}", mount::SHUTDOWN_GRACE);
        }
        served?;
        made.keep();
        if let Some((run, registry)) = finish {
            runtime.block_on(finish_run(&registry, &run));
        }
        // Bounded: a download stuck in the runtime's blocking pool must not keep us alive.
        runtime.shutdown_timeout(mount::SHUTDOWN_GRACE);
        Ok(())
    }
}

/// `GET /metrics` on `addr` (`--metrics-addr`), served on the mount's runtime while it runs.
/// Bound now, so an address in use is this command's error, not a line in the daemon's log.
fn serve_metrics(addr: &str, fs: ArtifactFs, runtime: &tokio::runtime::Runtime) -> Result<()> {
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("--metrics-addr {addr}: cannot listen there"))?;
    listener.set_nonblocking(true)?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let text = fs.metrics_text();
            let content_type = [(axum::http::header::CONTENT_TYPE, METRICS_CONTENT_TYPE)];
            async move { (content_type, text) }
        }),
    );
    runtime.spawn(async move {
        let served = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => axum::serve(listener, app).await,
            Err(e) => Err(e),
        };
        if let Err(err) = served {
            tracing::error!(%err, "metrics endpoint stopped");
        }
    });
    tracing::info!("metrics at http://{addr}/metrics");
    Ok(())
}

/// `artfs mount --json`: the mount the daemon serves.
#[derive(Debug, serde::Serialize)]
struct Mounted<'a> {
    mountpoint: &'a Path,
    source: &'a str,
    pid: u32,
    log: &'a Path,
}

impl App {
    fn say_mounted(&self, m: &Mounted, what: &str, json: bool) -> Result<()> {
        if json {
            return super::print_json(m);
        }
        if !self.config.quiet {
            let (at, pid, log) = (m.mountpoint.display(), m.pid, m.log.display());
            eprintln!("mounted {what} at {at} (daemon pid {pid}, log {log})");
        }
        Ok(())
    }
}

fn fs_options(mc: &MountConfig, on_open: Option<crate::fs::OpenHook>) -> FsOptions {
    let defaults = FsOptions::default();
    FsOptions {
        refresh: mc.refresh,
        registry_timeout: mc.timeout,
        readahead_files: mc.readahead_files,
        warm_up_bytes: mc.warm_up_bytes,
        on_open,
        uid: mc.uid.unwrap_or(defaults.uid),
        gid: mc.gid.unwrap_or(defaults.gid),
        file_mode: mc.file_mode.unwrap_or(defaults.file_mode),
        dir_mode: mc.dir_mode.unwrap_or(defaults.dir_mode),
    }
}

/// Marks `run` finished (exit code 0) if the mount recorded anything in it.
async fn finish_run(registry: &crate::registry::Registry, run: &crate::registry::runs::RunPath) {
    let op = crate::registry::runs::RunOp::Finished { exit_code: Some(0) };
    let result = match registry.run_state(run).await {
        Ok(state) if state.seq == 0 => return,
        Ok(_) => registry.record_run(run, op).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => tracing::info!("run {}: finished at unmount", run.name),
        Err(e) => tracing::error!("run {}: cannot record that it finished: {e}", run.name),
    }
}

/// A mount point this command created, removed again when the mount fails (dropped without
/// `keep`). Only the directory itself: `remove_dir` fails on anything not empty or mounted.
struct MadeMountpoint(Option<std::path::PathBuf>);

impl MadeMountpoint {
    fn keep(&mut self) {
        self.0 = None;
    }
}

impl Drop for MadeMountpoint {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_dir(&path);
        }
    }
}

/// Creates a missing mount point with its missing parents, as `mkdir -p` would, and says whether
/// it did. Only missing components are made: a path through a file is an error naming that file,
/// and anything that exists (a directory, a file, a dead mount) is left to `check_mountpoint`.
fn create_mountpoint(path: &Path) -> Result<bool> {
    use std::io::ErrorKind::{NotADirectory, NotFound};
    match std::fs::symlink_metadata(path) {
        Err(e) if matches!(e.kind(), NotFound | NotADirectory) => {}
        _ => return Ok(false),
    }
    let abs = std::path::absolute(path)
        .with_context(|| format!("mount point {}: cannot make it absolute", path.display()))?;
    if let Some(file) = abs.ancestors().skip(1).find(|a| a.is_file()) {
        bail!(
            "cannot create the mount point {}: {} is a file, not a directory",
            path.display(),
            file.display()
        );
    }
    std::fs::create_dir_all(&abs)
        .with_context(|| format!("cannot create the mount point {}", path.display()))?;
    Ok(true)
}
