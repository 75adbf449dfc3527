//! [`FileSystem`]: what VFS needs from the place its files live, so that the same
//! server runs over the in-memory [`Tree`] or an on-disk file system.
//!
//! Every operation gets the block device as `io`: inside a domain the device is the
//! `blk` driver, reachable only through the kernel of the request in hand, so a file
//! system cannot own it. The in-memory tree ignores it.

use alloc::vec::Vec;

use ankh_ext2::BlockDevice;
use ankh_proto::errno::{self, Errno};
use ankh_proto::vfs::Stat;

use crate::space::Space;
use crate::storage::{Ino, Storage};
use crate::tree::Tree;

/// Directories and files, addressed by path and by inode number. The semantics and
/// errors are those of [`Tree`], whose documentation is the reference.
pub trait FileSystem {
    /// The inode a path names.
    fn resolve(&mut self, io: &mut dyn BlockDevice, path: &str) -> Result<Ino, Errno>;

    /// Opens a path with `O_*` flags; the inode is counted as open until
    /// [`close`](FileSystem::close).
    fn open(&mut self, io: &mut dyn BlockDevice, path: &str, flags: u32) -> Result<Ino, Errno>;

    /// One open of `ino` ended: an inode without links is freed with its last close.
    fn close(&mut self, io: &mut dyn BlockDevice, ino: Ino);

    /// Makes a directory.
    fn mkdir(&mut self, io: &mut dyn BlockDevice, path: &str) -> Result<Ino, Errno>;

    /// Removes a file's name.
    fn unlink(&mut self, io: &mut dyn BlockDevice, path: &str) -> Result<(), Errno>;

    /// Removes an empty directory.
    fn rmdir(&mut self, io: &mut dyn BlockDevice, path: &str) -> Result<(), Errno>;

    /// Renames a file or directory.
    fn rename(&mut self, io: &mut dyn BlockDevice, old: &str, new: &str) -> Result<(), Errno>;

    /// The status of an inode.
    fn stat(&mut self, io: &mut dyn BlockDevice, ino: Ino) -> Result<Stat, Errno>;

    /// The names in a directory, sorted, as a NUL-terminated list.
    fn readdir(&mut self, io: &mut dyn BlockDevice, dir: Ino) -> Result<Vec<u8>, Errno>;

    /// A file's length.
    fn len(&mut self, io: &mut dyn BlockDevice, ino: Ino) -> Result<u64, Errno>;

    /// Reads up to `len` bytes of a file at `offset`.
    fn read(
        &mut self,
        io: &mut dyn BlockDevice,
        ino: Ino,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, Errno>;

    /// Writes into a file at `offset`; returns the bytes written.
    fn write(
        &mut self,
        io: &mut dyn BlockDevice,
        ino: Ino,
        offset: u64,
        data: &[u8],
    ) -> Result<usize, Errno>;

    /// Sets a file's length.
    fn truncate(&mut self, io: &mut dyn BlockDevice, ino: Ino, len: u64) -> Result<(), Errno>;

    /// Makes everything written so far durable (`fsync`; file systems in memory have
    /// nothing to do).
    fn sync(&mut self, io: &mut dyn BlockDevice) -> Result<(), Errno>;

    /// Inodes in use (including removed ones still open).
    fn inode_count(&self) -> usize;

    /// The space in use and in all, in bytes of storage and in inodes (nothing when
    /// nothing is mounted): what each session's share is measured in
    /// (`crate::space`).
    fn space(&self) -> (Space, Space);

    /// Mounts the file system on the device, when the server starts with one
    /// (`ENOSYS` for a file system that lives in memory).
    fn mount(&mut self, io: &mut dyn BlockDevice) -> Result<(), Errno>;

    /// Keeps a mounted disk's block cache in a region whose writes `writes` declares
    /// (see `ankh_ext2::DeclaredWrites`); nothing for a file system in memory.
    fn declare_cache_writes(&mut self, _writes: ankh_ext2::DeclaredWrites) {}

    /// Fills a fresh file system from a root file system archive, when the server
    /// starts without a device (`EINVAL` for a malformed archive, which leaves an empty
    /// root).
    fn load_archive(&mut self, archive: &[u8]) -> Result<(), Errno>;
}

impl<S: Storage> FileSystem for Tree<S> {
    fn resolve(&mut self, _io: &mut dyn BlockDevice, path: &str) -> Result<Ino, Errno> {
        Tree::resolve(self, path)
    }

    fn open(&mut self, _io: &mut dyn BlockDevice, path: &str, flags: u32) -> Result<Ino, Errno> {
        Tree::open(self, path, flags)
    }

    fn close(&mut self, _io: &mut dyn BlockDevice, ino: Ino) {
        Tree::close(self, ino);
    }

    fn mkdir(&mut self, _io: &mut dyn BlockDevice, path: &str) -> Result<Ino, Errno> {
        Tree::mkdir(self, path)
    }

    fn unlink(&mut self, _io: &mut dyn BlockDevice, path: &str) -> Result<(), Errno> {
        Tree::unlink(self, path)
    }

    fn rmdir(&mut self, _io: &mut dyn BlockDevice, path: &str) -> Result<(), Errno> {
        Tree::rmdir(self, path)
    }

    fn rename(&mut self, _io: &mut dyn BlockDevice, old: &str, new: &str) -> Result<(), Errno> {
        Tree::rename(self, old, new)
    }

    fn stat(&mut self, _io: &mut dyn BlockDevice, ino: Ino) -> Result<Stat, Errno> {
        Tree::stat(self, ino)
    }

    fn readdir(&mut self, _io: &mut dyn BlockDevice, dir: Ino) -> Result<Vec<u8>, Errno> {
        Tree::readdir(self, dir)
    }

    fn len(&mut self, _io: &mut dyn BlockDevice, ino: Ino) -> Result<u64, Errno> {
        Tree::len(self, ino)
    }

    fn read(
        &mut self,
        _io: &mut dyn BlockDevice,
        ino: Ino,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, Errno> {
        Tree::read(self, ino, offset, len)
    }

    fn write(
        &mut self,
        _io: &mut dyn BlockDevice,
        ino: Ino,
        offset: u64,
        data: &[u8],
    ) -> Result<usize, Errno> {
        Tree::write(self, ino, offset, data)
    }

    fn truncate(&mut self, _io: &mut dyn BlockDevice, ino: Ino, len: u64) -> Result<(), Errno> {
        Tree::truncate(self, ino, len)
    }

    fn sync(&mut self, _io: &mut dyn BlockDevice) -> Result<(), Errno> {
        Ok(())
    }

    fn inode_count(&self) -> usize {
        Tree::inode_count(self)
    }

    fn space(&self) -> (Space, Space) {
        let in_use = Space::new(self.storage().used(), self.inode_count());
        let total = Space::new(self.storage().capacity(), self.inode_limit());
        (in_use, total)
    }

    fn mount(&mut self, _io: &mut dyn BlockDevice) -> Result<(), Errno> {
        Err(errno::ENOSYS)
    }

    fn load_archive(&mut self, archive: &[u8]) -> Result<(), Errno> {
        let loaded = self.load(archive);
        if loaded.is_err() {
            self.clear();
        }
        loaded
    }
}
