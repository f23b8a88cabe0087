//! The inode table: which inode number names which registry node or version-tree node.
//!
//! Invariants (relied on by `decode`, and by the kernel, which caches inode numbers):
//! - An inode number is never reused and always names the same thing for the life of the mount.
//!   `forget` is ignored: the table only grows, by one small node per registry name or version
//!   seen, and version trees are immutable, so nothing ever needs to be renumbered.
//! - `ino >> 32 == 0`: a registry-level node (root, entity, project, alias symlink), stored at
//!   index `ino - 1` of the node table; the root is inode 1. Interned by value, so the same name
//!   always gets the same inode.
//! - `ino >> 32 == s > 0`: node `ino & 0xffff_ffff` of the tree of version slot `s` (index
//!   `s - 1`), i.e. every version gets the base `s << 32` and its [`Tree`] node ids map to
//!   `base + node` (a tree holds fewer than 2^31 nodes). A slot is created, without loading
//!   anything, when its `name:vN` is first looked up or listed; its manifest is fetched and its
//!   tree built once, on the first lookup, readdir or open inside it.
//! - Single mode has no registry nodes: slot 1 is the version, and its root is inode 1 (never
//!   `1 << 32`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::names::CollectionPath;
use crate::source::{BlobSource, VersionInfo};

use super::tree::{NodeId, Tree};
use super::version::LoadedVersion;
use super::{ArtifactFs, FsError, InodeNo, ROOT_INODE, lock, read, write};

/// Bits of an inode number that hold the tree node id; the bits above hold the version slot.
const SLOT_SHIFT: u32 = 32;

/// A registry-level node. Interned: equal values share one inode.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum RegistryNode {
    Root,
    Entity(String),
    Project(String, String),
    Alias(CollectionPath, String),
}

#[derive(Debug, Default)]
pub(super) struct NodeTable {
    /// `nodes[i]` has inode `i + 1`.
    pub(super) nodes: Vec<RegistryNode>,
    pub(super) index: HashMap<RegistryNode, InodeNo>,
}

impl NodeTable {
    /// The root is inode 1 of a registry mount; a single-version mount has no registry nodes.
    pub(super) fn new(single: bool) -> NodeTable {
        let mut table = NodeTable::default();
        if !single {
            table.nodes.push(RegistryNode::Root);
            table.index.insert(RegistryNode::Root, ROOT_INODE);
        }
        table
    }
}

#[derive(Debug, Default)]
pub(super) struct VersionTable {
    /// `slots[i]` is slot `i + 1`.
    pub(super) slots: Vec<Arc<VersionSlot>>,
    pub(super) index: HashMap<(CollectionPath, u32), Arc<VersionSlot>>,
}

/// One version of one collection, as seen by the mount.
#[derive(Debug)]
pub(super) struct VersionSlot {
    pub(super) slot: u32,
    pub(super) collection: CollectionPath,
    pub(super) record: VersionInfo,
    /// Where its stored entries come from.
    pub(super) blobs: Arc<dyn BlobSource>,
    /// `entity/project/name:vN`, for errors and logs.
    pub(super) label: String,
    /// Inode of the directory holding the version directory (itself in single mode).
    pub(super) parent: InodeNo,
    pub(super) loaded: OnceLock<Arc<LoadedVersion>>,
    /// Held while the manifest is fetched, so concurrent first lookups fetch it once.
    pub(super) loading: Mutex<()>,
}

/// What an inode number names.
pub(super) enum Inode {
    Registry(RegistryNode),
    Version(Arc<VersionSlot>, NodeId),
}

impl ArtifactFs {
    pub(super) fn intern(&self, node: RegistryNode) -> InodeNo {
        if let Some(ino) = read(&self.inner.nodes).index.get(&node) {
            return *ino;
        }
        let mut table = write(&self.inner.nodes);
        if let Some(ino) = table.index.get(&node) {
            return *ino;
        }
        let ino = InodeNo(table.nodes.len() as u64 + 1);
        table.nodes.push(node.clone());
        table.index.insert(node, ino);
        ino
    }

    pub(super) fn intern_version(
        &self,
        c: &CollectionPath,
        record: &VersionInfo,
        parent: InodeNo,
    ) -> Arc<VersionSlot> {
        let key = (c.clone(), record.version);
        if let Some(slot) = read(&self.inner.versions).index.get(&key) {
            return slot.clone();
        }
        let mut table = write(&self.inner.versions);
        if let Some(slot) = table.index.get(&key) {
            return slot.clone();
        }
        let slot = Arc::new(VersionSlot {
            // Slots stay far below 2^32: one per version directory ever looked at.
            slot: table.slots.len() as u32 + 1,
            collection: c.clone(),
            blobs: self.inner.catalog.blobs(c, record),
            record: record.clone(),
            label: format!("{c}:v{}", record.version),
            parent,
            loaded: OnceLock::new(),
            loading: Mutex::new(()),
        });
        table.slots.push(slot.clone());
        table.index.insert(key, slot.clone());
        slot
    }

    pub(super) fn version_ino(&self, slot: &VersionSlot, node: NodeId) -> InodeNo {
        if self.inner.single && slot.slot == 1 && node == Tree::ROOT {
            return ROOT_INODE;
        }
        InodeNo((u64::from(slot.slot) << SLOT_SHIFT) | u64::from(node.0))
    }

    pub(super) fn decode(&self, ino: InodeNo) -> Result<Inode, FsError> {
        let slot_no = ino.0 >> SLOT_SHIFT;
        if slot_no == 0 {
            if self.inner.single {
                return match ino == ROOT_INODE {
                    true => Ok(Inode::Version(self.slot(1)?, Tree::ROOT)),
                    false => Err(FsError::NotFound),
                };
            }
            // Inode 0 is never handed out.
            let index = ino.0.checked_sub(1).ok_or(FsError::NotFound)?;
            let index = usize::try_from(index).map_err(|_| FsError::NotFound)?;
            let table = read(&self.inner.nodes);
            let node = table.nodes.get(index).ok_or(FsError::NotFound)?;
            return Ok(Inode::Registry(node.clone()));
        }
        let slot = self.slot(slot_no)?;
        // Cannot truncate: the mask keeps the low 32 bits.
        let node = NodeId((ino.0 & 0xffff_ffff) as u32);
        let known = match slot.loaded.get() {
            Some(loaded) => loaded.tree.contains(node),
            None => node == Tree::ROOT,
        };
        if !known {
            return Err(FsError::NotFound);
        }
        Ok(Inode::Version(slot, node))
    }

    pub(super) fn slot(&self, slot_no: u64) -> Result<Arc<VersionSlot>, FsError> {
        let index = slot_no.checked_sub(1).ok_or(FsError::NotFound)?;
        let index = usize::try_from(index).map_err(|_| FsError::NotFound)?;
        read(&self.inner.versions).slots.get(index).cloned().ok_or(FsError::NotFound)
    }

    /// The version's tree, fetching the manifest on first use.
    pub(super) fn loaded(&self, slot: &VersionSlot) -> Result<Arc<LoadedVersion>, FsError> {
        if let Some(loaded) = slot.loaded.get() {
            return Ok(loaded.clone());
        }
        let _loading = lock(&slot.loading);
        if let Some(loaded) = slot.loaded.get() {
            return Ok(loaded.clone());
        }
        let json = self.inner.runtime.block_on(
            || format!("reading the manifest of {}", slot.label),
            self.inner.catalog.manifest_bytes(&slot.collection, &slot.record),
        )?;
        self.install_loaded(slot, &json)
    }

    /// Sets the version's tree from its manifest `json` (unless another thread set it first).
    pub(super) fn install_loaded(
        &self,
        slot: &VersionSlot,
        json: &[u8],
    ) -> Result<Arc<LoadedVersion>, FsError> {
        let loaded = Arc::new(LoadedVersion::from_json(&slot.label, json)?);
        tracing::info!(
            artifact = %slot.label,
            entries = slot.record.file_count,
            heap_bytes = loaded.heap_bytes(),
            "loaded version tree"
        );
        Ok(slot.loaded.get_or_init(|| loaded).clone())
    }
}
