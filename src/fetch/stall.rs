//! The one shape of a request that may hang: it fails when no data arrives for a while (a
//! stall), however long the whole transfer takes, instead of waiting forever on a server that
//! stopped answering. Used by every read from a registry or a reference: the mount's registry
//! requests (`fs::runtime`), whole blobs and references, chunk sidecars and ranged chunks.
//!
//! A bound made for the registry also keeps its [`RegistryHealth`]: a stall marks the registry
//! as not answering, so the requests that follow fail at once ([`StallError::Holding`]) instead
//! of each waiting the bound again, and any answer clears that.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt as _};

use super::RegistryHealth;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StallError {
    #[error("the registry did not answer a request {ago:.0?} ago; not waiting on it again yet")]
    Holding { ago: Duration },
    #[error("no data received for {after:?}; is the server reachable?")]
    Silent { after: Duration },
}

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

    fn stalled(&self) -> StallError {
        if let Some(health) = &self.health {
            health.timed_out();
        }
        StallError::Silent { after: self.after }
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
}
