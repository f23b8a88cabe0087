//! `artfs runs`: the runs of a project.

use anyhow::Result;
use serde_json::{Value, json};

use super::{App, print_json};
use crate::registry::runs::RunPath;
use crate::terminal::printable;

impl App {
    pub(super) async fn runs(&self, scope: Option<String>, json_out: bool) -> Result<()> {
        let (entity, project) = self.project_scope(scope.as_deref())?;
        let registry = self.registry().await?;
        let mut rows = Vec::new();
        for name in registry.runs(&entity, &project).await? {
            let Ok(path) = RunPath::new(&entity, &project, &name) else { continue };
            let state = registry.run_state(&path).await?;
            let edges = registry.run_edges(&path).await?;
            rows.push((path, state, edges));
        }
        if json_out {
            let items: Vec<Value> = rows
                .iter()
                .map(|(p, s, e)| {
                    json!({
                        "id": format!("{}/{}/{}", p.entity, p.project, p.name),
                        "name": s.fields.display_name,
                        "job_type": s.fields.job_type,
                        "group": s.fields.group,
                        "state": if s.finished { "finished" } else { "running" },
                        "exit_code": s.exit_code,
                        "created_at": s.created_at,
                        "logged": e.logged.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
                        "used": e.used.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
                    })
                })
                .collect();
            return print_json(&Value::Array(items));
        }
        if rows.is_empty() {
            eprintln!("no runs in {entity}/{project} (registry {})", self.config.registry);
            return Ok(());
        }
        println!(
            "{:<12} {:<14} {:<9} {:>6} {:>6}  CREATED",
            "RUN", "JOB TYPE", "STATE", "LOGGED", "USED"
        );
        for (p, s, e) in rows {
            println!(
                "{:<12} {:<14} {:<9} {:>6} {:>6}  {}",
                printable(&p.name),
                printable(s.fields.job_type.as_deref().unwrap_or("-")),
                if s.finished { "finished" } else { "running" },
                e.logged.len(),
                e.used.len(),
                s.created_at
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_default(),
            );
        }
        Ok(())
    }
}
