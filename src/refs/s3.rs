//! `s3://` references: entries from HEAD and listings (etag, versionId, size), reads pinned by
//! version or `If-Match`.

use std::collections::BTreeMap;

use object_store::Attribute;
use object_store::aws::AmazonS3;
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use serde_json::Value;

use super::*;

pub(super) fn s3_entry(reference: String, meta: &ObjectMeta) -> Entry {
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
pub(super) fn strip_quotes(etag: &str) -> &str {
    etag.strip_prefix('"').and_then(|e| e.strip_suffix('"')).unwrap_or(etag)
}

pub(super) async fn expand_s3(
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
pub(super) async fn list_s3(
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

pub(super) async fn fetch_s3(
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
