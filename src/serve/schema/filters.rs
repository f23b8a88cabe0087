//! The MongoDB-style `filters` the SDK sends with registry searches (`api.registries(filter=…)`,
//! `registry.collections()`/`versions()`), evaluated over a JSON document of each candidate.

use serde_json::Value as Json;

use super::*;

/// A parsed `filters` JSON string (MongoDB-style); no filter matches everything.
pub(super) fn parse_filter(filters: Option<&str>) -> Res<Json> {
    match filters {
        None | Some("") => Ok(Json::Null),
        Some(s) => serde_json::from_str(s).map_err(|e| invalid(format!("filters: not JSON: {e}"))),
    }
}

/// Whether `fields` match a MongoDB-style `filter`: field equality, `$eq`, `$ne`, `$in`,
/// `$nin`, `$regex`, `$exists`, `$lt`/`$lte`/`$gt`/`$gte`, `$not`, W&B's `$contains`
/// (substring), and `$and`/`$or`/`$nor`; `a.b` reads nested fields; a field holding a list
/// matches when one of its items does. Unknown operators match nothing.
pub(super) fn matches(filter: &Json, fields: &Json) -> bool {
    let Json::Object(conds) = filter else { return filter.is_null() };
    conds.iter().all(|(k, cond)| match (k.as_str(), cond) {
        ("$and", Json::Array(fs)) => fs.iter().all(|f| matches(f, fields)),
        ("$or", Json::Array(fs)) => fs.iter().any(|f| matches(f, fields)),
        ("$nor", Json::Array(fs)) => !fs.iter().any(|f| matches(f, fields)),
        (k, _) if k.starts_with('$') => false,
        (path, cond) => {
            let value =
                path.split('.').try_fold(fields, |v, key| v.get(key)).unwrap_or(&Json::Null);
            value_matches(value, cond)
        }
    })
}

fn value_matches(value: &Json, cond: &Json) -> bool {
    let eq = |want: &Json| match value {
        Json::Array(items) => items.contains(want) || value == want,
        v => v == want || loose_eq(v, want),
    };
    let Json::Object(ops) = cond else { return eq(cond) };
    if !ops.keys().all(|k| k.starts_with('$')) {
        return eq(cond);
    }
    ops.iter().all(|(op, arg)| match op.as_str() {
        "$eq" => eq(arg),
        "$ne" => !eq(arg),
        "$in" => arg.as_array().is_some_and(|a| a.iter().any(&eq)),
        "$nin" => arg.as_array().is_some_and(|a| !a.iter().any(&eq)),
        "$exists" => arg.as_bool() == Some(!value.is_null()),
        "$not" => !value_matches(value, arg),
        "$lt" | "$lte" | "$gt" | "$gte" => compare(value, arg).is_some_and(|o| match op.as_str() {
            "$lt" => o.is_lt(),
            "$lte" => o.is_le(),
            "$gt" => o.is_gt(),
            _ => o.is_ge(),
        }),
        "$contains" => {
            let Some(part) = arg.as_str() else { return false };
            match value {
                Json::String(s) => s.contains(part),
                Json::Array(items) => {
                    items.iter().any(|i| i.as_str().is_some_and(|s| s.contains(part)))
                }
                _ => false,
            }
        }
        "$regex" => {
            let Some(re) = arg.as_str().and_then(|r| regex::Regex::new(r).ok()) else {
                return false;
            };
            match value {
                Json::String(s) => re.is_match(s),
                Json::Array(items) => {
                    items.iter().any(|i| i.as_str().is_some_and(|s| re.is_match(s)))
                }
                _ => false,
            }
        }
        _ => false,
    })
}

/// The order of two numbers or two strings (timestamps are RFC 3339 strings, so they order too).
fn compare(a: &Json, b: &Json) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Json::String(x), Json::String(y)) => Some(x.as_str().cmp(y)),
        _ => None,
    }
}

/// Numbers sent as strings (and the reverse) still compare equal: W&B's filters are loose.
fn loose_eq(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(n), Json::String(s)) | (Json::String(s), Json::Number(n)) => {
            n.to_string() == *s
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_as_mongodb_does() {
        let f = serde_json::json!({"name": "wandb-registry-model", "alias": "best", "version": {"$in": ["v1", "v2"]}});
        let v = serde_json::json!({"name": "wandb-registry-model", "alias": ["latest", "best"], "version": "v2"});
        assert!(matches(&f, &v));
        assert!(!matches(&serde_json::json!({"alias": "prod"}), &v));
        let re = serde_json::json!({"$or": [{"name": {"$regex": "mod"}}, {"name": "x"}]});
        assert!(matches(&re, &v));
        assert!(matches(&serde_json::json!({"id": "12"}), &serde_json::json!({"id": 12})));
        assert!(matches(
            &serde_json::json!({"metadata.lr": 0.1}),
            &serde_json::json!({"metadata": {"lr": 0.1}})
        ));
        assert!(
            !matches(&serde_json::json!({"$where": "x"}), &v),
            "unknown operators match nothing"
        );
        assert!(matches(&Json::Null, &v));
        let contains = serde_json::json!({"name": {"$contains": "registry-mo"}});
        assert!(matches(&contains, &v));
        assert!(!matches(&serde_json::json!({"name": {"$contains": "other"}}), &v));
        let range = serde_json::json!({"n": {"$gte": 2, "$lt": 3}});
        assert!(matches(&range, &serde_json::json!({"n": 2})));
        assert!(!matches(&range, &serde_json::json!({"n": 3})));
        assert!(matches(
            &serde_json::json!({"n": {"$not": {"$gt": 5}}}),
            &serde_json::json!({"n": 2})
        ));
    }
}
