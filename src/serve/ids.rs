//! GraphQL ids: opaque to the SDK, stateless for us. An id is W&B-shaped, `base64("<Type>:<hex>")`,
//! where `<hex>` encodes what it names. Base64 of `"Artifact:"` followed by hex digits never
//! contains `+` or `/`, so artifact ids are safe as URL path segments (the SDK puts them in
//! `/artifactsV2/…` paths) and still decode as W&B's `wandb-artifact://` references expect.

use base64::Engine;

use crate::names::CollectionPath;
use crate::registry::drafts::valid_draft_id;
use crate::registry::runs::RunPath;

/// What an id names.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeId {
    Version(CollectionPath, u32),
    Draft(String),
    Collection(CollectionPath),
    Project(String, String),
    Run(RunPath),
    Other(String),
}

const SEP: char = '\u{1f}';

fn encode(kind: &str, parts: &[&str]) -> String {
    let joined = parts.join(&SEP.to_string());
    base64::engine::general_purpose::STANDARD.encode(format!("{kind}:{}", hex::encode(joined)))
}

pub fn version_id(c: &CollectionPath, version: u32) -> String {
    encode("Artifact", &["v", &c.entity, &c.project, &c.name, &version.to_string()])
}

pub fn draft_id(draft: &str) -> String {
    encode("Artifact", &["d", draft])
}

pub fn collection_id(c: &CollectionPath) -> String {
    encode("ArtifactCollection", &[&c.entity, &c.project, &c.name])
}

pub fn project_id(entity: &str, project: &str) -> String {
    encode("Project", &[entity, project])
}

pub fn run_id(r: &RunPath) -> String {
    encode("Run", &[&r.entity, &r.project, &r.name])
}

pub fn other_id(kind: &str, what: &str) -> String {
    encode(kind, &[what])
}

/// A stable small integer for a project (`Project.internalId`, `Run.projectId`, which the SDK
/// casts with `int()`).
pub fn project_number(entity: &str, project: &str) -> i64 {
    use sha2::Digest;
    let h = sha2::Sha256::digest(format!("{entity}/{project}").as_bytes());
    i64::from(u32::from_be_bytes([h[0], h[1], h[2], h[3]]) & 0x7fff_ffff)
}

pub fn decode(id: &str) -> Option<NodeId> {
    let raw = base64::engine::general_purpose::STANDARD.decode(id).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (kind, hex_part) = text.split_once(':')?;
    let joined = String::from_utf8(hex::decode(hex_part).ok()?).ok()?;
    let parts: Vec<&str> = joined.split(SEP).collect();
    Some(match (kind, parts.as_slice()) {
        ("Artifact", ["v", e, p, n, v]) => {
            NodeId::Version(CollectionPath::new(e, p, n).ok()?, v.parse().ok()?)
        }
        ("Artifact", ["d", d]) if valid_draft_id(d) => NodeId::Draft((*d).to_owned()),
        ("ArtifactCollection", [e, p, n]) => NodeId::Collection(CollectionPath::new(e, p, n).ok()?),
        ("Project", [e, p]) => NodeId::Project((*e).to_owned(), (*p).to_owned()),
        ("Run", [e, p, n]) => NodeId::Run(RunPath::new(e, p, n).ok()?),
        _ => NodeId::Other(joined),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_artifact_ids_are_path_safe() {
        for name in ["d", "bike-dataset", "a.b_c", "x".repeat(128).as_str()] {
            let c = CollectionPath::new("ent ity", "pro-ject", name).unwrap();
            for v in [0, 7, 123_456] {
                let id = version_id(&c, v);
                assert!(!id.contains('/') && !id.contains('+'), "{id}");
                assert_eq!(decode(&id), Some(NodeId::Version(c.clone(), v)));
            }
            assert_eq!(decode(&collection_id(&c)), Some(NodeId::Collection(c.clone())));
        }
        let d = draft_id("0123456789abcdef0123456789abcdef");
        assert!(d.starts_with("QXJ0aWZhY3Q6") && !d.contains('/') && !d.contains('+'));
        assert_eq!(decode(&d), Some(NodeId::Draft("0123456789abcdef0123456789abcdef".into())));
        assert_eq!(decode("not base64!"), None);
        assert_eq!(decode(&draft_id("../../etc")), Some(NodeId::Other("d\u{1f}../../etc".into())));
        assert!(project_number("e", "p") >= 0);
    }
}
