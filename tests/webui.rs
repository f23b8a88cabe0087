//! The web UI of `artfs serve` in a real headless Chromium, over versions the real SDK logged:
//! the URLs the SDK prints, files (folders, pages of a 100,000-entry version, previews,
//! verified downloads), diffs, search, usage snippets, runs, and markup injection staying inert.
//! Screenshots of the main pages go to `target/ui-screenshots/`.

use std::process::Command;

use crate::serve::{Server, create_key, run_flow};
use crate::serve_lineage::{attr_of_class, browse, chromium, hrefs};
use crate::util::Env;

/// An HTTP answer as curl saw it.
struct Answer {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// `curl` with the key as Basic credentials (or none); never follows redirects.
fn get(url: &str, key: Option<&str>, extra: &[&str]) -> Answer {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head");
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "--noproxy", "127.0.0.1", "-D"]).arg(&head).args(extra);
    if let Some(k) = key {
        cmd.args(["-u", &format!("api:{k}")]);
    }
    let out = cmd.arg(url).output().unwrap();
    let headers = std::fs::read_to_string(&head).unwrap_or_default();
    let status = headers.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Answer { status, headers, body: out.stdout }
}

/// The opening tags of a DOM (`<a href=…>`, `<img …>`), as Chromium serialised them.
fn tags(dom: &str) -> Vec<&str> {
    dom.split('<').skip(1).filter_map(|s| s.split('>').next()).collect()
}

/// No element or attribute that could run: the page shows the payloads, it does not obey them.
fn assert_inert(dom: &str, what: &str) {
    for t in tags(dom) {
        let lower = t.to_ascii_lowercase();
        assert!(!lower.starts_with("script"), "{what}: a <script> element: <{t}>");
        for attr in [" onerror=", " onload=", " onclick=", "javascript:"] {
            assert!(!lower.contains(attr), "{what}: an active attribute in <{t}>");
        }
    }
}

/// Browser, server, key and the base URL with the key in it, for one test.
pub(crate) struct Ui {
    pub(crate) env: Env,
    pub(crate) server: Server,
    pub(crate) key: String,
    browser: String,
}

impl Ui {
    pub(crate) fn start() -> Option<Ui> {
        let Some(browser) = chromium() else {
            eprintln!(
                "skipped: chromium is not installed (apt-get install chromium; .ci/run does)"
            );
            return None;
        };
        let env = Env::new();
        let server = Server::start(&env, &[]);
        let key = create_key(&env, &["ana", "--entities", "acme"]);
        Some(Ui { env, server, key, browser })
    }

    /// `http://api:KEY@host<path>`: a user who typed the key at the browser's prompt.
    fn url(&self, path: &str) -> String {
        format!("http://api:{}@{}{path}", self.key, self.server.addr)
    }

    pub(crate) fn open(&self, path: &str) -> String {
        let dom = browse(&self.env, &self.browser, &["--dump-dom"], &self.url(path));
        assert_inert(&dom, path);
        dom
    }

    /// A screenshot into `target/ui-screenshots/<name>.png`.
    pub(crate) fn shot(&self, name: &str, path: &str) {
        self.shot_sized(name, path, (1280, 900));
    }

    /// A screenshot of a window of `(width, height)` pixels.
    pub(crate) fn shot_sized(&self, name: &str, path: &str, (width, height): (i32, i32)) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&file);
        let arg = format!("--screenshot={}", file.display());
        let size = format!("--window-size={width},{height}");
        browse(&self.env, &self.browser, &[&arg, &size], &self.url(path));
        let png = std::fs::read(&file).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "screenshot {}", file.display());
    }

    fn get(&self, path: &str) -> Answer {
        get(&format!("{}{path}", self.server.url()), Some(&self.key), &[])
    }

    fn flow(&self) -> serde_json::Value {
        run_flow(&self.env, &self.server, &self.key, "webui.py", "webui", &[]).0
    }
}

fn str_of<'a>(v: &'a serde_json::Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("no {k} in {v}"))
}

/// The URLs the SDK prints (`View run at`, `View project at`, `Artifact.url`) open their pages;
/// `/` is the home page; anything unknown is a styled 404 (never a 503), and every answer, of
/// the UI and of the API, carries the CSP and `nosniff`.
#[test]
fn the_urls_the_sdk_prints_open_their_pages() {
    let Some(ui) = Ui::start() else { return };
    let r = ui.flow();
    let base = ui.server.url();
    let run_id = str_of(&r, "run_id");
    for (k, want) in [
        ("project_url", "/ui/a/acme/bikes".to_owned()),
        ("run_url", format!("/ui/r/acme/bikes/{run_id}")),
        ("artifact_url", "/ui/a/acme/bikes/model/v0".to_owned()),
    ] {
        let url = str_of(&r, k);
        assert!(url.starts_with(&base), "{k} {url} is on this server");
        let a = get(url, None, &[]);
        assert_eq!((a.status, a.header("location")), (303, Some(want.clone())), "{k} {url}");
    }
    let home = ui.open("/");
    assert!(hrefs(&home).contains(&"/ui/a/acme/bikes".to_owned()), "projects: {home}");
    assert!(home.contains("acme/bikes/model:v1"), "recent versions: {home}");
    let project = ui.open("/acme/bikes");
    for want in ["bikes-train", "bikes-eval", run_id, "train", "eval", "finished"] {
        assert!(project.contains(want), "{want} in the project page: {project}");
    }
    let run = ui.open(&format!("/acme/bikes/runs/{run_id}"));
    for want in ["bikes-train", "lr", "0.25", "epochs", "acc", "0.91", "acme/bikes/model:v0"] {
        assert!(run.contains(want), "{want} in the run page: {run}");
    }
    assert!(run.contains("class=\"node "), "the run's graph: {run}");
    ui.shot("project", "/ui/a/acme/bikes");
    ui.shot("run", &format!("/ui/r/acme/bikes/{run_id}"));
    ui.shot("home", "/ui/");

    for path in [
        "/ui/a/acme/nope",
        "/ui/a/acme/bikes/nope",
        "/ui/a/acme/bikes/model/v99",
        "/ui/a/acme/bikes/model/nosuchalias",
        "/ui/a/acme/bikes/model/v0/files/nope.txt",
        "/ui/a/acme/bikes/model/v0/raw/nope.txt",
        "/ui/a/acme/bikes/model/v0/diff?against=v42",
        "/ui/r/acme/bikes/nope",
        "/ui/no/such/page",
        "/ui/a/other/bikes",
    ] {
        let a = ui.get(path);
        assert_eq!(a.status, 404, "{path}: {}", a.text());
        assert!(a.text().contains("<h1>Not found</h1>"), "{path}: a styled page: {}", a.text());
    }
    let page = get(&format!("{base}/acme/bikes/sweeps/x/y"), None, &["-H", "Accept: text/html"]);
    assert_eq!(page.status, 404);
    assert!(page.text().contains("<h1>Not found</h1>"), "{}", page.text());

    let gql =
        ["-X", "POST", "-H", "Content-Type: application/json", "-d", r#"{"query":"{viewer{id}}"}"#];
    let answers = [
        ui.get("/ui/"),
        ui.get("/ui/a/acme/bikes/model/v0/raw/page.html"),
        ui.get("/ui/nope"),
        get(&format!("{base}/ui/"), None, &[]),
        get(&format!("{base}/graphql"), Some(&ui.key), &gql),
        get(&format!("{base}/healthz"), None, &[]),
        get(&format!("{base}/no/endpoint/here/at/all"), None, &[]),
    ];
    for a in answers {
        let csp = a.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("default-src 'none'") && !csp.contains("script-src"), "{}", a.headers);
        assert_eq!(a.header("x-content-type-options").as_deref(), Some("nosniff"), "{}", a.headers);
    }
}

/// A version's page lists its top folder and the usage snippets; folders open, files preview
/// (Markdown, CSV and TSV as tables, JSON pretty, a PNG as an image, SVG and HTML as text) and
/// download whole and verified as attachments; the diff with the previous version and the
/// search find what changed and what matches; no payload in a name, description, metadata or
/// file runs anywhere.
#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one end-to-end session against a real server: each step needs the state the previous one left"
)]
fn files_previews_downloads_diff_search_and_snippets() {
    let Some(ui) = Ui::start() else { return };
    let r = ui.flow();
    let v0 = "/ui/a/acme/bikes/model/v0";
    let page = ui.open(v0);
    for want in ["data/", "img/", "deep/", "README.md", "page.html", str_of(&r, "digest")] {
        assert!(page.contains(want), "{want} on the version page: {page}");
    }
    assert!(
        page.contains("evil &lt;script&gt;alert(1)&lt;/script&gt;"),
        "the description, as text"
    );
    for want in [
        "run.use_artifact(\"acme/bikes/model:v0\").download()",
        &format!("WANDB_BASE_URL={}", ui.server.url()),
        "artfs get acme/bikes/model:v0 --root ./model",
        "artfs mount acme/bikes/model:v0 /mnt/model",
        "ls /mnt/artfs/acme/bikes/model:v0/",
    ] {
        assert!(page.contains(want), "snippet {want:?}: {page}");
    }
    ui.shot("version", v0);
    // The graph: every edge drawn left to right (C used v1, which is further from v0 than C),
    // every node a link that opens a new tab.
    let edges = attr_of_class(&page, "edge ", "d");
    assert_eq!(edges.len(), 5, "{edges:?}");
    for d in &edges {
        let x = |point: &str| point.split(',').next().unwrap().parse::<i32>().unwrap();
        let (from, to) =
            (d.trim_start_matches('M').split(' ').next().unwrap(), d.rsplit(' ').next().unwrap());
        assert!(x(from) < x(to), "an edge pointing left: {d}");
    }
    let links = page.matches(r#"target="_blank" rel="noopener""#).count();
    assert_eq!(links, 5, "node links open a new tab: {page}");

    let data = ui.open(&format!("{v0}/files/data/"));
    for f in ["table.csv", "table.tsv", "config.json"] {
        assert!(hrefs(&data).contains(&format!("{v0}/files/data/{f}")), "{f}: {data}");
    }
    let deep = ui.open(&format!("{v0}/files/deep/a/"));
    assert!(hrefs(&deep).contains(&format!("{v0}/files/deep/a/b/")), "{deep}");
    let csv = ui.open(&format!("{v0}/files/data/table.csv"));
    assert!(csv.contains("<th>city</th>") && csv.contains("<td>1,200</td>"), "{csv}");
    let tsv = ui.open(&format!("{v0}/files/data/table.tsv"));
    assert!(tsv.contains("<td>Nantes</td>") && tsv.contains("<td>40</td>"), "{tsv}");
    let json = ui.open(&format!("{v0}/files/data/config.json"));
    assert!(json.contains("\"layers\": [\n    64,"), "pretty JSON: {json}");
    let md = ui.open(&format!("{v0}/files/README.md"));
    assert!(md.contains("<h1>Bikes</h1>") && md.contains("A model of <em>bikes</em>."), "{md}");
    let png = ui.open(&format!("{v0}/files/img/pic.png"));
    assert!(png.contains(&format!("<img src=\"{v0}/raw/img/pic.png?inline=1\"")), "{png}");
    let svg = ui.open(&format!("{v0}/files/img/logo.svg"));
    assert!(svg.contains("&lt;svg xmlns="), "SVG as text: {svg}");
    let html = ui.open(&format!("{v0}/files/page.html"));
    assert!(html.contains("&lt;script&gt;alert(1)"), "HTML as text: {html}");
    ui.shot("csv", &format!("{v0}/files/data/table.csv"));

    // Downloads: the bytes, as attachments; images inline only as an image type.
    let a = ui.get(&format!("{v0}/raw/data/table.csv"));
    assert_eq!(a.body, b"city,count\nParis,\"1,200\"\nLyon,300\n");
    assert_eq!(a.header("content-type").as_deref(), Some("application/octet-stream"));
    assert_eq!(
        a.header("content-disposition").as_deref(),
        Some("attachment; filename=\"table.csv\"; filename*=UTF-8''table.csv")
    );
    let a = ui.get(&format!("{v0}/raw/img/pic.png?inline=1"));
    assert_eq!(a.header("content-type").as_deref(), Some("image/png"));
    assert!(a.body.starts_with(b"\x89PNG"));
    let a = ui.get(&format!("{v0}/raw/page.html?inline=1"));
    assert_eq!(a.header("content-type").as_deref(), Some("application/octet-stream"));
    assert!(a.header("content-disposition").unwrap_or_default().starts_with("attachment"));

    // A folder, and the whole version, as tar archives that tar(1) reads back.
    let tar = |path: &str, name: &str| {
        let file = ui.env.path(name);
        let a = get(
            &format!("{}{path}", ui.server.url()),
            Some(&ui.key),
            &["-o", file.to_str().unwrap()],
        );
        assert_eq!(a.status, 200, "{path}");
        let want = format!("attachment; filename=\"{name}\"; filename*=UTF-8''{name}");
        assert_eq!(a.header("content-disposition"), Some(want));
        let out = ui.env.path(&format!("{name}.d"));
        std::fs::create_dir_all(&out).unwrap();
        let ok = Command::new("tar").arg("-xf").arg(&file).arg("-C").arg(&out).status().unwrap();
        assert!(ok.success(), "tar reads {name}");
        out
    };
    let data = tar(&format!("{v0}/archive/data"), "model-v0-data.tar");
    let csv = std::fs::read(data.join("model-v0/table.csv")).unwrap();
    assert_eq!(csv, b"city,count\nParis,\"1,200\"\nLyon,300\n");
    assert_eq!(crate::util::list_files(&data.join("model-v0")).len(), 3);
    let all = tar(&format!("{v0}/archive"), "model-v0.tar");
    let files = crate::util::list_files(&all.join("model-v0"));
    assert_eq!(files.len(), 10, "{files:?}");
    let long = format!("long/{}.txt", "n".repeat(150));
    assert_eq!(std::fs::read(all.join("model-v0").join(&long)).unwrap(), b"long\n");
    assert!(page.contains(&format!("{v0}/archive")), "the version page offers the archive");

    // v1 against v0 (its previous): one added, one removed, one changed.
    let diff = ui.open("/ui/a/acme/bikes/model/v1/diff");
    for want in ["1 added", "1 removed", "1 changed", "v0 → v1", "extra/new.txt", "README.md"] {
        assert!(diff.contains(want), "{want} in the diff: {diff}");
    }
    assert!(diff.contains("0.91") && diff.contains("0.95"), "metadata: {diff}");
    assert!(diff.contains("best"), "aliases: {diff}");
    ui.shot("diff", "/ui/a/acme/bikes/model/v1/diff");
    let back = ui.open("/ui/a/acme/bikes/model/v1/diff?against=v1");
    assert!(back.contains("0 added") && back.contains("0 changed"), "{back}");

    for (q, want) in [
        ("BEST", "alias: best"),
        ("accuracy", "metadata accuracy: 0.95"),
        ("model", "type: model"),
        ("bikes-eval", "run name: bikes-eval"),
        ("evil", "description: evil"),
    ] {
        let found = ui.open(&format!("/ui/search?q={q}"));
        assert!(found.contains(want), "{q} finds {want}: {found}");
    }
    let other = create_key(&ui.env, &["bob", "--entities", "bob"]);
    let a = get(&format!("{}/ui/search?q=model", ui.server.url()), Some(&other), &[]);
    assert!(a.text().contains("0 found"), "another entity sees nothing: {}", a.text());
    ui.shot("search", "/ui/search?q=bikes");
}

/// Entries in the generated version.
const MANY: usize = 100_000;

/// A version of 100,000 entries (a generated manifest over one stored blob) opens its first
/// page of files quickly, and every page after it, with the counts right; a blob that rots is
/// never downloaded whole.
#[test]
fn a_version_of_100000_entries_opens_a_page_at_a_time() {
    let Some(ui) = Ui::start() else { return };
    let env = &ui.env;
    std::fs::write(env.path("one.txt"), "one\n").unwrap();
    env.ok(&["-q", "log", "acme/bikes/one", env.path("one.txt").to_str().unwrap()]);
    use base64::Engine;
    use md5::Digest;
    let raw = md5::Md5::digest(b"one\n");
    let entry = base64::engine::general_purpose::STANDARD.encode(raw);
    let contents: serde_json::Map<String, serde_json::Value> = (0..MANY)
        .map(|i| (format!("f{i:06}.txt"), serde_json::json!({"digest": entry, "size": 4})))
        .collect();
    let manifest = serde_json::json!({
        "version": 1,
        "storagePolicy": "wandb-storage-policy-v1",
        "storagePolicyConfig": {},
        "contents": contents,
    });
    std::fs::write(env.path("big.json"), manifest.to_string()).unwrap();
    env.ok(&["-q", "log", "acme/bikes/big", "--manifest", env.path("big.json").to_str().unwrap()]);

    let started = std::time::Instant::now();
    let first = ui.get("/ui/a/acme/bikes/big/v0/files");
    let took = started.elapsed();
    eprintln!("first page of {MANY} entries: {took:?}");
    assert_eq!(first.status, 200);
    assert!(first.text().contains("entries 1–200 of 100000"), "{}", first.text());
    assert!(first.text().contains("f000199.txt") && !first.text().contains("f000200.txt"));
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    let last = ui.open("/ui/a/acme/bikes/big/v0/files?page=500");
    assert!(last.contains("entries 99801–100000 of 100000") && last.contains("f099999.txt"));
    let version = ui.get("/ui/a/acme/bikes/big/v0");
    assert!(version.text().contains("entries 1–200 of 100000"), "the version page pages too");
    let a = ui.get("/ui/a/acme/bikes/big/v0/raw/f054321.txt");
    assert_eq!(a.body, b"one\n");

    // The stored blob rots (same size): the download breaks off instead of ending whole.
    let hex = hex::encode(raw);
    let blob =
        std::path::Path::new(&env.registry).join(format!("blobs/md5/{}/{}", &hex[..2], &hex[2..]));
    std::fs::write(&blob, "two\n").unwrap();
    let a = ui.get("/ui/a/acme/bikes/big/v0/raw/f054321.txt");
    assert!(a.body.is_empty(), "nothing of a corrupt blob: {:?}", a.text());
}
