//! Recovery of a server that crashes mid-request, under each policy: OSIRIS's table on
//! real VMs. `crasher` asks `echo` to store "a", sends a poison request (echo corrupts
//! its state, then crashes), stores "b" (echo answers what it had), sends the poison
//! again, then pings.

use ankh_domains::{DomainSpec, Policy, Role};
use ankh_recovery::Action;
use ankh_tests::run_system;
use ankh_vmm::system::{DomainEnd, SystemStop};
use virtio_seep::errno::ERESTART;

fn run(policy: Policy) -> ankh_tests::Ran {
    run_system(
        1,
        None,
        vec![
            DomainSpec::new("echo", "echo").policy(policy),
            DomainSpec::new("crasher", "crasher")
                .calls(["echo"])
                .role(Role::Process),
        ],
    )
}

fn crash_line(errno: i32) -> String {
    format!("crasher: crash errno {errno}")
}

#[test]
fn naive_and_enhanced_roll_back_and_answer_erestart() {
    for policy in [Policy::Naive, Policy::Pessimistic, Policy::Enhanced] {
        let ran = run(policy);
        ran.assert_exited_cleanly("crasher");
        let lines = ran.lines_of("crasher");
        assert_eq!(
            lines,
            [
                crash_line(ERESTART).as_str(),
                "crasher: previous a",
                crash_line(ERESTART).as_str(),
                "crasher: ping ok"
            ],
            "{policy:?}: the poison costs one error each time, and the corruption is undone"
        );
        assert_eq!(ran.report.recoveries.len(), 2, "{policy:?}");
        for event in &ran.report.recoveries {
            assert_eq!(
                event.action,
                Action::Rollback { error_reply: true },
                "{policy:?}"
            );
            assert_eq!(event.fault, "cpu-exception");
            assert!(event.window.is_open(), "a query-only request: window open");
        }
        assert!(
            matches!(ran.end("echo"), DomainEnd::Waiting(_)),
            "echo serves on"
        );
        assert_eq!(ran.report.stop, None);
    }
}

#[test]
fn stateless_restarts_and_forgets() {
    let ran = run(Policy::Stateless);
    ran.assert_exited_cleanly("crasher");
    assert_eq!(
        ran.lines_of("crasher"),
        [
            crash_line(ERESTART).as_str(),
            "crasher: previous ",
            crash_line(ERESTART).as_str(),
            "crasher: ping ok"
        ],
        "a restarted server starts from its image: nothing stored"
    );
    assert!(ran
        .report
        .recoveries
        .iter()
        .all(|e| e.action == Action::Restart));
}

#[test]
fn without_recovery_the_system_halts() {
    let ran = run(Policy::None);
    assert!(
        matches!(ran.report.stop, Some(SystemStop::Halted { .. })),
        "{:?}",
        ran.report.stop
    );
    assert_eq!(ran.report.recoveries.len(), 1);
    assert_eq!(ran.report.recoveries[0].action, Action::Halt);
}

/// echo parks deferred-wait's request, then release-crasher makes it answer that
/// request and crash. The VMM holds that answer until echo's state is exposed anyway
/// (docs/recovery.md, "Held effects"): under enhanced the window stays open; under
/// pessimistic, whose window closes at any message, it closes.
fn run_window_closed(policy: Policy, fallback_restart: bool) -> ankh_tests::Ran {
    ankh_tests::run_system_with(
        1,
        None,
        vec![
            DomainSpec::new("echo", "echo").policy(policy),
            DomainSpec::new("deferred-wait", "deferred-wait")
                .calls(["echo"])
                .role(Role::Process),
            DomainSpec::new("release-crasher", "release-crasher")
                .calls(["echo"])
                .role(Role::Process),
        ],
        fallback_restart,
    )
}

#[test]
fn a_fault_after_the_window_closed_shuts_down_under_pessimistic() {
    {
        let policy = Policy::Pessimistic;
        let ran = run_window_closed(policy, false);
        assert!(
            matches!(
                ran.report.stop,
                Some(SystemStop::Shutdown { domain: 1, .. })
            ),
            "{policy:?}: {:?}",
            ran.report.stop
        );
        let event = &ran.report.recoveries[0];
        assert!(
            matches!(event.action, Action::Shutdown { .. }),
            "{policy:?}"
        );
        assert!(!event.window.is_open());
    }
}

/// Under enhanced the held answer exposed nothing: echo is rolled back, the
/// release is answered `ERESTART`, and the parked client was never answered (the
/// rollback dropped the answer; echo's restored state has the request parked still).
#[test]
fn a_fault_after_a_held_answer_to_another_client_is_rolled_back_under_enhanced() {
    let ran = run_window_closed(Policy::Enhanced, false);
    assert_eq!(ran.report.stop, None);
    let event = &ran.report.recoveries[0];
    assert!(event.window.is_open(), "{event:?}");
    assert_eq!(event.action, Action::Rollback { error_reply: true });
    assert_eq!(
        ran.lines_of("release-crasher"),
        [format!("release-crasher: release errno {ERESTART}")]
    );
    assert!(ran.lines_of("deferred-wait").is_empty());
}

#[test]
fn naive_rolls_back_even_after_the_window_closed() {
    let ran = run_window_closed(Policy::Naive, false);
    assert_eq!(ran.report.stop, None);
    assert_eq!(
        ran.lines_of("release-crasher"),
        [format!("release-crasher: release errno {ERESTART}")]
    );
    assert_eq!(
        ran.report.recoveries[0].action,
        Action::Rollback { error_reply: true }
    );
}

#[test]
fn fallback_restart_replaces_the_shutdown() {
    let ran = run_window_closed(Policy::Pessimistic, true);
    assert_eq!(ran.report.stop, None);
    assert_eq!(ran.report.recoveries[0].action, Action::Restart);
    assert_eq!(
        ran.lines_of("release-crasher"),
        [format!("release-crasher: release errno {ERESTART}")]
    );
    assert!(
        matches!(ran.end("echo"), DomainEnd::Waiting(_)),
        "the new echo serves"
    );
}

#[test]
fn messages_queued_behind_a_fault_are_delivered_exactly_once() {
    let ran = run_system(
        1,
        None,
        vec![
            DomainSpec::new("echo", "echo").policy(Policy::Enhanced),
            DomainSpec::new("queue-crasher", "queue-crasher")
                .calls(["echo"])
                .role(Role::Process),
        ],
    );
    ran.assert_exited_cleanly("queue-crasher");
    let want = format!(
        "queue-crasher: count {}",
        ankh_images::expect::QUEUED_NOTIFIES
    );
    assert_eq!(ran.lines_of("queue-crasher"), [want.as_str()]);
    assert_eq!(ran.report.recoveries.len(), 1);
}

#[test]
fn a_stateless_restart_fails_the_parked_requests_instead_of_hanging() {
    let ran = run_system(
        1,
        None,
        vec![
            DomainSpec::new("echo", "echo").policy(Policy::Stateless),
            DomainSpec::new("deferred-wait", "deferred-wait")
                .calls(["echo"])
                .role(Role::Process),
            DomainSpec::new("crasher", "crasher")
                .calls(["echo"])
                .role(Role::Process),
        ],
    );
    let parked = ran.lines_of("deferred-wait");
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert!(
        parked[0].contains(&format!("errno {ERESTART}")),
        "{parked:?}"
    );
    ran.assert_exited_cleanly("crasher");
    assert!(matches!(ran.end("echo"), DomainEnd::Waiting(_)));
}

#[test]
fn a_hung_request_is_caught_by_the_watchdog_and_recovered() {
    let ran = ankh_tests::run_system_timed(
        1,
        None,
        vec![
            DomainSpec::new("echo", "echo").policy(Policy::Enhanced),
            DomainSpec::new("hanger", "hanger")
                .calls(["echo"])
                .role(Role::Process),
        ],
        false,
        std::time::Duration::from_millis(200),
    );
    assert_eq!(
        ran.lines_of("hanger"),
        [
            format!("hanger: hang errno {ERESTART}").as_str(),
            "hanger: ping ok"
        ]
    );
    let event = &ran.report.recoveries[0];
    assert_eq!(event.fault, "watchdog-timeout");
    assert_eq!(event.action, Action::Rollback { error_reply: true });
}

#[test]
fn a_request_that_loops_through_hypercalls_is_caught_by_its_budget_and_recovered() {
    // echo never stops exiting (the vCPU watchdog sees nothing wrong); the
    // per-request budget (4x the watchdog here) stops it.
    let ran = ankh_tests::run_system_timed(
        1,
        None,
        vec![
            DomainSpec::new("echo", "echo").policy(Policy::Enhanced),
            DomainSpec::new("busy-caller", "busy-caller")
                .calls(["echo"])
                .role(Role::Process),
        ],
        false,
        std::time::Duration::from_millis(100),
    );
    assert_eq!(
        ran.lines_of("busy-caller"),
        [
            format!("busy-caller: busy errno {ERESTART}").as_str(),
            "busy-caller: ping ok"
        ]
    );
    let event = &ran.report.recoveries[0];
    assert_eq!(event.fault, "request-over-budget");
    assert_eq!(event.action, Action::Rollback { error_reply: true });
}

/// A fault while a server handles a one-way message: the checkpoint taken before that
/// message is restored (never the one of the request before, which was answered), the
/// message is replayed once, faults again, and is dropped; acknowledged work stays.
#[test]
fn a_fault_during_a_one_way_message_keeps_acknowledged_work() {
    for policy in [Policy::Naive, Policy::Pessimistic, Policy::Enhanced] {
        let ran = run_system(
            1,
            None,
            vec![
                DomainSpec::new("echo", "echo").policy(policy),
                DomainSpec::new("oneway-crasher", "oneway-crasher")
                    .calls(["echo"])
                    .role(Role::Process),
            ],
        );
        ran.assert_exited_cleanly("oneway-crasher");
        assert_eq!(
            ran.lines_of("oneway-crasher"),
            ["oneway-crasher: previous b", "oneway-crasher: count 1"],
            "{policy:?}: the answered store of b and the first notification stay"
        );
        let events = &ran.report.recoveries;
        assert_eq!(events.len(), 2, "{policy:?}: the poison, then its replay");
        for event in events {
            assert_eq!(event.action, Action::Rollback { error_reply: false });
            assert_eq!(event.request_id, None, "a one-way message has no request");
        }
        let notes: Vec<&str> = events.iter().filter_map(|e| e.note.as_deref()).collect();
        assert_eq!(
            notes,
            [
                "the one-way message in hand is replayed once",
                "the one-way message in hand faulted it twice: dropped"
            ]
        );
        assert_eq!(ran.report.stop, None);
    }
}
