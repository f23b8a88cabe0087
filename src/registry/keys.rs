//! API keys for `artfs serve`: `keys/<sha256 hex of the key>.json` holds whose the key is and,
//! for keys made with explicit entities, which ones it may read or write (any other key may do
//! what its user may do, as `directory` says). Only the hash is stored, so reading the registry does not
//! reveal a key; the key itself is shown once, by `artfs key create`.

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
        let secret =
            format!("{KEY_PREFIX}-{}", random_hex(24).map_err(RegistryError::NoRandomness)?);
        self.create_key_with_secret(user, entities, read_only, &secret).await
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
        validate_secret(secret)?;
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
