//! The web UI's lineage graph in a real headless Chromium, as W&B's lineage view shows it: runs
//! grouped per job type and versions per artifact type until *Explode*, edges pointing right,
//! boxes that never overlap (at hundreds of nodes too), every box a link to a new tab, and
//! `artfs lineage --svg` drawing the same picture; Markdown (a file, a description) rendered with
//! nothing in it able to run.

use crate::serve::run_flow;
use crate::serve_lineage::{attr_of_class, dist_finish, dist_part};
use crate::webui::Ui;

/// A box of a drawn graph, read from the SVG in a DOM.
#[derive(Debug)]
struct Drawn {
    id: String,
    class: String,
    count: usize,
    /// x, y, width, height of its rect.
    rect: [i32; 4],
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let v = tag.split(&format!(" {name}=\"")).nth(1)?;
    Some(v.split('"').next()?.replace("&amp;", "&"))
}

/// The boxes of the picture in `dom`.
fn boxes(dom: &str) -> Vec<Drawn> {
    dom.split("<g class=\"node ")
        .skip(1)
        .map(|s| {
            let group = s.split("</g>").next().unwrap();
            let open = format!(" class=\"node {}", group.split('>').next().unwrap());
            let rect = group.split("<rect").nth(1).unwrap().split('>').next().unwrap();
            let n = |k: &str| attr(rect, k).unwrap().parse::<i32>().unwrap();
            Drawn {
                id: attr(&open, "data-id").unwrap(),
                class: attr(&open, "class").unwrap(),
                count: attr(&open, "data-count").unwrap().parse().unwrap(),
                rect: [n("x"), n("y"), n("width"), n("height")],
            }
        })
        .collect()
}

/// Checks what every drawing must be and returns its boxes: each edge's end right of its start,
/// no two boxes overlapping, every box a link that opens a new tab.
fn legible(dom: &str, what: &str) -> Vec<Drawn> {
    let drawn = boxes(dom);
    assert!(!drawn.is_empty(), "{what}: no graph in {dom}");
    for d in attr_of_class(dom, "edge ", "d") {
        let x = |point: &str| point.split(',').next().unwrap().parse::<i32>().unwrap();
        let (from, to) =
            (d.trim_start_matches('M').split(' ').next().unwrap(), d.rsplit(' ').next().unwrap());
        assert!(x(from) < x(to), "{what}: an edge pointing left: {d}");
    }
    for (i, a) in drawn.iter().enumerate() {
        let [ax, ay, aw, ah] = a.rect;
        for b in &drawn[i + 1..] {
            let [bx, by, bw, bh] = b.rect;
            let apart = ax + aw <= bx || bx + bw <= ax || ay + ah <= by || by + bh <= ay;
            assert!(apart, "{what}: {} overlaps {}", a.id, b.id);
        }
    }
    let linked = dom.matches(r#"target="_blank" rel="noopener"><g class="node "#).count();
    assert_eq!(linked, drawn.len(), "{what}: every box opens a new tab");
    drawn
}

/// The `href` of the first element of `class` in `dom`.
fn href_of(dom: &str, class: &str) -> String {
    let found = attr_of_class(dom, class, "href");
    found.first().unwrap_or_else(|| panic!("no {class} link in {dom}")).clone()
}

/// Five SDK runs (job type `shard`) upsert a part of `dist` and a sixth (`finish`) finishes it:
/// grouped, the version's page shows one `shard` box of 5 beside the `finish` run; after
/// following Explode, all 6 runs; the groups' box links to the exploded view, and back.
#[test]
fn the_parallel_writers_graph_is_grouped_until_exploded() {
    let Some(ui) = Ui::start() else { return };
    let shards: Vec<(String, String)> =
        (0..5).map(|i| (format!("shard{i}.txt"), format!("rows of shard {i}\n"))).collect();
    std::thread::scope(|s| {
        for (i, (file, body)) in shards.iter().enumerate() {
            let ui = &ui;
            s.spawn(move || {
                dist_part(&ui.env, &ui.server, &ui.key, &format!("p{i}"), "G", file, body)
            });
        }
    });
    dist_finish(&ui.env, &ui.server, &ui.key, "finish", &shards);
    let v0 = "/ui/a/acme/bikes/dist/v0";
    let page = ui.open(v0);
    let grouped = legible(&page, "grouped");
    let shard = grouped.iter().find(|b| b.id.starts_with("group:run:shard")).unwrap();
    assert_eq!((shard.count, shard.class.as_str()), (5, "node group run"), "{grouped:?}");
    let runs = |bs: &[Drawn]| {
        bs.iter().filter(|b| b.class.contains(" run")).map(|b| b.count).sum::<usize>()
    };
    assert_eq!(runs(&grouped), 6, "{grouped:?}");
    assert_eq!(grouped.len(), 3, "the finish run, the shard group, the version: {grouped:?}");

    let explode = href_of(&page, "explode");
    assert_eq!(explode, format!("{v0}?explode=1#lineage"));
    assert!(page.contains(&format!(r#"<a href="{explode}" target="_blank""#)), "group → exploded");
    let page = ui.open(&explode);
    let exploded = legible(&page, "exploded");
    assert!(grouped.len() < exploded.len(), "{grouped:?} / {exploded:?}");
    let run_boxes: Vec<&Drawn> = exploded.iter().filter(|b| b.class == "node run").collect();
    assert_eq!(run_boxes.len(), 6, "every writer when exploded: {exploded:?}");
    assert!(exploded.iter().all(|b| b.count == 1));
    assert_eq!(href_of(&page, "group-view"), format!("{v0}#lineage"));
}

/// `prep` logs raw; 100 `train` runs each use raw:v0 and log a model version; 20 `eval` runs
/// use some of them and log a report each. Grouped, raw's page draws 6 boxes; exploded, all 242
/// nodes, none overlapping; `artfs lineage --svg` draws the same boxes both ways. The grouped picture is
/// the screenshot `graph-grouped.png` (the README's).
#[test]
fn a_graph_of_hundreds_of_nodes_stays_legible_grouped_and_exploded() {
    let Some(ui) = Ui::start() else { return };
    let env = &ui.env;
    std::fs::write(env.path("raw.csv"), "a,b\n").unwrap();
    let raw = env.path("raw.csv");
    env.ok(&["-q", "log", "raw", raw.to_str().unwrap(), "--run", "prep", "--job-type", "prep"]);
    let trains = 100;
    std::thread::scope(|s| {
        for w in 0..4 {
            s.spawn(move || {
                for i in (w..trains).step_by(4) {
                    let (run, root) = (format!("t{i:03}"), format!("got-{i}"));
                    env.ok(&[
                        "-q",
                        "get",
                        "raw:v0",
                        "--root",
                        &root,
                        "--run",
                        &run,
                        "--job-type",
                        "train",
                    ]);
                    let f = env.path(&format!("model-{i}.bin"));
                    std::fs::write(&f, format!("weights {i}")).unwrap();
                    let f = f.to_str().unwrap();
                    env.ok(&["-q", "log", "model", f, "--type", "model", "--run", &run]);
                }
            });
        }
    });
    for j in 0..20 {
        let (v, run, root) = (format!("model:v{}", j * 5), format!("e{j:02}"), format!("e-{j}"));
        env.ok(&["-q", "get", &v, "--root", &root, "--run", &run, "--job-type", "eval"]);
        let f = env.path(&format!("scores-{j}.json"));
        std::fs::write(&f, format!("{{\"acc\": {j}}}")).unwrap();
        env.ok(&["-q", "log", "scores", f.to_str().unwrap(), "--type", "report", "--run", &run]);
    }
    let nodes = 2 + 2 * trains + 2 * 20;

    let raw_v0 = "/ui/a/acme/bikes/raw/v0";
    let page = ui.open(raw_v0);
    let grouped = legible(&page, "grouped");
    let mut ids: Vec<&str> = grouped.iter().map(|b| b.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        [
            "acme/bikes/raw:v0",
            "group:run:eval@3",
            "group:run:train@1",
            "group:version:model@2",
            "group:version:report@4",
            "run:acme/bikes/prep"
        ]
    );
    assert_eq!(grouped.iter().map(|b| b.count).sum::<usize>(), nodes);
    let page = ui.open(&href_of(&page, "explode"));
    let exploded = legible(&page, "exploded");
    assert_eq!(exploded.len(), nodes);
    let right = grouped.iter().map(|b| b.rect[0] + b.rect[2]).max().unwrap_or(0);
    let bottom = grouped.iter().map(|b| b.rect[1] + b.rect[3]).max().unwrap_or(0);
    ui.shot_sized("graph-grouped", &format!("{raw_v0}/lineage.svg"), (right + 20, bottom + 20));

    // The command line draws the same boxes, grouped by default.
    for (flags, web) in [(&[][..], &grouped), (&["--explode"][..], &exploded)] {
        let file = env.path("offline.svg");
        let mut args = vec!["lineage", "raw:v0", "--svg", file.to_str().unwrap()];
        args.extend(flags);
        env.ok(&args);
        let offline = boxes(&std::fs::read_to_string(&file).unwrap());
        let rects = |bs: &[Drawn]| -> Vec<(String, [i32; 4])> {
            let mut v: Vec<_> = bs.iter().map(|b| (b.id.clone(), b.rect)).collect();
            v.sort();
            v
        };
        assert_eq!(rects(&offline), rects(web), "{flags:?}");
    }
}

/// A README.md and a description full of markup that tries to run (script tags, `javascript:`
/// links in several spellings, a raw `<img onerror>`, an HTML block), logged by the SDK: both
/// are rendered as Markdown, the payloads shown as text, no element or address that could run.
#[test]
fn hostile_markdown_is_rendered_and_stays_inert() {
    let Some(ui) = Ui::start() else { return };
    run_flow(&ui.env, &ui.server, &ui.key, "markdown.py", "markdown", &[]);
    let v0 = "/ui/a/acme/bikes/notes/v0";
    let md = ui.open(&format!("{v0}/files/README.md"));
    for want in [
        "<h1>Release <em>notes</em></h1>",
        "<strong>bold</strong>",
        r#"<a href="https://example.org/docs">safe link</a>"#,
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&lt;img src=x onerror=\"alert(2)\"&gt;",
        r##"<a href="#">bad link</a>"##,
        r##"<a href="#">mixed-case one</a>"##,
        "&lt;div onclick=\"alert(7)\"&gt;",
    ] {
        assert!(md.contains(want), "{want} in the preview: {md}");
    }
    let images = md.matches("<img").count();
    assert_eq!(images, md.matches(r##"<img src="#""##).count(), "images go nowhere: {md}");
    let page = ui.open(v0);
    assert!(page.contains("<em>Described</em> &lt;script&gt;alert(8)&lt;/script&gt;"), "{page}");
    assert!(page.contains(r##"<a href="#">x</a>"##), "{page}");
}
