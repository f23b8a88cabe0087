//! `wandb-artifact://<hex>/<path>` entries: an entry of another W&B artifact, as the SDK writes
//! it for `add_reference(other.get_entry(path))` (`<hex>` is the hex of the base64-decoded
//! artifact id; size 0, the target entry's digest).
//!
//! When a manifest is loaded, each such entry is replaced by its target's entry (`ArtifactByID`
//! for the target's collection and version, then its manifest): a stored target becomes a stored
//! entry of this version whose bytes the [`Redirect`] fetches from the target version's file
//! URLs (and the fetcher verifies against the target's MD5 as for any entry); a reference target
//! (s3, gs, http) becomes that reference. A target the server does not have (deleted, not
//! readable with this key) or that lacks the path, or whose digest is not the one recorded,
//! becomes an entry of unknown size whose every read fails with the reason: never other bytes.
//! A server that fails while resolving fails the manifest load (it is retried), so a passing
//! outage is not remembered as a broken entry.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, Value, json};

use super::{WandbBlobs, WandbError, WandbSource, queries};
use crate::names::CollectionPath;

pub const SCHEME_PREFIX: &str = "wandb-artifact://";
/// Target artifacts of one manifest looked up at once.
const TARGETS_IN_FLIGHT: usize = 8;

/// Where the bytes of one manifest path come from instead of the version's own files.
#[derive(Debug, Clone)]
pub enum Redirect {
    /// The entry `path` of the target version's files.
    To { blobs: Arc<WandbBlobs>, path: String },
    /// The reference cannot be resolved: why, for every read.
    Broken(String),
}

/// One `wandb-artifact://` entry of a manifest: its path, its reference and, if that parses,
/// the target's artifact id and path.
struct ArtifactRef {
    path: String,
    reference: String,
    target: Option<(String, String)>,
}

/// A target version: its files and its manifest's `contents`.
struct Target {
    blobs: Arc<WandbBlobs>,
    contents: Map<String, Value>,
}

/// `wandb-artifact://<hex>/<path>` → (artifact id as the API spells it, path).
pub fn parse(reference: &str) -> Option<(String, String)> {
    let rest = reference.strip_prefix(SCHEME_PREFIX)?;
    let (hex_id, path) = rest.split_once('/')?;
    let raw = hex::decode(hex_id).ok()?;
    Some((base64::engine::general_purpose::STANDARD.encode(raw), path.to_owned()))
}

impl WandbSource {
    /// The manifest `json` of `label` with its `wandb-artifact://` entries replaced by their
    /// targets', and the redirects of the stored ones; `None` when it has none.
    pub(super) async fn resolve_artifact_refs(
        &self,
        label: &str,
        json: &[u8],
    ) -> Result<Option<(Vec<u8>, HashMap<String, Redirect>)>, WandbError> {
        if !json.windows(SCHEME_PREFIX.len()).any(|w| w == SCHEME_PREFIX.as_bytes()) {
            return Ok(None);
        }
        let bad = |reason: String| WandbError::answer("FetchArtifactManifest", reason);
        let mut manifest: Value = serde_json::from_slice(json)
            .map_err(|e| bad(format!("manifest of {label} is not JSON: {e}")))?;
        let Some(contents) = manifest.get_mut("contents").and_then(Value::as_object_mut) else {
            return Ok(None);
        };
        let refs: Vec<ArtifactRef> = contents
            .iter()
            .filter_map(|(path, e)| {
                let r = e["ref"].as_str().filter(|r| r.starts_with(SCHEME_PREFIX))?;
                Some(ArtifactRef { path: path.clone(), reference: r.to_owned(), target: parse(r) })
            })
            .collect();
        if refs.is_empty() {
            return Ok(None);
        }
        let mut ids: Vec<String> =
            refs.iter().filter_map(|r| Some(r.target.as_ref()?.0.clone())).collect();
        ids.sort();
        ids.dedup();
        let targets: HashMap<String, Option<Target>> = futures::stream::iter(ids)
            .map(|id| async move {
                let t = self.target(&id).await?;
                Ok::<_, WandbError>((id, t))
            })
            .buffer_unordered(TARGETS_IN_FLIGHT)
            .try_collect()
            .await?;
        let mut redirects = HashMap::new();
        for ArtifactRef { path, reference, target: parsed } in refs {
            let recorded = contents[&path]["digest"].clone();
            let resolved = match &parsed {
                None => Err("it is not a valid wandb-artifact reference".to_owned()),
                Some((id, tpath)) => match targets.get(id).and_then(Option::as_ref) {
                    None => Err(format!(
                        "{} has no artifact {id} (deleted, or not readable with this API key)",
                        self.url
                    )),
                    Some(t) => resolve_one(t, tpath, &recorded).map(|e| {
                        // A stored target's bytes come from the target's files.
                        let to = Redirect::To { blobs: t.blobs.clone(), path: tpath.clone() };
                        let redirect = e.get("ref").is_none().then_some(to);
                        (e, redirect)
                    }),
                },
            };
            let entry = match resolved {
                Ok((target_entry, redirect)) => {
                    if let Some(r) = redirect {
                        redirects.insert(path.clone(), r);
                    }
                    target_entry
                }
                Err(reason) => {
                    let reason = format!("{label}: {path} refers to {reference}, but {reason}");
                    tracing::warn!("{reason}");
                    redirects.insert(path.clone(), Redirect::Broken(reason));
                    // Size unknown: every open asks the source, which answers with the reason.
                    json!({"digest": recorded})
                }
            };
            contents.insert(path, entry);
        }
        let bytes =
            serde_json::to_vec(&manifest).map_err(|e| bad(format!("manifest of {label}: {e}")))?;
        Ok(Some((bytes, redirects)))
    }

    /// The version an artifact id names and its manifest; `None` when the server has none such
    /// (or not committed).
    async fn target(&self, id: &str) -> Result<Option<Target>, WandbError> {
        let doc = match self.digest_feature().await? {
            true => queries::ARTIFACT_BY_ID_FULL,
            false => queries::ARTIFACT_BY_ID_BARE,
        };
        let vars = json!({"id": id, "includeAliases": false});
        let data = self.client.graphql("ArtifactByID", doc, vars).await?;
        let a = &data["artifact"];
        if a.is_null() || a["state"].as_str().is_some_and(|s| s != "COMMITTED") {
            return Ok(None);
        }
        let seq = &a["artifactSequence"];
        let (Some(name), Some(project), Some(entity), Some(version)) = (
            seq["name"].as_str(),
            seq["project"]["name"].as_str(),
            seq["project"]["entity"]["name"].as_str(),
            a["versionIndex"].as_u64().and_then(|v| u32::try_from(v).ok()),
        ) else {
            return Err(WandbError::answer(
                "ArtifactByID",
                format!("artifact {id} has no collection or version"),
            ));
        };
        let collection = CollectionPath::new(entity, project, name)
            .map_err(|e| WandbError::answer("ArtifactByID", format!("artifact {id}: {e}")))?;
        let label = format!("{collection}:v{version}");
        let json = self.manifest_wandb(&label, id).await?;
        let manifest: Value = serde_json::from_slice(&json).map_err(|e| {
            WandbError::answer("FetchArtifactManifest", format!("manifest of {label}: {e}"))
        })?;
        let contents = match manifest.get("contents") {
            Some(Value::Object(c)) => c.clone(),
            _ => Map::new(),
        };
        let blobs = Arc::new(self.version_blobs(&collection, version));
        Ok(Some(Target { blobs, contents }))
    }
}

/// The target's entry for `path`, if it is one this entry may stand for.
fn resolve_one(t: &Target, path: &str, recorded: &Value) -> Result<Value, String> {
    let label = &t.blobs.label;
    let Some(entry) = t.contents.get(path) else {
        return Err(format!("{label} has no entry {path}"));
    };
    if entry["ref"].as_str().is_some_and(|r| r.starts_with(SCHEME_PREFIX)) {
        return Err(format!("{label}:{path} is itself a wandb-artifact reference"));
    }
    if !recorded.is_null() && entry["digest"] != *recorded {
        return Err(format!(
            "{label}:{path} has digest {}, not the recorded {recorded}",
            entry["digest"]
        ));
    }
    Ok(entry.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_names_the_decoded_artifact_id_and_the_path() {
        // The SDK's b64_to_hex_id("QXJ0aWZhY3Q6MQ==") is the hex of b"Artifact:1".
        let hex_id = hex::encode(b"Artifact:1");
        let (id, path) = parse(&format!("wandb-artifact://{hex_id}/d/x.txt")).unwrap();
        assert_eq!((id.as_str(), path.as_str()), ("QXJ0aWZhY3Q6MQ==", "d/x.txt"));
        assert!(parse("wandb-artifact://zz/x").is_none(), "not hex");
        assert!(parse("wandb-artifact://abcd").is_none(), "no path");
        assert!(parse("s3://b/x").is_none());
    }
}
