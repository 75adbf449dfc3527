//! How [`super::Ipc`] reaches the device: the two IPC hypercalls in a guest, a fake
//! device in host tests.

use virtio_seep::queue::QueueSetup;

use crate::hypercall;

/// The device side of a queue pair, as the driver sees it: registration and notify.
///
/// # Safety
///
/// An implementation must behave like the VMM's device: it touches the rings and the
/// buffers posted on them only inside [`Transport::setup`] and [`Transport::notify`],
/// writes only the used rings and the buffers posted device-writable on RX, and reports
/// every chain it consumed in the used rings. [`super::Ipc`] relies on it for memory
/// safety (the slices of a `Received` are only valid because nothing writes the RX
/// buffers outside a notify).
pub unsafe trait Transport {
    /// Registers the rings named by `setup` (the `IpcSetup` hypercall).
    ///
    /// # Safety
    ///
    /// `setup` must point to a readable `QueueSetup` whose rings stay valid and reserved
    /// for the driver and the device for the rest of the domain's life.
    unsafe fn setup(&mut self, setup: *const QueueSetup);

    /// Notifies the device with `value` (an encoded `IpcOp` and source: the `Ipc`
    /// hypercall). The device consumes every TX chain, then may deliver one message into
    /// the chain posted on RX.
    ///
    /// # Safety
    ///
    /// Every chain offered on TX must name memory the device may read, every chain on
    /// RX memory it may write, and no Rust reference may cover the latter.
    unsafe fn notify(&mut self, value: u32);
}

/// The real transport: the `IpcSetup` and `Ipc` hypercalls (one VM exit each).
///
/// On the host (`cfg(test)`) the hypercalls panic; tests use a fake transport.
#[derive(Debug)]
pub struct Hypercalls {
    /// Keeps the type from being built outside the runtime (only `Ipc::init` does).
    _private: (),
}

impl Hypercalls {
    /// The transport; only `Ipc::init` creates one, so that each domain registers its
    /// queue pair once.
    #[cfg_attr(test, allow(dead_code))]
    pub(crate) const fn new() -> Hypercalls {
        Hypercalls { _private: () }
    }
}

// SAFETY: the VMM is the device this contract describes (virtio-seep's `queue` module):
// it accesses guest memory only while the vCPU is stopped in one of these hypercalls, and
// writes only used rings and RX buffers after validating their addresses.
unsafe impl Transport for Hypercalls {
    unsafe fn setup(&mut self, setup: *const QueueSetup) {
        // SAFETY: forwarded: the caller keeps the rings reserved for the VMM.
        unsafe { hypercall::ipc_setup(setup) }
    }

    unsafe fn notify(&mut self, value: u32) {
        // SAFETY: forwarded: the caller guarantees the chains' memory may be accessed.
        unsafe { hypercall::ipc(value) }
    }
}
