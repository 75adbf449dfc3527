//! Directories as files of directory blocks: looking a name up, listing and counting
//! entries, finding (or adding) a block with room for a new entry, and changing
//! entries. Directories have no holes; every block is walked with the checks of
//! `dirent`, so a corrupt directory costs at most its (bounded) size.

use alloc::vec::Vec;

use ankh_proto::errno::{self, Errno};

use crate::device::BlockDevice;
use crate::dirent;
use crate::fs::Ext2Fs;
use crate::inode::{Inode, Kind};
use crate::layout::{BLOCK_BYTES, MAX_DIR_BLOCKS};

impl Ext2Fs {
    /// The disk blocks of a directory, in order (`EIO` for a hole).
    fn dir_blocks(&mut self, dev: &mut dyn BlockDevice, dir: &Inode) -> Result<Vec<u64>, Errno> {
        let count = (dir.size() / BLOCK_BYTES).min(MAX_DIR_BLOCKS);
        (0..count)
            .map(|lblk| self.bmap(dev, dir, lblk)?.ok_or(errno::EIO))
            .collect()
    }

    /// Calls `visit` with each block of a directory until it returns something.
    fn scan_dir<T>(
        &mut self,
        dev: &mut dyn BlockDevice,
        dir: &Inode,
        mut visit: impl FnMut(u64, &[u8]) -> Result<Option<T>, Errno>,
    ) -> Result<Option<T>, Errno> {
        for block in self.dir_blocks(dev, dir)? {
            let data = self.cache.read(dev, block)?;
            if let Some(found) = visit(block, data)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The inode a name in a directory names (`EIO` for an inode number out of
    /// range).
    pub(crate) fn dir_lookup(
        &mut self,
        dev: &mut dyn BlockDevice,
        dir: &Inode,
        name: &[u8],
    ) -> Result<Option<u32>, Errno> {
        let inodes = self.sb.inodes_count.get();
        self.scan_dir(dev, dir, |_, data| {
            dirent::find(data, name)?
                .map(|entry| {
                    if entry.ino > inodes {
                        Err(errno::EIO)
                    } else {
                        Ok(entry.ino)
                    }
                })
                .transpose()
        })
    }

    /// Calls `each` with every name in a directory but `.` and `..`.
    fn dir_each(
        &mut self,
        dev: &mut dyn BlockDevice,
        dir: &Inode,
        mut each: impl FnMut(&[u8]) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        self.scan_dir(dev, dir, |_, data| {
            for entry in dirent::entries(data) {
                let entry = entry?;
                if entry.ino != 0 && entry.name != b"." && entry.name != b".." {
                    each(entry.name)?;
                }
            }
            Ok(None::<()>)
        })?;
        Ok(())
    }

    /// The names in a directory but `.` and `..`, sorted (`EIO` for a name no path
    /// could hold: with a NUL or a `/`).
    pub(crate) fn dir_names(
        &mut self,
        dev: &mut dyn BlockDevice,
        dir: &Inode,
    ) -> Result<Vec<Vec<u8>>, Errno> {
        let mut names = Vec::new();
        self.dir_each(dev, dir, |name| {
            if name.iter().any(|&b| b == 0 || b == b'/') {
                return Err(errno::EIO);
            }
            names.push(name.to_vec());
            Ok(())
        })?;
        names.sort_unstable();
        Ok(names)
    }

    /// Entries in a directory but `.` and `..`.
    pub(crate) fn dir_count(
        &mut self,
        dev: &mut dyn BlockDevice,
        dir: &Inode,
    ) -> Result<u64, Errno> {
        let mut count = 0;
        self.dir_each(dev, dir, |_| {
            count += 1;
            Ok(())
        })?;
        Ok(count)
    }

    /// A block of the directory with room for an entry named with `name_len` bytes;
    /// adds an empty block at the end when none has room (then writes the inode).
    /// `ENOSPC` when the disk is full or the directory at its largest.
    pub(crate) fn dir_room(
        &mut self,
        dev: &mut dyn BlockDevice,
        dir_ino: u32,
        dir: &mut Inode,
        name_len: usize,
    ) -> Result<u64, Errno> {
        let found = self.scan_dir(dev, dir, |block, data| {
            Ok(dirent::has_room(data, name_len)?.then_some(block))
        })?;
        if let Some(block) = found {
            return Ok(block);
        }
        let count = dir.size() / BLOCK_BYTES;
        if count >= MAX_DIR_BLOCKS {
            return Err(errno::ENOSPC);
        }
        let goal = match count.checked_sub(1) {
            Some(last) => self
                .bmap(dev, dir, last)?
                .map_or(self.next_block, |b| b + 1),
            None => self.next_block,
        };
        let added = self.bmap_alloc(dev, dir, count, goal);
        let block = match added {
            Ok((block, _)) => block,
            Err(e) => {
                // An indirect block may have been added on the way: keep the inode
                // saying so.
                self.write_inode(dev, dir_ino, dir)?;
                return Err(e);
            }
        };
        dirent::init_empty(self.cache.zeroed(block));
        dir.set_size((count + 1) * BLOCK_BYTES);
        self.write_inode(dev, dir_ino, dir)?;
        Ok(block)
    }

    /// Adds an entry to a block [`dir_room`](Ext2Fs::dir_room) chose.
    pub(crate) fn dir_insert(
        &mut self,
        dev: &mut dyn BlockDevice,
        block: u64,
        name: &[u8],
        ino: u32,
        kind: Kind,
    ) -> Result<(), Errno> {
        let data = self.cache.write(dev, block)?;
        if dirent::insert(data, name, ino, kind.file_type())? {
            Ok(())
        } else {
            Err(errno::EIO)
        }
    }

    /// Removes the entry `name` (`EIO` when it is missing: the caller looked it up).
    pub(crate) fn dir_remove(
        &mut self,
        dev: &mut dyn BlockDevice,
        dir: &Inode,
        name: &[u8],
    ) -> Result<u32, Errno> {
        let block = self.scan_dir(dev, dir, |block, data| {
            Ok(dirent::find(data, name)?.map(|_| block))
        })?;
        let block = block.ok_or(errno::EIO)?;
        dirent::remove(self.cache.write(dev, block)?, name)?.ok_or(errno::EIO)
    }

    /// Points the entry `name` at another inode (`EIO` when it is missing).
    pub(crate) fn dir_repoint(
        &mut self,
        dev: &mut dyn BlockDevice,
        dir: &Inode,
        name: &[u8],
        ino: u32,
        kind: Kind,
    ) -> Result<(), Errno> {
        let block = self.scan_dir(dev, dir, |block, data| {
            Ok(dirent::find(data, name)?.map(|_| block))
        })?;
        let block = block.ok_or(errno::EIO)?;
        if dirent::repoint(self.cache.write(dev, block)?, name, ino, kind.file_type())? {
            Ok(())
        } else {
            Err(errno::EIO)
        }
    }
}
