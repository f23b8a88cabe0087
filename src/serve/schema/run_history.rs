//! A run's streamed history as the SDK reads it back: `history(samples, minStep, maxStep)` (rows
//! as JSON strings: `run.history()` and wandb-core's `HistoryPage` for `scan_history`),
//! `sampledHistory(specs)` (rows with only the asked keys: `history(keys=…)`, `scan_history(keys=…)`)
//! and `parquetHistory`, which says there are no exported files, so wandb-core reads all of it
//! live. Also the resume facts wandb-core's `RunResumeStatus` reads (`historyTail`,
//! `wandbConfig`).

use serde::Deserialize;

use super::*;
use crate::registry::run_stream::{EVENTS_FILE, HISTORY_FILE, step_of};

/// W&B's `Int64`, which wandb-core declares for steps.
#[derive(Debug, Clone, Copy)]
pub struct Int64(pub i64);

#[Scalar(name = "Int64")]
impl ScalarType for Int64 {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::Number(n) => match n.as_i64() {
                Some(i) => Ok(Int64(i)),
                None => Err(InputValueError::custom("Int64: not an integer")),
            },
            Value::String(s) => s.parse().map(Int64).map_err(InputValueError::custom),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::Number(self.0.into())
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ParquetHistory {
    pub parquet_urls: Vec<String>,
    pub live_data: Vec<async_graphql::Json<serde_json::Value>>,
}

/// One spec of `sampledHistory`: `maxStep` is inclusive there.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SampleSpec {
    #[serde(default)]
    keys: Vec<String>,
    samples: Option<i64>,
    min_step: Option<i64>,
    max_step: Option<i64>,
}

/// Default number of rows when a client gives no `samples`, as W&B's `run.history()`.
const DEFAULT_SAMPLES: usize = 500;

/// At most `n` of `items`, spread evenly and keeping the first and the last.
fn sample<T: Clone>(items: &[T], n: usize) -> Vec<T> {
    if items.len() <= n {
        return items.to_vec();
    }
    match n {
        0 => Vec::new(),
        1 => vec![items[items.len() - 1].clone()],
        _ => (0..n).map(|i| items[i * (items.len() - 1) / (n - 1)].clone()).collect(),
    }
}

fn samples_of(samples: Option<i64>) -> usize {
    samples.map(|s| s.clamp(0, MAX_PAGE as i64) as usize).unwrap_or(DEFAULT_SAMPLES)
}

fn in_steps(line: &str, min: Option<i64>, max_exclusive: Option<i64>) -> bool {
    let Some(step) = step_of(line) else { return min.is_none() && max_exclusive.is_none() };
    min.is_none_or(|m| step >= m) && max_exclusive.is_none_or(|m| step < m)
}

impl Run {
    pub(super) async fn history_rows(
        &self,
        ctx: &Context<'_>,
        samples: Option<i64>,
        min_step: Option<i64>,
        max_step: Option<i64>,
    ) -> Res<Vec<JsonString>> {
        let lines = reg(ctx).run_stream_lines(&self.path, HISTORY_FILE).await.map_err(err)?;
        let lines: Vec<String> =
            lines.into_iter().filter(|l| in_steps(l, min_step, max_step)).collect();
        Ok(sample(&lines, samples_of(samples)).into_iter().map(JsonString).collect())
    }

    pub(super) async fn events_rows(
        &self,
        ctx: &Context<'_>,
        samples: Option<i64>,
    ) -> Res<Vec<JsonString>> {
        let lines = reg(ctx).run_stream_lines(&self.path, EVENTS_FILE).await.map_err(err)?;
        Ok(sample(&lines, samples_of(samples)).into_iter().map(JsonString).collect())
    }

    pub(super) async fn sampled(
        &self,
        ctx: &Context<'_>,
        specs: Vec<JsonString>,
    ) -> Res<Vec<async_graphql::Json<serde_json::Value>>> {
        let lines = reg(ctx).run_stream_lines(&self.path, HISTORY_FILE).await.map_err(err)?;
        let rows: Vec<serde_json::Map<String, serde_json::Value>> =
            lines.iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let mut out = Vec::new();
        for spec in specs {
            let spec: SampleSpec = serde_json::from_str(&spec.0)
                .map_err(|e| invalid(format!("sampledHistory: spec {:?}: {e}", spec.0)))?;
            let max_exclusive = spec.max_step.map(|m| m.saturating_add(1));
            let picked: Vec<serde_json::Value> = rows
                .iter()
                .filter(|r| spec.keys.iter().all(|k| r.contains_key(k)))
                .filter(|r| {
                    let step = r.get("_step").and_then(|s| s.as_f64()).map(|s| s as i64);
                    match step {
                        Some(s) => {
                            spec.min_step.is_none_or(|m| s >= m)
                                && max_exclusive.is_none_or(|m| s < m)
                        }
                        None => spec.min_step.is_none() && spec.max_step.is_none(),
                    }
                })
                .map(|r| {
                    let only = spec
                        .keys
                        .iter()
                        .filter_map(|k| r.get(k).map(|v| (k.clone(), v.clone())))
                        .collect();
                    serde_json::Value::Object(only)
                })
                .collect();
            out.push(async_graphql::Json(serde_json::Value::Array(sample(
                &picked,
                samples_of(spec.samples),
            ))));
        }
        Ok(out)
    }

    /// The config's `_wandb` entries named by `keys` (wandb-core asks for `t`, which tells a
    /// started run from one created ahead of time).
    pub(super) fn wandb_config_of(&self, keys: Option<Vec<String>>) -> Option<JsonString> {
        let config: serde_json::Value =
            serde_json::from_str(self.state.fields.config.as_ref()?).ok()?;
        let wandb = config.get("_wandb")?.get("value")?.as_object()?;
        let picked: serde_json::Map<String, serde_json::Value> = wandb
            .iter()
            .filter(|(k, _)| keys.as_ref().is_none_or(|ks| ks.contains(k)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Some(JsonString(serde_json::Value::Object(picked).to_string()))
    }

    /// The last history row as a JSON list of JSON strings (`[]` when none).
    pub(super) fn history_tail_json(&self) -> JsonString {
        let tail: Vec<&str> = self.state.stream.history_tail.as_deref().into_iter().collect();
        JsonString(serde_json::to_string(&tail).unwrap_or_else(|_| "[]".to_owned()))
    }

    pub(super) fn history_keys_value(&self) -> serde_json::Value {
        match self.state.stream.last_step {
            Some(step) => serde_json::json!({ "keys": {}, "lastStep": step }),
            None => serde_json::json!({ "keys": {} }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_keeps_ends_and_bounds_the_count() {
        let items: Vec<i32> = (0..10).collect();
        assert_eq!(sample(&items, 20), items);
        assert_eq!(sample(&items, 3), [0, 4, 9]);
        assert_eq!(sample(&items, 1), [9]);
        assert!(sample(&items, 0).is_empty());
    }

    #[test]
    fn step_ranges_are_half_open() {
        let l = "{\"_step\":5}";
        assert!(in_steps(l, Some(5), Some(6)));
        assert!(!in_steps(l, Some(0), Some(5)));
        assert!(in_steps(l, None, None));
        assert!(!in_steps("{}", Some(0), None));
    }
}
