//! `project.runs(filters, order, after, first)` and `runCount(filters)`: a project's runs as
//! `api.runs(path, filters=…, order=…, per_page=…)` lists them, filtered and ordered by
//! `registry::run_filter`. A cursor is the position in the ordered, filtered list.

use super::*;
use crate::registry::run_filter::{RunFilter, RunOrder, run_document};

/// Runs whose logs are read at once for one listing.
const RUN_READS_IN_FLIGHT: usize = 16;

impl Project {
    /// Every run of the project that `filters` keeps, in `order`.
    pub(super) async fn filtered_runs(
        &self,
        ctx: &Context<'_>,
        filters: Option<&JsonString>,
        order: Option<&str>,
    ) -> Res<Vec<Run>> {
        use futures::{StreamExt as _, TryStreamExt as _};
        let filter = RunFilter::parse(filters.map(|f| f.0.as_str()).unwrap_or("{}"))
            .map_err(|e| invalid(e.to_string()))?;
        let order = RunOrder::parse(order).map_err(|e| invalid(e.to_string()))?;
        let r = reg(ctx);
        let names = r.runs(&self.entity, &self.name).await.map_err(err)?;
        let paths: Vec<RunPath> =
            names.iter().filter_map(|n| RunPath::new(&self.entity, &self.name, n).ok()).collect();
        let runs: Vec<Run> = futures::stream::iter(paths)
            .map(|path| async move {
                let state = r.run_state(&path).await?;
                Ok::<_, RegistryError>(Run { path, state })
            })
            .buffered(RUN_READS_IN_FLIGHT)
            .try_collect()
            .await
            .map_err(err)?;
        let mut docs: Vec<(serde_json::Value, Run)> = runs
            .into_iter()
            .filter(|run| run.state.seq > 0)
            .map(|run| (run_document(&run.path, &run.state), run))
            .filter(|(doc, _)| filter.matches(doc))
            .collect();
        order.sort(&mut docs);
        Ok(docs.into_iter().map(|(_, run)| run).collect())
    }
}

impl RunConnection {
    pub(super) fn of(all: &[Run], after: Option<&str>, first: Option<i32>) -> RunConnection {
        let start = after.and_then(|a| a.parse::<usize>().ok()).map(|a| a + 1).unwrap_or(0);
        let (items, page_info) = page(all, after, first);
        RunConnection {
            total_count: all.len() as i32,
            page_info,
            edges: items
                .into_iter()
                .enumerate()
                .map(|(i, node)| RunEdge { node, cursor: (start + i).to_string() })
                .collect(),
        }
    }
}
