//! Downloads that end with their reader: a mount stops a download once the process reading it
//! is killed, and stops every download when the daemon is told to exit; the fills of several
//! processes sharing one cache stay within its limit together.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::util::*;

/// Size of `/big.bin`: at the slow server's pace, a download of a minute.
const BIG_BYTES: usize = 64 * MIB;
/// Size of `/mid-*.bin`.
const MID_BYTES: usize = 24 * MIB;
/// The slow server sends one piece of this size every pause.
const DRIP_BYTES: usize = 64 * 1024;
const DRIP_EVERY: Duration = Duration::from_millis(50);

/// An HTTP server on 127.0.0.1 that serves `/big.bin` ([`BIG_BYTES`]) and `/mid-*.bin`
/// ([`MID_BYTES`]) slowly, one piece per `pause`, and `/small.txt` at once; it counts the bytes
/// sent and notices when a client hangs up on it.
struct SlowServer {
    port: u16,
    sent: Arc<AtomicU64>,
    hung_up: Arc<AtomicBool>,
}

impl SlowServer {
    fn start(pause: Duration) -> SlowServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sent, hung_up) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let (s, h) = (sent.clone(), hung_up.clone());
        // Detached: it ends with the test binary; every test has its own port.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (s, h) = (s.clone(), h.clone());
                std::thread::spawn(move || answer(stream, pause, &s, &h));
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

fn answer(stream: std::net::TcpStream, pause: Duration, sent: &AtomicU64, hung_up: &AtomicBool) {
    let Some(path) = request_path(&stream) else { return };
    let len = match path.as_str() {
        "/big.bin" => BIG_BYTES,
        path if path.starts_with("/mid-") => MID_BYTES,
        _ => SMALL.len(),
    };
    let mut stream = stream;
    let head = format!("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {len}\r\n\r\n");
    if stream.write_all(head.as_bytes()).is_err() || len == SMALL.len() {
        let _ = stream.write_all(SMALL);
        return;
    }
    let piece = vec![7u8; DRIP_BYTES];
    for _ in 0..len / DRIP_BYTES {
        if stream.write_all(&piece).is_err() {
            hung_up.store(true, Ordering::SeqCst);
            return;
        }
        sent.fetch_add(DRIP_BYTES as u64, Ordering::SeqCst);
        std::thread::sleep(pause);
    }
}

const SMALL: &[u8] = b"served at once\n";

/// A registry whose version `slow:v0` holds `big.bin` and `small.txt`, references to `server`.
fn slow_env(server: &SlowServer) -> Env {
    let mut env = Env::new();
    env.vars.push(("ARTFS_ALLOW_PRIVATE_REFS".into(), "1".into()));
    log_refs(&env, "slow", server, &[("big.bin", BIG_BYTES), ("small.txt", SMALL.len())]);
    env
}

/// Logs `files` (name, size) of `server` as references, the version `name:v0`.
fn log_refs(env: &Env, name: &str, server: &SlowServer, files: &[(&str, usize)]) {
    let contents: serde_json::Map<String, serde_json::Value> = files
        .iter()
        .map(|&(file, size)| {
            let uri = server.uri(file);
            (file.to_owned(), serde_json::json!({"digest": uri, "ref": uri, "size": size}))
        })
        .collect();
    let manifest = serde_json::json!({
        "version": 1,
        "storagePolicy": "wandb-storage-policy-v1",
        "storagePolicyConfig": {"storageLayout": "V2"},
        "contents": contents,
    });
    let file = env.path(&format!("{name}.manifest.json"));
    std::fs::write(&file, serde_json::to_vec(&manifest).unwrap()).unwrap();
    env.ok(&["log", name, "--manifest", file.to_str().unwrap()]);
}

/// `cat` of `path` in the background, once the server sends its bytes.
fn cat_mid_download(path: &Path, server: &SlowServer) -> Child {
    let cat =
        Command::new("cat").arg(path).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_until(|| server.sent() >= 4 * DRIP_BYTES as u64);
    cat
}

/// The regular files below `dir`: path, length and allocated bytes. Files vanishing meanwhile
/// are skipped.
fn files_below(dir: &Path) -> Vec<(String, u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    let mut out = Vec::new();
    let Ok(read) = std::fs::read_dir(dir) else { return out };
    for e in read.flatten() {
        let Ok(meta) = e.metadata() else { continue };
        if meta.is_dir() {
            out.extend(files_below(&e.path()));
        } else {
            out.push((e.path().display().to_string(), meta.len(), meta.blocks() * 512));
        }
    }
    out
}

/// Kills a `cat` waiting for a download through the mount (SECURITY, Trust): within a few
/// seconds the daemon hangs up on the server, nothing of the download stays in the cache or
/// its counts, and the mount goes on serving other files.
#[test]
fn a_download_stops_when_its_reader_is_killed() {
    let server = SlowServer::start(DRIP_EVERY);
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
        files_below(&env.cache).into_iter().filter(|f| f.2 >= DRIP_BYTES as u64).collect();
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
    let server = SlowServer::start(DRIP_EVERY);
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

/// Two `artfs get`s sharing one cache, each downloading a file of 60 % of its limit at once
/// (SECURITY, Trust): one waits for the other, so the bytes allocated under the cache directory,
/// sampled throughout, never exceed the limit.
#[test]
fn two_processes_filling_one_cache_stay_within_its_limit_together() {
    let server = SlowServer::start(Duration::from_millis(10));
    let mut env = Env::new();
    env.vars.push(("ARTFS_ALLOW_PRIVATE_REFS".into(), "1".into()));
    env.vars.push(("ARTFS_CACHE_SIZE".into(), "40M".into()));
    log_refs(&env, "one", &server, &[("mid-1.bin", MID_BYTES)]);
    log_refs(&env, "two", &server, &[("mid-2.bin", MID_BYTES)]);
    let limit = env.json(&["cache", "stats"])["max_bytes"].as_u64().unwrap();
    assert!(limit < 2 * MID_BYTES as u64 && limit > MID_BYTES as u64, "{limit}");
    let mut gets: Vec<Child> = ["one", "two"]
        .into_iter()
        .map(|name| {
            let out = env.path(&format!("out-{name}"));
            let mut cmd = env.cmd();
            cmd.args(["-q", "get", name, "--root", out.to_str().unwrap()]);
            cmd.stdout(Stdio::null()).spawn().unwrap()
        })
        .collect();
    let mut peak = 0;
    while gets.iter_mut().any(|g| g.try_wait().unwrap().is_none()) {
        peak = peak.max(files_below(&env.cache).iter().map(|f| f.2).sum::<u64>());
        std::thread::sleep(Duration::from_millis(5));
    }
    for mut get in gets {
        assert!(get.wait().unwrap().success());
    }
    eprintln!("peak {peak} bytes allocated under a limit of {limit}");
    assert!(peak >= MID_BYTES as u64, "no fill was seen: {peak}");
    assert!(peak <= limit, "{peak} bytes allocated under a limit of {limit}");
}

/// Bytes below each top-level directory of `root`.
fn bytes_by_dir(root: &Path) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    for e in walkdir::WalkDir::new(root).into_iter().filter_map(Result::ok) {
        let Ok(meta) = e.metadata() else { continue };
        if meta.is_file() {
            let rel = e.path().strip_prefix(root).unwrap();
            let top = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
            *out.entry(top).or_insert(0) += meta.len();
        }
    }
    out
}

/// The real SDK logs a file of 2 GiB and more through `artfs serve`, which it sends in parts;
/// killed once a part arrived, with the server killed too while it writes others, it leaves
/// parts and temporary part files in `uploads/`, and `artfs gc --grace 0s` gives the registry
/// back every byte but the SDK's run and its uncommitted draft's record (SEMANTICS, gc).
#[test]
fn gc_reclaims_a_multipart_upload_the_sdk_abandoned() {
    use crate::serve::{Server, create_key};
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    let t = env.path("flow-big");
    let before = bytes_by_dir(&env.registry_dir());
    let mut cmd = crate::serve::sdk_in_own_session(&server, &key, "big_file.py", &t);
    let mut sdk = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let uploads = env.registry_dir().join("uploads");
    let started = Instant::now();
    // A part is named by its number once complete (`uploads/<id>/<5 digits>`).
    let complete = |f: &(String, u64, u64)| {
        let name = f.0.rsplit('/').next().unwrap_or("");
        name.len() == 5 && name.bytes().all(|b| b.is_ascii_digit())
    };
    // Generous: the SDK first writes and hashes 2 GiB, on a machine busy with other tests.
    while !files_below(&uploads).iter().any(complete) {
        assert!(started.elapsed() < Duration::from_secs(600), "no part arrived");
        assert!(sdk.try_wait().unwrap().is_none(), "the SDK exited before its parts arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    let arrived = files_below(&uploads);
    Command::new("kill").args(["-KILL", "--", &format!("-{}", sdk.id())]).status().unwrap();
    let _ = sdk.wait();
    let (parts, bytes) =
        (arrived.iter().filter(|f| complete(f)).count(), arrived.iter().map(|f| f.1).sum::<u64>());
    eprintln!(
        "killed after {:?}: {parts} parts complete, {bytes} bytes in uploads/",
        started.elapsed()
    );
    // The server too, mid-part: what it was writing stays as temporary files.
    drop(server);
    std::fs::remove_dir_all(&t).unwrap();

    let report = env.json(&["gc", "--grace", "0s"]);
    let after = bytes_by_dir(&env.registry_dir());
    eprintln!("registry bytes before {before:?}, after gc {after:?}; gc: {report}");
    assert!(report["upload_parts_deleted"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["drafts_deleted"].as_u64(), Some(1), "the abandoned draft: {report}");
    // What stays is only the SDK's run: it did run, and lineage keeps it.
    let kept = |m: &std::collections::BTreeMap<String, u64>| -> u64 {
        m.iter().filter(|(dir, _)| dir.as_str() != "runs").map(|e| e.1).sum()
    };
    assert_eq!(kept(&after), kept(&before), "after gc: {after:?}, before: {before:?}");
}
