//! What a run streams through `file_stream`: history rows, the summary, system events and
//! console lines, each file sent as `{offset, content: [lines]}` where `offset` is the number of
//! the first line. The bodies are kept as sent (`Registry::keep_run_stream`, create-only); the
//! small facts readers need without reading them all (line counts, last step, summary, the last
//! history row) go into the run's log as a `Streamed` op, so a run listing reads one log per
//! run and a resuming client learns where to continue.
//!
//! History is read back by line number, so a body the SDK re-sends after a lost answer counts
//! once, and a resumed run's lines (sent from the count it was told) follow the earlier ones.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::runs::{RunOp, RunPath, Streamed};
use super::{Registry, RegistryError};

pub const HISTORY_FILE: &str = "wandb-history.jsonl";
pub const SUMMARY_FILE: &str = "wandb-summary.json";
pub const EVENTS_FILE: &str = "wandb-events.jsonl";
pub const OUTPUT_FILE: &str = "output.log";

/// One `file_stream` request body.
#[derive(Debug, Default, Deserialize)]
pub struct StreamBody {
    #[serde(default)]
    pub files: BTreeMap<String, StreamFile>,
    #[serde(default)]
    pub complete: Option<bool>,
    #[serde(default)]
    pub exitcode: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamFile {
    #[serde(default)]
    pub offset: u64,
    #[serde(default)]
    pub content: Vec<String>,
}

impl StreamBody {
    /// A body that is not JSON of this shape is kept as sent and otherwise ignored.
    pub fn parse(body: &[u8]) -> StreamBody {
        serde_json::from_slice(body).unwrap_or_default()
    }

    /// `Some(exit code)` when the body says the run is over.
    pub fn finished(&self) -> Option<Option<i64>> {
        (self.complete == Some(true)).then_some(self.exitcode)
    }

    /// What this body changed, or `None` if it carries no lines.
    pub fn progress(&self) -> Option<Streamed> {
        let end = |name: &str| {
            self.files
                .get(name)
                .filter(|f| !f.content.is_empty())
                .map(|f| f.offset + f.content.len() as u64)
        };
        let history = self.files.get(HISTORY_FILE);
        let last_step = history
            .into_iter()
            .flat_map(|f| f.content.iter())
            .filter_map(|line| step_of(line))
            .max();
        let s = Streamed {
            summary: self.files.get(SUMMARY_FILE).and_then(|f| f.content.last().cloned()),
            history_lines: end(HISTORY_FILE),
            events_lines: end(EVENTS_FILE),
            log_lines: end(OUTPUT_FILE),
            last_step,
            history_tail: history.and_then(|f| f.content.last().cloned()),
        };
        (s != Streamed::default()).then_some(s)
    }
}

/// The `_step` of one history line, if it has one.
pub fn step_of(line: &str) -> Option<i64> {
    #[derive(Deserialize)]
    struct Step {
        #[serde(rename = "_step")]
        step: Option<f64>,
    }
    serde_json::from_str::<Step>(line).ok()?.step.map(|s| s as i64)
}

impl Registry {
    /// Every line a run streamed for `file`, in line order (a line sent twice counts once).
    pub async fn run_stream_lines(
        &self,
        run: &RunPath,
        file: &str,
    ) -> Result<Vec<String>, RegistryError> {
        let mut lines = BTreeMap::new();
        for body in self.run_objects(run, "stream").await?.into_values() {
            let mut parsed = StreamBody::parse(&body);
            if let Some(f) = parsed.files.remove(file) {
                for (i, line) in f.content.into_iter().enumerate() {
                    lines.insert(f.offset + i as u64, line);
                }
            }
        }
        Ok(lines.into_values().collect())
    }

    /// Keeps one `file_stream` body and records what it changed in the run's log: progress
    /// first, then the end, so a finished run's summary is its last one.
    pub async fn record_stream(
        &self,
        run: &RunPath,
        body: bytes::Bytes,
    ) -> Result<(), RegistryError> {
        let parsed = StreamBody::parse(&body);
        self.keep_run_stream(run, body).await?;
        if let Some(s) = parsed.progress() {
            self.record_run(run, RunOp::Streamed(Box::new(s))).await?;
        }
        if let Some(exit_code) = parsed.finished() {
            self.record_run(run, RunOp::Finished { exit_code }).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::runs::StreamProgress;

    #[test]
    fn a_body_gives_counts_step_summary_and_end() {
        let body = br#"{"files": {
            "wandb-history.jsonl": {"offset": 3, "content": ["{\"_step\":3,\"loss\":1}", "{\"_step\":4,\"loss\":0.5}"]},
            "wandb-summary.json": {"offset": 0, "content": ["{\"loss\":0.5}"]},
            "output.log": {"offset": 10, "content": ["a"]}},
            "complete": true, "exitcode": 0}"#;
        let b = StreamBody::parse(body);
        assert_eq!(b.finished(), Some(Some(0)));
        let s = b.progress().unwrap();
        assert_eq!(s.history_lines, Some(5));
        assert_eq!(s.log_lines, Some(11));
        assert_eq!(s.events_lines, None);
        assert_eq!(s.last_step, Some(4));
        assert_eq!(s.summary.as_deref(), Some("{\"loss\":0.5}"));
        let mut p = StreamProgress::default();
        p.apply(&s);
        // An older body arriving late moves nothing back.
        p.apply(&Streamed { history_lines: Some(2), last_step: Some(1), ..Default::default() });
        assert_eq!((p.history_lines, p.last_step), (5, Some(4)));
        assert_eq!(p.history_tail.as_deref(), Some("{\"_step\":4,\"loss\":0.5}"));
    }

    #[test]
    fn bodies_without_lines_or_json_change_nothing() {
        assert!(StreamBody::parse(b"{}").progress().is_none());
        assert!(StreamBody::parse(b"not json").progress().is_none());
        assert_eq!(StreamBody::parse(b"{\"complete\": false}").finished(), None);
    }

    #[tokio::test]
    async fn history_is_read_by_line_number_once() {
        let dir = tempfile::tempdir().unwrap();
        let reg = crate::registry::runs::tests::registry_in(dir.path());
        let run = RunPath::new("e", "p", "r").unwrap();
        let body = |off: u64, steps: std::ops::Range<i64>| {
            let content: Vec<String> = steps.map(|s| format!("{{\"_step\":{s}}}")).collect();
            let v =
                serde_json::json!({"files": {HISTORY_FILE: {"offset": off, "content": content}}});
            bytes::Bytes::from(v.to_string())
        };
        reg.record_stream(&run, body(2, 2..4)).await.unwrap();
        reg.record_stream(&run, body(0, 0..2)).await.unwrap();
        reg.record_stream(&run, body(2, 2..4)).await.unwrap();
        let lines = reg.run_stream_lines(&run, HISTORY_FILE).await.unwrap();
        let steps: Vec<_> = lines.iter().filter_map(|l| step_of(l)).collect();
        assert_eq!(steps, [0, 1, 2, 3]);
        let s = reg.run_state(&run).await.unwrap();
        assert_eq!((s.stream.history_lines, s.stream.last_step), (4, Some(3)));
    }
}
