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

/// The per-request working set of IPC: TX and RX rings, the TX buffer for header +
/// payload of the message being sent, the RX buffer the VMM writes header + payload of
/// a delivered message into, and the `IpcSetup` argument.
///
/// Every page a request writes costs a copy at each checkpoint of a recoverable server,
/// and every page it touches costs after each VM exit. So in a guest the area shares
/// one page, the hot page (`.bss.ankh_hot`, see `guest.ld`), with the allocator's
/// state, which most requests write too. The RX bulk buffer lives elsewhere: its pages
/// are touched only by messages that carry bulk data.
#[derive(Debug)]
#[repr(C, align(64))]
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

/// Room the area leaves in the hot page for the other hot statics (the linker script
/// checks the sum).
const _: () = assert!(core::mem::size_of::<IpcArea>() <= 2048);

/// The guest's IPC memory: the area, in the hot page, and the 1 MiB RX bulk buffer, in
/// `.bss` (untouched pages of it cost nothing).
#[cfg(not(test))]
pub(super) mod storage {
    use core::cell::UnsafeCell;
    use core::sync::atomic::{AtomicBool, Ordering};

    use super::{IpcArea, BULK_MAX};

    /// The RX bulk buffer: room for the largest bulk data of a message.
    #[repr(C, align(4096))]
    struct BulkBuffer([u8; BULK_MAX as usize]);

    /// A static handed out once, by [`take`].
    struct Once<T>(UnsafeCell<T>);

    // SAFETY: the contents are only reached through `take`, which hands out the single
    // `&mut` to each static at most once; a domain has one vCPU anyway.
    unsafe impl<T> Sync for Once<T> {}

    /// The area, in the hot page (zero-initialized, as `.bss` requires).
    #[link_section = ".bss.ankh_hot"]
    static AREA: Once<IpcArea> = Once(UnsafeCell::new(IpcArea::new()));

    static BULK: Once<BulkBuffer> = Once(UnsafeCell::new(BulkBuffer([0; BULK_MAX as usize])));

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
        let (area, bulk) = unsafe { (&mut *AREA.0.get(), &mut *BULK.0.get()) };
        Some((area, &mut bulk.0[..]))
    }
}
