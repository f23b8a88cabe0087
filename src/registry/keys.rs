//! API keys for `artfs serve`: `keys/<sha256 hex of the key>.json` holds whose the key is and,
//! for keys made with explicit entities, which ones it may read or write (any other key may do
//! what its user may do, as `directory` says). Only the hash is stored, so reading the registry does not
//! reveal a key; the key itself is shown once, by `artfs key create`.
//!
//! A key may carry an expiry; revoking one creates `keys/revoked/<sha256>.json`, and each minute
//! a key is used in leaves one create-only `keys/used/<sha256>/<minute>` (what `artfs key list`
//! shows as last used). Operators name a key by a prefix of its hash ([`KeyInfo::id`]).

use std::io::Read;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Registry, RegistryError};
use crate::names::validate_scope;

/// Prefix of every key; W&B's SDK accepts `prefix-<40+ word characters>`.
pub const KEY_PREFIX: &str = "artfs";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub user: String,
    /// The entities this key may use; empty: those of its user.
    pub entities: Vec<String>,
    pub read_only: bool,
    pub created_at: DateTime<Utc>,
    /// When the key stops being accepted; `None`: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl KeyRecord {
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// How many hex digits of a key's hash name it to operators (`artfs key list`, `revoke`).
pub const KEY_ID_CHARS: usize = 12;

/// A key as `artfs key list` shows it: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyInfo {
    /// The first [`KEY_ID_CHARS`] hex digits of the SHA-256 of the secret.
    pub id: String,
    #[serde(flatten)]
    pub record: KeyRecord,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The last minute the key was used in, if `artfs serve` saw it used.
    pub last_used: Option<DateTime<Utc>>,
}

/// What a revocation records.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Revocation {
    revoked_at: DateTime<Utc>,
}

/// The whole minutes since the epoch of `t`.
fn unix_minute(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp() / 60).unwrap_or(0)
}

fn key_path(secret: &str) -> String {
    super::layout::api_key(secret)
}

fn random_hex(bytes: usize) -> Result<String, std::io::Error> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(hex::encode(buf))
}

/// The shortest chosen secret accepted: the length of W&B's own keys.
pub const MIN_SECRET_CHARS: usize = 40;

/// A chosen secret must be as long as W&B's keys and made of the characters its SDK accepts
/// (word characters and `-`).
fn validate_secret(secret: &str) -> Result<(), RegistryError> {
    let ok_chars = secret.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if secret.chars().count() < MIN_SECRET_CHARS || !ok_chars {
        return Err(RegistryError::Invalid {
            name: "key".to_owned(),
            reason: format!(
                "a chosen secret needs at least {MIN_SECRET_CHARS} characters, all letters, digits, `_` or `-`"
            ),
        });
    }
    Ok(())
}

impl Registry {
    /// Creates a key for `user` (creating the user if there is none) and returns the secret.
    /// Without `entities` the key may do what the user may do.
    pub async fn create_key(
        &self,
        user: &str,
        entities: &[String],
        read_only: bool,
    ) -> Result<(String, KeyRecord), RegistryError> {
        self.create_key_expiring(user, entities, read_only, None, None).await
    }

    /// Creates a key that stops working at `expires_at`, with the caller's `secret` or a random one.
    pub async fn create_key_expiring(
        &self,
        user: &str,
        entities: &[String],
        read_only: bool,
        secret: Option<&str>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(String, KeyRecord), RegistryError> {
        let secret = match secret {
            Some(s) => {
                validate_secret(s)?;
                s.to_owned()
            }
            None => {
                format!("{KEY_PREFIX}-{}", random_hex(24).map_err(RegistryError::NoRandomness)?)
            }
        };
        self.store_key(user, entities, read_only, &secret, expires_at).await
    }

    /// Creates a key whose secret the caller chose. For harnesses that must reproduce another
    /// server's fixtures (W&B's test users log in with their user name as key); the secret must
    /// still be one the SDK accepts and long enough not to be guessed.
    pub async fn create_key_with_secret(
        &self,
        user: &str,
        entities: &[String],
        read_only: bool,
        secret: &str,
    ) -> Result<(String, KeyRecord), RegistryError> {
        self.create_key_expiring(user, entities, read_only, Some(secret), None).await
    }

    async fn store_key(
        &self,
        user: &str,
        entities: &[String],
        read_only: bool,
        secret: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(String, KeyRecord), RegistryError> {
        validate_scope("user", user)?;
        for e in entities {
            validate_scope("entity", e)?;
        }
        self.ensure_user(user).await?;
        let record = KeyRecord {
            user: user.to_owned(),
            entities: entities.to_vec(),
            read_only,
            created_at: Utc::now(),
            expires_at,
        };
        let bytes = serde_json::to_vec_pretty(&record).map_err(|e| self.corrupt("keys", e))?;
        if !self.store.put_create(&key_path(secret), bytes.into()).await? {
            return Err(RegistryError::Invalid {
                name: "key".to_owned(),
                reason: "a key with this secret exists already; choose another".to_owned(),
            });
        }
        Ok((secret.to_owned(), record))
    }

    /// The record of a key, `None` for an unknown key.
    pub async fn key(&self, secret: &str) -> Result<Option<KeyRecord>, RegistryError> {
        let key = key_path(secret);
        match self.store.get_opt(&key).await? {
            Some(b) => Ok(Some(serde_json::from_slice(&b).map_err(|e| self.corrupt(&key, e))?)),
            None => Ok(None),
        }
    }

    /// Whether the key with this secret was revoked.
    pub async fn key_revoked(&self, secret: &str) -> Result<bool, RegistryError> {
        let mark = super::layout::api_key_revoked(&super::layout::api_key_hash(secret));
        Ok(self.store.head(&mark).await?.is_some())
    }

    /// Records that a key was used at `at`: one create-only object per key and minute, so
    /// several servers agree without overwriting anything (a minute already recorded is kept).
    pub async fn record_key_use(
        &self,
        secret: &str,
        at: DateTime<Utc>,
    ) -> Result<(), RegistryError> {
        let hash = super::layout::api_key_hash(secret);
        let key = super::layout::api_key_used(&hash, unix_minute(at));
        self.store.put_create(&key, bytes::Bytes::new()).await?;
        Ok(())
    }

    /// Whether the registry holds any key (revoked or not), without reading one.
    pub async fn has_keys(&self) -> Result<bool, RegistryError> {
        let (_, files) = self.store.list_level(super::layout::KEYS).await?;
        Ok(files.iter().any(|f| super::layout::hash_of_api_key(f).is_some()))
    }

    /// Every key, oldest first, with its revocation and last use.
    pub async fn list_keys(&self) -> Result<Vec<KeyInfo>, RegistryError> {
        let (_, files) = self.store.list_level(super::layout::KEYS).await?;
        let mut keys = Vec::new();
        for file in files {
            let Some(hash) = super::layout::hash_of_api_key(&file) else { continue };
            let Some(bytes) = self.store.get_opt(&file).await? else { continue };
            let record: KeyRecord =
                serde_json::from_slice(&bytes).map_err(|e| self.corrupt(&file, e))?;
            keys.push(self.key_info(hash, record).await?);
        }
        keys.sort_by(|a, b| (a.record.created_at, &a.id).cmp(&(b.record.created_at, &b.id)));
        Ok(keys)
    }

    async fn key_info(&self, hash: &str, record: KeyRecord) -> Result<KeyInfo, RegistryError> {
        let mark = super::layout::api_key_revoked(hash);
        let revoked_at = match self.store.get_opt(&mark).await? {
            Some(b) => {
                let r: Revocation =
                    serde_json::from_slice(&b).map_err(|e| self.corrupt(&mark, e))?;
                Some(r.revoked_at)
            }
            None => None,
        };
        let uses = self.store.list(&super::layout::api_key_uses(hash)).await?;
        let last_minute =
            uses.iter().filter_map(|l| l.key.rsplit_once('/')?.1.parse::<i64>().ok()).max();
        Ok(KeyInfo {
            id: hash[..KEY_ID_CHARS.min(hash.len())].to_owned(),
            record,
            revoked_at,
            last_used: last_minute.and_then(|m| DateTime::from_timestamp(m * 60, 0)),
        })
    }

    /// Revokes the one key whose id starts with `id`: every server refuses it from its next
    /// request on. Revoking a revoked key changes nothing.
    pub async fn revoke_key(&self, id: &str) -> Result<KeyInfo, RegistryError> {
        let invalid = |reason: String| RegistryError::Invalid { name: format!("key {id}"), reason };
        if id.len() < 4 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(invalid(
                "a key id is 4 or more hex digits, as `artfs key list` shows".into(),
            ));
        }
        let id = id.to_ascii_lowercase();
        let (_, files) = self.store.list_level(super::layout::KEYS).await?;
        let hashes: Vec<&str> = files
            .iter()
            .filter_map(|f| super::layout::hash_of_api_key(f))
            .filter(|h| h.starts_with(&id))
            .collect();
        let hash = match hashes.as_slice() {
            [one] => one.to_string(),
            [] => return Err(invalid("no key has this id; see `artfs key list`".into())),
            _ => return Err(invalid("several keys start with this id; give more of it".into())),
        };
        let mark = super::layout::api_key_revoked(&hash);
        let body = serde_json::to_vec(&Revocation { revoked_at: Utc::now() })
            .map_err(|e| self.corrupt(&mark, e))?;
        self.store.put_create(&mark, body.into()).await?;
        let file = super::layout::api_key_by_hash(&hash);
        let record: KeyRecord = serde_json::from_slice(&self.store.get(&file).await?)
            .map_err(|e| self.corrupt(&file, e))?;
        self.key_info(&hash, record).await
    }

    /// A secret shared by every `artfs serve` over this registry, for signing URLs; created
    /// by the first one.
    pub async fn serve_secret(&self) -> Result<Vec<u8>, RegistryError> {
        const KEY: &str = super::layout::URL_SIGNING_SECRET;
        if let Some(b) = self.store.get_opt(KEY).await? {
            return Ok(b.to_vec());
        }
        let secret = random_hex(32).map_err(RegistryError::NoRandomness)?;
        self.store.put_create(KEY, secret.into_bytes().into()).await?;
        // Whoever created it first, this is the one everybody uses.
        Ok(self.store.get(KEY).await?.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_are_stored_as_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(
            dir.path().to_str().unwrap(),
            &crate::store::cloud::Clouds::default(),
        )
        .unwrap();
        let reg = Registry::new(store.clone());
        let (secret, rec) = reg.create_key("ana", &[], true).await.unwrap();
        assert!(secret.len() >= 46 && secret.starts_with("artfs-"), "{secret}");
        assert!(rec.entities.is_empty());
        assert!(reg.directory(Default::default()).await.unwrap().users.contains_key("ana"));
        assert_eq!(reg.key(&secret).await.unwrap(), Some(rec));
        assert_eq!(reg.key("artfs-nope").await.unwrap(), None);
        for l in store.list("keys").await.unwrap() {
            let body = store.get(&l.key).await.unwrap();
            assert!(!String::from_utf8_lossy(&body).contains(&secret[6..]));
            assert!(!l.key.contains(&secret[6..]));
        }
        assert_eq!(reg.serve_secret().await.unwrap(), reg.serve_secret().await.unwrap());

        let chosen = format!("user_gw0-{}", "ab12".repeat(10));
        let (s, rec) = reg.create_key_with_secret(&chosen, &[], false, &chosen).await.unwrap();
        assert_eq!(s, chosen);
        assert_eq!(reg.key(&chosen).await.unwrap(), Some(rec));
        for weak in ["short", &format!("{}!", "a".repeat(45))] {
            let err = reg.create_key_with_secret("bo", &[], false, weak).await.unwrap_err();
            assert!(matches!(err, RegistryError::Invalid { .. }), "{weak}: {err}");
        }
        let taken = reg.create_key_with_secret("bo", &[], false, &chosen).await.unwrap_err();
        assert!(taken.to_string().contains("exists already"), "{taken}");
        assert_eq!(reg.key(&chosen).await.unwrap().unwrap().user, chosen);
    }
}
