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
//!
//! A program whose checkpoints can take *declared* writes ([`DeclaredWrites`]: the
//! process build of the OS) gives the cache a pool of block pages in one region of
//! memory that it tracks itself: the cache declares each block page before it writes
//! it, so a checkpoint copies just the pages written since the last one, without a
//! write fault or a page kept writable and copied at every checkpoint (see
//! [`BlockCache::declare_writes`]). Blocks beyond the pool live on the heap as before.

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
}

impl core::fmt::Debug for BlockData {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("BlockData")
    }
}

/// Where a cached block's bytes are.
#[derive(Debug)]
enum Bytes {
    /// A page of its own on the heap (tracked by the checkpoints' write faults).
    Heap(Box<BlockData>),
    /// Entry `n` of the declared pool.
    Pooled(u32),
}

/// How a program's checkpoints learn of writes it declares (the runtime's functions;
/// see [`BlockCache::declare_writes`]).
#[derive(Clone, Copy, Debug)]
pub struct DeclaredWrites {
    /// Makes `len` bytes from an address a region whose writes are declared; true when
    /// it is one now.
    pub region: fn(usize, usize) -> bool,
    /// Declares that `len` bytes from an address are about to be written.
    pub will_write: fn(usize, usize),
}

/// Block pages in one declared region: entries are added up to the capacity the
/// vector was made with (never reallocated), and reused once freed.
#[derive(Debug)]
struct Pool {
    blocks: Vec<BlockData>,
    free: Vec<u32>,
    writes: DeclaredWrites,
}

impl Pool {
    /// A zeroed block page of the pool, declared as written; `None` when it is full.
    fn take(&mut self) -> Option<u32> {
        if let Some(index) = self.free.pop() {
            let block = &mut self.blocks[index as usize];
            (self.writes.will_write)(block.0.as_ptr() as usize, BLOCK_SIZE);
            block.0.fill(0);
            return Some(index);
        }
        if self.blocks.len() == self.blocks.capacity() {
            return None;
        }
        let index = u32::try_from(self.blocks.len()).ok()?;
        let at = self.blocks.as_ptr() as usize + self.blocks.len() * BLOCK_SIZE;
        (self.writes.will_write)(at, BLOCK_SIZE);
        self.blocks.push(BlockData([0; BLOCK_SIZE]));
        Some(index)
    }
}

/// One cached block.
#[derive(Debug)]
struct Slot {
    data: Bytes,
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
    pool: Option<Pool>,
}

impl BlockCache {
    /// An empty cache that keeps about `capacity` blocks.
    pub fn new(capacity: usize) -> BlockCache {
        BlockCache {
            slots: BTreeMap::new(),
            capacity: capacity.max(1),
            clock: 0,
            dirty: 0,
            pool: None,
        }
    }

    /// Keeps the blocks the cache takes from now on (up to its capacity) in one region
    /// of memory whose writes `writes` declares, if the program's checkpoints take
    /// declared writes (`writes.region` says so); otherwise, and beyond the pool, on
    /// the heap. True when the pool is in use.
    pub fn declare_writes(&mut self, writes: DeclaredWrites) -> bool {
        if self.pool.is_some() {
            return true;
        }
        let blocks: Vec<BlockData> = Vec::with_capacity(self.capacity);
        let (start, len) = (blocks.as_ptr() as usize, blocks.capacity() * BLOCK_SIZE);
        if !(writes.region)(start, len) {
            return false;
        }
        self.pool = Some(Pool {
            blocks,
            free: Vec::new(),
            writes,
        });
        true
    }

    /// A zeroed block page: from the pool if there is one with room, else the heap.
    fn new_bytes(&mut self) -> Bytes {
        match self.pool.as_mut().and_then(Pool::take) {
            Some(index) => Bytes::Pooled(index),
            None => Bytes::Heap(BlockData::zeroed()),
        }
    }

    /// Holds `block` (clean) in `data`, last used at `used`.
    fn insert(&mut self, block: u64, data: Bytes, used: u64) {
        let slot = Slot {
            data,
            dirty: false,
            used,
        };
        self.slots.insert(block, slot);
    }

    /// Gives a block page back (its contents no longer matter).
    fn free_bytes(&mut self, bytes: Bytes) {
        if let (Bytes::Pooled(index), Some(pool)) = (bytes, self.pool.as_mut()) {
            pool.free.push(index);
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
            if let Some(slot) = self.slots.remove(&block) {
                self.free_bytes(slot.data);
            }
        }
        evict
    }

    /// Loads a block into the cache if it is not there.
    fn load(&mut self, dev: &mut dyn BlockDevice, block: u64) -> Result<(), Errno> {
        if !self.slots.contains_key(&block) {
            self.make_room();
            let mut data = self.new_bytes();
            if let Err(e) = dev.read_blocks(block, fresh_mut(&mut self.pool, &mut data)) {
                self.free_bytes(data);
                return Err(e);
            }
            self.insert(block, data, 0);
        }
        Ok(())
    }

    /// A block's contents, read from the device if needed.
    pub fn read(&mut self, dev: &mut dyn BlockDevice, block: u64) -> Result<&[u8], Errno> {
        self.load(dev, block)?;
        let (now, slack) = (self.tick(), self.slack());
        let slot = self.slots.get_mut(&block).ok_or(ankh_proto::errno::EIO)?;
        refresh(&mut slot.used, now, slack);
        Ok(bytes(&self.pool, &slot.data))
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
        if !self.slots.contains_key(&block) {
            let data = self.new_bytes();
            self.insert(block, data, 0);
        }
        let slot = self.slots.get_mut(&block).expect("inserted above");
        if !slot.dirty {
            slot.dirty = true;
            self.dirty += 1;
        }
        refresh(&mut slot.used, now, slack);
        bytes_mut(&mut self.pool, &mut slot.data)
    }

    /// A block's contents if held, without touching the device.
    pub fn peek(&self, block: u64) -> Option<&[u8]> {
        self.slots
            .get(&block)
            .map(|slot| bytes(&self.pool, &slot.data))
    }

    /// Keeps a block read ahead (clean; a held block is left as it is).
    pub fn insert_clean(&mut self, block: u64, data: &[u8]) {
        if !self.slots.contains_key(&block) {
            self.make_room();
            let used = self.tick();
            let mut bytes = self.new_bytes();
            fresh_mut(&mut self.pool, &mut bytes).copy_from_slice(data);
            self.insert(block, bytes, used);
        }
    }

    /// Forgets a block (freed: its contents no longer matter, dirty or not).
    pub fn discard(&mut self, block: u64) {
        if let Some(slot) = self.slots.remove(&block) {
            if slot.dirty {
                self.dirty -= 1;
            }
            self.free_bytes(slot.data);
        }
    }

    /// The dirty blocks, by increasing block number.
    pub fn dirty_blocks(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.slots
            .iter()
            .filter(|(_, slot)| slot.dirty)
            .map(|(&block, slot)| (block, bytes(&self.pool, &slot.data)))
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
        for (_, slot) in core::mem::take(&mut self.slots) {
            self.free_bytes(slot.data);
        }
        self.dirty = 0;
    }
}

/// A block's bytes, to read.
fn bytes<'a>(pool: &'a Option<Pool>, data: &'a Bytes) -> &'a [u8] {
    match (data, pool) {
        (Bytes::Heap(block), _) => &block.0,
        (Bytes::Pooled(index), Some(pool)) => &pool.blocks[*index as usize].0,
        (Bytes::Pooled(_), None) => unreachable!("pooled bytes without a pool"),
    }
}

/// The bytes of a block page [`BlockCache::new_bytes`] just gave (declared by it), to
/// fill before anything else runs.
fn fresh_mut<'a>(pool: &'a mut Option<Pool>, data: &'a mut Bytes) -> &'a mut [u8] {
    match (data, pool) {
        (Bytes::Heap(block), _) => &mut block.0,
        (Bytes::Pooled(index), Some(pool)) => &mut pool.blocks[*index as usize].0,
        (Bytes::Pooled(_), None) => unreachable!("pooled bytes without a pool"),
    }
}

/// A block's bytes, to write: a pooled block's page is declared first.
fn bytes_mut<'a>(pool: &'a mut Option<Pool>, data: &'a mut Bytes) -> &'a mut [u8] {
    if let (Bytes::Pooled(index), Some(pool)) = (&*data, pool.as_ref()) {
        let at = pool.blocks[*index as usize].0.as_ptr() as usize;
        (pool.writes.will_write)(at, BLOCK_SIZE);
    }
    fresh_mut(pool, data)
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

    /// What the declared-writes hooks of the test below heard: the region, and each
    /// declared page (by address).
    static DECLARED: std::sync::Mutex<(usize, usize, Vec<usize>)> =
        std::sync::Mutex::new((0, 0, Vec::new()));

    fn region(start: usize, len: usize) -> bool {
        let mut declared = DECLARED.lock().unwrap();
        declared.0 = start;
        declared.1 = len;
        true
    }

    fn will_write(at: usize, len: usize) {
        assert_eq!(len, BLOCK_SIZE);
        DECLARED.lock().unwrap().2.push(at);
    }

    #[test]
    fn pooled_blocks_are_declared_before_every_write_and_reused() {
        let mut disk = MemDisk::new(64);
        disk.write_blocks(3, &[7; BLOCK_SIZE]).unwrap();
        let mut cache = BlockCache::new(8);
        let writes = DeclaredWrites { region, will_write };
        assert!(cache.declare_writes(writes));
        let (start, len) = {
            let declared = DECLARED.lock().unwrap();
            (declared.0, declared.1)
        };
        assert_eq!(len, 8 * BLOCK_SIZE);
        let in_pool = |data: &[u8]| (start..start + len).contains(&(data.as_ptr() as usize));
        let taken = || core::mem::take(&mut DECLARED.lock().unwrap().2);
        // A miss fills a pool page, declared before the read wrote it.
        assert_eq!(cache.read(&mut disk, 3).unwrap()[0], 7);
        let page = cache.peek(3).unwrap().as_ptr() as usize;
        assert!(in_pool(cache.peek(3).unwrap()));
        assert_eq!(taken(), [page]);
        // A hit to read declares nothing; each change declares its page.
        cache.read(&mut disk, 3).unwrap();
        assert!(taken().is_empty());
        cache.write(&mut disk, 3).unwrap()[0] = 9;
        cache.overwrite(4, &[4; BLOCK_SIZE]);
        cache.zeroed(5)[1] = 1;
        cache.insert_clean(6, &[6; BLOCK_SIZE]);
        let pages: Vec<usize> = [3, 4, 5, 6]
            .iter()
            .map(|&b| cache.peek(b).unwrap().as_ptr() as usize)
            .collect();
        let declared = taken();
        for page in &pages {
            assert!(
                declared.contains(page),
                "{page:#x} not declared: {declared:x?}"
            );
        }
        // Beyond the pool, blocks go to the heap; freed pool pages are used again.
        cache.mark_clean();
        for block in 10..30 {
            cache.read(&mut disk, block).unwrap();
        }
        assert!(cache.len() <= 9);
        let pooled = (10..30)
            .filter_map(|b| cache.peek(b))
            .filter(|data| in_pool(data))
            .count();
        assert!(pooled >= 4, "evicted pool pages were not reused: {pooled}");
        assert_eq!(cache.peek(3), None);
    }

    #[test]
    fn without_declared_writes_the_cache_keeps_blocks_on_the_heap() {
        fn refuse(_: usize, _: usize) -> bool {
            false
        }
        let mut cache = BlockCache::new(8);
        let writes = DeclaredWrites {
            region: refuse,
            will_write: |_, _| panic!("declared without a region"),
        };
        assert!(!cache.declare_writes(writes));
        cache.overwrite(1, &[1; BLOCK_SIZE]);
        assert_eq!(cache.peek(1).unwrap()[0], 1);
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
