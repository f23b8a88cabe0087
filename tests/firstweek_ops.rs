//! Running `artfs serve` for a team: keys an operator lists, expires and revokes (checked with
//! the real SDK), the access log, and `/metrics`.

use std::time::Duration;

use crate::serve::{Server, create_key, http, run_flow};
use crate::util::Env;

fn basic(key: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("api:{key}")))
}

/// The HTTP status of a `viewer` query with `key`.
fn viewer_status(server: &Server, key: &str) -> u16 {
    let body = r#"{"query":"query Viewer { viewer { username } }"}"#;
    let auth = basic(key);
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    http(&server.addr, "POST", "/graphql", &headers, body.as_bytes()).0
}

/// What `wandb.Api().viewer` says with `key`: `Some(username)`, `None` when the key is refused.
fn sdk_viewer(env: &Env, server: &Server, key: &str, tag: &str) -> Option<String> {
    let (r, _) = run_flow(env, server, key, "ops_viewer.py", tag, &[]);
    r["ok"].as_bool().unwrap().then(|| r["username"].as_str().unwrap().to_owned())
}

fn key_list(env: &Env) -> Vec<serde_json::Value> {
    env.json(&["key", "list"]).as_array().unwrap().clone()
}

fn by_user<'a>(keys: &'a [serde_json::Value], user: &str) -> &'a serde_json::Value {
    keys.iter().find(|k| k["user"] == user).unwrap_or_else(|| panic!("no key of {user}: {keys:?}"))
}

#[test]
fn keys_are_listed_expire_and_are_revoked_for_the_next_request() {
    let env = Env::new();
    let server = Server::start(&env, &[]);
    let ana = create_key(&env, &["ana", "--entities", "acme"]);
    let bo = create_key(&env, &["bo", "--entities", "acme", "--read-only", "--expires", "6s"]);
    let created = std::time::Instant::now();
    assert_eq!(viewer_status(&server, &bo), 200);

    assert_eq!(sdk_viewer(&env, &server, &ana, "ana").as_deref(), Some("ana"));
    let keys = key_list(&env);
    assert_eq!(keys.len(), 2, "{keys:?}");
    let listed = serde_json::to_string(&keys).unwrap();
    for secret in [&ana, &bo] {
        assert!(!listed.contains(&secret[6..]), "key list shows a secret: {listed}");
    }
    let ana_row = by_user(&keys, "ana");
    assert!(ana_row["last_used"].is_string(), "a used key shows its last use: {ana_row}");
    assert!(ana_row["revoked_at"].is_null() && ana_row["expires_at"].is_null());
    let bo_row = by_user(&keys, "bo");
    assert!(bo_row["expires_at"].is_string(), "{bo_row}");
    assert_eq!(bo_row["read_only"], true);
    let table = env.ok(&["key", "list"]);
    assert!(
        table.starts_with("ID ") && table.contains(" ana ") && table.contains("active"),
        "{table}"
    );

    // Revoked: refused by the very next request, although the server remembers the key.
    env.ok(&["key", "revoke", ana_row["id"].as_str().unwrap()]);
    assert_eq!(viewer_status(&server, &ana), 401);
    assert_eq!(sdk_viewer(&env, &server, &ana, "ana-revoked"), None);
    let revoked = key_list(&env);
    assert!(by_user(&revoked, "ana")["revoked_at"].is_string());
    assert!(env.ok(&["key", "list"]).contains("revoked"));

    // Expired: worked until its time, refused from then on.
    std::thread::sleep(Duration::from_secs(6).saturating_sub(created.elapsed()));
    assert_eq!(viewer_status(&server, &bo), 401);
    assert_eq!(sdk_viewer(&env, &server, &bo, "bo-expired"), None);
    assert!(env.ok(&["key", "list"]).contains("expired"));

    let unknown = env.fails(&["key", "revoke", "ffffffffffff"]);
    assert!(unknown.contains("no key has this id"), "{unknown}");
}
