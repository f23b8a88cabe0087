//! The one place FUSE threads meet tokio: registry I/O is driven to completion on the stored
//! runtime [`Handle`], bounded by the registry timeout. Only plain threads (FUSE request
//! threads, fetch workers) call it, never a tokio worker, where `block_on` would panic.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;

use crate::fetch::RegistryHealth;
use crate::source::SourceError;

use super::FsError;

/// The runtime handle of one mount and the bound on each registry request made through it.
#[derive(Debug)]
pub(super) struct Runtime {
    handle: Handle,
    timeout: Duration,
    /// Shared with the fetcher, so a stalled download also holds back registry requests.
    health: Arc<RegistryHealth>,
}

impl Runtime {
    pub(super) fn new(handle: Handle, timeout: Duration, health: Arc<RegistryHealth>) -> Runtime {
        Runtime { handle, timeout, health }
    }

    /// Runs registry I/O to completion from a FUSE thread, bounded by the registry timeout.
    /// Right after a registry request timed out, fails at once instead of waiting again (see
    /// `fetch::health`), so one user operation waits the timeout at most once.
    pub(super) fn block_on<T>(
        &self,
        what: impl FnOnce() -> String,
        fut: impl Future<Output = Result<T, SourceError>>,
    ) -> Result<T, FsError> {
        let after = self.timeout;
        let health = &self.health;
        if let Some(ago) = health.stalled_since() {
            return Err(FsError::Unresponsive { what: what(), ago });
        }
        // The timer must be created inside the runtime, hence the async block.
        match self.handle.block_on(async { tokio::time::timeout(after, fut).await }) {
            Ok(Ok(v)) => {
                health.answered();
                Ok(v)
            }
            Ok(Err(source)) => Err(FsError::Source { what: what(), source }),
            Err(_elapsed) => {
                health.timed_out();
                Err(FsError::Timeout { what: what(), after })
            }
        }
    }
}
