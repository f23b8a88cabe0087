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

use chrono::{DateTime, Utc};

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
            let state = self.state(&portfolio).await?;
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

/// The portfolio an index key below `prefix/` names (foreign objects there are ignored).
fn portfolio_of_edge(prefix: &str, key: &str) -> Option<CollectionPath> {
    let rest = key.strip_prefix(prefix)?.strip_prefix('/')?;
    let mut parts = rest.split('/');
    let (e, p, n) = (parts.next()?, parts.next()?, parts.next()?);
    parts.next().is_none().then_some(())?;
    CollectionPath::new(e, p, n).ok()
}
