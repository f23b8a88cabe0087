//! One HTTP policy for every client artfs runs (clouds' raw requests in `store::cloud`, the W&B
//! source): timeouts that bound a server gone silent, and bounded retries of 429, 5xx and
//! transport failures with jittered exponential backoff, so a dead or throttling server turns
//! into an error within [`REQUEST_BOUND`], never into a hang, and many clients retrying at once
//! do not retry in step. [`NetConfig::retrying`] is the one retry loop; a client only says what
//! each attempt came to ([`Attempt`]).
//!
//! Object stores get the same numbers through `object_store`'s own retry layer (see
//! `NetConfig::retry` in `store::cloud`). A body that may stall or never end is read through
//! `stall` (one bound for every remote body), which keeps the registry's `health`.

pub mod health;
pub mod stall;

use std::future::Future;
use std::time::{Duration, Instant};

pub use health::RegistryHealth;
pub use stall::{BodyError, StallBound, StallError};

/// Retries after the first attempt of a request that failed in a retryable way: enough to ride
/// out a dropped connection or a short throttle; a longer outage is reported, not waited out.
pub const DEFAULT_MAX_RETRIES: usize = 3;
/// No retry starts later than this after the first attempt. With the connect and read
/// timeouts below, a request to a server that stopped answering ends, retries included, within
/// [`REQUEST_BOUND`]: its last attempt starts by 25 s, connects by 30 s and hears a byte by 60 s.
pub const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(25);
/// What the README promises for one request against a stalled server, retries included (the
/// mount also enforces it on its own, see `fs::REGISTRY_TIMEOUT`).
pub const REQUEST_BOUND: Duration = Duration::from_secs(60);
/// Time allowed to establish a TCP (+TLS) connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest silence allowed while waiting for response headers or body bytes. This, not a total
/// request timeout, is what bounds a hung server: a total timeout would also kill healthy
/// multi-gigabyte downloads.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Ceiling of the first pause between retries; each retry doubles the ceiling. Short, so a
/// transient failure costs little latency; the doubling spaces out a longer one.
const RETRY_BASE_BACKOFF: Duration = Duration::from_millis(100);
/// Ceiling of any pause between retries, so a long budget is spent asking, not sleeping.
const RETRY_MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Idle connections kept per host: W&B file URLs and GraphQL are few hosts, many requests.
const POOL_IDLE_PER_HOST: usize = 32;

/// Retries and timeouts of every client.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConfig {
    pub max_retries: usize,
    pub retry_timeout: Duration,
    pub connect_timeout: Duration,
    /// See [`DEFAULT_READ_TIMEOUT`].
    pub read_timeout: Duration,
    /// Total time for one request including its body; `None` (the default) because references
    /// and blobs can be large. The read timeout still bounds a stalled transfer.
    pub request_timeout: Option<Duration>,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            max_retries: DEFAULT_MAX_RETRIES,
            retry_timeout: DEFAULT_RETRY_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            request_timeout: None,
        }
    }
}

impl NetConfig {
    /// A `reqwest` builder with this policy's timeouts, artfs's user agent and a connection pool
    /// (reused across requests: build one client and clone it). Content-Length must describe
    /// the bytes as stored, so no transparent decompression.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        let mut builder = reqwest::ClientBuilder::new()
            .user_agent(concat!("artfs/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.read_timeout)
            .pool_max_idle_per_host(POOL_IDLE_PER_HOST)
            .no_gzip()
            .no_brotli()
            .no_zstd()
            .no_deflate();
        if let Some(t) = self.request_timeout {
            builder = builder.timeout(t);
        }
        if let Some(tls) = crate::tls::client_config() {
            builder = builder.tls_backend_preconfigured(tls);
        }
        builder
    }

    /// The retry budget of one request, starting now.
    pub fn retries(&self) -> Retries {
        Retries { max: self.max_retries, until: self.retry_timeout, start: Instant::now(), done: 0 }
    }

    /// The one retry loop: runs `attempt` until it is [`Attempt::Done`] or the budget is spent,
    /// pausing between attempts as [`Retries`] says. Once the budget is spent the last
    /// [`Attempt::Retry`]'s result is returned as it is (an answer with its status, or the
    /// caller's "unreachable" error). `what` names the request in logs (no credentials).
    pub async fn retrying<T, E, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T, E>
    where
        F: FnMut(Try) -> Fut,
        Fut: Future<Output = Attempt<T, E>>,
    {
        let mut retries = self.retries();
        loop {
            let this = Try { number: retries.attempts(), first_at: retries.start };
            match attempt(this).await {
                Attempt::Done(result) => return result,
                Attempt::Retry { result, reason } => {
                    let Some(pause) = retries.next_pause() else { return result };
                    tracing::debug!(what, attempt = this.number, %reason, "retrying HTTP request");
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
}

/// What one attempt of a request came to (see [`NetConfig::retrying`]).
#[derive(Debug)]
pub enum Attempt<T, E> {
    /// Handed back as it is: a success, or a failure that asking again would not change.
    Done(Result<T, E>),
    /// Throttled, a server failure or a transport failure ([`retryable_status`]): asked again
    /// while the budget lasts, else handed back as it is. `reason` is logged.
    Retry { result: Result<T, E>, reason: String },
}

/// Which attempt of a request is running, for the errors it builds.
#[derive(Clone, Copy, Debug)]
pub struct Try {
    /// 1 for the first attempt.
    pub number: usize,
    first_at: Instant,
}

impl Try {
    /// Time since the first attempt started.
    pub fn elapsed(&self) -> Duration {
        self.first_at.elapsed()
    }
}

/// Whether `err`, or an error under it, is a request that timed out: a server that took no
/// connection within the connect timeout, or took it and then sent nothing within the read
/// timeout (whichever client made it: reqwest here, object_store's in the stores).
pub fn timed_out(err: &(dyn std::error::Error + 'static)) -> bool {
    use object_store::client::{HttpError, HttpErrorKind};
    std::iter::successors(Some(err), |e| e.source()).any(|e| {
        e.downcast_ref::<reqwest::Error>().is_some_and(reqwest::Error::is_timeout)
            || e.downcast_ref::<HttpError>()
                .is_some_and(|h| matches!(h.kind(), HttpErrorKind::Timeout))
            || e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
    })
}

/// Whether an answer with this status is worth asking again: throttled or a server failure.
pub fn retryable_status(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

/// The retry budget of one request: at most `max` retries, none starting after `until`, each
/// after a pause drawn uniformly below a ceiling that doubles per retry ("full jitter").
#[derive(Debug)]
pub struct Retries {
    max: usize,
    until: Duration,
    start: Instant,
    done: usize,
}

impl Retries {
    /// Attempts made so far (after a failed one: including it).
    pub fn attempts(&self) -> usize {
        self.done + 1
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// The pause before the next attempt, or `None` when the budget is spent.
    pub fn next_pause(&mut self) -> Option<Duration> {
        if self.done >= self.max || self.start.elapsed() >= self.until {
            return None;
        }
        let ceiling =
            RETRY_BASE_BACKOFF.saturating_mul(1 << self.done.min(16)).min(RETRY_MAX_BACKOFF);
        self.done += 1;
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Some(Duration::from_nanos(fastrand::u64(nanos / 2..=nanos.max(1))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_bounded_jittered_and_growing() {
        let net = NetConfig { max_retries: 5, ..NetConfig::default() };
        let mut r = net.retries();
        let pauses: Vec<Duration> = std::iter::from_fn(|| r.next_pause()).collect();
        assert_eq!(pauses.len(), 5, "exactly max_retries");
        for (i, p) in pauses.iter().enumerate() {
            let ceiling = (RETRY_BASE_BACKOFF * (1 << i)).min(RETRY_MAX_BACKOFF);
            assert!(*p <= ceiling && *p >= ceiling / 2, "retry {i}: {p:?} vs {ceiling:?}");
        }
        assert_eq!(r.attempts(), 6);
        // Jitter: many budgets do not all pause the same.
        let firsts: std::collections::HashSet<Duration> =
            (0..20).filter_map(|_| net.retries().next_pause()).collect();
        assert!(firsts.len() > 1, "no jitter: {firsts:?}");
        // A spent time budget stops retries even with retries left.
        let mut r = NetConfig { retry_timeout: Duration::ZERO, ..net }.retries();
        assert_eq!(r.next_pause(), None);
    }

    #[tokio::test]
    async fn the_retry_loop_asks_again_until_done_or_out_of_budget() {
        let net = NetConfig { max_retries: 2, ..NetConfig::default() };
        let mut calls = 0;
        let done: Result<u16, ()> = net
            .retrying("test", |attempt| {
                calls += 1;
                async move {
                    match attempt.number {
                        1 => Attempt::Retry { result: Ok(503), reason: "503".into() },
                        _ => Attempt::Done(Ok(200)),
                    }
                }
            })
            .await;
        assert_eq!((done, calls), (Ok(200), 2));
        let mut calls = 0;
        let spent: Result<u16, usize> = net
            .retrying("test", |attempt| {
                calls += 1;
                async move { Attempt::Retry { result: Err(attempt.number), reason: "down".into() } }
            })
            .await;
        assert_eq!((spent, calls), (Err(3), 3), "the last attempt's result, after max_retries");
    }

    #[test]
    fn throttling_and_server_errors_are_retried_client_errors_not() {
        assert!(retryable_status(429) && retryable_status(500) && retryable_status(503));
        assert!(!retryable_status(200) && !retryable_status(401) && !retryable_status(404));
    }
}
