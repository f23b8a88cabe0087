//! The mutations' inputs and payloads, and the helpers the mutations share.

use super::*;

#[derive(InputObject, Debug, Default)]
pub struct UpsertBucketInput {
    pub id: Option<String>,
    pub name: Option<String>,
    pub group_name: Option<String>,
    pub model_name: Option<String>,
    pub entity_name: Option<String>,
    pub description: Option<String>,
    pub display_name: Option<String>,
    pub notes: Option<String>,
    pub config: Option<JsonString>,
    pub commit: Option<String>,
    pub host: Option<String>,
    pub debug: Option<bool>,
    pub job_program: Option<String>,
    pub job_repo: Option<String>,
    pub job_type: Option<String>,
    pub state: Option<String>,
    pub sweep: Option<String>,
    pub tags: Option<Vec<String>>,
    pub summary_metrics: Option<JsonString>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct UpsertBucketPayload {
    pub bucket: Option<Run>,
    pub inserted: Option<bool>,
}

#[derive(InputObject, Debug)]
pub struct CreateRunFilesInput {
    pub entity_name: Option<String>,
    pub project_name: Option<String>,
    pub run_name: Option<String>,
    pub files: Option<Vec<String>>,
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct RunFileUrl {
    pub name: String,
    pub upload_url: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct CreateRunFilesPayload {
    #[graphql(name = "runID")]
    pub run_id: Option<String>,
    pub upload_headers: Vec<String>,
    pub files: Vec<RunFileUrl>,
}

#[derive(InputObject, Debug)]
pub struct ArtifactAliasInput {
    pub alias: String,
    pub artifact_collection_name: Option<String>,
    pub entity_name: Option<String>,
    pub project_name: Option<String>,
}

#[derive(InputObject, Debug)]
pub struct TagInput {
    pub tag_name: Option<String>,
    pub tag_category_name: Option<String>,
    pub attributes: Option<JsonString>,
}

/// The collection `createArtifact` names: `artifactCollectionName`, or the one name of the plural
/// `artifactCollectionNames` that `Api().run(…).log_artifact` sends.
pub(super) fn collection_name_of(input: &CreateArtifactInput) -> Res<Option<String>> {
    let mut names: Vec<&String> = input.artifact_collection_names.iter().flatten().collect();
    names.extend(input.artifact_collection_name.as_ref());
    names.dedup();
    match names.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some((*one).clone())),
        more => Err(invalid(format!(
            "createArtifact: one collection per version, got {}",
            more.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

#[derive(InputObject, Debug)]
pub struct CreateArtifactInput {
    pub entity_name: Option<String>,
    pub project_name: Option<String>,
    pub artifact_type_name: Option<String>,
    pub artifact_collection_name: Option<String>,
    pub artifact_collection_names: Option<Vec<String>>,
    pub run_name: Option<String>,
    pub digest: Option<String>,
    pub digest_algorithm: Option<String>,
    pub description: Option<String>,
    pub metadata: Option<JsonString>,
    pub aliases: Option<Vec<ArtifactAliasInput>>,
    pub tags: Option<Vec<TagInput>>,
    pub labels: Option<JsonString>,
    pub ttl_duration_seconds: Option<i64>,
    pub history_step: Option<i64>,
    #[graphql(name = "distributedID")]
    pub distributed_id: Option<String>,
    pub enable_digest_deduplication: Option<bool>,
    #[graphql(name = "clientID")]
    pub client_id: Option<String>,
    #[graphql(name = "sequenceClientID")]
    pub sequence_client_id: Option<String>,
    pub storage_region: Option<String>,
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct CreateArtifactPayload {
    pub artifact: Artifact,
}

#[derive(InputObject, Debug)]
pub struct CreateArtifactManifestInput {
    #[graphql(name = "artifactID")]
    pub artifact_id: Option<String>,
    #[graphql(name = "baseArtifactID")]
    pub base_artifact_id: Option<String>,
    pub name: Option<String>,
    pub digest: Option<String>,
    pub entity_name: Option<String>,
    pub project_name: Option<String>,
    pub run_name: Option<String>,
    #[graphql(name = "type")]
    pub manifest_type: Option<ArtifactManifestType>,
    pub client_mutation_id: Option<String>,
}

#[derive(InputObject, Debug)]
pub struct UpdateArtifactManifestInput {
    #[graphql(name = "artifactManifestID")]
    pub artifact_manifest_id: Option<String>,
    pub digest: Option<String>,
    #[graphql(name = "baseArtifactID")]
    pub base_artifact_id: Option<String>,
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ArtifactManifestPayload {
    pub artifact_manifest: ArtifactManifest,
}

#[derive(InputObject, Debug)]
pub struct UploadPartsInput {
    pub part_number: i32,
    #[graphql(name = "hexMD5")]
    pub hex_md5: String,
}

#[derive(InputObject, Debug)]
pub struct CreateArtifactFileSpecInput {
    #[graphql(name = "artifactID")]
    pub artifact_id: String,
    #[graphql(name = "artifactManifestID")]
    pub artifact_manifest_id: Option<String>,
    pub name: String,
    pub md5: String,
    pub digest: Option<String>,
    pub mimetype: Option<String>,
    pub upload_parts_input: Option<Vec<UploadPartsInput>>,
}

#[derive(InputObject, Debug)]
pub struct CreateArtifactFilesInput {
    pub artifact_files: Vec<CreateArtifactFileSpecInput>,
    pub storage_layout: Option<String>,
    pub digest_algorithm: Option<String>,
    #[graphql(name = "cloudRegionID")]
    pub cloud_region_id: Option<String>,
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct CreateArtifactFilesPayload {
    pub files: FileConnection,
}

#[derive(InputObject, Debug)]
pub struct CompleteMultipartUploadArtifactInput {
    pub complete_multipart_action: Option<CompleteMultipartAction>,
    pub completed_parts: Option<Vec<UploadPartsInput>>,
    #[graphql(name = "artifactID")]
    pub artifact_id: Option<String>,
    pub storage_path: Option<String>,
    #[graphql(name = "uploadID")]
    pub upload_id: Option<String>,
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct CompleteMultipartPayload {
    pub digest: Option<String>,
}

#[derive(InputObject, Debug)]
pub struct CommitArtifactInput {
    #[graphql(name = "artifactID")]
    pub artifact_id: String,
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ArtifactPayload {
    pub artifact: Option<Artifact>,
}

#[derive(InputObject, Debug)]
pub struct UseArtifactInput {
    pub entity_name: Option<String>,
    pub project_name: Option<String>,
    pub run_name: Option<String>,
    #[graphql(name = "artifactID")]
    pub artifact_id: String,
    pub artifact_entity_name: Option<String>,
    pub artifact_project_name: Option<String>,
    pub used_as: Option<String>,
    pub client_mutation_id: Option<String>,
}

#[derive(InputObject, Debug)]
pub struct UpdateArtifactInput {
    #[graphql(name = "artifactID")]
    pub artifact_id: String,
    pub description: Option<String>,
    pub metadata: Option<JsonString>,
    pub ttl_duration_seconds: Option<i64>,
    pub tags_to_add: Option<Vec<TagInput>>,
    pub tags_to_delete: Option<Vec<TagInput>>,
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct UpdateArtifactPayload {
    pub artifact: Artifact,
}

#[derive(InputObject, Debug)]
pub struct AddAliasesInput {
    #[graphql(name = "artifactID")]
    pub artifact_id: String,
    pub aliases: Vec<ArtifactAliasInput>,
    pub client_mutation_id: Option<String>,
}

#[derive(InputObject, Debug)]
pub struct DeleteAliasesInput {
    #[graphql(name = "artifactID")]
    pub artifact_id: String,
    pub aliases: Vec<ArtifactAliasInput>,
    pub client_mutation_id: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct SuccessPayload {
    pub success: bool,
}

#[derive(InputObject, Debug)]
pub struct DeleteArtifactInput {
    #[graphql(name = "artifactID")]
    pub artifact_id: String,
    pub delete_aliases: Option<bool>,
    pub client_mutation_id: Option<String>,
}

/// Multipart upload ids are random hex, also used as a key component.
pub fn valid_upload_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

pub use crate::registry::layout::upload_part as part_key;

pub(super) fn md5_of_blob_key(key: &str) -> Option<[u8; 16]> {
    hex::decode(crate::registry::layout::md5_hex_of_blob(key)?).ok()?.try_into().ok()
}

/// Part URLs for a file the SDK uploads in parts (wandb-core does so from 2 GiB on).
pub(super) fn multipart_urls(
    s: &Shared,
    name: &str,
    parts: &[UploadPartsInput],
) -> Res<UploadMultipartUrls> {
    let upload_id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    let mut urls = Vec::with_capacity(parts.len());
    for p in parts {
        let hex = p.hex_md5.to_ascii_lowercase();
        let valid_md5 = hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid_md5 || !(1..=10_000).contains(&p.part_number) {
            return Err(invalid(format!(
                "createArtifactFiles: {name}: invalid part {}",
                p.part_number
            )));
        }
        urls.push(UploadPartUrl {
            part_number: p.part_number,
            upload_url: s.part_url(&upload_id, p.part_number as u32, &hex),
        });
    }
    Ok(UploadMultipartUrls { upload_id, upload_url_parts: urls })
}

pub(super) fn run_path(
    entity: Option<&str>,
    project: Option<&str>,
    run: Option<&str>,
) -> Option<RunPath> {
    RunPath::new(entity?, project?, run?).ok()
}

pub(super) async fn note_run(ctx: &Context<'_>, run: Option<RunPath>, op: RunOp) {
    let Some(run) = run else { return };
    if !access(ctx).can_write(&run.entity) {
        return;
    }
    if let Err(e) = reg(ctx).record_run(&run, op).await {
        tracing::warn!(
            "run {}/{}/{}: could not record lineage: {e}",
            run.entity,
            run.project,
            run.name
        );
    }
}
