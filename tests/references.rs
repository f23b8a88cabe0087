//! Reference entries against real servers: the SDK's fixture manifests read back from local S3,
//! GCS and HTTP servers holding the same objects; drift detection; version pinning; big prefixes.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;

use crate::util::{Env, bytes, create_s3_bucket, curl, read_tree, s3_vars, unique_bucket};

fn fixture(name: &str) -> serde_json::Value {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wandb/outputs").join(name);
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn s3_env() -> Option<(Env, String)> {
    let Some(vars) = s3_vars() else {
        eprintln!("skipped: ARTFS_TEST_S3_ENDPOINT is not set (run `make test`)");
        return None;
    };
    let endpoint = vars[0].1.clone();
    let mut env = Env::new();
    env.vars = vars;
    Some((env, endpoint))
}

/// PUTs an object; returns the `x-amz-version-id` the server assigned, if any.
fn s3_put(
    endpoint: &str,
    bucket: &str,
    key: &str,
    body: &[u8],
    tmp: &std::path::Path,
) -> Option<String> {
    let file = tmp.join(format!("put-{}", fastrand::u64(..)));
    std::fs::write(&file, body).unwrap();
    let headers = curl(&[
        "-X",
        "PUT",
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("{endpoint}/{bucket}/{key}"),
    ]);
    String::from_utf8_lossy(&headers).lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("x-amz-version-id").then(|| v.trim().to_owned())
    })
}

/// Creates a bucket that may already exist from an earlier test in this server's lifetime.
fn ensure_s3_bucket(endpoint: &str, bucket: &str, versioned: bool) {
    let _ = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-X", "PUT", &format!("{endpoint}/{bucket}")])
        .status();
    if versioned {
        create_s3_bucket(endpoint, bucket, true);
    }
}

#[test]
fn sdk_s3_manifest_reads_back_from_local_s3() {
    let Some((env, endpoint)) = s3_env() else { return };
    // The objects make_fixtures.py put in moto, with the same bytes (so the same MD5 ETags).
    ensure_s3_bucket(&endpoint, "plain-bucket", false);
    ensure_s3_bucket(&endpoint, "versioned-bucket", true);
    let objects: BTreeMap<&str, &[u8]> = [
        ("prefix/a.txt", &b"aaa\n"[..]),
        ("prefix/sub/b.txt", b"bbbb\n"),
        ("prefix/empty.txt", b""),
        ("single.txt", b"single object\n"),
    ]
    .into();
    for (k, v) in &objects {
        s3_put(&endpoint, "plain-bucket", k, v, env.dir.path());
    }
    s3_put(&endpoint, "versioned-bucket", "model.txt", b"v1\n", env.dir.path());
    let version = s3_put(&endpoint, "versioned-bucket", "model.txt", b"v2 body\n", env.dir.path())
        .expect("versioned bucket returns a version id");

    // moto's version ids are random per run: point the fixture at the id this server gave the
    // same bytes. Everything else (paths, etags, sizes, digest) is the SDK's.
    let mut m = fixture("s3_moto.manifest.json");
    for (_, e) in m["contents"].as_object_mut().unwrap() {
        if e["extra"].get("versionID").is_some() {
            e["extra"]["versionID"] = version.clone().into();
        }
    }
    let path = env.path("s3_moto.json");
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    let out = env.json(&["log", "fixture-s3", "--manifest", path.to_str().unwrap()]);
    assert_eq!(out["digest"], "7440ad23b067ce5fa36bd0f0f702f5b6", "the SDK's artifact digest");

    env.ok(&["get", "fixture-s3", "--root", env.path("out").to_str().unwrap()]);
    let got = read_tree(&env.path("out"));
    let want: BTreeMap<String, Vec<u8>> = [
        ("single.txt", &b"single object\n"[..]),
        ("renamed/single.txt", b"single object\n"),
        ("a.txt", b"aaa\n"),
        ("sub/b.txt", b"bbbb\n"),
        ("named-prefix/a.txt", b"aaa\n"),
        ("named-prefix/sub/b.txt", b"bbbb\n"),
        ("model.txt", b"v2 body\n"),
        ("pinned/model.txt", b"v2 body\n"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_vec()))
    .collect();
    assert_eq!(got, want);
    let mnt = env.mount(&["fixture-s3", env.path("mnt").to_str().unwrap()]);
    assert_eq!(read_tree(&mnt.path), want, "through the mount");
}

#[test]
fn s3_references_are_pinned_drift_fails_and_versions_keep_old_bytes() {
    let Some((env, endpoint)) = s3_env() else { return };
    let plain = unique_bucket("drift");
    let versioned = unique_bucket("pinned");
    create_s3_bucket(&endpoint, &plain, false);
    create_s3_bucket(&endpoint, &versioned, true);
    s3_put(&endpoint, &plain, "data/x.bin", &bytes(1, 5000), env.dir.path());
    s3_put(&endpoint, &versioned, "model.bin", &bytes(2, 7000), env.dir.path());
    let out = env.json(&[
        "log",
        "refs",
        &format!("s3://{plain}/data/x.bin"),
        &format!("s3://{versioned}/model.bin=weights/model.bin"),
    ]);
    assert_eq!(out["file_count"], 2);
    let show = env.json(&["show", "refs", "--files"]);
    let entries = show["entries"].as_array().unwrap();
    assert!(entries.iter().all(|e| e["ref"].as_str().unwrap().starts_with("s3://")), "{show}");

    // Overwrite both after logging.
    s3_put(&endpoint, &plain, "data/x.bin", &bytes(3, 5000), env.dir.path());
    s3_put(&endpoint, &versioned, "model.bin", &bytes(4, 7000), env.dir.path());

    let err = env.fails(&["get", "refs", "--root", env.path("out").to_str().unwrap()]);
    assert!(err.contains(&format!("s3://{plain}/data/x.bin")), "{err}");
    assert!(err.contains("changed since it was logged"), "{err}");
    let old_etag = hex_md5(&bytes(1, 5000));
    assert!(err.contains(&old_etag), "expected etag {old_etag} in {err}");
    let new_etag = hex_md5(&bytes(3, 5000));
    assert!(err.contains(&new_etag), "found etag {new_etag} in {err}");
    assert!(!env.path("out").exists(), "a failed get leaves no partial folder");

    // The versioned object still reads its logged bytes through the recorded version.
    env.ok(&["get", "refs", "weights/model.bin", "--root", env.path("out").to_str().unwrap()]);
    assert_eq!(read_tree(&env.path("out")).get("weights/model.bin"), Some(&bytes(2, 7000)));

    // Through the mount: EIO for the changed object and a log line naming it; old bytes for the
    // versioned one.
    env.ok(&["cache", "clear"]);
    let mnt = env.mount(&["refs", env.path("mnt").to_str().unwrap()]);
    let err = std::fs::read(mnt.join("x.bin")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    let log = mnt.log_text();
    assert!(log.contains(&format!("s3://{plain}/data/x.bin")) && log.contains(&old_etag), "{log}");
    assert!(log.contains("changed since it was logged"), "{log}");
    assert_eq!(std::fs::read(mnt.join("weights/model.bin")).unwrap(), bytes(2, 7000));
}

#[test]
fn a_prefix_of_a_thousand_objects_logs_and_reads_back() {
    let Some((env, endpoint)) = s3_env() else { return };
    let bucket = unique_bucket("many");
    create_s3_bucket(&endpoint, &bucket, false);
    let mut want = BTreeMap::new();
    for i in 0..1000u64 {
        let key = format!("shards/{:02}/s{i:04}.bin", i % 10);
        let body = bytes(i, 100 + (i as usize % 50));
        s3_put(&endpoint, &bucket, &key, &body, env.dir.path());
        want.insert(key.strip_prefix("shards/").unwrap().to_owned(), body);
    }
    let out = env.json(&["log", "many", &format!("s3://{bucket}/shards")]);
    assert_eq!(out["file_count"], 1000);
    let err = env.fails(&["log", "many", &format!("s3://{bucket}/shards"), "--max-objects", "999"]);
    assert!(err.contains("999"), "{err}");
    env.ok(&["get", "many", "--root", env.path("out").to_str().unwrap()]);
    assert_eq!(read_tree(&env.path("out")), want);
    env.ok(&["cache", "clear"]);
    let mnt = env.mount(&["many", env.path("mnt").to_str().unwrap()]);
    assert_eq!(read_tree(&mnt.path), want, "through the mount");
}

/// Serves the bodies and ETags of make_fixtures.py's HTTP case on its port, 18765.
fn serve_http_fixture() -> Option<std::thread::JoinHandle<()>> {
    let listener = match TcpListener::bind("127.0.0.1:18765") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("skipped: port 18765 is taken: {e}");
            return None;
        }
    };
    Some(std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("");
            let (body, etag): (&[u8], Option<&str>) = match path {
                "/etag.txt" => {
                    (b"strong etag body\n", Some("\"5d41402abc4b2a76b9719d911017c592\""))
                }
                "/weak.txt" => (b"weak etag body\n", Some("W/\"weak-123\"")),
                "/noetag.txt" => (b"no etag body\n", None),
                "/dir/file%20name.txt" => (b"quoted path\n", Some("\"abc\"")),
                "/stop" => return,
                _ => {
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    continue;
                }
            };
            let mut head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            if let Some(e) = etag {
                head.push_str(&format!("ETag: {e}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            if !line.starts_with("HEAD") {
                let _ = stream.write_all(body);
            }
        }
    }))
}

#[test]
fn sdk_http_manifest_reads_back_from_a_server_with_the_same_etags() {
    let Some(server) = serve_http_fixture() else { return };
    let mut env = Env::new();
    // The fixture server is on 127.0.0.1: this reader allows private addresses.
    env.vars.push(("ARTFS_ALLOW_PRIVATE_REFS".into(), "1".into()));
    let path = env.path("http.json");
    std::fs::write(&path, serde_json::to_vec(&fixture("http_checksum.manifest.json")).unwrap())
        .unwrap();
    let out = env.json(&["log", "fixture-http", "--manifest", path.to_str().unwrap()]);
    assert_eq!(out["digest"], "e9a6f9fb54e6d6486bcdb18b6dee7ddb");
    env.ok(&["get", "fixture-http", "--root", env.path("out").to_str().unwrap()]);
    let got = read_tree(&env.path("out"));
    env.ok(&["cache", "clear"]);
    let mounted = {
        let mnt = env.mount(&["fixture-http", env.path("mnt").to_str().unwrap()]);
        read_tree(&mnt.path)
    };
    assert_eq!(mounted, got, "through the mount");
    let _ = std::net::TcpStream::connect("127.0.0.1:18765")
        .and_then(|mut s| s.write_all(b"GET /stop HTTP/1.1\r\n\r\n"));
    let _ = server.join();
    assert_eq!(got["etag.txt"], b"strong etag body\n");
    assert_eq!(got["named/etag-copy.txt"], b"strong etag body\n");
    assert_eq!(got["weak.txt"], b"weak etag body\n");
    assert_eq!(got["noetag.txt"], b"no etag body\n");
    assert_eq!(got["file%20name.txt"], b"quoted path\n");
}

#[test]
fn sdk_gcs_manifest_reads_back_from_fake_gcs() {
    let Ok(endpoint) = std::env::var("ARTFS_TEST_GCS_ENDPOINT") else {
        eprintln!("skipped: ARTFS_TEST_GCS_ENDPOINT is not set (run `make test`)");
        return;
    };
    let mut env = Env::new();
    env.vars = vec![("ARTFS_GCS_ENDPOINT".into(), endpoint.clone())];
    let _ = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-X", "POST", "-H", "Content-Type: application/json"])
        .arg(format!("{endpoint}/storage/v1/b"))
        .args(["-d", r#"{"name":"gbucket","versioning":{"enabled":true}}"#])
        .status();
    let mut generations = BTreeMap::new();
    for (name, body) in [
        ("gsingle.txt", &b"gcs single\n"[..]),
        ("gprefix/a.txt", b"gcs a\n"),
        ("gprefix/sub/b.txt", b"gcs bb\n"),
    ] {
        let file = env.path(&format!("g-{}", fastrand::u64(..)));
        std::fs::write(&file, body).unwrap();
        let enc: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
        let meta = curl(&[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", file.display()),
            &format!("{endpoint}/upload/storage/v1/b/gbucket/o?uploadType=media&name={enc}"),
        ]);
        let meta: serde_json::Value = serde_json::from_slice(&meta).unwrap();
        generations.insert(
            format!("gs://gbucket/{name}"),
            meta["generation"].as_str().unwrap().parse::<u64>().unwrap(),
        );
    }
    // Generations are time-based per server: use the ones this server gave the same bytes.
    let mut m = fixture("gcs_emulator.manifest.json");
    for (_, e) in m["contents"].as_object_mut().unwrap() {
        let g = generations[e["ref"].as_str().unwrap()];
        e["extra"]["versionID"] = g.into();
    }
    let path = env.path("gcs.json");
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    let out = env.json(&["log", "fixture-gcs", "--manifest", path.to_str().unwrap()]);
    assert_eq!(out["digest"], "a372e15a4c672f2e4420505f2a3102b2");
    env.ok(&["get", "fixture-gcs", "--root", env.path("out").to_str().unwrap()]);
    let got = read_tree(&env.path("out"));
    assert_eq!(got["gsingle.txt"], b"gcs single\n");
    assert_eq!(got["sub/b.txt"], b"gcs bb\n");
    assert_eq!(got["named-gprefix/a.txt"], b"gcs a\n");
    env.ok(&["cache", "clear"]);
    let mnt = env.mount(&["fixture-gcs", env.path("mnt").to_str().unwrap()]);
    assert_eq!(read_tree(&mnt.path), got, "through the mount");
}

fn hex_md5(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

/// Serves `body` (no ETag) to every GET and HEAD on 127.0.0.1 until the process ends; returns
/// the base URL.
fn serve_body_forever(body: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            if !line.starts_with("HEAD") {
                let _ = stream.write_all(body);
            }
        }
    });
    url
}

#[test]
fn an_unchecked_http_reference_reads_back_whatever_its_size() {
    const BODY: &[u8] = b"unchecked reference body\n";
    let url = format!("{}/data/unchecked.txt", serve_body_forever(BODY));
    let mut env = Env::new();
    // The server is on 127.0.0.1, which readers refuse unless allowed.
    env.vars.push(("ARTFS_ALLOW_PRIVATE_REFS".into(), "1".into()));
    env.ok(&["-q", "log", "nocheck", &url, "--no-checksum"]);
    // Stored as W&B stores it: the URI as digest, the unknown size as 0.
    let show = env.json(&["show", "nocheck", "--files"]);
    assert!(show.to_string().contains(&url), "{show}");
    let out = env.path("out");
    let got = env.run(&["get", "nocheck", "--root", out.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&got.stderr);
    assert!(got.status.success(), "{said}");
    assert_eq!(std::fs::read(out.join("unchecked.txt")).unwrap(), BODY);
    // The manifest does not know its size: the summary counts the bytes written.
    assert!(said.contains(&format!("(1 file, {} B, not verified", BODY.len())), "{said}");
    let mnt = env.mount(&["nocheck", env.path("mnt").to_str().unwrap()]);
    assert_eq!(std::fs::read(mnt.path.join("unchecked.txt")).unwrap(), BODY);
    assert_eq!(std::fs::metadata(mnt.path.join("unchecked.txt")).unwrap().len(), BODY.len() as u64);
}
