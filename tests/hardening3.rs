//! Downloads that end with their reader: a mount stops a download once the process reading it
//! is killed, and stops every download when the daemon is told to exit; cache fills of several
//! processes sharing one cache stay within its limit together.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::util::*;

/// Size of the entry the slow server serves: at its pace, a download of minutes.
const BIG_BYTES: usize = 64 * MIB;
/// The slow server's pace: one piece of this size every [`DRIP_EVERY`].
const DRIP_BYTES: usize = 64 * 1024;
const DRIP_EVERY: Duration = Duration::from_millis(50);

/// An HTTP server on 127.0.0.1 that serves `/big.bin` ([`BIG_BYTES`]) slowly and `/small.txt`
/// at once; it counts the bytes of `/big.bin` sent and notices when a client hangs up on it.
struct SlowServer {
    port: u16,
    sent: Arc<AtomicU64>,
    hung_up: Arc<AtomicBool>,
}

impl SlowServer {
    fn start() -> SlowServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sent, hung_up) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let (s, h) = (sent.clone(), hung_up.clone());
        // Detached: it ends with the test binary; every test has its own port.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (s, h) = (s.clone(), h.clone());
                std::thread::spawn(move || answer(stream, &s, &h));
            }
        });
        SlowServer { port, sent, hung_up }
    }

    fn uri(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }
}

fn answer(mut stream: std::net::TcpStream, sent: &AtomicU64, hung_up: &AtomicBool) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
    }
    let big = line.contains("/big.bin");
    let len = if big { BIG_BYTES } else { SMALL.len() };
    let head = format!("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {len}\r\n\r\n");
    if stream.write_all(head.as_bytes()).is_err() || !big {
        let _ = stream.write_all(SMALL);
        return;
    }
    let piece = vec![7u8; DRIP_BYTES];
    for _ in 0..BIG_BYTES / DRIP_BYTES {
        if stream.write_all(&piece).is_err() {
            hung_up.store(true, Ordering::SeqCst);
            return;
        }
        sent.fetch_add(DRIP_BYTES as u64, Ordering::SeqCst);
        std::thread::sleep(DRIP_EVERY);
    }
}

const SMALL: &[u8] = b"served at once\n";

/// A registry whose version `slow:v0` holds `big.bin` and `small.txt`, references to `server`.
fn slow_env(server: &SlowServer) -> Env {
    let mut env = Env::new();
    env.vars.push(("ARTFS_ALLOW_PRIVATE_REFS".into(), "1".into()));
    let entry = |name: &str, size: usize| {
        let uri = server.uri(name);
        serde_json::json!({"digest": uri, "ref": uri, "size": size})
    };
    let manifest = serde_json::json!({
        "version": 1,
        "storagePolicy": "wandb-storage-policy-v1",
        "storagePolicyConfig": {"storageLayout": "V2"},
        "contents": {"big.bin": entry("big.bin", BIG_BYTES), "small.txt": entry("small.txt", SMALL.len())},
    });
    let file = env.path("manifest.json");
    std::fs::write(&file, serde_json::to_vec(&manifest).unwrap()).unwrap();
    env.ok(&["log", "slow", "--manifest", file.to_str().unwrap()]);
    env
}

/// `cat` of `path` in the background, once the server sends its bytes.
fn cat_mid_download(path: &Path, server: &SlowServer) -> Child {
    let cat =
        Command::new("cat").arg(path).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_until(|| server.sent() >= 4 * DRIP_BYTES as u64);
    cat
}

/// Bytes of the regular files below `dir`, each with its path.
fn files_below(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let Ok(read) = std::fs::read_dir(dir) else { return out };
    for e in read.flatten() {
        let meta = e.metadata().unwrap();
        if meta.is_dir() {
            out.extend(files_below(&e.path()));
        } else {
            out.push((e.path().display().to_string(), meta.len()));
        }
    }
    out
}

/// Kills a `cat` waiting for a download through the mount (SECURITY, Trust): within a few
/// seconds the daemon hangs up on the server, nothing of the download stays in the cache or
/// its counts, and the mount goes on serving other files.
#[test]
fn a_download_stops_when_its_reader_is_killed() {
    let server = SlowServer::start();
    let env = slow_env(&server);
    let mnt = env.mount(&["slow", env.path("mnt").to_str().unwrap()]);
    let mut cat = cat_mid_download(&mnt.join("big.bin"), &server);
    cat.kill().unwrap();
    let killed = Instant::now();
    while !server.hung_up.load(Ordering::SeqCst) {
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "still downloading {:?} after the reader was killed ({} bytes sent)",
            killed.elapsed(),
            server.sent()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let stopped_after = killed.elapsed();
    let sent = server.sent();
    cat.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(server.sent() <= sent + DRIP_BYTES as u64, "bytes still flow after the hang-up");
    eprintln!("hung up {stopped_after:?} after the kill, {sent} bytes sent");

    let leftovers: Vec<_> =
        files_below(&env.cache).into_iter().filter(|(_, len)| *len >= DRIP_BYTES as u64).collect();
    assert!(leftovers.is_empty(), "partial download left in the cache: {leftovers:?}");
    assert_eq!(std::fs::read(mnt.join("small.txt")).unwrap(), SMALL);
    let stats = env.json(&["cache", "stats"]);
    assert!(stats["bytes"].as_u64().unwrap() < DRIP_BYTES as u64, "counted: {stats}");
    assert!(mnt.log_text().contains("the download was abandoned"), "{}", mnt.log_text());
}

/// SIGTERM while a `cat` waits for a slow download (SEMANTICS, Lifecycle): the daemon stops the
/// download, unmounts and exits with 0 well within its grace.
#[test]
fn sigterm_mid_download_unmounts_and_exits_within_the_grace() {
    const GRACE: Duration = Duration::from_secs(5);
    let server = SlowServer::start();
    let env = slow_env(&server);
    let mut mnt = env.mount(&["slow", env.path("mnt").to_str().unwrap()]);
    let mut cat = cat_mid_download(&mnt.join("big.bin"), &server);
    mnt.signal("TERM");
    let signalled = Instant::now();
    let status = mnt.wait_exit();
    let took = signalled.elapsed();
    eprintln!("exited {took:?} after SIGTERM");
    assert!(status.success(), "{status}: {}", mnt.log_text());
    assert!(took < GRACE / 2, "exit took {took:?}: {}", mnt.log_text());
    assert!(!is_mounted(&mnt.path));
    assert!(!cat.wait().unwrap().success(), "the reader got the whole file?");
    wait_until(|| server.hung_up.load(Ordering::SeqCst));
}
