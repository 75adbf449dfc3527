//! The device side of a guest's split virtqueue, validated: the one place where ring
//! addresses, descriptor chains and the guest ranges the VMM touches are checked, for
//! the IPC queues (`ipc::queues`) and the virtio-blk request queue (`devices::blk`).
//!
//! `virtio-queue` keeps the avail/used indexes ([`Queue`]); chains are read here,
//! descriptor by descriptor, straight from the table rather than through
//! `virtio-queue`'s chain iterator, which silently follows indirect tables and stops
//! early without saying why. Every index is checked against the queue size, a
//! descriptor visited twice is a loop, a chain longer than its user allows is refused,
//! and an indirect descriptor (never negotiated) is a fault. Every problem is a typed
//! [`QueueFault`] of the domain that wrote the ring; its users wrap it in their own
//! fault type.

use virtio_queue::desc::split::Descriptor;
use virtio_queue::{Queue, QueueOwnedT, QueueT};
use virtio_seep::abi::layout::SUPERVISOR_AREA_END;
use vm_memory::{Bytes, GuestAddress};

use crate::memory::{DomainMemory, GuestRangeError};

/// Bytes of one split-ring descriptor (virtio 1.x, 2.7.5).
pub const DESCRIPTOR_SIZE: u64 = 16;

/// The largest queue any device here offers; bounds the loop detector.
const QUEUE_SIZE_LIMIT: usize = 256;

/// A guest range the VMM would read or write that it must not.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RangeFault {
    /// Outside the domain's RAM, or longer than the caller allows.
    #[error(transparent)]
    Memory(#[from] GuestRangeError),
    /// In the low area where the VMM keeps the guest's GDT, page tables, IDT and
    /// exception stack (below `SUPERVISOR_AREA_END`).
    #[error("{addr:#x} is in the VMM's area below {SUPERVISOR_AREA_END:#x}")]
    VmmArea {
        /// Start of the range.
        addr: u64,
    },
}

/// Checks that `addr .. addr + len` (at most `max` bytes) lies in the domain's RAM and
/// not in the VMM's area below `SUPERVISOR_AREA_END`: the check every guest range a
/// queue user touches goes through.
pub fn guest_range(memory: &DomainMemory, addr: u64, len: u64, max: u64) -> Result<(), RangeFault> {
    memory.check_range(addr, len, max)?;
    if addr < SUPERVISOR_AREA_END {
        return Err(RangeFault::VmmArea { addr });
    }
    Ok(())
}

/// One of the three areas of a split ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingArea {
    /// The descriptor table (16-byte aligned).
    Descriptors,
    /// The avail ring, written by the driver (2-byte aligned).
    Avail,
    /// The used ring, written by the device (4-byte aligned).
    Used,
}

impl RingArea {
    /// The area's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            RingArea::Descriptors => "descriptor table",
            RingArea::Avail => "avail ring",
            RingArea::Used => "used ring",
        }
    }
}

impl std::fmt::Display for RingArea {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A guest's misuse of one of its virtqueues.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueueFault {
    /// A queue size that is not a power of two up to the device's maximum.
    #[error("size {size} is not a power of two <= {max}")]
    BadSize {
        /// The size the driver chose.
        size: u32,
        /// The device's maximum.
        max: u16,
    },
    /// A ring area not aligned as the specification requires.
    #[error("{area} at {addr:#x} is not {align}-byte aligned")]
    Misaligned {
        /// Which area.
        area: RingArea,
        /// Its address.
        addr: u64,
        /// The alignment it needs.
        align: u64,
    },
    /// A ring area outside RAM or in the VMM's area.
    #[error("{area}: {range}")]
    RingRange {
        /// Which area.
        area: RingArea,
        /// What is wrong with its range.
        range: RangeFault,
    },
    /// A ring configuration `virtio-queue` refused after the checks above passed.
    #[error("rings refused: {0}")]
    Rejected(String),
    /// The avail index ran more than a queue's worth ahead of the device.
    #[error("avail ring: {0}")]
    AvailRing(String),
    /// The used ring could not be written.
    #[error("used ring: {0}")]
    UsedRing(String),
    /// A chain names a descriptor past the end of the table.
    #[error("descriptor index {index} out of range (queue size {size})")]
    IndexOutOfRange {
        /// The index.
        index: u16,
        /// The queue size.
        size: u16,
    },
    /// A chain comes back to a descriptor it already visited.
    #[error("descriptor chain loops")]
    Loop,
    /// A chain with more descriptors than its user allows.
    #[error("descriptor chain longer than {max} descriptors")]
    ChainTooLong {
        /// The limit.
        max: usize,
    },
    /// An indirect descriptor: the feature is never offered, so the driver may not
    /// use one.
    #[error("descriptor {index} is indirect (not negotiated)")]
    Indirect {
        /// Its index.
        index: u16,
    },
    /// A descriptor that cannot be read (the table was checked to lie in RAM, so only
    /// a read that fails anyway).
    #[error("descriptor {index} is unreadable")]
    Unreadable {
        /// Its index.
        index: u16,
    },
}

impl QueueFault {
    /// A short, stable name of the kind, for logs, JSON and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            QueueFault::BadSize { .. }
            | QueueFault::Misaligned { .. }
            | QueueFault::RingRange { .. }
            | QueueFault::Rejected(_) => "bad-setup",
            QueueFault::AvailRing(_) | QueueFault::UsedRing(_) => "bad-ring-index",
            QueueFault::IndexOutOfRange { .. } | QueueFault::Unreadable { .. } => "bad-descriptor",
            QueueFault::Loop => "descriptor-loop",
            QueueFault::ChainTooLong { .. } => "chain-too-long",
            QueueFault::Indirect { .. } => "indirect-descriptor",
        }
    }
}

/// Where the driver put a queue, as it told the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingConfig {
    /// Number of descriptors.
    pub size: u32,
    /// Descriptor table address.
    pub desc: u64,
    /// Avail ring address.
    pub avail: u64,
    /// Used ring address.
    pub used: u64,
}

/// Builds the device side of a queue after checking the driver's configuration: a
/// power-of-two size up to `max_size`, and three ring areas that are aligned, in RAM
/// and above the VMM's area.
pub fn device_queue(
    memory: &DomainMemory,
    ring: RingConfig,
    max_size: u16,
) -> Result<Queue, QueueFault> {
    let size = u16::try_from(ring.size)
        .ok()
        .filter(|size| size.is_power_of_two() && *size <= max_size)
        .ok_or(QueueFault::BadSize {
            size: ring.size,
            max: max_size,
        })?;
    let n = u64::from(size);
    for (area, addr, len, align) in [
        (RingArea::Descriptors, ring.desc, DESCRIPTOR_SIZE * n, 16),
        (RingArea::Avail, ring.avail, 6 + 2 * n, 2),
        (RingArea::Used, ring.used, 6 + 8 * n, 4),
    ] {
        if !addr.is_multiple_of(align) {
            return Err(QueueFault::Misaligned { area, addr, align });
        }
        guest_range(memory, addr, len, u64::MAX)
            .map_err(|range| QueueFault::RingRange { area, range })?;
    }
    assert!(
        usize::from(max_size) <= QUEUE_SIZE_LIMIT,
        "the loop detector covers {QUEUE_SIZE_LIMIT} descriptors"
    );
    // The checks above are the specification's; `virtio-queue` repeats them, and
    // anything it still refuses is the guest's fault too, never a VMM panic.
    let rejected = |e: virtio_queue::Error| QueueFault::Rejected(e.to_string());
    let mut queue = Queue::new(max_size).map_err(rejected)?;
    queue.try_set_size(size).map_err(rejected)?;
    queue
        .try_set_desc_table_address(GuestAddress(ring.desc))
        .and_then(|()| queue.try_set_avail_ring_address(GuestAddress(ring.avail)))
        .and_then(|()| queue.try_set_used_ring_address(GuestAddress(ring.used)))
        .map_err(rejected)?;
    queue.set_ready(true);
    if !queue.is_valid(memory.guest()) {
        return Err(QueueFault::Rejected("rings outside memory".into()));
    }
    Ok(queue)
}

/// Takes the next chain the driver made available, if any: its head index and its
/// descriptors in order, at most `chain_max` of them. The avail entry is consumed even
/// when the chain is malformed (the domain stops on the fault anyway).
pub fn pop_chain(
    queue: &mut Queue,
    memory: &DomainMemory,
    chain_max: usize,
) -> Result<Option<(u16, Vec<Descriptor>)>, QueueFault> {
    let head = match queue.iter(memory.guest()) {
        Ok(mut available) => available.next().map(|chain| chain.head_index()),
        Err(e) => return Err(QueueFault::AvailRing(e.to_string())),
    };
    let Some(head) = head else { return Ok(None) };
    let descriptors = walk(memory, queue.desc_table(), queue.size(), head, chain_max)?;
    Ok(Some((head, descriptors)))
}

/// Returns the chain at `head` to the driver with `written` bytes written into it.
pub fn complete(
    queue: &mut Queue,
    memory: &DomainMemory,
    head: u16,
    written: u32,
) -> Result<(), QueueFault> {
    queue
        .add_used(memory.guest(), head, written)
        .map_err(|e| QueueFault::UsedRing(e.to_string()))
}

/// The descriptors of the chain that starts at `head`, in order, from the table at
/// `table` of a queue of `size` entries (a table already checked to lie in RAM).
pub fn walk(
    memory: &DomainMemory,
    table: u64,
    size: u16,
    head: u16,
    chain_max: usize,
) -> Result<Vec<Descriptor>, QueueFault> {
    let mut seen = [false; QUEUE_SIZE_LIMIT];
    let mut descriptors = Vec::with_capacity(3);
    let mut index = head;
    loop {
        let slot = seen
            .get_mut(usize::from(index))
            .filter(|_| index < size)
            .ok_or(QueueFault::IndexOutOfRange { index, size })?;
        if std::mem::replace(slot, true) {
            return Err(QueueFault::Loop);
        }
        if descriptors.len() == chain_max {
            return Err(QueueFault::ChainTooLong { max: chain_max });
        }
        let entry = GuestAddress(table + u64::from(index) * DESCRIPTOR_SIZE);
        let descriptor: Descriptor = memory
            .guest()
            .read_obj(entry)
            .map_err(|_| QueueFault::Unreadable { index })?;
        if descriptor.refers_to_indirect_table() {
            return Err(QueueFault::Indirect { index });
        }
        descriptors.push(descriptor);
        if !descriptor.has_next() {
            return Ok(descriptors);
        }
        index = descriptor.next();
    }
}

#[cfg(test)]
mod tests;
