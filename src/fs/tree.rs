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
//! Build: rather than sorting the full paths (slow when a shuffled manifest makes every
//! comparison chase two pointers, and wrong as is, since '-' and '.' sort below '/'), the
//! builder finds each file's directory with a hash map, buckets children by directory with
//! their names copied side by side, sorts each bucket, then numbers the nodes breadth-first.
//! Every step is linear except the per-directory sorts.

use std::cmp::Ordering;
use std::collections::HashMap;
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

    /// Builds the tree from `(path, manifest entry index, size in bytes)` triples, in any order.
    ///
    /// Directories are implied by the paths; the tree has no empty directories except the root.
    pub fn build<'a>(
        entries: impl IntoIterator<Item = (&'a str, u32, u64)>,
    ) -> Result<Tree, TreeError> {
        let mut builder = Builder {
            inputs: Vec::new(),
            dirs: vec![ScratchDir {
                parent: ROOT_DIR,
                name: "",
                witness: "",
                child_count: 0,
                child_name_bytes: 0,
            }],
            dir_ids: HashMap::new(),
        };
        builder.collect(entries)?;
        let grouped = builder.group_children()?;
        builder.assemble(&grouped)
    }

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

/// Rejects any path that cannot be turned into valid directory entry names, and returns the
/// byte offset where its last name starts. One pass over the bytes, since it runs for every
/// entry of million-entry manifests.
fn validate_path(path: &str) -> Result<usize, TreeError> {
    let bytes = path.as_bytes();
    let mut start = 0;
    loop {
        let end = bytes[start..]
            .iter()
            .position(|&b| b == b'/' || b == 0)
            .map_or(bytes.len(), |len| start + len);
        let err = match &path[start..end] {
            _ if bytes.get(end) == Some(&0) => TreeError::NulByte { path: for_error(path) },
            "" => TreeError::EmptyComponent { path: for_error(path) },
            "." | ".." => TreeError::DotComponent { path: for_error(path) },
            name if name.len() > NAME_MAX_BYTES => {
                TreeError::NameTooLong { path: for_error(path), len: name.len() }
            }
            _ if end == bytes.len() => return Ok(start),
            _ => {
                start = end + 1;
                continue;
            }
        };
        return Err(err);
    }
}

/// Bytes of each name that go into its sort key; the key is a `u64`.
const SORT_KEY_BYTES: usize = size_of::<u64>();

/// Scratch id of the root directory during the build.
const ROOT_DIR: u32 = 0;

/// [`Child::dir`] of a file; scratch directory ids stay below [`MAX_NODES`].
const NO_DIR: u32 = u32::MAX;

/// One manifest entry during the build.
struct Input<'a> {
    path: &'a str,
    entry: u32,
    /// Scratch id of the directory holding the file.
    parent: u32,
    size: u64,
    /// Length of the file's own name, the tail of `path` (at most [`NAME_MAX_BYTES`]).
    name_len: u8,
}

impl<'a> Input<'a> {
    fn name(&self) -> &'a str {
        // In bounds and on a char boundary: `name_len` was measured from a '/' to the end.
        &self.path[self.path.len() - usize::from(self.name_len)..]
    }
}

/// A directory during the build. Its scratch id is its index in [`Builder::dirs`], in
/// discovery order; final node ids are only assigned, breadth-first, once siblings are sorted.
struct ScratchDir<'a> {
    parent: u32,
    name: &'a str,
    /// The first path found below this directory, quoted if a file has the directory's path.
    witness: &'a str,
    child_count: u32,
    child_name_bytes: usize,
}

/// A child during the build. Its name is copied into a scratch buffer next to its siblings'
/// names, so that sorting a directory touches a few cache lines instead of chasing a pointer
/// into the (possibly shuffled) manifest per comparison.
///
/// It also carries the file's entry and size, so that numbering the nodes reads the children
/// sequentially instead of looking each input up at random.
#[derive(Clone, Copy, Default)]
struct Child {
    /// Big-endian bytes of the name just past the prefix all siblings share; see
    /// [`sort_siblings`].
    key: u64,
    size: u64,
    name_start: u32,
    /// Scratch id of the directory this child is, or [`NO_DIR`] for a file.
    dir: u32,
    entry: u32,
    name_len: u8,
}

/// Children grouped by parent directory and sorted by name within each group.
struct Grouped {
    children: Vec<Child>,
    /// Scratch directory `d` owns `children[bounds[d]..bounds[d + 1]]`.
    bounds: Vec<usize>,
    names: Vec<u8>,
}

impl Grouped {
    fn name(&self, child: &Child) -> &[u8] {
        &self.names[child.name_start as usize..][..usize::from(child.name_len)]
    }
}

struct Builder<'a> {
    inputs: Vec<Input<'a>>,
    dirs: Vec<ScratchDir<'a>>,
    /// Scratch id of every directory except the root, by its full path.
    dir_ids: HashMap<&'a str, u32>,
}

impl<'a> Builder<'a> {
    /// Validates every path, discovers the directories and counts each directory's children.
    fn collect(
        &mut self,
        entries: impl IntoIterator<Item = (&'a str, u32, u64)>,
    ) -> Result<(), TreeError> {
        let entries = entries.into_iter();
        self.inputs.reserve(entries.size_hint().0);
        // Manifests mostly list a directory's files together; remembering the previous
        // directory skips the hash lookup for all but the first of them.
        let mut last_dir: (&'a str, u32) = ("", ROOT_DIR);
        for (path, entry, size) in entries {
            let name_start = validate_path(path)?;
            self.reserve_node()?;
            // `name_start` is 0 or follows a '/', so both slices are on char boundaries.
            let (dir_path, name) = (&path[..name_start.saturating_sub(1)], &path[name_start..]);
            let parent = if dir_path == last_dir.0 {
                last_dir.1
            } else {
                let id = self.dir_id(dir_path, path)?;
                last_dir = (dir_path, id);
                id
            };
            self.count_child(parent, name);
            self.inputs.push(Input {
                path,
                entry,
                parent,
                size,
                name_len: name.len() as u8, // ≤ NAME_MAX_BYTES, validated
            });
        }
        Ok(())
    }

    /// Fails if one more node would not fit below [`MAX_NODES`].
    fn reserve_node(&self) -> Result<(), TreeError> {
        // Every input and every directory (the root included) becomes exactly one node.
        if self.inputs.len() + self.dirs.len() < MAX_NODES {
            Ok(())
        } else {
            Err(TreeError::TooLarge { what: "more than 2^31 files and directories" })
        }
    }

    fn count_child(&mut self, parent: u32, name: &str) {
        let dir = &mut self.dirs[parent as usize];
        dir.child_count += 1; // < MAX_NODES: every child is a counted node
        dir.child_name_bytes += name.len();
    }

    /// Scratch id of the directory at `dir_path` (`""` is the root), creating it and any
    /// missing ancestors. `witness` is the path that needs it.
    fn dir_id(&mut self, dir_path: &'a str, witness: &'a str) -> Result<u32, TreeError> {
        if dir_path.is_empty() {
            return Ok(ROOT_DIR);
        }
        if let Some(&id) = self.dir_ids.get(dir_path) {
            return Ok(id);
        }
        // Walk up to the nearest known ancestor, then create the missing directories top-down
        // so that each one's parent id exists when it is created.
        let mut missing = vec![dir_path];
        let mut parent = ROOT_DIR;
        let mut path = dir_path;
        while let Some(slash) = path.rfind('/') {
            path = &path[..slash];
            if let Some(&id) = self.dir_ids.get(path) {
                parent = id;
                break;
            }
            missing.push(path);
        }
        for path in missing.into_iter().rev() {
            self.reserve_node()?;
            let id = self.dirs.len() as u32; // < MAX_NODES, checked just above
            let name = split_last(path).1;
            self.count_child(parent, name);
            self.dirs.push(ScratchDir {
                parent,
                name,
                witness,
                child_count: 0,
                child_name_bytes: 0,
            });
            self.dir_ids.insert(path, id);
            parent = id;
        }
        Ok(parent)
    }

    /// Places every child in its parent's group, copies its name next to its siblings' and
    /// sorts each group by name (byte order).
    ///
    /// Consumes the inputs: everything later steps need is in the children, and freeing the
    /// inputs before the final tree is allocated lowers the build's peak memory.
    fn group_children(&mut self) -> Result<Grouped, TreeError> {
        let inputs = std::mem::take(&mut self.inputs);
        let mut bounds = Vec::with_capacity(self.dirs.len() + 1);
        let mut name_cursor = Vec::with_capacity(self.dirs.len());
        let (mut count, mut bytes) = (0usize, 0usize);
        for dir in &self.dirs {
            bounds.push(count);
            name_cursor.push(bytes);
            count += dir.child_count as usize;
            bytes += dir.child_name_bytes;
        }
        bounds.push(count);
        // The final arena holds exactly these bytes and is indexed by u32.
        if u32::try_from(bytes).is_err() {
            return Err(TreeError::TooLarge { what: "more than 4 GiB of names" });
        }

        let mut children = vec![Child::default(); count];
        let mut names = vec![0u8; bytes];
        let mut slot_cursor = bounds.clone();
        let mut place = |parent: u32, name: &str, dir: u32, entry: u32, size: u64| {
            let (slot, start) =
                (&mut slot_cursor[parent as usize], &mut name_cursor[parent as usize]);
            names[*start..*start + name.len()].copy_from_slice(name.as_bytes());
            children[*slot] = Child {
                key: 0, // set when sorting
                size,
                name_start: *start as u32, // < 4 GiB, checked above
                dir,
                entry,
                name_len: name.len() as u8, // ≤ NAME_MAX_BYTES, validated
            };
            *slot += 1;
            *start += name.len();
        };
        for (id, dir) in self.dirs.iter().enumerate().skip(1) {
            place(dir.parent, dir.name, id as u32, 0, 0);
        }
        for input in &inputs {
            place(input.parent, input.name(), NO_DIR, input.entry, input.size);
        }
        drop(inputs);

        for group in bounds.windows(2) {
            sort_siblings(&mut children[group[0]..group[1]], &names);
        }
        Ok(Grouped { children, bounds, names })
    }

    /// Numbers the nodes breadth-first, so that each directory's sorted children get
    /// consecutive ids, and lays out the final name arena in that order.
    fn assemble(&self, grouped: &Grouped) -> Result<Tree, TreeError> {
        let mut nodes: Vec<Node> = Vec::with_capacity(grouped.children.len() + 1);
        let mut names: Vec<u8> = Vec::with_capacity(grouped.names.len());
        let mut infos: Vec<DirInfo> = Vec::with_capacity(self.dirs.len());
        // Scratch directory ids in breadth-first order: `queue[k]` becomes `infos[k]`.
        let mut queue: Vec<u32> = Vec::with_capacity(self.dirs.len());
        let mut node_of_dir = vec![0u32; self.dirs.len()];
        let empty_dir = DirInfo { first_child: 0, child_count: 0, subdir_count: 0 };
        nodes.push(Node::new(0, DIR_FLAG, 0, 0)); // the root is its own parent
        queue.push(ROOT_DIR);
        infos.push(empty_dir);

        let mut k = 0;
        while k < queue.len() {
            let d = queue[k] as usize;
            let parent = node_of_dir[d];
            let group = &grouped.children[grouped.bounds[d]..grouped.bounds[d + 1]];
            let first_child = nodes.len();
            let mut subdirs = 0u32;
            for (j, child) in group.iter().enumerate() {
                if j > 0 && grouped.name(&group[j - 1]) == grouped.name(child) {
                    return Err(self.clash(d, group[j - 1], *child, grouped.name(child)));
                }
                let id = nodes.len() as u32; // < MAX_NODES, checked while collecting
                let name_start = names.len() as u32; // < 4 GiB, checked while grouping
                names.extend_from_slice(grouped.name(child));
                if child.dir != NO_DIR {
                    let scratch_id = child.dir;
                    node_of_dir[scratch_id as usize] = id;
                    queue.push(scratch_id);
                    let info = infos.len() as u32; // one per directory node, < MAX_NODES
                    infos.push(empty_dir);
                    nodes.push(Node::new(name_start, parent | DIR_FLAG, info, 0));
                    subdirs += 1;
                } else {
                    nodes.push(Node::new(name_start, parent, child.entry, child.size));
                }
            }
            infos[k] = DirInfo {
                first_child: first_child as u32,
                child_count: group.len() as u32,
                subdir_count: subdirs,
            };
            k += 1;
        }

        // Children have larger ids than parents, so one reverse pass totals every directory.
        for n in (1..nodes.len()).rev() {
            let (bytes, parent) = (nodes[n].size(), nodes[n].parent() as usize);
            // Sizes come from an untrusted manifest; saturate rather than wrap.
            let total = nodes[parent].size().saturating_add(bytes);
            nodes[parent].set_size(total);
        }

        // Cannot fail: the arena is a concatenation of whole names, each copied from a `&str`.
        let names = String::from_utf8(names).expect("names are whole UTF-8 strings");
        Ok(Tree { nodes, dirs: infos, names })
    }

    /// The error for two children of scratch directory `parent` that are both called `name`.
    fn clash(&self, parent: usize, a: Child, b: Child, name: &[u8]) -> TreeError {
        let path = || for_error(&self.child_path(parent, name));
        let witness = |dir: u32| for_error(self.dirs[dir as usize].witness);
        match (a.dir, b.dir) {
            (NO_DIR, NO_DIR) => TreeError::Duplicate { path: path() },
            (NO_DIR, dir) | (dir, NO_DIR) => {
                TreeError::FileDirCollision { file: path(), descendant: witness(dir) }
            }
            // Cannot happen (directories are deduplicated by path), but if it did, this
            // still names an entry below the directory.
            (dir, _) => TreeError::Duplicate { path: witness(dir) },
        }
    }

    /// Full path of the child `name` of scratch directory `dir`, for error messages.
    fn child_path(&self, mut dir: usize, name: &[u8]) -> String {
        let name = String::from_utf8_lossy(name);
        let mut names = vec![name.as_ref()];
        // Terminates: a directory is created after its parent, so parent ids are smaller.
        while dir != ROOT_DIR as usize {
            names.push(self.dirs[dir].name);
            dir = self.dirs[dir].parent as usize;
        }
        names.reverse();
        names.join("/")
    }
}

/// Sorts one directory's children by name (byte order).
fn sort_siblings(group: &mut [Child], names: &[u8]) {
    let name = |c: &Child| &names[c.name_start as usize..][..usize::from(c.name_len)];
    let Some(first) = group.first().map(name) else {
        return;
    };
    // Siblings often share a long prefix ("img_000…"). Keying each child on the 8 bytes that
    // follow the shared prefix settles most comparisons without touching the names, which
    // matters once a directory's names outgrow the CPU caches.
    let shared = group.iter().fold(first.len(), |shared, c| {
        first[..shared].iter().zip(name(c)).take_while(|(a, b)| a == b).count()
    });
    for child in group.iter_mut() {
        let rest = &name(child)[shared..];
        let mut key = [0u8; SORT_KEY_BYTES];
        let len = rest.len().min(SORT_KEY_BYTES);
        key[..len].copy_from_slice(&rest[..len]);
        // Zero padding sorts a shorter name first, as byte order does: names contain no NUL.
        child.key = u64::from_be_bytes(key);
    }
    // Equal keys only mean the first 8 bytes past the shared prefix agree; the names decide.
    group.sort_unstable_by(|a, b| a.key.cmp(&b.key).then_with(|| name(a).cmp(name(b))));
}

/// Splits a path into its directory part (`""` at the root) and its last name.
fn split_last(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(slash) => (&path[..slash], &path[slash + 1..]),
        None => ("", path),
    }
}

/// Copies `path` for an error message, shortened to [`ERROR_PATH_MAX_BYTES`].
fn for_error(path: &str) -> String {
    if path.len() <= ERROR_PATH_MAX_BYTES {
        return path.to_owned();
    }
    let mut end = ERROR_PATH_MAX_BYTES;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &path[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// Entry index = position in `paths`, size = 10 × (index + 1).
    fn build(paths: &[&str]) -> Result<Tree, TreeError> {
        Tree::build(paths.iter().enumerate().map(|(i, p)| (*p, i as u32, 10 * (i as u64 + 1))))
    }

    fn child_names(t: &Tree, dir: NodeId) -> Vec<&str> {
        t.children(dir, 0).map(|(_, c)| t.name(c)).collect()
    }

    /// Checks the structural invariants from the module docs on any tree.
    fn check_invariants(t: &Tree) {
        assert_eq!(t.parent(Tree::ROOT), Tree::ROOT);
        assert!(t.is_dir(Tree::ROOT));
        assert_eq!(t.name(Tree::ROOT), "");
        let mut seen = vec![false; t.len()];
        seen[0] = true;
        for id in 0..t.len() as u32 {
            let n = NodeId(id);
            if !t.is_dir(n) {
                assert_eq!(t.child_count(n), 0);
                assert_eq!(t.children(n, 0).count(), 0);
                continue;
            }
            let kids: Vec<NodeId> = t.children(n, 0).map(|(_, c)| c).collect();
            assert_eq!(kids.len(), t.child_count(n));
            for (k, (next, c)) in t.children(n, 0).enumerate() {
                assert_eq!(next, k + 1);
                assert_eq!(t.parent(c), n);
                assert!(c > n, "child id must exceed parent id");
                assert!(!std::mem::replace(&mut seen[c.idx()], true), "node listed twice");
                assert_eq!(t.lookup(n, t.name(c)), Some(c));
                assert_eq!(t.resolve(&t.path(c)), Some(c));
            }
            for c in &kids {
                let range = t.siblings(*c);
                assert_eq!(range.map(NodeId).collect::<Vec<_>>(), kids, "siblings of a child");
            }
            for w in kids.windows(2) {
                assert_eq!(w[1].0, w[0].0 + 1, "siblings must be contiguous");
                assert!(t.name(w[0]) < t.name(w[1]), "siblings must be sorted, unique");
            }
            let subdirs = kids.iter().filter(|c| t.is_dir(**c)).count();
            assert_eq!(t.subdir_count(n), subdirs);
            let total = kids.iter().fold(0u64, |acc, c| acc.saturating_add(t.size(*c)));
            assert_eq!(t.size(n), total);
        }
        assert!(seen.iter().all(|s| *s), "every node is some directory's child");
    }

    #[test]
    fn empty_tree() {
        let t = build(&[]).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(Tree::root(), NodeId(0));
        assert_eq!(t.kind(Tree::ROOT), NodeKind::Dir);
        assert_eq!(t.child_count(Tree::ROOT), 0);
        assert_eq!(t.subdir_count(Tree::ROOT), 0);
        assert_eq!(t.children(Tree::ROOT, 0).count(), 0);
        assert_eq!(t.resolve(""), Some(Tree::ROOT));
        assert_eq!(t.resolve("a"), None);
        assert_eq!(t.lookup(Tree::ROOT, ""), None);
        assert_eq!(t.path(Tree::ROOT), "");
        assert_eq!(t.size(Tree::ROOT), 0);
        assert!(t.contains(Tree::ROOT));
        assert!(!t.contains(NodeId(1)));
        check_invariants(&t);
    }

    #[test]
    fn nested_paths() {
        let t = build(&["data/train/b.png", "README.md", "data/test/c.png", "data/train/a.png"])
            .unwrap();
        check_invariants(&t);
        assert_eq!(t.len(), 8); // root, README.md, data, test, train, 3 files
        assert_eq!(child_names(&t, Tree::ROOT), ["README.md", "data"]);
        assert_eq!(t.subdir_count(Tree::ROOT), 1);
        let data = t.resolve("data").unwrap();
        assert_eq!(t.kind(data), NodeKind::Dir);
        assert_eq!(child_names(&t, data), ["test", "train"]);
        assert_eq!(t.subdir_count(data), 2);
        let train = t.lookup(data, "train").unwrap();
        assert_eq!(child_names(&t, train), ["a.png", "b.png"]);
        assert_eq!(t.subdir_count(train), 0);
        let a = t.resolve("data/train/a.png").unwrap();
        assert_eq!(t.kind(a), NodeKind::File { entry: 3, size: 40 });
        assert_eq!(t.parent(a), train);
        assert_eq!(t.path(a), "data/train/a.png");
        assert_eq!(t.size(train), 10 + 40);
        assert_eq!(t.size(data), 10 + 30 + 40);
        assert_eq!(t.size(Tree::ROOT), 100);
    }

    #[test]
    fn sibling_order_is_byte_order_not_path_byte_order() {
        // '-' (0x2D) and '.' (0x2E) sort below '/' (0x2F): a plain byte sort of the paths
        // would interleave these with the contents of directory "a".
        let t = build(&["a/z", "a-c", "a.d", "a0", "a/b", "A", "a/-"]).unwrap();
        check_invariants(&t);
        assert_eq!(child_names(&t, Tree::ROOT), ["A", "a", "a-c", "a.d", "a0"]);
        let a = t.resolve("a").unwrap();
        assert_eq!(child_names(&t, a), ["-", "b", "z"]);
        assert_eq!(t.kind(t.resolve("a-c").unwrap()), NodeKind::File { entry: 1, size: 20 });
    }

    #[test]
    fn siblings_equal_in_their_first_bytes_still_sort() {
        // The shared prefix is empty ("b" differs at once), so the 8-byte sort keys of the
        // first two names tie and only the full comparison can order them.
        let long = |tail: &str| format!("aaaaaaaaaaaa{tail}");
        let (l2, l1, l10) = (long("2"), long("1"), long("10"));
        let t = build(&[&l2, "b", &l10, &l1, "aaaaaaaa"]).unwrap();
        check_invariants(&t);
        assert_eq!(
            child_names(&t, Tree::ROOT),
            ["aaaaaaaa", l1.as_str(), l10.as_str(), l2.as_str(), "b"]
        );
        // All names share "pre_": keys start after it.
        let t = build(&["pre_b", "pre_", "pre_a", "pre_ab"]).unwrap();
        assert_eq!(child_names(&t, Tree::ROOT), ["pre_", "pre_a", "pre_ab", "pre_b"]);
    }

    #[test]
    fn unicode_names() {
        let nfc = "caf\u{e9}.txt";
        let nfd = "cafe\u{301}.txt";
        let t = build(&["données été.txt", "日本/語.txt", "emoji 🎉/x", nfc, nfd]).unwrap();
        check_invariants(&t);
        // NFC and NFD spellings are different byte strings, hence different files.
        assert_ne!(t.resolve(nfc), t.resolve(nfd));
        assert_eq!(t.kind(t.resolve(nfd).unwrap()), NodeKind::File { entry: 4, size: 50 });
        let ja = t.resolve("日本/語.txt").unwrap();
        assert_eq!(t.name(ja), "語.txt");
        assert_eq!(t.name(t.parent(ja)), "日本");
        assert_eq!(t.path(ja), "日本/語.txt");
        assert_eq!(t.resolve("données été.txt").map(|n| t.name(n)), Some("données été.txt"));
        let mut expected = vec!["données été.txt", "emoji 🎉", "日本", nfc, nfd];
        expected.sort_unstable();
        assert_eq!(child_names(&t, Tree::ROOT), expected);
    }

    #[test]
    fn ten_thousand_children() {
        const CHILDREN: usize = 10_000;
        let mut names: Vec<String> = (0..CHILDREN).map(|i| format!("f{i:05}")).collect();
        fastrand::Rng::with_seed(7).shuffle(&mut names);
        let t = Tree::build(names.iter().map(|n| {
            let i: u32 = n[1..].parse().unwrap();
            (n.as_str(), i, u64::from(i))
        }))
        .unwrap();
        check_invariants(&t);
        assert_eq!(t.child_count(Tree::ROOT), CHILDREN);
        for i in 0..CHILDREN {
            let c = t.lookup(Tree::ROOT, &format!("f{i:05}")).unwrap();
            assert_eq!(t.kind(c), NodeKind::File { entry: i as u32, size: i as u64 });
        }
        assert_eq!(t.lookup(Tree::ROOT, "f10000"), None);
        assert_eq!(t.lookup(Tree::ROOT, "f"), None);
        assert_eq!(t.lookup(Tree::ROOT, "f000000"), None);
        // From every offset, the listing resumes at exactly the offset-th child.
        for off in 0..CHILDREN {
            let (next, c) = t.children(Tree::ROOT, off).next().unwrap();
            assert_eq!(next, off + 1);
            assert_eq!(t.name(c), format!("f{off:05}"));
        }
        assert_eq!(t.children(Tree::ROOT, CHILDREN).count(), 0);
        assert_eq!(t.children(Tree::ROOT, usize::MAX).count(), 0);
        // Readdir in random-sized batches, resuming each time: every child exactly once.
        let mut rng = fastrand::Rng::with_seed(11);
        let mut seen = Vec::new();
        let mut off = 0;
        loop {
            let batch: Vec<_> = t.children(Tree::ROOT, off).take(rng.usize(1..300)).collect();
            let Some(&(last, _)) = batch.last() else {
                break;
            };
            seen.extend(batch.iter().map(|(_, c)| t.name(*c).to_owned()));
            off = last;
        }
        let mut expected = names.clone();
        expected.sort_unstable();
        assert_eq!(seen, expected);
    }

    #[test]
    fn file_dir_collision_in_both_orders() {
        let want = TreeError::FileDirCollision { file: "a".into(), descendant: "a/b".into() };
        assert_eq!(build(&["a", "a/b"]).unwrap_err(), want);
        assert_eq!(build(&["a/b", "a"]).unwrap_err(), want);
        let deep =
            TreeError::FileDirCollision { file: "x/a/b".into(), descendant: "x/a/b/c/d".into() };
        assert_eq!(build(&["x/a/b/c/d", "x/a-", "x/a/b"]).unwrap_err(), deep);
        assert_eq!(build(&["x/a/b", "x/a/b-", "x/a/b/c/d"]).unwrap_err(), deep);
        // Shared prefixes that are not whole components are fine.
        assert!(build(&["a", "ab/c", "a-/c", "a.b"]).is_ok());
    }

    #[test]
    fn duplicate_path() {
        assert_eq!(
            build(&["a/b", "c", "a/b"]).unwrap_err(),
            TreeError::Duplicate { path: "a/b".into() }
        );
        assert_eq!(build(&["c", "c"]).unwrap_err(), TreeError::Duplicate { path: "c".into() });
    }

    #[test]
    fn bad_components() {
        for p in ["", "/a", "a/", "a//b", "/"] {
            assert_eq!(
                build(&["ok", p]).unwrap_err(),
                TreeError::EmptyComponent { path: p.into() },
                "{p:?}"
            );
        }
        for p in [".", "..", "a/./b", "a/../b", "a/..", "./a"] {
            assert_eq!(
                build(&["ok", p]).unwrap_err(),
                TreeError::DotComponent { path: p.into() },
                "{p:?}"
            );
        }
        for p in ["\0", "a\0b", "a/\0"] {
            assert_eq!(
                build(&["ok", p]).unwrap_err(),
                TreeError::NulByte { path: p.into() },
                "{p:?}"
            );
        }
        // Dots are only special as a whole component.
        let t = build(&["...", ".hidden/.x", "a./..b"]).unwrap();
        check_invariants(&t);
        assert!(t.resolve("a./..b").is_some());
    }

    #[test]
    fn name_length_limit() {
        let ascii_max = "n".repeat(NAME_MAX_BYTES);
        let ascii_over = "n".repeat(NAME_MAX_BYTES + 1);
        // 'é' is 2 bytes: 127 of them plus one ASCII byte is exactly the limit.
        let multi_max = format!("{}x", "é".repeat(127));
        let multi_over = "é".repeat(128);
        assert_eq!(multi_max.len(), NAME_MAX_BYTES);
        let dir_max = format!("{ascii_max}/{multi_max}");
        let t = build(&[&ascii_max, &multi_max, &dir_max.replace(&ascii_max, "d")]).unwrap();
        check_invariants(&t);
        assert_eq!(t.name(t.resolve(&multi_max).unwrap()), multi_max);
        assert!(build(&[&dir_max]).unwrap().resolve(&dir_max).is_some());
        for bad in [&ascii_over, &multi_over, &format!("d/{ascii_over}/f")] {
            let err = build(&[bad]).unwrap_err();
            assert_eq!(err, TreeError::NameTooLong { path: bad.clone(), len: NAME_MAX_BYTES + 1 });
        }
    }

    #[test]
    fn errors_name_the_entry_and_stay_short() {
        let msg = build(&["ok", "data/x", "data"]).unwrap_err().to_string();
        assert!(msg.contains("\"data\"") && msg.contains("\"data/x\""), "{msg}");
        let msg = build(&["a\0b"]).unwrap_err().to_string();
        assert!(msg.contains(r#""a\0b""#), "{msg}");
        let huge = format!("{}/x/", "é/".repeat(1_000_000));
        let msg = build(&[&huge]).unwrap_err().to_string();
        assert!(msg.len() < 2 * ERROR_PATH_MAX_BYTES, "{} bytes", msg.len());
    }

    #[test]
    fn parent_links() {
        let t = build(&["a/b/c/d.txt", "a/b/e.txt", "a/f.txt", "g.txt"]).unwrap();
        check_invariants(&t);
        let d = t.resolve("a/b/c/d.txt").unwrap();
        let chain: Vec<&str> =
            std::iter::successors(Some(d), |n| (*n != Tree::ROOT).then(|| t.parent(*n)))
                .map(|n| t.name(n))
                .collect();
        assert_eq!(chain, ["d.txt", "c", "b", "a", ""]);
        assert_eq!(t.parent(t.resolve("g.txt").unwrap()), Tree::ROOT);
        assert_eq!(t.parent(Tree::ROOT), Tree::ROOT);
    }

    #[test]
    fn resolve_is_strict() {
        let t = build(&["a/b/c.txt", "a/d.txt"]).unwrap();
        let c = t.resolve("a/b/c.txt").unwrap();
        assert_eq!(t.path(c), "a/b/c.txt");
        assert_eq!(t.resolve("a/b"), t.lookup(t.resolve("a").unwrap(), "b"));
        assert!(t.is_dir(t.resolve("a/b").unwrap()));
        for miss in ["/a", "a/", "a//b", "./a", "a/../a", "a/b/c.txt/x", "a/x", "b", "A"] {
            assert_eq!(t.resolve(miss), None, "{miss:?}");
        }
        // Lookups below a file find nothing rather than panicking.
        assert_eq!(t.lookup(c, "x"), None);
        assert_eq!(t.children(c, 0).count(), 0);
        assert_eq!(t.child_count(c), 0);
        assert_eq!(t.subdir_count(c), 0);
    }

    #[test]
    fn sizes_saturate_and_extremes_round_trip() {
        let t = Tree::build([("a/x", u32::MAX, u64::MAX), ("a/y", 0, 1), ("z", 5, 0)]).unwrap();
        check_invariants(&t);
        assert_eq!(
            t.kind(t.resolve("a/x").unwrap()),
            NodeKind::File { entry: u32::MAX, size: u64::MAX }
        );
        assert_eq!(t.size(t.resolve("a").unwrap()), u64::MAX);
        assert_eq!(t.size(Tree::ROOT), u64::MAX);
    }

    #[test]
    fn tree_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Tree>();
    }

    /// A random path over a tiny alphabet, so collisions, shared prefixes, '.'/'..' and
    /// characters that sort on either side of '/' all come up often. The long token makes
    /// siblings that agree beyond the 8-byte sort key.
    fn random_path(rng: &mut fastrand::Rng) -> String {
        const ALPHABET: [&str; 8] = ["a", "b", "-", ".", "é", "0", " ", "_long_token_"];
        let depth = rng.usize(1..=4);
        let comps: Vec<String> = (0..depth)
            .map(|_| (0..rng.usize(1..=3)).map(|_| ALPHABET[rng.usize(..ALPHABET.len())]).collect())
            .collect();
        comps.join("/")
    }

    fn proper_prefixes(path: &str) -> impl Iterator<Item = &str> {
        path.match_indices('/').map(|(i, _)| &path[..i])
    }

    #[test]
    fn random_valid_sets_round_trip() {
        let mut rng = fastrand::Rng::with_seed(0xA27F5);
        for _round in 0..300 {
            // Model: the files, and the set of directories their paths imply.
            let mut files: BTreeMap<String, (u32, u64)> = BTreeMap::new();
            let mut dirs: BTreeSet<String> = BTreeSet::from([String::new()]);
            for _ in 0..rng.usize(0..150) {
                let p = random_path(&mut rng);
                let valid = p.split('/').all(|c| c != "." && c != "..");
                let clashes = files.contains_key(&p)
                    || dirs.contains(&p)
                    || proper_prefixes(&p).any(|d| files.contains_key(d));
                if valid && !clashes {
                    dirs.extend(proper_prefixes(&p).map(str::to_owned));
                    let entry = files.len() as u32;
                    files.insert(p, (entry, rng.u64(..)));
                }
            }
            let mut input: Vec<(&str, u32, u64)> =
                files.iter().map(|(p, &(e, s))| (p.as_str(), e, s)).collect();
            rng.shuffle(&mut input);
            let t = Tree::build(input).unwrap();
            check_invariants(&t);
            assert_eq!(t.len(), files.len() + dirs.len());
            for (p, &(entry, size)) in &files {
                let n = t.resolve(p).unwrap();
                assert_eq!(t.kind(n), NodeKind::File { entry, size }, "{p:?}");
                assert_eq!(t.path(n), *p);
            }
            // Readdir of each directory lists exactly the next components below it.
            for d in &dirs {
                let n = t.resolve(d).unwrap();
                assert!(t.is_dir(n));
                let below = |p: &str| -> Option<String> {
                    let rest = if d.is_empty() {
                        p
                    } else {
                        p.strip_prefix(d.as_str())?.strip_prefix('/')?
                    };
                    Some(rest.split('/').next()?.to_owned())
                };
                let expected: BTreeSet<String> = files.keys().filter_map(|p| below(p)).collect();
                let listed: Vec<String> =
                    t.children(n, 0).map(|(_, c)| t.name(c).to_owned()).collect();
                assert_eq!(listed, expected.into_iter().collect::<Vec<_>>(), "dir {d:?}");
            }
        }
    }

    #[test]
    fn random_sets_fail_exactly_when_the_model_says() {
        let mut rng = fastrand::Rng::with_seed(0xC011);
        let (mut oks, mut errs) = (0, 0);
        for _round in 0..2000 {
            let paths: Vec<String> = (0..rng.usize(1..12)).map(|_| random_path(&mut rng)).collect();
            let valid = paths.iter().all(|p| p.split('/').all(|c| c != "." && c != ".."));
            let unique = paths.iter().collect::<BTreeSet<_>>().len() == paths.len();
            let no_clash =
                paths.iter().all(|p| proper_prefixes(p).all(|d| !paths.iter().any(|q| q == d)));
            let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
            let result = build(&refs);
            assert_eq!(result.is_ok(), valid && unique && no_clash, "{paths:?}");
            match result {
                Ok(t) => {
                    check_invariants(&t);
                    oks += 1;
                }
                Err(_) => errs += 1,
            }
        }
        assert!(oks > 200 && errs > 200, "ok {oks}, err {errs}: generator lost balance");
    }

    /// A field of /proc/self/status in KiB (Linux only).
    fn status_kib(field: &str) -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// CPU time this thread has run, in nanoseconds (Linux only). Build times are also reported
    /// as CPU time because wall time on a shared machine mostly measures the neighbours.
    fn thread_cpu_ns() -> Option<u64> {
        let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        stat.split_whitespace().next()?.parse().ok()
    }

    /// `cargo test --release -- --ignored --nocapture million`
    #[test]
    #[ignore = "benchmark; run in release mode"]
    fn million_entries_build_time_and_memory() {
        const ENTRIES: usize = 1_000_000;
        const FILES_PER_SHARD: usize = 1_000;
        let sharded: Vec<String> = (0..ENTRIES)
            .map(|i| {
                let split = ["train", "valid", "test"][i % 3];
                let shard = i / FILES_PER_SHARD;
                format!("data/{split}/shard_{shard:04}/sample_{i:07}.png")
            })
            .collect();
        let mut shuffled = sharded.clone();
        fastrand::Rng::with_seed(1).shuffle(&mut shuffled);
        let mut flat: Vec<String> = (0..ENTRIES).map(|i| format!("{i:08x}.bin")).collect();
        fastrand::Rng::with_seed(2).shuffle(&mut flat);
        for (label, paths) in [
            ("sharded, listed in order", &sharded),
            ("sharded, shuffled", &shuffled),
            ("flat, shuffled", &flat),
        ] {
            // Writing 5 resets the peak-RSS counter, so VmHWM afterwards is this build's peak.
            // Only the first scenario is exact: later builds may reuse pages the allocator kept
            // from earlier ones, which RSS does not see as new.
            let _ = std::fs::write("/proc/self/clear_refs", "5");
            let rss_before = status_kib("VmRSS:");
            let (start, cpu_start) = (std::time::Instant::now(), thread_cpu_ns());
            let t =
                Tree::build(paths.iter().enumerate().map(|(i, p)| (p.as_str(), i as u32, 4096)))
                    .unwrap();
            let wall_ms = start.elapsed().as_secs_f64() * 1e3;
            let cpu_ms =
                thread_cpu_ns().zip(cpu_start).map(|(end, start)| (end - start) / 1_000_000);
            let peak_extra = status_kib("VmHWM:")
                .zip(rss_before)
                .map(|(peak, before)| (peak - before) * 1024 / ENTRIES as u64);
            let avg_path = paths.iter().map(String::len).sum::<usize>() / ENTRIES;
            println!(
                "{label}: avg path {avg_path} B, {} nodes, build {wall_ms:.0} ms wall, \
                 {cpu_ms:?} ms CPU; tree heap {:.1} B/entry (names {} B), \
                 build peak {peak_extra:?} B/entry",
                t.len(),
                t.heap_bytes() as f64 / ENTRIES as f64,
                t.names.len(),
            );
            assert_eq!(t.size(Tree::ROOT), 4096 * ENTRIES as u64);
        }
    }
}
