//! The lineage graph drawn as SVG: one renderer shared by `artfs lineage --svg` and the web page
//! of `artfs serve`. Columns are distances from the root (upstream left, downstream right),
//! data flows left to right; every node is a `<g class="node …" data-id="…">` and every edge a
//! `<path class="edge …" data-from="…" data-to="…">`, so tests and scripts can read the picture.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::registry::lineage::{Graph, Node};

const NODE_W: i32 = 230;
const NODE_H: i32 = 46;
const COL_GAP: i32 = 90;
const ROW_GAP: i32 = 22;
const MARGIN: i32 = 20;
/// Characters of a label shown before it is cut (the full text is in the node's `<title>`).
const LABEL_CHARS: usize = 32;

/// Escapes text for XML content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn cut(s: &str) -> String {
    if s.chars().count() <= LABEL_CHARS {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(LABEL_CHARS - 1).collect();
    t.push('…');
    t
}

/// The two lines of a node's label.
fn label(n: &Node) -> (String, String) {
    match n {
        Node::Version(v) => {
            let short = v.name.rsplit('/').next().unwrap_or(&v.name);
            let mut sub = if v.artifact_type.is_empty() {
                "version".to_owned()
            } else {
                v.artifact_type.clone()
            };
            if v.deleted {
                sub.push_str(" · deleted");
            } else if !v.aliases.is_empty() {
                let _ = write!(sub, " · {}", v.aliases.join(", "));
            }
            (format!("{short}:{}", v.version), sub)
        }
        Node::Run(r) => {
            let title = r.display_name.clone().unwrap_or_else(|| r.run.clone());
            let sub = format!("run {} · {}", r.run, r.job_type.as_deref().unwrap_or("no job type"));
            (title, sub)
        }
    }
}

/// The column of each node, so that every edge points right: from the walk's distances, a
/// node moves right of every node with an edge into it (a version reached first as used by a run
/// may be logged by another run further right). A cycle (a run that used what it logged) stops
/// moving after as many rounds as there are nodes.
fn columns_of(g: &Graph) -> BTreeMap<&str, i32> {
    let mut col: BTreeMap<&str, i32> =
        g.nodes.iter().map(|n| (n.id(), *g.depth.get(n.id()).unwrap_or(&0))).collect();
    for _ in 0..g.nodes.len() {
        let mut moved = false;
        for e in &g.edges {
            let (Some(&a), Some(&b)) = (col.get(e.from.as_str()), col.get(e.to.as_str())) else {
                continue;
            };
            if b <= a {
                col.insert(e.to.as_str(), a + 1);
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    col
}

/// Draws `g`; `link` gives the address a node's box links to (none offline), opened in a new tab.
pub fn render(g: &Graph, link: &dyn Fn(&Node) -> Option<String>) -> String {
    let col = columns_of(g);
    let mut columns: BTreeMap<i32, Vec<&Node>> = BTreeMap::new();
    for n in &g.nodes {
        columns.entry(*col.get(n.id()).unwrap_or(&0)).or_default().push(n);
    }
    let min_col = columns.keys().next().copied().unwrap_or(0);
    let rows = columns.values().map(Vec::len).max().unwrap_or(1) as i32;
    let cols = columns.len().max(1) as i32;
    let width = 2 * MARGIN + cols * NODE_W + (cols - 1) * COL_GAP;
    let height = 2 * MARGIN + rows * NODE_H + (rows - 1).max(0) * ROW_GAP;
    let mut pos: BTreeMap<&str, (i32, i32)> = BTreeMap::new();
    for (i, (_, nodes)) in columns.iter().enumerate() {
        // Each column centred vertically.
        let used = nodes.len() as i32 * NODE_H + (nodes.len() as i32 - 1) * ROW_GAP;
        let top = MARGIN + (height - 2 * MARGIN - used) / 2;
        for (j, n) in nodes.iter().enumerate() {
            let x = MARGIN + i as i32 * (NODE_W + COL_GAP);
            pos.insert(n.id(), (x, top + j as i32 * (NODE_H + ROW_GAP)));
        }
    }
    let _ = min_col;
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="lineage" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>
<style>.edge{{fill:none;stroke:#555;stroke-width:1.5}} .edge.used{{stroke-dasharray:5 3}} .node rect{{stroke:#333;stroke-width:1}} .version rect{{fill:#dbeafe}} .run rect{{fill:#fde68a}} .deleted rect{{fill:#eee;stroke-dasharray:4 2}} .root rect{{stroke-width:3}} .sub{{fill:#444;font-size:10px}}</style>
"##
    );
    for e in &g.edges {
        let (Some(&(x1, y1)), Some(&(x2, y2))) = (pos.get(e.from.as_str()), pos.get(e.to.as_str()))
        else {
            continue;
        };
        let (sx, sy, tx, ty) = (x1 + NODE_W, y1 + NODE_H / 2, x2, y2 + NODE_H / 2);
        let bend = ((tx - sx).abs() / 2).max(30);
        let kind = match e.kind {
            crate::registry::lineage::EdgeKind::Logged => "logged",
            crate::registry::lineage::EdgeKind::Used => "used",
        };
        let _ = writeln!(
            out,
            r#"<path class="edge {kind}" data-from="{}" data-to="{}" d="M{sx},{sy} C{},{sy} {},{ty} {tx},{ty}" marker-end="url(#arrow)"><title>{kind}</title></path>"#,
            xml_escape(&e.from),
            xml_escape(&e.to),
            sx + bend,
            tx - bend,
        );
    }
    for n in &g.nodes {
        let Some(&(x, y)) = pos.get(n.id()) else { continue };
        let mut class = match n {
            Node::Version(v) if v.deleted => "node version deleted".to_owned(),
            Node::Version(_) => "node version".to_owned(),
            Node::Run(_) => "node run".to_owned(),
        };
        if n.id() == g.root {
            class.push_str(" root");
        }
        let (title, sub) = label(n);
        let rx = if matches!(n, Node::Run(_)) { 14 } else { 3 };
        let id = xml_escape(n.id());
        let mut body = format!(
            r#"<g class="{class}" data-id="{id}"><title>{id}</title><rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="{rx}"/><text x="{}" y="{}">{}</text><text class="sub" x="{}" y="{}">{}</text></g>"#,
            x + 10,
            y + 19,
            xml_escape(&cut(&title)),
            x + 10,
            y + 36,
            xml_escape(&cut(&sub)),
        );
        if let Some(href) = link(n) {
            let href = xml_escape(&href);
            body = format!(r#"<a href="{href}" target="_blank" rel="noopener">{body}</a>"#);
        }
        out.push_str(&body);
        out.push('\n');
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::lineage::{Edge, EdgeKind, RunNode, VersionNode};

    #[test]
    fn nodes_and_edges_are_drawn_escaped_and_linked() {
        let v = VersionNode {
            id: "e/p/raw:v0".into(),
            name: "e/p/raw".into(),
            version: "v0".into(),
            artifact_type: "dataset".into(),
            digest: None,
            aliases: vec!["<b>".into()],
            size: None,
            deleted: false,
        };
        let r = RunNode {
            id: "run:e/p/a".into(),
            entity: "e".into(),
            project: "p".into(),
            run: "a".into(),
            display_name: None,
            job_type: Some("preprocess".into()),
            group: None,
            state: "finished",
        };
        let g = Graph {
            root: v.id.clone(),
            nodes: vec![Node::Version(v), Node::Run(r)],
            edges: vec![Edge {
                from: "run:e/p/a".into(),
                to: "e/p/raw:v0".into(),
                kind: EdgeKind::Logged,
            }],
            depth: [("e/p/raw:v0".to_owned(), 0), ("run:e/p/a".to_owned(), -1)].into(),
        };
        let svg = render(&g, &|n| Some(format!("/x?{}", n.id())));
        assert!(svg.contains(r#"class="node version root" data-id="e/p/raw:v0""#), "{svg}");
        assert!(svg.contains(r#"class="node run" data-id="run:e/p/a""#), "{svg}");
        assert!(svg.contains(r#"class="edge logged" data-from="run:e/p/a" data-to="e/p/raw:v0""#));
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"));
        assert!(svg.contains(r#"<a href="/x?run:e/p/a" target="_blank" rel="noopener">"#));
        // The run is upstream: drawn left of the version.
        let x_of = |id: &str| {
            let at = svg.find(&format!(r#"data-id="{id}""#)).unwrap();
            let rect = &svg[at..];
            let x = rect.split("<rect x=\"").nth(1).unwrap();
            x.split('"').next().unwrap().parse::<i32>().unwrap()
        };
        assert!(x_of("run:e/p/a") < x_of("e/p/raw:v0"));
    }

    fn version(id: &str) -> Node {
        let (name, v) = id.split_once(':').unwrap();
        Node::Version(VersionNode {
            id: id.into(),
            name: name.into(),
            version: v.into(),
            artifact_type: "model".into(),
            digest: None,
            aliases: vec![],
            size: None,
            deleted: false,
        })
    }

    fn run(id: &str) -> Node {
        Node::Run(RunNode {
            id: format!("run:e/p/{id}"),
            entity: "e".into(),
            project: "p".into(),
            run: id.into(),
            display_name: None,
            job_type: None,
            group: None,
            state: "finished",
        })
    }

    /// From v0: B used it and logged v1, C used v0 and v1. The walk puts C one step from v0
    /// and v1 two: drawn by those distances the edge v1 → C would point left.
    #[test]
    fn every_edge_points_right() {
        let edge = |from: &str, to: &str, kind| Edge { from: from.into(), to: to.into(), kind };
        let g = Graph {
            root: "e/p/m:v0".into(),
            nodes: vec![version("e/p/m:v0"), run("B"), run("C"), version("e/p/m:v1")],
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
    }
}
