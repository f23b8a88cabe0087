//! A team's first week on the command line: which registry a command uses and why, what the
//! exit status says, discovery of what a registry holds, `--json` everywhere, safe deletes and
//! downloads, and help.

use std::process::{Command, Output};

use crate::serve::{Server, create_key};
use crate::util::Env;

/// `artfs` as a user with `WANDB_BASE_URL` exported for the SDK types it: no ARTFS_REGISTRY, a
/// private XDG data dir (where the default registry goes) and the server's API key.
fn sdk_user(env: &Env, base_url: &str, key: &str) -> Command {
    let mut c = env.cmd();
    c.env_remove("ARTFS_REGISTRY")
        .env("XDG_DATA_HOME", env.path("home-data"))
        .env("WANDB_BASE_URL", base_url)
        .env("WANDB_API_KEY", key)
        .env("NETRC", env.path("no-netrc"));
    c
}

fn run(mut c: Command, args: &[&str]) -> Output {
    c.args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The exit status and stderr of `out`, with stdout on failure to explain a surprise.
fn status(out: &Output) -> i32 {
    out.status.code().unwrap_or_else(|| panic!("killed: {}", stderr(out)))
}

fn data_file(env: &Env) -> String {
    let f = env.path("f.txt");
    std::fs::write(&f, b"first week\n").unwrap();
    f.to_str().unwrap().to_owned()
}

/// `WANDB_BASE_URL` (set for the SDK) makes reads go to that W&B server and says so; writes go to
/// the default registry, which the first write creates and names; a registry URL that is a W&B
/// server refuses every write with one line and exit status 4.
#[test]
fn wandb_base_url_is_read_only_said_so_and_writes_go_to_the_default_registry() {
    let env = Env::new();
    let file = data_file(&env);
    env.ok(&["log", "ds", &file, "--alias", "best"]);
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme"]);
    let url = server.url();

    // Reads: the server's versions, and `-v` and `show` say where they come from.
    let out = run(sdk_user(&env, &url, &key), &["-v", "ls", "acme/bikes", "--json"]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    let ls: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ls[0]["name"], "acme/bikes/ds", "{ls}");
    let said = format!("registry {url} (from WANDB_BASE_URL, which artfs only reads)");
    assert!(stderr(&out).contains(&said), "{}", stderr(&out));
    let out = run(sdk_user(&env, &url, &key), &["show", "acme/bikes/ds"]);
    assert!(
        stdout(&out).contains(&format!("registry:    {url} (from WANDB_BASE_URL")),
        "{}",
        stdout(&out)
    );

    // Writes: the default registry, created by the first one, which says where.
    let default = env.path("home-data/artfs/registry");
    let out = run(sdk_user(&env, &url, &key), &["log", "mine", &file]);
    assert_eq!(status(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).split(' ').next(), Some("acme/bikes/mine:v0"));
    let created = format!("created a new artfs registry at {} (the default)", default.display());
    assert!(stderr(&out).contains(&created), "{}", stderr(&out));
    assert!(default.join("artfs-registry.json").is_file());
    let again = run(sdk_user(&env, &url, &key), &["log", "mine2", &file]);
    assert!(!stderr(&again).contains("created"), "{}", stderr(&again));
    // The server's registry got nothing.
    let names: Vec<String> =
        env.json(&["ls"]).as_array().unwrap().iter().map(|a| a["name"].to_string()).collect();
    assert_eq!(names, ["\"acme/bikes/ds\""]);

    // A W&B server named as the registry takes no writes: one line, status 4, nothing sent.
    for args in [
        &["log", "x", &file][..],
        &["alias", "acme/bikes/ds:v0", "--add", "a"],
        &["edit", "acme/bikes/ds:v0", "--description", "d"],
        &["rm", "acme/bikes/ds:v0"],
        &["gc"],
        &["tag", "acme/bikes/ds:v0", "--add", "t"],
        &["key", "create", "bob"],
        &["run", "start"],
    ] {
        let mut c = sdk_user(&env, &url, &key);
        c.env("ARTFS_REGISTRY", &url);
        let out = run(c, args);
        let err = stderr(&out);
        assert_eq!(status(&out), 4, "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        let said = format!("error: {url} (from ARTFS_REGISTRY) is read-only");
        assert!(err.starts_with(&said), "{args:?}: {err}");
    }
    assert_eq!(env.json(&["versions", "ds"]).as_array().unwrap().len(), 1);

    // Lineage needs an artfs registry; a W&B server is not one, and the error says what is.
    let out = run(sdk_user(&env, &url, &key), &["lineage", "acme/bikes/ds"]);
    let err = stderr(&out);
    assert_eq!(status(&out), 3, "{err}");
    assert!(err.contains("a W&B server is read by `ls`"), "{err}");
    assert!(!err.contains("`artfs log` creates one"), "{err}");
}

/// A registry URL with a mangled `://` is refused (usage, status 2) instead of becoming a local
/// directory named `s3:`; nothing is created.
#[test]
fn mistyped_registry_urls_are_refused_and_create_nothing() {
    let env = Env::new();
    let file = data_file(&env);
    for url in ["s3:/bucket/reg", "gs:/bucket", "http:/host", "s3//bucket", "s3:bucket"] {
        for args in [&["ls"][..], &["log", "x", &file]] {
            let mut c = env.cmd();
            c.env("ARTFS_REGISTRY", url);
            let out = run(c, args);
            let err = stderr(&out);
            assert_eq!(status(&out), 2, "{url} {args:?}: {err}");
            assert!(err.contains("looks like a mistyped URL"), "{err}");
        }
    }
    let made: Vec<_> =
        std::fs::read_dir(env.dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(made, ["f.txt"], "nothing but the data file");
}

/// Exit statuses a script can act on: 0 done, 1 other failures, 2 usage, 3 not found,
/// 4 refused, 5 unavailable.
#[test]
fn exit_statuses_say_what_kind_of_failure_it_was() {
    let env = Env::new();
    let file = data_file(&env);
    env.ok(&["log", "ds", &file]);
    let code = |args: &[&str]| status(&env.run(args));
    assert_eq!(code(&["show", "ds"]), 0);
    // Usage: clap's own, and ours.
    assert_eq!(code(&["show", "ds", "--no-such-flag"]), 2);
    assert_eq!(code(&["show", "bad name!"]), 2);
    assert_eq!(code(&["--cache-size", "lots", "show", "ds"]), 2);
    assert_eq!(code(&["alias", "ds:v0"]), 2, "nothing to do");
    // Not found: artifact, version, alias, registry.
    assert_eq!(code(&["show", "nope"]), 3);
    assert_eq!(code(&["show", "ds:v7"]), 3);
    assert_eq!(code(&["get", "ds:gone"]), 3);
    let missing = env.path("no-registry");
    assert_eq!(code(&["--registry", missing.to_str().unwrap(), "ls"]), 3);
    // Refused: a change the registry refuses.
    env.ok(&["log", "ds", &file, "--alias", "keep", "--description", "other"]);
    assert_eq!(code(&["log", "ds", &file, "--type", "model"]), 4, "type mismatch");
    // Unavailable: a registry server that does not answer.
    assert_eq!(code(&["--registry", "http://127.0.0.1:1", "ls"]), 5);
    // Other: a local file that cannot be read.
    assert_eq!(code(&["log", "ds", "/no/such/file"]), 1);
}

/// Logs three artifacts in two entities: `acme/bikes/{rides,labels}` and `team/cars/weights`.
fn log_a_team(env: &Env) {
    let file = data_file(env);
    env.ok(&["log", "rides", &file]);
    env.ok(&["log", "labels", &file, "--alias", "best"]);
    env.ok(&["log", "labels", &env.path("f.txt").display().to_string(), "--description", "2"]);
    let other = env.path("g.txt");
    std::fs::write(&other, b"other\n").unwrap();
    env.ok(&["log", "labels", other.to_str().unwrap()]);
    env.ok(&["log", "team/cars/weights", &file, "--type", "model"]);
}

/// `(entity, project, artifacts, versions)` of `artfs ls ARGS --json` run by `cmd`.
fn projects(out: Output) -> Vec<(String, String, u64, u64)> {
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = |r: &serde_json::Value| {
        let s = |k: &str| r[k].as_str().unwrap().to_owned();
        (
            s("entity"),
            s("project"),
            r["artifacts"].as_u64().unwrap(),
            r["versions"].as_u64().unwrap(),
        )
    };
    v.as_array().unwrap().iter().map(row).collect()
}

fn row(e: &str, p: &str, artifacts: u64, versions: u64) -> (String, String, u64, u64) {
    (e.to_owned(), p.to_owned(), artifacts, versions)
}

/// `ls --all` lists every project with its artifact and version counts, `ls ENTITY/` those of
/// one entity, `--type` filters both and the artifact listing; on a local registry and on S3.
#[test]
fn ls_all_and_ls_entity_find_what_a_registry_holds_locally_and_on_s3() {
    let local = Env::new();
    let s3 = crate::cloud_registry::s3_env("discovery");
    for env in std::iter::once(&local).chain(s3.as_ref()) {
        log_a_team(env);
        let all = projects(env.run(&["ls", "--all", "--json"]));
        assert_eq!(
            all,
            [row("acme", "bikes", 2, 3), row("team", "cars", 1, 1)],
            "{}",
            env.registry
        );
        assert_eq!(projects(env.run(&["ls", "team/", "--json"])), [row("team", "cars", 1, 1)]);
        let models = projects(env.run(&["ls", "--all", "--type", "model", "--json"]));
        assert_eq!(models, [row("team", "cars", 1, 1)]);
        let text = env.ok(&["ls", "--all"]);
        assert!(text.lines().any(|l| l.split_whitespace().eq(["acme/bikes", "2", "3"])), "{text}");
        let datasets = env.json(&["ls", "--type", "dataset"]);
        assert_eq!(datasets.as_array().unwrap().len(), 2);
        assert_eq!(env.json(&["ls", "--type", "model"]), serde_json::json!([]));
        // An empty project points at the overview.
        let err = String::from_utf8(env.run(&["ls", "empty"]).stderr).unwrap();
        assert!(err.contains("`artfs ls --all` lists the projects"), "{err}");
    }
}

/// The same discovery on a W&B server (the registry above, served): its entities are the
/// viewer's.
#[test]
fn ls_entity_lists_the_projects_of_a_wandb_server() {
    let env = Env::new();
    log_a_team(&env);
    let server = Server::start(&env, &[]);
    let key = create_key(&env, &["ana", "--entities", "acme,team"]);
    let url = server.url();
    let ls = |args: &[&str]| {
        let mut c = sdk_user(&env, &url, &key);
        c.env("ARTFS_REGISTRY", &url);
        run(c, args)
    };
    assert_eq!(projects(ls(&["ls", "acme/", "--json"])), [row("acme", "bikes", 2, 3)]);
    assert_eq!(
        projects(ls(&["ls", "team/", "--type", "model", "--json"])),
        [row("team", "cars", 1, 1)]
    );
    let all = projects(ls(&["ls", "--all", "--json"]));
    assert!(all.contains(&row("acme", "bikes", 2, 3)), "{all:?}");
}

/// The commands that change things answer `--json` with one object, and a failing command
/// given `--json` prints its error as JSON on stderr (with its kind and exit status).
#[test]
fn json_on_every_changing_command_and_json_errors() {
    let env = Env::new();
    let file = data_file(&env);
    env.ok(&["log", "ds", &file]);
    for (i, name) in ["g.txt", "h.txt"].iter().enumerate() {
        let other = env.path(name);
        std::fs::write(&other, format!("other {i}\n")).unwrap();
        env.ok(&["log", "ds", other.to_str().unwrap()]);
    }
    let j = |args: &[&str]| env.json(args);
    let a = j(&["alias", "ds:v0", "--add", "best"]);
    assert_eq!((a["name"].as_str(), a["version"].as_str()), (Some("acme/bikes/ds"), Some("v0")));
    assert_eq!(a["aliases"], serde_json::json!(["best"]));
    let e = j(&["edit", "ds:v0", "--description", "d", "--metadata", r#"{"k":1}"#]);
    assert_eq!(
        (e["description"].as_str(), &e["metadata"]),
        (Some("d"), &serde_json::json!({"k": 1}))
    );
    assert_eq!(j(&["tag", "ds:v0", "--add", "t"])["tags"], serde_json::json!(["t"]));
    assert_eq!(j(&["ttl", "ds:v0", "30d"])["ttl"], 30 * 86400);
    assert_eq!(j(&["ttl", "ds:v0", "never"])["ttl"], "never");
    let root = env.path("got");
    let g = j(&["get", "ds:v0", "--root", root.to_str().unwrap()]);
    assert_eq!((g["files"].as_u64(), g["bytes"].as_u64()), (Some(1), Some(11)), "{g}");
    assert_eq!(g["root"], root.to_str().unwrap());
    let k = j(&["key", "create", "ana"]);
    assert!(k["key"].as_str().unwrap().len() >= 40, "{k}");
    assert_eq!(k["read_only"], false);
    let r = j(&["run", "start", "r1"]);
    assert_eq!((r["run"].as_str(), r["state"].as_str()), (Some("acme/bikes/r1"), Some("running")));
    let r = j(&["run", "finish", "r1", "--exit-code", "3"]);
    assert_eq!((r["state"].as_str(), r["exit_code"].as_i64()), (Some("finished"), Some(3)));
    let rm = j(&["rm", "ds:v1"]);
    assert_eq!(
        (rm["deleted"].clone(), rm["latest"].as_str()),
        (serde_json::json!(["v1"]), Some("v2"))
    );
    let gc = j(&["gc", "--grace", "0s"]);
    assert!(gc["manifests_deleted"].as_u64().unwrap() >= 1, "{gc}");
    assert!(j(&["cache", "prune", "--to", "0"])["evicted_entries"].is_u64());
    assert!(j(&["cache", "clear"])["remaining_entries"].is_u64());

    // Errors: one JSON object on stderr, nothing on stdout, the same exit status.
    for (args, kind, code) in [
        (&["show", "nope", "--json"][..], "not_found", 3),
        (&["alias", "ds:v0", "--json"], "invalid", 2),
        (&["show", "ds:v9", "--json"], "not_found", 3),
    ] {
        let out = env.run(args);
        assert_eq!(status(&out), code, "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let err: serde_json::Value = serde_json::from_slice(&out.stderr)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stderr(&out)));
        assert_eq!(
            (err["kind"].as_str(), err["exit_code"].as_i64()),
            (Some(kind), Some(i64::from(code)))
        );
        assert!(err["error"].as_str().unwrap().len() > 10, "{err}");
    }
    assert!(stderr(&env.run(&["show", "nope"])).starts_with("error: "), "plain without --json");
}

/// `rm --dry-run` says what would go and deletes nothing; on a terminal `rm --unaliased` and
/// `gc` ask first, and a "no" (or anything but yes) keeps everything; `--yes` does not ask.
#[test]
fn rm_dry_run_deletes_nothing_and_deletes_ask_on_a_terminal() {
    let env = Env::new();
    let file = data_file(&env);
    env.ok(&["log", "ds", &file]);
    let other = env.path("g.txt");
    std::fs::write(&other, b"other\n").unwrap();
    env.ok(&["log", "ds", other.to_str().unwrap()]);
    let versions = || env.json(&["versions", "ds"]).as_array().unwrap().len();

    assert_eq!(
        env.ok(&["rm", "ds", "--unaliased", "--dry-run"]).trim(),
        "acme/bikes/ds: would delete 1 version v0"
    );
    let dry = env.json(&["rm", "ds:v0", "--dry-run"]);
    assert_eq!(
        (dry["deleted"].clone(), dry["dry_run"].as_bool()),
        (serde_json::json!(["v0"]), Some(true))
    );
    let refused = env.fails(&["rm", "ds:v1", "--dry-run"]);
    assert!(refused.contains("has aliases (latest)"), "{refused}");
    assert_eq!(versions(), 2, "a dry run deletes nothing");

    // A terminal (script(1) gives the command a pty) that answers "n", then "y".
    let on_a_terminal = |args: &str, answer: &str| {
        let line =
            format!("printf '{answer}\\n' | script -qec '{} {args}' /dev/null", crate::util::BIN);
        // The environment of `env.cmd()` (registry, cache, entity), run through script(1).
        let mut sh = Command::new("bash");
        for (k, v) in env.cmd().get_envs() {
            match v {
                Some(v) => sh.env(k, v),
                None => sh.env_remove(k),
            };
        }
        sh.arg("-c").arg(line).current_dir(env.dir.path()).output().unwrap()
    };
    let out = on_a_terminal("rm ds --unaliased", "n");
    let said = stdout(&out);
    assert!(said.contains("delete 1 version of acme/bikes/ds: v0? [y/N]"), "{said}");
    assert_eq!(versions(), 2, "answered no: {said}");
    let out = on_a_terminal("gc --grace 0s", "n");
    assert!(stdout(&out).contains("[y/N]"), "{}", stdout(&out));
    assert!(stdout(&out).contains("nothing deleted"), "{}", stdout(&out));
    let out = on_a_terminal("rm ds --unaliased", "y");
    assert!(stdout(&out).contains("deleted 1 version v0"), "{}", stdout(&out));
    assert_eq!(versions(), 1);
    let out = on_a_terminal("gc --grace 0s --yes", "n");
    assert!(
        !stdout(&out).contains("[y/N]") && stdout(&out).contains("deleted 1 blob"),
        "{}",
        stdout(&out)
    );
}

/// `artfs completions bash` is a script bash loads and that completes subcommands and their
/// flags; `artfs man` is a roff manual page of the same commands.
#[test]
fn completions_load_in_bash_and_the_man_page_lists_the_commands() {
    let env = Env::new();
    let script = env.ok(&["completions", "bash"]);
    let path = env.path("artfs.bash");
    std::fs::write(&path, &script).unwrap();
    // Load it, then ask for the completions of `artfs r` and `artfs rm --d` as bash would.
    let probe = format!(
        "source {}; COMP_WORDS=(artfs r); COMP_CWORD=1; _artfs artfs r artfs; echo \"${{COMPREPLY[@]}}\"; \
         COMP_WORDS=(artfs rm --d); COMP_CWORD=2; _artfs artfs --d rm; echo \"${{COMPREPLY[@]}}\"",
        path.display()
    );
    let out = Command::new("bash").arg("-c").arg(probe).output().unwrap();
    let said = stdout(&out);
    let mut lines = said.lines();
    let first: Vec<&str> = lines.next().unwrap_or_default().split(' ').collect();
    assert!(first.contains(&"rm") && first.contains(&"runs"), "{said}{}", stderr(&out));
    let second = lines.next().unwrap_or_default();
    assert!(second.contains("--dry-run") && second.contains("--delete-aliases"), "{said}");
    let man = env.ok(&["man"]);
    assert!(man.contains(".TH artfs 1") && man.contains(".SH \"GLOBAL OPTIONS\""), "{man}");
    for command in ["log", "ls", "rm", "gc", "completions", "man"] {
        assert!(man.contains(&format!("artfs\\-{command}(1)")), "{command} not in {man}");
    }
}

/// `log --exclude GLOB` (repeatable) and a `.artfsignore` in the logged folder leave files out,
/// in gitignore syntax; the ignore file itself is not logged; without either nothing is left out.
#[test]
fn log_exclude_and_artfsignore_leave_files_out() {
    let env = Env::new();
    let dir = env.path("d");
    for (rel, body) in
        [("a.csv", "a"), ("b.tmp", "b"), ("sub/c.csv", "c"), ("sub/d.log", "d"), ("ckpt/x.pt", "x")]
    {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    let files = |name: &str| -> Vec<String> {
        let show = env.json(&["show", name, "--files"]);
        show["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap().to_owned())
            .collect()
    };
    let d = dir.to_str().unwrap();
    env.ok(&["log", "all", d]);
    assert_eq!(files("all"), ["a.csv", "b.tmp", "ckpt/x.pt", "sub/c.csv", "sub/d.log"]);
    env.ok(&["log", "some", d, "--exclude", "*.tmp", "--exclude", "sub/*.log"]);
    assert_eq!(files("some"), ["a.csv", "ckpt/x.pt", "sub/c.csv"]);
    std::fs::write(dir.join(".artfsignore"), "# checkpoints\nckpt/\n*.log\n").unwrap();
    env.ok(&["log", "ignored", d, "--exclude", "*.tmp"]);
    assert_eq!(files("ignored"), ["a.csv", "sub/c.csv"]);
    // Renamed into the artifact (`PATH=NAME`), the rules still apply to the folder.
    env.ok(&["log", "renamed", &format!("{d}=data")]);
    assert_eq!(files("renamed"), ["data/a.csv", "data/b.tmp", "data/sub/c.csv"]);
    let out = env.run(&["log", "bad", d, "--exclude", "{a,"]);
    let err = stderr(&out);
    assert_eq!(status(&out), 2, "{err}");
    assert!(err.contains("invalid --exclude"), "{err}");
}
