//! The whole-file path: an entry fetched completely into the cache and verified before its
//! first byte is served. Stored blobs come from the version's [`BlobSource`], references from
//! their URI (pinned to the recorded etag or version); both within the stall bound.

use std::future::Future;
use std::io::Write;
use std::sync::Arc;

use crate::cache::{CacheError, CacheKey, CachedBlob, Verify};
use crate::manifest::{ContentCheck, Entry};
use crate::refs::{self, RefError};
use crate::source::BlobSource;

use super::cancel::StopSignal;
use super::{BodyError, FetchError, Fetcher, StallBound, ranged};

/// Tries of a fill that finds the cache's disk full, each after making room.
const FULL_DISK_TRIES: u32 = 4;

impl Fetcher {
    /// Whether the entry is (probably) in the cache already, i.e. [`Fetcher::cached`] will not
    /// download. A hint only: the entry may be evicted right after.
    pub fn is_cached(&self, entry: &Entry) -> bool {
        let key = match Self::stored_key(entry) {
            Some((key, _)) if !entry.is_reference() => Some(key),
            _ => self.reference_key(entry),
        };
        key.is_some_and(|k| self.cache.entry_path(&k).exists())
    }

    /// The stored entry's complete, verified copy if the cache holds one, opened (and so kept
    /// from eviction); `None` for references (see [`Fetcher::open`]) and for anything not
    /// complete or not yet verified, which [`Fetcher::open`] then fetches or checks.
    pub fn find_cached(&self, entry: &Entry) -> Option<CachedBlob> {
        if entry.is_reference() {
            return None;
        }
        let (key, _) = Self::stored_key(entry)?;
        self.cache.find(&key, entry.size)
    }

    /// Cache key of a reference entry. A pinned reference is keyed by (URI, recorded etag or
    /// version), like W&B's cache. An unpinned one (logged without checksum) has no identity
    /// beyond its URI, so it is keyed per process: each `artfs get` and each mount reads it fresh
    /// once, rather than serving what some earlier process saw. Its recorded size, if any, is
    /// part of the key: entries of one URI with different sizes must not share bytes (each is
    /// checked against its own size).
    pub(super) fn reference_key(&self, entry: &Entry) -> Option<CacheKey> {
        let (uri, tag) = refs::cache_identity(entry)?;
        if refs::is_pinned(entry) {
            return Some(CacheKey::from_reference(&uri, &tag));
        }
        let tag = match entry.size {
            Some(size) => format!("unpinned:{}:{size}", self.session),
            None => format!("unpinned:{}", self.session),
        };
        Some(CacheKey::from_reference(&uri, &tag))
    }

    /// The cache key and check of a stored entry; `None` for references.
    pub(super) fn stored_key(entry: &Entry) -> Option<(CacheKey, Verify)> {
        match entry.content_check() {
            ContentCheck::Md5(raw) => Some((CacheKey::Md5(raw), Verify::Md5(raw))),
            ContentCheck::Xxh128(raw) => Some((CacheKey::Xxh128(raw), Verify::Xxh128(raw))),
            ContentCheck::None => None,
        }
    }

    /// The entry's bytes in the cache, fetched and verified first if needed. `artifact` and
    /// `path` only name the entry in errors. A fill that runs out of disk space makes room in
    /// the cache (see [`BlobCache::make_room`]) and is tried again, up to [`FULL_DISK_TRIES`].
    pub fn cached(
        &self,
        blobs: &Arc<dyn BlobSource>,
        artifact: &str,
        path: &str,
        entry: &Entry,
    ) -> Result<CachedBlob, FetchError> {
        self.cached_for(blobs, artifact, path, entry, None)
    }

    /// [`Fetcher::cached`] for the reader `reader` (a pid): the download stops once neither it
    /// nor any other reader waits for it (see `cancel`).
    pub(super) fn cached_for(
        &self,
        blobs: &Arc<dyn BlobSource>,
        artifact: &str,
        path: &str,
        entry: &Entry,
        reader: Option<u32>,
    ) -> Result<CachedBlob, FetchError> {
        // Fills running out of room together (a reader and its readahead) each make room, and
        // one may take what another freed: a few tries, not one.
        let mut tries = FULL_DISK_TRIES;
        loop {
            match self.cached_once(blobs, artifact, path, entry, reader) {
                Err(FetchError::Cache { source: CacheError::DiskFull { .. }, .. })
                    if tries > 1 && self.cache.make_room() =>
                {
                    tries -= 1;
                }
                other => return other,
            }
        }
    }

    pub(super) fn cached_once(
        &self,
        blobs: &Arc<dyn BlobSource>,
        artifact: &str,
        path: &str,
        entry: &Entry,
        reader: Option<u32>,
    ) -> Result<CachedBlob, FetchError> {
        let cache_err = |source| FetchError::Cache {
            artifact: artifact.to_owned(),
            path: path.to_owned(),
            source,
        };
        let handle = &self.handle;
        let counters = &self.ranged.counters;
        if entry.is_reference() {
            let Some(key) = self.reference_key(entry) else {
                return Err(FetchError::NoBlob {
                    artifact: artifact.to_owned(),
                    path: path.to_owned(),
                    digest: entry.digest.clone(),
                });
            };
            let clouds = &self.clouds;
            // References are not the registry: a silent one says nothing of the registry.
            let bound = StallBound::new(self.stall_timeout);
            // Before the cache too: a copy fetched when some reader allowed it is no reason to
            // serve it to a read this reader does not allow.
            handle
                .block_on(bound.answer(refs::check_allowed(clouds, entry)))
                .unwrap_or(Ok(()))
                .map_err(|source| FetchError::Reference {
                    artifact: artifact.to_owned(),
                    path: path.to_owned(),
                    source,
                })?;
            // The source is pinned by etag/version while it is read (unless logged without
            // checksum); the cache checks the size whenever one is recorded.
            let size = entry.size;
            // A reference of unknown size can still be no larger than the cache.
            let limit = size.unwrap_or_else(|| self.cache.max_bytes());
            let waiting = reader.map(|pid| self.flights.wait(key, pid));
            let stop = self.flights.stop_signal(waiting.as_ref());
            return self
                .cache
                .get_or_fill(&key, &Verify::SizeOnly, size, |out: &mut dyn Write| {
                    let what = refs::redact(entry.reference.as_deref().unwrap_or(""));
                    let body = refs::fetch(clouds, entry, None);
                    let copy = copy_body(&bound, limit, &what, body, out, counters);
                    handle.block_on(until_stopped(stop, copy))
                })
                .map_err(|source| match source {
                    // Show the reference's own message (URI, expected and found etag).
                    CacheError::Fetch { source, .. } => match source.downcast::<RefError>() {
                        Ok(r) => FetchError::Reference {
                            artifact: artifact.to_owned(),
                            path: path.to_owned(),
                            source: *r,
                        },
                        Err(other) => cache_err(CacheError::Fetch { key, source: other }),
                    },
                    other => cache_err(other),
                });
        }
        let Some((key, verify)) = Self::stored_key(entry) else {
            return Err(FetchError::NoBlob {
                artifact: artifact.to_owned(),
                path: path.to_owned(),
                digest: entry.digest.clone(),
            });
        };
        // An XXH128 entry's blob is found by its recorded MD5 and verified by its XXH128.
        let Some(blob) = blobs.locate(path, entry) else {
            return Err(FetchError::NoBlob {
                artifact: artifact.to_owned(),
                path: path.to_owned(),
                digest: entry.digest.clone(),
            });
        };
        let bound = self.registry_bound();
        let limit = entry.size.unwrap_or_else(|| self.cache.max_bytes());
        let waiting = reader.map(|pid| self.flights.wait(key, pid));
        let stop = self.flights.stop_signal(waiting.as_ref());
        self.cache
            .get_or_fill(&key, &verify, entry.size, |out: &mut dyn Write| {
                if let Some(copied) = blobs.copy_local(path, entry, out, limit) {
                    counters.add_fetched(copied?);
                    return Ok(());
                }
                let body = blobs.stream(path, entry);
                let copy = copy_body(&bound, limit, &blob, body, out, counters);
                handle.block_on(until_stopped(stop, copy))
            })
            .map_err(cache_err)
    }
}

/// Runs a fill's `copy` until it ends or `stop` fires, whichever comes first; a stopped copy
/// fails like any other, so its fill leaves nothing behind.
async fn until_stopped(
    stop: StopSignal,
    copy: impl Future<Output = Result<(), crate::cache::FetchError>>,
) -> Result<(), crate::cache::FetchError> {
    tokio::select! {
        done = copy => done,
        why = stop.stopped() => Err(why.into()),
    }
}

/// Writes a whole body to `out` (a cache fill), each piece within `bound` and no more than `limit`
/// bytes in all (the entry's recorded size); `what` names the source in a stall's error. A request or piece error ends the copy with that error, boxed as
/// it is (callers downcast a reference's own error).
async fn copy_body<S, E>(
    bound: &StallBound,
    limit: u64,
    what: &str,
    request: impl Future<Output = Result<S, E>>,
    out: &mut dyn Write,
    counters: &ranged::Counters,
) -> Result<(), crate::cache::FetchError>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    let stalled = |err: BodyError| -> crate::cache::FetchError { format!("{what}: {err}").into() };
    let mut body = bound.answer(request).await.map_err(|e| stalled(e.into()))??;
    let mut bounded = bound.body(limit);
    while let Some(piece) = bounded.next(&mut body).await.map_err(stalled)? {
        let piece = piece?;
        counters.add_fetched(piece.len() as u64);
        out.write_all(&piece)?;
    }
    Ok(())
}
