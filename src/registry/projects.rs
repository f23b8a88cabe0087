//! Which projects exist: a project is made by what is logged into it, an artifact collection
//! or a run (W&B's `upsertBucket` creates projects implicitly), and has no object of its own.

use super::{Registry, RegistryError, layout};

impl Registry {
    /// The projects of an entity holding collections or runs, sorted.
    pub async fn all_projects(&self, entity: &str) -> Result<Vec<String>, RegistryError> {
        let mut names = self.projects(entity).await?;
        names.extend(self.store.list_dirs(&layout::run_projects_dir(entity)).await?);
        names.sort();
        names.dedup();
        Ok(names)
    }

    pub async fn project_exists(&self, entity: &str, project: &str) -> Result<bool, RegistryError> {
        Ok(!self.collections(entity, project).await?.is_empty()
            || !self.runs(entity, project).await?.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use crate::registry::runs::{RunOp, RunPath};

    #[tokio::test]
    async fn a_run_makes_its_project() {
        let dir = tempfile::tempdir().unwrap();
        let reg = crate::registry::runs::tests::registry_in(dir.path());
        assert!(!reg.project_exists("e", "p").await.unwrap());
        let run = RunPath::new("e", "p", "r").unwrap();
        reg.record_run(&run, RunOp::Upsert(Box::default())).await.unwrap();
        assert!(reg.project_exists("e", "p").await.unwrap());
        assert!(!reg.project_exists("e", "q").await.unwrap());
        assert_eq!(reg.all_projects("e").await.unwrap(), ["p"]);
    }
}
