//! Downloads of a version's stored entries, verified while they stream: each piece is sent only
//! once the next has arrived, and the last only once the whole entry's digest matches the
//! manifest, so a corrupt blob never reaches a browser whole (the response breaks off short of
//! its `Content-Length`). Bytes go out as an attachment, or, for the image types a preview
//! shows, inline as that type; never as anything a browser would run.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use futures::StreamExt;

use super::opened::{EntryPath, open_at, source_error};
use super::preview::image_type;
use super::{PageResult, Viewer, not_found};
use crate::cache::{DigestState, Verify};
use crate::manifest::{ContentCheck, Entry};
use crate::serve::{ServeError, Shared};
use crate::source::{BlobSource, BlobStream};

/// `…/vN/raw/<path>`: the entry's bytes (`?inline=1`: an image shown in its preview).
pub async fn raw(
    State(s): State<Arc<Shared>>,
    Viewer(access): Viewer,
    Path(at): Path<EntryPath>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let (o, path) = open_at(&s, &access, at).await?;
    let entry = o.manifest.contents.get(&path).ok_or_else(not_found)?;
    if entry.is_reference() {
        return Err(ServeError::NotFound("a reference: read it from its URI".into()).into());
    }
    let body = verified(o.blobs.as_ref(), &path, entry).await?;
    let name = path.rsplit('/').next().unwrap_or(&path);
    let inline = q.contains_key("inline").then(|| image_type(&path)).flatten();
    let (kind, disposition) = match inline {
        Some(t) => (t, "inline"),
        None => ("application/octet-stream", "attachment"),
    };
    let mut r = Body::from_stream(body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Some(size) = entry.size {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    if let Ok(d) = HeaderValue::from_str(&content_disposition(disposition, name)) {
        h.insert(header::CONTENT_DISPOSITION, d);
    }
    Ok(r)
}

/// What RFC 5987 lets through unencoded in `filename*`.
const ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment; filename="…"; filename*=UTF-8''…`: the plain name for old clients (only safe
/// ASCII kept), the exact one percent-encoded (RFC 6266).
pub fn content_disposition(kind: &str, name: &str) -> String {
    let plain: String = name
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    let exact = percent_encoding::utf8_percent_encode(name, ATTR_CHAR);
    format!("{kind}; filename=\"{plain}\"; filename*=UTF-8''{exact}")
}

/// The entry's bytes as a stream that ends in an error instead of its last piece when they do
/// not hash to the manifest's digest.
pub async fn verified(
    blobs: &dyn BlobSource,
    path: &str,
    entry: &Entry,
) -> Result<BlobStream, ServeError> {
    let verify = match entry.content_check() {
        ContentCheck::Md5(raw) => Verify::Md5(raw),
        ContentCheck::Xxh128(raw) => Verify::Xxh128(raw),
        ContentCheck::None => Verify::SizeOnly,
    };
    let inner = blobs.stream(path, entry).await.map_err(source_error)?;
    let state = (inner, None::<Bytes>, Some(DigestState::new(&verify)), path.to_owned());
    let out = futures::stream::unfold(state, |(mut inner, held, digest, path)| async move {
        let mut digest = digest?;
        match inner.next().await {
            Some(Ok(piece)) => {
                digest.update(&piece);
                let out = held.unwrap_or_default();
                Some((Ok(out), (inner, Some(piece), Some(digest), path)))
            }
            Some(Err(e)) => Some((Err(e), (inner, None, None, path))),
            None => {
                let last = match (held, digest.finish()) {
                    (Some(b), Ok(())) => Ok(b),
                    (None, Ok(())) => return None,
                    (_, Err((want, got))) => Err(crate::source::SourceError::Corrupt(
                        format!("entry {path}: digest mismatch, expected {want}, got {got}").into(),
                    )),
                };
                Some((last, (inner, None, None, path)))
            }
        }
    });
    Ok(out.filter(|r| futures::future::ready(!matches!(r, Ok(b) if b.is_empty()))).boxed())
}
