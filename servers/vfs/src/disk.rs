//! [`DiskFs`]: the files on a disk, as a [`FileSystem`]: an `ankh_ext2` file system,
//! mounted when the server starts. Every operation delegates to
//! [`Ext2Fs`](ankh_ext2::Ext2Fs); before a successful mount they answer `EIO`.

use alloc::boxed::Box;
use alloc::vec::Vec;

use ankh_ext2::{BlockDevice, Ext2Fs, DEFAULT_CACHE_BLOCKS};
use ankh_proto::errno::{self, Errno};
use ankh_proto::vfs::Stat;

use crate::fs::FileSystem;
use crate::space::Space;
use crate::storage::Ino;

/// An ext2 file system on the `blk` device, mounted or not yet.
#[derive(Debug)]
pub struct DiskFs {
    /// Boxed: a mounted file system holds its superblock and descriptors (over a
    /// kilobyte), which would make every value holding a `DiskFs` as large.
    fs: Option<Box<Ext2Fs>>,
    cache_blocks: usize,
}

impl DiskFs {
    /// A file system to mount, with a block cache of the default size.
    pub fn new() -> DiskFs {
        DiskFs::with_cache(DEFAULT_CACHE_BLOCKS)
    }

    /// A file system to mount, with a block cache of about `cache_blocks` blocks.
    pub fn with_cache(cache_blocks: usize) -> DiskFs {
        DiskFs {
            fs: None,
            cache_blocks,
        }
    }

    /// The mounted file system, if any.
    pub fn mounted(&self) -> Option<&Ext2Fs> {
        self.fs.as_deref()
    }

    fn fs(&mut self) -> Result<&mut Ext2Fs, Errno> {
        self.fs.as_deref_mut().ok_or(errno::EIO)
    }
}

impl Default for DiskFs {
    fn default() -> DiskFs {
        DiskFs::new()
    }
}

impl FileSystem for DiskFs {
    fn resolve(&mut self, io: &mut dyn BlockDevice, path: &str) -> Result<Ino, Errno> {
        self.fs()?.resolve(io, path)
    }

    fn open(&mut self, io: &mut dyn BlockDevice, path: &str, flags: u32) -> Result<Ino, Errno> {
        self.fs()?.open(io, path, flags)
    }

    fn close(&mut self, io: &mut dyn BlockDevice, ino: Ino) {
        // A failure to free a removed file leaves an orphan, which the next mount
        // frees: nothing for the closing process to do about it.
        if let Ok(fs) = self.fs() {
            let _ = fs.close(io, ino);
        }
    }

    fn mkdir(&mut self, io: &mut dyn BlockDevice, path: &str) -> Result<Ino, Errno> {
        self.fs()?.mkdir(io, path)
    }

    fn unlink(&mut self, io: &mut dyn BlockDevice, path: &str) -> Result<(), Errno> {
        self.fs()?.unlink(io, path)
    }

    fn rmdir(&mut self, io: &mut dyn BlockDevice, path: &str) -> Result<(), Errno> {
        self.fs()?.rmdir(io, path)
    }

    fn rename(&mut self, io: &mut dyn BlockDevice, old: &str, new: &str) -> Result<(), Errno> {
        self.fs()?.rename(io, old, new)
    }

    fn stat(&mut self, io: &mut dyn BlockDevice, ino: Ino) -> Result<Stat, Errno> {
        self.fs()?.stat(io, ino)
    }

    fn readdir(&mut self, io: &mut dyn BlockDevice, dir: Ino) -> Result<Vec<u8>, Errno> {
        self.fs()?.readdir(io, dir)
    }

    fn len(&mut self, io: &mut dyn BlockDevice, ino: Ino) -> Result<u64, Errno> {
        self.fs()?.len(io, ino)
    }

    fn read(
        &mut self,
        io: &mut dyn BlockDevice,
        ino: Ino,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, Errno> {
        self.fs()?.read(io, ino, offset, len)
    }

    fn write(
        &mut self,
        io: &mut dyn BlockDevice,
        ino: Ino,
        offset: u64,
        data: &[u8],
    ) -> Result<usize, Errno> {
        self.fs()?.write(io, ino, offset, data)
    }

    fn truncate(&mut self, io: &mut dyn BlockDevice, ino: Ino, len: u64) -> Result<(), Errno> {
        self.fs()?.truncate(io, ino, len)
    }

    fn sync(&mut self, io: &mut dyn BlockDevice) -> Result<(), Errno> {
        self.fs()?.sync(io)
    }

    fn inode_count(&self) -> usize {
        self.fs.as_deref().map_or(0, Ext2Fs::inode_count)
    }

    fn space(&self) -> (Space, Space) {
        let block = ankh_ext2::BLOCK_SIZE as u64;
        self.fs.as_deref().map_or_else(Default::default, |fs| {
            let blocks = fs.total_blocks();
            let used = blocks.saturating_sub(fs.free_blocks()) * block;
            let in_use = Space::new(used, fs.inode_count());
            (in_use, Space::new(blocks * block, fs.total_inodes()))
        })
    }

    fn mount(&mut self, io: &mut dyn BlockDevice) -> Result<(), Errno> {
        self.fs = Some(Box::new(Ext2Fs::mount_with_cache(io, self.cache_blocks)?));
        Ok(())
    }

    fn declare_cache_writes(&mut self, writes: ankh_ext2::DeclaredWrites) {
        if let Some(fs) = self.fs.as_deref_mut() {
            fs.declare_cache_writes(writes);
        }
    }

    fn load_archive(&mut self, _archive: &[u8]) -> Result<(), Errno> {
        // The files are on the disk; without one there is nothing to fill.
        Err(errno::ENOSYS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ankh_ext2::{mkfs, MemDisk};
    use ankh_proto::vfs::{O_CREAT, O_RDWR};

    #[test]
    fn delegates_once_mounted() {
        let mut disk = MemDisk::new(4096);
        mkfs(&mut disk, 4096, None).unwrap();
        let mut fs = DiskFs::new();
        assert_eq!(fs.resolve(&mut disk, "/"), Err(errno::EIO));
        assert_eq!(fs.inode_count(), 0);
        fs.mount(&mut disk).unwrap();
        let ino = fs.open(&mut disk, "/f", O_CREAT | O_RDWR).unwrap();
        assert_eq!(fs.write(&mut disk, ino, 0, b"disk").unwrap(), 4);
        fs.close(&mut disk, ino);
        fs.sync(&mut disk).unwrap();
        let mut again = DiskFs::new();
        again.mount(&mut disk).unwrap();
        let ino = again.resolve(&mut disk, "/f").unwrap();
        assert_eq!(again.read(&mut disk, ino, 0, 10).unwrap(), b"disk");
        assert_eq!(again.load_archive(&[]), Err(errno::ENOSYS));
    }
}
