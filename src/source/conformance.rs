//! One conformance suite for every source behind the seam, as object_store runs one against
//! every backend: the same checks of [`Catalog`] and [`BlobSource`] against the artfs registry
//! (a local directory) and against a W&B server (`artfs serve` on 127.0.0.1, in this process,
//! over that same directory), so both sources must give the same answers for the same content.
//!
//! The fixture: `acme/bikes/ds` with v0 (alias `best`) and v1 (`latest`), and `acme/bikes/other`.
//! v1 has a file large enough for chunk checksums (stored by the registry with a sidecar, which
//! a W&B server does not keep) and one file that is only ever read through the cache, so it can
//! be tampered with last.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::TryStreamExt;

use super::registry::RegistrySource;
use super::wandb::{Client, WandbSource, auth::ApiKey};
use super::{BlobSource, Catalog, CatalogExt as _, SourceError};
use crate::cache::{BlobCache, CacheError};
use crate::fetch::{FetchError, Fetcher};
use crate::http::NetConfig;
use crate::manifest::{Entry, md5_base64};
use crate::names::{CollectionPath, Selector};
use crate::registry::testing::TempRegistry;
use crate::store::chunks::{self, ChunkSums};

/// Chunk size of the fixture's sidecar: small, so the chunked file stays small.
const CHUNK_BYTES: u64 = 4096;

/// A file only read through the cache, tampered with at the end.
const TAMPERED: &str = "tampered.bin";

fn collection(name: &str) -> CollectionPath {
    CollectionPath::new("acme", "bikes", name).unwrap()
}

fn bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

type Files = BTreeMap<String, Vec<u8>>;

struct Fixture {
    reg: TempRegistry,
    v0: Files,
    v1: Files,
}

impl std::ops::Deref for Fixture {
    type Target = TempRegistry;
    fn deref(&self) -> &TempRegistry {
        &self.reg
    }
}

impl Fixture {
    fn new() -> Fixture {
        let v0: Files = [
            ("a.txt".to_owned(), b"first\n".to_vec()),
            ("d/b.bin".to_owned(), bytes(1, 5000)),
            ("d/e/empty".to_owned(), Vec::new()),
        ]
        .into();
        let v1: Files = [
            ("a.txt".to_owned(), b"second\n".to_vec()),
            ("chunked.bin".to_owned(), bytes(2, 3 * CHUNK_BYTES as usize + 100)),
            (TAMPERED.to_owned(), bytes(3, 2000)),
        ]
        .into();
        let f = Fixture { reg: TempRegistry::default(), v0, v1 };
        f.log("ds", &f.v0, &["best"], false);
        f.log("ds", &f.v1, &[], true);
        f.log("other", &[("x".to_owned(), b"x".to_vec())].into(), &[], false);
        f
    }

    fn log(&self, name: &str, files: &Files, aliases: &[&str], chunked: bool) {
        let files: Vec<(&str, &[u8])> =
            files.iter().map(|(p, d)| (p.as_str(), d.as_slice())).collect();
        self.reg.log(&collection(name), &files, aliases, chunked.then_some(CHUNK_BYTES));
    }

    /// The registry as a source.
    fn registry_source(&self) -> Arc<dyn Catalog> {
        Arc::new(RegistrySource::new(self.registry.clone()))
    }

    /// `artfs serve` over the registry on 127.0.0.1, and a W&B source reading it; the server
    /// stops when the returned sender is dropped.
    fn wandb_source(&self) -> (Arc<dyn Catalog>, tokio::sync::oneshot::Sender<()>) {
        let (key, _) = self
            .runtime
            .block_on(self.registry.create_key("ana", &["acme".to_owned()], true))
            .unwrap();
        let listener = self.runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let opts = crate::serve::ServeOptions::default();
        let registry = self.registry.clone();
        self.runtime.spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            crate::serve::serve(opts, registry, listener, shutdown).await.unwrap();
        });
        let base = WandbSource::base_url(&format!("http://{addr}")).unwrap();
        let client = Client::new(base, Some(ApiKey::new(key)), NetConfig::default()).unwrap();
        (Arc::new(WandbSource::new(client)), stop)
    }
}

/// Everything but tampering, against one source. `chunk_sums`: whether the source keeps them.
async fn check_catalog(f: &Fixture, src: &dyn Catalog, chunk_sums: bool) {
    let ds = collection("ds");
    let label = src.url().to_owned();

    // Listings.
    assert!(src.entities().await.unwrap().contains(&"acme".to_owned()), "{label}: entities");
    assert_eq!(src.projects("acme").await.unwrap(), ["bikes"], "{label}: projects");
    let mut names = src.collections("acme", "bikes").await.unwrap();
    names.sort();
    assert_eq!(names, ["ds", "other"], "{label}: collections");
    let view = src.collection(&ds).await.unwrap();
    assert_eq!(view.artifact_type.as_deref(), Some("dataset"), "{label}");
    assert_eq!(view.versions.keys().copied().collect::<Vec<_>>(), [0, 1], "{label}: versions");
    let aliases: Vec<(&str, u32)> = view.aliases.iter().map(|(a, v)| (a.as_str(), *v)).collect();
    assert_eq!(aliases, [("best", 0), ("latest", 1)], "{label}: aliases");
    assert_eq!(view.aliases_of(1), ["latest"], "{label}");
    assert_eq!(view.versions[&1].file_count, 3, "{label}: file count");
    let size: usize = f.v1.values().map(Vec::len).sum();
    assert_eq!(view.versions[&1].size, size as u64, "{label}: size");
    let summaries = src.summaries("acme", "bikes").await.unwrap();
    let ds_summary = summaries.iter().find(|s| s.collection == ds).unwrap();
    assert_eq!((ds_summary.versions, ds_summary.latest.as_ref().map(|v| v.version)), (2, Some(1)));

    // Names: by alias and by version, to the same version.
    let best = src.resolve(&ds, &Selector::Alias("best".into())).await.unwrap();
    assert_eq!((best.record.version, best.aliases.as_slice()), (0, &["best".to_owned()][..]));
    assert_eq!(best.artifact_type, "dataset", "{label}");
    let v1 = src.resolve(&ds, &Selector::Version(1)).await.unwrap();
    let latest = src.resolve(&ds, &Selector::Alias("latest".into())).await.unwrap();
    assert_eq!(v1.record, latest.record, "{label}: ds:v1 and ds:latest differ");
    assert_eq!(v1.record, view.versions[&1], "{label}: resolve and listing disagree");
    assert_eq!(v1.label(), "acme/bikes/ds:v1");

    // Missing names: a not-found error that says so, never something else.
    let missing = [
        (collection("nope"), Selector::Alias("latest".into())),
        (ds.clone(), Selector::Alias("nope".into())),
        (ds.clone(), Selector::Version(7)),
    ];
    for (c, selector) in &missing {
        match src.resolve(c, selector).await {
            Err(e) => assert!(e.is_not_found(), "{label}: {c}:{selector:?}: not a not-found: {e}"),
            Ok(v) => panic!("{label}: {c}:{selector:?} resolved to {}", v.label()),
        }
    }
    assert!(!src.collection(&collection("nope")).await.unwrap().exists(), "{label}");
    let err = src.existing_collection(&collection("nope")).await.unwrap_err();
    assert!(err.is_not_found() && err.to_string().contains("ds"), "{label}: {err}");

    // Manifests: every entry, digest and size as logged.
    for (version, files) in [(&best, &f.v0), (&v1, &f.v1)] {
        let manifest = src.manifest(version).await.unwrap();
        let got: BTreeMap<&str, (&str, Option<u64>)> = manifest
            .contents
            .iter()
            .map(|(p, e)| (p.as_str(), (e.digest.as_str(), e.size)))
            .collect();
        let digests: Vec<String> = files.values().map(|d| md5_base64(d)).collect();
        let want: BTreeMap<&str, (&str, Option<u64>)> = files
            .iter()
            .zip(&digests)
            .map(|((p, d), md5)| (p.as_str(), (md5.as_str(), Some(d.len() as u64))))
            .collect();
        assert_eq!(got, want, "{label}: manifest of {}", version.label());
    }

    // Bytes: whole and by range, exact; chunk sums where the source keeps them.
    let manifest = src.manifest(&v1).await.unwrap();
    let blobs = src.blobs(&v1.collection, &v1.record);
    for (path, data) in f.v1.iter().filter(|(p, _)| *p != TAMPERED) {
        let entry = &manifest.contents[path];
        assert!(blobs.locate(path, entry).is_some(), "{label}: {path} cannot be located");
        let chunks: Vec<bytes::Bytes> =
            blobs.stream(path, entry).await.unwrap().try_collect().await.unwrap();
        let whole = chunks.concat();
        assert!(whole == *data, "{label}: {path}: whole read differs");
        let len = data.len() as u64;
        // (Empty ranges are never asked for.)
        for range in [0..1, 3..len / 2 + 4, len - 7..len, 0..len] {
            let got = blobs.range(path, entry, range.clone()).await.unwrap();
            let want = &data[range.start as usize..range.end as usize];
            assert!(got == want, "{label}: {path}: range {range:?} differs");
        }
        check_chunk_sums(&label, &*blobs, path, entry, data, chunk_sums).await;
    }
    // The v0 entries by a blob source of v0.
    let v0_manifest = src.manifest(&best).await.unwrap();
    let v0_blobs = src.blobs(&best.collection, &best.record);
    let entry = &v0_manifest.contents["d/b.bin"];
    let got = v0_blobs.range("d/b.bin", entry, 4990..5000).await.unwrap();
    assert!(got == f.v0["d/b.bin"][4990..], "{label}: v0 range differs");
}

async fn check_chunk_sums(
    label: &str,
    blobs: &dyn BlobSource,
    path: &str,
    entry: &Entry,
    data: &[u8],
    keeps_them: bool,
) {
    let sidecar = blobs.chunk_sums(path, entry).await.unwrap();
    let Some(binding) = chunks::binding(entry) else {
        return;
    };
    if !keeps_them {
        assert!(sidecar.is_none(), "{label}: {path}: chunk sums from a source that keeps none");
        return;
    }
    let sidecar = sidecar.unwrap_or_else(|| panic!("{label}: {path}: no chunk sums"));
    assert_eq!(chunks::binding_of(&sidecar), binding, "{label}: {path}: sidecar not the bound one");
    let sums: ChunkSums = serde_json::from_slice(&sidecar).unwrap();
    assert!(sums.is_consistent() && sums.size == data.len() as u64, "{label}: {path}");
    for i in 0..sums.count() {
        let r = sums.range(i);
        assert!(sums.verify(i, &data[r.start as usize..r.end as usize]), "{label}: chunk {i}");
    }
}

/// A blob changed at the source: reading it through the cache is a digest mismatch, and
/// nothing is cached. Run from a plain thread (the fetcher blocks on the runtime).
fn check_tampered(f: &Fixture, src: &Arc<dyn Catalog>, cache_dir: &str) {
    let label = src.url().to_owned();
    let ds = collection("ds");
    let v1 = f.runtime.block_on(src.resolve(&ds, &Selector::Version(1))).unwrap();
    let manifest = f.runtime.block_on(src.manifest(&v1)).unwrap();
    let blobs = src.blobs(&v1.collection, &v1.record);
    let cache = BlobCache::open(&f.dir.path().join(cache_dir), 1 << 30).unwrap();
    let fetcher = Fetcher::new(cache.clone(), f.runtime.handle().clone());
    let entry = &manifest.contents[TAMPERED];
    let err = fetcher.cached(&blobs, &v1.label(), TAMPERED, entry).unwrap_err();
    match &err {
        FetchError::Cache { source: CacheError::DigestMismatch { .. }, path, .. } => {
            assert_eq!(path, TAMPERED, "{label}");
        }
        other => panic!("{label}: a tampered blob gave {other:?}"),
    }
    assert_eq!(cache.stats().unwrap().entries, 0, "{label}: a tampered blob was cached");
    // The other entries still read.
    let good = fetcher.cached(&blobs, &v1.label(), "a.txt", &manifest.contents["a.txt"]);
    assert_eq!(std::fs::read(good.unwrap().path()).unwrap(), f.v1["a.txt"], "{label}");
}

/// The registry file of the blob of `data`.
fn blob_file(f: &Fixture, data: &[u8]) -> std::path::PathBuf {
    let key = crate::registry::blob_key(&md5_base64(data)).unwrap();
    f.registry_dir().join(key)
}

#[test]
fn both_sources_pass_the_same_checks() {
    let f = Fixture::new();
    let registry = f.registry_source();
    let (wandb, _stop) = f.wandb_source();
    f.runtime.block_on(check_catalog(&f, &*registry, true));
    f.runtime.block_on(check_catalog(&f, &*wandb, false));

    // Same size, other bytes: only the digest can tell.
    let file = blob_file(&f, &f.v1[TAMPERED]);
    let mut perms = std::fs::metadata(&file).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&file, perms).unwrap();
    let mut wrong = f.v1[TAMPERED].clone();
    wrong[100] ^= 1;
    std::fs::write(&file, wrong).unwrap();
    check_tampered(&f, &registry, "cache-registry");
    check_tampered(&f, &wandb, "cache-wandb");
}

#[test]
fn not_found_is_told_apart_from_other_failures() {
    use crate::registry::RegistryError;
    let unknown =
        RegistryError::UnknownAlias { name: "ds".into(), alias: "x".into(), available: vec![] };
    assert!(SourceError::from(unknown).is_not_found());
    let corrupt = RegistryError::Corrupt { url: "u".into(), key: "k".into(), reason: "r".into() };
    assert!(!SourceError::from(corrupt).is_not_found());
    let wandb = super::wandb::WandbError::NotFound("ds:x not found".into());
    assert!(SourceError::from(wandb).is_not_found());
}
