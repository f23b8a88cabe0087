//! The filters and orders users give `api.runs(path, filters=…, order=…)`: W&B's MongoDB-like
//! language over a run's fields, parsed once (`RunFilter::parse`, `RunOrder::parse`) and
//! evaluated against a run's document (`run_document`), with no I/O.
//!
//! Fields: `name`, `display_name`/`displayName`, `state`, `jobType`, `group`, `tags`,
//! `createdAt`/`created_at`, `heartbeatAt`/`heartbeat_at`, `config.<key>` (W&B keeps config as
//! `{key: {value, desc}}`; `config.lr` and `config.lr.value` both mean the value),
//! `summary_metrics.<key>` (nested keys by dots). Operators: `$and`, `$or`, `$nor`, `$not`,
//! `$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte`, `$in`, `$nin`, `$regex`, `$exists`. As in MongoDB,
//! a condition on an array field (`tags`) holds when it holds for any element, and numbers
//! compare with numbers, strings with strings, never across.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::runs::{RunPath, RunState};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RunFilterError {
    #[error("run filters: not JSON: {0}")]
    NotJson(String),
    #[error("run filters: {0} must be a JSON object")]
    NotObject(String),
    #[error("run filters: unknown operator {op:?} (known: {})", OPERATORS.join(", "))]
    UnknownOperator { op: String },
    #[error("run filters: {op} takes {what}, got {got}")]
    BadOperand { op: String, what: &'static str, got: String },
    #[error("run filters: invalid $regex {pattern:?}: {reason}")]
    BadRegex { pattern: String, reason: String },
    #[error(
        "run filters: unknown field {field:?}; filter on name, display_name, state, jobType, group, tags, createdAt, heartbeatAt, config.<key> or summary_metrics.<key>"
    )]
    UnknownField { field: String },
    #[error("run order {order:?}: {reason}")]
    BadOrder { order: String, reason: String },
}

const OPERATORS: &[&str] = &[
    "$and", "$or", "$nor", "$not", "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin",
    "$regex", "$exists",
];

/// A parsed filter.
#[derive(Debug)]
pub enum RunFilter {
    And(Vec<RunFilter>),
    Or(Vec<RunFilter>),
    Nor(Vec<RunFilter>),
    Field { path: FieldPath, cond: Cond },
}

/// A condition on one field's value.
#[derive(Debug)]
pub enum Cond {
    All(Vec<Cond>),
    Not(Box<Cond>),
    Eq(Value),
    Ne(Value),
    Cmp(Ordering, bool, Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Regex(regex::Regex),
    Exists(bool),
}

/// Where a field lives in a run's document (`run_document`).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldPath(Vec<String>);

impl FieldPath {
    pub fn parse(field: &str) -> Result<FieldPath, RunFilterError> {
        let unknown = || RunFilterError::UnknownField { field: field.to_owned() };
        let segs: Vec<&str> = field.split('.').collect();
        let top = match segs[0] {
            "name" | "id" => "name",
            "display_name" | "displayName" => "displayName",
            "state" => "state",
            "jobType" | "job_type" => "jobType",
            "group" => "group",
            "tags" => "tags",
            "createdAt" | "created_at" => "createdAt",
            "heartbeatAt" | "heartbeat_at" | "updatedAt" | "updated_at" => "heartbeatAt",
            "config" => "config",
            "summary_metrics" | "summaryMetrics" | "summary" => "summary_metrics",
            _ => return Err(unknown()),
        };
        let rest = &segs[1..];
        if rest.iter().any(|s| s.is_empty()) {
            return Err(unknown());
        }
        let mut path = vec![top.to_owned()];
        match top {
            "config" => {
                let Some((key, more)) = rest.split_first() else { return Err(unknown()) };
                path.push((*key).to_owned());
                // `config.lr` and `config.lr.value` are the same; `config.lr.desc` is not.
                match more.first() {
                    Some(&"value") => path.extend(more.iter().map(|s| (*s).to_owned())),
                    Some(&"desc") if more.len() == 1 => path.push("desc".to_owned()),
                    _ => {
                        path.push("value".to_owned());
                        path.extend(more.iter().map(|s| (*s).to_owned()));
                    }
                }
            }
            "summary_metrics" if rest.is_empty() => return Err(unknown()),
            "summary_metrics" => path.extend(rest.iter().map(|s| (*s).to_owned())),
            _ if !rest.is_empty() => return Err(unknown()),
            _ => {}
        }
        Ok(FieldPath(path))
    }

    fn get<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        self.0.iter().try_fold(doc, |v, seg| v.get(seg)).filter(|v| !v.is_null())
    }
}

impl RunFilter {
    /// `filters` as the SDK sends it: a JSON object as text (`{}` matches every run).
    pub fn parse(filters: &str) -> Result<RunFilter, RunFilterError> {
        let v: Value =
            serde_json::from_str(filters).map_err(|e| RunFilterError::NotJson(e.to_string()))?;
        RunFilter::from_value(&v, "the filter")
    }

    fn from_value(v: &Value, what: &str) -> Result<RunFilter, RunFilterError> {
        let Value::Object(m) = v else { return Err(RunFilterError::NotObject(what.to_owned())) };
        let mut all = Vec::new();
        for (k, v) in m {
            let list = |op: &str| -> Result<Vec<RunFilter>, RunFilterError> {
                let Value::Array(items) = v else {
                    return Err(bad(op, "a list of filters", v));
                };
                items.iter().map(|i| RunFilter::from_value(i, op)).collect()
            };
            all.push(match k.as_str() {
                "$and" => RunFilter::And(list(k)?),
                "$or" => RunFilter::Or(list(k)?),
                "$nor" => RunFilter::Nor(list(k)?),
                op if op.starts_with('$') => {
                    return Err(RunFilterError::UnknownOperator { op: op.to_owned() });
                }
                field => RunFilter::Field { path: FieldPath::parse(field)?, cond: Cond::parse(v)? },
            });
        }
        Ok(match all.len() {
            1 => all.remove(0),
            _ => RunFilter::And(all),
        })
    }

    pub fn matches(&self, doc: &Value) -> bool {
        match self {
            RunFilter::And(fs) => fs.iter().all(|f| f.matches(doc)),
            RunFilter::Or(fs) => fs.iter().any(|f| f.matches(doc)),
            RunFilter::Nor(fs) => !fs.iter().any(|f| f.matches(doc)),
            RunFilter::Field { path, cond } => cond.holds(path.get(doc)),
        }
    }
}

fn bad(op: &str, what: &'static str, got: &Value) -> RunFilterError {
    RunFilterError::BadOperand { op: op.to_owned(), what, got: got.to_string() }
}

impl Cond {
    fn parse(v: &Value) -> Result<Cond, RunFilterError> {
        let Value::Object(m) = v else { return Ok(Cond::Eq(v.clone())) };
        if !m.keys().any(|k| k.starts_with('$')) {
            return Ok(Cond::Eq(v.clone()));
        }
        let mut all = Vec::new();
        for (op, arg) in m {
            let scalar = |what| match arg {
                Value::Object(_) | Value::Array(_) => Err(bad(op, what, arg)),
                _ => Ok(arg.clone()),
            };
            let list = || match arg {
                Value::Array(items) => Ok(items.clone()),
                _ => Err(bad(op, "a list", arg)),
            };
            all.push(match op.as_str() {
                "$eq" => Cond::Eq(arg.clone()),
                "$ne" => Cond::Ne(arg.clone()),
                "$gt" => Cond::Cmp(Ordering::Greater, false, scalar("a number or string")?),
                "$gte" => Cond::Cmp(Ordering::Greater, true, scalar("a number or string")?),
                "$lt" => Cond::Cmp(Ordering::Less, false, scalar("a number or string")?),
                "$lte" => Cond::Cmp(Ordering::Less, true, scalar("a number or string")?),
                "$in" => Cond::In(list()?),
                "$nin" => Cond::Nin(list()?),
                "$not" => Cond::Not(Box::new(Cond::parse(arg)?)),
                "$exists" => match arg {
                    Value::Bool(b) => Cond::Exists(*b),
                    _ => return Err(bad(op, "true or false", arg)),
                },
                "$regex" => {
                    let Value::String(p) = arg else { return Err(bad(op, "a string", arg)) };
                    let re = regex::Regex::new(p).map_err(|e| RunFilterError::BadRegex {
                        pattern: p.clone(),
                        reason: e.to_string(),
                    })?;
                    Cond::Regex(re)
                }
                other => return Err(RunFilterError::UnknownOperator { op: other.to_owned() }),
            });
        }
        Ok(match all.len() {
            1 => all.remove(0),
            _ => Cond::All(all),
        })
    }

    /// Whether the condition holds for a field's value (`None`: the run lacks the field).
    fn holds(&self, v: Option<&Value>) -> bool {
        match self {
            Cond::All(cs) => cs.iter().all(|c| c.holds(v)),
            Cond::Not(c) => !c.holds(v),
            Cond::Exists(want) => v.is_some() == *want,
            Cond::Ne(x) => !Cond::Eq(x.clone()).holds(v),
            Cond::Nin(xs) => !Cond::In(xs.clone()).holds(v),
            Cond::Eq(x) => v.is_some_and(|v| any_element(v, |e| same(e, x)) || same(v, x)),
            Cond::In(xs) => {
                v.is_some_and(|v| xs.iter().any(|x| any_element(v, |e| same(e, x)) || same(v, x)))
            }
            Cond::Cmp(dir, or_eq, x) => v.is_some_and(|v| {
                any_element(v, |e| match compare(e, x) {
                    Some(Ordering::Equal) => *or_eq,
                    Some(o) => o == *dir,
                    None => false,
                })
            }),
            Cond::Regex(re) => {
                v.is_some_and(|v| any_element(v, |e| e.as_str().is_some_and(|s| re.is_match(s))))
            }
        }
    }
}

/// `f` of the value, or of any of its elements when it is an array.
fn any_element(v: &Value, f: impl Fn(&Value) -> bool) -> bool {
    match v {
        Value::Array(items) => items.iter().any(&f),
        other => f(other),
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Numbers with numbers, strings with strings; anything else does not compare.
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// A run listing's order: one field, ascending unless it starts with `-`.
#[derive(Debug)]
pub struct RunOrder {
    path: FieldPath,
    descending: bool,
}

impl RunOrder {
    /// `+created_at`, `-summary_metrics.acc`, `config.lr.value`; none: oldest first.
    pub fn parse(order: Option<&str>) -> Result<RunOrder, RunFilterError> {
        let order = order.map(str::trim).filter(|o| !o.is_empty()).unwrap_or("+created_at");
        let (descending, field) = match order.as_bytes()[0] {
            b'-' => (true, &order[1..]),
            b'+' => (false, &order[1..]),
            _ => (false, order),
        };
        let path = FieldPath::parse(field).map_err(|e| RunFilterError::BadOrder {
            order: order.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(RunOrder { path, descending })
    }

    /// Sorts documents; runs lacking the field come last either way, ties by creation.
    pub fn sort<T>(&self, items: &mut [(Value, T)]) {
        let created = FieldPath(vec!["createdAt".to_owned()]);
        items.sort_by(|(a, _), (b, _)| {
            let by_field = match (self.path.get(a), self.path.get(b)) {
                (Some(x), Some(y)) => {
                    let o = compare(x, y).unwrap_or(Ordering::Equal);
                    if self.descending { o.reverse() } else { o }
                }
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            };
            by_field.then_with(|| {
                let (x, y) = (created.get(a), created.get(b));
                x.and_then(|x| y.and_then(|y| compare(x, y))).unwrap_or(Ordering::Equal)
            })
        });
    }
}

/// A run's `state` as listings show it and filters see it.
pub fn state_name(s: &RunState) -> &'static str {
    if s.finished { "finished" } else { "running" }
}

/// The document filters and orders see for one run.
pub fn run_document(path: &RunPath, s: &RunState) -> Value {
    let json_object = |text: &Option<String>| -> Value {
        text.as_deref()
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
            .filter(Value::is_object)
            .unwrap_or_else(|| Value::Object(Map::new()))
    };
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| Value::String(t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()))
            .unwrap_or(Value::Null)
    };
    serde_json::json!({
        "name": path.name,
        "displayName": s.fields.display_name.clone().unwrap_or_else(|| path.name.clone()),
        "state": state_name(s),
        "jobType": s.fields.job_type,
        "group": s.fields.group,
        "tags": s.fields.tags.clone().unwrap_or_default(),
        "createdAt": time(s.created_at),
        "heartbeatAt": time(s.updated_at),
        "config": json_object(&s.fields.config),
        "summary_metrics": json_object(&s.fields.summary_metrics),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::runs::RunFields;

    fn doc(name: &str, lr: f64, acc: Option<f64>, tags: &[&str], job: &str) -> Value {
        let state = RunState {
            fields: RunFields {
                job_type: Some(job.to_owned()),
                config: Some(format!(
                    r#"{{"lr": {{"value": {lr}, "desc": null}}, "opt": {{"value": {{"beta": 0.9}}}}}}"#
                )),
                summary_metrics: acc.map(|a| format!(r#"{{"acc": {a}, "eval": {{"f1": {a}}}}}"#)),
                tags: Some(tags.iter().map(|t| (*t).to_owned()).collect()),
                ..Default::default()
            },
            ..Default::default()
        };
        run_document(&RunPath::new("e", "p", name).unwrap(), &state)
    }

    fn hits(filter: &str, docs: &[Value]) -> Vec<String> {
        let f = RunFilter::parse(filter).unwrap();
        docs.iter()
            .filter(|d| f.matches(d))
            .map(|d| d["name"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn the_filter_language_users_write() {
        let docs = [
            doc("a", 0.1, Some(0.5), &["base"], "train"),
            doc("b", 0.01, Some(0.9), &["base", "best"], "train"),
            doc("c", 0.001, None, &[], "eval"),
        ];
        let cases: &[(&str, &[&str])] = &[
            ("{}", &["a", "b", "c"]),
            (r#"{"config.lr": 0.1}"#, &["a"]),
            (r#"{"config.lr.value": {"$lt": 0.05}}"#, &["b", "c"]),
            (r#"{"config.opt.beta": 0.9}"#, &["a", "b", "c"]),
            (r#"{"summary_metrics.acc": {"$gte": 0.5, "$lt": 0.9}}"#, &["a"]),
            (r#"{"summary_metrics.eval.f1": {"$gt": 0.6}}"#, &["b"]),
            (r#"{"summary_metrics.acc": {"$exists": false}}"#, &["c"]),
            (r#"{"jobType": "eval"}"#, &["c"]),
            (r#"{"tags": "best"}"#, &["b"]),
            (r#"{"tags": {"$in": ["best", "x"]}}"#, &["b"]),
            (r#"{"tags": {"$nin": ["base"]}}"#, &["c"]),
            (r#"{"jobType": {"$ne": "train"}}"#, &["c"]),
            (r#"{"display_name": {"$regex": "^[ab]$"}}"#, &["a", "b"]),
            (r#"{"$or": [{"config.lr": 0.1}, {"jobType": "eval"}]}"#, &["a", "c"]),
            (r#"{"$and": [{"jobType": "train"}, {"summary_metrics.acc": {"$gt": 0.6}}]}"#, &["b"]),
            (r#"{"state": "running", "name": {"$in": ["a", "c"]}}"#, &["a", "c"]),
            (r#"{"createdAt": {"$gt": "2000-01-01"}}"#, &[]),
        ];
        for (f, want) in cases {
            assert_eq!(hits(f, &docs), *want, "{f}");
        }
    }

    #[test]
    fn bad_filters_say_what_is_wrong() {
        let err = |f: &str| RunFilter::parse(f).unwrap_err();
        assert!(matches!(err("{"), RunFilterError::NotJson(_)));
        assert!(matches!(err("[]"), RunFilterError::NotObject(_)));
        assert_eq!(err(r#"{"$xor": []}"#), RunFilterError::UnknownOperator { op: "$xor".into() });
        assert!(matches!(err(r#"{"lr": {"$foo": 1}}"#), RunFilterError::UnknownField { .. }));
        assert!(matches!(
            err(r#"{"config.lr": {"$foo": 1}}"#),
            RunFilterError::UnknownOperator { .. }
        ));
        assert!(matches!(err(r#"{"$or": {"a": 1}}"#), RunFilterError::BadOperand { .. }));
        assert!(matches!(err(r#"{"tags": {"$in": "x"}}"#), RunFilterError::BadOperand { .. }));
        assert!(matches!(err(r#"{"name": {"$regex": "("}}"#), RunFilterError::BadRegex { .. }));
        assert!(matches!(err(r#"{"config": 1}"#), RunFilterError::UnknownField { .. }));
        assert!(RunOrder::parse(Some("-nope")).is_err());
    }

    #[test]
    fn orders_sort_with_missing_values_last() {
        let mut items: Vec<(Value, ())> = [
            doc("a", 0.1, Some(0.5), &[], "t"),
            doc("b", 0.01, Some(0.9), &[], "t"),
            doc("c", 0.001, None, &[], "t"),
        ]
        .into_iter()
        .map(|d| (d, ()))
        .collect();
        let names = |items: &[(Value, ())]| -> Vec<String> {
            items.iter().map(|(d, _)| d["name"].as_str().unwrap().to_owned()).collect()
        };
        RunOrder::parse(Some("-summary_metrics.acc")).unwrap().sort(&mut items);
        assert_eq!(names(&items), ["b", "a", "c"]);
        RunOrder::parse(Some("+summary_metrics.acc")).unwrap().sort(&mut items);
        assert_eq!(names(&items), ["a", "b", "c"]);
        RunOrder::parse(Some("config.lr.value")).unwrap().sort(&mut items);
        assert_eq!(names(&items), ["c", "b", "a"]);
    }
}
