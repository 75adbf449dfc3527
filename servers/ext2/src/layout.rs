//! Where things are on disk: the fixed numbers of Ankh's ext2 flavour and the geometry
//! of its block groups (their sizes, which ones carry a superblock backup, where an
//! inode lives).

use ankh_proto::errno::{self, Errno};

use crate::device::BLOCK_SIZE;

/// Bytes per block, as a `u64` for offset arithmetic.
pub const BLOCK_BYTES: u64 = BLOCK_SIZE as u64;

/// Blocks per group: one bitmap block has a bit for each of them.
pub const BLOCKS_PER_GROUP: u32 = 32768;

const _: () = assert!(BLOCKS_PER_GROUP as usize == 8 * BLOCK_SIZE);

/// The inode size mkfs writes (mount also accepts 256).
pub const INODE_SIZE: u32 = 128;

/// The root directory's inode.
pub const ROOT_INO: u32 = 2;

/// The first inode that is not reserved; mkfs gives it to `lost+found`.
pub const FIRST_INO: u32 = 11;

/// `lost+found`, which e2fsck expects to find in the root.
pub const LOST_FOUND_INO: u32 = 11;

/// The journal file (`/.journal`), made by mkfs right after `lost+found`.
pub const JOURNAL_INO: u32 = 12;

/// The journal's name in the root directory.
pub const JOURNAL_NAME: &str = ".journal";

/// Bytes per group descriptor.
pub const GROUP_DESC_SIZE: usize = 32;

/// Byte offset of the primary superblock (in block 0); backups sit at offset 0 of the
/// first block of their group.
pub const SUPERBLOCK_OFFSET: usize = 1024;

/// Bytes of a superblock.
pub const SUPERBLOCK_SIZE: usize = 1024;

/// Block pointers per indirect block.
pub const POINTERS_PER_BLOCK: u64 = (BLOCK_SIZE / 4) as u64;

/// Direct block pointers in an inode.
pub const DIRECT_BLOCKS: u64 = 12;

/// Logical blocks a file may have: direct, single and double indirect (no triple).
pub const MAX_FILE_BLOCKS: u64 =
    DIRECT_BLOCKS + POINTERS_PER_BLOCK + POINTERS_PER_BLOCK * POINTERS_PER_BLOCK;

/// The largest file size, in bytes (a little over 4 GiB).
pub const MAX_FILE_SIZE: u64 = MAX_FILE_BLOCKS * BLOCK_BYTES;

/// The largest directory, in blocks: bounds the work and memory a (possibly corrupt)
/// directory can cost.
pub const MAX_DIR_BLOCKS: u64 = 4096;

/// The largest link count ext2 allows a directory (each subdirectory adds one).
pub const LINK_MAX: u16 = 32000;

/// The shape of a file system: how many blocks, groups and inodes, and how big the
/// per-group metadata is. Derived from the superblock (or planned by mkfs), and
/// consistent by construction: every group has room for its metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Blocks in the file system.
    pub blocks: u32,
    /// Block groups.
    pub groups: u32,
    /// Inodes per group (a multiple of the inodes per block).
    pub inodes_per_group: u32,
    /// Bytes per inode (128 or 256).
    pub inode_size: u32,
    /// Blocks of the group descriptor table.
    pub gdt_blocks: u32,
}

impl Geometry {
    /// Checks and completes a geometry: `EINVAL` when the numbers do not describe a
    /// file system this crate can use.
    pub fn new(blocks: u32, inodes_per_group: u32, inode_size: u32) -> Result<Geometry, Errno> {
        if inode_size != 128 && inode_size != 256 {
            return Err(errno::EINVAL);
        }
        let per_block = u32::try_from(BLOCK_SIZE).map_err(|_| errno::EINVAL)? / inode_size;
        if inodes_per_group == 0
            || inodes_per_group.next_multiple_of(per_block) != inodes_per_group
            || inodes_per_group > BLOCKS_PER_GROUP
        {
            return Err(errno::EINVAL);
        }
        let groups = blocks.div_ceil(BLOCKS_PER_GROUP);
        if groups == 0 {
            return Err(errno::EINVAL);
        }
        let per_gdt_block =
            u32::try_from(BLOCK_SIZE / GROUP_DESC_SIZE).map_err(|_| errno::EINVAL)?;
        let geometry = Geometry {
            blocks,
            groups,
            inodes_per_group,
            inode_size,
            gdt_blocks: groups.div_ceil(per_gdt_block),
        };
        geometry.inodes_count()?;
        for group in 0..groups {
            if geometry.group_blocks(group) <= geometry.overhead(group) {
                return Err(errno::EINVAL);
            }
        }
        Ok(geometry)
    }

    /// All inodes (`EINVAL` when they do not fit the superblock's 32 bits).
    pub fn inodes_count(&self) -> Result<u32, Errno> {
        self.groups
            .checked_mul(self.inodes_per_group)
            .ok_or(errno::EINVAL)
    }

    /// The first block of a group.
    pub fn group_start(&self, group: u32) -> u64 {
        u64::from(group) * u64::from(BLOCKS_PER_GROUP)
    }

    /// Blocks in a group (the last one may be short).
    pub fn group_blocks(&self, group: u32) -> u32 {
        let start = group.saturating_mul(BLOCKS_PER_GROUP);
        self.blocks.saturating_sub(start).min(BLOCKS_PER_GROUP)
    }

    /// True when a group holds a copy of the superblock and descriptor table
    /// (`sparse_super`: groups 0, 1 and the powers of 3, 5 and 7).
    pub fn has_super(&self, group: u32) -> bool {
        group <= 1 || [3, 5, 7].iter().any(|&base| is_power_of(group, base))
    }

    /// Blocks of one group's inode table.
    pub fn inode_table_blocks(&self) -> u32 {
        let bytes = u64::from(self.inodes_per_group) * u64::from(self.inode_size);
        u32::try_from(bytes.div_ceil(BLOCK_BYTES)).unwrap_or(u32::MAX)
    }

    /// Metadata blocks of a group: superblock and descriptor copies, the two bitmaps
    /// and the inode table.
    pub fn overhead(&self, group: u32) -> u32 {
        let super_copy = if self.has_super(group) {
            1 + self.gdt_blocks
        } else {
            0
        };
        super_copy + 2 + self.inode_table_blocks()
    }

    /// The group of a block.
    pub fn group_of_block(&self, block: u64) -> u32 {
        u32::try_from(block / u64::from(BLOCKS_PER_GROUP)).unwrap_or(u32::MAX)
    }

    /// The group of an inode and its index in that group (`ino` is at least 1).
    pub fn inode_place(&self, ino: u32) -> (u32, u32) {
        let index = ino.saturating_sub(1);
        (index / self.inodes_per_group, index % self.inodes_per_group)
    }

    /// Inodes per inode table block.
    pub fn inodes_per_block(&self) -> u32 {
        u32::try_from(BLOCK_SIZE).unwrap_or(u32::MAX) / self.inode_size
    }
}

/// True when `n` is a power (at least the first) of `base`.
fn is_power_of(n: u32, base: u32) -> bool {
    let mut power = base;
    while power < n {
        power = power.saturating_mul(base);
    }
    power == n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_super_groups() {
        let g = Geometry::new(BLOCKS_PER_GROUP * 60, 8192, 128).unwrap();
        let with: alloc::vec::Vec<u32> = (0..60).filter(|&i| g.has_super(i)).collect();
        assert_eq!(with, [0, 1, 3, 5, 7, 9, 25, 27, 49]);
    }

    #[test]
    fn rejects_bad_shapes() {
        assert_eq!(Geometry::new(1000, 100, 128), Err(errno::EINVAL));
        assert_eq!(Geometry::new(1000, 64, 200), Err(errno::EINVAL));
        assert_eq!(Geometry::new(0, 64, 128), Err(errno::EINVAL));
        // A last group too small for its own metadata.
        assert_eq!(
            Geometry::new(BLOCKS_PER_GROUP + 100, 8192, 128),
            Err(errno::EINVAL)
        );
        let g = Geometry::new(BLOCKS_PER_GROUP + 1000, 256, 128).unwrap();
        assert_eq!(g.groups, 2);
        assert_eq!(g.group_blocks(1), 1000);
        assert_eq!(g.inode_place(257), (1, 0));
    }
}
