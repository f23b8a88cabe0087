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

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::ops::Range;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3;
use object_store::client::{HttpError, HttpErrorKind, HttpResponse};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path as ObjPath;
use object_store::{Attribute, GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use url::Url;

use crate::manifest::{DigestAlg, Entry, EntryHasher, ManifestError, hash_file, md5_base64};
use crate::store::cloud::{CloudError, Clouds};
use crate::store::guard::RefAccess;

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
    #[error("{uri}: entry name {name:?} is not a valid artifact path ({source}); pass a name", uri = redact(.uri))]
    InvalidName {
        uri: String,
        name: String,
        #[source]
        source: ManifestError,
    },
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
    raw.into_iter().map(|(n, e)| Ok((entry_path(uri, &n)?, e))).collect()
}

/// The entry path W&B stores for a name (its `LogicalPath`: `PurePosixPath` normalisation), then
/// checked against the manifest rules.
fn entry_path(uri: &str, name: &str) -> Result<String, RefError> {
    let joined = segments(name).collect::<Vec<_>>().join("/");
    let path = match name.starts_with('/') {
        true => format!("/{joined}"),
        false => joined,
    };
    crate::manifest::validate_path(&path).map_err(|source| RefError::InvalidName {
        uri: uri.to_owned(),
        name: name.to_owned(),
        source,
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

// ---------------------------------------------------------------------------------------------
// S3

fn s3_entry(reference: String, meta: &ObjectMeta) -> Entry {
    let etag = meta.e_tag.as_deref().map(strip_quotes).unwrap_or_default().to_owned();
    let mut extra = BTreeMap::new();
    extra.insert("etag".to_owned(), Value::String(etag.clone()));
    // Unversioned buckets answer no version id; buckets where versioning was suspended, "null".
    if let Some(v) = meta.version.as_deref().filter(|v| !v.is_empty() && *v != "null") {
        extra.insert("versionID".to_owned(), Value::String(v.to_owned()));
    }
    Entry {
        digest: etag,
        reference: Some(reference),
        size: Some(meta.size),
        extra,
        ..Entry::default()
    }
}

/// S3 and HTTP ETags are quoted; the SDK records them without the quotes.
fn strip_quotes(etag: &str) -> &str {
    etag.strip_prefix('"').and_then(|e| e.strip_suffix('"')).unwrap_or(etag)
}

async fn expand_s3(
    clouds: &Clouds,
    uri: &str,
    name: Option<&str>,
    checksum: bool,
    max_objects: usize,
) -> Result<Vec<(String, Entry)>, RefError> {
    let parts = UriParts::split(uri);
    let bucket = parts.netloc;
    if bucket.is_empty() {
        return Err(RefError::InvalidUri { uri: uri.to_owned(), reason: "no bucket".into() });
    }
    let key = parts.key();
    let version = parts.query_param("versionId");
    let base = format!("s3://{bucket}/{key}");
    if !checksum {
        let n = name.unwrap_or(if key.is_empty() { bucket } else { key });
        return Ok(vec![(n.to_owned(), unchecked(base))]);
    }
    let store = clouds.s3(bucket).map_err(cloud_err(uri))?;

    // A key ending in `/` is a folder even if a marker object of that name exists (the SDK would
    // record the empty marker, i.e. nothing).
    if !key.is_empty() && !key.ends_with('/') {
        let opts = GetOptions { head: true, version: version.clone(), ..GetOptions::default() };
        match store.get_opts(&object_path(uri, key)?, opts).await {
            Ok(found) => {
                let is_folder = found
                    .attributes
                    .get(&Attribute::ContentType)
                    .is_some_and(|t| t.as_ref().contains("x-directory"));
                if !is_folder {
                    // The SDK skips zero-size objects, even one named explicitly.
                    if found.meta.size == 0 {
                        return Ok(Vec::new());
                    }
                    let n = name.unwrap_or(basename(key));
                    return Ok(vec![(n.to_owned(), s3_entry(base, &found.meta))]);
                }
            }
            Err(object_store::Error::NotFound { .. }) if version.is_some() => {
                return Err(RefError::NotFound {
                    uri: uri.to_owned(),
                    what: format!("version {} does not exist", version.unwrap_or_default()),
                    source: None,
                });
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(store_err(uri, "HEAD", e)),
        }
    }

    let listed = list_s3(&store, uri, key, max_objects).await?;
    // Listings carry no version ids; a HEAD per object records the version (and the etag and
    // size that go with it, consistently), as the SDK does.
    let heads: Vec<ObjectMeta> = stream::iter(listed.into_iter().map(|meta| {
        let store = store.clone();
        async move {
            store
                .head(&meta.location)
                .await
                .map_err(|e| store_err(&format!("s3://{bucket}/{}", meta.location), "HEAD", e))
        }
    }))
    .buffered(S3_HEAD_CONCURRENCY)
    .try_collect()
    .await?;
    heads
        .iter()
        .filter(|meta| meta.size > 0)
        .map(|meta| {
            let n = listed_name(uri, key, meta.location.as_ref(), name)?;
            Ok((n, s3_entry(format!("s3://{bucket}/{}", meta.location), meta)))
        })
        .collect()
}

/// Every non-empty object whose key starts with the string `prefix`.
async fn list_s3(
    store: &AmazonS3,
    uri: &str,
    prefix: &str,
    max_objects: usize,
) -> Result<Vec<ObjectMeta>, RefError> {
    let mut out = Vec::new();
    let mut any = false;
    let mut page_token = None;
    loop {
        let opts = PaginatedListOptions {
            max_keys: Some(LIST_PAGE_OBJECTS),
            page_token: page_token.take(),
            ..PaginatedListOptions::default()
        };
        let page = store
            .list_paginated((!prefix.is_empty()).then_some(prefix), opts)
            .await
            .map_err(|e| store_err(uri, "listing", e))?;
        any |= !page.result.objects.is_empty();
        for meta in page.result.objects.into_iter().filter(|m| m.size > 0) {
            out.push(meta);
            if out.len() > max_objects {
                return Err(RefError::TooManyObjects { uri: uri.to_owned(), max: max_objects });
            }
        }
        match page.page_token {
            Some(t) => page_token = Some(t),
            None => break,
        }
    }
    if !any {
        return Err(nothing_at(uri));
    }
    Ok(out)
}

/// A reference that names neither an object nor a non-empty prefix (S3 and GCS alike).
fn nothing_at(uri: &str) -> RefError {
    RefError::NotFound {
        uri: uri.to_owned(),
        what: "no object and no object below that prefix".into(),
        source: None,
    }
}

// ---------------------------------------------------------------------------------------------
// GCS (metadata through the JSON API: its `etag` and `generation` are what the SDK records)

#[derive(Debug, Clone, PartialEq, Eq)]
struct GcsObject {
    name: String,
    size: u64,
    etag: String,
    generation: u64,
}

impl GcsObject {
    fn parse(uri: &str, v: &Value) -> Result<GcsObject, RefError> {
        // The JSON API writes int64 fields as strings.
        let field = |k: &str| match v.get(k) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let bad = |k: &str| RefError::Protocol {
            uri: uri.to_owned(),
            reason: format!("GCS object metadata without a valid `{k}`"),
        };
        let number = |k: &str| field(k).and_then(|s| s.parse::<u64>().ok()).ok_or_else(|| bad(k));
        Ok(GcsObject {
            name: field("name").ok_or_else(|| bad("name"))?,
            size: number("size")?,
            etag: field("etag").ok_or_else(|| bad("etag"))?,
            generation: number("generation")?,
        })
    }

    fn entry(&self, reference: String) -> Entry {
        let mut extra = BTreeMap::new();
        extra.insert("versionID".to_owned(), Value::from(self.generation));
        Entry {
            digest: self.etag.clone(),
            reference: Some(reference),
            size: Some(self.size),
            extra,
            ..Entry::default()
        }
    }
}

/// GET on the JSON API: `/storage/v1/b/BUCKET/o[/OBJECT]?query`. `None` on 404.
async fn gcs_json(
    clouds: &Clouds,
    uri: &str,
    bucket: &str,
    object: Option<&str>,
    query: &[(&str, &str)],
) -> Result<Option<Value>, RefError> {
    let base = clouds.gcs_base_url();
    let mut url = Url::parse(base).map_err(|e| RefError::InvalidUri {
        uri: uri.to_owned(),
        reason: format!("GCS base URL {base}: {e}"),
    })?;
    {
        let mut segs = url.path_segments_mut().map_err(|()| RefError::InvalidUri {
            uri: uri.to_owned(),
            reason: format!("GCS base URL {base} cannot take a path"),
        })?;
        segs.pop_if_empty().extend(["storage", "v1", "b", bucket, "o"]);
        if let Some(o) = object {
            segs.push(o);
        }
    }
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    let mut headers = Vec::new();
    if let Some(auth) = clouds.gcs_authorization(bucket).await.map_err(cloud_err(uri))? {
        headers.push(("authorization", auth));
    }
    let resp = clouds.send("GET", url.as_str(), &headers).await.map_err(cloud_err(uri))?;
    match resp.status().as_u16() {
        200 => {
            let body = read_body(uri, resp).await?;
            serde_json::from_slice(&body).map(Some).map_err(|e| RefError::Protocol {
                uri: uri.to_owned(),
                reason: format!("GCS answered invalid JSON: {e}"),
            })
        }
        404 => Ok(None),
        _ => Err(status_err(uri, resp).await),
    }
}

async fn gcs_object(
    clouds: &Clouds,
    uri: &str,
    bucket: &str,
    key: &str,
    generation: Option<&str>,
) -> Result<Option<GcsObject>, RefError> {
    let query: Vec<(&str, &str)> = generation.map(|g| ("generation", g)).into_iter().collect();
    match gcs_json(clouds, uri, bucket, Some(key), &query).await? {
        Some(v) => GcsObject::parse(uri, &v).map(Some),
        None => Ok(None),
    }
}

async fn expand_gcs(
    clouds: &Clouds,
    uri: &str,
    name: Option<&str>,
    checksum: bool,
    max_objects: usize,
) -> Result<Vec<(String, Entry)>, RefError> {
    let parts = UriParts::split(uri);
    let bucket = parts.netloc;
    if bucket.is_empty() {
        return Err(RefError::InvalidUri { uri: uri.to_owned(), reason: "no bucket".into() });
    }
    let key = parts.path.trim_start_matches('/');
    let version = Some(parts.fragment).filter(|f| !f.is_empty());
    let base = format!("gs://{bucket}/{key}");
    if !checksum {
        return Ok(vec![(name.unwrap_or(key).to_owned(), unchecked(base))]);
    }
    if let Some(v) = version
        && v.parse::<u64>().is_err()
    {
        return Err(RefError::InvalidUri {
            uri: uri.to_owned(),
            reason: format!("the generation after `#` must be a number, not {v:?}"),
        });
    }
    let single = match key.is_empty() {
        true => None,
        false => gcs_object(clouds, uri, bucket, key, version).await?,
    };
    match (single, version) {
        (Some(obj), _) if !obj.name.ends_with('/') => {
            let n = name.unwrap_or(basename(key));
            return Ok(vec![(n.to_owned(), obj.entry(base))]);
        }
        (None, Some(v)) => {
            return Err(RefError::NotFound {
                uri: uri.to_owned(),
                what: format!("generation {v} does not exist"),
                source: None,
            });
        }
        _ => {}
    }

    let mut out = Vec::new();
    let mut any = false;
    let mut page_token: Option<String> = None;
    let page_size = LIST_PAGE_OBJECTS.to_string();
    loop {
        let mut query = vec![("prefix", key), ("maxResults", page_size.as_str())];
        if let Some(t) = page_token.as_deref() {
            query.push(("pageToken", t));
        }
        let page = gcs_json(clouds, uri, bucket, None, &query).await?.ok_or_else(|| {
            RefError::NotFound { uri: uri.to_owned(), what: "no such bucket".into(), source: None }
        })?;
        let items = page.get("items").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        any |= !items.is_empty();
        for item in items {
            let obj = GcsObject::parse(uri, item)?;
            // Folder markers (names ending in `/`) are not files.
            if obj.name.ends_with('/') {
                continue;
            }
            let n = listed_name(uri, key, &obj.name, name)?;
            out.push((n, obj.entry(format!("gs://{bucket}/{}", obj.name))));
            if out.len() > max_objects {
                return Err(RefError::TooManyObjects { uri: uri.to_owned(), max: max_objects });
            }
        }
        match page.get("nextPageToken").and_then(Value::as_str) {
            Some(t) if !t.is_empty() => page_token = Some(t.to_owned()),
            _ => break,
        }
    }
    if !any {
        return Err(nothing_at(uri));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// The URL to request for a reference URI (percent-encoding completed where the URI left
/// characters raw).
fn request_url(uri: &str) -> Result<String, RefError> {
    request_parts(uri).map(|(url, _)| url)
}

/// The URL to request without its credentials, and the `Authorization` header they become.
/// Credentials never travel inside the URL, so no error of the HTTP stack can quote them.
fn request_parts(uri: &str) -> Result<(String, Option<String>), RefError> {
    use base64::Engine;
    let invalid = |reason: String| RefError::InvalidUri { uri: uri.to_owned(), reason };
    let mut url = Url::parse(uri).map_err(|e| invalid(e.to_string()))?;
    if url.username().is_empty() && url.password().is_none() {
        return Ok((url.into(), None));
    }
    let decode = |s: &str| percent_encoding_decode(s);
    let pair = format!("{}:{}", decode(url.username()), decode(url.password().unwrap_or("")));
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair));
    let no_credentials = |_| invalid("its credentials cannot be removed".into());
    url.set_username("").map_err(no_credentials)?;
    url.set_password(None).map_err(no_credentials)?;
    Ok((url.into(), Some(auth)))
}

fn percent_encoding_decode(s: &str) -> String {
    String::from_utf8_lossy(&percent_decode(s.as_bytes())).into_owned()
}

fn header(resp: &HttpResponse, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .filter(|v| !v.is_empty())
}

/// The entry the SDK builds from a response's headers: digest = ETag with every leading and
/// trailing `"` trimmed (a weak `W/"x"` becomes `W/"x`), else the URI; `extra.etag` = the raw
/// header; size = Content-Length.
fn http_entry(uri: &str, etag: Option<&str>, content_length: Option<u64>) -> Entry {
    let mut entry = unchecked(uri.to_owned());
    entry.size = content_length;
    if let Some(etag) = etag.filter(|e| !e.is_empty()) {
        entry.extra.insert("etag".to_owned(), Value::String(etag.to_owned()));
        entry.digest = etag.trim_matches('"').to_owned();
    }
    entry
}

async fn expand_http(
    clouds: &Clouds,
    uri: &str,
    name: Option<&str>,
    checksum: bool,
) -> Result<Vec<(String, Entry)>, RefError> {
    // `os.path.basename` of the whole URI: the query string stays in the name.
    let n = name.unwrap_or(basename(uri)).to_owned();
    if !checksum {
        return Ok(vec![(n, unchecked(uri.to_owned()))]);
    }
    // GET, not HEAD, as the SDK: presigned URLs are signed for one method. Only the headers are
    // read; dropping the response closes the connection.
    let resp = clouds.send("GET", &request_url(uri)?, &[]).await.map_err(cloud_err(uri))?;
    if !resp.status().is_success() {
        return Err(status_err(uri, resp).await);
    }
    let length = header(&resp, "content-length").and_then(|l| l.parse().ok());
    Ok(vec![(n, http_entry(uri, header(&resp, "etag").as_deref(), length))])
}

async fn read_body(uri: &str, resp: HttpResponse) -> Result<Bytes, RefError> {
    resp.into_body()
        .bytes()
        .await
        .map_err(|source| RefError::Transfer { uri: uri.to_owned(), source })
}

/// The error for an unexpected status, quoting the start of the body.
async fn status_err(uri: &str, resp: HttpResponse) -> RefError {
    let status = resp.status().as_u16();
    let body = read_body(uri, resp).await.unwrap_or_default();
    let mut text = String::from_utf8_lossy(&body[..body.len().min(ERROR_BODY_QUOTE_BYTES)])
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if body.len() > ERROR_BODY_QUOTE_BYTES {
        text.push('…');
    }
    match status {
        404 | 410 => RefError::NotFound {
            uri: uri.to_owned(),
            what: format!("no such URL (HTTP {status})"),
            source: None,
        },
        401 | 403 => RefError::Denied {
            uri: uri.to_owned(),
            source: format!("HTTP {status}{}", quote_body(&text)).into(),
        },
        _ => RefError::Status { uri: uri.to_owned(), status, body: text },
    }
}

// ---------------------------------------------------------------------------------------------
// file://

/// The local path of a `file://` URI: its path, percent-decoded (`url2pathname`).
fn file_path(uri: &str) -> Result<PathBuf, RefError> {
    let parts = UriParts::split(uri);
    if !matches!(parts.netloc, "" | "localhost") {
        return Err(RefError::InvalidUri {
            uri: uri.to_owned(),
            reason: format!("file:// URIs must name a local path, not host {:?}", parts.netloc),
        });
    }
    let decoded: Vec<u8> = percent_decode(parts.path.as_bytes());
    use std::os::unix::ffi::OsStringExt;
    Ok(PathBuf::from(std::ffi::OsString::from_vec(decoded)))
}

fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (input[i], input.get(i + 1).copied(), input.get(i + 2).copied()) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// `pathlib.Path.as_uri()` of an absolute path: `file://` + the path with everything but
/// unreserved characters and `/` percent-encoded.
fn file_uri(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::from("file://");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The digest the SDK gives a `file://` entry logged without checksum: the base64 MD5 of the
/// file's resolved `file://` URI.
fn uri_digest(uri: &str, physical: &Path) -> Result<String, RefError> {
    let resolved = std::fs::canonicalize(physical).map_err(|source| RefError::Io {
        uri: uri.to_owned(),
        path: physical.to_owned(),
        source,
    })?;
    Ok(md5_base64(file_uri(&resolved).as_bytes()))
}

fn file_entry(
    uri: &str,
    reference: String,
    physical: &Path,
    checksum: bool,
) -> Result<Entry, RefError> {
    let io = |source| RefError::Io { uri: uri.to_owned(), path: physical.to_owned(), source };
    let (digest, size) = match checksum {
        true => hash_file(physical, DigestAlg::Md5, |_| {}).map_err(io)?,
        false => (uri_digest(uri, physical)?, std::fs::metadata(physical).map_err(io)?.len()),
    };
    Ok(Entry { digest, reference: Some(reference), size: Some(size), ..Entry::default() })
}

/// Blocking: walks directories like `os.walk` (symlinked files are followed, symlinked
/// directories are not entered).
fn expand_file(
    uri: &str,
    name: Option<&str>,
    checksum: bool,
    max_objects: usize,
) -> Result<Vec<(String, Entry)>, RefError> {
    let local = file_path(uri)?;
    let io =
        |path: &Path, source| RefError::Io { uri: uri.to_owned(), path: path.to_owned(), source };
    let meta = match std::fs::metadata(&local) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(RefError::NotFound {
                uri: uri.to_owned(),
                what: format!("{} does not exist", local.display()),
                source: Some(Box::new(e)),
            });
        }
        Err(e) => return Err(io(&local, e)),
    };
    if meta.is_file() {
        let n = match name {
            Some(n) => n.to_owned(),
            None => local.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
        };
        return Ok(vec![(n, file_entry(uri, uri.to_owned(), &local, checksum)?)]);
    }
    if !meta.is_dir() {
        return Err(RefError::InvalidUri {
            uri: uri.to_owned(),
            reason: format!("{} is neither a file nor a directory", local.display()),
        });
    }
    let mut files = Vec::new();
    let mut dirs = vec![(local.clone(), String::new())];
    while let Some((dir, rel_dir)) = dirs.pop() {
        for item in std::fs::read_dir(&dir).map_err(|e| io(&dir, e))? {
            let item = item.map_err(|e| io(&dir, e))?;
            let physical = item.path();
            let file_name = item.file_name().into_string().map_err(|raw| RefError::InvalidUri {
                uri: uri.to_owned(),
                reason: format!("file name {raw:?} in {} is not UTF-8", dir.display()),
            })?;
            let rel = match rel_dir.is_empty() {
                true => file_name,
                false => format!("{rel_dir}/{file_name}"),
            };
            let kind = item.file_type().map_err(|e| io(&physical, e))?;
            if kind.is_dir() {
                dirs.push((physical, rel));
                continue;
            }
            // Symlinks count as what they point to, but linked directories are not entered.
            let target = std::fs::metadata(&physical).map_err(|e| io(&physical, e))?;
            if target.is_dir() {
                continue;
            }
            if !target.is_file() {
                tracing::warn!(path = %physical.display(), "skipping special file in {uri}");
                continue;
            }
            files.push((rel, physical));
            if files.len() > max_objects {
                return Err(RefError::TooManyObjects { uri: uri.to_owned(), max: max_objects });
            }
        }
    }
    files.sort();
    let sep = if uri.ends_with('/') { "" } else { "/" };
    files
        .into_iter()
        .map(|(rel, physical)| {
            let n = match name {
                Some(n) => format!("{n}/{rel}"),
                None => rel.clone(),
            };
            Ok((n, file_entry(uri, format!("{uri}{sep}{rel}"), &physical, checksum)?))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Azure (tracked without checksums only)

fn expand_azure(
    uri: &str,
    name: Option<&str>,
    checksum: bool,
) -> Result<Vec<(String, Entry)>, RefError> {
    if checksum {
        return Err(RefError::Unsupported {
            uri: uri.to_owned(),
            reason: "Azure blob references are only supported without checksums (they need the \
                     Azure API); add it with checksum disabled"
                .into(),
        });
    }
    let parts = UriParts::split(uri);
    let mut path = parts.path.splitn(3, '/').skip(1);
    let (Some(container), Some(blob)) = (path.next(), path.next()) else {
        return Err(RefError::InvalidUri {
            uri: uri.to_owned(),
            reason: "expected https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB".into(),
        });
    };
    let reference = format!("{}://{}/{container}/{blob}", parts.scheme, parts.netloc);
    Ok(vec![(name.unwrap_or(blob).to_owned(), unchecked(reference))])
}

// ---------------------------------------------------------------------------------------------
// Reading

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
    let stream = got.into_stream().map_err(move |e| store_err(&owned_uri, "reading", e)).boxed();
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

async fn fetch_s3(
    clouds: &Clouds,
    uri: &str,
    entry: &Entry,
    range: Option<Range<u64>>,
) -> Result<ByteStream, RefError> {
    let (bucket, key) = bucket_and_key(uri)?;
    let store = clouds.s3(bucket).map_err(cloud_err(uri))?;
    let path = object_path(uri, key)?;
    let range = range.map(GetRange::Bounded);
    if entry.digest == uri {
        let opts = GetOptions { range, ..GetOptions::default() };
        let got = get_object(store.as_ref(), uri, &path, opts).await;
        return got.map(|(_, bytes)| bytes).map_err(|e| store_err(uri, "GET", e));
    }
    let etag = entry.extra_str("etag").unwrap_or_else(|| entry.digest.clone());
    let version = entry.extra_str("versionID");
    // Pinned by version when there is one; otherwise the server refuses other content.
    let opts = GetOptions {
        range: range.clone(),
        version: version.clone(),
        if_match: version.is_none().then(|| format!("\"{etag}\"")),
        ..GetOptions::default()
    };
    match get_object(store.as_ref(), uri, &path, opts).await {
        Ok((meta, bytes)) => {
            let found = meta.e_tag.as_deref().map(strip_quotes).unwrap_or_default();
            if found != etag {
                return Err(RefError::Changed {
                    uri: uri.to_owned(),
                    expected: format!("etag {etag}"),
                    found: format!("etag {found}"),
                });
            }
            Ok(bytes)
        }
        Err(object_store::Error::NotFound { .. } | object_store::Error::Precondition { .. }) => {
            // The recorded version is gone or the content changed: say what is there now. If the
            // current object still has the logged etag, it is the logged content (W&B's fallback).
            let current = match store.head(&path).await {
                Ok(meta) => meta,
                Err(object_store::Error::NotFound { .. }) => {
                    return Err(RefError::NotFound {
                        uri: uri.to_owned(),
                        what: "the object was deleted since it was logged".into(),
                        source: None,
                    });
                }
                Err(e) => return Err(store_err(uri, "HEAD", e)),
            };
            let found = current.e_tag.as_deref().map(strip_quotes).unwrap_or_default();
            if found == etag && version.is_some() {
                let opts = GetOptions {
                    range,
                    if_match: Some(format!("\"{etag}\"")),
                    ..GetOptions::default()
                };
                let got = get_object(store.as_ref(), uri, &path, opts).await;
                return got.map(|(_, bytes)| bytes).map_err(|e| store_err(uri, "GET", e));
            }
            let expected = match &version {
                Some(v) => format!("version {v} (etag {etag}), which no longer exists"),
                None => format!("etag {etag}"),
            };
            let found = match &current.version {
                Some(v) => format!("etag {found} (version {v})"),
                None => format!("etag {found}"),
            };
            Err(RefError::Changed { uri: uri.to_owned(), expected, found })
        }
        Err(e) => Err(store_err(uri, "GET", e)),
    }
}

async fn fetch_gcs(
    clouds: &Clouds,
    uri: &str,
    entry: &Entry,
    range: Option<Range<u64>>,
) -> Result<ByteStream, RefError> {
    let (bucket, key) = bucket_and_key(uri)?;
    let store = clouds.gcs(bucket).map_err(cloud_err(uri))?;
    let path = object_path(uri, key)?;
    let range = range.map(GetRange::Bounded);
    let get = |version: Option<String>| {
        let opts = GetOptions { range: range.clone(), version, ..GetOptions::default() };
        let (store, path) = (store.clone(), path.clone());
        async move {
            let got = get_object(store.as_ref(), uri, &path, opts).await;
            got.map(|(_, bytes)| bytes)
        }
    };
    if entry.digest == uri {
        return get(None).await.map_err(|e| store_err(uri, "GET", e));
    }
    let generation = entry.extra_str("versionID");
    if let Some(g) = &generation {
        match get(Some(g.clone())).await {
            Ok(bytes) => return Ok(bytes),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(store_err(uri, "GET", e)),
        }
    }
    // The generation is gone (unversioned bucket, or deleted): the current object is acceptable
    // only if it has the logged etag; it is then read by its own generation, so it cannot change
    // between this check and the read.
    let current =
        gcs_object(clouds, uri, bucket, key, None).await?.ok_or_else(|| RefError::NotFound {
            uri: uri.to_owned(),
            what: "the object was deleted since it was logged".into(),
            source: None,
        })?;
    if current.etag != entry.digest {
        let expected = match &generation {
            Some(g) => format!("etag {} (generation {g})", entry.digest),
            None => format!("etag {}", entry.digest),
        };
        return Err(RefError::Changed {
            uri: uri.to_owned(),
            expected,
            found: format!("etag {} (generation {})", current.etag, current.generation),
        });
    }
    get(Some(current.generation.to_string())).await.map_err(|e| store_err(uri, "GET", e))
}

async fn fetch_http(
    clouds: &Clouds,
    uri: &str,
    entry: &Entry,
    range: Option<Range<u64>>,
) -> Result<ByteStream, RefError> {
    let pinned = entry.digest != uri;
    let recorded_etag = entry.extra_str("etag");
    let mut headers = Vec::new();
    if let Some(r) = &range {
        headers.push(("range", format!("bytes={}-{}", r.start, r.end - 1)));
    }
    // If-Match needs a strong validator; weak ETags are only compared after the fact.
    if pinned && let Some(etag) = recorded_etag.as_deref().filter(|e| !e.starts_with("W/")) {
        headers.push(("if-match", etag.to_owned()));
    }
    let (url, auth) = request_parts(uri)?;
    headers.extend(auth.map(|a| ("authorization", a)));
    // The URL was chosen by whoever wrote the registry: only what the reader allows is reached.
    let resp = clouds.send_reference("GET", &url, &headers).await.map_err(cloud_err(uri))?;
    let status = resp.status().as_u16();
    let found_etag = header(&resp, "etag");
    let describe = |etag: &Option<String>| match etag {
        Some(e) => format!("etag {}", e.trim_matches('"')),
        None => "no etag".to_owned(),
    };
    if status == 412 {
        return Err(RefError::Changed {
            uri: uri.to_owned(),
            expected: format!("etag {}", entry.digest),
            found: match found_etag {
                Some(_) => describe(&found_etag),
                None => "a different etag (412 Precondition Failed)".to_owned(),
            },
        });
    }
    if !matches!(status, 200 | 206) {
        return Err(status_err(uri, resp).await);
    }
    // The ETag of the answer describes the bytes of this very answer: comparing it cannot race.
    if pinned && found_etag.as_deref().map(|e| e.trim_matches('"')) != Some(entry.digest.as_str()) {
        return Err(RefError::Changed {
            uri: uri.to_owned(),
            expected: format!("etag {}", entry.digest),
            found: describe(&found_etag),
        });
    }
    let length: Option<u64> = header(&resp, "content-length").and_then(|l| l.parse().ok());
    if range.is_none()
        && let (Some(expected), Some(found)) = (entry.size, length)
        && expected != found
    {
        return Err(RefError::Changed {
            uri: uri.to_owned(),
            expected: format!("{expected} bytes"),
            found: format!("{found} bytes"),
        });
    }
    let uri_owned = uri.to_owned();
    let body = resp
        .into_body()
        .bytes_stream()
        .map_err(move |source| RefError::Transfer { uri: uri_owned.clone(), source })
        .boxed();
    match (range, status) {
        // A server without range support sends everything: cut the range out.
        (Some(r), 200) => Ok(slice_stream(body, r.start, r.end - r.start)),
        _ => Ok(body),
    }
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

struct FileRead {
    uri: String,
    path: PathBuf,
    file: tokio::fs::File,
    /// Bytes still to read for a range; `None` reads to the end.
    left: Option<u64>,
    /// Whole reads hash what they serve and check it at the end.
    hasher: Option<EntryHasher>,
    digest: String,
    done: bool,
}

impl FileRead {
    async fn next_item(&mut self) -> Option<Result<Bytes, RefError>> {
        if self.done {
            return None;
        }
        let want = match self.left {
            Some(0) => return self.finish().await,
            Some(l) => FILE_READ_CHUNK_BYTES.min(usize::try_from(l).unwrap_or(usize::MAX)),
            None => FILE_READ_CHUNK_BYTES,
        };
        let mut buf = vec![0u8; want];
        match self.file.read(&mut buf).await {
            Err(source) => {
                self.done = true;
                Some(Err(RefError::Io { uri: self.uri.clone(), path: self.path.clone(), source }))
            }
            Ok(0) if self.left.is_some_and(|l| l > 0) => {
                self.done = true;
                Some(Err(RefError::Changed {
                    uri: self.uri.clone(),
                    expected: "the logged size".into(),
                    found: "a shorter file (it shrank while being read)".into(),
                }))
            }
            Ok(0) => self.finish().await,
            Ok(n) => {
                buf.truncate(n);
                if let Some(h) = self.hasher.as_mut() {
                    h.update(&buf);
                }
                if let Some(l) = self.left.as_mut() {
                    *l -= n as u64;
                }
                Some(Ok(Bytes::from(buf)))
            }
        }
    }

    async fn finish(&mut self) -> Option<Result<Bytes, RefError>> {
        self.done = true;
        let found = self.hasher.take()?.finish();
        if found == self.digest {
            return None;
        }
        // Logged without checksum: the digest is the MD5 of the URI, the content is not pinned.
        let (uri, path) = (self.uri.clone(), self.path.clone());
        let unchecked = tokio::task::spawn_blocking(move || uri_digest(&uri, &path))
            .await
            .ok()
            .and_then(Result::ok);
        if unchecked.as_deref() == Some(self.digest.as_str()) {
            return None;
        }
        Some(Err(RefError::Changed {
            uri: self.uri.clone(),
            expected: format!("md5 {}", self.digest),
            found: format!("md5 {found}"),
        }))
    }
}

async fn fetch_file(
    uri: &str,
    entry: &Entry,
    range: Option<Range<u64>>,
    access: &RefAccess,
) -> Result<ByteStream, RefError> {
    let path = file_path(uri)?;
    let io = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => RefError::NotFound {
            uri: uri.to_owned(),
            what: format!("{} was deleted since it was logged", path.display()),
            source: Some(Box::new(source)),
        },
        _ => RefError::Io { uri: uri.to_owned(), path: path.clone(), source },
    };
    let (owned_uri, owned_path, access) = (uri.to_owned(), path.clone(), access.clone());
    let opened = tokio::task::spawn_blocking(move || open_allowed(&owned_path, &access))
        .await
        .map_err(|e| io(std::io::Error::other(format!("file reference worker failed: {e}"))))?;
    let mut file = match opened {
        Ok(file) => tokio::fs::File::from_std(file),
        Err(FileOpen::Refused(reason)) => return Err(RefError::Refused { uri: owned_uri, reason }),
        Err(FileOpen::Io(e)) => return Err(io(e)),
    };
    let size = file.metadata().await.map_err(io)?.len();
    if let Some(expected) = entry.size
        && expected != size
    {
        return Err(RefError::Changed {
            uri: uri.to_owned(),
            expected: format!("{expected} bytes"),
            found: format!("{size} bytes"),
        });
    }
    let left = match &range {
        Some(r) => {
            file.seek(std::io::SeekFrom::Start(r.start)).await.map_err(io)?;
            Some(r.end.min(size).saturating_sub(r.start))
        }
        None => None,
    };
    let read = FileRead {
        uri: uri.to_owned(),
        path: path.clone(),
        file,
        left,
        hasher: range.is_none().then(|| EntryHasher::new(DigestAlg::Md5)),
        digest: entry.digest.clone(),
        done: false,
    };
    Ok(stream::unfold(read, |mut read| async move {
        let item = read.next_item().await?;
        Some((item, read))
    })
    .boxed())
}

enum FileOpen {
    Refused(String),
    Io(std::io::Error),
}

/// Opens `path` for reading if it lies below a directory `access` allows. The check is made on
/// the path with every symlink resolved, and made again on the file actually opened (its real
/// path through `/proc/self/fd`, and its device and inode against the checked path), so
/// swapping a directory for a symlink between the check and the open reaches nothing else.
fn open_allowed(path: &Path, access: &RefAccess) -> Result<std::fs::File, FileOpen> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let (canonical, shown) = allowed_path(path, access)?;
    let checked = std::fs::metadata(&canonical).map_err(FileOpen::Io)?;
    // O_NONBLOCK: opening a FIFO must not hang; it is refused below as not a regular file.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&canonical)
        .map_err(FileOpen::Io)?;
    let opened = file.metadata().map_err(FileOpen::Io)?;
    if (opened.dev(), opened.ino()) != (checked.dev(), checked.ino()) {
        return Err(file_refused(format!("{shown}, which changed while it was opened,")));
    }
    use std::os::fd::AsRawFd;
    if let Ok(real) = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        && !access.allows_file(&real)
    {
        return Err(file_refused(format!("{} (opened as {})", path.display(), real.display())));
    }
    if !opened.is_file() {
        return Err(FileOpen::Io(std::io::Error::other(format!(
            "{} is not a regular file",
            canonical.display()
        ))));
    }
    Ok(file)
}

fn file_refused(shown: String) -> FileOpen {
    FileOpen::Refused(format!(
        "{shown} is not below a directory the reader allowed with --allow-file-refs DIR (none \
         are by default); pass --allow-file-refs with a directory that holds it to read it"
    ))
}

/// `path` with every symlink resolved, if that is below a directory `access` allows, and how
/// to name it in messages.
fn allowed_path(path: &Path, access: &RefAccess) -> Result<(PathBuf, String), FileOpen> {
    let refused = file_refused;
    let canonical = match std::fs::canonicalize(path) {
        Ok(c) => c,
        // Say nothing about files outside the allowed directories, not even that they are gone.
        Err(_) if !access.allows_file(path) => return Err(refused(path.display().to_string())),
        Err(e) => return Err(FileOpen::Io(e)),
    };
    let shown = match canonical == path {
        true => path.display().to_string(),
        false => format!("{} (really {})", path.display(), canonical.display()),
    };
    if !access.allows_file(&canonical) {
        return Err(refused(shown));
    }
    Ok((canonical, shown))
}

// In a file of its own; the explicit path resolves the same in every crate that includes this one.
#[cfg(test)]
#[path = "refs/tests.rs"]
mod tests;
