//! Immutable inode tree of one artifact version, built from the manifest's entry paths.
//!
//! Invariants, established by [`Tree::build`] and never changed afterwards (there is no
//! mutating method and no interior mutability, so a `Tree` is `Send + Sync` and can be shared
//! behind an `Arc` without locks):
//!
//! - Node ids are dense, `0..len()`, and [`Tree::ROOT`] (id 0) is the version's root
//!   directory. The FUSE layer can therefore map `inode = base + id` with no lookup table.
//! - The children of a directory occupy one contiguous id range, sorted by name in byte order
//!   (`str` ordering). Lookup is a binary search, and a readdir offset is simply the index in
//!   that range: since the tree never changes, offsets stay valid for the tree's lifetime and
//!   a readdir can resume at any offset it handed out.
//! - Ids are assigned breadth-first, so every child id is greater than its parent's id: walking
//!   up always terminates, and a reverse scan visits children before their parents.
//! - Every name is non-empty, is neither `.` nor `..`, contains neither `/` nor NUL, and is at
//!   most [`NAME_MAX_BYTES`] long. Paths are validated upstream too; the builder re-checks
//!   because a bad name here would become a bad dirent in the kernel.
//! - Each manifest path is exactly one file; no path is both a file and a directory.
//!
//! Memory: one `Node` (20 bytes) per file or directory, an extra `DirInfo` (12 bytes) per
//! directory, and one arena holding every name once, in node-id order, so a name's end is the
//! next node's start. See [`Tree::heap_bytes`].
//!
//! Two sides: this file answers queries on a built tree; `build` builds one.

use std::cmp::Ordering;
use std::fmt;

/// Longest file name the kernel accepts (Linux `NAME_MAX`), in bytes.
pub const NAME_MAX_BYTES: usize = 255;

/// Marks a directory in [`Node::up`]. Taking the top bit caps a tree at 2^31 nodes, far beyond
/// any manifest that fits in memory, and keeps [`Node`] at five `u32`s.
const DIR_FLAG: u32 = 1 << 31;

/// Most nodes (files + directories + root) a tree may hold; ids must stay below [`DIR_FLAG`].
const MAX_NODES: usize = DIR_FLAG as usize;

/// Longest path quoted in an error, in bytes: a hostile manifest should not be able to turn
/// one log line into megabytes.
const ERROR_PATH_MAX_BYTES: usize = 1024;

/// A node of the tree; also the inode offset within the version's inode range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl NodeId {
    fn idx(self) -> usize {
        self.0 as usize
    }
}

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Dir,
    /// `entry` is the caller's index into the manifest; `size` is in bytes.
    File {
        entry: u32,
        size: u64,
    },
}

/// Why a manifest could not be turned into a tree. Every variant names the offending path so
/// the user can find it in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("manifest path {path:?} has an empty component")]
    EmptyComponent { path: String },
    #[error("manifest path {path:?} has a `.` or `..` component")]
    DotComponent { path: String },
    #[error("manifest path {path:?} contains a NUL byte")]
    NulByte { path: String },
    #[error("manifest path {path:?} has a {len}-byte component (limit {NAME_MAX_BYTES} bytes)")]
    NameTooLong { path: String, len: usize },
    #[error("manifest path {path:?} appears more than once")]
    Duplicate { path: String },
    #[error("manifest path {file:?} is a file, but {descendant:?} needs it to be a directory")]
    FileDirCollision { file: String, descendant: String },
    #[error("manifest too large for one version tree: {what}")]
    TooLarge { what: &'static str },
}

#[derive(Clone, Copy)]
struct Node {
    /// Byte offset of this node's name in [`Tree::names`].
    name_start: u32,
    /// Parent id, with [`DIR_FLAG`] set on directories.
    up: u32,
    /// File: the manifest entry index. Directory: index into [`Tree::dirs`].
    payload: u32,
    /// File: size in bytes. Directory: total bytes of all files below it (saturating).
    /// Split in two halves (low, high) so that `Node` has 4-byte alignment and takes 20 bytes
    /// instead of the 24 a `u64` field would force.
    size: [u32; 2],
}

impl Node {
    fn new(name_start: u32, up: u32, payload: u32, size: u64) -> Node {
        let mut node = Node { name_start, up, payload, size: [0, 0] };
        node.set_size(size);
        node
    }

    fn size(&self) -> u64 {
        u64::from(self.size[0]) | (u64::from(self.size[1]) << 32)
    }

    fn set_size(&mut self, bytes: u64) {
        // Truncating casts on purpose: the two halves of a u64.
        self.size = [bytes as u32, (bytes >> 32) as u32];
    }

    fn is_dir(&self) -> bool {
        self.up & DIR_FLAG != 0
    }

    fn parent(&self) -> u32 {
        self.up & !DIR_FLAG
    }
}

#[derive(Clone, Copy)]
struct DirInfo {
    first_child: u32,
    child_count: u32,
    subdir_count: u32,
}

// The per-entry memory budget rests on these sizes.
const _: () = assert!(size_of::<Node>() == 20 && size_of::<DirInfo>() == 12);

/// The directory tree of one artifact version. See the module docs for the invariants.
///
/// Methods taking a [`NodeId`] panic if the id did not come from this tree; check ids that
/// come from the kernel with [`Tree::contains`] first.
pub struct Tree {
    nodes: Vec<Node>,
    dirs: Vec<DirInfo>,
    /// Every node's name, concatenated in node-id order.
    names: String,
}

impl fmt::Debug for Tree {
    // A derived Debug would print a million nodes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tree")
            .field("nodes", &self.nodes.len())
            .field("dirs", &self.dirs.len())
            .field("name_bytes", &self.names.len())
            .finish()
    }
}

impl Tree {
    /// The version root directory.
    pub const ROOT: NodeId = NodeId(0);

    /// The version root directory (same as [`Tree::ROOT`]).
    pub fn root() -> NodeId {
        Self::ROOT
    }

    /// Number of nodes: files, directories and the root.
    #[expect(
        clippy::len_without_is_empty,
        reason = "a tree always holds its root, so it is never empty"
    )]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether `n` is a node of this tree (e.g. for an inode number received from the kernel).
    pub fn contains(&self, n: NodeId) -> bool {
        n.idx() < self.nodes.len()
    }

    /// Directory, or file with its manifest entry index and size.
    pub fn kind(&self, n: NodeId) -> NodeKind {
        let node = &self.nodes[n.idx()];
        if node.is_dir() {
            NodeKind::Dir
        } else {
            NodeKind::File { entry: node.payload, size: node.size() }
        }
    }

    pub fn is_dir(&self, n: NodeId) -> bool {
        self.nodes[n.idx()].is_dir()
    }

    /// Size in bytes: a file's size, or for a directory the total of all files below it
    /// (saturating at `u64::MAX`).
    pub fn size(&self, n: NodeId) -> u64 {
        self.nodes[n.idx()].size()
    }

    /// The parent directory; the root's parent is the root.
    pub fn parent(&self, n: NodeId) -> NodeId {
        NodeId(self.nodes[n.idx()].parent())
    }

    /// The node's own name; empty for the root.
    pub fn name(&self, n: NodeId) -> &str {
        let start = self.nodes[n.idx()].name_start as usize;
        let end =
            self.nodes.get(n.idx() + 1).map_or(self.names.len(), |next| next.name_start as usize);
        // Names were appended whole, in node order, so both ends are char boundaries.
        &self.names[start..end]
    }

    /// The child of `dir` called `name`, by binary search. `None` if `dir` is a file.
    /// `.` and `..` are never children; the FUSE layer resolves those itself.
    pub fn lookup(&self, dir: NodeId, name: &str) -> Option<NodeId> {
        let (mut lo, mut hi) = self.child_range(dir);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.name(NodeId(mid as u32)).cmp(name) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some(NodeId(mid as u32)),
            }
        }
        None
    }

    /// Children of `dir` in name order, starting at readdir `offset` (0 = first child). Each
    /// item carries the offset at which to resume after it. Empty if `dir` is a file or
    /// `offset` is past the end.
    pub fn children(&self, dir: NodeId, offset: usize) -> impl Iterator<Item = (usize, NodeId)> {
        let (lo, hi) = self.child_range(dir);
        let start = lo.saturating_add(offset).min(hi);
        (start..hi).map(move |id| (id - lo + 1, NodeId(id as u32)))
    }

    /// The children of `n`'s directory (`n` among them), as node ids: siblings are
    /// consecutive in name order. The root is its own only sibling.
    pub fn siblings(&self, n: NodeId) -> std::ops::RangeInclusive<u32> {
        if n == Self::ROOT {
            return 0..=0;
        }
        let (lo, hi) = self.child_range(self.parent(n));
        // Node ids are u32 and `n` is in `lo..hi`, so neither end truncates or underflows.
        lo as u32..=(hi - 1) as u32
    }

    /// Number of children of `dir`; 0 for a file.
    pub fn child_count(&self, dir: NodeId) -> usize {
        let (lo, hi) = self.child_range(dir);
        hi - lo
    }

    /// Number of child directories of `dir` (st_nlink = 2 + this); 0 for a file.
    pub fn subdir_count(&self, dir: NodeId) -> usize {
        self.dir_info(dir).map_or(0, |info| info.subdir_count as usize)
    }

    /// Path of `n` relative to the version root, `/`-separated; empty for the root.
    pub fn path(&self, n: NodeId) -> String {
        let mut names = Vec::new();
        let mut cur = n;
        // Terminates: parent ids are strictly smaller, down to the root.
        while cur != Self::ROOT {
            names.push(self.name(cur));
            cur = self.parent(cur);
        }
        names.reverse();
        names.join("/")
    }

    /// The node at a `/`-separated path relative to the version root; `""` is the root.
    /// Strict: leading, trailing or doubled slashes and `.`/`..` do not resolve.
    pub fn resolve(&self, path: &str) -> Option<NodeId> {
        if path.is_empty() {
            return Some(Self::ROOT);
        }
        path.split('/').try_fold(Self::ROOT, |dir, name| self.lookup(dir, name))
    }

    /// Heap bytes held by the tree (allocated capacity, not just used length).
    pub fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * size_of::<Node>()
            + self.dirs.capacity() * size_of::<DirInfo>()
            + self.names.capacity()
    }

    fn dir_info(&self, dir: NodeId) -> Option<&DirInfo> {
        let node = &self.nodes[dir.idx()];
        node.is_dir().then(|| &self.dirs[node.payload as usize])
    }

    /// Id range `lo..hi` of the children of `dir`; empty for a file.
    fn child_range(&self, dir: NodeId) -> (usize, usize) {
        self.dir_info(dir).map_or((0, 0), |info| {
            let lo = info.first_child as usize;
            (lo, lo + info.child_count as usize)
        })
    }
}

mod build;
#[cfg(test)]
mod tests;
