//! Artifact names as W&B spells them: `[[entity/]project/]name[:alias|:vN]`, validated as W&B does.

use std::fmt;

/// W&B's limit on artifact and alias names.
pub const MAX_NAME_CHARS: usize = 128;
/// The alias every log moves.
pub const LATEST: &str = "latest";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error(
        "invalid artifact name {0:?}: use letters, digits, `-`, `_` and `.` (at most 128 characters)"
    )]
    Artifact(String),
    #[error(
        "invalid {kind} name {name:?}: it must be non-empty, at most 128 characters, without `/`, `:`, `\\` or control characters, and not start with `.`"
    )]
    Scope { kind: &'static str, name: String },
    #[error(
        "invalid alias {0:?}: aliases are non-empty, at most 128 characters, without `/`, `:` or control characters"
    )]
    Alias(String),
    #[error("alias {0:?} looks like a version; `vN` names are given by artfs and cannot be set")]
    VersionAlias(String),
    #[error("invalid artifact path {0:?}: expected `[[entity/]project/]name[:alias]`")]
    Path(String),
}

/// `entity/project/name`: one collection of versions.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct CollectionPath {
    pub entity: String,
    pub project: String,
    pub name: String,
}

impl CollectionPath {
    pub fn new(entity: &str, project: &str, name: &str) -> Result<Self, NameError> {
        validate_scope("entity", entity)?;
        validate_scope("project", project)?;
        validate_artifact_name(name)?;
        Ok(CollectionPath { entity: entity.into(), project: project.into(), name: name.into() })
    }
}

impl fmt::Display for CollectionPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.entity, self.project, self.name)
    }
}

/// What follows the `:` of an artifact path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selector {
    Version(u32),
    Alias(String),
}

impl Selector {
    pub fn parse(s: &str) -> Result<Selector, NameError> {
        match parse_version(s) {
            Some(v) => Ok(Selector::Version(v)),
            None => {
                validate_alias_chars(s)?;
                Ok(Selector::Alias(s.to_owned()))
            }
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Version(v) => write!(f, "v{v}"),
            Selector::Alias(a) => f.write_str(a),
        }
    }
}

/// A parsed artifact path; `selector` is `None` when the user gave no `:alias`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRef {
    pub collection: CollectionPath,
    pub selector: Option<Selector>,
}

impl ArtifactRef {
    /// Parses `[[entity/]project/]name[:alias]`, filling in the default entity and project.
    pub fn parse(s: &str, entity: &str, project: &str) -> Result<ArtifactRef, NameError> {
        let (path, selector) = match s.rsplit_once(':') {
            Some((p, sel)) => (p, Some(Selector::parse(sel)?)),
            None => (s, None),
        };
        let parts: Vec<&str> = path.split('/').collect();
        let collection = match parts.as_slice() {
            [name] => CollectionPath::new(entity, project, name)?,
            [p, name] => CollectionPath::new(entity, p, name)?,
            [e, p, name] => CollectionPath::new(e, p, name)?,
            _ => return Err(NameError::Path(s.to_owned())),
        };
        Ok(ArtifactRef { collection, selector })
    }

    /// The selector, `latest` when none was given (W&B's rule).
    pub fn selector_or_latest(&self) -> Selector {
        self.selector.clone().unwrap_or_else(|| Selector::Alias(LATEST.to_owned()))
    }
}

impl fmt::Display for ArtifactRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.selector {
            Some(s) => write!(f, "{}:{s}", self.collection),
            None => write!(f, "{}", self.collection),
        }
    }
}

/// `v12` → 12. Leading zeros are not a version (`v01` would be ambiguous).
pub fn parse_version(s: &str) -> Option<u32> {
    let digits = s.strip_prefix('v')?;
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub fn validate_artifact_name(name: &str) -> Result<(), NameError> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok { Ok(()) } else { Err(NameError::Artifact(name.to_owned())) }
}

/// Entities and projects become path components in the registry and the mount.
pub fn validate_scope(kind: &'static str, name: &str) -> Result<(), NameError> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && !name.starts_with('.')
        && !name.chars().any(|c| matches!(c, '/' | ':' | '\\' | '#' | '?' | '%') || c.is_control());
    if ok { Ok(()) } else { Err(NameError::Scope { kind, name: name.to_owned() }) }
}

fn validate_alias_chars(alias: &str) -> Result<(), NameError> {
    let ok = !alias.is_empty()
        && alias.chars().count() <= MAX_NAME_CHARS
        && !alias.chars().any(|c| matches!(c, '/' | ':') || c.is_control());
    if ok { Ok(()) } else { Err(NameError::Alias(alias.to_owned())) }
}

/// `v` and digits, at any length and with leading zeros: such an alias would read as a version
/// (or, past `u32`, as one that cannot exist), so no user may set it.
fn looks_like_version(s: &str) -> bool {
    s.strip_prefix('v').is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// An alias a user may set: valid characters and not a version name.
pub fn validate_user_alias(alias: &str) -> Result<(), NameError> {
    validate_alias_chars(alias)?;
    if looks_like_version(alias) {
        return Err(NameError::VersionAlias(alias.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let r = ArtifactRef::parse("bikes", "me", "uncategorized").unwrap();
        assert_eq!(r.collection.to_string(), "me/uncategorized/bikes");
        assert_eq!(r.selector, None);
        assert_eq!(r.selector_or_latest(), Selector::Alias("latest".into()));
        let r = ArtifactRef::parse("proj/bikes:v3", "me", "x").unwrap();
        assert_eq!(r.collection.to_string(), "me/proj/bikes");
        assert_eq!(r.selector, Some(Selector::Version(3)));
        let r = ArtifactRef::parse("acme/proj/bike-data.v2_x:best-ap50", "me", "x").unwrap();
        assert_eq!(r.collection.entity, "acme");
        assert_eq!(r.selector, Some(Selector::Alias("best-ap50".into())));
        assert_eq!(r.to_string(), "acme/proj/bike-data.v2_x:best-ap50");
    }

    #[test]
    fn refuses_bad_names() {
        for bad in ["", "a/b/c/d", "bad name", "x:y/z", "a:", "émoji", ".."] {
            assert!(ArtifactRef::parse(bad, "me", "p").is_err(), "{bad:?}");
        }
        assert!(ArtifactRef::parse(&"a".repeat(129), "me", "p").is_err());
        assert!(ArtifactRef::parse(&"a".repeat(128), "me", "p").is_ok());
        assert!(ArtifactRef::parse("bikes", "me", ".hidden").is_err());
    }

    #[test]
    fn versions_and_aliases() {
        assert_eq!(parse_version("v0"), Some(0));
        assert_eq!(parse_version("v12"), Some(12));
        for not in ["v", "v01", "vx", "12", "v-1", "V1"] {
            assert_eq!(parse_version(not), None, "{not}");
        }
        assert_eq!(validate_user_alias("v3"), Err(NameError::VersionAlias("v3".into())));
        for long in ["v99999999999", "v4294967296", "v01", &format!("v{}", "9".repeat(127))] {
            assert_eq!(validate_user_alias(long), Err(NameError::VersionAlias(long.into())));
        }
        for fine in ["v", "v1x", "vv1", "V1", "v-1"] {
            assert!(validate_user_alias(fine).is_ok(), "{fine}");
        }
        assert!(validate_user_alias("production").is_ok());
        assert!(validate_user_alias("a/b").is_err());
        assert!(validate_user_alias("a:b").is_err());
        assert!(validate_user_alias("").is_err());
        let tab = validate_user_alias("a\tb").unwrap_err().to_string();
        assert!(tab.contains("control characters"), "{tab}");
    }
}
