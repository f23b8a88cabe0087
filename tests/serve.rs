//! `artfs serve` driven by the real `wandb` SDK 0.31 (`$ARTFS_WANDB_PYTHON`), with the flow
//! scripts in `tests/serve/*.py`, plus raw HTTP for auth and bad input.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::util::{Env, read_tree, write_tree};

fn python() -> String {
    std::env::var("ARTFS_WANDB_PYTHON").expect(
        "ARTFS_WANDB_PYTHON must name a Python with wandb==0.31.0 installed \
         (eval \"$(scripts/test-services.sh env)\" sets it)",
    )
}

fn scripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/serve")
}

/// A running `artfs serve` on 127.0.0.1:0 over the env's registry; killed on drop.
pub struct Server {
    child: Child,
    pub addr: String,
    /// `http` or `https`.
    pub scheme: String,
    pub log: PathBuf,
}

impl Server {
    pub fn start(env: &Env, extra: &[&str]) -> Server {
        Server::start_logging_to(env, extra, "serve.log")
    }

    pub fn start_logging_to(env: &Env, extra: &[&str], log_name: &str) -> Server {
        Server::spawn(env.cmd(), extra, env.path(log_name))
    }

    /// `cmd` (an `artfs` command line, so far without arguments) run as `serve`.
    pub fn spawn(mut cmd: Command, extra: &[&str], log: PathBuf) -> Server {
        cmd.env("ARTFS_LOG", "artfs=debug");
        Server::spawn_as_is(cmd, extra, log)
    }

    /// As `spawn`, with `cmd`'s environment as it is (an operator's: no `ARTFS_LOG`).
    pub fn spawn_as_is(mut cmd: Command, extra: &[&str], log: PathBuf) -> Server {
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let (scheme, addr) = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|u| u.split_once("://"))
            .unwrap_or_else(|| panic!("first line of artfs serve: {line:?}"));
        let (scheme, addr) = (scheme.to_owned(), addr.to_owned());
        Server { child, addr, scheme, log }
    }

    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn create_key(env: &Env, args: &[&str]) -> String {
    let mut full = vec!["-q", "key", "create"];
    full.extend(args);
    env.ok(&full).trim().to_owned()
}

/// Runs one flow script with the SDK pointed at `server`; its files live in `<env>/flow-<tag>`.
/// Returns the script's FLOW-RESULT JSON and that directory.
pub fn run_flow(
    env: &Env,
    server: &Server,
    key: &str,
    script: &str,
    tag: &str,
    vars: &[(&str, &str)],
) -> (serde_json::Value, PathBuf) {
    let t = env.path(&format!("flow-{tag}"));
    std::fs::create_dir_all(t.join("wandb")).unwrap();
    let mut cmd = Command::new(python());
    cmd.arg(scripts_dir().join(script))
        .current_dir(&t)
        .env("WANDB_BASE_URL", server.url())
        .env("WANDB_API_KEY", key)
        .env("WANDB_MODE", "online")
        .env("WANDB_SILENT", "true")
        .env("WANDB_DIR", t.join("wandb"))
        .env("WANDB_CACHE_DIR", t.join("cache"))
        .env("WANDB_DATA_DIR", t.join("data"))
        .env("WANDB_CONFIG_DIR", t.join("config"))
        .env("WANDB_ARTIFACT_DIR", t.join("artifacts"))
        .env("WANDB_DISABLE_GIT", "true")
        .env("NETRC", t.join("netrc"))
        .env("PYTHONPATH", scripts_dir())
        .env("FLOW_ENTITY", "acme")
        .env("FLOW_PROJECT", "bikes")
        .env("FLOW_TMP", &t)
        .env_remove("WANDB_ENTITY")
        .env_remove("WANDB_PROJECT");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "flow {script} failed ({}):\n{stdout}\n{stderr}\n--- server log (tail) ---\n{}",
        out.status,
        tail(&server.log_text(), 40)
    );
    let result = stdout
        .lines()
        .find_map(|l| l.strip_prefix("FLOW-RESULT "))
        .unwrap_or_else(|| panic!("flow {script} printed no result:\n{stdout}\n{stderr}"));
    (serde_json::from_str(result).unwrap(), t)
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// One HTTP/1.1 request over a fresh connection: (status, body).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    // Generous: only a hung server trips it.
    s.set_read_timeout(Some(std::time::Duration::from_secs(120))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn basic(key: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("api:{key}")))
}

/// A GraphQL request with `key`; returns the JSON answer (asserting HTTP 200).
pub fn gql(server: &Server, key: &str, query: &str, vars: serde_json::Value) -> serde_json::Value {
    let body = serde_json::json!({"query": query, "variables": vars}).to_string();
    let auth = basic(key);
    let (status, text) = http(
        &server.addr,
        "POST",
        "/graphql",
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn same_tree(a: &Path, b: &Path) {
    let (ta, tb) = (read_tree(a), read_tree(b));
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    assert!(ta == tb, "{} and {} differ in content", a.display(), b.display());
}

#[test]
fn sdk_flows_and_the_round_trip_to_artfs() {
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);

    // F1 + F2: runs and log_artifact (files, dirs, new_file, references, aliases, dedup).
    let (f2, f2_dir) = run_flow(&env, &server, &key, "f2_log.py", "f2", &[]);
    let versions = env.json(&["versions", "acme/bikes/bikes"]);
    let list = versions.as_array().unwrap();
    assert_eq!(list.len(), 2, "{versions}");
    let v0 = env.json(&["show", "acme/bikes/bikes:v0", "--files"]);
    assert_eq!(v0["digest"], f2["digest"], "artfs sees the digest the SDK computed");
    assert_eq!(v0["description"], "F2 test");
    let mut aliases: Vec<String> =
        v0["aliases"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect();
    aliases.sort();
    assert_eq!(aliases, ["again", "best"]);
    assert_eq!(env.json(&["show", "acme/bikes/bikes:latest"])["digest"], f2["v1_digest"]);
    // The run was recorded in the registry: its log and what it streamed.
    let run = f2["run"].as_str().unwrap();
    let run_dir = env.registry_dir().join(format!("runs/acme/bikes/{run}"));
    assert!(run_dir.join("commits").read_dir().unwrap().count() >= 3, "upserts + lineage");
    assert!(run_dir.join("stream").read_dir().unwrap().count() >= 1, "file_stream kept");
    assert!(run_dir.join("files").read_dir().unwrap().count() >= 1, "run files kept");

    // F3 + F6: use, download, get_path, get_entry (/artifactsV2), the public API.
    let (f3, f3_dir) = run_flow(&env, &server, &key, "f3_use.py", "f3", &[]);
    assert_eq!(env.json(&["show", "acme/bikes/flowers:prod"])["digest"], f3["digest"]);
    // What the SDK logged reads byte-identically through `artfs get` and `artfs mount`.
    let got = env.path("got");
    // The flow logs a file:// reference below its own folder, which the reader must allow.
    let refs = f3_dir.to_str().unwrap();
    env.ok(&[
        "-q",
        "get",
        "acme/bikes/flowers:v0",
        "--root",
        got.to_str().unwrap(),
        "--allow-file-refs",
        refs,
    ]);
    same_tree(&got, &f3_dir.join("dl"));
    let mnt = env.path("mnt");
    let m = env.mount(&["--allow-file-refs", refs, "acme/bikes/flowers:v0", mnt.to_str().unwrap()]);
    same_tree(&m.join(""), &f3_dir.join("dl"));
    drop(m);

    // F4 + F6 edits and deletes; F7 the wandb CLI.
    run_flow(&env, &server, &key, "f4_edit.py", "f4", &[]);
    assert!(env.json(&["versions", "acme/bikes/model"]).as_array().unwrap().is_empty());
    run_flow(&env, &server, &key, "f7_cli.py", "f7", &[]);
    assert_eq!(env.json(&["show", "acme/bikes/cli-data:cli-alias"])["description"], "from the CLI");

    // F5.inc: an incremental artifact is its base with the new and changed files laid over it.
    let (inc, inc_dir) = run_flow(&env, &server, &key, "incremental.py", "inc", &[]);
    let v1 = env.json(&["show", "acme/bikes/inc:v1", "--files"]);
    assert_eq!(
        (v1["digest"].as_str(), v1["file_count"].as_u64()),
        (inc["digest"].as_str(), Some(3))
    );
    // Its digest is the digest of the whole tree: `artfs log` of that tree makes no new version.
    let whole = env.path("inc-whole");
    write_tree(&whole, &read_tree(&inc_dir.join("dl")));
    let relog = env.json(&["log", "acme/bikes/inc", whole.to_str().unwrap()]);
    assert_eq!((relog["version"].as_str(), relog["created"].as_bool()), (Some("v1"), Some(false)));

    // The reverse: what `artfs log` writes, the SDK uses and downloads, digest for digest.
    cli_log_used_through(&env, &[(&server, "reverse")], &key, 1);

    // No key or secret in the server's log.
    let log = server.log_text();
    assert!(log.contains("POST /graphql"), "the log is the debug log: {}", tail(&log, 5));
    assert!(!log.contains(&key[6..]), "the API key appears in the server log");
    let secret =
        std::fs::read_to_string(env.registry_dir().join("serve/url-signing-secret")).unwrap();
    assert!(!log.contains(secret.trim()), "the signing secret appears in the server log");
    assert!(!log.contains("sig="), "a URL signature appears in the server log");
    let _ = f2_dir;
}

pub const CREATE: &str = "mutation($input: CreateArtifactInput!) { createArtifact(input: $input) { artifact { id state } } }";
pub const FILES: &str = "mutation($input: CreateArtifactFilesInput!) { createArtifactFiles(input: $input) { files { edges { node { uploadUrl artifact { id } } } } } }";
const MANIFEST: &str = "mutation($id: ID!) { createArtifactManifest(input: {artifactID: $id, name: \"wandb_manifest.json\", digest: \"\", entityName: \"acme\", projectName: \"bikes\", runName: \"r\", type: FULL}) { artifactManifest { id file { uploadUrl } } } }";
const COMMIT: &str =
    "mutation($id: ID!) { commitArtifact(input: {artifactID: $id}) { artifact { id } } }";

pub fn create_input(entity: &str, name: &str) -> serde_json::Value {
    serde_json::json!({"input": {"entityName": entity, "projectName": "bikes",
        "artifactTypeName": "dataset", "artifactCollectionName": name, "digest": "d0",
        "aliases": [{"alias": "latest", "artifactCollectionName": name}], "runName": null,
        "clientID": null, "metadata": null, "description": null}})
}

fn md5_b64(data: &[u8]) -> String {
    use base64::Engine;
    use md5::Digest;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(data))
}

pub fn file_spec(id: &str, name: &str, data: &[u8]) -> serde_json::Value {
    serde_json::json!({"input": {"artifactFiles": [{"artifactID": id, "artifactManifestID": null,
        "name": name, "md5": md5_b64(data), "digest": md5_b64(data), "mimetype": null,
        "uploadPartsInput": null}], "storageLayout": "V2", "digestAlgorithm": "MANIFEST_MD5"}})
}

/// `http://addr/path?query` → `/path?query`.
pub fn path_of(url: &str, server: &Server) -> String {
    url.strip_prefix(&server.url()).unwrap_or_else(|| panic!("{url}")).to_owned()
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one end-to-end session against a real server: each step needs the state the previous one left"
)]
fn keys_entities_signed_urls_and_bad_input() {
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let rw = create_key(&env, &["ana", "--entities", "acme"]);
    let ro = create_key(&env, &["rita", "--entities", "acme", "--read-only"]);
    let other = create_key(&env, &["olga", "--entities", "globex"]);
    let addr = server.addr.clone();

    // Health needs no key; everything else does: no key or a wrong key is a bare 401.
    assert_eq!(http(&addr, "GET", "/healthz", &[], b"").0, 200);
    let viewer = br#"{"query": "{ viewer { entity } }"}"#;
    let (status, body) = http(&addr, "POST", "/graphql", &[], viewer);
    assert_eq!(status, 401);
    assert!(!body.contains("data"), "{body}");
    let wrong = basic("artfs-0000000000000000000000000000000000000000000000");
    assert_eq!(http(&addr, "POST", "/graphql", &[("Authorization", &wrong)], viewer).0, 401);
    assert_eq!(http(&addr, "POST", "/files/acme/bikes/r1/file_stream", &[], b"{}").0, 401);
    assert_eq!(http(&addr, "GET", "/artifactsV2/default/acme/bikes/x/a/b/c", &[], b"").0, 401);
    let v = gql(&server, &rw, "{ viewer { entity username } }", serde_json::json!({}));
    assert_eq!(v["data"]["viewer"]["entity"], "acme");

    // A read-only key cannot write; another entity's key cannot write here either.
    let r = gql(&server, &ro, CREATE, create_input("acme", "raw"));
    assert!(r["errors"][0]["message"].as_str().unwrap().contains("read-only"), "{r}");
    assert_eq!(r["errors"][0]["extensions"]["code"], "FORBIDDEN", "{r}");
    let r = gql(&server, &other, CREATE, create_input("acme", "raw"));
    assert!(r["errors"][0]["message"].as_str().unwrap().contains("may not write"), "{r}");
    assert_eq!(r["errors"][0]["extensions"]["code"], "FORBIDDEN", "{r}");
    // An artifact that does not exist is NOT_FOUND, as is one of another entity.
    let r = gql(&server, &rw, COMMIT, serde_json::json!({"id": "QXJ0aWZhY3Q6bm9uZQ=="}));
    assert!(r["errors"][0]["message"].as_str().unwrap().contains("not found"), "{r}");
    assert_eq!(r["errors"][0]["extensions"]["code"], "NOT_FOUND", "{r}");

    // A pending version: invisible, needs its manifest and its verified files to commit.
    let r = gql(&server, &rw, CREATE, create_input("acme", "raw"));
    assert_eq!(r["data"]["createArtifact"]["artifact"]["state"], "PENDING", "{r}");
    let id = r["data"]["createArtifact"]["artifact"]["id"].as_str().unwrap().to_owned();
    let r = gql(&server, &rw, COMMIT, serde_json::json!({"id": id}));
    assert!(r["errors"][0]["message"].as_str().unwrap().contains("manifest was never uploaded"));
    assert_eq!(r["errors"][0]["extensions"]["code"], "CONFLICT", "{r}");
    let r = gql(&server, &other, COMMIT, serde_json::json!({"id": id}));
    assert_eq!(r["errors"][0]["extensions"]["code"], "NOT_FOUND", "{r}");
    let data = b"hello bytes".to_vec();
    let r = gql(&server, &rw, FILES, file_spec(&id, "a.txt", &data));
    let url = r["data"]["createArtifactFiles"]["files"]["edges"][0]["node"]["uploadUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned();
    let put = path_of(&url, &server);
    // Bytes that do not match the declared MD5 are refused and nothing is stored.
    let (status, body) = http(&addr, "PUT", &put, &[], b"other bytes");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("MD5"), "{body}");
    let blob =
        env.registry_dir().join("blobs/md5").join(&hex_of(&data)[..2]).join(&hex_of(&data)[2..]);
    assert!(!blob.exists());
    // An altered signature, or a URL used for another object or method, is refused.
    let altered =
        format!("{}{}", &put[..put.len() - 1], if put.ends_with('0') { '1' } else { '0' });
    assert_eq!(http(&addr, "PUT", &altered, &[], &data).0, 403);
    assert_eq!(http(&addr, "GET", &put, &[], b"").0, 403);
    let unsigned = put.split('?').next().unwrap();
    assert_eq!(http(&addr, "PUT", unsigned, &[], &data).0, 403);
    assert_eq!(http(&addr, "PUT", &put, &[], &data).0, 200);
    assert!(blob.exists());

    // A manifest naming a file that was never uploaded cannot be committed.
    let manifest = serde_json::json!({"version": 1, "storagePolicy": "wandb-storage-policy-v1",
        "storagePolicyConfig": {"storageLayout": "V2"}, "contents": {
            "a.txt": {"digest": md5_b64(&data), "size": data.len()},
            "missing.txt": {"digest": md5_b64(b"never sent"), "size": 10}}});
    let r = gql(&server, &rw, MANIFEST, serde_json::json!({"id": id}));
    let murl = r["data"]["createArtifactManifest"]["artifactManifest"]["file"]["uploadUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned();
    let mput = path_of(&murl, &server);
    assert_eq!(http(&addr, "PUT", &mput, &[], b"{not json").0, 400);
    let evil = serde_json::json!({"version": 1, "contents": {"../evil": {"digest": md5_b64(&data), "size": 1}}});
    assert_eq!(http(&addr, "PUT", &mput, &[], evil.to_string().as_bytes()).0, 400);
    assert_eq!(http(&addr, "PUT", &mput, &[], manifest.to_string().as_bytes()).0, 200);
    let r = gql(&server, &rw, COMMIT, serde_json::json!({"id": id}));
    let msg = r["errors"][0]["message"].as_str().unwrap_or_else(|| panic!("{r}"));
    assert!(msg.contains("never uploaded") && msg.contains("missing.txt"), "{msg}");
    assert!(env.json(&["ls", "acme/bikes"]).as_array().unwrap().is_empty(), "nothing published");

    // Path traversal in an entry name is refused.
    let r = gql(&server, &rw, FILES, file_spec(&id, "../../etc/passwd", &data));
    assert!(r["errors"][0]["message"].as_str().is_some(), "{r}");

    // Another entity's artifact looks nonexistent.
    env.ok(&["-q", "log", "acme/bikes/secret", env.registry_dir().join("blobs").to_str().unwrap()]);
    let q = "{ project(entityName: \"acme\", name: \"bikes\") { artifactCollection(name: \"secret\") { name } } }";
    assert_eq!(
        gql(&server, &other, q, serde_json::json!({}))["data"]["project"],
        serde_json::Value::Null
    );
    assert!(
        gql(&server, &rw, q, serde_json::json!({}))["data"]["project"]["artifactCollection"]["name"]
            == "secret"
    );
    let vid = gql(&server, &rw, "{ project(entityName: \"acme\", name: \"bikes\") { artifact(name: \"secret:v0\") { id } } }", serde_json::json!({}))
        ["data"]["project"]["artifact"]["id"].as_str().unwrap().to_owned();
    let by_id = gql(
        &server,
        &other,
        "query($id: ID!) { artifact(id: $id) { id } }",
        serde_json::json!({"id": vid}),
    );
    assert_eq!(by_id["data"]["artifact"], serde_json::Value::Null);
    let auth_other = basic(&other);
    assert_eq!(
        http(
            &addr,
            "POST",
            "/files/acme/bikes/r1/file_stream",
            &[("Authorization", &auth_other)],
            b"{}"
        )
        .0,
        403
    );

    // Bad requests: 4xx or GraphQL errors with a message, never a 5xx.
    let auth = basic(&rw);
    let h = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let (status, body) = http(&addr, "POST", "/graphql", &h, b"{\"query\": ");
    assert_eq!(status, 400, "{body}");
    let r = gql(&server, &rw, "query { viewer { ", serde_json::json!({}));
    assert!(r["errors"][0]["message"].as_str().is_some(), "{r}");
    let r = gql(&server, &rw, "{ serverInfo { nope } }", serde_json::json!({}));
    assert!(
        r["errors"][0]["message"].as_str().unwrap().starts_with("Cannot query field \"nope\""),
        "{r}"
    );
    assert_eq!(r["errors"][0]["extensions"]["code"], "INVALID", "{r}");
    let r = gql(&server, &rw, CREATE, create_input("acme", "bad/name"));
    assert!(r["errors"][0]["message"].as_str().unwrap().contains("invalid artifact name"), "{r}");
    assert_eq!(r["errors"][0]["extensions"]["code"], "INVALID", "{r}");
    // A body over the GraphQL limit is refused with 413 once the limit is crossed.
    let big = 33usize << 20;
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(120))).unwrap();
    write!(s, "POST /graphql HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: {big}\r\nConnection: close\r\n\r\n").unwrap();
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..33 {
        if s.write_all(&chunk).is_err() {
            break; // the server answered and closed: fine
        }
    }
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    let log = server.log_text();
    assert!(!log.contains("panicked"));
    // Each request has one access-log line with its method, path, status and duration (what a
    // handler logs carries the request's span: method and path); never a query string.
    let refused = log
        .lines()
        .any(|l| l.contains("artfs::access: PUT /storage/blob/") && l.contains(" 403 in="));
    assert!(refused, "{}", tail(&log, 20));
    assert!(!log.contains("sig=") && !log.contains("expires="), "a signed URL's query in the log");
}

pub fn hex_of(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

#[test]
fn expired_urls_are_refused() {
    let env = Env::new();
    let server = Server::start(&env, &["--url-ttl", "0s"]);
    let rw = create_key(&env, &["ana", "--entities", "acme"]);
    let r = gql(&server, &rw, CREATE, create_input("acme", "raw"));
    let id = r["data"]["createArtifact"]["artifact"]["id"].as_str().unwrap().to_owned();
    let r = gql(&server, &rw, FILES, file_spec(&id, "a.txt", b"x"));
    let url = r["data"]["createArtifactFiles"]["files"]["edges"][0]["node"]["uploadUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    // Issued with a zero lifetime: once this second is over, the URL is dead.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (status, body) = http(&server.addr, "PUT", &path_of(&url, &server), &[], b"x");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("expired"), "{body}");
}

#[test]
fn eight_sdk_writers_make_eight_dense_versions() {
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    let results: Vec<serde_json::Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (env, server, key) = (&env, &server, &key);
                s.spawn(move || {
                    let seed = i.to_string();
                    let tag = format!("w{i}");
                    let vars = [("FLOW_ARTIFACT", "shared"), ("FLOW_SEED", seed.as_str())];
                    run_flow(env, server, key, "log_one.py", &tag, &vars).0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut got: Vec<String> =
        results.iter().map(|r| r["version"].as_str().unwrap().to_owned()).collect();
    got.sort_by_key(|v| v[1..].parse::<u32>().unwrap());
    assert_eq!(got, (0..8).map(|i| format!("v{i}")).collect::<Vec<_>>());
    let versions = env.json(&["versions", "acme/bikes/shared"]);
    let mut digests: Vec<&str> =
        versions.as_array().unwrap().iter().map(|v| v["digest"].as_str().unwrap()).collect();
    let mut want: Vec<&str> = results.iter().map(|r| r["digest"].as_str().unwrap()).collect();
    digests.sort();
    want.sort();
    assert_eq!(digests, want, "each writer's content is one version");
}

/// Flow `script` run with the SDK pointed at `server`, its files in `t`, in its own session so
/// that killing the session (`kill -- -PID`) takes wandb-core, its child, too.
pub fn sdk_in_own_session(server: &Server, key: &str, script: &str, t: &Path) -> Command {
    std::fs::create_dir_all(t.join("wandb")).unwrap();
    let mut cmd = Command::new("setsid");
    cmd.arg(python()).arg(scripts_dir().join(script)).current_dir(t);
    for (k, v) in [
        ("WANDB_BASE_URL", server.url()),
        ("WANDB_API_KEY", key.to_owned()),
        ("WANDB_MODE", "online".into()),
        ("WANDB_SILENT", "true".into()),
        ("WANDB_DIR", t.join("wandb").display().to_string()),
        ("WANDB_CACHE_DIR", t.join("cache").display().to_string()),
        ("WANDB_DATA_DIR", t.join("data").display().to_string()),
        ("WANDB_CONFIG_DIR", t.join("config").display().to_string()),
        ("WANDB_DISABLE_GIT", "true".into()),
        ("NETRC", t.join("netrc").display().to_string()),
        ("PYTHONPATH", scripts_dir().display().to_string()),
        ("FLOW_ENTITY", "acme".into()),
        ("FLOW_PROJECT", "bikes".into()),
        ("FLOW_TMP", t.display().to_string()),
    ] {
        cmd.env(k, v);
    }
    cmd
}

#[test]
fn an_sdk_writer_killed_mid_upload_leaves_no_version() {
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    let t = env.path("flow-killed");
    let mut cmd = sdk_in_own_session(&server, &key, "log_one.py", &t);
    cmd.env("FLOW_ARTIFACT", "killed").env("FLOW_SEED", "1");
    cmd.env("FLOW_SIZE", (400u64 << 20).to_string());
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // The upload is under way once its temporary blob file appears in the registry.
    let blobs = env.registry_dir().join("blobs");
    // Generous: the SDK first writes and hashes 400 MiB, on a machine busy with other tests.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while !walkdir::WalkDir::new(&blobs).into_iter().filter_map(Result::ok).any(|e| {
        e.file_name().to_string_lossy().contains('#')
            && e.metadata().map(|m| m.len() > 0).unwrap_or(false)
    }) {
        assert!(std::time::Instant::now() < deadline, "the upload never started");
        assert!(child.try_wait().unwrap().is_none(), "the SDK exited before uploading");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status().unwrap();
    let _ = child.wait();
    // Nothing is visible: no version, and the collection does not exist.
    assert!(env.json(&["ls", "acme/bikes"]).as_array().unwrap().is_empty());
    assert!(env.fails(&["show", "acme/bikes/killed"]).contains("not found"));
    assert!(!env.registry_dir().join("collections/acme/bikes/killed").exists());
}

/// The S3 registry both ways (SDK → artfs get/mount, artfs log → SDK) and two servers agreeing.
#[test]
fn two_servers_over_one_s3_registry_agree() {
    let Some(env) = Env::in_new_s3_bucket("serve") else { return };
    let a = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    // Logged, used and downloaded through server A, on S3.
    let (f3, f3_dir) = run_flow(&env, &a, &key, "f3_use.py", "f3", &[]);
    // Server B (a second process over the same bucket) sees the same version, digest and bytes.
    let b = Server::start_logging_to(&env, &[], "serve-b.log");
    let digest = f3["digest"].as_str().unwrap().to_owned();
    let expect = f3_dir.join("dl");
    let vars = [
        ("FLOW_ARTIFACT", "acme/bikes/flowers:prod"),
        ("FLOW_DIGEST", digest.as_str()),
        ("FLOW_EXPECT_DIR", expect.to_str().unwrap()),
    ];
    let (used, _) = run_flow(&env, &b, &key, "use_logged.py", "via-b", &vars);
    assert_eq!(used["version"], "v0");
    // Writers on both servers at once still give dense versions.
    log_through_both(&env, [&a, &b], &key);
    let versions = env.json(&["versions", "acme/bikes/both"]);
    let names: Vec<&str> =
        versions.as_array().unwrap().iter().map(|v| v["version"].as_str().unwrap()).collect();
    assert_eq!(names, ["v0", "v1"]);
    // And the CLI reads what the SDK wrote, byte for byte.
    let got = env.path("got");
    let refs = env.path("flow-f3");
    env.ok(&[
        "-q",
        "get",
        "acme/bikes/flowers:v0",
        "--root",
        got.to_str().unwrap(),
        "--allow-file-refs",
        refs.to_str().unwrap(),
    ]);
    same_tree(&got, &expect);
    // ... and through the mount, from the bucket.
    env.ok(&["cache", "clear"]);
    let mnt = env.path("mnt");
    let m = env.mount(&[
        "--allow-file-refs",
        refs.to_str().unwrap(),
        "acme/bikes/flowers:v0",
        mnt.to_str().unwrap(),
    ]);
    same_tree(&m.join(""), &expect);
    drop(m);
    // The reverse on S3: what `artfs log` writes to the bucket, the SDK uses and downloads
    // through either server.
    cli_log_used_through(&env, &[(&a, "reverse-a"), (&b, "reverse-b")], &key, 3);
}

/// One log through each server at the same time, into the same collection.
fn log_through_both(env: &Env, [a, b]: [&Server; 2], key: &str) {
    std::thread::scope(|s| {
        let ha = s.spawn(|| {
            let vars = [("FLOW_ARTIFACT", "both"), ("FLOW_SEED", "1")];
            run_flow(env, a, key, "log_one.py", "wa", &vars)
        });
        let hb = s.spawn(|| {
            let vars = [("FLOW_ARTIFACT", "both"), ("FLOW_SEED", "2")];
            run_flow(env, b, key, "log_one.py", "wb", &vars)
        });
        ha.join().unwrap();
        hb.join().unwrap();
    });
}

/// What `artfs log` writes, the SDK uses and downloads through each server (tagged), digest for
/// digest.
fn cli_log_used_through(env: &Env, servers: &[(&Server, &str)], key: &str, seed: u64) {
    let src = env.path("cli-src");
    let mut files = crate::util::Files::new();
    files.insert("a.bin".into(), crate::util::bytes(seed, 300_000));
    files.insert("d/b.txt".into(), b"bee\n".to_vec());
    files.insert("d/e/empty".into(), Vec::new());
    write_tree(&src, &files);
    let logged = env.json(&["log", "acme/bikes/from-artfs", src.to_str().unwrap()]);
    let digest = logged["digest"].as_str().unwrap().to_owned();
    for &(server, tag) in servers {
        let vars = [
            ("FLOW_ARTIFACT", "acme/bikes/from-artfs:latest"),
            ("FLOW_DIGEST", digest.as_str()),
            ("FLOW_EXPECT_DIR", src.to_str().unwrap()),
        ];
        let (used, _) = run_flow(env, server, key, "use_logged.py", tag, &vars);
        assert_eq!(used["version"], "v0");
    }
}

#[test]
fn a_file_of_two_gib_goes_up_in_parts() {
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    let (big, dir) = run_flow(&env, &server, &key, "big_file.py", "big", &[]);
    // wandb-core sent it in parts (it does from 2 GiB on); the registry holds it whole.
    assert!(server.log_text().contains("PUT /storage/part/"), "no multipart upload happened");
    let show = env.json(&["show", "acme/bikes/big:v0", "--files"]);
    assert_eq!(show["file_count"], 1, "{show}");
    let md5 = big["md5"].as_str().unwrap();
    let blob = env.registry_dir().join("blobs/md5").join(&md5[..2]).join(&md5[2..]);
    assert_eq!(std::fs::metadata(&blob).unwrap().len(), (2u64 << 30) + (5 << 20));
    assert!(
        !env.registry_dir().join("uploads").exists()
            || std::fs::read_dir(env.registry_dir().join("uploads"))
                .unwrap()
                .all(|d| std::fs::read_dir(d.unwrap().path()).unwrap().next().is_none()),
        "parts are removed once joined"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Removes a directory outside the test's temp dir (nginx's root) when the test ends, passed or not.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Puts `body` at `bucket/key` on the local S3 server.
fn s3_put(endpoint: &str, bucket: &str, key: &str, body: &[u8], tmp: &Path) {
    let file = tmp.join(format!("put-{}", fastrand::u64(..)));
    std::fs::write(&file, body).unwrap();
    let data = format!("@{}", file.display());
    crate::util::curl(&[
        "-X",
        "PUT",
        "--data-binary",
        &data,
        &format!("{endpoint}/{bucket}/{key}"),
    ]);
}

/// Puts `body` at `bucket/key` on fake-gcs (JSON API upload).
fn gcs_put(endpoint: &str, bucket: &str, key: &str, body: &[u8], tmp: &Path) {
    let file = tmp.join(format!("put-{}", fastrand::u64(..)));
    std::fs::write(&file, body).unwrap();
    let data = format!("@{}", file.display());
    let enc: String = url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
    let url = format!("{endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={enc}");
    let ty = "Content-Type: application/octet-stream";
    crate::util::curl(&["-X", "POST", "-H", ty, "--data-binary", &data, &url]);
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one end-to-end session against a real server: each step needs the state the previous one left"
)]
fn sdk_references_to_s3_http_gs_and_files_read_back_everywhere() {
    let (Some(s3), Ok(gcs), Ok(http_root), Ok(http_url)) = (
        crate::util::s3_vars(),
        std::env::var("ARTFS_TEST_GCS_ENDPOINT"),
        std::env::var("ARTFS_TEST_HTTP_ROOT"),
        std::env::var("ARTFS_TEST_HTTP_URL"),
    ) else {
        eprintln!("skipped: the test services are not running (run `make test`)");
        return;
    };
    let s3_endpoint = s3[0].1.clone();
    let mut env = Env::new();
    env.vars = s3.clone();
    env.vars.push(("ARTFS_GCS_ENDPOINT".into(), gcs.clone()));
    // Every target is on 127.0.0.1, which readers refuse unless allowed.
    env.vars.push(("ARTFS_ALLOW_PRIVATE_REFS".into(), "1".into()));
    let bucket = crate::util::unique_bucket("sdkrefs");
    crate::util::create_s3_bucket(&s3_endpoint, &bucket, true);
    crate::util::curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        &format!("{gcs}/storage/v1/b"),
        "-d",
        &format!(r#"{{"name":"{bucket}","versioning":{{"enabled":true}}}}"#),
    ]);
    let http_dir = PathBuf::from(&http_root).join(&bucket);
    let _cleanup = RemoveOnDrop(http_dir.clone());
    let file_dir = env.path("file-refs");
    // What a download must produce, entry by entry.
    let mut want = crate::util::Files::new();
    for scheme in ["s3", "http", "gs", "file"] {
        let mut objects = vec![
            ("one.txt", format!("{scheme}: one, checksummed\n").into_bytes()),
            ("nock.txt", format!("{scheme}: logged without checksum\n").into_bytes()),
        ];
        if scheme == "s3" {
            objects.push(("dir/a.txt", crate::util::bytes(7, 70_000)));
            objects.push(("dir/b.txt", b"s3: b under the prefix\n".to_vec()));
        }
        for (key, body) in objects {
            match scheme {
                "s3" => s3_put(&s3_endpoint, &bucket, key, &body, env.dir.path()),
                "gs" => gcs_put(&gcs, &bucket, key, &body, env.dir.path()),
                "http" => write_tree(&http_dir, &[(key.to_owned(), body.clone())].into()),
                _ => write_tree(&file_dir, &[(key.to_owned(), body.clone())].into()),
            }
            want.insert(format!("{scheme}/{key}"), body);
        }
    }
    let expect = env.path("expect");
    let sdk_want: crate::util::Files = want
        .iter()
        .filter(|(k, _)| !k.ends_with("/nock.txt"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    write_tree(&expect, &sdk_want);
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    let (s3_base, http_base) = (format!("s3://{bucket}"), format!("{http_url}/{bucket}"));
    let (gs_base, file_base) = (format!("gs://{bucket}"), format!("file://{}", file_dir.display()));
    // boto3 and google-cloud-storage reach the local servers through their own variables.
    let vars = [
        ("FLOW_S3", s3_base.as_str()),
        ("FLOW_HTTP", &http_base),
        ("FLOW_GS", &gs_base),
        ("FLOW_FILE", &file_base),
        ("FLOW_EXPECT_DIR", expect.to_str().unwrap()),
        ("AWS_ENDPOINT_URL", &s3_endpoint),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("STORAGE_EMULATOR_HOST", &gcs),
        ("GOOGLE_CLOUD_PROJECT", "artfs-test"),
    ];
    let (out, _) = run_flow(&env, &server, &key, "refs.py", "refs", &vars);
    assert_eq!(out["version"], "v0");
    let show = env.json(&["show", "acme/bikes/refs:v0", "--files"]);
    assert_eq!(show["digest"], out["digest"], "artfs sees the SDK's digest");
    // The flow's second artifact holds the unchecked http reference (see refs.py).
    let mut nock = crate::util::Files::new();
    for scheme in ["s3", "http", "gs", "file"] {
        nock.extend(want.remove_entry(&format!("{scheme}/nock.txt")));
    }
    let names: Vec<String> = want.keys().cloned().collect();
    assert_eq!(out["names"], serde_json::json!(names), "one entry per target object");
    // `artfs get` and the mount read every reference's bytes.
    let refs = file_dir.to_str().unwrap();
    for (name, files) in [("refs", &want), ("refs-nock", &nock)] {
        let got = env.path(&format!("got-{name}"));
        let version = format!("acme/bikes/{name}:v0");
        env.ok(&[
            "-q",
            "get",
            &version,
            "--root",
            got.to_str().unwrap(),
            "--allow-file-refs",
            refs,
        ]);
        assert!(read_tree(&got) == *files, "artfs get {name}: the bytes differ from the targets'");
        env.ok(&["cache", "clear"]);
        let mnt = env.path(&format!("mnt-{name}"));
        let m = env.mount(&["--allow-file-refs", refs, &version, mnt.to_str().unwrap()]);
        assert!(read_tree(&m.join("")) == *files, "mount {name}: the bytes differ");
    }
}

#[test]
fn https_with_a_self_signed_certificate() {
    let env = Env::new();
    let (cert, key) = (env.path("cert.pem"), env.path("key.pem"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
        .args(["-nodes", "-days", "2", "-subj", "/CN=artfs test"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (Debian package openssl) must be installed");
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    // A key that is not PEM fails the start, naming the files; nothing listens.
    let junk = env.path("junk.pem");
    std::fs::write(&junk, "not a key\n").unwrap();
    let (c, j) = (cert.to_str().unwrap(), junk.to_str().unwrap());
    let err = env.fails(&["serve", "--listen", "127.0.0.1:0", "--tls-cert", c, "--tls-key", j]);
    assert!(err.contains("junk.pem") && err.contains("cert.pem"), "{err}");
    assert!(env.fails(&["serve", "--tls-cert", c]).contains("--tls-key"));

    let server = Server::start(&env, &["--tls-cert", c, "--tls-key", key.to_str().unwrap()]);
    assert_eq!(server.scheme, "https");
    let api_key = create_key(&env, &["ana", "--entities", "acme"]);
    // Plain HTTP on the HTTPS port gets no HTTP answer.
    let mut s = std::net::TcpStream::connect(&server.addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(120))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    assert!(!resp.starts_with(b"HTTP/1.1 200"), "plain HTTP was answered");
    // The SDK (Python requests and wandb-core) trusts the certificate through the usual
    // variables, and logs, uses and downloads over https://; the URLs it is handed are https.
    let vars = [("REQUESTS_CA_BUNDLE", c), ("SSL_CERT_FILE", c)];
    let (f3, dir) = run_flow(&env, &server, &api_key, "f3_use.py", "tls", &vars);
    assert_eq!(env.json(&["show", "acme/bikes/flowers:prod"])["digest"], f3["digest"]);
    let log = server.log_text();
    assert!(log.contains("public URL https://"), "{}", tail(&log, 5));
    assert!(log.contains("PUT /storage/blob/"), "no upload logged: {}", tail(&log, 20));
    let got = env.path("got");
    let refs = dir.to_str().unwrap();
    env.ok(&[
        "-q",
        "get",
        "acme/bikes/flowers:v0",
        "--root",
        got.to_str().unwrap(),
        "--allow-file-refs",
        refs,
    ]);
    same_tree(&got, &dir.join("dl"));
    // artfs reads the same server as a W&B source, trusting the self-signed (CA:TRUE)
    // certificate through the same variables as the SDK; without them it refuses it.
    let mut wb = Env::with_registry(&server.url());
    wb.vars = vec![("WANDB_API_KEY".into(), api_key.clone())];
    let err = wb.fails(&["show", "acme/bikes/flowers:v0"]);
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    for var in ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"] {
        wb.vars = vec![("WANDB_API_KEY".into(), api_key.clone()), (var.into(), c.into())];
        let show = wb.json(&["show", "acme/bikes/flowers:v0"]);
        assert_eq!(show["digest"], f3["digest"], "{var}");
    }
}

#[test]
fn xxh128_artifacts_stay_xxh128_and_read_back_everywhere() {
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    let (out, dir) = run_flow(&env, &server, &key, "xxh.py", "xxh", &[]);
    drop(server);
    let show = env.json(&["show", "acme/bikes/fast:v0", "--files"]);
    assert_eq!(show["digest"], out["digest"], "artfs sees the SDK's XXH128 digest");
    // The stored manifest is the SDK's XXH128 one, each entry naming its MD5 blob.
    let manifests: Vec<String> = std::fs::read_dir(env.registry_dir().join("manifests"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(
        manifests.iter().any(|m| m.contains("XXH128") && m.contains("\"md5\"")),
        "{manifests:?}"
    );
    // gc keeps the blobs of XXH128 entries (found by their MD5), and both readers verify them.
    env.ok(&["-q", "gc", "--grace", "0s"]);
    let got = env.path("got");
    env.ok(&["-q", "get", "acme/bikes/fast:v0", "--root", got.to_str().unwrap()]);
    same_tree(&got, &dir.join("src"));
    env.ok(&["cache", "clear"]);
    let m = env.mount(&["acme/bikes/fast:v0", env.path("mnt").to_str().unwrap()]);
    same_tree(&m.join(""), &dir.join("src"));
}
