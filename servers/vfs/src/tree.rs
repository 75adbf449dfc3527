//! The directory tree: inodes (files and directories), path resolution, and the
//! operations that change names (create, mkdir, unlink, rmdir, rename). File data is
//! kept by a [`Storage`]; an inode lives while a name links it or a descriptor has it
//! open, so an unlinked file stays readable through its open descriptors.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use ankh_proto::errno::{self, Errno};
use ankh_proto::rootfs::{self, ENTRY_DIR, ENTRY_FILE};
use ankh_proto::vfs::{
    Stat, KIND_DIR, KIND_FILE, O_ACCMODE, O_CREAT, O_EXCL, O_RDONLY, O_TRUNC, O_WRONLY,
};

use crate::path::Path;
use crate::storage::{Ino, Storage};

/// The root directory's inode number.
pub const ROOT: Ino = 1;

/// What an inode is.
#[derive(Clone, Debug)]
enum Kind {
    /// A regular file (its data is in the storage).
    File,
    /// A directory.
    Dir {
        /// The directory that contains it (the root is its own parent).
        parent: Ino,
        /// Its entries, sorted by name.
        entries: BTreeMap<String, Ino>,
    },
}

/// An inode.
#[derive(Clone, Debug)]
struct Node {
    kind: Kind,
    /// Links: 1 for a file, 2 plus subdirectories for a directory, 0 once removed.
    nlink: u32,
    /// Open files that refer to it.
    opens: u32,
}

/// The last component of a path, for operations that create or remove a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Last<'a> {
    /// The path names an existing directory without a name of its own in it (`/`,
    /// `/a/..`, `/a/.`).
    Existing(Ino),
    /// A name in the parent directory (which may or may not exist).
    Name(&'a str),
}

/// A path resolved up to its last component.
#[derive(Clone, Copy, Debug)]
pub struct Parent<'a> {
    /// The directory that holds (or would hold) the last component.
    pub dir: Ino,
    /// The last component.
    pub last: Last<'a>,
    /// The path ended with `/`: it must name a directory.
    pub trailing_slash: bool,
}

/// The tree of inodes over a storage for file data.
#[derive(Clone, Debug)]
pub struct Tree<S> {
    nodes: BTreeMap<Ino, Node>,
    next_ino: Ino,
    max_inodes: usize,
    storage: S,
}

impl<S: Storage> Tree<S> {
    /// A tree with an empty root directory, holding at most `max_inodes` inodes.
    pub fn new(storage: S, max_inodes: usize) -> Tree<S> {
        let mut nodes = BTreeMap::new();
        nodes.insert(ROOT, Node::dir(ROOT));
        Tree {
            nodes,
            next_ino: ROOT + 1,
            max_inodes,
            storage,
        }
    }

    /// The storage under the tree.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// The most inodes the tree holds.
    pub fn inode_limit(&self) -> usize {
        self.max_inodes
    }

    /// Inodes in use (including removed ones still open).
    pub fn inode_count(&self) -> usize {
        self.nodes.len()
    }

    /// A fresh inode number (also used for pipes, which have no node here).
    pub fn alloc_ino(&mut self) -> Ino {
        let ino = self.next_ino;
        self.next_ino = self.next_ino.wrapping_add(1).max(ROOT + 1);
        ino
    }

    fn node(&self, ino: Ino) -> Result<&Node, Errno> {
        self.nodes.get(&ino).ok_or(errno::ENOENT)
    }

    fn node_mut(&mut self, ino: Ino) -> Result<&mut Node, Errno> {
        self.nodes.get_mut(&ino).ok_or(errno::ENOENT)
    }

    fn entries(&self, dir: Ino) -> Result<&BTreeMap<String, Ino>, Errno> {
        match &self.node(dir)?.kind {
            Kind::Dir { entries, .. } => Ok(entries),
            Kind::File => Err(errno::ENOTDIR),
        }
    }

    fn entries_mut(&mut self, dir: Ino) -> Result<&mut BTreeMap<String, Ino>, Errno> {
        match &mut self.node_mut(dir)?.kind {
            Kind::Dir { entries, .. } => Ok(entries),
            Kind::File => Err(errno::ENOTDIR),
        }
    }

    fn parent_dir(&self, dir: Ino) -> Result<Ino, Errno> {
        match self.node(dir)?.kind {
            Kind::Dir { parent, .. } => Ok(parent),
            Kind::File => Err(errno::ENOTDIR),
        }
    }

    /// True when `ino` is a directory.
    pub fn is_dir(&self, ino: Ino) -> bool {
        matches!(
            self.nodes.get(&ino),
            Some(Node {
                kind: Kind::Dir { .. },
                ..
            })
        )
    }

    fn lookup(&self, dir: Ino, name: &str) -> Result<Option<Ino>, Errno> {
        Ok(self.entries(dir)?.get(name).copied())
    }

    /// Walks components from the root (`ENOTDIR` through a file, `ENOENT` for a
    /// missing name).
    fn walk(&self, components: &[&str]) -> Result<Ino, Errno> {
        let mut here = ROOT;
        for &name in components {
            here = if name == ".." {
                self.parent_dir(here)?
            } else {
                self.lookup(here, name)?.ok_or(errno::ENOENT)?
            };
        }
        Ok(here)
    }

    /// The inode a path names.
    pub fn resolve(&self, path: &str) -> Result<Ino, Errno> {
        let path = Path::parse(path)?;
        let ino = self.walk(&path.components)?;
        if path.trailing_slash && !self.is_dir(ino) {
            return Err(errno::ENOTDIR);
        }
        Ok(ino)
    }

    /// Resolves a path up to its last component.
    pub fn parent<'a>(&self, path: &'a str) -> Result<Parent<'a>, Errno> {
        let path = Path::parse(path)?;
        let trailing_slash = path.trailing_slash;
        let Some((&last, init)) = path.components.split_last() else {
            return Ok(Parent {
                dir: ROOT,
                last: Last::Existing(ROOT),
                trailing_slash,
            });
        };
        let dir = self.walk(init)?;
        self.entries(dir)?;
        let last = if path.ends_with_dot {
            Last::Existing(self.walk(&path.components)?)
        } else if last == ".." {
            Last::Existing(self.parent_dir(dir)?)
        } else {
            Last::Name(last)
        };
        if let Last::Existing(ino) = last {
            // A `..` or `.` through a file is caught by the walk; this is a directory.
            self.entries(ino)?;
        }
        Ok(Parent {
            dir,
            last,
            trailing_slash,
        })
    }

    fn check_room(&self) -> Result<(), Errno> {
        if self.nodes.len() >= self.max_inodes {
            return Err(errno::ENOSPC);
        }
        Ok(())
    }

    fn link(&mut self, dir: Ino, name: &str, node: Node) -> Result<Ino, Errno> {
        self.check_room()?;
        if self.lookup(dir, name)?.is_some() {
            return Err(errno::EEXIST);
        }
        let ino = self.alloc_ino();
        let is_dir = matches!(node.kind, Kind::Dir { .. });
        if !is_dir {
            self.storage.create(ino)?;
        }
        self.nodes.insert(ino, node);
        self.entries_mut(dir)?.insert(String::from(name), ino);
        if is_dir {
            self.node_mut(dir)?.nlink += 1;
        }
        Ok(ino)
    }

    /// Opens a path with `O_*` flags (creating, checking and truncating as they say)
    /// and returns its inode, already counted as open: the caller must
    /// [`close`](Tree::close) it once.
    pub fn open(&mut self, path: &str, flags: u32) -> Result<Ino, Errno> {
        let writable = flags & O_ACCMODE != O_RDONLY;
        let ino = if flags & O_CREAT != 0 {
            let parent = self.parent(path)?;
            let existing = match parent.last {
                Last::Existing(ino) => Some(ino),
                Last::Name(name) => self.lookup(parent.dir, name)?,
            };
            match (existing, parent.last) {
                (Some(_), _) if flags & O_EXCL != 0 => return Err(errno::EEXIST),
                (Some(ino), _) if self.is_dir(ino) => return Err(errno::EISDIR),
                (Some(_), _) if parent.trailing_slash => return Err(errno::ENOTDIR),
                (Some(ino), _) => ino,
                (None, _) if parent.trailing_slash => return Err(errno::EISDIR),
                (None, Last::Name(name)) => {
                    let ino = self.link(parent.dir, name, Node::file())?;
                    self.node_mut(ino)?.opens += 1;
                    return Ok(ino);
                }
                (None, Last::Existing(_)) => return Err(errno::ENOENT),
            }
        } else {
            self.resolve(path)?
        };
        if self.is_dir(ino) {
            if writable {
                return Err(errno::EISDIR);
            }
        } else if writable && flags & O_TRUNC != 0 {
            self.storage.truncate(ino, 0)?;
        }
        self.node_mut(ino)?.opens += 1;
        Ok(ino)
    }

    /// One open file on an inode closed: frees it if it has no links left.
    pub fn close(&mut self, ino: Ino) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.opens = node.opens.saturating_sub(1);
        }
        self.free_if_unused(ino);
    }

    fn free_if_unused(&mut self, ino: Ino) {
        if ino == ROOT {
            return;
        }
        if let Some(node) = self.nodes.get(&ino) {
            if node.nlink == 0 && node.opens == 0 {
                self.nodes.remove(&ino);
                self.storage.remove(ino);
            }
        }
    }

    /// Removes `name` from `dir` and drops the inode's links (freeing it unless open).
    fn unlink_entry(&mut self, dir: Ino, name: &str, ino: Ino) -> Result<(), Errno> {
        self.entries_mut(dir)?.remove(name);
        if self.is_dir(ino) {
            let parent = self.node_mut(dir)?;
            parent.nlink = parent.nlink.saturating_sub(1);
        }
        self.node_mut(ino)?.nlink = 0;
        self.free_if_unused(ino);
        Ok(())
    }

    /// Makes a directory (`EEXIST` when the name is taken).
    pub fn mkdir(&mut self, path: &str) -> Result<Ino, Errno> {
        let parent = self.parent(path)?;
        match parent.last {
            Last::Existing(_) => Err(errno::EEXIST),
            Last::Name(name) => self.link(parent.dir, name, Node::dir(parent.dir)),
        }
    }

    /// Removes a file's name (`EISDIR` for a directory).
    pub fn unlink(&mut self, path: &str) -> Result<(), Errno> {
        let parent = self.parent(path)?;
        let Last::Name(name) = parent.last else {
            return Err(errno::EISDIR);
        };
        let ino = self.lookup(parent.dir, name)?.ok_or(errno::ENOENT)?;
        if self.is_dir(ino) {
            return Err(errno::EISDIR);
        }
        if parent.trailing_slash {
            return Err(errno::ENOTDIR);
        }
        self.unlink_entry(parent.dir, name, ino)
    }

    /// Removes an empty directory (`EINVAL` for `/` and names like `/a/..`).
    pub fn rmdir(&mut self, path: &str) -> Result<(), Errno> {
        let parent = self.parent(path)?;
        let Last::Name(name) = parent.last else {
            return Err(errno::EINVAL);
        };
        let ino = self.lookup(parent.dir, name)?.ok_or(errno::ENOENT)?;
        if !self.entries(ino)?.is_empty() {
            return Err(errno::ENOTEMPTY);
        }
        self.unlink_entry(parent.dir, name, ino)
    }

    /// True when `dir` is `ancestor` or lies below it.
    fn is_within(&self, mut dir: Ino, ancestor: Ino) -> bool {
        // Bounded by the number of inodes, in case the tree were ever inconsistent.
        for _ in 0..=self.nodes.len() {
            if dir == ancestor {
                return true;
            }
            match self.parent_dir(dir) {
                Ok(parent) if parent != dir => dir = parent,
                _ => return false,
            }
        }
        false
    }

    /// Renames a file or directory, replacing an existing file or empty directory of
    /// the same kind at the new name.
    pub fn rename(&mut self, old: &str, new: &str) -> Result<(), Errno> {
        let from = self.parent(old)?;
        let to = self.parent(new)?;
        let (Last::Name(old_name), Last::Name(new_name)) = (from.last, to.last) else {
            return Err(errno::EINVAL);
        };
        let ino = self.lookup(from.dir, old_name)?.ok_or(errno::ENOENT)?;
        let is_dir = self.is_dir(ino);
        if !is_dir && (from.trailing_slash || to.trailing_slash) {
            return Err(errno::ENOTDIR);
        }
        let target = self.lookup(to.dir, new_name)?;
        if target == Some(ino) {
            return Ok(());
        }
        if is_dir && self.is_within(to.dir, ino) {
            return Err(errno::EINVAL);
        }
        if let Some(target) = target {
            match (is_dir, self.is_dir(target)) {
                (false, true) => return Err(errno::EISDIR),
                (true, false) => return Err(errno::ENOTDIR),
                (true, true) if !self.entries(target)?.is_empty() => return Err(errno::ENOTEMPTY),
                _ => self.unlink_entry(to.dir, new_name, target)?,
            }
        }
        self.entries_mut(from.dir)?.remove(old_name);
        self.entries_mut(to.dir)?
            .insert(String::from(new_name), ino);
        if is_dir && from.dir != to.dir {
            if let Kind::Dir { parent, .. } = &mut self.node_mut(ino)?.kind {
                *parent = to.dir;
            }
            let old_parent = self.node_mut(from.dir)?;
            old_parent.nlink = old_parent.nlink.saturating_sub(1);
            self.node_mut(to.dir)?.nlink += 1;
        }
        Ok(())
    }

    /// The status of an inode.
    pub fn stat(&self, ino: Ino) -> Result<Stat, Errno> {
        let node = self.node(ino)?;
        let (size, kind) = match &node.kind {
            Kind::File => (self.storage.len(ino)?, KIND_FILE),
            Kind::Dir { entries, .. } => {
                (u64::try_from(entries.len()).unwrap_or(u64::MAX), KIND_DIR)
            }
        };
        Ok(Stat {
            ino,
            size,
            kind,
            nlink: node.nlink,
        })
    }

    /// The names in a directory, sorted, as a NUL-terminated list.
    pub fn readdir(&self, dir: Ino) -> Result<Vec<u8>, Errno> {
        let entries = self.entries(dir)?;
        Ok(ankh_proto::wire::join(entries.keys().map(String::as_str)))
    }

    fn file(&self, ino: Ino) -> Result<(), Errno> {
        match self.node(ino)?.kind {
            Kind::File => Ok(()),
            Kind::Dir { .. } => Err(errno::EISDIR),
        }
    }

    /// A file's length (`EISDIR` for a directory).
    pub fn len(&self, ino: Ino) -> Result<u64, Errno> {
        self.file(ino)?;
        self.storage.len(ino)
    }

    /// Reads up to `len` bytes of a file at `offset`.
    pub fn read(&mut self, ino: Ino, offset: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let available = self.len(ino)?.saturating_sub(offset);
        let n = usize::try_from(available).map_or(len, |available| available.min(len));
        let mut buf = alloc::vec![0; n];
        let got = self.storage.read_at(ino, offset, &mut buf)?;
        buf.truncate(got);
        Ok(buf)
    }

    /// Writes into a file at `offset`; returns the bytes written.
    pub fn write(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        self.file(ino)?;
        self.storage.write_at(ino, offset, data)
    }

    /// Sets a file's length (`EISDIR` for a directory).
    pub fn truncate(&mut self, ino: Ino, len: u64) -> Result<(), Errno> {
        self.file(ino)?;
        self.storage.truncate(ino, len)
    }

    /// Removes everything but an empty root (for a root file system that failed to
    /// load; nothing may be open).
    pub fn clear(&mut self) {
        let files: Vec<Ino> = self
            .nodes
            .iter()
            .filter(|(_, node)| matches!(node.kind, Kind::File))
            .map(|(&ino, _)| ino)
            .collect();
        for ino in files {
            self.storage.remove(ino);
        }
        self.nodes.clear();
        self.nodes.insert(ROOT, Node::dir(ROOT));
    }

    /// Adds the entries of a root file system archive (`EINVAL` for a malformed one;
    /// other errors as creating them would give).
    pub fn load(&mut self, archive: &[u8]) -> Result<(), Errno> {
        for entry in rootfs::entries(archive) {
            let entry = entry.ok_or(errno::EINVAL)?;
            match entry.kind {
                ENTRY_DIR => match self.mkdir(entry.path) {
                    Err(errno::EEXIST)
                        if self.resolve(entry.path).is_ok_and(|i| self.is_dir(i)) => {}
                    result => {
                        result?;
                    }
                },
                ENTRY_FILE => {
                    let ino = self.open(entry.path, O_CREAT | O_EXCL | O_WRONLY)?;
                    let written = self.write(ino, 0, entry.data);
                    self.close(ino);
                    if written? != entry.data.len() {
                        return Err(errno::ENOSPC);
                    }
                }
                _ => return Err(errno::EINVAL),
            }
        }
        Ok(())
    }

    /// Checks the tree's internal consistency (tests).
    #[cfg(test)]
    pub fn check(&self, opens: &BTreeMap<Ino, u32>) {
        let mut used = 0;
        for (&ino, node) in &self.nodes {
            assert_eq!(
                node.opens,
                opens.get(&ino).copied().unwrap_or(0),
                "opens of {ino}"
            );
            assert!(node.nlink > 0 || node.opens > 0 || ino == ROOT);
            match &node.kind {
                Kind::File => used += self.storage.len(ino).unwrap(),
                Kind::Dir { entries, .. } => {
                    if node.nlink > 0 {
                        let subdirs = entries.values().filter(|&&i| self.is_dir(i)).count();
                        assert_eq!(
                            usize::try_from(node.nlink).unwrap(),
                            2 + subdirs,
                            "nlink of {ino}"
                        );
                    }
                    for (name, child) in entries {
                        let child_node = &self.nodes[child];
                        assert!(child_node.nlink > 0, "{name} is linked");
                        if let Kind::Dir { parent, .. } = child_node.kind {
                            assert_eq!(parent, ino);
                        }
                    }
                }
            }
        }
        assert_eq!(used, self.storage.used());
    }
}

impl Node {
    fn file() -> Node {
        Node {
            kind: Kind::File,
            nlink: 1,
            opens: 0,
        }
    }

    fn dir(parent: Ino) -> Node {
        Node {
            kind: Kind::Dir {
                parent,
                entries: BTreeMap::new(),
            },
            nlink: 2,
            opens: 0,
        }
    }
}
