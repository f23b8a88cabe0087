//! A W&B server as the registry (`--registry http://…`): `artfs serve` on 127.0.0.1 with
//! versions logged by the real `wandb` SDK, read back by `ls`, `versions`, `show`, `get` and the
//! mount; plus servers that fail, throttle or never answer, and what goes on the wire.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::serve::{Server, create_key, run_flow};
use crate::util::{Env, Files, bytes, read_tree, write_tree};

/// `artfs ARGS` reading the W&B server at `url` with `key`, with its own cache.
fn reader(env: &Env, url: &str, key: &str, args: &[&str]) -> Command {
    let mut c = env.cmd();
    c.env("ARTFS_REGISTRY", url)
        .env("ARTFS_CACHE_DIR", env.path("reader-cache"))
        .env("WANDB_API_KEY", key)
        .env("NETRC", env.path("no-netrc"))
        .args(args);
    c
}

fn ok(mut c: Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(mut c: Command) -> String {
    let out = c.output().unwrap();
    assert!(!out.status.success(), "{c:?} unexpectedly succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn sdk_log(env: &Env, server: &Server, key: &str, tag: &str, dir: &Path, aliases: &str) {
    let vars = [
        ("FLOW_OP", "log"),
        ("FLOW_ARTIFACT", "ds"),
        ("FLOW_DIR", dir.to_str().unwrap()),
        ("FLOW_ALIASES", aliases),
    ];
    run_flow(env, server, key, "wandb_source.py", tag, &vars);
}

fn tree(seed: u64) -> Files {
    let mut files = Files::new();
    files.insert("a.bin".into(), bytes(seed, 300_000));
    files.insert("d/b.txt".into(), format!("bee {seed}\n").into_bytes());
    files.insert("d/e/empty".into(), Vec::new());
    for i in 0..12 {
        files.insert(format!("many/{i:02}.txt"), format!("{seed}-{i}").into_bytes());
    }
    files
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one end-to-end session against a real server: each step needs the state the previous one left"
)]
fn an_sdk_logged_artifact_on_a_wandb_server_lists_gets_and_mounts_byte_for_byte() {
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    let (v0, v1) = (tree(1), tree(2));
    let (d0, d1) = (env.path("src0"), env.path("src1"));
    write_tree(&d0, &v0);
    write_tree(&d1, &v1);
    sdk_log(&env, &server, &key, "log0", &d0, "");
    sdk_log(&env, &server, &key, "log1", &d1, "best");
    let url = server.url();

    // ls / versions / show, through the SDK's own queries.
    let ls: serde_json::Value =
        serde_json::from_str(&ok(reader(&env, &url, &key, &["ls", "acme/bikes", "--json"])))
            .unwrap();
    assert_eq!(ls[0]["name"], "acme/bikes/ds", "{ls}");
    assert_eq!(ls[0]["versions"], 2);
    assert_eq!(ls[0]["latest"], "v1");
    let versions: serde_json::Value = serde_json::from_str(&ok(reader(
        &env,
        &url,
        &key,
        &["versions", "acme/bikes/ds", "--json"],
    )))
    .unwrap();
    assert_eq!(versions.as_array().unwrap().len(), 2, "{versions}");
    assert_eq!(versions[1]["aliases"], serde_json::json!(["latest", "best"]), "{versions}");
    let show: serde_json::Value = serde_json::from_str(&ok(reader(
        &env,
        &url,
        &key,
        &["show", "acme/bikes/ds:best", "--files", "--json"],
    )))
    .unwrap();
    assert_eq!(show["version"], "v1");
    assert_eq!(show["entries"].as_array().unwrap().len(), v1.len());

    // get: every byte, verified.
    let got = env.path("got");
    ok(reader(
        &env,
        &url,
        &key,
        &["-q", "get", "acme/bikes/ds:v0", "--root", got.to_str().unwrap()],
    ));
    assert_eq!(read_tree(&got), v0);

    // The whole server mounted: entities, projects, versions and aliases, every byte.
    let mnt = env.path("mnt");
    let mut cmd = reader(&env, &url, &key, &[]);
    cmd.env_remove("ARTFS_REGISTRY");
    let m = crate::util::mount_with(
        cmd,
        &["--registry", &url, "--refresh-secs", "1", mnt.to_str().unwrap()],
    );
    let names = |p: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&m.join("")), ["acme"]);
    assert_eq!(names(&m.join("acme")), ["bikes"]);
    assert_eq!(names(&m.join("acme/bikes")), ["ds:best", "ds:latest", "ds:v0", "ds:v1"]);
    assert_eq!(read_tree(&m.join("acme/bikes/ds:v0")), v0);
    assert_eq!(read_tree(&m.join("acme/bikes/ds:latest")), v1);
    let link = m.join("acme/bikes/ds:best");
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("ds:v1"));

    // The SDK moves `best` to v0: the mount's symlink follows within the refresh interval.
    let vars = [("FLOW_OP", "alias"), ("FLOW_ARTIFACT", "ds:v0"), ("FLOW_ALIAS", "best")];
    run_flow(&env, &server, &key, "wandb_source.py", "alias", &vars);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_link(&link).unwrap() != Path::new("ds:v0") {
        assert!(Instant::now() < deadline, "the alias never moved in the mount");
        std::thread::sleep(Duration::from_millis(200));
    }

    // A blob changed on the server (of a version not read yet): the mount says EIO, `get`
    // names the entry, and nothing is cached.
    let v2 = tree(3);
    let d2 = env.path("src2");
    write_tree(&d2, &v2);
    sdk_log(&env, &server, &key, "log2", &d2, "");
    let blob = blob_file(&env, &v2["d/b.txt"]);
    let mut perms = std::fs::metadata(&blob).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&blob, perms).unwrap();
    std::fs::write(&blob, b"BEE 3\n").unwrap();
    let err = std::fs::read(m.join("acme/bikes/ds:v2/d/b.txt")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert_eq!(std::fs::read(m.join("acme/bikes/ds:v2/a.bin")).unwrap(), v2["a.bin"]);
    drop(m);
    let bad = env.path("bad");
    let get = ["get", "acme/bikes/ds:v2", "--root", bad.to_str().unwrap()];
    let err = fails(reader(&env, &url, &key, &get));
    assert!(err.contains("d/b.txt"), "{err}");
    assert!(!bad.join("d/b.txt").exists());
}

/// The registry file holding the blob of `data` (the server's registry is the env's).
fn blob_file(env: &Env, data: &[u8]) -> std::path::PathBuf {
    use base64::Engine as _;
    use md5::Digest as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(data));
    let hex = hex::encode(base64::engine::general_purpose::STANDARD.decode(b64).unwrap());
    env.registry_dir().join(format!("blobs/md5/{}/{}", &hex[..2], &hex[2..]))
}

/// An HTTP server on 127.0.0.1:0 that answers every request with `status` (or, with `None`,
/// reads it and never answers); counts the requests it got.
fn bad_server(status: Option<u16>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let held = Arc::new(Mutex::new(Vec::new()));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let seen = seen.clone();
            let held = held.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                let mut text = Vec::new();
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    text.extend_from_slice(&buf[..n]);
                    // One request per connection is enough here: answer once its headers are in.
                    if text.windows(4).any(|w| w == b"\r\n\r\n") {
                        seen.fetch_add(1, Ordering::SeqCst);
                        match status {
                            Some(s) => {
                                let body = "server trouble";
                                let _ = write!(
                                    conn,
                                    "HTTP/1.1 {s} Oops\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                    body.len()
                                );
                                return;
                            }
                            None => {
                                held.lock().unwrap().push(conn);
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), count)
}

#[test]
fn a_wandb_server_answering_500_or_429_or_nothing_gives_bounded_retries_then_a_clear_error() {
    let env = Env::new();
    for status in [500, 429] {
        let (url, count) = bad_server(Some(status));
        let started = Instant::now();
        let err = fails(reader(&env, &url, "k", &["ls", "acme/bikes"]));
        assert!(err.contains(&format!("HTTP {status}")), "{err}");
        assert!(err.contains("neither an artfs registry nor a W&B server"), "{err}");
        let n = count.load(Ordering::SeqCst);
        // The marker probe of the HTTP registry, then GraphQL: 1 + 3 retries.
        assert!((2..=1 + 4 + 4).contains(&n), "{n} requests");
        assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());
    }
    // A server that never answers: the read timeout ends it, once (not again as a W&B server).
    let (url, _) = bad_server(None);
    let started = Instant::now();
    let err = fails(reader(&env, &url, "k", &["ls", "acme/bikes"]));
    assert!(err.contains("took the connection but did not answer"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(150), "{:?}", started.elapsed());
}

/// A TCP proxy on 127.0.0.1:0 that records both directions; its upstream is set once known.
struct Recorder {
    addr: String,
    upstream: Arc<Mutex<Option<String>>>,
    sent: Arc<Mutex<Vec<u8>>>,
    received: Arc<Mutex<Vec<u8>>>,
}

impl Recorder {
    fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let upstream: Arc<Mutex<Option<String>>> = Arc::default();
        let sent: Arc<Mutex<Vec<u8>>> = Arc::default();
        let received: Arc<Mutex<Vec<u8>>> = Arc::default();
        let (up, s, r) = (upstream.clone(), sent.clone(), received.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Some(target) = up.lock().unwrap().clone() else { continue };
                let Ok(server) = std::net::TcpStream::connect(target) else { continue };
                for (from, to, log) in
                    [(&client, &server, s.clone()), (&server, &client, r.clone())]
                {
                    let (mut from, mut to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 65536];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                            log.lock().unwrap().extend_from_slice(&buf[..n]);
                        }
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        Recorder { addr, upstream, sent, received }
    }

    /// Request heads sent through the proxy: (request line, lowercase header names).
    fn requests(&self) -> Vec<(String, Vec<String>)> {
        let sent = String::from_utf8_lossy(&self.sent.lock().unwrap()).into_owned();
        let mut out = Vec::new();
        let mut lines = sent.split("\r\n");
        while let Some(line) = lines.next() {
            let is_request = ["GET ", "POST ", "PUT ", "HEAD "].iter().any(|m| line.contains(m))
                && line.ends_with("HTTP/1.1");
            if !is_request {
                continue;
            }
            // Bodies (JSON) may precede the request line on the same "line".
            let start = ["GET ", "POST ", "PUT ", "HEAD "]
                .iter()
                .filter_map(|m| line.find(m))
                .min()
                .unwrap_or(0);
            let mut headers = Vec::new();
            for h in lines.by_ref() {
                if h.is_empty() {
                    break;
                }
                headers.push(h.split(':').next().unwrap_or("").to_ascii_lowercase());
            }
            out.push((line[start..].to_owned(), headers));
        }
        out
    }
}

#[test]
fn credentials_go_to_graphql_only_and_expired_file_urls_are_asked_for_again() {
    let env = Env::new();
    let proxy = Recorder::start();
    let proxy_url = format!("http://{}", proxy.addr);
    let server = Server::start(&env, &["--public-url", &proxy_url, "--url-ttl", "2s"]);
    *proxy.upstream.lock().unwrap() = Some(server.addr.clone());
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    let files = tree(7);
    let dir = env.path("src");
    write_tree(&dir, &files);
    sdk_log(&env, &server, &key, "log", &dir, "");
    proxy.sent.lock().unwrap().clear();
    proxy.received.lock().unwrap().clear();

    let mnt = env.path("mnt");
    let mut cmd = reader(&env, &proxy_url, &key, &[]);
    cmd.env_remove("ARTFS_REGISTRY");
    let m = crate::util::mount_with(
        cmd,
        &["--registry", &proxy_url, "acme/bikes/ds:v0", mnt.to_str().unwrap()],
    );
    // Eight files by name, the ninth lists every URL of the version at once ...
    for i in 0..9 {
        let p = format!("many/{i:02}.txt");
        assert_eq!(std::fs::read(m.join(&p)).unwrap(), files[&p], "{p}");
    }
    // ... which have expired (2 s) by the time the rest is read: each is asked for again.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(read_tree(&m.join("")), files);
    drop(m);
    let received = String::from_utf8_lossy(&proxy.received.lock().unwrap()).into_owned();
    assert!(received.contains("HTTP/1.1 403"), "no expired URL was met");

    let requests = proxy.requests();
    assert!(requests.iter().any(|(l, _)| l.starts_with("POST /graphql")), "{requests:?}");
    assert!(requests.iter().any(|(l, _)| l.starts_with("GET ") && !l.contains("/graphql")));
    for (line, headers) in &requests {
        let has_auth = headers.iter().any(|h| h == "authorization");
        if line.starts_with("POST /graphql") {
            assert!(has_auth, "GraphQL without the key: {line}");
        } else {
            assert!(!has_auth, "the key went to a file URL: {line}");
        }
    }
}

/// Blob downloads the server has answered so far, from its request log (file URLs are
/// `/storage/wandb_artifacts/…`; the SDK's artifact routes would be `/artifacts…`).
fn blob_gets(server: &Server) -> usize {
    let log = server.log_text();
    let blob =
        |l: &str| l.contains("GET /storage/wandb_artifacts/") || l.contains("GET /artifacts");
    log.lines().filter(|l| blob(l)).count()
}

/// Downloads `artifact` (`name:vN`) to `root` with the SDK, its cache in `wandb_cache`
/// (`WANDB_CACHE_DIR`, so `<wandb_cache>/artifacts`); returns path → MD5 hex of what it wrote.
fn sdk_download(
    env: &Env,
    server: &Server,
    key: &str,
    tag: &str,
    artifact: &str,
    wandb_cache: &Path,
) -> serde_json::Value {
    let root = env.path(&format!("{tag}-root"));
    let vars = [
        ("FLOW_OP", "download"),
        ("FLOW_ARTIFACT", artifact),
        ("FLOW_ROOT", root.to_str().unwrap()),
        ("WANDB_CACHE_DIR", wandb_cache.to_str().unwrap()),
    ];
    run_flow(env, server, key, "wandb_source.py", tag, &vars).0["files"].clone()
}

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest as _;
    hex::encode(md5::Md5::digest(data))
}

fn md5_tree(files: &Files) -> serde_json::Value {
    files
        .iter()
        .map(|(path, data)| (path.clone(), serde_json::Value::from(md5_hex(data))))
        .collect()
}

#[test]
fn a_cache_shared_with_the_sdk_serves_each_sides_downloads_to_the_other_verified() {
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    let versions = [tree(11), tree(12), tree(13)];
    for (i, files) in versions.iter().enumerate() {
        let dir = env.path(&format!("src{i}"));
        write_tree(&dir, files);
        sdk_log(&env, &server, &key, &format!("log{i}"), &dir, "");
    }
    let url = server.url();
    let wandb_cache = env.path("wandb-cache");
    let shared = wandb_cache.join("artifacts");
    let sharing = |args: &[&str]| {
        let mut c = reader(&env, &url, &key, args);
        c.env("ARTFS_CACHE_DIR", &shared);
        c
    };
    let mount = |name: &str, at: &str| {
        let mut cmd = sharing(&[]);
        cmd.env_remove("ARTFS_REGISTRY");
        let mnt = env.path(at);
        crate::util::mount_with(cmd, &["--registry", &url, name, mnt.to_str().unwrap()])
    };

    // The SDK downloads v0 into its cache; a mount on that cache reads every byte of v0
    // without downloading any.
    let got = sdk_download(&env, &server, &key, "dl0", "ds:v0", &wandb_cache);
    assert_eq!(got, md5_tree(&versions[0]));
    assert!(shared.join("obj/md5").is_dir(), "the SDK's cache is not where it was expected");
    let before = blob_gets(&server);
    assert!(before > 0, "the server log shows no blob download at all");
    let m = mount("acme/bikes/ds:v0", "mnt0");
    assert_eq!(read_tree(&m.join("")), versions[0]);
    drop(m);
    assert_eq!(blob_gets(&server), before, "the mount downloaded files the SDK had cached");
    // Recognised as the SDK's: no artfs layout of its own beside it.
    assert!(!shared.join("v1").exists() && shared.join("artfs-v1").is_dir());
    let stats: serde_json::Value =
        serde_json::from_str(&ok(sharing(&["cache", "stats", "--json"]))).unwrap();
    assert_eq!(stats["layout"], "wandb", "{stats}");

    // artfs fetches v1 into the shared cache; the SDK's download of v1 then fetches nothing.
    let got_dir = env.path("got1");
    ok(sharing(&["-q", "get", "acme/bikes/ds:v1", "--root", got_dir.to_str().unwrap()]));
    assert_eq!(read_tree(&got_dir), versions[1]);
    let before = blob_gets(&server);
    let got = sdk_download(&env, &server, &key, "dl1", "ds:v1", &wandb_cache);
    assert_eq!(got, md5_tree(&versions[1]));
    assert_eq!(blob_gets(&server), before, "the SDK downloaded files artfs had cached");

    // A file of the SDK's cache changed behind its back, same size (the SDK checks only sizes):
    // the mount never serves it, fetches the right bytes once, and leaves them for the SDK too.
    sdk_download(&env, &server, &key, "dl2", "ds:v2", &wandb_cache);
    let right = &versions[2]["a.bin"];
    let hex = md5_hex(right);
    let entry = shared.join(format!("obj/md5/{}/{}", &hex[..2], &hex[2..]));
    let mut wrong = right.clone();
    wrong[1000] ^= 0xff;
    std::fs::write(&entry, &wrong).unwrap();
    let before = blob_gets(&server);
    let m = mount("acme/bikes/ds:v2", "mnt2");
    assert_eq!(read_tree(&m.join("")), versions[2]);
    drop(m);
    assert_eq!(blob_gets(&server), before + 1, "not exactly the tampered file was fetched again");
    assert_eq!(&std::fs::read(&entry).unwrap(), right);
    let got = sdk_download(&env, &server, &key, "dl2-again", "ds:v2", &wandb_cache);
    assert_eq!(got, md5_tree(&versions[2]));
    assert_eq!(blob_gets(&server), before + 1, "the SDK downloaded again");
}

/// GETs of the blob of `data` the server has answered so far.
fn gets_of(server: &Server, data: &[u8]) -> usize {
    let line = format!("GET /storage/wandb_artifacts/{}", md5_hex(data));
    server.log_text().lines().filter(|l| l.contains(&line)).count()
}

#[test]
fn a_large_wandb_entry_arrives_by_ranges_verified_whole_and_open_files_keep_their_version() {
    use std::os::unix::fs::FileExt as _;
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    // Past the 64 MiB at which W&B entries are fetched by 16 MiB ranges: five of them.
    let big_len = 65 << 20;
    let mut v0 = Files::new();
    v0.insert("big.bin".into(), bytes(21, big_len));
    v0.insert("small.txt".into(), b"version zero\n".to_vec());
    let mut v1 = Files::new();
    v1.insert("big.bin".into(), bytes(22, big_len));
    v1.insert("small.txt".into(), b"version one\n".to_vec());
    for (i, (files, aliases)) in [(&v0, "best"), (&v1, "")].into_iter().enumerate() {
        let dir = env.path(&format!("src{i}"));
        write_tree(&dir, files);
        sdk_log(&env, &server, &key, &format!("log{i}"), &dir, aliases);
    }
    let url = server.url();
    let mnt = env.path("mnt");
    let mut cmd = reader(&env, &url, &key, &[]);
    cmd.env_remove("ARTFS_REGISTRY");
    let m = crate::util::mount_with(
        cmd,
        &["--registry", &url, "--refresh-secs", "1", mnt.to_str().unwrap()],
    );

    // The large file: every byte right, fetched as five ranged GETs, not one.
    assert!(std::fs::read(m.join("acme/bikes/ds:v0/big.bin")).unwrap() == v0["big.bin"]);
    assert_eq!(gets_of(&server, &v0["big.bin"]), 5, "not fetched by 16 MiB ranges");

    // Changed on the server (same size, one byte in the middle): not a byte is served, not
    // even the first page, which is right; the whole file is verified first (at open, where
    // the mount fetches files that have no chunk sums).
    let blob = blob_file(&env, &v1["big.bin"]);
    let mut perms = std::fs::metadata(&blob).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&blob, perms).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&blob).unwrap();
    file.write_all_at(&[!v1["big.bin"][big_len / 2]], (big_len / 2) as u64).unwrap();
    drop(file);
    let err = std::fs::File::open(m.join("acme/bikes/ds:v1/big.bin"))
        .and_then(|f| f.read_at(&mut [0u8; 4096], 0))
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");

    // A file open through `ds:best` stays on v0 while the SDK moves `best` to v1.
    let open = std::fs::File::open(m.join("acme/bikes/ds:best/small.txt")).unwrap();
    let vars = [("FLOW_OP", "alias"), ("FLOW_ARTIFACT", "ds:v1"), ("FLOW_ALIAS", "best")];
    run_flow(&env, &server, &key, "wandb_source.py", "alias", &vars);
    let link = m.join("acme/bikes/ds:best");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_link(&link).unwrap() != Path::new("ds:v1") {
        assert!(Instant::now() < deadline, "the alias never moved in the mount");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Past two refresh intervals, the old handle still reads the old version ...
    std::thread::sleep(Duration::from_secs(2));
    let mut old = vec![0u8; 64];
    let n = open.read_at(&mut old, 0).unwrap();
    assert_eq!(&old[..n], v0["small.txt"].as_slice());
    // ... and a new open of the alias reads the new one.
    assert_eq!(std::fs::read(link.join("small.txt")).unwrap(), v1["small.txt"]);
}

#[test]
fn wandb_artifact_references_read_their_target_entry_and_a_deleted_target_is_eio() {
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    let target = tree(7);
    let d0 = env.path("src0");
    write_tree(&d0, &target);
    sdk_log(&env, &server, &key, "log0", &d0, "");
    let mut gone = Files::new();
    gone.insert("g.txt".into(), b"soon deleted\n".to_vec());
    let dg = env.path("gone");
    write_tree(&dg, &gone);
    let vars = [("FLOW_OP", "log"), ("FLOW_ARTIFACT", "gone"), ("FLOW_DIR", dg.to_str().unwrap())];
    run_flow(&env, &server, &key, "wandb_source.py", "log-gone", &vars);
    let mut own = Files::new();
    own.insert("own.txt".into(), b"stored here\n".to_vec());
    let d_own = env.path("own");
    write_tree(&d_own, &own);

    // The SDK writes `add_reference(used.get_entry(p))` as wandb-artifact://<hex id>/p.
    let vars = [
        ("FLOW_OP", "ref"),
        ("FLOW_TARGET", "ds:v0"),
        ("FLOW_PATHS", "a.bin,d/b.txt"),
        ("FLOW_ARTIFACT", "refds"),
        ("FLOW_DIR", d_own.to_str().unwrap()),
    ];
    let (logged, _) = run_flow(&env, &server, &key, "wandb_source.py", "ref", &vars);
    for p in ["ref/a.bin", "ref/d/b.txt"] {
        let r = logged["refs"][p].as_str().unwrap_or_default();
        assert!(r.starts_with("wandb-artifact://") && r.ends_with(&p[4..]), "{p}: {logged}");
    }
    let vars = [
        ("FLOW_OP", "ref"),
        ("FLOW_TARGET", "gone:v0"),
        ("FLOW_PATHS", "g.txt"),
        ("FLOW_ARTIFACT", "refgone"),
    ];
    let (logged, _) = run_flow(&env, &server, &key, "wandb_source.py", "ref-gone", &vars);
    let r = logged["refs"]["ref/g.txt"].as_str().unwrap_or_default();
    assert!(r.starts_with("wandb-artifact://"), "{logged}");
    let vars = [("FLOW_OP", "delete"), ("FLOW_ARTIFACT", "gone:v0")];
    run_flow(&env, &server, &key, "wandb_source.py", "delete", &vars);

    let mut want = own.clone();
    want.insert("ref/a.bin".into(), target["a.bin"].clone());
    want.insert("ref/d/b.txt".into(), target["d/b.txt"].clone());
    let url = server.url();
    let got = env.path("got");
    ok(reader(
        &env,
        &url,
        &key,
        &["-q", "get", "acme/bikes/refds:v0", "--root", got.to_str().unwrap()],
    ));
    assert_eq!(read_tree(&got), want);

    // A target the server no longer has: a clear `get` error, EIO in the mount, no bytes.
    let bad = env.path("bad");
    let get = ["get", "acme/bikes/refgone:v0", "--root", bad.to_str().unwrap()];
    let err = fails(reader(&env, &url, &key, &get));
    assert!(err.contains("ref/g.txt") && err.contains("wandb-artifact://"), "{err}");
    assert!(!bad.join("ref/g.txt").exists());

    let mnt = env.path("mnt");
    let mut cmd = reader(&env, &url, &key, &[]);
    cmd.env_remove("ARTFS_REGISTRY");
    // A fresh cache: the mount fetches the targets itself.
    cmd.env("ARTFS_CACHE_DIR", env.path("mount-cache"));
    let m = crate::util::mount_with(cmd, &["--registry", &url, mnt.to_str().unwrap()]);
    assert_eq!(read_tree(&m.join("acme/bikes/refds:v0")), want);
    let err = std::fs::read(m.join("acme/bikes/refgone:v0/ref/g.txt")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    drop(m);
}
