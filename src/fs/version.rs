//! One version as the mount holds it: its directory tree and what is needed to fetch each file,
//! built from the manifest JSON in one streaming pass.
//!
//! Memory is the point: a mount may hold versions of a million entries. Parsing into a
//! [`Manifest`](crate::manifest::Manifest) costs several hundred bytes per entry at its peak (a
//! `serde_json::Value` per entry, then a `BTreeMap` of `Entry`s), and freed small allocations
//! mostly stay in the process. Here each entry is parsed on its own with the manifest's lenient
//! entry parser, checked, and reduced to its path (appended to one arena), its size and its raw
//! MD5; only unusual entries (references, other digest algorithms, unknown sizes, `extra` such
//! as a chunk-sidecar binding) are kept
//! whole. The tree is then built from the arena, which is dropped: what stays is the tree (about
//! 40 bytes plus the name per entry) and 16 bytes of digest per entry.

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use super::FsError;
use super::tree::{Tree, TreeError};
use crate::manifest::{
    ContentCheck, Entry, MANIFEST_VERSION, ManifestError, parse_entry, validate_path,
};

/// A version's tree and entries. Immutable once built.
#[derive(Debug)]
pub(super) struct LoadedVersion {
    pub(super) tree: Tree,
    /// Raw MD5 of every entry by index (the tree's entry index); zeros for entries in `others`.
    md5: Vec<[u8; 16]>,
    /// Entries that do not fit the compact form.
    others: HashMap<u32, Entry>,
}

impl LoadedVersion {
    /// Parses and checks a manifest (`label` names the version in errors). Refuses what
    /// [`Manifest::from_json`](crate::manifest::Manifest::from_json) refuses, and duplicate paths.
    pub(super) fn from_json(label: &str, json: &[u8]) -> Result<LoadedVersion, FsError> {
        let manifest_err = |source| FsError::Manifest { artifact: label.to_owned(), source };
        let mut collector = Collector::default();
        let mut de = serde_json::Deserializer::from_slice(json);
        ManifestSeed(&mut collector)
            .deserialize(&mut de)
            .and_then(|()| de.end())
            .map_err(|e| manifest_err(ManifestError::Json(e)))?;
        if let Some(err) = collector.failed.take() {
            return Err(manifest_err(err));
        }
        collector.finish().map_err(|source| FsError::Tree { artifact: label.to_owned(), source })
    }

    /// The manifest entry with tree entry index `index` (`size` from the tree).
    pub(super) fn entry(&self, index: u32, size: u64) -> Entry {
        match self.others.get(&index) {
            Some(e) => e.clone(),
            None => Entry::stored(
                base64::engine::general_purpose::STANDARD.encode(self.md5[index as usize]),
                size,
            ),
        }
    }

    pub(super) fn size_unknown(&self, index: u32) -> bool {
        self.others.get(&index).is_some_and(|e| e.size.is_none())
    }

    /// Heap bytes held (approximately, for `others`).
    pub(super) fn heap_bytes(&self) -> usize {
        self.tree.heap_bytes()
            + self.md5.capacity() * size_of::<[u8; 16]>()
            + self.others.len() * (size_of::<(u32, Entry)>() + 64)
    }
}

/// Entries as they stream in.
#[derive(Default)]
struct Collector {
    /// Every path, concatenated; `ends[i]` is where path `i` ends.
    paths: String,
    ends: Vec<usize>,
    sizes: Vec<u64>,
    md5: Vec<[u8; 16]>,
    others: HashMap<u32, Entry>,
    /// The first entry refused; parsing stops there.
    failed: Option<ManifestError>,
}

impl Collector {
    fn push(&mut self, path: &str, value: Value) -> Result<(), ManifestError> {
        let entry = parse_entry(path, value)?;
        validate_path(path)?;
        if entry.digest.is_empty() {
            return Err(ManifestError::Entry {
                path: path.to_owned(),
                reason: "empty digest".into(),
            });
        }
        let index = u32::try_from(self.ends.len()).map_err(|_| ManifestError::Entry {
            path: path.to_owned(),
            reason: "more than 2^32 entries".into(),
        })?;
        let compact = match entry.content_check() {
            ContentCheck::Md5(raw)
                if entry.size.is_some() && !entry.is_reference() && entry.extra.is_empty() =>
            {
                Some(raw)
            }
            ContentCheck::Md5(_) | ContentCheck::Xxh128(_) | ContentCheck::None => None,
        };
        self.sizes.push(entry.size.unwrap_or(0));
        match compact {
            Some(raw) => self.md5.push(raw),
            None => {
                self.md5.push([0; 16]);
                self.others.insert(index, entry);
            }
        }
        self.paths.push_str(path);
        self.ends.push(self.paths.len());
        Ok(())
    }

    fn finish(self) -> Result<LoadedVersion, TreeError> {
        let Collector { paths, ends, sizes, mut md5, others, failed: _ } = self;
        let mut start = 0;
        let tree = Tree::build(ends.iter().zip(&sizes).enumerate().map(|(i, (&end, &size))| {
            let path = &paths[start..end];
            start = end;
            // Cannot truncate: `push` refuses more than 2^32 entries.
            (path, i as u32, size)
        }))?;
        md5.shrink_to_fit();
        Ok(LoadedVersion { tree, md5, others })
    }
}

/// The top-level manifest object: `version` is checked, `contents` streamed, the rest skipped.
struct ManifestSeed<'a>(&'a mut Collector);

impl<'de> DeserializeSeed<'de> for ManifestSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ManifestSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a W&B artifact manifest (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut version = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "version" => version = Some(map.next_value::<u64>()?),
                "contents" => map.next_value_seed(ContentsSeed(&mut *self.0))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match version {
            Some(MANIFEST_VERSION) => Ok(()),
            Some(v) => Err(de::Error::custom(ManifestError::Version(v))),
            None => Err(de::Error::missing_field("version")),
        }
    }
}

/// `contents`: one entry at a time into the collector.
struct ContentsSeed<'a>(&'a mut Collector);

impl<'de> DeserializeSeed<'de> for ContentsSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ContentsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of entry paths to entries")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(path) = map.next_key::<String>()? {
            let value: Value = map.next_value()?;
            if let Err(e) = self.0.push(&path, value) {
                // Keep the typed error; the message only stops the parse.
                let msg = e.to_string();
                self.0.failed = Some(e);
                return Err(de::Error::custom(msg));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::tree::NodeKind;
    use crate::manifest::{Manifest, md5_base64};

    fn manifest(entries: &[(&str, &str)]) -> String {
        let contents: Vec<String> = entries
            .iter()
            .map(|(p, e)| format!("{}:{e}", serde_json::to_string(p).unwrap()))
            .collect();
        format!(
            r#"{{"version":1,"storagePolicy":"wandb-storage-policy-v1","storagePolicyConfig":{{"storageLayout":"V2"}},"contents":{{{}}}}}"#,
            contents.join(",")
        )
    }

    #[test]
    fn agrees_with_the_manifest_parser() {
        let d = md5_base64(b"x");
        let json = manifest(&[
            ("b/c.txt", &format!(r#"{{"digest":"{d}","size":1}}"#)),
            ("a.txt", &format!(r#"{{"digest":"{d}","size":1.0}}"#)),
            ("nosize", &format!(r#"{{"digest":"{d}"}}"#)),
            ("ref", r#"{"digest":"etag","ref":"s3://b/k","size":5,"extra":{"etag":"x"}}"#),
            ("x128", &format!(r#"{{"digest":"{d}","size":1,"extra":{{"alg":"XXH128"}}}}"#)),
        ]);
        let parsed = Manifest::from_json(json.as_bytes()).unwrap();
        let loaded = LoadedVersion::from_json("v", json.as_bytes()).unwrap();
        assert_eq!(loaded.tree.len(), 1 + 5 + 1);
        for (path, want) in &parsed.contents {
            let node = loaded.tree.resolve(path).unwrap();
            let NodeKind::File { entry, size } = loaded.tree.kind(node) else {
                panic!("{path} is not a file");
            };
            let got = loaded.entry(entry, size);
            assert_eq!(got.content_check(), want.content_check(), "{path}");
            assert_eq!(got.reference, want.reference, "{path}");
            assert_eq!(got.alg(), want.alg(), "{path}");
            assert_eq!(loaded.size_unknown(entry), want.size.is_none(), "{path}");
            if let Some(s) = want.size {
                assert_eq!((got.size, size), (Some(s), s), "{path}");
            }
        }
        assert_eq!(loaded.others.len(), 3, "nosize, ref, x128 are kept whole");
    }

    #[test]
    fn refuses_what_the_manifest_parser_refuses() {
        let d = md5_base64(b"x");
        let ok = format!(r#"{{"digest":"{d}","size":1}}"#);
        for (path, entry) in [
            ("../evil", ok.as_str()),
            ("/abs", &ok),
            ("a//b", &ok),
            ("a/./b", &ok),
            ("a/", &ok),
            ("nul\u{0}", &ok),
            ("empty-digest", r#"{"digest":"","size":1}"#),
            ("no-digest", r#"{"size":1}"#),
            ("bad-size", &format!(r#"{{"digest":"{d}","size":-1}}"#)),
        ] {
            let json = manifest(&[(path, entry), ("ok", &ok)]);
            assert!(Manifest::from_json(json.as_bytes()).is_err(), "{path:?}");
            let err = LoadedVersion::from_json("acme/p/ds:v0", json.as_bytes()).unwrap_err();
            assert_eq!(err.errno(), libc::EIO, "{path:?}");
            assert!(err.to_string().contains("acme/p/ds:v0"), "{err}");
        }
        let collision = manifest(&[("a", &ok), ("a/b", &ok)]);
        let err = LoadedVersion::from_json("v", collision.as_bytes()).unwrap_err();
        assert!(matches!(err, FsError::Tree { .. }), "{err}");
        for bad in [r#"{"version":2,"contents":{}}"#, r#"{"contents":{}}"#, "[1]", "{", ""] {
            let err = LoadedVersion::from_json("v", bad.as_bytes()).unwrap_err();
            assert!(matches!(err, FsError::Manifest { .. }), "{bad}: {err}");
        }
        let empty = LoadedVersion::from_json("v", br#"{"version":1}"#).unwrap();
        assert_eq!(empty.tree.len(), 1);
    }

    #[test]
    fn holds_little_per_entry() {
        let d = md5_base64(b"x");
        let entries: Vec<(String, String)> = (0..100_000)
            .map(|i| {
                let path = format!("d{:03}/file-{:05}.bin", i / 1000, i);
                (path, format!(r#"{{"digest":"{d}","size":{i}}}"#))
            })
            .collect();
        let refs: Vec<(&str, &str)> =
            entries.iter().map(|(p, e)| (p.as_str(), e.as_str())).collect();
        let loaded = LoadedVersion::from_json("v", manifest(&refs).as_bytes()).unwrap();
        let per_entry = loaded.heap_bytes() / entries.len();
        assert!(per_entry < 64, "{per_entry} bytes per entry");
    }

    proptest::proptest! {
        #![proptest_config(crate::manifest::tests::fuzz::config())]

        /// The mount's own streaming parser, fed the manifest fuzzer's near-valid manifests:
        /// never a panic, and it accepts only what the manifest parser accepts (except that it
        /// skips the fields it ignores without checking their UTF-8).
        #[test]
        fn near_valid_manifests_never_panic_the_mount(
            bytes in crate::manifest::tests::fuzz::near_valid()
        ) {
            if LoadedVersion::from_json("v", &bytes).is_ok()
                && serde_json::from_slice::<Value>(&bytes).is_ok()
            {
                let parsed = Manifest::from_json(&bytes);
                proptest::prop_assert!(parsed.is_ok(), "{:?}", parsed.err());
            }
        }
    }
}
