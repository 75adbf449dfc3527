//! The walker and the ring checks against descriptor tables written straight into
//! guest memory.

use vm_memory::{Bytes, GuestAddress};

use super::*;

const TABLE: u64 = 0x10_0000;
const SIZE: u16 = 16;
const NEXT: u16 = 1;
const INDIRECT: u16 = 4;

fn memory() -> DomainMemory {
    DomainMemory::new(2 << 20).unwrap()
}

fn desc(memory: &DomainMemory, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
    let entry = GuestAddress(TABLE + u64::from(index) * DESCRIPTOR_SIZE);
    let mem = memory.guest();
    mem.write_obj(addr, entry).unwrap();
    mem.write_obj(len, GuestAddress(entry.0 + 8)).unwrap();
    mem.write_obj(flags, GuestAddress(entry.0 + 12)).unwrap();
    mem.write_obj(next, GuestAddress(entry.0 + 14)).unwrap();
}

/// The chain's fault (descriptors have no `PartialEq`).
fn fault_of(memory: &DomainMemory, head: u16) -> Option<QueueFault> {
    walk(memory, TABLE, SIZE, head, 4).err()
}

#[test]
fn a_chain_is_read_in_order() {
    let memory = memory();
    desc(&memory, 3, 0x18_0000, 32, NEXT, 7);
    desc(&memory, 7, 0x19_0000, 64, 0, 0);
    let chain = walk(&memory, TABLE, SIZE, 3, 4).unwrap();
    let addrs: Vec<u64> = chain.iter().map(|d| d.addr().0).collect();
    assert_eq!(addrs, [0x18_0000, 0x19_0000]);
}

#[test]
fn an_indirect_descriptor_is_a_typed_fault() {
    let memory = memory();
    desc(&memory, 0, 0x18_0000, 32, NEXT, 1);
    desc(&memory, 1, 0x19_0000, 16, INDIRECT, 0);
    assert_eq!(
        fault_of(&memory, 0),
        Some(QueueFault::Indirect { index: 1 })
    );
    assert_eq!(
        QueueFault::Indirect { index: 1 }.kind(),
        "indirect-descriptor"
    );
}

#[test]
fn loops_long_chains_and_bad_indexes_are_typed_faults() {
    let memory = memory();
    desc(&memory, 0, 0x18_0000, 32, NEXT, 1);
    desc(&memory, 1, 0x18_0000, 32, NEXT, 0);
    assert_eq!(fault_of(&memory, 0), Some(QueueFault::Loop));

    for i in 0..5 {
        desc(&memory, i, 0x18_0000, 32, NEXT, i + 1);
    }
    desc(&memory, 5, 0x18_0000, 32, 0, 0);
    assert_eq!(
        fault_of(&memory, 0),
        Some(QueueFault::ChainTooLong { max: 4 })
    );

    desc(&memory, 0, 0x18_0000, 32, NEXT, SIZE);
    assert_eq!(
        fault_of(&memory, 0),
        Some(QueueFault::IndexOutOfRange {
            index: SIZE,
            size: SIZE
        })
    );
    assert_eq!(
        fault_of(&memory, 300),
        Some(QueueFault::IndexOutOfRange {
            index: 300,
            size: SIZE
        })
    );
}

#[test]
fn guest_ranges_stay_in_ram_and_out_of_the_vmm_area() {
    let memory = memory();
    assert_eq!(guest_range(&memory, 0x10_0000, 4096, u64::MAX), Ok(()));
    assert_eq!(
        guest_range(&memory, 0x3000, 16, u64::MAX),
        Err(RangeFault::VmmArea { addr: 0x3000 })
    );
    assert_eq!(
        guest_range(&memory, SUPERVISOR_AREA_END - 1, 16, u64::MAX),
        Err(RangeFault::VmmArea {
            addr: SUPERVISOR_AREA_END - 1
        })
    );
    assert!(matches!(
        guest_range(&memory, (2 << 20) - 8, 16, u64::MAX),
        Err(RangeFault::Memory(_))
    ));
    assert!(matches!(
        guest_range(&memory, 0x10_0000, 32, 16),
        Err(RangeFault::Memory(_))
    ));
}

#[test]
fn ring_configurations_are_checked() {
    let memory = memory();
    let good = RingConfig {
        size: 16,
        desc: TABLE,
        avail: TABLE + 0x100,
        used: TABLE + 0x200,
    };
    assert!(device_queue(&memory, good, 256).is_ok());
    let refused = |ring: RingConfig| device_queue(&memory, ring, 256).unwrap_err();
    assert_eq!(
        refused(RingConfig { size: 12, ..good }),
        QueueFault::BadSize { size: 12, max: 256 }
    );
    assert_eq!(
        refused(RingConfig { size: 512, ..good }),
        QueueFault::BadSize {
            size: 512,
            max: 256
        }
    );
    assert_eq!(
        refused(RingConfig {
            desc: TABLE + 8,
            ..good
        }),
        QueueFault::Misaligned {
            area: RingArea::Descriptors,
            addr: TABLE + 8,
            align: 16
        }
    );
    assert_eq!(
        refused(RingConfig {
            used: 0x3000,
            ..good
        }),
        QueueFault::RingRange {
            area: RingArea::Used,
            range: RangeFault::VmmArea { addr: 0x3000 }
        }
    );
    assert!(matches!(
        refused(RingConfig {
            avail: u64::MAX - 9,
            ..good
        }),
        QueueFault::RingRange {
            area: RingArea::Avail,
            ..
        }
    ));
}
