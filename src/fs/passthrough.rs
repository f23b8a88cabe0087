//! FUSE passthrough bookkeeping: which inodes have a backing file the kernel reads directly, and
//! the opens of each. The kernel refuses to mix passthrough and page-cached opens of one inode,
//! so an inode with a page-cached open (e.g. a file still being fetched lazily) gets no
//! passthrough opens until those are released, and all passthrough opens of an inode share one
//! backing file. Plain data: `fuse.rs` makes the kernel calls, through [`OpenReply`].

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

#[cfg(doc)]
use super::ArtifactFs;
use super::{HandleNo, InodeNo, OpenFile};

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
    /// is complete in the cache (`cached_file`, see [`ArtifactFs::cached_file`]), else with
    /// the page-cache flags.
    pub fn reply<R: OpenReply<Backing = B>>(
        &self,
        ino: InodeNo,
        f: &OpenFile,
        cached_file: impl FnOnce() -> Option<std::fs::File>,
        reply: R,
    ) {
        if !self.enabled.load(Ordering::Relaxed) {
            return reply.cached(f);
        }
        let mut state = self.state();
        let backing_file = match f.direct_io {
            true => None,
            false => cached_file(),
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

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    /// Records what was replied; its backing ids record when they are dropped (unregistered).
    struct Fake(Rc<RefCell<Vec<String>>>);

    struct Backing(u64, Rc<RefCell<Vec<String>>>);

    impl Drop for Backing {
        fn drop(&mut self) {
            self.1.borrow_mut().push(format!("unregister {}", self.0));
        }
    }

    impl OpenReply for Fake {
        type Backing = Backing;
        fn open_backing(&self, _file: &std::fs::File) -> io::Result<Backing> {
            Ok(Backing(self.0.borrow().len() as u64, self.0.clone()))
        }
        fn passthrough(self, open: &OpenFile, backing: &Backing) {
            self.0.borrow_mut().push(format!("{} passthrough {}", open.fh.0, backing.0));
        }
        fn cached(self, open: &OpenFile) {
            self.0.borrow_mut().push(format!("{} cached", open.fh.0));
        }
    }

    #[test]
    fn an_inode_never_mixes_new_passthrough_and_cached_opens_and_shares_one_backing() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let table = Passthrough::default();
        table.set_enabled(true);
        let ino = InodeNo(7);
        let open = |fh: u64, complete: bool| {
            let f = OpenFile { fh: HandleNo(fh), direct_io: false };
            let file = move || complete.then(|| std::fs::File::open("/dev/null").unwrap());
            table.reply(ino, &f, file, Fake(log.clone()));
        };
        open(1, true);
        open(2, true);
        open(3, false); // still being fetched lazily
        table.release(HandleNo(1));
        table.release(HandleNo(2));
        open(4, true); // a page-cached open is still there
        table.release(HandleNo(3));
        table.release(HandleNo(4));
        open(5, true);
        let want = [
            "1 passthrough 0",
            "2 passthrough 0",
            "3 cached",
            "unregister 0",
            "4 cached",
            "5 passthrough 5",
        ];
        assert_eq!(*log.borrow(), want);
    }
}
