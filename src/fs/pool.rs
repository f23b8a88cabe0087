//! A fixed pool of plain threads for blocking jobs (downloads), optionally with a bound on how
//! many jobs may wait.
//!
//! Plain threads rather than tokio's blocking pool: the jobs block on the runtime themselves
//! (`Handle::block_on`), and the pool's size is the number of downloads in flight.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// Threads end when the pool is dropped and the queue has run dry.
#[derive(Debug)]
pub struct Pool {
    queue: Mutex<mpsc::Sender<Job>>,
    /// Jobs queued and not yet started.
    waiting: Arc<AtomicUsize>,
    /// Jobs queued or running; read only by tests, which wait for readahead to settle.
    unfinished: Arc<AtomicUsize>,
}

impl Pool {
    /// Starts `threads` threads named `<name>-<i>`.
    pub fn start(name: &str, threads: usize) -> io::Result<Pool> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let waiting = Arc::new(AtomicUsize::new(0));
        let unfinished = Arc::new(AtomicUsize::new(0));
        for i in 0..threads {
            let (rx, waiting, unfinished) = (rx.clone(), waiting.clone(), unfinished.clone());
            std::thread::Builder::new().name(format!("{name}-{i}")).spawn(move || {
                loop {
                    // The lock is held only while waiting for the next job.
                    let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    match job {
                        Ok(job) => {
                            waiting.fetch_sub(1, Ordering::Relaxed);
                            job();
                            unfinished.fetch_sub(1, Ordering::Release);
                        }
                        Err(mpsc::RecvError) => return,
                    }
                }
            })?;
        }
        Ok(Pool { queue: Mutex::new(tx), waiting, unfinished })
    }

    /// Runs `job` on the pool, or here if the pool's threads are gone.
    pub fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        if let Err(mpsc::SendError(job)) = self.send(Box::new(job)) {
            job();
        }
    }

    /// Queues `job` unless `max_waiting` jobs already wait; returns whether it was queued.
    /// For work that is only worth doing soon (prefetching), never for replies.
    pub fn try_spawn(&self, max_waiting: usize, job: impl FnOnce() + Send + 'static) -> bool {
        if self.waiting.load(Ordering::Relaxed) >= max_waiting {
            return false;
        }
        self.send(Box::new(job)).is_ok()
    }

    fn send(&self, job: Job) -> Result<(), mpsc::SendError<Job>> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        self.unfinished.fetch_add(1, Ordering::Relaxed);
        let sent = self.queue.lock().unwrap_or_else(|p| p.into_inner()).send(job);
        if sent.is_err() {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            self.unfinished.fetch_sub(1, Ordering::Relaxed);
        }
        sent
    }

    /// Jobs queued and not yet started.
    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Whether every job handed to the pool has finished (tests wait for readahead with it).
    #[cfg(test)]
    pub fn is_idle(&self) -> bool {
        self.unfinished.load(Ordering::Acquire) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::sync::mpsc::channel;

    #[test]
    fn runs_jobs_on_its_threads() {
        let pool = Pool::start("t", 3).unwrap();
        let (tx, rx) = channel();
        for i in 0..30 {
            let tx = tx.clone();
            pool.spawn(move || {
                tx.send((i, std::thread::current().name().map(String::from))).unwrap()
            });
        }
        let mut got: Vec<_> = (0..30).map(|_| rx.recv().unwrap()).collect();
        got.sort();
        assert_eq!(got.iter().map(|(i, _)| *i).collect::<Vec<_>>(), (0..30).collect::<Vec<_>>());
        assert!(got.iter().all(|(_, name)| name.as_deref().is_some_and(|n| n.starts_with("t-"))));
    }

    #[test]
    fn try_spawn_refuses_beyond_the_bound() {
        let pool = Pool::start("t", 1).unwrap();
        // Occupy the only thread until released.
        let gate = Arc::new(Barrier::new(2));
        let started = Arc::new(Barrier::new(2));
        let (g, s) = (gate.clone(), started.clone());
        pool.spawn(move || {
            s.wait();
            g.wait();
        });
        started.wait();
        let ran = Arc::new(AtomicUsize::new(0));
        let queued: Vec<bool> = (0..5)
            .map(|_| {
                let ran = ran.clone();
                pool.try_spawn(2, move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        assert_eq!(queued, [true, true, false, false, false]);
        assert_eq!(pool.waiting(), 2);
        gate.wait();
        drop(pool);
        // Dropping the pool lets queued jobs finish; give the thread a moment to drain them.
        for _ in 0..200 {
            if ran.load(Ordering::SeqCst) == 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(ran.load(Ordering::SeqCst), 2);
    }
}
