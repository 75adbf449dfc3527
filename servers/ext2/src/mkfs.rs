//! mkfs: lays out a fresh file system on a device, as mke2fs would for ext2 revision
//! 1 with `filetype`, `sparse_super` and `large_file`: the superblock and descriptor
//! copies, bitmaps (padding bits set), zeroed inode tables, the root directory,
//! `lost+found` (16 KiB, as mke2fs sizes it) and the journal file `/.journal`, its
//! indirect blocks first so that its data is one contiguous run.

use alloc::vec;
use alloc::vec::Vec;

use ankh_proto::errno::{self, Errno};
use zerocopy::byteorder::little_endian::{U16, U32};
use zerocopy::{FromZeros, IntoBytes};

use crate::bitmap;
use crate::checksum::Checksum;
use crate::device::{BlockDevice, BLOCK_SIZE};
use crate::dirent;
use crate::group::GroupDesc;
use crate::inode::{Inode, Kind, INODE_RECORD_SIZE, SLOT_DOUBLE, SLOT_INDIRECT};
use crate::layout::{
    Geometry, BLOCKS_PER_GROUP, BLOCK_BYTES, DIRECT_BLOCKS, FIRST_INO, GROUP_DESC_SIZE, INODE_SIZE,
    JOURNAL_INO, JOURNAL_NAME, LOST_FOUND_INO, POINTERS_PER_BLOCK, ROOT_INO, SUPERBLOCK_OFFSET,
};
use crate::runs::{RunWriter, RUN_MAX_BLOCKS};
use crate::superblock::{
    Superblock, ERRORS_CONTINUE, INCOMPAT_FILETYPE, LOG_BLOCK_SIZE, MAGIC, REV_DYNAMIC,
    RO_COMPAT_LARGE_FILE, RO_COMPAT_SPARSE_SUPER, STATE_VALID,
};

/// The smallest file system mkfs makes, in blocks (8 MiB).
pub const MIN_BLOCKS: u64 = 2048;

/// Blocks of `lost+found` (16 KiB, like mke2fs: room to reconnect files without
/// allocating).
const LOST_FOUND_BLOCKS: u64 = 4;

/// The journal size mkfs chooses for a file system of `blocks` blocks: a sixteenth,
/// between 1 and 4 MiB.
pub fn journal_blocks_for(blocks: u64) -> u64 {
    (blocks / 16).clamp(256, 1024)
}

/// The geometry of a new file system of up to `blocks` blocks: one inode per 16 KiB
/// unless `inodes` says otherwise; a last group too small to be useful is left out.
fn plan(blocks: u64, inodes: Option<u32>) -> Result<Geometry, Errno> {
    if blocks < MIN_BLOCKS {
        return Err(errno::EINVAL);
    }
    let mut blocks = u32::try_from(blocks).map_err(|_| errno::EINVAL)?;
    let per_block = u32::try_from(BLOCK_SIZE).map_err(|_| errno::EINVAL)? / INODE_SIZE;
    loop {
        let groups = blocks.div_ceil(BLOCKS_PER_GROUP);
        let wanted = inodes.unwrap_or(blocks / 4).max(2 * FIRST_INO);
        let per_group = wanted.div_ceil(groups).next_multiple_of(per_block);
        let geometry = Geometry::new(blocks, per_group.min(BLOCKS_PER_GROUP), INODE_SIZE);
        let last = groups - 1;
        match geometry {
            Ok(g) if g.group_blocks(last) >= g.overhead(last) + 64 => return Ok(g),
            _ if groups > 1 => blocks = last * BLOCKS_PER_GROUP,
            _ => return Err(errno::EINVAL),
        }
    }
}

/// Makes a fresh file system of `blocks` blocks (at most the device's) on `dev`,
/// with `inodes` inodes (rounded up to fill the inode tables) or one per 16 KiB.
/// `EINVAL` for a size it cannot lay out.
pub fn mkfs(dev: &mut dyn BlockDevice, blocks: u64, inodes: Option<u32>) -> Result<(), Errno> {
    if blocks > dev.blocks() {
        return Err(errno::EINVAL);
    }
    let geo = plan(blocks, inodes)?;
    let journal_blocks = journal_blocks_for(u64::from(geo.blocks));
    // Everything mkfs allocates goes in group 0, after its metadata.
    let first_free = u64::from(geo.overhead(0));
    let root_block = first_free;
    let lost_found = root_block + 1;
    let journal_meta = lost_found + LOST_FOUND_BLOCKS;
    let (journal_slots, journal_indirect) = contiguous_map(journal_meta, journal_blocks)?;
    let journal_data = journal_meta + journal_indirect.len() as u64;
    let used_end = journal_data + journal_blocks;
    if used_end > u64::from(geo.group_blocks(0)) {
        return Err(errno::EINVAL);
    }

    let mut descs = Vec::new();
    let mut free_blocks = 0u32;
    for group in 0..geo.groups {
        let start = u32::try_from(geo.group_start(group)).map_err(|_| errno::EINVAL)?;
        let first_meta = start
            + if geo.has_super(group) {
                1 + geo.gdt_blocks
            } else {
                0
            };
        let mut free = geo.group_blocks(group) - geo.overhead(group);
        let mut free_inodes = geo.inodes_per_group;
        let mut dirs = 0;
        if group == 0 {
            free -= u32::try_from(used_end - first_free).map_err(|_| errno::EINVAL)?;
            free_inodes -= JOURNAL_INO;
            dirs = 2;
        }
        free_blocks += free;
        descs.push(GroupDesc {
            block_bitmap: U32::new(first_meta),
            inode_bitmap: U32::new(first_meta + 1),
            inode_table: U32::new(first_meta + 2),
            free_blocks_count: U16::new(u16::try_from(free).map_err(|_| errno::EINVAL)?),
            free_inodes_count: U16::new(u16::try_from(free_inodes).map_err(|_| errno::EINVAL)?),
            used_dirs_count: U16::new(dirs),
            ..GroupDesc::default()
        });
    }
    let inodes_count = geo.inodes_count()?;
    let mut sb = superblock(&geo, free_blocks, inodes_count - JOURNAL_INO)?;

    zero_inode_tables(dev, &geo, &descs)?;
    let mut table =
        vec![0; usize::try_from(geo.gdt_blocks).map_err(|_| errno::EINVAL)? * BLOCK_SIZE];
    for (i, desc) in descs.iter().enumerate() {
        table[i * GROUP_DESC_SIZE..(i + 1) * GROUP_DESC_SIZE].copy_from_slice(desc.as_bytes());
    }
    let mut writer = RunWriter::new();
    for (group, desc) in (0..geo.groups).zip(&descs) {
        let start = geo.group_start(group);
        if geo.has_super(group) {
            sb.block_group_nr = U16::new(u16::try_from(group).unwrap_or(u16::MAX));
            let mut block = vec![0; BLOCK_SIZE];
            let at = if group == 0 { SUPERBLOCK_OFFSET } else { 0 };
            block[at..at + sb.as_bytes().len()].copy_from_slice(sb.as_bytes());
            writer.push(dev, start, &block)?;
            for (i, chunk) in table.chunks_exact(BLOCK_SIZE).enumerate() {
                writer.push(dev, start + 1 + i as u64, chunk)?;
            }
        }
        let mut blocks_map = vec![0; BLOCK_SIZE];
        let used = if group == 0 {
            used_end
        } else {
            u64::from(geo.overhead(group))
        };
        for i in 0..used {
            bitmap::set(&mut blocks_map, usize::try_from(i).unwrap_or(usize::MAX));
        }
        bitmap::set_from(
            &mut blocks_map,
            usize::try_from(geo.group_blocks(group)).unwrap_or(0),
        );
        writer.push(dev, u64::from(desc.block_bitmap.get()), &blocks_map)?;
        let mut inodes_map = vec![0; BLOCK_SIZE];
        if group == 0 {
            for i in 0..JOURNAL_INO {
                bitmap::set(&mut inodes_map, usize::try_from(i).unwrap_or(0));
            }
        }
        bitmap::set_from(
            &mut inodes_map,
            usize::try_from(geo.inodes_per_group).unwrap_or(0),
        );
        writer.push(dev, u64::from(desc.inode_bitmap.get()), &inodes_map)?;
    }
    writer.finish(dev)?;

    let mut root = vec![0; BLOCK_SIZE];
    dirent::init_dir(&mut root, ROOT_INO, ROOT_INO);
    dirent::insert(
        &mut root,
        b"lost+found",
        LOST_FOUND_INO,
        Kind::Dir.file_type(),
    )?;
    dirent::insert(
        &mut root,
        JOURNAL_NAME.as_bytes(),
        JOURNAL_INO,
        Kind::File.file_type(),
    )?;
    writer.push(dev, root_block, &root)?;
    for i in 0..LOST_FOUND_BLOCKS {
        let mut block = vec![0; BLOCK_SIZE];
        if i == 0 {
            dirent::init_dir(&mut block, LOST_FOUND_INO, ROOT_INO);
        } else {
            dirent::init_empty(&mut block);
        }
        writer.push(dev, lost_found + i, &block)?;
    }
    for (block, data) in &journal_indirect {
        writer.push(dev, *block, data)?;
    }
    // A journal without a transaction: its first block holds no magic.
    writer.push(dev, journal_data, &[0; BLOCK_SIZE])?;
    writer.finish(dev)?;

    let mut inodes_block = vec![0; BLOCK_SIZE];
    let mut put = |ino: u32, inode: &Inode| {
        let at = usize::try_from((ino - 1) * INODE_SIZE).unwrap_or(0);
        inodes_block[at..at + INODE_RECORD_SIZE].copy_from_slice(inode.as_bytes());
    };
    put(ROOT_INO, &dir_inode(0o755, 3, root_block, 1)?);
    put(
        LOST_FOUND_INO,
        &dir_inode(0o700, 2, lost_found, LOST_FOUND_BLOCKS)?,
    );
    let mut journal = Inode::new(Kind::File.mode() & !0o044, 1);
    journal.block = journal_slots.map(U32::new);
    journal.set_size(journal_blocks * BLOCK_BYTES);
    journal.add_blocks(
        i64::try_from(journal_blocks + journal_indirect.len() as u64).map_err(|_| errno::EINVAL)?,
    )?;
    put(JOURNAL_INO, &journal);
    dev.write_blocks(u64::from(descs[0].inode_table.get()), &inodes_block)?;
    dev.flush()
}

/// A directory inode over `blocks` consecutive blocks from `first`.
fn dir_inode(permissions: u16, links: u16, first: u64, blocks: u64) -> Result<Inode, Errno> {
    let mut inode = Inode::new(crate::inode::S_IFDIR | permissions, links);
    for i in 0..blocks {
        let slot = usize::try_from(i).map_err(|_| errno::EINVAL)?;
        inode.set_slot(slot, u32::try_from(first + i).map_err(|_| errno::EINVAL)?);
    }
    inode.set_size(blocks * BLOCK_BYTES);
    inode.add_blocks(i64::try_from(blocks).map_err(|_| errno::EINVAL)?)?;
    Ok(inode)
}

/// Indirect blocks to write: `(block, contents)`.
type IndirectBlocks = Vec<(u64, Vec<u8>)>;

/// The block map of a file of `count` blocks laid out as its indirect blocks from
/// `meta`, then its data right after them: the inode's slots and the indirect blocks
/// with their contents.
fn contiguous_map(meta: u64, count: u64) -> Result<([u32; 15], IndirectBlocks), Errno> {
    let double_start = DIRECT_BLOCKS + POINTERS_PER_BLOCK;
    let doubles = count
        .saturating_sub(double_start)
        .div_ceil(POINTERS_PER_BLOCK);
    let metas = u64::from(count > DIRECT_BLOCKS) + if doubles > 0 { 1 + doubles } else { 0 };
    let data = meta + metas;
    let pointer = |lblk: u64| u32::try_from(data + lblk).map_err(|_| errno::EINVAL);
    let mut slots = [0u32; 15];
    for lblk in 0..count.min(DIRECT_BLOCKS) {
        slots[usize::try_from(lblk).unwrap_or(0)] = pointer(lblk)?;
    }
    let mut indirect = Vec::new();
    let fill = |first: u64, end: u64| -> Result<Vec<u8>, Errno> {
        let mut block = vec![0; BLOCK_SIZE];
        for (i, lblk) in (first..end).enumerate() {
            block[i * 4..i * 4 + 4].copy_from_slice(&pointer(lblk)?.to_le_bytes());
        }
        Ok(block)
    };
    if count > DIRECT_BLOCKS {
        slots[SLOT_INDIRECT] = u32::try_from(meta).map_err(|_| errno::EINVAL)?;
        indirect.push((meta, fill(DIRECT_BLOCKS, count.min(double_start))?));
    }
    if doubles > 0 {
        let double = meta + 1;
        slots[SLOT_DOUBLE] = u32::try_from(double).map_err(|_| errno::EINVAL)?;
        let mut top = vec![0; BLOCK_SIZE];
        for k in 0..doubles {
            let block = double + 1 + k;
            let i = usize::try_from(k).map_err(|_| errno::EINVAL)?;
            top[i * 4..i * 4 + 4].copy_from_slice(
                &u32::try_from(block)
                    .map_err(|_| errno::EINVAL)?
                    .to_le_bytes(),
            );
            let first = double_start + k * POINTERS_PER_BLOCK;
            indirect.push((block, fill(first, (first + POINTERS_PER_BLOCK).min(count))?));
        }
        indirect.push((double, top));
        indirect.sort_by_key(|(block, _)| *block);
    }
    Ok((slots, indirect))
}

/// The primary superblock of a new file system.
fn superblock(geo: &Geometry, free_blocks: u32, free_inodes: u32) -> Result<Superblock, Errno> {
    let mut sb = Superblock::new_zeroed();
    sb.inodes_count = U32::new(geo.inodes_count()?);
    sb.blocks_count = U32::new(geo.blocks);
    sb.free_blocks_count = U32::new(free_blocks);
    sb.free_inodes_count = U32::new(free_inodes);
    sb.log_block_size = U32::new(LOG_BLOCK_SIZE);
    sb.log_frag_size = U32::new(LOG_BLOCK_SIZE);
    sb.blocks_per_group = U32::new(BLOCKS_PER_GROUP);
    sb.frags_per_group = U32::new(BLOCKS_PER_GROUP);
    sb.inodes_per_group = U32::new(geo.inodes_per_group);
    sb.max_mnt_count = U16::new(u16::MAX);
    sb.magic = U16::new(MAGIC);
    sb.state = U16::new(STATE_VALID);
    sb.errors = U16::new(ERRORS_CONTINUE);
    sb.rev_level = U32::new(REV_DYNAMIC);
    sb.first_ino = U32::new(FIRST_INO);
    sb.inode_size = U16::new(u16::try_from(geo.inode_size).map_err(|_| errno::EINVAL)?);
    sb.feature_incompat = U32::new(INCOMPAT_FILETYPE);
    sb.feature_ro_compat = U32::new(RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE);
    // No clock and no randomness here: the UUID is a hash of the shape.
    let mut sum = Checksum::new();
    sum.update(&geo.blocks.to_le_bytes());
    sum.update(&geo.inodes_per_group.to_le_bytes());
    let hash = sum.value().to_le_bytes();
    sb.uuid[..8].copy_from_slice(&hash);
    sb.uuid[8..].copy_from_slice(&hash.map(|b| b ^ 0x5A));
    sb.volume_name[..4].copy_from_slice(b"ankh");
    Ok(sb)
}

/// Writes zeros over every inode table, a run at a time.
fn zero_inode_tables(
    dev: &mut dyn BlockDevice,
    geo: &Geometry,
    descs: &[GroupDesc],
) -> Result<(), Errno> {
    let zeros = vec![0; RUN_MAX_BLOCKS * BLOCK_SIZE];
    let table_blocks = usize::try_from(geo.inode_table_blocks()).map_err(|_| errno::EINVAL)?;
    for desc in descs {
        let mut block = u64::from(desc.inode_table.get());
        let mut left = table_blocks;
        while left > 0 {
            let n = left.min(RUN_MAX_BLOCKS);
            dev.write_blocks(block, &zeros[..n * BLOCK_SIZE])?;
            block += n as u64;
            left -= n;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_groups_and_inodes() {
        let g = plan(2048, None).unwrap();
        assert_eq!((g.groups, g.inodes_per_group), (1, 512));
        // A last group of 50 blocks is not worth its metadata; one of 100 is.
        let g = plan(u64::from(BLOCKS_PER_GROUP) + 50, Some(100)).unwrap();
        assert_eq!(
            (g.blocks, g.groups, g.inodes_per_group),
            (BLOCKS_PER_GROUP, 1, 128)
        );
        let g = plan(u64::from(BLOCKS_PER_GROUP) + 100, Some(100)).unwrap();
        assert_eq!((g.groups, g.inodes_per_group), (2, 64));
        let g = plan(100_000, None).unwrap();
        assert_eq!(g.groups, 4);
        assert_eq!(plan(100, None), Err(errno::EINVAL));
        assert_eq!(journal_blocks_for(16384), 1024);
    }

    #[test]
    fn lays_out_a_contiguous_map() {
        let (slots, indirect) = contiguous_map(10, 12).unwrap();
        assert!(indirect.is_empty());
        assert_eq!((slots[0], slots[11], slots[12]), (10, 21, 0));
        let (slots, indirect) = contiguous_map(10, 1100).unwrap();
        // Single, double, and one block under the double: data from block 13.
        assert_eq!((slots[0], slots[12], slots[13]), (13, 10, 11));
        let blocks: Vec<u64> = indirect.iter().map(|(b, _)| *b).collect();
        assert_eq!(blocks, [10, 11, 12]);
        assert_eq!(&indirect[0].1[..4], &(13u32 + 12).to_le_bytes());
        assert_eq!(&indirect[1].1[..4], &12u32.to_le_bytes());
        assert_eq!(&indirect[2].1[..4], &(13u32 + 1036).to_le_bytes());
    }
}
