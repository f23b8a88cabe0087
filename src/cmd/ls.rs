//! `artfs ls`: the artifacts of a project, or the projects (with artifact counts) of an entity
//! or of the whole registry, so that a newcomer finds what a team has logged.

use anyhow::Result;
use serde::Serialize;

use super::{App, human_bytes, print_json};
use crate::cli::LsArgs;
use crate::source::{Catalog, CatalogExt as _, CollectionSummary};
use crate::terminal::printable;

/// One artifact of `artfs ls --json`.
#[derive(Debug, Serialize)]
struct ArtifactRow {
    name: String,
    #[serde(rename = "type")]
    artifact_type: String,
    versions: usize,
    latest: Option<String>,
    size: Option<u64>,
}

/// One project of `artfs ls ENTITY/ --json` and `artfs ls --all --json`.
#[derive(Debug, Serialize)]
struct ProjectRow {
    entity: String,
    project: String,
    /// Artifacts (collections with a type) in the project, of `--type` if given.
    artifacts: usize,
    /// Their live versions, all together.
    versions: usize,
}

impl App {
    pub(super) async fn ls(&self, args: &LsArgs) -> Result<()> {
        let entity_only = args.scope.as_deref().and_then(|s| s.strip_suffix('/'));
        if args.all || entity_only.is_some() {
            return self.ls_projects(entity_only, args).await;
        }
        // The catalog first: a W&B server decides the default entity.
        let catalog = self.catalog().await?;
        let (entity, project) = self.project_scope(args.scope.as_deref())?;
        let mut summaries = catalog.summaries(&entity, &project).await?;
        summaries.retain(|s| of_type(s, args.artifact_type.as_deref()));
        if args.json {
            let rows: Vec<ArtifactRow> = summaries
                .iter()
                .map(|s| ArtifactRow {
                    name: s.collection.to_string(),
                    artifact_type: s.artifact_type.clone(),
                    versions: s.versions,
                    latest: s.latest.as_ref().map(|v| format!("v{}", v.version)),
                    size: s.latest.as_ref().map(|v| v.size),
                })
                .collect();
            return print_json(&serde_json::to_value(rows)?);
        }
        if summaries.is_empty() {
            let kind = args.artifact_type.as_deref().map(|t| format!("{t} ")).unwrap_or_default();
            // A bare `artfs ls` in a registry whose default project is empty: what it holds.
            if args.scope.is_none() {
                eprintln!(
                    "no {kind}artifacts in {entity}/{project}, the default project; the registry {} holds:",
                    self.config.registry
                );
                return self.ls_projects(None, args).await;
            }
            eprintln!(
                "no {kind}artifacts in {entity}/{project} (registry {}); `artfs ls --all` lists \
                 the projects there are",
                self.config.registry
            );
            return Ok(());
        }
        println!("{:<40} {:<10} {:>8} {:>7} {:>10}", "NAME", "TYPE", "VERSIONS", "LATEST", "SIZE");
        for s in summaries {
            let (latest, size) = match &s.latest {
                Some(v) => (format!("v{}", v.version), human_bytes(v.size)),
                None => ("-".into(), "-".into()),
            };
            println!(
                "{:<40} {:<10} {:>8} {:>7} {:>10}",
                printable(&s.collection.name),
                printable(&s.artifact_type),
                s.versions,
                latest,
                size
            );
        }
        Ok(())
    }

    /// The projects of `entity` (or of every entity), each with its artifact and version counts.
    async fn ls_projects(&self, entity: Option<&str>, args: &LsArgs) -> Result<()> {
        let catalog = self.catalog().await?;
        let entities = match entity {
            Some(e) => vec![e.to_owned()],
            None => catalog.entities().await?,
        };
        let mut rows = Vec::new();
        for entity in entities {
            for project in catalog.projects(&entity).await? {
                rows.push(project_row(catalog.as_ref(), &entity, project, args).await?);
            }
        }
        // A project whose artifacts are all of other types is no answer to `--type`.
        rows.retain(|r| args.artifact_type.is_none() || r.artifacts > 0);
        if args.json {
            return print_json(&serde_json::to_value(rows)?);
        }
        if rows.is_empty() {
            let scope = entity.map_or_else(|| "the registry".to_owned(), |e| format!("entity {e}"));
            eprintln!("no projects in {scope} (registry {})", self.config.registry);
            return Ok(());
        }
        println!("{:<50} {:>9} {:>8}", "PROJECT", "ARTIFACTS", "VERSIONS");
        for r in rows {
            let name = printable(&format!("{}/{}", r.entity, r.project)).into_owned();
            println!("{name:<50} {:>9} {:>8}", r.artifacts, r.versions);
        }
        if !self.config.quiet && entity.is_none() {
            eprintln!("(`artfs ls ENTITY/PROJECT` lists the artifacts of one)");
        }
        Ok(())
    }
}

async fn project_row(
    catalog: &dyn Catalog,
    entity: &str,
    project: String,
    args: &LsArgs,
) -> Result<ProjectRow> {
    let mut summaries = catalog.summaries(entity, &project).await?;
    summaries.retain(|s| of_type(s, args.artifact_type.as_deref()));
    Ok(ProjectRow {
        entity: entity.to_owned(),
        project,
        artifacts: summaries.len(),
        versions: summaries.iter().map(|s| s.versions).sum(),
    })
}

fn of_type(s: &CollectionSummary, wanted: Option<&str>) -> bool {
    wanted.is_none_or(|t| s.artifact_type == t)
}
