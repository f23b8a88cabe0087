//! What reading a reference entry may reach. A registry is written by others, and a reference is
//! a place they chose: without limits, whoever can write a shared registry could make every
//! reader fetch `file:///etc/shadow` or `http://127.0.0.1:…/admin` on their behalf. So, unless
//! the reader allowed more ([`RefAccess`]):
//!
//! - `file://` references are read only below directories the reader named, judged by the real
//!   path of the file actually opened (symlinks resolved, checked again after the open);
//! - `http(s)://` references connect only to public addresses. The check is on the address
//!   connected to: names are resolved by [`FilteringResolver`], which hands the connector only
//!   allowed addresses (so a name cannot resolve one way for the check and another for the
//!   connection), URLs naming an IP address are checked before the request ([`check_url`]),
//!   and every redirect hop is checked the same way ([`redirect_policy`]).
//!
//! Registry endpoints (S3, GCS, the registry URL) are configured by the reader and not limited.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use url::{Host, Url};

/// Redirects followed per request (reqwest's default).
const MAX_REDIRECTS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error(
        "{host} is {addr}, a {kind} address; references may only reach public addresses \
         unless the reader passes --allow-private-refs"
    )]
    PrivateAddress { host: String, addr: IpAddr, kind: &'static str },
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    #[error("--allow-file-refs {}: {source}", dir.display())]
    AllowedDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What the reader allows references to reach beyond public HTTP(S) servers and its own
/// configured buckets. The default allows nothing more.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefAccess {
    /// Canonical directories below which `file://` references may be read.
    file_dirs: Vec<PathBuf>,
    allow_private: bool,
}

impl RefAccess {
    /// `file_dirs` are resolved now (symlinks included), so a directory that does not exist is
    /// an error naming it.
    pub fn new(file_dirs: &[PathBuf], allow_private: bool) -> Result<RefAccess, GuardError> {
        let file_dirs = file_dirs
            .iter()
            .map(|dir| {
                std::fs::canonicalize(dir)
                    .map_err(|source| GuardError::AllowedDir { dir: dir.clone(), source })
            })
            .collect::<Result<_, _>>()?;
        Ok(RefAccess { file_dirs, allow_private })
    }

    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    pub fn file_dirs(&self) -> &[PathBuf] {
        &self.file_dirs
    }

    /// Whether `path` (absolute, symlinks resolved) is below an allowed directory. Component
    /// wise: `/data2` is not below `/data`.
    pub fn allows_file(&self, path: &Path) -> bool {
        self.file_dirs.iter().any(|dir| path.starts_with(dir))
    }
}

/// Why an address is not public, or `None` for a globally routable unicast address. Mapped,
/// compatible and NAT64 IPv6 forms of IPv4 addresses are judged by the IPv4 address inside.
pub fn private_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => private_v4(v4),
        IpAddr::V6(v6) => private_v6(v6),
    }
}

fn private_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "unspecified (\"this network\")",
        (127, _, _) => "loopback",
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => "private (RFC 1918)",
        (169, 254, _) => "link-local",
        (100, 64..=127, _) => "shared (CGNAT, RFC 6598)",
        (192, 0, 0) => "IETF protocol assignment",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved or broadcast",
        _ => return None,
    })
}

fn private_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return private_v4(v4);
    }
    let s = ip.segments();
    // NAT64 (64:ff9b::/96) and the deprecated IPv4-compatible form (::a.b.c.d) carry an IPv4
    // address in the last 32 bits.
    let embedded = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    Some(match s {
        [0, 0, 0, 0, 0, 0, 0, 0] => "unspecified",
        [0, 0, 0, 0, 0, 0, 0, 1] => "loopback",
        [0, 0, 0, 0, 0, 0, _, _] | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => {
            return private_v4(embedded);
        }
        [0x64, 0xff9b, 1, ..] => "local-use NAT64",
        [0x100, 0, 0, 0, ..] => "discard-only",
        [x, ..] if x & 0xfe00 == 0xfc00 => "unique local (fc00::/7)",
        [x, ..] if x & 0xffc0 == 0xfe80 => "link-local",
        [x, ..] if x & 0xffc0 == 0xfec0 => "site-local",
        [x, ..] if x & 0xff00 == 0xff00 => "multicast",
        [0x2001, 0xdb8, ..] => "documentation",
        // 6to4 carries the IPv4 address in bits 16..48.
        [0x2002, hi, lo, ..] => {
            let v4 = Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
            return private_v4(v4);
        }
        _ => return None,
    })
}

/// Which addresses a reference client may connect to: [`private_kind`] in production; tests
/// substitute their own to tell two loopback servers apart.
pub type AddressCheck = fn(IpAddr) -> Option<&'static str>;

/// Refuses a URL whose host is an IP address `check` rejects. Names are left to the resolver,
/// which sees the addresses actually connected to.
pub fn check_url(url: &Url, check: AddressCheck) -> Result<(), GuardError> {
    let addr = match url.host() {
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(Host::Domain(_)) | None => return Ok(()),
    };
    match check(addr) {
        Some(kind) => Err(GuardError::PrivateAddress {
            host: url.host_str().unwrap_or_default().to_owned(),
            addr,
            kind,
        }),
        None => Ok(()),
    }
}

/// Resolves names with the system resolver and keeps only the addresses `check` allows; a name
/// with none left is an error saying which address it had.
#[derive(Debug, Clone, Copy)]
pub struct FilteringResolver {
    pub check: AddressCheck,
}

impl FilteringResolver {
    /// The allowed addresses of `host` (port 0: the connector fills in the URL's).
    pub async fn resolve_allowed(&self, host: &str) -> Result<Vec<SocketAddr>, GuardError> {
        let resolve_err = |source| GuardError::Resolve { host: host.to_owned(), source };
        let all: Vec<SocketAddr> =
            tokio::net::lookup_host((host, 0)).await.map_err(resolve_err)?.collect();
        let (allowed, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
            all.into_iter().partition(|a| (self.check)(a.ip()).is_none());
        match (allowed.is_empty(), refused.first()) {
            (true, Some(first)) => Err(GuardError::PrivateAddress {
                host: host.to_owned(),
                addr: first.ip(),
                kind: (self.check)(first.ip()).unwrap_or("refused"),
            }),
            _ => Ok(allowed),
        }
    }
}

impl reqwest::dns::Resolve for FilteringResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = *self;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = resolver.resolve_allowed(&host).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Follows up to [`MAX_REDIRECTS`] redirects, refusing any hop to an IP address `check`
/// rejects (hops to names go through the [`FilteringResolver`] when connecting).
pub fn redirect_policy(check: AddressCheck) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(GuardError::TooManyRedirects);
        }
        match check_url(attempt.url(), check) {
            Ok(()) => attempt.follow(),
            Err(e) => attempt.error(e),
        }
    })
}

/// The refusal somewhere in an error chain (a resolver or redirect error wrapped by the HTTP
/// stack), if that is what the error is.
pub fn refusal_in(err: &(dyn std::error::Error + 'static)) -> Option<GuardError> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(GuardError::PrivateAddress { host, addr, kind }) = e.downcast_ref() {
            return Some(GuardError::PrivateAddress { host: host.clone(), addr: *addr, kind });
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_public_addresses() {
        let private = [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
        ];
        for ip in private {
            let addr: IpAddr = ip.parse().unwrap();
            assert!(private_kind(addr).is_some(), "{ip} should be refused");
        }
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ];
        for ip in public {
            let addr: IpAddr = ip.parse().unwrap();
            assert_eq!(private_kind(addr), None, "{ip} is public");
        }
        assert_eq!(private_kind("127.0.0.1".parse().unwrap()), Some("loopback"));
    }

    #[test]
    fn urls_naming_addresses_are_checked_in_every_spelling() {
        // The URL parser normalises decimal, hex and short forms, as the HTTP client sees them.
        for url in [
            "http://127.0.0.1/x",
            "http://2130706433/x",
            "http://0x7f.1/x",
            "http://127.1/x",
            "http://[::1]:8080/x",
            "http://[::ffff:7f00:1]/x",
            "https://169.254.169.254/latest/meta-data",
            "http://0/x",
        ] {
            let err = check_url(&Url::parse(url).unwrap(), private_kind).unwrap_err();
            assert!(err.to_string().contains("--allow-private-refs"), "{url}: {err}");
        }
        for url in ["http://8.8.8.8/x", "https://example.com/x", "http://localhost/x"] {
            // Names pass here: the resolver judges what they resolve to.
            check_url(&Url::parse(url).unwrap(), private_kind).unwrap();
        }
    }

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_refused() {
        let resolver = FilteringResolver { check: private_kind };
        let err = resolver.resolve_allowed("localhost").await.unwrap_err();
        assert!(matches!(err, GuardError::PrivateAddress { kind: "loopback", .. }), "{err}");
        assert!(err.to_string().contains("localhost"), "{err}");
        let everything = FilteringResolver { check: |_| None };
        assert!(!everything.resolve_allowed("localhost").await.unwrap().is_empty());
    }

    #[test]
    fn allowed_directories_are_canonical_and_matched_by_component() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::os::unix::fs::symlink(&data, tmp.path().join("link")).unwrap();
        let access = RefAccess::new(&[tmp.path().join("link")], false).unwrap();
        let canon = data.canonicalize().unwrap();
        assert_eq!(access.file_dirs(), std::slice::from_ref(&canon));
        assert!(access.allows_file(&canon.join("x/y.bin")));
        assert!(!access.allows_file(&canon.with_file_name("data2").join("x")));
        assert!(!RefAccess::default().allows_file(Path::new("/etc/passwd")));
        let err = RefAccess::new(&[tmp.path().join("missing")], false).unwrap_err();
        assert!(
            err.to_string().contains("--allow-file-refs") && err.to_string().contains("missing")
        );
    }
}
