//! The request queue, driver side: one virtio 1.x split virtqueue of up to
//! [`QUEUE_SIZE`] entries, with the request headers and status bytes beside it, all
//! in one page ([`QueueMemory`]), so a request touches few pages.
//!
//! ```text
//! offset   0  descriptor table  16 x {addr u64, len u32, flags u16, next u16}
//! offset 256  avail ring        {flags, idx, ring[16], used_event}       (u16s)
//! offset 296  used ring         {flags, idx, ring[16] {id u32, len u32}, avail_event}
//! offset 432  request headers   16 x RequestHeader (slot = head descriptor index)
//! offset 688  status bytes      16 x u8            (slot = head descriptor index)
//! ```
//!
//! The ring itself is driven by the guests' one split-ring driver
//! (`ankh_guest_rt::ipc::ring::Queue`, which the IPC layer uses too); this module adds
//! the request headers and status bytes. The device (the VMM) writes the status bytes
//! only during a notify, while this vCPU is stopped; every access to them is volatile.

use core::cell::UnsafeCell;
use core::mem::offset_of;
use core::ptr;
use core::sync::atomic::{AtomicBool, Ordering};

use ankh_guest_rt::ipc::ring::Queue;
use virtio_seep::abi::blk::RequestHeader;
use virtio_seep::queue::RingAddresses;

use virtio_seep::split::SplitRing;
pub use virtio_seep::split::{Descriptor, UsedElem, DESC_F_NEXT, DESC_F_WRITE, QUEUE_SIZE};

const N: usize = QUEUE_SIZE as usize;

/// The memory of the request queue (see the module docs for the layout).
#[derive(Debug)]
#[repr(C, align(4096))]
pub struct QueueMemory {
    ring: SplitRing,
    headers: [RequestHeader; N],
    statuses: [u8; N],
}

const _: () = assert!(offset_of!(QueueMemory, ring) == 0);
const _: () = assert!(core::mem::size_of::<QueueMemory>() <= 4096);

impl QueueMemory {
    /// All zero.
    pub const fn new() -> QueueMemory {
        const HEADER: RequestHeader = RequestHeader {
            kind: 0,
            reserved: 0,
            sector: 0,
        };
        QueueMemory {
            ring: SplitRing::new(),
            headers: [HEADER; N],
            statuses: [0; N],
        }
    }
}

impl Default for QueueMemory {
    fn default() -> QueueMemory {
        QueueMemory::new()
    }
}

/// A [`QueueMemory`] in a static (`.bss`), handed out once.
#[derive(Debug)]
pub struct StaticQueue {
    memory: UnsafeCell<QueueMemory>,
    taken: AtomicBool,
}

// SAFETY: the memory is only reached through `take`, which hands it out at most once.
unsafe impl Sync for StaticQueue {}

impl StaticQueue {
    /// Zeroed queue memory.
    pub const fn new() -> StaticQueue {
        StaticQueue {
            memory: UnsafeCell::new(QueueMemory::new()),
            taken: AtomicBool::new(false),
        }
    }

    /// The memory, the first time; `None` after.
    // A `&mut` from a `&`: sound because the flag hands it out only once.
    #[allow(clippy::mut_from_ref)]
    pub fn take(&'static self) -> Option<&'static mut QueueMemory> {
        // `swap` is an `xchg`: no fence instruction, SSE-free.
        if self.taken.swap(true, Ordering::Relaxed) {
            return None;
        }
        // SAFETY: the flag lets this line run once, so this is the only reference to
        // the memory ever made; the static lives forever.
        Some(unsafe { &mut *self.memory.get() })
    }
}

impl Default for StaticQueue {
    fn default() -> StaticQueue {
        StaticQueue::new()
    }
}

/// The driver's side of the queue: the ring's driver and the header and status slots.
#[derive(Debug)]
pub struct Ring {
    /// The memory; the ring in it is reserved for `queue` and the device.
    memory: *mut QueueMemory,
    queue: Queue,
}

impl Ring {
    /// The driver of a fresh (zeroed) queue of `size` entries (a power of two, at most
    /// [`QUEUE_SIZE`]) in `memory`.
    ///
    /// # Panics
    ///
    /// If `size` is not a power of two up to [`QUEUE_SIZE`].
    pub fn new(memory: &'static mut QueueMemory, size: u16) -> Ring {
        *memory = QueueMemory::new();
        let memory: *mut QueueMemory = memory;
        // SAFETY: `memory` came from a `&'static mut`, so the ring in it is valid,
        // aligned, zeroed (just above) and reachable only through this driver from now
        // on; `&raw mut` creates no intermediate reference.
        let queue = unsafe { Queue::new(&raw mut (*memory).ring, size) };
        Ring { memory, queue }
    }

    /// Entries of the queue.
    pub fn size(&self) -> u16 {
        self.queue.size()
    }

    /// Addresses of the descriptor table, the avail ring and the used ring, and the
    /// queue size.
    pub fn addresses(&self) -> RingAddresses {
        self.queue.addresses()
    }

    /// Writes descriptor `index`.
    ///
    /// # Panics
    ///
    /// If `index` is not below the queue size.
    pub fn set_desc(&mut self, index: u16, desc: Descriptor) {
        self.queue.set_desc(index, desc);
    }

    /// Writes the request header of slot `slot` and returns its address.
    ///
    /// # Panics
    ///
    /// If `slot` is not below [`QUEUE_SIZE`].
    pub fn set_header(&mut self, slot: u16, header: RequestHeader) -> u64 {
        let slot = usize::from(slot);
        assert!(slot < N, "blk: header slot out of range");
        // SAFETY: the memory is ours (`new` took a `&'static mut`) and `slot` is in
        // bounds; the device reads headers only during a notify.
        unsafe {
            let at = &raw mut (*self.memory).headers[slot];
            ptr::write_volatile(at, header);
            at as u64
        }
    }

    /// Sets the status byte of slot `slot` to `value` (a value the device never
    /// writes, so a request it did not complete is seen) and returns its address.
    ///
    /// # Panics
    ///
    /// If `slot` is not below [`QUEUE_SIZE`].
    pub fn set_status(&mut self, slot: u16, value: u8) -> u64 {
        let slot = usize::from(slot);
        assert!(slot < N, "blk: status slot out of range");
        // SAFETY: as in `set_header`.
        unsafe {
            let at = &raw mut (*self.memory).statuses[slot];
            ptr::write_volatile(at, value);
            at as u64
        }
    }

    /// The status byte of slot `slot`, as the device left it.
    ///
    /// # Panics
    ///
    /// If `slot` is not below [`QUEUE_SIZE`].
    pub fn status(&self, slot: u16) -> u8 {
        let slot = usize::from(slot);
        assert!(slot < N, "blk: status slot out of range");
        // SAFETY: as in `set_header`; the device writes status bytes only during a
        // notify.
        unsafe { ptr::read_volatile(&raw const (*self.memory).statuses[slot]) }
    }

    /// Offers the chain at `head`; the device sees it at the next notify. `head` is
    /// not checked (the malformed-input image offers bad heads).
    pub fn publish(&mut self, head: u16) {
        self.queue.push_avail(head);
    }

    /// The next used entry the driver has not seen, if the device added one.
    pub fn pop_used(&mut self) -> Option<UsedElem> {
        self.queue.pop_used()
    }

    /// Chains offered and not yet seen completed.
    pub fn in_flight(&self) -> u16 {
        self.queue.in_flight()
    }

    /// Entries the device says it completed beyond the ones the driver has seen.
    pub fn unseen_used(&self) -> u16 {
        self.queue.unseen_used()
    }
}
