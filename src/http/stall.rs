//! The one shape of a request that may hang: it fails when no data arrives for a while (a
//! stall), however long the whole transfer takes, instead of waiting forever on a server that
//! stopped answering. Used by every read from a registry or a reference: the mount's registry
//! requests (`fs::runtime`), whole blobs and references, chunk sidecars and ranged chunks.
//!
//! A body must also keep moving: a server that drips a byte every few seconds never goes silent,
//! so each stall window must bring [`MIN_BYTES_PER_WINDOW`] ([`StallError::Slow`]); and it must
//! end where the entry's recorded size says it does ([`StallError::TooLong`]), so an endless body
//! never costs more disk or memory than the entry it claims to be.
//!
//! A bound made for the registry also keeps its [`RegistryHealth`]: a stall marks the registry
//! as not answering, so the requests that follow fail at once ([`StallError::Holding`]) instead
//! of each waiting the bound again, and any answer clears that.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{Stream, StreamExt as _};

use super::health::RegistryHealth;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StallError {
    #[error("the registry did not answer a request {ago:.0?} ago; not waiting on it again yet")]
    Holding { ago: Duration },
    #[error("no data received for {after:?}; is the server reachable?")]
    Silent { after: Duration },
}

/// Why a body read under [`StallBound::body`] ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Stalled(#[from] StallError),
    #[error(
        "only {bytes} bytes received in {after:?} (at least {MIN_BYTES_PER_WINDOW} are expected); \
         the server is too slow or stuck"
    )]
    Slow { bytes: u64, after: Duration },
    #[error("the server sent more than the {limit} bytes this download can be; stopped there")]
    TooLong { limit: u64 },
}

/// The least a body must bring in each stall window (64 KiB a minute, about 1 KiB/s): slower is a
/// server stuck in a loop or a hostile drip, not a download anyone waits for.
pub const MIN_BYTES_PER_WINDOW: u64 = 64 * 1024;

/// The longest silence a request may keep, and the health it reports to (registry only).
#[derive(Clone, Debug)]
pub struct StallBound {
    after: Duration,
    health: Option<Arc<RegistryHealth>>,
}

impl StallBound {
    /// For servers other than the registry (references): nothing to report to.
    pub fn new(after: Duration) -> StallBound {
        StallBound { after, health: None }
    }

    /// For the registry: stalls and answers are reported to `health`.
    pub fn registry(after: Duration, health: Arc<RegistryHealth>) -> StallBound {
        StallBound { after, health: Some(health) }
    }

    pub fn after(&self) -> Duration {
        self.after
    }

    /// Awaits a request until its answer (for a download, until its body starts): fails at once
    /// while the registry is held back after a stall, or after [`StallBound::after`] of silence.
    /// Any answer, an error included, shows the server is there.
    pub async fn answer<F: Future>(&self, request: F) -> Result<F::Output, StallError> {
        if let Some(ago) = self.health.as_ref().and_then(|h| h.stalled_since()) {
            return Err(StallError::Holding { ago });
        }
        match tokio::time::timeout(self.after, request).await {
            Ok(answer) => {
                if let Some(health) = &self.health {
                    health.answered();
                }
                Ok(answer)
            }
            Err(_elapsed) => Err(self.stalled()),
        }
    }

    /// The next piece of a body, or `None` at its end; fails after [`StallBound::after`] without
    /// one.
    pub async fn next<S: Stream + Unpin>(
        &self,
        body: &mut S,
    ) -> Result<Option<S::Item>, StallError> {
        tokio::time::timeout(self.after, body.next()).await.map_err(|_elapsed| self.stalled())
    }

    /// A body read under this bound: no silence longer than the bound, at least
    /// [`MIN_BYTES_PER_WINDOW`] per bound's length, and never more than `limit` bytes.
    pub fn body(&self, limit: u64) -> BoundedBody<'_> {
        BoundedBody { bound: self, limit, total: 0, window_start: Instant::now(), in_window: 0 }
    }

    fn stalled(&self) -> StallError {
        if let Some(health) = &self.health {
            health.timed_out();
        }
        StallError::Silent { after: self.after }
    }
}

/// The progress of one body under its [`StallBound`]: see [`StallBound::body`].
#[derive(Debug)]
pub struct BoundedBody<'b> {
    bound: &'b StallBound,
    limit: u64,
    total: u64,
    window_start: Instant,
    in_window: u64,
}

impl BoundedBody<'_> {
    /// The next piece of `body`, or `None` at its end. A piece that would take the body past its
    /// limit is an error, not a shorter piece: the bytes were never what was asked for.
    pub async fn next<S, E>(&mut self, body: &mut S) -> Result<Option<Result<Bytes, E>>, BodyError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
    {
        let piece = self.bound.next(body).await?;
        if let Some(Ok(bytes)) = &piece {
            self.count(bytes.len() as u64, Instant::now())?;
        }
        Ok(piece)
    }

    /// Counts `n` bytes that arrived at `now` against the limit and the rate.
    fn count(&mut self, n: u64, now: Instant) -> Result<(), BodyError> {
        self.total = self.total.saturating_add(n);
        if self.total > self.limit {
            return Err(BodyError::TooLong { limit: self.limit });
        }
        self.in_window = self.in_window.saturating_add(n);
        if now.duration_since(self.window_start) >= self.bound.after {
            if self.in_window < MIN_BYTES_PER_WINDOW {
                return Err(BodyError::Slow { bytes: self.in_window, after: self.bound.after });
            }
            self.window_start = now;
            self.in_window = 0;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AFTER: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn a_stall_holds_the_registry_back_and_an_answer_clears_it() {
        let health = Arc::new(RegistryHealth::new(Duration::from_secs(60)));
        let bound = StallBound::registry(AFTER, health.clone());
        let silent = bound.answer(futures::future::pending::<()>()).await;
        assert_eq!(silent, Err(StallError::Silent { after: AFTER }));
        let held = bound.answer(async {}).await;
        assert!(matches!(held, Err(StallError::Holding { .. })), "{held:?}");
        health.answered();
        assert_eq!(bound.answer(async { 7 }).await, Ok(7));
        // A body that goes quiet stalls too, however much arrived before.
        let mut body = futures::stream::iter([1, 2]).chain(futures::stream::pending());
        assert_eq!(bound.next(&mut body).await, Ok(Some(1)));
        assert_eq!(bound.next(&mut body).await, Ok(Some(2)));
        assert_eq!(bound.next(&mut body).await, Err(StallError::Silent { after: AFTER }));
        assert!(health.stalled_since().is_some(), "a body's stall is the registry's too");
    }

    #[tokio::test]
    async fn a_bound_without_health_holds_nothing_back() {
        let bound = StallBound::new(AFTER);
        let silent = bound.answer(futures::future::pending::<()>()).await;
        assert_eq!(silent, Err(StallError::Silent { after: AFTER }));
        assert_eq!(bound.answer(async { 7 }).await, Ok(7));
    }

    #[test]
    fn a_body_must_keep_moving_and_end_where_its_size_says() {
        let bound = StallBound::new(AFTER);
        // A drip: a byte per tick never goes silent, but a window of it is too little.
        let mut drip = bound.body(1 << 20);
        let mut fast = bound.body(u64::MAX);
        let start = Instant::now();
        assert_eq!(drip.count(1, start), Ok(()));
        assert_eq!(drip.count(1, start + AFTER / 2), Ok(()));
        assert_eq!(drip.count(1, start + AFTER), Err(BodyError::Slow { bytes: 3, after: AFTER }));
        // Enough per window carries on, window after window.
        for i in 1..=4 {
            assert_eq!(fast.count(MIN_BYTES_PER_WINDOW, start + AFTER * i), Ok(()));
        }
        // One byte past the recorded size is refused, the size itself is not.
        let mut sized = bound.body(10);
        assert_eq!(sized.count(10, start), Ok(()));
        assert_eq!(sized.count(1, start), Err(BodyError::TooLong { limit: 10 }));
    }

    #[tokio::test]
    async fn an_endless_body_stops_at_its_limit() {
        let bound = StallBound::new(Duration::from_secs(60));
        let mut endless = futures::stream::repeat_with(|| {
            Ok::<_, std::io::Error>(Bytes::from_static(&[0; 1000]))
        });
        let mut body = bound.body(4500);
        let mut got = 0;
        let err = loop {
            match body.next(&mut endless).await {
                Ok(Some(Ok(piece))) => got += piece.len(),
                other => break other,
            }
        };
        assert_eq!(got, 4000, "pieces within the limit are passed on, none past it");
        assert!(matches!(err, Err(BodyError::TooLong { limit: 4500 })), "{err:?}");
    }
}
