//! Manifest tests against the golden files produced by the real `wandb` SDK (tests/fixtures/wandb).

use std::path::PathBuf;

use super::*;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wandb")
}

fn read(rel: &str) -> Vec<u8> {
    let p = fixtures().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn every_fixture_manifest_parses_and_reproduces_its_digest() {
    let mut seen = 0;
    for entry in std::fs::read_dir(fixtures().join("outputs")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let Some(case) = name.strip_suffix(".manifest.json") else {
            continue;
        };
        let m = Manifest::from_json(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let want = String::from_utf8(read(&format!("outputs/{case}.digest.txt"))).unwrap();
        assert_eq!(m.digest(), want.trim(), "artifact digest of {case}");
        seen += 1;
    }
    assert_eq!(seen, 10, "fixture cases found");
}

#[test]
fn summary_sizes_and_counts_match() {
    let summary: serde_json::Value = serde_json::from_slice(&read("outputs/summary.json")).unwrap();
    for (case, info) in summary.as_object().unwrap() {
        let Some(digest) = info.get("artifact_digest") else {
            continue;
        };
        let m = Manifest::from_json(&read(&format!("outputs/{case}.manifest.json"))).unwrap();
        assert_eq!(m.digest(), digest.as_str().unwrap(), "{case}");
        assert_eq!(m.size(), info["size"].as_u64().unwrap(), "{case} size");
        assert_eq!(m.contents.len() as u64, info["entries"].as_u64().unwrap(), "{case} entries");
        let want_alg = match info["digest_algorithm"].as_str().unwrap() {
            "MANIFEST_XXH128" => DigestAlg::Xxh128,
            _ => DigestAlg::Md5,
        };
        assert_eq!(m.digest_alg(), want_alg, "{case} algorithm");
    }
}

#[test]
fn uploaded_manifests_reserialise_byte_for_byte() {
    for name in ["fixture-uploaded", "fixture-uploaded-ref"] {
        let raw = read(&format!("capture/uploaded_wandb_manifest.{name}.json"));
        let m = Manifest::from_json(&raw).unwrap();
        let out = m.to_json();
        assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(&raw), "{name}");
        assert_eq!(out, raw, "{name}");
    }
}

#[test]
fn python_form_roundtrips_through_the_compact_form() {
    let m = Manifest::from_json(&read("outputs/s3_moto.manifest.json")).unwrap();
    let again = Manifest::from_json(&m.to_json()).unwrap();
    assert_eq!(again, m);
    assert_eq!(again.digest(), m.digest());
}

#[test]
fn entry_digests_of_fixture_inputs_match_the_sdk() {
    let inputs = fixtures().join("inputs");
    for (case, alg) in [("local_files", DigestAlg::Md5), ("xxh128", DigestAlg::Xxh128)] {
        let m = Manifest::from_json(&read(&format!("outputs/{case}.manifest.json"))).unwrap();
        let mut checked = 0;
        for (path, entry) in &m.contents {
            let candidates = [inputs.join(path), inputs.join("data").join(path)];
            let Some(src) = candidates.iter().find(|p| p.is_file()) else {
                continue;
            };
            if path.starts_with("prefixed/") || path.starts_with("copies/") {
                continue;
            }
            let (digest, size) = hash_file(src, alg, |_| {}).unwrap();
            assert_eq!(digest, entry.digest, "{case}:{path}");
            assert_eq!(Some(size), entry.size, "{case}:{path}");
            assert_eq!(entry.alg(), alg, "{case}:{path}");
            checked += 1;
        }
        assert!(checked >= 4, "{case}: only {checked} inputs checked");
    }
}

#[test]
fn empty_manifest_digest_is_md5_of_header() {
    assert_eq!(Manifest::default().digest(), "64e7c61456b10382e2f3b571ac24b659");
    assert_eq!(md5_base64(b""), "1B2M2Y8AsgTpgAmY7PhCfg==");
}

#[test]
fn reference_extras_are_read_whatever_their_json_type() {
    let m = Manifest::from_json(&read("outputs/gcs_emulator.manifest.json")).unwrap();
    let e = &m.contents["gsingle.txt"];
    assert_eq!(e.extra_str("versionID").as_deref(), Some("1795792144765384875"));
    assert_eq!(e.content_check(), ContentCheck::None);
    let m = Manifest::from_json(&read("outputs/refs_nochecksum.manifest.json")).unwrap();
    assert_eq!(m.contents["file.txt"].size, None);
}

fn one_entry(path: &str, entry: &str) -> Vec<u8> {
    format!(r#"{{"version":1,"storagePolicy":"wandb-storage-policy-v1","contents":{{{path:?}:{entry}}}}}"#)
        .into_bytes()
}

#[test]
fn lenient_parsing_of_sizes_and_extras() {
    let m = Manifest::from_json(&one_entry(
        "a",
        r#"{"digest":"x","size":null,"extra":{"n":3},"zzz":1}"#,
    ))
    .unwrap();
    assert_eq!(m.contents["a"].size, None);
    assert_eq!(m.contents["a"].extra_str("n").as_deref(), Some("3"));
    let m = Manifest::from_json(&one_entry("a", r#"{"digest":"x","size":12.0}"#)).unwrap();
    assert_eq!(m.contents["a"].size, Some(12));
    // No storagePolicyConfig at all: W&B's default layout.
    assert_eq!(m.storage_policy_config.storage_layout, "V2");
}

#[test]
fn unsafe_paths_are_refused_naming_the_entry() {
    for bad in ["/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", "a/", ""] {
        let err = Manifest::from_json(&one_entry(bad, r#"{"digest":"x","size":1}"#)).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ManifestError::Entry { .. }), "{bad:?}: {msg}");
        assert!(msg.contains(&format!("{bad:?}")), "{bad:?} not named in {msg}");
    }
    let long = "x".repeat(256);
    assert!(Manifest::from_json(&one_entry(&long, r#"{"digest":"x"}"#)).is_err());
}

#[test]
fn file_directory_collisions_are_refused() {
    let json = br#"{"version":1,"contents":{"a":{"digest":"x"},"a-b":{"digest":"y"},"a/b":{"digest":"z"}}}"#;
    let err = Manifest::from_json(json).unwrap_err().to_string();
    assert!(err.contains("\"a\"") && err.contains("a/b"), "{err}");
    let ok = br#"{"version":1,"contents":{"a":{"digest":"x"},"a-b/c":{"digest":"y"},"ab":{"digest":"z"}}}"#;
    Manifest::from_json(ok).unwrap();
}

#[test]
fn malformed_manifests_give_clear_errors() {
    assert!(matches!(Manifest::from_json(b"{"), Err(ManifestError::Json(_))));
    assert!(matches!(
        Manifest::from_json(br#"{"version":2,"contents":{}}"#),
        Err(ManifestError::Version(2))
    ));
    let err = Manifest::from_json(&one_entry("a", r#"{"size":1}"#)).unwrap_err().to_string();
    assert!(err.contains("digest"), "{err}");
    let err = Manifest::from_json(&one_entry("a", r#"{"digest":"x","size":-1}"#)).unwrap_err();
    assert!(err.to_string().contains("size"), "{err}");
}
