//! `artfs serve`: the W&B-compatible API over the registry, until SIGINT or SIGTERM.

use std::io::Write;

use anyhow::{Context, Result};

use super::{App, print_json};
use crate::cli::ServeArgs;
use crate::config::parse_duration;

/// `artfs serve --json`: the startup line, one JSON object once the server listens.
#[derive(Debug, serde::Serialize)]
struct Started<'a> {
    listening: &'a str,
    wandb_base_url: &'a str,
    ui: &'a str,
    registry: &'a str,
}

impl App {
    /// Binds, prints the address (the first stdout line, which tests read), serves until a signal.
    pub(super) async fn serve(&self, args: &ServeArgs) -> Result<()> {
        let opts = crate::serve::ServeOptions {
            public_url: args.public_url.clone(),
            url_ttl: parse_duration(&args.url_ttl)?,
            tls: match (&args.tls_cert, &args.tls_key) {
                (Some(cert), Some(key)) => {
                    Some(crate::serve::TlsFiles { cert: cert.clone(), key: key.clone() })
                }
                _ => None,
            },
            storage_regions: args.storage_regions.clone(),
            access_log: args.access_log.parse()?,
        };
        // A bad certificate or key fails here, before anything listens.
        if let Some(files) = &opts.tls {
            crate::serve::load_tls(files).await?;
        }
        // The SDK logs into a fresh registry as `artfs log` does: serving may create it.
        let registry = self.registry_for_write().await?;
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let scheme = if opts.tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr()?);
        let base = args.public_url.as_deref().unwrap_or(&url).trim_end_matches('/');
        if args.json {
            let registry = self.config.write_registry.as_str();
            let ui = format!("{base}/ui/");
            print_json(&Started { listening: &url, wandb_base_url: base, ui: &ui, registry })?;
        } else {
            println!("listening on {url}");
        }
        std::io::stdout().flush()?;
        if !self.config.quiet {
            eprintln!("artfs serve: WANDB_BASE_URL={base}, web UI at {base}/ui/");
        }
        if !registry.has_keys().await? {
            tracing::warn!(
                "the registry has no API key yet, so every request will be refused: make one with `artfs key create USER`"
            );
        }
        Ok(crate::serve::serve(opts, registry, listener, shutdown_signal()).await?)
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}
