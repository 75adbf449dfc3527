//! The router's rules, on fake domains: 1 = client, 2 = server, 3 = second client,
//! 4 = a domain the client may not call.

use virtio_seep::opcode::{TEST_NOTIFY, TEST_PING};

use super::*;

fn router() -> Router {
    Router::new(4, [(1, 2), (3, 2), (2, 1)], StormLimits::default())
}

fn request(to: DomainId, opcode: u16) -> Message {
    Message {
        header: MessageHeader {
            destination: to,
            opcode,
            ..Default::default()
        },
        payload: b"hi".to_vec(),
        bulk: vec![],
    }
}

fn reply(request_id: u64, status: Errno) -> Message {
    Message {
        header: MessageHeader {
            opcode: REPLY,
            request_id,
            status,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn delivered(outcome: WaitOutcome) -> Message {
    match outcome {
        WaitOutcome::Deliver(message) => *message,
        other => panic!("expected a delivery, got {other:?}"),
    }
}

/// Client 1 calls server 2, which is waiting: the server is woken with the request.
fn call(r: &mut Router, from: DomainId) -> u64 {
    let (woken, last) = r
        .submit(from, vec![request(2, TEST_PING)], Instant::now())
        .unwrap();
    let id = last.unwrap();
    assert_eq!(
        r.wait(from, IpcOp::AwaitReply, 0, last).unwrap(),
        WaitOutcome::Blocked
    );
    if !woken.is_empty() {
        assert_eq!(woken, [2]);
    }
    id
}

#[test]
fn request_and_reply_round_trip() {
    let mut r = router();
    assert_eq!(
        r.wait(2, IpcOp::Receive, 0, None).unwrap(),
        WaitOutcome::Blocked
    );
    let id = call(&mut r, 1);
    let got = r.take_delivery(2).unwrap();
    assert_eq!(got.header.source, 1, "the router stamps the true source");
    assert_eq!(got.header.request_id, id);
    assert_eq!(got.payload, b"hi");

    let (woken, _) = r.submit(2, vec![reply(id, 0)], Instant::now()).unwrap();
    assert_eq!(woken, [1]);
    let answer = r.take_delivery(1).unwrap();
    assert_eq!((answer.header.source, answer.header.request_id), (2, id));
    assert_eq!(r.activity(1), &Activity::Running);
}

#[test]
fn forged_source_is_overwritten() {
    let mut r = router();
    let mut forged = request(2, TEST_NOTIFY);
    forged.header.source = 3;
    r.submit(1, vec![forged], Instant::now()).unwrap();
    let got = delivered(r.wait(2, IpcOp::Receive, 0, None).unwrap());
    assert_eq!(got.header.source, 1);
}

#[test]
fn forbidden_destinations_are_faults() {
    let mut r = router();
    for to in [4, 1, 0, 99] {
        assert_eq!(
            r.submit(1, vec![request(to, TEST_PING)], Instant::now()),
            Err(IpcFault::ForbiddenDestination(to))
        );
    }
}

#[test]
fn replies_go_only_to_the_waiting_caller() {
    let mut r = router();
    let id = call(&mut r, 1);
    // Not received yet: the server cannot answer it.
    assert_eq!(
        r.submit(2, vec![reply(id, 0)], Instant::now()),
        Err(IpcFault::ReplyWithoutCaller(id))
    );
    delivered(r.wait(2, IpcOp::Receive, 0, None).unwrap());
    // Another domain cannot answer it either, nor can anyone answer twice.
    assert_eq!(
        r.submit(3, vec![reply(id, 0)], Instant::now()),
        Err(IpcFault::ReplyWithoutCaller(id))
    );
    r.submit(2, vec![reply(id, 0)], Instant::now()).unwrap();
    assert_eq!(
        r.submit(2, vec![reply(id, 0)], Instant::now()),
        Err(IpcFault::ReplyWithoutCaller(id))
    );
}

#[test]
fn deferred_replies_answer_the_right_callers() {
    let mut r = router();
    let first = call(&mut r, 1);
    let second = call(&mut r, 3);
    assert_eq!(
        delivered(r.wait(2, IpcOp::Receive, 0, None).unwrap())
            .header
            .request_id,
        first
    );
    // The server parks the first request and serves the second.
    let got = delivered(r.wait(2, IpcOp::Receive, 0, None).unwrap());
    assert_eq!(got.header.request_id, second);
    let (woken, _) = r.submit(2, vec![reply(second, 0)], Instant::now()).unwrap();
    assert_eq!(woken, [3]);
    let (woken, _) = r.submit(2, vec![reply(first, 7)], Instant::now()).unwrap();
    assert_eq!(woken, [1]);
    assert_eq!(r.take_delivery(1).unwrap().header.status, 7);
}

#[test]
fn a_cycle_of_waits_is_refused_with_edeadlk() {
    let mut r = router();
    assert_eq!(
        r.wait(1, IpcOp::Receive, 2, None).unwrap(),
        WaitOutcome::Blocked
    );
    let refused = delivered(r.wait(2, IpcOp::Receive, 1, None).unwrap());
    assert_eq!(refused.header.status, errno::EDEADLK);
    assert_eq!(refused.header.source, VMM_DOMAIN);
    assert_eq!(r.activity(2), &Activity::Running);

    // A call whose callee waits on the caller is refused too: 2 calls 1, then 1 calls 2.
    let mut r = router();
    let (_, last) = r
        .submit(2, vec![request(1, TEST_PING)], Instant::now())
        .unwrap();
    assert_eq!(
        r.wait(2, IpcOp::AwaitReply, 0, last).unwrap(),
        WaitOutcome::Blocked
    );
    let (_, last) = r
        .submit(1, vec![request(2, TEST_PING)], Instant::now())
        .unwrap();
    let refused = delivered(r.wait(1, IpcOp::AwaitReply, 0, last).unwrap());
    assert_eq!(
        (refused.header.status, refused.header.request_id),
        (errno::EDEADLK, last.unwrap())
    );
}

#[test]
fn a_stopped_callee_fails_its_callers() {
    let mut r = router();
    let id = call(&mut r, 1);
    assert_eq!(r.stopped(2).unwrap(), [1]);
    let answer = r.take_delivery(1).unwrap();
    assert_eq!(
        (answer.header.request_id, answer.header.status),
        (id, errno::EDEADSRCDST)
    );
    // New calls to it fail at once.
    let (_, last) = r
        .submit(1, vec![request(2, TEST_PING)], Instant::now())
        .unwrap();
    let answer = delivered(r.wait(1, IpcOp::AwaitReply, 0, last).unwrap());
    assert_eq!(answer.header.status, errno::EDEADSRCDST);
}

#[test]
fn waiting_on_a_stopped_domain_fails() {
    let mut r = router();
    assert_eq!(
        r.wait(1, IpcOp::Receive, 3, None).unwrap(),
        WaitOutcome::Blocked
    );
    assert_eq!(r.stopped(3).unwrap(), [1]);
    assert_eq!(
        r.take_delivery(1).unwrap().header.status,
        errno::EDEADSRCDST
    );
    let refused = delivered(r.wait(1, IpcOp::Receive, 3, None).unwrap());
    assert_eq!(refused.header.status, errno::EDEADSRCDST);
}

#[test]
fn receive_from_a_source_skips_others() {
    let mut r = router();
    r.submit(1, vec![request(2, TEST_NOTIFY)], Instant::now())
        .unwrap();
    r.submit(3, vec![request(2, TEST_NOTIFY)], Instant::now())
        .unwrap();
    assert_eq!(
        delivered(r.wait(2, IpcOp::Receive, 3, None).unwrap())
            .header
            .source,
        3
    );
    assert_eq!(
        delivered(r.wait(2, IpcOp::Receive, 0, None).unwrap())
            .header
            .source,
        1
    );
}

#[test]
fn bad_operations_are_faults() {
    let mut r = router();
    assert!(matches!(
        r.wait(1, IpcOp::AwaitReply, 0, None),
        Err(IpcFault::BadOperation(OperationFault::AwaitWithoutRequest))
    ));
    assert!(matches!(
        r.wait(1, IpcOp::Receive, 1, None),
        Err(IpcFault::BadOperation(OperationFault::ReceiveFrom(1)))
    ));
    assert!(matches!(
        r.wait(1, IpcOp::Receive, 77, None),
        Err(IpcFault::BadOperation(OperationFault::ReceiveFrom(77)))
    ));
}

#[test]
fn storms_are_faults() {
    let limits = StormLimits {
        per_second: 1,
        burst: 10,
        inbox: 1_000,
        ..StormLimits::default()
    };
    let mut r = Router::new(2, [(1, 2)], limits);
    let now = Instant::now();
    for _ in 0..10 {
        r.submit(1, vec![request(2, TEST_NOTIFY)], now).unwrap();
    }
    assert_eq!(
        r.submit(1, vec![request(2, TEST_NOTIFY)], now),
        Err(IpcFault::MessageStorm(StormLimit::Rate {
            burst: 10,
            per_second: 1
        }))
    );

    let limits = StormLimits {
        per_second: 1_000_000,
        burst: 1_000_000,
        inbox: 5,
        inbox_share: 1,
        ..StormLimits::default()
    };
    let mut r = Router::new(2, [(1, 2)], limits);
    for _ in 0..5 {
        r.submit(1, vec![request(2, TEST_NOTIFY)], now).unwrap();
    }
    assert_eq!(
        r.submit(1, vec![request(2, TEST_NOTIFY)], now),
        Err(IpcFault::MessageStorm(StormLimit::InboxFull { to: 2 }))
    );
}

#[test]
fn kernel_calls_follow_roles() {
    let roles = vec![Role::ProcessManager, Role::Server, Role::Process];
    let mut r = Router::with_roles(roles, [], StormLimits::default());
    let now = Instant::now();
    assert!(r.kernel_request(1, opcode::SYS_CREATE_DOMAIN, now).is_ok());
    assert!(r.kernel_request(2, opcode::SYS_ROOT_FS, now).is_ok());
    for (from, op) in [
        (2, opcode::SYS_CREATE_DOMAIN),
        (3, opcode::SYS_ROOT_FS),
        (1, TEST_PING),
    ] {
        assert_eq!(
            r.kernel_request(from, op, now),
            Err(IpcFault::ForbiddenDestination(VMM_DOMAIN)),
            "{from} {op:#x}"
        );
    }
}

#[test]
fn a_kernel_reply_reaches_the_caller() {
    let mut r = Router::with_roles(vec![Role::ProcessManager], [], StormLimits::default());
    let id = r
        .kernel_request(1, opcode::SYS_ROOT_FS, Instant::now())
        .unwrap();
    r.kernel_reply(
        id,
        Message {
            bulk: b"fs".to_vec(),
            ..Default::default()
        },
    );
    let got = delivered(r.wait(1, IpcOp::AwaitReply, 0, Some(id)).unwrap());
    assert_eq!((got.header.source, got.header.request_id), (VMM_DOMAIN, id));
    assert_eq!(got.bulk, b"fs");
}

#[test]
fn domains_added_at_run_time_get_their_edges() {
    let mut r = router();
    let id = r.add_domain(Role::Process, &[2]);
    assert_eq!(id, 5);
    assert_eq!(r.callees(id), [2]);
    r.submit(id, vec![request(2, TEST_NOTIFY)], Instant::now())
        .unwrap();
    assert!(r
        .submit(id, vec![request(1, TEST_NOTIFY)], Instant::now())
        .is_err());
}

#[test]
fn process_bookkeeping_is_for_the_process_manager_only() {
    let roles = vec![Role::ProcessManager, Role::Server, Role::Process];
    let mut r = Router::with_roles(roles, [(1, 2), (3, 2)], StormLimits::default())
        .manager_only([opcode::VFS_PROC_EXIT]);
    let now = Instant::now();
    r.submit(1, vec![request(2, opcode::VFS_PROC_EXIT)], now)
        .unwrap();
    let (_, last) = r
        .submit(3, vec![request(2, opcode::VFS_PROC_EXIT)], now)
        .unwrap();
    let answer = delivered(r.wait(3, IpcOp::AwaitReply, 0, last).unwrap());
    assert_eq!(answer.header.status, errno::EPERM);
    let got = delivered(r.wait(2, IpcOp::Receive, 0, None).unwrap());
    assert_eq!(
        got.header.source, 1,
        "only the process manager's message arrives"
    );
    assert_eq!(
        r.wait(2, IpcOp::Receive, 0, None).unwrap(),
        WaitOutcome::Blocked
    );
}
