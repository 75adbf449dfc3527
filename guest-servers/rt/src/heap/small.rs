//! [`SmallBlocks`]: a few blocks for small, short-lived allocations, kept next to the
//! allocator's state in the image's hot page.
//!
//! Most requests a server handles allocate a few bytes and free them before the next
//! one: a reply's payload, a record read from another server's reply. From the
//! general heap each such block is a write to a heap page (the block and the
//! first-fit list's hole headers around it), and every page a request writes is copied
//! at every checkpoint of a recoverable server (and costs a write fault on the way in).
//! The hot page is written by every request anyway, so blocks inside it cost nothing
//! more. A block is taken first free first and given back by address; allocations that
//! do not fit (too large, over-aligned, or all blocks taken) go to the general heap, as
//! do all of them until the server has started ([`SmallBlocks::open`]). Small data that
//! outlives its request (a new key, a file name) holds its block until it is freed.

use core::alloc::Layout;

/// Bytes of a block: the largest allocation served here.
pub const SMALL_BLOCK: usize = 64;

/// Blocks: enough for the small allocations a request holds at once (a reply in hand
/// while a call's reply comes back), few enough to fit the hot page beside the IPC
/// state.
pub const SMALL_BLOCKS: usize = 4;

/// One block, aligned for any type a small allocation holds.
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Block([u8; SMALL_BLOCK]);

/// The blocks and which of them are free.
pub struct SmallBlocks {
    blocks: [Block; SMALL_BLOCKS],
    /// Bit `i` set: block `i` is taken.
    taken: u8,
    /// Whether blocks are handed out (see [`SmallBlocks::open`]).
    open: bool,
}

const _: () = assert!(SMALL_BLOCKS <= u8::BITS as usize, "one bit per block");

impl SmallBlocks {
    /// All blocks free, none handed out until [`open`](Self::open).
    pub const fn new() -> SmallBlocks {
        SmallBlocks {
            blocks: [Block([0; SMALL_BLOCK]); SMALL_BLOCKS],
            taken: 0,
            open: false,
        }
    }

    /// Hands blocks out from now on. A server opens them once it has started: what it
    /// allocates while it starts (a file system's names, a process table) lives on,
    /// and would hold the blocks for good.
    pub fn open(&mut self) {
        self.open = true;
    }

    /// A free block for `layout`, marked taken; `None` before [`open`](Self::open),
    /// when it does not fit a block or when none is free.
    pub fn take(&mut self, layout: Layout) -> Option<*mut u8> {
        if !self.open
            || layout.size() > SMALL_BLOCK
            || layout.align() > core::mem::align_of::<Block>()
        {
            return None;
        }
        let free = (!self.taken).trailing_zeros() as usize;
        let block = self.blocks.get_mut(free)?;
        self.taken |= 1 << free;
        Some(block.0.as_mut_ptr())
    }

    /// Takes `ptr` back if it is one of the blocks (then it is free again); `false` for
    /// any other address (a block of the general heap).
    pub fn give_back(&mut self, ptr: *mut u8) -> bool {
        let start = self.blocks.as_ptr() as usize;
        let offset = (ptr as usize).wrapping_sub(start);
        if offset >= SMALL_BLOCK * SMALL_BLOCKS || !offset.is_multiple_of(SMALL_BLOCK) {
            return false;
        }
        self.taken &= !(1 << (offset / SMALL_BLOCK));
        true
    }
}

impl Default for SmallBlocks {
    fn default() -> SmallBlocks {
        SmallBlocks::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    fn opened() -> SmallBlocks {
        let mut small = SmallBlocks::new();
        small.open();
        small
    }

    #[test]
    fn no_block_is_handed_out_before_the_blocks_are_opened() {
        let mut small = SmallBlocks::new();
        assert_eq!(small.take(layout(8, 8)), None);
        small.open();
        assert!(small.take(layout(8, 8)).is_some());
    }

    #[test]
    fn small_allocations_get_distinct_blocks_until_none_is_free() {
        let mut small = opened();
        let mut seen = Vec::new();
        for _ in 0..SMALL_BLOCKS {
            let block = small.take(layout(8, 8)).expect("a free block");
            assert!(!seen.contains(&block), "each block handed out once");
            assert_eq!(block as usize % 16, 0);
            seen.push(block);
        }
        assert_eq!(
            small.take(layout(1, 1)),
            None,
            "all taken: the general heap"
        );
    }

    #[test]
    fn a_block_given_back_is_handed_out_again() {
        let mut small = opened();
        let first = small.take(layout(SMALL_BLOCK, 16)).unwrap();
        let second = small.take(layout(24, 8)).unwrap();
        assert!(small.give_back(first));
        assert_eq!(small.take(layout(3, 1)), Some(first));
        assert!(small.give_back(second));
        assert!(small.give_back(first));
        assert_eq!(small.take(layout(3, 1)), Some(first), "lowest free first");
    }

    #[test]
    fn large_or_over_aligned_allocations_are_not_served() {
        let mut small = opened();
        assert_eq!(small.take(layout(SMALL_BLOCK + 1, 1)), None);
        assert_eq!(small.take(layout(8, 32)), None);
    }

    #[test]
    fn addresses_that_are_not_block_starts_are_not_taken_back() {
        let mut small = opened();
        let block = small.take(layout(8, 8)).unwrap();
        let mut elsewhere = [0u8; 8];
        assert!(!small.give_back(elsewhere.as_mut_ptr()));
        assert!(!small.give_back(block.wrapping_add(8)), "inside a block");
        assert!(
            !small.give_back(block.wrapping_sub(SMALL_BLOCK)),
            "below the blocks"
        );
        assert!(
            !small.give_back(block.wrapping_add(SMALL_BLOCK * SMALL_BLOCKS)),
            "above the blocks"
        );
        assert!(small.give_back(block));
    }
}
