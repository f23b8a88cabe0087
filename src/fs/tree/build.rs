//! Building a [`Tree`] from manifest paths, establishing the invariants listed in `tree`.
//!
//! Rather than sorting the full paths (slow when a shuffled manifest makes every
//! comparison chase two pointers, and wrong as is, since '-' and '.' sort below '/'), the
//! builder finds each file's directory with a hash map, buckets children by directory with
//! their names copied side by side, sorts each bucket, then numbers the nodes breadth-first.
//! Every step is linear except the per-directory sorts.

use std::collections::HashMap;

use super::{
    DIR_FLAG, DirInfo, ERROR_PATH_MAX_BYTES, MAX_NODES, NAME_MAX_BYTES, Node, Tree, TreeError,
};

impl Tree {
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
