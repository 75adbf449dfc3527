//! The router's bounds (docs/ipc.md, "Bounds"): what one domain can make the router
//! hold is bounded and charged to it, and a flooded inbox refuses the flooder, not
//! the other senders. Domains: 1 and 3 clients, 2 a server (never waiting, so
//! requests pile up in its inbox unless the test receives them).

use virtio_seep::opcode::{TEST_NOTIFY, TEST_PING};

use super::*;

fn router(limits: StormLimits) -> Router {
    Router::new(3, [(1, 2), (3, 2), (2, 1)], limits)
}

fn ping(to: DomainId) -> Message {
    Message {
        header: MessageHeader {
            destination: to,
            opcode: TEST_PING,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn send(r: &mut Router, from: DomainId, message: Message) -> Result<u64, IpcFault> {
    let (_, last) = r.submit(from, vec![message], Instant::now())?;
    Ok(last.unwrap_or(0))
}

/// The server takes the next request and answers it with `bulk` bytes of data.
fn serve_one(r: &mut Router, bulk: usize) {
    let request = delivered(r.wait(2, IpcOp::Receive, 0, None).unwrap());
    let mut answer = Message::default();
    answer.header.opcode = REPLY;
    answer.header.request_id = request.header.request_id;
    answer.bulk = vec![7; bulk];
    r.submit(2, vec![answer], Instant::now()).unwrap();
}

fn delivered(outcome: WaitOutcome) -> Message {
    match outcome {
        WaitOutcome::Deliver(message) => *message,
        other => panic!("expected a delivery, got {other:?}"),
    }
}

fn no_rate_limit() -> StormLimits {
    StormLimits {
        per_second: 1_000_000,
        burst: 1_000_000,
        ..StormLimits::default()
    }
}

#[test]
fn a_caller_has_a_bounded_number_of_requests_in_flight() {
    let limits = StormLimits {
        outstanding: 4,
        ..no_rate_limit()
    };
    let mut r = router(limits);
    let ids: Vec<u64> = (0..4).map(|_| send(&mut r, 1, ping(2)).unwrap()).collect();
    assert!(matches!(
        send(&mut r, 1, ping(2)),
        Err(IpcFault::MessageStorm(StormLimit::Outstanding { limit: 4 }))
    ));
    // Another caller is not affected.
    send(&mut r, 3, ping(2)).unwrap();
    // Served but not taken: still in flight (the reply waits in its inbox).
    serve_one(&mut r, 0);
    assert!(send(&mut r, 1, ping(2)).is_err());
    // Taken: a slot is free again.
    let reply = delivered(r.wait(1, IpcOp::AwaitReply, 0, Some(ids[0])).unwrap());
    assert_eq!(reply.header.request_id, ids[0]);
    send(&mut r, 1, ping(2)).unwrap();
}

#[test]
fn unread_replies_hold_a_bounded_number_of_bytes() {
    let limits = StormLimits {
        inbox_bytes: 4 << 20,
        ..no_rate_limit()
    };
    let mut r = router(limits);
    for _ in 0..limits.outstanding {
        send(&mut r, 1, ping(2)).unwrap();
        serve_one(&mut r, 1 << 20);
    }
    let held = r.slot(1).inbox_bytes;
    assert!(held <= 4 << 20, "the caller's inbox holds {held} bytes");
    assert_eq!(r.held_bytes, held);
    let statuses: Vec<Errno> = r.slot(1).inbox.iter().map(|m| m.header.status).collect();
    assert_eq!(statuses.len(), limits.outstanding as usize);
    assert_eq!(
        statuses.iter().filter(|s| **s == errno::OK).count(),
        3,
        "three replies of 1 MiB fit in 4 MiB with their headers; the rest say ENOBUFS"
    );
    assert!(statuses
        .iter()
        .all(|s| [errno::OK, errno::ENOBUFS].contains(s)));
}

#[test]
fn a_full_inbox_refuses_the_flooder_with_eagain_and_lets_others_in() {
    let limits = StormLimits {
        inbox: 4,
        inbox_share: 2,
        ..no_rate_limit()
    };
    let mut r = router(limits);
    let accepted: Vec<u64> = (0..4).map(|_| send(&mut r, 1, ping(2)).unwrap()).collect();
    // The flooder's fifth request is answered EAGAIN at once; it is not faulted.
    let refused = send(&mut r, 1, ping(2)).unwrap();
    let reply = delivered(r.wait(1, IpcOp::AwaitReply, 0, Some(refused)).unwrap());
    assert_eq!(reply.header.status, errno::EAGAIN);
    // Another client still gets its share of the full inbox.
    send(&mut r, 3, ping(2)).unwrap();
    send(&mut r, 3, ping(2)).unwrap();
    let third = send(&mut r, 3, ping(2)).unwrap();
    let reply = delivered(r.wait(3, IpcOp::AwaitReply, 0, Some(third)).unwrap());
    assert_eq!(reply.header.status, errno::EAGAIN);
    assert_eq!(r.slot(2).inbox.len(), 6);
    assert!(accepted.iter().all(|id| r.requests.contains_key(id)));
}

#[test]
fn one_way_messages_are_bounded_per_sender() {
    let limits = StormLimits {
        one_way: 3,
        ..no_rate_limit()
    };
    let mut r = router(limits);
    let notify = || Message {
        header: MessageHeader {
            destination: 2,
            opcode: TEST_NOTIFY,
            ..Default::default()
        },
        ..Default::default()
    };
    for _ in 0..3 {
        send(&mut r, 1, notify()).unwrap();
    }
    assert!(matches!(
        send(&mut r, 1, notify()),
        Err(IpcFault::MessageStorm(StormLimit::OneWay { limit: 3 }))
    ));
    // Delivered: the sender may send again.
    delivered(r.wait(2, IpcOp::Receive, 0, None).unwrap());
    send(&mut r, 1, notify()).unwrap();
}

#[test]
fn messages_from_a_stopped_domain_are_dropped_at_once() {
    let mut r = router(no_rate_limit());
    for _ in 0..5 {
        send(&mut r, 1, ping(2)).unwrap();
    }
    send(&mut r, 3, ping(2)).unwrap();
    r.stopped(1);
    let sources: Vec<DomainId> = r.slot(2).inbox.iter().map(|m| m.header.source).collect();
    assert_eq!(sources, [3], "only the live client's request is left");
    assert_eq!(
        r.requests.len(),
        1,
        "the dead client's requests are forgotten"
    );
    assert!(r.requests.values().all(|request| request.caller == 3));
}

#[test]
fn requests_owed_by_a_stopped_server_release_their_callers() {
    let limits = StormLimits {
        outstanding: 2,
        ..no_rate_limit()
    };
    let mut r = router(limits);
    let first = send(&mut r, 1, ping(2)).unwrap();
    // The caller gives up on the first (e.g. it was rolled back) ...
    r.recovered(1, None);
    let second = send(&mut r, 1, ping(2)).unwrap();
    assert_eq!(r.slot(1).outstanding, 2);
    // ... and the server dies: both requests are settled, the abandoned one dropped,
    // the other answered to the caller (waiting in receive since its rollback).
    assert_eq!(r.stopped(2).unwrap(), [1]);
    assert!(!r.requests.contains_key(&first));
    assert!(r.requests.is_empty());
    let answer = r.take_delivery(1).unwrap();
    assert_eq!(
        (answer.header.request_id, answer.header.status),
        (second, errno::EDEADSRCDST)
    );
    assert_eq!(r.slot(1).outstanding, 0);
    assert_eq!(r.held_bytes, 0);
}
