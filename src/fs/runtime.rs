//! The one place FUSE threads meet tokio: registry I/O is driven to completion on the stored
//! runtime [`Handle`], bounded by the registry timeout. Only plain threads (FUSE request
//! threads, fetch workers) call it, never a tokio worker, where `block_on` would panic.
//!
//! At unmount the runtime goes away while background threads (the project reads of `heads`)
//! may still be asking the registry; a request polled on a runtime being shut down panics in
//! tokio's timer. So shutting down is a handshake: [`Runtime::stop`] ends the requests running
//! and refuses new ones, then waits until no thread is inside, before the caller drops the
//! runtime.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt as _, stream};
use tokio::runtime::Handle;
use tokio::sync::watch;

use crate::http::{StallBound, StallError};
use crate::source::SourceError;

use super::FsError;

/// The runtime handle of one mount and the bound on each registry request made through it.
#[derive(Debug)]
pub(super) struct Runtime {
    handle: Handle,
    /// The registry timeout, sharing the fetcher's health: a stalled download also holds back
    /// registry requests, and the other way round.
    bound: StallBound,
    /// True once the mount shuts down (see the module header).
    stopped: watch::Sender<bool>,
    /// Threads inside `block_on` now.
    inside: AtomicUsize,
}

/// A thread's stay inside the runtime; counted in [`Runtime::inside`] until dropped.
struct Inside<'a>(&'a AtomicUsize);

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How often [`Runtime::stop`] looks whether the last thread has left.
const STOP_POLL: Duration = Duration::from_millis(5);

impl Runtime {
    pub(super) fn new(handle: Handle, bound: StallBound) -> Runtime {
        Runtime { handle, bound, stopped: watch::Sender::new(false), inside: AtomicUsize::new(0) }
    }

    /// Ends the registry requests running (they fail with [`FsError::ShuttingDown`]), refuses
    /// new ones, and waits up to `grace` until no thread is inside the runtime any more.
    /// Returns whether none is.
    pub(super) fn stop(&self, grace: Duration) -> bool {
        self.stopped.send_replace(true);
        let deadline = Instant::now() + grace;
        while self.inside.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(STOP_POLL);
        }
        true
    }

    /// Counts this thread in, unless the runtime is stopping. The count goes up before the flag
    /// is read, and `stop` sets the flag before it reads the count: either this thread sees the
    /// flag, or `stop` waits for it.
    fn enter(&self) -> Option<Inside<'_>> {
        self.inside.fetch_add(1, Ordering::SeqCst);
        let inside = Inside(&self.inside);
        (!*self.stopped.borrow()).then_some(inside)
    }

    /// Drives `fut` on the runtime until it ends or the mount stops, whichever is first.
    fn drive<T>(&self, fut: impl Future<Output = T>) -> Result<T, FsError> {
        let Some(_inside) = self.enter() else { return Err(FsError::ShuttingDown) };
        let mut stopped = self.stopped.subscribe();
        self.handle
            .block_on(async {
                tokio::select! {
                    biased;
                    _ = stopped.wait_for(|stop| *stop) => None,
                    done = fut => Some(done),
                }
            })
            .ok_or(FsError::ShuttingDown)
    }

    /// Runs registry I/O to completion from a FUSE thread, bounded by the registry timeout.
    /// Right after a registry request timed out, fails at once instead of waiting again (see
    /// `http::health`), so one user operation waits the timeout at most once.
    pub(super) fn block_on<T>(
        &self,
        what: impl FnOnce() -> String,
        fut: impl Future<Output = Result<T, SourceError>>,
    ) -> Result<T, FsError> {
        settle(what, self.drive(self.bound.answer(fut))?)
    }

    /// Runs many registry requests to completion from a plain thread, at most `in_flight` at
    /// once, each bounded as [`Runtime::block_on`] bounds one. `answer` gets each one's index,
    /// when it was sent, and its answer, as they arrive in order.
    pub(super) fn block_on_each<T, F>(
        &self,
        requests: impl IntoIterator<Item = (String, F)>,
        in_flight: usize,
        mut answer: impl FnMut(usize, Instant, Result<T, FsError>),
    ) where
        F: Future<Output = Result<T, SourceError>>,
    {
        let bound = &self.bound;
        let mut all = stream::iter(requests)
            .map(|(what, fut)| async move {
                let sent = Instant::now();
                (sent, settle(|| what, bound.answer(fut).await))
            })
            .buffered(in_flight.max(1))
            .enumerate();
        let all_answered = self.drive(async {
            while let Some((i, (sent, result))) = all.next().await {
                answer(i, sent, result);
            }
        });
        if all_answered.is_err() {
            // Stopping: the requests not answered yet are left to nobody.
            tracing::debug!("registry requests abandoned: the mount is shutting down");
        }
    }
}

/// One bounded request's answer as the filesystem's error.
fn settle<T>(
    what: impl FnOnce() -> String,
    answer: Result<Result<T, SourceError>, StallError>,
) -> Result<T, FsError> {
    match answer {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(FsError::Source { what: what(), source }),
        Err(StallError::Holding { ago }) => Err(FsError::Unresponsive { what: what(), ago }),
        Err(StallError::Silent { after }) => Err(FsError::Timeout { what: what(), after }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> (tokio::runtime::Runtime, Runtime) {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        let bound = StallBound::new(Duration::from_secs(60));
        let ours = Runtime::new(rt.handle().clone(), bound);
        (rt, ours)
    }

    #[test]
    fn stopping_ends_the_requests_running_and_refuses_new_ones() {
        let (_rt, ours) = runtime();
        let ours = std::sync::Arc::new(ours);
        let asking = {
            let ours = ours.clone();
            std::thread::spawn(move || {
                // A registry that never answers (within the 60 s bound).
                ours.block_on(|| "asking".into(), std::future::pending::<Result<(), SourceError>>())
            })
        };
        while ours.inside.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let started = Instant::now();
        assert!(ours.stop(Duration::from_secs(30)), "the thread inside left");
        assert!(started.elapsed() < Duration::from_secs(10), "without waiting for the bound");
        assert!(matches!(asking.join().unwrap(), Err(FsError::ShuttingDown)));

        let polled = std::sync::atomic::AtomicBool::new(false);
        let later = ours.block_on(|| "later".into(), async {
            polled.store(true, Ordering::SeqCst);
            Ok::<_, SourceError>(())
        });
        assert!(matches!(later, Err(FsError::ShuttingDown)));
        assert!(!polled.load(Ordering::SeqCst), "nothing runs on a stopping runtime");
        let mut answered = 0;
        let requests = (0..3).map(|i| (format!("r{i}"), async { Ok::<_, SourceError>(()) }));
        ours.block_on_each(requests, 2, |_, _, _| answered += 1);
        assert_eq!(answered, 0);
    }
}
