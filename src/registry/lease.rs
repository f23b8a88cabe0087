//! Leases: the markers that keep `gc` and writers apart, renewed while their holder works.
//!
//! A lease is an object `leases/<id>.json` (a writer) or `gc/<id>.json` (a running gc) that says
//! who holds it: host name, boot id, pid namespace, pid and process start time. A heartbeat task
//! renews it every `LeaseTiming::renew` by creating a fresh object and then deleting the previous
//! one (create-only writes, as everywhere in the registry), so one is always there while the holder
//! lives. Whether a lease is live:
//! - held by a process of this machine (same boot id and pid namespace): live exactly while that
//!   process runs (same pid, same start time), whatever its age, so a dead writer never blocks gc
//!   and a stopped or slow one is never swept from under;
//! - otherwise: live while younger than `LeaseTiming::ttl`, measured on the store's clock (against
//!   the marker the reader has just written), so clock skew between machines does not matter.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::Store;

/// How long leases of other machines count without renewal, and how often holders renew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    pub ttl: Duration,
    pub renew: Duration,
}

impl Default for LeaseTiming {
    fn default() -> Self {
        LeaseTiming { ttl: Duration::from_secs(300), renew: Duration::from_secs(30) }
    }
}

/// Who holds a lease: enough to tell, on the same machine, whether that process still runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// `host:pid`, for humans.
    pub writer: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub boot_id: String,
    #[serde(default)]
    pub pid_ns: String,
    #[serde(default)]
    pub pid: u32,
    /// Start time of the process in clock ticks since boot (`/proc/<pid>/stat` field 22).
    #[serde(default)]
    pub start: u64,
    pub time: DateTime<Utc>,
}

struct Machine {
    host: String,
    boot_id: String,
    pid_ns: String,
}

fn machine() -> &'static Machine {
    static MACHINE: OnceLock<Machine> = OnceLock::new();
    MACHINE.get_or_init(|| Machine {
        host: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default(),
        boot_id: std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|b| b.trim().to_owned())
            .unwrap_or_default(),
        pid_ns: std::fs::read_link("/proc/self/ns/pid")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
    })
}

/// The start time of a running process, `None` when there is no such process.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses; fields after it are plain.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl Holder {
    /// This process.
    pub fn me() -> Holder {
        let m = machine();
        let pid = std::process::id();
        Holder {
            writer: format!("{}:{pid}", m.host),
            host: m.host.clone(),
            boot_id: m.boot_id.clone(),
            pid_ns: m.pid_ns.clone(),
            pid,
            start: process_start(pid).unwrap_or_default(),
            time: Utc::now(),
        }
    }

    /// Whether the holder ran on this machine (this boot, this pid namespace), so that its
    /// process can be looked up.
    pub fn is_local(&self) -> bool {
        let m = machine();
        !m.boot_id.is_empty()
            && self.boot_id == m.boot_id
            && !m.pid_ns.is_empty()
            && self.pid_ns == m.pid_ns
    }

    /// Whether the holder is a process of this machine that still runs.
    pub fn is_running_here(&self) -> bool {
        self.is_local() && process_start(self.pid) == Some(self.start)
    }
}

/// What the registry tracks of the leases its guards hold, so that an interrupted command can
/// remove them before it exits.
pub(crate) type HeldLeases = Arc<Mutex<HashSet<String>>>;

struct Shared {
    key: Mutex<String>,
    renewed: Mutex<DateTime<Utc>>,
    stop: tokio::sync::Notify,
}

/// A lease held until this guard is released or dropped; a background task renews it meanwhile.
/// Dropping the guard stops the renewal and deletes the lease in the background; `release`
/// does the same and waits for it.
pub struct LeaseGuard {
    shared: Arc<Shared>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    store: Store,
    dir: &'static str,
    timing: LeaseTiming,
    held: HeldLeases,
}

impl std::fmt::Debug for LeaseGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseGuard").field("key", &self.key()).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn new_key(dir: &str) -> String {
    super::layout::lease(dir, &super::unique_id())
}

pub(crate) fn body() -> bytes::Bytes {
    serde_json::to_vec(&Holder::me()).unwrap_or_default().into()
}

impl LeaseGuard {
    /// Starts renewing a lease already created under `key`.
    pub(crate) fn start(
        store: Store,
        dir: &'static str,
        key: String,
        timing: LeaseTiming,
        held: HeldLeases,
    ) -> LeaseGuard {
        lock(&held).insert(key.clone());
        let shared = Arc::new(Shared {
            key: Mutex::new(key),
            renewed: Mutex::new(Utc::now()),
            stop: tokio::sync::Notify::new(),
        });
        let task = {
            let (shared, store, held) = (shared.clone(), store.clone(), held.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(timing.renew) => {}
                        () = shared.stop.notified() => return,
                    }
                    // Stopping waits for a renewal in progress, so no new lease is left behind.
                    if let Err(e) = renew(&store, dir, &shared, &held).await {
                        tracing::warn!("could not renew the lease {}: {e}", lock(&shared.key));
                    }
                }
            })
        };
        LeaseGuard { shared, heartbeat: Some(task), store, dir, timing, held }
    }

    /// The key of the lease object now.
    pub fn key(&self) -> String {
        lock(&self.shared.key).clone()
    }

    /// Whether the lease has been renewed within its TTL all along, so no other machine can
    /// have taken it for stale (a process suspended for longer cannot tell otherwise).
    pub fn is_intact(&self) -> bool {
        let renewed = *lock(&self.shared.renewed);
        let ttl = chrono::Duration::from_std(self.timing.ttl).unwrap_or(chrono::Duration::MAX);
        Utc::now() - renewed < ttl
    }

    /// Renews the lease now.
    pub async fn renew(&self) -> Result<(), crate::store::StoreError> {
        renew(&self.store, self.dir, &self.shared, &self.held).await
    }

    /// Stops the renewal and deletes the lease.
    pub async fn release(mut self) {
        self.shared.stop.notify_one();
        if let Some(task) = self.heartbeat.take() {
            let _ = task.await;
        }
        let key = self.key();
        delete(&self.store, &key, &self.held).await;
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let Some(task) = self.heartbeat.take() else { return };
        self.shared.stop.notify_one();
        let (store, shared, held) = (self.store.clone(), self.shared.clone(), self.held.clone());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = task.await;
                let key = lock(&shared.key).clone();
                delete(&store, &key, &held).await;
            });
        }
    }
}

async fn renew(
    store: &Store,
    dir: &str,
    shared: &Shared,
    held: &HeldLeases,
) -> Result<(), crate::store::StoreError> {
    let fresh = new_key(dir);
    lock(held).insert(fresh.clone());
    if let Err(e) = store.put_create(&fresh, body()).await {
        lock(held).remove(&fresh);
        return Err(e);
    }
    let old = std::mem::replace(&mut *lock(&shared.key), fresh);
    *lock(&shared.renewed) = Utc::now();
    delete(store, &old, held).await;
    Ok(())
}

pub(crate) async fn delete(store: &Store, key: &str, held: &HeldLeases) {
    match store.delete(key).await {
        Ok(()) => {
            lock(held).remove(key);
        }
        Err(e) => tracing::warn!("could not remove {key}: {e}"),
    }
}

/// Leases in one directory, sorted into live and stale.
#[derive(Debug, Default)]
pub struct Census {
    /// `key (holder)` of every live lease, for messages.
    pub live: Vec<String>,
    pub stale: Vec<String>,
}

/// Sorts the leases in `dir` (other than `own`) into live and stale; `now` is the store's clock.
pub async fn census(
    store: &Store,
    dir: &str,
    own: &str,
    now: DateTime<Utc>,
    timing: LeaseTiming,
) -> Result<Census, crate::store::StoreError> {
    let listed = store.list(dir).await?;
    let ttl = chrono::Duration::from_std(timing.ttl).unwrap_or(chrono::Duration::MAX);
    let mut out = Census::default();
    for l in listed.into_iter().filter(|l| l.key != own) {
        let holder = match store.get_opt(&l.key).await? {
            Some(bytes) => serde_json::from_slice::<Holder>(&bytes).ok(),
            // Released while we looked.
            None => continue,
        };
        let live = match &holder {
            Some(h) if h.is_local() => h.is_running_here(),
            _ => now - l.last_modified < ttl,
        };
        match live {
            true => out.live.push(match holder {
                Some(h) => format!("{} ({})", l.key, h.writer),
                None => l.key,
            }),
            false => out.stale.push(l.key),
        }
    }
    Ok(out)
}
