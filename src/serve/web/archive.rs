//! A folder of a version, or all of it, downloaded as one tar archive (`…/vN/archive[/<folder>]`),
//! streamed entry by entry, each verified as `download` verifies one file: a blob that rotted
//! breaks the archive off rather than ending it cleanly. The format is the `tar` crate's GNU
//! header (long paths as `././@LongLink` entries); everything inside sits below
//! `<name>-vN/`. Reference entries are left out: the server does not fetch URIs for browsers.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use futures::{StreamExt, stream};

use super::download::{content_disposition, verified};
use super::opened::{EntryPath, VersionPath, open_at};
use super::{PageResult, Viewer, not_found};
use crate::manifest::Entry;
use crate::serve::Shared;

const BLOCK: u64 = 512;
/// Bytes of a name the header itself holds; longer ones go in a GNU long-name entry first.
const NAME_BYTES: usize = 100;

/// Zeros that pad `n` bytes to whole blocks.
fn padding(n: u64) -> usize {
    usize::try_from((BLOCK - n % BLOCK) % BLOCK).unwrap_or(0)
}

/// The header of a regular file (or of the long-name entry before one).
fn header(name: &[u8], size: u64, kind: tar::EntryType, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    let n = name.len().min(NAME_BYTES);
    h.as_old_mut().name[..n].copy_from_slice(&name[..n]);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_mtime(mtime);
    h.set_entry_type(kind);
    h.set_cksum();
    h
}

/// The blocks before a file's bytes: a long-name entry if its name needs one, then its header.
fn headers(name: &str, size: u64, mtime: u64) -> Bytes {
    let mut out = Vec::with_capacity(3 * BLOCK as usize);
    let bytes = name.as_bytes();
    if bytes.len() > NAME_BYTES {
        let long = bytes.len() as u64 + 1;
        let h = header(b"././@LongLink", long, tar::EntryType::GNULongName, 0);
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(bytes);
        out.push(0);
        out.resize(out.len() + padding(long), 0);
    }
    out.extend_from_slice(header(bytes, size, tar::EntryType::Regular, mtime).as_bytes());
    out.into()
}

/// The archive's length, when every entry's size is known.
fn archive_len(files: &[(String, String, Entry)]) -> Option<u64> {
    let mut total = 2 * BLOCK;
    for (_, name, e) in files {
        let size = e.size?;
        let long = name.len() as u64 + 1;
        if name.len() > NAME_BYTES {
            total += BLOCK + long + padding(long) as u64;
        }
        total += BLOCK + size + padding(size) as u64;
    }
    Some(total)
}

/// `…/vN/archive`: the whole version.
pub async fn whole(
    State(s): State<Arc<Shared>>,
    viewer: Viewer,
    Path(v): Path<VersionPath>,
) -> PageResult {
    folder(State(s), viewer, Path((v.0, v.1, v.2, v.3, String::new()))).await
}

/// `…/vN/archive/<folder>`: one folder and everything below it.
pub async fn folder(
    State(s): State<Arc<Shared>>,
    Viewer(access): Viewer,
    Path(at): Path<EntryPath>,
) -> PageResult {
    let (o, dir) = open_at(&s, &access, at).await?;
    let dir = match dir.trim_end_matches('/') {
        "" => String::new(),
        d => format!("{d}/"),
    };
    let top = format!("{}-v{}", o.version.collection.name, o.version.record.version);
    let files: Vec<(String, String, Entry)> = o
        .manifest
        .contents
        .range::<str, _>((std::ops::Bound::Included(dir.as_str()), std::ops::Bound::Unbounded))
        .take_while(|(path, _)| path.starts_with(&dir))
        .filter(|(_, e)| !e.is_reference())
        .map(|(path, e)| (path.clone(), format!("{top}/{}", &path[dir.len()..]), e.clone()))
        .collect();
    if files.is_empty() && !dir.is_empty() {
        return Err(not_found().into());
    }
    let len = archive_len(&files);
    let mtime = u64::try_from(o.version.record.created_at.timestamp()).unwrap_or(0);
    let blobs = o.blobs.clone();
    let body = stream::iter(files)
        .then(move |(path, name, entry)| {
            let blobs = blobs.clone();
            async move {
                let size = entry.size.unwrap_or(0);
                let head = stream::once(async move { Ok(headers(&name, size, mtime)) });
                let data = match verified(blobs.as_ref(), &path, &entry).await {
                    Ok(s) => s.map(|r| r.map_err(std::io::Error::other)).boxed(),
                    Err(e) => stream::once(async { Err(std::io::Error::other(e)) }).boxed(),
                };
                let pad = stream::once(async move { Ok(Bytes::from(vec![0; padding(size)])) });
                head.chain(data).chain(pad)
            }
        })
        .flatten()
        .chain(stream::once(async { Ok(Bytes::from(vec![0; 2 * BLOCK as usize])) }));
    let name = match dir.trim_end_matches('/').rsplit('/').next() {
        Some(d) if !d.is_empty() => format!("{top}-{d}.tar"),
        _ => format!("{top}.tar"),
    };
    let mut r = Body::from_stream(body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    if let Ok(d) = HeaderValue::from_str(&content_disposition("attachment", &name)) {
        h.insert(header::CONTENT_DISPOSITION, d);
    }
    Ok(r)
}
