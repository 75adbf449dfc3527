//! Domains talking over virtio-seep: calls, bulk data, deferred replies, deadlock
//! detection, and every kind of malformed input, on real VMs.

use ankh_domains::{DomainSpec, MessageRate, Role};
use ankh_tests::run_system;
use ankh_vmm::ipc::router::Wait;
use ankh_vmm::system::DomainEnd;
use ankh_vmm::DomainFault;

fn echo() -> DomainSpec {
    DomainSpec::new("echo", "echo")
}

/// Clients are processes: when they fault they stop (servers would be recovered).
fn client(name: &str, image: &str) -> DomainSpec {
    DomainSpec::new(name, image)
        .calls(["echo"])
        .role(Role::Process)
}

#[test]
fn ping_calls_echo_and_echo_keeps_serving() {
    let ran = run_system(1, None, vec![echo(), client("ping", "ping")]);
    ran.assert_exited_cleanly("ping");
    assert_eq!(ran.lines_of("ping"), ["ping: ok"]);
    assert_eq!(
        ran.end("echo"),
        &DomainEnd::Waiting(Wait::Receive { from: None })
    );
}

#[test]
fn bulk_data_up_to_1_mib_arrives_intact() {
    let ran = run_system(1, None, vec![echo(), client("bulk", "bulk")]);
    ran.assert_exited_cleanly("bulk");
    assert_eq!(ran.lines_of("bulk"), ["bulk: ok"]);
}

#[test]
fn calls_work_across_host_threads() {
    let ran = run_system(2, None, vec![echo().thread(1), client("ping", "ping")]);
    ran.assert_exited_cleanly("ping");
    assert_eq!(ran.lines_of("ping"), ["ping: ok"]);
}

#[test]
fn deferred_reply_reaches_the_parked_caller() {
    let ran = run_system(
        1,
        None,
        vec![
            echo(),
            client("deferred-wait", "deferred-wait"),
            client("deferred-release", "deferred-release"),
        ],
    );
    ran.assert_exited_cleanly("deferred-wait");
    ran.assert_exited_cleanly("deferred-release");
    assert_eq!(ran.lines_of("deferred-wait"), ["deferred-wait: released 0"]);
    assert_eq!(ran.lines_of("deferred-release"), ["deferred-release: done"]);
}

#[test]
fn a_cycle_of_waits_fails_with_edeadlk_instead_of_hanging() {
    let ran = run_system(
        1,
        None,
        vec![
            DomainSpec::new("deadlock-a", "deadlock-a").role(Role::Process),
            DomainSpec::new("deadlock-b", "deadlock-b")
                .calls(["deadlock-a"])
                .role(Role::Process),
        ],
    );
    ran.assert_exited_cleanly("deadlock-a");
    ran.assert_exited_cleanly("deadlock-b");
    assert_eq!(ran.lines_of("deadlock-b"), ["deadlock-b: error 35"]);
    assert_eq!(ran.lines_of("deadlock-a"), ["deadlock-a: got 7f03 from 2"]);
}

/// Runs the misbehaving domain `name` beside a healthy ping/echo pair: it must stop with
/// `kind`, and the pair must not notice.
fn misbehaviour(name: &str, rate: Option<MessageRate>) -> DomainFault {
    let ran = run_system(
        1,
        rate,
        vec![echo(), client(name, "ipc-bad"), client("ping", "ping")],
    );
    ran.assert_exited_cleanly("ping");
    assert_eq!(ran.lines_of("ping"), ["ping: ok"]);
    assert_eq!(
        ran.end("echo"),
        &DomainEnd::Waiting(Wait::Receive { from: None })
    );
    ran.fault(name).clone()
}

fn assert_kind(name: &str, kind: &str) {
    let fault = misbehaviour(name, None);
    assert_eq!(fault.kind(), kind, "{name}: {fault}");
}

#[test]
fn descriptor_outside_memory_is_a_bad_descriptor() {
    assert_kind("bad-desc-addr", "bad-descriptor");
}

#[test]
fn oversized_payload_is_a_bad_length() {
    assert_kind("bad-length", "bad-length");
}

#[test]
fn bulk_lengths_overflowing_are_a_bad_length() {
    assert_kind("bad-overflow", "bad-length");
}

#[test]
fn descriptor_loop_is_detected() {
    assert_kind("bad-loop", "descriptor-loop");
}

#[test]
fn unknown_opcode_is_refused() {
    assert_kind("bad-opcode", "unknown-opcode");
}

#[test]
fn destination_outside_the_call_graph_is_refused() {
    assert_kind("bad-dest", "forbidden-destination");
}

#[test]
fn reply_without_a_waiting_caller_is_refused() {
    assert_kind("bad-reply", "reply-without-caller");
}

#[test]
fn bad_queue_setup_is_refused() {
    assert_kind("bad-setup", "bad-setup");
}

#[test]
fn unknown_ipc_operation_is_refused() {
    assert_kind("bad-op", "bad-operation");
}

#[test]
fn message_storm_over_the_rate_is_stopped() {
    let rate = MessageRate {
        per_second: 1,
        burst: 300,
    };
    let fault = misbehaviour("storm", Some(rate));
    assert_eq!(fault.kind(), "message-storm", "{fault}");
}
