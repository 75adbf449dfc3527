//! The virtio 1.x split virtqueue, driver side: the one driver of the guests, used by
//! the IPC layer (both queues of a domain, [`QUEUE_SIZE`] entries) and by the
//! virtio-blk driver (`ankh_blk::ring`, up to [`QUEUE_SIZE`] entries).
//!
//! One [`SplitRing`] holds the three parts of a queue next to each other (432 bytes for
//! [`QUEUE_SIZE`] = 16, so both queues of a domain share a page with its message
//! buffers); a smaller queue uses the first `size` entries of each part:
//!
//! ```text
//! offset   0  descriptor table  16 x {addr u64, len u32, flags u16, next u16}  (16-aligned)
//! offset 256  avail ring        {flags u16, idx u16, ring[16] u16, used_event u16}  (2-aligned)
//! offset 296  used ring         {flags u16, idx u16, ring[16] {id u32, len u32},
//!                                avail_event u16}                          (4-aligned)
//! ```
//!
//! The device (the VMM) reads the descriptor table and the avail ring and writes the
//! used ring, but only while this domain's vCPU is stopped in a hypercall or an MMIO
//! notify. So no CPU
//! fence is needed, only the compiler's cooperation: every ring access is volatile, and
//! a [`compiler_fence`] keeps the avail ring entry (and the descriptors and buffers
//! before it) ahead of the `avail.idx` store that publishes it. `fence()` would emit
//! `mfence`, an SSE2 instruction this project's guests must not contain.
//!
//! The driver keeps free-running 16-bit indexes, as virtio does: `avail.idx` and
//! `used.idx` wrap at 65536 and ring slots are `idx % QUEUE_SIZE`.

use core::mem::offset_of;
use core::ptr;
use core::sync::atomic::{compiler_fence, Ordering};

use virtio_seep::queue::RingAddresses;

pub use virtio_seep::split::{
    AvailRing, Descriptor, SplitRing, UsedElem, UsedRing, DESC_F_NEXT, DESC_F_WRITE, QUEUE_SIZE,
};

/// Where the three parts of the ring at `ring` are, as `IpcSetup` wants them (a
/// queue of [`QUEUE_SIZE`] entries).
pub fn ring_addresses(ring: *const SplitRing) -> RingAddresses {
    let base = ring as u64;
    RingAddresses {
        desc: base + offset_of!(SplitRing, desc) as u64,
        avail: base + offset_of!(SplitRing, avail) as u64,
        used: base + offset_of!(SplitRing, used) as u64,
        size: QUEUE_SIZE,
        reserved: [0; 3],
    }
}

/// The driver of one queue: the ring's address, its size and the driver's shadow
/// indexes.
#[derive(Debug)]
pub struct Queue {
    /// The ring; valid and reserved for this driver and the device (see [`Queue::new`]).
    ring: *mut SplitRing,
    /// Entries in use: a power of two, at most [`QUEUE_SIZE`].
    size: u16,
    /// Free-running index of the next avail entry (equal to what `avail.idx` holds).
    next_avail: u16,
    /// Free-running index of the next used entry to look at.
    next_used: u16,
}

impl Queue {
    /// The driver of a queue of `size` entries in the ring at `ring`, whose indexes must
    /// be zero (a new ring).
    ///
    /// # Safety
    ///
    /// `ring` must be valid for reads and writes and suitably aligned for as long as the
    /// queue exists, and nothing but this driver and the device may access it.
    ///
    /// # Panics
    ///
    /// If `size` is not a power of two up to [`QUEUE_SIZE`].
    pub unsafe fn new(ring: *mut SplitRing, size: u16) -> Queue {
        assert!(
            size.is_power_of_two() && size <= QUEUE_SIZE,
            "virtq: queue size must be a power of two up to QUEUE_SIZE"
        );
        Queue {
            ring,
            size,
            next_avail: 0,
            next_used: 0,
        }
    }

    /// Entries of the queue.
    pub fn size(&self) -> u16 {
        self.size
    }

    /// Where the ring is and how large the queue is, for `IpcSetup` or the device's
    /// queue registers.
    pub fn addresses(&self) -> RingAddresses {
        RingAddresses {
            size: self.size,
            ..ring_addresses(self.ring)
        }
    }

    /// Writes descriptor `index` (below the queue size).
    ///
    /// # Panics
    ///
    /// If `index` is not below the queue size.
    pub fn set_desc(&mut self, index: u16, desc: Descriptor) {
        assert!(index < self.size, "virtq: descriptor index out of range");
        // SAFETY: the ring is valid and exclusively ours (`new`'s contract), `index` is in
        // bounds; the device reads the table only during a hypercall, not concurrently.
        unsafe {
            ptr::write_volatile(&raw mut (*self.ring).desc[usize::from(index)], desc);
        }
    }

    /// Offers the chain starting at descriptor `head`: writes the next avail ring entry,
    /// then (after a compiler fence) the new `avail.idx`. The device sees it at the next
    /// notify. `head` is not checked (the malformed-input tests offer bad heads).
    pub fn push_avail(&mut self, head: u16) {
        let slot = usize::from(self.next_avail % self.size);
        self.next_avail = self.next_avail.wrapping_add(1);
        // SAFETY: as in `set_desc`; `slot` < size <= QUEUE_SIZE.
        unsafe {
            ptr::write_volatile(&raw mut (*self.ring).avail.ring[slot], head);
        }
        // Descriptors, buffers and the ring entry above must be in memory before the
        // index that publishes them (the device reads them in that order).
        compiler_fence(Ordering::Release);
        // SAFETY: as above.
        unsafe {
            ptr::write_volatile(&raw mut (*self.ring).avail.idx, self.next_avail);
        }
    }

    /// The free-running index of the next avail entry (= the published `avail.idx`).
    pub fn avail_idx(&self) -> u16 {
        self.next_avail
    }

    /// The used index the device published (free-running).
    pub fn device_used_idx(&self) -> u16 {
        // SAFETY: as in `set_desc`; the device writes it only during a hypercall.
        let idx = unsafe { ptr::read_volatile(&raw const (*self.ring).used.idx) };
        // Used entries (and the buffers they return) are read after the index.
        compiler_fence(Ordering::Acquire);
        idx
    }

    /// The next used entry the device added, if any, and moves past it.
    pub fn pop_used(&mut self) -> Option<UsedElem> {
        if self.device_used_idx() == self.next_used {
            return None;
        }
        let slot = usize::from(self.next_used % self.size);
        self.next_used = self.next_used.wrapping_add(1);
        // SAFETY: as in `set_desc`; `slot` < size <= QUEUE_SIZE.
        Some(unsafe { ptr::read_volatile(&raw const (*self.ring).used.ring[slot]) })
    }

    /// Skips every used entry the device added so far; returns how many there were.
    pub fn skip_used(&mut self) -> u16 {
        let used = self.device_used_idx();
        let count = used.wrapping_sub(self.next_used);
        self.next_used = used;
        count
    }

    /// Chains offered and not yet returned through the used entries seen so far.
    pub fn in_flight(&self) -> u16 {
        self.next_avail.wrapping_sub(self.next_used)
    }

    /// Entries the device says it completed beyond the ones the driver has seen.
    pub fn unseen_used(&self) -> u16 {
        self.device_used_idx().wrapping_sub(self.next_used)
    }
}
