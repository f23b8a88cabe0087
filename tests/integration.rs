//! Integration tests: the real `artfs` binary against real registries, caches and mounts.

// Shared helpers: temp registries, running the binary, mounts that never outlive a test, trees.
mod util;

// `artfs log/ls/versions/show/get/alias/edit/rm/gc` on a local registry, end to end.
mod cli;
// Re-logs through the stat cache, and files that change while they are logged.
mod relog;
// `artfs prefetch`: the cache filled ahead of readers, verified, within its limit.
mod prefetch;
// Many writers at once and writers killed mid-upload.
mod concurrency;
// Registries in S3 (ministack) and GCS (fake-gcs-server) buckets.
mod cloud_registry;
// Reference entries (s3://, gs://, http://) read back pinned from real local servers.
mod references;
// Shared registries written by others: references a reader did not allow, wrong sizes, raw text.
mod trust;
// Write-path defects: lying sizes, bad names, crafted objects, interrupted logs.
mod hardening;
// Read-path bounds: stalled registries, abandoned downloads, daemon shutdown mid-fill.
mod hardening2;
// Downloads that end with their reader or the daemon; cache limits shared by processes.
mod hardening3;
// Runs and lineage from the CLI: --run on log/get/mount, `artfs run`, `runs`, `lineage`.
mod lineage;
// Real FUSE mounts of temporary registries, through the built `artfs` binary.
mod mount;
// The README's quick start, run verbatim in a fresh HOME.
mod readme;
// `scripts/test-services.sh` on other ports, beside the default services.
mod services;
// `artfs serve` with the real wandb SDK (flow scripts in tests/serve/), auth and bad input.
mod serve;
// `artfs serve` under hostile clients: GraphQL bombs, idle connections past the open-file limit.
mod serve_hostile;
// A W&B server (`artfs serve` with SDK-logged versions) as the registry; failing servers.
mod wandb_source;
// Lineage through `artfs serve`: SDK lineage, distributed artifacts, the web UI in Chromium.
mod serve_lineage;
// The first week on the command line: registry choice, exit statuses, discovery, --json, safety, help.
mod firstweek_cli;
// The rest of that first week: gc --dry-run, a bare ls, config-file profiles, --json on every command.
mod firstweek_cli2;
// Links and portfolios through `artfs serve` with the real SDK, the CLI, gc and two servers.
mod parity_links;
// Tags, TTL (expiry and gc) and collection edits through `artfs serve` with the real SDK.
mod parity_tags;
// W&B runs read back with the SDK: history, summary, filters, projects, resume, writers.
mod parity_runs;
// Users, organizations, teams and the W&B Registry through `artfs serve` and the admin CLI.
mod parity_orgs;
// W&B parity through `artfs serve`: `latest` as a plain alias, artifact files and their URLs.
mod parity_files;
// W&B's registry tests' flows through `artfs serve`: teams made by the SDK, registry searches.
mod parity_registry;
// `ARTFS_ERROR_FORMAT=json`: the kind of a failure, as the Python package reads it.
mod error_format;
// The web UI in headless Chromium: SDK URLs, files, previews, downloads, diff, search, safety.
mod webui;
// The web UI's lineage graph (grouped, Explode, legible at hundreds of nodes) and Markdown.
mod webui_graph;
// Running `artfs serve` for a team: key list/expiry/revocation, access log, metrics.
mod firstweek_ops;
// A W&B server whose listing queries fail: names found one by one; the key's own default entity.
mod wandb_lookup;
// Operating artfs: the mount daemon's metrics, a registry endpoint that never answers.
mod daemon_ops;
// Many small files: reads without opens, verification and alias consistency on a real mount.
mod small_files;
// Entries larger than the cache streamed through a bounded window; `get`'s space check.
mod stream;
// Many artifacts by `name:latest` through one mount over S3: exact bytes, `latest` moving.
mod many_artifacts;
// Blob bodies into a local registry through `artfs serve`: wrong MD5, hang-ups, temporary files.
mod serve_uploads;
