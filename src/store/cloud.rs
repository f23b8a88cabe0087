//! Cloud object stores (`s3://`, `gs://`, `http(s)://`) built from each cloud's usual credentials.
//!
//! [`Clouds`] is created once (from the environment with [`Clouds::from_env`], or from an explicit
//! [`CloudConfig`] in tests) and passed around; it builds one store per bucket on first use and
//! shares it afterwards, so connection pools and credential caches are reused. It also carries the
//! plain HTTP clients: one for the GCS JSON API (a configured endpoint) and one for reference
//! entries (`http(s)://` URLs chosen by whoever wrote the registry), which only reaches what the
//! reader's [`RefAccess`] allows (see `guard`).
//!
//! What each cloud is reached with (settings, credentials) is read in `credentials`.
//!
//! Every request has bounded retries and timeouts ([`NetConfig`]): a dead or hung server turns
//! into an error after a few seconds, never into a hang.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody,
    HttpResponse, ReqwestConnector,
};
use object_store::gcp::{GcpCredential, GoogleCloudStorage, GoogleCloudStorageBuilder};
use object_store::http::{HttpBuilder, HttpStore};
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, RetryConfig, StaticCredentialProvider,
};
use url::Url;

pub use super::credentials::{AwsCredentials, CloudConfig, GcpCredentials, GcsConfig, S3Config};
use crate::store::guard::{self, AddressCheck, FilteringResolver, GuardError};

use crate::http::Attempt;
pub use crate::http::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RETRIES, DEFAULT_READ_TIMEOUT, DEFAULT_RETRY_TIMEOUT,
    NetConfig, REQUEST_BOUND,
};
/// How long a host name found to resolve to allowed addresses is not looked up again before
/// serving cached copies of its references (connections always resolve afresh).
const HOST_CHECK_TTL: Duration = Duration::from_secs(60);
/// Host names remembered that way at most.
const HOST_CHECK_MEMO: usize = 4096;
/// Where GCS serves both its XML and its JSON API.
pub const GCS_DEFAULT_BASE_URL: &str = "https://storage.googleapis.com";
/// A service-account key that makes `object_store` skip OAuth: what GCS emulators need.
const GCS_EMULATOR_KEY: &str =
    r#"{"disable_oauth":true,"client_email":"","private_key":"","private_key_id":""}"#;

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("{url}: unsupported URL scheme (expected s3://bucket, gs://bucket or http(s)://host)")]
    UnsupportedScheme { url: String },
    #[error("{url}: the URL names no bucket (expected {scheme}://BUCKET/...)")]
    MissingBucket { url: String, scheme: &'static str },
    #[error("cannot set up {what} for {target}: {source}")]
    Build {
        what: &'static str,
        target: String,
        #[source]
        source: object_store::Error,
    },
    #[error("cannot use S3 credentials: {reason}")]
    AwsCredentials { reason: String },
    #[error("invalid {var}={value:?}: {reason}")]
    Config { var: &'static str, value: String, reason: String },
    #[error("invalid request URL {url}: {reason}")]
    BadUrl { url: String, reason: String },
    /// Wrapped by callers, which name the resource and say what to do (`RefError::Unreachable`).
    #[error("{method} {url}: no answer after {attempts} attempt(s) in {elapsed:?}: {source}")]
    Unreachable {
        method: &'static str,
        url: String,
        attempts: usize,
        elapsed: Duration,
        #[source]
        source: HttpError,
    },
    #[error("{method} {url} failed: {source}")]
    Http {
        method: &'static str,
        url: String,
        #[source]
        source: HttpError,
    },
    /// A reference URL (or a redirect it led to) that the reader's [`RefAccess`] refuses.
    #[error("{method} {url}: refused: {source}")]
    Refused {
        method: &'static str,
        url: String,
        #[source]
        source: GuardError,
    },
    #[error("cannot get GCS credentials for gs://{bucket}: {source}")]
    GcsToken {
        bucket: String,
        #[source]
        source: object_store::Error,
    },
}

/// `object_store`'s form of the one HTTP policy (`crate::http`).
impl NetConfig {
    fn retry(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: self.max_retries,
            retry_timeout: self.retry_timeout,
        }
    }

    fn client_options(&self, allow_http: bool) -> ClientOptions {
        let options = ClientOptions::new()
            .with_allow_http(allow_http)
            .with_connect_timeout(self.connect_timeout)
            .with_read_timeout(self.read_timeout);
        match self.request_timeout {
            Some(t) => options.with_timeout(t),
            None => options.with_timeout_disabled(),
        }
    }
}

/// A built bucket store, kept with its concrete type: references need S3's raw-prefix listing
/// and the GCS credentials for the JSON API.
#[derive(Debug, Clone)]
enum Built {
    S3(Arc<AmazonS3>),
    Gcs(Arc<GoogleCloudStorage>),
    Http(Arc<HttpStore>),
}

#[derive(Debug, Default)]
struct Inner {
    config: CloudConfig,
    stores: Mutex<HashMap<(String, String), Built>>,
    http: OnceLock<HttpClient>,
    ref_http: OnceLock<HttpClient>,
    /// Which addresses reference requests may reach, unless the reader allowed private ones.
    address_check: Option<AddressCheck>,
    /// Host names found to resolve to allowed addresses, and when: opening a cached reference
    /// again soon costs no DNS lookup.
    hosts_checked: Mutex<HashMap<String, Instant>>,
}

/// Cloud stores and the reference HTTP client, built on first use and shared. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Clouds {
    inner: Arc<Inner>,
}

/// Anonymous public clouds; references limited as [`RefAccess::default`] says.
impl Default for Clouds {
    fn default() -> Clouds {
        Clouds::new(CloudConfig::default())
    }
}

impl Clouds {
    pub fn new(config: CloudConfig) -> Clouds {
        let address_check =
            (!config.refs.allows_private()).then_some(guard::private_kind as AddressCheck);
        Clouds { inner: Arc::new(Inner { config, address_check, ..Inner::default() }) }
    }

    /// Replaces which addresses reference requests may reach ([`guard::private_kind`] unless
    /// private ones are allowed): tests tell two loopback servers apart with it.
    #[cfg(test)]
    pub(crate) fn with_address_check(config: CloudConfig, check: AddressCheck) -> Clouds {
        Clouds { inner: Arc::new(Inner { config, address_check: Some(check), ..Inner::default() }) }
    }

    /// [`CloudConfig::from_env`].
    pub fn from_env() -> Clouds {
        Clouds::new(CloudConfig::from_env())
    }

    pub fn config(&self) -> &CloudConfig {
        &self.inner.config
    }

    /// The store of the bucket in `url` (`s3://bucket/...`, `gs://bucket/...`), rooted at the
    /// bucket: the caller adds the URL's path as a prefix. `http(s)://host/...` gives a store
    /// rooted at the origin.
    pub fn bucket_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>, CloudError> {
        match url.scheme() {
            "s3" => Ok(self.s3(bucket_of(url, "s3")?)? as Arc<dyn ObjectStore>),
            "gs" => Ok(self.gcs(bucket_of(url, "gs")?)? as Arc<dyn ObjectStore>),
            "http" | "https" => Ok(self.http_store(url)? as Arc<dyn ObjectStore>),
            _ => Err(CloudError::UnsupportedScheme { url: url.to_string() }),
        }
    }

    fn cached(
        &self,
        scheme: &str,
        bucket: &str,
        build: impl FnOnce() -> Result<Built, CloudError>,
    ) -> Result<Built, CloudError> {
        let key = (scheme.to_owned(), bucket.to_owned());
        // A panic while holding the lock cannot leave the map inconsistent: keep using it.
        let mut stores = self.inner.stores.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(built) = stores.get(&key) {
            return Ok(built.clone());
        }
        let built = build()?;
        stores.insert(key, built.clone());
        Ok(built)
    }

    /// The S3 store of `bucket`.
    pub fn s3(&self, bucket: &str) -> Result<Arc<AmazonS3>, CloudError> {
        let built = self.cached("s3", bucket, || {
            let cfg = &self.inner.config.s3;
            let net = &self.inner.config.net;
            let allow_http = cfg.endpoint.as_deref().is_some_and(|e| e.starts_with("http://"));
            let mut b = AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_region(cfg.region.as_deref().unwrap_or("us-east-1"))
                .with_virtual_hosted_style_request(cfg.virtual_hosted_style)
                .with_retry(net.retry())
                .with_client_options(net.client_options(allow_http));
            if let Some(endpoint) = &cfg.endpoint {
                b = b.with_endpoint(endpoint);
            }
            b = match &cfg.credentials {
                AwsCredentials::Anonymous => b.with_skip_signature(true),
                AwsCredentials::Static { key_id, secret_key, session_token } => {
                    let b = b.with_access_key_id(key_id).with_secret_access_key(secret_key);
                    match session_token {
                        Some(t) => b.with_token(t),
                        None => b,
                    }
                }
                AwsCredentials::Ambient => ambient_aws(b),
                AwsCredentials::Unavailable { reason } => {
                    return Err(CloudError::AwsCredentials { reason: reason.clone() });
                }
            };
            let store = b.build().map_err(|source| CloudError::Build {
                what: "S3 client",
                target: format!("s3://{bucket}"),
                source,
            })?;
            Ok(Built::S3(Arc::new(store)))
        })?;
        match built {
            Built::S3(s) => Ok(s),
            // Keys are namespaced by scheme, so another kind cannot be stored under "s3".
            _ => Err(CloudError::UnsupportedScheme { url: format!("s3://{bucket}") }),
        }
    }

    /// The GCS store of `bucket`.
    pub fn gcs(&self, bucket: &str) -> Result<Arc<GoogleCloudStorage>, CloudError> {
        let built = self.cached("gs", bucket, || {
            let cfg = &self.inner.config.gcs;
            let net = &self.inner.config.net;
            let base = self.gcs_base_url();
            let mut b = GoogleCloudStorageBuilder::new()
                .with_bucket_name(bucket)
                .with_retry(net.retry())
                .with_client_options(net.client_options(base.starts_with("http://")));
            if cfg.base_url.is_some() {
                b = b.with_base_url(base);
            }
            let no_token =
                || Arc::new(StaticCredentialProvider::new(GcpCredential { bearer: String::new() }));
            b = match &cfg.credentials {
                // Explicit empty credentials also keep object_store from reading gcloud's files.
                GcpCredentials::Anonymous => {
                    b.with_skip_signature(true).with_credentials(no_token())
                }
                GcpCredentials::Emulator => b.with_service_account_key(GCS_EMULATOR_KEY),
                GcpCredentials::ServiceAccountKey(key) => b.with_service_account_key(key),
                GcpCredentials::ServiceAccountFile(p) => {
                    b.with_service_account_path(p.to_string_lossy())
                }
                GcpCredentials::ApplicationCredentials(p) => {
                    b.with_application_credentials(p.to_string_lossy())
                }
                GcpCredentials::Ambient => b,
            };
            let store = b.build().map_err(|source| CloudError::Build {
                what: "GCS client",
                target: format!("gs://{bucket}"),
                source,
            })?;
            Ok(Built::Gcs(Arc::new(store)))
        })?;
        match built {
            Built::Gcs(s) => Ok(s),
            _ => Err(CloudError::UnsupportedScheme { url: format!("gs://{bucket}") }),
        }
    }

    /// An `object_store` HTTP store rooted at the origin of `url` (WebDAV-style; plain GETs work
    /// against any server).
    pub fn http_store(&self, url: &Url) -> Result<Arc<HttpStore>, CloudError> {
        let origin = url.origin().ascii_serialization();
        let built = self.cached("http", &origin, || {
            let net = &self.inner.config.net;
            let store = HttpBuilder::new()
                .with_url(origin.clone())
                .with_retry(net.retry())
                .with_client_options(net.client_options(true))
                .build()
                .map_err(|source| CloudError::Build {
                    what: "HTTP store",
                    target: origin.clone(),
                    source,
                })?;
            Ok(Built::Http(Arc::new(store)))
        })?;
        match built {
            Built::Http(s) => Ok(s),
            _ => Err(CloudError::UnsupportedScheme { url: origin }),
        }
    }

    /// Base URL of the GCS XML and JSON APIs (an emulator's, or Google's).
    pub fn gcs_base_url(&self) -> &str {
        self.inner.config.gcs.base_url.as_deref().unwrap_or(GCS_DEFAULT_BASE_URL)
    }

    /// `Authorization` header value for GCS JSON API requests on `bucket`; `None` when requests
    /// go unauthenticated (anonymous access, emulators).
    pub async fn gcs_authorization(&self, bucket: &str) -> Result<Option<String>, CloudError> {
        if matches!(self.inner.config.gcs.credentials, GcpCredentials::Anonymous) {
            return Ok(None);
        }
        let store = self.gcs(bucket)?;
        let credential = store
            .credentials()
            .get_credential()
            .await
            .map_err(|source| CloudError::GcsToken { bucket: bucket.to_owned(), source })?;
        Ok((!credential.bearer.is_empty()).then(|| format!("Bearer {}", credential.bearer)))
    }

    /// The shared client for raw HTTP requests (reference URLs, GCS JSON API).
    pub fn http_client(&self) -> Result<HttpClient, CloudError> {
        if let Some(c) = self.inner.http.get() {
            return Ok(c.clone());
        }
        let options = self.inner.config.net.client_options(true);
        let client = ReqwestConnector::default().connect(&options).map_err(|source| {
            CloudError::Build { what: "HTTP client", target: "references".to_owned(), source }
        })?;
        // Two threads may race to build; both clients work, one is kept.
        Ok(self.inner.http.get_or_init(|| client).clone())
    }

    /// The client for reference URLs: like [`Clouds::http_client`], but it only connects to
    /// addresses the reader's [`RefAccess`] allows, redirects included.
    fn reference_client(&self) -> Result<HttpClient, CloudError> {
        let Some(check) = self.inner.address_check else {
            return self.http_client();
        };
        if let Some(c) = self.inner.ref_http.get() {
            return Ok(c.clone());
        }
        let net = &self.inner.config.net;
        let builder = net
            .client_builder()
            .dns_resolver(FilteringResolver { check })
            .redirect(guard::redirect_policy(check));
        let client = builder.build().map_err(|e| CloudError::Build {
            what: "HTTP client",
            target: "references".to_owned(),
            source: object_store::Error::Generic { store: "HTTP", source: Box::new(e) },
        })?;
        Ok(self.inner.ref_http.get_or_init(|| HttpClient::new(client)).clone())
    }

    /// Whether a reference request to `url` would be allowed, without making it: its address
    /// if it names one, else the addresses its name resolves to now. Used before serving a
    /// cached copy. A name that does not resolve is not refused here: a request would fail on
    /// its own, and a cached copy stays readable offline.
    pub async fn check_reference_url(&self, url: &str) -> Result<(), CloudError> {
        let Some(check) = self.inner.address_check else {
            return Ok(());
        };
        let parsed = Url::parse(url)
            .map_err(|e| CloudError::BadUrl { url: url.to_owned(), reason: e.to_string() })?;
        let refused =
            |source| CloudError::Refused { method: "GET", url: redacted(url).to_owned(), source };
        guard::check_url(&parsed, check).map_err(refused)?;
        let Some(url::Host::Domain(name)) = parsed.host() else {
            return Ok(());
        };
        let checked = || self.inner.hosts_checked.lock().unwrap_or_else(|e| e.into_inner());
        if checked().get(name).is_some_and(|at| at.elapsed() < HOST_CHECK_TTL) {
            return Ok(());
        }
        match (FilteringResolver { check }).resolve_allowed(name).await {
            Err(e @ GuardError::PrivateAddress { .. }) => return Err(refused(e)),
            Ok(_) => {
                let mut hosts = checked();
                // Bounded: forget everything rather than grow without limit.
                if hosts.len() >= HOST_CHECK_MEMO {
                    hosts.clear();
                }
                hosts.insert(name.to_owned(), Instant::now());
            }
            Err(_) => {}
        }
        Ok(())
    }

    /// [`Clouds::send`] for a reference URL: refused before any request when it names an
    /// address the reader did not allow, and on the reference client, which checks every
    /// address it connects to and every redirect.
    pub async fn send_reference(
        &self,
        method: &'static str,
        url: &str,
        headers: &[(&'static str, String)],
    ) -> Result<HttpResponse, CloudError> {
        if let Some(check) = self.inner.address_check {
            let parsed = Url::parse(url)
                .map_err(|e| CloudError::BadUrl { url: url.to_owned(), reason: e.to_string() })?;
            guard::check_url(&parsed, check).map_err(|source| CloudError::Refused {
                method,
                url: redacted(url).to_owned(),
                source,
            })?;
        }
        self.send_on(self.reference_client()?, method, url, headers, None).await
    }

    /// Sends a request built by `make` (called again for every attempt), retrying connection
    /// failures, timeouts, 429 and 5xx answers with exponential backoff within the [`NetConfig`]
    /// limits. Any answer that is not retried (or the last one) is returned as it is, whatever
    /// its status; transport failures become [`CloudError::Unreachable`].
    pub async fn send(
        &self,
        method: &'static str,
        url: &str,
        headers: &[(&'static str, String)],
    ) -> Result<HttpResponse, CloudError> {
        self.send_with_body(method, url, headers, None).await
    }

    /// [`Clouds::send`] with a request body (sent again on retries).
    pub async fn send_with_body(
        &self,
        method: &'static str,
        url: &str,
        headers: &[(&'static str, String)],
        body: Option<Bytes>,
    ) -> Result<HttpResponse, CloudError> {
        self.send_on(self.http_client()?, method, url, headers, body).await
    }

    /// [`Clouds::send`] on a given client, through the one retry loop (`crate::http`). A
    /// refusal by the reference client's resolver or redirect policy is returned at once as
    /// [`CloudError::Refused`].
    async fn send_on(
        &self,
        client: HttpClient,
        method: &'static str,
        url: &str,
        headers: &[(&'static str, String)],
        body: Option<Bytes>,
    ) -> Result<HttpResponse, CloudError> {
        let client = &client;
        let net = &self.inner.config.net;
        net.retrying(redacted(url), |attempt| {
            let req = request(method, url, headers, body.clone());
            async move {
                let resp = match req {
                    Ok(req) => client.execute(req).await,
                    Err(bad) => return Attempt::Done(Err(bad)),
                };
                let source = match resp {
                    Ok(resp) if crate::http::retryable_status(resp.status().as_u16()) => {
                        let reason = format!("status {}", resp.status().as_u16());
                        return Attempt::Retry { result: Ok(resp), reason };
                    }
                    Ok(resp) => return Attempt::Done(Ok(resp)),
                    Err(source) => source,
                };
                // A refused address is the reader's policy, not a network hiccup.
                if let Some(refusal) = guard::refusal_in(&source) {
                    let url = redacted(url).to_owned();
                    return Attempt::Done(Err(CloudError::Refused {
                        method,
                        url,
                        source: refusal,
                    }));
                }
                let transient = matches!(
                    source.kind(),
                    HttpErrorKind::Connect
                        | HttpErrorKind::Request
                        | HttpErrorKind::Timeout
                        | HttpErrorKind::Interrupted
                );
                if !transient {
                    return Attempt::Done(Err(CloudError::Http {
                        method,
                        url: url.to_owned(),
                        source,
                    }));
                }
                Attempt::Retry {
                    reason: source.to_string(),
                    result: Err(CloudError::Unreachable {
                        method,
                        url: url.to_owned(),
                        attempts: attempt.number,
                        elapsed: attempt.elapsed(),
                        source,
                    }),
                }
            }
        })
        .await
    }
}

/// One attempt's request (built again for every attempt: a sent body is consumed).
fn request(
    method: &'static str,
    url: &str,
    headers: &[(&'static str, String)],
    body: Option<Bytes>,
) -> Result<HttpRequest, CloudError> {
    let bad = |reason: String| CloudError::BadUrl { url: url.to_owned(), reason };
    let body = body.map_or_else(HttpRequestBody::empty, HttpRequestBody::from);
    let mut req = HttpRequest::new(body);
    *req.method_mut() = method.parse().map_err(|e| bad(format!("method {method}: {e}")))?;
    *req.uri_mut() = url.parse().map_err(|e| bad(format!("{e}")))?;
    for (name, value) in headers {
        // `insert` panics on names that are not lowercase tokens: refuse them instead.
        if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(bad(format!("header name {name:?} must be lowercase")));
        }
        let value = value.parse().map_err(|e| bad(format!("header {name}: {e}")))?;
        req.headers_mut().insert(*name, value);
    }
    Ok(req)
}

/// Lets `object_store` pick up web identity / container credentials from their variables (the
/// builder only reads them through its config keys), falling back to instance metadata.
fn ambient_aws(mut b: AmazonS3Builder) -> AmazonS3Builder {
    use object_store::aws::AmazonS3ConfigKey as K;
    let keys = [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", K::WebIdentityTokenFile),
        ("AWS_ROLE_ARN", K::RoleArn),
        ("AWS_ROLE_SESSION_NAME", K::RoleSessionName),
        ("AWS_ENDPOINT_URL_STS", K::StsEndpoint),
        ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", K::ContainerCredentialsRelativeUri),
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", K::ContainerCredentialsFullUri),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", K::ContainerAuthorizationTokenFile),
    ];
    for (var, key) in keys {
        if let Ok(value) = std::env::var(var) {
            b = b.with_config(key, value);
        }
    }
    b
}

/// A URL for logs: query strings of reference URLs can hold credentials (presigned URLs).
fn redacted(url: &str) -> &str {
    url.split_once('?').map_or(url, |(before, _)| before)
}

fn bucket_of<'u>(url: &'u Url, scheme: &'static str) -> Result<&'u str, CloudError> {
    url.host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| CloudError::MissingBucket { url: url.to_string(), scheme })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn env_static_keys_endpoint_and_region() {
        let cfg = CloudConfig::from_vars(vars(&[
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE1234"),
            ("AWS_SECRET_ACCESS_KEY", "very-secret"),
            ("AWS_SESSION_TOKEN", "tok"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566/"),
            ("AWS_CA_BUNDLE", "/nonexistent/ca.pem"),
        ]));
        assert_eq!(cfg.s3.endpoint.as_deref(), Some("http://127.0.0.1:4566"));
        assert_eq!(cfg.s3.region.as_deref(), Some("eu-west-1"));
        assert!(matches!(
            &cfg.s3.credentials,
            AwsCredentials::Static { key_id, session_token: Some(_), .. }
                if key_id == "AKIAEXAMPLE1234"
        ));
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("very-secret") && !shown.contains("tok\""), "{shown}");
        // The S3-specific endpoint wins over the generic one.
        let cfg = CloudConfig::from_vars(vars(&[
            ("AWS_ENDPOINT_URL", "http://a"),
            ("AWS_ENDPOINT_URL_S3", "http://b"),
        ]));
        assert_eq!(cfg.s3.endpoint.as_deref(), Some("http://b"));
        assert!(matches!(cfg.s3.credentials, AwsCredentials::Anonymous));
    }

    #[test]
    fn env_profile_files_and_half_configured_keys() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials");
        let config = dir.path().join("config");
        std::fs::write(
            &creds,
            "[default]\naws_access_key_id = D\naws_secret_access_key = DS\n\n\
             [work]\n# comment\naws_access_key_id=W\naws_secret_access_key = WS\n",
        )
        .unwrap();
        std::fs::write(&config, "[profile work]\nregion = ap-south-1\n[sso]\n").unwrap();
        let files = [
            ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
            ("AWS_CONFIG_FILE", config.to_str().unwrap()),
        ];
        let mut with_profile = files.to_vec();
        with_profile.push(("AWS_PROFILE", "work"));
        let cfg = CloudConfig::from_vars(vars(&with_profile));
        assert!(
            matches!(&cfg.s3.credentials, AwsCredentials::Static { key_id, .. } if key_id == "W")
        );
        assert_eq!(cfg.s3.region.as_deref(), Some("ap-south-1"));
        let cfg = CloudConfig::from_vars(vars(&files));
        assert!(
            matches!(&cfg.s3.credentials, AwsCredentials::Static { key_id, .. } if key_id == "D")
        );

        let mut missing = files.to_vec();
        missing.push(("AWS_PROFILE", "sso"));
        let clouds = Clouds::new(CloudConfig::from_vars(vars(&missing)));
        let err = clouds.s3("b").unwrap_err().to_string();
        assert!(err.contains("AWS_PROFILE=sso") && err.contains("AWS_ACCESS_KEY_ID"), "{err}");

        let cfg = CloudConfig::from_vars(vars(&[("AWS_ACCESS_KEY_ID", "only")]));
        assert!(matches!(cfg.s3.credentials, AwsCredentials::Unavailable { .. }));
    }

    #[test]
    fn env_gcs_emulator_and_credentials() {
        let cfg = CloudConfig::from_vars(vars(&[("STORAGE_EMULATOR_HOST", "127.0.0.1:4443")]));
        assert_eq!(cfg.gcs.base_url.as_deref(), Some("http://127.0.0.1:4443"));
        assert!(matches!(cfg.gcs.credentials, GcpCredentials::Emulator));
        let cfg = CloudConfig::from_vars(vars(&[
            ("ARTFS_GCS_ENDPOINT", "http://127.0.0.1:9/"),
            ("STORAGE_EMULATOR_HOST", "other:1"),
        ]));
        assert_eq!(cfg.gcs.base_url.as_deref(), Some("http://127.0.0.1:9"));
        let cfg = CloudConfig::from_vars(vars(&[("GOOGLE_SERVICE_ACCOUNT_KEY", "{\"secret\":1}")]));
        assert!(!format!("{cfg:?}").contains("secret"));
        let cfg = CloudConfig::from_vars(vars(&[("GOOGLE_APPLICATION_CREDENTIALS", "/x.json")]));
        assert!(matches!(cfg.gcs.credentials, GcpCredentials::ApplicationCredentials(_)));
        // Nothing configured (and no gcloud files under a fake HOME): anonymous.
        let cfg = CloudConfig::from_vars(vars(&[("HOME", "/nonexistent")]));
        assert!(matches!(cfg.gcs.credentials, GcpCredentials::Anonymous));
    }

    #[test]
    fn stores_are_cached_per_bucket_and_urls_checked() {
        let clouds = Clouds::default();
        let a = clouds.s3("bucket-a").unwrap();
        assert!(Arc::ptr_eq(&a, &clouds.s3("bucket-a").unwrap()));
        assert!(!Arc::ptr_eq(&a, &clouds.s3("bucket-b").unwrap()));
        let g = clouds.gcs("bucket-a").unwrap();
        assert!(Arc::ptr_eq(&g, &clouds.gcs("bucket-a").unwrap()));
        for ok in ["s3://b/prefix", "gs://b", "http://127.0.0.1:1/x"] {
            clouds.bucket_store(&Url::parse(ok).unwrap()).unwrap();
        }
        let err = clouds.bucket_store(&Url::parse("ftp://x/y").unwrap()).unwrap_err();
        assert!(matches!(err, CloudError::UnsupportedScheme { .. }), "{err}");
        let err = clouds.bucket_store(&Url::parse("s3:///key").unwrap()).unwrap_err();
        assert!(matches!(err, CloudError::MissingBucket { .. }), "{err}");
    }

    #[tokio::test]
    async fn dead_server_fails_within_bounded_time() {
        let clouds = Clouds::new(CloudConfig {
            net: NetConfig { max_retries: 2, ..NetConfig::default() },
            ..CloudConfig::default()
        });
        let start = Instant::now();
        let err = clouds.send("GET", "http://127.0.0.1:1/x", &[]).await.unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
        match err {
            CloudError::Unreachable { attempts, .. } => assert_eq!(attempts, 3),
            other => panic!("expected Unreachable, got {other}"),
        }
    }

    #[test]
    fn a_stalled_request_retries_included_ends_within_60_s() {
        let net = NetConfig::default();
        let last_attempt_ends = net.retry_timeout + net.connect_timeout + net.read_timeout;
        assert!(last_attempt_ends <= REQUEST_BOUND, "{last_attempt_ends:?}");
        assert_eq!(REQUEST_BOUND, Duration::from_secs(60));
    }
}
