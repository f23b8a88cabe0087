//! The W&B artifact manifest (version 1): lenient parsing, strict validation, byte-compatible output.
//!
//! A manifest maps POSIX paths to entries. Parsing accepts everything the W&B SDKs write (the Python
//! in-memory form and the compact form wandb-core uploads: missing or null sizes, string or numeric
//! `extra` values, `local_path`, `skip_cache`, `birthArtifactID`, unknown keys). Validation is strict:
//! a manifest that parses is safe to expose as a directory tree (no absolute paths, no `..`, no empty
//! components, no file/directory collisions). Serialisation reproduces wandb-core's bytes.

mod digest;
mod json;

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

pub use digest::{ContentCheck, DigestAlg, EntryHasher, artifact_digest, hash_file, md5_base64};

/// The only manifest version W&B has ever written.
pub const MANIFEST_VERSION: u64 = 1;
/// The storage policy of every W&B artifact stored by W&B itself (and by artfs).
pub const STORAGE_POLICY: &str = "wandb-storage-policy-v1";
/// Longest entry path component accepted: the usual `NAME_MAX` of Linux filesystems.
pub const MAX_NAME_BYTES: usize = 255;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("manifest version {0} is not supported (only version 1 exists)")]
    Version(u64),
    #[error("manifest entry {path:?}: {reason}")]
    Entry { path: String, reason: String },
}

impl ManifestError {
    fn entry(path: &str, reason: impl Into<String>) -> Self {
        ManifestError::Entry { path: path.to_owned(), reason: reason.into() }
    }
}

/// `storagePolicyConfig`: W&B writes `storageLayout` ("V1"/"V2") and sometimes `storageRegion`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoragePolicyConfig {
    pub storage_layout: String,
    pub storage_region: Option<String>,
}

impl Default for StoragePolicyConfig {
    fn default() -> Self {
        StoragePolicyConfig { storage_layout: "V2".to_owned(), storage_region: None }
    }
}

/// The `extra` key holding the blob MD5 of an XXH128 entry (see [`Entry::blob_md5`]).
pub const EXTRA_MD5: &str = "md5";

/// One file of an artifact: stored content (digest = base64 MD5 or XXH128) or a reference to a URI
/// (digest = the etag recorded at log time, or the URI itself when logged without checksums).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Entry {
    pub digest: String,
    pub reference: Option<String>,
    pub size: Option<u64>,
    pub local_path: Option<String>,
    pub birth_artifact_id: Option<String>,
    pub skip_cache: bool,
    /// Sorted, as wandb-core writes them (a Go map).
    pub extra: BTreeMap<String, Value>,
}

impl Entry {
    /// A stored file with a base64 MD5 digest.
    pub fn stored(digest: String, size: u64) -> Self {
        Entry { digest, size: Some(size), ..Entry::default() }
    }

    pub fn is_reference(&self) -> bool {
        self.reference.is_some()
    }

    /// `extra.etag`, `extra.versionID` and friends as strings, whatever JSON type W&B used.
    pub fn extra_str(&self, key: &str) -> Option<String> {
        match self.extra.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub fn alg(&self) -> DigestAlg {
        match self.extra.get("alg").and_then(Value::as_str) {
            Some(a) if a.eq_ignore_ascii_case("XXH128") => DigestAlg::Xxh128,
            _ => DigestAlg::Md5,
        }
    }

    /// The base64 MD5 that names this stored entry's blob in a registry: the digest itself, or
    /// for an XXH128 entry its `extra.md5` (which `artfs serve` records from what the SDK
    /// declared). Only a location: the bytes found are still verified against `digest`.
    pub fn blob_md5(&self) -> Option<&str> {
        if self.is_reference() {
            return None;
        }
        match self.alg() {
            DigestAlg::Md5 => Some(&self.digest),
            DigestAlg::Xxh128 => self.extra.get(EXTRA_MD5).and_then(Value::as_str),
        }
    }

    /// How fetched content of this entry can be verified. References are pinned by etag/version at
    /// fetch time instead, so only their size is checked here.
    pub fn content_check(&self) -> ContentCheck {
        if self.is_reference() {
            return ContentCheck::None;
        }
        ContentCheck::from_digest(self.alg(), &self.digest)
    }
}

/// A parsed and validated manifest. `contents` is ordered by UTF-8 byte order of the path, the order
/// W&B hashes and serialises in.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Manifest {
    pub storage_policy_config: StoragePolicyConfig,
    pub contents: BTreeMap<String, Entry>,
}

#[derive(Deserialize)]
struct RawManifest {
    version: u64,
    #[serde(rename = "storagePolicy", default)]
    storage_policy: Option<String>,
    /// Any JSON: only an object's `storageLayout`/`storageRegion` mean something (the mount's
    /// streaming parser ignores it the same way).
    #[serde(rename = "storagePolicyConfig", default)]
    storage_policy_config: Option<Value>,
    #[serde(default)]
    contents: BTreeMap<String, Value>,
}

impl Manifest {
    /// Parses leniently, then validates strictly.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let raw: RawManifest = serde_json::from_slice(bytes)?;
        if raw.version != MANIFEST_VERSION {
            return Err(ManifestError::Version(raw.version));
        }
        let _ = raw.storage_policy; // Any policy name parses; only the v1 layout is understood.
        let cfg = match raw.storage_policy_config {
            Some(Value::Object(cfg)) => cfg,
            _ => serde_json::Map::new(),
        };
        let storage_policy_config = StoragePolicyConfig {
            storage_layout: cfg
                .get("storageLayout")
                .and_then(Value::as_str)
                .unwrap_or("V2")
                .to_owned(),
            storage_region: cfg.get("storageRegion").and_then(Value::as_str).map(str::to_owned),
        };
        let mut contents = BTreeMap::new();
        for (path, value) in raw.contents {
            let entry = parse_entry(&path, value)?;
            contents.insert(path, entry);
        }
        let manifest = Manifest { storage_policy_config, contents };
        manifest.validate()?;
        Ok(manifest)
    }

    /// Refuses anything that cannot be exposed safely as a directory tree, naming the entry.
    pub fn validate(&self) -> Result<(), ManifestError> {
        for (path, entry) in &self.contents {
            validate_path(path)?;
            if entry.digest.is_empty() {
                return Err(ManifestError::entry(path, "empty digest"));
            }
            let prefix = format!("{path}/");
            // Paths below `path` sort right after "path/", so one range probe finds a collision.
            if let Some((child, _)) = self.contents.range(prefix.clone()..).next()
                && child.starts_with(&prefix)
            {
                return Err(ManifestError::entry(
                    path,
                    format!("is a file but also a directory (of {child:?})"),
                ));
            }
        }
        Ok(())
    }

    /// The artifact digest (W&B's `manifest.digest()`).
    pub fn digest(&self) -> String {
        artifact_digest(self.digest_alg(), self.contents.iter().map(|(p, e)| (p, &e.digest)))
    }

    /// W&B hashes the manifest with XXH128 when the artifact was built with `digest_algorithm="XXH128"`,
    /// which tags every stored entry with `extra.alg`.
    pub fn digest_alg(&self) -> DigestAlg {
        let mut stored = self.contents.values().filter(|e| !e.is_reference()).peekable();
        if stored.peek().is_some() && stored.all(|e| e.alg() == DigestAlg::Xxh128) {
            DigestAlg::Xxh128
        } else {
            DigestAlg::Md5
        }
    }

    /// Sum of known entry sizes.
    pub fn size(&self) -> u64 {
        self.contents.values().filter_map(|e| e.size).sum()
    }

    /// The exact bytes wandb-core uploads as `wandb_manifest.json`.
    pub fn to_json(&self) -> Vec<u8> {
        json::encode_manifest(self)
    }
}

/// Entry paths are relative POSIX paths of plain components.
pub fn validate_path(path: &str) -> Result<(), ManifestError> {
    if path.is_empty() {
        return Err(ManifestError::entry(path, "empty path"));
    }
    if path.starts_with('/') {
        return Err(ManifestError::entry(path, "absolute path"));
    }
    for component in path.split('/') {
        let reason = match component {
            "" => "empty path component",
            "." | ".." => "`.` or `..` path component",
            c if c.contains('\0') => "NUL byte in path",
            c if c.len() > MAX_NAME_BYTES => "path component longer than 255 bytes",
            _ => continue,
        };
        return Err(ManifestError::entry(path, reason));
    }
    Ok(())
}

pub(crate) fn parse_entry(path: &str, value: Value) -> Result<Entry, ManifestError> {
    let Value::Object(mut obj) = value else {
        return Err(ManifestError::entry(path, "entry is not a JSON object"));
    };
    let digest = match obj.remove("digest") {
        Some(Value::String(d)) => d,
        _ => return Err(ManifestError::entry(path, "missing or non-string `digest`")),
    };
    let opt_string = |obj: &mut serde_json::Map<String, Value>, key: &str| match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ManifestError::entry(path, format!("`{key}` is not a string: {other}"))),
    };
    let reference = opt_string(&mut obj, "ref")?;
    let local_path = opt_string(&mut obj, "local_path")?;
    let birth_artifact_id = opt_string(&mut obj, "birthArtifactID")?;
    let size = match obj.remove("size") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(s) => Some(s),
            // Python may write 12.0; anything else is not a size.
            None => match n.as_f64() {
                Some(f) if f >= 0.0 && f.fract() == 0.0 && f < 2f64.powi(53) => Some(f as u64),
                _ => return Err(ManifestError::entry(path, format!("invalid size {n}"))),
            },
        },
        Some(other) => return Err(ManifestError::entry(path, format!("invalid size {other}"))),
    };
    let skip_cache = matches!(obj.remove("skip_cache"), Some(Value::Bool(true)));
    let extra = match obj.remove("extra") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(m)) => m.into_iter().collect(),
        Some(other) => {
            return Err(ManifestError::entry(path, format!("`extra` is not an object: {other}")));
        }
    };
    let mut entry =
        Entry { digest, reference, size, local_path, birth_artifact_id, skip_cache, extra };
    // wandb-core writes an unknown size as 0 (a Go int64 has no "absent"), and so does artfs to
    // stay byte-compatible: a 0 is only believed where the digest says the content is empty.
    // Anything else would make a reference or an imported entry unreadable (every fetch would
    // "change size").
    if entry.size == Some(0) && !entry.content_check().is_empty_content() {
        entry.size = None;
    }
    Ok(entry)
}

#[cfg(test)]
pub(crate) mod tests;
