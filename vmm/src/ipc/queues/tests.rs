//! The device side of the queues against a fake guest driver that writes rings and
//! descriptors straight into guest memory, including every kind of garbage.

// Fixture sizes and indexes are small constants.
#![allow(clippy::cast_possible_truncation)]

use proptest::prelude::*;
use virtio_seep::abi::layout::SUPERVISOR_AREA_END;
use virtio_seep::opcode::{TEST_ECHO, TEST_NOTIFY};
use vm_memory::GuestAddress;

use crate::virtq::QueueFault;

use super::*;

const TX_RINGS: u64 = 0x10_0000;
const RX_RINGS: u64 = 0x10_1000;
const SIZE: u16 = 16;
const NEXT: u16 = 1;
const WRITE: u16 = 2;

fn rings(base: u64) -> RingAddresses {
    RingAddresses {
        desc: base,
        avail: base + 0x100,
        used: base + 0x200,
        size: SIZE,
        reserved: [0; 3],
    }
}

/// The guest side: writes descriptors and publishes chains.
struct FakeGuest {
    memory: DomainMemory,
    queues: DomainQueues,
    tx_published: u16,
    rx_published: u16,
}

impl FakeGuest {
    fn new() -> FakeGuest {
        let memory = DomainMemory::new(2 << 20).unwrap();
        let setup = QueueSetup {
            tx: rings(TX_RINGS),
            rx: rings(RX_RINGS),
        };
        let queues = DomainQueues::setup(&memory, &setup).unwrap();
        FakeGuest {
            memory,
            queues,
            tx_published: 0,
            rx_published: 0,
        }
    }

    fn desc(&self, table: u64, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let entry = table + u64::from(index) * 16;
        let mem = self.memory.guest();
        mem.write_obj(addr, GuestAddress(entry)).unwrap();
        mem.write_obj(len, GuestAddress(entry + 8)).unwrap();
        mem.write_obj(flags, GuestAddress(entry + 12)).unwrap();
        mem.write_obj(next, GuestAddress(entry + 14)).unwrap();
    }

    fn publish(&mut self, tx: bool, head: u16) {
        let (ring, published) = match tx {
            true => (rings(TX_RINGS), &mut self.tx_published),
            false => (rings(RX_RINGS), &mut self.rx_published),
        };
        let mem = self.memory.guest();
        let slot = ring.avail + 4 + 2 * u64::from(*published % SIZE);
        mem.write_obj(head, GuestAddress(slot)).unwrap();
        *published = published.wrapping_add(1);
        mem.write_obj(*published, GuestAddress(ring.avail + 2))
            .unwrap();
    }

    /// Writes `header` + `payload` at 0x18_0000 and the bulk segments after it.
    fn send(&mut self, header: MessageHeader, payload: &[u8], segments: &[&[u8]]) {
        let mem = self.memory.guest();
        let mut bytes = header.as_bytes().to_vec();
        bytes.extend_from_slice(payload);
        mem.write_slice(&bytes, GuestAddress(0x18_0000)).unwrap();
        let last = segments.len();
        let flags = |i: usize| if i < last { NEXT } else { 0 };
        self.desc(TX_RINGS, 0, 0x18_0000, bytes.len() as u32, flags(0), 1);
        let mut at = 0x19_0000;
        for (i, segment) in segments.iter().enumerate() {
            mem.write_slice(segment, GuestAddress(at)).unwrap();
            self.desc(
                TX_RINGS,
                i as u16 + 1,
                at,
                segment.len() as u32,
                flags(i + 1),
                i as u16 + 2,
            );
            at += 0x1_0000;
        }
        self.publish(true, 0);
    }

    fn post_rx(&mut self, header_len: u32, bulk_len: u32) {
        self.desc(RX_RINGS, 0, 0x1c_0000, header_len, NEXT, 1);
        self.desc(RX_RINGS, 1, 0x1d_0000, bulk_len, WRITE, 0);
        let mem = self.memory.guest();
        // Make the first descriptor writable too.
        mem.write_obj(NEXT | WRITE, GuestAddress(RX_RINGS + 12))
            .unwrap();
        self.publish(false, 0);
    }

    fn drain(&mut self) -> Result<Vec<Message>, IpcFault> {
        self.queues.drain_tx(&self.memory)
    }
}

fn header(opcode: u16, payload_len: u32, bulk_len: u32) -> MessageHeader {
    MessageHeader {
        destination: 2,
        opcode,
        payload_len,
        bulk_len,
        ..Default::default()
    }
}

#[test]
fn messages_come_out_of_tx_whole() {
    let mut guest = FakeGuest::new();
    guest.send(header(TEST_ECHO, 3, 7), b"abc", &[b"1234", b"567"]);
    let messages = guest.drain().unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].payload, b"abc");
    assert_eq!(messages[0].bulk, b"1234567");
    assert_eq!(messages[0].header.opcode, TEST_ECHO);
    let used_idx: u16 = guest
        .memory
        .guest()
        .read_obj(GuestAddress(TX_RINGS + 0x202))
        .unwrap();
    assert_eq!(used_idx, 1, "the chain was returned to the guest");
    assert!(guest.drain().unwrap().is_empty(), "and consumed once");
}

#[test]
fn messages_go_into_rx_and_bulk_is_truncated_to_the_buffer() {
    let mut guest = FakeGuest::new();
    guest.post_rx(MESSAGE_BUFFER_SIZE_U32, 4);
    let message = Message {
        header: header(TEST_ECHO, 2, 6),
        payload: b"hi".to_vec(),
        bulk: b"abcdef".to_vec(),
    };
    guest.queues.deliver(&guest.memory, &message).unwrap();
    let mem = guest.memory.guest();
    let mut bytes = [0u8; HEADER_SIZE + 2];
    mem.read_slice(&mut bytes, GuestAddress(0x1c_0000)).unwrap();
    let delivered = MessageHeader::read_from_bytes(&bytes[..HEADER_SIZE]).unwrap();
    assert_eq!(delivered.flags & FLAG_TRUNCATED, FLAG_TRUNCATED);
    assert_eq!(delivered.bulk_len, 6, "the full length is reported");
    assert_eq!(&bytes[HEADER_SIZE..], b"hi");
    let mut bulk = [0u8; 5];
    mem.read_slice(&mut bulk, GuestAddress(0x1d_0000)).unwrap();
    assert_eq!(&bulk, b"abcd\0", "nothing past the buffer is written");
    let used_len: u32 = mem.read_obj(GuestAddress(RX_RINGS + 0x208)).unwrap();
    assert_eq!(used_len, (HEADER_SIZE + 2 + 4) as u32);
    assert_eq!(
        guest.queues.deliver(&guest.memory, &message),
        Err(IpcFault::NoReceiveBuffer),
        "one posted chain, one message"
    );
}

const MESSAGE_BUFFER_SIZE_U32: u32 = virtio_seep::message::MESSAGE_BUFFER_SIZE as u32;

#[test]
fn malformed_chains_are_typed_faults() {
    let kind = |setup: &dyn Fn(&mut FakeGuest)| {
        let mut guest = FakeGuest::new();
        setup(&mut guest);
        guest.drain().unwrap_err().kind()
    };
    assert_eq!(
        kind(&|g| {
            g.send(header(TEST_NOTIFY, 0, 0), b"", &[]);
            g.desc(TX_RINGS, 0, 0x7fff_0000_0000, 32, 0, 0);
        }),
        "bad-descriptor"
    );
    assert_eq!(
        kind(&|g| g.send(header(TEST_NOTIFY, 225, 0), &[0; 225], &[])),
        "bad-length"
    );
    assert_eq!(
        kind(&|g| g.send(header(TEST_NOTIFY, 0, 5), b"", &[b"1234"])),
        "bad-length"
    );
    assert_eq!(
        kind(&|g| {
            g.send(header(TEST_NOTIFY, 0, 2), b"", &[b"1", b"2"]);
            g.desc(TX_RINGS, 2, 0x1a_0000, 1, NEXT, 1);
        }),
        "descriptor-loop"
    );
    assert_eq!(
        kind(&|g| {
            g.send(header(TEST_NOTIFY, 0, 2), b"", &[b"1", b"2"]);
            g.desc(TX_RINGS, 1, 0x19_0000, 0xffff_fff0, NEXT, 2);
            g.desc(TX_RINGS, 2, 0x1a_0000, 0xffff_fff0, 0, 0);
        }),
        "bad-length"
    );
    assert_eq!(
        kind(&|g| {
            g.send(header(TEST_NOTIFY, 0, 0), b"", &[]);
            g.desc(TX_RINGS, 0, 0x18_0000, 32, NEXT, 99);
        }),
        "bad-descriptor"
    );
    assert_eq!(
        kind(&|g| {
            g.send(header(TEST_NOTIFY, 0, 0), b"", &[]);
            g.desc(TX_RINGS, 0, 0x18_0000, 32, WRITE, 0);
        }),
        "bad-descriptor"
    );
    assert_eq!(
        kind(&|g| g.send(header(0x7eff, 0, 0), b"", &[])),
        "unknown-opcode"
    );
    assert_eq!(
        kind(&|g| {
            g.memory
                .guest()
                .write_obj(40u16, GuestAddress(TX_RINGS + 0x102))
                .unwrap();
        }),
        "bad-ring-index"
    );
}

#[test]
fn rx_buffers_in_the_vmm_area_are_refused() {
    let mut guest = FakeGuest::new();
    guest.desc(RX_RINGS, 0, 0x3000, 256, WRITE, 0);
    guest.publish(false, 0);
    let fault = guest
        .queues
        .deliver(&guest.memory, &Message::default())
        .unwrap_err();
    assert_eq!(fault.kind(), "bad-descriptor");
    let page_table: u64 = guest.memory.guest().read_obj(GuestAddress(0x3000)).unwrap();
    assert_eq!(page_table, 0, "nothing was written there");
}

#[test]
fn an_indirect_descriptor_is_a_typed_fault() {
    let mut guest = FakeGuest::new();
    guest.send(header(TEST_NOTIFY, 0, 1), b"", &[b"1"]);
    guest.desc(TX_RINGS, 1, 0x19_0000, 16, 4, 0);
    assert_eq!(
        guest.drain().unwrap_err(),
        IpcFault::Queue {
            queue: "TX",
            fault: QueueFault::Indirect { index: 1 }
        }
    );
}

#[test]
fn tx_buffers_in_the_vmm_area_are_refused() {
    // The header, then a bulk segment, in the page tables.
    let header_low = |g: &mut FakeGuest| {
        g.send(header(TEST_NOTIFY, 0, 0), b"", &[]);
        g.desc(TX_RINGS, 0, 0x3000, 32, 0, 0);
    };
    let bulk_low = |g: &mut FakeGuest| {
        g.send(header(TEST_NOTIFY, 0, 4), b"", &[b"1234"]);
        g.desc(TX_RINGS, 1, SUPERVISOR_AREA_END - 4, 4, 0, 0);
    };
    for setup in [&header_low as &dyn Fn(&mut FakeGuest), &bulk_low] {
        let mut guest = FakeGuest::new();
        setup(&mut guest);
        let fault = guest.drain().unwrap_err();
        assert_eq!(fault.kind(), "bad-descriptor");
        assert!(fault.to_string().contains("VMM's area"), "{fault}");
    }
}

#[test]
fn the_setup_record_must_lie_above_the_vmm_area() {
    let memory = DomainMemory::new(2 << 20).unwrap();
    let setup = QueueSetup {
        tx: rings(TX_RINGS),
        rx: rings(RX_RINGS),
    };
    for at in [0x3000, 0x1_0000] {
        memory
            .guest()
            .write_slice(setup.as_bytes(), GuestAddress(at))
            .unwrap();
    }
    let fault = DomainQueues::setup_at(&memory, 0x3000).err().unwrap();
    assert_eq!(fault.kind(), "bad-setup");
    assert!(fault.to_string().contains("VMM's area"), "{fault}");
    assert!(DomainQueues::setup_at(&memory, 0x1_0000).is_ok());
    assert_eq!(
        DomainQueues::setup_at(&memory, (2 << 20) - 8)
            .err()
            .map(|f| f.kind()),
        Some("bad-setup")
    );
}

#[test]
fn bad_setups_are_refused() {
    let memory = DomainMemory::new(2 << 20).unwrap();
    let cases = [
        RingAddresses {
            size: 12,
            ..rings(TX_RINGS)
        },
        RingAddresses {
            size: 512,
            ..rings(TX_RINGS)
        },
        RingAddresses {
            desc: 0x7fff_0000,
            ..rings(TX_RINGS)
        },
        RingAddresses {
            used: u64::MAX - 8,
            ..rings(TX_RINGS)
        },
        RingAddresses {
            desc: TX_RINGS + 1,
            ..rings(TX_RINGS)
        },
        RingAddresses {
            used: 0x3000,
            ..rings(TX_RINGS)
        },
    ];
    for tx in cases {
        let setup = QueueSetup {
            tx,
            rx: rings(RX_RINGS),
        };
        let fault = DomainQueues::setup(&memory, &setup).err();
        assert_eq!(
            fault.as_ref().map(IpcFault::kind),
            Some("bad-setup"),
            "{tx:?}"
        );
    }
}

proptest! {
    /// Arbitrary descriptors, avail ring and header bytes: no panic, and the VMM writes
    /// nothing but the TX used ring.
    #[test]
    fn arbitrary_tx_garbage_is_contained(
        table in proptest::collection::vec(any::<u8>(), 16 * SIZE as usize),
        avail in proptest::collection::vec(any::<u8>(), 4 + 2 * SIZE as usize),
        header in proptest::collection::vec(any::<u8>(), HEADER_SIZE),
    ) {
        let mut guest = FakeGuest::new();
        let mem = guest.memory.guest();
        mem.write_slice(&table, GuestAddress(TX_RINGS)).unwrap();
        mem.write_slice(&avail, GuestAddress(TX_RINGS + 0x100)).unwrap();
        mem.write_slice(&header, GuestAddress(0x18_0000)).unwrap();
        let before = snapshot(&guest.memory);
        let _ = guest.drain();
        let after = snapshot(&guest.memory);
        let used = rings(TX_RINGS).used..rings(TX_RINGS).used + 6 + 8 * u64::from(SIZE);
        for at in changed_bytes(&before, &after) {
            prop_assert!(used.contains(&at), "byte {at:#x} changed");
        }
    }

    /// Arbitrary RX descriptors: no panic, and the VMM writes only inside the buffers
    /// the descriptors describe (above the VMM area) and the RX used ring.
    #[test]
    fn arbitrary_rx_garbage_is_contained(
        table in proptest::collection::vec(any::<u8>(), 16 * SIZE as usize),
        head in 0u16..20,
        bulk_len in 0usize..5000,
    ) {
        let mut guest = FakeGuest::new();
        let mem = guest.memory.guest();
        mem.write_slice(&table, GuestAddress(RX_RINGS)).unwrap();
        guest.publish(false, head);
        let message = Message { header: header(TEST_ECHO, 3, 0), payload: b"abc".to_vec(), bulk: vec![7; bulk_len] };
        let before = snapshot(&guest.memory);
        let _ = guest.queues.deliver(&guest.memory, &message);
        let after = snapshot(&guest.memory);
        let buffers: Vec<std::ops::Range<u64>> = table
            .chunks(16)
            .map(|d| {
                let addr = u64::from_le_bytes(d[..8].try_into().unwrap());
                let len = u64::from(u32::from_le_bytes(d[8..12].try_into().unwrap()));
                addr..addr.saturating_add(len)
            })
            .collect();
        let used = rings(RX_RINGS).used..rings(RX_RINGS).used + 6 + 8 * u64::from(SIZE);
        for at in changed_bytes(&before, &after) {
            let allowed = used.contains(&at)
                || (at >= SUPERVISOR_AREA_END && buffers.iter().any(|r| r.contains(&at)));
            prop_assert!(allowed, "byte {at:#x} changed");
        }
    }
}

/// Addresses whose bytes differ (pages compared whole first: fast even unoptimized).
fn changed_bytes(before: &[u8], after: &[u8]) -> Vec<u64> {
    let mut changed = Vec::new();
    for (page, (a, b)) in before.chunks(4096).zip(after.chunks(4096)).enumerate() {
        if a != b {
            let base = page as u64 * 4096;
            changed.extend(
                (0..a.len())
                    .filter(|&i| a[i] != b[i])
                    .map(|i| base + i as u64),
            );
        }
    }
    changed
}

fn snapshot(memory: &DomainMemory) -> Vec<u8> {
    let mut bytes = vec![0u8; memory.size() as usize];
    memory
        .guest()
        .read_slice(&mut bytes, GuestAddress(0))
        .unwrap();
    bytes
}
