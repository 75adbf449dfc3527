//! The escape hatch: arbitrary TX descriptors, avail entries and notify values, for the
//! test images that check how the VMM handles malformed IPC (`ipc-bad`).
//!
//! Nothing here is validated: the VMM must be. Only the TX queue is exposed; the RX
//! chain stays the endpoint's own, so nothing a `RawTx` does can make the device write
//! anywhere but the endpoint's RX buffers.

use core::ptr;

use virtio_seep::message::{MessageHeader, HEADER_SIZE, INLINE_PAYLOAD_MAX};

use super::ring::Descriptor;
use super::{Ipc, Transport};

/// Raw access to an endpoint's TX queue (from [`Ipc::raw`]).
///
/// Chains offered here must be sent with [`RawTx::notify`] before the next normal
/// operation, which otherwise panics.
#[derive(Debug)]
pub struct RawTx<'a, T: Transport> {
    ipc: &'a mut Ipc<T>,
}

impl<'a, T: Transport> RawTx<'a, T> {
    /// Raw access to `ipc`'s TX queue.
    pub(super) fn new(ipc: &'a mut Ipc<T>) -> RawTx<'a, T> {
        RawTx { ipc }
    }

    /// Writes TX descriptor `index` (below `ring::QUEUE_SIZE`) as given: any address,
    /// length, flags and next index.
    ///
    /// # Panics
    ///
    /// If `index` is not below `ring::QUEUE_SIZE` (the table has no such entry).
    pub fn set_desc(&mut self, index: u16, desc: Descriptor) {
        self.ipc.tx.set_desc(index, desc);
    }

    /// Adds `head` (any value, even out of range) to the TX avail ring and publishes it.
    pub fn push_avail(&mut self, head: u16) {
        self.ipc.tx.push_avail(head);
    }

    /// Address of the endpoint's TX message buffer (`MESSAGE_BUFFER_SIZE` bytes), for a
    /// hand-made descriptor 0.
    pub fn message_buffer_addr(&self) -> u64 {
        self.ipc.tx_buf as u64
    }

    /// Writes `header` (as given: lengths are not checked against anything) and
    /// `payload` into the TX message buffer; returns its address.
    ///
    /// # Panics
    ///
    /// If `payload` is longer than `INLINE_PAYLOAD_MAX` (it would not fit the buffer; a
    /// header may still claim more).
    pub fn write_message(&mut self, header: MessageHeader, payload: &[u8]) -> u64 {
        assert!(
            payload.len() <= INLINE_PAYLOAD_MAX,
            "ipc: inline payload longer than INLINE_PAYLOAD_MAX"
        );
        // SAFETY: as in `Ipc::post`: the TX buffer is ours, 8-aligned, with room for a
        // header and INLINE_PAYLOAD_MAX bytes, and read by the device only during a notify.
        unsafe {
            ptr::write_volatile(self.ipc.tx_buf.cast::<MessageHeader>(), header);
            ptr::copy_nonoverlapping(
                payload.as_ptr(),
                self.ipc.tx_buf.add(HEADER_SIZE),
                payload.len(),
            );
        }
        self.message_buffer_addr()
    }

    /// The `Ipc` hypercall with any `value` (the RX chain is posted first, as always).
    /// Afterwards the endpoint forgets whatever happened on its queues: TX chains the
    /// device returned, and a message it may have delivered (which is dropped).
    pub fn notify(&mut self, value: u32) {
        self.ipc.post_rx();
        // SAFETY: TX chains offered here are only read by the device, whatever they
        // name; the RX chain holds the endpoint's own buffers, which nothing borrows
        // (a `Received` would borrow the `Ipc`, which this `RawTx` borrows mutably).
        unsafe { self.ipc.transport.notify(value) };
        self.ipc.tx.skip_used();
        if self.ipc.rx.skip_used() > 0 {
            self.ipc.rx_posted = false;
        }
    }
}
