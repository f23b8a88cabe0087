//! `artfs mount`: start the daemon, or be it (`--foreground`).

use anyhow::{Context, Result, bail};

use super::App;
use crate::cli::MountArgs;
use crate::config::{MountConfig, default_mount_log};
use crate::fetch::Fetcher;
use crate::fs::{ArtifactFs, FsOptions};
use crate::mount;

impl App {
    /// `artfs mount`: starts the daemon and waits for the mount, or (`--foreground`) is it.
    pub(super) fn mount(&self, args: &MountArgs, runtime: tokio::runtime::Runtime) -> Result<()> {
        let mc = MountConfig::try_from(args)?;
        // Checked before the daemon starts, so a bad --allow-file-refs fails here.
        let clouds = self.reference_clouds(&args.access)?;
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
        let fetcher = Fetcher::new(registry.store().clone(), self.cache()?, handle.clone())
            .with_clouds(clouds);
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
}
