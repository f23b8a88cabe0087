//! W&B digests: entry digests (base64 MD5 or XXH128 of the bytes) and the artifact digest.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::{Digest as _, Md5};
use xxhash_rust::xxh3::Xxh3;

/// Prefix of the text W&B hashes into an artifact digest.
const ARTIFACT_DIGEST_HEADER: &[u8] = b"wandb-artifact-manifest-v1\n";
/// Read buffer for hashing: large enough that syscalls do not dominate, small enough for L2.
const HASH_BUF_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlg {
    Md5,
    Xxh128,
}

/// What a fetched entry's bytes must hash to. `None` for entries that carry no content hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentCheck {
    Md5([u8; 16]),
    Xxh128([u8; 16]),
    None,
}

impl ContentCheck {
    /// Decodes a W&B base64 entry digest; anything else (an etag, a URI) cannot be checked.
    pub fn from_digest(alg: DigestAlg, digest: &str) -> ContentCheck {
        let Ok(raw) = BASE64.decode(digest) else {
            return ContentCheck::None;
        };
        let Ok(raw) = <[u8; 16]>::try_from(raw.as_slice()) else {
            return ContentCheck::None;
        };
        match alg {
            DigestAlg::Md5 => ContentCheck::Md5(raw),
            DigestAlg::Xxh128 => ContentCheck::Xxh128(raw),
        }
    }

    /// Whether this check names the empty content (the only content a size of 0 can have).
    pub fn is_empty_content(&self) -> bool {
        match self {
            ContentCheck::Md5(raw) => *raw == EntryHasher::new(DigestAlg::Md5).finish_raw(),
            ContentCheck::Xxh128(raw) => *raw == EntryHasher::new(DigestAlg::Xxh128).finish_raw(),
            ContentCheck::None => false,
        }
    }

    pub fn alg(&self) -> Option<DigestAlg> {
        match self {
            ContentCheck::Md5(_) => Some(DigestAlg::Md5),
            ContentCheck::Xxh128(_) => Some(DigestAlg::Xxh128),
            ContentCheck::None => None,
        }
    }
}

/// Streaming entry hasher.
#[derive(Clone)]
pub enum EntryHasher {
    Md5(Md5),
    Xxh128(Box<Xxh3>),
}

impl std::fmt::Debug for EntryHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EntryHasher::Md5(_) => "EntryHasher::Md5",
            EntryHasher::Xxh128(_) => "EntryHasher::Xxh128",
        })
    }
}

impl EntryHasher {
    pub fn new(alg: DigestAlg) -> Self {
        match alg {
            DigestAlg::Md5 => EntryHasher::Md5(Md5::new()),
            DigestAlg::Xxh128 => EntryHasher::Xxh128(Box::new(Xxh3::new())),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            EntryHasher::Md5(h) => h.update(bytes),
            EntryHasher::Xxh128(h) => h.update(bytes),
        }
    }

    pub fn finish_raw(self) -> [u8; 16] {
        match self {
            EntryHasher::Md5(h) => h.finalize().into(),
            // W&B uses the canonical (big-endian) byte order of the 128-bit value.
            EntryHasher::Xxh128(h) => h.digest128().to_be_bytes(),
        }
    }

    /// W&B's entry digest: base64 (standard alphabet, padded) of the raw hash.
    pub fn finish(self) -> String {
        BASE64.encode(self.finish_raw())
    }
}

/// base64 MD5 of a byte string.
pub fn md5_base64(bytes: &[u8]) -> String {
    let mut h = EntryHasher::new(DigestAlg::Md5);
    h.update(bytes);
    h.finish()
}

/// Hashes a file by streaming it; `progress` receives byte counts as they are read.
/// Returns (W&B digest, size).
pub fn hash_file(
    path: &Path,
    alg: DigestAlg,
    mut progress: impl FnMut(u64),
) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = EntryHasher::new(alg);
    let mut buf = vec![0u8; HASH_BUF_BYTES];
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
        progress(n as u64);
    }
    Ok((hasher.finish(), total))
}

/// W&B's artifact digest: the hex hash of the header and one `path:digest\n` line per entry, in
/// UTF-8 byte order of the path. Sizes, references and `extra` are not part of it.
pub fn artifact_digest<'a>(
    alg: DigestAlg,
    entries: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> String {
    let mut sorted: Vec<_> = entries.into_iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut text = Vec::with_capacity(ARTIFACT_DIGEST_HEADER.len() + sorted.len() * 48);
    text.extend_from_slice(ARTIFACT_DIGEST_HEADER);
    for (path, digest) in sorted {
        text.extend_from_slice(path.as_bytes());
        text.push(b':');
        text.extend_from_slice(digest.as_bytes());
        text.push(b'\n');
    }
    let mut h = EntryHasher::new(alg);
    h.update(&text);
    hex::encode(h.finish_raw())
}
