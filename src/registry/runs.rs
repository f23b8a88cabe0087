//! Runs (W&B's `wandb.init` … `run.finish()`), recorded in the registry as a create-only commit
//! log per run (`commit_log`, as a collection's), state the pure fold `RunState::apply` over a
//! tagged `RunOp`. The lineage index of what runs logged and used is kept by `lineage`, which
//! writes it before the run's commit (`Registry::record_run`). What a run streams (history,
//! summary, console) and the files it uploads are kept as immutable objects beside the log:
//! `runs/…/stream/<unique>.json` and `runs/…/files/<name>/<unique>`.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::commit_log::{Fold, FoldError};
use super::{Registry, RegistryError, layout, unique_id};
use crate::names::validate_scope;

/// What one body changed, as recorded in the run's log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Streamed {
    /// The whole summary as last sent (wandb-core always sends all of it).
    pub summary: Option<String>,
    /// Line counts: one past the last line this body holds, per file.
    pub history_lines: Option<u64>,
    pub events_lines: Option<u64>,
    pub log_lines: Option<u64>,
    pub last_step: Option<i64>,
    /// The last history row this body holds, as sent.
    pub history_tail: Option<String>,
}

/// Where a run's streams stand: the fold of its `Streamed` ops.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamProgress {
    pub history_lines: u64,
    pub events_lines: u64,
    pub log_lines: u64,
    pub last_step: Option<i64>,
    pub history_tail: Option<String>,
}

impl StreamProgress {
    pub fn apply(&mut self, s: &Streamed) {
        let grow = |cur: &mut u64, new: Option<u64>| *cur = (*cur).max(new.unwrap_or(0));
        grow(&mut self.history_lines, s.history_lines);
        grow(&mut self.events_lines, s.events_lines);
        grow(&mut self.log_lines, s.log_lines);
        if let Some(step) = s.last_step
            && self.last_step.is_none_or(|cur| step >= cur)
        {
            self.last_step = Some(step);
            if s.history_tail.is_some() {
                self.history_tail = s.history_tail.clone();
            }
        }
    }
}

/// One published change to a run.
pub type RunCommit = super::commit_log::Commit<RunOp>;

/// Fields a client set on a run; `None` leaves the current value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunFields {
    pub display_name: Option<String>,
    pub job_type: Option<String>,
    pub group: Option<String>,
    /// W&B's config: a JSON string `{"key": {"value": …}}`.
    pub config: Option<String>,
    pub summary_metrics: Option<String>,
    pub description: Option<String>,
    pub notes: Option<String>,
    pub host: Option<String>,
    pub program: Option<String>,
    pub commit: Option<String>,
    pub tags: Option<Vec<String>>,
    pub state: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunOp {
    Upsert(Box<RunFields>),
    /// The run logged (created or re-logged) `collection:v{version}`.
    Logged {
        collection: String,
        version: u32,
    },
    /// The run used `collection:v{version}`.
    Used {
        collection: String,
        version: u32,
    },
    /// The client reported the run finished.
    Finished {
        exit_code: Option<i64>,
    },
    /// A `file_stream` body arrived (`run_stream`).
    Streamed(Box<Streamed>),
}

/// The fold of a run's log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub seq: u64,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub fields: RunFields,
    pub logged: Vec<(String, u32)>,
    pub used: Vec<(String, u32)>,
    pub exit_code: Option<i64>,
    pub finished: bool,
    #[serde(default)]
    pub stream: StreamProgress,
}

impl Fold for RunState {
    type Op = RunOp;

    fn seq(&self) -> u64 {
        self.seq
    }

    fn skip_to(&mut self, seq: u64) {
        self.seq = seq;
    }

    fn fold_op(&mut self, c: &RunCommit) -> Result<(), FoldError> {
        self.created_at.get_or_insert(c.time);
        self.updated_at = Some(c.time);
        match &c.op {
            RunOp::Upsert(f) => {
                let cur = &mut self.fields;
                macro_rules! set {
                    ($($name:ident),*) => { $( if f.$name.is_some() { cur.$name = f.$name.clone(); } )* };
                }
                set!(
                    display_name,
                    job_type,
                    group,
                    config,
                    summary_metrics,
                    description,
                    notes,
                    host,
                    program,
                    commit,
                    tags,
                    state
                );
            }
            RunOp::Logged { collection, version } => {
                let item = (collection.clone(), *version);
                if !self.logged.contains(&item) {
                    self.logged.push(item);
                }
            }
            RunOp::Used { collection, version } => {
                let item = (collection.clone(), *version);
                if !self.used.contains(&item) {
                    self.used.push(item);
                }
            }
            RunOp::Finished { exit_code } => {
                self.finished = true;
                self.exit_code = *exit_code;
            }
            RunOp::Streamed(s) => {
                if s.summary.is_some() {
                    self.fields.summary_metrics = s.summary.clone();
                }
                self.stream.apply(s);
            }
        }
        Ok(())
    }
}

/// Identifies one run.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunPath {
    pub entity: String,
    pub project: String,
    pub name: String,
}

impl RunPath {
    pub fn new(entity: &str, project: &str, name: &str) -> Result<RunPath, RegistryError> {
        validate_scope("entity", entity)?;
        validate_scope("project", project)?;
        validate_scope("run", name)?;
        Ok(RunPath { entity: entity.into(), project: project.into(), name: name.into() })
    }

    pub(super) fn prefix(&self) -> String {
        layout::run(&self.entity, &self.project, &self.name)
    }
}

impl Registry {
    pub async fn run_state(&self, run: &RunPath) -> Result<RunState, RegistryError> {
        self.load_log(&run.prefix(), RunState::default()).await
    }

    /// Appends one op to a run's log (creating the run), retrying when another writer won.
    /// Callers go through `record_run`, which keeps the lineage index ahead of the log.
    pub(super) async fn append_run(
        &self,
        run: &RunPath,
        op: RunOp,
    ) -> Result<RunState, RegistryError> {
        let name = format!("run {}", run.prefix());
        let decide = |_: &RunState| Ok((Some(op.clone()), ()));
        Ok(self.append(&run.prefix(), &name, decide).await?.0)
    }

    /// Keeps one `file_stream` request body as sent.
    pub async fn keep_run_stream(&self, run: &RunPath, body: Bytes) -> Result<(), RegistryError> {
        let key = layout::run_stream(&run.prefix(), &unique_id());
        self.store.put_create(&key, body).await?;
        Ok(())
    }

    /// Keeps one uploaded run file (`config.yaml`, `wandb-summary.json`, …); every upload of
    /// the same name is kept, in time order.
    pub async fn keep_run_file(
        &self,
        run: &RunPath,
        name: &str,
        body: Bytes,
    ) -> Result<(), RegistryError> {
        let key = layout::run_file(&run.prefix(), name, &unique_id());
        self.store.put_create(&key, body).await?;
        Ok(())
    }

    /// The runs of a project, by name.
    pub async fn runs(&self, entity: &str, project: &str) -> Result<Vec<String>, RegistryError> {
        Ok(self.store.list_dirs(&layout::runs_dir(entity, project)).await?)
    }

    /// Every stored object of a run below `sub` (`stream`, `files`), as (key, bytes).
    pub async fn run_objects(
        &self,
        run: &RunPath,
        sub: &str,
    ) -> Result<BTreeMap<String, Bytes>, RegistryError> {
        let mut out = BTreeMap::new();
        for l in self.store.list(&format!("{}/{sub}", run.prefix())).await? {
            let b = self.store.get(&l.key).await?;
            out.insert(l.key, b);
        }
        Ok(out)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::registry) fn registry_in(dir: &std::path::Path) -> Registry {
        let clouds = crate::store::cloud::Clouds::default();
        Registry::new(crate::store::Store::open(dir.to_str().unwrap(), &clouds).unwrap())
    }

    fn commit(seq: u64, op: RunOp) -> RunCommit {
        RunCommit { seq, time: Utc::now(), writer: "t".into(), op }
    }

    #[test]
    fn upserts_merge_and_lineage_is_a_set() {
        let mut s = RunState::default();
        let f = RunFields {
            job_type: Some("train".into()),
            config: Some("{}".into()),
            ..Default::default()
        };
        s.apply(&commit(1, RunOp::Upsert(Box::new(f)))).unwrap();
        let g = RunFields { config: Some("{\"a\":1}".into()), ..Default::default() };
        s.apply(&commit(2, RunOp::Upsert(Box::new(g)))).unwrap();
        assert_eq!(s.fields.job_type.as_deref(), Some("train"));
        assert_eq!(s.fields.config.as_deref(), Some("{\"a\":1}"));
        let used = RunOp::Used { collection: "e/p/d".into(), version: 1 };
        s.apply(&commit(3, used.clone())).unwrap();
        s.apply(&commit(4, used)).unwrap();
        assert_eq!(s.used, [("e/p/d".to_string(), 1)]);
        assert!(s.apply(&commit(9, RunOp::Finished { exit_code: Some(0) })).is_err());
    }

    #[tokio::test]
    async fn runs_are_recorded_in_the_registry() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry_in(dir.path());
        let run = RunPath::new("e", "p", "abc123").unwrap();
        reg.record_run(&run, RunOp::Upsert(Box::default())).await.unwrap();
        reg.record_run(&run, RunOp::Finished { exit_code: Some(0) }).await.unwrap();
        reg.keep_run_stream(&run, Bytes::from_static(b"{}")).await.unwrap();
        let s = reg.run_state(&run).await.unwrap();
        assert_eq!((s.seq, s.finished), (2, true));
        assert_eq!(reg.runs("e", "p").await.unwrap(), ["abc123"]);
        assert_eq!(reg.run_objects(&run, "stream").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_long_run_is_read_from_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry_in(dir.path());
        let run = RunPath::new("e", "p", "long").unwrap();
        for i in 0..40 {
            let f = RunFields {
                summary_metrics: Some(format!("{{\"step\":{i}}}")),
                ..Default::default()
            };
            reg.record_run(&run, RunOp::Upsert(Box::new(f))).await.unwrap();
        }
        let want = reg.run_state(&run).await.unwrap();
        assert_eq!(want.seq, 40);
        let checkpoint = dir.path().join(layout::checkpoint(&run.prefix(), 32));
        assert!(checkpoint.exists(), "a checkpoint every 32 commits");
        // Commits before the checkpoint are not read again: corrupting one changes nothing.
        let first = dir.path().join(layout::commit(&run.prefix(), 1));
        std::fs::write(first, b"garbage").unwrap();
        assert_eq!(reg.run_state(&run).await.unwrap(), want);
        assert_eq!(want.fields.summary_metrics.as_deref(), Some("{\"step\":39}"));
    }
}
