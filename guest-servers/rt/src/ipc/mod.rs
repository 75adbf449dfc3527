//! Inter-domain IPC: messages to and from other domains, through the domain's virtio
//! queue pair (`virtio_seep::queue`, `virtio_seep::message`).
//!
//! ```ignore
//! let mut ipc = Ipc::init();
//! let echo = boot.peer("echo").unwrap();
//! let reply = ipc.sendrec(echo, TEST_ECHO, b"hi", &[])?;   // one VM exit
//! assert_eq!(reply.payload, b"hi");
//! ```
//!
//! # How it works
//!
//! [`Ipc::init`] registers a TX and an RX split virtqueue ([`ring`], 16 entries each)
//! with the `IpcSetup` hypercall, and posts one RX chain: a 256-byte buffer for header +
//! inline payload and a 1 MiB buffer for bulk data, both in `.bss`.
//!
//! Every operation is one `Ipc` hypercall (one VM exit):
//! - sending ([`Ipc::send`], [`Ipc::reply`]) offers one TX chain: descriptor 0 is a
//!   static 256-byte buffer holding the `MessageHeader` and the inline payload,
//!   descriptor 1 (if there is bulk data) points straight at the caller's slice
//!   (identity-mapped memory: address = pointer value); then the notify with
//!   `IpcOp::Flush`. The VMM copies the message out before it returns, so the slices
//!   are free again afterwards;
//! - waiting ([`Ipc::receive`], [`Ipc::receive_from`], [`Ipc::sendrec`],
//!   [`Ipc::reply_recv`]) notifies with `IpcOp::Receive` or `IpcOp::AwaitReply`; the VMM
//!   first consumes TX, then delivers one message into the RX chain and resumes the
//!   domain. The [`Received`] message borrows the RX buffers (and so the `Ipc`) until it
//!   is dropped; the RX chain is posted again before the next hypercall.
//!
//! Order of publication: descriptors and buffers, then the avail ring entry, a compiler
//! fence, then `avail.idx`, then the hypercall (whose `asm!` is a compiler barrier too).
//! No CPU fence is needed: the VMM touches the rings only while the vCPU is stopped in
//! the hypercall (and `mfence`/`lfence` are SSE2 instructions, banned in guests).
//!
//! # Errors
//!
//! Invalid messages (bad lengths, unknown opcode, forbidden destination, reply to a
//! request never received, storms) make the VMM stop the domain; they never come back as
//! errors. What comes back as an [`Errno`]:
//! - [`Ipc::sendrec`]: the reply's non-zero `status`, whether the callee sent it (e.g.
//!   `ENOSYS`) or the VMM did for a failed call (`EDEADLK`, `EDEADSRCDST`);
//! - [`Ipc::receive`], [`Ipc::receive_from`], [`Ipc::reply_recv`]: a message the VMM
//!   itself delivers instead (source `VMM_DOMAIN`, opcode `REPLY`, non-zero status):
//!   `EDEADLK` when the awaited domain waits, transitively, for us; `EDEADSRCDST` when
//!   it stopped.
//!
//! Caller bugs the runtime can see (an inline payload over `INLINE_PAYLOAD_MAX` bytes,
//! bulk data over `BULK_MAX`) panic.
//!
//! # Host tests
//!
//! The driver is generic over its [`Transport`]; `cfg(test)` builds drive it against a
//! fake device (`tests.rs`) that implements the VMM's side of the queues.

mod area;
mod raw;
pub mod ring;
mod transport;

#[cfg(test)]
mod tests;

use core::ptr;
use core::slice;

use virtio_seep::errno::{Errno, OK};
use virtio_seep::message::{
    DomainId, MessageHeader, BULK_MAX, FLAG_TRUNCATED, HEADER_SIZE, INLINE_PAYLOAD_MAX,
    MESSAGE_BUFFER_SIZE, VMM_DOMAIN,
};
use virtio_seep::opcode::{self, REPLY};
use virtio_seep::queue::{IpcOp, QueueSetup};

pub use area::IpcArea;
pub use raw::RawTx;
use ring::{Descriptor, Queue, DESC_F_NEXT, DESC_F_WRITE, QUEUE_SIZE};
pub use transport::{Hypercalls, Transport};

/// [`HEADER_SIZE`] as a descriptor length (32: the conversion is lossless).
#[allow(clippy::cast_possible_truncation)]
const HEADER_LEN: u32 = HEADER_SIZE as u32;

/// [`MESSAGE_BUFFER_SIZE`] as a descriptor length (256: the conversion is lossless).
#[allow(clippy::cast_possible_truncation)]
const MESSAGE_BUFFER_LEN: u32 = MESSAGE_BUFFER_SIZE as u32;

/// Largest source domain id a receive can name (24 bits of the hypercall value).
pub const SOURCE_MAX: DomainId = (1 << 24) - 1;

/// A message delivered to this domain. It borrows the RX buffers: drop it (copy what
/// must be kept) before the next IPC operation.
#[derive(Debug)]
pub struct Received<'a> {
    /// The header as the VMM delivered it: `source` is the true sender, `request_id` is
    /// set on requests (answer with [`Ipc::reply`] and this id) and on replies.
    pub header: MessageHeader,
    /// The inline payload (`header.payload_len` bytes).
    pub payload: &'a [u8],
    /// The bulk data; shorter than `header.bulk_len` when [`Received::truncated`].
    pub bulk: &'a [u8],
}

impl Received<'_> {
    /// Whether the bulk data did not fit the RX bulk buffer (never with the 1 MiB buffer
    /// of [`Ipc::init`]).
    pub fn truncated(&self) -> bool {
        self.header.flags & FLAG_TRUNCATED != 0
    }

    /// Whether the sender waits for a reply (the opcode expects one): the receiver must
    /// answer it with [`Ipc::reply`] or [`Ipc::reply_recv`], now or later, exactly once.
    pub fn is_request(&self) -> bool {
        opcode::lookup(self.header.opcode).is_some_and(|info| info.expects_reply)
    }
}

/// A bulk data segment for a TX descriptor: address and length.
#[derive(Clone, Copy, Debug)]
struct Segment {
    addr: u64,
    len: u32,
}

impl Segment {
    /// The segment of `bulk`.
    ///
    /// # Panics
    ///
    /// If `bulk` is longer than `BULK_MAX`.
    fn of(bulk: &[u8]) -> Segment {
        assert!(
            bulk.len() <= BULK_MAX as usize,
            "ipc: bulk data longer than BULK_MAX"
        );
        Segment {
            addr: bulk.as_ptr() as u64,
            len: u32::try_from(bulk.len()).unwrap_or(BULK_MAX),
        }
    }
}

/// The domain's IPC endpoint: its queue pair, the message buffers and the RX bulk
/// buffer. One per domain ([`Ipc::init`]).
///
/// Every method is one `Ipc` hypercall (one VM exit).
#[derive(Debug)]
pub struct Ipc<T: Transport = Hypercalls> {
    /// TX queue driver.
    tx: Queue,
    /// RX queue driver.
    rx: Queue,
    /// The TX message buffer (`MESSAGE_BUFFER_SIZE` bytes, 8-aligned).
    tx_buf: *mut u8,
    /// The RX message buffer (`MESSAGE_BUFFER_SIZE` bytes, 8-aligned).
    rx_buf: *mut u8,
    /// The RX bulk buffer (`bulk_cap` bytes).
    bulk: *mut u8,
    /// Size of the RX bulk buffer, at most `BULK_MAX`.
    bulk_cap: u32,
    /// Whether the RX chain is offered to the device (and no `Received` covers it).
    rx_posted: bool,
    /// Bytes of bulk data the last delivered message left in the RX bulk buffer.
    last_bulk_len: u32,
    /// The device.
    transport: T,
}

#[cfg(not(test))]
impl Ipc {
    /// Sets up the domain's IPC: registers its queue pair with the VMM (the `IpcSetup`
    /// hypercall, one exit) and posts the RX buffers.
    ///
    /// # Panics
    ///
    /// When called a second time (a domain registers its queues once).
    pub fn init() -> Ipc {
        let Some((area, bulk)) = area::storage::take() else {
            panic!("ipc: Ipc::init called twice");
        };
        Ipc::with_transport(area, bulk, Hypercalls::new())
    }
}

impl<T: Transport> Ipc<T> {
    /// An endpoint over `area` and the RX bulk buffer `bulk` (only its first `BULK_MAX`
    /// bytes are used), driving the device `transport`: registers the queues with
    /// [`Transport::setup`] and posts the RX chain. Guests use [`Ipc::init`]; host tests
    /// pass a fake device.
    pub fn with_transport(
        area: &'static mut IpcArea,
        bulk: &'static mut [u8],
        transport: T,
    ) -> Ipc<T> {
        *area = IpcArea::new();
        let area: *mut IpcArea = area;
        let bulk_cap = u32::try_from(bulk.len()).unwrap_or(BULK_MAX).min(BULK_MAX);
        // SAFETY: `area` comes from a `&'static mut`, so the rings in it are valid,
        // aligned, zeroed (just above) and reachable only through this endpoint from now
        // on; `&raw mut` creates no intermediate reference.
        let (tx, rx, tx_buf, rx_buf) = unsafe {
            (
                Queue::new(&raw mut (*area).tx, QUEUE_SIZE),
                Queue::new(&raw mut (*area).rx, QUEUE_SIZE),
                (&raw mut (*area).tx_buf).cast::<u8>(),
                (&raw mut (*area).rx_buf).cast::<u8>(),
            )
        };
        let mut ipc = Ipc {
            tx,
            rx,
            tx_buf,
            rx_buf,
            bulk: bulk.as_mut_ptr(),
            bulk_cap,
            rx_posted: false,
            last_bulk_len: 0,
            transport,
        };
        let setup = QueueSetup {
            tx: ipc.tx.addresses(),
            rx: ipc.rx.addresses(),
        };
        // SAFETY: `area` is exclusively ours (see above).
        let setup_ptr = unsafe {
            let setup_ptr = &raw mut (*area).setup;
            ptr::write_volatile(setup_ptr, setup);
            setup_ptr
        };
        // The RX chain never changes: descriptor 0 the message buffer, 1 the bulk buffer.
        let bulk_flag = if bulk_cap > 0 { DESC_F_NEXT } else { 0 };
        ipc.rx.set_desc(
            0,
            Descriptor {
                addr: rx_buf as u64,
                len: MESSAGE_BUFFER_LEN,
                flags: DESC_F_WRITE | bulk_flag,
                next: 1,
            },
        );
        ipc.rx.set_desc(
            1,
            Descriptor {
                addr: ipc.bulk as u64,
                len: bulk_cap,
                flags: DESC_F_WRITE,
                next: 0,
            },
        );
        // SAFETY: the setup names the two rings of `area`, reserved for the driver and the
        // device for good: the endpoint owns them and is the only one to touch them.
        unsafe { ipc.transport.setup(setup_ptr) };
        ipc.post_rx();
        ipc
    }

    /// Sends a one-way message (an opcode that expects no reply, e.g. `TEST_NOTIFY`) to
    /// `to`, with an inline `payload` and `bulk` data. Never blocks.
    ///
    /// # Panics
    ///
    /// If `payload` is longer than `INLINE_PAYLOAD_MAX` or `bulk` than `BULK_MAX`.
    pub fn send(&mut self, to: DomainId, opcode: u16, payload: &[u8], bulk: &[u8]) {
        self.post(message_header(to, opcode), payload, Segment::of(bulk));
        self.notify(IpcOp::Flush.encode(VMM_DOMAIN));
    }

    /// Sends the request `opcode` to `to` and waits for its reply (one exit).
    ///
    /// Returns the reply (opcode `REPLY`, status 0), or `Err` with its non-zero status:
    /// the callee's error, or the VMM's for a failed call (`EDEADLK`: the callee waits,
    /// transitively, for us; `EDEADSRCDST`: it stopped before answering).
    ///
    /// # Panics
    ///
    /// As [`Ipc::send`]; and if the VMM delivers something other than a reply.
    pub fn sendrec(
        &mut self,
        to: DomainId,
        opcode: u16,
        payload: &[u8],
        bulk: &[u8],
    ) -> Result<Received<'_>, Errno> {
        self.post(message_header(to, opcode), payload, Segment::of(bulk));
        self.notify(IpcOp::AwaitReply.encode(VMM_DOMAIN));
        let reply = self.take_message();
        assert!(
            reply.header.opcode == REPLY,
            "ipc: sendrec was answered by a message that is not a reply"
        );
        if reply.header.status != OK {
            return Err(reply.header.status);
        }
        Ok(reply)
    }

    /// Waits for the next message from any domain.
    pub fn receive(&mut self) -> Result<Received<'_>, Errno> {
        self.notify(IpcOp::Receive.encode(VMM_DOMAIN));
        self.take_checked()
    }

    /// Waits for the next message from domain `from` (others stay queued). `Err`:
    /// `EDEADLK` if `from` waits (transitively) for us, `EDEADSRCDST` if it stopped.
    ///
    /// # Panics
    ///
    /// If `from` is 0 (use [`Ipc::receive`]) or above [`SOURCE_MAX`].
    pub fn receive_from(&mut self, from: DomainId) -> Result<Received<'_>, Errno> {
        assert!(
            from != VMM_DOMAIN && from <= SOURCE_MAX,
            "ipc: receive_from needs a domain id in 1..=SOURCE_MAX"
        );
        self.notify(IpcOp::Receive.encode(from));
        self.take_checked()
    }

    /// Answers the request `request_id` (received earlier, not answered yet) with
    /// `status` (0 or an errno), `payload` and `bulk`. Never blocks.
    ///
    /// The VMM routes a reply by its `request_id` alone; the header's destination is 0.
    ///
    /// # Panics
    ///
    /// As [`Ipc::send`].
    pub fn reply(&mut self, request_id: u64, status: Errno, payload: &[u8], bulk: &[u8]) {
        self.post(reply_header(request_id, status), payload, Segment::of(bulk));
        self.notify(IpcOp::Flush.encode(VMM_DOMAIN));
    }

    /// [`Ipc::reply`], then [`Ipc::receive`], in one exit: the server loop.
    ///
    /// # Panics
    ///
    /// As [`Ipc::send`].
    pub fn reply_recv(
        &mut self,
        request_id: u64,
        status: Errno,
        payload: &[u8],
        bulk: &[u8],
    ) -> Result<Received<'_>, Errno> {
        self.post(reply_header(request_id, status), payload, Segment::of(bulk));
        self.notify(IpcOp::Receive.encode(VMM_DOMAIN));
        self.take_checked()
    }

    /// [`Ipc::reply_recv`] whose reply carries, as its bulk data, the bulk data of the
    /// message received last, straight from the RX bulk buffer (no copy: the VMM copies
    /// the reply out before it delivers the next message there). For echo-like servers,
    /// which cannot pass a slice of a `Received` to `reply_recv` (it borrows the `Ipc`).
    ///
    /// # Panics
    ///
    /// As [`Ipc::send`].
    pub fn reply_recv_forward_bulk(
        &mut self,
        request_id: u64,
        status: Errno,
        payload: &[u8],
    ) -> Result<Received<'_>, Errno> {
        let bulk = Segment {
            addr: self.bulk as u64,
            len: self.last_bulk_len,
        };
        self.post(reply_header(request_id, status), payload, bulk);
        self.notify(IpcOp::Receive.encode(VMM_DOMAIN));
        self.take_checked()
    }

    /// Direct access to the TX queue, for test images that must send malformed chains
    /// or notify with any value (see [`RawTx`]).
    pub fn raw(&mut self) -> RawTx<'_, T> {
        RawTx::new(self)
    }

    /// Offers one message on TX: header + payload in the TX buffer (descriptor 0), the
    /// bulk segment, if not empty, in descriptor 1.
    fn post(&mut self, mut header: MessageHeader, payload: &[u8], bulk: Segment) {
        assert!(
            payload.len() <= INLINE_PAYLOAD_MAX,
            "ipc: inline payload longer than INLINE_PAYLOAD_MAX"
        );
        assert!(
            self.tx.in_flight() == 0,
            "ipc: TX chains offered through RawTx were never notified"
        );
        let payload_len = u32::try_from(payload.len()).unwrap_or(0);
        header.payload_len = payload_len;
        header.bulk_len = bulk.len;
        // SAFETY: the TX buffer is ours, 8-aligned and MESSAGE_BUFFER_SIZE bytes long,
        // room for the header and INLINE_PAYLOAD_MAX bytes; the device reads it only
        // during the next notify; `payload` cannot overlap it (nothing borrows it).
        unsafe {
            ptr::write_volatile(self.tx_buf.cast::<MessageHeader>(), header);
            ptr::copy_nonoverlapping(
                payload.as_ptr(),
                self.tx_buf.add(HEADER_SIZE),
                payload.len(),
            );
        }
        let has_bulk = bulk.len > 0;
        self.tx.set_desc(
            0,
            Descriptor {
                addr: self.tx_buf as u64,
                len: HEADER_LEN + payload_len,
                flags: if has_bulk { DESC_F_NEXT } else { 0 },
                next: if has_bulk { 1 } else { 0 },
            },
        );
        if has_bulk {
            self.tx.set_desc(
                1,
                Descriptor {
                    addr: bulk.addr,
                    len: bulk.len,
                    flags: 0,
                    next: 0,
                },
            );
        }
        self.tx.push_avail(0);
    }

    /// Offers the RX chain again if the last delivery consumed it.
    fn post_rx(&mut self) {
        if !self.rx_posted {
            self.rx.push_avail(0);
            self.rx_posted = true;
        }
    }

    /// The `Ipc` hypercall with `value`, with the RX chain posted first; afterwards
    /// checks that the device consumed every TX chain.
    fn notify(&mut self, value: u32) {
        self.post_rx();
        // SAFETY: TX holds only the chain `post` just offered (the TX buffer and a bulk
        // slice the caller lends for the duration of this call) or chains offered
        // through `RawTx`, which only the device reads. RX holds our own buffers, and no
        // `Received` covers them: it would borrow `self`.
        unsafe { self.transport.notify(value) };
        self.tx.skip_used();
        assert!(
            self.tx.in_flight() == 0,
            "ipc: the VMM did not consume every TX chain"
        );
    }

    /// The message the device just delivered into the RX chain.
    ///
    /// # Panics
    ///
    /// If the device delivered nothing.
    fn take_message(&mut self) -> Received<'_> {
        let delivered = self.rx.pop_used();
        assert!(
            delivered.is_some(),
            "ipc: the VMM resumed a wait without delivering a message"
        );
        self.rx_posted = false;
        // SAFETY: the RX buffer is ours, 8-aligned and holds a header the device wrote
        // during the notify that just returned; every bit pattern is a valid header.
        let header = unsafe { ptr::read_volatile(self.rx_buf.cast::<MessageHeader>()) };
        let payload_len = (header.payload_len as usize).min(INLINE_PAYLOAD_MAX);
        let bulk_len = header.bulk_len.min(self.bulk_cap);
        self.last_bulk_len = bulk_len;
        // SAFETY: both ranges lie inside our RX buffers (lengths clamped to their sizes).
        // The device wrote them during the last notify and writes them again only during
        // a later one, which needs `&mut self`: not while the returned borrow of `self`
        // lives. The pointers are non-null and byte-aligned.
        let (payload, bulk) = unsafe {
            (
                slice::from_raw_parts(self.rx_buf.add(HEADER_SIZE), payload_len),
                slice::from_raw_parts(self.bulk, bulk_len as usize),
            )
        };
        Received {
            header,
            payload,
            bulk,
        }
    }

    /// [`Ipc::take_message`], with a failure the VMM reports instead of a message (source
    /// `VMM_DOMAIN`, opcode `REPLY`, non-zero status) turned into `Err(status)`.
    fn take_checked(&mut self) -> Result<Received<'_>, Errno> {
        let message = self.take_message();
        let header = message.header;
        if header.source == VMM_DOMAIN && header.opcode == REPLY && header.status != OK {
            return Err(header.status);
        }
        Ok(message)
    }
}

/// The header of a request or one-way message to `to`: the VMM fills in the rest.
fn message_header(to: DomainId, opcode: u16) -> MessageHeader {
    MessageHeader {
        destination: to,
        opcode,
        ..MessageHeader::default()
    }
}

/// The header of a reply to `request_id`.
fn reply_header(request_id: u64, status: Errno) -> MessageHeader {
    MessageHeader {
        opcode: REPLY,
        status,
        request_id,
        ..MessageHeader::default()
    }
}
