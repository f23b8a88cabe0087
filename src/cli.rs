//! Command-line flags (clap derive). Raw values only; `config` validates and resolves them.

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::registry::directory::Role;

/// Versioned datasets and models (W&B-compatible artifacts), mounted as read-only folders.
#[derive(Debug, Parser)]
#[command(name = "artfs", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
    /// Whether the command was given `--json`: its errors are then JSON too.
    #[arg(skip)]
    pub json: bool,
}

/// Parses the process's arguments (exits with clap's message on bad ones).
pub fn parse() -> Cli {
    let args = crate::fstab::effective_args(std::env::args_os().collect());
    let mut matches = command().get_matches_from(args);
    let json = json_requested(&matches);
    let mut cli = Cli::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.exit());
    cli.json = json;
    cli
}

/// Whether the innermost subcommand has a `--json` flag and it was given: every command's flag
/// has that one id, so no list of commands has to be kept here.
fn json_requested(matches: &clap::ArgMatches) -> bool {
    let mut m = matches;
    while let Some((_, sub)) = m.subcommand() {
        m = sub;
    }
    matches!(m.try_get_one::<bool>("json"), Ok(Some(true)))
}

/// The clap command with fixed usage lines. Clap's error usage line lists every option already
/// given, and one given through its env var (`ARTFS_REGISTRY`, …) then reads as if it were
/// required (`Usage: artfs get --registry <REGISTRY> <ARTIFACT>`); each command's own usage,
/// rendered before any parsing, says what is really needed.
pub fn command() -> clap::Command {
    let mut cmd = Cli::command();
    cmd.build();
    with_static_usage(cmd)
}

fn with_static_usage(mut cmd: clap::Command) -> clap::Command {
    let usage = cmd.render_usage().to_string();
    let usage = usage.strip_prefix("Usage: ").unwrap_or(&usage).trim().to_owned();
    cmd.override_usage(usage).mut_subcommands(with_static_usage)
}

/// Options every command takes, listed apart from the command's own in `--help`.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Registry URL: a directory, file://DIR, s3://bucket/prefix or gs://bucket/prefix, or a W&B
    /// server http(s)://HOST to read [default: for reads $WANDB_BASE_URL if set, else
    /// $XDG_DATA_HOME/artfs/registry]
    #[arg(long, global = true, env = "ARTFS_REGISTRY")]
    pub registry: Option<String>,
    /// Default entity for artifact paths [default: $USER, else the account name of the uid]
    #[arg(long, global = true, env = "ARTFS_ENTITY")]
    pub entity: Option<String>,
    /// Default project for artifact paths [default: uncategorized]
    #[arg(long, global = true, env = "ARTFS_PROJECT")]
    pub project: Option<String>,
    /// Blob cache directory [default: $XDG_CACHE_HOME/artfs]
    #[arg(long, global = true, env = "ARTFS_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Cache size limit, e.g. 50G, 500M [default: 10G, or half the free space of the cache's disk
    /// if that is less]
    #[arg(long, global = true, env = "ARTFS_CACHE_SIZE")]
    pub cache_size: Option<String>,
    /// Profile of the config file ($ARTFS_CONFIG, else $XDG_CONFIG_HOME/artfs/config.toml) whose
    /// settings (registry, entity, project, cache_dir, cache_size) stand in for these flags
    /// where they and their variables are not set [default: the file's [default] table]
    #[arg(long, global = true, env = "ARTFS_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
    /// More log output (-v info, -vv debug, -vvv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors; no progress bars
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log files, directories and references as a new version (only if the content changed)
    Log(LogArgs),
    /// List artifacts of a project, or (`ENTITY/`, `--all`) the projects there are
    Ls(LsArgs),
    /// List every version of an artifact
    Versions {
        /// `[[entity/]project/]name`
        artifact: String,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Show one version
    Show {
        /// `[[entity/]project/]name[:alias|:vN]` (default alias: latest)
        artifact: String,
        /// Also list the files
        #[arg(long)]
        files: bool,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Download a version, or some of its entries, to a folder, verifying every file
    Get(GetArgs),
    /// Fill the cache with a version, or a folder of it, ahead of its readers (verified)
    Prefetch(PrefetchArgs),
    /// Add or remove aliases of a version (`latest` too: a log moves it back to what it logs)
    Alias {
        /// `[[entity/]project/]name:vN` (or `:alias`)
        artifact: String,
        /// Point ALIAS at the version (moving it from another; repeatable)
        #[arg(long = "add", value_name = "ALIAS")]
        add: Vec<String>,
        /// Remove ALIAS from the version (repeatable)
        #[arg(long = "remove", value_name = "ALIAS")]
        remove: Vec<String>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Change the description or metadata of a version
    Edit {
        /// `[[entity/]project/]name:vN` (or `:alias`)
        artifact: String,
        /// The new description
        #[arg(long)]
        description: Option<String>,
        /// Replace the metadata: JSON object or @file
        #[arg(long)]
        metadata: Option<String>,
        /// Merge keys into the metadata: JSON object or @file
        #[arg(long)]
        merge_metadata: Option<String>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Delete a version (or, with --unaliased, every version without an alias)
    Rm {
        /// `name:vN`, or `name` with --unaliased
        artifact: String,
        /// Also drop the version's aliases (`latest` then moves to the newest remaining version)
        #[arg(long)]
        delete_aliases: bool,
        /// Delete every version that has no alias
        #[arg(long, conflicts_with = "delete_aliases")]
        unaliased: bool,
        /// Print what would be deleted and delete nothing
        #[arg(long)]
        dry_run: bool,
        /// Do not ask for confirmation (asked only on a terminal, for --unaliased)
        #[arg(short, long)]
        yes: bool,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Delete blobs and manifests no live version uses
    Gc {
        /// Keep unreferenced objects younger than this (e.g. 1h, 30m, 0s)
        #[arg(long, default_value = "1h")]
        grace: String,
        /// Do not ask for confirmation (asked only on a terminal)
        #[arg(short, long)]
        yes: bool,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
        /// Print what gc would delete (expired versions, blobs, manifests, uploads, bytes and
        /// every key) and delete nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Inspect and trim the local blob cache
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// Mount the registry, or one artifact version, as a read-only folder
    #[command(override_usage = "artfs mount [OPTIONS] [ARTIFACT] MOUNTPOINT")]
    Mount(MountArgs),
    /// Serve the registry over W&B's API, so the `wandb` SDK logs and uses artifacts in it
    /// (point it there with WANDB_BASE_URL and a key from `artfs key create`)
    Serve(ServeArgs),
    /// Manage the API keys `artfs serve` accepts
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Start or finish a run, for shell pipelines that want one run across several commands
    Run {
        #[command(subcommand)]
        command: RunCommand,
    },
    /// List the runs of a project, with their job type, state and what they logged and used
    Runs {
        /// `entity/project` or `project` [default: the default entity and project]
        scope: Option<String>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Show the lineage graph of a version: the runs that logged and used it, the versions they
    /// used and logged, and so on
    Lineage(LineageArgs),
    /// Unmount an artfs mount; its daemon then exits
    Unmount {
        /// Where the registry or version is mounted
        mountpoint: PathBuf,
        /// Detach now even if files are open; the mount goes away when they are closed
        #[arg(short = 'z', long)]
        lazy: bool,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Add or remove tags of a version (or, with --collection, of its collection)
    Tag {
        /// `[[entity/]project/]name:vN` (or `:alias`)
        artifact: String,
        /// Add TAG (repeatable)
        #[arg(long = "add", value_name = "TAG")]
        add: Vec<String>,
        /// Remove TAG (repeatable)
        #[arg(long = "remove", value_name = "TAG")]
        remove: Vec<String>,
        /// Tag the collection rather than the version
        #[arg(long)]
        collection: bool,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Set the time-to-live of a version, after which it is gone and `gc` reclaims it (or, with
    /// --collection, the default TTL of the versions that inherit theirs)
    Ttl {
        /// `[[entity/]project/]name:vN` (or `:alias`)
        artifact: String,
        /// A duration from the version's creation (90s, 30m, 12h, 30d), `never`, or `inherit`
        /// (the collection's default)
        ttl: String,
        /// Set the collection's default TTL instead
        #[arg(long)]
        collection: bool,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Manage the users `artfs serve` knows (keys belong to users)
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage organizations: their org entity, members and roles
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Manage teams: entities of an organization shared by their members
    Team {
        #[command(subcommand)]
        command: TeamCommand,
    },
    /// List the artfs mounts on this machine and what each mounts
    Mounts {
        /// Print them as JSON
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (e.g. `artfs completions bash > ~/.local/share/bash-completion/completions/artfs`)
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff; `artfs man | man -l -`)
    Man,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// `entity/project` or `project` [default: the default entity and project]; `ENTITY/` (with
    /// the slash) lists the projects of ENTITY with their artifact counts
    #[arg(conflicts_with = "all")]
    pub scope: Option<String>,
    /// List every entity and project the registry holds, with their artifact counts
    #[arg(long)]
    pub all: bool,
    /// Only artifacts of this type (dataset, model, ...)
    #[arg(long = "type", value_name = "TYPE")]
    pub artifact_type: Option<String>,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

/// The run a command is part of (lineage): `log` records that the run logged the version, `get`
/// and `mount` that it used it.
#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// Record this command in run ID (`[[entity/]project/]ID`, created if new; default entity
    /// and project: the global ones)
    #[arg(long = "run", value_name = "ID", env = "ARTFS_RUN")]
    pub run: Option<String>,
    /// The run's job type (preprocess, train, eval, ...), set on the run
    #[arg(long, value_name = "T", requires = "run")]
    pub job_type: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// Start a run (or update one) and print its id; pass it to later commands with --run or
    /// ARTFS_RUN
    Start {
        /// `[[entity/]project/]ID` [default: a new random id in the default project]
        id: Option<String>,
        /// The run's job type (preprocess, train, eval, ...)
        #[arg(long, value_name = "T")]
        job_type: Option<String>,
        /// Display name
        #[arg(long)]
        name: Option<String>,
        /// Group of related runs
        #[arg(long)]
        group: Option<String>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Mark a run finished
    Finish {
        /// `[[entity/]project/]ID`
        #[arg(env = "ARTFS_RUN")]
        id: String,
        /// The run's exit code (0: succeeded)
        #[arg(long, default_value_t = 0)]
        exit_code: i64,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct LineageArgs {
    /// `[[entity/]project/]name[:alias|:vN]` (default alias: latest)
    pub artifact: String,
    /// Only upstream: the run that logged it, the versions that run used, ...
    #[arg(long, conflicts_with = "down")]
    pub up: bool,
    /// Only downstream: the runs that used it, the versions they logged, ...
    #[arg(long)]
    pub down: bool,
    /// Hops (edges) to follow from the version [default: all]
    #[arg(long, value_name = "N")]
    pub depth: Option<u32>,
    /// The graph as JSON: {root, nodes, edges}
    #[arg(long, conflicts_with_all = ["dot", "svg"])]
    pub json: bool,
    /// The graph in Graphviz DOT
    #[arg(long, conflicts_with = "svg")]
    pub dot: bool,
    /// Draw the graph as SVG into FILE (the picture `artfs serve`'s web page shows): runs
    /// grouped per job type and versions per artifact type, one box with a count per group
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// With --svg: every run and version in a box of its own instead of grouped
    #[arg(long, requires = "svg")]
    pub explode: bool,
}

#[derive(Debug, Args)]
pub struct MountArgs {
    /// `[ARTIFACT] MOUNTPOINT`. With only MOUNTPOINT, the whole registry appears there as
    /// `<entity>/<project>/<name>:vN/` directories and `<name>:<alias>` symlinks. With
    /// `[[entity/]project/]name[:alias|:vN]` first, that one version (default alias: latest),
    /// resolved once now, appears at MOUNTPOINT.
    #[arg(required = true, num_args = 1..=2, value_name = "PATH")]
    pub targets: Vec<PathBuf>,
    /// Stay attached and serve until unmounted (for systemd and tests) instead of returning
    /// once the mount is ready
    #[arg(long)]
    pub foreground: bool,
    /// Let other users read the mount (non-root users need `user_allow_other` in
    /// /etc/fuse.conf)
    #[arg(long)]
    pub allow_other: bool,
    /// Mount over a directory that has files (hidden while mounted); without it a non-empty
    /// mount point is refused
    #[arg(long)]
    pub allow_non_empty: bool,
    /// Owner shown for every file and directory, as mount-s3 and rclone do [default: the
    /// mounting user]; with --allow-other, the permission bits decide who reads
    #[arg(long, value_name = "UID")]
    pub uid: Option<u32>,
    /// Group shown for every file and directory [default: the mounting user's group]
    #[arg(long, value_name = "GID")]
    pub gid: Option<u32>,
    /// Permission bits of files, octal [default: 0444]; the mount stays read-only
    #[arg(long, value_name = "MODE")]
    pub file_mode: Option<String>,
    /// Permission bits of directories, octal [default: 0555]
    #[arg(long, value_name = "MODE")]
    pub dir_mode: Option<String>,
    /// Never hand complete cached files to the kernel with FUSE passthrough; serve them through
    /// the page cache instead (passthrough needs Linux 6.9+ and root, and falls back by itself)
    #[arg(long)]
    pub no_passthrough: bool,
    /// Small files (up to 4 MiB) fetched ahead of a reader that opens a directory's files in
    /// name order (`cp -r`, `tar`, loaders walking a folder); 0 turns this off
    #[arg(long, default_value_t = crate::fs::READAHEAD_FILES, value_name = "N")]
    pub readahead_files: u32,
    /// When a reader opens a version's files in shuffled order (a data loader's first epoch),
    /// fetch that version's small files (up to 4 MiB) into the cache in the background, up to
    /// SIZE bytes (`2G`, `500M`; also bounded by --cache-size); 0 turns this off
    #[arg(long, default_value = "0", value_name = "SIZE")]
    pub warm_up: String,
    /// Seconds after which registry listings and aliases are read again, so new versions and
    /// moved aliases show up without remounting (0: on every access)
    #[arg(long, default_value_t = crate::fs::REFRESH_INTERVAL.as_secs(), value_name = "N")]
    pub refresh_secs: u64,
    /// Seconds a request waits for a registry that does not answer before it fails with EIO
    /// (retries included); right after such a timeout, requests fail at once for as long
    #[arg(long, default_value_t = crate::fs::REGISTRY_TIMEOUT.as_secs(), value_name = "N")]
    pub timeout_secs: u64,
    /// Log file of the background daemon [default: $XDG_STATE_HOME/artfs/mount-<mountpoint>.log]
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
    /// Print the mount as JSON (`{mountpoint, source, pid, log}`) once it is ready
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub access: RefAccessArgs,
    /// With --run: the first open of a file in a version records that the run used it
    #[command(flatten)]
    pub run: RunArgs,
    /// Serve the daemon's counters (cache hits, misses, evictions, bytes fetched, errors, open
    /// files) as Prometheus text at http://ADDR/metrics, e.g. 127.0.0.1:9101 [default: off]
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<String>,
}

/// What reference entries may reach when read (`get`, `mount`). Whoever writes a registry chooses
/// its references, so by default reads reach neither local files nor private addresses.
#[derive(Debug, Clone, Default, Args)]
pub struct RefAccessArgs {
    /// Read `file://` references whose file (symlinks resolved) is below DIR; repeatable, and
    /// colon-separated in the environment variable [default: none]
    #[arg(long = "allow-file-refs", value_name = "DIR", env = "ARTFS_ALLOW_FILE_REFS")]
    #[arg(value_delimiter = ':')]
    pub allow_file_refs: Vec<PathBuf>,
    /// Let `http(s)://` references reach loopback, link-local and private addresses (127.0.0.0/8,
    /// 10.0.0.0/8, 169.254.0.0/16, fc00::/7, ...) [default: public addresses only]
    #[arg(long, env = "ARTFS_ALLOW_PRIVATE_REFS", action = clap::ArgAction::SetTrue)]
    #[arg(value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_private_refs: bool,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// `[[entity/]project/]name[:alias|:vN]`
    pub artifact: String,
    /// Entries to download, by their path in the version (as `show --files` lists them)
    /// [default: every entry]
    pub paths: Vec<String>,
    /// Download the entries whose path starts with P, as the W&B SDK's `path_prefix` (a plain
    /// string prefix: `train/` is one folder, `train` also matches `training.csv`)
    #[arg(long, value_name = "P")]
    pub path_prefix: Option<String>,
    /// Target folder [default: ./artifacts/<name>:<vN>]
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Download into a folder that holds files which are not the version's (they are kept) or
    /// differ from it (they are replaced); both are listed
    #[arg(long)]
    pub force: bool,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub access: RefAccessArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct PrefetchArgs {
    /// `[[entity/]project/]name[:alias|:vN][/PATH]`: a version, or its entries at or below PATH
    /// (a PATH needs the `:alias`, e.g. `ds:latest/train`)
    pub artifact: String,
    /// Downloads in flight (small files are bound by round trips: many in flight pay off)
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub jobs: usize,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub access: RefAccessArgs,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// `[[entity/]project/]name`
    pub artifact: String,
    /// Files or directories (`PATH` or `PATH=NAME` to store under NAME), or references to
    /// objects and prefixes (`s3://…`, `gs://…`, `http(s)://…`, `file://…`, `URI=NAME`)
    #[arg(required_unless_present_any = ["manifest", "finish"])]
    pub paths: Vec<String>,
    /// Add the PATHs as one part of group GROUP instead of publishing them: parts from many
    /// processes become one version when one of them runs `--finish GROUP`
    #[arg(long, value_name = "GROUP", conflicts_with = "finish")]
    pub part: Option<String>,
    /// Publish the parts of group GROUP as one version (the union of their files; a path two
    /// parts give different content is refused)
    #[arg(long, value_name = "GROUP", conflicts_with_all = ["paths", "manifest"])]
    pub finish: Option<String>,
    /// Start from an existing W&B manifest (e.g. one downloaded from W&B); its stored entries
    /// must already be in the registry or be given as PATHs too
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Record references by URI only: no etag, no size, reads are not pinned
    #[arg(long)]
    pub no_checksum: bool,
    /// Most objects one reference prefix may expand to
    #[arg(long, default_value_t = crate::refs::DEFAULT_MAX_OBJECTS)]
    pub max_objects: usize,
    /// Artifact type (dataset, model, result, ...)
    #[arg(long = "type", default_value = "dataset")]
    pub artifact_type: String,
    /// Extra aliases to point at the version (`latest` always moves)
    #[arg(long = "alias", value_name = "ALIAS")]
    pub aliases: Vec<String>,
    /// The version's description
    #[arg(long)]
    pub description: Option<String>,
    /// JSON object or @file
    #[arg(long)]
    pub metadata: Option<String>,
    /// Hash every file, even those the stat cache knows unchanged since their last log
    #[arg(long)]
    pub rehash: bool,
    /// Leave out files matching GLOB (gitignore syntax, relative to each logged folder;
    /// repeatable); a `.artfsignore` file in a logged folder adds its own lines
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (`127.0.0.1:0` picks a free port; the first stdout line says which)
    #[arg(long, default_value = "127.0.0.1:8765", value_name = "ADDR")]
    pub listen: String,
    /// Base URL clients reach this server at, used in the upload and download URLs it hands
    /// out [default: http://<listen address>]
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Lifetime of those signed upload and download URLs (e.g. 24h, 10m)
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    pub url_ttl: String,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// A storage region clients may name (`wandb.Artifact(storage_region=NAME)`) besides
    /// `default`; all of them store into this registry (repeatable). Others are refused, as W&B
    /// refuses regions it is not configured with
    #[arg(long = "storage-region", value_name = "NAME")]
    pub storage_regions: Vec<String>,
    /// One line per request on stderr: `on` (a log line), `json` (a JSON object per line) or
    /// `off`. Never a key, a URL signature or a query string
    #[arg(long, default_value = "on", value_name = "on|off|json")]
    pub access_log: String,
    /// Print the startup line as JSON (`{listening, wandb_base_url, ui, registry}`)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key; it is printed once and only its hash is stored in the registry
    Create {
        /// The user the key belongs to (W&B's viewer); created if there is none
        #[arg(required_unless_present = "user_flag", conflicts_with = "user_flag")]
        user: Option<String>,
        /// The same as USER
        #[arg(long = "user", value_name = "USER")]
        user_flag: Option<String>,
        /// Entities the key may use, comma-separated or repeated [default: the user's own]
        // Not `--entity`: that is the global default entity of artifact paths, and one long name
        // cannot mean both.
        #[arg(long, value_name = "ENTITY", value_delimiter = ',')]
        entities: Vec<String>,
        /// Read only: listing and downloads, no logging or edits
        #[arg(long)]
        read_only: bool,
        /// Use this secret instead of a random one (40+ characters). Hidden: only for harnesses
        /// that replay W&B's test fixtures, whose users log in with their user name as key.
        #[arg(long, hide = true, value_name = "SECRET")]
        secret: Option<String>,
        /// The key stops working this long after now (e.g. 90d, 12h) [default: never]
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// List the keys: id, user, entities, mode, created, expiry, revocation, last use (never
    /// the secret)
    List {
        /// Print the keys as JSON
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: every `artfs serve` refuses it from its next request on
    Revoke {
        /// The key's id from `artfs key list` (a unique prefix is enough)
        id: String,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Entries, bytes, hits and misses
    Stats {
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Evict least recently used entries down to SIZE
    Prune {
        /// Size to trim the cache to, e.g. 5G, 500M, 0
        #[arg(long)]
        to: String,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove every entry not in use
    Clear {
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap checks its definitions (e.g. two arguments with one long name) only in debug builds
    /// and only when a command is parsed; this checks all of them in every build.
    #[test]
    fn every_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }

    /// `--help` is the reference a user has at hand: every argument of every command says what
    /// it is for.
    #[test]
    fn every_argument_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                let builtin = matches!(id, "help" | "version");
                if !builtin && !arg.is_hide_set() && arg.get_help().is_none() {
                    missing.push(format!("{path}: {id}"));
                }
            }
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::command(), "artfs", &mut missing);
        assert!(missing.is_empty(), "arguments without help: {missing:#?}");
        let cmd = super::command();
        let get = cmd.find_subcommand("get").expect("artfs get");
        let globals: Vec<_> = get.get_arguments().filter(|a| a.is_global_set()).collect();
        assert!(globals.len() >= 7, "the global options reach the subcommands");
        for arg in globals {
            assert_eq!(arg.get_help_heading(), Some("Global options"), "{}", arg.get_id());
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; its own entity is its name
    Create {
        /// User name (also its entity)
        user: String,
        /// A server admin
        #[arg(long)]
        admin: bool,
        /// The user's email address
        #[arg(long, value_name = "E")]
        email: Option<String>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization with its first admin
    Create {
        /// Organization name
        org: String,
        /// Its first admin (a user)
        #[arg(long, value_name = "USER")]
        admin: String,
        /// The org entity, where its registries live [default: ORG]
        #[arg(long, value_name = "ENTITY")]
        entity: Option<String>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Add a member, or change a member's role
    AddMember {
        /// Organization name
        org: String,
        /// User name
        user: String,
        /// admin (manages), member (writes) or viewer (reads)
        #[arg(long)]
        role: Role,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove a member
    RmMember {
        /// Organization name
        org: String,
        /// User name
        user: String,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Delete an organization, its teams and its registries' settings
    Delete {
        /// Organization name
        org: String,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Create a team entity belonging to an organization
    Create {
        /// Team name (also its entity)
        team: String,
        /// The organization it belongs to
        #[arg(long, value_name = "ORG")]
        org: String,
        /// A member (repeatable)
        #[arg(long = "member", value_name = "USER")]
        members: Vec<String>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Add a member, or change a member's role
    AddMember {
        /// Team name
        team: String,
        /// User name
        user: String,
        /// admin (manages), member (writes) or viewer (reads)
        #[arg(long, default_value = "member")]
        role: Role,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
}
