//! `artfs run start/finish`, and the `--run ID [--job-type T]` of `log`, `get` and `mount`.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use super::{App, print_json};
use crate::cli::{RunArgs, RunCommand};
use crate::fs::OpenHook;
use crate::registry::Registry;
use crate::registry::runs::{RunFields, RunOp, RunPath};

/// `artfs run start|finish --json`.
#[derive(Debug, serde::Serialize)]
struct RunDone {
    run: String,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i64>,
}

impl App {
    /// `[[entity/]project/]ID` in the default entity and project.
    pub(super) fn run_path(&self, id: &str) -> Result<RunPath> {
        let parts: Vec<&str> = id.split('/').collect();
        let (e, p, r) = match parts.as_slice() {
            [r] => (self.config.entity.as_str(), self.config.project.as_str(), *r),
            [p, r] => (self.config.entity.as_str(), *p, *r),
            [e, p, r] => (*e, *p, *r),
            _ => usage!("run {id:?}: expected `[[entity/]project/]ID`"),
        };
        Ok(RunPath::new(e, p, r)?)
    }

    /// The run of `--run`, if any.
    pub(super) fn run_of(&self, args: &RunArgs) -> Result<Option<RunPath>> {
        args.run.as_deref().map(|id| self.run_path(id)).transpose()
    }

    /// The run named by `--run` and the artfs registry its lineage is recorded in; a W&B source
    /// is read-only, so `--run` over one is refused before anything is read.
    pub(super) async fn run_recording(
        &self,
        args: &RunArgs,
    ) -> Result<Option<(RunPath, Registry)>> {
        let Some(run) = self.run_of(args)? else {
            return Ok(None);
        };
        let registry = self
            .registry()
            .await
            .with_context(|| format!("--run {} records lineage in an artfs registry", run.name))?;
        Ok(Some((run, registry)))
    }

    pub(super) async fn run_command(&self, command: RunCommand) -> Result<()> {
        match command {
            RunCommand::Start { id, job_type, name, group, json } => {
                let id = id.unwrap_or_else(new_run_id);
                let run = self.run_path(&id)?;
                let registry = self.registry_for_write().await?;
                let fields = RunFields {
                    job_type,
                    display_name: name,
                    group,
                    host: host(),
                    state: Some("running".into()),
                    ..RunFields::default()
                };
                registry.record_run(&run, RunOp::Upsert(Box::new(fields))).await?;
                let path = format!("{}/{}/{}", run.entity, run.project, run.name);
                if json {
                    return print_json(&RunDone { run: path, state: "running", exit_code: None });
                }
                println!("{path}");
                Ok(())
            }
            RunCommand::Finish { id, exit_code, json } => {
                let run = self.run_path(&id)?;
                let registry = self.registry_to_change().await?;
                if registry.run_state(&run).await?.seq == 0 {
                    bail!("run {}/{}/{} does not exist", run.entity, run.project, run.name);
                }
                registry.record_run(&run, RunOp::Finished { exit_code: Some(exit_code) }).await?;
                if json {
                    let path = format!("{}/{}/{}", run.entity, run.project, run.name);
                    let exit_code = Some(exit_code);
                    return print_json(&RunDone { run: path, state: "finished", exit_code });
                }
                Ok(())
            }
        }
    }
}

/// Records `op` in the run, creating it (and setting its job type) first when needed.
pub(super) async fn note_run(
    registry: &Registry,
    run: &RunPath,
    job_type: Option<&str>,
    op: RunOp,
) -> Result<()> {
    let what = format!("run {}/{}/{}", run.entity, run.project, run.name);
    let state = registry.run_state(run).await.with_context(|| format!("cannot read {what}"))?;
    if state.seq == 0 || (job_type.is_some() && state.fields.job_type.as_deref() != job_type) {
        let fields = RunFields {
            job_type: job_type.map(str::to_owned),
            host: host(),
            state: Some("running".into()),
            ..RunFields::default()
        };
        registry
            .record_run(run, RunOp::Upsert(Box::new(fields)))
            .await
            .with_context(|| format!("cannot record {what}"))?;
    }
    registry
        .record_run(run, op)
        .await
        .with_context(|| format!("cannot record lineage in {what}"))?;
    Ok(())
}

/// The mount's open hook for `--run`: the first open of a file in a version sends the version
/// to a task on the runtime, which records the use. The FUSE thread only takes a lock and
/// queues; it never waits for the registry.
pub(super) fn use_recorder(
    registry: &Registry,
    run: RunPath,
    job_type: Option<String>,
    handle: &tokio::runtime::Handle,
) -> OpenHook {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let registry = registry.clone();
    handle.spawn(async move {
        while let Some(label) = rx.recv().await {
            let Some((collection, version)) = label
                .rsplit_once(":v")
                .and_then(|(c, v)| Some((c.to_owned(), v.parse::<u32>().ok()?)))
            else {
                continue;
            };
            let op = RunOp::Used { collection, version };
            match note_run(&registry, &run, job_type.as_deref(), op).await {
                Ok(()) => tracing::info!("run {}: recorded the use of {label}", run.name),
                Err(e) => tracing::error!("{}", super::error_report(&e)),
            }
        }
    });
    let seen = std::sync::Mutex::new(HashSet::new());
    OpenHook(Arc::new(move |label: &str| {
        let first = seen.lock().map(|mut s| s.insert(label.to_owned())).unwrap_or(false);
        if first {
            let _ = tx.send(label.to_owned());
        }
    }))
}

/// W&B's run ids: 8 lowercase letters and digits.
fn new_run_id() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..8).map(|_| CHARS[fastrand::usize(..CHARS.len())] as char).collect()
}

fn host() -> Option<String> {
    Some(crate::registry::lease::Holder::me().host)
}
