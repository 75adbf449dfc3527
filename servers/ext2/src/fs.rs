//! [`Ext2Fs`]: a mounted file system. This file holds mounting (journal replay,
//! orphan cleanup), syncing, and the access to the superblock, group descriptors and
//! inodes the other modules build on; the operations live in `namei` (paths and
//! names), `file` (data) and `allocator`, `blockmap`, `dir` under them.
//!
//! # Consistency
//! Every change goes to the block cache; only [`Ext2Fs::sync`] writes the device,
//! through the journal. A sync also happens on its own at a *checkpoint* when the
//! dirty blocks approach what one transaction can hold. Checkpoints sit only where the
//! file system is consistent: before every operation, and between the steps of long
//! ones (a large write, a truncation, freeing a removed file), each step leaving a
//! state e2fsck accepts once orphans (inodes without links) are freed, which mount
//! does. One step dirties at most `STEP_BUDGET` blocks, so a transaction always fits
//! the journal.
//!
//! # Failures
//! A device error or a corrupt structure met while changing the file system leaves
//! the cache in an unknown state: the file system becomes *poisoned*, and every later
//! change (and sync) answers `EIO`; mounting again recovers the last synced state.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use ankh_proto::errno::{self, Errno};
use zerocopy::IntoBytes;

use crate::cache::BlockCache;
use crate::device::{BlockDevice, BLOCK_SIZE};
use crate::group::GroupDesc;
use crate::inode::{Inode, Kind, INODE_RECORD_SIZE};
use crate::journal::{Journal, Replayed};
use crate::layout::{
    Geometry, FIRST_INO, GROUP_DESC_SIZE, JOURNAL_INO, ROOT_INO, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE,
};
use crate::runs::RUN_MAX_BLOCKS;
use crate::superblock::Superblock;

/// An inode number (the ext2 one).
pub type Ino = u64;

/// The root directory's inode number.
pub const ROOT: Ino = ROOT_INO as Ino;

/// The default cache size, in blocks (4 MiB).
pub const DEFAULT_CACHE_BLOCKS: usize = 1024;

/// The smallest cache accepted, in blocks.
const MIN_CACHE_BLOCKS: usize = 4 * STEP_BUDGET;

/// The most blocks one step of an operation dirties between two checkpoints. The
/// largest step is a write of `file::WRITE_STEP_BLOCKS` (32) data blocks: with up to
/// 3 new indirect blocks and 3 changed ones, and each allocation in a group of its own
/// (a bitmap and a descriptor block each), plus the superblock and the inode, about
/// 110. A free step (`blockmap::FREE_STEP_BLOCKS`, 16) dirties under 50, a name
/// operation under 30.
pub(crate) const STEP_BUDGET: usize = 128;

/// What mounting repaired: the state a stop left that e2fsck would not accept as is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MountRepairs {
    /// The journal's last whole transaction, replayed (it may have been in place
    /// already: see [`Replayed::rewritten`]).
    pub replayed: Option<Replayed>,
    /// Inodes without links (files unlinked while open when the system stopped) that
    /// mount freed.
    pub orphans_freed: usize,
}

/// A mounted ext2 file system. It does not own its device: every operation takes it.
#[derive(Debug)]
pub struct Ext2Fs {
    pub(crate) geo: Geometry,
    pub(crate) sb: Superblock,
    pub(crate) groups: Vec<GroupDesc>,
    pub(crate) cache: BlockCache,
    pub(crate) journal: Journal,
    /// Open counts by inode.
    pub(crate) opens: BTreeMap<u32, u32>,
    /// Block bitmaps as the last sync left them, for the groups changed since: a block
    /// free there is *fresh* (see `journal`).
    pub(crate) committed_bitmaps: BTreeMap<u32, Vec<u8>>,
    /// Where the next file without blocks starts allocating (keeps files apart and
    /// contiguous).
    pub(crate) next_block: u64,
    /// The inode and logical block where the last read ended (sequential reads get
    /// read-ahead).
    pub(crate) last_read: Option<(u32, u64)>,
    /// What mount repaired.
    repairs: MountRepairs,
    /// Journaled blocks were written in place and not flushed yet.
    unflushed: bool,
    poisoned: bool,
    /// Dirty blocks at which a checkpoint syncs.
    sync_at: usize,
    /// Dirty blocks after the last checkpoint (to check [`STEP_BUDGET`] in tests).
    dirty_at_checkpoint: usize,
}

impl Ext2Fs {
    /// Mounts the file system on `dev` with the default cache size.
    pub fn mount(dev: &mut dyn BlockDevice) -> Result<Ext2Fs, Errno> {
        Ext2Fs::mount_with_cache(dev, DEFAULT_CACHE_BLOCKS)
    }

    /// Mounts the file system on `dev` with a cache of about `cache_blocks` blocks:
    /// replays the journal, frees orphans (inodes without links, left by a crash) and
    /// syncs if it freed any. `EINVAL` for something that is not a file system of this
    /// crate, `EIO` for a corrupt one.
    pub fn mount_with_cache(
        dev: &mut dyn BlockDevice,
        cache_blocks: usize,
    ) -> Result<Ext2Fs, Errno> {
        let cache_blocks = cache_blocks.max(MIN_CACHE_BLOCKS);
        let (geo, sb, groups) = read_metadata(dev)?;
        let mut fs = Ext2Fs {
            geo,
            sb,
            groups,
            cache: BlockCache::new(cache_blocks),
            journal: Journal::none(),
            opens: BTreeMap::new(),
            committed_bitmaps: BTreeMap::new(),
            next_block: 0,
            last_read: None,
            repairs: MountRepairs::default(),
            unflushed: false,
            poisoned: false,
            sync_at: 0,
            dirty_at_checkpoint: 0,
        };
        // The journal file never changes after mkfs, so its map can be read before
        // the replay rewrites other blocks.
        let blocks = fs.journal_map(dev)?;
        fs.journal = Journal::new(blocks, u64::from(geo.blocks))?;
        fs.repairs.replayed = fs.journal.replay(dev, u64::from(geo.blocks))?;
        if fs.repairs.replayed.is_some() {
            fs.journal.retire(dev)?;
            fs.cache.clear();
            let (geo2, sb, groups) = read_metadata(dev)?;
            if geo2 != geo {
                return Err(errno::EIO);
            }
            fs.sb = sb;
            fs.groups = groups;
        }
        let most = fs.journal.capacity().min(cache_blocks - cache_blocks / 4);
        fs.sync_at = most.saturating_sub(STEP_BUDGET).max(1);
        fs.repairs.orphans_freed = fs.free_orphans(dev)?;
        if fs.repairs.orphans_freed > 0 {
            fs.sync(dev)?;
        }
        Ok(fs)
    }

    /// Brings the file system on `dev` to a state e2fsck accepts and that needs no
    /// replay: mounts it (replaying the journal and freeing orphans), then unmounts it
    /// (the journal header cleared). For the host, after the system using the disk
    /// stopped, however it stopped. Errors as [`mount`](Ext2Fs::mount).
    pub fn recover(dev: &mut dyn BlockDevice) -> Result<MountRepairs, Errno> {
        let fs = Ext2Fs::mount(dev)?;
        let repairs = fs.repairs;
        // A disk left clean (by an unmount or an earlier recover) is not written: no
        // write, no flush, which is most of the cost on the host.
        if repairs == MountRepairs::default() && fs.journal.is_clear(dev)? {
            return Ok(repairs);
        }
        fs.unmount(dev)?;
        Ok(repairs)
    }

    /// What mount repaired.
    pub fn mount_repairs(&self) -> MountRepairs {
        self.repairs
    }

    /// The physical blocks of the journal file, checked.
    fn journal_map(&mut self, dev: &mut dyn BlockDevice) -> Result<Vec<u64>, Errno> {
        let inode = self.read_inode(dev, JOURNAL_INO)?;
        if inode.kind()? != Kind::File || inode.links_count.get() == 0 {
            return Err(errno::EIO);
        }
        let count = inode.size() / crate::layout::BLOCK_BYTES;
        if count > crate::journal::MAX_JOURNAL_BLOCKS as u64 {
            return Err(errno::EIO);
        }
        (0..count)
            .map(|lblk| self.bmap(dev, &inode, lblk)?.ok_or(errno::EIO))
            .collect()
    }

    /// Frees every allocated inode without links; returns how many there were.
    fn free_orphans(&mut self, dev: &mut dyn BlockDevice) -> Result<usize, Errno> {
        let mut freed = 0;
        for group in 0..self.geo.groups {
            let block = self.group(group)?.inode_bitmap.get();
            let bitmap = self.cache.read(dev, u64::from(block))?.to_vec();
            for index in 0..self.geo.inodes_per_group {
                if !crate::bitmap::get(&bitmap, usize::try_from(index).unwrap_or(usize::MAX)) {
                    continue;
                }
                let ino = group * self.geo.inodes_per_group + index + 1;
                if ino < FIRST_INO || ino == JOURNAL_INO {
                    continue;
                }
                if self.read_inode(dev, ino)?.links_count.get() == 0 {
                    self.checkpoint(dev)?;
                    self.release(dev, ino)?;
                    freed += 1;
                }
            }
        }
        Ok(freed)
    }

    /// Makes everything changed so far durable. Returns `EIO` (and poisons the file
    /// system) when the device fails.
    pub fn sync(&mut self, dev: &mut dyn BlockDevice) -> Result<(), Errno> {
        if self.poisoned {
            return Err(errno::EIO);
        }
        if self.cache.dirty_count() == 0 {
            return Ok(());
        }
        self.check_step();
        let committed = self.commit(dev);
        if committed.is_err() {
            self.poisoned = true;
        }
        committed
    }

    fn commit(&mut self, dev: &mut dyn BlockDevice) -> Result<(), Errno> {
        if self.unflushed {
            dev.flush()?;
            self.unflushed = false;
        }
        let mut journaled = Vec::new();
        let mut ordered = Vec::new();
        for (block, data) in self.cache.dirty_blocks() {
            // Only a corrupt block map can point into the journal; writing there
            // would destroy the transaction being written.
            if self.journal.contains(block) {
                return Err(errno::EIO);
            }
            if is_fresh(&self.geo, &self.committed_bitmaps, block) {
                ordered.push((block, data));
            } else {
                journaled.push((block, data));
            }
        }
        self.journal.commit(dev, &journaled, &ordered)?;
        self.unflushed = true;
        self.cache.mark_clean();
        self.committed_bitmaps.clear();
        self.dirty_at_checkpoint = 0;
        Ok(())
    }

    /// Syncs and leaves the disk with nothing to replay (a clean shutdown).
    pub fn unmount(mut self, dev: &mut dyn BlockDevice) -> Result<(), Errno> {
        self.sync(dev)?;
        if self.unflushed {
            dev.flush()?;
        }
        self.journal.retire(dev)
    }

    /// Syncs when the dirty blocks approach what one transaction holds; called only
    /// where the file system is consistent.
    pub(crate) fn checkpoint(&mut self, dev: &mut dyn BlockDevice) -> Result<(), Errno> {
        self.check_step();
        if self.cache.dirty_count() >= self.sync_at {
            self.sync(dev)?;
        }
        self.dirty_at_checkpoint = self.cache.dirty_count();
        Ok(())
    }

    /// In debug builds, checks that the step since the last checkpoint kept to
    /// [`STEP_BUDGET`]: the journal's capacity depends on it.
    fn check_step(&self) {
        debug_assert!(
            self.cache.dirty_count() <= self.dirty_at_checkpoint + STEP_BUDGET,
            "a step dirtied more blocks than STEP_BUDGET"
        );
    }

    /// Runs a change: refused when poisoned, after a checkpoint, and poisoning on
    /// `EIO` (the change may have stopped half way).
    pub(crate) fn change<T>(
        &mut self,
        dev: &mut dyn BlockDevice,
        op: impl FnOnce(&mut Ext2Fs, &mut dyn BlockDevice) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        if self.poisoned {
            return Err(errno::EIO);
        }
        self.checkpoint(dev)?;
        let result = op(self, dev);
        if result.as_ref().err() == Some(&errno::EIO) {
            self.poisoned = true;
        }
        result
    }

    /// Keeps the cache's blocks in a region whose writes `writes` declares, if the
    /// program's checkpoints take declared writes (see `cache`); true when they do.
    pub fn declare_cache_writes(&mut self, writes: crate::DeclaredWrites) -> bool {
        self.cache.declare_writes(writes)
    }

    /// True once a failure stopped all changes (see the module documentation).
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Inodes in use, the reserved ones (1 to 10) and `lost+found` and the journal
    /// included.
    pub fn inode_count(&self) -> usize {
        let used = self
            .sb
            .inodes_count
            .get()
            .saturating_sub(self.sb.free_inodes_count.get());
        usize::try_from(used).unwrap_or(usize::MAX)
    }

    /// Inodes of the file system, free or not.
    pub fn total_inodes(&self) -> usize {
        usize::try_from(self.sb.inodes_count.get()).unwrap_or(usize::MAX)
    }

    /// Blocks of the file system, free or not.
    pub fn total_blocks(&self) -> u64 {
        u64::from(self.sb.blocks_count.get())
    }

    /// Free blocks.
    pub fn free_blocks(&self) -> u64 {
        u64::from(self.sb.free_blocks_count.get())
    }

    /// The journal's blocks (in file order).
    pub fn journal_blocks(&self) -> &[u64] {
        self.journal.blocks()
    }

    /// Blocks changed and not yet synced.
    pub fn dirty_blocks(&self) -> usize {
        self.cache.dirty_count()
    }

    /// Writes zeros over the journal after a sync (the image then holds no
    /// transaction; used when building images).
    pub(crate) fn erase_journal(&mut self, dev: &mut dyn BlockDevice) -> Result<(), Errno> {
        self.sync(dev)?;
        dev.flush()?;
        self.unflushed = false;
        self.journal.erase(dev)
    }

    /// A group's descriptor.
    pub(crate) fn group(&self, group: u32) -> Result<&GroupDesc, Errno> {
        self.groups
            .get(usize::try_from(group).map_err(|_| errno::EIO)?)
            .ok_or(errno::EIO)
    }

    /// A group's descriptor, to change (then [`store_group`](Ext2Fs::store_group)).
    pub(crate) fn group_mut(&mut self, group: u32) -> Result<&mut GroupDesc, Errno> {
        self.groups
            .get_mut(usize::try_from(group).map_err(|_| errno::EIO)?)
            .ok_or(errno::EIO)
    }

    /// Writes a group descriptor into its (cached) table block.
    pub(crate) fn store_group(
        &mut self,
        dev: &mut dyn BlockDevice,
        group: u32,
    ) -> Result<(), Errno> {
        let index = usize::try_from(group).map_err(|_| errno::EIO)?;
        let per_block = BLOCK_SIZE / GROUP_DESC_SIZE;
        let block = 1 + (index / per_block) as u64;
        let at = (index % per_block) * GROUP_DESC_SIZE;
        let desc = self.group(group)?.clone();
        self.cache.write(dev, block)?[at..at + GROUP_DESC_SIZE].copy_from_slice(desc.as_bytes());
        Ok(())
    }

    /// Writes the superblock into its (cached) block.
    pub(crate) fn store_superblock(&mut self, dev: &mut dyn BlockDevice) -> Result<(), Errno> {
        let range = SUPERBLOCK_OFFSET..SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE;
        self.cache.write(dev, 0)?[range].copy_from_slice(self.sb.as_bytes());
        Ok(())
    }

    /// Where an inode is: its inode table block and the byte offset in it.
    fn inode_slot(&self, ino: u32) -> Result<(u64, usize), Errno> {
        if ino == 0 || ino > self.sb.inodes_count.get() {
            return Err(errno::EIO);
        }
        let (group, index) = self.geo.inode_place(ino);
        let table = u64::from(self.group(group)?.inode_table.get());
        let per_block = self.geo.inodes_per_block();
        let offset = (index % per_block) * self.geo.inode_size;
        Ok((
            table + u64::from(index / per_block),
            usize::try_from(offset).map_err(|_| errno::EIO)?,
        ))
    }

    /// Reads an inode.
    pub(crate) fn read_inode(
        &mut self,
        dev: &mut dyn BlockDevice,
        ino: u32,
    ) -> Result<Inode, Errno> {
        let (block, offset) = self.inode_slot(ino)?;
        let data = self.cache.read(dev, block)?;
        Inode::parse(&data[offset..])
    }

    /// Writes an inode (the first 128 bytes of its slot).
    pub(crate) fn write_inode(
        &mut self,
        dev: &mut dyn BlockDevice,
        ino: u32,
        inode: &Inode,
    ) -> Result<(), Errno> {
        let (block, offset) = self.inode_slot(ino)?;
        let data = self.cache.write(dev, block)?;
        data[offset..offset + INODE_RECORD_SIZE].copy_from_slice(inode.as_bytes());
        Ok(())
    }

    /// Clears an inode's whole slot (a new or freed inode: zero mode, links and
    /// deletion time are what e2fsck expects of an unused inode).
    pub(crate) fn clear_inode(&mut self, dev: &mut dyn BlockDevice, ino: u32) -> Result<(), Errno> {
        let (block, offset) = self.inode_slot(ino)?;
        let size = usize::try_from(self.geo.inode_size).map_err(|_| errno::EIO)?;
        self.cache.write(dev, block)?[offset..offset + size].fill(0);
        Ok(())
    }
}

/// True when `block` was free when the last sync ended, in a group changed since.
fn is_fresh(geo: &Geometry, committed: &BTreeMap<u32, Vec<u8>>, block: u64) -> bool {
    let group = geo.group_of_block(block);
    let index = block - geo.group_start(group);
    committed.get(&group).is_some_and(|bitmap| {
        !crate::bitmap::get(bitmap, usize::try_from(index).unwrap_or(usize::MAX))
    })
}

/// Reads and checks the superblock and group descriptors.
fn read_metadata(
    dev: &mut dyn BlockDevice,
) -> Result<(Geometry, Superblock, Vec<GroupDesc>), Errno> {
    if dev.blocks() == 0 {
        return Err(errno::EINVAL);
    }
    let mut first = vec![0; BLOCK_SIZE];
    dev.read_blocks(0, &mut first)?;
    let sb = Superblock::parse(&first[SUPERBLOCK_OFFSET..])?;
    let geo = sb.geometry()?;
    if u64::from(geo.blocks) > dev.blocks() {
        return Err(errno::EINVAL);
    }
    let table_len = usize::try_from(geo.gdt_blocks).map_err(|_| errno::EINVAL)? * BLOCK_SIZE;
    let mut table = vec![0; table_len];
    for (i, chunk) in table.chunks_mut(RUN_MAX_BLOCKS * BLOCK_SIZE).enumerate() {
        let first = 1 + (i * RUN_MAX_BLOCKS) as u64;
        dev.read_blocks(first, chunk)?;
    }
    let mut groups = Vec::new();
    for (group, bytes) in (0..geo.groups).zip(table.chunks_exact(GROUP_DESC_SIZE)) {
        let desc = GroupDesc::parse(bytes)?;
        desc.check(&geo, group)?;
        groups.push(desc);
    }
    Ok((geo, sb, groups))
}
