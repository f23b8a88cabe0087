//! artfs: versioned datasets and models (W&B-compatible artifacts) mounted as read-only folders.
//!
//! - `cli`, `config`, `cmd`: the edge (flags, resolved settings, one file per subcommand);
//!   `profile`: the config file's named profiles;
//! - `names`: artifact paths `[[entity/]project/]name[:alias]`;
//! - `manifest`: the W&B manifest format and digests;
//! - `stage`: PATH arguments to manifest entries (hashing);
//! - `store`: the registry's object storage (local, S3, GCS);
//! - `registry`: versions and aliases, as a commit log per collection (`log`), and the leases
//!   that keep writers and gc apart (`lease`), runs (`runs`) and their lineage index (`lineage`);
//! - `svg`: the lineage graph drawn as SVG (`artfs lineage --svg` and the web page of `serve`),
//!   grouped per job type and artifact type or exploded, laid out by `svg::layout`;
//! - `cache`: the content-addressed local blob cache;
//! - `fetch`: entries into the cache (verified), lazy chunked reads of large blobs (`ranged`),
//!   the one stall-bounded request (`stall`), whether the registry answers (`health`), and
//!   `artfs get`;
//! - `fs`: the read-only filesystem the mount serves (logic in `fs`, kernel glue in `fs::fuse`);
//! - `http`: the one HTTP policy (timeouts, bounded jittered retries) and retry loop of every
//!   client;
//! - `mount`: the `artfs mount` daemon and `artfs unmount`; `fstab`: the same binary as
//!   `mount.fuse.artfs`, for `mount -t fuse.artfs` and fstab;
//! - `prefetch`: warming the cache with a version ahead of its readers (`artfs prefetch`, the
//!   mount's warm-up);
//! - `refs`: reference entries (s3://, gs://, http(s)://, file://): logging and pinned reads;
//! - `source`: the seam between readers (mount, `get`, `ls`) and where versions live: a catalog
//!   and per-version blob sources, implemented by the artfs registry (`source::registry`);
//! - `serve`: `artfs serve`, the W&B-compatible HTTP API over the registry (GraphQL + storage);
//! - `progress`: progress bars;
//! - `report`: errors and their causes on one line (the CLI's messages, the daemon's log);
//! - `terminal`: registry text made safe to print (control characters escaped);
//! - `tls`: which HTTPS servers are trusted (the platform's roots and the SDK's CA bundles);
//! - `kind`: what kind of failure an error is (not found, forbidden, invalid, corrupt,
//!   unavailable), for the Python package and `ARTFS_ERROR_FORMAT=json`;
//! - `python` (feature `python`): the wheel's extension module, `artfs._native`.

pub mod cache;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod fetch;
pub mod fs;
pub mod fstab;
pub mod http;
pub mod kind;
pub mod manifest;
pub mod mount;
pub mod names;
pub mod prefetch;
pub mod profile;
pub mod progress;
#[cfg(feature = "python")]
pub mod python;
pub mod refs;
pub mod registry;
pub mod report;
pub mod serve;
pub mod source;
pub mod stage;
pub mod store;
pub mod svg;
pub mod terminal;
pub mod tls;
