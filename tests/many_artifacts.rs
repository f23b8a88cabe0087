//! Many artifacts through one whole-registry mount over S3: every `name:latest` opens to its
//! own bytes while the mount reads the project's collections together (`fs/heads.rs`), and a
//! moved `latest` is seen by a new lookup within the refresh interval all the same.

use crate::cloud_registry::s3_env;
use crate::util::{Env, bytes, wait_until};

const ARTIFACTS: usize = 50;

/// The bytes of artifact `i`'s one file in its version `version`.
fn content(i: usize, version: u64) -> Vec<u8> {
    bytes(1000 * version + i as u64, 100 + i)
}

/// Logs `acme/bikes/aNN` with [`content`]`(i, version)` as its one file `f.bin`.
fn log(env: &Env, i: usize, version: u64) {
    let src = env.path(&format!("src/{i}/f.bin"));
    std::fs::create_dir_all(src.parent().unwrap()).unwrap();
    std::fs::write(&src, content(i, version)).unwrap();
    env.ok(&["-q", "log", &format!("a{i:02}"), src.to_str().unwrap()]);
}

#[test]
fn fifty_artifacts_by_latest_read_exact_bytes_and_see_latest_move() {
    let Some(env) = s3_env("many") else { return };
    // Five writers at once: fifty `artfs log` runs one after the other take long.
    std::thread::scope(|s| {
        for w in 0..5 {
            let env = &env;
            s.spawn(move || (w..ARTIFACTS).step_by(5).for_each(|i| log(env, i, 0)));
        }
    });
    let mnt = env.mount(&["--refresh-secs", "1", env.path("mnt").to_str().unwrap()]);
    let project = mnt.join("acme/bikes");
    for i in 0..ARTIFACTS {
        let got = std::fs::read(project.join(format!("a{i:02}:latest/f.bin"))).unwrap();
        assert_eq!(got, content(i, 0), "a{i:02}:latest");
    }
    // A listing shows every version and alias, read together as the lookups were.
    let mut names: Vec<String> = std::fs::read_dir(&project)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let want: Vec<String> =
        (0..ARTIFACTS).flat_map(|i| [format!("a{i:02}:latest"), format!("a{i:02}:v0")]).collect();
    assert_eq!(names, want);

    log(&env, 7, 1);
    let alias = project.join("a07:latest");
    // Within the refresh interval (1 s; `wait_until` allows for a loaded machine).
    wait_until(|| std::fs::read_link(&alias).is_ok_and(|t| t.to_string_lossy() == "a07:v1"));
    assert_eq!(std::fs::read(alias.join("f.bin")).unwrap(), content(7, 1), "a new lookup");
    assert_eq!(std::fs::read(project.join("a07:v0/f.bin")).unwrap(), content(7, 0));
    for i in (0..ARTIFACTS).filter(|i| *i != 7) {
        let got = std::fs::read(project.join(format!("a{i:02}:latest/f.bin"))).unwrap();
        assert_eq!(got, content(i, 0), "a{i:02}:latest after the refresh");
    }
}
