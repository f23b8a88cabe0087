//! Reference tests: naming rules against the manifests the real W&B SDK produced
//! (tests/fixtures/wandb), and expand/fetch against real local servers (ministack S3,
//! fake-gcs-server, nginx; see scripts/test-services.sh). Server tests skip, saying so, when
//! their `ARTFS_TEST_*` variable is unset; CI sets them all.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use object_store::client::HttpResponse;
use object_store::{PutPayload, PutResult};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt;
use url::Url;

use super::*;
use crate::manifest::{DigestAlg, Manifest, hash_file};
use crate::store::cloud::{
    AwsCredentials, CloudConfig, GcpCredentials, GcsConfig, NetConfig, S3Config,
};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wandb")
}

fn fixture(case: &str) -> Manifest {
    let path = fixtures().join(format!("outputs/{case}.manifest.json"));
    Manifest::from_json(&std::fs::read(&path).unwrap()).unwrap()
}

fn fixture_digest(case: &str) -> String {
    let path = fixtures().join(format!("outputs/{case}.digest.txt"));
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

/// Entries of several `expand` calls as one manifest; a path added twice must agree.
fn manifest_of(entries: Vec<(String, Entry)>) -> Manifest {
    let mut contents = BTreeMap::new();
    for (path, entry) in entries {
        if let Some(old) = contents.insert(path.clone(), entry.clone()) {
            assert_eq!(old, entry, "{path} expanded twice, differently");
        }
    }
    let m = Manifest { contents, ..Manifest::default() };
    m.validate().unwrap();
    m
}

/// Same paths, digests, sizes and `extra` keys; `extra.etag` equal; `extra.versionID` of the
/// same JSON type (its value differs per run). `fix_ref` maps a fixture ref to ours.
fn assert_like_fixture(ours: &Manifest, theirs: &Manifest, fix_ref: impl Fn(&str) -> String) {
    let our_paths: Vec<_> = ours.contents.keys().collect();
    let their_paths: Vec<_> = theirs.contents.keys().collect();
    assert_eq!(our_paths, their_paths);
    for (path, want) in &theirs.contents {
        let got = &ours.contents[path];
        assert_eq!(got.digest, want.digest, "{path}: digest");
        assert_eq!(got.reference, want.reference.as_deref().map(&fix_ref), "{path}: ref");
        assert_eq!(got.size, want.size, "{path}: size");
        assert_eq!(
            got.extra.keys().collect::<Vec<_>>(),
            want.extra.keys().collect::<Vec<_>>(),
            "{path}: extra keys"
        );
        assert_eq!(got.extra.get("etag"), want.extra.get("etag"), "{path}: extra.etag");
        if let (Some(g), Some(w)) = (got.extra.get("versionID"), want.extra.get("versionID")) {
            assert_eq!(g.is_string(), w.is_string(), "{path}: versionID type");
            assert_eq!(g.is_u64(), w.is_u64(), "{path}: versionID type");
        }
    }
}

async fn collect(stream: ByteStream) -> Result<Vec<u8>, RefError> {
    let chunks: Vec<Bytes> = stream.try_collect().await?;
    Ok(chunks.concat())
}

async fn read_ref(
    clouds: &Clouds,
    entry: &Entry,
    range: Option<Range<u64>>,
) -> Result<Vec<u8>, RefError> {
    collect(fetch(clouds, entry, range).await?).await
}

fn only(mut entries: Vec<(String, Entry)>) -> (String, Entry) {
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries.remove(0)
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{:08x}", std::process::id(), fastrand::u32(..))
}

/// Small retry budget: tests want fast failures.
fn test_net() -> NetConfig {
    NetConfig {
        max_retries: 2,
        retry_timeout: Duration::from_secs(20),
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(20),
        request_timeout: None,
    }
}

/// Test servers listen on 127.0.0.1: references to them need the reader's permission.
fn private_clouds() -> Clouds {
    let refs = RefAccess::new(&[], true).unwrap();
    Clouds::new(CloudConfig { net: test_net(), refs, ..CloudConfig::default() })
}

fn env_or_skip(var: &str, test: &str) -> Option<String> {
    let value = std::env::var(var).ok().filter(|v| !v.is_empty());
    if value.is_none() {
        eprintln!(
            "SKIPPED {test}: {var} is unset (run `eval \"$(scripts/test-services.sh env)\"` after \
             `scripts/test-services.sh start`)"
        );
    }
    value
}

fn s3_clouds(endpoint: &str) -> Clouds {
    Clouds::new(CloudConfig {
        s3: S3Config {
            endpoint: Some(endpoint.to_owned()),
            region: Some("us-east-1".into()),
            credentials: AwsCredentials::Static {
                key_id: "test".into(),
                secret_key: "test".into(),
                session_token: None,
            },
            virtual_hosted_style: false,
        },
        net: test_net(),
        ..CloudConfig::default()
    })
}

fn gcs_clouds(endpoint: &str) -> Clouds {
    Clouds::new(CloudConfig {
        gcs: GcsConfig {
            base_url: Some(endpoint.to_owned()),
            credentials: GcpCredentials::Emulator,
        },
        net: test_net(),
        ..CloudConfig::default()
    })
}

async fn expect_status(resp: Result<HttpResponse, CloudError>, what: &str) -> Bytes {
    let resp = resp.unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = resp.status().as_u16();
    let body = resp.into_body().bytes().await.unwrap();
    assert!(
        (200..300).contains(&status),
        "{what}: HTTP {status}: {}",
        String::from_utf8_lossy(&body)
    );
    body
}

async fn s3_bucket(clouds: &Clouds, endpoint: &str, bucket: &str, versioned: bool) {
    // ministack accepts unsigned bucket administration.
    let url = format!("{endpoint}/{bucket}");
    expect_status(clouds.send("PUT", &url, &[]).await, "create bucket").await;
    if versioned {
        let body = "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                    <Status>Enabled</Status></VersioningConfiguration>";
        let headers = [("content-type", "application/xml".to_owned())];
        let resp = clouds
            .send_with_body("PUT", &format!("{url}?versioning"), &headers, Some(body.into()))
            .await;
        expect_status(resp, "enable versioning").await;
    }
}

async fn s3_put(clouds: &Clouds, bucket: &str, key: &str, body: &[u8]) -> PutResult {
    let store = clouds.s3(bucket).unwrap();
    let payload = PutPayload::from(Bytes::copy_from_slice(body));
    store.put(&ObjPath::parse(key).unwrap(), payload).await.unwrap()
}

async fn gcs_bucket(clouds: &Clouds, endpoint: &str, bucket: &str, versioned: bool) {
    let body = serde_json::json!({"name": bucket, "versioning": {"enabled": versioned}});
    let headers = [("content-type", "application/json".to_owned())];
    let url = format!("{endpoint}/storage/v1/b");
    let resp = clouds.send_with_body("POST", &url, &headers, Some(body.to_string().into())).await;
    expect_status(resp, "create GCS bucket").await;
}

/// Uploads through the JSON API (object_store's XML writes fail on the emulator); returns the
/// new generation.
async fn gcs_put(clouds: &Clouds, endpoint: &str, bucket: &str, key: &str, body: &[u8]) -> u64 {
    let mut url = Url::parse(&format!("{endpoint}/upload/storage/v1/b/{bucket}/o")).unwrap();
    url.query_pairs_mut().append_pair("uploadType", "media").append_pair("name", key);
    let headers = [("content-type", "application/octet-stream".to_owned())];
    let resp = clouds
        .send_with_body("POST", url.as_str(), &headers, Some(Bytes::copy_from_slice(body)))
        .await;
    let meta: Value = serde_json::from_slice(&expect_status(resp, "GCS upload").await).unwrap();
    meta["generation"].as_str().unwrap().parse().unwrap()
}

// -------------------------------------------------------------------------------------------
// Offline: parsing and naming rules

#[test]
fn uri_parts_split_like_urlsplit() {
    let p = UriParts::split("S3://bucket/a/b.txt?versionId=x%2By&other=1#frag");
    assert_eq!(
        p,
        UriParts {
            scheme: "s3".into(),
            netloc: "bucket",
            path: "/a/b.txt",
            query: "versionId=x%2By&other=1",
            fragment: "frag"
        }
    );
    assert_eq!(p.query_param("versionId").as_deref(), Some("x+y"));
    assert_eq!(p.key(), "a/b.txt");
    let p = UriParts::split("s3://bucket");
    assert_eq!((p.netloc, p.path, p.key()), ("bucket", "", ""));
    let p = UriParts::split("/plain/path");
    assert_eq!((p.scheme.as_str(), p.path), ("", "/plain/path"));
    assert_eq!(RefScheme::of("https://acct.blob.core.windows.net/c/b"), RefScheme::Azure);
    assert_eq!(RefScheme::of("HTTPS://example.com/x"), RefScheme::Http);
    assert_eq!(RefScheme::of("nfs://server/x"), RefScheme::Other);
    assert_eq!(RefScheme::of("wandb-artifact://abc/x"), RefScheme::WandbArtifact);
    assert_eq!(file_path("file:///tmp/donn%C3%A9es%20x").unwrap(), PathBuf::from("/tmp/données x"));
    assert!(file_path("file://otherhost/x").is_err());
}

#[test]
fn listed_names_follow_the_sdk() {
    let n = |prefix, key, name| listed_name("s3://b/p", prefix, key, name);
    assert_eq!(n("prefix", "prefix/sub/b.txt", None).unwrap(), "sub/b.txt");
    assert_eq!(n("prefix/", "prefix/a.txt", Some("named")).unwrap(), "named/a.txt");
    assert_eq!(n("", "top/a.txt", None).unwrap(), "top/a.txt");
    assert_eq!(n("dir", "dir", None).unwrap(), "dir");
    let err = n("prefix", "prefixSibling/c.txt", None).unwrap_err();
    assert!(matches!(err, RefError::OutsidePrefix { .. }), "{err}");
    assert!(err.to_string().contains("end the URI with `/`"), "{err}");
    // LogicalPath normalisation, then manifest validation.
    assert_eq!(entry_path("u", "some/prefix/").unwrap(), "some/prefix");
    assert_eq!(entry_path("u", "a//./b").unwrap(), "a/b");
    assert!(matches!(entry_path("u", "../x"), Err(RefError::InvalidName { .. })));
    assert!(matches!(entry_path("u", ""), Err(RefError::InvalidName { .. })));
}

/// A refused entry name is named once, with its cause once, and says what to do.
#[test]
fn an_invalid_entry_name_says_its_cause_once() {
    let report = |name| crate::report::error_line(&entry_path("https://h/x", name).unwrap_err());
    assert_eq!(
        report("a/../b"),
        "https://h/x: entry name \"a/../b\": `.` or `..` path component; pass another name"
    );
    assert_eq!(
        report("/abs"),
        "https://h/x: entry name \"/abs\": absolute path; pass another name"
    );
}

/// Every `add_reference(..., checksum=False)` call of the `refs_nochecksum` case, offline.
#[tokio::test]
async fn nochecksum_entries_match_the_sdk() {
    let clouds = Clouds::default();
    let calls: &[(&str, Option<&str>)] = &[
        ("http://example.com/data/file.txt", None),
        ("https://example.com/a/b/model.bin?token=x", None),
        ("https://example.com/c/d.txt", Some("remote/named.txt")),
        ("s3://my-bucket/path/to/obj.txt", None),
        ("s3://my-bucket/some/prefix/", None),
        ("s3://my-bucket2", None),
        ("s3://my-bucket/versioned.txt?versionId=abc123", None),
        ("s3://my-bucket/path/to/obj2.txt", Some("s3named/x.txt")),
        ("gs://my-gcs-bucket/path/gobj.txt", None),
        ("gs://my-gcs-bucket/gen.txt#1712345678901234", None),
        ("https://acct.blob.core.windows.net/container/dir/blob.txt", None),
        ("nfs://server/share/file.dat", Some("tracked/file.dat")),
    ];
    let mut entries = Vec::new();
    for (uri, name) in calls {
        // The SDK call for the unknown scheme left checksum at its default (on).
        let checksum = uri.starts_with("nfs:");
        entries.extend(expand(&clouds, uri, *name, checksum, 0).await.unwrap());
    }
    let ours = manifest_of(entries);
    assert_eq!(ours, fixture("refs_nochecksum"));
    assert_eq!(ours.digest(), fixture_digest("refs_nochecksum"));
    // Unknown schemes need a name, checksum or not; azure cannot be checksummed here.
    let err = expand(&clouds, "nfs://server/x", None, true, 0).await.unwrap_err();
    assert!(matches!(err, RefError::NameRequired { .. }), "{err}");
    let err = expand(&clouds, "https://a.blob.core.windows.net/c/b", None, true, 0).await;
    assert!(matches!(err, Err(RefError::Unsupported { .. })), "{err:?}");
    let err = expand(&clouds, "wandb-artifact://x/y", None, false, 0).await;
    assert!(matches!(err, Err(RefError::Unsupported { .. })), "{err:?}");
}

/// The `http_checksum` case: the SDK's server answered these headers.
#[test]
fn http_entries_from_headers_match_the_sdk() {
    let base = "http://127.0.0.1:18765";
    let answers: &[(&str, Option<&str>, Option<&str>, u64)] = &[
        ("/etag.txt", None, Some("\"5d41402abc4b2a76b9719d911017c592\""), 17),
        ("/weak.txt", None, Some("W/\"weak-123\""), 15),
        ("/noetag.txt", None, None, 13),
        ("/dir/file%20name.txt", None, Some("\"abc\""), 12),
        (
            "/etag.txt",
            Some("named/etag-copy.txt"),
            Some("\"5d41402abc4b2a76b9719d911017c592\""),
            17,
        ),
    ];
    let entries = answers
        .iter()
        .map(|(path, name, etag, len)| {
            let uri = format!("{base}{path}");
            let n = entry_path(&uri, name.unwrap_or(basename(&uri))).unwrap();
            (n, http_entry(&uri, *etag, Some(*len)))
        })
        .collect();
    let ours = manifest_of(entries);
    assert_eq!(ours, fixture("http_checksum"));
    assert_eq!(ours.digest(), fixture_digest("http_checksum"));
}

/// The nochecksum `file://` digests are the MD5 of the resolved file URI.
#[test]
fn file_uri_digests_match_the_sdk() {
    let theirs = fixture("file_refs");
    let mut checked = 0;
    for (path, entry) in theirs.contents.iter().filter(|(p, _)| p.starts_with("nocs")) {
        let uri = entry.reference.as_deref().unwrap();
        let local = file_path(uri).unwrap();
        assert_eq!(md5_base64(file_uri(&local).as_bytes()), entry.digest, "{path}");
        checked += 1;
    }
    assert_eq!(checked, 4);
    assert_eq!(file_uri(Path::new("/tmp/a b/é#")), "file:///tmp/a%20b/%C3%A9%23");
}

/// W&B's cache path of a reference is sha256(sha256(uri) || sha256(tag)) of our identity.
#[test]
fn cache_identity_reproduces_wandb_cache_paths() {
    let paths: Value = serde_json::from_slice(
        &std::fs::read(fixtures().join("outputs/cache_paths_and_urls.json")).unwrap(),
    )
    .unwrap();
    let cases = [
        (
            "s3_moto",
            "single.txt",
            "s3://plain-bucket/single.txt | f6a55cae6bfb7626fbb65b0c9f13231e",
        ),
        (
            "http_checksum",
            "etag.txt",
            "http://127.0.0.1:18765/etag.txt | 5d41402abc4b2a76b9719d911017c592",
        ),
    ];
    for (case, path, key) in cases {
        let entry = &fixture(case).contents[path];
        let (uri, tag) = cache_identity(entry).unwrap();
        let mut outer = Sha256::new();
        outer.update(Sha256::digest(uri.as_bytes()));
        outer.update(Sha256::digest(tag.as_bytes()));
        let hex = hex::encode(outer.finalize());
        let want = paths["etag_obj"][key].as_str().unwrap();
        assert_eq!(format!("obj/etag/{}/{}", &hex[..2], &hex[2..]), want);
        assert!(is_pinned(entry));
    }
    assert!(cache_identity(&Entry::stored("x".into(), 1)).is_none());
    let unchecked = &fixture("refs_nochecksum").contents["path/to/obj.txt"];
    assert!(!is_pinned(unchecked));
    let files = fixture("file_refs");
    assert!(is_pinned(&files.contents["hello.txt"]));
    assert!(!is_pinned(&files.contents["nocs/hello.txt"]));
}

// -------------------------------------------------------------------------------------------
// file:// against the real file system

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        let target = to.join(item.file_name());
        if item.file_type().unwrap().is_dir() {
            copy_tree(&item.path(), &target);
        } else {
            std::fs::copy(item.path(), &target).unwrap();
        }
    }
}

#[tokio::test]
async fn file_refs_match_the_sdk_and_are_pinned_by_content() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap().join("root");
    copy_tree(&fixtures().join("inputs"), &root);
    let r = root.display().to_string();
    let refs = RefAccess::new(std::slice::from_ref(&root), false).unwrap();
    let clouds = Clouds::new(CloudConfig { refs, ..CloudConfig::default() });
    let calls: Vec<(String, Option<&str>, bool)> = vec![
        (format!("file://{r}/hello.txt"), None, true),
        (format!("file://{r}/data"), None, true),
        (format!("file://{r}/data"), Some("named-dir"), true),
        (format!("file://{r}/hello.txt"), Some("nocs/hello.txt"), false),
        (format!("file://{r}/data"), Some("nocs-dir"), false),
    ];
    let mut entries = Vec::new();
    for (uri, name, checksum) in &calls {
        entries.extend(expand(&clouds, uri, *name, *checksum, 0).await.unwrap());
    }
    let ours = manifest_of(entries);
    let mut theirs = fixture("file_refs");
    // Without checksum the digest depends on where the files are: recompute those for our root.
    let fix_ref = |f: &str| f.replace("file:///tmp/wandb-fixtures-root", &format!("file://{r}"));
    for (_, entry) in theirs.contents.iter_mut().filter(|(p, _)| p.starts_with("nocs")) {
        let local = file_path(&fix_ref(entry.reference.as_deref().unwrap())).unwrap();
        entry.digest = md5_base64(file_uri(&local).as_bytes());
    }
    assert_like_fixture(&ours, &theirs, fix_ref);

    let err = expand(&clouds, &format!("file://{r}/data"), None, true, 2).await.unwrap_err();
    assert!(matches!(err, RefError::TooManyObjects { max: 2, .. }), "{err}");
    let err = expand(&clouds, &format!("file://{r}/missing"), None, true, 0).await.unwrap_err();
    assert!(matches!(err, RefError::NotFound { .. }), "{err}");

    // Reading: whole, a range, then after the file changed.
    let hello = &ours.contents["hello.txt"];
    assert_eq!(read_ref(&clouds, hello, None).await.unwrap(), b"hello world\n");
    assert_eq!(read_ref(&clouds, hello, Some(6..11)).await.unwrap(), b"world");
    std::fs::write(root.join("hello.txt"), b"HELLO WORLD\n").unwrap(); // same size
    let err = read_ref(&clouds, hello, None).await.unwrap_err();
    assert!(matches!(err, RefError::Changed { .. }), "{err}");
    assert!(err.to_string().contains("changed since it was logged: expected md5"), "{err}");
    // Logged without checksum: content is not pinned, only the size.
    let nocs = &ours.contents["nocs/hello.txt"];
    assert_eq!(read_ref(&clouds, nocs, None).await.unwrap(), b"HELLO WORLD\n");
    std::fs::write(root.join("hello.txt"), b"longer than before\n").unwrap();
    let err = read_ref(&clouds, hello, Some(0..2)).await.unwrap_err();
    assert!(matches!(err, RefError::Changed { .. }), "{err}");
    std::fs::remove_file(root.join("hello.txt")).unwrap();
    let err = read_ref(&clouds, hello, None).await.unwrap_err();
    assert!(matches!(err, RefError::NotFound { .. }), "{err}");
}

// -------------------------------------------------------------------------------------------
// S3 (ministack)

#[tokio::test]
async fn s3_expand_matches_the_sdk() {
    let Some(ep) = env_or_skip("ARTFS_TEST_S3_ENDPOINT", "s3_expand_matches_the_sdk") else {
        return;
    };
    let clouds = s3_clouds(&ep);
    let (plain, sibling, versioned) = (unique("plain"), unique("sibling"), unique("versioned"));
    s3_bucket(&clouds, &ep, &plain, false).await;
    s3_bucket(&clouds, &ep, &sibling, false).await;
    s3_bucket(&clouds, &ep, &versioned, true).await;
    for (key, body) in [
        ("prefix/a.txt", &b"aaa\n"[..]),
        ("prefix/sub/b.txt", b"bbbb\n"),
        ("prefix/empty.txt", b""),
        ("single.txt", b"single object\n"),
    ] {
        s3_put(&clouds, &plain, key, body).await;
    }
    s3_put(&clouds, &sibling, "prefix/a.txt", b"aaa\n").await;
    s3_put(&clouds, &sibling, "prefixSibling/c.txt", b"c\n").await;
    s3_put(&clouds, &versioned, "model.txt", b"v1\n").await;
    let v2 = s3_put(&clouds, &versioned, "model.txt", b"v2 body\n").await.version.unwrap();

    let calls = [
        (format!("s3://{plain}/single.txt"), None),
        (format!("s3://{plain}/prefix"), None),
        (format!("s3://{plain}/prefix/"), Some("named-prefix")),
        (format!("s3://{plain}/single.txt"), Some("renamed/single.txt")),
        (format!("s3://{versioned}/model.txt"), None),
        (format!("s3://{versioned}/model.txt?versionId={v2}"), Some("pinned/model.txt")),
    ];
    let mut entries = Vec::new();
    for (uri, name) in &calls {
        entries.extend(expand(&clouds, uri, *name, true, 0).await.unwrap());
    }
    let ours = manifest_of(entries);
    assert_like_fixture(&ours, &fixture("s3_moto"), |r| {
        r.replace("s3://plain-bucket/", &format!("s3://{plain}/"))
            .replace("s3://versioned-bucket/", &format!("s3://{versioned}/"))
    });
    assert_eq!(ours.digest(), fixture_digest("s3_moto"));
    for path in ["model.txt", "pinned/model.txt"] {
        assert_eq!(ours.contents[path].extra_str("versionID").as_deref(), Some(v2.as_str()));
    }

    let err = expand(&clouds, &format!("s3://{sibling}/prefix"), None, true, 0).await.unwrap_err();
    assert!(matches!(err, RefError::OutsidePrefix { .. }), "{err}");
    let folder = expand(&clouds, &format!("s3://{sibling}/prefix/"), None, true, 0).await.unwrap();
    assert_eq!(folder.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["a.txt"]);
    // The whole bucket: names are the keys.
    let all = manifest_of(expand(&clouds, &format!("s3://{plain}"), None, true, 0).await.unwrap());
    assert_eq!(
        all.contents.keys().collect::<Vec<_>>(),
        ["prefix/a.txt", "prefix/sub/b.txt", "single.txt"]
    );
    // A single empty object gives no entry, as in the SDK.
    let empty = expand(&clouds, &format!("s3://{plain}/prefix/empty.txt"), None, true, 0).await;
    assert!(empty.unwrap().is_empty());
    let err = expand(&clouds, &format!("s3://{plain}/nothing"), None, true, 0).await.unwrap_err();
    assert!(matches!(err, RefError::NotFound { .. }), "{err}");
    let bogus = format!("s3://{versioned}/model.txt?versionId=no-such-version");
    let err = expand(&clouds, &bogus, None, true, 0).await.unwrap_err();
    assert!(matches!(err, RefError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn s3_reads_are_pinned_by_version_or_etag() {
    let Some(ep) = env_or_skip("ARTFS_TEST_S3_ENDPOINT", "s3_reads_are_pinned_by_version_or_etag")
    else {
        return;
    };
    let clouds = s3_clouds(&ep);
    let (versioned, plain) = (unique("pin-v"), unique("pin-u"));
    s3_bucket(&clouds, &ep, &versioned, true).await;
    s3_bucket(&clouds, &ep, &plain, false).await;

    // Versioned: the logged version stays readable after an overwrite.
    s3_put(&clouds, &versioned, "m.txt", b"first version\n").await;
    let (_, entry) =
        only(expand(&clouds, &format!("s3://{versioned}/m.txt"), None, true, 0).await.unwrap());
    assert!(entry.extra_str("versionID").is_some(), "{entry:?}");
    s3_put(&clouds, &versioned, "m.txt", b"second, longer version\n").await;
    assert_eq!(read_ref(&clouds, &entry, None).await.unwrap(), b"first version\n");
    assert_eq!(read_ref(&clouds, &entry, Some(6..13)).await.unwrap(), b"version");

    // Unversioned: an overwrite is detected, whole or ranged, with a clear message.
    s3_put(&clouds, &plain, "u.txt", b"one\n").await;
    let uri = format!("s3://{plain}/u.txt");
    let (_, entry) = only(expand(&clouds, &uri, None, true, 0).await.unwrap());
    assert!(entry.extra_str("versionID").is_none());
    let (_, loose) = only(expand(&clouds, &uri, None, false, 0).await.unwrap());
    assert_eq!(read_ref(&clouds, &entry, None).await.unwrap(), b"one\n");
    s3_put(&clouds, &plain, "u.txt", b"two!\n").await;
    for range in [None, Some(0..2)] {
        let err = read_ref(&clouds, &entry, range).await.unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, RefError::Changed { .. }), "{msg}");
        assert!(
            msg.contains(&format!(
                "reference {uri} changed since it was logged: expected etag {}",
                entry.digest
            )),
            "{msg}"
        );
    }
    // Logged without checksum: read as it is now.
    assert_eq!(read_ref(&clouds, &loose, None).await.unwrap(), b"two!\n");
    clouds.s3(&plain).unwrap().delete(&ObjPath::parse("u.txt").unwrap()).await.unwrap();
    let err = read_ref(&clouds, &entry, None).await.unwrap_err();
    assert!(matches!(err, RefError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn s3_prefix_of_1000_objects_respects_max_objects() {
    let Some(ep) = env_or_skip("ARTFS_TEST_S3_ENDPOINT", "s3_prefix_of_1000_objects") else {
        return;
    };
    let clouds = s3_clouds(&ep);
    let bucket = unique("many");
    s3_bucket(&clouds, &ep, &bucket, false).await;
    const N: usize = 1000;
    stream::iter((0..N).map(|i| {
        let (clouds, bucket) = (clouds.clone(), bucket.clone());
        async move {
            s3_put(&clouds, &bucket, &format!("many/{i:04}.txt"), format!("{i}\n").as_bytes()).await
        }
    }))
    .buffer_unordered(32)
    .collect::<Vec<_>>()
    .await;
    s3_put(&clouds, &bucket, "many/zz-empty", b"").await;
    let uri = format!("s3://{bucket}/many");
    let start = Instant::now();
    let m = manifest_of(expand(&clouds, &uri, Some("d"), true, N).await.unwrap());
    eprintln!("expanded {N} objects in {:?}", start.elapsed());
    assert_eq!(m.contents.len(), N);
    for (i, (path, entry)) in m.contents.iter().enumerate() {
        assert_eq!(path, &format!("d/{i:04}.txt"));
        let body = format!("{i}\n");
        assert_eq!(entry.digest, hex::encode(<md5::Md5 as md5::Digest>::digest(body.as_bytes())));
        assert_eq!(entry.size, Some(body.len() as u64));
        assert_eq!(
            entry.reference.as_deref(),
            Some(format!("s3://{bucket}/many/{i:04}.txt").as_str())
        );
    }
    let err = expand(&clouds, &uri, None, true, N - 1).await.unwrap_err();
    assert!(matches!(err, RefError::TooManyObjects { max, .. } if max == N - 1), "{err}");
    assert!(err.to_string().contains("pass a larger max_objects"), "{err}");
}

// -------------------------------------------------------------------------------------------
// GCS (fake-gcs-server)

#[tokio::test]
async fn gcs_expand_matches_the_sdk_and_reads_by_generation() {
    let Some(ep) = env_or_skip("ARTFS_TEST_GCS_ENDPOINT", "gcs_expand_matches_the_sdk") else {
        return;
    };
    let clouds = gcs_clouds(&ep);
    let bucket = unique("gbucket");
    gcs_bucket(&clouds, &ep, &bucket, true).await;
    let mut generations = BTreeMap::new();
    for (key, body) in [
        ("gprefix/a.txt", &b"gcs a\n"[..]),
        ("gprefix/sub/b.txt", b"gcs bb\n"),
        ("gsingle.txt", b"gcs single\n"),
    ] {
        generations.insert(key, gcs_put(&clouds, &ep, &bucket, key, body).await);
    }
    let calls = [
        (format!("gs://{bucket}/gsingle.txt"), None),
        (format!("gs://{bucket}/gprefix"), None),
        (format!("gs://{bucket}/gprefix/"), Some("named-gprefix")),
    ];
    let mut entries = Vec::new();
    for (uri, name) in &calls {
        entries.extend(expand(&clouds, uri, *name, true, 0).await.unwrap());
    }
    let ours = manifest_of(entries);
    assert_like_fixture(&ours, &fixture("gcs_emulator"), |r| {
        r.replace("gs://gbucket/", &format!("gs://{bucket}/"))
    });
    assert_eq!(ours.digest(), fixture_digest("gcs_emulator"));
    assert_eq!(
        ours.contents["a.txt"].extra["versionID"],
        Value::from(generations["gprefix/a.txt"])
    );

    // `#generation` pins a version; a missing one is an error.
    let g = generations["gsingle.txt"];
    let (n, pinned) = only(
        expand(&clouds, &format!("gs://{bucket}/gsingle.txt#{g}"), None, true, 0).await.unwrap(),
    );
    assert_eq!(
        (n.as_str(), pinned.reference.as_deref()),
        ("gsingle.txt", Some(format!("gs://{bucket}/gsingle.txt").as_str()))
    );
    let err = expand(&clouds, &format!("gs://{bucket}/gsingle.txt#{}", g + 1), None, true, 0).await;
    assert!(matches!(err, Err(RefError::NotFound { .. })), "{err:?}");
    let err = expand(&clouds, &format!("gs://{bucket}/gpre"), None, true, 0).await.unwrap_err();
    assert!(matches!(err, RefError::OutsidePrefix { .. }), "{err}");

    // Versioned bucket: the logged generation stays readable after an overwrite.
    let a = &ours.contents["a.txt"];
    gcs_put(&clouds, &ep, &bucket, "gprefix/a.txt", b"overwritten\n").await;
    assert_eq!(read_ref(&clouds, a, None).await.unwrap(), b"gcs a\n");
    assert_eq!(read_ref(&clouds, a, Some(4..5)).await.unwrap(), b"a");
}

#[tokio::test]
async fn gcs_unversioned_overwrite_is_detected() {
    let Some(ep) = env_or_skip("ARTFS_TEST_GCS_ENDPOINT", "gcs_unversioned_overwrite") else {
        return;
    };
    let clouds = gcs_clouds(&ep);
    let bucket = unique("gplain");
    gcs_bucket(&clouds, &ep, &bucket, false).await;
    gcs_put(&clouds, &ep, &bucket, "k.txt", b"original\n").await;
    let uri = format!("gs://{bucket}/k.txt");
    let (_, entry) = only(expand(&clouds, &uri, None, true, 0).await.unwrap());
    assert_eq!(read_ref(&clouds, &entry, None).await.unwrap(), b"original\n");
    gcs_put(&clouds, &ep, &bucket, "k.txt", b"modified\n").await;
    let err = read_ref(&clouds, &entry, None).await.unwrap_err();
    assert!(matches!(err, RefError::Changed { .. }), "{err}");
    assert!(err.to_string().contains(&format!("expected etag {}", entry.digest)), "{err}");
    // Same bytes again (new generation, same etag): the logged content, so it is served.
    gcs_put(&clouds, &ep, &bucket, "k.txt", b"original\n").await;
    assert_eq!(read_ref(&clouds, &entry, Some(0..4)).await.unwrap(), b"orig");
}

// -------------------------------------------------------------------------------------------
// HTTP (nginx: ETag "mtime-size", Range, If-Match)

#[tokio::test]
async fn http_refs_against_nginx() {
    let (Some(root), Some(base)) = (
        env_or_skip("ARTFS_TEST_HTTP_ROOT", "http_refs_against_nginx"),
        env_or_skip("ARTFS_TEST_HTTP_URL", "http_refs_against_nginx"),
    ) else {
        return;
    };
    let clouds = private_clouds();
    let dir = unique("refs");
    let local = PathBuf::from(&root).join(&dir);
    std::fs::create_dir_all(local.join("dir")).unwrap();
    std::fs::write(local.join("etag.txt"), b"strong etag body\n").unwrap();
    std::fs::write(local.join("dir/file name.txt"), b"quoted path\n").unwrap();
    let url = format!("{base}/{dir}");
    let calls = [
        (format!("{url}/etag.txt"), None),
        (format!("{url}/dir/file%20name.txt"), None),
        (format!("{url}/etag.txt"), Some("named/etag-copy.txt")),
    ];
    let mut entries = Vec::new();
    for (uri, name) in &calls {
        entries.extend(expand(&clouds, uri, *name, true, 0).await.unwrap());
    }
    let m = manifest_of(entries);
    assert_eq!(
        m.contents.keys().collect::<Vec<_>>(),
        ["etag.txt", "file%20name.txt", "named/etag-copy.txt"]
    );
    for (path, size) in [("etag.txt", 17), ("file%20name.txt", 12)] {
        let e = &m.contents[path];
        let raw = e.extra_str("etag").unwrap();
        assert!(raw.starts_with('"') && raw.ends_with('"'), "{raw}");
        assert_eq!(e.digest, raw.trim_matches('"'));
        assert_eq!(e.size, Some(size));
    }
    let err = expand(&clouds, &format!("{url}/missing.txt"), None, true, 0).await.unwrap_err();
    assert!(matches!(err, RefError::NotFound { .. }), "{err}");

    let e = &m.contents["etag.txt"];
    assert_eq!(read_ref(&clouds, e, None).await.unwrap(), b"strong etag body\n");
    assert_eq!(read_ref(&clouds, e, Some(7..11)).await.unwrap(), b"etag");
    assert_eq!(
        read_ref(&clouds, &m.contents["file%20name.txt"], None).await.unwrap(),
        b"quoted path\n"
    );
    // nginx's ETag is mtime+size: change the size so the change is visible.
    std::fs::write(local.join("etag.txt"), b"different body!!!!\n").unwrap();
    for range in [None, Some(0..4)] {
        let err = read_ref(&clouds, e, range).await.unwrap_err();
        assert!(matches!(err, RefError::Changed { .. }), "{err}");
        assert!(err.to_string().contains(&format!("expected etag {}", e.digest)), "{err}");
    }
    let (_, loose) =
        only(expand(&clouds, &format!("{url}/etag.txt"), None, false, 0).await.unwrap());
    assert_eq!(read_ref(&clouds, &loose, None).await.unwrap(), b"different body!!!!\n");
    std::fs::remove_dir_all(&local).unwrap();
}

/// A weak ETag cannot go into If-Match: the answer's ETag is compared instead. A server without
/// ranges (200 to a Range request) still yields just the range.
#[tokio::test]
async fn http_weak_etag_and_rangeless_server() {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 4096];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
            let body = "0123456789";
            let etag = if req.contains("/changed") { "W/\"v2\"" } else { "W/\"v1\"" };
            assert!(!req.contains("if-match"), "weak etags must not be sent in If-Match");
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: {etag}\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(format!("{head}{body}").as_bytes()).await;
        }
    });
    let clouds = private_clouds();
    let uri = format!("http://{addr}/weak.txt");
    let (_, mut e) = only(expand(&clouds, &uri, None, true, 0).await.unwrap());
    assert_eq!((e.digest.as_str(), e.size), ("W/\"v1", Some(10)));
    assert_eq!(read_ref(&clouds, &e, Some(3..7)).await.unwrap(), b"3456");
    assert_eq!(read_ref(&clouds, &e, None).await.unwrap(), b"0123456789");
    e.reference = Some(format!("http://{addr}/changed"));
    let err = read_ref(&clouds, &e, None).await.unwrap_err();
    assert!(matches!(err, RefError::Changed { .. }), "{err}");
    server.abort();
}

// -------------------------------------------------------------------------------------------
// Dead servers

#[tokio::test]
async fn dead_endpoints_fail_fast_and_clearly() {
    let dead = "http://127.0.0.1:1";
    let clouds = Clouds::new(CloudConfig {
        s3: S3Config { endpoint: Some(dead.into()), ..S3Config::default() },
        gcs: GcsConfig { base_url: Some(dead.into()), credentials: GcpCredentials::Emulator },
        net: test_net(),
        refs: RefAccess::new(&[], true).unwrap(),
    });
    let http_entry = Entry {
        digest: "abc".into(),
        reference: Some(format!("{dead}/x.txt")),
        ..Entry::default()
    };
    let start = Instant::now();
    let errors = [
        expand(&clouds, "s3://bucket/key.txt", None, true, 0).await.unwrap_err(),
        expand(&clouds, "gs://bucket/key.txt", None, true, 0).await.unwrap_err(),
        expand(&clouds, &format!("{dead}/x.txt"), None, true, 0).await.unwrap_err(),
        fetch(&clouds, &http_entry, None).await.err().unwrap(),
    ];
    assert!(start.elapsed() < Duration::from_secs(30), "took {:?}", start.elapsed());
    for err in errors {
        assert!(matches!(err, RefError::Unreachable { .. }), "{err}");
        assert!(
            err.to_string().contains("127.0.0.1:1") || err.to_string().contains("bucket"),
            "{err}"
        );
    }
}

// -------------------------------------------------------------------------------------------
// What a reader allows: file:// directories, private addresses, credentials

/// A file reference entry of `path` as `expand` records it (size and MD5).
fn file_ref(path: &Path) -> Entry {
    let (digest, size) = hash_file(path, DigestAlg::Md5, |_| {}).unwrap();
    Entry { digest, size: Some(size), reference: Some(file_uri(path)), ..Entry::default() }
}

fn file_clouds(dirs: &[PathBuf]) -> Clouds {
    let refs = RefAccess::new(dirs, false).unwrap();
    Clouds::new(CloudConfig { refs, ..CloudConfig::default() })
}

#[tokio::test]
async fn file_refs_are_read_only_below_allowed_directories_after_resolving_symlinks() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let (allowed, secret_dir) = (base.join("allowed"), base.join("secret"));
    std::fs::create_dir_all(allowed.join("sub")).unwrap();
    std::fs::create_dir_all(&secret_dir).unwrap();
    std::fs::write(allowed.join("sub/ok.txt"), b"fine\n").unwrap();
    std::fs::write(secret_dir.join("key"), b"private key\n").unwrap();
    std::os::unix::fs::symlink(secret_dir.join("key"), allowed.join("link-out")).unwrap();
    std::os::unix::fs::symlink(&secret_dir, allowed.join("dir-out")).unwrap();
    std::os::unix::fs::symlink(allowed.join("sub/ok.txt"), secret_dir.join("link-in")).unwrap();
    let ok = file_ref(&allowed.join("sub/ok.txt"));
    let secret = file_ref(&secret_dir.join("key"));

    // Nothing is allowed by default, not even reading what exists.
    let err = read_ref(&Clouds::default(), &ok, None).await.unwrap_err();
    assert!(matches!(err, RefError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("--allow-file-refs"), "{err}");

    let clouds = file_clouds(std::slice::from_ref(&allowed));
    assert_eq!(read_ref(&clouds, &ok, None).await.unwrap(), b"fine\n");
    assert_eq!(read_ref(&clouds, &ok, Some(1..3)).await.unwrap(), b"in");
    let mut outside = vec![
        secret.clone(),
        // Symlinks inside the allowed directory to files and directories outside it.
        Entry { reference: Some(file_uri(&allowed.join("link-out"))), ..secret.clone() },
        Entry { reference: Some(file_uri(&allowed.join("dir-out/key"))), ..secret.clone() },
        // `..` out of the allowed directory.
        Entry {
            reference: Some(format!("file://{}/sub/../../secret/key", allowed.display())),
            ..secret.clone()
        },
        // A sibling whose name starts with the allowed one.
        Entry { reference: Some(format!("file://{}-x/key", allowed.display())), ..secret.clone() },
    ];
    // Files that do not exist outside: refused too, revealing nothing about them.
    outside.push(Entry {
        reference: Some(format!("file://{}/missing", secret_dir.display())),
        ..secret.clone()
    });
    for entry in &outside {
        for range in [None, Some(0..4)] {
            let err = read_ref(&clouds, entry, range).await.unwrap_err();
            assert!(matches!(err, RefError::Refused { .. }), "{:?}: {err}", entry.reference);
        }
    }
    // A symlink from outside into the allowed directory reads what it points to.
    let inward = Entry { reference: Some(file_uri(&secret_dir.join("link-in"))), ..ok.clone() };
    assert_eq!(read_ref(&clouds, &inward, None).await.unwrap(), b"fine\n");
    // Missing files inside keep their own error.
    let gone = Entry { reference: Some(file_uri(&allowed.join("gone.txt"))), ..ok.clone() };
    let err = read_ref(&clouds, &gone, None).await.unwrap_err();
    assert!(matches!(err, RefError::NotFound { .. }), "{err}");
    // Special files inside are not read (a FIFO would block forever).
    let fifo = allowed.join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let pipe = Entry { reference: Some(file_uri(&fifo)), ..ok.clone() };
    let err = read_ref(&clouds, &pipe, None).await.unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    // Logging stays allowed: the writer reads their own files.
    let (_, logged) = only(
        expand(&Clouds::default(), &file_uri(&secret_dir.join("key")), None, true, 0)
            .await
            .unwrap(),
    );
    assert_eq!(logged.size, Some(12));
}

/// Accepts connections on `addr`, counting them, and answers each with `answer(request)`.
async fn counting_server(
    addr: &str,
    answer: impl Fn(&str) -> String + Send + Sync + 'static,
) -> (std::net::SocketAddr, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let local = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            seen.fetch_add(1, Ordering::SeqCst);
            let mut buf = vec![0u8; 8192];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let reply = answer(&String::from_utf8_lossy(&buf[..n]));
            let _ = sock.write_all(reply.as_bytes()).await;
        }
    });
    (local, count, task)
}

fn ok_reply(body: &str) -> String {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
}

fn unchecked_http(uri: String) -> Entry {
    Entry { digest: uri.clone(), reference: Some(uri), ..Entry::default() }
}

#[tokio::test]
async fn private_addresses_are_refused_before_any_request_unless_allowed() {
    let (addr, count, server) = counting_server("127.0.0.1:0", |_| ok_reply("internal")).await;
    let port = addr.port();
    let refused = [
        format!("http://127.0.0.1:{port}/admin"),
        format!("http://localhost:{port}/admin"),
        format!("http://2130706433:{port}/admin"),
        format!("http://[::1]:{port}/admin"),
        format!("http://[::ffff:127.0.0.1]:{port}/admin"),
    ];
    let clouds = Clouds::new(CloudConfig { net: test_net(), ..CloudConfig::default() });
    for uri in &refused {
        for range in [None, Some(0..4)] {
            let err = read_ref(&clouds, &unchecked_http(uri.clone()), range).await.unwrap_err();
            assert!(matches!(err, RefError::Refused { .. }), "{uri}: {err}");
            let text = err.to_string();
            assert!(text.contains("--allow-private-refs") && text.contains("loopback"), "{text}");
        }
    }
    assert_eq!(count.load(Ordering::SeqCst), 0, "no request reached the server");
    // The reader's permission lets the same references through.
    let uri = format!("http://localhost:{port}/admin");
    assert_eq!(read_ref(&private_clouds(), &unchecked_http(uri), None).await.unwrap(), b"internal");
    server.abort();
}

/// Every local address is loopback, so the redirect check is exercised with an address rule
/// that allows 127.0.0.1 only: a server there redirects to one on 127.0.0.2 (also loopback on
/// Linux), which must never be contacted.
#[tokio::test]
async fn redirects_are_checked_at_every_hop() {
    let (inner, inner_count, inner_server) =
        counting_server("127.0.0.2:0", |_| ok_reply("metadata secrets")).await;
    let (outer, _, outer_server) = counting_server("127.0.0.1:0", move |req| {
        let to = match req.contains("GET /fine") {
            true => "/landing".to_owned(),
            false => format!("http://{inner}/latest/meta-data"),
        };
        match req.contains("GET /landing") {
            true => ok_reply("landed"),
            false => format!(
                "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
        }
    })
    .await;
    let only_first = |ip: std::net::IpAddr| match ip.to_string().as_str() {
        "127.0.0.1" => None,
        _ => Some("test-refused"),
    };
    let config = CloudConfig { net: test_net(), ..CloudConfig::default() };
    let clouds = Clouds::with_address_check(config, only_first);
    let hop = unchecked_http(format!("http://{outer}/redirect"));
    let err = read_ref(&clouds, &hop, None).await.unwrap_err();
    assert!(matches!(err, RefError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("127.0.0.2"), "{err}");
    assert_eq!(inner_count.load(Ordering::SeqCst), 0, "the hop was not made");
    // Redirects within what is allowed are followed.
    let fine = unchecked_http(format!("http://{outer}/fine"));
    assert_eq!(read_ref(&clouds, &fine, None).await.unwrap(), b"landed");
    inner_server.abort();
    outer_server.abort();
}

#[tokio::test]
async fn credentials_in_reference_urls_are_refused_when_logging_and_never_shown() {
    for uri in [
        "http://user:hunter2@example.com/x",
        "https://token@example.com/x",
        "s3://key:hunter2@bucket/x",
    ] {
        let err = expand(&Clouds::default(), uri, None, false, 0).await.unwrap_err();
        assert!(matches!(err, RefError::Credentials { .. }), "{uri}: {err}");
        assert!(
            !err.to_string().contains("hunter2") && !err.to_string().contains("token@"),
            "{err}"
        );
    }
    assert_eq!(redact("http://u:p@h:1/a@b?c=d@e"), "http://***@h:1/a@b?c=d@e");
    assert_eq!(redact("http://h/a@b"), "http://h/a@b");
    assert_eq!(redact("file:///x@y"), "file:///x@y");

    // Stored by another tool: read with the credentials as a header, never in errors.
    let (addr, _, server) = counting_server("127.0.0.1:0", |req| {
        // base64("user:hunter2")
        match req.to_ascii_lowercase().contains("authorization: basic dxnlcjpodw50zxiy") {
            true => ok_reply("authorised"),
            false => "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_owned(),
        }
    })
    .await;
    let clouds = private_clouds();
    let good = unchecked_http(format!("http://user:hunter2@{addr}/x"));
    assert_eq!(read_ref(&clouds, &good, None).await.unwrap(), b"authorised");
    for entry in [
        unchecked_http(format!("http://user:wrong-hunter2@{addr}/x")),
        unchecked_http("http://user:hunter2@127.0.0.1:1/x".to_owned()),
        Entry { digest: "etag".into(), ..unchecked_http(format!("http://user:hunter2@{addr}/x")) },
    ] {
        let err = read_ref(&clouds, &entry, None).await.unwrap_err();
        let text = format!("{:#}", anyhow::Error::from(err));
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("***@"), "{text}");
    }
    let err = read_ref(&Clouds::default(), &good, None).await.unwrap_err();
    assert!(!format!("{:#}", anyhow::Error::from(err)).contains("hunter2"));
    server.abort();
}
