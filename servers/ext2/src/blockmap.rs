//! Block maps: from a file's logical blocks to disk blocks through 12 direct pointers,
//! a single and a double indirect block. Looking up (every pointer checked against
//! the file system's size), allocating along the way, and freeing a file's tail, last
//! block first, a bounded step at a time.

use alloc::vec::Vec;

use ankh_proto::errno::{self, Errno};

use crate::device::BlockDevice;
use crate::fs::Ext2Fs;
use crate::inode::{Inode, SLOT_DOUBLE, SLOT_INDIRECT};
use crate::layout::{DIRECT_BLOCKS, MAX_FILE_BLOCKS, POINTERS_PER_BLOCK};

/// The most data blocks one step of freeing releases (see `fs::STEP_BUDGET`).
pub(crate) const FREE_STEP_BLOCKS: u32 = 16;

/// The first logical block mapped through the double indirect block.
const DOUBLE_START: u64 = DIRECT_BLOCKS + POINTERS_PER_BLOCK;

/// The way to a logical block: the inode slot, then the index in each indirect block.
struct Chain {
    slot: usize,
    indices: [usize; 2],
    depth: usize,
}

/// The chain of a logical block (`None` past the largest file).
fn chain(lblk: u64) -> Option<Chain> {
    let index = |v: u64| usize::try_from(v).unwrap_or(0);
    if lblk < DIRECT_BLOCKS {
        Some(Chain {
            slot: index(lblk),
            indices: [0; 2],
            depth: 0,
        })
    } else if lblk < DOUBLE_START {
        Some(Chain {
            slot: SLOT_INDIRECT,
            indices: [index(lblk - DIRECT_BLOCKS), 0],
            depth: 1,
        })
    } else if lblk < MAX_FILE_BLOCKS {
        let rel = lblk - DOUBLE_START;
        Some(Chain {
            slot: SLOT_DOUBLE,
            indices: [
                index(rel / POINTERS_PER_BLOCK),
                index(rel % POINTERS_PER_BLOCK),
            ],
            depth: 2,
        })
    } else {
        None
    }
}

/// Logical blocks a subtree of `depth` levels of indirection spans.
fn span(depth: usize) -> u64 {
    match depth {
        0 => 1,
        1 => POINTERS_PER_BLOCK,
        _ => POINTERS_PER_BLOCK * POINTERS_PER_BLOCK,
    }
}

/// What freeing a subtree did.
struct Freed {
    /// The subtree's block itself was freed: its pointer must be cleared.
    whole: bool,
    /// The step's budget ran out; every block from this logical block on is free.
    stopped_at: Option<u64>,
}

impl Ext2Fs {
    /// A block pointer read from disk: `None` for a hole, `EIO` outside the file
    /// system.
    fn pointer(&self, raw: u32) -> Result<Option<u64>, Errno> {
        match raw {
            0 => Ok(None),
            p if p < self.geo.blocks => Ok(Some(u64::from(p))),
            _ => Err(errno::EIO),
        }
    }

    /// Entry `index` of an indirect block.
    fn entry(&mut self, dev: &mut dyn BlockDevice, block: u64, index: usize) -> Result<u32, Errno> {
        let data = self.cache.read(dev, block)?;
        let at = index * 4;
        let bytes = data.get(at..at + 4).ok_or(errno::EIO)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// Sets entry `index` of an indirect block.
    fn set_entry(
        &mut self,
        dev: &mut dyn BlockDevice,
        block: u64,
        index: usize,
        value: u32,
    ) -> Result<(), Errno> {
        let data = self.cache.write(dev, block)?;
        let at = index * 4;
        data.get_mut(at..at + 4)
            .ok_or(errno::EIO)?
            .copy_from_slice(&value.to_le_bytes());
        Ok(())
    }

    /// The disk block of logical block `lblk` (`None` for a hole).
    pub(crate) fn bmap(
        &mut self,
        dev: &mut dyn BlockDevice,
        inode: &Inode,
        lblk: u64,
    ) -> Result<Option<u64>, Errno> {
        let Some(chain) = chain(lblk) else {
            return Ok(None);
        };
        let mut current = self.pointer(inode.slot(chain.slot))?;
        for &index in &chain.indices[..chain.depth] {
            let Some(block) = current else {
                return Ok(None);
            };
            let raw = self.entry(dev, block, index)?;
            current = self.pointer(raw)?;
        }
        Ok(current)
    }

    /// The disk block of logical block `lblk`, allocating it (and the indirect blocks
    /// on the way) near `goal` if it is a hole; true when the data block is new (it
    /// then holds nothing: the caller fills it). The inode is changed in memory: the
    /// caller writes it back, also on error (`ENOSPC` may come after an indirect block
    /// was added).
    pub(crate) fn bmap_alloc(
        &mut self,
        dev: &mut dyn BlockDevice,
        inode: &mut Inode,
        lblk: u64,
        goal: u64,
    ) -> Result<(u64, bool), Errno> {
        let chain = chain(lblk).ok_or(errno::ENOSPC)?;
        // Where the pointer to the next level lives: the inode, or an indirect block.
        let mut holder: Option<(u64, usize)> = None;
        let mut raw = inode.slot(chain.slot);
        for level in 0..=chain.depth {
            let is_data = level == chain.depth;
            let block = match self.pointer(raw)? {
                Some(block) => block,
                None => {
                    let block = self.alloc_block(dev, goal)?;
                    inode.add_blocks(1)?;
                    let pointer = u32::try_from(block).map_err(|_| errno::EIO)?;
                    match holder {
                        None => inode.set_slot(chain.slot, pointer),
                        Some((parent, index)) => self.set_entry(dev, parent, index, pointer)?,
                    }
                    if is_data {
                        return Ok((block, true));
                    }
                    self.cache.zeroed(block);
                    block
                }
            };
            if is_data {
                return Ok((block, false));
            }
            let index = chain.indices[level];
            holder = Some((block, index));
            raw = self.entry(dev, block, index)?;
        }
        Err(errno::EIO)
    }

    /// Frees the data blocks at logical blocks `from` and beyond, last first, and the
    /// indirect blocks left empty, releasing at most `budget` data blocks. Returns
    /// `None` when done, or `Some(low)` when the budget ran out with every block from
    /// `low` on free. Changes the inode in memory (pointers, `i_blocks`).
    pub(crate) fn free_tail(
        &mut self,
        dev: &mut dyn BlockDevice,
        inode: &mut Inode,
        from: u64,
        mut budget: u32,
    ) -> Result<Option<u64>, Errno> {
        let mut freed = 0;
        let mut tops = Vec::with_capacity(14);
        tops.push((SLOT_DOUBLE, DOUBLE_START, 2));
        tops.push((SLOT_INDIRECT, DIRECT_BLOCKS, 1));
        for slot in (0..DIRECT_BLOCKS).rev() {
            tops.push((usize::try_from(slot).unwrap_or(0), slot, 0));
        }
        let mut stopped_at = None;
        for (slot, base, depth) in tops {
            if base + span(depth) <= from {
                continue;
            }
            let Some(block) = self.pointer(inode.slot(slot))? else {
                continue;
            };
            let result = self.free_subtree(dev, block, depth, base, from, &mut budget, &mut freed);
            let result = match result {
                Ok(result) => result,
                Err(e) => {
                    inode.add_blocks(-freed)?;
                    return Err(e);
                }
            };
            if result.whole {
                inode.set_slot(slot, 0);
            }
            if result.stopped_at.is_some() {
                stopped_at = result.stopped_at;
                break;
            }
        }
        inode.add_blocks(-freed)?;
        Ok(stopped_at)
    }

    /// Frees what a subtree maps at `from` and beyond; `base` is its first logical
    /// block. `freed` counts every block freed (for `i_blocks`).
    #[allow(clippy::too_many_arguments)]
    fn free_subtree(
        &mut self,
        dev: &mut dyn BlockDevice,
        block: u64,
        depth: usize,
        base: u64,
        from: u64,
        budget: &mut u32,
        freed: &mut i64,
    ) -> Result<Freed, Errno> {
        if depth == 0 {
            if *budget == 0 {
                return Ok(Freed {
                    whole: false,
                    stopped_at: Some(base + 1),
                });
            }
            self.free_block(dev, block)?;
            *budget -= 1;
            *freed += 1;
            return Ok(Freed {
                whole: true,
                stopped_at: None,
            });
        }
        let child_span = span(depth - 1);
        let entries: Vec<u32> = {
            let data = self.cache.read(dev, block)?;
            data.chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        };
        let mut left = entries.iter().filter(|&&e| e != 0).count();
        for (index, &raw) in entries.iter().enumerate().rev() {
            let child_base = base + index as u64 * child_span;
            if child_base + child_span <= from {
                break;
            }
            let Some(child) = self.pointer(raw)? else {
                continue;
            };
            let result =
                self.free_subtree(dev, child, depth - 1, child_base, from, budget, freed)?;
            if result.whole {
                self.set_entry(dev, block, index, 0)?;
                left -= 1;
            }
            if result.stopped_at.is_some() {
                return Ok(Freed {
                    whole: false,
                    stopped_at: result.stopped_at,
                });
            }
        }
        if left == 0 {
            self.free_block(dev, block)?;
            *freed += 1;
            return Ok(Freed {
                whole: true,
                stopped_at: None,
            });
        }
        Ok(Freed {
            whole: false,
            stopped_at: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_of_every_depth() {
        let c = chain(11).unwrap();
        assert_eq!((c.slot, c.depth), (11, 0));
        let c = chain(12).unwrap();
        assert_eq!((c.slot, c.indices[0], c.depth), (SLOT_INDIRECT, 0, 1));
        let c = chain(DOUBLE_START + POINTERS_PER_BLOCK + 3).unwrap();
        assert_eq!((c.slot, c.indices, c.depth), (SLOT_DOUBLE, [1, 3], 2));
        assert!(chain(MAX_FILE_BLOCKS - 1).is_some());
        assert!(chain(MAX_FILE_BLOCKS).is_none());
        assert_eq!(span(2), 1 << 20);
    }
}
