//! Links: a logged version made a member of a portfolio (W&B's `ArtifactPortfolio`) under the
//! portfolio's own version number and aliases, without copying anything.
//!
//! The portfolio's commit log is the truth (`Op::Link`, `Op::Delete`): its record names the
//! source's manifest, so every reader (mount, `get`, serve) reads the source's bytes through it,
//! and `gc` keeps that manifest live while the link is. The `links/` index (written before the
//! link's commit, never removed) only says where to look for a version's links; a reader checks
//! each hit against the portfolio's state, so a stale hit is ignored.
//!
//! Semantics, as W&B's: linking the same version again makes no new link (its aliases and
//! `latest` move to the existing one); unlinking removes only the link; deleting the source
//! version removes its links.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::directory::REGISTRY_PREFIX;
use super::log::LinkSource;
use super::{CollectionState, Op, Registry, RegistryError, layout};
use crate::names::{CollectionPath, LATEST, Selector, validate_user_alias};

/// One link of a version, as its portfolio holds it now.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub portfolio: CollectionPath,
    pub version: u32,
    pub aliases: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// The version a link points to, as a path.
pub fn source_path(s: &LinkSource) -> Result<CollectionPath, RegistryError> {
    Ok(CollectionPath::new(&s.entity, &s.project, &s.name)?)
}

fn link_source(c: &CollectionPath, version: u32) -> LinkSource {
    LinkSource {
        entity: c.entity.clone(),
        project: c.project.clone(),
        name: c.name.clone(),
        version,
    }
}

impl Registry {
    /// Links `source`'s `version` into `portfolio` (created on first use) with `aliases`;
    /// returns the link as the portfolio holds it. A link to a link links its source.
    pub async fn link(
        &self,
        source: &CollectionPath,
        version: u32,
        portfolio: &CollectionPath,
        aliases: &[String],
    ) -> Result<Link, RegistryError> {
        for a in aliases {
            if a != LATEST {
                validate_user_alias(a)?;
            }
        }
        let aliases: Vec<String> = aliases.iter().filter(|a| *a != LATEST).cloned().collect();
        let state = self.existing_state(source).await?;
        let resolved = Self::resolve_in(source, &state, &Selector::Version(version))?;
        if let Some(s) = &resolved.record.source {
            let inner = source_path(s)?;
            return Box::pin(self.link(&inner, s.version, portfolio, &aliases)).await;
        }
        if portfolio == source {
            return Err(RegistryError::Invalid {
                name: portfolio.to_string(),
                reason: "a version cannot be linked into its own collection".into(),
            });
        }
        let src = link_source(source, version);
        // The index first: a reader may then find a link it does not need, never miss one.
        let edge = layout::link_edge(source, version, portfolio);
        self.store.put_create(&edge, bytes::Bytes::from_static(b"{}")).await?;
        let name = portfolio.to_string();
        let (state, linked) = self
            .commit(portfolio, |s: &CollectionState| {
                if !s.portfolio && s.next_version > 0 {
                    return Err(RegistryError::Invalid {
                        name: name.clone(),
                        reason: "it is a collection of logged versions, not a portfolio of \
                                 links; link into another name"
                            .into(),
                    });
                }
                if let Some(existing) = s.artifact_type.as_deref()
                    && existing != resolved.artifact_type
                {
                    return Err(RegistryError::TypeMismatch {
                        name: name.clone(),
                        existing: existing.to_owned(),
                        requested: resolved.artifact_type.clone(),
                    });
                }
                if let Some(v) = s.link_to(&src) {
                    let version = v.version;
                    let add: Vec<String> = std::iter::once(LATEST.to_owned())
                        .chain(aliases.iter().cloned())
                        .filter(|a| s.aliases.get(a) != Some(&version))
                        .collect();
                    let op =
                        (!add.is_empty()).then_some(Op::Aliases { version, add, remove: vec![] });
                    return Ok((op, version));
                }
                let r = &resolved.record;
                let op = Op::Link {
                    version: s.next_version,
                    source: src.clone(),
                    digest: r.digest.clone(),
                    manifest: r.manifest.clone(),
                    artifact_type: resolved.artifact_type.clone(),
                    size: r.size,
                    file_count: r.file_count,
                    aliases: aliases.clone(),
                };
                Ok((Some(op), s.next_version))
            })
            .await?;
        link_in(portfolio, &state, linked).ok_or_else(|| RegistryError::UnknownVersion {
            name: portfolio.to_string(),
            version: linked,
            available: Vec::new(),
        })
    }

    /// Removes the link to `source`'s `version` from `portfolio`; false when there was none.
    /// The source is untouched.
    pub async fn unlink(
        &self,
        source: &CollectionPath,
        version: u32,
        portfolio: &CollectionPath,
    ) -> Result<bool, RegistryError> {
        let src = link_source(source, version);
        let (_, removed) = self
            .commit(portfolio, |s: &CollectionState| {
                Ok(match s.link_to(&src) {
                    Some(v) => (Some(Op::Delete { version: v.version }), true),
                    None => (None, false),
                })
            })
            .await?;
        Ok(removed)
    }

    /// The versions of `c` past their TTL that a registry links: W&B does not expire a version
    /// linked into a registry while the link lives. A collection with no version past its TTL
    /// costs nothing here; one with some costs one listing of its index, plus a read of each
    /// registry portfolio it names.
    pub(super) async fn linked_into_registries(
        &self,
        c: &CollectionPath,
        state: &CollectionState,
    ) -> Result<BTreeSet<u32>, RegistryError> {
        let past: BTreeSet<u32> = state.past_ttl(Utc::now()).into_iter().collect();
        let mut out = BTreeSet::new();
        if past.is_empty() {
            return Ok(out);
        }
        for l in self.store.list(&layout::links_of_collection(c)).await? {
            let Some((version, portfolio)) = version_edge(c, &l.key) else { continue };
            if !past.contains(&version) || !portfolio.project.starts_with(REGISTRY_PREFIX) {
                continue;
            }
            // The index is never pruned: only the portfolio's log says the link still lives.
            let state: CollectionState =
                self.load_log(&layout::collection(&portfolio), CollectionState::default()).await?;
            if state.link_to(&link_source(c, version)).is_some() {
                out.insert(version);
            }
        }
        Ok(out)
    }

    /// The live links of `source`'s `version`, by portfolio.
    pub async fn links_of(
        &self,
        source: &CollectionPath,
        version: u32,
    ) -> Result<Vec<Link>, RegistryError> {
        let prefix = layout::links_of_version(source, version);
        let src = link_source(source, version);
        let mut out = Vec::new();
        for l in self.store.list(&prefix).await? {
            let Some(portfolio) = portfolio_of_edge(&prefix, &l.key) else { continue };
            // The portfolio's log as it stands (not `state`, which asks for links itself).
            let state: CollectionState =
                self.load_log(&layout::collection(&portfolio), CollectionState::default()).await?;
            if let Some(v) = state.link_to(&src) {
                out.extend(link_in(&portfolio, &state, v.version));
            }
        }
        out.sort_by_key(|l| l.portfolio.to_string());
        Ok(out)
    }

    /// Removes every link of a version that is gone (W&B deletes an artifact's memberships
    /// with it).
    pub(super) async fn unlink_all(
        &self,
        source: &CollectionPath,
        version: u32,
    ) -> Result<(), RegistryError> {
        for link in self.links_of(source, version).await? {
            self.unlink(source, version, &link.portfolio).await?;
        }
        Ok(())
    }
}

fn link_in(portfolio: &CollectionPath, state: &CollectionState, version: u32) -> Option<Link> {
    let r = state.versions.get(&version)?;
    Some(Link {
        portfolio: portfolio.clone(),
        version,
        aliases: state.aliases_of(version),
        created_at: r.created_at,
    })
}

/// The version of `c` and the portfolio an index key below `c`'s links names.
fn version_edge(c: &CollectionPath, key: &str) -> Option<(u32, CollectionPath)> {
    let prefix = layout::links_of_collection(c);
    let version: u32 =
        key.strip_prefix(&prefix)?.strip_prefix('/')?.split('/').next()?.parse().ok()?;
    Some((version, portfolio_of_edge(&layout::links_of_version(c, version), key)?))
}

/// The portfolio an index key below `prefix/` names (foreign objects there are ignored).
fn portfolio_of_edge(prefix: &str, key: &str) -> Option<CollectionPath> {
    let rest = key.strip_prefix(prefix)?.strip_prefix('/')?;
    let mut parts = rest.split('/');
    let (e, p, n) = (parts.next()?, parts.next()?, parts.next()?);
    parts.next().is_none().then_some(())?;
    CollectionPath::new(e, p, n).ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::registry::testing::TempRegistry;

    fn path(name: &str) -> CollectionPath {
        CollectionPath::new("e", "p", name).unwrap()
    }

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    /// A registry where `ds` has v0 and v1, and the portfolio `pf` to link them into.
    fn two_versions() -> (TempRegistry, CollectionPath, CollectionPath) {
        let t = TempRegistry::default();
        let (ds, pf) = (path("ds"), path("pf"));
        t.log(&ds, &[("a", b"zero")], &[], None);
        t.log(&ds, &[("a", b"one")], &[], None);
        (t, ds, pf)
    }

    #[test]
    fn a_link_reads_its_source_and_linking_again_makes_no_second_link() {
        let (t, ds, pf) = two_versions();
        let r = &t.registry;
        t.runtime.block_on(async {
            let first = r.link(&ds, 0, &pf, &strings(&["prod"])).await.unwrap();
            assert_eq!((first.version, first.aliases.clone()), (0, strings(&["latest", "prod"])));
            let again = r.link(&ds, 0, &pf, &strings(&["best"])).await.unwrap();
            assert_eq!(again.version, 0);
            assert_eq!(again.aliases, strings(&["latest", "best", "prod"]));
            assert_eq!(r.link(&ds, 1, &pf, &[]).await.unwrap().version, 1);
            // The link names the source's manifest: reads through it are the source's bytes.
            let link = r.resolve(&pf, &Selector::Alias("prod".into())).await.unwrap();
            let source = r.resolve(&ds, &Selector::Version(0)).await.unwrap();
            assert_eq!(link.record.manifest, source.record.manifest);
            assert_eq!(link.record.digest, source.record.digest);
            assert_eq!(
                r.resolve(&pf, &Selector::Alias(LATEST.into())).await.unwrap().record.version,
                1
            );
            // A link to a link links its source.
            let other = path("other");
            let via = r.link(&pf, 1, &other, &[]).await.unwrap();
            let state = r.state(&other).await.unwrap();
            assert_eq!(state.versions[&via.version].source, Some(link_source(&ds, 1)));
            let links: Vec<String> =
                r.links_of(&ds, 1).await.unwrap().iter().map(|l| l.portfolio.to_string()).collect();
            assert_eq!(links, ["e/p/other", "e/p/pf"]);
            // Unlinking removes the link only.
            assert!(r.unlink(&ds, 0, &pf).await.unwrap());
            assert!(!r.unlink(&ds, 0, &pf).await.unwrap());
            assert!(r.links_of(&ds, 0).await.unwrap().is_empty());
            assert_eq!(r.state(&ds).await.unwrap().versions.len(), 2);
            assert_eq!(
                r.state(&pf).await.unwrap().versions.keys().copied().collect::<Vec<_>>(),
                [1]
            );
        });
    }

    #[test]
    fn portfolios_and_sequences_never_mix() {
        let t = TempRegistry::default();
        let (ds, pf) = (path("ds"), path("pf"));
        t.log(&ds, &[("a", b"zero")], &[], None);
        let r = &t.registry;
        t.log(&path("ds2"), &[("a", b"two")], &[], None);
        t.runtime.block_on(async {
            let into_logs = r.link(&path("ds2"), 0, &ds, &[]).await.unwrap_err();
            assert!(into_logs.to_string().contains("not a portfolio"), "{into_logs}");
            let own = r.link(&ds, 0, &ds, &[]).await.unwrap_err();
            assert!(own.to_string().contains("own collection"), "{own}");
            r.link(&ds, 0, &pf, &[]).await.unwrap();
        });
        // Logging into a portfolio is refused by the fold itself.
        let c = crate::registry::Commit {
            seq: 2,
            time: Utc::now(),
            writer: "t".into(),
            op: Op::Create {
                version: 1,
                digest: "d".into(),
                manifest: "m".into(),
                artifact_type: "dataset".into(),
                description: None,
                metadata: serde_json::Value::Null,
                size: 1,
                file_count: 1,
                aliases: vec![],
                history_step: None,
            },
        };
        // Logging a link's very content into its portfolio is refused too, not taken for a re-log.
        let refused = t.runtime.block_on(async {
            let source = r.resolve(&ds, &Selector::Version(0)).await.unwrap();
            let req = crate::registry::LogRequest {
                collection: pf.clone(),
                artifact_type: "dataset".into(),
                description: None,
                metadata: None,
                aliases: vec![],
                manifest: r.manifest(&source).await.unwrap(),
                sources: Default::default(),
                history_step: None,
            };
            r.log(&req, &()).await.unwrap_err()
        });
        assert!(refused.to_string().contains("portfolio of links"), "{refused}");
        let mut state = t.runtime.block_on(r.state(&pf)).unwrap();
        use crate::registry::log::Fold as _;
        assert!(state.apply(&c).unwrap_err().to_string().contains("portfolio"));
    }

    #[test]
    fn deleting_a_source_removes_its_links_and_gc_keeps_what_a_live_link_reads() {
        let (t, ds, pf) = two_versions();
        let r = &t.registry;
        t.runtime.block_on(async {
            r.link(&ds, 0, &pf, &[]).await.unwrap();
            r.link(&ds, 1, &pf, &[]).await.unwrap();
            r.delete_version(&ds, 0, true).await.unwrap();
            let state = r.state(&pf).await.unwrap();
            assert_eq!(state.versions.keys().copied().collect::<Vec<_>>(), [1]);
            // A source deleted without its links (a writer that died in between): the link
            // still names the manifest, so gc keeps it and its blob.
            r.commit(&ds, |_| Ok((Some(Op::Delete { version: 1 }), ()))).await.unwrap();
            r.gc(Duration::ZERO).await.unwrap();
            let link = r.resolve(&pf, &Selector::Version(1)).await.unwrap();
            let manifest = r.manifest(&link).await.unwrap();
            let entry = &manifest.contents["a"];
            let blob = crate::registry::entry_blob_key(entry).unwrap();
            assert_eq!(&r.store().get(&blob).await.unwrap()[..], b"one");
        });
    }
}
