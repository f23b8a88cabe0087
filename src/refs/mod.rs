//! Reference entries (W&B `add_reference`): turning a URI into manifest entries, and reading a
//! reference back pinned to what was logged.
//!
//! [`expand`] follows the W&B SDK (0.31) storage handlers, so an artifact logged here gets the
//! entries, digests and artifact digest the SDK would compute for the same calls:
//!
//! | scheme | entry name without `name` | digest | `extra` |
//! | --- | --- | --- | --- |
//! | `s3://b/key` | basename of the key | ETag, unquoted | `etag`; `versionID` (string) |
//! | `s3://b/prefix` | path below the prefix | same; empty objects skipped | same |
//! | `gs://b/key[#gen]` | as S3 | JSON API `etag` | `versionID`: generation (number) |
//! | `http(s)://…` | after the last `/`, query kept | ETag, `"` trimmed, or URI | raw `etag` |
//! | `file://…` | basename / path below the dir | base64 MD5 of the bytes | none |
//! | azure blob (no checksum only) | blob name | the URI | none |
//! | other schemes | `name` required | the URI | none |
//!
//! With a `name`, a single object is called `name` and a prefix's objects `name/<path below>`.
//! With `checksum = false` nothing is contacted: digest = the URI (for `file://`, the base64 MD5 of
//! the resolved `file://` URI string), and only `file://` entries get a size.
//!
//! Deliberate differences from the SDK, each where it would silently record something wrong:
//! more objects than `max_objects` is an error (the SDK truncates S3/GCS listings silently); a
//! prefix whose listing contains keys outside the folder (`p` vs `pSibling/x`) is an error for
//! GCS too (the SDK errors for S3 only and records a wrong ref for GCS); an S3 `versionId` or GCS
//! generation that does not exist is an error (the SDK falls back to listing the prefix); a prefix
//! that matches nothing at all is an error; `s3://b/p/` is always listed as a folder; HTTP answers
//! other than 2xx are errors.
//!
//! [`fetch`] reads a reference pinned to what was logged: S3 by `versionId` (or `If-Match` on
//! the ETag when unversioned), GCS by generation, HTTP by comparing the answer's ETag, `file://`
//! by size and MD5. A changed source is [`RefError::Changed`], never different bytes.

use std::error::Error as StdError;
use std::ops::Range;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use object_store::client::{HttpError, HttpErrorKind};
use object_store::path::Path as ObjPath;
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt};

use crate::manifest::{Entry, ManifestError, md5_base64};
use crate::store::cloud::{CloudError, Clouds};
use crate::store::guard::{self, RefAccess};
use url::Url;

mod azure;
mod file;
mod gcs;
mod http;
mod s3;

use self::{azure::*, file::*, gcs::*, http::*, s3::*};

/// W&B's default cap on the objects one reference may expand to.
pub const DEFAULT_MAX_OBJECTS: usize = 10_000;
/// Objects per S3/GCS listing request (the S3 maximum).
const LIST_PAGE_OBJECTS: usize = 1000;
/// HEAD requests in flight while recording the version of every listed S3 object.
const S3_HEAD_CONCURRENCY: usize = 16;
/// Chunk size of `file://` reads.
const FILE_READ_CHUNK_BYTES: usize = 1 << 20;
/// How much of an error response body is quoted in an error message.
const ERROR_BODY_QUOTE_BYTES: usize = 300;

/// Bytes of a reference, in order. An `Err` item ends the stream; anything received before it
/// must be discarded (e.g. a `file://` MD5 mismatch is only known at the end).
pub type ByteStream = BoxStream<'static, Result<Bytes, RefError>>;

type BoxError = Box<dyn StdError + Send + Sync>;
#[derive(Debug, thiserror::Error)]
pub enum RefError {
    #[error("{uri}: {reason}", uri = redact(.uri))]
    InvalidUri { uri: String, reason: String },
    #[error(
        "{uri}: references with this scheme cannot be read or checksummed, only tracked; \
         pass a name for the entry",
        uri = redact(.uri)
    )]
    NameRequired { uri: String },
    #[error("{uri}: entry name {name:?}: {reason}; pass another name", uri = redact(.uri))]
    InvalidName { uri: String, name: String, reason: String },
    #[error("{uri}: {reason}", uri = redact(.uri))]
    Unsupported { uri: String, reason: String },
    #[error("the entry is not a reference (it has no `ref`)")]
    NotAReference,
    #[error("{uri}: {what}", uri = redact(.uri))]
    NotFound {
        uri: String,
        what: String,
        #[source]
        source: Option<BoxError>,
    },
    #[error(
        "reference {uri} changed since it was logged: expected {expected}, found {found}; \
         log the artifact again to record the current content",
        uri = redact(.uri)
    )]
    Changed { uri: String, expected: String, found: String },
    #[error(
        "{uri} holds more than {max} objects; pass a larger max_objects or reference a \
         narrower prefix",
        uri = redact(.uri)
    )]
    TooManyObjects { uri: String, max: usize },
    #[error(
        "{uri}: the listing also matched {key}, which is not inside the folder {prefix:?} (it only \
         shares the string prefix, and W&B refuses this too); end the URI with `/` to reference \
         just the folder",
        uri = redact(.uri)
    )]
    OutsidePrefix { uri: String, key: String, prefix: String },
    #[error(
        "{uri}: access denied ({source}); check the credentials (AWS_ACCESS_KEY_ID or AWS_PROFILE \
         for s3://, GOOGLE_APPLICATION_CREDENTIALS for gs://)",
        uri = redact(.uri)
    )]
    Denied {
        uri: String,
        #[source]
        source: BoxError,
    },
    #[error("{uri}: server unreachable, check that it is up and reachable: {source}", uri = redact(.uri))]
    Unreachable {
        uri: String,
        #[source]
        source: BoxError,
    },
    #[error("{uri}: {action} failed: {source}", uri = redact(.uri))]
    Store {
        uri: String,
        action: &'static str,
        #[source]
        source: object_store::Error,
    },
    #[error("{uri}: {source}", uri = redact(.uri))]
    Cloud {
        uri: String,
        // Boxed: the error type stays small enough to return cheaply everywhere.
        #[source]
        source: Box<CloudError>,
    },
    #[error("{uri}: the server answered HTTP {status}{}", quote_body(body), uri = redact(.uri))]
    Status { uri: String, status: u16, body: String },
    #[error("{uri}: reading the response failed: {source}", uri = redact(.uri))]
    Transfer {
        uri: String,
        #[source]
        source: HttpError,
    },
    #[error("{uri}: cannot read {}: {source}", path.display(), uri = redact(.uri))]
    Io {
        uri: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{uri}: unexpected answer from the server: {reason}", uri = redact(.uri))]
    Protocol { uri: String, reason: String },
    /// The reader's [`RefAccess`] does not allow this read (see `store::guard`).
    #[error("{uri}: refused: {reason}", uri = redact(.uri))]
    Refused { uri: String, reason: String },
    #[error(
        "{uri}: reference URLs must not contain credentials (`user:password@`): they would be \
         stored in the manifest, readable by everyone who can read the registry; use a URL \
         without them (e.g. a presigned URL)",
        uri = redact(.uri)
    )]
    Credentials { uri: String },
}

/// A reference URI fit to show: credentials before an `@` in the host part (`user:pass@`)
/// become `***@`. Registries written by other tools (or before artfs refused them) may hold
/// such URIs; errors, logs and `artfs show` print them only through this.
pub fn redact(uri: &str) -> std::borrow::Cow<'_, str> {
    let netloc = UriParts::split(uri).netloc;
    match (netloc.rfind('@'), uri.find(netloc)) {
        (Some(at), Some(start)) => format!("{}***{}", &uri[..start], &uri[start + at..]).into(),
        _ => uri.into(),
    }
}

/// Refuses a reference URI with credentials in its host part (any scheme): logging one would
/// publish them to every reader of the registry.
pub fn refuse_credentials(uri: &str) -> Result<(), RefError> {
    match UriParts::split(uri).netloc.contains('@') {
        true => Err(RefError::Credentials { uri: uri.to_owned() }),
        false => Ok(()),
    }
}

fn quote_body(body: &str) -> String {
    match body.trim() {
        "" => String::new(),
        b => format!(": {b}"),
    }
}

/// Which storage handler a reference URI belongs to (W&B's dispatch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefScheme {
    S3,
    Gcs,
    /// `https://ACCOUNT.blob.core.windows.net/...`
    Azure,
    Http,
    File,
    /// `wandb-artifact://` and `wandb-client-artifact://`: entries of other artifacts.
    WandbArtifact,
    /// Tracked only (W&B's TrackingHandler).
    Other,
}

impl RefScheme {
    pub fn of(uri: &str) -> RefScheme {
        let parts = UriParts::split(uri);
        match parts.scheme.as_str() {
            "s3" => RefScheme::S3,
            "gs" => RefScheme::Gcs,
            "https" if parts.netloc.ends_with(".blob.core.windows.net") => RefScheme::Azure,
            "http" | "https" => RefScheme::Http,
            "file" => RefScheme::File,
            "wandb-artifact" | "wandb-client-artifact" => RefScheme::WandbArtifact,
            _ => RefScheme::Other,
        }
    }
}

/// A URI split the way Python's `urllib.parse.urlsplit` does (the SDK's parser): nothing is
/// percent-decoded or normalised, so keys keep their exact spelling.
#[derive(Debug, PartialEq, Eq)]
struct UriParts<'a> {
    /// Lowercase; empty for a plain path.
    scheme: String,
    netloc: &'a str,
    path: &'a str,
    query: &'a str,
    fragment: &'a str,
}

impl<'a> UriParts<'a> {
    fn split(uri: &'a str) -> UriParts<'a> {
        let valid_scheme = |s: &str| {
            let mut chars = s.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        };
        let (scheme, rest) = match uri.split_once(':') {
            Some((s, rest)) if valid_scheme(s) => (s.to_ascii_lowercase(), rest),
            _ => (String::new(), uri),
        };
        let (netloc, rest) = match rest.strip_prefix("//") {
            Some(r) => {
                let end = r.find(['/', '?', '#']).unwrap_or(r.len());
                (&r[..end], &r[end..])
            }
            None => ("", rest),
        };
        let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        UriParts { scheme, netloc, path, query, fragment }
    }

    fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.into_owned())
    }

    /// The object key: the path without its leading `/`.
    fn key(&self) -> &'a str {
        self.path.strip_prefix('/').unwrap_or(self.path)
    }
}

/// The entries one `add_reference(uri, name, checksum, max_objects)` call creates, as
/// `(entry path, entry)`. `max_objects == 0` means [`DEFAULT_MAX_OBJECTS`]; an empty `name` means
/// none (as in the SDK).
pub async fn expand(
    clouds: &Clouds,
    uri: &str,
    name: Option<&str>,
    checksum: bool,
    max_objects: usize,
) -> Result<Vec<(String, Entry)>, RefError> {
    refuse_credentials(uri)?;
    let max_objects = if max_objects == 0 { DEFAULT_MAX_OBJECTS } else { max_objects };
    let name = name.filter(|n| !n.is_empty());
    let raw = match RefScheme::of(uri) {
        RefScheme::S3 => expand_s3(clouds, uri, name, checksum, max_objects).await?,
        RefScheme::Gcs => expand_gcs(clouds, uri, name, checksum, max_objects).await?,
        RefScheme::Http => expand_http(clouds, uri, name, checksum).await?,
        RefScheme::File => {
            let (uri_owned, name) = (uri.to_owned(), name.map(str::to_owned));
            tokio::task::spawn_blocking(move || {
                expand_file(&uri_owned, name.as_deref(), checksum, max_objects)
            })
            .await
            .map_err(|e| RefError::Protocol {
                uri: uri.to_owned(),
                reason: format!("file reference worker failed: {e}"),
            })??
        }
        RefScheme::Azure => expand_azure(uri, name, checksum)?,
        RefScheme::WandbArtifact => {
            return Err(RefError::Unsupported {
                uri: uri.to_owned(),
                reason: "references to entries of other artifacts are not supported yet".into(),
            });
        }
        RefScheme::Other => {
            let name = name.ok_or_else(|| RefError::NameRequired { uri: uri.to_owned() })?;
            vec![(name.to_owned(), unchecked(uri.to_owned()))]
        }
    };
    warn_if_readers_must_allow(uri);
    raw.into_iter().map(|(n, e)| Ok((entry_path(uri, &n)?, e))).collect()
}

/// Logging reads what the writer names, but readers refuse local files and private addresses
/// unless they allow them (`store::guard`): say so while the writer can still choose.
fn warn_if_readers_must_allow(uri: &str) {
    let private = |url: &Url| {
        guard::check_url(url, guard::private_kind).is_err()
            || url.host_str().is_some_and(|h| h.eq_ignore_ascii_case("localhost"))
    };
    match RefScheme::of(uri) {
        RefScheme::File => tracing::warn!(
            "{}: readers of this registry read file:// references only below directories they \
             allow with --allow-file-refs DIR",
            redact(uri)
        ),
        RefScheme::Http if Url::parse(uri).is_ok_and(|u| private(&u)) => tracing::warn!(
            "{}: a private address; readers of this registry read it only with \
             --allow-private-refs",
            redact(uri)
        ),
        _ => {}
    }
}

/// The entry path W&B stores for a name (its `LogicalPath`: `PurePosixPath` normalisation), then
/// checked against the manifest rules.
fn entry_path(uri: &str, name: &str) -> Result<String, RefError> {
    let joined = segments(name).collect::<Vec<_>>().join("/");
    let path = match name.starts_with('/') {
        true => format!("/{joined}"),
        false => joined,
    };
    // The manifest's error names the normalised path; the user knows the name they typed.
    crate::manifest::validate_path(&path).map_err(|e| RefError::InvalidName {
        uri: uri.to_owned(),
        name: name.to_owned(),
        reason: match e {
            ManifestError::Entry { reason, .. } => reason,
            other => other.to_string(),
        },
    })?;
    Ok(path)
}

/// Path components as `PurePosixPath` sees them: empty and `.` components vanish.
fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty() && *s != ".")
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The name of an object found by listing `prefix`: its path below the prefix (under `name` if
/// given). The prefix object itself (a folder marker with content) keeps its basename.
fn listed_name(uri: &str, prefix: &str, key: &str, name: Option<&str>) -> Result<String, RefError> {
    let pre: Vec<&str> = segments(prefix).collect();
    let parts: Vec<&str> = segments(key).collect();
    if !parts.starts_with(&pre) {
        return Err(RefError::OutsidePrefix {
            uri: uri.to_owned(),
            key: key.to_owned(),
            prefix: prefix.to_owned(),
        });
    }
    let rel = parts[pre.len()..].join("/");
    Ok(match (name, rel.is_empty()) {
        (Some(n), true) => n.to_owned(),
        (None, true) => basename(key).to_owned(),
        (Some(n), false) => format!("{n}/{rel}"),
        (None, false) => rel,
    })
}

fn unchecked(uri: String) -> Entry {
    Entry { digest: uri.clone(), reference: Some(uri), ..Entry::default() }
}

fn object_path(uri: &str, key: &str) -> Result<ObjPath, RefError> {
    ObjPath::parse(key).map_err(|e| RefError::InvalidUri {
        uri: uri.to_owned(),
        reason: format!("object key {key:?} cannot be addressed: {e}"),
    })
}

fn cloud_err(uri: &str) -> impl Fn(CloudError) -> RefError + '_ {
    move |source| match source {
        CloudError::Unreachable { .. } => {
            RefError::Unreachable { uri: uri.to_owned(), source: Box::new(source) }
        }
        CloudError::Refused { source, .. } => {
            RefError::Refused { uri: uri.to_owned(), reason: source.to_string() }
        }
        source => RefError::Cloud { uri: uri.to_owned(), source: Box::new(source) },
    }
}

/// True when the error chain holds a failed connection or a timeout.
fn is_unreachable(err: &(dyn StdError + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(http) = e.downcast_ref::<HttpError>() {
            return matches!(http.kind(), HttpErrorKind::Connect | HttpErrorKind::Timeout);
        }
        cur = e.source();
    }
    false
}

fn store_err(uri: &str, action: &'static str, source: object_store::Error) -> RefError {
    let uri = uri.to_owned();
    match source {
        object_store::Error::NotFound { .. } => RefError::NotFound {
            uri,
            what: "no such object".into(),
            source: Some(Box::new(source)),
        },
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => {
            RefError::Denied { uri, source: Box::new(source) }
        }
        source if is_unreachable(&source) => {
            RefError::Unreachable { uri, source: Box::new(source) }
        }
        // object_store reports a missing bucket as a generic error quoting S3's XML.
        source if source.to_string().contains("NoSuchBucket") => RefError::NotFound {
            uri,
            what: "no such bucket".into(),
            source: Some(Box::new(source)),
        },
        source => RefError::Store { uri, action, source },
    }
}

/// A reference that names neither an object nor a non-empty prefix (S3 and GCS alike).
fn nothing_at(uri: &str) -> RefError {
    RefError::NotFound {
        uri: uri.to_owned(),
        what: "no object and no object below that prefix".into(),
        source: None,
    }
}

/// What identifies the exact content of a reference entry: `(uri, etag or version tag)`. The
/// cache keys references by sha256(sha256(uri) || sha256(tag)), as W&B's cache does with the
/// entry digest. `None` for stored (non-reference) entries. Entries logged without checksum
/// (digest == URI) get `(uri, uri)`: their content is not pinned.
pub fn cache_identity(entry: &Entry) -> Option<(String, String)> {
    let uri = entry.reference.clone()?;
    Some((uri, entry.digest.clone()))
}

/// Whether reads of this reference can be checked against what was logged: false for entries
/// logged without checksum (digest == URI) and for schemes that cannot be read at all.
pub fn is_pinned(entry: &Entry) -> bool {
    let Some(uri) = entry.reference.as_deref() else {
        return false;
    };
    match RefScheme::of(uri) {
        // Logged without checksum, a file's digest is the MD5 of its (resolved) URI.
        RefScheme::File => entry.digest != md5_base64(uri.as_bytes()),
        RefScheme::S3 | RefScheme::Gcs | RefScheme::Http => entry.digest != uri,
        RefScheme::Azure | RefScheme::WandbArtifact | RefScheme::Other => false,
    }
}

/// Reads a reference entry (whole, or `range` of it), pinned to what was logged; see the module
/// documentation. Errors about the request (missing object, changed source, unreachable server)
/// are returned before any byte; body errors end the stream.
pub async fn fetch(
    clouds: &Clouds,
    entry: &Entry,
    range: Option<Range<u64>>,
) -> Result<ByteStream, RefError> {
    let uri = entry.reference.as_deref().ok_or(RefError::NotAReference)?;
    if range.as_ref().is_some_and(|r| r.start >= r.end) {
        return Ok(stream::empty().boxed());
    }
    match RefScheme::of(uri) {
        RefScheme::S3 => fetch_s3(clouds, uri, entry, range).await,
        RefScheme::Gcs => fetch_gcs(clouds, uri, entry, range).await,
        RefScheme::Http => fetch_http(clouds, uri, entry, range).await,
        RefScheme::File => fetch_file(uri, entry, range, &clouds.config().refs).await,
        RefScheme::Azure | RefScheme::WandbArtifact | RefScheme::Other => {
            Err(RefError::Unsupported {
                uri: uri.to_owned(),
                reason: "this reference is only tracked; it cannot be read (W&B cannot either)"
                    .into(),
            })
        }
    }
}

/// Whether the reader's [`RefAccess`] allows reading this reference, checked without reading
/// it: a `file://` path below an allowed directory (symlinks resolved), an `http(s)://` URL on
/// an allowed address. Callers check this before serving a cached copy too, so bytes fetched
/// once by a reader who allowed them are not served to a read that is not allowed.
pub async fn check_allowed(clouds: &Clouds, entry: &Entry) -> Result<(), RefError> {
    let Some(uri) = entry.reference.as_deref() else {
        return Ok(());
    };
    match RefScheme::of(uri) {
        RefScheme::File => {
            let (path, access) = (file_path(uri)?, clouds.config().refs.clone());
            let checked = tokio::task::spawn_blocking(move || allowed_path(&path, &access)).await;
            match checked {
                Ok(Err(FileOpen::Refused(reason))) => {
                    Err(RefError::Refused { uri: uri.to_owned(), reason })
                }
                // Anything else (a missing file, a failed worker) is the read's to report.
                _ => Ok(()),
            }
        }
        RefScheme::Http => {
            clouds.check_reference_url(&request_url(uri)?).await.map_err(cloud_err(uri))
        }
        RefScheme::S3
        | RefScheme::Gcs
        | RefScheme::Azure
        | RefScheme::WandbArtifact
        | RefScheme::Other => Ok(()),
    }
}

/// GET through an object store: the object's metadata (as answered) and its bytes.
async fn get_object(
    store: &dyn ObjectStore,
    uri: &str,
    path: &ObjPath,
    opts: GetOptions,
) -> Result<(ObjectMeta, ByteStream), object_store::Error> {
    let range = match &opts.range {
        Some(GetRange::Bounded(r)) => Some(r.clone()),
        _ => None,
    };
    let whole = GetOptions { range: None, ..opts.clone() };
    let (got, cut) = match store.get_opts(path, opts).await {
        Ok(got) => (got, None),
        // Some servers (ministack, for GETs by version) ignore `Range` and send everything,
        // which object_store refuses: read the whole answer and cut the range out instead.
        Err(e) if range.is_some() && is_not_partial(&e) => {
            (store.get_opts(path, whole).await?, range)
        }
        Err(e) => return Err(e),
    };
    let meta = got.meta.clone();
    let owned_uri = uri.to_owned();
    let stream = crate::store::body_stream(got)
        .map_err(move |e| store_err(&owned_uri, "reading", e))
        .boxed();
    Ok(match cut {
        Some(r) => (meta, slice_stream(stream, r.start, r.end - r.start)),
        None => (meta, stream),
    })
}

fn is_not_partial(err: &(dyn StdError + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.to_string().contains("non-partial response") {
            return true;
        }
        cur = e.source();
    }
    false
}

/// Object-store reads only need the key; the bucket store comes from `Clouds`.
fn bucket_and_key(uri: &str) -> Result<(&str, &str), RefError> {
    let parts = UriParts::split(uri);
    let (netloc, key) = (parts.netloc, parts.path.trim_start_matches('/'));
    if netloc.is_empty() || key.is_empty() {
        return Err(RefError::InvalidUri {
            uri: uri.to_owned(),
            reason: "no bucket or key".into(),
        });
    }
    Ok((netloc, key))
}

/// `len` bytes of `inner` starting at `skip`.
fn slice_stream(inner: ByteStream, skip: u64, len: u64) -> ByteStream {
    stream::unfold((inner, skip, len), |(mut inner, mut skip, mut left)| async move {
        while left > 0 {
            match inner.next().await? {
                Err(e) => return Some((Err(e), (inner, skip, 0))),
                Ok(mut chunk) => {
                    let n = chunk.len() as u64;
                    if skip >= n {
                        skip -= n;
                        continue;
                    }
                    chunk = chunk.slice(skip as usize..);
                    skip = 0;
                    chunk.truncate(chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX)));
                    left -= chunk.len() as u64;
                    return Some((Ok(chunk), (inner, skip, left)));
                }
            }
        }
        None
    })
    .boxed()
}

#[cfg(test)]
mod tests;
