//! Maps whose keys are not strings (tuples, tagged enums), kept in JSON as a list of
//! `[key, value]` pairs: JSON object keys are strings, so `serde_json` cannot encode such a map
//! as an object, and a checkpoint of a state holding one would never be written.
//!
//! Use with `#[serde(with = "pairs")]`. Reading also accepts an empty object, the form such a
//! map took while it could be encoded at all (when it was empty).

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Serialize, Serializer};

pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
    map: &BTreeMap<K, V>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(map.iter())
}

pub fn deserialize<'de, K, V, D>(d: D) -> Result<BTreeMap<K, V>, D::Error>
where
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
    D: Deserializer<'de>,
{
    d.deserialize_any(PairsVisitor(PhantomData))
}

struct PairsVisitor<K, V>(PhantomData<(K, V)>);

impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>> Visitor<'de> for PairsVisitor<K, V> {
    type Value = BTreeMap<K, V>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of [key, value] pairs")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some((k, v)) = seq.next_element::<(K, V)>()? {
            if out.insert(k, v).is_some() {
                return Err(de::Error::custom("a key appears twice"));
            }
        }
        Ok(out)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        match map.next_key::<IgnoredAny>()? {
            None => Ok(BTreeMap::new()),
            Some(_) => {
                Err(de::Error::custom("expected a list of [key, value] pairs, not an object"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::commit_log::{Commit, Fold};
    use super::super::directory::{DirOp, Directory, Member, Role};

    /// A directory with registries and their members is a checkpoint that reads back as itself.
    #[test]
    fn a_directory_with_registries_round_trips_through_json() {
        let mut d = Directory::default();
        let ops = [
            DirOp::CreateUser { name: "ana".into(), admin: false, email: None },
            DirOp::CreateOrg {
                name: "acme".into(),
                entity: "acme-org".into(),
                admin: "ana".into(),
            },
            DirOp::CreateTeam { name: "vision".into(), org: "acme".into(), members: vec![] },
            DirOp::UpsertRegistry {
                entity: "acme-org".into(),
                project: "wandb-registry-models".into(),
                by: "ana".into(),
                description: None,
                visibility: None,
                allow_all_types: None,
                add_types: vec![],
            },
            DirOp::SetRegistryMember {
                entity: "acme-org".into(),
                project: "wandb-registry-models".into(),
                member: Member::Team("vision".into()),
                role: Role::Viewer,
            },
        ];
        for (i, op) in ops.into_iter().enumerate() {
            let seq = i as u64 + 1;
            d.apply(&Commit { seq, time: chrono::Utc::now(), writer: "test".into(), op }).unwrap();
        }
        let bytes = serde_json::to_vec(&d).unwrap();
        let back: Directory = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, d);
        // The form an empty map had before: still read.
        let old = br#"{"seq":0,"users":{},"orgs":{},"teams":{},"registries":{}}"#;
        assert_eq!(serde_json::from_slice::<Directory>(old).unwrap(), Directory::default());
        let bad = br#"{"seq":0,"users":{},"orgs":{},"teams":{},"registries":{"x":1}}"#;
        assert!(serde_json::from_slice::<Directory>(bad).is_err());
    }
}
