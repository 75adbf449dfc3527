//! The split-virtqueue layout Ankh's guest drivers use (virtio 1.x, section 2.7): one
//! [`SplitRing`] of [`QUEUE_SIZE`] entries holds the descriptor table, the avail ring
//! and the used ring next to each other:
//!
//! ```text
//! offset   0  descriptor table  16 x {addr u64, len u32, flags u16, next u16}  (16-aligned)
//! offset 256  avail ring        {flags u16, idx u16, ring[16] u16, used_event u16}  (2-aligned)
//! offset 296  used ring         {flags u16, idx u16, ring[16] {id u32, len u32},
//!                                avail_event u16}                          (4-aligned)
//! ```
//!
//! Both the IPC queues (`ankh_guest_rt::ipc::ring`) and the virtio-blk driver
//! (`ankh_blk::ring`) drive rings of this layout; the VMM's device side reads them
//! through one validated walker (`vmm/src/virtq.rs`).

use core::mem::offset_of;

/// Descriptors (and ring slots) per queue.
pub const QUEUE_SIZE: u16 = 16;

/// [`QUEUE_SIZE`] as an array length.
const N: usize = QUEUE_SIZE as usize;

/// Descriptor flag: the chain continues at `next`.
pub const DESC_F_NEXT: u16 = 1;

/// Descriptor flag: the buffer is device-writable (RX); otherwise device-readable (TX).
pub const DESC_F_WRITE: u16 = 2;

/// One descriptor: a buffer in guest memory (identity-mapped: address = pointer value).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Descriptor {
    /// Guest-physical address of the buffer.
    pub addr: u64,
    /// Length of the buffer in bytes.
    pub len: u32,
    /// [`DESC_F_NEXT`], [`DESC_F_WRITE`].
    pub flags: u16,
    /// Index of the next descriptor when `flags` has [`DESC_F_NEXT`].
    pub next: u16,
}

/// The avail ring: the heads of the chains the driver offers, in order.
#[derive(Debug)]
#[repr(C)]
pub struct AvailRing {
    /// Zero (no interrupts exist to suppress).
    pub flags: u16,
    /// Free-running count of entries ever added; the device reads up to here.
    pub idx: u16,
    /// Chain heads; entry `i` lives at `ring[i % QUEUE_SIZE]`.
    pub ring: [u16; N],
    /// Unused (no `VIRTIO_F_EVENT_IDX`); part of the layout.
    pub used_event: u16,
}

/// One used ring entry: a chain the device is done with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct UsedElem {
    /// Head index of the chain.
    pub id: u32,
    /// Bytes the device wrote into the chain (0 for TX chains).
    pub len: u32,
}

/// The used ring: the chains the device returned, in order.
#[derive(Debug)]
#[repr(C)]
pub struct UsedRing {
    /// Written by the device; ignored.
    pub flags: u16,
    /// Free-running count of entries the device ever added.
    pub idx: u16,
    /// Entries; entry `i` lives at `ring[i % QUEUE_SIZE]`.
    pub ring: [UsedElem; N],
    /// Unused (no `VIRTIO_F_EVENT_IDX`); part of the layout.
    pub avail_event: u16,
}

/// The memory of one split virtqueue (see the module docs for the layout).
#[derive(Debug)]
#[repr(C, align(16))]
pub struct SplitRing {
    /// The descriptor table.
    pub desc: [Descriptor; N],
    /// The avail ring (driver to device).
    pub avail: AvailRing,
    /// The used ring (device to driver).
    pub used: UsedRing,
}

impl SplitRing {
    /// An empty ring: every index and descriptor zero.
    pub const fn new() -> SplitRing {
        const EMPTY: Descriptor = Descriptor {
            addr: 0,
            len: 0,
            flags: 0,
            next: 0,
        };
        const UNUSED: UsedElem = UsedElem { id: 0, len: 0 };
        SplitRing {
            desc: [EMPTY; N],
            avail: AvailRing {
                flags: 0,
                idx: 0,
                ring: [0; N],
                used_event: 0,
            },
            used: UsedRing {
                flags: 0,
                idx: 0,
                ring: [UNUSED; N],
                avail_event: 0,
            },
        }
    }
}

impl Default for SplitRing {
    fn default() -> SplitRing {
        SplitRing::new()
    }
}

const _: () = assert!(offset_of!(SplitRing, avail) == 256);
const _: () = assert!(offset_of!(SplitRing, used) == 296);
