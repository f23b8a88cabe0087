//! Lineage: which runs logged and used which versions, walkable both ways without reading every
//! run of a project.
//!
//! A run's own commit log (`runs`) says what it logged and used; beside it, every edge is also
//! an index object, written create-only (so writers never conflict, and writing one twice is a
//! no-op) *before* the run's commit:
//! - `lineage/versions/<entity>/<project>/<name>/<version:010>/<kind>/<run entity>/<run project>/<run>`
//! - `lineage/runs/<run entity>/<run project>/<run>/<kind>/<entity>/<project>/<name>/<version:010>`
//!
//! where `kind` is `logged` or `used`. One listing of a version's prefix names the runs that
//! logged and used it; one listing of a run's prefix names the versions it logged and used. A
//! walk of `d` hops therefore costs `d` rounds of listings (run in parallel within a round),
//! plus one read per collection and per run for the nodes' details, whatever the size of the
//! project. Deleted versions keep their edges: they stay in the graph as deleted nodes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::runs::{RunOp, RunPath, RunState};
use super::{CollectionState, Registry, RegistryError};
use crate::names::CollectionPath;

/// Listings and reads in flight at once during a walk.
const WALK_IN_FLIGHT: usize = 32;

/// What a run did with a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    Logged,
    Used,
}

impl EdgeKind {
    fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Logged => "logged",
            EdgeKind::Used => "used",
        }
    }

    fn parse(s: &str) -> Option<EdgeKind> {
        match s {
            "logged" => Some(EdgeKind::Logged),
            "used" => Some(EdgeKind::Used),
            _ => None,
        }
    }
}

/// One version of one collection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionKey {
    pub collection: CollectionPath,
    pub version: u32,
}

impl std::fmt::Display for VersionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:v{}", self.collection, self.version)
    }
}

/// A node of the lineage graph.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeKey {
    Version(VersionKey),
    Run(RunPath),
}

impl NodeKey {
    /// The node's id in JSON, DOT and SVG output: `entity/project/name:vN` or
    /// `run:entity/project/run`.
    pub fn id(&self) -> String {
        match self {
            NodeKey::Version(v) => v.to_string(),
            NodeKey::Run(r) => format!("run:{}/{}/{}", r.entity, r.project, r.name),
        }
    }

    pub fn entity(&self) -> &str {
        match self {
            NodeKey::Version(v) => &v.collection.entity,
            NodeKey::Run(r) => &r.entity,
        }
    }
}

/// Which way a walk goes from its start: `Up` to what a version was made from (the run that
/// logged it, the versions that run used, …), `Down` to what was made from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
    Both,
}

/// A run's edges, as its index holds them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunEdges {
    pub logged: Vec<VersionKey>,
    pub used: Vec<VersionKey>,
}

/// What a graph shows of a version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionNode {
    pub id: String,
    pub name: String,
    pub version: String,
    #[serde(rename = "type")]
    pub artifact_type: String,
    pub digest: Option<String>,
    pub aliases: Vec<String>,
    pub size: Option<u64>,
    /// Deleted (or never readable): only its name and edges are left.
    pub deleted: bool,
}

/// What a graph shows of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunNode {
    pub id: String,
    pub entity: String,
    pub project: String,
    pub run: String,
    pub display_name: Option<String>,
    pub job_type: Option<String>,
    pub group: Option<String>,
    pub state: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Node {
    Version(VersionNode),
    Run(RunNode),
}

impl Node {
    pub fn id(&self) -> &str {
        match self {
            Node::Version(v) => &v.id,
            Node::Run(r) => &r.id,
        }
    }
}

/// An edge in the direction data flows: `logged` goes from a run to the version it logged,
/// `used` from a version to the run that used it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub kind: EdgeKind,
}

/// A lineage graph around one version. `depth` of a node is its distance in edges from the
/// root, negative upstream (what it was made from), positive downstream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Graph {
    pub root: String,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// Node id → signed distance from the root (for drawing in columns).
    #[serde(skip)]
    pub depth: BTreeMap<String, i32>,
}

impl Graph {
    /// Drops the nodes `keep` refuses (other entities than a caller may read) and their edges.
    pub fn retain_entities(&mut self, keep: impl Fn(&str) -> bool) {
        let entity_of = |n: &Node| match n {
            Node::Version(v) => v.name.split('/').next().unwrap_or("").to_owned(),
            Node::Run(r) => r.entity.clone(),
        };
        self.nodes.retain(|n| keep(&entity_of(n)));
        let ids: BTreeSet<&str> = self.nodes.iter().map(Node::id).collect();
        self.edges.retain(|e| ids.contains(e.from.as_str()) && ids.contains(e.to.as_str()));
        self.depth.retain(|id, _| ids.contains(id.as_str()));
    }
}

fn version_prefix(v: &VersionKey) -> String {
    super::layout::lineage_of_version(&v.collection, v.version)
}

fn run_prefix(r: &RunPath) -> String {
    super::layout::lineage_of_run(&r.entity, &r.project, &r.name)
}

/// The lineage edge a `Logged` or `Used` op records.
pub fn edge_of(op: &RunOp) -> Result<Option<(EdgeKind, VersionKey)>, RegistryError> {
    let (kind, collection, version) = match op {
        RunOp::Logged { collection, version } => (EdgeKind::Logged, collection, *version),
        RunOp::Used { collection, version } => (EdgeKind::Used, collection, *version),
        RunOp::Upsert(_) | RunOp::Finished { .. } | RunOp::Streamed(_) => return Ok(None),
    };
    let mut parts = collection.splitn(3, '/');
    let (Some(e), Some(p), Some(n)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(RegistryError::Invalid {
            name: collection.clone(),
            reason: "a run's artifact must be named entity/project/name".into(),
        });
    };
    let collection = CollectionPath::new(e, p, n)?;
    Ok(Some((kind, VersionKey { collection, version })))
}

/// The two index keys of one edge.
pub fn edge_keys(run: &RunPath, kind: EdgeKind, v: &VersionKey) -> [String; 2] {
    let run = (run.entity.as_str(), run.project.as_str(), run.name.as_str());
    super::layout::lineage_edge(kind.as_str(), run, &v.collection, v.version)
}

/// `(kind, a, b, c)` of a key below `prefix/`: exactly four components follow it.
fn tail4<'a>(prefix: &str, key: &'a str) -> Option<(EdgeKind, &'a str, &'a str, &'a str)> {
    let rest = key.strip_prefix(prefix)?.strip_prefix('/')?;
    let mut parts = rest.split('/');
    let (k, a, b, c) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    parts.next().is_none().then_some(())?;
    Some((EdgeKind::parse(k)?, a, b, c))
}

/// Parses a run-side index key back into its version (foreign objects there are ignored).
fn parse_run_key(prefix: &str, key: &str) -> Option<(EdgeKind, VersionKey)> {
    let rest = key.strip_prefix(prefix)?.strip_prefix('/')?;
    let mut parts = rest.split('/');
    let kind = EdgeKind::parse(parts.next()?)?;
    let (e, p, n, v) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || v.len() != 10 {
        return None;
    }
    let collection = CollectionPath::new(e, p, n).ok()?;
    Some((kind, VersionKey { collection, version: v.parse().ok()? }))
}

impl Registry {
    /// Writes the index objects of one edge (idempotent).
    /// Appends one op to a run's log (creating the run). A `Logged` or `Used` op writes the
    /// edge's lineage index first, so the index never misses an edge the run's log has.
    pub async fn record_run(&self, run: &RunPath, op: RunOp) -> Result<RunState, RegistryError> {
        if let Some((kind, v)) = edge_of(&op)? {
            self.index_edge(run, kind, &v).await?;
        }
        self.append_run(run, op).await
    }

    async fn index_edge(
        &self,
        run: &RunPath,
        kind: EdgeKind,
        v: &VersionKey,
    ) -> Result<(), RegistryError> {
        for key in edge_keys(run, kind, v) {
            // An existing object is this very edge, recorded before.
            self.store.put_create(&key, bytes::Bytes::from_static(b"{}")).await?;
        }
        Ok(())
    }

    /// The runs that logged and used one version: one listing.
    pub async fn version_edges(
        &self,
        v: &VersionKey,
    ) -> Result<Vec<(EdgeKind, RunPath)>, RegistryError> {
        let prefix = version_prefix(v);
        let mut out = Vec::new();
        for l in self.store.list(&prefix).await? {
            let Some((kind, e, p, r)) = tail4(&prefix, &l.key) else { continue };
            if let Ok(run) = RunPath::new(e, p, r) {
                out.push((kind, run));
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The runs that logged one version, and the runs that used it.
    pub async fn logged_and_used_by(
        &self,
        v: &VersionKey,
    ) -> Result<(Vec<RunPath>, Vec<RunPath>), RegistryError> {
        let (mut logged, mut used) = (Vec::new(), Vec::new());
        for (kind, run) in self.version_edges(v).await? {
            match kind {
                EdgeKind::Logged => logged.push(run),
                EdgeKind::Used => used.push(run),
            }
        }
        Ok((logged, used))
    }

    /// The versions one run logged and used: one listing.
    pub async fn run_edges(&self, run: &RunPath) -> Result<RunEdges, RegistryError> {
        let prefix = run_prefix(run);
        let mut out = RunEdges::default();
        for l in self.store.list(&prefix).await? {
            match parse_run_key(&prefix, &l.key) {
                Some((EdgeKind::Logged, v)) => out.logged.push(v),
                Some((EdgeKind::Used, v)) => out.used.push(v),
                None => {}
            }
        }
        Ok(out)
    }

    /// The lineage graph around `start`, `depth` hops (edges) at most (`None`: all of it).
    pub async fn lineage(
        &self,
        start: &VersionKey,
        direction: Direction,
        depth: Option<u32>,
    ) -> Result<Graph, RegistryError> {
        let root = NodeKey::Version(start.clone());
        let mut dist: HashMap<NodeKey, i32> = HashMap::from([(root.clone(), 0)]);
        let mut edges: BTreeSet<Edge> = BTreeSet::new();
        let walks: &[bool] = match direction {
            Direction::Up => &[true],
            Direction::Down => &[false],
            Direction::Both => &[true, false],
        };
        for &up in walks {
            let sign = if up { -1 } else { 1 };
            let mut frontier = vec![root.clone()];
            let mut hop = 0u32;
            while !frontier.is_empty() && depth.is_none_or(|d| hop < d) {
                hop += 1;
                let found: Vec<Vec<(Edge, NodeKey)>> = futures::stream::iter(frontier)
                    .map(|node| self.neighbours(node, up))
                    .buffer_unordered(WALK_IN_FLIGHT)
                    .try_collect()
                    .await?;
                let mut next = Vec::new();
                for (edge, node) in found.into_iter().flatten() {
                    edges.insert(edge);
                    if !dist.contains_key(&node) {
                        dist.insert(node.clone(), sign * hop as i32);
                        next.push(node);
                    }
                }
                next.sort();
                frontier = next;
            }
        }
        // A node first reached on the other side of the last hop has edges to nodes outside
        // the walk: only edges between nodes of the graph are kept.
        let ids: BTreeSet<String> = dist.keys().map(NodeKey::id).collect();
        edges.retain(|e| ids.contains(&e.from) && ids.contains(&e.to));
        let keys: Vec<NodeKey> = {
            let mut k: Vec<NodeKey> = dist.keys().cloned().collect();
            k.sort();
            k
        };
        let nodes = self.describe(&keys).await?;
        Ok(Graph {
            root: root.id(),
            nodes,
            edges: edges.into_iter().collect(),
            depth: dist.into_iter().map(|(k, d)| (k.id(), d)).collect(),
        })
    }

    /// One hop from `node`: upstream (`up`) or downstream, with the edges that lead there.
    async fn neighbours(
        &self,
        node: NodeKey,
        up: bool,
    ) -> Result<Vec<(Edge, NodeKey)>, RegistryError> {
        let id = node.id();
        let mut out = Vec::new();
        match &node {
            NodeKey::Version(v) => {
                for (kind, run) in self.version_edges(v).await? {
                    let other = NodeKey::Run(run);
                    match (kind, up) {
                        (EdgeKind::Logged, true) => {
                            out.push((Edge { from: other.id(), to: id.clone(), kind }, other))
                        }
                        (EdgeKind::Used, false) => {
                            out.push((Edge { from: id.clone(), to: other.id(), kind }, other))
                        }
                        _ => {}
                    }
                }
            }
            NodeKey::Run(run) => {
                let edges = self.run_edges(run).await?;
                if up {
                    for v in edges.used {
                        let other = NodeKey::Version(v);
                        let kind = EdgeKind::Used;
                        out.push((Edge { from: other.id(), to: id.clone(), kind }, other));
                    }
                } else {
                    for v in edges.logged {
                        let other = NodeKey::Version(v);
                        let kind = EdgeKind::Logged;
                        out.push((Edge { from: id.clone(), to: other.id(), kind }, other));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The nodes' details: one log read per collection and per run, in parallel.
    async fn describe(&self, keys: &[NodeKey]) -> Result<Vec<Node>, RegistryError> {
        // Owned items: the futures must be `Send` for any borrow (`artfs serve` awaits this).
        let collections: Vec<CollectionPath> = keys
            .iter()
            .filter_map(|k| match k {
                NodeKey::Version(v) => Some(v.collection.clone()),
                NodeKey::Run(_) => None,
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let states: HashMap<CollectionPath, CollectionState> = futures::stream::iter(collections)
            .map(|c| async move {
                // A collection that cannot be read leaves its versions as deleted nodes.
                let state = match self.state(&c).await {
                    Ok(s) => s,
                    Err(RegistryError::Corrupt { .. }) => CollectionState::default(),
                    Err(e) => return Err(e),
                };
                Ok::<_, RegistryError>((c, state))
            })
            .buffer_unordered(WALK_IN_FLIGHT)
            .try_collect()
            .await?;
        let run_keys: Vec<RunPath> = keys
            .iter()
            .filter_map(|k| match k {
                NodeKey::Run(r) => Some(r.clone()),
                NodeKey::Version(_) => None,
            })
            .collect();
        let runs: HashMap<RunPath, RunState> = futures::stream::iter(run_keys)
            .map(|r| async move {
                let state = match self.run_state(&r).await {
                    Ok(s) => s,
                    Err(RegistryError::Corrupt { .. }) => RunState::default(),
                    Err(e) => return Err(e),
                };
                Ok::<_, RegistryError>((r, state))
            })
            .buffer_unordered(WALK_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(keys
            .iter()
            .map(|k| match k {
                NodeKey::Version(v) => Node::Version(version_node(v, states.get(&v.collection))),
                NodeKey::Run(r) => Node::Run(run_node(r, runs.get(r))),
            })
            .collect())
    }
}

pub fn version_node(v: &VersionKey, state: Option<&CollectionState>) -> VersionNode {
    let record = state.and_then(|s| s.versions.get(&v.version));
    VersionNode {
        id: v.to_string(),
        name: v.collection.to_string(),
        version: format!("v{}", v.version),
        artifact_type: state.and_then(|s| s.artifact_type.clone()).unwrap_or_default(),
        digest: record.map(|r| r.digest.clone()),
        aliases: state
            .filter(|_| record.is_some())
            .map(|s| s.aliases_of(v.version))
            .unwrap_or_default(),
        size: record.map(|r| r.size),
        deleted: record.is_none(),
    }
}

pub fn run_node(r: &RunPath, state: Option<&RunState>) -> RunNode {
    let f = state.map(|s| &s.fields);
    RunNode {
        id: NodeKey::Run(r.clone()).id(),
        entity: r.entity.clone(),
        project: r.project.clone(),
        run: r.name.clone(),
        display_name: f.and_then(|f| f.display_name.clone()),
        job_type: f.and_then(|f| f.job_type.clone()),
        group: f.and_then(|f| f.group.clone()),
        state: match state {
            Some(s) if s.finished => "finished",
            Some(s) if s.seq > 0 => "running",
            _ => "unknown",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::runs::RunOp;
    use crate::store::{Store, cloud::Clouds};

    fn vk(name: &str, version: u32) -> VersionKey {
        VersionKey { collection: CollectionPath::new("e", "p", name).unwrap(), version }
    }

    #[test]
    fn edge_keys_parse_back_and_foreign_keys_are_ignored() {
        let run = RunPath::new("e", "p", "r1").unwrap();
        let v = vk("raw", 12);
        let [by_version, by_run] = edge_keys(&run, EdgeKind::Used, &v);
        assert_eq!(by_version, "lineage/versions/e/p/raw/0000000012/used/e/p/r1");
        assert_eq!(by_run, "lineage/runs/e/p/r1/used/e/p/raw/0000000012");
        let prefix = run_prefix(&run);
        assert_eq!(parse_run_key(&prefix, &by_run), Some((EdgeKind::Used, v)));
        for foreign in [
            "lineage/runs/e/p/r1/README",
            "lineage/runs/e/p/r1/used/e/p/raw/12",
            "lineage/runs/e/p/r1/other/e/p/raw/0000000012",
            "lineage/runs/e/p/r1/used/e/p/raw/0000000012/x",
        ] {
            assert_eq!(parse_run_key(&prefix, foreign), None, "{foreign}");
        }
    }

    #[tokio::test]
    async fn lineage_walks_both_ways_and_keeps_deleted_versions() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_str().unwrap(), &Clouds::default()).unwrap();
        let reg = Registry::new(store);
        let (a, b, c) = (
            RunPath::new("e", "p", "a").unwrap(),
            RunPath::new("e", "p", "b").unwrap(),
            RunPath::new("e", "p", "c").unwrap(),
        );
        let logged = |v: &VersionKey| RunOp::Logged {
            collection: v.collection.to_string(),
            version: v.version,
        };
        let used = |v: &VersionKey| RunOp::Used {
            collection: v.collection.to_string(),
            version: v.version,
        };
        let (raw, model) = (vk("raw", 0), vk("model", 0));
        reg.record_run(&a, logged(&raw)).await.unwrap();
        reg.record_run(&b, used(&raw)).await.unwrap();
        reg.record_run(&b, logged(&model)).await.unwrap();
        reg.record_run(&c, used(&model)).await.unwrap();

        let up = reg.lineage(&model, Direction::Up, None).await.unwrap();
        let ids: Vec<&str> = up.nodes.iter().map(Node::id).collect();
        assert_eq!(ids, ["e/p/model:v0", "e/p/raw:v0", "run:e/p/a", "run:e/p/b"]);
        let edges: Vec<(String, String)> =
            up.edges.iter().map(|e| (e.from.clone(), e.to.clone())).collect();
        assert_eq!(edges.len(), 3, "{edges:?}");
        assert_eq!(up.depth["run:e/p/a"], -3);
        // Nothing was ever logged through the log: the versions are deleted nodes.
        assert!(up.nodes.iter().all(|n| !matches!(n, Node::Version(v) if !v.deleted)));

        let down = reg.lineage(&raw, Direction::Down, Some(2)).await.unwrap();
        let ids: Vec<&str> = down.nodes.iter().map(Node::id).collect();
        assert_eq!(ids, ["e/p/model:v0", "e/p/raw:v0", "run:e/p/b"]);
        let one = reg.lineage(&raw, Direction::Both, Some(1)).await.unwrap();
        assert_eq!(one.nodes.len(), 3, "{:?}", one.nodes);
        assert_eq!(reg.run_edges(&b).await.unwrap().used, std::slice::from_ref(&raw));
        let (by, users) = reg.logged_and_used_by(&model).await.unwrap();
        assert_eq!((by, users), (vec![b.clone()], vec![c.clone()]));
    }

    /// Builds the benchmark project of `scripts/bench/lineage.sh` in `$ARTFS_BENCH_REGISTRY`:
    /// `$ARTFS_BENCH_RUNS` runs (default 10,000) and as many versions in 100 collections of
    /// `bench/p`; run `i` logs version `i` and uses versions `i-1` and a random older one.
    #[tokio::test(flavor = "multi_thread")]
    #[ignore = "benchmark fixture, run by scripts/bench/lineage.sh"]
    async fn bench_fixture() {
        use crate::manifest::{Entry, Manifest};
        use crate::registry::LogRequest;
        let Ok(url) = std::env::var("ARTFS_BENCH_REGISTRY") else { return };
        let n: usize =
            std::env::var("ARTFS_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
        let store = Store::open(&url, &Clouds::from_env()).unwrap();
        let reg = Registry::new(store);
        reg.mark_created().await.unwrap();
        let key = |i: usize| VersionKey {
            collection: CollectionPath::new("bench", "p", &format!("c{:03}", i % 100)).unwrap(),
            version: (i / 100) as u32,
        };
        // Versions, one collection per task (each collection's versions in order).
        futures::stream::iter(0..100)
            .map(|c| {
                let reg = reg.clone();
                async move {
                    for i in (c..n).step_by(100) {
                        let mut m = Manifest::default();
                        let mut e = Entry::stored("x".into(), 1);
                        e.reference = Some(format!("s3://bench/object-{i}"));
                        e.digest = format!("etag-{i}");
                        m.contents.insert(format!("f{i}.bin"), e);
                        let req = LogRequest {
                            history_step: None,
                            collection: key(i).collection,
                            artifact_type: "dataset".into(),
                            description: None,
                            metadata: None,
                            aliases: vec![],
                            manifest: m,
                            sources: Default::default(),
                        };
                        let out = reg.publish(&req).await.unwrap();
                        assert_eq!(out.version, key(i).version);
                    }
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<()>>()
            .await;
        let mut rng = fastrand::Rng::with_seed(11);
        // `ARTFS_BENCH_SHAPE=tree`: run i uses only version (i-1)/2, a pipeline fanning out
        // (what the web UI's graph benchmark draws) instead of one long chain.
        let tree = std::env::var("ARTFS_BENCH_SHAPE").is_ok_and(|s| s == "tree");
        let uses: Vec<Vec<usize>> = (0..n)
            .map(|i| match i {
                0 => vec![],
                _ if tree => vec![(i - 1) / 2],
                _ => vec![i - 1, rng.usize(..i)],
            })
            .collect();
        futures::stream::iter(0..n)
            .map(|i| {
                let (reg, uses) = (reg.clone(), &uses);
                async move {
                    let run = RunPath::new("bench", "p", &format!("r{i:05}")).unwrap();
                    let fields = crate::registry::runs::RunFields {
                        job_type: Some(["preprocess", "train", "eval"][i % 3].into()),
                        ..Default::default()
                    };
                    reg.record_run(&run, RunOp::Upsert(Box::new(fields))).await.unwrap();
                    for &u in &uses[i] {
                        let v = key(u);
                        let op = RunOp::Used {
                            collection: v.collection.to_string(),
                            version: v.version,
                        };
                        reg.record_run(&run, op).await.unwrap();
                    }
                    let v = key(i);
                    let op =
                        RunOp::Logged { collection: v.collection.to_string(), version: v.version };
                    reg.record_run(&run, op).await.unwrap();
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<()>>()
            .await;
    }
}
