//! `http(s)://` references: entries from the answer's ETag and Content-Length, reads pinned by
//! comparing the ETag, sent only where the reader's `RefAccess` allows (`Clouds::send_reference`).

use object_store::client::HttpResponse;
use serde_json::Value;
use url::Url;

use super::*;

/// The URL to request for a reference URI (percent-encoding completed where the URI left
/// characters raw).
pub(super) fn request_url(uri: &str) -> Result<String, RefError> {
    request_parts(uri).map(|(url, _)| url)
}

/// The URL to request without its credentials, and the `Authorization` header they become.
/// Credentials never travel inside the URL, so no error of the HTTP stack can quote them.
pub(super) fn request_parts(uri: &str) -> Result<(String, Option<String>), RefError> {
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

pub(super) fn percent_encoding_decode(s: &str) -> String {
    String::from_utf8_lossy(&percent_decode(s.as_bytes())).into_owned()
}

pub(super) fn header(resp: &HttpResponse, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .filter(|v| !v.is_empty())
}

/// The entry the SDK builds from a response's headers: digest = ETag with every leading and
/// trailing `"` trimmed (a weak `W/"x"` becomes `W/"x`), else the URI; `extra.etag` = the raw
/// header; size = Content-Length.
pub(super) fn http_entry(uri: &str, etag: Option<&str>, content_length: Option<u64>) -> Entry {
    let mut entry = unchecked(uri.to_owned());
    entry.size = content_length;
    if let Some(etag) = etag.filter(|e| !e.is_empty()) {
        entry.extra.insert("etag".to_owned(), Value::String(etag.to_owned()));
        entry.digest = etag.trim_matches('"').to_owned();
    }
    entry
}

pub(super) async fn expand_http(
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

pub(super) async fn read_body(uri: &str, resp: HttpResponse) -> Result<Bytes, RefError> {
    resp.into_body()
        .bytes()
        .await
        .map_err(|source| RefError::Transfer { uri: uri.to_owned(), source })
}

/// The error for an unexpected status, quoting the start of the body.
pub(super) async fn status_err(uri: &str, resp: HttpResponse) -> RefError {
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

pub(super) async fn fetch_http(
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
