//! The GraphQL documents, exactly as the 0.31 SDK sends them (recorded from the
//! SDK, see `docs/WANDB-API.md` §4): the `.full` forms when the server lists the feature they need, the
//! `.bare` forms (as wandb-core re-prints them without it) otherwise. `GetProjects` is the SDK's
//! `Api().projects()` document with only the node fields artfs reads.

pub const SERVER_FEATURES: &str = include_str!("queries/server_features.graphql");
pub const VIEWER: &str = include_str!("queries/viewer.graphql");
pub const MEMBERSHIP_BY_NAME_FULL: &str = include_str!("queries/membership_by_name.full.graphql");
pub const MEMBERSHIP_BY_NAME_BARE: &str = include_str!("queries/membership_by_name.bare.graphql");
pub const FETCH_MANIFEST: &str = include_str!("queries/fetch_manifest.graphql");
pub const MEMBERSHIP_FILES_FULL: &str = include_str!("queries/membership_files.full.graphql");
pub const MEMBERSHIP_FILES_BARE: &str = include_str!("queries/membership_files.bare.graphql");
pub const MEMBERSHIP_FILE_URLS: &str = include_str!("queries/membership_file_urls.graphql");
pub const PROJECT_COLLECTIONS: &str = include_str!("queries/project_collections.bare.graphql");
pub const PROJECT_ARTIFACTS_FULL: &str = include_str!("queries/project_artifacts.full.graphql");
pub const PROJECT_ARTIFACTS_BARE: &str = include_str!("queries/project_artifacts.bare.graphql");
pub const ARTIFACT_BY_ID_FULL: &str = include_str!("queries/artifact_by_id.full.graphql");
pub const ARTIFACT_BY_ID_BARE: &str = include_str!("queries/artifact_by_id.bare.graphql");
pub const GET_PROJECTS: &str =
    "query GetProjects($entity: String, $cursor: String, $perPage: Int = 50) {
  models(entityName: $entity, after: $cursor, first: $perPage) {
    pageInfo {
      __typename
      endCursor
      hasNextPage
    }
    edges {
      node {
        __typename
        name
      }
    }
  }
}
";

/// The SDK's `Api().project()` document (`GetProject`) with only the field artfs reads.
pub const GET_PROJECT: &str = "query GetProject($name: String!, $entity: String!) {
  project(name: $name, entityName: $entity) {
    __typename
    name
  }
}
";

/// Features that switch a document to its full form.
pub const DIGEST_ALGORITHM: &str = "ARTIFACT_DIGEST_ALGORITHM";
pub const TOTAL_COUNT_IN_FILES: &str = "TOTAL_COUNT_IN_FILE_CONNECTION";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_name_their_operation_and_bare_forms_lack_gated_fields() {
        for (doc, op) in [
            (MEMBERSHIP_BY_NAME_FULL, "ArtifactMembershipByName"),
            (MEMBERSHIP_BY_NAME_BARE, "ArtifactMembershipByName"),
            (FETCH_MANIFEST, "FetchArtifactManifest"),
            (MEMBERSHIP_FILES_FULL, "ArtifactMembershipFiles"),
            (MEMBERSHIP_FILES_BARE, "ArtifactMembershipFiles"),
            (MEMBERSHIP_FILE_URLS, "GetArtifactMembershipFileUrls"),
            (PROJECT_COLLECTIONS, "ProjectArtifactCollections"),
            (PROJECT_ARTIFACTS_FULL, "ProjectArtifacts"),
            (PROJECT_ARTIFACTS_BARE, "ProjectArtifacts"),
            (ARTIFACT_BY_ID_FULL, "ArtifactByID"),
            (ARTIFACT_BY_ID_BARE, "ArtifactByID"),
            (SERVER_FEATURES, "ServerFeaturesQuery"),
            (VIEWER, "Viewer"),
            (GET_PROJECTS, "GetProjects"),
            (GET_PROJECT, "GetProject"),
        ] {
            assert!(doc.trim_start().starts_with(&format!("query {op}")), "{op}");
        }
        for bare in [MEMBERSHIP_BY_NAME_BARE, PROJECT_ARTIFACTS_BARE, ARTIFACT_BY_ID_BARE] {
            assert!(!bare.contains("digestAlgorithm"));
        }
        assert!(MEMBERSHIP_BY_NAME_FULL.contains("digestAlgorithm"));
        assert!(!MEMBERSHIP_FILES_BARE.contains("totalCount"));
        assert!(MEMBERSHIP_FILES_FULL.contains("totalCount"));
    }
}
