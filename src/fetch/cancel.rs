//! Downloads nobody waits for any more stop: a whole-file fetch a mount makes for readers is
//! abandoned once every reader waiting on it is gone, and every fetch stops when the process
//! shuts down.
//!
//! The FUSE library does not pass interrupts on, and a reader killed while its `open` waits is
//! not even gone: the kernel keeps it in an uninterruptible wait until the daemon answers the
//! request, so it neither exits nor closes anything we could watch (a pidfd never fires). What
//! shows is the kernel's mark on it: a fatal signal turns into a pending `SIGKILL` on each of
//! its threads. So each fetch made for readers (a *flight*, one per cache key) records the
//! pids of the requests waiting on it, and a watcher thread looks at `/proc/<pid>/status` of
//! each: a pid that is gone, a zombie or has `SIGKILL` pending no longer waits. A flight whose
//! waiters all went is stopped, and later readers of the key start a new one. A fetch shared by
//! several readers goes on while any of them waits; fetches no reader waits on (readahead,
//! warm-up, `get`) stop only at shutdown, and are bounded by their size and the stall timeout.
//!
//! A stopped fetch ends as a failed fill does: its temporary file is removed and its cache
//! reservation released, so nothing partial is left or counted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::watch;

use crate::cache::CacheKey;

/// How often the watcher looks whether the readers waiting on fetches still live.
const WAITER_POLL: Duration = Duration::from_millis(200);

/// The `SIGKILL` bit of a `SigPnd`/`ShdPnd` mask in `/proc/<pid>/status`.
const SIGKILL_BIT: u64 = 1 << (libc::SIGKILL - 1);

/// Why a fetch stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stopped {
    #[error("the download was abandoned: every reader waiting for it is gone")]
    Abandoned,
    #[error("the download was stopped: the process is shutting down")]
    Shutdown,
}

/// The in-flight fetches of one fetcher (shared by its clones) and the readers waiting on them.
#[derive(Debug)]
pub(super) struct Flights {
    by_key: Mutex<HashMap<CacheKey, Arc<Flight>>>,
    shutdown: watch::Sender<bool>,
    /// Whether the watcher thread runs; started with the first waiter.
    watching: Mutex<bool>,
}

#[derive(Debug)]
struct Flight {
    /// One pid per waiting request (a pid may wait twice).
    pids: Mutex<Vec<u32>>,
    stop: watch::Sender<bool>,
}

/// A reader's wait on the flight of one key; dropping it ends the wait.
#[derive(Debug)]
pub(super) struct Waiting {
    flights: Arc<Flights>,
    key: CacheKey,
    flight: Arc<Flight>,
    pid: u32,
}

/// What stops one fetch: the shutdown, and the abandonment of the flight it was made for.
#[derive(Debug)]
pub(super) struct StopSignal {
    shutdown: watch::Receiver<bool>,
    flight: Option<watch::Receiver<bool>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Flights {
    pub(super) fn new() -> Flights {
        Flights {
            by_key: Mutex::default(),
            shutdown: watch::Sender::new(false),
            watching: Mutex::new(false),
        }
    }

    /// Records that the request of `pid` waits for the fetch of `key`. Pid 0 (a reader in
    /// another pid namespace) cannot be watched, so it waits until the fetch ends.
    pub(super) fn wait(self: &Arc<Self>, key: CacheKey, pid: u32) -> Waiting {
        self.start_watcher();
        let flight = lock(&self.by_key)
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Flight { pids: Mutex::default(), stop: watch::Sender::new(false) })
            })
            .clone();
        lock(&flight.pids).push(pid);
        Waiting { flights: self.clone(), key, flight, pid }
    }

    /// The signal a fetch made for `waiting` (or for nobody) stops on.
    pub(super) fn stop_signal(&self, waiting: Option<&Waiting>) -> StopSignal {
        StopSignal {
            shutdown: self.shutdown.subscribe(),
            flight: waiting.map(|w| w.flight.stop.subscribe()),
        }
    }

    /// Stops every fetch, now and later.
    pub(super) fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// Stops the flights whose waiters are all gone; later readers of their keys start anew.
    fn sweep(&self, alive: impl Fn(u32) -> bool) {
        lock(&self.by_key).retain(|key, flight| {
            let pids = lock(&flight.pids).clone();
            if pids.iter().any(|&pid| pid == 0 || alive(pid)) {
                return true;
            }
            tracing::info!(%key, ?pids, "every reader of this download is gone; stopping it");
            flight.stop.send_replace(true);
            false
        });
    }

    fn start_watcher(self: &Arc<Self>) {
        let mut watching = lock(&self.watching);
        if *watching {
            return;
        }
        let flights: Weak<Flights> = Arc::downgrade(self);
        let started = std::thread::Builder::new().name("artfs-waiters".into()).spawn(move || {
            loop {
                std::thread::sleep(WAITER_POLL);
                let Some(flights) = flights.upgrade() else { return };
                flights.sweep(waits_still);
            }
        });
        match started {
            Ok(_) => *watching = true,
            // Fetches then run to their end, as they did before readers were watched.
            Err(err) => tracing::warn!(%err, "cannot start the thread watching readers"),
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut pids = lock(&self.flight.pids);
        if let Some(at) = pids.iter().position(|&p| p == self.pid) {
            pids.swap_remove(at);
        }
        if pids.is_empty() {
            drop(pids);
            let mut by_key = lock(&self.flights.by_key);
            if by_key.get(&self.key).is_some_and(|f| Arc::ptr_eq(f, &self.flight)) {
                by_key.remove(&self.key);
            }
        }
    }
}

impl StopSignal {
    /// Resolves when the fetch must stop, saying why; never, if nothing stops it.
    pub(super) async fn stopped(self) -> Stopped {
        let StopSignal { mut shutdown, mut flight } = self;
        let shutdown = shutdown.wait_for(|stop| *stop);
        let abandoned = async {
            let stopped = match &mut flight {
                Some(flight) => flight.wait_for(|stop| *stop).await.is_ok(),
                None => false,
            };
            if !stopped {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            Ok(_) = shutdown => Stopped::Shutdown,
            () = abandoned => Stopped::Abandoned,
        }
    }
}

/// Whether the process `pid` can still be waiting for a request: it exists, is no zombie and
/// has no fatal signal pending. Unreadable status (another user's process) counts as waiting.
fn waits_still(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(status) => !is_dying(&status),
        Err(err) => err.kind() != std::io::ErrorKind::NotFound,
    }
}

/// Whether a `/proc/<pid>/status` text shows a process that is exiting or will.
fn is_dying(status: &str) -> bool {
    status.lines().any(|line| {
        let Some((name, value)) = line.split_once(':') else { return false };
        let value = value.trim();
        match name {
            "State" => value.starts_with('Z') || value.starts_with('X'),
            "SigPnd" | "ShdPnd" => {
                u64::from_str_radix(value, 16).is_ok_and(|mask| mask & SIGKILL_BIT != 0)
            }
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> CacheKey {
        CacheKey::Md5([n; 16])
    }

    fn stopped(signal: &StopSignal) -> bool {
        signal.flight.as_ref().is_some_and(|f| *f.borrow())
    }

    #[test]
    fn a_flight_stops_once_every_waiter_is_gone_and_the_next_reader_starts_anew() {
        let flights = Arc::new(Flights::new());
        let alive = Mutex::new(vec![10u32, 11]);
        let is_alive = |pid| lock(&alive).contains(&pid);
        let first = flights.wait(key(1), 10);
        let second = flights.wait(key(1), 11);
        let signal = flights.stop_signal(Some(&first));
        let other = flights.wait(key(2), 11);
        let other_signal = flights.stop_signal(Some(&other));

        lock(&alive).retain(|&p| p != 10);
        flights.sweep(is_alive);
        assert!(!stopped(&signal), "a shared fetch goes on while one reader waits");
        lock(&alive).clear();
        flights.sweep(is_alive);
        assert!(stopped(&signal) && stopped(&other_signal));

        lock(&alive).push(12);
        let later = flights.wait(key(1), 12);
        let later_signal = flights.stop_signal(Some(&later));
        flights.sweep(is_alive);
        assert!(!stopped(&later_signal), "a new reader's fetch is not the abandoned one");
        drop((first, second, other));
        assert!(lock(&flights.by_key).contains_key(&key(1)));
        drop(later);
        assert!(lock(&flights.by_key).is_empty(), "no waiter, no flight");
    }

    #[test]
    fn a_reader_with_a_fatal_signal_pending_waits_no_more() {
        let status = |state: &str, sigpnd: &str| {
            format!("Name:\tcat\nState:\t{state}\nSigPnd:\t{sigpnd}\nShdPnd:\t0000000000000000\n")
        };
        assert!(!is_dying(&status("D (disk sleep)", "0000000000000000")));
        assert!(is_dying(&status("D (disk sleep)", "0000000000000100")));
        assert!(is_dying(&status("Z (zombie)", "0000000000000000")));
        assert!(!is_dying(&status("S (sleeping)", "0000000000004000")), "SIGTERM alone");
        assert!(waits_still(std::process::id()));
        assert!(!waits_still(u32::MAX - 1));
    }

    #[test]
    fn shutdown_stops_fetches_nobody_waits_on() {
        let flights = Arc::new(Flights::new());
        let signal = flights.stop_signal(None);
        flights.shut_down();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert_eq!(runtime.block_on(signal.stopped()), Stopped::Shutdown);
    }
}
