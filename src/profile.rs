//! The config file (`$XDG_CONFIG_HOME/artfs/config.toml`, or `ARTFS_CONFIG`): a `[default]`
//! table and `[profile.NAME]` tables of settings, as `aws` and `wandb` users know them. Only
//! reading and parsing it lives here; `config` decides what beats what.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The settings one profile may hold; each stands in for the global flag of the same name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub registry: Option<String>,
    pub entity: Option<String>,
    pub project: Option<String>,
    #[serde(alias = "cache-dir")]
    pub cache_dir: Option<PathBuf>,
    #[serde(alias = "cache-size")]
    pub cache_size: Option<String>,
}

/// The profile in use and where it came from, for `-v`, `show` and messages.
#[derive(Debug, Clone, Default)]
pub struct Selected {
    pub profile: Profile,
    /// `profile NAME in FILE` (or `[default] in FILE`); `None` without a config file.
    pub source: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read the config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file {path}, line {line}: {message}")]
    Malformed { path: String, line: usize, message: String },
    #[error("no profile {name:?} in {path} (it has: {have}); add [profile.{name}] there")]
    Unknown { name: String, path: String, have: String },
    #[error("profile {name:?} is selected but there is no config file at {path}")]
    NoFile { name: String, path: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    default: Option<Profile>,
    #[serde(default)]
    profile: BTreeMap<String, Profile>,
}

/// `ARTFS_CONFIG`, else `$XDG_CONFIG_HOME/artfs/config.toml` (`~/.config/...`).
pub fn config_path() -> Option<PathBuf> {
    match std::env::var_os("ARTFS_CONFIG").filter(|v| !v.is_empty()) {
        Some(p) => Some(PathBuf::from(p)),
        None => dirs::config_dir().map(|d| d.join("artfs/config.toml")),
    }
}

/// The profile `name` selects (`--profile`/`ARTFS_PROFILE`), else the file's `[default]`. No
/// file is no profile, unless one was asked for by name.
pub fn select(name: Option<&str>) -> Result<Selected, ProfileError> {
    let Some(path) = config_path() else { return Ok(Selected::default()) };
    let shown = path.display().to_string();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return match name {
                Some(name) => Err(ProfileError::NoFile { name: name.into(), path: shown }),
                None => Ok(Selected::default()),
            };
        }
        Err(source) => return Err(ProfileError::Read { path: shown, source }),
    };
    let mut file = parse(&path, &text)?;
    let (profile, source) = match name {
        None | Some("default") => {
            (file.default.unwrap_or_default(), format!("[default] in {shown}"))
        }
        Some(name) => match file.profile.remove(name) {
            Some(p) => (p, format!("profile {name} in {shown}")),
            None => {
                let have: Vec<&str> = file.profile.keys().map(String::as_str).collect();
                let have = if have.is_empty() { "none".to_owned() } else { have.join(", ") };
                return Err(ProfileError::Unknown { name: name.into(), path: shown, have });
            }
        },
    };
    Ok(Selected { profile, source: Some(source) })
}

fn parse(path: &Path, text: &str) -> Result<File, ProfileError> {
    toml::from_str(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        ProfileError::Malformed {
            path: path.display().to_string(),
            line: text[..at.min(text.len())].matches('\n').count() + 1,
            message: e.message().trim().replace('\n', "; "),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_parse_and_errors_name_the_line() {
        let text = "[default]\nregistry = \"s3://b/p\"\n\n[profile.team]\nentity = \"acme\"\ncache_size = \"5G\"\n";
        let f = parse(Path::new("c.toml"), text).unwrap();
        assert_eq!(f.default.unwrap().registry.as_deref(), Some("s3://b/p"));
        assert_eq!(f.profile["team"].cache_size.as_deref(), Some("5G"));
        let e = parse(Path::new("c.toml"), "[default]\nregistry = \"x\"\nregisty = \"y\"\n");
        let e = e.unwrap_err().to_string();
        assert!(e.starts_with("config file c.toml, line 3: "), "{e}");
        let e = parse(Path::new("c.toml"), "[default]\n\nregistry = \n").unwrap_err().to_string();
        assert!(e.starts_with("config file c.toml, line 3: "), "{e}");
    }
}
