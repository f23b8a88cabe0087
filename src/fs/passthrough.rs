//! FUSE passthrough bookkeeping: which inodes have a backing file the kernel reads directly, and
//! the opens of each. The kernel refuses to mix passthrough and page-cached opens of one inode,
//! so an inode with a page-cached open (e.g. a file still being fetched lazily) gets no
//! passthrough opens until those are released, and all passthrough opens of an inode share one
//! backing file. Plain data: `fuse.rs` makes the kernel calls, through [`OpenReply`].

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::{ArtifactFs, HandleNo, InodeNo, OpenFile};

/// The kernel's side of replying to one open.
pub trait OpenReply {
    /// A backing file registered with the kernel; unregistered when dropped.
    type Backing;
    fn open_backing(&self, file: &std::fs::File) -> io::Result<Self::Backing>;
    /// Replies that the kernel reads `backing` directly.
    fn passthrough(self, open: &OpenFile, backing: &Self::Backing);
    /// Replies that reads come to this process (and may be kept in the page cache).
    fn cached(self, open: &OpenFile);
}

/// Shared by the request threads and the fetch workers, which reply to opens too.
#[derive(Debug)]
pub struct Passthrough<B> {
    enabled: AtomicBool,
    state: Mutex<State<B>>,
}

#[derive(Debug)]
struct State<B> {
    inodes: HashMap<InodeNo, InodeOpens<B>>,
    /// Open file handle → (inode, opened with passthrough).
    handles: HashMap<HandleNo, (InodeNo, bool)>,
}

#[derive(Debug)]
struct InodeOpens<B> {
    /// Dropped (unregistered) when the last passthrough open of the inode is released.
    backing: Option<B>,
    passthrough: usize,
    cached: usize,
}

impl<B> Default for InodeOpens<B> {
    fn default() -> Self {
        InodeOpens { backing: None, passthrough: 0, cached: 0 }
    }
}

impl<B> Default for Passthrough<B> {
    fn default() -> Self {
        let state = State { inodes: HashMap::new(), handles: HashMap::new() };
        Passthrough { enabled: AtomicBool::new(false), state: Mutex::new(state) }
    }
}

impl<B> Passthrough<B> {
    /// Decided once the kernel has said what it offers.
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Relaxed);
    }

    fn state(&self) -> MutexGuard<'_, State<B>> {
        // Counters only; a panic elsewhere leaves them usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replies to a successful open: through the kernel's passthrough if enabled and the file
    /// is complete in the cache, else with the page-cache flags.
    pub fn reply<R: OpenReply<Backing = B>>(
        &self,
        fs: &ArtifactFs,
        ino: InodeNo,
        f: &OpenFile,
        reply: R,
    ) {
        if !self.enabled.load(Ordering::Relaxed) {
            return reply.cached(f);
        }
        let mut state = self.state();
        let backing_file = match f.direct_io {
            true => None,
            false => fs.cached_file(f.fh),
        };
        let opens = state.inodes.entry(ino).or_default();
        if let Some(file) = backing_file
            && opens.cached == 0
        {
            if opens.backing.is_none() {
                match reply.open_backing(&file) {
                    Ok(id) => opens.backing = Some(id),
                    Err(err) => {
                        // E.g. no CAP_SYS_ADMIN: fall back for good, and say so once.
                        self.set_enabled(false);
                        tracing::warn!(
                            %err,
                            "FUSE passthrough refused by the kernel; serving cached files \
                             through the page cache instead"
                        );
                    }
                }
            }
            if let Some(backing) = &opens.backing {
                opens.passthrough += 1;
                reply.passthrough(f, backing);
                state.handles.insert(f.fh, (ino, true));
                return;
            }
        }
        opens.cached += 1;
        reply.cached(f);
        state.handles.insert(f.fh, (ino, false));
    }

    pub fn release(&self, fh: HandleNo) {
        let mut state = self.state();
        let Some((ino, passthrough)) = state.handles.remove(&fh) else {
            return;
        };
        if let Some(opens) = state.inodes.get_mut(&ino) {
            match passthrough {
                true => opens.passthrough = opens.passthrough.saturating_sub(1),
                false => opens.cached = opens.cached.saturating_sub(1),
            }
            if opens.passthrough == 0 {
                opens.backing = None;
            }
            if opens.passthrough == 0 && opens.cached == 0 {
                state.inodes.remove(&ino);
            }
        }
    }
}
