//! `gs://` references: metadata through the GCS JSON API (its `etag` and `generation` are what
//! the SDK records), reads pinned by generation.

use std::collections::BTreeMap;

use serde_json::Value;
use url::Url;

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GcsObject {
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
pub(super) async fn gcs_json(
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

pub(super) async fn gcs_object(
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

pub(super) async fn expand_gcs(
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

pub(super) async fn fetch_gcs(
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
