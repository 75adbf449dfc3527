//! Property tests of request parsing: arbitrary descriptor chains never panic the
//! device, and a chain the device refuses never changes the disk.

// Fixture indexes and addresses are small.
#![allow(clippy::cast_possible_truncation)]

use proptest::prelude::*;
use virtio_seep::abi::blk::{T_FLUSH, T_GET_ID, T_IN, T_OUT};
use vm_memory::Bytes;

use super::tests::{Fixture, DATA, HEADERS, NEXT, SECTORS, SIZE, STATUSES, WRITE};
use super::*;

/// Addresses a descriptor may point at: good buffers, the VMM's area, RAM's edge,
/// beyond RAM, anything.
fn address() -> impl Strategy<Value = u64> {
    prop_oneof![
        (0u64..64).prop_map(|page| DATA + page * 512),
        (0u64..16).prop_map(|slot| HEADERS + slot * 16),
        (0u64..16).prop_map(|slot| STATUSES + slot),
        (0u64..0x1_0000),
        ((2u64 << 20) - 2048..(2 << 20) + 16),
        any::<u64>(),
    ]
}

fn length() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(1),
        Just(16),
        (1u32..8).prop_map(|n| n * 512),
        Just(SIZE_MAX),
        Just(SIZE_MAX + 512),
        any::<u32>(),
    ]
}

/// One descriptor: address, length, flags (NEXT, WRITE, INDIRECT and junk), next.
fn descriptor() -> impl Strategy<Value = (u64, u32, u16, u16)> {
    (
        address(),
        length(),
        prop_oneof![
            Just(NEXT),
            Just(NEXT | WRITE),
            Just(WRITE),
            Just(0),
            0u16..16
        ],
        prop_oneof![0u16..SIZE, any::<u16>()],
    )
}

/// A request header: a known type or anything, a sector near the end or anything.
fn header() -> impl Strategy<Value = (u32, u64)> {
    (
        prop_oneof![
            Just(T_IN),
            Just(T_OUT),
            Just(T_FLUSH),
            Just(T_GET_ID),
            any::<u32>()
        ],
        prop_oneof![0..SECTORS + 4, Just(u64::MAX), any::<u64>()],
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the table holds, the device either completes the one posted chain or
    /// faults; a fault leaves the disk byte-identical and nothing on the used ring.
    #[test]
    fn arbitrary_chains_never_panic_and_refused_ones_never_write(
        table in proptest::collection::vec(descriptor(), SIZE as usize),
        headers in proptest::collection::vec(header(), SIZE as usize),
        head in prop_oneof![0u16..SIZE, any::<u16>()],
    ) {
        let mut f = Fixture::ready();
        for (slot, (kind, sector)) in headers.iter().enumerate() {
            f.header(slot as u16, *kind, *sector);
        }
        for (index, (addr, len, flags, next)) in table.iter().enumerate() {
            f.desc(index as u16, *addr, *len, *flags, *next);
        }
        f.publish(head);
        let before = f.image.bytes();
        match f.notify() {
            Ok(()) => prop_assert_eq!(f.used_idx(), 1),
            Err(_) => {
                prop_assert_eq!(f.image.bytes(), before);
                prop_assert_eq!(f.used_idx(), 0);
            }
        }
    }

    /// Well-formed writes anywhere on the disk land exactly there; ones past the end
    /// are refused without touching it.
    #[test]
    fn writes_land_exactly_where_asked(sector in 0..SECTORS + 8, count in 1u32..8) {
        let mut f = Fixture::ready();
        let data: Vec<u8> = (0..count * 512).map(|i| (i % 253) as u8 ^ 0x5a).collect();
        f.memory.guest().write_slice(&data, vm_memory::GuestAddress(DATA)).unwrap();
        let before = f.image.bytes();
        f.request(0, T_OUT, sector, DATA, count * 512);
        let result = f.notify();
        let end = sector + u64::from(count);
        if end <= SECTORS {
            prop_assert!(result.is_ok());
            let mut expected = before;
            let at = (sector * SECTOR_SIZE) as usize;
            expected[at..at + data.len()].copy_from_slice(&data);
            prop_assert_eq!(f.image.bytes(), expected);
        } else {
            prop_assert_eq!(
                result,
                Err(DeviceFault::SectorOutOfRange { sector, count: u64::from(count), capacity: SECTORS })
            );
            prop_assert_eq!(f.image.bytes(), before);
        }
    }
}
