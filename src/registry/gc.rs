//! Leases and garbage collection: writers and `gc` exclude each other through lease objects;
//! `gc` proves every collection's state before it deletes what no live version uses.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;

use super::lease::{self, LeaseGuard};
use super::{CollectionState, Registry, RegistryError, entry_blob_key, layout, log};
use crate::manifest::Manifest;

/// What `gc` removed.
#[derive(Debug, Default, Clone)]
pub struct GcReport {
    pub blobs_deleted: u64,
    pub bytes_deleted: u64,
    pub manifests_deleted: u64,
    pub kept_young: u64,
    /// Temporary objects of interrupted or killed writers (`…#…` names), counted in bytes too.
    pub temp_deleted: u64,
    /// Records of parallel groups' finished rounds (`parts/`), all but each group's newest.
    pub rounds_deleted: u64,
    /// Parts of multipart uploads through `artfs serve` that were abandoned (counted in bytes).
    pub upload_parts_deleted: u64,
    /// Drafts of `artfs serve` (W&B's `createArtifact`) never committed and not written to for
    /// longer than the grace period: their records went with them.
    pub drafts_deleted: u64,
    /// A dry run: the counts and keys are what a real run would delete, and nothing was.
    pub dry_run: bool,
    /// Every key deleted (or, in a dry run, to be deleted), in the order of deletion.
    pub keys: Vec<String>,
    /// `entity/project/name:vN` of the versions whose TTL has run out (past the grace period):
    /// gc reclaims their manifests and the blobs only they used.
    pub expired_versions: Vec<String>,
}

/// One pass of gc, decided completely before anything is deleted: a dry run reports it, a real
/// run executes it, so the two cannot disagree.
#[derive(Debug, Default)]
struct GcPlan {
    report: GcReport,
    doomed: Vec<Doomed>,
}

#[derive(Debug)]
enum Doomed {
    Object(String),
    /// A writer's temporary object (`…#…`), which the store deletes its own way.
    Temporary(String),
}

impl GcPlan {
    fn doom(&mut self, d: Doomed) {
        let key = match &d {
            Doomed::Object(k) | Doomed::Temporary(k) => k.clone(),
        };
        self.report.keys.push(key);
        self.doomed.push(d);
    }
}

impl Registry {
    /// Takes a writer's lease, so that `gc` deletes nothing a write in progress is about to
    /// reference; it is renewed in the background until the guard is released or dropped.
    /// Refuses while gc runs.
    pub async fn lease(&self) -> Result<LeaseGuard, RegistryError> {
        let guard = self.hold(layout::LEASES).await?;
        // Write first, then look: of a writer and a gc running at once, at least one sees the other.
        let census = async {
            let now = self.store_now(&guard.key()).await?;
            Ok::<_, RegistryError>(
                lease::census(&self.store, layout::GC, "", now, self.timing).await?,
            )
        };
        let gc = match census.await {
            Ok(gc) => gc,
            Err(e) => {
                guard.release().await;
                return Err(e);
            }
        };
        if !gc.live.is_empty() {
            guard.release().await;
            return Err(RegistryError::GcRunning {
                url: self.store.url().to_owned(),
                markers: gc.live,
            });
        }
        Ok(guard)
    }

    /// The store's clock: when `key`, just written, was last modified.
    pub(super) async fn store_now(
        &self,
        key: &str,
    ) -> Result<chrono::DateTime<Utc>, RegistryError> {
        Ok(self.store.modified(key).await?.unwrap_or_else(Utc::now))
    }

    pub(super) async fn hold(&self, dir: &'static str) -> Result<LeaseGuard, RegistryError> {
        let key = lease::new_key(dir);
        self.store.put_create(&key, lease::body()).await?;
        Ok(LeaseGuard::start(self.store.clone(), dir, key, self.timing, self.held.clone()))
    }

    /// After Ctrl-C or SIGTERM: stops local uploads, removes their temporary files and the
    /// leases this process holds, so an interrupted command leaves nothing behind.
    pub async fn interrupt(&self) {
        self.store.cancel_uploads().await;
        let keys: Vec<String> =
            self.held.lock().map(|h| h.iter().cloned().collect()).unwrap_or_default();
        for key in keys {
            lease::delete(&self.store, &key, &self.held).await;
        }
    }

    /// Deletes blobs and manifests no live version (nor unfinished part, nor uncommitted draft's
    /// uploaded manifest) uses and that are older than `grace`, and
    /// temporary objects that interrupted writers left behind. Fails safe: anything it cannot
    /// read completely, or that looks wrong, means nothing is deleted.
    pub async fn gc(&self, grace: Duration) -> Result<GcReport, RegistryError> {
        let marker = self.hold(layout::GC).await?;
        let result = async {
            let now = self.store_now(&marker.key()).await?;
            let writers = self.refuse_live_writers(now).await?;
            let plan = self.gc_plan(grace).await?;
            let report = self.execute(plan).await?;
            // Leases of dead writers are only clutter now.
            for key in writers.stale {
                self.store.delete(&key).await?;
            }
            let markers =
                lease::census(&self.store, layout::GC, &marker.key(), now, self.timing).await?;
            for key in markers.stale {
                self.store.delete(&key).await?;
            }
            Ok(report)
        }
        .await;
        marker.release().await;
        result
    }

    /// What [`Registry::gc`] would delete now, deleting nothing: the same proof and plan, not
    /// executed. It writes no gc marker, so a preview never holds up a writer (one that starts
    /// meanwhile only makes the preview stale); live writers fail it as they fail gc.
    pub async fn gc_dry_run(&self, grace: Duration) -> Result<GcReport, RegistryError> {
        self.refuse_live_writers(Utc::now()).await?;
        let mut report = self.gc_plan(grace).await?.report;
        report.dry_run = true;
        Ok(report)
    }

    async fn refuse_live_writers(
        &self,
        now: chrono::DateTime<Utc>,
    ) -> Result<lease::Census, RegistryError> {
        let writers = lease::census(&self.store, layout::LEASES, "", now, self.timing).await?;
        if !writers.live.is_empty() {
            return Err(RegistryError::WritersLogging {
                url: self.store.url().to_owned(),
                writers: writers.live,
            });
        }
        Ok(writers)
    }

    async fn execute(&self, plan: GcPlan) -> Result<GcReport, RegistryError> {
        for d in &plan.doomed {
            match d {
                Doomed::Object(key) => self.store.delete(key).await?,
                Doomed::Temporary(key) => self.store.delete_temporary(key).await?,
            }
        }
        Ok(plan.report)
    }

    /// Plans to delete the parts of multipart uploads that nobody has added to for longer than the grace
    /// period: a completed upload removes its own parts, so what is left is an upload that
    /// failed its check or was abandoned (the SDK uploads files from 2 GiB in parts). An upload
    /// still receiving parts is kept as a whole.
    async fn plan_uploads(
        &self,
        cutoff: chrono::DateTime<Utc>,
        plan: &mut GcPlan,
    ) -> Result<(), RegistryError> {
        let listed = self.store.list(layout::UPLOADS).await?;
        let mut newest: std::collections::HashMap<&str, chrono::DateTime<Utc>> = Default::default();
        for l in &listed {
            let upload = layout::upload_of(&l.key);
            let at = newest.entry(upload).or_insert(l.last_modified);
            *at = (*at).max(l.last_modified);
        }
        for l in &listed {
            if newest[layout::upload_of(&l.key)] > cutoff {
                continue;
            }
            plan.doom(Doomed::Object(l.key.clone()));
            plan.report.upload_parts_deleted += 1;
            plan.report.bytes_deleted += l.size;
        }
        Ok(())
    }

    /// What gc deletes: everything is read, and the plan complete, before anything is deleted.
    async fn gc_plan(&self, grace: Duration) -> Result<GcPlan, RegistryError> {
        let cutoff =
            Utc::now() - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        // Versions still being written: a parallel group's parts and `artfs serve` drafts. One
        // whose manifest is gone cannot be finished anyway, so it does not stop gc.
        let parts = self.parts_census(cutoff).await?;
        let mut pending: HashSet<String> = parts.open_manifests.into_iter().collect();
        let drafts = self.draft_census(cutoff).await?;
        pending.extend(drafts.pending_manifests);
        let (live_manifests, expired) = self.live_manifests(cutoff, &pending).await?;
        pending.retain(|k| !live_manifests.contains(k));
        let live_blobs = self.live_blobs(&live_manifests, &pending).await?;
        let mut plan = GcPlan::default();
        plan.report.expired_versions = expired;
        self.plan_unreferenced(cutoff, &live_manifests, &pending, &live_blobs, &mut plan).await?;
        for key in parts.deletable {
            plan.doom(Doomed::Object(key));
        }
        plan.report.rounds_deleted = parts.rounds;
        self.plan_uploads(cutoff, &mut plan).await?;
        for key in drafts.abandoned {
            plan.doom(Doomed::Object(key));
        }
        plan.report.drafts_deleted = drafts.drafts_abandoned;
        plan.report.bytes_deleted += drafts.abandoned_bytes;
        Ok(plan)
    }

    /// The manifests of every version some collection's proven log keeps, and the names of the
    /// versions whose TTL ran out.
    async fn live_manifests(
        &self,
        cutoff: chrono::DateTime<Utc>,
        pending: &HashSet<String>,
    ) -> Result<(HashSet<String>, Vec<String>), RegistryError> {
        // Only directories belong above the logs: a file there may be a directory of
        // collections that was replaced, whose versions gc could then not see.
        let level = |prefix: String| async move {
            let (dirs, files) = self.store.list_level(&prefix).await?;
            match files.first() {
                Some(file) => Err(RegistryError::Unsafe(format!(
                    "{file} is a file where only directories of collections belong; move it away, then run gc again"
                ))),
                None => Ok(dirs),
            }
        };
        let entities = level(layout::COLLECTIONS.into()).await?;
        if entities.is_empty()
            && self.store.list(layout::MANIFESTS).await?.iter().any(|l| !pending.contains(&l.key))
        {
            return Err(RegistryError::Unsafe(
                "the registry has manifests but no collections (is `collections` a directory?)"
                    .into(),
            ));
        }
        let (mut live_manifests, mut expired) = (HashSet::new(), Vec::new());
        for entity in entities {
            for project in level(layout::projects_dir(&entity)).await? {
                let collections = layout::collections_dir(&entity, &project);
                let mut states = std::collections::BTreeMap::new();
                for name in level(collections.clone()).await? {
                    // Whatever its name: a directory artfs would not create may still hold a log.
                    let prefix = format!("{collections}/{name}");
                    let state: CollectionState = self.prove_log(&prefix, log::difference).await?;
                    states.insert(name, state);
                }
                let (live, gone) = live_in_project(&states, cutoff);
                live_manifests.extend(live);
                let scope = format!("{entity}/{project}");
                expired.extend(gone.into_iter().map(|v| format!("{scope}/{v}")));
            }
        }
        Ok((live_manifests, expired))
    }

    /// The blobs the live and pending manifests name; a live manifest that is missing or
    /// unreadable stops gc.
    async fn live_blobs(
        &self,
        live_manifests: &HashSet<String>,
        pending: &HashSet<String>,
    ) -> Result<HashSet<String>, RegistryError> {
        let mut live_blobs = HashSet::new();
        for key in live_manifests.iter().chain(pending) {
            let Some(bytes) = self.store.get_opt(key).await? else {
                if pending.contains(key) {
                    continue;
                }
                return Err(RegistryError::Unsafe(format!("the live manifest {key} is missing")));
            };
            let m = Manifest::from_json(&bytes).map_err(|e| {
                RegistryError::Unsafe(format!("the live manifest {key} cannot be read: {e}"))
            })?;
            live_blobs.extend(m.contents.values().filter_map(entry_blob_key));
        }
        Ok(live_blobs)
    }

    /// Plans to delete the blobs, sidecars, manifests and temporary objects nothing live names and
    /// that are older than the cutoff.
    async fn plan_unreferenced(
        &self,
        cutoff: chrono::DateTime<Utc>,
        live_manifests: &HashSet<String>,
        pending: &HashSet<String>,
        live_blobs: &HashSet<String>,
        plan: &mut GcPlan,
    ) -> Result<(), RegistryError> {
        let live_sidecars: HashSet<String> =
            live_blobs.iter().map(|b| layout::chunk_sidecar(b)).collect();
        let (blobs, sidecars, manifests) = (
            self.store.list(layout::BLOBS).await?,
            self.store.list(layout::CHUNKS).await?,
            self.store.list(layout::MANIFESTS).await?,
        );
        let mut temps = Vec::new();
        // `uploads/`: parts an `artfs serve` was writing when it was killed.
        for dir in [layout::BLOBS, layout::CHUNKS, layout::MANIFESTS, layout::UPLOADS] {
            temps.extend(self.store.list_temporary(dir).await?);
        }

        let report = &mut plan.report;
        let mut doomed = Vec::new();
        for l in blobs {
            if live_blobs.contains(&l.key) {
                continue;
            }
            if l.last_modified > cutoff {
                report.kept_young += 1;
                continue;
            }
            doomed.push(Doomed::Object(l.key));
            report.blobs_deleted += 1;
            report.bytes_deleted += l.size;
        }
        for l in sidecars {
            if live_sidecars.contains(&l.key) || l.last_modified > cutoff {
                continue;
            }
            doomed.push(Doomed::Object(l.key));
        }
        for l in manifests {
            if live_manifests.contains(&l.key) || pending.contains(&l.key) {
                continue;
            }
            if l.last_modified > cutoff {
                report.kept_young += 1;
                continue;
            }
            doomed.push(Doomed::Object(l.key));
            report.manifests_deleted += 1;
        }
        // No writer holds a lease now, so no temporary object is being written: they are what
        // interrupted or killed writers left (the grace period still applies).
        for l in temps {
            if l.last_modified > cutoff {
                report.kept_young += 1;
                continue;
            }
            doomed.push(Doomed::Temporary(l.key));
            report.temp_deleted += 1;
            report.bytes_deleted += l.size;
        }
        for d in doomed {
            plan.doom(d);
        }
        Ok(())
    }
}

/// The manifests the proven logs of one project keep live at `cutoff` (now less the grace
/// period, so a reader whose clock lags never loses a version it still shows): versions not
/// expired by then, and a renamed-away collection's versions until the log it moved to has
/// adopted them. Also `name:vN` of the versions expired by then.
fn live_in_project(
    states: &std::collections::BTreeMap<String, CollectionState>,
    cutoff: chrono::DateTime<Utc>,
) -> (Vec<String>, Vec<String>) {
    let (mut out, mut expired) = (Vec::new(), Vec::new());
    for (name, state) in states {
        let adopted = state
            .moved_to
            .as_ref()
            .and_then(|to| states.get(to))
            .is_some_and(|t| t.adopted_from.as_deref() == Some(name.as_str()));
        if adopted {
            continue;
        }
        let live = state.clone().live(cutoff);
        out.extend(live.versions.values().map(|v| v.manifest.clone()));
        let gone = state.versions.keys().filter(|v| !live.versions.contains_key(v));
        expired.extend(gone.map(|v| format!("{name}:v{v}")));
    }
    (out, expired)
}
