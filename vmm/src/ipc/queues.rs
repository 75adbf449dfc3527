//! A domain's queue pair, driven as the device with the `virtio-queue` crate.
//!
//! Everything here reads guest-written structures: ring addresses, descriptor tables,
//! avail indexes, descriptor addresses and lengths, message headers. Each is checked
//! before use, and every problem is an [`IpcFault`] of the domain that wrote it. The
//! VMM never writes below `SUPERVISOR_AREA_END` (the guest's page tables and IDT live
//! there) and never reads or writes outside the domain's RAM.

use virtio_queue::desc::split::Descriptor;
use virtio_queue::{DescriptorChain, Queue, QueueOwnedT, QueueState, QueueT};
use virtio_seep::abi::layout::SUPERVISOR_AREA_END;
use virtio_seep::message::{
    MessageHeader, BULK_MAX, CHAIN_MAX, FLAG_TRUNCATED, HEADER_SIZE, INLINE_PAYLOAD_MAX,
};
use virtio_seep::opcode;
use virtio_seep::queue::{QueueSetup, RingAddresses, QUEUE_SIZE_MAX};
use vm_memory::{Bytes, GuestAddress};

use crate::memory::GuestMem;
use zerocopy::{FromBytes, IntoBytes};

use super::{IpcFault, Message};
use crate::memory::DomainMemory;

/// Size of one split-ring descriptor.
const DESCRIPTOR_SIZE: u64 = 16;

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
        let mem = memory.guest();
        let mut messages = Vec::new();
        loop {
            let chain = match self.tx.iter(mem) {
                Ok(mut available) => available.next(),
                Err(e) => return Err(IpcFault::BadDescriptor(format!("TX avail ring: {e}"))),
            };
            let Some(chain) = chain else { break };
            let head = chain.head_index();
            let descriptors = walk(chain, &self.tx, mem)?;
            messages.push(read_message(memory, &descriptors)?);
            self.tx
                .add_used(mem, head, 0)
                .map_err(|e| IpcFault::BadDescriptor(format!("TX used ring: {e}")))?;
        }
        Ok(messages)
    }

    /// Writes `message` into the next chain posted on the RX queue.
    pub fn deliver(&mut self, memory: &DomainMemory, message: &Message) -> Result<(), IpcFault> {
        let mem = memory.guest();
        let chain = match self.rx.iter(mem) {
            Ok(mut available) => available.next(),
            Err(e) => return Err(IpcFault::BadDescriptor(format!("RX avail ring: {e}"))),
        };
        let chain = chain.ok_or(IpcFault::NoReceiveBuffer)?;
        let head = chain.head_index();
        let descriptors = walk(chain, &self.rx, mem)?;
        let written = write_message(memory, &descriptors, message)?;
        self.rx
            .add_used(mem, head, written)
            .map_err(|e| IpcFault::BadDescriptor(format!("RX used ring: {e}")))
    }
}

/// Builds the device side of one queue after checking every ring address.
fn device_queue(
    memory: &DomainMemory,
    ring: &RingAddresses,
    which: &str,
) -> Result<Queue, IpcFault> {
    let bad = |what: String| IpcFault::BadSetup(format!("{which} queue: {what}"));
    let size = ring.size;
    if !size.is_power_of_two() || size > QUEUE_SIZE_MAX {
        return Err(bad(format!(
            "size {size} is not a power of two <= {QUEUE_SIZE_MAX}"
        )));
    }
    let n = u64::from(size);
    for (name, addr, len) in [
        ("descriptor table", ring.desc, DESCRIPTOR_SIZE * n),
        ("avail ring", ring.avail, 6 + 2 * n),
        ("used ring", ring.used, 6 + 8 * n),
    ] {
        writable_range(memory, addr, len, u64::MAX).map_err(|e| bad(format!("{name}: {e}")))?;
    }
    let mut queue = Queue::new(QUEUE_SIZE_MAX).map_err(|e| bad(e.to_string()))?;
    queue.set_size(size);
    queue
        .try_set_desc_table_address(GuestAddress(ring.desc))
        .and_then(|()| queue.try_set_avail_ring_address(GuestAddress(ring.avail)))
        .and_then(|()| queue.try_set_used_ring_address(GuestAddress(ring.used)))
        .map_err(|e| bad(e.to_string()))?;
    queue.set_ready(true);
    if !queue.is_valid(memory.guest()) {
        return Err(bad("rings misaligned or outside memory".into()));
    }
    Ok(queue)
}

/// Follows a chain, refusing loops, over-long chains and chains that end early (an
/// index out of range, an unreadable descriptor, lengths adding up past 4 GiB).
fn walk(
    chain: DescriptorChain<&GuestMem>,
    queue: &Queue,
    mem: &GuestMem,
) -> Result<Vec<Descriptor>, IpcFault> {
    let mut seen = [false; QUEUE_SIZE_MAX as usize];
    let mut index = chain.head_index();
    let mut descriptors = Vec::with_capacity(2);
    for descriptor in chain {
        if descriptor.refers_to_indirect_table() {
            return Err(IpcFault::BadDescriptor(
                "indirect descriptors are not supported".into(),
            ));
        }
        let slot = seen
            .get_mut(usize::from(index))
            .ok_or_else(|| IpcFault::BadDescriptor(format!("index {index} out of range")))?;
        if std::mem::replace(slot, true) {
            return Err(IpcFault::DescriptorLoop(CHAIN_MAX));
        }
        if descriptors.len() == CHAIN_MAX {
            return Err(IpcFault::BadLength(format!(
                "chain of more than {CHAIN_MAX} descriptors"
            )));
        }
        index = descriptor.next();
        descriptors.push(descriptor);
    }
    let Some(last) = descriptors.last() else {
        return Err(IpcFault::BadDescriptor("empty or unreadable chain".into()));
    };
    if !last.has_next() {
        return Ok(descriptors);
    }
    // The iterator stopped early: say why.
    let next = last.next();
    if next >= queue.size() {
        return Err(IpcFault::BadDescriptor(format!(
            "next index {next} out of range"
        )));
    }
    if seen[usize::from(next)] {
        return Err(IpcFault::DescriptorLoop(CHAIN_MAX));
    }
    let entry = GuestAddress(queue.desc_table() + u64::from(next) * DESCRIPTOR_SIZE);
    match mem.read_obj::<Descriptor>(entry) {
        Ok(unread) => {
            let total: u64 = descriptors
                .iter()
                .chain([&unread])
                .map(|d| u64::from(d.len()))
                .sum();
            Err(IpcFault::BadLength(format!(
                "chain of {total} bytes, past 4 GiB"
            )))
        }
        Err(_) => Err(IpcFault::BadDescriptor(
            "unreadable descriptor in chain".into(),
        )),
    }
}

/// Reads and validates a message from a TX chain.
fn read_message(memory: &DomainMemory, descriptors: &[Descriptor]) -> Result<Message, IpcFault> {
    let (head, bulk_segments) = descriptors.split_first().expect("walk returns >= 1");
    if descriptors.iter().any(Descriptor::is_write_only) {
        return Err(IpcFault::BadDescriptor(
            "TX descriptor marked device-writable".into(),
        ));
    }
    if (head.len() as usize) < HEADER_SIZE {
        return Err(IpcFault::BadLength(format!(
            "header descriptor of {} bytes",
            head.len()
        )));
    }
    let header_bytes = memory
        .read_guest(head.addr().0, HEADER_SIZE as u64, HEADER_SIZE as u64)
        .map_err(|e| IpcFault::BadDescriptor(format!("header: {e}")))?;
    let header = MessageHeader::read_from_bytes(&header_bytes).expect("exactly a header");
    let payload_len = u64::from(header.payload_len);
    if payload_len > INLINE_PAYLOAD_MAX as u64 {
        return Err(IpcFault::BadLength(format!(
            "inline payload of {payload_len} bytes (max {INLINE_PAYLOAD_MAX})"
        )));
    }
    if HEADER_SIZE as u64 + payload_len > u64::from(head.len()) {
        return Err(IpcFault::BadLength(format!(
            "payload of {payload_len} bytes does not fit its {}-byte descriptor",
            head.len()
        )));
    }
    if header.bulk_len > BULK_MAX {
        return Err(IpcFault::BadLength(format!(
            "bulk data of {} bytes (max {BULK_MAX})",
            header.bulk_len
        )));
    }
    let segments_len: u64 = bulk_segments.iter().map(|d| u64::from(d.len())).sum();
    if segments_len != u64::from(header.bulk_len) {
        return Err(IpcFault::BadLength(format!(
            "bulk descriptors hold {segments_len} bytes, header says {}",
            header.bulk_len
        )));
    }
    if opcode::lookup(header.opcode).is_none() {
        return Err(IpcFault::UnknownOpcode(header.opcode));
    }
    let payload = memory
        .read_guest(head.addr().0 + HEADER_SIZE as u64, payload_len, payload_len)
        .map_err(|e| IpcFault::BadDescriptor(format!("payload: {e}")))?;
    let mut bulk = vec![0u8; header.bulk_len as usize];
    let mut at = 0;
    for segment in bulk_segments {
        let len = segment.len() as usize;
        memory
            .check_range(segment.addr().0, len as u64, u64::from(BULK_MAX))
            .map_err(|e| IpcFault::BadDescriptor(format!("bulk segment: {e}")))?;
        memory
            .guest()
            .read_slice(&mut bulk[at..at + len], segment.addr())
            .map_err(|e| IpcFault::BadDescriptor(format!("bulk segment: {e}")))?;
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
        return Err(IpcFault::BadDescriptor(
            "RX descriptor not device-writable".into(),
        ));
    }
    let head = descriptors[0];
    let inline_len = HEADER_SIZE + message.payload.len();
    if (head.len() as usize) < inline_len {
        return Err(IpcFault::BadLength(format!(
            "RX header buffer of {} bytes, message needs {inline_len}",
            head.len()
        )));
    }
    writable_range(memory, head.addr().0, inline_len as u64, inline_len as u64)
        .map_err(|e| IpcFault::BadDescriptor(format!("RX header buffer: {e}")))?;
    let bulk_room = descriptors.get(1).map_or(0, |d| d.len() as usize);
    let bulk_len = message.bulk.len().min(bulk_room);
    let mut header = message.header;
    if bulk_len < message.bulk.len() {
        header.flags |= FLAG_TRUNCATED;
    }
    let mut inline = Vec::with_capacity(inline_len);
    inline.extend_from_slice(header.as_bytes());
    inline.extend_from_slice(&message.payload);
    let mem = memory.guest();
    mem.write_slice(&inline, head.addr())
        .map_err(|e| IpcFault::BadDescriptor(format!("RX header buffer: {e}")))?;
    if bulk_len > 0 {
        let target = descriptors[1].addr();
        writable_range(memory, target.0, bulk_len as u64, u64::from(BULK_MAX))
            .map_err(|e| IpcFault::BadDescriptor(format!("RX bulk buffer: {e}")))?;
        mem.write_slice(&message.bulk[..bulk_len], target)
            .map_err(|e| IpcFault::BadDescriptor(format!("RX bulk buffer: {e}")))?;
    }
    Ok(u32::try_from(inline_len + bulk_len).expect("<= header + 224 + 1 MiB"))
}

/// Checks a range the VMM will write: inside RAM and above the supervisor area.
fn writable_range(memory: &DomainMemory, addr: u64, len: u64, max: u64) -> Result<(), String> {
    memory
        .check_range(addr, len, max)
        .map_err(|e| e.to_string())?;
    if addr < SUPERVISOR_AREA_END {
        return Err(format!(
            "{addr:#x} is in the VMM's area below {SUPERVISOR_AREA_END:#x}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
