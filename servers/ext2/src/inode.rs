//! Inodes as on disk (the 128-byte revision 1 record), their file types, and the
//! checks an inode read from a possibly corrupt disk must pass before it is used.

use ankh_proto::errno::{self, Errno};
use zerocopy::byteorder::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::layout::{BLOCK_BYTES, MAX_DIR_BLOCKS, MAX_FILE_SIZE};

/// Bytes of the record this crate reads and writes (larger inodes keep the rest zero).
pub const INODE_RECORD_SIZE: usize = 128;

/// `i_mode` bits of the file type.
pub const S_IFMT: u16 = 0o170_000;
/// `i_mode` type of a directory.
pub const S_IFDIR: u16 = 0o040_000;
/// `i_mode` type of a regular file.
pub const S_IFREG: u16 = 0o100_000;

/// 512-byte sectors per block, the unit of `i_blocks`.
const SECTORS_PER_BLOCK: i64 = 8;

/// The block pointer slots: 12 direct, then single, double and triple indirect.
pub const BLOCK_SLOTS: usize = 15;
/// The slot of the single indirect block.
pub const SLOT_INDIRECT: usize = 12;
/// The slot of the double indirect block.
pub const SLOT_DOUBLE: usize = 13;
/// The slot of the triple indirect block (never used here).
pub const SLOT_TRIPLE: usize = 14;

/// An inode, as on disk.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned,
)]
#[repr(C)]
pub struct Inode {
    /// File type and permissions.
    pub mode: U16,
    /// Owner.
    pub uid: U16,
    /// Size, low 32 bits.
    pub size_lo: U32,
    /// Access time.
    pub atime: U32,
    /// Change time.
    pub ctime: U32,
    /// Modification time.
    pub mtime: U32,
    /// Deletion time (0 while in use).
    pub dtime: U32,
    /// Group.
    pub gid: U16,
    /// Links (directory entries naming it, plus `.` and `..` for directories).
    pub links_count: U16,
    /// Allocated blocks, data and indirect, in 512-byte units.
    pub blocks: U32,
    /// Flags.
    pub flags: U32,
    /// OS-dependent word.
    pub osd1: U32,
    /// Block pointers.
    pub block: [U32; BLOCK_SLOTS],
    /// Generation (for network file systems).
    pub generation: U32,
    /// Extended attribute block.
    pub file_acl: U32,
    /// Size, high 32 bits (regular files, `large_file`).
    pub size_high: U32,
    /// Fragment address (obsolete).
    pub faddr: U32,
    /// OS-dependent bytes.
    pub osd2: [u8; 12],
}

const _: () = assert!(core::mem::size_of::<Inode>() == INODE_RECORD_SIZE);

/// What an inode is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

impl Kind {
    /// The `i_mode` of a new inode of this kind (rw-r--r-- files, rwxr-xr-x
    /// directories).
    pub fn mode(self) -> u16 {
        match self {
            Kind::File => S_IFREG | 0o644,
            Kind::Dir => S_IFDIR | 0o755,
        }
    }

    /// The directory entry file type (`EXT2_FT_REG_FILE`, `EXT2_FT_DIR`).
    pub fn file_type(self) -> u8 {
        match self {
            Kind::File => 1,
            Kind::Dir => 2,
        }
    }
}

impl Inode {
    /// An inode from its bytes.
    pub fn parse(bytes: &[u8]) -> Result<Inode, Errno> {
        let bytes = bytes.get(..INODE_RECORD_SIZE).ok_or(errno::EIO)?;
        Inode::read_from_bytes(bytes).map_err(|_| errno::EIO)
    }

    /// A fresh inode of a kind, without blocks.
    pub fn new(mode: u16, links: u16) -> Inode {
        Inode {
            mode: U16::new(mode),
            links_count: U16::new(links),
            ..Inode::default()
        }
    }

    /// The kind, checking what this crate relies on: a file or directory without a
    /// triple indirect block, with a size it can address (`EIO` otherwise).
    pub fn kind(&self) -> Result<Kind, Errno> {
        let kind = match self.mode.get() & S_IFMT {
            S_IFREG => Kind::File,
            S_IFDIR => Kind::Dir,
            _ => return Err(errno::EIO),
        };
        let size = self.size();
        let fits = match kind {
            Kind::File => size <= MAX_FILE_SIZE,
            Kind::Dir => {
                self.size_high.get() == 0
                    && size.next_multiple_of(BLOCK_BYTES) == size
                    && size / BLOCK_BYTES <= MAX_DIR_BLOCKS
            }
        };
        if !fits || self.block[SLOT_TRIPLE].get() != 0 {
            return Err(errno::EIO);
        }
        Ok(kind)
    }

    /// The size in bytes.
    pub fn size(&self) -> u64 {
        u64::from(self.size_lo.get()) | (u64::from(self.size_high.get()) << 32)
    }

    /// Sets the size in bytes.
    pub fn set_size(&mut self, size: u64) {
        self.size_lo = U32::new(u32::try_from(size & 0xFFFF_FFFF).unwrap_or(0));
        self.size_high = U32::new(u32::try_from(size >> 32).unwrap_or(u32::MAX));
    }

    /// The block pointer in a slot.
    pub fn slot(&self, slot: usize) -> u32 {
        self.block.get(slot).map_or(0, |b| b.get())
    }

    /// Sets the block pointer in a slot.
    pub fn set_slot(&mut self, slot: usize, block: u32) {
        if let Some(b) = self.block.get_mut(slot) {
            *b = U32::new(block);
        }
    }

    /// Counts `blocks` more (or fewer, when negative) file-system blocks in `i_blocks`;
    /// `EIO` when the count would leave its range (a corrupt inode).
    pub fn add_blocks(&mut self, blocks: i64) -> Result<(), Errno> {
        let sectors = blocks
            .checked_mul(SECTORS_PER_BLOCK)
            .and_then(|delta| delta.checked_add(i64::from(self.blocks.get())))
            .and_then(|sectors| u32::try_from(sectors).ok())
            .ok_or(errno::EIO)?;
        self.blocks = U32::new(sectors);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_size() {
        let mut inode = Inode::new(Kind::File.mode(), 1);
        inode.set_size(0x1_0000_6789);
        inode.set_slot(SLOT_DOUBLE, 77);
        let bytes = inode.as_bytes();
        assert_eq!(&bytes[4..8], &[0x89, 0x67, 0, 0]);
        assert_eq!(&bytes[108..112], &[1, 0, 0, 0]);
        assert_eq!(bytes[40 + 13 * 4], 77);
        assert_eq!(inode.size(), 0x1_0000_6789);
        assert_eq!(inode.kind(), Ok(Kind::File));
        inode.add_blocks(2).unwrap();
        assert_eq!(inode.blocks.get(), 16);
        assert_eq!(inode.add_blocks(-3), Err(errno::EIO));
    }

    #[test]
    fn rejects_what_it_cannot_handle() {
        let mut dir = Inode::new(Kind::Dir.mode(), 2);
        dir.set_size(100);
        assert_eq!(dir.kind(), Err(errno::EIO));
        dir.set_size(BLOCK_BYTES);
        assert_eq!(dir.kind(), Ok(Kind::Dir));
        dir.set_slot(SLOT_TRIPLE, 5);
        assert_eq!(dir.kind(), Err(errno::EIO));
        let symlink = Inode::new(0o120_777, 1);
        assert_eq!(symlink.kind(), Err(errno::EIO));
    }
}
