//! What operators see of each request: one access-log line (text through `tracing`, target
//! `artfs::access`, or one JSON object per line on stderr) and the Prometheus counters behind
//! `GET /metrics`. Both are written when the response body has been sent (or dropped), so bytes
//! and duration are those of the whole transfer.
//!
//! A line names the method, the path without its query (which holds URL signatures), the GraphQL
//! operation, status, bytes and the key's user, never a key. Handlers tell the middleware who
//! the user is and which operation ran through a task-local note ([`note_user`], [`note_op`]),
//! so no handler signature changes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// How requests are logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccessLog {
    Off,
    /// One `tracing` line per request (target `artfs::access`, level info).
    #[default]
    Text,
    /// One JSON object per request and line on stderr, for log shippers.
    Json,
}

#[derive(Debug, thiserror::Error)]
#[error("--access-log {0:?}: expected on, off or json")]
pub struct AccessLogError(String);

impl std::str::FromStr for AccessLog {
    type Err = AccessLogError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(AccessLog::Off),
            "on" | "text" => Ok(AccessLog::Text),
            "json" => Ok(AccessLog::Json),
            other => Err(AccessLogError(other.to_owned())),
        }
    }
}

/// Upper bounds (seconds) of the latency histogram's buckets: from a cached GraphQL answer to a
/// large blob.
const LATENCY_BUCKETS_SECS: [f64; 12] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 300.0];

/// What one request leaves in the counters, keyed by `(route, method, status)`.
#[derive(Debug, Default)]
struct Counters {
    requests: BTreeMap<(&'static str, String, u16), u64>,
    /// 5xx answers and GraphQL answers carrying errors, by route.
    errors: BTreeMap<&'static str, u64>,
    bytes_in: u64,
    bytes_out: u64,
    /// Per route: counts per bucket (the last one is `+Inf`), sum of seconds, count.
    latency: BTreeMap<&'static str, ([u64; LATENCY_BUCKETS_SECS.len() + 1], f64, u64)>,
}

/// The access log's mode and the metrics, shared by every request.
#[derive(Debug, Default)]
pub struct Observer {
    pub log: AccessLog,
    counters: Mutex<Counters>,
}

/// What handlers add to a request's log line.
#[derive(Debug, Default, Clone)]
struct Note {
    user: Option<String>,
    op: Option<String>,
    graphql_errors: bool,
}

tokio::task_local! {
    static NOTE: Arc<Mutex<Note>>;
}

fn with_note(f: impl FnOnce(&mut Note)) {
    let _ = NOTE.try_with(|n| {
        if let Ok(mut n) = n.lock() {
            f(&mut n);
        }
    });
}

/// The user whose key the request carried.
pub fn note_user(user: &str) {
    with_note(|n| n.user = Some(user.to_owned()));
}

/// The GraphQL operation the request ran.
pub fn note_op(op: &str) {
    with_note(|n| n.op = Some(op.to_owned()));
}

/// The GraphQL answer carries errors (its HTTP status is still 200).
pub fn note_graphql_errors() {
    with_note(|n| n.graphql_errors = true);
}

/// The route a path belongs to, for metric labels: few and fixed, whatever clients send.
fn route_of(path: &str) -> &'static str {
    let mut segs = path.trim_start_matches('/').split('/');
    match (segs.next().unwrap_or(""), segs.next()) {
        ("graphql", None) => "/graphql",
        ("files", _) => "/files/file_stream",
        ("storage", Some("blob" | "wandb_artifacts")) => "/storage/blob",
        ("storage", Some("manifest")) => "/storage/manifest",
        ("storage", Some("part")) => "/storage/part",
        ("storage", Some("draft")) => "/storage/draft",
        ("storage", Some("run")) => "/storage/run",
        ("artifactsV2", _) => "/artifactsV2",
        ("artifacts", _) => "/artifacts",
        ("ui", _) => "/ui",
        ("healthz", None) => "/healthz",
        ("ready", None) => "/ready",
        ("metrics", None) => "/metrics",
        _ => "other",
    }
}

/// One request as it is logged and counted.
#[derive(Debug)]
struct Entry {
    observer: Arc<Observer>,
    method: String,
    path: String,
    route: &'static str,
    status: u16,
    bytes_in: u64,
    bytes_out: u64,
    started: Instant,
    note: Arc<Mutex<Note>>,
}

/// The middleware: runs the request with a fresh note, then hands the response body to a
/// counter that logs when the body is done.
pub async fn track(State(observer): State<Arc<Observer>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let bytes_in = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    let note = Arc::new(Mutex::new(Note::default()));
    let res = NOTE.scope(note.clone(), next.run(req)).await;
    let (parts, body) = res.into_parts();
    let entry = Entry {
        observer,
        method,
        route: route_of(&path),
        path,
        status: parts.status.as_u16(),
        bytes_in,
        bytes_out: 0,
        started,
        note,
    };
    Response::from_parts(parts, Body::new(Counted { inner: body, entry: Some(entry) }))
}

/// A response body that counts what it yields and logs its request when dropped.
struct Counted {
    inner: Body,
    entry: Option<Entry>,
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let (Some(data), Some(entry)) = (frame.data_ref(), self.entry.as_mut())
        {
            entry.bytes_out += data.len() as u64;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            entry.finish();
        }
    }
}

impl Entry {
    fn finish(self) {
        let elapsed = self.started.elapsed();
        let note = self.note.lock().map(|n| n.clone()).unwrap_or_default();
        let error = self.status >= 500 || note.graphql_errors;
        self.observer.count(&self, elapsed, error);
        match self.observer.log {
            AccessLog::Off => {}
            AccessLog::Text => self.log_text(&note, elapsed),
            AccessLog::Json => self.log_json(&note, elapsed),
        }
    }

    fn log_text(&self, note: &Note, elapsed: Duration) {
        let op = note.op.as_deref().map(|o| format!(" op={o}")).unwrap_or_default();
        tracing::info!(
            target: "artfs::access",
            "{} {}{op} {} in={} out={} {:.1}ms user={}",
            self.method,
            self.path,
            self.status,
            self.bytes_in,
            self.bytes_out,
            elapsed.as_secs_f64() * 1e3,
            note.user.as_deref().unwrap_or("-"),
        );
    }

    fn log_json(&self, note: &Note, elapsed: Duration) {
        let line = serde_json::json!({
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "method": self.method,
            "path": self.path,
            "op": note.op,
            "status": self.status,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "duration_ms": (elapsed.as_secs_f64() * 1e6).round() / 1e3,
            "user": note.user,
        });
        eprintln!("{line}");
    }
}

impl Observer {
    pub fn new(log: AccessLog) -> Observer {
        Observer { log, counters: Mutex::default() }
    }

    fn count(&self, e: &Entry, elapsed: Duration, error: bool) {
        let Ok(mut c) = self.counters.lock() else { return };
        *c.requests.entry((e.route, e.method.clone(), e.status)).or_default() += 1;
        if error {
            *c.errors.entry(e.route).or_default() += 1;
        }
        c.bytes_in += e.bytes_in;
        c.bytes_out += e.bytes_out;
        let secs = elapsed.as_secs_f64();
        let (buckets, sum, count) = c.latency.entry(e.route).or_default();
        let i = LATENCY_BUCKETS_SECS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS_SECS.len());
        buckets[i] += 1;
        *sum += secs;
        *count += 1;
    }

    /// The counters in Prometheus' text format (version 0.0.4).
    pub fn render(&self) -> String {
        let Ok(c) = self.counters.lock() else { return String::new() };
        let mut out = String::new();
        let name = "artfs_serve_requests_total";
        head(&mut out, name, "counter", "Requests answered, by route, method and status.");
        for ((route, method, status), n) in &c.requests {
            let labels = format!("route=\"{route}\",method=\"{method}\",status=\"{status}\"");
            let _ = writeln!(out, "{name}{{{labels}}} {n}");
        }
        let name = "artfs_serve_errors_total";
        head(&mut out, name, "counter", "5xx answers and GraphQL answers with errors, by route.");
        for (route, n) in &c.errors {
            let _ = writeln!(out, "{name}{{route=\"{route}\"}} {n}");
        }
        let name = "artfs_serve_received_bytes_total";
        head(&mut out, name, "counter", "Request body bytes (as their Content-Length says).");
        let _ = writeln!(out, "{name} {}", c.bytes_in);
        let name = "artfs_serve_sent_bytes_total";
        head(&mut out, name, "counter", "Response body bytes sent.");
        let _ = writeln!(out, "{name} {}", c.bytes_out);
        render_latency(&mut out, &c);
        out
    }
}

/// The `# HELP` and `# TYPE` lines of one metric (also the mount daemon's, `fs::metrics`).
pub(crate) fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn render_latency(out: &mut String, c: &Counters) {
    let name = "artfs_serve_request_duration_seconds";
    let help = "Time from the request to the end of its response body, by route.";
    head(out, name, "histogram", help);
    for (route, (buckets, sum, count)) in &c.latency {
        let mut cumulative = 0;
        for (i, n) in buckets.iter().enumerate() {
            cumulative += n;
            let le = LATENCY_BUCKETS_SECS.get(i).map_or("+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_sum{{route=\"{route}\"}} {sum}");
        let _ = writeln!(out, "{name}_count{{route=\"{route}\"}} {count}");
    }
}

/// Prometheus' text format, as `/metrics` answers (the server's and the mount daemon's).
pub(crate) const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`.
pub async fn metrics(observer: Arc<Observer>) -> Response {
    let mut res = observer.render().into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_few_whatever_the_path() {
        assert_eq!(route_of("/graphql"), "/graphql");
        assert_eq!(route_of("/storage/wandb_artifacts/abc"), "/storage/blob");
        assert_eq!(route_of("/files/a/b/c/file_stream"), "/files/file_stream");
        assert_eq!(route_of("/anything/else"), "other");
        assert_eq!("json".parse::<AccessLog>().unwrap(), AccessLog::Json);
        assert!("loud".parse::<AccessLog>().is_err());
    }
}
