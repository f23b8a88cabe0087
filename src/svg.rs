//! The lineage graph drawn as SVG: one renderer shared by `artfs lineage --svg` and the web page
//! of `artfs serve`. Columns are distances from the root (upstream left, downstream right), data
//! flows left to right (`layout`); grouped by default (the runs of one job type and the versions
//! of one artifact type in a column share a box with their count), every node on its own when
//! exploded. Every box is a `<g class="node …" data-id="…" data-count="…">` and every edge a
//! `<path class="edge …" data-from="…" data-to="…">`, so tests and scripts can read the picture.

mod layout;

use std::fmt::Write as _;

use self::layout::{Block, Layout, NODE_H, NODE_W, gap_after, layout};
use crate::registry::lineage::{EdgeKind, Graph, Node};

/// Characters of a label shown before it is cut (the full text is in the node's `<title>`).
const LABEL_CHARS: usize = 32;
/// A group's title is shorter: its count stands at the right of the same line.
const GROUP_TITLE_CHARS: usize = 24;

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
    cut_to(s, LABEL_CHARS)
}

fn cut_to(s: &str, chars: usize) -> String {
    if s.chars().count() <= chars {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(chars - 1).collect();
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

/// How a picture is drawn and where its boxes link.
pub struct Style<'a> {
    /// Every run and version in a box of its own; otherwise the runs of one job type and the
    /// versions of one artifact type in one column share a box that shows their count.
    pub explode: bool,
    /// The address a node's box links to (none offline), opened in a new tab.
    pub link: &'a dyn Fn(&Node) -> Option<String>,
    /// The address a group's box links to (the exploded picture), opened in a new tab.
    pub exploded: Option<String>,
}

/// The two lines of a group's label: its type, and how many of what it holds.
fn group_label(members: &[&Node]) -> (String, String) {
    let n = members.len();
    match members.first() {
        Some(Node::Run(r)) => {
            let ty = r.job_type.as_deref().unwrap_or("no job type");
            (cut_to(ty, GROUP_TITLE_CHARS), format!("{n} runs"))
        }
        Some(Node::Version(v)) => {
            let mut names: Vec<&str> = members
                .iter()
                .filter_map(|m| match m {
                    Node::Version(v) => v.name.rsplit('/').next(),
                    Node::Run(_) => None,
                })
                .collect();
            names.sort_unstable();
            names.dedup();
            let ty = if v.artifact_type.is_empty() { "version" } else { &v.artifact_type };
            (cut_to(ty, GROUP_TITLE_CHARS), format!("{n} versions of {}", names.join(", ")))
        }
        None => (String::new(), String::new()),
    }
}

/// The `<g>` of one box, wrapped in its link.
fn block_svg(b: &Block, root: &str, style: &Style) -> String {
    let (x, y) = (b.x, b.y);
    let (class, (title, sub), href, count) = match b.members.as_slice() {
        [n] => {
            let mut class = match n {
                Node::Version(v) if v.deleted => "node version deleted".to_owned(),
                Node::Version(_) => "node version".to_owned(),
                Node::Run(_) => "node run".to_owned(),
            };
            if n.id() == root {
                class.push_str(" root");
            }
            (class, label(n), (style.link)(n), String::new())
        }
        members => {
            let kind =
                if matches!(members.first(), Some(Node::Run(_))) { "run" } else { "version" };
            let count = format!(
                r#"<text class="count" x="{}" y="{}" text-anchor="end">×{}</text>"#,
                x + NODE_W - 10,
                y + 19,
                members.len()
            );
            (format!("node group {kind}"), group_label(members), style.exploded.clone(), count)
        }
    };
    let rx = if class.contains(" run") { 14 } else { 3 };
    let id = xml_escape(&b.id);
    let body = format!(
        r#"<g class="{class}" data-id="{id}" data-count="{}"><title>{id}</title><rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="{rx}"/><text x="{}" y="{}">{}</text>{count}<text class="sub" x="{}" y="{}">{}</text></g>"#,
        b.members.len(),
        x + 10,
        y + 19,
        xml_escape(&cut(&title)),
        x + 10,
        y + 36,
        xml_escape(&cut(&sub)),
    );
    match href {
        Some(href) => {
            format!(r#"<a href="{}" target="_blank" rel="noopener">{body}</a>"#, xml_escape(&href))
        }
        None => body,
    }
}

/// The path of an edge from `a` to `b`, left to right: a curve to the next column, or, past
/// columns between them, a curve into the lane nearest the way, along it, and a curve out of it
/// in the gap before `b` (the curves stay in the gaps between columns, the lane between rows:
/// the edge crosses no box).
fn edge_path(l: &Layout, a: &Block, b: &Block) -> String {
    let (sx, sy, tx, ty) = (a.x + NODE_W, a.y + NODE_H / 2, b.x, b.y + NODE_H / 2);
    let (x1, x2) = (gap_after(a.x), tx - (gap_after(a.x) - sx));
    if x1 >= x2 {
        let bend = ((tx - sx).abs() / 2).max(30);
        return format!("M{sx},{sy} C{},{sy} {},{ty} {tx},{ty}", sx + bend, tx - bend);
    }
    let lane = l.lane((sy + ty) / 2);
    format!(
        "M{sx},{sy} C{x1},{sy} {sx},{lane} {x1},{lane} L{x2},{lane} C{tx},{lane} {x2},{ty} {tx},{ty}"
    )
}

/// Draws `g` as `style` says.
pub fn render(g: &Graph, style: &Style) -> String {
    let l = layout(g, style.explode);
    let (width, height) = (l.width, l.height);
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="lineage" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>
<style>.edge{{fill:none;stroke:#555;stroke-width:1.5}} .edge.used{{stroke-dasharray:5 3}} .node rect{{stroke:#333;stroke-width:1}} .version rect{{fill:#dbeafe}} .run rect{{fill:#fde68a}} .group rect{{stroke-width:2.5}} .deleted rect{{fill:#eee;stroke-dasharray:4 2}} .root rect{{stroke-width:3}} .sub{{fill:#444;font-size:10px}} .count{{font-weight:bold}}</style>
"##
    );
    // Edges first: boxes are drawn over them.
    for link in &l.links {
        let (a, b) = (&l.blocks[link.from], &l.blocks[link.to]);
        let kind = match link.kind {
            EdgeKind::Logged => "logged",
            EdgeKind::Used => "used",
        };
        let title = if link.count > 1 { format!("{kind} ×{}", link.count) } else { kind.into() };
        let _ = writeln!(
            out,
            r#"<path class="edge {kind}" data-from="{}" data-to="{}" data-count="{}" d="{}" marker-end="url(#arrow)"><title>{title}</title></path>"#,
            xml_escape(&a.id),
            xml_escape(&b.id),
            link.count,
            edge_path(&l, a, b),
        );
    }
    for b in &l.blocks {
        out.push_str(&block_svg(b, &g.root, style));
        out.push('\n');
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::layout::tests::{edge, run, version};
    use super::*;
    use crate::registry::lineage::{RunNode, VersionNode};

    fn linked(explode: bool) -> Style<'static> {
        Style {
            explode,
            link: &|n: &Node| Some(format!("/x?{}", n.id())),
            exploded: Some("/x?explode=1".into()),
        }
    }

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
            edges: vec![edge("run:e/p/a", "e/p/raw:v0", EdgeKind::Logged)],
            depth: [("e/p/raw:v0".to_owned(), 0), ("run:e/p/a".to_owned(), -1)].into(),
        };
        let svg = render(&g, &linked(false));
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

    /// Grouped, the five runs of one job type are one box with their count, linked to the
    /// exploded picture; exploded, each is a box linked to its page. Offline, nothing links.
    #[test]
    fn a_group_shows_its_count_and_links_to_the_exploded_picture() {
        let mut nodes = vec![version("e/p/d:v0", "dataset")];
        let mut edges = Vec::new();
        for i in 0..5 {
            nodes.push(run(&format!("s{i}"), Some("shard")));
            edges.push(edge(&format!("run:e/p/s{i}"), "e/p/d:v0", EdgeKind::Logged));
        }
        let depth = nodes.iter().map(|n| (n.id().to_owned(), -1)).collect();
        let mut g = Graph { root: "e/p/d:v0".into(), nodes, edges, depth };
        g.depth.insert(g.root.clone(), 0);
        let svg = render(&g, &linked(false));
        let group = r#"<a href="/x?explode=1" target="_blank" rel="noopener"><g class="node group run" data-id="group:run:shard@-1" data-count="5">"#;
        assert!(svg.contains(group), "{svg}");
        assert!(svg.contains(">×5</text>") && svg.contains(">5 runs</text>"), "{svg}");
        assert!(
            svg.contains(r#"data-from="group:run:shard@-1" data-to="e/p/d:v0" data-count="5""#)
        );
        let exploded = render(&g, &linked(true));
        assert_eq!(exploded.matches(r#"<g class="node run""#).count(), 5, "{exploded}");
        assert!(exploded.contains(r#"<a href="/x?run:e/p/s3" target="_blank""#));
        let offline = render(&g, &Style { explode: false, link: &|_| None, exploded: None });
        assert!(!offline.contains("<a "), "{offline}");
    }

    /// v0 → B → v1 → C and v0 → C: the edge v0 → C passes two columns, so it runs in the lane
    /// above the row, not under the boxes of B and v1.
    #[test]
    fn an_edge_past_columns_runs_between_the_rows() {
        let g = Graph {
            root: "e/p/m:v0".into(),
            nodes: vec![
                version("e/p/m:v0", "model"),
                run("B", None),
                version("e/p/m:v1", "model"),
                run("C", None),
            ],
            edges: vec![
                edge("e/p/m:v0", "run:e/p/B", EdgeKind::Used),
                edge("run:e/p/B", "e/p/m:v1", EdgeKind::Logged),
                edge("e/p/m:v1", "run:e/p/C", EdgeKind::Used),
                edge("e/p/m:v0", "run:e/p/C", EdgeKind::Used),
            ],
            depth: [("e/p/m:v0", 0), ("run:e/p/B", 1), ("e/p/m:v1", 2), ("run:e/p/C", 1)]
                .map(|(k, v)| (k.to_owned(), v))
                .into(),
        };
        let svg = render(&g, &Style { explode: true, link: &|_| None, exploded: None });
        let long = svg
            .lines()
            .find(|l| l.contains(r#"data-from="e/p/m:v0" data-to="run:e/p/C""#))
            .unwrap();
        let lane: i32 =
            long.split(" L").nth(1).unwrap().split([',', ' ']).nth(1).unwrap().parse().unwrap();
        assert!(!(20..=20 + NODE_H).contains(&lane), "lane {lane} crosses the row: {long}");
        let short = svg.lines().find(|l| l.contains(r#"data-to="run:e/p/B""#)).unwrap();
        assert!(!short.contains(" L"), "a next-column edge is one curve: {short}");
    }
}
