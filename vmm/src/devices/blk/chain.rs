//! Reading a descriptor chain the guest posted, and the one check every guest range
//! the device touches goes through.
//!
//! The chain is read descriptor by descriptor straight from the table (not through
//! `virtio-queue`'s chain iterator, which silently follows indirect tables and stops
//! early on errors): every index is checked against the queue size, a descriptor
//! visited twice is a loop, a chain longer than a request can be is refused, and an
//! indirect descriptor (not negotiated) is a fault.

use virtio_queue::desc::split::Descriptor;
use virtio_seep::abi::blk::{QUEUE_NUM_MAX, SEG_MAX};
use virtio_seep::abi::layout::SUPERVISOR_AREA_END;
use vm_memory::{Bytes, GuestAddress};

use crate::devices::DeviceFault;
use crate::memory::DomainMemory;

/// Bytes of one split-ring descriptor.
pub(super) const DESCRIPTOR_SIZE: u64 = 16;

/// Most descriptors in one request: header, `SEG_MAX` data segments, status.
pub(super) const CHAIN_MAX: usize = SEG_MAX as usize + 2;

/// Checks that `addr .. addr + len` lies in guest RAM and not in the VMM's area below
/// `SUPERVISOR_AREA_END` (page tables, GDT, IDT, boot information). Returns why not.
pub(super) fn guest_range(memory: &DomainMemory, addr: u64, len: u64) -> Result<(), String> {
    memory
        .check_range(addr, len, u64::MAX)
        .map_err(|e| e.to_string())?;
    if addr < SUPERVISOR_AREA_END {
        return Err(format!(
            "{addr:#x} is in the VMM's area below {SUPERVISOR_AREA_END:#x}"
        ));
    }
    Ok(())
}

/// The descriptors of the chain that starts at `head`, in order, from the table at
/// `table` of a queue of `size` entries (a table already checked to lie in RAM).
pub(super) fn walk(
    memory: &DomainMemory,
    table: u64,
    size: u16,
    head: u16,
) -> Result<Vec<Descriptor>, DeviceFault> {
    let mut seen = [false; QUEUE_NUM_MAX as usize];
    let mut descriptors = Vec::with_capacity(3);
    let mut index = head;
    loop {
        if index >= size {
            return Err(DeviceFault::BadDescriptor(format!(
                "index {index} out of range (queue size {size})"
            )));
        }
        let slot = &mut seen[usize::from(index)];
        if std::mem::replace(slot, true) {
            return Err(DeviceFault::DescriptorLoop);
        }
        if descriptors.len() == CHAIN_MAX {
            return Err(DeviceFault::ChainTooLong { max: CHAIN_MAX });
        }
        let entry = GuestAddress(table + u64::from(index) * DESCRIPTOR_SIZE);
        let descriptor: Descriptor = memory
            .guest()
            .read_obj(entry)
            .map_err(|e| DeviceFault::BadDescriptor(format!("unreadable descriptor: {e}")))?;
        if descriptor.refers_to_indirect_table() {
            return Err(DeviceFault::BadDescriptor(
                "indirect descriptors were not negotiated".into(),
            ));
        }
        descriptors.push(descriptor);
        if !descriptor.has_next() {
            return Ok(descriptors);
        }
        index = descriptor.next();
    }
}
