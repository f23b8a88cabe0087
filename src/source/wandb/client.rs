//! The wire: GraphQL POSTs to `{base}/graphql` with the API key, and GETs of the file and
//! manifest URLs the server hands out, without it. Both under the one HTTP policy (`crate::http`):
//! timeouts, bounded jittered retries of 429/5xx and transport failures.
//!
//! Credentials go to the base URL's `/graphql` only: file URLs are presigned (or on another
//! host), and the SDK sends them nothing either. Redirects of GraphQL requests are not followed,
//! so the `Authorization` header cannot travel on.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::OnceCell;
use url::Url;

use super::WandbError;
use super::auth::ApiKey;
use crate::http::StallBound;
use crate::http::{Attempt, NetConfig, Try, retryable_status};

/// Longest server error text quoted in a message.
const QUOTED_BODY_CHARS: usize = 300;

/// The largest GraphQL answer read: the SDK's pages are kilobytes; an endless answer must not
/// grow memory without bound.
pub const MAX_ANSWER_BYTES: u64 = 64 << 20;

/// The largest manifest read: as large as `artfs serve` accepts one (a million entries fit).
pub const MAX_MANIFEST_BYTES: u64 = 512 << 20;

/// One W&B server: its base URL, the key, pooled connections and the features it announced.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    base: Url,
    graphql: Url,
    key: Option<ApiKey>,
    net: NetConfig,
    /// GraphQL: no redirects (the key must not follow one).
    api: reqwest::Client,
    /// File and manifest URLs: redirects followed (storage often answers with one), no key.
    files: reqwest::Client,
    features: OnceCell<HashSet<String>>,
}

impl Client {
    pub fn new(base: Url, key: Option<ApiKey>, net: NetConfig) -> Result<Client, WandbError> {
        let build = |b: reqwest::ClientBuilder| {
            b.build()
                .map_err(|e| WandbError::Setup { base: base.to_string(), reason: e.to_string() })
        };
        let api = build(net.client_builder().redirect(reqwest::redirect::Policy::none()))?;
        let files = build(net.client_builder())?;
        let graphql = base
            .join("graphql")
            .map_err(|e| WandbError::Setup { base: base.to_string(), reason: e.to_string() })?;
        Ok(Client {
            inner: Arc::new(Inner {
                base,
                graphql,
                key,
                net,
                api,
                files,
                features: OnceCell::new(),
            }),
        })
    }

    pub fn base(&self) -> &Url {
        &self.inner.base
    }

    /// Runs one GraphQL operation and returns its `data`. GraphQL errors are errors; 429 and 5xx
    /// are retried within the policy.
    pub async fn graphql(
        &self,
        operation: &'static str,
        document: &str,
        variables: Value,
    ) -> Result<Value, WandbError> {
        let mut body = json!({"operationName": operation, "query": document});
        if !variables.as_object().is_none_or(|v| v.is_empty()) {
            body["variables"] = variables;
        }
        let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        let url = self.inner.graphql.as_str();
        let what = format!("{operation} (POST {url})");
        let mut last: Option<Try> = None;
        let resp = self
            .inner
            .net
            .retrying(&what, |t| {
                last = Some(t);
                let mut req = self
                    .inner
                    .api
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body.clone());
                if let Some(key) = &self.inner.key {
                    req = req.header("authorization", key.authorization());
                }
                let what = &what;
                async move {
                    match req.send().await {
                        Ok(resp) if retryable_status(resp.status().as_u16()) => Attempt::Retry {
                            reason: format!("HTTP {}", resp.status().as_u16()),
                            result: Ok(resp),
                        },
                        Ok(resp) => Attempt::Done(Ok(resp)),
                        Err(e) => unreachable(what, t, e),
                    }
                }
            })
            .await?;
        let attempts = last.map_or(1, |t| t.number);
        let status = resp.status().as_u16();
        let text = self.read_body(&what, resp, MAX_ANSWER_BYTES).await?;
        if status == 401 || status == 403 {
            return Err(WandbError::Unauthorized {
                base: self.inner.base.to_string(),
                status,
                has_key: self.inner.key.is_some(),
            });
        }
        if !(200..300).contains(&status) {
            return Err(WandbError::Status {
                what: format!("{operation} (POST {url})"),
                status,
                attempts,
                body: quote(&text),
            });
        }
        let answer: Value = serde_json::from_slice(&text).map_err(|e| WandbError::Answer {
            operation,
            reason: format!("not JSON ({e}): {}", quote(&text)),
        })?;
        if let Some(errors) = answer.get("errors").and_then(Value::as_array)
            && !errors.is_empty()
        {
            let messages: Vec<String> = errors
                .iter()
                .map(|e| e.get("message").and_then(Value::as_str).unwrap_or("?").to_owned())
                .collect();
            return Err(WandbError::GraphQl { operation, message: messages.join("; ") });
        }
        Ok(answer.get("data").cloned().unwrap_or(Value::Null))
    }

    /// A whole response body in memory: no longer than `limit`, and under the same rule as every
    /// other download (no silence past the read timeout, no drip slower than the minimum rate).
    pub async fn read_body(
        &self,
        what: &str,
        resp: reqwest::Response,
        limit: u64,
    ) -> Result<Bytes, WandbError> {
        let bound = StallBound::new(self.inner.net.read_timeout);
        let mut bounded = bound.body(limit);
        let mut stream = resp.bytes_stream();
        let mut out = bytes::BytesMut::new();
        loop {
            match bounded.next(&mut stream).await {
                Ok(Some(Ok(piece))) => out.extend_from_slice(&piece),
                Ok(None) => return Ok(out.freeze()),
                Ok(Some(Err(source))) => return Err(WandbError::body(what.to_owned(), source)),
                Err(source) => return Err(WandbError::Body { what: what.to_owned(), source }),
            }
        }
    }

    /// The server's enabled features (`ServerFeaturesQuery`), asked once. A server that does not
    /// know the field, or answers `serverInfo: null`, has none, as the SDK treats it.
    pub async fn features(&self) -> Result<&HashSet<String>, WandbError> {
        self.inner
            .features
            .get_or_try_init(|| async {
                let doc = super::queries::SERVER_FEATURES;
                match self.graphql("ServerFeaturesQuery", doc, json!({})).await {
                    Ok(data) => Ok(data
                        .pointer("/serverInfo/features")
                        .and_then(Value::as_array)
                        .map(|fs| {
                            fs.iter()
                                .filter(|f| f.get("isEnabled") == Some(&Value::Bool(true)))
                                .filter_map(|f| f.get("name")?.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default()),
                    Err(WandbError::GraphQl { message, .. }) => {
                        tracing::debug!(%message, "server has no features field; assuming none");
                        Ok(HashSet::new())
                    }
                    Err(e) => Err(e),
                }
            })
            .await
    }

    pub async fn has_feature(&self, name: &str) -> Result<bool, WandbError> {
        Ok(self.features().await?.contains(name))
    }

    /// GET of a file or manifest URL (optionally a range), without credentials. 429 and 5xx are
    /// retried; any other non-success status is returned as [`WandbError::FileStatus`] so the
    /// caller can refresh an expired URL (401/403).
    pub async fn get_file(
        &self,
        what: &str,
        url: &str,
        range: Option<Range<u64>>,
    ) -> Result<reqwest::Response, WandbError> {
        let parsed = Url::parse(url)
            .map_err(|e| WandbError::BadUrl { what: what.to_owned(), reason: e.to_string() })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(WandbError::BadUrl {
                what: what.to_owned(),
                reason: format!("scheme {} is not http(s)", parsed.scheme()),
            });
        }
        let label = format!("{what} (GET)");
        self.inner
            .net
            .retrying(&label, |t| {
                let mut req = self.inner.files.get(parsed.clone());
                if let Some(r) = &range {
                    let header = format!("bytes={}-{}", r.start, r.end.saturating_sub(1));
                    req = req.header("range", header);
                }
                let (label, ranged) = (&label, range.is_some());
                async move {
                    match req.send().await {
                        Ok(resp) => {
                            let status = resp.status().as_u16();
                            let ok = match ranged {
                                true => status == 206,
                                false => (200..300).contains(&status),
                            };
                            if ok {
                                return Attempt::Done(Ok(resp));
                            }
                            let failure =
                                WandbError::FileStatus { what: what.to_owned(), status, ranged };
                            if !retryable_status(status) {
                                return Attempt::Done(Err(failure));
                            }
                            // Out of retries, a throttled or failing file server is reported
                            // as the status it kept answering.
                            let given_up = WandbError::Status {
                                what: label.clone(),
                                status,
                                attempts: t.number,
                                body: String::new(),
                            };
                            Attempt::Retry { reason: failure.to_string(), result: Err(given_up) }
                        }
                        Err(e) => unreachable(label, t, e),
                    }
                }
            })
            .await
    }
}

/// A transport failure of attempt `t`: asked again while the retry budget lasts.
fn unreachable<T>(what: &str, t: Try, e: reqwest::Error) -> Attempt<T, WandbError> {
    let failure = WandbError::Unreachable {
        what: what.to_owned(),
        attempts: t.number,
        elapsed: t.elapsed(),
        source: e,
    };
    Attempt::Retry { reason: failure.to_string(), result: Err(failure) }
}

/// The start of a server's answer, for a message: printable and bounded.
fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text: String = text.chars().take(QUOTED_BODY_CHARS).collect();
    crate::terminal::printable(text.trim()).into_owned()
}
