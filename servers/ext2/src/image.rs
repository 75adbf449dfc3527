//! [`Image`]: builds a file system image in memory (the root file system the build
//! packs): mkfs, then directories and files added by path, then the bytes.

use alloc::vec::Vec;

use ankh_proto::errno::{self, Errno};
use ankh_proto::vfs::{O_CREAT, O_EXCL, O_WRONLY};

use crate::device::MemDisk;
use crate::fs::Ext2Fs;
use crate::mkfs::mkfs;

/// A file system being built in memory.
#[derive(Debug)]
pub struct Image {
    disk: MemDisk,
    fs: Ext2Fs,
}

impl Image {
    /// A fresh file system of `blocks` blocks (one inode per 16 KiB).
    pub fn new(blocks: u64) -> Result<Image, Errno> {
        Image::with_inodes(blocks, None)
    }

    /// A fresh file system of `blocks` blocks and about `inodes` inodes.
    pub fn with_inodes(blocks: u64, inodes: Option<u32>) -> Result<Image, Errno> {
        let mut disk = MemDisk::new(blocks);
        mkfs(&mut disk, blocks, inodes)?;
        let fs = Ext2Fs::mount(&mut disk)?;
        Ok(Image { disk, fs })
    }

    /// Makes a directory; one that already exists is fine (`ENOENT` when its parent
    /// is missing).
    pub fn add_dir(&mut self, path: &str) -> Result<(), Errno> {
        match self.fs.mkdir(&mut self.disk, path) {
            Ok(_) => Ok(()),
            Err(errno::EEXIST) => {
                let ino = self.fs.resolve(&mut self.disk, path)?;
                match self.fs.len(&mut self.disk, ino) {
                    Err(errno::EISDIR) => Ok(()),
                    _ => Err(errno::EEXIST),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Adds a file with its contents (`EEXIST` when the path is taken, `ENOSPC` when
    /// it does not fit).
    pub fn add_file(&mut self, path: &str, data: &[u8]) -> Result<(), Errno> {
        let ino = self
            .fs
            .open(&mut self.disk, path, O_CREAT | O_EXCL | O_WRONLY)?;
        let written = self.fs.write(&mut self.disk, ino, 0, data);
        self.fs.close(&mut self.disk, ino)?;
        if written? == data.len() {
            Ok(())
        } else {
            Err(errno::ENOSPC)
        }
    }

    /// The file system and its disk, for anything else.
    pub fn parts(&mut self) -> (&mut Ext2Fs, &mut MemDisk) {
        (&mut self.fs, &mut self.disk)
    }

    /// Syncs and returns the image (its journal erased: nothing to replay, and zeros
    /// that the sparse form leaves out).
    pub fn finish(mut self) -> Result<Vec<u8>, Errno> {
        self.fs.erase_journal(&mut self.disk)?;
        Ok(self.disk.into_image())
    }
}
