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
    pub log: PathBuf,
}

impl Server {
    pub fn start(env: &Env, extra: &[&str]) -> Server {
        let log = env.path("serve.log");
        let mut child = env
            .cmd()
            .env("ARTFS_LOG", "artfs=debug")
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("first line of artfs serve: {line:?}"))
            .to_owned();
        Server { child, addr, log }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
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
    let key = create_key(&env, &["ana", "--entity", "acme"]);

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
    env.ok(&["-q", "get", "acme/bikes/flowers:v0", "--root", got.to_str().unwrap()]);
    same_tree(&got, &f3_dir.join("dl"));
    let mnt = env.path("mnt");
    let m = env.mount(&["acme/bikes/flowers:v0", mnt.to_str().unwrap()]);
    same_tree(&m.join(""), &f3_dir.join("dl"));
    drop(m);

    // F4 + F6 edits and deletes; F7 the wandb CLI.
    run_flow(&env, &server, &key, "f4_edit.py", "f4", &[]);
    assert!(env.json(&["versions", "acme/bikes/model"]).as_array().unwrap().is_empty());
    run_flow(&env, &server, &key, "f7_cli.py", "f7", &[]);
    assert_eq!(env.json(&["show", "acme/bikes/cli-data:cli-alias"])["description"], "from the CLI");

    // The reverse: what `artfs log` writes, the SDK uses and downloads, digest for digest.
    let src = env.path("cli-src");
    let mut files = crate::util::Files::new();
    files.insert("a.bin".into(), crate::util::bytes(1, 300_000));
    files.insert("d/b.txt".into(), b"bee\n".to_vec());
    files.insert("d/e/empty".into(), Vec::new());
    write_tree(&src, &files);
    let logged = env.json(&["log", "acme/bikes/from-artfs", src.to_str().unwrap()]);
    let digest = logged["digest"].as_str().unwrap().to_owned();
    let (used, _) = run_flow(
        &env,
        &server,
        &key,
        "use_logged.py",
        "reverse",
        &[
            ("FLOW_ARTIFACT", "acme/bikes/from-artfs:latest"),
            ("FLOW_DIGEST", &digest),
            ("FLOW_EXPECT_DIR", src.to_str().unwrap()),
        ],
    );
    assert_eq!(used["version"], "v0");

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
