//! The API key, found as the SDK finds it: `WANDB_API_KEY`, else netrc (`$NETRC`, else
//! `~/.netrc`) under `machine <host[:port]>` of the base URL (the SDK's `netloc`).
//!
//! The key only ever leaves this module as the `Authorization` value of GraphQL requests to the
//! base URL (`client`); its `Debug` is redacted and no error quotes it.

use std::fmt;
use std::path::PathBuf;

use base64::Engine as _;
use url::Url;

/// A W&B API key.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl ApiKey {
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into())
    }

    /// `Basic base64("api:" + key)`, what the SDK sends.
    pub fn authorization(&self) -> String {
        let pair = format!("api:{}", self.0);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
    }
}

/// Where the key came from, for messages (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    Env,
    Netrc { path: PathBuf, machine: String },
}

impl fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyOrigin::Env => f.write_str("WANDB_API_KEY"),
            KeyOrigin::Netrc { path, machine } => {
                write!(f, "machine {machine} in {}", path.display())
            }
        }
    }
}

/// The netrc machine name of a base URL: its host, with the port when the URL has one.
pub fn machine(base: &Url) -> Option<String> {
    let host = base.host_str()?;
    Some(match base.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// The key for `base`, from the environment `var` gives (injected, so tests need no globals).
pub fn find(base: &Url, var: &dyn Fn(&str) -> Option<String>) -> Option<(ApiKey, KeyOrigin)> {
    if let Some(key) = var("WANDB_API_KEY").filter(|k| !k.trim().is_empty()) {
        return Some((ApiKey(key.trim().to_owned()), KeyOrigin::Env));
    }
    let path = match var("NETRC").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(var("HOME")?).join(".netrc"),
    };
    let text = std::fs::read_to_string(&path).ok()?;
    let machine = machine(base)?;
    let password = netrc_password(&text, &machine)?;
    Some((ApiKey(password), KeyOrigin::Netrc { path, machine }))
}

/// The `password` of `machine` in netrc text (`default` when no machine matches), as Python's
/// `netrc` reads it: whitespace-separated tokens, `macdef` bodies skipped up to a blank line.
pub fn netrc_password(text: &str, machine: &str) -> Option<String> {
    let mut found: Option<String> = None;
    let mut default: Option<String> = None;
    let mut current: Option<bool> = None; // Some(true): the machine asked for; Some(false): other
    let mut is_default = false;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let mut tokens = line.split_whitespace();
        while let Some(token) = tokens.next() {
            if token.starts_with('#') {
                break;
            }
            match token {
                "machine" => {
                    current = Some(tokens.next() == Some(machine));
                    is_default = false;
                }
                "default" => {
                    current = Some(false);
                    is_default = true;
                }
                "password" => {
                    let value = tokens.next().map(str::to_owned);
                    if current == Some(true) && found.is_none() {
                        found = value;
                    } else if is_default && default.is_none() {
                        default = value;
                    }
                }
                "login" | "account" => {
                    tokens.next();
                }
                "macdef" => {
                    // The macro body runs to the next empty line.
                    for body in lines.by_ref() {
                        if body.trim().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                _ => {}
            }
        }
    }
    found.or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netrc_machines_default_and_macdefs() {
        let text = "machine api.wandb.ai\n  login user\n  password k1\n\
                    # a comment password nope\n\
                    macdef init\n  password inside-macro\n\n\
                    machine 127.0.0.1:8080 login user password k2\n\
                    default login x password kd\n";
        assert_eq!(netrc_password(text, "api.wandb.ai").as_deref(), Some("k1"));
        assert_eq!(netrc_password(text, "127.0.0.1:8080").as_deref(), Some("k2"));
        assert_eq!(netrc_password(text, "127.0.0.1").as_deref(), Some("kd"), "default");
        assert_eq!(netrc_password("machine a password p", "b"), None);
    }

    #[test]
    fn the_env_key_wins_then_netrc_by_host_and_port_and_debug_hides_it() {
        let dir = tempfile::tempdir().unwrap();
        let netrc = dir.path().join("netrc");
        std::fs::write(&netrc, "machine 127.0.0.1:9000 login user password from-netrc\n").unwrap();
        let base = Url::parse("http://127.0.0.1:9000").unwrap();
        let netrc_s = netrc.to_string_lossy().into_owned();
        let env = |k: &str| match k {
            "WANDB_API_KEY" => Some("from-env".to_owned()),
            "NETRC" => Some(netrc_s.clone()),
            _ => None,
        };
        assert_eq!(find(&base, &env).unwrap(), (ApiKey::new("from-env"), KeyOrigin::Env));
        let no_env = |k: &str| (k == "NETRC").then(|| netrc_s.clone());
        let (key, origin) = find(&base, &no_env).unwrap();
        assert_eq!(key, ApiKey::new("from-netrc"));
        assert!(matches!(origin, KeyOrigin::Netrc { machine, .. } if machine == "127.0.0.1:9000"));
        let other = Url::parse("http://127.0.0.1:9001").unwrap();
        assert!(find(&other, &no_env).is_none(), "another port is another machine");
        assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
        assert_eq!(key.authorization(), "Basic YXBpOmZyb20tbmV0cmM=");
    }
}
