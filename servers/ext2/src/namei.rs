//! The operations on names: resolving paths, opening (and creating), making and
//! removing directories, unlinking, renaming, closing. They follow the VFS server's
//! in-memory tree (`ankh_vfs::tree::Tree`) check for check, so that both answer the
//! same errors in the same order; the journal file adds `EPERM` to anything that
//! would change it.

use alloc::vec::Vec;

use ankh_proto::errno::{self, Errno};
use ankh_proto::vfs::{Stat, KIND_DIR, KIND_FILE, O_ACCMODE, O_CREAT, O_EXCL, O_RDONLY, O_TRUNC};
use zerocopy::byteorder::little_endian::U16;

use crate::device::BlockDevice;
use crate::fs::{Ext2Fs, Ino};
use crate::inode::{Inode, Kind};
use crate::layout::{BLOCK_BYTES, FIRST_INO, JOURNAL_INO, LINK_MAX, ROOT_INO};
use ankh_proto::path::Path;

/// The last component of a path, for operations that create or remove a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Last<'a> {
    /// The path names an existing directory without a name of its own in it (`/`,
    /// `/a/..`, `/a/.`).
    Existing(u32),
    /// A name in the parent directory (which may or may not exist).
    Name(&'a str),
}

/// A path resolved up to its last component.
#[derive(Clone, Copy, Debug)]
struct Parent<'a> {
    dir: u32,
    last: Last<'a>,
    trailing_slash: bool,
}

impl Ext2Fs {
    /// An inode in use (linked, or open): `ENOENT` for any other number, `EIO` for one
    /// this crate cannot handle.
    pub(crate) fn live(
        &mut self,
        dev: &mut dyn BlockDevice,
        ino: Ino,
    ) -> Result<(u32, Inode, Kind), Errno> {
        let ino = u32::try_from(ino).map_err(|_| errno::ENOENT)?;
        if ino == 0 || ino > self.sb.inodes_count.get() || (ino < FIRST_INO && ino != ROOT_INO) {
            return Err(errno::ENOENT);
        }
        let inode = self.read_inode(dev, ino)?;
        let linked = inode.links_count.get() > 0 || self.opens.contains_key(&ino);
        if inode.mode.get() == 0 || !linked {
            return Err(errno::ENOENT);
        }
        let kind = inode.kind()?;
        Ok((ino, inode, kind))
    }

    /// An inode a directory entry names: it must be in use (`EIO` otherwise).
    fn named(&mut self, dev: &mut dyn BlockDevice, ino: u32) -> Result<(Inode, Kind), Errno> {
        match self.live(dev, u64::from(ino)) {
            Ok((_, inode, kind)) => Ok((inode, kind)),
            Err(errno::ENOENT) => Err(errno::EIO),
            Err(e) => Err(e),
        }
    }

    fn is_dir(&mut self, dev: &mut dyn BlockDevice, ino: u32) -> Result<bool, Errno> {
        Ok(self.named(dev, ino)?.1 == Kind::Dir)
    }

    /// A directory's inode (`ENOTDIR` for a file).
    fn dir_inode(&mut self, dev: &mut dyn BlockDevice, ino: u32) -> Result<Inode, Errno> {
        match self.named(dev, ino)? {
            (inode, Kind::Dir) => Ok(inode),
            (_, Kind::File) => Err(errno::ENOTDIR),
        }
    }

    fn parent_dir(&mut self, dev: &mut dyn BlockDevice, dir: u32) -> Result<u32, Errno> {
        let inode = self.dir_inode(dev, dir)?;
        self.dir_lookup(dev, &inode, b"..")?.ok_or(errno::EIO)
    }

    fn lookup(
        &mut self,
        dev: &mut dyn BlockDevice,
        dir: u32,
        name: &str,
    ) -> Result<Option<u32>, Errno> {
        let inode = self.dir_inode(dev, dir)?;
        self.dir_lookup(dev, &inode, name.as_bytes())
    }

    /// Walks components from the root (`ENOTDIR` through a file, `ENOENT` for a
    /// missing name).
    fn walk(&mut self, dev: &mut dyn BlockDevice, components: &[&str]) -> Result<u32, Errno> {
        let mut here = ROOT_INO;
        for &name in components {
            here = if name == ".." {
                self.parent_dir(dev, here)?
            } else {
                self.lookup(dev, here, name)?.ok_or(errno::ENOENT)?
            };
        }
        Ok(here)
    }

    /// The inode a path names.
    pub fn resolve(&mut self, dev: &mut dyn BlockDevice, path: &str) -> Result<Ino, Errno> {
        let path = Path::parse(path)?;
        let ino = self.walk(dev, &path.components)?;
        if path.trailing_slash && !self.is_dir(dev, ino)? {
            return Err(errno::ENOTDIR);
        }
        Ok(u64::from(ino))
    }

    /// Resolves a path up to its last component.
    fn parent<'a>(
        &mut self,
        dev: &mut dyn BlockDevice,
        path: &'a str,
    ) -> Result<Parent<'a>, Errno> {
        let path = Path::parse(path)?;
        let trailing_slash = path.trailing_slash;
        let Some((&last, init)) = path.components.split_last() else {
            return Ok(Parent {
                dir: ROOT_INO,
                last: Last::Existing(ROOT_INO),
                trailing_slash,
            });
        };
        let dir = self.walk(dev, init)?;
        self.dir_inode(dev, dir)?;
        let last = if path.ends_with_dot {
            Last::Existing(self.walk(dev, &path.components)?)
        } else if last == ".." {
            Last::Existing(self.parent_dir(dev, dir)?)
        } else {
            Last::Name(last)
        };
        if let Last::Existing(ino) = last {
            self.dir_inode(dev, ino)?;
        }
        Ok(Parent {
            dir,
            last,
            trailing_slash,
        })
    }

    /// Adds `delta` to an inode's link count.
    fn add_links(&mut self, dev: &mut dyn BlockDevice, ino: u32, delta: i32) -> Result<u16, Errno> {
        let mut inode = self.read_inode(dev, ino)?;
        let links = i32::from(inode.links_count.get()) + delta;
        let links = u16::try_from(links.max(0)).map_err(|_| errno::EIO)?;
        inode.links_count = U16::new(links);
        self.write_inode(dev, ino, &inode)?;
        Ok(links)
    }

    /// Creates `name` in `dir`: a file, or a directory with `.` and `..`.
    fn link(
        &mut self,
        dev: &mut dyn BlockDevice,
        dir: u32,
        name: &str,
        kind: Kind,
    ) -> Result<u32, Errno> {
        if self.inodes_full() {
            return Err(errno::ENOSPC);
        }
        if self.lookup(dev, dir, name)?.is_some() {
            return Err(errno::EEXIST);
        }
        let mut dir_inode = self.dir_inode(dev, dir)?;
        if kind == Kind::Dir && dir_inode.links_count.get() >= LINK_MAX {
            return Err(errno::ENOSPC);
        }
        // Room for the entry first: a directory grown by an empty block is
        // consistent, so nothing needs undoing if what follows runs out of space.
        let slot = self.dir_room(dev, dir, &mut dir_inode, name.len())?;
        let ino = self.alloc_inode(dev, kind, dir)?;
        let mut inode = Inode::new(kind.mode(), 1);
        if kind == Kind::Dir {
            let block = match self.alloc_block(dev, self.next_block) {
                Ok(block) => block,
                Err(e) => {
                    self.free_inode(dev, ino, true)?;
                    return Err(e);
                }
            };
            crate::dirent::init_dir(self.cache.zeroed(block), ino, dir);
            inode = Inode::new(kind.mode(), 2);
            inode.set_slot(0, u32::try_from(block).map_err(|_| errno::EIO)?);
            inode.set_size(BLOCK_BYTES);
            inode.add_blocks(1)?;
        }
        self.write_inode(dev, ino, &inode)?;
        self.dir_insert(dev, slot, name.as_bytes(), ino, kind)?;
        if kind == Kind::Dir {
            self.add_links(dev, dir, 1)?;
        }
        Ok(ino)
    }

    fn count_open(&mut self, ino: u32) {
        *self.opens.entry(ino).or_insert(0) += 1;
    }

    /// Opens a path with `O_*` flags (creating, checking and truncating as they say)
    /// and returns its inode, already counted as open: the caller must
    /// [`close`](Ext2Fs::close) it once. `EPERM` to write the journal.
    pub fn open(
        &mut self,
        dev: &mut dyn BlockDevice,
        path: &str,
        flags: u32,
    ) -> Result<Ino, Errno> {
        let writable = flags & O_ACCMODE != O_RDONLY;
        if flags & O_CREAT != 0 || (writable && flags & O_TRUNC != 0) {
            self.change(dev, |fs, dev| fs.open_inner(dev, path, flags))
        } else {
            self.open_inner(dev, path, flags)
        }
    }

    fn open_inner(
        &mut self,
        dev: &mut dyn BlockDevice,
        path: &str,
        flags: u32,
    ) -> Result<Ino, Errno> {
        let writable = flags & O_ACCMODE != O_RDONLY;
        let ino = if flags & O_CREAT != 0 {
            let parent = self.parent(dev, path)?;
            let existing = match parent.last {
                Last::Existing(ino) => Some(ino),
                Last::Name(name) => self.lookup(dev, parent.dir, name)?,
            };
            match (existing, parent.last) {
                (Some(_), _) if flags & O_EXCL != 0 => return Err(errno::EEXIST),
                (Some(ino), _) => {
                    if self.is_dir(dev, ino)? {
                        return Err(errno::EISDIR);
                    }
                    if parent.trailing_slash {
                        return Err(errno::ENOTDIR);
                    }
                    ino
                }
                (None, _) if parent.trailing_slash => return Err(errno::EISDIR),
                (None, Last::Name(name)) => {
                    let ino = self.link(dev, parent.dir, name, Kind::File)?;
                    self.count_open(ino);
                    return Ok(u64::from(ino));
                }
                (None, Last::Existing(_)) => return Err(errno::ENOENT),
            }
        } else {
            u32::try_from(self.resolve(dev, path)?).map_err(|_| errno::EIO)?
        };
        if self.is_dir(dev, ino)? {
            if writable {
                return Err(errno::EISDIR);
            }
        } else if writable && ino == JOURNAL_INO {
            return Err(errno::EPERM);
        } else if writable && flags & O_TRUNC != 0 {
            self.set_len(dev, ino, 0)?;
        }
        self.count_open(ino);
        Ok(u64::from(ino))
    }

    /// One open of an inode ended: frees it if it has no links left.
    pub fn close(&mut self, dev: &mut dyn BlockDevice, ino: Ino) -> Result<(), Errno> {
        let Ok(ino) = u32::try_from(ino) else {
            return Ok(());
        };
        let Some(opens) = self.opens.get_mut(&ino) else {
            return Ok(());
        };
        *opens -= 1;
        if *opens > 0 {
            return Ok(());
        }
        self.opens.remove(&ino);
        self.change(dev, |fs, dev| {
            let inode = fs.read_inode(dev, ino)?;
            if ino != ROOT_INO && inode.mode.get() != 0 && inode.links_count.get() == 0 {
                fs.release(dev, ino)?;
            }
            Ok(())
        })
    }

    /// Frees an inode without links and its blocks, a bounded step at a time with a
    /// checkpoint between steps (each step leaves an orphan mount would finish).
    pub(crate) fn release(&mut self, dev: &mut dyn BlockDevice, ino: u32) -> Result<(), Errno> {
        loop {
            let mut inode = self.read_inode(dev, ino)?;
            if inode.mode.get() == 0 {
                return self.free_inode(dev, ino, false);
            }
            let kind = inode.kind()?;
            let step = crate::blockmap::FREE_STEP_BLOCKS;
            match self.free_tail(dev, &mut inode, 0, step)? {
                Some(low) => {
                    inode.set_size(inode.size().min(low * BLOCK_BYTES));
                    self.write_inode(dev, ino, &inode)?;
                    self.checkpoint(dev)?;
                }
                None => return self.free_inode(dev, ino, kind == Kind::Dir),
            }
        }
    }

    /// Removes `name` from `dir` and drops the inode's link (freeing it unless open).
    fn unlink_entry(
        &mut self,
        dev: &mut dyn BlockDevice,
        dir: u32,
        name: &str,
        ino: u32,
    ) -> Result<(), Errno> {
        let dir_inode = self.dir_inode(dev, dir)?;
        self.dir_remove(dev, &dir_inode, name.as_bytes())?;
        let links = if self.is_dir(dev, ino)? {
            self.add_links(dev, dir, -1)?;
            self.add_links(dev, ino, -i32::from(u16::MAX))?
        } else {
            self.add_links(dev, ino, -1)?
        };
        if links == 0 && !self.opens.contains_key(&ino) {
            self.release(dev, ino)?;
        }
        Ok(())
    }

    /// Makes a directory (`EEXIST` when the name is taken).
    pub fn mkdir(&mut self, dev: &mut dyn BlockDevice, path: &str) -> Result<Ino, Errno> {
        self.change(dev, |fs, dev| {
            let parent = fs.parent(dev, path)?;
            match parent.last {
                Last::Existing(_) => Err(errno::EEXIST),
                Last::Name(name) => Ok(u64::from(fs.link(dev, parent.dir, name, Kind::Dir)?)),
            }
        })
    }

    /// Removes a file's name (`EISDIR` for a directory, `EPERM` for the journal).
    pub fn unlink(&mut self, dev: &mut dyn BlockDevice, path: &str) -> Result<(), Errno> {
        self.change(dev, |fs, dev| {
            let parent = fs.parent(dev, path)?;
            let Last::Name(name) = parent.last else {
                return Err(errno::EISDIR);
            };
            let ino = fs.lookup(dev, parent.dir, name)?.ok_or(errno::ENOENT)?;
            if fs.is_dir(dev, ino)? {
                return Err(errno::EISDIR);
            }
            if parent.trailing_slash {
                return Err(errno::ENOTDIR);
            }
            if ino == JOURNAL_INO {
                return Err(errno::EPERM);
            }
            fs.unlink_entry(dev, parent.dir, name, ino)
        })
    }

    /// Removes an empty directory (`EINVAL` for `/` and names like `/a/..`).
    pub fn rmdir(&mut self, dev: &mut dyn BlockDevice, path: &str) -> Result<(), Errno> {
        self.change(dev, |fs, dev| {
            let parent = fs.parent(dev, path)?;
            let Last::Name(name) = parent.last else {
                return Err(errno::EINVAL);
            };
            let ino = fs.lookup(dev, parent.dir, name)?.ok_or(errno::ENOENT)?;
            let inode = fs.dir_inode(dev, ino)?;
            if fs.dir_count(dev, &inode)? != 0 {
                return Err(errno::ENOTEMPTY);
            }
            fs.unlink_entry(dev, parent.dir, name, ino)
        })
    }

    /// True when `dir` is `ancestor` or lies below it.
    fn is_within(
        &mut self,
        dev: &mut dyn BlockDevice,
        mut dir: u32,
        ancestor: u32,
    ) -> Result<bool, Errno> {
        // Bounded by the number of inodes, in case `..` entries form a loop.
        for _ in 0..=self.sb.inodes_count.get() {
            if dir == ancestor {
                return Ok(true);
            }
            let parent = self.parent_dir(dev, dir)?;
            if parent == dir {
                return Ok(false);
            }
            dir = parent;
        }
        Err(errno::EIO)
    }

    /// Renames a file or directory, replacing an existing file or empty directory of
    /// the same kind at the new name (`EPERM` for the journal).
    pub fn rename(&mut self, dev: &mut dyn BlockDevice, old: &str, new: &str) -> Result<(), Errno> {
        self.change(dev, |fs, dev| fs.rename_inner(dev, old, new))
    }

    fn rename_inner(
        &mut self,
        dev: &mut dyn BlockDevice,
        old: &str,
        new: &str,
    ) -> Result<(), Errno> {
        let from = self.parent(dev, old)?;
        let to = self.parent(dev, new)?;
        let (Last::Name(old_name), Last::Name(new_name)) = (from.last, to.last) else {
            return Err(errno::EINVAL);
        };
        let ino = self.lookup(dev, from.dir, old_name)?.ok_or(errno::ENOENT)?;
        let kind = self.named(dev, ino)?.1;
        let is_dir = kind == Kind::Dir;
        if !is_dir && (from.trailing_slash || to.trailing_slash) {
            return Err(errno::ENOTDIR);
        }
        let target = self.lookup(dev, to.dir, new_name)?;
        if target == Some(ino) {
            return Ok(());
        }
        if ino == JOURNAL_INO || target == Some(JOURNAL_INO) {
            return Err(errno::EPERM);
        }
        if is_dir && self.is_within(dev, to.dir, ino)? {
            return Err(errno::EINVAL);
        }
        if let Some(target) = target {
            let (target_inode, target_kind) = self.named(dev, target)?;
            match (is_dir, target_kind == Kind::Dir) {
                (false, true) => return Err(errno::EISDIR),
                (true, false) => return Err(errno::ENOTDIR),
                (true, true) if self.dir_count(dev, &target_inode)? != 0 => {
                    return Err(errno::ENOTEMPTY)
                }
                _ => {}
            }
        }
        let moves_up = is_dir && from.dir != to.dir && target.is_none();
        if moves_up && self.dir_inode(dev, to.dir)?.links_count.get() >= LINK_MAX {
            return Err(errno::ENOSPC);
        }
        // The only step that can run out of space comes first.
        let slot = match target {
            Some(_) => None,
            None => {
                let mut to_inode = self.dir_inode(dev, to.dir)?;
                Some(self.dir_room(dev, to.dir, &mut to_inode, new_name.len())?)
            }
        };
        let to_inode = self.dir_inode(dev, to.dir)?;
        match slot {
            Some(block) => self.dir_insert(dev, block, new_name.as_bytes(), ino, kind)?,
            None => self.dir_repoint(dev, &to_inode, new_name.as_bytes(), ino, kind)?,
        }
        let from_inode = self.dir_inode(dev, from.dir)?;
        self.dir_remove(dev, &from_inode, old_name.as_bytes())?;
        if is_dir && from.dir != to.dir {
            let moved = self.dir_inode(dev, ino)?;
            self.dir_repoint(dev, &moved, b"..", to.dir, Kind::Dir)?;
            self.add_links(dev, from.dir, -1)?;
            self.add_links(dev, to.dir, 1)?;
        }
        if let Some(target) = target {
            let links = if is_dir {
                self.add_links(dev, to.dir, -1)?;
                self.add_links(dev, target, -i32::from(u16::MAX))?
            } else {
                self.add_links(dev, target, -1)?
            };
            if links == 0 && !self.opens.contains_key(&target) {
                self.release(dev, target)?;
            }
        }
        Ok(())
    }

    /// The status of an inode (directories: `size` is the number of entries).
    pub fn stat(&mut self, dev: &mut dyn BlockDevice, ino: Ino) -> Result<Stat, Errno> {
        let (_, inode, kind) = self.live(dev, ino)?;
        let (size, kind) = match kind {
            Kind::File => (inode.size(), KIND_FILE),
            Kind::Dir => (self.dir_count(dev, &inode)?, KIND_DIR),
        };
        Ok(Stat {
            ino,
            size,
            kind,
            nlink: u32::from(inode.links_count.get()),
        })
    }

    /// The names in a directory, sorted, as a NUL-terminated list.
    pub fn readdir(&mut self, dev: &mut dyn BlockDevice, dir: Ino) -> Result<Vec<u8>, Errno> {
        let (_, inode, kind) = self.live(dev, dir)?;
        if kind != Kind::Dir {
            return Err(errno::ENOTDIR);
        }
        let mut out = Vec::new();
        for name in self.dir_names(dev, &inode)? {
            out.extend_from_slice(&name);
            out.push(0);
        }
        Ok(out)
    }
}
