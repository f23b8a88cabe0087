//! Errors of `artfs serve`, and the one place that decides what a client is told for each: the
//! HTTP status and body of the plain endpoints, and the `extensions.code` of a GraphQL error.
//!
//! Both come from one exhaustive `match` without a catch-all ([`ServeError::kind`]), so HTTP and
//! GraphQL cannot disagree about an error, and a new variant (here or in the registry's or the
//! store's error) cannot reach a client before someone chooses its kind. The wording of every
//! message is what the `wandb` SDK and browsers have always been shown; some of it is parsed.

use async_graphql::ErrorExtensions;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, IntoResponseParts, Response};

use super::auth::SignatureError;
use crate::manifest::ManifestError;
use crate::names::NameError;
use crate::registry::RegistryError;
use crate::source::SourceError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot serve on {addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot use TLS certificate {cert} with key {key}: {source}")]
    Tls {
        cert: String,
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no such endpoint")]
    NoEndpoint,
    /// An API request without a valid key.
    #[error("unauthorized: send a valid API key")]
    Unauthenticated,
    /// A web page without a valid key: the browser is asked for one.
    #[error(
        "unauthorized: sign in with any user name and an API key (`artfs key create`) as the password"
    )]
    SignIn,
    #[error("cannot check API keys right now; retry")]
    KeyCheck(#[source] RegistryError),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("range not satisfiable")]
    Range { size: u64 },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A manifest the registry holds does not parse.
    #[error(transparent)]
    StoredManifest(ManifestError),
    /// A web page that cannot be drawn: the words are for a person, the cause goes to the log.
    #[error("the registry cannot be read right now; retry")]
    Page(#[source] SourceError),
    #[error("{0}")]
    Internal(String),
}

/// What kind of failure an error is: the HTTP status and the GraphQL code both follow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    NotFound,
    Unauthenticated,
    Forbidden,
    Invalid,
    /// A `Range` outside the file (HTTP only; `INVALID` in GraphQL terms).
    Unsatisfiable,
    Conflict,
    Unavailable,
    Internal,
}

impl Kind {
    pub fn status(self) -> StatusCode {
        match self {
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::Unauthenticated => StatusCode::UNAUTHORIZED,
            Kind::Forbidden => StatusCode::FORBIDDEN,
            Kind::Invalid => StatusCode::BAD_REQUEST,
            Kind::Unsatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
            Kind::Conflict => StatusCode::CONFLICT,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The GraphQL error's `extensions.code`.
    pub fn code(self) -> &'static str {
        match self {
            Kind::NotFound => "NOT_FOUND",
            Kind::Unauthenticated => "UNAUTHENTICATED",
            Kind::Forbidden => "FORBIDDEN",
            Kind::Invalid | Kind::Unsatisfiable => "INVALID",
            Kind::Conflict => "CONFLICT",
            Kind::Unavailable => "UNAVAILABLE",
            Kind::Internal => "INTERNAL",
        }
    }

    /// Whether this is the caller's doing (an answer, not a failure of the server worth a log
    /// line): everything but `Unavailable` and `Internal`.
    pub fn is_expected(self) -> bool {
        !matches!(self, Kind::Unavailable | Kind::Internal)
    }
}

impl ServeError {
    /// A web page that cannot be drawn because what it reads failed.
    pub fn page(e: impl Into<SourceError>) -> ServeError {
        ServeError::Page(e.into())
    }

    pub fn kind(&self) -> Kind {
        match self {
            // What the request names does not exist, or the caller may not see it (another
            // entity's things look absent, as in W&B).
            ServeError::NoEndpoint
            | ServeError::NotFound(_)
            | ServeError::Store(StoreError::NotFound { .. })
            | ServeError::Registry(
                RegistryError::UnknownArtifact { .. }
                | RegistryError::UnknownVersion { .. }
                | RegistryError::UnknownAlias { .. },
            ) => Kind::NotFound,
            // No key, or not a valid one: the client is asked for one.
            ServeError::Unauthenticated | ServeError::SignIn => Kind::Unauthenticated,
            // A known caller without the right: a read-only key, another entity, a signed URL
            // that does not match, or has expired (asking again for a new one is the fix).
            ServeError::Forbidden(_) | ServeError::Signature(_) => Kind::Forbidden,
            // The request itself is malformed: a name, a digest, JSON, a manifest, or uploaded
            // bytes that are not what was declared (or broke off). Sending it again cannot help.
            ServeError::Invalid(_)
            | ServeError::Name(_)
            | ServeError::Registry(RegistryError::Name(_))
            | ServeError::Store(StoreError::DigestMismatch { .. } | StoreError::Body { .. }) => {
                Kind::Invalid
            }
            ServeError::Range { .. } => Kind::Unsatisfiable,
            // Well-formed, but it does not fit what the registry holds: another type, aliases in
            // the way, a manifest that disagrees with the stored blobs, a commit the log refuses.
            ServeError::Registry(
                RegistryError::TypeMismatch { .. }
                | RegistryError::HasAliases { .. }
                | RegistryError::Invalid { .. }
                | RegistryError::Disappeared { .. }
                | RegistryError::Refused { .. },
            ) => Kind::Conflict,
            // The registry cannot answer right now: storage unreachable or failing, another
            // writer or gc in the way, an object it holds unreadable. The SDK retries a 503; the
            // log says what broke.
            ServeError::KeyCheck(_)
            | ServeError::Page(_)
            | ServeError::StoredManifest(_)
            | ServeError::Registry(
                RegistryError::Store(_)
                | RegistryError::Corrupt { .. }
                | RegistryError::Manifest { .. }
                | RegistryError::Contention { .. }
                | RegistryError::GcRunning { .. }
                | RegistryError::LeaseLapsedDuringGc { .. }
                | RegistryError::WritersLogging { .. }
                | RegistryError::GroupFinishing { .. }
                | RegistryError::NoRandomness(_)
                | RegistryError::Unsafe(_),
            )
            | ServeError::Store(
                StoreError::Backend { .. }
                | StoreError::NoBucket { .. }
                | StoreError::Refused { .. }
                | StoreError::Open { .. }
                | StoreError::LocalRead { .. }
                | StoreError::ChangedDuringUpload { .. }
                | StoreError::Cancelled { .. }
                | StoreError::LocalWrite { .. }
                | StoreError::Cloud(_),
            ) => Kind::Unavailable,
            // The server itself: it cannot start, or a task of it failed.
            ServeError::Io { .. } | ServeError::Tls { .. } | ServeError::Internal(_) => {
                Kind::Internal
            }
        }
    }

    /// What an HTTP client reads: the message, except that the registry's own words for a
    /// failure on the server's side (they name buckets and keys) stay in the log.
    fn body(&self) -> String {
        match self {
            ServeError::Store(StoreError::NotFound { .. }) => "not found".into(),
            ServeError::Store(_) | ServeError::Registry(_) if !self.kind().is_expected() => {
                "storage error; retry".into()
            }
            _ => self.to_string(),
        }
    }

    fn log(&self) {
        match self {
            ServeError::KeyCheck(e) => tracing::error!("cannot check an API key: {e}"),
            ServeError::Page(e) => tracing::error!("web page: {e}"),
            e => tracing::error!("{e}"),
        }
    }
}

/// A ranged read's answer. Not an error, but the one status besides 200 the server sends on
/// success: deciding it here too keeps every status choice in this file.
pub(super) fn partial_content(parts: impl IntoResponseParts, body: axum::body::Body) -> Response {
    (StatusCode::PARTIAL_CONTENT, parts, body).into_response()
}

impl IntoResponse for ServeError {
    fn into_response(self) -> Response {
        let kind = self.kind();
        if !kind.is_expected() {
            self.log();
        }
        let body = format!("{}\n", self.body());
        let mut r = (kind.status(), [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body)
            .into_response();
        // Browsers prompt for credentials only with a realm; the SDK needs none.
        let extra = match &self {
            ServeError::Unauthenticated => {
                Some((header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic")))
            }
            ServeError::SignIn => Some((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="artfs", charset="UTF-8""#),
            )),
            ServeError::Range { size } => HeaderValue::from_str(&format!("bytes */{size}"))
                .ok()
                .map(|v| (header::CONTENT_RANGE, v)),
            _ => None,
        };
        if let Some((name, value)) = extra {
            r.headers_mut().insert(name, value);
        }
        r
    }
}

impl ErrorExtensions for ServeError {
    /// The GraphQL error: the message as it always was, with `extensions.code` from [`Kind`].
    fn extend(&self) -> async_graphql::Error {
        async_graphql::Error::new(self.to_string())
            .extend_with(|_, ext| ext.set("code", self.kind().code()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `extensions.code` a GraphQL client reads for `e`.
    fn code_of(e: ServeError) -> String {
        match e.extend().extensions.and_then(|x| x.get("code").cloned()) {
            Some(async_graphql::Value::String(code)) => code,
            other => panic!("no code: {other:?}"),
        }
    }

    #[test]
    fn statuses_and_codes_follow_one_kind() {
        let unknown = RegistryError::UnknownVersion {
            name: "acme/bikes/a".into(),
            version: 3,
            available: vec![],
        };
        let e = ServeError::Registry(unknown);
        assert_eq!(e.kind().status(), StatusCode::NOT_FOUND);
        assert_eq!(code_of(e), "NOT_FOUND");
        assert_eq!(code_of(ServeError::Forbidden("no".into())), "FORBIDDEN");
        assert_eq!(code_of(ServeError::Signature(SignatureError::Expired)), "FORBIDDEN");
        let name = NameError::Alias("a/b".into());
        assert_eq!(code_of(ServeError::Registry(RegistryError::Name(name))), "INVALID");
        assert_eq!(ServeError::Range { size: 1 }.kind().code(), "INVALID");
        let busy = ServeError::Registry(RegistryError::Contention { name: "c".into() });
        assert_eq!(busy.kind().status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.body(), "storage error; retry", "the registry's words stay in the log");
        let conflict =
            ServeError::Registry(RegistryError::Invalid { name: "c".into(), reason: "r".into() });
        assert_eq!(conflict.kind().status(), StatusCode::CONFLICT);
        assert_eq!(conflict.body(), "c: r");
    }

    #[test]
    fn bodies_and_challenges() {
        let r = ServeError::Unauthenticated.into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Basic");
        let r = ServeError::Range { size: 10 }.into_response();
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(r.headers()[header::CONTENT_RANGE], "bytes */10");
        let missing =
            ServeError::Store(StoreError::NotFound { url: "s3://b".into(), key: "k".into() });
        assert_eq!(missing.body(), "not found");
        assert_eq!(missing.to_string(), "registry s3://b: k not found", "GraphQL's message");
    }
}
