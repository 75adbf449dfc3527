//! Block group descriptors: where a group's bitmaps and inode table are, and its free
//! and directory counts (which e2fsck checks against the bitmaps).

use ankh_proto::errno::{self, Errno};
use zerocopy::byteorder::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::layout::{Geometry, GROUP_DESC_SIZE};

/// One group descriptor, as on disk (32 bytes).
#[derive(
    Clone, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned,
)]
#[repr(C)]
pub struct GroupDesc {
    /// The block bitmap's block.
    pub block_bitmap: U32,
    /// The inode bitmap's block.
    pub inode_bitmap: U32,
    /// The first block of the inode table.
    pub inode_table: U32,
    /// Free blocks in the group.
    pub free_blocks_count: U16,
    /// Free inodes in the group.
    pub free_inodes_count: U16,
    /// Directories in the group.
    pub used_dirs_count: U16,
    /// Flags (none without checksummed groups) and reserved space, zero.
    pub unused: [u8; 14],
}

const _: () = assert!(core::mem::size_of::<GroupDesc>() == GROUP_DESC_SIZE);

impl GroupDesc {
    /// A descriptor from its bytes.
    pub fn parse(bytes: &[u8]) -> Result<GroupDesc, Errno> {
        let bytes = bytes.get(..GROUP_DESC_SIZE).ok_or(errno::EIO)?;
        GroupDesc::read_from_bytes(bytes).map_err(|_| errno::EIO)
    }

    /// Checks that the descriptor of `group` points inside the file system and that its
    /// counts fit the group (`EIO` otherwise: the disk is corrupt).
    pub fn check(&self, geometry: &Geometry, group: u32) -> Result<(), Errno> {
        let blocks = u64::from(geometry.blocks);
        let table_end =
            u64::from(self.inode_table.get()) + u64::from(geometry.inode_table_blocks());
        let inside = |block: u32| block != 0 && u64::from(block) < blocks;
        let ok = inside(self.block_bitmap.get())
            && inside(self.inode_bitmap.get())
            && inside(self.inode_table.get())
            && table_end <= blocks
            && u32::from(self.free_blocks_count.get()) <= geometry.group_blocks(group)
            && u32::from(self.free_inodes_count.get()) <= geometry.inodes_per_group
            && u32::from(self.used_dirs_count.get()) <= geometry.inodes_per_group;
        if ok {
            Ok(())
        } else {
            Err(errno::EIO)
        }
    }

    /// True when `block` is one of this group's bitmaps or inode table blocks.
    pub fn holds_metadata(&self, geometry: &Geometry, block: u64) -> bool {
        let table = u64::from(self.inode_table.get());
        block == u64::from(self.block_bitmap.get())
            || block == u64::from(self.inode_bitmap.get())
            || (table..table + u64::from(geometry.inode_table_blocks())).contains(&block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_pointers_and_counts() {
        let g = Geometry::new(8192, 2048, 128).unwrap();
        let mut d = GroupDesc {
            block_bitmap: U32::new(2),
            inode_bitmap: U32::new(3),
            inode_table: U32::new(4),
            free_blocks_count: U16::new(100),
            ..GroupDesc::default()
        };
        assert_eq!(d.check(&g, 0), Ok(()));
        assert!(d.holds_metadata(&g, 4 + 63));
        assert!(!d.holds_metadata(&g, 4 + 64));
        d.inode_table = U32::new(8190);
        assert_eq!(d.check(&g, 0), Err(errno::EIO));
        d.inode_table = U32::new(4);
        d.free_inodes_count = U16::new(4000);
        assert_eq!(d.check(&g, 0), Err(errno::EIO));
    }
}
