//! The one place FUSE threads meet tokio: registry I/O is driven to completion on the stored
//! runtime [`Handle`], bounded by the registry timeout. Only plain threads (FUSE request
//! threads, fetch workers) call it, never a tokio worker, where `block_on` would panic.

use std::future::Future;

use std::time::Instant;

use futures::{StreamExt as _, stream};
use tokio::runtime::Handle;

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
}

impl Runtime {
    pub(super) fn new(handle: Handle, bound: StallBound) -> Runtime {
        Runtime { handle, bound }
    }

    /// Runs registry I/O to completion from a FUSE thread, bounded by the registry timeout.
    /// Right after a registry request timed out, fails at once instead of waiting again (see
    /// `http::health`), so one user operation waits the timeout at most once.
    pub(super) fn block_on<T>(
        &self,
        what: impl FnOnce() -> String,
        fut: impl Future<Output = Result<T, SourceError>>,
    ) -> Result<T, FsError> {
        settle(what, self.handle.block_on(self.bound.answer(fut)))
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
        self.handle.block_on(async {
            while let Some((i, (sent, result))) = all.next().await {
                answer(i, sent, result);
            }
        });
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
