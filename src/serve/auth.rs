//! Who a request is (API keys in `Authorization: Basic api:KEY`, as the W&B SDK sends them) and
//! signed URLs (HMAC-SHA256 over method, path and expiry) for the storage endpoints, which the
//! SDK calls without credentials.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::registry::directory::{Directory, Role};
use crate::registry::keys::KeyRecord;
use crate::registry::{Registry, RegistryError};

/// How long a key lookup is remembered (a key is one registry read per minute, not per request).
/// Expiry is checked on every request against the remembered record, and revocation is read
/// anew every time, so neither waits for this.
const KEY_CACHE_TTL: Duration = Duration::from_secs(60);
/// How often a key's use is recorded in the registry (one create-only object per key and
/// interval, for `artfs key list`).
const KEY_USE_INTERVAL: Duration = Duration::from_secs(60);
/// How long the directory (users, orgs, teams, registries) is used before it is read again. Zero:
/// an org, team or role made with the CLI or on another server counts for the very next request,
/// as on W&B (its own tests create an org and use it at once). The price is reading what is new
/// (two LISTs, the new commits) per request that checks a key.
const DIRECTORY_TTL: Duration = Duration::ZERO;

/// What the caller may do.
#[derive(Debug, Clone, PartialEq)]
pub struct Access {
    pub user: String,
    /// The entities it may read, the default one first.
    pub entities: Vec<String>,
    pub read_only: bool,
    /// Entities it may only read: its role there is viewer.
    pub viewer_of: Vec<String>,
    /// Entities it manages (its own; orgs and teams where it is an admin).
    pub admin_of: Vec<String>,
}

impl Access {
    pub fn can_read(&self, entity: &str) -> bool {
        self.entities.iter().any(|e| e == entity)
    }

    pub fn can_write(&self, entity: &str) -> bool {
        !self.read_only && self.can_read(entity) && !self.viewer_of.iter().any(|e| e == entity)
    }

    pub fn can_manage(&self, entity: &str) -> bool {
        !self.read_only && self.admin_of.iter().any(|e| e == entity)
    }

    /// The entity used when a request names none (W&B's `viewer.entity`).
    pub fn default_entity(&self) -> &str {
        self.entities.first().map(String::as_str).unwrap_or(&self.user)
    }

    /// A key's access: a key made with explicit entities may use exactly those (as keys always
    /// could); any other key may do what its user may do (`Directory::roles_of`).
    pub fn of(r: KeyRecord, directory: &Directory) -> Access {
        if !r.entities.is_empty() {
            let admin_of = if r.read_only { Vec::new() } else { r.entities.clone() };
            return Access {
                user: r.user,
                entities: r.entities,
                read_only: r.read_only,
                viewer_of: Vec::new(),
                admin_of,
            };
        }
        let mut roles = directory.roles_of(&r.user);
        let default = directory.users.get(&r.user).and_then(|u| u.default_entity.as_deref());
        if let Some(i) = roles.iter().position(|(e, _)| Some(e.as_str()) == default) {
            let first = roles.remove(i);
            roles.insert(0, first);
        }
        let pick = |keep: fn(Role) -> bool| {
            roles.iter().filter(|(_, r)| keep(*r)).map(|(e, _)| e.clone()).collect::<Vec<_>>()
        };
        Access {
            viewer_of: pick(|r| !r.can_write()),
            admin_of: pick(|r| r == Role::Admin),
            entities: pick(|_| true),
            user: r.user,
            read_only: r.read_only,
        }
    }
}

/// The key in an `Authorization` header value: `Basic base64(api:KEY)` (any user name).
pub fn key_of_header(value: &str) -> Option<String> {
    let b64 = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (_, key) = text.split_once(':')?;
    (!key.is_empty()).then(|| key.to_owned())
}

/// The caller's access, from the key in the request's `Authorization` header; `None` when there
/// is no key or it is not a valid one.
pub(super) async fn caller(
    shared: &super::Shared,
    headers: &axum::http::HeaderMap,
) -> Result<Option<Access>, RegistryError> {
    let header = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match header.and_then(key_of_header) {
        Some(key) => shared.keys.access(&shared.registry, &key).await,
        None => Ok(None),
    }
}

/// Checks keys against the registry, remembering key records briefly; what a key's user may
/// do is read from the directory, at most `DIRECTORY_TTL` old, so a changed role counts at once.
#[derive(Debug, Default)]
pub struct KeyCheck {
    cache: Mutex<HashMap<String, (Option<KeyRecord>, Instant)>>,
    /// When each key's use was last recorded.
    used: Mutex<HashMap<String, Instant>>,
    /// The directory and when it was last read from the registry.
    directory: Mutex<(Directory, Option<Instant>)>,
}

impl KeyCheck {
    pub async fn access(
        &self,
        registry: &Registry,
        key: &str,
    ) -> Result<Option<Access>, RegistryError> {
        let cached = match self.cache.lock() {
            Ok(cache) => cache.get(key).filter(|(_, at)| at.elapsed() < KEY_CACHE_TTL).cloned(),
            Err(_) => None,
        };
        let record = match cached {
            Some((r, _)) => r,
            None => {
                let record = registry.key(key).await?;
                if let Ok(mut cache) = self.cache.lock() {
                    if cache.len() > 10_000 {
                        cache.clear();
                    }
                    cache.insert(key.to_owned(), (record.clone(), Instant::now()));
                }
                record
            }
        };
        let Some(record) = record else { return Ok(None) };
        if record.expired(chrono::Utc::now()) || registry.key_revoked(key).await? {
            return Ok(None);
        }
        self.note_use(registry, key).await;
        let directory = self.directory(registry).await?;
        Ok(Some(Access::of(record, &directory)))
    }

    /// Records a key's use at most once per [`KEY_USE_INTERVAL`]; a failure only costs the
    /// record, never the request.
    async fn note_use(&self, registry: &Registry, key: &str) {
        let due = match self.used.lock() {
            Ok(mut used) => {
                let due = used.get(key).is_none_or(|at| at.elapsed() >= KEY_USE_INTERVAL);
                if due {
                    if used.len() > 10_000 {
                        used.clear();
                    }
                    used.insert(key.to_owned(), Instant::now());
                }
                due
            }
            Err(_) => false,
        };
        if due && let Err(e) = registry.record_key_use(key, chrono::Utc::now()).await {
            tracing::warn!("cannot record a key's use: {e}");
        }
    }

    /// The directory, read again (only what is new) when the last read is older than
    /// `DIRECTORY_TTL`.
    pub async fn directory(&self, registry: &Registry) -> Result<Directory, RegistryError> {
        let (known, read_at) = self.directory.lock().map(|d| d.clone()).unwrap_or_default();
        if read_at.is_some_and(|at| at.elapsed() < DIRECTORY_TTL) {
            return Ok(known);
        }
        let fresh = registry.directory(known).await?;
        if let Ok(mut d) = self.directory.lock() {
            if d.0.seq <= fresh.seq {
                d.0 = fresh.clone();
            }
            d.1 = Some(Instant::now());
        }
        Ok(fresh)
    }

    /// The directory as of the last check, without reading the registry.
    pub fn current(&self) -> Directory {
        self.directory.lock().map(|d| d.0.clone()).unwrap_or_default()
    }

    /// Keeps a directory this server just changed, so the rest of the request sees the change.
    pub fn remember(&self, fresh: &Directory) {
        if let Ok(mut d) = self.directory.lock()
            && d.0.seq < fresh.seq
        {
            d.0 = fresh.clone();
        }
    }
}

/// Why a signed URL was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SignatureError {
    #[error("this URL carries no signature")]
    Missing,
    #[error("this URL's signature does not match what it names")]
    Bad,
    #[error("this URL expired; ask the server for a new one")]
    Expired,
}

/// Signs and checks storage URLs.
#[derive(Clone)]
pub struct Signer {
    secret: Vec<u8>,
    pub ttl: Duration,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("secret", &"<redacted>").field("ttl", &self.ttl).finish()
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Signer {
    pub fn new(secret: Vec<u8>, ttl: Duration) -> Signer {
        Signer { secret, ttl }
    }

    fn mac(&self, method: &str, path: &str, expires: u64) -> Hmac<Sha256> {
        // HMAC takes keys of any length; this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(format!("{method}\n{path}\n{expires}").as_bytes());
        mac
    }

    /// The query string that authorises `method` on `path` until now + ttl.
    pub fn sign(&self, method: &str, path: &str) -> String {
        let expires = now_secs() + self.ttl.as_secs();
        let sig = hex::encode(self.mac(method, path, expires).finalize().into_bytes());
        format!("expires={expires}&sig={sig}")
    }

    pub fn verify(
        &self,
        method: &str,
        path: &str,
        expires: Option<&str>,
        sig: Option<&str>,
    ) -> Result<(), SignatureError> {
        let (Some(expires), Some(sig)) = (expires, sig) else {
            return Err(SignatureError::Missing);
        };
        let exp: u64 = expires.parse().map_err(|_| SignatureError::Bad)?;
        let sig = hex::decode(sig).map_err(|_| SignatureError::Bad)?;
        self.mac(method, path, exp).verify_slice(&sig).map_err(|_| SignatureError::Bad)?;
        if exp < now_secs() {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(q: &str) -> (String, String) {
        let mut e = String::new();
        let mut s = String::new();
        for kv in q.split('&') {
            match kv.split_once('=') {
                Some(("expires", v)) => e = v.into(),
                Some(("sig", v)) => s = v.into(),
                _ => {}
            }
        }
        (e, s)
    }

    #[test]
    fn signatures_bind_method_path_and_expiry() {
        let s = Signer::new(b"secret".to_vec(), Duration::from_secs(60));
        let (e, sig) = parts(&s.sign("GET", "/storage/blob/ab"));
        assert_eq!(s.verify("GET", "/storage/blob/ab", Some(&e), Some(&sig)), Ok(()));
        assert_eq!(
            s.verify("PUT", "/storage/blob/ab", Some(&e), Some(&sig)),
            Err(SignatureError::Bad)
        );
        assert_eq!(
            s.verify("GET", "/storage/blob/ac", Some(&e), Some(&sig)),
            Err(SignatureError::Bad)
        );
        let later = (e.parse::<u64>().unwrap() + 1).to_string();
        assert_eq!(
            s.verify("GET", "/storage/blob/ab", Some(&later), Some(&sig)),
            Err(SignatureError::Bad)
        );
        assert_eq!(s.verify("GET", "/storage/blob/ab", None, None), Err(SignatureError::Missing));
        let other = Signer::new(b"other".to_vec(), Duration::from_secs(60));
        assert_eq!(
            other.verify("GET", "/storage/blob/ab", Some(&e), Some(&sig)),
            Err(SignatureError::Bad)
        );
        let expired = Signer::new(b"secret".to_vec(), Duration::ZERO);
        let (e, sig) = parts(&expired.sign("GET", "/x"));
        let e = (e.parse::<u64>().unwrap() - 5).to_string();
        let sig2 =
            hex::encode(expired.mac("GET", "/x", e.parse().unwrap()).finalize().into_bytes());
        let _ = sig;
        assert_eq!(
            expired.verify("GET", "/x", Some(&e), Some(&sig2)),
            Err(SignatureError::Expired)
        );
        assert!(!format!("{s:?}").contains("secret\""));
    }

    #[test]
    fn basic_auth_header() {
        let h = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("api:k-123"));
        assert_eq!(key_of_header(&h).as_deref(), Some("k-123"));
        assert_eq!(key_of_header("Bearer x"), None);
        assert_eq!(key_of_header("Basic !!!"), None);
        let empty = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("api:"));
        assert_eq!(key_of_header(&empty), None);
    }
}
