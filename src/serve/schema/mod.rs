//! The GraphQL schema: W&B's types, limited to the fields the `wandb` SDK 0.31 selects
//! (`docs/WANDB-API.md` §9.2), resolved over the registry. Everything the SDK may send as
//! explicit `null` is nullable here; a field the schema lacks gets the engine's standard
//! "Cannot query field" error, which is how the SDK probes servers.
//!
//! One file per part of the schema: `types` (scalars, enums, small objects), `project`,
//! `collections`, `files` (memberships and files), `artifacts`, `links` (portfolios), `runs`,
//! `orgs` (users, organizations, teams, registries), `query`, `inputs` (the mutations' inputs and
//! payloads) and `mutation`; `limits` bounds a document before the engine sees it.
//!
//! Access: every resolver checks the caller's entities. Another entity's project, collection or
//! version resolves as `null` (as if it did not exist); writes need a key that may write there.

use async_graphql::{
    Context, EmptySubscription, Enum, Error, ErrorExtensions as _, InputObject, InputValueError,
    InputValueResult, Interface, Object, Scalar, ScalarType, Schema, SimpleObject, Union, Value,
};
use chrono::{DateTime, Utc};

use super::auth::Access;
use super::ids::{self, NodeId};
use super::{ServeError, Shared};
use crate::manifest::{Entry, Manifest, ManifestError};
use crate::names::{CollectionPath, LATEST, Selector, parse_version};
use crate::registry::drafts::{Draft, DraftStatus, NO_BASE};
use crate::registry::lineage::{EdgeKind, VersionKey};
use crate::registry::runs::{RunFields, RunOp, RunPath, RunState};
use crate::registry::{CollectionState, Registry, RegistryError, ResolvedVersion, blob_key};

pub type WandbSchema = Schema<Query, Mutation, EmptySubscription>;

/// Deepest nesting the SDK's documents reach is about 10; this bounds hostile ones.
const MAX_DEPTH: usize = 32;
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 10_000;
/// Blob existence checks in flight at once for one request.
const HEADS_IN_FLIGHT: usize = 16;

pub fn build(shared: std::sync::Arc<Shared>) -> WandbSchema {
    Schema::build(Query, Mutation, EmptySubscription)
        .data(shared)
        .register_output_type::<ArtifactCollection>()
        .limit_depth(MAX_DEPTH)
        .disable_introspection()
        .finish()
}

type Res<T> = Result<T, Error>;

/// A resolver's error, carrying the `extensions.code` its kind decides (`serve::error`). Every
/// resolver error goes through here: `?` on a bare error would give it no code.
fn err(e: impl Into<ServeError>) -> Error {
    e.into().extend()
}

/// The request is malformed or asks for what artfs does not do.
fn invalid(msg: impl Into<String>) -> Error {
    err(ServeError::Invalid(msg.into()))
}

/// What the request names does not exist (or the caller may not see it).
fn not_found(msg: impl Into<String>) -> Error {
    err(ServeError::NotFound(msg.into()))
}

/// A manifest the registry holds does not parse.
fn stored_manifest(e: ManifestError) -> Error {
    err(ServeError::StoredManifest(e))
}

fn shared<'a>(ctx: &Context<'a>) -> &'a Shared {
    ctx.data_unchecked::<std::sync::Arc<Shared>>()
}

fn access<'a>(ctx: &Context<'a>) -> &'a Access {
    ctx.data_unchecked::<Access>()
}

fn reg<'a>(ctx: &Context<'a>) -> &'a Registry {
    &shared(ctx).registry
}

fn must_write(ctx: &Context<'_>, entity: &str) -> Res<()> {
    let a = access(ctx);
    let forbidden = |msg| Err(err(ServeError::Forbidden(msg)));
    if a.read_only && a.can_read(entity) {
        return forbidden(format!("permission denied: this API key of {} is read-only", a.user));
    }
    if !a.can_write(entity) {
        return forbidden(format!(
            "permission denied: this API key may not write entity {entity:?}"
        ));
    }
    Ok(())
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// Pages of a list: `after` is the index of the last item seen, as a string.
fn page<T: Clone>(items: &[T], after: Option<&str>, first: Option<i32>) -> (Vec<T>, PageInfo) {
    let start = after.and_then(|a| a.parse::<usize>().ok()).map(|a| a + 1).unwrap_or(0);
    let n = first.map(|f| f.clamp(0, MAX_PAGE as i32) as usize).unwrap_or(DEFAULT_PAGE);
    let start = start.min(items.len());
    let end = (start + n).min(items.len());
    let info = PageInfo {
        end_cursor: (end > start).then(|| (end - 1).to_string()),
        has_next_page: end < items.len(),
    };
    (items[start..end].to_vec(), info)
}

mod aliases;
mod artifacts;
mod collections;
mod files;
mod filters;
mod inputs;
pub mod limits;
mod links;
mod mutation;
mod orgs;
mod project;
mod query;
mod registries;
mod registry_edits;
mod retention;
mod run_history;
mod run_list;
mod runs;
mod teams;
mod types;
mod users;

use artifacts::*;
use collections::*;
use files::*;
use inputs::*;
pub use inputs::{part_key, valid_upload_id};
use links::*;
use mutation::*;
use orgs::Organization;
use project::*;
use query::*;
use retention::*;
use run_history::*;
use runs::*;
use types::*;
use users::User;
