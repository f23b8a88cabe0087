//! Fuzzing what a W&B server answers, on stable (as `registry::log_fuzz` does for the fold):
//! GraphQL pages of versions and the manifests they point at are JSON of any shape, with the
//! field names the SDK's documents ask for mixed in. Reading them must never panic, and what is
//! kept must hang together: every alias names a version kept, every kept manifest entry has a
//! path the mount can serve and survives its own serialisation.

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::{CollectionView, add_versions_page};
use crate::manifest::{Manifest, validate_path};

/// Cases per run: a tenth in unoptimised builds, to keep edit-test loops short.
const CASES: u32 = if cfg!(debug_assertions) { 2_000 } else { 20_000 };

/// Field names of `ProjectArtifacts` answers and of manifests, and a few others.
const KEYS: &[&str] = &[
    "project",
    "artifactType",
    "artifactCollection",
    "artifacts",
    "edges",
    "node",
    "version",
    "versionIndex",
    "state",
    "id",
    "digest",
    "size",
    "fileCount",
    "createdAt",
    "metadata",
    "description",
    "aliases",
    "alias",
    "name",
    "pageInfo",
    "hasNextPage",
    "endCursor",
    "contents",
    "storagePolicy",
    "storagePolicyConfig",
    "ref",
    "extra",
    "birthArtifactID",
    "x",
];

/// Strings near the edges of what the readers parse.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "COMMITTED",
            "PENDING",
            "v0",
            "v1",
            "v4294967295",
            "v4294967296",
            "v",
            "latest",
            "2026-12-01T18:44:32",
            "2026-12-01T18:44:32Z",
            "not a time",
            "12",
            "-1",
            "1099511627776000",
            "{\"a\":1}",
            "XUFAKrxLKna5cZ2REBfFkg==",
            "a/../b",
            "/abs",
            "",
            "é\u{202e}",
            "wandb-storage-policy-v1",
        ])
        .prop_map(str::to_owned),
        ".{0,12}",
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(8, 256, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner), 0..8).prop_map(
                |fields| {
                    let map: Map<String, Value> =
                        fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                    Value::Object(map)
                }
            ),
        ]
    })
}

/// A page shaped like a real answer, with arbitrary JSON in its nodes.
fn page() -> impl Strategy<Value = Value> {
    (prop::collection::vec((json(), json(), json()), 0..6), json()).prop_map(|(edges, info)| {
        let edges: Vec<Value> = edges
            .into_iter()
            .map(|(version, node, aliases)| {
                let mut node = match node {
                    Value::Object(map) => map,
                    _ => Map::new(),
                };
                node.entry("state").or_insert_with(|| "COMMITTED".into());
                node.insert("aliases".into(), aliases);
                serde_json::json!({"version": version, "node": node})
            })
            .collect();
        serde_json::json!({"project": {"artifactType": {"artifactCollection": {"artifacts": {
            "edges": edges, "pageInfo": info,
        }}}}})
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: CASES, failure_persistence: None, ..ProptestConfig::default()
    })]

    #[test]
    fn version_pages_of_any_shape_never_panic_and_aliases_name_kept_versions(
        data in prop_oneof![page(), json()],
    ) {
        let mut view = CollectionView::default();
        if let Ok(cursor) = add_versions_page(&mut view, "coll", &data) {
            prop_assert!(cursor.as_ref().is_none_or(Value::is_string), "{cursor:?}");
        }
        for (alias, version) in &view.aliases {
            prop_assert!(view.versions.contains_key(version), "{alias} -> v{version}");
        }
        for (version, info) in &view.versions {
            prop_assert_eq!(*version, info.version);
        }
    }

    #[test]
    fn manifests_of_any_shape_never_panic_and_what_is_kept_round_trips(
        contents in json(), policy in json(), extra in json(),
    ) {
        let doc = serde_json::json!({
            "version": 1, "storagePolicy": policy, "storagePolicyConfig": extra,
            "contents": contents,
        });
        let bytes = serde_json::to_vec(&doc).unwrap_or_default();
        if let Ok(manifest) = Manifest::from_json(&bytes) {
            for path in manifest.contents.keys() {
                prop_assert!(validate_path(path).is_ok(), "{path:?}");
            }
            let again = Manifest::from_json(&manifest.to_json());
            prop_assert!(again.as_ref().is_ok_and(|m| m.contents == manifest.contents), "{again:?}");
        }
    }
}
