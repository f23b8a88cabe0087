//! Cache keys (what an entry is called on disk) and the checks a fill must pass before publishing.
//!
//! The key → relative path mapping is W&B's own cache layout and is part of the on-disk format:
//! changing it orphans every existing entry, so it is pinned by a golden test.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::{Digest as _, Md5};
use sha2::Sha256;
use xxhash_rust::xxh3::Xxh3;

use super::CacheError;

/// Identity of one cached blob; shared by every artifact, version and mount that has the content.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum CacheKey {
    /// Raw MD5 of the content (W&B manifest digests of uploaded files).
    Md5([u8; 16]),
    /// Raw big-endian XXH3-128 of the content.
    Xxh128([u8; 16]),
    /// sha256(sha256(uri) || sha256(etag)) of a reference entry, as W&B computes it.
    Etag([u8; 32]),
}

impl CacheKey {
    /// Key of a W&B MD5 digest (base64 of the 16 raw bytes, e.g. `b1kCrCNwJL3QwXbLkwY9xA==`).
    pub fn from_md5_digest(digest: &str) -> Result<Self, CacheError> {
        decode_digest16("md5", digest).map(Self::Md5)
    }

    /// Key of an XXH128 digest (base64 of the 16 big-endian bytes).
    pub fn from_xxh128_digest(digest: &str) -> Result<Self, CacheError> {
        decode_digest16("xxh128", digest).map(Self::Xxh128)
    }

    /// Key of a reference entry: the object at `uri` as of `etag` (or version id).
    pub fn from_reference(uri: &str, etag: &str) -> Self {
        let mut outer = Sha256::new();
        outer.update(Sha256::digest(uri.as_bytes()));
        outer.update(Sha256::digest(etag.as_bytes()));
        Self::Etag(outer.finalize().into())
    }

    /// Path of the entry relative to the directory holding `obj/` (`<dir>/v1/` in artfs's own
    /// layout, `<dir>` in the W&B SDK's: see `layout.rs`).
    pub fn relative_path(&self) -> PathBuf {
        Path::new("obj").join(self.below_obj())
    }

    /// `<kind>/<2 hex>/<rest>`: the entry's path below `obj/`.
    pub(super) fn below_obj(&self) -> PathBuf {
        let hex = self.hex();
        let (shard, rest) = hex.split_at(2);
        [self.kind(), shard, rest].iter().collect()
    }

    /// The strongest check the key itself allows: its own digest, or only the size for references
    /// (an etag is not a content hash).
    pub fn default_verify(&self) -> Verify {
        match *self {
            Self::Md5(raw) => Verify::Md5(raw),
            Self::Xxh128(raw) => Verify::Xxh128(raw),
            Self::Etag(_) => Verify::SizeOnly,
        }
    }

    pub(super) fn kind(&self) -> &'static str {
        match self {
            Self::Md5(_) => "md5",
            Self::Xxh128(_) => "xxh128",
            Self::Etag(_) => "etag",
        }
    }

    pub(super) fn hex(&self) -> String {
        match self {
            Self::Md5(raw) | Self::Xxh128(raw) => hex::encode(raw),
            Self::Etag(raw) => hex::encode(raw),
        }
    }

    /// Byte of the shared fill-lock file that every process filling this key locks: 62 bits of
    /// the digest, so distinct keys practically never share one (and sharing would only make
    /// two fills wait for each other), and offset + 1 still fits `off_t`.
    pub(super) fn lock_offset(&self) -> i64 {
        let raw: &[u8] = match self {
            Self::Md5(raw) | Self::Xxh128(raw) => raw,
            Self::Etag(raw) => raw,
        };
        let mut first = [0u8; 8];
        first.copy_from_slice(&raw[..8]);
        // 62 bits: always non-negative and far from i64::MAX.
        (u64::from_be_bytes(first) >> 2) as i64
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Md5(raw) | Self::Xxh128(raw) => {
                write!(f, "{}:{}", self.kind(), BASE64.encode(raw))
            }
            Self::Etag(raw) => write!(f, "etag:{}", hex::encode(raw)),
        }
    }
}

fn decode_digest16(kind: &'static str, digest: &str) -> Result<[u8; 16], CacheError> {
    let raw = BASE64.decode(digest).map_err(|source| CacheError::DigestEncoding {
        kind,
        digest: digest.to_owned(),
        source,
    })?;
    let len = raw.len();
    raw.try_into().map_err(|_| CacheError::DigestLength { kind, digest: digest.to_owned(), len })
}

/// What a freshly fetched blob must match before it becomes visible to anyone.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verify {
    Md5([u8; 16]),
    Xxh128([u8; 16]),
    /// Only the expected size (if given) is checked.
    SizeOnly,
}

/// Running hash of the bytes written so far, with the digest it must end up matching.
pub(crate) enum DigestState {
    Md5 { expected: [u8; 16], hasher: Md5 },
    // Boxed: the XXH3 streaming state is ~600 bytes, far larger than the other variants.
    Xxh128 { expected: [u8; 16], hasher: Box<Xxh3> },
    SizeOnly,
}

impl DigestState {
    pub(crate) fn new(verify: &Verify) -> Self {
        match *verify {
            Verify::Md5(expected) => Self::Md5 { expected, hasher: Md5::new() },
            Verify::Xxh128(expected) => Self::Xxh128 { expected, hasher: Box::new(Xxh3::new()) },
            Verify::SizeOnly => Self::SizeOnly,
        }
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Md5 { hasher, .. } => hasher.update(bytes),
            Self::Xxh128 { hasher, .. } => hasher.update(bytes),
            Self::SizeOnly => {}
        }
    }

    /// On mismatch returns (expected, actual) as W&B-style base64.
    pub(crate) fn finish(self) -> Result<(), (String, String)> {
        let (expected, actual): ([u8; 16], [u8; 16]) = match self {
            Self::Md5 { expected, hasher } => (expected, hasher.finalize().into()),
            Self::Xxh128 { expected, hasher } => (expected, hasher.digest128().to_be_bytes()),
            Self::SizeOnly => return Ok(()),
        };
        if expected == actual {
            Ok(())
        } else {
            Err((BASE64.encode(expected), BASE64.encode(actual)))
        }
    }
}

/// Fills at least this large are hashed on a thread of their own, beside the writes.
const BACKGROUND_HASH_MIN: u64 = 8 << 20;
/// Pieces queued for the hashing thread (each at most one fill write, 256 KiB).
const HASH_QUEUE: usize = 64;

/// The running digest of a fill. Large fills hash on a thread of their own so that MD5
/// (~1.5 s/GiB, one core) runs beside the network reads and file writes instead of after
/// them, at the cost of one copy of each piece.
pub(super) enum Digester {
    Inline(DigestState),
    Background {
        pieces: std::sync::mpsc::SyncSender<Vec<u8>>,
        done: std::thread::JoinHandle<DigestState>,
    },
}

impl Digester {
    pub(super) fn new(verify: &Verify, size: Option<u64>) -> Digester {
        let state = DigestState::new(verify);
        if matches!(state, DigestState::SizeOnly) || size.is_none_or(|s| s < BACKGROUND_HASH_MIN) {
            return Digester::Inline(state);
        }
        let (pieces, queue) = std::sync::mpsc::sync_channel::<Vec<u8>>(HASH_QUEUE);
        let spawned = std::thread::Builder::new().name("artfs-hash".into()).spawn(move || {
            let mut state = state;
            for piece in queue {
                state.update(&piece);
            }
            state
        });
        match spawned {
            Ok(done) => Digester::Background { pieces, done },
            Err(e) => {
                tracing::debug!("no hashing thread ({e}); hashing inline");
                Digester::Inline(DigestState::new(verify))
            }
        }
    }

    pub(super) fn update(&mut self, bytes: &[u8]) {
        match self {
            Digester::Inline(state) => state.update(bytes),
            // The thread only ends once the sender is gone, so a send cannot fail.
            Digester::Background { pieces, .. } => drop(pieces.send(bytes.to_vec())),
        }
    }

    /// The digest of everything passed to `update`.
    pub(super) fn finish(self) -> DigestState {
        match self {
            Digester::Inline(state) => state,
            Digester::Background { pieces, done } => {
                drop(pieces);
                done.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
            }
        }
    }
}
