//! Operating artfs: the mount daemon's counters (`--metrics-addr`), and a registry endpoint that
//! accepts connections and never answers, which fails a command within the promised bound.

use std::time::{Duration, Instant};

use crate::util::{Env, Files, curl};

/// A port on 127.0.0.1 that was free a moment ago.
fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// `name value` of one metric line in Prometheus text.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

/// A registry mount: every open reaches the daemon (a one-version mount of small files is read
/// without opens, so a warm read would count nothing).
#[test]
fn a_mount_daemon_serves_its_cache_and_fetch_counters_as_prometheus_text() {
    let env = Env::new();
    let data = crate::util::bytes(5, 123_456);
    let mut files = Files::new();
    files.insert("data.bin".into(), data.clone());
    env.log_files("ds", &files);
    let addr = free_addr();
    let mnt = env.path("mnt");
    let m = env.mount(&["--metrics-addr", &addr, "--readahead-files", "0", mnt.to_str().unwrap()]);
    let scrape = || String::from_utf8(curl(&["-sf", &format!("http://{addr}/metrics")])).unwrap();
    let before = scrape();
    assert_eq!(metric(&before, "artfs_mount_cache_misses_total"), 0, "{before}");
    assert!(before.contains("# TYPE artfs_mount_cache_hits_total counter"), "{before}");
    for _ in 0..2 {
        assert_eq!(std::fs::read(m.join("acme/bikes/ds:v0/data.bin")).unwrap(), data);
    }
    let held = std::fs::File::open(m.join("acme/bikes/ds:v0/data.bin")).unwrap();
    let text = scrape();
    assert_eq!(metric(&text, "artfs_mount_cache_misses_total"), 1, "{text}");
    assert!(metric(&text, "artfs_mount_cache_hits_total") >= 1, "{text}");
    assert_eq!(metric(&text, "artfs_mount_fetched_bytes_total"), data.len() as u64, "{text}");
    assert_eq!(metric(&text, "artfs_mount_errors_total"), 0, "{text}");
    assert_eq!(metric(&text, "artfs_mount_open_files"), 1, "{text}");
    drop(held);
    assert_eq!(metric(&text, "artfs_mount_cache_evictions_total"), 0, "{text}");
}

/// A listener on 127.0.0.1:0 that accepts connections, reads what is sent and never answers.
fn silent_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    addr
}

#[test]
fn a_registry_that_accepts_and_never_answers_fails_ls_within_the_bound_naming_it() {
    let env = Env::new();
    let addr = silent_endpoint();
    let url = format!("http://{addr}");
    let started = Instant::now();
    let out = env.cmd().args(["ls", "acme/bikes"]).env("ARTFS_REGISTRY", &url).output().unwrap();
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success());
    // The promise (docs/SEMANTICS.md): a server that never answers fails on the 30 s read
    // timeout, once: not once per kind of registry the URL might be.
    assert!(took < Duration::from_secs(30 + 20), "{took:?}: {err}");
    assert!(err.contains(&addr) && err.contains("did not answer"), "the endpoint is named: {err}");
    assert!(err.contains("check that the server is up"), "what to do: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}
