//! Host tests of the IPC driver against a fake device that plays the VMM's part of
//! `virtio_seep::queue`: it reads the rings through the addresses the driver registered
//! (host pointers stand in for identity-mapped guest addresses), consumes TX, and
//! delivers scripted messages (or echoes requests) into the posted RX chain.

// Test sizes and wrapping indexes are small or truncated on purpose.
#![allow(clippy::cast_possible_truncation)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::mem::{align_of, offset_of, size_of};
use std::ptr;
use std::rc::Rc;

use virtio_seep::errno::{EDEADLK, EDEADSRCDST, ENOSYS, OK};
use virtio_seep::message::{
    MessageHeader, FLAG_TRUNCATED, HEADER_SIZE, INLINE_PAYLOAD_MAX, MESSAGE_BUFFER_SIZE,
};
use virtio_seep::opcode::{self, REPLY, TEST_ECHO, TEST_NOTIFY, TEST_PING};
use virtio_seep::queue::{IpcOp, QueueSetup, RingAddresses};

use super::ring::{
    AvailRing, Descriptor, SplitRing, UsedElem, UsedRing, DESC_F_NEXT, DESC_F_WRITE, QUEUE_SIZE,
};
use super::{Ipc, IpcArea, Transport};

/// A message as the fake device sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Msg {
    header: MessageHeader,
    payload: Vec<u8>,
    bulk: Vec<u8>,
}

impl Msg {
    /// A message from `source` with `opcode` (and a request id if it is a request).
    fn from(source: u32, opcode: u16, request_id: u64, payload: &[u8], bulk: &[u8]) -> Msg {
        Msg {
            header: MessageHeader {
                source,
                destination: 1,
                opcode,
                request_id,
                payload_len: payload.len() as u32,
                bulk_len: bulk.len() as u32,
                ..MessageHeader::default()
            },
            payload: payload.to_vec(),
            bulk: bulk.to_vec(),
        }
    }

    /// What the VMM delivers for a failed wait.
    fn vmm_error(status: i32) -> Msg {
        let mut msg = Msg::from(0, REPLY, 0, &[], &[]);
        msg.header.status = status;
        msg
    }
}

/// Reads a `T` at guest (here: host) address `addr`.
fn rd<T: Copy>(addr: u64) -> T {
    // SAFETY: the tests only pass addresses the driver registered or offered, which
    // point into live leaked host allocations; `read_unaligned` needs no alignment.
    unsafe { ptr::read_unaligned(addr as *const T) }
}

/// Writes a `T` at guest (here: host) address `addr`.
fn wr<T: Copy>(addr: u64, value: T) {
    // SAFETY: as in `rd`, for addresses the driver made device-writable (used rings,
    // RX buffers).
    unsafe { ptr::write_unaligned(addr as *mut T, value) }
}

/// The fake device's state.
#[derive(Default)]
struct Device {
    setup: Option<QueueSetup>,
    setups: usize,
    /// Next TX avail entry to consume.
    tx_next: u16,
    /// Next RX avail entry to use.
    rx_next: u16,
    /// Every TX message, in order.
    sent: Vec<Msg>,
    /// The descriptor chains of those messages.
    chains: Vec<Vec<Descriptor>>,
    /// Messages to deliver on `Receive` (and, if any, on `AwaitReply`).
    inbox: VecDeque<Msg>,
    /// Every notify value.
    notifies: Vec<u32>,
    /// Request ids assigned so far.
    next_request: u64,
    /// The last request sent and its id.
    last_request: Option<(u64, Msg)>,
    /// When set, TX chains are recorded but not parsed (malformed-chain tests).
    raw: bool,
}

impl Device {
    fn rings(&self) -> (RingAddresses, RingAddresses) {
        let setup = self.setup.expect("notify before setup");
        (setup.tx, setup.rx)
    }

    /// The chain starting at `head`, checked like the VMM checks it.
    fn walk(ring: &RingAddresses, head: u16) -> Vec<Descriptor> {
        let mut chain = Vec::new();
        let mut index = head;
        loop {
            assert!(index < ring.size, "descriptor index out of range");
            assert!(chain.len() < 16, "chain too long or looping");
            let desc: Descriptor = rd(ring.desc + 16 * u64::from(index));
            chain.push(desc);
            if desc.flags & DESC_F_NEXT == 0 {
                return chain;
            }
            index = desc.next;
        }
    }

    fn add_used(ring: &RingAddresses, id: u16, len: u32) {
        let idx: u16 = rd(ring.used + 2);
        let slot = u64::from(idx % ring.size);
        wr(
            ring.used + 4 + 8 * slot,
            UsedElem {
                id: u32::from(id),
                len,
            },
        );
        wr(ring.used + 2, idx.wrapping_add(1));
    }

    fn drain_tx(&mut self) {
        let (tx, _) = self.rings();
        let avail_idx: u16 = rd(tx.avail + 2);
        assert!(
            avail_idx.wrapping_sub(self.tx_next) <= QUEUE_SIZE,
            "more TX entries than the ring holds"
        );
        while self.tx_next != avail_idx {
            let head: u16 = rd(tx.avail + 4 + 2 * u64::from(self.tx_next % tx.size));
            self.tx_next = self.tx_next.wrapping_add(1);
            let chain = Device::walk(&tx, head);
            if !self.raw {
                let msg = Device::read_message(&chain);
                if opcode::lookup(msg.header.opcode).is_some_and(|info| info.expects_reply) {
                    self.next_request += 1;
                    self.last_request = Some((self.next_request, msg.clone()));
                }
                self.sent.push(msg);
            }
            self.chains.push(chain);
            Device::add_used(&tx, head, 0);
        }
    }

    fn read_message(chain: &[Descriptor]) -> Msg {
        assert!(
            chain.iter().all(|d| d.flags & DESC_F_WRITE == 0),
            "TX desc writable"
        );
        let head = chain[0];
        assert!(head.len as usize >= HEADER_SIZE, "short header descriptor");
        let header: MessageHeader = rd(head.addr);
        assert!(header.payload_len as usize <= INLINE_PAYLOAD_MAX);
        assert!(HEADER_SIZE + header.payload_len as usize <= head.len as usize);
        let payload = (0..u64::from(header.payload_len))
            .map(|i| rd::<u8>(head.addr + HEADER_SIZE as u64 + i))
            .collect();
        let mut bulk = Vec::new();
        for segment in &chain[1..] {
            // SAFETY: the segment is a slice the driver lent for this notify.
            let bytes = unsafe {
                std::slice::from_raw_parts(segment.addr as *const u8, segment.len as usize)
            };
            bulk.extend_from_slice(bytes);
        }
        assert_eq!(bulk.len(), header.bulk_len as usize, "bulk_len mismatch");
        Msg {
            header,
            payload,
            bulk,
        }
    }

    fn deliver(&mut self, msg: &Msg) {
        let (_, rx) = self.rings();
        let avail_idx: u16 = rd(rx.avail + 2);
        assert_eq!(
            avail_idx.wrapping_sub(self.rx_next),
            1,
            "the driver must have exactly one RX chain posted"
        );
        let head: u16 = rd(rx.avail + 4 + 2 * u64::from(self.rx_next % rx.size));
        self.rx_next = self.rx_next.wrapping_add(1);
        let chain = Device::walk(&rx, head);
        assert!(
            chain.iter().all(|d| d.flags & DESC_F_WRITE != 0),
            "RX desc not writable"
        );
        assert!(chain[0].len as usize >= MESSAGE_BUFFER_SIZE);
        let room = chain.get(1).map_or(0, |d| d.len as usize);
        let bulk_len = msg.bulk.len().min(room);
        let mut header = msg.header;
        if bulk_len < msg.bulk.len() {
            header.flags |= FLAG_TRUNCATED;
        }
        wr(chain[0].addr, header);
        for (i, byte) in msg.payload.iter().enumerate() {
            wr(chain[0].addr + (HEADER_SIZE + i) as u64, *byte);
        }
        if bulk_len > 0 {
            // SAFETY: the RX bulk buffer, device-writable, `room` >= `bulk_len` bytes.
            unsafe {
                ptr::copy_nonoverlapping(msg.bulk.as_ptr(), chain[1].addr as *mut u8, bulk_len)
            };
        }
        let written = HEADER_SIZE + msg.payload.len() + bulk_len;
        Device::add_used(&rx, head, written as u32);
    }

    fn notify(&mut self, value: u32) {
        self.notifies.push(value);
        self.drain_tx();
        match IpcOp::decode(value) {
            None | Some((IpcOp::Flush, _)) => {}
            Some((IpcOp::Receive, source)) => {
                let position = self
                    .inbox
                    .iter()
                    .position(|m| source == 0 || m.header.source == source)
                    .expect("the domain would block forever");
                let msg = self.inbox.remove(position).expect("in range");
                self.deliver(&msg);
            }
            Some((IpcOp::AwaitReply, _)) => {
                let (id, request) = self
                    .last_request
                    .take()
                    .expect("AwaitReply without request");
                let reply = self.inbox.pop_front().unwrap_or_else(|| {
                    // Echo: the request's payload and bulk back.
                    let mut reply = Msg::from(
                        request.header.destination,
                        REPLY,
                        id,
                        &request.payload,
                        &request.bulk,
                    );
                    reply.header.destination = 1;
                    reply
                });
                self.deliver(&reply);
            }
        }
    }
}

/// The fake transport: a shared handle on the device, so that tests can look inside.
#[derive(Clone, Default)]
struct Fake(Rc<RefCell<Device>>);

// SAFETY: the fake device touches the rings and buffers only inside `setup` and
// `notify`, writes only used rings and RX buffers, and reports every consumed chain.
unsafe impl Transport for Fake {
    unsafe fn setup(&mut self, setup: *const QueueSetup) {
        let mut device = self.0.borrow_mut();
        // SAFETY: the driver passes a valid `QueueSetup`.
        device.setup = Some(unsafe { ptr::read(setup) });
        device.setups += 1;
    }

    unsafe fn notify(&mut self, value: u32) {
        self.0.borrow_mut().notify(value);
    }
}

/// An endpoint over leaked memory with an RX bulk buffer of `bulk_cap` bytes.
fn endpoint(bulk_cap: usize) -> (Ipc<Fake>, Fake) {
    let area = Box::leak(Box::new(IpcArea::new()));
    let bulk = Box::leak(vec![0u8; bulk_cap].into_boxed_slice());
    let fake = Fake::default();
    (Ipc::with_transport(area, bulk, fake.clone()), fake)
}

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + seed) as u8).collect()
}

#[test]
fn ring_layout_is_the_virtio_split_layout() {
    assert_eq!(size_of::<Descriptor>(), 16);
    assert_eq!(offset_of!(Descriptor, len), 8);
    assert_eq!(offset_of!(Descriptor, flags), 12);
    assert_eq!(offset_of!(Descriptor, next), 14);
    assert_eq!(offset_of!(AvailRing, idx), 2);
    assert_eq!(offset_of!(AvailRing, ring), 4);
    assert_eq!(offset_of!(AvailRing, used_event), 4 + 2 * 16);
    assert_eq!(size_of::<UsedElem>(), 8);
    assert_eq!(offset_of!(UsedRing, idx), 2);
    assert_eq!(offset_of!(UsedRing, ring), 4);
    assert_eq!(offset_of!(UsedRing, avail_event), 4 + 8 * 16);
    assert_eq!(offset_of!(SplitRing, desc), 0);
    assert_eq!(offset_of!(SplitRing, avail), 256);
    assert_eq!(offset_of!(SplitRing, used), 296);
    assert_eq!(size_of::<SplitRing>(), 432);
    assert_eq!(align_of::<SplitRing>(), 16);
    // The area shares the hot page with the allocator's state (guest.ld checks the sum).
    assert_eq!(size_of::<IpcArea>(), 1472);
    assert_eq!(align_of::<IpcArea>(), 64);
}

#[test]
fn init_registers_both_rings_and_posts_the_rx_chain() {
    let (ipc, fake) = endpoint(1 << 20);
    let device = fake.0.borrow();
    assert_eq!(device.setups, 1);
    let setup = device.setup.unwrap();
    for ring in [setup.tx, setup.rx] {
        assert_eq!(ring.size, QUEUE_SIZE);
        assert_eq!(ring.reserved, [0; 3]);
        assert_eq!(ring.desc % 16, 0);
        assert_eq!(ring.avail % 2, 0);
        assert_eq!(ring.used % 4, 0);
        assert_eq!(ring.avail, ring.desc + 256);
        assert_eq!(ring.used, ring.desc + 296);
    }
    assert_eq!(setup.rx.desc, setup.tx.desc + 432);
    // Nothing on TX, one chain on RX: 256-byte message buffer, then the bulk buffer.
    assert_eq!(rd::<u16>(setup.tx.avail + 2), 0);
    assert_eq!(rd::<u16>(setup.rx.avail + 2), 1);
    let chain = Device::walk(&setup.rx, rd(setup.rx.avail + 4));
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[0].len, 256);
    assert_eq!(chain[0].flags, DESC_F_WRITE | DESC_F_NEXT);
    assert_eq!(chain[0].addr % 8, 0);
    assert_eq!(chain[1].len, 1 << 20);
    assert_eq!(chain[1].flags, DESC_F_WRITE);
    assert_eq!(chain[1].addr, ipc.bulk as u64);
    assert!(device.notifies.is_empty());
}

#[test]
fn send_offers_header_payload_and_bulk_by_reference() {
    let (mut ipc, fake) = endpoint(4096);
    let bulk = pattern(5000, 3);
    ipc.send(7, TEST_NOTIFY, b"abc", &bulk);
    let device = fake.0.borrow();
    assert_eq!(device.notifies, [IpcOp::Flush.encode(0)]);
    let msg = &device.sent[0];
    assert_eq!(
        msg.header,
        MessageHeader {
            destination: 7,
            opcode: TEST_NOTIFY,
            payload_len: 3,
            bulk_len: 5000,
            ..MessageHeader::default()
        }
    );
    assert_eq!(msg.payload, b"abc");
    assert_eq!(msg.bulk, bulk);
    let chain = &device.chains[0];
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[0].len, 35);
    assert_eq!(chain[0].flags, DESC_F_NEXT);
    assert_eq!(chain[1].addr, bulk.as_ptr() as u64, "bulk is not copied");
    assert_eq!(chain[1].flags, 0);
}

#[test]
fn message_without_bulk_is_one_descriptor() {
    let (mut ipc, fake) = endpoint(0);
    ipc.send(2, TEST_NOTIFY, &[], &[]);
    let device = fake.0.borrow();
    assert_eq!(device.chains[0].len(), 1);
    assert_eq!(device.chains[0][0].len, 32);
    assert_eq!(device.chains[0][0].flags, 0);
    assert_eq!(device.sent[0].header.bulk_len, 0);
}

#[test]
fn sendrec_returns_the_reply() {
    let (mut ipc, fake) = endpoint(1 << 20);
    for size in [0, 1, 4095, 4096, 65536, (1 << 20) - 1, 1 << 20] {
        let bulk = pattern(size, size);
        let payload = pattern(size % 225, 1);
        let reply = ipc.sendrec(5, TEST_ECHO, &payload, &bulk).unwrap();
        assert_eq!(reply.header.opcode, REPLY);
        assert_eq!(reply.header.source, 5);
        assert_eq!(reply.header.status, OK);
        assert!(!reply.truncated());
        assert_eq!(reply.payload, payload);
        assert_eq!(reply.bulk, bulk);
    }
    let device = fake.0.borrow();
    assert!(device
        .notifies
        .iter()
        .all(|&value| value == IpcOp::AwaitReply.encode(0)));
    assert_eq!(device.notifies.len(), 7, "one exit per call");
}

#[test]
fn sendrec_reports_a_failed_call() {
    let (mut ipc, fake) = endpoint(0);
    fake.0
        .borrow_mut()
        .inbox
        .push_back(Msg::vmm_error(EDEADSRCDST));
    assert_eq!(
        ipc.sendrec(5, TEST_PING, &[], &[]).unwrap_err(),
        EDEADSRCDST
    );
    let mut reply = Msg::from(5, REPLY, 2, b"why", &[]);
    reply.header.status = ENOSYS;
    fake.0.borrow_mut().inbox.push_back(reply);
    assert_eq!(ipc.sendrec(5, TEST_PING, &[], &[]).unwrap_err(), ENOSYS);
    // Still usable afterwards.
    assert!(ipc.sendrec(5, TEST_PING, &[], &[]).is_ok());
}

#[test]
fn receive_delivers_header_payload_and_bulk() {
    let (mut ipc, fake) = endpoint(1 << 20);
    let bulk = pattern(70_000, 9);
    fake.0
        .borrow_mut()
        .inbox
        .push_back(Msg::from(4, TEST_ECHO, 77, b"hello", &bulk));
    let msg = ipc.receive().unwrap();
    assert_eq!(msg.header.source, 4);
    assert_eq!(msg.header.opcode, TEST_ECHO);
    assert_eq!(msg.header.request_id, 77);
    assert!(msg.is_request());
    assert_eq!(msg.payload, b"hello");
    assert_eq!(msg.bulk, bulk);
    assert_eq!(fake.0.borrow().notifies, [IpcOp::Receive.encode(0)]);
}

#[test]
fn receive_from_names_the_source_and_maps_vmm_errors() {
    let (mut ipc, fake) = endpoint(0);
    {
        let mut device = fake.0.borrow_mut();
        device
            .inbox
            .push_back(Msg::from(3, TEST_NOTIFY, 0, b"x", &[]));
        device
            .inbox
            .push_back(Msg::from(9, TEST_NOTIFY, 0, b"y", &[]));
    }
    let msg = ipc.receive_from(9).unwrap();
    assert_eq!(msg.payload, b"y");
    assert!(!msg.is_request());
    fake.0.borrow_mut().inbox.push_back(Msg::vmm_error(EDEADLK));
    // The VMM's failure comes from VMM_DOMAIN, which the fake accepts for any source
    // only when asked for any: ask for any to reach it after the queued message.
    assert_eq!(ipc.receive().unwrap().payload, b"x");
    assert_eq!(ipc.receive().unwrap_err(), EDEADLK);
    assert_eq!(
        fake.0.borrow().notifies,
        [
            IpcOp::Receive.encode(9),
            IpcOp::Receive.encode(0),
            IpcOp::Receive.encode(0)
        ]
    );
}

#[test]
#[should_panic(expected = "receive_from needs")]
fn receive_from_refuses_an_oversized_source() {
    let (mut ipc, _fake) = endpoint(0);
    let _ = ipc.receive_from(1 << 24);
}

#[test]
fn reply_and_reply_recv_send_replies() {
    let (mut ipc, fake) = endpoint(4096);
    ipc.reply(41, OK, b"r", &[]);
    fake.0
        .borrow_mut()
        .inbox
        .push_back(Msg::from(6, TEST_PING, 43, &[], &[]));
    let next = ipc.reply_recv(42, ENOSYS, &[], b"bulk").unwrap();
    assert_eq!(next.header.request_id, 43);
    let device = fake.0.borrow();
    assert_eq!(
        device.notifies,
        [IpcOp::Flush.encode(0), IpcOp::Receive.encode(0)]
    );
    assert_eq!(
        device.sent[0].header,
        MessageHeader {
            opcode: REPLY,
            request_id: 41,
            payload_len: 1,
            ..MessageHeader::default()
        }
    );
    assert_eq!(device.sent[1].header.request_id, 42);
    assert_eq!(device.sent[1].header.status, ENOSYS);
    assert_eq!(device.sent[1].bulk, b"bulk");
}

#[test]
fn reply_recv_forward_bulk_sends_back_what_was_received() {
    let (mut ipc, fake) = endpoint(1 << 20);
    let first = pattern(65536, 1);
    let second = pattern(1000, 2);
    {
        let mut device = fake.0.borrow_mut();
        device
            .inbox
            .push_back(Msg::from(4, TEST_ECHO, 1, b"p1", &first));
        device
            .inbox
            .push_back(Msg::from(4, TEST_ECHO, 2, b"p2", &second));
        device.inbox.push_back(Msg::from(4, TEST_PING, 3, &[], &[]));
    }
    let mut msg = ipc.receive().unwrap();
    let mut seen = 0;
    while msg.header.opcode == TEST_ECHO {
        let id = msg.header.request_id;
        let payload = msg.payload.to_vec();
        msg = ipc.reply_recv_forward_bulk(id, OK, &payload).unwrap();
        seen += 1;
    }
    assert_eq!(seen, 2);
    let device = fake.0.borrow();
    assert_eq!(device.sent[0].payload, b"p1");
    assert_eq!(device.sent[0].bulk, first);
    assert_eq!(device.sent[1].payload, b"p2");
    assert_eq!(device.sent[1].bulk, second);
}

#[test]
fn bulk_that_does_not_fit_is_truncated() {
    let (mut ipc, fake) = endpoint(100);
    let bulk = pattern(150, 0);
    fake.0
        .borrow_mut()
        .inbox
        .push_back(Msg::from(2, TEST_NOTIFY, 0, &[], &bulk));
    let msg = ipc.receive().unwrap();
    assert!(msg.truncated());
    assert_eq!(msg.header.bulk_len, 150);
    assert_eq!(msg.bulk, &bulk[..100]);
}

#[test]
fn indexes_wrap_around() {
    let (mut ipc, fake) = endpoint(0);
    for i in 0..70_000u32 {
        let payload = i.to_le_bytes();
        let reply = ipc.sendrec(3, TEST_ECHO, &payload, &[]).unwrap();
        assert_eq!(reply.payload, payload);
        if i % 3 == 0 {
            ipc.send(3, TEST_NOTIFY, &[], &[]);
        }
    }
    let device = fake.0.borrow();
    let (tx, rx) = device.rings();
    assert_eq!(rd::<u16>(tx.avail + 2), (70_000u32 + 23_334) as u16);
    assert_eq!(rd::<u16>(tx.used + 2), (70_000u32 + 23_334) as u16);
    // The first chain, then one more after each delivery (re-posted by the next call).
    assert_eq!(rd::<u16>(rx.avail + 2), 70_001u32 as u16);
    assert_eq!(rd::<u16>(rx.used + 2), 70_000u32 as u16);
}

#[test]
fn raw_offers_chains_as_written() {
    let (mut ipc, fake) = endpoint(0);
    fake.0.borrow_mut().raw = true;
    let mut raw = ipc.raw();
    let header = MessageHeader {
        destination: 3,
        opcode: TEST_NOTIFY,
        payload_len: 225,
        ..MessageHeader::default()
    };
    let addr = raw.write_message(header, &[]);
    assert_eq!(addr, raw.message_buffer_addr());
    raw.set_desc(
        5,
        Descriptor {
            addr,
            len: 257,
            flags: DESC_F_NEXT,
            next: 6,
        },
    );
    raw.set_desc(
        6,
        Descriptor {
            addr: 0x7fff_0000_0000,
            len: 1,
            flags: 0,
            next: 0,
        },
    );
    raw.push_avail(5);
    raw.notify(0xff);
    {
        let device = fake.0.borrow();
        assert_eq!(device.notifies, [0xff]);
        assert_eq!(device.chains[0][0].len, 257);
        assert_eq!(device.chains[0][1].addr, 0x7fff_0000_0000);
        assert_eq!(rd::<MessageHeader>(addr), header);
    }
    // The endpoint still works afterwards.
    fake.0.borrow_mut().raw = false;
    ipc.send(3, TEST_NOTIFY, &[], &[]);
    assert_eq!(fake.0.borrow().sent.len(), 1);
}

#[test]
#[should_panic(expected = "never notified")]
fn raw_chains_must_be_notified() {
    let (mut ipc, _fake) = endpoint(0);
    ipc.raw().push_avail(0);
    ipc.send(3, TEST_NOTIFY, &[], &[]);
}

#[test]
#[should_panic(expected = "inline payload longer")]
fn oversized_payload_panics() {
    let (mut ipc, _fake) = endpoint(0);
    ipc.send(3, TEST_NOTIFY, &[0; INLINE_PAYLOAD_MAX + 1], &[]);
}

#[test]
fn largest_payload_fits() {
    let (mut ipc, fake) = endpoint(0);
    let payload = pattern(INLINE_PAYLOAD_MAX, 5);
    let reply = ipc.sendrec(3, TEST_ECHO, &payload, &[]).unwrap();
    assert_eq!(reply.payload, payload);
    assert_eq!(fake.0.borrow().chains[0][0].len, 256);
}

#[test]
fn server_loop_of_the_readme_compiles_and_answers_requests_only() {
    let (mut ipc, fake) = endpoint(0);
    {
        let mut device = fake.0.borrow_mut();
        device
            .inbox
            .push_back(Msg::from(4, TEST_PING, 10, &[], &[]));
        device
            .inbox
            .push_back(Msg::from(4, TEST_NOTIFY, 0, &[], &[]));
        device
            .inbox
            .push_back(Msg::from(5, TEST_PING, 11, &[], &[]));
        device.inbox.push_back(Msg::vmm_error(EDEADLK));
        device
            .inbox
            .push_back(Msg::from(5, TEST_NOTIFY, 0, &[], &[]));
    }
    let mut next = ipc.receive();
    for _ in 0..4 {
        next = match next {
            Ok(request) if request.is_request() => {
                let id = request.header.request_id;
                ipc.reply_recv(id, OK, b"answer", &[])
            }
            _ => ipc.receive(),
        };
    }
    assert!(next.is_ok());
    let device = fake.0.borrow();
    let replies: Vec<u64> = device.sent.iter().map(|m| m.header.request_id).collect();
    assert_eq!(replies, [10, 11]);
    assert_eq!(device.notifies.len(), 5, "one exit per operation");
}
