//! Whether the registry answers: after a request to it timed out, requests for the next while
//! fail at once (or are answered from what the mount already knows) instead of each waiting the
//! whole timeout again.
//!
//! Without this, one user operation that needs several registry requests (the lookups of a path,
//! an open and its reads, the kernel's retry of a failed read) waits the timeout once per request,
//! several minutes for a single `cat`. With it, the first timeout is the only wait: the requests
//! that follow within [`RegistryHealth::hold`] fail fast, and the first request after it probes
//! the registry again. Any answer from the registry clears the state.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Shared by everything that talks to one registry in one process (the mount's filesystem, its
/// fetcher and every lazily read blob).
#[derive(Debug)]
pub struct RegistryHealth {
    hold: Duration,
    timed_out_at: Mutex<Option<Instant>>,
}

impl RegistryHealth {
    /// `hold`: how long after a timeout requests fail fast (the request timeout itself, so at
    /// most about half the time is spent waiting on a dead registry).
    pub fn new(hold: Duration) -> RegistryHealth {
        RegistryHealth { hold, timed_out_at: Mutex::new(None) }
    }

    pub fn hold(&self) -> Duration {
        self.hold
    }

    /// A request to the registry got no answer in time.
    pub fn timed_out(&self) {
        *self.lock() = Some(Instant::now());
    }

    /// The registry answered (with data or an error: either way it is not stalled).
    pub fn answered(&self) {
        let mut at = self.lock();
        if at.is_some() {
            tracing::info!("the registry answers again");
            *at = None;
        }
    }

    /// How long ago a request timed out, if that was less than `hold` ago: then the caller
    /// should not wait on the registry again.
    pub fn stalled_since(&self) -> Option<Duration> {
        let at = (*self.lock())?;
        let ago = at.elapsed();
        (ago < self.hold).then_some(ago)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        // A plain value, valid after any panic.
        self.timed_out_at.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_holds_requests_back_for_a_while_and_an_answer_clears_it() {
        let health = RegistryHealth::new(Duration::from_millis(200));
        assert_eq!(health.stalled_since(), None);
        health.timed_out();
        assert!(health.stalled_since().is_some());
        health.answered();
        assert_eq!(health.stalled_since(), None);
        health.timed_out();
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(health.stalled_since(), None, "probed again after the hold");
    }
}
