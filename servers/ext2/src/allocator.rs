//! Allocating and freeing blocks and inodes: the group bitmaps, and the free and
//! directory counts of the group descriptors and superblock, always changed together
//! so that e2fsck finds them equal.

use ankh_proto::errno::{self, Errno};
use zerocopy::byteorder::little_endian::{U16, U32};

use crate::bitmap;
use crate::device::BlockDevice;
use crate::fs::Ext2Fs;
use crate::inode::Kind;
use crate::layout::FIRST_INO;

/// `value + delta` within `0..=max`, or `EIO` (the counts on disk are corrupt).
fn adjust(value: u32, delta: i32, max: u32) -> Result<u32, Errno> {
    value
        .checked_add_signed(delta)
        .filter(|&v| v <= max)
        .ok_or(errno::EIO)
}

/// A 16-bit group count moved by `delta`, within `0..=max`.
fn adjust16(value: U16, delta: i32, max: u32) -> Result<U16, Errno> {
    let v = adjust(u32::from(value.get()), delta, max)?;
    Ok(U16::new(u16::try_from(v).map_err(|_| errno::EIO)?))
}

impl Ext2Fs {
    /// True when `block` holds metadata of its group (a superblock or descriptor copy,
    /// a bitmap, the inode table): never handed out, even if a bitmap says free.
    fn is_metadata(&self, block: u64) -> bool {
        let group = self.geo.group_of_block(block);
        let start = self.geo.group_start(group);
        let super_copy = if self.geo.has_super(group) {
            1 + u64::from(self.geo.gdt_blocks)
        } else {
            0
        };
        block < start + super_copy
            || self
                .group(group)
                .is_ok_and(|desc| desc.holds_metadata(&self.geo, block))
    }

    /// Keeps a copy of a group's block bitmap as the last sync left it, before the
    /// first change to it since (see `fs::is_fresh`).
    fn remember_bitmap(&mut self, dev: &mut dyn BlockDevice, group: u32) -> Result<u64, Errno> {
        let block = u64::from(self.group(group)?.block_bitmap.get());
        if !self.committed_bitmaps.contains_key(&group) {
            let copy = self.cache.read(dev, block)?.to_vec();
            self.committed_bitmaps.insert(group, copy);
        }
        Ok(block)
    }

    /// Moves the free block count of a group and of the file system by `delta`.
    fn count_blocks(
        &mut self,
        dev: &mut dyn BlockDevice,
        group: u32,
        delta: i32,
    ) -> Result<(), Errno> {
        let max = self.geo.group_blocks(group);
        let desc = self.group_mut(group)?;
        desc.free_blocks_count = adjust16(desc.free_blocks_count, delta, max)?;
        self.store_group(dev, group)?;
        let free = adjust(self.sb.free_blocks_count.get(), delta, self.geo.blocks)?;
        self.sb.free_blocks_count = U32::new(free);
        self.store_superblock(dev)
    }

    /// Allocates a block, the first free one from `goal` on (`ENOSPC` when none is).
    pub(crate) fn alloc_block(
        &mut self,
        dev: &mut dyn BlockDevice,
        goal: u64,
    ) -> Result<u64, Errno> {
        if self.sb.free_blocks_count.get() == 0 {
            return Err(errno::ENOSPC);
        }
        let goal = if goal < u64::from(self.geo.blocks) {
            goal
        } else {
            0
        };
        let first = self.geo.group_of_block(goal);
        for step in 0..self.geo.groups {
            let group = (first + step) % self.geo.groups;
            if self.group(group)?.free_blocks_count.get() == 0 {
                continue;
            }
            let start = self.geo.group_start(group);
            let from = if step == 0 { goal - start } else { 0 };
            let bitmap_block = u64::from(self.group(group)?.block_bitmap.get());
            let limit = usize::try_from(self.geo.group_blocks(group)).map_err(|_| errno::EIO)?;
            let from = usize::try_from(from).map_err(|_| errno::EIO)?;
            let found = bitmap::find_clear(self.cache.read(dev, bitmap_block)?, from, limit);
            let Some(index) = found else {
                continue;
            };
            let block = start + index as u64;
            if self.is_metadata(block) {
                return Err(errno::EIO);
            }
            self.remember_bitmap(dev, group)?;
            bitmap::set(self.cache.write(dev, bitmap_block)?, index);
            self.count_blocks(dev, group, -1)?;
            self.next_block = block + 1;
            return Ok(block);
        }
        Err(errno::ENOSPC)
    }

    /// Frees a block (`EIO` when it is not allocated, or is metadata: the structure
    /// pointing at it is corrupt).
    pub(crate) fn free_block(
        &mut self,
        dev: &mut dyn BlockDevice,
        block: u64,
    ) -> Result<(), Errno> {
        if block == 0 || block >= u64::from(self.geo.blocks) || self.is_metadata(block) {
            return Err(errno::EIO);
        }
        let group = self.geo.group_of_block(block);
        let index = usize::try_from(block - self.geo.group_start(group)).map_err(|_| errno::EIO)?;
        let bitmap_block = self.remember_bitmap(dev, group)?;
        if !bitmap::get(self.cache.read(dev, bitmap_block)?, index) {
            return Err(errno::EIO);
        }
        bitmap::clear(self.cache.write(dev, bitmap_block)?, index);
        self.count_blocks(dev, group, 1)?;
        self.cache.discard(block);
        Ok(())
    }

    /// Moves a group's free inode (and directory) counts and the file system's.
    fn count_inodes(
        &mut self,
        dev: &mut dyn BlockDevice,
        group: u32,
        delta: i32,
        dir: bool,
    ) -> Result<(), Errno> {
        let max = self.geo.inodes_per_group;
        let desc = self.group_mut(group)?;
        desc.free_inodes_count = adjust16(desc.free_inodes_count, delta, max)?;
        if dir {
            desc.used_dirs_count = adjust16(desc.used_dirs_count, -delta, max)?;
        }
        self.store_group(dev, group)?;
        let total = self.sb.inodes_count.get();
        let free = adjust(self.sb.free_inodes_count.get(), delta, total)?;
        self.sb.free_inodes_count = U32::new(free);
        self.store_superblock(dev)
    }

    /// True when no inode is free.
    pub(crate) fn inodes_full(&self) -> bool {
        self.sb.free_inodes_count.get() == 0
    }

    /// Allocates an inode of `kind`, preferring the group of `near` (its slot is
    /// cleared; the caller writes it). `ENOSPC` when none is free.
    pub(crate) fn alloc_inode(
        &mut self,
        dev: &mut dyn BlockDevice,
        kind: Kind,
        near: u32,
    ) -> Result<u32, Errno> {
        if self.inodes_full() {
            return Err(errno::ENOSPC);
        }
        let per_group = self.geo.inodes_per_group;
        let first = self.geo.inode_place(near).0 % self.geo.groups;
        for step in 0..self.geo.groups {
            let group = (first + step) % self.geo.groups;
            if self.group(group)?.free_inodes_count.get() == 0 {
                continue;
            }
            let bitmap_block = u64::from(self.group(group)?.inode_bitmap.get());
            let limit = usize::try_from(per_group).map_err(|_| errno::EIO)?;
            let Some(index) = bitmap::find_clear(self.cache.read(dev, bitmap_block)?, 0, limit)
            else {
                continue;
            };
            let ino = u32::try_from(index)
                .ok()
                .and_then(|i| (group * per_group).checked_add(i + 1))
                .ok_or(errno::EIO)?;
            if ino < FIRST_INO {
                return Err(errno::EIO);
            }
            bitmap::set(self.cache.write(dev, bitmap_block)?, index);
            self.count_inodes(dev, group, -1, kind == Kind::Dir)?;
            self.clear_inode(dev, ino)?;
            return Ok(ino);
        }
        Err(errno::ENOSPC)
    }

    /// Frees an inode (its blocks are already free) and clears its slot.
    pub(crate) fn free_inode(
        &mut self,
        dev: &mut dyn BlockDevice,
        ino: u32,
        dir: bool,
    ) -> Result<(), Errno> {
        let (group, index) = self.geo.inode_place(ino);
        let index = usize::try_from(index).map_err(|_| errno::EIO)?;
        let bitmap_block = u64::from(self.group(group)?.inode_bitmap.get());
        if ino < FIRST_INO || !bitmap::get(self.cache.read(dev, bitmap_block)?, index) {
            return Err(errno::EIO);
        }
        bitmap::clear(self.cache.write(dev, bitmap_block)?, index);
        self.count_inodes(dev, group, 1, dir)?;
        self.clear_inode(dev, ino)
    }
}
