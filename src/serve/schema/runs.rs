//! `Run`: a run's fields and the artifacts it logged and used.

use super::*;

#[derive(Clone, Debug)]
pub struct Run {
    pub path: RunPath,
    pub state: RunState,
}

impl Run {
    pub(super) async fn artifacts(
        &self,
        ctx: &Context<'_>,
        list: &[(String, u32)],
        after: Option<String>,
        first: Option<i32>,
    ) -> Res<ArtifactConnection> {
        let mut all = Vec::new();
        for (coll, v) in list {
            let Some((e, rest)) = coll.split_once('/') else { continue };
            let Some((p, n)) = rest.split_once('/') else { continue };
            let Ok(c) = CollectionPath::new(e, p, n) else { continue };
            if let Some(a) = artifact_by_id(reg(ctx), access(ctx), &ids::version_id(&c, *v))
                .await
                .map_err(err)?
            {
                all.push(a);
            }
        }
        let (items, page_info) = page(&all, after.as_deref(), first);
        Ok(ArtifactConnection {
            total_count: all.len() as i32,
            page_info,
            edges: items.into_iter().map(|node| ArtifactEdge { node }).collect(),
        })
    }
}

#[Object]
impl Run {
    async fn id(&self) -> async_graphql::ID {
        ids::run_id(&self.path).into()
    }
    async fn name(&self) -> &str {
        &self.path.name
    }
    async fn display_name(&self) -> Option<&str> {
        self.state.fields.display_name.as_deref().or(Some(&self.path.name))
    }
    async fn project_id(&self) -> i64 {
        ids::project_number(&self.path.entity, &self.path.project)
    }
    async fn project(&self) -> Project {
        Project { entity: self.path.entity.clone(), name: self.path.project.clone() }
    }
    async fn tags(&self) -> Vec<String> {
        self.state.fields.tags.clone().unwrap_or_default()
    }
    async fn sweep_name(&self) -> Option<String> {
        None
    }
    async fn state(&self) -> &str {
        crate::registry::run_filter::state_name(&self.state)
    }
    async fn group(&self) -> Option<&str> {
        self.state.fields.group.as_deref()
    }
    async fn job_type(&self) -> Option<&str> {
        self.state.fields.job_type.as_deref()
    }
    async fn commit(&self) -> Option<&str> {
        self.state.fields.commit.as_deref()
    }
    async fn read_only(&self) -> bool {
        false
    }
    async fn created_at(&self) -> Option<String> {
        self.state.created_at.map(time)
    }
    async fn heartbeat_at(&self) -> Option<String> {
        self.state.updated_at.map(time)
    }
    async fn description(&self) -> Option<&str> {
        self.state.fields.description.as_deref()
    }
    async fn notes(&self) -> Option<&str> {
        self.state.fields.notes.as_deref()
    }
    async fn history_line_count(&self) -> i64 {
        self.state.stream.history_lines as i64
    }
    async fn events_line_count(&self) -> i64 {
        self.state.stream.events_lines as i64
    }
    async fn log_line_count(&self) -> i64 {
        self.state.stream.log_lines as i64
    }
    /// The last history row, as a JSON list of rows (what a resuming client continues from).
    async fn history_tail(&self) -> JsonString {
        self.history_tail_json()
    }
    /// System events are kept but not read back for resuming.
    async fn events_tail(&self) -> JsonString {
        JsonString("[]".to_owned())
    }
    async fn wandb_config(&self, keys: Option<Vec<String>>) -> Option<JsonString> {
        self.wandb_config_of(keys)
    }
    async fn history(
        &self,
        ctx: &Context<'_>,
        samples: Option<i64>,
        min_step: Option<Int64>,
        max_step: Option<Int64>,
    ) -> Res<Vec<JsonString>> {
        self.history_rows(ctx, samples, min_step.map(|s| s.0), max_step.map(|s| s.0)).await
    }
    async fn events(&self, ctx: &Context<'_>, samples: Option<i64>) -> Res<Vec<JsonString>> {
        self.events_rows(ctx, samples).await
    }
    async fn sampled_history(
        &self,
        ctx: &Context<'_>,
        specs: Vec<JsonString>,
    ) -> Res<Vec<async_graphql::Json<serde_json::Value>>> {
        self.sampled(ctx, specs).await
    }
    /// No history is exported to files: wandb-core then reads all of it live (`history`).
    async fn parquet_history(
        &self,
        #[graphql(name = "liveKeys")] _live_keys: Option<Vec<String>>,
    ) -> ParquetHistory {
        ParquetHistory { parquet_urls: Vec::new(), live_data: Vec::new() }
    }
    /// The summary last sent, by `upsertBucket` or `file_stream` (`{}` if none).
    async fn summary_metrics(&self) -> JsonString {
        JsonString(self.state.fields.summary_metrics.clone().unwrap_or_else(|| "{}".to_owned()))
    }
    /// Metrics history is not kept (the file_stream body is stored as sent, not parsed).
    async fn system_metrics(&self) -> JsonString {
        JsonString("{}".to_owned())
    }
    /// A JSON object, not a string: the SDK calls `.get("lastStep", -1)` on it.
    async fn history_keys(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(self.history_keys_value())
    }
    async fn config(&self) -> Option<JsonString> {
        self.state.fields.config.clone().map(JsonString)
    }
    async fn sweep(&self) -> Option<String> {
        None
    }
    async fn user(&self, ctx: &Context<'_>) -> User {
        User { name: access(ctx).user.clone(), entity: None, teams: Vec::new() }
    }
    async fn input_artifacts(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
    ) -> Res<ArtifactConnection> {
        self.artifacts(ctx, &self.state.used, after, first).await
    }
    async fn output_artifacts(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
    ) -> Res<ArtifactConnection> {
        self.artifacts(ctx, &self.state.logged, after, first).await
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct RunEdge {
    pub node: Run,
    pub cursor: String,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct RunConnection {
    pub total_count: i32,
    pub page_info: PageInfo,
    pub edges: Vec<RunEdge>,
}
