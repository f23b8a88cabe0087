//! The HTTP side: the router, GraphQL over `POST /graphql`, and the endpoints the SDK calls with
//! URLs or paths instead of GraphQL. Storage URLs carry their own signature (the SDK sends no
//! credentials to them); `/graphql`, `/files/…/file_stream` and `/artifactsV2/…` need an API key.
//! No handler logs a key, a signature or a query string.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use futures::TryStreamExt;

use super::auth::{Access, key_of_header};
use super::schema::{self, WandbSchema};
use super::{MAX_GRAPHQL_BYTES, MAX_MANIFEST_BYTES, MAX_RUN_UPLOAD_BYTES, Shared};
use crate::manifest::Manifest;
use crate::names::{CollectionPath, validate_scope};
use crate::registry::blob_key;
use crate::registry::runs::{RunOp, RunPath};
use crate::store::StoreError;

#[derive(Clone)]
struct AppState {
    shared: Arc<Shared>,
    schema: WandbSchema,
}

pub fn router(shared: Arc<Shared>) -> Router {
    let schema = schema::build(shared.clone());
    let state = AppState { shared, schema };
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/graphql", post(graphql).layer(DefaultBodyLimit::max(MAX_GRAPHQL_BYTES)))
        .route(
            "/files/{entity}/{project}/{run}/file_stream",
            post(file_stream).layer(DefaultBodyLimit::max(MAX_RUN_UPLOAD_BYTES)),
        )
        .route("/storage/blob/{hex}", put(put_blob).get(get_blob))
        .route("/storage/manifest/{hex}", get(get_manifest))
        .route("/storage/part/{upload}/{n}/{hex}", put(put_part))
        .route(
            "/storage/draft/{draft}",
            put(put_draft_manifest).layer(DefaultBodyLimit::max(MAX_MANIFEST_BYTES)),
        )
        .route(
            "/storage/run/{entity}/{project}/{run}/{*name}",
            put(put_run_file).layer(DefaultBodyLimit::max(MAX_RUN_UPLOAD_BYTES)),
        )
        .route("/artifactsV2/{region}/{entity}/{project}/{collection}/{*rest}", get(artifacts_v2))
        .route("/artifacts/{entity}/{hex}", get(artifacts_v1))
        .nest_service("/ui", super::web::router(state.shared.clone()))
        .fallback(|| async { text(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

async fn log_request(req: Request, next: Next) -> Response {
    // The path only: query strings carry URL signatures.
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let res = next.run(req).await;
    tracing::info!("{method} {path} -> {}", res.status().as_u16());
    res
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut msg = msg.into();
    msg.push('\n');
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], msg).into_response()
}

fn unauthorized() -> Response {
    let mut r = text(StatusCode::UNAUTHORIZED, "unauthorized: send a valid API key");
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
    r
}

/// The caller's access, or the 401 to send.
async fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<Access, Response> {
    let Some(key) =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(key_of_header)
    else {
        return Err(unauthorized());
    };
    match shared.keys.access(&shared.registry, &key).await {
        Ok(Some(a)) => Ok(a),
        Ok(None) => Err(unauthorized()),
        Err(e) => {
            tracing::error!("cannot check an API key: {e}");
            Err(text(StatusCode::SERVICE_UNAVAILABLE, "cannot check API keys right now; retry"))
        }
    }
}

fn check_signature(
    shared: &Shared,
    method: &str,
    what: &str,
    q: &HashMap<String, String>,
) -> Result<(), Response> {
    shared
        .signer
        .verify(
            method,
            what,
            q.get("expires").map(String::as_str),
            q.get("sig").map(String::as_str),
        )
        .map_err(|e| text(StatusCode::FORBIDDEN, e.to_string()))
}

fn store_error(e: &StoreError) -> Response {
    match e {
        StoreError::DigestMismatch { .. } | StoreError::Body { .. } => {
            text(StatusCode::BAD_REQUEST, e.to_string())
        }
        StoreError::NotFound { .. } => text(StatusCode::NOT_FOUND, "not found"),
        _ => {
            tracing::error!("{e}");
            text(StatusCode::SERVICE_UNAVAILABLE, "storage error; retry")
        }
    }
}

async fn graphql(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let access = match authenticate(&st.shared, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let mut req: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return text(StatusCode::BAD_REQUEST, format!("request is not GraphQL JSON: {e}"));
        }
    };
    // The Python public API sends `"operationName": ""` for its single-operation documents.
    if req.operation_name.as_deref() == Some("") {
        req.operation_name = None;
    }
    fill_variable_defaults(&mut req);
    let op = req.operation_name.clone().unwrap_or_default();
    let mut res = st.schema.execute(req.data(access)).await;
    for e in &mut res.errors {
        // The standard wording (graphql-js, W&B), which clients match to detect older servers.
        if let Some(rest) = e.message.strip_prefix("Unknown field ") {
            e.message = format!("Cannot query field {rest}");
        }
        tracing::info!("graphql {op}: {}", e.message);
    }
    axum::Json(res).into_response()
}

/// Puts the document's variable defaults (`$includeAliases: Boolean = true`) into the
/// variables the client left out: the engine does not apply them inside `@include(if:)`, and the
/// SDK relies on them there.
fn fill_variable_defaults(req: &mut async_graphql::Request) {
    let wanted = req.operation_name.clone();
    let Ok(doc) = req.parsed_query() else {
        return; // the engine reports the syntax error
    };
    let defaults: Vec<_> = doc
        .operations
        .iter()
        .filter(|(name, _)| wanted.is_none() || name.map(|n| n.as_str()) == wanted.as_deref())
        .flat_map(|(_, op)| op.node.variable_definitions.iter())
        .filter_map(|v| {
            Some((v.node.name.node.clone(), v.node.default_value.as_ref()?.node.clone()))
        })
        .collect();
    for (name, value) in defaults {
        req.variables.entry(name).or_insert(value);
    }
}

async fn file_stream(
    State(st): State<AppState>,
    Path((entity, project, run)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let access = match authenticate(&st.shared, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if !access.can_write(&entity) {
        return text(
            StatusCode::FORBIDDEN,
            format!("this API key may not write entity {entity:?}"),
        );
    }
    let run = match RunPath::new(&entity, &project, &run) {
        Ok(r) => r,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    // Any answer but 2xx makes wandb-core retry for days, so storage trouble is logged, not
    // returned; the body is kept as sent.
    let finished = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .filter(|v| v.get("complete").and_then(|c| c.as_bool()) == Some(true))
        .map(|v| v.get("exitcode").and_then(|c| c.as_i64()));
    if let Err(e) = st.shared.registry.keep_run_stream(&run, body).await {
        tracing::error!("run {entity}/{project}/{}: file_stream data NOT kept: {e}", run.name);
    }
    if let Some(exit_code) = finished
        && let Err(e) = st.shared.registry.record_run(&run, RunOp::Finished { exit_code }).await
    {
        tracing::error!("run {entity}/{project}/{}: end NOT recorded: {e}", run.name);
    }
    axum::Json(serde_json::json!({})).into_response()
}

fn hex_md5(hex: &str) -> Option<[u8; 16]> {
    let raw = hex::decode(hex).ok()?;
    raw.try_into().ok()
}

fn key_of_hex(hex: &str) -> Option<String> {
    let raw = hex_md5(hex)?;
    use base64::Engine;
    blob_key(&base64::engine::general_purpose::STANDARD.encode(raw))
}

async fn put_blob(
    State(st): State<AppState>,
    Path(hex): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> Response {
    if let Err(r) = check_signature(&st.shared, "PUT", &format!("blob/{hex}"), &q) {
        return r;
    }
    let (Some(want), Some(key)) = (hex_md5(&hex), key_of_hex(&hex)) else {
        return text(StatusCode::BAD_REQUEST, "not an MD5");
    };
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    match st.shared.registry.store().put_verified(&key, stream, want).await {
        Ok(_) => {
            let mut r = StatusCode::OK.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("\"{hex}\"")) {
                r.headers_mut().insert(header::ETAG, v);
            }
            r
        }
        Err(e) => store_error(&e),
    }
}

/// One part of a multipart upload (files of 2 GiB or more), kept until the upload completes.
async fn put_part(
    State(st): State<AppState>,
    Path((upload, n, hex)): Path<(String, u32, String)>,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> Response {
    if let Err(r) = check_signature(&st.shared, "PUT", &format!("part/{upload}/{n}/{hex}"), &q) {
        return r;
    }
    let (Some(want), true) = (hex_md5(&hex), super::schema::valid_upload_id(&upload)) else {
        return text(StatusCode::BAD_REQUEST, "not an upload part");
    };
    let key = super::schema::part_key(&upload, n);
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    match st.shared.registry.store().put_verified(&key, stream, want).await {
        Ok(_) => {
            // wandb-core requires the ETag and hands it back verbatim at completion.
            let mut r = StatusCode::OK.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("\"{hex}\"")) {
                r.headers_mut().insert(header::ETAG, v);
            }
            r
        }
        Err(e) => store_error(&e),
    }
}

/// `bytes=a-b` / `bytes=a-` → the range within `size`, or `Err` for an unsatisfiable one.
fn parse_range(h: &str, size: u64) -> Option<Result<std::ops::Range<u64>, ()>> {
    let spec = h.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let start: u64 = a.trim().parse().ok()?;
    let end = match b.trim() {
        "" => size,
        b => b.parse::<u64>().ok()?.saturating_add(1).min(size),
    };
    Some(if start < end { Ok(start..end) } else { Err(()) })
}

async fn stream_blob(shared: &Shared, key: &str, headers: &HeaderMap) -> Response {
    let store = shared.registry.store();
    let size = match store.head(key).await {
        Ok(Some(s)) => s,
        Ok(None) => return text(StatusCode::NOT_FOUND, "no such file"),
        Err(e) => return store_error(&e),
    };
    let range =
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(|h| parse_range(h, size));
    match range {
        Some(Err(())) => {
            let mut r = text(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable");
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            r
        }
        Some(Ok(range)) => match store.get_range_stream(key, range.clone()).await {
            Ok(s) => Response::builder()
                .status(StatusCode::PARTIAL_CONTENT)
                .header(header::CONTENT_LENGTH, range.end - range.start)
                .header(
                    header::CONTENT_RANGE,
                    format!("bytes {}-{}/{size}", range.start, range.end - 1),
                )
                .header(header::ACCEPT_RANGES, "bytes")
                .body(Body::from_stream(s))
                .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "response")),
            Err(e) => store_error(&e),
        },
        None => match store.get_stream(key).await {
            Ok(s) => Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_LENGTH, size)
                .header(header::ACCEPT_RANGES, "bytes")
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .body(Body::from_stream(s))
                .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "response")),
            Err(e) => store_error(&e),
        },
    }
}

async fn get_blob(
    State(st): State<AppState>,
    Path(hex): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_signature(&st.shared, "GET", &format!("blob/{hex}"), &q) {
        return r;
    }
    let Some(key) = key_of_hex(&hex) else {
        return text(StatusCode::BAD_REQUEST, "not an MD5");
    };
    stream_blob(&st.shared, &key, &headers).await
}

async fn get_manifest(
    State(st): State<AppState>,
    Path(hex): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = check_signature(&st.shared, "GET", &format!("manifest/{hex}"), &q) {
        return r;
    }
    if hex_md5(&hex).is_none() {
        return text(StatusCode::BAD_REQUEST, "not an MD5");
    }
    match st.shared.registry.store().get(&crate::registry::layout::manifest_by_hex(&hex)).await {
        Ok(b) => ([(header::CONTENT_TYPE, "application/json")], b).into_response(),
        Err(e) => store_error(&e),
    }
}

async fn put_draft_manifest(
    State(st): State<AppState>,
    Path(draft): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Err(r) = check_signature(&st.shared, "PUT", &format!("draft/{draft}"), &q) {
        return r;
    }
    let mut manifest = match Manifest::from_json(&body) {
        Ok(m) => m,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("manifest refused: {e}")),
    };
    let reg = &st.shared.registry;
    let d = match reg.draft(&draft).await {
        Ok(Some(d)) => d,
        Ok(None) => return text(StatusCode::NOT_FOUND, "no such pending version"),
        Err(e) => return text(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    // XXH128 entries get the MD5 their blob is stored by (declared in createArtifactFiles).
    let filled = match reg.fill_blob_md5s(&d, &mut manifest).await {
        Ok(()) => reg.set_draft_manifest(&d, &manifest).await,
        Err(e) => Err(e),
    };
    match filled {
        Ok(()) => StatusCode::OK.into_response(),
        Err(crate::registry::RegistryError::Invalid { name, reason }) => {
            text(StatusCode::CONFLICT, format!("{name}: {reason}"))
        }
        Err(e) => {
            tracing::error!("{e}");
            text(StatusCode::SERVICE_UNAVAILABLE, "storage error; retry")
        }
    }
}

async fn put_run_file(
    State(st): State<AppState>,
    Path((entity, project, run, name)): Path<(String, String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let what = format!("run/{entity}/{project}/{run}/{name}");
    if let Err(r) = check_signature(&st.shared, "PUT", &what, &q) {
        return r;
    }
    if crate::manifest::validate_path(&name).is_err() {
        return text(StatusCode::BAD_REQUEST, "invalid file name");
    }
    let run = match RunPath::new(&entity, &project, &run) {
        Ok(r) => r,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    // As for file_stream: a 5xx would make the SDK retry for minutes; failures are logged.
    if let Err(e) = st.shared.registry.keep_run_file(&run, &name, body).await {
        tracing::error!("run {entity}/{project}/{}: file {name} NOT kept: {e}", run.name);
    }
    StatusCode::OK.into_response()
}

/// The SDK's fallback download (`get_entry(…).download()` goes straight here), with Basic auth:
/// `…/{collection}/[{artifactID}/]{birthArtifactID}/{hex md5}/{basename}`.
async fn artifacts_v2(
    State(st): State<AppState>,
    Path((_region, entity, project, collection, rest)): Path<(
        String,
        String,
        String,
        String,
        String,
    )>,
    headers: HeaderMap,
) -> Response {
    let access = match authenticate(&st.shared, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let not_found = || text(StatusCode::NOT_FOUND, "no such artifact file");
    if !access.can_read(&entity) || validate_scope("project", &project).is_err() {
        return not_found();
    }
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.len() < 3 {
        return not_found();
    }
    // The entry's digest: an MD5, or an XXH128 whose blob is named by the entry's `extra.md5`.
    let hex = parts[parts.len() - 2].to_ascii_lowercase();
    let Some(raw) = hex_md5(&hex) else {
        return not_found();
    };
    let Ok(c) = CollectionPath::new(&entity, &project, &collection) else {
        return not_found();
    };
    // Only a file of a live version of this collection (the caller may read) is served.
    let reg = &st.shared.registry;
    let state = match reg.state(&c).await {
        Ok(s) => s,
        Err(e) => return text(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    use base64::Engine;
    let digest = base64::engine::general_purpose::STANDARD.encode(raw);
    let mut manifests: Vec<&String> = state.versions.values().rev().map(|v| &v.manifest).collect();
    manifests.dedup();
    let mut found = None;
    for m in manifests {
        let Ok(bytes) = reg.store().get(m).await else { continue };
        let Ok(manifest) = Manifest::from_json(&bytes) else { continue };
        found = manifest
            .contents
            .values()
            .filter(|e| e.digest == digest)
            .find_map(crate::registry::entry_blob_key);
        if found.is_some() {
            break;
        }
    }
    let Some(key) = found else {
        return not_found();
    };
    stream_blob(&st.shared, &key, &headers).await
}

async fn artifacts_v1(
    State(st): State<AppState>,
    Path((_entity, _hex)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authenticate(&st.shared, &headers).await {
        return r;
    }
    text(StatusCode::NOT_FOUND, "V1-layout downloads are not served; artfs writes V2 manifests")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(Ok(0..10)));
        assert_eq!(parse_range("bytes=90-", 100), Some(Ok(90..100)));
        assert_eq!(parse_range("bytes=90-500", 100), Some(Ok(90..100)));
        assert_eq!(parse_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(parse_range("items=0-1", 100), None);
    }
}
