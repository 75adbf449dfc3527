//! The redo journal that makes a sync atomic, kept in the blocks of the regular file
//! `/.journal` (inode 12, made by mkfs and never moved), so e2fsck sees an ordinary
//! file and ext2 needs no journal feature.
//!
//! # Format
//! A sync writes one transaction at the start of the journal: `h` header blocks, then
//! the contents of the `nj` journaled blocks. The header (little-endian) is
//!
//! | bytes   | field                                                         |
//! |---------|---------------------------------------------------------------|
//! | 0..8    | magic `ANKHJNL1`                                              |
//! | 8..16   | sequence number                                               |
//! | 16..20  | `h`, header blocks                                            |
//! | 20..24  | `nj`, journaled blocks (their contents follow the header)     |
//! | 24..28  | `no`, ordered blocks (written in place only)                  |
//! | 32..40  | checksum                                                      |
//! | 64..    | `nj + no` target block numbers (u64): journaled, then ordered |
//!
//! The checksum ([`Checksum`]) covers the header (checksum field zero), the journaled
//! contents, and the contents of the ordered blocks as they must be in place.
//!
//! # Why a crash never leaves a mixed state
//! Ordered blocks are blocks allocated since the last sync that were free in the
//! state on disk: writing them in place cannot disturb that state, so a sync writes
//! them in place while it writes the journal, then flushes: only then is the
//! transaction whole. It then writes the journaled blocks (everything else: bitmaps,
//! inode tables, the superblock, blocks that were already in use) in place. The next
//! sync flushes those before it overwrites the journal.
//!
//! At mount the transaction at the start of the journal is replayed when its checksum
//! holds, which proves that the header, the journaled contents and the ordered blocks
//! in place all belong to it. A crash before the flush leaves a torn transaction that
//! fails the checksum: the disk still holds the previous state, because nothing of the
//! new one was written in place except ordered blocks, free in that state. A crash
//! after it is repaired by the replay. Replaying is idempotent: every in-place write
//! goes through the journal, so re-applying the last whole transaction rewrites what
//! is there (or was about to be). Once a replay (or a clean unmount) made the
//! transaction durable in place, its header is cleared: a later mount finds nothing
//! to replay over changes other tools (e2fsck, debugfs) may have made meanwhile.

use alloc::vec;
use alloc::vec::Vec;

use ankh_proto::errno::{self, Errno};

use crate::checksum::Checksum;
use crate::device::{BlockDevice, BLOCK_SIZE};
use crate::runs::{runs, RunWriter, RUN_MAX_BLOCKS};

/// The magic at the start of a transaction.
const MAGIC: [u8; 8] = *b"ANKHJNL1";
/// Header bytes before the target list.
const PREFIX: usize = 64;
/// Where the checksum sits in the header.
const CHECKSUM_AT: usize = 32;

/// The smallest journal mount accepts, in blocks (1 MiB).
pub const MIN_JOURNAL_BLOCKS: usize = 256;
/// The largest journal mount accepts, in blocks (64 MiB).
pub const MAX_JOURNAL_BLOCKS: usize = 16384;

/// Header blocks for a transaction of `targets` blocks.
fn header_blocks(targets: usize) -> usize {
    (PREFIX + 8 * targets).div_ceil(BLOCK_SIZE)
}

/// The journal: its blocks in file order.
#[derive(Clone, Debug)]
pub struct Journal {
    blocks: Vec<u64>,
    /// The same, sorted, to tell whether a block belongs to the journal.
    sorted: Vec<u64>,
    sequence: u64,
}

impl Journal {
    /// The journal made of `blocks` (`EIO` when there are too few or too many, when
    /// one is outside a file system of `fs_blocks` blocks, or is listed twice).
    pub fn new(blocks: Vec<u64>, fs_blocks: u64) -> Result<Journal, Errno> {
        let mut sorted = blocks.clone();
        sorted.sort_unstable();
        let unique = sorted.windows(2).all(|pair| pair[0] != pair[1]);
        let inside = sorted.iter().all(|&b| b != 0 && b < fs_blocks);
        if !(MIN_JOURNAL_BLOCKS..=MAX_JOURNAL_BLOCKS).contains(&blocks.len()) || !unique || !inside
        {
            return Err(errno::EIO);
        }
        Ok(Journal {
            blocks,
            sorted,
            sequence: 1,
        })
    }

    /// No journal yet (while mount reads the journal file's map): holds nothing.
    pub(crate) fn none() -> Journal {
        Journal {
            blocks: Vec::new(),
            sorted: Vec::new(),
            sequence: 1,
        }
    }

    /// The journal's blocks in file order.
    pub fn blocks(&self) -> &[u64] {
        &self.blocks
    }

    /// The most blocks (journaled and ordered together) one transaction may carry.
    pub fn capacity(&self) -> usize {
        self.blocks
            .len()
            .saturating_sub(header_blocks(self.blocks.len()))
    }

    /// True when `block` is one of the journal's.
    pub fn contains(&self, block: u64) -> bool {
        self.sorted.binary_search(&block).is_ok()
    }

    /// Writes a transaction, makes it durable, and writes the journaled blocks in
    /// place (not flushed: the caller flushes before the next commit). `ordered` go
    /// in place before the flush; see the module documentation. Returns the device
    /// calls made.
    pub fn commit(
        &mut self,
        dev: &mut dyn BlockDevice,
        journaled: &[(u64, &[u8])],
        ordered: &[(u64, &[u8])],
    ) -> Result<u64, Errno> {
        let targets = journaled.len() + ordered.len();
        if targets > self.capacity() {
            return Err(errno::EIO);
        }
        let h = header_blocks(targets);
        let mut header = vec![0; h * BLOCK_SIZE];
        header[..8].copy_from_slice(&MAGIC);
        header[8..16].copy_from_slice(&self.sequence.to_le_bytes());
        put_u32(&mut header, 16, h);
        put_u32(&mut header, 20, journaled.len());
        put_u32(&mut header, 24, ordered.len());
        for (i, (block, _)) in journaled.iter().chain(ordered).enumerate() {
            let at = PREFIX + 8 * i;
            header[at..at + 8].copy_from_slice(&block.to_le_bytes());
        }
        let mut sum = Checksum::new();
        sum.update(&header);
        for (_, data) in journaled.iter().chain(ordered) {
            sum.update(data);
        }
        header[CHECKSUM_AT..CHECKSUM_AT + 8].copy_from_slice(&sum.value().to_le_bytes());

        let mut writer = RunWriter::new();
        for &(block, data) in ordered {
            writer.push(dev, block, data)?;
        }
        writer.finish(dev)?;
        let slots = header
            .chunks_exact(BLOCK_SIZE)
            .chain(journaled.iter().map(|(_, d)| *d));
        for (&block, data) in self.blocks.iter().zip(slots) {
            writer.push(dev, block, data)?;
        }
        writer.finish(dev)?;
        dev.flush()?;
        for &(block, data) in journaled {
            writer.push(dev, block, data)?;
        }
        writer.finish(dev)?;
        self.sequence = self.sequence.wrapping_add(1);
        Ok(writer.calls + 1)
    }

    /// Replays the transaction at the start of the journal if it is whole, for a file
    /// system of `fs_blocks` blocks; what was replayed (and flushed), if anything.
    pub fn replay(
        &mut self,
        dev: &mut dyn BlockDevice,
        fs_blocks: u64,
    ) -> Result<Option<Replayed>, Errno> {
        let Some(txn) = self.read_header(dev, fs_blocks)? else {
            return Ok(None);
        };
        let (h, nj) = (txn.header_blocks, txn.journaled);
        let mut sum = Checksum::new();
        let mut header = txn.header.clone();
        header[CHECKSUM_AT..CHECKSUM_AT + 8].fill(0);
        sum.update(&header);
        read_each(dev, &self.blocks[h..h + nj], |_, data| {
            sum.update(data);
            Ok(())
        })?;
        read_each(dev, &txn.targets[nj..], |_, data| {
            sum.update(data);
            Ok(())
        })?;
        if sum.value() != txn.checksum {
            return Ok(None);
        }
        let rewritten = self.apply(dev, &txn.targets[..nj], h)?;
        self.sequence = txn.sequence.wrapping_add(1);
        Ok(Some(Replayed {
            sequence: txn.sequence,
            blocks: nj,
            rewritten,
        }))
    }

    /// Copies the journaled contents (after `h` header blocks) to those of their
    /// targets that differ; returns how many did. Writing only those gives the same
    /// disk, and the count tells a transaction that was already in place (the last
    /// sync before a stop that was not an unmount) from one cut short.
    fn apply(&self, dev: &mut dyn BlockDevice, targets: &[u64], h: usize) -> Result<usize, Errno> {
        let mut writer = RunWriter::new();
        let mut rewritten = 0;
        for chunk_start in (0..targets.len()).step_by(RUN_MAX_BLOCKS) {
            let chunk_end = (chunk_start + RUN_MAX_BLOCKS).min(targets.len());
            let mut contents = Vec::with_capacity((chunk_end - chunk_start) * BLOCK_SIZE);
            read_each(
                dev,
                &self.blocks[h + chunk_start..h + chunk_end],
                |_, data| {
                    contents.extend_from_slice(data);
                    Ok(())
                },
            )?;
            let mut in_place = Vec::with_capacity(contents.len());
            read_each(dev, &targets[chunk_start..chunk_end], |_, data| {
                in_place.extend_from_slice(data);
                Ok(())
            })?;
            let pairs = contents
                .chunks_exact(BLOCK_SIZE)
                .zip(in_place.chunks_exact(BLOCK_SIZE));
            for (i, (data, there)) in pairs.enumerate() {
                if data != there {
                    writer.push(dev, targets[chunk_start + i], data)?;
                    rewritten += 1;
                }
            }
        }
        writer.finish(dev)?;
        dev.flush()?;
        Ok(rewritten)
    }

    /// The transaction header at the start of the journal, if it looks like one whose
    /// every number is in range (its checksum is not checked yet).
    fn read_header(
        &self,
        dev: &mut dyn BlockDevice,
        fs_blocks: u64,
    ) -> Result<Option<Transaction>, Errno> {
        let Some(&start) = self.blocks.first() else {
            return Ok(None);
        };
        let mut first = vec![0; BLOCK_SIZE];
        dev.read_blocks(start, &mut first)?;
        if first[..8] != MAGIC {
            return Ok(None);
        }
        let h = get_u32(&first, 16);
        let nj = get_u32(&first, 20);
        let no = get_u32(&first, 24);
        let total = nj.saturating_add(no);
        let j = self.blocks.len();
        if h == 0
            || total > self.capacity()
            || h.saturating_add(nj) > j
            || header_blocks(total) != h
        {
            return Ok(None);
        }
        let mut header = Vec::with_capacity(h * BLOCK_SIZE);
        read_each(dev, &self.blocks[..h], |_, data| {
            header.extend_from_slice(data);
            Ok(())
        })?;
        let targets: Vec<u64> = (0..total)
            .map(|i| get_u64(&header, PREFIX + 8 * i))
            .collect();
        if targets.iter().any(|&t| t >= fs_blocks || self.contains(t)) {
            return Ok(None);
        }
        Ok(Some(Transaction {
            sequence: get_u64(&header, 8),
            header_blocks: h,
            journaled: nj,
            checksum: get_u64(&header, CHECKSUM_AT),
            targets,
            header,
        }))
    }

    /// True when the journal starts with no transaction header (nothing to retire).
    pub fn is_clear(&self, dev: &mut dyn BlockDevice) -> Result<bool, Errno> {
        let Some(&start) = self.blocks.first() else {
            return Ok(true);
        };
        let mut first = vec![0; BLOCK_SIZE];
        dev.read_blocks(start, &mut first)?;
        Ok(first[..8] != MAGIC)
    }

    /// Clears the transaction header, once everything it holds is durable in place, so
    /// that no later mount replays it over changes made by other tools.
    pub fn retire(&self, dev: &mut dyn BlockDevice) -> Result<(), Errno> {
        let Some(&start) = self.blocks.first() else {
            return Ok(());
        };
        dev.write_blocks(start, &[0; BLOCK_SIZE])?;
        dev.flush()
    }

    /// Overwrites the whole journal with zeros (no transaction left; an image that
    /// compresses well).
    pub fn erase(&self, dev: &mut dyn BlockDevice) -> Result<(), Errno> {
        let zeros = vec![0; BLOCK_SIZE];
        let mut writer = RunWriter::new();
        for &block in &self.blocks {
            writer.push(dev, block, &zeros)?;
        }
        writer.finish(dev)?;
        dev.flush()
    }
}

/// What a replay did: the whole transaction it found and how much of it was missing
/// in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replayed {
    /// The transaction's sequence number.
    pub sequence: u64,
    /// Its journaled blocks.
    pub blocks: usize,
    /// Those the disk did not hold in place yet (the replay wrote them): non-zero when
    /// the writer stopped between the transaction's commit and the end of its in-place
    /// writes.
    pub rewritten: usize,
}

/// A transaction header read back.
struct Transaction {
    sequence: u64,
    header_blocks: usize,
    journaled: usize,
    checksum: u64,
    targets: Vec<u64>,
    header: Vec<u8>,
}

/// Reads blocks (in runs of consecutive numbers) and hands each to `each` with its
/// index in `blocks`.
fn read_each(
    dev: &mut dyn BlockDevice,
    blocks: &[u64],
    mut each: impl FnMut(usize, &[u8]) -> Result<(), Errno>,
) -> Result<(), Errno> {
    let mut buf = Vec::new();
    for (first, len) in runs(blocks) {
        buf.resize(len * BLOCK_SIZE, 0);
        dev.read_blocks(blocks[first], &mut buf)?;
        for (i, data) in buf.chunks_exact(BLOCK_SIZE).enumerate() {
            each(first + i, data)?;
        }
    }
    Ok(())
}

fn put_u32(buf: &mut [u8], at: usize, value: usize) {
    let value = u32::try_from(value).unwrap_or(u32::MAX);
    buf[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn get_u32(buf: &[u8], at: usize) -> usize {
    let mut le = [0; 4];
    le.copy_from_slice(&buf[at..at + 4]);
    usize::try_from(u32::from_le_bytes(le)).unwrap_or(usize::MAX)
}

fn get_u64(buf: &[u8], at: usize) -> u64 {
    let mut le = [0; 8];
    le.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(le)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDisk;

    fn block(byte: u8) -> Vec<u8> {
        vec![byte; BLOCK_SIZE]
    }

    fn read(disk: &mut MemDisk, at: u64) -> Vec<u8> {
        let mut buf = block(0);
        disk.read_blocks(at, &mut buf).unwrap();
        buf
    }

    fn committed() -> (MemDisk, Journal) {
        let mut disk = MemDisk::new(1024);
        let mut journal = Journal::new((100..400).collect(), 1024).unwrap();
        let (a, b, c) = (block(1), block(2), block(3));
        journal
            .commit(&mut disk, &[(5, &a), (6, &b)], &[(700, &c)])
            .unwrap();
        (disk, journal)
    }

    #[test]
    fn a_whole_transaction_is_replayed() {
        let (mut disk, mut journal) = committed();
        assert_eq!(read(&mut disk, 5), block(1));
        assert_eq!(read(&mut disk, 700), block(3));
        // Everything is in place: the replay rewrites nothing.
        let whole = journal.replay(&mut disk, 1024).unwrap();
        assert_eq!(
            whole,
            Some(Replayed {
                sequence: 1,
                blocks: 2,
                rewritten: 0
            })
        );
        // An in-place write was lost: the replay redoes it, and only it.
        disk.write_blocks(5, &block(0)).unwrap();
        let replayed = journal.replay(&mut disk, 1024).unwrap().unwrap();
        assert_eq!((replayed.blocks, replayed.rewritten), (2, 1));
        assert_eq!(read(&mut disk, 5), block(1));
        assert_eq!(read(&mut disk, 6), block(2));
        assert!(!journal.is_clear(&mut disk).unwrap());
        journal.retire(&mut disk).unwrap();
        assert!(journal.is_clear(&mut disk).unwrap());
        assert_eq!(journal.replay(&mut disk, 1024).unwrap(), None);
    }

    #[test]
    fn a_torn_transaction_is_not() {
        // An ordered block that did not reach the disk.
        let (mut disk, mut journal) = committed();
        disk.write_blocks(700, &block(0)).unwrap();
        disk.write_blocks(5, &block(0)).unwrap();
        assert_eq!(journal.replay(&mut disk, 1024).unwrap(), None);
        assert_eq!(read(&mut disk, 5), block(0));
        // A journaled block that did not.
        let (mut disk, mut journal) = committed();
        disk.write_blocks(101, &block(9)).unwrap();
        assert_eq!(journal.replay(&mut disk, 1024).unwrap(), None);
        // Targets outside the file system.
        let (mut disk, mut journal) = committed();
        assert_eq!(journal.replay(&mut disk, 600).unwrap(), None);
    }

    #[test]
    fn limits() {
        assert_eq!(Journal::new((1..10).collect(), 100).err(), Some(errno::EIO));
        let mut doubled: Vec<u64> = (1..300).collect();
        doubled.push(5);
        assert_eq!(Journal::new(doubled, 1000).err(), Some(errno::EIO));
        assert_eq!(
            Journal::new((1..300).collect(), 200).err(),
            Some(errno::EIO)
        );
        let journal = Journal::new((1..300).collect(), 1000).unwrap();
        assert_eq!(journal.capacity(), 298);
        assert!(journal.contains(299) && !journal.contains(300));
        let mut disk = MemDisk::new(1000);
        let data = block(1);
        let too_many: Vec<(u64, &[u8])> = (400..700).map(|b| (b, data.as_slice())).collect();
        assert_eq!(
            Journal::new((1..300).collect(), 1000)
                .unwrap()
                .commit(&mut disk, &too_many, &[]),
            Err(errno::EIO)
        );
    }
}
