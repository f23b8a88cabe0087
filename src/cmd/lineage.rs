//! `artfs lineage`: the graph of runs and versions around one version, as text, JSON, DOT or SVG.

use anyhow::{Context, Result};

use super::{App, print_json};
use crate::cli::LineageArgs;
use crate::names::Selector;
use crate::registry::lineage::{Direction, EdgeKind, Graph, Node, VersionKey};
use crate::terminal::printable;

impl App {
    pub(super) async fn lineage(&self, args: &LineageArgs) -> Result<()> {
        let registry = self.registry().await?;
        let target = self.artifact(&args.artifact)?;
        // A version number is taken as it is: a deleted version still has its lineage.
        let version = match target.selector_or_latest() {
            Selector::Version(v) => v,
            alias => registry.resolve(&target.collection, &alias).await?.record.version,
        };
        let start = VersionKey { collection: target.collection.clone(), version };
        let direction = match (args.up, args.down) {
            (true, _) => Direction::Up,
            (_, true) => Direction::Down,
            _ => Direction::Both,
        };
        let graph = registry.lineage(&start, direction, args.depth).await?;
        if let Some(file) = &args.svg {
            let style =
                crate::svg::Style { explode: args.explode, link: &|_| None, exploded: None };
            let svg = crate::svg::render(&graph, &style);
            std::fs::write(file, svg)
                .with_context(|| format!("cannot write {}", file.display()))?;
            return Ok(());
        }
        if args.json {
            return print_json(&serde_json::to_value(&graph)?);
        }
        if args.dot {
            print!("{}", dot(&graph));
            return Ok(());
        }
        print!("{}", text(&graph));
        Ok(())
    }
}

fn kind_name(k: EdgeKind) -> &'static str {
    match k {
        EdgeKind::Logged => "logged",
        EdgeKind::Used => "used",
    }
}

fn describe(n: &Node) -> String {
    match n {
        Node::Version(v) => {
            let mut s = format!("{}  {}", v.id, v.artifact_type);
            if v.deleted {
                s.push_str("  (deleted)");
            } else if !v.aliases.is_empty() {
                s.push_str(&format!("  [{}]", v.aliases.join(", ")));
            }
            s
        }
        Node::Run(r) => format!(
            "run {}/{}/{}  {}  {}",
            r.entity,
            r.project,
            r.run,
            r.job_type.as_deref().unwrap_or("-"),
            r.state
        ),
    }
}

/// Nodes by distance from the root (upstream first), then the edges.
fn text(g: &Graph) -> String {
    let mut nodes: Vec<&Node> = g.nodes.iter().collect();
    nodes.sort_by_key(|n| (g.depth.get(n.id()).copied().unwrap_or(0), n.id().to_owned()));
    let mut out = String::new();
    for n in nodes {
        let d = g.depth.get(n.id()).copied().unwrap_or(0);
        out.push_str(&format!("{d:>3}  {}\n", printable(&describe(n))));
    }
    for e in &g.edges {
        out.push_str(&format!(
            "{} --{}--> {}\n",
            printable(&e.from),
            kind_name(e.kind),
            printable(&e.to)
        ));
    }
    out
}

fn dot_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
}

fn dot(g: &Graph) -> String {
    let mut out = String::from("digraph lineage {\n  rankdir=LR;\n");
    for n in &g.nodes {
        let (shape, label) = match n {
            Node::Version(v) => {
                ("box", format!("{}{}", v.id, if v.deleted { " (deleted)" } else { "" }))
            }
            Node::Run(r) => {
                ("ellipse", format!("run {}\n{}", r.run, r.job_type.as_deref().unwrap_or("")))
            }
        };
        out.push_str(&format!(
            "  {} [shape={shape}, label={}];\n",
            dot_quote(n.id()),
            dot_quote(&label)
        ));
    }
    for e in &g.edges {
        out.push_str(&format!(
            "  {} -> {} [label={}];\n",
            dot_quote(&e.from),
            dot_quote(&e.to),
            kind_name(e.kind)
        ));
    }
    out.push_str("}\n");
    out
}
