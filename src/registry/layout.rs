//! Every key of the registry's on-disk format, in one place and pinned by a golden test.
//!
//! A registry written by one artfs is read by every other one on the bucket, old and new: a key
//! that changes shape orphans what is stored under the old one (or, for `gc`, makes live data
//! look unreferenced). So keys are built only here, and `tests::layout_golden` fails when any
//! of them changes.
//!
//! Below the registry root:
//! - `artfs-registry.json`: says that a registry is here;
//! - `blobs/md5/<2 hex>/<30 hex>`: file contents, content-addressed and immutable;
//! - `chunks/md5/<2 hex>/<30 hex>.json`: per-chunk sums (BLAKE3, older ones SHA-256) of large blobs;
//! - `manifests/<hex md5 of the bytes>.json`: W&B manifests, content-addressed;
//! - `collections/<entity>/<project>/<name>/{commits,checkpoints}/<20 digits>.json`: one commit
//!   log per collection;
//! - `runs/<entity>/<project>/<run>/commits/<20 digits>.json`, `…/stream/<unique>.json`,
//!   `…/files/<name>/<unique>`: one log per run and what it streamed and uploaded;
//! - `lineage/versions/<e>/<p>/<name>/<10 digits>/<kind>/<e>/<p>/<run>` and
//!   `lineage/runs/<e>/<p>/<run>/<kind>/<e>/<p>/<name>/<10 digits>`: the lineage index;
//! - `links/<e>/<p>/<name>/<10 digits>/<e>/<p>/<portfolio>`: the portfolios that link a version;
//! - `parts/<e>/<p>/<name>/<group hash>/<10 digits>/…`: versions written by many processes;
//! - `drafts/<id>/…`, `drafts/by-client/<sha256>.json`: versions pending across requests;
//! - `keys/<sha256>.json`, `keys/revoked/<sha256>.json`, `keys/used/<sha256>/<10 digits>`
//!   (the minutes a key was used in), `serve/url-signing-secret`, `uploads/<id>/<5 digits>`
//!   (multipart parts): what `artfs serve` keeps;
//! - `leases/<unique>.json`, `gc/<unique>.json`: markers that keep `gc` and writers apart;
//! - `directory/{commits,checkpoints}/<20 digits>.json`: one commit log of users, organizations,
//!   teams and registries.

use sha2::Digest as _;

use crate::names::CollectionPath;

pub const MARKER: &str = "artfs-registry.json";
pub const BLOBS: &str = "blobs";
pub const CHUNKS: &str = "chunks";
pub const MANIFESTS: &str = "manifests";
pub const COLLECTIONS: &str = "collections";
pub const RUNS: &str = "runs";
pub const PARTS: &str = "parts";
pub const DRAFTS: &str = "drafts";
pub const KEYS: &str = "keys";
pub const UPLOADS: &str = "uploads";
/// Where writers' leases live.
pub const LEASES: &str = "leases";
/// Where a running `gc` announces itself.
pub const GC: &str = "gc";
pub const URL_SIGNING_SECRET: &str = "serve/url-signing-secret";
/// The log of users, organizations, teams and registries (`registry::directory`).
pub const DIRECTORY: &str = "directory";

/// Width of sequence numbers in commit and checkpoint names, so that names sort by number.
const SEQ_DIGITS: usize = 20;

// ---- content-addressed objects

/// The blob of a file whose MD5 is `raw` (16 bytes).
pub fn blob_of_md5(raw: &[u8; 16]) -> String {
    let hex = hex::encode(raw);
    format!("{BLOBS}/md5/{}/{}", &hex[..2], &hex[2..])
}

/// The chunk-checksum sidecar of a blob: defined beside the chunk format, which the store writes
/// below the registry's modules.
pub use crate::store::chunks::sidecar_key as chunk_sidecar;

/// The hex MD5 a blob key names, if it is one.
pub fn md5_hex_of_blob(key: &str) -> Option<String> {
    let rest = key.strip_prefix("blobs/md5/")?;
    let (a, b) = rest.split_once('/')?;
    (a.len() == 2 && b.len() == 30).then(|| format!("{a}{b}"))
}

/// A manifest stored under the MD5 of its bytes.
pub fn manifest_of(bytes: &[u8]) -> String {
    manifest_by_hex(&hex::encode(md5::Md5::digest(bytes)))
}

pub fn manifest_by_hex(hex: &str) -> String {
    format!("{MANIFESTS}/{hex}.json")
}

/// The hex MD5 a manifest key names, if it is one.
pub fn hex_of_manifest(key: &str) -> Option<&str> {
    key.strip_prefix("manifests/")?.strip_suffix(".json")
}

// ---- commit logs

pub fn projects_dir(entity: &str) -> String {
    format!("{COLLECTIONS}/{entity}")
}

pub fn collections_dir(entity: &str, project: &str) -> String {
    format!("{COLLECTIONS}/{entity}/{project}")
}

/// The directory of one collection's log (commits and checkpoints).
pub fn collection(c: &CollectionPath) -> String {
    format!("{COLLECTIONS}/{}/{}/{}", c.entity, c.project, c.name)
}

pub fn commits_dir(log_prefix: &str) -> String {
    format!("{log_prefix}/commits")
}

pub fn checkpoints_dir(log_prefix: &str) -> String {
    format!("{log_prefix}/checkpoints")
}

pub fn commit(log_prefix: &str, seq: u64) -> String {
    format!("{log_prefix}/commits/{seq:0SEQ_DIGITS$}.json")
}

pub fn checkpoint(log_prefix: &str, seq: u64) -> String {
    format!("{log_prefix}/checkpoints/{seq:0SEQ_DIGITS$}.json")
}

/// The sequence number of a commit or checkpoint key directly in `dir`: its name must be exactly
/// 20 digits and `.json`. Anything else there (`README`, NFS's `.nfsXXXX`, editor backups,
/// subdirectories) is not part of the log.
pub fn seq_in(dir: &str, key: &str) -> Option<u64> {
    let name = key.strip_prefix(dir)?.strip_prefix('/')?;
    let digits = name.strip_suffix(".json")?;
    if digits.len() != SEQ_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

// ---- runs

/// The directory holding the run directories of every project of an entity.
pub fn run_projects_dir(entity: &str) -> String {
    format!("{RUNS}/{entity}")
}

pub fn runs_dir(entity: &str, project: &str) -> String {
    format!("{RUNS}/{entity}/{project}")
}

/// The directory of one run's log and objects.
pub fn run(entity: &str, project: &str, name: &str) -> String {
    format!("{RUNS}/{entity}/{project}/{name}")
}

pub fn run_stream(run_prefix: &str, unique: &str) -> String {
    format!("{run_prefix}/stream/{unique}.json")
}

pub fn run_file(run_prefix: &str, file: &str, unique: &str) -> String {
    format!("{run_prefix}/files/{file}/{unique}")
}

// ---- lineage index

/// Lineage edges of one version: `<kind>/<run entity>/<run project>/<run>` below it.
pub fn lineage_of_version(c: &CollectionPath, version: u32) -> String {
    format!("lineage/versions/{}/{}/{}/{version:010}", c.entity, c.project, c.name)
}

/// Lineage edges of one run: `<kind>/<entity>/<project>/<name>/<10 digits>` below it.
pub fn lineage_of_run(entity: &str, project: &str, name: &str) -> String {
    format!("lineage/runs/{entity}/{project}/{name}")
}

/// The two index keys of one edge: below the version, then below the run.
pub fn lineage_edge(
    kind: &str,
    (run_entity, run_project, run_name): (&str, &str, &str),
    c: &CollectionPath,
    version: u32,
) -> [String; 2] {
    [
        format!("{}/{kind}/{run_entity}/{run_project}/{run_name}", lineage_of_version(c, version)),
        format!(
            "{}/{kind}/{}/{}/{}/{version:010}",
            lineage_of_run(run_entity, run_project, run_name),
            c.entity,
            c.project,
            c.name
        ),
    ]
}

// ---- links index

/// The portfolios that link one version: `<entity>/<project>/<portfolio>` below it.
pub fn links_of_version(c: &CollectionPath, version: u32) -> String {
    format!("{}/{version:010}", links_of_collection(c))
}

/// Where the links of every version of `c` are indexed.
pub fn links_of_collection(c: &CollectionPath) -> String {
    format!("links/{}/{}/{}", c.entity, c.project, c.name)
}

/// The index key saying that `portfolio` links `c`'s `version`.
pub fn link_edge(c: &CollectionPath, version: u32, portfolio: &CollectionPath) -> String {
    let p = portfolio;
    format!("{}/{}/{}/{}", links_of_version(c, version), p.entity, p.project, p.name)
}

// ---- parallel writers' parts

/// Where one group of one collection lives (the group name hashed: it is the user's).
pub fn parts_group(c: &CollectionPath, group: &str) -> String {
    let h = hex::encode(sha2::Sha256::digest(group.as_bytes()));
    format!("{PARTS}/{}/{}/{}/{}", c.entity, c.project, c.name, &h[..32])
}

pub fn parts_round(group_prefix: &str, round: u64) -> String {
    format!("{group_prefix}/{round:010}")
}

pub fn parts_dir(round_prefix: &str) -> String {
    format!("{round_prefix}/parts")
}

pub fn part(round_prefix: &str, unique: &str) -> String {
    format!("{round_prefix}/parts/{unique}.json")
}

/// Seal `n` of a round: `sealed.json` first, then `sealed-<n>.json` for each takeover.
pub fn seal(round_prefix: &str, n: u32) -> String {
    match n {
        0 => format!("{round_prefix}/sealed.json"),
        n => format!("{round_prefix}/sealed-{n}.json"),
    }
}

pub const FINISHED: &str = "finished.json";

pub fn finished(round_prefix: &str) -> String {
    format!("{round_prefix}/{FINISHED}")
}

/// The round prefix of a key below `parts/` (`parts/<e>/<p>/<name>/<group hash>/<round>/…`),
/// and its group's prefix.
pub fn round_of(key: &str) -> Option<(&str, &str)> {
    let n = key.match_indices('/').nth(5).map(|(i, _)| i)?;
    Some((&key[..n], key[..n].rsplit_once('/')?.0))
}

// ---- `artfs serve`: drafts and keys

pub fn draft(id: &str) -> String {
    format!("{DRAFTS}/{id}/draft.json")
}

/// The manifest a draft uploaded (a pointer to its content-addressed key).
pub fn draft_manifest(id: &str) -> String {
    format!("{DRAFTS}/{id}/manifest.json")
}

pub fn draft_base(id: &str) -> String {
    format!("{DRAFTS}/{id}/base.json")
}

pub fn draft_committed(id: &str) -> String {
    format!("{DRAFTS}/{id}/committed.json")
}

/// The directory of an XXH128 draft's `createArtifactFiles` batches (entry digest → blob MD5).
pub fn draft_blob_md5s(id: &str) -> String {
    format!("{DRAFTS}/{id}/md5/")
}

pub fn draft_blob_md5s_batch(id: &str, batch: &[u8]) -> String {
    format!("{}{}.json", draft_blob_md5s(id), hex::encode(sha2::Sha256::digest(batch)))
}

/// The draft a client id maps to (hashed: client ids are the SDK's).
pub fn draft_of_client(client_id: &str) -> String {
    format!("{DRAFTS}/by-client/{}.json", hex::encode(sha2::Sha256::digest(client_id.as_bytes())))
}

/// An API key, stored by the SHA-256 of its secret, never the secret.
pub fn api_key(secret: &str) -> String {
    api_key_by_hash(&api_key_hash(secret))
}

/// The hash that names a key in the registry (and, shortened, to operators).
pub fn api_key_hash(secret: &str) -> String {
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

pub fn api_key_by_hash(hash: &str) -> String {
    format!("{KEYS}/{hash}.json")
}

/// The hash an API key's record key names, if it is one.
pub fn hash_of_api_key(key: &str) -> Option<&str> {
    let hash = key.strip_prefix(KEYS)?.strip_prefix('/')?.strip_suffix(".json")?;
    (!hash.contains('/')).then_some(hash)
}

/// The mark that revokes a key: created once, never removed.
pub fn api_key_revoked(hash: &str) -> String {
    format!("{KEYS}/revoked/{hash}.json")
}

pub fn api_key_uses(hash: &str) -> String {
    format!("{KEYS}/used/{hash}")
}

/// That a key was used in minute `unix_minute` (create-only: one object per key and minute).
pub fn api_key_used(hash: &str, unix_minute: u64) -> String {
    format!("{}/{unix_minute:010}", api_key_uses(hash))
}

/// Part `n` of a multipart upload through `artfs serve`, until the upload completes.
pub fn upload_part(upload: &str, n: u32) -> String {
    format!("{UPLOADS}/{upload}/{n:05}")
}

/// The upload a key below `uploads/` belongs to (the key itself for a stray object).
pub fn upload_of(key: &str) -> &str {
    key.match_indices('/').nth(1).map_or(key, |(i, _)| &key[..i])
}

// ---- leases

/// A new lease or gc marker in `dir` ([`LEASES`] or [`GC`]): time, process and a random part.
pub fn lease(dir: &str, unique: &str) -> String {
    format!("{dir}/{unique}.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key shape with fixed inputs. A change here is a change of the on-disk format: old
    /// registries would no longer be read (or would be swept by gc). Bump nothing silently.
    #[test]
    fn layout_golden() {
        let c = CollectionPath::new("acme", "bikes", "ds").unwrap();
        let md5: [u8; 16] = *b"0123456789abcdef";
        let blob = blob_of_md5(&md5);
        let group = parts_group(&c, "g");
        let round = parts_round(&group, 7);
        let run = run("acme", "bikes", "r1");
        let got = [
            MARKER.to_owned(),
            blob.clone(),
            chunk_sidecar(&blob),
            manifest_of(b"{}"),
            collection(&c),
            commit(&collection(&c), 42),
            checkpoint(&collection(&c), 32),
            run.clone(),
            commit(&run, 3),
            run_stream(&run, "u1"),
            run_file(&run, "config.yaml", "u2"),
            lineage_edge("used", ("acme", "bikes", "r1"), &c, 12).join(" | "),
            link_edge(&c, 12, &CollectionPath::new("acme", "models", "prod").unwrap()),
            round.clone(),
            part(&round, "u3"),
            seal(&round, 0),
            seal(&round, 2),
            finished(&round),
            draft("abc"),
            draft_manifest("abc"),
            draft_base("abc"),
            draft_committed("abc"),
            draft_blob_md5s_batch("abc", b"[]"),
            draft_of_client("client"),
            api_key("secret"),
            api_key_revoked(&api_key_hash("secret")),
            api_key_used(&api_key_hash("secret"), 29_000_000),
            upload_part("0a1b", 7),
            URL_SIGNING_SECRET.to_owned(),
            lease(LEASES, "u4"),
            lease(GC, "u5"),
            commit(DIRECTORY, 1),
            checkpoint(DIRECTORY, 32),
        ];
        let want = [
            "artfs-registry.json",
            "blobs/md5/30/313233343536373839616263646566",
            "chunks/md5/30/313233343536373839616263646566.json",
            "manifests/99914b932bd37a50b983c5e7c90ae93b.json",
            "collections/acme/bikes/ds",
            "collections/acme/bikes/ds/commits/00000000000000000042.json",
            "collections/acme/bikes/ds/checkpoints/00000000000000000032.json",
            "runs/acme/bikes/r1",
            "runs/acme/bikes/r1/commits/00000000000000000003.json",
            "runs/acme/bikes/r1/stream/u1.json",
            "runs/acme/bikes/r1/files/config.yaml/u2",
            "lineage/versions/acme/bikes/ds/0000000012/used/acme/bikes/r1 | lineage/runs/acme/bikes/r1/used/acme/bikes/ds/0000000012",
            "links/acme/bikes/ds/0000000012/acme/models/prod",
            "parts/acme/bikes/ds/cd0aa9856147b6c5b4ff2b7dfee5da20/0000000007",
            "parts/acme/bikes/ds/cd0aa9856147b6c5b4ff2b7dfee5da20/0000000007/parts/u3.json",
            "parts/acme/bikes/ds/cd0aa9856147b6c5b4ff2b7dfee5da20/0000000007/sealed.json",
            "parts/acme/bikes/ds/cd0aa9856147b6c5b4ff2b7dfee5da20/0000000007/sealed-2.json",
            "parts/acme/bikes/ds/cd0aa9856147b6c5b4ff2b7dfee5da20/0000000007/finished.json",
            "drafts/abc/draft.json",
            "drafts/abc/manifest.json",
            "drafts/abc/base.json",
            "drafts/abc/committed.json",
            "drafts/abc/md5/4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945.json",
            "drafts/by-client/948fe603f61dc036b5c596dc09fe3ce3f3d30dc90f024c85f3c82db2ccab679d.json",
            "keys/2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b.json",
            "keys/revoked/2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b.json",
            "keys/used/2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b/0029000000",
            "uploads/0a1b/00007",
            "serve/url-signing-secret",
            "leases/u4.json",
            "gc/u5.json",
            "directory/commits/00000000000000000001.json",
            "directory/checkpoints/00000000000000000032.json",
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn keys_parse_back_and_foreign_names_are_not_part_of_a_log() {
        assert!(commit("c", 9) < commit("c", 10));
        assert_eq!(seq_in("a/b/commits", &commit("a/b", 42)), Some(42));
        for foreign in ["a/b/commits/README", "a/b/commits/.nfs000001", "a/b/commits/1.json"] {
            assert_eq!(seq_in("a/b/commits", foreign), None, "{foreign}");
        }
        assert_eq!(seq_in("a/b/commits", "a/b/commits/x/00000000000000000001.json"), None);
        assert_eq!(seq_in("a/b/commits", "a/b/commits/00000000000000000001.json.bak"), None);
        let blob = blob_of_md5(b"0123456789abcdef");
        assert_eq!(md5_hex_of_blob(&blob), Some(hex::encode(b"0123456789abcdef")));
        assert_eq!(hex_of_manifest(&manifest_of(b"{}")), Some("99914b932bd37a50b983c5e7c90ae93b"));
        assert_eq!(upload_of(&upload_part("0a1b", 3)), "uploads/0a1b");
        assert_eq!(upload_of("uploads/stray"), "uploads/stray");
        let round = parts_round(&parts_group(&CollectionPath::new("e", "p", "n").unwrap(), "g"), 1);
        assert_eq!(
            round_of(&part(&round, "x")),
            Some((round.as_str(), round.rsplit_once('/').unwrap().0))
        );
    }
}
