//! Registries written by others: what a reader's `get` and mount fetch (`file://` and private
//! `http://` references only when the reader allowed them), what they serve for references whose
//! recorded size is wrong, and what the CLI prints (control characters escaped, credentials in
//! reference URLs refused and never shown).

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::util::{Env, read_tree};

/// A plain HTTP server on 127.0.0.1 (a "127.0.0.1-only service"), counting the requests it gets.
/// `answer(path)` gives the body; `content_length: false` sends none (the body ends with the
/// connection), so nothing but the bytes themselves tells their size.
struct Server {
    port: u16,
    requests: Arc<AtomicUsize>,
}

impl Server {
    fn start(content_length: bool, answer: fn(&str) -> Option<Vec<u8>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let seen = requests.clone();
        // Detached: it ends with the test binary; every test has its own port.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                seen.fetch_add(1, Ordering::SeqCst);
                let Some(path) = crate::util::request_path(&stream) else { continue };
                let Some(body) = answer(&path) else {
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    continue;
                };
                let mut head = String::from("HTTP/1.1 200 OK\r\nConnection: close\r\n");
                if content_length {
                    head.push_str(&format!("Content-Length: {}\r\n", body.len()));
                }
                head.push_str("\r\n");
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        Server { port, requests }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn errno_of_read(path: &Path) -> Option<i32> {
    std::fs::read(path).err().and_then(|e| e.raw_os_error())
}

#[test]
fn file_refs_of_a_shared_registry_are_refused_unless_the_reader_allowed_their_directory() {
    let env = Env::new();
    let (secret_dir, data) = (env.path("home/.ssh"), env.path("data"));
    std::fs::create_dir_all(&secret_dir).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    let secret = secret_dir.join("id_ed25519");
    std::fs::write(&secret, b"-----BEGIN OPENSSH PRIVATE KEY-----\n").unwrap();
    std::fs::write(data.join("ok.txt"), b"shared data\n").unwrap();
    std::os::unix::fs::symlink(&secret, data.join("escape")).unwrap();
    // A writer of the shared registry points entries at the reader's files (logging is allowed,
    // with a warning that readers must allow them).
    let logged = env.run(&[
        "log",
        "shared",
        &format!("file://{}=key", secret.display()),
        &format!("file://{}/ok.txt=ok.txt", data.display()),
        &format!("file://{}/escape=escape", data.display()),
    ]);
    assert!(logged.status.success());
    assert!(String::from_utf8_lossy(&logged.stderr).contains("--allow-file-refs"));

    let out = env.path("out");
    let out_s = out.to_str().unwrap();
    let err = env.fails(&["get", "shared", "--root", out_s]);
    assert!(err.contains("--allow-file-refs") && err.contains("refused"), "{err}");
    assert!(["entry key", "entry ok.txt", "entry escape"].iter().any(|e| err.contains(e)), "{err}");
    assert!(!out.exists() || read_tree(&out).is_empty(), "nothing may be written");
    // Allowing the data directory does not allow a symlink out of it, nor the key itself.
    let data_s = data.to_str().unwrap();
    let err = env.fails(&["get", "shared", "--root", out_s, "--allow-file-refs", data_s]);
    assert!(err.contains("refused") && err.contains(secret.to_str().unwrap()), "{err}");
    assert!(!out.join("key").exists() && !out.join("escape").exists());
    // Everything allowed (the flag and the colon-separated variable alike): read as logged.
    let both = format!("{}:{}", data.display(), secret_dir.display());
    let out2 = env.path("out2");
    let mut cmd = env.cmd();
    cmd.env("ARTFS_ALLOW_FILE_REFS", &both).args(["get", "shared", "--root"]).arg(&out2);
    assert!(cmd.status().unwrap().success());
    assert_eq!(std::fs::read(out2.join("key")).unwrap(), std::fs::read(&secret).unwrap());
    assert_eq!(std::fs::read(out2.join("escape")).unwrap(), std::fs::read(&secret).unwrap());

    // Through the mount: EACCES and a log line naming the entry and the flag.
    {
        let mnt = env.mount(&["shared", env.path("mnt").to_str().unwrap()]);
        for name in ["key", "ok.txt", "escape"] {
            assert_eq!(errno_of_read(&mnt.join(name)), Some(libc::EACCES), "{name}");
        }
        let log = mnt.log_text();
        assert!(log.contains("entry key") && log.contains("--allow-file-refs"), "{log}");
    }
    let mnt =
        env.mount(&["--allow-file-refs", data_s, "shared", env.path("mnt2").to_str().unwrap()]);
    assert_eq!(std::fs::read(mnt.join("ok.txt")).unwrap(), b"shared data\n");
    assert_eq!(errno_of_read(&mnt.join("escape")), Some(libc::EACCES));
    assert_eq!(errno_of_read(&mnt.join("key")), Some(libc::EACCES));
}

#[test]
fn http_refs_to_private_addresses_are_refused_unless_the_reader_allowed_them() {
    let server = Server::start(true, |path| {
        path.starts_with("/internal").then(|| b"only for this host\n".to_vec())
    });
    let env = Env::new();
    let port = server.port;
    // The writer's own log reads the server (its host, its choice).
    env.ok(&[
        "log",
        "svc",
        &format!("http://127.0.0.1:{port}/internal/a.txt=a.txt"),
        &format!("http://localhost:{port}/internal/b.txt=b.txt"),
        &format!("http://[::ffff:127.0.0.1]:{port}/internal/c.txt=c.txt"),
    ]);
    let logged = server.requests();

    let out = env.path("out");
    let err = env.fails(&["get", "svc", "--root", out.to_str().unwrap()]);
    assert!(err.contains("--allow-private-refs") && err.contains("loopback"), "{err}");
    assert!(!out.join("a.txt").exists() && !out.join("b.txt").exists());
    {
        let mnt = env.mount(&["svc", env.path("mnt").to_str().unwrap()]);
        for name in ["a.txt", "b.txt", "c.txt"] {
            assert_eq!(errno_of_read(&mnt.join(name)), Some(libc::EACCES), "{name}");
        }
        // A walk of everything (readahead included) reaches nothing either.
        let _ = std::process::Command::new("cat")
            .arg(mnt.join("a.txt"))
            .arg(mnt.join("b.txt"))
            .output();
        let log = mnt.log_text();
        assert!(log.contains("refused") && log.contains("--allow-private-refs"), "{log}");
    }
    assert_eq!(server.requests(), logged, "no read reached the private service");

    // The reader's permission (flag or variable) lets them through.
    env.ok(&["get", "svc", "--root", out.to_str().unwrap(), "--allow-private-refs"]);
    assert_eq!(std::fs::read(out.join("b.txt")).unwrap(), b"only for this host\n");
    let mut allowed = Env::new();
    allowed.registry = env.registry.clone();
    allowed.vars.push(("ARTFS_ALLOW_PRIVATE_REFS".into(), "true".into()));
    let mnt = allowed.mount(&["svc", allowed.path("mnt").to_str().unwrap()]);
    assert_eq!(std::fs::read(mnt.join("a.txt")).unwrap(), b"only for this host\n");
    assert_eq!(std::fs::read(mnt.join("c.txt")).unwrap(), b"only for this host\n");
}

#[test]
fn unchecked_references_must_have_the_size_their_entry_records() {
    // No Content-Length: only the bytes tell the size.
    let server = Server::start(false, |path| (path == "/data.bin").then(|| vec![7u8; 1000]));
    let mut env = Env::new();
    env.vars.push(("ARTFS_ALLOW_PRIVATE_REFS".into(), "1".into()));
    let uri = format!("http://127.0.0.1:{}/data.bin", server.port);
    let entry = |size: u64| serde_json::json!({"digest": uri, "ref": uri, "size": size});
    let manifest = serde_json::json!({
        "version": 1,
        "storagePolicy": "wandb-storage-policy-v1",
        "storagePolicyConfig": {"storageLayout": "V2"},
        "contents": {"exact.bin": entry(1000), "longer.bin": entry(1500), "shorter.bin": entry(400)},
    });
    let file = env.path("manifest.json");
    std::fs::write(&file, serde_json::to_vec(&manifest).unwrap()).unwrap();
    env.ok(&["log", "unchecked", "--manifest", file.to_str().unwrap()]);

    let out = env.path("out");
    let err = env.fails(&["get", "unchecked", "--root", out.to_str().unwrap()]);
    assert!(err.contains("entry longer.bin") || err.contains("entry shorter.bin"), "{err}");
    assert!(err.contains("1500") || err.contains("400"), "{err}");
    assert!(!out.join("longer.bin").exists() && !out.join("shorter.bin").exists());

    let mnt = env.mount(&["unchecked", env.path("mnt").to_str().unwrap()]);
    assert_eq!(std::fs::read(mnt.join("exact.bin")).unwrap(), vec![7u8; 1000]);
    for (name, size) in [("longer.bin", 1500), ("shorter.bin", 400)] {
        assert_eq!(std::fs::metadata(mnt.join(name)).unwrap().len(), size, "{name}");
        assert_eq!(errno_of_read(&mnt.join(name)), Some(libc::EIO), "{name}");
    }
    // Still right after the others failed (nothing wrong was cached under its name).
    assert_eq!(std::fs::read(mnt.join("exact.bin")).unwrap(), vec![7u8; 1000]);
}

#[test]
fn registry_text_is_printed_escaped_and_reference_credentials_never() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("bell\x07\x1b[2J.txt"), b"x").unwrap();
    let evil = "\x1b]0;owned\x07\x1b[31mred\u{9b}2J";
    let metadata = serde_json::json!({"note": evil}).to_string();
    env.ok(&["log", "text", src.to_str().unwrap(), "--description", evil, "--metadata", &metadata]);
    let raw = |s: &str| s.contains('\x1b') || s.contains('\x07') || s.contains('\u{9b}');
    for args in [&["show", "text", "--files"][..], &["versions", "text"], &["ls"]] {
        let out = env.ok(args);
        assert!(!raw(&out), "{args:?} printed control characters: {out:?}");
    }
    let shown = env.ok(&["show", "text", "--files"]);
    assert!(shown.contains("\\x1b]0;owned\\x07") && shown.contains("bell\\x07"), "{shown}");
    // JSON carries the text exactly (JSON escapes it itself).
    let json = env.json(&["show", "text", "--files"]);
    assert_eq!(json["description"], evil);
    assert_eq!(json["metadata"]["note"], evil);

    // Credentials in a reference URL are refused when logging, by argument or manifest, and
    // never echoed.
    let err = env.fails(&["log", "creds", "--no-checksum", "http://user:hunter2@example.com/x"]);
    assert!(err.contains("credentials") && !err.contains("hunter2"), "{err}");
    let manifest = serde_json::json!({
        "version": 1,
        "storagePolicy": "wandb-storage-policy-v1",
        "storagePolicyConfig": {"storageLayout": "V2"},
        "contents": {"x": {"digest": "d", "ref": "https://u:hunter2@example.com/x", "size": 1}},
    });
    let file = env.path("creds.json");
    std::fs::write(&file, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let err = env.fails(&["log", "creds", "--manifest", file.to_str().unwrap()]);
    assert!(err.contains("entry x") && err.contains("credentials"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    // A registry written by another tool may hold such URIs: they are shown redacted everywhere.
    env.ok(&["log", "stored", "--no-checksum", "http://127.0.0.1:1/x.bin"]);
    for m in std::fs::read_dir(env.registry_dir().join("manifests")).unwrap() {
        let path = m.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let with_password = text.replace("http://127.0.0.1:1/", "http://user:hunter2@127.0.0.1:1/");
        std::fs::write(&path, with_password).unwrap();
    }
    let shown = env.ok(&["show", "stored", "--files"]);
    let json = env.ok(&["show", "stored", "--files", "--json"]);
    let refused = env.fails(&["get", "stored", "--root", env.path("o1").to_str().unwrap()]);
    let out = env
        .cmd()
        .args(["get", "stored", "--allow-private-refs", "--root"])
        .arg(env.path("o2"))
        .output()
        .unwrap();
    let unreachable = String::from_utf8_lossy(&out.stderr).into_owned();
    let mounted = {
        let mnt = env.mount(&["--allow-private-refs", "stored", env.path("mnt").to_str().unwrap()]);
        assert_eq!(errno_of_read(&mnt.join("x.bin")), Some(libc::EIO));
        mnt.log_text()
    };
    for text in [&shown, &json, &refused, &unreachable, &mounted] {
        assert!(
            text.contains("http://***@127.0.0.1:1/x.bin") && !text.contains("hunter2"),
            "{text}"
        );
    }

    // Errors quoting an entry name escape it too (here: a refused reference).
    let target = src.join("bell\x07\x1b[2J.txt");
    env.ok(&["log", "named", &format!("file://{}=evil\x1b[2J\x07name", target.display())]);
    let err = env.fails(&["get", "named", "--root", env.path("out").to_str().unwrap()]);
    assert!(err.contains("evil\\x1b[2J\\x07name") && !raw(&err), "{err:?}");
}
