//! Validated, resolved settings from flags, environment and defaults (no I/O).

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{GlobalArgs, MountArgs};
use crate::names::{NameError, validate_scope};
use crate::profile::Selected;

/// W&B's default project.
pub const DEFAULT_PROJECT: &str = "uncategorized";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("invalid size {0:?}: use a number with an optional unit, e.g. 500M, 20G, 1T")]
    Size(String),
    #[error("invalid duration {0:?}: use e.g. 0s, 30m, 1h, 2d")]
    Duration(String),
    #[error("cannot find a home directory for the default {0}; set it explicitly")]
    NoHome(&'static str),
    #[error(
        "no default entity: $USER is not set and uid {0} has no account name; pass --entity or set ARTFS_ENTITY"
    )]
    NoUser(u32),
    #[error("artifact {0:?} is not valid UTF-8")]
    NotUtf8(String),
    #[error("invalid mode {0:?}: use octal permission bits, e.g. 0444 or 555")]
    Mode(String),
    #[error(
        "registry {url:?} looks like a mistyped URL: write {scheme}://BUCKET/PREFIX (or ./{url} for \
         a local directory of that name)"
    )]
    MistypedUrl { url: String, scheme: String },
    #[error(transparent)]
    Profile(#[from] crate::profile::ProfileError),
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Where reads go (`ls`, `show`, `get`, `mount`, ...).
    pub registry: String,
    pub registry_origin: RegistryOrigin,
    /// Where writes go: the read registry, except that `WANDB_BASE_URL` only ever names one to
    /// read (the SDK's server is written through the SDK), so writes then use the default.
    pub write_registry: String,
    pub write_origin: RegistryOrigin,
    pub entity: String,
    /// Whether `entity` was named (flag or env) rather than the user name: a W&B server's
    /// default entity is the API key's own (`artfs::cmd` asks it).
    pub entity_given: bool,
    pub project: String,
    pub cache_dir: PathBuf,
    /// `None`: the cache picks a default from the free space of its disk.
    pub cache_size: Option<u64>,
    pub verbose: u8,
    pub quiet: bool,
}

impl TryFrom<&GlobalArgs> for Config {
    type Error = ConfigError;

    /// Without a config file's profile (the Python package's readers).
    fn try_from(g: &GlobalArgs) -> Result<Config, ConfigError> {
        Config::resolve(g, &Selected::default())
    }
}

impl Config {
    /// Each setting from the first that has it: the flag (or artfs's own variable, which clap
    /// folds into it), the selected profile of the config file, W&B's variable, the default.
    pub fn resolve(g: &GlobalArgs, selected: &Selected) -> Result<Config, ConfigError> {
        // W&B's own variables are the defaults where ours are unset, as the SDK reads them.
        let wandb = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
        let p = &selected.profile;
        let (write_registry, write_origin) = match (&g.registry, &p.registry, &selected.source) {
            (Some(r), _, _) => (r.clone(), RegistryOrigin::given(r)),
            (None, Some(r), Some(source)) => {
                (r.clone(), RegistryOrigin::Profile { source: source.clone() })
            }
            _ => (default_registry()?, RegistryOrigin::Default),
        };
        check_registry_url(&write_registry)?;
        let (registry, registry_origin) = match wandb("WANDB_BASE_URL") {
            Some(url) if write_origin == RegistryOrigin::Default => {
                (url, RegistryOrigin::WandbBaseUrl)
            }
            _ => (write_registry.clone(), write_origin.clone()),
        };
        let named = g.entity.clone().or_else(|| p.entity.clone()).or_else(|| wandb("WANDB_ENTITY"));
        let entity_given = named.is_some();
        let entity = match named {
            Some(e) => e,
            None => default_user()?,
        };
        validate_scope("entity", &entity)?;
        let project = g
            .project
            .clone()
            .or_else(|| p.project.clone())
            .or_else(|| wandb("WANDB_PROJECT"))
            .unwrap_or_else(|| DEFAULT_PROJECT.to_owned());
        validate_scope("project", &project)?;
        let cache_dir = match g.cache_dir.as_ref().or(p.cache_dir.as_ref()) {
            Some(d) => d.clone(),
            None => dirs::cache_dir().ok_or(ConfigError::NoHome("cache dir"))?.join("artfs"),
        };
        let cache_size = g.cache_size.as_ref().or(p.cache_size.as_ref());
        let cache_size = cache_size.map(|s| parse_size(s)).transpose()?;
        Ok(Config {
            registry,
            registry_origin,
            write_registry,
            write_origin,
            entity,
            entity_given,
            project,
            cache_dir,
            cache_size,
            verbose: g.verbose,
            quiet: g.quiet,
        })
    }
}

/// Where the registry URL came from, in the order that decides it: `--registry`,
/// `ARTFS_REGISTRY`, the config file's profile, then (for reads only) `WANDB_BASE_URL`, then the
/// default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryOrigin {
    Flag,
    Env,
    WandbBaseUrl,
    Default,
    /// `source`: `profile NAME in FILE` or `[default] in FILE`.
    Profile {
        source: String,
    },
}

impl RegistryOrigin {
    /// clap folds `ARTFS_REGISTRY` into the flag's value: a value equal to the variable's came
    /// from it (or from a flag that says the same, which is as good).
    fn given(value: &str) -> RegistryOrigin {
        match std::env::var("ARTFS_REGISTRY") {
            Ok(env) if env == value => RegistryOrigin::Env,
            _ => RegistryOrigin::Flag,
        }
    }

    /// Chosen by neither `--registry` nor `ARTFS_REGISTRY` but by the SDK's variable or a
    /// config file's profile, which a user may not have in mind.
    pub fn is_implicit(&self) -> bool {
        matches!(self, RegistryOrigin::WandbBaseUrl | RegistryOrigin::Profile { .. })
    }

    /// What a user reads after the URL: `(from WANDB_BASE_URL, reads only)`.
    pub fn describe(&self) -> String {
        match self {
            RegistryOrigin::Flag => "from --registry".into(),
            RegistryOrigin::Env => "from ARTFS_REGISTRY".into(),
            RegistryOrigin::WandbBaseUrl => "from WANDB_BASE_URL, which artfs only reads".into(),
            RegistryOrigin::Default => "the default".into(),
            RegistryOrigin::Profile { source } => format!("from {source}"),
        }
    }
}

fn default_registry() -> Result<String, ConfigError> {
    let dir = dirs::data_dir().ok_or(ConfigError::NoHome("registry"))?;
    Ok(dir.join("artfs/registry").to_string_lossy().into_owned())
}

/// Schemes a registry URL may have; a value that starts like one of them but lacks its `://`
/// is a typo that would otherwise become a local directory named `s3:`.
const URL_SCHEMES: [&str; 7] = ["s3", "gs", "gcs", "http", "https", "file", "wandb"];

fn check_registry_url(url: &str) -> Result<(), ConfigError> {
    for scheme in URL_SCHEMES {
        let Some(rest) = url.strip_prefix(scheme) else { continue };
        if rest.starts_with("://") {
            return Ok(());
        }
        if rest.starts_with(':') || rest.starts_with("//") || rest.starts_with(":/") {
            return Err(ConfigError::MistypedUrl { url: url.to_owned(), scheme: scheme.into() });
        }
    }
    Ok(())
}

/// `artfs mount` settings.
#[derive(Debug, Clone)]
pub struct MountConfig {
    /// `None`: the whole registry.
    pub artifact: Option<String>,
    /// As given (made absolute by the caller, which may do I/O).
    pub mountpoint: PathBuf,
    pub foreground: bool,
    pub allow_other: bool,
    /// Hand complete cached files to the kernel (FUSE passthrough) where it allows it.
    pub passthrough: bool,
    pub refresh: Duration,
    /// Bound on one registry request (and on a download's silence); at least one second.
    pub timeout: Duration,
    /// Small files fetched ahead of a directory walk (0: off).
    pub readahead_files: u32,
    /// Bytes warmed up for a version read in shuffled order (0: off).
    pub warm_up_bytes: u64,
    /// `None`: the default under the XDG state dir.
    pub log_file: Option<PathBuf>,
    /// Owner and group shown for every node (`None`: the mounting user's).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Permission bits of files and directories (`None`: 0444 and 0555).
    pub file_mode: Option<u16>,
    pub dir_mode: Option<u16>,
}

/// Octal permission bits (`0444`, `444`, `0o444`), at most `0777`.
pub fn parse_mode(s: &str) -> Result<u16, ConfigError> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    u16::from_str_radix(digits, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| ConfigError::Mode(s.to_owned()))
}

impl TryFrom<&MountArgs> for MountConfig {
    type Error = ConfigError;

    fn try_from(a: &MountArgs) -> Result<MountConfig, ConfigError> {
        // clap guarantees one or two values.
        let (artifact, mountpoint) = match a.targets.as_slice() {
            [m] => (None, m.clone()),
            [artifact, m, ..] => {
                let artifact = artifact
                    .to_str()
                    .ok_or_else(|| ConfigError::NotUtf8(artifact.to_string_lossy().into()))?;
                (Some(artifact.to_owned()), m.clone())
            }
            [] => (None, PathBuf::from(".")),
        };
        Ok(MountConfig {
            artifact,
            mountpoint,
            foreground: a.foreground,
            allow_other: a.allow_other,
            passthrough: !a.no_passthrough,
            refresh: Duration::from_secs(a.refresh_secs),
            timeout: Duration::from_secs(a.timeout_secs.max(1)),
            readahead_files: a.readahead_files,
            warm_up_bytes: parse_size(&a.warm_up)?,
            log_file: a.log_file.clone(),
            uid: a.uid,
            gid: a.gid,
            file_mode: a.file_mode.as_deref().map(parse_mode).transpose()?,
            dir_mode: a.dir_mode.as_deref().map(parse_mode).transpose()?,
        })
    }
}

/// Default log file of the mount daemon at `mountpoint` (absolute).
pub fn default_mount_log(mountpoint: &std::path::Path) -> Option<PathBuf> {
    let dir = dirs::state_dir().or_else(dirs::cache_dir)?.join("artfs");
    let name = mountpoint.to_string_lossy().trim_matches('/').replace('/', "_");
    Some(dir.join(format!("mount-{name}.log")))
}

/// The default entity, W&B's: the user name. `$USER`, else the account name of the process's uid
/// (from the passwd database, so NSS/LDAP accounts count), never a made-up name.
fn default_user() -> Result<String, ConfigError> {
    if let Some(user) = std::env::var("USER").ok().filter(|v| !v.is_empty()) {
        return Ok(user);
    }
    let uid = nix::unistd::Uid::current();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) if !user.name.is_empty() => Ok(user.name),
        _ => Err(ConfigError::NoUser(uid.as_raw())),
    }
}

/// `500M`, `20G`, `1.5T`, `1048576` (bytes); binary units.
pub fn parse_size(s: &str) -> Result<u64, ConfigError> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| ConfigError::Size(s.to_owned()))?;
    let mult: u64 =
        match unit.trim().to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
            "" => 1,
            "K" => 1 << 10,
            "M" => 1 << 20,
            "G" => 1 << 30,
            "T" => 1 << 40,
            _ => return Err(ConfigError::Size(s.to_owned())),
        };
    if !n.is_finite() || n < 0.0 {
        return Err(ConfigError::Size(s.to_owned()));
    }
    Ok((n * mult as f64) as u64)
}

/// `0s`, `90s`, `30m`, `1h`, `2d`.
pub fn parse_duration(s: &str) -> Result<Duration, ConfigError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| ConfigError::Duration(s.to_owned()))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(ConfigError::Duration(s.to_owned())),
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_size("500M").unwrap(), 500 << 20);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5X").is_err());
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert!(parse_duration("1w").is_err());
    }

    #[test]
    fn mistyped_registry_urls_are_refused() {
        for bad in ["s3:/x", "gs:/x", "http:/x", "s3//x", "s3:x", "https:/h", "file:/tmp/x"] {
            assert!(
                matches!(check_registry_url(bad), Err(ConfigError::MistypedUrl { .. })),
                "{bad}"
            );
        }
        for good in ["s3://b/p", "gs://b", "/tmp/s3:/x", "./s3:x", "http://h", "reg", "s3data"] {
            check_registry_url(good).unwrap();
        }
    }

    #[test]
    fn a_mount_waits_60_s_for_a_registry_that_does_not_answer_by_default() {
        use clap::Parser as _;
        let cli = crate::cli::Cli::try_parse_from(["artfs", "mount", "/mnt"]).unwrap();
        let crate::cli::Command::Mount(args) = &cli.command else { panic!("not a mount") };
        let mc = MountConfig::try_from(args).unwrap();
        assert_eq!(mc.timeout, Duration::from_secs(60));
        assert_eq!(crate::fs::FsOptions::default().registry_timeout, Duration::from_secs(60));
        assert_eq!(crate::fetch::FETCH_STALL_TIMEOUT, Duration::from_secs(60));
    }
}
