//! Per-chunk checksums of a stored blob, written beside it at log time, so a reader that
//! fetches only part of a large blob can verify every chunk before serving it.
//!
//! New sidecars hold BLAKE3 sums (`"blake3": [...]`); sidecars written before hold SHA-256
//! (`"sha256": [...]`) and are read as before. BLAKE3 because the check runs on every byte of a
//! cold read, and it is as strong a check: on the benchmark VM (AVX-512, SHA-NI), one thread
//! hashing 256 MiB in 4 MiB chunks, BLAKE3 ran at 5.4 GB/s, the `sha2` crate's SHA-256 at
//! 1.25 GB/s (`openssl speed sha256`: 1.9 GB/s). What it saved in a cold read is in
//! `docs/BENCHMARKS.md` (`scripts/bench/speed.sh`, daemon CPU).
//!
//! A blob of `size` bytes is cut into chunks of `chunk_bytes` (the last one shorter); chunk `i`
//! covers `[i * chunk_bytes, min((i + 1) * chunk_bytes, size))`. The sidecar is JSON at
//! `chunks/md5/<2 hex>/<30 hex>.json`, written before the blob itself is published, so every blob
//! artfs uploads with more than one chunk has its sidecar. Blobs without one (older or foreign)
//! can only be verified whole, against the manifest digest.
//!
//! A sidecar is only trusted when the manifest entry names it: `log` records the SHA-256 of the
//! sidecar's bytes in the entry's `extra` ([`BINDING_KEY`]). Anyone who can rewrite a blob can
//! rewrite its sidecar too, so an unnamed sidecar proves nothing about the logged bytes; one
//! whose digest differs from the entry's is refused, and the file is verified whole instead.
//! W&B ignores `extra` (it is hashed neither into entry nor artifact digests), so the binding
//! changes no digest and W&B clients read the manifest as before.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::manifest::Entry;

/// Chunk size of new sidecars: the unit a partial read fetches and verifies.
pub const CHUNK_BYTES: u64 = 4 << 20;

/// Key in a manifest entry's `extra` holding the hex SHA-256 of the entry's sidecar bytes.
pub const BINDING_KEY: &str = "artfsChunksSha256";

/// The hash of a sidecar's chunk sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkAlgo {
    /// Sidecars written before BLAKE3; still read and verified.
    Sha256,
    Blake3,
}

impl ChunkAlgo {
    /// What new sidecars use.
    pub const NEW: ChunkAlgo = ChunkAlgo::Blake3;
}

/// A running hash of one chunk, in the sidecar's algorithm.
#[derive(Debug, Clone)]
pub enum RunningSum {
    Sha256(Sha256),
    Blake3(Box<blake3::Hasher>),
}

impl RunningSum {
    pub fn new(algo: ChunkAlgo) -> RunningSum {
        match algo {
            ChunkAlgo::Sha256 => RunningSum::Sha256(Sha256::new()),
            ChunkAlgo::Blake3 => RunningSum::Blake3(Box::default()),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            RunningSum::Sha256(h) => h.update(bytes),
            RunningSum::Blake3(h) => {
                h.update(bytes);
            }
        }
    }

    pub fn finalize(self) -> [u8; 32] {
        match self {
            RunningSum::Sha256(h) => h.finalize().into(),
            RunningSum::Blake3(h) => *h.finalize().as_bytes(),
        }
    }
}

/// The sums of a blob's chunks, in order (hex), with what cuts and hashes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredSums", into = "StoredSums")]
pub struct ChunkSums {
    pub chunk_bytes: u64,
    pub size: u64,
    pub algo: ChunkAlgo,
    /// Hex sum of each chunk, in order.
    pub sums: Vec<String>,
}

/// The sidecar's JSON: exactly one of the sum lists, named by its algorithm.
#[derive(Serialize, Deserialize)]
struct StoredSums {
    chunk_bytes: u64,
    size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blake3: Option<Vec<String>>,
}

impl TryFrom<StoredSums> for ChunkSums {
    type Error = &'static str;

    fn try_from(s: StoredSums) -> Result<ChunkSums, &'static str> {
        let (algo, sums) = match (s.sha256, s.blake3) {
            (Some(sums), None) => (ChunkAlgo::Sha256, sums),
            (None, Some(sums)) => (ChunkAlgo::Blake3, sums),
            _ => return Err("a chunk sidecar holds exactly one of `sha256` and `blake3`"),
        };
        Ok(ChunkSums { chunk_bytes: s.chunk_bytes, size: s.size, algo, sums })
    }
}

impl From<ChunkSums> for StoredSums {
    fn from(c: ChunkSums) -> StoredSums {
        let (sha256, blake3) = match c.algo {
            ChunkAlgo::Sha256 => (Some(c.sums), None),
            ChunkAlgo::Blake3 => (None, Some(c.sums)),
        };
        StoredSums { chunk_bytes: c.chunk_bytes, size: c.size, sha256, blake3 }
    }
}

impl ChunkSums {
    /// The byte range of chunk `index`.
    pub fn range(&self, index: usize) -> std::ops::Range<u64> {
        let start = index as u64 * self.chunk_bytes;
        start..(start + self.chunk_bytes).min(self.size)
    }

    /// The sums of all of `bytes` at once (what [`ChunkHasher`] gives fed piece by piece).
    pub fn of(bytes: &[u8], chunk_bytes: u64, algo: ChunkAlgo) -> ChunkSums {
        let mut hasher = ChunkHasher::with_algo(chunk_bytes, algo);
        hasher.update(bytes);
        hasher.finish()
    }

    /// How many chunks.
    pub fn count(&self) -> usize {
        self.sums.len()
    }

    /// Whether `bytes` are chunk `index`.
    pub fn verify(&self, index: usize, bytes: &[u8]) -> bool {
        let mut sum = RunningSum::new(self.algo);
        sum.update(bytes);
        self.matches(index, bytes.len() as u64, &sum.finalize())
    }

    /// Whether `len` bytes with sum `digest` (in [`Self::algo`]) are chunk `index`: the check
    /// of a reader that hashed the bytes as they arrived.
    pub fn matches(&self, index: usize, len: u64, digest: &[u8]) -> bool {
        let want = self.range(index);
        self.sums
            .get(index)
            .is_some_and(|h| len == want.end - want.start && *h == hex::encode(digest))
    }

    /// The sidecar's bytes, as stored beside the blob.
    pub fn to_json(&self) -> Vec<u8> {
        // Plain data (numbers and strings): serialising it cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Whether the blob gets a sidecar at all: more than one chunk.
    pub fn is_stored(&self) -> bool {
        self.sums.len() > 1
    }

    /// Whether the sidecar is self-consistent (a corrupt one must not be trusted).
    pub fn is_consistent(&self) -> bool {
        self.chunk_bytes > 0 && self.sums.len() as u64 == self.size.div_ceil(self.chunk_bytes)
    }
}

/// Hex SHA-256 of sidecar bytes: what [`BINDING_KEY`] records.
pub fn binding_of(sidecar: &[u8]) -> String {
    hex::encode(Sha256::digest(sidecar))
}

/// `entry` with the binding of `sums` recorded, if the blob gets a sidecar (what `log` calls for
/// every stored file it hashed).
pub fn bound(mut entry: Entry, sums: Option<&ChunkSums>) -> Entry {
    if let Some(sums) = sums.filter(|s| s.is_stored()) {
        entry.extra.insert(BINDING_KEY.to_owned(), binding_of(&sums.to_json()).into());
    }
    entry
}

/// The sidecar digest an entry was logged with, if any.
pub fn binding(entry: &Entry) -> Option<&str> {
    entry.extra.get(BINDING_KEY).and_then(serde_json::Value::as_str)
}

/// The sidecar key of a blob key (`blobs/md5/ab/cdef…` → `chunks/md5/ab/cdef….json`).
pub fn sidecar_key(blob_key: &str) -> String {
    format!("chunks/{}.json", blob_key.strip_prefix("blobs/").unwrap_or(blob_key))
}

/// Hashes a byte stream chunk by chunk, whatever the sizes of the pieces fed to it.
#[derive(Debug, Clone)]
pub struct ChunkHasher {
    chunk_bytes: u64,
    algo: ChunkAlgo,
    current: RunningSum,
    in_current: u64,
    size: u64,
    done: Vec<String>,
}

impl ChunkHasher {
    /// A hasher for a new sidecar ([`ChunkAlgo::NEW`]).
    pub fn new(chunk_bytes: u64) -> Self {
        Self::with_algo(chunk_bytes, ChunkAlgo::NEW)
    }

    pub fn with_algo(chunk_bytes: u64, algo: ChunkAlgo) -> Self {
        ChunkHasher {
            chunk_bytes,
            algo,
            current: RunningSum::new(algo),
            in_current: 0,
            size: 0,
            done: Vec::new(),
        }
    }

    pub fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = (self.chunk_bytes - self.in_current) as usize;
            let take = room.min(bytes.len());
            self.current.update(&bytes[..take]);
            self.in_current += take as u64;
            self.size += take as u64;
            bytes = &bytes[take..];
            if self.in_current == self.chunk_bytes {
                let h = std::mem::replace(&mut self.current, RunningSum::new(self.algo));
                self.done.push(hex::encode(h.finalize()));
                self.in_current = 0;
            }
        }
    }

    pub fn finish(mut self) -> ChunkSums {
        if self.in_current > 0 {
            self.done.push(hex::encode(self.current.finalize()));
        }
        ChunkSums {
            chunk_bytes: self.chunk_bytes,
            size: self.size,
            algo: self.algo,
            sums: self.done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_do_not_depend_on_how_bytes_are_fed() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let whole = ChunkSums::of(&data, 4096, ChunkAlgo::NEW);
        let mut pieces = ChunkHasher::new(4096);
        for piece in data.chunks(333) {
            pieces.update(piece);
        }
        assert_eq!(pieces.finish(), whole);
        assert_eq!(whole.count(), 3);
        assert!(whole.is_consistent());
        assert_eq!(whole.range(2), 8192..10_000);
        assert!(whole.verify(2, &data[8192..]));
        assert!(!whole.verify(2, &data[8191..9999]));
        let mut bad = data[4096..8192].to_vec();
        bad[5] ^= 1;
        assert!(!whole.verify(1, &bad));
        assert!(!whole.verify(3, &[]));
    }

    #[test]
    fn new_sidecars_are_blake3_and_older_sha256_ones_still_verify() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 13 % 251) as u8).collect();
        let mut new = ChunkHasher::new(4096);
        new.update(&data);
        let new = new.finish();
        assert_eq!(new.algo, ChunkAlgo::Blake3);
        let json = String::from_utf8(new.to_json()).unwrap();
        assert!(json.starts_with(r#"{"chunk_bytes":4096,"size":10000,"blake3":[""#), "{json}");
        assert_eq!(new.sums[0], blake3::hash(&data[..4096]).to_hex().as_str());
        assert_eq!(serde_json::from_str::<ChunkSums>(&json).unwrap(), new);
        // A sidecar as artfs wrote them before BLAKE3, byte for byte.
        let old: Vec<String> = data.chunks(4096).map(|c| hex::encode(Sha256::digest(c))).collect();
        let old = serde_json::to_string(&old).unwrap();
        let old_json = format!(r#"{{"chunk_bytes":4096,"size":10000,"sha256":{old}}}"#);
        let old = serde_json::from_str::<ChunkSums>(&old_json).unwrap();
        assert_eq!(old.algo, ChunkAlgo::Sha256);
        assert!(old.is_consistent());
        assert_eq!(old.to_json(), old_json.as_bytes());
        for sums in [&new, &old] {
            for i in 0..sums.count() {
                let r = sums.range(i);
                assert!(sums.verify(i, &data[r.start as usize..r.end as usize]), "{i}");
            }
            assert!(!sums.verify(0, &data[1..4097]));
        }
        // One list, not two or none: which algorithm checks the chunks must be unambiguous.
        let both = r#"{"chunk_bytes":1,"size":1,"sha256":["a"],"blake3":["b"]}"#;
        assert!(serde_json::from_str::<ChunkSums>(both).is_err());
        assert!(serde_json::from_str::<ChunkSums>(r#"{"chunk_bytes":1,"size":1}"#).is_err());
    }

    #[test]
    fn the_binding_names_the_stored_sidecar_and_changes_no_wandb_digest() {
        let data = vec![7u8; 10_000];
        let sums = ChunkSums::of(&data, 4096, ChunkAlgo::NEW);
        let plain = Entry::stored(crate::manifest::md5_base64(&data), data.len() as u64);
        let entry = bound(plain.clone(), Some(&sums));
        assert_eq!(binding(&entry), Some(binding_of(&sums.to_json()).as_str()));
        assert_eq!(entry.digest, plain.digest);
        // W&B's digests ignore `extra`: the artifact digest is the same with or without it.
        let manifest = |e: &Entry| crate::manifest::Manifest {
            contents: [("big.bin".to_owned(), e.clone())].into(),
            ..Default::default()
        };
        assert_eq!(manifest(&entry).digest(), manifest(&plain).digest());
        let json = String::from_utf8(manifest(&entry).to_json()).unwrap();
        assert!(json.contains(r#""skip_cache":false,"extra":{"artfsChunksSha256":""#), "{json}");
        // One chunk: no sidecar, no binding.
        let small = ChunkSums::of(&data, 1 << 20, ChunkAlgo::NEW);
        assert_eq!(binding(&bound(plain, Some(&small))), None);
    }

    #[test]
    fn sidecar_sits_beside_the_blob() {
        assert_eq!(sidecar_key("blobs/md5/6f/5902ac"), "chunks/md5/6f/5902ac.json");
    }
}
