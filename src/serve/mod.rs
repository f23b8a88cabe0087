//! `artfs serve`: a W&B-compatible HTTP server over the registry, so the unmodified `wandb` SDK
//! logs, uses and downloads artifacts in it (`docs/WANDB-API.md` is the client's contract).
//!
//! - `schema`: GraphQL (async-graphql) — W&B's types, limited to what the SDK reads;
//! - `http`: the other endpoints — storage PUT/GET behind signed URLs, `file_stream`,
//!   `/artifactsV2/…`, and the router;
//! - `error`: the server's errors, and the one decision of their HTTP status and GraphQL code;
//! - `auth`: API keys (Basic `api:KEY`) and URL signing;
//! - `ids`: stateless GraphQL ids;
//! - `access`: the access log and the metrics behind `GET /metrics`;
//! - `listen`: accepting connections, with timeouts and a bound on how many are served;
//! - `web`: the web UI under `/ui/` (server-rendered HTML, lineage as SVG), same keys as the API.
//!
//! All state lives in the registry (versions, drafts, runs, keys, the signing secret), so several
//! `artfs serve` processes over one bucket, and the CLI beside them, agree.

mod access;
pub mod auth;
mod error;
mod http;
pub mod ids;
mod listen;
pub mod schema;
mod web;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use self::access::AccessLog;
pub(crate) use self::access::{METRICS_CONTENT_TYPE, head as metric_head};
pub use self::error::ServeError;
use crate::registry::Registry;
use crate::registry::runs::RunPath;

/// Default lifetime of the upload and download URLs the server hands out.
pub const DEFAULT_URL_TTL: Duration = Duration::from_secs(24 * 3600);
/// Largest GraphQL request body (a `createArtifactFiles` batch of 2,000 files is about 1 MiB).
pub const MAX_GRAPHQL_BYTES: usize = 32 << 20;
/// Largest `file_stream` body or run file kept (they are held in memory while stored).
pub const MAX_RUN_UPLOAD_BYTES: usize = 64 << 20;
/// Largest manifest accepted (parsed in memory; ~200 bytes per entry).
pub const MAX_MANIFEST_BYTES: usize = 512 << 20;

/// PEM files of the certificate chain and its private key, for HTTPS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// How the server presents itself.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The base of the URLs handed to clients [default: `http://<bound address>`].
    pub public_url: Option<String>,
    pub url_ttl: Duration,
    /// Serve HTTPS (rustls) instead of plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Storage regions accepted besides `default` (see `Shared::storage_region_ok`).
    pub storage_regions: Vec<String>,
    pub access_log: AccessLog,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            public_url: None,
            url_ttl: DEFAULT_URL_TTL,
            tls: None,
            storage_regions: Vec::new(),
            access_log: AccessLog::default(),
        }
    }
}

/// Loads the certificate and key once, before serving, so a bad file fails the start.
pub async fn load_tls(
    files: &TlsFiles,
) -> Result<axum_server::tls_rustls::RustlsConfig, ServeError> {
    axum_server::tls_rustls::RustlsConfig::from_pem_file(&files.cert, &files.key).await.map_err(
        |source| ServeError::Tls {
            cert: files.cert.display().to_string(),
            key: files.key.display().to_string(),
            source,
        },
    )
}

/// What every request handler shares.
#[derive(Debug)]
pub struct Shared {
    pub registry: Registry,
    pub public_url: String,
    signer: auth::Signer,
    keys: auth::KeyCheck,
    storage_regions: Vec<String>,
    observer: Arc<access::Observer>,
    /// Parsed manifests the web pages keep between requests.
    manifests: web::Manifests,
}

/// The hex MD5 a blob key (`blobs/md5/ab/cdef…`) names.
fn hex_of_blob(key: &str) -> String {
    key.trim_start_matches("blobs/md5/").replace('/', "")
}

/// Where W&B's `File.storagePath` puts a stored blob: below `wandb_artifacts/`.
pub fn blob_storage_path(key: &str) -> String {
    format!("wandb_artifacts/{}", hex_of_blob(key))
}

fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The region every W&B server has.
const DEFAULT_STORAGE_REGION: &str = "default";

impl Shared {
    /// Whether a client may name storage region `region`: `default` or one given to
    /// `--storage-region` (all store into the registry; the names only have to be known).
    pub fn storage_region_ok(&self, region: &str) -> bool {
        region == DEFAULT_STORAGE_REGION || self.storage_regions.iter().any(|r| r == region)
    }

    fn signed(&self, method: &str, path: &str, what: &str) -> String {
        format!("{}{path}?{}", self.public_url, self.signer.sign(method, what))
    }

    /// A signed URL for a blob key (`blobs/md5/ab/cdef…`). Downloads go to the blob's
    /// `storage_path`, as W&B's do (the SDK and W&B's tests tell blob downloads from manifest
    /// downloads by `wandb_artifacts/` in the URL).
    pub fn blob_url(&self, method: &str, key: &str) -> String {
        let hex = hex_of_blob(key);
        let path = match method {
            "GET" => format!("/storage/{}", blob_storage_path(key)),
            _ => format!("/storage/blob/{hex}"),
        };
        self.signed(method, &path, &format!("blob/{hex}"))
    }

    /// A signed GET URL for a stored manifest (`manifests/<hex>.json`), ending in
    /// `wandb_manifest.json` as W&B's do.
    pub fn manifest_url(&self, key: &str) -> Option<String> {
        let hex = crate::registry::layout::hex_of_manifest(key)?;
        let path = format!("/storage/manifest/{hex}/wandb_manifest.json");
        Some(self.signed("GET", &path, &format!("manifest/{hex}")))
    }

    /// A signed PUT URL for part `n` of multipart upload `upload`, bound to the part's MD5.
    pub fn part_url(&self, upload: &str, n: u32, hex_md5: &str) -> String {
        let what = format!("part/{upload}/{n}/{hex_md5}");
        self.signed("PUT", &format!("/storage/part/{upload}/{n}/{hex_md5}"), &what)
    }

    pub fn draft_manifest_url(&self, draft: &str) -> String {
        self.signed("PUT", &format!("/storage/draft/{draft}"), &format!("draft/{draft}"))
    }

    pub fn run_file_url(&self, run: &RunPath, name: &str) -> String {
        let path = format!(
            "/storage/run/{}/{}/{}/{}",
            seg(&run.entity),
            seg(&run.project),
            seg(&run.name),
            name.split('/').map(seg).collect::<Vec<_>>().join("/")
        );
        let what = format!("run/{}/{}/{}/{name}", run.entity, run.project, run.name);
        self.signed("PUT", &path, &what)
    }
}

/// Serves the W&B API for `registry` on `listener` until `shutdown` resolves.
pub async fn serve(
    opts: ServeOptions,
    registry: Registry,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let addr = listener
        .local_addr()
        .map_err(|source| ServeError::Io { addr: "listener".into(), source })?;
    let tls = match &opts.tls {
        Some(files) => Some(load_tls(files).await?),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let public_url = opts
        .public_url
        .map(|u| u.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| format!("{scheme}://{addr}"));
    let secret = registry.serve_secret().await?;
    let shared = Arc::new(Shared {
        registry,
        public_url,
        signer: auth::Signer::new(secret, opts.url_ttl),
        keys: auth::KeyCheck::default(),
        storage_regions: opts.storage_regions,
        observer: Arc::new(access::Observer::new(opts.access_log)),
        manifests: web::Manifests::default(),
    });
    tracing::info!("artfs serve: listening on {addr}, public URL {}", shared.public_url);
    let app = http::router(shared);
    listen::serve(listener, app, tls, shutdown)
        .await
        .map_err(|source| ServeError::Io { addr: addr.to_string(), source })
}
