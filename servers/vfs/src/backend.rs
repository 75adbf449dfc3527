//! [`Backend`]: the file system a VFS domain serves, chosen when it starts: the disk
//! of its `blk` peer when it has one, else a tree in memory filled from the root
//! archive.

use alloc::vec::Vec;

use ankh_ext2::BlockDevice;
use ankh_proto::errno::Errno;
use ankh_proto::vfs::Stat;

use crate::disk::DiskFs;
use crate::fs::FileSystem;
use crate::server::Config;
use crate::space::Space;
use crate::storage::{Ino, MemStorage};
use crate::tree::Tree;

/// In memory until a disk is mounted.
#[derive(Debug)]
pub enum Backend {
    /// A tree in memory.
    Memory(Tree<MemStorage>),
    /// An ext2 file system on the `blk` device.
    Disk(DiskFs),
}

impl Backend {
    /// An empty tree in memory with `config`'s limits.
    pub fn new(config: &Config) -> Backend {
        Backend::Memory(Tree::new(
            MemStorage::new(config.data_budget),
            config.max_inodes,
        ))
    }

    fn fs(&mut self) -> &mut dyn FileSystem {
        match self {
            Backend::Memory(tree) => tree,
            Backend::Disk(disk) => disk,
        }
    }
}

impl FileSystem for Backend {
    fn resolve(&mut self, io: &mut dyn BlockDevice, path: &str) -> Result<Ino, Errno> {
        self.fs().resolve(io, path)
    }

    fn open(&mut self, io: &mut dyn BlockDevice, path: &str, flags: u32) -> Result<Ino, Errno> {
        self.fs().open(io, path, flags)
    }

    fn close(&mut self, io: &mut dyn BlockDevice, ino: Ino) {
        self.fs().close(io, ino);
    }

    fn mkdir(&mut self, io: &mut dyn BlockDevice, path: &str) -> Result<Ino, Errno> {
        self.fs().mkdir(io, path)
    }

    fn unlink(&mut self, io: &mut dyn BlockDevice, path: &str) -> Result<(), Errno> {
        self.fs().unlink(io, path)
    }

    fn rmdir(&mut self, io: &mut dyn BlockDevice, path: &str) -> Result<(), Errno> {
        self.fs().rmdir(io, path)
    }

    fn rename(&mut self, io: &mut dyn BlockDevice, old: &str, new: &str) -> Result<(), Errno> {
        self.fs().rename(io, old, new)
    }

    fn stat(&mut self, io: &mut dyn BlockDevice, ino: Ino) -> Result<Stat, Errno> {
        self.fs().stat(io, ino)
    }

    fn readdir(&mut self, io: &mut dyn BlockDevice, dir: Ino) -> Result<Vec<u8>, Errno> {
        self.fs().readdir(io, dir)
    }

    fn len(&mut self, io: &mut dyn BlockDevice, ino: Ino) -> Result<u64, Errno> {
        self.fs().len(io, ino)
    }

    fn read(
        &mut self,
        io: &mut dyn BlockDevice,
        ino: Ino,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, Errno> {
        self.fs().read(io, ino, offset, len)
    }

    fn write(
        &mut self,
        io: &mut dyn BlockDevice,
        ino: Ino,
        offset: u64,
        data: &[u8],
    ) -> Result<usize, Errno> {
        self.fs().write(io, ino, offset, data)
    }

    fn truncate(&mut self, io: &mut dyn BlockDevice, ino: Ino, len: u64) -> Result<(), Errno> {
        self.fs().truncate(io, ino, len)
    }

    fn sync(&mut self, io: &mut dyn BlockDevice) -> Result<(), Errno> {
        self.fs().sync(io)
    }

    fn inode_count(&self) -> usize {
        match self {
            Backend::Memory(tree) => tree.inode_count(),
            Backend::Disk(disk) => disk.inode_count(),
        }
    }

    fn space(&self) -> (Space, Space) {
        match self {
            Backend::Memory(tree) => tree.space(),
            Backend::Disk(disk) => disk.space(),
        }
    }

    /// Switches to the disk: the tree in memory is dropped (nothing is open yet when a
    /// server starts).
    fn mount(&mut self, io: &mut dyn BlockDevice) -> Result<(), Errno> {
        let mut disk = DiskFs::new();
        disk.mount(io)?;
        *self = Backend::Disk(disk);
        Ok(())
    }

    fn declare_cache_writes(&mut self, writes: ankh_ext2::DeclaredWrites) {
        self.fs().declare_cache_writes(writes);
    }

    fn load_archive(&mut self, archive: &[u8]) -> Result<(), Errno> {
        self.fs().load_archive(archive)
    }
}
