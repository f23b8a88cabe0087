//! The HTTP side: the router, GraphQL over `POST /graphql`, and the endpoints the SDK calls with
//! URLs or paths instead of GraphQL. Storage URLs carry their own signature (the SDK sends no
//! credentials to them); `/graphql`, `/files/…/file_stream` and `/artifactsV2/…` need an API key.
//! No handler logs a key, a signature or a query string.
//!
//! Every request runs in a `request` span (method, path, GraphQL operation, then status and
//! latency); every error a handler returns is a [`ServeError`], which decides its own answer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use futures::TryStreamExt;
use tower_http::trace::TraceLayer;
use tracing::Span;

use super::auth::{Access, caller};
use super::schema::{self, WandbSchema};
use super::{MAX_GRAPHQL_BYTES, MAX_MANIFEST_BYTES, MAX_RUN_UPLOAD_BYTES, ServeError, Shared};
use crate::manifest::Manifest;
use crate::names::{CollectionPath, validate_scope};
use crate::registry::runs::RunPath;
use crate::registry::{RegistryError, blob_key};

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
        // W&B server's readiness probe, which deployments written for it poll.
        .route("/ready", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(|st: State<AppState>| super::access::metrics(st.shared.observer.clone())),
        )
        .route("/graphql", post(graphql).layer(DefaultBodyLimit::max(MAX_GRAPHQL_BYTES)))
        .route(
            "/files/{entity}/{project}/{run}/file_stream",
            post(file_stream).layer(DefaultBodyLimit::max(MAX_RUN_UPLOAD_BYTES)),
        )
        .route("/storage/blob/{hex}", put(put_blob).get(get_blob))
        .route("/storage/manifest/{hex}", get(get_manifest))
        // What `blob_url` and `manifest_url` hand out (the two above stay for URLs handed out
        // before, which live for --url-ttl).
        .route("/storage/wandb_artifacts/{hex}", get(get_blob))
        .route("/storage/manifest/{hex}/wandb_manifest.json", get(get_manifest))
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
        .fallback(super::web::fallback)
        .layer(axum::middleware::map_response(super::web::security_headers))
        .layer(
            // The span gives what a handler logs its request's context; the request's own line
            // is the access log's (`access.rs`), written when its body has been sent.
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(|res: &Response, latency: Duration, span: &Span| {
                    span.record("status", res.status().as_u16());
                    span.record("latency", tracing::field::debug(latency));
                })
                // The error itself is logged where it is answered (`ServeError`).
                .on_failure(()),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.shared.observer.clone(),
            super::access::track,
        ))
        .with_state(state)
}

/// The span of one request: the path only, never the query string (it carries URL signatures).
fn request_span(req: &Request) -> Span {
    tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        op = tracing::field::Empty,
        status = tracing::field::Empty,
        latency = tracing::field::Empty,
    )
}

/// The caller's access, or the `401` (or `503`) to send.
async fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<Access, ServeError> {
    let access = caller(shared, headers)
        .await
        .map_err(ServeError::KeyCheck)?
        .ok_or(ServeError::Unauthenticated)?;
    super::access::note_user(&access.user);
    Ok(access)
}

fn check_signature(
    shared: &Shared,
    method: &str,
    what: &str,
    q: &HashMap<String, String>,
) -> Result<(), ServeError> {
    Ok(shared.signer.verify(
        method,
        what,
        q.get("expires").map(String::as_str),
        q.get("sig").map(String::as_str),
    )?)
}

async fn graphql(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ServeError> {
    let access = authenticate(&st.shared, &headers).await?;
    let mut req: async_graphql::Request = serde_json::from_slice(&body)
        .map_err(|e| ServeError::Invalid(format!("request is not GraphQL JSON: {e}")))?;
    // The Python public API sends `"operationName": ""` for its single-operation documents.
    if req.operation_name.as_deref() == Some("") {
        req.operation_name = None;
    }
    let op = req.operation_name.clone().unwrap_or_default();
    if !op.is_empty() {
        Span::current().record("op", tracing::field::display(&op));
        super::access::note_op(&op);
    }
    let mut res = match schema::limits::check(&mut req) {
        Ok(()) => {
            fill_variable_defaults(&mut req);
            st.schema.execute(req.data(access)).await
        }
        Err(e) => async_graphql::Response::from_errors(vec![async_graphql::ServerError::new(
            e.to_string(),
            None,
        )]),
    };
    if !res.errors.is_empty() {
        super::access::note_graphql_errors();
    }
    for e in &mut res.errors {
        // The standard wording (graphql-js, W&B), which clients match to detect older servers.
        if let Some(rest) = e.message.strip_prefix("Unknown field ") {
            e.message = format!("Cannot query field {rest}");
        }
        // Resolvers' errors carry their code (`ServeError`); the others are the engine's
        // refusals of the document itself.
        let ext = e.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            ext.set("code", super::error::Kind::Invalid.code());
        }
        tracing::info!("graphql {op}: {}", e.message);
    }
    Ok(axum::Json(res).into_response())
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
) -> Result<Response, ServeError> {
    let access = authenticate(&st.shared, &headers).await?;
    if !access.can_write(&entity) {
        return Err(ServeError::Forbidden(format!("this API key may not write entity {entity:?}")));
    }
    let run = RunPath::new(&entity, &project, &run)?;
    // Any answer but 2xx makes wandb-core retry for days, so storage trouble is logged, not
    // returned; the body is kept as sent.
    if let Err(e) = st.shared.registry.record_stream(&run, body).await {
        tracing::error!("run {entity}/{project}/{}: file_stream data NOT kept: {e}", run.name);
    }
    Ok(axum::Json(serde_json::json!({})).into_response())
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

fn not_an_md5() -> ServeError {
    ServeError::Invalid("not an MD5".into())
}

/// Stores an upload under `key` if its bytes hash to `want`; answers with the ETag
/// (`"<hex md5>"`) that wandb-core requires of a part and hands back verbatim at completion.
async fn put_verified(
    shared: &Shared,
    key: &str,
    hex: &str,
    want: [u8; 16],
    body: Body,
) -> Result<Response, ServeError> {
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    shared.registry.store().put_verified(key, stream, want).await?;
    Ok([(header::ETAG, format!("\"{hex}\""))].into_response())
}

async fn put_blob(
    State(st): State<AppState>,
    Path(hex): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> Result<Response, ServeError> {
    check_signature(&st.shared, "PUT", &format!("blob/{hex}"), &q)?;
    let (Some(want), Some(key)) = (hex_md5(&hex), key_of_hex(&hex)) else {
        return Err(not_an_md5());
    };
    put_verified(&st.shared, &key, &hex, want, body).await
}

/// One part of a multipart upload (files of 2 GiB or more), kept until the upload completes.
async fn put_part(
    State(st): State<AppState>,
    Path((upload, n, hex)): Path<(String, u32, String)>,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> Result<Response, ServeError> {
    check_signature(&st.shared, "PUT", &format!("part/{upload}/{n}/{hex}"), &q)?;
    let (Some(want), true) = (hex_md5(&hex), super::schema::valid_upload_id(&upload)) else {
        return Err(ServeError::Invalid("not an upload part".into()));
    };
    put_verified(&st.shared, &super::schema::part_key(&upload, n), &hex, want, body).await
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

async fn stream_blob(
    shared: &Shared,
    key: &str,
    headers: &HeaderMap,
) -> Result<Response, ServeError> {
    let store = shared.registry.store();
    let Some(size) = store.head(key).await? else {
        return Err(ServeError::NotFound("no such file".into()));
    };
    let range =
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(|h| parse_range(h, size));
    Ok(match range {
        Some(Err(())) => return Err(ServeError::Range { size }),
        Some(Ok(range)) => {
            let s = store.get_range_stream(key, range.clone()).await?;
            let headers = [
                (header::CONTENT_LENGTH, (range.end - range.start).to_string()),
                (header::CONTENT_RANGE, format!("bytes {}-{}/{size}", range.start, range.end - 1)),
                (header::ACCEPT_RANGES, "bytes".into()),
            ];
            super::error::partial_content(headers, Body::from_stream(s))
        }
        None => {
            let s = store.get_stream(key).await?;
            let headers = [
                (header::CONTENT_LENGTH, size.to_string()),
                (header::ACCEPT_RANGES, "bytes".into()),
                (header::CONTENT_TYPE, "application/octet-stream".into()),
            ];
            (headers, Body::from_stream(s)).into_response()
        }
    })
}

async fn get_blob(
    State(st): State<AppState>,
    Path(hex): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ServeError> {
    check_signature(&st.shared, "GET", &format!("blob/{hex}"), &q)?;
    let key = key_of_hex(&hex).ok_or_else(not_an_md5)?;
    stream_blob(&st.shared, &key, &headers).await
}

async fn get_manifest(
    State(st): State<AppState>,
    Path(hex): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ServeError> {
    check_signature(&st.shared, "GET", &format!("manifest/{hex}"), &q)?;
    hex_md5(&hex).ok_or_else(not_an_md5)?;
    let b = st.shared.registry.store().get(&crate::registry::layout::manifest_by_hex(&hex)).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], b).into_response())
}

async fn put_draft_manifest(
    State(st): State<AppState>,
    Path(draft): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<(), ServeError> {
    check_signature(&st.shared, "PUT", &format!("draft/{draft}"), &q)?;
    let mut manifest = Manifest::from_json(&body)
        .map_err(|e| ServeError::Invalid(format!("manifest refused: {e}")))?;
    let reg = &st.shared.registry;
    let d = reg
        .draft(&draft)
        .await?
        .ok_or_else(|| ServeError::NotFound("no such pending version".into()))?;
    // XXH128 entries get the MD5 their blob is stored by (declared in createArtifactFiles).
    reg.fill_blob_md5s(&d, &mut manifest).await?;
    Ok(reg.set_draft_manifest(&d, &manifest).await?)
}

async fn put_run_file(
    State(st): State<AppState>,
    Path((entity, project, run, name)): Path<(String, String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<(), ServeError> {
    let what = format!("run/{entity}/{project}/{run}/{name}");
    check_signature(&st.shared, "PUT", &what, &q)?;
    if crate::manifest::validate_path(&name).is_err() {
        return Err(ServeError::Invalid("invalid file name".into()));
    }
    let run = RunPath::new(&entity, &project, &run)?;
    // As for file_stream: a 5xx would make the SDK retry for minutes; failures are logged.
    if let Err(e) = st.shared.registry.keep_run_file(&run, &name, body).await {
        tracing::error!("run {entity}/{project}/{}: file {name} NOT kept: {e}", run.name);
    }
    Ok(())
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
) -> Result<Response, ServeError> {
    let access = authenticate(&st.shared, &headers).await?;
    let key = artifact_file_key(&st.shared, &access, &entity, &project, &collection, &rest)
        .await?
        .ok_or_else(|| ServeError::NotFound("no such artifact file".into()))?;
    stream_blob(&st.shared, &key, &headers).await
}

/// The blob key of the file `rest` names in `collection`, if the caller may read it and a live
/// version of the collection holds it. The entry's digest is an MD5, or an XXH128 whose blob is
/// named by the entry's `extra.md5`.
async fn artifact_file_key(
    shared: &Shared,
    access: &Access,
    entity: &str,
    project: &str,
    collection: &str,
    rest: &str,
) -> Result<Option<String>, RegistryError> {
    if !access.can_read(entity) || validate_scope("project", project).is_err() {
        return Ok(None);
    }
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.len() < 3 {
        return Ok(None);
    }
    let hex = parts[parts.len() - 2].to_ascii_lowercase();
    let (Some(raw), Ok(c)) = (hex_md5(&hex), CollectionPath::new(entity, project, collection))
    else {
        return Ok(None);
    };
    let reg = &shared.registry;
    // Expired versions and renamed-away or deleted collections hold no files.
    let state = reg.live_state(&c).await?;
    if !state.exists() {
        return Ok(None);
    }
    use base64::Engine;
    let digest = base64::engine::general_purpose::STANDARD.encode(raw);
    let mut manifests: Vec<&String> = state.versions.values().rev().map(|v| &v.manifest).collect();
    manifests.dedup();
    for m in manifests {
        let Ok(bytes) = reg.store().get(m).await else { continue };
        let Ok(manifest) = Manifest::from_json(&bytes) else { continue };
        let found = manifest
            .contents
            .values()
            .filter(|e| e.digest == digest)
            .find_map(crate::registry::entry_blob_key);
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

async fn artifacts_v1(
    State(st): State<AppState>,
    Path((_entity, _hex)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ServeError> {
    authenticate(&st.shared, &headers).await?;
    Err(ServeError::NotFound(
        "V1-layout downloads are not served; artfs writes V2 manifests".into(),
    ))
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
