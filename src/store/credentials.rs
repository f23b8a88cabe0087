//! Which cloud, reached how: the S3 and GCS settings and credentials artfs uses, read from each
//! cloud's usual variables and files (`AWS_*`, `~/.aws/credentials`, `GOOGLE_APPLICATION_CREDENTIALS`,
//! …) one named variable at a time.
//!
//! `AmazonS3Builder::from_env()` is not used on purpose: it slurps every `AWS_*` variable, and
//! unrelated ones (`AWS_CA_BUNDLE`, ...) change its behaviour in ways nobody asked for.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use super::guard::RefAccess;
use crate::http::NetConfig;

/// How S3 requests are signed.
#[derive(Clone, Default)]
pub enum AwsCredentials {
    /// Unsigned requests: public buckets, or servers that accept anything.
    #[default]
    Anonymous,
    /// An access key pair (from the environment or a profile), with an optional session token.
    Static { key_id: String, secret_key: String, session_token: Option<String> },
    /// Whatever `object_store` finds itself: web identity, ECS/EKS container credentials, or
    /// the EC2 instance metadata service.
    Ambient,
    /// Configuration that cannot work (e.g. an `AWS_PROFILE` without keys); reported when an
    /// S3 store is first needed, so users of local registries are not bothered.
    Unavailable { reason: String },
}

/// Never prints secrets: only which kind of credentials is configured.
impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AwsCredentials::Anonymous => f.write_str("Anonymous"),
            AwsCredentials::Static { key_id, session_token, .. } => {
                // The key id is not a secret, but its tail is enough to tell keys apart.
                let tail: String =
                    key_id.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
                write!(f, "Static(key id …{tail}, session token: {})", session_token.is_some())
            }
            AwsCredentials::Ambient => f.write_str("Ambient"),
            AwsCredentials::Unavailable { reason } => write!(f, "Unavailable({reason})"),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct S3Config {
    /// `http(s)://host:port` of an S3-compatible server; `None` for AWS itself.
    pub endpoint: Option<String>,
    /// `None`: `us-east-1`.
    pub region: Option<String>,
    pub credentials: AwsCredentials,
    /// `bucket.host` URLs instead of `host/bucket`. Custom endpoints rarely have the DNS for it.
    pub virtual_hosted_style: bool,
}

/// How GCS requests are authorised.
#[derive(Clone, Default)]
pub enum GcpCredentials {
    #[default]
    Anonymous,
    /// No OAuth at all (fake-gcs-server and other emulators).
    Emulator,
    /// A service-account key, as JSON text.
    ServiceAccountKey(String),
    ServiceAccountFile(PathBuf),
    /// `GOOGLE_APPLICATION_CREDENTIALS`: a service-account or authorized-user JSON file.
    ApplicationCredentials(PathBuf),
    /// `object_store`'s own discovery: gcloud's ADC file, then the GCE metadata server.
    Ambient,
}

/// Never prints the key itself.
impl fmt::Debug for GcpCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GcpCredentials::Anonymous => f.write_str("Anonymous"),
            GcpCredentials::Emulator => f.write_str("Emulator"),
            GcpCredentials::ServiceAccountKey(_) => f.write_str("ServiceAccountKey(<redacted>)"),
            GcpCredentials::ServiceAccountFile(p) => write!(f, "ServiceAccountFile({p:?})"),
            GcpCredentials::ApplicationCredentials(p) => write!(f, "ApplicationCredentials({p:?})"),
            GcpCredentials::Ambient => f.write_str("Ambient"),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct GcsConfig {
    /// Base URL of the XML and JSON APIs; `None`: [`GCS_DEFAULT_BASE_URL`].
    pub base_url: Option<String>,
    pub credentials: GcpCredentials,
}

/// Everything [`Clouds`] needs to build stores. `Default` reads nothing: anonymous access to the
/// public clouds with default retries.
#[derive(Debug, Clone, Default)]
pub struct CloudConfig {
    pub s3: S3Config,
    pub gcs: GcsConfig,
    pub net: NetConfig,
    /// What reference reads may reach; the default: public HTTP(S) addresses only, no files.
    pub refs: RefAccess,
}

impl CloudConfig {
    /// The configuration the environment describes (see [`CloudConfig::from_vars`]).
    pub fn from_env() -> CloudConfig {
        CloudConfig::from_vars(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Reads, through `var`:
    /// - S3: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, else
    ///   `AWS_WEB_IDENTITY_TOKEN_FILE`+`AWS_ROLE_ARN` or `AWS_CONTAINER_CREDENTIALS_*` (ambient),
    ///   else
    ///   keys of profile `AWS_PROFILE` (default `default`) in `AWS_SHARED_CREDENTIALS_FILE`
    ///   (`~/.aws/credentials`), else the instance metadata service if `ARTFS_AWS_IMDS=1`, else
    ///   anonymous. Region: `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region` in
    ///   `AWS_CONFIG_FILE` (`~/.aws/config`). Endpoint: `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`,
    ///   `AWS_S3_ENDPOINT_URL` (the name the W&B SDK reads); `ARTFS_S3_VIRTUAL_HOSTED=1` for
    ///   `bucket.host` URLs.
    /// - GCS: `ARTFS_GCS_ENDPOINT` or `STORAGE_EMULATOR_HOST` (an emulator: no OAuth), else
    ///   `GOOGLE_SERVICE_ACCOUNT_KEY` (JSON), `GOOGLE_SERVICE_ACCOUNT[_PATH]`,
    ///   `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's ADC file, the GCE metadata server if
    ///   `ARTFS_GCE_METADATA=1`, else anonymous.
    ///
    /// Instance metadata services are opt-in: probing them off-cloud costs a timeout per store.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> CloudConfig {
        let home = var("HOME").map(PathBuf::from);
        CloudConfig {
            s3: S3Config::from_vars(&var, home.as_deref()),
            gcs: GcsConfig::from_vars(&var, home.as_deref()),
            net: NetConfig::default(),
            refs: RefAccess::default(),
        }
    }
}

/// `ARTFS_…=1` or `=true`.
fn flag(var: &dyn Fn(&str) -> Option<String>, name: &str) -> bool {
    var(name).is_some_and(|v| matches!(v.as_str(), "1" | "true"))
}

impl S3Config {
    /// The AWS SDKs' variables and files, as [`CloudConfig::from_vars`] lists them.
    fn from_vars(var: &dyn Fn(&str) -> Option<String>, home: Option<&std::path::Path>) -> S3Config {
        let flag = |name: &str| flag(var, name);
        let profile = var("AWS_PROFILE").or_else(|| var("AWS_DEFAULT_PROFILE"));
        let explicit_profile = profile.is_some();
        let profile = profile.unwrap_or_else(|| "default".to_owned());
        let credentials_file = var("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws/credentials")));
        let config_file = var("AWS_CONFIG_FILE")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws/config")));
        let profile_creds = credentials_file.as_deref().and_then(|p| ini_section(p, &profile));
        let config_section_name = match profile.as_str() {
            "default" => "default".to_owned(),
            p => format!("profile {p}"),
        };
        let profile_config =
            config_file.as_deref().and_then(|p| ini_section(p, &config_section_name));
        let from_profile = |key: &str| {
            profile_creds
                .as_ref()
                .and_then(|s| s.get(key).cloned())
                .or_else(|| profile_config.as_ref().and_then(|s| s.get(key).cloned()))
        };

        let credentials = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(key_id), Some(secret_key)) => AwsCredentials::Static {
                key_id,
                secret_key,
                session_token: var("AWS_SESSION_TOKEN"),
            },
            (Some(_), None) | (None, Some(_)) => AwsCredentials::Unavailable {
                reason: "only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set; set both"
                    .to_owned(),
            },
            (None, None) => {
                let web_identity =
                    var("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() && var("AWS_ROLE_ARN").is_some();
                let container = var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
                    || var("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some();
                match (from_profile("aws_access_key_id"), from_profile("aws_secret_access_key")) {
                    _ if web_identity => AwsCredentials::Ambient,
                    (Some(key_id), Some(secret_key)) => AwsCredentials::Static {
                        key_id,
                        secret_key,
                        session_token: from_profile("aws_session_token"),
                    },
                    _ if container || flag("ARTFS_AWS_IMDS") => AwsCredentials::Ambient,
                    _ if explicit_profile => AwsCredentials::Unavailable {
                        reason: format!(
                            "AWS_PROFILE={profile} has no aws_access_key_id/aws_secret_access_key \
                             in {} or {} (SSO and role profiles are not supported); export \
                             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead",
                            display_opt(&credentials_file),
                            display_opt(&config_file),
                        ),
                    },
                    _ => AwsCredentials::Anonymous,
                }
            }
        };
        S3Config {
            endpoint: var("AWS_ENDPOINT_URL_S3")
                .or_else(|| var("AWS_ENDPOINT_URL"))
                .or_else(|| var("AWS_S3_ENDPOINT_URL"))
                .map(|e| e.trim_end_matches('/').to_owned()),
            region: var("AWS_REGION")
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .or_else(|| profile_config.as_ref().and_then(|s| s.get("region").cloned())),
            credentials,
            virtual_hosted_style: flag("ARTFS_S3_VIRTUAL_HOSTED"),
        }
    }
}

impl GcsConfig {
    /// Google's variables and gcloud's ADC file, as [`CloudConfig::from_vars`] lists them.
    fn from_vars(
        var: &dyn Fn(&str) -> Option<String>,
        home: Option<&std::path::Path>,
    ) -> GcsConfig {
        let flag = |name: &str| flag(var, name);
        let emulator = var("ARTFS_GCS_ENDPOINT").or_else(|| var("STORAGE_EMULATOR_HOST"));
        let adc_file = var("CLOUDSDK_CONFIG")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".config/gcloud")))
            .map(|d| d.join("application_default_credentials.json"));
        match emulator {
            Some(host) => {
                // STORAGE_EMULATOR_HOST is often written without a scheme (`localhost:4443`).
                let base = match host.contains("://") {
                    true => host,
                    false => format!("http://{host}"),
                };
                GcsConfig {
                    base_url: Some(base.trim_end_matches('/').to_owned()),
                    credentials: GcpCredentials::Emulator,
                }
            }
            None => {
                let credentials = if let Some(key) = var("GOOGLE_SERVICE_ACCOUNT_KEY") {
                    GcpCredentials::ServiceAccountKey(key)
                } else if let Some(path) =
                    var("GOOGLE_SERVICE_ACCOUNT").or_else(|| var("GOOGLE_SERVICE_ACCOUNT_PATH"))
                {
                    GcpCredentials::ServiceAccountFile(path.into())
                } else if let Some(path) = var("GOOGLE_APPLICATION_CREDENTIALS") {
                    GcpCredentials::ApplicationCredentials(path.into())
                } else if adc_file.as_ref().is_some_and(|p| p.is_file())
                    || flag("ARTFS_GCE_METADATA")
                {
                    GcpCredentials::Ambient
                } else {
                    GcpCredentials::Anonymous
                };
                GcsConfig { base_url: None, credentials }
            }
        }
    }
}

fn display_opt(p: &Option<PathBuf>) -> String {
    p.as_ref().map_or_else(|| "(no $HOME)".to_owned(), |p| p.display().to_string())
}

/// The `key = value` pairs of `[section]` in an AWS-style INI file; `None` if the file or the
/// section is missing.
fn ini_section(path: &std::path::Path, section: &str) -> Option<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut found = None;
    let mut in_section = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_section = name.trim() == section;
            if in_section {
                found.get_or_insert_with(HashMap::new);
            }
            continue;
        }
        if in_section
            && let Some((k, v)) = line.split_once('=')
            && let Some(map) = found.as_mut()
        {
            map.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    found
}
