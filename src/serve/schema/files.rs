//! Memberships (a version as seen from its collection) and files with their download URLs.

use super::*;

/// A version as a member of one collection: a logged version in its sequence, or a link in a
/// portfolio (`artifact` is then the version it links, with its own collection and number).
#[derive(Clone, Debug)]
pub struct Membership {
    pub collection: ArtifactSequence,
    pub artifact: Artifact,
    /// The version number in `collection`.
    pub version: u32,
}

impl Membership {
    pub(super) fn new(collection: &ArtifactSequence, version: u32, artifact: Artifact) -> Self {
        Membership { collection: collection.clone(), artifact, version }
    }
}

#[Object(name = "ArtifactCollectionMembership")]
impl Membership {
    async fn id(&self) -> async_graphql::ID {
        let what = format!("{}:v{}", self.collection.path, self.version);
        ids::other_id("ArtifactCollectionMembership", &what).into()
    }
    async fn version_index(&self) -> Option<i32> {
        Some(self.version as i32)
    }
    async fn created_at(&self) -> String {
        self.collection
            .state
            .versions
            .get(&self.version)
            .map(|v| time(v.created_at))
            .unwrap_or_default()
    }
    async fn aliases(&self) -> Vec<ArtifactAlias> {
        let path = &self.collection.path;
        let aliases = self.collection.state.aliases_of(self.version);
        aliases.into_iter().map(|alias| ArtifactAlias { alias, collection: path.clone() }).collect()
    }
    async fn artifact_collection(&self) -> ArtifactCollection {
        ArtifactCollection::of(self.collection.clone())
    }
    async fn artifact(&self) -> Artifact {
        self.artifact.clone()
    }
    /// Every manifest entry, references included (the SDK downloads only what is listed here).
    async fn files(
        &self,
        ctx: &Context<'_>,
        names: Option<Vec<String>>,
        after: Option<String>,
        first: Option<i32>,
    ) -> Res<FileConnection> {
        let manifest = self.artifact.manifest(ctx).await?;
        let all: Vec<(&String, &Entry)> = manifest
            .contents
            .iter()
            .filter(|(p, _)| names.as_ref().is_none_or(|n| n.contains(p)))
            .collect();
        let (items, page_info) = page(&all, after.as_deref(), first);
        let s = shared(ctx);
        let edges = items
            .into_iter()
            .map(|(path, e)| {
                // A reference's URLs are the reference itself (the SDK's `path_uri` relies on
                // `url == directUrl` for those); a stored file has a signed download URL, which
                // `file.download()` fetches as `url`, and W&B's `wandb_artifacts/` storage path.
                let blob = e.reference.is_none().then(|| crate::registry::entry_blob_key(e));
                let direct_url = match (&e.reference, &blob) {
                    (Some(r), _) => r.clone(),
                    (None, Some(Some(k))) => s.blob_url("GET", k),
                    (None, _) => s.public_url.clone(),
                };
                let storage_path = blob.flatten().map(|k| super::super::blob_storage_path(&k));
                FileEdge {
                    node: File {
                        id: ids::other_id("File", &format!("{}/{path}", self.artifact.id)),
                        name: path.clone(),
                        size_bytes: e.size.unwrap_or(0) as i64,
                        digest: Some(e.digest.clone()),
                        md5: e.blob_md5().map(str::to_owned),
                        url: Some(direct_url.clone()),
                        storage_path,
                        direct_url,
                        ..File::default()
                    },
                }
            })
            .collect();
        Ok(FileConnection { total_count: Some(all.len() as i32), page_info, edges })
    }
}

#[derive(SimpleObject, Clone, Debug, Default)]
pub struct UploadPartUrl {
    pub part_number: i32,
    pub upload_url: String,
}

#[derive(SimpleObject, Clone, Debug, Default)]
pub struct UploadMultipartUrls {
    #[graphql(name = "uploadID")]
    pub upload_id: String,
    pub upload_url_parts: Vec<UploadPartUrl>,
}

#[derive(SimpleObject, Clone, Debug, Default)]
#[graphql(complex)]
pub struct File {
    pub id: String,
    pub name: String,
    pub size_bytes: i64,
    pub url: Option<String>,
    pub storage_path: Option<String>,
    pub mimetype: Option<String>,
    pub updated_at: Option<String>,
    pub digest: Option<String>,
    pub md5: Option<String>,
    pub direct_url: String,
    pub upload_url: Option<String>,
    pub upload_headers: Option<Vec<String>>,
    pub upload_multipart_urls: Option<UploadMultipartUrls>,
    pub artifact: Option<Artifact>,
}

#[async_graphql::ComplexObject]
impl File {
    /// The manifest path, as `name` (the SDK reads `name: displayName`).
    async fn display_name(&self) -> &str {
        &self.name
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct FileEdge {
    pub node: File,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct FileConnection {
    pub total_count: Option<i32>,
    pub page_info: PageInfo,
    pub edges: Vec<FileEdge>,
}
