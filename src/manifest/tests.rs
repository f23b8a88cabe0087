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
    // Floats in `extra` come back as the same bytes (serde_json's default float parsing is
    // not exact: found by fuzzing).
    let float = one_entry("a", r#"{"digest":"x","extra":{"f":5.3846222811071244e-194}}"#);
    let once = Manifest::from_json(&float).unwrap().to_json();
    assert_eq!(Manifest::from_json(&once).unwrap().to_json(), once);
    assert!(String::from_utf8_lossy(&once).contains("5.3846222811071244e-194"));
    // One that is not an object means nothing, as for the mount's parser (found by fuzzing).
    let odd = br#"{"version":1,"storagePolicyConfig":false,"contents":{}}"#;
    assert_eq!(Manifest::from_json(odd).unwrap().storage_policy_config.storage_layout, "V2");
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

#[test]
fn an_unknown_size_stays_unknown_through_wandb_bytes() {
    // The Python form of an imported manifest and a `--no-checksum` reference: no size at all.
    let python = br#"{"version":1,"storagePolicy":"wandb-storage-policy-v1","contents":{
        "ref.txt":{"digest":"https://example.com/a.txt","ref":"https://example.com/a.txt"},
        "stored.bin":{"digest":"0/ppOIkogzD4OkZK25Uczw==","size":null},
        "empty.txt":{"digest":"1B2M2Y8AsgTpgAmY7PhCfg=="}}}"#;
    let m = Manifest::from_json(python).unwrap();
    assert_eq!(m.contents["ref.txt"].size, None);
    assert_eq!(m.contents["stored.bin"].size, None);
    let stored = m.to_json();
    // wandb-core's bytes: an unknown size is written as 0 ...
    let text = String::from_utf8(stored.clone()).unwrap();
    assert!(text.contains(r#""ref.txt":{"digest":"https://example.com/a.txt","ref":"https://example.com/a.txt","size":0,"skip_cache":false}"#), "{text}");
    // ... and read back as unknown, except where the digest says the content is empty.
    let again = Manifest::from_json(&stored).unwrap();
    assert_eq!(again.contents["ref.txt"].size, None);
    assert_eq!(again.contents["stored.bin"].size, None);
    assert_eq!(again.contents["empty.txt"].size, Some(0));
    assert_eq!(again.to_json(), stored);
    assert_eq!(again.digest(), m.digest());
    // The SDK's own uploaded reference manifest records its unknown sizes as 0 too.
    let raw = read("capture/uploaded_wandb_manifest.fixture-uploaded-ref.json");
    let m = Manifest::from_json(&raw).unwrap();
    assert!(m.contents.values().all(|e| e.size.is_none()));
    assert_eq!(m.to_json(), raw);
}

// ---- fuzzing: the parser never panics, and what it accepts is safe and stable -------------------

pub(crate) mod fuzz {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::super::*;

    /// Cases per property: enough to cover the grammar below many times over (about a second
    /// each in release builds).
    pub(crate) const CASES: u32 = 100_000;

    pub(crate) fn config() -> ProptestConfig {
        ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() }
    }

    /// Path components near the edge of what is allowed.
    fn component() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just(".".to_owned()),
            Just("..".to_owned()),
            Just("a\0b".to_owned()),
            Just("x".repeat(256)),
            Just("x".repeat(255)),
            "[a-c]{1,3}",
            "\\PC{1,4}",
        ]
    }

    fn path() -> impl Strategy<Value = String> {
        (any::<bool>(), prop::collection::vec(component(), 1..4))
            .prop_map(|(abs, parts)| format!("{}{}", if abs { "/" } else { "" }, parts.join("/")))
    }

    /// JSON values of every type, small.
    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            "\\PC{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn digest() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!("1B2M2Y8AsgTpgAmY7PhCfg==")),
            Just(json!("0/ppOIkogzD4OkZK25Uczw==")),
            Just(json!("")),
            "[A-Za-z0-9+/=]{0,30}".prop_map(Value::String),
            value(),
        ]
    }

    fn size() -> impl Strategy<Value = Option<Value>> {
        prop::option::of(prop_oneof![
            Just(json!(0)),
            Just(json!(12.0)),
            Just(json!(-1)),
            Just(json!(1.5)),
            Just(json!(1e300)),
            any::<u64>().prop_map(|n| json!(n)),
            value(),
        ])
    }

    fn entry() -> impl Strategy<Value = Value> {
        (
            digest(),
            size(),
            prop::option::of(prop_oneof![
                "(s3|gs|https?|file)://[a-z/]{0,8}".prop_map(Value::String),
                value()
            ]),
            prop::option::of(value()),
            prop::option::of(prop::collection::btree_map(
                prop_oneof![Just("alg".to_owned()), Just("etag".to_owned()), "[a-z]{1,4}"],
                prop_oneof![Just(json!("XXH128")), value()],
                0..3,
            )),
            any::<u8>(),
        )
            .prop_map(|(digest, size, reference, other, extra, shape)| {
                let mut obj = serde_json::Map::new();
                obj.insert("digest".into(), digest);
                if let Some(s) = size {
                    obj.insert("size".into(), s);
                }
                if let Some(r) = reference {
                    obj.insert("ref".into(), r);
                }
                if let Some(o) = other {
                    let key = ["local_path", "birthArtifactID", "skip_cache", "extra"]
                        [shape as usize % 4];
                    obj.insert(key.into(), o);
                }
                if let Some(e) = extra {
                    obj.insert("extra".into(), Value::Object(e.into_iter().collect()));
                }
                // A few entries are not objects at all.
                if shape % 61 == 0 { Value::Array(vec![]) } else { Value::Object(obj) }
            })
    }

    /// A manifest close to a valid one, as JSON text, possibly cut or with a byte changed.
    pub(crate) fn near_valid() -> impl Strategy<Value = Vec<u8>> {
        (
            prop_oneof![Just(json!(1)), Just(json!(2)), value()],
            prop::option::of(value()),
            prop::collection::btree_map(path(), entry(), 0..6),
            any::<u16>(),
            any::<u8>(),
        )
            .prop_map(|(version, config, contents, at, byte)| {
                let mut m = json!({"version": version, "storagePolicy": "wandb-storage-policy-v1"});
                if let Some(c) = config {
                    m["storagePolicyConfig"] = c;
                }
                m["contents"] = Value::Object(contents.into_iter().collect());
                let mut bytes = serde_json::to_vec(&m).unwrap_or_default();
                match at % 4 {
                    0 if !bytes.is_empty() => {
                        let i = at as usize % bytes.len();
                        bytes[i] = byte;
                    }
                    1 => bytes.truncate(at as usize % (bytes.len() + 1)),
                    _ => {}
                }
                bytes
            })
    }

    /// What the parser promises for any input: no panic; an accepted manifest is valid, and
    /// its W&B serialisation is a fixed point with the same artifact digest.
    fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
        let Ok(m) = Manifest::from_json(bytes) else { return Ok(()) };
        prop_assert!(m.validate().is_ok());
        for path in m.contents.keys() {
            prop_assert!(validate_path(path).is_ok(), "{path:?}");
        }
        let once = m.to_json();
        let again = Manifest::from_json(&once);
        prop_assert!(again.is_ok(), "re-parse failed: {:?}", again.err());
        let again = again.unwrap_or_default();
        prop_assert_eq!(again.to_json(), once);
        prop_assert_eq!(again.digest(), m.digest());
        Ok(())
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn arbitrary_bytes_never_panic_the_parser(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            check(&bytes)?;
        }

        #[test]
        fn near_valid_manifests_parse_safely_or_fail_cleanly(bytes in near_valid()) {
            check(&bytes)?;
        }
    }
}
