//! Blob bodies through `artfs serve` into a local registry, at the HTTP level: a body that does
//! not hash to its declared MD5 and a client that hangs up mid-body both publish nothing and
//! leave no temporary file behind; a body of several MiB arrives whole.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::serve::{
    CREATE, FILES, Server, create_input, create_key, file_spec, gql, hex_of, http, path_of,
};
use crate::util::{Env, MIB};

/// Every temporary upload file (`…#…`, the shape gc sweeps) below `dir`.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.file_name().to_string_lossy().contains('#'))
        .map(|e| e.path().to_owned())
        .collect()
}

/// Waits (boundedly) until `done` holds; returns whether it did.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[test]
fn upload_bodies_that_fail_publish_nothing_and_leave_no_temporary_file() {
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    let r = gql(&server, &key, CREATE, create_input("acme", "raw"));
    let id = r["data"]["createArtifact"]["artifact"]["id"].as_str().unwrap().to_owned();
    // Several MiB: many body frames, several of the writer's batches.
    let data: Vec<u8> = (0..8 * MIB).map(|i| (i * 7 % 251) as u8).collect();
    let r = gql(&server, &key, FILES, file_spec(&id, "big.bin", &data));
    let url = r["data"]["createArtifactFiles"]["files"]["edges"][0]["node"]["uploadUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned();
    let put = path_of(&url, &server);
    let hex = hex_of(&data);
    let registry = env.registry_dir();
    let blob = registry.join("blobs/md5").join(&hex[..2]).join(&hex[2..]);

    // One byte altered deep in the body: refused, nothing published, nothing left.
    let mut altered = data.clone();
    altered[5 * MIB + 3] ^= 1;
    let (status, body) = http(&server.addr, "PUT", &put, &[], &altered);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("MD5"), "{body}");
    assert!(!blob.exists(), "a body with the wrong MD5 was published");
    assert_eq!(temporaries(&registry), Vec::<PathBuf>::new());

    // A client that hangs up half-way: the temporary file it was writing goes with it.
    let mut s = std::net::TcpStream::connect(&server.addr).unwrap();
    let head = format!(
        "PUT {put} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
        server.addr,
        data.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&data[..3 * MIB]).unwrap();
    assert!(eventually(|| !temporaries(&registry).is_empty()), "no upload in progress seen");
    drop(s);
    assert!(
        eventually(|| temporaries(&registry).is_empty()),
        "left behind: {:?}",
        temporaries(&registry)
    );
    assert!(!blob.exists(), "half a body was published");

    // The whole body: published byte for byte, and nothing else is left.
    let (status, body) = http(&server.addr, "PUT", &put, &[], &data);
    assert_eq!(status, 200, "{body}");
    assert!(std::fs::read(&blob).unwrap() == data, "the published blob differs from the body");
    assert_eq!(temporaries(&registry), Vec::<PathBuf>::new());
}
