//! The server loop against a scripted fake port.

use std::collections::VecDeque;

use ankh_proto::errno::{EDEADSRCDST, EINVAL, EMSGSIZE, ENOSYS};
use ankh_proto::opcode::{
    DS_LIST, DS_RETRIEVE, PM_GETPID, REPLY, SYS_DOMAIN_EXITED, SYS_ROOT_FS, TEST_ECHO, TEST_PING,
    VFS_OPEN,
};
use ankh_proto::server::{Endpoint, Handled, Kernel, Reply, Request, Server};
use ankh_proto::{DomainId, Errno};
use virtio_seep::message::{MessageHeader, INLINE_PAYLOAD_MAX, VMM_DOMAIN};

use super::*;

/// What the fake port saw, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Event {
    Receive,
    ReplyRecv(u64, Errno, Vec<u8>, Vec<u8>),
    Reply(u64, Errno, Vec<u8>),
    Send(DomainId, u16, Vec<u8>),
    Sendrec(DomainId, u16, Vec<u8>, Vec<u8>),
}

/// A message the fake delivers: header fields, payload, bulk (or a VMM failure).
type Incoming = Result<(DomainId, u16, u64, Vec<u8>, Vec<u8>), Errno>;

#[derive(Default)]
struct FakePort {
    incoming: VecDeque<Incoming>,
    replies: VecDeque<Result<Reply, Errno>>,
    events: Vec<Event>,
}

impl FakePort {
    fn deliver(&mut self, into: &mut Message) -> Result<(), Errno> {
        let (source, opcode, request_id, payload, bulk) =
            self.incoming.pop_front().expect("script ran out")?;
        let header = MessageHeader {
            source,
            opcode,
            request_id,
            ..MessageHeader::default()
        };
        into.fill(&header, &payload, &bulk);
        Ok(())
    }
}

impl Port for FakePort {
    fn receive(&mut self, into: &mut Message) -> Result<(), Errno> {
        self.events.push(Event::Receive);
        self.deliver(into)
    }

    fn reply_recv(
        &mut self,
        request_id: u64,
        status: Errno,
        payload: &[u8],
        bulk: &[u8],
        into: &mut Message,
    ) -> Result<(), Errno> {
        self.events.push(Event::ReplyRecv(
            request_id,
            status,
            payload.to_vec(),
            bulk.to_vec(),
        ));
        self.deliver(into)
    }

    fn reply(&mut self, request_id: u64, status: Errno, payload: &[u8], _bulk: &[u8]) {
        self.events
            .push(Event::Reply(request_id, status, payload.to_vec()));
    }

    fn send(&mut self, to: DomainId, opcode: u16, payload: &[u8], _bulk: &[u8]) {
        self.events.push(Event::Send(to, opcode, payload.to_vec()));
    }

    fn sendrec(
        &mut self,
        to: DomainId,
        opcode: u16,
        payload: &[u8],
        bulk: &[u8],
    ) -> Result<Reply, Errno> {
        self.events
            .push(Event::Sendrec(to, opcode, payload.to_vec(), bulk.to_vec()));
        self.replies.pop_front().expect("no scripted reply")
    }
}

/// A toy server: echoes `TEST_ECHO`, parks `TEST_PING` and answers it on the next
/// `DS_LIST`, forwards `DS_RETRIEVE` to DS, `VFS_OPEN` to the kernel, answers
/// `PM_GETPID` with an oversized payload, and records what `start` got back.
#[derive(Default)]
struct Toy {
    parked: Vec<u64>,
    started_with: Option<Result<Reply, Errno>>,
    one_way: Vec<(DomainId, u16)>,
}

impl Server for Toy {
    fn start(&mut self, kernel: &mut dyn Kernel) {
        self.started_with = Some(kernel.call(Endpoint::Kernel, SYS_ROOT_FS, &[], &[]));
    }

    fn handle(&mut self, request: &Request<'_>, kernel: &mut dyn Kernel) -> Handled {
        match request.opcode {
            TEST_ECHO => Reply::ok_with_bulk(request.payload, request.bulk.to_vec()).into(),
            TEST_PING => {
                self.parked.push(request.request_id);
                Handled::Deferred
            }
            DS_LIST => {
                for id in self.parked.drain(..) {
                    kernel.reply(id, Reply::ok(*b"late"));
                }
                Reply::ok(Vec::new()).into()
            }
            DS_RETRIEVE => {
                // The request must survive the nested call intact.
                let before = request.payload.to_vec();
                let got = kernel.call(Endpoint::Ds, DS_RETRIEVE, request.payload, &[]);
                assert_eq!(request.payload, &before[..]);
                got.into()
            }
            VFS_OPEN => kernel.call(Endpoint::Mm, VFS_OPEN, &[], &[]).into(),
            PM_GETPID => Reply::ok(vec![0; INLINE_PAYLOAD_MAX + 1]).into(),
            SYS_DOMAIN_EXITED => {
                self.one_way.push((request.source, request.opcode));
                Reply::ok(*b"ignored").into()
            }
            _ => Reply::err(ENOSYS).into(),
        }
    }
}

fn peers() -> Peers {
    Peers {
        pm: Some(4),
        vfs: Some(2),
        ds: Some(1),
        mm: None,
        blk: None,
    }
}

fn serve(
    incoming: Vec<Incoming>,
    replies: Vec<Result<Reply, Errno>>,
    steps: usize,
) -> Serving<FakePort, Toy> {
    let port = FakePort {
        incoming: incoming.into(),
        replies: replies.into(),
        events: Vec::new(),
    };
    let mut serving = Serving::new(port, peers(), Toy::default());
    serving.start();
    for _ in 0..steps {
        serving.step();
    }
    serving
}

#[test]
fn start_calls_the_kernel_then_requests_are_answered_in_one_exit() {
    let serving = serve(
        vec![
            Ok((9, TEST_ECHO, 1, b"hi".to_vec(), b"bulk".to_vec())),
            Ok((9, TEST_ECHO, 2, vec![7; INLINE_PAYLOAD_MAX], Vec::new())),
            Ok((9, 0x7eee, 3, Vec::new(), Vec::new())),
        ],
        vec![Ok(Reply::ok_with_bulk(Vec::new(), b"archive".to_vec()))],
        2,
    );
    assert_eq!(
        serving.server().started_with,
        Some(Ok(Reply::ok_with_bulk(Vec::new(), b"archive".to_vec())))
    );
    assert_eq!(
        serving.port().events,
        [
            Event::Sendrec(VMM_DOMAIN, SYS_ROOT_FS, Vec::new(), Vec::new()),
            Event::Receive,
            Event::ReplyRecv(1, 0, b"hi".to_vec(), b"bulk".to_vec()),
            Event::ReplyRecv(2, 0, vec![7; INLINE_PAYLOAD_MAX], Vec::new()),
        ]
    );
}

#[test]
fn deferred_requests_are_answered_later_and_the_loop_just_waits() {
    let serving = serve(
        vec![
            Ok((9, TEST_PING, 5, Vec::new(), Vec::new())),
            Ok((8, DS_LIST, 6, Vec::new(), Vec::new())),
            Ok((8, TEST_PING, 7, Vec::new(), Vec::new())),
        ],
        vec![Ok(Reply::default())],
        2,
    );
    assert_eq!(
        serving.port().events[1..],
        [
            Event::Receive,
            Event::Receive,
            Event::Reply(5, 0, b"late".to_vec()),
            Event::ReplyRecv(6, 0, Vec::new(), Vec::new()),
        ]
    );
}

#[test]
fn one_way_messages_and_vmm_failures_get_no_reply() {
    let serving = serve(
        vec![
            Ok((VMM_DOMAIN, SYS_DOMAIN_EXITED, 0, vec![1; 16], Vec::new())),
            Err(EDEADSRCDST),
            Ok((3, TEST_ECHO, 4, b"x".to_vec(), Vec::new())),
            Ok((3, TEST_ECHO, 5, Vec::new(), Vec::new())),
        ],
        vec![Ok(Reply::default())],
        3,
    );
    assert_eq!(serving.server().one_way, [(VMM_DOMAIN, SYS_DOMAIN_EXITED)]);
    assert_eq!(
        serving.port().events[1..],
        [
            Event::Receive,
            Event::Receive,
            Event::Receive,
            Event::ReplyRecv(4, 0, b"x".to_vec(), Vec::new()),
        ]
    );
}

#[test]
fn calls_go_to_the_peers_and_their_errors_come_back() {
    let serving = serve(
        vec![
            Ok((9, DS_RETRIEVE, 1, b"key".to_vec(), Vec::new())),
            Ok((9, DS_RETRIEVE, 2, b"key".to_vec(), Vec::new())),
            Ok((9, VFS_OPEN, 3, Vec::new(), Vec::new())),
            Ok((9, TEST_PING, 4, Vec::new(), Vec::new())),
        ],
        vec![Ok(Reply::default()), Ok(Reply::ok(*b"v")), Err(EINVAL)],
        3,
    );
    assert_eq!(
        serving.port().events[1..],
        [
            Event::Receive,
            Event::Sendrec(1, DS_RETRIEVE, b"key".to_vec(), Vec::new()),
            Event::ReplyRecv(1, 0, b"v".to_vec(), Vec::new()),
            Event::Sendrec(1, DS_RETRIEVE, b"key".to_vec(), Vec::new()),
            Event::ReplyRecv(2, EINVAL, Vec::new(), Vec::new()),
            // No `mm` peer: ENOSYS without any IPC.
            Event::ReplyRecv(3, ENOSYS, Vec::new(), Vec::new()),
        ]
    );
}

#[test]
fn oversized_replies_become_emsgsize() {
    let serving = serve(
        vec![
            Ok((9, PM_GETPID, 1, Vec::new(), Vec::new())),
            Ok((9, TEST_PING, 2, Vec::new(), Vec::new())),
        ],
        vec![Ok(Reply::default())],
        1,
    );
    assert_eq!(
        serving.port().events[2],
        Event::ReplyRecv(1, EMSGSIZE, Vec::new(), Vec::new())
    );
}

/// A port that must never be used.
struct NoPort;

impl Port for NoPort {
    fn receive(&mut self, _: &mut Message) -> Result<(), Errno> {
        unreachable!()
    }
    fn reply_recv(
        &mut self,
        _: u64,
        _: Errno,
        _: &[u8],
        _: &[u8],
        _: &mut Message,
    ) -> Result<(), Errno> {
        unreachable!()
    }
    fn reply(&mut self, _: u64, _: Errno, _: &[u8], _: &[u8]) {
        unreachable!()
    }
    fn send(&mut self, _: DomainId, _: u16, _: &[u8], _: &[u8]) {
        unreachable!()
    }
    fn sendrec(&mut self, _: DomainId, _: u16, _: &[u8], _: &[u8]) -> Result<Reply, Errno> {
        unreachable!()
    }
}

#[test]
fn kernel_rejects_what_the_wire_cannot_carry_without_ipc() {
    let peers = peers();
    let mut port = NoPort;
    let mut kernel = PortKernel::new(&mut port, &peers);
    let big = vec![0; INLINE_PAYLOAD_MAX + 1];
    assert_eq!(kernel.call(Endpoint::Ds, DS_LIST, &big, &[]), Err(EMSGSIZE));
    let huge = vec![0; (1 << 20) + 1];
    assert_eq!(
        kernel.call(Endpoint::Ds, DS_LIST, &[], &huge),
        Err(EMSGSIZE)
    );
    assert_eq!(kernel.call(Endpoint::Ds, 0x7eee, &[], &[]), Err(ENOSYS));
    assert_eq!(kernel.call(Endpoint::Mm, DS_LIST, &[], &[]), Err(ENOSYS));
}

#[test]
fn one_way_calls_are_sent_without_waiting() {
    let peers = peers();
    let mut port = FakePort::default();
    let mut kernel = PortKernel::new(&mut port, &peers);
    assert_eq!(
        kernel.call(Endpoint::Pm, SYS_DOMAIN_EXITED, b"p", &[]),
        Ok(Reply::default())
    );
    assert_eq!(kernel.call(Endpoint::Pm, REPLY, &[], &[]), Err(EINVAL));
    assert_eq!(
        port.events,
        [Event::Send(4, SYS_DOMAIN_EXITED, b"p".to_vec())]
    );
}

#[test]
fn peers_resolve_by_name_and_kernel_is_the_vmm() {
    let peers = peers();
    assert_eq!(peers.resolve(Endpoint::Pm), Some(4));
    assert_eq!(peers.resolve(Endpoint::Vfs), Some(2));
    assert_eq!(peers.resolve(Endpoint::Ds), Some(1));
    assert_eq!(peers.resolve(Endpoint::Mm), None);
    assert_eq!(peers.resolve(Endpoint::Kernel), Some(VMM_DOMAIN));
}
