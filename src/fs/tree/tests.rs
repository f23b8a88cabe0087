//! The tree's invariants, checked on hand-picked and random path sets.

use super::*;
use std::collections::{BTreeMap, BTreeSet};

/// Entry index = position in `paths`, size = 10 × (index + 1).
fn build(paths: &[&str]) -> Result<Tree, TreeError> {
    Tree::build(paths.iter().enumerate().map(|(i, p)| (*p, i as u32, 10 * (i as u64 + 1))))
}

fn child_names(t: &Tree, dir: NodeId) -> Vec<&str> {
    t.children(dir, 0).map(|(_, c)| t.name(c)).collect()
}

/// Checks the structural invariants from the module docs on any tree.
fn check_invariants(t: &Tree) {
    assert_eq!(t.parent(Tree::ROOT), Tree::ROOT);
    assert!(t.is_dir(Tree::ROOT));
    assert_eq!(t.name(Tree::ROOT), "");
    let mut seen = vec![false; t.len()];
    seen[0] = true;
    for id in 0..t.len() as u32 {
        let n = NodeId(id);
        if !t.is_dir(n) {
            assert_eq!(t.child_count(n), 0);
            assert_eq!(t.children(n, 0).count(), 0);
            continue;
        }
        let kids: Vec<NodeId> = t.children(n, 0).map(|(_, c)| c).collect();
        assert_eq!(kids.len(), t.child_count(n));
        for (k, (next, c)) in t.children(n, 0).enumerate() {
            assert_eq!(next, k + 1);
            assert_eq!(t.parent(c), n);
            assert!(c > n, "child id must exceed parent id");
            assert!(!std::mem::replace(&mut seen[c.idx()], true), "node listed twice");
            assert_eq!(t.lookup(n, t.name(c)), Some(c));
            assert_eq!(t.resolve(&t.path(c)), Some(c));
        }
        for c in &kids {
            let range = t.siblings(*c);
            assert_eq!(range.map(NodeId).collect::<Vec<_>>(), kids, "siblings of a child");
        }
        for w in kids.windows(2) {
            assert_eq!(w[1].0, w[0].0 + 1, "siblings must be contiguous");
            assert!(t.name(w[0]) < t.name(w[1]), "siblings must be sorted, unique");
        }
        let subdirs = kids.iter().filter(|c| t.is_dir(**c)).count();
        assert_eq!(t.subdir_count(n), subdirs);
        let total = kids.iter().fold(0u64, |acc, c| acc.saturating_add(t.size(*c)));
        assert_eq!(t.size(n), total);
    }
    assert!(seen.iter().all(|s| *s), "every node is some directory's child");
}

#[test]
fn empty_tree() {
    let t = build(&[]).unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(Tree::root(), NodeId(0));
    assert_eq!(t.kind(Tree::ROOT), NodeKind::Dir);
    assert_eq!(t.child_count(Tree::ROOT), 0);
    assert_eq!(t.subdir_count(Tree::ROOT), 0);
    assert_eq!(t.children(Tree::ROOT, 0).count(), 0);
    assert_eq!(t.resolve(""), Some(Tree::ROOT));
    assert_eq!(t.resolve("a"), None);
    assert_eq!(t.lookup(Tree::ROOT, ""), None);
    assert_eq!(t.path(Tree::ROOT), "");
    assert_eq!(t.size(Tree::ROOT), 0);
    assert!(t.contains(Tree::ROOT));
    assert!(!t.contains(NodeId(1)));
    check_invariants(&t);
}

#[test]
fn nested_paths() {
    let t =
        build(&["data/train/b.png", "README.md", "data/test/c.png", "data/train/a.png"]).unwrap();
    check_invariants(&t);
    assert_eq!(t.len(), 8); // root, README.md, data, test, train, 3 files
    assert_eq!(child_names(&t, Tree::ROOT), ["README.md", "data"]);
    assert_eq!(t.subdir_count(Tree::ROOT), 1);
    let data = t.resolve("data").unwrap();
    assert_eq!(t.kind(data), NodeKind::Dir);
    assert_eq!(child_names(&t, data), ["test", "train"]);
    assert_eq!(t.subdir_count(data), 2);
    let train = t.lookup(data, "train").unwrap();
    assert_eq!(child_names(&t, train), ["a.png", "b.png"]);
    assert_eq!(t.subdir_count(train), 0);
    let a = t.resolve("data/train/a.png").unwrap();
    assert_eq!(t.kind(a), NodeKind::File { entry: 3, size: 40 });
    assert_eq!(t.parent(a), train);
    assert_eq!(t.path(a), "data/train/a.png");
    assert_eq!(t.size(train), 10 + 40);
    assert_eq!(t.size(data), 10 + 30 + 40);
    assert_eq!(t.size(Tree::ROOT), 100);
}

#[test]
fn sibling_order_is_byte_order_not_path_byte_order() {
    // '-' (0x2D) and '.' (0x2E) sort below '/' (0x2F): a plain byte sort of the paths
    // would interleave these with the contents of directory "a".
    let t = build(&["a/z", "a-c", "a.d", "a0", "a/b", "A", "a/-"]).unwrap();
    check_invariants(&t);
    assert_eq!(child_names(&t, Tree::ROOT), ["A", "a", "a-c", "a.d", "a0"]);
    let a = t.resolve("a").unwrap();
    assert_eq!(child_names(&t, a), ["-", "b", "z"]);
    assert_eq!(t.kind(t.resolve("a-c").unwrap()), NodeKind::File { entry: 1, size: 20 });
}

#[test]
fn siblings_equal_in_their_first_bytes_still_sort() {
    // The shared prefix is empty ("b" differs at once), so the 8-byte sort keys of the
    // first two names tie and only the full comparison can order them.
    let long = |tail: &str| format!("aaaaaaaaaaaa{tail}");
    let (l2, l1, l10) = (long("2"), long("1"), long("10"));
    let t = build(&[&l2, "b", &l10, &l1, "aaaaaaaa"]).unwrap();
    check_invariants(&t);
    assert_eq!(
        child_names(&t, Tree::ROOT),
        ["aaaaaaaa", l1.as_str(), l10.as_str(), l2.as_str(), "b"]
    );
    // All names share "pre_": keys start after it.
    let t = build(&["pre_b", "pre_", "pre_a", "pre_ab"]).unwrap();
    assert_eq!(child_names(&t, Tree::ROOT), ["pre_", "pre_a", "pre_ab", "pre_b"]);
}

#[test]
fn unicode_names() {
    let nfc = "caf\u{e9}.txt";
    let nfd = "cafe\u{301}.txt";
    let t = build(&["données été.txt", "日本/語.txt", "emoji 🎉/x", nfc, nfd]).unwrap();
    check_invariants(&t);
    // NFC and NFD spellings are different byte strings, hence different files.
    assert_ne!(t.resolve(nfc), t.resolve(nfd));
    assert_eq!(t.kind(t.resolve(nfd).unwrap()), NodeKind::File { entry: 4, size: 50 });
    let ja = t.resolve("日本/語.txt").unwrap();
    assert_eq!(t.name(ja), "語.txt");
    assert_eq!(t.name(t.parent(ja)), "日本");
    assert_eq!(t.path(ja), "日本/語.txt");
    assert_eq!(t.resolve("données été.txt").map(|n| t.name(n)), Some("données été.txt"));
    let mut expected = vec!["données été.txt", "emoji 🎉", "日本", nfc, nfd];
    expected.sort_unstable();
    assert_eq!(child_names(&t, Tree::ROOT), expected);
}

#[test]
fn ten_thousand_children() {
    const CHILDREN: usize = 10_000;
    let mut names: Vec<String> = (0..CHILDREN).map(|i| format!("f{i:05}")).collect();
    fastrand::Rng::with_seed(7).shuffle(&mut names);
    let t = Tree::build(names.iter().map(|n| {
        let i: u32 = n[1..].parse().unwrap();
        (n.as_str(), i, u64::from(i))
    }))
    .unwrap();
    check_invariants(&t);
    assert_eq!(t.child_count(Tree::ROOT), CHILDREN);
    for i in 0..CHILDREN {
        let c = t.lookup(Tree::ROOT, &format!("f{i:05}")).unwrap();
        assert_eq!(t.kind(c), NodeKind::File { entry: i as u32, size: i as u64 });
    }
    assert_eq!(t.lookup(Tree::ROOT, "f10000"), None);
    assert_eq!(t.lookup(Tree::ROOT, "f"), None);
    assert_eq!(t.lookup(Tree::ROOT, "f000000"), None);
    // From every offset, the listing resumes at exactly the offset-th child.
    for off in 0..CHILDREN {
        let (next, c) = t.children(Tree::ROOT, off).next().unwrap();
        assert_eq!(next, off + 1);
        assert_eq!(t.name(c), format!("f{off:05}"));
    }
    assert_eq!(t.children(Tree::ROOT, CHILDREN).count(), 0);
    assert_eq!(t.children(Tree::ROOT, usize::MAX).count(), 0);
    // Readdir in random-sized batches, resuming each time: every child exactly once.
    let mut rng = fastrand::Rng::with_seed(11);
    let mut seen = Vec::new();
    let mut off = 0;
    loop {
        let batch: Vec<_> = t.children(Tree::ROOT, off).take(rng.usize(1..300)).collect();
        let Some(&(last, _)) = batch.last() else {
            break;
        };
        seen.extend(batch.iter().map(|(_, c)| t.name(*c).to_owned()));
        off = last;
    }
    let mut expected = names.clone();
    expected.sort_unstable();
    assert_eq!(seen, expected);
}

#[test]
fn file_dir_collision_in_both_orders() {
    let want = TreeError::FileDirCollision { file: "a".into(), descendant: "a/b".into() };
    assert_eq!(build(&["a", "a/b"]).unwrap_err(), want);
    assert_eq!(build(&["a/b", "a"]).unwrap_err(), want);
    let deep = TreeError::FileDirCollision { file: "x/a/b".into(), descendant: "x/a/b/c/d".into() };
    assert_eq!(build(&["x/a/b/c/d", "x/a-", "x/a/b"]).unwrap_err(), deep);
    assert_eq!(build(&["x/a/b", "x/a/b-", "x/a/b/c/d"]).unwrap_err(), deep);
    // Shared prefixes that are not whole components are fine.
    assert!(build(&["a", "ab/c", "a-/c", "a.b"]).is_ok());
}

#[test]
fn duplicate_path() {
    assert_eq!(
        build(&["a/b", "c", "a/b"]).unwrap_err(),
        TreeError::Duplicate { path: "a/b".into() }
    );
    assert_eq!(build(&["c", "c"]).unwrap_err(), TreeError::Duplicate { path: "c".into() });
}

#[test]
fn bad_components() {
    for p in ["", "/a", "a/", "a//b", "/"] {
        assert_eq!(
            build(&["ok", p]).unwrap_err(),
            TreeError::EmptyComponent { path: p.into() },
            "{p:?}"
        );
    }
    for p in [".", "..", "a/./b", "a/../b", "a/..", "./a"] {
        assert_eq!(
            build(&["ok", p]).unwrap_err(),
            TreeError::DotComponent { path: p.into() },
            "{p:?}"
        );
    }
    for p in ["\0", "a\0b", "a/\0"] {
        assert_eq!(build(&["ok", p]).unwrap_err(), TreeError::NulByte { path: p.into() }, "{p:?}");
    }
    // Dots are only special as a whole component.
    let t = build(&["...", ".hidden/.x", "a./..b"]).unwrap();
    check_invariants(&t);
    assert!(t.resolve("a./..b").is_some());
}

#[test]
fn name_length_limit() {
    let ascii_max = "n".repeat(NAME_MAX_BYTES);
    let ascii_over = "n".repeat(NAME_MAX_BYTES + 1);
    // 'é' is 2 bytes: 127 of them plus one ASCII byte is exactly the limit.
    let multi_max = format!("{}x", "é".repeat(127));
    let multi_over = "é".repeat(128);
    assert_eq!(multi_max.len(), NAME_MAX_BYTES);
    let dir_max = format!("{ascii_max}/{multi_max}");
    let t = build(&[&ascii_max, &multi_max, &dir_max.replace(&ascii_max, "d")]).unwrap();
    check_invariants(&t);
    assert_eq!(t.name(t.resolve(&multi_max).unwrap()), multi_max);
    assert!(build(&[&dir_max]).unwrap().resolve(&dir_max).is_some());
    for bad in [&ascii_over, &multi_over, &format!("d/{ascii_over}/f")] {
        let err = build(&[bad]).unwrap_err();
        assert_eq!(err, TreeError::NameTooLong { path: bad.clone(), len: NAME_MAX_BYTES + 1 });
    }
}

#[test]
fn errors_name_the_entry_and_stay_short() {
    let msg = build(&["ok", "data/x", "data"]).unwrap_err().to_string();
    assert!(msg.contains("\"data\"") && msg.contains("\"data/x\""), "{msg}");
    let msg = build(&["a\0b"]).unwrap_err().to_string();
    assert!(msg.contains(r#""a\0b""#), "{msg}");
    let huge = format!("{}/x/", "é/".repeat(1_000_000));
    let msg = build(&[&huge]).unwrap_err().to_string();
    assert!(msg.len() < 2 * ERROR_PATH_MAX_BYTES, "{} bytes", msg.len());
}

#[test]
fn parent_links() {
    let t = build(&["a/b/c/d.txt", "a/b/e.txt", "a/f.txt", "g.txt"]).unwrap();
    check_invariants(&t);
    let d = t.resolve("a/b/c/d.txt").unwrap();
    let chain: Vec<&str> =
        std::iter::successors(Some(d), |n| (*n != Tree::ROOT).then(|| t.parent(*n)))
            .map(|n| t.name(n))
            .collect();
    assert_eq!(chain, ["d.txt", "c", "b", "a", ""]);
    assert_eq!(t.parent(t.resolve("g.txt").unwrap()), Tree::ROOT);
    assert_eq!(t.parent(Tree::ROOT), Tree::ROOT);
}

#[test]
fn resolve_is_strict() {
    let t = build(&["a/b/c.txt", "a/d.txt"]).unwrap();
    let c = t.resolve("a/b/c.txt").unwrap();
    assert_eq!(t.path(c), "a/b/c.txt");
    assert_eq!(t.resolve("a/b"), t.lookup(t.resolve("a").unwrap(), "b"));
    assert!(t.is_dir(t.resolve("a/b").unwrap()));
    for miss in ["/a", "a/", "a//b", "./a", "a/../a", "a/b/c.txt/x", "a/x", "b", "A"] {
        assert_eq!(t.resolve(miss), None, "{miss:?}");
    }
    // Lookups below a file find nothing rather than panicking.
    assert_eq!(t.lookup(c, "x"), None);
    assert_eq!(t.children(c, 0).count(), 0);
    assert_eq!(t.child_count(c), 0);
    assert_eq!(t.subdir_count(c), 0);
}

#[test]
fn sizes_saturate_and_extremes_round_trip() {
    let t = Tree::build([("a/x", u32::MAX, u64::MAX), ("a/y", 0, 1), ("z", 5, 0)]).unwrap();
    check_invariants(&t);
    assert_eq!(
        t.kind(t.resolve("a/x").unwrap()),
        NodeKind::File { entry: u32::MAX, size: u64::MAX }
    );
    assert_eq!(t.size(t.resolve("a").unwrap()), u64::MAX);
    assert_eq!(t.size(Tree::ROOT), u64::MAX);
}

#[test]
fn tree_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Tree>();
}

/// A random path over a tiny alphabet, so collisions, shared prefixes, '.'/'..' and
/// characters that sort on either side of '/' all come up often. The long token makes
/// siblings that agree beyond the 8-byte sort key.
fn random_path(rng: &mut fastrand::Rng) -> String {
    const ALPHABET: [&str; 8] = ["a", "b", "-", ".", "é", "0", " ", "_long_token_"];
    let depth = rng.usize(1..=4);
    let comps: Vec<String> = (0..depth)
        .map(|_| (0..rng.usize(1..=3)).map(|_| ALPHABET[rng.usize(..ALPHABET.len())]).collect())
        .collect();
    comps.join("/")
}

fn proper_prefixes(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(|(i, _)| &path[..i])
}

#[test]
fn random_valid_sets_round_trip() {
    let mut rng = fastrand::Rng::with_seed(0xA27F5);
    for _round in 0..300 {
        // Model: the files, and the set of directories their paths imply.
        let mut files: BTreeMap<String, (u32, u64)> = BTreeMap::new();
        let mut dirs: BTreeSet<String> = BTreeSet::from([String::new()]);
        for _ in 0..rng.usize(0..150) {
            let p = random_path(&mut rng);
            let valid = p.split('/').all(|c| c != "." && c != "..");
            let clashes = files.contains_key(&p)
                || dirs.contains(&p)
                || proper_prefixes(&p).any(|d| files.contains_key(d));
            if valid && !clashes {
                dirs.extend(proper_prefixes(&p).map(str::to_owned));
                let entry = files.len() as u32;
                files.insert(p, (entry, rng.u64(..)));
            }
        }
        let mut input: Vec<(&str, u32, u64)> =
            files.iter().map(|(p, &(e, s))| (p.as_str(), e, s)).collect();
        rng.shuffle(&mut input);
        let t = Tree::build(input).unwrap();
        check_invariants(&t);
        assert_eq!(t.len(), files.len() + dirs.len());
        for (p, &(entry, size)) in &files {
            let n = t.resolve(p).unwrap();
            assert_eq!(t.kind(n), NodeKind::File { entry, size }, "{p:?}");
            assert_eq!(t.path(n), *p);
        }
        // Readdir of each directory lists exactly the next components below it.
        for d in &dirs {
            let n = t.resolve(d).unwrap();
            assert!(t.is_dir(n));
            let below = |p: &str| -> Option<String> {
                let rest =
                    if d.is_empty() { p } else { p.strip_prefix(d.as_str())?.strip_prefix('/')? };
                Some(rest.split('/').next()?.to_owned())
            };
            let expected: BTreeSet<String> = files.keys().filter_map(|p| below(p)).collect();
            let listed: Vec<String> = t.children(n, 0).map(|(_, c)| t.name(c).to_owned()).collect();
            assert_eq!(listed, expected.into_iter().collect::<Vec<_>>(), "dir {d:?}");
        }
    }
}

#[test]
fn random_sets_fail_exactly_when_the_model_says() {
    let mut rng = fastrand::Rng::with_seed(0xC011);
    let (mut oks, mut errs) = (0, 0);
    for _round in 0..2000 {
        let paths: Vec<String> = (0..rng.usize(1..12)).map(|_| random_path(&mut rng)).collect();
        let valid = paths.iter().all(|p| p.split('/').all(|c| c != "." && c != ".."));
        let unique = paths.iter().collect::<BTreeSet<_>>().len() == paths.len();
        let no_clash =
            paths.iter().all(|p| proper_prefixes(p).all(|d| !paths.iter().any(|q| q == d)));
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        let result = build(&refs);
        assert_eq!(result.is_ok(), valid && unique && no_clash, "{paths:?}");
        match result {
            Ok(t) => {
                check_invariants(&t);
                oks += 1;
            }
            Err(_) => errs += 1,
        }
    }
    assert!(oks > 200 && errs > 200, "ok {oks}, err {errs}: generator lost balance");
}

/// A field of /proc/self/status in KiB (Linux only).
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time this thread has run, in nanoseconds (Linux only). Build times are also reported
/// as CPU time because wall time on a shared machine mostly measures the neighbours.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// `cargo test --release -- --ignored --nocapture million`
#[test]
#[ignore = "benchmark; run in release mode"]
fn million_entries_build_time_and_memory() {
    const ENTRIES: usize = 1_000_000;
    const FILES_PER_SHARD: usize = 1_000;
    let sharded: Vec<String> = (0..ENTRIES)
        .map(|i| {
            let split = ["train", "valid", "test"][i % 3];
            let shard = i / FILES_PER_SHARD;
            format!("data/{split}/shard_{shard:04}/sample_{i:07}.png")
        })
        .collect();
    let mut shuffled = sharded.clone();
    fastrand::Rng::with_seed(1).shuffle(&mut shuffled);
    let mut flat: Vec<String> = (0..ENTRIES).map(|i| format!("{i:08x}.bin")).collect();
    fastrand::Rng::with_seed(2).shuffle(&mut flat);
    for (label, paths) in [
        ("sharded, listed in order", &sharded),
        ("sharded, shuffled", &shuffled),
        ("flat, shuffled", &flat),
    ] {
        // Writing 5 resets the peak-RSS counter, so VmHWM afterwards is this build's peak.
        // Only the first scenario is exact: later builds may reuse pages the allocator kept
        // from earlier ones, which RSS does not see as new.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let rss_before = status_kib("VmRSS:");
        let (start, cpu_start) = (std::time::Instant::now(), thread_cpu_ns());
        let t = Tree::build(paths.iter().enumerate().map(|(i, p)| (p.as_str(), i as u32, 4096)))
            .unwrap();
        let wall_ms = start.elapsed().as_secs_f64() * 1e3;
        let cpu_ms = thread_cpu_ns().zip(cpu_start).map(|(end, start)| (end - start) / 1_000_000);
        let peak_extra = status_kib("VmHWM:")
            .zip(rss_before)
            .map(|(peak, before)| (peak - before) * 1024 / ENTRIES as u64);
        let avg_path = paths.iter().map(String::len).sum::<usize>() / ENTRIES;
        println!(
            "{label}: avg path {avg_path} B, {} nodes, build {wall_ms:.0} ms wall, \
             {cpu_ms:?} ms CPU; tree heap {:.1} B/entry (names {} B), \
             build peak {peak_extra:?} B/entry",
            t.len(),
            t.heap_bytes() as f64 / ENTRIES as f64,
            t.names.len(),
        );
        assert_eq!(t.size(Tree::ROOT), 4096 * ENTRIES as u64);
    }
}
