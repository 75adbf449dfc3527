//! The block cache: blocks read from the device, and blocks changed since the last
//! sync (dirty), which stay until the sync writes them. Clean blocks are evicted,
//! least recently used first, when the cache is over its capacity; dirty ones never
//! are (the file system syncs before they could outgrow it, see `fs`).
//!
//! "Least recently used" is approximate: a use refreshes a block's time only when it
//! is older than [`REFRESH_SLACK`] of the capacity. A hit then reads the cache's
//! index without writing it, and every page a request writes costs a copy at each
//! checkpoint of a recoverable server. For the same reason each block is kept in one
//! page of memory ([`BlockData`]): a change to a block, or a copy out of it, touches
//! one page, not the two an unaligned buffer straddles.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use ankh_proto::errno::Errno;

use crate::device::{BlockDevice, BLOCK_SIZE};

/// A block's time of last use is refreshed when it is older than the capacity divided
/// by this (in uses of the cache).
const REFRESH_SLACK: u64 = 16;

/// A block's bytes, aligned to a page (see the module documentation).
#[repr(C, align(4096))]
struct BlockData([u8; BLOCK_SIZE]);

impl BlockData {
    /// A block of zeros (optimized builds zero it in place on the heap: no block-sized
    /// temporary on the stack, whose pages a checkpoint would copy too).
    fn zeroed() -> Box<BlockData> {
        Box::new(BlockData([0; BLOCK_SIZE]))
    }

    /// A block holding `data` (one block long).
    fn copy_of(data: &[u8]) -> Box<BlockData> {
        let mut block = BlockData::zeroed();
        block.0.copy_from_slice(data);
        block
    }
}

impl core::fmt::Debug for BlockData {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("BlockData")
    }
}

/// One cached block.
#[derive(Debug)]
struct Slot {
    data: Box<BlockData>,
    dirty: bool,
    /// When it was last used (the cache's clock).
    used: u64,
}

/// Cached blocks by block number.
#[derive(Debug)]
pub struct BlockCache {
    slots: BTreeMap<u64, Slot>,
    capacity: usize,
    clock: u64,
    dirty: usize,
}

impl BlockCache {
    /// An empty cache that keeps about `capacity` blocks.
    pub fn new(capacity: usize) -> BlockCache {
        BlockCache {
            slots: BTreeMap::new(),
            capacity: capacity.max(1),
            clock: 0,
            dirty: 0,
        }
    }

    /// Blocks changed since the last [`mark_clean`](BlockCache::mark_clean).
    pub fn dirty_count(&self) -> usize {
        self.dirty
    }

    /// Blocks held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Uses older than this are refreshed (see [`REFRESH_SLACK`]).
    fn slack(&self) -> u64 {
        u64::try_from(self.capacity).unwrap_or(u64::MAX) / REFRESH_SLACK
    }

    /// Makes room for one more block by evicting the least recently used quarter of
    /// the clean blocks (a batch, so the scan is paid rarely); returns how many went.
    fn make_room(&mut self) -> usize {
        if self.slots.len() < self.capacity {
            return 0;
        }
        let mut clean: Vec<(u64, u64)> = self
            .slots
            .iter()
            .filter(|(_, slot)| !slot.dirty)
            .map(|(&block, slot)| (slot.used, block))
            .collect();
        clean.sort_unstable();
        let evict = (self.capacity / 4).max(1).min(clean.len());
        for &(_, block) in &clean[..evict] {
            self.slots.remove(&block);
        }
        evict
    }

    /// Loads a block into the cache if it is not there.
    fn load(&mut self, dev: &mut dyn BlockDevice, block: u64) -> Result<(), Errno> {
        if !self.slots.contains_key(&block) {
            let mut data = BlockData::zeroed();
            dev.read_blocks(block, &mut data.0)?;
            self.make_room();
            self.slots.insert(
                block,
                Slot {
                    data,
                    dirty: false,
                    used: 0,
                },
            );
        }
        Ok(())
    }

    /// A block's contents, read from the device if needed.
    pub fn read(&mut self, dev: &mut dyn BlockDevice, block: u64) -> Result<&[u8], Errno> {
        self.load(dev, block)?;
        let (now, slack) = (self.tick(), self.slack());
        let slot = self.slots.get_mut(&block).ok_or(ankh_proto::errno::EIO)?;
        refresh(&mut slot.used, now, slack);
        Ok(&slot.data.0)
    }

    /// A block's contents to change (read first if needed); the block becomes dirty.
    pub fn write(&mut self, dev: &mut dyn BlockDevice, block: u64) -> Result<&mut [u8], Errno> {
        self.load(dev, block)?;
        Ok(self.dirty_slot(block))
    }

    /// A dirty block of zeros, without reading the device (a block just allocated).
    pub fn zeroed(&mut self, block: u64) -> &mut [u8] {
        self.set(block, None)
    }

    /// Replaces a block's contents (one block of `data`) without reading the device;
    /// the block becomes dirty.
    pub fn overwrite(&mut self, block: u64, data: &[u8]) {
        self.set(block, Some(data));
    }

    fn set(&mut self, block: u64, data: Option<&[u8]>) -> &mut [u8] {
        if !self.slots.contains_key(&block) {
            self.make_room();
            self.slots.insert(
                block,
                Slot {
                    data: BlockData::zeroed(),
                    dirty: false,
                    used: 0,
                },
            );
        }
        let slot = self.dirty_slot(block);
        match data {
            Some(data) => slot.copy_from_slice(data),
            None => slot.fill(0),
        }
        slot
    }

    /// The held block `block`, marked dirty and used.
    fn dirty_slot(&mut self, block: u64) -> &mut [u8] {
        let (now, slack) = (self.tick(), self.slack());
        let dirty = &mut self.dirty;
        let slot = self.slots.entry(block).or_insert_with(|| Slot {
            data: BlockData::zeroed(),
            dirty: false,
            used: 0,
        });
        if !slot.dirty {
            slot.dirty = true;
            *dirty += 1;
        }
        refresh(&mut slot.used, now, slack);
        &mut slot.data.0
    }

    /// A block's contents if held, without touching the device.
    pub fn peek(&self, block: u64) -> Option<&[u8]> {
        self.slots.get(&block).map(|slot| &slot.data.0[..])
    }

    /// Keeps a block read ahead (clean; a held block is left as it is).
    pub fn insert_clean(&mut self, block: u64, data: &[u8]) {
        if !self.slots.contains_key(&block) {
            self.make_room();
            let used = self.tick();
            self.slots.insert(
                block,
                Slot {
                    data: BlockData::copy_of(data),
                    dirty: false,
                    used,
                },
            );
        }
    }

    /// Forgets a block (freed: its contents no longer matter, dirty or not).
    pub fn discard(&mut self, block: u64) {
        if let Some(slot) = self.slots.remove(&block) {
            if slot.dirty {
                self.dirty -= 1;
            }
        }
    }

    /// The dirty blocks, by increasing block number.
    pub fn dirty_blocks(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.slots
            .iter()
            .filter(|(_, slot)| slot.dirty)
            .map(|(&block, slot)| (block, &slot.data.0[..]))
    }

    /// Marks every block clean (they were written), then trims to capacity.
    pub fn mark_clean(&mut self) {
        for slot in self.slots.values_mut() {
            slot.dirty = false;
        }
        self.dirty = 0;
        while self.slots.len() > self.capacity && self.make_room() > 0 {}
    }

    /// Forgets everything (after the journal rewrote blocks under the cache).
    pub fn clear(&mut self) {
        self.slots.clear();
        self.dirty = 0;
    }
}

/// Sets a block's time of last use to `now` unless it is within `slack` of it: a
/// write to the index avoided, at the price of an eviction order off by at most
/// `slack` uses.
fn refresh(used: &mut u64, now: u64, slack: u64) {
    if now.saturating_sub(*used) > slack {
        *used = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDisk;

    #[test]
    fn dirty_blocks_stay_and_clean_ones_go() {
        let mut disk = MemDisk::new(64);
        disk.write_blocks(3, &[7; BLOCK_SIZE]).unwrap();
        let mut cache = BlockCache::new(8);
        assert_eq!(cache.read(&mut disk, 3).unwrap()[0], 7);
        cache.write(&mut disk, 3).unwrap()[0] = 9;
        cache.zeroed(4)[1] = 1;
        cache.overwrite(5, &[5; BLOCK_SIZE]);
        assert_eq!(cache.dirty_count(), 3);
        for block in 10..40 {
            cache.read(&mut disk, block).unwrap();
        }
        assert!(cache.len() <= 9);
        let dirty: Vec<u64> = cache.dirty_blocks().map(|(b, _)| b).collect();
        assert_eq!(dirty, [3, 4, 5]);
        assert_eq!(cache.peek(3).unwrap()[0], 9);
        cache.discard(4);
        assert_eq!(cache.dirty_count(), 2);
        cache.mark_clean();
        assert_eq!(cache.dirty_count(), 0);
        // The device was never written: the cache only holds the change.
        let mut buf = [0; BLOCK_SIZE];
        disk.read_blocks(3, &mut buf).unwrap();
        assert_eq!(buf[0], 7);
    }

    #[test]
    fn every_cached_block_is_one_whole_page() {
        let mut disk = MemDisk::new(16);
        let mut cache = BlockCache::new(8);
        cache.read(&mut disk, 1).unwrap();
        cache.zeroed(2);
        cache.overwrite(3, &[3; BLOCK_SIZE]);
        cache.insert_clean(4, &[4; BLOCK_SIZE]);
        cache.write(&mut disk, 5).unwrap();
        for block in 1..=5 {
            let data = cache.peek(block).unwrap();
            assert_eq!(data.len(), BLOCK_SIZE);
            assert_eq!(
                data.as_ptr() as usize % 4096,
                0,
                "block {block} straddles two pages"
            );
        }
    }

    #[test]
    fn a_block_in_steady_use_outlives_a_stream_of_others() {
        let mut disk = MemDisk::new(512);
        let mut cache = BlockCache::new(64);
        cache.read(&mut disk, 1).unwrap();
        for block in 100..400 {
            cache.read(&mut disk, block).unwrap();
            if block % 10 == 0 {
                cache.read(&mut disk, 1).unwrap();
            }
            assert!(cache.peek(1).is_some(), "block 1 evicted at {block}");
        }
        // Blocks of the stream did go: the cache kept to its capacity.
        assert!(cache.len() <= 65);
        assert!(cache.peek(100).is_none());
    }
}
