//! A domain's queue pair, driven as the device through the shared validated walker
//! ([`crate::virtq`]).
//!
//! Everything here reads guest-written structures: the setup record, ring addresses,
//! descriptor tables, avail indexes, descriptor addresses and lengths, message headers.
//! Each is checked before use, and every problem is an [`IpcFault`] of the domain that
//! wrote it. The VMM never reads or writes below `SUPERVISOR_AREA_END` (the guest's page
//! tables, IDT and exception stack live there: neither the setup record, nor a ring, nor
//! a TX or RX buffer may be there) and never outside the domain's RAM.

use std::mem::size_of;

use virtio_queue::desc::split::Descriptor;
use virtio_queue::{Queue, QueueState};
use virtio_seep::message::{
    MessageHeader, BULK_MAX, CHAIN_MAX, FLAG_TRUNCATED, HEADER_SIZE, INLINE_PAYLOAD_MAX,
};
use virtio_seep::opcode;
use virtio_seep::queue::{QueueSetup, RingAddresses, QUEUE_SIZE_MAX};
use vm_memory::Bytes;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

use super::fault::{Buffer, DescriptorFault, LengthFault};
use super::{IpcFault, Message};
use crate::memory::{DomainMemory, GuestRangeError};
use crate::virtq::{self, guest_range, RangeFault, RingConfig};

/// Bytes of the `IpcSetup` record.
const SETUP_SIZE: u64 = size_of::<QueueSetup>() as u64;

/// The TX and RX queues of one domain.
pub struct DomainQueues {
    tx: Queue,
    rx: Queue,
}

/// The device-side positions of both queues, kept with a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuesSnapshot {
    tx: QueueState,
    rx: QueueState,
}

impl DomainQueues {
    /// Reads the guest's [`QueueSetup`] at `address` (the `IpcSetup` hypercall's
    /// argument, which must lie in RAM above the VMM's area) and builds both queues.
    pub fn setup_at(memory: &DomainMemory, address: u64) -> Result<DomainQueues, IpcFault> {
        let bad_setup = |fault| IpcFault::BadSetup { address, fault };
        guest_range(memory, address, SETUP_SIZE, SETUP_SIZE).map_err(bad_setup)?;
        let bytes = memory
            .read_guest(address, SETUP_SIZE, SETUP_SIZE)
            .map_err(|e| bad_setup(e.into()))?;
        let setup = QueueSetup::read_from_bytes(&bytes).expect("exactly a setup record");
        DomainQueues::setup(memory, &setup)
    }

    /// Validates the guest's [`QueueSetup`] and builds the device side of both queues.
    pub fn setup(memory: &DomainMemory, setup: &QueueSetup) -> Result<DomainQueues, IpcFault> {
        Ok(DomainQueues {
            tx: device_queue(memory, &setup.tx, "TX")?,
            rx: device_queue(memory, &setup.rx, "RX")?,
        })
    }

    /// The queues' device-side state, for a checkpoint.
    pub fn snapshot(&self) -> QueuesSnapshot {
        QueuesSnapshot {
            tx: self.tx.state(),
            rx: self.rx.state(),
        }
    }

    /// Puts the queues back where `snapshot` found them (after a rollback of the
    /// domain's memory to the same checkpoint).
    pub fn restore(&mut self, snapshot: &QueuesSnapshot) {
        // The states were taken from valid queues, so rebuilding them cannot fail.
        self.tx = Queue::try_from(snapshot.tx).expect("a state of a valid queue");
        self.rx = Queue::try_from(snapshot.rx).expect("a state of a valid queue");
    }

    /// Consumes every chain on the TX queue, in order, and returns the messages. The
    /// first malformed chain is a fault; nothing after it is looked at.
    pub fn drain_tx(&mut self, memory: &DomainMemory) -> Result<Vec<Message>, IpcFault> {
        let fault = |fault| IpcFault::Queue { queue: "TX", fault };
        let mut messages = Vec::new();
        // The avail index may run at most a queue's worth ahead (virtio-queue refuses
        // more), so this ends after at most `size` chains.
        while let Some((head, descriptors)) =
            virtq::pop_chain(&mut self.tx, memory, CHAIN_MAX).map_err(fault)?
        {
            messages.push(read_message(memory, &descriptors)?);
            virtq::complete(&mut self.tx, memory, head, 0).map_err(fault)?;
        }
        Ok(messages)
    }

    /// Writes `message` into the next chain posted on the RX queue.
    pub fn deliver(&mut self, memory: &DomainMemory, message: &Message) -> Result<(), IpcFault> {
        let fault = |fault| IpcFault::Queue { queue: "RX", fault };
        let (head, descriptors) = virtq::pop_chain(&mut self.rx, memory, CHAIN_MAX)
            .map_err(fault)?
            .ok_or(IpcFault::NoReceiveBuffer)?;
        let written = write_message(memory, &descriptors, message)?;
        virtq::complete(&mut self.rx, memory, head, written).map_err(fault)
    }
}

/// Builds the device side of one queue after checking every ring address.
fn device_queue(
    memory: &DomainMemory,
    ring: &RingAddresses,
    queue: &'static str,
) -> Result<Queue, IpcFault> {
    let config = RingConfig {
        size: u32::from(ring.size),
        desc: ring.desc,
        avail: ring.avail,
        used: ring.used,
    };
    virtq::device_queue(memory, config, QUEUE_SIZE_MAX)
        .map_err(|fault| IpcFault::Queue { queue, fault })
}

/// Reads and validates a message from a TX chain.
fn read_message(memory: &DomainMemory, descriptors: &[Descriptor]) -> Result<Message, IpcFault> {
    let (head, bulk_segments) = descriptors.split_first().expect("walk returns >= 1");
    if descriptors.iter().any(Descriptor::is_write_only) {
        return Err(IpcFault::BadDescriptor(DescriptorFault::TxWritable));
    }
    if (head.len() as usize) < HEADER_SIZE {
        return Err(IpcFault::BadLength(LengthFault::ShortHeader {
            descriptor: head.len(),
        }));
    }
    // The payload follows the header, so it is above the VMM's area too.
    guest_range(
        memory,
        head.addr().0,
        HEADER_SIZE as u64,
        HEADER_SIZE as u64,
    )
    .map_err(out_of_range(Buffer::TxHeader))?;
    // Read in place: no buffer to allocate on the path of every message.
    let mut header = MessageHeader::new_zeroed();
    memory
        .guest()
        .read_slice(header.as_mut_bytes(), head.addr())
        .map_err(|_| unmapped(Buffer::TxHeader, head.addr().0, HEADER_SIZE))?;
    let payload_len = u64::from(header.payload_len);
    if payload_len > INLINE_PAYLOAD_MAX as u64 {
        return Err(IpcFault::BadLength(LengthFault::PayloadTooLong {
            len: payload_len,
        }));
    }
    if HEADER_SIZE as u64 + payload_len > u64::from(head.len()) {
        return Err(IpcFault::BadLength(LengthFault::PayloadPastDescriptor {
            len: payload_len,
            descriptor: head.len(),
        }));
    }
    if header.bulk_len > BULK_MAX {
        return Err(IpcFault::BadLength(LengthFault::BulkTooLong {
            len: header.bulk_len,
        }));
    }
    let segments_len: u64 = bulk_segments.iter().map(|d| u64::from(d.len())).sum();
    if segments_len != u64::from(header.bulk_len) {
        return Err(IpcFault::BadLength(LengthFault::BulkMismatch {
            segments: segments_len,
            header: header.bulk_len,
        }));
    }
    if opcode::lookup(header.opcode).is_none() {
        return Err(IpcFault::UnknownOpcode(header.opcode));
    }
    let payload = match payload_len {
        0 => Vec::new(),
        _ => memory
            .read_guest(head.addr().0 + HEADER_SIZE as u64, payload_len, payload_len)
            .map_err(|e| out_of_range(Buffer::Payload)(e.into()))?,
    };
    let mut bulk = vec![0u8; header.bulk_len as usize];
    let mut at = 0;
    for segment in bulk_segments {
        let len = segment.len() as usize;
        guest_range(memory, segment.addr().0, len as u64, u64::from(BULK_MAX))
            .map_err(out_of_range(Buffer::BulkSegment))?;
        memory
            .guest()
            .read_slice(&mut bulk[at..at + len], segment.addr())
            .map_err(|_| unmapped(Buffer::BulkSegment, segment.addr().0, len))?;
        at += len;
    }
    Ok(Message {
        header,
        payload,
        bulk,
    })
}

/// Writes `message` into an RX chain: header and payload into the first descriptor,
/// bulk data into the second. Returns the bytes written.
fn write_message(
    memory: &DomainMemory,
    descriptors: &[Descriptor],
    message: &Message,
) -> Result<u32, IpcFault> {
    if descriptors.iter().any(|d| !d.is_write_only()) {
        return Err(IpcFault::BadDescriptor(DescriptorFault::RxNotWritable));
    }
    let head = descriptors[0];
    let inline_len = HEADER_SIZE + message.payload.len();
    if (head.len() as usize) < inline_len {
        return Err(IpcFault::BadLength(LengthFault::ShortRxHeader {
            descriptor: head.len(),
            needed: inline_len,
        }));
    }
    guest_range(memory, head.addr().0, inline_len as u64, inline_len as u64)
        .map_err(out_of_range(Buffer::RxHeader))?;
    let bulk_room = descriptors.get(1).map_or(0, |d| d.len() as usize);
    let bulk_len = message.bulk.len().min(bulk_room);
    let mut header = message.header;
    if bulk_len < message.bulk.len() {
        header.flags |= FLAG_TRUNCATED;
    }
    // Header and payload in one write, from the stack: no allocation per message (a
    // payload over the limit, which only the VMM could have made, takes the heap).
    let mut on_stack = [0u8; HEADER_SIZE + INLINE_PAYLOAD_MAX];
    let mut on_heap = Vec::new();
    let inline = match on_stack.get_mut(..inline_len) {
        Some(inline) => inline,
        None => {
            on_heap.resize(inline_len, 0);
            &mut on_heap[..]
        }
    };
    inline[..HEADER_SIZE].copy_from_slice(header.as_bytes());
    inline[HEADER_SIZE..].copy_from_slice(&message.payload);
    let mem = memory.guest();
    mem.write_slice(inline, head.addr())
        .map_err(|_| unmapped(Buffer::RxHeader, head.addr().0, inline_len))?;
    if bulk_len > 0 {
        let target = descriptors[1].addr();
        guest_range(memory, target.0, bulk_len as u64, u64::from(BULK_MAX))
            .map_err(out_of_range(Buffer::RxBulk))?;
        // Consumed within the request that receives it: no page of a checkpoint.
        memory
            .write_transient(&message.bulk[..bulk_len], target)
            .map_err(|_| unmapped(Buffer::RxBulk, target.0, bulk_len))?;
    }
    Ok(u32::try_from(inline_len + bulk_len).expect("<= header + 224 + 1 MiB"))
}

/// The fault of `buffer` whose range is refused.
fn out_of_range(buffer: Buffer) -> impl Fn(RangeFault) -> IpcFault {
    move |fault| IpcFault::BadDescriptor(DescriptorFault::Range { buffer, fault })
}

/// The fault of `buffer` at `addr + len` that guest memory cannot hold (a copy that
/// failed after the range check).
fn unmapped(buffer: Buffer, addr: u64, len: usize) -> IpcFault {
    let len = len as u64;
    out_of_range(buffer)(GuestRangeError::OutOfBounds { addr, len }.into())
}

#[cfg(test)]
mod tests;
