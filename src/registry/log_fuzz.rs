//! Fuzzing the commit-log fold on stable: arbitrary commit sequences, and arbitrary bytes in place
//! of commit and checkpoint objects, go through exactly what a reader does with what it lists
//! (`from_checkpoint`, then `replay` per commit). The fold must never panic, must keep its
//! invariants (`CollectionState::check`) whatever it is fed, and must be deterministic, since
//! every reader has to arrive at the same state.

use proptest::prelude::*;

use super::*;

/// Cases per run: at least 100,000 are asked for (a few seconds in release, as CI runs it);
/// unoptimised builds run a tenth, to keep edit-test loops short.
const CASES: u32 = if cfg!(debug_assertions) { 10_000 } else { 100_000 };

fn version() -> impl Strategy<Value = u32> {
    prop_oneof![8 => 0u32..6, 1 => Just(u32::MAX - 1), 1 => Just(u32::MAX)]
}

fn alias() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["latest", "best", "prod", "", "v1", "a/b", "x:y", "é"])
        .prop_map(str::to_owned)
}

fn op() -> impl Strategy<Value = Op> {
    let aliases = || prop::collection::vec(alias(), 0..3);
    prop_oneof![
        4 => (version(), 0u8..4, aliases(), any::<u64>()).prop_map(|(version, d, aliases, size)| {
            Op::Create {
                version,
                digest: format!("d{d}"),
                manifest: format!("manifests/{d}.json"),
                artifact_type: if d == 3 { "model".into() } else { "dataset".into() },
                description: None,
                metadata: Value::Null,
                size,
                file_count: 1,
                aliases,
                history_step: None,
            }
        }),
        2 => (version(), aliases(), aliases())
            .prop_map(|(version, add, remove)| Op::Aliases { version, add, remove }),
        1 => (version(), proptest::option::of(".{0,4}"))
            .prop_map(|(version, description)| Op::Edit { version, description, metadata: None }),
        2 => version().prop_map(|version| Op::Delete { version }),
        2 => (version(), 0u32..3, aliases()).prop_map(|(version, v, aliases)| Op::Link {
            version,
            source: LinkSource { entity: "e".into(), project: "p".into(), name: "s".into(), version: v },
            digest: format!("d{v}"),
            manifest: format!("manifests/{v}.json"),
            artifact_type: "model".into(),
            size: 1,
            file_count: 1,
            aliases,
        }),
        1 => (version(), tags(), tags()).prop_map(|(version, add, remove)| Op::Tags { version, add, remove }),
        1 => (version(), ttl()).prop_map(|(version, ttl)| Op::Ttl { version, ttl }),
        1 => (tags(), tags(), proptest::option::of(ttl()), proptest::option::of(".{0,3}")).prop_map(
            |(add_tags, remove_tags, default_ttl, artifact_type)| Op::Collection(CollectionEdit {
                description: None,
                add_tags,
                remove_tags,
                default_ttl,
                artifact_type,
            })
        ),
        1 => Just(Op::DeleteCollection),
        1 => prop::sample::select(vec!["other", "", "a/b"])
            .prop_map(|name| Op::RenamedTo { name: name.to_owned() }),
    ]
}

fn tags() -> impl Strategy<Value = Vec<String>> {
    let tag = prop::sample::select(vec!["gold", "needs review", "", " x", "a/b"]);
    prop::collection::vec(tag.prop_map(str::to_owned), 0..3)
}

fn ttl() -> impl Strategy<Value = Ttl> {
    prop_oneof![Just(Ttl::Inherit), Just(Ttl::Never), (0u64..3).prop_map(Ttl::Seconds)]
}

/// How one stored object is damaged before the reader sees it.
#[derive(Debug, Clone)]
enum Damage {
    None,
    Truncate(usize),
    FlipByte(usize, u8),
    Replace(Vec<u8>),
    Json(serde_json::Value),
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value as J;
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        any::<i64>().prop_map(J::from),
        any::<u64>().prop_map(J::from),
        prop::sample::select(vec!["create", "aliases", "edit", "delete", "latest", "v0", ""])
            .prop_map(|s| J::String(s.into())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        let keys = prop::sample::select(vec![
            "seq",
            "time",
            "writer",
            "op",
            "kind",
            "version",
            "versions",
            "aliases",
            "next_version",
            "artifact_type",
            "digest",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(J::Array),
            prop::collection::btree_map(keys, inner, 0..5)
                .prop_map(|m| J::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        12 => Just(Damage::None),
        1 => any::<usize>().prop_map(Damage::Truncate),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Damage::FlipByte(i, b)),
        1 => prop::collection::vec(any::<u8>(), 0..48).prop_map(Damage::Replace),
        1 => json_value().prop_map(Damage::Json),
    ]
}

fn damaged(mut bytes: Vec<u8>, d: &Damage) -> Vec<u8> {
    match d {
        Damage::None => {}
        Damage::Truncate(n) => bytes.truncate(n % (bytes.len() + 1)),
        Damage::FlipByte(i, b) if !bytes.is_empty() => {
            let i = i % bytes.len();
            bytes[i] ^= b | 1;
        }
        Damage::FlipByte(..) => {}
        Damage::Replace(b) => bytes = b.clone(),
        Damage::Json(v) => bytes = serde_json::to_vec(v).unwrap_or_default(),
    }
    bytes
}

/// A log as a reader lists it: the commits (sequence number under which each is stored, its
/// bytes), and optionally a checkpoint written after the first `at` of them.
#[derive(Debug, Clone)]
struct Listed {
    commits: Vec<(u64, Vec<u8>)>,
    checkpoint: Option<(u64, Vec<u8>)>,
    /// The fold of the commits as writers meant them, when nothing was damaged or misnumbered.
    truth: Option<CollectionState>,
}

fn listed() -> impl Strategy<Value = Listed> {
    let commits = prop::collection::vec((op(), damage(), prop::bool::weighted(0.03)), 0..16);
    (commits, any::<prop::sample::Index>(), prop::option::weighted(0.4, damage())).prop_map(
        |(ops, at, checkpoint_damage)| {
            // Writers produce a valid log for whatever they decide; the fuzz feeds the ops as
            // they come, some commits stored under the wrong number, and damage on top.
            let mut truth = CollectionState::default();
            let mut commits = Vec::new();
            let mut states = vec![truth.clone()];
            let mut clean = true;
            for (i, (op, d, misnumbered)) in ops.into_iter().enumerate() {
                clean &= !misnumbered && matches!(d, Damage::None);
                let seq = i as u64 + 1;
                let c = Commit {
                    seq: if misnumbered { seq + 1 } else { seq },
                    time: DateTime::<Utc>::from_timestamp(seq as i64, 0).unwrap_or_default(),
                    writer: "fuzz".into(),
                    op,
                };
                let _ = truth.apply_lenient(&Commit { seq, ..c.clone() });
                states.push(truth.clone());
                commits.push((seq, damaged(serde_json::to_vec(&c).unwrap_or_default(), &d)));
            }
            clean &= matches!(checkpoint_damage, None | Some(Damage::None));
            let checkpoint = checkpoint_damage.map(|d| {
                let at = at.index(states.len());
                let bytes = serde_json::to_vec(&states[at]).unwrap_or_default();
                (at as u64, damaged(bytes, &d))
            });
            Listed { commits, checkpoint, truth: clean.then_some(truth) }
        },
    )
}

/// What `Registry::refresh` does with listed objects, minus the I/O.
fn read(l: &Listed) -> Result<(CollectionState, Vec<Replayed>), FoldError> {
    let mut state = CollectionState::default();
    if let Some((seq, bytes)) = &l.checkpoint
        && let Ok(s) = CollectionState::from_checkpoint(*seq, bytes)
    {
        state = s;
    }
    let mut replayed = Vec::new();
    let start = state.seq;
    for (seq, bytes) in l.commits.iter().filter(|(seq, _)| *seq > start) {
        replayed.push(state.replay(*seq, bytes)?);
        if let Err(e) = state.check() {
            panic!("after commit {seq}: {e}: {state:?}");
        }
    }
    Ok((state, replayed))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_fold_survives_arbitrary_logs_and_bytes(l in listed()) {
        let first = read(&l);
        // Deterministic: a second reader of the same objects arrives at the same state.
        prop_assert_eq!(&first, &read(&l));
        // Undamaged objects fold to what their writers meant, whether or not the reader starts
        // from a checkpoint.
        if let Some(truth) = &l.truth {
            let Ok((state, _)) = &first else {
                return Err(TestCaseError::fail(format!("a clean log failed to fold: {first:?}")));
            };
            prop_assert_eq!(state, truth);
        }
    }

    #[test]
    fn arbitrary_bytes_as_objects_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..96),
                                             v in json_value(), seq in 0u64..4) {
        let mut s = CollectionState::default();
        let _ = s.replay(seq, &bytes);
        let _ = s.replay(s.seq + 1, &serde_json::to_vec(&v).unwrap_or_default());
        let _ = CollectionState::from_checkpoint(seq, &bytes);
        if let Ok(cp) = CollectionState::from_checkpoint(seq, &serde_json::to_vec(&v).unwrap_or_default()) {
            prop_assert!(cp.check().is_ok());
        }
    }
}
