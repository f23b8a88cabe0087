//! A W&B server whose listing queries fail: the mount finds projects, artifacts and versions by
//! asking for each by name; and a W&B server's default entity is the API key's own.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use crate::serve::{Server, create_key, run_flow};
use crate::util::{Env, Files, mount_with, read_tree, wait_until, write_tree};

/// A GraphQL proxy on 127.0.0.1:0 in front of `artfs serve` that answers the operations named
/// in `refused` with a GraphQL error (as a server without that query does) and forwards the
/// rest, one request per connection; counts the refusals.
struct Refusing {
    url: String,
    refused: Arc<Mutex<Vec<&'static str>>>,
    refusals: Arc<Mutex<Vec<String>>>,
}

impl Refusing {
    fn start(upstream: &str, refused: &[&'static str]) -> Refusing {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let refused = Arc::new(Mutex::new(refused.to_vec()));
        let refusals: Arc<Mutex<Vec<String>>> = Arc::default();
        let (upstream, r, log) = (upstream.to_owned(), refused.clone(), refusals.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, r, log) = (upstream.clone(), r.clone(), log.clone());
                std::thread::spawn(move || {
                    let _ = forward_one(client, &upstream, &r, &log);
                });
            }
        });
        Refusing { url, refused, refusals }
    }

    fn refuse(&self, operations: &[&'static str]) {
        *self.refused.lock().unwrap() = operations.to_vec();
    }

    fn refused(&self, operation: &str) -> usize {
        self.refusals.lock().unwrap().iter().filter(|o| *o == operation).count()
    }
}

/// One request from `client`: refused, or sent upstream with `connection: close` and the
/// answer passed back with `connection: close`, so that no connection is reused.
fn forward_one(
    client: TcpStream,
    upstream: &str,
    refused: &Mutex<Vec<&'static str>>,
    refusals: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            break;
        }
        if !lower.starts_with("connection:") {
            head.push(line);
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let text = String::from_utf8_lossy(&body);
    let operation = refused
        .lock()
        .unwrap()
        .iter()
        .find(|op| text.contains(&format!("\"operationName\":\"{op}\"")))
        .copied();
    let mut client = client;
    if let Some(op) = operation {
        refusals.lock().unwrap().push(op.to_owned());
        let answer = format!(
            "{{\"errors\":[{{\"message\":\"Cannot query field for {op} on type Query.\"}}],\"data\":null}}"
        );
        return write!(
            client,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
            answer.len()
        );
    }
    let mut server = TcpStream::connect(upstream)?;
    server.write_all(head.concat().as_bytes())?;
    server.write_all(b"connection: close\r\n\r\n")?;
    server.write_all(&body)?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer)?;
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").map_or(answer.len(), |p| p + 2);
    let head = String::from_utf8_lossy(&answer[..split]);
    let kept: String = head
        .split_inclusive("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    client.write_all(kept.as_bytes())?;
    client.write_all(b"connection: close\r\n")?;
    client.write_all(&answer[split..])
}

fn tree(seed: u64) -> Files {
    let mut files = Files::new();
    files.insert("a.bin".into(), crate::util::bytes(seed, 100_000));
    files.insert("d/b.txt".into(), format!("bee {seed}\n").into_bytes());
    files
}

/// Logs `files` as `ds` into `entity/bikes` with the SDK.
fn sdk_log(env: &Env, server: &Server, key: &str, entity: &str, files: &Files, aliases: &str) {
    let tag = format!("log-{entity}-{}", fastrand::u32(..));
    let dir = env.path(&tag);
    write_tree(&dir, files);
    let vars = [
        ("FLOW_OP", "log"),
        ("FLOW_ARTIFACT", "ds"),
        ("FLOW_DIR", dir.to_str().unwrap()),
        ("FLOW_ALIASES", aliases),
        ("FLOW_ENTITY", entity),
    ];
    run_flow(env, server, key, "wandb_source.py", &tag, &vars);
}

/// `artfs ARGS` reading the W&B server at `url` with `key`, with its own cache.
fn reader(env: &Env, url: &str, key: &str) -> Command {
    let mut c = env.cmd();
    c.env("ARTFS_REGISTRY", url)
        .env("ARTFS_CACHE_DIR", env.path("reader-cache"))
        .env("WANDB_API_KEY", key)
        .env("NETRC", env.path("no-netrc"));
    c
}

fn names(p: &Path) -> std::io::Result<Vec<String>> {
    let mut v: Vec<String> = std::fs::read_dir(p)?
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    Ok(v)
}

#[test]
fn a_mount_finds_projects_artifacts_and_versions_by_name_when_listings_are_refused() {
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    let (v0, v1) = (tree(1), tree(2));
    sdk_log(&env, &server, &key, "acme", &v0, "");
    sdk_log(&env, &server, &key, "acme", &v1, "best");
    let listings = ["GetProjects", "ProjectArtifactCollections", "ProjectArtifacts"];
    let proxy = Refusing::start(&server.addr, &listings);

    let mnt = env.path("mnt");
    let mut cmd = reader(&env, &proxy.url, &key);
    cmd.env_remove("ARTFS_REGISTRY");
    let m =
        mount_with(cmd, &["--registry", &proxy.url, "--refresh-secs", "1", mnt.to_str().unwrap()]);
    assert_eq!(names(&m.join("")).unwrap(), ["acme"]);
    // No listing answers below the entity, yet every name opens.
    assert!(std::fs::metadata(m.join("acme/bikes")).unwrap().is_dir());
    assert_eq!(std::fs::read(m.join("acme/bikes/ds:latest/d/b.txt")).unwrap(), v1["d/b.txt"]);
    assert_eq!(std::fs::read_link(m.join("acme/bikes/ds:best")).unwrap(), Path::new("ds:v1"));
    assert_eq!(read_tree(&m.join("acme/bikes/ds:v0")), v0);
    for missing in
        ["acme/nope", "acme/bikes/nope:latest", "acme/bikes/ds:v7", "acme/bikes/ds:worst"]
    {
        let err = std::fs::metadata(m.join(missing)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{missing}: {err}");
    }
    for op in listings {
        assert!(proxy.refused(op) > 0, "{op} was never asked, so never refused");
    }

    // Only the projects listing refused: the project's listing is whole again.
    proxy.refuse(&["GetProjects"]);
    wait_until(|| {
        names(&m.join("acme/bikes")).is_ok_and(|n| n == ["ds:best", "ds:latest", "ds:v0", "ds:v1"])
    });
    assert_eq!(read_tree(&m.join("acme/bikes/ds:latest")), v1);
}

#[test]
fn a_wandb_servers_default_entity_is_the_api_keys_own() {
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["bob"]);
    sdk_log(&env, &server, &key, "bob", &tree(3), "");
    let ls = |entity: Option<&str>| {
        let mut c = reader(&env, &server.url(), &key);
        c.env_remove("ARTFS_ENTITY").env("USER", "alice").args(["ls", "bikes", "--json"]);
        if let Some(e) = entity {
            c.env("ARTFS_ENTITY", e);
        }
        let out = c.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
    };
    let (ok, out, err) = ls(None);
    assert!(ok, "{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows[0]["name"], "bob/bikes/ds", "{rows}");
    // Named, an entity is taken as given.
    let (_, out, err) = ls(Some("alice"));
    assert!(!out.contains("bob/bikes/ds"), "{out} {err}");
}
