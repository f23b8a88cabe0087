//! Where the boxes of a lineage picture go. Columns come from the walk's distances, moved so
//! that every edge points right; grouped, the runs of one job type and the versions of one
//! artifact type *within one column* share a box (grouping per column keeps every edge between
//! groups pointing right, which grouping across columns could not: a `train` run that uses one
//! `model` version and logs the next would make a cycle). A group of one is drawn as its node,
//! and the root always is. Within a column, boxes are ordered by the mean row of the boxes
//! feeding them (fewer crossings), then by id, so the same graph always draws the same way.
//! Boxes sit on a grid of fixed cells (each column centred on whole rows): no two overlap,
//! whatever the size of the graph, and the gaps between rows are free in every column, so an
//! edge that passes columns runs there (`Layout::lane`).

use std::collections::{BTreeMap, HashMap};

use crate::registry::lineage::{EdgeKind, Graph, Node};

pub const NODE_W: i32 = 230;
pub const NODE_H: i32 = 46;
const COL_GAP: i32 = 90;
const ROW_GAP: i32 = 22;
const MARGIN: i32 = 20;

/// One box: a node, or a group of nodes of one kind and type in one column.
#[derive(Debug)]
pub struct Block<'g> {
    /// The node's id, or `group:<run|version>:<type>@<column>`.
    pub id: String,
    pub members: Vec<&'g Node>,
    /// Top left corner.
    pub x: i32,
    pub y: i32,
}

/// An edge between two boxes, standing for `count` edges of the graph.
#[derive(Debug, PartialEq, Eq)]
pub struct Link {
    pub from: usize,
    pub to: usize,
    pub kind: EdgeKind,
    pub count: usize,
}

#[derive(Debug)]
pub struct Layout<'g> {
    pub blocks: Vec<Block<'g>>,
    pub links: Vec<Link>,
    pub width: i32,
    pub height: i32,
}

/// The column of each node, so that every edge points right: from the walk's distances, a
/// node moves right of every node with an edge into it (a version reached first as used by a run
/// may be logged by another run further right). A cycle (a run that used what it logged) stops
/// moving after as many rounds as there are nodes.
pub fn columns_of(g: &Graph) -> HashMap<&str, i32> {
    let index: HashMap<&str, usize> =
        g.nodes.iter().enumerate().map(|(i, n)| (n.id(), i)).collect();
    let mut col: Vec<i32> =
        g.nodes.iter().map(|n| g.depth.get(n.id()).copied().unwrap_or(0)).collect();
    let edges: Vec<(usize, usize)> = g
        .edges
        .iter()
        .filter_map(|e| Some((*index.get(e.from.as_str())?, *index.get(e.to.as_str())?)))
        .collect();
    for _ in 0..g.nodes.len() {
        let mut moved = false;
        for &(a, b) in &edges {
            if col[b] <= col[a] {
                col[b] = col[a] + 1;
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    g.nodes.iter().zip(col).map(|(n, c)| (n.id(), c)).collect()
}

/// What a node is grouped by: its kind and its job type or artifact type.
fn group_of(n: &Node) -> (&'static str, &str) {
    match n {
        Node::Version(v) => ("version", v.artifact_type.as_str()),
        Node::Run(r) => ("run", r.job_type.as_deref().unwrap_or("")),
    }
}

/// The boxes of each column (in column order), unplaced.
fn blocks_of<'g>(g: &'g Graph, explode: bool) -> Vec<Vec<Block<'g>>> {
    let col = columns_of(g);
    let mut columns: BTreeMap<i32, BTreeMap<String, Vec<&Node>>> = BTreeMap::new();
    for n in &g.nodes {
        let c = col.get(n.id()).copied().unwrap_or(0);
        let id = if explode || n.id() == g.root {
            n.id().to_owned()
        } else {
            let (kind, ty) = group_of(n);
            format!("group:{kind}:{ty}@{c}")
        };
        columns.entry(c).or_default().entry(id).or_default().push(n);
    }
    columns
        .into_values()
        .map(|groups| {
            groups
                .into_iter()
                .map(|(id, members)| {
                    let id = if members.len() == 1 { members[0].id().to_owned() } else { id };
                    Block { id, members, x: 0, y: 0 }
                })
                .collect()
        })
        .collect()
}

/// A block by (column, index in the column).
type At = (usize, usize);

/// How many edges of a kind go from one block to another.
type EdgeCounts = BTreeMap<(At, At, EdgeKind), usize>;

/// Lays `g` out, grouped unless `explode`.
pub fn layout(g: &Graph, explode: bool) -> Layout<'_> {
    let mut columns = blocks_of(g, explode);
    let mut at: HashMap<&str, (usize, usize)> = HashMap::new();
    for (c, blocks) in columns.iter().enumerate() {
        for (i, b) in blocks.iter().enumerate() {
            for m in &b.members {
                at.insert(m.id(), (c, i));
            }
        }
    }
    let mut counts: EdgeCounts = BTreeMap::new();
    for e in &g.edges {
        if let (Some(&a), Some(&b)) = (at.get(e.from.as_str()), at.get(e.to.as_str())) {
            *counts.entry((a, b, e.kind)).or_default() += 1;
        }
    }
    let order = order_rows(&columns, &counts);
    let rows = columns.iter().map(Vec::len).max().unwrap_or(1).max(1) as i32;
    let ncols = columns.len().max(1) as i32;
    let width = 2 * MARGIN + ncols * NODE_W + (ncols - 1) * COL_GAP;
    let height = 2 * MARGIN + rows * NODE_H + (rows - 1) * ROW_GAP;
    // Where block (column, index) ends up in the flat list.
    let mut flat: HashMap<(usize, usize), usize> = HashMap::new();
    let mut blocks = Vec::new();
    for (c, column) in columns.iter_mut().enumerate() {
        let n = column.len() as i32;
        // Each column centred on whole rows, so that every box sits on one grid of rows and
        // the gaps between rows are free in every column (the lanes of long edges).
        let top = MARGIN + (rows - n) / 2 * (NODE_H + ROW_GAP);
        let mut taken: Vec<Option<Block>> = column.drain(..).map(Some).collect();
        for (row, &i) in order[c].iter().enumerate() {
            let Some(mut b) = taken[i].take() else { continue };
            b.x = MARGIN + c as i32 * (NODE_W + COL_GAP);
            b.y = top + row as i32 * (NODE_H + ROW_GAP);
            flat.insert((c, i), blocks.len());
            blocks.push(b);
        }
    }
    let links = counts
        .into_iter()
        .filter_map(|((a, b, kind), count)| {
            Some(Link { from: *flat.get(&a)?, to: *flat.get(&b)?, kind, count })
        })
        .collect();
    Layout { blocks, links, width, height }
}

impl Layout<'_> {
    /// The y of the gap between rows nearest `y` (above the first row and below the last one
    /// included): no box of any column crosses it, so an edge that passes columns runs there.
    pub fn lane(&self, y: i32) -> i32 {
        let pitch = NODE_H + ROW_GAP;
        let rows = (self.height - 2 * MARGIN + ROW_GAP) / pitch;
        let k = ((y - MARGIN + ROW_GAP / 2) as f64 / pitch as f64).round() as i32;
        MARGIN + k.clamp(0, rows) * pitch - ROW_GAP / 2
    }
}

/// The x of the gap right of a column whose boxes start at `x`.
pub fn gap_after(x: i32) -> i32 {
    x + NODE_W + COL_GAP / 2
}

/// The order of each column's blocks, top to bottom: the first column by id, every next one by
/// the mean row of the blocks with edges into it (blocks fed by none last), then by id.
fn order_rows(columns: &[Vec<Block>], counts: &EdgeCounts) -> Vec<Vec<usize>> {
    let mut into: HashMap<(usize, usize), Vec<(usize, usize)>> = HashMap::new();
    for &(a, b, _) in counts.keys() {
        into.entry(b).or_default().push(a);
    }
    let mut row_of: HashMap<(usize, usize), usize> = HashMap::new();
    let mut order = Vec::with_capacity(columns.len());
    for (c, blocks) in columns.iter().enumerate() {
        let mut keyed: Vec<(f64, &str, usize)> = blocks
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let rows: Vec<usize> = into
                    .get(&(c, i))
                    .map(|from| from.iter().filter_map(|f| row_of.get(f).copied()).collect())
                    .unwrap_or_default();
                let mean = if rows.is_empty() {
                    f64::INFINITY
                } else {
                    rows.iter().sum::<usize>() as f64 / rows.len() as f64
                };
                (mean, b.id.as_str(), i)
            })
            .collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        for (row, &(_, _, i)) in keyed.iter().enumerate() {
            row_of.insert((c, i), row);
        }
        order.push(keyed.into_iter().map(|(_, _, i)| i).collect());
    }
    order
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::registry::lineage::{Edge, RunNode, VersionNode};

    pub(crate) fn version(id: &str, ty: &str) -> Node {
        let (name, v) = id.split_once(':').unwrap();
        Node::Version(VersionNode {
            id: id.into(),
            name: name.into(),
            version: v.into(),
            artifact_type: ty.into(),
            digest: None,
            aliases: vec![],
            size: None,
            deleted: false,
        })
    }

    pub(crate) fn run(id: &str, job: Option<&str>) -> Node {
        Node::Run(RunNode {
            id: format!("run:e/p/{id}"),
            entity: "e".into(),
            project: "p".into(),
            run: id.into(),
            display_name: None,
            job_type: job.map(str::to_owned),
            group: None,
            state: "finished",
        })
    }

    pub(crate) fn edge(from: &str, to: &str, kind: EdgeKind) -> Edge {
        Edge { from: from.into(), to: to.into(), kind }
    }

    /// Five `shard` runs and one `finish` run logged `dist:v0`, as parallel writers do.
    fn parallel_writers() -> Graph {
        let mut nodes = vec![version("e/p/dist:v0", "dataset"), run("fin", Some("finish"))];
        let mut edges = vec![edge("run:e/p/fin", "e/p/dist:v0", EdgeKind::Logged)];
        for i in 0..5 {
            nodes.push(run(&format!("s{i}"), Some("shard")));
            edges.push(edge(&format!("run:e/p/s{i}"), "e/p/dist:v0", EdgeKind::Logged));
        }
        let depth = nodes
            .iter()
            .map(|n| (n.id().to_owned(), if n.id() == "e/p/dist:v0" { 0 } else { -1 }))
            .collect();
        Graph { root: "e/p/dist:v0".into(), nodes, edges, depth }
    }

    /// A project of `n` runs shaped as pipelines fan out: run i (job type `train`, `eval` or
    /// `prep`) uses version (i-1)/2, every third one also version i/3, and logs version i (type
    /// `model` or `dataset`); the walk from version 0.
    pub(crate) fn project(n: usize) -> Graph {
        let v = |i: usize| format!("e/p/c{}:v{}", i % 7, i / 7);
        let mut nodes = vec![version(&v(0), "dataset")];
        let mut edges = Vec::new();
        let mut depth = BTreeMap::from([(v(0), 0)]);
        for i in 1..n {
            let r = format!("r{i}");
            nodes.push(run(&r, Some(["train", "eval", "prep"][i % 3])));
            nodes.push(version(&v(i), ["model", "dataset"][i % 2]));
            let rid = format!("run:e/p/{r}");
            let mut used = vec![(i - 1) / 2];
            if i % 3 == 0 && i / 3 != (i - 1) / 2 {
                used.push(i / 3);
            }
            for &u in &used {
                edges.push(edge(&v(u), &rid, EdgeKind::Used));
            }
            edges.push(edge(&rid, &v(i), EdgeKind::Logged));
            // Distances as a walk from v0 finds them.
            let d = used.iter().map(|u| depth[&v(*u)]).min().unwrap_or(0) + 1;
            depth.insert(rid, d);
            depth.insert(v(i), d + 1);
        }
        Graph { root: v(0), nodes, edges, depth }
    }

    fn overlap(a: &Block, b: &Block) -> bool {
        a.x < b.x + NODE_W && b.x < a.x + NODE_W && a.y < b.y + NODE_H && b.y < a.y + NODE_H
    }

    /// Every lane (the gap lines between rows) crosses no box.
    fn lanes_are_free(l: &Layout) {
        for b in &l.blocks {
            for y in [b.y, b.y + NODE_H / 2, b.y + NODE_H] {
                let lane = l.lane(y);
                assert!(lane < b.y || lane > b.y + NODE_H, "lane {lane} crosses {}", b.id);
                assert!(lane > 0 && lane < l.height, "lane {lane} outside 0..{}", l.height);
            }
        }
    }

    fn check(l: &Layout) {
        lanes_are_free(l);
        for link in &l.links {
            let (a, b) = (&l.blocks[link.from], &l.blocks[link.to]);
            assert!(a.x + NODE_W < b.x, "{} -> {} points left", a.id, b.id);
        }
        for (i, a) in l.blocks.iter().enumerate() {
            assert!(a.x + NODE_W <= l.width && a.y + NODE_H <= l.height, "{} outside", a.id);
            for b in &l.blocks[i + 1..] {
                assert!(!overlap(a, b), "{} overlaps {}", a.id, b.id);
            }
        }
    }

    #[test]
    fn parallel_writers_are_one_box_per_job_type_until_exploded() {
        let g = parallel_writers();
        let grouped = layout(&g, false);
        let ids: Vec<&str> = grouped.blocks.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(ids, ["group:run:shard@-1", "run:e/p/fin", "e/p/dist:v0"]);
        assert_eq!(grouped.blocks[0].members.len(), 5);
        let shard = grouped.links.iter().find(|l| l.from == 0).unwrap();
        assert_eq!((shard.to, shard.count, shard.kind), (2, 5, EdgeKind::Logged));
        assert_eq!(grouped.links.len(), 2);
        check(&grouped);
        let exploded = layout(&g, true);
        assert_eq!(exploded.blocks.len(), 7);
        assert_eq!(exploded.links.len(), 6);
        check(&exploded);
    }

    #[test]
    fn a_thousand_nodes_are_a_few_boxes_grouped_and_none_overlap_exploded() {
        let g = project(500);
        assert_eq!(g.nodes.len(), 999);
        let grouped = layout(&g, false);
        check(&grouped);
        let mut per_column: BTreeMap<i32, usize> = BTreeMap::new();
        for b in &grouped.blocks {
            *per_column.entry(b.x).or_default() += 1;
        }
        let most = per_column.values().max().copied().unwrap_or(0);
        assert!(most <= 5, "a grouped column holds a box per type: {per_column:?}");
        assert!(grouped.blocks.len() < g.nodes.len() / 4, "{} boxes", grouped.blocks.len());
        let drawn: usize = grouped.blocks.iter().map(|b| b.members.len()).sum();
        assert_eq!(drawn, g.nodes.len(), "every node is in one box");
        let exploded = layout(&g, true);
        assert_eq!(exploded.blocks.len(), g.nodes.len());
        check(&exploded);
    }

    /// From v0: B used it and logged v1, C used v0 and v1. The walk puts C one step from v0
    /// and v1 two: drawn by those distances the edge v1 → C would point left.
    #[test]
    fn every_edge_points_right() {
        let g = Graph {
            root: "e/p/m:v0".into(),
            nodes: vec![
                version("e/p/m:v0", "model"),
                run("B", None),
                run("C", None),
                version("e/p/m:v1", "model"),
            ],
            edges: vec![
                edge("e/p/m:v0", "run:e/p/B", EdgeKind::Used),
                edge("run:e/p/B", "e/p/m:v1", EdgeKind::Logged),
                edge("e/p/m:v0", "run:e/p/C", EdgeKind::Used),
                edge("e/p/m:v1", "run:e/p/C", EdgeKind::Used),
            ],
            depth: [("e/p/m:v0", 0), ("run:e/p/B", 1), ("run:e/p/C", 1), ("e/p/m:v1", 2)]
                .map(|(k, v)| (k.to_owned(), v))
                .into(),
        };
        let col = columns_of(&g);
        for e in &g.edges {
            assert!(col[e.from.as_str()] < col[e.to.as_str()], "{} -> {}: {col:?}", e.from, e.to);
        }
        check(&layout(&g, false));
    }

    /// Boxes fed by the top of the previous column sit at its top.
    #[test]
    fn a_column_follows_the_rows_that_feed_it() {
        let mut nodes = vec![version("e/p/m:v0", "model")];
        let mut edges = Vec::new();
        let mut depth = BTreeMap::from([("e/p/m:v0".to_owned(), 0)]);
        for (r, v) in [("a", "e/p/z:v0"), ("b", "e/p/y:v0")] {
            nodes.push(run(r, Some(r)));
            nodes.push(version(v, v));
            edges.push(edge("e/p/m:v0", &format!("run:e/p/{r}"), EdgeKind::Used));
            edges.push(edge(&format!("run:e/p/{r}"), v, EdgeKind::Logged));
            depth.insert(format!("run:e/p/{r}"), 1);
            depth.insert(v.to_owned(), 2);
        }
        let g = Graph { root: "e/p/m:v0".into(), nodes, edges, depth };
        let l = layout(&g, true);
        let y = |id: &str| l.blocks.iter().find(|b| b.id == id).unwrap().y;
        assert!(y("run:e/p/a") < y("run:e/p/b"));
        // z is logged by a (above b), so z is above y although y sorts first by id.
        assert!(y("e/p/z:v0") < y("e/p/y:v0"));
    }
}
