//! The README's console blocks, parsed from the README itself and run as a new user would: a
//! fresh HOME, XDG dirs and mount points in a temp dir, no artfs settings in the environment. The
//! quick start runs verbatim; "Running artfs for a team" runs against the local S3 server.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{BIN, MountGuard};

/// One `$ command` of the quick start and the output lines the README shows under it.
#[derive(Debug)]
struct Step {
    command: String,
    shown: Vec<String>,
}

/// The ```` ```console ```` block after `## Quick start`.
fn quick_start(readme: &str) -> Vec<Step> {
    console_block(readme, "## Quick start")
}

/// The first ```` ```console ```` block after `heading`: `$ ` lines are commands, the lines
/// after one are its output; blank lines only separate.
fn console_block(readme: &str, heading: &str) -> Vec<Step> {
    let section = &readme[readme.find(heading).unwrap_or_else(|| panic!("no {heading}"))..];
    let block = section.split("```console\n").nth(1).expect("no console block in the section");
    let block = &block[..block.find("```").expect("unterminated console block")];
    let mut steps: Vec<Step> = Vec::new();
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        match line.strip_prefix("$ ") {
            Some(command) => steps.push(Step { command: command.to_owned(), shown: Vec::new() }),
            None => steps.last_mut().expect("output before any command").shown.push(line.into()),
        }
    }
    steps
}

/// A bash script that runs every step in one shell (so `export` and `cd` carry over), each
/// framed by marker lines with its exit code.
fn script(steps: &[Step]) -> String {
    let mut s = String::from("exec 2>&1\n");
    for (i, step) in steps.iter().enumerate() {
        // The command on its own lines: a trailing `# comment` must not swallow the braces.
        s += &format!("echo '@@step {i}'\n{{\n{}\n}}\necho \"@@rc $?\"\n", step.command);
    }
    // A server a failed block started in the background does not outlive it.
    s += "jobs -p | xargs -r kill\n";
    s
}

/// Each step's output lines and exit code, from the script's output.
fn split_output(out: &str, steps: usize) -> Vec<(Vec<String>, Option<i32>)> {
    let mut results = vec![(Vec::new(), None); steps];
    let mut current = None;
    for line in out.lines() {
        if let Some(i) = line.strip_prefix("@@step ") {
            current = i.parse::<usize>().ok();
        } else if let Some(rc) = line.strip_prefix("@@rc ") {
            if let Some(i) = current.take() {
                results[i].1 = rc.parse().ok();
            }
        } else if let Some(i) = current {
            results[i].0.push(line.to_owned());
        }
    }
    results
}

#[test]
fn the_quick_start_parses_into_commands_and_their_output() {
    let steps =
        quick_start("# x\n## Quick start\n```console\n$ a  # c\nout 1\n\nout 2\n$ b\n```\n");
    assert_eq!(steps.len(), 2);
    assert_eq!((steps[0].command.as_str(), steps[0].shown.len()), ("a  # c", 2));
    assert!(steps[1].shown.is_empty());
    let out = "@@step 0\nx\n@@rc 0\n@@step 1\n@@rc 3\n";
    assert_eq!(split_output(out, 2), vec![(vec!["x".to_owned()], Some(0)), (vec![], Some(3))]);
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// A fresh HOME and working directory in `tmp`, and guards that unmount whatever a block
/// mounts at `mounts` below that HOME when the test ends.
fn fresh_home(tmp: &Path, mounts: &[&str]) -> (PathBuf, PathBuf, Vec<MountGuard>) {
    let home = tmp.join("home");
    let work = tmp.join("work");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let guards = mounts.iter().map(|m| MountGuard::adopt(home.join(m))).collect();
    (home, work, guards)
}

#[test]
fn the_quick_start_runs_verbatim() {
    let steps = quick_start(&readme());
    assert!(steps.len() >= 10, "quick start not found: {steps:?}");
    let tmp = tempfile::tempdir().unwrap();
    let (home, work, mounts) = fresh_home(tmp.path(), &["mnt/artifacts", "mnt/bikes"]);
    run_steps(&steps, &home, &work, &[]);
    // The quick start unmounts what it mounted.
    for m in &mounts {
        assert!(!crate::util::is_mounted(&m.path), "{} still mounted", m.path.display());
    }
    assert!(home.join(".local/share/artfs/registry/artfs-registry.json").is_file());
}

#[test]
fn the_team_section_runs_against_a_local_bucket() {
    let Some(vars) = crate::util::s3_vars() else {
        eprintln!("skipped: ARTFS_TEST_S3_ENDPOINT is not set (run `make test`)");
        return;
    };
    // The README's bucket is the team's; here it is a new one of the local S3 server.
    let bucket = crate::util::unique_bucket("team");
    crate::util::create_s3_bucket(&vars[0].1, &bucket, false);
    let steps: Vec<Step> = console_block(&readme(), "## Running artfs for a team")
        .into_iter()
        .map(|s| Step { command: s.command.replace("team-artifacts", &bucket), shown: s.shown })
        .collect();
    assert!(steps.len() >= 10, "team section not found: {steps:?}");
    let tmp = tempfile::tempdir().unwrap();
    let (home, work, mounts) = fresh_home(tmp.path(), &["mnt/team"]);
    run_steps(&steps, &home, &work, &vars);
    assert!(!crate::util::is_mounted(&mounts[0].path), "the block unmounts what it mounted");
}

/// Runs `steps` in one bash in HOME `home` (XDG dirs below it, no `ARTFS_*` settings, plus
/// `vars`), from `work`; each must exit 0 and print the lines the README shows under it.
fn run_steps(steps: &[Step], home: &Path, work: &Path, vars: &[(String, String)]) {
    let bin_dir = PathBuf::from(BIN).parent().unwrap().to_owned();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(script(steps)).current_dir(work).env("HOME", home).env("PATH", path);
    for (var, dir) in [
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_CACHE_HOME", ".cache"),
        ("XDG_STATE_HOME", ".local/state"),
        ("XDG_CONFIG_HOME", ".config"),
    ] {
        cmd.env(var, home.join(dir));
    }
    for (var, _) in std::env::vars().filter(|(k, _)| k.starts_with("ARTFS_")) {
        cmd.env_remove(var);
    }
    cmd.envs(vars.iter().map(|(k, v)| (k, v)));
    // `ls` sorts by the locale; the README shows the C order.
    cmd.env("LC_ALL", "C");
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let results = split_output(&text, steps.len());
    for (step, (printed, rc)) in steps.iter().zip(&results) {
        assert_eq!(*rc, Some(0), "`{}` failed; it printed:\n{}", step.command, printed.join("\n"));
        if !step.shown.is_empty() {
            assert_eq!(
                &step.shown, printed,
                "`{}` prints other lines than the README",
                step.command
            );
        }
    }
}

/// Every `module::path::test_name` a document cites as evidence: a document that names a test
/// which no longer exists promises something nothing checks.
fn cited_tests(readme: &str) -> Vec<String> {
    let mut out: Vec<String> = readme
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.contains("::")
                && s.split("::").all(|p| {
                    !p.is_empty()
                        && p.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                })
        })
        .map(str::to_owned)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The README and every page of `docs/`, each with its path.
fn documents(root: &Path) -> Vec<(PathBuf, String)> {
    let mut paths = vec![root.join("README.md")];
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    pages.sort();
    paths.extend(pages);
    paths.into_iter().map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap())).collect()
}

#[test]
fn every_test_the_docs_cite_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = String::new();
    for dir in ["src", "tests"] {
        for e in walkdir::WalkDir::new(root.join(dir)).into_iter().filter_map(Result::ok) {
            if e.path().extension().is_some_and(|x| x == "rs") {
                sources.push_str(&std::fs::read_to_string(e.path()).unwrap());
            }
        }
    }
    let docs = documents(root);
    assert!(docs.len() >= 8, "README and the docs/ pages: {:?}", docs.iter().map(|d| &d.0));
    let mut cited = 0;
    let mut missing = Vec::new();
    for (path, text) in &docs {
        for t in cited_tests(text) {
            cited += 1;
            let name = t.rsplit("::").next().unwrap_or_default();
            if !sources.contains(&format!("fn {name}("))
                && !sources.contains(&format!("mod {name}"))
            {
                missing.push(format!("{}: {t}", path.display()));
            }
        }
    }
    assert!(cited > 50, "the docs cite their tests ({cited} found)");
    assert!(missing.is_empty(), "documents cite tests that do not exist: {missing:?}");
}

/// Documents and tests name behaviour: a ticket number means nothing to a reader of the tree.
#[test]
fn no_document_names_a_ticket() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ticket = |line: &str| {
        let l = line.to_ascii_lowercase();
        l.match_indices("issue ").any(|(i, m)| {
            l[i + m.len()..].starts_with(|c: char| c.is_ascii_digit())
                || l[i + m.len()..].starts_with('#')
        })
    };
    let named: Vec<String> = documents(root)
        .iter()
        .flat_map(|(p, text)| {
            text.lines().filter(|l| ticket(l)).map(move |l| format!("{}: {l}", p.display()))
        })
        .collect();
    assert!(named.is_empty(), "documents name tickets: {named:?}");
}
