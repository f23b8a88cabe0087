//! Lineage through `artfs serve`: the SDK's lineage calls, distributed artifacts
//! (upsert/finish), and the web UI in a real headless Chromium.

use std::collections::BTreeSet;

use crate::lineage::{edges, ids as node_ids};
use crate::serve::{Server, create_key, run_flow};
use crate::util::Env;

fn set(items: &[String]) -> BTreeSet<String> {
    items.iter().cloned().collect()
}

/// Run A logs raw, B uses raw:v0 and logs model, C uses model:latest: `logged_by`, `used_by`,
/// `logged_artifacts`, `used_artifacts` give exactly those (checked in the script), and
/// `artfs lineage model:v0 --up --json` gives the same graph.
#[test]
fn the_sdk_walks_lineage_both_ways_and_artfs_lineage_agrees() {
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    let (ids, _) = run_flow(&env, &server, &key, "lineage.py", "lineage", &[]);
    let run = |k: &str| format!("run:acme/bikes/{}", ids[k].as_str().unwrap());
    let g = env.json(&["lineage", "acme/bikes/model:v0", "--up"]);
    let want = [run("a"), run("b"), "acme/bikes/raw:v0".into(), "acme/bikes/model:v0".into()];
    assert_eq!(node_ids(&g, "nodes"), set(&want), "{g}");
    let edges = edges(&g);
    let want: BTreeSet<_> = [
        (run("a"), "logged".into(), "acme/bikes/raw:v0".into()),
        ("acme/bikes/raw:v0".into(), "used".into(), run("b")),
        (run("b"), "logged".into(), "acme/bikes/model:v0".into()),
    ]
    .into_iter()
    .collect();
    assert_eq!(edges, want);
    let a = g["nodes"].as_array().unwrap().iter().find(|n| n["id"] == run("a").as_str()).unwrap();
    assert_eq!(a["job_type"], "preprocess");
    let down = env.json(&["lineage", "acme/bikes/model:v0", "--down"]);
    assert_eq!(down["edges"].as_array().unwrap().len(), 1, "{down}");
    assert_eq!(down["edges"][0]["to"], run("c").as_str());
}

/// `dist.py` as one SDK process that `upsert_artifact`s `file` in `group`; its FLOW-RESULT.
pub(crate) fn dist_part(
    env: &Env,
    server: &Server,
    key: &str,
    tag: &str,
    group: &str,
    file: &str,
    body: &str,
) -> serde_json::Value {
    let vars =
        [("FLOW_MODE", "part"), ("FLOW_GROUP", group), ("FLOW_FILE", file), ("FLOW_BODY", body)];
    run_flow(env, server, key, "dist.py", tag, &vars).0
}

/// `dist.py` as the SDK process that `finish_artifact`s group `G` and checks that the version
/// holds exactly `expect` (file, body); its FLOW-RESULT.
pub(crate) fn dist_finish(
    env: &Env,
    server: &Server,
    key: &str,
    tag: &str,
    expect: &[(String, String)],
) -> serde_json::Value {
    let list: Vec<&str> = expect.iter().map(|(f, _)| f.as_str()).collect();
    let list = list.join(",");
    let bodies: Vec<(String, String)> = expect
        .iter()
        .map(|(f, b)| (format!("FLOW_BODY_{}", f.replace('.', "_")), b.clone()))
        .collect();
    let mut vars: Vec<(&str, &str)> =
        vec![("FLOW_MODE", "finish"), ("FLOW_GROUP", "G"), ("FLOW_EXPECT", &list)];
    vars.extend(bodies.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    run_flow(env, server, key, "dist.py", tag, &vars).0
}

/// F5: 5 SDK processes `upsert_artifact` one file each in one group at once, then one
/// `finish_artifact`: one version with the 5 files whose digest is the SDK's own for them,
/// invisible before the finish; the next upsert of the group starts the next version; paths
/// that two parts give different content are refused at the finish.
#[test]
fn five_sdk_writers_upsert_and_one_finish_makes_one_version() {
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    let shards: Vec<(String, String)> =
        (0..5).map(|i| (format!("shard{i}.txt"), format!("rows of shard {i}\n"))).collect();
    let part = |tag: String, group: &str, file: &str, body: &str| {
        dist_part(&env, &server, &key, &tag, group, file, body);
    };
    std::thread::scope(|s| {
        for (i, (file, body)) in shards.iter().enumerate() {
            let part = &part;
            s.spawn(move || part(format!("part{i}"), "G", file, body));
        }
    });
    let err = env.fails(&["versions", "acme/bikes/dist"]);
    assert!(err.contains("not found"), "invisible before the finish: {err}");
    let finish =
        |tag: &str, expect: &[(String, String)]| dist_finish(&env, &server, &key, tag, expect);
    let done = finish("finish0", &shards);
    assert_eq!(done["version"], "v0");
    let v0 = env.json(&["show", "acme/bikes/dist:v0"]);
    assert_eq!(v0["file_count"], 5);
    assert_eq!(v0["digest"], done["digest"]);
    assert_eq!(env.json(&["versions", "acme/bikes/dist"]).as_array().unwrap().len(), 1);

    // After the finish, an upsert with the same id starts the next version.
    let extra = vec![("extra.txt".to_owned(), "more\n".to_owned())];
    part("part5".into(), "G", &extra[0].0, &extra[0].1);
    assert_eq!(env.json(&["versions", "acme/bikes/dist"]).as_array().unwrap().len(), 1);
    assert_eq!(finish("finish1", &extra)["version"], "v1");

    // Two parts with one path and different content: the finish is refused, nothing published.
    part("c1".into(), "C", "same.txt", "one");
    part("c2".into(), "C", "same.txt", "two");
    run_flow(
        &env,
        &server,
        &key,
        "dist.py",
        "refused",
        &[("FLOW_MODE", "refused"), ("FLOW_GROUP", "C")],
    );
    assert_eq!(env.json(&["versions", "acme/bikes/dist"]).as_array().unwrap().len(), 2);
}

/// Chromium from Debian's packages, headless; `None` (the test says so and skips) when it is
/// not installed (`.ci/run` installs it, so CI always runs the test).
pub(crate) fn chromium() -> Option<String> {
    ["chromium", "chromium-browser"].iter().find_map(|c| {
        let ok = std::process::Command::new(c).arg("--version").output().ok()?.status.success();
        ok.then(|| c.to_string())
    })
}

/// Runs headless Chromium on `url` with `args` (`--dump-dom`, `--screenshot=…`); returns stdout.
pub(crate) fn browse(env: &Env, browser: &str, args: &[&str], url: &str) -> String {
    let profile = env.path(&format!("chromium-{}", fastrand::u32(..)));
    let out = std::process::Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--disable-dev-shm-usage", "--virtual-time-budget=5000"])
        .args(args)
        .arg(url)
        .env("HOME", env.path("home"))
        .output()
        .unwrap();
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `href`s of the `<a>` elements of a page, in order.
pub(crate) fn hrefs(dom: &str) -> Vec<String> {
    dom.split("href=\"").skip(1).filter_map(|s| s.split('"').next()).map(str::to_owned).collect()
}

/// `attr="…"` values of the elements of `class` in a page.
pub(crate) fn attr_of_class(dom: &str, class: &str, attr: &str) -> Vec<String> {
    dom.split(&format!("class=\"{class}"))
        .skip(1)
        .filter_map(|s| {
            let tag = s.split('>').next()?;
            let v = tag.split(&format!("{attr}=\"")).nth(1)?;
            Some(v.split('"').next()?.replace("&amp;", "&"))
        })
        .collect()
}

/// A real headless Chromium walks entities → projects → artifacts → versions → one version,
/// whose page shows its lineage as SVG with the expected nodes and edges, clickable; a
/// screenshot is kept in the test's output directory. Pages refuse requests without a key.
#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one end-to-end session against a real server: each step needs the state the previous one left"
)]
fn the_web_ui_in_a_real_browser_shows_the_lineage_graph() {
    let Some(browser) = chromium() else {
        eprintln!("skipped: chromium is not installed (apt-get install chromium; .ci/run does)");
        return;
    };
    let env = Env::new();
    std::fs::write(env.path("raw.csv"), "a,b\n").unwrap();
    std::fs::write(env.path("model.bin"), "weights").unwrap();
    let raw = env.path("raw.csv");
    let model = env.path("model.bin");
    env.ok(&["-q", "log", "raw", raw.to_str().unwrap(), "--run", "A", "--job-type", "preprocess"]);
    env.ok(&["-q", "get", "raw:v0", "--root", "got", "--run", "B", "--job-type", "train"]);
    env.ok(&["-q", "log", "model", model.to_str().unwrap(), "--type", "model", "--run", "B"]);
    env.ok(&["-q", "get", "model:latest", "--root", "got2", "--run", "C", "--job-type", "eval"]);
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);

    // Without a key: 401 and a Basic challenge, for a browser too.
    let no_key = std::process::Command::new("curl")
        .args(["-s", "-i", "--noproxy", "127.0.0.1", &format!("{}/ui/a/acme/bikes", server.url())])
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&no_key.stdout);
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(head.contains("www-authenticate: Basic realm=\"artfs\""), "{head}");
    let refused = browse(&env, &browser, &["--dump-dom"], &format!("{}/ui/", server.url()));
    // (Headless Chromium shows an empty page for a 401 it cannot answer.)
    assert!(!refused.contains("/ui/a/acme"), "{refused}");

    // With the key as Basic credentials, link by link.
    let base = format!("http://api:{key}@{}", server.addr);
    let open = |path: &str| browse(&env, &browser, &["--dump-dom"], &format!("{base}{path}"));
    let next = |dom: &str, want: &str| -> String {
        hrefs(dom)
            .into_iter()
            .find(|h| h == want)
            .unwrap_or_else(|| panic!("no link {want} in {dom}"))
    };
    let page = open("/ui/");
    let page = open(&next(&page, "/ui/a/acme"));
    let page = open(&next(&page, "/ui/a/acme/bikes"));
    assert!(page.contains("/ui/r/acme/bikes/A"), "runs are listed: {page}");
    let page = open(&next(&page, "/ui/a/acme/bikes/model"));
    let v0 = next(&page, "/ui/a/acme/bikes/model/v0");
    let page = open(&v0);
    let digest = env.json(&["show", "model:v0"])["digest"].as_str().unwrap().to_owned();
    assert!(page.contains(&digest) && page.contains("latest"), "digest and aliases: {page}");
    assert!(page.contains("model.bin"), "the files are listed: {page}");
    let mut nodes = attr_of_class(&page, "node ", "data-id");
    nodes.sort();
    assert_eq!(
        nodes,
        [
            "acme/bikes/model:v0",
            "acme/bikes/raw:v0",
            "run:acme/bikes/A",
            "run:acme/bikes/B",
            "run:acme/bikes/C"
        ]
    );
    let from = attr_of_class(&page, "edge ", "data-from");
    let to = attr_of_class(&page, "edge ", "data-to");
    let mut edges: Vec<(String, String)> = from.into_iter().zip(to).collect();
    edges.sort();
    assert_eq!(
        edges,
        [
            ("acme/bikes/model:v0".to_owned(), "run:acme/bikes/C".to_owned()),
            ("acme/bikes/raw:v0".into(), "run:acme/bikes/B".into()),
            ("run:acme/bikes/A".into(), "acme/bikes/raw:v0".into()),
            ("run:acme/bikes/B".into(), "acme/bikes/model:v0".into()),
        ]
    );
    // The nodes are links: to the run's page and the upstream version's page.
    let links = hrefs(&page);
    assert!(links.contains(&"/ui/r/acme/bikes/A".to_owned()), "{links:?}");
    let run_a = open("/ui/r/acme/bikes/A");
    assert!(run_a.contains("preprocess") && run_a.contains("/ui/a/acme/bikes/raw/v0"), "{run_a}");
    // The SVG the page embeds is the one `artfs lineage --svg` writes offline (minus links).
    let svg_path = env.path("offline.svg");
    env.ok(&["lineage", "model:v0", "--svg", svg_path.to_str().unwrap()]);
    let offline = std::fs::read_to_string(&svg_path).unwrap();
    assert_eq!(attr_of_class(&offline, "node ", "data-id").len(), 5);

    // A screenshot of the version page, kept in the test's output directory.
    let out_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-ui");
    std::fs::create_dir_all(&out_dir).unwrap();
    let shot = out_dir.join("lineage-model-v0.png");
    let _ = std::fs::remove_file(&shot);
    browse(
        &env,
        &browser,
        &[&format!("--screenshot={}", shot.display()), "--window-size=1500,1100"],
        &format!("{base}{v0}"),
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "screenshot {}", shot.display());
    eprintln!("screenshot: {}", shot.display());

    // Another entity's pages look nonexistent.
    let other = create_key(&env, &["bob", "--entities", "bob"]);
    let code = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--noproxy", "127.0.0.1"])
        .args(["-u", &format!("api:{other}"), &format!("{}{v0}", server.url())])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&code.stdout), "404");
}
