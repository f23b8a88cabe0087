//! `artfs serve` under hostile clients: GraphQL documents that would expand without bound, and
//! more idle connections than the usual open-file limit, while a keyed client is still served.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::serve::{Server, create_key};
use crate::util::{Env, Files};

/// Peak RSS the server may reach while it refuses the documents below (it idles at a few tens).
const MAX_SERVER_RSS_BYTES: u64 = 300 << 20;
/// How soon a refusal must arrive: the documents are refused before anything is expanded.
const PROMPT: Duration = Duration::from_secs(10);

fn basic(key: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("api:{key}")))
}

/// `query` POSTed with `key` over a fresh connection, with a read timeout of `PROMPT` beyond which
/// the test fails: the JSON answer.
fn gql_promptly(addr: &str, key: &str, query: &str) -> serde_json::Value {
    let body = serde_json::json!({"query": query, "variables": {}}).to_string();
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PROMPT)).unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        basic(key),
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap_or_else(|e| panic!("no answer in {PROMPT:?}: {e}"));
    assert!(started.elapsed() < PROMPT, "answered after {:?}", started.elapsed());
    let text = String::from_utf8_lossy(&resp).into_owned();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn assert_refused(answer: &serde_json::Value, what: &str) {
    let e = &answer["errors"][0];
    assert_eq!(e["extensions"]["code"], "INVALID", "{what}: {answer}");
    assert!(e["message"].as_str().unwrap_or_default().contains("refused"), "{what}: {answer}");
    assert!(answer["data"].is_null(), "{what}: {answer}");
}

/// The server's peak resident set (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}

/// `fragment F0 on Query { ...F1 ...F1 }` … `F20`: 829 bytes that expand to 2^21 selections.
fn fragment_bomb() -> String {
    let mut q = String::from("query Bomb { ...F0 }\n");
    for i in 0..20 {
        q += &format!("fragment F{i} on Query {{ ...F{n} ...F{n} }}\n", n = i + 1);
    }
    q + "fragment F20 on Query { viewer { id } }\n"
}

/// One field under a million aliases (about 20 MB, under the request body limit).
fn alias_flood() -> String {
    let mut q = String::from("query Flood {");
    for i in 0..1_000_000 {
        q += &format!(" a{i}: viewer {{ id }}");
    }
    q + " }"
}

/// Four aliases at each of nine levels of `project → artifactCollection → project`: 4^9
/// resolutions of a collection that exists.
fn fan_out() -> String {
    let mut q =
        String::from("query FanOut { project(name: \"bikes\", entityName: \"acme\") { ...P0 } }\n");
    for i in 0..9 {
        let next = if i == 8 { "name".to_owned() } else { format!("...P{}", i + 1) };
        q += &format!("fragment P{i} on Project {{");
        for a in ["a", "b", "c", "d"] {
            q += &format!(" {a}: artifactCollection(name: \"data\") {{ project {{ {next} }} }}");
        }
        q += " }\n";
    }
    q
}

#[test]
fn graphql_bombs_are_refused_promptly_in_little_memory() {
    let env = Env::new();
    env.log_files("data", &Files::from([("a.txt".to_owned(), b"a".to_vec())]));
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    let server = Server::start(&env, &[]);
    assert!(fragment_bomb().len() < 1000);
    assert_refused(&gql_promptly(&server.addr, &key, &fragment_bomb()), "fragment bomb");
    assert_refused(&gql_promptly(&server.addr, &key, &alias_flood()), "alias flood");
    assert_refused(&gql_promptly(&server.addr, &key, &fan_out()), "fan-out");
    let rss = peak_rss(server.pid());
    assert!(rss < MAX_SERVER_RSS_BYTES, "peak RSS {} MiB", rss >> 20);
    // The SDK's kind of document still runs.
    let ok = gql_promptly(
        &server.addr,
        &key,
        "{ project(name: \"bikes\", entityName: \"acme\") { artifactCollection(name: \"data\") \
         { project { name } } } }",
    );
    assert_eq!(ok["data"]["project"]["artifactCollection"]["project"]["name"], "bikes", "{ok}");
}

#[test]
fn a_keyed_request_is_served_beside_1100_idle_connections() {
    let env = Env::new();
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    // The usual soft limit of 1,024 open files, which 1,100 idle sockets would exhaust.
    let artfs = env.cmd();
    let mut cmd = Command::new("prlimit");
    cmd.arg("--nofile=1024:").arg("--").arg(artfs.get_program());
    for (k, v) in artfs.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.current_dir(env.path(""));
    let server = Server::spawn(cmd, &[], env.path("serve.log"));
    let idle: Vec<TcpStream> =
        (0..1100).map(|_| TcpStream::connect(&server.addr).unwrap()).collect();
    let answer = gql_promptly(&server.addr, &key, "{ viewer { entity } }");
    assert_eq!(answer["data"]["viewer"]["entity"], "acme", "{answer}");
    drop(idle);
}
