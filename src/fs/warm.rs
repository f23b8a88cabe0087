//! Background warm-ups: sets of small files fetched into the cache before their readers ask,
//! one set at a time with [`WARM_JOBS`] downloads in flight: a directory read in scattered
//! order (`Readahead::take_scattered`) and a version read in shuffled order (`--warm-up`).
//!
//! One queue and one thread rather than a thread per set: a shuffled epoch touches every
//! folder of its data set within its first few dozen opens, and a download pool per folder
//! would put hundreds of downloads in flight on a two-core machine.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::fetch::Fetcher;
use crate::manifest::Entry;
use crate::source::BlobSource;

use super::lock;

/// Downloads in flight for a warm-up, beside the readers' own.
pub(super) const WARM_JOBS: usize = 16;

/// A set of entries of one version to bring into the cache.
#[derive(Debug)]
pub(super) struct WarmSet {
    /// What the set is, for the log (`<artifact>: <what>`).
    pub(super) what: String,
    pub(super) label: String,
    pub(super) blobs: Arc<dyn BlobSource>,
    pub(super) entries: Vec<(String, Entry)>,
}

/// The queue of warm-ups of one mount.
#[derive(Debug, Default)]
pub(super) struct Warmer {
    queue: Mutex<Queue>,
    stop: Arc<AtomicBool>,
}

#[derive(Debug, Default)]
struct Queue {
    sets: VecDeque<WarmSet>,
    /// Whether a thread is draining the queue.
    running: bool,
}

impl Warmer {
    /// Queues `set`, starting the warm-up thread if none runs. Best effort: a set that fails
    /// only means its readers fetch (and report) their files themselves.
    pub(super) fn submit(self: &Arc<Self>, fetcher: &Fetcher, set: WarmSet) {
        if self.stop.load(Ordering::Relaxed) {
            return;
        }
        let mut queue = lock(&self.queue);
        queue.sets.push_back(set);
        if queue.running {
            return;
        }
        queue.running = true;
        drop(queue);
        let (me, fetcher) = (self.clone(), fetcher.clone());
        let started = std::thread::Builder::new()
            .name("artfs-warm-up".into())
            .spawn(move || me.drain(&fetcher));
        if let Err(err) = started {
            tracing::warn!(%err, "cannot start the warm-up thread; reading without");
            let mut queue = lock(&self.queue);
            queue.sets.clear();
            queue.running = false;
        }
    }

    /// No warm-up starts any more (unmount); the running one stops after its current files.
    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Whether no warm-up is queued or running.
    #[cfg(test)]
    pub(super) fn is_idle(&self) -> bool {
        !lock(&self.queue).running
    }

    fn drain(&self, fetcher: &Fetcher) {
        loop {
            let set = {
                let mut queue = lock(&self.queue);
                match queue.sets.pop_front() {
                    Some(set) if !self.stop.load(Ordering::Relaxed) => set,
                    _ => {
                        queue.sets.clear();
                        queue.running = false;
                        return;
                    }
                }
            };
            let label = &set.label;
            let done = crate::prefetch::warm(
                fetcher,
                &set.blobs,
                label,
                &set.entries,
                WARM_JOBS,
                &|_| {},
                &self.stop,
            );
            tracing::info!(
                "{label}: warm-up of {} done: {} files in the cache ({} fetched), {} failed",
                set.what,
                done.files,
                done.fetched_files,
                done.failed.len()
            );
            for err in done.failed.iter().take(5) {
                tracing::debug!(%err, "warm-up fetch failed");
            }
        }
    }
}
