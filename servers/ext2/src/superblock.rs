//! The superblock: the on-disk record (the ext2 revision 1 fields this crate uses, the
//! rest kept as bytes) and the checks that decide whether a disk holds a file system
//! this crate can mount.

use ankh_proto::errno::{self, Errno};
use zerocopy::byteorder::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::layout::{Geometry, BLOCKS_PER_GROUP, FIRST_INO, SUPERBLOCK_SIZE};

/// `s_magic` of every ext2 file system.
pub const MAGIC: u16 = 0xEF53;
/// `s_log_block_size` for 4096-byte blocks (1024 << 2).
pub const LOG_BLOCK_SIZE: u32 = 2;
/// `s_state`: cleanly unmounted.
pub const STATE_VALID: u16 = 1;
/// `s_errors`: continue on errors.
pub const ERRORS_CONTINUE: u16 = 1;
/// `s_rev_level` of the dynamic revision (variable inode size, feature flags).
pub const REV_DYNAMIC: u32 = 1;

/// Compatible feature: extended attribute blocks (accepted, never used).
pub const COMPAT_EXT_ATTR: u32 = 0x0008;
/// Incompatible feature: directory entries record the file type.
pub const INCOMPAT_FILETYPE: u32 = 0x0002;
/// Read-only compatible feature: superblock backups only in some groups.
pub const RO_COMPAT_SPARSE_SUPER: u32 = 0x0001;
/// Read-only compatible feature: files of 2 GiB and more.
pub const RO_COMPAT_LARGE_FILE: u32 = 0x0002;

/// The superblock, as on disk (1024 bytes, little-endian).
#[derive(Clone, Debug, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct Superblock {
    /// Inodes in the file system.
    pub inodes_count: U32,
    /// Blocks in the file system.
    pub blocks_count: U32,
    /// Blocks reserved for the superuser.
    pub r_blocks_count: U32,
    /// Free blocks.
    pub free_blocks_count: U32,
    /// Free inodes.
    pub free_inodes_count: U32,
    /// The block that holds the superblock (0 for 4096-byte blocks).
    pub first_data_block: U32,
    /// Block size as a shift of 1024.
    pub log_block_size: U32,
    /// Fragment (cluster) size as a shift of 1024: equal to the block size.
    pub log_frag_size: U32,
    /// Blocks per group.
    pub blocks_per_group: U32,
    /// Fragments per group: equal to the blocks per group.
    pub frags_per_group: U32,
    /// Inodes per group.
    pub inodes_per_group: U32,
    /// Last mount time.
    pub mtime: U32,
    /// Last write time.
    pub wtime: U32,
    /// Mounts since the last check.
    pub mnt_count: U16,
    /// Mounts allowed between checks (0xFFFF: no limit).
    pub max_mnt_count: U16,
    /// [`MAGIC`].
    pub magic: U16,
    /// [`STATE_VALID`] when clean.
    pub state: U16,
    /// What to do on errors.
    pub errors: U16,
    /// Minor revision.
    pub minor_rev_level: U16,
    /// Time of the last check.
    pub lastcheck: U32,
    /// Seconds allowed between checks.
    pub checkinterval: U32,
    /// The OS that made the file system (0: Linux).
    pub creator_os: U32,
    /// [`REV_DYNAMIC`].
    pub rev_level: U32,
    /// Default owner of reserved blocks.
    pub def_resuid: U16,
    /// Default group of reserved blocks.
    pub def_resgid: U16,
    /// The first inode that is not reserved.
    pub first_ino: U32,
    /// Bytes per inode.
    pub inode_size: U16,
    /// The group holding this copy of the superblock.
    pub block_group_nr: U16,
    /// Compatible features.
    pub feature_compat: U32,
    /// Incompatible features.
    pub feature_incompat: U32,
    /// Read-only compatible features.
    pub feature_ro_compat: U32,
    /// The volume's UUID.
    pub uuid: [u8; 16],
    /// The volume's name.
    pub volume_name: [u8; 16],
    /// Fields this crate leaves alone (last mount point up to the end), kept as bytes.
    pub rest: [u8; SUPERBLOCK_SIZE - 0x88],
}

const _: () = assert!(core::mem::size_of::<Superblock>() == SUPERBLOCK_SIZE);

impl Superblock {
    /// A superblock from its bytes (`EIO` when too short).
    pub fn parse(bytes: &[u8]) -> Result<Superblock, Errno> {
        let bytes = bytes.get(..SUPERBLOCK_SIZE).ok_or(errno::EIO)?;
        Superblock::read_from_bytes(bytes).map_err(|_| errno::EIO)
    }

    /// Checks that this is a file system this crate can mount read-write and returns
    /// its geometry: `EINVAL` for anything else (another block size, unknown
    /// features, inconsistent counts).
    pub fn geometry(&self) -> Result<Geometry, Errno> {
        let supported = self.magic.get() == MAGIC
            && self.rev_level.get() == REV_DYNAMIC
            && self.log_block_size.get() == LOG_BLOCK_SIZE
            && self.log_frag_size.get() == LOG_BLOCK_SIZE
            && self.first_data_block.get() == 0
            && self.blocks_per_group.get() == BLOCKS_PER_GROUP
            && self.frags_per_group.get() == BLOCKS_PER_GROUP
            && self.first_ino.get() == FIRST_INO
            && self.feature_compat.get() & !COMPAT_EXT_ATTR == 0
            && self.feature_incompat.get() == INCOMPAT_FILETYPE
            && self.feature_ro_compat.get() & !(RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE) == 0
            && self.feature_ro_compat.get() & RO_COMPAT_SPARSE_SUPER != 0;
        if !supported {
            return Err(errno::EINVAL);
        }
        let geometry = Geometry::new(
            self.blocks_count.get(),
            self.inodes_per_group.get(),
            u32::from(self.inode_size.get()),
        )?;
        if geometry.inodes_count()? != self.inodes_count.get()
            || self.free_blocks_count.get() > self.blocks_count.get()
            || self.free_inodes_count.get() > self.inodes_count.get()
        {
            return Err(errno::EINVAL);
        }
        Ok(geometry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromZeros;

    #[test]
    fn field_offsets_match_ext2() {
        let mut sb = Superblock::new_zeroed();
        sb.magic = U16::new(MAGIC);
        sb.first_ino = U32::new(11);
        sb.inode_size = U16::new(128);
        sb.feature_ro_compat = U32::new(3);
        sb.volume_name[0] = b'x';
        let bytes = sb.as_bytes();
        assert_eq!(&bytes[0x38..0x3A], &[0x53, 0xEF]);
        assert_eq!(bytes[0x54], 11);
        assert_eq!(bytes[0x58], 128);
        assert_eq!(bytes[0x64], 3);
        assert_eq!(bytes[0x78], b'x');
    }

    #[test]
    fn refuses_foreign_file_systems() {
        let sb = Superblock::new_zeroed();
        assert_eq!(sb.geometry(), Err(errno::EINVAL));
        assert_eq!(Superblock::parse(&[0; 10]).err(), Some(errno::EIO));
    }
}
