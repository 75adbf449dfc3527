//! The memory of a domain's IPC: both rings and the message buffers in one page, and
//! (in a guest) the static storage `Ipc::init` takes them from.

#[cfg(not(test))]
use virtio_seep::message::BULK_MAX;
use virtio_seep::message::MESSAGE_BUFFER_SIZE;
use virtio_seep::queue::{QueueSetup, RingAddresses};

use super::ring::SplitRing;

/// A buffer for one header and the largest inline payload, 8-aligned so that the header
/// can be read and written in place.
#[derive(Debug)]
#[repr(C, align(8))]
pub(super) struct MessageBuffer(pub(super) [u8; MESSAGE_BUFFER_SIZE]);

/// The per-request working set of IPC, in one page: TX and RX rings, the TX buffer for
/// header + payload of the message being sent, the RX buffer the VMM writes header +
/// payload of a delivered message into, and the `IpcSetup` argument.
///
/// Every page a request touches costs after each VM exit, so all of this shares one
/// (1440 of 4096 bytes). The RX bulk buffer lives elsewhere: its pages are touched only
/// by messages that carry bulk data.
#[derive(Debug)]
#[repr(C, align(4096))]
pub struct IpcArea {
    /// The TX queue (domain to VMM).
    pub(super) tx: SplitRing,
    /// The RX queue (VMM to domain).
    pub(super) rx: SplitRing,
    /// Header + inline payload of the message being sent (TX descriptor 0).
    pub(super) tx_buf: MessageBuffer,
    /// Header + inline payload of the message delivered last (RX descriptor 0).
    pub(super) rx_buf: MessageBuffer,
    /// The argument of `IpcSetup`, which the VMM reads from guest memory.
    pub(super) setup: QueueSetup,
}

impl IpcArea {
    /// A zeroed area.
    pub const fn new() -> IpcArea {
        const NO_RING: RingAddresses = RingAddresses {
            desc: 0,
            avail: 0,
            used: 0,
            size: 0,
            reserved: [0; 3],
        };
        IpcArea {
            tx: SplitRing::new(),
            rx: SplitRing::new(),
            tx_buf: MessageBuffer([0; MESSAGE_BUFFER_SIZE]),
            rx_buf: MessageBuffer([0; MESSAGE_BUFFER_SIZE]),
            setup: QueueSetup {
                tx: NO_RING,
                rx: NO_RING,
            },
        }
    }
}

impl Default for IpcArea {
    fn default() -> IpcArea {
        IpcArea::new()
    }
}

const _: () = assert!(core::mem::size_of::<IpcArea>() == 4096);

/// The guest's IPC memory: the area and the 1 MiB RX bulk buffer, in `.bss` (untouched
/// pages of it cost nothing).
#[cfg(not(test))]
pub(super) mod storage {
    use core::cell::UnsafeCell;
    use core::sync::atomic::{AtomicBool, Ordering};

    use super::{IpcArea, BULK_MAX};

    /// The RX bulk buffer: room for the largest bulk data of a message.
    #[repr(C, align(4096))]
    struct BulkBuffer([u8; BULK_MAX as usize]);

    /// The statics, handed out once.
    struct Storage {
        area: UnsafeCell<IpcArea>,
        bulk: UnsafeCell<BulkBuffer>,
    }

    // SAFETY: the contents are only reached through `take`, which hands out the single
    // `&mut` to each part at most once; a domain has one vCPU anyway.
    unsafe impl Sync for Storage {}

    static STORAGE: Storage = Storage {
        area: UnsafeCell::new(IpcArea::new()),
        bulk: UnsafeCell::new(BulkBuffer([0; BULK_MAX as usize])),
    };

    /// Whether `take` ran.
    static TAKEN: AtomicBool = AtomicBool::new(false);

    /// The area and the bulk buffer, the first time; `None` afterwards.
    pub(in crate::ipc) fn take() -> Option<(&'static mut IpcArea, &'static mut [u8])> {
        // `swap` is an `xchg`: no fence instruction, SSE-free.
        if TAKEN.swap(true, Ordering::Relaxed) {
            return None;
        }
        // SAFETY: `TAKEN` makes this line run once, so these are the only references to
        // the two statics ever created; they are valid for `'static`.
        let (area, bulk) = unsafe { (&mut *STORAGE.area.get(), &mut *STORAGE.bulk.get()) };
        Some((area, &mut bulk.0[..]))
    }
}
