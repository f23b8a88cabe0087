//! What `stat` shows: permissions, sizes, times and the kernel TTL of every node. Versions are
//! immutable, so their nodes carry [`VERSION_TTL`]; what the registry can change carries the
//! refresh interval.

use std::time::Duration;

use super::inodes::VersionSlot;
use super::tree::{NodeId, NodeKind, Tree};
use super::version::LoadedVersion;
use super::{ArtifactFs, Attr, FileKind, InodeNo, lock};

/// How long the kernel may cache entries and attributes inside a version directory: versions
/// are immutable, so only memory pressure should make it ask again.
pub const VERSION_TTL: Duration = Duration::from_secs(24 * 3600);

/// `st_blksize`: the buffer size `cat`, `cp` and Python's buffered files read with. Large, so a
/// sequential reader makes few syscalls: each read costs a FUSE round trip (or a passthrough
/// hop), not just a copy.
pub const BLOCK_SIZE_BYTES: u32 = 1024 * 1024;

/// Unit of `st_blocks`, fixed by POSIX.
const STAT_BLOCK_BYTES: u64 = 512;

impl ArtifactFs {
    pub(super) fn attr(&self, ino: InodeNo, kind: FileKind, size: u64, nlink: u32) -> Attr {
        let (perm, ttl) = match kind {
            FileKind::Directory => (self.inner.options.dir_mode, self.inner.options.refresh),
            FileKind::File => (self.inner.options.file_mode, VERSION_TTL),
            FileKind::Symlink => (0o777, self.inner.options.refresh),
        };
        Attr {
            ino,
            kind,
            size,
            blocks: size.div_ceil(STAT_BLOCK_BYTES),
            perm,
            nlink,
            uid: self.inner.options.uid,
            gid: self.inner.options.gid,
            mtime: self.inner.mounted_at,
            ttl,
        }
    }

    pub(super) fn registry_dir_attr(&self, ino: InodeNo) -> Attr {
        self.attr(ino, FileKind::Directory, 0, 2)
    }

    pub(super) fn symlink_attr(&self, ino: InodeNo, target: &str) -> Attr {
        self.attr(ino, FileKind::Symlink, target.len() as u64, 1)
    }

    pub(super) fn unloaded_root_attr(&self, slot: &VersionSlot) -> Attr {
        // Short TTL: the link count is only known once the tree is loaded.
        Attr {
            mtime: slot.record.created_at.into(),
            ..self.attr(self.version_ino(slot, Tree::ROOT), FileKind::Directory, 0, 2)
        }
    }

    pub(super) fn tree_attr(
        &self,
        slot: &VersionSlot,
        loaded: &LoadedVersion,
        node: NodeId,
    ) -> Attr {
        let ino = self.version_ino(slot, node);
        let attr = match loaded.tree.kind(node) {
            NodeKind::Dir => {
                let nlink = 2 + loaded.tree.subdir_count(node);
                Attr { ttl: VERSION_TTL, ..self.attr(ino, FileKind::Directory, 0, nlink as u32) }
            }
            NodeKind::File { entry, .. } if loaded.size_unknown(entry) => {
                let learned = lock(&self.inner.learned_sizes).get(&ino).copied();
                Attr {
                    // Not cached by the kernel until known: the size is learned when the file
                    // is first opened, and `stat` right after must show it. Once learned it is
                    // fixed for the life of the mount (the entry is cached in this process).
                    ttl: if learned.is_some() { VERSION_TTL } else { Duration::ZERO },
                    ..self.attr(ino, FileKind::File, learned.unwrap_or(0), 1)
                }
            }
            NodeKind::File { size, .. } => self.attr(ino, FileKind::File, size, 1),
        };
        Attr { mtime: slot.record.created_at.into(), ..attr }
    }
}
